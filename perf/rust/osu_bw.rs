//! osu_bw: unidirectional bandwidth, OSU methodology (see `perf/README.md`).
//!
//! Exactly 2 ranks. For each size 1, 2, 4, ... MAXBYTES (default 4 MiB): rank 0 starts
//! a window of 64 non-blocking sends and waits for them all, then waits for a 4-byte
//! ack; rank 1 posts 64 non-blocking receives, waits for them all, then sends the ack.
//! Defaults: 100 iterations + 10 warm-up up to 8 KiB, 20 + 2 above. Bandwidth =
//! size * 64 * iters / time in MB/s (1 MB = 1e6 bytes). After each size rank 1
//! verifies every received buffer. Same output as `perf/c/osu_bw.c`.
//!
//! # Buffers: what differs from the C program, and why
//!
//! `MPI_Isend` may send one buffer 64 times at once. shmpi's non-blocking calls are
//! leak-safe because they *own* their buffers (`isend_vec` takes a `Vec` and gives it
//! back at completion, `irecv_into` likewise), so one buffer cannot be in 64 requests.
//! Two honest ways remain, both implemented:
//!
//! - **default: one buffer, blocking calls.** Rank 0 calls `send_slice` 64 times on
//!   one buffer, rank 1 `recv_into` 64 times into one buffer, then the ack. In shmpi
//!   this is the same protocol on the wire as a window of non-blocking sends: a send,
//!   blocking or not, completes as soon as its bytes are in the ring and never waits
//!   for the matching receive, so the sender streams the 64 messages back to back
//!   while the receiver drains them (a message that arrives before its receive waits
//!   in the ring, not in a copy). Same memory footprint as the C program (one hot send
//!   buffer, one receive buffer). These are the figures `scripts/compare.sh` reports.
//! - **`-n`: 64 owned buffers, non-blocking calls** (`isend_vec` / `irecv_into`, then
//!   `wait_all`, then the ack): pools of 64 send and 64 receive `Vec`s per size,
//!   allocated and filled once and cycled through the requests (no payload allocation
//!   or copy in the timed loop beyond the ring's two copies). It pays for the API's
//!   bookkeeping per request (its handle, a completion slot, a queue entry for a
//!   posted receive) and for footprint: 64 buffers of 1 MiB are 64 MiB per side, far
//!   out of cache, where the C program reuses one buffer.
//!
//! `-w`: the window on scoped requests, which borrow their buffers: the 64 sends read
//! one buffer and the 64 receives land in one buffer, as the C program's do, through
//! `irecv_cells` (receives into shared cells may overlap); `-w -d` gives each receive
//! its own slice (`irecv_into`), as the C program's `-d`.
//!
//! `-p` is not OSU's method but the same traffic with persistent requests (64
//! `send_init` on rank 0, 64 `recv_init` on rank 1, each with its own buffer,
//! `start_all` and a wait on each per window), as `perf/c/osu_bw.c -p` does it in C.
//!
//! ```text
//! target/release/shmrun -n 2 --bind-to core target/release/examples/osu_bw [-n] -m 4M
//! ```

#[path = "osu_pt2pt/mod.rs"]
mod osu_pt2pt;

use std::cell::Cell;

use osu_pt2pt::*;
use shmpi::{Communicator, Result, wait_all};

const WINDOW: usize = 64;
const TAG: i32 = 100;
const ACK_TAG: i32 = 101;

