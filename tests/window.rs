//! Shared-memory windows through the real launcher, checked against MPI-3's rules for
//! `MPI_Win_allocate_shared`: each rank's part has the size it asked (0 included) and
//! is reachable from every rank; what one rank puts before a fence every rank gets
//! after it; an exclusive lock makes get-modify-put sequences on one target exact;
//! accumulates and fetch-and-ops from every rank at once lose nothing; accesses outside
//! a part, bad ranks and a freed window are errors of the classes MPI names.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{assert_success, run_ranks, run_with_watchdog, shmrun};
use shmpi::{Communicator, Error, ErrorClass, LockKind, Op, Window};

/// The byte rank `r` writes at offset `i` of its part.
fn pattern(r: usize, i: usize) -> u8 {
    (r * 31 + i * 7 + 1) as u8
}

/// The size rank `r` asks for: different per rank, not a multiple of 8.
fn part_len(r: usize) -> usize {
    1000 + 13 * r
}

/// Every rank writes its whole part, fence, every rank reads every part (whole, and a
/// piece at an unaligned offset); then the exclusive-lock counters, the accumulates
/// and the fetch-and-adds of every rank at once come out exact.
fn window_rules(w: &Communicator) {
    let n = w.size() as usize;
    let me = w.rank() as usize;
    let mut win = Window::allocate_shared(w, part_len(me)).unwrap();
    let mine: Vec<u8> = (0..part_len(me)).map(|i| pattern(me, i)).collect();
    win.write(&mine, 0).unwrap();
    win.fence().unwrap();
    for r in 0..n {
        let (size, _) = win.shared_query(r as i32).unwrap();
        assert_eq!(size, part_len(r));
        let mut got = vec![0u8; size];
        win.get(&mut got, r as i32, 0).unwrap();
        let want: Vec<u8> = (0..size).map(|i| pattern(r, i)).collect();
        assert_eq!(got, want, "rank {r}'s part as read by rank {me}");
        let mut piece = [0u8; 21];
        win.get(&mut piece, r as i32, 3).unwrap();
        assert_eq!(&piece[..], &want[3..24]);
    }
    win.fence().unwrap();
    win.free().unwrap();

    // Counters in rank 0's part: one per rank's lock test, then accumulate, then atomics.
    let win = Window::allocate_shared(w, if me == 0 { 64 } else { 0 }).unwrap();
    const ROUNDS: u64 = 1000;
    for _ in 0..ROUNDS {
        win.lock(LockKind::Exclusive, 0).unwrap();
        let mut v = [0u64];
        win.get(&mut v, 0, 0).unwrap();
        v[0] += 1;
        win.put(&v, 0, 0).unwrap();
        win.unlock(0).unwrap();
    }
    let contrib: Vec<i64> = (0..4).map(|k| (me as i64 + 1) * (k + 1)).collect();
    for _ in 0..100 {
        win.accumulate(&contrib, 0, 8, Op::Sum).unwrap();
    }
    for _ in 0..ROUNDS {
        win.fetch_add(0, 40, 1).unwrap();
    }
    win.accumulate(&[me as u32 + 7], 0, 48, Op::Max).unwrap();
    win.fence().unwrap();
    let mut count = [0u64];
    win.get(&mut count, 0, 0).unwrap();
    assert_eq!(count[0], ROUNDS * n as u64, "exclusive-lock counter");
    let mut sums = [0i64; 4];
    win.get(&mut sums, 0, 8).unwrap();
    let ranks_sum = (n * (n + 1) / 2) as i64;
    let want: Vec<i64> = (1..=4).map(|k| 100 * k * ranks_sum).collect();
    assert_eq!(&sums[..], &want[..], "accumulated sums");
    assert_eq!(
        win.atomic_u64(0, 40).unwrap().load(Ordering::Acquire),
        ROUNDS * n as u64,
        "fetch_add counter"
    );
    let mut max = [0u32];
    win.get(&mut max, 0, 48).unwrap();
    assert_eq!(max[0], n as u32 + 6, "accumulated max");
    // A ticket per rank: fetch_add hands out 0..n exactly once.
    win.fence().unwrap();
    let ticket = win
        .fetch_add(0, 56, 1)
        .unwrap()
        .expect("rank 0 is a real target");
    let tickets = w.allgather(&ticket).unwrap();
    let mut sorted = tickets.clone();
    sorted.sort();
    assert_eq!(sorted, (0..n as u64).collect::<Vec<_>>(), "{tickets:?}");
}

#[test]
fn window_rules_at_1_rank() {
    run_ranks("window_rules_at_1_rank", 1, window_rules);
}

#[test]
fn window_rules_at_2_ranks() {
    run_ranks("window_rules_at_2_ranks", 2, window_rules);
}

#[test]
fn window_rules_at_3_ranks() {
    run_ranks("window_rules_at_3_ranks", 3, window_rules);
}

#[test]
fn window_rules_at_4_ranks() {
    run_ranks("window_rules_at_4_ranks", 4, window_rules);
}

