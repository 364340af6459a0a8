//! Sends: a blocking send waits for ring space running progress passes; a non-blocking
//! one pushes what fits and queues the rest; `sendrecv` overlaps a send and a receive.
//!
//! Synchronous sends (`ssend`, `issend`) push a `Sync` record with their token (their
//! request id) before the message, and complete when the message is all pushed and the
//! receiver's `Ack` record came back (`Matching::sync`). Acknowledgements this rank owes
//! go out as soon as they are queued (`flush_acks`), or behind the sends already queued
//! to the same rank when the ring is full.
//!
//! A large non-blocking send of plain data, where ranks may read each other's memory,
//! pushes an `Offer` record instead of its bytes (`isend_offer`); it completes when the
//! receiver's `Ack` says it copied them (`progress/offer.rs`).

use rkyv::util::AlignedVec;

use super::deliver::{Direct, DirectState};
use super::{Engine, WaitDesc};
use crate::codec::PodVec;
use crate::completions::Done;
use crate::doorbell;
use crate::envelope::{Envelope, Kind, Remote, offer_words, start_words};
use crate::error::{Error, Result};
use crate::matching::{Matcher, SyncSend, Want};
use crate::ring::Producer;
use crate::tuning::Sizes;

/// How a non-blocking operation started: finished at once, with its result, or under
/// way in the request slot `Id`.
pub(crate) enum Started {
    Done(Done),
    Id(u64),
}

impl Started {
    /// The request slot of the operation, opened for a finished one (for callers that
    /// keep ids).
    pub(crate) fn into_id(self, eng: &mut Engine) -> u64 {
        match self {
            Started::Id(id) => id,
            Started::Done(d) => eng.complete_now(d),
        }
    }
}

/// Bytes a queued send still owns.
pub(crate) enum SendBuf {
    Pod(PodVec),
    Bytes(AlignedVec),
    /// A control record with no payload: `Sync` or `Ack` with its token.
    Ctl(Kind, u64),
    /// The `Offer` record of a send whose buffer the receiver reads (`isend_offer`).
    Offer(Remote),
}

impl SendBuf {
    fn bytes(&self) -> &[u8] {
        match self {
            SendBuf::Pod(b) => b.bytes(),
            SendBuf::Bytes(v) => v,
            SendBuf::Ctl(..) | SendBuf::Offer(_) => &[],
        }
    }

    fn into_back(self) -> Option<PodVec> {
        match self {
            SendBuf::Pod(b) => Some(b),
            _ => None,
        }
    }
}

pub(super) struct PendingSend {
    id: u64,
    env: Envelope,
    buf: SendBuf,
    st: SendState,
    /// A synchronous send: complete once acknowledged too.
    sync: bool,
}

/// Pushes a control record (no payload); false if the ring is full.
fn push_ctl(prod: &mut Producer, kind: Kind, token: u64) -> bool {
    prod.push(kind as u8, &[token], &[], 0).is_some()
}

/// Pushes an `Offer` record; false if the ring is full.
fn push_offer(prod: &mut Producer, env: &Envelope, r: &Remote) -> bool {
    let p = r.to_payload();
    prod.push(Kind::Offer as u8, &offer_words(env), &p, p.len())
        .is_some()
}

/// How far a message has been pushed into its ring.
#[derive(Default, Clone, Copy)]
pub(super) struct SendState {
    started: bool,
    sent: usize,
}

