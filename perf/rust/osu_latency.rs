//! osu_latency: point-to-point latency, OSU methodology (see `perf/README.md`).
//!
//! Exactly 2 ranks. For each size 0, 1, 2, 4, ... MAXBYTES (default 4 MiB): rank 0
//! does `send_slice` + `recv_into`, rank 1 `recv_into` + `send_slice`, warm-up round
//! trips then timed ones; one-way latency = time / (2 * iters). Defaults: 10000
//! iterations + 1000 warm-up up to 8 KiB, 1000 + 100 above. Before timing each size,
//! one round trip with patterned data is verified. Same output as
//! `perf/c/osu_latency.c`.
//!
//! ```text
//! cargo build --release --bin shmrun --examples
//! target/release/shmrun -n 2 --bind-to core target/release/examples/osu_latency -m 64K
//! ```

#[path = "osu_pt2pt/mod.rs"]
mod osu_pt2pt;

use osu_pt2pt::*;

fn main() -> shmpi::Result<()> {
    let universe = shmpi::init()?;
    let world = universe.world();
    let o = parse_options("osu_latency", 4 << 20, &[], world.rank());
    require_ranks(&world, "osu_latency", 2);
    let it = Iters::scaled(o.iters, 10_000, 1_000, 1_000, 100);
    if world.rank() == 0 {
        print_title("# OSU MPI Latency Test (shmpi perf/rust/osu_latency.rs)");
        println!("# Size          Latency (us)");
    }
    latency_sizes(&world, "osu_latency", o.max_size, it)
}
