//! Groups through the real launcher, against MPI's rules: a communicator made from a
//! group ranks its members in the group's order, non-members get none, groups of
//! different communicators translate into each other.

mod common;

use common::run_ranks;
use shmpi::{Communicator, Comparison, UNDEFINED};

fn group_rules(w: &Communicator) {
    let n = w.size();
    let world = w.group();
    assert_eq!((world.size(), world.rank()), (n, w.rank()));
    // Reversed order: the new communicator's ranks follow the group.
    let rev: Vec<i32> = (0..n).rev().collect();
    let g = world.incl(&rev).unwrap();
    assert_eq!(
        g.compare(&world),
        if n > 1 {
            Comparison::Similar
        } else {
            Comparison::Identical
        }
    );
    let c = w.create(&g).unwrap().expect("every rank is a member");
    assert_eq!(c.rank(), n - 1 - w.rank());
    assert_eq!(c.allgather(&w.rank()).unwrap(), rev);
    assert_eq!(c.group().compare(&g), Comparison::Identical);
    // Evens only.
    let evens = world.range_incl(&[(0, n - 1, 2)]).unwrap();
    let c = w.create(&evens).unwrap();
    assert_eq!(c.is_some(), w.rank() % 2 == 0);
    if let Some(c) = &c {
        assert_eq!(c.rank(), w.rank() / 2);
        assert_eq!(c.allreduce(&1, |a, b| a + b).unwrap(), (n + 1) / 2);
    }
    let odds = world.difference(&evens);
    assert_eq!(
        odds.union(&evens).compare(&world),
        if n > 1 {
            Comparison::Similar
        } else {
            Comparison::Identical
        }
    );
    assert_eq!(odds.intersection(&evens).size(), 0);
    assert_eq!(
        odds.rank(),
        if w.rank() % 2 == 1 {
            w.rank() / 2
        } else {
            UNDEFINED
        }
    );
    // Translating a split communicator's ranks to the world's.
    let half = w.split(w.rank() % 2, -w.rank()).unwrap().unwrap();
    let hg = half.group();
    let all: Vec<i32> = (0..half.size()).collect();
    let in_world = hg.translate_ranks(&all, &world).unwrap();
    let want: Vec<i32> = (0..n).rev().filter(|r| r % 2 == w.rank() % 2).collect();
    assert_eq!(in_world, want);
    // A group of the world on a half is refused (it has ranks outside the half)...
    if n > 1 {
        let e = half.create(&world).unwrap_err();
        assert!(e.to_string().contains("not in this communicator"), "{e}");
    }
    // ...and the half still works; a group of its own makes a communicator.
    let c = half.create(&hg.incl(&[0]).unwrap()).unwrap();
    assert_eq!(c.is_some(), half.rank() == 0);
}

#[test]
fn groups_follow_mpis_rules_at_1_rank() {
    run_ranks("groups_follow_mpis_rules_at_1_rank", 1, group_rules);
}

#[test]
fn groups_follow_mpis_rules_at_2_ranks() {
    run_ranks("groups_follow_mpis_rules_at_2_ranks", 2, group_rules);
}

#[test]
fn groups_follow_mpis_rules_at_3_ranks() {
    run_ranks("groups_follow_mpis_rules_at_3_ranks", 3, group_rules);
}

#[test]
fn groups_follow_mpis_rules_at_4_ranks() {
    run_ranks("groups_follow_mpis_rules_at_4_ranks", 4, group_rules);
}

#[test]
fn groups_follow_mpis_rules_at_8_ranks() {
    run_ranks("groups_follow_mpis_rules_at_8_ranks", 8, group_rules);
}

/// MPI 4.1 §7.4.2: `MPI_Comm_create` is collective and every rank passes the same
/// group. A rank that passes another fails the call on every rank (naming it), instead
/// of getting a communicator of the others' group.
#[test]
fn a_rank_passing_another_group_fails_create_on_every_rank() {
    run_ranks(
        "a_rank_passing_another_group_fails_create_on_every_rank",
        3,
        |w| {
            // A mismatch leaves its communicator out of step: each case has its own.
            let [w1, w2, w3] = [(); 3].map(|()| w.dup().unwrap());
            let world = w.group();
            let g = if w.rank() == 0 {
                world.incl(&[0]).unwrap()
            } else {
                world.clone()
            };
            let e = w1.create(&g).unwrap_err();
            assert!(
                e.to_string().contains("create with arguments of digest"),
                "rank {}: {e}",
                w.rank()
            );
            // The same members in another order are another group.
            let g = if w.rank() == 1 {
                world.incl(&[1, 0, 2]).unwrap()
            } else {
                world.clone()
            };
            assert!(w2.create(&g).is_err());
            let c = w3.create(&world.incl(&[2, 1]).unwrap()).unwrap();
            assert_eq!(c.map(|c| c.size()), (w.rank() > 0).then_some(2));
        },
    );
}

/// MPI 4.1 §7.3.2: a rank passed to `MPI_Group_incl`, `MPI_Group_excl`,
/// `MPI_Group_range_incl` or `MPI_Group_translate_ranks` must be a rank of the group;
/// one that is not is an error of class `MPI_ERR_RANK` (as in Open MPI and MPICH)
/// whose text speaks of the group, with its valid ranks, and not of a communicator.
#[test]
fn a_rank_outside_a_group_is_a_rank_error_that_names_the_group() {
    run_ranks(
        "a_rank_outside_a_group_is_a_rank_error_that_names_the_group",
        3,
        |w| {
            let world = w.group();
            let pair = world.incl(&[2, 0]).unwrap();
            let errors = [
                ("incl", world.incl(&[0, 3]).unwrap_err()),
                ("excl", world.excl(&[-1]).unwrap_err()),
                ("range_incl", world.range_incl(&[(0, 4, 2)]).unwrap_err()),
                ("incl", pair.incl(&[2]).unwrap_err()),
                (
                    "translate_ranks",
                    pair.translate_ranks(&[1, 5], &world).unwrap_err(),
                ),
            ];
            for (call, e) in errors {
                assert_eq!(e.class(), shmpi::ErrorClass::Rank, "{call}: {e}");
                let m = e.to_string();
                assert!(m.contains(call) && m.contains("group"), "{call}: {m}");
                assert!(!m.contains("communicator"), "{call}: {m}");
            }
            let m = pair.incl(&[2]).unwrap_err().to_string();
            assert!(m.contains("rank 2") && m.contains("0 to 1"), "{m}");
        },
    );
}
