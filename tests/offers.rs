//! Large non-blocking sends, which the receiver copies straight from the sender's
//! buffer where the system allows it (`SHMPI_CMA`, on by default): MPI's rules for
//! them are those of every other message, whichever receive takes them.

mod common;

use std::time::Duration;

use common::run_ranks_with_env;
use shmpi::{ANY_SOURCE, Communicator, Error, Request, wait_all};

/// Elements of a large message: 200 KiB, above the size from which sends are offered.
const BIG: usize = 25_600;

/// The `k`-th large message of rank `r`: every element says who sent it and which.
fn big(r: i32, k: u64) -> Vec<u64> {
    (0..BIG as u64)
        .map(|i| (r as u64) << 48 | k << 32 | i)
        .collect()
}

/// Rank 1 sends rank 0 nine large messages and a small one after each, all with tag 7
/// and by non-blocking sends it waits for only at the end; rank 0 takes them with a
/// different receive each, in the order they were sent (non-overtaking), at moments
/// that make the message arrive before the receive, after it, or while it blocks.
fn every_receive(w: &Communicator) {
    const T: i32 = 7;
    if w.rank() == 1 {
        let mut reqs: Vec<Request<Vec<u64>>> = Vec::new();
        for k in 0..9 {
            if k == 2 {
                // Rank 0 is blocked in its receive by now: the message meets it.
                std::thread::sleep(Duration::from_millis(30));
            }
            reqs.push(w.isend_vec(big(1, k), 0, T).unwrap());
            reqs.push(w.isend_vec(vec![k, 1], 0, T).unwrap());
            if k == 0 {
                w.barrier().unwrap();
            }
        }
        let back = wait_all(reqs).unwrap();
        assert_eq!(back[0], big(1, 0), "a sent buffer comes back unchanged");
        w.barrier().unwrap();
        return;
    }
    if w.rank() != 0 {
        w.barrier().unwrap();
        w.barrier().unwrap();
        return;
    }
    let small = |k: u64| {
        let (v, st) = w.recv_vec::<u64>(1, T).unwrap();
        assert_eq!(
            (v, st.len()),
            (vec![k, 1], 16),
            "small message {k} in order"
        );
    };
    // 0: a receive posted before the message.
    let r = w.irecv_into(vec![0u64; BIG], 1, T).unwrap();
    w.barrier().unwrap();
    let (v, st) = r.wait().unwrap();
    assert_eq!((v, st.len()), (big(1, 0), BIG * 8));
    small(0);
    // 1: a blocking receive of a message that is already queued.
    let st = w.probe(1, T).unwrap();
    assert_eq!(st.count::<u64>(), Some(BIG));
    let mut buf = vec![0u64; BIG];
    assert_eq!(w.recv_into(&mut buf, 1, T).unwrap().len(), BIG * 8);
    assert_eq!(buf, big(1, 1));
    small(1);
    // 2: a blocking receive that waits for the message (sent 30 ms later).
    let mut buf = vec![0u64; BIG + 5];
    let st = w.recv_into(&mut buf, ANY_SOURCE, T).unwrap();
    assert_eq!((st.source(), st.count::<u64>()), (1, Some(BIG)));
    assert_eq!(buf[..BIG], big(1, 2)[..]);
    small(2);
    // 3: too short a buffer fails and leaves the message queued for the next receive.
    w.probe(1, T).unwrap();
    let mut short = vec![0u64; BIG - 1];
    assert!(matches!(
        w.recv_into(&mut short, 1, T),
        Err(Error::Truncated { .. })
    ));
    assert_eq!(w.recv_vec::<u64>(1, T).unwrap().0, big(1, 3));
    small(3);
    // 4: a matched probe, then the message's receive.
    let (mut m, st) = w.mprobe(1, T).unwrap();
    assert_eq!(st.len(), BIG * 8);
    assert_eq!(m.recv_vec::<u64>().unwrap().0, big(1, 4));
    small(4);
    // 5: a receive posted after the message is queued.
    w.probe(1, T).unwrap();
    let (v, _) = w.irecv_into(vec![0u64; BIG], 1, T).unwrap().wait().unwrap();
    assert_eq!(v, big(1, 5));
    small(5);
    // 6 and 7: a wrong element size fails and leaves the message for the next receive;
    // its small successor cannot overtake it.
    w.probe(1, T).unwrap();
    let mut odd = vec![[0u8; 3]; BIG * 8 / 3 + 1];
    assert!(matches!(
        w.recv_into(&mut odd, 1, T),
        Err(Error::ElementSize { .. })
    ));
    assert_eq!(w.recv_vec::<u64>(1, T).unwrap().0, big(1, 6));
    small(6);
    assert_eq!(w.recv_vec::<u64>(ANY_SOURCE, T).unwrap().0, big(1, 7));
    small(7);
    // 8: a receive of bytes: the same message, seen as bytes.
    let (v, _) = w.recv_vec::<u8>(1, T).unwrap();
    assert_eq!(v, bytemuck::cast_slice::<u64, u8>(&big(1, 8)));
    small(8);
    w.barrier().unwrap();
}

