//! `CommBase`: the native base class of `MPI.Comm`, with the methods programs call in
//! their inner loops.
//!
//! A Python method around a native call costs about as much as the call itself at 8
//! bytes (its frame, attribute lookups, a second call), so `Send`, `Recv`, `Isend`,
//! `Irecv`, the OSU demos' collectives and the lowercase `send`/`recv`/`isend` are
//! methods of this class: one native call from the program's line to shmpi. Each handles what a loop passes (a
//! communicator that is not `COMM_NULL`, a rank that is not `PROC_NULL`, the spec forms
//! `buffer::coll_spec` reads) and hands anything else, unchanged, to the Python method
//! of the same name with a leading underscore (`_Send`, ...), which parses it and
//! raises mpi4py's errors. `MPI.Comm` keeps its communicator in `_raw`, a field of this
//! class.

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::comm::RawComm;
use crate::reduce::Which;
use crate::registry::{Registry, registry};

/// A communicator object's native part.
#[pyclass(subclass, module = "shmpi._shmpi")]
pub(crate) struct CommBase {
    /// The communicator; `None` for `COMM_NULL` and a freed communicator.
    #[pyo3(get, set, name = "_raw")]
    raw: Option<Py<RawComm>>,
}

/// Whether `MPI.pickle` is the default (the standard library's functions with
/// protocol 5), as its `_std` says; kept by `pickle_changed`, so that a lowercase call
/// reads no attribute to know it. Relaxed: it is written and read only with the GIL
/// held, whose handovers order them.
static STD_PICKLE: AtomicBool = AtomicBool::new(true);

/// Called by `Pickle.__setattr__` (and at registration): `pickle` now is (`std`) or is
/// not the default.
#[pyfunction]
pub(crate) fn pickle_changed(py: Python<'_>, pickle: Bound<'_, PyAny>, std: bool) {
    if registry(py).is_ok_and(|r| r.pickle.is(&pickle)) {
        STD_PICKLE.store(std, Ordering::Relaxed);
    }
}

impl Registry {
    /// `MPI._dumps(obj)`.
    fn dumps<'py>(&self, py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if STD_PICKLE.load(Ordering::Relaxed) {
            crate::pickle5::dumps(py, obj).map(Bound::into_any)
        } else {
            self.pickle
                .bind(py)
                .call_method1(intern!(py, "dumps"), (obj,))
        }
    }

    /// `MPI._loads(data)`: `None` for an empty message.
    fn loads<'py>(&self, py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if !data.is_truthy()? {
            return Ok(py.None().into_bound(py));
        }
        if STD_PICKLE.load(Ordering::Relaxed) {
            crate::pickle5::loads(py, data)
        } else {
            self.pickle
                .bind(py)
                .call_method1(intern!(py, "loads"), (data,))
        }
    }
}

/// This object's communicator, if it has one and `peer` is not `PROC_NULL`: the
/// condition of every native path. Cloned, so that no borrow of `slf` spans the call.
#[inline]
fn fast<'py>(slf: &Bound<'py, CommBase>, peer: i32) -> Option<Bound<'py, RawComm>> {
    if peer == shmpi::PROC_NULL {
        return None;
    }
    // A `Bound`, not a `Py`: dropping it is a plain decref (a `Py` asks first whether
    // this thread is attached, which is a thread-local read).
    slf.borrow().raw.as_ref().map(|r| r.bind(slf.py()).clone())
}

/// The communicator of a lowercase collective's native path: while `MPI.pickle` is
/// the default (else the Python method runs, with the pickle functions set there).
fn pickling<'py>(slf: &Bound<'py, CommBase>) -> Option<Bound<'py, RawComm>> {
    fast(slf, 0).filter(|_| STD_PICKLE.load(Ordering::Relaxed))
}

/// Calls the Python method `name` of `slf`: the general path of a native method.
fn python<'py, A>(
    slf: &Bound<'py, CommBase>,
    name: &Bound<'py, PyString>,
    args: A,
) -> PyResult<Bound<'py, PyAny>>
where
    A: pyo3::call::PyCallArgs<'py>,
{
    slf.as_any().call_method1(name, args)
}

