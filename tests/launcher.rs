//! The launcher: exit codes, failures, signals, timeouts, and nothing left behind.

// `eprint!("{}", format!(..))` on purpose: one write per line, so lines of ranks
// writing at once do not interleave.
#![allow(clippy::format_in_format_args)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{assert_success, is_child, launch_self, run_with_watchdog, shmrun};
use shmpi::Error;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits for `child` at most `limit`: its status, or `None` once it has been killed
/// for running past it (a hang fails the test fast and leaves nothing running).
fn wait_within(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
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

/// Whether `pid` is a launcher's guard process, which has the launcher's environment.
fn is_guard(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == "shmrun-guard\n")
}

/// How many ranks of test `name` run: [`leftover_ranks`] less `launcher` and its guard.
fn running_ranks(name: &str, launcher: u32) -> usize {
    leftover_ranks(name)
        .into_iter()
        .filter(|&p| p != launcher && !is_guard(p))
        .count()
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

/// Sleeps when dropped: declared before the Universe, it keeps a panicking rank's
/// process alive after the Universe has told its peers of the panic, so that they end
/// (and are reaped) before it.
struct SlowExit;

impl Drop for SlowExit {
    fn drop(&mut self) {
        std::thread::sleep(Duration::from_millis(400));
    }
}

/// A bystander, a rank that fails because another did, is not the job's failure even
/// when the launcher reaps it first: the job's status is the panicking rank's (101)
/// and the report names it. Rank 1's process outlives its peers (`SlowExit`), which
/// exit with 7 as soon as they learn of the panic.
#[test]
fn the_rank_that_panicked_is_blamed_not_the_bystanders_that_end_first() {
    const NAME: &str = "the_rank_that_panicked_is_blamed_not_the_bystanders_that_end_first";
    if is_child(NAME) {
        let _slow = SlowExit;
        let u = shmpi::init().unwrap();
        let w = u.world();
        if w.rank() == 1 {
            std::panic::set_hook(Box::new(|_| {}));
            drop(w);
            panic!("rank 1 fails on purpose");
        }
        let e = w.recv::<u8>(1, 0).unwrap_err();
        eprint!("{}", format!("rank {}: {e}\n", w.rank()));
        std::mem::forget(_slow);
        std::process::exit(7);
    }
    let out = launch_self(NAME, 4, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(101), "{err}");
    assert!(err.contains("shmrun: rank 1 (pid"), "{err}");
    assert!(!err.contains("shmrun: rank 0 (pid"), "{err}");
}

extern "C" fn slow_exit() {
    std::thread::sleep(Duration::from_millis(400));
}

/// A rank that calls `abort(42)` is the job's failure, with status 42, even when the
/// ranks it released exit (with 7) and are reaped before it: its process lingers in an
/// exit handler.
#[test]
fn the_rank_that_called_abort_is_blamed_not_the_bystanders_that_end_first() {
    const NAME: &str = "the_rank_that_called_abort_is_blamed_not_the_bystanders_that_end_first";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        if w.rank() == 1 {
            // SAFETY: registers a plain function with no captured state.
            assert_eq!(unsafe { libc::atexit(slow_exit) }, 0);
            w.abort(42);
        }
        let e = w.recv::<u8>(1, 0).unwrap_err();
        eprint!("{}", format!("rank {}: {e}\n", w.rank()));
        assert!(e.to_string().contains("rank 1 called abort(42)"), "{e}");
        std::process::exit(7);
    }
    let out = launch_self(NAME, 4, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(42), "{err}");
    assert!(err.contains("shmrun: rank 1 (pid"), "{err}");
    assert!(err.contains("called abort(42)"), "{err}");
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

/// A rank that has finalized but whose process lives on (it computes, or sleeps, after
/// dropping its `Universe`) can never send again, so it cannot release the ranks that
/// wait on each other: their deadlock is reported as any other, with a word on the
/// finalized rank, rather than left to hang until `--timeout`.
#[test]
fn a_deadlock_beside_a_rank_that_finalized_and_lives_on_is_reported() {
    const NAME: &str = "a_deadlock_beside_a_rank_that_finalized_and_lives_on_is_reported";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        if w.rank() == 2 {
            drop(w);
            drop(u);
            // Lives on after finalize; the launcher ends it with the job.
            std::thread::sleep(Duration::from_secs(60));
            return;
        }
        let e = w.recv::<u8>(1 - w.rank(), 11).unwrap_err();
        let e = e.to_string();
        assert!(e.contains("deadlock") || e.contains("timeout"), "{e}");
        return;
    }
    let out = launch_self(NAME, 3, &["--timeout", "20"]);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(shmpi::launch::EXIT_DEADLOCK),
        "{err}"
    );
    assert!(
        err.contains(
            "deadlock: rank 0 waits in recv(source=1, tag=11) on world; rank 1 waits in recv(source=0, tag=11) on world"
        ) && err.contains("rank 2 has finalized"),
        "{err}"
    );
    // With the deadlock check off, the timeout report says so too, not that it runs.
    let mut cmd = Command::new(shmrun());
    cmd.args(["-n", "3", "--timeout", "3"])
        .arg(std::env::current_exe().unwrap())
        .args([
            NAME,
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "--quiet",
        ])
        .env("SHMPI_TEST_CHILD", NAME)
        .env("SHMPI_DEADLOCK_MS", "0");
    let out = run_with_watchdog(cmd);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(shmpi::launch::EXIT_TIMEOUT),
        "{err}"
    );
    assert!(
        err.contains(") has finalized (left the job) and its process still runs"),
        "{err}"
    );
}

