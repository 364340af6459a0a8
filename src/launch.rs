//! The launcher as a library: create the segment, start N ranks, watch them, and end
//! the job cleanly whatever they do. `bin/shmrun.rs` is a thin CLI over [`launch`].
//!
//! - All ranks exit 0: the job exits 0.
//! - A rank exits non-zero or is killed by a signal: the job is marked aborted in the
//!   segment (blocked calls in the other ranks return an error), every sleeper is
//!   woken, the others get a short grace period (`SHMPI_GRACE_MS`, default 100 ms) and
//!   are then killed; the launcher reports which rank failed and how and exits with its
//!   code (128 + signal for a signal).
//! - SIGINT, SIGTERM, SIGHUP and SIGQUIT are forwarded to the ranks.
//! - `timeout`: the job is stopped, with a report of what each rank was blocked on,
//!   and the launcher exits with 124 (like `timeout(1)`).
//! - If the launcher dies, the ranks die with it (`PR_SET_PDEATHSIG`), and the
//!   segment, a memfd, disappears with the last process that maps it.
//! - Deadlock: when every live rank has been asleep in a blocking call for
//!   `SHMPI_DEADLOCK_MS` (default 500 ms) without any of those calls ending, and no ring
//!   holds a message, nothing can ever release them: the launcher prints who waits on
//!   whom, stops the job and exits with 120. A rank that computes is not blocked, so
//!   it never counts as deadlocked.
//! - A program that cannot be started: a clear message and exit 127, like a shell.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

use crate::call::Call;
use crate::doorbell;
use crate::error::{Error, Exit, Result};
use crate::init::{ENV_FD, ENV_RANK, ENV_SIZE};
use crate::layout::{Layout, Params};
use crate::segment::{AbortInfo, AbortKind, STATE_ATTACHED, Segment, WaitOp};
use crate::sys;
use crate::trace::{Job, Output};
use crate::tuning;
pub use crate::tuning::{KNOBS, Knob, help_text as env_help};

/// Exit status when the program cannot be started.
pub const EXIT_CANNOT_START: i32 = 127;
/// Exit status when `--timeout` stopped the job.
pub const EXIT_TIMEOUT: i32 = 124;
/// Exit status when the launcher found the job deadlocked.
pub const EXIT_DEADLOCK: i32 = 120;

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
    let ring_bytes = match cfg.ring_bytes {
        Some(b) => b,
        None => tuning::ring_bytes(n)?,
    };
    let layout = Layout::new(n, ring_bytes)?;
    if let Some(avail) = mem_available() {
        if layout.total_len as u64 > avail {
            return Err(Error::Usage(format!(
                "the shared segment for {n} ranks with {ring_bytes}-byte rings needs {} MiB but only \
                 {} MiB of memory is available; use fewer ranks or a smaller SHMPI_RING_BYTES",
                layout.total_len >> 20,
                avail >> 20
            )));
        }
    }
    // Before anything starts: an unwritable trace path is an error now, not at the end.
    let mut job = Job::new(n, cfg.trace.as_deref(), cfg.stats, tuning::trace_events())?;
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
    let result = run(cfg, &seg, sys::shm::raw(&fd), &cpus, &waited, &mut job);
    sys::proc::restore_signals(&old_mask);
    result
}

/// One rank's process as the launcher tracks it.
struct RankProc {
    pid: i32,
    exit: Option<Exit>,
    /// When the launcher reaped it (trace ticks).
    ended_at: u64,
}