/// `native` on this object's communicator, unless it has none or `native` declines
/// (returns false, having done nothing): then the Python method `name` with `args`.
fn native_or<'py, A>(
    slf: &Bound<'py, CommBase>,
    name: &Bound<'py, PyString>,
    args: A,
    native: impl FnOnce(&RawComm) -> PyResult<bool>,
) -> PyResult<()>
where
    A: pyo3::call::PyCallArgs<'py>,
{
    if let Some(raw) = fast(slf, 0) {
        if native(raw.get())? {
            return Ok(());
        }
    }
    python(slf, name, args).map(drop)
}

/// `status._set(st)` when a status object was passed.
fn fill(status: Option<&Bound<'_, PyAny>>, st: crate::comm::St) -> PyResult<()> {
    match status {
        Some(s) if !s.is_none() => s.call_method1(intern!(s.py(), "_set"), (st,)).map(drop),
        _ => Ok(()),
    }
}

#[pymethods]
impl CommBase {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        CommBase { raw: None }
    }

    // ---- point to point ---------------------------------------------------------

    #[pyo3(name = "Send", signature = (buf, dest, tag = 0))]
    fn send_buf(
        slf: &Bound<'_, Self>,
        buf: &Bound<'_, PyAny>,
        dest: i32,
        tag: i32,
    ) -> PyResult<()> {
        let py = slf.py();
        match fast(slf, dest) {
            Some(raw) => raw.get().send(py, buf, None, dest, tag, false),
            None => python(slf, intern!(py, "_Send"), (buf, dest, tag)).map(drop),
        }
    }

    #[pyo3(name = "Recv", signature = (buf, source = shmpi::ANY_SOURCE, tag = shmpi::ANY_TAG, status = None))]
    fn recv_buf(
        slf: &Bound<'_, Self>,
        buf: &Bound<'_, PyAny>,
        source: i32,
        tag: i32,
        status: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let py = slf.py();
        match fast(slf, source) {
            Some(raw) => fill(status, raw.get().recv_into(py, buf, None, source, tag)?),
            None => python(slf, intern!(py, "_Recv"), (buf, source, tag, status)).map(drop),
        }
    }

    #[pyo3(name = "Isend", signature = (buf, dest, tag = 0))]
    fn isend_buf<'py>(
        slf: &Bound<'py, Self>,
        buf: &Bound<'py, PyAny>,
        dest: i32,
        tag: i32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        match fast(slf, dest) {
            Some(raw) => raw.get().isend_request(py, buf, dest, tag),
            None => python(slf, intern!(py, "_Isend"), (buf, dest, tag)),
        }
    }

    #[pyo3(name = "Irecv", signature = (buf, source = shmpi::ANY_SOURCE, tag = shmpi::ANY_TAG))]
    fn irecv_buf<'py>(
        slf: &Bound<'py, Self>,
        buf: &Bound<'py, PyAny>,
        source: i32,
        tag: i32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        match fast(slf, source) {
            Some(raw) => {
                let r = raw.get().irecv_into(buf, None, source, tag)?;
                // The request keeps the spec it was given, as the Python method did.
                crate::request::new_request(py, Some(r), Some(buf))
            }
            None => python(slf, intern!(py, "_Irecv"), (buf, source, tag)),
        }
    }

    #[pyo3(name = "send", signature = (obj, dest, tag = 0))]
    fn send_obj(
        slf: &Bound<'_, Self>,
        obj: &Bound<'_, PyAny>,
        dest: i32,
        tag: i32,
    ) -> PyResult<()> {
        let py = slf.py();
        match fast(slf, dest) {
            Some(raw) => {
                let raw = raw.get();
                if !STD_PICKLE.load(Ordering::Relaxed) {
                    let data = registry(py)?.dumps(py, obj)?;
                    return raw.send(py, &data, None, dest, tag, false);
                }
                // A small builtin object goes from the encoder's buffer to the ring,
                // with no `bytes` made; anything else is pickled by `pickle` once.
                let sent =
                    crate::pickle5::with_encoded(obj, |b| raw.send_bytes(py, b, dest, tag, false));
                match sent {
                    Some(sent) => sent,
                    None => {
                        let data = crate::pickle5::std_dumps(py, obj)?;
                        raw.send_bytes(py, data.as_bytes(), dest, tag, false)
                    }
                }
            }
            None => python(slf, intern!(py, "_send"), (obj, dest, tag)).map(drop),
        }
    }

    #[pyo3(name = "bcast", signature = (obj, root = 0))]
    fn bcast_obj<'py>(
        slf: &Bound<'py, Self>,
        obj: &Bound<'py, PyAny>,
        root: i32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let Some(raw) = pickling(slf) else {
            return python(slf, intern!(py, "_bcast"), (obj, root));
        };
        raw.get().bcast_pickled(py, obj, root)
    }

    #[pyo3(name = "allgather", signature = (sendobj))]
    fn allgather_obj<'py>(
        slf: &Bound<'py, Self>,
        sendobj: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let Some(raw) = pickling(slf) else {
            return python(slf, intern!(py, "_allgather"), (sendobj,));
        };
        let items = raw.get().allgather_pickled(py, sendobj)?;
        Ok(PyList::new(py, items)?.into_any())
    }

    /// `allreduce` of objects: every rank's object gathered, then folded here in rank
    /// order ([`fold`]).
    #[pyo3(name = "allreduce", signature = (sendobj, op = None))]
    fn allreduce_obj<'py>(
        slf: &Bound<'py, Self>,
        sendobj: &Bound<'py, PyAny>,
        op: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let op = default_op(py, op)?;
        let Some(raw) = pickling(slf) else {
            return python(slf, intern!(py, "_allreduce"), (sendobj, &op));
        };
        let items = raw.get().allgather_pickled(py, sendobj)?;
        fold(py, items, &op)
    }

    #[pyo3(name = "scatter", signature = (sendobj, root = 0))]
    fn scatter_obj<'py>(
        slf: &Bound<'py, Self>,
        sendobj: &Bound<'py, PyAny>,
        root: i32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let Some(raw) = pickling(slf) else {
            return python(slf, intern!(py, "_scatter"), (sendobj, root));
        };
        raw.get().scatter_pickled(py, sendobj, root)
    }

    #[pyo3(name = "alltoall", signature = (sendobj))]
    fn alltoall_obj<'py>(
        slf: &Bound<'py, Self>,
        sendobj: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let Some(raw) = pickling(slf) else {
            return python(slf, intern!(py, "_alltoall"), (sendobj,));
        };
        let items = raw.get().alltoall_pickled(py, sendobj)?;
        Ok(PyList::new(py, items)?.into_any())
    }

    #[pyo3(name = "gather", signature = (sendobj, root = 0))]
    fn gather_obj<'py>(
        slf: &Bound<'py, Self>,
        sendobj: &Bound<'py, PyAny>,
        root: i32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let Some(raw) = pickling(slf) else {
            return python(slf, intern!(py, "_gather"), (sendobj, root));
        };
        match raw.get().gather_pickled(py, sendobj, root)? {
            Some(items) => Ok(PyList::new(py, items)?.into_any()),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// `reduce` of objects: every rank's object gathered at `root` and folded there
    /// ([`fold`]); `None` elsewhere.
    #[pyo3(name = "reduce", signature = (sendobj, op = None, root = 0))]
    fn reduce_obj<'py>(
        slf: &Bound<'py, Self>,
        sendobj: &Bound<'py, PyAny>,
        op: Option<&Bound<'py, PyAny>>,
        root: i32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let op = default_op(py, op)?;
        let Some(raw) = pickling(slf) else {
            return python(slf, intern!(py, "_reduce_obj"), (sendobj, &op, root));
        };
        match raw.get().gather_pickled(py, sendobj, root)? {
            Some(items) => fold(py, items, &op),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// `scan` of objects: every rank's object gathered, those of the ranks up to this
    /// one folded here in rank order ([`fold`]).
    #[pyo3(name = "scan", signature = (sendobj, op = None))]
    fn scan_obj<'py>(
        slf: &Bound<'py, Self>,
        sendobj: &Bound<'py, PyAny>,
        op: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let op = default_op(py, op)?;
        let Some(raw) = pickling(slf) else {
            return python(slf, intern!(py, "_scan"), (sendobj, &op));
        };
        let items = raw.get().prefix_pickled(py, sendobj, true)?;
        fold(py, items, &op)
    }

    /// `exscan` of objects: as `scan`, the ranks before this one; `None` at rank 0.
    #[pyo3(name = "exscan", signature = (sendobj, op = None))]
    fn exscan_obj<'py>(
        slf: &Bound<'py, Self>,
        sendobj: &Bound<'py, PyAny>,
        op: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let op = default_op(py, op)?;
        let Some(raw) = pickling(slf) else {
            return python(slf, intern!(py, "_exscan"), (sendobj, &op));
        };
        let items = raw.get().prefix_pickled(py, sendobj, false)?;
        if items.is_empty() {
            return Ok(py.None().into_bound(py));
        }
        fold(py, items, &op)
    }

    #[pyo3(name = "isend", signature = (obj, dest, tag = 0))]
    fn isend_obj<'py>(
        slf: &Bound<'py, Self>,
        obj: &Bound<'py, PyAny>,
        dest: i32,
        tag: i32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        match fast(slf, dest) {
            Some(raw) => {
                let data = registry(py)?.dumps(py, obj)?;
                raw.get().isend_request(py, &data, dest, tag)
            }
            None => python(slf, intern!(py, "_isend"), (obj, dest, tag)),
        }
    }

    #[pyo3(name = "recv", signature = (buf = None, source = shmpi::ANY_SOURCE, tag = shmpi::ANY_TAG, status = None))]
    fn recv_obj<'py>(
        slf: &Bound<'py, Self>,
        buf: Option<&Bound<'py, PyAny>>,
        source: i32,
        tag: i32,
        status: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        match (buf.filter(|b| !b.is_none()), fast(slf, source)) {
            (None, Some(raw)) => {
                let (obj, st) = raw.get().recv_with(py, source, tag, |b| {
                    if STD_PICKLE.load(Ordering::Relaxed) {
                        crate::pickle5::loads_message(py, b)
                    } else {
                        registry(py)?.loads(py, PyBytes::new(py, b).as_any())
                    }
                })?;
                fill(status, st)?;
                Ok(obj)
            }
            _ => python(slf, intern!(py, "_recv"), (buf, source, tag, status)),
        }
    }

    // ---- collectives --------------------------------------------------------------

    #[pyo3(name = "Barrier")]
    fn barrier(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        native_or(slf, intern!(py, "_Barrier"), (), |raw| {
            raw.barrier(py).map(|()| true)
        })
    }

    #[pyo3(name = "Bcast", signature = (buf, root = 0))]
    fn bcast_buf(slf: &Bound<'_, Self>, buf: &Bound<'_, PyAny>, root: i32) -> PyResult<()> {
        let py = slf.py();
        native_or(slf, intern!(py, "_Bcast"), (buf, root), |raw| {
            raw.bcast_spec(py, buf, root)
        })
    }

    #[pyo3(name = "Allgather")]
    fn allgather_buf(
        slf: &Bound<'_, Self>,
        sendbuf: &Bound<'_, PyAny>,
        recvbuf: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        native_or(slf, intern!(py, "_Allgather"), (sendbuf, recvbuf), |raw| {
            raw.allgather_spec(py, sendbuf, recvbuf)
        })
    }

    #[pyo3(name = "Alltoall")]
    fn alltoall_buf(
        slf: &Bound<'_, Self>,
        sendbuf: &Bound<'_, PyAny>,
        recvbuf: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        native_or(slf, intern!(py, "_Alltoall"), (sendbuf, recvbuf), |raw| {
            raw.alltoall_spec(py, sendbuf, recvbuf)
        })
    }

    #[pyo3(name = "Allreduce", signature = (sendbuf, recvbuf, op = None))]
    fn allreduce_buf(
        slf: &Bound<'_, Self>,
        sendbuf: &Bound<'_, PyAny>,
        recvbuf: &Bound<'_, PyAny>,
        op: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let py = slf.py();
        let op = default_op(py, op)?;
        native_or(
            slf,
            intern!(py, "_Allreduce"),
            (sendbuf, recvbuf, &op),
            |raw| raw.reduce_spec(py, Which::Allreduce, sendbuf, recvbuf, &op, 0),
        )
    }

    #[pyo3(name = "Reduce", signature = (sendbuf, recvbuf, op = None, root = 0))]
    fn reduce_buf(
        slf: &Bound<'_, Self>,
        sendbuf: &Bound<'_, PyAny>,
        recvbuf: &Bound<'_, PyAny>,
        op: Option<&Bound<'_, PyAny>>,
        root: i32,
    ) -> PyResult<()> {
        let py = slf.py();
        let op = default_op(py, op)?;
        native_or(
            slf,
            intern!(py, "_Reduce"),
            (sendbuf, recvbuf, &op, root),
            |raw| raw.reduce_spec(py, Which::Reduce, sendbuf, recvbuf, &op, root),
        )
    }
}

