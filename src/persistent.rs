//! Persistent requests (`MPI_Send_init`, `MPI_Recv_init`, `MPI_Start`,
//! `MPI_Startall`): [`PersistentRequest`], [`Communicator::send_init`],
//! [`Communicator::recv_init`] and [`start_all`]; the rules are on the type.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use bytemuck::Pod;

use super::{ANY_SOURCE, Communicator, PROC_NULL, Rank, Status, Tag};
use crate::call::Call;
use crate::codec::{self, PodVec};
use crate::completions::{Done, RecvData};
use crate::envelope::Envelope;
use crate::error::{Error, ErrorClass, Result};
use crate::matching::{Group, Matcher, PostedBuf, Want};
use crate::progress::{Engine, SendBuf};
use crate::request::{AnyRequest, Pending, What, status_of};

/// A send or a receive with its arguments fixed once, started and completed many
/// times (`MPI_Send_init`, `MPI_Recv_init`, `MPI_Start`, `MPI_Startall`; mpi4py's
/// `Send_init`, `Recv_init` and `Prequest`).
///
/// ```
/// # fn main() -> shmpi::Result<()> {
/// # let universe = shmpi::init()?;
/// # let world = universe.world();
/// let (me, n) = (world.rank(), world.size());
/// let (right, left) = ((me + 1) % n, (me + n - 1) % n);
/// let mut halo = [
///     world.recv_init(vec![0f64; 64], left, 0)?,
///     world.send_init(vec![0f64; 64], right, 0)?,
/// ];
/// for step in 0..100 {
///     halo[1].buf_mut()?.fill(step as f64);
///     shmpi::start_all(&mut halo)?;
///     let status = halo[0].wait()?;
///     halo[1].wait()?;
///     assert_eq!((status.source(), halo[0].buf()?[0]), (left, step as f64));
/// }
/// # Ok(()) }
/// ```
///
/// A [`PersistentRequest`] owns its buffer. While it is inactive the program reads
/// and writes the buffer ([`buf`](PersistentRequest::buf),
/// [`buf_mut`](PersistentRequest::buf_mut)); [`start`](PersistentRequest::start)
/// lends it to the runtime, and a [`wait`](PersistentRequest::wait) or a successful
/// [`test`](PersistentRequest::test) gives it back. A start allocates nothing: the
/// vector itself travels into the engine and back (a message that arrives before its
/// receive is started waits in the unexpected queue, as for any receive).
///
/// Leak safety is that of [`Request`](crate::Request): dropping an active receive
/// cancels it (or, if its message is already arriving, lets the runtime drop the
/// buffer when it is in); dropping an active send lets it complete in the
/// background; forgetting one leaks its bookkeeping and buffer, nothing else.
///
/// Where MPI leaves a choice: waiting on or testing an inactive request returns MPI's
/// empty status at once (as MPI does); a request on [`PROC_NULL`], once started, is
/// complete at once but active until a wait or test returns its status (source
/// `PROC_NULL`, tag `ANY_TAG`, count 0), as any other; starting an active request is
/// an error of class [`ErrorClass::Request`] that changes nothing; [`start_all`]
/// checks every request before starting any, so it starts all or none; the buffer's
/// contents after a failed operation (a message too long for the receive, a peer that
/// died) are zeros.
pub struct PersistentRequest<T: Pod> {
    eng: Weak<RefCell<Engine>>,
    op: Op,
    what: What,
    /// The buffer: a started send hands it to the engine until it completes (unless it
    /// went into the ring at once); a started receive keeps it here and the engine
    /// writes the message through a view of it (`None` only while a send has it).
    buf: Option<Vec<T>>,
    /// Elements in the buffer, to rebuild it if a failed operation lost it.
    len: usize,
    /// The engine's id of the started operation; 0 while inactive or `finished`.
    id: u64,
    /// The status of an operation that completed as it started (a send that went
    /// whole into the ring, a receive whose message was next in its ring): the request
    /// is active, its buffer stayed here, and the engine keeps nothing for it.
    finished: Option<Status>,
    /// On the MPI backend: the communicator whose request table holds the operation.
    #[cfg(feature = "mpi")]
    mpi: Option<crate::mpi::req::Handle>,
}

