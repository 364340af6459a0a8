//! Non-blocking collectives (`MPI_Ibarrier`, `MPI_Ibcast`, `MPI_Ireduce`,
//! `MPI_Iallreduce`, `MPI_Iallgather`, `MPI_Igather`, `MPI_Iscatter`, `MPI_Ialltoall`,
//! their `v` forms, the scans and the reduce-scatters): [`CollRequest`] and the `i*`
//! calls on [`Communicator`].
//!
//! Each one is a small state machine over point-to-point messages, linear through the
//! root (rank 0 for `iallreduce_into` and `iallgather_into`): every rank sends its part
//! to the root, which, once it has them all, combines them in rank order and sends the
//! result to every other rank. An all-to-all has no root: its blocks go straight to
//! their ranks, each of which gathers its own as a root does. It advances whenever the
//! request is tested or waited on. The blocking collectives are untouched: they use the
//! communicator's collective area, these use messages only.
//!
//! The messages travel in a hidden context, `ctx | 0x8000_0000`, so they never match
//! the program's own receives. Real contexts never set that bit: they are 0 (the
//! world) or come from the job-wide counter of `CollShm::new_ctx`, which counts up from
//! 1 by one per communicator created. The tag of a collective is its sequence number
//! among this communicator's non-blocking collectives (every rank starts them in the
//! same order, as MPI requires), so collectives in flight at once never mix.
//!
//! The rooted ones (`ibcast_into`, `ireduce_into`, `igather_into`, `iscatter_into` and
//! the `v` forms) compare their call and root across ranks, as the blocking ones do at
//! their first step ([`Check`]): each rank sends its signature to every other rank and
//! completes only once it has every member's and found them equal. A rank that names
//! another root than the rest (MPI says erroneous) would otherwise wait for a message
//! no rank sends, or hand out data of another rank's broadcast; instead every rank
//! fails with [`Error::InvalidArgument`] naming both calls (class `Root` for another
//! root), and none hands out data. The check uses the collective's sequence number as
//! tag with [`CHECK_TAG`] set, so that its messages never match the data's; every
//! message of it is sent as the call starts, so no rank's completion waits for another
//! to test its request.
//!
//! The root's reply is the result's bytes followed by one byte, 0; when the root found
//! an error (a contribution of the wrong length, a peer that failed) it replies with
//! the error instead, ending in a nonzero byte, so the other ranks fail too (with the
//! same class, and for a failed peer the same [`Error::PeerFailed`]) rather than wait
//! for ever.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use bytemuck::Pod;

use crate::call::Call;
use crate::comm::{Communicator, Rank, Status};
use crate::completions::Done;
use crate::error::{Error, ErrorClass, Exit, Result};
use crate::matching::Group;
use crate::progress::{Engine, WaitDesc, WaitOp};
use crate::request::{AnyRequest, Pending, Request, Sealed, What};
use crate::shmcoll::{Area, Proc};

use super::op::{Op, Reducible};
use super::slices::check_v;

/// The bit that makes a communicator's context the hidden one of its non-blocking
/// collectives.
pub(crate) const HIDDEN: u32 = 0x8000_0000;

thread_local! {
    /// The number of non-blocking collectives started so far on each context: a
    /// communicator has no field for it, and its context identifies it on this rank.
    static SEQ: RefCell<HashMap<u32, u32>> = RefCell::new(HashMap::new());
}

/// The bit of a rooted collective's tag that makes it the tag of its signature check:
/// the sequence numbers stay below it.
const CHECK_TAG: i32 = 0x4000_0000;

/// The tag of the next non-blocking collective on context `ctx`.
fn next_tag(ctx: u32) -> i32 {
    SEQ.with(|s| {
        let mut s = s.borrow_mut();
        let n = s.entry(ctx).or_insert(0);
        let tag = (*n & 0x3FFF_FFFF) as i32;
        *n = n.wrapping_add(1);
        tag
    })
}

/// What the root does with the parts once it has them all: a reduction carries the
/// element type's `Reducible::apply`, so that the request needs only `T: Pod`.
enum Combine<T> {
    Reduce(Op, fn(Op, &mut [T], &[T])),
    Concat,
}

impl<T> Clone for Combine<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Combine<T> {}

/// The parts of the hidden communicator, without a strong handle on the engine (a
/// request must never keep the rank from finalizing).
struct Hidden {
    eng: Weak<RefCell<Engine>>,
    ctx: u32,
    group: Rc<Group>,
    rank: usize,
    coll: Rc<Proc>,
    area: Rc<Area>,
}

impl Hidden {
    fn comm(&self) -> Result<Communicator> {
        let eng = self.eng.upgrade().ok_or_else(finalized)?;
        Ok(Communicator::with_parts(
            eng,
            self.ctx,
            self.group.clone(),
            self.rank,
            self.coll.clone(),
            self.area.clone(),
        ))
    }
}

fn finalized() -> Error {
    Error::Usage(
        "non-blocking collective request waited on or tested after this rank finalized (its \
         Universe and every Communicator were dropped); wait on requests before dropping them"
            .into(),
    )
}

/// The receive of one rank's part (at a root) or signature (`Check`).
type PartRecv<T> = Request<(Vec<T>, Status)>;

/// The length of each rank's part, in elements.
enum Lens {
    /// Every part has the root's length (MPI's fixed-size collectives).
    Same(usize),
    /// Rank `j`'s part has `counts[j]` elements (the `v` forms).
    Each(Vec<usize>),
}

impl Lens {
    fn at(&self, r: usize) -> usize {
        match self {
            Lens::Same(len) => *len,
            Lens::Each(counts) => counts[r],
        }
    }

    /// The error of rank `r`'s part of another length.
    fn mismatch(&self, r: usize) -> Error {
        count_error(match self {
            Lens::Same(len) => format!(
                "rank {r} passed a part of another length than the root's {len} elements to a \
                 non-blocking collective"
            ),
            Lens::Each(counts) => format!(
                "rank {r} passed a part of another length than its count, {} elements, to a \
                 non-blocking collective",
                counts[r]
            ),
        })
    }
}

enum State<T: Pod> {
    /// The root collects the parts (its own is in `parts` from the start).
    Gather {
        hidden: Hidden,
        combine: Combine<T>,
        /// Whether the other ranks wait for the result.
        reply: bool,
        lens: Lens,
        recvs: Vec<Option<PartRecv<T>>>,
        parts: Vec<Option<Vec<T>>>,
        err: Option<Error>,
    },
    /// A rank other than the root waits for the root's reply, to decode into `out`.
    Reply {
        recv: Request<(Vec<u8>, Status)>,
        out: Vec<T>,
        /// The root's world rank.
        root: usize,
    },
    /// A rank other than the root of `ireduce` sends its part to `root` (world rank).
    Send { send: Request<Vec<T>>, root: usize },
    /// The result, with an engine entry complete from the start so that
    /// `wait_any_of` sees the request as complete.
    Done { result: Result<Vec<T>>, marker: u64 },
    /// MPI's own non-blocking collective (the MPI backend), until its result is taken.
    #[cfg(feature = "mpi")]
    Mpi(crate::mpi::nbc::MpiColl<T>),
    /// The result was handed out.
    Spent,
}

/// A pending non-blocking collective (`MPI_Ibarrier`, `MPI_Ibcast`, `MPI_Ireduce`,
/// `MPI_Iallreduce`, `MPI_Iallgather`, `MPI_Igather`, `MPI_Iscatter`, `MPI_Ialltoall`;
/// mpi4py's `comm.Ibarrier()`, `Ibcast`, `Ireduce`, `Iallreduce`, `Iallgather`,
/// `Igather`, `Iscatter`, `Ialltoall`), made by [`Communicator::ibarrier`],
/// [`ibcast_into`](Communicator::ibcast_into),
/// [`ireduce_into`](Communicator::ireduce_into),
/// [`iallreduce_into`](Communicator::iallreduce_into),
/// [`iallgather_into`](Communicator::iallgather_into),
/// [`igather_into`](Communicator::igather_into),
/// [`iscatter_into`](Communicator::iscatter_into),
/// [`ialltoall_into`](Communicator::ialltoall_into), their `v` forms
/// ([`igatherv_into`](Communicator::igatherv_into),
/// [`iscatterv_into`](Communicator::iscatterv_into),
/// [`iallgatherv_into`](Communicator::iallgatherv_into),
/// [`ialltoallv_into`](Communicator::ialltoallv_into)), the scans
/// ([`iscan_into`](Communicator::iscan_into),
/// [`iexscan_into`](Communicator::iexscan_into)) and the reduce-scatters
/// ([`ireduce_scatter_into`](Communicator::ireduce_scatter_into),
/// [`ireduce_scatter_block_into`](Communicator::ireduce_scatter_block_into)).
///
/// It advances only when it is tested or waited on (directly, or through
/// [`wait_any_of`](crate::wait_any_of) and [`test_any_of`](crate::test_any_of)), so a
/// program that computes while one is pending calls [`test`](Self::test) now and then.
/// Every rank must start the non-blocking collectives of a communicator in the same
/// order (MPI's rule); they may complete in any order, and several may be pending at
/// once, with point-to-point requests too.
///
/// With [`wait_any_of`](crate::wait_any_of) and [`test_any_of`](crate::test_any_of), a
/// collective request's index comes back when the message it waits on next at this rank
/// has arrived, which is not always the last one (the root waits on one part after
/// another): its [`test`](Self::test) then moves it on and returns `None` if it needs
/// more, so a loop over `wait_any_of` tests the request it returned and goes round
/// again until the test gives the result. A complete request's index comes back at
/// once, so the loop never waits on a collective that could finish.
///
/// Leak safety is that of [`Request`]: the request owns its buffers, and the runtime
/// writes only into buffers it owns. Dropping an unfinished one withdraws this rank's
/// part: the ranks that wait on it then wait until this rank finalizes, and fail with
/// [`Error::PeerFailed`] (MPI calls this erroneous).
///
/// Ranks that pass different roots to a rooted collective, or start different rooted
/// collectives at the same place (MPI says erroneous), fail at every rank with
/// [`Error::InvalidArgument`] naming both calls, as the blocking collectives do, and no
/// data is handed out: every rank sends its call and root to every other as the call
/// starts, and completes only once it has found every member's equal to its own (the
/// check of the blocking ones' first step, as messages). A rank that starts a
/// non-rooted collective where the others start a rooted one is not compared: they
/// wait for its signature, and fail with [`Error::PeerFailed`] once it leaves (the
/// launcher reports the deadlock if it blocks first).
///
/// Ranks whose lengths differ (MPI says erroneous): the root of `ireduce`,
/// `iallreduce` and `iallgather` sees the wrong length of a part and fails with
/// [`Error::InvalidArgument`] of class [`ErrorClass::Count`]; for `iallreduce` and
/// `iallgather` it tells the others, which fail with the same class. A rank of `ibcast`
/// whose length differs from the root's fails the same way (the root does not know).
/// A part longer than the root's by more than one element stays queued at the root in
/// the hidden context, where nothing will ever receive it.
#[must_use = "a non-blocking collective advances only when it is tested or waited on"]
pub struct CollRequest<T: Pod> {
    eng: Weak<RefCell<Engine>>,
    what: What,
    state: State<T>,
    /// What is made of the result as it is handed out: a scan's fold, a reduce-scatter's
    /// block.
    post: Option<Box<Post<T>>>,
    /// A rooted collective's comparison of the members' signatures, until it is over:
    /// the result is handed out only after it found them equal.
    check: Option<Box<Check>>,
}

