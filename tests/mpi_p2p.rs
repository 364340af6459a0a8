//! Point-to-point messages on the MPI backend, under a real `mpirun` at 2, 3 and 4
//! ranks: the same rules as `tests/p2p.rs` checks on the shared segment.
#![cfg(feature = "mpi")]

mod mpi_common;

use mpi_common::{ns, run_mpi_ns};
use shmpi::{ANY_SOURCE, ANY_TAG, Error, PROC_NULL};

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, PartialEq, Clone)]
struct Data {
    a: i64,
    b: f64,
    name: String,
}

#[test]
fn objects_and_slices_travel_between_every_pair() {
    run_mpi_ns("objects_and_slices_travel_between_every_pair", &ns(), |w| {
        let (me, n) = (w.rank(), w.size());
        for to in 0..n {
            if to != me {
                let d = Data {
                    a: me as i64,
                    b: to as f64,
                    name: format!("{me}->{to}"),
                };
                w.send(&d, to, 1).unwrap();
                w.send_slice(&[me as u32; 100], to, 2).unwrap();
            }
        }
        for from in 0..n {
            if from != me {
                let (d, st) = w.recv_with_status::<Data>(from, 1).unwrap();
                assert_eq!(
                    d,
                    Data {
                        a: from as i64,
                        b: me as f64,
                        name: format!("{from}->{me}")
                    }
                );
                assert_eq!((st.source(), st.tag()), (from, 1));
                let mut buf = [0u32; 128];
                let st = w.recv_into(&mut buf, from, 2).unwrap();
                assert_eq!(st.count::<u32>(), Some(100));
                assert!(buf[..100].iter().all(|&x| x == from as u32));
            }
        }
    });
}

#[test]
fn truncation_and_type_mismatch_leave_the_message_queued() {
    run_mpi_ns(
        "truncation_and_type_mismatch_leave_the_message_queued",
        &ns(),
        |w| {
            let n = w.size();
            if w.rank() == 0 {
                for to in 1..n {
                    w.send_slice(&[1u64, 2, 3], to, 5).unwrap();
                    w.send(&String::from("text"), to, 6).unwrap();
                }
            } else {
                let mut small = [0u64; 2];
                let e = w.recv_into(&mut small, 0, 5).unwrap_err();
                assert!(
                    matches!(
                        e,
                        Error::Truncated {
                            message_len: 24,
                            buffer_len: 16,
                            ..
                        }
                    ),
                    "{e}"
                );
                let e = w.recv::<u32>(0, 6).unwrap_err();
                assert!(matches!(e, Error::TypeMismatch { .. }), "{e}");
                assert!(e.to_string().contains("String"), "{e}");
                // An object is not a slice either; the slice is not an object.
                assert!(matches!(
                    w.recv_vec::<u8>(0, 6),
                    Err(Error::TypeMismatch { .. })
                ));
                assert!(matches!(
                    w.recv::<String>(0, 5),
                    Err(Error::TypeMismatch { .. })
                ));
                // Both are still there, in order.
                assert_eq!(w.probe(0, ANY_TAG).unwrap().tag(), 5);
                let (v, st) = w.recv_vec::<u64>(0, 5).unwrap();
                assert_eq!((v, st.len()), (vec![1, 2, 3], 24));
                assert_eq!(w.recv::<String>(0, 6).unwrap(), "text");
                assert_eq!(w.pending_messages(), 0);
            }
        },
    );
}

#[test]
fn messages_from_one_sender_are_not_overtaken() {
    run_mpi_ns("messages_from_one_sender_are_not_overtaken", &ns(), |w| {
        let n = w.size();
        if w.rank() != 0 {
            for i in 0..200u32 {
                // Mixed sizes, two tags: order holds per tag and for wildcard receives.
                let len = if i % 7 == 0 {
                    20_000
                } else {
                    1 + (i as usize % 5)
                };
                w.send_slice(&vec![i; len], 0, (i % 2) as i32).unwrap();
            }
        } else {
            let mut next = vec![0u32; n as usize];
            for _ in 0..200 * (n - 1) {
                let (v, st) = w.recv_vec::<u32>(ANY_SOURCE, ANY_TAG).unwrap();
                let s = st.source() as usize;
                assert_eq!(v[0], next[s], "from {s}");
                assert_eq!(st.tag(), (v[0] % 2) as i32);
                next[s] += 1;
            }
        }
    });
}

#[test]
fn head_to_head_large_sends_do_not_deadlock() {
    run_mpi_ns("head_to_head_large_sends_do_not_deadlock", &ns(), |w| {
        // Every rank sends 8 MiB to its right neighbour before receiving from the left:
        // blocking MPI_Send would deadlock in a ring; shmpi's send must not.
        let (me, n) = (w.rank(), w.size());
        let big = vec![me as u8; 8 << 20];
        w.send_slice(&big, (me + 1) % n, 9).unwrap();
        let (v, _) = w.recv_vec::<u8>((me + n - 1) % n, 9).unwrap();
        assert_eq!(v.len(), 8 << 20);
        assert!(v.iter().all(|&x| x == ((me + n - 1) % n) as u8));
        let mut back = vec![0u8; 4 << 20];
        let st = w
            .sendrecv_slice(
                &big[..4 << 20],
                (me + 1) % n,
                10,
                &mut back,
                (me + n - 1) % n,
                10,
            )
            .unwrap();
        assert_eq!(st.len(), 4 << 20);
    });
}

