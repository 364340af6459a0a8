//! The launcher's reading of the regions after the job: spans per rank, messages (each
//! send paired with the receive that matched it), the launcher's own markers, and the
//! statistics, with times in nanoseconds since the job started.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{CODE_COMPLETED, CODE_IMPROBE, EV_WORDS, Ev, F_COLL, F_FAILED, F_RECVS, F_SENDS};
use super::{CODES, H_COUNT, H_DROP_T, H_DROPPED, H_INIT_T, H_OPEN_BLOCKED, H_OPEN_CALL};
use super::{H_OPEN_PEER, H_OPEN_T, S_BLOCKED, S_BLOCKED_T, S_BYTES_RECV, S_BYTES_SENT};
use super::{S_CALLS, S_DEST, S_MSGS_RECV, S_MSGS_SENT, S_TICKS, S_TIMED};
use crate::call::Call;

/// Maps the ticks of every rank onto nanoseconds since the job started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub(crate) tick0: u64,
    pub(crate) mono0: u64,
    /// Nanoseconds per tick.
    pub(crate) scale: f64,
}

impl Clock {
    pub(crate) fn ns(&self, t: u64) -> u64 {
        let d = t.wrapping_sub(self.tick0) as i64;
        ((d as f64) * self.scale).max(0.0) as u64
    }

    pub(crate) fn dur(&self, ticks: u64) -> u64 {
        (ticks as f64 * self.scale) as u64
    }
}

/// One recorded call.
#[derive(Debug, Clone)]
pub(crate) struct Span {
    pub(crate) rank: usize,
    pub(crate) ev: Ev,
    pub(crate) t0: u64,
    pub(crate) t1: u64,
    /// When it started to wait (its first idle step), if it did.
    pub(crate) blocked: Option<u64>,
    /// The rank died inside this call: it never returned.
    pub(crate) unfinished: bool,
}

impl Span {
    pub(crate) fn name(&self) -> &'static str {
        code_name(self.ev.code)
    }

    pub(crate) fn failed(&self) -> bool {
        self.ev.flags & F_FAILED != 0
    }

    pub(crate) fn is_coll(&self) -> bool {
        self.ev.flags & F_COLL != 0
    }
}

/// The name of an event code.
pub(crate) fn code_name(code: u8) -> &'static str {
    match code {
        CODE_COMPLETED => "completed",
        CODE_IMPROBE => "improbe",
        c => Call::from_code(c as u32).map_or("call", Call::name),
    }
}

/// A message: the span that sent it and the span that received it.
#[derive(Debug, Clone)]
pub(crate) struct Msg {
    pub(crate) send: usize,
    pub(crate) recv: usize,
}

/// Something the launcher saw.
#[derive(Debug, Clone)]
pub(crate) struct Marker {
    pub(crate) t: u64,
    pub(crate) name: String,
    pub(crate) text: String,
    /// The rank it concerns, if one.
    pub(crate) rank: Option<usize>,
}

/// One rank's summary.
#[derive(Debug, Clone, Default)]
pub(crate) struct RankInfo {
    pub(crate) pid: i32,
    /// How it ended, in words, and when.
    pub(crate) exit: String,
    pub(crate) end: u64,
    pub(crate) init: Option<u64>,
    pub(crate) recorded: usize,
    pub(crate) dropped: u64,
    pub(crate) drop_t: Option<u64>,
    pub(crate) msgs_sent: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) msgs_recv: u64,
    pub(crate) bytes_recv: u64,
    pub(crate) comm_ns: u64,
    pub(crate) blocked_ns: u64,
    /// (code, calls, nanoseconds) of every code called.
    pub(crate) calls: Vec<(u8, u64, u64)>,
    pub(crate) dest_msgs: Vec<u64>,
    pub(crate) dest_bytes: Vec<u64>,
}

/// The whole job, read back.
#[derive(Debug, Clone, Default)]
pub(crate) struct Model {
    pub(crate) n: usize,
    pub(crate) cap: usize,
    pub(crate) spans: Vec<Span>,
    pub(crate) msgs: Vec<Msg>,
    /// Sends no receive matched.
    pub(crate) unreceived: Vec<usize>,
    pub(crate) ranks: Vec<RankInfo>,
    pub(crate) markers: Vec<Marker>,
    /// `CLOCK_MONOTONIC` at the job's start, in nanoseconds.
    pub(crate) mono0: u64,
    pub(crate) duration: u64,
}

/// How one rank ended, as the launcher saw it.
pub(crate) struct RankEnd {
    pub(crate) pid: i32,
    pub(crate) how: String,
    /// Ticks when the launcher reaped it (or the job's end).
    pub(crate) at: u64,
    pub(crate) died: bool,
}

