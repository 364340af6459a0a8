//! Zero-copy messages: buffers loaned from the sender's pool in the shared segment.
//!
//! After iceoryx2's loans, with MPI's matching. A rank asks for a buffer in its own
//! pool ([`Communicator::loan_slice`]), fills it, and sends it
//! ([`Communicator::send_loan`]); what travels through the ring is a 32-byte *ticket*
//! (owner, offset, length, generation), an ordinary message whose type is private to
//! shmpi, so matching, `ANY_SOURCE`/`ANY_TAG` and the non-overtaking order are those
//! of every other message. The matched receiver ([`Communicator::recv_loan`]) gets a
//! read-only view of the same bytes ([`LoanView`]); dropping the view hands the
//! memory back to the sender's pool. No payload byte is copied.
//!
//! An object is loaned the same way: [`Communicator::loan_object`] writes its rkyv
//! archive straight into the pool, [`Communicator::send_loan_object`] sends a ticket
//! (with the type's name after the four words, and an envelope type private per
//! object type), and [`Communicator::recv_loan_object`] validates the archive where it
//! lies and reads it there ([`ArchivedLoan`]).
//!
//! On the MPI backend the ranks share no pool: a loan comes from the process's own
//! (that of its private singleton segment), its contents travel in the message, and
//! the receiver's view holds a copy.
//!
//! # The rules, and what keeps them
//!
//! - *Never visible before it is sent*: only the ticket tells another rank where the
//!   buffer is, and the ticket is only written by `send_loan`.
//! - *Never writable after it is sent*: `send_loan` consumes the [`Loan`], the only
//!   handle that derefs mutably; the receiver's [`LoanView`] derefs to `&[T]`.
//! - *One receiver*: the receiver claims the block with a compare-exchange
//!   (`SENT -> HELD`) after checking the ticket against the block's header (owner,
//!   bounds, generation, addressee), so a forged or repeated ticket is an
//!   [`Error::Corrupted`], never a second view.
//! - *A dead rank loses nobody else's memory*: each rank allocates from its own pool
//!   only. A block sent to a rank that has left without receiving it, or received
//!   by a rank whose process has ended, is taken back by its owner when the owner
//!   next needs room. A view outlives its rank's finalize (it keeps the mapping), so
//!   the block of a rank that finalized holding one comes back only when the view is
//!   dropped or the process ends: until then its bytes stay as they were sent. An
//!   owner that waits for such a block is not failed (the view may yet be dropped), but
//!   once every rank that can still call shmpi is blocked the launcher names the wait
//!   and the holder (`launch/watch.rs`), so the wait is never silent.
//! - *Bounded*: a pool has `layout.loan_bytes` (256 MiB over all ranks, 1..=128 MiB
//!   each). [`Communicator::loan_slice`] waits (running progress, so that this rank's
//!   own receives go on) while loans it has sent are still held by their receivers,
//!   and fails with [`Error::Usage`] when waiting cannot help: the loan is larger
//!   than the pool, or the pool is full of loans this rank has not sent.
//!
//! The pool is a FIFO arena: blocks are taken at its tail and given back at its head,
//! so a loan that is held for long keeps the blocks after it from being reused until
//! it is dropped. When every block has come back, the next loan starts again at the
//! pool's start, so that a rank that sends one loan at a time reuses warm memory. A ticket received by anything but `recv_loan` (`recv_raw`, a
//! matched probe that is never received) keeps its block until its receiver leaves.
//!
//! # Memory ordering
//!
//! | word | written by | read by | ordering |
//! |---|---|---|---|
//! | payload and header fields of a block | the owner, before sending the ticket | the receiver, after receiving it | through the ring's `SYNC POINT record` (Release/Acquire) |
//! | `state` `SENT -> HELD` | the receiver (compare-exchange) | the owner when reclaiming | AcqRel/Acquire: only one receiver wins |
//! | `state = RELEASED` | the receiver when its view is dropped; the owner for a loan dropped unsent | the owner when reclaiming | Release/Acquire: `SYNC POINT loan-return` (the receiver's reads happen before the owner's next writes) |

use std::cell::RefCell;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use bytemuck::Pod;
use rkyv::Archive;
use rkyv::rancor;
use rkyv::ser::writer::Buffer;
use rkyv::util::AlignedVec;

use super::{Communicator, Rank, Status, Tag};
use crate::call::Call;
use crate::codec::{self, Access, EncodeLoan};
use crate::doorbell;
use crate::error::{Error, Result};
use crate::matching::Group;
use crate::progress::WaitDesc;
use crate::segment::{STATE_EXITED, Segment, WaitOp};

/// The header at the start of every block (one cache line).
#[repr(C, align(64))]
struct BlockHeader {
    /// One of the `ST_*` states. See the module doc for who writes it.
    state: AtomicU32,
    /// The global rank the block was sent to. Written by the owner before sending.
    holder: AtomicU32,
    /// Bytes of the whole block, header included. Written by the owner.
    len: AtomicU64,
    /// The block's generation (unique per allocation in this pool). Written by the owner.
    seq: AtomicU64,
}

const HDR: usize = 64;
const _: () = assert!(std::mem::size_of::<BlockHeader>() == HDR);

const ST_LOANED: u32 = 1;
const ST_SENT: u32 = 2;
const ST_HELD: u32 = 3;
const ST_RELEASED: u32 = 4;

