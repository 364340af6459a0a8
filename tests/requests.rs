//! Request operations between real processes started by the real launcher, each test
//! from MPI's rule (MPI 4.1 section 3.7) or mpi4py's documented behaviour: `test`
//! hands back the result once, `get_status` does not complete, `cancel` of a receive,
//! `wait_some`/`test_some`/`test_any`/`test_all`, waits over requests of different
//! types, and persistent requests.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{cancels_untouched, poll_until, run_ranks, run_ranks_with_env};
use shmpi::{ANY_SOURCE, ANY_TAG, AnyRequest, Communicator, Error, ErrorClass};

/// Counts allocations, to check that restarting a persistent request allocates
/// nothing.
struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn request_error(e: &Error) -> bool {
    e.class() == ErrorClass::Request
}

// ---- test, wait, get_status ---------------------------------------------------------

/// MPI_Test: a receive is not complete before its message is sent; once `test`
/// returns the result, the request is spent (MPI frees it): a later test or wait is an
/// error of class Request.
#[test]
fn a_request_completes_only_after_its_message_is_sent_and_test_hands_it_out_once() {
    run_ranks(
        "a_request_completes_only_after_its_message_is_sent_and_test_hands_it_out_once",
        2,
        |w| {
            if w.rank() == 0 {
                w.barrier().unwrap();
                w.send(&"late".to_string(), 1, 4).unwrap();
                let mut s = w.isend(&5u32, 1, 5).unwrap();
                while s.test().unwrap().is_none() {}
                assert!(request_error(&s.wait().unwrap_err()));
            } else {
                let mut r = w.irecv::<String>(0, 4).unwrap();
                for _ in 0..100 {
                    assert!(r.test().unwrap().is_none(), "nothing was sent yet");
                    assert!(!r.is_complete().unwrap());
                    assert!(r.get_status().unwrap().is_none());
                }
                w.barrier().unwrap();
                let (v, st) = loop {
                    if let Some(got) = r.test().unwrap() {
                        break got;
                    }
                };
                assert_eq!((v.as_str(), st.source(), st.tag()), ("late", 0, 4));
                let e = r.test().unwrap_err();
                assert!(request_error(&e), "{e}");
                assert!(e.to_string().contains("spent"), "{e}");
                assert!(request_error(&r.get_status().unwrap_err()));
                assert!(request_error(&r.wait().unwrap_err()));
                assert_eq!(w.recv::<u32>(0, 5).unwrap(), 5);
            }
        },
    );
}

/// MPI_Request_get_status: tells whether the request completed, and its status,
/// without completing it; the wait that follows returns the same.
#[test]
fn get_status_reports_completion_without_completing() {
    run_ranks("get_status_reports_completion_without_completing", 3, |w| {
        let n = w.size();
        if w.rank() == 0 {
            let mut reqs: Vec<_> = (1..n)
                .map(|_| w.irecv_into(vec![0u16; 10], ANY_SOURCE, ANY_TAG).unwrap())
                .collect();
            w.barrier().unwrap();
            for r in &mut reqs {
                let st = loop {
                    if let Some(st) = r.get_status().unwrap() {
                        break st;
                    }
                };
                assert!(!st.is_cancelled());
                assert_eq!(r.get_status().unwrap(), Some(st), "still there");
                assert!(r.is_complete().unwrap());
                let (buf, st2) = loop {
                    // get_status left it: test hands it out now.
                    if let Some(got) = r.test().unwrap() {
                        break got;
                    }
                };
                assert_eq!(st2, st);
                assert_eq!(st.count::<u16>(), Some(st.source() as usize));
                assert!(buf[..st.source() as usize].iter().all(|&x| x == 7));
            }
        } else {
            w.barrier().unwrap();
            let me = w.rank() as usize;
            w.send_slice(&vec![7u16; me], 0, 30 + w.rank()).unwrap();
        }
    });
}

/// A receive posted when its message is already there completes like any other
/// (MPI 4.1 §3.7.3, §3.5): `get_status` gives the message's source, tag and count,
/// `test` hands it out once, it cannot be cancelled; and the non-overtaking rule
/// holds: a receive posted after two others that match the same messages takes the
/// third message, though all three were there when it was posted. The senders tell
/// rank 0 that their messages are in its rings through a shared window's counter,
/// which rank 0 reads without any call that would move the messages out of the rings.
fn receives_of_messages_already_there(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let win = shmpi::Window::allocate_shared(w, 8).unwrap();
    let sent = win.atomic_u64(0, 0).unwrap();
    let wait_for = |k: u64| {
        while sent.load(Ordering::Acquire) < k {
            std::thread::yield_now();
        }
    };
    if me == 0 {
        wait_for(n as u64 - 1);
        for src in 1..n {
            let mut r = w.irecv_into(vec![0u32; 4], src, 5).unwrap();
            let st = r.get_status().unwrap().expect("its message is there");
            assert_eq!(
                (st.source(), st.tag(), st.count::<u32>()),
                (src, 5, Some(3))
            );
            assert!(r.is_complete().unwrap());
            assert!(!r.cancel().unwrap(), "a completed receive is not cancelled");
            let (buf, st2) = r.test().unwrap().expect("complete");
            assert_eq!((&buf[..3], st2), (&[src as u32; 3][..], st));
            assert!(request_error(&r.test().unwrap_err()), "spent");
            assert!(request_error(&r.get_status().unwrap_err()));
        }
        // Posted before anything is sent: these two own rank 1's first two messages.
        let first = w.irecv_into(vec![0u32; 4], 1, 7).unwrap();
        let second = w.irecv_into(vec![0u32; 4], 1, 7).unwrap();
        w.barrier().unwrap();
        wait_for(n as u64);
        let third = w.irecv_into(vec![0u32; 4], 1, 7).unwrap();
        let got: Vec<u32> = shmpi::wait_all(vec![third, second, first])
            .unwrap()
            .into_iter()
            .map(|(b, st)| {
                assert_eq!(st.count::<u32>(), Some(1));
                b[0]
            })
            .collect();
        assert_eq!(
            got,
            [3, 2, 1],
            "matched in the order the receives were posted"
        );
    } else {
        w.send_slice(&[me as u32; 3], 0, 5).unwrap();
        sent.fetch_add(1, Ordering::Release);
        w.barrier().unwrap();
        if me == 1 {
            for k in 1..=3u32 {
                w.send_slice(&[k], 0, 7).unwrap();
            }
            sent.fetch_add(1, Ordering::Release);
        }
    }
    w.barrier().unwrap();
}

