//! Communicators made by some ranks only, through the real launcher, against MPI's
//! rules (`common/comm_rules.rs`, also run on the MPI backend): intercommunicators and
//! `create_group`; and what MPI leaves to the implementation: overlapping groups are
//! refused at every member, without a hang.

#[path = "common/comm_rules.rs"]
mod comm_rules;
mod common;

use comm_rules::{create_group_rules, intercomm_rules};
use common::run_ranks;
use shmpi::Communicator;

#[test]
fn intercommunicators_follow_mpis_rules_at_2_ranks() {
    run_ranks(
        "intercommunicators_follow_mpis_rules_at_2_ranks",
        2,
        intercomm_rules,
    );
}

#[test]
fn intercommunicators_follow_mpis_rules_at_3_ranks() {
    run_ranks(
        "intercommunicators_follow_mpis_rules_at_3_ranks",
        3,
        intercomm_rules,
    );
}

#[test]
fn intercommunicators_follow_mpis_rules_at_5_ranks() {
    run_ranks(
        "intercommunicators_follow_mpis_rules_at_5_ranks",
        5,
        intercomm_rules,
    );
}

#[test]
fn intercommunicators_follow_mpis_rules_at_8_ranks() {
    run_ranks(
        "intercommunicators_follow_mpis_rules_at_8_ranks",
        8,
        intercomm_rules,
    );
}

fn overlapping_groups_are_refused(w: &Communicator) {
    // The world as both groups: its leader is its own remote leader.
    let e = w.intercomm_create(0, w, 0, 5).unwrap_err();
    let msg = e.to_string();
    if w.rank() == 0 {
        assert!(msg.contains("is a member of this group"), "{msg}");
    } else {
        assert!(msg.contains("leader"), "{msg}");
    }
    // The leader names another member of its own group: refused at every member before
    // any message (that member, waiting in the same call, would never answer).
    if w.size() >= 2 {
        let e = w.intercomm_create(0, w, 1, 5).unwrap_err();
        assert!(e.to_string().contains("leader"), "{e}");
    }
    // A bad local leader is refused at every member before anything is sent.
    assert!(matches!(
        w.intercomm_create(w.size(), w, 0, 5),
        Err(shmpi::Error::InvalidRank { .. })
    ));
    // The world still works, and an intercommunicator of one rank per group too.
    w.barrier().unwrap();
    if w.size() >= 2 {
        let pair = w.split(i32::from(w.rank() < 2), w.rank()).unwrap().unwrap();
        if w.rank() < 2 {
            let me = pair.split(pair.rank(), 0).unwrap().unwrap();
            let inter = me.intercomm_create(0, &pair, 1 - pair.rank(), 6).unwrap();
            assert_eq!((inter.size(), inter.remote_size()), (1, 1));
            inter.send(&pair.rank(), 0, 0).unwrap();
            assert_eq!(inter.recv::<i32>(0, 0).unwrap(), 1 - pair.rank());
            assert_eq!(inter.merge(pair.rank() == 1).unwrap().rank(), pair.rank());
        }
    }
}

#[test]
fn overlapping_groups_are_refused_at_every_member() {
    run_ranks(
        "overlapping_groups_are_refused_at_every_member",
        4,
        overlapping_groups_are_refused,
    );
}

#[test]
fn overlapping_groups_are_refused_at_1_rank() {
    run_ranks(
        "overlapping_groups_are_refused_at_1_rank",
        1,
        overlapping_groups_are_refused,
    );
}

#[test]
fn create_group_involves_the_members_only_at_1_rank() {
    run_ranks(
        "create_group_involves_the_members_only_at_1_rank",
        1,
        create_group_rules,
    );
}

#[test]
fn create_group_involves_the_members_only_at_2_ranks() {
    run_ranks(
        "create_group_involves_the_members_only_at_2_ranks",
        2,
        create_group_rules,
    );
}

#[test]
fn create_group_involves_the_members_only_at_5_ranks() {
    run_ranks(
        "create_group_involves_the_members_only_at_5_ranks",
        5,
        create_group_rules,
    );
}
