//! The single-producer/single-consumer byte ring that carries every message from one
//! rank to another: the lock-free core of shmpi.
//!
//! Design after Open MPI's shared-memory "fast box" (`btl_sm_fbox.h`) and rtrb:
//!
//! - Positions are monotonic byte counts (`u64`, never wrap in practice); the offset in
//!   the buffer is `pos & (cap - 1)`.
//! - A record starts on a 16-byte boundary with an 8-byte *seal* word
//!   (`len:32 | kind:8 | pad:4 | nwords:4 | seq:16`), then `nwords` header words, padding
//!   to 16 plus `pad` more 16-byte units, and the payload. Payloads of at least
//!   [`ALIGN_PAYLOAD_FROM`] bytes are padded to start on a cache line (64 bytes), and
//!   records cut from them hold whole cache lines: both copies (into the ring and out)
//!   then run on aligned lines, which copy markedly faster than lines off by 16 bytes.
//!   The seal is written
//!   last; a record exists when its seal is non-zero. There is no shared tail index: the consumer polls the seal at its own
//!   position, so a small message costs one cache line moving from producer to consumer.
//! - Before sealing a record the producer makes sure the seal slot just after it is
//!   zero, so the next slot the consumer polls is always either zero or a real record
//!   (stale bytes of an earlier lap can never look like a record). That is why the
//!   producer keeps a 16-byte slot in reserve: `tail + record + 16 <= head + cap`.
//!   After sealing, it zeroes the slots through the end of the next cache line (in
//!   freed space), so that the next records find their next slot zeroed already and
//!   their seal does not wait for a line to arrive from L3.
//! - A record never crosses the end of the buffer. When it does not fit before the end,
//!   the producer writes it at offset 0 and puts a *skip* record in the gap.
//! - The producer also goes back to offset 0 early, behind a skip record, once its
//!   records have reached [`rewind_from`] bytes into the buffer and the consumer has
//!   nearly caught up: traffic that the consumer keeps up with (a ping-pong, windows of
//!   small messages) then stays in the ring's first *span* of bytes ([`REWIND_SPAN`], or
//!   less in jobs of many ranks: [`RingMem::with_span`]) and commits only
//!   their pages, where it used to walk through the whole buffer and commit all of it.
//!   A consumer that falls behind still has the whole buffer; just after a rewind,
//!   until the consumer has followed the skip record, the producer has the room up to
//!   the consumer's position, at least `rewind_from - rewind_slack` bytes.
//! - The consumer publishes its position (`head`) after each record; the producer
//!   caches it and reloads it only when the ring looks full.
//! - The `seq` field (`pos / 16` truncated) lets the consumer detect a corrupted ring
//!   instead of misreading it.
//!
//! # Memory ordering
//!
//! | word | written by | read by | ordering |
//! |---|---|---|---|
//! | seal of a record | producer, after the record's words and payload and the next slot's zero | consumer polling its position | Release/Acquire: `SYNC POINT record` |
//! | `RingHead::head` | consumer, after it is done with a record | producer, when the ring looks full | Release/Acquire: `SYNC POINT space` |
//! | announcement bit (segment rings) | producer, before its first record | consumer's `has_data`, before it reads the buffer at all | Release/Acquire: `SYNC POINT announce` |
//!
//! The SPSC rule is a type fact within a process (`Producer` and `Consumer` are `Send`
//! but not `Sync`, their mutating calls take `&mut self`, and only `Segment::ring` or
//! [`heap_ring`] make them), and across processes it is backed by the rank claim in
//! `segment.rs`: only rank `i` builds the producer of ring `i -> j`, only rank `j` its
//! consumer.
//!
//! # Model checking
//!
//! Under `cfg(loom)` (see `sync.rs`) the ring's atomics are loom's and `loom_tests`
//! below check records of several sizes, a wrap-around behind a skip record and a full
//! ring between a producer and a consumer thread. loom's atomics cannot live in the
//! buffer's bytes, so the loom build runs heap rings only ([`heap_ring`]) and keeps
//! beside the buffer a loom atomic per 16-byte seal slot and a loom cell per 16-byte
//! granule of record bytes. The cells record the producer's writes and the consumer's
//! reads, so that loom reports a read that does not happen after its write
//! (`SYNC POINT record`) or a write over bytes still being read (`SYNC POINT space`). A
//! modeled slot holds the last seal or zero stored in it, also where a later record's
//! payload has covered it since: loom sees the previous lap's seals there, but never
//! payload bytes that look like a seal (the thread test
//! `stale_seals_of_the_previous_lap_are_never_read_as_records` covers those).

use std::ptr::NonNull;
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use crate::sync::atomic::{AtomicU64, Ordering};

/// Smallest ring buffer (bytes).
pub(crate) const MIN_CAPACITY: usize = 4096;
/// Largest ring buffer (bytes).
pub(crate) const MAX_CAPACITY: usize = 1 << 30;
/// Records start on this boundary (rkyv archives need 16).
pub(crate) const ALIGN: usize = 16;
/// Largest number of header words after the seal.
pub(crate) const MAX_WORDS: usize = 3;
/// The kind reserved for skip records.
const KIND_SKIP: u8 = 0xff;
/// Payloads of at least this many bytes start on a cache line.
pub(crate) const ALIGN_PAYLOAD_FROM: usize = 1024;
/// The cache line.
const LINE: usize = 64;
/// The part of the buffer a ring keeps to while its consumer keeps up (in rings of at
/// least twice this size), unless its `RingMem` says less ([`RingMem::with_span`]): a
/// producer goes back to offset 0 from [`rewind_from`] on, so that a small record, its
/// reserve slot and the lines zeroed ahead of it end within it (and the pages faulted
/// in, in doubling steps, stop at it).
pub(crate) const REWIND_SPAN: usize = 256 << 10;
/// The smallest span a segment gives its rings (jobs of many ranks, see
/// `layout::rewind_span`).
pub(crate) const MIN_REWIND_SPAN: usize = 32 << 10;
/// Where a producer starts again at offset 0 when the consumer has nearly caught up, in
/// a ring whose span is `span`.
pub(crate) const fn rewind_from(span: usize) -> usize {
    span - 1024
}
/// "Nearly caught up": at most this many bytes of records not yet consumed (16 KiB; a
/// quarter of smaller spans). After the rewind the producer has at least
/// `rewind_from - rewind_slack` bytes of room before it reaches them, and the consumer
/// at most this many to read before it follows.
fn rewind_slack(span: usize) -> u64 {
    (span / 4).min(16 << 10) as u64
}
/// After a declined rewind the producer looks again this many bytes later, doubling
/// up to the buffer's size while the consumer stays behind: one reload of its position
/// per few records would cost a stream more than the rewind saves.
const REWIND_RETRY: u64 = 4 << 10;

/// The shared part of a ring besides its buffer: the consumer's position.
#[repr(C)]
pub(crate) struct RingHead {
    /// Bytes consumed since the ring was created. Written by the consumer only.
    /// SYNC POINT space.
    head: CachePadded<AtomicU64>,
}

const _: () = assert!(std::mem::size_of::<RingHead>() == 128);

/// Where a ring lives: its head word and its buffer.
#[derive(Clone, Copy)]
pub(crate) struct RingMem {
    head: NonNull<RingHead>,
    data: NonNull<u8>,
    cap: usize,
    /// The word whose bit `announce_bit` says the producer has started writing (see
    /// [`RingMem::with_announce`]); `None`: always treated as started (heap rings).
    announce: Option<NonNull<AtomicU64>>,
    announce_bit: u32,
    /// The span its records keep to while the consumer keeps up (see [`REWIND_SPAN`]);
    /// a `u32` beside `announce_bit`, so that the ends, which copy their `RingMem`
    /// on the hot paths, stay as large as they were.
    span: u32,
    /// The seal words and access records of a heap ring under loom.
    #[cfg(loom)]
    model: Option<NonNull<RingModel>>,
}

/// The loom build's seal words and access records of a heap ring (see the module doc).
#[cfg(loom)]
struct RingModel {
    /// One per 16-byte seal slot.
    seals: Box<[AtomicU64]>,
    /// One per 16-byte granule of record bytes (header words and payload).
    granules: Box<[loom::cell::UnsafeCell<()>]>,
}

impl RingMem {
    /// # Safety
    /// `head` must point to a `RingHead` and `data` to `cap` bytes, both valid for
    /// reads and writes for as long as any end built from this `RingMem` lives, both
    /// zero-filled at the ring's creation; `data` 16-byte aligned; `cap` a power of two
    /// in `MIN_CAPACITY..=MAX_CAPACITY`.
    pub(crate) unsafe fn new(head: NonNull<RingHead>, data: NonNull<u8>, cap: usize) -> Self {
        debug_assert!(cap.is_power_of_two() && (MIN_CAPACITY..=MAX_CAPACITY).contains(&cap));
        debug_assert_eq!(data.as_ptr() as usize % ALIGN, 0);
        RingMem {
            head,
            data,
            cap,
            span: REWIND_SPAN as u32,
            announce: None,
            announce_bit: 0,
            #[cfg(loom)]
            model: None,
        }
    }

    /// The ring with a smaller span for traffic its consumer keeps up with (a power of
    /// two from [`MIN_REWIND_SPAN`] to [`REWIND_SPAN`]): both ends must be built with the
    /// same, since the consumer faults pages in by the producer's steps.
    pub(crate) fn with_span(self, span: usize) -> Self {
        debug_assert!(span.is_power_of_two() && (MIN_REWIND_SPAN..=REWIND_SPAN).contains(&span));
        RingMem {
            span: span as u32,
            ..self
        }
    }

