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
//!   only. A block sent to a rank that has left (before or after receiving it) is
//!   taken back by its owner when the owner next needs room.
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

use super::{Communicator, Rank, Status, Tag};
use crate::call::Call;
use crate::codec;
use crate::error::{Error, Result};
use crate::segment::Segment;

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

/// The ticket's type: private, so no user receive but `recv_loan` matches it.
struct LoanTicket;

/// This process's own pool (one per segment).
pub(crate) struct Pool {
    seg: Rc<Segment>,
    me: usize,
    base: NonNull<u8>,
    cap: usize,
    st: RefCell<PoolState>,
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

    /// Gives back the blocks at the head that are released, or held by ranks that
    /// have left.
    fn reclaim(&self, st: &mut PoolState) {
        while st.head < st.tail {
            let h = self.header((st.head % self.cap as u64) as usize);
            // SYNC POINT loan-return (Acquire): the receiver's reads are done.
            let state = h.state.load(Ordering::Acquire);
            let gone = matches!(state, ST_SENT | ST_HELD)
                && self
                    .seg
                    .departed(h.holder.load(Ordering::Relaxed) as usize)
                    .is_some();
            if state != ST_RELEASED && !gone {
                break;
            }
            st.head += h.len.load(Ordering::Relaxed);
        }
    }

    /// A block for `bytes` of payload, or `None` when the pool has no room now.
    fn alloc(&self, bytes: usize) -> Option<(usize, u64)> {
        let need = HDR + bytes.next_multiple_of(HDR);
        let mut st = self.st.borrow_mut();
        self.reclaim(&mut st);
        if st.head == st.tail {
            // Nothing is out: start again at the pool's start, whose lines and pages
            // are warm, rather than march through cold memory to the end of the lap.
            st.head = 0;
            st.tail = 0;
        }
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
        st.tail += need;
        Some((at as usize, seq))
    }

    /// Whether some block between head and tail is waiting for a receiver to give it
    /// back (so that waiting for room can succeed).
    fn waiting_on_receivers(&self) -> bool {
        let st = self.st.borrow();
        let mut pos = st.head;
        while pos < st.tail {
            let h = self.header((pos % self.cap as u64) as usize);
            if matches!(h.state.load(Ordering::Relaxed), ST_SENT | ST_HELD) {
                return true;
            }
            pos += h.len.load(Ordering::Relaxed);
        }
        false
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

/// A read-only view of a loan another rank (or this one) sent, from
/// [`Communicator::recv_loan`]: the sender's memory, not a copy. Derefs to `[T]`.
/// Dropping it gives the memory back to the sender's pool.
pub struct LoanView<T: Pod> {
    _seg: Rc<Segment>,
    hdr: NonNull<BlockHeader>,
    data: NonNull<T>,
    len: usize,
}

impl<T: Pod> std::ops::Deref for LoanView<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the block is HELD by this view (claimed by compare-exchange in
        // `recv_loan`): its owner neither writes nor reuses it until the view is
        // dropped; the mapping lives as long as `_seg`; alignment and length were
        // checked against the header.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr(), self.len) }
    }
}

impl<T: Pod> Drop for LoanView<T> {
    fn drop(&mut self) {
        // SAFETY: the header lies in the mapping kept alive by `_seg`.
        let h = unsafe { self.hdr.as_ref() };
        // SYNC POINT loan-return (Release): our reads are done.
        h.state.store(ST_RELEASED, Ordering::Release);
    }
}

impl<T: Pod> std::fmt::Debug for LoanView<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LoanView({} x {})", self.len, std::any::type_name::<T>())
    }
}

