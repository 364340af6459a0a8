//! Many ranks: hello, a ring pass and an allreduce complete at N = 64 and N = 256 on
//! however few cores the machine has.

mod common;

use common::run_ranks;
use shmpi::Communicator;

fn hello_ring_allreduce(w: &Communicator) {
    let (rank, size) = (w.rank(), w.size());
    println!("I am rank {rank} in group of {size} processes");
    let right = (rank + 1) % size;
    let left = (rank + size - 1) % size;
    // A token around the ring, then arrays shifted by one.
    if rank == 0 {
        w.send(&0i64, right, 1).unwrap();
        assert_eq!(
            w.recv::<i64>(left, 1).unwrap(),
            (0..size as i64).sum::<i64>()
        );
    } else {
        let v: i64 = w.recv(left, 1).unwrap();
        w.send(&(v + rank as i64), right, 1).unwrap();
    }
    let mut got = vec![0u32; 1 << 16];
    w.sendrecv_slice(&vec![rank as u32; 1 << 16], right, 2, &mut got, left, 2)
        .unwrap();
    assert!(got.iter().all(|&x| x == left as u32));
    let mut sum = [0u64; 4];
    w.allreduce_into(&[rank as u64, 1, 2, 3], &mut sum, shmpi::Op::Sum)
        .unwrap();
    let n = size as u64;
    assert_eq!(sum, [n * (n - 1) / 2, n, 2 * n, 3 * n]);
    w.barrier().unwrap();
}

#[test]
fn hello_ring_pass_and_allreduce_at_64_ranks() {
    run_ranks(
        "hello_ring_pass_and_allreduce_at_64_ranks",
        64,
        hello_ring_allreduce,
    );
}

#[test]
fn hello_ring_pass_and_allreduce_at_256_ranks() {
    run_ranks(
        "hello_ring_pass_and_allreduce_at_256_ranks",
        256,
        hello_ring_allreduce,
    );
}

/// KiB the shared segment (the memfd "shmpi" mapped into this process) has committed.
fn segment_kib() -> u64 {
    use std::os::unix::fs::MetadataExt;
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let line = maps
        .lines()
        .find(|l| l.contains("/memfd:shmpi "))
        .expect("the segment's mapping");
    let range = line.split_whitespace().next().unwrap();
    std::fs::metadata(format!("/proc/self/map_files/{range}"))
        .unwrap()
        .blocks()
        / 2
}

/// A long exchange of small messages that the receivers keep up with (every rank
/// sends one to every other, then receives one from each, 50 000 times: 1.5 MiB
/// through each ring) commits a small part of each 1 MiB ring, not the whole of it:
/// the rings start again at their first pages while their consumers keep up. Every
/// message arrives in order.
#[test]
fn small_messages_kept_up_with_commit_a_quarter_of_each_ring() {
    // A ring's records stay within its first 256 KiB (`ring::REWIND_SPAN`); one that
    // walked through its whole buffer would commit 1024.
    exchange_commits(
        "small_messages_kept_up_with_commit_a_quarter_of_each_ring",
        4,
        50_000,
        300,
    );
}

/// The same exchange among 16 ranks (3 000 rounds: 94 KiB through each of 240 rings)
/// commits about 64 KiB of each ring, the span of a job of that size
/// (`layout::rewind_span`), so that the rings of a long all-to-all hold less memory
/// than Open MPI's job (docs/performance.md, "Memory").
#[test]
fn small_messages_among_16_ranks_commit_a_sixteenth_of_each_ring() {
    exchange_commits(
        "small_messages_among_16_ranks_commit_a_sixteenth_of_each_ring",
        16,
        3_000,
        80,
    );
}

/// Every rank sends a 16-byte message to every other, then receives one from each,
/// `rounds` times; the segment must grow by at most `kib_per_ring` for each ring.
fn exchange_commits(name: &str, n: usize, rounds: u64, kib_per_ring: u64) {
    run_ranks(name, n, move |w| {
        let (rank, size) = (w.rank(), w.size());
        w.barrier().unwrap();
        let before = segment_kib();
        for i in 0..rounds {
            for d in (0..size).filter(|&d| d != rank) {
                w.send_slice(&[i, rank as u64], d, 0).unwrap();
            }
            for s in (0..size).filter(|&s| s != rank) {
                let mut v = [0u64; 2];
                w.recv_into(&mut v, s, 0).unwrap();
                assert_eq!(v, [i, s as u64], "message {i} from rank {s}");
            }
        }
        w.barrier().unwrap();
        let grown = segment_kib() - before;
        let rings = (size * (size - 1)) as u64;
        assert!(
            grown <= rings * kib_per_ring,
            "{rings} rings committed {grown} KiB more over the exchange"
        );
    });
}
