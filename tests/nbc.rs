//! Non-blocking collectives through the real launcher, checked against MPI's rules
//! (MPI 4.1 §6.12): the results equal serial references, computation overlaps a
//! pending collective, several are in flight at once on one communicator and complete
//! in any order, they mix with point-to-point requests in `wait_any_of`, and bad
//! arguments are refused before anything is sent.

mod common;

use common::{assert_success, is_child, launch_self, run_ranks};
use shmpi::{AnyRequest, Communicator, Error, ErrorClass, Op, wait_any_of};

/// Rank `r`'s part for the reductions.
fn part(r: usize, len: usize) -> Vec<i64> {
    (0..len).map(|i| (r * 1000 + i) as i64 - 7).collect()
}

/// Every rank starts an iallreduce, computes while calling `test` now and then, then
/// waits; the sum and the max match serial references.
fn overlap(w: &Communicator) {
    let (me, n) = (w.rank() as usize, w.size() as usize);
    let len = 1000;
    let mut sum = w.iallreduce_into(part(me, len), Op::Sum).unwrap();
    let max = w
        .iallreduce_into(vec![me as f64 * 0.5; 3], Op::Max)
        .unwrap();
    let mut acc = 0u64;
    let mut early = None;
    for i in 0..200_000u64 {
        acc = acc.wrapping_mul(6364136223846793005).wrapping_add(i);
        if i % 1000 == 0 && early.is_none() {
            early = sum.test().unwrap();
        }
    }
    assert_ne!(acc, 1);
    let got = match early {
        Some(v) => v,
        None => sum.wait().unwrap(),
    };
    let want: Vec<i64> = (0..len)
        .map(|i| (0..n).map(|r| part(r, len)[i]).sum())
        .collect();
    assert_eq!(got, want);
    assert_eq!(max.wait().unwrap(), vec![(n - 1) as f64 * 0.5; 3]);
}

#[test]
fn computation_overlaps_an_iallreduce_at_8_ranks() {
    run_ranks("computation_overlaps_an_iallreduce_at_8_ranks", 8, overlap);
}

#[test]
fn computation_overlaps_an_iallreduce_at_16_ranks() {
    run_ranks(
        "computation_overlaps_an_iallreduce_at_16_ranks",
        16,
        overlap,
    );
}

