//! Scoped requests (`Communicator::scope`) between real processes, each from the rule
//! in `src/scope.rs`'s module doc: requests borrow their buffers (one send buffer for a
//! whole window, receives in place), the scope does not return while the runtime still
//! reads or writes a borrowed buffer (whatever became of the handles), a scope that
//! fails or panics cancels its unmatched receives and lets its sends finish from a
//! copy, and a peer that leaves fails the scope instead of hanging it.

mod common;

use std::time::Duration;

use common::run_ranks;
use shmpi::{ANY_SOURCE, Communicator, Error, Status};

/// The byte at `i` of what rank `r` sends in round `k`.
fn pattern(r: i32, k: usize, i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (r as usize * 7 + k)) as u8
}

fn filled(r: i32, k: usize, n: usize) -> Vec<u8> {
    (0..n).map(|i| pattern(r, k, i)).collect()
}

/// What a test rank does with a large send's buffer once its scope has returned: the
/// runtime must not read it any more, so the receiver must still get the original.
fn scribble(buf: &mut [u8]) {
    buf.fill(0xEE);
}

#[test]
fn a_window_of_sends_reads_one_buffer_and_receives_land_in_place() {
    run_ranks(
        "a_window_of_sends_reads_one_buffer_and_receives_land_in_place",
        5,
        |w: &Communicator| {
            let (me, n) = (w.rank(), w.size());
            let (next, prev) = ((me + 1) % n, (me + n - 1) % n);
            const WINDOW: usize = 64;
            for (k, size) in [1usize, 8, 4096, 40 << 10, 300 << 10]
                .into_iter()
                .enumerate()
            {
                let window = if size > 64 << 10 { 8 } else { WINDOW };
                let send = filled(me, k, size);
                let mut recv = vec![0u8; size * window];
                w.scope(|s| {
                    let mut rreqs = Vec::new();
                    for (t, chunk) in recv.chunks_mut(size).enumerate() {
                        rreqs.push(s.irecv_into(chunk, prev, t as i32)?);
                    }
                    let sreqs = (0..window)
                        .map(|t| s.isend_slice(&send, next, t as i32))
                        .collect::<shmpi::Result<Vec<_>>>()?;
                    for (t, (got, st)) in s.wait_all(rreqs)?.into_iter().enumerate() {
                        assert_eq!((st.source(), st.tag(), st.len()), (prev, t as i32, size));
                        assert_eq!(got.len(), size);
                        got[0] = !got[0]; // writable again once waited for
                    }
                    s.wait_all(sreqs)?;
                    Ok(())
                })
                .unwrap();
                let want = filled(prev, k, size);
                for (t, chunk) in recv.chunks(size).enumerate() {
                    assert_eq!(chunk[0], !want[0], "size {size}, message {t}");
                    assert_eq!(chunk[1..], want[1..], "size {size}, message {t}");
                }
            }
        },
    );
}

/// Handles dropped or forgotten inside the scope: the scope's end waits for the
/// receive (the buffer holds the message afterwards) and for a send larger than the
/// ring (the buffer is not read after the scope returns).
#[test]
fn requests_left_pending_complete_before_the_scope_returns() {
    run_ranks(
        "requests_left_pending_complete_before_the_scope_returns",
        2,
        |w: &Communicator| {
            const BIG: usize = 5 << 20; // larger than a ring: it streams
            if w.rank() == 0 {
                let mut a = [0u32; 4];
                let mut b = [0u32; 4];
                let mut big = filled(0, 1, BIG);
                w.scope(|s| {
                    drop(s.irecv_into(&mut a, 1, 1)?);
                    std::mem::forget(s.irecv_into(&mut b, 1, 2)?);
                    drop(s.isend_slice(&big, 1, 3)?);
                    Ok(())
                })
                .unwrap();
                assert_eq!((a, b), ([1; 4], [2; 4]));
                scribble(&mut big);
                w.barrier().unwrap();
            } else {
                std::thread::sleep(Duration::from_millis(100));
                w.send_slice(&[1u32; 4], 0, 1).unwrap();
                w.send_slice(&[2u32; 4], 0, 2).unwrap();
                let (got, _) = w.recv_vec::<u8>(0, 3).unwrap();
                assert!(
                    got == filled(0, 1, BIG),
                    "the streamed send changed on the way"
                );
                w.barrier().unwrap();
            }
        },
    );
}