/// The fixed arguments of the operation.
enum Op {
    /// World rank of the destination, and the envelope (its length is set at start).
    Send { dest: usize, env: Envelope },
    /// Which messages the receive takes.
    Recv { m: Matcher, group: Rc<Group> },
    /// A send to or receive from `PROC_NULL`: every start completes at once.
    Null,
}

impl Communicator {
    /// Sets up a send of `buf` to `dest` with `tag`, to be started with
    /// [`PersistentRequest::start`] (`MPI_Send_init`; mpi4py `comm.Send_init`). Each
    /// start sends the buffer's contents at that moment.
    ///
    /// MPI 4.1 §3.9 (`MPI_Send_init`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `dest` is not a rank of the communicator nor
    ///   [`PROC_NULL`] (with which every start completes at once);
    /// - [`Error::InvalidTag`] when `tag` is negative;
    /// - [`Error::Usage`] when `T` is a zero-sized type.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let mut send = world.send_init(vec![0u32; 2], me, 0)?;
    /// for i in 0..3 {
    ///     send.buf_mut()?.fill(i);
    ///     send.start()?;
    ///     send.wait()?;
    ///     assert_eq!(world.recv_vec::<u32>(me, 0)?.0, [i, i]);
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn send_init<T: Pod>(
        &self,
        buf: Vec<T>,
        dest: Rank,
        tag: Tag,
    ) -> Result<PersistentRequest<T>> {
        Self::elem::<T>()?;
        if dest == PROC_NULL {
            let tag = Self::send_tag(tag)?;
            let what = self.what(Call::SendInit, None, tag);
            return Ok(PersistentRequest::new(self, Op::Null, what, buf));
        }
        let d = self.dest(dest)?;
        let tag = Self::send_tag(tag)?;
        let env = self.envelope(tag, 0, 0);
        Ok(PersistentRequest::new(
            self,
            Op::Send { dest: d, env },
            self.what(Call::SendInit, Some(d), tag),
            buf,
        ))
    }

    /// Sets up a receive into `buf` from `source` with `tag` (wildcards allowed), to
    /// be started with [`PersistentRequest::start`] (`MPI_Recv_init`; mpi4py
    /// `comm.Recv_init`). As with [`recv_into`](Self::recv_into), a message may be
    /// shorter than the buffer ([`Status::count`]); a longer one fails the receive and
    /// stays queued.
    ///
    /// MPI 4.1 §3.9 (`MPI_Recv_init`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `source` is neither a rank of the communicator,
    ///   [`ANY_SOURCE`] nor [`PROC_NULL`] (with which every start
    ///   completes at once, the buffer untouched);
    /// - [`Error::InvalidTag`] when `tag` is negative and not [`ANY_TAG`](crate::ANY_TAG);
    /// - [`Error::Usage`] when `T` is a zero-sized type.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let mut recv = world.recv_init(vec![0u8; 8], me, 0)?;
    /// for i in 0..3u8 {
    ///     recv.start()?;
    ///     world.send_slice(&[i; 2], me, 0)?;
    ///     let st = recv.wait()?;
    ///     assert_eq!((st.count::<u8>(), &recv.buf()?[..2]), (Some(2), &[i, i][..]));
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn recv_init<T: Pod>(
        &self,
        buf: Vec<T>,
        source: Rank,
        tag: Tag,
    ) -> Result<PersistentRequest<T>> {
        Self::elem::<T>()?;
        if source == PROC_NULL {
            self.matcher(ANY_SOURCE, tag)?; // the tag is checked all the same
            let what = self.what(Call::RecvInit, None, tag);
            return Ok(PersistentRequest::new(self, Op::Null, what, buf));
        }
        let m = self.matcher(source, tag)?;
        Ok(PersistentRequest::new(
            self,
            Op::Recv {
                m,
                group: self.inner.peers.clone(),
            },
            self.what(Call::RecvInit, m.src, tag),
            buf,
        ))
    }
}

impl<T: Pod> PersistentRequest<T> {
    fn new(comm: &Communicator, op: Op, what: What, buf: Vec<T>) -> Self {
        PersistentRequest {
            eng: Rc::downgrade(&comm.inner.eng),
            op,
            what,
            len: buf.len(),
            buf: Some(buf),
            id: 0,
            finished: None,
            #[cfg(feature = "mpi")]
            mpi: comm
                .inner
                .mpi
                .as_ref()
                .map(|mc| crate::mpi::req::Handle(Rc::downgrade(mc))),
        }
    }