#[test]
fn window_rules_at_8_ranks() {
    run_ranks("window_rules_at_8_ranks", 8, window_rules);
}

/// 16 ranks on this machine's few cores: lock waiters must yield and sleep, not spin
/// the holder off its core.
#[test]
fn window_rules_at_16_ranks() {
    run_ranks("window_rules_at_16_ranks", 16, window_rules);
}

/// `shared_query` gives each rank's own size, 0 included; the parts follow rank order,
/// each aligned to 64 bytes; a sub-communicator's window has parts of its members only.
#[test]
fn shared_query_gives_every_ranks_size_including_zero() {
    run_ranks(
        "shared_query_gives_every_ranks_size_including_zero",
        5,
        |w| {
            let size_of = |r: usize| [0, 1, 100, 0, 4096][r];
            let me = w.rank() as usize;
            let win = Window::allocate_shared(w, size_of(me)).unwrap();
            let mut prev = 0usize;
            for r in 0..5 {
                let (size, ptr) = win.shared_query(r as i32).unwrap();
                assert_eq!(size, size_of(r));
                let addr = ptr.as_ptr() as usize;
                assert_eq!(addr % 64, 0, "rank {r}'s part is 64-aligned");
                assert!(addr >= prev, "parts in rank order");
                prev = addr + size;
            }
            let e = win.put(&[1u8], 0, 0).unwrap_err();
            assert_eq!(e.class(), ErrorClass::RmaRange, "{e}");
            // A window over the odd ranks: two parts.
            let odd = w.split((me % 2) as i32, 0).unwrap().unwrap();
            let sub = Window::allocate_shared(&odd, 8 * (odd.rank() as usize + 1)).unwrap();
            for r in 0..odd.size() {
                assert_eq!(sub.shared_query(r).unwrap().0, 8 * (r as usize + 1));
            }
            assert!(sub.shared_query(odd.size()).is_err());
        },
    );
}

/// Bad input leaves the window as it was: a put past a part's end names the offset,
/// the length and the part's size and writes nothing; bad ranks are rank errors; lock
/// misuse is an error; after `free` every call is a window error.
#[test]
fn bad_accesses_are_errors_that_change_nothing() {
    run_ranks("bad_accesses_are_errors_that_change_nothing", 3, |w| {
        let me = w.rank() as usize;
        let mut win = Window::allocate_shared(w, 16).unwrap();
        win.write(&[0xAAu8; 16], 0).unwrap();
        win.fence().unwrap();
        let target = ((me + 1) % 3) as i32;
        let e = win.put(&[1u64, 2], target, 8).unwrap_err();
        assert_eq!(e.class(), ErrorClass::RmaRange, "{e}");
        let msg = e.to_string();
        for word in ["16 bytes", "offset 8", "has 16 bytes"] {
            assert!(msg.contains(word), "{msg:?} lacks {word:?}");
        }
        assert!(win.put(&[1u8], target, usize::MAX).is_err());
        let mut big = [0u8; 17];
        assert_eq!(
            win.get(&mut big, target, 0).unwrap_err().class(),
            ErrorClass::RmaRange
        );
        assert_eq!(
            win.accumulate(&[1u32; 5], target, 0, Op::Sum)
                .unwrap_err()
                .class(),
            ErrorClass::RmaRange
        );
        assert_eq!(
            win.accumulate(&[1.0f64], target, 0, Op::BitAnd)
                .unwrap_err()
                .class(),
            ErrorClass::Op
        );
        for bad in [-1, 3, i32::MAX] {
            let e = win.put(&[1u8], bad, 0).unwrap_err();
            assert!(
                matches!(e, Error::InvalidRank { rank, .. } if rank == bad),
                "{e}"
            );
            assert_eq!(
                win.lock(LockKind::Shared, bad).unwrap_err().class(),
                ErrorClass::Rank
            );
            assert!(win.shared_query(bad).is_err());
        }
        assert_eq!(
            win.atomic_u64(target, 4).unwrap_err().class(),
            ErrorClass::Arg,
            "misaligned atomic"
        );
        assert!(win.unlock(0).is_err(), "unlock without lock");
        win.lock(LockKind::Shared, 0).unwrap();
        assert!(win.lock(LockKind::Exclusive, 0).is_err(), "relock");
        assert!(win.free().is_err(), "free while holding a lock");
        win.unlock(0).unwrap();
        win.fence().unwrap();
        let mut all = [0u8; 16];
        for r in 0..3 {
            win.get(&mut all, r, 0).unwrap();
            assert_eq!(all, [0xAA; 16], "rank {r}'s part after refused calls");
        }
        win.free().unwrap();
        for e in [
            win.put(&[1u8], 0, 0).unwrap_err(),
            win.get(&mut all, 0, 0).unwrap_err(),
            win.fence().unwrap_err(),
            win.lock(LockKind::Shared, 0).unwrap_err(),
            win.shared_query(0).unwrap_err(),
            win.free().unwrap_err(),
        ] {
            assert_eq!(e.class(), ErrorClass::Win, "{e}");
        }
        // The communicator still works.
        assert_eq!(w.allreduce(&1, |a, b| a + b).unwrap(), 3);
    });
}

