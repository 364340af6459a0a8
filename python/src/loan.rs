//! Zero-copy messages for Python: shmpi's loans (`Communicator::loan_slice`,
//! `send_loan`, `recv_loan`) as objects with the buffer protocol.
//!
//! A [`Loan`] is a writable buffer in this rank's loan pool in the shared segment;
//! [`send_loan`] hands its memory to the matched receiver without a copy, whose
//! [`LoanView`] exports the same bytes read-only and gives them back to the sender's
//! pool when it is released. The Rust rules hold across the buffer protocol: a loan
//! is sent only while nothing exports it (as `bytearray` refuses to resize), so no
//! memoryview can write it after it is sent, and a view gives its memory back only
//! once no export of it is left, so no memoryview reads memory the sender reuses.

use std::cell::Cell;
use std::ffi::c_int;

use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;

use crate::buffer::{Export1d, fill_1d};
use crate::comm::{RawComm, St, blocking_n, st};
use crate::comm_of;
use crate::errors::{ERR_TAG, raise, rank_error};

/// A writable buffer of `nbytes` bytes in this rank's loan pool (`shmpi.loans.loan`),
/// to fill through the buffer protocol and send with `send_loan`. Releasing it
/// unsent gives the memory back to the pool.
#[pyclass(unsendable, module = "shmpi._shmpi")]
pub(crate) struct Loan {
    /// `None` once sent or released.
    loan: Option<shmpi::Loan<u8>>,
    ex: Exports,
}

/// The buffer exports of a loan or a view: their count, and the one dimension's shape
/// and stride that they point to.
struct Exports {
    /// Exports not yet released.
    live: Cell<usize>,
    shape: [isize; 1],
    strides: [isize; 1],
}

impl Exports {
    fn new(len: usize) -> Self {
        Exports {
            live: Cell::new(0),
            shape: [len as isize],
            strides: [1],
        }
    }

    /// One more export of the `len` bytes at `buf`: what `fill_1d` writes into the
    /// caller's view.
    fn add(&self, buf: *mut std::ffi::c_void, readonly: bool) -> Export1d {
        self.live.set(self.live.get() + 1);
        Export1d {
            buf,
            len: self.shape[0],
            readonly,
            itemsize: 1,
            format: c"B",
            shape: self.shape.as_ptr(),
            strides: self.strides.as_ptr(),
            internal: std::ptr::null_mut(),
        }
    }

    fn release(&self) {
        self.live.set(self.live.get().saturating_sub(1));
    }

    /// A `BufferError` for `what` while an export is alive.
    fn refuse(&self, what: &str) -> PyResult<()> {
        match self.live.get() {
            0 => Ok(()),
            n => Err(PyBufferError::new_err(format!(
                "{what} while {n} buffer export(s) of it exist (a memoryview or a NumPy \
                 array made from it): release them first (memoryview.release(), del the \
                 array)"
            ))),
        }
    }
}

/// What an operation on a sent or released loan raises (as a released memoryview).
fn gone(what: &str) -> PyErr {
    PyValueError::new_err(format!("operation forbidden on a loan that was {what}"))
}

#[pymethods]
impl Loan {
    /// # Safety
    ///
    /// CPython calls it with a `Py_buffer` to fill (the buffer protocol).
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("loan: no view to fill"));
        }
        let mut me = slf.borrow_mut();
        let buf = match me.loan.as_mut() {
            Some(l) => l.as_mut_ptr(),
            None => return Err(gone("sent or released")),
        };
        let e = me.ex.add(buf.cast(), false);
        drop(me);
        // SAFETY: `view` is the caller's to fill; the loan's memory, the shape and the
        // strides stay valid while `view.obj`, a new reference to this object, is
        // held: the loan is neither sent nor released while an export is counted.
        unsafe { fill_1d(view, flags, slf.into_any().into_ptr(), e) };
        Ok(())
    }

    /// # Safety
    ///
    /// CPython calls it to release an export of [`__getbuffer__`](Self::__getbuffer__).
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        self.ex.release();
    }

    fn __len__(&self) -> usize {
        self.ex.shape[0] as usize
    }

    /// Whether the loan can still be written and sent (not sent, not released).
    #[getter]
    fn valid(&self) -> bool {
        self.loan.is_some()
    }

    /// Gives the memory back to the pool unsent. A no-op on a loan already sent or
    /// released.
    fn release(&mut self) -> PyResult<()> {
        self.take("release")?;
        Ok(())
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __exit__(
        &mut self,
        _ty: &Bound<'_, PyAny>,
        _value: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.release()
    }

    fn __repr__(&self) -> String {
        match self.loan {
            Some(_) => format!("<shmpi loan of {} bytes>", self.ex.shape[0]),
            None => "<shmpi loan, sent or released>".into(),
        }
    }
}

impl Loan {
    /// The loan, out of this object: refused while a buffer export of it is alive,
    /// which could otherwise write it after it leaves this rank.
    fn take(&mut self, what: &str) -> PyResult<Option<shmpi::Loan<u8>>> {
        self.ex.refuse(&format!("loan: cannot {what} it"))?;
        Ok(self.loan.take())
    }
}

