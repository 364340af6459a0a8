//! The job's guard: a tiny process that kills what the ranks started when the launcher
//! dies without ending the job (`kill -9`, the OOM killer).
//!
//! `PR_SET_PDEATHSIG` (see [`super::proc::spawn`]) kills the ranks with the launcher, but
//! it reaches only the launcher's own children: a process a rank started
//! (`sh -c 'sleep 1000'`, a Python multiprocessing worker) is handed to init and runs
//! on. So before it creates the segment or starts a rank, the launcher forks the guard
//! (through a child that exits at once, so that the guard is not the launcher's child
//! and the launcher's reaping of "any child" never meets it) and keeps the only write
//! end of a socket whose read end only the guard holds. The kernel closes a dying
//! process's descriptors, so the guard reads end-of-file when the launcher dies,
//! whatever killed it; it then sends SIGKILL to every process group it was told of
//! (each rank's own, [`super::proc::ChildSetup::own_group`]), removes the trace file the
//! launcher had not finished, and exits. At a normal end the launcher sends "end"
//! instead, and the guard exits without touching anything.
//!
//! The guard never signals outside the job: it is told of a rank's group right after
//! the rank starts (the rank is then the launcher's unreaped child, so the group id, its
//! pid, is the job's), and to forget it before the launcher reaps the rank, after which
//! the id may be reused. So what a rank that exited 0 left running stays running, as at
//! a normal end. The one window left is a group whose last member dies as the launcher
//! does and whose id the kernel gives a new group leader before the guard's kill a
//! moment later, which takes the whole pid space to wrap in between.
//!
//! Limits: a process that leaves its rank's group (`setsid`, `setpgid`: daemons,
//! `subprocess.Popen(start_new_session=True)`) escapes the guard. When the launcher's
//! standard input is a terminal, the ranks stay in the launcher's foreground group (so
//! that rank 0 may read the terminal), which the guard cannot kill without killing what
//! shares it (`shmrun ... | tee log`): there only the ranks die with the launcher.
//!
//! Why not the alternatives: a cgroup per job needs a delegated cgroup subtree, which an
//! ordinary user does not always have; a pid namespace needs privilege, or user
//! namespaces (often disabled, and then the ranks would see pids other than the
//! launcher's); `PR_SET_CHILD_SUBREAPER` on the launcher collects orphans only while it
//! lives, and on each rank it changes the program (it would have to reap its
//! grandchildren) and still loses them to init when the rank dies.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::SigSet;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

/// The record that ends the guard without a kill; a positive record is a group to
/// watch, a negative one a group to forget.
const END: i32 = 0;

/// How long a normal end waits for the guard to have gone (it takes microseconds; a
/// stopped guard reads "end" whenever it is continued).
const END_WAIT: Duration = Duration::from_secs(1);

/// The launcher's side of the guard. Dropped without [`Guard::end`] (an error or a panic
/// in the launcher), it acts as if the launcher had died.
#[derive(Debug)]
pub(crate) struct Guard {
    /// The only write end of the guard's socket (close-on-exec, so no rank inherits it).
    tx: UnixStream,
}

impl Guard {
    /// Starts the guard of a job of `nranks` ranks; it removes `trace_tmp` if the
    /// launcher dies. Call it before creating anything the ranks inherit, so that the
    /// guard holds none of it (it closes every descriptor but its socket, too).
    pub(crate) fn start(nranks: usize, trace_tmp: Option<&Path>) -> std::io::Result<Guard> {
        let (tx, rx) = UnixStream::pair()?;
        // Above 0-2, which the guard points at /dev/null.
        // SAFETY: F_DUPFD_CLOEXEC only creates a descriptor; the result is checked.
        let high = unsafe { libc::fcntl(rx.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
        if high < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `high` is a new descriptor that nothing else owns.
        let rx = unsafe { OwnedFd::from_raw_fd(high) };
        // A path with a NUL byte cannot have been created either.
        let tmp = trace_tmp.and_then(|p| CString::new(p.as_os_str().as_bytes()).ok());
        // Made before fork: the guard must not allocate.
        let mut groups = vec![0i32; nranks];
        let all = SigSet::all();
        // SAFETY: the child only forks again and exits, and the grandchild runs
        // `guard_main`, which makes async-signal-safe system calls only and never
        // returns, as a forked child of a possibly multi-threaded process must.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: as above.
            unsafe {
                let guard = libc::fork();
                if guard == 0 {
                    guard_main(rx.as_raw_fd(), &mut groups, tmp.as_ref(), &all);
                }
                libc::_exit(i32::from(guard < 0));
            }
        }
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // The go-between exits at once; reaping it leaves the guard to init.
        let status = loop {
            match waitpid(Pid::from_raw(pid), None) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other,
            }
        };
        if let Ok(WaitStatus::Exited(_, 1)) = status {
            return Err(std::io::Error::other("could not fork the job's guard"));
        }
        Ok(Guard { tx })
    }

    /// Puts the process group `pgid` (a rank that leads its own, just started) in the
    /// guard's hands.
    pub(crate) fn watch(&self, pgid: i32) {
        if pgid > 0 {
            self.send(pgid);
        }
    }

