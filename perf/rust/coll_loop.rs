//! Barrier and 1-double allreduce in tight loops, and the two alternating (every call
//! differs from the one before it, as in a program that mixes collectives, or OSU's own
//! osu_allreduce, which calls a barrier after every timed call), in nanoseconds per
//! call (per pair for the alternating loop): finer than
//! osu_barrier / osu_allreduce, whose OSU output has 10 ns steps, for A/B comparisons
//! of small changes. Each of 15 batches times `CALLS` back-to-back calls on every rank;
//! rank 0 prints its median batch and the range.
//!
//! ```text
//! shmrun -n 2 --bind-to core --example coll_loop -- [CALLS]      (default 20000)
//! ```

const BATCHES: usize = 15;

fn main() -> shmpi::Result<()> {
    let calls: usize = std::env::args()
        .skip(1)
        .find(|a| a != "--")
        .map_or(20_000, |s| s.parse().expect("CALLS must be a number"));
    let universe = shmpi::init()?;
    let world = universe.world();
    let n = world.size() as f64;
    let mut barrier = Vec::with_capacity(BATCHES);
    let mut allreduce = Vec::with_capacity(BATCHES);
    let mut alternating = Vec::with_capacity(BATCHES);
    for _ in 0..BATCHES {
        world.barrier()?;
        let t = shmpi::wtime();
        for _ in 0..calls {
            world.barrier()?;
        }
        barrier.push((shmpi::wtime() - t) / calls as f64 * 1e9);
        let x = [1.0f64];
        let mut y = [0.0f64];
        world.barrier()?;
        let t = shmpi::wtime();
        for _ in 0..calls {
            world.allreduce_into(&x, &mut y, shmpi::Op::Sum)?;
        }
        allreduce.push((shmpi::wtime() - t) / calls as f64 * 1e9);
        assert_eq!(y[0], n, "allreduce result");
        // The OSU pattern: each allreduce followed by a barrier (the signature of every
        // call differs from the previous one's).
        world.barrier()?;
        let t = shmpi::wtime();
        for _ in 0..calls {
            world.allreduce_into(&x, &mut y, shmpi::Op::Sum)?;
            world.barrier()?;
        }
        alternating.push((shmpi::wtime() - t) / calls as f64 * 1e9);
        assert_eq!(y[0], n, "allreduce result");
    }
    if world.rank() == 0 {
        let show = |name: &str, v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            println!(
                "{name}: {:.1} ns per call (median of {BATCHES} batches of {calls}; range {:.1}-{:.1})",
                v[BATCHES / 2],
                v[0],
                v[BATCHES - 1]
            );
        };
        println!("# {} ranks", world.size());
        show("barrier", &mut barrier);
        show("allreduce 1 double", &mut allreduce);
        show("allreduce + barrier", &mut alternating);
    }
    Ok(())
}
