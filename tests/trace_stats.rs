//! `shmrun --stats`: the summary's counts against a program whose traffic is known.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{is_child, launch_self, run_with_watchdog};
use shmpi::Op;

const N: usize = 4;

/// Messages rank r sends to rank r + 1, and their size.
fn sends(r: usize) -> (usize, usize) {
    (r + 1, 100 * (r + 1))
}

/// The summary's rows: the line after `title` and the `rows` lines after it, split
/// into columns.
fn rows(text: &str, title: &str, rows: usize) -> Vec<Vec<String>> {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(title))
        .unwrap_or_else(|| panic!("{title:?} in\n{text}"));
    lines[at + 2..at + 2 + rows]
        .iter()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

#[test]
fn stats_count_the_programs_known_traffic() {
    if is_child("stats_count_the_programs_known_traffic") {
        let u = shmpi::init().unwrap();
        let w = u.world();
        let (me, n) = (w.rank() as usize, w.size() as usize);
        let (k, b) = sends(me);
        for i in 0..k {
            w.send_slice(&vec![7u8; b], ((me + 1) % n) as i32, i as i32)
                .unwrap();
        }
        let from = (me + n - 1) % n;
        let (kf, bf) = sends(from);
        let mut buf = vec![0u8; bf];
        for i in 0..kf {
            w.recv_into(&mut buf, from as i32, i as i32).unwrap();
        }
        let req = w
            .irecv_into(vec![0u64; 8], ((me + n - 2) % n) as i32, 50)
            .unwrap();
        w.isend_vec(vec![me as u64; 8], ((me + 2) % n) as i32, 50)
            .unwrap()
            .wait()
            .unwrap();
        req.wait().unwrap();
        let mut s = [0.0f64];
        for _ in 0..2 {
            w.allreduce_into(&[1.0], &mut s, Op::Sum).unwrap();
        }
        w.barrier().unwrap();
        return;
    }
    let out = launch_self("stats_count_the_programs_known_traffic", N, &["--stats"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let table = rows(&err, "shmrun: communication summary of 4 rank(s)", N);
    for (r, row) in table.iter().enumerate() {
        let (k, b) = sends(r);
        let (kf, bf) = sends((r + N - 1) % N);
        let col = |i: usize| -> f64 { row[i].parse().unwrap() };
        assert_eq!(col(0) as usize, r);
        let (time, comm, pct, elsewhere, blocked) = (col(1), col(2), col(3), col(4), col(5));
        assert!(comm > 0.0 && comm <= time && blocked <= comm, "{row:?}");
        assert!((0.0..=100.0).contains(&pct), "{row:?}");
        assert!((time - comm - elsewhere).abs() < 2e-6, "{row:?}");
        assert_eq!(col(6) as usize, k + 1, "msgs sent {row:?}");
        assert_eq!(col(7) as usize, k * b + 64, "bytes sent {row:?}");
        assert_eq!(col(8) as usize, kf + 1, "msgs recv {row:?}");
        assert_eq!(col(9) as usize, kf * bf + 64, "bytes recv {row:?}");
    }
    let calls = rows(&err, "calls per kind", N - 1);
    let lines: Vec<&str> = err.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("calls per kind"))
        .unwrap();
    assert!(calls.len() == N - 1);
    for r in 0..N {
        let line = lines[at + 1 + r];
        let (k, _) = sends(r);
        let (kf, _) = sends((r + N - 1) % N);
        for want in [
            format!("send_slice {k} ("),
            format!("recv_into {kf} ("),
            "allreduce_into 2 (".to_string(),
            "barrier 1 (".to_string(),
            "isend 1 (".to_string(),
            "irecv 1 (".to_string(),
            "wait 2 (".to_string(),
        ] {
            assert!(line.contains(&want), "rank {r}: {want:?} in {line:?}");
        }
    }
    let msgs = rows(&err, "messages from rank (row) to rank (column)", N);
    let bytes = rows(&err, "bytes from rank (row) to rank (column)", N);
    for r in 0..N {
        let (k, b) = sends(r);
        for d in 0..N {
            let (m, by): (usize, usize) = (
                msgs[r][d + 1].parse().unwrap(),
                bytes[r][d + 1].parse().unwrap(),
            );
            let want = if d == (r + 1) % N {
                (k, k * b)
            } else if d == (r + 2) % N {
                (1, 64)
            } else {
                (0, 0)
            };
            assert_eq!((m, by), want, "from {r} to {d}");
        }
    }
}

/// `target/<profile>/examples/<name>`, built by `cargo test` along with the tests.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} not built (cargo test builds examples)",
        path.display()
    );
    path
}

#[test]
fn unbalanced_example_checks_itself_and_its_summary_counts_its_allreduces() {
    for n in [2, 4, 5] {
        let mut cmd = Command::new(common::shmrun());
        cmd.args(["-n", &n.to_string(), "--timeout", "60", "--stats"])
            .arg(example("unbalanced"));
        let out = run_with_watchdog(cmd);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(stdout.lines().count(), n, "{stdout}");
        assert_eq!(stdout.matches("(4x the work)").count(), 1, "{stdout}");
        let at = err
            .lines()
            .position(|l| l.starts_with("calls per kind"))
            .unwrap();
        for line in err.lines().skip(at + 1).take(n) {
            assert!(
                line.trim_end().ends_with(')') && line.contains("allreduce_into 5 ("),
                "{line}"
            );
        }
    }
}
