//! `RawComm`: a communicator handle and its calls, in bytes.
//!
//! Every message and non-reducing collective moves bytes (`u8` slices), so ranks
//! agree on element sizes whatever datatypes their Python code names; reductions go
//! through `reduce.rs`, typed by the element type the Python side names.

use std::cell::Cell;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::buffer::{
    CollSpec, RawBuf, coll_spec, is_in_place, with_bytes, with_bytes_mut, with_send_recv,
};
use crate::comm_of;
use crate::errors::{self, to_py};
use crate::message::RawMessage;
use crate::reduce::{self, Which};
use crate::request::RawRequest;

/// A message's status as Python sees it: (source, tag, bytes).
pub(crate) type St = (i32, i32, usize);

pub(crate) fn st(s: shmpi::Status) -> St {
    (s.source(), s.tag(), s.len())
}

thread_local! {
    /// Whether `waiting` is running calls on this thread with the GIL held, which
    /// `release_gil` may then release.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    /// The thread state `release_gil` saved when it released the GIL; null while held.
    static SAVED: Cell<*mut pyo3::ffi::PyThreadState> = const { Cell::new(std::ptr::null_mut()) };
}

/// shmpi's idle hook (`shmpi::set_idle_hook`, set at init): a call in `waiting` that
/// has to wait releases the GIL at its first idle step, so that other threads run.
pub(crate) fn release_gil() {
    if ARMED.get() && SAVED.get().is_null() {
        // SAFETY: `ARMED` is set only while `waiting` runs shmpi calls on this thread
        // with the GIL held (it has a `Python` token) and `SAVED` is null, so this
        // thread holds the GIL here. The calls touch no Python object but buffer
        // exports the engine may drop, which take the GIL themselves (`RawBuf::drop`
        // asks `gil_released`); `Reacquire` takes it back before `waiting` returns or
        // unwinds.
        SAVED.set(unsafe { pyo3::ffi::PyEval_SaveThread() });
    }
}

/// Whether `release_gil` has released the GIL on this thread, inside a call that waits.
/// pyo3 does not know of it (`Python::attach` would then assume the GIL is held), so
/// code that shmpi may run meanwhile and that needs the GIL (a buffer export released
/// when the engine drops a finished request's buffer) asks this.
pub(crate) fn gil_released() -> bool {
    !SAVED.get().is_null()
}

/// Ends `waiting`: retakes the GIL if `release_gil` released it.
struct Reacquire;

impl Drop for Reacquire {
    fn drop(&mut self) {
        ARMED.set(false);
        let ts = SAVED.replace(std::ptr::null_mut());
        if !ts.is_null() {
            // SAFETY: `ts` is what `PyEval_SaveThread` returned on this thread.
            unsafe { pyo3::ffi::PyEval_RestoreThread(ts) };
        }
    }
}

/// Calls moving fewer bytes than this keep the GIL unless they wait; larger ones
/// release it from the start: their copies take far longer than the release and
/// retake, and other threads should run meanwhile (as mpi4py lets them), even when
/// the peer keeps pace and the call never idles.
pub(crate) const QUICK_MAX: usize = 64 << 10;

/// Whether a call moving `nbytes` may keep the GIL until it waits (`QUICK_MAX`).
pub(crate) fn quick(nbytes: usize) -> bool {
    nbytes < QUICK_MAX
}

/// Runs shmpi calls that may block. With `quick`, the GIL stays held unless a call
/// has to wait (`release_gil`): releasing and retaking it around every call cost more
/// than an 8-byte message or a small collective that does not wait. Without, it is
/// released at once.
pub(crate) fn waiting<R>(
    py: Python<'_>,
    quick: bool,
    f: impl FnOnce() -> shmpi::Result<R>,
) -> PyResult<R> {
    debug_assert!(!ARMED.get(), "blocking calls do not nest");
    ARMED.set(true);
    let held = Reacquire;
    if !quick {
        release_gil();
    }
    let r = f();
    drop(held);
    r.map_err(|e| errors::blocked_to_py(py, e))
}

/// [`waiting`] for a call on `c` that may move any amount of data: the GIL is
/// released at once.
pub(crate) fn blocking<R>(
    py: Python<'_>,
    c: &shmpi::Communicator,
    f: impl FnOnce(&shmpi::Communicator) -> shmpi::Result<R>,
) -> PyResult<R> {
    waiting(py, false, || f(c))
}

/// [`waiting`] for a call on `c` that moves `nbytes` (at most).
pub(crate) fn blocking_n<R>(
    py: Python<'_>,
    c: &shmpi::Communicator,
    nbytes: usize,
    f: impl FnOnce(&shmpi::Communicator) -> shmpi::Result<R>,
) -> PyResult<R> {
    waiting(py, quick(nbytes), || f(c))
}

/// Receives the message `probe` found, into a new `bytes` of exactly its length.
pub(crate) fn recv_probed<'py>(
    py: Python<'py>,
    c: &shmpi::Communicator,
    found: shmpi::Status,
) -> PyResult<(Bound<'py, PyBytes>, St)> {
    let mut status = None;
    // The probed message is the earliest that matches its exact source and tag, so
    // this receive takes it.
    let b = PyBytes::new_with(py, found.len(), |buf| {
        let s = blocking_n(py, c, found.len(), |c| {
            c.recv_into(buf, found.source(), found.tag())
        })?;
        status = Some(st(s));
        Ok(())
    })?;
    Ok((b, status.expect("set by the receive")))
}

/// `obj` pickled with the default `MPI.pickle`: a small builtin object natively, anything
/// else by `pickle.dumps`.
fn pickled(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    match crate::pickle5::with_encoded(obj, <[u8]>::to_vec) {
        Some(v) => Ok(v),
        None => Ok(crate::pickle5::std_dumps(py, obj)?.as_bytes().to_vec()),
    }
}

/// The pickles of the `n` objects of `objs` (any iterable; `None` for `None` to every
/// rank), one per rank, as mpi4py's `scatter` and `alltoall` take them: another count
/// is mpi4py's `ValueError`, word for word.
fn pickled_each(py: Python<'_>, objs: &Bound<'_, PyAny>, n: usize) -> PyResult<Vec<Vec<u8>>> {
    let parts = if objs.is_none() {
        vec![pickled(py, objs)?; n]
    } else {
        objs.try_iter()?
            .map(|o| pickled(py, &o?))
            .collect::<PyResult<Vec<_>>>()?
    };
    if parts.len() != n {
        return Err(PyValueError::new_err(format!(
            "expecting {n} items, got {}",
            parts.len()
        )));
    }
    Ok(parts)
}

/// A non-blocking collective's receive buffer, exported writable, checked to hold
/// the `want` bytes the collective will land there.
fn coll_target(
    recv: &Bound<'_, PyAny>,
    rnb: Option<usize>,
    want: usize,
    call: &str,
) -> PyResult<RawBuf> {
    let t = RawBuf::get(recv, true, rnb)?;
    if t.bytes().len() < want {
        return Err(errors::arg_error(format!(
            "{call}: a receive buffer of {} bytes for {want}",
            t.bytes().len()
        )));
    }
    Ok(t)
}

