//! The shared segment: its header, the per-rank control blocks and the per-pair rings.
//!
//! Where each part lies is `layout.rs`.
//!
//! Everything is `#[repr(C)]` and pointer-free; sizes and alignments are asserted at
//! compile time. Pages that are never touched cost nothing, so the rings between
//! ranks that never talk (and the unused diagonal i -> i) are free.
//!
//! # Memory ordering
//!
//! | word | written by | read by | ordering |
//! |---|---|---|---|
//! | plain header fields | launcher, before any rank exists | everyone | fork/exec orders them |
//! | `Header::abort` | first rank or launcher to abort (CAS) | every waiting rank | Release/Acquire: `SYNC POINT abort` |
//! | `RankCtrl::pid` | the rank, at attach (CAS from 0) | launcher, reports | Relaxed: claim only |
//! | `RankCtrl::state` | the rank (attached, finalized), launcher (exited) | peers | Release/Acquire: `SYNC POINT state`, publishes all earlier pushes |
//! | `RankCtrl::exit` | launcher, before `state = EXITED` | peers | ordered by `state` |
//! | doorbell words | see `doorbell.rs` | | |
//! | `RankCtrl::wait_*` | the rank | launcher's reports | Relaxed: diagnostics only |

use std::mem::{align_of, offset_of, size_of};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use crate::doorbell::{self, Bell};
use crate::error::{Error, Exit, Result};
use crate::layout::{CTRL_BYTES, HEADER_BYTES, Layout, Params};
use crate::ring::{Consumer, Producer, RingHead, RingMem};
use crate::sys::shm::Mapping;

/// The bytes "shmpiSEG" read as a little-endian word.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"shmpiSEG");
/// Bumped on every change to anything in this file, in `layout.rs` or in the ring's
/// record format.
pub(crate) const LAYOUT_VERSION: u32 = 11;

/// The segment header. Plain fields are written once by the launcher before any rank
/// starts and never change.
#[repr(C)]
pub(crate) struct Header {
    pub(crate) magic: u64,
    pub(crate) version: u32,
    pub(crate) nranks: u32,
    pub(crate) ring_bytes: u64,
    pub(crate) total_len: u64,
    /// CPUs the launcher could use (decides the waiting policy for oversubscription).
    pub(crate) ncpus: u32,
    pub(crate) launcher_pid: i32,
    /// 1 if the ranks may read each other's memory (`sys::cma`), decided by the
    /// launcher for the whole job.
    pub(crate) single_copy: u32,
    /// 0 while the job runs, else a packed [`AbortInfo`]. SYNC POINT abort.
    pub(crate) abort: CachePadded<AtomicU64>,
}

const _: () = assert!(size_of::<Header>() <= HEADER_BYTES);
const _: () = assert!(offset_of!(Header, abort) % 128 == 0);

// State 0: the rank has not attached yet.
/// The rank attached and is running.
pub(crate) const STATE_ATTACHED: u32 = 1;
/// The rank finished (dropped its Universe): it will not receive any more.
pub(crate) const STATE_FINALIZED: u32 = 2;
/// The rank's process is gone; `exit` says how.
pub(crate) const STATE_EXITED: u32 = 3;

/// Per-rank control block, three cache lines.
#[repr(C)]
pub(crate) struct RankCtrl {
    /// Lifecycle line.
    pub(crate) life: CachePadded<Life>,
    /// Doorbell line: futex word and the "I am asleep" flag (see `doorbell.rs`).
    pub(crate) bell: CachePadded<Bell>,
    /// What the rank is blocked on, for the launcher's reports.
    pub(crate) wait: CachePadded<WaitInfo>,
}

#[repr(C)]
pub(crate) struct Life {
    pub(crate) pid: AtomicI32,
    /// One of the `STATE_*` constants. SYNC POINT state.
    pub(crate) state: AtomicU32,
    /// Packed [`Exit`], valid once `state == STATE_EXITED`.
    pub(crate) exit: AtomicU64,
    /// The split copy of an offered message this rank receives (`progress/offer.rs`).
    pub(crate) split: Split,
    /// Set by a receiver that proposed a split of one of this rank's offers, so that
    /// this rank looks at its receivers' proposals only then. SYNC POINT split.
    pub(crate) split_ask: AtomicU64,
}