/// Shared locks let readers in together and keep writers out: under `lock_all`, every
/// rank reads a value an exclusive writer only ever changes as a whole pair.
#[test]
fn shared_locks_exclude_exclusive_writers() {
    run_ranks("shared_locks_exclude_exclusive_writers", 4, |w| {
        let me = w.rank();
        let win = Window::allocate_shared(w, if me == 0 { 16 } else { 0 }).unwrap();
        win.fence().unwrap();
        for i in 0..300u64 {
            if me == 0 {
                win.lock(LockKind::Exclusive, 0).unwrap();
                win.put(&[i], 0, 0).unwrap();
                win.put(&[i], 0, 8).unwrap();
                win.unlock(0).unwrap();
            } else {
                win.lock_all().unwrap();
                let mut pair = [0u64; 2];
                win.get(&mut pair, 0, 0).unwrap();
                assert_eq!(pair[0], pair[1], "a torn pair under a shared lock");
                assert!(win.unlock(0).is_err(), "unlock inside lock_all");
                win.unlock_all().unwrap();
            }
        }
        assert!(win.unlock_all().is_err());
        win.fence().unwrap();
        // Lent atomics: every rank increments a u32 slot array at once.
        let slots = win.atomics::<AtomicU32>(0, 0, 4).unwrap();
        for (k, slot) in slots.iter().enumerate() {
            slot.fetch_add(k as u32 + 1, Ordering::Relaxed);
        }
        win.fence().unwrap();
        let mut words = [0u32; 4];
        win.get(&mut words, 0, 0).unwrap();
        // Slots started at the last pair (299, 299) written by rank 0.
        let base = [299u32, 0, 299, 0];
        for (k, (got, start)) in words.iter().zip(base).enumerate() {
            assert_eq!(*got, start.wrapping_add(4 * (k as u32 + 1)));
        }
    });
}

/// A rank that exits holding an exclusive lock does not hang the rank waiting for it:
/// the waiter gets an error (the holder left, or the launcher aborted the job) well
/// before the lock timeout, instead of blocking forever.
#[test]
fn a_lock_held_by_a_rank_that_exits_fails_the_waiter() {
    const NAME: &str = "a_lock_held_by_a_rank_that_exits_fails_the_waiter";
    if common::is_child(NAME) {
        let universe = shmpi::init().unwrap();
        let w = universe.world();
        let win = Window::allocate_shared(&w, 8).unwrap();
        if w.rank() == 1 {
            win.lock(LockKind::Exclusive, 0).unwrap();
            w.barrier().unwrap();
            std::mem::forget(win);
            std::process::exit(3);
        }
        w.barrier().unwrap();
        let t = std::time::Instant::now();
        let e = win.lock(LockKind::Exclusive, 0).unwrap_err();
        assert!(t.elapsed() < shmpi::LOCK_TIMEOUT / 2, "{e}");
        assert!(
            matches!(e, Error::PeerFailed { rank: 1, .. } | Error::Aborted { .. }),
            "{e}"
        );
        println!("waiter failed: {e}");
        std::process::exit(0);
    }
    let out = common::launch_self(NAME, 2, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("waiter failed"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `target/<profile>/examples/<name>`, built by `cargo test` along with the tests.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} not built (cargo test builds examples)",
        path.display()
    );
    path
}

/// The shared-table example: every rank checks the table rank 0 filled.
#[test]
fn shared_table_example_checks_its_checksum_at_4_ranks() {
    let mut cmd = Command::new(shmrun());
    cmd.args(["-n", "4", "--timeout", "60"])
        .arg(example("shared_table"));
    let out = run_with_watchdog(cmd);
    assert_success(&out, "example shared_table at N=4");
    let text = String::from_utf8_lossy(&out.stdout);
    for r in 0..4 {
        assert!(text.contains(&format!("rank {r}: checksum ok")), "{text}");
    }
}

/// A part handed out by `shared_part` (the Python package's `Shared_query` memory)
/// stays mapped after the window is freed, so memory lent to code outside Rust never
/// dangles; it reads what the ranks put before the fence, and calls on the freed window
/// are errors.
#[test]
fn a_shared_part_outlives_its_window() {
    run_ranks("a_shared_part_outlives_its_window", 3, |w| {
        let me = w.rank() as usize;
        let mut win = Window::allocate_shared(w, 16 + me).unwrap();
        win.write(&[me as u8 + 1; 4], 0).unwrap();
        win.fence().unwrap();
        let next = ((me + 1) % w.size() as usize) as i32;
        let part = win.shared_part(next).unwrap();
        assert_eq!(part.len(), 16 + next as usize);
        assert_eq!(part.as_ptr() as usize % 64, 0, "parts are 64-byte aligned");
        win.free().unwrap();
        assert_eq!(win.shared_part(next).unwrap_err().class(), ErrorClass::Win);
        // SAFETY: the part keeps its mapping; the ranks wrote before the fence and
        // nobody writes after it.
        let got = unsafe { std::slice::from_raw_parts(part.as_ptr(), 4) }.to_vec();
        assert_eq!(got, [next as u8 + 1; 4]);
        drop(part);
    });
}

