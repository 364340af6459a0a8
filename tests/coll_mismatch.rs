//! Mismatched collective calls through the real launcher: ranks that call different
//! collectives, or the same one with different roots, counts, ops or element sizes,
//! at the same point on a communicator.
//!
//! The rule (README, "Collectives"; MPI leaves such a program erroneous, shmpi
//! promises to say so): every rank of a mismatched call gets an error naming both
//! calls, whichever rank arrives first or last; none returns `Ok` (with its data
//! diverged from the others'), and none hangs. The error's MPI class (`Error::class`,
//! `MPI_Error_class`) says what differed, as `Error`'s docs give it: `ERR_ROOT` for a
//! root, `ERR_OP` for an op, `ERR_TRUNCATE` at a rank whose count is below another's
//! (that rank's message would not fit), `ERR_COUNT` at the rank whose count is above,
//! `ERR_OTHER` for another call or element size. (A mismatch inside a run of identical
//! small broadcasts, whose root does not wait, is `coll_eager.rs`'s; every case here
//! is the first call on its communicator.)
//!
//! Each test runs many cases in one job: every case uses a fresh communicator (a `dup`
//! of the world), so that a failed call, which leaves its communicator unusable, does
//! not touch the next case. In every case one rank arrives late (it sleeps before its
//! call), each rank in turn, so that both "the early ranks have already returned" and
//! "the early ranks wait for the late one" are covered. Each rank collects what went
//! wrong and reports it at the end, so one run lists every failing case.

mod common;

use common::{flush_slots, run_ranks};
use shmpi::{Communicator, Error, Op};

/// How long the late rank of a case sleeps before its call: long enough for the
/// others to have started (and, if the call lets them, finished) theirs.
fn late() -> std::time::Duration {
    let ms = std::env::var("SHMPI_TEST_LATE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    std::time::Duration::from_millis(ms)
}

/// The collectives of the public API, one entry per call signature kind.
#[derive(Clone, Copy, Debug, PartialEq)]
enum K {
    Barrier,
    BcastInto,
    ScatterInto,
    GatherInto,
    AllgatherInto,
    AlltoallInto,
    ReduceInto,
    AllreduceInto,
    ScanInto,
    ExscanInto,
    ReduceScatterBlockInto,
    GathervInto,
    ScattervInto,
    AllgathervInto,
    AlltoallvInto,
    Bcast,
    Scatter,
    Gather,
    Allgather,
    Alltoall,
    Reduce,
    Allreduce,
    Scan,
    Exscan,
    Dup,
    Split,
}

use K::*;

const ALL: [K; 26] = [
    Barrier,
    BcastInto,
    ScatterInto,
    GatherInto,
    AllgatherInto,
    AlltoallInto,
    ReduceInto,
    AllreduceInto,
    ScanInto,
    ExscanInto,
    ReduceScatterBlockInto,
    GathervInto,
    ScattervInto,
    AllgathervInto,
    AlltoallvInto,
    Bcast,
    Scatter,
    Gather,
    Allgather,
    Alltoall,
    Reduce,
    Allreduce,
    Scan,
    Exscan,
    Dup,
    Split,
];

const ROOTED: [K; 10] = [
    BcastInto,
    ScatterInto,
    GatherInto,
    ReduceInto,
    GathervInto,
    ScattervInto,
    Bcast,
    Scatter,
    Gather,
    Reduce,
];

impl K {
    /// The method's name, as errors name the call.
    fn name(self) -> &'static str {
        match self {
            Barrier => "barrier",
            BcastInto => "bcast_into",
            ScatterInto => "scatter_into",
            GatherInto => "gather_into",
            AllgatherInto => "allgather_into",
            AlltoallInto => "alltoall_into",
            ReduceInto => "reduce_into",
            AllreduceInto => "allreduce_into",
            ScanInto => "scan_into",
            ExscanInto => "exscan_into",
            ReduceScatterBlockInto => "reduce_scatter_block_into",
            GathervInto => "gatherv_into",
            ScattervInto => "scatterv_into",
            AllgathervInto => "allgatherv_into",
            AlltoallvInto => "alltoallv_into",
            Bcast => "bcast",
            Scatter => "scatter",
            Gather => "gather",
            Allgather => "allgather",
            Alltoall => "alltoall",
            Reduce => "reduce",
            Allreduce => "allreduce",
            Scan => "scan",
            Exscan => "exscan",
            Dup => "dup",
            Split => "split",
        }
    }
}

