//! Send modes and special peers, from MPI's rules, through the real launcher:
//! `PROC_NULL` (MPI 3.11), synchronous sends (MPI 3.4: "completes only if a matching
//! receive is posted, and the receive operation has started to receive the message"),
//! matched probes (MPI 3.8.2: a matched message "is no longer available to any other
//! receive"), `sendrecv_replace`, and mpi4py's receive-anything defaults.

mod common;

use std::time::{Duration, Instant};

use common::{is_child, launch_self, run_ranks};
use shmpi::{ANY_SOURCE, ANY_TAG, Communicator, Error, PROC_NULL, Value};

fn assert_null_status(st: shmpi::Status) {
    assert_eq!(st.source(), PROC_NULL);
    assert_eq!(st.tag(), ANY_TAG);
    assert_eq!(st.len(), 0);
    assert_eq!(st.count::<f64>(), Some(0));
}

// ---- PROC_NULL ------------------------------------------------------------------------

/// Every operation on `PROC_NULL` completes at once: sends send nothing, receives leave
/// the buffer untouched with the null status.
fn proc_null_everywhere(w: &Communicator) {
    // Sends complete and send nothing.
    w.send(&5u32, PROC_NULL, 3).unwrap();
    w.send_slice(&[1.0f64, 2.0], PROC_NULL, 3).unwrap();
    w.ssend(&5u32, PROC_NULL, 3).unwrap();
    w.ssend_slice(&[1u8], PROC_NULL, 3).unwrap();
    w.bsend(&5u32, PROC_NULL, 3).unwrap();
    w.rsend_slice(&[1u8], PROC_NULL, 3).unwrap();
    // A send to PROC_NULL still needs a valid tag.
    assert!(matches!(
        w.send(&5u32, PROC_NULL, -7),
        Err(Error::InvalidTag { .. })
    ));
    let mut r = w.isend(&"x".to_string(), PROC_NULL, 1).unwrap();
    assert!(
        r.is_complete().unwrap(),
        "isend to PROC_NULL is complete at once"
    );
    r.wait().unwrap();
    let mut r = w.issend_slice(&[1u16, 2], PROC_NULL, 1).unwrap();
    assert!(
        r.is_complete().unwrap(),
        "issend to PROC_NULL is complete at once"
    );
    r.wait().unwrap();
    let v = w
        .isend_vec(vec![7u64; 3], PROC_NULL, 1)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(v, vec![7; 3], "the vector comes back");
    let v = w
        .issend_vec(vec![8u64; 2], PROC_NULL, 1)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(v, vec![8; 2]);

    // Receives complete at once, buffer untouched, null status.
    let mut buf = [42.0f64; 4];
    assert_null_status(w.recv_into(&mut buf, PROC_NULL, 5).unwrap());
    assert_null_status(w.recv_into(&mut buf, PROC_NULL, ANY_TAG).unwrap());
    assert_eq!(buf, [42.0; 4]);
    let (v, st) = w.recv_vec::<i32>(PROC_NULL, 5).unwrap();
    assert!(v.is_empty());
    assert_null_status(st);
    let mut r = w.irecv_into(vec![9u8; 3], PROC_NULL, 5).unwrap();
    assert!(
        r.is_complete().unwrap(),
        "irecv from PROC_NULL is complete at once"
    );
    let (b, st) = r.wait().unwrap();
    assert_eq!(b, vec![9; 3], "untouched");
    assert_null_status(st);
    assert_null_status(w.probe(PROC_NULL, 5).unwrap());
    assert_null_status(w.iprobe(PROC_NULL, ANY_TAG).unwrap().expect("at once"));

    // An object receive has nothing to return: an error that says what to use.
    let e = w.recv::<u32>(PROC_NULL, 5).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("PROC_NULL") && text.contains("recv_opt") && text.contains("recv_into"),
        "{text}"
    );
    assert_eq!(e.class(), shmpi::ErrorClass::Rank);
    assert!(w.irecv::<u32>(PROC_NULL, 5).is_err());
    assert!(w.recv_opt::<u32>(PROC_NULL, 5).unwrap().is_none());
    assert!(
        w.recv_opt::<u32>(PROC_NULL, -5).is_err(),
        "the tag is still checked"
    );

    // Matched probes give the null message.
    let (mut m, st) = w.mprobe(PROC_NULL, 1).unwrap();
    assert_null_status(st);
    assert!(m.is_null());
    let mut b = [3i8; 2];
    assert_null_status(m.recv_into(&mut b).unwrap());
    assert_eq!(b, [3; 2]);
    let (mut m, _) = w.improbe(PROC_NULL, ANY_TAG).unwrap().expect("at once");
    assert!(m.recv::<u32>().is_err());
    let (raw, st) = w.recv_raw(PROC_NULL, 1).unwrap();
    assert_null_status(st);
    assert!(raw.bytes().is_empty() && raw.type_name().is_none());

    // Collective roots may not be PROC_NULL (MPI allows it only in intercommunicators).
    let mut x = [1u8];
    let bad_root = |r: shmpi::Result<()>| {
        matches!(
            r,
            Err(Error::InvalidRank {
                rank: PROC_NULL,
                ..
            } | Error::InvalidRoot { .. })
        )
    };
    assert!(bad_root(w.bcast_into(&mut x, PROC_NULL)));
    assert!(bad_root(w.bcast(Some(1u8), PROC_NULL).map(|_| ())));
    // Nothing was sent anywhere.
    w.barrier().unwrap();
    assert!(w.iprobe_any().unwrap().is_none());
    assert_eq!(w.pending_messages(), 0);
}

