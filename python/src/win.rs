//! One-sided communication for the package's `MPI.Win`: shmpi's shared-memory windows
//! ([`shmpi::Window`]), one part per rank in one shared object that every rank maps.
//! Puts and gets copy at once (MPI's unified model, every call complete on return);
//! the accumulate family (`Accumulate`, `Get_accumulate`, `Fetch_and_op`,
//! `Compare_and_swap`) runs under the window's accumulate lock of the target
//! ([`shmpi::Window::modify`]), so those calls are atomic with respect to each other as
//! MPI requires, whatever the op and type: built-in ops on machine types are applied
//! here, any other op by the package's Python fold, called under the lock.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU8, Ordering};

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use shmpi::{LockKind, Reducible, SharedPart, Window};

use crate::buffer::{Export1d, RawBuf, fill_1d};
use crate::comm::RawComm;
use crate::errors::{self, to_py};
use crate::reduce::{self, Kind};

/// A window (`MPI_Win`), until it is freed.
#[pyclass(unsendable, module = "shmpi._shmpi")]
pub(crate) struct RawWin {
    win: Window,
    /// The export of a created window's memory (`Win.Create`), held until the window
    /// is freed: other ranks write into it until then.
    keep: Option<RawBuf>,
    freed: bool,
}

impl Drop for RawWin {
    fn drop(&mut self) {
        if !self.freed {
            // Never freed (MPI calls that erroneous): the other ranks may still write
            // into this memory, so its export is never released and the object never
            // freed.
            std::mem::forget(self.keep.take());
        }
    }
}

/// `cur = cur op src` on bytes read as `T` elements.
fn apply_as<T: Reducible>(op: shmpi::Op, cur: &mut [u8], src: &[u8]) {
    let mut a: Vec<T> = bytemuck::pod_collect_to_vec(cur);
    let b: Vec<T> = bytemuck::pod_collect_to_vec(src);
    T::apply(op, &mut a, &b);
    cur.copy_from_slice(bytemuck::cast_slice(&a));
}

/// [`apply_as`] for the element type `kind`.
fn apply(kind: Kind, op: shmpi::Op, cur: &mut [u8], src: &[u8]) {
    match kind {
        Kind::I8 => apply_as::<i8>(op, cur, src),
        Kind::I16 => apply_as::<i16>(op, cur, src),
        Kind::I32 => apply_as::<i32>(op, cur, src),
        Kind::I64 => apply_as::<i64>(op, cur, src),
        Kind::U8 => apply_as::<u8>(op, cur, src),
        Kind::U16 => apply_as::<u16>(op, cur, src),
        Kind::U32 => apply_as::<u32>(op, cur, src),
        Kind::U64 => apply_as::<u64>(op, cur, src),
        Kind::F32 => apply_as::<f32>(op, cur, src),
        Kind::F64 => apply_as::<f64>(op, cur, src),
    }
}

fn rank_arg(rank: i32) -> PyResult<i32> {
    if rank < 0 {
        return Err(errors::rank_error(format!(
            "a window's target rank must be >= 0, got {rank}"
        )));
    }
    Ok(rank)
}

#[pymethods]
impl RawWin {
    /// `MPI_Win_allocate_shared`: this rank's part of `bytes` bytes (zero-filled).
    /// Collective over `comm`.
    #[staticmethod]
    fn allocate_shared(py: Python<'_>, comm: &RawComm, bytes: usize) -> PyResult<Self> {
        let c = crate::comm_of(comm.id)?;
        let win = crate::comm::blocking(py, &c, |c| Window::allocate_shared(c, bytes))?;
        Ok(RawWin {
            win,
            keep: None,
            freed: false,
        })
    }

    /// `MPI_Win_create` over `memory` (a writable buffer; `None` for no bytes).
    /// Collective over `comm`.
    #[staticmethod]
    #[pyo3(signature = (comm, memory))]
    fn create(py: Python<'_>, comm: &RawComm, memory: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let c = crate::comm_of(comm.id)?;
        let mut keep = memory.map(|m| RawBuf::get(m, true, None)).transpose()?;
        let (base, len) = keep.as_mut().map_or((std::ptr::null_mut(), 0), |b| {
            let s = b.bytes_mut();
            (s.as_mut_ptr(), s.len())
        });
        // SAFETY: the export in `keep` holds the memory in place (an exporter may not
        // move or free exported memory) until the window is freed, and for ever if it
        // never is (`Drop`).
        let win = crate::comm::blocking(py, &c, |c| unsafe { Window::create(c, base, len) })?;
        Ok(RawWin {
            win,
            keep,
            freed: false,
        })
    }

