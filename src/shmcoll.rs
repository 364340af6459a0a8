//! The collective area of the segment: per-communicator member blocks (arrival
//! counters, call signatures, inline data) and one data slot per rank, through which
//! collectives move data without going through the point-to-point rings.
//!
//! ```text
//! coll_offset + 0        PoolHeader (128 bytes): the context-id counter
//!              + 128     refs[areas]: AtomicU32 per communicator area (0 = free)
//! areas_off              area a, member i at areas_off + (a * N + i) * 256:
//!                        Member { line (128 B): arrive, sig_step, sig, count,
//!                                 inline[2][2 words] | padding; done line (128 B) }
//! slots_off              rank r's data slot at slots_off + r * slot_bytes, two halves;
//!                        data published at step t is in half t % 2 (and inline[t % 2])
//! bcast_off              area a < RING_AREAS: BCAST_CELLS cells of 64 bytes, the
//!                        small broadcasts of a run; step t's in cell t % BCAST_CELLS
//! ```
//!
//! Area 0 belongs to the world communicator for the whole job; the others are taken
//! by `dup`/`split` (CAS of `refs` from 0 to the member count) and given back by each
//! member when it frees its communicator, so creating and freeing communicators in a
//! loop never exhausts the pool. A communicator of one rank (`COMM_SELF`, its dups, a
//! split of one) takes no pooled area: its one member block is in the process's heap
//! (`Area::new_private`), since no other process reads it.
//!
//! The protocol that uses these words is described in `collective/mod.rs`; this file
//! only gives safe access to them.
//!
//! # Memory ordering
//!
//! | word | written by | read by | ordering |
//! |---|---|---|---|
//! | `Line::arrive` | the member, once per step | the other members | Release/Acquire: `SYNC POINT arrive`, publishes the inline words and the slot bytes written before it |
//! | `Line::sig_step`, `sig`, `count` | the member, at the first step of a call whose signature differs from its previous one | other members, to check the call matches | seqlock: `sig_step = MAX`, fence(Release), fields, `sig_step = step` (Release); the reader re-reads `sig_step` after a fence(Acquire) |
//! | `Line::inline` | the member, before its `arrive` | readers after their Acquire of `arrive` | Relaxed, ordered by `SYNC POINT arrive` |
//! | `DoneLine::done` | the member, at the end of a call | a writer about to reuse its slot | Release/Acquire: `SYNC POINT done`, orders the member's reads of the slot before the writer's overwrite |
//! | `BcastCell` words | the root of a run of small broadcasts, before its `arrive` for the step | members, after their Acquire of that `arrive` | Relaxed, ordered by `SYNC POINT arrive`; the root rewrites a cell only once every member's `done` (or a later `arrive`) says it has read it (`SYNC POINT done`) |
//! | `refs` | the allocating leader (CAS), each member on free (fetch_sub) | allocators | AcqRel: `SYNC POINT refs`, the last member's reads happen before the next owner's reset |
//! | `next_ctx` | leaders creating a communicator | - | Relaxed: uniqueness only |
//! | slot bytes | the slot's owner | members of the area it published in | plain copies, ordered by `SYNC POINT arrive` (owner writes, then arrives) and `SYNC POINT done` (readers finish, then the owner may overwrite) |

use std::cell::{Cell, RefCell};
use std::mem::size_of;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

use crate::layout::{
    BCAST_CELLS, BCAST_RING_BYTES, MEMBER_BYTES, POOL_HEADER, RING_AREAS, areas_off, bcast_off,
    slots_off,
};
use crate::matching::Group;
use crate::segment::Segment;

/// Inline data words per step parity: both parities fit the polled cache line with
/// `arrive` and the call signature (8 + 24 + 2 * 16 bytes), so that a reader that sees
/// the arrival has the data and the signature too, and no step pays a second line
/// transfer.
pub(crate) const INLINE_WORDS: usize = 2;
/// Inline data bytes per step.
pub(crate) const INLINE_BYTES: usize = INLINE_WORDS * 8;

