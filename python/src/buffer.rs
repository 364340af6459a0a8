//! Python buffers (the buffer protocol) as byte slices, with no copy.
//!
//! mpi4py's uppercase methods take any contiguous buffer; which datatype it holds is
//! worked out on the Python side, which passes the object and the number of bytes
//! the message uses. Here the object's memory is borrowed for the call (or, in a
//! request, until the request is dropped).

use std::cell::RefCell;
use std::ffi::c_int;
use std::mem::ManuallyDrop;

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyList, PyTuple};

use crate::last::LastPair;
use crate::registry::{Registry, registry};

/// `[buf, count, datatype]` of a contiguous datatype as [`CollSpec::Counted`]; `None`
/// for any other spec.
fn counted<'py>(spec: &Bound<'py, PyAny>, reg: &Registry) -> PyResult<Option<CollSpec<'py>>> {
    let items = if let Ok(l) = spec.cast_exact::<PyList>() {
        if l.len() != 3 {
            return Ok(None);
        }
        (l.get_item(0)?, l.get_item(1)?, l.get_item(2)?)
    } else if let Ok(t) = spec.cast_exact::<PyTuple>() {
        if t.len() != 3 {
            return Ok(None);
        }
        (t.get_item(0)?, t.get_item(1)?, t.get_item(2)?)
    } else {
        return Ok(None);
    };
    let (buf, count, dt) = items;
    if buf.is_none() {
        return Ok(None);
    }
    let nbytes = match LAST_COUNT.with(|c| c.get(&count, &dt)) {
        Some(nbytes) => nbytes,
        None => {
            let nbytes = count_bytes(&count, &dt, reg)?;
            LAST_COUNT.with(|c| c.set(&count, &dt, nbytes));
            nbytes
        }
    };
    Ok(nbytes.map(|nbytes| CollSpec::Counted {
        buf,
        nbytes,
        datatype: dt,
    }))
}

/// The bytes of `count` elements of `dt`: `None` unless `count` is an `int` and `dt`
/// a contiguous `Datatype` (no holes) of a positive size.
fn count_bytes(
    count: &Bound<'_, PyAny>,
    dt: &Bound<'_, PyAny>,
    reg: &Registry,
) -> PyResult<Option<usize>> {
    let py = dt.py();
    if !count.is_exact_instance_of::<PyInt>() || !dt.get_type().is(reg.datatype.bind(py)) {
        return Ok(None);
    }
    if !dt.getattr(intern!(py, "_blocks"))?.is_none() {
        return Ok(None);
    }
    let size: usize = dt.getattr(intern!(py, "_size"))?.extract()?;
    let Ok(count) = count.extract::<usize>() else {
        return Ok(None);
    };
    if size == 0 {
        // `DATATYPE_NULL` (an error in a message) or an empty type: the package's
        // parser decides.
        return Ok(None);
    }
    // Saturating: a count past any buffer is the export's too-small error, not a
    // product that wraps to a small size.
    Ok(Some(count.saturating_mul(size)))
}

thread_local! {
    /// The bytes of the last `[buf, count, datatype]` spec's count and datatype (`None`:
    /// not a contiguous datatype): an `int` never changes, nor a datatype's size and
    /// layout once it is made.
    static LAST_COUNT: LastPair<Option<usize>> = const { LastPair::new() };
}

/// A point-to-point message spec as (buffer, bytes or `None` for all of it): a plain
/// buffer as it is; mpi4py's `[buf, count, datatype]` of a contiguous datatype read
/// here, as `Send`/`Recv` of mpi4py's OSU demos pass it on every call (two Python
/// calls to parse it cost more than the native call they precede); any other spec,
/// and `None`, by the package's parser, which raises mpi4py's errors and packs a send
/// of a datatype with holes.
pub(crate) fn p2p_spec<'py>(
    spec: &Bound<'py, PyAny>,
    peer: i32,
) -> PyResult<(Bound<'py, PyAny>, Option<usize>)> {
    p2p_parse(spec, peer, false).map(|(b, n, _)| (b, n))
}

/// A receive's buffer, its bytes (`None`: all of it) and the step that unpacks a
/// datatype with holes ([`p2p_recv_spec`]).
pub(crate) type RecvSpec<'py> = (Bound<'py, PyAny>, Option<usize>, Option<Bound<'py, PyAny>>);

