//! Loans (zero-copy messages) between real processes: the rules of `src/loan.rs`'s
//! module doc, each from its statement: a loan is read by its one receiver as sent,
//! matching/wildcards/order are those of every other message, a loan dropped unsent
//! returns to the pool, the pool is bounded with an error instead of a crash, and a
//! rank that leaves holding a loan (or without receiving one) costs its owner nothing.

mod common;

use common::{assert_success, is_child, launch_self_env, run_ranks};
use shmpi::{ANY_SOURCE, ANY_TAG, Communicator, Error};

/// Bytes of each rank's loan pool at `n` ranks (the documented rule: 256 MiB over
/// all ranks, a power of two, 1..=128 MiB each).
fn pool_bytes(n: usize) -> usize {
    let per = (256usize << 20) / n;
    (1usize << (usize::BITS - 1 - per.leading_zeros())).clamp(1 << 20, 128 << 20)
}

#[test]
fn a_loan_arrives_as_written_and_its_view_reads_the_same_bytes() {
    run_ranks(
        "a_loan_arrives_as_written_and_its_view_reads_the_same_bytes",
        2,
        |w| {
            for round in 0..50u64 {
                let n = 1 + (round as usize * 7919) % 100_000;
                if w.rank() == 0 {
                    let mut l = w.loan_slice::<u64>(n).unwrap();
                    for (i, x) in l.iter_mut().enumerate() {
                        *x = round << 32 | i as u64;
                    }
                    w.send_loan(l, 1, 9).unwrap();
                } else {
                    let (v, st) = w.recv_loan::<u64>(0, 9).unwrap();
                    assert_eq!((st.source(), st.tag(), st.count::<u64>()), (0, 9, Some(n)));
                    assert!(
                        v.iter()
                            .enumerate()
                            .all(|(i, &x)| x == round << 32 | i as u64)
                    );
                }
            }
        },
    );
}

#[test]
fn loans_received_by_wildcards_keep_each_senders_order_among_other_messages() {
    run_ranks(
        "loans_received_by_wildcards_keep_each_senders_order_among_other_messages",
        4,
        |w| {
            let me = w.rank();
            if me != 0 {
                for k in 0..6u32 {
                    if k % 2 == 0 {
                        let mut l = w.loan_slice::<u32>(3).unwrap();
                        l.copy_from_slice(&[me as u32, k, 0xfeed]);
                        w.send_loan(l, 0, k as i32).unwrap();
                    } else {
                        w.send_slice(&[me as u32, k, 0xbeef], 0, k as i32).unwrap();
                    }
                }
                return;
            }
            let mut next = [0u32; 4];
            for _ in 0..18 {
                // A loan is not a slice: the receive fails and the message stays queued.
                let mut buf = [0u32; 3];
                let st = match w.recv_into(&mut buf, ANY_SOURCE, ANY_TAG) {
                    Ok(st) => st,
                    Err(Error::TypeMismatch { .. }) => {
                        let (v, st) = w.recv_loan::<u32>(ANY_SOURCE, ANY_TAG).unwrap();
                        buf.copy_from_slice(&v);
                        assert_eq!(buf[2], 0xfeed, "a loan");
                        st
                    }
                    Err(e) => panic!("{e}"),
                };
                let src = st.source() as usize;
                assert_eq!(buf[0] as usize, src);
                assert_eq!(buf[1], next[src], "rank {src}'s messages in order");
                assert_eq!(st.tag(), buf[1] as i32);
                assert_eq!(buf[2], if buf[1] % 2 == 0 { 0xfeed } else { 0xbeef });
                next[src] += 1;
            }
            assert_eq!(next, [0, 6, 6, 6]);
            // A loan is not an object of the user's types either.
            let mut l = w.loan_slice::<u8>(1).unwrap();
            l[0] = 1;
            w.send_loan(l, 0, 1).unwrap();
            match w.recv::<u8>(0, 1) {
                Err(Error::TypeMismatch { sent, .. }) => assert!(sent.contains("loan"), "{sent}"),
                other => panic!("expected a type mismatch, got {other:?}"),
            }
            // Nor a vector of unknown length, and the error says what it is.
            match w.recv_vec::<u8>(0, 1) {
                Err(Error::TypeMismatch { sent, .. }) => assert!(sent.contains("loan"), "{sent}"),
                other => panic!("expected a type mismatch, got {other:?}"),
            }
            assert_eq!(w.recv_loan::<u8>(0, 1).unwrap().0[0], 1);
        },
    );
}

