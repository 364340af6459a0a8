//! What each rank is blocked on, as the launcher reads it from the segment: the
//! `--timeout` report, and the watch that finds a deadlock and explains it.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::RankProc;
use crate::call::Call;
use crate::segment::{STATE_ATTACHED, STATE_FINALIZED, Segment, WaitOp};

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
            None if seg.state(r) == STATE_FINALIZED => LINGERS.to_string(),
            None => "is running (not blocked in shmpi)".to_string(),
        };
        lines.push(format!("  rank {r} (pid {}) {what}", p.pid));
    }
    lines.join("\n")
}

/// What a rank that has finalized while its process lives on is doing, for reports.
const LINGERS: &str = "has finalized (left the job) and its process still runs; it can \
     send nothing more, and gives back the loans it holds only when it drops their views \
     or ends";

/// The epoch standing for a rank that has finalized and lives on, in a snapshot (a
/// blocked rank's epoch only counts up from 0, so this one never matches it).
const LINGERING: u64 = u64::MAX;

/// What the watch found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Found {
    /// Nothing can ever release the blocked ranks: the report, and the job is stopped.
    Deadlock(String),
    /// The blocked ranks wait for loans held by ranks that have finalized and live on:
    /// a view's drop may still release them, so this is said once and the job goes on.
    Stall(String),
}

/// Watches for a job in which every live rank sleeps in a blocking call that never
/// ends, with no message in flight. A rank that has finalized while its process lives
/// on counts as one that can release nobody, except the owner of loans it holds
/// (dropping a view gives the block back), so a wait on it is a stall, said once.
#[derive(Default)]
pub(super) struct DeadlockWatch {
    /// (rank, epoch) of every live rank at the first sample of the current stretch
    /// ([`LINGERING`] for a rank that finalized and lives on).
    snapshot: Vec<(usize, u64)>,
    since: Option<Instant>,
    /// Whether the stall of the current stretch was reported already.
    stall_said: bool,
}

impl DeadlockWatch {
    pub(super) fn check(
        &mut self,
        seg: &Segment,
        procs: &[RankProc],
        after: Duration,
    ) -> Option<Found> {
        let Some(snap) = Self::sample(seg, procs) else {
            self.since = None;
            return None;
        };
        if self.since.is_none() || snap != self.snapshot {
            self.snapshot = snap;
            self.since = Some(Instant::now());
            self.stall_said = false;
            return None;
        }
        if self.since.is_some_and(|t| t.elapsed() < after) {
            return None;
        }
        let lingering: Vec<usize> = self
            .snapshot
            .iter()
            .filter(|&&(_, e)| e == LINGERING)
            .map(|&(r, _)| r)
            .collect();
        // A loan wait on a rank that lingers ends when that rank drops its view, which
        // it may still do: say who waits on whom, once, and let the job go on.
        let mut stalls = Vec::new();
        for &(r, e) in &self.snapshot {
            let w = &seg.ctrl(r).wait;
            let peer = w.peer.load(Ordering::Relaxed);
            if e != LINGERING
                && w.op.load(Ordering::Relaxed) == WaitOp::Loan as u32
                && peer >= 0
                && lingering.contains(&(peer as usize))
            {
                let (what, _) = blocked_on(seg, r)?;
                stalls.push(format!(
                    "rank {r} waits in {what}; rank {peer} has finalized, but its process \
                     (pid {}) still runs holding a view of them",
                    procs[peer as usize].pid
                ));
            }
        }
        if !stalls.is_empty() {
            if self.stall_said {
                return None;
            }
            self.stall_said = true;
            return Some(Found::Stall(format!(
                "shmrun: every rank that can still call shmpi is blocked: {}\nshmrun: the wait \
                 ends when that view is dropped or that process ends; the job goes on",
                stalls.join("; ")
            )));
        }
        // Confirmed: describe it.
        let mut waits = Vec::new();
        let mut colls: Vec<(usize, String, u32)> = Vec::new();
        for &(r, e) in &self.snapshot {
            if e == LINGERING {
                waits.push(format!("rank {r} {LINGERS}"));
                continue;
            }
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
        text.push_str(if lingering.is_empty() {
            "\nshmrun: every live rank is blocked and no message is in flight that could release any of \
             them, so none can ever continue; the job was stopped"
        } else {
            "\nshmrun: every live rank is blocked or has finalized, and no message is in flight that \
             could release any of them, so none can ever continue; the job was stopped"
        });
        Some(Found::Deadlock(text))
    }

    /// The (rank, epoch) of every live rank if all of them sleep in a blocking call or
    /// have finalized (with [`LINGERING`] for those), at least one is blocked, and
    /// every ring into a blocked rank from a live one is empty; `None` otherwise.
    /// Rings into a rank that finalized are not looked at: it reads nothing more.
    fn sample(seg: &Segment, procs: &[RankProc]) -> Option<Vec<(usize, u64)>> {
        let live: Vec<usize> = (0..procs.len())
            .filter(|&r| procs[r].exit.is_none())
            .collect();
        let mut snap = Vec::with_capacity(live.len());
        for &r in &live {
            let c = seg.ctrl(r);
            let state = seg.state(r);
            if state == STATE_FINALIZED {
                snap.push((r, LINGERING));
                continue;
            }
            if state != STATE_ATTACHED
                || c.wait.op.load(Ordering::Relaxed) == 0
                || c.bell.sleeping.load(Ordering::Relaxed) == 0
            {
                return None;
            }
            snap.push((r, c.wait.epoch.load(Ordering::Relaxed)));
        }
        if snap.iter().all(|&(_, e)| e == LINGERING) {
            return None;
        }
        for &i in &live {
            for &(j, e) in &snap {
                if i != j && e != LINGERING && !seg.ring_is_empty(i, j) {
                    return None;
                }
            }
        }
        Some(snap)
    }
}
