//! Bad input on the MPI backend, under a real `mpirun`: what the user sees.
//!
//! - A type mismatch or a truncation is an error naming the sender, the tag and the
//!   sizes or types, and the message stays queued (as on the shared segment).
//! - A rank that dies ends the job: the MPI launcher stops the other ranks and names
//!   the rank and the signal or exit code (MPI has no way to let the others go on).
//!   A rank that panics prints its panic message and aborts the job with `MPI_Abort`,
//!   which the launcher reports with the rank.
//! - A rank that finishes first (drops its last communicator, so `MPI_Finalize`) is an
//!   error to the point-to-point waits that depend on it, as on the shared segment
//!   ([`Error::PeerFailed`] with [`Exit::Finalized`]), and a send that nobody receives
//!   does not hold its rank at the end of the job.
//! - Mismatched collectives are undefined behaviour in MPI; shmpi's own check (every
//!   rank told of both calls) exists only on the shared segment. What MPI detects is
//!   returned as an error: a broadcast whose root sends more than a rank expects is
//!   `MPI_ERR_TRUNCATE` at that rank under Open MPI's TCP path.
#![cfg(feature = "mpi")]

mod mpi_common;

use mpi_common::{cancels_untouched, is_child, is_mpich, launch_mpi, poll_until, run_mpi_ns};
use shmpi::{ANY_SOURCE, Error, ErrorClass, Exit};

#[test]
fn mismatched_types_and_sizes_are_explained_and_lose_nothing() {
    run_mpi_ns(
        "mismatched_types_and_sizes_are_explained_and_lose_nothing",
        &[2, 3],
        |w| {
            if w.rank() == 0 {
                w.send(&vec![1.5f64; 4], 1, 21).unwrap();
                w.send_slice(&[0u8; 40], 1, 22).unwrap();
            } else if w.rank() == 1 {
                let e = w.recv::<String>(0, 21).unwrap_err();
                let text = e.to_string();
                assert!(text.contains("rank 0") && text.contains("21"), "{text}");
                assert!(
                    text.contains("Vec<f64>") && text.contains("String"),
                    "{text}"
                );
                let mut buf = [0u8; 8];
                let e = w.recv_into(&mut buf, 0, 22).unwrap_err();
                assert_eq!(e.class(), ErrorClass::Truncate);
                assert!(e.to_string().contains("40 bytes"), "{e}");
                let mut buf = [0u32; 3];
                assert!(matches!(
                    w.recv_into(&mut buf, 0, 22),
                    Err(Error::Truncated { .. })
                ));
                let mut buf = [0u32; 16];
                assert!(matches!(w.recv_into(&mut buf, 0, 22), Ok(st) if st.len() == 40));
                assert_eq!(w.recv::<Vec<f64>>(0, 21).unwrap(), vec![1.5; 4]);
            }
        },
    );
}

#[test]
fn large_mismatched_messages_received_in_place_stay_queued() {
    run_mpi_ns(
        "large_mismatched_messages_received_in_place_stay_queued",
        &[2],
        |w| {
            let big: Vec<u64> = (0..20_000).collect();
            if w.rank() == 0 {
                w.send(&big, 1, 23).unwrap();
                w.send_slice(&vec![5u8; 100_001], 1, 24).unwrap();
            } else {
                // Both fit the buffer, so they are received straight into it, then held.
                let mut buf = vec![0u32; 100_000];
                assert!(matches!(
                    w.recv_into(&mut buf, 0, 23),
                    Err(Error::TypeMismatch { .. })
                ));
                let e = w.recv_into(&mut buf, 0, 24).unwrap_err();
                assert!(
                    matches!(
                        e,
                        Error::ElementSize {
                            message_len: 100_001,
                            ..
                        }
                    ),
                    "{e}"
                );
                assert_eq!(w.pending_messages(), 2);
                assert_eq!(w.recv::<Vec<u64>>(0, 23).unwrap(), big);
                let mut bytes = vec![0u8; 200_000];
                let st = w.recv_into(&mut bytes, 0, 24).unwrap();
                assert_eq!(st.len(), 100_001);
                assert!(bytes[..100_001].iter().all(|&b| b == 5));
            }
        },
    );
}

#[test]
fn a_rank_killed_mid_run_ends_the_job_and_is_named() {
    const NAME: &str = "a_rank_killed_mid_run_ends_the_job_and_is_named";
    if is_child(NAME) {
        let universe = shmpi::init().unwrap();
        let w = universe.world();
        w.barrier().unwrap();
        if w.rank() == 1 {
            nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL)
                .unwrap();
        }
        // Waits for a message rank 1 never sends.
        let _ = w.recv::<u8>(1, 0);
        return;
    }
    let t = std::time::Instant::now();
    let out = launch_mpi(NAME, 3, &[]);
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        t.elapsed().as_secs() < 60,
        "the job ended only after {:?}: {text}",
        t.elapsed()
    );
    if is_mpich() {
        assert!(text.contains("RANK 1") || text.contains("rank 1"), "{text}");
    } else {
        assert!(
            text.contains("rank 1") && text.contains("signal 9"),
            "{text}"
        );
    }
}