#[test]
fn proc_null_completes_at_once_at_1_rank() {
    run_ranks(
        "proc_null_completes_at_once_at_1_rank",
        1,
        proc_null_everywhere,
    );
}

#[test]
fn proc_null_completes_at_once_at_3_ranks() {
    run_ranks(
        "proc_null_completes_at_once_at_3_ranks",
        3,
        proc_null_everywhere,
    );
}

/// A chain (a non-periodic 1-D grid): each rank passes its value to the right and gets
/// its left neighbour's; the ends talk to `PROC_NULL` from `CartComm::shift`.
fn chain_shift(w: &Communicator) {
    let n = w.size();
    let cart = w.cart_create(&[n], &[false], false).unwrap().unwrap();
    let (left, right) = cart.shift(0, 1).unwrap();
    let me = cart.rank();
    assert_eq!(left, if me == 0 { PROC_NULL } else { me - 1 });
    assert_eq!(right, if me == n - 1 { PROC_NULL } else { me + 1 });

    // sendrecv_slice: send right, receive from the left.
    let out = [me as f64; 1000];
    let mut got = [-1.0f64; 1000];
    let st = cart
        .sendrecv_slice(&out, right, 7, &mut got, left, 7)
        .unwrap();
    if left == PROC_NULL {
        assert_null_status(st);
        assert_eq!(got, [-1.0; 1000], "untouched at the left edge");
    } else {
        assert_eq!(
            (st.source(), st.tag(), st.count::<f64>()),
            (left, 7, Some(1000))
        );
        assert_eq!(got, [left as f64; 1000]);
    }

    // sendrecv_replace, the other way (and long enough to stream).
    let mut buf = vec![me as u32; 300_000];
    let st = cart.sendrecv_replace(&mut buf, left, 8, right, 8).unwrap();
    if right == PROC_NULL {
        assert_null_status(st);
        assert!(buf.iter().all(|&x| x == me as u32), "keeps what was sent");
    } else {
        assert_eq!(st.source(), right);
        assert!(buf.iter().all(|&x| x == right as u32));
    }

    // Objects: sendrecv to PROC_NULL sends nothing; a send to the right edge too.
    cart.send(&format!("from {me}"), right, 9).unwrap();
    match cart.recv_opt::<String>(left, 9).unwrap() {
        None => assert_eq!(left, PROC_NULL),
        Some((s, st)) => {
            assert_eq!(s, format!("from {left}"));
            assert_eq!(st.source(), left);
        }
    }
    cart.barrier().unwrap();
    assert_eq!(cart.pending_messages(), 0);
}

