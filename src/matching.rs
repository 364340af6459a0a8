//! Matching messages to receives: the unexpected-message queue, the posted
//! non-blocking receives, and the (context, source, tag) rule with wildcards.
//!
//! MPI's rules, which this module keeps:
//! - A receive matches on communicator context, source (or any source) and tag (or
//!   any tag).
//! - Among messages from one sender on one communicator, the earliest matching one is
//!   taken (non-overtaking): the unexpected queue is in arrival order, and arrival
//!   order per sender is send order because each pair has one FIFO ring.
//! - A new message goes to the earliest posted receive that matches it; only if none
//!   does is it queued as unexpected.
//!
//! A receive that cannot take the message it matched (buffer too short, a different
//! object type) fails with an error and leaves the message queued: nothing is lost.
//!
//! A synchronous send's message carries the sender's token (`Unexpected::sync`) while
//! it waits in the unexpected queue; the receive that takes it, or the matched probe
//! that claims it (`Binding::Matched`), queues the acknowledgement (`acks`) that the
//! engine sends back. Merely arriving in the queue acknowledges nothing.
//!
//! An offered message (`Unexpected::remote`) has no bytes here: they stay in the
//! sender's buffer until a receive takes the message and copies them from there
//! (`progress/offer.rs`: `Engine::copy_out`, `Engine::data_of`,
//! `Matching::fill_offered`), or until this rank, blocked, copies them here so that
//! the sender can go on (`Engine::fetch_offers`). Either acknowledges the offer.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use rkyv::util::AlignedVec;

use crate::codec::PodVec;
use crate::completions::{Completions, RecvData};
use crate::envelope::{Envelope, Remote};
use crate::error::Error;

/// What a receive accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Matcher {
    pub(crate) ctx: u32,
    /// World rank, or `None` for any source.
    pub(crate) src: Option<usize>,
    /// `None` for any tag.
    pub(crate) tag: Option<i32>,
}

impl Matcher {
    #[inline]
    pub(crate) fn matches(&self, env: &Envelope) -> bool {
        self.src.is_none_or(|s| s == env.src) && self.matches_ctx_tag(env.ctx, env.tag)
    }

    /// The context and tag half of [`matches`](Self::matches), for a record whose
    /// source is known.
    #[inline]
    pub(crate) fn matches_ctx_tag(&self, ctx: u32, tag: i32) -> bool {
        ctx == self.ctx && self.tag.is_none_or(|t| t == tag)
    }
}

/// What a receive wants the message to be.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Want {
    /// Raw bytes, at most `cap` of them, a whole number of `elem`-byte elements.
    Bytes {
        cap: usize,
        elem: usize,
        elem_type: &'static str,
    },
    /// An object of this type.
    Object {
        type_id: u64,
        type_name: &'static str,
    },
}

impl Want {
    /// Checks that a message with envelope `env` can be taken by this receive. `sent`
    /// gives the sender's type name for the error message.
    pub(crate) fn check(
        &self,
        env: &Envelope,
        comm_src: i32,
        sent: impl FnOnce() -> String,
    ) -> Result<(), Error> {
        match *self {
            Want::Bytes {
                cap,
                elem,
                elem_type,
            } => {
                if env.type_id != 0 {
                    return Err(Error::TypeMismatch {
                        source_rank: comm_src,
                        tag: env.tag,
                        sent: sent(),
                        expected: elem_type,
                    });
                }
                if env.len > cap {
                    return Err(Error::Truncated {
                        source_rank: comm_src,
                        tag: env.tag,
                        message_len: env.len,
                        buffer_len: cap,
                    });
                }
                if elem > 1 && env.len % elem != 0 {
                    return Err(Error::ElementSize {
                        source_rank: comm_src,
                        tag: env.tag,
                        message_len: env.len,
                        elem_size: elem,
                        elem_type,
                    });
                }
                Ok(())
            }
            Want::Object { type_id, type_name } => {
                if env.type_id != type_id {
                    return Err(Error::TypeMismatch {
                        source_rank: comm_src,
                        tag: env.tag,
                        sent: sent(),
                        expected: type_name,
                    });
                }
                Ok(())
            }
        }
    }
}

/// Who will take an unexpected message once all its bytes are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Binding {
    /// Nobody yet: any matching receive may take it.
    Free,
    /// The blocking call in progress.
    Blocking,
    /// The non-blocking receive with this request id.
    Request(u64),
    /// A matched probe (`mprobe`): only its `Message` may take it.
    Matched,
}