/// The receive buffer of a non-blocking `v` form and a copy of its bytes: the
/// collective writes its blocks into the copy, which then lands whole in the buffer,
/// so the bytes between the blocks keep their values.
fn v_target(recv: &Bound<'_, PyAny>, rnb: Option<usize>) -> PyResult<(Option<RawBuf>, Vec<u8>)> {
    let t = RawBuf::get(recv, true, rnb)?;
    let into = t.bytes().to_vec();
    Ok((Some(t), into))
}

/// `buf` and `nbytes` as given, or, without `nbytes`, `buf` read as a
/// point-to-point spec ([`crate::buffer::p2p_spec`]).
fn spec_or<'py>(
    buf: &Bound<'py, PyAny>,
    nbytes: Option<usize>,
    peer: i32,
) -> PyResult<(Bound<'py, PyAny>, Option<usize>)> {
    match nbytes {
        Some(_) => Ok((buf.clone(), nbytes)),
        None => crate::buffer::p2p_spec(buf, peer),
    }
}

/// [`spec_or`] for a receive, with the step that unpacks a datatype with holes
/// ([`crate::buffer::p2p_recv_spec`]).
fn recv_spec_or<'py>(
    buf: &Bound<'py, PyAny>,
    nbytes: Option<usize>,
    peer: i32,
) -> PyResult<crate::buffer::RecvSpec<'py>> {
    match nbytes {
        Some(_) => Ok((buf.clone(), nbytes, None)),
        None => crate::buffer::p2p_recv_spec(buf, peer),
    }
}

/// A `[buf, count, datatype]` spec as (buffer, bytes, datatype); `None` for any other.
#[allow(clippy::type_complexity)]
fn counted_spec<'py>(
    spec: &Bound<'py, PyAny>,
) -> PyResult<Option<(Bound<'py, PyAny>, usize, Bound<'py, PyAny>)>> {
    Ok(match coll_spec(spec)? {
        Some(CollSpec::Counted {
            buf,
            nbytes,
            datatype,
        }) => Some((buf, nbytes, datatype)),
        _ => None,
    })
}

/// The bytes a spec names, `blocks` times: its count, or the whole buffer; `None`
/// for a whole buffer whose elements do not split into `blocks` (the Python method
/// raises mpi4py's `ValueError` for it).
fn whole_or(s: &CollSpec<'_>, blocks: usize) -> PyResult<Option<usize>> {
    match s.nbytes(blocks) {
        Some(n) => Ok(Some(n)),
        None => {
            let b = RawBuf::get(s.buf(), false, None)?;
            Ok(b.splits_into(blocks).then(|| b.bytes().len()))
        }
    }
}

fn opt_view(
    b: Option<&Bound<'_, PyAny>>,
    writable: bool,
    nb: Option<usize>,
) -> PyResult<Option<RawBuf>> {
    b.map(|b| RawBuf::get(b, writable, nb)).transpose()
}

/// A communicator (`MPI_Comm`), by its key in the rank's registry. Only a key, so
/// immutable and sendable: pyo3 then checks neither a borrow flag nor the thread on
/// each call (the registry is per thread; another thread finds no state and gets
/// shmpi's usage error).
#[pyclass(frozen, module = "shmpi._shmpi")]
pub(crate) struct RawComm {
    pub(crate) id: u64,
}

impl RawComm {
    fn comm(&self) -> PyResult<shmpi::Communicator> {
        comm_of(self.id)
    }

    /// The comm, after checking `root` (MPI's ERR_ROOT rather than ERR_RANK).
    /// The communicator, with `root` checked for a rooted reduction.
    fn for_reduction(&self, which: Which, root: i32) -> PyResult<shmpi::Communicator> {
        if which == Which::Reduce {
            self.rooted(root)
        } else {
            self.comm()
        }
    }

    /// Every rank's object pickled and gathered; those of ranks below `upto(this
    /// rank, size)` unpickled here.
    fn allgather_upto<'py>(
        &self,
        py: Python<'py>,
        obj: &Bound<'py, PyAny>,
        upto: impl FnOnce(usize, usize) -> usize,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let c = self.comm()?;
        let data = pickled(py, obj)?;
        // Every rank's bytes come back: the GIL goes at once only for large ones.
        let all = blocking_n(py, &c, data.len().saturating_mul(c.size() as usize), |c| {
            c.allgather_bytes(&data)
        })?;
        all[..upto(c.rank() as usize, all.len())]
            .iter()
            .map(|b| crate::pickle5::loads_message(py, b))
            .collect()
    }

    fn rooted(&self, root: i32) -> PyResult<shmpi::Communicator> {
        let c = self.comm()?;
        if root < 0 || root >= c.size() {
            return Err(errors::root_error(root, c.size()));
        }
        Ok(c)
    }
}

#[pymethods]
impl RawComm {
    fn rank(&self) -> PyResult<i32> {
        Ok(self.comm()?.rank())
    }

    fn size(&self) -> PyResult<i32> {
        Ok(self.comm()?.size())
    }

    fn key(&self) -> u64 {
        self.id
    }

    /// The world rank of each member, in rank order (a group's members; local).
    fn world_ranks(&self) -> PyResult<Vec<i32>> {
        let c = self.comm()?;
        (0..c.size())
            .map(|r| c.world_rank_of(r).map_err(to_py))
            .collect()
    }

    /// A communicator of the processes of world ranks `members`, in that order, made
    /// by them alone (`MPI_Comm_create_group`).
    fn create_group(&self, py: Python<'_>, members: Vec<i32>, tag: i32) -> PyResult<RawComm> {
        let c = self.comm()?;
        let group = comm_of(crate::WORLD_ID)?
            .group()
            .incl(&members)
            .map_err(to_py)?;
        let d = blocking(py, &c, |c| c.create_group(&group, tag))?;
        Ok(crate::register(d))
    }

    /// Whether this is an intercommunicator.
    fn is_inter(&self) -> PyResult<bool> {
        Ok(self.comm()?.is_inter())
    }

    /// The size of the remote group (an intracommunicator's own size).
    fn remote_size(&self) -> PyResult<i32> {
        Ok(self.comm()?.remote_size())
    }

    /// The world rank of each member of the remote group, in its order (local).
    fn remote_world_ranks(&self) -> PyResult<Vec<i32>> {
        let g = self.comm()?.remote_group();
        let world = comm_of(crate::WORLD_ID)?.group();
        let all: Vec<i32> = (0..g.size()).collect();
        g.translate_ranks(&all, &world).map_err(to_py)
    }

    /// An intercommunicator of this communicator's group and the group of
    /// `remote_leader`, a rank of `peer` (`MPI_Intercomm_create`).
    fn intercomm_create(
        &self,
        py: Python<'_>,
        local_leader: i32,
        peer: &RawComm,
        remote_leader: i32,
        tag: i32,
    ) -> PyResult<RawComm> {
        let c = self.comm()?;
        let p = peer.comm()?;
        let d = blocking(py, &c, |c| {
            c.intercomm_create(local_leader, &p, remote_leader, tag)
        })?;
        Ok(crate::register(d))
    }