/// `modify` is atomic with respect to accumulates and other modifies on the target:
/// every rank's read-modify-writes on one f64 and accumulates on the next lose nothing,
/// and the old values `modify` hands back are each seen once (a fetch-and-add ticket).
#[test]
fn modify_is_atomic_with_accumulates() {
    run_ranks("modify_is_atomic_with_accumulates", 4, |w| {
        let n = w.size() as usize;
        let win = Window::allocate_shared(w, if w.rank() == 0 { 16 } else { 0 }).unwrap();
        win.fence().unwrap();
        let mut tickets = Vec::new();
        for _ in 0..200 {
            let t = win
                .modify(0, 0, 1, |x: &mut [f64]| {
                    let old = x[0];
                    x[0] += 1.0;
                    old
                })
                .unwrap();
            tickets.push(t as u64);
            win.accumulate(&[2.0f64], 0, 8, Op::Sum).unwrap();
        }
        assert!(tickets.windows(2).all(|p| p[0] < p[1]), "tickets increase");
        let all = w.allgather(&tickets).unwrap();
        let mut seen: Vec<u64> = all.into_iter().flatten().collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..200 * n as u64).collect::<Vec<_>>(),
            "each ticket once"
        );
        win.fence().unwrap();
        let mut got = [0f64; 2];
        win.get(&mut got, 0, 0).unwrap();
        assert_eq!(got, [200.0 * n as f64, 400.0 * n as f64]);
        let e = win.modify(0, 8, 2, |_: &mut [f64]| ()).unwrap_err();
        assert_eq!(e.class(), ErrorClass::RmaRange, "{e}");
    });
}

/// `Window::create` over each rank's own vector (`MPI_Win_create`): puts, gets,
/// accumulates, `modify`, fetch-and-add and compare-and-swap reach the other ranks'
/// private memory (cross-memory attach), atomically where MPI says; after the free each
/// rank's vector holds what the others wrote; the shared-memory calls are errors.
fn created(w: &Communicator) {
    let (me, n) = (w.rank() as usize, w.size() as usize);
    let mut mine = vec![0u64; n + 2];
    // SAFETY: `mine` is neither moved nor freed until the window is freed below.
    let mut win = unsafe { Window::create(w, mine.as_mut_ptr().cast(), 8 * (n + 2)) }.unwrap();
    win.fence().unwrap();
    // Element `me` of every rank's vector: this rank's number.
    for r in 0..n as i32 {
        win.put(&[me as u64 * 10 + 1], r, 8 * me).unwrap();
    }
    win.fence().unwrap();
    let next = ((me + 1) % n) as i32;
    let mut got = vec![0u64; n];
    win.get(&mut got, next, 0).unwrap();
    assert_eq!(got, (0..n as u64).map(|r| r * 10 + 1).collect::<Vec<_>>());
    // Everyone adds into rank 0's element n, and takes tickets from element n + 1.
    let mut tickets = Vec::new();
    for _ in 0..40 {
        win.accumulate(&[3u64], 0, 8 * n, Op::Sum).unwrap();
        tickets.push(
            win.fetch_add(0, 8 * (n + 1), 1)
                .unwrap()
                .expect("a real target"),
        );
    }
    win.fence().unwrap();
    let mut seen: Vec<u64> = w
        .allgather(&tickets)
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..40 * n as u64).collect::<Vec<_>>());
    let won = win.compare_and_swap(0, 0, 1, 100 + me as u64).unwrap() == Some(1);
    win.fence().unwrap();
    assert_eq!(w.allgather(&won).unwrap().iter().filter(|&&x| x).count(), 1);
    assert_eq!(win.shared_query(0).unwrap_err().class(), ErrorClass::Win);
    assert_eq!(
        win.atomics::<AtomicU32>(0, 0, 1).unwrap_err().class(),
        ErrorClass::Win
    );
    let e = win.put(&[0u64; 2], next, 8 * (n + 1)).unwrap_err();
    assert_eq!(e.class(), ErrorClass::RmaRange, "{e}");
    win.free().unwrap();
    // Element 0 of rank 0 was swapped by the winner of the compare-and-swap.
    let want: Vec<u64> = (0..n as u64).map(|r| r * 10 + 1).collect();
    assert_eq!(mine[1..n], want[1..]);
    if me == 0 {
        assert!((100..100 + n as u64).contains(&mine[0]), "{}", mine[0]);
        assert_eq!(mine[n], 3 * 40 * n as u64);
    } else {
        assert_eq!(mine[0], 1);
    }
}