/// Every kind in flight at once, waited in the reverse order of their starts, twice
/// (the second round reuses the communicator after the first).
fn in_flight(w: &Communicator) {
    let (me, n) = (w.rank() as usize, w.size() as usize);
    for round in 0..2 {
        let root = ((round + 1) % n) as i32;
        let barrier = w.ibarrier().unwrap();
        let sum = w.iallreduce_into(part(me, 5), Op::Sum).unwrap();
        let bbuf = if me == root as usize {
            vec![round as u16 + 3; 4]
        } else {
            vec![0; 4]
        };
        let bcast = w.ibcast_into(bbuf, root).unwrap();
        let gather = w.iallgather_into(vec![me as u32, me as u32 * 2]).unwrap();
        let reduce = w
            .ireduce_into(vec![me as u64 + 1; 2], Op::Prod, root)
            .unwrap();
        let g = w.igather_into(vec![me as i16; 3], root).unwrap();
        let sbuf: Vec<u8> = if me == root as usize {
            (0..2 * n).map(|i| i as u8 ^ round as u8).collect()
        } else {
            Vec::new()
        };
        let sc = w.iscatter_into(sbuf, vec![0u8; 2], root).unwrap();
        let a2a = w
            .ialltoall_into((0..n).flat_map(|j| [me as u32, j as u32]).collect())
            .unwrap();
        let none = w.ialltoall_into(Vec::<u64>::new()).unwrap();
        let scan = w.iscan_into(vec![me as i64 + 1, 2], Op::Sum).unwrap();
        let exscan = w.iexscan_into(vec![me as u32 % 3 + 1], Op::Prod).unwrap();
        let maxscan = w.iscan_into(vec![(me % 3) as f32], Op::Max).unwrap();
        // Rank j's block of the sum: j + 1 elements (rank r contributes r + k at k).
        let counts: Vec<usize> = (1..=n).collect();
        let len: usize = counts.iter().sum();
        let rs = w
            .ireduce_scatter_into(
                (0..len).map(|k| (me + k) as u64).collect(),
                &counts,
                Op::Sum,
            )
            .unwrap();
        let rsb = w
            .ireduce_scatter_block_into(vec![me as i32 + 1; 2 * n], Op::Max)
            .unwrap();

        assert_eq!(
            rsb.wait().unwrap(),
            [n as i32; 2],
            "ireduce_scatter_block_into"
        );
        let start = me * (me + 1) / 2;
        let want: Vec<u64> = (start..start + me + 1)
            .map(|k| (0..n).map(|r| (r + k) as u64).sum())
            .collect();
        assert_eq!(rs.wait().unwrap(), want, "ireduce_scatter_into");
        let m = (0..=me).map(|r| (r % 3) as f32).fold(f32::MIN, f32::max);
        assert_eq!(maxscan.wait().unwrap(), [m], "iscan_into, Max");
        let got = exscan.wait().unwrap();
        if me == 0 {
            assert_eq!(got, [1], "rank 0 of iexscan_into gets its part back");
        } else {
            let want: u32 = (0..me as u32).map(|r| r % 3 + 1).product();
            assert_eq!(got, [want], "iexscan_into");
        }
        let s1 = (me * (me + 1) / 2 + me + 1) as i64;
        assert_eq!(
            scan.wait().unwrap(),
            [s1, 2 * (me as i64 + 1)],
            "iscan_into"
        );
        assert!(
            none.wait().unwrap().is_empty(),
            "an all-to-all of no blocks"
        );
        let want: Vec<u32> = (0..n).flat_map(|i| [i as u32, me as u32]).collect();
        assert_eq!(a2a.wait().unwrap(), want, "ialltoall_into");
        let want: Vec<u8> = (2 * me..2 * me + 2)
            .map(|i| i as u8 ^ round as u8)
            .collect();
        assert_eq!(sc.wait().unwrap(), want, "iscatter_into");
        let got = g.wait().unwrap();
        if me == root as usize {
            let want: Vec<i16> = (0..n).flat_map(|r| [r as i16; 3]).collect();
            assert_eq!(got, want, "igather_into at the root");
        } else {
            assert_eq!(
                got, [me as i16; 3],
                "a non-root of igather_into gets its part back"
            );
        }
        let got = reduce.wait().unwrap();
        if me == root as usize {
            let p: u64 = (1..=n as u64).product();
            assert_eq!(got, [p, p]);
        } else {
            assert_eq!(got, [me as u64 + 1; 2], "a non-root gets its part back");
        }
        let want: Vec<u32> = (0..n as u32).flat_map(|r| [r, 2 * r]).collect();
        assert_eq!(gather.wait().unwrap(), want);
        assert_eq!(bcast.wait().unwrap(), [round as u16 + 3; 4]);
        let want: Vec<i64> = (0..5)
            .map(|i| (0..n).map(|r| part(r, 5)[i]).sum())
            .collect();
        assert_eq!(sum.wait().unwrap(), want);
        assert!(barrier.wait().unwrap().is_empty());
    }
}

#[test]
fn several_in_flight_at_1_rank() {
    run_ranks("several_in_flight_at_1_rank", 1, in_flight);
}

#[test]
fn several_in_flight_at_2_ranks() {
    run_ranks("several_in_flight_at_2_ranks", 2, in_flight);
}

#[test]
fn several_in_flight_at_3_ranks() {
    run_ranks("several_in_flight_at_3_ranks", 3, in_flight);
}

#[test]
fn several_in_flight_at_4_ranks() {
    run_ranks("several_in_flight_at_4_ranks", 4, in_flight);
}

#[test]
fn several_in_flight_at_8_ranks() {
    run_ranks("several_in_flight_at_8_ranks", 8, in_flight);
}

#[test]
fn several_in_flight_at_16_ranks() {
    run_ranks("several_in_flight_at_16_ranks", 16, in_flight);
}

