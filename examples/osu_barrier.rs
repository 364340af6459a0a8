//! `MPI_Barrier` latency, OSU osu_barrier methodology, shmpi's side of
//! `bench/c/osu_barrier.c` (same options, iteration rules and output format; see
//! `bench/README.md`).
//!
//! ```text
//! cargo build --release --bin shmrun --examples
//! target/release/shmrun -n 8 target/release/examples/osu_barrier
//! ```
//!
//! 1000 timed barriers + 200 warm-up, bounded by a time budget (`-t`, default 1 s).
//! Reported: the average over ranks of each rank's average time per barrier, in
//! microseconds. `-m` is accepted and ignored.

use shmpi::{Communicator, Op};

struct Opts {
    max: usize,
    iters: Option<u64>,
    budget: f64,
}

fn parse_size(s: &str) -> Option<usize> {
    let (num, shift) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 10),
        'm' | 'M' => (&s[..s.len() - 1], 20),
        'g' | 'G' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    num.parse::<usize>().ok().map(|v| v << shift)
}

fn parse(rank: i32, name: &str, mut o: Opts) -> Result<Opts, i32> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let usage = || format!("usage: {name} [-m MAXBYTES] [-i ITERS] [-t SECONDS_PER_SIZE] [-h]");
    while i < args.len() {
        let val = args.get(i + 1).cloned();
        let ok = match args[i].as_str() {
            "-m" => val
                .as_deref()
                .and_then(parse_size)
                .map(|v| o.max = v)
                .is_some(),
            "-i" => val
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|&v| v >= 1)
                .map(|v| o.iters = Some(v))
                .is_some(),
            "-t" => val
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|&v| v > 0.0)
                .map(|v| o.budget = v)
                .is_some(),
            "-h" => {
                if rank == 0 {
                    println!("{}", usage());
                }
                return Err(0);
            }
            _ => false,
        };
        if !ok {
            if rank == 0 {
                eprintln!("{}", usage());
            }
            return Err(2);
        }
        i += 2;
    }
    Ok(o)
}

/// Probes 3 calls, agrees on the slowest rank's time per call, and bounds the counts.
fn budget_iters(
    w: &Communicator,
    op: &mut dyn FnMut(),
    budget: f64,
    iters: &mut u64,
    skip: &mut u64,
) {
    let t0 = shmpi::wtime();
    for _ in 0..3 {
        op();
    }
    let mine = [(shmpi::wtime() - t0) / 3.0];
    let mut per = [0.0];
    w.allreduce_into(&mine, &mut per, Op::Max).unwrap();
    if per[0] > 0.0 && budget / per[0] < *iters as f64 {
        *iters = (budget / per[0]) as u64;
    }
    *iters = (*iters).max(3);
    *skip = (*skip).min(*iters / 10);
}

/// Average over ranks of each rank's average time per call (us), valid at rank 0.
fn time_collective(w: &Communicator, op: &mut dyn FnMut(), iters: u64, skip: u64) -> f64 {
    for _ in 0..skip {
        op();
    }
    w.barrier().unwrap();
    let t0 = shmpi::wtime();
    for _ in 0..iters {
        op();
    }
    let mine = [(shmpi::wtime() - t0) * 1e6 / iters as f64];
    let mut sum = [0.0];
    w.reduce_into(&mine, &mut sum, Op::Sum, 0).unwrap();
    sum[0] / w.size() as f64
}

fn main() {
    let u = shmpi::init().unwrap_or_else(|e| {
        eprintln!("osu_barrier: {e}");
        std::process::exit(1)
    });
    let w = u.world();
    let (rank, n) = (w.rank(), w.size());
    let o = match parse(
        rank,
        "osu_barrier",
        Opts {
            max: 0,
            iters: None,
            budget: 1.0,
        },
    ) {
        Ok(o) => o,
        Err(code) => {
            drop(w);
            drop(u);
            std::process::exit(code)
        }
    };
    let _ = o.max;
    let (mut iters, mut skip) = match o.iters {
        None => (1000, 200),
        Some(i) => (i, i * 200 / 1000),
    };
    if rank == 0 {
        println!("# OSU MPI Barrier Latency Test (shmpi examples/osu_barrier.rs)");
        println!("# library: shmpi {}", env!("CARGO_PKG_VERSION"));
        println!("# ranks: {n}, budget: {:.2} s", o.budget);
        println!("# Avg Latency(us)");
    }
    w.barrier().unwrap();
    let mut op = || w.barrier().unwrap();
    budget_iters(&w, &mut op, o.budget, &mut iters, &mut skip);
    let avg = time_collective(&w, &mut op, iters, skip);
    if rank == 0 {
        println!("{avg:.2}");
    }
}
