//! Collective operations through shared memory, not through point-to-point messages.
//!
//! Families, one file each: [`slices`] (plain data, `MPI_Bcast` ... `MPI_Alltoallv`),
//! [`objects`] (rkyv objects, mpi4py's lowercase collectives), [`comms`] (`dup`,
//! `split`, freeing), [`op`] (reduction operations).
//!
//! # The protocol
//!
//! Every communicator owns an *area* in the segment (`shmcoll.rs`): one member block
//! per rank with an arrival counter `arrive`, the signature of the call (kind, root,
//! element size, op, count), and two small inline buffers; and every world rank owns a
//! *data slot* of two halves, shared by all its communicators.
//! A communicator of one rank (`self_comm`, and dups and splits of one) has its area
//! in the process's heap instead (`Area::new_private`): the same steps run on it, each
//! satisfied by this rank alone, so it needs no pooled area and no special path.
//!
//! A collective call is a fixed sequence of *steps*, numbered per communicator and
//! the same on every member (the count follows from the arguments, which the first
//! step checks). At step `t` a rank
//! 1. writes the data it publishes for this step into inline buffer `t % 2` of its
//!    member block (small) or into half `t % 2` of its data slot (large),
//! 2. stores `arrive = t` (Release) and wakes the members that sleep,
//! 3. waits until each rank it reads from has `arrive >= t` (Acquire), checking at the
//!    first step that it called the same collective with matching arguments,
//! 4. reads (copies, reduces) what it needs, and goes on to step `t + 1`.
//!
//! No rank goes past a call's first step, or returns `Ok`, before it has checked the
//! signature of *every* member: the members it did not wait for at that step (the
//! root of a bcast waits for nobody, the other ranks of a gather wait for nobody) it
//! waits for at the end of the step (`Coll::check_all`). So a rooted collective
//! returns only once every member has started it, and calls that differ in kind, root,
//! count, element size or op fail on *every* rank, each with an error naming both
//! calls, whichever rank arrives first. A member that has moved on to a later call
//! with another signature (so its line no longer shows this call's) has therefore
//! checked this one and found it matching.
//!
//! The exception is a run of identical small broadcasts, or of object broadcasts
//! ([`Coll::bcast_eager`], [`Coll::bcast_eager_obj`]): there the root sends the data
//! as messages and checks its members later (`check_run`), and before it rewrites its
//! signature, so that what a member reads in the root's line is still the run's
//! signature until every member has arrived at the run's last step.
//!
//! Reuse: a rank's reads of step-`t` data happen before its arrival at `t + 1` and
//! before the `done = t` it stores at the end of every call. So before a rank writes a
//! buffer last used at step `s`, it waits until every member of the communicator that
//! step belonged to has `arrive > s` or `done >= s`. In a sequence of calls on one
//! communicator this holds already (the ranks move in lockstep and each step waits
//! for the previous one); across communicators the `done` word says it.
//!
//! Algorithms (bounded by copies, not by message counts):
//! - barrier: one step, every rank waits for every arrival; no data;
//! - bcast, scatter(v): the root writes once, the others copy out, pipelined through
//!   the two halves for data larger than a half;
//! - gather(v), allgather(v), alltoall(v), scan, exscan, reduce_scatter_block, small
//!   reduce/allreduce: every rank publishes its contribution and each reads (and
//!   reduces, in rank order) what it needs;
//! - large reduce/allreduce: per chunk, a shared-memory reduce-scatter (each rank
//!   reduces its part of the chunk across all contributions and publishes it) then
//!   an allgather (or a gather to the root), two steps per chunk.
//!
//! Waiting uses the engine's spin -> yield -> futex sleep backoff and keeps draining
//! the point-to-point rings (`Engine::progress`), and checks the abort word and the
//! peer waited on (`WaitOp::Collective`), so a dead rank is `Error::PeerFailed`, not
//! a hang. No user closure runs while the engine is borrowed.
//!
//! After a collective fails (a mismatch, a dead peer, a bad argument found part-way)
//! the communicator cannot be used for collectives any more: later calls are
//! `Error::Usage`. The failing rank also stores `arrive = FAILED`, so that a member
//! waiting for one of its steps fails too, with an error that names it, instead of
//! waiting for a step that will never come.

pub(crate) mod comms;
mod in_place;
pub(crate) mod nbc;
pub(crate) mod objects;
pub(crate) mod op;
pub(crate) mod slices;

#[cfg(debug_assertions)]
use std::cell::Cell;
use std::sync::atomic::Ordering;

use bytemuck::Pod;

use rkyv::util::AlignedVec;

use crate::call::Call;
use crate::comm::CommInner;
use crate::doorbell;
use crate::envelope::Envelope;
use crate::error::{Error, ErrorClass, Result};
use crate::layout::BCAST_CELLS;
use crate::matching::{Group, Matcher, Want};
use crate::progress::{Engine, WaitDesc, WaitOp};
use crate::shmcoll::{self, Area, CollShm, EagerRun, HalfUse, INLINE_BYTES, INLINE_WORDS};

/// Count value meaning "not compared across ranks" (variable-size calls).
pub(crate) const ANY_COUNT: u64 = u64::MAX;
/// Op code of a user closure (cannot be compared across ranks).
pub(crate) const OP_CLOSURE: u8 = 0xff;
/// Op code of calls without an op.
pub(crate) const OP_NONE: u8 = 0;
/// Op code of the call a rank makes in the place of one whose arguments it found
/// invalid ([`Communicator::args`]).
const OP_INVALID: u8 = 0xfe;
/// Op code of a call whose count is a digest of the arguments every rank must pass
/// alike ([`Communicator::sync_as`]).
const OP_DIGEST: u8 = 0xfd;

/// The signature of a call: what every rank must agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sig {
    pub(crate) kind: Call,
    pub(crate) op: u8,
    pub(crate) elem: u16,
    pub(crate) root: u32,
}

impl Sig {
    fn pack(self) -> u64 {
        (self.kind as u64) << 56
            | (self.op as u64) << 48
            | (self.elem as u64) << 32
            | self.root as u64
    }

    fn unpack(w: u64) -> Option<Sig> {
        Some(Sig {
            kind: Call::from_code((w >> 56) as u32)?,
            op: (w >> 48) as u8,
            elem: (w >> 32) as u16,
            root: w as u32,
        })
    }

    fn describe(self, count: u64) -> String {
        if self.op == OP_INVALID {
            return format!(
                "{} with arguments it found invalid (its own error says which)",
                self.kind.name()
            );
        }
        if self.op == OP_DIGEST {
            return format!(
                "{} with arguments of digest {count:#018x}",
                self.kind.name()
            );
        }
        let mut s = format!("{}(", self.kind.name());
        let mut parts = vec![];
        if self.kind.rooted() {
            parts.push(format!("root={}", self.root));
        }
        if count != ANY_COUNT {
            parts.push(format!("count={count}"));
        }
        if self.elem != 0 {
            parts.push(format!("{}-byte elements", self.elem));
        }
        if self.op != OP_NONE {
            parts.push(format!("op={}", op::op_name(self.op)));
        }
        s.push_str(&parts.join(", "));
        s.push(')');
        s
    }
}

