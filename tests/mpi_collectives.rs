//! Collectives, `dup` and `split` on the MPI backend under a real `mpirun` at 2, 3 and
//! 4 ranks, against serial references (the rules of `tests/collectives.rs`).
#![cfg(feature = "mpi")]

#[path = "common/comm_rules.rs"]
mod comm_rules;
mod mpi_common;

use mpi_common::{ns, run_mpi_ns};
use shmpi::{DoubleInt, Op, UNDEFINED};

#[test]
fn slice_collectives_match_serial_references() {
    run_mpi_ns("slice_collectives_match_serial_references", &ns(), |w| {
        let (me, n) = (w.rank() as usize, w.size() as usize);
        w.barrier().unwrap();
        for root in 0..n {
            let mut b = vec![if me == root { root as u64 + 7 } else { 0 }; 1000];
            w.bcast_into(&mut b, root as i32).unwrap();
            assert!(b.iter().all(|&x| x == root as u64 + 7));

            let mut all = vec![0i32; if me == root { 3 * n } else { 0 }];
            w.gather_into(&[me as i32; 3], &mut all, root as i32)
                .unwrap();
            if me == root {
                assert_eq!(all, (0..n).flat_map(|r| [r as i32; 3]).collect::<Vec<_>>());
            }
            let src: Vec<u16> = (0..2 * n as u16).collect();
            let mut mine = [0u16; 2];
            w.scatter_into(if me == root { &src } else { &[] }, &mut mine, root as i32)
                .unwrap();
            assert_eq!(mine, [2 * me as u16, 2 * me as u16 + 1]);

            let mut sum = vec![0f64; if me == root { 4 } else { 0 }];
            w.reduce_into(&[me as f64; 4], &mut sum, Op::Sum, root as i32)
                .unwrap();
            if me == root {
                assert_eq!(sum, vec![(n * (n - 1) / 2) as f64; 4]);
            }
        }
        let mut ag = vec![0u8; 2 * n];
        w.allgather_into(&[me as u8, 1], &mut ag).unwrap();
        assert_eq!(ag, (0..n).flat_map(|r| [r as u8, 1]).collect::<Vec<_>>());
        let send: Vec<u32> = (0..n).map(|j| (100 * me + j) as u32).collect();
        let mut recv = vec![0u32; n];
        w.alltoall_into(&send, &mut recv).unwrap();
        assert_eq!(
            recv,
            (0..n).map(|j| (100 * j + me) as u32).collect::<Vec<_>>()
        );

        for (op, want) in [
            (Op::Sum, (1..=n as i64).sum::<i64>()),
            (Op::Prod, (1..=n as i64).product()),
            (Op::Max, n as i64),
            (Op::Min, 1),
            (Op::BitOr, (1..=n as i64).fold(0, |a, b| a | b)),
        ] {
            let mut r = [0i64; 3];
            w.allreduce_into(&[me as i64 + 1; 3], &mut r, op).unwrap();
            assert_eq!(r, [want; 3], "{op:?}");
        }
        // A closure op (not commutative: combined in rank order) and MinLoc pairs.
        let mut cat = [0u64];
        w.allreduce_into(&[me as u64 + 1], &mut cat, |a: &u64, b: &u64| a * 10 + b)
            .unwrap();
        assert_eq!(cat[0], (1..=n as u64).fold(0, |a, b| a * 10 + b));
        let mut best = [DoubleInt::default()];
        let v = DoubleInt {
            value: (me % 2) as f64,
            index: me as i64,
        };
        w.allreduce_into(&[v], &mut best, Op::MaxLoc).unwrap();
        assert_eq!(
            (best[0].value, best[0].index),
            (if n > 1 { 1.0 } else { 0.0 }, if n > 1 { 1 } else { 0 })
        );
        let mut inplace = vec![me as f32; 5];
        w.allreduce_in_place(&mut inplace, Op::Sum).unwrap();
        assert_eq!(inplace, vec![(n * (n - 1) / 2) as f32; 5]);

        let mut s = [0i32];
        w.scan_into(&[me as i32 + 1], &mut s, Op::Sum).unwrap();
        assert_eq!(s[0], ((me + 1) * (me + 2) / 2) as i32);
        let mut ex = [-1i32];
        w.exscan_into(&[me as i32 + 1], &mut ex, Op::Sum).unwrap();
        if me > 0 {
            assert_eq!(ex[0], (me * (me + 1) / 2) as i32);
        }
        let mut blk = [0u32; 2];
        let contrib: Vec<u32> = (0..2 * n as u32).collect();
        w.reduce_scatter_block_into(&contrib, &mut blk, Op::Sum)
            .unwrap();
        assert_eq!(
            blk,
            [2 * me as u32 * n as u32, (2 * me as u32 + 1) * n as u32]
        );

        // v-forms: rank j contributes j + 1 elements.
        let counts: Vec<usize> = (1..=n).collect();
        let displs: Vec<usize> = counts
            .iter()
            .scan(0, |a, &c| {
                let d = *a;
                *a += c;
                Some(d)
            })
            .collect();
        let total = n * (n + 1) / 2;
        let mut av = vec![0u64; total];
        w.allgatherv_into(&vec![me as u64; me + 1], &mut av, &counts, &displs)
            .unwrap();
        assert_eq!(
            av,
            (0..n)
                .flat_map(|j| vec![j as u64; j + 1])
                .collect::<Vec<_>>()
        );
        let mut gv = vec![0u64; if me == 0 { total } else { 0 }];
        w.gatherv_into(&vec![me as u64; me + 1], &mut gv, &counts, &displs, 0)
            .unwrap();
        if me == 0 {
            assert_eq!(gv, av);
        }
        let mut sv = vec![0u64; me + 1];
        w.scatterv_into(&av, &counts, &displs, &mut sv, 0).unwrap();
        assert_eq!(sv, vec![me as u64; me + 1]);
    });
}

