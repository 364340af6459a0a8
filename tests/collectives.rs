//! Collectives and communicators through the real launcher, checked against serial
//! references computed by every rank from every rank's (pseudo-random, seeded) input.
//!
//! Integer results must be exact; `f64` sums within a relative 1e-12 (the reduction
//! order is the rank order, the reference sums in the same order, so they are in fact
//! equal, but the tolerance documents what is promised).

mod common;

use common::{run_ranks, run_ranks_with_env};
use shmpi::{Communicator, DoubleInt, Error, ErrorClass, Op};

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
/// `reduce_into` of `mine` to `root` with `op`; the root checks it got `want`.
fn check_reduce<T: bytemuck::Pod + PartialEq + std::fmt::Debug>(
    w: &Communicator,
    mine: &[T],
    root: usize,
    op: impl shmpi::ReduceOp<T>,
    want: &[T],
    what: &str,
) {
    let me = w.rank() as usize;
    let mut out = if me == root {
        vec![T::zeroed(); mine.len()]
    } else {
        vec![]
    };
    w.reduce_into(mine, &mut out, op, root as i32).unwrap();
    if me == root {
        assert_eq!(out, want, "{what} root {root}");
    }
}

/// 2x2 matrices of u16 (8 bytes): up to 3 of them take the one-step inline reduction.
fn matmul16(a: &[u16; 4], b: &[u16; 4]) -> [u16; 4] {
    let m = |x: u16, y: u16| x.wrapping_mul(y);
    [
        m(a[0], b[0]).wrapping_add(m(a[1], b[2])),
        m(a[0], b[1]).wrapping_add(m(a[1], b[3])),
        m(a[2], b[0]).wrapping_add(m(a[3], b[2])),
        m(a[2], b[1]).wrapping_add(m(a[3], b[3])),
    ]
}

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
        let mlen = len.min(50_001); // odd: halves of unequal length
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
        // In place, where a rank's buffer may receive another rank's contribution
        // before its own is folded in.
        let mut minp = allm[me].clone();
        w.allreduce_in_place(&mut minp, |a: &[u64; 4], b: &[u64; 4]| matmul(a, b))
            .unwrap();
        assert_eq!(
            minp, mwant,
            "allreduce_in_place closure (matrix product) len {mlen}"
        );
        // To a root, first and last: each rank's part reduced where it is, in rank order.
        for root in [0, n - 1] {
            let mul = |a: &[u64; 4], b: &[u64; 4]| matmul(a, b);
            let what = format!("reduce closure (matrix product) len {mlen}");
            check_reduce(w, &allm[me], root, mul, &mwant, &what);
        }
        // The same order in the one-step inline reduction (at most 16 bytes), in place
        // and to every root.
        let slen = len.min(2);
        let smats = |r: usize| -> Vec<[u16; 4]> {
            (0..slen)
                .map(|i| {
                    let v = val(s, case, r, i);
                    [
                        v as u16 | 1,
                        (v >> 16) as u16,
                        (v >> 32) as u16,
                        (v >> 48) as u16 | 1,
                    ]
                })
                .collect()
        };
        let alls: Vec<Vec<[u16; 4]>> = (0..n).map(smats).collect();
        let swant: Vec<[u16; 4]> = (0..slen)
            .map(|i| (1..n).fold(alls[0][i], |a, r| matmul16(&a, &alls[r][i])))
            .collect();
        let mut sm = alls[me].clone();
        w.allreduce_in_place(&mut sm, |a: &[u16; 4], b: &[u16; 4]| matmul16(a, b))
            .unwrap();
        assert_eq!(
            sm, swant,
            "allreduce_in_place closure (u16 matrices) len {slen}"
        );
        for root in 0..n {
            let mul = |a: &[u16; 4], b: &[u16; 4]| matmul16(a, b);
            let what = format!("reduce closure (u16 matrices) len {slen}");
            check_reduce(w, &alls[me], root, mul, &swant, &what);
        }

        let sum = fold(&|a, b| a + b);
        for root in all_roots(len) {
            check_reduce(
                w,
                &mine,
                root,
                Op::Sum,
                &sum,
                &format!("reduce Sum len {len}"),
            );
            let mul = |a: &[u64; 4], b: &[u64; 4]| matmul(a, b);
            let what = format!("reduce closure len {mlen}");
            check_reduce(w, &allm[me], root, mul, &mwant, &what);
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
    let r = w.allreduce_into(&[1f64], &mut f, Op::BitXor);
    assert_eq!(class_of(&r), Some(ErrorClass::Op), "{r:?}");

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

        // alltoallv: rank i sends cnt(i, j) elements to rank j, its blocks stored in
        // reverse rank order; each rank receives in rank order with one spare element
        // between blocks (which must stay untouched).
        case += 1;
        let cnt = |i: usize, j: usize| (i * 3 + j * 5 + 1) % 4 * scale;
        let block = |i: usize, j: usize| ints(s, case, i * n + j, cnt(i, j));
        let scounts: Vec<usize> = (0..n).map(|j| cnt(me, j)).collect();
        let mut sdispls = vec![0usize; n];
        let mut send = Vec::new();
        for j in (0..n).rev() {
            sdispls[j] = send.len();
            send.extend(block(me, j));
        }
        let rcounts: Vec<usize> = (0..n).map(|i| cnt(i, me)).collect();
        let mut rdispls = vec![0usize; n];
        let mut at = 0;
        for i in 0..n {
            rdispls[i] = at;
            at += rcounts[i] + 1;
        }
        let mut recv = vec![-7i64; at];
        w.alltoallv_into(&send, &scounts, &sdispls, &mut recv, &rcounts, &rdispls)
            .unwrap();
        for i in 0..n {
            let got = &recv[rdispls[i]..rdispls[i] + rcounts[i]];
            assert_eq!(got, block(i, me), "alltoallv from {i}, scale {scale}");
            assert_eq!(recv[rdispls[i] + rcounts[i]], -7, "alltoallv gap after {i}");
        }
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
        let raw = format!("raw bytes from {root}").into_bytes();
        let got = w
            .bcast_bytes((me == root).then(|| raw.clone()), root as i32)
            .unwrap();
        assert_eq!(got, raw);
        let vals: Vec<Vec<u32>> = (0..n).map(|r| vec![r as u32; r + root]).collect();
        let got: Vec<u32> = w
            .scatter(if me == root { Some(&vals[..]) } else { None }, root as i32)
            .unwrap();
        assert_eq!(got, vals[me]);
        // Parts of their own lengths, some empty.
        let parts: Vec<Vec<u8>> = (0..n)
            .map(|r| vec![(r + root) as u8; (r * 7 + root) % 5])
            .collect();
        let got = w
            .scatter_bytes((me == root).then_some(&parts[..]), root as i32)
            .unwrap();
        assert_eq!(got, parts[me], "scatter_bytes from {root}");
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
    // One rank's object larger than a half of a data slot (128 KiB at up to 16 ranks),
    // the others small (rank 0's, if not the large one, empty): every rank gets every
    // object, and the root of a gather too.
    let size_of = |r: usize, k: usize| if r == k % n { 200_000 + r } else { r * 3 };
    for k in 0..2 {
        let mine: Vec<u8> = vec![me as u8; size_of(me, k)];
        let ag: Vec<Vec<u8>> = w.allgather(&mine).unwrap();
        let want: Vec<Vec<u8>> = (0..n).map(|r| vec![r as u8; size_of(r, k)]).collect();
        assert_eq!(ag, want, "allgather with a large object at rank {}", k % n);
        let g = w.gather(&mine, (n - 1) as i32).unwrap();
        assert_eq!(g, (me == n - 1).then_some(want.clone()));
        let gb = w.gather_bytes(&mine, (k % n) as i32).unwrap();
        assert_eq!(gb, (me == k % n).then(|| want.clone()), "gather_bytes");
        assert_eq!(w.allgather_bytes(&mine).unwrap(), want, "allgather_bytes");
        let root = (k + 1) % n;
        let got = w
            .scatter_bytes((me == root).then_some(&want[..]), root as i32)
            .unwrap();
        assert_eq!(
            got,
            want[me],
            "scatter_bytes with a large part at {}",
            k % n
        );
        let got: Vec<u8> = w
            .scatter((me == root).then_some(&want[..]), root as i32)
            .unwrap();
        assert_eq!(got, want[me], "scatter with a large part at {}", k % n);
        // All-to-all: what rank r sends rank j, one part past a slot's half (from rank
        // k % n to the next), the others small or empty.
        let part = |r: usize, j: usize| -> Vec<u8> {
            let len = if r == k % n && j == (r + 1) % n {
                150_000
            } else {
                (r + 2 * j) % 4
            };
            (0..len).map(|b| (b + 5 * r + j) as u8).collect()
        };
        let mine: Vec<Vec<u8>> = (0..n).map(|j| part(me, j)).collect();
        let want: Vec<Vec<u8>> = (0..n).map(|r| part(r, me)).collect();
        assert_eq!(w.alltoall_bytes(&mine).unwrap(), want, "alltoall_bytes");
        assert_eq!(w.alltoall(&mine).unwrap(), want, "alltoall of a large part");
        let small: Vec<Vec<u8>> = (0..n)
            .map(|j| part(me, j).into_iter().take(3).collect())
            .collect();
        let want: Vec<Vec<u8>> = (0..n)
            .map(|r| part(r, me).into_iter().take(3).collect())
            .collect();
        assert_eq!(
            w.alltoall_bytes(&small).unwrap(),
            want,
            "alltoall_bytes, small"
        );
    }
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

/// Large allgathers and alltoalls read their peers' buffers directly where the system
/// allows it (`SHMPI_CMA`, on by default); `SHMPI_CMA=0` keeps every byte in the segment's
/// slots. Both paths must give the serial reference's results.
#[test]
fn collectives_match_serial_reference_through_the_segment_alone_n2() {
    run_ranks_with_env(
        "collectives_match_serial_reference_through_the_segment_alone_n2",
        2,
        &[("SHMPI_CMA", "0")],
        check_everything,
    );
}

#[test]
fn collectives_match_serial_reference_through_the_segment_alone_n3() {
    run_ranks_with_env(
        "collectives_match_serial_reference_through_the_segment_alone_n3",
        3,
        &[("SHMPI_CMA", "0")],
        check_everything,
    );
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

#[test]
fn split_groups_run_different_collectives_at_the_same_time() {
    run_ranks(
        "split_groups_run_different_collectives_at_the_same_time",
        7,
        |w| {
            let me = w.rank();
            let color = me % 3;
            // Keys reverse the order inside each group.
            let g = w
                .split(color, -me)
                .unwrap()
                .expect("every rank has a color");
            let members: Vec<i32> = (0..7).filter(|r| r % 3 == color).rev().collect();
            assert_eq!(g.size() as usize, members.len());
            assert_eq!(members[g.rank() as usize], me);
            assert_eq!(g.world_rank(), me);
            for (i, &m) in members.iter().enumerate() {
                assert_eq!(g.world_rank_of(i as i32).unwrap(), m);
            }
            assert_ne!(g.context_id(), w.context_id());
            for round in 0..200u64 {
                match color {
                    0 => {
                        let mut out = [0u64; 3];
                        g.allreduce_into(&[me as u64, round, 1], &mut out, Op::Sum)
                            .unwrap();
                        let s: u64 = members.iter().map(|&m| m as u64).sum();
                        assert_eq!(out, [s, round * members.len() as u64, members.len() as u64]);
                    }
                    1 => {
                        let mut buf = vec![0u64; 5000];
                        if g.rank() == (round % g.size() as u64) as i32 {
                            buf.iter_mut()
                                .enumerate()
                                .for_each(|(i, x)| *x = i as u64 * round);
                        }
                        g.bcast_into(&mut buf, (round % g.size() as u64) as i32)
                            .unwrap();
                        assert!(buf.iter().enumerate().all(|(i, &x)| x == i as u64 * round));
                    }
                    _ => {
                        let all: Vec<i32> = g.allgather(&me).unwrap();
                        assert_eq!(all, members);
                    }
                }
            }
            // Undefined color: no communicator.
            let odd = w
                .split(if me % 2 == 1 { 0 } else { shmpi::UNDEFINED }, 0)
                .unwrap();
            assert_eq!(odd.is_some(), me % 2 == 1);
            if let Some(o) = odd {
                assert_eq!(o.size(), 3);
                o.barrier().unwrap();
            }
            w.barrier().unwrap();
        },
    );
}

#[test]
fn dup_traffic_is_isolated_from_the_parent() {
    run_ranks("dup_traffic_is_isolated_from_the_parent", 3, |w| {
        let d = w.dup().unwrap();
        assert_eq!((d.rank(), d.size()), (w.rank(), w.size()));
        assert_ne!(d.context_id(), w.context_id());
        let me = w.rank();
        // Same source and tag on both: each receive gets its own communicator's message.
        if me == 0 {
            d.send(&"dup".to_string(), 1, 5).unwrap();
            w.send(&"world".to_string(), 1, 5).unwrap();
        } else if me == 1 {
            let a: String = w.recv(0, 5).unwrap();
            let b: String = d.recv(0, 5).unwrap();
            assert_eq!((a.as_str(), b.as_str()), ("world", "dup"));
        }
        // Interleaved collectives on parent and dup with different roots and data.
        for i in 0..100 {
            let mut a = [if me == 0 { i } else { -1 }];
            let mut b = [if me == 2 { -i } else { -1 }];
            w.bcast_into(&mut a, 0).unwrap();
            d.bcast_into(&mut b, 2).unwrap();
            assert_eq!((a[0], b[0]), (i, -i));
        }
        // A collective on the dup while a p2p message waits on the parent.
        if me == 2 {
            w.send_slice(&[42u32], 0, 9).unwrap();
        }
        d.barrier().unwrap();
        if me == 0 {
            let mut x = [0u32];
            w.recv_into(&mut x, 2, 9).unwrap();
            assert_eq!(x[0], 42);
        }
        w.barrier().unwrap();
    });
}

#[test]
fn thousands_of_communicators_created_and_freed_do_not_exhaust_the_segment() {
    run_ranks(
        "thousands_of_communicators_created_and_freed_do_not_exhaust_the_segment",
        3,
        |w| {
            // More than the pool holds (at most 4096 areas), so a leak would fail.
            for i in 0..5000 {
                let d = w.dup().unwrap();
                if i % 2 == 0 {
                    d.barrier().unwrap();
                } else {
                    let mut x = [0u64; 40_000]; // through the data slots
                    d.allreduce_in_place(&mut x, Op::Sum).unwrap();
                }
                if i % 500 == 0 {
                    let s = w.split(w.rank() % 2, 0).unwrap().unwrap();
                    s.barrier().unwrap();
                }
            }
            w.barrier().unwrap();
            // Every rank has dropped its handles; the pool is back to empty.
            let mut x = [w.communicators_in_use() as u64];
            w.allreduce_in_place(&mut x, Op::Max).unwrap();
            assert!(x[0] <= 1, "{} communicator areas still in use", x[0]);
        },
    );
}

/// Whether `r` is an error of the program's making (a misuse, or an argument with an
/// MPI error class of its own) whose text has every one of `words`.
fn is_misuse(r: &shmpi::Result<impl std::fmt::Debug>, words: &[&str]) -> bool {
    match r {
        Err(e @ (Error::Usage(_) | Error::InvalidArgument { .. })) => {
            let m = e.to_string();
            words.iter().all(|w| m.contains(w))
        }
        _ => false,
    }
}

/// The MPI error class of `r`'s error.
fn class_of(r: &shmpi::Result<impl std::fmt::Debug>) -> Option<ErrorClass> {
    r.as_ref().err().map(Error::class)
}

/// After errors on other communicators, the world's collectives still work.
fn world_still_works(w: &Communicator) {
    w.barrier().unwrap();
    let mut x = [w.rank()];
    w.allreduce_in_place(&mut x, Op::Sum).unwrap();
    let n = w.size();
    assert_eq!(x[0], n * (n - 1) / 2);
}

/// A run of byte all-to-alls, every rank's parts each just within and just past what
/// one step carries (its table and every part in a half of its data slot, 128 KiB at
/// up to 16 ranks), and empty, one rank at a time larger than the others: every rank
/// gets every part each time.
#[test]
fn all_to_alls_on_both_sides_of_one_step_deliver_every_part() {
    run_ranks(
        "all_to_alls_on_both_sides_of_one_step_deliver_every_part",
        4,
        |w| {
            let (me, n) = (w.rank() as usize, w.size() as usize);
            let fill = (128 << 10) / n - 8 * (n + 1) / n;
            let part = |i: usize, r: usize, j: usize| -> Vec<u8> {
                let len = [0, 1, 100, fill, fill + 1, 3 * fill][(i + usize::from(r == i % n)) % 6];
                (0..len).map(|k| (k + 3 * r + 7 * j + i) as u8).collect()
            };
            for i in 0..60 {
                let mine: Vec<Vec<u8>> = (0..n).map(|j| part(i, me, j)).collect();
                let want: Vec<Vec<u8>> = (0..n).map(|r| part(i, r, me)).collect();
                assert_eq!(w.alltoall_bytes(&mine).unwrap(), want, "call {i}");
            }
        },
    );
}

/// A run of byte scatters from every root, the root's parts each just within and just
/// past what one step carries (the table and every part in a half of the root's data
/// slot, 128 KiB at up to 16 ranks), and empty: every rank gets its part each time, and
/// an object scatter between them matches as a scatter.
#[test]
fn scatters_on_both_sides_of_one_step_deliver_every_part() {
    run_ranks(
        "scatters_on_both_sides_of_one_step_deliver_every_part",
        4,
        |w| {
            let (me, n) = (w.rank() as usize, w.size() as usize);
            let fill = (128 << 10) / n - 8 * (n + 1) / n;
            for i in 0..60 {
                let root = i % n;
                let len = [0, 1, 100, fill, fill + 1, 3 * fill][i % 6];
                let parts: Vec<Vec<u8>> = (0..n)
                    .map(|r| (0..len + r).map(|k| (k + 3 * r + i) as u8).collect())
                    .collect();
                let got = w
                    .scatter_bytes((me == root).then_some(&parts[..]), root as i32)
                    .unwrap();
                assert_eq!(got, parts[me], "call {i}: {len} bytes from {root}");
                if i % 5 == 0 {
                    let vals: Vec<(usize, String)> =
                        (0..n).map(|r| (r * i, "p".repeat(r))).collect();
                    let got: (usize, String) = w
                        .scatter((me == root).then_some(&vals[..]), root as i32)
                        .unwrap();
                    assert_eq!(got, vals[me]);
                }
            }
        },
    );
}

#[test]
fn misuse_is_an_error_not_a_hang() {
    run_ranks("misuse_is_an_error_not_a_hang", 3, |w| {
        let me = w.rank();
        // Different collectives at the same point: both sides name both calls.
        let d = w.dup().unwrap();
        let r = if me == 0 {
            let mut out = [0.0];
            d.allreduce_into(&[1.0], &mut out, Op::Sum).map(|_| ())
        } else {
            let mut out = [0.0; 3];
            d.allgather_into(&[1.0], &mut out)
        };
        assert!(
            is_misuse(&r, &["allreduce_into", "allgather_into", "mismatched"]),
            "rank {me}: {r:?}"
        );
        // The communicator is unusable afterwards, and says so.
        assert!(is_misuse(&d.barrier(), &["failed"]));
        drop(d);

        // Mismatched counts across ranks.
        let d = w.dup().unwrap();
        let len = if me == 1 { 4 } else { 3 };
        let mut out = vec![0i32; len];
        let r = d.allreduce_into(&vec![1i32; len], &mut out, Op::Sum);
        assert!(is_misuse(&r, &["count=3", "count=4"]), "rank {me}: {r:?}");
        // Rank 1's four elements would not fit the others' three.
        let class = if me == 1 {
            ErrorClass::Count
        } else {
            ErrorClass::Truncate
        };
        assert_eq!(class_of(&r), Some(class), "rank {me}: {r:?}");
        drop(d);

        // Mismatched roots.
        let d = w.dup().unwrap();
        let mut buf = [0u8; 8];
        let root = if me == 2 { 1 } else { 0 };
        let r = d.bcast_into(&mut buf, root);
        // Every rank, the roots that wait for nobody included.
        assert!(is_misuse(&r, &["root=0", "root=1"]), "rank {me}: {r:?}");
        assert_eq!(class_of(&r), Some(ErrorClass::Root), "rank {me}: {r:?}");
        drop(d);

        // Root out of range, local length errors: reported before anything is sent.
        let mut buf = [0u8; 8];
        assert!(matches!(
            w.bcast_into(&mut buf, 3),
            Err(Error::InvalidRoot { root: 3, size: 3 })
        ));
        assert!(matches!(
            w.reduce_into(&[1], &mut [0], Op::Sum, -1),
            Err(Error::InvalidRoot { .. })
        ));
        let mut small = [0i64; 2];
        assert!(is_misuse(
            &w.allgather_into(&[1i64], &mut small),
            &["allgather_into", "2", "3"]
        ));
        assert!(is_misuse(
            &w.alltoall_into(&[1i64; 4], &mut [0; 4]),
            &["alltoall_into"]
        ));
        // A displacement so large that displacement + count overflows.
        assert!(is_misuse(
            &w.allgatherv_into(&[1i64], &mut [0; 3], &[1, 1, 1], &[0, 1, usize::MAX]),
            &["allgatherv_into", "does not fit"]
        ));
        assert!(is_misuse(
            &w.alltoallv_into(
                &[1i64; 3],
                &[1; 3],
                &[0, 1, 2],
                &mut [0; 3],
                &[1; 3],
                &[0, 1]
            ),
            &["alltoallv_into", "one entry per rank"]
        ));
        assert!(is_misuse(
            &w.allreduce_into(&[1.0f32], &mut [0.0], Op::BitAnd),
            &["BitAnd", "f32"]
        ));

        // A root with the wrong number of parts: an error at the root, and at the
        // others, which called with valid arguments, an error naming its call.
        let d = w.dup().unwrap();
        let parts = vec![vec![1u8]; 2];
        let r = d.scatter_bytes((me == 1).then_some(&parts[..]), 1);
        if me == 1 {
            assert!(
                is_misuse(&r, &["scatter_bytes", "2 values for 3 ranks"]),
                "{r:?}"
            );
        } else {
            assert!(
                is_misuse(&r, &["found invalid", "rank 1"]),
                "rank {me}: {r:?}"
            );
        }
        drop(d);
        let d = w.dup().unwrap();
        let r = d.scatter_bytes(None, 1);
        assert!(is_misuse(
            &r,
            &[if me == 1 { "Some" } else { "found invalid" }]
        ));
        drop(d);
        let d = w.dup().unwrap();
        let r = d.scatter((me == 1).then_some(&[1u8][..]), 1);
        if me == 1 {
            assert!(is_misuse(&r, &["scatter", "1 values for 3 ranks"]), "{r:?}");
        } else {
            assert!(is_misuse(&r, &["found invalid"]), "rank {me}: {r:?}");
        }
        drop(d);
        assert!(matches!(
            w.scatter_bytes(None, 3),
            Err(Error::InvalidRoot { root: 3, size: 3 })
        ));
        assert!(is_misuse(
            &w.alltoall_bytes(&[vec![1u8], vec![]]),
            &["alltoall_bytes", "2 parts passed for 3 ranks"]
        ));

        // Objects of different types.
        let d = w.dup().unwrap();
        if me == 0 {
            d.bcast(Some(7u64), 0).unwrap();
        } else {
            let r = d.bcast::<String>(None, 0);
            assert!(
                matches!(r, Err(Error::TypeMismatch { .. })),
                "rank {me}: {r:?}"
            );
        }
        drop(d);

        world_still_works(w);
    });
}

/// MPI 4.1 §6.1: every rank of the communicator makes the same collective call, with
/// arguments that agree. A rank whose own arguments are invalid (found before the call
/// starts) gets its error, and no other rank may return `Ok` from a call it paired
/// with something else: each gets an error naming that rank, in this call, and the
/// communicator says it failed at the next (its ranks are out of step). Before, the
/// others waited for the invalid rank's next collective and took its data as this
/// call's: an allreduce returned the sum of two different calls.
#[test]
fn a_rank_whose_arguments_are_invalid_fails_the_call_on_every_rank() {
    run_ranks(
        "a_rank_whose_arguments_are_invalid_fails_the_call_on_every_rank",
        5,
        |w| {
            let me = w.rank();
            let n = w.size() as usize;
            // Each case: one call on a fresh communicator, where only rank `bad` passes
            // something invalid; then the same call again, valid everywhere.
            type Case<'a> = (
                &'a str,
                i32,
                &'a dyn Fn(&Communicator, bool) -> shmpi::Result<Vec<i64>>,
            );
            let cases: [Case; 9] = [
                ("allreduce_into", 1, &|c, bad| {
                    let mut out = vec![0i64; if bad { 1 } else { 2 }];
                    c.allreduce_into(&[100i64, 100], &mut out, Op::Sum)
                        .map(|_| out)
                }),
                ("reduce_into", 0, &|c, bad| {
                    let mut out = vec![0i64; if bad { 1 } else { 2 }];
                    c.reduce_into(&[100i64, 100], &mut out, Op::Sum, 0)
                        .map(|_| out)
                }),
                ("gather_into", 2, &|c, bad| {
                    let mut out = vec![0i64; if bad { 1 } else { c.size() as usize }];
                    c.gather_into(&[7i64], &mut out, 2).map(|_| out)
                }),
                ("scatter_into", 3, &|c, bad| {
                    let send = vec![5i64; if bad { 2 } else { c.size() as usize }];
                    let mut out = [0i64];
                    c.scatter_into(&send, &mut out, 3).map(|_| out.to_vec())
                }),
                ("bcast_into", 4, &|c, bad| {
                    let mut buf = [9i64; 2];
                    c.bcast_into(&mut buf, if bad { 99 } else { 0 })
                        .map(|_| buf.to_vec())
                }),
                ("alltoall_into", 1, &|c, bad| {
                    let len = if bad { 3 } else { c.size() as usize };
                    let mut out = vec![0i64; len];
                    c.alltoall_into(&vec![1i64; len], &mut out).map(|_| out)
                }),
                ("allgatherv_into", 2, &|c, bad| {
                    let n = c.size() as usize;
                    let counts = vec![1usize; if bad { n - 1 } else { n }];
                    let displs: Vec<usize> = (0..n).collect();
                    let mut out = vec![0i64; n];
                    c.allgatherv_into(&[3i64], &mut out, &counts, &displs)
                        .map(|_| out)
                }),
                ("bcast", 0, &|c, bad| {
                    // The root must pass a value.
                    let v = (c.rank() == 0 && !bad).then_some(vec![1i64, 2]);
                    c.bcast(v, 0)
                }),
                ("split", 3, &|c, bad| {
                    c.split(if bad { -5 } else { 0 }, 0)
                        .map(|s| vec![s.map_or(-1, |s| i64::from(s.size()))])
                }),
            ];
            for (name, bad, call) in cases {
                let d = w.dup().unwrap();
                let r = call(&d, me == bad);
                if me == bad {
                    assert!(
                        matches!(
                            r,
                            Err(Error::Usage(_)
                                | Error::InvalidArgument { .. }
                                | Error::InvalidRoot { .. })
                        ),
                        "{name}: the invalid rank {me}: {r:?}"
                    );
                } else {
                    assert!(
                        is_misuse(&r, &[name, "found invalid", &format!("rank {bad}")]),
                        "{name}: rank {me} paired its call with rank {bad}'s invalid one: {r:?}"
                    );
                }
                // The same call again, valid everywhere: the communicator failed.
                let again = call(&d, false);
                assert!(
                    is_misuse(&again, &["failed"]),
                    "{name}: rank {me}: {again:?}"
                );
            }
            // When every rank's arguments are invalid the calls match: each gets its own
            // error and the communicator stays in step.
            let d = w.dup().unwrap();
            let mut buf = [0u8; 4];
            assert!(matches!(
                d.bcast_into(&mut buf, 9),
                Err(Error::InvalidRoot { root: 9, .. })
            ));
            let mut small = [0i64; 1];
            assert!(is_misuse(
                &d.allgather_into(&[1i64], &mut small),
                &["allgather_into"]
            ));
            let mut sum = [0i64];
            d.allreduce_into(&[1i64], &mut sum, Op::Sum).unwrap();
            assert_eq!(sum[0], n as i64);
            world_still_works(w);
        },
    );
}

#[test]
fn a_dead_rank_fails_the_collective_instead_of_hanging() {
    run_ranks(
        "a_dead_rank_fails_the_collective_instead_of_hanging",
        3,
        |w| {
            w.barrier().unwrap();
            if w.rank() == 2 {
                std::process::exit(0); // leaves without finalizing
            }
            let r = w.barrier();
            assert!(matches!(r, Err(Error::PeerFailed { rank: 2, .. })), "{r:?}");
        },
    );
}

#[test]
fn a_reduction_closure_may_use_the_communicator() {
    run_ranks("a_reduction_closure_may_use_the_communicator", 3, |w| {
        // The op probes for messages (which needs the runtime) while it reduces, small
        // and large; the runtime must not be borrowed while user code runs.
        let op = |a: &u64, b: &u64| {
            assert!(w.iprobe(shmpi::ANY_SOURCE, 77).unwrap().is_none());
            a + b
        };
        for len in [1usize, 100, 100_000] {
            let mine = vec![w.rank() as u64 + 1; len];
            let mut out = vec![0u64; len];
            w.allreduce_into(&mine, &mut out, op).unwrap();
            assert!(out.iter().all(|&x| x == 6));
        }
        let s = w.allreduce(&(w.rank() as u64), |a, b| {
            assert!(w.iprobe(shmpi::ANY_SOURCE, 77).unwrap().is_none());
            a + b
        });
        assert_eq!(s.unwrap(), 3);
    });
}

/// Large reductions with the opt-in non-temporal slot writes (`SHMPI_COLL_STREAM=1`)
/// and non-temporal result writes (`SHMPI_COLL_NT_BYTES`) give the same results as
/// the default path: allreduce, reduce to a non-zero root, in place, at 3 ranks (with
/// `SHMPI_CMA=0`: a large allreduce otherwise reads its peers directly, no slots).
#[test]
fn large_reductions_with_non_temporal_stores_match_the_reference() {
    run_ranks_with_env(
        "large_reductions_with_non_temporal_stores_match_the_reference",
        3,
        &[
            ("SHMPI_COLL_STREAM", "1"),
            ("SHMPI_COLL_NT_BYTES", "1048576"),
            ("SHMPI_CMA", "0"),
        ],
        |w| {
            let s = seed(w);
            let (me, n) = (w.rank() as usize, w.size() as usize);
            for (case, len) in [(1u64, 100_000usize), (2, 1 << 20), (3, (1 << 20) + 7)] {
                let mine = ints(s, case, me, len);
                let all: Vec<Vec<i64>> = (0..n).map(|r| ints(s, case, r, len)).collect();
                let want: Vec<i64> = (0..len).map(|i| all.iter().map(|v| v[i]).sum()).collect();
                let mut got = vec![0i64; len];
                w.allreduce_into(&mine, &mut got, Op::Sum).unwrap();
                assert_eq!(got, want, "allreduce, case {case}");
                let mut inplace = mine.clone();
                w.allreduce_in_place(&mut inplace, Op::Sum).unwrap();
                assert_eq!(inplace, want, "allreduce in place, case {case}");
                let fl = floats(s, case, me, len);
                let fall: Vec<Vec<f64>> = (0..n).map(|r| floats(s, case, r, len)).collect();
                let fwant: Vec<f64> = (0..len)
                    .map(|i| fall.iter().map(|v| v[i]).fold(0.0, |a, b| a + b))
                    .collect();
                let mut fgot = vec![0.0f64; len];
                w.reduce_into(&fl, &mut fgot, Op::Sum, 1).unwrap();
                if me == 1 {
                    assert!(close(&fgot, &fwant), "reduce to rank 1, case {case}");
                }
            }
        },
    );
}

/// Ranks that sleep while they wait still get every message and every collective: a
/// ring pass, barrier, allreduce and a slot-path bcast from a rotating root, at 5
/// ranks on 2 CPUs. `lag` makes the iteration's root sleep first, so that the others
/// wait long enough to go to sleep. A missed wake costs a 20 ms sleep slice (the
/// sleeper re-checks after it); the per-iteration watchdog fails on anything like a
/// lost wake-up chain.
fn sleepers_are_woken(w: &Communicator, iters: i64, lag: Option<std::time::Duration>) {
    let (me, n) = (w.rank(), w.size());
    let mut big = vec![0u32; 25_000];
    for i in 0..iters {
        let t = std::time::Instant::now();
        let root = (i as usize % n as usize) as i32;
        if let Some(d) = lag.filter(|_| me == root) {
            std::thread::sleep(d);
        }
        let next = (me + 1) % n;
        let prev = (me + n - 1) % n;
        let r = w.isend_vec(vec![i * 10 + me as i64], next, 5).unwrap();
        let mut got = [0i64];
        w.recv_into(&mut got, prev, 5).unwrap();
        assert_eq!(got[0], i * 10 + prev as i64);
        r.wait().unwrap();
        w.barrier().unwrap();
        let mut sum = [0i64];
        w.allreduce_into(&[i + me as i64], &mut sum, Op::Sum)
            .unwrap();
        assert_eq!(sum[0], n as i64 * i + (0..n as i64).sum::<i64>());
        if me == root {
            big.iter_mut()
                .enumerate()
                .for_each(|(k, x)| *x = k as u32 ^ i as u32);
        }
        w.bcast_into(&mut big, root).unwrap();
        assert!(
            big.iter()
                .enumerate()
                .all(|(k, &x)| x == k as u32 ^ i as u32)
        );
        assert!(
            t.elapsed() < std::time::Duration::from_secs(2),
            "iteration {i} took {:?}",
            t.elapsed()
        );
    }
}

/// Every wait sleeps at once (no spin, no yield phase): the fenced handshake, 300
/// times.
#[test]
fn ranks_that_sleep_at_once_are_woken_for_messages_and_collectives() {
    run_ranks_with_env(
        "ranks_that_sleep_at_once_are_woken_for_messages_and_collectives",
        5,
        &[("SHMPI_SPIN_US", "0"), ("SHMPI_YIELD_US", "0")],
        |w| sleepers_are_woken(w, 300, None),
    );
}

/// Waits yield for 1 ms, then sleep, while each iteration's root first sleeps 3 ms.
/// With 2 ranks on 2 CPUs the handshake is the asymmetric one where the kernel has it
/// (sleepers call `membarrier`, wakers do not fence); at 5 ranks the fenced one.
fn sleepers_after_yielding(name: &str, n: usize) {
    run_ranks_with_env(
        name,
        n,
        &[("SHMPI_SPIN_US", "0"), ("SHMPI_YIELD_US", "1000")],
        |w| sleepers_are_woken(w, 60, Some(std::time::Duration::from_millis(3))),
    );
}

#[test]
fn ranks_that_sleep_after_yielding_are_woken_at_2_ranks() {
    sleepers_after_yielding("ranks_that_sleep_after_yielding_are_woken_at_2_ranks", 2);
}

#[test]
fn ranks_that_sleep_after_yielding_are_woken_at_5_ranks() {
    sleepers_after_yielding("ranks_that_sleep_after_yielding_are_woken_at_5_ranks", 5);
}

/// A rank that finds a bad argument part-way through a collective (after the steps that
/// compare the ranks' arguments) fails the call, and so does every member that waits
/// for it, with an error naming it: not a hang, not a deadlock report.
#[test]
fn a_rank_failing_part_way_fails_the_members_waiting_for_it() {
    run_ranks(
        "a_rank_failing_part_way_fails_the_members_waiting_for_it",
        3,
        |w| {
            let me = w.rank();
            let failed_peer =
                |r: &shmpi::Result<()>, peer: &str, when: &str| is_misuse(r, &["rank", peer, when]);

            // allgatherv: rank 1's counts disagree with what rank 1 contributes; the
            // others need rank 1's data.
            let d = w.dup().unwrap();
            let counts = if me == 1 { [1usize, 2, 1] } else { [1, 1, 1] };
            let mut out = [0u32; 4];
            let r = d.allgatherv_into(&[me as u32], &mut out, &counts, &[0, 1, 3]);
            if me == 1 {
                assert!(is_misuse(&r, &["counts[1] is 2"]), "rank {me}: {r:?}");
            } else {
                assert!(
                    failed_peer(&r, "1", "failed this collective call part-way"),
                    "rank {me}: {r:?}"
                );
            }
            assert!(is_misuse(&d.barrier(), &["failed"]), "rank {me}");
            drop(d);

            // scatterv: rank 2's buffer is too short for what the root sends it. Nobody
            // waits for rank 2 in this call, so the others complete it; their next
            // collective on the communicator fails, naming rank 2.
            let d = w.dup().unwrap();
            let mut got = vec![0u32; if me == 2 { 1 } else { 2 }];
            let r = d.scatterv_into(&[1, 2, 3, 4, 5, 6], &[2, 2, 2], &[0, 2, 4], &mut got, 0);
            if me == 2 {
                assert!(
                    is_misuse(&r, &["scatterv_into", "rank 2"]),
                    "rank {me}: {r:?}"
                );
                assert!(
                    is_misuse(&d.barrier(), &["earlier collective"]),
                    "rank {me}"
                );
            } else {
                assert!(r.is_ok(), "rank {me}: {r:?}");
                assert_eq!(got, [2 * me as u32 + 1, 2 * me as u32 + 2]);
                let b = d.barrier();
                assert!(failed_peer(&b, "2", "an earlier one"), "rank {me}: {b:?}");
            }
            drop(d);

            // alltoallv: rank 0 expects 2 elements from rank 1, which sends it 1.
            let d = w.dup().unwrap();
            let mut rcounts = [1usize; 3];
            if me == 0 {
                rcounts[1] = 2;
            }
            let mut got = [0u32; 4];
            let r = d.alltoallv_into(
                &[me as u32; 3],
                &[1; 3],
                &[0, 1, 2],
                &mut got,
                &rcounts,
                &[0, 1, 3],
            );
            if me == 0 {
                assert!(
                    is_misuse(
                        &r,
                        &["rank 1 sends 1 elements to rank 0", "rcounts[1] is 2"]
                    ),
                    "rank {me}: {r:?}"
                );
            } else {
                assert!(
                    failed_peer(&r, "0", "failed this collective call part-way"),
                    "rank {me}: {r:?}"
                );
            }
            drop(d);

            world_still_works(w);
        },
    );
}