fn main() -> Result<()> {
    let universe = shmpi::init()?;
    let world = universe.world();
    let o = parse_options(
        "osu_bw",
        4 << 20,
        &[
            (
                'n',
                "non-blocking isend_vec/irecv_into with 64 owned buffers per side",
            ),
            (
                'b',
                "blocking calls on one buffer (the default; accepted for scripts)",
            ),
            (
                'w',
                "scoped isend_slice/irecv_cells: one send buffer, the 64 receives into one \
                 buffer (OSU's C program's footprint)",
            ),
            (
                'd',
                "with -w: irecv_into 64 distinct slices (the C program's -d)",
            ),
            (
                'p',
                "persistent send_init/recv_init, started each window (not OSU's method)",
            ),
        ],
        world.rank(),
    );
    require_ranks(&world, "osu_bw", 2);
    let it = Iters::scaled(o.iters, 100, 10, 20, 2);
    let scoped = o.has('w');
    let persistent = o.has('p');
    let blocking = !o.has('n') && !scoped && !persistent;
    if world.rank() == 0 {
        print_title(&format!(
            "# OSU MPI Bandwidth Test (shmpi perf/rust/osu_bw.rs), window {WINDOW}, {}",
            if scoped && o.has('d') {
                "scoped isend_slice/irecv_into, one send buffer, 64 receive slices"
            } else if scoped {
                "scoped isend_slice/irecv_cells, one send buffer, one receive buffer"
            } else if persistent {
                "persistent send_init/recv_init, 64 buffers, start_all each window"
            } else if blocking {
                "blocking send_slice/recv_into, one buffer"
            } else {
                "isend_vec/irecv_into, 64 owned buffers"
            }
        ));
        println!("# Size      Bandwidth (MB/s)");
    }
    let mut one = PageBuf::new(if blocking { o.max_size } else { 0 }, b'a');
    for size in sizes(false, o.max_size) {
        let (iters, skip) = it.for_size(size);
        let secs = if scoped {
            window_scoped(&world, size, iters, skip, o.has('d'))?
        } else if persistent {
            window_persistent(&world, size, iters, skip)?
        } else if blocking {
            window_blocking(&world, &mut one, size, iters, skip)?
        } else {
            window_nonblocking(&world, size, iters, skip)?
        };
        if world.rank() == 0 {
            print_row(size, (size * WINDOW) as f64 * iters as f64 / secs / 1e6);
        }
    }
    Ok(())
}

/// One size with scoped requests: rank 0's 64 sends read one buffer, rank 1's 64
/// receives land in one buffer of cells, as the C program's do (`irecv_cells`), or
/// with `distinct` in 64 slices of one allocation (`irecv_into`: each borrows its
/// slice mutably). Returns the timed seconds (rank 0).
#[inline(never)]
fn window_scoped(
    world: &Communicator,
    size: usize,
    iters: u64,
    skip: u64,
    distinct: bool,
) -> Result<f64> {
    let mut send = PageBuf::new(if world.rank() == 0 { size } else { 0 }, 0);
    fill_pattern(send.bytes_mut(), size, 0);
    let send = send.bytes();
    let slices = if distinct { WINDOW } else { 1 };
    let mut recv = PageBuf::new(if world.rank() == 1 { size * slices } else { 0 }, 0);
    let mut ack = [0i32; 1];
    sync_pair(world)?;
    let mut t0 = now();
    for i in 0..iters + skip {
        if i == skip {
            t0 = now();
        }
        if world.rank() == 0 {
            world.scope(|s| {
                let mut reqs = Vec::with_capacity(WINDOW);
                for _ in 0..WINDOW {
                    reqs.push(s.isend_slice(send, 1, TAG)?);
                }
                s.wait_all(reqs).map(drop)
            })?;
            world.recv_into(&mut ack, 1, ACK_TAG)?;
        } else if distinct {
            world.scope(|s| {
                let mut reqs = Vec::with_capacity(WINDOW);
                for b in recv.bytes_mut().chunks_mut(size) {
                    reqs.push(s.irecv_into(b, 0, TAG)?);
                }
                s.wait_all(reqs).map(drop)
            })?;
            world.send_slice(&ack, 0, ACK_TAG)?;
        } else {
            let cells = Cell::from_mut(recv.bytes_mut()).as_slice_of_cells();
            world.scope(|s| {
                let mut reqs = Vec::with_capacity(WINDOW);
                for _ in 0..WINDOW {
                    reqs.push(s.irecv_cells(cells, 0, TAG)?);
                }
                s.wait_all(reqs).map(drop)
            })?;
            world.send_slice(&ack, 0, ACK_TAG)?;
        }
    }
    let t = now() - t0;
    if world.rank() == 1 {
        for b in recv.bytes().chunks(size) {
            if let Some(at) = verify_pattern(b, size, 0) {
                check_failed(world, "osu_bw", size, at);
            }
        }
    }
    Ok(t)
}

