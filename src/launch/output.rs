//! `--tag-output`: the threads that pass each rank's output on, a prefix before every
//! line, and the wait for them once the ranks have ended.

use std::io::{BufRead, BufReader, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

use crate::sys;

/// How long a `--tag-output` pipe may stay open with nothing to read once every rank
/// has ended, before the launcher stops waiting for it (a rank's descendant holds it).
const IDLE_PIPE_GRACE: Duration = Duration::from_millis(500);

/// A thread that passes one rank's stdout or stderr on, with `[rank] ` before each line.
pub(super) struct Reader {
    handle: std::thread::JoinHandle<()>,
    /// Counts the reads and writes it has done, so that [`drain`] sees it move.
    progress: Arc<AtomicU64>,
    /// Set while it holds a line not yet written out: waiting on a slow stdout is not
    /// idleness.
    busy: Arc<AtomicBool>,
}

impl Reader {
    pub(super) fn start(
        stream: impl std::io::Read + Send + 'static,
        rank: usize,
        is_err: bool,
        lock: Arc<Mutex<()>>,
    ) -> Reader {
        let progress = Arc::new(AtomicU64::new(0));
        let busy = Arc::new(AtomicBool::new(false));
        let (moved, holding) = (progress.clone(), busy.clone());
        let handle = std::thread::spawn(move || {
            let mut rd = BufReader::new(stream);
            let mut line = Vec::new();
            let prefix = format!("[{rank}] ");
            loop {
                line.clear();
                match rd.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        // Relaxed: `drain` only compares the values over time, and the
                        // line itself travels through the pipe, not through these.
                        holding.store(true, Ordering::Relaxed);
                        moved.fetch_add(1, Ordering::Relaxed);
                        if line.last() != Some(&b'\n') {
                            line.push(b'\n');
                        }
                        let _g = lock.lock().unwrap_or_else(|e| e.into_inner());
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
                        moved.fetch_add(1, Ordering::Relaxed);
                        holding.store(false, Ordering::Relaxed);
                    }
                }
            }
        });
        Reader {
            handle,
            progress,
            busy,
        }
    }
}

/// Waits, once every rank has ended, for the readers to pass on all the ranks wrote.
/// A reader that moves (reads or writes) is waited for however long a slow stdout
/// takes; one that waits on a pipe that stays open with nothing in it (a process the
/// rank started holds it) is given up after [`IDLE_PIPE_GRACE`]. A signal the launcher
/// forwards ends the wait at once, and is returned.
pub(super) fn drain(readers: Vec<Reader>, waited: &SigSet) -> Option<Signal> {
    let start = Instant::now();
    let mut pending: Vec<(Reader, u64, Instant)> =
        readers.into_iter().map(|r| (r, 0, start)).collect();
    loop {
        let now = Instant::now();
        pending.retain_mut(|(r, seen, since)| {
            if r.handle.is_finished() {
                return false;
            }
            let p = r.progress.load(Ordering::Relaxed);
            if p != *seen || r.busy.load(Ordering::Relaxed) {
                *seen = p;
                *since = now;
            }
            now.duration_since(*since) < IDLE_PIPE_GRACE
        });
        if pending.is_empty() {
            return None;
        }
        match sys::proc::wait_signal(waited, Duration::from_millis(5)) {
            None | Some(Signal::SIGCHLD) => {}
            Some(sig) => return Some(sig),
        }
    }
}