/// `op`, or `MPI.SUM` (mpi4py's default) when none was passed.
/// `items` folded left to right (rank order, so every rank of an allreduce gets the
/// same result), `SUM` and `PROD` as `+` and `*` (what their functions do), any other
/// op through its `__call__`.
fn fold<'py>(
    py: Python<'py>,
    items: Vec<Bound<'py, PyAny>>,
    op: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let reg = registry(py)?;
    let sum = op.is(reg.sum.bind(py));
    let prod = !sum && op.is(reg.prod.bind(py));
    let mut it = items.into_iter();
    let mut acc = it.next().expect("a communicator has a member");
    for x in it {
        acc = if sum {
            acc.add(x)?
        } else if prod {
            acc.mul(x)?
        } else {
            op.call1((acc, x))?
        };
    }
    Ok(acc)
}

fn default_op<'py>(py: Python<'py>, op: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
    match op {
        Some(op) => Ok(op.clone()),
        None => Ok(registry(py)?.sum.bind(py).clone()),
    }
}

// ---- C entry points -------------------------------------------------------------
//
// pyo3's method wrapper (its trampoline, the argument parser, the check of `self`'s
// type and the conversion of the result) costs as much as an 8-byte broadcast's own
// bookkeeping in shmpi. `Bcast`, `Allreduce` and `Barrier`, which programs call in
// tight loops (mpi4py's OSU demos), are therefore also plain C methods
// (`METH_FASTCALL | METH_KEYWORDS`, `METH_NOARGS`), installed on `MPI.Comm` at
// registration (`install_entries`). Each reads the common forms of its arguments
// itself and hands every other call, unchanged, to pyo3's method (`general`).

