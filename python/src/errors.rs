//! shmpi's errors as `MPI.Exception(error_class, message)`.
//!
//! The Python package registers its exception class at import; until then (or if it
//! never does) errors are `RuntimeError(error_class, message)`, the base class of
//! mpi4py's `MPI.Exception`.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// MPI error classes (the values MPICH uses), as `MPI.ERR_*` exposes them.
pub(crate) const ERR_COUNT: i32 = 2;
pub(crate) const ERR_COMM: i32 = 5;
pub(crate) const ERR_ROOT: i32 = 7;
pub(crate) const ERR_OP: i32 = 9;
pub(crate) const ERR_ARG: i32 = 12;
pub(crate) const ERR_TRUNCATE: i32 = 14;
pub(crate) const ERR_OTHER: i32 = 15;
pub(crate) const ERR_RANK: i32 = 6;
pub(crate) const ERR_REQUEST: i32 = 19;
pub(crate) const ERR_RMA_SYNC: i32 = 50;

static EXCEPTION: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Registers the class raised for shmpi errors (`MPI.Exception`).
#[pyfunction]
pub(crate) fn set_exception_class(py: Python<'_>, cls: Bound<'_, PyType>) {
    let _ = EXCEPTION.set(py, cls.unbind());
}

/// The MPI error class of a shmpi error: shmpi's own classification, but for the two
/// cases where mpi4py's tests expect another class.
pub(crate) fn error_class(e: &shmpi::Error) -> i32 {
    use shmpi::Error as E;
    match e {
        // A message that is not a whole number of the receive type's elements.
        E::ElementSize { .. } => ERR_TRUNCATE,
        E::InvalidArchive { .. } | E::Serialize { .. } => ERR_OTHER,
        E::Usage(m) => usage_class(m),
        _ => e.class().code(),
    }
}

/// Classifies a usage error by its message, the only thing that tells them apart.
fn usage_class(m: &str) -> i32 {
    if let Some(class) = mismatch_class(m) {
        class
    } else if let Some(class) = contribution_class(m) {
        class
    } else if rma_sync(m) {
        ERR_RMA_SYNC
    } else if m.contains("root") && m.contains("rank") {
        ERR_ROOT
    } else if m.contains("reduction op") {
        ERR_OP
    } else if m.contains("count") || m.contains("length") || m.contains("elements") {
        ERR_COUNT
    } else {
        ERR_OTHER
    }
}

/// Whether a window error is a wrong lock or unlock (`unlock` of a part this rank has
/// not locked, `lock` of one it holds, `lock_all` over a lock ...): MPI's
/// `MPI_ERR_RMA_SYNC`, as Open MPI and MPICH report them.
fn rma_sync(m: &str) -> bool {
    m.contains("has not locked")
        || (m.contains("of the window") && m.contains("while this rank holds"))
        || m.contains("free of a window while this rank holds a lock")
}

/// One collective call as shmpi's mismatch error describes it,
/// `name(root=0, count=2, 8-byte elements, op=Sum)`: its name and its arguments.
fn call_parts(d: &str) -> Option<(&str, Vec<&str>)> {
    let (name, rest) = d.split_once('(')?;
    let args = rest.strip_suffix(')')?;
    Some((name, args.split(", ").collect()))
}

/// The value of the argument `key=` of a described call.
fn arg<'a>(args: &[&'a str], key: &str) -> Option<&'a str> {
    args.iter().find_map(|a| a.strip_prefix(key))
}