#[test]
fn receives_of_messages_already_there_complete_in_order_at_2_ranks() {
    run_ranks(
        "receives_of_messages_already_there_complete_in_order_at_2_ranks",
        2,
        receives_of_messages_already_there,
    );
}

#[test]
fn receives_of_messages_already_there_complete_in_order_at_4_ranks() {
    run_ranks(
        "receives_of_messages_already_there_complete_in_order_at_4_ranks",
        4,
        receives_of_messages_already_there,
    );
}

// ---- cancel --------------------------------------------------------------------------

/// MPI_Cancel of a receive: it never gets a message later, the message goes to the
/// next matching receive, and its status says it was cancelled. At every N, rank 0's
/// cancelled wildcard receive must not take any of the messages the others send.
/// A send that is all in the ring as it starts (a small copy, an object, a scoped
/// slice, a send to `PROC_NULL`) is a completed request like any other (MPI 4.1
/// §3.7.3): `test` hands it out once with MPI's empty status, `get_status` and
/// `is_complete` report it without completing it, `cancel` does not cancel it, the
/// calls over many requests find it beside requests that may still be under way (a
/// 4 MiB send, a receive nothing matches), and a spent one is an error.
fn sends_finished_at_start(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let right = (me + 1) % n;
    let left = (me + n - 1) % n;
    let big = vec![7u8; 4 << 20];
    let small = [me as u8; 8];
    // Every rank sends to its right: small messages, each all in the (empty) ring at
    // once, then a 4 MiB message that cannot be before the neighbour receives it.
    let mut quick = w.isend_slice(&small, right, 2).unwrap();
    assert!(quick.is_complete().unwrap());
    let st = quick.get_status().unwrap().expect("complete");
    assert_eq!((st.source(), st.tag(), st.len()), (ANY_SOURCE, ANY_TAG, 0));
    assert!(!quick.cancel().unwrap(), "a send is never cancelled");
    assert_eq!(quick.test().unwrap(), Some(()));
    assert!(request_error(&quick.test().unwrap_err()), "spent");
    assert!(request_error(&quick.get_status().unwrap_err()));
    let mut reqs = vec![
        w.isend(&(me as u64 * 3), right, 3).unwrap(),
        w.isend_slice(&small, shmpi::PROC_NULL, 4).unwrap(),
        w.isend_slice(&big, right, 1).unwrap(),
    ];
    // The 4 MiB send may or may not be all in the ring yet (the neighbour's progress
    // passes drain it); the others are complete from the start.
    let idx: Vec<usize> = shmpi::test_some(&mut reqs)
        .unwrap()
        .into_iter()
        .map(|(i, r)| r.map(|()| i).unwrap())
        .collect();
    assert!(idx.contains(&0) && idx.contains(&1), "{idx:?}");
    w.scope(|s| {
        let mut a = s.isend_slice(&small, right, 5)?;
        let mut pending = w.irecv::<u64>(left, 99)?; // nothing sends tag 99
        let i = shmpi::wait_any_of(&mut [&mut pending, &mut a])?;
        assert_eq!(i, 1, "the scoped send is complete, the receive is not");
        assert!(pending.cancel()?);
        a.wait()
    })
    .unwrap();
    let (got, st) = w.recv_vec::<u8>(left, 1).unwrap();
    assert_eq!((got.len(), st.source()), (4 << 20, left));
    shmpi::wait_all(std::mem::take(&mut reqs)).unwrap();
    assert_eq!(w.recv_vec::<u8>(left, 2).unwrap().0, [left as u8; 8]);
    assert_eq!(w.recv::<u64>(left, 3).unwrap(), left as u64 * 3);
    assert_eq!(w.recv_vec::<u8>(left, 5).unwrap().0, [left as u8; 8]);
    w.barrier().unwrap();
}

#[test]
fn sends_finished_as_they_start_are_completed_requests_at_2_ranks() {
    run_ranks(
        "sends_finished_as_they_start_are_completed_requests_at_2_ranks",
        2,
        sends_finished_at_start,
    );
}

#[test]
fn sends_finished_as_they_start_are_completed_requests_at_5_ranks() {
    run_ranks(
        "sends_finished_as_they_start_are_completed_requests_at_5_ranks",
        5,
        sends_finished_at_start,
    );
}

