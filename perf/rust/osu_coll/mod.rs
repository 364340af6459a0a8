//! Shared code of the collective OSU-style examples (`osu_allreduce`, `osu_barrier`,
//! `osu_bcast`): the options, the time budget and the two timing loops of
//! `perf/README.md`, the same as `perf/c/osu_common.h`.
//!
//! Included by each example with `#[path = "osu_coll/mod.rs"] mod osu_coll;`; this
//! directory has no `main.rs`, so cargo does not build it as an example of its own.

#![allow(dead_code)] // not every example uses every helper

use shmpi::{Communicator, Op, Universe};

/// Sizes above this use the "large" iteration counts (as in OSU).
pub const LARGE: usize = 8192;

/// Command-line options: `-m MAXBYTES`, `-i ITERS`, `-t SECONDS_PER_SIZE`, `-h`.
pub struct Opts {
    /// `-m`: the largest size in bytes.
    pub max: usize,
    /// `-i`: timed iterations for sizes <= 8 KiB (`None`: the defaults).
    pub iters: Option<u64>,
    /// `-t`: the time budget per size, in seconds.
    pub budget: f64,
}

/// "123", "64K", "4M", "1G" (binary multiples).
pub fn parse_size(s: &str) -> Option<usize> {
    let (num, shift) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 10),
        'm' | 'M' => (&s[..s.len() - 1], 20),
        'g' | 'G' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    num.parse::<usize>().ok()?.checked_mul(1 << shift)
}

/// Parses the options over the defaults in `o`. `Err(code)`: the program should exit
/// with `code` (0 after `-h`, 2 after a bad option; rank 0 has printed the usage).
pub fn parse(rank: i32, name: &str, mut o: Opts) -> Result<Opts, i32> {
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

/// Starts a benchmark named `name`: joins the job and parses the options over
/// `defaults`; after `-h` or a bad option every rank leaves the job and exits.
pub fn start(name: &str, defaults: Opts) -> (Universe, Communicator, Opts) {
    let u = shmpi::init().unwrap_or_else(|e| {
        eprintln!("{name}: {e}");
        std::process::exit(1)
    });
    let w = u.world();
    match parse(w.rank(), name, defaults) {
        Ok(o) => (u, w, o),
        Err(code) => {
            drop(w);
            drop(u);
            std::process::exit(code)
        }
    }
}

/// The iteration counts `(small, skip, large, skip_large)` from the defaults of a
/// collective benchmark (1000 + 200 warm-up up to 8 KiB, 100 + 10 above), scaled by
/// `-i` as `perf/c/osu_common.h`'s `scale_iters` does.
pub fn counts(user: Option<u64>) -> (u64, u64, u64, u64) {
    match user {
        None => (1000, 200, 100, 10),
        Some(i) => (i, i * 200 / 1000, (i * 100 / 1000).max(1), i * 10 / 1000),
    }
}

/// Probes 3 calls, agrees on the slowest rank's time per call, and bounds the counts
/// so that a size takes about `budget` seconds at most (at least 3 timed calls).
pub fn budget_iters(
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

/// Back-to-back calls: the average over ranks of each rank's average time per call
/// (us), valid at rank 0.
pub fn time_collective(w: &Communicator, op: &mut dyn FnMut(), iters: u64, skip: u64) -> f64 {
    for _ in 0..skip {
        op();
    }
    w.barrier().unwrap();
    let t0 = shmpi::wtime();
    for _ in 0..iters {
        op();
    }
    let mine = [(shmpi::wtime() - t0) * 1e6 / iters as f64];
    average_over_ranks(w, mine[0])
}

/// Each call timed alone and followed by an untimed barrier, as OSU's osu_bcast does,
/// so that a root cannot run ahead of its receivers (the figure is a latency, not a
/// throughput): the average over ranks of each rank's average time per call (us),
/// valid at rank 0.
pub fn time_separated(w: &Communicator, op: &mut dyn FnMut(), iters: u64, skip: u64) -> f64 {
    let mut timed = 0.0;
    for i in 0..skip + iters {
        let t0 = shmpi::wtime();
        op();
        let t = shmpi::wtime() - t0;
        if i >= skip {
            timed += t;
        }
        w.barrier().unwrap();
    }
    average_over_ranks(w, timed * 1e6 / iters as f64)
}

fn average_over_ranks(w: &Communicator, mine: f64) -> f64 {
    let mut sum = [0.0];
    w.reduce_into(&[mine], &mut sum, Op::Sum, 0).unwrap();
    sum[0] / w.size() as f64
}
