//! Rank branching: rank 0 coordinates, rank 1 computes squares, the rest report in.
//!
//! ```text
//! shmrun -n 4 --example ranks
//! ```

use shmpi::ANY_SOURCE;

fn main() -> shmpi::Result<()> {
    let universe = shmpi::init()?;
    let world = universe.world();
    let (rank, size) = (world.rank(), world.size());
    match rank {
        0 => {
            println!("rank 0: coordinating {size} ranks");
            if size > 1 {
                world.send_slice(&[1u64, 2, 3, 4], 1, 1)?;
                let (squares, _) = world.recv_vec::<u64>(1, 2)?;
                assert_eq!(squares, [1, 4, 9, 16]);
                println!("rank 0: rank 1 squared 1..4 into {squares:?}");
            }
            for _ in 2..size {
                let (msg, st) = world.recv_with_status::<String>(ANY_SOURCE, 3)?;
                assert_eq!(msg, format!("rank {} reporting", st.source()));
                println!("rank 0: got \"{msg}\"");
            }
        }
        1 => {
            let (xs, _) = world.recv_vec::<u64>(0, 1)?;
            let squares: Vec<u64> = xs.iter().map(|x| x * x).collect();
            world.send_slice(&squares, 0, 2)?;
        }
        _ => world.send(&format!("rank {rank} reporting"), 0, 3)?,
    }
    Ok(())
}