/// The comparison of a rooted collective's signature (its call and root) with every
/// other member's, as the blocking ones make at their first step: this rank sent its
/// own to every member as the call started, and receives theirs.
struct Check {
    /// This rank's signature: the call's code, then the root.
    mine: u64,
    /// The receive of each other member's signature, until it has come.
    recvs: Vec<Option<PartRecv<u64>>>,
    /// The lowest member whose signature differs, with it.
    differs: Option<(usize, u64)>,
    /// A receive that failed (its member left, the job was aborted).
    err: Option<Error>,
    /// The world rank of each member, for `waiting_on`.
    world: Rc<Group>,
    /// This rank's rank in the communicator.
    me: usize,
}

impl Check {
    /// Takes in the signatures that have come; `true` once every one has (or a receive
    /// failed).
    fn advance(&mut self) -> bool {
        for (j, slot) in self.recvs.iter_mut().enumerate() {
            let Some(req) = slot else { continue };
            let got = match req.test() {
                Ok(None) => continue,
                Ok(Some((sig, _))) => Ok(sig),
                Err(e) => Err(e),
            };
            *slot = None;
            match got {
                Ok(sig) if sig.first() == Some(&self.mine) => {}
                Ok(sig) => {
                    let theirs = sig.first().copied().unwrap_or(0);
                    if self.differs.is_none_or(|(k, _)| j < k) {
                        self.differs = Some((j, theirs));
                    }
                }
                Err(e) => {
                    self.err.get_or_insert(e);
                }
            }
        }
        self.err.is_some() || self.recvs.iter().all(Option::is_none)
    }

    /// The world rank whose signature this rank waits for next.
    fn waiting_on(&self) -> Option<usize> {
        let j = self.recvs.iter().position(Option::is_some)?;
        Some(self.world.ranks[j])
    }
}

/// The signature a rooted collective's ranks compare: the call, then the root.
fn signature(call: Call, root: usize) -> u64 {
    u64::from(call.code()) << 32 | root as u64
}

/// A signature as the program wrote the call.
fn describe(sig: u64) -> String {
    match Call::from_code((sig >> 32) as u32) {
        Some(call) => format!("{}(root={})", nbc_name(call), sig as u32),
        None => format!("an unknown collective (signature {sig:#x})"),
    }
}

/// What a request makes of its collective's result as it is handed out.
enum Post<T> {
    /// `iscan_into` and `iexscan_into`, out of every rank's contribution (an
    /// allgather's result): the first `upto` blocks of `len` elements combined with
    /// `op`; none at rank 0 of an exclusive scan, which gets `own`, its contribution.
    Prefix {
        op: Op,
        apply: fn(Op, &mut [T], &[T]),
        len: usize,
        upto: usize,
        own: Vec<T>,
    },
    /// `ireduce_scatter_into`: this rank's elements of the reduced vector.
    Range(std::ops::Range<usize>),
    /// The `v` forms, out of the parts one after another in rank order: part `j`,
    /// `counts[j]` elements, written at `displs[j]` of `into`, which is the result.
    Place {
        counts: Vec<usize>,
        displs: Vec<usize>,
        into: Vec<T>,
    },
    /// A rank that gets nothing (`igatherv_into` away from its root): its receive
    /// vector back, as it was passed.
    Instead(Vec<T>),
}

impl<T: Pod> Post<T> {
    fn make(self, all: Vec<T>) -> Vec<T> {
        match self {
            Post::Prefix { own, upto: 0, .. } => own,
            Post::Prefix {
                op,
                apply,
                len,
                upto,
                ..
            } => {
                let mut acc = all[..len].to_vec();
                for part in all.chunks(len.max(1)).take(upto).skip(1) {
                    apply(op, &mut acc, part);
                }
                acc
            }
            Post::Range(r) => all[r].to_vec(),
            Post::Place {
                counts,
                displs,
                mut into,
            } => {
                let mut off = 0;
                for (&c, &d) in counts.iter().zip(&displs) {
                    into[d..d + c].copy_from_slice(&all[off..off + c]);
                    off += c;
                }
                into
            }
            Post::Instead(v) => v,
        }
    }
}

impl Communicator {
    fn hidden(&self) -> Result<Hidden> {
        if self.is_inter() {
            return Err(crate::intercomm::no_collectives(
                "a non-blocking collective",
            ));
        }
        let ctx = self.inner.ctx;
        if ctx & HIDDEN != 0 {
            return Err(Error::Usage(format!(
                "non-blocking collectives are not available on a communicator of context \
                 {ctx:#x}: its hidden context would be its own"
            )));
        }
        Ok(Hidden {
            eng: Rc::downgrade(&self.inner.eng),
            ctx: ctx | HIDDEN,
            group: self.inner.group.clone(),
            rank: self.inner.rank,
            coll: self.inner.coll.clone(),
            area: self.inner.area.clone(),
        })
    }

    /// The request of an MPI non-blocking collective (the MPI backend).
    #[cfg(feature = "mpi")]
    fn mpi_coll<T: Pod>(&self, call: Call, m: crate::mpi::nbc::MpiColl<T>) -> CollRequest<T> {
        CollRequest {
            eng: Rc::downgrade(&self.inner.eng),
            what: self.nbc_what(call, 0),
            state: State::Mpi(m),
            post: None,
            check: None,
        }
    }

    /// `req`, a rooted collective (`call` with `root`) just started, with its signature
    /// check ([`Check`]): this rank's signature sent to every other member, and theirs
    /// awaited, in the collective's tag with [`CHECK_TAG`] set. None at one rank.
    fn with_check<T: Pod>(
        &self,
        mut req: CollRequest<T>,
        call: Call,
        root: usize,
    ) -> Result<CollRequest<T>> {
        let (n, me) = (self.inner.group.size(), self.inner.rank);
        if n == 1 {
            return Ok(req);
        }
        let comm = self.hidden()?.comm()?;
        let tag = req.what.tag | CHECK_TAG;
        let mine = signature(call, root);
        let mut recvs = Vec::with_capacity(n);
        for j in 0..n {
            recvs.push(if j == me {
                None
            } else {
                Some(comm.irecv_into(vec![0u64], j as Rank, tag)?)
            });
        }
        for j in (0..n).filter(|&j| j != me) {
            // A send completes in the background once handed over, like
            // `MPI_Request_free`.
            drop(comm.isend_vec(vec![mine], j as Rank, tag)?);
        }
        req.check = Some(Box::new(Check {
            mine,
            recvs,
            differs: None,
            err: None,
            world: self.inner.group.clone(),
            me,
        }));
        Ok(req)
    }

    fn nbc_what(&self, call: Call, tag: i32) -> What {
        What {
            call,
            peer: None,
            tag,
            ctx: self.inner.ctx | HIDDEN,
            group: self.inner.group.clone(),
        }
    }

