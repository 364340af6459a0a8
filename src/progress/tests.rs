use std::rc::Rc;

use super::*;
use crate::call::Call;
use crate::codec::PodVec;
use crate::completions::{Done, RecvData};
use crate::doorbell::Backoff;
use crate::envelope::Envelope;
use crate::layout::{Layout, Params};
use crate::matching::{Matcher, PostedBuf, Want};
use crate::ring::Record;

/// Garbage records (a corrupted or hostile segment) give errors, never a panic, an
/// out-of-bounds access or an absurd allocation.
#[test]
fn garbage_records_are_errors_not_crashes() {
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let payload = vec![0xabu8; 5000];
    let mut errors = 0;
    for _ in 0..20_000 {
        // Fresh state each round, so queues stay small.
        let mut m = Matching::default();
        m.inflight.resize_with(4, || None);
        for _ in 0..8 {
            let kind = (next() % 6) as u8;
            let len = (next() % 5000) as usize;
            let mut words = [next(), next(), next()];
            if next() % 2 == 0 {
                words[1] %= 10_000; // plausible total lengths too
            }
            let rec = Record {
                kind,
                words,
                payload: &payload[..len],
            };
            if m.on_record((next() % 4) as usize, rec, &mut None).is_err() {
                errors += 1;
            }
        }
    }
    assert!(errors > 0);
}

/// Two engines of one 2-rank segment in this thread (ranks 0 and 1).
fn pair(ring_bytes: usize) -> (Engine, Engine) {
    let layout = Layout::new(2, ring_bytes).unwrap();
    let (_fd, map) = crate::sys::shm::create(layout.total_len).unwrap();
    let params = Params {
        nranks: 2,
        ring_bytes,
        ncpus: 2,
        single_copy: false,
    };
    let seg = Rc::new(Segment::init(map, params, 1).unwrap());
    let c0 = seg.claim(0, 100).unwrap();
    let c1 = seg.claim(1, 101).unwrap();
    (Engine::new(seg.clone(), c0), Engine::new(seg, c1))
}

/// A collective's peer may publish what a waiter waits for and leave between the
/// waiter's last look at the awaited word and its liveness check (the peer's last
/// step, then `finalize`). The wait must then complete, not report the peer failed.
/// A peer that left without publishing still fails the wait.
#[test]
fn a_peer_that_did_its_part_and_left_is_not_a_failure() {
    let (mut e0, e1) = pair(1 << 16);
    let group = Group::world(2);
    let desc = test_desc(WaitOp::Collective, Some(1), &group);
    let arrived = std::cell::Cell::new(false);
    let ready = || arrived.get();
    // A yield-phase step from the start, where the liveness check runs.
    let mut b = Backoff::new(0, u64::MAX / 2);

    // The caller looked and saw nothing; then the peer arrived and finalized.
    assert!(!ready());
    arrived.set(true);
    e1.seg.set_state(1, crate::segment::STATE_FINALIZED);
    e0.idle_until(&mut b, &desc, &ready)
        .expect("the peer did its part before leaving");

    // The same departure without the arrival is the peer's failure.
    arrived.set(false);
    let r = e0.idle_until(&mut b, &desc, &ready);
    assert!(matches!(r, Err(Error::PeerFailed { rank: 1, .. })), "{r:?}");
}

/// The wait description of a test's blocked call.
fn test_desc(op: WaitOp, peer: Option<usize>, group: &Group) -> WaitDesc<'_> {
    WaitDesc {
        op,
        call: Call::Recv,
        peer,
        tag: -1,
        ctx: 0,
        group,
    }
}

fn env(src: usize, tag: i32, len: usize) -> Envelope {
    Envelope {
        ctx: 0,
        src,
        tag,
        len,
        type_id: 0,
    }
}

/// Rank 0 sends 8 bytes of `byte` with `tag` to rank 1.
fn send8(e0: &mut Engine, group: &Group, tag: i32, byte: u8) {
    e0.send(1, env(0, tag, 8), &[byte; 8], || {
        test_desc(WaitOp::Send, Some(0), group)
    })
    .unwrap()
}

/// A receive of up to `cap` raw bytes.
fn want_bytes(cap: usize) -> Want {
    Want::Bytes {
        cap,
        elem: 1,
        elem_type: "u8",
    }
}

/// A receive from rank 0 on context 0 (`None`: any tag).
fn from0(tag: Option<i32>) -> Matcher {
    Matcher {
        ctx: 0,
        src: Some(0),
        tag,
    }
}

