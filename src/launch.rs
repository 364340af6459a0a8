//! The launcher as a library: create the segment, start N ranks, watch them, and end
//! the job cleanly whatever they do. `bin/shmrun.rs` is a thin CLI over [`launch`].
//!
//! - All ranks exit 0: the job exits 0.
//! - A rank exits non-zero or is killed by a signal: the job is marked aborted in the
//!   segment (blocked calls in the other ranks return an error), every sleeper is
//!   woken, the others get a short grace period (`SHMPI_GRACE_MS`, default 100 ms) and
//!   are then killed; the launcher reports which rank failed and how and exits with its
//!   code (128 + signal for a signal).
//! - SIGINT, SIGTERM, SIGHUP and SIGQUIT are forwarded to the ranks. When the
//!   launcher's stdin is not a terminal, each rank runs in a process group of its own
//!   and signals go to the whole group, so that what a rank started stops with it (on
//!   a terminal the ranks stay in the launcher's group: in groups of their own, a rank
//!   that read the terminal would be stopped by SIGTTIN).
//! - `timeout`: the job is stopped, with a report of what each rank was blocked on,
//!   and the launcher exits with 124 (like `timeout(1)`).
//! - If the launcher dies, the ranks die with it (`PR_SET_PDEATHSIG`), and the
//!   segment, a memfd, disappears with the last process that maps it. When the ranks
//!   run in groups of their own, what they started dies too: a guard process the
//!   launcher forked first kills those groups when the launcher's end of a socket
//!   closes without a word of a normal end, and removes an unfinished trace file
//!   (`sys/guard.rs` has the design and its limits: a process that leaves its rank's
//!   group escapes it, and on a terminal only the ranks die).
//! - Deadlock: when every live rank has been asleep in a blocking call for
//!   `SHMPI_DEADLOCK_MS` (default 500 ms) without any of those calls ending, and no ring
//!   holds a message, nothing can ever release them: the launcher prints who waits on
//!   whom, stops the job and exits with 120. A rank that computes is not blocked, so
//!   it never counts as deadlocked. A rank that has finalized while its process lives
//!   on can release nobody, so it does not hide the others' deadlock; but it may still
//!   drop the views of loans it holds, so a loan wait on it is said once (a stall, who
//!   waits and who holds the loans) and the job goes on (`launch/watch.rs`).
//! - A program that cannot be started: a clear message and exit 127, like a shell.
//! - `--tag-output`: every line the ranks wrote is passed on, however slowly stdout
//!   takes it; only pipes left open by a rank's descendants, and idle, are given up.
//! - A trace that was asked for and could not be written: exit 1 (unless the job failed:
//!   then its status). The trace is written beside its path and renamed at the end, so
//!   a job that does not start leaves a previous file there untouched.
//! - The launcher's own messages never panic on a closed stderr.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

use crate::doorbell;
use crate::error::{Error, Exit, Result};
use crate::init::{ENV_FD, ENV_RANK, ENV_SIZE};
use crate::layout::{Layout, Params};
use crate::segment::{AbortInfo, AbortKind, Segment};
use crate::sys;
use crate::trace::{Job, Output};
use crate::tuning;

mod output;
mod watch;

pub use crate::tuning::{KNOBS, Knob, help_text as env_help};
use output::{Reader, drain};
use watch::{DeadlockWatch, Found, blocked_report};

/// Exit status when the program cannot be started.
pub const EXIT_CANNOT_START: i32 = 127;
/// Exit status when `--timeout` stopped the job.
pub const EXIT_TIMEOUT: i32 = 124;
/// Exit status when the launcher found the job deadlocked.
pub const EXIT_DEADLOCK: i32 = 120;
/// Exit status when the job succeeded but its trace could not be written (and the
/// launcher's own errors).
pub const EXIT_LAUNCHER_ERROR: i32 = 1;

/// Prints a line of the launcher's own to stderr. A write error is ignored: a closed
/// stderr must not turn the job's exit status into a panic's.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// How to bind ranks to CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Bind {
    /// Let the kernel place the ranks.
    #[default]
    None,
    /// Rank r runs on the r-th allowed CPU (modulo their number).
    Core,
}