#[test]
fn plain_data_that_looks_like_the_wire_format_arrives_as_sent() {
    // A message delivers exactly its send buffer's bytes (MPI 4.1 §3.7.2) whatever they
    // are. Small plain data travels without shmpi's trailer unless its end could be read
    // as one (docs/cluster.md), so these payloads end as a trailer or a large message's
    // head would: lengths around both, ending in each magic word, one forged as a whole
    // object's trailer and one as a whole head; blocking and non-blocking, probed first.
    const MAGIC: u64 = 0x7368_6d70_695f_6d31; // "shmpi_m1", a trailer's last word
    const MAGIC_HEAD: u64 = 0x7368_6d70_695f_6831; // "shmpi_h1", a head's
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for len in [
        0usize, 1, 7, 8, 15, 16, 17, 24, 31, 32, 33, 40, 48, 4088, 4096,
    ] {
        for end in [None, Some(MAGIC), Some(MAGIC_HEAD)] {
            let mut v: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
            if let Some(m) = end.filter(|_| len >= 8) {
                v[len - 8..].copy_from_slice(&m.to_le_bytes());
            }
            cases.push(v);
        }
    }
    // A trailer naming an object's type, and a head announcing 64 bytes under tag 0.
    cases.push(
        [0x1234_5678_9abc_def1u64, MAGIC]
            .map(u64::to_le_bytes)
            .concat(),
    );
    cases.push([7u64, 64, 0, MAGIC_HEAD].map(u64::to_le_bytes).concat());
    run_mpi_ns(
        "plain_data_that_looks_like_the_wire_format_arrives_as_sent",
        &ns(),
        |w| {
            let (me, n) = (w.rank(), w.size());
            let (right, left) = ((me + 1) % n, (me + n - 1) % n);
            let reqs: Vec<_> = cases
                .iter()
                .enumerate()
                .map(|(k, c)| {
                    w.send_slice(c, right, 2 * k as i32).unwrap();
                    w.isend_vec(c.clone(), right, 2 * k as i32 + 1).unwrap()
                })
                .collect();
            for (k, c) in cases.iter().enumerate() {
                let st = w.probe(left, 2 * k as i32).unwrap();
                assert_eq!(st.len(), c.len(), "case {k}: probe");
                let mut buf = vec![0u8; 4096];
                let st = w.recv_into(&mut buf, left, 2 * k as i32).unwrap();
                assert_eq!((st.len(), &buf[..c.len()]), (c.len(), &c[..]), "case {k}");
                let r = w
                    .irecv_into(vec![0u8; 4096], left, 2 * k as i32 + 1)
                    .unwrap();
                let (buf, st) = r.wait().unwrap();
                assert_eq!(
                    (st.len(), &buf[..c.len()]),
                    (c.len(), &c[..]),
                    "case {k}: irecv"
                );
            }
            // Plain data is not an object, however it ends.
            w.send_slice(cases.last().unwrap(), right, 1000).unwrap();
            assert!(matches!(
                w.recv::<u64>(left, 1000),
                Err(Error::TypeMismatch { .. })
            ));
            assert_eq!(
                w.recv_vec::<u8>(left, 1000).unwrap().0,
                *cases.last().unwrap()
            );
            shmpi::wait_all(reqs).unwrap();
            assert_eq!(w.pending_messages(), 0);
            w.barrier().unwrap();
        },
    );
}

#[test]
fn probes_describe_without_receiving() {
    run_mpi_ns("probes_describe_without_receiving", &ns(), |w| {
        if w.rank() == 1 {
            w.send_slice(&[7u16; 9], 0, 3).unwrap();
            w.send(&42u64, 0, 4).unwrap();
        }
        if w.rank() == 0 {
            let st = w.probe(1, 3).unwrap();
            assert_eq!((st.source(), st.tag(), st.len()), (1, 3, 18));
            let st = loop {
                if let Some(st) = w.iprobe(ANY_SOURCE, 4).unwrap() {
                    break st;
                }
            };
            assert_eq!((st.source(), st.tag()), (1, 4));
            // A matched probe takes the message out of matching.
            let (mut msg, st) = w.mprobe(1, 4).unwrap();
            assert!(w.iprobe(1, 4).unwrap().is_none());
            assert_eq!(st.tag(), 4);
            assert_eq!(msg.recv::<u64>().unwrap(), 42);
            let (raw, _) = w.recv_raw(1, 3).unwrap();
            assert_eq!(raw.to_vec::<u16>().unwrap(), vec![7; 9]);
        }
        assert_eq!(
            w.recv_into(&mut [0u8; 1], PROC_NULL, 0).unwrap().source(),
            PROC_NULL
        );
        w.send(&1u8, PROC_NULL, 0).unwrap();
        w.barrier().unwrap();
    });
}

#[test]
fn small_sends_of_successive_windows_carry_their_own_bytes() {
    // A message delivers exactly its send buffer's bytes (MPI 4.1 §3.7.2), also when
    // the backend reuses the memory of finished sends for the next ones: windows of
    // non-blocking sends of lengths that grow and shrink, each round its own bytes,
    // owned and scoped, every one checked by its receiver.
    run_mpi_ns(
        "small_sends_of_successive_windows_carry_their_own_bytes",
        &ns(),
        |w| {
            let (me, n) = (w.rank(), w.size());
            let (right, left) = ((me + 1) % n, (me + n - 1) % n);
            let byte = |i: usize, r: usize, k: usize, from: i32| {
                (i * 7 + r * 13 + k + from as usize) as u8
            };
            let len = |r: usize, k: usize| (r * 37 + k * 101) % 4097;
            for r in 0..12 {
                let mine = |k| {
                    (0..len(r, k))
                        .map(|i| byte(i, r, k, me))
                        .collect::<Vec<u8>>()
                };
                let owned: Vec<_> = (0..8)
                    .map(|k| w.isend_vec(mine(k), right, k as i32).unwrap())
                    .collect();
                let scoped: Vec<Vec<u8>> = (8..16).map(mine).collect();
                w.scope(|s| {
                    let reqs = (8..16)
                        .map(|k| s.isend_slice(&scoped[k - 8], right, k as i32))
                        .collect::<shmpi::Result<Vec<_>>>()?;
                    for k in 0..16 {
                        let (v, st) = w.recv_vec::<u8>(left, k as i32)?;
                        let want: Vec<u8> = (0..len(r, k)).map(|i| byte(i, r, k, left)).collect();
                        assert_eq!((st.len(), &v), (want.len(), &want), "round {r} tag {k}");
                    }
                    s.wait_all(reqs).map(drop)
                })
                .unwrap();
                for (k, v) in shmpi::wait_all(owned).unwrap().into_iter().enumerate() {
                    assert_eq!(v, mine(k), "send {k} of round {r} gave back its vector");
                }
            }
            w.barrier().unwrap();
        },
    );
}

