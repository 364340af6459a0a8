//! `MPI_Bcast` latency, OSU osu_bcast methodology, shmpi's side of
//! `perf/c/osu_bcast.c` (same options, iteration rules and output format; see
//! `perf/README.md`).
//!
//! ```text
//! cargo build --release --bin shmrun --examples
//! target/release/shmrun -n 8 target/release/examples/osu_bcast -m 1M
//! ```
//!
//! For each size 1, 2, 4, ... MAXBYTES bytes (default 1 MiB): `bcast_into` of that
//! many bytes from root 0. 1000 timed calls + 200 warm-up up to 8 KiB, 100 + 10
//! above, bounded by a time budget per size (`-t`, default 1 s, for the calls and the
//! barriers between them). As in OSU, each call is timed alone and followed by an
//! untimed barrier, so that the root cannot run ahead of its receivers. Reported: the average over ranks of each rank's average
//! time per call, in microseconds. The first call of every size is checked byte by
//! byte on every rank.

#[path = "osu_coll/mod.rs"]
mod osu_coll;

use osu_coll::*;

/// The byte the root sends at offset `i` of a `size`-byte broadcast.
fn pattern(i: usize, size: usize) -> u8 {
    (i.wrapping_mul(7).wrapping_add(size) & 0xff) as u8
}

fn main() {
    let (_u, w, o) = start(
        "osu_bcast",
        Opts {
            max: 1 << 20,
            iters: None,
            budget: 1.0,
        },
    );
    let (rank, n) = (w.rank(), w.size());
    let (small, skip_small, large, skip_large) = counts(o.iters);
    let max = o.max.max(1);
    let mut buf = vec![0u8; max];
    if rank == 0 {
        println!("# OSU MPI Broadcast Latency Test (shmpi perf/rust/osu_bcast.rs)");
        println!("# library: shmpi {}", env!("CARGO_PKG_VERSION"));
        println!(
            "# ranks: {n}, datatype: u8, root: 0, budget: {:.2} s per size",
            o.budget
        );
        println!("# Size       Avg Latency(us)");
    }
    let mut size = 1;
    while size <= max {
        let (mut iters, mut skip) = if size <= LARGE {
            (small, skip_small)
        } else {
            (large, skip_large)
        };
        // Correctness: one call, the receivers' buffers cleared first.
        for (i, b) in buf[..size].iter_mut().enumerate() {
            *b = if rank == 0 { pattern(i, size) } else { 0 };
        }
        w.bcast_into(&mut buf[..size], 0).unwrap();
        if let Some(i) = (0..size).find(|&i| buf[i] != pattern(i, size)) {
            eprintln!("osu_bcast: data check FAILED at size {size}, byte {i} (rank {rank})");
            w.abort(3);
        }
        w.barrier().unwrap();
        // The budget bounds whole iterations, barrier included (an MPI that busy-polls
        // on oversubscribed cores takes milliseconds per barrier).
        budget_iters(
            &w,
            &mut || {
                w.bcast_into(&mut buf[..size], 0).unwrap();
                w.barrier().unwrap();
            },
            o.budget,
            &mut iters,
            &mut skip,
        );
        let mut op = || w.bcast_into(&mut buf[..size], 0).unwrap();
        let avg = time_separated(&w, &mut op, iters, skip);
        if rank == 0 {
            println!("{size:<10}{avg:>18.2}");
        }
        size *= 2;
    }
}