/// What to launch, and how.
#[derive(Debug, Clone)]
pub struct LaunchConfig {
    /// Number of ranks.
    pub nranks: usize,
    /// The program and its arguments.
    pub program: OsString,
    /// Arguments passed to every rank.
    pub args: Vec<OsString>,
    /// Prefix every output line with `[rank] `.
    pub tag_output: bool,
    /// CPU binding.
    pub bind: Bind,
    /// Stop the job after this long.
    pub timeout: Option<Duration>,
    /// Ring size in bytes (a power of two); `None` for the default for N.
    pub ring_bytes: Option<usize>,
    /// Write a trace of every rank's calls and messages here when the job ends
    /// (Chrome trace JSON, or an HTML page if the name ends in `.html`).
    pub trace: Option<PathBuf>,
    /// Print a summary of each rank's communication when the job ends.
    pub stats: bool,
}

impl LaunchConfig {
    /// A configuration with the defaults: no tags, no binding, no timeout.
    pub fn new(nranks: usize, program: impl Into<OsString>) -> Self {
        LaunchConfig {
            nranks,
            program: program.into(),
            args: Vec::new(),
            tag_output: false,
            bind: Bind::None,
            timeout: None,
            ring_bytes: None,
            trace: None,
            stats: false,
        }
    }
}

/// Runs the job to its end and returns the exit status for the launcher.
pub fn launch(cfg: &LaunchConfig) -> Result<i32> {
    let n = cfg.nranks;
    // Inherited as ignored, the kernel would reap the ranks before we could.
    sys::proc::default_sigchld();
    check_env()?;
    let ring_bytes = match cfg.ring_bytes {
        Some(b) => b,
        None => tuning::ring_bytes(n)?,
    };
    let layout = Layout::new(n, ring_bytes)?;
    if let Some(avail) = mem_available() {
        if layout.total_len as u64 > avail {
            // Already at the smallest ring, fewer ranks is the only way.
            let smaller = if ring_bytes > 4096 {
                " or a smaller SHMPI_RING_BYTES (down to 4096)"
            } else {
                ""
            };
            return Err(Error::Usage(format!(
                "the shared segment for {n} ranks with {ring_bytes}-byte rings needs {} MiB but only \
                 {} MiB of memory is available (a job whose every pair of ranks talks commits all \
                 of it); use fewer ranks{smaller}",
                layout.total_len >> 20,
                avail >> 20
            )));
        }
    }
    // Before anything starts: an unwritable trace path is an error now, not at the end.
    let mut trace = cfg.trace.as_deref().map(TraceFile::new);
    // Before the trace or the segment exists, so that the guard holds neither.
    let guard = sys::guard::Guard::start(n, trace.as_ref().and_then(|t| t.tmp.as_deref()))
        .map_err(|e| Error::os("starting the job's guard process", e))?;
    let events = tuning::trace_events();
    let mut job = match trace.as_mut() {
        None => Job::new(n, None, cfg.stats, events)?,
        Some(t) => {
            let beside = t
                .tmp
                .as_deref()
                .map(|tmp| Job::new(n, Some(tmp), cfg.stats, events));
            match beside {
                Some(Ok(j)) => j,
                // No file can be made beside it: write in place, which truncates it now.
                _ => {
                    t.discard();
                    Job::new(n, Some(&t.path), cfg.stats, events)?
                }
            }
        }
    };
    let cpus = sys::proc::allowed_cpus();
    let (fd, map) = sys::shm::create(layout.total_len)?;
    let launcher_pid = std::process::id() as i32;
    let seg = Segment::init(
        map,
        Params {
            nranks: n,
            ring_bytes,
            ncpus: cpus.len(),
            single_copy: n > 1 && !tuning::cma_off() && sys::cma::usable(),
        },
        launcher_pid,
    )?;
    let seg = Arc::new(seg);

    // Block the signals we wait for, before any thread exists, so every thread
    // inherits the mask and `sigtimedwait` gets them. Ranks unblock them before exec.
    let (waited, old_mask) = sys::proc::block_signals(&[
        Signal::SIGCHLD,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ])?;
    let result = run(
        cfg,
        &seg,
        sys::shm::raw(&fd),
        &cpus,
        &waited,
        &mut job,
        trace.as_mut(),
        &guard,
    );
    // Every rank has been reaped: what is left running is no longer the guard's.
    guard.end();
    sys::proc::restore_signals(&old_mask);
    result
}