#[test]
fn object_collectives_match_serial_references() {
    run_mpi_ns("object_collectives_match_serial_references", &ns(), |w| {
        let (me, n) = (w.rank(), w.size());
        let cfg: String = w
            .bcast(
                if me == 0 {
                    Some("config".to_string())
                } else {
                    None
                },
                0,
            )
            .unwrap();
        assert_eq!(cfg, "config");
        let all = w
            .allgather_bytes(&vec![me as u8; me as usize * 1000])
            .unwrap();
        assert_eq!(
            all,
            (0..n as usize)
                .map(|r| vec![r as u8; r * 1000])
                .collect::<Vec<_>>()
        );
        let at_root = w.gather_bytes(&vec![me as u8; me as usize], 0).unwrap();
        assert_eq!(
            at_root,
            (me == 0).then(|| (0..n as usize)
                .map(|r| vec![r as u8; r])
                .collect::<Vec<_>>())
        );
        for len in [0usize, 5, 100_000] {
            let raw: Vec<u8> = (0..len).map(|k| (k * 7) as u8).collect();
            let got = w
                .bcast_bytes((me == n - 1).then(|| raw.clone()), n - 1)
                .unwrap();
            assert_eq!(got, raw);
        }
        for len in [0usize, 3, 70_000] {
            let parts: Vec<Vec<u8>> = (0..n as usize).map(|r| vec![r as u8; len + r]).collect();
            let got = w.scatter_bytes((me == 0).then_some(&parts[..]), 0).unwrap();
            assert_eq!(got, parts[me as usize], "scatter_bytes of {len}");
        }
        for len in [0usize, 3, 70_000] {
            let mine: Vec<Vec<u8>> = (0..n as usize)
                .map(|j| vec![j as u8 ^ me as u8; len + j])
                .collect();
            let want: Vec<Vec<u8>> = (0..n as usize)
                .map(|r| vec![r as u8 ^ me as u8; len + me as usize])
                .collect();
            assert_eq!(
                w.alltoall_bytes(&mine).unwrap(),
                want,
                "alltoall_bytes of {len}"
            );
        }
        let names = w.gather(&format!("rank{me}"), n - 1).unwrap();
        if me == n - 1 {
            assert_eq!(
                names.unwrap(),
                (0..n).map(|r| format!("rank{r}")).collect::<Vec<_>>()
            );
        } else {
            assert!(names.is_none());
        }
        let all = w.allgather(&vec![me; me as usize]).unwrap();
        assert_eq!(all, (0..n).map(|r| vec![r; r as usize]).collect::<Vec<_>>());
        let parts: Vec<String> = (0..n).map(|r| "x".repeat(r as usize)).collect();
        let mine: String = w
            .scatter(if me == 1 { Some(&parts[..]) } else { None }, 1)
            .unwrap();
        assert_eq!(mine, "x".repeat(me as usize));
        let out: Vec<(i32, i32)> = (0..n).map(|j| (me, j)).collect();
        let back = w.alltoall(&out).unwrap();
        assert_eq!(back, (0..n).map(|j| (j, me)).collect::<Vec<_>>());
        let total: f64 = w.allreduce(&(me as f64), |a, b| a + b).unwrap();
        assert_eq!(total, (n * (n - 1) / 2) as f64);
        let word = w
            .reduce(&me.to_string(), |a, b| format!("{a}{b}"), 0)
            .unwrap();
        if me == 0 {
            assert_eq!(
                word.unwrap(),
                (0..n).map(|r| r.to_string()).collect::<String>()
            );
        }
        assert_eq!(w.scan(&1u32, |a, b| a + b).unwrap(), me as u32 + 1);
        assert_eq!(
            w.exscan(&1u32, |a, b| a + b).unwrap(),
            (me > 0).then_some(me as u32)
        );
        assert_eq!(w.allreduce_op(&(me as i64), Op::Max).unwrap(), n as i64 - 1);
    });
}

