//! The cost of recording (`shmrun --trace`, `--stats`) per call, on one rank with no
//! peer to wait for: batches of `CALLS` 8-byte `send_slice` + `recv_into` pairs to
//! itself, and of `barrier`s of a world of one. Rank 0 prints the median and the fastest batch
//! in nanoseconds per pair and per barrier; run it with and without a flag and subtract
//! (a pair records two calls, a barrier one). docs/tracing.md has the figures.
//!
//! ```text
//! shmrun -n 1 --bind-to core target/release/examples/trace_cost [CALLS]   (default 20000)
//! SHMPI_TRACE_EVENTS=16777216 shmrun -n 1 --bind-to core --trace /tmp/t.json target/release/examples/trace_cost
//! shmrun -n 1 --bind-to core --stats target/release/examples/trace_cost
//! ```

const BATCHES: usize = 15;

/// (median, minimum): on a shared machine the minimum is the batch least disturbed.
fn median(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0])
}

fn main() -> shmpi::Result<()> {
    let calls: usize = std::env::args()
        .skip(1)
        .find(|a| a != "--")
        .map_or(20_000, |s| s.parse().expect("CALLS must be a number"));
    let universe = shmpi::init()?;
    let world = universe.self_comm();
    let mut pairs = Vec::with_capacity(BATCHES);
    let mut barriers = Vec::with_capacity(BATCHES);
    let x = [7u64];
    let mut y = [0u64];
    for _ in 0..BATCHES {
        let t = shmpi::wtime();
        for i in 0..calls {
            world.send_slice(&x, 0, (i & 0xff) as i32)?;
            world.recv_into(&mut y, 0, (i & 0xff) as i32)?;
        }
        pairs.push((shmpi::wtime() - t) / calls as f64 * 1e9);
        let t = shmpi::wtime();
        for _ in 0..calls {
            world.barrier()?;
        }
        barriers.push((shmpi::wtime() - t) / calls as f64 * 1e9);
    }
    if universe.world().rank() == 0 {
        let (p, pmin) = median(pairs);
        let (b, bmin) = median(barriers);
        println!(
            "send+recv to self: {p:.1} ns per pair (min {pmin:.1}); barrier of one: {b:.1} ns per call (min {bmin:.1}); medians of {BATCHES} batches of {calls}"
        );
    }
    Ok(())
}
