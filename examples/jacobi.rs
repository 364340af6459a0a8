//! Jacobi iteration for steady-state heat diffusion on a square plate: the top edge
//! is held at 100, the other edges at 0, the interior relaxes until the largest change
//! in one sweep is below a tolerance.
//!
//! The interior is split into blocks on a 2-D Cartesian grid of ranks
//! (`dims_create`, `cart_create`). Each sweep exchanges one halo row or column with
//! each of the four neighbours that `shift` names (`sendrecv_slice`; at the plate's
//! edges the neighbour is `PROC_NULL`, so the exchange leaves the boundary values in
//! place), and agrees on the largest change with `allreduce_into(.., Op::Max)`. At the
//! end the blocks are gathered at rank 0 (`gatherv_into`), which checks them against a
//! serial run: Jacobi updates every point from the previous sweep only, so the parallel
//! result must equal the serial one exactly, sweep count included. Exits non-zero if
//! not.
//!
//! ```text
//! cargo run --release --bin shmrun -- -n 4 --example jacobi
//! ```

use shmpi::{CartComm, Communicator, Op, Result, dims_create};

const N: usize = 64; // grid points per side, edges included
const TOL: f64 = 1e-4;
const MAX_SWEEPS: usize = 100_000;

/// One sweep over the interior of `old` (a `rows` x `cols` block with a halo or
/// boundary ring) into `new`; returns the largest change.
fn sweep(old: &[f64], new: &mut [f64], rows: usize, cols: usize) -> f64 {
    let mut diff: f64 = 0.0;
    for r in 1..rows - 1 {
        for c in 1..cols - 1 {
            let at = |r: usize, c: usize| old[r * cols + c];
            let v = 0.25 * (at(r - 1, c) + at(r + 1, c) + at(r, c - 1) + at(r, c + 1));
            diff = diff.max((v - at(r, c)).abs());
            new[r * cols + c] = v;
        }
    }
    diff
}

fn serial() -> (Vec<f64>, usize) {
    let mut a = vec![0.0; N * N];
    a[..N].iter_mut().for_each(|x| *x = 100.0); // the hot top edge
    let mut b = a.clone();
    for s in 1..=MAX_SWEEPS {
        let d = sweep(&a, &mut b, N, N);
        std::mem::swap(&mut a, &mut b);
        if d < TOL {
            return (a, s);
        }
    }
    (a, MAX_SWEEPS)
}

/// The interior points `[first, first + len)` (global indices, edges excluded) that
/// part `i` of `parts` owns along one side.
fn span(i: i32, parts: i32) -> (usize, usize) {
    let (inner, i, parts) = (N - 2, i as usize, parts as usize);
    let len = inner / parts + usize::from(i < inner % parts);
    let first = 1 + i * (inner / parts) + i.min(inner % parts);
    (first, len)
}

/// This rank's block, with its halo ring: `(first row, rows, first col, cols)` of the
/// interior it owns and the block's local size including the ring.
struct Block {
    row0: usize,
    rows: usize,
    col0: usize,
    cols: usize,
}

fn block(g: &CartComm, rank: i32) -> Result<Block> {
    let c = g.coords_of(rank)?;
    let (row0, rows) = span(c[0], g.dims()[0]);
    let (col0, cols) = span(c[1], g.dims()[1]);
    Ok(Block {
        row0,
        rows,
        col0,
        cols,
    })
}