    /// The ring with an announcement bit: the producer sets `mask` in `*word` before
    /// its first record, and the consumer reads no byte of the buffer before it sees
    /// the bit. Reading a never-written page of shared memory commits it, so without
    /// the bit every rank's polling of every incoming ring would commit a page of each
    /// of the N * (N - 1) rings, talked over or not.
    ///
    /// # Safety
    /// `word` must be valid for as long as the ring's ends live, and only ever accessed
    /// atomically.
    pub(crate) unsafe fn with_announce(self, word: NonNull<AtomicU64>, mask: u64) -> Self {
        debug_assert!(mask.is_power_of_two());
        RingMem {
            announce: Some(word),
            announce_bit: mask.trailing_zeros(),
            ..self
        }
    }

    /// Whether the producer has announced its first record (always, without a word).
    #[inline]
    fn announced(&self) -> bool {
        match self.announce {
            // SAFETY: valid while the ends live (contract of `with_announce`).
            // SYNC POINT announce (Acquire): pairs with `announce_writer`.
            Some(w) => unsafe { w.as_ref() }.load(Ordering::Acquire) & 1 << self.announce_bit != 0,
            None => true,
        }
    }

    /// Sets the announcement bit, before the first record is written.
    #[cold]
    fn announce_writer(&self) {
        if let Some(w) = self.announce {
            // SAFETY: valid while the ends live (contract of `with_announce`).
            // SYNC POINT announce (Release): the ring's first record comes after it.
            unsafe { w.as_ref() }.fetch_or(1 << self.announce_bit, Ordering::Release);
        }
    }

    fn head(&self) -> &AtomicU64 {
        // SAFETY: valid for the ring's lifetime (contract of `new`).
        unsafe { &self.head.as_ref().head }
    }

    /// The seal word at buffer offset `off` (16-byte aligned, in bounds).
    #[cfg(not(loom))]
    fn seal(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off % ALIGN == 0 && off + 8 <= self.cap);
        // SAFETY: in bounds and 8-byte aligned (data is 16-aligned, off a multiple of 16);
        // seal slots are only ever accessed atomically while they can be polled.
        unsafe { &*self.data.as_ptr().add(off).cast::<AtomicU64>() }
    }

    /// The seal word at buffer offset `off`: the model's, beside the buffer.
    #[cfg(loom)]
    fn seal(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off % ALIGN == 0 && off + 8 <= self.cap);
        &self.model().seals[off / ALIGN]
    }

    #[cfg(loom)]
    fn model(&self) -> &RingModel {
        let model = self.model.expect("the loom build runs heap rings only");
        // SAFETY: the heap ring that owns the model outlives both ends (`_keep`).
        unsafe { model.as_ref() }
    }

    /// Tells loom that the producer writes the record bytes `[off, off + len)`
    /// (nothing in the normal build).
    #[inline(always)]
    fn track_write(&self, off: usize, len: usize) {
        #[cfg(loom)]
        for g in &self.model().granules[off / ALIGN..(off + len).div_ceil(ALIGN)] {
            g.with_mut(|_| ());
        }
        #[cfg(not(loom))]
        let _ = (off, len);
    }

    /// Tells loom that the consumer reads the record bytes `[off, off + len)`
    /// (nothing in the normal build).
    #[inline(always)]
    fn track_read(&self, off: usize, len: usize) {
        #[cfg(loom)]
        for g in &self.model().granules[off / ALIGN..(off + len).div_ceil(ALIGN)] {
            g.with(|_| ());
        }
        #[cfg(not(loom))]
        let _ = (off, len);
    }
}

impl RingMem {
    /// Faults the buffer's bytes `[from, to)` in now (see `sys::shm::populate`), so
    /// that records reaching new pages do not take a page fault every 4 KiB.
    #[cold]
    fn populate(&self, from: usize, to: usize, write: bool) {
        debug_assert!(from <= to && to <= self.cap);
        // SAFETY: the range lies in the buffer, valid for the ring's lifetime (contract
        // of `new`); a heap ring is ordinary memory, where populating is equally harmless.
        unsafe { crate::sys::shm::populate(self.data.as_ptr().add(from), to - from, write) }
    }

    /// Whether no record waits at the consumer's published position. Racy; for
    /// observers other than the two ends (the launcher's deadlock check).
    pub(crate) fn is_empty_snapshot(&self) -> bool {
        if !self.announced() {
            return true;
        }
        // SYNC POINT space (Acquire): the seal at the published head is current.
        let head = self.head().load(Ordering::Acquire);
        self.seal(head as usize & (self.cap - 1))
            .load(Ordering::Acquire)
            == 0
    }
}

/// Payloads from this size (a streamed message's chunks) go through
/// [`Producer::copy_chunk`], which may write them with non-temporal stores.
const STREAM_CHUNK_MIN: usize = 16 << 10;
/// Plain copies of chunks from this size are timed: two clock reads are about 1 % of
/// such a copy.
const STREAM_PROBE_MIN: usize = 64 << 10;
/// A timed plain copy slower than this many bytes per ns (6 GB/s, below what one core
/// streams to memory) counts as slow.
const STREAM_SLOW: usize = 6;
/// Slow timed chunks in a row that turn non-temporal stores on (one alone may be an
/// interrupt or a page fault).
const STREAM_SLOW_CHUNKS: u32 = 3;
/// Bytes of chunks written with non-temporal stores before a plain one is timed again:
/// in the slow state, one slow chunk of 128 KiB (about 40 µs) per 3 ms or so.
const STREAM_SPAN: usize = 64 << 20;

/// Copies `len` bytes from `src` to `dst` (which must not overlap), inline for the
/// short payloads of latency-bound messages, where the call to `memcpy` costs more
/// than the copy. Two
/// overlapping loads and stores cover 2..=32 bytes exactly, as libc's small-size paths
/// do (a byte loop for 0..=3 bytes became a `memcpy` call again); longer copies call
/// `memcpy`.
///
/// # Safety
/// `src` must be valid for reads and `dst` for writes of `len` bytes.
#[inline(always)]
pub(crate) unsafe fn copy_small(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: each arm's range of `len` is `w..=2w` for the width `w` it copies with,
    // as `copy_pair` requires; the caller gives `len` readable and writable bytes.
    unsafe {
        match len {
            16..=32 => copy_pair::<u128>(src, dst, len),
            8..=15 => copy_pair::<u64>(src, dst, len),
            4..=7 => copy_pair::<u32>(src, dst, len),
            2..=3 => copy_pair::<u16>(src, dst, len),
            1 => *dst = *src,
            0 => {}
            _ => std::ptr::copy_nonoverlapping(src, dst, len),
        }
    }
}

/// Copies `len` bytes, `size_of::<W>() <= len <= 2 * size_of::<W>()`, as two
/// possibly overlapping `W`-wide loads and stores: the first `W` bytes and the last.
///
/// # Safety
/// As [`copy_small`], and `len` within those bounds.
#[inline(always)]
unsafe fn copy_pair<W: Copy>(src: *const u8, dst: *mut u8, len: usize) {
    let w = std::mem::size_of::<W>();
    debug_assert!(w <= len && len <= 2 * w);
    // SAFETY: the first access covers [0, w), the second [len - w, len), both within
    // [0, len) since w <= len; unaligned accesses of a plain integer type.
    unsafe {
        let a = src.cast::<W>().read_unaligned();
        let b = src.add(len - w).cast::<W>().read_unaligned();
        dst.cast::<W>().write_unaligned(a);
        dst.add(len - w).cast::<W>().write_unaligned(b);
    }
}

/// `dst.copy_from_slice(src)`, with [`copy_small`]'s inline copy for short slices.
#[inline(always)]
pub(crate) fn copy_from(dst: &mut [u8], src: &[u8]) {
    assert_eq!(dst.len(), src.len());
    // SAFETY: both slices hold `src.len()` bytes, and `&mut` excludes an overlap.
    unsafe { copy_small(src.as_ptr(), dst.as_mut_ptr(), src.len()) }
}

/// Header length (seal + words, padded to 16) for `nwords` words.
#[inline]
pub(crate) const fn header_len(nwords: usize) -> usize {
    (8 + 8 * nwords).next_multiple_of(ALIGN)
}

/// Record length for a header (seal, words and padding) of `hdr` bytes.
#[inline]
fn record_len(hdr: usize, payload: usize) -> usize {
    (hdr + payload).next_multiple_of(ALIGN)
}

/// The header of a record with `nwords` words and a payload of `len` bytes at buffer
/// offset `off`: (its length, its padding in 16-byte units).
#[inline]
fn header_at(off: usize, nwords: usize, len: usize) -> (usize, usize) {
    let hdr = header_len(nwords);
    if len < ALIGN_PAYLOAD_FROM {
        return (hdr, 0);
    }
    let pad = (off + hdr).next_multiple_of(LINE) - (off + hdr);
    (hdr + pad, pad / ALIGN)
}

#[inline]
fn pack_seal(len: usize, kind: u8, nwords: usize, pad: usize, pos: u64) -> u64 {
    debug_assert!(nwords <= 0xf && pad <= 0xf);
    (len as u64 & 0xffff_ffff)
        | (kind as u64) << 32
        | ((pad << 4 | nwords) as u64) << 40
        | ((pos >> 4) & 0xffff) << 48
}

