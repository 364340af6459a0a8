//! Futex wait and wake across processes.
//!
//! The futex word lives in the shared segment, so the *shared* futex (no
//! `FUTEX_PRIVATE_FLAG`) is the only one that works: the private flavour keys the
//! wait queue by the address space and never crosses processes.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::thread::futex;

/// Sleeps while `*word == expected`, at most `timeout`. Returns on a wake, on a value
/// change, on a signal or at the timeout; the caller re-checks its condition in all cases.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = rustix::fs::Timespec {
        tv_sec: timeout.as_secs() as _,
        tv_nsec: timeout.subsec_nanos() as _,
    };
    // EAGAIN (value already changed), ETIMEDOUT and EINTR all mean "re-check".
    let _ = futex::wait(word, futex::Flags::empty(), expected, Some(&ts));
}

/// Wakes every process sleeping on `word`.
pub(crate) fn wake_all(word: &AtomicU32) {
    let _ = futex::wake(word, futex::Flags::empty(), u32::MAX);
}