#[test]
fn large_messages_land_whole_by_tag_and_stay_queued_when_refused() {
    // Past 4 KiB a message travels as a head and a payload of its own: each receive
    // must get its own payload whatever the order of tags, straight into a buffer or
    // into a vector, and a refused one must stay queued with its payload.
    run_mpi_ns(
        "large_messages_land_whole_by_tag_and_stay_queued_when_refused",
        &ns(),
        |w| {
            let (me, n) = (w.rank(), w.size());
            let (right, left) = ((me + 1) % n, (me + n - 1) % n);
            let byte = |i: usize, t: usize, from: i32| (i * 31 + t + from as usize) as u8;
            let sizes = [0usize, 1, 4095, 4096, 4097, 4112, 4113, 100_000, 3 << 20];
            let sends: Vec<_> = sizes
                .iter()
                .enumerate()
                .map(|(t, &len)| {
                    let v: Vec<u8> = (0..len).map(|i| byte(i, t, me)).collect();
                    w.isend_vec(v, right, t as i32).unwrap()
                })
                .collect();
            for (t, &len) in sizes.iter().enumerate().rev() {
                let check = |v: &[u8]| v.iter().enumerate().all(|(i, &x)| x == byte(i, t, left));
                if t % 2 == 0 {
                    let mut buf = vec![0u8; len + 8];
                    let st = w.recv_into(&mut buf, left, t as i32).unwrap();
                    assert_eq!((st.len(), st.tag()), (len, t as i32));
                    assert!(check(&buf[..len]), "tag {t}");
                } else {
                    let (v, st) = w.recv_vec::<u8>(ANY_SOURCE, t as i32).unwrap();
                    assert_eq!((v.len(), st.source()), (len, left));
                    assert!(check(&v), "tag {t}");
                }
            }
            shmpi::wait_all(sends).unwrap();
            w.barrier().unwrap();

            // Refused by a receive that found it first: too long, or another type.
            let big: Vec<u64> = (0..10_000).collect();
            let text = "x".repeat(10_000);
            if me == 0 {
                let a = w.isend_slice(&big, 1, 20).unwrap();
                let b = w.isend(&text, 1, 21).unwrap();
                a.wait().unwrap();
                b.wait().unwrap();
            } else if me == 1 {
                let mut small = vec![0u64; 5000];
                let e = w.recv_into(&mut small, 0, 20).unwrap_err();
                assert!(
                    matches!(
                        e,
                        Error::Truncated {
                            message_len: 80_000,
                            buffer_len: 40_000,
                            ..
                        }
                    ),
                    "{e}"
                );
                let e = w.recv_into(&mut small, 0, 21).unwrap_err();
                assert!(matches!(e, Error::TypeMismatch { .. }), "{e}");
                assert!(e.to_string().contains("String"), "{e}");
                let st = w.probe(0, ANY_TAG).unwrap();
                assert_eq!((st.tag(), st.len()), (20, 80_000));
                let mut whole = vec![0u64; 10_000];
                w.recv_into(&mut whole, 0, 20).unwrap();
                assert_eq!(whole, big);
                assert_eq!(w.irecv::<String>(0, 21).unwrap().wait().unwrap().0, text);
                assert_eq!(w.pending_messages(), 0);
            }
            w.barrier().unwrap();

            // To itself: the send pulls its own head and payload while it waits.
            w.send_slice(&big, me, 23).unwrap();
            let mut back = vec![0u64; 10_000];
            let st = w.sendrecv_slice(&big, me, 24, &mut back, me, 23).unwrap();
            assert_eq!((st.tag(), back == big), (23, true));
            assert_eq!(w.recv_vec::<u64>(me, 24).unwrap().0, big);

            // A large synchronous send finishes only once its receive has begun.
            if me == 0 {
                let mut r = w.issend_slice(&big, 1, 22).unwrap();
                assert!(!r.is_complete().unwrap());
                w.barrier().unwrap();
                r.wait().unwrap();
            } else {
                w.barrier().unwrap();
                if me == 1 {
                    assert_eq!(w.recv_vec::<u64>(0, 22).unwrap().0, big);
                }
            }
        },
    );
}