    /// Starts a barrier (`MPI_Ibarrier`; mpi4py `comm.Ibarrier()`): the request
    /// completes at a rank once every rank has started it. Its result is an empty
    /// vector.
    ///
    /// MPI 4.1 §6.12.1 (`MPI_Ibarrier`).
    ///
    /// # Errors
    ///
    /// From `wait`: [`Error::PeerFailed`] when a rank fails or leaves first (rank 0
    /// notices it and tells the others which); [`Error::Aborted`] when the job is
    /// aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let req = world.ibarrier()?;
    /// assert!(req.wait()?.is_empty());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn ibarrier(&self) -> Result<CollRequest<u8>> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return Ok(self.mpi_coll(Call::Barrier, mc.ibarrier()?));
        }
        self.start_gather(
            Call::Barrier,
            Vec::new(),
            Combine::Reduce(Op::Sum, u8::apply),
            0,
            true,
        )
    }

    /// Starts a broadcast of the root's `buf` (`MPI_Ibcast`; mpi4py `comm.Ibcast`):
    /// `wait` returns the root's buffer at every rank. Every rank passes a buffer of
    /// the root's length.
    ///
    /// MPI 4.1 §6.12.2 (`MPI_Ibcast`).
    ///
    /// # Errors
    ///
    /// - from `wait`, at every rank: [`Error::InvalidArgument`] naming both calls (class
    ///   `Root`) when the ranks passed different roots (or started different rooted
    ///   collectives here); no data is handed out;
    /// - [`Error::InvalidRoot`] when `root` is not a rank of the communicator (nothing is
    ///   sent);
    /// - [`Error::Usage`] when `T` is a zero-sized type;
    /// - from `wait` at a rank other than the root: [`Error::InvalidArgument`] of class
    ///   [`ErrorClass::Count`] when its length differs from the root's (or
    ///   [`Error::Truncated`] when the root's is longer); [`Error::PeerFailed`],
    ///   [`Error::Aborted`].
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let buf = if world.rank() == 0 { vec![1.5f64, 2.5] } else { vec![0.0; 2] };
    /// let req = world.ibcast_into(buf, 0)?;
    /// assert_eq!(req.wait()?, [1.5, 2.5]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn ibcast_into<T: Pod>(&self, buf: Vec<T>, root: Rank) -> Result<CollRequest<T>> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            let root = self.check_root(root)?;
            elem::<T>()?;
            return Ok(self.mpi_coll(Call::Bcast, mc.ibcast(buf, root)?));
        }
        let root = self.check_root(root)?;
        elem::<T>()?;
        let hidden = self.hidden()?;
        let tag = next_tag(self.inner.ctx);
        let what = self.nbc_what(Call::Bcast, tag);
        let eng = hidden.eng.clone();
        let state = if self.inner.rank == root {
            let comm = hidden.comm()?;
            let reply = encode(&buf);
            for r in (0..self.inner.group.size()).filter(|&r| r != root) {
                // A send completes in the background once handed over (its buffer is a
                // copy), like `MPI_Request_free`.
                drop(comm.isend_vec(reply.clone(), r as Rank, tag)?);
            }
            done(&self.inner.eng, Ok(buf))
        } else {
            reply_state(&hidden, buf, root, tag)?
        };
        let req = CollRequest {
            eng,
            what,
            state,
            post: None,
            check: None,
        };
        self.with_check(req, Call::Bcast, root)
    }

    /// Starts a reduction of every rank's `send` with `op` to `root`
    /// (`MPI_Ireduce`; mpi4py `comm.Ireduce`): `wait` returns at the root the reduced
    /// vector (combined in rank order), and at the other ranks their `send` back,
    /// unchanged. Every rank passes the same length.
    ///
    /// MPI 4.1 §6.12.7 (`MPI_Ireduce`).
    ///
    /// # Errors
    ///
    /// - from `wait`, at every rank: [`Error::InvalidArgument`] naming both calls (class
    ///   `Root`) when the ranks passed different roots (or started different rooted
    ///   collectives here); no data is handed out;
    /// - [`Error::InvalidRoot`] when `root` is not a rank of the communicator, and
    ///   [`Error::InvalidArgument`] of class [`ErrorClass::Op`] when `op` does not apply
    ///   to `T` (nothing is sent);
    /// - [`Error::Usage`] when `T` is a zero-sized type;
    /// - from `wait` at the root: [`Error::InvalidArgument`] of class [`ErrorClass::Count`]
    ///   when a part's length differs from its own (or [`Error::Truncated`]); the other
    ///   ranks are not told;
    /// - from `wait`: [`Error::PeerFailed`] when a rank it waits on fails or leaves first
    ///   (at the root, a rank whose part is missing; elsewhere, the root);
    ///   [`Error::Aborted`].
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank() as u64;
    /// let req = world.ireduce_into(vec![me, 1], shmpi::Op::Sum, 0)?;
    /// let got = req.wait()?;
    /// if me == 0 {
    ///     let n = world.size() as u64;
    ///     assert_eq!(got, [n * (n - 1) / 2, n]);
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn ireduce_into<T: Reducible>(
        &self,
        send: Vec<T>,
        op: Op,
        root: Rank,
    ) -> Result<CollRequest<T>> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            let root = self.check_root(root)?;
            check_op::<T>(op)?;
            elem::<T>()?;
            let m = mc.ireduce(send, op, T::apply, Some(root))?;
            return Ok(self.mpi_coll(Call::Reduce, m));
        }
        let root = self.check_root(root)?;
        check_op::<T>(op)?;
        let req = if self.inner.rank == root {
            self.start_gather(
                Call::Reduce,
                send,
                Combine::Reduce(op, T::apply),
                root,
                false,
            )?
        } else {
            self.send_part(Call::Reduce, send, root)?
        };
        self.with_check(req, Call::Reduce, root)
    }

    /// Starts this rank's part of a gather or reduction to `root` at a rank other than
    /// the root: it sends its part and gets it back.
    fn send_part<T: Pod>(&self, call: Call, send: Vec<T>, root: usize) -> Result<CollRequest<T>> {
        elem::<T>()?;
        let hidden = self.hidden()?;
        let tag = next_tag(self.inner.ctx);
        let send = hidden.comm()?.isend_vec(send, root as Rank, tag)?;
        Ok(CollRequest {
            eng: hidden.eng.clone(),
            what: self.nbc_what(call, tag),
            state: State::Send {
                send,
                root: self.inner.group.ranks[root],
            },
            post: None,
            check: None,
        })
    }

    /// Starts a reduction of every rank's `send` with `op` whose result every rank
    /// gets (`MPI_Iallreduce`; mpi4py `comm.Iallreduce`): `wait` returns the reduced
    /// vector (combined in rank order, so the same at every rank). Every rank passes
    /// the same length.
    ///
    /// MPI 4.1 §6.12.8 (`MPI_Iallreduce`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] of class [`ErrorClass::Op`] when `op` does not apply to
    ///   `T` (nothing is sent);
    /// - [`Error::Usage`] when `T` is a zero-sized type;
    /// - from `wait`: [`Error::InvalidArgument`] of class [`ErrorClass::Count`] at every
    ///   rank when the lengths differ (rank 0 finds it and tells the others; a rank whose
    ///   part rank 0 could not take may get [`Error::Truncated`]);
    ///   [`Error::PeerFailed`] when a rank fails or leaves first (the root notices it and
    ///   tells the others which); [`Error::Aborted`].
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let mut req = world.iallreduce_into(vec![world.rank() as i64], shmpi::Op::Max)?;
    /// let got = loop {
    ///     // ... compute here ...
    ///     if let Some(v) = req.test()? { break v; }
    /// };
    /// assert_eq!(got, [world.size() as i64 - 1]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn iallreduce_into<T: Reducible>(&self, send: Vec<T>, op: Op) -> Result<CollRequest<T>> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            check_op::<T>(op)?;
            elem::<T>()?;
            let m = mc.ireduce(send, op, T::apply, None)?;
            return Ok(self.mpi_coll(Call::Allreduce, m));
        }
        check_op::<T>(op)?;
        self.start_gather(
            Call::Allreduce,
            send,
            Combine::Reduce(op, T::apply),
            0,
            true,
        )
    }

    /// Starts a gather of every rank's `send` to every rank (`MPI_Iallgather`; mpi4py
    /// `comm.Iallgather`): `wait` returns the parts one after the other in rank order.
    /// Every rank passes the same length.
    ///
    /// MPI 4.1 §6.12.5 (`MPI_Iallgather`).
    ///
    /// # Errors
    ///
    /// - [`Error::Usage`] when `T` is a zero-sized type;
    /// - from `wait`: [`Error::InvalidArgument`] of class [`ErrorClass::Count`] at every
    ///   rank when the lengths differ, as for [`iallreduce_into`](Self::iallreduce_into);
    ///   [`Error::PeerFailed`] when a rank fails or leaves first (the root notices it and
    ///   tells the others which); [`Error::Aborted`].
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank() as u32;
    /// let got = world.iallgather_into(vec![me, me * 10])?.wait()?;
    /// assert_eq!(got.len(), 2 * world.size() as usize);
    /// assert_eq!(got[2 * me as usize + 1], me * 10);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn iallgather_into<T: Pod>(&self, send: Vec<T>) -> Result<CollRequest<T>> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            elem::<T>()?;
            return Ok(self.mpi_coll(Call::Allgather, mc.iallgather(send)?));
        }
        self.start_gather(Call::Allgather, send, Combine::Concat, 0, true)
    }

    /// Starts a gather of every rank's `send` to `root` (`MPI_Igather`; mpi4py
    /// `comm.Igather`): `wait` returns at the root the parts one after the other in rank
    /// order, and at the other ranks their `send` back, unchanged. Every rank passes the
    /// same length.
    ///
    /// MPI 4.1 §6.12.3 (`MPI_Igather`).
    ///
    /// # Errors
    ///
    /// - from `wait`, at every rank: [`Error::InvalidArgument`] naming both calls (class
    ///   `Root`) when the ranks passed different roots (or started different rooted
    ///   collectives here); no data is handed out;
    /// - [`Error::InvalidRoot`] when `root` is not a rank of the communicator (nothing is
    ///   sent);
    /// - [`Error::Usage`] when `T` is a zero-sized type;
    /// - from `wait` at the root: [`Error::InvalidArgument`] of class [`ErrorClass::Count`]
    ///   when a part's length differs from its own (or [`Error::Truncated`]); the other
    ///   ranks are not told;
    /// - from `wait`: [`Error::PeerFailed`] when a rank it waits on fails or leaves first;
    ///   [`Error::Aborted`].
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank() as u32;
    /// let got = world.igather_into(vec![me, me + 100], 0)?.wait()?;
    /// if me == 0 {
    ///     assert_eq!(got.len(), 2 * world.size() as usize);
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn igather_into<T: Pod>(&self, send: Vec<T>, root: Rank) -> Result<CollRequest<T>> {
        let root = self.check_root(root)?;
        elem::<T>()?;
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return Ok(self.mpi_coll(Call::Gather, mc.igather(send, root)?));
        }
        let req = if self.inner.rank == root {
            self.start_gather(Call::Gather, send, Combine::Concat, root, false)?
        } else {
            self.send_part(Call::Gather, send, root)?
        };
        self.with_check(req, Call::Gather, root)
    }

    /// Starts a scatter of the root's `send`, `size` blocks of `recv.len()` elements,
    /// block `j` to rank `j` (`MPI_Iscatter`; mpi4py `comm.Iscatter`): `wait` returns
    /// `recv` holding this rank's block. The other ranks' `send` is not read (pass an
    /// empty vector).
    ///
    /// MPI 4.1 §6.12.4 (`MPI_Iscatter`).
    ///
    /// # Errors
    ///
    /// - from `wait`, at every rank: [`Error::InvalidArgument`] naming both calls (class
    ///   `Root`) when the ranks passed different roots (or started different rooted
    ///   collectives here); no data is handed out;
    /// - [`Error::InvalidRoot`] when `root` is not a rank of the communicator, and
    ///   [`Error::InvalidArgument`] (`Count`) at the root when `send` does not hold
    ///   `size * recv.len()` elements (nothing is sent), [`Error::Usage`] when `T` is a
    ///   zero-sized type;
    /// - from `wait` at a rank other than the root: [`Error::InvalidArgument`] of class
    ///   [`ErrorClass::Count`] when its `recv` is not the root's block length (or
    ///   [`Error::Truncated`]); [`Error::PeerFailed`], [`Error::Aborted`].
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let n = world.size() as u64;
    /// let send: Vec<u64> = if world.rank() == 0 { (0..2 * n).collect() } else { vec![] };
    /// let got = world.iscatter_into(send, vec![0; 2], 0)?.wait()?;
    /// let me = world.rank() as u64;
    /// assert_eq!(got, [2 * me, 2 * me + 1]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn iscatter_into<T: Pod>(
        &self,
        send: Vec<T>,
        recv: Vec<T>,
        root: Rank,
    ) -> Result<CollRequest<T>> {
        let root = self.check_root(root)?;
        elem::<T>()?;
        let (n, k, me) = (self.inner.group.size(), recv.len(), self.inner.rank);
        if me == root && send.len() != n * k {
            return Err(Error::invalid(
                ErrorClass::Count,
                format!(
                    "iscatter_into: the root's send holds {} elements, not {n} blocks of {k}",
                    send.len()
                ),
            ));
        }
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return Ok(self.mpi_coll(Call::Scatter, mc.iscatter(send, recv, root)?));
        }
        let req = self.start_scatter(Call::Scatter, send, recv, root, &|r| r * k..(r + 1) * k)?;
        self.with_check(req, Call::Scatter, root)
    }

    /// Starts an all-to-all of `send`, `size` blocks of equal length, block `j` to rank
    /// `j` (`MPI_Ialltoall`; mpi4py `comm.Ialltoall`): `wait` returns `size` blocks, block
    /// `j` from rank `j`. Every rank passes the same length.
    ///
    /// MPI 4.1 §6.12.6 (`MPI_Ialltoall`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] (`Count`) when `send`'s length is not a multiple of
    ///   the communicator's size (nothing is sent), [`Error::Usage`] when `T` is a
    ///   zero-sized type;
    /// - from `wait`: [`Error::InvalidArgument`] of class [`ErrorClass::Count`] when a
    ///   rank's blocks are of another length (or [`Error::Truncated`]); the other ranks
    ///   are not told; [`Error::PeerFailed`] when a rank it waits on fails or leaves
    ///   first; [`Error::Aborted`].
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let (me, n) = (world.rank(), world.size());
    /// let got = world.ialltoall_into((0..n).map(|j| [me, j]).collect())?.wait()?;
    /// assert_eq!(got, (0..n).map(|i| [i, me]).collect::<Vec<_>>());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn ialltoall_into<T: Pod>(&self, send: Vec<T>) -> Result<CollRequest<T>> {
        elem::<T>()?;
        let n = self.inner.group.size();
        if send.len() % n != 0 {
            return Err(Error::invalid(
                ErrorClass::Count,
                format!(
                    "ialltoall_into: a send of {} elements is not {n} blocks of one length",
                    send.len()
                ),
            ));
        }
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return Ok(self.mpi_coll(Call::Alltoall, mc.ialltoall(send)?));
        }
        let k = send.len() / n;
        self.start_exchange(
            Call::Alltoall,
            send,
            &|r| r * k..(r + 1) * k,
            Lens::Same(k),
            None,
        )
    }

    /// Starts an inclusive scan of every rank's `send` with `op` (`MPI_Iscan`; mpi4py
    /// `comm.Iscan`): `wait` returns at rank `r` the contributions of ranks `0..=r`
    /// combined in rank order. Every rank passes the same length. An allgather of the
    /// contributions, folded here as the result is handed out.
    ///
    /// MPI 4.1 §6.12.13 (`MPI_Iscan`).
    ///
    /// # Errors
    ///
    /// As [`iallreduce_into`](Self::iallreduce_into).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank() as u64;
    /// let got = world.iscan_into(vec![me + 1], shmpi::Op::Sum)?.wait()?;
    /// assert_eq!(got, [(me + 1) * (me + 2) / 2]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn iscan_into<T: Reducible>(&self, send: Vec<T>, op: Op) -> Result<CollRequest<T>> {
        self.iprefix(send, op, Call::Scan)
    }

    /// Starts an exclusive scan of every rank's `send` with `op` (`MPI_Iexscan`; mpi4py
    /// `comm.Iexscan`): `wait` returns at rank `r > 0` the contributions of ranks
    /// `0..r` combined in rank order, and at rank 0 its own `send` back (MPI leaves rank
    /// 0's result undefined). Every rank passes the same length.
    ///
    /// MPI 4.1 §6.12.14 (`MPI_Iexscan`).
    ///
    /// # Errors
    ///
    /// As [`iallreduce_into`](Self::iallreduce_into).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank() as u64;
    /// let got = world.iexscan_into(vec![me + 1], shmpi::Op::Sum)?.wait()?;
    /// if me > 0 {
    ///     assert_eq!(got, [me * (me + 1) / 2]);
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn iexscan_into<T: Reducible>(&self, send: Vec<T>, op: Op) -> Result<CollRequest<T>> {
        self.iprefix(send, op, Call::Exscan)
    }

    /// `iscan_into` (`call` `Scan`) or `iexscan_into` (`Exscan`): an allgather whose
    /// result is folded up to this rank when handed out.
    fn iprefix<T: Reducible>(&self, send: Vec<T>, op: Op, call: Call) -> Result<CollRequest<T>> {
        check_op::<T>(op)?;
        let upto = self.inner.rank + usize::from(call == Call::Scan);
        let len = send.len();
        let own = if upto == 0 { send.clone() } else { Vec::new() };
        let mut req = self.iallgather_into(send)?;
        req.what.call = call;
        req.post = Some(Box::new(Post::Prefix {
            op,
            apply: T::apply,
            len,
            upto,
            own,
        }));
        Ok(req)
    }

    /// Starts a reduction of every rank's `send` with `op` whose result is split
    /// among the ranks, `counts[j]` elements to rank `j` in order
    /// (`MPI_Ireduce_scatter`; mpi4py `comm.Ireduce_scatter`): `wait` returns this
    /// rank's elements of the reduced vector. Every rank passes the same `send` length,
    /// the sum of `counts`. An allreduce, of which this rank keeps its part as the
    /// result is handed out.
    ///
    /// MPI 4.1 §6.12.9 (`MPI_Ireduce_scatter`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] (`Count`) when `counts` does not hold one count per
    ///   rank or its sum is not
    ///   `send`'s length (nothing is sent);
    /// - as [`iallreduce_into`](Self::iallreduce_into).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let n = world.size() as usize;
    /// let counts: Vec<usize> = (0..n).map(|j| j % 2 + 1).collect();
    /// let len = counts.iter().sum();
    /// let got = world.ireduce_scatter_into(vec![1u32; len], &counts, shmpi::Op::Sum)?;
    /// assert_eq!(got.wait()?, vec![n as u32; counts[world.rank() as usize]]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn ireduce_scatter_into<T: Reducible>(
        &self,
        send: Vec<T>,
        counts: &[usize],
        op: Op,
    ) -> Result<CollRequest<T>> {
        let (n, me) = (self.inner.group.size(), self.inner.rank);
        if counts.len() != n || counts.iter().sum::<usize>() != send.len() {
            return Err(Error::invalid(
                ErrorClass::Count,
                format!(
                    "ireduce_scatter_into: {} counts summing to {} for {n} ranks and a send of {} \
                 elements",
                    counts.len(),
                    counts.iter().sum::<usize>(),
                    send.len()
                ),
            ));
        }
        let start: usize = counts[..me].iter().sum();
        let mut req = self.iallreduce_into(send, op)?;
        req.what.call = Call::ReduceScatterBlock;
        req.post = Some(Box::new(Post::Range(start..start + counts[me])));
        Ok(req)
    }

    /// [`ireduce_scatter_into`](Self::ireduce_scatter_into) of equal blocks
    /// (`MPI_Ireduce_scatter_block`; mpi4py `comm.Ireduce_scatter_block`): `send` holds
    /// one block per rank, and `wait` returns this rank's block of the reduction.
    ///
    /// MPI 4.1 §6.12.10 (`MPI_Ireduce_scatter_block`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`Count`) when `send`'s length is not a multiple of the
    /// communicator's size; as [`iallreduce_into`](Self::iallreduce_into).
    pub fn ireduce_scatter_block_into<T: Reducible>(
        &self,
        send: Vec<T>,
        op: Op,
    ) -> Result<CollRequest<T>> {
        let n = self.inner.group.size();
        if send.len() % n != 0 {
            return Err(Error::invalid(
                ErrorClass::Count,
                format!(
                    "ireduce_scatter_block_into: a send of {} elements is not {n} blocks of one \
                 length",
                    send.len()
                ),
            ));
        }
        let counts = vec![send.len() / n; n];
        self.ireduce_scatter_into(send, &counts, op)
    }

    /// Starts a gather of every rank's `send`, of lengths that may differ, into the
    /// root's `recv`: rank `j`'s elements go to `recv[displs[j]..displs[j] + counts[j]]`
    /// (`MPI_Igatherv`; mpi4py `comm.Igatherv`). `wait` returns `recv`: at the root
    /// with every part in place and the rest as it was, elsewhere as it was passed
    /// (pass an empty vector). `recv`, `counts` and `displs` are read at the root only;
    /// each rank's `send.len()` must be its count there.
    ///
    /// MPI 4.1 §6.12.3 (`MPI_Igatherv`).
    ///
    /// # Errors
    ///
    /// - from `wait`, at every rank: [`Error::InvalidArgument`] naming both calls (class
    ///   `Root`) when the ranks passed different roots (or started different rooted
    ///   collectives here); no data is handed out;
    /// - [`Error::InvalidRoot`] when `root` is not a rank of the communicator, and at the
    ///   root [`Error::InvalidArgument`] (`Count`) when `counts` or `displs` does not
    ///   hold one entry per rank, a block does not fit `recv`, or its own `send` is not
    ///   its count (nothing is sent); [`Error::Usage`] when `T` is a zero-sized type;
    /// - from `wait` at the root: [`Error::InvalidArgument`] of class
    ///   [`ErrorClass::Count`] when a rank's part is not its count (or
    ///   [`Error::Truncated`]); the other ranks are not told; [`Error::PeerFailed`] when a
    ///   rank it waits on fails or leaves first; [`Error::Aborted`].
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let (me, n) = (world.rank() as usize, world.size() as usize);
    /// // Rank j sends j + 1 copies of j, to row j (of n + 1 elements) at rank 0.
    /// let counts: Vec<usize> = (1..=n).collect();
    /// let displs: Vec<usize> = (0..n).map(|j| j * (n + 1)).collect();
    /// let recv = if me == 0 { vec![-1i32; n * (n + 1)] } else { vec![] };
    /// let req = world.igatherv_into(vec![me as i32; me + 1], recv, &counts, &displs, 0)?;
    /// let got = req.wait()?;
    /// if me == 0 {
    ///     assert_eq!(got[displs[n - 1]..displs[n - 1] + n], vec![n as i32 - 1; n][..]);
    ///     assert_eq!(got[1], -1); // row 0 holds one element, the rest is as it was
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn igatherv_into<T: Pod>(
        &self,
        send: Vec<T>,
        recv: Vec<T>,
        counts: &[usize],
        displs: &[usize],
        root: Rank,
    ) -> Result<CollRequest<T>> {
        let root = self.check_root(root)?;
        elem::<T>()?;
        let (n, me) = (self.inner.group.size(), self.inner.rank);
        if me == root {
            check_v("igatherv_into", n, recv.len(), counts, displs)?;
            own_count("igatherv_into", "send", send.len(), counts[me])?;
        }
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            let m = mc.igatherv(send, recv, counts, displs, root)?;
            return Ok(self.mpi_coll(Call::Gatherv, m));
        }
        let (mut req, post) = if me == root {
            let lens = Lens::Each(counts.to_vec());
            let req =
                self.start_gather_of(Call::Gatherv, send, Combine::Concat, root, false, lens, 0)?;
            (req, placed(counts, displs, recv))
        } else {
            (
                self.send_part(Call::Gatherv, send, root)?,
                Post::Instead(recv),
            )
        };
        req.post = Some(Box::new(post));
        self.with_check(req, Call::Gatherv, root)
    }

    /// Starts a scatter of blocks of the root's `send` that may differ in length:
    /// `send[displs[j]..displs[j] + counts[j]]` to rank `j` (`MPI_Iscatterv`; mpi4py
    /// `comm.Iscatterv`). `wait` returns `recv` holding this rank's block, whose length
    /// must be its count. `send`, `counts` and `displs` are read at the root only (pass
    /// an empty vector and slices elsewhere).
    ///
    /// MPI 4.1 §6.12.4 (`MPI_Iscatterv`).
    ///
    /// # Errors
    ///
    /// - from `wait`, at every rank: [`Error::InvalidArgument`] naming both calls (class
    ///   `Root`) when the ranks passed different roots (or started different rooted
    ///   collectives here); no data is handed out;
    /// - [`Error::InvalidRoot`] when `root` is not a rank of the communicator, and at the
    ///   root [`Error::InvalidArgument`] (`Count`) when `counts` or `displs` does not
    ///   hold one entry per rank, a block does not fit `send`, or its own `recv` is not
    ///   its count (nothing is sent); [`Error::Usage`] when `T` is a zero-sized type;
    /// - from `wait` at a rank other than the root: [`Error::InvalidArgument`] of class
    ///   [`ErrorClass::Count`] when its `recv` is not its count (or
    ///   [`Error::Truncated`]); [`Error::PeerFailed`], [`Error::Aborted`].
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let (me, n) = (world.rank() as usize, world.size() as usize);
    /// // Rank j gets j + 1 copies of j.
    /// let counts: Vec<usize> = (1..=n).collect();
    /// let displs: Vec<usize> = (0..n).map(|j| j * (j + 1) / 2).collect();
    /// let send: Vec<u32> = if me == 0 {
    ///     (0..n).flat_map(|j| vec![j as u32; j + 1]).collect()
    /// } else {
    ///     vec![]
    /// };
    /// let req = world.iscatterv_into(send, &counts, &displs, vec![0; me + 1], 0)?;
    /// assert_eq!(req.wait()?, vec![me as u32; me + 1]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn iscatterv_into<T: Pod>(
        &self,
        send: Vec<T>,
        counts: &[usize],
        displs: &[usize],
        recv: Vec<T>,
        root: Rank,
    ) -> Result<CollRequest<T>> {
        let root = self.check_root(root)?;
        elem::<T>()?;
        let (n, me) = (self.inner.group.size(), self.inner.rank);
        if me == root {
            check_v("iscatterv_into", n, send.len(), counts, displs)?;
            own_count("iscatterv_into", "recv", recv.len(), counts[me])?;
        }
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            let m = mc.iscatterv(send, counts, displs, recv, root)?;
            return Ok(self.mpi_coll(Call::Scatterv, m));
        }
        let req = self.start_scatter(Call::Scatterv, send, recv, root, &|r| {
            displs[r]..displs[r] + counts[r]
        })?;
        self.with_check(req, Call::Scatterv, root)
    }

    /// Starts an allgather of every rank's `send`, of lengths that may differ, into
    /// every rank's `recv`: rank `j`'s elements go to
    /// `recv[displs[j]..displs[j] + counts[j]]` (`MPI_Iallgatherv`; mpi4py
    /// `comm.Iallgatherv`). `wait` returns `recv` with every part in place and the rest
    /// as it was. Every rank passes the same `counts` and `displs`, and a `send` of its
    /// count.
    ///
    /// MPI 4.1 §6.12.5 (`MPI_Iallgatherv`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] (`Count`) when `counts` or `displs` does not hold one
    ///   entry per rank, a block does not fit `recv`, or `send` is not this rank's count
    ///   (nothing is sent), [`Error::Usage`] when `T` is a zero-sized type;
    /// - from `wait`: [`Error::InvalidArgument`] of class [`ErrorClass::Count`] when a
    ///   rank's part is not its count at rank 0, or the ranks' counts disagree (rank 0
    ///   finds it and tells the others); [`Error::PeerFailed`], [`Error::Aborted`].
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let (me, n) = (world.rank() as usize, world.size() as usize);
    /// let counts: Vec<usize> = (1..=n).collect();
    /// let displs: Vec<usize> = (0..n).map(|j| j * (j + 1) / 2).collect();
    /// let req = world.iallgatherv_into(vec![me as u8; me + 1], vec![0; n * (n + 1) / 2], &counts, &displs)?;
    /// let got = req.wait()?;
    /// assert_eq!(got[displs[n - 1]..], vec![n as u8 - 1; n][..]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn iallgatherv_into<T: Pod>(
        &self,
        send: Vec<T>,
        recv: Vec<T>,
        counts: &[usize],
        displs: &[usize],
    ) -> Result<CollRequest<T>> {
        elem::<T>()?;
        let (n, me) = (self.inner.group.size(), self.inner.rank);
        check_v("iallgatherv_into", n, recv.len(), counts, displs)?;
        own_count("iallgatherv_into", "send", send.len(), counts[me])?;
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            let m = mc.iallgatherv(send, recv, counts, displs)?;
            return Ok(self.mpi_coll(Call::Allgatherv, m));
        }
        let total = counts.iter().sum();
        let lens = Lens::Each(counts.to_vec());
        let mut req = self.start_gather_of(
            Call::Allgatherv,
            send,
            Combine::Concat,
            0,
            true,
            lens,
            total,
        )?;
        req.post = Some(Box::new(placed(counts, displs, recv)));
        Ok(req)
    }

    /// Starts an all-to-all of blocks that may differ in length:
    /// `send[sdispls[j]..sdispls[j] + scounts[j]]` to rank `j`, and from rank `j` into
    /// `recv[rdispls[j]..rdispls[j] + rcounts[j]]` (`MPI_Ialltoallv`; mpi4py
    /// `comm.Ialltoallv`). `wait` returns `recv` with every block in place and the rest
    /// as it was. Rank `i`'s `scounts[j]` must be rank `j`'s `rcounts[i]`.
    ///
    /// MPI 4.1 §6.12.6 (`MPI_Ialltoallv`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] (`Count`) when the counts or displacements do not hold
    ///   one entry per rank, a block does not fit its vector, or this rank's block to
    ///   itself is not its receive count (nothing is sent), [`Error::Usage`] when `T` is
    ///   a zero-sized type;
    /// - from `wait`: [`Error::InvalidArgument`] of class [`ErrorClass::Count`] when a
    ///   block from a rank is not its receive count (or [`Error::Truncated`]); the other
    ///   ranks are not told; [`Error::PeerFailed`], [`Error::Aborted`].
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let (me, n) = (world.rank() as usize, world.size() as usize);
    /// // Rank i sends i + 1 copies of i to every rank.
    /// let (scounts, sdispls): (Vec<usize>, Vec<usize>) = ((0..n).map(|_| me + 1).collect(), (0..n).map(|j| j * (me + 1)).collect());
    /// let rcounts: Vec<usize> = (1..=n).collect();
    /// let rdispls: Vec<usize> = (0..n).map(|j| j * (j + 1) / 2).collect();
    /// let send = vec![me as u16; n * (me + 1)];
    /// let req = world.ialltoallv_into(send, &scounts, &sdispls, vec![0; n * (n + 1) / 2], &rcounts, &rdispls)?;
    /// let got = req.wait()?;
    /// assert_eq!(got[rdispls[n - 1]..], vec![n as u16 - 1; n][..]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn ialltoallv_into<T: Pod>(
        &self,
        send: Vec<T>,
        scounts: &[usize],
        sdispls: &[usize],
        recv: Vec<T>,
        rcounts: &[usize],
        rdispls: &[usize],
    ) -> Result<CollRequest<T>> {
        elem::<T>()?;
        let (n, me) = (self.inner.group.size(), self.inner.rank);
        check_v("ialltoallv_into", n, send.len(), scounts, sdispls)?;
        check_v("ialltoallv_into", n, recv.len(), rcounts, rdispls)?;
        if scounts[me] != rcounts[me] {
            return Err(Error::invalid(
                ErrorClass::Count,
                format!(
                    "ialltoallv_into: this rank sends {} elements to itself but receives {}",
                    scounts[me], rcounts[me]
                ),
            ));
        }
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            let m = mc.ialltoallv(send, scounts, sdispls, recv, rcounts, rdispls)?;
            return Ok(self.mpi_coll(Call::Alltoallv, m));
        }
        self.start_exchange(
            Call::Alltoallv,
            send,
            &|r| sdispls[r]..sdispls[r] + scounts[r],
            Lens::Each(rcounts.to_vec()),
            Some(placed(rcounts, rdispls, recv)),
        )
    }

    /// Starts a collective that gathers every part at `root`, each of this rank's
    /// length.
    fn start_gather<T: Pod>(
        &self,
        call: Call,
        send: Vec<T>,
        combine: Combine<T>,
        root: usize,
        reply: bool,
    ) -> Result<CollRequest<T>> {
        let len = send.len();
        let out_len = match combine {
            Combine::Reduce(..) => len,
            Combine::Concat => len * self.inner.group.size(),
        };
        self.start_gather_of(call, send, combine, root, reply, Lens::Same(len), out_len)
    }

    /// Starts a collective that gathers every part at `root`, of lengths `lens`; the
    /// other ranks wait for a result of `out_len` elements if `reply`.
    #[allow(clippy::too_many_arguments)]
    fn start_gather_of<T: Pod>(
        &self,
        call: Call,
        send: Vec<T>,
        combine: Combine<T>,
        root: usize,
        reply: bool,
        lens: Lens,
        out_len: usize,
    ) -> Result<CollRequest<T>> {
        elem::<T>()?;
        let hidden = self.hidden()?;
        let tag = next_tag(self.inner.ctx);
        let what = self.nbc_what(call, tag);
        let eng = hidden.eng.clone();
        let n = self.inner.group.size();
        if self.inner.rank != root {
            let comm = hidden.comm()?;
            // Dropped, the send completes in the background; the reply says if it failed.
            drop(comm.isend_vec(send, root as Rank, tag)?);
            let state = reply_state(&hidden, vec![T::zeroed(); out_len], root, tag)?;
            return Ok(CollRequest {
                eng,
                what,
                state,
                post: None,
                check: None,
            });
        }
        let comm = hidden.comm()?;
        let mut recvs = Vec::with_capacity(n);
        let mut parts = Vec::with_capacity(n);
        for r in 0..n {
            if r == root {
                recvs.push(None);
                parts.push(None);
            } else {
                // One element more than needed, to tell a longer part from a fitting one.
                let buf = vec![T::zeroed(); lens.at(r) + 1];
                recvs.push(Some(comm.irecv_into(buf, r as Rank, tag)?));
                parts.push(None);
            }
        }
        parts[root] = Some(send);
        let mut req = CollRequest {
            eng,
            what,
            state: State::Gather {
                hidden,
                combine,
                reply,
                lens,
                recvs,
                parts,
                err: None,
            },
            post: None,
            check: None,
        };
        req.advance()?;
        Ok(req)
    }

    /// Starts a scatter from `root` of its blocks of `send`, `block(j)` to rank `j`,
    /// into each rank's `recv`.
    fn start_scatter<T: Pod>(
        &self,
        call: Call,
        send: Vec<T>,
        mut recv: Vec<T>,
        root: usize,
        block: &dyn Fn(usize) -> std::ops::Range<usize>,
    ) -> Result<CollRequest<T>> {
        let (n, me) = (self.inner.group.size(), self.inner.rank);
        let hidden = self.hidden()?;
        let tag = next_tag(self.inner.ctx);
        let what = self.nbc_what(call, tag);
        let eng = hidden.eng.clone();
        let state = if me == root {
            let comm = hidden.comm()?;
            for r in (0..n).filter(|&r| r != root) {
                // A send completes in the background once handed over (its buffer is a
                // copy), like `MPI_Request_free`.
                drop(comm.isend_vec(encode(&send[block(r)]), r as Rank, tag)?);
            }
            recv.copy_from_slice(&send[block(root)]);
            done(&self.inner.eng, Ok(recv))
        } else {
            reply_state(&hidden, recv, root, tag)?
        };
        Ok(CollRequest {
            eng,
            what,
            state,
            post: None,
            check: None,
        })
    }

    /// Starts an all-to-all: `send[block(j)]` to rank `j`, and from each rank a part of
    /// `lens`, gathered in rank order (then made into the result by `post`).
    fn start_exchange<T: Pod>(
        &self,
        call: Call,
        send: Vec<T>,
        block: &dyn Fn(usize) -> std::ops::Range<usize>,
        lens: Lens,
        post: Option<Post<T>>,
    ) -> Result<CollRequest<T>> {
        let (n, me) = (self.inner.group.size(), self.inner.rank);
        let hidden = self.hidden()?;
        let tag = next_tag(self.inner.ctx);
        let what = self.nbc_what(call, tag);
        let comm = hidden.comm()?;
        for r in (0..n).filter(|&r| r != me) {
            drop(comm.isend_vec(send[block(r)].to_vec(), r as Rank, tag)?);
        }
        // Every rank gathers the blocks sent to it, as the root of a gather does.
        let mut recvs = Vec::with_capacity(n);
        let mut parts = Vec::with_capacity(n);
        for r in 0..n {
            recvs.push(if r == me {
                None
            } else {
                // One element more than needed, to tell a longer block from a fitting one.
                Some(comm.irecv_into(vec![T::zeroed(); lens.at(r) + 1], r as Rank, tag)?)
            });
            parts.push((r == me).then(|| send[block(me)].to_vec()));
        }
        let mut req = CollRequest {
            eng: hidden.eng.clone(),
            what,
            state: State::Gather {
                hidden,
                combine: Combine::Concat,
                reply: false,
                lens,
                recvs,
                parts,
                err: None,
            },
            post: post.map(Box::new),
            check: None,
        };
        req.advance()?;
        Ok(req)
    }
}

