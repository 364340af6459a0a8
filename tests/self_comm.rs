//! `Universe::self_comm` (`MPI_COMM_SELF`, MPI 4.1 §7.2.4) through the real launcher:
//! a communicator of this rank alone, on which every point-to-point call and every
//! collective works (a collective of one rank gives the serial result), whose messages
//! never match another communicator's receives, and which, with its dups and splits,
//! takes none of the segment's communicator areas.

mod common;

use common::{assert_success, is_child, launch_self};
use shmpi::{Communicator, Op, UNDEFINED, Universe};

/// Runs `f` on every rank of an N-rank job under `shmrun` (like `common::run_ranks`,
/// but handing the rank its `Universe`, which `self_comm` needs).
fn run_universe(name: &str, n: usize, f: impl Fn(&Universe)) {
    if is_child(name) {
        let universe = shmpi::init().expect("init under shmrun");
        f(&universe);
        return;
    }
    assert_success(
        &launch_self(name, n, &[]),
        &format!("{name} with {n} ranks"),
    );
}

/// Elements of a buffer larger than half a data slot, so that the collectives take
/// their slot paths (rounds, the reduce-scatter) as well as the inline ones.
const BIG: usize = 1 << 20;

/// Point-to-point on the self communicator: sends to itself of an object and a slice,
/// non-blocking ones, probes.
fn p2p_on_self(s: &Communicator) {
    assert_eq!((s.size(), s.rank()), (1, 0));
    s.send(&"to myself".to_string(), 0, 3).unwrap();
    assert_eq!(s.recv::<String>(0, 3).unwrap(), "to myself");
    s.send_slice(&[1u32, 2, 3], 0, 4).unwrap();
    let mut buf = [0u32; 3];
    let st = s.recv_into(&mut buf, 0, 4).unwrap();
    assert_eq!((buf, st.source(), st.tag()), ([1, 2, 3], 0, 4));
    let big: Vec<u64> = (0..BIG as u64).collect();
    s.send_slice(&big, 0, 5).unwrap();
    assert_eq!(s.recv_vec::<u64>(0, 5).unwrap().0, big);
    // Non-blocking: the receive is posted first, then the send matches it.
    let r = s.irecv::<Vec<i32>>(0, 6).unwrap();
    let q = s.isend(&vec![7i32, 8], 0, 6).unwrap();
    q.wait().unwrap();
    let (v, st) = r.wait().unwrap();
    assert_eq!((v, st.source()), (vec![7, 8], 0));
    // Probes see the message without taking it.
    assert!(s.iprobe(0, 9).unwrap().is_none());
    s.send(&42i64, 0, 9).unwrap();
    let st = s.probe(0, 9).unwrap();
    assert_eq!((st.source(), st.tag()), (0, 9));
    assert_eq!(s.recv::<i64>(0, 9).unwrap(), 42);
    assert!(s.iprobe_any().unwrap().is_none());
    assert!(
        s.send(&1u8, 1, 0).is_err(),
        "rank 1 is not a member of self"
    );
}