#[test]
fn a_posted_receive_is_matched_before_a_later_blocking_one() {
    // MPI 4.1 §3.5: two receives that match the same messages take them in the order
    // they were posted, however they wait; here the messages arrive while the blocking
    // receive already waits in MPI.
    run_mpi_ns(
        "a_posted_receive_is_matched_before_a_later_blocking_one",
        &ns(),
        |w| {
            if w.rank() == 0 {
                w.barrier().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(200));
                w.send(&1u32, 1, 5).unwrap();
                w.send_slice(&vec![2u8; 50_000], 1, 5).unwrap();
                w.send(&3u32, 1, 5).unwrap();
            } else if w.rank() == 1 {
                let first = w.irecv::<u32>(0, 5).unwrap();
                let second = w
                    .irecv_into(vec![0u8; 60_000], ANY_SOURCE, ANY_TAG)
                    .unwrap();
                w.barrier().unwrap();
                assert_eq!(w.recv::<u32>(0, 5).unwrap(), 3);
                assert_eq!(first.wait().unwrap().0, 1);
                let (v, st) = second.wait().unwrap();
                assert_eq!(
                    (st.len(), v[..50_000].iter().all(|&x| x == 2)),
                    (50_000, true)
                );
            } else {
                w.barrier().unwrap();
            }
            // Receives posted around a ring, then blocking sends too large to go eagerly:
            // each send waits for a receive that was posted before it started.
            let (me, n) = (w.rank(), w.size());
            let r = w
                .irecv_into(vec![0u32; 300_000], (me + n - 1) % n, 6)
                .unwrap();
            w.send_slice(&vec![me as u32; 300_000], (me + 1) % n, 6)
                .unwrap();
            let (v, _) = r.wait().unwrap();
            assert!(v.iter().all(|&x| x == ((me + n - 1) % n) as u32));
        },
    );
}

#[test]
fn requests_own_their_buffers_and_complete_in_any_order() {
    run_mpi_ns(
        "requests_own_their_buffers_and_complete_in_any_order",
        &ns(),
        |w| {
            let (me, n) = (w.rank(), w.size());
            let right = (me + 1) % n;
            let left = (me + n - 1) % n;
            // Receives posted before the sends, with wildcards and specific tags.
            let mut recvs: Vec<_> = (0..10)
                .map(|t| w.irecv_into(vec![0u32; 1000], left, t).unwrap())
                .collect();
            let obj = w.irecv::<Data>(ANY_SOURCE, 99).unwrap();
            let sends: Vec<_> = (0..10)
                .rev()
                .map(|t| {
                    w.isend_vec(
                        vec![t as u32 + 100 * me as u32; 1000 - t as usize],
                        right,
                        t,
                    )
                    .unwrap()
                })
                .collect();
            let d = Data {
                a: me as i64,
                b: 0.5,
                name: "obj".into(),
            };
            let s = w.isend(&d, right, 99).unwrap();
            let mut got = 0;
            while !recvs.is_empty() {
                for (i, r) in shmpi::wait_some(&mut recvs).unwrap() {
                    let (v, st) = r.unwrap();
                    let t = st.tag() as u32;
                    assert_eq!(st.count::<u32>(), Some(1000 - t as usize), "index {i}");
                    assert_eq!(v[0], t + 100 * left as u32);
                    got += 1;
                }
            }
            assert_eq!(got, 10);
            let bufs = shmpi::wait_all(sends).unwrap();
            assert_eq!(bufs.len(), 10);
            s.wait().unwrap();
            let (d, st) = obj.wait().unwrap();
            assert_eq!((d.a, st.source()), (left as i64, left));
            w.barrier().unwrap();
        },
    );
}

#[test]
fn dropped_and_cancelled_receives_take_no_message() {
    run_mpi_ns(
        "dropped_and_cancelled_receives_take_no_message",
        &ns(),
        |w| {
            let (me, n) = (w.rank(), w.size());
            let right = (me + 1) % n;
            let left = (me + n - 1) % n;
            let mut c = w.irecv_into(vec![0u8; 8], left, 1).unwrap();
            assert!(c.cancel().unwrap());
            let (_, st) = c.wait().unwrap();
            assert!(st.is_cancelled());
            // Posted and dropped before any message with its tag exists: it takes none.
            drop(w.irecv::<u64>(left, 7).unwrap());
            // A forgotten receive is harmless (no message is ever sent to it).
            std::mem::forget(w.irecv_into(vec![0u8; 8], left, 8).unwrap());
            w.barrier().unwrap();
            w.send(&6u64, right, 7).unwrap();
            assert_eq!(w.recv::<u64>(left, 7).unwrap(), 6);
            // Dropped and forgotten sends still arrive.
            drop(w.isend(&5u64, right, 1).unwrap());
            std::mem::forget(w.isend_vec(vec![9u8; 100_000], right, 1).unwrap());
            assert_eq!(w.recv::<u64>(left, 1).unwrap(), 5);
            let (v, _) = w.recv_vec::<u8>(left, 1).unwrap();
            assert_eq!(v, vec![9u8; 100_000]);
            w.barrier().unwrap();
        },
    );
}

#[test]
fn synchronous_sends_complete_once_received() {
    run_mpi_ns("synchronous_sends_complete_once_received", &ns(), |w| {
        let (me, n) = (w.rank(), w.size());
        if me == 0 {
            for to in 1..n {
                w.ssend(&(to as u32), to, 1).unwrap();
            }
            let mut r = w.issend_slice(&[1u8; 10], 1, 2).unwrap();
            // Rank 1 receives it only after this barrier: the issend cannot have finished.
            assert!(!r.is_complete().unwrap());
            w.barrier().unwrap();
            r.wait().unwrap();
        } else {
            assert_eq!(w.recv::<u32>(0, 1).unwrap(), me as u32);
            w.barrier().unwrap();
            if me == 1 {
                let (v, _) = w.recv_vec::<u8>(0, 2).unwrap();
                assert_eq!(v, [1u8; 10]);
            }
        }
    });
}

#[test]
fn bad_arguments_are_errors() {
    run_mpi_ns("bad_arguments_are_errors", &[2], |w| {
        let n = w.size();
        assert!(matches!(w.send(&1u8, n, 0), Err(Error::InvalidRank { .. })));
        assert!(matches!(w.send(&1u8, 0, -5), Err(Error::InvalidTag { .. })));
        assert!(matches!(
            w.recv::<u8>(-7, 0),
            Err(Error::InvalidRank { .. })
        ));
        assert!(shmpi::Window::allocate_shared(w, 64).is_err());
    });
}

