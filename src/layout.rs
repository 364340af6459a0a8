//! Where everything lies in the segment: offsets and sizes, derived from the number
//! of ranks and the ring size only, so that the launcher and every rank agree.
//!
//! ```text
//! offset 0            Header (one 4 KiB page): magic, layout version, job parameters,
//!                     the abort word
//! ctrl_offset         RankCtrl[N], 384 bytes each (three 128-byte lines)
//! rings_offset        ring (i -> j) for every ordered pair, at
//!                     rings_offset + (i * N + j) * ring_stride:
//!                     RingHead (128 bytes: the consumer's position) + ring_bytes of data
//! coll_offset         the collective area (`shmcoll.rs`): a pool header (context-id
//!                     counter), `areas` communicator areas of N member blocks
//!                     (256 bytes each), then one data slot of `slot_bytes` per rank,
//!                     then a ring of small broadcasts for each of the first
//!                     `RING_AREAS` areas (`BCAST_RING_BYTES` each)
//! loan_offset         one loan pool of `loan_bytes` per rank (`loan.rs`), at
//!                     loan_offset + rank * loan_bytes
//! senders_offset      per receiver j, ceil(N / 64) words: bit i of word i / 64 says
//!                     that rank i has started writing ring (i -> j) (`ring.rs`,
//!                     `RingMem::with_announce`)
//! ```

use std::mem::size_of;

use crate::error::{Error, Result};
use crate::ring::RingHead;

/// The largest job.
pub(crate) const MAX_RANKS: usize = 4096;

/// Bytes of the segment header (one page).
pub(crate) const HEADER_BYTES: usize = 4096;
/// Bytes of one rank's control block (`segment::RankCtrl`).
pub(crate) const CTRL_BYTES: usize = 384;

/// Bytes per member block (two 128-byte lines).
pub(crate) const MEMBER_BYTES: usize = 256;

/// Bytes of the collective pool header (the context-id counter).
pub(crate) const POOL_HEADER: usize = 128;

/// Cells of an area's ring of small broadcasts (`shmcoll::BcastCell`, 64 bytes each):
/// how far the root of a run of them may run ahead of its slowest member.
pub(crate) const BCAST_CELLS: usize = 128;
/// Bytes of one area's ring of small broadcasts.
pub(crate) const BCAST_RING_BYTES: usize = BCAST_CELLS * 64;
/// Areas with a ring of small broadcasts: the world's (area 0) and those that
/// communicators made first take; the others broadcast small data through the
/// point-to-point rings. A bound, so that a pool of thousands of areas adds no
/// megabytes to the segment.
pub(crate) const RING_AREAS: usize = 64;

/// Job parameters chosen by the launcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Params {
    pub(crate) nranks: usize,
    pub(crate) ring_bytes: usize,
    pub(crate) ncpus: usize,
    /// Whether the ranks may read each other's memory (`sys::cma`).
    pub(crate) single_copy: bool,
}

/// Offsets of every part, derived from N and the ring size only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) nranks: usize,
    pub(crate) ring_bytes: usize,
    pub(crate) ctrl_offset: usize,
    pub(crate) rings_offset: usize,
    pub(crate) ring_stride: usize,
    /// Start of the collective area (see `shmcoll.rs`).
    pub(crate) coll_offset: usize,
    /// Communicator areas in the pool.
    pub(crate) areas: usize,
    /// Bytes of each rank's collective data slot (two halves).
    pub(crate) slot_bytes: usize,
    /// Start of the loan pools (see `loan.rs`), page aligned.
    pub(crate) loan_offset: usize,
    /// Bytes of each rank's loan pool (a multiple of 4 KiB).
    pub(crate) loan_bytes: usize,
    /// Start of the rings' announcement words (8-byte aligned).
    pub(crate) senders_offset: usize,
    pub(crate) total_len: usize,
}

impl Layout {
    pub(crate) fn new(nranks: usize, ring_bytes: usize) -> Result<Self> {
        if nranks == 0 || nranks > MAX_RANKS {
            return Err(Error::Usage(format!(
                "the number of ranks must be 1..={MAX_RANKS}, not {nranks}"
            )));
        }
        if !ring_bytes.is_power_of_two()
            || !(crate::ring::MIN_CAPACITY..=crate::ring::MAX_CAPACITY).contains(&ring_bytes)
        {
            return Err(Error::Usage(format!(
                "the ring size must be a power of two in {}..={} bytes, not {ring_bytes}",
                crate::ring::MIN_CAPACITY,
                crate::ring::MAX_CAPACITY
            )));
        }
        let ctrl_offset = HEADER_BYTES;
        let rings_offset = (ctrl_offset + nranks * CTRL_BYTES).next_multiple_of(4096);
        let ring_stride = size_of::<RingHead>() + ring_bytes;
        let coll_offset = nranks
            .checked_mul(nranks)
            .and_then(|p| p.checked_mul(ring_stride))
            .and_then(|r| r.checked_add(rings_offset))
            .ok_or_else(|| Error::Usage("segment size overflows".into()))?
            .next_multiple_of(4096);
        let areas = pool_areas(nranks);
        let slot_bytes = slot_bytes(nranks);
        let loan_offset =
            (coll_offset + coll_bytes(nranks, areas, slot_bytes)).next_multiple_of(4096);
        let loan_bytes = loan_bytes(nranks);
        let senders_offset = loan_offset + nranks * loan_bytes;
        let total_len = senders_offset + nranks * nranks.div_ceil(64) * 8;
        Ok(Layout {
            nranks,
            ring_bytes,
            ctrl_offset,
            rings_offset,
            ring_stride,
            coll_offset,
            areas,
            slot_bytes,
            loan_offset,
            loan_bytes,
            senders_offset,
            total_len,
        })
    }

