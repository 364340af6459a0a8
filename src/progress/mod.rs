//! The progress engine: one per process. It owns this rank's ends of all rings, the
//! matching state and the queued sends, and it is the only code that moves bytes.
//!
//! [`Engine::progress`] makes one pass:
//! 1. drain every incoming ring in rank order `0, 1, ..., N-1` (at most one ring's
//!    capacity of bytes per ring per pass, so one busy sender cannot starve the others),
//!    delivering each record to a posted receive, the blocking receive in progress, or
//!    the unexpected queue; then wake any sender that sleeps waiting for ring space.
//!    Once the blocking receive in progress has its whole message, the rest of that
//!    ring is left for the next call (it would only be copied into the unexpected
//!    queue: an allocation and a second copy per message);
//! 2. push queued (non-blocking) sends, per destination in order.
//!
//! Every blocked call runs this in a loop (spin, yield, sleep: `doorbell.rs`). Because a
//! blocked call keeps draining its incoming rings into the unexpected queue, a send
//! never waits for a matching receive, only for ring space that the receiver frees as
//! soon as it makes progress: two ranks that send each other large messages before
//! receiving cannot deadlock. A large non-blocking send that is offered instead
//! (`offer.rs`) keeps that promise the same way: a blocked receiver copies the offers
//! waiting in its unexpected queue once it stops spinning.
//!
//! A message that does not fit in one record (`Sizes::eager_max`) streams in chunks through
//! the same ring; the receiver copies each chunk straight into its destination.
//!
//! Fast paths skip the pass where nothing else could claim the message: a blocking
//! send or a non-blocking one pushes a whole small message as one record
//! (`Producer::try_push_whole`); a blocking receive from a named peer first polls that
//! ring alone (`try_recv_whole`); a wait on the earliest posted receive takes its whole
//! message straight from its source's ring (`take_posted_whole`).
//!
//! One file per route a call takes through the engine:
//! 1. `wait.rs`: what a blocked call waits for, and its idle step (spin, yield, sleep);
//! 2. `send.rs`: blocking and non-blocking sends, and `sendrecv`;
//! 3. `recv.rs`: blocking receives and probes through the general path;
//! 4. `fast.rs`: the fast paths, which take or push a whole message in one step;
//! 5. `deliver.rs`: delivery of each record a pass drains, to its receive or the
//!    unexpected queue;
//! 6. `requests.rs`: posting, testing, waiting for and forgetting requests;
//! 7. `offer.rs`: copying an offered message straight from its sender's buffer.

mod deliver;
mod fast;
mod offer;
mod recv;
mod requests;
mod send;
#[cfg(test)]
mod tests;
mod wait;

use std::collections::VecDeque;
use std::rc::Rc;

use crate::call::Call;
use crate::doorbell;
use crate::error::{Error, Result};
use crate::matching::{Group, Matching};
use crate::ring::{Consumer, Producer};
use crate::segment::{STATE_FINALIZED, Segment};
use crate::tuning::{Sizes, Waits};

pub(crate) use crate::segment::WaitOp;
pub(crate) use deliver::{Direct, DirectState};
pub(crate) use offer::SplitCtx;
pub use offer::split_rests_copied;
pub(crate) use recv::Claimed;
pub(crate) use send::{SendBuf, Started};
pub(crate) use wait::WaitDesc;
pub use wait::set_idle_hook;

use fast::{FAST_POLLS, POLL_NS};
use send::PendingSend;

/// The per-process progress engine.
pub(crate) struct Engine {
    producers: Vec<Option<Producer>>,
    consumers: Vec<Option<Consumer>>,
    /// Non-blocking sends per destination, in order.
    queues: Vec<VecDeque<PendingSend>>,
    /// Destinations with a non-empty queue.
    pending_dests: Vec<usize>,
    matching: Matching,
    seg: Rc<Segment>,
    me: usize,
    n: usize,
    sizes: Sizes,
    spin_ns: u64,
    /// Polls of `try_recv_whole`: `FAST_POLLS`, fewer if the spin phase is shorter
    /// than they take (at least 1: `SHMPI_SPIN_US=0` polls once). The general loop's
    /// spin phase comes after them, so they add at most about that phase again before
    /// a receive yields.
    fast_polls: u32,
    /// The spin phase of a collective's wait.
    coll_spin_ns: u64,
    yield_ns: u64,
    wait_published: bool,
    /// Tests that found their requests unfinished (`Engine::test_turn`).
    idle_tests: u32,
    /// A blocking receive took a message since the last send: the next send is likely
    /// a reply its receiver is polling for (see `try_send_whole`).
    after_recv: bool,
    /// Non-blocking sends of plain data from this size are offered (`isend_offer`,
    /// `SHMPI_OFFER_BYTES`); `usize::MAX` where ranks may not read each other's memory.
    offer_min: usize,
    /// The ring's size where it is at least 1 MiB (else `usize::MAX`): a non-blocking
    /// send this large goes through the ring in two-way traffic (`Engine::offers`).
    stream_min: usize,
    /// This process's id, which offers name.
    pid: i32,
}