/// The result of a `v` form: the parts, `counts[j]` elements from rank `j`, written
/// into `into` at `displs[j]`.
fn placed<T>(counts: &[usize], displs: &[usize], into: Vec<T>) -> Post<T> {
    Post::Place {
        counts: counts.to_vec(),
        displs: displs.to_vec(),
        into,
    }
}

/// Checks that this rank's own block, `got` elements of its `what`, is its count.
fn own_count(name: &str, what: &str, got: usize, count: usize) -> Result<()> {
    if got == count {
        return Ok(());
    }
    Err(Error::invalid(
        ErrorClass::Count,
        format!("{name}: this rank's {what} holds {got} elements but its count is {count}"),
    ))
}

/// Refuses zero-sized element types, as the point-to-point calls do.
fn elem<T>() -> Result<()> {
    if std::mem::size_of::<T>() == 0 {
        return Err(Error::Usage(format!(
            "non-blocking collectives need elements of nonzero size, not `{}`",
            std::any::type_name::<T>()
        )));
    }
    Ok(())
}

fn check_op<T: Reducible>(op: Op) -> Result<()> {
    if T::supports(op) {
        Ok(())
    } else {
        Err(Error::invalid(
            ErrorClass::Op,
            format!(
                "the reduction op {op:?} is not defined for elements of type `{}`",
                std::any::type_name::<T>()
            ),
        ))
    }
}