/// The line other members poll: the arrival counter, the call signature (rewritten
/// only when a call differs from the member's previous one) and small data, in the
/// first 64 bytes, which every step reads; the rest of the 128 is padding, so that
/// the adjacent-line prefetcher does not pull in another member's line.
#[repr(C, align(128))]
pub(crate) struct Line {
    /// The last step this member has arrived at. SYNC POINT arrive.
    pub(crate) arrive: AtomicU64,
    /// The step whose call `sig`/`count` describe (`u64::MAX` while being written).
    pub(crate) sig_step: AtomicU64,
    /// Kind, op, element size and root of the call (see `collective::Sig`).
    pub(crate) sig: AtomicU64,
    /// Element count of the call.
    pub(crate) count: AtomicU64,
    /// Small data, by step parity.
    pub(crate) inline: [[AtomicU64; INLINE_WORDS]; 2],
}

/// The line a member writes when it has finished reading: rarely read by others.
#[repr(C, align(128))]
pub(crate) struct DoneLine {
    /// The last step whose published data this member has finished reading. SYNC
    /// POINT done.
    pub(crate) done: AtomicU64,
}

/// One member's block in a communicator area.
#[repr(C)]
pub(crate) struct Member {
    pub(crate) line: Line,
    pub(crate) done: DoneLine,
}

const _: () = assert!(size_of::<Member>() == MEMBER_BYTES);
const _: () = assert!(size_of::<Line>() == 128);
const _: () = assert!(std::mem::offset_of!(Line, inline) + 2 * INLINE_BYTES == 64);

/// One small broadcast of a run (`collective::Coll::bcast_eager`): the step and
/// context it belongs to, its length, and its bytes, in one cache line that every
/// member reads once.
#[repr(C, align(64))]
pub(crate) struct BcastCell {
    /// The step whose data this is.
    step: AtomicU64,
    /// The communicator's context id (high half) and the data's length (low half): an
    /// area's cells outlive the communicator that wrote them.
    ctx_len: AtomicU64,
    data: [AtomicU64; CELL_WORDS],
}

const CELL_WORDS: usize = 6;
/// The length word of a cell whose data travels otherwise.
const ELSEWHERE: u64 = 0xffff_ffff;
/// Data bytes a `BcastCell` carries.
pub(crate) const CELL_DATA: usize = CELL_WORDS * 8;

const _: () = assert!(size_of::<BcastCell>() * BCAST_CELLS == BCAST_RING_BYTES);

impl BcastCell {
    /// Stores `data` (at most `CELL_DATA` bytes) as step `step` of context `ctx`.
    pub(crate) fn write(&self, step: u64, ctx: u32, data: &[u8]) {
        assert!(data.len() <= CELL_DATA);
        for (w, c) in self.data.iter().zip(data.chunks(8)) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            w.store(u64::from_le_bytes(b), Ordering::Relaxed);
        }
        self.ctx_len
            .store(u64::from(ctx) << 32 | data.len() as u64, Ordering::Relaxed);
        self.step.store(step, Ordering::Relaxed);
    }

    /// Marks the cell as step `step` of context `ctx` whose data did not fit it (it
    /// travels otherwise).
    pub(crate) fn write_elsewhere(&self, step: u64, ctx: u32) {
        self.ctx_len
            .store(u64::from(ctx) << 32 | ELSEWHERE, Ordering::Relaxed);
        self.step.store(step, Ordering::Relaxed);
    }

    /// Reads step `step` of context `ctx`, of a length the reader does not know, into
    /// `out`: `Some(Some(len))` for data in the cell (`out[..len]`), `Some(None)` for
    /// data that travels otherwise (`write_elsewhere`), `None` if the cell holds
    /// anything else.
    pub(crate) fn read_any(
        &self,
        step: u64,
        ctx: u32,
        out: &mut [u8; CELL_DATA],
    ) -> Option<Option<usize>> {
        let v = self.ctx_len.load(Ordering::Relaxed);
        if self.step.load(Ordering::Relaxed) != step || v >> 32 != u64::from(ctx) {
            return None;
        }
        let len = v & 0xffff_ffff;
        if len == ELSEWHERE {
            return Some(None);
        }
        let len = (len as usize).min(CELL_DATA);
        for (w, c) in self.data.iter().zip(out[..len].chunks_mut(8)) {
            let b = w.load(Ordering::Relaxed).to_le_bytes();
            c.copy_from_slice(&b[..c.len()]);
        }
        Some(Some(len))
    }

    /// Reads step `step` of context `ctx` into `out` (its length must be the data's);
    /// false, with `out` unchanged, if the cell holds anything else.
    pub(crate) fn read(&self, step: u64, ctx: u32, out: &mut [u8]) -> bool {
        if self.step.load(Ordering::Relaxed) != step
            || self.ctx_len.load(Ordering::Relaxed) != u64::from(ctx) << 32 | out.len() as u64
        {
            return false;
        }
        for (w, c) in self.data.iter().zip(out.chunks_mut(8)) {
            let b = w.load(Ordering::Relaxed).to_le_bytes();
            c.copy_from_slice(&b[..c.len()]);
        }
        true
    }
}

