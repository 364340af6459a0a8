//! The SPSC ring alone, in one process, over heap memory (`shmpi::__bench::heap_ring`,
//! the same code as the shared-memory rings): the floor under every message.
//!
//! - `ring/throughput/SIZE`: a producer thread pushes records of SIZE bytes as fast as
//!   the ring takes them while the consumer thread (the one criterion times) pops them:
//!   bytes per second through one ring between two threads.
//! - `ring/pingpong/SIZE`: two rings, a record goes to the other thread and comes back:
//!   time per round trip (one-way latency = half of it). The two threads are pinned to
//!   CPUs 0 and 1 (where there are two), as `shmrun --bind-to core` pins two ranks, so
//!   this is the ring's share of a two-rank ping-pong: on the Zen 5 host 101-120 ns
//!   per round trip at 8 bytes (50-60 ns one-way), against 42-49 ns for one cache line
//!   handed between the cores and 49-53 ns for a C model of the ring.
//! - `ring/push_pop_same_thread/SIZE`: push then pop on one thread: the instruction
//!   cost of the ring with no cache line moving between cores.
//!
//! ```text
//! cargo bench --bench ring
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;
use shmpi::__bench::heap_ring;

const CAP: usize = 256 << 10;

fn same_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring/push_pop_same_thread");
    for size in [8usize, 64, 1024] {
        let (mut p, mut cons) = heap_ring(CAP);
        let data = vec![7u8; size];
        let mut out = vec![0u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| {
                assert!(p.push(1, std::hint::black_box(&data)));
                cons.pop(&mut out).unwrap()
            })
        });
    }
    g.finish();
}

fn throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring/throughput");
    for size in [8usize, 1024, 16 << 10] {
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.iter_custom(|iters| {
                let (mut p, mut cons) = heap_ring(CAP);
                let stop = Arc::new(AtomicBool::new(false));
                let stop2 = stop.clone();
                let producer = std::thread::spawn(move || {
                    let data = vec![3u8; size];
                    let mut sent = 0u64;
                    while sent < iters && !stop2.load(Ordering::Relaxed) {
                        if p.push(sent, &data) {
                            sent += 1;
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                });
                let mut out = vec![0u8; size];
                let t0 = Instant::now();
                let mut got = 0u64;
                while got < iters {
                    match cons.pop(&mut out) {
                        Some((w, n)) => {
                            debug_assert_eq!((w, n), (got, size));
                            got += 1;
                        }
                        None => std::hint::spin_loop(),
                    }
                }
                let t = t0.elapsed();
                stop.store(true, Ordering::Relaxed);
                producer.join().unwrap();
                t
            })
        });
    }
    g.finish();
}

/// The CPUs this process may run on, if both 0 and 1 are among them.
fn two_cpus() -> Option<CpuSet> {
    let all = sched_getaffinity(Pid::from_raw(0)).ok()?;
    (all.is_set(0).ok()? && all.is_set(1).ok()?).then_some(all)
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) {
    let mut one = CpuSet::new();
    if one.set(cpu).is_ok() {
        let _ = sched_setaffinity(Pid::from_raw(0), &one);
    }
}

fn pingpong(c: &mut Criterion) {
    let restore = two_cpus();
    if restore.is_some() {
        pin(0);
    }
    let pinned = restore.is_some();
    let mut g = c.benchmark_group("ring/pingpong");
    for size in [8usize, 1024] {
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.iter_custom(|iters| {
                let (mut p_ab, mut c_ab) = heap_ring(CAP);
                let (mut p_ba, mut c_ba) = heap_ring(CAP);
                let echo = std::thread::spawn(move || {
                    if pinned {
                        pin(1);
                    }
                    let mut buf = vec![0u8; size];
                    for _ in 0..iters {
                        let (w, n) = loop {
                            if let Some(r) = c_ab.pop(&mut buf) {
                                break r;
                            }
                            std::hint::spin_loop();
                        };
                        while !p_ba.push(w, &buf[..n]) {
                            std::hint::spin_loop();
                        }
                    }
                });
                let data = vec![1u8; size];
                let mut buf = vec![0u8; size];
                let t0 = Instant::now();
                for i in 0..iters {
                    while !p_ab.push(i, &data) {
                        std::hint::spin_loop();
                    }
                    loop {
                        if let Some((w, _)) = c_ba.pop(&mut buf) {
                            assert_eq!(w, i);
                            break;
                        }
                        std::hint::spin_loop();
                    }
                }
                let t = t0.elapsed();
                echo.join().unwrap();
                t
            })
        });
    }
    g.finish();
    if let Some(all) = restore {
        let _ = sched_setaffinity(Pid::from_raw(0), &all);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = same_thread, throughput, pingpong
}
criterion_main!(benches);