/// [`p2p_spec`] for a receive, with, for a datatype with holes, the step that puts
/// the packed bytes in place once they have arrived (called with their length).
pub(crate) fn p2p_recv_spec<'py>(spec: &Bound<'py, PyAny>, peer: i32) -> PyResult<RecvSpec<'py>> {
    p2p_parse(spec, peer, true)
}

fn p2p_parse<'py>(spec: &Bound<'py, PyAny>, peer: i32, recv: bool) -> PyResult<RecvSpec<'py>> {
    let seq = spec.is_exact_instance_of::<PyList>() || spec.is_exact_instance_of::<PyTuple>();
    if !seq && !spec.is_none() {
        return Ok((spec.clone(), None, None));
    }
    let py = spec.py();
    let reg = registry(py)?;
    if let Some(CollSpec::Counted { buf, nbytes, .. }) = counted(spec, reg)? {
        return Ok((buf, Some(nbytes), None));
    }
    let parsed = reg.parse.bind(py).call1((spec, peer, recv))?;
    let unpack = Some(parsed.get_item(2)?).filter(|u| recv && u.is_callable());
    Ok((parsed.get_item(0)?, parsed.get_item(1)?.extract()?, unpack))
}

/// A collective's buffer spec in one of the two forms programs pass on every call.
pub(crate) enum CollSpec<'py> {
    /// A plain buffer: all of it.
    Whole(Bound<'py, PyAny>),
    /// `[buf, count, datatype]` of a contiguous datatype.
    Counted {
        buf: Bound<'py, PyAny>,
        /// Bytes of `count` elements.
        nbytes: usize,
        datatype: Bound<'py, PyAny>,
    },
}

impl<'py> CollSpec<'py> {
    pub(crate) fn buf(&self) -> &Bound<'py, PyAny> {
        match self {
            CollSpec::Whole(b) | CollSpec::Counted { buf: b, .. } => b,
        }
    }

    /// The bytes the spec names, `blocks` times (a count is per rank in the
    /// all-to-all and gather shapes, as MPI's recvcount); `None` for the whole buffer.
    pub(crate) fn nbytes(&self, blocks: usize) -> Option<usize> {
        match self {
            CollSpec::Whole(_) => None,
            CollSpec::Counted { nbytes, .. } => Some(nbytes.saturating_mul(blocks)),
        }
    }
}

/// A collective's spec read here when it is a plain buffer or `[buf, count,
/// datatype]` of a contiguous datatype, so that the collectives of mpi4py's OSU demos
/// make one native call; `None` for anything else (`IN_PLACE`, `None`, the other
/// spec forms), which the package's Python code parses.
pub(crate) fn coll_spec<'py>(spec: &Bound<'py, PyAny>) -> PyResult<Option<CollSpec<'py>>> {
    let py = spec.py();
    let reg = registry(py)?;
    if spec.is_exact_instance_of::<PyList>() || spec.is_exact_instance_of::<PyTuple>() {
        return counted(spec, reg);
    }
    if spec.is_none() || spec.is(reg.in_place.bind(py)) {
        return Ok(None);
    }
    Ok(Some(CollSpec::Whole(spec.clone())))
}

/// Whether a collective's send buffer means `MPI.IN_PLACE` (`None` does too, as in
/// mpi4py).
pub(crate) fn is_in_place(spec: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = spec.py();
    Ok(spec.is_none() || spec.is(registry(py)?.in_place.bind(py)))
}

/// The most released views' boxes kept for reuse (a call exports one or two buffers).
const SPARE_KEEP: usize = 4;

thread_local! {
    /// Boxes of released views: allocating and freeing a fresh one on every export
    /// was a seventh of the instructions of a small blocking collective.
    // Boxes, not values: each is handed out again as a view's fixed address.
    #[allow(clippy::vec_box)]
    static SPARE: RefCell<Vec<Box<ffi::Py_buffer>>> = const { RefCell::new(Vec::new()) };
}

