//! Ping-pong: ranks 0 and 1 bounce a message of a given size and rank 0 prints the
//! one-way latency (round trip / 2), as osu_latency does.
//!
//! ```text
//! shmrun -n 2 --bind-to core --example pingpong -- [SIZE_BYTES] [ITERATIONS]
//! ```

fn main() -> shmpi::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--").collect();
    let size: usize = args
        .first()
        .map_or(8, |s| s.parse().expect("SIZE_BYTES must be a number"));
    let iters: usize = args
        .get(1)
        .map_or(100_000, |s| s.parse().expect("ITERATIONS must be a number"));
    let universe = shmpi::init()?;
    let world = universe.world();
    if world.size() < 2 {
        eprintln!("run with 2 ranks: shmrun -n 2 --example pingpong");
        std::process::exit(2);
    }
    let rank = world.rank();
    let mut buf: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let warmup = iters / 10;
    let mut start = 0.0;
    for i in 0..warmup + iters {
        if i == warmup {
            start = shmpi::wtime();
        }
        match rank {
            0 => {
                world.send_slice(&buf, 1, 1)?;
                world.recv_into(&mut buf, 1, 1)?;
            }
            1 => {
                world.recv_into(&mut buf, 0, 1)?;
                world.send_slice(&buf, 0, 1)?;
            }
            _ => break,
        }
    }
    let elapsed = shmpi::wtime() - start;
    assert!(
        buf.iter().enumerate().all(|(i, &b)| b == i as u8),
        "payload corrupted"
    );
    if rank == 0 {
        let one_way_us = elapsed / iters as f64 / 2.0 * 1e6;
        println!("{size} bytes: {one_way_us:.3} us one-way ({iters} round trips)");
    }
    Ok(())
}
