//! The fast paths (the counterpart of Open MPI's fast box): where nothing else could
//! claim a message, a whole small message is pushed as one record or taken straight
//! from its ring, without a progress pass.

use rkyv::util::AlignedVec;

use super::Engine;
use crate::completions::{Done, RecvData};
use crate::doorbell;
use crate::doorbell::Backoff;
use crate::envelope::{Envelope, Kind, start_words, unpack_ctx_tag};
use crate::matching::{Matcher, PostedBuf, Want};
use crate::ring::{Consumer, Take};
use crate::segment::Segment;

impl Engine {
    /// The common case of a blocking send in few steps, before [`send`](Self::send) builds
    /// anything a wait would need: a message to a peer, nothing queued to it, and the
    /// whole message fits in one record in the ring's free space. Returns false, having
    /// sent nothing, otherwise.
    #[inline]
    pub(crate) fn try_send_whole(&mut self, dest: usize, env: &Envelope, data: &[u8]) -> bool {
        if dest == self.me || data.len() > self.sizes.eager_max || !self.queues[dest].is_empty() {
            return false;
        }
        let (kind, words, nw) = start_words(env, true);
        let prod = self.producers[dest].as_mut().expect("ring to a peer");
        let at = prod.tail();
        if !prod.try_push_whole(kind as u8, &words[..nw], data) {
            return false;
        }
        // A reply (a send after a receive, as in a ping-pong): its line goes to the
        // shared cache at once, where the polling receiver finds it a little sooner.
        // Streams keep their lines until they are full (`Producer::write`).
        if std::mem::take(&mut self.after_recv) {
            prod.demote_at(at);
        }
        doorbell::notify(&self.seg.ctrl(dest).bell);
        self.end_wait();
        true
    }

    /// The first polls of a blocking receive from one peer, before `recv_into` builds
    /// its wait description, in a loop of their own: no wait state, no backoff, no
    /// progress passes. While nothing else could claim the peer's next record (no
    /// unexpected message, `may_take`) and no send is queued, spins on that ring alone
    /// for up to `FAST_POLLS` polls (within the spin phase the general loop would start
    /// with) and takes the record if it is a whole raw-bytes message that `m` and
    /// `want` accept. `None`, having changed nothing, otherwise: `recv_into` takes over.
    /// It is a loop of its own, and only for raw bytes, because at this size the code's
    /// layout matters as much as its length (see docs/performance.md).
    #[inline]
    pub(crate) fn try_recv_whole(
        &mut self,
        m: &Matcher,
        want: &Want,
        buf: &mut [u8],
    ) -> Option<Envelope> {
        let src = m.src?;
        if src == self.me
            || self.matching.unexpected.len() != 0
            || !self.may_take(src)
            || !self.pending_dests.is_empty()
        {
            return None;
        }
        for _ in 0..self.fast_polls {
            match self.take_eager(src, m, want, buf) {
                Take::Took(env) => {
                    self.after_recv = true;
                    return Some(env);
                }
                Take::Empty => doorbell::pause(),
                Take::Other => return None,
            }
        }
        None
    }

    /// A non-blocking receive's fast path as it is posted: where nothing else could
    /// claim the next record from `m`'s source (no unexpected message, no posted
    /// receive, no message of that peer half-way through) and that record is a whole
    /// raw-bytes message that `m` and `want` accept, it goes into `buf` now and the
    /// receive never joins the posted queue. One poll: nothing waits here.
    // Out of line: one copy of the take for every caller, so that the blocking receive's
    // copy keeps its layout (see `take_whole`).
    #[inline(never)]
    pub(crate) fn try_irecv_whole(
        &mut self,
        m: &Matcher,
        want: &Want,
        buf: &mut [u8],
    ) -> Option<Envelope> {
        let src = m.src?;
        if src == self.me || self.matching.unexpected.len() != 0 || !self.may_take(src) {
            return None;
        }
        match self.take_eager(src, m, want, buf) {
            Take::Took(env) => Some(env),
            Take::Empty | Take::Other => None,
        }
    }