/// A scope that ends with an error, or by a panic, cancels its receives that no
/// message reached (their buffers stay untouched, the message goes to the next
/// receive) and lets its sends complete from a copy, so the buffers are free at once.
#[test]
fn a_scope_that_fails_or_panics_cancels_its_receives_and_finishes_its_sends() {
    run_ranks(
        "a_scope_that_fails_or_panics_cancels_its_receives_and_finishes_its_sends",
        2,
        |w: &Communicator| {
            const BIG: usize = 4 << 20;
            for (round, panics) in [false, true].into_iter().enumerate() {
                let tag = 10 * round as i32;
                if w.rank() == 0 {
                    let mut slot = [0u64; 8];
                    let mut big = filled(0, round, BIG);
                    let body = || {
                        w.scope(|s| {
                            let _r = s.irecv_into(&mut slot, 1, tag + 1)?;
                            let _s = s.isend_slice(&big, 1, tag + 2)?;
                            if panics {
                                panic!("on purpose, in a scope");
                            }
                            Err::<(), _>(Error::Usage("on purpose".into()))
                        })
                    };
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
                    match (panics, r) {
                        (true, Err(_)) => {}
                        (false, Ok(Err(Error::Usage(m)))) => assert_eq!(m, "on purpose"),
                        (_, other) => panic!("the scope ended with {other:?}"),
                    }
                    scribble(&mut big);
                    w.barrier().unwrap();
                    let (v, st) = w.recv_vec::<u64>(1, tag + 1).unwrap();
                    assert_eq!((v, st.source()), (vec![7; 8], 1));
                    assert_eq!(slot, [0; 8], "a cancelled receive's buffer was written");
                } else {
                    // Asleep, so that the big send cannot be all in the ring when the
                    // scope ends.
                    std::thread::sleep(Duration::from_millis(150));
                    w.barrier().unwrap();
                    w.send_slice(&[7u64; 8], 0, tag + 1).unwrap();
                    let (got, _) = w.recv_vec::<u8>(0, tag + 2).unwrap();
                    assert!(
                        got == filled(0, round, BIG),
                        "round {round}: the send changed"
                    );
                }
            }
        },
    );
}

/// A scope whose closure returned `Ok` with a receive from a rank that then leaves
/// without sending fails with `PeerFailed` naming that rank, instead of hanging, and
/// the receive as the program started it.
#[test]
fn a_scope_waiting_on_a_rank_that_leaves_fails_with_peer_failed() {
    run_ranks(
        "a_scope_waiting_on_a_rank_that_leaves_fails_with_peer_failed",
        3,
        |w: &Communicator| {
            if w.rank() == 0 {
                let mut from1 = [0u8; 16];
                let mut from2 = [0u8; 16];
                let r = w.scope(|s| {
                    drop(s.irecv_into(&mut from2, 2, 0)?);
                    drop(s.irecv_into(&mut from1, 1, 6)?);
                    Ok(())
                });
                match r {
                    Err(e @ Error::PeerFailed { rank: 1, .. }) => {
                        let msg = e.to_string();
                        assert!(msg.contains("irecv_into(source=1, tag=6)"), "{msg}");
                    }
                    other => panic!("expected PeerFailed from rank 1, got {other:?}"),
                }
                assert_eq!(from2, [2; 16]);
                assert_eq!(from1, [0; 16]);
            } else if w.rank() == 2 {
                w.send_slice(&[2u8; 16], 0, 0).unwrap();
            }
            // Rank 1 leaves without sending.
        },
    );
}