/// The root's reply carrying `data`.
fn encode<T: Pod>(data: &[T]) -> Vec<u8> {
    let bytes: &[u8] = bytemuck::cast_slice(data);
    let mut v = Vec::with_capacity(bytes.len() + 1);
    v.extend_from_slice(bytes);
    v.push(0);
    v
}

/// The last byte of the root's reply saying its part of the collective failed: on a
/// part of the wrong length (its message before it), on a failed peer (the peer's world
/// rank and how it ended, then a message), or on another error (its message).
const FAILED_COUNT: u8 = 1;
const FAILED_PEER: u8 = 2;
const FAILED_OTHER: u8 = 3;

/// Room for a failure reply, whatever the length of the result.
const FAILURE_ROOM: usize = 256;

/// At most this many bytes of an error's message travel in a failure reply.
const MESSAGE_ROOM: usize = 200;

/// The root's reply saying that it failed with `e`.
fn encode_failure(e: &Error) -> Vec<u8> {
    let mut v = Vec::with_capacity(FAILURE_ROOM);
    let code = match e {
        Error::PeerFailed { rank, how, .. } => {
            v.extend_from_slice(&(*rank as u64).to_le_bytes());
            let (kind, value) = match how {
                Exit::Code(c) => (0u8, *c),
                Exit::Signal(s) => (1, *s),
                Exit::Finalized => (2, 0),
                Exit::Panicked => (3, 0),
            };
            v.push(kind);
            v.extend_from_slice(&value.to_le_bytes());
            FAILED_PEER
        }
        e if matches!(e.class(), ErrorClass::Count | ErrorClass::Truncate) => FAILED_COUNT,
        _ => FAILED_OTHER,
    };
    let msg = e.to_string();
    let mut end = msg.len().min(MESSAGE_ROOM);
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    v.extend_from_slice(&msg.as_bytes()[..end]);
    v.push(code);
    v
}

