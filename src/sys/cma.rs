//! Cross-memory attach (`process_vm_readv`, `process_vm_writev`): a rank copies a
//! peer's buffer straight into its own, or its own into a peer's, one copy instead of
//! two through the segment (large collectives).

use std::io;

/// Whether ranks started from this process can read and write each other's memory: the
/// system calls are allowed here (a seccomp filter would refuse it, and the ranks
/// inherit the filter), and Yama's ptrace scope lets same-user processes do it (0; 1
/// once every rank names any process its tracer, [`allow_peers`]; 2 only with
/// privilege, taken as running as root; 3 never).
pub(crate) fn usable() -> bool {
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(0);
    let scope_ok = match scope {
        0 | 1 => true,
        // SAFETY: geteuid has no preconditions.
        2 => (unsafe { libc::geteuid() }) == 0,
        _ => false,
    };
    if !scope_ok {
        return false;
    }
    let me = std::process::id() as i32;
    let src = [0x5au8; 16];
    let mut dst = [0u8; 16];
    let back = [0u8; 16];
    read(me, src.as_ptr() as usize, &mut dst).is_ok()
        && dst == src
        && write(me, back.as_ptr() as usize, &src).is_ok()
        && back == src
}

/// Lets the other ranks read this process's memory under Yama's scope 1 (any process
/// may trace this one: `PR_SET_PTRACER_ANY`); without Yama it changes nothing.
pub(crate) fn allow_peers() {
    // SAFETY: prctl with these arguments only sets this process's Yama exception; a
    // kernel without Yama returns EINVAL, which is fine to ignore.
    unsafe {
        libc::prctl(libc::PR_SET_PTRACER, libc::PR_SET_PTRACER_ANY, 0, 0, 0);
    }
}

/// Copies `dst.len()` bytes at address `addr` of process `pid` into `dst`.
pub(crate) fn read(pid: i32, addr: usize, dst: &mut [u8]) -> io::Result<()> {
    // SAFETY: `dst` is writable for its length and nothing else refers to it during
    // the call.
    unsafe { transfer(pid, addr, dst.as_mut_ptr(), dst.len(), false) }
}

/// Copies `src` to address `addr` of process `pid` (`process_vm_writev`), which must
/// have lent that memory for the copy (a collective that has not returned there).
pub(crate) fn write(pid: i32, addr: usize, src: &[u8]) -> io::Result<()> {
    // SAFETY: `src` is only read, for its length.
    unsafe { transfer(pid, addr, src.as_ptr().cast_mut(), src.len(), true) }
}

/// `len` bytes between `local` in this process and `addr` in process `pid`, in the
/// direction `write` says, in as many calls as the kernel needs.
///
/// # Safety
///
/// `local` is valid for `len` bytes: readable when `write`, else writable and referred
/// to by nothing else during the call.
unsafe fn transfer(
    pid: i32,
    addr: usize,
    local: *mut u8,
    len: usize,
    write: bool,
) -> io::Result<()> {
    let mut done = 0;
    while done < len {
        let mine = libc::iovec {
            // SAFETY: within `local`'s `len` bytes (the caller's contract).
            iov_base: unsafe { local.add(done) }.cast(),
            iov_len: len - done,
        };
        let theirs = libc::iovec {
            iov_base: (addr + done) as *mut libc::c_void,
            iov_len: len - done,
        };
        // SAFETY: `mine` is the caller's memory as its contract says; `theirs` is only
        // touched by the kernel, which checks it against `pid`'s mappings (a bad range
        // is EFAULT).
        let r = unsafe {
            if write {
                libc::process_vm_writev(pid, &mine, 1, &theirs, 1, 0)
            } else {
                libc::process_vm_readv(pid, &mine, 1, &theirs, 1, 0)
            }
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "process_vm_readv/writev moved nothing",
            ));
        }
        done += r as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{read, write};

    #[test]
    fn reads_this_process_and_refuses_a_bad_address() {
        let src: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
        let mut dst = vec![0u8; src.len()];
        read(std::process::id() as i32, src.as_ptr() as usize, &mut dst).unwrap();
        assert!(dst == src);
        // Address 8 is never mapped: an error from the kernel, nothing written.
        let mut small = [1u8; 8];
        assert!(read(std::process::id() as i32, 8, &mut small).is_err());
        assert_eq!(small, [1u8; 8]);
    }

    #[test]
    fn writes_this_process_and_refuses_a_bad_address() {
        let src: Vec<u8> = (0..300_000u32).map(|i| (i * 11) as u8).collect();
        let dst = vec![0u8; src.len()];
        let at = dst.as_ptr() as usize;
        write(std::process::id() as i32, at, &src).unwrap();
        assert!(dst == src);
        assert!(write(std::process::id() as i32, 8, &[1u8; 8]).is_err());
    }
}