fn parallel(world: &Communicator) -> Result<(Vec<f64>, usize)> {
    let mut dims = [0, 0];
    dims_create(world.size(), &mut dims)?;
    let g = world
        .cart_create(&dims, &[false, false], true)?
        .expect("the grid has every rank");
    let b = block(&g, g.rank())?;
    let (rows, cols) = (b.rows + 2, b.cols + 2); // with the halo ring
    let mut a = vec![0.0; rows * cols];
    if b.row0 == 1 {
        a[..cols].iter_mut().for_each(|x| *x = 100.0); // my top ring is the hot edge
    }
    let mut next = a.clone();
    let (up, down) = g.shift(0, 1)?;
    let (left, right) = g.shift(1, 1)?;
    let mut col_out = vec![0.0; rows];
    let mut col_in = vec![0.0; rows];
    let mut sweeps = MAX_SWEEPS;
    let busy = b.rows > 0 && b.cols > 0;
    for s in 1..=MAX_SWEEPS {
        if busy {
            // Rows: my first row goes up while the row below me comes in, and back.
            let (top, rest) = a.split_at_mut(cols);
            g.sendrecv_slice(&rest[..cols], up, 1, top, up, 2)?;
            let (rest, bottom) = a.split_at_mut((rows - 1) * cols);
            g.sendrecv_slice(&rest[(rows - 2) * cols..], down, 2, bottom, down, 1)?;
            // Columns, packed: my first column goes left, my last one right.
            for (dest, out_col, in_col, tag) in [(left, 1, 0, 3), (right, cols - 2, cols - 1, 4)] {
                for r in 0..rows {
                    col_out[r] = a[r * cols + out_col];
                    col_in[r] = a[r * cols + in_col];
                }
                g.sendrecv_slice(&col_out, dest, tag, &mut col_in, dest, 7 - tag)?;
                for r in 0..rows {
                    a[r * cols + in_col] = col_in[r];
                }
            }
        }
        let local = if busy {
            sweep(&a, &mut next, rows, cols)
        } else {
            0.0
        };
        std::mem::swap(&mut a, &mut next);
        let mut diff = [0.0];
        g.allreduce_into(&[local], &mut diff, Op::Max)?;
        if diff[0] < TOL {
            sweeps = s;
            break;
        }
    }
    // Gather the blocks at rank 0 and place each by its rank's coordinates.
    let mine: Vec<f64> = (1..rows - 1)
        .flat_map(|r| a[r * cols + 1..r * cols + cols - 1].iter().copied())
        .collect();
    let blocks: Vec<Block> = (0..g.size()).map(|r| block(&g, r)).collect::<Result<_>>()?;
    let counts: Vec<usize> = blocks.iter().map(|b| b.rows * b.cols).collect();
    let displs: Vec<usize> = counts
        .iter()
        .scan(0, |o, &c| Some(std::mem::replace(o, *o + c)))
        .collect();
    let mut packed = vec![
        0.0;
        if g.rank() == 0 {
            counts.iter().sum()
        } else {
            0
        }
    ];
    g.gatherv_into(&mine, &mut packed, &counts, &displs, 0)?;
    let mut grid = vec![0.0; if g.rank() == 0 { N * N } else { 0 }];
    if g.rank() == 0 {
        grid[..N].iter_mut().for_each(|x| *x = 100.0);
        for (b, &d) in blocks.iter().zip(&displs) {
            for r in 0..b.rows {
                let row = &packed[d + r * b.cols..d + (r + 1) * b.cols];
                grid[(b.row0 + r) * N + b.col0..][..b.cols].copy_from_slice(row);
            }
        }
    }
    Ok((grid, sweeps))
}

fn main() -> Result<()> {
    let universe = shmpi::init()?;
    let world = universe.world();
    let t = shmpi::wtime();
    let (grid, sweeps) = parallel(&world)?;
    let t = shmpi::wtime() - t;
    if world.rank() == 0 {
        let (want, want_sweeps) = serial();
        let ok = sweeps == want_sweeps && grid == want;
        let centre = grid[(N / 2) * N + N / 2];
        let mut dims = [0, 0];
        dims_create(world.size(), &mut dims)?;
        println!(
            "jacobi {N}x{N} on {} ranks ({} x {} grid): {sweeps} sweeps in {t:.3} s, centre \
             temperature {centre:.4}, {}",
            world.size(),
            dims[0],
            dims[1],
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