/// The error a failure reply of `bytes` (its code byte last) stands for.
fn decode_failure(name: &str, bytes: &[u8]) -> Error {
    let (code, body) = bytes.split_last().expect("a failure reply has its code");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match *code {
        FAILED_PEER if body.len() >= 13 => {
            let rank = u64::from_le_bytes(body[..8].try_into().expect("8 bytes")) as usize;
            let value = i32::from_le_bytes(body[9..13].try_into().expect("4 bytes"));
            let how = match body[8] {
                0 => Exit::Code(value),
                1 => Exit::Signal(value),
                3 => Exit::Panicked,
                _ => Exit::Finalized,
            };
            Error::PeerFailed {
                rank,
                how,
                while_doing: format!(
                    "the root of {name} noticed it and failed the collective: {}",
                    text(&body[13..])
                ),
            }
        }
        FAILED_COUNT => count_error(format!(
            "{name}: the root found parts of different lengths: {}",
            text(body)
        )),
        _ => Error::invalid(
            ErrorClass::Other,
            format!("{name}: the root failed: {}", text(body)),
        ),
    }
}

/// The state of a rank that waits for the root's reply, decoded into `out`.
fn reply_state<T: Pod>(hidden: &Hidden, out: Vec<T>, root: usize, tag: i32) -> Result<State<T>> {
    let want = (std::mem::size_of_val(out.as_slice()) + 1).max(FAILURE_ROOM);
    let recv = hidden
        .comm()?
        .irecv_into(vec![0u8; want], root as Rank, tag)?;
    Ok(State::Reply {
        recv,
        out,
        root: hidden.group.ranks[root],
    })
}

