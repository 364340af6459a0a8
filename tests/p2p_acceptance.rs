//! An acceptance audit of point-to-point and request semantics, written from MPI 4.1
//! chapter 3's rules rather than from the code, through the real launcher: argument
//! errors of every call (class, and nothing sent or consumed), non-overtaking across
//! send kinds and paths, truncation and status, the wait/test families over mixed and
//! spent requests, persistent and scoped requests.

mod common;

use common::run_ranks;
use shmpi::{ANY_SOURCE, ANY_TAG, Communicator, Error, ErrorClass, PROC_NULL};

/// Asserts that `r` failed with an error of `class`.
#[track_caller]
fn fails_with<T: std::fmt::Debug>(r: shmpi::Result<T>, class: ErrorClass, what: &str) {
    match r {
        Ok(v) => panic!("{what}: succeeded with {v:?}, expected an error of class {class:?}"),
        Err(e) => assert_eq!(e.class(), class, "{what}: {e}"),
    }
}

/// The failed call `what` sent nothing to this rank with tag 9.
#[track_caller]
fn sent_nothing(w: &Communicator, what: &str) {
    if let Some(st) = w.iprobe(w.rank(), 9).unwrap() {
        panic!("{what} failed, but sent a message all the same: {st:?}");
    }
}

/// Nothing is queued for this rank, from anyone, on `w` (after the others' sends are
/// known to be in: a barrier before).
#[track_caller]
fn nothing_queued(w: &Communicator, what: &str) {
    if let Some(st) = w.iprobe_any().unwrap() {
        panic!("{what}: a message is queued: {st:?}");
    }
}

// ---- argument errors (MPI 4.1 §3.2.3, §3.11, §9.4) ------------------------------------

/// Every point-to-point call refuses a rank outside the communicator (class `Rank`)
/// and a negative tag or a send's `ANY_TAG` (class `Tag`), sends nothing, and
/// consumes nothing: the message queued before is still there, whole, afterwards.
fn bad_arguments(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let next = (me + 1) % n;
    let prev = (me + n - 1) % n;
    // One message from the previous rank waits for us through all of this.
    w.send_slice(&[me as u64; 3], next, 7).unwrap();
    w.barrier().unwrap();
    for bad in [n, n + 3, -3, i32::MIN] {
        let r = ErrorClass::Rank;
        fails_with(w.send(&1u8, bad, 0), r, "send");
        fails_with(w.send_slice(&[1u8], bad, 0), r, "send_slice");
        fails_with(w.ssend(&1u8, bad, 0), r, "ssend");
        fails_with(w.ssend_slice(&[1u8], bad, 0), r, "ssend_slice");
        fails_with(w.bsend(&1u8, bad, 0), r, "bsend");
        fails_with(w.rsend_slice(&[1u8], bad, 0), r, "rsend_slice");
        fails_with(w.isend(&1u8, bad, 0), r, "isend");
        fails_with(w.isend_vec(vec![1u8], bad, 0), r, "isend_vec");
        fails_with(w.issend_slice(&[1u8], bad, 0), r, "issend_slice");
        fails_with(w.send_init(vec![1u8], bad, 0), r, "send_init");
        fails_with(w.recv::<u64>(bad, 7), r, "recv");
        let mut b = [0u64; 3];
        fails_with(w.recv_into(&mut b, bad, 7), r, "recv_into");
        fails_with(w.recv_vec::<u64>(bad, 7), r, "recv_vec");
        fails_with(w.recv_raw(bad, 7), r, "recv_raw");
        fails_with(w.irecv::<u64>(bad, 7), r, "irecv");
        fails_with(w.irecv_into(vec![0u64; 3], bad, 7), r, "irecv_into");
        fails_with(w.recv_init(vec![0u64; 3], bad, 7), r, "recv_init");
        fails_with(w.probe(bad, 7), r, "probe");
        fails_with(w.iprobe(bad, 7), r, "iprobe");
        fails_with(w.mprobe(bad, 7), r, "mprobe");
        fails_with(w.improbe(bad, 7), r, "improbe");
        // Sendrecv: a bad receive half fails the call before anything is sent.
        fails_with(
            w.sendrecv::<u8, u8>(&1u8, me, 9, bad, 9),
            r,
            "sendrecv, bad source",
        );
        sent_nothing(w, "sendrecv, bad source");
        fails_with(
            w.sendrecv::<u8, u8>(&1u8, bad, 9, me, 9),
            r,
            "sendrecv, bad dest",
        );
        sent_nothing(w, "sendrecv, bad dest");
        let mut b = [0u8; 1];
        fails_with(
            w.sendrecv_slice(&[1u8], me, 9, &mut b, bad, 9),
            r,
            "sendrecv_slice, bad source",
        );
        sent_nothing(w, "sendrecv_slice, bad source");
        fails_with(
            w.sendrecv_replace(&mut b, me, 9, bad, 9),
            r,
            "sendrecv_replace, bad source",
        );
        sent_nothing(w, "sendrecv_replace, bad source");
        fails_with(
            w.sendrecv_replace(&mut b, bad, 9, me, 9),
            r,
            "sendrecv_replace, bad dest",
        );
        sent_nothing(w, "sendrecv_replace, bad dest");
        fails_with(
            w.scope(|s| s.isend_slice(&[1u8], bad, 0).map(drop)),
            r,
            "scope isend_slice",
        );
        let mut sb = [0u64; 3];
        fails_with(
            w.scope(|s| s.irecv_into(&mut sb, bad, 7).map(drop)),
            r,
            "scope irecv_into",
        );
    }
    // ANY_SOURCE is for receives only.
    fails_with(
        w.send(&1u8, ANY_SOURCE, 0),
        ErrorClass::Rank,
        "send to ANY_SOURCE",
    );
    fails_with(
        w.isend_vec(vec![1u8], ANY_SOURCE, 0),
        ErrorClass::Rank,
        "isend_vec to ANY_SOURCE",
    );
    fails_with(
        w.send_init(vec![1u8], ANY_SOURCE, 0),
        ErrorClass::Rank,
        "send_init to ANY_SOURCE",
    );
    for bad in [-5, ANY_TAG, i32::MIN] {
        let t = ErrorClass::Tag;
        fails_with(w.send(&1u8, me, bad), t, "send");
        fails_with(w.send_slice(&[1u8], me, bad), t, "send_slice");
        fails_with(w.ssend(&1u8, me, bad), t, "ssend");
        fails_with(w.isend(&1u8, me, bad), t, "isend");
        fails_with(w.issend_slice(&[1u8], me, bad), t, "issend_slice");
        fails_with(w.send_init(vec![1u8], me, bad), t, "send_init");
        fails_with(
            w.send_init(vec![1u8], PROC_NULL, bad),
            t,
            "send_init to PROC_NULL",
        );
        fails_with(w.isend(&1u8, PROC_NULL, bad), t, "isend to PROC_NULL");
        let mut b = [0u8; 1];
        fails_with(
            w.sendrecv_slice(&[1u8], me, bad, &mut b, me, 9),
            t,
            "sendrecv_slice, bad send tag",
        );
        sent_nothing(w, "sendrecv_slice, bad send tag");
        fails_with(
            w.sendrecv::<u8, u8>(&1u8, me, bad, me, 9),
            t,
            "sendrecv, bad send tag",
        );
        sent_nothing(w, "sendrecv, bad send tag");
    }
    for bad in [-5, -1000, i32::MIN] {
        let t = ErrorClass::Tag;
        fails_with(w.recv::<u64>(prev, bad), t, "recv");
        fails_with(w.irecv_into(vec![0u64; 3], prev, bad), t, "irecv_into");
        fails_with(w.recv_init(vec![0u64; 3], prev, bad), t, "recv_init");
        fails_with(
            w.recv_init(vec![0u64; 3], PROC_NULL, bad),
            t,
            "recv_init from PROC_NULL",
        );
        fails_with(w.probe(prev, bad), t, "probe");
        fails_with(w.iprobe(ANY_SOURCE, bad), t, "iprobe");
        fails_with(w.improbe(prev, bad), t, "improbe");
        // The receive half's tag is checked before anything is sent.
        fails_with(
            w.sendrecv::<u8, u8>(&1u8, me, 9, me, bad),
            t,
            "sendrecv, bad recv tag",
        );
        sent_nothing(w, "sendrecv, bad recv tag");
        let mut b = [0u8; 1];
        fails_with(
            w.sendrecv_slice(&[1u8], me, 9, &mut b, me, bad),
            t,
            "sendrecv_slice, bad recv tag",
        );
        sent_nothing(w, "sendrecv_slice, bad recv tag");
        fails_with(
            w.sendrecv_slice(&[1u8], me, 9, &mut b, PROC_NULL, bad),
            t,
            "sendrecv_slice from PROC_NULL, bad recv tag",
        );
        sent_nothing(w, "sendrecv_slice from PROC_NULL, bad recv tag");
        fails_with(
            w.sendrecv_replace(&mut b, me, 9, PROC_NULL, bad),
            t,
            "sendrecv_replace from PROC_NULL, bad recv tag",
        );
        sent_nothing(w, "sendrecv_replace from PROC_NULL, bad recv tag");
    }
    // None of the failed calls sent anything (nothing with tag 9 reached this rank or
    // any other), and the queued message is whole.
    w.barrier().unwrap();
    assert_eq!(
        w.iprobe(ANY_SOURCE, 9).unwrap(),
        None,
        "a failed call sent a message"
    );
    let (v, st) = w.recv_vec::<u64>(prev, 7).unwrap();
    assert_eq!((v, st.source(), st.tag()), (vec![prev as u64; 3], prev, 7));
    w.barrier().unwrap();
    nothing_queued(w, "after the bad calls");
}