#[test]
fn loans_dropped_unsent_return_to_the_pool_and_a_full_pool_is_an_error() {
    run_ranks(
        "loans_dropped_unsent_return_to_the_pool_and_a_full_pool_is_an_error",
        2,
        |w| {
            let pool = pool_bytes(2);
            let quarter = pool / 4 - 4096;
            // Many times the pool's size, each loan dropped unsent.
            for i in 0..40 {
                let mut l = w.loan_slice::<u8>(quarter).unwrap();
                l[i] = 1;
            }
            // Hold the whole pool unsent: the next loan cannot ever fit.
            let held: Vec<_> = (0..4)
                .map(|_| w.loan_slice::<u8>(quarter).unwrap())
                .collect();
            match w.loan_slice::<u8>(quarter) {
                Err(Error::Usage(m)) => assert!(m.contains("not sent"), "{m}"),
                other => panic!("expected a full-pool error, got {other:?}"),
            }
            assert!(matches!(w.loan_slice::<u8>(pool + 1), Err(Error::Usage(_))));
            drop(held);
            let l = w.loan_slice::<u8>(quarter).unwrap();
            // Sending to PROC_NULL gives it back as well.
            w.send_loan(l, shmpi::PROC_NULL, 0).unwrap();
            // A receive from PROC_NULL completes at once with nothing (MPI 4.1 §3.11):
            // an empty view; an object has no value to view, and says so.
            let (v, st) = w.recv_loan::<u64>(shmpi::PROC_NULL, 0).unwrap();
            assert!(
                v.is_empty() && st.source() == shmpi::PROC_NULL && st.count::<u64>() == Some(0)
            );
            match w.recv_loan_object::<Frame>(shmpi::PROC_NULL, 0) {
                Err(e) => assert!(e.to_string().contains("PROC_NULL"), "{e}"),
                Ok(_) => panic!("an object from PROC_NULL"),
            }
            assert!(w.recv_loan::<u64>(shmpi::PROC_NULL, -5).is_err());
            for _ in 0..8 {
                drop(w.loan_slice::<u8>(quarter).unwrap());
            }
            // A receive of the wrong element size gives the loan back too.
            let me = w.rank();
            let l = w.loan_slice::<u8>(3).unwrap();
            w.send_loan(l, me, 5).unwrap();
            assert!(matches!(
                w.recv_loan::<u16>(me, 5),
                Err(Error::ElementSize { .. })
            ));
            for _ in 0..8 {
                drop(w.loan_slice::<u8>(quarter).unwrap());
            }
        },
    );
}

/// Sends that fill the pool wait for the receiver to give loans back, and go on.
#[test]
fn a_sender_waits_for_its_receivers_to_give_loans_back() {
    run_ranks(
        "a_sender_waits_for_its_receivers_to_give_loans_back",
        2,
        |w| {
            let third = pool_bytes(2) / 3;
            for k in 0..12u8 {
                if w.rank() == 0 {
                    let mut l = w.loan_slice::<u8>(third).unwrap();
                    l[0] = k;
                    w.send_loan(l, 1, 0).unwrap();
                } else {
                    let (v, _) = w.recv_loan::<u8>(0, 0).unwrap();
                    assert_eq!(v[0], k);
                }
            }
        },
    );
}

fn leave_without_cleanup() -> ! {
    // No destructor runs, as when the process is killed: the loan is never given back
    // by this rank.
    std::process::exit(0)
}

/// A rank that leaves holding a received loan, and one that leaves without receiving
/// the loan sent to it, cost the owner nothing: the owner takes both blocks back.
#[test]
fn loans_held_by_ranks_that_leave_come_back_to_their_owner() {
    run_ranks(
        "loans_held_by_ranks_that_leave_come_back_to_their_owner",
        3,
        |w: &Communicator| {
            let half = pool_bytes(3) / 2 - 4096;
            match w.rank() {
                0 => {
                    let l = w.loan_slice::<u8>(half).unwrap();
                    w.send_loan(l, 1, 0).unwrap();
                    let l = w.loan_slice::<u8>(half).unwrap();
                    w.send_loan(l, 2, 0).unwrap();
                    w.barrier().unwrap();
                    // Both blocks are out; these loans fit only once both come back, which
                    // they do when ranks 1 and 2 have left.
                    for _ in 0..4 {
                        drop(w.loan_slice::<u8>(half).unwrap());
                    }
                }
                1 => {
                    let (view, _) = w.recv_loan::<u8>(0, 0).unwrap();
                    w.barrier().unwrap();
                    std::mem::forget(view);
                    leave_without_cleanup();
                }
                _ => {
                    w.barrier().unwrap();
                    leave_without_cleanup();
                }
            }
        },
    );
}

