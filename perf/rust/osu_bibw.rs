//! osu_bibw: bidirectional bandwidth, OSU methodology (see `perf/README.md`).
//!
//! Exactly 2 ranks. For each size 1, 2, 4, ... MAXBYTES (default 4 MiB) both ranks
//! post a window of 64 non-blocking receives, then 64 non-blocking sends to each
//! other, then wait for all 128. Defaults: 100 iterations + 10 warm-up up to 8 KiB,
//! 20 + 2 above. Bandwidth = 2 * size * 64 * iters / time (both directions), MB/s
//! (1 MB = 1e6 bytes), timed on rank 0. After each size both ranks verify every
//! received buffer. Same output as `perf/c/osu_bibw.c`.
//!
//! Buffers: as in `osu_bw.rs`, shmpi's non-blocking calls own their buffers, so each
//! rank keeps pools of 64 send and 64 receive `Vec`s per size, allocated and filled
//! once and cycled through `isend_vec`/`irecv_into` and `wait_all` (the C program uses
//! one send and one receive buffer). No payload allocation or copy in the timed loop
//! beyond the ring's two copies.
//!
//! `-s`: not the OSU method but the same traffic with one buffer each way, as a halo
//! exchange does it: a window of 64 blocking `sendrecv_slice` calls (each rank sends
//! one message and receives the other's at once), then the same count of bytes.
//!
//! `-w`: OSU's window on scoped requests, which borrow their buffers: the 64 sends read
//! one buffer and the 64 receives land in one buffer, as the C program's do, through
//! `irecv_cells` (receives into shared cells may overlap; the buffer holds the last
//! message). `-w -d`: each receive into its own slice (`irecv_into`), as the C
//! program's `-d`.
//!
//! `-p`: not the OSU method but the same traffic with persistent requests, MPI's way
//! of repeating one window (`MPI_Send_init`/`MPI_Recv_init`, `MPI_Startall`): 64
//! `send_init` and 64 `recv_init` per size, each with its own buffer, started with
//! `start_all` and waited for each window. `perf/c/osu_bibw.c -p` is the same program
//! in C.
//!
//! ```text
//! target/release/shmrun -n 2 --bind-to core target/release/examples/osu_bibw -m 4M
//! ```

#[path = "osu_pt2pt/mod.rs"]
mod osu_pt2pt;

use std::cell::Cell;

use osu_pt2pt::*;
use shmpi::{Result, Scope, ScopedRequest, wait_all};

const WINDOW: usize = 64;
const TAG: i32 = 100;