#[test]
fn a_panicking_rank_aborts_the_job_with_its_message() {
    const NAME: &str = "a_panicking_rank_aborts_the_job_with_its_message";
    if is_child(NAME) {
        let universe = shmpi::init().unwrap();
        let w = universe.world();
        if w.rank() == 2 {
            panic!("rank 2 found a bad input file");
        }
        let _ = w.recv::<u8>(2, 0);
        return;
    }
    let out = launch_mpi(NAME, 3, &[]);
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("rank 2 found a bad input file"), "{text}");
    assert!(
        text.contains("MPI_Abort") || text.contains("MPI_ABORT"),
        "{text}"
    );
}

#[test]
fn a_broadcast_longer_than_expected_is_an_mpi_error() {
    const NAME: &str = "a_broadcast_longer_than_expected_is_an_mpi_error";
    if is_child(NAME) {
        let universe = shmpi::init().unwrap();
        let w = universe.world();
        if w.rank() == 0 {
            let mut b = [7u8; 64];
            let _ = w.bcast_into(&mut b, 0);
        } else {
            let mut b = [0u8; 8];
            let e = w.bcast_into(&mut b, 0).unwrap_err();
            println!("rank {} got: {e}", w.rank());
            assert_eq!(e.class(), ErrorClass::Truncate, "{e}");
        }
        return;
    }
    let out = launch_mpi(NAME, 2, &[]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("MPI_Bcast failed"), "{text}");
}

/// Asserts that `r` failed because world rank `rank` finished and left the job.
fn finished_first<T: std::fmt::Debug>(r: shmpi::Result<T>, rank: usize, what: &str) {
    match r {
        Err(
            e @ Error::PeerFailed {
                how: Exit::Finalized,
                ..
            },
        ) => {
            let Error::PeerFailed { rank: r, .. } = e else {
                unreachable!()
            };
            assert_eq!(r, rank, "{what}: {e}");
            let text = e.to_string();
            assert!(
                text.contains(&format!("rank {rank}")) && text.contains("finished"),
                "{what}: {text}"
            );
        }
        other => panic!("{what}: expected PeerFailed for rank {rank}, got {other:?}"),
    }
}

/// MPI 4.1 §11.2.2: a process that has called `MPI_Finalize` takes part in no more
/// communication. A rank waiting for it gets the error the shared segment gives
/// (`PeerFailed`, `Finalized`), not a wait that never ends: a blocking receive and
/// probe, a request's wait, a large, a synchronous and a large non-blocking send, a
/// scope's end with such requests unwaited, and a receive from `ANY_SOURCE` once every
/// other rank has finished; the ranks still
/// running go on talking to each other.
#[test]
fn a_rank_that_finished_is_an_error_to_the_ranks_that_wait_for_it() {
    run_mpi_ns(
        "a_rank_that_finished_is_an_error_to_the_ranks_that_wait_for_it",
        &[2, 3],
        |w| {
            let n = w.size() as usize;
            let last = n - 1;
            if w.rank() as usize == last {
                return; // finishes at once, receiving and sending nothing
            }
            let l = last as i32;
            finished_first(w.recv::<u8>(l, 5), last, "recv");
            finished_first(w.probe(l, 5), last, "probe");
            finished_first(w.irecv::<u8>(l, 5).unwrap().wait(), last, "irecv's wait");
            let mut buf = [0u8; 4];
            finished_first(w.recv_into(&mut buf, l, 5), last, "recv_into");
            finished_first(
                w.send_slice(&vec![1u8; 1 << 20], l, 5),
                last,
                "a large send",
            );
            finished_first(w.ssend_slice(&[1u8; 8], l, 5), last, "ssend_slice");
            let r = w.isend_vec(vec![1u8; 1 << 20], l, 5).unwrap();
            finished_first(r.wait(), last, "a large isend's wait");
            finished_first(w.issend(&3u64, l, 5).unwrap().wait(), last, "issend's wait");
            // A scope's end finishes its requests: an unwaited large send and receive.
            let big = vec![2u8; 1 << 20];
            let mut inbox = vec![0u8; 64];
            let r = w.scope(|s| {
                drop(s.isend_slice(&big, l, 5)?);
                drop(s.irecv_into(&mut inbox, l, 5)?);
                Ok(())
            });
            finished_first(r, last, "a scope's end");
            drop(big); // freed: MPI reads no more of it
            if n == 2 {
                finished_first(w.recv::<u8>(ANY_SOURCE, 5), last, "recv from ANY_SOURCE");
            } else {
                // The ranks still running talk on, small and large.
                let other = 1 - w.rank();
                let big: Vec<u32> = (0..300_000).map(|i| i * 3 + w.rank() as u32).collect();
                let r = w.isend_vec(big, other, 9).unwrap();
                let got = w.recv_vec::<u32>(other, 9).unwrap().0;
                assert!(
                    got.iter()
                        .enumerate()
                        .all(|(i, &x)| x == i as u32 * 3 + other as u32)
                );
                r.wait().unwrap();
                w.send(&7u8, other, 10).unwrap();
                assert_eq!(w.recv::<u8>(other, 10).unwrap(), 7);
            }
        },
    );
}

