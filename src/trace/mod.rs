//! Tracing and communication statistics (`shmrun --trace FILE`, `shmrun --stats`).
//!
//! Each rank records into a region of one memfd that the launcher creates, so that the
//! launcher can read what a rank recorded after the rank has exited, including a rank
//! that was killed part-way: nothing has to be flushed at exit. A region is:
//!
//! - a header: the events written and dropped, the call now open (its start, name and
//!   peer, written at the call's entry, so a rank that dies inside a call shows it),
//!   the statistics (messages and bytes, calls and time per kind, messages and bytes
//!   per destination);
//! - a bounded array of fixed-size events, one per finished call (a *span*: start, end,
//!   when it started to wait, its peer, tag, bytes, communicator, root, op). When the
//!   array is full, newer events are dropped and counted: the oldest are kept.
//!
//! Recording is off unless the launcher asked for it. The engine's entry points (and
//! the public methods of the blocking sends and receives) start with one test of
//! [`hooked`] (one load of a process-wide flag, false when off), and branch to the
//! recording wrappers of `hooks.rs`, which clear the flag for the length of the call
//! (so the calls it makes inside are not recorded again), call the same entry point,
//! and record the span. Timestamps are the CPU's time-stamp counter
//! (`sys::tracemem::ticks`), a few nanoseconds to read where `clock_gettime` takes tens;
//! the launcher maps them onto `CLOCK_MONOTONIC` with two samples of both clocks (at
//! the job's start and end), the same map for every rank.
//!
//! The launcher pairs each receive with the send it matched by counting: MPI's
//! non-overtaking rule makes the k-th message received with a given (source,
//! destination, communicator, tag) the k-th one sent with it (`model.rs`).
//!
//! # Memory ordering
//!
//! | word | writer | reader | ordering |
//! |---|---|---|---|
//! | every word of a region | its rank (one thread) | the launcher, after the rank has been reaped | Relaxed; the rank's exit and `waitpid` order its stores before the launcher's loads |
//!
//! Files: `hooks.rs` (the wrappers the engine branches to), `model.rs` (the launcher
//! reads the regions into spans and messages), `chrome.rs` (the Chrome trace JSON),
//! `html.rs` (the offline page), `stats.rs` (the summary table).

mod chrome;
pub(crate) mod hooks;
mod html;
mod job;
mod model;
mod stats;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::sys;
use crate::sys::shm::Mapping;
use crate::sys::tracemem::ticks;

/// Environment variable: the descriptor of the tracing memfd, inherited by the ranks.
pub(crate) const ENV_TRACE_FD: &str = "SHMPI_TRACE_FD";
/// Environment variable: what to record, `MODE:EVENTS:LAYOUT` (mode bit 1: trace, bit
/// 2: statistics; EVENTS: events per rank; LAYOUT: [`LAYOUT`]).
pub(crate) const ENV_TRACE: &str = "SHMPI_TRACE";
/// The version of a region's layout, raised whenever its words move: a rank built from
/// another shmpi than the launcher's refuses to record rather than write words the
/// launcher would read as something else.
pub(crate) const LAYOUT: u32 = 2;

/// Mode bit: record spans.
const MODE_TRACE: u64 = 1;
/// Mode bit: count calls, messages and time.
const MODE_STATS: u64 = 2;

// Header words of a region.
const H_COUNT: usize = 0;
const H_DROPPED: usize = 1;
const H_DROP_T: usize = 2;
const H_OPEN_T: usize = 3;
const H_OPEN_CALL: usize = 4;
const H_OPEN_PEER: usize = 5;
const H_INIT_T: usize = 6;
const H_OPEN_BLOCKED: usize = 7;
const S_MSGS_SENT: usize = 8;
const S_BYTES_SENT: usize = 9;
const S_MSGS_RECV: usize = 10;
const S_BYTES_RECV: usize = 11;
/// Ticks blocked, over every call.
const S_BLOCKED_T: usize = 13;
/// Calls per code (`Call` codes and the codes below).
const S_CALLS: usize = 16;
const CODES: usize = 64;
/// Per code: the ticks of the timed calls (see [`timed`]) outside their blocked part.
const S_TICKS: usize = S_CALLS + CODES;
/// Per code: the calls timed.
const S_TIMED: usize = S_TICKS + CODES;
/// Per code: the ticks blocked, over every call.
const S_BLOCKED: usize = S_TIMED + CODES;
/// Messages per destination world rank, then bytes per destination.
const S_DEST: usize = S_BLOCKED + CODES;
/// With `--stats` alone, one call in this many (on average) is timed whole.
const STATS_SAMPLE: u64 = 16;
/// Words of one event.
const EV_WORDS: usize = 8;

