//! Delivery: each record a progress pass drains goes to the earliest matching posted
//! receive, else to the blocking receive in progress, else to the unexpected queue; the
//! rest of a streamed message follows its first record.

use rkyv::util::AlignedVec;

use crate::codec::{PodVec, sent_type_name};
use crate::completions::{Done, RecvData};
use crate::envelope::{Envelope, Kind, Remote, decode_start, offer_envelope};
use crate::error::{Error, Result};
use crate::matching::{
    Active, Binding, Inflight, Matcher, Matching, PostedBuf, Sink, Unexpected, Want,
};
use crate::ring::Record;

/// The buffer of the blocking receive in progress, filled straight from the ring.
pub(crate) struct Direct<'a> {
    pub(crate) m: Matcher,
    pub(crate) want: Want,
    pub(crate) buf: &'a mut [u8],
    pub(crate) state: DirectState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirectState {
    /// No message matched yet.
    Open,
    /// A streamed message matched; more chunks to come.
    Receiving,
    /// The whole message is in the buffer.
    Done(Envelope),
    /// A matching message could not go into the buffer; it is in the unexpected queue.
    Refused,
}

impl Matching {
    pub(super) fn finish(&mut self, id: u64, done: Done) {
        self.done.finish(id, done);
    }

    /// A message sent to this rank by itself: delivered whole, at once.
    pub(super) fn deliver_local(&mut self, env: Envelope, data: &[u8]) -> Result<()> {
        self.deliver_start(env, data, &mut None)
    }

    /// A synchronous send to this rank by itself (its acknowledgement is queued to
    /// self, which `flush_acks` handles without a ring).
    pub(super) fn deliver_sync_local(
        &mut self,
        env: Envelope,
        data: &[u8],
        token: u64,
    ) -> Result<()> {
        self.deliver_sync_start(env, data, &mut None, token)
    }

    pub(super) fn on_record(
        &mut self,
        src: usize,
        rec: Record<'_>,
        direct: &mut Option<&mut Direct<'_>>,
    ) -> Result<()> {
        let corrupt = |what: &str| Error::Corrupted(format!("ring from rank {src}: {what}"));
        let kind = Kind::from_u8(rec.kind)
            .ok_or_else(|| corrupt(&format!("unknown record kind {}", rec.kind)))?;
        match decode_start(kind, &rec.words, rec.payload.len(), src) {
            Some(env) => {
                // A streamed message may fit in its first chunk (the eager limit is
                // below the chunk size): that first record then completes it.
                if env.len < rec.payload.len() {
                    return Err(corrupt("message length smaller than its first chunk"));
                }
                if let Some(inf) = &self.inflight[src] {
                    let Sink::SyncNext(token) = inf.sink else {
                        return Err(corrupt(
                            "a new message started before the previous one ended",
                        ));
                    };
                    self.inflight[src] = None;
                    return self.deliver_sync_start(env, rec.payload, direct, token);
                }
                self.deliver_start(env, rec.payload, direct)
            }
            None => match kind {
                Kind::Sync => {
                    if self.inflight[src].is_some() {
                        return Err(corrupt("a synchronous send inside another message"));
                    }
                    // Marks the ring busy until the message comes, so that the receive
                    // fast paths (which check `inflight`) leave it to this path.
                    self.inflight[src] = Some(Inflight {
                        env: Envelope {
                            ctx: 0,
                            src,
                            tag: 0,
                            len: 0,
                            type_id: 0,
                        },
                        got: 0,
                        sink: Sink::SyncNext(rec.words[0]),
                    });
                    Ok(())
                }
                Kind::Ack => self.on_ack(src, rec.words[0]),
                Kind::Offer => {
                    if self.inflight[src].is_some() {
                        return Err(corrupt("an offer inside another message"));
                    }
                    let r = Remote::from_payload(rec.payload)
                        .ok_or_else(|| corrupt("an offer of the wrong length"))?;
                    self.deliver_offer(offer_envelope(&rec.words, src), r, direct);
                    Ok(())
                }
                _ => self.deliver_cont(src, rec.payload, direct),
            },
        }
    }

