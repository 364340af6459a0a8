//! Point-to-point messages between real processes started by the real launcher.

mod common;

use std::collections::HashMap;

use common::{Rng, run_ranks, run_ranks_with_env};
use shmpi::{ANY_SOURCE, ANY_TAG, Communicator, Error};

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, PartialEq, Clone)]
struct Data {
    a: i64,
    b: f64,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, PartialEq, Clone)]
enum Shape {
    Circle { r: f64 },
    Rect(u32, u32),
    Empty,
}

#[test]
fn objects_of_every_kind_round_trip() {
    run_ranks("objects_of_every_kind_round_trip", 2, |w| {
        let map: HashMap<String, Vec<u32>> = (0..50)
            .map(|i| (format!("k{i}"), (0..i).collect()))
            .collect();
        let shapes = vec![Shape::Circle { r: 1.5 }, Shape::Rect(3, 4), Shape::Empty];
        if w.rank() == 0 {
            w.send(&Data { a: 7, b: 2.5 }, 1, 11).unwrap();
            w.send(&map, 1, 12).unwrap();
            w.send(&"hello, rank 1".to_string(), 1, 13).unwrap();
            w.send(&(0..1000u64).collect::<Vec<_>>(), 1, 14).unwrap();
            w.send(&shapes, 1, 15).unwrap();
            w.send(&Some((1u8, -2i16)), 1, 16).unwrap();
        } else {
            let (d, st) = w.recv_with_status::<Data>(0, 11).unwrap();
            assert_eq!(d, Data { a: 7, b: 2.5 });
            assert_eq!((st.source(), st.tag()), (0, 11));
            assert_eq!(w.recv::<HashMap<String, Vec<u32>>>(0, 12).unwrap(), map);
            assert_eq!(w.recv::<String>(0, 13).unwrap(), "hello, rank 1");
            assert_eq!(
                w.recv::<Vec<u64>>(0, 14).unwrap(),
                (0..1000).collect::<Vec<_>>()
            );
            assert_eq!(w.recv::<Vec<Shape>>(0, 15).unwrap(), shapes);
            assert_eq!(w.recv::<Option<(u8, i16)>>(0, 16).unwrap(), Some((1, -2)));
        }
    });
}

#[test]
fn archived_objects_are_read_in_place() {
    run_ranks("archived_objects_are_read_in_place", 2, |w| {
        if w.rank() == 0 {
            w.send(&Data { a: -5, b: 0.25 }, 1, 1).unwrap();
            w.send(&vec!["x".to_string(), "yz".to_string()], 1, 2)
                .unwrap();
        } else {
            let d = w.recv_archived::<Data>(0, 1).unwrap();
            assert_eq!((d.a.to_native(), d.b.to_native()), (-5, 0.25));
            let v = w.recv_archived::<Vec<String>>(0, 2).unwrap();
            assert_eq!(v.len(), 2);
            assert_eq!(v[1], "yz");
        }
    });
}

#[test]
fn arrays_go_into_preallocated_buffers() {
    run_ranks("arrays_go_into_preallocated_buffers", 2, |w| {
        if w.rank() == 0 {
            let xs: Vec<f64> = (0..100).map(|i| i as f64).collect();
            w.send_slice(&xs, 1, 13).unwrap();
            w.send_slice(&xs[..10], 1, 13).unwrap();
            w.send_slice::<u8>(&[], 1, 14).unwrap();
        } else {
            let mut buf = vec![0f64; 100];
            let st = w.recv_into(&mut buf, 0, 13).unwrap();
            assert_eq!(st.count::<f64>(), Some(100));
            assert!(buf.iter().enumerate().all(|(i, &x)| x == i as f64));
            // A shorter message fills a prefix; the status says how much.
            let mut buf2 = vec![-1f64; 100];
            let st = w.recv_into(&mut buf2, 0, 13).unwrap();
            assert_eq!((st.count::<f64>(), st.len()), (Some(10), 80));
            assert_eq!(buf2[9], 9.0);
            assert_eq!(buf2[10], -1.0);
            let (v, st) = w.recv_vec::<u8>(0, 14).unwrap();
            assert!(v.is_empty() && st.is_empty());
        }
    });
}