/// The block at the head of a loan pool that has no room, as a waiting allocation
/// sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    /// Room may have come since the caller looked (the pool emptied, or the head
    /// block came back): allocate again.
    Moved,
    /// A loan sent to this world rank, which has not given it back yet.
    Held(usize),
    /// A loan this rank has not sent: waiting cannot help.
    Unsent,
}

/// The ticket's type: private, so no user receive but `recv_loan` matches it.
struct LoanTicket;

/// What a receive that refused a slice loan's ticket (four words, no type name) names
/// it, for envelope type `type_id`.
pub(crate) fn slice_ticket_name(type_id: u64) -> Option<&'static str> {
    (type_id == codec::type_id::<LoanTicket>()).then_some("a loan of plain data (send_loan)")
}

/// This process's own pool (one per segment).
pub(crate) struct Pool {
    seg: Rc<Segment>,
    me: usize,
    base: NonNull<u8>,
    cap: usize,
    st: RefCell<PoolState>,
}

/// A block as [`Pool::alloc`] made it.
struct Block {
    /// Its offset in the pool.
    off: usize,
    /// Its generation.
    seq: u64,
    /// Its position (the monotonic count of `PoolState`).
    pos: u64,
    /// The pool's tail before it (before the gap, when it wrapped).
    prev_tail: u64,
}

/// Positions are monotonic byte counts; the offset is `pos % cap`.
/// `head <= tail <= head + cap`; blocks in `[head, tail)` are live or not yet reclaimed.
struct PoolState {
    head: u64,
    tail: u64,
    seq: u64,
}

thread_local! {
    static POOL: RefCell<Option<Rc<Pool>>> = const { RefCell::new(None) };
}

impl Pool {
    /// This process's pool in `seg` (made at the first loan).
    fn of(seg: &Rc<Segment>, me: usize) -> Rc<Pool> {
        POOL.with(|p| {
            let mut p = p.borrow_mut();
            if let Some(pool) = p.as_ref().filter(|pool| Rc::ptr_eq(&pool.seg, seg)) {
                return pool.clone();
            }
            let pool = Rc::new(Pool {
                seg: seg.clone(),
                me,
                base: seg.loan_pool(me),
                cap: seg.layout().loan_bytes,
                st: RefCell::new(PoolState {
                    head: 0,
                    tail: 0,
                    seq: 1,
                }),
            });
            *p = Some(pool.clone());
            pool
        })
    }

    fn header(&self, off: usize) -> &BlockHeader {
        debug_assert!(off % HDR == 0 && off + HDR <= self.cap);
        // SAFETY: in bounds of the pool, 64-byte aligned (the pool is page aligned and
        // blocks are multiples of 64); the header's fields are atomics, so concurrent
        // access by a receiver is fine.
        unsafe { &*self.base.as_ptr().add(off).cast::<BlockHeader>() }
    }

    /// Gives back the blocks at the head that are released, sent to ranks that have
    /// left (which will never receive them), or held by ranks whose process is gone.
    /// A rank that finalized holding a view may still read it, so its block waits for
    /// the view's drop or the process's end.
    fn reclaim(&self, st: &mut PoolState) {
        while st.head < st.tail {
            let h = self.header((st.head % self.cap as u64) as usize);
            // SYNC POINT loan-return (Acquire): the receiver's reads are done.
            let state = h.state.load(Ordering::Acquire);
            let holder = h.holder.load(Ordering::Relaxed) as usize;
            let gone = match state {
                ST_SENT => self.seg.departed(holder).is_some(),
                ST_HELD => self.seg.state(holder) == STATE_EXITED,
                _ => false,
            };
            if state != ST_RELEASED && !gone {
                break;
            }
            st.head += h.len.load(Ordering::Relaxed);
        }
    }

    /// A block for `bytes` of payload, or `None` when the pool has no room now.
    fn alloc(&self, bytes: usize) -> Option<Block> {
        let need = HDR + bytes.next_multiple_of(HDR);
        let mut st = self.st.borrow_mut();
        self.reclaim(&mut st);
        if st.head == st.tail {
            // Nothing is out: start again at the pool's start, whose lines and pages
            // are warm, rather than march through cold memory to the end of the lap.
            st.head = 0;
            st.tail = 0;
        }
        let prev_tail = st.tail;
        let cap = self.cap as u64;
        let off = st.tail % cap;
        let to_end = cap - off;
        let free = cap - (st.tail - st.head);
        let need = need as u64;
        let at = if need <= to_end && need <= free {
            off
        } else if need > to_end && to_end + need <= free {
            // The gap to the end becomes a released block that the head will skip.
            let h = self.header(off as usize);
            h.len.store(to_end, Ordering::Relaxed);
            h.state.store(ST_RELEASED, Ordering::Relaxed);
            st.tail += to_end;
            0
        } else {
            return None;
        };
        let seq = st.seq;
        st.seq += 1;
        let h = self.header(at as usize);
        h.len.store(need, Ordering::Relaxed);
        h.seq.store(seq, Ordering::Relaxed);
        h.holder.store(u32::MAX, Ordering::Relaxed);
        h.state.store(ST_LOANED, Ordering::Relaxed);
        let pos = st.tail;
        st.tail += need;
        Some(Block {
            off: at as usize,
            seq,
            pos,
            prev_tail,
        })
    }

