//! `IN_PLACE` collectives against serial references, and the object reductions with
//! built-in ops (mpi4py's `comm.allreduce(x, op=MPI.SUM)`), at several N.

mod common;

use common::run_ranks;
use shmpi::{Communicator, ErrorClass, Op, Value, value};

/// Rank `r`'s contribution element `i`.
fn x(r: i32, i: usize) -> i64 {
    (r as i64 + 1) * 100 + i as i64
}

fn in_place_rules(w: &Communicator) {
    let (n, me) = (w.size(), w.rank());
    let nu = n as usize;
    let c = 3;
    for root in 0..n {
        // reduce: the root's buffer becomes the sum; the others' stay as they were.
        let mut v: Vec<i64> = (0..c).map(|i| x(me, i)).collect();
        w.reduce_in_place(&mut v, Op::Sum, root).unwrap();
        let want: Vec<i64> = if me == root {
            (0..c).map(|i| (0..n).map(|r| x(r, i)).sum()).collect()
        } else {
            (0..c).map(|i| x(me, i)).collect()
        };
        assert_eq!(v, want, "reduce_in_place root {root}");
        // gather: the root's own block is already in place.
        let mut g = if me == root {
            let mut g = vec![0i64; nu * c];
            for i in 0..c {
                g[root as usize * c + i] = x(me, i);
            }
            g
        } else {
            (0..c).map(|i| x(me, i)).collect()
        };
        w.gather_in_place(&mut g, root).unwrap();
        if me == root {
            let want: Vec<i64> = (0..n).flat_map(|r| (0..c).map(move |i| x(r, i))).collect();
            assert_eq!(g, want, "gather_in_place root {root}");
        }
        // scatter: block r of the root's buffer goes to rank r; the root's stays.
        let mut s = if me == root {
            (0..n).flat_map(|r| (0..c).map(move |i| x(r, i))).collect()
        } else {
            vec![0i64; c]
        };
        w.scatter_in_place(&mut s, root).unwrap();
        let mine: Vec<i64> = (0..c).map(|i| x(me, i)).collect();
        if me == root {
            assert_eq!(s[me as usize * c..][..c], mine[..], "scatter_in_place root");
        } else {
            assert_eq!(s, mine, "scatter_in_place root {root}");
        }
    }
    // allgather and alltoall, with blocks in one step and blocks larger than a slot half
    // (several steps, block edges inside a step).
    for c in [c, 40_001] {
        let mut a = vec![-1i64; nu * c];
        for i in 0..c {
            a[me as usize * c + i] = x(me, i);
        }
        w.allgather_in_place(&mut a).unwrap();
        let want: Vec<i64> = (0..n).flat_map(|r| (0..c).map(move |i| x(r, i))).collect();
        assert!(a == want, "allgather_in_place of {c} elements per rank");
        // Element i of block j of rank r's buffer is x(r, j * c + i); rank me gets block
        // me of each rank r.
        let mut t: Vec<i64> = (0..nu * c).map(|k| x(me, k)).collect();
        w.alltoall_in_place(&mut t).unwrap();
        let want: Vec<i64> = (0..n)
            .flat_map(|r| (0..c).map(move |i| x(r, me as usize * c + i)))
            .collect();
        assert!(t == want, "alltoall_in_place of {c} elements per block");
    }
    // scan and exscan
    let mut s: Vec<i64> = (0..c).map(|i| x(me, i)).collect();
    w.scan_in_place(&mut s, Op::Sum).unwrap();
    assert_eq!(
        s,
        (0..c)
            .map(|i| (0..=me).map(|r| x(r, i)).sum())
            .collect::<Vec<i64>>()
    );
    let mut e: Vec<i64> = (0..c).map(|i| x(me, i)).collect();
    w.exscan_in_place(&mut e, Op::Max).unwrap();
    if me > 0 {
        assert_eq!(
            e,
            (0..c).map(|i| x(me - 1, i)).collect::<Vec<i64>>(),
            "exscan max"
        );
    }
    // reduce_scatter_block: rank me gets block me of the sum in its first block.
    let mut b: Vec<i64> = (0..nu * c).map(|i| x(me, i)).collect();
    w.reduce_scatter_block_in_place(&mut b, Op::Sum).unwrap();
    let want: Vec<i64> = (0..c)
        .map(|i| (0..n).map(|r| x(r, me as usize * c + i)).sum())
        .collect();
    assert_eq!(b[..c], want[..], "reduce_scatter_block_in_place");
    // A buffer that is not a whole block per rank: an error of class Count, on every rank.
    if n > 1 {
        let e = w.allgather_in_place(&mut vec![0u8; nu + 1]).unwrap_err();
        assert_eq!(e.class(), ErrorClass::Count, "{e}");
        w.barrier().unwrap();
    }
}