/// Runs `body` for a C method called by CPython: its error is raised, a panic becomes
/// pyo3's `PanicException` (no unwinding into C).
fn entry(
    py: Python<'_>,
    body: impl FnOnce() -> PyResult<*mut pyo3::ffi::PyObject>,
) -> *mut pyo3::ffi::PyObject {
    let err = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(obj)) => return obj,
        Ok(Err(e)) => e,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic in shmpi's extension".to_string());
            pyo3::panic::PanicException::new_err(msg)
        }
    };
    err.restore(py);
    std::ptr::null_mut()
}

/// A `METH_FASTCALL | METH_KEYWORDS` call's arguments: `nargs` positional ones, then
/// one per keyword name.
struct FastArgs<'a, 'py> {
    py: Python<'py>,
    all: &'a [*mut pyo3::ffi::PyObject],
    nargs: usize,
    kw: Option<Borrowed<'a, 'py, PyAny>>,
}

impl<'a, 'py> FastArgs<'a, 'py> {
    /// Argument `i` (positional, then the keywords' values); out of range is a panic,
    /// which `entry` raises as an exception.
    fn arg(&self, i: usize) -> Borrowed<'a, 'py, PyAny> {
        // SAFETY: every pointer in `all` is an argument CPython passed, alive for the
        // call.
        unsafe { Borrowed::from_ptr(self.py, self.all[i]) }
    }

