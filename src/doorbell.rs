//! Waiting: spin, then yield, then sleep on the rank's futex doorbell; and waking only
//! ranks that sleep.
//!
//! Measured on the reference 2-core VM: a cache line moves between cores in ~57 ns, a
//! futex wake of a sleeper on the other core costs ~40 us, `sched_yield` ~0.65 us (a
//! hand-off to another process on the same core ~1.9 us). So a blocked call polls
//! shared memory first (a message due within microseconds must not find its receiver
//! asleep), then yields (the right answer when ranks outnumber cores: the rank that
//! would produce the message gets the core), and only after `yield_ns` sleeps, so that
//! idle ranks burn no CPU. Both phases are tunable (`SHMPI_SPIN_US`, `SHMPI_YIELD_US`);
//! the launcher picks defaults by whether ranks outnumber its CPUs.
//!
//! # The sleep/wake handshake (an event count)
//!
//! | step | sleeper (rank r) | waker (a peer that changed something r may wait for) |
//! |---|---|---|
//! | 1 | `seq = doorbell` | publish the change (a record seal, a ring head) |
//! | 2 | `sleeping = 1`; `fence(SeqCst)` | `fence(SeqCst)` |
//! | 3 | re-check for work; if any, `sleeping = 0` and return | `if sleeping == 1 { doorbell += 1; futex_wake }` |
//! | 4 | `futex_wait(doorbell, seq)`; `sleeping = 0` | |
//!
//! The two SeqCst fences order each side's store before its load, so either the waker
//! sees `sleeping == 1` (and bumps the doorbell, which makes the futex wait return), or
//! the sleeper's re-check sees the change. Sleeps also end after `SLEEP_SLICE` so that
//! the abort word and departed peers are re-checked even if a peer died mid-handshake.

use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use crate::segment::Bell;
use crate::sys::futex;

/// Longest single futex sleep; the waiter re-checks aborts and peers after it.
pub(crate) const SLEEP_SLICE: Duration = Duration::from_millis(20);
/// Longest sleep of a rank that waits for ring space: consumers announce freed space
/// with [`notify_relaxed`], which can miss a sleeper that is announcing itself at the
/// same instant; the slice bounds that rare delay.
pub(crate) const SPACE_SLICE: Duration = Duration::from_millis(1);

/// Which phase a blocked call is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Spin,
    Yield,
    Sleep,
}

/// Progress of one blocked call through the spin -> yield -> sleep phases.
pub(crate) struct Backoff {
    calls: u32,
    start: Option<Instant>,
    last: Phase,
    spin_ns: u64,
    yield_ns: u64,
}

/// Idle steps between clock reads.
const STEPS_PER_CLOCK: u32 = 64;

impl Backoff {
    pub(crate) fn new(spin_ns: u64, yield_ns: u64) -> Self {
        Backoff {
            calls: 0,
            start: None,
            last: Phase::Spin,
            spin_ns,
            yield_ns,
        }
    }

    /// Whether the last idle step was in the spin phase (no clock read).
    #[inline]
    pub(crate) fn spinning(&self) -> bool {
        self.last == Phase::Spin
    }

    /// The phase for the next idle step. The clock is read on the first step and then
    /// once every `STEPS_PER_CLOCK` steps; in between the last phase holds.
    #[inline]
    pub(crate) fn phase(&mut self) -> Phase {
        self.calls = self.calls.wrapping_add(1);
        if self.calls % STEPS_PER_CLOCK != 0 && (self.start.is_some() || self.spin_ns > 0) {
            // Spin without reading the clock: a message due within a microsecond must
            // not wait for a clock read.
            return self.last;
        }
        let now = Instant::now();
        let waited = (now - *self.start.get_or_insert(now)).as_nanos() as u64;
        self.last = if waited < self.spin_ns {
            Phase::Spin
        } else if waited < self.spin_ns + self.yield_ns {
            Phase::Yield
        } else {
            Phase::Sleep
        };
        self.last
    }
}

/// Spin-phase pause.
#[inline]
pub(crate) fn pause() {
    std::hint::spin_loop();
}

/// Yield-phase pause.
pub(crate) fn yield_now() {
    std::thread::yield_now();
}

/// Sleeps on `bell` unless `has_work` (evaluated after announcing the sleep) finds
/// something to do. Returns after a wake, a timeout slice or at once.
pub(crate) fn sleep(bell: &Bell, slice: Duration, has_work: impl FnOnce() -> bool) {
    let seq = bell.doorbell.load(Ordering::Acquire);
    bell.sleeping.store(1, Ordering::Relaxed);
    // Orders the `sleeping` store before the re-check's loads (handshake step 2).
    fence(Ordering::SeqCst);
    if !has_work() {
        futex::wait(&bell.doorbell, seq, slice);
    }
    bell.sleeping.store(0, Ordering::Relaxed);
}

/// Wakes the owner of `bell` if it sleeps. Call after publishing a change it may wait for.
#[inline]
pub(crate) fn notify(bell: &Bell) {
    // Orders the caller's publishing store before the `sleeping` load (handshake step 2).
    fence(Ordering::SeqCst);
    if bell.sleeping.load(Ordering::Relaxed) != 0 {
        ring(bell);
    }
}

/// Wakes the owner of `bell` if it is seen asleep, without ordering the caller's
/// earlier stores first (no fence): may miss a sleeper that is announcing itself right
/// now, so only for waits whose sleep is bounded by [`SPACE_SLICE`].
#[inline]
pub(crate) fn notify_relaxed(bell: &Bell) {
    if bell.sleeping.load(Ordering::Relaxed) != 0 {
        ring(bell);
    }
}

/// Wakes the owners of `bells` that sleep, with one fence for all of them. Call after
/// publishing a change (a collective arrival) that any of them may wait for.
#[inline]
pub(crate) fn notify_many<'a>(bells: impl Iterator<Item = &'a Bell>) {
    // Orders the caller's publishing store before the `sleeping` loads (handshake step 2).
    fence(Ordering::SeqCst);
    for bell in bells {
        if bell.sleeping.load(Ordering::Relaxed) != 0 {
            ring(bell);
        }
    }
}

/// Unconditionally wakes the owner of `bell` (used for aborts).
pub(crate) fn ring(bell: &Bell) {
    bell.doorbell.fetch_add(1, Ordering::Release);
    futex::wake_all(&bell.doorbell);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_moves_through_the_phases_in_order() {
        let mut b = Backoff::new(0, 2_000_000);
        assert_eq!(b.phase(), Phase::Yield);
        let mut b = Backoff::new(1_000_000, 5_000_000);
        let mut seen = vec![];
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(50) {
            let p = b.phase();
            if seen.last() != Some(&p) {
                seen.push(p);
            }
        }
        assert_eq!(seen, vec![Phase::Spin, Phase::Yield, Phase::Sleep]);
    }

    #[test]
    fn sleeper_is_woken_by_notify() {
        let bell = Bell {
            doorbell: std::sync::atomic::AtomicU32::new(0),
            sleeping: std::sync::atomic::AtomicU32::new(0),
        };
        let flag = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let t = Instant::now();
                while !flag.load(Ordering::Acquire) {
                    sleep(&bell, SLEEP_SLICE, || flag.load(Ordering::Acquire));
                    assert!(t.elapsed() < Duration::from_secs(5));
                }
            });
            std::thread::sleep(Duration::from_millis(5));
            flag.store(true, Ordering::Release);
            notify(&bell);
        });
    }
}