#[test]
fn a_window_over_each_ranks_own_memory_at_1_rank() {
    run_ranks("a_window_over_each_ranks_own_memory_at_1_rank", 1, created);
}

#[test]
fn a_window_over_each_ranks_own_memory_at_4_ranks() {
    run_ranks("a_window_over_each_ranks_own_memory_at_4_ranks", 4, created);
}

/// Without cross-memory attach (`SHMPI_CMA=0`) `create` fails at every rank with a
/// message that says why and what to do instead, and nothing is left behind.
#[test]
fn a_window_over_own_memory_needs_cross_memory_attach() {
    common::run_ranks_with_env(
        "a_window_over_own_memory_needs_cross_memory_attach",
        3,
        &[("SHMPI_CMA", "0")],
        |w| {
            let mut v = vec![0u8; 8];
            // SAFETY: `v` outlives the (failed) window.
            let e = unsafe { Window::create(w, v.as_mut_ptr(), 8) }.unwrap_err();
            assert!(
                matches!(&e, Error::Usage(m) if m.contains("cross-memory attach") && m.contains("allocate_shared")),
                "{e}"
            );
            w.barrier().unwrap();
        },
    );
}

/// Every atomic needs an offset that is a multiple of its size, on a shared window and
/// on a created one alike: a misaligned `fetch_add`, `compare_and_swap` or `atomics` is
/// an `ErrorClass::Arg` error that names the offset, and changes no byte (parts of 24
/// bytes, so every offset tried is in range).
fn misaligned_atomics_are_arg_errors(win: &Window, w: &Communicator) {
    let (me, n) = (w.rank() as usize, w.size() as usize);
    let target = ((me + 1) % n) as i32;
    win.fence().unwrap();
    for offset in [1, 3, 4, 7, 9] {
        let e = win.fetch_add(target, offset, 1).unwrap_err();
        assert_eq!(e.class(), ErrorClass::Arg, "fetch_add at {offset}: {e}");
        assert!(e.to_string().contains(&format!("offset {offset}")), "{e}");
        let e = win.compare_and_swap(target, offset, 0, 1).unwrap_err();
        assert_eq!(
            e.class(),
            ErrorClass::Arg,
            "compare_and_swap at {offset}: {e}"
        );
    }
    // An aligned one still works, and sees none of the refused ones.
    assert_eq!(win.fetch_add(target, 8, 5).unwrap(), Some(0));
    win.fence().unwrap();
    let mut mine = [0u8; 16];
    win.read(&mut mine, 0).unwrap();
    assert_eq!(mine, [0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]);
    win.fence().unwrap();
}

#[test]
fn misaligned_atomics_are_errors_on_a_shared_window() {
    run_ranks("misaligned_atomics_are_errors_on_a_shared_window", 2, |w| {
        let win = Window::allocate_shared(w, 24).unwrap();
        misaligned_atomics_are_arg_errors(&win, w);
        let e = win.atomics::<AtomicU32>(0, 2, 1).unwrap_err();
        assert_eq!(e.class(), ErrorClass::Arg, "{e}");
    });
}

#[test]
fn misaligned_atomics_are_errors_on_a_created_window() {
    run_ranks(
        "misaligned_atomics_are_errors_on_a_created_window",
        2,
        |w| {
            let mut mine = vec![0u64; 3];
            // SAFETY: `mine` is neither moved nor freed until the window is dropped below.
            let win = unsafe { Window::create(w, mine.as_mut_ptr().cast(), 24) }.unwrap();
            misaligned_atomics_are_arg_errors(&win, w);
            drop(win);
        },
    );
}

