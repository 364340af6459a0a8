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

/// The package's `Request` class, registered at import (`set_request_class`).
static REQUEST: pyo3::sync::PyOnceLock<Py<pyo3::types::PyType>> = pyo3::sync::PyOnceLock::new();

/// Registers the class [`wait_all`] completes natively.
#[pyfunction]
pub(crate) fn set_request_class(py: Python<'_>, cls: Bound<'_, pyo3::types::PyType>) {
    let _ = REQUEST.set(py, cls.unbind());
}

/// `Request.Waitall(requests)` without statuses, in one call: a window of small
/// requests spent more time in the Python loop that collected them one by one than in
/// the operations. A `Request` of a buffer operation (no object to unpickle) is waited
/// for here and made null; any other `Request` through its own `_collect`; anything
/// else is skipped, as `_waitall` does. As MPI's `Waitall`, every request is completed
/// before the first error is raised.
#[pyfunction]
pub(crate) fn wait_all(py: Python<'_>, requests: &Bound<'_, PyAny>) -> PyResult<()> {
    let Some(cls) = REQUEST.get(py) else {
        return Err(crate::errors::usage_error("shmpi.MPI is not imported"));
    };
    let cls = cls.bind(py);
    let mut first: Option<PyErr> = None;
    for r in requests.try_iter()? {
        let r = r?;
        if let Err(e) = wait_one(py, cls, &r) {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

fn wait_one(
    py: Python<'_>,
    cls: &Bound<'_, pyo3::types::PyType>,
    r: &Bound<'_, PyAny>,
) -> PyResult<()> {
    if !r.get_type().is(cls) {
        if r.is_instance(cls)? {
            r.call_method1(pyo3::intern!(py, "_collect"), (py.None(),))?;
        }
        return Ok(());
    }
    let raw = r.getattr(pyo3::intern!(py, "_raw"))?;
    if raw.is_none() {
        return Ok(());
    }
    let native = match raw.cast::<RawRequest>() {
        Ok(req) if !r.getattr(pyo3::intern!(py, "_obj"))?.is_truthy()? => req,
        _ => {
            r.call_method1(pyo3::intern!(py, "_collect"), (py.None(),))?;
            return Ok(());
        }
    };
    native.borrow_mut().wait(py)?;
    r.setattr(pyo3::intern!(py, "_raw"), py.None())?;
    r.setattr(pyo3::intern!(py, "_keep"), py.None())?;
    r.setattr(pyo3::intern!(py, "_id"), 0)
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