    /// Starts the operation as an MPI request (the MPI backend): the vector travels
    /// into the communicator's request table and back, as into the engine.
    #[cfg(feature = "mpi")]
    fn start_mpi(&mut self, h: &crate::mpi::req::Handle, buf: Vec<T>) -> Result<u64> {
        let Some(mc) = h.0.upgrade() else {
            self.buf = Some(buf);
            return Err(Error::Usage(format!(
                "{} started after its communicator was dropped",
                self.name()
            )));
        };
        match &self.op {
            // A small send MPI finished as it started keeps nothing in the table: the
            // buffer comes back at once, as on the segment when the ring took it.
            Op::Send { dest, env } => {
                match mc.isend_buf_now(*dest, env.tag, PodVec::new(buf), false) {
                    Ok(Ok(id)) => Ok(id),
                    Ok(Err(back)) => {
                        self.buf = Some(back.into_vec::<T>().ok().expect("the buffer given"));
                        self.finished = Some(Status::empty(false));
                        Ok(0)
                    }
                    Err(e) => {
                        self.buf = Some(vec![T::zeroed(); self.len]);
                        Err(e)
                    }
                }
            }
            Op::Recv { m, .. } => {
                let want = Want::Bytes {
                    cap: std::mem::size_of_val(&buf[..]),
                    elem: std::mem::size_of::<T>(),
                    elem_type: codec::type_name::<T>(),
                };
                mc.irecv(*m, want, Some(PodVec::new(buf)))
                    .inspect_err(|_| self.buf = Some(vec![T::zeroed(); self.len]))
            }
            Op::Null => unreachable!("a PROC_NULL request never starts an operation"),
        }
    }

    fn name(&self) -> String {
        let call = match self.op {
            Op::Send { .. } => "send_init",
            Op::Recv { .. } => "recv_init",
            Op::Null => "PROC_NULL persistent",
        };
        let d = self.what.describe();
        format!("{call}{} request", &d[d.find('(').unwrap_or(d.len())..])
    }

    /// The status of a request that is not active: MPI's empty status (MPI 4.1
    /// §3.7.3), for a request on `PROC_NULL` too (its null status is that of a started
    /// one's completion).
    fn idle_status(&self) -> Status {
        Status::empty(false)
    }

    fn engine(&self) -> Result<Rc<RefCell<Engine>>> {
        self.eng.upgrade().ok_or_else(|| {
            Error::Usage(format!(
                "{} used after this rank finalized (its Universe and every Communicator \
                 were dropped)",
                self.name()
            ))
        })
    }

    fn active_error(&self, doing: &str) -> Error {
        Error::invalid(
            ErrorClass::Request,
            format!(
                "{} {doing} while active: the runtime owns its buffer until wait() or a \
                 successful test() completes it",
                self.name()
            ),
        )
    }

