//! `pickle.dumps(obj, 5)` and `pickle.loads(data)` done natively for the builtin types
//! small messages are made of, and handed to the standard library for everything else.
//!
//! A lowercase message of a small object spent most of its time creating a `Pickler`
//! and an `Unpickler` (docs/python.md has the figures). The encoder here writes the very bytes CPython's C pickler
//! writes at protocol 5 for `None`, `bool`, `int` (64-bit), `float`, `str`, `bytes`,
//! `tuple`, `list` and `dict` of exactly those types, memo included, so the wire format
//! stays raw pickle bytes any `pickle.loads` reads; it declines (and `pickle.dumps`
//! runs) on any other type or subclass, on strings that are not valid UTF-8, on deep or
//! large objects, and on a recursive tuple. The decoder reads the opcodes those bytes
//! use and declines on any other, or on anything malformed, so `pickle.loads` decides
//! every case the decoder does not (and raises its own errors). `tests/test_pickle5.py`
//! checks both against the standard library, byte for byte and object for object.
//!
//! The opcodes and the pickler's choices follow CPython's `Modules/_pickle.c`
//! (`save`, `save_long`, `batch_list_exact`, `batch_dict_exact`, `save_tuple`,
//! `_Pickler_CommitFrame`).

use std::cell::RefCell;

use pyo3::IntoPyObjectExt;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use smallvec::SmallVec;

const PROTO: u8 = 0x80;
const FRAME: u8 = 0x95;
const STOP: u8 = b'.';
const NONE: u8 = b'N';
const NEWTRUE: u8 = 0x88;
const NEWFALSE: u8 = 0x89;
const BININT1: u8 = b'K';
const BININT2: u8 = b'M';
const BININT: u8 = b'J';
const LONG1: u8 = 0x8a;
const BINFLOAT: u8 = b'G';
const SHORT_BINUNICODE: u8 = 0x8c;
const BINUNICODE: u8 = b'X';
const SHORT_BINBYTES: u8 = b'C';
const BINBYTES: u8 = b'B';
const MEMOIZE: u8 = 0x94;
const BINGET: u8 = b'h';
const LONG_BINGET: u8 = b'j';
const EMPTY_DICT: u8 = b'}';
const EMPTY_LIST: u8 = b']';
const EMPTY_TUPLE: u8 = b')';
const MARK: u8 = b'(';
const TUPLE1: u8 = 0x85;
const TUPLE2: u8 = 0x86;
const TUPLE3: u8 = 0x87;
const TUPLE: u8 = b't';
const SETITEM: u8 = b's';
const SETITEMS: u8 = b'u';
const APPEND: u8 = b'a';
const APPENDS: u8 = b'e';

/// The pickler's `BATCHSIZE`: lists and dicts go in batches of this many items.
const BATCH: usize = 1000;
/// The pickler's `FRAME_SIZE_MIN`: a shorter body is written without a frame.
const FRAME_MIN: usize = 4;
/// `PROTO 5` and the frame header.
const HEAD: usize = 2 + 9;
/// What the encoder takes on; beyond, `pickle.dumps`'s fixed cost no longer matters,
/// and a body under the pickler's 64 KiB frame target is one frame, as written here.
const MAX_BODY: usize = 32 * 1024;
const MAX_DEPTH: usize = 32;
/// Memoized objects (each `str`, `bytes` and container) are looked up by a linear scan.
const MAX_MEMO: usize = 64;

/// The standard library's `pickle.dumps` and `pickle.loads`.
static STD: PyOnceLock<(Py<PyAny>, Py<PyAny>)> = PyOnceLock::new();

fn std_pickle(py: Python<'_>) -> PyResult<&(Py<PyAny>, Py<PyAny>)> {
    STD.get_or_try_init(py, || {
        let m = py.import("pickle")?;
        Ok((m.getattr("dumps")?.unbind(), m.getattr("loads")?.unbind()))
    })
}

thread_local! {
    /// The encoder's output, kept between calls so that a message allocates nothing
    /// but its `bytes`.
    static OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// `pickle.dumps(obj, 5)`.
#[pyfunction]
pub(crate) fn dumps<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    match _native_dumps(py, obj) {
        Some(b) => Ok(b),
        None => std_dumps(py, obj),
    }
}

