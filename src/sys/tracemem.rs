//! What tracing needs from the OS: a cheap timestamp (the CPU's time-stamp counter,
//! which the launcher maps onto `CLOCK_MONOTONIC`) and a memfd seen as atomic words.

use std::sync::atomic::AtomicU64;

use super::shm::Mapping;

/// A timestamp in ticks of one counter shared by every core: the time-stamp counter
/// on x86-64 (invariant and synchronized wherever the kernel uses it as its clock
/// source), `CLOCK_MONOTONIC` nanoseconds elsewhere.
#[inline(always)]
pub(crate) fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` reads a counter; it touches no memory and every x86-64 has it.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        monotonic_ns()
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds.
pub(crate) fn monotonic_ns() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64,
        Err(_) => 0, // CLOCK_MONOTONIC cannot fail on Linux
    }
}

/// The whole mapping as 64-bit atomic words (its length rounded down to 8 bytes).
pub(crate) fn words(map: &Mapping) -> &[AtomicU64] {
    // SAFETY: the mapping is page aligned, lives as long as the borrow, and is only
    // ever accessed through atomics (shared memory that other processes write).
    unsafe { std::slice::from_raw_parts(map.base().as_ptr().cast::<AtomicU64>(), map.len() / 8) }
}

/// Faults in the pages under `words` now, for writing: one system call at start-up
/// instead of a page fault every 64 events while the program runs.
pub(crate) fn prefault(words: &[AtomicU64]) {
    // SAFETY: `words` lies within a live mapping of this process (it borrows it).
    unsafe { super::shm::populate(words.as_ptr().cast(), std::mem::size_of_val(words), true) }
}
