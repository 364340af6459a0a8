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

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytemuck::Pod;

use crate::call::Call;
use crate::codec::{self, Access, Archived, Decode, Encode, PodVec};
use crate::completions::{Done, RecvData};
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::matching::{Group, Matcher, PostedBuf, Want};
use crate::progress::{Engine, SendBuf, WaitDesc, WaitOp};
use crate::request::{Request, What};
use crate::shmcoll::{Area, Proc};

// A child of this module, to use its argument checks.
#[path = "persistent.rs"]
pub(crate) mod persistent;

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

    /// Whether the request this status describes was cancelled
    /// (`MPI_Test_cancelled`): a receive withdrawn by
    /// [`Request::cancel`](crate::Request::cancel) before any message matched it.
    /// Its other fields are then those of the empty status.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// The sender's rank in the communicator of the receive.
    pub fn source(&self) -> Rank {
        self.source
    }

    /// The message's tag.
    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// The message's length in bytes (for objects: the archive plus shmpi's type
    /// trailer).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of `T` elements in the message (`MPI_Get_count`), or `None` if its
    /// length is not a whole number of them.
    pub fn count<T>(&self) -> Option<usize> {
        let size = std::mem::size_of::<T>();
        if size == 0 || self.len % size != 0 {
            None
        } else {
            Some(self.len / size)
        }
    }
}

