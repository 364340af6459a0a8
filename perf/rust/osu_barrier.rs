//! `MPI_Barrier` latency, OSU osu_barrier methodology, shmpi's side of
//! `perf/c/osu_barrier.c` (same options, iteration rules and output format; see
//! `perf/README.md`).
//!
//! ```text
//! cargo build --release --bin shmrun --examples
//! target/release/shmrun -n 8 target/release/examples/osu_barrier
//! ```
//!
//! 1000 timed barriers + 200 warm-up, bounded by a time budget (`-t`, default 1 s).
//! Reported: the average over ranks of each rank's average time per barrier, in
//! microseconds. `-m` is accepted and ignored.

#[path = "osu_coll/mod.rs"]
mod osu_coll;

use osu_coll::*;

fn main() {
    let (_u, w, o) = start(
        "osu_barrier",
        Opts {
            max: 0,
            iters: None,
            budget: 1.0,
        },
    );
    let (rank, n) = (w.rank(), w.size());
    let _ = o.max;
    let (mut iters, mut skip, _, _) = counts(o.iters);
    if rank == 0 {
        println!("# OSU MPI Barrier Latency Test (shmpi perf/rust/osu_barrier.rs)");
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