/// Every collective on a communicator of one rank gives the serial result, on small
/// (inline) and large (slot) data.
fn collectives_on_one(s: &Communicator) {
    assert_eq!(s.size(), 1);
    s.barrier().unwrap();
    for len in [1usize, 3, BIG] {
        let mine: Vec<i64> = (0..len as i64).map(|i| i * 3 - 1).collect();
        let mut buf = mine.clone();
        s.bcast_into(&mut buf, 0).unwrap();
        assert_eq!(buf, mine, "bcast");
        let mut out = vec![0i64; len];
        s.scatter_into(&mine, &mut out, 0).unwrap();
        assert_eq!(out, mine, "scatter");
        let mut out = vec![0i64; len];
        s.gather_into(&mine, &mut out, 0).unwrap();
        assert_eq!(out, mine, "gather");
        let mut out = vec![0i64; len];
        s.allgather_into(&mine, &mut out).unwrap();
        assert_eq!(out, mine, "allgather");
        let mut out = vec![0i64; len];
        s.alltoall_into(&mine, &mut out).unwrap();
        assert_eq!(out, mine, "alltoall");
        for op in [Op::Sum, Op::Max, Op::Prod] {
            let mut out = vec![0i64; len];
            s.reduce_into(&mine, &mut out, op, 0).unwrap();
            assert_eq!(out, mine, "reduce {op:?}");
            let mut out = vec![0i64; len];
            s.allreduce_into(&mine, &mut out, op).unwrap();
            assert_eq!(out, mine, "allreduce {op:?}");
            let mut out = vec![0i64; len];
            s.scan_into(&mine, &mut out, op).unwrap();
            assert_eq!(out, mine, "scan {op:?}");
            // Rank 0's exscan result is undefined in MPI: only success is checked.
            let mut out = vec![0i64; len];
            s.exscan_into(&mine, &mut out, op).unwrap();
            let mut out = vec![0i64; len];
            s.reduce_scatter_block_into(&mine, &mut out, op).unwrap();
            assert_eq!(out, mine, "reduce_scatter_block {op:?}");
        }
        let mut out = vec![0i64; len];
        s.allreduce_into(&mine, &mut out, |a: &i64, b: &i64| a + b)
            .unwrap();
        assert_eq!(out, mine, "allreduce with a closure");
        let mut buf = mine.clone();
        s.allreduce_in_place(&mut buf, Op::Sum).unwrap();
        assert_eq!(buf, mine, "allreduce in place");
        // The v-forms, with the data placed after a gap.
        let (counts, displs) = ([len], [2usize]);
        let mut out = vec![-9i64; len + 2];
        s.gatherv_into(&mine, &mut out, &counts, &displs, 0)
            .unwrap();
        assert_eq!(
            (&out[..2], &out[2..]),
            (&[-9, -9][..], &mine[..]),
            "gatherv"
        );
        let mut out = vec![-9i64; len + 2];
        s.allgatherv_into(&mine, &mut out, &counts, &displs)
            .unwrap();
        assert_eq!(&out[2..], &mine[..], "allgatherv");
        let mut padded = vec![0i64; 2];
        padded.extend_from_slice(&mine);
        let mut out = vec![0i64; len];
        s.scatterv_into(&padded, &counts, &displs, &mut out, 0)
            .unwrap();
        assert_eq!(out, mine, "scatterv");
        let mut out = vec![-9i64; len + 2];
        s.alltoallv_into(&padded, &counts, &displs, &mut out, &counts, &displs)
            .unwrap();
        assert_eq!(&out[2..], &mine[..], "alltoallv");
    }
    // The object forms.
    let v = vec!["a".to_string(), "b".to_string()];
    assert_eq!(s.bcast(Some(v.clone()), 0).unwrap(), v);
    assert_eq!(s.scatter(Some(&[v.clone()][..]), 0).unwrap(), v);
    assert_eq!(s.gather(&v, 0).unwrap(), Some(vec![v.clone()]));
    assert_eq!(s.allgather(&v).unwrap(), vec![v.clone()]);
    assert_eq!(
        s.alltoall(std::slice::from_ref(&v)).unwrap(),
        vec![v.clone()]
    );
    let cat = |a: &String, b: &String| format!("{a}{b}");
    let x = "x".to_string();
    assert_eq!(s.reduce(&x, cat, 0).unwrap(), Some(x.clone()));
    assert_eq!(s.allreduce(&x, cat).unwrap(), x);
    assert_eq!(s.scan(&x, cat).unwrap(), x);
    assert_eq!(s.exscan(&x, cat).unwrap(), None);
    assert_eq!(s.allreduce_op(&5i32, Op::Sum).unwrap(), 5);
    assert_eq!(s.reduce_op(&5i32, Op::Max, 0).unwrap(), Some(5));
    assert_eq!(s.scan_op(&5i32, Op::Sum).unwrap(), 5);
    s.barrier().unwrap();
}

/// Self messages and world messages with the same tag to the same process never match
/// each other's receives, in either order.
fn contexts_are_separate(u: &Universe) {
    let w = u.world();
    let s = u.self_comm();
    let me = w.rank();
    assert_ne!(s.context_id(), w.context_id());
    let s2 = u.self_comm();
    assert_ne!(
        s2.context_id(),
        s.context_id(),
        "each self_comm is a new one"
    );
    w.send(&1i32, me, 7).unwrap();
    s.send(&2i32, 0, 7).unwrap();
    s2.send(&3i32, 0, 7).unwrap();
    assert_eq!(s.recv::<i32>(0, 7).unwrap(), 2);
    assert_eq!(w.recv::<i32>(me, 7).unwrap(), 1);
    assert_eq!(s2.recv::<i32>(0, 7).unwrap(), 3);
    s.send(&4i32, 0, 8).unwrap();
    w.send(&5i32, me, 8).unwrap();
    assert!(s2.iprobe_any().unwrap().is_none());
    assert_eq!(w.recv::<i32>(me, 8).unwrap(), 5);
    assert_eq!(s.recv::<i32>(0, 8).unwrap(), 4);
    // Another rank's self communicator has a different context too: a world message
    // from a neighbour is not seen on self.
    let next = (me + 1) % w.size();
    let prev = (me + w.size() - 1) % w.size();
    w.send(&me, next, 9).unwrap();
    assert!(s.iprobe(0, 9).unwrap().is_none());
    assert_eq!(w.recv::<i32>(prev, 9).unwrap(), prev);
    let ctxs = w.allgather(&s.context_id()).unwrap();
    let mut uniq = ctxs.clone();
    uniq.sort_unstable();
    uniq.dedup();
    assert_eq!(uniq.len(), ctxs.len(), "self contexts differ across ranks");
    assert!(!ctxs.contains(&w.context_id()));
    w.barrier().unwrap();
}

