//! Blocking receives and probes through the general path: the unexpected queue first,
//! then progress passes that hand a matching message to the receive in progress.

use rkyv::util::AlignedVec;

use super::deliver::{Direct, DirectState};
use super::{Engine, WaitDesc};
use crate::codec::sent_type_name;
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::matching::{Binding, Matcher, Sink, Unexpected, Want};
use crate::ring::Take;

/// A message a matched probe took out of matching.
pub(crate) enum Claimed {
    /// All of it, out of the unexpected queue or straight from its sender's ring.
    Whole(Envelope, AlignedVec),
    /// Still streaming in: the unexpected message with this id, bound to the probe.
    Bound(u64),
}

/// Which whole messages [`Engine::probe_or_take`] may take straight from a ring.
#[derive(Clone, Copy)]
enum Fast {
    /// Objects of this type id (an object receive).
    Object(u64),
    /// Raw bytes of at most `cap` bytes, a whole number of `elem`-byte elements.
    Bytes { cap: usize, elem: usize },
}

/// What [`Engine::probe_or_take`] found.
enum Probed {
    /// A matching message is in the unexpected queue at this index.
    Queued(usize),
    /// It took a whole message from the ring.
    Took(Envelope, AlignedVec),
}

impl Engine {
    /// Blocking receive into `buf`: the first polls of its peer's ring alone, then the
    /// general path, which alone needs `desc` (built only if the polls decline).
    /// Returns what `status` makes of the received message's envelope, computed on each
    /// path apart so that the fast one hands its envelope over in registers.
    #[inline]
    pub(crate) fn recv_into<'g, S>(
        &mut self,
        m: &Matcher,
        want: &Want,
        buf: &mut [u8],
        desc: impl FnOnce() -> WaitDesc<'g>,
        status: impl FnOnce(&Envelope) -> S,
    ) -> Result<S> {
        if let Some(env) = self.try_recv_whole(m, want, buf) {
            return Ok(status(&env));
        }
        self.recv_slow(*m, *want, buf, &desc())
            .map(|env| status(&env))
    }

    /// The general path of a blocking receive into `buf`, straight from the ring when
    /// the message arrives after the call.
    pub(super) fn recv_slow(
        &mut self,
        m: Matcher,
        want: Want,
        buf: &mut [u8],
        desc: &WaitDesc<'_>,
    ) -> Result<Envelope> {
        let r = self.recv_into_inner(m, want, buf, desc);
        self.end_wait();
        r
    }

    fn recv_into_inner(
        &mut self,
        m: Matcher,
        want: Want,
        buf: &mut [u8],
        desc: &WaitDesc<'_>,
    ) -> Result<Envelope> {
        if let Some(idx) = self.matching.unexpected.find(&m) {
            return self.take_unexpected_into(idx, want, buf, desc);
        }
        let d = Direct {
            m,
            want,
            buf,
            state: DirectState::Open,
        };
        self.recv_direct(d, desc)
    }

    /// Finishes the blocking receive `d`, in whatever state an earlier pass left it.
    pub(super) fn recv_direct(
        &mut self,
        mut d: Direct<'_>,
        desc: &WaitDesc<'_>,
    ) -> Result<Envelope> {
        let (m, want) = (d.m, d.want);
        // A receive of raw bytes from one named peer can take a whole-message record
        // straight from that peer's ring (`take_eager`), without the general delivery.
        let fast_src = match (m.src, want) {
            (Some(s), Want::Bytes { .. }) if s != self.me => Some(s),
            _ => None,
        };
        let mut b = self.backoff();
        let mut steps = 0u32;
        let outcome = loop {
            match d.state {
                DirectState::Done(env) => break Ok(Some(env)),
                DirectState::Refused => break Ok(None),
                DirectState::Open | DirectState::Receiving => {}
            }
            // `take_eager` only while nothing else could claim the message (`may_take`).
            let mut fast_empty = false;
            if let Some(src) = fast_src {
                if d.state == DirectState::Open && self.may_take(src) {
                    match self.take_eager(src, &m, &want, d.buf) {
                        Take::Took(env) => break Ok(Some(env)),
                        Take::Empty => fast_empty = true,
                        Take::Other => {}
                    }
                }
            }
            steps = steps.wrapping_add(1);
            if self.pass_due(fast_empty, &b, steps) {
                if let Err(e) = self.progress(Some(&mut d)) {
                    break Err(e);
                }
                if matches!(d.state, DirectState::Done(_) | DirectState::Refused) {
                    continue;
                }
            }
            if let Err(e) = self.idle(&mut b, desc) {
                break Err(e);
            }
        };
        if d.state == DirectState::Receiving {
            // Failed mid-stream: the rest of the message has nowhere to go.
            self.matching.abandon_direct();
        }
        match outcome? {
            Some(env) => Ok(env),
            None => {
                let idx = self
                    .matching
                    .unexpected
                    .find(&m)
                    .expect("a refused message is queued");
                self.take_unexpected_into(idx, want, d.buf, desc)
            }
        }
    }

    /// Takes unexpected message `idx` into `buf`, waiting for the rest of it if it is
    /// still streaming in. Leaves it queued if it does not fit `want`.
    fn take_unexpected_into(
        &mut self,
        idx: usize,
        want: Want,
        buf: &mut [u8],
        desc: &WaitDesc<'_>,
    ) -> Result<Envelope> {
        let u = self.matching.unexpected.get(idx);
        let comm_src = desc.group.rank_of(u.env.src);
        want.check(&u.env, comm_src, || sent_type_name(&u.data, u.env.type_id))?;
        let u = self.wait_complete(idx, desc)?;
        self.copy_out(&u, buf)?;
        Ok(u.env)
    }

    /// Waits until unexpected message `idx` has all its bytes, then takes it.
    fn wait_complete(&mut self, idx: usize, desc: &WaitDesc<'_>) -> Result<Unexpected> {
        if self.matching.unexpected.get(idx).is_complete() {
            let u = self.matching.unexpected.take(idx);
            self.flush_acks();
            return Ok(u);
        }
        self.matching.unexpected.get_mut(idx).binding = Binding::Blocking;
        let mut b = self.backoff();
        loop {
            let r = self.progress(None).map(|_| {
                let i = self
                    .matching
                    .unexpected
                    .find_bound(Binding::Blocking)
                    .expect("bound message stays queued");
                self.matching.unexpected.get(i).is_complete().then_some(i)
            });
            match r {
                Ok(Some(i)) => {
                    self.end_wait();
                    let u = self.matching.unexpected.take(i);
                    self.flush_acks();
                    return Ok(u);
                }
                Ok(None) => {}
                Err(e) => return Err(self.unbind_blocking(e)),
            }
            if let Err(e) = self.idle(&mut b, desc) {
                return Err(self.unbind_blocking(e));
            }
        }
    }

    fn unbind_blocking(&mut self, e: Error) -> Error {
        if let Some(i) = self.matching.unexpected.find_bound(Binding::Blocking) {
            self.matching.unexpected.get_mut(i).binding = Binding::Free;
        }
        self.end_wait();
        e
    }

    /// Blocking receive of a whole message as bytes (an object's archive, or raw bytes
    /// of a length not known in advance): waits for a match, checks it against `want`,
    /// and takes it.
    pub(crate) fn recv_message(
        &mut self,
        m: Matcher,
        want: Want,
        desc: &WaitDesc<'_>,
    ) -> Result<(Envelope, AlignedVec)> {
        crate::trace::hook!(recv_message(self, m, want, desc));
        let fast = match want {
            Want::Object { type_id, .. } => Some(Fast::Object(type_id)),
            Want::Bytes { cap, elem, .. } => Some(Fast::Bytes { cap, elem }),
        };
        let idx = match self.probe_or_take(m, fast, desc)? {
            Probed::Queued(idx) => idx,
            Probed::Took(env, v) => return Ok((env, v)),
        };
        let u = self.matching.unexpected.get(idx);
        let comm_src = desc.group.rank_of(u.env.src);
        want.check(&u.env, comm_src, || sent_type_name(&u.data, u.env.type_id))?;
        let u = self.wait_complete(idx, desc)?;
        let env = u.env;
        Ok((env, self.data_of(u)?))
    }

    /// Blocks until a message matching `m` has arrived (at least its first record).
    /// Returns its envelope and its index in the unexpected queue.
    pub(crate) fn probe(&mut self, m: Matcher, desc: &WaitDesc<'_>) -> Result<(Envelope, usize)> {
        crate::trace::hook!(probe(self, m, desc));
        let mut b = self.backoff();
        loop {
            if let Some(idx) = self.matching.unexpected.find(&m) {
                self.end_wait();
                return Ok((self.matching.unexpected.get(idx).env, idx));
            }
            self.progress(None).inspect_err(|_| self.end_wait())?;
            if let Some(idx) = self.matching.unexpected.find(&m) {
                self.end_wait();
                return Ok((self.matching.unexpected.get(idx).env, idx));
            }
            self.idle(&mut b, desc).inspect_err(|_| self.end_wait())?;
        }
    }

    /// [`probe`](Self::probe) for a receive from one named peer that takes whole
    /// messages of the kind `fast` allows straight from that peer's ring when one is
    /// the next thing there (as `recv_into_inner` does for bytes into a buffer).
    fn probe_or_take(
        &mut self,
        m: Matcher,
        fast: Option<Fast>,
        desc: &WaitDesc<'_>,
    ) -> Result<Probed> {
        let fast = match (m.src, fast) {
            (Some(s), Some(f)) if s != self.me => Some((s, f)),
            _ => None,
        };
        let Some((src, fast)) = fast else {
            return Ok(Probed::Queued(self.probe(m, desc)?.1));
        };
        let mut b = self.backoff();
        let mut steps = 0u32;
        let r = loop {
            if let Some(idx) = self.matching.unexpected.find(&m) {
                break Ok(Probed::Queued(idx));
            }
            // As in `recv_direct`: only while nothing else could claim it first.
            let mut fast_empty = false;
            if self.may_take(src) {
                let took = match fast {
                    Fast::Object(type_id) => self.take_eager_object(src, &m, type_id),
                    Fast::Bytes { cap, elem } => self.take_eager_bytes(src, &m, cap, elem),
                };
                match took {
                    Take::Took((env, v)) => break Ok(Probed::Took(env, v)),
                    Take::Empty => fast_empty = true,
                    Take::Other => {}
                }
            }
            steps = steps.wrapping_add(1);
            if self.pass_due(fast_empty, &b, steps) {
                if let Err(e) = self.progress(None) {
                    break Err(e);
                }
                if let Some(idx) = self.matching.unexpected.find(&m) {
                    break Ok(Probed::Queued(idx));
                }
            }
            if let Err(e) = self.idle(&mut b, desc) {
                break Err(e);
            }
        };
        self.end_wait();
        r
    }

    /// One progress pass, then: is a message matching `m` there?
    pub(crate) fn iprobe(&mut self, m: Matcher) -> Result<Option<Envelope>> {
        if let Some(idx) = self.matching.unexpected.find(&m) {
            return Ok(Some(self.matching.unexpected.get(idx).env));
        }
        self.progress(None)?;
        if let Some(a) = self.seg.abort_info() {
            return Err(a.to_error("in iprobe"));
        }
        Ok(self
            .matching
            .unexpected
            .find(&m)
            .map(|i| self.matching.unexpected.get(i).env))
    }

    /// Takes unexpected message `idx` out of matching for a matched probe: the whole
    /// message if it is complete, else a binding that no receive can match.
    fn claim(&mut self, idx: usize) -> Result<(Envelope, Claimed)> {
        let u = self.matching.unexpected.get(idx);
        let env = u.env;
        let c = if u.is_complete() {
            let u = self.matching.unexpected.take(idx);
            Claimed::Whole(env, self.data_of(u)?)
        } else {
            Claimed::Bound(self.matching.unexpected.claim(idx))
        };
        self.flush_acks();
        Ok((env, c))
    }

    /// Matched probe (`MPI_Mprobe`): blocks until a message matching `m` is there and
    /// takes it out of matching; a whole raw-bytes message from a named peer straight
    /// from its ring (what a binding's receive of a message of unknown length does).
    pub(crate) fn mprobe(
        &mut self,
        m: Matcher,
        desc: &WaitDesc<'_>,
    ) -> Result<(Envelope, Claimed)> {
        crate::trace::hook!(mprobe(self, m, desc));
        let any = Fast::Bytes {
            cap: usize::MAX,
            elem: 1,
        };
        match self.probe_or_take(m, Some(any), desc)? {
            Probed::Queued(idx) => self.claim(idx),
            Probed::Took(env, v) => Ok((env, Claimed::Whole(env, v))),
        }
    }

    /// Matched probe without blocking (`MPI_Improbe`): one progress pass, then claims a
    /// matching message if one is there.
    pub(crate) fn improbe(&mut self, m: Matcher) -> Result<Option<(Envelope, Claimed)>> {
        crate::trace::hook!(improbe(self, m));
        if self.iprobe(m)?.is_none() {
            return Ok(None);
        }
        let idx = self.matching.unexpected.find(&m).expect("just probed");
        self.claim(idx).map(Some)
    }

    /// Waits until the claimed message `id` has all its bytes, and takes it.
    pub(crate) fn wait_claimed(&mut self, id: u64, desc: &WaitDesc<'_>) -> Result<Unexpected> {
        crate::trace::hook!(wait_claimed(self, id, desc));
        let mut b = self.backoff();
        loop {
            let idx = self
                .matching
                .unexpected
                .position(id)
                .ok_or_else(|| Error::Corrupted("a matched message vanished".into()))?;
            if self.matching.unexpected.get(idx).is_complete() {
                self.end_wait();
                return Ok(self.matching.unexpected.discard(idx));
            }
            self.progress(None).inspect_err(|_| self.end_wait())?;
            if self.matching.unexpected.get(idx).is_complete() {
                continue;
            }
            self.idle(&mut b, desc).inspect_err(|_| self.end_wait())?;
        }
    }

    /// A claimed message's handle was dropped unreceived: discard it, and the rest of
    /// its stream as it arrives.
    pub(crate) fn drop_claimed(&mut self, id: u64) {
        if let Some(idx) = self.matching.unexpected.position(id) {
            let u = self.matching.unexpected.discard(idx);
            if let Some(inf) = self.matching.inflight[u.env.src].as_mut() {
                if inf.sink == Sink::Unexpected(id) {
                    inf.sink = Sink::Discard;
                }
            }
        }
    }
}
