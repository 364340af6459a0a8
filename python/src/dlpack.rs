//! Arrays that export their memory through DLPack (`__dlpack__`) rather than the
//! buffer protocol: PyTorch's and JAX's tensors on the CPU, NumPy's too. mpi4py takes
//! them wherever it takes a buffer (`asdlpack.pxi`); so does shmpi, for host memory.
//!
//! The array's capsule is read as mpi4py reads it, without consuming it: a
//! [`DLPackView`] holds the capsule, so the producer's memory lives as long as any
//! view of it, and the producer's own capsule destructor frees it after. The view
//! exports the tensor's bytes, in memory order, as a one-dimensional buffer of its
//! element type (`struct` code), which `memoryview` and shmpi's buffer code read like
//! any other.

use std::ffi::{CStr, c_int, c_void};

use pyo3::exceptions::{PyBufferError, PyTypeError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::buffer::{Export1d, fill_1d};

#[repr(C)]
struct DLDevice {
    device_type: i32,
    device_id: i32,
}

#[repr(C)]
struct DLDataType {
    code: u8,
    bits: u8,
    lanes: u16,
}

#[repr(C)]
struct DLTensor {
    data: *mut c_void,
    device: DLDevice,
    ndim: i32,
    dtype: DLDataType,
    shape: *const i64,
    strides: *const i64,
    byte_offset: u64,
}

/// DLPack before 1.0 (capsule `dltensor`).
#[repr(C)]
struct DLManagedTensor {
    dl_tensor: DLTensor,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DLManagedTensor)>,
}

#[repr(C)]
struct DLPackVersion {
    major: u32,
    minor: u32,
}

/// DLPack 1.0 and later (capsule `dltensor_versioned`).
#[repr(C)]
struct DLManagedTensorVersioned {
    version: DLPackVersion,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DLManagedTensorVersioned)>,
    flags: u64,
    dl_tensor: DLTensor,
}

const KDL_CPU: i32 = 1;
const FLAG_READ_ONLY: u64 = 1;
const CODE_INT: u8 = 0;
const CODE_UINT: u8 = 1;
const CODE_FLOAT: u8 = 2;
const CODE_COMPLEX: u8 = 5;
const CODE_BOOL: u8 = 6;

/// The memory of a DLPack tensor in host memory, exported through the buffer
/// protocol as one dimension of its elements.
#[pyclass(frozen, module = "shmpi._shmpi")]
pub(crate) struct DLPackView {
    /// The producer's capsule: its memory stays valid while the capsule lives.
    _capsule: Py<PyAny>,
    addr: usize,
    len: isize,
    readonly: bool,
    format: &'static CStr,
    itemsize: isize,
    /// Shape and strides of the one dimension, pointed to by the exports.
    shape: [isize; 1],
    strides: [isize; 1],
}

#[pymethods]
impl DLPackView {
    /// # Safety
    ///
    /// CPython calls it with a `Py_buffer` to fill (the buffer protocol).
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let me = slf.get();
        if view.is_null() {
            return Err(PyBufferError::new_err("dlpack: no view to fill"));
        }
        if me.readonly && flags & ffi::PyBUF_WRITABLE == ffi::PyBUF_WRITABLE {
            return Err(PyBufferError::new_err("dlpack: buffer is not writable"));
        }
        let e = Export1d {
            buf: me.addr as *mut c_void,
            len: me.len,
            readonly: me.readonly,
            itemsize: me.itemsize,
            format: me.format,
            shape: me.shape.as_ptr(),
            strides: me.strides.as_ptr(),
            internal: std::ptr::null_mut(),
        };
        // SAFETY: `view` is the caller's to fill; the pointers stored in it (the data,
        // the shape, the strides, the format) stay valid while `view.obj`, a new
        // reference to this frozen object, which holds the capsule, is held.
        unsafe { fill_1d(view, flags, slf.clone().into_any().into_ptr(), e) };
        Ok(())
    }

    /// # Safety
    ///
    /// CPython calls it to release an export of [`__getbuffer__`](Self::__getbuffer__),
    /// which allocated nothing; it then drops `view.obj` itself.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}

    fn __repr__(&self) -> String {
        format!(
            "<shmpi DLPack view of {} bytes, format {:?}{}>",
            self.len,
            self.format,
            if self.readonly { ", read-only" } else { "" }
        )
    }
}