#[test]
fn large_nonblocking_sends_reach_every_kind_of_receive_in_order() {
    run_ranks_with_env(
        "large_nonblocking_sends_reach_every_kind_of_receive_in_order",
        3,
        &[],
        every_receive,
    );
}

#[test]
fn large_nonblocking_sends_reach_every_kind_of_receive_in_order_through_the_ring() {
    run_ranks_with_env(
        "large_nonblocking_sends_reach_every_kind_of_receive_in_order_through_the_ring",
        3,
        &[("SHMPI_CMA", "0")],
        every_receive,
    );
}

/// Every rank sends its successor a large message and waits for the send before it
/// posts its receive, then does the same across a barrier: MPI allows such a program
/// to deadlock, shmpi's eager sends never did, and offered sends must not either.
#[test]
fn sends_waited_for_before_their_receive_is_posted_complete() {
    run_ranks_with_env(
        "sends_waited_for_before_their_receive_is_posted_complete",
        5,
        &[],
        |w| {
            let (me, n) = (w.rank(), w.size());
            let (next, prev) = ((me + 1) % n, (me + n - 1) % n);
            for round in 0..3u64 {
                let back = w
                    .isend_vec(big(me, round), next, 1)
                    .unwrap()
                    .wait()
                    .unwrap();
                assert_eq!(back, big(me, round));
                assert_eq!(w.recv_vec::<u64>(prev, 1).unwrap().0, big(prev, round));
            }
            // The receiver is inside a collective while the sender waits.
            if me == 0 {
                w.isend_vec(big(0, 9), 1, 2).unwrap().wait().unwrap();
                w.barrier().unwrap();
            } else {
                w.barrier().unwrap();
            }
            if me == 1 {
                assert_eq!(w.recv_vec::<u64>(0, 2).unwrap().0, big(0, 9));
            }
        },
    );
}

/// A large send nobody receives, its request dropped: both ranks still finish.
#[test]
fn an_unreceived_large_send_does_not_hold_up_the_end() {
    run_ranks_with_env(
        "an_unreceived_large_send_does_not_hold_up_the_end",
        2,
        &[],
        |w| {
            if w.rank() == 0 {
                drop(w.isend_vec(big(0, 0), 1, 3).unwrap());
            }
            w.barrier().unwrap();
        },
    );
}