/// A non-blocking send of an owned buffer (MPI_Isend with rsmpi-style ownership)
/// gives back from `wait` the very buffer it was given, unchanged: the same vector
/// (allocation and capacity) or the same `Arc`, whether the message went into the ring
/// as it started or had to queue behind a full ring (here 2.4 MiB of 4 KiB messages
/// in flight to one neighbour), and the neighbour receives every byte in order.
fn owned_send_buffers_come_back_as_given(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let right = (me + 1) % n;
    let left = (me + n - 1) % n;
    let mut small = Vec::with_capacity(64);
    small.extend_from_slice(&[me as u8; 8]);
    let (ptr, cap) = (small.as_ptr(), small.capacity());
    let back = w.isend_vec(small, right, 1).unwrap().wait().unwrap();
    assert_eq!(
        (back.as_ptr(), back.capacity(), &back[..]),
        (ptr, cap, &[me as u8; 8][..])
    );
    let shared: std::sync::Arc<[u32]> = vec![me as u32; 5].into();
    let r = w.isend_buf(shared.clone(), right, 2).unwrap();
    assert!(std::sync::Arc::ptr_eq(&r.wait().unwrap(), &shared));
    let many: Vec<Vec<u32>> = (0..600)
        .map(|i| vec![(me * 1000 + i) as u32; 1024])
        .collect();
    let ptrs: Vec<*const u32> = many.iter().map(|v| v.as_ptr()).collect();
    let reqs: Vec<_> = many
        .into_iter()
        .map(|v| w.isend_vec(v, right, 3).unwrap())
        .collect();
    assert_eq!(w.recv_vec::<u8>(left, 1).unwrap().0, [left as u8; 8]);
    assert_eq!(w.recv_vec::<u32>(left, 2).unwrap().0, [left as u32; 5]);
    for i in 0..600 {
        let (v, _) = w.recv_vec::<u32>(left, 3).unwrap();
        assert_eq!(v, vec![(left * 1000 + i) as u32; 1024], "message {i}");
    }
    let backs = shmpi::wait_all(reqs).unwrap();
    for (i, (v, p)) in backs.iter().zip(&ptrs).enumerate() {
        assert_eq!(
            (v.as_ptr(), v[0]),
            (*p, (me as usize * 1000 + i) as u32),
            "send {i}"
        );
    }
    w.barrier().unwrap();
}

#[test]
fn owned_send_buffers_come_back_as_given_at_2_ranks() {
    run_ranks(
        "owned_send_buffers_come_back_as_given_at_2_ranks",
        2,
        owned_send_buffers_come_back_as_given,
    );
}

#[test]
fn owned_send_buffers_come_back_as_given_at_5_ranks() {
    run_ranks(
        "owned_send_buffers_come_back_as_given_at_5_ranks",
        5,
        owned_send_buffers_come_back_as_given,
    );
}

fn cancelled_receive(w: &Communicator) {
    let n = w.size();
    if w.rank() == 0 {
        let mut a = w.irecv_into(vec![0u8; 8], ANY_SOURCE, 7).unwrap();
        let mut obj = w.irecv::<u64>(ANY_SOURCE, 8).unwrap();
        assert!(a.cancel().unwrap(), "nothing matched it yet");
        assert!(obj.cancel().unwrap());
        assert!(!a.cancel().unwrap(), "already cancelled");
        let st = a
            .get_status()
            .unwrap()
            .expect("a cancelled request is complete");
        assert!(st.is_cancelled());
        w.barrier().unwrap();
        // Every message goes to the next receives, none to the cancelled ones.
        let mut got = Vec::new();
        for _ in 1..n {
            let (v, st) = w
                .irecv_into(vec![0u8; 8], ANY_SOURCE, 7)
                .unwrap()
                .wait()
                .unwrap();
            assert!(!st.is_cancelled());
            assert_eq!(v[0] as i32, st.source());
            got.push(st.source());
            assert_eq!(w.recv::<u64>(st.source(), 8).unwrap(), st.source() as u64);
        }
        got.sort();
        assert_eq!(got, (1..n).collect::<Vec<_>>());
        for _ in 0..20 {
            assert!(w.iprobe(ANY_SOURCE, ANY_TAG).unwrap().is_none());
        }
        let (buf, st) = a.wait().unwrap();
        assert!(st.is_cancelled(), "the cancelled receive got nothing");
        assert_eq!(buf, [0u8; 8], "its buffer is untouched and comes back");
        let e = obj.wait().unwrap_err();
        assert!(e.to_string().contains("cancelled"), "{e}");
    } else {
        w.barrier().unwrap();
        let me = w.rank();
        w.send_slice(&[me as u8; 3], 0, 7).unwrap();
        w.send(&(me as u64), 0, 8).unwrap();
    }
}

#[test]
fn a_cancelled_receive_never_gets_a_message_at_2_ranks() {
    run_ranks(
        "a_cancelled_receive_never_gets_a_message_at_2_ranks",
        2,
        cancelled_receive,
    );
}

#[test]
fn a_cancelled_receive_never_gets_a_message_at_4_ranks() {
    run_ranks(
        "a_cancelled_receive_never_gets_a_message_at_4_ranks",
        4,
        cancelled_receive,
    );
}

#[test]
fn a_cancelled_receive_never_gets_a_message_at_8_ranks() {
    run_ranks(
        "a_cancelled_receive_never_gets_a_message_at_8_ranks",
        8,
        cancelled_receive,
    );
}

/// A receive matched to a message that is still streaming in (larger than the ring),
/// none of whose bytes reached its buffer, may still be cancelled (MPI: either the
/// receive completes or it is cancelled and its buffer untouched); the message then
/// goes whole to the next receive. A send is never cancelled and completes; a finished
/// receive is not cancelled either.
#[test]
fn cancelling_frees_a_streaming_message_for_the_next_receive_and_never_cancels_sends() {
    // Through the ring: an offered message (the default for a large non-blocking send)
    // is whole as it arrives, so the receive would take it at once.
    run_ranks_with_env(
        "cancelling_frees_a_streaming_message_for_the_next_receive_and_never_cancels_sends",
        2,
        &[("SHMPI_CMA", "0")],
        |w| {
            const BIG: usize = 4 << 20;
            if w.rank() == 0 {
                let mut s = w.isend_vec(vec![3u8; BIG], 1, 1).unwrap();
                assert!(!s.cancel().unwrap(), "sends are never cancelled");
                assert_eq!(s.wait().unwrap().len(), BIG, "and complete");
                let mut small = w.isend(&9u8, 1, 2).unwrap();
                assert!(!small.cancel().unwrap());
                small.wait().unwrap();
            } else {
                // Wait for the first chunk; the rest cannot be in yet (the ring is
                // smaller and nobody drains it meanwhile).
                while w.iprobe(0, 1).unwrap().is_none() {}
                let mut r = w.irecv_into(vec![0u8; BIG], 0, 1).unwrap();
                assert!(r.cancel().unwrap());
                let (buf, st) = r.wait().unwrap();
                assert!(st.is_cancelled());
                assert!(buf.iter().all(|&b| b == 0), "no byte reached it");
                let (v, st) = w.recv_vec::<u8>(0, 1).unwrap();
                assert_eq!((v.len(), st.is_cancelled()), (BIG, false));
                assert!(v.iter().all(|&b| b == 3));
                let mut done = w.irecv::<u8>(0, 2).unwrap();
                while !done.is_complete().unwrap() {}
                assert!(
                    !done.cancel().unwrap(),
                    "a finished receive is not cancelled"
                );
                assert_eq!(done.wait().unwrap().0, 9);
            }
        },
    );
}

