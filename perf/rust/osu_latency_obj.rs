//! osu_latency_obj: object latency, the counterpart of mpi4py's lowercase
//! `comm.send(obj)` / `comm.recv()`: values travel as rkyv archives (serialized on
//! send, validated and deserialized on receive) instead of raw bytes.
//!
//! Exactly 2 ranks, the osu_latency method (one-way = round trip / 2, 10000 + 1000
//! warm-up iterations up to 8 KiB, 1000 + 100 above, `-i` scales them):
//!
//! 1. a small struct `Small { a: i64, b: f64 }` (16 bytes of data) with `send`/`recv`,
//!    timed in alternation with a 16-byte array sent with `send_slice`/`recv_into`
//!    (5 alternating rounds each, median reported in comment lines, with the ratio);
//! 2. a `Vec<f64>` of size/8 elements for each size 8 B ... MAXBYTES (default 4 MiB),
//!    sent with `send` and received with `recv::<Vec<f64>>` (a new `Vec` each time):
//!    the data rows, in the OSU format, `size` being the bytes of f64 data.
//!
//! Every received value is checked against the sent one once per size before timing.
//! Compare the rows with osu_latency's (arrays of the same byte size).
//!
//! `-L`: the rows with loaned objects instead: each side builds the `Vec<f64>`'s archive
//! in its loan pool (`loan_object`) and sends it (`send_loan_object`); the other reads
//! it in place (`recv_loan_object`, validated, its first and last element checked) and
//! drops it. The archive is written once; nothing is copied or deserialized.
//!
//! ```text
//! target/release/shmrun -n 2 --bind-to core target/release/examples/osu_latency_obj -m 64K
//! ```

#[path = "osu_pt2pt/mod.rs"]
mod osu_pt2pt;

use osu_pt2pt::*;
use shmpi::{Communicator, Result};

/// The small struct of the comparison (mpi4py's anchors used a 2-field dict).
#[derive(Debug, Clone, Copy, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(crate = shmpi::rkyv)]
struct Small {
    a: i64,
    b: f64,
}

const TAG: i32 = 5;

/// Ping-pong of a `Small` object: one-way µs on rank 0.
#[inline(never)]
fn pingpong_small(world: &Communicator, iters: u64, skip: u64) -> Result<f64> {
    let mut v = Small { a: 7, b: 2.5 };
    let mut t0 = now();
    for i in 0..iters + skip {
        if i == skip {
            t0 = now();
        }
        if world.rank() == 0 {
            world.send(&v, 1, TAG)?;
            v = world.recv(1, TAG)?;
        } else {
            v = world.recv(0, TAG)?;
            world.send(&v, 0, TAG)?;
        }
    }
    Ok((now() - t0) * 1e6 / (2.0 * iters as f64))
}

/// Ping-pong of a `Vec<f64>` object: one-way µs on rank 0.
#[inline(never)]
fn pingpong_vec(world: &Communicator, v: &mut Vec<f64>, iters: u64, skip: u64) -> Result<f64> {
    let mut t0 = now();
    for i in 0..iters + skip {
        if i == skip {
            t0 = now();
        }
        if world.rank() == 0 {
            world.send(v, 1, TAG)?;
            *v = world.recv(1, TAG)?;
        } else {
            *v = world.recv(0, TAG)?;
            world.send(v, 0, TAG)?;
        }
    }
    Ok((now() - t0) * 1e6 / (2.0 * iters as f64))
}