#[test]
fn dup_and_split_make_separate_communicators() {
    run_mpi_ns("dup_and_split_make_separate_communicators", &ns(), |w| {
        let (me, n) = (w.rank(), w.size());
        let d = w.dup().unwrap();
        assert_eq!((d.rank(), d.size()), (me, n));
        assert_ne!(d.context_id(), w.context_id());
        // The same tag on the two communicators: each receive gets its own.
        let right = (me + 1) % n;
        let left = (me + n - 1) % n;
        w.send(&1u8, right, 0).unwrap();
        d.send(&2u8, right, 0).unwrap();
        assert_eq!(d.recv::<u8>(left, 0).unwrap(), 2);
        assert_eq!(w.recv::<u8>(left, 0).unwrap(), 1);

        // Even and odd ranks, reversed order by key.
        let half = w.split(me % 2, -me).unwrap().expect("a color");
        let members: Vec<i32> = (0..n).filter(|r| r % 2 == me % 2).rev().collect();
        assert_eq!(half.size() as usize, members.len());
        assert_eq!(half.world_rank(), me);
        assert_eq!(members[half.rank() as usize], me);
        let sum: i32 = half.allreduce(&me, |a, b| a + b).unwrap();
        assert_eq!(sum, members.iter().sum::<i32>());
        assert!(
            w.split(if me == 0 { UNDEFINED } else { 1 }, 0)
                .unwrap()
                .is_none()
                == (me == 0)
        );
        let selfc = shmpi::init().err(); // init twice is an error on this backend too
        assert!(selfc.is_some());
        for _ in 0..200 {
            let x = d.dup().unwrap();
            x.barrier().unwrap();
        }
    });
}

