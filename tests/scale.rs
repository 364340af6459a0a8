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