/// Whether `obj` offers DLPack (and so may be read through [`view`] where it has no
/// buffer).
pub(crate) fn offers(obj: &Bound<'_, PyAny>) -> bool {
    obj.hasattr(intern!(obj.py(), "__dlpack__"))
        .unwrap_or(false)
}

/// A [`DLPackView`] of `obj`'s memory, got as mpi4py gets it: the device first (host
/// memory only: shmpi's ranks share no device), then a capsule of DLPack 1.0 (a
/// read-only flag honoured), or of an earlier version from an array that does not take
/// `max_version`. A tensor that is not contiguous (C or Fortran order) is a
/// `BufferError`, as for a buffer.
#[pyfunction]
pub(crate) fn dlpack_view<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, DLPackView>> {
    let py = obj.py();
    let (Ok(dlpack), Ok(device)) = (
        obj.getattr(intern!(py, "__dlpack__")),
        obj.getattr(intern!(py, "__dlpack_device__")),
    ) else {
        return Err(PyTypeError::new_err(format!(
            "message: expecting a buffer or a DLPack array, got {}",
            obj.get_type().name()?
        )));
    };
    let (device_type, _device_id): (i32, i32) = device.call0()?.extract()?;
    if device_type != KDL_CPU {
        return Err(PyBufferError::new_err(format!(
            "dlpack: the array is on device type {device_type}, not in host memory (type \
             {KDL_CPU}); shmpi's ranks move host memory only: copy it to the CPU first"
        )));
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "max_version"), PyTuple::new(py, [1u32, 0])?)?;
    kwargs.set_item(intern!(py, "copy"), false)?;
    let (capsule, versioned) = match dlpack.call((), Some(&kwargs)) {
        Ok(c) => (c, true),
        Err(e) if e.is_instance_of::<PyTypeError>(py) => (dlpack.call0()?, false),
        Err(e) => return Err(e),
    };
    let name: &CStr = if versioned {
        c"dltensor_versioned"
    } else {
        c"dltensor"
    };
    // SAFETY: `capsule` is a live object; the check and the lookup read only it.
    let pointer = unsafe {
        if ffi::PyCapsule_IsValid(capsule.as_ptr(), name.as_ptr()) == 0 {
            return Err(PyBufferError::new_err("dlpack: invalid capsule object"));
        }
        ffi::PyCapsule_GetPointer(capsule.as_ptr(), name.as_ptr())
    };
    if pointer.is_null() {
        return Err(PyErr::take(py)
            .unwrap_or_else(|| PyBufferError::new_err("dlpack: invalid capsule object")));
    }
    // SAFETY: a valid capsule of this name holds the producer's managed tensor, which
    // lives (unconsumed) as long as the capsule, held here.
    let (tensor, readonly) = unsafe {
        if versioned {
            let m = &*(pointer as *const DLManagedTensorVersioned);
            if m.version.major < 1 {
                return Err(PyBufferError::new_err("dlpack: unexpected version"));
            }
            (&m.dl_tensor, m.flags & FLAG_READ_ONLY != 0)
        } else {
            (&(*(pointer as *const DLManagedTensor)).dl_tensor, false)
        }
    };
    // SAFETY: the producer's shape and strides hold `ndim` entries each (strides may be
    // null: compact, C order).
    let (shape, strides) = unsafe { dims(tensor)? };
    if !contiguous(shape, strides, false) && !contiguous(shape, strides, true) {
        return Err(PyBufferError::new_err("dlpack: buffer is not contiguous"));
    }
    let count: i64 = shape.iter().product();
    let (format, itemsize) = format_of(&tensor.dtype);
    let elem = (i64::from(tensor.dtype.bits) * i64::from(tensor.dtype.lanes) + 7) / 8;
    let len = count
        .checked_mul(elem)
        .and_then(|n| isize::try_from(n).ok())
        .ok_or_else(|| PyBufferError::new_err("dlpack: the array's size overflows"))?;
    // An element type whose size does not divide the bytes is read as bytes.
    let (format, itemsize) = if len % itemsize == 0 {
        (format, itemsize)
    } else {
        (c"B", 1)
    };
    let addr = tensor.data as usize + tensor.byte_offset as usize;
    Bound::new(
        py,
        DLPackView {
            _capsule: capsule.unbind(),
            addr,
            len,
            readonly,
            format,
            itemsize,
            shape: [len / itemsize],
            strides: [itemsize],
        },
    )
}