#[repr(C)]
struct PoolHeader {
    next_ctx: AtomicU32,
}

/// Per-process collective state, shared by all communicators of the process.
pub(crate) struct Proc {
    pub(crate) seg: Rc<Segment>,
    /// World rank of this process.
    pub(crate) me: usize,
    /// Last use of each half of this rank's data slot.
    pub(crate) halves: RefCell<[Option<HalfUse>; 2]>,
    /// Whether waits poll the awaited word briefly before entering the engine's
    /// backoff loop (ranks do not outnumber CPUs).
    pub(crate) spins: bool,
}

pub(crate) struct HalfUse {
    pub(crate) area: Rc<Area>,
    pub(crate) step: u64,
}

impl Proc {
    pub(crate) fn new(seg: Rc<Segment>, me: usize, spins: bool) -> Rc<Self> {
        Rc::new(Proc {
            seg,
            me,
            halves: RefCell::new([None, None]),
            spins,
        })
    }

    pub(crate) fn shm(&self) -> CollShm<'_> {
        CollShm::new(&self.seg)
    }
}

/// This process's handle on a communicator area. The last handle gives the area back.
pub(crate) struct Area {
    pub(crate) seg: Rc<Segment>,
    pub(crate) idx: usize,
    pub(crate) group: Rc<Group>,
    /// This process's rank in `group`.
    pub(crate) me: usize,
    /// Per member: the largest `arrive` value seen.
    pub(crate) seen: Vec<Cell<u64>>,
    /// Step of the last use of each inline buffer by this rank.
    pub(crate) inline_last: [Cell<u64>; 2],
    /// The signature and count this rank last wrote in its member line.
    pub(crate) last_sig: Cell<Option<(u64, u64)>>,
    /// The run of eager broadcasts (`collective::Coll::bcast_eager`) this rank is the
    /// root of on this communicator, whose members' signatures it has yet to check.
    pub(crate) eager: Cell<Option<EagerRun>>,
    /// The first of the area's `BCAST_CELLS` broadcast cells, if it has a ring (a
    /// pooled area below `RING_AREAS`); `seg` keeps them mapped.
    ring: Option<NonNull<BcastCell>>,
    /// As the root of a run on the ring: a step through which every other member has
    /// finished reading (the least of their `done`s when last looked at).
    pub(crate) ring_read: Cell<u64>,
    pub(crate) owned: bool,
    /// The area's member blocks, located once (`AreaMembers`).
    pub(crate) members: AreaMembers,
}

/// A run of eager broadcasts from this rank (see `Area::eager`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct EagerRun {
    /// The run's first step.
    pub(crate) first: u64,
    /// The step up to which the next periodic check looks.
    pub(crate) mark: u64,
    /// The run's latest step.
    pub(crate) last: u64,
}

/// `Area::idx` of a private area, which is in no pool.
pub(crate) const PRIVATE_AREA: usize = usize::MAX;

impl Area {
    pub(crate) fn new(
        seg: Rc<Segment>,
        idx: usize,
        group: Rc<Group>,
        me: usize,
        owned: bool,
    ) -> Rc<Self> {
        let n = group.size();
        let ring = CollShm::new(&seg).ring(idx);
        Rc::new(Area {
            members: AreaMembers::new(seg.clone(), idx, n),
            ring,
            ring_read: Cell::new(0),
            seg,
            idx,
            group,
            me,
            seen: (0..n).map(|_| Cell::new(0)).collect(),
            inline_last: [Cell::new(0), Cell::new(0)],
            last_sig: Cell::new(None),
            eager: Cell::new(None),
            owned,
        })
    }

    /// A one-member area in this process's heap, for a communicator of this rank alone
    /// (`COMM_SELF`, its dups, a split of one): nobody else reads its words, so it need
    /// not take one of the segment's pooled areas, and any number of them can exist.
    pub(crate) fn new_private(seg: Rc<Segment>, group: Rc<Group>) -> Rc<Self> {
        assert_eq!(group.size(), 1, "a private area has one member");
        Rc::new(Area {
            members: AreaMembers::private(seg.clone()),
            seg,
            idx: PRIVATE_AREA,
            group,
            me: 0,
            seen: vec![Cell::new(0)],
            inline_last: [Cell::new(0), Cell::new(0)],
            last_sig: Cell::new(None),
            eager: Cell::new(None),
            ring: None,
            ring_read: Cell::new(0),
            owned: false,
        })
    }