/// The writing end. Only the rank at the ring's source holds one.
pub(crate) struct Producer {
    mem: RingMem,
    /// Position of the next record. Local: the consumer finds records by their seals.
    tail: u64,
    /// Last `head` read from the consumer; `cached_head <= head <= tail`.
    cached_head: u64,
    /// How far the tail may go before a push looks at the consumer's position or at
    /// `rewind_at`: `min(cached_head + cap - ALIGN, rewind_at)`, one comparison on the
    /// fast path for both.
    limit: u64,
    /// Every seal slot at a position in `[tail, zeroed)` holds zero (see `zero_ahead`).
    zeroed: u64,
    /// The buffer's bytes below this offset are faulted in (see [`Populated`]).
    populated: Populated,
    /// From this position on, each push first looks whether it can start again at
    /// offset 0 (see [`rewind_from`]); `u64::MAX` in rings too small for it.
    rewind_at: u64,
    /// How much further the next look is after a declined one.
    rewind_retry: u64,
    /// Bytes of large chunks still to write with non-temporal stores (see
    /// [`Producer::copy_chunk`]).
    stream_left: usize,
    /// Timed plain chunks in a row that were slow.
    slow_chunks: u32,
    _keep: Option<Arc<HeapRing>>,
}

// SAFETY: the producer owns its end of the ring; moving it to another thread is fine.
unsafe impl Send for Producer {}

impl Producer {
    /// # Safety
    /// `mem` must satisfy `RingMem::new`'s contract, and this must be the only producer
    /// of the ring for its whole life, starting at position 0.
    pub(crate) unsafe fn new(mem: RingMem) -> Self {
        Producer {
            mem,
            tail: 0,
            cached_head: 0,
            limit: 0,
            zeroed: 0,
            populated: Populated::NONE,
            stream_left: 0,
            slow_chunks: 0,
            rewind_at: if mem.cap >= 2 * mem.span as usize {
                rewind_from(mem.span as usize) as u64
            } else {
                u64::MAX
            },
            rewind_retry: REWIND_RETRY,
            _keep: None,
        }
        .with_limit()
    }

    fn with_limit(mut self) -> Self {
        self.set_limit();
        self
    }

    fn set_limit(&mut self) {
        self.limit = (self.cached_head + (self.mem.cap - ALIGN) as u64).min(self.rewind_at);
    }

    /// Buffer size in bytes.
    #[allow(dead_code)] // used by tests and the in-process benchmarks
    pub(crate) fn capacity(&self) -> usize {
        self.mem.cap
    }

    /// The largest payload one record with `nwords` header words can ever hold.
    #[cfg(test)]
    pub(crate) fn max_payload(&self, nwords: usize) -> usize {
        (self.mem.cap - ALIGN - header_at(0, nwords, self.mem.cap).0) & !(LINE - 1)
    }

    /// Whether the consumer has taken everything pushed so far.
    #[cfg(test)]
    pub(crate) fn is_drained(&mut self) -> bool {
        self.refresh();
        self.cached_head == self.tail
    }

    /// Reloads the consumer's position. Returns whether it moved.
    pub(crate) fn refresh(&mut self) -> bool {
        // SYNC POINT space (Acquire): the consumer is done with everything before it.
        let h = self.mem.head().load(Ordering::Acquire);
        debug_assert!(self.cached_head <= h && h <= self.tail);
        let moved = h != self.cached_head;
        self.cached_head = h;
        self.set_limit();
        moved
    }

    /// Writes one record of kind `kind` (1..=254) with header `words` and a prefix of
    /// `payload`: all of it when it fits, else (if at least `min_part` bytes fit) as
    /// much as fits. Returns how many payload bytes the record holds, or `None` if
    /// nothing was written because the ring is too full.
    pub(crate) fn push(
        &mut self,
        kind: u8,
        words: &[u64],
        payload: &[u8],
        min_part: usize,
    ) -> Option<usize> {
        debug_assert!(kind != 0 && kind != KIND_SKIP && words.len() <= MAX_WORDS);
        debug_assert!(payload.len() <= u32::MAX as usize);
        if self.tail >= self.rewind_at {
            if let Some(n) = self.rewind(kind, words, payload, min_part) {
                return Some(n);
            }
        }
        let cap = self.mem.cap;
        for attempt in 0..2 {
            let free = cap - (self.tail - self.cached_head) as usize;
            let off = self.tail as usize & (cap - 1);
            let to_end = cap - off;
            // Room for a record here: up to the end of the buffer, keeping the 16-byte
            // reserve for the next seal slot.
            let (hdr, pad) = header_at(off, words.len(), payload.len());
            if free >= ALIGN + hdr {
                let room = to_end.min(free - ALIGN);
                if let Some(n) = fit(room, hdr, payload.len(), min_part, cut_unit(payload.len())) {
                    self.tail +=
                        self.write::<true>(off, self.tail, kind, words, (hdr, pad), &payload[..n]);
                    return Some(n);
                }
            }
            if let Some(n) = self.push_at_start(kind, words, payload, min_part) {
                return Some(n);
            }
            if attempt == 0 && !self.refresh() {
                break;
            }
        }
        None
    }

    /// Writes the record (all of it, or a part of at least `min_part` bytes) at offset
    /// 0, behind a skip record that fills the gap from the tail to the end of the
    /// buffer, if it fits in the free space by the last position read. Returns its
    /// payload bytes; `None`, having written nothing, if it does not fit or the tail is
    /// at offset 0 already.
    fn push_at_start(
        &mut self,
        kind: u8,
        words: &[u64],
        payload: &[u8],
        min_part: usize,
    ) -> Option<usize> {
        let cap = self.mem.cap;
        let off = self.tail as usize & (cap - 1);
        if off == 0 {
            return None;
        }
        let to_end = cap - off;
        let free = cap - (self.tail - self.cached_head) as usize;
        // The record and the reserve slot after it, past the skip.
        let room = free.checked_sub(to_end + ALIGN)?;
        let (hdr, pad) = header_at(0, words.len(), payload.len());
        let n = fit(room, hdr, payload.len(), min_part, cut_unit(payload.len()))?;
        let pos = self.tail + to_end as u64;
        let rec = self.write::<true>(0, pos, kind, words, (hdr, pad), &payload[..n]);
        // SYNC POINT record (Release): the skip is sealed after the record it leads to,
        // so a consumer that follows it finds that record.
        self.mem.seal(off).store(
            pack_seal(to_end, KIND_SKIP, 0, 0, self.tail),
            Ordering::Release,
        );
        self.tail = pos + rec;
        Some(n)
    }

    /// The push of a record that has reached `rewind_at`: if the tail is
    /// [`rewind_from`] or more into the buffer and at most [`rewind_slack`] bytes wait
    /// for the consumer, writes the record (all of it, or a part of at least
    /// `min_part` bytes) at offset 0 behind a skip record and returns its payload
    /// bytes. Otherwise writes nothing and sets when to look again.
    #[cold]
    #[inline(never)]
    fn rewind(
        &mut self,
        kind: u8,
        words: &[u64],
        payload: &[u8],
        min_part: usize,
    ) -> Option<usize> {
        let cap = self.mem.cap;
        let from = rewind_from(self.mem.span as usize);
        let off = self.tail as usize & (cap - 1);
        if off < from {
            // Not yet, or a new lap (wrapped at the end of the buffer).
            self.rewind_at = self.tail - off as u64 + from as u64;
            self.set_limit();
            return None;
        }
        self.refresh();
        let pushed = (self.tail - self.cached_head <= rewind_slack(self.mem.span as usize))
            .then(|| self.push_at_start(kind, words, payload, min_part))
            .flatten();
        let Some(n) = pushed else {
            self.rewind_at = self.tail + self.rewind_retry;
            self.rewind_retry = (self.rewind_retry * 2).min(cap as u64);
            self.set_limit();
            return None;
        };
        self.rewind_at = self.tail - self.tail % cap as u64 + from as u64;
        self.rewind_retry = REWIND_RETRY;
        self.set_limit();
        Some(n)
    }

    /// [`push`](Self::push) of a whole message for the common case, in fewer steps: the
    /// record fits before the end of the buffer and in the free space (reloading the
    /// consumer's position at most once). Returns false, having written nothing, when it
    /// does not; `push` then handles the wrap-around and the partial record.
    #[inline]
    pub(crate) fn try_push_whole(&mut self, kind: u8, words: &[u64], payload: &[u8]) -> bool {
        debug_assert!(kind != 0 && kind != KIND_SKIP && words.len() <= MAX_WORDS);
        if payload.len() > u32::MAX as usize {
            return false;
        }
        let cap = self.mem.cap;
        let off = self.tail as usize & (cap - 1);
        let header = header_at(off, words.len(), payload.len());
        let rec = record_len(header.0, payload.len());
        if off + rec > cap {
            return false;
        }
        // The record and the next seal slot are free (`tail + rec + 16 <= head + cap`)
        // by the last position read, and it ends before `rewind_at`.
        if self.tail + rec as u64 > self.limit {
            return self.push_whole_beyond_limit(off, kind, words, header, payload);
        }
        self.tail += self.write::<false>(off, self.tail, kind, words, header, payload);
        true
    }

    /// Position of the next record.
    #[inline]
    pub(crate) fn tail(&self) -> u64 {
        self.tail
    }

    /// Demotes the cache line of the record at position `pos` (just written) to the
    /// shared cache, whether or not the next record continues it.
    #[inline]
    pub(crate) fn demote_at(&self, pos: u64) {
        let off = pos as usize & (self.mem.cap - 1) & !(LINE - 1);
        // SAFETY: `off` is within the buffer.
        demote(unsafe { self.mem.data.as_ptr().add(off) });
    }

    /// `try_push_whole` of a record that would pass `limit`: goes back to offset 0 if
    /// it may (`rewind`), else reloads the consumer's position if the record does not
    /// fit by the last one read, and writes it if it fits.
    #[cold]
    #[inline(never)]
    fn push_whole_beyond_limit(
        &mut self,
        off: usize,
        kind: u8,
        words: &[u64],
        header: (usize, usize),
        payload: &[u8],
    ) -> bool {
        let cap = self.mem.cap;
        let rec = record_len(header.0, payload.len());
        if self.tail + rec as u64 > self.rewind_at
            && self.rewind(kind, words, payload, payload.len()).is_some()
        {
            return true;
        }
        let fits = |p: &Self| (p.tail - p.cached_head) as usize + rec + ALIGN <= cap;
        if !fits(self) {
            self.refresh();
            if !fits(self) {
                return false;
            }
        }
        self.tail += self.write::<false>(off, self.tail, kind, words, header, payload);
        true
    }

