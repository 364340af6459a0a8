//! `MPI_Allreduce` latency, OSU osu_allreduce methodology, shmpi's side of
//! `perf/c/osu_allreduce.c` (same options, iteration rules and output format; see
//! `perf/README.md`).
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

#[path = "osu_coll/mod.rs"]
mod osu_coll;

use osu_coll::*;
use shmpi::Op;

fn main() {
    let (_u, w, o) = start(
        "osu_allreduce",
        Opts {
            max: 8 << 20,
            iters: None,
            budget: 1.0,
        },
    );
    let (rank, n) = (w.rank(), w.size() as usize);
    let (small, skip_small, large, skip_large) = counts(o.iters);
    let max = o.max.max(8);
    let max_count = max / 8;
    let sbuf: Vec<f64> = (0..max_count)
        .map(|i| (rank + 1) as f64 + (i % 7) as f64)
        .collect();
    let mut rbuf = vec![0f64; max_count];
    if rank == 0 {
        println!("# OSU MPI Allreduce Latency Test (shmpi perf/rust/osu_allreduce.rs)");
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