// ---- waits and tests over many requests ------------------------------------------------

/// MPI_Testsome returns exactly the requests that completed, with their indices; the
/// others stay; MPI_Waitsome blocks until at least one completes. Pairs of ranks
/// (even receives, odd sends).
fn some_complete(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let peer = me ^ 1;
    let first = [1, 3, 4, 6];
    if peer >= n {
        w.barrier().unwrap();
        w.barrier().unwrap();
        return;
    }
    if me % 2 == 0 {
        let mut reqs: Vec<_> = (0..8).map(|t| w.irecv::<i32>(peer, t).unwrap()).collect();
        let mut tags: Vec<i32> = (0..8).collect();
        assert!(
            shmpi::test_some(&mut reqs).unwrap().is_empty(),
            "none sent yet"
        );
        assert!(shmpi::test_any(&mut reqs).unwrap().is_none());
        assert!(shmpi::test_all(&mut reqs).unwrap().is_none());
        assert_eq!(reqs.len(), 8, "tests that find nothing leave every request");
        w.barrier().unwrap(); // the peer sends `first`
        let mut got = Vec::new();
        while got.len() < first.len() {
            for (i, r) in shmpi::test_some(&mut reqs).unwrap().into_iter().rev() {
                let (v, st) = r.unwrap();
                let tag = tags.remove(i);
                assert_eq!((v, st.tag()), (tag * 10, tag), "index {i} is its request");
                got.push(tag);
            }
        }
        got.sort();
        assert_eq!(got, first, "exactly the completed ones");
        for _ in 0..50 {
            assert!(shmpi::test_some(&mut reqs).unwrap().is_empty());
        }
        assert_eq!(tags, [0, 2, 5, 7]);
        w.barrier().unwrap(); // the peer sends tag 5, then the others later
        let done = shmpi::wait_some(&mut reqs).unwrap();
        assert!(!done.is_empty());
        let mut rest = Vec::new();
        for (i, r) in done.into_iter().rev() {
            let tag = tags.remove(i);
            assert_eq!(r.unwrap().0, tag * 10);
            rest.push(tag);
        }
        assert!(rest.contains(&5), "{rest:?}");
        while !reqs.is_empty() {
            if let Some(all) = shmpi::test_all(&mut reqs).unwrap() {
                assert_eq!(all.len(), tags.len());
                for (tag, (v, _)) in tags.iter().zip(all) {
                    assert_eq!(v, tag * 10, "test_all keeps the order");
                }
                assert!(reqs.is_empty());
            }
        }
        assert!(
            shmpi::wait_some(&mut reqs).unwrap().is_empty(),
            "nothing pending"
        );
        assert!(request_error(&shmpi::wait_any(&mut reqs).unwrap_err()));
    } else {
        w.barrier().unwrap();
        for t in first {
            w.send(&(t * 10), peer, t).unwrap();
        }
        w.barrier().unwrap();
        w.send(&50, peer, 5).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
        for t in [0, 2, 7] {
            w.send(&(t * 10), peer, t).unwrap();
        }
    }
}

#[test]
fn test_some_returns_exactly_the_completed_requests_at_2_ranks() {
    run_ranks(
        "test_some_returns_exactly_the_completed_requests_at_2_ranks",
        2,
        some_complete,
    );
}

#[test]
fn test_some_returns_exactly_the_completed_requests_at_3_ranks() {
    run_ranks(
        "test_some_returns_exactly_the_completed_requests_at_3_ranks",
        3,
        some_complete,
    );
}

#[test]
fn test_some_returns_exactly_the_completed_requests_at_8_ranks() {
    run_ranks(
        "test_some_returns_exactly_the_completed_requests_at_8_ranks",
        8,
        some_complete,
    );
}

/// Requests of different result types in one wait: the index of the one that
/// completed; its own wait then returns at once. Spent and inactive requests are
/// skipped; a list with nothing pending is an error.
#[test]
fn wait_any_of_mixes_request_types() {
    run_ranks("wait_any_of_mixes_request_types", 2, |w| {
        if w.rank() == 0 {
            let mut text = w.irecv::<String>(1, 1).unwrap();
            let mut data = w.irecv_into(vec![0f64; 4], 1, 2).unwrap();
            let mut pers = w.recv_init(vec![0i32; 2], 1, 3).unwrap();
            pers.start().unwrap();
            {
                let mut all: [&mut dyn AnyRequest; 3] = [&mut text, &mut data, &mut pers];
                assert_eq!(shmpi::test_any_of(&mut all).unwrap(), None);
            }
            w.barrier().unwrap(); // 1 sends tag 2
            assert_eq!(
                shmpi::wait_any_of(&mut [&mut text, &mut data, &mut pers]).unwrap(),
                1
            );
            assert_eq!(data.wait().unwrap().0, [1.5; 4]);
            w.barrier().unwrap(); // 1 sends tag 3
            assert_eq!(shmpi::wait_any_of(&mut [&mut text, &mut pers]).unwrap(), 1);
            assert_eq!(pers.wait().unwrap().count::<i32>(), Some(2));
            assert_eq!(pers.buf().unwrap(), [4, 5]);
            w.barrier().unwrap(); // 1 sends tag 1
            // The inactive persistent request is skipped.
            let i = loop {
                if let Some(i) = shmpi::test_any_of(&mut [&mut pers, &mut text]).unwrap() {
                    break i;
                }
            };
            assert_eq!(i, 1);
            assert_eq!(text.test().unwrap().unwrap().0, "hi");
            let e = shmpi::wait_any_of(&mut [&mut pers, &mut text]).unwrap_err();
            assert!(request_error(&e), "nothing pending: {e}");
            assert!(e.to_string().contains("wait_any_of"), "{e}");
        } else {
            w.barrier().unwrap();
            w.send_slice(&[1.5f64; 4], 0, 2).unwrap();
            w.barrier().unwrap();
            w.send_slice(&[4i32, 5], 0, 3).unwrap();
            w.barrier().unwrap();
            w.send(&"hi".to_string(), 0, 1).unwrap();
        }
    });
}