/// An ibarrier, an iallreduce and a ring receive/send in `wait_any_of` until all have
/// completed; the point-to-point messages use tags equal to the collectives' own
/// sequence numbers, which must not confuse them.
fn mixed(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let (right, left) = ((me + 1) % n, (me + n - 1) % n);
    let mut barrier = w.ibarrier().unwrap();
    let mut recv = w.irecv_into(vec![0i32; 2], left, 0).unwrap();
    let mut sum = w.iallreduce_into(vec![me, 1], Op::Sum).unwrap();
    let mut send = w.isend_vec(vec![me, -me], right, 0).unwrap();
    let mut done = [false; 4];
    let (mut got_sum, mut got_recv) = (None, None);
    while done.iter().any(|d| !d) {
        let mut all: Vec<&mut dyn AnyRequest> = vec![&mut barrier, &mut recv, &mut sum, &mut send];
        // Completed ones are spent: wait_any_of skips them.
        let i = wait_any_of(&mut all).unwrap();
        assert!(!done[i], "request {i} reported after it was collected");
        // A collective may need another round (the root waits on one part after
        // another); a point-to-point request is complete.
        done[i] = match i {
            0 => barrier
                .test()
                .unwrap()
                .inspect(|v| assert!(v.is_empty()))
                .is_some(),
            1 => {
                got_recv = Some(recv.test().unwrap().unwrap().0);
                true
            }
            2 => {
                got_sum = sum.test().unwrap();
                got_sum.is_some()
            }
            _ => send.test().unwrap().is_some(),
        };
        assert!(
            done[i] || i == 0 || i == 2,
            "a point-to-point request completes"
        );
    }
    assert_eq!(got_recv.unwrap(), [left, -left]);
    assert_eq!(got_sum.unwrap(), [n * (n - 1) / 2, n]);
}

#[test]
fn mixed_with_point_to_point_at_1_rank() {
    run_ranks("mixed_with_point_to_point_at_1_rank", 1, mixed);
}

#[test]
fn mixed_with_point_to_point_at_2_ranks() {
    run_ranks("mixed_with_point_to_point_at_2_ranks", 2, mixed);
}

#[test]
fn mixed_with_point_to_point_at_3_ranks() {
    run_ranks("mixed_with_point_to_point_at_3_ranks", 3, mixed);
}

#[test]
fn mixed_with_point_to_point_at_8_ranks() {
    run_ranks("mixed_with_point_to_point_at_8_ranks", 8, mixed);
}

/// A root out of range and an op that does not apply to the type are refused before
/// anything is sent: the next collectives still match at every rank.
#[test]
fn bad_roots_and_ops_are_refused_before_anything_is_sent() {
    run_ranks(
        "bad_roots_and_ops_are_refused_before_anything_is_sent",
        4,
        |w| {
            let e = w.ibcast_into(vec![1u8], 4).unwrap_err();
            assert_eq!(e.class(), ErrorClass::Root, "{e}");
            let e = w.ireduce_into(vec![1u8], Op::Sum, -1).unwrap_err();
            assert_eq!(e.class(), ErrorClass::Root, "{e}");
            let e = w.iallreduce_into(vec![1.0f64], Op::BitXor).unwrap_err();
            assert_eq!(e.class(), ErrorClass::Op, "{e}");
            let e = w.ireduce_into(vec![1.0f32], Op::BitAnd, 0).unwrap_err();
            assert_eq!(e.class(), ErrorClass::Op, "{e}");
            let e = w.igather_into(vec![1u8], 4).unwrap_err();
            assert_eq!(e.class(), ErrorClass::Root, "{e}");
            let e = w.iscatter_into(vec![1u8; 4], vec![0u8; 2], -2).unwrap_err();
            assert_eq!(e.class(), ErrorClass::Root, "{e}");
            // A scatter's root must hold a block per rank; an all-to-all's send, blocks.
            if w.rank() == 0 {
                let e = w.iscatter_into(vec![1u8; 7], vec![0u8; 2], 0).unwrap_err();
                assert!(
                    e.class() == ErrorClass::Count && e.to_string().contains("not 4 blocks of 2"),
                    "{e}"
                );
            }
            let e = w.iscan_into(vec![1.0f64], Op::BitOr).unwrap_err();
            assert_eq!(e.class(), ErrorClass::Op, "{e}");
            let e = w
                .ireduce_scatter_into(vec![1u8; 5], &[1, 1, 1, 1], Op::Sum)
                .unwrap_err();
            assert!(
                e.class() == ErrorClass::Count && e.to_string().contains("summing to 4"),
                "{e}"
            );
            let e = w
                .ireduce_scatter_block_into(vec![1u8; 6], Op::Sum)
                .unwrap_err();
            assert!(
                e.class() == ErrorClass::Count && e.to_string().contains("not 4 blocks"),
                "{e}"
            );
            let e = w.ialltoall_into(vec![1u8; 6]).unwrap_err();
            assert!(
                e.class() == ErrorClass::Count && e.to_string().contains("ialltoall_into"),
                "{e}"
            );
            // Only rank 2 is refused: the collectives after it still match.
            if w.rank() == 2 {
                assert!(w.ibcast_into(vec![0u8], 9).is_err());
            }
            let got = w.iallreduce_into(vec![1u8], Op::Sum).unwrap().wait();
            assert_eq!(got.unwrap(), [4]);
        },
    );
}