    /// The largest block the pool can give now without waiting (the free run at its
    /// tail, or the one from its start when that is longer), for an archive whose
    /// length is only known once it is written; [`trim`](Self::trim) then gives back
    /// what it did not use. With the block, the payload bytes it holds.
    fn alloc_rest(&self) -> Option<(Block, usize)> {
        let run = {
            let mut st = self.st.borrow_mut();
            self.reclaim(&mut st);
            if st.head == st.tail {
                st.head = 0;
                st.tail = 0;
            }
            let cap = self.cap as u64;
            let to_end = cap - st.tail % cap;
            let free = cap - (st.tail - st.head);
            to_end.min(free).max(free.saturating_sub(to_end)) as usize
        };
        let bytes = run.checked_sub(HDR)?;
        self.alloc(bytes).map(|b| (b, bytes))
    }

    /// Shrinks `b`, the pool's last block, to `bytes` of payload.
    fn trim(&self, b: &Block, bytes: usize) {
        let mut st = self.st.borrow_mut();
        let h = self.header(b.off);
        let len = h.len.load(Ordering::Relaxed);
        // A block allocated after `b` (by a serializer that loaned too) keeps it whole.
        if st.tail == b.pos + len {
            let need = (HDR + bytes.next_multiple_of(HDR)) as u64;
            // Relaxed: as the other header fields, published with the ticket.
            h.len.store(need, Ordering::Relaxed);
            st.tail = b.pos + need;
        }
    }

    /// Gives `b`, the pool's last block, back at once (and the gap before it, if its
    /// allocation wrapped to the pool's start).
    fn undo(&self, b: &Block) {
        let mut st = self.st.borrow_mut();
        let h = self.header(b.off);
        if st.tail == b.pos + h.len.load(Ordering::Relaxed) {
            st.tail = b.prev_tail;
        } else {
            // Relaxed: never sent, so only this process's `reclaim` reads it.
            h.state.store(ST_RELEASED, Ordering::Relaxed);
        }
    }

    /// What stands between an allocation and room in the pool: the block at its head
    /// (the head only moves past blocks that came back).
    fn head(&self) -> Head {
        let mut st = self.st.borrow_mut();
        self.reclaim(&mut st);
        if st.head == st.tail {
            return Head::Moved;
        }
        let h = self.header((st.head % self.cap as u64) as usize);
        // Relaxed: the answer only names whom to wait for, and the waiter asks again
        // after each wake; `reclaim` above made the state that frees memory.
        match h.state.load(Ordering::Relaxed) {
            ST_SENT | ST_HELD => Head::Held(h.holder.load(Ordering::Relaxed) as usize),
            ST_LOANED => Head::Unsent,
            // Given back after `reclaim` looked (the receiver dropped its view in
            // between): the next allocation reclaims it.
            _ => Head::Moved,
        }
    }

    /// Bytes loaned and not given back, for error messages.
    fn outstanding(&self) -> u64 {
        let st = self.st.borrow();
        st.tail - st.head
    }
}

/// A writable buffer of `len` `T`s in this rank's loan pool in the shared segment,
/// from [`Communicator::loan_slice`]. Derefs to `[T]`. Sending it
/// ([`Communicator::send_loan`]) hands the same memory to the receiver without a
/// copy; dropping it unsent gives the memory back to the pool.
pub struct Loan<T: Pod> {
    pool: Rc<Pool>,
    off: usize,
    seq: u64,
    len: usize,
    sent: bool,
    _t: PhantomData<T>,
}

impl<T: Pod> Loan<T> {
    /// The handle of block `b` of `pool`, holding `len` `T`s.
    fn new(pool: Rc<Pool>, b: &Block, len: usize) -> Self {
        Loan {
            pool,
            off: b.off,
            seq: b.seq,
            len,
            sent: false,
            _t: PhantomData,
        }
    }

    fn data(&self) -> *mut T {
        // SAFETY: the payload lies inside the block, inside the pool.
        unsafe { self.pool.base.as_ptr().add(self.off + HDR).cast::<T>() }
    }
}

impl<T: Pod> std::ops::Deref for Loan<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the block is this loan's alone (state LOANED: allocated by this
        // process's pool for this handle, not yet sent); the payload holds `len` `T`s,
        // 64-byte aligned (align_of::<T>() <= 64 was checked); any bytes are a valid
        // Pod `T`.
        unsafe { std::slice::from_raw_parts(self.data(), self.len) }
    }
}

impl<T: Pod> std::ops::DerefMut for Loan<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.data(), self.len) }
    }
}

impl<T: Pod> Drop for Loan<T> {
    fn drop(&mut self) {
        if !self.sent {
            // SYNC POINT loan-return (Release): our writes are done.
            self.pool
                .header(self.off)
                .state
                .store(ST_RELEASED, Ordering::Release);
        }
    }
}

impl<T: Pod> std::fmt::Debug for Loan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Loan({} x {}, generation {})",
            self.len,
            std::any::type_name::<T>(),
            self.seq
        )
    }
}

/// The envelope's type of a loaned archive of a `T` (private, so that only
/// [`Communicator::recv_loan_object`] of the same `T` matches it).
struct LoanedObject<T: ?Sized>(PhantomData<fn() -> T>);