    /// The intracommunicator of both groups of an intercommunicator
    /// (`MPI_Intercomm_merge`).
    fn merge(&self, py: Python<'_>, high: bool) -> PyResult<RawComm> {
        let c = self.comm()?;
        let d = blocking(py, &c, |c| c.merge(high))?;
        Ok(crate::register(d))
    }

    fn dup(&self, py: Python<'_>) -> PyResult<RawComm> {
        let c = self.comm()?;
        let d = blocking(py, &c, |c| c.dup())?;
        Ok(crate::register(d))
    }

    fn split(&self, py: Python<'_>, color: i32, key: i32) -> PyResult<Option<RawComm>> {
        let c = self.comm()?;
        let d = blocking(py, &c, |c| c.split(color, key))?;
        Ok(d.map(crate::register))
    }

    fn free(&self) {
        crate::unregister(self.id)
    }

    fn abort(&self, code: i32) -> PyResult<()> {
        self.comm()?.abort(code)
    }

    // ---- point to point ---------------------------------------------------------

    /// A standard send, or with `sync` a synchronous one (returns once a receive has
    /// matched the message).
    #[pyo3(signature = (buf, nbytes, dest, tag, sync = false))]
    pub(crate) fn send(
        &self,
        py: Python<'_>,
        buf: &Bound<'_, PyAny>,
        nbytes: Option<usize>,
        dest: i32,
        tag: i32,
        sync: bool,
    ) -> PyResult<()> {
        let (buf, nbytes) = spec_or(buf, nbytes, dest)?;
        with_bytes(&buf, nbytes, |b| self.send_bytes(py, b, dest, tag, sync))
    }

    #[pyo3(signature = (buf, nbytes, source, tag))]
    pub(crate) fn recv_into(
        &self,
        py: Python<'_>,
        buf: &Bound<'_, PyAny>,
        nbytes: Option<usize>,
        source: i32,
        tag: i32,
    ) -> PyResult<St> {
        let c = self.comm()?;
        let (buf, nbytes, unpack) = recv_spec_or(buf, nbytes, source)?;
        let s = with_bytes_mut(&buf, nbytes, |bytes| {
            blocking_n(py, &c, bytes.len(), |c| c.recv_into(bytes, source, tag)).map(st)
        })?;
        if let Some(unpack) = unpack {
            unpack.call1((s.2,))?;
        }
        Ok(s)
    }

