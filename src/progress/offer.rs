//! Offers: a large non-blocking send of plain data leaves its bytes in the sender's
//! buffer and sends an `Offer` record saying where they are (`Engine::isend_offer`).
//! The receive that matches it copies them straight into its own buffer
//! (`process_vm_readv`: one copy, where the ring takes two) and acknowledges, which
//! completes the send.
//!
//! A send must not wait for a matching receive that this rank's peer posts only
//! after it (MPI lets it; shmpi's eager sends never do, and programs rely on it): so a
//! rank that blocks with offers in its unexpected queue copies them here at its first
//! idle step after spinning (`fetch_offers`), as the ring would have, and releases
//! their senders; a finalizing rank releases the ones nobody received.
//!
//! A large offer (`SHMPI_SPLIT_BYTES`, 128 KiB) read into a receive's buffer (or a new
//! vector) is split (`read_split`): the receiver proposes in its control block that the
//! sender write the rest of the message into the buffer (`process_vm_writev`) while it
//! reads the front, and flags the sender's ask word (waking the sender if it sleeps in
//! a wait). A sender blocked in shmpi sees the flag at its next idle step and claims
//! the rest by compare-and-swap
//! (`Engine::help_splits`; not a sender with non-blocking receives of its own posted,
//! nor for a receiver with offers of its own out: two-way traffic); the receiver, done
//! with the front, claims it in turn and reads it itself if the sender did not, so a
//! sender that is computing is never waited for, and once the sender has claimed, the
//! receiver waits for its copy (or its death) before the buffer goes back to its
//! program. One copy, on both cores, as a broadcast at 2 ranks does.
//!
//! | word | writer | reader | ordering |
//! |---|---|---|---|
//! | `Split` description | receiver, before proposing | sender, after seeing the proposal | Relaxed, published by `state` |
//! | `Split::state` PROPOSED | receiver (Release) | sender (Acquire) | the description before it |
//! | `split_ask` | receiver (Release), after PROPOSED | sender (swap, Acquire) | the proposal before it |
//! | `Split::state` claims | CAS by either (AcqRel) | the loser (Acquire) | one claim per proposal: the sequence number in the word |
//! | `Split::state` DONE/FAILED | sender (Release), after its copy | receiver (Acquire) | the copied bytes before it |

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use rkyv::util::AlignedVec;

use super::Engine;
use crate::completions::{Done, RecvData};
use crate::envelope::{Envelope, Remote};
use crate::error::{Error, Result};
use crate::matching::{Matching, PostedBuf, Unexpected};
use crate::segment::{
    SPLIT_BITS, SPLIT_CODE, SPLIT_DONE, SPLIT_FAILED, SPLIT_IDLE, SPLIT_PROPOSED, SPLIT_RECEIVER,
    SPLIT_SENDER, Segment, Split,
};

/// How many rests of split copies this process has copied as the sender (Relaxed
/// throughout: a count that only this thread of this process reads back).
static RESTS_COPIED: AtomicU64 = AtomicU64::new(0);

/// How many rests of split copies of its offers this process has copied into their
/// receivers' buffers (see `progress/offer.rs`). Not part of the API: for the tests
/// that check the split happens.
#[doc(hidden)]
pub fn split_rests_copied() -> u64 {
    RESTS_COPIED.load(Ordering::Relaxed)
}

/// What a receive needs to propose a split: the segment, this rank, and the size from
/// which offers are split (`SHMPI_SPLIT_BYTES`).
pub(crate) struct SplitCtx {
    seg: Rc<Segment>,
    me: usize,
    min: usize,
}

impl SplitCtx {
    pub(crate) fn new(seg: Rc<Segment>, me: usize) -> Self {
        let min = crate::tuning::split_bytes();
        SplitCtx { seg, me, min }
    }
}

/// Reads offered message `env` (from `r`) into `dst`, its whole length, at `off` bytes
/// into it.
fn read_at(env: &Envelope, r: &Remote, off: usize, dst: &mut [u8]) -> Result<()> {
    crate::sys::cma::read(r.pid, r.addr as usize + off, dst).map_err(|err| Error::Os {
        what: format!(
            "receiving {} bytes from world rank {} (tag {}) straight from its buffer \
             (process {}, process_vm_readv): the sender may have exited before its send \
             completed; SHMPI_CMA=0 copies through the shared segment instead",
            env.len, env.src, env.tag, r.pid
        ),
        source: err,
    })
}