/// One rank's process as the launcher tracks it.
struct RankProc {
    pid: i32,
    exit: Option<Exit>,
    /// When the launcher reaped it (trace ticks).
    ended_at: u64,
    /// shmrun sent it SIGKILL after the grace period.
    killed: bool,
}

#[allow(clippy::too_many_arguments)] // what `launch` made, handed over once
fn run(
    cfg: &LaunchConfig,
    seg: &Arc<Segment>,
    fd: i32,
    cpus: &[usize],
    waited: &SigSet,
    job: &mut Option<Job>,
    trace: Option<&mut TraceFile>,
    guard: &sys::guard::Guard,
) -> Result<i32> {
    let n = cfg.nranks;
    let out_lock = Arc::new(Mutex::new(()));
    let mut readers = Vec::new();
    let mut procs: Vec<RankProc> = Vec::with_capacity(n);
    // On a terminal, a rank in a group of its own would be stopped by SIGTTIN when it
    // reads stdin; elsewhere a group lets a stop reach what the rank started.
    let own_group = !std::io::stdin().is_terminal();
    for r in 0..n {
        let mut cmd = Command::new(&cfg.program);
        cmd.args(&cfg.args)
            .env(ENV_RANK, r.to_string())
            .env(ENV_SIZE, n.to_string())
            .env(ENV_FD, fd.to_string());
        match job.as_ref() {
            Some(j) => cmd.envs(j.env()),
            // A job started from inside a traced one records nothing of its own.
            None => cmd.env_remove(crate::trace::ENV_TRACE_FD),
        };
        if cfg.tag_output {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        if r != 0 {
            // Standard input goes to rank 0, as mpirun gives it; the others read its
            // end rather than each taking an arbitrary share of the lines.
            cmd.stdin(Stdio::null());
        }
        let setup = sys::proc::ChildSetup {
            segment_fd: fd,
            cpu: (cfg.bind == Bind::Core && !cpus.is_empty()).then(|| cpus[r % cpus.len()]),
            launcher: std::process::id() as i32,
            own_group,
        };
        match sys::proc::spawn(&mut cmd, setup) {
            Ok(mut child) => {
                if own_group {
                    guard.watch(child.id() as i32);
                }
                if cfg.tag_output {
                    if let Some(out) = child.stdout.take() {
                        readers.push(Reader::start(out, r, false, out_lock.clone()));
                    }
                    if let Some(err) = child.stderr.take() {
                        readers.push(Reader::start(err, r, true, out_lock.clone()));
                    }
                }
                procs.push(RankProc {
                    pid: child.id() as i32,
                    exit: None,
                    ended_at: 0,
                    killed: false,
                });
            }
            Err(e) => {
                for p in &procs {
                    sys::proc::signal_group(p.pid, Signal::SIGKILL);
                }
                reap_all(&mut procs, guard);
                let prog = cfg.program.to_string_lossy();
                let why = match e.kind() {
                    std::io::ErrorKind::NotFound => "command not found".to_string(),
                    std::io::ErrorKind::PermissionDenied
                        if std::path::Path::new(&cfg.program).is_dir() =>
                    {
                        "it is a directory, not a program".to_string()
                    }
                    std::io::ErrorKind::PermissionDenied => {
                        "permission denied (is it executable?)".to_string()
                    }
                    _ => e.to_string(),
                };
                say!("shmrun: cannot start {prog}: {why}");
                return Ok(EXIT_CANNOT_START);
            }
        }
    }

    let grace = tuning::grace();
    let start = Instant::now();
    // A deadline past the end of the clock is no deadline.
    let deadline = cfg.timeout.and_then(|limit| start.checked_add(limit));
    let mut first_failure: Option<(usize, Exit)> = None;
    let mut stop: Option<(String, i32)> = None; // (report, exit code) for timeout/signal
    let mut kill_at: Option<Instant> = None;
    let mut killed_by_us = 0usize;
    let deadlock_after = tuning::deadlock_after();
    let mut watch = DeadlockWatch::default();

    while procs.iter().any(|p| p.exit.is_none()) {
        let now = Instant::now();
        let mut wait_for = Duration::from_millis(100);
        if let Some(t) = kill_at {
            wait_for = wait_for.min(t.saturating_duration_since(now));
        }
        if let (Some(d), None) = (deadline, &stop) {
            wait_for = wait_for.min(d.saturating_duration_since(now));
        }
        match sys::proc::wait_signal(waited, wait_for) {
            Some(Signal::SIGCHLD) | None => {}
            Some(sig) => {
                // Forward to the ranks, and stop the job if they do not stop by themselves.
                for p in procs.iter().filter(|p| p.exit.is_none()) {
                    sys::proc::signal_group(p.pid, sig);
                }
                if stop.is_none() {
                    if let Some(j) = job.as_mut() {
                        j.mark("signal", &format!("shmrun got {}", sig.as_str()), None);
                    }
                    seg.set_abort(AbortInfo {
                        kind: AbortKind::Interrupted,
                        rank: 0,
                        value: sig as i32,
                    });
                    wake_all(seg);
                    stop = Some((
                        format!("shmrun: got {}, stopping the job", sig.as_str()),
                        128 + sig as i32,
                    ));
                    kill_at = Some(later(Duration::from_secs(1)));
                }
            }
        }
        // Reap whatever has exited. Once the job is being stopped, or for a rank that
        // failed, what the rank started goes with it.
        loop {
            let stopping = stop.is_some() || first_failure.is_some();
            match sys::proc::reap_any(
                |how| stopping || !matches!(how, Exit::Code(0)),
                |pid| guard.forget(pid),
            ) {
                sys::proc::Reaped::Ended(pid, how) => {
                    on_exit(&mut procs, seg, pid, how, &mut first_failure)
                }
                sys::proc::Reaped::Nothing => break,
                sys::proc::Reaped::Other => {}
                sys::proc::Reaped::NoChildren => {
                    if procs.iter().all(|p| p.exit.is_some()) {
                        break;
                    }
                    // Someone else collected the rest (SIGCHLD was ignored after all):
                    // they are gone, and waiting for them would never end.
                    for (r, p) in procs.iter_mut().enumerate() {
                        if p.exit.is_none() {
                            p.exit = Some(Exit::Finalized);
                            seg.mark_exited(r, Exit::Finalized);
                        }
                    }
                    if stop.is_none() {
                        stop = Some((
                            "shmrun: the ranks' exit statuses were lost (waitpid found no child \
                             process left to wait for)"
                                .to_string(),
                            EXIT_LAUNCHER_ERROR,
                        ));
                    }
                    break;
                }
            }
        }
        if first_failure.is_some() && kill_at.is_none() {
            kill_at = Some(later(grace));
        }
        if let (Some(limit), Some(d), None) = (cfg.timeout, deadline, &stop) {
            if Instant::now() >= d && procs.iter().any(|p| p.exit.is_none()) {
                let report = blocked_report(seg, &procs);
                if let Some(j) = job.as_mut() {
                    j.mark("timeout", &report, None);
                }
                seg.set_abort(AbortInfo {
                    kind: AbortKind::Timeout,
                    rank: 0,
                    // Milliseconds, so that a limit below a second is not reported as 0 s.
                    value: limit.as_millis().min(i32::MAX as u128) as i32,
                });
                wake_all(seg);
                stop = Some((
                    format!(
                        "shmrun: timeout after {} s; the job was stopped\n{report}",
                        limit.as_secs_f64()
                    ),
                    EXIT_TIMEOUT,
                ));
                kill_at = Some(later(grace));
            }
        }
        if stop.is_none() && first_failure.is_none() && !deadlock_after.is_zero() {
            match watch.check(seg, &procs, deadlock_after) {
                None => {}
                Some(Found::Stall(note)) => say!("{note}"),
                Some(Found::Deadlock(report)) => {
                    if let Some(j) = job.as_mut() {
                        j.mark("deadlock", &report, None);
                    }
                    seg.set_abort(AbortInfo {
                        kind: AbortKind::Deadlock,
                        rank: 0,
                        value: 0,
                    });
                    wake_all(seg);
                    stop = Some((report, EXIT_DEADLOCK));
                    kill_at = Some(later(grace));
                }
            }
        }
        if kill_at.is_some_and(|t| Instant::now() >= t) {
            for p in procs.iter_mut().filter(|p| p.exit.is_none()) {
                sys::proc::signal_group(p.pid, Signal::SIGKILL);
                p.killed = true;
                killed_by_us += 1;
            }
            kill_at = Some(later(Duration::from_secs(3600)));
        }
    }

    if let Some(sig) = drain(readers, waited) {
        if stop.is_none() && first_failure.is_none() {
            stop = Some((
                format!(
                    "shmrun: got {} while passing on the ranks' output; the rest of it was dropped",
                    sig.as_str()
                ),
                128 + sig as i32,
            ));
        }
    }

    let mut out = job.take().map(|j| finish_job(j, &procs));
    if let (Some(o), Some(t)) = (out.as_mut(), trace) {
        t.commit(o);
    }
    if let Some(o) = &out {
        for note in &o.notes {
            say!("{note}");
        }
        if let Some(s) = &o.stats {
            let _ = write!(std::io::stderr().lock(), "{s}");
        }
    }
    let trace_lost = cfg.trace.is_some() && out.as_ref().is_none_or(|o| o.path.is_none());
    if let Some((report, code)) = stop {
        say!(
            "{report}{}",
            trace_pointer(out.as_ref(), &["deadlock", "timeout", "signal"])
        );
        return Ok(code);
    }
    if first_failure.is_some() {
        // The rank that caused the failure, which need not be the first one reaped: its
        // peers may fail because of it and end before it does.
        let (rank, how, abort_code) = cause(seg, &procs).unwrap_or_else(|| {
            let (r, h) = first_failure.expect("checked");
            (r, h, None)
        });
        let pid = procs[rank].pid;
        let at = format!("rank {rank} ended");
        let what = match abort_code {
            Some(code) => format!("called abort({code})"),
            None => how.to_string(),
        };
        say!(
            "shmrun: rank {rank} (pid {pid}) {what}{}",
            trace_pointer(out.as_ref(), &[&at])
        );
        let others = procs
            .iter()
            .enumerate()
            .filter(|(r, p)| *r != rank && failed(p.exit))
            .count();
        if killed_by_us > 0 || others > 0 {
            say!(
                "shmrun: the job was aborted: {others} other rank(s) ended abnormally{}",
                if killed_by_us > 0 {
                    format!(", {killed_by_us} killed by shmrun after the grace period")
                } else {
                    String::new()
                }
            );
        }
        return Ok(match (abort_code, how) {
            (Some(code), _) => code,
            (None, Exit::Code(c)) => c,
            (None, Exit::Signal(s)) => 128 + s,
            (None, Exit::Finalized) => 1,
            (None, Exit::Panicked) => 101,
        });
    }
    if trace_lost {
        say!("shmrun: the job succeeded but its trace was not written");
        return Ok(EXIT_LAUNCHER_ERROR);
    }
    Ok(0)
}

/// The instant `d` from now, or a year from now if that is past the end of the clock.
fn later(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 86400))
}

