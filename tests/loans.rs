//! Loans (zero-copy messages) between real processes: the rules of `src/loan.rs`'s
//! module doc, each from its statement: a loan is read by its one receiver as sent,
//! matching/wildcards/order are those of every other message, a loan dropped unsent
//! returns to the pool, the pool is bounded with an error instead of a crash, and a
//! rank that leaves holding a loan (or without receiving one) costs its owner nothing.

mod common;

use common::run_ranks;
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
            assert!(matches!(
                w.recv::<u8>(0, 1),
                Err(Error::TypeMismatch { .. })
            ));
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