/// Exports `obj`'s memory into `view` (read-only or writable) and returns the bytes
/// the operation uses: `nbytes`, or all of it. A non-contiguous buffer, or a read-only
/// one asked to be writable, is the exporter's `BufferError`; `nbytes` past the end is
/// a `ValueError`, and the view is then released again. On success the caller
/// releases `view` (`PyBuffer_Release`), which must not move until then.
fn export(
    obj: &Bound<'_, PyAny>,
    view: &mut ffi::Py_buffer,
    writable: bool,
    nbytes: Option<usize>,
) -> PyResult<usize> {
    // Any contiguous buffer, C or Fortran order (a transposed NumPy array), as mpi4py
    // takes it: its bytes in memory order.
    let flags: c_int = if writable {
        ffi::PyBUF_ANY_CONTIGUOUS | ffi::PyBUF_WRITABLE
    } else {
        ffi::PyBUF_ANY_CONTIGUOUS
    };
    // SAFETY: `obj` is a live object (the GIL is held through `Bound`) and `view` is a
    // `Py_buffer` that stays at one address until released.
    let rc = unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), view, flags) };
    if rc != 0 {
        let e = PyErr::take(obj.py())
            .unwrap_or_else(|| PyBufferError::new_err("object does not export a buffer"));
        // No buffer, but DLPack (a PyTorch tensor ...): its memory, as mpi4py takes it.
        if e.is_instance_of::<pyo3::exceptions::PyValueError>(obj.py()) {
            // NumPy's error for a non-contiguous array ("ndarray is not contiguous"):
            // mpi4py's is `BufferError`, as for any other exporter.
            return Err(PyBufferError::new_err(e.value(obj.py()).to_string()));
        }
        if !e.is_instance_of::<pyo3::exceptions::PyTypeError>(obj.py())
            || !crate::dlpack::offers(obj)
        {
            return Err(e);
        }
        let dl = crate::dlpack::dlpack_view(obj)?;
        // SAFETY: as above, for the view object, which the export then holds.
        if unsafe { ffi::PyObject_GetBuffer(dl.as_ptr(), view, flags) } != 0 {
            return Err(PyErr::take(obj.py())
                .unwrap_or_else(|| PyBufferError::new_err("dlpack: no buffer")));
        }
    }
    let total = view.len.max(0) as usize;
    match nbytes {
        None => Ok(total),
        Some(n) if n <= total => Ok(n),
        Some(n) => {
            // SAFETY: filled by the successful export above, released once.
            unsafe { ffi::PyBuffer_Release(view) };
            Err(pyo3::exceptions::PyValueError::new_err(format!(
                "message: buffer of {total} bytes is too small for the {n} bytes of its count and datatype"
            )))
        }
    }
}

/// An export on the stack frame of [`with_export`] or [`with_send_recv`], released
/// when it ends, also by a panic.
struct Export<'a, 'py> {
    view: &'a mut ffi::Py_buffer,
    _py: Python<'py>,
}

impl Drop for Export<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: the view was filled by a successful `export` and is released once,
        // with the GIL held (`_py`; a blocking call that released it has retaken it
        // before returning or unwinding, `comm::waiting`).
        unsafe { ffi::PyBuffer_Release(self.view) }
    }
}

/// Runs `f` with the address and the used length of `nbytes` (or all) of `obj`'s
/// memory, exported (writable if asked) for this call only: the view lives on this
/// frame and is released with the GIL the caller holds, where a [`RawBuf`], which a
/// request may own and drop anywhere, needs a box and asks for the GIL.
fn with_export<R>(
    obj: &Bound<'_, PyAny>,
    writable: bool,
    nbytes: Option<usize>,
    f: impl FnOnce(*mut u8, usize) -> PyResult<R>,
) -> PyResult<R> {
    let mut view = ffi::Py_buffer::new();
    let len = export(obj, &mut view, writable, nbytes)?;
    let e = Export {
        view: &mut view,
        _py: obj.py(),
    };
    f(e.view.buf as *mut u8, len)
}

/// Runs `f` on `nbytes` (or all) of `obj`'s memory, exported for this call only
/// ([`with_export`]). The blocking calls of inner loops use this.
pub(crate) fn with_bytes<R>(
    obj: &Bound<'_, PyAny>,
    nbytes: Option<usize>,
    f: impl FnOnce(&[u8]) -> PyResult<R>,
) -> PyResult<R> {
    with_export(obj, false, nbytes, |p, len| {
        if len == 0 {
            return f(&[]);
        }
        // SAFETY: the exporter keeps `buf` valid for `len <= view.len` bytes until the
        // release at the end of `with_export`, after `f` returns.
        f(unsafe { std::slice::from_raw_parts(p, len) })
    })
}