fn run(
    cfg: &LaunchConfig,
    seg: &Arc<Segment>,
    fd: i32,
    cpus: &[usize],
    waited: &SigSet,
    job: &mut Option<Job>,
) -> Result<i32> {
    let n = cfg.nranks;
    let out_lock = Arc::new(Mutex::new(()));
    let mut readers = Vec::new();
    let mut procs: Vec<RankProc> = Vec::with_capacity(n);
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
        let setup = sys::proc::ChildSetup {
            segment_fd: fd,
            cpu: (cfg.bind == Bind::Core && !cpus.is_empty()).then(|| cpus[r % cpus.len()]),
            launcher: std::process::id() as i32,
        };
        match sys::proc::spawn(&mut cmd, setup) {
            Ok(mut child) => {
                if cfg.tag_output {
                    let out = child.stdout.take().expect("piped");
                    let err = child.stderr.take().expect("piped");
                    readers.push(tag_lines(out, r, false, out_lock.clone()));
                    readers.push(tag_lines(err, r, true, out_lock.clone()));
                }
                procs.push(RankProc {
                    pid: child.id() as i32,
                    exit: None,
                    ended_at: 0,
                });
            }
            Err(e) => {
                for p in &procs {
                    sys::proc::signal(p.pid, Signal::SIGKILL);
                }
                reap_all(&mut procs);
                let prog = cfg.program.to_string_lossy();
                let why = match e.kind() {
                    std::io::ErrorKind::NotFound => "command not found".to_string(),
                    std::io::ErrorKind::PermissionDenied => {
                        "permission denied (is it executable?)".to_string()
                    }
                    _ => e.to_string(),
                };
                eprintln!("shmrun: cannot start {prog}: {why}");
                return Ok(EXIT_CANNOT_START);
            }
        }
    }

    let grace = tuning::grace();
    let start = Instant::now();
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
        if let (Some(limit), None) = (cfg.timeout, &stop) {
            wait_for = wait_for.min((start + limit).saturating_duration_since(now));
        }
        match sys::proc::wait_signal(waited, wait_for) {
            Some(Signal::SIGCHLD) | None => {}
            Some(sig) => {
                // Forward to the ranks, and stop the job if they do not stop by themselves.
                for p in procs.iter().filter(|p| p.exit.is_none()) {
                    sys::proc::signal(p.pid, sig);
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
                    kill_at = Some(Instant::now() + Duration::from_secs(1));
                }
            }
        }
        // Reap whatever has exited.
        loop {
            match sys::proc::reap_any() {
                sys::proc::Reaped::Ended(pid, how) => {
                    on_exit(&mut procs, seg, pid, how, &mut first_failure)
                }
                sys::proc::Reaped::Nothing => break,
                sys::proc::Reaped::Other => {}
            }
        }
        if first_failure.is_some() && kill_at.is_none() {
            kill_at = Some(Instant::now() + grace);
        }
        if let (Some(limit), None) = (cfg.timeout, &stop) {
            if start.elapsed() >= limit && procs.iter().any(|p| p.exit.is_none()) {
                let report = blocked_report(seg, &procs);
                if let Some(j) = job.as_mut() {
                    j.mark("timeout", &report, None);
                }
                seg.set_abort(AbortInfo {
                    kind: AbortKind::Timeout,
                    rank: 0,
                    value: limit.as_secs() as i32,
                });
                wake_all(seg);
                stop = Some((
                    format!(
                        "shmrun: timeout after {:.1} s; the job was stopped\n{report}",
                        limit.as_secs_f64()
                    ),
                    EXIT_TIMEOUT,
                ));
                kill_at = Some(Instant::now() + grace);
            }
        }
        if stop.is_none() && first_failure.is_none() && !deadlock_after.is_zero() {
            if let Some(report) = watch.check(seg, &procs, deadlock_after) {
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
                kill_at = Some(Instant::now() + grace);
            }
        }
        if kill_at.is_some_and(|t| Instant::now() >= t) {
            for p in procs.iter().filter(|p| p.exit.is_none()) {
                sys::proc::signal(p.pid, Signal::SIGKILL);
                killed_by_us += 1;
            }
            kill_at = Some(Instant::now() + Duration::from_secs(3600));
        }
    }

    // Output of ranks that left grandchildren holding the pipes is not waited for.
    let deadline = Instant::now() + Duration::from_millis(500);
    for h in readers {
        while !h.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if h.is_finished() {
            let _ = h.join();
        }
    }

    let out = job.take().map(|j| finish_job(j, &procs));
    if let Some(o) = &out {
        for note in &o.notes {
            eprintln!("{note}");
        }
        if let Some(s) = &o.stats {
            eprint!("{s}");
        }
    }
    if let Some((report, code)) = stop {
        eprintln!(
            "{report}{}",
            trace_pointer(out.as_ref(), &["deadlock", "timeout", "signal"])
        );
        return Ok(code);
    }
    if let Some((rank, how)) = first_failure {
        let pid = procs[rank].pid;
        let at = format!("rank {rank} ended");
        eprintln!(
            "shmrun: rank {rank} (pid {pid}) {how}{}",
            trace_pointer(out.as_ref(), &[&at])
        );
        let others = procs
            .iter()
            .enumerate()
            .filter(|(r, p)| *r != rank && failed(p.exit))
            .count();
        if killed_by_us > 0 || others > 0 {
            eprintln!(
                "shmrun: the job was aborted: {others} other rank(s) ended abnormally{}",
                if killed_by_us > 0 {
                    format!(", {killed_by_us} killed by shmrun after the grace period")
                } else {
                    String::new()
                }
            );
        }
        return Ok(match how {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
            Exit::Finalized => 1,
            Exit::Panicked => 101,
        });
    }
    Ok(0)
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
    let is_failure = !matches!(how, Exit::Code(0));
    if is_failure
        && first_failure.is_none()
        && seg.abort_info().is_none_or(|a| a.rank as usize == rank)
    {
        *first_failure = Some((rank, how));
        let (kind, value) = match how {
            Exit::Signal(s) => (AbortKind::RankKilled, s),
            Exit::Code(c) => (AbortKind::RankExited, c),
            Exit::Finalized => (AbortKind::RankExited, 1),
            Exit::Panicked => (AbortKind::RankExited, 101),
        };
        seg.set_abort(AbortInfo {
            kind,
            rank: rank as u32,
            value,
        });
    } else if is_failure && first_failure.is_none() {
        // The job was already aborted (by a rank's abort() or a timeout): keep the
        // first rank that ended badly as the one to report.
        *first_failure = Some((rank, how));
    }
    // Peers waiting on this rank re-check who is alive.
    wake_all(seg);
}