impl Engine {
    /// Pushes queued sends as far as ring space allows.
    pub(super) fn push_queued(&mut self) {
        let mut i = 0;
        while i < self.pending_dests.len() {
            let dest = self.pending_dests[i];
            let prod = self.producers[dest].as_mut().expect("no ring to self");
            let queue = &mut self.queues[dest];
            let mut pushed = false;
            while let Some(ps) = queue.front_mut() {
                let (done, any) = match ps.buf {
                    SendBuf::Ctl(kind, token) => {
                        let ok = push_ctl(prod, kind, token);
                        (ok, ok)
                    }
                    SendBuf::Offer(r) => {
                        let ok = push_offer(prod, &ps.env, &r);
                        (ok, ok)
                    }
                    _ => push_message(prod, &self.sizes, &ps.env, ps.buf.bytes(), &mut ps.st),
                };
                pushed |= any;
                if !done {
                    break;
                }
                let ps = queue.pop_front().expect("front exists");
                if let SendBuf::Ctl(..) | SendBuf::Offer(_) = ps.buf {
                    continue;
                }
                let back = ps.buf.into_back();
                if ps.sync {
                    self.matching.sync_pushed(ps.id, back);
                } else {
                    self.matching.finish(ps.id, Done::Sent(back));
                }
            }
            if pushed {
                doorbell::notify(&self.seg.ctrl(dest).bell);
            }
            if queue.is_empty() {
                self.pending_dests.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Sends `data` and returns once all of it is in the ring (or delivered locally):
    /// the one-record push first, then the general path, which alone needs `desc` (so
    /// the caller's wait description is built only when the push declines).
    #[inline]
    pub(crate) fn send<'g>(
        &mut self,
        dest: usize,
        env: Envelope,
        data: &[u8],
        desc: impl FnOnce() -> WaitDesc<'g>,
    ) -> Result<()> {
        if self.try_send_whole(dest, &env, data) {
            return Ok(());
        }
        self.send_slow(dest, env, data, &desc())
    }

    /// [`send`](Self::send) once [`try_send_whole`](Self::try_send_whole) declined.
    fn send_slow(
        &mut self,
        dest: usize,
        env: Envelope,
        data: &[u8],
        desc: &WaitDesc<'_>,
    ) -> Result<()> {
        if dest == self.me {
            return self.matching.deliver_local(env, data);
        }
        let r = self.send_with(dest, env, data, desc, None, None);
        self.end_wait();
        r
    }

    /// A request complete at once with `done` (an operation on `PROC_NULL`).
    pub(crate) fn complete_now(&mut self, done: Done) -> u64 {
        let id = self.new_id();
        self.matching.finish(id, done);
        id
    }

    /// Sends the acknowledgements owed for synchronous sends this rank matched: at once
    /// where the ring has room and nothing is queued before them, else queued.
    pub(crate) fn flush_acks(&mut self) {
        while let Some((dest, token)) = self.matching.unexpected.acks.pop() {
            if dest == self.me {
                // A synchronous send to self: no ring, the sender is this rank.
                let _ = self.matching.on_ack(dest, token);
                continue;
            }
            if self.queues[dest].is_empty() {
                let prod = self.producers[dest].as_mut().expect("ring to a peer");
                if push_ctl(prod, Kind::Ack, token) {
                    doorbell::notify(&self.seg.ctrl(dest).bell);
                    continue;
                }
                self.pending_dests.push(dest);
            }
            self.queues[dest].push_back(PendingSend {
                id: 0,
                env: Envelope {
                    ctx: 0,
                    src: self.me,
                    tag: 0,
                    len: 0,
                    type_id: 0,
                },
                buf: SendBuf::Ctl(Kind::Ack, token),
                st: SendState::default(),
                sync: false,
            });
        }
    }

    /// Synchronous send (`MPI_Ssend`): sends `data` like [`send`](Self::send), then
    /// waits until the receiver has matched it (its acknowledgement came back). `desc`
    /// describes the push, `ack_desc` the wait for the acknowledgement.
    pub(crate) fn ssend(
        &mut self,
        dest: usize,
        env: Envelope,
        data: &[u8],
        desc: &WaitDesc<'_>,
        ack_desc: &WaitDesc<'_>,
    ) -> Result<()> {
        crate::trace::hook!(ssend(self, dest, env, data, desc, ack_desc));
        let id = self.new_id();
        self.matching.sync.insert(id, SyncSend::default());
        let r = if dest == self.me {
            self.ssend_self(id, env, data)
        } else {
            let r = self.send_with(dest, env, data, desc, None, Some(id));
            self.end_wait();
            r
        };
        if let Err(e) = r {
            self.matching.sync.remove(&id);
            self.matching.done.close(id);
            return Err(e);
        }
        self.matching.sync_pushed(id, None);
        match self.wait(id, ack_desc) {
            Ok(Done::Failed(e)) => Err(e),
            Ok(_) => Ok(()),
            Err(e) => {
                // The receiver will never acknowledge (it left, or the job aborted).
                self.matching.sync.remove(&id);
                self.matching.done.close(id);
                Err(e)
            }
        }
    }

    /// A blocking synchronous send to self completes only if a receive posted before it
    /// takes the message; otherwise nothing could ever receive it (MPI: a deadlock), so
    /// the message is withdrawn and the call fails.
    fn ssend_self(&mut self, id: u64, env: Envelope, data: &[u8]) -> Result<()> {
        let queued = self.matching.unexpected.len();
        self.matching.deliver_sync_local(env, data, id)?;
        self.flush_acks();
        if self.matching.unexpected.len() > queued {
            let last = self.matching.unexpected.len() - 1;
            self.matching.unexpected.discard(last);
            return Err(Error::Usage(format!(
                "ssend to self (tag {}) with no matching receive posted before it: no \
                 receive could ever match it (in MPI, a deadlock); post an irecv first \
                 or use issend",
                env.tag
            )));
        }
        Ok(())
    }

    /// Starts a synchronous send (`MPI_Issend`); its request completes once the message
    /// is all in the ring and the receiver has matched it.
    pub(crate) fn issend(&mut self, dest: usize, env: Envelope, buf: SendBuf) -> Result<Started> {
        crate::trace::hook!(isend(self, dest, env, buf, true));
        let id = self.new_id();
        self.matching.sync.insert(id, SyncSend::default());
        if dest == self.me {
            let r = self.matching.deliver_sync_local(env, buf.bytes(), id);
            self.flush_acks();
            match r {
                Ok(()) => self.matching.sync_pushed(id, buf.into_back()),
                Err(e) => {
                    self.matching.sync.remove(&id);
                    self.matching.finish(id, Done::Failed(e));
                }
            }
            return Ok(Started::Id(id));
        }
        let mut st = SendState::default();
        if self.queues[dest].is_empty() {
            let prod = self.producers[dest].as_mut().expect("ring to a peer");
            if push_ctl(prod, Kind::Sync, id) {
                let (done, _) = push_message(prod, &self.sizes, &env, buf.bytes(), &mut st);
                doorbell::notify(&self.seg.ctrl(dest).bell);
                if done {
                    self.matching.sync_pushed(id, buf.into_back());
                    return Ok(Started::Id(id));
                }
            } else {
                self.queues[dest].push_back(PendingSend {
                    id: 0,
                    env,
                    buf: SendBuf::Ctl(Kind::Sync, id),
                    st: SendState::default(),
                    sync: false,
                });
            }
            self.pending_dests.push(dest);
        } else {
            self.queues[dest].push_back(PendingSend {
                id: 0,
                env,
                buf: SendBuf::Ctl(Kind::Sync, id),
                st: SendState::default(),
                sync: false,
            });
        }
        self.queues[dest].push_back(PendingSend {
            id,
            env,
            buf,
            st,
            sync: true,
        });
        Ok(Started::Id(id))
    }

    /// Starts a non-blocking send; the engine owns `buf` until it is all in the ring.
    /// A send that is all in the ring (or delivered to this rank) at once is
    /// [`Started::Done`]: it never gets a request slot.
    pub(crate) fn isend(&mut self, dest: usize, env: Envelope, buf: SendBuf) -> Result<Started> {
        crate::trace::hook!(isend(self, dest, env, buf, false));
        // The blocking send's one-record push first: most small sends end here.
        if self.try_send_whole(dest, &env, buf.bytes()) {
            return Ok(Started::Done(Done::Sent(buf.into_back())));
        }
        if dest == self.me {
            let r = self.matching.deliver_local(env, buf.bytes());
            return Ok(Started::Done(match r {
                Ok(()) => Done::Sent(buf.into_back()),
                Err(e) => Done::Failed(e),
            }));
        }
        let buf = match buf {
            SendBuf::Pod(b) if self.offers(dest, b.bytes().len()) => {
                return Ok(self.isend_offer(dest, env, b));
            }
            b => b,
        };
        let mut st = SendState::default();
        if self.queues[dest].is_empty() {
            let prod = self.producers[dest].as_mut().expect("ring to a peer");
            let (done, any) = push_message(prod, &self.sizes, &env, buf.bytes(), &mut st);
            if any {
                doorbell::notify(&self.seg.ctrl(dest).bell);
            }
            if done {
                return Ok(Started::Done(Done::Sent(buf.into_back())));
            }
            self.pending_dests.push(dest);
        }
        let id = self.new_id();
        self.queues[dest].push_back(PendingSend {
            id,
            env,
            buf,
            st,
            sync: false,
        });
        Ok(Started::Id(id))
    }

    /// Whether a non-blocking send of `len` bytes of plain data to `dest` is offered.
    /// Not a message that streams through a ring of at least 1 MiB while this rank has a
    /// receive from `dest` posted: in two-way traffic each core has its own messages to
    /// read and none is free to share a copy, and through the ring both copies stay in
    /// the caches and pin no pages, where a single-copy read pins the sender's buffer
    /// page by page (`osu_bibw -w` at 1-4 MiB 1.1-1.2x faster; docs/performance.md,
    /// "Decisions").
    fn offers(&self, dest: usize, len: usize) -> bool {
        len >= self.offer_min
            && (len < self.stream_min
                || !self
                    .matching
                    .posted
                    .iter()
                    .any(|p| p.m.src.is_none_or(|s| s == dest)))
    }

    /// Offers `buf` to `dest` (an `Offer` record, queued behind the sends already
    /// queued there): the receive that matches it copies the bytes straight from
    /// `buf`, which the engine holds, with the request open, until the receiver's
    /// `Ack`.
    fn isend_offer(&mut self, dest: usize, env: Envelope, buf: PodVec) -> Started {
        let id = self.new_id();
        let r = Remote {
            pid: self.pid,
            addr: buf.ptr().as_ptr() as u64,
            token: id,
        };
        self.matching.sync.insert(
            id,
            SyncSend {
                pushed: Some(Some(buf)),
                acked: false,
                offer_to: Some(dest),
            },
        );
        if self.queues[dest].is_empty() {
            let prod = self.producers[dest].as_mut().expect("ring to a peer");
            if push_offer(prod, &env, &r) {
                doorbell::notify(&self.seg.ctrl(dest).bell);
                return Started::Id(id);
            }
            self.pending_dests.push(dest);
        }
        self.queues[dest].push_back(PendingSend {
            id: 0,
            env,
            buf: SendBuf::Offer(r),
            st: SendState::default(),
            sync: false,
        });
        Started::Id(id)
    }

    /// The destination of send `id` while part of it is still queued (its buffer not
    /// all in the ring).
    pub(super) fn queued_send(&self, id: u64) -> Option<usize> {
        (0..self.queues.len()).find(|&d| self.queues[d].iter().any(|ps| ps.id == id))
    }

    /// The envelope of queued send `id`.
    pub(super) fn queued_envelope(&self, id: u64) -> Option<Envelope> {
        let mut all = self.queues.iter().flat_map(|q| q.iter());
        all.find(|ps| ps.id == id).map(|ps| ps.env)
    }

    /// Gives queued send `id` its own copy of its bytes, so that it reads the buffer it
    /// was started with no more (a scoped send whose scope ends before it is all in
    /// the ring; it then completes without handing a buffer back).
    pub(super) fn own_queued_send(&mut self, id: u64) {
        for q in &mut self.queues {
            if let Some(ps) = q.iter_mut().find(|ps| ps.id == id) {
                if let SendBuf::Pod(b) = &ps.buf {
                    let mut v = AlignedVec::with_capacity(b.bytes().len());
                    v.extend_from_slice(b.bytes());
                    ps.buf = SendBuf::Bytes(v);
                }
                return;
            }
        }
    }

    /// `send` then `recv_into`, overlapped (`MPI_Sendrecv`): while the send waits for
    /// ring space, the receive takes matching data straight into `buf`, so that two
    /// ranks exchanging long messages copy each byte twice, not three times through
    /// the unexpected queue, and both directions flow at once.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn sendrecv_into(
        &mut self,
        dest: usize,
        env: Envelope,
        data: &[u8],
        m: Matcher,
        want: Want,
        buf: &mut [u8],
        send_desc: &WaitDesc<'_>,
        recv_desc: &WaitDesc<'_>,
    ) -> Result<Envelope> {
        crate::trace::hook!(sendrecv_into(
            self, dest, env, data, m, want, buf, send_desc, recv_desc
        ));
        if dest == self.me
            || data.len() <= self.sizes.eager_max
            || self.matching.unexpected.find(&m).is_some()
        {
            if !self.try_send_whole(dest, &env, data) {
                self.send_slow(dest, env, data, send_desc)?;
            }
            return self.recv_slow(m, want, buf, recv_desc);
        }
        let mut d = Direct {
            m,
            want,
            buf,
            state: DirectState::Open,
        };
        let r = self.send_with(dest, env, data, send_desc, Some(&mut d), None);
        self.end_wait();
        if let Err(e) = r {
            if d.state == DirectState::Receiving {
                self.matching.abandon_direct();
            }
            return Err(e);
        }
        let r = self.recv_direct(d, recv_desc);
        self.end_wait();
        r
    }

    /// The blocking send of `send` and `sendrecv_into`, once the fast path declined: it
    /// waits for ring space running progress passes, which feed the receive `d` (if
    /// any) until it has its message, and drain every ring into the unexpected queue
    /// otherwise, so that no sender can starve. A synchronous send (`sync`: its token)
    /// pushes its `Sync` record first.
    fn send_with(
        &mut self,
        dest: usize,
        env: Envelope,
        data: &[u8],
        desc: &WaitDesc<'_>,
        mut d: Option<&mut Direct<'_>>,
        sync: Option<u64>,
    ) -> Result<()> {
        let mut b = self.backoff();
        let pass = |e: &mut Self, d: &mut Option<&mut Direct<'_>>| match d.as_deref_mut() {
            Some(d) if matches!(d.state, DirectState::Open | DirectState::Receiving) => {
                e.progress(Some(d))
            }
            _ => e.progress(None),
        };
        // Queued non-blocking sends to `dest` go first (non-overtaking).
        while !self.queues[dest].is_empty() {
            pass(self, &mut d)?;
            if self.queues[dest].is_empty() {
                break;
            }
            self.idle(&mut b, desc)?;
        }
        if let Some(token) = sync {
            loop {
                let prod = self.producers[dest].as_mut().expect("ring to a peer");
                if push_ctl(prod, Kind::Sync, token) {
                    break;
                }
                pass(self, &mut d)?;
                self.idle(&mut b, desc)?;
            }
        }
        let mut st = SendState::default();
        loop {
            let prod = self.producers[dest].as_mut().expect("ring to a peer");
            let (done, any) = push_message(prod, &self.sizes, &env, data, &mut st);
            if any {
                doorbell::notify(&self.seg.ctrl(dest).bell);
            }
            if done {
                return Ok(());
            }
            pass(self, &mut d)?;
            self.idle(&mut b, desc)?;
        }
    }
}

