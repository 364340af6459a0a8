//! MPI's rules for communicators made by some ranks only: intercommunicators (MPI 4.1
//! §7.6) and `create_group` (§7.4.2), checked on both backends (`tests/intercomm.rs`
//! under shmrun, `tests/mpi_collectives.rs` under mpirun).

use shmpi::{ANY_SOURCE, ANY_TAG, Communicator, Error, UNDEFINED};

/// The world in two halves (the low one has `n / 2` ranks) joined by an
/// intercommunicator, as mpi4py's tests make it. Needs 2 ranks or more.
pub fn halves(w: &Communicator) -> (bool, Communicator, Communicator) {
    let (me, n) = (w.rank(), w.size());
    let low = me < n / 2;
    let half = w.split(i32::from(low), 0).unwrap().expect("a color");
    let other_leader = if low { n / 2 } else { 0 };
    let inter = half.intercomm_create(0, w, other_leader, 77).unwrap();
    (low, half, inter)
}

pub fn intercomm_rules(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let (low, half, inter) = halves(w);
    let (lo, hi): (Vec<i32>, Vec<i32>) = (0..n).partition(|&r| r < n / 2);
    let (mine, theirs) = if low { (&lo, &hi) } else { (&hi, &lo) };

    // Local rank and size, the other half as the remote group.
    assert!(inter.is_inter() && !half.is_inter() && !w.is_inter());
    assert_eq!((inter.rank(), inter.size()), (half.rank(), half.size()));
    assert_eq!(inter.size() as usize, mine.len());
    assert_eq!(inter.remote_size() as usize, theirs.len());
    let rg = inter.remote_group();
    assert_eq!(rg.size() as usize, theirs.len());
    assert_eq!(rg.rank(), UNDEFINED, "a process is not in its remote group");
    let all: Vec<i32> = (0..rg.size()).collect();
    assert_eq!(&rg.translate_ranks(&all, &w.group()).unwrap(), theirs);
    assert_eq!(
        inter.group().compare(&half.group()),
        shmpi::Comparison::Identical
    );

    // Point to point names the remote group: every rank sends its world rank to every
    // remote rank under its own local rank as the tag, then receives one from each.
    for j in 0..inter.remote_size() {
        inter.send(&me, j, inter.rank()).unwrap();
    }
    for j in 0..inter.remote_size() {
        let (v, st) = inter.recv_with_status::<i32>(j, ANY_TAG).unwrap();
        assert_eq!(v, theirs[j as usize]);
        assert_eq!((st.source(), st.tag()), (j, j));
    }
    // Wildcards report remote ranks.
    let right = (inter.rank() + 1) % inter.remote_size();
    inter.send_slice(&[me, 1], right, 9).unwrap();
    let senders = (0..inter.remote_size())
        .filter(|&j| (j + 1) % inter.size() == inter.rank())
        .count();
    for _ in 0..senders {
        let (v, st) = inter.recv_vec::<i32>(ANY_SOURCE, 9).unwrap();
        assert_eq!(v, [theirs[st.source() as usize], 1]);
    }

    // A rank of the local group is not a destination beyond the remote group's size.
    match inter.send(&0u8, inter.remote_size(), 0) {
        Err(Error::InvalidRank { size, .. }) => assert_eq!(size, theirs.len()),
        other => panic!("a send past the remote group: {other:?}"),
    }

    // Collectives are refused, with a reason, and nothing is left behind.
    let e = inter.barrier().unwrap_err();
    assert!(e.to_string().contains("intercommunicator"), "{e}");
    assert!(inter.allreduce(&1, |a, b| a + b).is_err());
    assert!(inter.split(0, 0).is_err());
    assert!(inter.ibarrier().is_err());
    assert!(half.merge(false).is_err(), "merge of an intracommunicator");

    // The same tag on the intercommunicator and on the world between the same two
    // processes: each receive gets its own communicator's message.
    if inter.rank() == 0 {
        w.send(&1u8, theirs[0], 3).unwrap();
        inter.send(&2u8, 0, 3).unwrap();
        assert_eq!(inter.recv::<u8>(0, 3).unwrap(), 2);
        assert_eq!(w.recv::<u8>(theirs[0], 3).unwrap(), 1);
    }

    // Merge: the group passing `high = false` first; the low half first gives the
    // world's order back.
    let m = inter.merge(!low).unwrap();
    assert!(!m.is_inter());
    assert_eq!((m.rank(), m.size()), (me, n));
    assert_eq!(m.allreduce(&me, |a, b| a + b).unwrap(), n * (n - 1) / 2);
    let m = inter.merge(low).unwrap();
    let off = if low { hi.len() as i32 } else { 0 };
    assert_eq!(m.rank(), off + inter.rank());
    let order: Vec<i32> = hi.iter().chain(&lo).copied().collect();
    assert_eq!(m.allgather(&me).unwrap(), order);
    // Both groups passing the same value: every member still in one order.
    let m = inter.merge(false).unwrap();
    assert_eq!(m.size(), n);
    let mut seen = m.allgather(&me).unwrap();
    seen.sort_unstable();
    assert_eq!(seen, (0..n).collect::<Vec<_>>());

    // A duplicate: the same groups, a context of its own.
    let d = inter.dup().unwrap();
    assert!(d.is_inter());
    assert_eq!(
        (d.rank(), d.size(), d.remote_size()),
        (inter.rank(), inter.size(), inter.remote_size())
    );
    assert_ne!(d.context_id(), inter.context_id());
    if inter.rank() == 0 {
        inter.send(&10u8, 0, 4).unwrap();
        d.send(&20u8, 0, 4).unwrap();
        assert_eq!(d.recv::<u8>(0, 4).unwrap(), 20);
        assert_eq!(inter.recv::<u8>(0, 4).unwrap(), 10);
    }
    // Duplicates and merges made and dropped in a loop do not run out of anything.
    for _ in 0..100 {
        let d2 = d.dup().unwrap();
        let m2 = d2.merge(!low).unwrap();
        m2.barrier().unwrap();
    }
    w.barrier().unwrap();
}

