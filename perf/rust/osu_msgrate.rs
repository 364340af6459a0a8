//! osu_msgrate: the cost of one message without waiting (message rate, and the
//! instructions-per-message probe of the hot path).
//!
//! Exactly 2 ranks. For each size 0, 1, 2, 4, ... MAXBYTES (default 1 KiB): rank 0
//! sends a burst of `-i` messages (default 4000, fewer where they would not all fit in
//! 3/4 of the ring at once) while rank 1 sleeps (0.1 s, `-s`: 2 s; any blocking call
//! would drain the ring into the unexpected queue, the wrong path), then rank 1
//! receives them all: the path of a receive whose message is already in the ring
//! (what a ping-pong receive finds on its successful poll). Each side times its own loop, so
//! neither loop ever waits for the other: the figures are the pure per-message work
//! of `send_slice` and of `recv_into` (µs per message, each side, and the sum).
//!
//! The two loops are the out-of-line functions `send_burst` and `recv_burst`, so that
//! a profiler can count exactly their instructions:
//!
//! ```text
//! target/release/shmrun -n 2 valgrind --tool=callgrind --toggle-collect='*send_burst*' \
//!     --toggle-collect='*recv_burst*' target/release/examples/osu_msgrate -m 8 -i 4000
//! ```
//!
//! Output: the OSU format with one row per size, the value being send + receive µs
//! per message; comment lines give the two halves.

#[path = "osu_pt2pt/mod.rs"]
mod osu_pt2pt;

use osu_pt2pt::*;
use shmpi::{Communicator, Result};

const TAG: i32 = 7;

#[inline(never)]
fn send_burst(world: &Communicator, buf: &[u8], n: u64) -> Result<()> {
    for _ in 0..n {
        world.send_slice(buf, 1, TAG)?;
    }
    Ok(())
}

#[inline(never)]
fn recv_burst(world: &Communicator, buf: &mut [u8], n: u64) -> Result<()> {
    for _ in 0..n {
        world.recv_into(buf, 0, TAG)?;
    }
    Ok(())
}

/// Non-blocking sends in windows of 64 scoped requests on one buffer.
#[inline(never)]
fn send_burst_scoped(world: &Communicator, buf: &[u8], n: u64) -> Result<()> {
    let mut left = n;
    while left > 0 {
        let k = left.min(64);
        world.scope(|s| {
            let mut reqs = Vec::with_capacity(64);
            for _ in 0..k {
                reqs.push(s.isend_slice(buf, 1, TAG)?);
            }
            s.wait_all(reqs).map(drop)
        })?;
        left -= k;
    }
    Ok(())
}

/// Non-blocking receives in windows of 64 scoped requests, each into its slice of
/// `bufs` (64 slices of `size` bytes).
#[inline(never)]
fn recv_burst_scoped(world: &Communicator, bufs: &mut [u8], size: usize, n: u64) -> Result<()> {
    let mut left = n;
    while left > 0 {
        let k = left.min(64) as usize;
        world.scope(|s| {
            let mut reqs = Vec::with_capacity(64);
            for b in bufs[..k * size.max(1)].chunks_mut(size.max(1)) {
                reqs.push(s.irecv_into(&mut b[..size], 0, TAG)?);
            }
            s.wait_all(reqs).map(drop)
        })?;
        left -= k as u64;
    }
    Ok(())
}

fn main() -> Result<()> {
    let universe = shmpi::init()?;
    let world = universe.world();
    let o = parse_options(
        "osu_msgrate",
        1024,
        &[
            (
                's',
                "slow mode (under valgrind): the receiver waits 2 s, not 0.1 s, per burst",
            ),
            (
                'w',
                "non-blocking: windows of 64 scoped isend_slice / irecv_into",
            ),
        ],
        world.rank(),
    );
    require_ranks(&world, "osu_msgrate", 2);
    let n = o.iters.unwrap_or(4000);
    let rank = world.rank();
    if rank == 0 {
        print_title(&format!(
            "# shmpi message cost (perf/rust/osu_msgrate.rs): bursts of {n} messages, each side \
             timed alone; value = send + recv us per message"
        ));
        println!("# Size          Latency (us)");
    }
    let scoped = o.has('w');
    let mut buf = PageBuf::new(o.max_size, b'a');
    let mut window = PageBuf::new(if scoped { 64 * o.max_size.max(1) } else { 0 }, 0);
    // Bursts must fit in the ring (SHMPI_RING_BYTES, default 1 MiB at 2 ranks) so that
    // the sender never waits: 3/4 of it, at (size + 16 header) rounded to 16 per record.
    let ring: usize = std::env::var("SHMPI_RING_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 20);
    let pause = std::time::Duration::from_millis(if o.has('s') { 2000 } else { 100 });
    let mut info = [0.0f64; 1];
    for size in sizes(true, o.max_size) {
        let b = &mut buf.bytes_mut()[..size];
        let n = n
            .min((ring * 3 / 4 / (16 + size).next_multiple_of(16)) as u64)
            .max(1);
        sync_pair(&world)?;
        if rank == 0 {
            let t0 = now();
            if scoped {
                send_burst_scoped(&world, b, n)?;
            } else {
                send_burst(&world, b, n)?;
            }
            let send_s = now() - t0;
            info[0] = send_s;
            world.send_slice(&info, 1, TAG + 1)?;
            world.recv_into(&mut info, 1, TAG + 1)?;
            let (send_us, recv_us) = (send_s * 1e6 / n as f64, info[0] * 1e6 / n as f64);
            println!(
                "# size {size}: {n} messages, send {send_us:.4} us, recv {recv_us:.4} us per message"
            );
            print_row(size, send_us + recv_us);
        } else {
            // Any blocking call would drain the ring into the unexpected queue, so the
            // receiver just sleeps while the burst goes in, then receives it all.
            std::thread::sleep(pause);
            let t0 = now();
            if scoped {
                recv_burst_scoped(&world, window.bytes_mut(), size, n)?;
            } else {
                recv_burst(&world, b, n)?;
            }
            let recv_s = now() - t0;
            world.recv_into(&mut info, 0, TAG + 1)?;
            if info[0] > pause.as_secs_f64() * 0.8 {
                eprintln!(
                    "osu_msgrate: size {size}: the burst took {:.3} s to send, the receiver \
                     slept only {:.3} s: its figure may include waiting (use -s)",
                    info[0],
                    pause.as_secs_f64()
                );
            }
            info[0] = recv_s;
            world.send_slice(&info, 0, TAG + 1)?;
        }
        if o.max_size == 0 {
            break;
        }
    }
    Ok(())
}