/// [`with_bytes`] for a buffer that the call writes (exported writable).
pub(crate) fn with_bytes_mut<R>(
    obj: &Bound<'_, PyAny>,
    nbytes: Option<usize>,
    f: impl FnOnce(&mut [u8]) -> PyResult<R>,
) -> PyResult<R> {
    with_export(obj, true, nbytes, |p, len| {
        if len == 0 {
            return f(&mut []);
        }
        // SAFETY: as in `with_bytes`; the view was requested writable, and this is the
        // only slice of it in Rust.
        f(unsafe { std::slice::from_raw_parts_mut(p, len) })
    })
}

/// Runs `f` on a send buffer (`None`: none) and a receive buffer, each exported for
/// this call only as in [`with_bytes`]. Where the two share memory (the same object
/// passed twice), the send bytes are copied first: Rust must not hold a shared and a
/// mutable slice of the same bytes.
pub(crate) fn with_send_recv<R>(
    send: Option<(&Bound<'_, PyAny>, Option<usize>)>,
    recv: Option<(&Bound<'_, PyAny>, Option<usize>)>,
    f: impl FnOnce(Option<&[u8]>, &mut [u8]) -> PyResult<R>,
) -> PyResult<R> {
    let mut sview = ffi::Py_buffer::new();
    let mut rview = ffi::Py_buffer::new();
    let slen = match send {
        Some((obj, nb)) => Some((export(obj, &mut sview, false, nb)?, obj.py())),
        None => None,
    };
    // Made before the receive's export, so that its failure releases this one.
    let se = slen.map(|(_, py)| Export {
        view: &mut sview,
        _py: py,
    });
    let rlen = match recv {
        Some((obj, nb)) => Some((export(obj, &mut rview, true, nb)?, obj.py())),
        None => None,
    };
    let re = rlen.map(|(_, py)| Export {
        view: &mut rview,
        _py: py,
    });
    let sp = se.as_ref().map(|e| e.view.buf as usize);
    let rp = re.as_ref().map(|e| e.view.buf as usize);
    let (sl, rl) = (slen.map_or(0, |(l, _)| l), rlen.map_or(0, |(l, _)| l));
    let overlap =
        matches!((sp, rp), (Some(a), Some(b)) if sl > 0 && rl > 0 && a < b + rl && b < a + sl);
    // SAFETY: each pointer is an export's, valid for its length until the exports are
    // released (after `f`); the receive view was requested writable; and the send
    // slice is made from the export only where it shares no byte with the receive
    // slice (otherwise from a copy).
    let copy: Option<Vec<u8>> = match sp {
        Some(a) if overlap => {
            Some(unsafe { std::slice::from_raw_parts(a as *const u8, sl) }.to_vec())
        }
        _ => None,
    };
    let sb: Option<&[u8]> = match (&copy, sp) {
        (Some(v), _) => Some(v),
        (None, Some(_)) if sl == 0 => Some(&[]),
        // SAFETY: as above, no overlap with the receive slice.
        (None, Some(a)) => Some(unsafe { std::slice::from_raw_parts(a as *const u8, sl) }),
        (None, None) => None,
    };
    let rb: &mut [u8] = match rp {
        // SAFETY: as above.
        Some(b) if rl > 0 => unsafe { std::slice::from_raw_parts_mut(b as *mut u8, rl) },
        _ => &mut [],
    };
    let out = f(sb, rb);
    drop(re);
    drop(se);
    out
}

/// A borrowed view of a Python object's contiguous memory (`Py_buffer`), released
/// on drop.
pub(crate) struct RawBuf {
    /// Boxed, so that it stays at one address while exported (exporters may point into
    /// it); taken back into `SPARE` on drop.
    view: ManuallyDrop<Box<ffi::Py_buffer>>,
    /// Bytes of the buffer the operation uses (at most the buffer's length).
    len: usize,
}

impl RawBuf {
    /// Borrows `obj`'s memory, `nbytes` of it (`None`: all), read-only or writable.
    /// A non-contiguous buffer, or a read-only one asked to be writable, is the
    /// exporter's `BufferError`; `nbytes` past the end is a `ValueError`.
    pub(crate) fn get(
        obj: &Bound<'_, PyAny>,
        writable: bool,
        nbytes: Option<usize>,
    ) -> PyResult<Self> {
        let mut view = match SPARE.with(|s| s.borrow_mut().pop()) {
            Some(mut v) => {
                *v = ffi::Py_buffer::new();
                v
            }
            None => Box::new(ffi::Py_buffer::new()),
        };
        let len = export(obj, &mut view, writable, nbytes)?;
        Ok(RawBuf {
            view: ManuallyDrop::new(view),
            len,
        })
    }

    /// Whether the whole buffer's elements (of the exporter's item size) split into
    /// `blocks` equal blocks, as mpi4py requires of a spec without a count.
    pub(crate) fn splits_into(&self, blocks: usize) -> bool {
        let item = usize::try_from(self.view.itemsize).unwrap_or(1).max(1);
        blocks == 0 || (self.len % item == 0 && (self.len / item) % blocks == 0)
    }

    /// The bytes the operation uses.
    pub(crate) fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the exporter keeps `buf` valid for `view.len >= self.len` bytes until
        // `PyBuffer_Release`, which only `Drop` calls.
        unsafe { std::slice::from_raw_parts(self.view.buf as *const u8, self.len) }
    }

    /// The bytes the operation uses, writable.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        if self.len == 0 {
            return &mut [];
        }
        debug_assert_eq!(self.view.readonly, 0, "asked for with PyBUF_WRITABLE");
        // SAFETY: as in `bytes`; the view was requested writable, and `&mut self`
        // makes this the only slice of it in Rust.
        unsafe { std::slice::from_raw_parts_mut(self.view.buf as *mut u8, self.len) }
    }

    /// Whether the used bytes of two views share no memory (Rust must not hold a
    /// shared and a mutable slice of the same bytes).
    pub(crate) fn disjoint(a: &RawBuf, b: &RawBuf) -> bool {
        let (a0, b0) = (a.view.buf as usize, b.view.buf as usize);
        a.len == 0 || b.len == 0 || a0 + a.len <= b0 || b0 + b.len <= a0
    }
}