#[test]
fn every_call_refuses_bad_ranks_and_tags_and_loses_nothing_at_3_ranks() {
    run_ranks(
        "every_call_refuses_bad_ranks_and_tags_and_loses_nothing_at_3_ranks",
        3,
        bad_arguments,
    );
}

/// An object `sendrecv` from `PROC_NULL` has no value to return: it fails (naming
/// `PROC_NULL`, class `Rank`) before sending, so that the failed call did not send a
/// message the program will send again.
#[test]
fn an_object_sendrecv_from_proc_null_fails_before_it_sends() {
    run_ranks(
        "an_object_sendrecv_from_proc_null_fails_before_it_sends",
        3,
        |w| {
            let me = w.rank();
            let right = (me + 1) % w.size();
            let e = w
                .sendrecv::<u32, u32>(&5, right, 4, PROC_NULL, 4)
                .unwrap_err();
            assert_eq!(e.class(), ErrorClass::Rank, "{e}");
            assert!(e.to_string().contains("PROC_NULL"), "{e}");
            w.barrier().unwrap();
            nothing_queued(w, "after a failed sendrecv from PROC_NULL");
            w.barrier().unwrap();
        },
    );
}

// ---- element type and size (§3.3) ---------------------------------------------------

/// A message received as elements of a size that does not divide it is a `Type`
/// error, one longer than the buffer a `Truncate` error that says its length, one
/// sent as another object type a `Type` error; in every case, blocking or not, the
/// message stays queued for a receive that fits.
fn mismatches(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let next = (me + 1) % n;
    let prev = (me + n - 1) % n;
    w.send_slice(&[1u8, 2, 3, 4, 5, 6], next, 1).unwrap();
    w.send(&"text".to_string(), next, 2).unwrap();
    w.send_slice(&[9u32; 100], next, 3).unwrap();
    // Through a blocking receive.
    let mut b4 = [0u32; 2];
    fails_with(
        w.recv_into(&mut b4, prev, 1),
        ErrorClass::Type,
        "6 bytes as u32",
    );
    fails_with(w.recv::<u64>(prev, 2), ErrorClass::Type, "a String as u64");
    let e = w.recv_into(&mut [0u32; 99], prev, 3).unwrap_err();
    assert_eq!(e.class(), ErrorClass::Truncate, "{e}");
    assert!(
        matches!(
            e,
            Error::Truncated {
                message_len: 400,
                buffer_len: 396,
                ..
            }
        ),
        "{e}"
    );
    // Through requests: the error comes from wait, and the message stays queued.
    let e = w
        .irecv_into(vec![0u32; 2], prev, 1)
        .unwrap()
        .wait()
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Type, "{e}");
    let e = w.irecv::<u64>(prev, 2).unwrap().wait().unwrap_err();
    assert_eq!(e.class(), ErrorClass::Type, "{e}");
    let e = w
        .irecv_into(vec![0u32; 10], prev, 3)
        .unwrap()
        .wait()
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Truncate, "{e}");
    // Through a matched probe: the message is the Message's, and stays in it.
    let (mut m, st) = w.mprobe(prev, 3).unwrap();
    assert_eq!(
        (st.source(), st.tag(), st.count::<u32>()),
        (prev, 3, Some(100))
    );
    fails_with(
        m.recv_into(&mut [0u32; 10]),
        ErrorClass::Truncate,
        "mrecv too short",
    );
    let mut all = [0u32; 100];
    assert_eq!(m.recv_into(&mut all).unwrap().count::<u32>(), Some(100));
    assert_eq!(all, [9; 100]);
    // In a wait_some, each request carries its own error and the others complete.
    let mut reqs = vec![
        w.irecv_into(vec![0u8; 2], prev, 1).unwrap(),
        w.irecv_into(vec![0u8; 6], prev, 1).unwrap(),
    ];
    let mut got = Vec::new();
    while !reqs.is_empty() {
        let before = reqs.len();
        let done = shmpi::wait_some(&mut reqs).unwrap();
        assert!(!done.is_empty() && reqs.len() < before);
        got.extend(
            done.into_iter()
                .map(|(_, r)| r.map(|(b, st)| (b, st.len()))),
        );
    }
    // The first (2 bytes) is truncated and leaves the message to the second.
    assert!(
        got.iter()
            .any(|r| matches!(r, Err(e) if e.class() == ErrorClass::Truncate))
    );
    assert!(
        got.iter()
            .any(|r| matches!(r, Ok((b, 6)) if b == &[1, 2, 3, 4, 5, 6])),
        "{got:?}"
    );
    let (s, st) = w.recv_with_status::<String>(prev, 2).unwrap();
    assert_eq!((s.as_str(), st.source()), ("text", prev));
    w.barrier().unwrap();
    nothing_queued(w, "after the mismatches");
}