    /// Takes group `pgid` out of the guard's hands: call it before reaping its leader,
    /// whose pid (the group's id) may then be reused.
    pub(crate) fn forget(&self, pgid: i32) {
        if pgid > 0 {
            self.send(-pgid);
        }
    }

    /// The job ended normally: the guard exits without killing anything. Returns once
    /// it has gone (its end of the socket closed), or after [`END_WAIT`].
    pub(crate) fn end(self) {
        self.send(END);
        let _ = self.tx.set_read_timeout(Some(END_WAIT));
        // The guard never writes: this returns at its end-of-file, or the timeout.
        let _ = (&self.tx).read(&mut [0u8; 1]);
    }

    fn send(&self, record: i32) {
        let bytes = record.to_ne_bytes();
        // MSG_NOSIGNAL: a guard killed by someone must not take the launcher with it
        // (SIGPIPE); MSG_DONTWAIT: the launcher never waits on the guard, and at most
        // two 4-byte records per rank cannot fill the socket's buffer.
        // SAFETY: `bytes` is valid for its length during the call.
        let _ = unsafe {
            libc::send(
                self.tx.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
    }
}

/// The guard's life. It runs in a forked child of a process that may have other
/// threads (whose locks it inherits held), so it makes async-signal-safe system calls
/// only and allocates nothing; it never returns.
///
/// # Safety
///
/// Call only in a freshly forked child; `rx` must be at least 3.
unsafe fn guard_main(rx: RawFd, groups: &mut [i32], tmp: Option<&CString>, all: &SigSet) -> ! {
    // SAFETY: plain system calls on this process's own state, with valid arguments.
    unsafe {
        // Ctrl-C, a hang-up and the like are for the launcher, which ends the job itself.
        libc::sigprocmask(libc::SIG_SETMASK, all.as_ref(), std::ptr::null_mut());
        // Out of the launcher's group, so that a kill of that group leaves the guard
        // to clean up after it.
        libc::setpgid(0, 0);
        // So that `ps` tells it from the launcher.
        libc::prctl(libc::PR_SET_NAME, c"shmrun-guard".as_ptr(), 0, 0, 0);
        // Hold nothing of the launcher's: not its terminal, nor the pipe a reader of its
        // output waits to see closed, nor any other descriptor.
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        for fd in 0..3 {
            if null < 0 {
                libc::close(fd);
            } else if null != fd {
                libc::dup2(null, fd);
            }
        }
        close_from(3, rx);
    }
    let mut buf = [0u8; 256];
    let mut have = 0;
    loop {
        // SAFETY: the span is within `buf`.
        let n = unsafe { libc::read(rx, buf[have..].as_mut_ptr().cast(), buf.len() - have) };
        if n == 0 {
            break; // the launcher is gone without saying "end"
        }
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            // Blind from now on: leave the job alone rather than kill a live one.
            // SAFETY: ends this process without running the parent's destructors.
            unsafe { libc::_exit(0) };
        }
        have += n as usize;
        let whole = have - have % 4;
        for record in buf[..whole].chunks_exact(4) {
            match i32::from_ne_bytes([record[0], record[1], record[2], record[3]]) {
                // SAFETY: as above.
                END => unsafe { libc::_exit(0) },
                g if g > 0 => {
                    if let Some(slot) = groups.iter_mut().find(|s| **s == 0) {
                        *slot = g;
                    }
                }
                g => {
                    if let Some(slot) = groups.iter_mut().find(|s| **s == -g) {
                        *slot = 0;
                    }
                }
            }
        }
        buf.copy_within(whole..have, 0);
        have -= whole;
    }
    for &g in groups.iter().filter(|&&g| g > 0) {
        // SAFETY: a plain system call; `g` is a group of the job (see the module doc).
        unsafe { libc::kill(-g, libc::SIGKILL) };
    }
    if let Some(path) = tmp {
        // SAFETY: `path` is a valid C string.
        unsafe { libc::unlink(path.as_ptr()) };
    }
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
}

/// Closes every descriptor from `first` up except `keep`.
///
/// # Safety
///
/// Only in the guard, which owns no descriptor it still needs but `keep`.
unsafe fn close_from(first: RawFd, keep: RawFd) {
    let range = |lo: RawFd, hi: libc::c_uint| {
        // SAFETY: close_range only closes descriptors.
        unsafe { libc::syscall(libc::SYS_close_range, lo as libc::c_uint, hi, 0) }
    };
    let below = keep <= first || range(first, (keep - 1) as libc::c_uint) == 0;
    if below && range(keep + 1, libc::c_uint::MAX) == 0 {
        return;
    }
    // Kernels before 5.9 have no close_range: close each number up to the limit.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to write.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur.min(i32::MAX as libc::rlim_t) as RawFd
    } else {
        1024
    };
    for fd in (first..max).filter(|&fd| fd != keep) {
        // SAFETY: closing a number that may not be open is harmless.
        unsafe { libc::close(fd) };
    }
}