fn done<T: Pod>(eng: &Rc<RefCell<Engine>>, result: Result<Vec<T>>) -> State<T> {
    let marker = eng.borrow_mut().complete_now(Done::Sent(None));
    State::Done { result, marker }
}

fn count_error(msg: String) -> Error {
    Error::invalid(ErrorClass::Count, msg)
}

/// The name of the non-blocking collective whose signature kind is `call`.
fn nbc_name(call: Call) -> &'static str {
    match call {
        Call::Barrier => "ibarrier",
        Call::Bcast => "ibcast_into",
        Call::Reduce => "ireduce_into",
        Call::Allreduce => "iallreduce_into",
        Call::Gather => "igather_into",
        Call::Scatter => "iscatter_into",
        Call::Alltoall => "ialltoall_into",
        Call::Scan => "iscan_into",
        Call::Exscan => "iexscan_into",
        Call::ReduceScatterBlock => "ireduce_scatter_into",
        Call::Gatherv => "igatherv_into",
        Call::Scatterv => "iscatterv_into",
        Call::Allgatherv => "iallgatherv_into",
        Call::Alltoallv => "ialltoallv_into",
        _ => "iallgather_into",
    }
}

impl<T: Pod> CollRequest<T> {
    fn name(&self) -> &'static str {
        nbc_name(self.what.call)
    }

    fn engine(&self) -> Result<Rc<RefCell<Engine>>> {
        if matches!(self.state, State::Spent) {
            return Err(Error::invalid(
                ErrorClass::Request,
                format!(
                    "{} request used after test() returned its result: the request is \
                     spent, its result was handed out once",
                    self.name()
                ),
            ));
        }
        self.eng.upgrade().ok_or_else(finalized)
    }

    /// Moves the collective on as far as the messages that have arrived allow, its
    /// signature check with it: once the check is over, a mismatch (or a member that
    /// left before sending its signature) is the result, whatever the data, which may
    /// never come.
    fn advance(&mut self) -> Result<()> {
        self.step()?;
        let Some(check) = &mut self.check else {
            return Ok(());
        };
        if !check.advance() {
            return Ok(());
        }
        let check = self.check.take().expect("checked above");
        let verdict = match (check.err, check.differs) {
            (Some(e), _) => e,
            (None, Some((j, theirs))) => self.mismatch(check.me, check.mine, j, theirs),
            (None, None) => return Ok(()),
        };
        match &mut self.state {
            State::Done { result, .. } => *result = Err(verdict),
            _ => {
                let eng = self.eng.upgrade().ok_or_else(finalized)?;
                // Dropped, the receives still pending are withdrawn.
                self.state = done(&eng, Err(verdict));
            }
        }
        Ok(())
    }

    /// The error of a rooted collective for which this rank (`me`) sent signature
    /// `mine` and member `j` sent `theirs`.
    #[cold]
    #[inline(never)]
    fn mismatch(&self, me: usize, mine: u64, j: usize, theirs: u64) -> Error {
        // The same call with another root is MPI's ERR_ROOT, as for the blocking ones.
        let class = if mine >> 32 == theirs >> 32 {
            ErrorClass::Root
        } else {
            ErrorClass::Other
        };
        Error::invalid(
            class,
            format!(
                "mismatched non-blocking collective calls on a communicator of {} ranks (context \
             {}): this rank ({me}) called {} but rank {j} called {}; every rank must start the \
             same non-blocking collectives in the same order with the same root (this \
             request fails on every rank and hands out no data)",
                self.what.group.size(),
                self.what.ctx & !HIDDEN,
                describe(mine),
                describe(theirs)
            ),
        )
    }

    /// Moves the state machine on as far as the messages that have arrived allow.
    fn step(&mut self) -> Result<()> {
        let name = self.name();
        let next = match &mut self.state {
            State::Gather {
                hidden,
                combine,
                reply,
                lens,
                recvs,
                parts,
                err,
            } => {
                for (r, slot) in recvs.iter_mut().enumerate() {
                    let Some(req) = slot else { continue };
                    let got = match req.test() {
                        Ok(None) => continue,
                        Ok(Some(got)) => Ok(got),
                        Err(e) => Err(e),
                    };
                    *slot = None;
                    match got {
                        Ok((mut buf, st)) => {
                            let k = st.count::<T>().unwrap_or(usize::MAX);
                            if k == lens.at(r) {
                                buf.truncate(k);
                                parts[r] = Some(buf);
                            } else {
                                err.get_or_insert_with(|| lens.mismatch(r));
                            }
                        }
                        Err(e) => {
                            err.get_or_insert(e);
                        }
                    }
                }
                if recvs.iter().any(Option::is_some) {
                    return Ok(());
                }
                let eng = hidden.eng.upgrade().ok_or_else(finalized)?;
                let me = hidden.rank;
                let result = match err.take() {
                    Some(e) => Err(e),
                    None => Ok(combined(*combine, parts)),
                };
                if *reply {
                    let comm = hidden.comm()?;
                    let msg = match &result {
                        Ok(v) => encode(v),
                        Err(e) => encode_failure(e),
                    };
                    for r in (0..recvs.len()).filter(|&r| r != me) {
                        // A failed send means the rank failed: it needs no reply.
                        if let Ok(s) = comm.isend_vec(msg.clone(), r as Rank, self.what.tag) {
                            drop(s);
                        }
                    }
                }
                done(&eng, result)
            }
            State::Reply { recv, out, .. } => {
                let Some(got) = recv.test().transpose() else {
                    return Ok(());
                };
                let eng = self.eng.upgrade().ok_or_else(finalized)?;
                let mut out = std::mem::take(out);
                let result = got.and_then(|(bytes, st)| {
                    let n = st.len();
                    let want = std::mem::size_of_val(out.as_slice());
                    if n == want + 1 && bytes[want] == 0 {
                        bytemuck::cast_slice_mut::<T, u8>(&mut out).copy_from_slice(&bytes[..want]);
                        Ok(out)
                    } else if n > 0 && bytes[n - 1] != 0 {
                        Err(decode_failure(name, &bytes[..n]))
                    } else {
                        Err(count_error(format!(
                            "this rank passed {} elements to a non-blocking collective whose \
                             result from the root has another length",
                            out.len()
                        )))
                    }
                });
                done(&eng, result)
            }
            State::Send { send, .. } => {
                let Some(got) = send.test().transpose() else {
                    return Ok(());
                };
                let eng = self.eng.upgrade().ok_or_else(finalized)?;
                done(&eng, got)
            }
            #[cfg(feature = "mpi")]
            State::Mpi(m) => {
                m.is_done()?;
                return Ok(());
            }
            State::Done { .. } | State::Spent => return Ok(()),
        };
        self.state = next;
        Ok(())
    }

    /// Ends the collective at this rank with `err` (a peer it waits on failed): the
    /// root still replies to the others, with the error, so that they fail too.
    fn fail(&mut self, err: Error) -> Result<Vec<T>> {
        // Dropped, the signature check's receives still pending are withdrawn.
        self.check = None;
        if let State::Gather {
            recvs, err: first, ..
        } = &mut self.state
        {
            first.get_or_insert(err);
            // Dropped, the receives still pending are withdrawn.
            recvs.iter_mut().for_each(|r| *r = None);
            self.advance()?;
        } else if let State::Done { result, .. } = &mut self.state {
            // The data came, but a member left before its signature did.
            *result = Err(err);
        } else if let Some(eng) = self.eng.upgrade() {
            self.state = done(&eng, Err(err));
        } else {
            return Err(err);
        }
        self.take().unwrap_or_else(|| Err(finalized()))
    }

    /// Takes the result out of a completed request (`Post` made of it here).
    fn take(&mut self) -> Option<Result<Vec<T>>> {
        let r = self.take_raw()?;
        Some(self.folded(r))
    }

    /// `r`, with what the request makes of it (`Post`).
    fn folded(&mut self, r: Result<Vec<T>>) -> Result<Vec<T>> {
        match self.post.take() {
            Some(p) => r.map(|all| p.make(all)),
            None => r,
        }
    }

    /// The result of a completed request as its collective made it.
    fn take_raw(&mut self) -> Option<Result<Vec<T>>> {
        #[cfg(feature = "mpi")]
        if let State::Mpi(m) = &mut self.state {
            if !m.is_complete() {
                return None;
            }
            let r = m.wait();
            self.state = State::Spent;
            return Some(r);
        }
        if self.check.is_some() || !matches!(self.state, State::Done { .. }) {
            return None;
        }
        let State::Done { result, marker } = std::mem::replace(&mut self.state, State::Spent)
        else {
            unreachable!("checked above")
        };
        if let Some(eng) = self.eng.upgrade() {
            if let Ok(mut e) = eng.try_borrow_mut() {
                e.take_done(marker);
            }
        }
        Some(result)
    }

    /// Makes progress once and returns the result if the collective has completed at
    /// this rank (`MPI_Test`). After it returned `Some`, the request is spent: a later
    /// `test` or `wait` is an error of class [`ErrorClass::Request`].
    ///
    /// MPI 4.1 §3.7.3 (`MPI_Test`), §6.12 (non-blocking collective operations).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] of class [`ErrorClass::Request`] when the request is
    ///   spent;
    /// - [`Error::Usage`] when this rank has finalized;
    /// - when it completes, the collective's own errors, as the call that started it
    ///   lists them.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let mut req = world.iallgather_into(vec![7u8])?;
    /// let all = loop {
    ///     if let Some(all) = req.test()? { break all; }
    /// };
    /// assert_eq!(all, vec![7u8; world.size() as usize]);
    /// assert!(req.test().is_err()); // spent
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn test(&mut self) -> Result<Option<Vec<T>>> {
        self.engine()?;
        self.advance()?;
        self.take().transpose()
    }

    /// Blocks until the collective has completed at this rank and returns its result
    /// (`MPI_Wait`).
    ///
    /// MPI 4.1 §3.7.3 (`MPI_Wait`), §6.12 (non-blocking collective operations).
    ///
    /// # Errors
    ///
    /// As [`test`](Self::test); besides, [`Error::PeerFailed`] when a rank it waits on
    /// fails or leaves first, [`Error::Aborted`] when the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let barrier = world.ibarrier()?;
    /// let sum = world.iallreduce_into(vec![1u32], shmpi::Op::Sum)?;
    /// assert_eq!(sum.wait()?, [world.size() as u32]);
    /// barrier.wait()?;
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn wait(mut self) -> Result<Vec<T>> {
        let eng = self.engine()?;
        #[cfg(feature = "mpi")]
        if let State::Mpi(m) = &mut self.state {
            let r = m.wait();
            self.state = State::Spent;
            return self.folded(r);
        }
        let mut b = eng.borrow().backoff();
        let r = loop {
            if let Err(e) = self.advance() {
                break Err(e);
            }
            if let Some(r) = self.take() {
                break r;
            }
            let desc = WaitDesc {
                op: WaitOp::Wait,
                call: self.what.call,
                peer: self.waiting_on(),
                tag: self.what.tag,
                ctx: self.what.ctx,
                group: &self.what.group,
            };
            let peer = desc.peer;
            let alive = {
                let mut e = eng.borrow_mut();
                e.check_alive(&desc).and_then(|()| e.idle(&mut b, &desc))
            };
            if let Err(err) = alive {
                // `advance` tests the receives one after another, and the progress of a
                // later test may have completed an earlier one with the last message of
                // a rank that has left since: look again before calling it failed.
                if let Err(e) = self.advance() {
                    break Err(e);
                }
                if let Some(r) = self.take() {
                    break r;
                }
                if self.waiting_on() != peer {
                    continue;
                }
                break self.fail(err);
            }
        };
        eng.borrow_mut().end_wait();
        r
    }
}