#[test]
fn truncation_and_type_mismatch_are_errors_that_lose_nothing() {
    run_ranks(
        "truncation_and_type_mismatch_are_errors_that_lose_nothing",
        2,
        |w| {
            if w.rank() == 0 {
                w.send_slice(&[1u32, 2, 3, 4], 1, 5).unwrap();
                w.send(&Data { a: 1, b: 2.0 }, 1, 6).unwrap();
                w.send_slice(&[7u8; 5], 1, 7).unwrap();
            } else {
                let mut short = [0u32; 2];
                match w.recv_into(&mut short, 0, 5) {
                    Err(Error::Truncated {
                        message_len: 16,
                        buffer_len: 8,
                        tag: 5,
                        ..
                    }) => {}
                    other => panic!("expected Truncated, got {other:?}"),
                }
                let err = w.recv::<String>(0, 6).unwrap_err();
                let msg = err.to_string();
                assert!(matches!(err, Error::TypeMismatch { .. }), "{msg}");
                assert!(
                    msg.contains("Data") && msg.contains("String"),
                    "both types named: {msg}"
                );
                // 5 bytes are not a whole number of u32s.
                assert!(matches!(
                    w.recv_vec::<u32>(0, 7),
                    Err(Error::ElementSize { .. })
                ));
                // Nothing was lost: each message is still there for the right receive.
                let (v, _) = w.recv_vec::<u32>(0, 5).unwrap();
                assert_eq!(v, [1, 2, 3, 4]);
                assert_eq!(w.recv::<Data>(0, 6).unwrap(), Data { a: 1, b: 2.0 });
                assert_eq!(w.recv_vec::<u8>(0, 7).unwrap().0, [7; 5]);
                assert_eq!(w.pending_messages(), 0);
            }
        },
    );
}