#[test]
fn mismatched_receives_fail_with_the_right_class_and_keep_the_message_at_4_ranks() {
    run_ranks(
        "mismatched_receives_fail_with_the_right_class_and_keep_the_message_at_4_ranks",
        4,
        mismatches,
    );
}

// ---- ordering (§3.5) ---------------------------------------------------------------

/// Non-overtaking across every kind of send: from one sender, with one tag, messages
/// sent by `send`, `isend`, `isend_vec` (large ones go as offers the receiver reads
/// from the sender's memory), `ssend`, `issend`, `bsend`, `rsend` and a persistent
/// send arrive in the order the calls were made, whatever receives take them.
fn mixed_kinds_in_order(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    const ROUNDS: u32 = 40;
    let kinds = 8u32;
    let len = |i: u32| [1usize, 40_000, 300_000, 0, 8][(i % 5) as usize];
    let make = |i: u32| {
        let mut v = vec![(i as u8) ^ 0x5a; len(i).max(4)];
        v[..4].copy_from_slice(&i.to_le_bytes());
        v.truncate(len(i).max(4));
        v
    };
    if me != 0 {
        let mut pending = Vec::new();
        let mut pers = w.send_init(Vec::<u8>::new(), PROC_NULL, 5).unwrap();
        for i in 0..ROUNDS * kinds {
            let v = make(i);
            match i % kinds {
                0 => w.send_slice(&v, 0, 5).unwrap(),
                // Left pending while the next sends go: order is that of the calls.
                1 | 7 => pending.push(w.isend_vec(v, 0, 5).unwrap()),
                2 => w.ssend_slice(&v, 0, 5).unwrap(),
                3 => pending.push(w.issend_vec(v, 0, 5).unwrap()),
                4 => w.bsend_slice(&v, 0, 5).unwrap(),
                5 => w.rsend_slice(&v, 0, 5).unwrap(),
                _ => {
                    pers.wait().unwrap();
                    pers = w.send_init(v, 0, 5).unwrap();
                    pers.start().unwrap();
                }
            }
        }
        pers.wait().unwrap();
        shmpi::wait_all(pending).unwrap();
        w.barrier().unwrap();
    } else {
        let mut next = vec![0u32; n as usize];
        let total = (n as u32 - 1) * ROUNDS * kinds;
        let mut posted: Vec<shmpi::Request<(Vec<u8>, shmpi::Status)>> = Vec::new();
        let mut k = 0u32;
        let check = |v: &[u8], st: shmpi::Status, next: &mut Vec<u32>| {
            let s = st.source() as usize;
            let i = next[s];
            next[s] += 1;
            assert_eq!(st.tag(), 5);
            assert_eq!(v.len(), len(i).max(4), "message {i} from {s}");
            assert_eq!(
                u32::from_le_bytes(v[..4].try_into().unwrap()),
                i,
                "from {s}"
            );
        };
        while k < total {
            match k % 3 {
                // Blocking receive from anyone.
                0 => {
                    let (v, st) = w.recv_vec::<u8>(ANY_SOURCE, ANY_TAG).unwrap();
                    check(&v, st, &mut next);
                    k += 1;
                }
                // Probe, then receive the probed message by its envelope.
                1 => {
                    let st = w.probe(ANY_SOURCE, 5).unwrap();
                    let (v, st2) = w.recv_vec::<u8>(st.source(), st.tag()).unwrap();
                    assert_eq!(
                        st.len(),
                        st2.len(),
                        "the probed message is the one received"
                    );
                    check(&v, st2, &mut next);
                    k += 1;
                }
                // Two receives posted from one sender, waited in reverse order.
                _ => {
                    let s = 1 + (k as i32 / 3) % (n - 1);
                    let left = ROUNDS * kinds - next[s as usize];
                    if left < 2 {
                        let (v, st) = w.recv_vec::<u8>(ANY_SOURCE, 5).unwrap();
                        check(&v, st, &mut next);
                        k += 1;
                        continue;
                    }
                    posted.push(w.irecv_into(vec![0u8; 300_000], s, 5).unwrap());
                    posted.push(w.irecv_into(vec![0u8; 300_000], s, ANY_TAG).unwrap());
                    let b = posted.pop().unwrap().wait().unwrap();
                    let a = posted.pop().unwrap().wait().unwrap();
                    for (mut v, st) in [a, b] {
                        v.truncate(st.len());
                        check(&v, st, &mut next);
                    }
                    k += 2;
                }
            }
        }
        assert!(next[1..].iter().all(|&c| c == ROUNDS * kinds), "{next:?}");
        w.barrier().unwrap();
    }
    w.barrier().unwrap();
    nothing_queued(w, "after the ordered sends");
}