/// The class of shmpi's "mismatched collective calls" error (`None` for any other
/// message), from the two calls it names ("this rank (i) called A but rank j called
/// B"). MPI has no class of its own for it: as Open MPI and MPICH report the
/// erroneous calls, different roots are `ERR_ROOT`, different ops `ERR_OP`, a count
/// below another rank's (a longer message than this rank's buffer) `ERR_TRUNCATE`,
/// another count `ERR_COUNT`, anything else (other calls, types) `ERR_OTHER`.
fn mismatch_class(m: &str) -> Option<i32> {
    let m = &m[m.find("mismatched collective calls")?..];
    let (_, rest) = m.split_once(") called ")?;
    let mine = &rest[..=rest.find(')')?];
    let (_, rest) = rest.split_once(" but rank ")?;
    let (_, rest) = rest.split_once(" called ")?;
    let theirs = &rest[..=rest.find(')').unwrap_or(rest.len().saturating_sub(1))];
    let (Some((kind, mine)), Some((their_kind, theirs))) = (call_parts(mine), call_parts(theirs))
    else {
        return Some(ERR_OTHER);
    };
    if kind != their_kind {
        return Some(ERR_OTHER);
    }
    let differs = |key: &str| arg(&mine, key) != arg(&theirs, key);
    Some(if differs("root=") {
        ERR_ROOT
    } else if differs("op=") {
        ERR_OP
    } else {
        let elems = |args: &[&str]| -> Option<String> {
            args.iter()
                .find(|a| a.ends_with("-byte elements"))
                .map(|a| a.to_string())
        };
        let count = |args: &[&str]| arg(args, "count=").and_then(|c| c.parse::<u64>().ok());
        match (count(&mine), count(&theirs)) {
            _ if elems(&mine) != elems(&theirs) => ERR_OTHER,
            (Some(a), Some(b)) if a < b => ERR_TRUNCATE,
            (Some(a), Some(b)) if a > b => ERR_COUNT,
            _ => ERR_OTHER,
        }
    })
}

/// The class of a v-collective's "rank j contributes N elements but counts[j] is C"
/// (`None` for any other message): more than the count is a truncation, as MPI
/// reports a message longer than its receive; fewer is `ERR_COUNT`.
fn contribution_class(m: &str) -> Option<i32> {
    let (_, rest) = m.split_once(" contributes ")?;
    let (got, rest) = rest.split_once(" elements but counts[")?;
    let (_, want) = rest.split_once("] is ")?;
    let got: u64 = got.parse().ok()?;
    let want: u64 = want
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()?;
    Some(if got > want { ERR_TRUNCATE } else { ERR_COUNT })
}

fn raise(class: i32, msg: String) -> PyErr {
    Python::attach(|py| match EXCEPTION.get(py) {
        Some(cls) => PyErr::from_value(match cls.bind(py).call1((class, msg.clone())) {
            Ok(v) => v,
            Err(e) => return e,
        }),
        None => PyRuntimeError::new_err((class, msg)),
    })
}

/// A shmpi error as the registered exception.
pub(crate) fn to_py(e: shmpi::Error) -> PyErr {
    raise(error_class(&e), e.to_string())
}

/// The error of a call that blocked with the GIL released: a signal that arrived
/// meanwhile comes first (Ctrl-C under shmrun ends the blocked call by aborting the
/// job, and the user must see `KeyboardInterrupt`, not the abort it caused).
pub(crate) fn blocked_to_py(py: Python<'_>, e: shmpi::Error) -> PyErr {
    match py.check_signals() {
        Err(signal) => signal,
        Ok(()) => to_py(e),
    }
}

/// A misuse the binding detects itself.
pub(crate) fn usage_error(msg: &str) -> PyErr {
    raise(ERR_OTHER, msg.to_string())
}

/// A use of a freed communicator.
pub(crate) fn comm_error(msg: &str) -> PyErr {
    raise(ERR_COMM, msg.to_string())
}

/// A wrong argument the binding detects itself.
pub(crate) fn arg_error(msg: String) -> PyErr {
    raise(ERR_ARG, msg)
}

/// A rank outside a communicator or window (MPI's `MPI_ERR_RANK`).
pub(crate) fn rank_error(msg: String) -> PyErr {
    raise(ERR_RANK, msg)
}

/// A misuse of a request (MPI's `MPI_ERR_REQUEST`).
pub(crate) fn request_error(msg: &str) -> PyErr {
    raise(ERR_REQUEST, msg.to_string())
}

/// A root outside the communicator (MPI's `MPI_ERR_ROOT`).
pub(crate) fn root_error(root: i32, size: i32) -> PyErr {
    raise(
        ERR_ROOT,
        format!("invalid root {root}: valid roots on this communicator are 0..{size}"),
    )
}