    /// The receive fast path for a wait on posted receive `id`: if it is the earliest
    /// posted receive, of plain data from one named peer, and the next record from that
    /// peer is a whole message it matches and accepts, the message goes straight from
    /// the ring into its buffer, without the general delivery of `progress` (its pass
    /// over every ring, the record's decoding, the search of the posted queue, the
    /// result's round trip through its slot). The earliest posted receive is the one a
    /// matching message belongs to, so the order of matching is MPI's. Anything else is
    /// left for `progress`.
    #[inline]
    pub(super) fn take_posted_whole(&mut self, id: u64) -> Option<Done> {
        let env = self.take_into_front(id)?;
        // Only the buffer leaves the queue's entry, not the whole entry.
        let p = self.matching.posted.front_mut().expect("taken into it");
        let PostedBuf::Pod(b) = std::mem::replace(&mut p.buf, PostedBuf::Object) else {
            unreachable!("checked: a plain-data receive")
        };
        self.matching.posted.pop_front();
        self.matching.done.close_pending(id);
        Some(Done::Recv {
            env,
            data: RecvData::Pod(b),
        })
    }

    /// [`take_posted_whole`](Self::take_posted_whole) for a receive that writes into a
    /// view of its owner's buffer (a persistent receive): the message goes into it and
    /// only the envelope comes back; the view is dropped with the queue's entry.
    #[inline]
    pub(crate) fn take_posted_in_place(&mut self, id: u64) -> Option<Envelope> {
        let env = self.take_into_front(id)?;
        self.matching.posted.pop_front();
        self.matching.done.close_pending(id);
        Some(env)
    }

    /// The take of both: if posted receive `id` is the earliest, of plain data from
    /// one named peer, and that peer's next record is a whole message it accepts, the
    /// message goes into its buffer where it stands (the entry stays at the front).
    #[inline(always)]
    fn take_into_front(&mut self, id: u64) -> Option<Envelope> {
        let p = self.matching.posted.front_mut()?;
        let src = p.m.src?;
        if p.id != id
            || src == self.me
            || self.matching.inflight[src].is_some()
            || !self.pending_dests.is_empty()
        {
            return None;
        }
        let PostedBuf::Pod(buf) = &mut p.buf else {
            return None;
        };
        let cons = self.consumers[src].as_mut().expect("ring from a peer");
        match take_eager(cons, &self.seg, src, &p.m, &p.want, buf.bytes_mut()) {
            Take::Took(env) => Some(env),
            Take::Empty | Take::Other => None,
        }
    }

    /// Whether a blocking receive from `src` may take the next record of `src`'s ring
    /// itself: no posted receive and no message of `src` half-way through its ring
    /// could claim it first. (The caller has checked the unexpected queue; while its
    /// receive is open, the progress passes hand a matching message to it, so none
    /// can join the queue in between.)
    #[inline]
    pub(super) fn may_take(&self, src: usize) -> bool {
        self.matching.posted.is_empty() && self.matching.inflight[src].is_none()
    }

    /// Whether a receive spinning on one ring makes a full progress pass (every ring,
    /// the queued sends) at this step: while spinning on an empty ring, every 16th
    /// step; in the yield and sleep phases, and whenever the ring held something the
    /// fast path left, every step.
    #[inline]
    pub(super) fn pass_due(&self, fast_empty: bool, b: &Backoff, steps: u32) -> bool {
        !fast_empty || !b.spinning() || steps % 16 == 0 || !self.pending_dests.is_empty()
    }

    /// [`take_eager`] from `src`'s ring.
    #[inline]
    pub(super) fn take_eager(
        &mut self,
        src: usize,
        m: &Matcher,
        want: &Want,
        buf: &mut [u8],
    ) -> Take<Envelope> {
        let cons = self.consumers[src].as_mut().expect("ring from a peer");
        take_eager(cons, &self.seg, src, m, want, buf)
    }

    /// `take_eager` for an object receive: a whole object message of the wanted type
    /// from `src`, copied out of the ring into a new aligned buffer.
    #[inline]
    pub(super) fn take_eager_object(
        &mut self,
        src: usize,
        m: &Matcher,
        type_id: u64,
    ) -> Take<(Envelope, AlignedVec)> {
        let cons = self.consumers[src].as_mut().expect("ring from a peer");
        let fits = |w: &[u64; 2], _: usize| w[1] == type_id;
        let take = |w: &[u64; 2], payload: &[u8]| {
            let mut v = AlignedVec::with_capacity(payload.len());
            v.extend_from_slice(payload);
            (eager_envelope(src, w[0], payload.len(), type_id), v)
        };
        take_whole(cons, &self.seg, src, m, Kind::EagerTyped, 2, fits, take)
    }