/// One size with 64 persistent requests per side. Returns the timed seconds (rank 0).
#[inline(never)]
fn window_persistent(world: &Communicator, size: usize, iters: u64, skip: u64) -> Result<f64> {
    let mut reqs = (0..WINDOW)
        .map(|_| {
            let mut v = vec![0u8; size];
            if world.rank() == 0 {
                fill_pattern(&mut v, size, 0);
                world.send_init(v, 1, TAG)
            } else {
                world.recv_init(v, 0, TAG)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let mut ack = [0i32; 1];
    sync_pair(world)?;
    let mut t0 = now();
    for i in 0..iters + skip {
        if i == skip {
            t0 = now();
        }
        shmpi::start_all(&mut reqs)?;
        for r in reqs.iter_mut() {
            r.wait()?;
        }
        if world.rank() == 0 {
            world.recv_into(&mut ack, 1, ACK_TAG)?;
        } else {
            world.send_slice(&ack, 0, ACK_TAG)?;
        }
    }
    let t = now() - t0;
    if world.rank() == 1 {
        for r in &reqs {
            if let Some(at) = verify_pattern(r.buf()?, size, 0) {
                check_failed(world, "osu_bw", size, at);
            }
        }
    }
    Ok(t)
}

/// One size with 64 owned buffers per side. Returns the timed seconds (rank 0).
#[inline(never)]
fn window_nonblocking(world: &Communicator, size: usize, iters: u64, skip: u64) -> Result<f64> {
    let mut bufs: Vec<Vec<u8>> = (0..WINDOW)
        .map(|_| {
            let mut v = vec![0u8; size];
            if world.rank() == 0 {
                fill_pattern(&mut v, size, 0);
            }
            v
        })
        .collect();
    let mut ack = [0i32; 1];
    sync_pair(world)?;
    let mut t0 = now();
    for i in 0..iters + skip {
        if i == skip {
            t0 = now();
        }
        if world.rank() == 0 {
            let mut reqs = Vec::with_capacity(WINDOW);
            for b in bufs.drain(..) {
                reqs.push(world.isend_vec(b, 1, TAG)?);
            }
            bufs = wait_all(reqs)?;
            world.recv_into(&mut ack, 1, ACK_TAG)?;
        } else {
            let mut reqs = Vec::with_capacity(WINDOW);
            for b in bufs.drain(..) {
                reqs.push(world.irecv_into(b, 0, TAG)?);
            }
            bufs = wait_all(reqs)?.into_iter().map(|(b, _)| b).collect();
            world.send_slice(&ack, 0, ACK_TAG)?;
        }
    }
    let t = now() - t0;
    if world.rank() == 1 {
        for b in &bufs {
            if let Some(at) = verify_pattern(b, size, 0) {
                check_failed(world, "osu_bw", size, at);
            }
        }
    }
    Ok(t)
}

/// One size with blocking calls on one buffer. Returns the timed seconds (rank 0).
#[inline(never)]
fn window_blocking(
    world: &Communicator,
    buf: &mut PageBuf,
    size: usize,
    iters: u64,
    skip: u64,
) -> Result<f64> {
    let b = &mut buf.bytes_mut()[..size];
    if world.rank() == 0 {
        fill_pattern(b, size, 0);
    } else {
        b.fill(0);
    }
    let mut ack = [0i32; 1];
    sync_pair(world)?;
    let mut t0 = now();
    for i in 0..iters + skip {
        if i == skip {
            t0 = now();
        }
        if world.rank() == 0 {
            for _ in 0..WINDOW {
                world.send_slice(b, 1, TAG)?;
            }
            world.recv_into(&mut ack, 1, ACK_TAG)?;
        } else {
            for _ in 0..WINDOW {
                world.recv_into(b, 0, TAG)?;
            }
            world.send_slice(&ack, 0, ACK_TAG)?;
        }
    }
    let t = now() - t0;
    if world.rank() == 1 {
        if let Some(at) = verify_pattern(b, size, 0) {
            check_failed(world, "osu_bw", size, at);
        }
    }
    Ok(t)
}