/// Event code of a request's completion handed out by a test (not a wait).
pub(crate) const CODE_COMPLETED: u8 = 60;
/// Event code of `improbe` that matched a message.
pub(crate) const CODE_IMPROBE: u8 = 61;

/// Event flags.
pub(crate) const F_SENDS: u8 = 1;
pub(crate) const F_RECVS: u8 = 2;
pub(crate) const F_FAILED: u8 = 4;
pub(crate) const F_COLL: u8 = 8;

/// Where the events of a region start, and its length, in words.
fn geometry(n: usize, cap: usize) -> (usize, usize) {
    let ev = (S_DEST + 2 * n).next_multiple_of(EV_WORDS);
    (ev, ev + cap * EV_WORDS)
}

/// One finished call, as recorded.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ev {
    pub(crate) code: u8,
    pub(crate) flags: u8,
    pub(crate) op: u8,
    pub(crate) ctx: u32,
    /// Destination (world rank) and tag of the message sent, or the peer of the call.
    pub(crate) speer: i32,
    pub(crate) stag: i32,
    /// Bytes sent, or a collective's count.
    pub(crate) sbytes: u64,
    /// Source (world rank) and tag of the message received; a collective's root.
    pub(crate) rpeer: i32,
    pub(crate) rtag: i32,
    pub(crate) rbytes: u64,
}

impl Ev {
    /// No call (`Default` in a `const`).
    pub(crate) const EMPTY: Ev = Ev {
        code: 0,
        flags: 0,
        op: 0,
        ctx: 0,
        speer: -1,
        stag: -1,
        sbytes: 0,
        rpeer: -1,
        rtag: -1,
        rbytes: 0,
    };

    fn pack(&self, t0: u64, t1: u64, blocked: u64) -> [u64; EV_WORDS] {
        [
            self.code as u64
                | (self.flags as u64) << 8
                | (self.op as u64) << 16
                | (self.ctx as u64) << 32,
            t0,
            t1,
            blocked,
            self.speer as u32 as u64 | (self.stag as u32 as u64) << 32,
            self.sbytes,
            self.rpeer as u32 as u64 | (self.rtag as u32 as u64) << 32,
            self.rbytes,
        ]
    }

    fn unpack(w: &[u64]) -> (Ev, u64, u64, u64) {
        let ev = Ev {
            code: w[0] as u8,
            flags: (w[0] >> 8) as u8,
            op: (w[0] >> 16) as u8,
            ctx: (w[0] >> 32) as u32,
            speer: w[4] as u32 as i32,
            stag: (w[4] >> 32) as u32 as i32,
            sbytes: w[5],
            rpeer: w[6] as u32 as i32,
            rtag: (w[6] >> 32) as u32 as i32,
            rbytes: w[7],
        };
        (ev, w[1], w[2], w[3])
    }
}

/// This rank's region, once `attach` found the launcher's memfd.
struct Region {
    words: &'static [AtomicU64],
    /// The header and statistics words (`words[..S_DEST]`), as an array so that their
    /// constant indices need no bounds checks on the recording path.
    head: &'static [AtomicU64; S_DEST],
    /// Messages and bytes per destination (`words[S_DEST..]`, `n` each).
    dest_msgs: &'static [AtomicU64],
    dest_bytes: &'static [AtomicU64],
    mode: u64,
    cap: usize,
    ev: usize,
}

static REGION: OnceLock<Region> = OnceLock::new();
/// True while recording is on and no recorded call is open: the engine's one test.
static HOOK: AtomicBool = AtomicBool::new(false);
/// True while a collective's span is open (its end is recorded by `coll_end`).
static IN_COLL: AtomicBool = AtomicBool::new(false);
/// True once this rank records (set with `REGION`): the idle step's one test, which
/// cannot use `HOOK` because it runs inside recorded calls.
static RECORDING: AtomicBool = AtomicBool::new(false);
/// Calls left before the next timed one (`--stats` alone), and the state of the
/// generator that spaces them (single-threaded use: plain loads and stores).
static UNTIMED_LEFT: AtomicU64 = AtomicU64::new(0);
static SPACING: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);

/// Whether the engine should branch to the recording wrappers.
#[inline(always)]
pub(crate) fn hooked() -> bool {
    HOOK.load(Ordering::Relaxed)
}