#[test]
fn every_kind_of_send_keeps_the_order_of_its_calls_at_3_ranks() {
    run_ranks(
        "every_kind_of_send_keeps_the_order_of_its_calls_at_3_ranks",
        3,
        mixed_kinds_in_order,
    );
}

#[test]
fn every_kind_of_send_keeps_the_order_of_its_calls_at_5_ranks() {
    run_ranks(
        "every_kind_of_send_keeps_the_order_of_its_calls_at_5_ranks",
        5,
        mixed_kinds_in_order,
    );
}

// ---- the wait and test families (§3.7.5) --------------------------------------------

/// The functions over many requests with empty lists, spent requests and
/// requests on `PROC_NULL`: the `*_any` family fails on a list with nothing
/// pending (MPI's `MPI_UNDEFINED`), `wait_some`/`test_some` give nothing, `wait_all`
/// and `test_all` of nothing succeed with nothing; requests on `PROC_NULL` are
/// complete at once with the null status.
fn families(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let next = (me + 1) % n;
    let prev = (me + n - 1) % n;
    let mut empty: Vec<shmpi::Request<(Vec<u8>, shmpi::Status)>> = Vec::new();
    assert!(
        shmpi::wait_all(Vec::<shmpi::Request<()>>::new())
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        shmpi::test_all(&mut empty).unwrap().map(|v| v.len()),
        Some(0)
    );
    assert!(shmpi::wait_some(&mut empty).unwrap().is_empty());
    assert!(shmpi::test_some(&mut empty).unwrap().is_empty());
    fails_with(
        shmpi::wait_any(&mut empty),
        ErrorClass::Request,
        "wait_any of nothing",
    );
    fails_with(
        shmpi::test_any(&mut empty),
        ErrorClass::Request,
        "test_any of nothing",
    );
    fails_with(
        shmpi::wait_any_of(&mut []),
        ErrorClass::Request,
        "wait_any_of of nothing",
    );

    // Null requests among real ones: complete at once, null status, buffer untouched.
    let mut reqs = vec![
        w.irecv_into(vec![7u8; 2], PROC_NULL, 1).unwrap(),
        w.irecv_into(vec![0u8; 2], prev, 1).unwrap(),
        w.irecv_into(vec![8u8; 2], PROC_NULL, ANY_TAG).unwrap(),
    ];
    let (i, (b, st)) = shmpi::wait_any(&mut reqs).unwrap();
    assert!(i == 0 || i == 2, "a null request completes first: {i}");
    assert_eq!((st.source(), st.tag(), st.len()), (PROC_NULL, ANY_TAG, 0));
    assert!(b == [7, 7] || b == [8, 8], "{b:?}");
    let some = shmpi::test_some(&mut reqs).unwrap();
    let idx: Vec<usize> = some.iter().map(|(i, _)| *i).collect();
    assert_eq!(
        idx,
        [usize::from(i == 0)],
        "the other null request, not the real one (wait_any gave {i})"
    );
    assert_eq!(reqs.len(), 1);
    // Every rank has looked before any sends.
    w.barrier().unwrap();
    w.send_slice(&[me as u8, 1], next, 1).unwrap();
    let (b, st) = reqs.pop().unwrap().wait().unwrap();
    assert_eq!((b, st.source(), st.tag()), (vec![prev as u8, 1], prev, 1));

    // A spent request among pending ones: skipped by wait_any/test_some, an error of
    // class Request to wait_all and test_all (which leaves the list as it was).
    let mut spent = w.irecv_into(vec![0u8; 1], me, 3).unwrap();
    w.send_slice(&[3u8], me, 3).unwrap();
    let _ = common::poll_until("a self receive", || spent.test()).unwrap();
    fails_with(spent.test(), ErrorClass::Request, "test of a spent request");
    fails_with(
        spent.get_status(),
        ErrorClass::Request,
        "get_status of a spent request",
    );
    fails_with(
        spent.cancel(),
        ErrorClass::Request,
        "cancel of a spent request",
    );
    let mut reqs = vec![spent, w.irecv_into(vec![0u8; 1], me, 4).unwrap()];
    assert!(shmpi::test_some(&mut reqs).unwrap().is_empty());
    fails_with(
        shmpi::test_all(&mut reqs),
        ErrorClass::Request,
        "test_all with a spent one",
    );
    assert_eq!(reqs.len(), 2, "test_all left the list as it was");
    w.send_slice(&[4u8], me, 4).unwrap();
    let (i, (b, _)) = shmpi::wait_any(&mut reqs).unwrap();
    assert_eq!((i, b), (1, vec![4]), "wait_any skips the spent request");
    fails_with(
        shmpi::wait_any(&mut reqs),
        ErrorClass::Request,
        "wait_any of a spent request",
    );
    assert!(shmpi::wait_some(&mut reqs).unwrap().is_empty());
    fails_with(
        shmpi::wait_all(reqs),
        ErrorClass::Request,
        "wait_all with a spent one",
    );

    // get_status does not complete: it may be asked again, and the wait still gives
    // the result, with the same status.
    let mut r = w.irecv_into(vec![0u16; 4], prev, 6).unwrap();
    assert_eq!(r.get_status().unwrap(), None);
    w.barrier().unwrap();
    w.send_slice(&[me as u16; 3], next, 6).unwrap();
    let st = common::poll_until("get_status", || r.get_status()).unwrap();
    assert_eq!(r.get_status().unwrap(), Some(st));
    assert_eq!((st.source(), st.count::<u16>()), (prev, Some(3)));
    assert!(!r.cancel().unwrap(), "a completed receive is not cancelled");
    let (b, st2) = r.wait().unwrap();
    assert_eq!((st2, &b[..3]), (st, &[prev as u16; 3][..]));
    w.barrier().unwrap();
    nothing_queued(w, "after the families");
}