/// Calls collective `k` on `c` with `len` elements per block (`u64`, rank-dependent
/// values) and root `root`; `Ok` only if the call returned `Ok` and, where this rank
/// receives data, the data is what a matched call delivers.
fn call(c: &Communicator, k: K, root: i32, len: usize) -> Result<(), String> {
    let n = c.size() as usize;
    let me = c.rank() as usize;
    let r = root as usize;
    let val = |rank: usize, i: usize| (rank as u64) << 32 | i as u64;
    let block = |rank: usize| (0..len).map(|i| val(rank, i)).collect::<Vec<u64>>();
    let blocks = |rank: usize| (0..n * len).map(|i| val(rank, i)).collect::<Vec<u64>>();
    let err = |e: Error| with_class(&e);
    let want = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!("returned Ok with wrong data ({what})"))
        }
    };
    let counts = vec![len; n];
    let displs: Vec<usize> = (0..n).map(|j| j * len).collect();
    match k {
        Barrier => c.barrier().map_err(err),
        BcastInto => {
            let mut b = if me == r { block(r) } else { vec![0; len] };
            c.bcast_into(&mut b, root).map_err(err)?;
            want(b == block(r), "bcast_into")
        }
        ScatterInto => {
            let mut got = vec![0; len];
            c.scatter_into(&blocks(me), &mut got, root).map_err(err)?;
            want(got == blocks(r)[me * len..(me + 1) * len], "scatter_into")
        }
        GatherInto => {
            let mut got = vec![0; if me == r { n * len } else { 0 }];
            c.gather_into(&block(me), &mut got, root).map_err(err)?;
            let all: Vec<u64> = (0..n).flat_map(block).collect();
            want(me != r || got == all, "gather_into")
        }
        ReduceInto => {
            let mut got = vec![0; if me == r { len } else { 0 }];
            c.reduce_into(&block(me), &mut got, Op::Sum, root)
                .map_err(err)?;
            let sum: Vec<u64> = (0..len).map(|i| (0..n).map(|j| val(j, i)).sum()).collect();
            want(me != r || got == sum, "reduce_into")
        }
        AllgatherInto => {
            let mut got = vec![0; n * len];
            c.allgather_into(&block(me), &mut got).map_err(err)
        }
        AlltoallInto => {
            let mut got = vec![0; n * len];
            c.alltoall_into(&blocks(me), &mut got).map_err(err)
        }
        AllreduceInto => {
            let mut got = vec![0; len];
            c.allreduce_into(&block(me), &mut got, Op::Sum).map_err(err)
        }
        ScanInto => {
            let mut got = vec![0; len];
            c.scan_into(&block(me), &mut got, Op::Sum).map_err(err)
        }
        ExscanInto => {
            let mut got = vec![0; len];
            c.exscan_into(&block(me), &mut got, Op::Sum).map_err(err)
        }
        ReduceScatterBlockInto => {
            let mut got = vec![0; len];
            c.reduce_scatter_block_into(&blocks(me), &mut got, Op::Sum)
                .map_err(err)
        }
        GathervInto => {
            let mut got = vec![0; if me == r { n * len } else { 0 }];
            let (cs, ds): (&[usize], &[usize]) = if me == r {
                (&counts, &displs)
            } else {
                (&[], &[])
            };
            c.gatherv_into(&block(me), &mut got, cs, ds, root)
                .map_err(err)?;
            let all: Vec<u64> = (0..n).flat_map(block).collect();
            want(me != r || got == all, "gatherv_into")
        }
        ScattervInto => {
            let mut got = vec![0; len];
            c.scatterv_into(&blocks(me), &counts, &displs, &mut got, root)
                .map_err(err)?;
            want(got == blocks(r)[me * len..(me + 1) * len], "scatterv_into")
        }
        AllgathervInto => {
            let mut got = vec![0; n * len];
            c.allgatherv_into(&block(me), &mut got, &counts, &displs)
                .map_err(err)
        }
        AlltoallvInto => {
            let mut got = vec![0; n * len];
            c.alltoallv_into(&blocks(me), &counts, &displs, &mut got, &counts, &displs)
                .map_err(err)
        }
        Bcast => {
            let got = c.bcast((me == r).then(|| block(r)), root).map_err(err)?;
            want(got == block(r), "bcast")
        }
        Scatter => {
            let vals: Vec<Vec<u64>> = (0..n).map(|j| vec![val(me, j); len]).collect();
            let got = c
                .scatter((me == r).then_some(&vals[..]), root)
                .map_err(err)?;
            want(got == vec![val(r, me); len], "scatter")
        }
        Gather => {
            let got = c.gather(&block(me), root).map_err(err)?;
            let all: Vec<Vec<u64>> = (0..n).map(block).collect();
            want(me != r || got == Some(all), "gather")
        }
        Reduce => {
            let add = |a: &Vec<u64>, b: &Vec<u64>| a.iter().zip(b).map(|(x, y)| x + y).collect();
            let got = c.reduce(&block(me), add, root).map_err(err)?;
            let sum: Vec<u64> = (0..len).map(|i| (0..n).map(|j| val(j, i)).sum()).collect();
            want(me != r || got == Some(sum), "reduce")
        }
        Allgather => c.allgather(&block(me)).map(|_| ()).map_err(err),
        Alltoall => {
            let vals: Vec<u64> = (0..n).map(|j| val(me, j)).collect();
            c.alltoall(&vals).map(|_| ()).map_err(err)
        }
        Allreduce => c
            .allreduce(&(me as u64), |a, b| a + b)
            .map(|_| ())
            .map_err(err),
        Scan => c.scan(&(me as u64), |a, b| a + b).map(|_| ()).map_err(err),
        Exscan => c
            .exscan(&(me as u64), |a, b| a + b)
            .map(|_| ())
            .map_err(err),
        Dup => c.dup().map(|_| ()).map_err(err),
        Split => c.split(0, 0).map(|_| ()).map_err(err),
    }
}