/// A group of ranks that exchange messages in a context of their own
/// (`MPI_Comm`). Cheap to clone; not `Send`: each rank uses its communicators from
/// the thread that called [`init`](crate::init).
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
    /// This process's rank in `group`.
    pub(crate) rank: usize,
    /// The process's collective state (data slot bookkeeping).
    pub(crate) coll: Rc<Proc>,
    /// This communicator's collective area; dropping the last handle frees it.
    pub(crate) area: Rc<Area>,
    /// The next collective step (see `collective/mod.rs`).
    pub(crate) step: Cell<u64>,
    /// A collective failed part-way: the ranks are out of step.
    pub(crate) broken: Cell<bool>,
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
                group,
                rank,
                coll,
                area,
                step: Cell::new(1),
                broken: Cell::new(false),
            }),
        }
    }

    /// This process's rank in the communicator (`MPI_Comm_rank`).
    pub fn rank(&self) -> Rank {
        self.inner.rank as Rank
    }

    /// The number of ranks in the communicator (`MPI_Comm_size`).
    pub fn size(&self) -> Rank {
        self.inner.group.size() as Rank
    }

    // ---- argument checks ----------------------------------------------------------

    fn dest(&self, rank: Rank) -> Result<usize> {
        let size = self.inner.group.size();
        if rank < 0 || rank as usize >= size {
            return Err(Error::InvalidRank {
                rank,
                size,
                any_allowed: false,
            });
        }
        Ok(self.inner.group.ranks[rank as usize])
    }

    fn source(&self, rank: Rank) -> Result<Option<usize>> {
        if rank == ANY_SOURCE {
            return Ok(None);
        }
        let size = self.inner.group.size();
        if rank < 0 || rank as usize >= size {
            return Err(Error::InvalidRank {
                rank,
                size,
                any_allowed: true,
            });
        }
        Ok(Some(self.inner.group.ranks[rank as usize]))
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
        let src = self.inner.group.ranks[self.inner.rank];
        Envelope {
            ctx: self.inner.ctx,
            src,
            tag,
            len,
            type_id,
        }
    }

    fn desc(&self, op: WaitOp, call: Call, peer: Option<usize>, tag: Tag) -> WaitDesc<'_> {
        WaitDesc {
            op,
            call,
            peer,
            tag,
            ctx: self.inner.ctx,
            group: &self.inner.group,
        }
    }

    fn status(&self, env: &Envelope) -> Status {
        Status {
            source: self.inner.group.rank_of(env.src),
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
            group: self.inner.group.clone(),
        }
    }

    // ---- objects ----------------------------------------------------------------

    /// Sends an object (mpi4py `comm.send(obj, dest, tag)`; `MPI_Send` of its archive).
    /// Returns once the message is in the shared ring.
    pub fn send<T: Encode>(&self, value: &T, dest: Rank, tag: Tag) -> Result<()> {
        let d = self.dest(dest)?;
        let tag = Self::send_tag(tag)?;
        let bytes = codec::encode(value)?;
        let env = self.envelope(tag, bytes.len(), codec::type_id::<T>());
        self.inner.eng.borrow_mut().send(d, env, &bytes, || {
            self.desc(WaitOp::Send, Call::Send, Some(d), tag)
        })
    }

    /// Receives an object sent with [`send`](Self::send) (mpi4py `comm.recv`).
    /// `source` may be [`ANY_SOURCE`], `tag` [`ANY_TAG`]. A message of another type is
    /// [`Error::TypeMismatch`] and stays queued.
    pub fn recv<T: Decode>(&self, source: Rank, tag: Tag) -> Result<T> {
        self.recv_with_status(source, tag).map(|(v, _)| v)
    }

    /// Like [`recv`](Self::recv), also returning the message's [`Status`].
    pub fn recv_with_status<T: Decode>(&self, source: Rank, tag: Tag) -> Result<(T, Status)> {
        let (env, msg) = self.recv_object::<T>(source, tag)?;
        let st = self.status(&env);
        Ok((codec::decode::<T>(&msg, st.source, st.tag)?, st))
    }

    fn recv_object<T: ?Sized>(
        &self,
        source: Rank,
        tag: Tag,
    ) -> Result<(Envelope, rkyv::util::AlignedVec)> {
        let m = self.matcher(source, tag)?;
        let want = Want::Object {
            type_id: codec::type_id::<T>(),
            type_name: codec::type_name::<T>(),
        };
        let desc = self.desc(WaitOp::Recv, Call::Recv, m.src, tag);
        self.inner.eng.borrow_mut().recv_message(m, want, &desc)
    }

    /// Receives an object and gives access to its archive in place, without
    /// deserializing it (zero-copy on top of the one copy out of the ring). The archive
    /// is validated first.
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
        let d = self.dest(dest)?;
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
    pub fn send_slice<T: Pod>(&self, data: &[T], dest: Rank, tag: Tag) -> Result<()> {
        let (d, env, bytes) = self.slice_send(data, dest, tag)?;
        let mut eng = self.inner.eng.borrow_mut();
        let tag = env.tag;
        eng.send(d, env, bytes, || {
            self.desc(WaitOp::Send, Call::SendSlice, Some(d), tag)
        })
    }

    /// Receives into `buf` (mpi4py `comm.Recv(buf, source, tag)`; `MPI_Recv`). The
    /// message may be shorter than `buf` (see [`Status::count`]); a longer one is
    /// [`Error::Truncated`] and stays queued.
    pub fn recv_into<T: Pod>(&self, buf: &mut [T], source: Rank, tag: Tag) -> Result<Status> {
        let (m, want, bytes) = self.slice_recv(buf, source, tag)?;
        let mut eng = self.inner.eng.borrow_mut();
        eng.recv_into(
            &m,
            &want,
            bytes,
            || self.desc(WaitOp::Recv, Call::RecvInto, m.src, tag),
            |env| self.status(env),
        )
    }

    /// Receives a message of any length into a new `Vec` of exactly its size.
    pub fn recv_vec<T: Pod>(&self, source: Rank, tag: Tag) -> Result<(Vec<T>, Status)> {
        let elem = Self::elem::<T>()?;
        let m = self.matcher(source, tag)?;
        let desc = self.desc(WaitOp::Recv, Call::RecvVec, m.src, tag);
        let mut eng = self.inner.eng.borrow_mut();
        let (env, _) = eng.probe(m, &desc)?;
        let want = Want::Bytes {
            cap: env.len,
            elem,
            elem_type: codec::type_name::<T>(),
        };
        want.check(&env, self.inner.group.rank_of(env.src), || {
            "an object".into()
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

    // ---- probing ----------------------------------------------------------------

    /// Blocks until a matching message is available and describes it without
    /// receiving it (`MPI_Probe`).
    pub fn probe(&self, source: Rank, tag: Tag) -> Result<Status> {
        let m = self.matcher(source, tag)?;
        let desc = self.desc(WaitOp::Probe, Call::Probe, m.src, tag);
        let (env, _) = self.inner.eng.borrow_mut().probe(m, &desc)?;
        Ok(self.status(&env))
    }

    /// Describes a matching message if one is available now (`MPI_Iprobe`).
    pub fn iprobe(&self, source: Rank, tag: Tag) -> Result<Option<Status>> {
        let m = self.matcher(source, tag)?;
        let env = self.inner.eng.borrow_mut().iprobe(m)?;
        Ok(env.map(|e| self.status(&e)))
    }

    // ---- combined -----------------------------------------------------------------

    /// Sends an object and receives one (`MPI_Sendrecv`). Cannot deadlock with a
    /// partner doing the same, since sends never wait for receives.
    pub fn sendrecv<S: Encode, R: Decode>(
        &self,
        value: &S,
        dest: Rank,
        send_tag: Tag,
        source: Rank,
        recv_tag: Tag,
    ) -> Result<(R, Status)> {
        self.send(value, dest, send_tag)?;
        self.recv_with_status(source, recv_tag)
    }

    /// Sends a slice and receives into `buf` (`MPI_Sendrecv`; mpi4py `comm.Sendrecv`).
    /// The two overlap: while the send waits for ring space, the receive takes its
    /// message straight from the ring into `buf`, so that ranks exchanging long arrays
    /// (a halo exchange) move both directions at once, with one copy on each side. A
    /// receive that cannot take its message (too long, wrong element size) fails after
    /// the send is done and leaves the message queued.
    pub fn sendrecv_slice<T: Pod>(
        &self,
        data: &[T],
        dest: Rank,
        send_tag: Tag,
        buf: &mut [T],
        source: Rank,
        recv_tag: Tag,
    ) -> Result<Status> {
        let (d, env, bytes) = self.slice_send(data, dest, send_tag)?;
        let (m, want, into) = self.slice_recv(buf, source, recv_tag)?;
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
    pub fn isend<T: Encode>(&self, value: &T, dest: Rank, tag: Tag) -> Result<Request<()>> {
        let d = self.dest(dest)?;
        let tag = Self::send_tag(tag)?;
        let bytes = codec::encode(value)?;
        let env = self.envelope(tag, bytes.len(), codec::type_id::<T>());
        self.isend_bytes(d, env, bytes, Call::Isend)
    }

    /// Starts a send of bytes the runtime owns; the request yields `()`.
    fn isend_bytes(
        &self,
        d: usize,
        env: Envelope,
        bytes: rkyv::util::AlignedVec,
        call: Call,
    ) -> Result<Request<()>> {
        let id = self
            .inner
            .eng
            .borrow_mut()
            .isend(d, env, SendBuf::Bytes(bytes))?;
        Ok(Request::new(
            self.inner.eng.clone(),
            id,
            self.what(call, Some(d), env.tag),
            |done, _| match done {
                Done::Sent(_) => Ok(()),
                Done::Failed(e) => Err(e),
                Done::Recv { .. } | Done::Cancelled(_) => unreachable!("a send completes as sent"),
            },
        ))
    }

    /// Starts sending a vector of plain data (mpi4py `comm.Isend`). The runtime owns
    /// the vector until the request completes, then [`Request::wait`] returns it.
    pub fn isend_vec<T: Pod>(&self, data: Vec<T>, dest: Rank, tag: Tag) -> Result<Request<Vec<T>>> {
        Self::elem::<T>()?;
        let d = self.dest(dest)?;
        let tag = Self::send_tag(tag)?;
        let env = self.envelope(tag, std::mem::size_of_val(&data[..]), 0);
        let id = self
            .inner
            .eng
            .borrow_mut()
            .isend(d, env, SendBuf::Pod(PodVec::new(data)))?;
        Ok(Request::new(
            self.inner.eng.clone(),
            id,
            self.what(Call::IsendVec, Some(d), tag),
            |done, _| match done {
                Done::Sent(Some(b)) => Ok(b.into_vec::<T>().ok().expect("the buffer given")),
                Done::Failed(e) => Err(e),
                _ => unreachable!("a vector send completes with its vector"),
            },
        ))
    }

    /// Starts sending a copy of `data`.
    pub fn isend_slice<T: Pod>(&self, data: &[T], dest: Rank, tag: Tag) -> Result<Request<()>> {
        Self::elem::<T>()?;
        let d = self.dest(dest)?;
        let tag = Self::send_tag(tag)?;
        let mut bytes = rkyv::util::AlignedVec::<16>::with_capacity(std::mem::size_of_val(data));
        bytes.extend_from_slice(bytemuck::cast_slice(data));
        let env = self.envelope(tag, bytes.len(), 0);
        self.isend_bytes(d, env, bytes, Call::IsendSlice)
    }

    /// Starts receiving an object (mpi4py `comm.irecv`).
    pub fn irecv<T: Decode + 'static>(
        &self,
        source: Rank,
        tag: Tag,
    ) -> Result<Request<(T, Status)>> {
        let m = self.matcher(source, tag)?;
        let want = Want::Object {
            type_id: codec::type_id::<T>(),
            type_name: codec::type_name::<T>(),
        };
        let id =
            self.inner
                .eng
                .borrow_mut()
                .irecv(m, want, PostedBuf::Object, self.inner.group.clone());
        Ok(Request::new(
            self.inner.eng.clone(),
            id,
            self.what(Call::Irecv, m.src, tag),
            |done, what| match done {
                Done::Recv {
                    env,
                    data: RecvData::Object(msg),
                } => {
                    let st = Status {
                        source: what.group.rank_of(env.src),
                        tag: env.tag,
                        len: env.len,
                        cancelled: false,
                    };
                    Ok((codec::decode::<T>(&msg, st.source, st.tag)?, st))
                }
                Done::Cancelled(_) => Err(crate::request::cancelled_error(what)),
                Done::Failed(e) => Err(e),
                _ => unreachable!("an object receive completes with an object"),
            },
        ))
    }

    /// Starts receiving into `buf` (mpi4py `comm.Irecv`). The runtime owns the vector
    /// until the request completes; [`Request::wait`] returns it with the [`Status`].
    /// A message longer than `buf` fails the request with [`Error::Truncated`] and
    /// stays queued.
    pub fn irecv_into<T: Pod>(
        &self,
        buf: Vec<T>,
        source: Rank,
        tag: Tag,
    ) -> Result<Request<(Vec<T>, Status)>> {
        let elem = Self::elem::<T>()?;
        let m = self.matcher(source, tag)?;
        let want = Want::Bytes {
            cap: std::mem::size_of_val(&buf[..]),
            elem,
            elem_type: codec::type_name::<T>(),
        };
        let id = self.inner.eng.borrow_mut().irecv(
            m,
            want,
            PostedBuf::Pod(PodVec::new(buf)),
            self.inner.group.clone(),
        );
        Ok(Request::new(
            self.inner.eng.clone(),
            id,
            self.what(Call::IrecvInto, m.src, tag),
            |done, what| match done {
                Done::Recv {
                    env,
                    data: RecvData::Pod(b),
                } => {
                    let st = Status {
                        source: what.group.rank_of(env.src),
                        tag: env.tag,
                        len: env.len,
                        cancelled: false,
                    };
                    Ok((b.into_vec::<T>().ok().expect("the buffer given"), st))
                }
                Done::Cancelled(Some(b)) => Ok((
                    b.into_vec::<T>().ok().expect("the buffer given"),
                    Status::empty(true),
                )),
                Done::Failed(e) => Err(e),
                _ => unreachable!("a slice receive completes with its buffer"),
            },
        ))
    }

    // ---- misc ---------------------------------------------------------------------

    /// Aborts the whole job (`MPI_Abort`): every rank's blocked calls fail, the
    /// launcher stops the job and exits with `code`. Does not return.
    pub fn abort(&self, code: i32) -> ! {
        let seg = self.inner.eng.borrow().segment().clone();
        seg.abort_job(self.inner.group.ranks[self.inner.rank], code)
    }

    /// Messages that arrived but were not received yet (for diagnostics and tests).
    pub fn pending_messages(&self) -> usize {
        self.inner.eng.borrow().unexpected_len()
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