/// Joins the launcher's recording if it asked for one (`SHMPI_TRACE_FD`): called once
/// by `init` in each rank. Without the variable, recording stays off.
pub(crate) fn attach(rank: usize, n: usize) -> Result<()> {
    // Only a rank that shmrun started (not a singleton) joins its recording.
    let (Ok(fd), Ok(_)) = (
        std::env::var(ENV_TRACE_FD),
        std::env::var(crate::init::ENV_FD),
    ) else {
        return Ok(());
    };
    let spec = std::env::var(ENV_TRACE).unwrap_or_default();
    let bad = || {
        Error::Init(format!(
            "{ENV_TRACE_FD}={fd:?} / {ENV_TRACE}={spec:?} are not what shmrun sets; \
             unset them, or start the program with shmrun --trace/--stats"
        ))
    };
    let raw: i32 = fd.trim().parse().map_err(|_| bad())?;
    let mut f = spec.split(':');
    let (mode, cap) = (f.next(), f.next());
    let (mode, cap) = mode
        .and_then(|m| m.parse::<u64>().ok())
        .zip(cap.and_then(|c| c.parse::<usize>().ok()))
        .ok_or_else(bad)?;
    let layout = f.next().and_then(|l| l.parse::<u32>().ok());
    if layout != Some(LAYOUT) {
        return Err(Error::Init(format!(
            "shmrun records in trace layout {} and this program's shmpi in layout {LAYOUT}: \
             build the program and shmrun from the same shmpi",
            layout.map_or_else(|| "1".to_string(), |l| l.to_string())
        )));
    }
    let (ev, len) = geometry(n, cap);
    let map = sys::shm::attach(raw, (rank + 1) * len * 8)?;
    let map: &'static Mapping = Box::leak(Box::new(map));
    let all = sys::tracemem::words(map);
    let words = &all[rank * len..(rank + 1) * len];
    if mode & MODE_TRACE != 0 {
        sys::tracemem::prefault(words);
    }
    words[H_INIT_T].store(ticks(), Ordering::Relaxed);
    let head = words[..S_DEST]
        .try_into()
        .expect("a region holds its header");
    let (dest_msgs, dest_bytes) = words[S_DEST..S_DEST + 2 * n].split_at(n);
    let _ = REGION.set(Region {
        words,
        head,
        dest_msgs,
        dest_bytes,
        mode,
        cap,
        ev,
    });
    HOOK.store(mode != 0, Ordering::Relaxed);
    RECORDING.store(mode != 0, Ordering::Relaxed);
    Ok(())
}

/// A call being recorded: opened by [`enter`], closed by [`leave`]. `t0` is 0 when
/// the call is not timed.
#[derive(Clone, Copy)]
pub(crate) struct Open {
    pub(super) t0: u64,
}

/// Whether the call now opening (of event code `code`) is timed whole: every call
/// while tracing; with `--stats` alone, the first call of each code and then one in
/// [`STATS_SAMPLE`] on average, at jittered intervals so that no loop's period lines
/// up with them. Reading the time-stamp counter twice would cost more than the rest
/// of the recording (it takes 11-15 ns on this VM); the time of the calls not timed
/// is estimated from those of their code that were (`model.rs`), and blocked time is
/// measured on every call that blocks.
#[inline(always)]
fn timed(r: &Region, code: u8) -> bool {
    if r.mode & MODE_TRACE != 0 {
        return true;
    }
    let left = UNTIMED_LEFT.load(Ordering::Relaxed);
    let code = (code as usize).min(CODES - 1);
    if left > 0 && r.head[S_TIMED + code].load(Ordering::Relaxed) != 0 {
        UNTIMED_LEFT.store(left - 1, Ordering::Relaxed);
        return false;
    }
    // xorshift64: the next gap is uniform in 0..2 * STATS_SAMPLE - 1 (mean STATS_SAMPLE - 1).
    let mut x = SPACING.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    SPACING.store(x, Ordering::Relaxed);
    UNTIMED_LEFT.store(x % (2 * STATS_SAMPLE - 1), Ordering::Relaxed);
    true
}

/// Opens a recorded call: clears the hook (calls made inside are part of this one) and,
/// while tracing, publishes the call in the header, where the launcher finds it if the
/// rank dies.
#[inline(always)]
pub(crate) fn enter(code: u8, ctx: u32, peer: i32, tag: i32) -> Open {
    HOOK.store(false, Ordering::Relaxed);
    let Some(r) = REGION.get() else {
        return Open { t0: 0 };
    };
    let w = r.head;
    let t0 = if timed(r, code) { ticks() } else { 0 };
    if r.mode & MODE_TRACE != 0 {
        w[H_OPEN_CALL].store(code as u64 | (ctx as u64) << 32, Ordering::Relaxed);
        w[H_OPEN_PEER].store(
            peer as u32 as u64 | (tag as u32 as u64) << 32,
            Ordering::Relaxed,
        );
        w[H_OPEN_T].store(t0, Ordering::Relaxed);
    }
    w[H_OPEN_BLOCKED].store(0, Ordering::Relaxed);
    Open { t0 }
}

