//! [`Communicator`]: ranks, tags and point-to-point messages.
//!
//! Two vocabularies, as in mpi4py:
//! - **objects** (mpi4py's lowercase `send`/`recv`): any rkyv-serializable value,
//!   archived on the way out, validated and deserialized (or accessed in place) on the
//!   way in;
//! - **slices** (mpi4py's uppercase `Send`/`Recv`): `&[T]` for `T: bytemuck::Pod`, one
//!   `memcpy` each side.
//!
//! What blocks: `send` returns once the message is in the shared ring (it never waits
//! for the matching receive; a message larger than the ring streams through it while
//! the call keeps draining incoming rings). `recv`, `probe`, `wait` block until their
//! message arrives, the job aborts, or the peer they wait on leaves the job.
//!
//! Send modes (MPI's four): `send` is standard mode. `ssend` (synchronous) returns only
//! once the matching receive has started, that is once a receive (or a matched probe)
//! on the destination has matched the message; its request form `issend` completes
//! then. A rank blocked in `ssend` keeps making progress, so two ranks that `ssend` to
//! each other before receiving deadlock, as in MPI (the launcher reports it). `bsend`
//! (buffered) and `rsend` (ready) are the standard send: it already buffers every
//! message in the ring without a user buffer, and a ready send needs no handshake here.
//!
//! [`PROC_NULL`] (MPI's rule): a send to it completes at once and sends nothing; a
//! receive from it completes at once with the null status (source `PROC_NULL`, tag
//! [`ANY_TAG`], length 0) and leaves the buffer untouched; probes of it return that
//! status. The non-blocking forms return requests complete at once. An object receive
//! (`recv::<T>`) from it has no value to return and is an error that says so;
//! [`Communicator::recv_opt`] returns `None` instead. Collective roots may not be
//! `PROC_NULL`. It is recognized only on the error path of the rank checks, so that
//! calls to real ranks pay nothing for it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytemuck::Pod;

use crate::call::Call;
use crate::codec::{self, Access, Archived, Decode, Encode, PodVec};
use crate::completions::{Done, RecvData};
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::matching::{Group, Matcher, PostedBuf, Want};
use crate::message::{Message, RawMessage};
use crate::out::Slot;
use crate::progress::{Engine, SendBuf, Started, WaitDesc, WaitOp};
use crate::request::{Made, Request, What};
use crate::shmcoll::{Area, Proc};

// A child of this module, to use its argument checks.
#[allow(unsafe_code)]
#[path = "loan.rs"]
pub(crate) mod loan;
// A child too; it makes the borrowed views of its receive buffers it hands the engine.
#[allow(unsafe_code)]
#[path = "persistent.rs"]
pub(crate) mod persistent;
// A child too; it makes the borrowed views its requests hand the engine.
#[allow(unsafe_code)]
#[path = "scope.rs"]
pub(crate) mod scope;

/// A rank in a communicator (`MPI_Comm_rank`): `0..size`, or [`ANY_SOURCE`].
pub type Rank = i32;
/// A message tag: `0..=TAG_UB`, or [`ANY_TAG`] in receives.
pub type Tag = i32;

/// Receive from any source (`MPI_ANY_SOURCE`).
pub const ANY_SOURCE: Rank = -1;
/// Receive with any tag (`MPI_ANY_TAG`).
pub const ANY_TAG: Tag = -1;
/// The null peer (`MPI_PROC_NULL`): a rank with no process behind it, as a
/// [`CartComm::shift`](crate::CartComm::shift) off the edge of a non-periodic grid gives.
pub const PROC_NULL: Rank = -2;
/// The largest valid tag (`MPI_TAG_UB`).
pub const TAG_UB: Tag = i32::MAX;

/// World rank standing for `PROC_NULL` in the envelope of a null receive's result.
pub(crate) const NULL_SRC: usize = usize::MAX;

/// Whether `e` is what the rank checks return for [`PROC_NULL`].
fn is_null(e: &Error) -> bool {
    matches!(
        e,
        Error::InvalidRank {
            rank: PROC_NULL,
            ..
        }
    )
}

/// The error of an object receive from [`PROC_NULL`], which has no value to return.
pub(crate) fn null_recv_error(call: &str, type_name: &str) -> Error {
    Error::invalid(
        crate::error::ErrorClass::Rank,
        format!(
            "{call}::<{type_name}> from PROC_NULL: a receive from PROC_NULL receives no \
             message, so there is no {type_name} to return; use recv_opt (None for \
             PROC_NULL), or a slice receive (recv_into, recv_vec), which completes with \
             source PROC_NULL and count 0"
        ),
    )
}

/// What a receive learned about its message (`MPI_Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    source: Rank,
    tag: Tag,
    len: usize,
    cancelled: bool,
}

impl Status {
    /// MPI's empty status (source `ANY_SOURCE`, tag `ANY_TAG`, no bytes): that of a
    /// send, of an inactive persistent request, and (`cancelled`) of a cancelled
    /// receive.
    pub(crate) fn empty(cancelled: bool) -> Self {
        Status {
            source: ANY_SOURCE,
            tag: ANY_TAG,
            len: 0,
            cancelled,
        }
    }

    /// The status of a request that failed with `e`: for a receive refused on a
    /// message (too long, of another element size or type), that message's source
    /// and tag with a length of 0, as nothing was received (MPI's status of a failed
    /// receive names its message; the error says the rest); else the empty status.
    pub(crate) fn failed(e: &Error) -> Self {
        match *e {
            Error::Truncated {
                source_rank, tag, ..
            }
            | Error::ElementSize {
                source_rank, tag, ..
            }
            | Error::TypeMismatch {
                source_rank, tag, ..
            } => Status {
                source: source_rank,
                tag,
                len: 0,
                cancelled: false,
            },
            _ => Status::empty(false),
        }
    }

    /// The status of a received message with envelope `env` on a communicator of
    /// `group`.
    pub(crate) fn received(env: &Envelope, group: &Group) -> Self {
        Status {
            source: group.rank_of(env.src),
            tag: env.tag,
            len: env.len,
            cancelled: false,
        }
    }

    /// The status of a message from communicator rank `source` with `tag` and `len`
    /// bytes.
    #[cfg(feature = "mpi")]
    pub(crate) fn from_mpi(source: Rank, tag: Tag, len: usize) -> Self {
        Status {
            source,
            tag,
            len,
            cancelled: false,
        }
    }

    /// Whether the request this status describes was cancelled
    /// (`MPI_Test_cancelled`): a receive withdrawn by
    /// [`Request::cancel`](crate::Request::cancel) before any message matched it.
    /// Its other fields are then those of the empty status.
    ///
    /// MPI 4.1 §3.8.4 (`MPI_Test_cancelled`).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let mut req = world.irecv_into(vec![0u8; 4], me, 77)?;
    /// assert!(req.cancel()?); // no message matched it
    /// let (_, st) = req.wait()?;
    /// assert!(st.is_cancelled());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// The sender's rank in the communicator of the receive.
    ///
    /// MPI 4.1 §3.2.5 (`MPI_SOURCE`).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send(&0u8, me, 1)?;
    /// assert_eq!(world.probe(shmpi::ANY_SOURCE, 1)?.source(), me);
    /// let _: u8 = world.recv(me, 1)?;
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn source(&self) -> Rank {
        self.source
    }

    /// The message's tag.
    ///
    /// MPI 4.1 §3.2.5 (`MPI_TAG`).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send(&0u8, me, 12)?;
    /// assert_eq!(world.probe(me, shmpi::ANY_TAG)?.tag(), 12);
    /// let _: u8 = world.recv(me, 12)?;
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// The message's length in bytes (for objects: the archive plus shmpi's type
    /// trailer).
    ///
    /// MPI 4.1 §3.2.5 (`MPI_Get_count` with `MPI_BYTE`).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send_slice(&[0u32; 3], me, 0)?;
    /// assert_eq!(world.recv_vec::<u32>(me, 0)?.1.len(), 12);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the message is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send_slice::<u8>(&[], me, 0)?;
    /// assert!(world.recv_vec::<u8>(me, 0)?.1.is_empty());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of `T` elements in the message (`MPI_Get_count`), or `None` if its
    /// length is not a whole number of them.
    ///
    /// MPI 4.1 §3.2.5 (`MPI_Get_count`).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send_slice(&[0u16; 3], me, 0)?;
    /// let st = world.recv_vec::<u8>(me, 0)?.1;
    /// assert_eq!((st.count::<u16>(), st.count::<u32>()), (Some(3), None));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn count<T>(&self) -> Option<usize> {
        let size = std::mem::size_of::<T>();
        if size == 0 || self.len % size != 0 {
            None
        } else {
            Some(self.len / size)
        }
    }

    /// The status of a receive from [`PROC_NULL`]: source `PROC_NULL`, tag
    /// [`ANY_TAG`], length 0.
    pub(crate) fn null() -> Status {
        Status {
            source: PROC_NULL,
            tag: ANY_TAG,
            len: 0,
            cancelled: false,
        }
    }

    /// The status of `env` in `group` (a null receive's envelope gives the null
    /// status).
    pub(crate) fn of(group: &Group, env: &Envelope) -> Status {
        if env.src == NULL_SRC {
            return Status::null();
        }
        Status {
            source: group.rank_of(env.src),
            tag: env.tag,
            len: env.len,
            cancelled: false,
        }
    }
}

/// A group of ranks that exchange messages in a context of their own
/// (`MPI_Comm`). Cheap to clone; not `Send`: each rank uses its communicators from
/// the thread that called [`init`](crate::init()).
#[derive(Clone)]
pub struct Communicator {
    pub(crate) inner: Rc<CommInner>,
}

pub(crate) struct CommInner {
    pub(crate) eng: Rc<RefCell<Engine>>,
    /// Context id of point-to-point traffic (collectives use the area below, not
    /// messages).
    pub(crate) ctx: u32,
    pub(crate) group: Rc<Group>,
    /// The ranks that point-to-point calls name: `group` itself, or the remote group
    /// of an intercommunicator.
    pub(crate) peers: Rc<Group>,
    /// What an intercommunicator has beyond its groups (`None` for the others).
    pub(crate) inter: Option<Rc<crate::intercomm::Inter>>,
    /// This process's rank in `group`.
    pub(crate) rank: usize,
    /// This process's world rank (`group.ranks[rank]`), which every envelope carries.
    pub(crate) wrank: usize,
    /// The process's collective state (data slot bookkeeping).
    pub(crate) coll: Rc<Proc>,
    /// This communicator's collective area; dropping the last handle frees it.
    pub(crate) area: Rc<Area>,
    /// The next collective step (see `collective/mod.rs`).
    pub(crate) step: Cell<u64>,
    /// A collective failed part-way: the ranks are out of step.
    pub(crate) broken: Cell<bool>,
    /// The MPI communicator behind this one on the MPI backend (then `eng`, `coll` and
    /// `area` are a private singleton's, unused by the calls, which all dispatch).
    #[cfg(feature = "mpi")]
    pub(crate) mpi: Option<Rc<crate::mpi::Comm>>,
}

impl Communicator {
    /// The world communicator of this process (context 0, area 0).
    pub(crate) fn new_world(eng: Rc<RefCell<Engine>>, group: Rc<Group>, rank: usize) -> Self {
        let seg = eng.borrow().segment().clone();
        let me = group.ranks[rank];
        let spins = eng.borrow().collective_spins();
        let coll = Proc::new(seg.clone(), me, spins);
        let area = Area::new(seg, 0, group.clone(), rank, false);
        Self::with_parts(eng, 0, group, rank, coll, area)
    }

    pub(crate) fn with_parts(
        eng: Rc<RefCell<Engine>>,
        ctx: u32,
        group: Rc<Group>,
        rank: usize,
        coll: Rc<Proc>,
        area: Rc<Area>,
    ) -> Self {
        Communicator {
            inner: Rc::new(CommInner {
                eng,
                ctx,
                peers: group.clone(),
                wrank: group.ranks[rank],
                group,
                inter: None,
                rank,
                coll,
                area,
                step: Cell::new(1),
                broken: Cell::new(false),
                #[cfg(feature = "mpi")]
                mpi: None,
            }),
        }
    }