/// A sender that exits before its offered message is read: the receive fails with
/// `PeerFailed` naming it and what was being received, at once, and the receiver goes
/// on.
#[test]
fn a_sender_gone_before_its_message_is_read_is_an_error_not_a_hang() {
    const NAME: &str = "a_sender_gone_before_its_message_is_read_is_an_error_not_a_hang";
    if common::is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        if w.rank() == 1 {
            // The small message first: rank 0's receive of it leaves the offer in the
            // ring, so rank 0 cannot copy it while blocked (its idle step would).
            w.send(&1u8, 0, 6).unwrap();
            std::mem::forget(w.isend_vec(big(1, 0), 0, 5).unwrap());
            // Leaves without finalizing: its memory, and the offered bytes, are gone.
            std::process::exit(0);
        }
        assert_eq!(w.recv::<u8>(1, 6).unwrap(), 1);
        std::thread::sleep(Duration::from_millis(200));
        let r = w.recv_vec::<u64>(1, 5);
        if std::env::var("OFFERS").is_ok_and(|v| v == "0") {
            // Ranks may not read each other's memory here: the bytes were in the ring.
            assert_eq!(r.unwrap().0, big(1, 0));
        } else {
            let e = r.unwrap_err();
            assert!(matches!(e, shmpi::Error::PeerFailed { rank: 1, .. }), "{e}");
            assert!(e.to_string().contains("straight from its buffer"), "{e}");
        }
        return;
    }
    let offers = offers_allowed();
    let out = common::launch_self_env(NAME, 2, &[], &[("OFFERS", if offers { "1" } else { "0" })]);
    common::assert_success(&out, NAME);
}

/// Whether this system lets ranks read each other's memory, so that large sends are
/// offered: the launcher's own test (`sys::cma::usable`), as far as it can be made from
/// here, Yama's ptrace scope (a seccomp filter refusing the call would show as a
/// failure).
fn offers_allowed() -> bool {
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .map_or(0, |s| s.trim().parse::<u32>().unwrap_or(0));
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    scope <= 1 || (scope == 2 && root)
}

/// The bytes of message `k` from rank `r`, `len` of them: no two alike.
fn bytes_of(r: i32, k: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (r as usize * 7 + k * 13) ^ (i >> 9)) as u8)
        .collect()
}

/// Every rank but 0 sends rank 0 large messages by non-blocking sends and waits for
/// them, rank 0 takes each with another kind of receive (posted before, blocking into
/// a slice at an odd offset, into a new vector, after a probe) and checks every byte:
/// a split copy, the
/// sender writing the rest into the receiver's buffer while the receiver reads the
/// front, must land every byte where a whole read would. Rounds go on until the
/// senders have copied the rest of at least one message (a sender that waits, polling,
/// sees the receiver's proposal within microseconds; a bound of 40 rounds).
fn split_copies(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    // Odd lengths, from just above the split's threshold to a few MiB.
    let lens = [131_073usize, 400_003, 1_048_576 + 7, 3 << 20, 2_000_001];
    until_split(w, |round| {
        if me != 0 {
            let reqs: Vec<_> = (0..lens.len())
                .map(|k| {
                    w.isend_vec(bytes_of(me, round * 8 + k, lens[k]), 0, 9)
                        .unwrap()
                })
                .collect();
            for (k, back) in wait_all(reqs).unwrap().into_iter().enumerate() {
                assert_eq!(
                    back,
                    bytes_of(me, round * 8 + k, lens[k]),
                    "a sent buffer unchanged"
                );
            }
        } else {
            for src in 1..n {
                // Posted before the message.
                let r = w.irecv_into(vec![0u8; lens[0] + 64], src, 9).unwrap();
                let (buf, st) = r.wait().unwrap();
                assert_eq!(st.len(), lens[0]);
                assert!(
                    buf[..lens[0]] == bytes_of(src, round * 8, lens[0]),
                    "posted receive"
                );
                // Blocking, into a slice that starts 3 bytes into its allocation.
                let mut buf = vec![0u8; lens[1] + 3];
                w.recv_into(&mut buf[3..], src, 9).unwrap();
                assert!(
                    buf[3..] == bytes_of(src, round * 8 + 1, lens[1]),
                    "blocking receive"
                );
                // Into a new vector.
                let (v, _) = w.recv_vec::<u8>(src, 9).unwrap();
                assert!(v == bytes_of(src, round * 8 + 2, lens[2]), "vector receive");
                // After a probe (queued), then the rest.
                for (k, &len) in lens.iter().enumerate().skip(3) {
                    assert_eq!(w.probe(src, 9).unwrap().len(), len);
                    let mut buf = vec![0u8; len + 1];
                    w.recv_into(&mut buf[1..], src, 9).unwrap();
                    assert!(buf[1..] == bytes_of(src, round * 8 + k, len), "message {k}");
                }
            }
        }
    });
}