/// Lengths that differ between ranks (erroneous in MPI) fail at every rank of an
/// iallreduce and an iallgather instead of hanging (and where the odd part arrives, in
/// an iscatter, an ialltoall, an ireduce and an ibcast), whether the odd part is one element
/// longer (rank 0 sees its length) or much longer (rank 0's receive is truncated); the
/// communicator still works afterwards.
#[test]
fn differing_lengths_fail_everywhere_without_hanging() {
    run_ranks(
        "differing_lengths_fail_everywhere_without_hanging",
        4,
        |w| {
            let me = w.rank();
            for extra in [1usize, 5] {
                let len = if me == 2 { 3 + extra } else { 3 };
                let e = w
                    .iallreduce_into(vec![1i32; len], Op::Sum)
                    .unwrap()
                    .wait()
                    .unwrap_err();
                assert!(
                    matches!(e.class(), ErrorClass::Count | ErrorClass::Truncate),
                    "{e}"
                );
                let e = w
                    .iallgather_into(vec![1u8; len])
                    .unwrap()
                    .wait()
                    .unwrap_err();
                assert!(
                    matches!(e.class(), ErrorClass::Count | ErrorClass::Truncate),
                    "{e}"
                );
            }
            // A shorter part at a rank of ireduce fails at the root only.
            let len = if me == 1 { 1 } else { 3 };
            let r = w.ireduce_into(vec![1i32; len], Op::Sum, 0).unwrap().wait();
            assert_eq!(r.is_err(), me == 0, "{r:?}");
            // A rank of iscatter whose block length differs from the root's fails; an
            // all-to-all whose rank 3 sends blocks of another length fails at every rank
            // (rank 3 gets the others' blocks of another length too).
            let len = if me == 1 { 3 } else { 2 };
            let send = if me == 0 { vec![5u8; 8] } else { Vec::new() };
            let r = w.iscatter_into(send, vec![0u8; len], 0).unwrap().wait();
            assert_eq!(r.is_err(), me == 1, "{r:?}");
            let len = if me == 3 { 2 } else { 1 };
            let r = w.ialltoall_into(vec![me as u8; 4 * len]).unwrap().wait();
            assert!(
                matches!(&r, Err(e) if matches!(e.class(), ErrorClass::Count | ErrorClass::Truncate)),
                "{r:?}"
            );
            // A rank of ibcast whose length differs from the root's fails.
            let len = if me == 3 { 2 } else { 3 };
            let r = w.ibcast_into(vec![7u8; len], 0).unwrap().wait();
            assert_eq!(r.is_err(), me == 3, "{r:?}");
            let got = w.iallreduce_into(vec![2i32; 2], Op::Sum).unwrap().wait();
            assert_eq!(got.unwrap(), [8, 8]);
        },
    );
}

