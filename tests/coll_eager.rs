//! Runs of identical small broadcasts (and of object broadcasts of any size) through
//! the real launcher: after the first call of a run (which checks every member, as
//! every collective does), the root writes the data once into its communicator's ring
//! of small broadcasts (up to 48 bytes) or sends it as messages, and returns without
//! waiting for the others (README, "Collectives"). MPI allows a broadcast's root to
//! return before the others have started; these tests hold shmpi to what that must
//! not change: every rank gets every value, the messages never reach the program's
//! receives, and a rank that calls something else in the middle of a run gets a
//! mismatch error, as the root does later, with no rank hanging.

mod common;

use common::{flush_slots, run_ranks, run_ranks_with_env};
use shmpi::{ANY_SOURCE, ANY_TAG, Communicator};

/// The value of element `k` broadcast at iteration `i` of phase `p`.
fn val(p: usize, i: usize, k: usize) -> u64 {
    (p as u64) << 48 | (i as u64) << 20 | k as u64
}

/// Phases of broadcasts on `c`, each `iters` calls of one (root, count, type), with
/// every rank in turn falling behind (a short sleep) now and then, so that the root
/// runs ahead and the others catch up; between phases an allreduce of what each rank
/// received, against what it should have.
fn phases(c: &Communicator, iters: usize) {
    let n = c.size() as usize;
    let me = c.rank() as usize;
    // Up to 128 u64s (1 KiB) goes eagerly; 129 does not; 0 is a message of no bytes.
    let counts = [1usize, 0, 3, 128, 129, 1];
    for (p, &count) in counts.iter().enumerate() {
        let root = p % n;
        let mut bad = 0u64;
        for i in 0..iters {
            if i % 37 == 0 && (i / 37) % n == me {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let mut b: Vec<u64> = if me == root {
                (0..count).map(|k| val(p, i, k)).collect()
            } else {
                vec![u64::MAX; count]
            };
            c.bcast_into(&mut b, root as i32)
                .unwrap_or_else(|e| panic!("rank {me}, phase {p}, call {i}: {e}"));
            bad += (0..count).filter(|&k| b[k] != val(p, i, k)).count() as u64;
        }
        // Bytes, not words, in the same run: another element size is another call.
        let mut bytes = vec![0u8; 5];
        if me == root {
            bytes.copy_from_slice(b"phase");
        }
        c.bcast_into(&mut bytes, root as i32).unwrap();
        bad += u64::from(&bytes != b"phase");
        let total = c.allreduce(&bad, |a, b| a + b).unwrap();
        assert_eq!(
            total, 0,
            "phase {p} (count {count}, root {root}): wrong values"
        );
    }
}

/// Runs of broadcasts of bytes whose length only the root knows (`bcast` through
/// `sent`, which gets the root's bytes or `None` and the root, and returns what it
/// got), each of `sizes` a run of its own with its own root, then all sizes in one
/// run; every rank falls behind now and then.
fn length_phases(
    c: &Communicator,
    iters: usize,
    sizes: &[usize],
    bcast: impl Fn(Option<Vec<u8>>, i32) -> Vec<u8>,
) {
    let n = c.size() as usize;
    let me = c.rank() as usize;
    let value = |p: usize, i: usize, len: usize| -> Vec<u8> {
        (0..len).map(|k| (p * 31 + i * 7 + k) as u8).collect()
    };
    for (p, &len) in sizes.iter().enumerate() {
        let root = (p + 1) % n;
        for i in 0..iters {
            if i % 29 == 0 && (i / 29) % n == me {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let got = bcast((me == root).then(|| value(p, i, len)), root as i32);
            assert_eq!(got, value(p, i, len), "rank {me}, size {len}, call {i}");
        }
    }
    for i in 0..iters {
        let len = sizes[i % sizes.len()];
        let got = bcast((me == 0).then(|| value(9, i, len)), 0);
        assert_eq!(got, value(9, i, len), "rank {me}, mixed sizes, call {i}");
    }
    c.barrier().unwrap();
}

/// Runs of object broadcasts (`bcast` of a `Vec<u8>`): archives that travel in the
/// message, and larger ones (over 1 KiB, and over a data slot's half) that follow
/// through the root's slot.
fn object_phases(c: &Communicator, iters: usize) {
    length_phases(c, iters, &[0, 10, 1000, 1100, 300_000], |v, r| {
        c.bcast(v, r).unwrap()
    });
}

/// Runs of byte broadcasts (`bcast_bytes`, what mpi4py's lowercase `bcast` of a
/// pickle is): data that fits a cell of the ring of small broadcasts (up to 48
/// bytes), data that travels in the message, and data that follows through the root's
/// slot.
fn byte_phases(c: &Communicator, iters: usize) {
    length_phases(
        c,
        iters,
        &[0, 1, 47, 48, 49, 1024, 1025, 200_000],
        |v, r| c.bcast_bytes(v, r).unwrap(),
    );
}

fn runs_of_broadcasts(w: &Communicator) {
    phases(w, 300);
    object_phases(w, 150);
    byte_phases(w, 150);
    // Two communicators with runs of their own, alternating call by call.
    let d = w.dup().unwrap();
    let n = w.size();
    let me = w.rank();
    for i in 0..200u64 {
        let mut a = [if me == 0 { i } else { 0 }];
        let mut b = [if me == n - 1 { !i } else { 0 }, 7];
        w.bcast_into(&mut a, 0).unwrap();
        d.bcast_into(&mut b, n - 1).unwrap();
        assert_eq!((a[0], b[0]), (i, !i), "rank {me}, call {i}");
    }
    drop(d);
    w.barrier().unwrap();
    flush_slots(w);
    assert_eq!(w.communicators_in_use(), 0);
}

#[test]
fn runs_of_broadcasts_deliver_every_value_at_2_ranks() {
    run_ranks(
        "runs_of_broadcasts_deliver_every_value_at_2_ranks",
        2,
        runs_of_broadcasts,
    );
}

#[test]
fn runs_of_broadcasts_deliver_every_value_at_3_ranks() {
    run_ranks(
        "runs_of_broadcasts_deliver_every_value_at_3_ranks",
        3,
        runs_of_broadcasts,
    );
}

#[test]
fn runs_of_broadcasts_deliver_every_value_at_8_ranks() {
    run_ranks(
        "runs_of_broadcasts_deliver_every_value_at_8_ranks",
        8,
        runs_of_broadcasts,
    );
}

/// The root of a run of broadcasts does not wait for the others: after one matched
/// call, it makes 60 more and only then sends rank 1 the message rank 1 waits for
/// before its own 60. With broadcasts that wait for every member this deadlocks (the
/// launcher reports it and the test fails). MPI lets a program rely on neither; this
/// one shows the root runs ahead by 60 calls (it may by 64 before it checks).
#[test]
fn the_root_of_a_run_of_broadcasts_runs_ahead_of_the_others() {
    run_ranks(
        "the_root_of_a_run_of_broadcasts_runs_ahead_of_the_others",
        3,
        root_runs_ahead,
    );
}

/// The same with point-to-point rings of 4 KiB (the default at 256 ranks), too small
/// for a run's messages: small broadcasts still run ahead, through the communicator's
/// ring of small broadcasts.
#[test]
fn small_broadcasts_run_ahead_with_the_smallest_rings() {
    run_ranks_with_env(
        "small_broadcasts_run_ahead_with_the_smallest_rings",
        3,
        &[("SHMPI_RING_BYTES", "4096")],
        root_runs_ahead,
    );
}

fn root_runs_ahead(w: &Communicator) {
    let me = w.rank();
    let mut b = [0u32; 2];
    w.bcast_into(&mut b, 0).unwrap();
    if me == 1 {
        let (go, _) = w.recv_vec::<u8>(0, 9).unwrap();
        assert_eq!(go, b"go");
    }
    for i in 0..60u32 {
        let mut b = if me == 0 { [i, i + 1] } else { [0; 2] };
        w.bcast_into(&mut b, 0).unwrap();
        assert_eq!(b, [i, i + 1]);
    }
    if me == 0 {
        w.send_slice(b"go", 1, 9).unwrap();
    }
    w.barrier().unwrap();
}

/// The messages of broadcasts travel in a context of their own: a receive from any
/// source with any tag, posted before a run of broadcasts or made after it, gets the
/// program's messages, sent before, during and after the run, never a broadcast's.
#[test]
fn receives_from_any_source_with_any_tag_never_take_a_broadcast() {
    run_ranks(
        "receives_from_any_source_with_any_tag_never_take_a_broadcast",
        3,
        |w| {
            let me = w.rank();
            let early = if me == 1 {
                Some(w.irecv_buf(vec![0u64; 1], ANY_SOURCE, ANY_TAG).unwrap())
            } else {
                None
            };
            if me == 2 {
                w.send_slice(&[22u64], 1, 7).unwrap();
            }
            for i in 0..50u64 {
                let mut b = [if me == 0 { i } else { 0 }];
                w.bcast_into(&mut b, 0).unwrap();
                assert_eq!(b[0], i);
                if me == 0 && i == 25 {
                    w.send_slice(&[11u64], 1, 5).unwrap();
                }
            }
            if me == 1 {
                let (v, st) = early.unwrap().wait().unwrap();
                let (v2, st2) = w.recv_vec::<u64>(ANY_SOURCE, ANY_TAG).unwrap();
                let mut got = [(v, st.source(), st.tag()), (v2, st2.source(), st2.tag())];
                got.sort_by_key(|g| g.1);
                assert_eq!(got, [(vec![11], 0, 5), (vec![22], 2, 7)]);
            }
            w.barrier().unwrap();
        },
    );
}

/// Makes calls `0..calls` (`call(i)`) on a fresh dup of `w` until one fails: the failing
/// call's index and error, or `Ok` if none did.
fn until_error(
    w: &Communicator,
    calls: usize,
    call: impl Fn(&Communicator, usize) -> shmpi::Result<()>,
) -> Result<(), (usize, String)> {
    let c = w.dup().unwrap();
    (0..calls).try_for_each(|i| call(&c, i).map_err(|e| (i, e.to_string())))
}

/// Whether a run broken by rank `odd`'s barrier at call 10 ended as it must on this
/// rank: the odd rank at call 10, naming both calls; the root (rank 0), which did not
/// wait, later, naming the mismatch or the failed rank; the others later still.
fn broken_run_ok(
    me: usize,
    odd: usize,
    outcome: &Result<(), (usize, String)>,
    bcast: &str,
) -> bool {
    match outcome {
        Err((i, m)) if me == odd => {
            *i == 10 && m.contains("called barrier(") && m.contains(&format!("called {bcast}("))
        }
        Err((i, m)) if me == 0 => *i > 10 && (m.contains("mismatched") || m.contains("failed")),
        Err((i, _)) => *i > 10,
        Ok(()) => false,
    }
}

/// One rank calls a barrier in the middle of a run of broadcasts (at call 10 of 300),
/// on a fresh communicator per case, each rank in turn the odd one. It fails at once,
/// naming both calls; the root, which did not wait, fails within the next checks of its
/// run, and the other members when the root stops: no rank completes the run, none
/// hangs. The same for a run of object broadcasts; and in a third form the root ends
/// the run early with an allreduce, whose start reports the mismatch, naming both calls.
fn mismatch_in_a_run(w: &Communicator) {
    let n = w.size() as usize;
    let me = w.rank() as usize;
    let mut failures = vec![];
    for odd in 1..n {
        let barrier_at_10 =
            |c: &Communicator, i: usize| (me == odd && i == 10).then(|| c.barrier());
        let outcome = until_error(w, 300, |c, i| {
            barrier_at_10(c, i).unwrap_or_else(|| c.bcast_into(&mut [me as u64], 0))
        });
        if !broken_run_ok(me, odd, &outcome, "bcast_into") {
            failures.push(format!("run, rank {odd} odd: {outcome:?}"));
        }

        let outcome = until_error(w, 300, |c, i| {
            barrier_at_10(c, i)
                .unwrap_or_else(|| c.bcast((me == 0).then_some(i as u64), 0).map(|_: u64| ()))
        });
        if !broken_run_ok(me, odd, &outcome, "bcast") {
            failures.push(format!("object run, rank {odd} odd: {outcome:?}"));
        }

        // The root ends its run (20 calls) with an allreduce; the others' run is as
        // long, but for the odd rank's barrier at call 10.
        let outcome = until_error(w, 21, |c, i| {
            barrier_at_10(c, i).unwrap_or_else(|| {
                if i == 20 {
                    c.allreduce(&1u64, |a, b| a + b).map(|_| ())
                } else {
                    c.bcast_into(&mut [me as u64], 0)
                }
            })
        });
        let ok = match &outcome {
            Err((i, m)) if me == odd => *i == 10 && m.contains("called barrier("),
            Err((i, m)) if me == 0 => {
                *i == 20
                    && m.contains("called bcast_into(")
                    && m.contains("in an earlier call")
                    && m.contains("called barrier(")
            }
            Err((i, _)) => *i >= 10,
            Ok(()) => false,
        };
        if !ok {
            failures.push(format!("run then allreduce, rank {odd} odd: {outcome:?}"));
        }
    }
    flush_slots(w);
    for f in &failures {
        eprintln!("rank {me}: {f}");
    }
    assert!(
        failures.is_empty(),
        "rank {me}: {} cases failed",
        failures.len()
    );
    assert_eq!(w.communicators_in_use(), 0, "areas left taken");
}

/// Runs of scatters (`scatter_bytes`, what mpi4py's lowercase `scatter` of pickles is,
/// and object scatters), each size a run of its own with its own root, then all sizes
/// in one run; every rank falls behind now and then. After the first call of a run
/// the root sends each member its part as a message and returns without waiting:
/// parts of up to 1 KiB travel in the message, larger ones (past the message, past a
/// data slot's half in all) follow through the root's slot. Each rank's part differs,
/// so a part delivered to the wrong rank shows.
fn scatter_phases(c: &Communicator, iters: usize) {
    let n = c.size() as usize;
    let me = c.rank() as usize;
    let part = |p: usize, i: usize, r: usize, len: usize| -> Vec<u8> {
        (0..len + r)
            .map(|k| (p * 31 + i * 7 + r * 13 + k) as u8)
            .collect()
    };
    let sizes = [0usize, 1, 1000, 1030, 70_000];
    for (p, &len) in sizes.iter().enumerate() {
        let root = (p + 1) % n;
        for i in 0..iters {
            if i % 29 == 0 && (i / 29) % n == me {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let parts: Vec<Vec<u8>> = (0..n).map(|r| part(p, i, r, len)).collect();
            let got = if p % 2 == 0 {
                c.scatter_bytes((me == root).then_some(&parts[..]), root as i32)
            } else {
                c.scatter((me == root).then_some(&parts[..]), root as i32)
            };
            let got = got.unwrap_or_else(|e| panic!("rank {me}, size {len}, call {i}: {e}"));
            assert_eq!(got, parts[me], "rank {me}, size {len}, call {i}");
        }
    }
    for i in 0..iters {
        let len = sizes[i % sizes.len()];
        let parts: Vec<Vec<u8>> = (0..n).map(|r| part(9, i, r, len)).collect();
        let got = c.scatter_bytes((me == 0).then_some(&parts[..]), 0).unwrap();
        assert_eq!(got, parts[me], "rank {me}, mixed sizes, call {i}");
    }
    c.barrier().unwrap();
}

#[test]
fn runs_of_scatters_deliver_every_part() {
    run_ranks("runs_of_scatters_deliver_every_part", 4, |w| {
        scatter_phases(w, 100);
        flush_slots(w);
        assert_eq!(w.communicators_in_use(), 0);
    });
}

#[test]
fn runs_of_scatters_deliver_every_part_with_the_smallest_rings() {
    run_ranks_with_env(
        "runs_of_scatters_deliver_every_part_with_the_smallest_rings",
        3,
        &[("SHMPI_RING_BYTES", "4096")],
        |w| scatter_phases(w, 60),
    );
}

/// One rank calls a barrier in the middle of a run of scatters: it fails at once,
/// naming both calls; the root, which did not wait, fails within the next checks of
/// its run; the others when the root stops. No rank completes the run, none hangs.
#[test]
fn a_mismatch_in_a_run_of_scatters_fails_every_rank() {
    run_ranks("a_mismatch_in_a_run_of_scatters_fails_every_rank", 3, |w| {
        let n = w.size() as usize;
        let me = w.rank() as usize;
        let parts: Vec<Vec<u8>> = (0..n).map(|r| vec![r as u8; r]).collect();
        for odd in 1..n {
            let outcome = until_error(w, 300, |c, i| {
                if me == odd && i == 10 {
                    return c.barrier();
                }
                let got = c.scatter_bytes((me == 0).then_some(&parts[..]), 0)?;
                assert_eq!(got, parts[me]);
                Ok(())
            });
            assert!(
                broken_run_ok(me, odd, &outcome, "scatter"),
                "rank {me}, rank {odd} odd: {outcome:?}"
            );
        }
        flush_slots(w);
        assert_eq!(w.communicators_in_use(), 0, "areas left taken");
    });
}

#[test]
fn a_mismatch_in_a_run_of_broadcasts_fails_every_rank_at_2_ranks() {
    run_ranks(
        "a_mismatch_in_a_run_of_broadcasts_fails_every_rank_at_2_ranks",
        2,
        mismatch_in_a_run,
    );
}

#[test]
fn a_mismatch_in_a_run_of_broadcasts_fails_every_rank_at_5_ranks() {
    run_ranks(
        "a_mismatch_in_a_run_of_broadcasts_fails_every_rank_at_5_ranks",
        5,
        mismatch_in_a_run,
    );
}

/// A root that finishes its run and leaves (returns from the program) before the
/// others have started theirs: its messages outlive it, and every member gets every
/// value.
#[test]
fn a_root_that_leaves_after_its_run_loses_no_value() {
    run_ranks("a_root_that_leaves_after_its_run_loses_no_value", 4, |w| {
        let me = w.rank();
        let mut b = [0u64; 3];
        w.bcast_into(&mut b, 0).unwrap();
        if me != 0 {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        for i in 0..50u64 {
            let mut b = if me == 0 { [i, !i, 7] } else { [0; 3] };
            w.bcast_into(&mut b, 0).unwrap();
            assert_eq!(b, [i, !i, 7], "rank {me}, call {i}");
        }
    });
}

/// Small broadcasts on a communicator whose area has no ring of small broadcasts (the
/// pool's areas past the first 64), which go as messages, and on one whose area has
/// one, alternating call by call: every value arrives.
#[test]
fn small_broadcasts_deliver_every_value_on_every_communicator() {
    run_ranks(
        "small_broadcasts_deliver_every_value_on_every_communicator",
        3,
        |w| {
            let me = w.rank();
            let dups: Vec<Communicator> = (0..70).map(|_| w.dup().unwrap()).collect();
            assert!(w.communicators_in_use() >= 70);
            let (near, far) = (&dups[0], &dups[69]);
            phases(far, 200);
            byte_phases(far, 100);
            for i in 0..300u64 {
                let mut a = [if me == 0 { i } else { 0 }];
                let mut b = [if me == 2 { !i } else { 0 }, 5];
                near.bcast_into(&mut a, 0).unwrap();
                far.bcast_into(&mut b, 2).unwrap();
                assert_eq!((a[0], b), (i, [!i, 5]), "rank {me}, call {i}");
            }
            drop(dups);
            w.barrier().unwrap();
            flush_slots(w);
            assert_eq!(w.communicators_in_use(), 0);
        },
    );
}

/// A member that starts a long run of small broadcasts late (asleep for 200 ms): the
/// root runs ahead until the member has read what it would overwrite, and waits there;
/// every member gets every value.
#[test]
fn a_late_member_of_a_long_run_gets_every_value() {
    run_ranks("a_late_member_of_a_long_run_gets_every_value", 4, |w| {
        let me = w.rank();
        let mut b = [0u64; 2];
        w.bcast_into(&mut b, 1).unwrap();
        if me == 3 {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        for i in 0..2000u64 {
            let mut b = if me == 1 { [i, !i] } else { [0; 2] };
            w.bcast_into(&mut b, 1).unwrap();
            assert_eq!(b, [i, !i], "rank {me}, call {i}");
        }
        w.barrier().unwrap();
    });
}

/// `bcast_bytes` whose root passes no bytes: a usage error at the root, before
/// anything is published (the others, which then wait for it, are not run here).
#[test]
fn a_byte_broadcast_without_bytes_at_the_root_is_an_error() {
    run_ranks(
        "a_byte_broadcast_without_bytes_at_the_root_is_an_error",
        1,
        |w| {
            let e = w.bcast_bytes(None, 0).unwrap_err();
            assert!(
                matches!(&e, shmpi::Error::Usage(m) if m.contains("must pass Some")),
                "{e}"
            );
            assert!(matches!(
                w.bcast_bytes(Some(vec![1]), 1),
                Err(shmpi::Error::InvalidRoot { root: 1, size: 1 })
            ));
        },
    );
}