    /// Receives a message of any length as `bytes`, made from the received bytes in
    /// one copy once the call has returned (and retaken the GIL if it waited); a whole
    /// message from a named peer comes straight from its ring (`recv_unsized`), without
    /// a probe and a second match.
    pub(crate) fn recv_bytes<'py>(
        &self,
        py: Python<'py>,
        source: i32,
        tag: i32,
    ) -> PyResult<(Bound<'py, PyBytes>, St)> {
        self.recv_with(py, source, tag, |b| Ok(PyBytes::new(py, b)))
    }

    fn probe(&self, py: Python<'_>, source: i32, tag: i32) -> PyResult<St> {
        let c = self.comm()?;
        blocking_n(py, &c, 0, |c| c.probe(source, tag)).map(st)
    }

    fn iprobe(&self, source: i32, tag: i32) -> PyResult<Option<St>> {
        let c = self.comm()?;
        Ok(c.iprobe(source, tag).map_err(to_py)?.map(st))
    }

    /// Matched probe (`MPI_Mprobe`): the message leaves matching for the returned handle.
    fn mprobe(&self, py: Python<'_>, source: i32, tag: i32) -> PyResult<(RawMessage, St)> {
        let c = self.comm()?;
        let (m, s) = blocking_n(py, &c, 0, |c| c.mprobe(source, tag))?;
        Ok((RawMessage::new(m), st(s)))
    }

    /// Matched probe without blocking (`MPI_Improbe`).
    fn improbe(&self, source: i32, tag: i32) -> PyResult<Option<(RawMessage, St)>> {
        let c = self.comm()?;
        Ok(c.improbe(source, tag)
            .map_err(to_py)?
            .map(|(m, s)| (RawMessage::new(m), st(s))))
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (sbuf, snb, dest, stag, rbuf, rnb, source, rtag))]
    fn sendrecv_into(
        &self,
        py: Python<'_>,
        sbuf: &Bound<'_, PyAny>,
        snb: Option<usize>,
        dest: i32,
        stag: i32,
        rbuf: &Bound<'_, PyAny>,
        rnb: Option<usize>,
        source: i32,
        rtag: i32,
    ) -> PyResult<St> {
        let c = self.comm()?;
        with_send_recv(Some((sbuf, snb)), Some((rbuf, rnb)), |sb, rb| {
            let sb = sb.unwrap_or_default();
            blocking_n(py, &c, sb.len().max(rb.len()), |c| {
                c.sendrecv_slice(sb, dest, stag, rb, source, rtag)
            })
            .map(st)
        })
    }

    #[pyo3(signature = (buf, nbytes, dest, tag, sync = false))]
    fn isend(
        &self,
        buf: &Bound<'_, PyAny>,
        nbytes: Option<usize>,
        dest: i32,
        tag: i32,
        sync: bool,
    ) -> PyResult<RawRequest> {
        let c = self.comm()?;
        let (buf, nbytes) = spec_or(buf, nbytes, dest)?;
        // The request holds the export, read in place until the message is all in the
        // ring (MPI's rule: the buffer is not modified before the request completes).
        let data = RawBuf::get(&buf, false, nbytes)?;
        let len = data.bytes().len();
        let r = if sync {
            c.issend_buf(data, dest, tag)
        } else {
            c.isend_buf(data, dest, tag)
        }
        .map_err(to_py)?;
        Ok(RawRequest::send(r, len))
    }

    /// `Comm.Isend` of a buffer: the message goes into the ring at once if it fits,
    /// and the request then holds neither the buffer nor an operation of its own
    /// (`request::new_request` of `None`); otherwise as [`isend`](Self::isend).
    pub(crate) fn isend_request<'py>(
        &self,
        py: Python<'py>,
        buf: &Bound<'py, PyAny>,
        dest: i32,
        tag: i32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = self.comm()?;
        let (buf, nbytes) = spec_or(buf, None, dest)?;
        let data = RawBuf::get(&buf, false, nbytes)?;
        if c.try_isend_now(data.bytes(), dest, tag).map_err(to_py)? {
            drop(data);
            return crate::request::new_request(py, None, None);
        }
        let len = data.bytes().len();
        let r = c.isend_buf(data, dest, tag).map_err(to_py)?;
        crate::request::new_request(py, Some(RawRequest::send(r, len)), None)
    }

    #[pyo3(signature = (buf, nbytes, source, tag))]
    pub(crate) fn irecv_into(
        &self,
        buf: &Bound<'_, PyAny>,
        nbytes: Option<usize>,
        source: i32,
        tag: i32,
    ) -> PyResult<RawRequest> {
        let c = self.comm()?;
        let (buf, nbytes, unpack) = recv_spec_or(buf, nbytes, source)?;
        if unpack.is_some() {
            return Err(pyo3::exceptions::PyNotImplementedError::new_err(
                "Irecv of a datatype with holes (Recv and Sendrecv take one)",
            ));
        }
        let target = RawBuf::get(&buf, true, nbytes)?;
        let len = target.bytes().len();
        let r = c.irecv_buf(target, source, tag).map_err(to_py)?;
        Ok(RawRequest::recv_into(r, len))
    }

    fn irecv_bytes(&self, source: i32, tag: i32) -> PyResult<RawRequest> {
        self.comm()?;
        Ok(RawRequest::recv_bytes(self.id, source, tag))
    }

    // ---- non-blocking collectives (shmpi's CollRequest) ---------------------------

    fn ibarrier(&self) -> PyResult<RawRequest> {
        let r = self.comm()?.ibarrier().map_err(to_py)?;
        Ok(RawRequest::coll(Box::new(r), None))
    }

    #[pyo3(signature = (buf, nbytes, root))]
    fn ibcast(
        &self,
        buf: &Bound<'_, PyAny>,
        nbytes: Option<usize>,
        root: i32,
    ) -> PyResult<RawRequest> {
        let c = self.rooted(root)?;
        let here = c.rank() == root;
        let target = RawBuf::get(buf, !here, nbytes)?;
        let r = c
            .ibcast_into(target.bytes().to_vec(), root)
            .map_err(to_py)?;
        Ok(RawRequest::coll(Box::new(r), (!here).then_some(target)))
    }

    #[pyo3(signature = (send, snb, recv, rnb))]
    fn iallgather(
        &self,
        send: &Bound<'_, PyAny>,
        snb: Option<usize>,
        recv: &Bound<'_, PyAny>,
        rnb: Option<usize>,
    ) -> PyResult<RawRequest> {
        let c = self.comm()?;
        let data = RawBuf::get(send, false, snb)?.bytes().to_vec();
        let target = coll_target(recv, rnb, data.len() * c.size() as usize, "Iallgather")?;
        let r = c.iallgather_into(data).map_err(to_py)?;
        Ok(RawRequest::coll(Box::new(r), Some(target)))
    }

    /// `Igather`: the root's receive buffer gets every rank's block (`snb` bytes each).
    #[pyo3(signature = (send, snb, recv, rnb, root))]
    fn igather(
        &self,
        send: &Bound<'_, PyAny>,
        snb: Option<usize>,
        recv: Option<&Bound<'_, PyAny>>,
        rnb: Option<usize>,
        root: i32,
    ) -> PyResult<RawRequest> {
        let c = self.rooted(root)?;
        let data = RawBuf::get(send, false, snb)?.bytes().to_vec();
        let target = match recv {
            Some(recv) if c.rank() == root => Some(coll_target(
                recv,
                rnb,
                data.len() * c.size() as usize,
                "Igather",
            )?),
            _ => None,
        };
        let r = c.igather_into(data, root).map_err(to_py)?;
        Ok(RawRequest::coll(Box::new(r), target))
    }

    /// `Iscatter`: every rank's receive buffer (`rnb` bytes) gets its block of the
    /// root's send buffer (`snb` bytes, the blocks of every rank).
    #[pyo3(signature = (send, snb, recv, rnb, root))]
    fn iscatter(
        &self,
        send: Option<&Bound<'_, PyAny>>,
        snb: Option<usize>,
        recv: &Bound<'_, PyAny>,
        rnb: Option<usize>,
        root: i32,
    ) -> PyResult<RawRequest> {
        let c = self.rooted(root)?;
        let target = RawBuf::get(recv, true, rnb)?;
        let k = target.bytes().len();
        let data = match send {
            Some(send) if c.rank() == root => {
                let mut d = RawBuf::get(send, false, snb)?.bytes().to_vec();
                let want = k * c.size() as usize;
                if d.len() < want {
                    return Err(errors::arg_error(format!(
                        "Iscatter: a send buffer of {} bytes for {want}",
                        d.len()
                    )));
                }
                d.truncate(want);
                d
            }
            _ => Vec::new(),
        };
        let r = c.iscatter_into(data, vec![0u8; k], root).map_err(to_py)?;
        Ok(RawRequest::coll(Box::new(r), Some(target)))
    }

    /// `Ialltoall`: the send buffer's `snb` bytes are the blocks for every rank; the
    /// receive buffer gets every rank's block for this one.
    #[pyo3(signature = (send, snb, recv, rnb))]
    fn ialltoall(
        &self,
        send: &Bound<'_, PyAny>,
        snb: Option<usize>,
        recv: &Bound<'_, PyAny>,
        rnb: Option<usize>,
    ) -> PyResult<RawRequest> {
        let c = self.comm()?;
        let data = RawBuf::get(send, false, snb)?.bytes().to_vec();
        let target = coll_target(recv, rnb, data.len(), "Ialltoall")?;
        let r = c.ialltoall_into(data).map_err(to_py)?;
        Ok(RawRequest::coll(Box::new(r), Some(target)))
    }

    /// `Igatherv`: rank `j`'s `snb` bytes land in the root's receive buffer at byte
    /// `displs[j]` (`counts[j]` bytes); its other bytes keep their values.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (send, snb, recv, rnb, counts, displs, root))]
    fn igatherv(
        &self,
        send: &Bound<'_, PyAny>,
        snb: Option<usize>,
        recv: Option<&Bound<'_, PyAny>>,
        rnb: Option<usize>,
        counts: Vec<usize>,
        displs: Vec<usize>,
        root: i32,
    ) -> PyResult<RawRequest> {
        let c = self.rooted(root)?;
        let data = RawBuf::get(send, false, snb)?.bytes().to_vec();
        let (target, into) = match recv {
            Some(recv) if c.rank() == root => v_target(recv, rnb)?,
            _ => (None, Vec::new()),
        };
        let r = c
            .igatherv_into(data, into, &counts, &displs, root)
            .map_err(to_py)?;
        Ok(RawRequest::coll(Box::new(r), target))
    }

    /// `Iscatterv`: the root's `counts[j]` bytes at byte `displs[j]` of its send
    /// buffer to rank `j`'s receive buffer (`rnb` bytes).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (send, snb, counts, displs, recv, rnb, root))]
    fn iscatterv(
        &self,
        send: Option<&Bound<'_, PyAny>>,
        snb: Option<usize>,
        counts: Vec<usize>,
        displs: Vec<usize>,
        recv: &Bound<'_, PyAny>,
        rnb: Option<usize>,
        root: i32,
    ) -> PyResult<RawRequest> {
        let c = self.rooted(root)?;
        let target = RawBuf::get(recv, true, rnb)?;
        let data = match send {
            Some(send) if c.rank() == root => RawBuf::get(send, false, snb)?.bytes().to_vec(),
            _ => Vec::new(),
        };
        let k = target.bytes().len();
        let r = c
            .iscatterv_into(data, &counts, &displs, vec![0u8; k], root)
            .map_err(to_py)?;
        Ok(RawRequest::coll(Box::new(r), Some(target)))
    }

    /// `Iallgatherv`: rank `j`'s `snb` bytes land in every rank's receive buffer at
    /// byte `displs[j]` (`counts[j]` bytes); its other bytes keep their values.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (send, snb, recv, rnb, counts, displs))]
    fn iallgatherv(
        &self,
        send: &Bound<'_, PyAny>,
        snb: Option<usize>,
        recv: &Bound<'_, PyAny>,
        rnb: Option<usize>,
        counts: Vec<usize>,
        displs: Vec<usize>,
    ) -> PyResult<RawRequest> {
        let c = self.comm()?;
        let data = RawBuf::get(send, false, snb)?.bytes().to_vec();
        let (target, into) = v_target(recv, rnb)?;
        let r = c
            .iallgatherv_into(data, into, &counts, &displs)
            .map_err(to_py)?;
        Ok(RawRequest::coll(Box::new(r), target))
    }

    /// `Ialltoallv` (and `Ialltoallw` of contiguous types): `scounts[j]` bytes at
    /// `sdispls[j]` of the send buffer to rank `j`, and from rank `j` `rcounts[j]`
    /// bytes at `rdispls[j]` of the receive buffer, whose other bytes keep their values.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (send, snb, scounts, sdispls, recv, rnb, rcounts, rdispls))]
    fn ialltoallv(
        &self,
        send: &Bound<'_, PyAny>,
        snb: Option<usize>,
        scounts: Vec<usize>,
        sdispls: Vec<usize>,
        recv: &Bound<'_, PyAny>,
        rnb: Option<usize>,
        rcounts: Vec<usize>,
        rdispls: Vec<usize>,
    ) -> PyResult<RawRequest> {
        let c = self.comm()?;
        let data = RawBuf::get(send, false, snb)?.bytes().to_vec();
        let (target, into) = v_target(recv, rnb)?;
        let r = c
            .ialltoallv_into(data, &scounts, &sdispls, into, &rcounts, &rdispls)
            .map_err(to_py)?;
        Ok(RawRequest::coll(Box::new(r), target))
    }

    /// `Ireduce` (`which` "reduce"), `Iallreduce`, `Iscan` or `Iexscan` with a built-in
    /// op on `ty` elements; `recv` is `None` at a reduction's non-root.
    #[pyo3(signature = (which, send, snb, recv, rnb, op, ty, root))]
    #[allow(clippy::too_many_arguments)]
    fn ireduce(
        &self,
        which: &str,
        send: &Bound<'_, PyAny>,
        snb: Option<usize>,
        recv: Option<&Bound<'_, PyAny>>,
        rnb: Option<usize>,
        op: u8,
        ty: &str,
        root: i32,
    ) -> PyResult<RawRequest> {
        let which = Which::parse(which)?;
        let c = self.for_reduction(which, root)?;
        let op = reduce::op(op)?;
        let kind = reduce::Kind::parse(ty)?;
        let data = RawBuf::get(send, false, snb)?.bytes().to_vec();
        // Rank 0 of an exclusive scan gets no result: its buffer stays as it was.
        let target = recv
            .filter(|_| !(which == Which::Exscan && c.rank() == 0))
            .map(|r| RawBuf::get(r, true, rnb))
            .transpose()?;
        let job = reduce::Job::Reduction(which, root);
        let r = reduce::start(&c, job, kind, op, &data).map_err(to_py)?;
        Ok(RawRequest::coll(r, target))
    }

    /// `Ireduce_scatter` and `Ireduce_scatter_block` with a built-in op on `ty`
    /// elements: `counts[j]` elements of the reduction of every rank's `send` to rank
    /// `j`, this rank's into `recv`.
    #[pyo3(signature = (send, snb, recv, rnb, counts, op, ty))]
    #[allow(clippy::too_many_arguments)]
    fn ireduce_scatter(
        &self,
        send: &Bound<'_, PyAny>,
        snb: Option<usize>,
        recv: &Bound<'_, PyAny>,
        rnb: Option<usize>,
        counts: Vec<usize>,
        op: u8,
        ty: &str,
    ) -> PyResult<RawRequest> {
        let c = self.comm()?;
        let op = reduce::op(op)?;
        let kind = reduce::Kind::parse(ty)?;
        let data = RawBuf::get(send, false, snb)?.bytes().to_vec();
        let target = RawBuf::get(recv, true, rnb)?;
        let job = reduce::Job::ReduceScatter(&counts);
        let r = reduce::start(&c, job, kind, op, &data).map_err(to_py)?;
        Ok(RawRequest::coll(r, Some(target)))
    }

    // ---- collectives on bytes ---------------------------------------------------

    pub(crate) fn barrier(&self, py: Python<'_>) -> PyResult<()> {
        let c = self.comm()?;
        blocking_n(py, &c, 0, |c| c.barrier())
    }

    // The collectives of mpi4py's OSU demos, read here in one call when their specs
    // are a plain buffer or `[buf, count, datatype]` (`buffer::coll_spec`): the
    // Python methods that parse them cost more than the collective itself at small
    // sizes. Each returns false, having done nothing, for any other spec, which the
    // Python method then parses (and raises mpi4py's errors for).

    /// `Comm.Bcast`.
    pub(crate) fn bcast_spec(
        &self,
        py: Python<'_>,
        spec: &Bound<'_, PyAny>,
        root: i32,
    ) -> PyResult<bool> {
        let Some(s) = coll_spec(spec)? else {
            return Ok(false);
        };
        self.bcast_into(py, s.buf(), s.nbytes(1), root)?;
        Ok(true)
    }

    /// `Comm.Allgather`: the receive count is per rank; with `IN_PLACE` this rank's
    /// block of the receive buffer is what it sends. Blocks of different lengths to
    /// send and to receive go to the Python method, which raises their error.
    pub(crate) fn allgather_spec(
        &self,
        py: Python<'_>,
        send: &Bound<'_, PyAny>,
        recv: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let Some(r) = coll_spec(recv)? else {
            return Ok(false);
        };
        let c = self.comm()?;
        let Some(rnb) = whole_or(&r, c.size() as usize)? else {
            return Ok(false);
        };
        if !is_in_place(send)? {
            let Some(s) = coll_spec(send)? else {
                return Ok(false);
            };
            let Some(snb) = whole_or(&s, 1)? else {
                return Ok(false);
            };
            if snb.saturating_mul(c.size() as usize) != rnb {
                return Ok(false);
            }
            self.allgather_into(py, s.buf(), Some(snb), r.buf(), Some(rnb))?;
            return Ok(true);
        }
        let n = c.size() as usize;
        let mut rv = RawBuf::get(r.buf(), true, r.nbytes(n))?;
        let blk = rv.bytes().len() / n;
        let rb = &mut rv.bytes_mut()[..blk * n];
        blocking_n(py, &c, rb.len(), |c| c.allgather_in_place(rb))?;
        Ok(true)
    }

    /// `Comm.Alltoall`: counts are per rank; with `IN_PLACE` the receive buffer is
    /// also what is sent. Blocks of different lengths to send and to receive go to
    /// the Python method, which raises their error.
    pub(crate) fn alltoall_spec(
        &self,
        py: Python<'_>,
        send: &Bound<'_, PyAny>,
        recv: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let Some(r) = coll_spec(recv)? else {
            return Ok(false);
        };
        let c = self.comm()?;
        let n = c.size() as usize;
        let Some(rnb) = whole_or(&r, n)? else {
            return Ok(false);
        };
        if is_in_place(send)? {
            let mut rv = RawBuf::get(r.buf(), true, r.nbytes(n))?;
            let rb = rv.bytes_mut();
            blocking_n(py, &c, rb.len(), |c| c.alltoall_in_place(rb))?;
            return Ok(true);
        }
        let Some(s) = coll_spec(send)? else {
            return Ok(false);
        };
        let Some(snb) = whole_or(&s, n)? else {
            return Ok(false);
        };
        if snb != rnb {
            return Ok(false);
        }
        self.alltoall_into(py, s.buf(), Some(snb), r.buf(), Some(rnb))?;
        Ok(true)
    }

    fn bcast_into(
        &self,
        py: Python<'_>,
        buf: &Bound<'_, PyAny>,
        nbytes: Option<usize>,
        root: i32,
    ) -> PyResult<()> {
        let c = self.rooted(root)?;
        let r = with_bytes_mut(buf, nbytes, |bytes| {
            blocking_n(py, &c, bytes.len(), |c| c.bcast_into(bytes, root))
        });
        match r {
            // The root only reads its buffer, which may be read-only (mpi4py takes
            // `bytes` there): it broadcasts a copy. Nothing was sent: the export failed.
            Err(e)
                if c.rank() == root && e.is_instance_of::<pyo3::exceptions::PyBufferError>(py) =>
            {
                with_bytes(buf, nbytes, |bytes| {
                    let mut copy = bytes.to_vec();
                    blocking_n(py, &c, copy.len(), |c| c.bcast_into(&mut copy, root))
                })
            }
            r => r,
        }
    }

    fn bcast_obj<'py>(
        &self,
        py: Python<'py>,
        data: Option<Vec<u8>>,
        root: i32,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let c = self.rooted(root)?;
        let data = if c.rank() == root {
            Some(data.unwrap_or_default())
        } else {
            None
        };
        let v = blocking(py, &c, |c| c.bcast_bytes(data, root))?;
        Ok(PyBytes::new(py, &v))
    }

    /// `Comm.bcast` while `MPI.pickle` is the default: the root's object pickled (a
    /// small builtin one natively), its bytes broadcast as they are
    /// (`bcast_bytes`), and unpickled at every rank, the root too (mpi4py's root gets
    /// a copy, not its own object).
    pub(crate) fn bcast_pickled<'py>(
        &self,
        py: Python<'py>,
        obj: &Bound<'py, PyAny>,
        root: i32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = self.rooted(root)?;
        let data = if c.rank() == root {
            let data = pickled(py, obj)?;
            blocking_n(py, &c, data.len(), |c| c.bcast_bytes(Some(data), root))?
        } else {
            // The length is not known before the data comes: the GIL goes when the
            // call waits, as for any small call.
            blocking_n(py, &c, 0, |c| c.bcast_bytes(None, root))?
        };
        crate::pickle5::loads_message(py, &data)
    }

    fn scatter_obj<'py>(
        &self,
        py: Python<'py>,
        data: Option<Vec<Vec<u8>>>,
        root: i32,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let c = self.rooted(root)?;
        if c.rank() == root && data.as_ref().is_none_or(|d| d.len() != c.size() as usize) {
            return Err(PyValueError::new_err(format!(
                "expecting {} items, got {}",
                c.size(),
                data.as_ref().map_or(0, Vec::len)
            )));
        }
        let data = if c.rank() == root { data } else { None };
        let v = blocking(py, &c, |c| c.scatter(data.as_deref(), root))?;
        Ok(PyBytes::new(py, &v))
    }

    /// `Comm.scatter` while `MPI.pickle` is the default: the root's objects pickled
    /// (small builtin ones natively), the bytes scattered as they are
    /// (`scatter_bytes`), and this rank's unpickled here (the root's too: mpi4py's
    /// root gets a copy). `None` at the root scatters `None` to every rank.
    pub(crate) fn scatter_pickled<'py>(
        &self,
        py: Python<'py>,
        objs: &Bound<'py, PyAny>,
        root: i32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = self.rooted(root)?;
        let n = c.size() as usize;
        let mine = if c.rank() == root {
            let parts = pickled_each(py, objs, n)?;
            let total = parts.iter().map(Vec::len).sum();
            blocking_n(py, &c, total, |c| c.scatter_bytes(Some(&parts), root))?
        } else {
            blocking_n(py, &c, 0, |c| c.scatter_bytes(None, root))?
        };
        crate::pickle5::loads_message(py, &mine)
    }

    fn gather_obj<'py>(
        &self,
        py: Python<'py>,
        data: Vec<u8>,
        root: i32,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let c = self.rooted(root)?;
        let v = blocking(py, &c, |c| c.gather_bytes(&data, root))?;
        v.map(|v| PyList::new(py, v.iter().map(|b| PyBytes::new(py, b))))
            .transpose()
    }

    /// `Comm.gather` while `MPI.pickle` is the default: as
    /// [`allgather_pickled`](Self::allgather_pickled), the objects at `root` only.
    pub(crate) fn gather_pickled<'py>(
        &self,
        py: Python<'py>,
        obj: &Bound<'py, PyAny>,
        root: i32,
    ) -> PyResult<Option<Vec<Bound<'py, PyAny>>>> {
        let c = self.rooted(root)?;
        let data = pickled(py, obj)?;
        let n = if c.rank() == root {
            c.size() as usize
        } else {
            1
        };
        let all = blocking_n(py, &c, data.len().saturating_mul(n), |c| {
            c.gather_bytes(&data, root)
        })?;
        all.map(|all| {
            all.iter()
                .map(|b| crate::pickle5::loads_message(py, b))
                .collect()
        })
        .transpose()
    }

    fn allgather_obj<'py>(&self, py: Python<'py>, data: Vec<u8>) -> PyResult<Bound<'py, PyList>> {
        let c = self.comm()?;
        let v = blocking(py, &c, |c| c.allgather_bytes(&data))?;
        PyList::new(py, v.iter().map(|b| PyBytes::new(py, b)))
    }

    /// `Comm.allgather` while `MPI.pickle` is the default: this rank's object pickled
    /// (a small builtin one natively), every rank's bytes gathered as they are
    /// (`allgather_bytes`) and unpickled here, in rank order.
    pub(crate) fn allgather_pickled<'py>(
        &self,
        py: Python<'py>,
        obj: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.allgather_upto(py, obj, |_, n| n)
    }

    /// The objects `Comm.scan` (`inclusive`) or `Comm.exscan` folds at this rank while
    /// `MPI.pickle` is the default: every rank's gathered as by
    /// [`allgather_pickled`](Self::allgather_pickled), those of the ranks up to this
    /// one (before it, for `exscan`) unpickled, in rank order.
    pub(crate) fn prefix_pickled<'py>(
        &self,
        py: Python<'py>,
        obj: &Bound<'py, PyAny>,
        inclusive: bool,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.allgather_upto(py, obj, |me, _| me + usize::from(inclusive))
    }

    fn alltoall_obj<'py>(
        &self,
        py: Python<'py>,
        data: Vec<Vec<u8>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let c = self.comm()?;
        if data.len() != c.size() as usize {
            return Err(PyValueError::new_err(format!(
                "expecting {} items, got {}",
                c.size(),
                data.len()
            )));
        }
        let v = blocking(py, &c, |c| c.alltoall(&data))?;
        PyList::new(py, v.iter().map(|b| PyBytes::new(py, b)))
    }

    /// `Comm.alltoall` while `MPI.pickle` is the default: this rank's objects pickled
    /// (small builtin ones natively), the bytes exchanged as they are
    /// (`alltoall_bytes`), and what each rank sent here unpickled, in rank order (this
    /// rank's own object too: mpi4py's is a copy). `None` sends `None` to every rank.
    pub(crate) fn alltoall_pickled<'py>(
        &self,
        py: Python<'py>,
        objs: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let c = self.comm()?;
        let n = c.size() as usize;
        let parts = pickled_each(py, objs, n)?;
        // Every rank's bytes come back: the GIL goes at once only for large ones.
        let total = parts.iter().map(Vec::len).sum::<usize>();
        let all = blocking_n(py, &c, total, |c| c.alltoall_bytes(&parts))?;
        all.iter()
            .map(|b| crate::pickle5::loads_message(py, b))
            .collect()
    }

    #[pyo3(signature = (send, snb, recv, rnb, root))]
    fn scatter_into(
        &self,
        py: Python<'_>,
        send: Option<&Bound<'_, PyAny>>,
        snb: Option<usize>,
        recv: &Bound<'_, PyAny>,
        rnb: Option<usize>,
        root: i32,
    ) -> PyResult<()> {
        let c = self.rooted(root)?;
        let send = if c.rank() == root { send } else { None };
        let s = opt_view(send, false, snb)?;
        let mut r = RawBuf::get(recv, true, rnb)?;
        let copy = match &s {
            Some(s) if !RawBuf::disjoint(s, &r) => s.bytes().to_vec(),
            _ => Vec::new(),
        };
        let sb: &[u8] = match &s {
            Some(s) if RawBuf::disjoint(s, &r) => s.bytes(),
            _ => &copy,
        };
        let rb = r.bytes_mut();
        blocking(py, &c, |c| c.scatter_into(sb, rb, root))
    }

    #[pyo3(signature = (send, snb, recv, rnb, root))]
    fn gather_into(
        &self,
        py: Python<'_>,
        send: &Bound<'_, PyAny>,
        snb: Option<usize>,
        recv: Option<&Bound<'_, PyAny>>,
        rnb: Option<usize>,
        root: i32,
    ) -> PyResult<()> {
        let c = self.rooted(root)?;
        let recv = if c.rank() == root { recv } else { None };
        let s = RawBuf::get(send, false, snb)?;
        let mut r = opt_view(recv, true, rnb)?;
        let copy = match &r {
            Some(r) if !RawBuf::disjoint(&s, r) => s.bytes().to_vec(),
            _ => Vec::new(),
        };
        let sb: &[u8] = if copy.is_empty() { s.bytes() } else { &copy };
        let rb: &mut [u8] = r.as_mut().map_or(&mut [], |r| r.bytes_mut());
        blocking(py, &c, |c| c.gather_into(sb, rb, root))
    }

    #[pyo3(signature = (send, snb, recv, rnb))]
    fn allgather_into(
        &self,
        py: Python<'_>,
        send: &Bound<'_, PyAny>,
        snb: Option<usize>,
        recv: &Bound<'_, PyAny>,
        rnb: Option<usize>,
    ) -> PyResult<()> {
        let c = self.comm()?;
        with_send_recv(Some((send, snb)), Some((recv, rnb)), |sb, rb| {
            let sb = sb.unwrap_or_default();
            blocking_n(py, &c, rb.len(), |c| c.allgather_into(sb, rb))
        })
    }

    #[pyo3(signature = (send, snb, recv, rnb))]
    fn alltoall_into(
        &self,
        py: Python<'_>,
        send: &Bound<'_, PyAny>,
        snb: Option<usize>,
        recv: &Bound<'_, PyAny>,
        rnb: Option<usize>,
    ) -> PyResult<()> {
        let c = self.comm()?;
        with_send_recv(Some((send, snb)), Some((recv, rnb)), |sb, rb| {
            let sb = sb.unwrap_or_default();
            blocking_n(py, &c, rb.len(), |c| c.alltoall_into(sb, rb))
        })
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (send, snb, recv, rnb, counts, displs, root))]
    fn gatherv_into(
        &self,
        py: Python<'_>,
        send: &Bound<'_, PyAny>,
        snb: Option<usize>,
        recv: Option<&Bound<'_, PyAny>>,
        rnb: Option<usize>,
        counts: Vec<usize>,
        displs: Vec<usize>,
        root: i32,
    ) -> PyResult<()> {
        let c = self.rooted(root)?;
        let recv = if c.rank() == root { recv } else { None };
        let s = RawBuf::get(send, false, snb)?;
        let mut r = opt_view(recv, true, rnb)?;
        let copy = match &r {
            Some(r) if !RawBuf::disjoint(&s, r) => s.bytes().to_vec(),
            _ => Vec::new(),
        };
        let sb: &[u8] = if copy.is_empty() { s.bytes() } else { &copy };
        let rb: &mut [u8] = r.as_mut().map_or(&mut [], |r| r.bytes_mut());
        blocking(py, &c, |c| c.gatherv_into(sb, rb, &counts, &displs, root))
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (send, snb, counts, displs, recv, rnb, root))]
    fn scatterv_into(
        &self,
        py: Python<'_>,
        send: Option<&Bound<'_, PyAny>>,
        snb: Option<usize>,
        counts: Vec<usize>,
        displs: Vec<usize>,
        recv: &Bound<'_, PyAny>,
        rnb: Option<usize>,
        root: i32,
    ) -> PyResult<()> {
        let c = self.rooted(root)?;
        let send = if c.rank() == root { send } else { None };
        let s = opt_view(send, false, snb)?;
        let mut r = RawBuf::get(recv, true, rnb)?;
        let copy = match &s {
            Some(s) if !RawBuf::disjoint(s, &r) => s.bytes().to_vec(),
            _ => Vec::new(),
        };
        let sb: &[u8] = match &s {
            Some(s) if RawBuf::disjoint(s, &r) => s.bytes(),
            _ => &copy,
        };
        let rb = r.bytes_mut();
        blocking(py, &c, |c| c.scatterv_into(sb, &counts, &displs, rb, root))
    }

    #[pyo3(signature = (send, snb, recv, rnb, counts, displs))]
    #[allow(clippy::too_many_arguments)]
    fn allgatherv_into(
        &self,
        py: Python<'_>,
        send: &Bound<'_, PyAny>,
        snb: Option<usize>,
        recv: &Bound<'_, PyAny>,
        rnb: Option<usize>,
        counts: Vec<usize>,
        displs: Vec<usize>,
    ) -> PyResult<()> {
        let c = self.comm()?;
        with_send_recv(Some((send, snb)), Some((recv, rnb)), |sb, rb| {
            let sb = sb.unwrap_or_default();
            blocking(py, &c, |c| c.allgatherv_into(sb, rb, &counts, &displs))
        })
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (send, snb, scounts, sdispls, recv, rnb, rcounts, rdispls))]
    fn alltoallv_into(
        &self,
        py: Python<'_>,
        send: &Bound<'_, PyAny>,
        snb: Option<usize>,
        scounts: Vec<usize>,
        sdispls: Vec<usize>,
        recv: &Bound<'_, PyAny>,
        rnb: Option<usize>,
        rcounts: Vec<usize>,
        rdispls: Vec<usize>,
    ) -> PyResult<()> {
        let c = self.comm()?;
        with_send_recv(Some((send, snb)), Some((recv, rnb)), |sb, rb| {
            let sb = sb.unwrap_or_default();
            blocking(py, &c, |c| {
                c.alltoallv_into(sb, &scounts, &sdispls, rb, &rcounts, &rdispls)
            })
        })
    }

    // ---- reductions (typed) -----------------------------------------------------

    /// A reduction: `which` is "reduce", "allreduce", "scan" or "exscan"; `send`
    /// `None` is `MPI_IN_PLACE` (allreduce only); `recv` may be `None` off the root of
    /// a reduce. `op` is a built-in op's code and `ty` a struct-module type code.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (which, send, snb, recv, rnb, op, ty, root))]
    fn reduce_into(
        &self,
        py: Python<'_>,
        which: &str,
        send: Option<&Bound<'_, PyAny>>,
        snb: Option<usize>,
        recv: Option<&Bound<'_, PyAny>>,
        rnb: Option<usize>,
        op: u8,
        ty: &str,
        root: i32,
    ) -> PyResult<()> {
        let which = Which::parse(which)?;
        let op = reduce::op(op)?;
        let kind = reduce::Kind::parse(ty)?;
        self.reduce_native(
            py,
            which,
            send.map(|b| (b, snb)),
            recv.map(|b| (b, rnb)),
            op,
            kind,
            root,
        )
    }
}