/// A spent request has no result to give: `test_all` over a list holding one fails
/// with an error of class `Request` and leaves every request where it was, so the
/// others' results (here a cancelled receive's buffer and status) are not lost.
#[test]
fn test_all_over_a_spent_request_fails_and_keeps_the_others() {
    run_ranks(
        "test_all_over_a_spent_request_fails_and_keeps_the_others",
        1,
        |w| {
            let me = w.rank();
            let mut spent = w.irecv_into(vec![0u8; 2], me, 1).unwrap();
            w.send_slice(&[7u8, 8], me, 1).unwrap();
            poll_until("the first receive", || spent.test()).unwrap();
            let mut other = w.irecv_into(vec![3u8; 2], me, 2).unwrap();
            assert!(other.cancel().unwrap());
            let mut reqs = vec![spent, other];
            let e = shmpi::test_all(&mut reqs).unwrap_err();
            assert!(request_error(&e), "{e}");
            assert_eq!(reqs.len(), 2, "the list is left as it was");
            let (buf, st) = reqs.pop().unwrap().wait().unwrap();
            assert!(st.is_cancelled());
            assert_eq!(buf, [3, 3]);
        },
    );
}

// ---- persistent requests -------------------------------------------------------------

/// A persistent send and receive restarted many times carry one message per start, in
/// order (MPI's non-overtaking rule): every rank sends to the next and receives from
/// the previous (itself at N = 1), both started with `start_all`.
fn persistent_ring(w: &Communicator, rounds: usize, elems: usize) {
    let (me, n) = (w.rank(), w.size());
    let (next, prev) = ((me + 1) % n, (me + n - 1) % n);
    let send = w.send_init(vec![0u64; elems], next, 21).unwrap();
    let recv = w.recv_init(vec![0u64; elems], prev, 21).unwrap();
    let mut reqs = [recv, send];
    for i in 0..rounds as u64 {
        let out = reqs[1].buf_mut().unwrap();
        out[0] = i;
        out[elems - 1] = i * 1000 + me as u64;
        shmpi::start_all(&mut reqs).unwrap();
        let st = reqs[0].wait().unwrap();
        reqs[1].wait().unwrap();
        assert_eq!(
            (st.source(), st.tag(), st.count::<u64>()),
            (prev, 21, Some(elems))
        );
        let b = reqs[0].buf().unwrap();
        assert_eq!(
            (b[0], b[elems - 1]),
            (i, i * 1000 + prev as u64),
            "round {i}"
        );
    }
}

#[test]
fn a_persistent_request_restarted_1000_times_carries_1000_messages_in_order_at_1_rank() {
    run_ranks(
        "a_persistent_request_restarted_1000_times_carries_1000_messages_in_order_at_1_rank",
        1,
        |w| persistent_ring(w, 1000, 4),
    );
}

#[test]
fn a_persistent_request_restarted_1000_times_carries_1000_messages_in_order_at_2_ranks() {
    run_ranks(
        "a_persistent_request_restarted_1000_times_carries_1000_messages_in_order_at_2_ranks",
        2,
        |w| persistent_ring(w, 1000, 4),
    );
}

#[test]
fn a_persistent_request_restarted_1000_times_carries_1000_messages_in_order_at_3_ranks() {
    run_ranks(
        "a_persistent_request_restarted_1000_times_carries_1000_messages_in_order_at_3_ranks",
        3,
        |w| persistent_ring(w, 1000, 4),
    );
}

#[test]
fn a_persistent_request_restarted_1000_times_carries_1000_messages_in_order_at_8_ranks() {
    run_ranks(
        "a_persistent_request_restarted_1000_times_carries_1000_messages_in_order_at_8_ranks",
        8,
        |w| persistent_ring(w, 1000, 4),
    );
}

/// The same with messages larger than the ring (streamed in chunks).
#[test]
fn persistent_requests_carry_streamed_messages_at_4_ranks() {
    run_ranks(
        "persistent_requests_carry_streamed_messages_at_4_ranks",
        4,
        |w| persistent_ring(w, 20, 300_000),
    );
}

