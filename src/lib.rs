//! # shmpi: MPI-style message passing between processes on one machine
//!
//! A launcher, `shmrun -n N program`, starts N processes (*ranks*) that map one
//! shared-memory segment with a lock-free ring per ordered pair of ranks. Each rank
//! calls [`init()`] and talks through a [`Communicator`]: point-to-point messages with
//! tags and wildcards, blocking and non-blocking.
//!
//! ```no_run
//! # fn main() -> shmpi::Result<()> {
//! let universe = shmpi::init()?;
//! let world = universe.world();
//! if world.rank() == 0 {
//!     world.send(&vec![1.0f64, 2.0, 3.0], 1, 11)?;           // an object (rkyv)
//!     world.send_slice(&[0u64, 1, 2, 3], 1, 13)?;            // plain data (memcpy)
//! } else if world.rank() == 1 {
//!     let v: Vec<f64> = world.recv(0, 11)?;
//!     let mut buf = [0u64; 4];
//!     let status = world.recv_into(&mut buf, 0, 13)?;
//!     assert_eq!((v.len(), status.count::<u64>()), (3, Some(4)));
//! }
//! # Ok(()) }
//! ```
//!
//! ## The contract
//!
//! - **Objects and arrays**, as in mpi4py: [`Communicator::send`]/[`recv`] move any
//!   rkyv-serializable value (validated on receipt, [`recv_archived`] reads it in
//!   place); [`send_slice`]/[`recv_into`]/[`recv_vec`] move `&[T]` for
//!   `T: bytemuck::Pod` with one copy on each side.
//! - **What blocks**: a send returns once its message is in the shared ring; it never
//!   waits for the matching receive (a message larger than the ring streams through
//!   it, and the sender keeps draining its own incoming rings meanwhile, so two ranks
//!   that send each other large messages cannot deadlock). The synchronous sends
//!   ([`ssend`](Communicator::ssend) and its kin) are the exception, as in MPI: they
//!   return once a receive has matched the message. Receives, probes and waits block
//!   until the message arrives, or fail.
//! - **Order**: messages from one rank to another on one communicator are received in
//!   the order they were sent, among those a receive matches (MPI's non-overtaking
//!   rule).
//! - **Failure**: every call returns [`Result`]. A wrong rank or tag, a buffer too
//!   short, a different object type, an invalid archive: an [`Error`] that says what
//!   and leaves the message queued. A peer that dies or leaves while a call waits on
//!   it, a job aborted by the launcher: the call returns [`Error::PeerFailed`] or
//!   [`Error::Aborted`] instead of hanging.
//! - **Waiting**: a blocked call spins on shared memory, then yields, then sleeps on a
//!   futex, so that idle ranks burn no CPU and ranks may outnumber cores
//!   (`SHMPI_SPIN_US`, `SHMPI_YIELD_US` tune the phases).
//! - **Threads**: handles are not `Send`; use shmpi from one thread per process (like
//!   `MPI_THREAD_FUNNELED`).
//! - **Collectives** on every communicator, in both vocabularies: objects
//!   ([`bcast`](Communicator::bcast), [`gather`](Communicator::gather),
//!   [`allreduce`](Communicator::allreduce) with a closure, ...) and slices
//!   ([`bcast_into`](Communicator::bcast_into),
//!   [`allreduce_into`](Communicator::allreduce_into) with an [`Op`] or a closure, the
//!   `v` variants, ...). They move data through a shared area of the segment, not
//!   through messages; every rank must call the same collectives in the same order on
//!   a communicator. A rank that sees another call a different collective, or with a
//!   different root, count, element type or op, returns an error naming both calls,
//!   whose MPI class says what differed ([collective errors](Error#collective-errors)),
//!   and the communicator cannot be used for collectives afterwards; a rank
//!   whose call fails part-way (a `v` variant's counts that disagree across ranks)
//!   makes the ranks waiting for it fail too, naming it. A reduction closure runs
//!   outside the runtime's borrow and may use the communicator for point-to-point
//!   calls, but must not start a collective on it.
//! - **Communicators**: [`dup`](Communicator::dup) and
//!   [`split`](Communicator::split) give new communicators with contexts of their
//!   own (messages and collectives never cross); dropping every handle frees one.
//! - **Leak safety**: non-blocking operations own their buffers ([`Request`],
//!   [`PersistentRequest`]; any owner of plain data with
//!   [`isend_buf`](Communicator::isend_buf), an `Arc<[T]>` for one buffer in many
//!   sends), or borrow them inside a [`scope`](Communicator::scope) that does not
//!   return before the runtime has let go of them, so no use of the API from safe
//!   code, `mem::forget` included, can cause undefined behaviour.
//!
//! [`recv`]: Communicator::recv
//! [`recv_archived`]: Communicator::recv_archived
//! [`send_slice`]: Communicator::send_slice
//! [`recv_into`]: Communicator::recv_into
//! [`recv_vec`]: Communicator::recv_vec