/// What the native methods of `CommBase` call besides the Python-visible ones.
impl RawComm {
    /// `Comm.Allreduce` and `Comm.Reduce` (`which`), where each spec names its
    /// datatype (`[buf, count, datatype]`, or `IN_PLACE` for the send) and `op` is a
    /// built-in op on a type shmpi reduces itself.
    pub(crate) fn reduce_spec(
        &self,
        py: Python<'_>,
        which: Which,
        send: &Bound<'_, PyAny>,
        recv: &Bound<'_, PyAny>,
        op: &Bound<'_, PyAny>,
        root: i32,
    ) -> PyResult<bool> {
        let has_recv = match which {
            Which::Allreduce => true,
            Which::Reduce => self.rooted(root)?.rank() == root,
            Which::Scan | Which::Exscan => return Ok(false),
        };
        let rspec = if has_recv {
            match counted_spec(recv)? {
                Some(r) => Some(r),
                None => return Ok(false),
            }
        } else {
            None
        };
        // In place: an allreduce here; a reduce's root (which sends a copy of its
        // receive buffer) in Python.
        let (sbuf, snb, dt) = if is_in_place(send)? {
            match (&rspec, which) {
                (Some((_, rnb, rdt)), Which::Allreduce) => (None, *rnb, rdt.clone()),
                _ => return Ok(false),
            }
        } else {
            match counted_spec(send)? {
                Some((sb, snb, dt)) => (Some(sb), snb, dt),
                None => return Ok(false),
            }
        };
        // A receive spec of another datatype or count: the Python path, which raises
        // mpi4py's `ValueError` unless the datatypes are equal objects.
        if let Some((_, rnb, rdt)) = &rspec {
            if sbuf.is_some() && (*rnb != snb || !rdt.is(&dt)) {
                return Ok(false);
            }
        }
        // Not an `Op` (the Python path raises), a user op, or a type shmpi does not
        // reduce itself: the Python path.
        let Some((op, kind)) = reduce::native(op, &dt)? else {
            return Ok(false);
        };
        let send = sbuf.as_ref().map(|b| (b, Some(snb)));
        let recv = rspec.as_ref().map(|(b, _, _)| (b, Some(snb)));
        self.reduce_native(py, which, send, recv, op, kind, root)?;
        Ok(true)
    }