    /// Member `j`'s block.
    #[inline]
    pub(crate) fn member(&self, j: usize) -> &Member {
        self.members.get(j)
    }

    /// The cell of step `t` in the area's ring of small broadcasts, if it has one.
    #[inline]
    pub(crate) fn bcast_cell(&self, t: u64) -> Option<&BcastCell> {
        let first = self.ring?;
        // SAFETY: the area's BCAST_CELLS cells are contiguous and in bounds (`ring`
        // checked both ends), `seg` keeps them mapped while `self` lives, and a cell
        // holds only atomics, valid for any bytes and for shared access.
        Some(unsafe { first.add((t % BCAST_CELLS as u64) as usize).as_ref() })
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        if self.owned {
            CollShm::new(&self.seg).release_area(self.idx);
        }
    }
}

/// Safe access to the collective area of a segment.
pub(crate) struct CollShm<'s> {
    seg: &'s Segment,
}

impl<'s> CollShm<'s> {
    pub(crate) fn new(seg: &'s Segment) -> Self {
        CollShm { seg }
    }

    fn n(&self) -> usize {
        self.seg.layout().nranks
    }

    /// The number of areas in the pool.
    pub(crate) fn areas(&self) -> usize {
        self.seg.layout().areas
    }

    /// Bytes of one half of a data slot.
    pub(crate) fn half_bytes(&self) -> usize {
        self.seg.layout().slot_bytes / 2
    }