/// A spent request is an error; a request forgotten before it completes never keeps
/// the others from completing theirs.
#[test]
fn spent_requests_are_errors() {
    run_ranks("spent_requests_are_errors", 3, |w| {
        let mut r = w.iallgather_into(vec![w.rank()]).unwrap();
        let all = loop {
            if let Some(v) = r.test().unwrap() {
                break v;
            }
        };
        assert_eq!(all, [0, 1, 2]);
        assert_eq!(r.test().unwrap_err().class(), ErrorClass::Request);
        let mut any: Vec<&mut dyn AnyRequest> = vec![&mut r];
        assert!(wait_any_of(&mut any).is_err(), "no pending request");
    });
}

/// A rank that leaves without taking part fails the collective at every other rank
/// with PeerFailed naming it: the root notices and tells the others.
#[test]
fn a_rank_that_leaves_fails_the_collective_everywhere() {
    run_ranks(
        "a_rank_that_leaves_fails_the_collective_everywhere",
        3,
        |w| {
            w.barrier().unwrap();
            if w.rank() == 2 {
                std::process::exit(0); // leaves without finalizing
            }
            let e = w
                .iallreduce_into(vec![1u32; 4], Op::Sum)
                .unwrap()
                .wait()
                .unwrap_err();
            assert!(matches!(e, Error::PeerFailed { rank: 2, .. }), "{e}");
            let e = w.ibarrier().unwrap().wait().unwrap_err();
            assert!(matches!(e, Error::PeerFailed { rank: 2, .. }), "{e}");
        },
    );
}

/// A root that leaves fails the collective at the ranks waiting for its reply.
#[test]
fn a_root_that_leaves_fails_the_collective() {
    run_ranks("a_root_that_leaves_fails_the_collective", 3, |w| {
        w.barrier().unwrap();
        if w.rank() == 0 {
            std::process::exit(0);
        }
        let e = w.iallgather_into(vec![1u8]).unwrap().wait().unwrap_err();
        assert!(matches!(e, Error::PeerFailed { rank: 0, .. }), "{e}");
    });
}

/// Forgetting requests (every kind, at every rank) leaves the runtime writing only into
/// buffers it owns, and the collectives started after them still match and complete.
fn forgotten(w: &Communicator) {
    let me = w.rank();
    let n = w.size();
    std::mem::forget(w.iallgather_into(vec![me; 1000]).unwrap());
    std::mem::forget(w.ibcast_into(vec![me as u8; 64], n - 1).unwrap());
    std::mem::forget(w.ibarrier().unwrap());
    let mut mine = vec![me as i64; 100];
    let sum = w.iallreduce_into(mine.clone(), Op::Sum).unwrap();
    mine.fill(-1); // the request owns its own buffer
    let want = (n * (n - 1) / 2) as i64;
    assert_eq!(sum.wait().unwrap(), vec![want; 100]);
    w.barrier().unwrap();
}

#[test]
fn forgotten_requests_do_not_disturb_the_next_ones_at_1_rank() {
    run_ranks(
        "forgotten_requests_do_not_disturb_the_next_ones_at_1_rank",
        1,
        forgotten,
    );
}

#[test]
fn forgotten_requests_do_not_disturb_the_next_ones_at_4_ranks() {
    run_ranks(
        "forgotten_requests_do_not_disturb_the_next_ones_at_4_ranks",
        4,
        forgotten,
    );
}

/// Rank `j`'s count in the `v` forms: some ranks send nothing, the others differ.
fn vcount(j: usize) -> usize {
    (j * 2 + 1) % 4
}