/// The standard library's `pickle.dumps(obj, 5)`, for an object the encoder declined.
pub(crate) fn std_dumps<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    Ok(std_pickle(py)?
        .0
        .bind(py)
        .call1((obj, 5))?
        .cast_into::<PyBytes>()?)
}

/// The object a lowercase message carries: `None` for an empty one (mpi4py's rule),
/// else `pickle.loads` of the bytes, decoded in place where the decoder reads them.
pub(crate) fn loads_message<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    if data.is_empty() {
        return Ok(py.None().into_bound(py));
    }
    if let Some(obj) = decode(py, data) {
        return Ok(obj);
    }
    std_pickle(py)?.1.bind(py).call1((PyBytes::new(py, data),))
}

/// `pickle.loads(data)` for `bytes`, or for any object the standard library reads.
#[pyfunction]
pub(crate) fn loads<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(b) = data.cast::<PyBytes>()
        && let Some(obj) = decode(py, b.as_bytes())
    {
        return Ok(obj);
    }
    std_pickle(py)?.1.bind(py).call1((data,))
}

/// The encoder alone: the bytes, or `None` where it declines (for the tests, which
/// hold it to `pickle.dumps`).
#[pyfunction]
pub(crate) fn _native_dumps<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
) -> Option<Bound<'py, PyBytes>> {
    with_encoded(obj, |bytes| PyBytes::new(py, bytes))
}

/// The decoder alone: `(obj,)`, or `None` where it declines (for the tests).
#[pyfunction]
pub(crate) fn _native_loads<'py>(py: Python<'py>, data: &[u8]) -> Option<Bound<'py, PyTuple>> {
    decode(py, data).and_then(|o| PyTuple::new(py, [o]).ok())
}

/// Calls `f` with `pickle.dumps(obj, 5)`'s bytes when the encoder takes `obj` on, and
/// returns `None` (having called nothing) when it declines.
pub(crate) fn with_encoded<R>(obj: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    OUT.with(|cell| {
        // A nested call gets its own: encoding runs no Python code, but `f` may (a
        // signal handler while a send waits).
        let mut fresh = Vec::new();
        let mut guard = cell.try_borrow_mut().ok();
        let out = match guard.as_deref_mut() {
            Some(v) => v,
            None => &mut fresh,
        };
        out.clear();
        let mut enc = Encoder {
            out,
            memo: SmallVec::new(),
        };
        enc.encode(obj).then(|| f(enc.out))
    })
}

struct Encoder<'a> {
    out: &'a mut Vec<u8>,
    /// The objects memoized so far, in memo order, by address (all are reachable from
    /// the object being encoded, which the caller holds, and no Python code runs).
    memo: SmallVec<[*mut ffi::PyObject; 16]>,
}