#[test]
fn proc_null_at_the_edges_of_a_chain_at_1_rank() {
    run_ranks(
        "proc_null_at_the_edges_of_a_chain_at_1_rank",
        1,
        chain_shift,
    );
}

#[test]
fn proc_null_at_the_edges_of_a_chain_at_2_ranks() {
    run_ranks(
        "proc_null_at_the_edges_of_a_chain_at_2_ranks",
        2,
        chain_shift,
    );
}

#[test]
fn proc_null_at_the_edges_of_a_chain_at_4_ranks() {
    run_ranks(
        "proc_null_at_the_edges_of_a_chain_at_4_ranks",
        4,
        chain_shift,
    );
}

#[test]
fn proc_null_at_the_edges_of_a_chain_at_8_ranks_oversubscribed() {
    run_ranks(
        "proc_null_at_the_edges_of_a_chain_at_8_ranks_oversubscribed",
        8,
        chain_shift,
    );
}

// ---- sendrecv_replace -----------------------------------------------------------------

fn replace_ring(w: &Communicator) {
    let (n, me) = (w.size(), w.rank());
    for len in [0usize, 1, 1000, 200_000] {
        let mut buf: Vec<i64> = (0..len as i64).map(|i| i * 100 + me as i64).collect();
        let st = w
            .sendrecv_replace(&mut buf, (me + 1) % n, 4, (me + n - 1) % n, 4)
            .unwrap();
        let from = (me + n - 1) % n;
        assert_eq!((st.source(), st.count::<i64>()), (from, Some(len)));
        assert!(
            buf.iter()
                .enumerate()
                .all(|(i, &x)| x == i as i64 * 100 + from as i64)
        );
    }
}

#[test]
fn sendrecv_replace_rotates_a_ring_at_1_rank() {
    run_ranks("sendrecv_replace_rotates_a_ring_at_1_rank", 1, replace_ring);
}

#[test]
fn sendrecv_replace_rotates_a_ring_at_3_ranks() {
    run_ranks(
        "sendrecv_replace_rotates_a_ring_at_3_ranks",
        3,
        replace_ring,
    );
}

#[test]
fn sendrecv_replace_rotates_a_ring_at_8_ranks_oversubscribed() {
    run_ranks(
        "sendrecv_replace_rotates_a_ring_at_8_ranks_oversubscribed",
        8,
        replace_ring,
    );
}

// ---- mpi4py-style defaults and raw receives -------------------------------------------

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, PartialEq)]
struct Point {
    x: i32,
    y: i32,
}

#[test]
fn recv_any_probe_any_and_raw_receives_take_whatever_was_sent() {
    run_ranks(
        "recv_any_probe_any_and_raw_receives_take_whatever_was_sent",
        3,
        |w| {
            if w.rank() != 0 {
                let r = w.rank();
                w.send(&(r as u64 * 10), 0, r).unwrap();
                w.send(
                    &shmpi::value!({"rank": (r as i64), "tags": [1, 2]}),
                    0,
                    20 + r,
                )
                .unwrap();
                w.send_slice(&[r as f32; 3], 0, 30 + r).unwrap();
                w.send(&Point { x: r, y: -r }, 0, 40 + r).unwrap();
                return;
            }
            // The earliest message (whichever rank's), then the other rank's.
            let st = w.probe_any().unwrap();
            let (v, st2) = w.recv_any::<u64>().unwrap();
            assert_eq!(st, st2);
            assert_eq!((v, st2.tag()), (st2.source() as u64 * 10, st2.source()));
            let other = 3 - st2.source();
            let (v, st) = w.recv_with_status::<u64>(other, ANY_TAG).unwrap();
            assert_eq!(
                (v, st.source(), st.tag()),
                (other as u64 * 10, other, other)
            );
            for src in [1, 2] {
                // Whatever comes next from src: a Value, as mpi4py's comm.recv() would.
                let (raw, st) = w.recv_raw(src, ANY_TAG).unwrap();
                assert_eq!(st.tag(), 20 + src);
                assert!(raw.is_object());
                assert!(raw.type_name().unwrap().ends_with("Value"), "{raw:?}");
                let v: Value = raw.decode().unwrap();
                assert_eq!(v.get("rank").and_then(Value::as_i64), Some(src as i64));
                assert!(matches!(
                    raw.decode::<u64>(),
                    Err(Error::TypeMismatch { .. })
                ));
                // A slice: no type name, the data as bytes.
                let (raw, st) = w.recv_raw(src, ANY_TAG).unwrap();
                assert_eq!((st.tag(), st.len()), (30 + src, 12));
                assert_eq!(raw.type_name(), None);
                assert_eq!(raw.bytes(), bytemuck::cast_slice(&[src as f32; 3]));
                assert_eq!(raw.to_vec::<f32>().unwrap(), vec![src as f32; 3]);
                assert!(matches!(
                    raw.to_vec::<f64>(),
                    Err(Error::ElementSize { .. })
                ));
            }
            // A struct, whose archive is the bytes.
            while w.iprobe_any().unwrap().is_none() {}
            for _ in 0..2 {
                let (raw, st) = w.recv_raw(ANY_SOURCE, ANY_TAG).unwrap();
                assert!(raw.type_name().unwrap().ends_with("Point"));
                assert!(!raw.bytes().is_empty());
                let p: Point = raw.decode().unwrap();
                assert_eq!(
                    p,
                    Point {
                        x: st.source(),
                        y: -st.source()
                    }
                );
            }
            assert!(w.iprobe_any().unwrap().is_none());
        },
    );
}