/// Starting an active persistent request is an error naming it, and nothing is lost:
/// exactly one message per completed start. `start_all` with one active request starts
/// none. The buffer is out of reach while active. Waiting on an inactive request
/// returns the empty status at once.
#[test]
fn starting_an_active_persistent_request_is_an_error_and_loses_nothing() {
    run_ranks(
        "starting_an_active_persistent_request_is_an_error_and_loses_nothing",
        2,
        |w| {
            if w.rank() == 0 {
                let mut s = w.send_init(vec![1u32, 2, 3], 1, 6).unwrap();
                let st = s.wait().unwrap();
                assert_eq!((st.source(), st.tag(), st.len()), (ANY_SOURCE, ANY_TAG, 0));
                s.start().unwrap();
                let e = s.start().unwrap_err();
                assert!(request_error(&e), "{e}");
                assert!(e.to_string().contains("send_init(dest=1, tag=6)"), "{e}");
                assert!(request_error(&s.buf_mut().unwrap_err()));
                s.wait().unwrap();
                assert_eq!(s.buf().unwrap(), [1, 2, 3]);
                w.barrier().unwrap();
                w.send_slice(&[90u32], 1, 9).unwrap();
                w.send_slice(&[8u32], 1, 8).unwrap();
                w.send_slice(&[9u32], 1, 9).unwrap();
                w.barrier().unwrap();
            } else {
                let mut r = w.recv_init(vec![0u32; 3], 0, 6).unwrap();
                r.start().unwrap();
                let e = r.start().unwrap_err();
                assert!(e.to_string().contains("recv_init(source=0, tag=6)"), "{e}");
                assert!(request_error(&r.buf().unwrap_err()));
                let mut twin = w.recv_init(vec![0u32; 3], 0, 77).unwrap();
                twin.start().unwrap();
                assert!(request_error(&twin.into_buf().unwrap_err()));
                let st = r.wait().unwrap();
                assert_eq!(st.count::<u32>(), Some(3));
                assert_eq!(r.buf().unwrap(), [1, 2, 3]);
                w.barrier().unwrap();
                assert!(w.iprobe(0, 6).unwrap().is_none(), "exactly one message");
                let mut reqs = [
                    w.recv_init(vec![0u32; 1], 0, 8).unwrap(),
                    w.recv_init(vec![0u32; 1], 0, 9).unwrap(),
                ];
                reqs[1].start().unwrap();
                let e = shmpi::start_all(&mut reqs).unwrap_err();
                assert!(e.to_string().contains("request 1"), "{e}");
                assert!(!reqs[0].is_active(), "start_all started none");
                reqs[1].wait().unwrap();
                assert_eq!(reqs[1].buf().unwrap(), [90]);
                shmpi::start_all(&mut reqs).unwrap();
                for (r, v) in reqs.iter_mut().zip([8, 9]) {
                    r.wait().unwrap();
                    assert_eq!(r.buf().unwrap(), [v]);
                }
                w.barrier().unwrap();
            }
        },
    );
}

/// A persistent receive can be cancelled while active (then started again), dropping
/// an active receive cancels it, and dropping an active send completes it in the
/// background; none of them loses or misdelivers a message.
#[test]
fn persistent_requests_cancel_and_drop_like_requests() {
    run_ranks(
        "persistent_requests_cancel_and_drop_like_requests",
        2,
        |w| {
            if w.rank() == 0 {
                let mut r = w.recv_init(vec![0u8; 4], 1, 1).unwrap();
                r.start().unwrap();
                assert!(r.cancel().unwrap());
                assert!(r.wait().unwrap().is_cancelled());
                assert!(!r.is_active());
                let mut dropped = w.recv_init(vec![0u8; 4], 1, 1).unwrap();
                dropped.start().unwrap();
                drop(dropped);
                w.barrier().unwrap(); // 1 sends two messages with tag 1
                r.start().unwrap();
                let st = r.wait().unwrap();
                assert!(!st.is_cancelled());
                assert_eq!(r.buf().unwrap(), [1; 4], "the first message, not lost");
                r.start().unwrap();
                r.wait().unwrap();
                assert_eq!(r.buf().unwrap(), [2; 4]);
                let (v, _) = w.recv_vec::<u8>(1, 2).unwrap();
                assert!(v.len() == 4 << 20 && v.iter().all(|&b| b == 5));
                let buf = r.into_buf().unwrap();
                assert_eq!(buf, [2; 4]);
            } else {
                w.barrier().unwrap();
                w.send_slice(&[1u8; 4], 0, 1).unwrap();
                w.send_slice(&[2u8; 4], 0, 1).unwrap();
                let mut s = w.send_init(vec![5u8; 4 << 20], 0, 2).unwrap();
                s.start().unwrap();
                assert!(!s.cancel().unwrap(), "sends are never cancelled");
                drop(s); // larger than the ring: finishes in the background
            }
        },
    );
}

/// A persistent operation that can complete as it starts does (a send whose message
/// goes whole into the ring, a receive whose message is already there), and stays
/// active until a wait or test completes it (MPI 4.1 §3.9): its buffer is out of reach,
/// `get_status` reports it without completing it, it cannot be cancelled, and
/// `wait_any_of` finds it. MPI's order holds: a receive posted or started earlier gets
/// the earlier message, also when the later persistent receive starts after both
/// messages arrived.
fn persistent_requests_complete_as_they_start(w: &Communicator) {
    let peer = 1 - w.rank();
    if w.rank() == 1 {
        w.send_slice(&[1u32, 1], 0, 5).unwrap();
        w.send_slice(&[2u32, 2], 0, 5).unwrap();
        w.barrier().unwrap(); // 1: both messages are in 0's ring
        w.barrier().unwrap(); // 2: 0 has posted a receive with tag 7
        w.send_slice(&[7u32, 7], 0, 7).unwrap();
        w.send_slice(&[8u32, 8], 0, 7).unwrap();
        w.barrier().unwrap(); // 3
        let (v, st) = w.recv_vec::<u32>(0, 9).unwrap();
        assert_eq!((v, st.source()), (vec![4, 4], 0));
        return;
    }
    w.barrier().unwrap(); // 1
    let early = w.irecv_into(vec![0u32; 2], peer, 5).unwrap();
    let mut p = w.recv_init(vec![0u32; 2], peer, 5).unwrap();
    p.start().unwrap();
    assert!(p.is_active(), "complete but active until waited on");
    assert!(request_error(&p.buf().unwrap_err()));
    let st = p.get_status().unwrap().expect("complete");
    assert_eq!(
        (st.source(), st.tag(), st.count::<u32>()),
        (peer, 5, Some(2))
    );
    assert!(!p.cancel().unwrap(), "a completed receive is not cancelled");
    assert_eq!(shmpi::wait_any_of(&mut [&mut p]).unwrap(), 0);
    assert_eq!(p.wait().unwrap(), st);
    assert!(!p.is_active());
    assert_eq!(
        p.buf().unwrap(),
        [2, 2],
        "the second message: the first is early's"
    );
    assert_eq!(early.wait().unwrap().0, [1, 1]);
    // A receive posted before the messages come keeps its place ahead of one started
    // after they are in the ring.
    let posted = w.irecv_into(vec![0u32; 2], peer, 7).unwrap();
    w.barrier().unwrap(); // 2
    w.barrier().unwrap(); // 3: 7 and 8 are in the ring
    let mut q = w.recv_init(vec![0u32; 2], peer, 7).unwrap();
    q.start().unwrap();
    q.wait().unwrap();
    assert_eq!(q.buf().unwrap(), [8, 8]);
    assert_eq!(posted.wait().unwrap().0, [7, 7]);
    let mut s = w.send_init(vec![4u32; 2], peer, 9).unwrap();
    s.start().unwrap();
    assert!(s.is_active());
    assert!(request_error(&s.buf_mut().unwrap_err()));
    let st = s.get_status().unwrap().expect("complete");
    assert_eq!((st.source(), st.tag(), st.len()), (ANY_SOURCE, ANY_TAG, 0));
    assert_eq!(shmpi::wait_any_of(&mut [&mut s]).unwrap(), 0);
    assert_eq!(s.test().unwrap(), Some(st));
    assert!(!s.is_active());
    assert_eq!(s.buf().unwrap(), [4, 4]);
}

