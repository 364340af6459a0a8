//! What each rank is blocked on, as the launcher reads it from the segment: the
//! `--timeout` report, and the watch that finds a deadlock and explains it.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::RankProc;
use crate::call::Call;
use crate::segment::{STATE_ATTACHED, Segment, WaitOp};

/// What rank `r` is blocked on, from the wait description it publishes: `None` if it
/// is not blocked in shmpi.
fn blocked_on(seg: &Segment, r: usize) -> Option<(String, u32)> {
    let w = &seg.ctrl(r).wait;
    let op = w.op.load(Ordering::Relaxed);
    if op == 0 {
        return None;
    }
    let peer = w.peer.load(Ordering::Relaxed);
    let tag = w.tag.load(Ordering::Relaxed);
    let ctx = w.ctx.load(Ordering::Relaxed);
    let name = Call::from_code(w.name.load(Ordering::Relaxed)).map_or("an operation", Call::name);
    let peer_s = if peer < 0 {
        "ANY_SOURCE".to_string()
    } else {
        peer.to_string()
    };
    let tag_s = if tag < 0 {
        "ANY_TAG".to_string()
    } else {
        tag.to_string()
    };
    let base = ctx & !crate::collective::nbc::HIDDEN;
    let on = if base == 0 {
        "world".to_string()
    } else {
        format!("communicator context {base} (ranks are world ranks)")
    };
    if base != ctx {
        // A non-blocking collective: its messages travel in the communicator's hidden
        // context, tagged with the collective's number, neither of which the program sees.
        let what = format!(
            "the wait of a non-blocking collective (i{name}) for rank {peer_s}'s part on {on}"
        );
        return Some((what, ctx));
    }
    let what = match op {
        1 | 3 => format!("{name}(source={peer_s}, tag={tag_s}) on {on}"),
        2 => format!(
            "{name}(dest={peer_s}, tag={tag_s}) on {on}, the ring to rank {peer_s} being full"
        ),
        4 => format!("{name} for a request (peer {peer_s}, tag {tag_s}) on {on}"),
        5 => "finalize, flushing its sends".to_string(),
        7 => {
            format!("{name}(dest={peer_s}, tag={tag_s}) on {on}, waiting for the matching receive")
        }
        8 => format!(
            "{name}, waiting for rank {peer_s} to give back loans it holds from this rank's \
             loan pool (the pool is full)"
        ),
        _ => format!("{name} on {on}"),
    };
    Some((what, ctx))
}

/// What each live rank is doing.
pub(super) fn blocked_report(seg: &Segment, procs: &[RankProc]) -> String {
    let mut lines = Vec::new();
    for (r, p) in procs.iter().enumerate() {
        if p.exit.is_some() {
            continue;
        }
        let what = match blocked_on(seg, r) {
            Some((w, _)) => format!("waits in {w}"),
            None => "is running (not blocked in shmpi)".to_string(),
        };
        lines.push(format!("  rank {r} (pid {}) {what}", p.pid));
    }
    lines.join("\n")
}

/// Watches for a job in which every live rank sleeps in a blocking call that never
/// ends, with no message in flight.
#[derive(Default)]
pub(super) struct DeadlockWatch {
    /// (rank, epoch) of every live rank at the first sample of the current stretch.
    snapshot: Vec<(usize, u64)>,
    since: Option<Instant>,
}

impl DeadlockWatch {
    pub(super) fn check(
        &mut self,
        seg: &Segment,
        procs: &[RankProc],
        after: Duration,
    ) -> Option<String> {
        let Some(snap) = Self::sample(seg, procs) else {
            self.since = None;
            return None;
        };
        if self.since.is_none() || snap != self.snapshot {
            self.snapshot = snap;
            self.since = Some(Instant::now());
            return None;
        }
        if self.since.is_some_and(|t| t.elapsed() < after) {
            return None;
        }
        // Confirmed: describe it.
        let mut waits = Vec::new();
        let mut colls: Vec<(usize, String, u32)> = Vec::new();
        for &(r, _) in &self.snapshot {
            let (what, ctx) = blocked_on(seg, r)?;
            if seg.ctrl(r).wait.op.load(Ordering::Relaxed) == WaitOp::Collective as u32 {
                colls.push((r, what.clone(), ctx));
            }
            waits.push(format!("rank {r} waits in {what}"));
        }
        let mut text = format!("shmrun: deadlock: {}", waits.join("; "));
        let mismatched = colls
            .iter()
            .any(|(_, w, c)| colls.iter().any(|(_, w2, c2)| c == c2 && w != w2));
        if mismatched {
            text.push_str(
                "\nshmrun: the ranks called different collectives on the same communicator; every rank \
                 must call the same collectives in the same order",
            );
        }
        text.push_str(
            "\nshmrun: every live rank is blocked and no message is in flight that could release any of \
             them, so none can ever continue; the job was stopped",
        );
        Some(text)
    }

    /// The (rank, epoch) of every live rank if all of them sleep in a blocking call
    /// and every ring between them is empty; `None` otherwise.
    fn sample(seg: &Segment, procs: &[RankProc]) -> Option<Vec<(usize, u64)>> {
        let live: Vec<usize> = (0..procs.len())
            .filter(|&r| procs[r].exit.is_none())
            .collect();
        if live.is_empty() {
            return None;
        }
        let mut snap = Vec::with_capacity(live.len());
        for &r in &live {
            let c = seg.ctrl(r);
            if seg.state(r) != STATE_ATTACHED
                || c.wait.op.load(Ordering::Relaxed) == 0
                || c.bell.sleeping.load(Ordering::Relaxed) == 0
            {
                return None;
            }
            snap.push((r, c.wait.epoch.load(Ordering::Relaxed)));
        }
        for &i in &live {
            for &j in &live {
                if i != j && !seg.ring_is_empty(i, j) {
                    return None;
                }
            }
        }
        Some(snap)
    }
}