// ---- synchronous sends ----------------------------------------------------------------

/// MPI: a synchronous send's request is not complete before the receive starts. The
/// receiver sleeps before receiving; the sender's test() stays false meanwhile, and a
/// blocking ssend returns no earlier than the receive.
#[test]
fn a_synchronous_send_completes_only_once_its_receive_started() {
    run_ranks(
        "a_synchronous_send_completes_only_once_its_receive_started",
        2,
        |w| {
            for len in [0usize, 1024, 100 << 10, 8 << 20] {
                w.barrier().unwrap();
                if w.rank() == 1 {
                    std::thread::sleep(Duration::from_millis(200));
                    let (v, _) = w.recv_vec::<u8>(0, 1).unwrap();
                    assert_eq!(v.len(), len);
                    std::thread::sleep(Duration::from_millis(200));
                    let mut b = vec![0u8; len];
                    w.recv_into(&mut b, 0, 2).unwrap();
                    assert!(b.iter().all(|&x| x == 2));
                } else {
                    let t = Instant::now();
                    let mut r = w.issend_vec(vec![1u8; len], 1, 1).unwrap();
                    while t.elapsed() < Duration::from_millis(150) {
                        assert!(
                            !r.is_complete().unwrap(),
                            "complete before the receive ({len} B)"
                        );
                    }
                    assert_eq!(r.wait().unwrap().len(), len, "the vector comes back");
                    assert!(t.elapsed() >= Duration::from_millis(190));
                    let t = Instant::now();
                    w.ssend_slice(&vec![2u8; len], 1, 2).unwrap();
                    assert!(
                        t.elapsed() >= Duration::from_millis(150),
                        "ssend returned before the receive ({len} B, {:?})",
                        t.elapsed()
                    );
                }
            }
        },
    );
}