/// Reads every region.
pub(crate) fn read(
    words: &[AtomicU64],
    n: usize,
    cap: usize,
    clock: Clock,
    ends: &[RankEnd],
    duration: u64,
) -> Model {
    let (ev_at, len) = super::geometry(n, cap);
    let mut m = Model {
        n,
        cap,
        mono0: clock.mono0,
        duration,
        ..Model::default()
    };
    for (r, end) in ends.iter().enumerate().take(n) {
        let w = &words[r * len..(r + 1) * len];
        let ld = |i: usize| w[i].load(Ordering::Relaxed);
        let count = (ld(H_COUNT) as usize).min(cap);
        let end_ns = clock.ns(end.at);
        for k in 0..count {
            let at = ev_at + k * EV_WORDS;
            let raw: Vec<u64> = (at..at + EV_WORDS).map(ld).collect();
            let (ev, t0, t1, b) = super::Ev::unpack(&raw);
            m.spans.push(Span {
                rank: r,
                ev,
                t0: clock.ns(t0),
                t1: clock.ns(t1).max(clock.ns(t0)),
                blocked: (b != 0).then(|| clock.ns(b)),
                unfinished: false,
            });
        }
        let open = ld(H_OPEN_T);
        if end.died && open != 0 && count < cap {
            let c = ld(H_OPEN_CALL);
            let p = ld(H_OPEN_PEER);
            let b = ld(H_OPEN_BLOCKED);
            m.spans.push(Span {
                rank: r,
                ev: Ev {
                    code: c as u8,
                    ctx: (c >> 32) as u32,
                    speer: p as u32 as i32,
                    stag: (p >> 32) as u32 as i32,
                    rpeer: -1,
                    rtag: -1,
                    ..Ev::default()
                },
                t0: clock.ns(open),
                t1: end_ns.max(clock.ns(open)),
                blocked: (b != 0).then(|| clock.ns(b)),
                unfinished: true,
            });
        }
        // Time inside the calls of each code: all of their blocked time, and the rest
        // scaled up from the calls timed whole (all of them while tracing).
        let calls: Vec<(u8, u64, u64)> = (0..CODES)
            .filter(|&c| ld(S_CALLS + c) != 0)
            .map(|c| {
                let (k, timed) = (ld(S_CALLS + c), ld(S_TIMED + c));
                let rest = match timed {
                    0 => 0,
                    t => (ld(S_TICKS + c) as u128 * k as u128 / t as u128) as u64,
                };
                (
                    c as u8,
                    k,
                    clock.dur(ld(S_BLOCKED + c).saturating_add(rest)),
                )
            })
            .collect();
        let comm_ns = calls.iter().map(|&(_, _, ns)| ns).sum();
        let init = ld(H_INIT_T);
        m.ranks.push(RankInfo {
            pid: end.pid,
            exit: end.how.clone(),
            end: end_ns,
            init: (init != 0).then(|| clock.ns(init)),
            recorded: count,
            dropped: ld(H_DROPPED),
            drop_t: (ld(H_DROPPED) != 0).then(|| clock.ns(ld(H_DROP_T))),
            msgs_sent: ld(S_MSGS_SENT),
            bytes_sent: ld(S_BYTES_SENT),
            msgs_recv: ld(S_MSGS_RECV),
            bytes_recv: ld(S_BYTES_RECV),
            comm_ns,
            blocked_ns: clock.dur(ld(S_BLOCKED_T)),
            calls,
            dest_msgs: (0..n).map(|d| ld(S_DEST + d)).collect(),
            dest_bytes: (0..n).map(|d| ld(S_DEST + n + d)).collect(),
        });
    }
    pair(&mut m);
    m
}

/// Pairs each received message with its send: by MPI's non-overtaking rule, the k-th
/// message received with a given (source, destination, communicator, tag) is the k-th
/// one sent with it.
fn pair(m: &mut Model) {
    let mut sent: HashMap<(i32, i32, u32, i32), VecDeque<usize>> = HashMap::new();
    let ok = |s: &Span| s.ev.flags & F_FAILED == 0 && !s.unfinished;
    for (i, s) in m.spans.iter().enumerate() {
        if s.ev.flags & F_SENDS != 0 && ok(s) {
            sent.entry((s.rank as i32, s.ev.speer, s.ev.ctx, s.ev.stag))
                .or_default()
                .push_back(i);
        }
    }
    for (i, s) in m.spans.iter().enumerate() {
        if s.ev.flags & F_RECVS != 0 && ok(s) {
            let key = (s.ev.rpeer, s.rank as i32, s.ev.ctx, s.ev.rtag);
            if let Some(j) = sent.get_mut(&key).and_then(|q| q.pop_front()) {
                m.msgs.push(Msg { send: j, recv: i });
            }
        }
    }
    let mut left: Vec<usize> = sent.into_values().flatten().collect();
    left.sort_unstable();
    m.unreceived = left;
}
