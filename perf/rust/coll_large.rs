//! Large-block collectives in back-to-back loops: `allgather_into`, `allgather_in_place`,
//! `alltoall_into` (blocks of SIZE bytes per rank) and `bcast_into` (SIZE bytes), in µs
//! per call, the best of 5 batches of ITERS calls (rank 0 prints). For A/B comparisons
//! of the slot path's copies; mpi4py's `osu_allgather.py`/`osu_alltoall.py` time the
//! same calls from Python.
//!
//! ```text
//! shmrun -n 2 --bind-to core --example coll_large -- [ITERS]      (default 200)
//! ```

const BATCHES: usize = 5;
const SIZES: [usize; 4] = [16 << 10, 64 << 10, 256 << 10, 1 << 20];

fn main() -> shmpi::Result<()> {
    let iters: usize = std::env::args()
        .skip(1)
        .find(|a| a != "--")
        .map_or(200, |s| s.parse().expect("ITERS must be a number"));
    let universe = shmpi::init()?;
    let w = universe.world();
    let n = w.size() as usize;
    for size in SIZES {
        let send = vec![1u8; size];
        let mut recv = vec![0u8; size * n];
        let blocks = vec![2u8; size * n];
        let mut out = vec![0u8; size * n];
        for (name, k) in [
            ("allgather_into", 0),
            ("allgather_in_place", 1),
            ("alltoall_into", 2),
            ("bcast_into", 3),
        ] {
            let mut best = f64::MAX;
            for _ in 0..BATCHES {
                w.barrier()?;
                let t = shmpi::wtime();
                for _ in 0..iters {
                    match k {
                        0 => w.allgather_into(&send, &mut recv)?,
                        1 => w.allgather_in_place(&mut recv)?,
                        2 => w.alltoall_into(&blocks, &mut out)?,
                        _ => w.bcast_into(&mut recv[..size], 0)?,
                    }
                }
                best = best.min((shmpi::wtime() - t) / iters as f64 * 1e6);
            }
            if w.rank() == 0 {
                println!("{name} {size} B: {best:.1} us per call (best of {BATCHES} x {iters})");
            }
        }
    }
    Ok(())
}