/// A synchronous send completes by whichever receive matches it: a receive posted
/// before, a blocking receive after, a later receive from the unexpected queue (the
/// message arriving there acknowledges nothing), a wildcard receive, a matched probe.
fn ssend_every_way_matched(w: &Communicator) {
    let n = w.size();
    let me = w.rank();
    let to = (me + 1) % n;
    let from = (me + n - 1) % n;
    for len in [0usize, 1024, 100 << 10, 8 << 20] {
        let data: Vec<u32> = (0..len as u32 / 4).map(|i| i ^ me as u32).collect();
        let check = |v: &[u32]| {
            assert_eq!(v.len(), len / 4);
            assert!(
                v.iter()
                    .enumerate()
                    .all(|(i, &x)| x == i as u32 ^ from as u32)
            );
        };
        // 1. Posted before (irecv), then a blocking ssend.
        let r = w.irecv_into(vec![0u32; len / 4], from, 1).unwrap();
        w.barrier().unwrap();
        w.ssend_slice(&data, to, 1).unwrap();
        check(&r.wait().unwrap().0);
        // 2. issend, then a blocking receive; 3. a wildcard receive.
        let s = w.issend_slice(&data, to, 2).unwrap();
        let (v, st) = w.recv_vec::<u32>(from, 2).unwrap();
        assert_eq!(st.source(), from);
        check(&v);
        s.wait().unwrap();
        let s = w.issend(&data, to, 3).unwrap();
        let (v, st) = w.recv_any::<Vec<u32>>().unwrap();
        assert_eq!((st.source(), st.tag()), (from, 3));
        check(&v);
        s.wait().unwrap();
        // 4. Unexpected first: the message waits in the queue, unacknowledged, until the
        // receive, which comes after a barrier.
        let mut s = w.issend_vec(data.clone(), to, 4).unwrap();
        while w.iprobe(from, 4).unwrap().is_none() {}
        w.barrier().unwrap();
        assert!(
            !s.is_complete().unwrap(),
            "acknowledged while merely queued ({len} B)"
        );
        w.barrier().unwrap();
        let mut b = vec![0u32; len / 4];
        w.recv_into(&mut b, from, 4).unwrap();
        check(&b);
        assert_eq!(s.wait().unwrap(), data);
        // 5. A matched probe matches it.
        let s = w.issend_slice(&data, to, 5).unwrap();
        let (mut m, st) = w.mprobe(ANY_SOURCE, 5).unwrap();
        assert_eq!(st.source(), from);
        s.wait().unwrap();
        check(&m.recv_vec::<u32>().unwrap().0);
        // 6. A posted irecv after an issend.
        let s = w.issend_slice(&data, to, 6).unwrap();
        let r = w.irecv_into(vec![0u32; len / 4], ANY_SOURCE, 6).unwrap();
        check(&r.wait().unwrap().0);
        s.wait().unwrap();
    }
    w.barrier().unwrap();
    assert_eq!(w.pending_messages(), 0);
}

#[test]
fn synchronous_sends_complete_by_every_kind_of_matching_receive_at_1_rank() {
    run_ranks(
        "synchronous_sends_complete_by_every_kind_of_matching_receive_at_1_rank",
        1,
        |w| {
            // To self, a blocking ssend needs its receive posted first; issend does not.
            let r = w.irecv_into(vec![0u8; 4], 0, 1).unwrap();
            w.ssend_slice(&[1u8, 2, 3, 4], 0, 1).unwrap();
            assert_eq!(r.wait().unwrap().0, [1, 2, 3, 4]);
            let e = w.ssend_slice(&[1u8], 0, 2).unwrap_err();
            assert!(e.to_string().contains("issend"), "{e}");
            assert_eq!(w.pending_messages(), 0, "the message was withdrawn");
            let mut s = w.issend(&7u8, 0, 3).unwrap();
            assert!(!s.is_complete().unwrap());
            assert_eq!(w.recv::<u8>(0, 3).unwrap(), 7);
            assert!(s.is_complete().unwrap());
            s.wait().unwrap();
        },
    );
}

#[test]
fn synchronous_sends_complete_by_every_kind_of_matching_receive_at_2_ranks() {
    run_ranks(
        "synchronous_sends_complete_by_every_kind_of_matching_receive_at_2_ranks",
        2,
        ssend_every_way_matched,
    );
}

#[test]
fn synchronous_sends_complete_by_every_kind_of_matching_receive_at_3_ranks() {
    run_ranks(
        "synchronous_sends_complete_by_every_kind_of_matching_receive_at_3_ranks",
        3,
        ssend_every_way_matched,
    );
}

#[test]
fn synchronous_sends_complete_by_every_kind_of_matching_receive_at_8_ranks_oversubscribed() {
    run_ranks(
        "synchronous_sends_complete_by_every_kind_of_matching_receive_at_8_ranks_oversubscribed",
        8,
        ssend_every_way_matched,
    );
}