fn wake_all(seg: &Segment) {
    for r in 0..seg.nranks() {
        doorbell::ring(&seg.ctrl(r).bell);
    }
}

fn reap_all(procs: &mut [RankProc]) {
    for p in procs.iter_mut() {
        if p.exit.is_none() {
            sys::proc::reap(p.pid);
            p.exit = Some(Exit::Signal(9));
        }
    }
}

/// What rank `r` is blocked on, from the wait description it publishes: `None` if it
/// is not blocked in shmpi.
fn blocked_on(seg: &Segment, r: usize) -> Option<(String, u32)> {
    let w = &seg.ctrl(r).wait;
    let op = w.op.load(Ordering::Relaxed);
    if op == 0 {
        return None;
    }
    let peer = w.peer.load(Ordering::Relaxed);
    let tag = w.tag.load(Ordering::Relaxed);
    let ctx = w.ctx.load(Ordering::Relaxed);
    let name = Call::from_code(w.name.load(Ordering::Relaxed)).map_or("an operation", Call::name);
    let peer_s = if peer < 0 {
        "ANY_SOURCE".to_string()
    } else {
        peer.to_string()
    };
    let tag_s = if tag < 0 {
        "ANY_TAG".to_string()
    } else {
        tag.to_string()
    };
    let on = if ctx == 0 {
        "world".to_string()
    } else {
        format!("communicator context {ctx} (ranks are world ranks)")
    };
    let what = match op {
        1 | 3 => format!("{name}(source={peer_s}, tag={tag_s}) on {on}"),
        2 => format!(
            "{name}(dest={peer_s}, tag={tag_s}) on {on}, the ring to rank {peer_s} being full"
        ),
        4 => format!("{name} for a request (peer {peer_s}, tag {tag_s}) on {on}"),
        5 => "finalize, flushing its sends".to_string(),
        7 => {
            format!("{name}(dest={peer_s}, tag={tag_s}) on {on}, waiting for the matching receive")
        }
        _ => format!("{name} on {on}"),
    };
    Some((what, ctx))
}

