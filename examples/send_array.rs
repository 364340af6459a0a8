//! Arrays, as with mpi4py's `comm.Send(buf, dest, tag)`: rank 0 sends 0..100 as f64
//! with tag 13 into a buffer rank 1 allocated beforehand (one memcpy each side).
//!
//! ```text
//! shmrun -n 2 --example send_array
//! ```

fn main() -> shmpi::Result<()> {
    let universe = shmpi::init()?;
    let world = universe.world();
    if world.size() < 2 {
        eprintln!("run with at least 2 ranks: shmrun -n 2 --example send_array");
        std::process::exit(2);
    }
    match world.rank() {
        0 => {
            let data: Vec<f64> = (0..100).map(|i| i as f64).collect();
            world.send_slice(&data, 1, 13)?;
        }
        1 => {
            let mut data = vec![0.0f64; 100];
            let status = world.recv_into(&mut data, 0, 13)?;
            assert_eq!(status.count::<f64>(), Some(100));
            assert!(data.iter().enumerate().all(|(i, &x)| x == i as f64));
            println!(
                "rank 1 received {} doubles from rank {}: {:?} ...",
                100,
                status.source(),
                &data[..5]
            );
        }
        _ => {}
    }
    Ok(())
}
