//! Waiting: what a blocked call waits for, its idle step (spin, yield, futex sleep),
//! what it publishes for the launcher's reports, and the check that its peers live.

use std::cell::Cell;
use std::sync::atomic::Ordering;

use super::Engine;
use crate::call::Call;
use crate::doorbell::{self, Backoff, Phase};
use crate::error::{Error, Result};
use crate::matching::Group;
use crate::segment::WaitOp;

/// A test that finds its requests unfinished looks at departed peers once in this many.
const TEST_LOOK_EVERY: u32 = 16;

thread_local! {
    /// Called at each idle step of this thread's blocking calls (`set_idle_hook`).
    static IDLE_HOOK: Cell<Option<fn()>> = const { Cell::new(None) };
}

/// Sets a function that every blocking call made on this thread calls at each of its
/// idle steps, that is once it has found that it must wait (after the first polls)
/// and then while it waits; `None` removes it. For language bindings that hold a lock
/// they must release while a call waits but not around a call that does not (Python's
/// GIL: releasing and retaking it costs more than an 8-byte message): the hook
/// releases it, once, and the binding takes it back when the call returns. The hook
/// runs inside shmpi's engine: it must not call shmpi.
#[doc(hidden)]
pub fn set_idle_hook(hook: Option<fn()>) {
    IDLE_HOOK.with(|h| h.set(hook));
}

/// What a blocked call waits for: used to publish it, to check that the peers it
/// depends on are alive, and to word the error if they are not.
pub(crate) struct WaitDesc<'g> {
    pub(crate) op: WaitOp,
    /// The operation, for messages and the launcher's reports.
    pub(crate) call: Call,
    /// World rank waited on; `None` for any member of `group`.
    pub(crate) peer: Option<usize>,
    /// -1 for any tag.
    pub(crate) tag: i32,
    pub(crate) ctx: u32,
    pub(crate) group: &'g Group,
}

impl WaitDesc<'_> {
    fn describe(&self) -> String {
        let peer = match self.peer {
            Some(p) => format!("{}", self.group.rank_of(p)),
            None => "ANY_SOURCE".into(),
        };
        let tag = if self.tag < 0 {
            "ANY_TAG".into()
        } else {
            self.tag.to_string()
        };
        // A request's wait names its call: a send's peer is its destination.
        let sends = matches!(self.op, WaitOp::Send | WaitOp::SyncSend)
            || (self.op == WaitOp::Wait
                && self.peer.is_some()
                && !self.call.name().contains("recv"));
        match self.op {
            WaitOp::Loan => format!(
                "{}, waiting for world rank {} to give back the loans it holds from this \
                 rank's pool",
                self.call.name(),
                self.peer.map_or(-1, |p| p as i64)
            ),
            _ if sends => format!(
                "{}(dest={peer}, tag={tag}) on context {}",
                self.call.name(),
                self.ctx
            ),
            WaitOp::Collective | WaitOp::Finalize => {
                format!("{} on context {}", self.call.name(), self.ctx)
            }
            _ => format!(
                "{}(source={peer}, tag={tag}) on context {}",
                self.call.name(),
                self.ctx
            ),
        }
    }
}

impl Engine {
    /// Whether anything could be done now: used to re-check before sleeping.
    fn has_work(&mut self, desc: &WaitDesc<'_>) -> bool {
        if self.seg.abort_info().is_some() || self.split_asked() {
            return true;
        }
        if self.consumers.iter().flatten().any(|c| c.has_data()) {
            return true;
        }
        for &d in &self.pending_dests {
            if self.producers[d].as_mut().is_some_and(|p| p.refresh()) {
                return true;
            }
        }
        if desc.op == WaitOp::Send {
            if let Some(p) = desc.peer.and_then(|d| self.producers[d].as_mut()) {
                return p.refresh();
            }
        }
        false
    }

    /// One idle step of a blocked call: spin, yield or sleep, checking in the slower
    /// phases that the job and the peers the call depends on are alive.
    pub(crate) fn idle(&mut self, b: &mut Backoff, desc: &WaitDesc<'_>) -> Result<()> {
        self.idle_until(b, desc, &|| false)
    }

