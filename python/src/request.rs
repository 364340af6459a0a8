//! `RawRequest`: a pending non-blocking operation.
//!
//! Sends and receives on Python buffers are shmpi's `isend_buf`/`irecv_buf` on the
//! buffer's export (`RawBuf`): the runtime holds the export, so the request is
//! leak-safe, and reads or writes the memory in place, with no copy. A receive of a
//! pickle, whose length is unknown until it arrives, is matched when it is tested or
//! waited on (probe, then receive).

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffer::RawBuf;
use crate::comm::{St, blocking_n, quick, recv_probed, st, waiting};
use crate::comm_of;
use crate::errors::to_py;
use crate::registry::registry;

enum Inner {
    Send(shmpi::Request<RawBuf>),
    RecvInto(shmpi::Request<(RawBuf, shmpi::Status)>),
    RecvBytes {
        comm: u64,
        source: i32,
        tag: i32,
    },
    /// A non-blocking collective; its result's bytes go into `target` (none at a
    /// reduction's non-root).
    Coll {
        req: Box<dyn CollOp>,
        target: Option<RawBuf>,
    },
    /// Completed: the received bytes (pickle receives) and status (receives).
    Done {
        data: Option<Py<PyBytes>>,
        status: Option<St>,
    },
    /// Waited on, freed or cancelled (`MPI_REQUEST_NULL`).
    Null,
}

/// A non-blocking collective of any element type, its result seen as bytes.
pub(crate) trait CollOp {
    fn test(&mut self) -> shmpi::Result<Option<Vec<u8>>>;
    fn wait(self: Box<Self>) -> shmpi::Result<Vec<u8>>;
}

impl<T: bytemuck::Pod> CollOp for shmpi::CollRequest<T> {
    fn test(&mut self) -> shmpi::Result<Option<Vec<u8>>> {
        Ok(shmpi::CollRequest::test(self)?.map(|v| bytemuck::cast_slice(&v).to_vec()))
    }

    fn wait(self: Box<Self>) -> shmpi::Result<Vec<u8>> {
        (*self).wait().map(|v| bytemuck::cast_slice(&v).to_vec())
    }
}

/// Copies a collective's result into the buffer it was started on.
fn land(target: Option<RawBuf>, bytes: &[u8]) {
    if let Some(mut t) = target {
        let t = t.bytes_mut();
        let n = t.len().min(bytes.len());
        t[..n].copy_from_slice(&bytes[..n]);
    }
}

/// A non-blocking operation (`MPI_Request`).
#[pyclass(unsendable, module = "shmpi._shmpi")]
pub(crate) struct RawRequest {
    inner: Inner,
    /// Whether a wait may keep the GIL until it idles (`comm::quick`): a send or
    /// receive of few bytes, a collective on a small buffer, a pickle's receive.
    quick: bool,
}

impl RawRequest {
    pub(crate) fn send(r: shmpi::Request<RawBuf>, nbytes: usize) -> Self {
        RawRequest {
            inner: Inner::Send(r),
            quick: quick(nbytes),
        }
    }

    pub(crate) fn recv_into(r: shmpi::Request<(RawBuf, shmpi::Status)>, nbytes: usize) -> Self {
        RawRequest {
            inner: Inner::RecvInto(r),
            quick: quick(nbytes),
        }
    }

    pub(crate) fn coll(req: Box<dyn CollOp>, target: Option<RawBuf>) -> Self {
        RawRequest {
            // Its result's length is known only when it arrives.
            quick: false,
            inner: Inner::Coll { req, target },
        }
    }

    pub(crate) fn recv_bytes(comm: u64, source: i32, tag: i32) -> Self {
        RawRequest {
            inner: Inner::RecvBytes { comm, source, tag },
            // `recv_probed` decides once the probe has its length.
            quick: true,
        }
    }

    /// Completes a request whose operation is done, or blocks until it is.
    fn finish(&mut self, py: Python<'_>) -> PyResult<()> {
        let inner = std::mem::replace(&mut self.inner, Inner::Null);
        self.inner = match inner {
            Inner::Send(r) => {
                // The export comes back out and is released here, with the GIL.
                drop(wait_for(py, self.quick, r)?);
                Inner::Done {
                    data: None,
                    status: None,
                }
            }
            Inner::RecvInto(req) => {
                let (export, s) = wait_for(py, self.quick, req)?;
                drop(export);
                Inner::Done {
                    data: None,
                    status: Some(st(s)),
                }
            }
            Inner::Coll { req, target } => {
                let bytes = waiting(py, false, || req.wait())?;
                land(target, &bytes);
                Inner::Done {
                    data: None,
                    status: None,
                }
            }
            Inner::RecvBytes { comm, source, tag } => {
                let c = comm_of(comm)?;
                let found = blocking_n(py, &c, 0, |c| c.probe(source, tag))?;
                let (b, s) = recv_probed(py, &c, found)?;
                Inner::Done {
                    data: Some(b.unbind()),
                    status: Some(s),
                }
            }
            done => done,
        };
        Ok(())
    }
}

