//! Every rank introduces itself, then rank 0 checks that every rank reported in.
//!
//! ```text
//! cargo run --release --bin shmrun -- -n 4 --example hello
//! ```

fn main() -> shmpi::Result<()> {
    let universe = shmpi::init()?;
    let world = universe.world();
    let (rank, size) = (world.rank(), world.size());
    println!("I am rank {rank} in group of {size} processes");

    // Check: every rank sends its rank to rank 0, which sees each exactly once.
    if rank == 0 {
        let mut seen = vec![false; size as usize];
        seen[0] = true;
        for _ in 1..size {
            let (r, status): (i32, _) = world.recv_with_status(shmpi::ANY_SOURCE, 0)?;
            assert_eq!(r, status.source(), "a rank reported someone else's rank");
            assert!(!seen[r as usize], "rank {r} reported twice");
            seen[r as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    } else {
        world.send(&rank, 0, 0)?;
    }
    Ok(())
}