/// An rkyv archive of a `T` built in this rank's loan pool, from
/// [`Communicator::loan_object`]. Derefs to `T::Archived`, read-only: what was built
/// is what the receiver reads. Sending it ([`Communicator::send_loan_object`]) hands
/// the same memory to the receiver; dropping it unsent gives it back to the pool.
pub struct ObjectLoan<T: Archive> {
    bytes: Loan<u8>,
    _t: PhantomData<fn() -> T>,
}

impl<T: Archive> ObjectLoan<T> {
    /// The archive's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl<T: Archive> std::ops::Deref for ObjectLoan<T> {
    type Target = T::Archived;
    fn deref(&self) -> &T::Archived {
        // SAFETY: `loan_object` wrote an archive of a `T` of exactly these bytes at the
        // start of this block (64-byte aligned), which nothing writes while this handle
        // lives: the block is loaned to it, and it gives no mutable access.
        unsafe { rkyv::api::access_unchecked::<T::Archived>(&self.bytes) }
    }
}

impl<T: Archive> std::fmt::Debug for ObjectLoan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ObjectLoan({}, {} bytes, generation {})",
            std::any::type_name::<T>(),
            self.bytes.len,
            self.bytes.seq
        )
    }
}

/// What keeps a received loan's bytes.
enum Held {
    /// A block of the sender's pool, claimed by this rank (`HELD`); dropping gives it
    /// back.
    Block {
        seg: Rc<Segment>,
        /// The world rank whose pool holds the block.
        owner: usize,
        hdr: NonNull<BlockHeader>,
    },
    /// A copy, 64-byte aligned (the MPI backend's ranks share no pool), which the
    /// view's data points into.
    #[cfg(feature = "mpi")]
    Copy { _bytes: rkyv::util::AlignedVec<HDR> },
    /// Nothing: the empty view of a receive from `PROC_NULL`.
    Nothing,
}

impl Drop for Held {
    fn drop(&mut self) {
        match self {
            Held::Block { seg, owner, hdr } => {
                // SAFETY: the header lies in the mapping kept alive by `seg`.
                let h = unsafe { hdr.as_ref() };
                // SYNC POINT loan-return (Release): our reads are done.
                h.state.store(ST_RELEASED, Ordering::Release);
                // The owner may sleep in `loan_slice`, waiting for this block.
                doorbell::notify(&seg.ctrl(*owner).bell);
            }
            #[cfg(feature = "mpi")]
            Held::Copy { .. } => {}
            Held::Nothing => {}
        }
    }
}

/// A read-only view of a loan another rank (or this one) sent, from
/// [`Communicator::recv_loan`]: the sender's memory, not a copy. Derefs to `[T]`.
/// Dropping it gives the memory back to the sender's pool.
pub struct LoanView<T: Pod> {
    /// Gives the bytes back when the view is dropped.
    _held: Held,
    data: NonNull<T>,
    len: usize,
}

impl<T: Pod> std::ops::Deref for LoanView<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the bytes are this view's: a block HELD by it (claimed by
        // compare-exchange in `take_loan`), which its owner neither writes nor reuses
        // until the view is dropped, in the mapping `_held` keeps alive; or a copy it
        // owns. Alignment and length were checked when it was made.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr(), self.len) }
    }
}

impl<T: Pod> std::fmt::Debug for LoanView<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LoanView({} x {})", self.len, std::any::type_name::<T>())
    }
}

/// A loaned archive of a `T` another rank (or this one) sent, from
/// [`Communicator::recv_loan_object`]: validated once, then read in the sender's
/// memory without a copy. Derefs to `T::Archived`; dropping it gives the memory back
/// to the sender's pool.
pub struct ArchivedLoan<T: Archive> {
    view: LoanView<u8>,
    source: i32,
    tag: i32,
    _t: PhantomData<fn() -> T>,
}

impl<T: Archive> ArchivedLoan<T> {
    /// The archive's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.view
    }

    /// A `T` made from the archive (rkyv's deserialization: the one copy a caller who
    /// wants an owned value pays).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArchive`] when rkyv's deserializer fails.
    pub fn deserialize(&self) -> Result<T>
    where
        T: codec::Decode,
    {
        rkyv::api::high::deserialize::<T, rancor::Error>(&**self).map_err(|e| {
            Error::InvalidArchive {
                source_rank: self.source,
                tag: self.tag,
                type_name: codec::type_name::<T>(),
                reason: e.to_string(),
            }
        })
    }
}

impl<T: Archive> std::ops::Deref for ArchivedLoan<T> {
    type Target = T::Archived;
    fn deref(&self) -> &T::Archived {
        // SAFETY: validated as an archive of `T` in `recv_loan_object`; the bytes are
        // this view's and do not change while it lives (see `LoanView`).
        unsafe { rkyv::api::access_unchecked::<T::Archived>(&self.view) }
    }
}

impl<T: Archive> std::fmt::Debug for ArchivedLoan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ArchivedLoan({}, {} bytes)",
            std::any::type_name::<T>(),
            self.view.len
        )
    }
}

/// A received loan's bytes, claimed by this rank, and its status.
struct Taken {
    held: Held,
    data: NonNull<u8>,
    bytes: usize,
    st: Status,
}

