//! mem_probe: the memory a job holds (shmpi's side of `perf/mem/run.sh`; the C
//! program `perf/c/mem_probe.c` is the MPI side).
//!
//! `shmrun -n N mem_probe hello|alltoall|exchange|chatter`:
//! - `hello`: init and a barrier;
//! - `alltoall`: `alltoall_into` of one 8-byte element per pair;
//! - `exchange`: every rank sends one 8-byte message to every other rank
//!   (`send_slice`) and receives one from each (`recv_into`): a ring each way between
//!   every pair;
//! - `chatter`: the exchange 40 000 times (1.2 MiB of small messages each way between
//!   every pair, which the receivers keep up with).
//!
//! Then, after a barrier, every rank reads its Rss and Pss (`/proc/self/smaps_rollup`,
//! kB) and rank 0 prints one line: `N MODE rss_sum_kb pss_sum_kb rss_max_kb
//! segment_kb`, the last being what the shared segment (the memfd) has committed.

use std::os::unix::fs::MetadataExt;

fn rollup() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("Rss:"), field("Pss:"))
}

/// kB committed by the shared segment: the memfd "shmpi" mapped into this process,
/// found in `/proc/self/maps` and measured through `/proc/self/map_files` (its
/// descriptor may be closed once mapped).
fn segment_kb() -> u64 {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    for line in maps.lines() {
        if line.contains("/memfd:shmpi ") {
            let range = line.split_whitespace().next().unwrap_or("");
            if let Ok(m) = std::fs::metadata(format!("/proc/self/map_files/{range}")) {
                return m.blocks() / 2;
            }
        }
    }
    0
}

fn main() -> shmpi::Result<()> {
    let universe = shmpi::init()?;
    let world = universe.world();
    let (rank, n) = (world.rank() as u64, world.size() as u64);
    let mode = std::env::args().nth(1).unwrap_or_else(|| "hello".into());
    match mode.as_str() {
        "hello" => {}
        "alltoall" => {
            let send: Vec<u64> = (0..n).map(|i| rank * n + i).collect();
            let mut recv = vec![0u64; n as usize];
            world.alltoall_into(&send, &mut recv)?;
            for (i, &v) in recv.iter().enumerate() {
                assert_eq!(v, i as u64 * n + rank, "element from rank {i}");
            }
        }
        "exchange" | "chatter" => {
            let rounds = if mode == "chatter" { 40_000 } else { 1 };
            for i in 0..rounds {
                for d in (0..n).filter(|&d| d != rank) {
                    world.send_slice(&[rank * n + d + i], d as i32, 3)?;
                }
                for s in (0..n).filter(|&s| s != rank) {
                    let mut v = [0u64];
                    world.recv_into(&mut v, s as i32, 3)?;
                    assert_eq!(v[0], s * n + rank + i, "message from rank {s}");
                }
            }
        }
        _ => {
            eprintln!("mode must be hello, alltoall, exchange or chatter");
            std::process::exit(2);
        }
    }
    world.barrier()?;
    let (rss, pss) = rollup();
    let mine = [rss, pss];
    let mut all = vec![0u64; 2 * n as usize];
    world.gather_into(&mine, &mut all, 0)?;
    if rank == 0 {
        let rss_sum: u64 = all.iter().step_by(2).sum();
        let pss_sum: u64 = all.iter().skip(1).step_by(2).sum();
        let rss_max = all.iter().step_by(2).max().copied().unwrap_or(0);
        println!("{n} {mode} {rss_sum} {pss_sum} {rss_max} {}", segment_kb());
    }
    world.barrier()?;
    Ok(())
}