static IDLE_STEPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn count_idle_step() {
    IDLE_STEPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

fn idle_steps() -> usize {
    IDLE_STEPS.load(std::sync::atomic::Ordering::Relaxed)
}

/// The idle hook (for bindings that release a lock while a call waits): a call that
/// has to wait calls it, one that finds its message, room or peers there does not,
/// and removing it stops the calls.
#[test]
fn the_idle_hook_runs_only_while_a_call_waits() {
    run_ranks("the_idle_hook_runs_only_while_a_call_waits", 2, |w| {
        let me = w.rank();
        shmpi::set_idle_hook(Some(count_idle_step));
        if me == 0 {
            w.barrier().unwrap();
            // Rank 1 receives only after this pause: its receive has to wait.
            std::thread::sleep(std::time::Duration::from_millis(50));
            w.send_slice(&[1u8; 8], 1, 1).unwrap();
            w.send_slice(&[2u8; 8], 1, 2).unwrap();
            w.barrier().unwrap();
        } else {
            w.barrier().unwrap();
            let before = idle_steps();
            let mut buf = [0u8; 8];
            w.recv_into(&mut buf, 0, 1).unwrap();
            assert!(
                idle_steps() > before,
                "a receive that waited 50 ms never idled"
            );
            // Both messages were sent together: the second is here, taken without idling.
            std::thread::sleep(std::time::Duration::from_millis(20));
            let before = idle_steps();
            w.recv_into(&mut buf, 0, 2).unwrap();
            assert_eq!((idle_steps(), buf), (before, [2u8; 8]));
            w.barrier().unwrap();
        }
        // A send with room in the ring does not idle; without the hook nothing counts.
        let before = idle_steps();
        w.send_slice(&[3u8; 8], 1 - me, 3).unwrap();
        assert_eq!(idle_steps(), before);
        shmpi::set_idle_hook(None);
        std::thread::sleep(std::time::Duration::from_millis(if me == 0 {
            50
        } else {
            0
        }));
        let before = idle_steps();
        let mut buf = [0u8; 8];
        w.recv_into(&mut buf, 1 - me, 3).unwrap();
        w.barrier().unwrap();
        assert_eq!(idle_steps(), before);
    });
}

/// A binding's try-send (`try_isend_now`) sends a message only when all of it goes
/// into the ring at once and nothing is queued before it: a send never overtakes an
/// earlier one to the same rank (MPI's non-overtaking rule). Otherwise it sends nothing
/// and says so; `PROC_NULL` is left to the general path, bad ranks and tags are errors.
#[test]
fn a_try_send_sends_whole_messages_in_order_or_nothing() {
    // Through the ring (no offers), so that the large send below stays queued.
    let env = [("SHMPI_OFFER_BYTES", "1000000000")];
    run_ranks_with_env(
        "a_try_send_sends_whole_messages_in_order_or_nothing",
        2,
        &env,
        |w| {
            if w.rank() == 0 {
                assert!(w.try_isend_now(&[7u8; 16], 1, 1).unwrap());
                // Larger than the ring: most of it waits in this rank's queue to rank 1.
                let big = w.isend_vec(vec![9u8; 8 << 20], 1, 2).unwrap();
                assert!(!w.try_isend_now(&[8u8; 16], 1, 3).unwrap());
                let small = w.isend_vec(vec![8u8; 16], 1, 3).unwrap();
                assert!(!w.try_isend_now(&[1u8; 8], shmpi::PROC_NULL, 0).unwrap());
                assert!(matches!(
                    w.try_isend_now(&[1u8; 8], 2, 0),
                    Err(shmpi::Error::InvalidRank { .. })
                ));
                assert!(matches!(
                    w.try_isend_now(&[1u8; 8], 1, -1),
                    Err(shmpi::Error::InvalidTag { .. })
                ));
                shmpi::wait_all(vec![big, small]).unwrap();
            } else {
                let tags: Vec<i32> = (0..3)
                    .map(|_| {
                        let (v, st) = w.recv_vec::<u8>(0, shmpi::ANY_TAG).unwrap();
                        let want = match st.tag() {
                            1 => vec![7u8; 16],
                            2 => vec![9u8; 8 << 20],
                            _ => vec![8u8; 16],
                        };
                        assert!(v == want, "tag {}: wrong bytes", st.tag());
                        st.tag()
                    })
                    .collect();
                assert_eq!(tags, [1, 2, 3]);
            }
            w.barrier().unwrap();
        },
    );
}

#[test]
fn invalid_ranks_and_tags_name_the_valid_range() {
    run_ranks("invalid_ranks_and_tags_name_the_valid_range", 3, |w| {
        let e = w.send(&1u8, 3, 0).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidRank {
                    rank: 3,
                    size: 3,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("0 to 2"), "{e}");
        assert!(matches!(
            w.send_slice(&[1u8], -1, 0),
            Err(Error::InvalidRank { rank: -1, .. })
        ));
        // -2 is PROC_NULL (tests/p2p_modes.rs); -3 names no rank at all.
        assert!(matches!(
            w.recv::<u8>(-3, 0),
            Err(Error::InvalidRank { rank: -3, .. })
        ));
        assert!(matches!(
            w.send(&1u8, -3, 0),
            Err(Error::InvalidRank { rank: -3, .. })
        ));
        let e = w.send(&1u8, 0, -1).unwrap_err();
        assert!(matches!(e, Error::InvalidTag { tag: -1, .. }), "{e}");
        assert!(matches!(
            w.recv::<u8>(0, -7),
            Err(Error::InvalidTag { tag: -7, .. })
        ));
        let mut b = [0u8; 1];
        assert!(w.recv_into(&mut b, 9, 0).is_err());
    });
}

#[test]
fn wildcard_receives_report_source_and_tag() {
    run_ranks("wildcard_receives_report_source_and_tag", 8, |w| {
        let (rank, size) = (w.rank(), w.size());
        if rank == 0 {
            let mut seen = vec![0u32; size as usize];
            for _ in 0..(size - 1) * 3 {
                let (v, st) = w
                    .recv_with_status::<(i32, i32)>(ANY_SOURCE, ANY_TAG)
                    .unwrap();
                assert_eq!(v, (st.source(), st.tag()));
                seen[st.source() as usize] += 1;
            }
            assert!(seen[1..].iter().all(|&c| c == 3), "{seen:?}");
        } else {
            for t in 0..3 {
                w.send(&(rank, 100 + t), 0, 100 + t).unwrap();
            }
        }
    });
}

/// MPI's non-overtaking rule: from one sender, a receive gets the earliest matching
/// message, whatever mix of wildcards and sizes.
#[test]
fn messages_between_a_pair_do_not_overtake() {
    run_ranks("messages_between_a_pair_do_not_overtake", 3, |w| {
        let n = 3000u32;
        if w.rank() != 2 {
            for i in 0..n {
                let len = [0usize, 8, 1000, 70_000][(i % 4) as usize];
                let mut v = vec![(i as u8) ^ (w.rank() as u8); len];
                if len >= 4 {
                    v[..4].copy_from_slice(&i.to_le_bytes());
                }
                w.send_slice(&v, 2, (i % 2) as i32).unwrap();
            }
        } else {
            let mut next = [0u32; 2];
            for k in 0..2 * n {
                // Alternate specific and wildcard receives.
                let mut s = (k % 2) as usize;
                if next[s] == n {
                    s = 1 - s;
                }
                let src = if k % 3 == 0 { ANY_SOURCE } else { s as i32 };
                let (v, st) = w.recv_vec::<u8>(src, ANY_TAG).unwrap();
                let s = st.source() as usize;
                let i = next[s];
                next[s] += 1;
                assert_eq!(st.tag(), (i % 2) as i32);
                assert_eq!(v.len(), [0usize, 8, 1000, 70_000][(i % 4) as usize]);
                if v.len() >= 4 {
                    assert_eq!(
                        u32::from_le_bytes(v[..4].try_into().unwrap()),
                        i,
                        "from {s}"
                    );
                }
            }
            assert_eq!(next, [n, n]);
        }
    });
}

#[test]
fn probe_describes_a_message_without_receiving_it() {
    run_ranks("probe_describes_a_message_without_receiving_it", 2, |w| {
        if w.rank() == 0 {
            w.send_slice(&[5u16; 33], 1, 9).unwrap();
            w.recv::<u8>(1, 1).unwrap();
            w.send(&1u8, 1, 2).unwrap();
        } else {
            let st = w.probe(ANY_SOURCE, ANY_TAG).unwrap();
            assert_eq!((st.source(), st.tag(), st.count::<u16>()), (0, 9, Some(33)));
            let st2 = w.iprobe(0, 9).unwrap().expect("still there");
            assert_eq!(st, st2);
            assert!(w.iprobe(0, 2).unwrap().is_none());
            let (v, _) = w.recv_vec::<u16>(0, 9).unwrap();
            assert_eq!(v, [5; 33]);
            w.send(&0u8, 0, 1).unwrap();
            // iprobe polls until the message shows up.
            let t = std::time::Instant::now();
            while w.iprobe(0, 2).unwrap().is_none() {
                assert!(t.elapsed().as_secs() < 30);
            }
            w.recv::<u8>(0, 2).unwrap();
        }
    });
}

fn ring_pass(w: &Communicator) {
    let (rank, size) = (w.rank(), w.size());
    let right = (rank + 1) % size;
    let left = (rank + size - 1) % size;
    // An object around the ring: everyone adds its rank.
    let total: i64 = if rank == 0 {
        w.send(&0i64, right, 1).unwrap();
        w.recv(left, 1).unwrap()
    } else {
        let v: i64 = w.recv(left, 1).unwrap();
        w.send(&(v + rank as i64), right, 1).unwrap();
        -1
    };
    if rank == 0 {
        assert_eq!(total, (0..size as i64).sum::<i64>());
    }
    // sendrecv_slice shifting arrays, 1 KiB and 1 MiB.
    for len in [1usize << 10, 1 << 20] {
        let mine = vec![rank as u32; len / 4];
        let mut got = vec![0u32; len / 4];
        let st = w
            .sendrecv_slice(&mine, right, 2, &mut got, left, 2)
            .unwrap();
        assert_eq!(st.source(), left);
        assert!(got.iter().all(|&x| x == left as u32));
    }
}

#[test]
fn ring_pass_works_at_1_rank() {
    run_ranks("ring_pass_works_at_1_rank", 1, ring_pass);
}

#[test]
fn ring_pass_works_at_2_ranks() {
    run_ranks("ring_pass_works_at_2_ranks", 2, ring_pass);
}

#[test]
fn ring_pass_works_at_3_ranks() {
    run_ranks("ring_pass_works_at_3_ranks", 3, ring_pass);
}

#[test]
fn ring_pass_works_at_8_ranks() {
    run_ranks("ring_pass_works_at_8_ranks", 8, ring_pass);
}

#[test]
fn ring_pass_works_at_16_ranks() {
    run_ranks("ring_pass_works_at_16_ranks", 16, ring_pass);
}

#[test]
fn nonblocking_requests_complete_and_return_their_buffers() {
    run_ranks(
        "nonblocking_requests_complete_and_return_their_buffers",
        2,
        |w| {
            let peer = 1 - w.rank();
            // Post receives first, then sends, both sides: a window like osu_bw.
            let recvs: Vec<_> = (0..64)
                .map(|i| w.irecv_into(vec![0u64; 4096], peer, i).unwrap())
                .collect();
            let sends: Vec<_> = (0..64)
                .map(|i| {
                    w.isend_vec(vec![i as u64 + 1000 * w.rank() as u64; 4096], peer, i)
                        .unwrap()
                })
                .collect();
            let sent = shmpi::wait_all(sends).unwrap();
            assert_eq!(sent.len(), 64);
            assert_eq!(
                sent[3][0],
                3 + 1000 * w.rank() as u64,
                "send buffers come back"
            );
            for (i, (v, st)) in shmpi::wait_all(recvs).unwrap().into_iter().enumerate() {
                assert_eq!(st.tag(), i as i32);
                assert!(v.iter().all(|&x| x == i as u64 + 1000 * peer as u64));
            }
            // Objects, wait_any and test.
            let mut reqs: Vec<_> = (0..5)
                .map(|t| w.irecv::<String>(peer, 50 + t).unwrap())
                .collect();
            for t in (0..5).rev() {
                w.isend(&format!("msg {t}"), peer, 50 + t)
                    .unwrap()
                    .wait()
                    .unwrap();
            }
            let mut got = Vec::new();
            while !reqs.is_empty() {
                let (_, (s, st)) = shmpi::wait_any(&mut reqs).unwrap();
                assert_eq!(s, format!("msg {}", st.tag() - 50));
                got.push(st.tag());
            }
            got.sort();
            assert_eq!(got, [50, 51, 52, 53, 54]);
            let mut r = w.irecv::<u8>(peer, 99).unwrap();
            // Not yet sent, or already arrived: either way test() must not fail.
            r.is_complete().unwrap();
            w.isend_slice(&[9u8], peer, 98).unwrap().wait().unwrap();
            w.send(&7u8, peer, 99).unwrap();
            while !r.is_complete().unwrap() {}
            assert_eq!(r.wait().unwrap().0, 7);
            assert_eq!(w.recv_vec::<u8>(peer, 98).unwrap().0, [9]);
        },
    );
}

/// Every rank posts receives from every peer with repeating tags, interleaved across
/// peers, sends its own messages, then waits for its receives in a random order (some
/// through `wait_any`). The k-th receive posted for a (source, tag) must get the k-th
/// message sent with that tag, whatever order the waits come in: the waits' fast path
/// (a whole message taken from the ring for the earliest posted receive) and the
/// general delivery must agree. Sizes span whole records, several records and
/// streamed messages.
fn posted_receives_in_random_wait_order(w: &Communicator) {
    const PER_PEER: usize = 40;
    let (me, n) = (w.rank() as usize, w.size() as usize);
    // The plan, the same on every rank: message i from s to d has a tag and a length.
    let plan = |s: usize, d: usize| -> Vec<(i32, usize)> {
        let mut rng = Rng((s * 131 + d * 7 + 1) as u64);
        (0..PER_PEER)
            .map(|_| {
                let tag = rng.below(3) as i32;
                let len = match rng.below(10) {
                    0..=6 => rng.below(65) as usize,
                    7..=8 => 1000 + rng.below(8000) as usize,
                    _ => 100_000 + rng.below(200_000) as usize,
                };
                (tag, len)
            })
            .collect()
    };
    let byte = |s: usize, d: usize, i: usize, k: usize| (s * 31 + d * 17 + i * 5 + k) as u8;
    let mut rng = Rng(me as u64 + 99);
    // Post: one receive per planned message, peers interleaved at random, each peer's
    // in its plan's order.
    let mut next = vec![0usize; n];
    let mut recvs = Vec::new();
    let mut expect = Vec::new();
    let peers: Vec<usize> = (0..n).filter(|&p| p != me).collect();
    while peers.iter().any(|&p| next[p] < PER_PEER) {
        let p = peers[rng.below(peers.len() as u64) as usize];
        if next[p] == PER_PEER {
            continue;
        }
        let i = next[p];
        next[p] += 1;
        let (tag, len) = plan(p, me)[i];
        recvs.push(w.irecv_into(vec![0u8; len], p as i32, tag).unwrap());
        expect.push((p, i, tag, len));
    }
    let mut sends = Vec::new();
    for &d in &peers {
        for (i, &(tag, len)) in plan(me, d).iter().enumerate() {
            let data: Vec<u8> = (0..len).map(|k| byte(me, d, i, k)).collect();
            sends.push(w.isend_vec(data, d as i32, tag).unwrap());
        }
    }
    // Wait in a random order; every third through wait_any on a small batch.
    let mut pending: Vec<_> = recvs.into_iter().zip(expect).collect();
    while !pending.is_empty() {
        let j = rng.below(pending.len() as u64) as usize;
        let ((v, st), (p, i, tag, len)) = if rng.below(3) == 0 && pending.len() > 1 {
            let k = (j + 1) % pending.len();
            let (a, b) = (j.min(k), j.max(k));
            let second = pending.remove(b);
            let first = pending.remove(a);
            let mut two = vec![first.0, second.0];
            let metas = [first.1, second.1];
            let (idx, got) = shmpi::wait_any(&mut two).unwrap();
            pending.push((two.pop().unwrap(), metas[1 - idx]));
            (got, metas[idx])
        } else {
            let (r, meta) = pending.remove(j);
            (r.wait().unwrap(), meta)
        };
        assert_eq!(
            (st.source(), st.tag(), st.len()),
            (p as i32, tag, len),
            "rank {me}: receive {i} from {p}"
        );
        if let Some(k) = (0..len).find(|&k| v[k] != byte(p, me, i, k)) {
            panic!("rank {me}: receive {i} from {p} (tag {tag}, {len} bytes) wrong at byte {k}");
        }
    }
    shmpi::wait_all(sends).unwrap();
    w.barrier().unwrap();
}

#[test]
fn posted_receives_waited_in_any_order_get_their_own_messages_at_2_ranks() {
    run_ranks(
        "posted_receives_waited_in_any_order_get_their_own_messages_at_2_ranks",
        2,
        posted_receives_in_random_wait_order,
    );
}

#[test]
fn posted_receives_waited_in_any_order_get_their_own_messages_at_5_ranks() {
    run_ranks(
        "posted_receives_waited_in_any_order_get_their_own_messages_at_5_ranks",
        5,
        posted_receives_in_random_wait_order,
    );
}

#[test]
fn dropped_and_forgotten_requests_are_harmless() {
    run_ranks("dropped_and_forgotten_requests_are_harmless", 2, |w| {
        let peer = 1 - w.rank();
        // A dropped receive is cancelled: the message goes to the next receive.
        drop(w.irecv_into(vec![0u8; 16], peer, 1).unwrap());
        // A forgotten receive keeps its buffer inside the runtime; nothing dangles.
        std::mem::forget(w.irecv_into(vec![0u8; 16], peer, 2).unwrap());
        // A forgotten send still completes.
        std::mem::forget(w.isend_vec(vec![3u8; 100_000], peer, 3).unwrap());
        w.send_slice(&[1u8; 8], peer, 1).unwrap();
        w.send_slice(&[2u8; 8], peer, 2).unwrap();
        assert_eq!(w.recv_vec::<u8>(peer, 1).unwrap().0, [1; 8]);
        assert_eq!(w.recv_vec::<u8>(peer, 3).unwrap().0, vec![3u8; 100_000]);
        // The forgotten receive took tag 2 (as MPI would); a later one does not see it.
        assert!(w.iprobe(peer, 2).unwrap().is_none());
    });
}

/// Dropping or forgetting request handles, finished or not, must not keep a rank from
/// finalizing: when its `Universe` goes, every queued send is still flushed, so a
/// receiver that comes late gets the whole message (not a report that the sender left).
#[test]
fn forgotten_requests_do_not_keep_a_rank_from_finalizing() {
    run_ranks(
        "forgotten_requests_do_not_keep_a_rank_from_finalizing",
        2,
        |w| {
            if w.rank() == 0 {
                let mut done = w.isend(&7u64, 1, 1).unwrap();
                while !done.is_complete().unwrap() {}
                std::mem::forget(done);
                std::mem::forget(w.isend_slice(&[8u8; 8], 1, 2).unwrap());
                std::mem::forget(w.irecv::<u64>(1, 99).unwrap());
                // Larger than the ring: most of it is still queued when this rank leaves.
                drop(w.isend_vec(vec![5u8; 8 << 20], 1, 3).unwrap());
            } else {
                std::thread::sleep(std::time::Duration::from_millis(200));
                assert_eq!(w.recv::<u64>(0, 1).unwrap(), 7);
                assert_eq!(w.recv_vec::<u8>(0, 2).unwrap().0, [8u8; 8]);
                let (v, _) = w.recv_vec::<u8>(0, 3).unwrap();
                assert!(v.len() == 8 << 20 && v.iter().all(|&b| b == 5));
            }
        },
    );
}

/// Every message size on both sides of the eager limit and of the first chunk arrives
/// intact by every send and receive form, also with the eager limit (a documented
/// knob) far below the chunk size, where a message fits in its first chunk.
fn sizes_around_the_eager_limit(w: &Communicator) {
    let sizes = [0, 1, 63, 64, 65, 100, 1000, 16383, 16384, 16385, 100_000];
    let peer = 1 - w.rank();
    let data = |n: usize, salt: u8| -> Vec<u8> { (0..n).map(|i| (i as u8) ^ salt).collect() };
    if w.rank() == 0 {
        for (i, &n) in sizes.iter().enumerate() {
            w.send_slice(&data(n, 1), peer, i as i32).unwrap();
            w.send(&data(n, 2), peer, i as i32).unwrap();
            w.isend_vec(data(n, 3), peer, i as i32)
                .unwrap()
                .wait()
                .unwrap();
            w.send_slice(&data(n, 4), peer, i as i32).unwrap();
        }
    } else {
        for (i, &n) in sizes.iter().enumerate() {
            let t = i as i32;
            assert_eq!(
                w.recv_vec::<u8>(peer, t).unwrap().0,
                data(n, 1),
                "{n} B slice"
            );
            assert_eq!(
                w.recv::<Vec<u8>>(peer, t).unwrap(),
                data(n, 2),
                "{n} B object"
            );
            let (v, st) = w
                .irecv_into(vec![0u8; n + 7], peer, t)
                .unwrap()
                .wait()
                .unwrap();
            assert_eq!(
                (&v[..st.len()], st.len()),
                (&data(n, 3)[..], n),
                "{n} B irecv"
            );
            let mut buf = vec![0u8; n];
            w.recv_into(&mut buf, ANY_SOURCE, ANY_TAG).unwrap();
            assert_eq!(buf, data(n, 4), "{n} B recv_into");
        }
    }
}

#[test]
fn messages_around_an_eager_limit_below_the_chunk_size_arrive_intact() {
    for eager in ["0", "64"] {
        common::run_ranks_with_env(
            "messages_around_an_eager_limit_below_the_chunk_size_arrive_intact",
            2,
            &[("SHMPI_EAGER_BYTES", eager)],
            sizes_around_the_eager_limit,
        );
        if common::is_child("messages_around_an_eager_limit_below_the_chunk_size_arrive_intact") {
            return; // a rank runs one setting: the one its launcher gave it
        }
    }
}

/// mpi4py's lecture: rank 0 sends `{'a': 7, 'b': 3.14}` with tag 11 and rank 1
/// receives it without declaring a type; lists, nesting and every scalar kind too.
#[test]
#[allow(clippy::approx_constant)] // 3.14 is the lecture's value, not pi
fn dynamic_values_travel_like_python_objects() {
    run_ranks("dynamic_values_travel_like_python_objects", 3, |w| {
        if w.rank() == 0 {
            let data = shmpi::value!({"a": 7, "b": 3.14});
            w.send(&data, 1, 11).unwrap();
            let mixed = shmpi::value!([null, true, -3, "s", (vec![1u8, 2].as_slice()), {1: [2.5]}]);
            w.send(&mixed, 2, 12).unwrap();
        } else {
            let (v, st) = w.recv_with_status::<shmpi::Value>(0, ANY_TAG).unwrap();
            if w.rank() == 1 {
                assert_eq!(st.tag(), 11);
                assert_eq!(format!("{v:?}"), r#"{"a": 7, "b": 3.14}"#);
                assert_eq!(v.get("b").and_then(shmpi::Value::as_f64), Some(3.14));
            } else {
                assert_eq!(
                    format!("{v:?}"),
                    r#"[None, True, -3, "s", b"\x01\x02", {1: [2.5]}]"#
                );
            }
        }
    });
}

#[test]
fn self_messages_are_delivered() {
    run_ranks("self_messages_are_delivered", 2, |w| {
        let me = w.rank();
        w.send(&"to myself".to_string(), me, 4).unwrap();
        w.send_slice(&vec![me as u8; 3 << 20], me, 5).unwrap();
        let r = w.irecv_into(vec![0u8; 3 << 20], me, 5).unwrap();
        assert_eq!(w.recv::<String>(me, 4).unwrap(), "to myself");
        assert!(r.wait().unwrap().0.iter().all(|&b| b == me as u8));
    });
}

/// Two ranks send each other 64 MiB before either receives: streaming through the
/// rings while draining them keeps this from deadlocking.
#[test]
fn head_to_head_64_mib_exchange_completes() {
    run_ranks("head_to_head_64_mib_exchange_completes", 2, |w| {
        let peer = 1 - w.rank();
        let n = 64 << 20;
        let mine: Vec<u8> = (0..n)
            .map(|i| (i as u8).wrapping_mul(3).wrapping_add(w.rank() as u8))
            .collect();
        w.send_slice(&mine, peer, 1).unwrap();
        let (got, _) = w.recv_vec::<u8>(peer, 1).unwrap();
        assert_eq!(got.len(), n);
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, &b)| b == (i as u8).wrapping_mul(3).wrapping_add(peer as u8))
        );
        // Objects too.
        let v: Vec<u64> = (0..(8 << 20) / 8).map(|i| i * 7 + peer as u64).collect();
        w.send(
            &(0..(8 << 20) / 8)
                .map(|i| i * 7 + w.rank() as u64)
                .collect::<Vec<u64>>(),
            peer,
            2,
        )
        .unwrap();
        assert_eq!(w.recv::<Vec<u64>>(peer, 2).unwrap(), v);
    });
}