    /// Delivers the start of a synchronous send's message: acknowledged at once if a
    /// receive takes it, else queued with its token until one does.
    pub(super) fn deliver_sync_start(
        &mut self,
        env: Envelope,
        chunk: &[u8],
        direct: &mut Option<&mut Direct<'_>>,
        token: u64,
    ) -> Result<()> {
        let queued = self.unexpected.len();
        self.deliver_start(env, chunk, direct)?;
        if self.unexpected.len() > queued {
            self.unexpected.set_sync_last(token);
        } else {
            self.unexpected.acks.push((env.src, token));
        }
        Ok(())
    }

    /// The receiver of synchronous send `token` matched it.
    pub(super) fn on_ack(&mut self, src: usize, token: u64) -> Result<()> {
        let Some(s) = self.sync.get_mut(&token) else {
            return Err(Error::Corrupted(format!(
                "ring from rank {src}: acknowledgement of unknown synchronous send {token:#x}"
            )));
        };
        s.acked = true;
        if s.pushed.is_some() {
            let s = self.sync.remove(&token).expect("present");
            self.finish(token, Done::Sent(s.pushed.expect("checked")));
        }
        Ok(())
    }

    /// All of synchronous send `token`'s bytes are in the ring (or delivered locally).
    pub(super) fn sync_pushed(&mut self, token: u64, back: Option<PodVec>) {
        let Some(s) = self.sync.get_mut(&token) else {
            return;
        };
        if s.acked {
            self.sync.remove(&token);
            self.finish(token, Done::Sent(back));
        } else {
            s.pushed = Some(back);
        }
    }

    /// Delivers the first chunk of a message: to the earliest posted receive that
    /// matches, else to the blocking receive in progress, else to the unexpected queue.
    fn deliver_start(
        &mut self,
        env: Envelope,
        chunk: &[u8],
        direct: &mut Option<&mut Direct<'_>>,
    ) -> Result<()> {
        let complete = chunk.len() == env.len;
        let mut i = 0;
        while i < self.posted.len() {
            if !self.posted[i].m.matches(&env) {
                i += 1;
                continue;
            }
            // The earliest posted receive usually matches: pop it without VecDeque's
            // general removal.
            let p = if i == 0 {
                self.posted.pop_front()
            } else {
                self.posted.remove(i)
            }
            .expect("index checked");
            let comm_src = p.group.rank_of(env.src);
            if let Err(e) = p
                .want
                .check(&env, comm_src, || sent_type_name(chunk, env.type_id))
            {
                // This receive cannot take it; it fails, and the message stays available.
                self.finish(p.id, Done::Failed(e));
                continue;
            }
            let buf = match p.buf {
                PostedBuf::Pod(mut b) => {
                    b.bytes_mut()[..chunk.len()].copy_from_slice(chunk);
                    RecvData::Pod(b)
                }
                PostedBuf::Object => {
                    // The length comes from shared memory: do not trust it for a big
                    // allocation before the bytes arrive.
                    let mut v = AlignedVec::with_capacity(env.len.min(64 << 20));
                    v.extend_from_slice(chunk);
                    RecvData::Object(v)
                }
            };
            if complete {
                self.finish(p.id, Done::Recv { env, data: buf });
            } else {
                self.active.insert(p.id, Active { env, buf });
                self.inflight[env.src] = Some(Inflight {
                    env,
                    got: chunk.len(),
                    sink: Sink::Active(p.id),
                });
            }
            return Ok(());
        }
        if let Some(d) = direct.as_deref_mut() {
            if d.state == DirectState::Open && d.m.matches(&env) {
                if d.want.check(&env, 0, String::new).is_ok() {
                    d.buf[..chunk.len()].copy_from_slice(chunk);
                    if complete {
                        d.state = DirectState::Done(env);
                    } else {
                        d.state = DirectState::Receiving;
                        self.inflight[env.src] = Some(Inflight {
                            env,
                            got: chunk.len(),
                            sink: Sink::Direct,
                        });
                    }
                    return Ok(());
                }
                d.state = DirectState::Refused;
            }
        }
        let id = self.unexpected.push(env, chunk);
        if !complete {
            self.inflight[env.src] = Some(Inflight {
                env,
                got: chunk.len(),
                sink: Sink::Unexpected(id),
            });
        }
        Ok(())
    }