/// Reads offered message `env` into `dst` (`env.len` bytes), split with its sender when
/// `split` says where and the message is large.
pub(super) fn read_into(
    env: &Envelope,
    r: &Remote,
    dst: &mut [u8],
    split: Option<&SplitCtx>,
) -> Result<()> {
    let dst = &mut dst[..env.len];
    let got = match split {
        Some(s) if env.len >= s.min && s.me != env.src => read_split(&s.seg, s.me, env, r, dst),
        _ => read_at(env, r, 0, dst),
    };
    got.map_err(|e| sender_gone(e, env, split))
}

/// A read that failed because the sender's process is gone (`ESRCH`) is that peer's
/// failure, named as the launcher records it when it reaps the process (soon after;
/// waited for up to 2 s), not the system's error.
#[cold]
fn sender_gone(e: Error, env: &Envelope, split: Option<&SplitCtx>) -> Error {
    let (Error::Os { source, .. }, Some(s)) = (&e, split) else {
        return e;
    };
    if source.raw_os_error() != Some(libc::ESRCH) {
        return e;
    }
    let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        if let Some(how) = s.seg.departed(env.src) {
            return Error::PeerFailed {
                rank: env.src,
                how,
                while_doing: format!(
                    "receiving {} bytes (tag {}) straight from its buffer",
                    env.len, env.tag
                ),
            };
        }
        if std::time::Instant::now() > until {
            return e;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Reads offered message `env` into `dst`, the front here while the sender, if it
/// claims the rest first, writes the rest (see the module doc).
fn read_split(seg: &Segment, me: usize, env: &Envelope, r: &Remote, dst: &mut [u8]) -> Result<()> {
    let sp = &seg.ctrl(me).life.split;
    let (len, base) = (dst.len(), dst.as_ptr() as usize);
    // Cut on a cache line of `dst`, which both write, so that no line is written twice.
    let from = ((base + len / 2) & !63) - base;
    // Relaxed: only this rank starts proposals, and the last one is over.
    let seq = (sp.state.load(Ordering::Relaxed) >> SPLIT_BITS) + 1;
    let at = |code: u64| seq << SPLIT_BITS | code;
    sp.sender.store(env.src as u64, Ordering::Relaxed);
    sp.token.store(r.token, Ordering::Relaxed);
    sp.dst.store((base + from) as u64, Ordering::Relaxed);
    sp.from.store(from as u64, Ordering::Relaxed);
    sp.len.store(len as u64, Ordering::Relaxed);
    // SYNC POINT split (Release): the description before the proposal.
    sp.state.store(at(SPLIT_PROPOSED), Ordering::Release);
    // SYNC POINT split (Release): the proposal before the sender's flag.
    seg.ctrl(env.src).life.split_ask.store(1, Ordering::Release);
    // A sender asleep in its wait is woken to take its half (one that is computing
    // is not waited for: see the claims below).
    crate::doorbell::notify(&seg.ctrl(env.src).bell);
    let front = read_at(env, r, 0, &mut dst[..from]);
    // SYNC POINT split (AcqRel): this rank's claim of the rest; a failed one acquires
    // the sender's.
    let claimed = sp.state.compare_exchange(
        at(SPLIT_PROPOSED),
        at(SPLIT_RECEIVER),
        Ordering::AcqRel,
        Ordering::Acquire,
    );
    let rest = match claimed {
        Ok(_) => read_at(env, r, from, &mut dst[from..]),
        Err(_) => match wait_for_sender(seg, sp, at(SPLIT_DONE), at(SPLIT_FAILED), env) {
            Ok(true) => Ok(()),
            Ok(false) => read_at(env, r, from, &mut dst[from..]),
            Err(e) => Err(e),
        },
    };
    // Relaxed: nobody claims a proposal that is over, and the next one publishes itself.
    sp.state.store(at(SPLIT_IDLE), Ordering::Relaxed);
    front.and(rest)
}

/// Waits until the sender that claimed the rest of a split has copied it (`true`) or
/// could not (`false`); an error if it died meanwhile, as its copy may be partial.
fn wait_for_sender(
    seg: &Segment,
    sp: &Split,
    done: u64,
    failed: u64,
    env: &Envelope,
) -> Result<bool> {
    let mut turns = 0u32;
    loop {
        // SYNC POINT split (Acquire): the sender's copy before its DONE.
        let s = sp.state.load(Ordering::Acquire);
        if s == done {
            return Ok(true);
        }
        if s == failed {
            return Ok(false);
        }
        if let Some(how) = seg.departed(env.src) {
            return Err(Error::PeerFailed {
                rank: env.src,
                how,
                while_doing: format!(
                    "receiving {} bytes (tag {}) that it was copying into this rank's buffer",
                    env.len, env.tag
                ),
            });
        }
        turns = turns.wrapping_add(1);
        if turns % 64 == 0 {
            crate::doorbell::yield_now();
        } else {
            crate::doorbell::pause();
        }
    }
}

/// Reads offered message `env` into a new vector, in steps of at most 64 MiB, so that
/// a length read from the segment allocates no more than the sender really has; up to
/// 64 MiB at once, split with its sender as [`read_into`] does when `split` allows.
pub(super) fn read_vec(env: &Envelope, r: &Remote, split: Option<&SplitCtx>) -> Result<AlignedVec> {
    if env.len <= 64 << 20 && split.is_some_and(|s| env.len >= s.min) {
        let mut v = AlignedVec::with_capacity(env.len);
        v.resize(env.len, 0);
        read_into(env, r, &mut v, split)?;
        return Ok(v);
    }
    let mut v = AlignedVec::new();
    while v.len() < env.len {
        let off = v.len();
        let n = (env.len - off).min(64 << 20);
        v.resize(off + n, 0);
        read_at(env, r, off, &mut v[off..]).map_err(|e| sender_gone(e, env, split))?;
    }
    Ok(v)
}

impl Matching {
    /// Where a large offer read here may be split with its sender: nowhere while this
    /// rank has offers of its own out, as in two-way traffic each core has its own
    /// messages to read, and the split's second read and its proposal only cost
    /// (`osu_bibw.py` at 128-256 KiB, 10 % slower).
    pub(super) fn split_ctx(&self) -> Option<&SplitCtx> {
        let split = self.split.as_ref()?;
        (!self.sync.values().any(|s| s.offer_to.is_some())).then_some(split)
    }

    /// Fills posted receive buffer `buf` from offered message `env` and acknowledges the
    /// offer (also when the read fails: the sender must not wait for a receive that
    /// has ended).
    pub(super) fn fill_offered(&mut self, buf: PostedBuf, env: Envelope, r: &Remote) -> Done {
        let got = match buf {
            PostedBuf::Pod(mut b) => {
                read_into(&env, r, b.bytes_mut(), self.split_ctx()).map(|()| RecvData::Pod(b))
            }
            PostedBuf::Object => read_vec(&env, r, self.split_ctx()).map(RecvData::Object),
        };
        self.unexpected.acks.push((env.src, r.token));
        match got {
            Ok(data) => Done::Recv { env, data },
            Err(e) => Done::Failed(e),
        }
    }
}

impl Engine {
    /// The bytes of unexpected message `u`, taken by a receive: its own, or an offer's,
    /// copied from the sender (and acknowledged).
    pub(super) fn data_of(&mut self, u: Unexpected) -> Result<AlignedVec> {
        let Some(r) = u.remote else {
            return Ok(u.data);
        };
        let v = read_vec(&u.env, &r, self.matching.split_ctx());
        self.matching.unexpected.acks.push((u.env.src, r.token));
        self.flush_acks();
        v
    }

    /// Copies unexpected message `u`, taken by a receive, into `buf`.
    pub(super) fn copy_out(&mut self, u: &Unexpected, buf: &mut [u8]) -> Result<()> {
        let Some(r) = u.remote else {
            buf[..u.data.len()].copy_from_slice(&u.data);
            return Ok(());
        };
        let got = read_into(&u.env, &r, buf, self.matching.split_ctx());
        self.matching.unexpected.acks.push((u.env.src, r.token));
        self.flush_acks();
        got
    }

    /// Copies every offer in the unexpected queue here and releases its sender: this
    /// rank is blocked, and the sender may be waiting for it. An offer that cannot be
    /// read stays queued (a receive that takes it gets the error).
    pub(super) fn fetch_offers(&mut self) {
        for idx in self.matching.unexpected.offer_indices() {
            let u = self.matching.unexpected.get(idx);
            let (env, r) = (u.env, u.remote.expect("an offer"));
            if let Ok(v) = read_vec(&env, &r, None) {
                self.matching.unexpected.fetched(idx, v);
            }
        }
        self.flush_acks();
    }

    /// Whether a receiver has asked this rank to copy the rest of one of its offers and
    /// this rank would (a rank with non-blocking receives of its own posted leaves the
    /// copy to the receiver: in two-way traffic each core has its own messages to read,
    /// and helping only delayed them, `osu_bibw.py` at 128-256 KiB). Relaxed: a hint,
    /// which `help_splits` acquires; before a sleep the doorbell's handshake orders it.
    #[inline]
    pub(super) fn split_asked(&self) -> bool {
        self.split_ask().load(Ordering::Relaxed) != 0 && self.matching.posted.is_empty()
    }

    /// This rank's ask word (see the module doc).
    fn split_ask(&self) -> &AtomicU64 {
        &self.seg.ctrl(self.me).life.split_ask
    }

    /// Copies the rest of the split copies that this rank's receivers proposed for its
    /// offers and that this rank claims first (see the module doc): at the idle steps
    /// of blocked calls, when this rank's ask word is set.
    pub(super) fn help_splits(&mut self) {
        // SYNC POINT split (Acquire): pairs with a receiver's Release store after its
        // proposal. The Relaxed load first keeps the usual case to one read.
        if !self.split_asked() || self.split_ask().swap(0, Ordering::Acquire) == 0 {
            return;
        }
        for (&token, s) in &self.matching.sync {
            let (Some(d), false, Some(Some(buf))) = (s.offer_to, s.acked, &s.pushed) else {
                continue;
            };
            let ctrl = self.seg.ctrl(d);
            let sp = &ctrl.life.split;
            // SYNC POINT split (Acquire): the description before the proposal.
            let st = sp.state.load(Ordering::Acquire);
            if st & SPLIT_CODE != SPLIT_PROPOSED
                || sp.sender.load(Ordering::Relaxed) != self.me as u64
                || sp.token.load(Ordering::Relaxed) != token
            {
                continue;
            }
            let bytes = buf.bytes();
            let (dst, from) = (
                sp.dst.load(Ordering::Relaxed),
                sp.from.load(Ordering::Relaxed),
            );
            if sp.len.load(Ordering::Relaxed) != bytes.len() as u64 || from > bytes.len() as u64 {
                continue;
            }
            let seq = st & !SPLIT_CODE;
            // SYNC POINT split (AcqRel): the claim; it fails if the receiver claimed
            // first or has moved on to another proposal (the sequence number).
            if sp
                .state
                .compare_exchange(st, seq | SPLIT_SENDER, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // Relaxed: the receiver's pid was published before it could receive.
            let pid = ctrl.life.pid.load(Ordering::Relaxed);
            let copied = crate::sys::cma::write(pid, dst as usize, &bytes[from as usize..]);
            let code = if copied.is_ok() {
                RESTS_COPIED.fetch_add(1, Ordering::Relaxed);
                SPLIT_DONE
            } else {
                SPLIT_FAILED
            };
            // SYNC POINT split (Release): the copied bytes before DONE.
            sp.state.store(seq | code, Ordering::Release);
        }
    }

    /// Releases the senders of every offer in the unexpected queue without reading
    /// them (this rank finalizes: nothing will receive them).
    pub(super) fn drop_offers(&mut self) {
        self.matching.unexpected.discard_offers();
        self.flush_acks();
    }

    /// Forgets this rank's offers to peers that left (nobody will read them), then
    /// says whether any offer still waits for its reader.
    pub(super) fn prune_offers_out(&mut self) -> bool {
        let seg = &self.seg;
        self.matching
            .sync
            .retain(|_, s| s.offer_to.is_none_or(|d| seg.departed(d).is_none()));
        self.matching.sync.values().any(|s| s.offer_to.is_some())
    }
}