/// A split copy of an offered message, proposed by its receiver, this rank: the
/// receiver copies the front of the message, and the rest is copied by whichever of
/// the sender and the receiver claims it first (`progress/offer.rs`). The receiver
/// writes the description, then `state`; only it writes them.
#[repr(C)]
pub(crate) struct Split {
    /// A proposal's sequence number times 8 plus a `SPLIT_*` code, so that a claim by
    /// compare-and-swap cannot take a later proposal for the one it read. SYNC POINT
    /// split.
    pub(crate) state: AtomicU64,
    /// World rank of the offer's sender.
    pub(crate) sender: AtomicU64,
    /// The offer's token.
    pub(crate) token: AtomicU64,
    /// Where, in the receiver's memory, the rest goes.
    pub(crate) dst: AtomicU64,
    /// Offset in the message where the rest starts, and the message's length.
    pub(crate) from: AtomicU64,
    pub(crate) len: AtomicU64,
}

/// `Split::state`'s codes, in its low `SPLIT_BITS` bits. No proposal (or the last one
/// is over):
pub(crate) const SPLIT_IDLE: u64 = 0;
/// Proposed: the rest is unclaimed.
pub(crate) const SPLIT_PROPOSED: u64 = 1;
/// The sender claimed the rest and copies it.
pub(crate) const SPLIT_SENDER: u64 = 2;
/// The receiver claimed the rest.
pub(crate) const SPLIT_RECEIVER: u64 = 3;
/// The sender copied the rest.
pub(crate) const SPLIT_DONE: u64 = 4;
/// The sender could not copy the rest: the receiver copies it.
pub(crate) const SPLIT_FAILED: u64 = 5;
pub(crate) const SPLIT_BITS: u32 = 3;
/// The bits of `Split::state` that hold the code.
pub(crate) const SPLIT_CODE: u64 = (1 << SPLIT_BITS) - 1;

/// What a blocked call waits in (`WaitInfo::op`), published for the launcher's reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum WaitOp {
    Recv = 1,
    Send = 2,
    Probe = 3,
    Wait = 4,
    Finalize = 5,
    Collective = 6,
    /// A synchronous send waiting for its receiver to match it.
    SyncSend = 7,
    /// A loan waiting for room in this rank's loan pool: for `peer`, the holder of
    /// the pool's oldest block, to give it back.
    Loan = 8,
}

#[repr(C)]
pub(crate) struct WaitInfo {
    /// 0 = running; else a `WaitOp` code.
    pub(crate) op: AtomicU32,
    /// World rank waited on, or -1 for any.
    pub(crate) peer: AtomicI32,
    /// Tag waited on, or -1 for any.
    pub(crate) tag: AtomicI32,
    /// Communicator context id.
    pub(crate) ctx: AtomicU32,
    /// The operation's `Call` code (0: none).
    pub(crate) name: AtomicU32,
    /// Bumped when a blocked call starts waiting and when it ends, so that the
    /// launcher can tell "still blocked in the same call" from "blocked again".
    pub(crate) epoch: AtomicU64,
}

const _: () = assert!(size_of::<RankCtrl>() == CTRL_BYTES);
const _: () = assert!(align_of::<RankCtrl>() <= 128);

/// Why the job was aborted, packed into one 64-bit word so that one CAS records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortInfo {
    pub(crate) kind: AbortKind,
    pub(crate) rank: u32,
    pub(crate) value: i32,
}

/// The reason codes stored in the abort word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum AbortKind {
    /// `value` = exit code of `rank`.
    RankExited = 1,
    /// `value` = signal that killed `rank`.
    RankKilled = 2,
    /// `rank` called `abort(value)`.
    RankAborted = 3,
    /// The launcher's `--timeout` expired.
    Timeout = 4,
    /// The launcher got signal `value`.
    Interrupted = 5,
    /// The launcher found every live rank blocked with nothing in flight.
    Deadlock = 6,
}

impl AbortInfo {
    fn pack(self) -> u64 {
        ((self.kind as u64) << 56)
            | ((self.rank as u64 & 0xff_ffff) << 32)
            | (self.value as u32 as u64)
    }

    fn unpack(w: u64) -> Option<Self> {
        let kind = match (w >> 56) as u8 {
            1 => AbortKind::RankExited,
            2 => AbortKind::RankKilled,
            3 => AbortKind::RankAborted,
            4 => AbortKind::Timeout,
            5 => AbortKind::Interrupted,
            6 => AbortKind::Deadlock,
            _ => return None,
        };
        Some(AbortInfo {
            kind,
            rank: ((w >> 32) & 0xff_ffff) as u32,
            value: w as u32 as i32,
        })
    }

