//! shmpi's errors as `MPI.Exception(error_class, message)`.
//!
//! The Python package registers its exception class at import; until then (or if it
//! never does) errors are `RuntimeError(error_class, message)`, the base class of
//! mpi4py's `MPI.Exception`.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// The MPI error classes (the values MPICH uses) that the bindings raise themselves.
pub(crate) const ERR_TAG: i32 = 4;
pub(crate) const ERR_COMM: i32 = 5;
pub(crate) const ERR_ROOT: i32 = 7;
pub(crate) const ERR_ARG: i32 = 12;
pub(crate) const ERR_TRUNCATE: i32 = 14;
pub(crate) const ERR_OTHER: i32 = 15;
pub(crate) const ERR_RANK: i32 = 6;
pub(crate) const ERR_REQUEST: i32 = 19;

static EXCEPTION: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Registers the class raised for shmpi errors (`MPI.Exception`).
#[pyfunction]
pub(crate) fn set_exception_class(py: Python<'_>, cls: Bound<'_, PyType>) {
    let _ = EXCEPTION.set(py, cls.unbind());
}

/// The MPI error class of a shmpi error: shmpi's own ([`shmpi::Error::class`]), but for
/// the two cases where mpi4py's tests expect another class.
pub(crate) fn error_class(e: &shmpi::Error) -> i32 {
    use shmpi::Error as E;
    match e {
        // A message that is not a whole number of the receive type's elements.
        E::ElementSize { .. } => ERR_TRUNCATE,
        E::InvalidArchive { .. } | E::Serialize { .. } => ERR_OTHER,
        _ => e.class().code(),
    }
}

pub(crate) fn raise(class: i32, msg: String) -> PyErr {
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
