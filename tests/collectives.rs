//! Collectives and communicators through the real launcher, checked against serial
//! references computed by every rank from every rank's (pseudo-random, seeded) input.
//!
//! Integer results must be exact; `f64` sums within a relative 1e-12 (the reduction
//! order is the rank order, the reference sums in the same order, so they are in fact
//! equal, but the tolerance documents what is promised).

mod common;

use common::run_ranks;
use shmpi::{Communicator, DoubleInt, Error, Op};

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed every rank agrees on: rank 0's clock, broadcast (and printed).
fn seed(w: &Communicator) -> u64 {
    let mut s = [0u64];
    if w.rank() == 0 {
        s[0] = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        eprintln!("seed {}", s[0]);
    }
    w.bcast_into(&mut s, 0).unwrap();
    s[0]
}

/// Input element `i` of rank `r` for case `case`.
fn val(seed: u64, case: u64, r: usize, i: usize) -> u64 {
    mix(seed ^ mix(case) ^ mix((r as u64) << 40 | i as u64))
}

fn ints(seed: u64, case: u64, r: usize, n: usize) -> Vec<i64> {
    (0..n)
        .map(|i| (val(seed, case, r, i) % 2001) as i64 - 1000)
        .collect()
}

fn floats(seed: u64, case: u64, r: usize, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| (val(seed, case, r, i) % 1_000_000) as f64 / 1000.0 - 500.0)
        .collect()
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-12 * (1.0 + y.abs()))
}

/// 2x2 matrix product mod 2^64: associative, not commutative (checks rank order).
fn matmul(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    let m = |x: u64, y: u64| x.wrapping_mul(y);
    [
        m(a[0], b[0]).wrapping_add(m(a[1], b[2])),
        m(a[0], b[1]).wrapping_add(m(a[1], b[3])),
        m(a[2], b[0]).wrapping_add(m(a[3], b[2])),
        m(a[2], b[1]).wrapping_add(m(a[3], b[3])),
    ]
}