#[test]
fn waits_and_tests_over_empty_spent_and_null_requests_at_4_ranks() {
    run_ranks(
        "waits_and_tests_over_empty_spent_and_null_requests_at_4_ranks",
        4,
        families,
    );
}

// ---- persistent requests (§3.9) ------------------------------------------------------

/// `start_all` with one active request is an error that starts none of them; an
/// inactive request's wait, test and get_status give the empty status at once;
/// persistent sends and receives on `PROC_NULL` go through start/wait like the others.
fn persistent(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let next = (me + 1) % n;
    let prev = (me + n - 1) % n;
    let mut reqs = vec![
        w.recv_init(vec![0i32; 2], prev, 2).unwrap(),
        w.send_init(vec![me; 2], next, 2).unwrap(),
        w.recv_init(vec![5i32; 2], PROC_NULL, 2).unwrap(),
        w.send_init(vec![me; 2], PROC_NULL, 2).unwrap(),
    ];
    for r in reqs.iter_mut() {
        let st = r.wait().unwrap();
        assert!(!st.is_cancelled() && st.is_empty(), "inactive wait: {st:?}");
        assert_eq!(r.test().unwrap().map(|s| s.len()), Some(0));
        assert!(r.get_status().unwrap().is_some());
    }
    reqs[0].start().unwrap();
    fails_with(
        shmpi::start_all(&mut reqs),
        ErrorClass::Request,
        "start_all with an active one",
    );
    assert!(
        !reqs[1].is_active(),
        "start_all started a request after its error"
    );
    fails_with(
        reqs[0].start(),
        ErrorClass::Request,
        "start of an active request",
    );
    reqs[1].start().unwrap();
    reqs[2].start().unwrap();
    reqs[3].start().unwrap();
    for r in reqs.iter_mut() {
        r.wait().unwrap();
    }
    assert_eq!(reqs[0].buf().unwrap(), [prev, prev]);
    assert_eq!(
        reqs[2].buf().unwrap(),
        [5, 5],
        "a null receive leaves its buffer"
    );
    // Restarted all together, many times, they keep working.
    for round in 0..50 {
        reqs[1].buf_mut().unwrap().fill(round);
        shmpi::start_all(&mut reqs).unwrap();
        for r in reqs.iter_mut().rev() {
            r.wait().unwrap();
        }
        assert_eq!(reqs[0].buf().unwrap(), [round, round]);
    }
    // A request on PROC_NULL is inactive until started, with the empty status
    // (§3.7.3); once started it is active until a wait or test completes it (§3.9),
    // which it does at once with the null status (§3.11), and a second start before
    // then is an error that changes nothing.
    let mut null_recv = w.recv_init(vec![5i32; 2], PROC_NULL, 2).unwrap();
    let mut null_send = w.send_init(vec![me; 2], PROC_NULL, 2).unwrap();
    for r in [&mut null_recv, &mut null_send] {
        let st = r.wait().unwrap();
        assert_eq!(
            (st.source(), st.tag(), st.len()),
            (ANY_SOURCE, ANY_TAG, 0),
            "an inactive request's wait gives the empty status"
        );
        r.start().unwrap();
        assert!(r.is_active(), "a started request on PROC_NULL is active");
        fails_with(
            r.start(),
            ErrorClass::Request,
            "a second start on PROC_NULL",
        );
        fails_with(
            r.buf(),
            ErrorClass::Request,
            "the buffer of an active request",
        );
        assert!(r.get_status().unwrap().is_some(), "complete at once");
        assert!(r.is_active(), "get_status does not complete it");
        let st = r.test().unwrap().expect("complete at once");
        assert!(!r.is_active(), "test completed it");
        assert_eq!((st.source(), st.tag(), st.len()), (PROC_NULL, ANY_TAG, 0));
    }
    null_recv.start().unwrap();
    let mut pair = [null_recv, w.recv_init(vec![0i32; 2], prev, 8).unwrap()];
    fails_with(
        shmpi::start_all(&mut pair),
        ErrorClass::Request,
        "start_all with a started one",
    );
    assert!(!pair[1].is_active(), "start_all started nothing");
    let st = pair[0].wait().unwrap();
    assert_eq!(
        (st.source(), pair[0].buf().unwrap()),
        (PROC_NULL, &[5, 5][..])
    );
    w.barrier().unwrap();
    nothing_queued(w, "after the persistent requests");
}

#[test]
fn persistent_requests_follow_the_start_and_complete_rules_at_3_ranks() {
    run_ranks(
        "persistent_requests_follow_the_start_and_complete_rules_at_3_ranks",
        3,
        persistent,
    );
}

// ---- scoped requests ---------------------------------------------------------------

