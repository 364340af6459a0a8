//! Sends: a blocking send waits for ring space running progress passes; a non-blocking
//! one pushes what fits and queues the rest; `sendrecv` overlaps a send and a receive.

use rkyv::util::AlignedVec;

use super::deliver::{Direct, DirectState};
use super::{Engine, WaitDesc};
use crate::codec::PodVec;
use crate::completions::Done;
use crate::doorbell;
use crate::envelope::{Envelope, Kind, start_words};
use crate::error::Result;
use crate::matching::{Matcher, Want};
use crate::ring::Producer;
use crate::tuning::Sizes;

/// Bytes a queued send still owns.
pub(crate) enum SendBuf {
    Pod(PodVec),
    Bytes(AlignedVec),
}

impl SendBuf {
    fn bytes(&self) -> &[u8] {
        match self {
            SendBuf::Pod(b) => b.bytes(),
            SendBuf::Bytes(v) => v,
        }
    }
}

pub(super) struct PendingSend {
    id: u64,
    env: Envelope,
    buf: SendBuf,
    st: SendState,
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
                let (done, any) =
                    push_message(prod, &self.sizes, &ps.env, ps.buf.bytes(), &mut ps.st);
                pushed |= any;
                if !done {
                    break;
                }
                let ps = queue.pop_front().expect("front exists");
                let back = match ps.buf {
                    SendBuf::Pod(b) => Some(b),
                    SendBuf::Bytes(_) => None,
                };
                self.matching.finish(ps.id, Done::Sent(back));
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
        let r = self.send_with(dest, env, data, desc, None);
        self.end_wait();
        r
    }

    /// Starts a non-blocking send; the engine owns `buf` until it is all in the ring.
    pub(crate) fn isend(&mut self, dest: usize, env: Envelope, buf: SendBuf) -> Result<u64> {
        let id = self.new_id();
        if dest == self.me {
            let r = self.matching.deliver_local(env, buf.bytes());
            let done = match r {
                Ok(()) => Done::Sent(match buf {
                    SendBuf::Pod(b) => Some(b),
                    SendBuf::Bytes(_) => None,
                }),
                Err(e) => Done::Failed(e),
            };
            self.matching.finish(id, done);
            return Ok(id);
        }
        let mut st = SendState::default();
        if self.queues[dest].is_empty() {
            let prod = self.producers[dest].as_mut().expect("ring to a peer");
            let (done, any) = push_message(prod, &self.sizes, &env, buf.bytes(), &mut st);
            if any {
                doorbell::notify(&self.seg.ctrl(dest).bell);
            }
            if done {
                let back = match buf {
                    SendBuf::Pod(b) => Some(b),
                    SendBuf::Bytes(_) => None,
                };
                self.matching.finish(id, Done::Sent(back));
                return Ok(id);
            }
            self.pending_dests.push(dest);
        }
        self.queues[dest].push_back(PendingSend { id, env, buf, st });
        Ok(id)
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
        let r = self.send_with(dest, env, data, send_desc, Some(&mut d));
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
    /// otherwise, so that no sender can starve.
    fn send_with(
        &mut self,
        dest: usize,
        env: Envelope,
        data: &[u8],
        desc: &WaitDesc<'_>,
        mut d: Option<&mut Direct<'_>>,
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
