//! Running rank code under the real launcher, with a watchdog.
//!
//! A multi-process test re-runs its own test binary as the ranks: the parent spawns
//! `shmrun -n N <this test binary> <test name> --exact`, with `SHMPI_TEST_CHILD` set
//! to the test's name; in each rank the same test function finds the variable and runs
//! the rank code instead of launching. The harness itself is never forked.

#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use shmpi::Communicator;

/// Wall-clock limit of one multi-process test run (the launcher's `--timeout` is
/// shorter, so a hang normally ends with shmrun's report of who waits on what).
pub const WATCHDOG: Duration = Duration::from_secs(120);

/// Path of the launcher binary built for the tests.
pub fn shmrun() -> &'static str {
    env!("CARGO_BIN_EXE_shmrun")
}

/// Whether this process is a rank started by [`launch_self`] for test `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var("SHMPI_TEST_CHILD").is_ok_and(|v| v == name)
}

/// Runs `f` on every rank of an N-rank job started through `shmrun`, and asserts
/// the job succeeds. `name` must be the test function's name.
pub fn run_ranks(name: &str, n: usize, f: impl Fn(&Communicator)) {
    run_ranks_with_env(name, n, &[], f)
}

/// [`run_ranks`] with extra environment variables for the ranks (tunables).
pub fn run_ranks_with_env(name: &str, n: usize, env: &[(&str, &str)], f: impl Fn(&Communicator)) {
    if is_child(name) {
        let universe = shmpi::init().expect("init under shmrun");
        f(&universe.world());
        return;
    }
    let out = launch_self_env(name, n, &[], env);
    let with = if env.is_empty() {
        String::new()
    } else {
        format!(" and {env:?}")
    };
    assert_success(&out, &format!("{name} with {n} ranks{with}"));
}

/// Starts `shmrun -n N [extra launcher args] <this binary> name --exact` and returns
/// its output, killing it if it outlives the watchdog.
pub fn launch_self(name: &str, n: usize, launcher_args: &[&str]) -> Output {
    launch_self_env(name, n, launcher_args, &[])
}

/// [`launch_self`] with extra environment variables.
pub fn launch_self_env(
    name: &str,
    n: usize,
    launcher_args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(shmrun());
    cmd.arg("-n").arg(n.to_string());
    if !launcher_args.contains(&"--timeout") {
        cmd.arg("--timeout").arg("90");
    }
    cmd.args(launcher_args);
    cmd.arg(exe).args([
        name,
        "--exact",
        "--nocapture",
        "--test-threads=1",
        "--quiet",
    ]);
    cmd.env("SHMPI_TEST_CHILD", name);
    cmd.envs(env.iter().copied());
    run_with_watchdog(cmd)
}

/// Runs a command to completion under the watchdog, capturing its output.
pub fn run_with_watchdog(mut cmd: Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    // Drain the pipes in threads so a chatty child cannot block on a full pipe.
    let mut so = child.stdout.take().expect("piped");
    let mut se = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut so, &mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut se, &mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if start.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("watchdog: {cmd:?} did not finish within {WATCHDOG:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// Panics with the job's output unless it exited 0.
pub fn assert_success(out: &Output, what: &str) {
    if !out.status.success() {
        panic!(
            "{what} failed with {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A deterministic pseudo-random generator (xorshift64*), the same in every rank.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Makes `communicators_in_use` count only live communicators: a rank's data slot
/// keeps the area of its last use of each half until the half is reused, so reuse both
/// on `w` (a large reduce goes through them in chunks of a half; a large allreduce at
/// 2 ranks may read the peer's memory directly instead).
pub fn flush_slots(w: &Communicator) {
    let big = vec![1u64; 1 << 16];
    let mut sum = vec![0u64; big.len()];
    w.reduce_into(&big, &mut sum, shmpi::Op::Sum, 0)
        .expect("a world reduce to flush the slots");
    w.barrier().expect("a world barrier after the flush");
}

/// Calls `poll` until it returns a result or fails, for at most 20 s.
pub fn poll_until<T>(
    what: &str,
    mut poll: impl FnMut() -> shmpi::Result<Option<T>>,
) -> shmpi::Result<T> {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = poll()? {
            return Ok(v);
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "{what}: still unfinished after 20 s of tests"
        );
    }
}

/// A receive into 4 bytes that a test failed because its senders left: it stays pending,
/// as ULFM's `MPI_ERR_PROC_FAILED_PENDING` leaves a wildcard receive, so it can still be
/// cancelled, and its buffer comes back untouched.
pub fn cancels_untouched(mut req: shmpi::Request<(Vec<u8>, shmpi::Status)>) {
    assert!(req.cancel().unwrap(), "the receive had matched nothing");
    let (buf, st) = req.wait().unwrap();
    assert!(st.is_cancelled() && buf == [0u8; 4], "{st:?} {buf:?}");
}