/// Runs `round` (given its number) until a sender has copied the rest of at least one
/// split message, at most 40 times; failing then unless offers are off (`OFFERS=0`).
fn until_split(w: &Communicator, mut round: impl FnMut(usize)) {
    for r in 0..40usize {
        round(r);
        let copied = w
            .allreduce(&shmpi::split_rests_copied(), |a, b| a + b)
            .unwrap();
        if copied > 0 {
            return;
        }
    }
    assert!(
        std::env::var("OFFERS").is_ok_and(|v| v == "0"),
        "in 40 rounds no sender copied the rest of one of its messages"
    );
}

/// The environment of the split tests: whether offers are allowed here (`OFFERS`), and
/// senders that yield for as long as they wait, so that they poll when a proposal
/// comes: with `cargo test`'s debug assertions the receiver's checks of a round's bytes
/// outlast the 2 ms a waiting rank yields before it sleeps, and a sender asleep takes
/// its half only once woken, later than the receiver (failed in 14 of 15 runs before,
/// with the default backoff). `a_sender_asleep_in_its_wait_is_woken_to_copy_the_rest`
/// tests the wake.
fn split_env() -> [(&'static str, &'static str); 2] {
    let offers = if offers_allowed() { "1" } else { "0" };
    [("OFFERS", offers), ("SHMPI_YIELD_US", "60000000")]
}

fn run_split_copies(name: &str, n: usize) {
    let env = split_env();
    run_ranks_with_env(name, n, &env, split_copies);
}

#[test]
fn a_waiting_sender_copies_the_rest_of_its_large_message_at_2_ranks() {
    run_split_copies(
        "a_waiting_sender_copies_the_rest_of_its_large_message_at_2_ranks",
        2,
    );
}

#[test]
fn a_waiting_sender_copies_the_rest_of_its_large_message_at_4_ranks() {
    run_split_copies(
        "a_waiting_sender_copies_the_rest_of_its_large_message_at_4_ranks",
        4,
    );
}

/// A sender that computes, making no shmpi call, while its large messages are
/// received: the receiver reads them whole instead of waiting for it. Rank 1 spins on
/// a shared window's flag, which rank 0 raises once it has received everything, so
/// the test fails (by its watchdog) if a receive waited for the sender.
#[test]
fn a_computing_sender_is_not_waited_for() {
    run_ranks_with_env("a_computing_sender_is_not_waited_for", 2, &[], |w| {
        let win = shmpi::Window::allocate_shared(w, 8).unwrap();
        let flag = win.atomic_u64(0, 0).unwrap();
        let lens = [1usize << 20, 3 << 20, 200_001];
        if w.rank() == 1 {
            let reqs: Vec<_> = (0..lens.len())
                .map(|k| w.isend_vec(bytes_of(1, k, lens[k]), 0, 4).unwrap())
                .collect();
            let before = shmpi::split_rests_copied();
            while flag.load(std::sync::atomic::Ordering::Acquire) == 0 {
                std::hint::spin_loop();
            }
            assert_eq!(
                shmpi::split_rests_copied(),
                before,
                "no shmpi call, no copy"
            );
            wait_all(reqs).unwrap();
        } else {
            for (k, &len) in lens.iter().enumerate() {
                let mut buf = vec![0u8; len];
                w.recv_into(&mut buf, 1, 4).unwrap();
                assert!(buf == bytes_of(1, k, len), "message {k}");
            }
            flag.store(1, std::sync::atomic::Ordering::Release);
        }
        w.barrier().unwrap();
    });
}