/// `PROC_NULL` is a valid target of the RMA communication calls, with the effect of a
/// point-to-point call to it (MPI 4.1 §12.3): put, get, accumulate, fetch_add and
/// compare_and_swap do nothing and succeed (a get leaves its buffer untouched, the
/// atomics fetch nothing: `None`, where MPI leaves the result buffer unchanged);
/// `modify` has nothing to show its closure and fails naming `PROC_NULL`, as do the
/// calls that need a real rank (lock, unlock, flush, atomics); `shared_query` gives the lowest non-empty part
/// (§12.2.3); nothing is written anywhere.
fn proc_null_targets(win: &mut Window, w: &Communicator, shared: bool) {
    use shmpi::PROC_NULL;
    win.fence().unwrap();
    win.put(&[7u64, 7], PROC_NULL, 0).unwrap();
    win.put(&[7u8], PROC_NULL, usize::MAX).unwrap();
    let mut buf = [0x55u8; 16];
    win.get(&mut buf, PROC_NULL, 0).unwrap();
    assert_eq!(buf, [0x55; 16], "a get from PROC_NULL leaves the buffer");
    win.accumulate(&[1u64, 2], PROC_NULL, 0, Op::Sum).unwrap();
    let e = win
        .accumulate(&[1.0f64], PROC_NULL, 0, Op::BitAnd)
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Op, "a bad op is still an error: {e}");
    let named = |e: Error| {
        assert_eq!(e.class(), ErrorClass::Rank, "{e}");
        assert!(e.to_string().contains("PROC_NULL"), "{e}");
    };
    // No effect, nothing fetched: the caller's result stays as it was, as MPI's
    // result buffer does (checked below: no part changed).
    assert_eq!(win.fetch_add(PROC_NULL, 0, 1).unwrap(), None);
    assert_eq!(win.fetch_add(PROC_NULL, 3, u64::MAX).unwrap(), None);
    assert_eq!(win.compare_and_swap(PROC_NULL, 0, 0, 1).unwrap(), None);
    let mut result = 42u64;
    if let Some(old) = win.fetch_add(PROC_NULL, 8, 1).unwrap() {
        result = old;
    }
    assert_eq!(result, 42, "the result variable is left as it was");
    let mut called = false;
    named(
        win.modify(PROC_NULL, 0, 1, |_: &mut [u64]| called = true)
            .unwrap_err(),
    );
    assert!(
        !called,
        "modify at PROC_NULL has nothing to show its closure"
    );
    named(win.lock(LockKind::Exclusive, PROC_NULL).unwrap_err());
    named(win.unlock(PROC_NULL).unwrap_err());
    named(win.flush(PROC_NULL).unwrap_err());
    if shared {
        named(win.atomic_u64(PROC_NULL, 0).unwrap_err());
        // MPI 4.1 §12.2.3: the lowest rank whose part is not empty.
        assert_eq!(
            win.shared_query(PROC_NULL).unwrap(),
            win.shared_query(0).unwrap()
        );
    }
    win.fence().unwrap();
    for r in 0..w.size() {
        let mut part = [0xFFu8; 16];
        win.get(&mut part, r, 0).unwrap();
        assert_eq!(part, [0; 16], "rank {r}'s part after PROC_NULL calls");
    }
    win.free().unwrap();
    let e = win.put(&[1u8], PROC_NULL, 0).unwrap_err();
    assert_eq!(
        e.class(),
        ErrorClass::Win,
        "a freed window stays an error: {e}"
    );
    let e = win.fetch_add(PROC_NULL, 0, 1).unwrap_err();
    assert_eq!(e.class(), ErrorClass::Win, "also for the atomics: {e}");
}

#[test]
fn proc_null_is_a_no_op_target_on_a_shared_window() {
    run_ranks("proc_null_is_a_no_op_target_on_a_shared_window", 3, |w| {
        let mut win = Window::allocate_shared(w, 16).unwrap();
        proc_null_targets(&mut win, w, true);
    });
}

#[test]
fn proc_null_is_a_no_op_target_on_a_created_window() {
    run_ranks("proc_null_is_a_no_op_target_on_a_created_window", 3, |w| {
        let mut mine = vec![0u64; 2];
        // SAFETY: `mine` is neither moved nor freed until the window is freed.
        let mut win = unsafe { Window::create(w, mine.as_mut_ptr().cast(), 16) }.unwrap();
        proc_null_targets(&mut win, w, false);
    });
}

/// A call that takes a part's accumulate lock inside `modify` of the same part by the
/// same rank would wait for itself: it fails at once (well before `LOCK_TIMEOUT`) with
/// `Error::Usage` saying so, changes nothing, and the lock is free again once `modify`
/// returns; nesting over two different parts is fine.
fn reentrant_accumulates(win: &Window, w: &Communicator, created: bool) {
    let (me, n) = (w.rank() as usize, w.size() as usize);
    assert_eq!(n, 3, "the nesting below names ranks 0 to 2");
    let target = ((me + 1) % n) as i32;
    win.fence().unwrap();
    let t = std::time::Instant::now();
    let inner = win
        .modify(target, 0, 1, |_: &mut [u64]| {
            let mut errs = vec![
                win.accumulate(&[1u64], target, 8, Op::Sum).unwrap_err(),
                win.modify(target, 8, 1, |x: &mut [u64]| x[0] += 1)
                    .unwrap_err(),
            ];
            if created {
                errs.push(win.fetch_add(target, 8, 1).unwrap_err());
                errs.push(win.compare_and_swap(target, 8, 0, 1).unwrap_err());
            }
            errs
        })
        .unwrap();
    assert!(
        t.elapsed() < shmpi::LOCK_TIMEOUT / 10,
        "took {:?}",
        t.elapsed()
    );
    for e in inner {
        assert!(
            e.class() == ErrorClass::RmaSync && e.to_string().contains("holds that lock itself"),
            "{e}"
        );
    }
    win.accumulate(&[2u64], target, 8, Op::Sum).unwrap();
    // One rank only: ranks nesting over each other's parts in a cycle would deadlock.
    if me == 0 {
        win.modify(1, 0, 1, |_: &mut [u64]| {
            win.accumulate(&[1u64], 2, 0, Op::Sum)
        })
        .unwrap()
        .unwrap();
    }
    win.fence().unwrap();
    let mut mine = [0u64; 2];
    win.read(&mut mine, 0).unwrap();
    assert_eq!(mine, [u64::from(me == 2), 2], "rank {me}'s part");
    win.fence().unwrap();
}