/// Pushes as much of a message as the ring takes now. Returns (all pushed, any pushed).
fn push_message(
    prod: &mut Producer,
    t: &Sizes,
    env: &Envelope,
    data: &[u8],
    st: &mut SendState,
) -> (bool, bool) {
    let mut any = false;
    if !st.started {
        let whole = data.len() <= t.eager_max;
        let (kind, words, nw) = start_words(env, whole);
        let n = if whole {
            // The one-record fast path first, as blocking sends take it.
            if prod.try_push_whole(kind as u8, &words[..nw], data) {
                Some(data.len())
            } else {
                prod.push(kind as u8, &words[..nw], data, data.len())
            }
        } else {
            let first = &data[..t.chunk.min(data.len())];
            prod.push(kind as u8, &words[..nw], first, t.min_part)
        };
        let Some(n) = n else { return (false, false) };
        st.started = true;
        st.sent = n;
        any = true;
    }
    while st.sent < data.len() {
        let end = (st.sent + st.sent.clamp(t.chunk, t.chunk_max)).min(data.len());
        let part = &data[st.sent..end];
        match prod.push(Kind::Cont as u8, &[], part, t.min_part.min(part.len())) {
            Some(n) => {
                st.sent += n;
                any = true;
            }
            None => return (false, any),
        }
    }
    (true, any)
}
