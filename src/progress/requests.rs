//! Requests: posting a non-blocking receive, testing, waiting for, cancelling and
//! forgetting a request by id.

use std::rc::Rc;

use super::Engine;
use super::deliver::fill;
use super::{WaitDesc, WaitOp};
use crate::call::Call;
use crate::codec::sent_type_name;
use crate::completions::Done;
use crate::error::{Error, Result};
use crate::matching::{Binding, Group, Matcher, Posted, PostedBuf, Sink, Want};

impl Engine {
    /// Posts a non-blocking receive. Returns its request id.
    pub(crate) fn irecv(
        &mut self,
        m: Matcher,
        want: Want,
        buf: PostedBuf,
        group: Rc<Group>,
    ) -> u64 {
        crate::trace::hook!(irecv(self, m, want, buf, group));
        let id = self.new_id();
        let Some(idx) = self.matching.unexpected.find(&m) else {
            // Built in place in the queue, not moved there.
            self.matching.posted.push_back(Posted {
                id,
                group,
                m,
                want,
                buf,
            });
            return id;
        };
        let p = Posted {
            id,
            group,
            m,
            want,
            buf,
        };
        let u = self.matching.unexpected.get(idx);
        let comm_src = p.group.rank_of(u.env.src);
        if let Err(e) = want.check(&u.env, comm_src, || sent_type_name(&u.data, u.env.type_id)) {
            self.matching.finish(id, Done::Failed(e));
        } else if u.is_complete() {
            let u = self.matching.unexpected.take(idx);
            let done = match u.remote {
                Some(r) => self.matching.fill_offered(p.buf, u.env, &r),
                None => fill(p.buf, u),
            };
            self.matching.finish(id, done);
            self.flush_acks();
        } else {
            self.matching.unexpected.get_mut(idx).binding = Binding::Request(id);
            self.matching.bound.insert(id, p);
        }
        id
    }

    /// Takes the result of request `id` if it has finished.
    pub(crate) fn take_done(&mut self, id: u64) -> Option<Done> {
        crate::trace::hook!(take_done(self, id));
        self.matching.done.take(id)
    }

    pub(crate) fn is_done(&self, id: u64) -> bool {
        self.matching.done.is_done(id)
    }

    /// The result of request `id`, if it has finished, left in place.
    pub(crate) fn peek_done(&self, id: u64) -> Option<&Done> {
        self.matching.done.peek(id)
    }

    /// Withdraws receive `id` if no message has started filling it: a posted receive,
    /// or one bound to a message still streaming into the unexpected queue (which
    /// becomes free for the next matching receive, in its place in arrival order).
    fn unpost(&mut self, id: u64) -> Option<Posted> {
        if let Some(i) = self.matching.posted.iter().position(|p| p.id == id) {
            return self.matching.posted.remove(i);
        }
        let p = self.matching.bound.remove(&id)?;
        if let Some(i) = self.matching.unexpected.find_bound(Binding::Request(id)) {
            self.matching.unexpected.get_mut(i).binding = Binding::Free;
        }
        Some(p)
    }

    /// Cancels receive `id` (`MPI_Cancel`) if no message has started filling it: it
    /// then finishes as cancelled, with its buffer, and a message it would have matched
    /// goes to the next matching receive. Returns whether it was cancelled (a send, a
    /// finished request or a receive already filling is not).
    pub(crate) fn cancel(&mut self, id: u64) -> bool {
        if self.matching.done.is_done(id) {
            return false;
        }
        let Some(p) = self.unpost(id) else {
            return false;
        };
        let buf = match p.buf {
            PostedBuf::Pod(b) => Some(b),
            PostedBuf::Object => None,
        };
        self.matching.finish(id, Done::Cancelled(buf));
        true
    }

    /// A request handle was dropped: cancel its receive, or let its send finish
    /// unobserved.
    pub(crate) fn forget(&mut self, id: u64) {
        if self.matching.done.orphan(id) {
            return; // it had finished: its result is dropped
        }
        // An orphan now; a receive that has not started is cancelled instead.
        if self.unpost(id).is_some() {
            self.matching.done.close(id);
        }
    }

    /// The rank request `id` still moves bytes of its buffer to or from, if it does:
    /// a send not all in the ring, or offered and not yet read, a receive posted or
    /// bound to a message (its source, `None` for any), or one filling from a streamed
    /// message.
    fn holder(&self, id: u64) -> Option<Option<usize>> {
        if let Some(d) = self.queued_send(id) {
            return Some(Some(d));
        }
        if let Some(d) = self.matching.sync.get(&id).and_then(|s| s.offer_to) {
            return Some(Some(d));
        }
        if let Some(p) = self.matching.posted.iter().find(|p| p.id == id) {
            return Some(p.m.src);
        }
        if let Some(p) = self.matching.bound.get(&id) {
            return Some(p.m.src);
        }
        self.matching.active.get(&id).map(|a| Some(a.env.src))
    }