    /// Copies a large chunk of a streamed message into the ring. Where the cores are far
    /// apart (this VM's slow phase; two CCDs of one processor), a line this core writes
    /// and the consumer reads crosses a slow link, and plain stores ran at 2-4 GB/s
    /// against 17-23 GB/s with non-temporal ones, which leave the lines in memory
    /// (18-32 GB/s plain where the cores are close, 15-19 non-temporal). So a plain
    /// copy of a chunk of at least [`STREAM_PROBE_MIN`] is timed, and
    /// [`STREAM_SLOW_CHUNKS`] in a row below [`STREAM_SLOW`] bytes per ns turn
    /// non-temporal stores on for the next [`STREAM_SPAN`] bytes of chunks, after which
    /// a plain chunk is timed again (`SHMPI_RING_STREAM`: `0` never streams, `1`
    /// always; docs/performance.md).
    #[inline(never)]
    fn copy_chunk(&mut self, dst: &mut [u8], src: &[u8]) {
        let mode = crate::tuning::ring_stream();
        if mode == Some(true) || (mode.is_none() && self.stream_left > 0) {
            crate::shmcoll::stream_copy(dst, src);
            self.stream_left = self.stream_left.saturating_sub(src.len());
            return;
        }
        if mode == Some(false) || src.len() < STREAM_PROBE_MIN {
            dst.copy_from_slice(src);
            return;
        }
        let t = std::time::Instant::now();
        dst.copy_from_slice(src);
        let ns = t.elapsed().as_nanos() as usize;
        if src.len() >= STREAM_SLOW * ns {
            self.slow_chunks = 0;
        } else if self.slow_chunks + 1 < STREAM_SLOW_CHUNKS {
            self.slow_chunks += 1;
        } else {
            self.slow_chunks = 0;
            self.stream_left = STREAM_SPAN;
        }
    }

    /// Writes a record at buffer offset `off` (position `pos`) with the header
    /// `(length, padding units)` of `header_at` and seals it. Returns its length.
    /// `CHUNKS`: the record may be a large chunk of a streamed message (`push`), copied
    /// by [`copy_chunk`](Self::copy_chunk); a whole message (`try_push_whole`) is not,
    /// so that its path stays as short as it was.
    #[inline(always)]
    fn write<const CHUNKS: bool>(
        &mut self,
        off: usize,
        pos: u64,
        kind: u8,
        words: &[u64],
        (hdr, pad): (usize, usize),
        payload: &[u8],
    ) -> u64 {
        let rec = record_len(hdr, payload.len());
        debug_assert!(off + rec <= self.mem.cap);
        // Through the reserve slot and the lines `zero_ahead` clears.
        let reach = (off + rec + ALIGN + 2 * LINE) as u64;
        if reach > self.populated.0 {
            self.populated.grow(&self.mem, reach, true);
        }
        self.mem.track_write(off, rec);
        // SAFETY: `push` checked that [off, off + rec) and the next seal slot are free
        // (the consumer is done with them: `tail + rec + 16 <= head + cap`) and in bounds.
        unsafe {
            let base = self.mem.data.as_ptr().add(off);
            for (i, w) in words.iter().enumerate() {
                base.add(8 + 8 * i).cast::<u64>().write(*w);
            }
            let dst = base.add(hdr);
            // The payload's bytes at `dst` lie in that checked, unshared range.
            if CHUNKS && payload.len() >= STREAM_CHUNK_MIN {
                self.copy_chunk(std::slice::from_raw_parts_mut(dst, payload.len()), payload);
            } else {
                copy_small(payload.as_ptr(), dst, payload.len());
            }
        }
        let next_pos = pos + rec as u64;
        if next_pos + ALIGN as u64 > self.zeroed {
            let next = (off + rec) & (self.mem.cap - 1);
            self.mem.seal(next).store(0, Ordering::Relaxed);
        }
        // SYNC POINT record (Release): publishes the words, the payload and the zeroed
        // next slot together (zeroed here, or by an earlier `zero_ahead`).
        self.mem.seal(off).store(
            pack_seal(payload.len(), kind, words.len(), pad, pos),
            Ordering::Release,
        );
        self.zero_ahead(next_pos);
        // The lines this record completed go out to the shared cache, where the
        // consumer reads them without taking them from this core; the line the next
        // record continues stays (demoting it would make that record fetch it back).
        if rec <= DEMOTE_MAX {
            let end = (off + rec) & !(LINE - 1);
            let mut line = off & !(LINE - 1);
            while line < end {
                // SAFETY: `line` is within the buffer (`off + rec <= cap`).
                demote(unsafe { self.mem.data.as_ptr().add(line) });
                line += LINE;
            }
        }
        rec as u64
    }

    /// Zeroes the seal slots from `from` through the end of the next cache line (as far
    /// as the consumer has freed them), after the record before `from` is sealed. The
    /// next records then find their next slot zeroed already, in a line this core owns:
    /// otherwise every record that ends on a new line would make its seal wait (stores
    /// become visible in order) for that line to come from L3 or memory, on the
    /// critical path of a ping-pong.
    ///
    /// Relaxed stores suffice: the consumer reads these slots only after the seal of a
    /// later record, whose Release store comes after them (`SYNC POINT record`).
    #[inline]
    fn zero_ahead(&mut self, from: u64) {
        let line = LINE as u64;
        let end = ((from | (line - 1)) + 1 + line).min(self.cached_head + self.mem.cap as u64);
        let mut p = self.zeroed.max(from);
        while p < end {
            self.mem
                .seal(p as usize & (self.mem.cap - 1))
                .store(0, Ordering::Relaxed);
            p += ALIGN as u64;
        }
        self.zeroed = self.zeroed.max(p);
    }
}

/// Records up to this length demote the cache lines they complete (see `write`).
/// Demoting the lines of longer records made `osu_bw` 2-3x slower from 256 B
/// (docs/performance.md), so they stay where they were written.
const DEMOTE_MAX: usize = 3 * LINE;

/// Hints the core to move the cache line at `p` out to the shared cache (`CLDEMOTE`;
/// a no-op hint on cores without it), where the consumer's next poll finds it.
#[inline(always)]
#[cfg_attr(not(all(target_arch = "x86_64", not(loom))), allow(unused_variables))]
fn demote(p: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    // SAFETY: CLDEMOTE only hints at cache placement: it reads and writes nothing.
    unsafe {
        std::arch::asm!(".byte 0x0f, 0x1c, 0x07", in("rdi") p, options(nostack, preserves_flags));
    }
}

/// The header and record length of a record with `nwords` header words, `pad`
/// padding units and a `len`-byte payload at buffer offset `off`, if that is a
/// well-formed record: a padding of less than a cache line, within the buffer, leaving
/// the reserve slot. `None` for a malformed one (a corrupted ring).
#[inline]
fn extent(cap: usize, off: usize, nwords: usize, pad: usize, len: usize) -> Option<(usize, usize)> {
    if pad > (LINE - ALIGN) / ALIGN {
        return None;
    }
    let hdr = header_len(nwords) + pad * ALIGN;
    let rec = record_len(hdr, len);
    (rec <= cap - off && rec + ALIGN <= cap).then_some((hdr, rec))
}

/// The unit of a cut-off record's payload: a record cut from an aligned payload holds
/// whole cache lines, so that the next record's payload is aligned on both sides of
/// the copy as well.
#[inline]
fn cut_unit(len: usize) -> usize {
    if len >= ALIGN_PAYLOAD_FROM {
        LINE
    } else {
        ALIGN
    }
}

/// How many payload bytes of `want` fit in `room` bytes after a `hdr`-byte header; a
/// cut-off part is a multiple of `unit` (16 or 64) bytes.
#[inline]
fn fit(room: usize, hdr: usize, want: usize, min_part: usize, unit: usize) -> Option<usize> {
    // `room` is a multiple of 16, so `hdr + n <= room` implies the padded record fits.
    let most = room.checked_sub(hdr)?.min(u32::MAX as usize) & !(unit - 1);
    if want <= most {
        Some(want)
    } else if most >= min_part.max(1) {
        Some(most)
    } else {
        None
    }
}

/// A record seen by the consumer. The payload points into the ring and stays valid
/// until [`Consumer::advance`].
pub(crate) struct Record<'a> {
    pub(crate) kind: u8,
    pub(crate) words: [u64; MAX_WORDS],
    pub(crate) payload: &'a [u8],
}

/// What [`Consumer::take_if`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Take<R> {
    /// It consumed a record; what `take` returned.
    Took(R),
    /// No record waits.
    Empty,
    /// A record waits that `take_if` left in place.
    Other,
}

/// The reading end. Only the rank at the ring's destination holds one.
pub(crate) struct Consumer {
    mem: RingMem,
    /// Position of the next record to read.
    head: u64,
    /// Length of the record returned by the last `peek`, 0 if none.
    peeked: usize,
    /// The buffer's bytes below this offset are mapped in (see [`Populated`]).
    populated: Populated,
    /// The same bound as a position in the current lap (`u64::MAX` once the whole
    /// buffer is in), so that a record's check needs no offset.
    mapped_to: u64,
    /// Whether the producer has announced its first record (see `with_announce`):
    /// until then the buffer is not read at all.
    started: std::cell::Cell<bool>,
    _keep: Option<Arc<HeapRing>>,
}

// SAFETY: the consumer owns its end of the ring; moving it to another thread is fine.
unsafe impl Send for Consumer {}