    /// Like [`idle`](Self::idle) for a call that also waits for a condition outside the
    /// rings (a collective's arrival counters): `ready` is re-checked after announcing
    /// a sleep, so a peer that changes it and then rings the doorbell cannot be missed.
    pub(crate) fn idle_until(
        &mut self,
        b: &mut Backoff,
        desc: &WaitDesc<'_>,
        ready: &dyn Fn() -> bool,
    ) -> Result<()> {
        crate::trace::idle();
        if let Some(hook) = IDLE_HOOK.with(Cell::get) {
            hook();
        }
        // A receiver may have proposed that this rank copy part of an offer it reads.
        self.help_splits();
        match b.phase() {
            Phase::Spin => doorbell::pause(),
            Phase::Yield => {
                // Blocked past spinning: release the senders of the offers waiting here.
                if self.matching.unexpected.offers > 0 {
                    self.fetch_offers();
                }
                self.publish_wait(desc);
                self.check_alive_unless(desc, ready)?;
                doorbell::yield_now();
            }
            Phase::Sleep => {
                if self.matching.unexpected.offers > 0 {
                    self.fetch_offers();
                }
                self.publish_wait(desc);
                self.check_alive_unless(desc, ready)?;
                let seg = self.seg.clone();
                // Ring space is announced without a fence: bound the sleep.
                let slice = if desc.op == WaitOp::Send || !self.pending_dests.is_empty() {
                    doorbell::SPACE_SLICE
                } else {
                    doorbell::SLEEP_SLICE
                };
                doorbell::sleep(&seg.ctrl(self.me).bell, slice, || {
                    ready() || self.has_work(desc)
                });
            }
        }
        Ok(())
    }

    pub(crate) fn backoff(&self) -> Backoff {
        Backoff::new(self.spin_ns, self.yield_ns)
    }

    /// The backoff of a collective's wait. When ranks outnumber CPUs, some member of
    /// the collective is not running, and spinning only delays it: yield at once.
    pub(crate) fn collective_backoff(&self) -> Backoff {
        Backoff::new(self.coll_spin_ns, self.yield_ns)
    }

    /// Whether a collective's wait starts by spinning (ranks do not outnumber CPUs).
    pub(crate) fn collective_spins(&self) -> bool {
        self.coll_spin_ns > 0
    }

    fn publish_wait(&mut self, desc: &WaitDesc<'_>) {
        if self.wait_published {
            return;
        }
        let w = &self.seg.ctrl(self.me).wait;
        w.peer
            .store(desc.peer.map_or(-1, |p| p as i32), Ordering::Relaxed);
        w.tag.store(desc.tag, Ordering::Relaxed);
        w.ctx.store(desc.ctx, Ordering::Relaxed);
        w.name.store(desc.call.code(), Ordering::Relaxed);
        w.op.store(desc.op as u32, Ordering::Relaxed);
        w.epoch.fetch_add(1, Ordering::Relaxed);
        self.wait_published = true;
    }

    /// Marks the end of a blocked call.
    pub(crate) fn end_wait(&mut self) {
        if self.wait_published {
            let w = &self.seg.ctrl(self.me).wait;
            w.op.store(0, Ordering::Relaxed);
            w.epoch.fetch_add(1, Ordering::Relaxed);
            self.wait_published = false;
        }
    }

    /// [`Self::check_alive`], but a wait whose condition came true meanwhile succeeds.
    ///
    /// A peer may publish what we wait for and leave between the caller's last look at
    /// `ready` and our look at its state (its last collective step, then `finalize`).
    /// Its departure is read with Acquire after everything it wrote before leaving,
    /// so a second look at `ready` after seeing it gone tells a peer that left early
    /// from one that left after doing its part.
    fn check_alive_unless(&mut self, desc: &WaitDesc<'_>, ready: &dyn Fn() -> bool) -> Result<()> {
        match self.check_alive(desc) {
            Err(_) if ready() => Ok(()),
            r => r,
        }
    }

    /// Fails if the job was aborted or if the peers `desc` depends on have left with
    /// nothing more in flight from them.
    pub(crate) fn check_alive(&mut self, desc: &WaitDesc<'_>) -> Result<()> {
        self.check_alive_doing(desc, "waiting in")
    }