    /// Makes sure the engine no longer reads or writes the buffer of request `id` (a
    /// scoped request whose scope ends). With `wait`, it runs progress until the
    /// operation has moved all its bytes, as a wait would; without (the scope ends by
    /// an error or a panic), a receive no message has reached is cancelled and a send
    /// not all in the ring takes a copy of its bytes, so only a receive already filling
    /// is waited for. If waiting fails (its peer died, the job was aborted), the
    /// operation is cut loose from the buffer all the same, then the error returned.
    pub(crate) fn settle(&mut self, id: u64, wait: bool) -> Result<()> {
        // A request that finished, or whose result was taken, holds nothing: the
        // common case, decided without looking through the queues.
        if !self.matching.done.is_under_way(id) || self.holder(id).is_none() {
            return Ok(());
        }
        if !wait {
            if self.unpost(id).is_some() {
                self.matching.finish(id, Done::Cancelled(None));
            }
            self.own_queued_send(id);
        }
        let world = Group::world(self.size());
        let mut b = self.backoff();
        while let Some(peer) = self.holder(id) {
            // Named as the program started it (a receive or a send, its tag and
            // communicator), not as a bare wait.
            let (call, tag, ctx, group) = self.settled(id);
            let desc = WaitDesc {
                op: WaitOp::Wait,
                call,
                peer,
                tag,
                ctx,
                group: group.as_deref().unwrap_or(&world),
            };
            let r = match self.progress(None) {
                Ok(()) if self.holder(id).is_some() => self.idle(&mut b, &desc),
                r => r,
            };
            if let Err(e) = r {
                self.end_wait();
                self.cut_loose(id);
                return Err(e);
            }
        }
        self.end_wait();
        Ok(())
    }

    /// What a scope's end waits for in request `id`: the call, tag and context of its
    /// receive (with its communicator's ranks) or send.
    fn settled(&self, id: u64) -> (Call, i32, u32, Option<Rc<Group>>) {
        let posted = self.matching.posted.iter().find(|p| p.id == id);
        if let Some(p) = posted.or_else(|| self.matching.bound.get(&id)) {
            let tag = p.m.tag.unwrap_or(crate::comm::ANY_TAG);
            return (Call::IrecvInto, tag, p.m.ctx, Some(p.group.clone()));
        }
        if let Some(a) = self.matching.active.get(&id) {
            return (Call::IrecvInto, a.env.tag, a.env.ctx, None);
        }
        match self.queued_envelope(id) {
            Some(env) => (Call::IsendSlice, env.tag, env.ctx, None),
            None => (Call::IsendSlice, crate::comm::ANY_TAG, 0, None),
        }
    }

    /// Detaches request `id` from its buffer whatever its state (its wait failed, or a
    /// persistent receive that writes into its own buffer was dropped while active): a
    /// send copies its bytes, a receive is withdrawn, and a message filling it is
    /// dropped as it arrives.
    pub(crate) fn cut_loose(&mut self, id: u64) {
        self.own_queued_send(id);
        // An offer whose wait failed: its reader left, or the job is ending.
        if self
            .matching
            .sync
            .get(&id)
            .is_some_and(|s| s.offer_to.is_some())
        {
            self.matching.sync.remove(&id);
            self.matching.finish(
                id,
                Done::Failed(Error::Usage(
                    "the send was abandoned at the end of its scope".into(),
                )),
            );
        }
        if self.unpost(id).is_some() {
            self.matching.finish(id, Done::Cancelled(None));
        }
        if self.matching.active.remove(&id).is_some() {
            for inf in self.matching.inflight.iter_mut().flatten() {
                if inf.sink == Sink::Active(id) {
                    inf.sink = Sink::Discard;
                }
            }
            self.matching.finish(
                id,
                Done::Failed(Error::Usage(
                    "the receive was abandoned at the end of its scope".into(),
                )),
            );
        }
    }

    /// Whether request `id`'s operation is still under way (not finished).
    pub(crate) fn is_under_way(&self, id: u64) -> bool {
        self.matching.done.is_under_way(id)
    }

    /// A request handle was let go without cancelling: the operation goes on, its
    /// result is dropped.
    pub(crate) fn detach(&mut self, id: u64) {
        self.matching.done.orphan(id);
    }

    /// Blocks until request `id` finishes.
    #[inline]
    pub(crate) fn wait(&mut self, id: u64, desc: &WaitDesc<'_>) -> Result<Done> {
        self.wait_with(id, desc, |d| d.take().expect("a result"))
    }

    /// Blocks until request `id` finishes and hands its result to `then` where it was
    /// made: a `Done` built from the ring and returned would be copied whole by its
    /// caller while its fields are still being stored, which stalls (`crate::out`).
    #[inline]
    pub(crate) fn wait_with<R>(
        &mut self,
        id: u64,
        desc: &WaitDesc<'_>,
        then: impl FnOnce(&mut Option<Done>) -> R,
    ) -> Result<R> {
        if crate::trace::hooked() {
            return crate::trace::hooks::wait(self, id, desc).map(|d| then(&mut Some(d)));
        }
        // A posted receive whose message is next in its ring, before any wait state
        // (it has no result yet: its slot need not be looked at).
        let mut d = self.take_posted_whole(id);
        if d.is_some() {
            return Ok(then(&mut d));
        }
        // A finished request (most of a `wait_all` after its first waits) is taken
        // without the wait loop's setup and frame.
        let mut d = self.matching.done.take(id);
        if d.is_some() {
            return Ok(then(&mut d));
        }
        let mut d = Some(self.wait_loop(id, desc)?);
        Ok(then(&mut d))
    }

    #[inline(never)]
    fn wait_loop(&mut self, id: u64, desc: &WaitDesc<'_>) -> Result<Done> {
        let mut b = self.backoff();
        loop {
            if let Some(d) = self.matching.done.take(id) {
                self.end_wait();
                return Ok(d);
            }
            if let Some(d) = self.take_posted_whole(id) {
                self.end_wait();
                return Ok(d);
            }
            self.progress(None).inspect_err(|_| self.end_wait())?;
            if let Some(d) = self.matching.done.take(id) {
                self.end_wait();
                return Ok(d);
            }
            self.idle(&mut b, desc).inspect_err(|_| self.end_wait())?;
        }
    }
}