impl Engine {
    pub(crate) fn new(seg: Rc<Segment>, claim: crate::segment::Claim) -> Self {
        let me = claim.rank();
        let n = seg.nranks();
        let (producers, consumers) = seg.endpoints(claim);
        let sizes = Sizes::for_ring(seg.layout().ring_bytes);
        let oversubscribed = seg.oversubscribed();
        let Waits {
            spin_ns,
            coll_spin_ns,
            yield_ns,
        } = Waits::for_job(oversubscribed);
        // The same inputs in every rank, so every rank picks the same handshake.
        let rare_sleeps =
            spin_ns.min(coll_spin_ns) + yield_ns >= doorbell::LIGHT_MIN_WAIT.as_nanos() as u64;
        doorbell::enable_light_wakers(!oversubscribed && rare_sleeps);
        let offer_min = if seg.single_copy() {
            crate::tuning::offer_bytes()
        } else {
            usize::MAX
        };
        let stream_min = match seg.layout().ring_bytes {
            r if r >= 1 << 20 => r,
            _ => usize::MAX,
        };
        let mut inflight = Vec::with_capacity(n);
        inflight.resize_with(n, || None);
        Engine {
            producers,
            consumers,
            queues: (0..n).map(|_| VecDeque::new()).collect(),
            pending_dests: Vec::new(),
            matching: Matching {
                inflight,
                split: (offer_min != usize::MAX).then(|| SplitCtx::new(seg.clone(), me)),
                ..Default::default()
            },
            seg,
            me,
            n,
            sizes,
            spin_ns,
            fast_polls: (spin_ns / POLL_NS).clamp(1, FAST_POLLS as u64) as u32,
            coll_spin_ns,
            yield_ns,
            wait_published: false,
            idle_tests: 0,
            after_recv: false,
            offer_min,
            stream_min,
            pid: std::process::id() as i32,
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.n
    }

    pub(crate) fn segment(&self) -> &Rc<Segment> {
        &self.seg
    }

    /// Messages waiting in the unexpected queue (for tests and diagnostics).
    pub(crate) fn unexpected_len(&self) -> usize {
        self.matching.unexpected.len()
    }

    #[inline]
    pub(super) fn new_id(&mut self) -> u64 {
        self.matching.done.open()
    }

    /// One pass: drain incoming rings, then push queued sends.
    pub(crate) fn progress(&mut self, mut direct: Option<&mut Direct<'_>>) -> Result<()> {
        for src in 0..self.n {
            let Some(cons) = self.consumers[src].as_mut() else {
                continue;
            };
            if !cons.has_data() {
                continue;
            }
            let mut budget = self.sizes.drain_budget;
            let mut popped = false;
            loop {
                let rec = match cons.peek() {
                    Ok(Some(r)) => r,
                    Ok(None) => break,
                    Err(e) => return Err(Error::Corrupted(format!("ring from rank {src}: {e}"))),
                };
                let len = rec.payload.len();
                self.matching.on_record(src, rec, &mut direct)?;
                cons.advance();
                popped = true;
                // The blocking receive has its message: leave the rest of this ring
                // for the next call instead of copying it into the unexpected queue
                // (an allocation and a second copy each). The caller returns at once;
                // every blocked call still drains, so no sender can starve.
                if direct
                    .as_ref()
                    .is_some_and(|d| matches!(d.state, DirectState::Done(_)))
                {
                    break;
                }
                if len >= budget {
                    break;
                }
                budget -= len;
            }
            if popped {
                // The sender may sleep waiting for the space we just freed. No fence
                // here (this is on every receive's critical path): a sender that
                // announced its sleep in the same instant is covered by its short
                // sleep slice (see `doorbell::SPACE_SLICE`).
                doorbell::notify_relaxed(&self.seg.ctrl(src).bell);
                // Matching a synchronous send's record owes its sender an
                // acknowledgement (only records popped here can owe one).
                if !self.matching.unexpected.acks.is_empty() {
                    self.flush_acks();
                }
            }
        }
        if !self.pending_dests.is_empty() {
            self.push_queued();
        }
        Ok(())
    }

    /// Flushes queued sends and leaves the job. Called once, when the last handle goes.
    pub(crate) fn finalize(&mut self) {
        let group = Group::world(self.n);
        let desc = WaitDesc {
            op: WaitOp::Finalize,
            call: Call::Finalize,
            peer: None,
            tag: -1,
            ctx: 0,
            group: &group,
        };
        let mut b = self.backoff();
        self.flush_acks();
        // Offers here that nothing received are released, and this rank's own offers
        // kept readable until their receivers read or release them (or leave).
        if self.matching.unexpected.offers > 0 {
            self.drop_offers();
        }
        while !self.pending_dests.is_empty() || self.prune_offers_out() {
            if self.progress(None).is_err() || self.seg.abort_info().is_some() {
                break;
            }
            if self.matching.unexpected.offers > 0 {
                self.drop_offers();
            }
            // Sends to ranks that left can never complete.
            let seg = self.seg.clone();
            let queues = &mut self.queues;
            self.pending_dests.retain(|&d| {
                let gone = seg.departed(d).is_some();
                if gone {
                    queues[d].clear();
                }
                !gone
            });
            if (self.pending_dests.is_empty() && !self.prune_offers_out())
                || self.idle(&mut b, &desc).is_err()
            {
                break;
            }
        }
        self.end_wait();
        if std::thread::panicking() {
            // Its peers' errors say it failed, not that it finished.
            self.seg.mark_panicked(self.me);
        }
        self.seg.set_state(self.me, STATE_FINALIZED);
        for p in 0..self.n {
            if p != self.me {
                doorbell::notify(&self.seg.ctrl(p).bell);
            }
        }
    }
}

impl Drop for Engine {
    /// The last handle is gone: the rank finishes (`MPI_Finalize`).
    fn drop(&mut self) {
        self.finalize();
    }
}