/// Checks the `SHMPI_*` variables the launcher itself reads (`tuning` parses them):
/// one that is set but not a number in its range is an error naming it and the range,
/// as `SHMPI_RING_BYTES` is, not a silent default or clamp.
fn check_env() -> Result<()> {
    env_number("SHMPI_GRACE_MS", 0..=u64::MAX, "milliseconds")?;
    env_number("SHMPI_DEADLOCK_MS", 0..=u64::MAX, "milliseconds (0: never)")?;
    env_number("SHMPI_TRACE_EVENTS", 16..=1 << 24, "events per rank")?;
    Ok(())
}

/// Environment variable `name` as a whole number in `range`; `None` if it is unset.
fn env_number(name: &str, range: RangeInclusive<u64>, unit: &str) -> Result<Option<u64>> {
    let Some(raw) = std::env::var_os(name) else {
        return Ok(None);
    };
    let text = raw.to_string_lossy();
    match text.trim().parse::<u64>() {
        Ok(v) if range.contains(&v) => Ok(Some(v)),
        _ => {
            let accepted = if *range.end() == u64::MAX {
                format!("{} or more", range.start())
            } else {
                format!("{}..={}", range.start(), range.end())
            };
            Err(Error::Usage(format!(
                "{name}={text:?} is not valid: it takes a whole number of {unit}, {accepted}; \
                 no rank was started"
            )))
        }
    }
}