/// `create_group`: collective over the group's members only, two groups at once told
/// apart by their tags, any order, misuse refused at the rank that makes it.
pub fn create_group_rules(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let world = w.group();
    let before = w.communicators_in_use();
    w.barrier().unwrap();
    // Evens and odds, each making its own at the same time; the odds in reverse order.
    let evens: Vec<i32> = (0..n).step_by(2).collect();
    let odds: Vec<i32> = (1..n).step_by(2).rev().collect();
    let (ranks, tag) = if me % 2 == 0 { (&evens, 5) } else { (&odds, 6) };
    let c = w.create_group(&world.incl(ranks).unwrap(), tag).unwrap();
    let pos = ranks.iter().position(|&r| r == me).unwrap() as i32;
    assert_eq!((c.rank(), c.size()), (pos, ranks.len() as i32));
    assert_eq!(&c.allgather(&me).unwrap(), ranks);
    // Its own context: the same tag on the world between the same two ranks.
    if c.size() > 1 {
        let (to, from) = (
            (c.rank() + 1) % c.size(),
            (c.rank() + c.size() - 1) % c.size(),
        );
        w.send(&1u8, ranks[to as usize], 9).unwrap();
        c.send(&2u8, to, 9).unwrap();
        assert_eq!(c.recv::<u8>(from, 9).unwrap(), 2);
        assert_eq!(w.recv::<u8>(ranks[from as usize], 9).unwrap(), 1);
    }
    drop(c);
    // A group of one.
    let alone = w.create_group(&world.incl(&[me]).unwrap(), 0).unwrap();
    assert_eq!((alone.rank(), alone.size()), (0, 1));
    // Misuse, refused where it is made, before anything is sent.
    if n > 1 {
        let other = world.incl(&[(me + 1) % n]).unwrap();
        let e = w.create_group(&other, 0).unwrap_err();
        assert!(e.to_string().contains("not a member of the group"), "{e}");
    }
    assert!(matches!(
        w.create_group(&world, -1),
        Err(Error::InvalidTag { .. })
    ));
    // Made and dropped in a loop by the evens only: nothing runs out or stays taken.
    if me % 2 == 0 {
        let g = world.incl(&evens).unwrap();
        for _ in 0..200 {
            let c = w.create_group(&g, 1).unwrap();
            c.barrier().unwrap();
        }
    }
    w.barrier().unwrap();
    // Each process's data slot remembers the area of its last two collective steps
    // until it reuses them, so up to two areas per rank may still be held: far fewer
    // than the 200 made.
    assert!(w.communicators_in_use() <= before + 2 * n as usize);
}