#[test]
fn a_one_gib_message_arrives_intact() {
    run_ranks("a_one_gib_message_arrives_intact", 2, |w| {
        let n = 1usize << 30;
        if w.rank() == 0 {
            let mut v = vec![0u8; n];
            let mut rng = Rng(7);
            for chunk in v.chunks_mut(4096) {
                chunk[0] = rng.next() as u8;
            }
            w.send_slice(&v, 1, 0).unwrap();
        } else {
            let (v, st) = w.recv_vec::<u8>(0, 0).unwrap();
            assert_eq!(st.len(), n);
            let mut rng = Rng(7);
            for chunk in v.chunks(4096) {
                assert_eq!(chunk[0], rng.next() as u8);
                assert!(chunk[1..].iter().all(|&b| b == 0));
            }
        }
    });
}

/// `sendrecv_slice` exchanges long messages in both directions at once, straight into
/// the receive buffers (between two ranks nothing is left queued),
/// at sizes around and beyond the ring's, around a ring of ranks; a receive buffer that is too short is an
/// error that leaves the message for the next receive.
fn sendrecv_exchange(w: &Communicator) {
    let (rank, size) = (w.rank(), w.size());
    let (right, left) = ((rank + 1) % size, (rank + size - 1) % size);
    for len in [3usize, 40_000, 1 << 20, (4 << 20) + 20, 9 << 20] {
        let mine: Vec<u32> = (0..len as u32).map(|i| i ^ (rank as u32 * 7919)).collect();
        let mut got = vec![0u32; len];
        let st = w
            .sendrecv_slice(&mine, right, 7, &mut got, left, 7)
            .unwrap();
        assert_eq!(
            (st.source(), st.tag(), st.count::<u32>()),
            (left, 7, Some(len))
        );
        let want = |i: usize| i as u32 ^ (left as u32 * 7919);
        if let Some(i) = (0..len).find(|&i| got[i] != want(i)) {
            panic!("len {len}: element {i} is {} not {}", got[i], want(i));
        }
        // With two ranks neither can start its next message before the other's receive
        // is done; around a longer ring a rank that is ahead may queue one.
        if size == 2 {
            assert_eq!(w.pending_messages(), 0, "len {len}: a message was queued");
        }
    }
    // Too short: an error, and the message is received in full afterwards.
    let mine = vec![rank as u64; 300_000];
    let mut short = vec![0u64; 1000];
    match w.sendrecv_slice(&mine, right, 8, &mut short, left, 8) {
        Err(Error::Truncated { message_len, .. }) => assert_eq!(message_len, 2_400_000),
        other => panic!("expected a truncation error, got {other:?}"),
    }
    let mut all = vec![0u64; 300_000];
    w.recv_into(&mut all, left, 8).unwrap();
    assert!(all.iter().all(|&x| x == left as u64));
}