// The runtime's non-blocking calls hold a `RawBuf` (boxed, at one address) and read or
// write its bytes in place until the request ends: the export stays alive that long.
impl AsRef<[u8]> for RawBuf {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

impl AsMut<[u8]> for RawBuf {
    fn as_mut(&mut self) -> &mut [u8] {
        self.bytes_mut()
    }
}

impl Drop for RawBuf {
    fn drop(&mut self) {
        // Releasing calls into the exporter, which needs the GIL. A `RawBuf` is dropped
        // inside a call (GIL held, or released by the idle hook while the call waits and
        // the engine finishes a request whose handle was dropped) or with the request
        // that owns it (any thread state pyo3 knows of).
        if crate::comm::gil_released() {
            // SAFETY: the view was filled by a successful `PyObject_GetBuffer` and is
            // released exactly once; `PyGILState_Ensure` takes the GIL the idle hook
            // released (this thread's state exists) and `PyGILState_Release` gives it
            // back, as the call that waits expects.
            unsafe {
                let g = ffi::PyGILState_Ensure();
                ffi::PyBuffer_Release(&mut **self.view);
                ffi::PyGILState_Release(g);
            }
        } else {
            Python::attach(|_| {
                // SAFETY: as above; `attach` takes the GIL if pyo3 had released it.
                unsafe { ffi::PyBuffer_Release(&mut **self.view) }
            });
        }
        // SAFETY: `drop` runs once, and `self.view` is not used after this.
        let view = unsafe { ManuallyDrop::take(&mut self.view) };
        // During thread teardown the spares may be gone: the box is then just freed.
        let _ = SPARE.try_with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < SPARE_KEEP {
                s.push(view);
            }
        });
    }
}

/// What a one-dimensional export says of its memory (`fill_1d`): its start, length in
/// bytes, element size and format, and its one shape and stride entries.
pub(crate) struct Export1d {
    pub(crate) buf: *mut std::ffi::c_void,
    pub(crate) len: isize,
    pub(crate) readonly: bool,
    pub(crate) itemsize: isize,
    pub(crate) format: &'static std::ffi::CStr,
    pub(crate) shape: *const isize,
    pub(crate) strides: *const isize,
    /// What `__releasebuffer__` will need (null: nothing).
    pub(crate) internal: *mut std::ffi::c_void,
}