/// What each live rank is doing.
fn blocked_report(seg: &Segment, procs: &[RankProc]) -> String {
    let mut lines = Vec::new();
    for (r, p) in procs.iter().enumerate() {
        if p.exit.is_some() {
            continue;
        }
        let what = match blocked_on(seg, r) {
            Some((w, _)) => format!("waits in {w}"),
            None => "is running (not blocked in shmpi)".to_string(),
        };
        lines.push(format!("  rank {r} (pid {}) {what}", p.pid));
    }
    lines.join("\n")
}

/// Watches for a job in which every live rank sleeps in a blocking call that never
/// ends, with no message in flight.
#[derive(Default)]
struct DeadlockWatch {
    /// (rank, epoch) of every live rank at the first sample of the current stretch.
    snapshot: Vec<(usize, u64)>,
    since: Option<Instant>,
}

impl DeadlockWatch {
    fn check(&mut self, seg: &Segment, procs: &[RankProc], after: Duration) -> Option<String> {
        let Some(snap) = Self::sample(seg, procs) else {
            self.since = None;
            return None;
        };
        if self.since.is_none() || snap != self.snapshot {
            self.snapshot = snap;
            self.since = Some(Instant::now());
            return None;
        }
        if self.since.is_some_and(|t| t.elapsed() < after) {
            return None;
        }
        // Confirmed: describe it.
        let mut waits = Vec::new();
        let mut colls: Vec<(usize, String, u32)> = Vec::new();
        for &(r, _) in &self.snapshot {
            let (what, ctx) = blocked_on(seg, r)?;
            if seg.ctrl(r).wait.op.load(Ordering::Relaxed) == WaitOp::Collective as u32 {
                colls.push((r, what.clone(), ctx));
            }
            waits.push(format!("rank {r} waits in {what}"));
        }
        let mut text = format!("shmrun: deadlock: {}", waits.join("; "));
        let mismatched = colls
            .iter()
            .any(|(_, w, c)| colls.iter().any(|(_, w2, c2)| c == c2 && w != w2));
        if mismatched {
            text.push_str(
                "\nshmrun: the ranks called different collectives on the same communicator; every rank \
                 must call the same collectives in the same order",
            );
        }
        text.push_str(
            "\nshmrun: every live rank is blocked and no message is in flight that could release any of \
             them, so none can ever continue; the job was stopped",
        );
        Some(text)
    }

    /// The (rank, epoch) of every live rank if all of them sleep in a blocking call
    /// and every ring between them is empty; `None` otherwise.
    fn sample(seg: &Segment, procs: &[RankProc]) -> Option<Vec<(usize, u64)>> {
        let live: Vec<usize> = (0..procs.len())
            .filter(|&r| procs[r].exit.is_none())
            .collect();
        if live.is_empty() {
            return None;
        }
        let mut snap = Vec::with_capacity(live.len());
        for &r in &live {
            let c = seg.ctrl(r);
            if seg.state(r) != STATE_ATTACHED
                || c.wait.op.load(Ordering::Relaxed) == 0
                || c.bell.sleeping.load(Ordering::Relaxed) == 0
            {
                return None;
            }
            snap.push((r, c.wait.epoch.load(Ordering::Relaxed)));
        }
        for &i in &live {
            for &j in &live {
                if i != j && !seg.ring_is_empty(i, j) {
                    return None;
                }
            }
        }
        Some(snap)
    }
}

fn tag_lines(
    stream: impl std::io::Read + Send + 'static,
    rank: usize,
    is_err: bool,
    lock: Arc<Mutex<()>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut rd = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match rd.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if line.last() != Some(&b'\n') {
                        line.push(b'\n');
                    }
                    let _g = lock.lock().unwrap_or_else(|e| e.into_inner());
                    let prefix = format!("[{rank}] ");
                    if is_err {
                        let mut e = std::io::stderr().lock();
                        let _ = e
                            .write_all(prefix.as_bytes())
                            .and_then(|_| e.write_all(&line));
                    } else {
                        let mut o = std::io::stdout().lock();
                        let _ = o
                            .write_all(prefix.as_bytes())
                            .and_then(|_| o.write_all(&line))
                            .and_then(|_| o.flush());
                    }
                }
            }
        }
    })
}

/// `MemAvailable` from /proc/meminfo, in bytes.
fn mem_available() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
