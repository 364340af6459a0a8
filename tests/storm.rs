//! A message storm: every rank sends thousands of messages of random sizes (0 B to
//! 4 MiB) and random tags to random peers, mixing blocking, non-blocking, synchronous
//! and persistent sends with specific and wildcard receives, matched probes, and
//! non-blocking receives behind a decoy receive that is cancelled. Every message is
//! checked for content, and the receive order is checked against MPI's rule (per
//! sender, the earliest matching message), so loss, duplication, corruption and
//! overtaking all fail the test.

mod common;

use std::collections::VecDeque;

use common::{Rng, run_ranks};
use shmpi::{ANY_SOURCE, ANY_TAG, Communicator};

const TAGS: u64 = 6;

#[derive(Clone, Copy, Debug)]
struct Msg {
    src: usize,
    idx: u64,
    tag: i32,
    len: usize,
}

/// Every rank computes the same plan: the messages each rank sends, in order.
fn plan(n: usize, per_rank: usize, seed: u64) -> Vec<Vec<(usize, Msg)>> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|src| {
            (0..per_rank as u64)
                .map(|idx| {
                    let dst = rng.below(n as u64) as usize;
                    let class = rng.below(100);
                    let len = match class {
                        0..=9 => 0,
                        10..=69 => rng.below(256) as usize,
                        70..=89 => rng.below(64 << 10) as usize,
                        90..=98 => rng.below(1 << 20) as usize,
                        _ => rng.below(4 << 20) as usize,
                    };
                    (
                        dst,
                        Msg {
                            src,
                            idx,
                            tag: rng.below(TAGS) as i32,
                            len,
                        },
                    )
                })
                .collect()
        })
        .collect()
}

fn content(m: &Msg) -> Vec<u8> {
    let mut r = Rng((m.src as u64) << 40 ^ m.idx ^ 0x9e37_79b9_7f4a_7c15);
    let mut v: Vec<u8> = (0..m.len).map(|_| r.next() as u8).collect();
    if m.len >= 12 {
        v[..8].copy_from_slice(&m.idx.to_le_bytes());
        v[8..12].copy_from_slice(&(m.src as u32).to_le_bytes());
    }
    v
}

