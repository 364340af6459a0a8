//! The environment calls (MPI 4.1 chapter 11): initialized and finalized, version,
//! processor name, clock resolution, and an explicit finalize that loses no message.

mod common;

use common::{assert_success, is_child, launch_self};

fn environment_rank() {
    assert!(!shmpi::initialized() && !shmpi::finalized());
    let universe = shmpi::init().unwrap();
    assert!(shmpi::initialized() && !shmpi::finalized());
    let w = universe.world();
    assert_eq!(shmpi::version(), (3, 1));
    assert!(shmpi::library_version().starts_with("shmpi "));
    let tick = shmpi::wtick();
    assert!(tick > 0.0 && tick <= 1e-3, "{tick}");
    let name = shmpi::processor_name();
    assert!(!name.is_empty());
    let names = w.allgather(&name).unwrap();
    assert!(names.iter().all(|n| *n == name), "one machine: {names:?}");
    // Finalize while another handle is alive: refused, and the rank stays in the job.
    let dup = w.dup().unwrap();
    if w.rank() == 0 && w.size() > 1 {
        // Larger than a ring: most of it is still queued when finalize runs.
        drop(dup.isend_vec(vec![7u8; 4 << 20], 1, 1).unwrap());
    } else if w.rank() == 1 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let (v, _) = dup.recv_vec::<u8>(0, 1).unwrap();
        assert!(v.len() == 4 << 20 && v.iter().all(|&b| b == 7));
    }
    drop(w);
    let e = universe.finalize().unwrap_err();
    assert!(e.to_string().contains("still alive"), "{e}");
    assert!(!shmpi::finalized());
    drop(dup);
    assert!(shmpi::finalized());
    assert!(shmpi::init().is_err(), "MPI forbids init after finalize");
}

/// Rank 0's queued 4 MiB send is flushed by finalize even though the receiver only
/// asks for it after rank 0 has started to leave.
#[test]
fn environment_calls_and_finalize_follow_mpi() {
    let name = "environment_calls_and_finalize_follow_mpi";
    if is_child(name) {
        environment_rank();
        return;
    }
    for n in [1, 2, 3] {
        let out = launch_self(name, n, &[]);
        assert_success(&out, &format!("{name} at {n} ranks"));
    }
}

#[test]
fn explicit_finalize_flushes_queued_sends() {
    let name = "explicit_finalize_flushes_queued_sends";
    if is_child(name) {
        let universe = shmpi::init().unwrap();
        let w = universe.world();
        if w.rank() == 0 {
            for i in 0..3u8 {
                drop(w.isend_vec(vec![i; 3 << 20], 1, i as i32).unwrap());
            }
            drop(w);
            universe.finalize().unwrap();
            assert!(shmpi::finalized());
        } else {
            std::thread::sleep(std::time::Duration::from_millis(200));
            for i in 0..3u8 {
                let (v, _) = w.recv_vec::<u8>(0, i as i32).unwrap();
                assert!(v.len() == 3 << 20 && v.iter().all(|&b| b == i));
            }
        }
        return;
    }
    let out = launch_self(name, 2, &[]);
    assert_success(&out, name);
}