#[test]
fn waiting_on_one_of_several_pending_receives_takes_only_its_message() {
    run_mpi_ns(
        "waiting_on_one_of_several_pending_receives_takes_only_its_message",
        &ns(),
        |w| {
            if w.rank() == 1 {
                // Twenty receives of one tag, pending together; the messages arrive one by
                // one while the first is waited on. Each receive gets its own message, in
                // posting order, and none is lost.
                let reqs: Vec<_> = (0..20).map(|_| w.irecv::<u32>(0, 1).unwrap()).collect();
                w.barrier().unwrap();
                for (i, r) in reqs.into_iter().enumerate() {
                    assert_eq!(r.wait().unwrap().0, i as u32);
                }
                assert_eq!(w.recv::<u32>(0, 1).unwrap(), 20);
            } else if w.rank() == 0 {
                w.barrier().unwrap();
                for i in 0..=20u32 {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    w.send(&i, 1, 1).unwrap();
                }
            } else {
                w.barrier().unwrap();
            }
        },
    );
}

/// Persistent requests on the MPI backend, by the rules of `tests/requests.rs`: a halo
/// of `recv_init`/`send_init` restarted many times with `start_all` (each start sends the
/// buffer as it is then), waited on in either order or through `wait_any_of`, a
/// persistent receive cancelled, and `PROC_NULL` ones that complete at once.
#[test]
fn persistent_requests_restart_with_their_buffers() {
    run_mpi_ns(
        "persistent_requests_restart_with_their_buffers",
        &ns(),
        |w| {
            let (me, n) = (w.rank(), w.size());
            let (right, left) = ((me + 1) % n, (me + n - 1) % n);
            let mut halo = [
                w.recv_init(vec![0f64; 300], left, 4).unwrap(),
                w.send_init(vec![0f64; 300], right, 4).unwrap(),
            ];
            for step in 0..50 {
                halo[1].buf_mut().unwrap().fill(step as f64 + me as f64);
                shmpi::start_all(&mut halo).unwrap();
                assert!(halo[0].is_active() && halo[0].buf().is_err());
                if step % 2 == 0 {
                    let st = halo[0].wait().unwrap();
                    assert_eq!((st.source(), st.count::<f64>()), (left, Some(300)));
                    halo[1].wait().unwrap();
                } else {
                    let (a, b) = halo.split_at_mut(1);
                    let i = shmpi::wait_any_of(&mut [&mut a[0], &mut b[0]]).unwrap();
                    halo[i].wait().unwrap();
                    halo[1 - i].wait().unwrap();
                }
                assert!(
                    halo[0]
                        .buf()
                        .unwrap()
                        .iter()
                        .all(|&x| x == step as f64 + left as f64)
                );
            }
            let mut r = w.recv_init(vec![0u8; 4], ANY_SOURCE, 77).unwrap();
            r.start().unwrap();
            assert!(r.cancel().unwrap());
            assert!(r.wait().unwrap().is_cancelled());
            let mut null = w.send_init(vec![1u8], PROC_NULL, 0).unwrap();
            null.start().unwrap();
            null.wait().unwrap();
            w.barrier().unwrap();
        },
    );
}

/// A small send that MPI finished as it started, persistent or not, is complete for
/// the functions over many requests at once (`MPI_Waitany` returns a completed
/// request): here the receive beside it gets its message only after every rank's wait
/// returned.
#[test]
fn sends_finished_at_start_are_complete_for_wait_any() {
    run_mpi_ns(
        "sends_finished_at_start_are_complete_for_wait_any",
        &ns(),
        |w| {
            let (me, n) = (w.rank(), w.size());
            let (right, left) = ((me + 1) % n, (me + n - 1) % n);
            let mut recv = w.recv_init(vec![0u8; 8], left, 9).unwrap();
            let mut send = w.send_init(vec![me as u8; 8], right, 8).unwrap();
            for round in 0..3u8 {
                recv.start().unwrap();
                send.start().unwrap();
                let i = shmpi::wait_any_of(&mut [&mut recv, &mut send]).unwrap();
                assert_eq!(i, 1, "round {round}");
                send.wait().unwrap();
                assert_eq!(
                    shmpi::test_any_of(&mut [&mut recv]).unwrap(),
                    None,
                    "round {round}"
                );
                w.barrier().unwrap();
                w.send_slice(&[round; 8], right, 9).unwrap();
                assert_eq!(recv.wait().unwrap().len(), 8);
                assert_eq!(recv.buf().unwrap(), [round; 8]);
                assert_eq!(w.recv_vec::<u8>(left, 8).unwrap().0, [left as u8; 8]);
            }
            // The same with a request's small send, finished at start as well.
            let mut r = w.irecv_into(vec![0u8; 8], left, 11).unwrap();
            let mut s = w.isend_vec(vec![me as u8; 8], right, 10).unwrap();
            assert_eq!(shmpi::wait_any_of(&mut [&mut r, &mut s]).unwrap(), 1);
            assert_eq!(s.wait().unwrap(), [me as u8; 8]);
            w.barrier().unwrap();
            w.send_slice(&[5u8; 8], right, 11).unwrap();
            assert_eq!(r.wait().unwrap().0, [5u8; 8]);
            assert_eq!(w.recv_vec::<u8>(left, 10).unwrap().0, [left as u8; 8]);
        },
    );
}