    /// Whether the request has been started and not completed yet.
    ///
    /// MPI 4.1 §3.9 (active and inactive persistent requests).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let mut recv = world.recv_init(vec![0u8; 1], me, 0)?;
    /// assert!(!recv.is_active());
    /// recv.start()?;
    /// assert!(recv.is_active());
    /// world.send_slice(&[1u8], me, 0)?;
    /// recv.wait()?;
    /// assert!(!recv.is_active());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn is_active(&self) -> bool {
        self.id != 0 || self.finished.is_some()
    }

    /// Starts the operation (`MPI_Start`; mpi4py `req.Start()`). Starting an active
    /// request is an error of class [`ErrorClass::Request`] that changes nothing.
    ///
    /// MPI 4.1 §3.9 (`MPI_Start`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] of class [`ErrorClass::Request`] when the request is active
    ///   (started already, not completed);
    /// - [`Error::Usage`] when this rank has finalized (its `Universe` and every
    ///   `Communicator` were dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let mut send = world.send_init(vec![1i64], me, 0)?;
    /// send.start()?;
    /// assert!(send.start().is_err()); // active: nothing changes
    /// send.wait()?;
    /// assert_eq!(world.recv_vec::<i64>(me, 0)?.0, [1]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn start(&mut self) -> Result<()> {
        if self.is_active() {
            return Err(self.active_error("started"));
        }
        let eng = self.engine()?;
        if matches!(self.op, Op::Null) {
            // Complete at once, but active until a wait or test completes it, as MPI's
            // requests on PROC_NULL are (§3.9): a second start before then is an error.
            self.finished = Some(Status::null());
            return Ok(());
        }
        let mut buf = self
            .buf
            .take()
            .expect("an inactive request holds its buffer");
        #[cfg(feature = "mpi")]
        if let Some(h) = self.mpi.take() {
            let r = self.start_mpi(&h, buf);
            self.mpi = Some(h);
            self.id = r?;
            return Ok(());
        }
        let mut e = eng.borrow_mut();
        let id = match &self.op {
            Op::Send { dest, env } => {
                let env = Envelope {
                    len: std::mem::size_of_val(&buf[..]),
                    ..*env
                };
                // Most small sends fit in the ring now: the buffer stays here, and the
                // engine keeps nothing to wait on (a recorded send goes through `isend`).
                if !crate::trace::hooked()
                    && e.try_send_whole(*dest, &env, bytemuck::cast_slice(&buf[..]))
                {
                    self.buf = Some(buf);
                    self.finished = Some(Status::empty(false));
                    return Ok(());
                }
                match e.isend(*dest, env, SendBuf::Pod(PodVec::new(buf))) {
                    Ok(started) => started.into_id(&mut e),
                    Err(err) => {
                        self.buf = Some(vec![T::zeroed(); self.len]);
                        return Err(err);
                    }
                }
            }
            Op::Recv { m, group } => {
                let want = Want::Bytes {
                    cap: std::mem::size_of_val(&buf[..]),
                    elem: std::mem::size_of::<T>(),
                    elem_type: codec::type_name::<T>(),
                };
                // A message next in its ring, that no other receive could claim, goes
                // straight into the buffer: nothing is posted (a recorded receive goes
                // through `irecv`, where the trace sees it).
                if !crate::trace::hooked() {
                    let bytes = bytemuck::cast_slice_mut(&mut buf[..]);
                    if let Some(env) = e.try_irecv_whole(m, &want, bytes) {
                        self.finished = Some(Status::received(&env, group));
                        self.buf = Some(buf);
                        return Ok(());
                    }
                }
                // The message is written into the buffer where it stays, in the request
                // (its heap memory does not move with the request): the request hands
                // the engine no vector to give back, and its drop cuts the engine loose
                // from the buffer before freeing it (`Drop`).
                let bytes = bytemuck::cast_slice_mut::<T, u8>(&mut buf[..]);
                let (ptr, len) = (std::ptr::NonNull::from(&mut *bytes).cast(), bytes.len());
                self.buf = Some(buf);
                // SAFETY: the vector's memory stays allocated and is not read or written
                // through the request while it is active (`buf`, `buf_mut`, `into_buf`
                // refuse), and the engine lets go of the pointer before the vector can be
                // freed: at completion, or in `Drop` (a leaked request leaks the vector).
                let view = unsafe { PodVec::borrowed(ptr, len) };
                e.irecv(*m, want, PostedBuf::Pod(view), group.clone())
            }
            Op::Null => unreachable!("a PROC_NULL request never starts an operation"),
        };
        self.id = id;
        Ok(())
    }

    /// Takes back the buffer (unless it stayed here: a receive's view of it comes
    /// back and is dropped) and makes the status of a finished operation.
    fn complete(&mut self, done: Done) -> Result<Status> {
        self.id = 0;
        let mut back = |b: PodVec| {
            if self.buf.is_none() {
                self.buf = Some(b.into_vec::<T>().ok().expect("the buffer given"));
            }
        };
        match done {
            Done::Sent(Some(b)) => {
                back(b);
                Ok(Status::empty(false))
            }
            Done::Recv {
                env,
                data: RecvData::Pod(b),
            } => {
                back(b);
                Ok(Status::received(&env, &self.what.group))
            }
            Done::Cancelled(Some(b)) => {
                back(b);
                Ok(Status::empty(true))
            }
            Done::Failed(e) => {
                match &mut self.buf {
                    Some(b) => b.fill(T::zeroed()),
                    None => self.buf = Some(vec![T::zeroed(); self.len]),
                }
                Err(e)
            }
            _ => unreachable!("a persistent request completes with its buffer"),
        }
    }

    /// Blocks until the started operation completes, makes the request inactive and
    /// returns its status (`MPI_Wait`): the message's for a receive, MPI's empty
    /// status for a send. On an inactive request, returns the empty status at once.
    /// If the wait itself fails (a peer died, the job was aborted), the request stays
    /// active.
    ///
    /// MPI 4.1 §3.7.3 (`MPI_Wait`), §3.9.
    ///
    /// # Errors
    ///
    /// - [`Error::Usage`] when this rank has finalized (its `Universe` and every
    ///   `Communicator` were dropped);
    /// - a receive's own errors: [`Error::Truncated`] when the message is longer than the
    ///   buffer, [`Error::ElementSize`] when its length is not a whole number of `T`s,
    ///   [`Error::TypeMismatch`] when it was sent as an object; the message stays queued, the
    ///   request becomes inactive and its buffer holds zeros;
    /// - [`Error::PeerFailed`] when the peer dies or leaves first (for a receive from
    ///   `ANY_SOURCE`, every other rank); [`Error::Aborted`] when the job is aborted;
    ///   [`Error::Corrupted`] when a ring fails a consistency check. The request stays active
    ///   when the wait itself fails this way.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let mut recv = world.recv_init(vec![0u16; 4], me, 0)?;
    /// assert!(!recv.wait()?.is_cancelled()); // inactive: the empty status at once
    /// recv.start()?;
    /// world.send_slice(&[1u16; 4], me, 0)?;
    /// assert_eq!(recv.wait()?.source(), me);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn wait(&mut self) -> Result<Status> {
        if !self.is_active() {
            return Ok(self.idle_status());
        }
        let eng = self.engine()?;
        if let Some(st) = self.finished.take() {
            return Ok(st);
        }
        #[cfg(feature = "mpi")]
        if let Some(h) = &self.mpi {
            let done = h.wait(self.id)?;
            return self.complete(done);
        }
        let mut e = eng.borrow_mut();
        // A receive into its own buffer whose message is whole and next in its ring:
        // only the envelope comes back (a recorded wait goes through `Engine::wait`).
        if self.buf.is_some() && !crate::trace::hooked() {
            if let Some(env) = e.take_posted_in_place(self.id) {
                self.id = 0;
                return Ok(Status::received(&env, &self.what.group));
            }
        }
        let done = e.wait(self.id, &self.what.desc())?;
        drop(e);
        self.complete(done)
    }

    /// Makes progress once; if the operation has completed, makes the request inactive
    /// and returns its status (`MPI_Test`). On an inactive request, returns the empty
    /// status at once.
    ///
    /// MPI 4.1 §3.7.3 (`MPI_Test`), §3.9.
    ///
    /// # Errors
    ///
    /// - [`Error::Usage`] when this rank has finalized (its `Universe` and every
    ///   `Communicator` were dropped);
    /// - a receive's own errors: [`Error::Truncated`] when the message is longer than the
    ///   buffer, [`Error::ElementSize`] when its length is not a whole number of `T`s,
    ///   [`Error::TypeMismatch`] when it was sent as an object; the message stays queued, the
    ///   request becomes inactive and its buffer holds zeros;
    /// - [`Error::PeerFailed`] when the peer dies or leaves first (for a receive from
    ///   `ANY_SOURCE`, every other rank); [`Error::Aborted`] when the job is aborted;
    ///   [`Error::Corrupted`] when a ring fails a consistency check.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let mut recv = world.recv_init(vec![0u8; 1], me, 0)?;
    /// recv.start()?;
    /// assert!(recv.test()?.is_none());
    /// world.send_slice(&[1u8], me, 0)?;
    /// let st = loop {
    ///     if let Some(st) = recv.test()? { break st; }
    /// };
    /// assert_eq!((st.len(), recv.is_active()), (1, false));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn test(&mut self) -> Result<Option<Status>> {
        if !self.is_active() {
            return Ok(Some(self.idle_status()));
        }
        let eng = self.engine()?;
        if let Some(st) = self.finished.take() {
            return Ok(Some(st));
        }
        #[cfg(feature = "mpi")]
        if let Some(h) = &self.mpi {
            return h.test(self.id)?.map(|d| self.complete(d)).transpose();
        }
        let done = {
            let mut e = eng.borrow_mut();
            match e.take_done(self.id) {
                Some(d) => Some(d),
                None => {
                    e.progress(None)?;
                    if let Some(a) = e.segment().abort_info() {
                        return Err(a.to_error("in test"));
                    }
                    e.take_done(self.id)
                }
            }
        };
        done.map(|d| self.complete(d)).transpose()
    }

    /// The status if the operation has completed, leaving the request active until a
    /// wait or test (`MPI_Request_get_status`); the empty status when inactive. A
    /// receive that failed on a message has that message's source and tag and a
    /// length of 0, as [`Request::get_status`](crate::Request::get_status) gives it.
    ///
    /// MPI 4.1 §3.7.6 (`MPI_Request_get_status`).
    ///
    /// # Errors
    ///
    /// - [`Error::Usage`] when this rank has finalized (its `Universe` and every
    ///   `Communicator` were dropped);
    /// - [`Error::Corrupted`] when a ring fails a consistency check.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let mut recv = world.recv_init(vec![0u8; 1], me, 0)?;
    /// recv.start()?;
    /// assert_eq!(recv.get_status()?, None);
    /// world.send_slice(&[1u8], me, 0)?;
    /// while recv.get_status()?.is_none() {}
    /// assert!(recv.is_active()); // until wait or test
    /// recv.wait()?;
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn get_status(&mut self) -> Result<Option<Status>> {
        if !self.is_active() {
            return Ok(Some(self.idle_status()));
        }
        let eng = self.engine()?;
        if let Some(st) = self.finished {
            return Ok(Some(st));
        }
        #[cfg(feature = "mpi")]
        if let Some(h) = &self.mpi {
            return h.peek(self.id, |d| status_of(d, &self.what));
        }
        let mut e = eng.borrow_mut();
        if !e.is_done(self.id) {
            e.progress(None)?;
        }
        Ok(e.peek_done(self.id).map(|d| status_of(d, &self.what)))
    }

    /// Cancels an active receive that no message has matched yet (`MPI_Cancel`), as
    /// [`Request::cancel`](crate::Request::cancel) does: the next wait returns a
    /// status that [`is_cancelled`](Status::is_cancelled), and the request can be
    /// started again. Returns whether it was cancelled: never a send, nor an inactive
    /// request.
    ///
    /// MPI 4.1 §3.8.4 (`MPI_Cancel`).
    ///
    /// # Errors
    ///
    /// - [`Error::Usage`] when this rank has finalized (its `Universe` and every
    ///   `Communicator` were dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let mut recv = world.recv_init(vec![0u8; 1], me, 42)?;
    /// recv.start()?;
    /// assert!(recv.cancel()?);
    /// assert!(recv.wait()?.is_cancelled());
    /// recv.start()?; // can be started again
    /// world.send_slice(&[3u8], me, 42)?;
    /// recv.wait()?;
    /// assert_eq!(recv.buf()?, [3]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn cancel(&mut self) -> Result<bool> {
        if self.id == 0 || matches!(self.op, Op::Send { .. }) {
            return Ok(false); // inactive, complete, or a send
        }
        let eng = self.engine()?;
        #[cfg(feature = "mpi")]
        if let Some(h) = &self.mpi {
            return h.cancel(self.id);
        }
        let cancelled = eng.borrow_mut().cancel(self.id);
        Ok(cancelled)
    }

    /// The buffer, while the request is inactive.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] of class [`ErrorClass::Request`] when the request is active
    ///   (the runtime holds its buffer).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let recv = world.recv_init(vec![7u8; 2], me, 0)?;
    /// assert_eq!(recv.buf()?, [7, 7]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn buf(&self) -> Result<&[T]> {
        match &self.buf {
            Some(b) if !self.is_active() => Ok(b),
            _ => Err(self.active_error("buffer read")),
        }
    }

    /// The buffer to fill before a send or to read after a receive, while the request
    /// is inactive.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] of class [`ErrorClass::Request`] when the request is active
    ///   (the runtime holds its buffer).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let mut send = world.send_init(vec![0u8; 2], me, 0)?;
    /// send.buf_mut()?[1] = 5;
    /// assert_eq!(send.buf()?, [0, 5]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn buf_mut(&mut self) -> Result<&mut [T]> {
        if self.is_active() {
            return Err(self.active_error("buffer written"));
        }
        Ok(self
            .buf
            .as_mut()
            .expect("an inactive request holds its buffer"))
    }

    /// Frees an inactive request and gives back its buffer (`MPI_Request_free`).
    ///
    /// MPI 4.1 §3.7.3 (`MPI_Request_free`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] of class [`ErrorClass::Request`] when the request is active
    ///   (freeing it would take the buffer from the runtime).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let mut send = world.send_init(vec![1u8, 2], me, 0)?;
    /// send.start()?;
    /// send.wait()?;
    /// assert_eq!(send.into_buf()?, [1, 2]);
    /// let _ = world.recv_vec::<u8>(me, 0)?;
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn into_buf(mut self) -> Result<Vec<T>> {
        if self.is_active() {
            return Err(self.active_error("freed"));
        }
        Ok(self
            .buf
            .take()
            .expect("an inactive request holds its buffer"))
    }
}