    /// The size in bytes of `rank`'s part.
    fn part_size(&self, rank: i32) -> PyResult<usize> {
        Ok(self.win.shared_query(rank_arg(rank)?).map_err(to_py)?.0)
    }

    /// `rank`'s part as a buffer of bytes (`MPI_Win_shared_query`), mapped while any
    /// export of it lives, after `free` too.
    fn memory(&self, rank: i32) -> PyResult<WinMemory> {
        let part = self.win.shared_part(rank_arg(rank)?).map_err(to_py)?;
        Ok(WinMemory { part })
    }

    /// `MPI_Put` of `nbytes` of `buf` at byte `offset` of `rank`'s part.
    #[pyo3(signature = (buf, nbytes, rank, offset))]
    fn put(
        &self,
        buf: &Bound<'_, PyAny>,
        nbytes: Option<usize>,
        rank: i32,
        offset: usize,
    ) -> PyResult<()> {
        let b = RawBuf::get(buf, false, nbytes)?;
        self.win
            .put(b.bytes(), rank_arg(rank)?, offset)
            .map_err(to_py)
    }

    /// `MPI_Get` into `nbytes` of `buf` from byte `offset` of `rank`'s part.
    #[pyo3(signature = (buf, nbytes, rank, offset))]
    fn get(
        &self,
        buf: &Bound<'_, PyAny>,
        nbytes: Option<usize>,
        rank: i32,
        offset: usize,
    ) -> PyResult<()> {
        let mut b = RawBuf::get(buf, true, nbytes)?;
        self.win
            .get(b.bytes_mut(), rank_arg(rank)?, offset)
            .map_err(to_py)
    }

    /// The accumulate family on `nbytes` at byte `offset` of `rank`'s part, atomic with
    /// respect to the others: the old bytes into `result` (if given), then the target
    /// combined with `origin` by the built-in `op` on `ty` elements, or, without them,
    /// replaced by what `fold(old, origin)` returns (bytes of the same length; `None`
    /// leaves the target as it was). `fold` runs under the target's accumulate lock.
    #[pyo3(signature = (origin, result, rank, offset, nbytes, op, ty, fold))]
    #[allow(clippy::too_many_arguments)]
    fn rmw(
        &self,
        py: Python<'_>,
        origin: Option<&Bound<'_, PyAny>>,
        result: Option<&Bound<'_, PyAny>>,
        rank: i32,
        offset: usize,
        nbytes: usize,
        op: Option<u8>,
        ty: Option<&str>,
        fold: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let src = origin
            .map(|o| RawBuf::get(o, false, Some(nbytes)))
            .transpose()?;
        let mut res = result
            .map(|r| RawBuf::get(r, true, Some(nbytes)))
            .transpose()?;
        let native = match (op, ty) {
            (Some(op), Some(ty)) => Some((reduce::op(op)?, Kind::parse(ty)?)),
            _ => None,
        };
        let src_bytes: &[u8] = src.as_ref().map_or(&[], |s| s.bytes());
        if native.is_some() && src_bytes.len() != nbytes {
            return Err(errors::arg_error(
                "an accumulate needs an origin buffer".into(),
            ));
        }
        self.win
            .modify(
                rank_arg(rank)?,
                offset,
                nbytes,
                |cur: &mut [u8]| -> PyResult<()> {
                    if let Some(r) = res.as_mut() {
                        r.bytes_mut().copy_from_slice(cur);
                    }
                    if let Some((op, kind)) = native {
                        apply(kind, op, cur, src_bytes);
                    } else if let Some(f) = fold {
                        let old = PyBytes::new(py, cur);
                        let new = PyBytes::new(py, src_bytes);
                        let got = f.call1((old, new))?;
                        if !got.is_none() {
                            let b = RawBuf::get(&got, false, None)?;
                            if b.bytes().len() != cur.len() {
                                return Err(errors::arg_error(format!(
                                    "an accumulate's fold gave {} bytes for {}",
                                    b.bytes().len(),
                                    cur.len()
                                )));
                            }
                            cur.copy_from_slice(b.bytes());
                        }
                    }
                    Ok(())
                },
            )
            .map_err(to_py)?
    }

    /// `MPI_Compare_and_swap` of `nbytes` (one element) at byte `offset` of `rank`'s
    /// part: the old bytes into `result`, replaced by `origin` if they equal `compare`.
    fn compare_and_swap(
        &self,
        origin: &Bound<'_, PyAny>,
        compare: &Bound<'_, PyAny>,
        result: &Bound<'_, PyAny>,
        rank: i32,
        offset: usize,
        nbytes: usize,
    ) -> PyResult<()> {
        let new = RawBuf::get(origin, false, Some(nbytes))?;
        let cmp = RawBuf::get(compare, false, Some(nbytes))?;
        let mut res = RawBuf::get(result, true, Some(nbytes))?;
        self.win
            .modify(rank_arg(rank)?, offset, nbytes, |cur: &mut [u8]| {
                res.bytes_mut().copy_from_slice(cur);
                if cur == cmp.bytes() {
                    cur.copy_from_slice(new.bytes());
                }
            })
            .map_err(to_py)
    }