/// A read-only view of a loan another rank sent (`shmpi.loans.recv_loan`): the
/// sender's memory, not a copy. Releasing it gives the memory back to the sender.
#[pyclass(unsendable, module = "shmpi._shmpi")]
pub(crate) struct LoanView {
    /// `None` once released.
    view: Option<shmpi::LoanView<u8>>,
    ex: Exports,
}

#[pymethods]
impl LoanView {
    /// # Safety
    ///
    /// CPython calls it with a `Py_buffer` to fill (the buffer protocol).
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("loan view: no view to fill"));
        }
        if flags & ffi::PyBUF_WRITABLE == ffi::PyBUF_WRITABLE {
            return Err(PyBufferError::new_err(
                "loan view: read-only (a received loan is the sender's memory)",
            ));
        }
        let me = slf.borrow();
        let buf = match me.view.as_ref() {
            Some(v) => v.as_ptr(),
            None => {
                return Err(PyValueError::new_err(
                    "operation forbidden on a released loan view",
                ));
            }
        };
        let e = me.ex.add(buf.cast_mut().cast(), true);
        drop(me);
        // SAFETY: `view` is the caller's to fill, read-only (writable requests were
        // refused above); the viewed memory, the shape and the strides stay valid
        // while `view.obj`, a new reference to this object, is held: the view is not
        // released while an export is counted.
        unsafe { fill_1d(view, flags, slf.into_any().into_ptr(), e) };
        Ok(())
    }

    /// # Safety
    ///
    /// CPython calls it to release an export of [`__getbuffer__`](Self::__getbuffer__).
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        self.ex.release();
    }

    fn __len__(&self) -> usize {
        self.ex.shape[0] as usize
    }

    /// Whether the view still holds the sender's memory (not released).
    #[getter]
    fn valid(&self) -> bool {
        self.view.is_some()
    }

    /// Gives the memory back to the sender's pool now (else when this object goes).
    /// Refused while a buffer export of it is alive; a no-op once released.
    fn release(&mut self) -> PyResult<()> {
        self.ex.refuse("loan view: cannot release it")?;
        self.view = None;
        Ok(())
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __exit__(
        &mut self,
        _ty: &Bound<'_, PyAny>,
        _value: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.release()
    }

    fn __repr__(&self) -> String {
        match self.view {
            Some(_) => format!("<shmpi loan view of {} bytes>", self.ex.shape[0]),
            None => "<shmpi loan view, released>".into(),
        }
    }
}

/// A loan of `nbytes` bytes from this rank's pool (`Communicator::loan_slice`): waits,
/// with the GIL released, while the pool is full of loans this rank sent and their
/// receivers still hold.
#[pyfunction]
pub(crate) fn loan(py: Python<'_>, comm: &RawComm, nbytes: usize) -> PyResult<Loan> {
    let c = comm_of(comm.id)?;
    let loan = blocking_n(py, &c, 0, |c| c.loan_slice::<u8>(nbytes))?;
    Ok(Loan {
        loan: Some(loan),
        ex: Exports::new(nbytes),
    })
}

/// Sends `loan` to `dest` with `tag` (`Communicator::send_loan`): the receiver reads
/// the same memory. The loan is spent: it can be neither written nor sent again.
#[pyfunction]
pub(crate) fn send_loan(
    py: Python<'_>,
    comm: &RawComm,
    loan: &Bound<'_, Loan>,
    dest: i32,
    tag: i32,
) -> PyResult<()> {
    let c = comm_of(comm.id)?;
    // The core gives a loan back to the pool when its send fails; checked here first,
    // a wrong rank or tag loses nothing the program wrote.
    let size = if c.is_inter() {
        c.remote_size()
    } else {
        c.size()
    };
    if dest != shmpi::PROC_NULL && !(0..size).contains(&dest) {
        return Err(rank_error(format!(
            "send_loan: invalid rank {dest}: valid ranks on this communicator are \
             0..{size} and PROC_NULL (the loan is kept)"
        )));
    }
    if !(0..=shmpi::TAG_UB).contains(&tag) {
        return Err(raise(
            ERR_TAG,
            format!(
                "send_loan: invalid tag {tag}: tags are 0..={} (the loan is kept)",
                shmpi::TAG_UB
            ),
        ));
    }
    let Some(l) = loan.borrow_mut().take("send")? else {
        return Err(gone("sent or released"));
    };
    blocking_n(py, &c, 0, |c| c.send_loan(l, dest, tag))
}

/// Receives a loan from `source` with `tag` (`Communicator::recv_loan`): a read-only
/// view of the sender's memory and the status.
#[pyfunction]
pub(crate) fn recv_loan(
    py: Python<'_>,
    comm: &RawComm,
    source: i32,
    tag: i32,
) -> PyResult<(LoanView, St)> {
    let c = comm_of(comm.id)?;
    let (view, s) = blocking_n(py, &c, 0, |c| c.recv_loan::<u8>(source, tag))?;
    let len = view.len();
    Ok((
        LoanView {
            view: Some(view),
            ex: Exports::new(len),
        },
        st(s),
    ))
}