/// Scoped requests on `PROC_NULL` complete at once (a receive leaves its buffer and
/// has the null status), a bad rank fails without a hang, and the scope's matching
/// follows the non-overtaking rule with blocking sends mixed in.
fn scoped(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let next = (me + 1) % n;
    let prev = (me + n - 1) % n;
    let data: Vec<u32> = (0..1000).map(|i| i + 1000 * me as u32).collect();
    let mut a = [7u32; 1000];
    let mut b = [0u32; 1000];
    let mut c = [0u32; 1000];
    w.scope(|s| {
        let null = s.irecv_into(&mut a, PROC_NULL, 1)?;
        let (buf, st) = null.wait()?;
        assert_eq!((st.source(), st.tag(), st.len()), (PROC_NULL, ANY_TAG, 0));
        assert!(buf.iter().all(|&x| x == 7));
        s.isend_slice(&data, PROC_NULL, 1)?.wait()?;
        let rb = s.irecv_into(&mut b, prev, 1)?;
        let rc = s.irecv_into(&mut c, prev, ANY_TAG)?;
        // Sent in this order: a scoped send, then a blocking one; b gets the first.
        let sa = s.isend_slice(&data, next, 1)?;
        w.send_slice(&data[..10], next, 1)?;
        sa.wait()?;
        let (_, stc) = rc.wait()?;
        let (_, stb) = rb.wait()?;
        assert_eq!(
            (stb.count::<u32>(), stc.count::<u32>()),
            (Some(1000), Some(10))
        );
        Ok(())
    })
    .unwrap();
    assert_eq!(b[999], 999 + 1000 * prev as u32);
    assert_eq!(c[..10], b[..10]);
    w.barrier().unwrap();
    nothing_queued(w, "after the scope");
}

#[test]
fn scoped_requests_on_proc_null_and_in_order_at_3_ranks() {
    run_ranks(
        "scoped_requests_on_proc_null_and_in_order_at_3_ranks",
        3,
        scoped,
    );
}

// ---- PROC_NULL in the combined calls (§3.10, §3.11) ---------------------------------

/// `sendrecv_replace` and `sendrecv_slice` with either half on `PROC_NULL`: the other
/// half alone happens; a receive from `PROC_NULL` leaves the buffer as it was and
/// returns the null status.
fn chain_ends(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let right = if me + 1 < n { me + 1 } else { PROC_NULL };
    let left = if me > 0 { me - 1 } else { PROC_NULL };
    let mut buf = [me as i64; 5];
    let st = w.sendrecv_replace(&mut buf, right, 3, left, 3).unwrap();
    if left == PROC_NULL {
        assert_eq!((st.source(), st.tag(), st.len()), (PROC_NULL, ANY_TAG, 0));
        assert_eq!(buf, [me as i64; 5], "left as it was");
    } else {
        assert_eq!(
            (st.source(), st.tag(), st.count::<i64>()),
            (left, 3, Some(5))
        );
        assert_eq!(buf, [left as i64; 5]);
    }
    let mut got = [-1i64; 2];
    let st = w
        .sendrecv_slice(&[me as i64; 2], left, 4, &mut got, right, 4)
        .unwrap();
    if right == PROC_NULL {
        assert_eq!((st.source(), got), (PROC_NULL, [-1; 2]));
    } else {
        assert_eq!((st.source(), got), (right, [right as i64; 2]));
    }
    // Objects: from PROC_NULL recv_opt gives None; a sendrecv to PROC_NULL receives.
    w.send(&format!("r{me}"), me, 5).unwrap();
    let (s, st) = w
        .sendrecv::<String, String>(&"x".into(), PROC_NULL, 5, me, 5)
        .unwrap();
    assert_eq!((s, st.source(), st.tag()), (format!("r{me}"), me, 5));
    w.barrier().unwrap();
    nothing_queued(w, "after the chain");
}

#[test]
fn sendrecv_at_the_ends_of_a_chain_at_4_ranks() {
    run_ranks("sendrecv_at_the_ends_of_a_chain_at_4_ranks", 4, chain_ends);
}

// ---- probes, posted receives and the tag range (§3.5, §3.8) --------------------------

/// A probe with `ANY_TAG` describes the sender's earliest message (non-overtaking
/// holds for probes too); a receive posted first gets the first matching message, a
/// wildcard one included; `TAG_UB` is a valid tag; a wait over requests none of which
/// is active is an error of class `Request`.
fn probes_and_posting(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let next = (me + 1) % n;
    let prev = (me + n - 1) % n;
    w.send_slice(&[2u8; 2], next, 2).unwrap();
    w.send_slice(&[1u8; 1], next, 1).unwrap();
    w.send_slice(&[3u8; 3], next, shmpi::TAG_UB).unwrap();
    let st = w.probe(prev, ANY_TAG).unwrap();
    assert_eq!((st.tag(), st.len()), (2, 2), "the earliest message");
    let (mut m, st) = w.improbe(prev, 1).unwrap().expect("sent before the probe");
    assert_eq!((st.tag(), st.len()), (1, 1));
    let st = w.iprobe(ANY_SOURCE, ANY_TAG).unwrap().expect("two left");
    assert_eq!(
        (st.source(), st.tag()),
        (prev, 2),
        "the matched one is gone"
    );
    assert_eq!(m.recv_vec::<u8>().unwrap().0, [1]);
    let (v, st) = w.recv_vec::<u8>(prev, ANY_TAG).unwrap();
    assert_eq!((v, st.tag()), (vec![2, 2], 2));
    let (v, st) = w.recv_vec::<u8>(ANY_SOURCE, shmpi::TAG_UB).unwrap();
    assert_eq!((v, st.tag()), (vec![3; 3], shmpi::TAG_UB));
    w.barrier().unwrap();

    // Posted in this order, a specific receive after a wildcard one: the first
    // message goes to the wildcard receive, the second to the specific one.
    let wild = w.irecv_into(vec![0u32; 1], ANY_SOURCE, ANY_TAG).unwrap();
    let spec = w.irecv_into(vec![0u32; 1], prev, 4).unwrap();
    w.barrier().unwrap();
    w.send_slice(&[10u32], next, 4).unwrap();
    w.send_slice(&[20u32], next, 4).unwrap();
    let (b, st) = spec.wait().unwrap();
    assert_eq!((b, st.source()), (vec![20], prev));
    let (b, st) = wild.wait().unwrap();
    assert_eq!((b, st.source(), st.tag()), (vec![10], prev, 4));

    // Nothing active to wait for: an error, not a hang.
    let mut inactive = w.recv_init(vec![0u8; 1], prev, 5).unwrap();
    fails_with(
        shmpi::wait_any_of(&mut [&mut inactive]),
        ErrorClass::Request,
        "wait_any_of over an inactive request",
    );
    w.barrier().unwrap();
    nothing_queued(w, "after the probes");
}