#[test]
fn sendrecv_exchanges_long_messages_both_ways_at_2_ranks() {
    run_ranks(
        "sendrecv_exchanges_long_messages_both_ways_at_2_ranks",
        2,
        sendrecv_exchange,
    );
}

#[test]
fn sendrecv_exchanges_long_messages_both_ways_at_5_ranks() {
    run_ranks(
        "sendrecv_exchanges_long_messages_both_ways_at_5_ranks",
        5,
        sendrecv_exchange,
    );
}

/// Receives of unknown length (`recv_unsized`, what the Python binding's `recv` uses, and
/// matched probes), which take a whole message from a named peer straight from its ring:
/// messages from one sender are still received in the order sent (MPI 4.1 §3.5) across
/// ring-taken, queued and streamed ones; a message sent as an object is a type mismatch
/// and stays queued; `PROC_NULL` gives an empty message.
#[test]
fn receives_of_unknown_length_keep_order_and_refuse_objects() {
    run_ranks(
        "receives_of_unknown_length_keep_order_and_refuse_objects",
        3,
        |w| {
            let me = w.rank();
            let sizes = [0usize, 1, 100, 5000, 300_000, 7, 2_000_000, 64];
            let data =
                |i: usize, n: usize| -> Vec<u8> { (0..n).map(|k| (i * 31 + k) as u8).collect() };
            if me != 2 {
                for (i, &n) in sizes.iter().enumerate() {
                    w.send_slice(&data(i + me as usize, n), 2, 5).unwrap();
                }
                w.send(&7u64, 2, 6).unwrap();
                w.send_slice(&[9u8; 3], 2, 6).unwrap();
                w.barrier().unwrap();
            } else {
                // Rank 1's messages wait in the queue or the ring while rank 0's are taken.
                for (i, &n) in sizes.iter().enumerate() {
                    let (m, st) = w.recv_unsized(0, 5).unwrap();
                    assert_eq!((m.bytes(), st.source(), st.len()), (&data(i, n)[..], 0, n));
                }
                for (i, &n) in sizes.iter().enumerate() {
                    let (mut m, st) = w.mprobe(1, 5).unwrap();
                    assert_eq!(st.len(), n);
                    let (v, _) = m.recv_vec::<u8>().unwrap();
                    assert_eq!(v, data(i + 1, n), "matched probe {i}");
                }
                for src in [0, 1] {
                    let e = w.recv_unsized(src, 6).unwrap_err();
                    assert!(matches!(e, shmpi::Error::TypeMismatch { .. }), "{e:?}");
                    assert_eq!(w.recv::<u64>(src, 6).unwrap(), 7);
                    let (m, _) = w.recv_unsized(src, 6).unwrap();
                    assert_eq!(m.bytes(), &[9u8; 3]);
                }
                let (m, st) = w.recv_unsized(shmpi::PROC_NULL, 5).unwrap();
                assert_eq!((m.bytes().len(), st.source()), (0, shmpi::PROC_NULL));
                w.barrier().unwrap();
            }
        },
    );
}