#[test]
fn an_accumulate_inside_modify_of_the_same_part_fails_at_once() {
    run_ranks(
        "an_accumulate_inside_modify_of_the_same_part_fails_at_once",
        3,
        |w| {
            let win = Window::allocate_shared(w, 16).unwrap();
            reentrant_accumulates(&win, w, false);
        },
    );
}

#[test]
fn an_atomic_inside_modify_of_the_same_part_of_a_created_window_fails_at_once() {
    run_ranks(
        "an_atomic_inside_modify_of_the_same_part_of_a_created_window_fails_at_once",
        3,
        |w| {
            let mut mine = vec![0u64; 2];
            // SAFETY: `mine` is neither moved nor freed until the window is dropped.
            let win = unsafe { Window::create(w, mine.as_mut_ptr().cast(), 16) }.unwrap();
            reentrant_accumulates(&win, w, true);
            drop(win);
        },
    );
}

/// Asserts `r` is the error of a collective mismatch of different calls (MPI's
/// `ERR_OTHER`) naming every call in `calls`.
fn assert_mismatch(r: shmpi::Result<()>, calls: &[&str], what: &str) {
    match r {
        Err(e)
            if e.class() == ErrorClass::Other
                && calls.iter().all(|c| e.to_string().contains(c)) => {}
        other => panic!("{what}: want a mismatch naming {calls:?}, got {other:?}"),
    }
}

/// A window's fence is a collective call of its own (`MPI_Win_fence`): a rank that
/// fences while the others call `barrier` fails on every rank, with an error that
/// names both calls, instead of the fence matching the barrier.
#[test]
fn a_fence_against_a_barrier_fails_on_every_rank() {
    run_ranks("a_fence_against_a_barrier_fails_on_every_rank", 3, |w| {
        let win = Window::allocate_shared(w, 8).unwrap();
        let r = if w.rank() == 0 {
            win.fence()
        } else {
            w.barrier()
        };
        assert_mismatch(r, &["Window::fence", "barrier"], "fence vs barrier");
    });
}

/// A window's free is a collective call of its own (`MPI_Win_free`): a rank that frees
/// while the others fence fails on every rank, naming both calls.
#[test]
fn a_free_against_a_fence_fails_on_every_rank() {
    run_ranks("a_free_against_a_fence_fails_on_every_rank", 3, |w| {
        let mut win = Window::allocate_shared(w, 8).unwrap();
        let r = if w.rank() == 0 {
            win.free()
        } else {
            win.fence()
        };
        assert_mismatch(r, &["Window::free", "Window::fence"], "free vs fence");
    });
}

/// A free refused on one rank (it holds a lock) fails every rank's free, not only its
/// own: the other ranks must not go on as if the window were gone everywhere.
#[test]
fn a_refused_free_fails_every_ranks_free() {
    run_ranks("a_refused_free_fails_every_ranks_free", 3, |w| {
        let mut win = Window::allocate_shared(w, 8).unwrap();
        if w.rank() == 1 {
            win.lock(LockKind::Shared, 0).unwrap();
        }
        let e = win.free().unwrap_err();
        let m = e.to_string();
        // A free inside a passive-target epoch is a synchronization error (MPI's
        // ERR_RMA_SYNC) on every rank, naming the refused call.
        assert_eq!(e.class(), ErrorClass::RmaSync, "{m}");
        assert!(m.contains("Window::free"), "{m}");
        if w.rank() == 1 {
            assert!(m.contains("holds a lock"), "{m}");
        }
    });
}

/// Locks out of order are MPI's `ERR_RMA_SYNC` (MPI 4.1 §12.5: a lock of a part this
/// rank holds, an unlock of one it has not locked, `lock_all` while holding a lock,
/// `unlock_all` without `lock_all`), fail at once, and leave the locks as they were.
#[test]
fn locks_out_of_order_are_rma_sync_errors() {
    run_ranks("locks_out_of_order_are_rma_sync_errors", 3, |w| {
        let win = Window::allocate_shared(w, 8).unwrap();
        let peer = (w.rank() + 1) % w.size();
        let sync = |e: Error, what: &str| {
            assert_eq!(e.class(), ErrorClass::RmaSync, "{what}: {e}");
        };
        sync(win.unlock(peer).unwrap_err(), "unlock without lock");
        sync(win.unlock_all().unwrap_err(), "unlock_all without lock_all");
        win.lock(LockKind::Shared, peer).unwrap();
        sync(
            win.lock(LockKind::Shared, peer).unwrap_err(),
            "lock of a held part",
        );
        sync(win.lock_all().unwrap_err(), "lock_all while holding a lock");
        win.unlock(peer).unwrap();
        win.lock_all().unwrap();
        sync(win.unlock(peer).unwrap_err(), "unlock of a lock_all's part");
        win.unlock_all().unwrap();
        w.barrier().unwrap();
    });
}