/// Many small synchronous sends to one receiver from every rank, received with
/// wildcards: all complete, each once, in per-sender order.
fn ssend_fan_in(w: &Communicator) {
    let (n, me) = (w.size(), w.rank());
    const K: i32 = 200;
    if me != 0 {
        let mut reqs = Vec::new();
        for i in 0..K {
            if i % 2 == 0 {
                w.ssend(&(me, i), 0, i % 3).unwrap();
            } else {
                reqs.push(w.issend(&(me, i), 0, i % 3).unwrap());
            }
        }
        shmpi::wait_all(reqs).unwrap();
    } else {
        let mut next = vec![0; n as usize];
        for _ in 0..K * (n - 1) {
            let ((src, i), st) = w.recv_any::<(i32, i32)>().unwrap();
            assert_eq!(src, st.source());
            assert_eq!(i, next[src as usize], "in order from {src}");
            assert_eq!(st.tag(), i % 3);
            next[src as usize] += 1;
        }
    }
    w.barrier().unwrap();
}

#[test]
fn synchronous_sends_fan_in_at_4_ranks() {
    run_ranks("synchronous_sends_fan_in_at_4_ranks", 4, ssend_fan_in);
}

#[test]
fn synchronous_sends_fan_in_at_8_ranks_oversubscribed() {
    run_ranks(
        "synchronous_sends_fan_in_at_8_ranks_oversubscribed",
        8,
        ssend_fan_in,
    );
}

/// A rank blocked in ssend keeps making progress: it drains a long message its
/// receiver sends it first (which could not get through otherwise), and the two
/// complete.
#[test]
fn a_rank_blocked_in_ssend_keeps_draining_its_rings() {
    run_ranks("a_rank_blocked_in_ssend_keeps_draining_its_rings", 2, |w| {
        const LEN: usize = 32 << 20;
        if w.rank() == 0 {
            w.ssend(&"hello".to_string(), 1, 1).unwrap();
            let (v, _) = w.recv_vec::<u8>(1, 2).unwrap();
            assert_eq!(v.len(), LEN);
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as u8));
        } else {
            let big: Vec<u8> = (0..LEN).map(|i| i as u8).collect();
            w.send_slice(&big, 0, 2).unwrap();
            assert_eq!(w.recv::<String>(0, 1).unwrap(), "hello");
        }
    });
}

/// Two ranks that ssend to each other before receiving deadlock, as in MPI; the
/// launcher reports it, naming both and the call, instead of hanging.
#[test]
fn head_to_head_synchronous_sends_deadlock_and_are_reported() {
    const NAME: &str = "head_to_head_synchronous_sends_deadlock_and_are_reported";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        let e = w.ssend(&1u8, 1 - w.rank(), 5).unwrap_err();
        assert!(e.to_string().contains("deadlock"), "{e}");
        return;
    }
    let out = launch_self(NAME, 2, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(shmpi::launch::EXIT_DEADLOCK),
        "{err}"
    );
    assert!(
        err.contains("rank 0 waits in ssend(dest=1, tag=5)")
            && err.contains("rank 1 waits in ssend(dest=0, tag=5)")
            && err.contains("waiting for the matching receive"),
        "{err}"
    );
}

/// A receiver that leaves without receiving: the synchronous sender fails with
/// PeerFailed instead of waiting for ever.
#[test]
fn a_synchronous_send_to_a_rank_that_leaves_fails() {
    run_ranks("a_synchronous_send_to_a_rank_that_leaves_fails", 2, |w| {
        if w.rank() == 1 {
            w.barrier().unwrap();
            return; // leaves (finalizes) without receiving
        }
        w.barrier().unwrap();
        let e = w.ssend_slice(&[1u8; 100], 1, 9).unwrap_err();
        assert!(matches!(e, Error::PeerFailed { rank: 1, .. }), "{e}");
        let e = w.issend(&1u8, 1, 9).unwrap().wait().unwrap_err();
        assert!(matches!(e, Error::PeerFailed { rank: 1, .. }), "{e}");
    });
}

// ---- matched probes -------------------------------------------------------------------