/// Ping-pong of a `Vec<f64>` as a loaned object: one-way µs on rank 0.
#[inline(never)]
#[allow(clippy::ptr_arg)] // the object sent is the `Vec<f64>` itself, as in `pingpong_vec`
fn pingpong_loaned(world: &Communicator, v: &Vec<f64>, iters: u64, skip: u64) -> Result<f64> {
    let peer = 1 - world.rank();
    let mut t0 = now();
    for i in 0..iters + skip {
        if i == skip {
            t0 = now();
        }
        if world.rank() == 0 {
            world.send_loan_object(world.loan_object(v)?, peer, TAG)?;
        }
        let (got, _) = world.recv_loan_object::<Vec<f64>>(peer, TAG)?;
        if got.len() != v.len() || got.first().map(|x| x.to_native()) != v.first().copied() {
            check_failed(world, "osu_latency_obj -L", v.len() * 8, 0);
        }
        drop(got);
        if world.rank() == 1 {
            world.send_loan_object(world.loan_object(v)?, peer, TAG)?;
        }
    }
    Ok((now() - t0) * 1e6 / (2.0 * iters as f64))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() -> Result<()> {
    let universe = shmpi::init()?;
    let world = universe.world();
    let o = parse_options(
        "osu_latency_obj",
        4 << 20,
        &[(
            'L',
            "rows with loaned objects (loan_object / recv_loan_object)",
        )],
        world.rank(),
    );
    let loaned = o.has('L');
    require_ranks(&world, "osu_latency_obj", 2);
    let it = Iters::scaled(o.iters, 10_000, 1_000, 1_000, 100);
    let rank = world.rank();
    if rank == 0 {
        print_title(
            "# OSU-style Object Latency Test (shmpi perf/rust/osu_latency_obj.rs): \
             rkyv objects with send/recv (mpi4py lowercase send/recv counterpart)",
        );
    }

    // 1. the small struct vs a 16-byte array, alternating.
    let small = Small { a: 7, b: 2.5 };
    if rank == 0 {
        world.send(&small, 1, TAG)?;
        let back: Small = world.recv(1, TAG)?;
        if back != small {
            check_failed(&world, "osu_latency_obj", 16, 0);
        }
    } else {
        let got: Small = world.recv(0, TAG)?;
        if got != small {
            check_failed(&world, "osu_latency_obj", 16, 0);
        }
        world.send(&got, 0, TAG)?;
    }
    let (iters, skip) = it.for_size(16);
    let (mut objs, mut arrs) = (Vec::new(), Vec::new());
    let sbuf = [0x5au8; 16];
    let mut rbuf = [0u8; 16];
    for _ in 0..5 {
        sync_pair(&world)?;
        objs.push(pingpong_small(&world, iters, skip)?);
        sync_pair(&world)?;
        arrs.push(pingpong_loop(&world, &sbuf, &mut rbuf, iters, skip)?);
    }
    if rank == 0 {
        let (o, a) = (median(objs), median(arrs));
        println!(
            "# struct Small {{ a: i64, b: f64 }} as an object: {o:.3} us one-way; \
             16-byte array (send_slice/recv_into): {a:.3} us; object/array = {:.2} \
             (median of 5 alternating runs of {iters} iterations)",
            o / a
        );
        if loaned {
            println!(
                "# rows: Vec<f64> of Size/8 elements as a loaned object \
                 (loan_object / recv_loan_object, read in place)"
            );
        } else {
            println!("# rows: Vec<f64> of Size/8 elements as an object (send / recv::<Vec<f64>>)");
        }
        println!("# Size          Latency (us)");
    }

    // 2. Vec<f64> of every size.
    let mut size = 8;
    while size <= o.max_size {
        let (iters, skip) = it.for_size(size);
        let n = size / 8;
        let sent: Vec<f64> = (0..n).map(|i| i as f64 * 0.5 + size as f64).collect();
        let mut v = sent.clone();
        // check one round trip
        if rank == 0 {
            world.send(&v, 1, TAG)?;
            v = world.recv(1, TAG)?;
        } else {
            v = world.recv(0, TAG)?;
            world.send(&v, 0, TAG)?;
        }
        if let Some(at) = v.iter().zip(&sent).position(|(a, b)| a != b) {
            check_failed(&world, "osu_latency_obj", size, at * 8);
        }
        if v.len() != n {
            check_failed(&world, "osu_latency_obj", size, v.len() * 8);
        }
        sync_pair(&world)?;
        let lat = if loaned {
            pingpong_loaned(&world, &v, iters, skip)?
        } else {
            pingpong_vec(&world, &mut v, iters, skip)?
        };
        if rank == 0 {
            print_latency_row(size, lat);
        }
        size *= 2;
    }
    Ok(())
}