/// The parts combined: reduced in rank order, or concatenated.
fn combined<T: Pod>(combine: Combine<T>, parts: &mut [Option<Vec<T>>]) -> Vec<T> {
    let mut parts = parts
        .iter_mut()
        .map(|p| p.take().expect("every part is in"));
    match combine {
        Combine::Reduce(op, apply) => {
            let mut acc = parts.next().expect("at least one rank");
            for p in parts {
                apply(op, &mut acc, &p);
            }
            acc
        }
        Combine::Concat => parts.flatten().collect(),
    }
}

impl<T: Pod> CollRequest<T> {
    /// The world rank whose message this rank waits for next: a signature first, as
    /// the check decides whether the data will come.
    fn waiting_on(&self) -> Option<usize> {
        if let Some(j) = self.check.as_ref().and_then(|c| c.waiting_on()) {
            return Some(j);
        }
        match &self.state {
            State::Gather { recvs, hidden, .. } => recvs
                .iter()
                .position(Option::is_some)
                .map(|r| hidden.group.ranks[r]),
            State::Reply { root, .. } | State::Send { root, .. } => Some(*root),
            State::Done { .. } | State::Spent => None,
            #[cfg(feature = "mpi")]
            State::Mpi(_) => None,
        }
    }
}

impl<T: Pod> Sealed for CollRequest<T> {
    fn pending(&self) -> Option<Pending<'_>> {
        // A signature first, as the check decides whether the data will come.
        let mut check = self.check.iter().flat_map(|c| c.recvs.iter().flatten());
        if let Some(p) = check.find_map(Sealed::pending) {
            return Some(p);
        }
        match &self.state {
            State::Gather { recvs, .. } => recvs.iter().flatten().find_map(Sealed::pending),
            State::Reply { recv, .. } => Sealed::pending(recv),
            State::Send { send, .. } => Sealed::pending(send),
            State::Done { marker, .. } => Some(Pending::new(&self.eng, *marker, &self.what)),
            State::Spent => None,
            #[cfg(feature = "mpi")]
            State::Mpi(_) => None,
        }
    }
    #[cfg(feature = "mpi")]
    fn mpi_state(&mut self) -> Option<Result<bool>> {
        match &mut self.state {
            State::Mpi(m) => Some(m.is_done()),
            _ => None,
        }
    }
}

impl<T: Pod> AnyRequest for CollRequest<T> {}

impl<T: Pod> Drop for CollRequest<T> {
    fn drop(&mut self) {
        if let State::Done { marker, .. } = self.state {
            if let Some(eng) = self.eng.upgrade() {
                if let Ok(mut e) = eng.try_borrow_mut() {
                    e.forget(marker);
                }
            }
        }
    }
}

impl<T: Pod> std::fmt::Debug for CollRequest<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollRequest")
            .field("call", &self.name())
            .field("tag", &self.what.tag)
            .field("complete", &matches!(self.state, State::Done { .. }))
            .field("collected", &matches!(self.state, State::Spent))
            .finish()
    }
}