/// Every slice and object collective, every root, sizes from 0 elements to several
/// MiB, against serial references.
fn check_everything(w: &Communicator) {
    let n = w.size() as usize;
    let me = w.rank() as usize;
    let s = seed(w);
    let big = if n <= 8 { 600_000 } else { 200_000 }; // 4.8 / 1.6 MB of f64 or i64
    let sizes = [0usize, 1, 3, 5, 6, 100, 1000, 20_000, big];
    let gsizes = [0usize, 1, 5, 700, 20_000]; // per-rank blocks of gather-like calls
    let mut case = 0u64;
    let all_roots = |size: usize| -> Vec<usize> {
        if size >= big && n > 4 {
            vec![0, n - 1]
        } else {
            (0..n).collect()
        }
    };

    w.barrier().unwrap();
    w.barrier().unwrap();

    // bcast_into: every root, every size.
    for &len in &sizes {
        for root in all_roots(len) {
            case += 1;
            let want = ints(s, case, root, len);
            let mut buf = if me == root {
                want.clone()
            } else {
                vec![0; len]
            };
            w.bcast_into(&mut buf, root as i32).unwrap();
            assert_eq!(buf, want, "bcast_into len {len} root {root}");
        }
    }

    // scatter_into / gather_into: every root.
    for &cnt in &gsizes {
        for root in 0..n {
            case += 1;
            let all: Vec<i64> = ints(s, case, root, n * cnt);
            let send = if me == root { all.clone() } else { vec![] };
            let mut got = vec![0i64; cnt];
            w.scatter_into(&send, &mut got, root as i32).unwrap();
            assert_eq!(
                got,
                all[me * cnt..(me + 1) * cnt],
                "scatter_into cnt {cnt} root {root}"
            );

            case += 1;
            let mine = ints(s, case, me, cnt);
            let mut recv = if me == root {
                vec![0i64; n * cnt]
            } else {
                vec![]
            };
            w.gather_into(&mine, &mut recv, root as i32).unwrap();
            if me == root {
                let want: Vec<i64> = (0..n).flat_map(|r| ints(s, case, r, cnt)).collect();
                assert_eq!(recv, want, "gather_into cnt {cnt} root {root}");
            }
        }
    }

    // allgather_into, alltoall_into, reduce_scatter_block_into.
    for &cnt in &gsizes {
        case += 1;
        let mine = ints(s, case, me, cnt);
        let mut recv = vec![0i64; n * cnt];
        w.allgather_into(&mine, &mut recv).unwrap();
        let want: Vec<i64> = (0..n).flat_map(|r| ints(s, case, r, cnt)).collect();
        assert_eq!(recv, want, "allgather_into cnt {cnt}");

        case += 1;
        let mine = ints(s, case, me, n * cnt);
        let mut recv = vec![0i64; n * cnt];
        w.alltoall_into(&mine, &mut recv).unwrap();
        let want: Vec<i64> = (0..n)
            .flat_map(|r| ints(s, case, r, n * cnt)[me * cnt..(me + 1) * cnt].to_vec())
            .collect();
        assert_eq!(recv, want, "alltoall_into cnt {cnt}");

        case += 1;
        let mine = ints(s, case, me, n * cnt);
        let mut recv = vec![0i64; cnt];
        w.reduce_scatter_block_into(&mine, &mut recv, Op::Sum)
            .unwrap();
        let mut want = vec![0i64; cnt];
        for r in 0..n {
            for (k, x) in ints(s, case, r, n * cnt)[me * cnt..(me + 1) * cnt]
                .iter()
                .enumerate()
            {
                want[k] += x;
            }
        }
        assert_eq!(recv, want, "reduce_scatter_block_into cnt {cnt}");
    }

    // allreduce_into / reduce_into / in place: built-in ops, closures, floats.
    for &len in &sizes {
        case += 1;
        let mine = ints(s, case, me, len);
        let all: Vec<Vec<i64>> = (0..n).map(|r| ints(s, case, r, len)).collect();
        let fold = |f: &dyn Fn(i64, i64) -> i64| -> Vec<i64> {
            (0..len)
                .map(|i| (1..n).fold(all[0][i], |a, r| f(a, all[r][i])))
                .collect()
        };
        let mut recv = vec![0i64; len];
        w.allreduce_into(&mine, &mut recv, Op::Sum).unwrap();
        assert_eq!(recv, fold(&|a, b| a + b), "allreduce Sum len {len}");
        w.allreduce_into(&mine, &mut recv, Op::Max).unwrap();
        assert_eq!(recv, fold(&|a, b| a.max(b)), "allreduce Max len {len}");
        w.allreduce_into(&mine, &mut recv, Op::BitXor).unwrap();
        assert_eq!(recv, fold(&|a, b| a ^ b), "allreduce BitXor len {len}");
        let mut inplace = mine.clone();
        w.allreduce_in_place(&mut inplace, Op::Min).unwrap();
        assert_eq!(
            inplace,
            fold(&|a, b| a.min(b)),
            "allreduce_in_place Min len {len}"
        );

        case += 1;
        let fl = floats(s, case, me, len);
        let fall: Vec<Vec<f64>> = (0..n).map(|r| floats(s, case, r, len)).collect();
        let fwant: Vec<f64> = (0..len)
            .map(|i| (1..n).fold(fall[0][i], |a, r| a + fall[r][i]))
            .collect();
        let mut frecv = vec![0f64; len];
        w.allreduce_into(&fl, &mut frecv, Op::Sum).unwrap();
        assert!(close(&frecv, &fwant), "allreduce f64 Sum len {len}");

        // Non-commutative closure on 2x2 matrices: order must be rank order.
        case += 1;
        let mlen = len.min(50_000);
        let mats = |r: usize| -> Vec<[u64; 4]> {
            (0..mlen)
                .map(|i| {
                    let v = val(s, case, r, i);
                    [v | 1, v >> 7, v >> 13, (v >> 3) | 1]
                })
                .collect()
        };
        let allm: Vec<Vec<[u64; 4]>> = (0..n).map(mats).collect();
        let mwant: Vec<[u64; 4]> = (0..mlen)
            .map(|i| (1..n).fold(allm[0][i], |a, r| matmul(&a, &allm[r][i])))
            .collect();
        let mut mrecv = vec![[0u64; 4]; mlen];
        w.allreduce_into(&allm[me], &mut mrecv, |a: &[u64; 4], b: &[u64; 4]| {
            matmul(a, b)
        })
        .unwrap();
        assert_eq!(
            mrecv, mwant,
            "allreduce closure (matrix product) len {mlen}"
        );

        for root in all_roots(len) {
            let mut recv = if me == root { vec![0i64; len] } else { vec![] };
            w.reduce_into(&mine, &mut recv, Op::Sum, root as i32)
                .unwrap();
            if me == root {
                assert_eq!(
                    recv,
                    fold(&|a, b| a + b),
                    "reduce Sum len {len} root {root}"
                );
            }
            let mut mr = if me == root {
                vec![[0u64; 4]; mlen]
            } else {
                vec![]
            };
            w.reduce_into(
                &allm[me],
                &mut mr,
                |a: &[u64; 4], b: &[u64; 4]| matmul(a, b),
                root as i32,
            )
            .unwrap();
            if me == root {
                assert_eq!(mr, mwant, "reduce closure len {mlen} root {root}");
            }
        }

        // scan / exscan.
        let mut sc = vec![0i64; len];
        w.scan_into(&mine, &mut sc, Op::Sum).unwrap();
        let pre = |upto: usize| -> Vec<i64> {
            (0..len)
                .map(|i| (0..upto).map(|r| all[r][i]).sum())
                .collect()
        };
        assert_eq!(sc, pre(me + 1), "scan len {len}");
        let mut ex = vec![7i64; len];
        w.exscan_into(&mine, &mut ex, Op::Sum).unwrap();
        if me == 0 {
            assert!(ex.iter().all(|&x| x == 7), "exscan leaves rank 0 unchanged");
        } else {
            assert_eq!(ex, pre(me), "exscan len {len}");
        }
    }

    // MinLoc / MaxLoc.
    case += 1;
    let pairs: Vec<DoubleInt> = (0..10)
        .map(|i| DoubleInt {
            value: (val(s, case, me, i) % 5) as f64,
            index: me as i64,
        })
        .collect();
    let mut lo = vec![DoubleInt::default(); 10];
    let mut hi = vec![DoubleInt::default(); 10];
    w.allreduce_into(&pairs, &mut lo, Op::MinLoc).unwrap();
    w.allreduce_into(&pairs, &mut hi, Op::MaxLoc).unwrap();
    for i in 0..10 {
        let vals: Vec<f64> = (0..n).map(|r| (val(s, case, r, i) % 5) as f64).collect();
        let mn = vals.iter().cloned().fold(f64::INFINITY, f64::min);
        let mx = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(
            lo[i],
            DoubleInt {
                value: mn,
                index: vals.iter().position(|&v| v == mn).unwrap() as i64
            }
        );
        assert_eq!(
            hi[i],
            DoubleInt {
                value: mx,
                index: vals.iter().position(|&v| v == mx).unwrap() as i64
            }
        );
    }
    // Ops that make no sense for a type are errors before anything happens.
    let mut f = [0f64];
    assert!(matches!(
        w.allreduce_into(&[1f64], &mut f, Op::BitXor),
        Err(Error::Usage(_))
    ));

    // gatherv / scatterv / allgatherv with uneven counts.
    for scale in [0usize, 1, 3000] {
        for root in 0..n {
            case += 1;
            let counts: Vec<usize> = (0..n).map(|r| (r * 7 + 3) % 5 * scale).collect();
            let displs: Vec<usize> = counts
                .iter()
                .scan(0, |acc, &c| {
                    let d = *acc;
                    *acc += c + 2;
                    Some(d)
                })
                .collect();
            let total = displs[n - 1] + counts[n - 1];
            let mine = ints(s, case, me, counts[me]);
            let mut recv = if me == root {
                vec![-1i64; total]
            } else {
                vec![]
            };
            let (c, d): (&[usize], &[usize]) = if me == root {
                (&counts, &displs)
            } else {
                (&[], &[])
            };
            w.gatherv_into(&mine, &mut recv, c, d, root as i32).unwrap();
            if me == root {
                for r in 0..n {
                    assert_eq!(
                        recv[displs[r]..displs[r] + counts[r]],
                        ints(s, case, r, counts[r]),
                        "gatherv"
                    );
                }
            }
            let all = ints(s, case, root, total);
            let mut got = vec![0i64; counts[me]];
            let send = if me == root { all.clone() } else { vec![] };
            w.scatterv_into(&send, c, d, &mut got, root as i32).unwrap();
            assert_eq!(
                got,
                all[displs[me]..displs[me] + counts[me]],
                "scatterv root {root}"
            );
        }
        case += 1;
        let counts: Vec<usize> = (0..n).map(|r| (r * 5 + 1) % 4 * scale).collect();
        let displs: Vec<usize> = counts
            .iter()
            .scan(0, |acc, &c| {
                let d = *acc;
                *acc += c;
                Some(d)
            })
            .collect();
        let total: usize = counts.iter().sum();
        let mine = ints(s, case, me, counts[me]);
        let mut recv = vec![0i64; total];
        w.allgatherv_into(&mine, &mut recv, &counts, &displs)
            .unwrap();
        let want: Vec<i64> = (0..n).flat_map(|r| ints(s, case, r, counts[r])).collect();
        assert_eq!(recv, want, "allgatherv");
    }

    // Objects.
    for root in 0..n {
        let v: String = if me == root {
            format!("hello from {root}")
        } else {
            String::new()
        };
        let got: String = w
            .bcast(if me == root { Some(v) } else { None }, root as i32)
            .unwrap();
        assert_eq!(got, format!("hello from {root}"));
        let big: Vec<u64> = (0..if root == 0 { 300_000 } else { 10 })
            .map(|i| i as u64 ^ root as u64)
            .collect();
        let got: Vec<u64> = w
            .bcast(
                if me == root { Some(big.clone()) } else { None },
                root as i32,
            )
            .unwrap();
        assert_eq!(got, big);
        let vals: Vec<Vec<u32>> = (0..n).map(|r| vec![r as u32; r + root]).collect();
        let got: Vec<u32> = w
            .scatter(if me == root { Some(&vals[..]) } else { None }, root as i32)
            .unwrap();
        assert_eq!(got, vals[me]);
        let g = w.gather(&format!("r{me}"), root as i32).unwrap();
        if me == root {
            assert_eq!(
                g.unwrap(),
                (0..n).map(|r| format!("r{r}")).collect::<Vec<_>>()
            );
        } else {
            assert!(g.is_none());
        }
        // String concatenation is associative but not commutative.
        let red = w
            .reduce(&format!("{me},"), |a, b| format!("{a}{b}"), root as i32)
            .unwrap();
        if me == root {
            assert_eq!(
                red.unwrap(),
                (0..n).map(|r| format!("{r},")).collect::<String>()
            );
        }
    }
    let ag: Vec<(u32, String)> = w.allgather(&(me as u32, "x".repeat(me * 1000))).unwrap();
    assert_eq!(
        ag,
        (0..n)
            .map(|r| (r as u32, "x".repeat(r * 1000)))
            .collect::<Vec<_>>()
    );
    let a2a: Vec<String> = w
        .alltoall(&(0..n).map(|j| format!("{me}->{j}")).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(
        a2a,
        (0..n).map(|j| format!("{j}->{me}")).collect::<Vec<_>>()
    );
    let x = me as f64 + 0.5;
    let sum: f64 = w.allreduce(&x, |a, b| a + b).unwrap();
    assert_eq!(sum, (0..n).map(|r| r as f64 + 0.5).sum::<f64>());
    let cat = w
        .allreduce(&vec![me as u64], |a, b| [a.clone(), b.clone()].concat())
        .unwrap();
    assert_eq!(cat, (0..n as u64).collect::<Vec<_>>());
    let sc = w.scan(&format!("{me}"), |a, b| format!("{a}{b}")).unwrap();
    assert_eq!(sc, (0..=me).map(|r| r.to_string()).collect::<String>());
    let ex = w.exscan(&(me as u64 + 1), |a, b| a * b).unwrap();
    assert_eq!(ex, (me > 0).then(|| (1..=me as u64).product::<u64>()));
    w.barrier().unwrap();
}

#[test]
fn collectives_match_serial_reference_n1() {
    run_ranks("collectives_match_serial_reference_n1", 1, check_everything);
}

#[test]
fn collectives_match_serial_reference_n2() {
    run_ranks("collectives_match_serial_reference_n2", 2, check_everything);
}

#[test]
fn collectives_match_serial_reference_n3() {
    run_ranks("collectives_match_serial_reference_n3", 3, check_everything);
}

#[test]
fn collectives_match_serial_reference_n4() {
    run_ranks("collectives_match_serial_reference_n4", 4, check_everything);
}

#[test]
fn collectives_match_serial_reference_n7() {
    run_ranks("collectives_match_serial_reference_n7", 7, check_everything);
}

#[test]
fn collectives_match_serial_reference_n8() {
    run_ranks("collectives_match_serial_reference_n8", 8, check_everything);
}

#[test]
fn collectives_match_serial_reference_n16() {
    run_ranks(
        "collectives_match_serial_reference_n16",
        16,
        check_everything,
    );
}
