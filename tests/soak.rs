//! Soak: 8 ranks (more than this machine's cores) exchange rounds of random messages
//! and random collectives for a bounded time (`SHMPI_SOAK_SECS`, default 8 s). Every message is checked, no
//! message is left over after any round, and memory stays flat.

mod common;

use common::{Rng, run_ranks};
use shmpi::Communicator;

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn payload(round: u64, src: usize, i: usize, len: usize) -> Vec<u8> {
    let mut r = Rng(round << 32 ^ (src as u64) << 16 ^ i as u64 ^ 0xdead_beef);
    (0..len).map(|_| r.next() as u8).collect()
}

fn soak(w: &Communicator) {
    let secs: f64 = std::env::var("SHMPI_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8.0);
    let n = w.size() as usize;
    let me = w.rank() as usize;
    let start = shmpi::wtime();
    let mut round = 0u64;
    let mut messages = 0u64;
    let mut rss_after_warmup = 0;
    loop {
        // Rank 0 decides whether to go on; everyone learns it before the round.
        let go = if me == 0 {
            // Everyone finished the last round (so rounds never overlap).
            if round > 0 {
                for r in 1..n {
                    w.recv::<u64>(r as i32, 2).unwrap();
                }
            }
            let go = shmpi::wtime() - start < secs;
            for r in 1..n {
                w.send(&go, r as i32, 1).unwrap();
            }
            go
        } else {
            w.recv::<bool>(0, 1).unwrap()
        };
        if !go {
            break;
        }
        // The round's plan, the same in every rank: who sends what to whom.
        let mut rng = Rng(round * 7919 + 1);
        let plan: Vec<(usize, usize, i32, usize)> = (0..n * 20)
            .map(|i| {
                let src = i % n;
                let dst = rng.below(n as u64) as usize;
                let len = match rng.below(10) {
                    0..=6 => rng.below(512) as usize,
                    7..=8 => rng.below(64 << 10) as usize,
                    _ => rng.below(1 << 20) as usize,
                };
                (src, dst, 100 + rng.below(4) as i32, len)
            })
            .collect();
        let mut reqs = Vec::new();
        for (i, &(src, dst, tag, len)) in plan.iter().enumerate() {
            if src == me {
                reqs.push(
                    w.isend_vec(payload(round, src, i, len), dst as i32, tag)
                        .unwrap(),
                );
            }
        }
        for (i, &(src, dst, tag, len)) in plan.iter().enumerate() {
            if dst == me {
                let (v, st) = w.recv_vec::<u8>(src as i32, tag).unwrap();
                assert_eq!(st.len(), len);
                assert!(
                    v == payload(round, src, i, len),
                    "round {round} message {i} from {src}"
                );
                messages += 1;
            }
        }
        shmpi::wait_all(reqs).unwrap();
        // And a random collective, checked against what every rank can compute alone.
        match rng.below(6) {
            0 => w.barrier().unwrap(),
            1 => {
                let root = rng.below(n as u64) as i32;
                let mut v = vec![0u64; rng.below(50_000) as usize];
                if me == root as usize {
                    v.iter_mut()
                        .enumerate()
                        .for_each(|(i, x)| *x = i as u64 ^ round);
                }
                w.bcast_into(&mut v, root).unwrap();
                assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 ^ round));
            }
            2 => {
                let len = rng.below(100_000) as usize;
                let mine: Vec<i64> = (0..len).map(|i| (i * (me + 1)) as i64).collect();
                let mut sum = vec![0i64; len];
                w.allreduce_into(&mine, &mut sum, shmpi::Op::Sum).unwrap();
                let k = (n * (n + 1) / 2) as i64;
                assert!(sum.iter().enumerate().all(|(i, &x)| x == i as i64 * k));
            }
            3 => {
                let all = w.allgather(&(me as u32, round)).unwrap();
                assert!(
                    all.iter()
                        .enumerate()
                        .all(|(r, &(x, rd))| x == r as u32 && rd == round)
                );
            }
            4 => {
                let out: Vec<String> = (0..n).map(|d| format!("{me}->{d}")).collect();
                let got = w.alltoall(&out).unwrap();
                assert!(
                    got.iter()
                        .enumerate()
                        .all(|(s, x)| *x == format!("{s}->{me}"))
                );
            }
            _ => {
                let total = w.allreduce(&(me as u64), |a, b| a + b).unwrap();
                assert_eq!(total, (n * (n - 1) / 2) as u64);
            }
        }
        // Nothing of this round is left over (the next round's go-ahead may be queued).
        for tag in 100..104 {
            assert!(
                w.iprobe(shmpi::ANY_SOURCE, tag).unwrap().is_none(),
                "left over after round {round}"
            );
        }
        // Only "round done" notes (rank 0) may be queued: the queue does not grow.
        let allowed = if me == 0 { n - 1 } else { 0 };
        assert!(
            w.pending_messages() <= allowed,
            "left over after round {round}"
        );
        if me != 0 {
            w.send(&round, 0, 2).unwrap();
        }
        round += 1;
        if round == 20 {
            rss_after_warmup = rss_kib();
        }
    }
    assert_eq!(w.pending_messages(), 0);
    let rss_end = rss_kib();
    eprintln!(
        "rank {me}: {round} rounds, {messages} messages received, RSS {rss_after_warmup} -> {rss_end} KiB"
    );
    if rss_after_warmup > 0 {
        assert!(
            rss_end < rss_after_warmup + 64 * 1024,
            "memory grew from {rss_after_warmup} to {rss_end} KiB"
        );
    }
}

#[test]
fn soak_8_oversubscribed_ranks_lose_nothing_and_stay_flat() {
    run_ranks(
        "soak_8_oversubscribed_ranks_lose_nothing_and_stay_flat",
        8,
        soak,
    );
}