impl Communicator {
    /// A writable buffer of `len` `T`s with unspecified (stale, but initialised)
    /// contents in this rank's loan pool in the shared segment, to
    /// fill and send with [`send_loan`](Self::send_loan): the receiver reads the same
    /// memory, no byte is copied (after iceoryx2's loans).
    ///
    /// The pool is bounded (the segment's `loan_bytes` per rank: 256 MiB over all
    /// ranks, 1..=128 MiB each). When it has no room, the call waits for receivers to
    /// drop loans this rank sent them (running progress meanwhile, so this rank's own
    /// receives go on), and fails when waiting cannot help.
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
        let pool = {
            let eng = self.inner.eng.borrow();
            Pool::of(eng.segment(), self.inner.wrank)
        };
        let bytes = len.checked_mul(elem).filter(|&b| b + 2 * HDR <= pool.cap);
        let Some(bytes) = bytes else {
            return Err(Error::Usage(format!(
                "loan_slice::<{}>({len}): larger than this rank's loan pool of {} bytes",
                std::any::type_name::<T>(),
                pool.cap
            )));
        };
        loop {
            if let Some((off, seq)) = pool.alloc(bytes) {
                return Ok(Loan {
                    pool,
                    off,
                    seq,
                    len,
                    sent: false,
                    _t: PhantomData,
                });
            }
            if !pool.waiting_on_receivers() {
                return Err(Error::Usage(format!(
                    "loan_slice::<{}>({len}): rank {}'s loan pool ({} bytes) is full of \
                     loans it has not sent ({} bytes); send or drop some first",
                    std::any::type_name::<T>(),
                    pool.me,
                    pool.cap,
                    pool.outstanding()
                )));
            }
            self.inner.eng.borrow_mut().progress(None)?;
            std::thread::yield_now();
        }
    }

    /// Sends a loan (from [`loan_slice`](Self::loan_slice)) to `dest` with `tag`,
    /// without copying its contents: the matched [`recv_loan`](Self::recv_loan) reads
    /// the same memory. Matching, wildcards and order are those of every other message
    /// (the loan travels as a small ticket through the same ring). Never blocks for
    /// the receiver. A loan sent to [`PROC_NULL`](crate::PROC_NULL) is given back.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`], [`Error::InvalidTag`] as for
    ///   [`send_slice`](Self::send_slice); the loan is given back;
    /// - [`Error::Usage`] when the loan is not from this rank's pool of this job;
    /// - [`Error::PeerFailed`], [`Error::Aborted`] as for `send_slice`.
    pub fn send_loan<T: Pod>(&self, mut loan: Loan<T>, dest: Rank, tag: Tag) -> Result<()> {
        let d = match self.dest(dest) {
            Ok(d) => d,
            Err(e) => return Self::null_send(e, tag),
        };
        let tag = Self::send_tag(tag)?;
        let me = self.inner.wrank;
        if !Rc::ptr_eq(&loan.pool.seg, self.inner.eng.borrow().segment()) || loan.pool.me != me {
            return Err(Error::Usage(
                "send_loan: the loan is not from this rank's pool in this job".into(),
            ));
        }
        let bytes = loan.len * std::mem::size_of::<T>();
        let h = loan.pool.header(loan.off);
        h.holder.store(d as u32, Ordering::Relaxed);
        // Published with the ticket (the ring's SYNC POINT record).
        h.state.store(ST_SENT, Ordering::Relaxed);
        let mut ticket = [0u8; 32];
        for (i, w) in [me as u64, loan.off as u64, bytes as u64, loan.seq]
            .into_iter()
            .enumerate()
        {
            ticket[8 * i..8 * i + 8].copy_from_slice(&w.to_le_bytes());
        }
        let env = self.envelope(tag, ticket.len(), codec::type_id::<LoanTicket>());
        let r = self.send_encoded(d, env, &ticket, Call::SendSlice);
        // On failure nobody got the ticket: Drop gives the block back.
        loan.sent = r.is_ok();
        r
    }

    /// Receives a loan sent with [`send_loan`](Self::send_loan): a read-only view of
    /// the sender's memory, valid until dropped (which gives it back to the sender's
    /// pool). `source` may be [`ANY_SOURCE`](crate::ANY_SOURCE), `tag`
    /// [`ANY_TAG`](crate::ANY_TAG). The status's length is the loan's, in bytes.
    ///
    /// # Errors
    ///
    /// - [`Error::TypeMismatch`] when the matched message is not a loan (it stays
    ///   queued);
    /// - [`Error::ElementSize`] when the loan's length is not a whole number of `T`s,
    ///   [`Error::Usage`] when `T` is zero-sized or aligned to more than 64 bytes (the
    ///   loan has been received and given back);
    /// - [`Error::Corrupted`] when the ticket does not name a block sent to this rank;
    /// - as [`recv`](Self::recv) otherwise.
    pub fn recv_loan<T: Pod>(&self, source: Rank, tag: Tag) -> Result<(LoanView<T>, Status)> {
        let (env, msg) = self.recv_object::<LoanTicket>(source, tag)?;
        let st = self.status(&env);
        let word = |i: usize| {
            msg.get(8 * i..8 * i + 8)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        };
        let me = self.inner.wrank;
        let seg = self.inner.eng.borrow().segment().clone();
        let layout = *seg.layout();
        let bad =
            |why: &str| Error::Corrupted(format!("a loan ticket from rank {}: {why}", st.source));
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
        let elem = std::mem::size_of::<T>();
        let view_of = |len| LoanView {
            _seg: seg.clone(),
            hdr: NonNull::from(h),
            // SAFETY: the payload lies in the block (bytes + HDR <= len checked above).
            data: unsafe { NonNull::new_unchecked(base.as_ptr().add(off + HDR).cast::<T>()) },
            len,
        };
        if elem == 0 || std::mem::align_of::<T>() > HDR {
            drop(view_of(0));
            return Err(Error::Usage(format!(
                "recv_loan::<{}>: loans hold types of non-zero size aligned to at most {HDR} bytes",
                std::any::type_name::<T>()
            )));
        }
        if bytes % elem != 0 {
            drop(view_of(0));
            return Err(Error::ElementSize {
                source_rank: st.source,
                tag: st.tag,
                message_len: bytes,
                elem_size: elem,
                elem_type: std::any::type_name::<T>(),
            });
        }
        let st = Status { len: bytes, ..st };
        Ok((view_of(bytes / elem), st))
    }
}