    /// The error a blocked call returns once it sees this abort.
    pub(crate) fn to_error(self, doing: &str) -> Error {
        let rank = self.rank as usize;
        let while_doing = format!("noticed while {doing}");
        match self.kind {
            AbortKind::RankExited => Error::PeerFailed {
                rank,
                how: Exit::Code(self.value),
                while_doing,
            },
            AbortKind::RankKilled => Error::PeerFailed {
                rank,
                how: Exit::Signal(self.value),
                while_doing,
            },
            AbortKind::RankAborted => Error::Aborted {
                reason: format!("rank {rank} called abort({}); {while_doing}", self.value),
            },
            AbortKind::Timeout => Error::Aborted {
                reason: format!(
                    "shmrun's --timeout of {} s expired; {while_doing}",
                    f64::from(self.value) / 1000.0
                ),
            },
            AbortKind::Interrupted => Error::Aborted {
                reason: format!(
                    "shmrun got signal {} ({}); {while_doing}",
                    self.value,
                    crate::error::signal_name(self.value)
                ),
            },
            AbortKind::Deadlock => Error::Aborted {
                reason: format!("deadlock detected; {while_doing}"),
            },
        }
    }
}

/// Packs an [`Exit`] for `Life::exit`.
pub(crate) fn pack_exit(e: Exit) -> u64 {
    match e {
        Exit::Code(c) => (1 << 32) | c as u32 as u64,
        Exit::Signal(s) => (2 << 32) | s as u32 as u64,
        Exit::Finalized => 3 << 32,
        Exit::Panicked => 4 << 32,
    }
}

fn unpack_exit(w: u64) -> Exit {
    match w >> 32 {
        1 => Exit::Code(w as u32 as i32),
        2 => Exit::Signal(w as u32 as i32),
        4 => Exit::Panicked,
        _ => Exit::Finalized,
    }
}

/// A mapped segment with its layout. Shared by everything in one process.
pub(crate) struct Segment {
    map: Mapping,
    layout: Layout,
}

impl Segment {
    /// Initialises a freshly created, zero-filled mapping (launcher side).
    pub(crate) fn init(map: Mapping, params: Params, launcher_pid: i32) -> Result<Self> {
        let layout = Layout::new(params.nranks, params.ring_bytes)?;
        assert!(
            map.len() >= layout.total_len,
            "mapping smaller than the layout"
        );
        let hdr = map.base().cast::<Header>().as_ptr();
        // SAFETY: the mapping is at least HEADER_BYTES long, page aligned, zero-filled and
        // not yet shared with any other process, so plain writes cannot race.
        unsafe {
            (*hdr).magic = MAGIC;
            (*hdr).version = LAYOUT_VERSION;
            (*hdr).nranks = params.nranks as u32;
            (*hdr).ring_bytes = params.ring_bytes as u64;
            (*hdr).total_len = layout.total_len as u64;
            (*hdr).ncpus = params.ncpus as u32;
            (*hdr).launcher_pid = launcher_pid;
            (*hdr).single_copy = params.single_copy as u32;
        }
        Ok(Segment { map, layout })
    }