fn storm(w: &Communicator, per_rank: usize, seed: u64) {
    let n = w.size() as usize;
    let me = w.rank() as usize;
    let plan = plan(n, per_rank, seed);
    let mine: Vec<Msg> = plan[me].iter().map(|&(_, m)| m).collect();
    let dests: Vec<usize> = plan[me].iter().map(|&(d, _)| d).collect();
    // What this rank will receive, per source, in send order.
    let mut expected: Vec<VecDeque<Msg>> = (0..n)
        .map(|s| {
            plan[s]
                .iter()
                .filter(|&&(d, _)| d == me)
                .map(|&(_, m)| m)
                .collect()
        })
        .collect();
    let total_in: usize = expected.iter().map(|q| q.len()).sum();
    let mut rng = Rng(seed ^ ((me as u64 + 1) * 0x1234_5678));
    let mut pending = Vec::new();
    // Synchronous sends complete only when received: waited for at the end, once this
    // rank has received everything (waiting earlier could deadlock two ranks that
    // each wait for the other's receive).
    let mut sync_pending = Vec::new();
    // Persistent sends, started once each and waited for like the other requests.
    let mut persistent = Vec::new();
    let mut received = 0;
    let mut next_send = 0;

    let check = |v: Vec<u8>,
                 src: i32,
                 tag: i32,
                 want_tag: Option<i32>,
                 expected: &mut Vec<VecDeque<Msg>>| {
        let q = &mut expected[src as usize];
        // The earliest unreceived message from `src` that this receive could match.
        let pos = q
            .iter()
            .position(|m| want_tag.is_none_or(|t| t == m.tag))
            .expect("a message nobody sent");
        let m = q.remove(pos).unwrap();
        assert_eq!(m.tag, tag, "tag of message {} from {src}", m.idx);
        assert_eq!(v.len(), m.len, "length of message {} from {src}", m.idx);
        assert!(
            v == content(&m),
            "content of message {} from {src} (len {})",
            m.idx,
            m.len
        );
    };

    while received < total_in || next_send < mine.len() {
        let act = rng.below(10);
        if next_send < mine.len() && (act < 5 || received == total_in) {
            let m = mine[next_send];
            let data = content(&m);
            let mode = rng.below(6);
            if mode < 2 {
                pending.push(w.isend_vec(data, dests[next_send] as i32, m.tag).unwrap());
            } else if mode == 2 {
                sync_pending.push(w.issend_vec(data, dests[next_send] as i32, m.tag).unwrap());
            } else if mode == 3 {
                let mut p = w.send_init(data, dests[next_send] as i32, m.tag).unwrap();
                p.start().unwrap();
                persistent.push(p);
            } else {
                w.send_slice(&data, dests[next_send] as i32, m.tag).unwrap();
            }
            next_send += 1;
            if pending.len() > 32 {
                shmpi::wait_all(std::mem::take(&mut pending)).unwrap();
            }
            if persistent.len() > 16 {
                for mut p in std::mem::take(&mut persistent) {
                    p.wait().unwrap();
                }
            }
            continue;
        }
        if received == total_in {
            continue;
        }
        // Receive: only block for what is known to exist, until all our sends are out
        // (a rank blocked in a receive cannot send what another rank waits for).
        let st = if next_send == mine.len() {
            w.probe(ANY_SOURCE, ANY_TAG).unwrap()
        } else {
            match w.iprobe(ANY_SOURCE, ANY_TAG).unwrap() {
                Some(st) => st,
                None => continue,
            }
        };
        let (src, tag) = match rng.below(4) {
            0 => (ANY_SOURCE, ANY_TAG),
            1 => (st.source(), ANY_TAG),
            2 => (ANY_SOURCE, st.tag()),
            _ => (st.source(), st.tag()),
        };
        let want_tag = (tag != ANY_TAG).then_some(tag);
        let how = rng.below(6);
        if how < 2 {
            let (v, got) = w.recv_vec::<u8>(src, tag).unwrap();
            check(v, got.source(), got.tag(), want_tag, &mut expected);
        } else if how == 2 {
            let (mut msg, got) = w.mprobe(src, tag).unwrap();
            let (v, st) = msg.recv_vec::<u8>().unwrap();
            assert_eq!(st, got);
            check(v, got.source(), got.tag(), want_tag, &mut expected);
        } else if how == 3 {
            // A non-blocking receive behind a decoy (a tag nobody sends) in the posted
            // queue, polled with test; the decoy is cancelled and must get nothing.
            let mut decoy = w
                .irecv_into(vec![0u8; 16], ANY_SOURCE, TAGS as i32)
                .unwrap();
            let mut r = w.irecv_into(vec![0u8; 4 << 20], src, tag).unwrap();
            let (mut buf, got) = loop {
                if let Some(done) = r.test().unwrap() {
                    break done;
                }
            };
            assert!(decoy.cancel().unwrap(), "a decoy receive matched a message");
            assert!(decoy.wait().unwrap().1.is_cancelled());
            buf.truncate(got.len());
            check(buf, got.source(), got.tag(), want_tag, &mut expected);
        } else {
            let mut buf = vec![0u8; 4 << 20];
            let got = w.recv_into(&mut buf, src, tag).unwrap();
            buf.truncate(got.len());
            check(buf, got.source(), got.tag(), want_tag, &mut expected);
        }
        received += 1;
    }
    shmpi::wait_all(pending).unwrap();
    shmpi::wait_all(sync_pending).unwrap();
    for mut p in persistent {
        p.wait().unwrap();
    }
    assert!(expected.iter().all(|q| q.is_empty()));
    assert_eq!(w.pending_messages(), 0, "no duplicates left over");
}