    /// Whether a test that found its requests unfinished should look at departed
    /// peers ([`check_tested`](Self::check_tested)): every [`TEST_LOOK_EVERY`]th such
    /// test, so that a loop of tests pays for it rarely.
    pub(crate) fn test_turn(&mut self) -> bool {
        self.idle_tests = self.idle_tests.wrapping_add(1);
        self.idle_tests % TEST_LOOK_EVERY == 0
    }

    /// [`check_alive`](Self::check_alive) for a test of the request `desc` describes,
    /// so that a loop of tests on a request whose peer has left ends with that error
    /// instead of spinning for ever (the launcher's deadlock check sees only ranks
    /// that block).
    pub(crate) fn check_tested(&mut self, desc: &WaitDesc<'_>) -> Result<()> {
        self.check_alive_doing(desc, "testing")
    }

    fn check_alive_doing(&mut self, desc: &WaitDesc<'_>, doing: &str) -> Result<()> {
        if let Some(a) = self.seg.abort_info() {
            return Err(a.to_error(&format!("in {}", desc.describe())));
        }
        let gone = |this: &Self, p: usize| -> Option<crate::error::Exit> {
            let how = this.seg.departed(p)?;
            // Everything it pushed before leaving is visible now: is any of it unread?
            let unread = this.consumers[p].as_ref().is_some_and(|c| c.has_data())
                || this.matching.inflight[p].is_some();
            if unread { None } else { Some(how) }
        };
        let fail = |p: usize, how| Error::PeerFailed {
            rank: p,
            how,
            while_doing: format!("this rank was {doing} {}", desc.describe()),
        };
        match (desc.op, desc.peer) {
            // A loan's holder that has left may still hold its view until its process
            // ends, and then the block comes back: only the abort above ends that wait
            // (the launcher names the holder once every other rank is blocked too).
            (WaitOp::Loan, _) => {}
            (_, Some(p)) if p != self.me => {
                if desc.op == WaitOp::Send {
                    if let Some(how) = self.seg.departed(p) {
                        return Err(fail(p, how));
                    }
                } else if let Some(how) = gone(self, p) {
                    return Err(fail(p, how));
                }
            }
            // A receive request from `ANY_SOURCE` fails like a blocking receive once
            // every other member has left (the waits over many requests, which name no
            // call of their own, look at each request instead).
            (op, None)
                if matches!(op, WaitOp::Recv | WaitOp::Probe | WaitOp::Collective)
                    || (op == WaitOp::Wait && desc.call.name().contains("recv")) =>
            {
                let others: Vec<usize> = desc
                    .group
                    .ranks
                    .iter()
                    .copied()
                    .filter(|&p| p != self.me)
                    .collect();
                if !others.is_empty() && others.iter().all(|&p| gone(self, p).is_some()) {
                    let p = others[0];
                    return Err(fail(p, gone(self, p).expect("checked")));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wait names its peer as the user's call did: a receive's source, a send's
    /// destination, also when the wait is a request's.
    #[test]
    fn waits_name_a_sends_peer_its_destination() {
        let group = Group::world(3);
        let desc = |op, call, peer| WaitDesc {
            op,
            call,
            peer,
            tag: 4,
            ctx: 0,
            group: &group,
        };
        let cases = [
            (WaitOp::Recv, Call::Recv, Some(1), "recv(source=1, tag=4)"),
            (
                WaitOp::SyncSend,
                Call::Ssend,
                Some(2),
                "ssend(dest=2, tag=4)",
            ),
            (
                WaitOp::Wait,
                Call::IsendVec,
                Some(2),
                "isend_vec(dest=2, tag=4)",
            ),
            (
                WaitOp::Wait,
                Call::IrecvInto,
                Some(1),
                "irecv_into(source=1, tag=4)",
            ),
            (
                WaitOp::Wait,
                Call::Wait,
                None,
                "wait(source=ANY_SOURCE, tag=4)",
            ),
        ];
        for (op, call, peer, want) in cases {
            let got = desc(op, call, peer).describe();
            assert!(got.starts_with(want), "{got} should start with {want}");
        }
    }
}