/// Scoped requests and owned buffers on the MPI backend (the rules of tests/scope.rs):
/// a window of sends from one buffer with receives in place, handles dropped before the
/// scope's end (it finishes them), a scope that fails (its unmatched receive is
/// withdrawn, untouched), and one `Arc<[u8]>` in several `isend_buf`s.
/// A non-blocking receive posted when its message is already in (MPI takes it from
/// its unexpected queue as the receive is posted) completes as a blocking one would:
/// accepted into its buffer, or refused with the message still queued.
#[test]
fn receives_posted_after_their_messages_arrived() {
    run_mpi_ns("receives_posted_after_their_messages_arrived", &ns(), |w| {
        let n = w.size();
        if w.rank() == 0 {
            for to in 1..n {
                w.send_slice(&[1u64, 2, 3], to, 5).unwrap();
                w.send(&String::from("text"), to, 6).unwrap();
                w.send_slice(&[9u8; 8], to, 7).unwrap();
                w.send_slice(&[4u16; 3], to, 8).unwrap();
            }
            w.barrier().unwrap();
        } else {
            // After the barrier the messages have left rank 0; a poll of MPI's own
            // (a test of an unrelated receive) lets them reach the unexpected queue.
            w.barrier().unwrap();
            let mut idle = w.irecv_into(vec![0u8; 1], 0, 99).unwrap();
            for _ in 0..100 {
                assert!(idle.test().unwrap().is_none());
            }
            assert!(idle.cancel().unwrap());
            let e = w
                .irecv_into(vec![0u64; 2], 0, 5)
                .unwrap()
                .wait()
                .unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::Truncated {
                        message_len: 24,
                        buffer_len: 16,
                        ..
                    }
                ),
                "{e}"
            );
            let e = w
                .irecv_into(vec![0u32; 4], 0, 6)
                .unwrap()
                .wait()
                .unwrap_err();
            assert!(matches!(e, Error::TypeMismatch { .. }), "{e}");
            let e = w
                .irecv_into(vec![0u32; 4], 0, 8)
                .unwrap()
                .wait()
                .unwrap_err();
            assert!(matches!(e, Error::ElementSize { .. }), "{e}");
            let (got, st) = w.irecv_into(vec![0u8; 16], 0, 7).unwrap().wait().unwrap();
            assert_eq!(
                (&got[..8], &got[8..], st.len(), st.tag()),
                (&[9u8; 8][..], &[0u8; 8][..], 8, 7)
            );
            let mut three = [0u64; 3];
            w.scope(|s| {
                let (got, st) = s.irecv_into(&mut three, 0, 5)?.wait()?;
                assert_eq!((st.source(), st.len()), (0, 24));
                got[0] += 10;
                Ok(())
            })
            .unwrap();
            assert_eq!(three, [11, 2, 3]);
            assert_eq!(w.recv::<String>(0, 6).unwrap(), "text");
            assert_eq!(w.recv_vec::<u16>(0, 8).unwrap().0, [4, 4, 4]);
            assert_eq!(w.pending_messages(), 0);
        }
    });
}

#[test]
fn scoped_requests_and_owned_buffers() {
    run_mpi_ns("scoped_requests_and_owned_buffers", &ns(), |w| {
        use std::sync::Arc;
        let (me, n) = (w.rank(), w.size());
        let (next, prev) = ((me + 1) % n, (me + n - 1) % n);
        for size in [8usize, 70_000] {
            let send: Vec<u8> = (0..size).map(|i| (i * 3 + me as usize) as u8).collect();
            let mut recv = vec![0u8; size * 8];
            w.scope(|s| {
                let rreqs = recv
                    .chunks_mut(size)
                    .enumerate()
                    .map(|(t, c)| s.irecv_into(c, prev, t as i32))
                    .collect::<shmpi::Result<Vec<_>>>()?;
                for t in 0..8 {
                    drop(s.isend_slice(&send, next, t)?); // finished by the scope's end
                }
                for (got, st) in s.wait_all(rreqs)? {
                    assert_eq!((st.source(), st.len(), got.len()), (prev, size, size));
                }
                Ok(())
            })
            .unwrap();
            let want: Vec<u8> = (0..size).map(|i| (i * 3 + prev as usize) as u8).collect();
            assert!(recv.chunks(size).all(|c| c == &want[..]));
        }
        let mut untouched = [7u8; 4];
        let r = w.scope(|s| {
            let _r = s.irecv_into(&mut untouched, prev, 50)?;
            Err::<(), _>(Error::Usage("on purpose".into()))
        });
        assert!(matches!(r, Err(Error::Usage(_))));
        assert_eq!(untouched, [7; 4]);
        let shared: Arc<[u8]> = vec![me as u8; 1000].into();
        let reqs = (0..3)
            .map(|t| w.isend_buf(shared.clone(), next, 60 + t))
            .collect::<shmpi::Result<Vec<_>>>()
            .unwrap();
        for t in 0..3 {
            let (got, _) = w.recv_vec::<u8>(prev, 60 + t).unwrap();
            assert_eq!(got, vec![prev as u8; 1000]);
        }
        for back in shmpi::wait_all(reqs).unwrap() {
            assert!(Arc::ptr_eq(&back, &shared));
        }
        w.barrier().unwrap();
    });
}