    fn fence(&self, py: Python<'_>) -> PyResult<()> {
        let c = self.win.comm().clone();
        crate::comm::blocking(py, &c, |_| self.win.fence())
    }

    fn lock(&self, py: Python<'_>, exclusive: bool, rank: i32) -> PyResult<()> {
        let kind = if exclusive {
            LockKind::Exclusive
        } else {
            LockKind::Shared
        };
        let c = self.win.comm().clone();
        let r = rank_arg(rank)?;
        crate::comm::blocking(py, &c, |_| self.win.lock(kind, r))
    }

    fn unlock(&self, rank: i32) -> PyResult<()> {
        self.win.unlock(rank_arg(rank)?).map_err(to_py)
    }

    fn lock_all(&self, py: Python<'_>) -> PyResult<()> {
        let c = self.win.comm().clone();
        crate::comm::blocking(py, &c, |_| self.win.lock_all())
    }

    fn unlock_all(&self) -> PyResult<()> {
        self.win.unlock_all().map_err(to_py)
    }

    fn flush(&self, rank: i32) -> PyResult<()> {
        self.win.flush(rank_arg(rank)?).map_err(to_py)
    }

    fn flush_all(&self) -> PyResult<()> {
        self.win.flush_all().map_err(to_py)
    }

    fn sync(&self) -> PyResult<()> {
        self.win.sync().map_err(to_py)
    }

    /// `MPI_Win_free`: collective; the parts handed out stay mapped while exported.
    fn free(&mut self, py: Python<'_>) -> PyResult<()> {
        let c = self.win.comm().clone();
        let win = &mut self.win;
        crate::comm::blocking(py, &c, |_| win.free())?;
        self.freed = true;
        self.keep = None;
        Ok(())
    }
}

/// A rank's part of a window as a writable buffer of bytes (what `Win.Shared_query`
/// and `Win.tomemory` return): it keeps the memory mapped while it or any export of it
/// lives, so a NumPy array over it never outlives the memory.
#[pyclass(unsendable, module = "shmpi._shmpi")]
pub(crate) struct WinMemory {
    part: SharedPart,
}

impl WinMemory {
    fn ptr(&self) -> *mut u8 {
        self.part.as_ptr()
    }

    fn len(&self) -> usize {
        self.part.len()
    }

    // Other processes may write the part at any time: Rust touches its bytes only
    // atomically (relaxed), as the window's own copies do.
    fn load(&self, at: usize) -> u8 {
        debug_assert!(at < self.len());
        // SAFETY: in bounds; the part stays mapped while `self` lives; a byte is always
        // aligned for `AtomicU8`, and every Rust access to shared memory is atomic.
        unsafe { AtomicU8::from_ptr(self.ptr().add(at)) }.load(Ordering::Relaxed)
    }

    fn store(&self, at: usize, v: u8) {
        debug_assert!(at < self.len());
        // SAFETY: as in `load`.
        unsafe { AtomicU8::from_ptr(self.ptr().add(at)) }.store(v, Ordering::Relaxed);
    }
}

/// A Python index into `n` bytes (negative from the end).
fn index(i: isize, n: usize) -> PyResult<usize> {
    let at = if i < 0 { i + n as isize } else { i };
    if at < 0 || at as usize >= n {
        return Err(pyo3::exceptions::PyIndexError::new_err(
            "window memory index out of range",
        ));
    }
    Ok(at as usize)
}

/// A slice of `n` bytes as (start, stop, step), step positive.
fn slice_of(key: &Bound<'_, PyAny>, n: usize) -> PyResult<(usize, usize, usize)> {
    let s = key.cast::<pyo3::types::PySlice>()?;
    let ind = s.indices(n as isize)?;
    if ind.step <= 0 {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "window memory: only slices with a positive step",
        ));
    }
    let stop = ind.stop.max(ind.start);
    Ok((ind.start as usize, stop as usize, ind.step as usize))
}

/// The shape and strides of a part's export: it has one dimension of bytes.
static ONE: [isize; 1] = [1];