impl Taken {
    /// The view of the bytes as `len` `T`s (whose size and alignment were checked).
    fn view<T: Pod>(self, len: usize) -> LoanView<T> {
        LoanView {
            _held: self.held,
            // A copy of no bytes has no aligned address of its own.
            data: if len == 0 {
                NonNull::dangling()
            } else {
                self.data.cast()
            },
            len,
        }
    }
}

/// The longest type name a ticket carries (for error messages; longer ones are cut).
const NAME_MAX: usize = 200;

/// A ticket's four words (owner, offset, length, generation).
const TICKET: usize = 32;

impl Communicator {
    /// The rank whose pool this process loans from in its segment: its own, or on the
    /// MPI backend rank 0 of the private singleton segment behind its handles.
    fn pool_rank(&self) -> usize {
        #[cfg(feature = "mpi")]
        if self.inner.mpi.is_some() {
            return 0;
        }
        self.inner.wrank
    }

    /// This process's loan pool.
    fn loan_pool(&self) -> Rc<Pool> {
        let eng = self.inner.eng.borrow();
        Pool::of(eng.segment(), self.pool_rank())
    }

    /// A block of `pool` for `bytes` of payload, waiting (running progress, so that
    /// this rank's own receives go on) while loans this rank sent are still held by
    /// their receivers. `call` is the call the program made, published while it waits;
    /// `what` names it in errors.
    fn alloc_waiting(
        &self,
        pool: &Pool,
        bytes: usize,
        call: Call,
        what: &dyn Fn() -> String,
    ) -> Result<Block> {
        if bytes.checked_add(2 * HDR).is_none_or(|b| b > pool.cap) {
            return Err(Error::Usage(format!(
                "{}: larger than this rank's loan pool of {} bytes",
                what(),
                pool.cap
            )));
        }
        if let Some(b) = pool.alloc(bytes) {
            return Ok(b);
        }
        let mut eng = self.inner.eng.borrow_mut();
        let mut backoff = eng.backoff();
        let world = Group::world(eng.size());
        let waited = loop {
            if let Some(b) = pool.alloc(bytes) {
                break Ok(b);
            }
            let holder = match pool.head() {
                Head::Moved => continue,
                Head::Held(holder) => holder,
                Head::Unsent => {
                    break Err(Error::Usage(format!(
                        "{}: rank {}'s loan pool ({} bytes) is full of loans it has not sent \
                     ({} bytes); send or drop some first",
                        what(),
                        self.inner.wrank,
                        pool.cap,
                        pool.outstanding()
                    )));
                }
            };
            if holder == pool.me {
                break Err(Error::Usage(format!(
                    "{}: rank {}'s loan pool ({} bytes) is full, and its oldest loan was sent \
                     to this rank itself, which has not received or dropped it; receive it \
                     and drop the view first",
                    what(),
                    self.inner.wrank,
                    pool.cap
                )));
            }
            // Published while this rank waits, so that the launcher's deadlock check and
            // `--timeout` report see it wait here, for the holder of the pool's head.
            let desc = WaitDesc {
                op: WaitOp::Loan,
                call,
                peer: Some(holder),
                tag: -1,
                ctx: self.inner.ctx,
                group: &world,
            };
            if let Err(e) = eng.progress(None) {
                break Err(e);
            }
            // A view dropped meanwhile moves the head on (its drop rings our doorbell).
            let moved = || pool.head() != Head::Held(holder);
            if let Err(e) = eng.idle_until(&mut backoff, &desc, &moved) {
                break Err(e);
            }
        };
        eng.end_wait();
        waited
    }