/// A deadlock in which a rank waits for a non-blocking collective names that
/// collective and the communicator as the program knows them, not the hidden context
/// and sequence-number tag its messages travel with.
#[test]
fn a_deadlock_in_a_non_blocking_collective_names_it_as_the_program_called_it() {
    const NAME: &str = "a_deadlock_in_a_non_blocking_collective_names_it_as_the_program_called_it";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        // Rank 0 never joins the ibarrier: it waits for a message rank 1 never sends.
        let e = if w.rank() == 0 {
            w.recv::<u8>(1, 9).unwrap_err()
        } else {
            w.ibarrier().unwrap().wait().unwrap_err()
        };
        assert!(e.to_string().contains("deadlock"), "{e}");
        return;
    }
    let out = launch_self(NAME, 2, &[]);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(shmpi::launch::EXIT_DEADLOCK),
        "{err}"
    );
    assert!(
        err.contains("rank 1 waits in the wait of a non-blocking collective (ibarrier) for rank 0's part on world"),
        "{err}"
    );
    assert!(!err.contains("2147483648"), "{err}");
}

/// Standard input goes to rank 0, as mpirun (Open MPI, MPICH) gives it by default: the
/// other ranks read end-of-file, not an arbitrary share of its lines.
#[test]
fn standard_input_goes_to_rank_0_and_the_others_read_its_end() {
    let input = std::env::temp_dir().join(format!("shmpi-stdin-{}", std::process::id()));
    let lines: String = (0..1000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&input, lines).unwrap();
    let mut cmd = Command::new(shmrun());
    cmd.args(["-n", "4", "--timeout", "30", "sh", "-c"])
        .arg("n=0; while read -r l; do n=$((n+1)); done; echo \"rank $SHMPI_RANK read $n lines\"")
        .stdin(std::fs::File::open(&input).unwrap());
    let out = run_with_watchdog(cmd);
    let _ = std::fs::remove_file(&input);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("rank 0 read 1000 lines"), "{text}");
    for r in 1..4 {
        assert!(text.contains(&format!("rank {r} read 0 lines")), "{text}");
    }
}