/// Receives into one buffer of cells on the MPI backend (`Scope::irecv_cells`, the rule
/// of tests/scope.rs): a window of them, small messages and large ones (whose payload
/// MPI writes into a vector of the runtime's, copied into the cells in this process),
/// each with its status; the buffer ends holding one of the messages whole (on this
/// backend the last to complete, not always the last sent); a message too long fails
/// with `Truncated` and stays queued, the cells untouched.
#[test]
fn a_window_of_receives_lands_in_one_buffer_of_cells() {
    run_mpi_ns(
        "a_window_of_receives_lands_in_one_buffer_of_cells",
        &ns(),
        |w| {
            use std::cell::Cell;
            let (me, n) = (w.rank(), w.size());
            let (next, prev) = ((me + 1) % n, (me + n - 1) % n);
            let msg = |r: i32, t: usize, size: usize| -> Vec<u8> {
                (0..size)
                    .map(|i| (i * 7 + r as usize * 3 + t * 11) as u8)
                    .collect()
            };
            for size in [8usize, 70_000] {
                let sends: Vec<Vec<u8>> = (0..8).map(|t| msg(me, t, size)).collect();
                let mut buf = vec![0u8; size];
                let cells = Cell::from_mut(&mut buf[..]).as_slice_of_cells();
                w.scope(|s| {
                    let rreqs = (0..8)
                        .map(|_| s.irecv_cells(cells, prev, 4))
                        .collect::<shmpi::Result<Vec<_>>>()?;
                    for m in &sends {
                        drop(s.isend_slice(m, next, 4)?);
                    }
                    for (got, st) in s.wait_all(rreqs)? {
                        assert_eq!((st.source(), st.len(), got.len()), (prev, size, size));
                    }
                    Ok(())
                })
                .unwrap();
                // Which one is written last is the order the receives complete in,
                // which MPI does not fix for large messages: one of them, whole.
                assert!(
                    (0..8).any(|t| buf == msg(prev, t, size)),
                    "size {size}: not one whole message"
                );
            }
            w.send_slice(&[1u32; 3], next, 5).unwrap();
            let mut two = [9u32; 2];
            let cells = Cell::from_mut(&mut two[..]).as_slice_of_cells();
            w.scope(|s| match s.irecv_cells(cells, prev, 5)?.wait() {
                Err(Error::Truncated { .. }) => Ok(()),
                other => panic!("expected Truncated, got {other:?}"),
            })
            .unwrap();
            assert_eq!(two, [9, 9]);
            assert_eq!(w.recv_vec::<u32>(prev, 5).unwrap().0, [1, 1, 1]);
            w.barrier().unwrap();
        },
    );
}

/// Loans run unchanged on the MPI backend, where MPI's ranks share no pool: slices
/// and objects arrive as sent (a copy in the message), by wildcards and in each
/// sender's order, typed as on the segment, and the pool does not fill up.
#[test]
fn loans_of_slices_and_objects_travel_as_copies() {
    run_mpi_ns("loans_of_slices_and_objects_travel_as_copies", &ns(), |w| {
        let (me, n) = (w.rank(), w.size());
        if me != 0 {
            // 40 loans of 4 MiB each: ten times a pool that kept them would hold.
            for k in 0..40u32 {
                if k % 2 == 0 {
                    let mut l = w.loan_slice::<u32>(1 << 20).unwrap();
                    l.fill(me as u32 * 1000 + k);
                    w.send_loan(l, 0, k as i32).unwrap();
                } else {
                    let d = Data {
                        a: k as i64,
                        b: me as f64,
                        name: "x".repeat(k as usize * 1000),
                    };
                    w.send_loan_object(w.loan_object(&d).unwrap(), 0, k as i32)
                        .unwrap();
                }
            }
            return;
        }
        let mut next = vec![0u32; n as usize];
        for _ in 0..40 * (n - 1) {
            let st = w.probe(ANY_SOURCE, ANY_TAG).unwrap();
            let (src, k) = (st.source(), next[st.source() as usize]);
            assert_eq!(st.tag(), k as i32, "rank {src}'s loans in order");
            if k % 2 == 0 {
                let e = w.recv_loan_object::<Data>(src, ANY_TAG).unwrap_err();
                assert!(matches!(e, Error::TypeMismatch { .. }), "{e}");
                let (v, st) = w.recv_loan::<u32>(src, ANY_TAG).unwrap();
                assert_eq!(st.count::<u32>(), Some(1 << 20));
                assert!(v.iter().all(|&x| x == src as u32 * 1000 + k));
            } else {
                let e = w.recv::<Data>(src, ANY_TAG).unwrap_err();
                assert!(matches!(e, Error::TypeMismatch { .. }), "{e}");
                let (v, _) = w.recv_loan_object::<Data>(src, ANY_TAG).unwrap();
                assert_eq!(
                    (v.a.to_native(), v.b.to_native(), v.name.len()),
                    (k as i64, src as f64, k as usize * 1000)
                );
            }
            next[src as usize] += 1;
        }
        let l = w.loan_slice::<u8>(8).unwrap();
        w.send_loan(l, PROC_NULL, 0).unwrap();
    });
}

#[test]
fn a_large_send_finishes_whatever_its_receiver_waits_for() {
    // On the segment a send never waits for its receive. Over MPI a large message's
    // payload needs a posted receive, and its receiver may be waiting for a later
    // message of the same sender (MPI 4.1 §3.5 lets it receive them in any order) in a
    // blocking receive, a request's wait, a blocking probe or a loop of tests: each of
    // these must take the payload in, or both ranks wait forever.
    run_mpi_ns(
        "a_large_send_finishes_whatever_its_receiver_waits_for",
        &[2],
        |w| {
            let big: Vec<u64> = (0..(1 << 17)).collect();
            let me = w.rank();
            for (phase, tag) in [(0, 10), (1, 20), (2, 30), (3, 40)] {
                if me == 0 {
                    w.send_slice(&big, 1, tag).unwrap();
                    w.send_slice(&[phase as u64], 1, tag + 1).unwrap();
                } else if me == 1 {
                    let later = match phase {
                        0 => w.recv_vec::<u64>(0, tag + 1).unwrap().0,
                        1 => {
                            w.irecv_into(vec![0u64; 1], 0, tag + 1)
                                .unwrap()
                                .wait()
                                .unwrap()
                                .0
                        }
                        2 => {
                            assert_eq!(w.probe(0, tag + 1).unwrap().tag(), tag + 1);
                            w.recv_vec::<u64>(0, tag + 1).unwrap().0
                        }
                        _ => {
                            let mut r = w.irecv_into(vec![0u64; 1], 0, tag + 1).unwrap();
                            while !r.is_complete().unwrap() {}
                            r.wait().unwrap().0
                        }
                    };
                    assert_eq!(later, [phase as u64], "phase {phase}");
                    let mut back = vec![0u64; big.len()];
                    w.recv_into(&mut back, 0, tag).unwrap();
                    assert!(
                        back == big,
                        "phase {phase}: the large message arrived whole"
                    );
                }
            }
            // The same over an intercommunicator, whose twin is a duplicate: each rank
            // is alone in its group, and the other one is remote rank 0.
            let low = me == 0;
            let half = w.split(i32::from(low), 0).unwrap().expect("a color");
            let inter = half.intercomm_create(0, w, i32::from(low), 77).unwrap();
            if low {
                inter.send_slice(&big, 0, 50).unwrap();
                inter.send_slice(&[4u64], 0, 51).unwrap();
            } else {
                assert_eq!(inter.recv_vec::<u64>(0, 51).unwrap().0, [4]);
                assert!(inter.recv_vec::<u64>(0, 50).unwrap().0 == big);
            }
            w.barrier().unwrap();
        },
    );
}

