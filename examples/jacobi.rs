//! Jacobi iteration for steady-state heat diffusion on a square plate: the top edge
//! is held at 100, the other edges at 0, the interior relaxes until the largest change
//! in one sweep is below a tolerance.
//!
//! The rows of the grid are split across the ranks. Each sweep exchanges one halo row
//! with each neighbour (`sendrecv_slice`) and agrees on the largest change with
//! `allreduce_into(.., Op::Max)`. At the end the rows are gathered at rank 0
//! (`gatherv_into`), which checks them against a serial run of the same iteration:
//! Jacobi updates every point from the previous sweep only, so the parallel result
//! must equal the serial one exactly, sweep count included. Exits non-zero if not.
//!
//! ```text
//! cargo run --release --bin shmrun -- -n 4 --example jacobi
//! ```

use shmpi::{Communicator, Op, Result};

const N: usize = 64; // grid points per side, edges included
const TOL: f64 = 1e-4;
const MAX_SWEEPS: usize = 100_000;

/// One sweep over rows `1..rows-1` of `old` (which has halo/boundary rows at both
/// ends) into `new`; returns the largest change.
fn sweep(old: &[f64], new: &mut [f64], rows: usize) -> f64 {
    let mut diff: f64 = 0.0;
    for r in 1..rows - 1 {
        for c in 1..N - 1 {
            let v = 0.25
                * (old[(r - 1) * N + c]
                    + old[(r + 1) * N + c]
                    + old[r * N + c - 1]
                    + old[r * N + c + 1]);
            diff = diff.max((v - old[r * N + c]).abs());
            new[r * N + c] = v;
        }
    }
    diff
}

fn initial(rows: usize, global_first: usize) -> Vec<f64> {
    let mut g = vec![0.0; rows * N];
    if global_first == 0 {
        g[..N].iter_mut().for_each(|x| *x = 100.0); // the hot top edge
    }
    g
}

fn serial() -> (Vec<f64>, usize) {
    let mut a = initial(N, 0);
    let mut b = a.clone();
    for s in 1..=MAX_SWEEPS {
        let d = sweep(&a, &mut b, N);
        std::mem::swap(&mut a, &mut b);
        if d < TOL {
            return (a, s);
        }
    }
    (a, MAX_SWEEPS)
}

fn parallel(world: &Communicator) -> Result<(Vec<f64>, usize)> {
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    let inner = N - 2;
    // Interior rows owned by each rank.
    let share = |r: usize| inner / size + usize::from(r < inner % size);
    let first = 1 + (0..rank).map(share).sum::<usize>(); // global index of my first row
    let mine = share(rank);
    // Local rows: one halo/boundary row above, `mine` rows, one below.
    let rows = mine + 2;
    let mut a = initial(rows, first - 1);
    let mut b = a.clone();
    let up = (rank > 0).then(|| rank as i32 - 1);
    let down = (rank + 1 < size).then(|| rank as i32 + 1);
    let mut sweeps = MAX_SWEEPS;
    for s in 1..=MAX_SWEEPS {
        // Halo exchange: my first row goes up, my last row goes down.
        if mine > 0 {
            if let Some(u) = up {
                let (halo, rest) = a.split_at_mut(N);
                world.sendrecv_slice(&rest[..N], u, 1, halo, u, 2)?;
            }
            if let Some(d) = down {
                let (rest, halo) = a.split_at_mut((rows - 1) * N);
                world.sendrecv_slice(&rest[(rows - 2) * N..], d, 2, halo, d, 1)?;
            }
        }
        let local = if mine > 0 {
            sweep(&a, &mut b, rows)
        } else {
            0.0
        };
        std::mem::swap(&mut a, &mut b);
        let mut diff = [0.0];
        world.allreduce_into(&[local], &mut diff, Op::Max)?;
        if diff[0] < TOL {
            sweeps = s;
            break;
        }
    }
    // Gather the interior rows at rank 0.
    let counts: Vec<usize> = (0..size).map(|r| share(r) * N).collect();
    let displs: Vec<usize> = counts
        .iter()
        .scan(0, |o, &c| Some(std::mem::replace(o, *o + c)))
        .collect();
    let mut all = if rank == 0 {
        vec![0.0; inner * N]
    } else {
        vec![]
    };
    world.gatherv_into(&a[N..(rows - 1) * N], &mut all, &counts, &displs, 0)?;
    Ok((all, sweeps))
}

fn main() -> Result<()> {
    let universe = shmpi::init()?;
    let world = universe.world();
    let t = shmpi::wtime();
    let (grid, sweeps) = parallel(&world)?;
    let t = shmpi::wtime() - t;
    if world.rank() == 0 {
        let (want, want_sweeps) = serial();
        let ok = sweeps == want_sweeps && grid[..] == want[N..(N - 1) * N];
        let centre = grid[(N / 2 - 1) * N + N / 2];
        println!(
            "jacobi {N}x{N} on {} ranks: {sweeps} sweeps in {t:.3} s, centre temperature {centre:.4}, {}",
            world.size(),
            if ok {
                "matches the serial run"
            } else {
                "DIFFERS from the serial run"
            }
        );
        if !ok {
            eprintln!("jacobi: wrong answer (serial: {want_sweeps} sweeps)");
            std::process::exit(1);
        }
    }
    Ok(())
}