/// A message that arrived before a receive asked for it.
pub(crate) struct Unexpected {
    pub(crate) id: u64,
    pub(crate) env: Envelope,
    pub(crate) data: AlignedVec,
    pub(crate) binding: Binding,
    /// The token of a synchronous send, 0 for an ordinary message.
    pub(crate) sync: u64,
    /// An offered message: where its bytes are (`data` is empty).
    pub(crate) remote: Option<Remote>,
}

impl Unexpected {
    /// Whether a receive can take it now: all its bytes are here, or it is an offer.
    pub(crate) fn is_complete(&self) -> bool {
        self.data.len() == self.env.len || self.remote.is_some()
    }
}

/// Messages that arrived before their receive, in arrival order.
#[derive(Default)]
pub(crate) struct UnexpectedQueue {
    q: VecDeque<Unexpected>,
    next_id: u64,
    /// Acknowledgements owed for synchronous sends matched here and offers read:
    /// (world rank of the sender, its token), until the engine sends them.
    pub(crate) acks: Vec<(usize, u64)>,
    /// How many queued messages are offers.
    pub(crate) offers: usize,
}

/// Preallocate at most this much for a message whose bytes are still streaming in.
const PREALLOC_MAX: usize = 64 << 20;

impl UnexpectedQueue {
    /// Queues a message whose first `chunk` arrived. Returns its id.
    pub(crate) fn push(&mut self, env: Envelope, chunk: &[u8]) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let mut data = AlignedVec::with_capacity(env.len.min(PREALLOC_MAX).max(chunk.len()));
        data.extend_from_slice(chunk);
        self.q.push_back(Unexpected {
            id,
            env,
            data,
            binding: Binding::Free,
            sync: 0,
            remote: None,
        });
        id
    }

    /// Queues an offered message. Returns its id.
    pub(crate) fn push_offer(&mut self, env: Envelope, remote: Remote) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.offers += 1;
        self.q.push_back(Unexpected {
            id,
            env,
            data: AlignedVec::new(),
            binding: Binding::Free,
            sync: 0,
            remote: Some(remote),
        });
        id
    }

    /// Marks the newest message as a synchronous send's, with its sender's token.
    pub(crate) fn set_sync_last(&mut self, token: u64) {
        if let Some(u) = self.q.back_mut() {
            u.sync = token;
        }
    }

    /// A matched probe claims message `idx`: no receive but its `Message` may take it,
    /// and a synchronous sender learns it was matched.
    pub(crate) fn claim(&mut self, idx: usize) -> u64 {
        let u = &mut self.q[idx];
        u.binding = Binding::Matched;
        if u.sync != 0 {
            self.acks.push((u.env.src, std::mem::take(&mut u.sync)));
        }
        u.id
    }

    /// Index of the message with id `id`.
    pub(crate) fn position(&self, id: u64) -> Option<usize> {
        self.q.iter().position(|u| u.id == id)
    }

    /// Appends the next chunk of message `id`. Returns its index in the queue and whether
    /// it is now complete, or `None` if there is no such message (a corrupt stream).
    pub(crate) fn append(&mut self, id: u64, chunk: &[u8]) -> Option<(usize, bool)> {
        let idx = self.q.iter().rposition(|u| u.id == id)?;
        let u = &mut self.q[idx];
        if u.data.len() + chunk.len() > u.env.len {
            return None;
        }
        u.data.extend_from_slice(chunk);
        Some((idx, u.is_complete()))
    }

    /// Index of the earliest message a receive with `m` may take.
    pub(crate) fn find(&self, m: &Matcher) -> Option<usize> {
        self.q
            .iter()
            .position(|u| u.binding == Binding::Free && m.matches(&u.env))
    }

    pub(crate) fn get(&self, idx: usize) -> &Unexpected {
        &self.q[idx]
    }

    pub(crate) fn get_mut(&mut self, idx: usize) -> &mut Unexpected {
        &mut self.q[idx]
    }

    /// Index of the message bound to `b`.
    pub(crate) fn find_bound(&self, b: Binding) -> Option<usize> {
        self.q.iter().position(|u| u.binding == b)
    }

    /// Takes message `idx` for the receive that matched it (acknowledging a
    /// synchronous send). An offer's bytes are still the sender's: the caller copies
    /// them (`Engine::copy_out`, `data_of`, `fill_offered`), which acknowledges it.
    pub(crate) fn take(&mut self, idx: usize) -> Unexpected {
        let u = self.q.remove(idx).expect("index from find");
        if u.sync != 0 {
            self.acks.push((u.env.src, u.sync));
        }
        if u.remote.is_some() {
            self.offers -= 1;
        }
        u
    }

    /// Removes message `idx` without receiving it (a matched message dropped, or a
    /// synchronous send to self withdrawn): no acknowledgement, but an offer's sender
    /// is released.
    pub(crate) fn discard(&mut self, idx: usize) -> Unexpected {
        let u = self.q.remove(idx).expect("index from find");
        if let Some(r) = u.remote {
            self.offers -= 1;
            self.acks.push((u.env.src, r.token));
        }
        u
    }

    /// Removes every offer without reading it, releasing its sender.
    pub(crate) fn discard_offers(&mut self) {
        let acks = &mut self.acks;
        self.q.retain(|u| {
            let Some(r) = u.remote else { return true };
            acks.push((u.env.src, r.token));
            false
        });
        self.offers = 0;
    }

    /// The queued offers' indices, oldest first.
    pub(crate) fn offer_indices(&self) -> Vec<usize> {
        (0..self.q.len())
            .filter(|&i| self.q[i].remote.is_some())
            .collect()
    }

    /// Marks offer `idx` as copied here: its bytes are now `data`.
    pub(crate) fn fetched(&mut self, idx: usize, data: AlignedVec) {
        let u = &mut self.q[idx];
        if let Some(r) = u.remote.take() {
            self.offers -= 1;
            self.acks.push((u.env.src, r.token));
        }
        u.data = data;
    }

    pub(crate) fn len(&self) -> usize {
        self.q.len()
    }
}