/// The tensor's shape and strides (empty for a scalar; strides empty when null).
///
/// # Safety
///
/// `t.shape` and, unless null, `t.strides` point to `t.ndim` entries each.
unsafe fn dims(t: &DLTensor) -> PyResult<(&[i64], &[i64])> {
    let n = usize::try_from(t.ndim)
        .map_err(|_| PyBufferError::new_err("dlpack: number of dimensions is negative"))?;
    if n > 0 && t.shape.is_null() {
        return Err(PyBufferError::new_err("dlpack: shape is NULL"));
    }
    // SAFETY: the caller's promise.
    let shape = if n == 0 {
        &[][..]
    } else {
        unsafe { std::slice::from_raw_parts(t.shape, n) }
    };
    let strides = if n == 0 || t.strides.is_null() {
        &[][..]
    } else {
        // SAFETY: the caller's promise.
        unsafe { std::slice::from_raw_parts(t.strides, n) }
    };
    if shape.iter().chain(strides).any(|&d| d < 0) {
        return Err(PyBufferError::new_err(
            "dlpack: shape or strides item is negative",
        ));
    }
    Ok((shape, strides))
}

/// Whether elements laid out by `shape` and `strides` (in elements; none: compact C
/// order) are contiguous in C order, or in Fortran order if `fortran`.
fn contiguous(shape: &[i64], strides: &[i64], fortran: bool) -> bool {
    if strides.is_empty() {
        return !fortran || shape.len() <= 1;
    }
    let mut size = 1;
    let order: Box<dyn Iterator<Item = usize>> = if fortran {
        Box::new(0..shape.len())
    } else {
        Box::new((0..shape.len()).rev())
    };
    for i in order {
        if shape[i] > 1 && strides[i] != size {
            return false;
        }
        size *= shape[i];
    }
    true
}

/// The `struct` code and item size of a DLPack element type, as mpi4py names them
/// (`asdlpack.pxi`); raw bytes (`B`, 1) for any other.
fn format_of(t: &DLDataType) -> (&'static CStr, isize) {
    let bits = t.bits;
    if t.lanes != 1 {
        return match (t.code, t.lanes, bits) {
            (CODE_FLOAT, 2, 32) => (c"Zf", 8),
            (CODE_FLOAT, 2, 64) => (c"Zd", 16),
            (CODE_FLOAT, 2, 128) => (c"Zg", 32),
            _ => (c"B", 1),
        };
    }
    match (t.code, bits) {
        (CODE_BOOL, 8) => (c"?", 1),
        (CODE_INT, 8) => (c"b", 1),
        (CODE_INT, 16) => (c"h", 2),
        (CODE_INT, 32) => (c"i", 4),
        (CODE_INT, 64) => (c"l", 8),
        (CODE_UINT, 8) => (c"B", 1),
        (CODE_UINT, 16) => (c"H", 2),
        (CODE_UINT, 32) => (c"I", 4),
        (CODE_UINT, 64) => (c"L", 8),
        (CODE_FLOAT, 16) => (c"e", 2),
        (CODE_FLOAT, 32) => (c"f", 4),
        (CODE_FLOAT, 64) => (c"d", 8),
        // C's `long double` on x86-64 and AArch64 Linux: 16 bytes.
        (CODE_FLOAT, 128) => (c"g", 16),
        (CODE_COMPLEX, 64) => (c"Zf", 8),
        (CODE_COMPLEX, 128) => (c"Zd", 16),
        _ => (c"B", 1),
    }
}