/// The non-blocking collectives on the MPI backend (MPI's own `MPI_I*`): the results
/// of the blocking ones, several in flight at once and completed in another order than
/// started, mixed with point-to-point requests in `wait_any_of`, a reduction MPI has no
/// op for (`MaxLoc` pairs) folded in rank order, and a request dropped unfinished
/// (finished by the runtime before `MPI_Finalize`).
#[test]
fn nonblocking_collectives_match_the_blocking_ones() {
    run_mpi_ns(
        "nonblocking_collectives_match_the_blocking_ones",
        &ns(),
        |w| {
            let (me, n) = (w.rank() as usize, w.size() as usize);
            let barrier = w.ibarrier().unwrap();
            let gathered = w.iallgather_into(vec![me as u32, 7]).unwrap();
            let sum = w.iallreduce_into(vec![me as i64 + 1; 3], Op::Sum).unwrap();
            let best = w
                .iallreduce_into(
                    vec![DoubleInt {
                        value: (me % 2) as f64,
                        index: me as i64,
                    }],
                    Op::MaxLoc,
                )
                .unwrap();
            // Completed in reverse order of starting.
            let best = best.wait().unwrap();
            assert_eq!(
                (best[0].value, best[0].index),
                (if n > 1 { 1.0 } else { 0.0 }, if n > 1 { 1 } else { 0 })
            );
            assert_eq!(sum.wait().unwrap(), vec![(n * (n + 1) / 2) as i64; 3]);
            assert_eq!(
                gathered.wait().unwrap(),
                (0..n).flat_map(|r| [r as u32, 7]).collect::<Vec<_>>()
            );
            assert!(barrier.wait().unwrap().is_empty());
            for root in 0..n {
                let buf = if me == root {
                    vec![root as f64 + 0.5; 100]
                } else {
                    vec![0.0; 100]
                };
                let mut b = w.ibcast_into(buf, root as i32).unwrap();
                let got = loop {
                    if let Some(v) = b.test().unwrap() {
                        break v;
                    }
                };
                assert_eq!(got, vec![root as f64 + 0.5; 100]);
                assert!(
                    b.test().is_err(),
                    "a request whose result was taken is spent"
                );
                let r = w
                    .ireduce_into(vec![me as u16 + 1, 1], Op::Max, root as i32)
                    .unwrap();
                let got = r.wait().unwrap();
                if me == root {
                    assert_eq!(got, [n as u16, 1]);
                } else {
                    assert_eq!(got, [me as u16 + 1, 1], "a non-root gets its part back");
                }
                let g = w.igather_into(vec![me as i32; 2], root as i32).unwrap();
                let send: Vec<u16> = if me == root {
                    (0..3 * n as u16).collect()
                } else {
                    Vec::new()
                };
                let sc = w.iscatter_into(send, vec![0u16; 3], root as i32).unwrap();
                let want: Vec<u16> = (3 * me as u16..3 * me as u16 + 3).collect();
                assert_eq!(sc.wait().unwrap(), want, "iscatter_into");
                let got = g.wait().unwrap();
                if me == root {
                    let want: Vec<i32> = (0..n as i32).flat_map(|r| [r, r]).collect();
                    assert_eq!(got, want, "igather_into");
                } else {
                    assert_eq!(got, [me as i32; 2], "a non-root gets its part back");
                }
            }
            let a2a = w
                .ialltoall_into((0..n).flat_map(|j| [me as u8, j as u8]).collect())
                .unwrap();
            let want: Vec<u8> = (0..n).flat_map(|i| [i as u8, me as u8]).collect();
            assert_eq!(a2a.wait().unwrap(), want, "ialltoall_into");
            let scan = w.iscan_into(vec![me as u64 + 1], Op::Sum).unwrap();
            let ex = w.iexscan_into(vec![me as u64 + 1], Op::Sum).unwrap();
            let want = if me == 0 {
                1
            } else {
                (me * (me + 1) / 2) as u64
            };
            assert_eq!(ex.wait().unwrap(), [want], "iexscan_into");
            let want = ((me + 1) * (me + 2) / 2) as u64;
            assert_eq!(scan.wait().unwrap(), [want], "iscan_into");
            let rsb = w
                .ireduce_scatter_block_into((0..2 * n).map(|k| k as i64).collect(), Op::Sum)
                .unwrap();
            let want: Vec<i64> = (2 * me..2 * me + 2).map(|k| (k * n) as i64).collect();
            assert_eq!(rsb.wait().unwrap(), want, "ireduce_scatter_block_into");
            // wait_any_of over a collective and a receive nobody sends to.
            let mut coll = w.iallreduce_into(vec![1u8], Op::Sum).unwrap();
            let mut recv = w.irecv::<u8>(me as i32, 99).unwrap();
            let i = shmpi::wait_any_of(&mut [&mut recv, &mut coll]).unwrap();
            assert_eq!(i, 1);
            assert_eq!(coll.wait().unwrap(), [n as u8]);
            assert!(recv.cancel().unwrap());
            // Dropped unfinished: the runtime finishes it before MPI_Finalize.
            drop(w.iallgather_into(vec![0u64; 1 << 16]).unwrap());
            w.barrier().unwrap();
        },
    );
}

/// Collectives of no bytes (MPI allows a count of 0): an empty slice of bytes is not
/// taken for `MPI_IN_PLACE` (Open MPI's is the address 1, which is where an empty
/// `&[u8]` points), so each is a call of zero elements, as on the shared-memory backend.
#[test]
fn collectives_of_no_bytes_are_calls_of_zero_elements() {
    run_mpi_ns(
        "collectives_of_no_bytes_are_calls_of_zero_elements",
        &ns(),
        |w| {
            let mut none: [u8; 0] = [];
            w.bcast_into(&mut none, 0).unwrap();
            let mut all: Vec<u8> = Vec::new();
            w.allgather_into(&[] as &[u8], &mut all).unwrap();
            w.alltoall_into(&[] as &[u8], &mut all).unwrap();
            let got = w.bcast_bytes((w.rank() == 0).then(Vec::new), 0).unwrap();
            assert!(got.is_empty());
            let v = w.ibcast_into(Vec::<u8>::new(), 0).unwrap().wait().unwrap();
            assert!(v.is_empty());
            let v = w.iallgather_into(Vec::<u8>::new()).unwrap().wait().unwrap();
            assert!(v.is_empty());
            w.barrier().unwrap();
        },
    );
}