/// Waits for `r` (with `quick`, the GIL released only if it has to wait: `waiting`).
fn wait_for<T>(py: Python<'_>, quick: bool, r: shmpi::Request<T>) -> PyResult<T> {
    waiting(py, quick, || r.wait())
}

#[pymethods]
impl RawRequest {
    /// Whether the operation has completed (`MPI_Test` without collecting it).
    fn test(&mut self, py: Python<'_>) -> PyResult<bool> {
        let ready = match &mut self.inner {
            Inner::Send(r) => r.is_complete().map_err(to_py)?,
            Inner::RecvInto(req) => req.is_complete().map_err(to_py)?,
            Inner::Coll { req, .. } => match req.test().map_err(to_py)? {
                None => false,
                Some(bytes) => {
                    // The result was handed out: land it now, the request is done.
                    let Inner::Coll { target, .. } =
                        std::mem::replace(&mut self.inner, Inner::Null)
                    else {
                        unreachable!("matched above")
                    };
                    land(target, &bytes);
                    self.inner = Inner::Done {
                        data: None,
                        status: None,
                    };
                    true
                }
            },
            Inner::RecvBytes { comm, source, tag } => comm_of(*comm)?
                .iprobe(*source, *tag)
                .map_err(to_py)?
                .is_some(),
            Inner::Done { .. } | Inner::Null => true,
        };
        if ready {
            self.finish(py)?;
        }
        Ok(ready)
    }

    /// Blocks until the operation completes; returns the received bytes (pickle
    /// receives) and the status (receives), and leaves the request null.
    fn wait(&mut self, py: Python<'_>) -> PyResult<(Option<Py<PyBytes>>, Option<St>)> {
        self.finish(py)?;
        match std::mem::replace(&mut self.inner, Inner::Null) {
            Inner::Done { data, status } => Ok((data, status)),
            _ => Ok((None, None)),
        }
    }

    /// Cancels a receive that has not completed (`MPI_Cancel`); returns whether it
    /// was cancelled. A send cannot be cancelled: it completes by itself.
    fn cancel(&mut self) -> PyResult<bool> {
        let cancelled = match &mut self.inner {
            // A receive a message has started to fill is not cancelled (MPI's rule): it
            // completes as usual, into the buffer it holds.
            Inner::RecvInto(req) => req.cancel().map_err(to_py)?,
            Inner::RecvBytes { .. } => true,
            // MPI 4.1 §6.12: erroneous for a non-blocking collective's request, and
            // Open MPI reports it so (the request stays active).
            Inner::Coll { .. } => {
                return Err(crate::errors::request_error(
                    "Cancel of a non-blocking collective's request (erroneous in MPI)",
                ));
            }
            _ => false,
        };
        if cancelled {
            self.inner = Inner::Null;
        }
        Ok(cancelled)
    }

    /// Lets the operation complete in the background (`MPI_Request_free`).
    fn free(&mut self) {
        self.inner = Inner::Null;
    }

    fn is_null(&self) -> bool {
        matches!(self.inner, Inner::Null)
    }
}

/// The native part of `MPI.Request` (a Python subclass adds mpi4py's methods): the
/// four fields those methods keep, here so that [`wait_all`] and the native `Isend`
/// and `Irecv` (`pycomm.rs`) read and write them without Python's attribute lookups,
/// which cost more than the message at 8 bytes.
#[pyclass(subclass, weakref, module = "shmpi._shmpi")]
pub(crate) struct RequestBase {
    /// The operation: `None` once null, a [`RawRequest`], or the package's `_Done`.
    #[pyo3(get, set, name = "_raw")]
    raw: Option<Py<PyAny>>,
    /// Whether its result is a pickle to load (`irecv`, `isend` of objects).
    #[pyo3(get, set, name = "_obj")]
    obj: bool,
    /// What the operation uses, kept alive until it completes (a receive's buffer).
    #[pyo3(get, set, name = "_keep")]
    keep: Option<Py<PyAny>>,
    /// The handle (`Request.handle`), 0 until one is asked for.
    #[pyo3(get, set, name = "_id")]
    id: i64,
}