/// Fills `view` with the one-dimensional export `e` held by `obj`, giving the format,
/// shape and strides only where `flags` asks for them (the buffer protocol's rules).
///
/// # Safety
///
/// `view` points to a `Py_buffer` the caller may fill, and `obj` is a new reference to
/// the exporter, which the view takes over; the pointers in `e` stay valid while it
/// lives.
pub(crate) unsafe fn fill_1d(
    view: *mut ffi::Py_buffer,
    flags: c_int,
    obj: *mut ffi::PyObject,
    e: Export1d,
) {
    let asked = |f: c_int| flags & f == f;
    // SAFETY: as the caller promises.
    unsafe {
        (*view).buf = e.buf;
        (*view).obj = obj;
        (*view).len = e.len;
        (*view).readonly = c_int::from(e.readonly);
        (*view).itemsize = e.itemsize;
        (*view).format = if asked(ffi::PyBUF_FORMAT) {
            e.format.as_ptr().cast_mut()
        } else {
            std::ptr::null_mut()
        };
        (*view).ndim = 1;
        (*view).shape = if asked(ffi::PyBUF_ND) {
            e.shape.cast_mut()
        } else {
            std::ptr::null_mut()
        };
        (*view).strides = if asked(ffi::PyBUF_STRIDES) {
            e.strides.cast_mut()
        } else {
            std::ptr::null_mut()
        };
        (*view).suboffsets = std::ptr::null_mut();
        (*view).internal = e.internal;
    }
}

/// A buffer's memory as one dimension of unsigned bytes in memory order, exported
/// under the rules of every other call ([`RawBuf::get`]: C or Fortran order, DLPack),
/// so that the Python package packs and unpacks datatypes with holes in the bytes
/// the other calls would move. It holds the export while it lives.
#[pyclass(unsendable, module = "shmpi._shmpi")]
pub(crate) struct ByteView {
    raw: RawBuf,
    writable: bool,
    /// The one dimension's shape and stride, pointed to by the exports.
    shape: [isize; 1],
    strides: [isize; 1],
}

#[pymethods]
impl ByteView {
    /// # Safety
    ///
    /// CPython calls it with a `Py_buffer` to fill (the buffer protocol).
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("byte view: no view to fill"));
        }
        let me = slf.borrow();
        if !me.writable && flags & ffi::PyBUF_WRITABLE == ffi::PyBUF_WRITABLE {
            return Err(PyBufferError::new_err("byte view: buffer is not writable"));
        }
        let e = Export1d {
            buf: me.raw.bytes().as_ptr() as *mut std::ffi::c_void,
            len: me.shape[0],
            readonly: !me.writable,
            itemsize: 1,
            format: c"B",
            shape: me.shape.as_ptr(),
            strides: me.strides.as_ptr(),
            internal: std::ptr::null_mut(),
        };
        drop(me);
        // SAFETY: `view` is the caller's to fill; the data (kept exported by `raw`),
        // the shape and the strides stay valid while `view.obj`, a new reference to
        // this object, is held, and nothing moves or drops `raw` before then.
        unsafe { fill_1d(view, flags, slf.into_any().into_ptr(), e) };
        Ok(())
    }

    /// # Safety
    ///
    /// CPython calls it to release an export of [`__getbuffer__`](Self::__getbuffer__),
    /// which allocated nothing; it then drops `view.obj` itself.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}

/// `obj`'s memory as a [`ByteView`], writable if asked: a buffer that is not
/// contiguous, or is read-only where `writable` is asked, is the exporter's error
/// (`BufferError`, NumPy's `ValueError`), raised here, before any message moves.
#[pyfunction]
pub(crate) fn byte_view(obj: &Bound<'_, PyAny>, writable: bool) -> PyResult<ByteView> {
    let raw = RawBuf::get(obj, writable, None)?;
    let len = raw.bytes().len() as isize;
    Ok(ByteView {
        raw,
        writable,
        shape: [len],
        strides: [1],
    })
}