    /// A writable buffer of `len` `T`s with unspecified (stale, but initialised)
    /// contents in this rank's loan pool in the shared segment, to
    /// fill and send with [`send_loan`](Self::send_loan): the receiver reads the same
    /// memory, no byte is copied (after iceoryx2's loans).
    ///
    /// The pool is bounded (the segment's `loan_bytes` per rank: 256 MiB over all
    /// ranks, 1..=128 MiB each). When it has no room, the call waits for receivers to
    /// drop loans this rank sent them (running progress meanwhile, so this rank's own
    /// receives go on), and fails when waiting cannot help. On the MPI backend the
    /// pool is this process's own (128 MiB) and a loan travels as a copy.
    ///
    /// # Errors
    ///
    /// - [`Error::Usage`] when `T` is zero-sized or aligned to more than 64 bytes, when
    ///   the loan is larger than the pool, or when the pool is full of loans this rank
    ///   has not sent (send or drop some first);
    /// - [`Error::Aborted`] / [`Error::Corrupted`] from the progress run while waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let mut frame = world.loan_slice::<u32>(4)?;
    /// frame.copy_from_slice(&[1, 2, 3, 4]);
    /// world.send_loan(frame, me, 3)?;
    /// let (view, st) = world.recv_loan::<u32>(me, 3)?;
    /// assert_eq!((&view[..], st.count::<u32>()), (&[1, 2, 3, 4][..], Some(4)));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn loan_slice<T: Pod>(&self, len: usize) -> Result<Loan<T>> {
        let elem = std::mem::size_of::<T>();
        if elem == 0 || std::mem::align_of::<T>() > HDR {
            return Err(Error::Usage(format!(
                "loan_slice::<{}>: loans hold types of non-zero size aligned to at most {HDR} bytes",
                std::any::type_name::<T>()
            )));
        }
        let pool = self.loan_pool();
        let what = || format!("loan_slice::<{}>({len})", std::any::type_name::<T>());
        let b = self.alloc_waiting(&pool, len.saturating_mul(elem), Call::LoanSlice, &what)?;
        Ok(Loan::new(pool, &b, len))
    }

    /// Builds `value`'s rkyv archive in this rank's loan pool, to send with
    /// [`send_loan_object`](Self::send_loan_object): the receiver
    /// ([`recv_loan_object`](Self::recv_loan_object)) reads the archive where it was
    /// written, so the object is written once and never copied.
    ///
    /// The archive is written straight into the largest free run of the pool; when it
    /// is longer than that run, it is written on the heap first to learn its length,
    /// and copied into a block once the pool has room (waiting as
    /// [`loan_slice`](Self::loan_slice) does).
    ///
    /// # Errors
    ///
    /// - [`Error::Serialize`] when rkyv cannot serialize `value`;
    /// - [`Error::Usage`] when the archive is larger than the pool, or the pool is full
    ///   of loans this rank has not sent;
    /// - [`Error::Aborted`] / [`Error::Corrupted`] from the progress run while waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let frame = world.loan_object(&(7u32, vec![0.5f32; 1024]))?;
    /// world.send_loan_object(frame, me, 1)?;
    /// let (view, _) = world.recv_loan_object::<(u32, Vec<f32>)>(me, 1)?;
    /// assert_eq!((view.0.to_native(), view.1.len()), (7, 1024)); // read in place
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn loan_object<T: EncodeLoan>(&self, value: &T) -> Result<ObjectLoan<T>> {
        let pool = self.loan_pool();
        if let Some((b, cap)) = pool.alloc_rest() {
            // SAFETY: the block's payload lies in the pool and is loaned to this call
            // alone; its bytes are initialised (stale or zero).
            let buf =
                unsafe { std::slice::from_raw_parts_mut(pool.base.as_ptr().add(b.off + HDR), cap) };
            match rkyv::api::high::to_bytes_in::<_, rancor::Error>(value, Buffer::from(buf)) {
                Ok(w) => {
                    let n = w.len();
                    pool.trim(&b, n);
                    return Ok(ObjectLoan {
                        bytes: Loan::new(pool, &b, n),
                        _t: PhantomData,
                    });
                }
                // Most likely longer than the run: learn its length below.
                Err(_) => pool.undo(&b),
            }
        }
        let archive =
            rkyv::api::high::to_bytes_in::<_, rancor::Error>(value, AlignedVec::<16>::new())
                .map_err(|e| Error::Serialize {
                    type_name: codec::type_name::<T>(),
                    reason: e.to_string(),
                })?;
        let what = || {
            format!(
                "loan_object::<{}> ({} bytes)",
                codec::type_name::<T>(),
                archive.len()
            )
        };
        let b = self.alloc_waiting(&pool, archive.len(), Call::LoanObject, &what)?;
        let mut bytes = Loan::<u8>::new(pool, &b, archive.len());
        bytes.copy_from_slice(&archive);
        Ok(ObjectLoan {
            bytes,
            _t: PhantomData,
        })
    }

    /// Sends a loan (from [`loan_slice`](Self::loan_slice)) to `dest` with `tag`,
    /// without copying its contents: the matched [`recv_loan`](Self::recv_loan) reads
    /// the same memory. Matching, wildcards and order are those of every other message
    /// (the loan travels as a small ticket through the same ring). Never blocks for
    /// the receiver. A loan sent to [`PROC_NULL`](crate::PROC_NULL) is given back. On
    /// the MPI backend the message carries a copy of the loan's contents (MPI's ranks
    /// share no pool), and the loan is given back at once.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`], [`Error::InvalidTag`] as for
    ///   [`send_slice`](Self::send_slice); the loan is given back;
    /// - [`Error::Usage`] when the loan is not from this rank's pool of this job;
    /// - [`Error::PeerFailed`], [`Error::Aborted`] as for `send_slice`.
    pub fn send_loan<T: Pod>(&self, mut loan: Loan<T>, dest: Rank, tag: Tag) -> Result<()> {
        let bytes = loan.len * std::mem::size_of::<T>();
        let r = self.send_block::<LoanTicket>(
            &loan.pool,
            (loan.off, loan.seq),
            bytes,
            dest,
            tag,
            false,
        );
        // Unless a receiver now owns the block, Drop gives it back.
        loan.sent = matches!(r, Ok(true));
        r.map(drop)
    }

    /// Sends an archive built with [`loan_object`](Self::loan_object) to `dest` with
    /// `tag`, without copying it: the matched
    /// [`recv_loan_object`](Self::recv_loan_object) reads the same memory. As
    /// [`send_loan`](Self::send_loan) otherwise (matching, order, `PROC_NULL`, the MPI
    /// backend's copy).
    ///
    /// # Errors
    ///
    /// As [`send_loan`](Self::send_loan).
    pub fn send_loan_object<T: Archive>(
        &self,
        mut loan: ObjectLoan<T>,
        dest: Rank,
        tag: Tag,
    ) -> Result<()> {
        let b = &loan.bytes;
        let r = self.send_block::<LoanedObject<T>>(&b.pool, (b.off, b.seq), b.len, dest, tag, true);
        loan.bytes.sent = matches!(r, Ok(true));
        r.map(drop)
    }

    /// Sends the block at `off` of `pool` (`bytes` of payload, generation `seq`) as a
    /// loan under the envelope type of `K`, whose name the ticket carries when `named`.
    /// `Ok(true)` when a receiver will own the block; `Ok(false)` when it is still the
    /// sender's to give back (`PROC_NULL`, or the MPI backend, whose message is a copy).
    fn send_block<K: ?Sized>(
        &self,
        pool: &Pool,
        (off, seq): (usize, u64),
        bytes: usize,
        dest: Rank,
        tag: Tag,
        named: bool,
    ) -> Result<bool> {
        let d = match self.dest(dest) {
            Ok(d) => d,
            Err(e) => return Self::null_send(e, tag).map(|()| false),
        };
        let tag = Self::send_tag(tag)?;
        if !Rc::ptr_eq(&pool.seg, self.inner.eng.borrow().segment()) || pool.me != self.pool_rank()
        {
            return Err(Error::Usage(
                "send_loan: the loan is not from this rank's pool in this job".into(),
            ));
        }
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            let mut msg = AlignedVec::<16>::with_capacity(bytes + NAME_MAX + 2);
            // SAFETY: the block's payload of `bytes` lies in the pool and is the loan's.
            msg.extend_from_slice(unsafe {
                std::slice::from_raw_parts(pool.base.as_ptr().add(off + HDR), bytes)
            });
            codec::push_type_trailer(&mut msg, codec::type_name::<K>(), NAME_MAX);
            let env = self.envelope(tag, msg.len(), codec::type_id::<K>());
            return mc.send_archive(d, env, msg, false).map(|()| false);
        }
        let h = pool.header(off);
        h.holder.store(d as u32, Ordering::Relaxed);
        // Published with the ticket (the ring's SYNC POINT record).
        h.state.store(ST_SENT, Ordering::Relaxed);
        let mut ticket = [0u8; TICKET + NAME_MAX + 2];
        for (i, w) in [pool.me as u64, off as u64, bytes as u64, seq]
            .into_iter()
            .enumerate()
        {
            ticket[8 * i..8 * i + 8].copy_from_slice(&w.to_le_bytes());
        }
        // A slice loan's ticket stays four words, since a refused receive names it from
        // its envelope type alone (`slice_ticket_name`) and every byte more lengthens
        // each loaned message; an object's ends in its type's name, as an object
        // message does (codec), for the errors of a receive of another type.
        let ticket = if !named {
            &ticket[..TICKET]
        } else {
            let name = codec::type_name::<K>().as_bytes();
            let name = &name[..name.len().min(NAME_MAX)];
            ticket[TICKET..TICKET + name.len()].copy_from_slice(name);
            let end = TICKET + name.len();
            ticket[end..end + 2].copy_from_slice(&(name.len() as u16).to_le_bytes());
            &ticket[..end + 2]
        };
        let env = self.envelope(tag, ticket.len(), codec::type_id::<K>());
        // On failure nobody got the ticket: the caller gives the block back.
        self.send_encoded(d, env, ticket, Call::SendSlice)
            .map(|()| true)
    }

    /// Receives a loan sent under the envelope type of `K` and claims its bytes.
    fn take_loan<K: ?Sized>(&self, source: Rank, tag: Tag) -> Result<Taken> {
        let (env, msg) = self.recv_object::<K>(source, tag)?;
        let st = self.status(&env);
        let bad =
            |why: &str| Error::Corrupted(format!("a loan ticket from rank {}: {why}", st.source));
        #[cfg(feature = "mpi")]
        if self.inner.mpi.is_some() {
            let Some(payload) = codec::archive_part(&msg) else {
                return Err(bad("no type trailer"));
            };
            let mut copy = rkyv::util::AlignedVec::<HDR>::with_capacity(payload.len());
            copy.extend_from_slice(payload);
            let bytes = payload.len();
            let data = NonNull::new(copy.as_mut_ptr()).ok_or_else(|| bad("null"))?;
            return Ok(Taken {
                held: Held::Copy { _bytes: copy },
                data,
                bytes,
                st: Status { len: bytes, ..st },
            });
        }
        let word = |i: usize| {
            msg.get(8 * i..8 * i + 8)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        };
        let me = self.inner.wrank;
        let seg = self.inner.eng.borrow().segment().clone();
        let layout = *seg.layout();
        let (Some(owner), Some(off), Some(bytes), Some(seq)) = (word(0), word(1), word(2), word(3))
        else {
            return Err(bad("too short"));
        };
        let (owner, off, bytes) = (owner as usize, off as usize, bytes as usize);
        if owner >= layout.nranks
            || off % HDR != 0
            || off.checked_add(HDR).is_none_or(|e| e > layout.loan_bytes)
        {
            return Err(bad("out of bounds"));
        }
        let base = seg.loan_pool(owner);
        // SAFETY: in bounds of the owner's pool (checked above), 64-byte aligned; the
        // header's fields are atomics.
        let h = unsafe { &*base.as_ptr().add(off).cast::<BlockHeader>() };
        let len = h.len.load(Ordering::Relaxed) as usize;
        if h.seq.load(Ordering::Relaxed) != seq
            || h.holder.load(Ordering::Relaxed) as usize != me
            || bytes.checked_add(HDR).is_none_or(|b| b > len)
            || off + len > layout.loan_bytes
        {
            return Err(bad("it does not match the block it names"));
        }
        if h.state
            .compare_exchange(ST_SENT, ST_HELD, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return Err(bad("the block was already received"));
        }
        Ok(Taken {
            held: Held::Block {
                seg: seg.clone(),
                owner,
                hdr: NonNull::from(h),
            },
            // SAFETY: the payload lies in the block (bytes + HDR <= len checked above).
            data: unsafe { NonNull::new_unchecked(base.as_ptr().add(off + HDR)) },
            bytes,
            st: Status { len: bytes, ..st },
        })
    }

    /// Receives a loan sent with [`send_loan`](Self::send_loan): a read-only view of
    /// the sender's memory, valid until dropped (which gives it back to the sender's
    /// pool). `source` may be [`ANY_SOURCE`](crate::ANY_SOURCE), `tag`
    /// [`ANY_TAG`](crate::ANY_TAG). The status's length is the loan's, in bytes. On
    /// the MPI backend the view holds a copy. From [`PROC_NULL`](crate::PROC_NULL) it
    /// completes at once with an empty view and a status of source `PROC_NULL`.
    ///
    /// # Errors
    ///
    /// - [`Error::TypeMismatch`] when the matched message is not a loan (it stays
    ///   queued);
    /// - [`Error::Usage`] when `T` is zero-sized or aligned to more than 64 bytes
    ///   (nothing is received);
    /// - [`Error::ElementSize`] when the loan's length is not a whole number of `T`s
    ///   (unlike other messages, the loan has been received, and given back: its
    ///   length is in its ticket);
    /// - [`Error::Corrupted`] when the ticket does not name a block sent to this rank;
    /// - as [`recv`](Self::recv) otherwise.
    pub fn recv_loan<T: Pod>(&self, source: Rank, tag: Tag) -> Result<(LoanView<T>, Status)> {
        let elem = std::mem::size_of::<T>();
        if elem == 0 || std::mem::align_of::<T>() > HDR {
            return Err(Error::Usage(format!(
                "recv_loan::<{}>: loans hold types of non-zero size aligned to at most {HDR} bytes",
                std::any::type_name::<T>()
            )));
        }
        if source == crate::PROC_NULL {
            // MPI's receive from PROC_NULL: at once, nothing received.
            Self::recv_tag(tag)?;
            let view = LoanView {
                _held: Held::Nothing,
                data: NonNull::dangling(),
                len: 0,
            };
            return Ok((view, Status::null()));
        }
        // The loan's length is in its ticket, known only once the ticket is taken.
        let t = self.take_loan::<LoanTicket>(source, tag)?;
        if t.bytes % elem != 0 {
            return Err(Error::ElementSize {
                source_rank: t.st.source,
                tag: t.st.tag,
                message_len: t.bytes,
                elem_size: elem,
                elem_type: std::any::type_name::<T>(),
            });
        }
        let (st, len) = (t.st, t.bytes / elem);
        Ok((t.view(len), st))
    }

    /// Receives an archive sent with [`send_loan_object`](Self::send_loan_object): it
    /// is validated (bytecheck, as [`recv_archived`](Self::recv_archived) does) and
    /// then read in the sender's memory, valid until dropped (which gives it back to
    /// the sender's pool). `source` may be [`ANY_SOURCE`](crate::ANY_SOURCE), `tag`
    /// [`ANY_TAG`](crate::ANY_TAG); the status's length is the archive's. On the MPI
    /// backend the view holds a copy.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] of class `Rank` from [`PROC_NULL`](crate::PROC_NULL),
    ///   which sends no object to view;
    /// - [`Error::TypeMismatch`] when the matched message is not a loaned `T` (another
    ///   type's loan, a slice's, any other message): it stays queued;
    /// - [`Error::InvalidArchive`] when the archive fails validation (it has been
    ///   received and given back);
    /// - [`Error::Corrupted`] when the ticket does not name a block sent to this rank;
    /// - as [`recv`](Self::recv) otherwise.
    pub fn recv_loan_object<T: Access>(
        &self,
        source: Rank,
        tag: Tag,
    ) -> Result<(ArchivedLoan<T>, Status)> {
        if source == crate::PROC_NULL {
            Self::recv_tag(tag)?;
            return Err(Error::invalid(
                crate::error::ErrorClass::Rank,
                format!(
                    "recv_loan_object::<{}> from PROC_NULL: a receive from PROC_NULL receives \
                     no message, so there is no object to view; skip the call for PROC_NULL \
                     (recv_loan of plain data gives an empty view)",
                    codec::type_name::<T>()
                ),
            ));
        }
        let t = self.take_loan::<LoanedObject<T>>(source, tag)?;
        let st = t.st;
        let len = t.bytes;
        let view = t.view::<u8>(len);
        if let Err(e) = rkyv::api::high::access::<T::Archived, rancor::Error>(&view) {
            return Err(Error::InvalidArchive {
                source_rank: st.source,
                tag: st.tag,
                type_name: codec::type_name::<T>(),
                reason: e.to_string(),
            });
        }
        let a = ArchivedLoan {
            view,
            source: st.source,
            tag: st.tag,
            _t: PhantomData,
        };
        Ok((a, st))
    }
}