    fn header(&self) -> &'s PoolHeader {
        let p = self.seg.coll_ptr(0, size_of::<PoolHeader>());
        // SAFETY: in bounds (coll_ptr asserts), aligned (the area starts on a page),
        // and PoolHeader holds only atomics, valid for any bytes.
        unsafe { p.cast::<PoolHeader>().as_ref() }
    }

    fn refs(&self, area: usize) -> &'s AtomicU32 {
        assert!(area < self.areas());
        let p = self.seg.coll_ptr(POOL_HEADER + area * 4, 4);
        // SAFETY: in bounds, 4-byte aligned, an atomic is valid for any bytes.
        unsafe { p.cast::<AtomicU32>().as_ref() }
    }

    /// Member `i` (a communicator rank) of area `area`.
    pub(crate) fn member(&self, area: usize, i: usize) -> &'s Member {
        let n = self.n();
        assert!(area < self.areas() && i < n);
        let off = areas_off(self.areas()) + (area * n + i) * MEMBER_BYTES;
        let p = self.seg.coll_ptr(off, MEMBER_BYTES);
        // SAFETY: in bounds, 256-byte aligned (page-aligned base, 256-byte stride), and
        // Member holds only atomics, valid for any bytes.
        unsafe { p.cast::<Member>().as_ref() }
    }

    /// A fresh context id (never 0, the world's).
    pub(crate) fn new_ctx(&self) -> u32 {
        self.header().next_ctx.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Takes a free area for a communicator of `members` ranks and resets its member
    /// blocks. `None` when every area is in use.
    pub(crate) fn alloc_area(&self, members: usize) -> Option<usize> {
        for a in 1..self.areas() {
            // SYNC POINT refs (Acquire): the previous members' last reads happened
            // before this reset.
            if self
                .refs(a)
                .compare_exchange(0, members as u32, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                for i in 0..members {
                    let m = self.member(a, i);
                    m.line.arrive.store(0, Ordering::Relaxed);
                    m.line.sig_step.store(0, Ordering::Relaxed);
                    m.done.done.store(0, Ordering::Relaxed);
                }
                return Some(a);
            }
        }
        None
    }

    /// Gives back one member's share of area `area`.
    pub(crate) fn release_area(&self, area: usize) {
        // SYNC POINT refs (Release).
        self.refs(area).fetch_sub(1, Ordering::AcqRel);
    }

    /// Areas in use (for tests and diagnostics).
    pub(crate) fn areas_in_use(&self) -> usize {
        (1..self.areas())
            .filter(|&a| self.refs(a).load(Ordering::Relaxed) != 0)
            .count()
    }

    /// The first cell of area `area`'s ring of small broadcasts; `None` for an area
    /// without one.
    fn ring(&self, area: usize) -> Option<NonNull<BcastCell>> {
        if area >= self.areas().min(RING_AREAS) {
            return None;
        }
        let l = self.seg.layout();
        let off = bcast_off(self.n(), self.areas(), l.slot_bytes) + area * BCAST_RING_BYTES;
        // In bounds, both ends (`coll_ptr` asserts), and 64-byte aligned (a page-aligned
        // start and a stride of whole cells).
        Some(self.seg.coll_ptr(off, BCAST_RING_BYTES).cast::<BcastCell>())
    }

    fn slot_ptr(&self, rank: usize, half: usize, off: usize, len: usize) -> *mut u8 {
        let hb = self.half_bytes();
        assert!(rank < self.n() && half < 2 && off + len <= hb);
        let start = slots_off(self.n(), self.areas())
            + rank * self.seg.layout().slot_bytes
            + half * hb
            + off;
        self.seg.coll_ptr(start, len).as_ptr()
    }

    /// Copies `src` into half `half` of `rank`'s slot at `off`. Only the slot's owner
    /// calls this, and only once every reader of the half's previous contents has said
    /// it is done (`SYNC POINT done`).
    pub(crate) fn slot_write(&self, rank: usize, half: usize, off: usize, src: &[u8]) {
        let dst = self.slot_ptr(rank, half, off, src.len());
        // SAFETY: in bounds (slot_ptr asserts); by the protocol no other process reads
        // these bytes now, and `src` is private memory, so the ranges do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) }
    }

    /// Like [`slot_write`](Self::slot_write) with non-temporal stores (see
    /// [`stream_copy`]).
    pub(crate) fn slot_write_stream(&self, rank: usize, half: usize, off: usize, src: &[u8]) {
        let dst = self.slot_ptr(rank, half, off, src.len());
        // SAFETY: as in `slot_write`: in bounds, and by the protocol nobody else reads
        // or writes these bytes now, so a unique slice over them is sound.
        let dst = unsafe { std::slice::from_raw_parts_mut(dst, src.len()) };
        stream_copy(dst, src);
    }

    /// Runs `f` on `len` bytes of half `half` of `rank`'s slot at `off`. Callers read
    /// only after the owner's `arrive` for the step that wrote them (Acquire) and before
    /// their own next `arrive`/`done`, during which the owner does not write them.
    pub(crate) fn slot_read<R>(
        &self,
        rank: usize,
        half: usize,
        off: usize,
        len: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> R {
        let p = self.slot_ptr(rank, half, off, len);
        // SAFETY: in bounds; by the protocol the owner does not write these bytes until
        // this rank has published `done` or a later `arrive`, which it does after `f`.
        let bytes = unsafe { std::slice::from_raw_parts(p, len) };
        f(bytes)
    }
}

/// The member blocks of one communicator area, located once, because
/// `CollShm::member` checks bounds and computes the block's offset on every call.
pub(crate) struct AreaMembers {
    /// Keeps the segment, and so the blocks, mapped.
    _seg: Rc<Segment>,
    first: NonNull<Member>,
    n: usize,
    /// `first` came from `Box::into_raw` (a private area) and is freed on drop.
    heap: bool,
}

impl AreaMembers {
    /// The `n` member blocks of area `area`.
    pub(crate) fn new(seg: Rc<Segment>, area: usize, n: usize) -> Self {
        let shm = CollShm::new(&seg);
        // Both ends are checked in bounds (`member` asserts); the blocks between are
        // contiguous (member `i` of area `a` is block `a * N + i`).
        let first = NonNull::from(shm.member(area, 0));
        let _ = shm.member(area, n.max(1) - 1);
        AreaMembers {
            _seg: seg,
            first,
            n,
            heap: false,
        }
    }

    /// One zeroed member block in this process's heap (see `Area::new_private`).
    fn private(seg: Rc<Segment>) -> Self {
        let z = || AtomicU64::new(0);
        let block = Box::new(Member {
            line: Line {
                arrive: z(),
                sig_step: z(),
                sig: z(),
                count: z(),
                inline: [[z(), z()], [z(), z()]],
            },
            done: DoneLine { done: z() },
        });
        AreaMembers {
            _seg: seg,
            first: NonNull::from(Box::leak(block)),
            n: 1,
            heap: true,
        }
    }

    /// Member `j`'s block.
    #[inline]
    pub(crate) fn get(&self, j: usize) -> &Member {
        assert!(j < self.n, "member {j} of a {}-member area", self.n);
        // SAFETY: blocks 0..n of the area are contiguous in the segment and in bounds
        // (checked in `new`), or block 0 is our heap block (`private`, n = 1), freed
        // only on drop; `_seg` keeps the segment mapped while `self` lives; a
        // `Member` holds only atomics, valid for any bytes and for shared access.
        unsafe { self.first.add(j).as_ref() }
    }
}

impl Drop for AreaMembers {
    fn drop(&mut self) {
        if self.heap {
            // SAFETY: `first` came from `Box::leak` in `private` and is freed only here;
            // the references `get` handed out borrow `self`, so none outlives it.
            drop(unsafe { Box::from_raw(self.first.as_ptr()) });
        }
    }
}

/// Copies `src` into `dst` with non-temporal stores where the target supports them
/// (x86-64): the bytes go to memory instead of filling this core's cache, which saves
/// the read-for-ownership of `dst` and keeps the cache for data that is read again.
/// For large data written once.
pub(crate) fn stream_copy(dst: &mut [u8], src: &[u8]) {
    assert_eq!(dst.len(), src.len());
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_sfence, _mm_stream_si128};
        let head = (dst.as_ptr() as usize).wrapping_neg() % 16;
        if src.len() < head + 256 {
            dst.copy_from_slice(src);
            return;
        }
        let body = (src.len() - head) / 64 * 64;
        dst[..head].copy_from_slice(&src[..head]);
        let d = dst.as_mut_ptr();
        let s = src.as_ptr();
        // SAFETY: `d + head` is 16-byte aligned and `head..head + body` lies inside
        // both slices (checked lengths); SSE2 is part of x86-64. The fence orders the
        // weakly ordered streaming stores before everything after this call (the
        // caller's Release store that publishes them).
        unsafe {
            let mut i = head;
            while i < head + body {
                for k in 0..4 {
                    let v = _mm_loadu_si128(s.add(i + 16 * k).cast::<__m128i>());
                    _mm_stream_si128(d.add(i + 16 * k).cast::<__m128i>(), v);
                }
                i += 64;
            }
            _mm_sfence();
        }
        let tail = head + body;
        dst[tail..].copy_from_slice(&src[tail..]);
    }
    #[cfg(not(target_arch = "x86_64"))]
    dst.copy_from_slice(src);
}