#[pymethods]
impl WinMemory {
    /// # Safety
    ///
    /// CPython calls it with a view to fill (the buffer protocol).
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("window memory: no view to fill"));
        }
        let (ptr, len) = {
            let me = slf.borrow();
            (me.ptr(), me.len())
        };
        // The shape lives in the view's `internal` pointer's place: one isize per export.
        let shape = Box::into_raw(Box::new(len as isize));
        let e = Export1d {
            buf: ptr.cast::<c_void>(),
            len: len as isize,
            readonly: false,
            itemsize: 1,
            format: c"B",
            shape,
            strides: ONE.as_ptr(),
            internal: shape.cast::<c_void>(),
        };
        // SAFETY: `view` is the caller's to fill; the memory stays mapped while
        // `view.obj`, a new reference to this object, which holds the part, is held; the
        // shape is freed in `__releasebuffer__`, the strides and format are static.
        unsafe { fill_1d(view, flags, slf.clone().into_any().into_ptr(), e) };
        Ok(())
    }

    /// # Safety
    ///
    /// CPython calls it to release an export of [`__getbuffer__`](Self::__getbuffer__),
    /// whose shape it frees; CPython then drops `view.obj` itself.
    unsafe fn __releasebuffer__(&self, view: *mut ffi::Py_buffer) {
        // SAFETY: `internal` is the box `__getbuffer__` made for this view.
        unsafe {
            if !view.is_null() && !(*view).internal.is_null() {
                drop(Box::from_raw((*view).internal.cast::<isize>()));
                (*view).internal = std::ptr::null_mut();
            }
        }
    }

    fn __len__(&self) -> usize {
        self.len()
    }

    /// The element format, bytes (`MPI.buffer.format`).
    #[getter]
    fn format(&self) -> &'static str {
        "B"
    }

    /// A byte (an index) or a copy of some bytes (a slice), as `MPI.buffer` gives them.
    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let n = self.len();
        if let Ok(i) = key.extract::<isize>() {
            let at = index(i, n)?;
            return Ok(self.load(at).into_pyobject(py)?.into_any());
        }
        let (start, stop, step) = slice_of(key, n)?;
        let bytes: Vec<u8> = (start..stop).step_by(step).map(|k| self.load(k)).collect();
        Ok(PyBytes::new(py, &bytes).into_any())
    }

    /// Writes a byte (an index), or bytes of the slice's length or one byte value into
    /// every byte of it (a slice), as `MPI.buffer` does.
    fn __setitem__(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let n = self.len();
        if let Ok(i) = key.extract::<isize>() {
            let at = index(i, n)?;
            let v: u8 = value.extract()?;
            self.store(at, v);
            return Ok(());
        }
        let (start, stop, step) = slice_of(key, n)?;
        let at: Vec<usize> = (start..stop).step_by(step).collect();
        if let Ok(v) = value.extract::<u8>() {
            at.iter().for_each(|&k| self.store(k, v));
            return Ok(());
        }
        let src = RawBuf::get(value, false, None)?;
        if src.bytes().len() != at.len() {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "window memory: {} bytes for a slice of {}",
                src.bytes().len(),
                at.len()
            )));
        }
        at.iter()
            .zip(src.bytes())
            .for_each(|(&k, &v)| self.store(k, v));
        Ok(())
    }

    /// The part's address in this process (`MPI.buffer.address`).
    #[getter]
    fn address(&self) -> usize {
        self.ptr() as usize
    }

    /// The part's size in bytes (`MPI.buffer.nbytes`).
    #[getter]
    fn nbytes(&self) -> usize {
        self.len()
    }

    fn __repr__(&self) -> String {
        format!("<shmpi window memory of {} bytes>", self.len())
    }
}

/// The base of `MPI.Win`: its buffer protocol, which exports this rank's part of the
/// window (`Win.tomemory()`), as mpi4py's `memoryview(win)` does. A Python class gets
/// the protocol only from a native base before Python 3.12.
#[pyclass(subclass, module = "shmpi._shmpi")]
pub(crate) struct WinBase;

#[pymethods]
impl WinBase {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(
        _args: &Bound<'_, pyo3::types::PyTuple>,
        _kwargs: Option<&Bound<'_, pyo3::types::PyDict>>,
    ) -> Self {
        WinBase
    }

    /// # Safety
    ///
    /// CPython calls it with a view to fill (the buffer protocol).
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("window: no view to fill"));
        }
        let mem = slf.call_method0("tomemory")?;
        // SAFETY: `view` is the caller's to fill; `mem`'s own export fills it, with
        // `view.obj` a new reference to `mem`, so that releasing the view releases
        // `mem`'s export (CPython releases through the type of `view.obj`).
        if unsafe { ffi::PyObject_GetBuffer(mem.as_ptr(), view, flags) } != 0 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }
}