    /// This process's rank in the communicator (`MPI_Comm_rank`).
    ///
    /// MPI 4.1 §7.4.1 (`MPI_Comm_rank`).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// assert!((0..world.size()).contains(&me));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn rank(&self) -> Rank {
        self.inner.rank as Rank
    }

    /// The number of ranks in the communicator (`MPI_Comm_size`).
    ///
    /// MPI 4.1 §7.4.1 (`MPI_Comm_size`).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// assert!(world.size() >= 1);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn size(&self) -> Rank {
        self.inner.group.size() as Rank
    }

    // ---- argument checks ----------------------------------------------------------

    fn dest(&self, rank: Rank) -> Result<usize> {
        let size = self.inner.peers.size();
        if rank < 0 || rank as usize >= size {
            return Err(Error::InvalidRank {
                rank,
                size,
                any_allowed: false,
            });
        }
        Ok(self.inner.peers.ranks[rank as usize])
    }

    fn source(&self, rank: Rank) -> Result<Option<usize>> {
        if rank == ANY_SOURCE {
            return Ok(None);
        }
        let size = self.inner.peers.size();
        if rank < 0 || rank as usize >= size {
            return Err(Error::InvalidRank {
                rank,
                size,
                any_allowed: true,
            });
        }
        Ok(Some(self.inner.peers.ranks[rank as usize]))
    }

    fn send_tag(tag: Tag) -> Result<Tag> {
        if tag < 0 {
            return Err(Error::InvalidTag {
                tag,
                max: TAG_UB,
                any_allowed: false,
            });
        }
        Ok(tag)
    }

    fn recv_tag(tag: Tag) -> Result<Option<Tag>> {
        match tag {
            ANY_TAG => Ok(None),
            t if t < 0 => Err(Error::InvalidTag {
                tag,
                max: TAG_UB,
                any_allowed: true,
            }),
            t => Ok(Some(t)),
        }
    }

    fn matcher(&self, source: Rank, tag: Tag) -> Result<Matcher> {
        Ok(Matcher {
            ctx: self.inner.ctx,
            src: self.source(source)?,
            tag: Self::recv_tag(tag)?,
        })
    }

    fn envelope(&self, tag: Tag, len: usize, type_id: u64) -> Envelope {
        let src = self.inner.wrank;
        Envelope {
            ctx: self.inner.ctx,
            src,
            tag,
            len,
            type_id,
        }
    }

    /// A send whose destination check failed: to [`PROC_NULL`] it completes at once
    /// (with a valid tag), else it fails.
    #[cold]
    fn null_send(e: Error, tag: Tag) -> Result<()> {
        if !is_null(&e) {
            return Err(e);
        }
        Self::send_tag(tag).map(|_| ())
    }

    /// A receive whose source check failed: from [`PROC_NULL`] it completes at once
    /// with the null status (with a valid tag), else it fails.
    #[cold]
    fn null_recv(e: Error, tag: Tag) -> Result<Status> {
        if !is_null(&e) {
            return Err(e);
        }
        Self::recv_tag(tag).map(|_| Status::null())
    }

    /// A request complete at once (an operation on [`PROC_NULL`]).
    fn done_request<T>(
        &self,
        done: Done,
        call: Call,
        tag: Tag,
        finish: crate::request::Finish<T>,
    ) -> Request<T> {
        Request::started(
            &self.inner.eng,
            Started::Done(done),
            self.what(call, None, tag),
            finish,
        )
    }

    fn desc(&self, op: WaitOp, call: Call, peer: Option<usize>, tag: Tag) -> WaitDesc<'_> {
        WaitDesc {
            op,
            call,
            peer,
            tag,
            ctx: self.inner.ctx,
            group: &self.inner.peers,
        }
    }

    fn status(&self, env: &Envelope) -> Status {
        Status {
            source: self.inner.peers.rank_of(env.src),
            tag: env.tag,
            len: env.len,
            cancelled: false,
        }
    }

    fn elem<T>() -> Result<usize> {
        match std::mem::size_of::<T>() {
            0 => Err(Error::Usage(format!(
                "zero-sized element type `{}` cannot be sent or received",
                codec::type_name::<T>()
            ))),
            n => Ok(n),
        }
    }

    fn what(&self, call: Call, peer: Option<usize>, tag: Tag) -> What {
        What {
            call,
            peer,
            tag,
            ctx: self.inner.ctx,
            group: self.inner.peers.clone(),
        }
    }

    // ---- objects ----------------------------------------------------------------

    /// Sends an object (mpi4py `comm.send(obj, dest, tag)`; `MPI_Send` of its archive).
    /// Returns once the message is in the shared ring.
    ///
    /// MPI 4.1 §3.2.1 (`MPI_Send`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `dest` is not a rank of the communicator (a `dest` of
    ///   [`PROC_NULL`] sends nothing and succeeds);
    /// - [`Error::InvalidTag`] when `tag` is negative ([`ANY_TAG`] is for receives only);
    /// - [`Error::Serialize`] when the value cannot be archived;
    /// - [`Error::PeerFailed`] when `dest` dies or leaves while the call waits for ring
    ///   space; [`Error::Aborted`] when the job is aborted meanwhile.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send(&vec![1u32, 2, 3], me, 7)?; // to self: delivered, never blocks
    /// world.send(&0u8, shmpi::PROC_NULL, 7)?; // sends nothing
    /// let v: Vec<u32> = world.recv(me, 7)?;
    /// assert_eq!(v, [1, 2, 3]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn send<T: Encode>(&self, value: &T, dest: Rank, tag: Tag) -> Result<()> {
        let d = match self.dest(dest) {
            Ok(d) => d,
            Err(e) => return Self::null_send(e, tag),
        };
        let tag = Self::send_tag(tag)?;
        let bytes = codec::encode(value)?;
        let env = self.envelope(tag, bytes.len(), codec::type_id::<T>());
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            return mc.send_archive(d, env, bytes, false);
        }
        self.send_encoded(d, env, &bytes, Call::Send)
    }

    /// The engine's blocking send of `bytes` under `env` to world rank `d`, for sends
    /// other than slices (an object's archive, a loan's ticket).
    pub(crate) fn send_encoded(
        &self,
        d: usize,
        env: Envelope,
        bytes: &[u8],
        call: Call,
    ) -> Result<()> {
        if crate::trace::hooked() {
            return self.send_encoded_recorded(d, env, bytes, call);
        }
        let tag = env.tag;
        self.inner.eng.borrow_mut().send(d, env, bytes, || {
            self.desc(WaitOp::Send, call, Some(d), tag)
        })
    }

    // Recording (`shmrun --trace`, `--stats`). A public method tests `hooked` once and
    // branches to its `*_recorded` twin, which opens a span, calls the method again
    // (recording is cleared for the span, so it runs its ordinary paths) and closes the
    // span. The twin passes the arguments on as they came, without a closure, so that
    // the paths stay one copy and the compiler sees the same values flow through as
    // without tracing (docs/tracing.md).

    #[cold]
    #[inline(never)]
    fn send_encoded_recorded(
        &self,
        d: usize,
        env: Envelope,
        bytes: &[u8],
        call: Call,
    ) -> Result<()> {
        let span = crate::trace::hooks::send_open(call, d, env.ctx, env.tag, env.len);
        let r = self.send_encoded(d, env, bytes, call);
        crate::trace::hooks::close(span, r.is_err());
        r
    }

    #[cold]
    #[inline(never)]
    fn send_slice_recorded<T: Pod>(&self, data: &[T], dest: Rank, tag: Tag) -> Result<()> {
        // Nothing is sent to `PROC_NULL` or a bad rank: no span.
        let d = usize::try_from(dest)
            .ok()
            .and_then(|d| self.inner.peers.ranks.get(d));
        let Some(&d) = d else {
            return crate::trace::hooks::unrecorded(|| self.send_slice(data, dest, tag));
        };
        let len = std::mem::size_of_val(data);
        let span = crate::trace::hooks::send_open(Call::SendSlice, d, self.inner.ctx, tag, len);
        let r = self.send_slice(data, dest, tag);
        crate::trace::hooks::close(span, r.is_err());
        r
    }

    #[cold]
    #[inline(never)]
    fn recv_into_recorded<T: Pod>(&self, buf: &mut [T], source: Rank, tag: Tag) -> Result<Status> {
        let Some(span) = self.recv_span(Call::RecvInto, source, tag) else {
            return crate::trace::hooks::unrecorded(|| self.recv_into(buf, source, tag));
        };
        let r = self.recv_into(buf, source, tag);
        self.recv_span_end(span, r.as_ref().ok());
        r
    }

    #[cold]
    #[inline(never)]
    fn recv_vec_recorded<T: Pod>(&self, source: Rank, tag: Tag) -> Result<(Vec<T>, Status)> {
        let Some(span) = self.recv_span(Call::RecvVec, source, tag) else {
            return crate::trace::hooks::unrecorded(|| self.recv_vec(source, tag));
        };
        let r = self.recv_vec(source, tag);
        self.recv_span_end(span, r.as_ref().ok().map(|(_, st)| st));
        r
    }

    #[cold]
    #[inline(never)]
    fn recv_unsized_recorded(&self, source: Rank, tag: Tag) -> Result<(RawMessage, Status)> {
        let Some(span) = self.recv_span(Call::Recv, source, tag) else {
            return crate::trace::hooks::unrecorded(|| self.recv_unsized(source, tag));
        };
        let r = self.recv_unsized(source, tag);
        self.recv_span_end(span, r.as_ref().ok().map(|(_, st)| st));
        r
    }

    /// Opens the span of a blocking receive; none for `PROC_NULL` or a bad rank or tag
    /// (no message is involved).
    #[inline(always)]
    fn recv_span(&self, call: Call, source: Rank, tag: Tag) -> Option<crate::trace::hooks::Span> {
        let src = match source {
            ANY_SOURCE => None,
            s => Some(*self.inner.peers.ranks.get(usize::try_from(s).ok()?)?),
        };
        let tag = (tag != ANY_TAG).then_some(tag);
        Some(crate::trace::hooks::recv_open(
            call,
            self.inner.ctx,
            src,
            tag,
        ))
    }

    /// Closes the span of a blocking receive with its status (`None`: it failed).
    #[inline(always)]
    fn recv_span_end(&self, span: crate::trace::hooks::Span, got: Option<&Status>) {
        match got {
            Some(st) => {
                let src = self.inner.peers.ranks[st.source as usize];
                crate::trace::hooks::close_recv(span, self.inner.ctx, src, st.tag, st.len);
            }
            None => crate::trace::hooks::close(span, true),
        }
    }

    /// Receives an object sent with [`send`](Self::send) (mpi4py `comm.recv`).
    /// `source` may be [`ANY_SOURCE`], `tag` [`ANY_TAG`]. A message of another type is
    /// [`Error::TypeMismatch`] and stays queued.
    ///
    /// MPI 4.1 §3.2.4 (`MPI_Recv`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `source` is neither a rank of the communicator,
    ///   [`ANY_SOURCE`] nor [`PROC_NULL`];
    /// - [`Error::InvalidTag`] when `tag` is negative and not [`ANY_TAG`];
    /// - [`Error::InvalidArgument`] of class [`ErrorClass::Rank`](crate::ErrorClass::Rank)
    ///   when `source` is [`PROC_NULL`], which has no `T` to return;
    /// - [`Error::TypeMismatch`] when the matched message is not a `T` (another type, or a
    ///   slice): the message stays queued;
    /// - [`Error::InvalidArchive`] when its bytes fail validation: the message has been
    ///   received and is gone;
    /// - [`Error::PeerFailed`] when `source` (for [`ANY_SOURCE`], every other rank) has died
    ///   or left with nothing more in flight to this rank; [`Error::Aborted`] when the job is
    ///   aborted; [`Error::Corrupted`] when a ring fails a consistency check.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send(&String::from("hi"), me, 1)?;
    /// assert!(world.recv::<u64>(me, 1).is_err()); // a String, not a u64: still queued
    /// let s: String = world.recv(me, shmpi::ANY_TAG)?;
    /// assert_eq!(s, "hi");
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn recv<T: Decode>(&self, source: Rank, tag: Tag) -> Result<T> {
        self.recv_with_status(source, tag).map(|(v, _)| v)
    }

    /// Like [`recv`](Self::recv), also returning the message's [`Status`].
    ///
    /// MPI 4.1 §3.2.4 (`MPI_Recv`), §3.2.5 (`MPI_Status`).
    ///
    /// # Errors
    ///
    /// - as [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send(&42i64, me, 9)?;
    /// let (v, st) = world.recv_with_status::<i64>(shmpi::ANY_SOURCE, shmpi::ANY_TAG)?;
    /// assert_eq!((v, st.source(), st.tag()), (42, me, 9));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn recv_with_status<T: Decode>(&self, source: Rank, tag: Tag) -> Result<(T, Status)> {
        let (env, msg) = self.recv_object::<T>(source, tag)?;
        let st = self.status(&env);
        Ok((codec::decode::<T>(&msg, st.source, st.tag)?, st))
    }

    /// Like [`recv_with_status`](Self::recv_with_status), but a receive from
    /// [`PROC_NULL`] returns `None` (there is no value to return), where `recv` fails.
    ///
    /// MPI 4.1 §3.2.4 (`MPI_Recv`), §3.11 (null processes).
    ///
    /// # Errors
    ///
    /// - as [`recv`](Self::recv), except that [`PROC_NULL`] gives `Ok(None)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// assert!(world.recv_opt::<u32>(shmpi::PROC_NULL, 0)?.is_none());
    /// world.send(&5u32, me, 0)?;
    /// assert_eq!(world.recv_opt::<u32>(me, 0)?.map(|(v, _)| v), Some(5));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn recv_opt<T: Decode>(&self, source: Rank, tag: Tag) -> Result<Option<(T, Status)>> {
        if source == PROC_NULL {
            return Self::null_recv(self.source(source).unwrap_err(), tag).map(|_| None);
        }
        self.recv_with_status(source, tag).map(Some)
    }

    /// Receives an object from any source with any tag (mpi4py's `comm.recv()` with
    /// its defaults): `recv_with_status(ANY_SOURCE, ANY_TAG)`.
    ///
    /// MPI 4.1 §3.2.4 (`MPI_Recv` with `MPI_ANY_SOURCE`, `MPI_ANY_TAG`).
    ///
    /// # Errors
    ///
    /// - [`Error::TypeMismatch`] (the message stays queued) and [`Error::InvalidArchive`]
    ///   (the message is gone) as for [`recv`](Self::recv);
    /// - [`Error::PeerFailed`] when `source` (for [`ANY_SOURCE`], every other rank) has died
    ///   or left with nothing more in flight to this rank; [`Error::Aborted`] when the job is
    ///   aborted; [`Error::Corrupted`] when a ring fails a consistency check.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send(&'x', me, 4)?;
    /// let (c, st) = world.recv_any::<char>()?;
    /// assert_eq!((c, st.tag()), ('x', 4));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn recv_any<T: Decode>(&self) -> Result<(T, Status)> {
        self.recv_with_status(ANY_SOURCE, ANY_TAG)
    }

    /// Receives the next matching message whatever it is (mpi4py's `comm.recv()`, which
    /// returns whatever was sent): its bytes and, for an object, the sender's type name
    /// (see [`RawMessage`]; `raw.decode::<Value>()` for dynamic values). From
    /// [`PROC_NULL`]: an empty message with the null status.
    ///
    /// MPI 4.1 §3.8.2, §3.8.3 (`MPI_Mprobe` then `MPI_Mrecv`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `source` is neither a rank of the communicator,
    ///   [`ANY_SOURCE`] nor [`PROC_NULL`];
    /// - [`Error::InvalidTag`] when `tag` is negative and not [`ANY_TAG`];
    /// - [`Error::PeerFailed`] when `source` (for [`ANY_SOURCE`], every other rank) has died
    ///   or left with nothing more in flight to this rank; [`Error::Aborted`] when the job is
    ///   aborted; [`Error::Corrupted`] when a ring fails a consistency check.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send(&7u16, me, 2)?;
    /// world.send_slice(&[1u8, 2], me, 3)?;
    /// let (obj, _) = world.recv_raw(me, 2)?;
    /// assert!(obj.is_object());
    /// assert_eq!(obj.decode::<u16>()?, 7);
    /// let (raw, st) = world.recv_raw(me, 3)?;
    /// assert_eq!((raw.bytes(), st.len()), (&[1u8, 2][..], 2));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn recv_raw(&self, source: Rank, tag: Tag) -> Result<(RawMessage, Status)> {
        let (mut msg, st) = self.mprobe(source, tag)?;
        Ok((msg.recv_raw()?, st))
    }

    fn recv_object<T: ?Sized>(
        &self,
        source: Rank,
        tag: Tag,
    ) -> Result<(Envelope, rkyv::util::AlignedVec)> {
        let m = match self.matcher(source, tag) {
            Ok(m) => m,
            Err(e) if is_null(&e) => {
                Self::recv_tag(tag)?;
                return Err(null_recv_error("recv", codec::type_name::<T>()));
            }
            Err(e) => return Err(e),
        };
        let want = Want::Object {
            type_id: codec::type_id::<T>(),
            type_name: codec::type_name::<T>(),
        };
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            return mc.recv_message(&m, &want);
        }
        let desc = self.desc(WaitOp::Recv, Call::Recv, m.src, tag);
        self.inner.eng.borrow_mut().recv_message(m, want, &desc)
    }

    /// Receives an object and gives access to its archive in place, without
    /// deserializing it (zero-copy on top of the one copy out of the ring). The archive
    /// is validated first.
    ///
    /// MPI 4.1 §3.2.4 (`MPI_Recv`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `source` is neither a rank of the communicator,
    ///   [`ANY_SOURCE`] nor [`PROC_NULL`];
    /// - [`Error::InvalidTag`] when `tag` is negative and not [`ANY_TAG`];
    /// - [`Error::InvalidArgument`] of class [`ErrorClass::Rank`](crate::ErrorClass::Rank)
    ///   when `source` is [`PROC_NULL`], which has no `T` to return;
    /// - [`Error::TypeMismatch`] when the matched message is not a `T` (another type, or a
    ///   slice): the message stays queued;
    /// - [`Error::InvalidArchive`] when its bytes fail validation: the message has been
    ///   received and is gone;
    /// - [`Error::PeerFailed`] when `source` (for [`ANY_SOURCE`], every other rank) has died
    ///   or left with nothing more in flight to this rank; [`Error::Aborted`] when the job is
    ///   aborted; [`Error::Corrupted`] when a ring fails a consistency check.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send(&String::from("in place"), me, 0)?;
    /// let a = world.recv_archived::<String>(me, 0)?;
    /// assert_eq!(a.as_str(), "in place");
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn recv_archived<T: Access + ?Sized>(&self, source: Rank, tag: Tag) -> Result<Archived<T>> {
        let (env, msg) = self.recv_object::<T>(source, tag)?;
        let st = self.status(&env);
        Archived::new(msg, st.source, st.tag)
    }

    /// Like [`recv_archived`](Self::recv_archived) without validating the archive.
    ///
    /// # Safety
    /// The sender must have sent a `T` with [`send`](Self::send) from a program built
    /// from the same source, and nothing may have corrupted the segment: an invalid
    /// archive read without validation is undefined behaviour.
    ///
    /// MPI 4.1 §3.2.4 (`MPI_Recv`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `source` is neither a rank of the communicator,
    ///   [`ANY_SOURCE`] nor [`PROC_NULL`];
    /// - [`Error::InvalidTag`] when `tag` is negative and not [`ANY_TAG`];
    /// - [`Error::InvalidArgument`] of class [`ErrorClass::Rank`](crate::ErrorClass::Rank)
    ///   when `source` is [`PROC_NULL`], which has no `T` to return;
    /// - [`Error::TypeMismatch`] when the matched message is not a `T`: it stays queued;
    /// - [`Error::PeerFailed`] when `source` (for [`ANY_SOURCE`], every other rank) has died
    ///   or left with nothing more in flight to this rank; [`Error::Aborted`] when the job is
    ///   aborted; [`Error::Corrupted`] when a ring fails a consistency check.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send(&String::from("trusted"), me, 0)?;
    /// // SAFETY: this program sent the String itself, just above.
    /// let a = unsafe { world.recv_archived_unchecked::<String>(me, 0)? };
    /// assert_eq!(a.as_str(), "trusted");
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    #[allow(unsafe_code)]
    pub unsafe fn recv_archived_unchecked<T: rkyv::Archive + ?Sized>(
        &self,
        source: Rank,
        tag: Tag,
    ) -> Result<Archived<T>> {
        let (_, msg) = self.recv_object::<T>(source, tag)?;
        // SAFETY: the caller promises the archive is valid; the type fingerprint matched.
        unsafe { Archived::new_unchecked(msg) }
    }

    // ---- slices -----------------------------------------------------------------

    /// The checked arguments of a slice send: the world rank of `dest`, the envelope
    /// and the bytes.
    fn slice_send<'a, T: Pod>(
        &self,
        data: &'a [T],
        dest: Rank,
        tag: Tag,
    ) -> Result<(usize, Envelope, &'a [u8])> {
        Self::elem::<T>()?;
        let d = self.dest(dest)?; // PROC_NULL: the caller's error path
        let tag = Self::send_tag(tag)?;
        let bytes: &[u8] = bytemuck::cast_slice(data);
        Ok((d, self.envelope(tag, bytes.len(), 0), bytes))
    }

    /// The checked arguments of a slice receive: the matcher, what it accepts and the
    /// buffer as bytes.
    fn slice_recv<'a, T: Pod>(
        &self,
        buf: &'a mut [T],
        source: Rank,
        tag: Tag,
    ) -> Result<(Matcher, Want, &'a mut [u8])> {
        let elem = Self::elem::<T>()?;
        let m = self.matcher(source, tag)?;
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(buf);
        let want = Want::Bytes {
            cap: bytes.len(),
            elem,
            elem_type: codec::type_name::<T>(),
        };
        Ok((m, want, bytes))
    }

    /// Sends a slice of plain data (mpi4py `comm.Send(buf, dest, tag)`; `MPI_Send`).
    ///
    /// MPI 4.1 §3.2.1 (`MPI_Send`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `dest` is not a rank of the communicator (a `dest` of
    ///   [`PROC_NULL`] sends nothing and succeeds);
    /// - [`Error::InvalidTag`] when `tag` is negative ([`ANY_TAG`] is for receives only);
    /// - [`Error::Usage`] when `T` is a zero-sized type;
    /// - [`Error::PeerFailed`] when `dest` dies or leaves while the call waits for ring
    ///   space; [`Error::Aborted`] when the job is aborted meanwhile.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send_slice(&[1.5f64, 2.5], me, 0)?;
    /// let mut buf = [0f64; 4];
    /// let st = world.recv_into(&mut buf, me, 0)?;
    /// assert_eq!((st.count::<f64>(), &buf[..2]), (Some(2), &[1.5, 2.5][..]));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    #[inline(always)]
    pub fn send_slice<T: Pod>(&self, data: &[T], dest: Rank, tag: Tag) -> Result<()> {
        // Recording is the one test here; its branch passes the arguments on unchanged.
        if crate::trace::hooked() {
            return self.send_slice_recorded(data, dest, tag);
        }
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            Self::elem::<T>()?;
            let bytes: &[u8] = bytemuck::cast_slice(data);
            // The common case inline: a sender's instructions bound a small stream.
            return match mc.send_pod(bytes, dest, tag) {
                Some(rc) => crate::mpi::check(rc, "MPI_Send"),
                None => self.send_slice_mpi(mc, bytes, dest, tag),
            };
        }
        self.send_slice_shm(data, dest, tag)
    }

    /// [`send_slice`](Self::send_slice) on the MPI backend where `Comm::send_pod` does
    /// not apply, out of line and not generic.
    #[cfg(feature = "mpi")]
    #[inline(never)]
    fn send_slice_mpi(
        &self,
        mc: &crate::mpi::Comm,
        bytes: &[u8],
        dest: Rank,
        tag: Tag,
    ) -> Result<()> {
        let (d, env, bytes) = match self.slice_send(bytes, dest, tag) {
            Ok(x) => x,
            Err(e) => return Self::null_send(e, tag),
        };
        mc.send(d, env, bytes, false)
    }

    /// [`send_slice`](Self::send_slice) on the shared segment.
    #[inline(never)]
    fn send_slice_shm<T: Pod>(&self, data: &[T], dest: Rank, tag: Tag) -> Result<()> {
        let (d, env, bytes) = match self.slice_send(data, dest, tag) {
            Ok(x) => x,
            Err(e) => return Self::null_send(e, tag),
        };
        let mut eng = self.inner.eng.borrow_mut();
        let tag = env.tag;
        eng.send(d, env, bytes, || {
            self.desc(WaitOp::Send, Call::SendSlice, Some(d), tag)
        })
    }

    /// Receives into `buf` (mpi4py `comm.Recv(buf, source, tag)`; `MPI_Recv`). The
    /// message may be shorter than `buf` (see [`Status::count`]); a longer one is
    /// [`Error::Truncated`] and stays queued.
    ///
    /// MPI 4.1 §3.2.4 (`MPI_Recv`), §3.11 (`MPI_PROC_NULL`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `source` is neither a rank of the communicator,
    ///   [`ANY_SOURCE`] nor [`PROC_NULL`];
    /// - [`Error::InvalidTag`] when `tag` is negative and not [`ANY_TAG`];
    /// - [`Error::Usage`] when `T` is a zero-sized type;
    /// - [`Error::Truncated`] when the matched message is longer than `buf`,
    ///   [`Error::ElementSize`] when its length is not a whole number of `T`s, and
    ///   [`Error::TypeMismatch`] when it was sent as an object: in each case the message stays
    ///   queued;
    /// - [`Error::PeerFailed`] when `source` (for [`ANY_SOURCE`], every other rank) has died
    ///   or left with nothing more in flight to this rank; [`Error::Aborted`] when the job is
    ///   aborted; [`Error::Corrupted`] when a ring fails a consistency check.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send_slice(&[1u32, 2, 3], me, 5)?;
    /// let mut small = [0u32; 2];
    /// assert!(matches!(world.recv_into(&mut small, me, 5), Err(shmpi::Error::Truncated { .. })));
    /// let mut buf = [0u32; 8];
    /// let st = world.recv_into(&mut buf, me, 5)?; // the message was still queued
    /// assert_eq!(st.count::<u32>(), Some(3));
    /// assert_eq!(world.recv_into(&mut buf, shmpi::PROC_NULL, 5)?.source(), shmpi::PROC_NULL);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    #[inline(always)]
    pub fn recv_into<T: Pod>(&self, buf: &mut [T], source: Rank, tag: Tag) -> Result<Status> {
        if crate::trace::hooked() {
            return self.recv_into_recorded(buf, source, tag);
        }
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            let elem = Self::elem::<T>()?;
            let elem_type = codec::type_name::<T>();
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(buf);
            // The common case inline, as for `send_slice`.
            return match mc.recv_pod(bytes, elem, elem_type, source, tag) {
                Ok(Some(st)) => Ok(st),
                Ok(None) => self.recv_into_mpi(mc, bytes, elem, elem_type, source, tag),
                Err(e) => Err(e),
            };
        }
        self.recv_into_shm(buf, source, tag)
    }

    /// [`recv_into`](Self::recv_into) on the shared segment.
    #[inline(never)]
    fn recv_into_shm<T: Pod>(&self, buf: &mut [T], source: Rank, tag: Tag) -> Result<Status> {
        let (m, want, bytes) = match self.slice_recv(buf, source, tag) {
            Ok(x) => x,
            Err(e) => return Self::null_recv(e, tag),
        };
        let mut eng = self.inner.eng.borrow_mut();
        eng.recv_into(
            &m,
            &want,
            bytes,
            || self.desc(WaitOp::Recv, Call::RecvInto, m.src, tag),
            |env| self.status(env),
        )
    }

    /// [`recv_into`](Self::recv_into) on the MPI backend where `Comm::recv_pod` does
    /// not apply, out of line and not generic.
    #[cfg(feature = "mpi")]
    #[inline(never)]
    fn recv_into_mpi(
        &self,
        mc: &crate::mpi::Comm,
        bytes: &mut [u8],
        elem: usize,
        elem_type: &'static str,
        source: Rank,
        tag: Tag,
    ) -> Result<Status> {
        let m = match self.matcher(source, tag) {
            Ok(m) => m,
            Err(e) => return Self::null_recv(e, tag),
        };
        let want = Want::Bytes {
            cap: bytes.len(),
            elem,
            elem_type,
        };
        mc.recv_into(&m, &want, bytes)
    }

    /// Receives a message of any length into a new `Vec` of exactly its size.
    ///
    /// MPI 4.1 §3.8.1 and §3.2.4 (`MPI_Probe`, `MPI_Get_count`, then `MPI_Recv`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `source` is neither a rank of the communicator,
    ///   [`ANY_SOURCE`] nor [`PROC_NULL`];
    /// - [`Error::InvalidTag`] when `tag` is negative and not [`ANY_TAG`];
    /// - [`Error::Usage`] when `T` is a zero-sized type;
    /// - [`Error::ElementSize`] when the message's length is not a whole number of `T`s,
    ///   [`Error::TypeMismatch`] when it was sent as an object: the message stays queued;
    /// - [`Error::PeerFailed`] when `source` (for [`ANY_SOURCE`], every other rank) has died
    ///   or left with nothing more in flight to this rank; [`Error::Aborted`] when the job is
    ///   aborted; [`Error::Corrupted`] when a ring fails a consistency check.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send_slice(&[3i32; 10], me, 0)?;
    /// let (v, st) = world.recv_vec::<i32>(me, 0)?;
    /// assert_eq!((v.len(), st.len()), (10, 40));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn recv_vec<T: Pod>(&self, source: Rank, tag: Tag) -> Result<(Vec<T>, Status)> {
        if crate::trace::hooked() {
            return self.recv_vec_recorded(source, tag);
        }
        let elem = Self::elem::<T>()?;
        let m = match self.matcher(source, tag) {
            Ok(m) => m,
            Err(e) => return Self::null_recv(e, tag).map(|st| (Vec::new(), st)),
        };
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            let (v, env) = mc.recv_vec::<T>(&m, elem)?;
            return Ok((v, self.status(&env)));
        }
        let desc = self.desc(WaitOp::Recv, Call::RecvVec, m.src, tag);
        let mut eng = self.inner.eng.borrow_mut();
        let (env, _) = eng.probe(m, &desc)?;
        let want = Want::Bytes {
            cap: env.len,
            elem,
            elem_type: codec::type_name::<T>(),
        };
        // Only the probe's envelope is at hand: name what its type says it is.
        want.check(&env, self.inner.peers.rank_of(env.src), || {
            crate::comm::loan::slice_ticket_name(env.type_id)
                .unwrap_or("an object")
                .into()
        })?;
        let mut v = vec![T::zeroed(); env.len / elem];
        // Receive exactly the probed message: same source and tag, and it is the
        // earliest such message, so the receive takes it.
        let exact = Matcher {
            ctx: m.ctx,
            src: Some(env.src),
            tag: Some(env.tag),
        };
        let got = eng.recv_into(
            &exact,
            &want,
            bytemuck::cast_slice_mut(&mut v),
            || desc,
            |e| *e,
        )?;
        debug_assert_eq!(got, env);
        Ok((v, self.status(&got)))
    }

    /// Receives a raw-bytes message of any length, its bytes kept as they arrived (for
    /// language bindings, which build their own object from them: one copy, no `Vec`
    /// of the binding's making). A whole message from a named peer is taken straight
    /// from that peer's ring, without the probe and second match of
    /// [`recv_vec`](Self::recv_vec). `PROC_NULL` gives an empty message.
    ///
    /// # Errors
    ///
    /// As [`recv_vec`](Self::recv_vec) for `u8`: a message sent as an object is
    /// [`Error::TypeMismatch`] and stays queued.
    #[doc(hidden)]
    pub fn recv_unsized(&self, source: Rank, tag: Tag) -> Result<(RawMessage, Status)> {
        let m = match self.matcher(source, tag) {
            Ok(m) => m,
            Err(e) => {
                let st = Self::null_recv(e, tag)?;
                return Ok((RawMessage::bytes_of(rkyv::util::AlignedVec::new(), st), st));
            }
        };
        if crate::trace::hooked() {
            return self.recv_unsized_recorded(source, tag);
        }
        #[cfg(feature = "mpi")]
        if self.inner.mpi.is_some() {
            let (v, st) = self.recv_vec::<u8>(source, tag)?;
            let mut data = rkyv::util::AlignedVec::with_capacity(v.len());
            data.extend_from_slice(&v);
            return Ok((RawMessage::bytes_of(data, st), st));
        }
        // Named `recv`, as the bindings' users call it (mpi4py's `comm.recv`), in the
        // launcher's reports and the trace.
        let desc = self.desc(WaitOp::Recv, Call::Recv, m.src, tag);
        let want = Want::Bytes {
            cap: usize::MAX,
            elem: 1,
            elem_type: codec::type_name::<u8>(),
        };
        let (env, data) = self.inner.eng.borrow_mut().recv_message(m, want, &desc)?;
        let st = self.status(&env);
        Ok((RawMessage::bytes_of(data, st), st))
    }

    // ---- probing ----------------------------------------------------------------

    /// Blocks until a matching message is available and describes it without
    /// receiving it (`MPI_Probe`).
    ///
    /// MPI 4.1 §3.8.1 (`MPI_Probe`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `source` is neither a rank of the communicator,
    ///   [`ANY_SOURCE`] nor [`PROC_NULL`];
    /// - [`Error::InvalidTag`] when `tag` is negative and not [`ANY_TAG`];
    /// - [`Error::PeerFailed`] when `source` (for [`ANY_SOURCE`], every other rank) has died
    ///   or left with nothing more in flight to this rank; [`Error::Aborted`] when the job is
    ///   aborted; [`Error::Corrupted`] when a ring fails a consistency check.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send_slice(&[0u8; 12], me, 6)?;
    /// let st = world.probe(me, 6)?;
    /// assert_eq!(st.len(), 12);
    /// let (_, _) = world.recv_vec::<u8>(st.source(), st.tag())?;
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn probe(&self, source: Rank, tag: Tag) -> Result<Status> {
        let m = match self.matcher(source, tag) {
            Ok(m) => m,
            Err(e) => return Self::null_recv(e, tag),
        };
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            return Ok(self.status(&mc.probe(&m, true)?.expect("a blocking probe finds one")));
        }
        let desc = self.desc(WaitOp::Probe, Call::Probe, m.src, tag);
        let (env, _) = self.inner.eng.borrow_mut().probe(m, &desc)?;
        Ok(self.status(&env))
    }

    /// Describes a matching message if one is available now (`MPI_Iprobe`).
    ///
    /// MPI 4.1 §3.8.1 (`MPI_Iprobe`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `source` is neither a rank of the communicator,
    ///   [`ANY_SOURCE`] nor [`PROC_NULL`];
    /// - [`Error::InvalidTag`] when `tag` is negative and not [`ANY_TAG`];
    /// - [`Error::PeerFailed`] or [`Error::Aborted`] when the job was aborted (a rank died,
    ///   called `abort`, or the launcher stopped it); [`Error::Corrupted`] when a ring fails a
    ///   consistency check.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// assert!(world.iprobe(me, 99)?.is_none());
    /// world.send(&1u8, me, 99)?;
    /// assert_eq!(world.iprobe(me, 99)?.map(|st| st.source()), Some(me));
    /// let _: u8 = world.recv(me, 99)?;
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn iprobe(&self, source: Rank, tag: Tag) -> Result<Option<Status>> {
        let m = match self.matcher(source, tag) {
            Ok(m) => m,
            Err(e) => return Self::null_recv(e, tag).map(Some),
        };
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            return Ok(mc.probe(&m, false)?.map(|e| self.status(&e)));
        }
        let env = self.inner.eng.borrow_mut().iprobe(m)?;
        Ok(env.map(|e| self.status(&e)))
    }

    /// [`probe`](Self::probe) from any source with any tag (mpi4py `comm.probe()`).
    ///
    /// MPI 4.1 §3.8.1 (`MPI_Probe` with `MPI_ANY_SOURCE`, `MPI_ANY_TAG`).
    ///
    /// # Errors
    ///
    /// - [`Error::PeerFailed`] when `source` (for [`ANY_SOURCE`], every other rank) has died
    ///   or left with nothing more in flight to this rank; [`Error::Aborted`] when the job is
    ///   aborted; [`Error::Corrupted`] when a ring fails a consistency check.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send(&2u8, me, 8)?;
    /// assert_eq!(world.probe_any()?.tag(), 8);
    /// let _: u8 = world.recv(me, 8)?;
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn probe_any(&self) -> Result<Status> {
        self.probe(ANY_SOURCE, ANY_TAG)
    }

    /// [`iprobe`](Self::iprobe) from any source with any tag (mpi4py `comm.iprobe()`).
    ///
    /// MPI 4.1 §3.8.1 (`MPI_Iprobe` with `MPI_ANY_SOURCE`, `MPI_ANY_TAG`).
    ///
    /// # Errors
    ///
    /// - as [`iprobe`](Self::iprobe), for the job and the rings.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// assert!(world.iprobe_any()?.is_none());
    /// world.send(&2u8, me, 8)?;
    /// assert!(world.iprobe_any()?.is_some());
    /// let _: u8 = world.recv(me, 8)?;
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn iprobe_any(&self) -> Result<Option<Status>> {
        self.iprobe(ANY_SOURCE, ANY_TAG)
    }

    /// Matched probe (`MPI_Mprobe`; mpi4py `comm.mprobe()`): blocks until a matching
    /// message is there and takes it out of matching, so that no other receive can
    /// take it; receive it with the returned [`Message`]. From [`PROC_NULL`]: the null
    /// message (`MPI_MESSAGE_NO_PROC`) with the null status.
    ///
    /// MPI 4.1 §3.8.2 (`MPI_Mprobe`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `source` is neither a rank of the communicator,
    ///   [`ANY_SOURCE`] nor [`PROC_NULL`];
    /// - [`Error::InvalidTag`] when `tag` is negative and not [`ANY_TAG`];
    /// - [`Error::PeerFailed`] when `source` (for [`ANY_SOURCE`], every other rank) has died
    ///   or left with nothing more in flight to this rank; [`Error::Aborted`] when the job is
    ///   aborted; [`Error::Corrupted`] when a ring fails a consistency check.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send(&String::from("mine"), me, 1)?;
    /// let (mut msg, st) = world.mprobe(me, 1)?;
    /// assert!(world.iprobe(me, 1)?.is_none()); // out of matching now
    /// assert_eq!(st.len(), msg.status().len());
    /// assert_eq!(msg.recv::<String>()?, "mine");
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn mprobe(&self, source: Rank, tag: Tag) -> Result<(Message, Status)> {
        let m = match self.matcher(source, tag) {
            Ok(m) => m,
            Err(e) => {
                let st = Self::null_recv(e, tag)?;
                return Ok((self.null_message(), st));
            }
        };
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            let (env, data) = mc
                .recv_message_any(&m, true)?
                .expect("a blocking probe finds one");
            return Ok(self.mpi_message(env, data));
        }
        let desc = self.desc(WaitOp::Probe, Call::Mprobe, m.src, tag);
        let (env, c) = self.inner.eng.borrow_mut().mprobe(m, &desc)?;
        Ok(self.message(env, c))
    }

    /// Matched probe without blocking (`MPI_Improbe`; mpi4py `comm.improbe()`): like
    /// [`mprobe`](Self::mprobe) if a matching message is there now, else `None`.
    ///
    /// MPI 4.1 §3.8.2 (`MPI_Improbe`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `source` is neither a rank of the communicator,
    ///   [`ANY_SOURCE`] nor [`PROC_NULL`];
    /// - [`Error::InvalidTag`] when `tag` is negative and not [`ANY_TAG`];
    /// - as [`iprobe`](Self::iprobe), for the job and the rings.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// assert!(world.improbe(me, 1)?.is_none());
    /// world.send_slice(&[9u64], me, 1)?;
    /// let (mut msg, _) = world.improbe(me, 1)?.expect("sent to self above");
    /// assert_eq!(msg.recv_vec::<u64>()?.0, [9]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn improbe(&self, source: Rank, tag: Tag) -> Result<Option<(Message, Status)>> {
        let m = match self.matcher(source, tag) {
            Ok(m) => m,
            Err(e) => {
                let st = Self::null_recv(e, tag)?;
                return Ok(Some((self.null_message(), st)));
            }
        };
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            let found = mc.recv_message_any(&m, false)?;
            return Ok(found.map(|(env, data)| self.mpi_message(env, data)));
        }
        let found = self.inner.eng.borrow_mut().improbe(m)?;
        Ok(found.map(|(env, c)| self.message(env, c)))
    }

    fn message(&self, env: Envelope, c: crate::progress::Claimed) -> (Message, Status) {
        let st = self.status(&env);
        let msg = Message::new(
            &self.inner.eng,
            self.inner.peers.clone(),
            self.inner.ctx,
            st,
            env,
            c,
        );
        (msg, st)
    }

    /// A matched message of the MPI backend, received whole already.
    #[cfg(feature = "mpi")]
    fn mpi_message(&self, env: Envelope, data: rkyv::util::AlignedVec) -> (Message, Status) {
        let st = self.status(&env);
        let msg = Message::whole(
            &self.inner.eng,
            self.inner.peers.clone(),
            self.inner.ctx,
            st,
            env,
            data,
        );
        (msg, st)
    }

    fn null_message(&self) -> Message {
        Message::null(&self.inner.eng, self.inner.peers.clone(), self.inner.ctx)
    }

    // ---- combined -----------------------------------------------------------------

    /// Sends an object and receives one (`MPI_Sendrecv`). Cannot deadlock with a
    /// partner doing the same, since sends never wait for receives. A `dest` of
    /// [`PROC_NULL`] sends nothing; a `source` of `PROC_NULL` has no object to return
    /// and fails as [`recv`](Self::recv) does, before anything is sent (use
    /// [`sendrecv_slice`](Self::sendrecv_slice) or a [`send`](Self::send) then
    /// [`recv_opt`](Self::recv_opt) at the ends of a chain).
    ///
    /// MPI 4.1 §3.10 (`MPI_Sendrecv`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] and [`Error::InvalidTag`] for either half's arguments, and
    ///   [`Error::InvalidArgument`] of class [`ErrorClass::Rank`](crate::ErrorClass::Rank)
    ///   for a `source` of [`PROC_NULL`] (no `R` to return): checked before anything is
    ///   sent, so a call that fails on them sent nothing;
    /// - for the send half, as [`send`](Self::send) (nothing is received then);
    /// - for the receive half, after the send, as [`recv_with_status`](Self::recv_with_status).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let (n, right) = (world.size(), (me + 1) % world.size());
    /// let left = (me + n - 1) % n;
    /// let (from_left, st) = world.sendrecv::<i32, i32>(&me, right, 0, left, 0)?;
    /// assert_eq!((from_left, st.source()), (left, left));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn sendrecv<S: Encode, R: Decode>(
        &self,
        value: &S,
        dest: Rank,
        send_tag: Tag,
        source: Rank,
        recv_tag: Tag,
    ) -> Result<(R, Status)> {
        // Both halves' arguments are checked before anything is sent: a call that fails
        // on its receive half must not have sent a message its retry sends again.
        self.check_send_args(dest, send_tag)?;
        match self.matcher(source, recv_tag) {
            Ok(_) => {}
            Err(e) if is_null(&e) => {
                Self::recv_tag(recv_tag)?;
                return Err(null_recv_error("sendrecv", codec::type_name::<R>()));
            }
            Err(e) => return Err(e),
        }
        self.send(value, dest, send_tag)?;
        self.recv_with_status(source, recv_tag)
    }

    /// Checks a send's destination and tag without sending ([`PROC_NULL`] is valid).
    fn check_send_args(&self, dest: Rank, tag: Tag) -> Result<()> {
        match self.dest(dest) {
            Ok(_) => Self::send_tag(tag).map(|_| ()),
            Err(e) => Self::null_send(e, tag),
        }
    }

    /// Sends `buf` and receives into it (`MPI_Sendrecv_replace`; mpi4py
    /// `comm.Sendrecv_replace`): the message sent is `buf`'s content before the call.
    /// The received message may be shorter than `buf` (the rest is left as sent);
    /// from [`PROC_NULL`], `buf` keeps what was sent.
    ///
    /// MPI 4.1 §3.10 (`MPI_Sendrecv_replace`).
    ///
    /// # Errors
    ///
    /// - as [`sendrecv_slice`](Self::sendrecv_slice).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let (n, right) = (world.size(), (me + 1) % world.size());
    /// let left = (me + n - 1) % n;
    /// let mut buf = [me; 3];
    /// let st = world.sendrecv_replace(&mut buf, right, 0, left, 0)?;
    /// assert_eq!((buf, st.source()), ([left; 3], left));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn sendrecv_replace<T: Pod>(
        &self,
        buf: &mut [T],
        dest: Rank,
        send_tag: Tag,
        source: Rank,
        recv_tag: Tag,
    ) -> Result<Status> {
        let out = buf.to_vec();
        self.sendrecv_slice(&out, dest, send_tag, buf, source, recv_tag)
    }

    /// Sends a slice and receives into `buf` (`MPI_Sendrecv`; mpi4py `comm.Sendrecv`).
    /// The two overlap: while the send waits for ring space, the receive takes its
    /// message straight from the ring into `buf`, so that ranks exchanging long arrays
    /// (a halo exchange) move both directions at once, with one copy on each side. A
    /// receive that cannot take its message (too long, wrong element size) fails after
    /// the send is done and leaves the message queued.
    ///
    /// MPI 4.1 §3.10 (`MPI_Sendrecv`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`], [`Error::InvalidTag`] and [`Error::Usage`] for the
    ///   arguments, as [`send_slice`](Self::send_slice) and [`recv_into`](Self::recv_into)
    ///   check them (nothing is sent then);
    /// - [`Error::Truncated`] when the matched message is longer than `buf`,
    ///   [`Error::ElementSize`] when its length is not a whole number of `T`s, and
    ///   [`Error::TypeMismatch`] when it was sent as an object: after the send, in each case the message stays
    ///   queued;
    /// - [`Error::PeerFailed`] when `dest` or `source` dies or leaves first;
    ///   [`Error::Aborted`] when the job is aborted; [`Error::Corrupted`] when a ring fails a
    ///   consistency check.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let (n, right) = (world.size(), (me + 1) % world.size());
    /// let left = (me + n - 1) % n;
    /// let mut halo = [0f64; 4];
    /// let st = world.sendrecv_slice(&[me as f64; 4], right, 0, &mut halo, left, 0)?;
    /// assert_eq!((halo, st.count::<f64>()), ([left as f64; 4], Some(4)));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn sendrecv_slice<T: Pod>(
        &self,
        data: &[T],
        dest: Rank,
        send_tag: Tag,
        buf: &mut [T],
        source: Rank,
        recv_tag: Tag,
    ) -> Result<Status> {
        if dest == PROC_NULL || source == PROC_NULL {
            // Either half on PROC_NULL completes at once: the other half alone (a send
            // never waits for its receive, so doing them in turn cannot deadlock). The
            // receive half is checked first, so that a call failing on it sent nothing.
            Self::elem::<T>()?;
            self.check_send_args(dest, send_tag)?;
            if let Err(e) = self.matcher(source, recv_tag) {
                Self::null_recv(e, recv_tag)?;
            }
            self.send_slice(data, dest, send_tag)?;
            return self.recv_into(buf, source, recv_tag);
        }
        let (d, env, bytes) = self.slice_send(data, dest, send_tag)?;
        let (m, want, into) = self.slice_recv(buf, source, recv_tag)?;
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            return mc.sendrecv(d, env, bytes, &m, &want, into);
        }
        let got = self.inner.eng.borrow_mut().sendrecv_into(
            d,
            env,
            bytes,
            m,
            want,
            into,
            &self.desc(WaitOp::Send, Call::SendrecvSlice, Some(d), env.tag),
            &self.desc(WaitOp::Recv, Call::SendrecvSlice, m.src, recv_tag),
        )?;
        Ok(self.status(&got))
    }

    // ---- non-blocking -------------------------------------------------------------

    /// Starts sending an object (mpi4py `comm.isend`). The object is serialized now;
    /// the request completes when the message is in the ring.
    ///
    /// MPI 4.1 §3.7.2 (`MPI_Isend`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `dest` is not a rank of the communicator (a `dest` of
    ///   [`PROC_NULL`] sends nothing and succeeds);
    /// - [`Error::InvalidTag`] when `tag` is negative ([`ANY_TAG`] is for receives only);
    /// - [`Error::Serialize`] when the value cannot be archived;
    /// - [`Error::PeerFailed`] from the request's `wait` when `dest` dies or leaves before the
    ///   message is all in the ring; [`Error::Aborted`] when the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let req = world.isend(&vec![1u8, 2], me, 0)?;
    /// let v: Vec<u8> = world.recv(me, 0)?;
    /// req.wait()?;
    /// assert_eq!(v, [1, 2]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn isend<T: Encode>(&self, value: &T, dest: Rank, tag: Tag) -> Result<Request<()>> {
        self.isend_object(value, dest, tag, Call::Isend)
    }

    /// [`isend`](Self::isend) or [`issend`](Self::issend).
    fn isend_object<T: Encode>(
        &self,
        value: &T,
        dest: Rank,
        tag: Tag,
        call: Call,
    ) -> Result<Request<()>> {
        let d = match self.dest(dest) {
            Ok(d) => d,
            Err(e) => {
                Self::null_send(e, tag)?;
                return Ok(self.done_request(Done::Sent(None), call, tag, sent_unit));
            }
        };
        let tag = Self::send_tag(tag)?;
        let bytes = codec::encode(value)?;
        let env = self.envelope(tag, bytes.len(), codec::type_id::<T>());
        self.isend_bytes(d, env, bytes, call)
    }

    /// Starts a send of bytes the runtime owns; the request yields `()`.
    fn isend_bytes(
        &self,
        d: usize,
        env: Envelope,
        bytes: rkyv::util::AlignedVec,
        call: Call,
    ) -> Result<Request<()>> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            let sync = matches!(call, Call::Issend | Call::IssendSlice);
            let id = mc.isend_bytes(d, env.tag, env.type_id, bytes, sync)?;
            return Ok(Request::new_mpi(
                mc,
                &self.inner.eng,
                id,
                self.what(call, Some(d), env.tag),
                sent_unit,
            ));
        }
        let buf = SendBuf::Bytes(bytes);
        let started = if matches!(call, Call::Issend | Call::IssendSlice) {
            self.inner.eng.borrow_mut().issend(d, env, buf)?
        } else {
            self.inner.eng.borrow_mut().isend(d, env, buf)?
        };
        Ok(Request::started(
            &self.inner.eng,
            started,
            self.what(call, Some(d), env.tag),
            sent_unit,
        ))
    }

    /// Starts sending a vector of plain data (mpi4py `comm.Isend`). The runtime owns
    /// the vector until the request completes, then [`Request::wait`] returns it.
    ///
    /// A message of `SHMPI_OFFER_BYTES` (64 KiB) or more, where the system lets ranks
    /// read each other's memory, is not copied into the ring: the receive that matches
    /// it copies it once, straight from this vector, and the request completes when it
    /// has (or when the receiver, blocked in another call, has copied it aside), as
    /// MPI allows. Smaller messages complete once they are all in the ring. The same
    /// holds for [`isend_buf`](Self::isend_buf), scoped sends and persistent sends.
    ///
    /// MPI 4.1 §3.7.2 (`MPI_Isend`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `dest` is not a rank of the communicator (a `dest` of
    ///   [`PROC_NULL`] sends nothing and succeeds);
    /// - [`Error::InvalidTag`] when `tag` is negative ([`ANY_TAG`] is for receives only);
    /// - [`Error::Usage`] when `T` is a zero-sized type;
    /// - [`Error::PeerFailed`] from the request's `wait` when `dest` dies or leaves before the
    ///   message is all in the ring (or, offered, copied); [`Error::Aborted`] when the job
    ///   is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let req = world.isend_vec(vec![7u32; 3], me, 0)?;
    /// let back = req.wait()?; // the vector, given back
    /// assert_eq!(world.recv_vec::<u32>(me, 0)?.0, back);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn isend_vec<T: Pod>(&self, data: Vec<T>, dest: Rank, tag: Tag) -> Result<Request<Vec<T>>> {
        self.isend_vec_as(data, dest, tag, Call::IsendVec)
    }

    /// Starts sending the plain data of any owner of it: `Vec<T>`, `Box<[T]>`, an
    /// `Arc<[T]>` (so that one buffer goes out in many sends at once, as C programs
    /// do), a memory map, a foreign buffer (the Python package's arrays). The runtime
    /// holds `buf` (boxed, so its bytes stay put) until the message is all in the
    /// receiver's ring, reads it in place, and hands it back from `wait`: leak-safe
    /// like [`isend_vec`](Self::isend_vec), without the copy of
    /// [`isend_slice`](Self::isend_slice).
    ///
    /// MPI 4.1 §3.7.2 (`MPI_Isend`).
    ///
    /// # Errors
    ///
    /// As [`isend_vec`](Self::isend_vec).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let frame: Arc<[f32]> = vec![0.5; 1024].into();
    /// let reqs = (0..4)
    ///     .map(|t| world.isend_buf(frame.clone(), me, t))
    ///     .collect::<shmpi::Result<Vec<_>>>()?;
    /// for t in 0..4 {
    ///     assert_eq!(world.recv_vec::<f32>(me, t)?.0, &frame[..]);
    /// }
    /// shmpi::wait_all(reqs)?; // each gives its Arc back
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn isend_buf<T: Pod, B: AsRef<[T]> + 'static>(
        &self,
        buf: B,
        dest: Rank,
        tag: Tag,
    ) -> Result<Request<B>> {
        self.isend_buf_as(buf, dest, tag, Call::IsendSlice)
    }

    /// Sends the bytes `data` at once if the whole message goes into `dest`'s ring now,
    /// as the first step of a non-blocking send does (for language bindings: a send
    /// that completes as it starts needs no request, and the binding need not hold its
    /// buffer until a wait). `Ok(false)`, having sent nothing, when it does not (no
    /// room, earlier messages still queued to `dest`, a message too large for one
    /// record, `dest` this rank or `PROC_NULL`, the MPI backend, a trace recording):
    /// the binding then starts an ordinary non-blocking send, which orders the message
    /// after those queued.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRank`] and [`Error::InvalidTag`], as [`isend_buf`](Self::isend_buf).
    #[doc(hidden)]
    pub fn try_isend_now(&self, data: &[u8], dest: Rank, tag: Tag) -> Result<bool> {
        let d = match self.dest(dest) {
            Ok(d) => d,
            Err(_) if dest == crate::PROC_NULL => return Ok(false),
            Err(e) => return Err(e),
        };
        let tag = Self::send_tag(tag)?;
        #[cfg(feature = "mpi")]
        if self.inner.mpi.is_some() {
            return Ok(false);
        }
        if crate::trace::hooked() {
            return Ok(false);
        }
        let env = self.envelope(tag, data.len(), 0);
        Ok(self.inner.eng.borrow_mut().try_send_whole(d, &env, data))
    }

    /// [`isend_buf`](Self::isend_buf) as a synchronous send (`MPI_Issend`): it
    /// completes once the message is all in the ring and a receive has matched it.
    ///
    /// MPI 4.1 §3.7.2 (`MPI_Issend`).
    ///
    /// # Errors
    ///
    /// As [`issend_vec`](Self::issend_vec).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let req = world.issend_buf(Box::<[u16]>::from([1, 2]), me, 0)?;
    /// assert_eq!(world.recv_vec::<u16>(me, 0)?.0, [1, 2]);
    /// assert_eq!(*req.wait()?, [1, 2]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn issend_buf<T: Pod, B: AsRef<[T]> + 'static>(
        &self,
        buf: B,
        dest: Rank,
        tag: Tag,
    ) -> Result<Request<B>> {
        self.isend_buf_as(buf, dest, tag, Call::IssendSlice)
    }

    fn isend_buf_as<T: Pod, B: AsRef<[T]> + 'static>(
        &self,
        buf: B,
        dest: Rank,
        tag: Tag,
        call: Call,
    ) -> Result<Request<B>> {
        Self::elem::<T>()?;
        if call == Call::IsendSlice
            && self.try_isend_now(bytemuck::cast_slice(buf.as_ref()), dest, tag)?
        {
            return Ok(Request::sent_at_start(&self.inner.eng, buf, call));
        }
        let finish: crate::request::Finish<B> = |done, _, out| {
            sent_result(done, out, |b| {
                b.into_owner::<B>().ok().expect("the buffer given")
            })
        };
        let buf = PodVec::owned(buf, |b| {
            let bytes: &[u8] = bytemuck::cast_slice(b.as_ref());
            (std::ptr::NonNull::from(bytes).cast(), bytes.len())
        });
        self.isend_pod(buf, dest, tag, call, finish)
    }

    /// [`isend_vec`](Self::isend_vec) or [`issend_vec`](Self::issend_vec).
    fn isend_vec_as<T: Pod>(
        &self,
        data: Vec<T>,
        dest: Rank,
        tag: Tag,
        call: Call,
    ) -> Result<Request<Vec<T>>> {
        Self::elem::<T>()?;
        // Most small sends go into the ring as they start: the vector then stays in the
        // request as it is, never erased into the engine's buffer and made back.
        if call == Call::IsendVec && self.try_isend_now(bytemuck::cast_slice(&data), dest, tag)? {
            return Ok(Request::sent_at_start(&self.inner.eng, data, call));
        }
        let finish: crate::request::Finish<Vec<T>> = |done, _, out| {
            sent_result(done, out, |b| {
                b.into_vec::<T>().ok().expect("the buffer given")
            })
        };
        self.isend_pod(PodVec::new(data), dest, tag, call, finish)
    }

    /// A non-blocking send of the plain data in `buf`, which the engine holds until
    /// the message is all in the ring and `finish` turns back into the result (an
    /// owned vector, or a scope's borrowed slice).
    pub(crate) fn isend_pod<R>(
        &self,
        buf: PodVec,
        dest: Rank,
        tag: Tag,
        call: Call,
        finish: crate::request::Finish<R>,
    ) -> Result<Request<R>> {
        let d = match self.dest(dest) {
            Ok(d) => d,
            Err(e) => {
                Self::null_send(e, tag)?;
                return Ok(self.done_request(Done::Sent(Some(buf)), call, tag, finish));
            }
        };
        let tag = Self::send_tag(tag)?;
        let sync = matches!(call, Call::IssendVec | Call::IssendSlice);
        let env = self.envelope(tag, buf.bytes().len(), 0);
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            let id = match mc.isend_buf_now(d, tag, buf, sync)? {
                Ok(id) => id,
                Err(buf) => {
                    let what = self.what(call, Some(d), tag);
                    let done = Started::Done(Done::Sent(Some(buf)));
                    return Ok(Request::started(&self.inner.eng, done, what, finish).of_mpi(mc));
                }
            };
            return Ok(Request::new_mpi(
                mc,
                &self.inner.eng,
                id,
                self.what(call, Some(d), tag),
                finish,
            ));
        }
        let buf = SendBuf::Pod(buf);
        let started = if sync {
            self.inner.eng.borrow_mut().issend(d, env, buf)?
        } else {
            self.inner.eng.borrow_mut().isend(d, env, buf)?
        };
        Ok(Request::started(
            &self.inner.eng,
            started,
            self.what(call, Some(d), tag),
            finish,
        ))
    }

    /// Starts sending a copy of `data`.
    ///
    /// MPI 4.1 §3.7.2 (`MPI_Isend`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `dest` is not a rank of the communicator (a `dest` of
    ///   [`PROC_NULL`] sends nothing and succeeds);
    /// - [`Error::InvalidTag`] when `tag` is negative ([`ANY_TAG`] is for receives only);
    /// - [`Error::Usage`] when `T` is a zero-sized type;
    /// - [`Error::PeerFailed`] from the request's `wait` when `dest` dies or leaves before the
    ///   message is all in the ring; [`Error::Aborted`] when the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let data = [1i16, 2, 3];
    /// let req = world.isend_slice(&data, me, 0)?; // `data` is free again at once
    /// req.wait()?;
    /// assert_eq!(world.recv_vec::<i16>(me, 0)?.0, data);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn isend_slice<T: Pod>(&self, data: &[T], dest: Rank, tag: Tag) -> Result<Request<()>> {
        self.isend_slice_as(data, dest, tag, Call::IsendSlice)
    }

    /// [`isend_slice`](Self::isend_slice) or [`issend_slice`](Self::issend_slice).
    fn isend_slice_as<T: Pod>(
        &self,
        data: &[T],
        dest: Rank,
        tag: Tag,
        call: Call,
    ) -> Result<Request<()>> {
        Self::elem::<T>()?;
        // Into the ring now if it fits: no copy of `data` to hold, no allocation.
        if call == Call::IsendSlice && self.try_isend_now(bytemuck::cast_slice(data), dest, tag)? {
            return Ok(Request::sent_at_start(&self.inner.eng, (), call));
        }
        let d = match self.dest(dest) {
            Ok(d) => d,
            Err(e) => {
                Self::null_send(e, tag)?;
                return Ok(self.done_request(Done::Sent(None), call, tag, sent_unit));
            }
        };
        let tag = Self::send_tag(tag)?;
        let mut bytes = rkyv::util::AlignedVec::<16>::with_capacity(std::mem::size_of_val(data));
        bytes.extend_from_slice(bytemuck::cast_slice(data));
        let env = self.envelope(tag, bytes.len(), 0);
        self.isend_bytes(d, env, bytes, call)
    }

    // ---- send modes -----------------------------------------------------------------

    /// Synchronous send of an object (`MPI_Ssend`; mpi4py `comm.ssend`): returns once
    /// the matching receive has started (a receive or matched probe on `dest` matched
    /// the message), or fails with [`Error::PeerFailed`] if `dest` leaves first.
    ///
    /// MPI 4.1 §3.4 (`MPI_Ssend`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `dest` is not a rank of the communicator (a `dest` of
    ///   [`PROC_NULL`] sends nothing and succeeds);
    /// - [`Error::InvalidTag`] when `tag` is negative ([`ANY_TAG`] is for receives only);
    /// - [`Error::Serialize`] when the value cannot be archived;
    /// - [`Error::PeerFailed`] when `dest` dies or leaves before it matched the message;
    ///   [`Error::Aborted`] when the job is aborted;
    /// - [`Error::Usage`] for a synchronous send to this rank itself with no matching receive
    ///   posted before it (it could never complete: MPI's deadlock); the message is withdrawn.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let r = world.irecv::<u32>(me, 3)?; // to self, the receive must be posted first
    /// world.ssend(&5u32, me, 3)?;
    /// assert_eq!(r.wait()?.0, 5);
    /// world.ssend(&5u32, shmpi::PROC_NULL, 3)?;
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn ssend<T: Encode>(&self, value: &T, dest: Rank, tag: Tag) -> Result<()> {
        let d = match self.dest(dest) {
            Ok(d) => d,
            Err(e) => return Self::null_send(e, tag),
        };
        let tag = Self::send_tag(tag)?;
        let bytes = codec::encode(value)?;
        let env = self.envelope(tag, bytes.len(), codec::type_id::<T>());
        self.ssend_bytes(d, env, &bytes, Call::Ssend)
    }

    /// Synchronous send of a slice (`MPI_Ssend`; mpi4py `comm.Ssend`).
    ///
    /// MPI 4.1 §3.4 (`MPI_Ssend`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `dest` is not a rank of the communicator (a `dest` of
    ///   [`PROC_NULL`] sends nothing and succeeds);
    /// - [`Error::InvalidTag`] when `tag` is negative ([`ANY_TAG`] is for receives only);
    /// - [`Error::Usage`] when `T` is a zero-sized type;
    /// - [`Error::PeerFailed`] when `dest` dies or leaves before it matched the message;
    ///   [`Error::Aborted`] when the job is aborted;
    /// - [`Error::Usage`] for a synchronous send to this rank itself with no matching receive
    ///   posted before it (it could never complete: MPI's deadlock); the message is withdrawn.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let r = world.irecv_into(vec![0u8; 4], me, 3)?;
    /// world.ssend_slice(&[1u8, 2, 3, 4], me, 3)?;
    /// assert_eq!(r.wait()?.0, [1, 2, 3, 4]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn ssend_slice<T: Pod>(&self, data: &[T], dest: Rank, tag: Tag) -> Result<()> {
        let (d, env, bytes) = match self.slice_send(data, dest, tag) {
            Ok(x) => x,
            Err(e) => return Self::null_send(e, tag),
        };
        self.ssend_bytes(d, env, bytes, Call::SsendSlice)
    }

    fn ssend_bytes(&self, d: usize, env: Envelope, bytes: &[u8], call: Call) -> Result<()> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            return mc.send(d, env, bytes, true);
        }
        let send = self.desc(WaitOp::Send, call, Some(d), env.tag);
        let ack = self.desc(WaitOp::SyncSend, call, Some(d), env.tag);
        self.inner
            .eng
            .borrow_mut()
            .ssend(d, env, bytes, &send, &ack)
    }

    /// Starts a synchronous send of an object (`MPI_Issend`; mpi4py `comm.issend`): the
    /// request completes once the matching receive has started.
    ///
    /// MPI 4.1 §3.7.2 (`MPI_Issend`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `dest` is not a rank of the communicator (a `dest` of
    ///   [`PROC_NULL`] sends nothing and succeeds);
    /// - [`Error::InvalidTag`] when `tag` is negative ([`ANY_TAG`] is for receives only);
    /// - [`Error::Serialize`] when the value cannot be archived;
    /// - from the request's `wait`: [`Error::PeerFailed`] when `dest` dies or leaves before
    ///   it matched the message; [`Error::Aborted`] when the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let mut req = world.issend(&1u8, me, 0)?;
    /// assert!(!req.is_complete()?); // nothing has matched it yet
    /// let v: u8 = world.recv(me, 0)?;
    /// req.wait()?;
    /// assert_eq!(v, 1);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn issend<T: Encode>(&self, value: &T, dest: Rank, tag: Tag) -> Result<Request<()>> {
        self.isend_object(value, dest, tag, Call::Issend)
    }

    /// Starts a synchronous send of a vector (`MPI_Issend`; mpi4py `comm.Issend`); the
    /// request returns the vector once the matching receive has started.
    ///
    /// MPI 4.1 §3.7.2 (`MPI_Issend`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `dest` is not a rank of the communicator (a `dest` of
    ///   [`PROC_NULL`] sends nothing and succeeds);
    /// - [`Error::InvalidTag`] when `tag` is negative ([`ANY_TAG`] is for receives only);
    /// - [`Error::Usage`] when `T` is a zero-sized type;
    /// - from the request's `wait`: [`Error::PeerFailed`] when `dest` dies or leaves before
    ///   it matched the message; [`Error::Aborted`] when the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let req = world.issend_vec(vec![2u64; 5], me, 0)?;
    /// let (got, _) = world.recv_vec::<u64>(me, 0)?;
    /// assert_eq!(req.wait()?, got);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn issend_vec<T: Pod>(
        &self,
        data: Vec<T>,
        dest: Rank,
        tag: Tag,
    ) -> Result<Request<Vec<T>>> {
        self.isend_vec_as(data, dest, tag, Call::IssendVec)
    }

    /// Starts a synchronous send of a copy of `data` (`MPI_Issend`).
    ///
    /// MPI 4.1 §3.7.2 (`MPI_Issend`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `dest` is not a rank of the communicator (a `dest` of
    ///   [`PROC_NULL`] sends nothing and succeeds);
    /// - [`Error::InvalidTag`] when `tag` is negative ([`ANY_TAG`] is for receives only);
    /// - [`Error::Usage`] when `T` is a zero-sized type;
    /// - from the request's `wait`: [`Error::PeerFailed`] when `dest` dies or leaves before
    ///   it matched the message; [`Error::Aborted`] when the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let req = world.issend_slice(&[1.0f32, 2.0], me, 0)?;
    /// let (got, _) = world.recv_vec::<f32>(me, 0)?;
    /// req.wait()?;
    /// assert_eq!(got, [1.0, 2.0]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn issend_slice<T: Pod>(&self, data: &[T], dest: Rank, tag: Tag) -> Result<Request<()>> {
        self.isend_slice_as(data, dest, tag, Call::IssendSlice)
    }

    /// Buffered send (`MPI_Bsend`; mpi4py `comm.bsend`): the standard [`send`](Self::send),
    /// which already buffers the whole message in the shared ring (no attached buffer
    /// is needed).
    ///
    /// MPI 4.1 §3.4 (`MPI_Bsend`).
    ///
    /// # Errors
    ///
    /// - as [`send`](Self::send).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.bsend(&"buffered".to_string(), me, 0)?;
    /// assert_eq!(world.recv::<String>(me, 0)?, "buffered");
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn bsend<T: Encode>(&self, value: &T, dest: Rank, tag: Tag) -> Result<()> {
        self.send(value, dest, tag)
    }

    /// Buffered send of a slice (`MPI_Bsend`; mpi4py `comm.Bsend`): [`send_slice`](Self::send_slice).
    ///
    /// MPI 4.1 §3.4 (`MPI_Bsend`).
    ///
    /// # Errors
    ///
    /// - as [`send_slice`](Self::send_slice).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.bsend_slice(&[4u8; 4], me, 0)?;
    /// assert_eq!(world.recv_vec::<u8>(me, 0)?.0, [4; 4]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn bsend_slice<T: Pod>(&self, data: &[T], dest: Rank, tag: Tag) -> Result<()> {
        self.send_slice(data, dest, tag)
    }

    /// Ready send (`MPI_Rsend`; mpi4py `comm.rsend`): the standard [`send`](Self::send).
    /// MPI makes it erroneous unless the receive is posted; here it is always correct.
    ///
    /// MPI 4.1 §3.4 (`MPI_Rsend`).
    ///
    /// # Errors
    ///
    /// - as [`send`](Self::send).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let r = world.irecv::<u8>(me, 0)?; // MPI requires the receive to be posted first
    /// world.rsend(&3u8, me, 0)?;
    /// assert_eq!(r.wait()?.0, 3);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn rsend<T: Encode>(&self, value: &T, dest: Rank, tag: Tag) -> Result<()> {
        self.send(value, dest, tag)
    }

    /// Ready send of a slice (`MPI_Rsend`; mpi4py `comm.Rsend`): [`send_slice`](Self::send_slice).
    ///
    /// MPI 4.1 §3.4 (`MPI_Rsend`).
    ///
    /// # Errors
    ///
    /// - as [`send_slice`](Self::send_slice).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let r = world.irecv_into(vec![0u8; 2], me, 0)?;
    /// world.rsend_slice(&[5u8, 6], me, 0)?;
    /// assert_eq!(r.wait()?.0, [5, 6]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn rsend_slice<T: Pod>(&self, data: &[T], dest: Rank, tag: Tag) -> Result<()> {
        self.send_slice(data, dest, tag)
    }

    /// Starts receiving an object (mpi4py `comm.irecv`).
    ///
    /// MPI 4.1 §3.7.2 (`MPI_Irecv`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `source` is neither a rank of the communicator,
    ///   [`ANY_SOURCE`] nor [`PROC_NULL`];
    /// - [`Error::InvalidTag`] when `tag` is negative and not [`ANY_TAG`];
    /// - [`Error::InvalidArgument`] of class [`ErrorClass::Rank`](crate::ErrorClass::Rank)
    ///   when `source` is [`PROC_NULL`], which has no `T` to return;
    /// - from the request's `wait`: [`Error::TypeMismatch`] when the matched message is not a
    ///   `T` (it stays queued), [`Error::InvalidArchive`] when its bytes fail validation (it
    ///   is gone), [`Error::InvalidArgument`] of class
    ///   [`ErrorClass::Request`](crate::ErrorClass::Request) when the request was cancelled
    ///   (there is no value), [`Error::PeerFailed`] and [`Error::Aborted`] as for
    ///   [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let req = world.irecv::<String>(me, 0)?;
    /// world.send(&"later".to_string(), me, 0)?;
    /// let (s, st) = req.wait()?;
    /// assert_eq!((s.as_str(), st.source()), ("later", me));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn irecv<T: Decode + 'static>(
        &self,
        source: Rank,
        tag: Tag,
    ) -> Result<Request<(T, Status)>> {
        let m = match self.matcher(source, tag) {
            Ok(m) => m,
            Err(e) if is_null(&e) => {
                Self::recv_tag(tag)?;
                return Err(null_recv_error("irecv", codec::type_name::<T>()));
            }
            Err(e) => return Err(e),
        };
        let want = Want::Object {
            type_id: codec::type_id::<T>(),
            type_name: codec::type_name::<T>(),
        };
        let finish: crate::request::Finish<(T, Status)> = |done, what, out| match done.take() {
            Some(Done::Recv {
                env,
                data: RecvData::Object(msg),
            }) => {
                let st = Status::of(&what.group, &env);
                Ok(out.fill((codec::decode::<T>(&msg, st.source, st.tag)?, st)))
            }
            Some(Done::Cancelled(_)) => Err(crate::request::cancelled_error(what).into()),
            Some(Done::Failed(e)) => Err(e.into()),
            _ => unreachable!("an object receive completes with an object"),
        };
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            let id = mc.irecv(m, want, None)?;
            let what = self.what(Call::Irecv, m.src, tag);
            return Ok(Request::new_mpi(mc, &self.inner.eng, id, what, finish));
        }
        let id =
            self.inner
                .eng
                .borrow_mut()
                .irecv(m, want, PostedBuf::Object, self.inner.peers.clone());
        Ok(Request::new(
            &self.inner.eng,
            id,
            self.what(Call::Irecv, m.src, tag),
            finish,
        ))
    }

    /// Starts receiving into `buf` (mpi4py `comm.Irecv`). The runtime owns the vector
    /// until the request completes; [`Request::wait`] returns it with the [`Status`].
    /// A message longer than `buf` fails the request with [`Error::Truncated`] and
    /// stays queued.
    ///
    /// MPI 4.1 §3.7.2 (`MPI_Irecv`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `source` is neither a rank of the communicator,
    ///   [`ANY_SOURCE`] nor [`PROC_NULL`];
    /// - [`Error::InvalidTag`] when `tag` is negative and not [`ANY_TAG`];
    /// - [`Error::Usage`] when `T` is a zero-sized type;
    /// - from the request's `wait`: [`Error::Truncated`], [`Error::ElementSize`] and
    ///   [`Error::TypeMismatch`] as for [`recv_into`](Self::recv_into) (the message stays
    ///   queued; the buffer is not given back), [`Error::PeerFailed`] and [`Error::Aborted`]
    ///   as for [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let req = world.irecv_into(vec![0i32; 8], me, 0)?;
    /// world.send_slice(&[1i32, 2], me, 0)?;
    /// let (buf, st) = req.wait()?;
    /// assert_eq!((&buf[..2], st.count::<i32>()), (&[1, 2][..], Some(2)));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn irecv_into<T: Pod>(
        &self,
        buf: Vec<T>,
        source: Rank,
        tag: Tag,
    ) -> Result<Request<(Vec<T>, Status)>> {
        let elem = Self::elem::<T>()?;
        let finish: crate::request::Finish<(Vec<T>, Status)> = |done, what, out| {
            recv_result(done, what, out, |b| {
                b.into_vec::<T>().ok().expect("the buffer given")
            })
        };
        let want = Want::Bytes {
            cap: std::mem::size_of_val(&buf[..]),
            elem,
            elem_type: codec::type_name::<T>(),
        };
        self.irecv_pod(PodVec::new(buf), want, source, tag, finish)
    }

    /// Starts receiving into the plain data of any owner of it (`Vec<T>`, `Box<[T]>`,
    /// a memory map, a foreign buffer), written in place: the runtime holds `buf`
    /// (boxed, so its bytes stay put) and hands it back from `wait` with the status.
    /// Leak-safe like [`irecv_into`](Self::irecv_into), which it generalizes.
    ///
    /// MPI 4.1 §3.7.2 (`MPI_Irecv`).
    ///
    /// # Errors
    ///
    /// As [`irecv_into`](Self::irecv_into).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let req = world.irecv_buf(Box::<[u64]>::from([0; 3]), me, 0)?;
    /// world.send_slice(&[4u64, 5, 6], me, 0)?;
    /// let (buf, st) = req.wait()?;
    /// assert_eq!((&buf[..], st.count::<u64>()), (&[4, 5, 6][..], Some(3)));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn irecv_buf<T: Pod, B: AsMut<[T]> + 'static>(
        &self,
        buf: B,
        source: Rank,
        tag: Tag,
    ) -> Result<Request<(B, Status)>> {
        let elem = Self::elem::<T>()?;
        let finish: crate::request::Finish<(B, Status)> = |done, what, out| {
            recv_result(done, what, out, |b| {
                b.into_owner::<B>().ok().expect("the buffer given")
            })
        };
        let buf = PodVec::owned(buf, |b| {
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(b.as_mut());
            (std::ptr::NonNull::from(&mut *bytes).cast(), bytes.len())
        });
        let want = Want::Bytes {
            cap: buf.bytes().len(),
            elem,
            elem_type: codec::type_name::<T>(),
        };
        self.irecv_pod(buf, want, source, tag, finish)
    }

    /// A non-blocking receive of plain data into `buf` (of `want`'s capacity), which
    /// the engine holds until the message is all in it and `finish` turns it back into
    /// the result (an owned vector, or a scope's borrowed slice) with its status.
    pub(crate) fn irecv_pod<R>(
        &self,
        mut buf: PodVec,
        want: Want,
        source: Rank,
        tag: Tag,
        finish: crate::request::Finish<(R, Status)>,
    ) -> Result<Request<(R, Status)>> {
        let m = match self.matcher(source, tag) {
            Ok(m) => m,
            Err(e) => {
                Self::null_recv(e, tag)?;
                // Complete at once, the buffer untouched.
                let done = Done::Recv {
                    env: Envelope {
                        ctx: self.inner.ctx,
                        src: NULL_SRC,
                        tag: ANY_TAG,
                        len: 0,
                        type_id: 0,
                    },
                    data: RecvData::Pod(buf),
                };
                return Ok(self.done_request(done, Call::IrecvInto, tag, finish));
            }
        };
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            let id = mc.irecv(m, want, Some(buf))?;
            let what = self.what(Call::IrecvInto, m.src, tag);
            return Ok(Request::new_mpi(mc, &self.inner.eng, id, what, finish));
        }
        let mut eng = self.inner.eng.borrow_mut();
        // A recorded receive goes through `irecv`, where the trace sees it.
        if !crate::trace::hooked() {
            if let Some(env) = eng.try_irecv_whole(&m, &want, buf.bytes_mut()) {
                drop(eng);
                let done = Done::Recv {
                    env,
                    data: RecvData::Pod(buf),
                };
                let what = self.what(Call::IrecvInto, m.src, tag);
                let status: fn(&(R, Status)) -> Status = |r| r.1;
                return Ok(Request::finished(
                    &self.inner.eng,
                    done,
                    what,
                    finish,
                    status,
                ));
            }
        }
        let id = eng.irecv(m, want, PostedBuf::Pod(buf), self.inner.peers.clone());
        drop(eng);
        Ok(Request::new(
            &self.inner.eng,
            id,
            self.what(Call::IrecvInto, m.src, tag),
            finish,
        ))
    }

    // ---- misc ---------------------------------------------------------------------

    /// Aborts the whole job (`MPI_Abort`): every rank's blocked calls fail, the
    /// launcher stops the job and exits with `code`. Does not return.
    ///
    /// MPI 4.1 §11.2 (`MPI_Abort`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let world = shmpi::init()?.world();
    /// if std::env::var_os("MY_INPUT").is_none() {
    ///     eprintln!("MY_INPUT is not set");
    ///     world.abort(2); // every rank stops; shmrun exits with 2
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn abort(&self, code: i32) -> ! {
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            mc.abort(code)
        }
        let seg = self.inner.eng.borrow().segment().clone();
        seg.abort_job(self.inner.wrank, code)
    }

    /// Messages that arrived but were not received yet (for diagnostics and tests).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let before = world.pending_messages();
    /// world.send(&0u8, me, 0)?;
    /// assert_eq!(world.pending_messages(), before + 1);
    /// let _: u8 = world.recv(me, 0)?;
    /// assert_eq!(world.pending_messages(), before);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn pending_messages(&self) -> usize {
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            return mc.held_len();
        }
        self.inner.eng.borrow().unexpected_len()
    }
}