/// The trace's path, and the file beside it that the trace is written to first, so
/// that the path is only replaced once the job has run and the trace is complete.
struct TraceFile {
    path: PathBuf,
    /// `None` where the trace is written in place: a device, a pipe, a symbolic link
    /// (renaming over them would replace them), or no file could be made beside it.
    tmp: Option<PathBuf>,
}

impl TraceFile {
    fn new(path: &Path) -> TraceFile {
        let replaceable = match std::fs::symlink_metadata(path) {
            Ok(m) => m.file_type().is_file(),
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
        let tmp = path.file_name().filter(|_| replaceable).map(|name| {
            // Hidden, unique to this launcher, and with the same extension, which
            // decides between JSON and HTML.
            let mut t = OsString::from(".");
            t.push(name);
            t.push(format!(".shmrun-{}", std::process::id()));
            if let Some(ext) = path.extension() {
                t.push(".");
                t.push(ext);
            }
            path.with_file_name(t)
        });
        TraceFile {
            path: path.to_path_buf(),
            tmp,
        }
    }

    /// Removes the file beside the path, if any, and writes in place from now on.
    fn discard(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }

    /// Moves the written trace to its path; a failure becomes a note and no path.
    fn commit(&mut self, out: &mut Output) {
        let Some(tmp) = self.tmp.take() else {
            return;
        };
        if out.path.is_none() {
            let _ = std::fs::remove_file(&tmp);
            return;
        }
        match std::fs::rename(&tmp, &self.path) {
            Ok(()) => out.path = Some(self.path.clone()),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                out.path = None;
                out.notes.push(format!(
                    "shmrun: writing the trace to {} failed: {e}",
                    self.path.display()
                ));
            }
        }
    }
}

