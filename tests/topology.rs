//! Cartesian topologies through the real launcher, checked against MPI's rules:
//! row-major rank order, neighbours from `shift` (wrapping only where periodic),
//! `cart_sub` keeping the row-major order of the kept dimensions, and ranks beyond the
//! grid left out.

mod common;

use common::run_ranks;
use shmpi::{Communicator, PROC_NULL, dims_create};

/// A 2-D grid over every rank: coordinates, ranks, shifts and sub-grids agree with
/// row-major arithmetic, and a halo exchange along the periodic dimension delivers each
/// neighbour's coordinates.
fn grid_rules(w: &Communicator) {
    let n = w.size();
    let mut dims = [0, 0];
    dims_create(n, &mut dims).unwrap();
    assert_eq!(dims[0] * dims[1], n);
    assert!(dims[0] >= dims[1]);
    let g = w.cart_create(&dims, &[false, true], true).unwrap().unwrap();
    assert_eq!((g.size(), g.rank()), (n, w.rank()), "no reordering");
    let (rows, cols) = (dims[0], dims[1]);
    let me = g.coords();
    assert_eq!(me, [w.rank() / cols, w.rank() % cols]);
    for r in 0..n {
        assert_eq!(g.cart_rank(&g.coords_of(r).unwrap()).unwrap(), r);
    }
    // Dimension 0 is not periodic: off its edges the neighbour is PROC_NULL.
    let (up, down) = g.shift(0, 1).unwrap();
    let at = |row: i32, col: i32| row * cols + col;
    let want_up = if me[0] == 0 {
        PROC_NULL
    } else {
        at(me[0] - 1, me[1])
    };
    let want_down = if me[0] == rows - 1 {
        PROC_NULL
    } else {
        at(me[0] + 1, me[1])
    };
    assert_eq!((up, down), (want_up, want_down));
    // Dimension 1 wraps.
    let (left, right) = g.shift(1, 1).unwrap();
    assert_eq!(left, at(me[0], (me[1] + cols - 1) % cols));
    assert_eq!(right, at(me[0], (me[1] + 1) % cols));
    assert_eq!(g.shift(1, cols).unwrap(), (g.rank(), g.rank()));
    // Any displacement wraps by modular arithmetic (MPI 4.1 §8.5.6), the extremes of
    // i32 included; off the non-periodic dimension it is PROC_NULL.
    let wrap = |d: i64| {
        at(
            me[0],
            (i64::from(me[1]) + d).rem_euclid(i64::from(cols)) as i32,
        )
    };
    for d in [i32::MIN, i32::MIN + 1, i32::MAX, i32::MAX - 1] {
        assert_eq!(
            g.shift(1, d).unwrap(),
            (wrap(-i64::from(d)), wrap(i64::from(d))),
            "shift by {d}"
        );
        assert_eq!(
            g.shift(0, d).unwrap(),
            (PROC_NULL, PROC_NULL),
            "shift by {d}"
        );
    }
    assert!(g.shift(2, 1).is_err());
    assert!(g.cart_rank(&[rows, 0]).is_err());
    assert_eq!(g.cart_rank(&[0, -1]).unwrap(), at(0, cols - 1));
    // Halo exchange along the ring of each row.
    let (got, _) = g
        .sendrecv::<Vec<i32>, Vec<i32>>(&me, right, 5, left, 5)
        .unwrap();
    assert_eq!(got, g.coords_of(left).unwrap());
    // Rows: keep dimension 1. The sub-grid's ranks follow the column order.
    let row = g.sub(&[false, true]).unwrap();
    assert_eq!(
        (row.size(), row.rank(), row.dims()),
        (cols, me[1], &[cols][..])
    );
    assert_eq!(row.periods(), [true]);
    let members = row.allgather(&w.rank()).unwrap();
    assert_eq!(members, (0..cols).map(|c| at(me[0], c)).collect::<Vec<_>>());
    // Columns: keep dimension 0.
    let col = g.sub(&[true, false]).unwrap();
    assert_eq!((col.size(), col.rank()), (rows, me[0]));
    let members = col.allgather(&w.rank()).unwrap();
    assert_eq!(members, (0..rows).map(|r| at(r, me[1])).collect::<Vec<_>>());
    // Keeping nothing: a grid of one point per rank.
    let point = g.sub(&[false, false]).unwrap();
    assert_eq!((point.size(), point.ndims()), (1, 0));
}

