//! The launcher: exit codes, failures, signals, timeouts, and nothing left behind.

// `eprint!("{}", format!(..))` on purpose: one write per line, so lines of ranks
// writing at once do not interleave.
#![allow(clippy::format_in_format_args)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{assert_success, is_child, launch_self, run_with_watchdog, shmrun};
use shmpi::Error;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Processes (other than us) whose environment has `SHMPI_TEST_CHILD=name`.
fn leftover_ranks(name: &str) -> Vec<u32> {
    let needle = format!("SHMPI_TEST_CHILD={name}\0");
    let me = std::process::id();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
            if env.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                // Zombies are already dead.
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                if !stat.contains(") Z ") {
                    pids.push(pid);
                }
            }
        }
    }
    pids
}

fn dev_shm_entries() -> usize {
    std::fs::read_dir("/dev/shm")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn any_program_can_be_launched_with_rank_and_size_in_its_environment() {
    let mut cmd = Command::new(shmrun());
    cmd.args([
        "-np",
        "3",
        "--tag-output",
        "sh",
        "-c",
        "echo rank=$SHMPI_RANK size=$SHMPI_SIZE",
    ]);
    let out = run_with_watchdog(cmd);
    assert_success(&out, "sh under shmrun");
    let text = String::from_utf8_lossy(&out.stdout);
    for r in 0..3 {
        assert!(text.contains(&format!("[{r}] rank={r} size=3")), "{text}");
    }
}

#[test]
fn a_missing_program_exits_127_with_a_clear_message() {
    let out = run_with_watchdog({
        let mut c = Command::new(shmrun());
        c.args(["-n", "2", "/no/such/program"]);
        c
    });
    assert_eq!(out.status.code(), Some(127));
    assert!(
        stderr(&out).contains("/no/such/program") && stderr(&out).contains("not found"),
        "{}",
        stderr(&out)
    );
    let dir = std::env::temp_dir().join(format!("shmpi-noexec-{}", std::process::id()));
    std::fs::write(&dir, "#!/bin/sh\n").unwrap();
    let out = run_with_watchdog({
        let mut c = Command::new(shmrun());
        c.arg("-n").arg("2").arg(&dir);
        c
    });
    std::fs::remove_file(&dir).ok();
    assert_eq!(out.status.code(), Some(127));
    assert!(
        stderr(&out).contains("permission denied"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_launcher_arguments_are_refused() {
    for args in [
        &["-n", "0", "true"][..],
        &["-n", "two", "true"],
        &["-n", "2"],
        &["-n", "2", "--timeout", "-1", "true"],
    ] {
        let out = run_with_watchdog({
            let mut c = Command::new(shmrun());
            c.args(args);
            c
        });
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(!stderr(&out).is_empty());
    }
}

/// An argument starting with `-` before the program is one of the launcher's options
/// or an error naming it (as mpirun does), never taken for the program; after `--`,
/// or after the program, it belongs to the program.
#[test]
fn an_unknown_launcher_option_is_an_error_naming_it() {
    let run = |args: &[&str]| {
        run_with_watchdog({
            let mut c = Command::new(shmrun());
            c.args(args);
            c
        })
    };
    for args in [
        &["-n", "2", "--profile", "run.json", "true"][..],
        &["-n", "2", "-x", "true"],
        &["--bogus=1", "-n", "2", "true"],
    ] {
        let out = run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        let opt = args
            .iter()
            .find(|a| a.starts_with('-') && !["-n"].contains(a));
        let opt = opt.unwrap().split('=').next().unwrap();
        assert!(
            err.contains(&format!("unknown option '{opt}'")),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("--tag-output") && err.contains("--timeout"),
            "{err}"
        );
        assert!(!err.contains("cannot start"), "{err}");
    }
    let out = run(&["-n", "1", "echo", "--trace", "x"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "--trace x\n");
    let out = run(&["-n", "1", "--", "--not-a-program"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    for args in [
        &["-n2", "true"][..],
        &["-np=2", "true"],
        &["--np=2", "--timeout=9", "true"],
    ] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn the_failing_ranks_exit_code_becomes_the_jobs() {
    const NAME: &str = "the_failing_ranks_exit_code_becomes_the_jobs";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        if w.rank() == 2 {
            std::process::exit(3);
        }
        // The others wait for a message rank 2 will never send: they must be released.
        let e = w.recv::<u8>(2, 0).unwrap_err();
        assert!(
            matches!(e, Error::PeerFailed { rank: 2, .. } | Error::Aborted { .. }),
            "{e}"
        );
        return;
    }
    let out = launch_self(NAME, 4, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rank 2") && stderr(&out).contains("exited with code 3"),
        "{}",
        stderr(&out)
    );
}

/// A rank whose thread panics drops its Universe while unwinding: its peers must learn
/// that it failed, not that it finished (`Exit::Panicked`, not `Exit::Finalized`).
/// Rank 1 catches its panic, so that its process outlives the others' check and the
/// departure they see is its own, not the launcher's report of its exit.
#[test]
fn a_rank_that_panics_is_reported_to_its_peers_as_panicked_not_finished() {
    const NAME: &str = "a_rank_that_panics_is_reported_to_its_peers_as_panicked_not_finished";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let me = u.world().rank();
        if me == 1 {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                let _gone_with_the_panic = u;
                panic!("rank 1 fails on purpose");
            }));
            assert!(r.is_err());
            return;
        }
        let w = u.world();
        let e = w.recv::<u8>(1, 0).unwrap_err();
        eprint!("{}", format!("rank {me}: {e}\n"));
        assert!(
            matches!(
                e,
                Error::PeerFailed {
                    rank: 1,
                    how: shmpi::Exit::Panicked,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("panicked"), "{e}");
        return;
    }
    let out = launch_self(NAME, 3, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_rank_killed_mid_run_ends_the_job_fast_and_leaves_nothing_behind() {
    const NAME: &str = "a_rank_killed_mid_run_ends_the_job_fast_and_leaves_nothing_behind";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        if w.rank() == 1 {
            // Some traffic first, then die without warning.
            w.send(&1u32, 0, 0).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            let t = shmpi::wtime();
            // One write per line, so that lines of different ranks do not interleave.
            eprint!("{}", format!("killing myself at {t:.6}\n"));
            nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL).unwrap();
        }
        if w.rank() == 0 {
            w.recv::<u32>(1, 0).unwrap();
        }
        let e = w.recv::<u32>(1, 1).unwrap_err();
        let t = shmpi::wtime();
        // One write per line, as above.
        eprint!("{}", format!("rank {} released at {t:.6}: {e}\n", w.rank()));
        assert!(
            matches!(
                e,
                Error::PeerFailed {
                    rank: 1,
                    how: shmpi::Exit::Signal(9),
                    ..
                }
            ),
            "{e}"
        );
        return;
    }
    let shm_before = dev_shm_entries();
    let start = Instant::now();
    let out = launch_self(NAME, 4, &[]);
    // The same clock as the ranks' wtime (CLOCK_MONOTONIC); the watchdog polls every 10 ms.
    let launcher_gone = shmpi::wtime();
    let elapsed = start.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(128 + 9), "{err}");
    assert!(err.contains("rank 1") && err.contains("signal 9"), "{err}");
    // The killed rank's death ends the job well under a second after it.
    let died: f64 = err
        .lines()
        .find_map(|l| l.strip_prefix("killing myself at "))
        .unwrap_or_else(|| panic!("{err}"))
        .trim()
        .parse()
        .unwrap();
    let released: Vec<f64> = err
        .lines()
        .filter_map(|l| l.split(" released at ").nth(1))
        .map(|l| {
            l.split(':')
                .next()
                .unwrap()
                .parse()
                .unwrap_or_else(|_| panic!("{err}"))
        })
        .collect();
    assert_eq!(released.len(), 3, "every other rank got an error: {err}");
    let worst = released.iter().map(|t| t - died).fold(0.0, f64::max);
    let teardown = launcher_gone - died;
    eprintln!(
        "peers released {worst:.3} s and the launcher gone {teardown:.3} s after the death; job took {elapsed:?}"
    );
    assert!(worst < 1.0, "peers released {worst} s after the death");
    assert!(
        teardown < 1.0,
        "the launcher exited {teardown} s after the death"
    );
    assert!(leftover_ranks(NAME).is_empty());
    assert_eq!(dev_shm_entries(), shm_before, "nothing new in /dev/shm");
}

#[test]
fn a_panicking_rank_is_reported_and_the_others_released() {
    const NAME: &str = "a_panicking_rank_is_reported_and_the_others_released";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        if w.rank() == 0 {
            panic!("rank 0 gives up");
        }
        assert!(w.recv::<u8>(0, 0).is_err());
        return;
    }
    let out = launch_self(NAME, 3, &[]);
    assert_eq!(out.status.code(), Some(101), "{}", stderr(&out));
    assert!(stderr(&out).contains("rank 0"), "{}", stderr(&out));
}

#[test]
fn a_rank_that_returns_early_releases_those_waiting_on_it() {
    const NAME: &str = "a_rank_that_returns_early_releases_those_waiting_on_it";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        if w.rank() == 1 {
            w.send(&5u8, 0, 0).unwrap();
            return; // leaves the job normally, sending nothing more
        }
        // The message sent before leaving still arrives...
        assert_eq!(w.recv::<u8>(1, 0).unwrap(), 5);
        // ...but nothing else will: a clear error, not a hang.
        let e = w.recv::<u8>(1, 0).unwrap_err();
        assert!(matches!(e, Error::PeerFailed { rank: 1, .. }), "{e}");
        assert!(e.to_string().contains("rank 1"), "{e}");
        return;
    }
    let out = launch_self(NAME, 2, &[]);
    assert_success(&out, NAME);
}

#[test]
fn abort_stops_the_job_with_the_given_code() {
    const NAME: &str = "abort_stops_the_job_with_the_given_code";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        if w.rank() == 1 {
            w.abort(7);
        }
        let e = w.recv::<u8>(1, 0).unwrap_err();
        assert!(
            e.to_string().contains("abort(7)") || matches!(e, Error::PeerFailed { .. }),
            "{e}"
        );
        return;
    }
    let out = launch_self(NAME, 3, &[]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
}

#[test]
fn timeout_stops_a_stuck_job_and_reports_what_each_rank_waits_on() {
    const NAME: &str = "timeout_stops_a_stuck_job_and_reports_what_each_rank_waits_on";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        if w.rank() == 0 {
            // Computes for ever: not a deadlock, but the job never ends.
            loop {
                std::hint::black_box((0..1000u64).sum::<u64>());
            }
        }
        let _ = w.recv::<u8>(0, 11);
        return;
    }
    let out = launch_self(NAME, 2, &["--timeout", "1.5"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(124), "{err}");
    assert!(err.contains("timeout"), "{err}");
    assert!(
        err.contains("rank 0") && err.contains("is running"),
        "{err}"
    );
    assert!(
        err.contains("rank 1") && err.contains("recv(source=0, tag=11) on world"),
        "{err}"
    );
}

#[test]
fn a_deadlock_is_detected_and_explained() {
    const NAME: &str = "a_deadlock_is_detected_and_explained";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        // Both wait for each other: a classic deadlock.
        let e = w.recv::<u8>(1 - w.rank(), 11).unwrap_err();
        assert!(e.to_string().contains("deadlock"), "{e}");
        return;
    }
    let start = Instant::now();
    let out = launch_self(NAME, 2, &[]);
    let err = stderr(&out);
    eprintln!("deadlock reported after {:?}", start.elapsed());
    assert_eq!(
        out.status.code(),
        Some(shmpi::launch::EXIT_DEADLOCK),
        "{err}"
    );
    assert!(
        err.contains(
            "deadlock: rank 0 waits in recv(source=1, tag=11) on world; rank 1 waits in recv(source=0, tag=11) on world"
        ),
        "{err}"
    );
}

#[test]
fn a_slow_rank_that_computes_is_not_a_deadlock() {
    const NAME: &str = "a_slow_rank_that_computes_is_not_a_deadlock";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        match w.rank() {
            0 => {
                // Busy for longer than the deadlock threshold, then sends.
                let t = Instant::now();
                while t.elapsed() < Duration::from_millis(1500) {
                    std::hint::black_box((0..1000u64).sum::<u64>());
                }
                for r in 1..w.size() {
                    w.send(&42u32, r, 0).unwrap();
                }
            }
            _ => assert_eq!(w.recv::<u32>(0, 0).unwrap(), 42),
        }
        return;
    }
    let out = launch_self(NAME, 3, &[]);
    assert_success(&out, NAME);
}