    /// Whether the keyword names are exactly `(name,)`.
    fn only_keyword(&self, name: &str) -> bool {
        self.kw.is_some_and(|kw| {
            kw.cast::<PyTuple>().is_ok_and(|t| {
                t.len() == 1 && t.get_item(0).is_ok_and(|k| k.eq(name).unwrap_or(false))
            })
        })
    }

    /// Calls pyo3's `CommBase.<name>` with these arguments, unchanged: the calls an
    /// entry point does not read itself, and their errors.
    fn general(&self, slf: &Bound<'py, CommBase>, name: &Bound<'py, PyString>) -> PyResult<()> {
        let py = self.py;
        let names = match self.kw {
            Some(kw) => kw.cast::<PyTuple>()?.to_owned(),
            None => PyTuple::empty(py),
        };
        let mut pos = vec![slf.clone().into_any()];
        pos.extend((0..self.nargs).map(|i| Borrowed::to_owned(self.arg(i))));
        let kwargs = PyDict::new(py);
        for (i, k) in names.iter().enumerate() {
            kwargs.set_item(k, self.arg(self.nargs + i))?;
        }
        let method = py.get_type::<CommBase>().getattr(name)?;
        method.call(PyTuple::new(py, pos)?, Some(&kwargs))?;
        Ok(())
    }
}