/// A rank that finalizes while it still holds a received loan keeps reading the bytes
/// that were sent: the view borrows them, so its owner must not reuse the block until
/// the view is dropped or the process ends, not as soon as the rank has left (rank 0
/// loans again once it sees rank 1 gone; rank 1 reads its view after that, told by a
/// file, since it can no longer receive).
#[test]
fn a_view_held_past_its_ranks_finalize_keeps_its_bytes() {
    const NAME: &str = "a_view_held_past_its_ranks_finalize_keeps_its_bytes";
    const MARK: &str = "SHMPI_TEST_LOAN_MARK";
    if is_child(NAME) {
        let mark = std::path::PathBuf::from(std::env::var(MARK).unwrap());
        let u = shmpi::init().unwrap();
        let w = u.world();
        let len = pool_bytes(2) / 8;
        if w.rank() == 0 {
            let mut l = w.loan_slice::<u8>(len).unwrap();
            l.fill(0xaa);
            w.send_loan(l, 1, 0).unwrap();
            let e = w.recv::<u8>(1, 1).unwrap_err();
            assert!(matches!(e, Error::PeerFailed { rank: 1, .. }), "{e}");
            for _ in 0..3 {
                w.loan_slice::<u8>(len).unwrap().fill(0xbb);
            }
            std::fs::write(&mark, b"done").unwrap();
        } else {
            let (view, _) = w.recv_loan::<u8>(0, 0).unwrap();
            let bytes: &[u8] = &view;
            drop(w);
            drop(u);
            assert!(shmpi::finalized());
            let start = std::time::Instant::now();
            while !mark.exists() {
                assert!(
                    start.elapsed().as_secs() < 30,
                    "rank 0 never wrote {mark:?}"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let changed = bytes.iter().filter(|&&b| b != 0xaa).count();
            assert_eq!(
                changed, 0,
                "{changed} bytes of the view changed after finalize"
            );
        }
        return;
    }
    let mark = std::env::temp_dir().join(format!("shmpi-{NAME}-{}", std::process::id()));
    let _ = std::fs::remove_file(&mark);
    let out = launch_self_env(NAME, 2, &[], &[(MARK, mark.to_str().unwrap())]);
    let _ = std::fs::remove_file(&mark);
    assert_success(&out, NAME);
}

/// An object of the kind a producer hands on: a header and a large body.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, PartialEq, Clone)]
struct Frame {
    number: u64,
    label: String,
    pixels: Vec<f32>,
}

fn frame(number: u64, n: usize) -> Frame {
    Frame {
        number,
        label: format!("frame {number}"),
        pixels: (0..n)
            .map(|i| (number * 1_000_003 + i as u64) as f32)
            .collect(),
    }
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, PartialEq)]
struct Other {
    number: u64,
}

/// Objects built in loans arrive as built, of every size up to a tenth of the pool,
/// read in place through their archive and deserialized.
#[test]
fn objects_built_in_loans_arrive_as_built_and_are_read_in_place() {
    run_ranks(
        "objects_built_in_loans_arrive_as_built_and_are_read_in_place",
        3,
        |w| {
            let sizes = [0usize, 1, 7, 1000, 65_536, pool_bytes(3) / 40];
            if w.rank() == 0 {
                for (k, &n) in sizes.iter().enumerate() {
                    for dest in [1, 2] {
                        let f = frame(k as u64 * 10 + dest as u64, n);
                        let loan = w.loan_object(&f).unwrap();
                        assert_eq!(loan.number, f.number, "the sender reads what it built");
                        assert_eq!(loan.pixels.len(), n);
                        w.send_loan_object(loan, dest, k as i32).unwrap();
                    }
                }
                let unit = w.loan_object(&()).unwrap();
                w.send_loan_object(unit, 1, 99).unwrap();
            } else {
                let me = w.rank() as u64;
                for (k, &n) in sizes.iter().enumerate() {
                    let (view, st) = w.recv_loan_object::<Frame>(0, k as i32).unwrap();
                    let want = frame(k as u64 * 10 + me, n);
                    assert_eq!((st.source(), st.tag()), (0, k as i32));
                    assert_eq!(st.count::<u8>(), Some(view.as_bytes().len()));
                    assert_eq!(view.number, want.number);
                    assert_eq!(view.label.as_str(), want.label);
                    assert!(view.pixels.iter().zip(&want.pixels).all(|(a, b)| *a == *b));
                    assert_eq!(view.deserialize().unwrap(), want);
                }
                if me == 1 {
                    let (unit, _) = w.recv_loan_object::<()>(0, 99).unwrap();
                    unit.deserialize().unwrap();
                }
            }
        },
    );
}

/// A loaned object is matched by type as any object is: a receive of another type, of
/// a plain object or of a slice loan fails with `TypeMismatch` and leaves it queued,
/// and wildcards keep each sender's order among loans and other messages.
#[test]
fn loaned_objects_keep_their_type_and_order_among_other_messages() {
    run_ranks(
        "loaned_objects_keep_their_type_and_order_among_other_messages",
        4,
        |w| {
            let me = w.rank();
            if me != 0 {
                for k in 0..6u64 {
                    let f = frame(me as u64 * 100 + k, 50 * k as usize);
                    match k % 3 {
                        0 => w
                            .send_loan_object(w.loan_object(&f).unwrap(), 0, 5)
                            .unwrap(),
                        1 => w.send(&f, 0, 5).unwrap(),
                        _ => {
                            let mut l = w.loan_slice::<u64>(1).unwrap();
                            l[0] = f.number;
                            w.send_loan(l, 0, 5).unwrap();
                        }
                    }
                }
                return;
            }
            let mut next = [0u64; 4];
            for _ in 0..18 {
                let st = w.probe(ANY_SOURCE, 5).unwrap();
                let src = st.source();
                let k = next[src as usize];
                let number = src as u64 * 100 + k;
                match k % 3 {
                    0 => {
                        let mismatch = |r: Result<(), Error>| match r {
                            Err(Error::TypeMismatch { expected, sent, .. }) => {
                                assert!(sent.contains("Frame"), "{sent} for {expected}");
                            }
                            other => panic!("expected a type mismatch, got {other:?}"),
                        };
                        mismatch(w.recv_loan_object::<Other>(src, 5).map(drop));
                        mismatch(w.recv::<Frame>(src, 5).map(drop));
                        mismatch(w.recv_loan::<u8>(src, 5).map(drop));
                        let (v, _) = w.recv_loan_object::<Frame>(src, 5).unwrap();
                        assert_eq!(v.deserialize().unwrap(), frame(number, 50 * k as usize));
                    }
                    1 => {
                        assert!(matches!(
                            w.recv_loan_object::<Frame>(src, 5),
                            Err(Error::TypeMismatch { .. })
                        ));
                        assert_eq!(w.recv::<Frame>(src, 5).unwrap().number, number);
                    }
                    _ => {
                        assert!(matches!(
                            w.recv_loan_object::<Frame>(src, ANY_TAG),
                            Err(Error::TypeMismatch { .. })
                        ));
                        assert_eq!(w.recv_loan::<u64>(src, 5).unwrap().0[0], number);
                    }
                }
                next[src as usize] += 1;
            }
            assert_eq!(next, [0, 6, 6, 6]);
        },
    );
}

/// Objects dropped unsent return to the pool. An object longer than the pool's free
/// run is built once the pool has room: the sender waits for its receiver to give a
/// loan back. One larger than the pool, or one that cannot fit beside loans this rank
/// has not sent, is an error.
#[test]
fn an_object_longer_than_the_free_run_waits_for_room_and_one_too_large_is_an_error() {
    run_ranks(
        "an_object_longer_than_the_free_run_waits_for_room_and_one_too_large_is_an_error",
        2,
        |w| {
            let pool = pool_bytes(2);
            if w.rank() == 0 {
                // Objects of a quarter of the pool dropped unsent, many times its size.
                let quarter = frame(1, pool / 4 / 4 - 1024);
                for _ in 0..40 {
                    drop(w.loan_object(&quarter).unwrap());
                }
                let big = w.loan_slice::<u8>(pool * 6 / 10).unwrap();
                w.send_loan(big, 1, 0).unwrap();
                w.barrier().unwrap();
                // Half the pool, while rank 1 holds 60% of it for a while.
                let f = frame(7, pool / 2 / 4);
                let loan = w.loan_object(&f).unwrap();
                w.send_loan_object(loan, 1, 1).unwrap();
                w.barrier().unwrap();
                match w.loan_object(&frame(8, pool / 4 + 1)) {
                    Err(Error::Usage(m)) => assert!(m.contains("larger than"), "{m}"),
                    other => panic!("expected a too-large error, got {other:?}"),
                }
                let held = w.loan_slice::<u8>(pool * 6 / 10).unwrap();
                match w.loan_object(&frame(9, pool / 2 / 4)) {
                    Err(Error::Usage(m)) => assert!(m.contains("not sent"), "{m}"),
                    other => panic!("expected a full-pool error, got {other:?}"),
                }
                drop(held);
                let small = w.loan_object(&frame(10, 3)).unwrap();
                w.send_loan_object(small, 1, 2).unwrap();
            } else {
                let (big, _) = w.recv_loan::<u8>(0, 0).unwrap();
                w.barrier().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(300));
                drop(big);
                let (v, _) = w.recv_loan_object::<Frame>(0, 1).unwrap();
                assert_eq!(v.deserialize().unwrap(), frame(7, pool / 2 / 4));
                drop(v);
                w.barrier().unwrap();
                let (v, _) = w.recv_loan_object::<Frame>(0, 2).unwrap();
                assert_eq!(v.number, 10);
            }
        },
    );
}