/// A digest of arguments every rank must pass alike (FNV-1a of the words), for
/// [`Communicator::sync_as`]; never 0.
pub(crate) fn digest(words: impl IntoIterator<Item = u64>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for w in words {
        for b in w.to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h | 1
}

/// The MPI error class of a mismatch between this rank's call `mine` and a member's
/// (`theirs`, `count`). MPI leaves a mismatched collective erroneous without a class;
/// these are the classes Open MPI and MPICH report for the argument that differs: a
/// root `Root`, an op `Op`, a count below the member's `Truncate` (its message would
/// not fit this rank's buffer), another count `Count`, anything else `Other`.
fn mismatch_class(mine: (Sig, u64), theirs: Option<Sig>, count: u64) -> ErrorClass {
    let Some(t) = theirs else {
        return ErrorClass::Other;
    };
    let m = mine.0;
    let plain = |op: u8| op != OP_INVALID && op != OP_DIGEST;
    if t.kind != m.kind || !plain(m.op) || !plain(t.op) {
        ErrorClass::Other
    } else if m.kind.rooted() && t.root != m.root {
        ErrorClass::Root
    } else if t.op != m.op {
        ErrorClass::Op
    } else if t.elem != m.elem || count == ANY_COUNT || mine.1 == ANY_COUNT {
        ErrorClass::Other
    } else if mine.1 < count {
        ErrorClass::Truncate
    } else {
        ErrorClass::Count
    }
}

/// Whether a member's call (`theirs`, `count`) matches `mine`.
fn matches(mine: (Sig, u64), theirs: Option<Sig>, count: u64) -> bool {
    theirs == Some(mine.0) && (count == mine.1 || count == ANY_COUNT || mine.1 == ANY_COUNT)
}

/// Broadcasts of at most this many bytes may go eagerly (`Coll::eager`): above it the
/// root's copy per member costs more than the wait it saves.
pub(crate) const EAGER_BCAST_MAX: usize = 1024;

/// Bytes before the data in an eager broadcast's message: the call's signature and
/// count.
const EAGER_HEAD: usize = 16;

/// Runs `f` on a zeroed message buffer of `len` (at most `EAGER_HEAD +
/// EAGER_BCAST_MAX`) bytes on the stack: a 64-byte one where it fits, because zeroing
/// one of the largest size costs more than a small call's copies.
fn with_message<R>(len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    if len <= 64 {
        f(&mut [0u8; 64][..len])
    } else {
        f(&mut [0u8; EAGER_HEAD + EAGER_BCAST_MAX][..len])
    }
}

/// Eager broadcasts between two checks of the members by their root.
const EAGER_CHECK_EVERY: u64 = 64;

/// The bit that makes a communicator's context the one of its eager broadcasts'
/// messages, so that they never match the program's receives (nor the non-blocking
/// collectives', which set `0x8000_0000`). Real contexts count up from 0 by one per
/// communicator created and never reach it.
const EAGER_CTX: u32 = 0x4000_0000;

/// Polls of the awaited word (each after a `pause`) before a wait enters the engine's
/// backoff loop, whose steps also drain the rings and so notice an arrival later (the
/// A/B is in docs/performance.md). Not when ranks outnumber CPUs: those waits yield at
/// once.
const QUICK_POLLS: u32 = 32;

/// Set in the `arrive` word of a member whose call failed part-way (a bad argument
/// found after the first step, a mismatch, a dead peer), over the last step it did
/// arrive at: it will never arrive at a later step of this communicator, and the
/// members that wait for one fail instead. Above every real step, so that waiters wake
/// and `wait_readers` counts the member as done reading.
const FAILED: u64 = 1 << 63;

/// The byte offsets of `parts` laid end to end: `parts.len() + 1` of them, from 0 to
/// their total (a scatter's or all-to-all's table).
fn offsets<P: AsRef<[u8]>>(parts: &[P]) -> Vec<u64> {
    let mut table = Vec::with_capacity(parts.len() + 1);
    let mut at = 0u64;
    table.push(at);
    for p in parts {
        at += p.as_ref().len() as u64;
        table.push(at);
    }
    table
}

/// `parts` laid end to end in one buffer (what `exchange` reads).
fn joined<P: AsRef<[u8]>>(parts: &[P]) -> Vec<u8> {
    let mut all = Vec::with_capacity(parts.iter().map(|p| p.as_ref().len()).sum());
    for p in parts {
        all.extend_from_slice(p.as_ref());
    }
    all
}

/// Where a broadcast or gather of data whose length only its sender knows puts it: an
/// object's archive (aligned, for its decoding) or raw bytes.
pub(crate) trait ByteSink {
    fn put(&mut self, bytes: &[u8]);
}

impl ByteSink for AlignedVec {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl ByteSink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl crate::comm::Communicator {
    /// Runs a collective's local argument checks (a root in range, buffers of the
    /// right length, a usable type or op), made before the call starts. A rank that
    /// fails one still takes its place in the communicator's sequence of calls, with a
    /// call that the members' first step finds different from theirs, so that they
    /// fail in this call instead of pairing it with this rank's next one (and
    /// returning data of two different calls). When every member failed its checks,
    /// the calls match and the communicator stays usable.
    pub(crate) fn args<A>(&self, kind: Call, checks: impl FnOnce() -> Result<A>) -> Result<A> {
        checks().map_err(|e| self.invalid_call(kind, e))
    }

    /// A call of its own that only synchronizes, as `kind` (a window's fence and free),
    /// so that a member making another call, or `kind` with other arguments, fails it:
    /// `args` is a digest of the arguments every rank must pass alike (0 for none;
    /// [`digest`]). On the MPI backend a barrier, with no such check (as in MPI).
    pub(crate) fn sync_as(&self, kind: Call, args: u64) -> Result<()> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return mc.barrier();
        }
        let op = if args == 0 { OP_NONE } else { OP_DIGEST };
        let mut c = Coll::begin(&self.inner, slices::sig(kind, 0, 0, op), args)?;
        c.sync_all()?;
        c.finish();
        Ok(())
    }

    /// A call of its own, as `kind`, in which every rank publishes `word` and gets every
    /// rank's, in rank order: for a decision every rank must take alike from all of
    /// them (a window's free, refused if any rank refuses), where [`args`](Self::args)
    /// would leave the communicator out of step. Each rank waits for every other's word,
    /// so it is a barrier too. On the MPI backend an allgather.
    pub(crate) fn allgather_as(&self, kind: Call, word: u64) -> Result<Vec<u64>> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            let mut all = vec![0u64; self.inner.group.size()];
            mc.gather_bytes(
                bytemuck::bytes_of(&word),
                bytemuck::cast_slice_mut(&mut all),
                None,
            )?;
            return Ok(all);
        }
        let mut c = Coll::begin(&self.inner, slices::sig(kind, 0, 0, OP_NONE), ANY_COUNT)?;
        let words = c.all_words(word)?;
        c.finish();
        Ok(words)
    }

    /// Makes the call [`args`](Self::args) puts in the place of `kind`, then returns
    /// this rank's own error `e`.
    #[cold]
    #[inline(never)]
    fn invalid_call(&self, kind: Call, e: Error) -> Error {
        // MPI's collectives have no such step: there, as in MPI, it stays erroneous.
        #[cfg(feature = "mpi")]
        if self.inner.mpi.is_some() {
            return e;
        }
        let sig = Sig {
            kind,
            op: OP_INVALID,
            elem: 0,
            root: 0,
        };
        // Not on an intercommunicator or a broken communicator: no call is made there.
        if let Ok(mut c) = Coll::begin(&self.inner, sig, ANY_COUNT) {
            // A member that made another call fails this one (dropped unfinished).
            if c.sync_all().is_ok() {
                c.finish();
            }
        }
        e
    }
}

/// One collective call in progress on one communicator.
pub(crate) struct Coll<'c> {
    c: &'c CommInner,
    shm: CollShm<'c>,
    name: &'static str,
    first: u64,
    next: u64,
    sig: Sig,
    count: u64,
    /// Members whose signature this call has checked (at its first step, in `wait`),
    /// for the assertion in `finish` only.
    #[cfg(debug_assertions)]
    checked: Cell<usize>,
    finished: bool,
}

impl<'c> Coll<'c> {
    /// Starts a call. `count` is compared across ranks unless it is [`ANY_COUNT`].
    pub(crate) fn begin(c: &'c CommInner, sig: Sig, count: u64) -> Result<Self> {
        if c.inter.is_some() {
            return Err(crate::intercomm::no_collectives(sig.kind.name()));
        }
        if c.broken.get() {
            return Err(Error::Usage(format!(
                "{}: an earlier collective on this communicator (context {}) failed, so its ranks \
                 are out of step; it cannot be used for collectives any more",
                sig.kind.name(),
                c.ctx
            )));
        }
        let first = c.step.get();
        crate::trace::coll_begin(sig.kind.code() as u8, c.ctx, sig.root, sig.op, count);
        let coll = Coll {
            c,
            shm: c.coll.shm(),
            name: sig.kind.name(),
            first,
            next: first,
            sig,
            count,
            #[cfg(debug_assertions)]
            checked: Cell::new(0),
            finished: false,
        };
        if let Some(run) = c.area.eager.get() {
            let last = c.area.last_sig.get();
            if last != Some((sig.pack(), count)) {
                // This call rewrites the signature the run's members check: they must
                // all have checked it first (and theirs must match).
                c.area.eager.set(None);
                let last = last.expect("a run of broadcasts wrote its signature");
                coll.check_run(run, run.last, last)?;
            }
        }
        Ok(coll)
    }

    pub(crate) fn n(&self) -> usize {
        self.c.group.size()
    }

    pub(crate) fn me(&self) -> usize {
        self.c.rank
    }

    fn world(&self, j: usize) -> usize {
        self.c.group.ranks[j]
    }

    fn area(&self) -> &Area {
        &self.c.area
    }