impl Encoder<'_> {
    /// Writes the whole pickle; false when the encoder declines.
    fn encode(&mut self, obj: &Bound<'_, PyAny>) -> bool {
        self.out
            .extend_from_slice(&[PROTO, 5, FRAME, 0, 0, 0, 0, 0, 0, 0, 0]);
        if self.save(obj, 0).is_none() {
            return false;
        }
        self.out.push(STOP);
        let body = self.out.len() - HEAD;
        if body < FRAME_MIN {
            self.out.drain(2..HEAD);
        } else {
            self.out[3..HEAD].copy_from_slice(&(body as u64).to_le_bytes());
        }
        true
    }

    /// `save`: `None` declines.
    fn save(&mut self, o: &Bound<'_, PyAny>, depth: usize) -> Option<()> {
        if self.out.len() > HEAD + MAX_BODY {
            return None;
        }
        // Atoms first, never memoized, as the pickler does.
        if o.is_none() {
            self.out.push(NONE);
            return Some(());
        }
        if let Ok(b) = o.cast_exact::<PyBool>() {
            self.out.push(if b.is_true() { NEWTRUE } else { NEWFALSE });
            return Some(());
        }
        if o.is_exact_instance_of::<PyInt>() {
            self.save_int(o.extract::<i64>().ok()?);
            return Some(());
        }
        if let Ok(f) = o.cast_exact::<PyFloat>() {
            self.out.push(BINFLOAT);
            self.out.extend_from_slice(&f.value().to_be_bytes());
            return Some(());
        }
        if let Some(i) = self.memo.iter().position(|&p| p == o.as_ptr()) {
            self.get(i);
            return Some(());
        }
        if let Ok(b) = o.cast_exact::<PyBytes>() {
            self.sized(b.as_bytes(), SHORT_BINBYTES, BINBYTES)?;
            return self.put(o);
        }
        if let Ok(s) = o.cast_exact::<PyString>() {
            // Lone surrogates (not UTF-8) go to the pickler's "surrogatepass".
            let s = s.to_str().ok()?;
            self.sized(s.as_bytes(), SHORT_BINUNICODE, BINUNICODE)?;
            return self.put(o);
        }
        if depth >= MAX_DEPTH {
            return None;
        }
        if let Ok(d) = o.cast_exact::<PyDict>() {
            self.out.push(EMPTY_DICT);
            self.put(o)?;
            return self.dict_items(d, depth + 1);
        }
        if let Ok(l) = o.cast_exact::<PyList>() {
            self.out.push(EMPTY_LIST);
            self.put(o)?;
            return self.list_items(l, depth + 1);
        }
        if let Ok(t) = o.cast_exact::<PyTuple>() {
            return self.tuple(t, depth + 1);
        }
        None
    }

    /// `save_long`: 1, 2 or 4 bytes when it fits a signed 32-bit integer, else
    /// `LONG1` with the fewest two's complement bytes.
    fn save_int(&mut self, v: i64) {
        if let Ok(v) = i32::try_from(v) {
            let b = v.to_le_bytes();
            if b[3] != 0 || b[2] != 0 {
                self.out.push(BININT);
                self.out.extend_from_slice(&b);
            } else if b[1] != 0 {
                self.out.extend_from_slice(&[BININT2, b[0], b[1]]);
            } else {
                self.out.extend_from_slice(&[BININT1, b[0]]);
            }
            return;
        }
        let bits = 64 - v.unsigned_abs().leading_zeros() as usize;
        let mut n = bits / 8 + 1;
        let b = i128::from(v).to_le_bytes();
        if v < 0 && n > 1 && b[n - 1] == 0xff && b[n - 2] & 0x80 != 0 {
            n -= 1;
        }
        self.out.extend_from_slice(&[LONG1, n as u8]);
        self.out.extend_from_slice(&b[..n]);
    }

    /// A `bytes` or `str` payload with its 1- or 4-byte length.
    fn sized(&mut self, data: &[u8], short: u8, long: u8) -> Option<()> {
        if data.len() > MAX_BODY {
            return None;
        }
        if data.len() <= 0xff {
            self.out.extend_from_slice(&[short, data.len() as u8]);
        } else {
            self.out.push(long);
            self.out
                .extend_from_slice(&(data.len() as u32).to_le_bytes());
        }
        self.out.extend_from_slice(data);
        Some(())
    }

    /// `memo_put`.
    fn put(&mut self, o: &Bound<'_, PyAny>) -> Option<()> {
        if self.memo.len() >= MAX_MEMO {
            return None;
        }
        self.memo.push(o.as_ptr());
        self.out.push(MEMOIZE);
        Some(())
    }

    /// `memo_get`.
    fn get(&mut self, i: usize) {
        match u8::try_from(i) {
            Ok(i) => self.out.extend_from_slice(&[BINGET, i]),
            Err(_) => {
                self.out.push(LONG_BINGET);
                self.out.extend_from_slice(&(i as u32).to_le_bytes());
            }
        }
    }

    /// `batch_dict_exact`: one pair with `SETITEM`, more in marked batches (and, as
    /// there, an empty batch after a full last one).
    fn dict_items(&mut self, d: &Bound<'_, PyDict>, depth: usize) -> Option<()> {
        let n = d.len();
        if n == 0 {
            return Some(());
        }
        let mut items = d.iter();
        if n == 1 {
            let (k, v) = items.next()?;
            self.save(&k, depth)?;
            self.save(&v, depth)?;
            self.out.push(SETITEM);
            return Some(());
        }
        loop {
            self.out.push(MARK);
            let mut i = 0;
            for (k, v) in items.by_ref() {
                self.save(&k, depth)?;
                self.save(&v, depth)?;
                i += 1;
                if i == BATCH {
                    break;
                }
            }
            self.out.push(SETITEMS);
            if i != BATCH {
                return Some(());
            }
        }
    }

    /// `batch_list_exact`: one item with `APPEND`, more in marked batches.
    fn list_items(&mut self, l: &Bound<'_, PyList>, depth: usize) -> Option<()> {
        let n = l.len();
        if n == 1 {
            self.save(&l.get_item(0).ok()?, depth)?;
            self.out.push(APPEND);
            return Some(());
        }
        let mut done = 0;
        while done < n {
            self.out.push(MARK);
            let end = n.min(done + BATCH);
            for i in done..end {
                self.save(&l.get_item(i).ok()?, depth)?;
            }
            done = end;
            self.out.push(APPENDS);
        }
        Some(())
    }

    /// `save_tuple`: the items, then `TUPLE1..3` or a marked `TUPLE`, then memoized.
    fn tuple(&mut self, t: &Bound<'_, PyTuple>, depth: usize) -> Option<()> {
        let n = t.len();
        if n == 0 {
            self.out.push(EMPTY_TUPLE);
            return Some(());
        }
        if n > 3 {
            self.out.push(MARK);
        }
        for item in t.iter() {
            self.save(&item, depth)?;
        }
        // Memoized while its items were saved: a recursive tuple, which the pickler
        // writes with POPs; left to it.
        if self.memo.contains(&t.as_ptr()) {
            return None;
        }
        self.out.push(match n {
            1 => TUPLE1,
            2 => TUPLE2,
            3 => TUPLE3,
            _ => TUPLE,
        });
        self.put(t.as_any())
    }
}