/// The part every `METH_FASTCALL | METH_KEYWORDS` entry point shares: `body` with
/// `self` and the arguments, under [`entry`]; `None` returned.
///
/// # Safety
///
/// Called from a C method that CPython's method descriptor called, attached, with
/// `slf` an instance of `CommBase` (the descriptor checks it) and `args` holding
/// `nargs` positional arguments followed by one for each name in `kwnames` (a tuple,
/// or null).
unsafe fn fastcall(
    slf: *mut pyo3::ffi::PyObject,
    args: *const *mut pyo3::ffi::PyObject,
    nargs: pyo3::ffi::Py_ssize_t,
    kwnames: *mut pyo3::ffi::PyObject,
    body: impl for<'a, 'py> FnOnce(&Bound<'py, CommBase>, &FastArgs<'a, 'py>) -> PyResult<()>,
) -> *mut pyo3::ffi::PyObject {
    // SAFETY: CPython calls a C method with the thread attached.
    let py = unsafe { Python::assume_attached() };
    entry(py, || {
        // SAFETY: the contract above: `slf` is a live `CommBase`, `kwnames` a tuple of
        // names when not null, and `args` holds `nargs` plus one per name pointers.
        let (slf, a) = unsafe {
            let slf = Bound::from_borrowed_ptr(py, slf).cast_into_unchecked::<CommBase>();
            let kw = (!kwnames.is_null()).then(|| Borrowed::from_ptr(py, kwnames));
            let nkw = if kwnames.is_null() {
                0
            } else {
                pyo3::ffi::PyTuple_Size(kwnames)
            };
            let nargs = nargs.max(0) as usize;
            let all = std::slice::from_raw_parts(args, nargs + nkw.max(0) as usize);
            (slf, FastArgs { py, all, nargs, kw })
        };
        body(&slf, &a)?;
        Ok(py.None().into_ptr())
    })
}

/// `Comm.Bcast(buf, root=0)`: `comm.Bcast(buf)`, `comm.Bcast(buf, root)` and
/// `comm.Bcast(buf, root=r)` with an `int` root run here; any other call goes to
/// `CommBase.Bcast`.
///
/// # Safety
///
/// As [`fastcall`].
unsafe extern "C" fn bcast_entry(
    slf: *mut pyo3::ffi::PyObject,
    args: *const *mut pyo3::ffi::PyObject,
    nargs: pyo3::ffi::Py_ssize_t,
    kwnames: *mut pyo3::ffi::PyObject,
) -> *mut pyo3::ffi::PyObject {
    // SAFETY: this function's contract is `fastcall`'s.
    unsafe {
        fastcall(slf, args, nargs, kwnames, |slf, a| {
            let plain = match (a.nargs, a.kw.is_some()) {
                (1, false) => Some((a.arg(0), 0)),
                (2, false) => root_of(&a.arg(1)).map(|r| (a.arg(0), r)),
                (1, true) if a.only_keyword("root") => root_of(&a.arg(1)).map(|r| (a.arg(0), r)),
                _ => None,
            };
            match plain {
                Some((buf, root)) => CommBase::bcast_buf(slf, &buf, root),
                None => a.general(slf, intern!(a.py, "Bcast")),
            }
        })
    }
}

/// `Comm.Allreduce(sendbuf, recvbuf, op=SUM)`: two or three positional arguments, or
/// two and `op=`, run here; any other call goes to `CommBase.Allreduce`.
///
/// # Safety
///
/// As [`fastcall`].
unsafe extern "C" fn allreduce_entry(
    slf: *mut pyo3::ffi::PyObject,
    args: *const *mut pyo3::ffi::PyObject,
    nargs: pyo3::ffi::Py_ssize_t,
    kwnames: *mut pyo3::ffi::PyObject,
) -> *mut pyo3::ffi::PyObject {
    // SAFETY: this function's contract is `fastcall`'s.
    unsafe {
        fastcall(slf, args, nargs, kwnames, |slf, a| {
            let op = match (a.nargs, a.kw.is_some()) {
                (2, false) => Some(None),
                (3, false) => Some(Some(a.arg(2))),
                (2, true) if a.only_keyword("op") => Some(Some(a.arg(2))),
                _ => None,
            };
            match op {
                Some(op) => CommBase::allreduce_buf(slf, &a.arg(0), &a.arg(1), op.as_deref()),
                None => a.general(slf, intern!(a.py, "Allreduce")),
            }
        })
    }
}

/// `Comm.Barrier()`.
///
/// # Safety
///
/// Called by CPython's method descriptor (`METH_NOARGS`), attached, with `slf` an
/// instance of `CommBase` (the descriptor checks it).
unsafe extern "C" fn barrier_entry(
    slf: *mut pyo3::ffi::PyObject,
    _args: *mut pyo3::ffi::PyObject,
) -> *mut pyo3::ffi::PyObject {
    // SAFETY: CPython calls a C method with the thread attached.
    let py = unsafe { Python::assume_attached() };
    entry(py, || {
        // SAFETY: `slf` is a live `CommBase` (the descriptor checked its type).
        let slf = unsafe { Bound::from_borrowed_ptr(py, slf).cast_into_unchecked::<CommBase>() };
        CommBase::barrier(&slf)?;
        Ok(py.None().into_ptr())
    })
}

/// An exact `int` in `i32`'s range (the root of a call this entry runs itself).
fn root_of(v: &Borrowed<'_, '_, PyAny>) -> Option<i32> {
    if !v.is_exact_instance_of::<pyo3::types::PyInt>() {
        return None;
    }
    v.extract::<i32>().ok()
}

/// Installs the C entry points on `comm` (`MPI.Comm`, which derives from `CommBase`),
/// in front of the pyo3 methods of the same names.
pub(crate) fn install_entries(comm: &Bound<'_, PyAny>) -> PyResult<()> {
    install(
        comm,
        c"Bcast",
        pyo3::ffi::PyMethodDefPointer {
            PyCFunctionFastWithKeywords: bcast_entry,
        },
        pyo3::ffi::METH_FASTCALL | pyo3::ffi::METH_KEYWORDS,
        c"Bcast(buf, root=0): broadcasts a buffer from root (MPI_Bcast).",
    )?;
    install(
        comm,
        c"Allreduce",
        pyo3::ffi::PyMethodDefPointer {
            PyCFunctionFastWithKeywords: allreduce_entry,
        },
        pyo3::ffi::METH_FASTCALL | pyo3::ffi::METH_KEYWORDS,
        c"Allreduce(sendbuf, recvbuf, op=SUM): reduces to every rank (MPI_Allreduce).",
    )?;
    install(
        comm,
        c"Barrier",
        pyo3::ffi::PyMethodDefPointer {
            PyCFunction: barrier_entry,
        },
        pyo3::ffi::METH_NOARGS,
        c"Barrier(): waits until every rank has called it (MPI_Barrier).",
    )
}

/// Sets `comm.<name>` to a method descriptor of `CommBase` for `meth`.
fn install(
    comm: &Bound<'_, PyAny>,
    name: &'static std::ffi::CStr,
    meth: pyo3::ffi::PyMethodDefPointer,
    flags: std::ffi::c_int,
    doc: &'static std::ffi::CStr,
) -> PyResult<()> {
    let py = comm.py();
    let def = Box::leak(Box::new(pyo3::ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: meth,
        ml_flags: flags,
        ml_doc: doc.as_ptr(),
    }));
    let base = py.get_type::<CommBase>();
    // SAFETY: `base` is a live type object and `def` lives for the rest of the process
    // (leaked), as a method descriptor needs.
    let descr = unsafe {
        Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyDescr_NewMethod(base.as_type_ptr(), def))?
    };
    comm.setattr(name.to_str().expect("an ASCII name"), descr)
}