#[test]
fn a_large_synchronous_send_waits_for_its_receive_even_if_its_payload_went_ahead() {
    // MPI 4.1 §3.4: a synchronous send completes only once a matching receive has
    // started. Its receiver may take a large payload in early while it waits for
    // something else; the send must still wait for the receive.
    run_mpi_ns(
        "a_large_synchronous_send_waits_for_its_receive_even_if_its_payload_went_ahead",
        &[2],
        |w| {
            let big: Vec<u64> = (0..(1 << 17)).collect();
            if w.rank() == 0 {
                let mut r = w.issend_slice(&big, 1, 5).unwrap();
                w.send_slice(&[1u8], 1, 6).unwrap();
                // Rank 1 has waited for tag 6 and for this message, not received tag 5.
                w.recv_vec::<u8>(1, 7).unwrap();
                for _ in 0..1000 {
                    assert!(!r.is_complete().unwrap(), "finished before its receive");
                }
                w.send_slice(&[2u8], 1, 8).unwrap();
                r.wait().unwrap();
            } else if w.rank() == 1 {
                w.recv_vec::<u8>(0, 6).unwrap();
                // Long enough a wait for the payload to have come and been taken in.
                let t = std::time::Instant::now();
                let mut r = w.irecv_into(vec![0u8; 1], 0, 99).unwrap();
                while t.elapsed() < std::time::Duration::from_millis(50) {
                    assert!(!r.is_complete().unwrap());
                }
                assert!(r.cancel().unwrap());
                w.send_slice(&[0u8], 0, 7).unwrap();
                w.recv_vec::<u8>(0, 8).unwrap();
                assert_eq!(w.recv_vec::<u64>(0, 5).unwrap().0, big);
            }
            w.barrier().unwrap();
        },
    );
}

#[test]
fn a_scoped_large_send_reads_its_slice_until_sent_even_when_its_scope_fails() {
    // A scoped send reads its borrowed slice in place: its scope's end, whether the
    // scope succeeds or fails, must not return before MPI has read all of it. Every
    // rank's scope ends with its send to the next rank unwaited, and the next rank is
    // in the same wait, so the payloads can only go by being taken in early.
    run_mpi_ns(
        "a_scoped_large_send_reads_its_slice_until_sent_even_when_its_scope_fails",
        &ns(),
        |w| {
            let (me, n) = (w.rank(), w.size());
            let (next, prev) = ((me + 1) % n, (me + n - 1) % n);
            let sent = |r: i32| {
                (0..100_000u64)
                    .map(|i| i * 7 + r as u64)
                    .collect::<Vec<_>>()
            };
            for fail in [false, true] {
                let mut data = sent(me);
                let r = w.scope(|s| {
                    drop(s.isend_slice(&data, next, 3)?);
                    if fail {
                        return Err(Error::Usage("on purpose".into()));
                    }
                    Ok(())
                });
                assert_eq!(r.is_err(), fail);
                // The scope is over: MPI reads the slice no more.
                data.fill(u64::MAX);
                w.send_slice(&[1u8], next, 4).unwrap();
                w.recv_vec::<u8>(prev, 4).unwrap();
                assert!(
                    w.recv_vec::<u64>(prev, 3).unwrap().0 == sent(prev),
                    "fail: {fail}"
                );
            }
            w.barrier().unwrap();
        },
    );
}

#[test]
fn a_scopes_unwaited_synchronous_sends_do_not_hold_its_end() {
    // A scope's end waits only for what still reads or writes its borrowed buffers: a
    // synchronous send whose message is a copy (a small one, or a large one's payload)
    // completes on its own once received, as on the segment, even when the receive
    // comes only after the sender's next collective.
    run_mpi_ns(
        "a_scopes_unwaited_synchronous_sends_do_not_hold_its_end",
        &[2],
        |w| {
            let big: Vec<u64> = (0..100_000).collect();
            if w.rank() == 0 {
                w.scope(|s| {
                    drop(s.issend_slice(&[7u64], 1, 1)?);
                    drop(s.issend_slice(&big, 1, 2)?);
                    Ok(())
                })
                .unwrap();
                w.barrier().unwrap();
            } else {
                w.barrier().unwrap();
                assert_eq!(w.recv_vec::<u64>(0, 1).unwrap().0, [7]);
                assert!(w.recv_vec::<u64>(0, 2).unwrap().0 == big);
            }
            w.barrier().unwrap();
        },
    );
}