/// Where a posted non-blocking receive puts its message.
pub(crate) enum PostedBuf {
    Pod(PodVec),
    Object,
}

/// A non-blocking receive waiting for its message.
pub(crate) struct Posted {
    pub(crate) id: u64,
    pub(crate) group: std::rc::Rc<Group>,
    pub(crate) m: Matcher,
    pub(crate) want: Want,
    pub(crate) buf: PostedBuf,
}

/// The ranks of a communicator: its rank -> world rank, and back.
#[derive(Debug)]
pub(crate) struct Group {
    /// World rank of each communicator rank.
    pub(crate) ranks: Vec<usize>,
    /// Communicator rank of each world rank, -1 for non-members.
    pub(crate) inv: Vec<i32>,
}

impl Group {
    pub(crate) fn new(ranks: Vec<usize>, world_size: usize) -> Self {
        let mut inv = vec![-1; world_size];
        for (i, &w) in ranks.iter().enumerate() {
            inv[w] = i as i32;
        }
        Group { ranks, inv }
    }

    pub(crate) fn world(n: usize) -> Self {
        Group::new((0..n).collect(), n)
    }

    /// Communicator rank of world rank `w` (-1 if not a member).
    #[inline]
    pub(crate) fn rank_of(&self, w: usize) -> i32 {
        self.inv.get(w).copied().unwrap_or(-1)
    }

    pub(crate) fn size(&self) -> usize {
        self.ranks.len()
    }
}

/// Where the rest of a streamed message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sink {
    Unexpected(u64),
    Direct,
    Active(u64),
    Discard,
    /// No message yet: a `Sync` record with this token announced the next one.
    SyncNext(u64),
}

pub(crate) struct Inflight {
    pub(crate) env: Envelope,
    pub(crate) got: usize,
    pub(crate) sink: Sink,
}

/// A non-blocking receive that matched a streamed message still arriving.
pub(crate) struct Active {
    pub(crate) env: Envelope,
    pub(crate) buf: RecvData,
}

/// Matching state: everything `progress` delivers into. Split from the rings so that a
/// record borrowed from a ring can be delivered without copying it first.
#[derive(Default)]
pub(crate) struct Matching {
    pub(crate) unexpected: UnexpectedQueue,
    /// Non-blocking receives in posting order.
    pub(crate) posted: VecDeque<Posted>,
    /// Non-blocking receives bound to a streamed unexpected message.
    pub(crate) bound: IdMap<Posted>,
    /// Non-blocking receives filling from a streamed message.
    pub(crate) active: IdMap<Active>,
    /// Per source: the streamed message in progress.
    pub(crate) inflight: Vec<Option<Inflight>>,
    /// Request ids, and the results of finished requests until they are taken.
    pub(crate) done: Completions,
    /// This rank's synchronous sends waiting for their acknowledgement, by token (their
    /// request id).
    pub(crate) sync: IdMap<SyncSend>,
    /// Where large offers read into a buffer are split with their sender (`None`: they
    /// are read whole; see `progress/offer.rs`).
    pub(crate) split: Option<crate::progress::SplitCtx>,
}