#[test]
fn blocking_receive_leaves_later_messages_in_the_ring() {
    let (mut e0, mut e1) = pair(1 << 16);
    let group = Group::world(2);
    let desc = |op| test_desc(op, None, &group);
    for i in 0..3u8 {
        e0.send(1, env(0, 5, 8), &[i; 8], || desc(WaitOp::Send))
            .unwrap();
    }
    let m = Matcher {
        ctx: 0,
        src: Some(0),
        tag: Some(5),
    };
    let want = Want::Bytes {
        cap: 8,
        elem: 1,
        elem_type: "u8",
    };
    let mut buf = [0u8; 8];
    for i in 0..3u8 {
        let got = e1
            .recv_into(&m, &want, &mut buf, || desc(WaitOp::Recv), |e| *e)
            .unwrap();
        assert_eq!((got, buf), (env(0, 5, 8), [i; 8]));
        assert_eq!(
            e1.unexpected_len(),
            0,
            "messages behind the received one stay in the ring"
        );
    }
    // A receive that does not match still drains everything behind it.
    e0.send(1, env(0, 6, 8), &[9; 8], || desc(WaitOp::Send))
        .unwrap();
    e0.send(1, env(0, 5, 8), &[7; 8], || desc(WaitOp::Send))
        .unwrap();
    e1.recv_into(&m, &want, &mut buf, || desc(WaitOp::Recv), |e| *e)
        .unwrap();
    assert_eq!((buf, e1.unexpected_len()), ([7; 8], 1));
}

/// The blocking receive's fast path (`take_eager`) must not take a message that an
/// earlier posted receive, the unexpected queue or a wildcard rule gives elsewhere.
#[test]
fn fast_receive_keeps_the_matching_rules() {
    let (mut e0, mut e1) = pair(1 << 16);
    let group = Rc::new(Group::world(2));
    let desc = |op| test_desc(op, Some(0), &group);
    let send = |e: &mut Engine, tag, byte| send8(e, &group, tag, byte);
    let (m, want) = (from0, want_bytes);
    let mut buf = [0u8; 8];

    // A posted receive matching the same message is served first.
    let id = e1.irecv(
        m(Some(5)),
        want(8),
        PostedBuf::Pod(PodVec::new(vec![0u8; 8])),
        group.clone(),
    );
    send(&mut e0, 5, 1);
    send(&mut e0, 5, 2);
    e1.recv_into(
        &m(Some(5)),
        &want(8),
        &mut buf,
        || desc(WaitOp::Recv),
        |e| *e,
    )
    .unwrap();
    assert_eq!(buf, [2; 8], "the blocking receive gets the second message");
    match e1.take_done(id) {
        Some(Done::Recv {
            data: RecvData::Pod(b),
            ..
        }) => assert_eq!(b.bytes(), &[1; 8]),
        _ => panic!("the posted receive got the first message"),
    }

    // Messages of another tag queue as unexpected; later ones still come in order.
    send(&mut e0, 6, 3);
    send(&mut e0, 5, 4);
    send(&mut e0, 5, 5);
    e1.recv_into(
        &m(Some(5)),
        &want(8),
        &mut buf,
        || desc(WaitOp::Recv),
        |e| *e,
    )
    .unwrap();
    assert_eq!((buf, e1.unexpected_len()), ([4; 8], 1));
    // ANY_TAG takes the earliest: the queued tag-6 message before the ring's tag 5.
    let got = e1
        .recv_into(&m(None), &want(8), &mut buf, || desc(WaitOp::Recv), |e| *e)
        .unwrap();
    assert_eq!((got.tag, buf), (6, [3; 8]));
    let got = e1
        .recv_into(&m(None), &want(8), &mut buf, || desc(WaitOp::Recv), |e| *e)
        .unwrap();
    assert_eq!((got.tag, buf), (5, [5; 8]));

    // Too long for the buffer: the general path's error, and the message stays.
    send(&mut e0, 5, 6);
    let mut short = [0u8; 4];
    let e = e1
        .recv_into(
            &m(Some(5)),
            &want(4),
            &mut short,
            || desc(WaitOp::Recv),
            |e| *e,
        )
        .unwrap_err();
    assert!(matches!(e, Error::Truncated { .. }), "{e}");
    e1.recv_into(
        &m(Some(5)),
        &want(8),
        &mut buf,
        || desc(WaitOp::Recv),
        |e| *e,
    )
    .unwrap();
    assert_eq!((buf, e1.unexpected_len()), ([6; 8], 0));
}