    /// The default ring size for N ranks: 256 MiB of rings in all at most (pages are
    /// only committed where ranks talk), each between 4 KiB and 1 MiB, since large
    /// rings stream faster at the same small-message latency (docs/performance.md). Up
    /// to N = 16 every pair gets 1 MiB.
    pub(crate) fn default_ring_bytes(nranks: usize) -> usize {
        const BUDGET: usize = 256 << 20;
        let pairs = (nranks * nranks.saturating_sub(1)).max(1);
        let per = BUDGET / pairs;
        let pow2 = if per == 0 {
            0
        } else {
            1usize << (usize::BITS - 1 - per.leading_zeros())
        };
        pow2.clamp(crate::ring::MIN_CAPACITY, 1 << 20)
    }
}

/// The span of each ring for N ranks (see `ring::REWIND_SPAN`): traffic a receiver
/// keeps up with stays in its ring's first span, so a job whose every pair talks
/// commits about `pairs * span` bytes of rings: 16 MiB in all up to 23 ranks. Each span
/// is a power of two from 32 to 256 KiB and at most half a ring (a ring rewinds only
/// when it is twice its span): 256 KiB up to 8 ranks, 128 KiB at 9-11, 64 KiB at
/// 12-16, 32 KiB from 17 (the default rings themselves are 64 KiB at 64 ranks).
/// Smaller spans cost one-way windows of small messages more (16 KiB: 10-14 %,
/// docs/performance.md). The same for every rank, so that both ends of a ring fault
/// its pages in by the same steps.
pub(crate) fn rewind_span(nranks: usize, ring_bytes: usize) -> usize {
    use crate::ring::{MIN_REWIND_SPAN, REWIND_SPAN};
    let pairs = (nranks * nranks.saturating_sub(1)).max(1);
    let per = (16usize << 20) / pairs;
    let pow2 = 1usize << (usize::BITS - 1 - per.max(1).leading_zeros());
    pow2.min(ring_bytes / 2).clamp(MIN_REWIND_SPAN, REWIND_SPAN)
}

/// Bytes of each rank's loan pool: 256 MiB in all, each 1..=128 MiB, a power of two
/// (pages are only committed where loans are written).
pub(crate) fn loan_bytes(n: usize) -> usize {
    let per = (256usize << 20) / n.max(1);
    let pow2 = 1usize << (usize::BITS - 1 - per.max(1).leading_zeros());
    pow2.clamp(1 << 20, 128 << 20)
}

/// Communicator areas in the pool for N ranks: about 16 MiB of member blocks, at
/// least 32 and at most 4096 areas (the largest number of live communicators).
pub(crate) fn pool_areas(n: usize) -> usize {
    ((16 << 20) / (n * MEMBER_BYTES)).clamp(32, 4096)
}

/// Bytes of each rank's data slot: about 32 MiB in all, each 16..=256 KiB, a power
/// of two (two halves; data larger than a half is pipelined through them).
pub(crate) fn slot_bytes(n: usize) -> usize {
    let per = (32usize << 20) / n;
    let pow2 = 1usize << (usize::BITS - 1 - per.max(1).leading_zeros());
    pow2.clamp(16 << 10, 256 << 10)
}

pub(crate) fn areas_off(areas: usize) -> usize {
    (POOL_HEADER + areas * 4).next_multiple_of(4096)
}

pub(crate) fn slots_off(n: usize, areas: usize) -> usize {
    (areas_off(areas) + areas * n * MEMBER_BYTES).next_multiple_of(4096)
}

/// Start of the rings of small broadcasts, after the data slots.
pub(crate) fn bcast_off(n: usize, areas: usize, slot: usize) -> usize {
    (slots_off(n, areas) + n * slot).next_multiple_of(4096)
}

/// Bytes of the whole collective area.
pub(crate) fn coll_bytes(n: usize, areas: usize, slot: usize) -> usize {
    bcast_off(n, areas, slot) + areas.min(RING_AREAS) * BCAST_RING_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_keep_small_message_traffic_of_every_pair_within_16_mib() {
        let span = |n: usize| rewind_span(n, Layout::default_ring_bytes(n));
        assert_eq!(span(2), 256 << 10);
        assert_eq!(span(8), 256 << 10);
        assert_eq!(span(16), 64 << 10);
        assert_eq!(span(12), 64 << 10);
        assert_eq!(span(17), 32 << 10);
        assert_eq!(span(64), 32 << 10);
        for n in [9, 12, 16, 20, 23] {
            assert!(
                n * (n - 1) * span(n) <= 16 << 20,
                "{n} ranks: span {}",
                span(n)
            );
        }
        // An explicit ring size: at most half of it, so that the ring rewinds.
        assert_eq!(rewind_span(2, 64 << 10), 32 << 10);
        assert_eq!(rewind_span(2, 32 << 10), 32 << 10); // too small to rewind at all
    }

    #[test]
    fn default_rings_keep_256_ranks_within_memory() {
        let l = Layout::new(256, Layout::default_ring_bytes(256)).unwrap();
        assert!(l.loan_offset < 400 << 20, "{} bytes", l.loan_offset);
        assert!(
            l.senders_offset - l.loan_offset <= 256 << 20,
            "loan pools of {} bytes",
            l.senders_offset - l.loan_offset
        );
        assert_eq!(Layout::default_ring_bytes(2), 1 << 20);
        assert_eq!(Layout::default_ring_bytes(16), 1 << 20);
        assert!(Layout::default_ring_bytes(64) >= 16 << 10);
    }

    #[test]
    fn layout_rejects_bad_parameters() {
        assert!(Layout::new(0, 4096).is_err());
        assert!(Layout::new(2, 5000).is_err());
        assert!(Layout::new(MAX_RANKS + 1, 4096).is_err());
    }
}