#[test]
fn a_rank_that_exits_before_init_releases_those_waiting_on_it() {
    const NAME: &str = "a_rank_that_exits_before_init_releases_those_waiting_on_it";
    if is_child(NAME) {
        if std::env::var("SHMPI_RANK").unwrap() == "1" {
            std::process::exit(0);
        }
        let u = shmpi::init().unwrap();
        let e = u.world().recv::<u8>(1, 0).unwrap_err();
        assert!(
            matches!(
                e,
                Error::PeerFailed {
                    rank: 1,
                    how: shmpi::Exit::Code(0),
                    ..
                }
            ),
            "{e}"
        );
        return;
    }
    let out = launch_self(NAME, 2, &[]);
    assert_success(&out, NAME);
}

#[test]
fn killing_the_launcher_kills_every_rank() {
    const NAME: &str = "killing_the_launcher_kills_every_rank";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        let _ = w.recv::<u8>(ANY, 0); // waits forever
        return;
    }
    const ANY: i32 = shmpi::ANY_SOURCE;
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(shmrun())
        .args(["-n", "3"])
        .arg(exe)
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env("SHMPI_TEST_CHILD", NAME)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while leftover_ranks(NAME).len() < 3 {
        assert!(t.elapsed() < Duration::from_secs(30), "ranks did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let t = Instant::now();
    while !leftover_ranks(NAME).is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "ranks outlived the launcher: {:?}",
            leftover_ranks(NAME)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigterm_to_the_launcher_is_forwarded_and_ends_the_job() {
    const NAME: &str = "sigterm_to_the_launcher_is_forwarded_and_ends_the_job";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let _ = u.world().recv::<u8>(shmpi::ANY_SOURCE, 0);
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(shmrun());
    cmd.args(["-n", "2"])
        .arg(exe)
        .args([NAME, "--exact", "--nocapture"])
        .env("SHMPI_TEST_CHILD", NAME);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let t = Instant::now();
    while leftover_ranks(NAME).len() < 2 {
        assert!(t.elapsed() < Duration::from_secs(30), "ranks did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "launcher did not stop"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(128 + 15));
    assert!(leftover_ranks(NAME).is_empty());
}

#[test]
fn made_up_environment_variables_give_a_clear_init_error() {
    const NAME: &str = "made_up_environment_variables_give_a_clear_init_error";
    if is_child(NAME) {
        let e = shmpi::init().unwrap_err();
        println!("INIT ERROR: {e}");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for (fd, rank, size, expect) in [
        ("999", "0", "2", "not an open descriptor"),
        ("0", "0", "2", "not a shmpi segment"),
        ("x", "0", "2", "not a non-negative number"),
        ("3", "5", "2", "not below"),
    ] {
        let mut cmd = Command::new(&exe);
        cmd.args([NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env("SHMPI_TEST_CHILD", NAME);
        cmd.env("SHMPI_FD", fd)
            .env("SHMPI_RANK", rank)
            .env("SHMPI_SIZE", size);
        let out = run_with_watchdog(cmd);
        assert_success(&out, "child with bad environment");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("INIT ERROR") && text.contains(expect),
            "{expect}: {text}"
        );
    }
    // Only some of the variables set.
    let mut cmd = Command::new(&exe);
    cmd.args([NAME, "--exact", "--nocapture"])
        .env("SHMPI_TEST_CHILD", NAME)
        .env("SHMPI_RANK", "0");
    cmd.env_remove("SHMPI_FD").env_remove("SHMPI_SIZE");
    let out = run_with_watchdog(cmd);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("only some of"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn init_twice_is_an_error_and_a_singleton_works_without_the_launcher() {
    const NAME: &str = "init_twice_is_an_error_and_a_singleton_works_without_the_launcher";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        assert_eq!((w.rank(), w.size()), (0, 1));
        w.send(&"self".to_string(), 0, 1).unwrap();
        assert_eq!(w.recv::<String>(0, 1).unwrap(), "self");
        assert!(matches!(shmpi::init(), Err(Error::Init(_))));
        println!("SINGLETON OK");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([NAME, "--exact", "--nocapture"])
        .env("SHMPI_TEST_CHILD", NAME);
    cmd.env_remove("SHMPI_FD")
        .env_remove("SHMPI_RANK")
        .env_remove("SHMPI_SIZE");
    let out = run_with_watchdog(cmd);
    assert_success(&out, "singleton");
    assert!(String::from_utf8_lossy(&out.stdout).contains("SINGLETON OK"));
}

#[test]
fn the_segment_is_private_to_the_job() {
    const NAME: &str = "the_segment_is_private_to_the_job";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        println!(
            "PID {} FD {}",
            std::process::id(),
            std::env::var("SHMPI_FD").unwrap()
        );
        // Stay alive until the parent has probed us.
        let _ = u.world().recv::<u8>(0, 0);
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let shm_before = dev_shm_entries();
    let mut child = Command::new(shmrun())
        .args(["-n", "1", "--timeout", "60"])
        .arg(exe)
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env("SHMPI_TEST_CHILD", NAME)
        .env("SHMPI_DEADLOCK_MS", "0") // it waits on purpose
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut rd = std::io::BufReader::new(child.stdout.take().unwrap());
    while !line.contains("PID ") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut rd, &mut line).unwrap() > 0,
            "child said nothing"
        );
    }
    let parts: Vec<&str> = line[line.find("PID ").unwrap()..]
        .split_whitespace()
        .collect();
    let (pid, fd) = (parts[1], parts[3]);
    // No name in /dev/shm: the segment is an anonymous memfd...
    assert_eq!(dev_shm_entries(), shm_before);
    // ...that the rank closed after mapping it, so not even /proc/<pid>/fd shows it...
    let path = format!("/proc/{pid}/fd/{fd}");
    let link = std::fs::read_link(&path);
    assert!(
        link.as_ref()
            .map_or(true, |l| !l.to_string_lossy().contains("shmpi")),
        "{link:?}"
    );
    // ...and its mapping can only be reached by the job's own user (or root): another
    // user is refused.
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let seg_line = maps
        .lines()
        .find(|l| l.contains("memfd:shmpi"))
        .expect("segment mapped");
    let range = seg_line.split_whitespace().next().unwrap();
    if rustix::process::geteuid().is_root() {
        use std::os::unix::process::CommandExt;
        let out = Command::new("cat")
            .arg(format!("/proc/{pid}/map_files/{range}"))
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        assert!(!out.status.success(), "another user could read the segment");
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let _ = child.wait();
}

#[test]
fn ranks_killed_by_segv_or_abort_are_reported_with_their_signal() {
    const NAME: &str = "ranks_killed_by_segv_or_abort_are_reported_with_their_signal";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        if w.rank() == 1 {
            let sig = nix::sys::signal::Signal::try_from(
                std::env::var("SIG").unwrap().parse::<i32>().unwrap(),
            )
            .unwrap();
            // Rust's runtime handles SIGSEGV (stack overflow detection) and would let a
            // raised one return: restore the default action, as for a real crash.
            // SAFETY: resetting a signal to its default action.
            unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl) }.unwrap();
            nix::sys::signal::raise(sig).unwrap();
        }
        let e = w.recv::<u8>(1, 0).unwrap_err();
        assert!(
            matches!(
                e,
                Error::PeerFailed {
                    rank: 1,
                    how: shmpi::Exit::Signal(_),
                    ..
                }
            ),
            "{e}"
        );
        return;
    }
    for (sig, name) in [(11, "SIGSEGV"), (6, "SIGABRT")] {
        let exe = std::env::current_exe().unwrap();
        let mut cmd = Command::new(shmrun());
        cmd.args(["-n", "3", "--timeout", "60"])
            .arg(exe)
            .args([NAME, "--exact", "--nocapture"]);
        cmd.env("SHMPI_TEST_CHILD", NAME)
            .env("SIG", sig.to_string());
        let out = run_with_watchdog(cmd);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(128 + sig), "{err}");
        assert!(err.contains("rank 1 (pid") && err.contains(name), "{err}");
    }
}

#[test]
fn a_deadlock_between_a_collective_and_a_receive_is_explained() {
    const NAME: &str = "a_deadlock_between_a_collective_and_a_receive_is_explained";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        // Rank 0 enters a barrier; rank 1 waits for a message rank 0 never sends.
        let r = if w.rank() == 0 {
            w.barrier()
        } else {
            w.recv::<u8>(0, 3).map(|_| ())
        };
        assert!(r.is_err());
        return;
    }
    let out = launch_self(NAME, 2, &[]);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(shmpi::launch::EXIT_DEADLOCK),
        "{err}"
    );
    assert!(err.contains("rank 0 waits in barrier on world"), "{err}");
    assert!(
        err.contains("rank 1 waits in recv(source=0, tag=3) on world"),
        "{err}"
    );
}

#[test]
fn mismatched_collectives_are_named_not_hung() {
    const NAME: &str = "mismatched_collectives_are_named_not_hung";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        // Rank 0 broadcasts while rank 1 waits in a barrier: a teaching mistake.
        let r = if w.rank() == 0 {
            let mut buf = [1u8; 8];
            w.bcast_into(&mut buf, 0)
        } else {
            w.barrier()
        };
        if let Err(e) = r {
            eprint!("{}", format!("rank {}: {e}\n", w.rank()));
            std::process::exit(3);
        }
        return;
    }
    let out = launch_self(NAME, 2, &[]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("bcast_into") && err.contains("barrier"),
        "{err}"
    );
}