fn main() -> Result<()> {
    let universe = shmpi::init()?;
    let world = universe.world();
    let o = parse_options(
        "osu_bibw",
        4 << 20,
        &[
            (
                's',
                "sendrecv_slice with one buffer each way (not the OSU window)",
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
    let sendrecv = o.has('s');
    let scoped = o.has('w');
    let distinct = o.has('d');
    let persistent = o.has('p');
    require_ranks(&world, "osu_bibw", 2);
    let it = Iters::scaled(o.iters, 100, 10, 20, 2);
    let rank = world.rank() as usize;
    let peer = 1 - world.rank();
    if rank == 0 {
        let how = if sendrecv {
            "sendrecv_slice, one buffer each way"
        } else if scoped && distinct {
            "scoped isend_slice/irecv_into, one send buffer, 64 receive slices each way"
        } else if scoped {
            "scoped isend_slice/irecv_cells, one send buffer and one receive buffer each way"
        } else if persistent {
            "persistent send_init/recv_init, 64 buffers each way, start_all each window"
        } else {
            "isend_vec/irecv_into, 64 owned buffers each way"
        };
        print_title(&format!(
            "# OSU MPI Bi-Directional Bandwidth Test (shmpi perf/rust/osu_bibw.rs), window {WINDOW}, \
             {how}"
        ));
        println!("# Size      Bandwidth (MB/s)");
    }
    for size in sizes(false, o.max_size) {
        let (iters, skip) = it.for_size(size);
        if sendrecv {
            let mut sbuf = PageBuf::new(size, 0);
            fill_pattern(sbuf.bytes_mut(), size, rank);
            let mut rbuf = PageBuf::new(size, 0);
            sync_pair(&world)?;
            let mut t0 = now();
            for i in 0..iters + skip {
                if i == skip {
                    t0 = now();
                }
                for _ in 0..WINDOW {
                    world.sendrecv_slice(sbuf.bytes(), peer, TAG, rbuf.bytes_mut(), peer, TAG)?;
                }
            }
            let t = now() - t0;
            if rank == 0 {
                print_row(size, 2.0 * (size * WINDOW) as f64 * iters as f64 / t / 1e6);
            }
            if let Some(at) = verify_pattern(rbuf.bytes(), size, 1 - rank) {
                check_failed(&world, "osu_bibw", size, at);
            }
            continue;
        }
        if scoped {
            let mut sbuf = PageBuf::new(size, 0);
            fill_pattern(sbuf.bytes_mut(), size, rank);
            let sbuf = sbuf.bytes();
            let mut rbuf = PageBuf::new(size * if distinct { WINDOW } else { 1 }, 0);
            sync_pair(&world)?;
            let mut t0 = now();
            for i in 0..iters + skip {
                if i == skip {
                    t0 = now();
                }
                if distinct {
                    world.scope(|s| {
                        let mut rreqs = Vec::with_capacity(WINDOW);
                        for b in rbuf.bytes_mut().chunks_mut(size) {
                            rreqs.push(s.irecv_into(b, peer, TAG)?);
                        }
                        send_and_wait(s, sbuf, peer, rreqs)
                    })?;
                } else {
                    let cells = Cell::from_mut(rbuf.bytes_mut()).as_slice_of_cells();
                    world.scope(|s| {
                        let mut rreqs = Vec::with_capacity(WINDOW);
                        for _ in 0..WINDOW {
                            rreqs.push(s.irecv_cells(cells, peer, TAG)?);
                        }
                        send_and_wait(s, sbuf, peer, rreqs)
                    })?;
                }
            }
            let t = now() - t0;
            if rank == 0 {
                print_row(size, 2.0 * (size * WINDOW) as f64 * iters as f64 / t / 1e6);
            }
            for b in rbuf.bytes().chunks(size) {
                if let Some(at) = verify_pattern(b, size, 1 - rank) {
                    check_failed(&world, "osu_bibw", size, at);
                }
            }
            continue;
        }
        if persistent {
            let mut sreqs = (0..WINDOW)
                .map(|_| {
                    let mut v = vec![0u8; size];
                    fill_pattern(&mut v, size, rank);
                    world.send_init(v, peer, TAG)
                })
                .collect::<Result<Vec<_>>>()?;
            let mut rreqs = (0..WINDOW)
                .map(|_| world.recv_init(vec![0u8; size], peer, TAG))
                .collect::<Result<Vec<_>>>()?;
            sync_pair(&world)?;
            let mut t0 = now();
            for i in 0..iters + skip {
                if i == skip {
                    t0 = now();
                }
                shmpi::start_all(&mut rreqs)?;
                shmpi::start_all(&mut sreqs)?;
                for r in rreqs.iter_mut().chain(sreqs.iter_mut()) {
                    r.wait()?;
                }
            }
            let t = now() - t0;
            if rank == 0 {
                print_row(size, 2.0 * (size * WINDOW) as f64 * iters as f64 / t / 1e6);
            }
            for r in &rreqs {
                if let Some(at) = verify_pattern(r.buf()?, size, 1 - rank) {
                    check_failed(&world, "osu_bibw", size, at);
                }
            }
            continue;
        }
        let mut sbufs: Vec<Vec<u8>> = (0..WINDOW)
            .map(|_| {
                let mut v = vec![0u8; size];
                fill_pattern(&mut v, size, rank);
                v
            })
            .collect();
        let mut rbufs: Vec<Vec<u8>> = (0..WINDOW).map(|_| vec![0u8; size]).collect();
        sync_pair(&world)?;
        let mut t0 = now();
        for i in 0..iters + skip {
            if i == skip {
                t0 = now();
            }
            let mut rreqs = Vec::with_capacity(WINDOW);
            for b in rbufs.drain(..) {
                rreqs.push(world.irecv_into(b, peer, TAG)?);
            }
            let mut sreqs = Vec::with_capacity(WINDOW);
            for b in sbufs.drain(..) {
                sreqs.push(world.isend_vec(b, peer, TAG)?);
            }
            rbufs = wait_all(rreqs)?.into_iter().map(|(b, _)| b).collect();
            sbufs = wait_all(sreqs)?;
        }
        let t = now() - t0;
        if rank == 0 {
            print_row(size, 2.0 * (size * WINDOW) as f64 * iters as f64 / t / 1e6);
        }
        for b in &rbufs {
            if let Some(at) = verify_pattern(b, size, 1 - rank) {
                check_failed(&world, "osu_bibw", size, at);
            }
        }
    }
    Ok(())
}

/// The rest of a scoped window once its receives are posted: 64 sends of `sbuf` to
/// `peer`, then a wait for the receives and for the sends.
fn send_and_wait<'s, R>(
    s: &Scope<'s, '_>,
    sbuf: &'s [u8],
    peer: i32,
    rreqs: Vec<ScopedRequest<'s, R>>,
) -> Result<()> {
    let mut sreqs = Vec::with_capacity(WINDOW);
    for _ in 0..WINDOW {
        sreqs.push(s.isend_slice(sbuf, peer, TAG)?);
    }
    s.wait_all(rreqs)?;
    s.wait_all(sreqs).map(drop)
}