#[pymethods]
impl RequestBase {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(
        _args: &Bound<'_, pyo3::types::PyTuple>,
        _kwargs: Option<&Bound<'_, pyo3::types::PyDict>>,
    ) -> Self {
        RequestBase {
            raw: None,
            obj: false,
            keep: None,
            id: 0,
        }
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        if let Some(r) = &self.raw {
            visit.call(r)?;
        }
        if let Some(k) = &self.keep {
            visit.call(k)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.raw = None;
        self.keep = None;
    }
}

/// A new `MPI.Request` of the operation `raw` (a [`RawRequest`], or `None` for a send
/// that completed as it started), as `Request._new(raw, False, keep)` makes it,
/// without its Python frame (`Request.__init__` does not run, as there).
pub(crate) fn new_request<'py>(
    py: Python<'py>,
    raw: Option<RawRequest>,
    keep: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let c = registry(py)?;
    let raw = match raw {
        Some(r) => Py::new(py, r)?.into_any(),
        None => c.sent.clone_ref(py),
    };
    let tp = c.request.bind(py).as_type_ptr();
    // SAFETY: `tp` is a live type object (the class is held in the registry); its
    // `tp_new` slot is `RequestBase`'s (no subclass in the package overrides
    // `__new__`), which ignores its arguments and returns a new reference or null with
    // an exception set, as every `tp_new` does.
    let obj = unsafe {
        let slot = pyo3::ffi::PyType_GetSlot(tp, pyo3::ffi::Py_tp_new);
        if slot.is_null() {
            return Err(crate::errors::usage_error("MPI.Request has no constructor"));
        }
        let new: pyo3::ffi::newfunc = std::mem::transmute(slot);
        let args = pyo3::types::PyTuple::empty(py);
        Bound::from_owned_ptr_or_err(py, new(tp, args.as_ptr(), std::ptr::null_mut()))?
    };
    {
        let base = obj.cast::<RequestBase>()?;
        let mut b = base.borrow_mut();
        b.raw = Some(raw);
        b.keep = keep.map(|k| k.clone().unbind());
    }
    Ok(obj)
}

/// `Request.Waitall(requests)` without statuses, in one call: a window of small
/// requests spent more time in the Python loop that collected them one by one than in
/// the operations. A `Request` of a buffer operation (no object to unpickle) is waited
/// for here and made null; any other `Request` through its own `_collect`; anything
/// else is skipped, as `_waitall` does. As MPI's `Waitall`, every request is completed
/// before the first error is raised.
#[pyfunction]
pub(crate) fn wait_all(py: Python<'_>, requests: &Bound<'_, PyAny>) -> PyResult<()> {
    let c = registry(py)?;
    let (cls, sent) = (c.request.bind(py), c.sent.bind(py));
    let mut first: Option<PyErr> = None;
    if let Ok(list) = requests.cast_exact::<pyo3::types::PyList>() {
        // Indexed, not iterated: no iterator object per call.
        let mut i = 0;
        while i < list.len() {
            let r = list.get_item(i)?;
            if let Err(e) = wait_one(py, cls, sent, &r) {
                first.get_or_insert(e);
            }
            i += 1;
        }
    } else {
        for r in requests.try_iter()? {
            let r = r?;
            if let Err(e) = wait_one(py, cls, sent, &r) {
                first.get_or_insert(e);
            }
        }
    }
    first.map_or(Ok(()), Err)
}

fn wait_one(
    py: Python<'_>,
    cls: &Bound<'_, pyo3::types::PyType>,
    sent: &Bound<'_, PyAny>,
    r: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let collect = || {
        r.call_method1(pyo3::intern!(py, "_collect"), (py.None(),))
            .map(drop)
    };
    if !r.get_type().is(cls) {
        // A subclass (a persistent request) or not a request at all.
        return if r.is_instance(cls)? {
            collect()
        } else {
            Ok(())
        };
    }
    let base = r.cast::<RequestBase>()?;
    // Decided under the borrow, acted on after it: `_collect` writes the fields.
    let native = {
        let b = base.borrow();
        match &b.raw {
            None => return Ok(()),
            Some(raw) if raw.is(sent) => None,
            Some(raw) if !b.obj => match raw.bind(py).cast::<RawRequest>() {
                Ok(n) => Some(n.clone()),
                Err(_) => {
                    drop(b);
                    return collect();
                }
            },
            Some(_) => {
                drop(b);
                return collect();
            }
        }
    };
    if let Some(n) = native {
        n.borrow_mut().finish(py)?;
    }
    // Taken out first and dropped after the borrow: a decref may run Python code that
    // reads this request.
    let (raw, keep) = {
        let mut b = base.borrow_mut();
        b.id = 0;
        (b.raw.take(), b.keep.take())
    };
    drop((raw, keep));
    Ok(())
}

/// Waits until one of the requests completes (`MPI_Waitany`); returns its index, or
/// `None` if every request is null. The GIL is released between rounds.
#[pyfunction]
pub(crate) fn wait_any(
    py: Python<'_>,
    reqs: Vec<Bound<'_, RawRequest>>,
) -> PyResult<Option<usize>> {
    if reqs.iter().all(|r| r.borrow().is_null()) {
        return Ok(None);
    }
    let mut rounds = 0u32;
    loop {
        for (i, r) in reqs.iter().enumerate() {
            let mut r = r.borrow_mut();
            if !r.is_null() && r.test(py)? {
                return Ok(Some(i));
            }
        }
        rounds += 1;
        if rounds % 64 == 0 {
            py.check_signals()?;
        }
        py.detach(std::thread::yield_now);
    }
}