    fn line(&self, j: usize) -> &'c shmcoll::Line {
        let c: &'c CommInner = self.c;
        &c.area.member(j).line
    }

    /// Bytes per round of the slot path.
    pub(crate) fn half_bytes(&self) -> usize {
        self.shm.half_bytes()
    }

    /// Arrives at the next step, publishing everything written for it, and wakes
    /// nobody. Returns the step.
    fn publish(&mut self) -> u64 {
        let t = self.next;
        self.next += 1;
        let l = self.line(self.me());
        if t == self.first {
            // The signature stays valid for later calls until it changes (see
            // `check_sig`), so a loop of identical calls does not rewrite it.
            let sig = (self.sig.pack(), self.count);
            if self.area().last_sig.get() != Some(sig) {
                shmcoll::write_sig(l, t, sig.0, sig.1);
                self.area().last_sig.set(Some(sig));
            }
        }
        // SYNC POINT arrive (Release): the inline words and slot bytes of step t.
        l.arrive.store(t, Ordering::Release);
        t
    }

    /// Arrives at the next step (`publish`) and wakes the members that sleep.
    fn arrive(&mut self) -> u64 {
        let t = self.publish();
        self.wake_members();
        t
    }

    /// Wakes the other members that sleep, after this rank's `arrive` changed.
    #[inline]
    fn wake_members(&self) {
        let me_w = self.c.coll.me;
        let seg = &self.c.coll.seg;
        doorbell::notify_many(
            self.c
                .group
                .ranks
                .iter()
                .filter(|&&w| w != me_w)
                .map(|&w| &*seg.ctrl(w).bell),
        );
    }

    /// Waits until member `j` has arrived at `step`; at the call's first step also
    /// checks that `j` called the same collective with matching arguments. Each member
    /// is waited for at most once per step (`checked` counts members, not calls).
    fn wait(&self, j: usize, step: u64) -> Result<()> {
        if j == self.me() {
            return Ok(());
        }
        self.arrival(j, step)?;
        if step == self.first {
            self.check_sig(j)?;
            #[cfg(debug_assertions)]
            self.checked.set(self.checked.get() + 1);
        }
        Ok(())
    }

    /// Waits until member `j` (not this rank) has arrived at `step`: a member whose
    /// call failed before it is an error.
    fn arrival(&self, j: usize, step: u64) -> Result<()> {
        let seen = &self.area().seen[j];
        if seen.get() >= step {
            return Ok(());
        }
        let line = self.line(j);
        // SYNC POINT arrive (Acquire).
        let mut v = line.arrive.load(Ordering::Acquire);
        if v < step && self.c.coll.spins {
            for _ in 0..QUICK_POLLS {
                doorbell::pause();
                v = line.arrive.load(Ordering::Acquire);
                if v >= step {
                    break;
                }
            }
        }
        if v < step {
            let ready = || line.arrive.load(Ordering::Acquire) >= step;
            self.block(Some(self.world(j)), &self.c.group, &ready)?;
            v = line.arrive.load(Ordering::Acquire);
        }
        if v & FAILED != 0 {
            let last = v & !FAILED;
            if last < step {
                return Err(self.peer_failed(j, last));
            }
            v = last; // it failed after publishing this step: read it
        }
        seen.set(v);
        Ok(())
    }

    /// Checks the signature of every member, waiting for its arrival at the call's
    /// first step. A rank that did not wait for every member at that step (the root of
    /// a bcast waits for nobody) calls this at the end of the step, so that no call
    /// goes past its first step, and none returns `Ok`, before every member's signature
    /// has been found to match.
    #[cold]
    #[inline(never)]
    fn check_all(&self) -> Result<()> {
        for j in 0..self.n() {
            self.wait(j, self.first)?;
        }
        Ok(())
    }

    /// The error of a call whose member `j` failed (set `FAILED` in its `arrive`)
    /// before arriving at the step awaited, having last arrived at step `last`. If it
    /// failed in this call, it may have failed on finding the calls mismatched: then
    /// that is the error here too, naming both calls.
    #[cold]
    #[inline(never)]
    fn peer_failed(&self, j: usize, last: u64) -> Error {
        let when = if last >= self.first {
            if let Err(e) = self.check_sig(j) {
                return e;
            }
            "this collective call part-way"
        } else {
            "a collective call on this communicator (an earlier one, or this one before its \
             first step)"
        };
        Error::Usage(format!(
            "{}: rank {j} of this communicator (context {}) failed {when}, with an error of \
             its own (see that rank's error), so this call cannot complete",
            self.name, self.c.ctx
        ))
    }

    #[inline(always)]
    fn check_sig(&self, j: usize) -> Result<()> {
        let Some((sig, count)) = shmcoll::read_sig(self.line(j), self.first) else {
            // j has moved on to a later, different call, which it could do only after
            // checking every member's signature for this one (`check_all`).
            return Ok(());
        };
        let theirs = Sig::unpack(sig);
        if matches((self.sig, self.count), theirs, count) {
            return Ok(());
        }
        Err(self.mismatch((self.sig, self.count), false, j, theirs, sig, count))
    }

    /// The error of a call `mine` (an eager broadcast this rank made `earlier`, or this
    /// call) whose member `j` called `theirs` (`sig`, `count`).
    #[cold]
    #[inline(never)]
    fn mismatch(
        &self,
        mine: (Sig, u64),
        earlier: bool,
        j: usize,
        theirs: Option<Sig>,
        sig: u64,
        count: u64,
    ) -> Error {
        let other = match theirs {
            Some(s) => s.describe(count),
            None => format!("an unknown collective (signature {sig:#x})"),
        };
        let when = if earlier {
            " in an earlier call, which returned before that rank started its own (the root \
             of a run of identical broadcasts does not wait for the others; it reports a \
             mismatch at a later collective call on the communicator)"
        } else {
            ""
        };
        let class = mismatch_class(mine, theirs, count);
        Error::invalid(
            class,
            format!(
                "mismatched collective calls on a communicator of {} ranks (context {}): this rank \
             ({}) called {}{when} but rank {j} called {}; every rank must call the same \
             collectives in the same order with matching roots, counts, types, ops and \
             arguments",
                self.n(),
                self.c.ctx,
                self.me(),
                mine.0.describe(mine.1),
                other
            ),
        )
    }

    /// Checks, for the eager broadcasts this rank made as root up to step `p`, what it
    /// did not wait for then: every member has arrived at `p` and called the run's
    /// call (`mine`, packed) there, or has since moved on to another call, which it
    /// could do only having checked this rank's signature itself.
    #[cold]
    #[inline(never)]
    fn check_run(&self, run: EagerRun, p: u64, mine: (u64, u64)) -> Result<()> {
        let ours = (
            Sig::unpack(mine.0).expect("this rank's own signature"),
            mine.1,
        );
        let differs = |j: usize, step: u64| {
            let (sig, count) = shmcoll::read_sig(self.line(j), step)?;
            let theirs = Sig::unpack(sig);
            (!matches(ours, theirs, count))
                .then(|| self.mismatch(ours, true, j, theirs, sig, count))
        };
        for j in 0..self.n() {
            if j == self.me() {
                continue;
            }
            if let Err(e) = self.arrival(j, p) {
                // A member that failed during the run, most likely on finding that its
                // call there was not this broadcast: name both calls if so.
                let v = self.line(j).arrive.load(Ordering::Acquire);
                let last = v & !FAILED;
                if v & FAILED != 0 && last >= run.first {
                    if let Some(m) = differs(j, last) {
                        return Err(m);
                    }
                }
                return Err(e);
            }
            if let Some(m) = differs(j, p) {
                return Err(m);
            }
        }
        Ok(())
    }

    /// Whether this broadcast of `len` bytes goes eagerly ([`bcast_eager`](Self::bcast_eager)):
    /// a rank's previous call on this communicator was this same broadcast (so every
    /// member that is still in step made it too, and decides alike), the data is
    /// small, and it goes through the area's ring of small broadcasts or the run-ahead
    /// allowed between checks fits every point-to-point ring, so that a root whose
    /// member failed reaches its next check instead of waiting on a full ring.
    pub(crate) fn eager(&self, len: usize) -> bool {
        self.n() > 1
            && len <= EAGER_BCAST_MAX
            && (self.on_ring(len)
                || (EAGER_HEAD + len + 64) * (2 * EAGER_CHECK_EVERY as usize + 2)
                    <= self.c.coll.seg.layout().ring_bytes)
            && self.area().last_sig.get() == Some((self.sig.pack(), self.count))
    }

    /// Whether an eager broadcast of `len` bytes goes through the area's ring of
    /// small broadcasts (which needs no room in the point-to-point rings).
    fn on_ring(&self, len: usize) -> bool {
        len <= shmcoll::CELL_DATA && self.area().bcast_cell(0).is_some()
    }

    /// A broadcast as messages: the root arrives, sends its signature, count and
    /// `buf` to every member through the point-to-point rings, in the communicator's
    /// eager context with the step as tag, and returns without waiting for anyone;
    /// every other member arrives and takes the message, checking the signature in it
    /// (if the message has not come yet, it first waits for the root's arrival and
    /// checks its signature there, so that a root that called something else is an
    /// error, not a hang). So the root of a loop of broadcasts runs ahead of the
    /// others, as Open MPI's does, and ranks that outnumber the CPUs are not all
    /// scheduled for every call. The root checks its members' signatures later
    /// (`check_run`): every `EAGER_CHECK_EVERY` calls, at a step that many calls back,
    /// and before its signature changes.
    ///
    /// Data of at most `CELL_DATA` bytes on a communicator whose area has a ring of
    /// small broadcasts goes through that ring instead (`ring_root`, `ring_member`):
    /// the root writes it once for all, where it would write a message per member.
    pub(crate) fn bcast_eager(&mut self, root: usize, buf: &mut [u8]) -> Result<()> {
        if self.on_ring(buf.len()) {
            return if self.me() == root {
                self.ring_root(buf)
            } else {
                self.ring_member(root, buf)
            };
        }
        let mine = (self.sig.pack(), self.count);
        if self.me() == root {
            return self.eager_root(root, mine, buf);
        }
        let total = EAGER_HEAD + buf.len();
        with_message(total, |msg| {
            let got = self.eager_member(root, msg)?;
            if got != total {
                return Err(Error::Corrupted(format!(
                    "{}: the root's eager broadcast carried {got} bytes where {total} were \
                     expected",
                    self.name
                )));
            }
            buf.copy_from_slice(&msg[EAGER_HEAD..]);
            Ok(())
        })
    }

    /// [`bcast_eager`](Self::bcast_eager) of an object's archive or of raw bytes
    /// (`bytes` at the root), appended to `out` elsewhere: data of at most
    /// `EAGER_BCAST_MAX` bytes travels in the message; the message of larger data
    /// carries only its length, and the data follows through the root's data slot, from
    /// which the others copy it (the root still waits for nobody; the slot's reuse
    /// waits for its readers). On a communicator whose area has a ring of small
    /// broadcasts, the step's cell holds data of at most `CELL_DATA` bytes, and no
    /// message is sent; for larger data it says so, and the message follows as above.
    pub(crate) fn bcast_eager_obj(
        &mut self,
        root: usize,
        bytes: &[u8],
        out: &mut impl ByteSink,
    ) -> Result<()> {
        let on_ring = self.area().bcast_cell(0).is_some();
        if self.me() == root {
            let len = bytes.len();
            let t = self.next;
            self.run_step(t)?;
            if on_ring {
                self.ring_room(t)?;
                let cell = self.area().bcast_cell(t).expect("an area with a ring");
                if len <= shmcoll::CELL_DATA {
                    cell.write(t, self.c.ctx, bytes);
                    self.publish();
                    self.wake_members();
                    #[cfg(debug_assertions)]
                    self.checked.set(self.n() - 1);
                    return Ok(());
                }
                cell.write_elsewhere(t, self.c.ctx);
            }
            let inline = len <= EAGER_BCAST_MAX;
            self.send_eager(
                root,
                (self.sig.pack(), len as u64),
                if inline { bytes } else { &[] },
            )?;
            if !inline {
                self.exchange(bytes, len, 1, &|_| None, &mut |_, _, _| {})?;
            }
            return Ok(());
        }
        let mut msg = [0u8; EAGER_HEAD + EAGER_BCAST_MAX];
        let got = if on_ring {
            let t = self.next;
            self.publish();
            doorbell::notify(&self.c.coll.seg.ctrl(self.world(root)).bell);
            self.wait(root, t)?;
            let mut small = [0u8; shmcoll::CELL_DATA];
            let cell = self.area().bcast_cell(t).expect("an area with a ring");
            match cell.read_any(t, self.c.ctx, &mut small) {
                Some(Some(len)) => {
                    out.put(&small[..len]);
                    #[cfg(debug_assertions)]
                    self.checked.set(self.n() - 1);
                    return Ok(());
                }
                Some(None) => self.take_eager_message(root, t, &mut msg)?,
                None => return Err(self.not_in_ring(t)),
            }
        } else {
            self.eager_member(root, &mut msg)?
        };
        let len = u64::from_le_bytes(msg[8..16].try_into().expect("8 bytes")) as usize;
        if len <= EAGER_BCAST_MAX {
            if got != EAGER_HEAD + len {
                return Err(Error::Corrupted(format!(
                    "{}: the root's eager broadcast carried {got} bytes for an archive of {len}",
                    self.name
                )));
            }
            out.put(&msg[EAGER_HEAD..got]);
            return Ok(());
        }
        self.exchange(
            &[],
            len,
            1,
            &|j| (j == root).then_some((0, len)),
            &mut |_, _, b| out.put(b),
        )
    }

    /// The root's step of an eager broadcast: the run's bookkeeping and check, its
    /// arrival, and the message (`head`, the signature and a count, then `data`) to
    /// every member.
    fn eager_root(&mut self, root: usize, head: (u64, u64), data: &[u8]) -> Result<()> {
        self.run_step(self.next)?;
        self.send_eager(root, head, data)
    }

    /// The root's arrival at the step of an eager broadcast, and the message (`head`,
    /// then `data`) to every member.
    fn send_eager(&mut self, root: usize, head: (u64, u64), data: &[u8]) -> Result<()> {
        let t = self.next;
        // Every member is sent a message, whose doorbell wakes it after this store.
        self.publish();
        with_message(EAGER_HEAD + data.len(), |msg| -> Result<()> {
            msg[..8].copy_from_slice(&head.0.to_le_bytes());
            msg[8..16].copy_from_slice(&head.1.to_le_bytes());
            msg[EAGER_HEAD..].copy_from_slice(data);
            let env = Envelope {
                ctx: self.c.ctx | EAGER_CTX,
                src: self.c.coll.me,
                tag: (t & 0x7FFF_FFFF) as i32,
                len: msg.len(),
                type_id: 0,
            };
            let mut eng = self.engine()?;
            for j in (0..self.n()).filter(|&j| j != root) {
                let d = self.world(j);
                eng.send(d, env, msg, || self.desc(Some(d)))?;
            }
            Ok(())
        })?;
        // The root checks the others later.
        #[cfg(debug_assertions)]
        self.checked.set(self.n() - 1);
        Ok(())
    }

    /// The root's bookkeeping of its run of eager broadcasts at step `t`: the run
    /// extended (or begun), and every `EAGER_CHECK_EVERY` calls the members'
    /// signatures checked that many calls back (`check_run`).
    fn run_step(&self, t: u64) -> Result<()> {
        let mine = (self.sig.pack(), self.count);
        let run = match self.area().eager.get() {
            Some(mut run) => {
                if t - run.mark >= EAGER_CHECK_EVERY {
                    self.check_run(run, run.mark, mine)?;
                    run.mark = t;
                }
                run.last = t;
                run
            }
            None => EagerRun {
                first: t,
                mark: t,
                last: t,
            },
        };
        self.area().eager.set(Some(run));
        Ok(())
    }

    /// The root's step of a small eager broadcast: the run's bookkeeping, `data` in
    /// the step's cell of the area's ring once every member has read what that cell
    /// held before (`ring_room`), the arrival that publishes it, and a wake-up for the
    /// members that sleep.
    fn ring_root(&mut self, data: &[u8]) -> Result<()> {
        let t = self.next;
        self.run_step(t)?;
        self.ring_room(t)?;
        let cell = self.area().bcast_cell(t).expect("an area with a ring");
        cell.write(t, self.c.ctx, data);
        self.publish();
        self.wake_members();
        // The root checks the others later (`check_run`).
        #[cfg(debug_assertions)]
        self.checked.set(self.n() - 1);
        Ok(())
    }

    /// Waits, as the root, until every other member has finished reading the cell of
    /// step `t` held before: step `t - BCAST_CELLS`. What the members were last seen to
    /// have read is kept (`Area::ring_read`), so that a root ahead of them by less than
    /// the ring looks at no member's line.
    fn ring_room(&self, t: u64) -> Result<()> {
        let Some(s) = t.checked_sub(BCAST_CELLS as u64) else {
            return Ok(());
        };
        let area = self.area();
        if area.ring_read.get() >= s {
            return Ok(());
        }
        let mut least = u64::MAX;
        for j in (0..self.n()).filter(|&j| j != self.me()) {
            let m = area.member(j);
            // SYNC POINT arrive / SYNC POINT done (Acquire): a member that arrived
            // after a step, or said it is done with it, has read that step's cell. A
            // failed member's `arrive` (FAILED set) and `done` (MAX) are above every
            // step: it reads no more.
            let read = || {
                let a = m.line.arrive.load(Ordering::Acquire);
                m.done.done.load(Ordering::Acquire).max(a.saturating_sub(1))
            };
            let mut v = read();
            if v < s {
                self.block(Some(self.world(j)), &self.c.group, &|| read() >= s)?;
                v = read();
            }
            least = least.min(v);
        }
        area.ring_read.set(least);
        Ok(())
    }

    /// A member's step of a small eager broadcast: its arrival, the root's arrival
    /// at the step (and, there, its signature: `wait`), and the step's cell of the
    /// area's ring into `buf`.
    fn ring_member(&mut self, root: usize, buf: &mut [u8]) -> Result<()> {
        let t = self.next;
        // Only the root waits for this arrival (`check_run`, `ring_room`): see
        // `eager_member`.
        self.publish();
        doorbell::notify(&self.c.coll.seg.ctrl(self.world(root)).bell);
        self.wait(root, t)?;
        let cell = self.area().bcast_cell(t).expect("an area with a ring");
        if !cell.read(t, self.c.ctx, buf) {
            return Err(self.not_in_ring(t));
        }
        // The others checked the root, the one member whose call they depend on.
        #[cfg(debug_assertions)]
        self.checked.set(self.n() - 1);
        Ok(())
    }

    /// The error of a member that found step `t`'s cell holding something else. The
    /// root arrived at the step with this very call (`wait` checked its signature), so
    /// it wrote the cell first: only a corrupted segment gets here.
    #[cold]
    fn not_in_ring(&self, t: u64) -> Error {
        Error::Corrupted(format!(
            "{}: the root's broadcast of step {t} is not in its ring (context {})",
            self.name, self.c.ctx
        ))
    }

    /// A member's step of an eager broadcast: its arrival, and the root's message into
    /// `msg`, whose signature it checks. Returns the message's length.
    fn eager_member(&mut self, root: usize, msg: &mut [u8]) -> Result<usize> {
        let t = self.next;
        // Only the root waits for this arrival (`check_run`) in a program whose
        // calls match; a mismatched member waiting for it wakes within a sleep's
        // bounded slice instead of being woken, which a member of a run of
        // broadcasts would be woken for on every call.
        self.publish();
        doorbell::notify(&self.c.coll.seg.ctrl(self.world(root)).bell);
        self.take_eager_message(root, t, msg)
    }

    /// The root's message of step `t` of an eager broadcast into `msg`, once this
    /// member has arrived there; its signature checked. Returns the message's length.
    fn take_eager_message(&mut self, root: usize, t: u64, msg: &mut [u8]) -> Result<usize> {
        let d = self.world(root);
        let m = Matcher {
            ctx: self.c.ctx | EAGER_CTX,
            src: Some(d),
            tag: Some((t & 0x7FFF_FFFF) as i32),
        };
        let want = Want::Bytes {
            cap: msg.len(),
            elem: 1,
            elem_type: "bytes",
        };
        // The message, if here, says what the root called. Else wait for the root
        // (and check its signature there) before receiving: waiting in the receive
        // alone would hang if the root called something else.
        let fast = self.engine()?.try_recv_whole(&m, &want, msg);
        let got = match fast {
            Some(env) => env.len,
            None => {
                self.wait(root, t)?;
                self.engine()?
                    .recv_into(&m, &want, msg, || self.desc(Some(d)), |env| env.len)?
            }
        };
        if got < EAGER_HEAD {
            return Err(Error::Corrupted(format!(
                "{}: the root's eager broadcast carried {got} bytes, less than its header",
                self.name
            )));
        }
        let word = |i: usize| u64::from_le_bytes(msg[i..i + 8].try_into().expect("8 bytes"));
        let (sig, count) = (word(0), word(8));
        let theirs = Sig::unpack(sig);
        if !matches((self.sig, self.count), theirs, count) {
            return Err(self.mismatch((self.sig, self.count), false, root, theirs, sig, count));
        }
        // The others checked the root, the one member whose call they depend on.
        #[cfg(debug_assertions)]
        self.checked.set(self.n() - 1);
        Ok(got)
    }

    /// This rank's engine, for a wait or a message; an error when it is borrowed
    /// already (a collective started from inside a reduction op).
    fn engine(&self) -> Result<std::cell::RefMut<'c, Engine>> {
        let c: &'c CommInner = self.c;
        c.eng.try_borrow_mut().map_err(|_| {
            Error::Usage(format!(
                "{}: called while this rank's engine is busy (from inside a reduction op?)",
                self.name
            ))
        })
    }

    /// What a wait in this call on world rank `peer` is, for errors and the launcher's
    /// reports.
    fn desc(&self, peer: Option<usize>) -> WaitDesc<'c> {
        let c: &'c CommInner = self.c;
        WaitDesc {
            op: WaitOp::Collective,
            call: self.sig.kind,
            peer,
            tag: -1,
            ctx: c.ctx,
            group: &c.group,
        }
    }

    /// Blocks until `ready`, draining the rings and watching `peer` (a world rank).
    fn block(&self, peer: Option<usize>, group: &Group, ready: &dyn Fn() -> bool) -> Result<()> {
        let mut eng = self.engine()?;
        let desc = WaitDesc {
            op: WaitOp::Collective,
            call: self.sig.kind,
            peer,
            tag: -1,
            ctx: self.c.ctx,
            group,
        };
        let mut b = eng.collective_backoff();
        let r = loop {
            if let Err(e) = eng.progress(None) {
                break Err(e);
            }
            if ready() {
                break Ok(());
            }
            if let Err(e) = eng.idle_until(&mut b, &desc, ready) {
                break Err(e);
            }
            // What came while this rank was off the CPU is left in the rings: a pass
            // now would move a root's run-ahead of eager broadcasts into the
            // unexpected queue, where each costs an allocation and a search.
            if ready() {
                break Ok(());
            }
        };
        eng.end_wait();
        r
    }

    /// Waits until every member of `area` but this rank has finished reading what was
    /// published at step `s`.
    fn wait_readers(&self, area: &Area, s: u64) -> Result<()> {
        for j in 0..area.group.size() {
            if j == area.me || area.seen[j].get() > s {
                continue;
            }
            let m = area.member(j);
            // SYNC POINT arrive / SYNC POINT done (Acquire).
            let ok = || {
                m.line.arrive.load(Ordering::Acquire) > s
                    || m.done.done.load(Ordering::Acquire) >= s
            };
            if !ok() {
                self.block(Some(area.group.ranks[j]), &area.group, &ok)?;
            }
        }
        Ok(())
    }

    /// Writes `bytes` (at most `INLINE_BYTES`) as this rank's inline data of the next
    /// step.
    fn put_inline(&mut self, bytes: &[u8]) -> Result<()> {
        let t = self.next;
        let p = (t & 1) as usize;
        let last = self.area().inline_last[p].get();
        if last != 0 {
            self.wait_readers(self.area(), last)?;
        }
        shmcoll::write_inline(&self.line(self.me()).inline[p], bytes);
        self.area().inline_last[p].set(t);
        Ok(())
    }

    /// Publishes `words` (addresses, a length, a status) as this rank's inline data of
    /// the next step and arrives there; returns the step, at which each member's words
    /// are its [`get_inline`](Self::get_inline).
    fn publish_words(&mut self, words: [u64; INLINE_WORDS]) -> Result<u64> {
        // Little-endian bytes, which `put_inline` stores as these words again.
        let mut b = [0u8; INLINE_BYTES];
        for (c, w) in b.chunks_mut(8).zip(words) {
            c.copy_from_slice(&w.to_le_bytes());
        }
        self.put_inline(&b)?;
        Ok(self.arrive())
    }

    /// Reads member `j`'s inline data of step `t`.
    fn get_inline(&self, j: usize, t: u64) -> [u64; INLINE_WORDS] {
        let mut buf = [0u64; INLINE_WORDS];
        shmcoll::read_inline(&self.line(j).inline[(t & 1) as usize], &mut buf);
        buf
    }

    /// Claims the half of this rank's data slot for the next step (half `t % 2`),
    /// waiting until the readers of its previous contents are done. Returns the half.
    fn take_half(&mut self) -> Result<usize> {
        let t = self.next;
        let h = (t & 1) as usize;
        let prev = self.c.coll.halves.borrow_mut()[h].take();
        if let Some(u) = prev {
            if let Err(e) = self.wait_readers(&u.area, u.step) {
                self.c.coll.halves.borrow_mut()[h] = Some(u);
                return Err(e);
            }
        }
        self.c.coll.halves.borrow_mut()[h] = Some(HalfUse {
            area: self.c.area.clone(),
            step: t,
        });
        Ok(h)
    }

    fn write_half(&self, h: usize, off: usize, bytes: &[u8]) {
        self.shm.slot_write(self.c.coll.me, h, off, bytes);
    }

    /// `write_half` for large data the others read once (non-temporal stores, for
    /// calls moving at least `STREAM_MIN` bytes; smaller ones stay in cache).
    fn stream_half(&self, h: usize, off: usize, bytes: &[u8], total: usize) {
        if total >= STREAM_MIN && stream() {
            self.shm.slot_write_stream(self.c.coll.me, h, off, bytes);
        } else {
            self.shm.slot_write(self.c.coll.me, h, off, bytes);
        }
    }

    fn read_half<R>(
        &self,
        j: usize,
        h: usize,
        off: usize,
        len: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> R {
        self.shm.slot_read(self.world(j), h, off, len, f)
    }

    /// Ends the call successfully.
    pub(crate) fn finish(mut self) {
        #[cfg(debug_assertions)]
        assert!(
            self.checked.get() + 1 >= self.n(),
            "{}: finished without checking every member's signature",
            self.name
        );
        self.end(false);
    }

    #[inline]
    fn end(&mut self, failed: bool) {
        if self.finished {
            return;
        }
        self.finished = true;
        if failed {
            self.publish_failure();
        } else if self.next == self.first {
            // Every call makes at least one step, so that ranks stay in lockstep.
            self.arrive();
        }
        let done = if failed { u64::MAX } else { self.next - 1 };
        // SYNC POINT done (Release): this rank's reads of the call are over.
        self.area()
            .member(self.me())
            .done
            .done
            .store(done, Ordering::Release);
        self.c.step.set(self.next);
        if failed {
            self.c.broken.set(true);
        }
        crate::trace::coll_end(failed);
    }

    /// Marks this rank's member block failed (`FAILED`), so that the members waiting
    /// for its next step fail instead (`wait`).
    #[cold]
    #[inline(never)]
    fn publish_failure(&self) {
        let l = self.line(self.me());
        // SYNC POINT arrive (Release).
        l.arrive.store(FAILED | (self.next - 1), Ordering::Release);
        self.wake_members();
    }

    /// A barrier: one step, every rank waits for every other.
    pub(crate) fn sync_all(&mut self) -> Result<()> {
        let t = self.arrive();
        for j in 0..self.n() {
            self.wait(j, t)?;
        }
        Ok(())
    }

    /// Moves data in rounds: every rank publishes `mine`; `max_len` is the longest
    /// `mine` of any rank (the same value on every rank); rounds split data at multiples
    /// of `unit` (the element size); `need(j)` is the byte range of
    /// rank j's data this rank reads (`None`: nothing, and no wait on j). `sink(j, off,
    /// bytes)` gets the pieces, in rank order within each round.
    pub(crate) fn exchange(
        &mut self,
        mine: &[u8],
        max_len: usize,
        unit: usize,
        need: &dyn Fn(usize) -> Option<(usize, usize)>,
        sink: &mut dyn FnMut(usize, usize, &[u8]),
    ) -> Result<()> {
        self.exchange_parts([mine, &[]], max_len, unit, need, sink)
    }

    /// [`exchange`](Self::exchange) of data published as two pieces, `mine[0]` then
    /// `mine[1]` (offsets run on through both), so that a rank can leave out of the slot
    /// a block that only it reads (its own block of an alltoall or a scatter).
    pub(crate) fn exchange_parts(
        &mut self,
        mine: [&[u8]; 2],
        max_len: usize,
        unit: usize,
        need: &dyn Fn(usize) -> Option<(usize, usize)>,
        sink: &mut dyn FnMut(usize, usize, &[u8]),
    ) -> Result<()> {
        let len = mine[0].len() + mine[1].len();
        debug_assert!(len <= max_len);
        let inline = max_len <= INLINE_BYTES;
        let chunk = if inline {
            INLINE_BYTES
        } else {
            let h = self.half_bytes();
            h - h % unit.max(1)
        };
        let rounds = max_len.div_ceil(chunk).max(1);
        let n = self.n();
        let me = self.me();
        for i in 0..rounds {
            let off = i * chunk;
            let lo = off.min(len);
            let hi = (off + chunk).min(len);
            let t = self.next;
            if hi > lo {
                if inline {
                    let mut b = [0u8; INLINE_BYTES];
                    pieces(mine, lo, hi, |o, p| {
                        b[o - lo..o - lo + p.len()].copy_from_slice(p)
                    });
                    self.put_inline(&b[..hi - lo])?;
                } else {
                    let h = self.take_half()?;
                    pieces(mine, lo, hi, |o, p| self.write_half(h, o - lo, p));
                }
            }
            self.arrive();
            // Whether this round skipped a member (then, at the first step, unchecked).
            let mut skipped = false;
            for j in 0..n {
                let Some((s, e)) = need(j) else {
                    skipped |= j != me;
                    continue;
                };
                let ps = s.max(off);
                let pe = e.min(off + chunk);
                if j == me {
                    if pe > ps {
                        pieces(mine, ps, pe, |o, p| sink(j, o, p));
                    }
                    continue;
                }
                if pe <= ps && i > 0 {
                    continue;
                }
                self.wait(j, t)?;
                if pe <= ps {
                    continue;
                }
                if inline {
                    let buf = self.get_inline(j, t);
                    let b: &[u8] = bytemuck::cast_slice(&buf);
                    sink(j, ps, &b[ps - off..pe - off]);
                } else {
                    self.read_half(j, (t & 1) as usize, ps - off, pe - ps, |b| sink(j, ps, b));
                }
            }
            if skipped && t == self.first {
                self.check_all()?;
            }
        }
        Ok(())
    }

    /// Whether this call may read its members' buffers directly (`sys::cma`; the
    /// launcher decided it for the whole job, so every member decides alike) for a
    /// call whose blocks are `block` bytes: from `CMA_MIN` up, where one system call's
    /// cost is small beside a copy saved.
    pub(crate) fn direct(&self, block: usize) -> bool {
        block >= CMA_MIN && self.c.coll.seg.single_copy()
    }

    /// Whether an allreduce whose parts are `part` bytes takes the direct path
    /// ([`allreduce_direct`](Self::allreduce_direct)): from `CMA_MIN`, as
    /// [`direct`](Self::direct), at two ranks and where ranks share CPUs (measured on 2
    /// vCPUs); from `DIRECT_REDUCE_MIN` when more ranks each have a core, where every
    /// rank pinning every other's pages costs more than the slots' second copy
    /// (measured on 16 cores).
    pub(crate) fn direct_reduce(&self, part: usize) -> bool {
        let seg = &self.c.coll.seg;
        let shared = self.n() == 2 || seg.oversubscribed();
        part >= if shared { CMA_MIN } else { DIRECT_REDUCE_MIN } && seg.single_copy()
    }

    /// The contributions up to which a reduction's every rank reads every
    /// contribution whatever the rank count (`slices::small_reduce`): 4 KiB where
    /// ranks share CPUs (one step, one switch), none when each has a core, where the
    /// reduce-scatter's two steps win from 2 KiB at 16 ranks.
    pub(crate) fn read_all_max(&self) -> usize {
        if self.c.coll.seg.oversubscribed() {
            4096
        } else {
            0
        }
    }

    /// The single-copy exchange: every rank publishes where its data is (`mine`, an
    /// address in its own memory that no one dereferences here, and a length), copies
    /// bytes `need(j)` of each member j's data straight from j's memory into `dst[j]`
    /// (`process_vm_readv`), and returns only once every member has done its reads, so
    /// that no buffer changes while another rank reads it. Two steps.
    pub(crate) fn exchange_direct(
        &mut self,
        mine: (usize, usize),
        need: &dyn Fn(usize) -> Option<(usize, usize)>,
        dst: &mut [&mut [u8]],
    ) -> Result<()> {
        let t = self.publish_words([mine.0 as u64, mine.1 as u64])?;
        let (n, me) = (self.n(), self.me());
        debug_assert_eq!(dst.len(), n);
        for (j, out) in dst.iter_mut().enumerate() {
            if j == me {
                continue;
            }
            self.wait(j, t)?;
            let Some((s, e)) = need(j) else {
                continue;
            };
            let [addr, len] = self.get_inline(j, t);
            if e > len as usize || out.len() != e - s {
                return Err(Error::Corrupted(format!(
                    "{}: rank {j} published {len} bytes where {e} were expected",
                    self.name
                )));
            }
            self.read_peer(j, addr as usize + s, out)?;
        }
        // Step 2: this rank's reads are done; the others' must be before `mine` may
        // change.
        let t2 = self.arrive();
        for j in 0..n {
            if j != me {
                self.wait(j, t2)?;
            }
        }
        Ok(())
    }

    /// A broadcast at 2 ranks in which both ranks copy: the other rank reads the first
    /// half of the root's buffer into its own (`process_vm_readv`) while the root writes
    /// the second half into the other's (`process_vm_writev`). Two steps, like
    /// [`exchange_direct`](Self::exchange_direct); a rank whose copy fails still waits
    /// for its peer's second arrival, so that no rank returns while the other may still
    /// write into its buffer, and the root's failure fails the other rank too.
    pub(crate) fn bcast_split(&mut self, root: usize, data: &mut [u8]) -> Result<()> {
        debug_assert_eq!(self.n(), 2);
        let (me, len) = (self.me(), data.len());
        let peer = 1 - me;
        let t = self.publish_words([data.as_ptr() as u64, len as u64])?;
        self.wait(peer, t)?;
        let [addr, theirs] = self.get_inline(peer, t).map(|w| w as usize);
        // Cut on a cache line of the other rank's buffer, which both ranks write into,
        // so that no line of it is written from both sides.
        let dst = if me == root {
            addr
        } else {
            data.as_ptr() as usize
        };
        let half = ((dst + len / 2) & !63) - dst;
        let copied = if theirs != len {
            Err(Error::Corrupted(format!(
                "{}: rank {peer} published {theirs} bytes where {len} were expected",
                self.name
            )))
        } else if me == root {
            self.write_peer(peer, addr + half, &data[half..])
        } else {
            self.read_peer(peer, addr, &mut data[..half])
        };
        // Step 2 says whether the root's half reached the other rank, which then fails
        // too rather than return half a broadcast.
        let t2 = self.publish_words([u64::from(copied.is_err()), 0])?;
        self.wait(peer, t2)?;
        if me != root && copied.is_ok() && self.get_inline(peer, t2)[0] != 0 {
            return Err(Error::Os {
                what: format!(
                    "{}: rank {peer}, the root, could not write its half of the broadcast \
                     into this rank's buffer (process_vm_writev; its own error says why); \
                     SHMPI_CMA=0 copies through the shared segment instead",
                    self.name
                ),
                source: std::io::Error::other("the root's copy failed"),
            });
        }
        copied
    }

    /// Copies `src` into member `j`'s memory at `addr` (`process_vm_writev`), once this
    /// rank has waited for `j`'s arrival at a step where `j` published `addr` and lent
    /// that memory until its next arrival.
    fn write_peer(&self, j: usize, addr: usize, src: &[u8]) -> Result<()> {
        let pid = self.peer_pid(j);
        crate::sys::cma::write(pid, addr, src).map_err(|e| self.cma_error(j, pid, true, e))
    }

    /// Copies `out.len()` bytes at `addr` in member `j`'s memory into `out`
    /// (`process_vm_readv`), once this rank has waited for `j`'s arrival at a step where
    /// `j` published `addr`.
    fn read_peer(&self, j: usize, addr: usize, out: &mut [u8]) -> Result<()> {
        let pid = self.peer_pid(j);
        crate::sys::cma::read(pid, addr, out).map_err(|e| self.cma_error(j, pid, false, e))
    }

    /// The process of member `j`.
    fn peer_pid(&self, j: usize) -> i32 {
        // Relaxed: the rank stored its pid when it claimed its place, before any
        // arrival, and the caller's `wait` acquired its arrival.
        self.c
            .coll
            .seg
            .ctrl(self.world(j))
            .life
            .pid
            .load(Ordering::Relaxed)
    }

    /// The error of a direct copy to or from member `j`'s memory.
    fn cma_error(&self, j: usize, pid: i32, write: bool, source: std::io::Error) -> Error {
        let (verb, call) = if write {
            ("writing", "process_vm_writev")
        } else {
            ("reading", "process_vm_readv")
        };
        Error::Os {
            what: format!(
                "{}: {verb} rank {j}'s buffer directly (process {pid}, {call}); SHMPI_CMA=0 \
                 copies through the shared segment instead",
                self.name
            ),
            source,
        }
    }

    /// A large allreduce, one copy: each rank reduces its part of the elements (part
    /// r of n), reading every other rank's contribution to it straight from that
    /// rank's memory in pieces that stay in cache, then reads every other part straight
    /// from its owner's result. Three steps (addresses; parts reduced and contributions
    /// read; results read), against the reduce-scatter's two per slot-sized chunk and
    /// its two copies. Combines in rank order. `input` `None`: in place (`buf` holds
    /// this rank's contribution).
    pub(crate) fn allreduce_direct<T: Pod>(
        &mut self,
        input: Option<&[T]>,
        buf: &mut [T],
        apply: &mut dyn FnMut(&mut [T], &[T]),
    ) -> Result<()> {
        let sz = std::mem::size_of::<T>();
        let (n, me, count) = (self.n(), self.me(), buf.len());
        let part = |r: usize| r * count / n..(r + 1) * count / n;
        // Step 1: where this rank's contribution and result are (addresses in its
        // own memory, which only `process_vm_readv` reads).
        let src = input.map_or(buf.as_ptr(), <[T]>::as_ptr) as u64;
        let t1 = self.publish_words([src, buf.as_ptr() as u64])?;
        let mut addrs = Vec::with_capacity(n);
        for j in 0..n {
            self.wait(j, t1)?;
            let [a, b] = self.get_inline(j, t1);
            addrs.push((a as usize, b as usize));
        }
        // This rank's part, piece by piece, in rank order: rank 0's contribution lands
        // in the result, the others' are folded in (this rank's own, in place, kept
        // aside first, since rank 0's overwrites it).
        let mine = part(me);
        let piece = (DIRECT_PIECE / sz).max(1).min(mine.len().max(1));
        let mut scratch: Vec<T> = vec![T::zeroed(); piece];
        let mut own: Vec<T> = Vec::new();
        let mut at = mine.start;
        while at < mine.end {
            let r = at..(at + piece).min(mine.end);
            let k = r.len();
            if input.is_none() && me > 0 {
                own.clear();
                own.extend_from_slice(&buf[r.clone()]);
            }
            for (j, &(their_src, _)) in addrs.iter().enumerate() {
                let theirs = their_src + r.start * sz;
                let x: &[T] = if j == me {
                    match input {
                        Some(s) => &s[r.clone()],
                        None if me > 0 => &own,
                        None => continue, // rank 0 in place: already in the result
                    }
                } else if j == 0 {
                    self.read_peer(0, theirs, bytemuck::cast_slice_mut(&mut buf[r.clone()]))?;
                    continue;
                } else {
                    self.read_peer(j, theirs, bytemuck::cast_slice_mut(&mut scratch[..k]))?;
                    &scratch[..k]
                };
                if j == 0 {
                    buf[r.clone()].copy_from_slice(x);
                } else {
                    apply(&mut buf[r.clone()], x);
                }
            }
            at = r.end;
        }
        // Step 2: this part is reduced and the others' contributions read; once every
        // rank is here, every part is reduced and no one reads a contribution any more
        // (in place, the parts now overwritten).
        let t2 = self.arrive();
        for j in 0..n {
            self.wait(j, t2)?;
        }
        for (j, &(_, dst)) in addrs.iter().enumerate() {
            if j != me {
                let p = part(j);
                let out = bytemuck::cast_slice_mut(&mut buf[p.clone()]);
                self.read_peer(j, dst + p.start * sz, out)?;
            }
        }
        // Step 3: every rank has read this rank's part, so the caller may change it.
        let t3 = self.arrive();
        for j in 0..n {
            self.wait(j, t3)?;
        }
        Ok(())
    }

    /// A reduction of at most `INLINE_BYTES` in one step: every rank publishes `mine`
    /// in its polled line, and a rank given `out` (every rank for an allreduce, the
    /// root for a reduce) folds all contributions into it in rank order. What a
    /// one-round inline [`exchange`](Self::exchange) does, without its per-piece
    /// bookkeeping and dynamic calls, which are most of a small reduction's cost.
    pub(crate) fn reduce_inline<T: Pod>(
        &mut self,
        mine: &[u8],
        out: Option<&mut [T]>,
        apply: &dyn Fn(&mut [T], &[T]),
    ) -> Result<()> {
        debug_assert!(mine.len() <= INLINE_BYTES);
        let t = self.next;
        if !mine.is_empty() {
            self.put_inline(mine)?;
        }
        self.arrive();
        let Some(out) = out else {
            // A reduce's non-root reads nobody's contribution.
            return if t == self.first {
                self.check_all()
            } else {
                Ok(())
            };
        };
        for j in 0..self.n() {
            let words;
            let x: &[u8] = if j == self.me() {
                mine
            } else {
                self.wait(j, t)?;
                words = self.get_inline(j, t);
                &bytemuck::cast_slice::<u64, u8>(&words)[..mine.len()]
            };
            typed::<T, _>(x, |x| {
                if j == 0 {
                    out.copy_from_slice(x)
                } else {
                    apply(out, x)
                }
            });
        }
        Ok(())
    }

    /// Every rank publishes `mine`, bytes of a length only it knows; this rank
    /// collects the bytes of the members `want` selects, by rank. One step when every
    /// member's bytes fit a half of its data slot: the length goes inline and the bytes
    /// into the slot at the same step. Otherwise that step gave every rank every length,
    /// and the bytes follow through `exchange`.
    pub(crate) fn collect<S: ByteSink + Default>(
        &mut self,
        mine: &[u8],
        want: &dyn Fn(usize) -> bool,
    ) -> Result<Vec<S>> {
        const LATER: u64 = 1 << 63;
        let n = self.n();
        let me = self.me();
        let fits = mine.len() <= self.half_bytes();
        let t = self.next;
        if fits && !mine.is_empty() {
            let h = self.take_half()?;
            self.write_half(h, 0, mine);
        }
        let words = self.all_words(mine.len() as u64 | if fits { 0 } else { LATER })?;
        let mut out: Vec<S> = (0..n).map(|_| S::default()).collect();
        if words.iter().all(|w| w & LATER == 0) {
            for j in (0..n).filter(|&j| want(j)) {
                let len = words[j] as usize;
                if j == me {
                    out[j].put(mine);
                } else if len > 0 {
                    self.read_half(j, (t & 1) as usize, 0, len, |b| out[j].put(b));
                }
            }
            return Ok(out);
        }
        let lens: Vec<usize> = words.iter().map(|w| (w & !LATER) as usize).collect();
        let max = lens.iter().copied().max().unwrap_or(0);
        self.exchange(
            mine,
            max,
            1,
            &|j| want(j).then_some((0, lens[j])),
            &mut |j, _, b| out[j].put(b),
        )?;
        Ok(out)
    }

    /// Publishes `word` inline at the next step, arrives, and returns every rank's
    /// word of that step, in rank order (waiting for each).
    fn all_words(&mut self, word: u64) -> Result<Vec<u64>> {
        let me = self.me();
        let t = self.next;
        self.put_inline(&word.to_le_bytes())?;
        self.arrive();
        let mut words = vec![word; self.n()];
        for (j, w) in words.iter_mut().enumerate().filter(|&(j, _)| j != me) {
            self.wait(j, t)?;
            *w = self.get_inline(j, t)[0];
        }
        Ok(words)
    }

    /// The root `r` hands each rank its own bytes (`parts`, one per rank, at the root
    /// only; the others pass none) and this rank gets its part. One step when the
    /// root's table of offsets and all the parts fit a half of its data slot: the
    /// total goes inline, the table and the parts into the slot, and each member reads
    /// its two offsets and its bytes. Otherwise that step said so, and the parts
    /// follow (`deal_later`). In a run of identical scatters, `deal_eager` instead.
    pub(crate) fn deal<S: ByteSink + Default, P: AsRef<[u8]>>(
        &mut self,
        r: usize,
        parts: &[P],
    ) -> Result<S> {
        const LATER: u64 = 1 << 63;
        let n = self.n();
        let me = self.me();
        let tb = (n + 1) * 8;
        let t = self.next;
        let mut word = 0;
        if me == r {
            debug_assert_eq!(parts.len(), n);
            let table = offsets(parts);
            let total = table[n] as usize;
            let fits = tb + total <= self.half_bytes();
            // A rank alone reads nothing from its slot.
            if fits && n > 1 {
                let h = self.take_half()?;
                self.write_half(h, 0, bytemuck::cast_slice(&table));
                for (p, &off) in parts.iter().zip(&table) {
                    self.write_half(h, tb + off as usize, p.as_ref());
                }
            }
            word = total as u64 | if fits { 0 } else { LATER };
            self.put_inline(&word.to_le_bytes())?;
        }
        self.arrive();
        for j in (0..n).filter(|&j| j != me) {
            self.wait(j, t)?;
        }
        if me != r {
            word = self.get_inline(r, t)[0];
        }
        let mut out = S::default();
        if me == r {
            out.put(parts[r].as_ref());
        } else if word & LATER == 0 {
            let h = (t & 1) as usize;
            let (a, b) = self.read_half(r, h, me * 8, 16, |x| {
                let w: [u64; 2] = bytemuck::pod_read_unaligned(x);
                (w[0] as usize, w[1] as usize)
            });
            if b > a {
                self.read_half(r, h, tb + a, b - a, |x| out.put(x));
            }
        }
        if word & LATER != 0 {
            self.deal_later(r, parts, (word & !LATER) as usize, &mut out)?;
        }
        Ok(out)
    }

    /// The parts of a scatter too large for one step (`total` bytes in all): the
    /// root's table of offsets, then the bytes (a copy of them joined at the root,
    /// since `exchange` reads one buffer), each member's into `out`.
    fn deal_later<P: AsRef<[u8]>>(
        &mut self,
        r: usize,
        parts: &[P],
        total: usize,
        out: &mut impl ByteSink,
    ) -> Result<()> {
        let n = self.n();
        let me = self.me();
        let tb = (n + 1) * 8;
        let (table, joined) = if me == r {
            (offsets(parts), joined(parts))
        } else {
            (Vec::new(), Vec::new())
        };
        debug_assert!(me != r || joined.len() == total);
        let mut mine = [0u8; 16];
        self.exchange(
            bytemuck::cast_slice(&table),
            tb,
            8,
            &|j| (j == r && me != r).then_some((me * 8, me * 8 + 16)),
            &mut |_, off, b| mine[off - me * 8..off - me * 8 + b.len()].copy_from_slice(b),
        )?;
        let w: [u64; 2] = bytemuck::pod_read_unaligned(&mine);
        self.exchange(
            &joined,
            total,
            1,
            &|j| (j == r && me != r).then_some((w[0] as usize, w[1] as usize)),
            &mut |_, _, b| out.put(b),
        )
    }

    /// Every rank hands each rank its own bytes (`parts`, one per rank) and this rank
    /// gets the part each rank gave it, in rank order. One step when every rank's
    /// table of offsets and parts fit a half of its data slot: its total goes inline,
    /// its table and parts into the slot, and each rank reads its two offsets and its
    /// bytes from every other. Otherwise that step gave every rank every total, and the
    /// tables and then the bytes follow through `exchange`.
    pub(crate) fn swap<S: ByteSink + Default, P: AsRef<[u8]>>(
        &mut self,
        parts: &[P],
    ) -> Result<Vec<S>> {
        const LATER: u64 = 1 << 63;
        let n = self.n();
        let me = self.me();
        debug_assert_eq!(parts.len(), n);
        let tb = (n + 1) * 8;
        let t = self.next;
        let table = offsets(parts);
        let total = table[n] as usize;
        let fits = tb + total <= self.half_bytes();
        if fits && n > 1 {
            let h = self.take_half()?;
            self.write_half(h, 0, bytemuck::cast_slice(&table));
            for (j, (p, &off)) in parts.iter().zip(&table).enumerate() {
                // This rank's own part stays out of the slot: only it reads it.
                if j != me {
                    self.write_half(h, tb + off as usize, p.as_ref());
                }
            }
        }
        let words = self.all_words(total as u64 | if fits { 0 } else { LATER })?;
        let mut out: Vec<S> = (0..n).map(|_| S::default()).collect();
        out[me].put(parts[me].as_ref());
        if words.iter().all(|w| w & LATER == 0) {
            let h = (t & 1) as usize;
            for (j, o) in out.iter_mut().enumerate().filter(|&(j, _)| j != me) {
                let (a, b) = self.read_half(j, h, me * 8, 16, |x| {
                    let w: [u64; 2] = bytemuck::pod_read_unaligned(x);
                    (w[0] as usize, w[1] as usize)
                });
                if b > a {
                    self.read_half(j, h, tb + a, b - a, |x| o.put(x));
                }
            }
            return Ok(out);
        }
        // Too large for one step: every rank's two offsets for this rank, then the
        // bytes (joined, since `exchange` reads one buffer; this rank's own part out).
        let mut offs = vec![[0u8; 16]; n];
        self.exchange(
            bytemuck::cast_slice(&table),
            tb,
            8,
            &|j| (j != me).then_some((me * 8, me * 8 + 16)),
            &mut |j, off, b| offs[j][off - me * 8..off - me * 8 + b.len()].copy_from_slice(b),
        )?;
        let offs: Vec<[u64; 2]> = offs
            .iter()
            .map(|o| bytemuck::pod_read_unaligned(o))
            .collect();
        let joined = joined(parts);
        let max = words
            .iter()
            .map(|w| (w & !LATER) as usize)
            .max()
            .unwrap_or(0);
        self.exchange(
            &joined,
            max,
            1,
            &|j| (j != me).then_some((offs[j][0] as usize, offs[j][1] as usize)),
            &mut |j, _, b| out[j].put(b),
        )?;
        Ok(out)
    }

    /// Whether a scatter goes eagerly ([`deal_eager`](Self::deal_eager)): as for a
    /// broadcast ([`eager`](Self::eager)), the rank's previous call on this
    /// communicator was this same scatter, and the run-ahead allowed between checks
    /// fits every point-to-point ring with messages of the largest eager part.
    pub(crate) fn eager_deal(&self) -> bool {
        self.n() > 1
            && (EAGER_HEAD + EAGER_BCAST_MAX + 64) * (2 * EAGER_CHECK_EVERY as usize + 2)
                <= self.c.coll.seg.layout().ring_bytes
            && self.area().last_sig.get() == Some((self.sig.pack(), self.count))
    }

    /// [`deal`](Self::deal) in a run of identical scatters: the root sends each member
    /// a message of its own through the point-to-point rings (the call's signature and
    /// the part's length, then the part) and returns without waiting, as the root of
    /// a run of broadcasts does (`bcast_eager`; it checks the members later); each
    /// member takes its message. When a part is larger than `EAGER_BCAST_MAX`, every
    /// message carries the total instead, marked, and the parts follow as in `deal`.
    pub(crate) fn deal_eager<S: ByteSink + Default, P: AsRef<[u8]>>(
        &mut self,
        r: usize,
        parts: &[P],
    ) -> Result<S> {
        const LATER: u64 = 1 << 63;
        let mut out = S::default();
        let mut msg = [0u8; EAGER_HEAD + EAGER_BCAST_MAX];
        if self.me() != r {
            let got = self.eager_member(r, &mut msg)?;
            let word = u64::from_le_bytes(msg[8..16].try_into().expect("8 bytes"));
            if word & LATER != 0 {
                self.deal_later(r, &[] as &[P], (word & !LATER) as usize, &mut out)?;
            } else if got != EAGER_HEAD + word as usize {
                return Err(Error::Corrupted(format!(
                    "{}: the root's eager scatter carried {got} bytes for a part of {word}",
                    self.name
                )));
            } else {
                out.put(&msg[EAGER_HEAD..got]);
            }
            return Ok(out);
        }
        let t = self.next;
        self.run_step(t)?;
        let inline = parts.iter().all(|p| p.as_ref().len() <= EAGER_BCAST_MAX);
        let total: usize = parts.iter().map(|p| p.as_ref().len()).sum();
        // Every member is sent a message, whose doorbell wakes it after this store.
        self.publish();
        msg[..8].copy_from_slice(&self.sig.pack().to_le_bytes());
        {
            let mut eng = self.engine()?;
            for j in (0..self.n()).filter(|&j| j != r) {
                let part = if inline { parts[j].as_ref() } else { &[] };
                let word = if inline {
                    part.len() as u64
                } else {
                    total as u64 | LATER
                };
                msg[8..16].copy_from_slice(&word.to_le_bytes());
                msg[EAGER_HEAD..EAGER_HEAD + part.len()].copy_from_slice(part);
                let env = Envelope {
                    ctx: self.c.ctx | EAGER_CTX,
                    src: self.c.coll.me,
                    tag: (t & 0x7FFF_FFFF) as i32,
                    len: EAGER_HEAD + part.len(),
                    type_id: 0,
                };
                let d = self.world(j);
                eng.send(d, env, &msg[..env.len], || self.desc(Some(d)))?;
            }
        }
        // The root checks the others later (`check_run`).
        #[cfg(debug_assertions)]
        self.checked.set(self.n() - 1);
        out.put(parts[r].as_ref());
        if !inline {
            self.deal_later(r, parts, total, &mut out)?;
        }
        Ok(out)
    }

    /// Every rank's `u64` (one inline step): lengths before a variable-size exchange.
    pub(crate) fn allgather_u64(&mut self, v: u64) -> Result<Vec<u64>> {
        let mut out = vec![0u64; self.n()];
        self.exchange(&v.to_le_bytes(), 8, 8, &|_| Some((0, 8)), &mut |j, _, b| {
            out[j] = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        })?;
        Ok(out)
    }

    /// Large reduce/allreduce: per chunk, a shared-memory reduce-scatter then an
    /// allgather (`deliver`: every rank) or a gather to `root`. `input` is this rank's
    /// contribution (`None`: in place, `buf` holds it); `buf` receives the result where
    /// delivered. `apply(acc, x)` folds `x` into `acc` (in rank order).
    pub(crate) fn reduce_rs<T: Pod>(
        &mut self,
        input: Option<&[T]>,
        buf: &mut [T],
        count: usize,
        root: Option<usize>,
        apply: &mut dyn FnMut(&mut [T], &[T]),
    ) -> Result<()> {
        let sz = std::mem::size_of::<T>();
        let n = self.n();
        let me = self.me();
        let per = (self.half_bytes() / sz).max(1);
        let deliver = root.is_none_or(|r| r == me);
        let part = |p: usize, m: usize| (p * m / n, (p + 1) * m / n);
        // Scratch: the reduced part where it is not delivered, or (in place, rank > 0)
        // a copy of this rank's own part, which the fold would overwrite first.
        let mut acc: Vec<T> = Vec::with_capacity(per / n + 1);
        let mut own: Vec<T> = Vec::new();
        let nt_out = deliver && count * sz >= nt_out_bytes();
        let use_acc = !deliver || nt_out;
        let mut base = 0;
        while base < count {
            let m = per.min(count - base);
            let (ps, pe) = part(me, m);
            // Step 1: publish this chunk of my contribution, but for my own part,
            // which only I reduce (from my own memory).
            let t1 = self.next;
            let h1 = self.take_half()?;
            {
                let src = match input {
                    Some(s) => &s[base..base + m],
                    None => &buf[base..base + m],
                };
                self.stream_half(h1, 0, bytemuck::cast_slice(&src[..ps]), count * sz);
                self.stream_half(h1, pe * sz, bytemuck::cast_slice(&src[pe..]), count * sz);
                if input.is_none() && (me > 0 || use_acc) {
                    own.clear();
                    own.extend_from_slice(&src[ps..pe]);
                }
            }
            self.arrive();
            for j in 0..n {
                self.wait(j, t1)?;
            }
            // Reduce my part of the chunk across all contributions, in rank order,
            // into scratch or straight into the result.
            let target: &mut [T] = if use_acc {
                acc.clear();
                acc.resize(pe - ps, T::zeroed());
                &mut acc
            } else {
                &mut buf[base + ps..base + pe]
            };
            for j in 0..n {
                if j == me {
                    let x: &[T] = match input {
                        Some(s) => &s[base + ps..base + pe],
                        None if me > 0 || use_acc => &own,
                        None => continue, // rank 0 in place: already in `target`
                    };
                    if j == 0 {
                        target.copy_from_slice(x);
                    } else {
                        apply(target, x);
                    }
                    continue;
                }
                self.read_half(j, h1, ps * sz, (pe - ps) * sz, |b| {
                    typed::<T, _>(b, |x| {
                        if j == 0 {
                            target.copy_from_slice(x);
                        } else {
                            apply(target, x);
                        }
                    })
                });
            }
            // Step 2: publish my reduced part; gather the others'.
            let t2 = self.next;
            let h2 = self.take_half()?;
            self.stream_half(h2, ps * sz, bytemuck::cast_slice(target), count * sz);
            if nt_out {
                let dst: &mut [u8] = bytemuck::cast_slice_mut(&mut buf[base + ps..base + pe]);
                shmcoll::stream_copy(dst, bytemuck::cast_slice(&acc));
            }
            self.arrive();
            if deliver {
                for j in 0..n {
                    if j == me {
                        continue;
                    }
                    self.wait(j, t2)?;
                    let (qs, qe) = part(j, m);
                    let dst: &mut [u8] = bytemuck::cast_slice_mut(&mut buf[base + qs..base + qe]);
                    self.read_half(j, h2, qs * sz, (qe - qs) * sz, |b| {
                        if nt_out {
                            shmcoll::stream_copy(dst, b)
                        } else {
                            dst.copy_from_slice(b)
                        }
                    });
                }
            }
            base += m;
        }
        Ok(())
    }
}

