//! A deliberately unbalanced program, built to be traced: every rank does the same
//! steps (compute, then agree on a sum with `allreduce_into`), but the last rank's
//! share of the work is four times the others'. With `--trace` the timeline shows the
//! other ranks waiting in each allreduce (red, "blocked") while the last one computes;
//! `--stats` shows the same as their share of time in communication.
//!
//! Each rank checks the sums it receives against the known answer and exits non-zero
//! if one is wrong.
//!
//! ```text
//! cargo build --release --bin shmrun --examples
//! target/release/shmrun -n 4 --trace unbalanced.html target/release/examples/unbalanced
//! target/release/shmrun -n 4 --stats target/release/examples/unbalanced
//! ```

use shmpi::Op;

/// Steps of compute-then-allreduce.
const STEPS: u64 = 5;
/// Work units of an ordinary rank per step (the last rank does four times as many).
const UNITS: u64 = 2_000_000;

/// `units` units of work; returns a value that depends on all of it.
fn compute(units: u64, seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..units {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    std::hint::black_box(x)
}

fn main() -> shmpi::Result<()> {
    let universe = shmpi::init()?;
    let world = universe.world();
    let (rank, size) = (world.rank() as u64, world.size() as u64);
    let heavy = rank == size - 1;
    let units = if heavy { 4 * UNITS } else { UNITS };
    let (mut busy, mut waiting) = (0.0, 0.0);
    for step in 0..STEPS {
        let t0 = shmpi::wtime();
        let x = compute(units, rank + step);
        let t1 = shmpi::wtime();
        std::hint::black_box(x);
        let mut sum = [0u64];
        world.allreduce_into(&[rank + 1], &mut sum, Op::Sum)?;
        let t2 = shmpi::wtime();
        busy += t1 - t0;
        waiting += t2 - t1;
        if sum[0] != size * (size + 1) / 2 {
            eprintln!(
                "rank {rank}: step {step}: allreduce gave {} instead of {}",
                sum[0],
                size * (size + 1) / 2
            );
            std::process::exit(1);
        }
    }
    println!(
        "rank {rank}{}: computed {:.1} ms, waited in allreduce {:.1} ms over {STEPS} steps",
        if heavy { " (4x the work)" } else { "" },
        busy * 1e3,
        waiting * 1e3
    );
    Ok(())
}
