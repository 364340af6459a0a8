//! A lookup table shared by every rank without copies: rank 0 allocates the whole
//! table in a shared-memory window (the other ranks contribute empty parts), fills it,
//! and after a fence every rank reads it in place through lent atomics (relaxed loads
//! of the one shared copy) and checks a checksum that rank 0 broadcast. The MPI-3
//! idiom: `MPI_Win_allocate_shared` + `MPI_Win_shared_query` + `MPI_Win_fence`.
//!
//! ```text
//! cargo run --release --bin shmrun -- -n 4 --example shared_table
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use shmpi::Window;

/// Entries of the table: 8 MiB of `u64`, one copy for the whole node.
const ENTRIES: usize = 1 << 20;

fn entry(i: u64) -> u64 {
    // A cheap hash, so that a wrong or missing entry changes the checksum.
    (i ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(0xbf58_476d_1ce4_e5b9) >> 7
}

fn checksum(values: impl Iterator<Item = u64>) -> u64 {
    values.fold(0u64, |acc, v| acc.rotate_left(5) ^ v)
}

fn main() -> shmpi::Result<()> {
    let universe = shmpi::init()?;
    let world = universe.world();
    let rank = world.rank();

    let bytes = if rank == 0 { ENTRIES * 8 } else { 0 };
    let mut win = Window::allocate_shared(&world, bytes)?;
    let mut sum = [0u64];
    if rank == 0 {
        let table: Vec<u64> = (0..ENTRIES as u64).map(entry).collect();
        win.write(&table, 0)?;
        sum[0] = checksum(table.into_iter());
    }
    win.fence()?; // rank 0's writes are visible to every rank after this
    world.bcast_into(&mut sum, 0)?;

    // Every rank reads rank 0's part in place: no copy of the table.
    let (size, _) = win.shared_query(0)?;
    let table = win.atomics::<AtomicU64>(0, 0, size / 8)?;
    let got = checksum(table.iter().map(|a| a.load(Ordering::Relaxed)));
    if got != sum[0] || table.len() != ENTRIES {
        eprintln!("rank {rank}: checksum {got:#x}, expected {:#x}", sum[0]);
        std::process::exit(1);
    }
    println!("rank {rank}: checksum ok ({} entries)", table.len());
    win.fence()?;
    win.free()
}
