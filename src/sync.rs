//! The atomics of the lock-free core (`ring.rs`, `doorbell.rs`), swapped for loom's
//! under `cfg(loom)` so that loom can model-check the ring's records and the doorbell's
//! sleep/wake handshake; plain re-exports of `std` otherwise, so the normal build is
//! the same code (as crossbeam's `cfg(crossbeam_loom)`).
//!
//! Run the model checks with
//! `RUSTFLAGS="--cfg loom" cargo test --lib --target-dir target/loom loom` (the tests
//! are the `loom_tests` modules of `ring.rs` and `doorbell.rs`; add `-- --nocapture` to
//! see how many executions each explored; the separate target directory keeps the
//! normal build's artifacts). The ring's tests explore every schedule with at most two
//! preemptions (about a minute each), the doorbell's every schedule (under a second);
//! `LOOM_MAX_PREEMPTIONS` overrides both. Under `cfg(loom)` only those tests can run:
//! the other tests build but would use loom atomics outside a model.
//!
//! Where loom cannot reach, `model` stands in (loom build only):
//!
//! - The futex (a system call across processes) is one loom `Mutex` + `Condvar`: a
//!   wait checks the word and blocks under the mutex, a wake takes the mutex and
//!   notifies, so a check and a wake never interleave, as the kernel's hash-bucket lock
//!   orders them. A wait has no timeout in the model: a sleeper that nobody wakes is a
//!   loom deadlock, which is how a lost wake-up shows.
//! - `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` interrupts every other thread at some
//!   point of its run and makes it execute a full barrier, then returns. The model
//!   places those points where a thread's order can matter to the handshake: at every
//!   [`atomic::compiler_fence`] (the fence-free waker's only fence) and where a test
//!   says so (`model::membarrier::interrupt_point`, `model::membarrier::leave`).
//!   There, a thread that finds a barrier requested runs `fence(SeqCst)` and
//!   acknowledges; the caller fences, requests, waits for the acknowledgement (or for
//!   the other thread to have left, as a descheduled thread passes a barrier when it
//!   is switched out), and fences again. It supports one caller with one other thread,
//!   which is what the doorbell's model tests need.
//! - loom's `fence(SeqCst)` is stronger than the C++ model's (it joins a global
//!   causality, so the later of two SeqCst fences sees everything before the earlier):
//!   the handshake's store-fence-load pairs are checked under that reading.

#[cfg(not(loom))]
pub(crate) mod atomic {
    //! `std`'s atomics, re-exported.
    pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, compiler_fence, fence};
}

#[cfg(loom)]
pub(crate) mod atomic {
    //! loom's atomics; `compiler_fence` is a point where another thread's membarrier
    //! may interrupt this one (see `super::model::membarrier`).
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, fence};

    /// Orders nothing for loom (it only constrains the compiler); a membarrier that
    /// another thread requested may land here.
    pub(crate) fn compiler_fence(_order: Ordering) {
        super::model::membarrier::interrupt_point();
    }
}

#[cfg(loom)]
pub(crate) mod model {
    //! Stand-ins for the system calls loom cannot see (see the module doc above).

    pub(crate) mod futex {
        //! The futex as one loom `Mutex` + `Condvar` (`sys::futex`'s signatures).

        use std::time::Duration;

        use loom::sync::{Condvar, Mutex};

        use crate::sync::atomic::{AtomicU32, Ordering};

        loom::lazy_static! {
            /// One wait queue for every word, like one futex hash bucket.
            static ref QUEUE: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
        }

        /// Blocks while `*word == expected`, with no timeout (a missed wake is a
        /// deadlock loom reports). Wakers bump the word before they wake, so waiting
        /// for a change is waiting for a wake.
        pub(crate) fn wait(word: &AtomicU32, expected: u32, _timeout: Duration) {
            let (lock, cv) = &*QUEUE;
            let mut guard = lock.lock().unwrap();
            while word.load(Ordering::Relaxed) == expected {
                guard = cv.wait(guard).unwrap();
            }
        }

        /// Wakes every waiter.
        pub(crate) fn wake_all(_word: &AtomicU32) {
            let (lock, cv) = &*QUEUE;
            drop(lock.lock().unwrap());
            cv.notify_all();
        }
    }

    pub(crate) mod membarrier {
        //! The asymmetric barrier, as the module doc above describes.

        use crate::sync::atomic::{AtomicBool, AtomicU32, Ordering, fence};

        loom::lazy_static! {
            /// Barriers requested so far.
            static ref REQUESTED: AtomicU32 = AtomicU32::new(0);
            /// Barriers the other thread has executed.
            static ref DONE: AtomicU32 = AtomicU32::new(0);
            /// Whether the other thread has finished.
            static ref LEFT: AtomicBool = AtomicBool::new(false);
        }

        /// As `sys::membarrier::supported`.
        pub(crate) fn supported() -> bool {
            true
        }

        /// As `sys::membarrier::register`.
        pub(crate) fn register() -> bool {
            true
        }

        /// The caller's side: returns once the other thread has executed a full
        /// barrier (or left) after this call began.
        pub(crate) fn global_expedited() -> bool {
            fence(Ordering::SeqCst);
            let want = REQUESTED.fetch_add(1, Ordering::SeqCst) + 1;
            while DONE.load(Ordering::SeqCst) < want && !LEFT.load(Ordering::SeqCst) {
                loom::thread::yield_now();
            }
            fence(Ordering::SeqCst);
            true
        }

        /// A point where the other thread's requested barrier may interrupt this one.
        pub(crate) fn interrupt_point() {
            let want = REQUESTED.load(Ordering::SeqCst);
            if DONE.load(Ordering::Relaxed) < want {
                fence(Ordering::SeqCst);
                DONE.store(want, Ordering::SeqCst);
            }
        }

        /// This thread stops running: a barrier requested from now on need not wait
        /// for it (a thread that is switched out passes a full barrier).
        #[cfg(test)]
        pub(crate) fn leave() {
            fence(Ordering::SeqCst);
            LEFT.store(true, Ordering::SeqCst);
        }
    }
}

/// Runs `f` under `loom::model`, with at most `preemptions` preemptions per execution
/// (`None`: all executions) unless `LOOM_MAX_PREEMPTIONS` says otherwise, and prints
/// how many executions loom explored and how long it took (shown with `--nocapture`).
#[cfg(all(test, loom))]
pub(crate) fn check(name: &str, preemptions: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let start = std::time::Instant::now();
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = preemptions;
    }
    let bound = builder.preemption_bound;
    builder.check(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        f();
    });
    eprintln!(
        "{name}: {} executions in {:.1} s (preemption bound {bound:?})",
        runs.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64()
    );
}