impl Drop for Coll<'_> {
    fn drop(&mut self) {
        // Dropped without `finish`: the call failed part-way.
        self.end(true);
    }
}

/// Blocks from which bcast, allgather and alltoall read (a 2-rank bcast also writes)
/// their peers' buffers directly when the job allows it (`Coll::direct`; 4 KiB
/// measured slower, 16 KiB faster).
const CMA_MIN: usize = 16 << 10;

/// The parts from which an allreduce of more than two ranks, each on its own core,
/// reads its members directly (`Coll::direct_reduce`; measured on 16 cores, see
/// docs/performance.md).
const DIRECT_REDUCE_MIN: usize = 256 << 10;

/// The pieces in which [`Coll::allreduce_direct`] reads the peers' contributions: a
/// scratch this size stays in the core's cache between the read and the fold.
const DIRECT_PIECE: usize = 128 << 10;

/// Reductions of fewer bytes than this write their chunks with ordinary stores (the
/// peers read them from this core's cache).
const STREAM_MIN: usize = 512 << 10;

/// Whether large slot writes (the reduce-scatter's chunks) use non-temporal stores
/// (`SHMPI_COLL_STREAM=1`; off by default): readers on other cores then fetch them at
/// memory bandwidth instead of from the writer's cache. Off by default because ordinary
/// stores measured faster on the reference VM (docs/performance.md, "Decisions").
fn stream() -> bool {
    thread_local! {
        static ON: bool = crate::tuning::coll_stream();
    }
    ON.with(|v| *v)
}

