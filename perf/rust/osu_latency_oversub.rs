//! osu_latency_oversub: osu_latency between ranks 0 and 1 while every other rank
//! waits in a blocking receive (issue 4's oversubscription target: 8 ranks on 2 cores).
//!
//! Any number of ranks >= 2. Ranks 2..N-1 call `recv(ANY_SOURCE, tag)` for a message
//! that rank 0 sends them only after the last size, so they wait for the whole run
//! (in shmpi they spin, then yield, then sleep on their futex doorbell). Ranks 0 and 1
//! run exactly osu_latency (same sizes, iterations, data check and output). Run it at
//! N = 2 and N = 8 and divide:
//!
//! ```text
//! target/release/shmrun -n 2 target/release/examples/osu_latency_oversub -m 4K
//! target/release/shmrun -n 8 target/release/examples/osu_latency_oversub -m 4K
//! ```
//!
//! (no `--bind-to core` at 8 ranks on 2 cores; use the same binding in both runs.)

#[path = "osu_pt2pt/mod.rs"]
mod osu_pt2pt;

use osu_pt2pt::*;
use shmpi::{ANY_SOURCE, Result};

const DONE_TAG: i32 = 999;

fn main() -> Result<()> {
    let universe = shmpi::init()?;
    let world = universe.world();
    let o = parse_options("osu_latency_oversub", 4 << 20, &[], world.rank());
    if world.size() < 2 {
        eprintln!("osu_latency_oversub needs at least 2 ranks");
        std::process::exit(2);
    }
    let it = Iters::scaled(o.iters, 10_000, 1_000, 1_000, 100);
    let (rank, n) = (world.rank(), world.size());
    if rank >= 2 {
        let done: u32 = world.recv(ANY_SOURCE, DONE_TAG)?;
        if done != 0xd0e {
            eprintln!("osu_latency_oversub: rank {rank} got a wrong end message");
            world.abort(3);
        }
        return Ok(());
    }
    if rank == 0 {
        print_title(&format!(
            "# OSU MPI Latency Test (shmpi perf/rust/osu_latency_oversub.rs): ranks 0-1 \
             ping-pong, {} other rank(s) blocked in recv(ANY_SOURCE), {n} ranks on {} CPUs",
            n - 2,
            std::thread::available_parallelism().map_or(0, |c| c.get())
        ));
        println!("# Size          Latency (us)");
    }
    latency_sizes(&world, "osu_latency_oversub", o.max_size, it)?;
    if rank == 0 {
        for r in 2..n {
            world.send(&0xd0eu32, r, DONE_TAG)?;
        }
    }
    Ok(())
}