/// Dups and splits of self: they work, take no area, and 10 000 of them in a loop
/// leave the pool as it was.
fn dups_take_no_area(u: &Universe) {
    let w = u.world();
    w.barrier().unwrap();
    let before = w.communicators_in_use();
    w.barrier().unwrap();
    let s = u.self_comm();
    for i in 0..10_000 {
        let d = s.dup().unwrap();
        assert_eq!((d.size(), d.rank()), (1, 0));
        assert_ne!(d.context_id(), s.context_id());
        if i % 1000 == 0 {
            collectives_on_one(&d);
            d.send(&i, 0, 1).unwrap();
            assert_eq!(d.recv::<i32>(0, 1).unwrap(), i);
        }
    }
    let d = s.dup().unwrap().dup().unwrap();
    d.barrier().unwrap();
    let sp = s.split(4, 0).unwrap().expect("a color was given");
    assert_eq!((sp.size(), sp.rank()), (1, 0));
    collectives_on_one(&sp);
    assert!(s.split(UNDEFINED, 0).unwrap().is_none());
    // A split of the world into one-rank communicators takes no area either.
    let alone = w.split(w.rank(), 0).unwrap().expect("a color was given");
    assert_eq!((alone.size(), alone.rank()), (1, 0));
    collectives_on_one(&alone);
    let alone_dup = alone.dup().unwrap();
    alone_dup.barrier().unwrap();
    w.barrier().unwrap();
    assert_eq!(w.communicators_in_use(), before);
    w.barrier().unwrap();
}

/// Dups of the world the pool can give right now (made and kept until the pool is
/// exhausted, then dropped). Not for a world of one rank, whose dups take no area.
fn world_dups_available(w: &Communicator) -> usize {
    let mut kept = vec![];
    loop {
        match w.dup() {
            Ok(d) => kept.push(d),
            Err(shmpi::Error::Usage(m)) if m.contains("in use") => break,
            Err(e) => panic!("dup failed: {e}"),
        }
        assert!(kept.len() < 100_000, "the pool never ran out");
    }
    let k = kept.len();
    drop(kept);
    w.barrier().unwrap();
    k
}

/// Living self communicators (more of them than the pool has areas) do not reduce the
/// number of world dups that can be made.
fn self_comms_leave_the_pool_alone(u: &Universe) {
    let w = u.world();
    w.barrier().unwrap();
    let before = w.communicators_in_use();
    // Every rank has counted before the leader takes areas.
    w.barrier().unwrap();
    let free = (w.size() > 1).then(|| world_dups_available(&w));
    let held: Vec<Communicator> = (0..300)
        .flat_map(|_| {
            let s = u.self_comm();
            let d = s.dup().unwrap();
            [s, d]
        })
        .collect();
    w.barrier().unwrap();
    assert_eq!(w.communicators_in_use(), before);
    // Every rank has counted before the leader takes areas again.
    w.barrier().unwrap();
    if let Some(free) = free {
        assert_eq!(world_dups_available(&w), free);
    }
    for s in &held[..4] {
        collectives_on_one(s);
    }
    drop(held);
    w.barrier().unwrap();
    assert_eq!(w.communicators_in_use(), before);
}

fn everything(u: &Universe) {
    let s = u.self_comm();
    p2p_on_self(&s);
    collectives_on_one(&s);
    contexts_are_separate(u);
    dups_take_no_area(u);
    self_comms_leave_the_pool_alone(u);
    // Self still works after all that, and the world too.
    collectives_on_one(&s);
    let w = u.world();
    let mut sum = [0i32];
    w.allreduce_into(&[1], &mut sum, Op::Sum).unwrap();
    assert_eq!(sum[0], w.size());
}

#[test]
fn self_comm_at_1_rank() {
    run_universe("self_comm_at_1_rank", 1, everything);
}

#[test]
fn self_comm_at_2_ranks() {
    run_universe("self_comm_at_2_ranks", 2, everything);
}

#[test]
fn self_comm_at_4_ranks() {
    run_universe("self_comm_at_4_ranks", 4, everything);
}

#[test]
fn self_comm_at_8_ranks() {
    run_universe("self_comm_at_8_ranks", 8, everything);
}