/// A synchronous send: complete once all its bytes are in the ring and the receiver
/// acknowledged the match (either may come first). Also an offered send: complete
/// once the receiver acknowledged that it copied the bytes.
#[derive(Default)]
pub(crate) struct SyncSend {
    /// Its bytes are all in the ring; the buffer to hand back, if any.
    pub(crate) pushed: Option<Option<PodVec>>,
    pub(crate) acked: bool,
    /// An offer to this world rank: `pushed` holds the buffer it reads until the
    /// acknowledgement.
    pub(crate) offer_to: Option<usize>,
}

/// Request ids are this process's own sequential numbers, not attacker-chosen keys:
/// a multiplicative hash (Fibonacci hashing, spreading the bits to the top ones that
/// hashbrown's control bytes use) is enough, and much cheaper per lookup than the
/// default SipHash.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Request id -> state.
pub(crate) type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn env(src: usize, tag: i32) -> Envelope {
        Envelope {
            ctx: 0,
            src,
            tag,
            len: 1,
            type_id: 0,
        }
    }

    #[test]
    fn wildcards_match_any_source_and_any_tag_but_not_another_context() {
        let any = Matcher {
            ctx: 0,
            src: None,
            tag: None,
        };
        assert!(any.matches(&env(3, 7)));
        assert!(!Matcher { ctx: 1, ..any }.matches(&env(3, 7)));
        assert!(
            Matcher {
                ctx: 0,
                src: Some(3),
                tag: None
            }
            .matches(&env(3, 9))
        );
        assert!(
            !Matcher {
                ctx: 0,
                src: Some(2),
                tag: None
            }
            .matches(&env(3, 9))
        );
        assert!(
            !Matcher {
                ctx: 0,
                src: None,
                tag: Some(1)
            }
            .matches(&env(3, 9))
        );
    }

    #[test]
    fn find_takes_the_earliest_free_match() {
        let mut q = UnexpectedQueue::default();
        q.push(env(1, 5), b"a");
        q.push(env(2, 5), b"b");
        q.push(env(1, 6), b"c");
        let m = Matcher {
            ctx: 0,
            src: None,
            tag: Some(5),
        };
        assert_eq!(q.find(&m), Some(0));
        q.get_mut(0).binding = Binding::Blocking;
        assert_eq!(q.find(&m), Some(1));
        assert_eq!(
            q.find(&Matcher {
                ctx: 0,
                src: Some(1),
                tag: None
            }),
            Some(2)
        );
    }

    #[test]
    fn streamed_messages_complete_when_every_byte_is_in() {
        let mut q = UnexpectedQueue::default();
        let id = q.push(
            Envelope {
                len: 5,
                ..env(0, 0)
            },
            b"ab",
        );
        assert_eq!(q.append(id, b"cd"), Some((0, false)));
        assert_eq!(q.append(id, b"e"), Some((0, true)));
        assert_eq!(q.append(id, b"f"), None, "overlong stream is refused");
        assert_eq!(&q.get(0).data[..], b"abcde");
    }

    #[test]
    fn want_checks_size_and_type() {
        let e = Envelope {
            len: 12,
            ..env(0, 3)
        };
        let bytes = Want::Bytes {
            cap: 16,
            elem: 4,
            elem_type: "u32",
        };
        assert!(bytes.check(&e, 0, String::new).is_ok());
        let short = Want::Bytes {
            cap: 8,
            elem: 4,
            elem_type: "u32",
        };
        assert!(matches!(
            short.check(&e, 0, String::new),
            Err(Error::Truncated { .. })
        ));
        let f64s = Want::Bytes {
            cap: 16,
            elem: 8,
            elem_type: "f64",
        };
        assert!(matches!(
            f64s.check(&e, 0, String::new),
            Err(Error::ElementSize { .. })
        ));
        let obj = Want::Object {
            type_id: 9,
            type_name: "T",
        };
        assert!(matches!(
            obj.check(&e, 0, String::new),
            Err(Error::TypeMismatch { .. })
        ));
    }
}