#[test]
fn cartesian_grids_follow_mpis_rules_at_1_rank() {
    run_ranks("cartesian_grids_follow_mpis_rules_at_1_rank", 1, grid_rules);
}

#[test]
fn cartesian_grids_follow_mpis_rules_at_2_ranks() {
    run_ranks(
        "cartesian_grids_follow_mpis_rules_at_2_ranks",
        2,
        grid_rules,
    );
}

#[test]
fn cartesian_grids_follow_mpis_rules_at_3_ranks() {
    run_ranks(
        "cartesian_grids_follow_mpis_rules_at_3_ranks",
        3,
        grid_rules,
    );
}

#[test]
fn cartesian_grids_follow_mpis_rules_at_4_ranks() {
    run_ranks(
        "cartesian_grids_follow_mpis_rules_at_4_ranks",
        4,
        grid_rules,
    );
}

#[test]
fn cartesian_grids_follow_mpis_rules_at_8_ranks() {
    run_ranks(
        "cartesian_grids_follow_mpis_rules_at_8_ranks",
        8,
        grid_rules,
    );
}

/// A grid smaller than the communicator leaves the other ranks out (`None`, MPI's
/// `MPI_COMM_NULL`); a grid larger than it, or a malformed one, is an error naming it.
#[test]
fn ranks_beyond_the_grid_get_none_and_bad_shapes_are_errors() {
    run_ranks(
        "ranks_beyond_the_grid_get_none_and_bad_shapes_are_errors",
        5,
        |w| {
            let g = w.cart_create(&[2, 2], &[true, true], false).unwrap();
            assert_eq!(g.is_some(), w.rank() < 4);
            if let Some(g) = g {
                assert_eq!(g.size(), 4);
                assert_eq!(g.allreduce(&1, |a, b| a + b).unwrap(), 4);
            }
            let e = w.cart_create(&[3, 2], &[false, false], false).unwrap_err();
            assert!(e.to_string().contains("6 points"), "{e}");
            assert!(w.cart_create(&[2, 0], &[false, false], false).is_err());
            assert!(w.cart_create(&[2], &[false, false], false).is_err());
            let mut d = [2, 0];
            assert!(dims_create(5, &mut d).is_err());
            // The world still works after the refused calls.
            assert_eq!(w.allreduce(&1, |a, b| a + b).unwrap(), 5);
        },
    );
}

/// MPI 4.1 §8.5.1: `MPI_Cart_create` and `MPI_Cart_sub` are collective and every rank
/// passes the same arguments. A rank that passes another shape fails the call on every
/// rank (naming it), instead of each rank getting a grid of its own whose neighbours
/// disagree with the others'.
#[test]
fn ranks_passing_different_shapes_fail_cart_create_and_sub_on_every_rank() {
    run_ranks(
        "ranks_passing_different_shapes_fail_cart_create_and_sub_on_every_rank",
        3,
        |w| {
            // A mismatch leaves its communicator out of step: each case has its own.
            let [w1, w2, w3, w4] = [(); 4].map(|()| w.dup().unwrap());
            let dims: &[i32] = if w.rank() == 0 { &[1] } else { &[3] };
            let e = w1.cart_create(dims, &[false], false).unwrap_err();
            assert!(
                e.to_string()
                    .contains("cart_create with arguments of digest"),
                "rank {}: {e}",
                w.rank()
            );
            // The same shape with other periods differs too.
            let e = w2.cart_create(&[3], &[w.rank() == 1], false).unwrap_err();
            assert!(e.to_string().contains("cart_create"), "{e}");
            let g = w3
                .cart_create(&[3, 1], &[false, false], false)
                .unwrap()
                .unwrap();
            let e = g.sub(&[w.rank() == 2, true]).unwrap_err();
            assert!(e.to_string().contains("CartComm::sub"), "{e}");
            // Alike everywhere, both work.
            let g = w4
                .cart_create(&[3, 1], &[false, false], false)
                .unwrap()
                .unwrap();
            assert_eq!(g.sub(&[true, false]).unwrap().size(), 3);
        },
    );
}