    /// Delivers an offered message: to the earliest posted receive that matches, else
    /// to the blocking receive in progress (each copies it from the sender's buffer),
    /// else to the unexpected queue.
    fn deliver_offer(&mut self, env: Envelope, r: Remote, direct: &mut Option<&mut Direct<'_>>) {
        let mut i = 0;
        while i < self.posted.len() {
            if !self.posted[i].m.matches(&env) {
                i += 1;
                continue;
            }
            let p = self.posted.remove(i).expect("index checked");
            let comm_src = p.group.rank_of(env.src);
            if let Err(e) = p
                .want
                .check(&env, comm_src, || sent_type_name(&[], env.type_id))
            {
                self.finish(p.id, Done::Failed(e));
                continue;
            }
            let done = self.fill_offered(p.buf, env, &r);
            self.finish(p.id, done);
            return;
        }
        if let Some(d) = direct.as_deref_mut() {
            if d.state == DirectState::Open && d.m.matches(&env) {
                // A failed read leaves the offer queued: the receive takes it from
                // there and reports the error.
                if d.want.check(&env, 0, String::new).is_ok()
                    && super::offer::read_into(&env, &r, d.buf, self.split_ctx()).is_ok()
                {
                    self.unexpected.acks.push((env.src, r.token));
                    d.state = DirectState::Done(env);
                    return;
                }
                d.state = DirectState::Refused;
            }
        }
        self.unexpected.push_offer(env, r);
    }

    /// Delivers the next chunk of the message streaming in from `src`.
    fn deliver_cont(
        &mut self,
        src: usize,
        chunk: &[u8],
        direct: &mut Option<&mut Direct<'_>>,
    ) -> Result<()> {
        let corrupt = |what: &str| Error::Corrupted(format!("ring from rank {src}: {what}"));
        let inf = self.inflight[src]
            .as_mut()
            .ok_or_else(|| corrupt("a continuation without a message"))?;
        let off = inf.got;
        if off + chunk.len() > inf.env.len {
            return Err(corrupt("a message longer than its envelope says"));
        }
        inf.got += chunk.len();
        let (env, sink, complete) = (inf.env, inf.sink, inf.got == inf.env.len);
        if complete {
            self.inflight[src] = None;
        }
        match sink {
            Sink::Direct => match direct.as_deref_mut() {
                Some(d) if d.state == DirectState::Receiving => {
                    d.buf[off..off + chunk.len()].copy_from_slice(chunk);
                    if complete {
                        d.state = DirectState::Done(env);
                    }
                }
                _ => return Err(corrupt("streamed message lost its receive buffer")),
            },
            Sink::Active(id) => {
                let a = self
                    .active
                    .get_mut(&id)
                    .ok_or_else(|| corrupt("streamed message lost its request"))?;
                match &mut a.buf {
                    RecvData::Pod(b) => {
                        b.bytes_mut()[off..off + chunk.len()].copy_from_slice(chunk)
                    }
                    RecvData::Object(v) => v.extend_from_slice(chunk),
                }
                if complete {
                    let a = self.active.remove(&id).expect("present");
                    self.finish(
                        id,
                        Done::Recv {
                            env: a.env,
                            data: a.buf,
                        },
                    );
                }
            }
            Sink::Unexpected(id) => {
                let (idx, done) = self
                    .unexpected
                    .append(id, chunk)
                    .ok_or_else(|| corrupt("streamed message vanished"))?;
                if done {
                    if let Binding::Request(rid) = self.unexpected.get(idx).binding {
                        let u = self.unexpected.take(idx);
                        let p = self.bound.remove(&rid).expect("bound request");
                        self.finish(rid, fill(p.buf, u));
                    }
                }
            }
            Sink::Discard => {}
            Sink::SyncNext(_) => return Err(corrupt("a continuation without a message")),
        }
        Ok(())
    }

    /// The blocking receive filling from a stream gave up: drop the rest.
    pub(super) fn abandon_direct(&mut self) {
        for inf in self.inflight.iter_mut().flatten() {
            if inf.sink == Sink::Direct {
                inf.sink = Sink::Discard;
            }
        }
    }
}

/// Fills a posted receive's buffer from a complete unexpected message.
pub(super) fn fill(buf: PostedBuf, u: Unexpected) -> Done {
    match buf {
        PostedBuf::Pod(mut b) => {
            b.bytes_mut()[..u.data.len()].copy_from_slice(&u.data);
            Done::Recv {
                env: u.env,
                data: RecvData::Pod(b),
            }
        }
        PostedBuf::Object => Done::Recv {
            env: u.env,
            data: RecvData::Object(u.data),
        },
    }
}