/// An error's text followed by its MPI class in brackets (`... [ERR_ROOT]`).
fn with_class(e: &Error) -> String {
    format!("{e} [{}]", e.class().name())
}

/// Whether `msg` is the mismatch error of a rank that called `mine` while another
/// called `theirs` (both named as "called NAME(").
fn names_both(msg: &str, mine: &str, theirs: &str) -> bool {
    msg.contains("mismatched collective calls")
        && msg.contains(&format!("called {mine}("))
        && msg.contains(&format!("called {theirs}("))
}

/// The roots named in `msg` ("root=R").
fn roots_named(msg: &str) -> Vec<u64> {
    msg.match_indices("root=")
        .filter_map(|(i, _)| {
            let d: String = msg[i + 5..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            d.parse().ok()
        })
        .collect()
}

/// Runs one case on a fresh communicator: this rank sleeps first if it is `late`,
/// then runs `f`. Returns what `f` returned.
fn case(
    w: &Communicator,
    late_rank: usize,
    f: impl FnOnce(&Communicator) -> Result<(), String>,
) -> Result<(), String> {
    let c = w.dup().expect("dup of the world");
    if w.rank() as usize == late_rank {
        std::thread::sleep(late());
    }
    let r = f(&c);
    drop(c);
    r
}

/// Ends a job of cases: every rank prints its failures, and fails if it has any; no
/// area of the segment is left taken by the communicators of the cases.
fn report(w: &Communicator, cases: usize, failures: &[String]) {
    flush_slots(w);
    let me = w.rank();
    for f in failures {
        eprintln!("rank {me}: {f}");
    }
    assert!(
        failures.is_empty(),
        "rank {me}: {} of {cases} cases failed",
        failures.len()
    );
    assert_eq!(w.communicators_in_use(), 0, "areas left taken");
}

/// Every ordered pair of different collectives (rank 0 calls the first, the others the
/// second, with the same root), each rank in turn arriving late: every rank's call
/// fails, naming both. Issue #11's case is one of them: rank 0 broadcasts from root 0,
/// the others call a barrier.
fn every_pair(w: &Communicator) {
    let n = w.size() as usize;
    let me = w.rank() as usize;
    let mut failures = vec![];
    let mut cases = 0;
    for (p, &a) in ALL.iter().enumerate() {
        for &b in ALL.iter().filter(|&&b| b != a) {
            for late in 0..n {
                // Every root in turn, so that rank 0 is sometimes the root of both calls.
                let root = ((p + late) % n) as i32;
                cases += 1;
                let (mine, theirs) = if me == 0 { (a, b) } else { (b, a) };
                let r = case(w, late, |c| call(c, mine, root, 1));
                let ok = match &r {
                    Err(m) => {
                        names_both(m, mine.name(), theirs.name()) && m.ends_with("[ERR_OTHER]")
                    }
                    Ok(()) => false,
                };
                if !ok {
                    failures.push(format!(
                        "rank 0 {}, others {}, root {root}, rank {late} late: got {r:?}",
                        a.name(),
                        b.name()
                    ));
                }
            }
        }
    }
    report(w, cases, &failures);
}

#[test]
fn mismatched_collectives_fail_on_every_rank_whichever_arrives_last_at_2_ranks() {
    run_ranks(
        "mismatched_collectives_fail_on_every_rank_whichever_arrives_last_at_2_ranks",
        2,
        every_pair,
    );
}

#[test]
fn mismatched_collectives_fail_on_every_rank_whichever_arrives_last_at_3_ranks() {
    run_ranks(
        "mismatched_collectives_fail_on_every_rank_whichever_arrives_last_at_3_ranks",
        3,
        every_pair,
    );
}

#[test]
fn mismatched_collectives_fail_on_every_rank_whichever_arrives_last_at_5_ranks() {
    run_ranks(
        "mismatched_collectives_fail_on_every_rank_whichever_arrives_last_at_5_ranks",
        5,
        every_pair,
    );
}

/// Every rooted collective (slice, v- and object forms), small (inline) and large
/// (pipelined through the data slots, reduce-scatter for `reduce_into`), with the
/// roots split three ways: rank 0 says 0 and the others 1 (issue #11); each rank names
/// itself; the last rank names itself and the others 0. Each rank in turn is late.
/// Every rank fails, naming its own root and another.
fn rooted_roots(w: &Communicator) {
    let n = w.size() as usize;
    let me = w.rank() as usize;
    let mut failures = vec![];
    let mut cases = 0;
    let patterns: [(&str, &dyn Fn(usize) -> usize); 3] = [
        ("0 at rank 0, else 1", &|r| usize::from(r != 0)),
        ("each its own", &|r| r),
        ("n-1 at rank n-1, else 0", &|r| {
            if r == n - 1 { r } else { 0 }
        }),
    ];
    for &k in &ROOTED {
        for (pname, pat) in &patterns {
            for len in [1, 40_000] {
                for late in 0..n {
                    cases += 1;
                    let root = pat(me);
                    let r = case(w, late, |c| call(c, k, root as i32, len));
                    let ok = match &r {
                        Err(m) => {
                            let named = roots_named(m);
                            names_both(m, k.name(), k.name())
                                && m.ends_with("[ERR_ROOT]")
                                && named.contains(&(root as u64))
                                && named.iter().any(|&x| x != root as u64)
                        }
                        Ok(()) => false,
                    };
                    if !ok {
                        failures.push(format!(
                            "{} roots {pname}, {len} elements, rank {late} late: root {root} got \
                             {r:?}",
                            k.name()
                        ));
                    }
                }
            }
        }
    }
    report(w, cases, &failures);
}

#[test]
fn mismatched_roots_fail_every_rooted_collective_on_every_rank_at_3_ranks() {
    run_ranks(
        "mismatched_roots_fail_every_rooted_collective_on_every_rank_at_3_ranks",
        3,
        rooted_roots,
    );
}

#[test]
fn mismatched_roots_fail_every_rooted_collective_on_every_rank_at_5_ranks() {
    run_ranks(
        "mismatched_roots_fail_every_rooted_collective_on_every_rank_at_5_ranks",
        5,
        rooted_roots,
    );
}

/// The other arguments the ranks must agree on, in the rooted collectives whose
/// non-roots wait for nobody or for the root only: a count that differs at one rank
/// (the root or not), an op, an element size. Every rank fails, naming both calls.
#[test]
fn mismatched_counts_ops_and_element_sizes_fail_rooted_collectives_on_every_rank() {
    run_ranks(
        "mismatched_counts_ops_and_element_sizes_fail_rooted_collectives_on_every_rank",
        3,
        |w| {
            let n = w.size() as usize;
            let me = w.rank() as usize;
            let mut failures = vec![];
            let mut cases = 0;
            let mut check =
                |what: &str,
                 late: usize,
                 words: &[&str],
                 f: &dyn Fn(&Communicator, bool) -> shmpi::Result<()>| {
                    // `odd`: this rank passes the argument that differs.
                    for odd in 0..n {
                        cases += 1;
                        let r = case(w, late, |c| f(c, me == odd).map_err(|e| with_class(&e)));
                        // Below another rank's count is a truncation (its message would
                        // not fit this rank's), above it an invalid count.
                        let class = match what.rsplit(' ').next() {
                            Some("count") if me == odd => "[ERR_COUNT]",
                            Some("count") => "[ERR_TRUNCATE]",
                            Some("op") => "[ERR_OP]",
                            _ => "[ERR_OTHER]",
                        };
                        let ok = match &r {
                            Err(m) => {
                                m.contains("mismatched")
                                    && words.iter().all(|x| m.contains(x))
                                    && m.ends_with(class)
                            }
                            Ok(()) => false,
                        };
                        if !ok {
                            failures.push(format!(
                                "{what}, rank {odd} differs, rank {late} late: {r:?}"
                            ));
                        }
                    }
                };
            for late in 0..n {
                check(
                    "bcast_into count",
                    late,
                    &["count=1", "count=2"],
                    &|c, odd| {
                        let mut b = vec![7u64; if odd { 2 } else { 1 }];
                        c.bcast_into(&mut b, 0)
                    },
                );
                check(
                    "scatter_into count",
                    late,
                    &["count=1", "count=2"],
                    &|c, odd| {
                        let k = if odd { 2 } else { 1 };
                        let mut got = vec![0u64; k];
                        c.scatter_into(&vec![1u64; n * k], &mut got, 1)
                    },
                );
                check(
                    "gather_into count",
                    late,
                    &["count=1", "count=2"],
                    &|c, odd| {
                        let k = if odd { 2 } else { 1 };
                        let mut got = vec![0u64; n * k];
                        c.gather_into(&vec![1u64; k], &mut got, 2)
                    },
                );
                check("reduce_into op", late, &["op=Sum", "op=Max"], &|c, odd| {
                    let op = if odd { Op::Max } else { Op::Sum };
                    let mut got = [0u64];
                    c.reduce_into(&[1u64], &mut got, op, 0)
                });
                check(
                    "reduce_into count",
                    late,
                    &["count=1", "count=2"],
                    &|c, odd| {
                        let k = if odd { 2 } else { 1 };
                        let mut got = vec![0u64; k];
                        c.reduce_into(&vec![1u64; k], &mut got, Op::Sum, 1)
                    },
                );
                check(
                    "bcast_into element size",
                    late,
                    &["4-byte", "8-byte"],
                    &|c, odd| {
                        if odd {
                            c.bcast_into(&mut [0u32; 2], 0)
                        } else {
                            c.bcast_into(&mut [0u64; 1], 0)
                        }
                    },
                );
            }
            report(w, cases, &failures);
        },
    );
}
