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
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

use crate::comm::RawComm;
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
fn fast(slf: &Bound<'_, CommBase>, peer: i32) -> Option<Py<RawComm>> {
    if peer == shmpi::PROC_NULL {
        return None;
    }
    slf.borrow().raw.as_ref().map(|r| r.clone_ref(slf.py()))
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
            |raw| raw.reduce_spec(py, "allreduce", sendbuf, recvbuf, &op, 0),
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
            |raw| raw.reduce_spec(py, "reduce", sendbuf, recvbuf, &op, root),
        )
    }
}

/// `op`, or `MPI.SUM` (mpi4py's default) when none was passed.
fn default_op<'py>(py: Python<'py>, op: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
    match op {
        Some(op) => Ok(op.clone()),
        None => registry(py)?.module.bind(py).getattr(intern!(py, "SUM")),
    }
}