/// The point-to-point rules hold for scoped receives: a message too long fails the
/// wait with `Truncated` and stays queued, a cancelled receive gives its buffer back
/// untouched, wildcards and order are those of every receive, and scoped requests mix
/// with others in `wait_any_of`.
#[test]
fn scoped_receives_follow_the_matching_rules() {
    run_ranks(
        "scoped_receives_follow_the_matching_rules",
        4,
        |w: &Communicator| {
            let me = w.rank();
            if me == 0 {
                let mut small = [0u16; 2];
                let mut spare = [9u16; 3];
                let mut any: Vec<[i32; 2]> = vec![[0; 2]; 6];
                w.scope(|s| {
                    let r = s.irecv_into(&mut small, 1, 0)?;
                    match r.wait() {
                        Err(Error::Truncated { .. }) => {}
                        other => panic!("expected Truncated, got {other:?}"),
                    }
                    let mut c = s.irecv_into(&mut spare, 1, 99)?;
                    assert!(c.cancel()?);
                    let (back, st) = c.wait()?;
                    assert!(st.is_cancelled());
                    assert_eq!(back, [9, 9, 9]);
                    let mut reqs = Vec::new();
                    for slot in any.iter_mut() {
                        reqs.push(s.irecv_into(slot, ANY_SOURCE, 5)?);
                    }
                    let mut owned = w.irecv::<u8>(3, 6)?;
                    let mut first = reqs.remove(0);
                    let i = shmpi::wait_any_of(&mut [&mut first, &mut owned])?;
                    assert!(i <= 1);
                    let statuses: Vec<Status> = std::iter::once(first.wait()?)
                        .chain(s.wait_all(reqs)?)
                        .map(|(_, st)| st)
                        .collect();
                    assert_eq!(owned.wait()?.0, 42);
                    // Each sender's two messages arrive in the order it sent them.
                    for src in 1..4 {
                        let seq: Vec<usize> = statuses
                            .iter()
                            .enumerate()
                            .filter(|(_, st)| st.source() == src)
                            .map(|(i, _)| i)
                            .collect();
                        assert_eq!(seq.len(), 2, "two messages from rank {src}");
                    }
                    Ok(())
                })
                .unwrap();
                let (v, _) = w.recv_vec::<u16>(1, 0).unwrap();
                assert_eq!(v, [1, 2, 3, 4], "the truncated message stayed queued");
                for (i, slot) in any.iter().enumerate() {
                    assert!((1..4).contains(&slot[0]), "slot {i}: {slot:?}");
                }
                for src in 1..4 {
                    let order: Vec<i32> =
                        any.iter().filter(|m| m[0] == src).map(|m| m[1]).collect();
                    assert_eq!(order, [0, 1], "rank {src}'s messages overtook each other");
                }
            } else {
                if me == 1 {
                    w.send_slice(&[1u16, 2, 3, 4], 0, 0).unwrap();
                }
                if me == 3 {
                    w.send(&42u8, 0, 6).unwrap();
                }
                for k in 0..2 {
                    w.send_slice(&[me, k], 0, 5).unwrap();
                }
            }
        },
    );
}

/// `isend_buf`/`irecv_buf` take any owner of plain data: one `Arc<[T]>` goes out in
/// many sends at once and comes back from each, a receive lands in a boxed slice, and
/// an owner whose request was dropped is released once its operation ends (the
/// `Arc`'s count comes back to one).
#[test]
fn owned_buffers_go_out_many_times_and_come_back() {
    run_ranks(
        "owned_buffers_go_out_many_times_and_come_back",
        4,
        |w: &Communicator| {
            use std::sync::Arc;
            let (me, n) = (w.rank(), w.size());
            let (next, prev) = ((me + 1) % n, (me + n - 1) % n);
            for (k, size) in [16usize, 3 << 20].into_iter().enumerate() {
                let data: Arc<[u8]> = filled(me, k, size).into();
                let recvs = (0..8)
                    .map(|t| w.irecv_buf(vec![0u8; size].into_boxed_slice(), prev, t))
                    .collect::<shmpi::Result<Vec<_>>>()
                    .unwrap();
                let mut sends = (0..8)
                    .map(|t| w.isend_buf(data.clone(), next, t))
                    .collect::<shmpi::Result<Vec<_>>>()
                    .unwrap();
                drop(sends.pop()); // goes on without its handle
                for back in shmpi::wait_all(sends).unwrap() {
                    assert!(Arc::ptr_eq(&back, &data));
                }
                let want = filled(prev, k, size);
                for (t, (got, st)) in shmpi::wait_all(recvs).unwrap().into_iter().enumerate() {
                    assert_eq!((st.tag(), st.len()), (t as i32, size));
                    assert!(got[..] == want[..], "size {size}, message {t}");
                }
                w.barrier().unwrap();
                // The dropped send's owner is released once a progress pass saw it end.
                while Arc::strong_count(&data) > 1 {
                    w.iprobe(shmpi::ANY_SOURCE, 9999).unwrap();
                }
            }
        },
    );
}