#[test]
fn storm_of_random_messages_at_4_ranks_arrives_intact_and_in_order() {
    run_ranks(
        "storm_of_random_messages_at_4_ranks_arrives_intact_and_in_order",
        4,
        |w| storm(w, 2000, 42),
    );
}

#[test]
fn storm_of_random_messages_at_8_ranks_oversubscribed_arrives_intact_and_in_order() {
    run_ranks(
        "storm_of_random_messages_at_8_ranks_oversubscribed_arrives_intact_and_in_order",
        8,
        |w| storm(w, 1000, 7),
    );
}

/// Every `SHMPI_*` knob at the edges of its documented range: small eager limits, the
/// smallest rings, chunk sizes at their bounds, no spin, no yield, fenced wakes,
/// streamed collectives, streamed ring chunks. The storm (and a broadcast and an allreduce, for the
/// collectives' knobs) must work under each, not only under the defaults.
#[test]
fn storm_arrives_intact_under_every_knob_at_the_edges_of_its_range() {
    let name = "storm_arrives_intact_under_every_knob_at_the_edges_of_its_range";
    let settings: &[&[(&str, &str)]] = &[
        &[("SHMPI_EAGER_BYTES", "0")],
        &[("SHMPI_EAGER_BYTES", "64")],
        &[("SHMPI_EAGER_BYTES", "1000000000")],
        &[("SHMPI_RING_BYTES", "4096")],
        &[
            ("SHMPI_RING_BYTES", "4096"),
            ("SHMPI_CHUNK_BYTES", "256"),
            ("SHMPI_CHUNK_MAX_BYTES", "256"),
            ("SHMPI_EAGER_BYTES", "0"),
        ],
        &[
            ("SHMPI_CHUNK_BYTES", "256"),
            ("SHMPI_CHUNK_MAX_BYTES", "256"),
        ],
        &[
            ("SHMPI_CHUNK_BYTES", "262144"),
            ("SHMPI_CHUNK_MAX_BYTES", "1073741824"),
        ],
        &[("SHMPI_SPIN_US", "0"), ("SHMPI_YIELD_US", "0")],
        &[("SHMPI_SPIN_US", "0"), ("SHMPI_MEMBARRIER", "0")],
        // Streamed slot writes, with the slots in use (large allreduces read their
        // peers directly where the system allows it).
        &[
            ("SHMPI_COLL_STREAM", "1"),
            ("SHMPI_COLL_NT_BYTES", "0"),
            ("SHMPI_CMA", "0"),
        ],
        // Every large chunk of a streamed message written with non-temporal stores,
        // and none.
        &[("SHMPI_RING_STREAM", "1"), ("SHMPI_CMA", "0")],
        &[("SHMPI_RING_STREAM", "0")],
    ];
    for (i, env) in settings.iter().enumerate() {
        let n = if i % 2 == 0 { 3 } else { 5 };
        common::run_ranks_with_env(name, n, env, |w| {
            storm(w, 300, 1000 + w.size() as u64);
            let mut big = vec![0u8; 1 << 20];
            if w.rank() == 0 {
                big.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
            }
            w.bcast_into(&mut big, 0).unwrap();
            assert!(big.iter().enumerate().all(|(i, &b)| b == i as u8));
            let xs: Vec<f64> = (0..100_000).map(|i| (i * (w.rank() + 1)) as f64).collect();
            let mut sum = vec![0.0; xs.len()];
            w.allreduce_into(&xs, &mut sum, shmpi::Op::Sum).unwrap();
            let k = (w.size() * (w.size() + 1) / 2) as f64;
            assert!(sum.iter().enumerate().all(|(i, &s)| s == i as f64 * k));
        });
        if common::is_child(name) {
            return; // a rank runs one setting: the one its launcher gave it
        }
    }
}