impl Drop for TraceFile {
    /// A job that did not run to its end leaves no half-made file behind.
    fn drop(&mut self) {
        self.discard();
    }
}

/// Reads what the ranks recorded, with a marker where each rank ended, and writes it.
fn finish_job(mut job: Job, procs: &[RankProc]) -> Output {
    let mut ends = Vec::with_capacity(procs.len());
    for (r, p) in procs.iter().enumerate() {
        let how = p.exit.map_or("did not end".to_string(), |e| e.to_string());
        let died = !matches!(p.exit, Some(Exit::Code(0)));
        let at = if p.ended_at != 0 {
            p.ended_at
        } else {
            job.now()
        };
        job.mark_at(
            at,
            &format!("rank {r} ended"),
            &format!("rank {r} (pid {}) {how}", p.pid),
            Some(r),
        );
        ends.push(crate::trace::RankEnd {
            pid: p.pid,
            how,
            at,
            died,
        });
    }
    job.finish(&ends)
}

/// A line that says where the trace shows the first of `names`, if a trace was written.
fn trace_pointer(out: Option<&Output>, names: &[&str]) -> String {
    let Some(o) = out else {
        return String::new();
    };
    let Some(path) = &o.path else {
        return String::new();
    };
    match o
        .marker_ms
        .iter()
        .find(|(n, _)| names.contains(&n.as_str()))
    {
        Some((name, ms)) => format!(
            "\nshmrun: the trace {} shows this at {ms:.3} ms: the '{name}' marker on shmrun's \
             track, with what each rank was doing up to it",
            path.display()
        ),
        None => String::new(),
    }
}

fn failed(e: Option<Exit>) -> bool {
    !matches!(e, Some(Exit::Code(0)) | None)
}

fn on_exit(
    procs: &mut [RankProc],
    seg: &Segment,
    pid: i32,
    how: Exit,
    first_failure: &mut Option<(usize, Exit)>,
) {
    let Some(rank) = procs.iter().position(|p| p.pid == pid) else {
        return;
    };
    procs[rank].exit = Some(how);
    procs[rank].ended_at = sys::tracemem::ticks();
    seg.mark_exited(rank, how);
    if !matches!(how, Exit::Code(0)) && first_failure.is_none() {
        *first_failure = Some((rank, how));
        // Tell the others why the job ends: the cause as far as it is known now (a
        // rank's own abort() or a timeout may already have said so).
        if seg.abort_info().is_none() {
            let (r, h, _) = cause(seg, procs).unwrap_or((rank, how, None));
            let (kind, value) = match h {
                Exit::Signal(s) => (AbortKind::RankKilled, s),
                Exit::Code(c) => (AbortKind::RankExited, c),
                Exit::Finalized => (AbortKind::RankExited, 1),
                Exit::Panicked => (AbortKind::RankExited, 101),
            };
            seg.set_abort(AbortInfo {
                kind,
                rank: r as u32,
                value,
            });
        }
    }
    // Peers waiting on this rank re-check who is alive.
    wake_all(seg);
}