    /// Validates the header of an attached mapping (rank side).
    pub(crate) fn attach(map: Mapping, expect_size: usize) -> Result<Self> {
        if map.len() < HEADER_BYTES {
            return Err(Error::Init(
                "the shared segment is too small to be a shmpi segment".into(),
            ));
        }
        // SAFETY: the mapping is at least one header long and page aligned; the plain
        // fields were written before this process existed and never change.
        let hdr = unsafe { map.base().cast::<Header>().as_ref() };
        if hdr.magic != MAGIC {
            return Err(Error::Init(
                "SHMPI_FD does not refer to a shmpi segment (bad magic number)".into(),
            ));
        }
        if hdr.version != LAYOUT_VERSION {
            return Err(Error::Init(format!(
                "the segment has layout version {} but this program was built with shmpi layout \
                 version {LAYOUT_VERSION}: rebuild the program against the same shmpi as shmrun",
                hdr.version
            )));
        }
        if hdr.nranks as usize != expect_size {
            return Err(Error::Init(format!(
                "SHMPI_SIZE={expect_size} but the segment was made for {} ranks",
                hdr.nranks
            )));
        }
        let layout = Layout::new(hdr.nranks as usize, hdr.ring_bytes as usize)?;
        if layout.total_len as u64 != hdr.total_len || layout.total_len > map.len() {
            return Err(Error::Init(format!(
                "the segment header is inconsistent (says {} bytes, layout needs {}, mapped {})",
                hdr.total_len,
                layout.total_len,
                map.len()
            )));
        }
        Ok(Segment { map, layout })
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    pub(crate) fn nranks(&self) -> usize {
        self.layout.nranks
    }

    /// Whether the job has more ranks than CPUs (decides waits and some algorithms).
    pub(crate) fn oversubscribed(&self) -> bool {
        self.nranks() > self.header().ncpus.max(1) as usize
    }

    /// Whether the ranks may read each other's memory (`sys::cma`).
    pub(crate) fn single_copy(&self) -> bool {
        self.header().single_copy == 1
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: validated in `init`/`attach`; lives as long as `self.map`.
        unsafe { self.map.base().cast::<Header>().as_ref() }
    }

    pub(crate) fn ctrl(&self, rank: usize) -> &RankCtrl {
        assert!(rank < self.layout.nranks);
        // SAFETY: in bounds by the layout; RankCtrl holds only atomics, valid for any bytes.
        unsafe {
            self.map
                .base()
                .add(self.layout.ctrl_offset + rank * CTRL_BYTES)
                .cast::<RankCtrl>()
                .as_ref()
        }
    }

    /// The memory of ring `from -> to`.
    ///
    /// # Safety
    /// The returned `RingMem` is only valid while `self` lives, and the ring protocol
    /// needs exactly one producer (rank `from`) and one consumer (rank `to`).
    pub(crate) unsafe fn ring(&self, from: usize, to: usize) -> RingMem {
        let n = self.layout.nranks;
        assert!(from < n && to < n);
        let off = self.layout.rings_offset + (from * n + to) * self.layout.ring_stride;
        let word = self.layout.senders_offset + (to * n.div_ceil(64) + from / 64) * 8;
        // SAFETY: `off` and the ring after it, and the announcement word, lie inside the
        // mapping (Layout arithmetic); the word is 8-byte aligned and only ever accessed
        // as an atomic.
        unsafe {
            let head = self.map.base().add(off).cast::<RingHead>();
            let data = self.map.base().add(off + size_of::<RingHead>());
            let word = self.map.base().add(word).cast();
            RingMem::new(head, data, self.layout.ring_bytes)
                .with_announce(word, 1 << (from % 64))
                .with_span(crate::layout::rewind_span(n, self.layout.ring_bytes))
        }
    }

    /// Whether ring `from -> to` holds no unread record (for the launcher's deadlock
    /// check; a racy snapshot, which the caller confirms over time).
    pub(crate) fn ring_is_empty(&self, from: usize, to: usize) -> bool {
        // SAFETY: only reads: the consumer's position and the seal word at it.
        unsafe { self.ring(from, to).is_empty_snapshot() }
    }

    /// A pointer `off` bytes into the collective area, valid for `len` bytes.
    pub(crate) fn coll_ptr(&self, off: usize, len: usize) -> std::ptr::NonNull<u8> {
        let start = self.layout.coll_offset + off;
        assert!(
            start + len <= self.layout.total_len,
            "collective area access out of bounds"
        );
        // SAFETY: in bounds of the mapping (asserted above, total_len <= mapping length).
        unsafe { self.map.base().add(start) }
    }

    /// The first byte of `rank`'s loan pool (`layout.loan_bytes` bytes, page aligned).
    pub(crate) fn loan_pool(&self, rank: usize) -> std::ptr::NonNull<u8> {
        assert!(
            rank < self.layout.nranks,
            "loan pool of a rank out of range"
        );
        // SAFETY: in bounds of the mapping (Layout arithmetic: the pools end at total_len).
        unsafe {
            self.map
                .base()
                .add(self.layout.loan_offset + rank * self.layout.loan_bytes)
        }
    }

    // ---- abort word -------------------------------------------------------------

    /// Records the first abort; later ones are ignored. Returns whether this one won.
    pub(crate) fn set_abort(&self, info: AbortInfo) -> bool {
        // SYNC POINT abort (Release): everything written before is visible to whoever
        // sees the abort word.
        self.header()
            .abort
            .compare_exchange(0, info.pack(), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Records an abort by `rank` with `code` (`MPI_Abort`), wakes every rank, and
    /// exits this process with `code`.
    pub(crate) fn abort_job(&self, rank: usize, code: i32) -> ! {
        self.set_abort(AbortInfo {
            kind: AbortKind::RankAborted,
            rank: rank as u32,
            value: code,
        });
        for r in 0..self.nranks() {
            doorbell::ring(&self.ctrl(r).bell);
        }
        eprintln!("shmpi: rank {rank} called abort({code})");
        std::process::exit(code)
    }

    pub(crate) fn abort_info(&self) -> Option<AbortInfo> {
        // SYNC POINT abort (Acquire).
        let w = self.header().abort.load(Ordering::Acquire);
        if w == 0 { None } else { AbortInfo::unpack(w) }
    }

    // ---- lifecycle --------------------------------------------------------------

    /// How `rank` has left the job, if it has.
    pub(crate) fn departed(&self, rank: usize) -> Option<Exit> {
        let life = &self.ctrl(rank).life;
        // SYNC POINT state (Acquire): pairs with the Release stores in `set_state` and
        // `mark_exited`, so every push the rank made before leaving is visible.
        match life.state.load(Ordering::Acquire) {
            // A rank that finalized while panicking said so in `exit` (`Engine::finalize`).
            STATE_FINALIZED => Some(match unpack_exit(life.exit.load(Ordering::Relaxed)) {
                Exit::Panicked => Exit::Panicked,
                _ => Exit::Finalized,
            }),
            STATE_EXITED => Some(unpack_exit(life.exit.load(Ordering::Relaxed))),
            _ => None,
        }
    }

    /// Claims `rank` for this process. Fails if another process claimed it. The
    /// returned token is what [`Segment::endpoints`] needs to build the rank's ring ends.
    pub(crate) fn claim(&self, rank: usize, pid: i32) -> Result<Claim> {
        if rank >= self.nranks() {
            return Err(Error::Init(format!(
                "rank {rank} is outside the job of {} ranks",
                self.nranks()
            )));
        }
        let life = &self.ctrl(rank).life;
        if let Err(other) = life
            .pid
            .compare_exchange(0, pid, Ordering::Relaxed, Ordering::Relaxed)
        {
            return Err(Error::Init(format!(
                "rank {rank} is already attached by process {other}; each rank may call init once \
                 (is SHMPI_RANK wrong?)"
            )));
        }
        self.set_state(rank, STATE_ATTACHED);
        Ok(Claim { rank })
    }

    /// This rank's producer of every ring `rank -> j` and consumer of every ring
    /// `i -> rank` (`None` on the diagonal).
    pub(crate) fn endpoints(
        self: &std::rc::Rc<Self>,
        claim: Claim,
    ) -> (Vec<Option<Producer>>, Vec<Option<Consumer>>) {
        let me = claim.rank;
        let n = self.nranks();
        // SAFETY: the claim proves this process is the only one acting as rank `me`,
        // and it is consumed here, so each ring end is built once: rank `me` is the one
        // producer of rings me -> j and the one consumer of rings i -> me. The caller
        // keeps the segment (an `Rc`) alive at least as long as the ends.
        unsafe {
            let prods = (0..n)
                .map(|j| (j != me).then(|| Producer::new(self.ring(me, j))))
                .collect();
            let cons = (0..n)
                .map(|i| (i != me).then(|| Consumer::new(self.ring(i, me))))
                .collect();
            (prods, cons)
        }
    }

    pub(crate) fn set_state(&self, rank: usize, state: u32) {
        // SYNC POINT state (Release).
        self.ctrl(rank).life.state.store(state, Ordering::Release);
    }

    pub(crate) fn state(&self, rank: usize) -> u32 {
        self.ctrl(rank).life.state.load(Ordering::Acquire)
    }

    /// Records that `rank` is finalizing while its thread panics, for [`departed`]
    /// (`set_state` to finalized follows and publishes it).
    ///
    /// [`departed`]: Segment::departed
    pub(crate) fn mark_panicked(&self, rank: usize) {
        let life = &self.ctrl(rank).life;
        life.exit
            .store(pack_exit(Exit::Panicked), Ordering::Relaxed);
    }

    /// Launcher: the process of `rank` is gone.
    pub(crate) fn mark_exited(&self, rank: usize, how: Exit) {
        let life = &self.ctrl(rank).life;
        // A rank that left panicking keeps saying so: its peers learn why it left,
        // not the status its process ended with later (0 if the panic was caught).
        let panicked = life.state.load(Ordering::Acquire) == STATE_FINALIZED
            && unpack_exit(life.exit.load(Ordering::Relaxed)) == Exit::Panicked;
        if !panicked {
            life.exit.store(pack_exit(how), Ordering::Relaxed);
        }
        // SYNC POINT state (Release).
        life.state.store(STATE_EXITED, Ordering::Release);
    }
}

/// Proof that this process claimed a rank (see [`Segment::claim`]).
pub(crate) struct Claim {
    rank: usize,
}

impl Claim {
    pub(crate) fn rank(&self) -> usize {
        self.rank
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abort_info_round_trips() {
        let a = AbortInfo {
            kind: AbortKind::RankKilled,
            rank: 255,
            value: 9,
        };
        assert_eq!(AbortInfo::unpack(a.pack()), Some(a));
        let b = AbortInfo {
            kind: AbortKind::RankExited,
            rank: 3,
            value: -1,
        };
        assert_eq!(AbortInfo::unpack(b.pack()), Some(b));
    }
}