/// A refused free frees nothing on any rank (MPI 4.1 §12.2.5: a rank must end its
/// passive-target epochs with an unlock before `MPI_Win_free`): with rank 1 holding a
/// lock, every rank's free fails, the one that refused naming its lock and the others
/// naming rank 1; once it unlocks, every rank still puts, fences, gets and frees, and
/// the communicator still works.
#[test]
fn a_refused_free_leaves_the_window_usable_on_every_rank() {
    run_ranks(
        "a_refused_free_leaves_the_window_usable_on_every_rank",
        4,
        |w| {
            let (me, n) = (w.rank(), w.size());
            let mut win = Window::allocate_shared(w, 16).unwrap();
            if me == 1 {
                win.lock(LockKind::Exclusive, 0).unwrap();
            }
            let e = win.free().unwrap_err();
            let m = e.to_string();
            // A free inside a passive-target epoch is MPI's ERR_RMA_SYNC on every rank.
            assert_eq!(e.class(), ErrorClass::RmaSync, "rank {me}: {m}");
            assert!(m.contains("Window::free"), "rank {me}: {m}");
            if me == 1 {
                assert!(m.contains("holds a lock"), "{m}");
                win.unlock(0).unwrap();
            } else {
                assert!(m.contains("rank 1"), "rank {me}: {m}");
            }
            let next = (me + 1) % n;
            win.put(&[me as u64 + 100, 7], next, 0).unwrap();
            win.fence().unwrap();
            let mut got = [0u64; 2];
            win.get(&mut got, me, 0).unwrap();
            assert_eq!(
                got,
                [((me + n - 1) % n) as u64 + 100, 7],
                "rank {me}'s part"
            );
            win.free().unwrap();
            assert_eq!(
                win.put(&[1u8], 0, 0).unwrap_err().class(),
                ErrorClass::Win,
                "freed at last"
            );
            assert_eq!(w.allreduce(&1, |a, b| a + b).unwrap(), n);
        },
    );
}

/// MPI 4.1 §12.2.3 (`MPI_Win_shared_query`): with `MPI_PROC_NULL` the call returns the
/// part of the lowest rank whose part has a non-zero size, and size 0 when every part
/// is empty; `shared_part` follows the same rule.
#[test]
fn shared_query_of_proc_null_gives_the_lowest_non_empty_part() {
    run_ranks(
        "shared_query_of_proc_null_gives_the_lowest_non_empty_part",
        5,
        |w| {
            let size_of = |r: usize| [0, 0, 24, 0, 8][r];
            let me = w.rank() as usize;
            let win = Window::allocate_shared(w, size_of(me)).unwrap();
            if me == 2 {
                win.write(&[5u64, 6, 7], 0).unwrap();
            }
            win.fence().unwrap();
            let (size, ptr) = win.shared_query(shmpi::PROC_NULL).unwrap();
            assert_eq!((size, ptr), win.shared_query(2).unwrap(), "rank {me}");
            let part = win.shared_part(shmpi::PROC_NULL).unwrap();
            assert_eq!((part.len(), part.as_ptr()), (24, ptr.as_ptr()));
            let mut got = [0u64; 3];
            win.get(&mut got, 2, 0).unwrap();
            assert_eq!(got, [5, 6, 7]);
            // Every part empty: size 0.
            let empty = Window::allocate_shared(w, 0).unwrap();
            assert_eq!(empty.shared_query(shmpi::PROC_NULL).unwrap().0, 0);
            assert!(empty.shared_part(shmpi::PROC_NULL).unwrap().is_empty());
        },
    );
}

/// MPI 4.1 §12.2.3: `MPI_Win_allocate_shared` takes an intracommunicator. On an
/// intercommunicator the call fails on every rank with an error that names the call
/// itself (not a collective it makes inside) and says why.
#[test]
fn allocate_shared_on_an_intercommunicator_names_itself() {
    run_ranks(
        "allocate_shared_on_an_intercommunicator_names_itself",
        3,
        |w| {
            let (me, n) = (w.rank(), w.size());
            let low = me < n / 2;
            let half = w.split(i32::from(low), 0).unwrap().unwrap();
            let inter = half
                .intercomm_create(0, w, if low { n / 2 } else { 0 }, 5)
                .unwrap();
            let e = Window::allocate_shared(&inter, 8).unwrap_err();
            assert_eq!(e.class(), ErrorClass::Comm, "{e}");
            let m = e.to_string();
            assert!(
                m.contains("Window::allocate_shared") && m.contains("intracommunicator"),
                "{m}"
            );
            assert!(!m.contains("allgather"), "{m}");
            // SAFETY: a window of no bytes exposes no memory.
            let e = unsafe { Window::create(&inter, std::ptr::null_mut(), 0) }.unwrap_err();
            assert!(e.to_string().contains("Window::create"), "{e}");
            // A window over the half still works.
            let win = Window::allocate_shared(&half, 8).unwrap();
            win.fence().unwrap();
        },
    );
}
