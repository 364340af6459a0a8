//! osu_loan: latency and bandwidth of loaned (zero-copy) messages, OSU methodology and
//! output, to put beside `osu_latency` and `osu_bw` (which copy every byte twice).
//!
//! Exactly 2 ranks. `-l` (default): one-way latency, a ping-pong in which each side
//! takes a loan (`loan_slice`), writes its first and last byte, sends it
//! (`send_loan`); the other receives the view (`recv_loan`), reads those bytes and
//! drops it; sizes 8 B (`-m` max, default 4 MiB). `-b`: bandwidth, rank 0 sends a
//! window of 64 loans (writing the first and last byte of each), rank 1 receives and
//! drops each view, then a 4-byte ack; bytes of the loans count. Iterations as
//! `osu_latency` / `osu_bw`. The sender does not fill the payload: a producer that
//! writes its data into the loan writes it once, where a copying send writes it
//! into its buffer and then again into the ring (and the receiver a third time).
//!
//! ```text
//! target/release/shmrun -n 2 --bind-to core target/release/examples/osu_loan [-l|-b] -m 4M
//! ```

#[path = "osu_pt2pt/mod.rs"]
mod osu_pt2pt;

use osu_pt2pt::*;
use shmpi::{Communicator, Result};

const WINDOW: usize = 64;
const TAG: i32 = 100;
const ACK_TAG: i32 = 101;

fn send(world: &Communicator, size: usize, dest: i32, k: u8) -> Result<()> {
    let mut l = world.loan_slice::<u8>(size)?;
    if size > 0 {
        l[0] = k;
        l[size - 1] = k;
    }
    world.send_loan(l, dest, TAG)
}

fn recv(world: &Communicator, size: usize, source: i32, k: u8) -> Result<()> {
    let (v, _) = world.recv_loan::<u8>(source, TAG)?;
    if size > 0 && (v[0] != k || v[size - 1] != k) {
        check_failed(world, "osu_loan", size, 0);
    }
    Ok(())
}

fn main() -> Result<()> {
    let universe = shmpi::init()?;
    let world = universe.world();
    let o = parse_options(
        "osu_loan",
        4 << 20,
        &[
            ('l', "one-way latency (the default)"),
            ('b', "bandwidth, window of 64"),
        ],
        world.rank(),
    );
    require_ranks(&world, "osu_loan", 2);
    let bw = o.has('b');
    let me = world.rank();
    if me == 0 {
        if bw {
            print_title(&format!(
                "# OSU MPI Bandwidth Test, loans (shmpi perf/rust/osu_loan.rs -b), window {WINDOW}"
            ));
            println!("# Size      Bandwidth (MB/s)");
        } else {
            print_title("# OSU MPI Latency Test, loans (shmpi perf/rust/osu_loan.rs)");
            println!("# Size          Latency (us)");
        }
    }
    let it = if bw {
        Iters::scaled(o.iters, 100, 10, 20, 2)
    } else {
        Iters::scaled(o.iters, 10000, 1000, 1000, 100)
    };
    let mut size = 8;
    while size <= o.max_size {
        let (iters, skip) = it.for_size(size);
        sync_pair(&world)?;
        let mut t0 = 0.0;
        for i in 0..iters + skip {
            if i == skip {
                t0 = shmpi::wtime();
            }
            let k = i as u8;
            if bw {
                if me == 0 {
                    for _ in 0..WINDOW {
                        send(&world, size, 1, k)?;
                    }
                    world.recv_into(&mut [0u8; 4], 1, ACK_TAG)?;
                } else {
                    for _ in 0..WINDOW {
                        recv(&world, size, 0, k)?;
                    }
                    world.send_slice(&[0u8; 4], 0, ACK_TAG)?;
                }
            } else if me == 0 {
                send(&world, size, 1, k)?;
                recv(&world, size, 1, k)?;
            } else {
                recv(&world, size, 0, k)?;
                send(&world, size, 0, k)?;
            }
        }
        let t = shmpi::wtime() - t0;
        if me == 0 {
            if bw {
                print_row(size, (size * WINDOW) as f64 * iters as f64 / t / 1e6);
            } else {
                print_latency_row(size, t * 1e6 / (2.0 * iters as f64));
            }
        }
        size *= 2;
    }
    Ok(())
}
