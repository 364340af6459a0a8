//! `MPI_Allreduce` latency, OSU osu_allreduce methodology, shmpi's side of
//! `bench/c/osu_allreduce.c` (same options, iteration rules and output format; see
//! `bench/README.md`).
//!
//! ```text
//! cargo build --release --bin shmrun --examples
//! target/release/shmrun -n 2 --bind-to core target/release/examples/osu_allreduce -m 8M
//! ```
//!
//! For each size 8, 16, ... MAXBYTES bytes (default 8 MiB): `size / 8` doubles summed
//! with `allreduce_into` (separate send and receive buffers). 1000 timed calls + 200
//! warm-up up to 8 KiB, 100 + 10 above, bounded by a time budget per size (`-t`,
//! default 1 s). Reported: the average over ranks of each rank's average time per
//! call, in microseconds. The first call of every size is checked element by element.

use shmpi::{Communicator, Op};

const LARGE: usize = 8192;

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
        eprintln!("osu_allreduce: {e}");
        std::process::exit(1)
    });
    let w = u.world();
    let (rank, n) = (w.rank(), w.size() as usize);
    let o = match parse(
        rank,
        "osu_allreduce",
        Opts {
            max: 8 << 20,
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
    let (small, skip_small, large, skip_large) = match o.iters {
        None => (1000, 200, 100, 10),
        Some(i) => (i, i * 200 / 1000, (i * 100 / 1000).max(1), i * 10 / 1000),
    };
    let max = o.max.max(8);
    let max_count = max / 8;
    let sbuf: Vec<f64> = (0..max_count)
        .map(|i| (rank + 1) as f64 + (i % 7) as f64)
        .collect();
    let mut rbuf = vec![0f64; max_count];
    if rank == 0 {
        println!("# OSU MPI Allreduce Latency Test (shmpi examples/osu_allreduce.rs)");
        println!("# library: shmpi {}", env!("CARGO_PKG_VERSION"));
        println!(
            "# ranks: {n}, datatype: f64, op: Sum, budget: {:.2} s per size",
            o.budget
        );
        println!("# Size       Avg Latency(us)");
    }
    let base = (n * (n + 1)) as f64 / 2.0;
    let mut size = 8;
    while size <= max {
        let count = size / 8;
        let (mut iters, mut skip) = if size <= LARGE {
            (small, skip_small)
        } else {
            (large, skip_large)
        };
        rbuf[..count].iter_mut().for_each(|x| *x = 0.0);
        w.allreduce_into(&sbuf[..count], &mut rbuf[..count], Op::Sum)
            .unwrap();
        for (i, &x) in rbuf[..count].iter().enumerate() {
            if x != base + n as f64 * (i % 7) as f64 {
                eprintln!(
                    "osu_allreduce: data check FAILED at size {size}, byte {}",
                    i * 8
                );
                w.abort(3);
            }
        }
        w.barrier().unwrap();
        let mut op = || {
            w.allreduce_into(&sbuf[..count], &mut rbuf[..count], Op::Sum)
                .unwrap()
        };
        budget_iters(&w, &mut op, o.budget, &mut iters, &mut skip);
        let avg = time_collective(&w, &mut op, iters, skip);
        if rank == 0 {
            println!("{size:<10}{avg:>18.2}");
        }
        size *= 2;
    }
}