/// What `pickle.loads(data)` returns, when `data` uses only the opcodes the encoder
/// writes and is well formed: one object on the stack at `STOP`, the last byte.
/// `None` otherwise, with no effect but objects created and dropped.
pub(crate) fn decode<'py>(py: Python<'py>, data: &[u8]) -> Option<Bound<'py, PyAny>> {
    Decoder {
        py,
        data,
        at: 0,
        stack: SmallVec::new(),
        marks: SmallVec::new(),
        memo: SmallVec::new(),
    }
    .run()
}

/// A `str` from UTF-8 with lone surrogates allowed, as the unpickler decodes it.
fn utf8<'py>(py: Python<'py>, b: &[u8]) -> Option<Bound<'py, PyAny>> {
    let len = isize::try_from(b.len()).ok()?;
    // SAFETY: `b` is valid for `len` bytes and the error handler's name is a C string;
    // the result is a new reference or null with an exception set (taken by `ok()`).
    unsafe {
        let o = ffi::PyUnicode_DecodeUTF8(b.as_ptr().cast(), len, c"surrogatepass".as_ptr());
        Bound::from_owned_ptr_or_err(py, o).ok()
    }
}

struct Decoder<'py, 'd> {
    py: Python<'py>,
    data: &'d [u8],
    at: usize,
    // On the stack up to a small message's size: heap vectors were a large part of a
    // small object's decode (docs/python.md).
    stack: SmallVec<[Bound<'py, PyAny>; 16]>,
    /// Stack lengths at each `MARK`.
    marks: SmallVec<[usize; 8]>,
    memo: SmallVec<[Bound<'py, PyAny>; 16]>,
}

impl<'py, 'd> Decoder<'py, 'd> {
    fn take(&mut self, n: usize) -> Option<&'d [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.data.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }

    fn u32(&mut self) -> Option<usize> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize)
    }

    fn push(&mut self, o: impl IntoPyObject<'py>) -> Option<()> {
        self.stack.push(o.into_bound_py_any(self.py).ok()?);
        Some(())
    }