/// When the pool's free space is split by the end of the pool, an object is built in
/// the longer part (from the pool's start, up to the oldest loan still out) and
/// arrives whole; the gap left at the end is reused once the loans come back.
#[test]
fn an_object_is_built_in_the_longer_free_run_when_the_pool_wraps() {
    run_ranks(
        "an_object_is_built_in_the_longer_free_run_when_the_pool_wraps",
        2,
        |w| {
            let pool = pool_bytes(2);
            let two_fifths = pool * 2 / 5;
            if w.rank() == 0 {
                for k in 0..2u8 {
                    let mut l = w.loan_slice::<u8>(two_fifths).unwrap();
                    l[0] = k;
                    w.send_loan(l, 1, 0).unwrap();
                }
                // Rank 1 gives the first back and keeps the second: about a fifth of
                // the pool is free at its end, two fifths at its start.
                w.barrier().unwrap();
                let f = frame(3, pool * 3 / 10 / 4);
                w.send_loan_object(w.loan_object(&f).unwrap(), 1, 1)
                    .unwrap();
                w.barrier().unwrap();
                for k in 0..6 {
                    let f = frame(4 + k, pool / 4 / 4);
                    w.send_loan_object(w.loan_object(&f).unwrap(), 1, 2)
                        .unwrap();
                }
            } else {
                let (a, _) = w.recv_loan::<u8>(0, 0).unwrap();
                let (b, _) = w.recv_loan::<u8>(0, 0).unwrap();
                assert_eq!((a[0], b[0]), (0, 1));
                drop(a);
                w.barrier().unwrap();
                let (v, _) = w.recv_loan_object::<Frame>(0, 1).unwrap();
                assert_eq!(v.deserialize().unwrap(), frame(3, pool * 3 / 10 / 4));
                drop((v, b));
                w.barrier().unwrap();
                for k in 0..6 {
                    let (v, _) = w.recv_loan_object::<Frame>(0, 2).unwrap();
                    assert_eq!(v.deserialize().unwrap(), frame(4 + k, pool / 4 / 4));
                }
            }
        },
    );
}

