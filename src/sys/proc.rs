//! Processes: starting a rank with everything set between fork and exec, and CPU
//! affinity.

use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::Pid;

/// What to set up in the child between fork and exec.
pub(crate) struct ChildSetup {
    /// The segment's descriptor: close-on-exec is cleared so the rank inherits it.
    pub(crate) segment_fd: RawFd,
    /// Pin the child to this CPU.
    pub(crate) cpu: Option<usize>,
    /// The launcher's pid: if the child's parent is no longer this, the launcher died
    /// before `PR_SET_PDEATHSIG` took effect and the child exits at once.
    pub(crate) launcher: i32,
    /// Start the child in a process group of its own, so that [`signal_group`] reaches
    /// the processes it starts too.
    pub(crate) own_group: bool,
}

/// Spawns `cmd` with the rank set-up applied in the child before exec.
pub(crate) fn spawn(cmd: &mut Command, setup: ChildSetup) -> std::io::Result<Child> {
    let ChildSetup {
        segment_fd,
        cpu,
        launcher,
        own_group,
    } = setup;
    if own_group {
        // Set by the child before exec, so the group exists when `spawn` returns.
        cmd.process_group(0);
    }
    // SAFETY: the closure runs in the forked child of a possibly multi-threaded parent
    // and only makes async-signal-safe system calls (fcntl, prctl, getppid,
    // sched_setaffinity, sigprocmask, _exit); it allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(move || {
            super::shm::inherit_across_exec(segment_fd)?;
            // Die with the launcher, so that nothing is left behind if it is killed.
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != launcher {
                libc::_exit(137);
            }
            if let Some(cpu) = cpu {
                let mut set = CpuSet::new();
                if set.set(cpu).is_ok() {
                    // Binding is best effort: a cgroup may forbid this CPU.
                    let _ = sched_setaffinity(Pid::from_raw(0), &set);
                }
            }
            // The launcher blocks the signals it waits for; the rank starts clean.
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
            Ok(())
        });
    }
    cmd.spawn()
}

/// The CPUs this process may run on, in order.
pub(crate) fn allowed_cpus() -> Vec<usize> {
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
        Err(_) => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}

/// Sends `sig` to a process, ignoring a process that is already gone.
pub(crate) fn signal(pid: i32, sig: Signal) {
    let _ = nix::sys::signal::kill(Pid::from_raw(pid), sig);
}

/// Sends `sig` to the process group that `pid` leads (the rank and what it started),
/// or to `pid` alone if it leads none. Only for a child not yet reaped: then its pid,
/// and so its group id, cannot belong to anyone else.
pub(crate) fn signal_group(pid: i32, sig: Signal) {
    if nix::sys::signal::killpg(Pid::from_raw(pid), sig).is_err() {
        signal(pid, sig);
    }
}

/// Sets SIGCHLD to its default action: if it was ignored (inherited from the parent),
/// the kernel would reap the ranks itself and their exit statuses would be lost.
pub(crate) fn default_sigchld() {
    // SAFETY: installing the default action runs no handler code; the launcher has
    // no SIGCHLD handler of its own that this could displace.
    let _ =
        unsafe { nix::sys::signal::signal(Signal::SIGCHLD, nix::sys::signal::SigHandler::SigDfl) };
}

/// Waits up to `timeout` for one of the (blocked) signals in `set`. `None` on timeout.
pub(crate) fn wait_signal(set: &SigSet, timeout: std::time::Duration) -> Option<Signal> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `set` is a valid sigset; a null siginfo pointer is allowed; `ts` lives
    // across the call.
    let sig = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &ts) };
    if sig <= 0 {
        None
    } else {
        Signal::try_from(sig).ok()
    }
}

/// Blocks `sigs` in this thread (and the threads it starts later), so that
/// [`wait_signal`] gets them. Returns the set blocked and the mask to restore.
pub(crate) fn block_signals(sigs: &[Signal]) -> nix::Result<(SigSet, SigSet)> {
    let mut set = SigSet::empty();
    for &s in sigs {
        set.add(s);
    }
    let mut old = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))?;
    Ok((set, old))
}

/// Restores a signal mask saved by [`block_signals`].
pub(crate) fn restore_signals(old: &SigSet) {
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(old), None);
}

/// What [`reap_any`] found.
pub(crate) enum Reaped {
    /// Child `pid` ended so.
    Ended(i32, crate::error::Exit),
    /// A child changed state without ending (stopped, continued).
    Other,
    /// No child has ended.
    Nothing,
    /// There is no child left to wait for: they were all reaped, by us or by the kernel.
    NoChildren,
}

/// Collects one ended child without blocking. If `kill_group` says so for how it
/// ended, its process group (what it started, see [`ChildSetup::own_group`]) gets
/// SIGKILL first: while the child is not yet reaped its pid, and so its group id,
/// cannot be reused, so the signal cannot reach anyone else. `before_reap` gets its
/// pid last, while that still holds.
pub(crate) fn reap_any(
    kill_group: impl Fn(crate::error::Exit) -> bool,
    before_reap: impl FnOnce(i32),
) -> Reaped {
    use crate::error::Exit;
    // WNOWAIT: look at the child and leave it unreaped.
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    let (pid, how) = match waitid(Id::All, flags) {
        Ok(WaitStatus::Exited(pid, code)) => (pid, Exit::Code(code)),
        Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, Exit::Signal(sig as i32)),
        Err(nix::errno::Errno::ECHILD) => return Reaped::NoChildren,
        Ok(WaitStatus::StillAlive) | Err(_) => return Reaped::Nothing,
        Ok(_) => return Reaped::Other,
    };
    if kill_group(how) {
        // A child that leads no group: no group has its id, and this finds none.
        let _ = nix::sys::signal::killpg(pid, Signal::SIGKILL);
    }
    before_reap(pid.as_raw());
    let _ = waitpid(pid, None);
    Reaped::Ended(pid.as_raw(), how)
}

/// Waits for child `pid` to end.
pub(crate) fn reap(pid: i32) {
    let _ = waitpid(Pid::from_raw(pid), None);
}

/// Seconds on the monotonic clock, through libc's vDSO call (rustix's own vDSO parser
/// fails on valgrind's synthetic vDSO).
pub(crate) fn monotonic_seconds() -> f64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => ts.tv_sec() as f64 + ts.tv_nsec() as f64 * 1e-9,
        Err(_) => 0.0, // CLOCK_MONOTONIC cannot fail on Linux
    }
}

/// The resolution of the monotonic clock in seconds.
pub(crate) fn monotonic_resolution() -> f64 {
    match nix::time::clock_getres(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => ts.tv_sec() as f64 + ts.tv_nsec() as f64 * 1e-9,
        Err(_) => 1e-9,
    }
}

/// This machine's host name, or `"localhost"` if the kernel will not say.
pub(crate) fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}
