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
//!
//! Where the kernel allows it and sleeps are rare (ranks do not outnumber CPUs, and a
//! blocked call spins and yields for at least a millisecond first), the waker's fence
//! is replaced by an asymmetric barrier ([`enable_light_wakers`]): every rank registers for
//! `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` at init, and a sleeper calls it between
//! its fence and its re-check. That call makes every running rank execute a full
//! barrier, so a waker's publishing store is either visible to the re-check (it came
//! before the waker's barrier) or followed by a `sleeping` load that sees 1 (it came
//! after). The cost moves from every send and collective arrival, where the fence
//! waited for a cache-line transfer, to the rare sleep (about 14 us).
//!
//! # Model checking
//!
//! Under `cfg(loom)` (see `sync.rs`) the doorbell's words are loom atomics, the futex
//! is a loom mutex and condition variable without timeouts, and `membarrier` a modeled
//! barrier on the other thread. `loom_tests` below check that a sleeper that announces
//! its sleep and re-checks is always woken by a waker that publishes and then calls
//! [`notify`] or [`notify_many`], in both handshakes, and that [`notify_relaxed`] can
//! miss it.

// The handshake's flags are the process's configuration, `std` atomics in every build.
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

// The handshake's atomics and system calls, swapped for loom's and for models under
// `cfg(loom)` (see `sync.rs`).
use crate::sync::atomic::{AtomicU32, Ordering, compiler_fence, fence};
#[cfg(loom)]
use crate::sync::model::{futex, membarrier};
#[cfg(not(loom))]
use crate::sys::{futex, membarrier};

// The loom build calls the models instead: the real calls stay referenced (and built).
#[cfg(loom)]
const _: [fn() -> bool; 3] = [
    crate::sys::membarrier::supported,
    crate::sys::membarrier::register,
    crate::sys::membarrier::global_expedited,
];
#[cfg(loom)]
const _: fn(&std::sync::atomic::AtomicU32, u32, Duration) = crate::sys::futex::wait;
#[cfg(loom)]
const _: fn(&std::sync::atomic::AtomicU32) = crate::sys::futex::wake_all;

/// A rank's doorbell, on its own line of the rank's control block (`segment.rs`).
#[repr(C)]
#[derive(Default)]
pub(crate) struct Bell {
    /// Futex word: bumped by whoever wakes the rank.
    pub(crate) doorbell: AtomicU32,
    /// 1 while the rank is (about to be) asleep on `doorbell`.
    pub(crate) sleeping: AtomicU32,
}

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

/// Whether this job uses the asymmetric handshake: sleepers call the heavy barrier
/// ([`heavy_barrier`]) because wakers may skip their fence. Decided the same way in
/// every rank ([`enable_light_wakers`]), from what they all share.
static HEAVY_SLEEPERS: AtomicBool = AtomicBool::new(false);

/// Whether this process's wakers skip their fence: the job uses the asymmetric
/// handshake and this process is registered for
/// `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`, so every sleeper's heavy barrier
/// orders this process's stores for it.
static LIGHT_WAKERS: AtomicBool = AtomicBool::new(false);
// Both flags are Relaxed: they are written once, inside `enable_light_wakers`'s `Once`,
// before the process's first wake or sleep (a rank decides in `Engine::new`, before it
// has any peer to wake), and the `Once` orders that write before every later caller.

/// Makes this process's wakes fence-free where the job and the kernel allow it:
/// `job_allows` (the same in every rank: the ranks do not outnumber the CPUs and a
/// blocked call spins and yields for at least [`LIGHT_MIN_WAIT`] before it sleeps),
/// `SHMPI_MEMBARRIER` is not `0`, and the kernel has
/// `MEMBARRIER_CMD_GLOBAL_EXPEDITED` (Linux 4.16+, not filtered by seccomp). The first
/// call decides for the process (a rank makes one, at init, before its first wake or
/// sleep), so the handshake never changes under a wait; later calls return that
/// decision. Returns whether wakes are fence-free.
///
/// The handshake's two fences guard the rare moment when a rank goes to sleep, yet the
/// waker's one runs on every send and every collective arrival, and costs a cache-line
/// transfer there (the fence waits until the published store is visible). An
/// asymmetric barrier moves the whole cost to the sleeper: its `membarrier` call makes
/// every running registered process execute a full barrier (an IPI, about 14 us on the
/// Zen 5 VM), which does what each waker's fence did. Measured on that host, 2 ranks,
/// `examples/coll_loop`, 5 alternating runs, together with the collectives' quick polls:
/// barrier 86-103 -> 71-90 ns, 1-double allreduce 98-115 -> 89-116 ns (4 of 5 runs
/// faster); `SHMPI_MEMBARRIER=0` gives the fenced handshake back.
///
/// Why only when sleeps are rare: with 8 ranks on 2 CPUs sleeping at every wait
/// (`SHMPI_YIELD_US=0`), the sleepers' barriers (an IPI each, serialized in the kernel)
/// made a barrier take 235 us instead of 38 us.
pub(crate) fn enable_light_wakers(job_allows: bool) -> bool {
    static DECIDED: std::sync::Once = std::sync::Once::new();
    DECIDED.call_once(|| {
        let off = crate::tuning::membarrier_off();
        let heavy = job_allows && !off && membarrier::supported();
        HEAVY_SLEEPERS.store(heavy, Ordering::Relaxed);
        let light = heavy && membarrier::register();
        LIGHT_WAKERS.store(light, Ordering::Relaxed);
    });
    LIGHT_WAKERS.load(Ordering::Relaxed)
}