/// The `v` forms (MPI 4.1 §6.12.3-6), all four in flight at once with an iallreduce
/// between them, waited in the reverse order of their starts, twice, with each rank's
/// block at a displacement of its own (gaps between the blocks keep their old values),
/// and counts of zero.
fn v_forms(w: &Communicator) {
    let (me, n) = (w.rank() as usize, w.size() as usize);
    let counts: Vec<usize> = (0..n).map(vcount).collect();
    // Block j starts two elements after block j - 1 ends: the gaps must stay -1.
    let displs: Vec<usize> = (0..n)
        .scan(0, |at, j| {
            let d = *at + 2;
            *at = d + counts[j];
            Some(d)
        })
        .collect();
    let span = displs[n - 1] + counts[n - 1] + 1;
    // The value of element k of rank j's block (in every form).
    let val = |j: usize, k: usize| (j * 100 + k) as i32;
    // A receive vector holding every rank's block at its place, -1 elsewhere.
    let placed = |blocks: &dyn Fn(usize) -> Vec<i32>| {
        let mut v = vec![-1i32; span];
        for j in 0..n {
            v[displs[j]..displs[j] + counts[j]].copy_from_slice(&blocks(j));
        }
        v
    };
    for round in 0..2 {
        let root = (round + n - 1) % n;
        let mine: Vec<i32> = (0..counts[me]).map(|k| val(me, k)).collect();
        let gv = w
            .igatherv_into(
                mine.clone(),
                if me == root { vec![-1; span] } else { vec![] },
                &counts,
                &displs,
                root as i32,
            )
            .unwrap();
        let whole = placed(&|j| (0..counts[j]).map(|k| val(j, k)).collect());
        let sv = w
            .iscatterv_into(
                if me == root { whole.clone() } else { vec![] },
                &counts,
                &displs,
                vec![0; counts[me]],
                root as i32,
            )
            .unwrap();
        let sum = w.iallreduce_into(vec![me as u64; 3], Op::Sum).unwrap();
        let agv = w
            .iallgatherv_into(mine.clone(), vec![-1; span], &counts, &displs)
            .unwrap();
        // All-to-all: rank i sends vcount(i + j) elements to rank j, each i * 1000 + j
        // * 10 + k, packed in rank order; it receives them at the same gapped places.
        let c = |i: usize, j: usize| vcount(i + j);
        let scounts: Vec<usize> = (0..n).map(|j| c(me, j)).collect();
        let sdispls: Vec<usize> = (0..n).map(|j| (0..j).map(|l| c(me, l)).sum()).collect();
        let send: Vec<i32> = (0..n)
            .flat_map(|j| (0..c(me, j)).map(move |k| (me * 1000 + j * 10 + k) as i32))
            .collect();
        let rcounts: Vec<usize> = (0..n).map(|i| c(i, me)).collect();
        let rdispls: Vec<usize> = (0..n)
            .map(|i| 3 * i + (0..i).map(|l| c(l, me)).sum::<usize>())
            .collect();
        let rspan = rdispls[n - 1] + rcounts[n - 1] + 2;
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
        assert_eq!(a2v.wait().unwrap(), want, "ialltoallv_into, round {round}");
        assert_eq!(
            agv.wait().unwrap(),
            whole,
            "iallgatherv_into, round {round}"
        );
        let s = (n * (n - 1) / 2) as u64;
        assert_eq!(sum.wait().unwrap(), [s; 3], "iallreduce_into between them");
        assert_eq!(sv.wait().unwrap(), mine, "iscatterv_into, round {round}");
        let got = gv.wait().unwrap();
        if me == root {
            assert_eq!(got, whole, "igatherv_into at the root, round {round}");
        } else {
            assert!(
                got.is_empty(),
                "a non-root of igatherv_into gets its recv back"
            );
        }
    }
}

#[test]
fn v_forms_at_1_rank() {
    run_ranks("v_forms_at_1_rank", 1, v_forms);
}

#[test]
fn v_forms_at_2_ranks() {
    run_ranks("v_forms_at_2_ranks", 2, v_forms);
}

#[test]
fn v_forms_at_3_ranks() {
    run_ranks("v_forms_at_3_ranks", 3, v_forms);
}

#[test]
fn v_forms_at_5_ranks() {
    run_ranks("v_forms_at_5_ranks", 5, v_forms);
}

#[test]
fn v_forms_at_8_ranks() {
    run_ranks("v_forms_at_8_ranks", 8, v_forms);
}