#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::undocumented_unsafe_blocks
)]

mod call;
#[allow(unsafe_code)]
mod codec;
mod collective;
mod comm;
mod completions;
mod doorbell;
mod envelope;
mod error;
mod group;
mod init;
mod intercomm;
pub mod launch;
mod layout;
mod matching;
mod message;
#[cfg(feature = "mpi")]
mod mpi;
#[allow(unsafe_code)]
mod out;
mod progress;
mod request;
#[allow(unsafe_code)]
mod ring;
#[allow(unsafe_code)]
mod segment;
#[allow(unsafe_code)]
mod shmcoll;
mod sync;
#[allow(unsafe_code)]
mod sys;
mod topology;
mod trace;
mod tuning;
mod value;
#[allow(unsafe_code)]
mod window;

pub use codec::{Access, Archived, Decode, Encode, EncodeLoan};
pub use collective::comms::UNDEFINED;
pub use collective::nbc::CollRequest;
pub use collective::op::{
    DoubleInt, FloatInt, IntInt, LongInt, ObjectReducible, Op, ReduceOp, Reducible,
};
pub use comm::loan::{ArchivedLoan, Loan, LoanView, ObjectLoan};
pub use comm::persistent::{PersistentRequest, start_all};
pub use comm::scope::{Scope, ScopedRequest};
pub use comm::{ANY_SOURCE, ANY_TAG, Communicator, PROC_NULL, Rank, Status, TAG_UB, Tag};
pub use error::{Error, ErrorClass, Exit, Result};
pub use group::{Comparison, Group};
pub use init::{
    ENV_FD, ENV_RANK, ENV_SIZE, Universe, finalized, init, initialized, library_version,
    processor_name, version, wtick, wtime,
};
pub use message::{Message, RawMessage};
#[doc(hidden)]
pub use progress::{set_idle_hook, split_rests_copied};
pub use request::{
    AnyRequest, Request, test_all, test_any, test_any_of, test_some, wait_all, wait_all_results,
    wait_any, wait_any_of, wait_some,
};
pub use topology::{CartComm, dims_create};
pub use value::Value;
pub use window::{LOCK_TIMEOUT, LockKind, SharedAtomic, SharedPart, Window};

#[doc(hidden)]
pub mod __bench {
    //! Not part of the API: a safe handle on the shared-memory ring over heap memory,
    //! for the in-process criterion benchmarks (`benches/ring.rs`). No stability
    //! promise; may change or vanish with any release.

    use crate::ring;

    /// The writing end of a heap ring (see [`heap_ring`]).
    pub struct RingProducer(ring::Producer);

    /// The reading end of a heap ring (see [`heap_ring`]).
    pub struct RingConsumer(ring::Consumer);

    impl std::fmt::Debug for RingProducer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RingProducer").finish_non_exhaustive()
        }
    }

    impl std::fmt::Debug for RingConsumer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RingConsumer").finish_non_exhaustive()
        }
    }

    /// A fresh single-producer/single-consumer ring of `cap` bytes (a power of two,
    /// 4 KiB..=1 GiB) in heap memory, with its two ends. Each end may move to another
    /// thread.
    pub fn heap_ring(cap: usize) -> (RingProducer, RingConsumer) {
        let (p, c) = ring::heap_ring(cap);
        (RingProducer(p), RingConsumer(c))
    }

    impl RingProducer {
        /// Pushes one record of `payload` with one header word, as a blocking send of
        /// a short message does (the one-record fast path, else the general push that
        /// also wraps around). Returns `false` if the ring has no room for all of it.
        #[inline]
        pub fn push(&mut self, word: u64, payload: &[u8]) -> bool {
            self.0.try_push_whole(1, &[word], payload)
                || self.0.push(1, &[word], payload, payload.len()).is_some()
        }
    }

    impl RingConsumer {
        /// Pops the next record, copying its payload into the front of `out` (which
        /// must be long enough), as a blocking receive of a short message does (the
        /// one-record fast path, else peek and advance). Returns its header word and
        /// payload length, or `None` if the ring is empty.
        #[inline]
        pub fn pop(&mut self, out: &mut [u8]) -> Option<(u64, usize)> {
            let take = |w: &[u64; 2], p: &[u8]| {
                ring::copy_from(&mut out[..p.len()], p);
                (w[0], p.len())
            };
            match self.0.take_if(1, 1, |_, _| true, take) {
                ring::Take::Took(r) => return Some(r),
                ring::Take::Empty => return None,
                ring::Take::Other => {}
            }
            let rec = self.0.peek().expect("a heap ring is never corrupted")?;
            let (w, n) = (rec.words[0], rec.payload.len());
            out[..n].copy_from_slice(rec.payload);
            self.0.advance();
            Some((w, n))
        }
    }
}

/// rkyv, re-exported so that programs derive `Archive`/`Serialize`/`Deserialize` with
/// the same version shmpi uses.
pub use rkyv;