/// Writes `src` (at most `INLINE_BYTES`) into inline words `w`.
pub(crate) fn write_inline(w: &[AtomicU64; INLINE_WORDS], src: &[u8]) {
    debug_assert!(src.len() <= INLINE_BYTES);
    for (i, chunk) in src.chunks(8).enumerate() {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        w[i].store(u64::from_le_bytes(b), Ordering::Relaxed);
    }
}

/// Reads inline words `w` into `dst`.
pub(crate) fn read_inline(w: &[AtomicU64; INLINE_WORDS], dst: &mut [u64; INLINE_WORDS]) {
    for (d, s) in dst.iter_mut().zip(w) {
        *d = s.load(Ordering::Relaxed);
    }
}

/// Publishes the call signature for `step` (seqlock writer).
pub(crate) fn write_sig(l: &Line, step: u64, sig: u64, count: u64) {
    l.sig_step.store(u64::MAX, Ordering::Relaxed);
    fence(Ordering::Release);
    l.sig.store(sig, Ordering::Relaxed);
    l.count.store(count, Ordering::Relaxed);
    l.sig_step.store(step, Ordering::Release);
}

/// Reads the call signature if it is the one for the call starting at `step` (seqlock
/// reader). A member rewrites its signature only when it changes, stamped with the
/// first step of the call that changed it, so the signature read describes the call at
/// `step` if its stamp is `<= step` (the member has arrived at `step`, the caller
/// checked) and unchanged across the read; a stamp `> step` means the member has moved
/// on to a later call.
pub(crate) fn read_sig(l: &Line, step: u64) -> Option<(u64, u64)> {
    let s1 = l.sig_step.load(Ordering::Acquire);
    if s1 > step {
        return None;
    }
    let sig = l.sig.load(Ordering::Relaxed);
    let count = l.count.load(Ordering::Relaxed);
    fence(Ordering::Acquire);
    let s2 = l.sig_step.load(Ordering::Relaxed);
    (s2 == s1).then_some((sig, count))
}