/// A wait on a posted receive takes its message straight from the ring
/// (`take_posted_whole`) only when the general path would give it that message: it
/// is the earliest posted receive and the next record matches and fits it.
#[test]
fn a_wait_takes_from_the_ring_only_what_its_posted_receive_would_get() {
    let (mut e0, mut e1) = pair(1 << 16);
    let group = Rc::new(Group::world(2));
    let desc = |op| test_desc(op, Some(0), &group);
    let send = |e: &mut Engine, tag, byte| send8(e, &group, tag, byte);
    let (m, want) = (from0, want_bytes);
    let post = |e: &mut Engine, tag, cap| {
        e.irecv(
            m(tag),
            want(cap),
            PostedBuf::Pod(PodVec::new(vec![0u8; cap])),
            group.clone(),
        )
    };
    let got = |d: Done| match d {
        Done::Recv {
            env,
            data: RecvData::Pod(b),
        } => (env.tag, b.bytes()[0]),
        Done::Failed(e) => panic!("failed: {e}"),
        _ => panic!("not a receive"),
    };

    // Two posted receives; the second is waited for first: the fast path declines
    // (it is not the earliest), and the general path gives each its own message.
    let (a, b) = (post(&mut e1, Some(5), 8), post(&mut e1, None, 8));
    send(&mut e0, 5, 1);
    send(&mut e0, 7, 2);
    assert!(e1.take_posted_whole(b).is_none());
    assert_eq!(got(e1.wait(b, &desc(WaitOp::Wait)).unwrap()), (7, 2));
    assert_eq!(got(e1.wait(a, &desc(WaitOp::Wait)).unwrap()), (5, 1));

    // The earliest, with its message next in the ring: taken, and the queue is empty.
    let a = post(&mut e1, Some(5), 8);
    assert!(e1.take_posted_whole(a).is_none(), "nothing has arrived");
    send(&mut e0, 5, 3);
    assert_eq!(got(e1.take_posted_whole(a).expect("taken")), (5, 3));
    assert!(e1.matching.posted.is_empty() && !e1.is_done(a));

    // The next record is for another receive: left in the ring, receive still posted.
    let a = post(&mut e1, Some(5), 8);
    send(&mut e0, 6, 4);
    send(&mut e0, 5, 5);
    assert!(e1.take_posted_whole(a).is_none());
    assert_eq!(e1.matching.posted.len(), 1);
    assert_eq!(got(e1.wait(a, &desc(WaitOp::Wait)).unwrap()), (5, 5));
    assert_eq!(
        e1.unexpected_len(),
        1,
        "the tag-6 message is queued, not lost"
    );

    // Too long for the buffer: the general path's error, as without the fast path.
    let a = post(&mut e1, Some(5), 4);
    send(&mut e0, 5, 6);
    assert!(e1.take_posted_whole(a).is_none());
    match e1.wait(a, &desc(WaitOp::Wait)).unwrap() {
        Done::Failed(Error::Truncated { .. }) => {}
        _ => panic!("a truncated receive fails"),
    }
}

/// A blocking receive's first polls (`try_recv_whole`) take only the message the
/// general path would give that receive, and leave anything else where it is.
#[test]
fn first_polls_take_only_the_next_matching_whole_message() {
    let (mut e0, mut e1) = pair(1 << 16);
    let group = Group::world(2);
    let desc = |op| test_desc(op, Some(0), &group);
    let send = |e: &mut Engine, tag, byte| send8(e, &group, tag, byte);
    let m = |src, tag| Matcher { ctx: 0, src, tag };
    let want = want_bytes;
    let mut buf = [0u8; 8];

    assert!(
        e1.try_recv_whole(&m(Some(0), None), &want(8), &mut buf)
            .is_none()
    );
    send(&mut e0, 5, 1);
    let got = e1.try_recv_whole(&m(Some(0), Some(5)), &want(8), &mut buf);
    assert_eq!((got, buf), (Some(env(0, 5, 8)), [1; 8]));

    // Another tag first: left in the ring; the general path queues it.
    send(&mut e0, 6, 2);
    send(&mut e0, 5, 3);
    assert!(
        e1.try_recv_whole(&m(Some(0), Some(5)), &want(8), &mut buf)
            .is_none()
    );
    e1.recv_into(
        &m(Some(0), Some(5)),
        &want(8),
        &mut buf,
        || desc(WaitOp::Recv),
        |e| *e,
    )
    .unwrap();
    assert_eq!((buf, e1.unexpected_len()), ([3; 8], 1));

    // A queued message might be the one to take first (ANY_TAG): hands off.
    send(&mut e0, 5, 4);
    assert!(
        e1.try_recv_whole(&m(Some(0), None), &want(8), &mut buf)
            .is_none()
    );
    let got = e1
        .recv_into(
            &m(Some(0), None),
            &want(8),
            &mut buf,
            || desc(WaitOp::Recv),
            |e| *e,
        )
        .unwrap();
    assert_eq!((got.tag, buf), (6, [2; 8]));

    // Too long for the buffer, or from any source: left to the general path.
    let mut short = [0u8; 4];
    assert!(
        e1.try_recv_whole(&m(Some(0), Some(5)), &want(4), &mut short)
            .is_none()
    );
    assert!(
        e1.try_recv_whole(&m(None, Some(5)), &want(8), &mut buf)
            .is_none()
    );
    e1.recv_into(
        &m(Some(0), Some(5)),
        &want(8),
        &mut buf,
        || desc(WaitOp::Recv),
        |e| *e,
    )
    .unwrap();
    assert_eq!((buf, e1.unexpected_len()), ([4; 8], 0));
}