/// A send nobody receives does not hold its rank at the end of the job (MPI allows a
/// message left unreceived by a correct program's end to be dropped; `MPI_Finalize`
/// of the C library returns with one pending): large and synchronous ones dropped
/// unwaited, on the world and on a duplicate freed first. One that is received,
/// however late, is still delivered whole.
#[test]
fn sends_never_received_do_not_hold_the_job_at_its_end() {
    run_mpi_ns(
        "sends_never_received_do_not_hold_the_job_at_its_end",
        &[2, 3],
        |w| {
            let dup = w.dup().unwrap();
            let pattern: Vec<u64> = (0..200_000).map(|i| i * 7 + 1).collect();
            if w.rank() == 0 {
                for d in 1..w.size() {
                    drop(w.isend_vec(vec![7u8; 1 << 20], d, 5).unwrap());
                    drop(w.issend(&3u64, d, 6).unwrap());
                    drop(dup.isend_vec(vec![8u8; 1 << 20], d, 5).unwrap());
                }
                drop(w.isend_vec(pattern.clone(), 1, 7).unwrap());
            } else if w.rank() == 1 {
                std::thread::sleep(std::time::Duration::from_millis(300));
                assert_eq!(w.recv_vec::<u64>(0, 7).unwrap().0, pattern);
            }
            drop(dup);
        },
    );
}

/// As on the shared segment (tests/requests.rs): a loop of tests on requests that wait
/// for a rank that finished ends with the error their waits give, instead of spinning
/// for ever: `test`, `is_complete`, `get_status`, `test_any`, `test_some` and
/// `test_all` on receives, `test` on a synchronous send, and `wait_any` over receives
/// from ranks that all finished; what a rank sent before finishing is still received.
#[test]
fn tests_of_requests_on_a_rank_that_finished_fail_instead_of_spinning() {
    run_mpi_ns(
        "tests_of_requests_on_a_rank_that_finished_fail_instead_of_spinning",
        &[2],
        |w| {
            if w.rank() == 1 {
                w.send(&4u8, 0, 3).unwrap();
                return; // finishes, sending nothing more
            }
            let mut req = w.irecv::<u8>(1, 3).unwrap();
            let (v, st) = poll_until("the message sent before finishing", || req.test()).unwrap();
            assert_eq!((v, st.source()), (4, 1));
            let mut req = w.irecv::<u8>(1, 5).unwrap();
            finished_first(poll_until("test", || req.test()), 1, "test");
            let mut req = w.irecv_into(vec![0u8; 4], ANY_SOURCE, 5).unwrap();
            finished_first(
                poll_until("test, ANY_SOURCE", || req.test()),
                1,
                "test, ANY_SOURCE",
            );
            cancels_untouched(req);
            let mut req = w.irecv::<u8>(1, 6).unwrap();
            let r = poll_until("is_complete", || req.is_complete().map(|d| d.then_some(())));
            finished_first(r, 1, "is_complete");
            let mut req = w.irecv::<u8>(1, 6).unwrap();
            finished_first(
                poll_until("get_status", || req.get_status()),
                1,
                "get_status",
            );
            let mut reqs = vec![w.irecv::<u8>(1, 7).unwrap(), w.irecv::<u8>(1, 8).unwrap()];
            finished_first(
                poll_until("test_any", || shmpi::test_any(&mut reqs)),
                1,
                "test_any",
            );
            let r = poll_until("test_some", || {
                shmpi::test_some(&mut reqs).map(|done| (!done.is_empty()).then_some(done))
            });
            finished_first(r, 1, "test_some");
            finished_first(
                poll_until("test_all", || shmpi::test_all(&mut reqs)),
                1,
                "test_all",
            );
            assert_eq!(
                reqs.len(),
                2,
                "the failed tests left the requests as they were"
            );
            finished_first(shmpi::wait_any(&mut reqs), 1, "wait_any");
            let mut req = w.issend(&1u8, 1, 9).unwrap();
            finished_first(
                poll_until("test of issend", || req.test()),
                1,
                "test of issend",
            );
        },
    );
}
