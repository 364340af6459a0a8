//! The examples and the benchmark programs of `perf/rust/`, built with the `mpi`
//! feature, run unchanged under a real `mpirun` (the MPI backend) and check their own
//! results, as `tests/examples.rs` runs them under `shmrun`.
#![cfg(feature = "mpi")]

mod mpi_common;

use std::path::PathBuf;

use mpi_common::{assert_success, mpirun, mpirun_cmd};

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
    let mut cmd = mpirun_cmd(n, example(name).to_str().unwrap());
    cmd.args(args);
    cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    let out = mpi_common::common_watchdog(cmd);
    assert_success(&out, &format!("example {name} at N={n} under {}", mpirun()));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn hello_ranks_and_messages_under_mpirun() {
    for n in [1, 2, 3, 4] {
        let out = run("hello", n, &[]);
        for r in 0..n {
            assert!(
                out.contains(&format!("I am rank {r} in group of {n} processes")),
                "{out}"
            );
        }
        assert!(run("ranks", n, &[]).contains(&format!("coordinating {n} ranks")));
        if n >= 2 {
            assert!(run("send_object", n, &[]).contains("rank 1 received Data"));
            assert!(run("send_array", n, &[]).contains("rank 1 received 100 doubles"));
        }
    }
    for size in ["0", "8", "65536", "3000000"] {
        assert!(run("pingpong", 2, &[size, "100"]).contains("us one-way"));
    }
}

#[test]
fn pi_and_jacobi_check_their_answers_under_mpirun() {
    for n in [1, 2, 3, 4] {
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
fn loan_frames_runs_unchanged_under_mpirun() {
    for n in [2, 3] {
        let out = run("loan_frames", n, &["40", "320", "240"]);
        assert!(out.contains("producer: 40 frames"), "{out}");
        assert_eq!(out.matches("frames checked").count(), n - 1, "{out}");
    }
}

#[test]
fn osu_benchmarks_run_under_mpirun() {
    for (name, n, header) in [
        ("osu_latency", 2, "# Size          Latency (us)"),
        ("osu_bw", 2, "# Size      Bandwidth (MB/s)"),
        ("osu_allreduce", 3, "# Size       Avg Latency(us)"),
        ("osu_barrier", 4, "# Avg Latency(us)"),
        ("osu_bcast", 4, "# Size       Avg Latency(us)"),
    ] {
        let out = run(name, n, &["-m", "65536", "-i", "20"]);
        assert!(out.contains(header), "{name}: {out}");
        let last = out.lines().rfind(|l| !l.starts_with('#'));
        let fields: Vec<&str> = last.unwrap_or("").split_whitespace().collect();
        let ok = match (name, fields.as_slice()) {
            ("osu_barrier", [v]) => v.parse::<f64>().is_ok(),
            (_, [size, v]) => *size == "65536" && v.parse::<f64>().is_ok(),
            _ => false,
        };
        assert!(ok, "{name}: last data line {last:?} in {out}");
    }
    let out = run("osu_bw", 2, &["-m", "65536", "-i", "20", "-n"]);
    assert!(out.contains("isend_vec/irecv_into"), "{out}");
}
