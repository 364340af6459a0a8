//! Runs test code as the ranks of a real `shmrun` job.
//!
//! A test calls `run_ranks(name, n, f)`. In the test process this re-runs the test
//! binary under `shmrun -n n`, filtered to the test `name`, with `SHMPI_TEST_CHILD=name`
//! set; in those children (the ranks) it calls `f` with the world communicator. A
//! watchdog kills the job if it runs past 90 s; the test fails unless every rank exits 0.

#![allow(dead_code)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shmpi::Communicator;

/// Environment variable that marks a rank process and names its test.
pub const CHILD_ENV: &str = "SHMPI_TEST_CHILD";

const WATCHDOG: Duration = Duration::from_secs(90);

/// Runs `f` on `n` ranks launched by `shmrun` (see the module docs).
pub fn run_ranks(name: &str, n: usize, f: impl Fn(&Communicator)) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        let u = shmpi::init().unwrap();
        f(&u.world());
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shmrun"))
        .args(["-n", &n.to_string(), "--timeout", "60"])
        .arg(&exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain the pipes in threads so a chatty job cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if start.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (so, se) = (t_out.join().unwrap(), t_err.join().unwrap());
    match status {
        Some(st) if st.success() => {}
        Some(st) => panic!("{name} on {n} ranks failed: {st}\n--- stdout\n{so}\n--- stderr\n{se}"),
        None => panic!(
            "{name} on {n} ranks hung (killed after {WATCHDOG:?})\n--- stdout\n{so}\n--- stderr\n{se}"
        ),
    }
}