/// `--example` runs the example cargo built, wherever the project's configuration puts
/// the target directory (`build.target-dir` in `.cargo/config.toml`), not only under
/// `CARGO_TARGET_DIR` or `<workspace>/target`. A project of its own, with no
/// dependencies, builds in a moment.
#[test]
fn an_example_is_found_in_the_target_directory_cargo_is_configured_with() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("example_target_dir");
    let _ = std::fs::remove_dir_all(&dir);
    for (path, text) in [
        (
            "Cargo.toml",
            "[package]\nname = \"probe\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n",
        ),
        ("src/lib.rs", ""),
        (
            "examples/hi.rs",
            "fn main() { println!(\"hi from rank {}\", std::env::var(\"SHMPI_RANK\").unwrap()); }\n",
        ),
        (
            ".cargo/config.toml",
            "[build]\ntarget-dir = \"elsewhere\"\n",
        ),
    ] {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let mut cmd = Command::new(shmrun());
    cmd.args(["-n", "2", "--timeout", "120", "--example", "hi"])
        .current_dir(&dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR");
    let out = run_with_watchdog(cmd);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.contains("hi from rank 0") && text.contains("hi from rank 1"),
        "{text}"
    );
    assert!(dir.join("elsewhere").is_dir());
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
    while running_ranks(NAME, child.id()) < 3 {
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

/// Pids in `line` after its last "children " (the test harness may print before it).
fn children_in(line: &str) -> Vec<u32> {
    line.rfind("children ")
        .map(|at| {
            line[at + "children ".len()..]
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills `pids` (a failed test's leftovers), so that a failure leaves nothing running.
fn kill_all(pids: &[u32]) {
    for &p in pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// A launcher killed with SIGKILL takes with it what the ranks started, not only the
/// ranks (PDEATHSIG reaches only its own children): its guard kills the ranks' process
/// groups, holds none of the job's output pipes open, and removes the unfinished trace.
#[test]
fn killing_the_launcher_kills_what_the_ranks_started() {
    use std::io::BufRead;
    const NAME: &str = "killing_the_launcher_kills_what_the_ranks_started";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        // A grandchild of the launcher, and (through sh) a great-grandchild.
        let sleep = Command::new("sleep").arg("300").spawn().unwrap();
        let sh = Command::new("sh")
            .args(["-c", "sleep 300 & echo \"children $$ $!\"; wait"])
            .spawn()
            .unwrap();
        println!("children {}", sleep.id());
        let _ = u.world().recv::<u8>(shmpi::ANY_SOURCE, 0); // waits until killed
        // Reached only if the job ended some other way: leave nothing behind then.
        for mut c in [sleep, sh] {
            let _ = c.kill();
            let _ = c.wait();
        }
        return;
    }
    let dir = std::env::temp_dir().join(format!("shmpi-guard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shm_before = dev_shm_entries();
    let mut child = Command::new(shmrun())
        .args(["-n", "2", "--timeout", "60", "--trace"])
        .arg(dir.join("t.json"))
        .arg(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env("SHMPI_TEST_CHILD", NAME)
        .env("SHMPI_DEADLOCK_MS", "0") // the ranks wait on purpose
        // Not a terminal, so each rank leads a process group of its own.
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Lines, then `None` at the pipe's end: whoever holds it open holds the job's output.
    let (lines, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = lines.send(Some(line));
        }
        let _ = lines.send(None);
    });
    let mut started = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while started.len() < 6 {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Some(line)) => started.extend(children_in(&line)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                kill_all(&started);
                std::fs::remove_dir_all(&dir).ok();
                panic!("the ranks' children did not start: {started:?}");
            }
        }
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let t = Instant::now();
    while !leftover_ranks(NAME).is_empty() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let left = leftover_ranks(NAME);
    kill_all(&left);
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        left.is_empty(),
        "left running 5 s after the launcher was killed: {left:?} (the ranks' children: {started:?})"
    );
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => panic!("the job's stdout is still held open: {e}"),
        }
    }
    assert!(files.is_empty(), "left in the trace's directory: {files:?}");
    assert_eq!(dev_shm_entries(), shm_before, "nothing new in /dev/shm");
}

/// At a normal end the guard goes without killing: what a rank that exited 0 left
/// running is its own business, as it was before there was a guard.
#[test]
fn a_normal_end_leaves_running_what_a_finished_rank_started() {
    const NAME: &str = "a_normal_end_leaves_running_what_a_finished_rank_started";
    let mut cmd = Command::new(shmrun());
    cmd.args([
        "-n",
        "2",
        "sh",
        "-c",
        "sleep 300 >/dev/null 2>&1 & echo \"children $!\"",
    ])
    .env("SHMPI_TEST_CHILD", NAME);
    let out = run_within(cmd, Duration::from_secs(10)).expect("a job of two echoes hung");
    let started: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .flat_map(children_in)
        .collect();
    // Long enough for a guard that mistook the end for the launcher's death to act.
    std::thread::sleep(Duration::from_millis(300));
    let left = leftover_ranks(NAME);
    kill_all(&left);
    assert_success(&out, NAME);
    assert_eq!(started.len(), 2, "{out:?}");
    for p in &started {
        assert!(
            left.contains(p),
            "{p} was killed at the normal end: {left:?}"
        );
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
    while running_ranks(NAME, child.id()) < 2 {
        assert!(t.elapsed() < Duration::from_secs(30), "ranks did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = wait_within(&mut child, Duration::from_secs(10)).expect("launcher did not stop");
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

/// Runs `cmd` (output captured) for at most `limit`: `None`, with the launcher killed,
/// if it is still running then.
fn run_within(mut cmd: Command, limit: Duration) -> Option<std::process::Output> {
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn shmrun");
    wait_within(&mut child, limit)?;
    Some(child.wait_with_output().expect("output"))
}

/// A launcher started with SIGCHLD ignored (as `nohup`-style wrappers and some
/// daemons leave it) would have its ranks reaped by the kernel and wait for them for
/// ever: it must collect them and end with the job's status.
#[test]
fn a_launcher_started_with_sigchld_ignored_still_ends_with_the_job() {
    use std::os::unix::process::CommandExt;
    for (script, code) in [("exit 0", 0), ("[ $SHMPI_RANK = 1 ] && exit 3; exit 0", 3)] {
        let mut cmd = Command::new(shmrun());
        cmd.args(["-n", "2", "sh", "-c", script]);
        // SAFETY: the closure only sets a signal's disposition, which is
        // async-signal-safe, in the child between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::signal::signal(
                    nix::sys::signal::Signal::SIGCHLD,
                    nix::sys::signal::SigHandler::SigIgn,
                )
                .map(|_| ())
                .map_err(std::io::Error::from)
            });
        }
        let out = run_within(cmd, Duration::from_secs(10)).unwrap_or_else(|| {
            panic!("{script}: shmrun with SIGCHLD ignored still ran after 10 s")
        });
        assert_eq!(out.status.code(), Some(code), "{script}: {}", stderr(&out));
    }
}

/// `--tag-output` passes on every line the ranks wrote, even when the reader of
/// shmrun's stdout is much slower than the ranks, which have long ended.
#[test]
fn tag_output_passes_on_every_line_however_slowly_stdout_takes_them() {
    const RANKS: usize = 4;
    const LINES: usize = 5000;
    let mut child = Command::new(shmrun())
        .args([
            "-n",
            &RANKS.to_string(),
            "--tag-output",
            "seq",
            "1",
            &LINES.to_string(),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_err = std::thread::spawn(move || {
        let mut v = String::new();
        let _ = std::io::Read::read_to_string(&mut se, &mut v);
        v
    });
    // About 180 KB, read 512 bytes at a time every 5 ms: well over a second after the
    // ranks (whose output fits their pipes) have ended.
    let mut so = child.stdout.take().unwrap();
    let mut text = Vec::new();
    let mut buf = [0u8; 512];
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "still reading after 60 s"
        );
        match std::io::Read::read(&mut so, &mut buf).unwrap() {
            0 => break,
            k => text.extend_from_slice(&buf[..k]),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = child.wait().unwrap();
    let err = t_err.join().unwrap();
    let slow = start.elapsed();
    assert!(status.success(), "{status:?} {err}");
    let text = String::from_utf8_lossy(&text);
    for r in 0..RANKS {
        let got: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("[{r}] ")))
            .collect();
        let want: Vec<String> = (1..=LINES).map(|i| i.to_string()).collect();
        assert!(
            got == want,
            "rank {r}: {} of {LINES} lines passed on, the last {:?}, stdout drained in {slow:?}",
            got.len(),
            got.last()
        );
    }
}

/// The launcher's own messages to a stderr whose reader has gone must not turn the
/// job's exit status into a panic's (101).
#[test]
fn a_closed_stderr_leaves_the_jobs_exit_status() {
    for tagged in [false, true] {
        let (reader, writer) = nix::unistd::pipe().unwrap();
        drop(reader);
        let mut cmd = Command::new(shmrun());
        cmd.args(["-n", "2"]);
        // Untagged, the ranks write to the closed pipe themselves and die of SIGPIPE;
        // tagged, they write to the launcher, which passes the lines on.
        let say = if tagged {
            "echo rank $SHMPI_RANK >&2; "
        } else {
            ""
        };
        if tagged {
            cmd.arg("--tag-output");
        }
        cmd.args([
            "sh".to_string(),
            "-c".to_string(),
            format!("{say}[ $SHMPI_RANK = 1 ] && exit 3; exit 0"),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(writer));
        let mut child = cmd.spawn().unwrap();
        let status = wait_within(&mut child, Duration::from_secs(20)).expect("shmrun did not end");
        assert_eq!(status.code(), Some(3), "tagged: {tagged}");
    }
}

/// A `--timeout` too large for the clock is a usage error or no limit, not a panic.
#[test]
fn a_timeout_too_large_for_the_clock_is_refused_or_no_limit() {
    let run = |t: &str| {
        run_within(
            {
                let mut c = Command::new(shmrun());
                c.args(["-n", "2", "--timeout", t, "true"]);
                c
            },
            Duration::from_secs(20),
        )
        .expect("shmrun ended")
    };
    for t in ["1e300", "inf", "nan", "0", "-1"] {
        let out = run(t);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "--timeout {t}: {err}");
        assert!(
            err.contains("--timeout must be a positive number"),
            "{t}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    // Past the end of the clock: as good as no limit.
    let out = run("1e19");
    assert!(out.status.success(), "--timeout 1e19: {}", stderr(&out));
}

/// The ranks are told the `--timeout` as it was given, not cut to whole seconds.
#[test]
fn the_ranks_hear_of_a_timeout_below_a_second_as_given() {
    const NAME: &str = "the_ranks_hear_of_a_timeout_below_a_second_as_given";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        let e = w.recv::<u8>(1 - w.rank(), 5).unwrap_err();
        eprint!("{}", format!("rank {}: {e}\n", w.rank()));
        return;
    }
    let out = common::launch_self_env(
        NAME,
        2,
        &["--timeout", "0.3"],
        &[("SHMPI_DEADLOCK_MS", "0")],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(124), "{err}");
    assert!(err.contains("--timeout of 0.3 s expired"), "{err}");
}

/// The trace's path is only replaced once the job has run: a job that cannot start
/// leaves a previous file there untouched, and nothing beside it; a trace that cannot
/// be written fails the launcher (exit 1), unless the job failed first.
#[test]
fn a_trace_path_is_replaced_only_once_the_job_has_run() {
    let dir = std::env::temp_dir().join(format!("shmpi-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.json");
    std::fs::write(&path, "previous").unwrap();
    let run = |trace: &std::path::Path, prog: &[&str]| {
        let mut c = Command::new(shmrun());
        c.args(["-n", "2", "--trace"]).arg(trace).args(prog);
        run_within(c, Duration::from_secs(20)).expect("shmrun ended")
    };
    let out = run(&path, &["/no/such/program"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    let kept = std::fs::read_to_string(&path).unwrap();
    let beside: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let full = run(std::path::Path::new("/dev/full"), &["true"]);
    let full_failed = run(std::path::Path::new("/dev/full"), &["sh", "-c", "exit 3"]);
    let written = run(&path, &["true"]);
    let trace = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(
        kept, "previous",
        "a job that did not start replaced the trace path"
    );
    assert_eq!(
        beside,
        [std::ffi::OsString::from("run.json")],
        "left beside it"
    );
    assert_eq!(full.status.code(), Some(1), "{}", stderr(&full));
    assert!(stderr(&full).contains("/dev/full"), "{}", stderr(&full));
    assert_eq!(
        full_failed.status.code(),
        Some(3),
        "{}",
        stderr(&full_failed)
    );
    assert!(written.status.success(), "{}", stderr(&written));
    assert!(
        trace.starts_with('{') && trace.trim_end().ends_with('}'),
        "{trace}"
    );
}

/// The `SHMPI_*` variables the launcher reads are checked like `SHMPI_RING_BYTES`: a
/// value that is not a number in range is an error naming the variable and the range.
#[test]
fn the_launchers_environment_variables_are_checked_not_ignored() {
    for (var, value, range) in [
        ("SHMPI_DEADLOCK_MS", "x", "0 or more"),
        ("SHMPI_GRACE_MS", "-5", "0 or more"),
        ("SHMPI_TRACE_EVENTS", "1", "16..=16777216"),
        ("SHMPI_TRACE_EVENTS", "99999999", "16..=16777216"),
    ] {
        let out = run_within(
            {
                let mut c = Command::new(shmrun());
                c.args(["-n", "1", "true"]).env(var, value);
                c
            },
            Duration::from_secs(20),
        )
        .expect("shmrun ended");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{var}={value}: {err}");
        assert!(
            err.contains(var) && err.contains(range),
            "{var}={value}: {err}"
        );
    }
    let out = run_within(
        {
            let mut c = Command::new(shmrun());
            c.args(["-n", "1", "true"])
                .env("SHMPI_TRACE_EVENTS", "16")
                .env("SHMPI_GRACE_MS", "0");
            c
        },
        Duration::from_secs(20),
    )
    .expect("shmrun ended");
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A stopped job stops what its ranks started too: each rank leads a process group
/// and the launcher signals the group, and kills it when its rank fails. (`sh` starts
/// a background `sleep` with SIGINT ignored, so only the kill ends that one.)
#[test]
fn stopping_the_job_stops_what_the_ranks_started() {
    use nix::sys::signal::Signal;
    const NAME: &str = "stopping_the_job_stops_what_the_ranks_started";
    for (script, sig, code) in [
        ("sleep 1000 & wait", Some(Signal::SIGTERM), 128 + 15),
        ("sleep 1000 & wait", Some(Signal::SIGINT), 128 + 2),
        ("sleep 1000 & [ $SHMPI_RANK = 1 ] && exit 3; wait", None, 3),
    ] {
        let mut child = Command::new(shmrun())
            .args(["-n", "2", "sh", "-c", script])
            .env("SHMPI_TEST_CHILD", NAME)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let launcher = child.id();
        let others = || -> Vec<u32> {
            leftover_ranks(NAME)
                .into_iter()
                .filter(|&p| p != launcher && !is_guard(p))
                .collect()
        };
        if let Some(sig) = sig {
            let t = Instant::now();
            while others().len() < 4 {
                assert!(t.elapsed() < Duration::from_secs(20), "ranks did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(launcher as i32), sig).unwrap();
        }
        let status = wait_within(&mut child, Duration::from_secs(10));
        let t = Instant::now();
        while !others().is_empty() && t.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = others();
        for &p in &left {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), Signal::SIGKILL);
        }
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(code),
            "{script} {sig:?}"
        );
        assert!(
            left.is_empty(),
            "{script} {sig:?}: left running after the job stopped: {left:?}"
        );
    }
}

/// A directory given as the program is named as one, not as a permission problem.
#[test]
fn a_directory_given_as_the_program_is_named_as_one() {
    let dir = std::env::temp_dir();
    let out = run_with_watchdog({
        let mut c = Command::new(shmrun());
        c.arg("-n").arg("2").arg(&dir);
        c
    });
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(stderr(&out).contains("is a directory"), "{}", stderr(&out));
}

/// A rank that dies (SIGABRT) while its receiver copies a large message straight from
/// its buffer is that receiver's `PeerFailed`, naming it and how it ended, not the
/// system's "No such process" from `process_vm_readv`; the job ends as that rank did.
#[test]
fn a_sender_that_dies_while_its_message_is_read_is_a_peer_failure() {
    const NAME: &str = "a_sender_that_dies_while_its_message_is_read_is_a_peer_failure";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        if w.rank() == 1 {
            let big = vec![5u8; 64 << 20];
            let _: shmpi::Result<()> = w.scope(|s| {
                let _r = s.isend_slice(&big, 0, 0)?;
                std::process::abort();
            });
        }
        match w.recv_vec::<u8>(1, 0) {
            // The receiver may have read it all before the sender died.
            Ok((v, _)) => assert!(v.iter().all(|&b| b == 5)),
            Err(e) => {
                eprint!("{}", format!("rank 0: {e}\n"));
                assert!(matches!(e, shmpi::Error::PeerFailed { rank: 1, .. }), "{e}");
            }
        }
        return;
    }
    let out = launch_self(NAME, 2, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(134), "{err}");
    assert!(err.contains("shmrun: rank 1 (pid"), "{err}");
    assert!(!err.contains("process_vm_readv"), "{err}");
}
