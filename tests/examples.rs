//! The examples run under the real launcher at several N and check their own results.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{assert_success, run_with_watchdog, shmrun};

/// `target/<profile>/examples/<name>`, built by `cargo test` along with the tests.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} not built (cargo test builds examples)",
        path.display()
    );
    path
}

fn run(name: &str, n: usize, args: &[&str]) -> String {
    let mut cmd = Command::new(shmrun());
    cmd.arg("-n")
        .arg(n.to_string())
        .args(["--timeout", "60"])
        .arg(example(name))
        .args(args);
    let out = run_with_watchdog(cmd);
    assert_success(&out, &format!("example {name} at N={n}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn hello_prints_every_rank_at_several_sizes() {
    for n in [1, 2, 3, 8, 16, 64, 256] {
        let out = run("hello", n, &[]);
        for r in 0..n {
            assert!(
                out.contains(&format!("I am rank {r} in group of {n} processes")),
                "{out}"
            );
        }
    }
}

#[test]
fn rank_branching_example_runs_at_several_sizes() {
    for n in [1, 2, 4, 9] {
        let out = run("ranks", n, &[]);
        assert!(out.contains(&format!("coordinating {n} ranks")), "{out}");
    }
}

#[test]
fn object_and_array_examples_check_their_results() {
    for n in [2, 3, 5] {
        assert!(run("send_object", n, &[]).contains("rank 1 received Data"));
        assert!(run("send_array", n, &[]).contains("rank 1 received 100 doubles"));
    }
}

#[test]
fn loan_frames_hands_every_frame_to_its_consumer_at_several_sizes() {
    for n in [1, 2, 3, 5] {
        let out = run("loan_frames", n, &["40", "320", "240"]);
        if n > 1 {
            assert!(out.contains("producer: 40 frames"), "{out}");
            assert_eq!(out.matches("frames checked").count(), n - 1, "{out}");
        }
    }
}

#[test]
fn pingpong_reports_a_latency() {
    for size in ["0", "8", "65536", "3000000"] {
        let out = run("pingpong", 2, &[size, "200"]);
        assert!(out.contains("us one-way"), "{out}");
    }
}

#[test]
fn pi_and_jacobi_check_their_answers_at_several_sizes() {
    for n in [1, 2, 3, 4, 8] {
        let out = run("pi", n, &[]);
        assert!(out.contains("pi ~= 3.14159"), "{out}");
        let out = run("jacobi", n, &[]);
        assert!(out.contains("matches the serial run"), "{out}");
        if n == 4 {
            assert!(out.contains("(2 x 2 grid)"), "a 2-D Cartesian grid: {out}");
        }
    }
}

#[test]
fn osu_benchmarks_run_briefly_and_print_the_osu_format() {
    for (name, n, header, flag) in [
        ("osu_latency", 2, "# Size          Latency (us)", None),
        ("osu_bw", 2, "# Size      Bandwidth (MB/s)", None),
        ("osu_bw", 2, "# Size      Bandwidth (MB/s)", Some("-w")),
        ("osu_bw", 2, "# Size      Bandwidth (MB/s)", Some("-n")),
        ("osu_bibw", 2, "# Size      Bandwidth (MB/s)", None),
        ("osu_bibw", 2, "# Size      Bandwidth (MB/s)", Some("-w")),
        ("osu_allreduce", 3, "# Size       Avg Latency(us)", None),
        ("osu_barrier", 5, "# Avg Latency(us)", None),
        ("osu_bcast", 4, "# Size       Avg Latency(us)", None),
    ] {
        let mut args = vec!["-m", "65536", "-i", "20"];
        args.extend(flag);
        let out = run(name, n, &args);
        assert!(out.contains(header), "{name}: {out}");
        // The last data line: the 64 KiB row (a failed data check would have aborted
        // the run before it), or osu_barrier's one figure.
        let last = out.lines().rfind(|l| !l.starts_with('#'));
        let fields: Vec<&str> = last.unwrap_or("").split_whitespace().collect();
        let ok = match (name, fields.as_slice()) {
            ("osu_barrier", [v]) => v.parse::<f64>().is_ok(),
            (_, [size, v]) => *size == "65536" && v.parse::<f64>().is_ok(),
            _ => false,
        };
        assert!(ok, "{name}: last data line {last:?} in {out}");
    }
}

#[test]
fn coll_loop_reports_both_collectives_at_several_sizes() {
    for n in [1, 2, 5] {
        let out = run("coll_loop", n, &["50"]);
        assert!(out.contains(&format!("# {n} ranks")), "{out}");
        assert!(
            out.contains("barrier: ") && out.contains("allreduce 1 double: "),
            "{out}"
        );
    }
}