/// The `v` forms' counts and displacements are checked where MPI reads them, before
/// anything is sent; a part that is not its count fails where it arrives (MPI calls it
/// erroneous) instead of hanging, and the communicator works afterwards.
#[test]
fn v_forms_refuse_bad_counts() {
    run_ranks("v_forms_refuse_bad_counts", 4, |w| {
        let me = w.rank() as usize;
        // A wrong count list, block or length is MPI's ERR_COUNT.
        let usage = |r: shmpi::Result<shmpi::CollRequest<u8>>, what: &str| match r {
            Err(e) if e.class() == ErrorClass::Count => {
                assert!(e.to_string().contains(what), "{e}")
            }
            Err(e) => panic!("expected a count error naming {what}, got {e}"),
            Ok(_) => panic!("expected a count error naming {what}"),
        };
        let ones = [1usize; 4];
        let at = [0usize, 1, 2, 3];
        // Too few counts, a block past the end, the root's own block of another length.
        if me == 0 {
            usage(
                w.igatherv_into(vec![1], vec![0; 4], &ones[..3], &at, 0),
                "one entry per rank",
            );
            usage(
                w.igatherv_into(vec![1], vec![0; 3], &ones, &at, 0),
                "does not fit",
            );
            usage(
                w.igatherv_into(vec![1, 2], vec![0; 4], &ones, &at, 0),
                "its count is 1",
            );
            usage(
                w.iscatterv_into(vec![0; 4], &ones, &[0, 1, 2, 4], vec![0], 0),
                "does not fit",
            );
            usage(
                w.iscatterv_into(vec![0; 4], &ones, &at, vec![], 0),
                "its count is 1",
            );
        }
        usage(
            w.iallgatherv_into(vec![1], vec![0; 4], &ones, &at[..2]),
            "one entry per rank",
        );
        usage(
            w.iallgatherv_into(vec![], vec![0; 4], &ones, &at),
            "its count is 1",
        );
        usage(
            w.ialltoallv_into(
                vec![0; 4],
                &ones,
                &at,
                vec![0; 4],
                &[1, 1, 1, 1],
                &[0, 1, 2, 9],
            ),
            "does not fit",
        );
        let mut two = ones;
        two[me] = 2;
        usage(
            w.ialltoallv_into(
                vec![0; 5],
                &two,
                &[0, 2, 3, 4].map(|d| if me == 0 { d } else { d.min(3) }),
                vec![0; 4],
                &ones,
                &at,
            ),
            "",
        );
        let e = w.igatherv_into(vec![1u8], vec![], &[], &[], 4).unwrap_err();
        assert_eq!(e.class(), ErrorClass::Root, "{e}");
        // Rank 2 sends two elements where every count says one: the root of the gatherv
        // fails, and every rank of the allgatherv (rank 0 finds it and tells the others).
        let len = if me == 2 { 2 } else { 1 };
        let recv = if me == 1 { vec![0u8; 4] } else { vec![] };
        let r = w
            .igatherv_into(vec![7u8; len], recv, &ones, &at, 1)
            .unwrap()
            .wait();
        assert_eq!(r.is_err(), me == 1, "{r:?}");
        if let Err(e) = r {
            assert!(
                matches!(e.class(), ErrorClass::Count | ErrorClass::Truncate),
                "{e}"
            );
        }
        let counts = if me == 2 { [1, 1, 2, 1] } else { ones };
        let r = w
            .iallgatherv_into(vec![7u8; counts[me]], vec![0u8; 5], &counts, &at)
            .unwrap()
            .wait();
        assert!(
            matches!(&r, Err(e) if matches!(e.class(), ErrorClass::Count | ErrorClass::Truncate)),
            "{r:?}"
        );
        let got = w.iallreduce_into(vec![2i32; 2], Op::Sum).unwrap().wait();
        assert_eq!(got.unwrap(), [8, 8]);
    });
}

/// The rooted non-blocking collectives under test, by name.
const ROOTED: [&str; 6] = [
    "ibcast_into",
    "igather_into",
    "ireduce_into",
    "iscatter_into",
    "igatherv_into",
    "iscatterv_into",
];