    fn pop(&mut self) -> Option<Bound<'py, PyAny>> {
        if self.stack.len() <= self.marks.last().copied().unwrap_or(0) {
            return None;
        }
        self.stack.pop()
    }

    /// The items above the last mark, and the mark gone.
    fn pop_mark(&mut self) -> Option<SmallVec<[Bound<'py, PyAny>; 16]>> {
        let m = self.marks.pop()?;
        Some(self.stack.drain(m..).collect())
    }

    fn run(mut self) -> Option<Bound<'py, PyAny>> {
        let py = self.py;
        loop {
            match self.byte()? {
                PROTO => {
                    if self.byte()? > 5 {
                        return None;
                    }
                }
                FRAME => {
                    let n = u64::from_le_bytes(self.take(8)?.try_into().ok()?);
                    if n > (self.data.len() - self.at) as u64 {
                        return None;
                    }
                }
                NONE => self.push(py.None())?,
                NEWTRUE => self.push(true)?,
                NEWFALSE => self.push(false)?,
                BININT1 => {
                    let v = self.byte()?;
                    self.push(v)?;
                }
                BININT2 => {
                    let v = u16::from_le_bytes(self.take(2)?.try_into().ok()?);
                    self.push(v)?;
                }
                BININT => {
                    let v = i32::from_le_bytes(self.take(4)?.try_into().ok()?);
                    self.push(v)?;
                }
                LONG1 => {
                    let n = usize::from(self.byte()?);
                    let b = self.take(n)?;
                    if n > 8 {
                        return None;
                    }
                    let fill = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                        0xff
                    } else {
                        0
                    };
                    let mut w = [fill; 8];
                    w[..n].copy_from_slice(b);
                    self.push(i64::from_le_bytes(w))?;
                }
                BINFLOAT => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().ok()?);
                    self.push(v)?;
                }
                SHORT_BINUNICODE | BINUNICODE => {
                    let n = if self.data[self.at - 1] == BINUNICODE {
                        self.u32()?
                    } else {
                        usize::from(self.byte()?)
                    };
                    let s = utf8(py, self.take(n)?)?;
                    self.stack.push(s);
                }
                SHORT_BINBYTES | BINBYTES => {
                    let n = if self.data[self.at - 1] == BINBYTES {
                        self.u32()?
                    } else {
                        usize::from(self.byte()?)
                    };
                    let b = self.take(n)?;
                    self.push(PyBytes::new(py, b))?;
                }
                MEMOIZE => {
                    let top = self.pop()?;
                    self.memo.push(top.clone());
                    self.stack.push(top);
                }
                BINGET | LONG_BINGET => {
                    let i = if self.data[self.at - 1] == LONG_BINGET {
                        self.u32()?
                    } else {
                        usize::from(self.byte()?)
                    };
                    let o = self.memo.get(i)?.clone();
                    self.stack.push(o);
                }
                EMPTY_DICT => self.push(PyDict::new(py))?,
                EMPTY_LIST => self.push(PyList::empty(py))?,
                EMPTY_TUPLE => self.push(PyTuple::empty(py))?,
                MARK => self.marks.push(self.stack.len()),
                op @ (TUPLE1 | TUPLE2 | TUPLE3) => {
                    let n = usize::from(op - TUPLE1 + 1);
                    let floor = self.marks.last().copied().unwrap_or(0);
                    if self.stack.len() < floor + n {
                        return None;
                    }
                    let items = self.stack.drain(self.stack.len() - n..);
                    let t = PyTuple::new(py, items).ok()?;
                    self.push(t)?;
                }
                TUPLE => {
                    let items = self.pop_mark()?;
                    self.push(PyTuple::new(py, items).ok()?)?;
                }
                SETITEM => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let d = self.pop()?;
                    d.cast::<PyDict>().ok()?.set_item(k, v).ok()?;
                    self.stack.push(d);
                }
                SETITEMS => {
                    let items = self.pop_mark()?;
                    let d = self.pop()?;
                    let dict = d.cast::<PyDict>().ok()?;
                    if items.len() % 2 != 0 {
                        return None;
                    }
                    for kv in items.chunks_exact(2) {
                        dict.set_item(&kv[0], &kv[1]).ok()?;
                    }
                    self.stack.push(d);
                }
                APPEND => {
                    let v = self.pop()?;
                    let l = self.pop()?;
                    l.cast::<PyList>().ok()?.append(v).ok()?;
                    self.stack.push(l);
                }
                APPENDS => {
                    let items = self.pop_mark()?;
                    let l = self.pop()?;
                    let list = l.cast::<PyList>().ok()?;
                    for v in items {
                        list.append(v).ok()?;
                    }
                    self.stack.push(l);
                }
                STOP => {
                    if self.at != self.data.len() || !self.marks.is_empty() || self.stack.len() != 1
                    {
                        return None;
                    }
                    return self.stack.pop();
                }
                _ => return None,
            }
        }
    }
}
