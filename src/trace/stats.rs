//! The summary `--stats` prints at exit, as mpiP and IPM do: per rank, the time spent
//! in communication (in shmpi's calls) and elsewhere, the messages and bytes sent and
//! received, the calls of each kind with their time; then the matrices of messages
//! and bytes from each rank to each rank.

use std::fmt::Write;

use super::model::{Model, code_name};

fn secs(ns: u64) -> String {
    format!("{:.6}", ns as f64 / 1e9)
}

/// The whole summary; `traced`: every call was timed (`--trace` too).
pub(crate) fn table(m: &Model, traced: bool) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "shmrun: communication summary of {} rank(s) over {} s (time in communication: inside \
         shmpi's calls{}; blocked: the part of it spent waiting for another rank)",
        m.n,
        secs(m.duration),
        if traced {
            String::new()
        } else {
            format!(
                ", waits measured, the rest estimated from one call in {} of each kind",
                super::STATS_SAMPLE
            )
        }
    );
    let _ = writeln!(
        o,
        "{:>5} {:>12} {:>12} {:>7} {:>12} {:>12} {:>10} {:>14} {:>10} {:>14}",
        "rank",
        "time (s)",
        "comm (s)",
        "comm %",
        "elsewhere",
        "blocked (s)",
        "msgs sent",
        "bytes sent",
        "msgs recv",
        "bytes recv"
    );
    for (r, i) in m.ranks.iter().enumerate() {
        let life = i.end.saturating_sub(i.init.unwrap_or(i.end));
        // Scaled up from sampled calls, the estimate can pass the rank's lifetime when a
        // sampled call was held up (a busy machine): no rank spends more than its life.
        let comm_ns = i.comm_ns.min(life);
        let pct = if life > 0 {
            100.0 * comm_ns as f64 / life as f64
        } else {
            0.0
        };
        let _ = writeln!(
            o,
            "{r:>5} {:>12} {:>12} {:>7.1} {:>12} {:>12} {:>10} {:>14} {:>10} {:>14}",
            secs(life),
            secs(comm_ns),
            pct,
            secs(life.saturating_sub(comm_ns)),
            secs(i.blocked_ns),
            i.msgs_sent,
            i.bytes_sent,
            i.msgs_recv,
            i.bytes_recv
        );
    }
    let _ = writeln!(o, "calls per kind (count, seconds inside):");
    for (r, i) in m.ranks.iter().enumerate() {
        let calls: Vec<String> = i
            .calls
            .iter()
            .map(|&(c, k, ns)| format!("{} {k} ({})", code_name(c), secs(ns)))
            .collect();
        let _ = writeln!(
            o,
            "{r:>5}  {}",
            if calls.is_empty() {
                "(none)".to_string()
            } else {
                calls.join(", ")
            }
        );
    }
    matrix(&mut o, m, "messages", |i, d| i.dest_msgs[d]);
    matrix(&mut o, m, "bytes", |i, d| i.dest_bytes[d]);
    o
}

fn matrix(
    o: &mut String,
    m: &Model,
    what: &str,
    at: impl Fn(&super::model::RankInfo, usize) -> u64,
) {
    let w = m
        .ranks
        .iter()
        .flat_map(|i| (0..m.n).map(move |d| (i, d)))
        .map(|(i, d)| at(i, d).to_string().len())
        .max()
        .unwrap_or(1)
        .max(m.n.to_string().len())
        .max(2);
    let _ = writeln!(o, "{what} from rank (row) to rank (column):");
    let _ = write!(o, "{:>5}", "");
    for d in 0..m.n {
        let _ = write!(o, " {d:>w$}");
    }
    let _ = writeln!(o);
    for (r, i) in m.ranks.iter().enumerate() {
        let _ = write!(o, "{r:>5}");
        for d in 0..m.n {
            let _ = write!(o, " {:>w$}", at(i, d));
        }
        let _ = writeln!(o);
    }
}