/// Starts every request (`MPI_Startall`; mpi4py `Prequest.Startall`). If one of them
/// is active, none is started and the error names it.
///
/// MPI 4.1 §3.9 (`MPI_Startall`).
///
/// # Errors
///
/// - [`Error::InvalidArgument`] of class [`ErrorClass::Request`] when one of the requests is
///   active: none is started;
/// - [`Error::Usage`] when this rank has finalized.
///
/// # Examples
///
/// ```
/// let world = shmpi::init()?.world();
/// let me = world.rank();
/// let (n, right) = (world.size(), (me + 1) % world.size());
/// let left = (me + n - 1) % n;
/// let mut halo = [world.recv_init(vec![0; 2], left, 0)?, world.send_init(vec![me; 2], right, 0)?];
/// shmpi::start_all(&mut halo)?;
/// assert!(shmpi::start_all(&mut halo).is_err()); // both active
/// halo[0].wait()?;
/// halo[1].wait()?;
/// assert_eq!(halo[0].buf()?, [left, left]);
/// # Ok::<(), shmpi::Error>(())
/// ```
pub fn start_all<T: Pod>(requests: &mut [PersistentRequest<T>]) -> Result<()> {
    if let Some((i, r)) = requests.iter().enumerate().find(|(_, r)| r.is_active()) {
        let e = r.active_error("started");
        return Err(Error::invalid(
            ErrorClass::Request,
            format!("start_all: request {i}: {e}; no request was started"),
        ));
    }
    requests.iter_mut().try_for_each(PersistentRequest::start)
}

