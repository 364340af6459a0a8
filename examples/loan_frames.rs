//! A producer hands frames to consumers without copying them: rank 0 renders each
//! frame straight into a loan from its pool in the shared segment
//! (`world.loan_slice`) and sends the loan (`send_loan`) to the next consumer in
//! turn; each consumer receives a read-only view of the same memory (`recv_loan`),
//! checks it and drops it, which gives the memory back to the producer's pool. Not a
//! byte of a frame is copied; the pool is bounded, so a producer that runs ahead waits
//! for the consumers to drop frames. Built with the `mpi` feature and started by
//! `mpirun`, the same program runs over MPI, where each frame travels as a copy (MPI's
//! ranks share no pool).
//!
//! ```text
//! cargo run --release --bin shmrun -- -n 4 --example loan_frames [FRAMES] [WIDTH] [HEIGHT]
//! ```

use shmpi::ANY_TAG;

const STOP: i32 = 1;
const FRAME: i32 = 0;

fn pixel(frame: u32, i: usize) -> u32 {
    frame.wrapping_mul(2_654_435_761) ^ i as u32
}

fn main() -> shmpi::Result<()> {
    let universe = shmpi::init()?;
    let world = universe.world();
    let (rank, size) = (world.rank(), world.size());
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let (frames, width, height) = (arg(1, 120), arg(2, 640), arg(3, 480));
    if size < 2 {
        println!("loan_frames needs a producer and at least one consumer (-n 2 or more)");
        return Ok(());
    }
    if rank == 0 {
        let t0 = shmpi::wtime();
        for f in 0..frames as u32 {
            let mut frame = world.loan_slice::<u32>(width * height)?;
            for (i, p) in frame.iter_mut().enumerate() {
                *p = pixel(f, i);
            }
            let consumer = 1 + (f as i32 % (size - 1));
            world.send_loan(frame, consumer, FRAME)?;
        }
        for c in 1..size {
            world.send(&(), c, STOP)?;
        }
        let t = shmpi::wtime() - t0;
        println!(
            "producer: {frames} frames of {width}x{height} handed to {} consumers in {:.1} ms",
            size - 1,
            t * 1e3
        );
    } else {
        let mut got = 0;
        loop {
            let st = world.probe(0, ANY_TAG)?;
            if st.tag() == STOP {
                world.recv::<()>(0, STOP)?;
                break;
            }
            let (frame, st) = world.recv_loan::<u32>(0, FRAME)?;
            // This consumer gets frames rank - 1, rank - 1 + consumers, ... in order.
            let expect_f = (rank as u32 - 1) + got * (size as u32 - 1);
            assert_eq!(frame[0], pixel(expect_f, 0), "frames arrive in order");
            assert!(
                frame
                    .iter()
                    .enumerate()
                    .all(|(i, &p)| p == pixel(expect_f, i))
            );
            assert_eq!(st.count::<u32>(), Some(width * height));
            got += 1;
        }
        let expected = (frames as u32 + (size as u32 - 1) - rank as u32) / (size as u32 - 1);
        assert_eq!(got, expected, "every frame sent to this consumer arrived");
        println!("consumer {rank}: {got} frames checked");
    }
    Ok(())
}