impl Consumer {
    /// # Safety
    /// As `Producer::new`, for the consumer's side.
    pub(crate) unsafe fn new(mem: RingMem) -> Self {
        Consumer {
            mem,
            head: 0,
            peeked: 0,
            populated: Populated::NONE,
            mapped_to: 0,
            started: std::cell::Cell::new(mem.announce.is_none()),
            _keep: None,
        }
    }

    /// Whether a record (or skip) is waiting. One atomic load (two until the producer
    /// has announced its first record).
    #[inline]
    pub(crate) fn has_data(&self) -> bool {
        if !self.started.get() {
            if !self.mem.announced() {
                return false;
            }
            self.started.set(true);
        }
        let off = self.head as usize & (self.mem.cap - 1);
        self.mem.seal(off).load(Ordering::Relaxed) != 0
    }

    /// The next record, if any. Skip records are consumed on the way. An error means
    /// the ring's contents are inconsistent (a corrupted segment).
    pub(crate) fn peek(&mut self) -> Result<Option<Record<'_>>, String> {
        let cap = self.mem.cap;
        loop {
            let off = self.head as usize & (cap - 1);
            // SYNC POINT record (Acquire).
            let seal = self.mem.seal(off).load(Ordering::Acquire);
            if seal == 0 {
                return Ok(None);
            }
            self.first_record();
            let len = (seal & 0xffff_ffff) as usize;
            let kind = (seal >> 32) as u8;
            let nwords = ((seal >> 40) & 0xf) as usize;
            let pad = ((seal >> 44) & 0xf) as usize;
            let seq = (seal >> 48) as u16;
            if seq != ((self.head >> 4) & 0xffff) as u16 {
                return Err(format!(
                    "ring record at position {} has sequence {seq}",
                    self.head
                ));
            }
            if kind == KIND_SKIP {
                if len != cap - off || nwords != 0 || pad != 0 {
                    return Err(format!("bad skip record of {len} bytes at offset {off}"));
                }
                self.head += len as u64;
                self.new_lap();
                self.publish();
                continue;
            }
            if nwords > MAX_WORDS || kind == 0 {
                return Err(format!("bad record kind {kind} with {nwords} words"));
            }
            let Some((hdr, rec)) = extent(cap, off, nwords, pad, len) else {
                return Err(format!(
                    "record of {len} bytes with {pad} padding units at offset {off} \
                     overruns the ring"
                ));
            };
            self.mem.track_read(off, rec);
            let mut words = [0u64; MAX_WORDS];
            // SAFETY: the record lies within the buffer (checked above) and is ours to
            // read until we advance past it (the producer does not touch it before).
            let payload = unsafe {
                let base = self.mem.data.as_ptr().add(off);
                for (i, w) in words.iter_mut().take(nwords).enumerate() {
                    *w = base.add(8 + 8 * i).cast::<u64>().read();
                }
                std::slice::from_raw_parts(base.add(hdr), len)
            };
            self.peeked = rec;
            return Ok(Some(Record {
                kind,
                words,
                payload,
            }));
        }
    }

    /// The receive fast path, [`peek`](Self::peek) + [`advance`](Self::advance) in few
    /// steps: if the next record is a well-formed record of kind `kind` with `nwords`
    /// header words (1 or 2), and `accept(words, payload_len)` agrees, hands its words
    /// and payload to `take` and consumes it. Anything else (no record, a skip record,
    /// another kind, a record `accept` refuses, a malformed one) is left where it is for
    /// `peek`.
    // Always inlined into the receive fast paths, where a call would cost about as much
    // as its body (see `progress::fast::take_whole`).
    #[inline(always)]
    pub(crate) fn take_if<R>(
        &mut self,
        kind: u8,
        nwords: usize,
        accept: impl FnOnce(&[u64; 2], usize) -> bool,
        take: impl FnOnce(&[u64; 2], &[u8]) -> R,
    ) -> Take<R> {
        debug_assert!(self.peeked == 0, "take_if between peek and advance");
        debug_assert!(nwords == 1 || nwords == 2);
        let cap = self.mem.cap;
        let off = self.head as usize & (cap - 1);
        // SYNC POINT record (Acquire).
        let seal = self.mem.seal(off).load(Ordering::Acquire);
        if seal == 0 {
            return Take::Empty;
        }
        self.first_record();
        // Kind, word count and the sequence number of this position, in one comparison
        // that leaves out the padding.
        const PAD_BITS: u64 = 0xf << 44;
        if (seal & !PAD_BITS) >> 32 != pack_seal(0, kind, nwords, 0, self.head) >> 32 {
            return Take::Other;
        }
        let len = (seal & 0xffff_ffff) as usize;
        let pad = ((seal & PAD_BITS) >> 44) as usize;
        let Some((hdr, rec)) = extent(cap, off, nwords, pad, len) else {
            return Take::Other;
        };
        self.mem.track_read(off, rec);
        // SAFETY: the record lies within the buffer (checked above) and is ours to read
        // until we advance past it (the producer does not touch it before).
        let (words, payload) = unsafe {
            let base = self.mem.data.as_ptr().add(off);
            let w0 = base.add(8).cast::<u64>().read();
            let w1 = if nwords == 2 {
                base.add(16).cast::<u64>().read()
            } else {
                0
            };
            ([w0, w1], std::slice::from_raw_parts(base.add(hdr), len))
        };
        if !accept(&words, len) {
            return Take::Other;
        }
        let r = take(&words, payload);
        self.mem.track_read(off, rec);
        self.head += rec as u64;
        self.publish();
        Take::Took(r)
    }

    /// Maps the buffer's pages in ahead of the records reaching them.
    #[inline]
    fn first_record(&mut self) {
        if self.head + LINE as u64 > self.mapped_to {
            // Past the mapped pages, or in a new lap that began without a skip record
            // (a record that ended at the buffer's end).
            let reach = ((self.head as usize & (self.mem.cap - 1)) + LINE) as u64;
            if reach > self.populated.0 {
                self.populated.grow(&self.mem, reach, false);
            }
            self.new_lap();
        }
    }

    /// Sets `mapped_to` for the lap `head` is in.
    fn new_lap(&mut self) {
        let lap = self.head - (self.head & (self.mem.cap as u64 - 1));
        self.mapped_to = lap.saturating_add(self.populated.0);
    }

    /// Consumes the record returned by the last `peek`.
    pub(crate) fn advance(&mut self) {
        debug_assert!(self.peeked != 0, "advance without a peeked record");
        self.mem
            .track_read(self.head as usize & (self.mem.cap - 1), self.peeked);
        self.head += self.peeked as u64;
        self.peeked = 0;
        self.publish();
    }

    fn publish(&self) {
        // SYNC POINT space (Release): we are done reading everything before `head`.
        self.mem.head().store(self.head, Ordering::Release);
    }
}

/// How much of the buffer one end has faulted in: offsets below `.0` (`u64::MAX` once
/// the whole buffer is in; records reach offsets in increasing order, from 0 again
/// after each wrap or rewind).
///
/// The pages are faulted in ahead of the records in doubling steps (4 KiB, 8 KiB, ...
/// up to the buffer), not all at the first record: a ring that carries a few small
/// messages then commits a page or two rather than its whole buffer (the memory of
/// all-to-all jobs at large N), while a stream still takes one system call per
/// doubling instead of a page fault every 4 KiB. Once records pass 16 KiB
/// ([`EAGER_FROM`]), the steps jump to the ring's span ([`REWIND_SPAN`]): a pair that
/// has sent that much is a stream, and the span is what it uses while its consumer
/// keeps up. The consumer's steps follow the same
/// sequence behind the producer's (it reads no offset the producer has not written),
/// so it only maps pages the producer has already committed.
#[derive(Clone, Copy)]
struct Populated(u64);

/// Past this offset a ring's pages are committed through its span in one step.
const EAGER_FROM: u64 = 16 << 10;

impl Populated {
    const NONE: Populated = Populated(0);
    /// The first step: one page.
    const FIRST: u64 = 4096;

    /// Faults in the next steps until `reach` is covered (or the whole buffer is).
    #[cold]
    #[inline(never)]
    fn grow(&mut self, mem: &RingMem, reach: u64, write: bool) {
        if write && self.0 == 0 {
            mem.announce_writer();
        }
        let cap = mem.cap as u64;
        let mut to = self.0.max(Self::FIRST);
        while to < reach && to < cap {
            to *= 2;
        }
        // A stream commits at once the span it stays in while its consumer keeps up,
        // rather than a step at each doubling while it is timed (the first sizes of
        // the OSU programs paid 20-25 % for them).
        let span = mem.span as u64;
        if reach > EAGER_FROM && cap >= 2 * span {
            to = to.max(span);
        }
        let to = to.min(cap);
        mem.populate(self.0 as usize, to as usize, write);
        self.0 = if to == cap { u64::MAX } else { to };
    }
}

/// A ring in ordinary heap memory, for tests and the in-process benchmarks.
pub(crate) struct HeapRing {
    ptr: NonNull<u8>,
    layout: std::alloc::Layout,
    #[cfg(loom)]
    _model: Box<RingModel>,
}

// SAFETY: plain heap memory; access is governed by the ring protocol.
unsafe impl Send for HeapRing {}
// SAFETY: as above.
unsafe impl Sync for HeapRing {}