/// Receives into shared cells (`irecv_cells`): a window of them may land in one buffer,
/// as C programs post it. Each receive completes with its own message's status, a
/// message is written into the cells inside runtime calls (never before its send), and
/// with one sender the buffer ends holding the last message, since receives from one
/// source and tag match in order; this at every path a message takes (in one ring
/// record, streamed through the ring, offered and read from the sender's memory, split
/// with a waiting sender), with other ranks sending at once.
#[test]
fn a_window_of_receives_lands_in_one_buffer_of_cells() {
    use std::cell::Cell;
    run_ranks(
        "a_window_of_receives_lands_in_one_buffer_of_cells",
        5,
        |w: &Communicator| {
            let (me, n) = (w.rank(), w.size());
            let (next, prev) = ((me + 1) % n, (me + n - 1) % n);
            for (k, size) in [8usize, 4096, 40 << 10, 300 << 10, 3 << 20]
                .into_iter()
                .enumerate()
            {
                let window = if size > 64 << 10 { 4 } else { 64 };
                let sends: Vec<Vec<u8>> =
                    (0..window).map(|t| filled(me, k * 100 + t, size)).collect();
                let mut buf = vec![0u8; size];
                let cells = Cell::from_mut(&mut buf[..]).as_slice_of_cells();
                w.scope(|s| {
                    let rreqs = (0..window)
                        .map(|_| s.irecv_cells(cells, prev, 7))
                        .collect::<shmpi::Result<Vec<_>>>()?;
                    // Nothing has been sent to this rank yet in this round: the cells
                    // still hold what the program put there.
                    if k == 0 {
                        w.barrier()?;
                        assert!(
                            cells.iter().all(|c| c.get() == 0),
                            "written before its send"
                        );
                        w.barrier()?;
                    }
                    let sreqs = sends
                        .iter()
                        .map(|m| s.isend_slice(m, next, 7))
                        .collect::<shmpi::Result<Vec<_>>>()?;
                    for (got, st) in s.wait_all(rreqs)? {
                        assert_eq!((st.source(), st.tag(), st.len()), (prev, 7, size));
                        assert_eq!(got.len(), size);
                        assert!(std::ptr::eq(got, cells), "the cells come back");
                    }
                    s.wait_all(sreqs)?;
                    Ok(())
                })
                .unwrap();
                assert!(
                    buf == filled(prev, k * 100 + window - 1, size),
                    "size {size}: the buffer does not hold the last message"
                );
            }
        },
    );
}

/// The point-to-point rules hold for receives into cells as for any receive: a message
/// too long fails the wait with `Truncated` and stays queued, the cells untouched; a
/// cancelled receive, or one a failing scope withdraws, never writes them; wildcards
/// match as usual; a message shorter than the cells writes its length and no more.
#[test]
fn cell_receives_follow_the_matching_rules() {
    use std::cell::Cell;
    run_ranks(
        "cell_receives_follow_the_matching_rules",
        3,
        |w: &Communicator| {
            let me = w.rank();
            if me == 0 {
                let mut small = [5u16; 2];
                let cells = Cell::from_mut(&mut small[..]).as_slice_of_cells();
                w.scope(|s| {
                    match s.irecv_cells(cells, 1, 0)?.wait() {
                        Err(Error::Truncated { .. }) => {}
                        other => panic!("expected Truncated, got {other:?}"),
                    }
                    let mut c = s.irecv_cells(cells, 1, 99)?;
                    assert!(c.cancel()?);
                    assert!(c.wait()?.1.is_cancelled());
                    Ok(())
                })
                .unwrap();
                let vals = |c: &[Cell<u16>]| c.iter().map(Cell::get).collect::<Vec<_>>();
                assert_eq!(
                    vals(cells),
                    [5, 5],
                    "a refused or cancelled receive wrote the cells"
                );
                let r = w.scope(|s| {
                    let _pending = s.irecv_cells(cells, 2, 50)?;
                    Err::<(), _>(Error::Usage("on purpose".into()))
                });
                assert!(matches!(r, Err(Error::Usage(_))), "{r:?}");
                w.barrier().unwrap(); // rank 2 sends tag 50 only now
                assert_eq!(w.recv_vec::<u16>(2, 50).unwrap().0, [50, 50]);
                assert_eq!(vals(cells), [5, 5], "a withdrawn receive wrote the cells");
                assert_eq!(
                    w.recv_vec::<u16>(1, 0).unwrap().0,
                    [1, 2, 3],
                    "still queued"
                );
                let mut wide = [0u16; 8];
                let cells = Cell::from_mut(&mut wide[..]).as_slice_of_cells();
                let mut from = Vec::new();
                w.scope(|s| {
                    let reqs = (0..4)
                        .map(|_| s.irecv_cells(cells, shmpi::ANY_SOURCE, shmpi::ANY_TAG))
                        .collect::<shmpi::Result<Vec<_>>>()?;
                    for (_, st) in s.wait_all(reqs)? {
                        assert_eq!(st.count::<u16>(), Some(st.source() as usize + 1));
                        from.push((st.source(), st.tag()));
                    }
                    Ok(())
                })
                .unwrap();
                from.sort();
                assert_eq!(from, [(1, 1), (1, 2), (2, 1), (2, 2)]);
                assert_eq!(&wide[3..], [0; 5], "written past the messages");
            } else {
                if me == 1 {
                    w.send_slice(&[1u16, 2, 3], 0, 0).unwrap();
                }
                w.barrier().unwrap();
                if me == 2 {
                    w.send_slice(&[50u16; 2], 0, 50).unwrap();
                }
                for t in 1..3 {
                    w.send_slice(&vec![me as u16; me as usize + 1], 0, t)
                        .unwrap();
                }
            }
        },
    );
}