/// MPI: a message matched by mprobe can be received only through its Message; a
/// wildcard receive posted between the probe and the receive takes the next message.
fn matched_messages_cannot_be_stolen(w: &Communicator) {
    let n = w.size();
    if w.rank() != 0 {
        let r = w.rank();
        for len in [0usize, 1024, 100 << 10, 8 << 20] {
            w.send_slice(&vec![r as u8; len], 0, 1).unwrap();
            w.barrier().unwrap();
            w.send_slice(&[r as u8 + 100; 3], 0, 1).unwrap();
            w.barrier().unwrap();
        }
        return;
    }
    for len in [0usize, 1024, 100 << 10, 8 << 20] {
        let mut matched = Vec::new();
        for _ in 1..n {
            let (m, st) = w.mprobe(ANY_SOURCE, 1).unwrap();
            assert_eq!(st.len(), len);
            matched.push(m);
        }
        // Wildcard receives now: posted and blocking, they get only the later messages.
        let posted = w.irecv_into(vec![0u8; 16], ANY_SOURCE, ANY_TAG).unwrap();
        w.barrier().unwrap();
        let (mut first, st) = posted.wait().unwrap();
        assert_eq!(st.len(), 3);
        first.truncate(3);
        let mut later = vec![first];
        for _ in 2..n {
            later.push(w.recv_vec::<u8>(ANY_SOURCE, ANY_TAG).unwrap().0);
        }
        for (i, v) in later.iter().enumerate() {
            assert!(
                v.iter().all(|&x| x >= 100),
                "receive {i} took a matched message"
            );
        }
        for mut m in matched {
            let src = m.status().source();
            // Too short and wrong type: errors that keep the Message.
            if len > 0 {
                let mut short = vec![0u8; len - 1];
                assert!(matches!(
                    m.recv_into(&mut short),
                    Err(Error::Truncated { .. })
                ));
                assert!(matches!(
                    m.recv::<Vec<u8>>(),
                    Err(Error::TypeMismatch { .. })
                ));
            }
            let (v, st) = m.recv_vec::<u8>().unwrap();
            assert_eq!((st.source(), v.len()), (src, len));
            assert!(v.iter().all(|&x| x == src as u8));
            assert!(m.recv_vec::<u8>().is_err(), "received once");
        }
        w.barrier().unwrap();
    }
    assert_eq!(w.pending_messages(), 0);
}

#[test]
fn matched_messages_cannot_be_stolen_at_2_ranks() {
    run_ranks(
        "matched_messages_cannot_be_stolen_at_2_ranks",
        2,
        matched_messages_cannot_be_stolen,
    );
}

#[test]
fn matched_messages_cannot_be_stolen_at_4_ranks() {
    run_ranks(
        "matched_messages_cannot_be_stolen_at_4_ranks",
        4,
        matched_messages_cannot_be_stolen,
    );
}

#[test]
fn matched_messages_cannot_be_stolen_at_8_ranks_oversubscribed() {
    run_ranks(
        "matched_messages_cannot_be_stolen_at_8_ranks_oversubscribed",
        8,
        matched_messages_cannot_be_stolen,
    );
}

/// improbe returns None until a message is there; a Message dropped unreceived
/// discards its message (even mid-stream) and the next message arrives intact; objects
/// go through Message::recv.
#[test]
fn improbe_and_dropped_messages() {
    run_ranks("improbe_and_dropped_messages", 2, |w| {
        let sizes = [0usize, 1024, 100 << 10, 8 << 20];
        if w.rank() == 0 {
            assert!(w.improbe(1, ANY_TAG).unwrap().is_none());
            w.barrier().unwrap();
            for len in sizes {
                w.send_slice(&vec![7u8; len], 1, 2).unwrap();
                w.send(&format!("after {len}"), 1, 3).unwrap();
            }
            return;
        }
        w.barrier().unwrap();
        for len in sizes {
            let (m, st) = loop {
                if let Some(x) = w.improbe(0, 2).unwrap() {
                    break x;
                }
            };
            assert_eq!(st.len(), len);
            drop(m); // discarded, streamed or not
            let (mut m, st) = w.mprobe(0, ANY_TAG).unwrap();
            assert_eq!(st.tag(), 3);
            assert!(matches!(m.recv::<u32>(), Err(Error::TypeMismatch { .. })));
            assert_eq!(m.recv::<String>().unwrap(), format!("after {len}"));
        }
        assert_eq!(w.pending_messages(), 0);
    });
}