impl Drop for HeapRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `heap_ring` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// A producer and a consumer of a fresh ring of `cap` bytes in heap memory.
#[allow(dead_code)] // used by tests and the in-process benchmarks
pub(crate) fn heap_ring(cap: usize) -> (Producer, Consumer) {
    assert!(cap.is_power_of_two() && (MIN_CAPACITY..=MAX_CAPACITY).contains(&cap));
    let layout = std::alloc::Layout::from_size_align(128 + cap, 128).expect("ring layout");
    // SAFETY: non-zero size.
    let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).expect("out of memory");
    // Under loom, zero bytes are no atomic: build the head word and the model.
    #[cfg(loom)]
    let model = {
        let head = RingHead {
            head: CachePadded::new(AtomicU64::new(0)),
        };
        // SAFETY: the allocation starts with room for a `RingHead`, 128-byte aligned.
        unsafe { ptr.cast::<RingHead>().write(head) };
        Box::new(RingModel {
            seals: (0..cap / ALIGN).map(|_| AtomicU64::new(0)).collect(),
            granules: (0..cap / ALIGN)
                .map(|_| loom::cell::UnsafeCell::new(()))
                .collect(),
        })
    };
    #[cfg(loom)]
    let model_ptr = NonNull::from(&*model);
    let keep = Arc::new(HeapRing {
        ptr,
        layout,
        #[cfg(loom)]
        _model: model,
    });
    // SAFETY: zeroed memory of the right size and alignment, kept alive by `keep` in
    // both ends; exactly one producer and one consumer are made.
    unsafe {
        let mem = RingMem::new(ptr.cast(), ptr.add(128), cap);
        #[cfg(loom)]
        let mem = RingMem {
            model: Some(model_ptr),
            ..mem
        };
        let mut p = Producer::new(mem);
        let mut c = Consumer::new(mem);
        p._keep = Some(keep.clone());
        c._keep = Some(keep);
        (p, c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `copy_small` copies exactly `len` bytes at every length and alignment its arms
    /// cover (and past them, where it calls `memcpy`), touching nothing around them.
    #[test]
    fn small_copies_are_exact() {
        for len in 0..=80 {
            for (so, dofs) in [(0, 0), (1, 3), (7, 9), (13, 2)] {
                let src = pattern(len as u64 + 1, len + so);
                let mut dst = vec![0xeeu8; len + dofs + 16];
                copy_from(&mut dst[dofs..dofs + len], &src[so..]);
                assert_eq!(&dst[dofs..dofs + len], &src[so..], "len {len}");
                assert!(dst[..dofs].iter().all(|&b| b == 0xee), "len {len}");
                assert!(dst[dofs + len..].iter().all(|&b| b == 0xee), "len {len}");
            }
        }
    }

    fn pattern(seed: u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (seed.wrapping_mul(31).wrapping_add(i as u64 * 7) >> 1) as u8)
            .collect()
    }

    /// Bytes the memfd behind `fd` holds (its committed pages).
    #[cfg(not(loom))]
    fn committed(fd: &std::os::fd::OwnedFd) -> usize {
        nix::sys::stat::fstat(fd).unwrap().st_blocks as usize * 512
    }

    /// A ring of `cap` bytes and span `span` in a fresh memfd, as in the segment: the
    /// memfd, its mapping (to be kept until both ends are dropped) and the two ends.
    #[cfg(not(loom))]
    fn memfd_ring_span(
        cap: usize,
        span: usize,
    ) -> (
        std::os::fd::OwnedFd,
        crate::sys::shm::Mapping,
        Producer,
        Consumer,
    ) {
        let (fd, map) = crate::sys::shm::create(128 + cap).unwrap();
        // SAFETY: a fresh zero-filled memfd mapping of 128 + cap bytes, page aligned,
        // which the caller keeps alive while it uses the ends; one producer and one
        // consumer.
        let (p, c) = unsafe {
            let mem = RingMem::new(map.base().cast(), map.base().add(128), cap).with_span(span);
            (Producer::new(mem), Consumer::new(mem))
        };
        (fd, map, p, c)
    }

    /// A ring in a real memfd (as in the segment) commits memory only as far as its
    /// records have reached, in doubling steps, not its whole buffer at the first
    /// record; a full lap commits all of it.
    #[cfg(not(loom))]
    #[test]
    fn a_few_small_records_commit_a_page_or_two_not_the_whole_ring() {
        let cap = 1 << 20;
        let (fd, map, mut p, mut c) = memfd_ring_span(cap, REWIND_SPAN);
        for i in 0..4u64 {
            assert!(p.try_push_whole(1, &[i], &i.to_le_bytes()));
            let r = c.peek().unwrap().expect("a record");
            assert_eq!(r.words[0], i);
            c.advance();
        }
        let after_small = committed(&fd);
        assert!(
            after_small <= 16 << 10,
            "4 records of 8 bytes committed {after_small} bytes of a 1 MiB ring"
        );
        let big = vec![7u8; 200 << 10];
        assert_eq!(p.push(2, &[], &big, 0), Some(big.len()));
        let after_big = committed(&fd);
        assert!(
            (200 << 10..=512 << 10).contains(&after_big),
            "a 200 KiB record committed {after_big} bytes"
        );
        c.peek().unwrap().expect("the large record");
        c.advance();
        // A consumer that falls behind: the producer runs through the whole buffer.
        let chunk = vec![1u8; 100 << 10];
        let mut pushed = 0;
        while p.push(2, &[], &chunk, 0).is_some() {
            pushed += 1;
        }
        assert!(
            pushed >= 8,
            "{pushed} records of 100 KiB filled a 1 MiB ring"
        );
        for _ in 0..pushed {
            c.peek().unwrap().expect("a record");
            c.advance();
        }
        assert!(committed(&fd) >= cap, "a full lap commits the whole ring");
        drop((p, c, map));
    }

    /// Records the consumer keeps up with stay in the ring's first span of bytes (and
    /// their pages), however many go through; records it falls behind on use the whole
    /// buffer, as before. Either way every record arrives intact and in order. For the
    /// default span and the smaller ones of jobs of many ranks.
    #[cfg(not(loom))]
    #[test]
    fn records_the_consumer_keeps_up_with_stay_near_the_start_of_the_buffer() {
        for (cap, span) in [
            (1 << 20, REWIND_SPAN),
            (1 << 20, 64 << 10),
            (64 << 10, MIN_REWIND_SPAN),
        ] {
            keep_up_within_span(cap, span);
        }
    }

    #[cfg(not(loom))]
    fn keep_up_within_span(cap: usize, span: usize) {
        let (fd, map, mut p, mut c) = memfd_ring_span(cap, span);
        let mut next = 0u64;
        let mut check = |c: &mut Consumer, n: u64| {
            for _ in 0..n {
                let r = c.peek().unwrap().expect("a record");
                assert_eq!(r.words[0], next);
                assert_eq!(r.payload, &pattern(next, (next % 61) as usize)[..]);
                c.advance();
                next += 1;
            }
        };
        // 8 MiB of records in step (a ping-pong), then in windows of 64 (of 16-96
        // bytes: at most a quarter of the smallest span waits).
        let mut i = 0u64;
        for window in [1, 64] {
            for _ in 0..(8 << 20) / 64 / window {
                for _ in 0..window {
                    let bytes = pattern(i, (i % 61) as usize);
                    assert!(p.try_push_whole(1, &[i], &bytes));
                    assert!(
                        p.tail as usize % cap <= rewind_from(span) + 96,
                        "record {i}"
                    );
                    i += 1;
                }
                check(&mut c, window);
            }
        }
        let small = committed(&fd);
        assert!(
            small <= span + 4096, // and the page the ring's head word starts
            "records kept up with committed {small} bytes of a {cap}-byte ring (span {span})"
        );
        // Windows of records of 1 KiB, nearly `rewind_from - rewind_slack` bytes: a window
        // that starts after the first does not fit before `rewind_from` and reaches it
        // with more than `rewind_slack` waiting, so the producer goes on past the span.
        // (A window starts where the last one rewound at most: before the consumer has
        // passed that skip record, the producer has that much room up to it.)
        let per_window = (rewind_from(span) - rewind_slack(span) as usize) / 1024 - 1;
        let mut furthest = 0;
        for _ in 0..16 {
            for _ in 0..per_window {
                let bytes = vec![i as u8; 1000];
                assert_eq!(p.push(1, &[i], &bytes, 1000), Some(1000), "record {i}");
                furthest = furthest.max(p.tail as usize % cap);
                i += 1;
            }
            for _ in 0..per_window {
                let r = c.peek().unwrap().expect("a record");
                assert_eq!((r.words[0], r.payload[999]), (next, next as u8));
                c.advance();
                next += 1;
            }
        }
        assert!(
            furthest > span + span / 4,
            "a lagging consumer's records reached {furthest} (span {span})"
        );
        assert!(c.peek().unwrap().is_none());
        drop((p, c, map));
    }

    /// A consumer polls a ring whose producer has not started without reading (and so
    /// committing) any of its memory, and sees the first record once it is written.
    #[cfg(not(loom))]
    #[test]
    fn polling_a_ring_nobody_writes_commits_no_memory() {
        let cap = 1 << 16;
        let (fd, map) = crate::sys::shm::create(128 + cap).unwrap();
        let word = Box::new(AtomicU64::new(0));
        // SAFETY: as in the test above; the announcement word outlives both ends.
        let (mut p, mut c) = unsafe {
            let mem = RingMem::new(map.base().cast(), map.base().add(128), cap)
                .with_announce(NonNull::from(&*word), 1 << 5);
            (Producer::new(mem), Consumer::new(mem))
        };
        for _ in 0..1000 {
            assert!(!c.has_data());
        }
        assert_eq!(committed(&fd), 0, "polling committed memory");
        assert!(p.try_push_whole(1, &[7], b"12345678"));
        assert_eq!(word.load(Ordering::Relaxed), 1 << 5);
        assert!(c.has_data());
        assert_eq!(c.peek().unwrap().expect("the record").words[0], 7);
        c.advance();
        drop((p, c, map));
    }

    #[test]
    fn empty_ring_has_no_record() {
        let (_p, mut c) = heap_ring(4096);
        assert!(!c.has_data());
        assert!(c.peek().unwrap().is_none());
    }

    #[test]
    fn records_keep_kind_words_and_payload() {
        let (mut p, mut c) = heap_ring(4096);
        assert_eq!(p.push(7, &[1, 2, 3], b"hello", 5), Some(5));
        assert_eq!(p.push(9, &[], b"", 0), Some(0));
        let r = c.peek().unwrap().unwrap();
        assert_eq!((r.kind, r.words, r.payload), (7, [1, 2, 3], &b"hello"[..]));
        c.advance();
        let r = c.peek().unwrap().unwrap();
        assert_eq!((r.kind, r.payload.len()), (9, 0));
        c.advance();
        assert!(c.peek().unwrap().is_none());
    }

    #[test]
    fn full_ring_refuses_then_accepts_after_consumer_advances() {
        let (mut p, mut c) = heap_ring(4096);
        let big = vec![1u8; 1000];
        let mut n = 0;
        while p.push(1, &[], &big, big.len()).is_some() {
            n += 1;
        }
        // Records are padded to 1024 bytes; a 4th would leave no room for the
        // 16-byte reserve slot.
        assert_eq!(n, 3);
        assert!(p.push(1, &[], &big, big.len()).is_none());
        c.peek().unwrap().unwrap();
        c.advance();
        assert!(p.push(1, &[], &big, big.len()).is_some());
    }

    #[test]
    fn partial_push_takes_what_fits() {
        let (mut p, _c) = heap_ring(4096);
        let big = vec![3u8; 10_000];
        let n = p.push(1, &[0, 0, 0], &big, 1024).unwrap();
        // 4 KiB less the reserve slot, the 64-byte header (32 + padding to the cache
        // line), rounded down to whole cache lines.
        assert_eq!(n, (4096 - 16 - 64) / 64 * 64);
        assert!(p.push(1, &[], &big, 1024).is_none());
    }

    #[test]
    fn large_payloads_start_on_a_cache_line_and_small_ones_do_not_pad() {
        let (mut p, mut c) = heap_ring(1 << 16);
        for round in 0..300u64 {
            let len = [0, 8, 40, 1023, 1024, 1500, 4096, 5000][round as usize % 8];
            let data = pattern(round, len);
            let nwords = round as usize % 4;
            let words = &[round, 1, 2][..nwords];
            if round % 3 == 0 && nwords == 1 {
                assert!(
                    p.try_push_whole(6, words, &data) || p.push(6, words, &data, len).is_some()
                );
            } else {
                assert_eq!(p.push(6, words, &data, len), Some(len));
            }
            let r = c.peek().unwrap().unwrap();
            assert_eq!(r.payload, &data[..], "round {round}");
            let at = r.payload.as_ptr() as usize - c.mem.data.as_ptr() as usize;
            let start = c.head as usize & ((1 << 16) - 1);
            if len >= ALIGN_PAYLOAD_FROM {
                assert_eq!(at % LINE, 0, "round {round}: payload at offset {at}");
            } else {
                assert_eq!(at, start + header_len(nwords), "round {round}: no padding");
            }
            c.advance();
        }
    }

    #[test]
    fn wrap_around_uses_skip_records() {
        let (mut p, mut c) = heap_ring(4096);
        // Misalign the ring so that records must wrap.
        for round in 0..200u64 {
            let len = 1 + (round as usize * 977) % 1500;
            let data = pattern(round, len);
            assert_eq!(p.push(2, &[round], &data, len), Some(len), "round {round}");
            let r = c.peek().unwrap().unwrap();
            assert_eq!(r.words[0], round);
            assert_eq!(r.payload, &data[..]);
            c.advance();
        }
        assert!(p.is_drained());
    }

    /// `take_if` of a one-word record into `out` (if it fits and `accept` agrees):
    /// the header word and the payload length.
    fn take_into(
        c: &mut Consumer,
        kind: u8,
        out: &mut [u8],
        accept: impl FnOnce(u64, usize) -> bool,
    ) -> Take<(u64, usize)> {
        let room = out.len();
        c.take_if(
            kind,
            1,
            |w, n| n <= room && accept(w[0], n),
            |w, payload| {
                out[..payload.len()].copy_from_slice(payload);
                (w[0], payload.len())
            },
        )
    }

    #[test]
    fn fast_push_and_take_agree_with_push_and_peek_across_wrap_around() {
        let (mut p, mut c) = heap_ring(4096);
        let mut out = vec![0u8; 2048];
        for round in 0..500u64 {
            let len = (round as usize * 613) % 1200;
            let data = pattern(round, len);
            // The fast push declines (writing nothing) only where a record must wrap.
            if !p.try_push_whole(5, &[round], &data) {
                assert_eq!(p.push(5, &[round], &data, len), Some(len), "round {round}");
            }
            // Alternate the fast take with peek + advance; skip records stay for peek.
            let taken = match take_into(&mut c, 5, &mut out, |w, n| w == round && n == len) {
                Take::Took((word, n)) => {
                    assert_eq!((word, &out[..n]), (round, &data[..]));
                    true
                }
                Take::Other => false,
                Take::Empty => panic!("round {round}: record not seen"),
            };
            if !taken {
                let r = c.peek().unwrap().unwrap();
                assert_eq!((r.kind, r.words[0], r.payload), (5, round, &data[..]));
                c.advance();
            }
        }
        assert!(p.is_drained());
        assert_eq!(take_into(&mut c, 5, &mut out, |_, _| true), Take::Empty);
    }

    #[test]
    fn take_if_leaves_what_it_refuses_in_place() {
        let (mut p, mut c) = heap_ring(4096);
        assert!(p.try_push_whole(5, &[42], b"abcdefgh"));
        let mut small = [0u8; 4];
        let mut out = [0u8; 8];
        // Another kind, a refusal, a buffer too short: nothing consumed.
        assert_eq!(take_into(&mut c, 6, &mut out, |_, _| true), Take::Other);
        assert_eq!(take_into(&mut c, 5, &mut out, |_, _| false), Take::Other);
        assert_eq!(take_into(&mut c, 5, &mut small, |_, _| true), Take::Other);
        assert_eq!(out, [0; 8]);
        let r = c.peek().unwrap().unwrap();
        assert_eq!((r.kind, r.words[0], r.payload), (5, 42, &b"abcdefgh"[..]));
        c.advance();
        // A record with another word count is left for peek; with the right count,
        // both words come through.
        p.push(5, &[1, 2], b"x", 1).unwrap();
        assert_eq!(take_into(&mut c, 5, &mut out, |_, _| true), Take::Other);
        let got = c.take_if(5, 2, |w, n| *w == [1, 2] && n == 1, |w, b| (*w, b.to_vec()));
        assert_eq!(got, Take::Took(([1, 2], b"x".to_vec())));
        assert_eq!(take_into(&mut c, 5, &mut out, |_, _| true), Take::Empty);
    }

    #[test]
    fn fast_push_refuses_when_full_and_writes_nothing() {
        let (mut p, mut c) = heap_ring(4096);
        let big = vec![1u8; 1000];
        let mut n = 0;
        while p.try_push_whole(1, &[n], &big) {
            n += 1;
        }
        assert_eq!(
            n, 3,
            "three 1024-byte records and the reserve slot fill 4 KiB"
        );
        let mut out = vec![0u8; 1000];
        for i in 0..3 {
            assert_eq!(
                take_into(&mut c, 1, &mut out, |w, _| w == i),
                Take::Took((i, 1000))
            );
        }
        assert_eq!(take_into(&mut c, 1, &mut out, |_, _| true), Take::Empty);
    }

    #[test]
    fn corrupted_seal_is_an_error_not_a_misread() {
        let (mut p, mut c) = heap_ring(4096);
        p.push(1, &[], b"abc", 3).unwrap();
        // Overwrite the seal with a record claiming a huge length.
        c.mem
            .seal(0)
            .store(pack_seal(1 << 20, 1, 0, 0, 0), Ordering::Release);
        assert!(c.peek().is_err());
        c.mem
            .seal(0)
            .store(pack_seal(3, 1, 0, 0, 4096), Ordering::Release);
        assert!(c.peek().is_err(), "wrong sequence number");
        c.mem
            .seal(0)
            .store(pack_seal(3, 1, 0, 4, 0), Ordering::Release);
        assert!(c.peek().is_err(), "more padding than a cache line");
        c.mem
            .seal(0)
            .store(pack_seal(3, 1, 0, 0, 0), Ordering::Release);
        assert_eq!(
            c.peek().unwrap().unwrap().payload,
            b"abc",
            "the original seal"
        );
    }

    /// Replays one ring image: the whole buffer, as a hostile producer could leave it.
    /// The consumer must report errors, never panic or read outside the ring.
    fn replay(image: &[u8]) -> (usize, bool) {
        let cap = MIN_CAPACITY;
        let (_p, mut c) = heap_ring(cap);
        // SAFETY: the heap ring's buffer is `cap` bytes; nobody else uses it.
        unsafe {
            let n = image.len().min(cap);
            std::ptr::copy_nonoverlapping(image.as_ptr(), c.mem.data.as_ptr(), n);
        }
        let mut records = 0;
        for _ in 0..10_000 {
            match c.peek() {
                Ok(Some(r)) => {
                    assert!(r.payload.len() <= cap);
                    records += 1;
                    c.advance();
                }
                Ok(None) => return (records, false),
                Err(_) => return (records, true),
            }
        }
        (records, false)
    }

    /// The regression corpus in `tests/corpus/ring/`: ring images that once needed
    /// care (bad skips, overlong records, wrong sequence numbers, zero kinds...).
    #[test]
    fn ring_corpus_replays_without_crashing() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/ring");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).expect("corpus directory") {
            let image = std::fs::read(e.unwrap().path()).unwrap();
            replay(&image);
            n += 1;
        }
        assert!(n >= 5, "corpus has {n} entries");
    }

    /// Random ring images, many with plausible seals: errors, never crashes.
    #[test]
    fn random_ring_images_are_rejected_or_read_within_bounds() {
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut errors = 0;
        for _ in 0..3000 {
            let mut image = vec![0u8; MIN_CAPACITY];
            let mut pos = 0usize;
            // A chain of seals, each plausible or not.
            while pos + 16 <= MIN_CAPACITY {
                let len = match next() % 4 {
                    0 => next() % 64,
                    1 => next() % 5000,
                    2 => next(),
                    _ => 0,
                } as usize;
                let kind = [1u8, 2, 3, 0, 0xff, 9][(next() % 6) as usize];
                let nwords = (next() % 5) as usize;
                let pad = [0, 0, 1, 2, 3, 4, 15][(next() % 7) as usize];
                let seq_ok = next() % 4 != 0;
                let pos_or = if seq_ok { pos as u64 } else { next() };
                let seal = pack_seal(len, kind, nwords, pad, pos_or);
                image[pos..pos + 8].copy_from_slice(&seal.to_le_bytes());
                let hdr = header_len(nwords.min(MAX_WORDS)) + pad.min(3) * ALIGN;
                pos += record_len(hdr, len.min(MIN_CAPACITY)).max(16);
                if next() % 8 == 0 {
                    break;
                }
            }
            if replay(&image).1 {
                errors += 1;
            }
        }
        assert!(errors > 0);
    }

    /// A 1 MiB ring, where a stale seal from the previous lap carries the same
    /// sequence number as a fresh one (positions / 16 wrap at 2^16 every 1 MiB): only
    /// the zeroed next slot (zeroed before the seal or ahead of it by `zero_ahead`)
    /// tells the consumer where the records end. Three laps of records of every small
    /// size and some large ones, between two threads, arrive intact and in order.
    #[test]
    fn stale_seals_of_the_previous_lap_are_never_read_as_records() {
        let (mut p, mut c) = heap_ring(1 << 20);
        let sizes: Vec<usize> = (0..40_000u64)
            .map(|i| match i % 97 {
                0 => 5000 + (i as usize * 31) % 60_000,
                _ => (i as usize * 37) % 200,
            })
            .collect();
        // The consumer compares with precomputed data, the producer computes it as it
        // goes: the consumer keeps catching up and polls slots just past the last
        // record, where the previous laps left their bytes.
        let expect: Vec<Vec<u8>> = (0..sizes.len())
            .map(|i| pattern(i as u64, sizes[i]))
            .collect();
        std::thread::scope(|s| {
            let sizes2 = sizes.clone();
            s.spawn(move || {
                for (i, &len) in sizes2.iter().enumerate() {
                    let data = pattern(i as u64, len);
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
                    while !p.try_push_whole(4, &[i as u64], &data)
                        && p.push(4, &[i as u64], &data, len).is_none()
                    {
                        if std::time::Instant::now() > deadline {
                            return; // the consumer fails the test
                        }
                        std::hint::spin_loop();
                    }
                }
            });
            // A misread ring stalls one side or the other: fail instead of hanging.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            for (i, want) in expect.iter().enumerate() {
                let r = loop {
                    if let Some(r) = c.peek().unwrap() {
                        break r;
                    }
                    assert!(std::time::Instant::now() < deadline, "stuck at record {i}");
                    std::hint::spin_loop();
                };
                assert_eq!((r.kind, r.words[0]), (4, i as u64), "record {i}");
                assert_eq!(r.payload, &want[..], "record {i}");
                c.advance();
            }
        });
    }

    /// Threads over ordinary memory: every size class from 0 bytes to the largest
    /// record, with partial pushes, arrives intact and in order (in a 1 MiB ring also
    /// across the producer's early returns to offset 0, `rewind_from`).
    #[test]
    fn threads_stream_records_of_every_size_in_order() {
        for cap in [4096usize, 65536, 1 << 20] {
            let (mut p, mut c) = heap_ring(cap);
            // The largest record (at most 64 KiB: `cargo test` runs this with debug
            // assertions too).
            let max = p.max_payload(1).min(65536);
            let sizes: Vec<usize> = (0..3000u64)
                .map(|i| match i % 5 {
                    0 => 0,
                    1 => (i as usize * 13) % 64,
                    2 => (i as usize * 131) % 4096,
                    3 => max,
                    _ => (i as usize * 7919) % (3 * cap.min(65536)),
                })
                .collect();
            let total: usize = sizes.iter().sum();
            std::thread::scope(|s| {
                let sizes2 = sizes.clone();
                s.spawn(move || {
                    for (i, &len) in sizes2.iter().enumerate() {
                        let data = pattern(i as u64, len);
                        let mut off = 0;
                        loop {
                            let part = &data[off..];
                            match p.push(3, &[i as u64, off as u64], part, part.len().min(512)) {
                                Some(n) => {
                                    off += n;
                                    if off == len {
                                        break;
                                    }
                                }
                                None => std::hint::spin_loop(),
                            }
                        }
                    }
                });
                let mut got = 0usize;
                for (i, &len) in sizes.iter().enumerate() {
                    let data = pattern(i as u64, len);
                    let mut off = 0;
                    loop {
                        let Some(r) = c.peek().unwrap() else {
                            std::hint::spin_loop();
                            continue;
                        };
                        assert_eq!(r.words[0], i as u64);
                        assert_eq!(r.words[1], off as u64);
                        assert_eq!(r.payload, &data[off..off + r.payload.len()]);
                        off += r.payload.len();
                        got += r.payload.len();
                        c.advance();
                        if off == len {
                            break;
                        }
                    }
                }
                assert_eq!(got, total);
            });
        }
    }
}