/// Closes a recorded call: writes its event and counts it, and sets the hook again.
#[inline(always)]
pub(crate) fn leave(open: Open, ev: Ev) {
    if let Some(r) = REGION.get() {
        let w = r.head;
        let blocked = w[H_OPEN_BLOCKED].load(Ordering::Relaxed);
        let t1 = if open.t0 != 0 || blocked != 0 {
            ticks()
        } else {
            0
        };
        if r.mode & MODE_STATS != 0 {
            count(r, &ev, open.t0, t1, blocked);
        }
        if r.mode & MODE_TRACE != 0 {
            w[H_OPEN_T].store(0, Ordering::Relaxed);
            let k = w[H_COUNT].load(Ordering::Relaxed) as usize;
            if k < r.cap {
                let at = r.ev + k * EV_WORDS;
                for (slot, v) in r.words[at..at + EV_WORDS]
                    .iter()
                    .zip(ev.pack(open.t0, t1, blocked))
                {
                    slot.store(v, Ordering::Relaxed);
                }
                w[H_COUNT].store(k as u64 + 1, Ordering::Relaxed);
            } else {
                let d = w[H_DROPPED].load(Ordering::Relaxed);
                if d == 0 {
                    w[H_DROP_T].store(open.t0, Ordering::Relaxed);
                }
                w[H_DROPPED].store(d + 1, Ordering::Relaxed);
            }
        }
    }
    HOOK.store(true, Ordering::Relaxed);
}

/// Adds one call to the statistics (single writer: plain loads and stores, no locked
/// instructions).
#[inline(always)]
fn count(r: &Region, ev: &Ev, t0: u64, t1: u64, blocked: u64) {
    let add_to = |w: &AtomicU64, v: u64| {
        w.store(w.load(Ordering::Relaxed).wrapping_add(v), Ordering::Relaxed)
    };
    let add = |i: usize, v: u64| add_to(&r.head[i], v);
    let code = (ev.code as usize).min(CODES - 1);
    add(S_CALLS + code, 1);
    let waited = if blocked != 0 {
        let b = t1.wrapping_sub(blocked);
        add(S_BLOCKED + code, b);
        add(S_BLOCKED_T, b);
        b
    } else {
        0
    };
    if t0 != 0 {
        add(S_TIMED + code, 1);
        add(S_TICKS + code, t1.wrapping_sub(t0).saturating_sub(waited));
    }
    if ev.flags & F_FAILED != 0 {
        return;
    }
    if ev.flags & F_SENDS != 0 {
        add(S_MSGS_SENT, 1);
        add(S_BYTES_SENT, ev.sbytes);
        let d = ev.speer as usize;
        if let (Some(m), Some(b)) = (r.dest_msgs.get(d), r.dest_bytes.get(d)) {
            add_to(m, 1);
            add_to(b, ev.sbytes);
        }
    }
    if ev.flags & F_RECVS != 0 {
        add(S_MSGS_RECV, 1);
        add(S_BYTES_RECV, ev.rbytes);
    }
}

/// A blocked call has started to wait (its first idle step): called by the engine's
/// idle step, off the fast paths. Marks when the open call began to wait.
#[inline(always)]
pub(crate) fn idle() {
    if RECORDING.load(Ordering::Relaxed) {
        idle_recorded();
    }
}

#[cold]
#[inline(never)]
fn idle_recorded() {
    if let Some(r) = REGION.get() {
        let w = r.head;
        // A recorded call is open exactly while the hook is cleared.
        if !HOOK.load(Ordering::Relaxed) && w[H_OPEN_BLOCKED].load(Ordering::Relaxed) == 0 {
            w[H_OPEN_BLOCKED].store(ticks(), Ordering::Relaxed);
        }
    }
}

pub(crate) use job::{Job, Output};
pub(crate) use model::RankEnd;

/// A collective call starts (`Coll::begin`).
#[inline]
pub(crate) fn coll_begin(code: u8, ctx: u32, root: u32, op: u8, count: u64) {
    if hooked() {
        hooks::coll_begin(code, ctx, root, op, count);
    }
}

/// A collective call ends (`Coll::end`), `failed` or not.
#[inline]
pub(crate) fn coll_end(failed: bool) {
    if IN_COLL.load(Ordering::Relaxed) {
        hooks::coll_end(failed);
    }
}

/// The engine's hook: `hook!(name(args))` returns `hooks::name(args)` when recording
/// is on, one predictable branch when it is off.
macro_rules! hook {
    ($f:ident($($a:expr),* $(,)?)) => {
        if $crate::trace::hooked() {
            return $crate::trace::hooks::$f($($a),*);
        }
    };
}
pub(crate) use hook;