impl<T: Pod> Drop for PersistentRequest<T> {
    fn drop(&mut self) {
        if self.id != 0 && self.buf.is_some() {
            // An active receive into the buffer here: the engine must let go of it
            // before the vector is freed (a message filling it is dropped as it comes).
            if let Some(eng) = self.eng.upgrade() {
                match eng.try_borrow_mut() {
                    Ok(mut eng) => {
                        eng.cut_loose(self.id);
                        eng.forget(self.id);
                    }
                    // Unreachable (no engine call is on the stack when a request is
                    // dropped); freeing the buffer under the engine would be unsound.
                    Err(_) => std::mem::forget(self.buf.take()),
                }
            }
            return;
        }
        if self.id != 0 {
            #[cfg(feature = "mpi")]
            if let Some(h) = &self.mpi {
                return h.forget(self.id);
            }
            if let Some(eng) = self.eng.upgrade() {
                if let Ok(mut eng) = eng.try_borrow_mut() {
                    eng.forget(self.id);
                }
            }
        }
    }
}

impl<T: Pod> crate::request::Sealed for PersistentRequest<T> {
    fn pending(&self) -> Option<Pending<'_>> {
        #[cfg(feature = "mpi")]
        if self.mpi.is_some() {
            return None;
        }
        if self.finished.is_some() {
            return Some(Pending::finished(&self.eng, self.what.call));
        }
        self.is_active()
            .then(|| Pending::new(&self.eng, self.id, &self.what))
    }
    #[cfg(feature = "mpi")]
    fn mpi_state(&mut self) -> Option<Result<bool>> {
        match &self.mpi {
            // A send MPI finished as it started: complete, whatever else the list holds.
            Some(_) if self.finished.is_some() => Some(Ok(true)),
            Some(h) if self.id != 0 => Some(h.is_done(self.id)),
            _ => None,
        }
    }
}

impl<T: Pod> AnyRequest for PersistentRequest<T> {}

impl<T: Pod> std::fmt::Debug for PersistentRequest<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentRequest")
            .field("op", &self.name())
            .field("active", &self.is_active())
            .finish()
    }
}