#[test]
fn persistent_requests_complete_as_they_start_when_they_can() {
    run_ranks(
        "persistent_requests_complete_as_they_start_when_they_can",
        2,
        persistent_requests_complete_as_they_start,
    );
}

/// A persistent receive whose message is too long fails with `Truncated`, leaves the
/// message queued for the next receive and its buffer zeroed (as documented); one
/// dropped while a message larger than the ring is filling it lets go of its buffer at
/// once (the rest of that message is dropped as it arrives): memory allocated after
/// the drop is never written, and the next message from that peer arrives intact.
#[test]
fn a_persistent_receive_fails_cleanly_and_a_dropped_one_lets_go_of_its_buffer() {
    // Through the ring in chunks (no single-copy read of the sender's memory), so that
    // the receive is dropped half-filled.
    run_ranks_with_env(
        "a_persistent_receive_fails_cleanly_and_a_dropped_one_lets_go_of_its_buffer",
        2,
        &[("SHMPI_CMA", "0")],
        |w| {
            const BIG: usize = 64 << 20;
            if w.rank() == 1 {
                w.send_slice(&[7u32; 8], 0, 11).unwrap();
                let big = vec![3u8; BIG];
                w.barrier().unwrap(); // 0's receive is posted before the message comes
                w.send_slice(&big, 0, 3).unwrap();
                w.send_slice(&[9u64; 4], 0, 4).unwrap();
                return;
            }
            let mut r = w.recv_init(vec![5u32; 4], 1, 11).unwrap();
            r.start().unwrap();
            match r.wait() {
                Err(Error::Truncated { .. }) => {}
                other => panic!("a 32-byte message into 16 bytes: {other:?}"),
            }
            assert!(!r.is_active());
            assert_eq!(
                r.buf().unwrap(),
                [0; 4],
                "the buffer of a failed receive is zeroed"
            );
            assert_eq!(w.recv_vec::<u32>(1, 11).unwrap().0, [7; 8], "still queued");
            let mut big = w.recv_init(vec![0u8; BIG], 1, 3).unwrap();
            big.start().unwrap();
            w.barrier().unwrap();
            // Progress for a moment: the first chunks are in the buffer, most of the
            // message (64 times the ring) is still to come.
            let t = std::time::Instant::now();
            while t.elapsed() < std::time::Duration::from_millis(2) {
                if big.get_status().unwrap().is_some() {
                    break;
                }
            }
            drop(big);
            let fresh = vec![0xa5u8; BIG];
            let (tail, _) = w.recv_vec::<u64>(1, 4).unwrap();
            assert_eq!(tail, [9; 4]);
            assert!(
                fresh.iter().all(|&b| b == 0xa5),
                "memory allocated after the drop was written"
            );
        },
    );
}

/// Restarting a persistent request allocates nothing: its buffer travels into the
/// runtime and back. A ping-pong of 1000 round trips through two persistent requests
/// per rank, counted after a warm-up (the engine's queues reach their size).
#[test]
fn restarting_a_persistent_request_allocates_nothing() {
    run_ranks(
        "restarting_a_persistent_request_allocates_nothing",
        2,
        |w| {
            let peer = 1 - w.rank();
            let mut send = w.send_init(vec![0u64; 8], peer, 3).unwrap();
            let mut recv = w.recv_init(vec![0u64; 8], peer, 3).unwrap();
            let mut round = |i: u64| {
                if w.rank() == 0 {
                    send.buf_mut().unwrap()[0] = i;
                    send.start().unwrap();
                    send.wait().unwrap();
                    recv.start().unwrap();
                    recv.wait().unwrap();
                    assert_eq!(recv.buf().unwrap()[0], i + 1);
                } else {
                    recv.start().unwrap();
                    recv.wait().unwrap();
                    let v = recv.buf().unwrap()[0];
                    send.buf_mut().unwrap()[0] = v + 1;
                    send.start().unwrap();
                    send.wait().unwrap();
                }
            };
            for i in 0..100 {
                round(i);
            }
            let before = ALLOCS.load(Ordering::Relaxed);
            for i in 0..1000 {
                round(i);
            }
            let allocs = ALLOCS.load(Ordering::Relaxed) - before;
            // A message that arrives before its receive is started is queued (one
            // allocation, as for any receive); a ping-pong starts each receive first.
            assert!(allocs < 10, "{allocs} allocations in 1000 round trips");
        },
    );
}

