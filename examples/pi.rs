//! Pi by numerical integration: each rank integrates `4 / (1 + x^2)` over its share
//! of the intervals of [0, 1] (midpoint rule), and the shares are summed with
//! `reduce_into` (mpi4py's classic `comm.Reduce(..., op=MPI.SUM, root=0)` example).
//! Rank 0 checks the answer against `std::f64::consts::PI` and exits non-zero if it
//! is off.
//!
//! ```text
//! cargo run --release --bin shmrun -- -n 4 --example pi
//! ```

use shmpi::Op;

fn main() -> shmpi::Result<()> {
    let universe = shmpi::init()?;
    let world = universe.world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);

    // The number of intervals, broadcast from rank 0 (as if it were read from input).
    let mut n = [if rank == 0 { 10_000_000u64 } else { 0 }];
    world.bcast_into(&mut n, 0)?;
    let h = 1.0 / n[0] as f64;

    // Cyclic distribution of the intervals.
    let mut local = 0.0;
    let mut i = rank as u64;
    while i < n[0] {
        let x = h * (i as f64 + 0.5);
        local += 4.0 / (1.0 + x * x);
        i += size as u64;
    }
    local *= h;

    let mut pi = [0.0];
    world.reduce_into(&[local], &mut pi, Op::Sum, 0)?;
    // The object flavour gives the same sum at every rank.
    let pi_all = world.allreduce(&local, |a, b| a + b)?;

    if rank == 0 {
        let err = (pi[0] - std::f64::consts::PI).abs();
        println!(
            "pi ~= {:.16}, error {err:.2e}, {} intervals on {size} ranks",
            pi[0], n[0]
        );
        if err > 1e-11 || (pi_all - pi[0]).abs() > 1e-12 {
            eprintln!("pi: wrong answer (reduce {} allreduce {pi_all})", pi[0]);
            std::process::exit(1);
        }
    }
    Ok(())
}