#[test]
fn probes_posted_receives_and_tag_ub_follow_the_order_rules_at_4_ranks() {
    run_ranks(
        "probes_posted_receives_and_tag_ub_follow_the_order_rules_at_4_ranks",
        4,
        probes_and_posting,
    );
}

/// `wait_all` over receives one of which fails gives the first error and drops the
/// others' results (documented); `wait_all_results` gives each its own, so the other
/// messages are not lost (MPI's `MPI_ERR_IN_STATUS`: every request completes), and the
/// failed one's message stays queued either way.
fn wait_all_with_a_failure(w: &Communicator) {
    let me = w.rank();
    let post = || {
        w.send_slice(&[1u8; 4], me, 1).unwrap();
        w.send_slice(&[2u8; 4], me, 2).unwrap();
        vec![
            w.irecv_into(vec![0u8; 1], me, 1).unwrap(),
            w.irecv_into(vec![0u8; 4], me, 2).unwrap(),
        ]
    };
    let e = shmpi::wait_all(post()).unwrap_err();
    assert_eq!(e.class(), ErrorClass::Truncate, "{e}");
    assert_eq!(
        w.recv_vec::<u8>(me, 1).unwrap().0,
        [1; 4],
        "the failed one's message"
    );
    assert!(
        w.iprobe(me, 2).unwrap().is_none(),
        "wait_all received the other"
    );
    let got = shmpi::wait_all_results(post());
    assert!(
        matches!(&got[0], Err(e) if e.class() == ErrorClass::Truncate),
        "{:?}",
        got[0]
    );
    assert!(
        matches!(&got[1], Ok((b, st)) if b == &[2; 4] && st.tag() == 2),
        "{:?}",
        got[1]
    );
    assert_eq!(
        w.recv_vec::<u8>(me, 1).unwrap().0,
        [1; 4],
        "the failed one's message"
    );
    assert!(shmpi::wait_all_results(Vec::<shmpi::Request<()>>::new()).is_empty());
    nothing_queued(w, "after wait_all");
}

#[test]
fn wait_all_results_keeps_what_completed_beside_a_failed_receive_at_3_ranks() {
    run_ranks(
        "wait_all_results_keeps_what_completed_beside_a_failed_receive_at_3_ranks",
        3,
        wait_all_with_a_failure,
    );
}

// ---- completion that fails, and sends to oneself (§3.7.6, §3.5) ---------------------

/// A request whose operation fails is complete all the same: `get_status` and
/// `is_complete` say so (a loop on them ends), and the error comes from its wait or
/// test. A blocking send of 8 MiB to oneself before the receive completes (a send
/// never waits for its receive), as does a synchronous one posted as a request.
fn failed_completion(w: &Communicator) {
    let me = w.rank();
    w.send_slice(&[7u8; 16], me, 1).unwrap();
    let mut r = w.irecv_into(vec![0u8; 4], me, 1).unwrap();
    let st = common::poll_until("get_status of a failing receive", || r.get_status()).unwrap();
    assert_eq!(
        (st.source(), st.tag(), st.len()),
        (me, 1, 0),
        "the message it failed on"
    );
    assert!(r.is_complete().unwrap());
    fails_with(r.wait(), ErrorClass::Truncate, "the truncated receive");
    let mut r = w.irecv_into(vec![0u8; 4], me, 1).unwrap();
    let e = common::poll_until("test of a failing receive", || match r.test() {
        Ok(v) => Ok(v.map(|_| None)),
        Err(e) => Ok(Some(Some(e))),
    })
    .unwrap();
    assert_eq!(e.map(|e| e.class()), Some(ErrorClass::Truncate));
    fails_with(
        r.test(),
        ErrorClass::Request,
        "a request whose failure was handed out",
    );
    assert_eq!(w.recv_vec::<u8>(me, 1).unwrap().0, [7; 16], "still queued");

    let big: Vec<u8> = (0..8 << 20).map(|i| i as u8).collect();
    w.send_slice(&big, me, 2).unwrap();
    let mut s = w.issend_slice(&big[..1 << 20], me, 3).unwrap();
    assert!(
        !s.is_complete().unwrap(),
        "a synchronous send waits for its receive"
    );
    let (v, st) = w.recv_vec::<u8>(me, 2).unwrap();
    assert!(v == big && st.len() == 8 << 20);
    let (v, _) = w.recv_vec::<u8>(me, 3).unwrap();
    assert_eq!(v, big[..1 << 20]);
    s.wait().unwrap();
    nothing_queued(w, "after the self sends");
}

#[test]
fn failed_requests_are_complete_and_self_sends_never_wait_at_3_ranks() {
    run_ranks(
        "failed_requests_are_complete_and_self_sends_never_wait_at_3_ranks",
        3,
        failed_completion,
    );
}

// ---- ranks in a sub-communicator (§3.2.5, §6.4) --------------------------------------

/// On a communicator split from the world, in reverse key order, every status and
/// error names ranks of that communicator: a wildcard receive's source, a probe's, a
/// truncation's, a failed request's status; a world rank past its size is refused;
/// and messages on the world are not seen there.
fn sub_ranks(w: &Communicator) {
    let (wr, wn) = (w.rank(), w.size());
    let c = w
        .split(wr % 2, -wr)
        .unwrap()
        .expect("every rank has a color");
    let (me, n) = (c.rank(), c.size());
    assert_eq!(n, (wn + 1 - wr % 2) / 2);
    w.send_slice(&[9u8], wr, 1).unwrap(); // on the world only
    let next = (me + 1) % n;
    let prev = (me + n - 1) % n;
    c.send_slice(&[me as u8; 2], next, 1).unwrap();
    let st = c.probe(ANY_SOURCE, ANY_TAG).unwrap();
    assert_eq!((st.source(), st.tag(), st.len()), (prev, 1, 2), "{st:?}");
    let e = c.recv_into(&mut [0u8; 1], ANY_SOURCE, 1).unwrap_err();
    assert!(
        matches!(e, Error::Truncated { source_rank, .. } if source_rank == prev),
        "{e}"
    );
    let mut r = c.irecv_into(vec![0u8; 1], ANY_SOURCE, 1).unwrap();
    let st = common::poll_until("get_status", || r.get_status()).unwrap();
    assert_eq!(st.source(), prev, "{st:?}");
    fails_with(
        r.wait(),
        ErrorClass::Truncate,
        "the sub-communicator's truncation",
    );
    let (v, st) = c.recv_vec::<u8>(ANY_SOURCE, ANY_TAG).unwrap();
    assert_eq!((v, st.source()), (vec![prev as u8; 2], prev));
    fails_with(
        c.send_slice(&[1u8], n, 0),
        ErrorClass::Rank,
        "a rank past the split's size",
    );
    c.barrier().unwrap();
    assert_eq!(
        c.iprobe(ANY_SOURCE, ANY_TAG).unwrap(),
        None,
        "the world's message"
    );
    assert_eq!(w.recv_vec::<u8>(wr, 1).unwrap().0, [9]);
    w.barrier().unwrap();
    nothing_queued(w, "after the split");
}