/// Starts and waits for the rooted collective `call` on `c` with `root`, one byte per
/// rank (rank `j`'s byte is `j + 1`).
fn rooted(c: &Communicator, call: &str, root: i32) -> shmpi::Result<Vec<u8>> {
    let (me, n) = (c.rank(), c.size() as usize);
    let mine = vec![me as u8 + 1];
    let all: Vec<u8> = (1..=n as u8).collect();
    let (ones, displs) = (vec![1; n], (0..n).collect::<Vec<_>>());
    match call {
        "ibcast_into" => c.ibcast_into(if me == root { vec![42] } else { vec![0] }, root)?,
        "igather_into" => c.igather_into(mine, root)?,
        "ireduce_into" => c.ireduce_into(mine, Op::Sum, root)?,
        "iscatter_into" => c.iscatter_into(if me == root { all } else { vec![] }, vec![0], root)?,
        "igatherv_into" => {
            let recv = if me == root { vec![0; n] } else { vec![] };
            c.igatherv_into(mine, recv, &ones, &displs, root)?
        }
        _ => {
            let send = if me == root { all } else { vec![] };
            c.iscatterv_into(send, &ones, &displs, vec![0], root)?
        }
    }
    .wait()
}

/// The root a rank passes, from its rank and the communicator's size.
type RootOf = fn(i32, i32) -> i32;

/// MPI 4.1 §6.12: the non-blocking collectives follow the rules of the blocking ones
/// (§6.1), so every rank of a rooted one passes the same root. shmpi's rule for a
/// program that breaks it is that of the blocking ones: every rank fails, with an
/// error naming the mismatch, never a hang and never data of another call. Each
/// pattern of roots (two ranks that each take themselves for the root, one rank naming
/// another root than the rest, every rank its own root) fails every rooted call at
/// every rank, and afterwards the communicator still runs matching calls. The
/// launcher's timeout is short, so a hang fails in seconds.
fn mismatched_nonblocking_roots(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let patterns: [(&str, RootOf); 4] = [
        ("rank 0 says 0, the others 1", |r, _| i32::from(r != 0)),
        ("the last rank says 1, the others 0", |r, n| {
            i32::from(r == n - 1)
        }),
        ("every rank says itself", |r, _| r),
        ("rank 0 says the last rank, the others 0", |r, n| {
            if r == 0 { n - 1 } else { 0 }
        }),
    ];
    for (what, root_of) in &patterns {
        for call in ROOTED {
            let c = w.dup().unwrap();
            let r = rooted(&c, call, root_of(me, n));
            match r {
                Err(e)
                    if e.class() == ErrorClass::Root
                        && e.to_string().contains("mismatched")
                        && e.to_string().contains(call) =>
                {
                    let m = e.to_string();
                    let mut roots: Vec<&str> = m
                        .split("root=")
                        .skip(1)
                        .map(|s| s.split(|ch: char| !ch.is_ascii_digit()).next().unwrap())
                        .collect();
                    roots.dedup();
                    assert!(roots.len() >= 2, "rank {me}: both roots named: {m}");
                }
                other => panic!("rank {me}: {call} with {what}: want a mismatch, got {other:?}"),
            }
            // The communicator still runs matching calls, with the right data.
            let got = rooted(&c, "ibcast_into", 1).unwrap();
            assert_eq!(got, [42], "{call} with {what}");
        }
    }
}

#[test]
fn mismatched_roots_fail_every_rooted_nonblocking_collective_at_3_ranks() {
    const NAME: &str = "mismatched_roots_fail_every_rooted_nonblocking_collective_at_3_ranks";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        mismatched_nonblocking_roots(&u.world());
        return;
    }
    let out = launch_self(NAME, 3, &["--timeout", "30"]);
    assert_success(&out, NAME);
}

#[test]
fn mismatched_roots_fail_every_rooted_nonblocking_collective_at_4_ranks() {
    const NAME: &str = "mismatched_roots_fail_every_rooted_nonblocking_collective_at_4_ranks";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        mismatched_nonblocking_roots(&u.world());
        return;
    }
    let out = launch_self(NAME, 4, &["--timeout", "30"]);
    assert_success(&out, NAME);
}