/// A rank that waits for room in its pool while the holder of its loans waits for it
/// is in a deadlock like any other: the launcher reports it within `SHMPI_DEADLOCK_MS`
/// naming `loan_slice` (exit 120), and `--timeout` says the rank waits in
/// `loan_slice`, not that it runs or waits in its last send. Rank 1 keeps every view
/// and waits for a message rank 0 sends only once its loop of loans is done.
#[test]
fn a_loan_waiting_for_room_that_cannot_come_is_a_reported_deadlock() {
    const NAME: &str = "a_loan_waiting_for_room_that_cannot_come_is_a_reported_deadlock";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        let loans = pool_bytes(2) / (1 << 20) + 8;
        let e = if w.rank() == 0 {
            (|| -> shmpi::Result<()> {
                for _ in 0..loans {
                    let l = w.loan_slice::<u8>(1 << 20)?;
                    w.send_loan(l, 1, 0)?;
                }
                w.send(&1u8, 1, 1)
            })()
            .unwrap_err()
        } else {
            let mut views = Vec::new();
            (|| -> shmpi::Result<()> {
                loop {
                    if w.probe(0, ANY_TAG)?.tag() == 1 {
                        return Ok(());
                    }
                    views.push(w.recv_loan::<u8>(0, 0)?);
                }
            })()
            .unwrap_err()
        };
        eprintln!("rank {}: {e}", w.rank());
        if w.rank() == 0 {
            assert!(e.to_string().contains("loan_slice"), "{e}");
        }
        return;
    }
    assert_loan_wait_reported(NAME, "loan_slice");
}