/// MPI's rule for persistent requests on `PROC_NULL`: every start completes at once, a
/// receive with source `PROC_NULL`, tag `ANY_TAG`, count 0 and its buffer untouched. A
/// halo exchange along a non-periodic chain relies on it at both ends.
fn persistent_chain(w: &Communicator) {
    let (n, me) = (w.size(), w.rank());
    let left = if me == 0 { shmpi::PROC_NULL } else { me - 1 };
    let right = if me == n - 1 {
        shmpi::PROC_NULL
    } else {
        me + 1
    };
    let mut sends = vec![w.send_init(vec![0i32; 4], right, 3).unwrap()];
    let mut recvs = vec![w.recv_init(vec![-7i32; 4], left, 3).unwrap()];
    for round in 0..50 {
        sends[0].buf_mut().unwrap().fill(me * 1000 + round);
        shmpi::start_all(&mut recvs).unwrap();
        shmpi::start_all(&mut sends).unwrap();
        let st = recvs[0].wait().unwrap();
        sends[0].wait().unwrap();
        if left == shmpi::PROC_NULL {
            assert_eq!(
                (st.source(), st.tag(), st.len()),
                (shmpi::PROC_NULL, shmpi::ANY_TAG, 0)
            );
            assert_eq!(recvs[0].buf().unwrap(), [-7; 4], "untouched");
        } else {
            assert_eq!(st.source(), left);
            assert_eq!(recvs[0].buf().unwrap(), [left * 1000 + round; 4]);
        }
    }
}

#[test]
fn persistent_requests_on_proc_null_complete_at_once_at_1_rank() {
    run_ranks(
        "persistent_requests_on_proc_null_complete_at_once_at_1_rank",
        1,
        persistent_chain,
    );
}

#[test]
fn persistent_requests_on_proc_null_complete_at_once_at_4_ranks() {
    run_ranks(
        "persistent_requests_on_proc_null_complete_at_once_at_4_ranks",
        4,
        persistent_chain,
    );
}

// ---- requests that can never complete ---------------------------------------------

/// The error of a request that waits for ranks that left, naming one of `ranks`.
fn left_error<T: std::fmt::Debug>(r: shmpi::Result<T>, ranks: &[usize], what: &str) {
    match r {
        Err(Error::PeerFailed {
            rank, while_doing, ..
        }) if ranks.contains(&rank) => {
            assert!(while_doing.contains("tag="), "{what}: {while_doing}");
        }
        other => panic!("{what}: expected PeerFailed from one of {ranks:?}, got {other:?}"),
    }
}

/// MPI leaves a receive from a rank that finished without sending pending for ever;
/// shmpi's wait on it fails with `PeerFailed`, so a loop of tests on it must end the
/// same way rather than spin for ever unseen (the launcher's deadlock check sees only
/// ranks that block): `test`, `is_complete`, `get_status`, `test_any`, `test_some`,
/// `test_all` and the wait of a receive from `ANY_SOURCE` report the rank that left,
/// and what a rank sent before it left is still received.
#[test]
fn tests_of_requests_on_ranks_that_left_fail_instead_of_spinning() {
    run_ranks(
        "tests_of_requests_on_ranks_that_left_fail_instead_of_spinning",
        3,
        |w| {
            if w.rank() != 0 {
                w.send(&(w.rank() as u8), 0, 3).unwrap();
                return; // leaves the job, sending nothing more
            }
            for r in [1, 2] {
                let mut req = w.irecv::<u8>(r, 3).unwrap();
                let (v, st) = poll_until("the message sent before leaving", || req.test()).unwrap();
                assert_eq!((i32::from(v), st.source()), (r, r));
            }
            let mut req = w.irecv::<u8>(1, 5).unwrap();
            left_error(poll_until("test", || req.test()), &[1], "test");
            let mut req = w.irecv_into(vec![0u8; 4], ANY_SOURCE, 5).unwrap();
            left_error(
                poll_until("test, ANY_SOURCE", || req.test()),
                &[1, 2],
                "test, ANY_SOURCE",
            );
            cancels_untouched(req);
            let mut req = w.irecv::<u8>(2, 5).unwrap();
            let r = poll_until("is_complete", || req.is_complete().map(|d| d.then_some(())));
            left_error(r, &[2], "is_complete");
            let mut req = w.irecv::<u8>(2, 6).unwrap();
            left_error(
                poll_until("get_status", || req.get_status()),
                &[2],
                "get_status",
            );
            let mut reqs = vec![w.irecv::<u8>(1, 7).unwrap(), w.irecv::<u8>(2, 7).unwrap()];
            left_error(
                poll_until("test_any", || shmpi::test_any(&mut reqs)),
                &[1, 2],
                "test_any",
            );
            let r = poll_until("test_some", || {
                shmpi::test_some(&mut reqs).map(|done| (!done.is_empty()).then_some(done))
            });
            left_error(r, &[1, 2], "test_some");
            let r = poll_until("test_all", || shmpi::test_all(&mut reqs));
            left_error(r, &[1, 2], "test_all");
            assert_eq!(
                reqs.len(),
                2,
                "the failed tests left the requests as they were"
            );
            let mut req = w.issend(&1u8, 1, 9).unwrap();
            left_error(
                poll_until("test of issend", || req.test()),
                &[1],
                "test of issend",
            );
            let req = w.irecv::<u8>(ANY_SOURCE, 10).unwrap();
            left_error(req.wait(), &[1, 2], "wait, ANY_SOURCE");
            let mut reqs = vec![w.irecv::<u8>(ANY_SOURCE, 11).unwrap()];
            left_error(shmpi::wait_any(&mut reqs), &[1, 2], "wait_any, ANY_SOURCE");
        },
    );
}