/// `SHMPI_SPLIT_BYTES` above every message: the receiver reads every offer whole, and no
/// sender copies anything, however long it waits.
#[test]
fn split_bytes_above_every_message_leaves_the_copy_to_the_receiver() {
    run_ranks_with_env(
        "split_bytes_above_every_message_leaves_the_copy_to_the_receiver",
        2,
        &[("SHMPI_SPLIT_BYTES", "1000000000")],
        |w| {
            let lens = [1usize << 20, 3 << 20];
            for round in 0..5 {
                if w.rank() == 1 {
                    let reqs: Vec<_> = (0..lens.len())
                        .map(|k| {
                            w.isend_vec(bytes_of(1, round * 2 + k, lens[k]), 0, 8)
                                .unwrap()
                        })
                        .collect();
                    wait_all(reqs).unwrap();
                } else {
                    for (k, &len) in lens.iter().enumerate() {
                        let mut buf = vec![0u8; len];
                        w.recv_into(&mut buf, 1, 8).unwrap();
                        assert!(buf == bytes_of(1, round * 2 + k, len), "message {k}");
                    }
                }
            }
            let copied = w
                .allreduce(&shmpi::split_rests_copied(), |a, b| a + b)
                .unwrap();
            assert_eq!(copied, 0);
        },
    );
}