/// Model checks of the ring under loom (see the module doc and `sync.rs`): every
/// interleaving of a producer thread and a consumer thread, within loom's bounds.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;

    /// Preemptions per execution: every schedule of the two threads with at most this
    /// many switches away from a thread that could go on (a bug that needs more
    /// escapes; loom's authors find most need two or three).
    const PREEMPTIONS: usize = 2;

    /// The payload of record `i`.
    fn data(i: u64, len: usize) -> Vec<u8> {
        (0..len).map(|k| (i as usize * 37 + k) as u8).collect()
    }

    /// Pushes one whole record of kind 2 with header word `i`, by the fast path first
    /// when `fast`, waiting (a loom yield) while the ring is full.
    fn push(p: &mut Producer, fast: bool, i: u64, payload: &[u8]) {
        while !(fast && p.try_push_whole(2, &[i], payload))
            && p.push(2, &[i], payload, payload.len()).is_none()
        {
            loom::thread::yield_now();
        }
    }

    /// Pops the next record (its header word and payload), by `take_if` first when
    /// `fast`, else by `peek` and `advance`, waiting while the ring is empty.
    fn pop(c: &mut Consumer, fast: bool) -> (u64, Vec<u8>) {
        loop {
            if fast {
                match c.take_if(2, 1, |_, _| true, |w, p| (w[0], p.to_vec())) {
                    Take::Took(r) => return r,
                    Take::Empty => {
                        loom::thread::yield_now();
                        continue;
                    }
                    // A skip record: `peek` steps over it.
                    Take::Other => {}
                }
            }
            if let Some(r) = c.peek().expect("a well-formed ring") {
                assert_eq!(r.kind, 2);
                let got = (r.words[0], r.payload.to_vec());
                c.advance();
                return got;
            }
            loom::thread::yield_now();
        }
    }

    /// Streams records of `sizes` from a producer thread to the consumer, alternating
    /// the fast and the general paths on both sides; checks that each arrives whole
    /// and in order, and returns the consumer's final position.
    fn stream(sizes: &'static [usize]) -> u64 {
        let (mut p, mut c) = heap_ring(MIN_CAPACITY);
        let producer = loom::thread::spawn(move || {
            for (i, &len) in sizes.iter().enumerate() {
                push(&mut p, i % 2 == 0, i as u64, &data(i as u64, len));
            }
        });
        for (i, &len) in sizes.iter().enumerate() {
            let (word, payload) = pop(&mut c, i % 2 == 1);
            assert_eq!(word, i as u64, "records arrive in order");
            assert!(payload == data(i as u64, len), "record {i} arrives intact");
        }
        producer.join().unwrap();
        assert!(c.peek().unwrap().is_none());
        c.head
    }

    /// Records of several sizes (short, cache-line aligned payloads of 1 KiB and more),
    /// the last of which does not fit before the end of the 4 KiB buffer: it goes to
    /// offset 0 behind a skip record, once the consumer has freed the space, and
    /// overwrites bytes the consumer has read.
    #[test]
    fn loom_records_of_several_sizes_wrap_behind_a_skip_record() {
        crate::sync::check("wrap", Some(PREEMPTIONS), || {
            // The records take 48 + 1120 + 1552 + 624 bytes; the last one (1376 bytes
            // at offset 0) follows a 752-byte skip record.
            let head = stream(&[24, 1100, 1500, 600, 1300]);
            assert_eq!(head, 4096 + 1376, "the last record wrapped");
        });
    }

    /// Five 1 KiB records through a 4 KiB ring: the fourth must wait until the
    /// consumer frees the first (it fills the buffer to its end, its next slot is
    /// offset 0), the fifth until it frees the second, and it overwrites the first.
    #[test]
    fn loom_full_ring_producer_waits_for_the_space_the_consumer_frees() {
        crate::sync::check("full ring", Some(PREEMPTIONS), || {
            let head = stream(&[1000; 5]);
            assert_eq!(head, 5 * 1024);
        });
    }
}
