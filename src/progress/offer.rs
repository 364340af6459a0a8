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

use rkyv::util::AlignedVec;

use super::Engine;
use crate::completions::{Done, RecvData};
use crate::envelope::{Envelope, Remote};
use crate::error::{Error, Result};
use crate::matching::{Matching, PostedBuf, Unexpected};

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

/// Reads offered message `env` into `dst` (`env.len` bytes).
pub(super) fn read_into(env: &Envelope, r: &Remote, dst: &mut [u8]) -> Result<()> {
    read_at(env, r, 0, &mut dst[..env.len])
}

/// Reads offered message `env` into a new vector, in steps of at most 64 MiB, so that
/// a length read from the segment allocates no more than the sender really has.
pub(super) fn read_vec(env: &Envelope, r: &Remote) -> Result<AlignedVec> {
    let mut v = AlignedVec::new();
    while v.len() < env.len {
        let off = v.len();
        let n = (env.len - off).min(64 << 20);
        v.resize(off + n, 0);
        read_at(env, r, off, &mut v[off..])?;
    }
    Ok(v)
}

impl Matching {
    /// Fills posted receive buffer `buf` from offered message `env` and acknowledges the
    /// offer (also when the read fails: the sender must not wait for a receive that
    /// has ended).
    pub(super) fn fill_offered(&mut self, buf: PostedBuf, env: Envelope, r: &Remote) -> Done {
        let got = match buf {
            PostedBuf::Pod(mut b) => read_into(&env, r, b.bytes_mut()).map(|()| RecvData::Pod(b)),
            PostedBuf::Object => read_vec(&env, r).map(RecvData::Object),
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
        let v = read_vec(&u.env, &r);
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
        let got = read_into(&u.env, &r, buf);
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
            if let Ok(v) = read_vec(&env, &r) {
                self.matching.unexpected.fetched(idx, v);
            }
        }
        self.flush_acks();
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