/// A sender that waits for its large offered send long enough to fall asleep (past the
/// 2 ms it yields) is woken by the receiver's proposal and copies the rest of the
/// message: rank 0 sleeps 20 ms before it receives each 4 MiB message, and the
/// sender copies at least one rest within 10 rounds. Every byte is checked.
fn late_receives(w: &Communicator) {
    let me = w.rank();
    let len = (4 << 20) + 5;
    for round in 0..10usize {
        if me != 0 {
            let back = w.isend_vec(bytes_of(me, round, len), 0, 4).unwrap().wait();
            assert_eq!(
                back.unwrap(),
                bytes_of(me, round, len),
                "a sent buffer unchanged"
            );
        } else {
            std::thread::sleep(Duration::from_millis(20));
            for src in 1..w.size() {
                let mut buf = vec![0u8; len];
                w.recv_into(&mut buf, src, 4).unwrap();
                assert!(buf == bytes_of(src, round, len), "message of round {round}");
            }
        }
        let copied = w
            .allreduce(&shmpi::split_rests_copied(), |a, b| a + b)
            .unwrap();
        if copied > 0 {
            return;
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        std::env::var("OFFERS").is_ok_and(|v| v == "0") || cores < 2,
        "in 10 rounds no sleeping sender was woken to copy the rest of its message"
    );
}

#[test]
fn a_sender_asleep_in_its_wait_is_woken_to_copy_the_rest() {
    const NAME: &str = "a_sender_asleep_in_its_wait_is_woken_to_copy_the_rest";
    if common::is_child(NAME) {
        let universe = shmpi::init().expect("init under shmrun");
        late_receives(&universe.world());
        return;
    }
    let offers = if offers_allowed() { "1" } else { "0" };
    // The woken sender copies only while the receiver reads: a core each (two ranks
    // left to the scheduler sometimes share one for a whole run).
    let out = common::launch_self_env(NAME, 2, &["--bind-to", "core"], &[("OFFERS", offers)]);
    common::assert_success(&out, NAME);
}

/// Receives into one buffer of cells (`Scope::irecv_cells`) of large messages from a
/// sender that waits: a message split between the two ranks (the sender writing the
/// rest while the receiver reads the front) lands whole, and with one sender the buffer
/// ends holding its last message. Rounds go on until a sender has copied the rest of at
/// least one message (a bound of 40, as in `split_copies`).
#[test]
fn large_messages_into_one_buffer_of_cells() {
    use std::cell::Cell;
    run_ranks_with_env(
        "large_messages_into_one_buffer_of_cells",
        2,
        &split_env(),
        |w| {
            const LEN: usize = 1_048_576 + 5;
            const WINDOW: usize = 4;
            until_split(w, |round| {
                if w.rank() == 1 {
                    let msgs: Vec<Vec<u8>> = (0..WINDOW)
                        .map(|k| bytes_of(1, round * 8 + k, LEN))
                        .collect();
                    w.scope(|s| {
                        let reqs = msgs
                            .iter()
                            .map(|m| s.isend_slice(m, 0, 3))
                            .collect::<shmpi::Result<Vec<_>>>()?;
                        s.wait_all(reqs).map(drop)
                    })
                    .unwrap();
                } else {
                    let mut buf = vec![0u8; LEN + 3];
                    let cells = Cell::from_mut(&mut buf[..]).as_slice_of_cells();
                    w.scope(|s| {
                        let reqs = (0..WINDOW)
                            .map(|_| s.irecv_cells(cells, 1, 3))
                            .collect::<shmpi::Result<Vec<_>>>()?;
                        for (_, st) in s.wait_all(reqs)? {
                            assert_eq!(st.len(), LEN);
                        }
                        Ok(())
                    })
                    .unwrap();
                    assert!(
                        buf[..LEN] == bytes_of(1, round * 8 + WINDOW - 1, LEN),
                        "round {round}: the buffer does not hold the last message whole"
                    );
                    assert_eq!(buf[LEN..], [0; 3], "written past the message");
                }
            });
        },
    );
}

/// Two-way traffic of messages that stream through the ring (1 MiB and more, sent
/// while a receive from the destination is posted, so they go through the ring and not
/// as offers): every message lands whole and in order, whether the receive was posted
/// before it, is posted after it, or blocks, and each rank's sends complete while it
/// waits on its own receives.
#[test]
fn two_way_streams_while_receives_are_posted_arrive_whole() {
    run_ranks_with_env(
        "two_way_streams_while_receives_are_posted_arrive_whole",
        2,
        &[],
        |w| {
            let peer = 1 - w.rank();
            let lens = [1usize << 20, (1 << 20) + 3, 3 << 20, 2_000_001];
            for round in 0..3usize {
                let rreqs: Vec<_> = lens[..2]
                    .iter()
                    .map(|&l| w.irecv_into(vec![0u8; l + 64], peer, 5).unwrap())
                    .collect();
                let sreqs: Vec<_> = (0..lens.len())
                    .map(|k| {
                        w.isend_vec(bytes_of(w.rank(), round * 8 + k, lens[k]), peer, 5)
                            .unwrap()
                    })
                    .collect();
                for (k, (buf, st)) in wait_all(rreqs).unwrap().into_iter().enumerate() {
                    assert_eq!(st.len(), lens[k]);
                    assert!(
                        buf[..lens[k]] == bytes_of(peer, round * 8 + k, lens[k]),
                        "round {round}, message {k}"
                    );
                }
                let mut third = vec![0u8; lens[2]];
                w.recv_into(&mut third, peer, 5).unwrap();
                assert!(third == bytes_of(peer, round * 8 + 2, lens[2]), "blocking");
                let (v, _) = w.recv_vec::<u8>(peer, 5).unwrap();
                assert!(
                    v == bytes_of(peer, round * 8 + 3, lens[3]),
                    "into a new vector"
                );
                for (k, back) in wait_all(sreqs).unwrap().into_iter().enumerate() {
                    assert!(
                        back == bytes_of(w.rank(), round * 8 + k, lens[k]),
                        "sent buffer"
                    );
                }
            }
        },
    );
}