/// The non-blocking `v` forms on the MPI backend (`MPI_Igatherv`, `MPI_Iscatterv`,
/// `MPI_Iallgatherv`, `MPI_Ialltoallv`): all in flight at once, waited in reverse order,
/// with counts of zero and gaps between the blocks that keep their values; one dropped
/// unfinished (its counts stay alive until MPI has finished it).
#[test]
fn nonblocking_v_forms_place_every_block() {
    run_mpi_ns("nonblocking_v_forms_place_every_block", &ns(), |w| {
        let (me, n) = (w.rank() as usize, w.size() as usize);
        let count = |j: usize| (2 * j + 1) % 4;
        let counts: Vec<usize> = (0..n).map(count).collect();
        // Block j at 3 * j plus the counts before it: two-element gaps stay -1.
        let displs: Vec<usize> = (0..n)
            .map(|j| 3 * j + counts[..j].iter().sum::<usize>())
            .collect();
        let span = displs[n - 1] + counts[n - 1] + 2;
        let val = |j: usize, k: usize| (j * 100 + k) as i32;
        let mut whole = vec![-1i32; span];
        for j in 0..n {
            for k in 0..counts[j] {
                whole[displs[j] + k] = val(j, k);
            }
        }
        let mine: Vec<i32> = (0..counts[me]).map(|k| val(me, k)).collect();
        for root in 0..n {
            let recv = if me == root { vec![-1; span] } else { vec![] };
            let gv = w
                .igatherv_into(mine.clone(), recv, &counts, &displs, root as i32)
                .unwrap();
            let send = if me == root { whole.clone() } else { vec![] };
            let sv = w
                .iscatterv_into(send, &counts, &displs, vec![0; counts[me]], root as i32)
                .unwrap();
            let agv = w
                .iallgatherv_into(mine.clone(), vec![-1; span], &counts, &displs)
                .unwrap();
            // Rank i sends count(i + j) elements i * 1000 + j * 10 + k to rank j.
            let c = |i: usize, j: usize| count(i + j);
            let scounts: Vec<usize> = (0..n).map(|j| c(me, j)).collect();
            let sdispls: Vec<usize> = (0..n).map(|j| scounts[..j].iter().sum()).collect();
            let send: Vec<i32> = (0..n)
                .flat_map(|j| (0..c(me, j)).map(move |k| (me * 1000 + j * 10 + k) as i32))
                .collect();
            let rcounts: Vec<usize> = (0..n).map(|i| c(i, me)).collect();
            let rdispls: Vec<usize> = (0..n)
                .map(|i| 2 * i + rcounts[..i].iter().sum::<usize>())
                .collect();
            let rspan = rdispls[n - 1] + rcounts[n - 1] + 1;
            let a2v = w
                .ialltoallv_into(
                    send,
                    &scounts,
                    &sdispls,
                    vec![-1; rspan],
                    &rcounts,
                    &rdispls,
                )
                .unwrap();
            let mut want = vec![-1i32; rspan];
            for i in 0..n {
                for k in 0..rcounts[i] {
                    want[rdispls[i] + k] = (i * 1000 + me * 10 + k) as i32;
                }
            }
            assert_eq!(a2v.wait().unwrap(), want, "ialltoallv_into");
            assert_eq!(agv.wait().unwrap(), whole, "iallgatherv_into");
            assert_eq!(sv.wait().unwrap(), mine, "iscatterv_into");
            let got = gv.wait().unwrap();
            if me == root {
                assert_eq!(got, whole, "igatherv_into at the root");
            } else {
                assert!(got.is_empty(), "a non-root gets its recv back");
            }
        }
        // Dropped unfinished: the runtime finishes it before MPI_Finalize.
        drop(
            w.iallgatherv_into(mine.clone(), vec![0; span], &counts, &displs)
                .unwrap(),
        );
        // Bad counts are refused before MPI is called, as on the segment.
        let e = w
            .iallgatherv_into(mine, vec![], &counts, &displs)
            .unwrap_err();
        assert!(
            e.class() == shmpi::ErrorClass::Count && e.to_string().contains("does not fit"),
            "{e}"
        );
        w.barrier().unwrap();
    });
}

/// Intercommunicators on the MPI backend (`MPI_Intercomm_create`, `MPI_Intercomm_merge`,
/// `MPI_Comm_dup`): the rules the shared segment follows (`tests/intercomm.rs`).
#[test]
fn intercommunicators_follow_mpis_rules() {
    run_mpi_ns(
        "intercommunicators_follow_mpis_rules",
        &ns(),
        comm_rules::intercomm_rules,
    );
}

/// `create_group` on the MPI backend (`MPI_Comm_create_group`): the rules the shared
/// segment follows (`tests/intercomm.rs`).
#[test]
fn create_group_involves_the_members_only() {
    run_mpi_ns(
        "create_group_involves_the_members_only",
        &ns(),
        comm_rules::create_group_rules,
    );
}
