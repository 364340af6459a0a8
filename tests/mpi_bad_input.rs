//! Bad input on the MPI backend, under a real `mpirun`: what the user sees.
//!
//! - A type mismatch or a truncation is an error naming the sender, the tag and the
//!   sizes or types, and the message stays queued (as on the shared segment).
//! - A rank that dies ends the job: the MPI launcher stops the other ranks and names
//!   the rank and the signal or exit code (MPI has no way to let the others go on).
//!   A rank that panics prints its panic message and aborts the job with `MPI_Abort`,
//!   which the launcher reports with the rank.
//! - Mismatched collectives are undefined behaviour in MPI; shmpi's own check (every
//!   rank told of both calls) exists only on the shared segment. What MPI detects is
//!   returned as an error: a broadcast whose root sends more than a rank expects is
//!   `MPI_ERR_TRUNCATE` at that rank under Open MPI's TCP path.
#![cfg(feature = "mpi")]

mod mpi_common;

use mpi_common::{is_child, is_mpich, launch_mpi, run_mpi_ns};
use shmpi::{Error, ErrorClass};

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