    /// A reduction of `kind` elements with a built-in op, from `send` (`None`: in
    /// place) into `recv` (`None` at a reduce's other ranks).
    #[allow(clippy::too_many_arguments)]
    fn reduce_native(
        &self,
        py: Python<'_>,
        which: Which,
        send: Option<(&Bound<'_, PyAny>, Option<usize>)>,
        recv: Option<(&Bound<'_, PyAny>, Option<usize>)>,
        op: shmpi::Op,
        kind: reduce::Kind,
        root: i32,
    ) -> PyResult<()> {
        let c = self.for_reduction(which, root)?;
        let recv = if which == Which::Reduce && c.rank() != root {
            None
        } else {
            recv
        };
        with_send_recv(send, recv, |sb, rb| {
            let n = sb.map_or(0, <[u8]>::len).max(rb.len());
            blocking_n(py, &c, n, |c| reduce::run(c, which, kind, op, sb, rb, root))
        })
    }

    /// [`RawComm::send`] of bytes already in hand (a lowercase send's pickle).
    pub(crate) fn send_bytes(
        &self,
        py: Python<'_>,
        bytes: &[u8],
        dest: i32,
        tag: i32,
        sync: bool,
    ) -> PyResult<()> {
        let c = self.comm()?;
        if sync {
            blocking_n(py, &c, bytes.len(), |c| c.ssend_slice(bytes, dest, tag))
        } else {
            blocking_n(py, &c, bytes.len(), |c| c.send_slice(bytes, dest, tag))
        }
    }

    /// [`RawComm::recv_bytes`], handing the received bytes to `f` in place of making
    /// them a `bytes` (a lowercase receive decodes its pickle from them).
    pub(crate) fn recv_with<'py, R>(
        &self,
        py: Python<'py>,
        source: i32,
        tag: i32,
        f: impl FnOnce(&[u8]) -> PyResult<R>,
    ) -> PyResult<(R, St)> {
        let c = self.comm()?;
        let (m, s) = blocking_n(py, &c, 0, |c| c.recv_unsized(source, tag))?;
        Ok((f(m.bytes())?, st(s)))
    }
}