/// The result of a send request that yields `()`.
fn sent_unit<'a>(done: &mut Option<Done>, _: &What, out: Slot<'a, ()>) -> Made<'a> {
    match done.take() {
        Some(Done::Sent(_)) => Ok(out.fill(())),
        Some(Done::Failed(e)) => Err(e.into()),
        _ => unreachable!("a send completes as sent"),
    }
}

/// The result of a plain-data receive that holds a buffer: the buffer (turned back
/// into what the caller lent by `back`) and the status, also for a cancelled one.
/// The engine's result is taken from where it lies, field by field (see
/// [`crate::out`]).
pub(crate) fn recv_result<'a, R>(
    done: &mut Option<Done>,
    what: &What,
    out: Slot<'a, (R, Status)>,
    back: impl FnOnce(PodVec) -> R,
) -> Made<'a> {
    // Only the buffer leaves the engine's result: a move of the whole `Done` would
    // read it back in wider loads than the engine's stores that just wrote it.
    let empty = || PodVec::new(Vec::<u8>::new());
    match done {
        Some(Done::Recv {
            env,
            data: RecvData::Pod(b),
        }) => {
            let status = Status::of(&what.group, env);
            Ok(out.fill((back(std::mem::replace(b, empty())), status)))
        }
        Some(Done::Cancelled(Some(b))) => {
            Ok(out.fill((back(std::mem::replace(b, empty())), Status::empty(true))))
        }
        Some(Done::Failed(_)) => match done.take() {
            Some(Done::Failed(e)) => Err(e.into()),
            _ => unreachable!("matched above"),
        },
        _ => unreachable!("a slice receive completes with its buffer"),
    }
}

/// The result of a plain-data send that holds a buffer: the buffer, by `back`.
pub(crate) fn sent_result<'a, R>(
    done: &mut Option<Done>,
    out: Slot<'a, R>,
    back: impl FnOnce(PodVec) -> R,
) -> Made<'a> {
    match done.take() {
        Some(Done::Sent(Some(b))) => Ok(out.fill(back(b))),
        Some(Done::Failed(e)) => Err(e.into()),
        _ => unreachable!("a buffer send completes with its buffer"),
    }
}

impl std::fmt::Debug for Communicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Communicator")
            .field("rank", &self.inner.rank)
            .field("size", &self.inner.group.size())
            .field("context", &self.inner.ctx)
            .finish()
    }
}