#[test]
fn in_place_collectives_match_serial_references_at_1_rank() {
    run_ranks(
        "in_place_collectives_match_serial_references_at_1_rank",
        1,
        in_place_rules,
    );
}

#[test]
fn in_place_collectives_match_serial_references_at_3_ranks() {
    run_ranks(
        "in_place_collectives_match_serial_references_at_3_ranks",
        3,
        in_place_rules,
    );
}

#[test]
fn in_place_collectives_match_serial_references_at_5_ranks() {
    run_ranks(
        "in_place_collectives_match_serial_references_at_5_ranks",
        5,
        in_place_rules,
    );
}

fn object_op_rules(w: &Communicator) {
    let (n, me) = (w.size(), w.rank());
    let tri = |k: i32| k * (k + 1) / 2;
    assert_eq!(w.allreduce_op(&(me + 1), Op::Sum).unwrap(), tri(n));
    assert_eq!(
        w.allreduce_op(&(me as f64), Op::Max).unwrap(),
        (n - 1) as f64
    );
    assert_eq!(
        w.allreduce_op(&(me % 2 == 0), Op::LogicalAnd).unwrap(),
        n == 1
    );
    // MAXLOC on (value, index): the largest value and the smallest index holding it.
    let v = if me == n - 1 {
        7.5
    } else {
        (me % 2) as f64 * 7.5
    };
    let (best, at) = w.allreduce_op(&(v, me), Op::MaxLoc).unwrap();
    assert_eq!((best, at), (7.5, if n > 1 { 1 } else { 0 }));
    assert_eq!(
        w.allreduce_op(&(-me, me), Op::MinLoc).unwrap(),
        (-(n - 1), n - 1)
    );
    // Elementwise on tuples and vectors.
    assert_eq!(
        w.allreduce_op(&(1u64, me as u32), Op::Sum).unwrap(),
        (n as u64, tri(n - 1) as u32)
    );
    assert_eq!(
        w.allreduce_op(&vec![me, 1], Op::Max).unwrap(),
        vec![n - 1, 1]
    );
    // Rooted, prefix forms.
    assert_eq!(
        w.reduce_op(&2i64, Op::Prod, 0).unwrap(),
        (me == 0).then(|| 2i64.pow(n as u32))
    );
    assert_eq!(w.scan_op(&(me + 1), Op::Sum).unwrap(), tri(me + 1));
    assert_eq!(
        w.exscan_op(&(me + 1), Op::Sum).unwrap(),
        (me > 0).then(|| tri(me))
    );
    // Values combine as Python's do: numbers add, strings and lists concatenate.
    let total = w
        .allreduce_op(&value!({"k": 1}).get("k").cloned().unwrap(), Op::Sum)
        .unwrap();
    assert_eq!(total, Value::Int(n as i64));
    let s = w
        .allreduce_op(&Value::from(me.to_string()), Op::Sum)
        .unwrap();
    assert_eq!(
        s,
        Value::from((0..n).map(|r| r.to_string()).collect::<String>())
    );
    let l = w.allreduce_op(&value!([me]), Op::Sum).unwrap();
    assert_eq!(l, Value::from((0..n).collect::<Vec<i32>>()));
    let f = w
        .allreduce_op(&Value::from(me as f64 / 2.0), Op::Sum)
        .unwrap();
    assert_eq!(f.as_f64(), Some(tri(n - 1) as f64 / 2.0));
    // An op the values do not have is an error of class Op, on every rank alike.
    let e = w.allreduce_op(&1.5f64, Op::BitAnd).unwrap_err();
    assert_eq!(e.class(), ErrorClass::Op, "{e}");
    let e = w.allreduce_op(&vec![0; me as usize + 1], Op::Sum);
    assert_eq!(e.is_err(), n > 1);
    // Different ops on different ranks: a mismatch named on every rank.
    if n > 1 {
        let op = if me == 0 { Op::Sum } else { Op::Max };
        let e = w.allreduce_op(&1i32, op).unwrap_err();
        assert!(e.to_string().contains("mismatched"), "{e}");
    }
}

#[test]
fn object_reductions_with_built_in_ops_at_1_rank() {
    run_ranks(
        "object_reductions_with_built_in_ops_at_1_rank",
        1,
        object_op_rules,
    );
}

#[test]
fn object_reductions_with_built_in_ops_at_3_ranks() {
    run_ranks(
        "object_reductions_with_built_in_ops_at_3_ranks",
        3,
        object_op_rules,
    );
}

#[test]
fn object_reductions_with_built_in_ops_at_5_ranks() {
    run_ranks(
        "object_reductions_with_built_in_ops_at_5_ranks",
        5,
        object_op_rules,
    );
}