/// The object receive's fast path (`take_eager_object`): the right type from the
/// ring; another type is an error that leaves the message for the right receive.
#[test]
fn fast_object_receive_checks_the_type_and_loses_nothing() {
    let (mut e0, mut e1) = pair(1 << 16);
    let group = Group::world(2);
    let desc = |op| test_desc(op, Some(0), &group);
    let typed = |tag, type_id| Envelope {
        type_id,
        ..env(0, tag, 8)
    };
    e0.send(1, typed(3, 77), &[1; 8], || desc(WaitOp::Send))
        .unwrap();
    e0.send(1, typed(3, 77), &[2; 8], || desc(WaitOp::Send))
        .unwrap();
    let m = Matcher {
        ctx: 0,
        src: Some(0),
        tag: Some(3),
    };
    let want = |type_id| Want::Object {
        type_id,
        type_name: "T",
    };
    let (got, v) = e1.recv_message(m, want(77), &desc(WaitOp::Recv)).unwrap();
    assert_eq!(
        (got, &v[..], e1.unexpected_len()),
        (typed(3, 77), &[1u8; 8][..], 0)
    );
    let e = e1
        .recv_message(m, want(78), &desc(WaitOp::Recv))
        .unwrap_err();
    assert!(matches!(e, Error::TypeMismatch { .. }), "{e}");
    let (_, v) = e1.recv_message(m, want(77), &desc(WaitOp::Recv)).unwrap();
    assert_eq!((&v[..], e1.unexpected_len()), (&[2u8; 8][..], 0));
}

/// An owned send that went whole into the ring finishes as it starts: its request
/// opens no completion slot (its vector waits in the handle) and makes no engine
/// wait; its wait hands the vector back, and one dropped unwaited frees its vector
/// with it.
#[test]
fn an_owned_send_finished_at_once_takes_no_slot() {
    use crate::request::{Request, What};
    let (e0, mut e1) = pair(1 << 16);
    let eng = Rc::new(std::cell::RefCell::new(e0));
    let what = || What {
        call: Call::IsendVec,
        peer: Some(1),
        tag: 7,
        ctx: 0,
        group: Rc::new(Group::world(2)),
    };
    let finish: crate::request::Finish<Vec<u32>> = |d, _, out| match d.take() {
        Some(Done::Sent(Some(b))) => {
            Ok(out.fill(b.into_vec::<u32>().ok().expect("the vector sent")))
        }
        _ => panic!("an owned send hands its vector back"),
    };
    let mut reqs = Vec::new();
    for i in 0..3u32 {
        let buf = PodVec::new(vec![i; 4]);
        let started = eng
            .borrow_mut()
            .isend(1, env(0, 7, 16), SendBuf::Pod(buf))
            .unwrap();
        let r = Request::started(&eng, started, what(), finish);
        assert!(r.finished_at_start(), "send {i} finished at once");
        reqs.push(r);
    }
    assert_eq!(eng.borrow().matching.done.in_use(), 0, "no slot");
    drop(reqs.pop()); // its vector is freed with it
    // Complete, with a send's empty status; not cancellable; found by the waits over
    // many requests (no slot to look at).
    assert!(reqs[0].is_complete().unwrap());
    assert_eq!(
        reqs[0].get_status().unwrap().map(|s| s.is_cancelled()),
        Some(false)
    );
    assert!(!reqs[0].cancel().unwrap());
    assert_eq!(crate::wait_any(&mut reqs).unwrap(), (0, vec![0; 4]));
    assert_eq!(reqs.pop().unwrap().wait().unwrap(), vec![1; 4]);
    let group = Group::world(2);
    let m = Matcher {
        ctx: 0,
        src: Some(0),
        tag: Some(7),
    };
    let want = Want::Bytes {
        cap: 16,
        elem: 4,
        elem_type: "u32",
    };
    for i in 0..3u32 {
        let mut got = [0u32; 4];
        let e = e1
            .recv_into(
                &m,
                &want,
                bytemuck::cast_slice_mut(&mut got),
                || test_desc(WaitOp::Recv, None, &group),
                |e| *e,
            )
            .unwrap();
        assert_eq!(
            (e.len, got),
            (16, [i; 4]),
            "every message arrived, the dropped one too"
        );
    }
}