#[test]
fn statuses_and_errors_name_ranks_of_a_split_communicator_at_5_ranks() {
    run_ranks(
        "statuses_and_errors_name_ranks_of_a_split_communicator_at_5_ranks",
        5,
        sub_ranks,
    );
}

// ---- loans and cell receives: bad input and PROC_NULL --------------------------------

/// A loan sent to a bad rank or with a bad tag is refused with the right class and
/// comes back to the pool (the pool is not drained by refusals); a loan sent to
/// `PROC_NULL` is given back; receives of loans and scoped cell receives from
/// `PROC_NULL` complete at once with the null status.
fn loans_and_cells(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let next = (me + 1) % n;
    let prev = (me + n - 1) % n;
    // Far more than the pool holds, if refused loans were not given back.
    for _ in 0..400 {
        let l = w.loan_slice::<u8>(1 << 20).unwrap();
        fails_with(
            w.send_loan(l, n, 0),
            ErrorClass::Rank,
            "send_loan to a bad rank",
        );
        let l = w.loan_slice::<u8>(1 << 20).unwrap();
        fails_with(
            w.send_loan(l, next, -4),
            ErrorClass::Tag,
            "send_loan with a bad tag",
        );
        let l = w.loan_slice::<u8>(1 << 20).unwrap();
        w.send_loan(l, PROC_NULL, 0).unwrap();
    }
    fails_with(
        w.recv_loan::<u8>(n, 0),
        ErrorClass::Rank,
        "recv_loan from a bad rank",
    );
    fails_with(
        w.recv_loan::<u8>(prev, -4),
        ErrorClass::Tag,
        "recv_loan with a bad tag",
    );
    fails_with(
        w.recv_loan::<u8>(PROC_NULL, -4),
        ErrorClass::Tag,
        "recv_loan from PROC_NULL, bad tag",
    );
    let (v, st) = w.recv_loan::<u8>(PROC_NULL, 0).unwrap();
    assert!(v.is_empty());
    assert_eq!((st.source(), st.tag(), st.len()), (PROC_NULL, ANY_TAG, 0));
    let mut l = w.loan_slice::<u32>(4).unwrap();
    l.fill(me as u32);
    w.send_loan(l, next, 6).unwrap();
    let (v, st) = w.recv_loan::<u32>(ANY_SOURCE, 6).unwrap();
    assert_eq!((&v[..], st.source()), (&[prev as u32; 4][..], prev));
    drop(v);

    let cells: Vec<std::cell::Cell<u16>> = (0..4).map(|_| std::cell::Cell::new(7)).collect();
    w.scope(|s| {
        let (_, st) = s.irecv_cells(&cells, PROC_NULL, 3)?.wait()?;
        assert_eq!((st.source(), st.tag(), st.len()), (PROC_NULL, ANY_TAG, 0));
        s.issend_slice(&[1u16], PROC_NULL, 3)?.wait()?;
        fails_with(
            s.irecv_cells(&cells, n, 3).map(drop),
            ErrorClass::Rank,
            "irecv_cells",
        );
        fails_with(
            s.issend_slice(&[1u16], me, -3).map(drop),
            ErrorClass::Tag,
            "issend_slice",
        );
        Ok(())
    })
    .unwrap();
    assert!(cells.iter().all(|c| c.get() == 7), "untouched");
    w.barrier().unwrap();
    nothing_queued(w, "after the loans");
}

#[test]
fn refused_loans_come_back_and_proc_null_loans_and_cells_complete_at_3_ranks() {
    run_ranks(
        "refused_loans_come_back_and_proc_null_loans_and_cells_complete_at_3_ranks",
        3,
        loans_and_cells,
    );
}

// ---- sends left to complete in the background (§3.7.3, MPI_Request_free) ------------

/// Dropped send requests complete in the background, also past their rank's end: a
/// rank that sends large messages (offered to the receiver to read from its memory)
/// and small ones, drops the requests and finishes, has them received whole and in
/// order by a rank that asks for them only later.
fn background_sends(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    if me != 0 {
        for k in 0..4u32 {
            let len = if k % 2 == 0 { 1 << 20 } else { 16 };
            let mut v = vec![me as u32; len];
            v[0] = k;
            drop(w.isend_vec(v, 0, 1).unwrap());
            drop(w.issend_slice(&[k + 100], 0, 1));
        }
        return; // finishes with its sends unreceived
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    for s in 1..n {
        for k in 0..4u32 {
            let (v, st) = w.recv_vec::<u32>(s, 1).unwrap();
            assert_eq!(
                (v[0], v.len(), st.source()),
                (k, if k % 2 == 0 { 1 << 20 } else { 16 }, s)
            );
            assert!(v[1..].iter().all(|&x| x == s as u32));
            let (v, _) = w.recv_vec::<u32>(s, 1).unwrap();
            assert_eq!(v, [k + 100]);
        }
    }
    nothing_queued(w, "after the background sends");
}

#[test]
fn dropped_sends_complete_after_their_rank_finishes_at_4_ranks() {
    run_ranks(
        "dropped_sends_complete_after_their_rank_finishes_at_4_ranks",
        4,
        background_sends,
    );
}