/// Results of at least this many bytes are written to the user's buffer with
/// non-temporal stores (`SHMPI_COLL_NT_BYTES`; default: never, since measurements on
/// the reference VM did not show a clear gain and a program usually reads its result
/// next): streaming saves reading a buffer that is not in cache anyway.
fn nt_out_bytes() -> usize {
    thread_local! {
        static B: usize = crate::tuning::coll_nt_bytes();
    }
    B.with(|v| *v)
}

/// Calls `f` with `bytes` seen as `&[T]`, copying them first if they are not aligned
/// for `T`.
pub(crate) fn typed<T: Pod, R>(bytes: &[u8], f: impl FnOnce(&[T]) -> R) -> R {
    match bytemuck::try_cast_slice::<u8, T>(bytes) {
        Ok(s) => f(s),
        Err(_) => {
            let mut v = vec![T::zeroed(); bytes.len() / std::mem::size_of::<T>()];
            bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(bytes);
            f(&v)
        }
    }
}

/// Calls `f(off, bytes)` for the parts of bytes `lo..hi` of `parts[0]` followed by
/// `parts[1]`, `off` counting from the start of `parts[0]`.
fn pieces(parts: [&[u8]; 2], lo: usize, hi: usize, mut f: impl FnMut(usize, &[u8])) {
    let mut base = 0;
    for p in parts {
        let (s, e) = (lo.max(base), hi.min(base + p.len()));
        if e > s {
            f(s, &p[s - base..e - base]);
        }
        base += p.len();
    }
}