    /// `take_eager` for a receive of unknown length (or a matched probe): a whole
    /// raw-bytes message of at most `cap` bytes, whole `elem`-byte elements, from `src`,
    /// copied out of the ring into a new aligned buffer.
    #[inline]
    pub(super) fn take_eager_bytes(
        &mut self,
        src: usize,
        m: &Matcher,
        cap: usize,
        elem: usize,
    ) -> Take<(Envelope, AlignedVec)> {
        let cons = self.consumers[src].as_mut().expect("ring from a peer");
        let take = |w: &[u64; 2], payload: &[u8]| {
            let mut v = AlignedVec::with_capacity(payload.len());
            v.extend_from_slice(payload);
            (eager_envelope(src, w[0], payload.len(), 0), v)
        };
        let fits = |_: &[u64; 2], len: usize| len <= cap && (elem <= 1 || len % elem == 0);
        take_whole(cons, &self.seg, src, m, Kind::Eager, 1, fits, take)
    }
}

/// Polls of [`Engine::try_recv_whole`] before the general receive loop, which also
/// drains the other rings: many times a round trip between two cores, so that a reply
/// on its way is taken here.
pub(super) const FAST_POLLS: u32 = 64;

/// About what one poll of `try_recv_whole` takes (a `pause` and a load), to keep its
/// polls within a short spin phase (`SHMPI_SPIN_US`).
pub(super) const POLL_NS: u64 = 30;

/// The envelope of a whole-message record from `src` with first header word `w0`.
#[inline]
fn eager_envelope(src: usize, w0: u64, len: usize, type_id: u64) -> Envelope {
    let (ctx, tag) = unpack_ctx_tag(w0);
    Envelope {
        ctx,
        src,
        tag,
        len,
        type_id,
    }
}

/// Takes the next record of `cons` (the ring from `src`) if it is a whole message of
/// kind `kind` (with `nwords` header words) that `m` matches and `fits(words, len)`
/// accepts, handing it to `take`; then wakes the sender if it sleeps waiting for the
/// space just freed (as `progress` does). Anything else stays in the ring for the
/// general path.
// Always inlined: with several callers LLVM takes it out of line, and the blocking
// receive then pays a call per message (docs/performance.md, "Decisions").
#[inline(always)]
#[allow(clippy::too_many_arguments)] // one generic function serves both fast receives
fn take_whole<R>(
    cons: &mut Consumer,
    seg: &Segment,
    src: usize,
    m: &Matcher,
    kind: Kind,
    nwords: usize,
    fits: impl FnOnce(&[u64; 2], usize) -> bool,
    take: impl FnOnce(&[u64; 2], &[u8]) -> R,
) -> Take<R> {
    let accept = |w: &[u64; 2], len: usize| {
        let (ctx, tag) = unpack_ctx_tag(w[0]);
        m.matches_ctx_tag(ctx, tag) && fits(w, len)
    };
    let r = cons.take_if(kind as u8, nwords, accept, take);
    if matches!(r, Take::Took(_)) {
        doorbell::notify_relaxed(&seg.ctrl(src).bell);
    }
    r
}

/// The receive fast path: if the next record of `cons` (the ring from `src`) is a
/// whole raw-bytes message that `m` matches and `want` accepts, copies it into `buf`
/// and consumes it. Anything else (an object, the start of a streamed message, a
/// message for another receive, one that would be an error) is left in the ring for
/// the general path.
#[inline]
pub(super) fn take_eager(
    cons: &mut Consumer,
    seg: &Segment,
    src: usize,
    m: &Matcher,
    want: &Want,
    buf: &mut [u8],
) -> Take<Envelope> {
    let Want::Bytes { cap, elem, .. } = *want else {
        return Take::Other;
    };
    let fits = |_: &[u64; 2], len: usize| len <= cap && (elem <= 1 || len % elem == 0);
    let take = |w: &[u64; 2], payload: &[u8]| {
        crate::ring::copy_from(&mut buf[..payload.len()], payload);
        eager_envelope(src, w[0], payload.len(), 0)
    };
    take_whole(cons, seg, src, m, Kind::Eager, 1, fits, take)
}