/// The rank whose failure ended the job, how it ended, and the code it gave `abort`
/// if it called it; `None` while no rank has failed.
///
/// The first rank reaped with a bad status need not be it: the ranks that waited on
/// the one that failed get an error and may exit before it does (a panic unwinds and
/// prints, an `abort(code)` prints, a rank killed by a signal may dump core). So the
/// evidence that a rank failed first, which its peers could have acted on, comes
/// before the order of reaping:
///
/// 1. a rank's own `abort(code)`, recorded in the segment's abort word before it exits;
/// 2. a rank that panicked (recorded in the segment while it unwinds), unless the first
///    rank reaped panicked too;
/// 3. a rank killed by a signal (not shmrun's SIGKILL after the grace period), which
///    its peers may notice through the system before shmrun reaps it;
/// 4. otherwise the first rank reaped with a bad status.
fn cause(seg: &Segment, procs: &[RankProc]) -> Option<(usize, Exit, Option<i32>)> {
    if let Some(a) = seg.abort_info() {
        if a.kind == AbortKind::RankAborted && (a.rank as usize) < procs.len() {
            let r = a.rank as usize;
            return Some((
                r,
                procs[r].exit.unwrap_or(Exit::Code(a.value)),
                Some(a.value),
            ));
        }
    }
    let ours = |p: &RankProc| p.killed && p.exit == Some(Exit::Signal(Signal::SIGKILL as i32));
    let panicked = |r: usize| seg.departed(r) == Some(Exit::Panicked);
    // Ranks in the order they were reaped (those not reaped yet last).
    let mut order: Vec<usize> = (0..procs.len()).collect();
    order.sort_by_key(|&r| (procs[r].exit.is_none(), procs[r].ended_at));
    let first = order
        .iter()
        .copied()
        .find(|&r| failed(procs[r].exit) && !ours(&procs[r]))
        .or_else(|| order.iter().copied().find(|&r| failed(procs[r].exit)))?;
    let with = |r: usize| -> (usize, Exit, Option<i32>) {
        // A rank that panicked and is not reaped yet, or that shmrun killed while it
        // was still unwinding or printing, ends as a panic (Rust's status 101).
        let how = match procs[r].exit {
            None => Exit::Code(101),
            Some(_) if ours(&procs[r]) && panicked(r) => Exit::Panicked,
            Some(e) => e,
        };
        (r, how, None)
    };
    if panicked(first) || matches!(procs[first].exit, Some(Exit::Signal(_))) {
        return Some(with(first));
    }
    // A panic counts only where the process failed too: one caught, after which the
    // process exits 0, ended nothing.
    let fails = |r: usize| procs[r].exit.is_none_or(|e| e != Exit::Code(0));
    if let Some(r) = order.iter().copied().find(|&r| panicked(r) && fails(r)) {
        return Some(with(r));
    }
    if let Some(r) = order
        .iter()
        .copied()
        .find(|&r| matches!(procs[r].exit, Some(Exit::Signal(_))) && !ours(&procs[r]))
    {
        return Some(with(r));
    }
    Some(with(first))
}

fn wake_all(seg: &Segment) {
    for r in 0..seg.nranks() {
        doorbell::ring(&seg.ctrl(r).bell);
    }
}

fn reap_all(procs: &mut [RankProc], guard: &sys::guard::Guard) {
    for p in procs.iter_mut() {
        if p.exit.is_none() {
            guard.forget(p.pid);
            sys::proc::reap(p.pid);
            p.exit = Some(Exit::Signal(9));
        }
    }
}

/// `MemAvailable` from /proc/meminfo, in bytes.
fn mem_available() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