/// The shortest spin + yield time before a sleep for which the asymmetric handshake is
/// used: a sleep then follows at least this much waiting, so its `membarrier` costs
/// under 2 % of it.
pub(crate) const LIGHT_MIN_WAIT: Duration = Duration::from_millis(1);

/// The sleeper's side of the asymmetric barrier: every thread of every registered
/// process that runs now executes a full memory barrier before this returns (those
/// not running pass one when they are scheduled). Returns false where the kernel
/// refuses, and then wakers that skip their fence can miss this sleeper.
fn heavy_barrier() -> bool {
    membarrier::global_expedited()
}

/// The waker's side of the handshake (step 2): orders the caller's publishing store
/// before its `sleeping` loads. A compiler fence suffices in a registered process,
/// since the sleeper's [`heavy_barrier`] makes the processor order them.
#[inline]
fn waker_fence() {
    if LIGHT_WAKERS.load(Ordering::Relaxed) {
        compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// Sleeps on `bell` unless `has_work` (evaluated after announcing the sleep) finds
/// something to do. Returns after a wake, a timeout slice or at once.
pub(crate) fn sleep(bell: &Bell, slice: Duration, has_work: impl FnOnce() -> bool) {
    let seq = bell.doorbell.load(Ordering::Acquire);
    bell.sleeping.store(1, Ordering::Relaxed);
    // Orders the `sleeping` store before the re-check's loads (handshake step 2), for
    // wakers that fence; the heavy barrier does it for those that do not. If it fails,
    // such a waker could miss this sleep: bound it.
    fence(Ordering::SeqCst);
    let slice = if !HEAVY_SLEEPERS.load(Ordering::Relaxed) || heavy_barrier() {
        slice
    } else {
        slice.min(SPACE_SLICE)
    };
    if !has_work() {
        futex::wait(&bell.doorbell, seq, slice);
    }
    bell.sleeping.store(0, Ordering::Relaxed);
}

/// Wakes the owner of `bell` if it sleeps. Call after publishing a change it may wait for.
#[inline]
pub(crate) fn notify(bell: &Bell) {
    waker_fence();
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
    waker_fence();
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
        let bell = Bell::default();
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

    /// Two threads hand a counter back and forth, each sleeping at once until the
    /// other's store, 100000 times: every hand-off needs a wake. A missed wake would
    /// leave a sleeper in its 3 s slice and trip the 2 s watchdog. Each handshake
    /// (fence-free wakers where the kernel allows them, and `SHMPI_MEMBARRIER=0`'s
    /// two fences) runs in a process of its own, this test binary started again, since
    /// the first decision of a process holds for all of it. With the sleeper's barrier
    /// removed and the wakers left fence-free, it failed 5 runs of 5 (a wake missed
    /// within 18-54160 hand-offs); the race needs both threads on a CPU at once, so a
    /// machine busy with other work can hide it.
    #[test]
    fn sleep_and_notify_hand_off_without_a_missed_wake() {
        use std::sync::atomic::AtomicU64;
        const CHILD: &str = "SHMPI_DOORBELL_TEST_CHILD";
        let name = "doorbell::tests::sleep_and_notify_hand_off_without_a_missed_wake";
        if std::env::var(CHILD).is_err() {
            for mode in ["1", "0"] {
                let out = std::process::Command::new(std::env::current_exe().unwrap())
                    .args([name, "--exact", "--nocapture", "--test-threads=1"])
                    .env(CHILD, "1")
                    .env("SHMPI_MEMBARRIER", mode)
                    .output()
                    .expect("start the test binary again");
                let text = String::from_utf8_lossy(&out.stdout).to_string()
                    + &String::from_utf8_lossy(&out.stderr);
                assert!(
                    out.status.success() && text.contains("1 passed"),
                    "SHMPI_MEMBARRIER={mode}: {text}"
                );
                let light = mode == "1" && membarrier::supported();
                assert!(
                    text.contains(&format!("fence-free wakers: {light}")),
                    "{text}"
                );
            }
            return;
        }
        let light = enable_light_wakers(true);
        eprintln!("fence-free wakers: {light}");
        let bells = [Bell::default(), Bell::default()];
        let turn = AtomicU64::new(0);
        const ROUNDS: u64 = 100_000;
        let slice = Duration::from_secs(3);
        std::thread::scope(|s| {
            for me in 0..2u64 {
                let (bells, turn) = (&bells, &turn);
                s.spawn(move || {
                    let mine = &bells[me as usize];
                    let theirs = &bells[1 - me as usize];
                    let mut last = Instant::now();
                    // Thread `me` moves the counter from even+me to the next value.
                    for v in (me..2 * ROUNDS).step_by(2) {
                        while turn.load(Ordering::Acquire) != v {
                            sleep(mine, slice, || turn.load(Ordering::Acquire) == v);
                            assert!(
                                last.elapsed() < Duration::from_secs(2),
                                "thread {me} waited 2 s for {v}: a wake was missed"
                            );
                        }
                        last = Instant::now();
                        turn.store(v + 1, Ordering::Release);
                        notify(theirs);
                    }
                });
            }
        });
        assert_eq!(turn.load(Ordering::Relaxed), 2 * ROUNDS);
    }
}

/// Model checks of the sleep/wake handshake under loom (see `sync.rs` for what the
/// futex and membarrier models assume): a sleeper that announces its sleep and
/// re-checks, and a waker that publishes and notifies, in every interleaving loom
/// explores. A lost wake-up leaves the sleeper blocked for good (the model's futex has
/// no timeout), which loom reports as a deadlock.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::sync::model::membarrier as mb;
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicBool as ModelBool;

    /// The handshake flags are process-wide: one model at a time sets them.
    static FLAVOUR: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// One sleeper waits for a flag that one waker sets and announces with `wake`,
    /// in the fenced handshake or (`light`) the fence-free wakers' one.
    fn sleeper_and_waker(name: &str, light: bool, wake: fn(&Bell)) {
        let _one = FLAVOUR.lock().unwrap_or_else(|e| e.into_inner());
        HEAVY_SLEEPERS.store(light, Ordering::Relaxed);
        LIGHT_WAKERS.store(light, Ordering::Relaxed);
        crate::sync::check(name, None, move || {
            let bell = Arc::new(Bell::default());
            let work = Arc::new(ModelBool::new(false));
            let waker = {
                let (bell, work) = (bell.clone(), work.clone());
                loom::thread::spawn(move || {
                    mb::interrupt_point();
                    work.store(true, Ordering::Release);
                    wake(&bell);
                    mb::leave();
                })
            };
            while !work.load(Ordering::Acquire) {
                sleep(&bell, SLEEP_SLICE, || work.load(Ordering::Acquire));
            }
            waker.join().unwrap();
        });
    }

    #[test]
    fn loom_fenced_handshake_loses_no_wake_up() {
        sleeper_and_waker("fenced handshake", false, notify);
    }

    #[test]
    fn loom_fence_free_wakers_lose_no_wake_up_with_the_sleepers_membarrier() {
        sleeper_and_waker("fence-free wakers", true, notify);
    }

    #[test]
    fn loom_notify_many_loses_no_wake_up_in_either_handshake() {
        for light in [false, true] {
            sleeper_and_waker("notify_many", light, |b| notify_many(std::iter::once(b)));
        }
    }

    /// Each thread is a sleeper and a waker, as ranks are: a hand-off there and back,
    /// each side asleep on its own bell until the other's store (the fenced handshake:
    /// the membarrier model takes one caller at a time).
    #[test]
    fn loom_fenced_hand_off_there_and_back_loses_no_wake_up() {
        let _one = FLAVOUR.lock().unwrap_or_else(|e| e.into_inner());
        HEAVY_SLEEPERS.store(false, Ordering::Relaxed);
        LIGHT_WAKERS.store(false, Ordering::Relaxed);
        crate::sync::check("fenced hand-off", None, || {
            let bells = Arc::new([Bell::default(), Bell::default()]);
            let turn = Arc::new(AtomicU32::new(0));
            // Thread `me` waits for `turn == me`, then passes it on.
            let side = |me: u32, bells: &[Bell; 2], turn: &AtomicU32| {
                while turn.load(Ordering::Acquire) != me {
                    sleep(&bells[me as usize], SLEEP_SLICE, || {
                        turn.load(Ordering::Acquire) == me
                    });
                }
                turn.store(me + 1, Ordering::Release);
                notify(&bells[(1 - me) as usize]);
            };
            let other = {
                let (bells, turn) = (bells.clone(), turn.clone());
                loom::thread::spawn(move || side(1, &bells, &turn))
            };
            side(0, &bells, &turn);
            // Back to thread 0: it waits for thread 1's store.
            while turn.load(Ordering::Acquire) != 2 {
                sleep(&bells[0], SLEEP_SLICE, || turn.load(Ordering::Acquire) == 2);
            }
            other.join().unwrap();
        });
    }

    /// The model catches a lost wake-up: `notify_relaxed` skips the fence and may miss
    /// a sleeper that is announcing itself (why its waits are bounded by `SPACE_SLICE`).
    #[test]
    #[should_panic(expected = "deadlock")]
    fn loom_notify_relaxed_can_miss_a_sleeper() {
        sleeper_and_waker("notify_relaxed", false, notify_relaxed);
    }
}