/// The twin of the test above for `loan_object`: an object loan waiting for pool room
/// that cannot come is reported as waiting in `loan_object`, the call the program
/// made, by the deadlock report, the `--timeout` report and the rank's own error.
#[test]
fn an_object_loan_waiting_for_room_that_cannot_come_is_a_reported_deadlock() {
    const NAME: &str = "an_object_loan_waiting_for_room_that_cannot_come_is_a_reported_deadlock";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        let loans = pool_bytes(2) / (1 << 20) + 8;
        let e = if w.rank() == 0 {
            (|| -> shmpi::Result<()> {
                let frame = vec![7u8; 1 << 20];
                for _ in 0..loans {
                    let l = w.loan_object(&frame)?;
                    w.send_loan_object(l, 1, 0)?;
                }
                w.send(&1u8, 1, 1)
            })()
            .unwrap_err()
        } else {
            let mut views = Vec::new();
            (|| -> shmpi::Result<()> {
                loop {
                    if w.probe(0, ANY_TAG)?.tag() == 1 {
                        return Ok(());
                    }
                    views.push(w.recv_loan_object::<Vec<u8>>(0, 0)?);
                }
            })()
            .unwrap_err()
        };
        eprintln!("rank {}: {e}", w.rank());
        if w.rank() == 0 {
            assert!(e.to_string().contains("loan_object"), "{e}");
        }
        return;
    }
    assert_loan_wait_reported(NAME, "loan_object");
}

/// Runs test `name`'s job (rank 0 waiting in `call` for pool room that rank 1, blocked
/// in a probe, never gives back) twice: the deadlock report names the cycle, and with
/// the deadlock check off the `--timeout` report names `call`.
fn assert_loan_wait_reported(name: &str, call: &str) {
    let out = launch_self_env(name, 2, &["--timeout", "60"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(shmpi::launch::EXIT_DEADLOCK),
        "{err}"
    );
    assert!(
        err.contains(&format!("deadlock: rank 0 waits in {call}"))
            && err.contains("rank 1 waits in probe"),
        "{err}"
    );
    let out = launch_self_env(name, 2, &["--timeout", "3"], &[("SHMPI_DEADLOCK_MS", "0")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(shmpi::launch::EXIT_TIMEOUT),
        "{err}"
    );
    assert!(err.contains(&format!(") waits in {call}")), "{err}");
}

/// A rank that waits for pool room whose loans are held by a rank that has finalized
/// but lives on holding a view is not deadlocked (the view may still be dropped, and
/// then the wait ends), but it does not wait silently either: once every live rank
/// that can still call shmpi is blocked, the launcher says who waits, in which call,
/// and who holds the loans, and lets the job go on. Rank 1 keeps its view for 3 s
/// after its finalize; rank 0 fills its pool behind that block and waits.
#[test]
fn a_loan_wait_on_a_holder_that_finalized_names_it_and_ends_when_the_view_goes() {
    const NAME: &str =
        "a_loan_wait_on_a_holder_that_finalized_names_it_and_ends_when_the_view_goes";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        if w.rank() == 0 {
            let l = w.loan_slice::<u8>(1 << 20).unwrap();
            w.send_loan(l, 1, 0).unwrap();
            let e = w.recv::<u8>(1, 1).unwrap_err();
            assert!(matches!(e, Error::PeerFailed { rank: 1, .. }), "{e}");
            // The held block is the pool's head: these wait for it once the pool is full.
            for _ in 0..pool_bytes(2) / (1 << 20) + 4 {
                drop(w.loan_slice::<u8>(1 << 20).unwrap());
            }
        } else {
            let (view, _) = w.recv_loan::<u8>(0, 0).unwrap();
            drop(w);
            drop(u);
            std::thread::sleep(std::time::Duration::from_secs(3));
            drop(view);
        }
        return;
    }
    let out = launch_self_env(
        NAME,
        2,
        &["--timeout", "60"],
        &[("SHMPI_DEADLOCK_MS", "300")],
    );
    assert_success(&out, NAME);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rank 0 waits in loan_slice")
            && err.contains("rank 1 has finalized")
            && err.contains("holds"),
        "{err}"
    );
}
