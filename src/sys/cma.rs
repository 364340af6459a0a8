//! Cross-memory attach (`process_vm_readv`): a rank copies a peer's buffer straight
//! into its own, one copy instead of two through the segment (large collectives).

use std::io;

/// Whether ranks started from this process can read each other's memory: the system
/// call is allowed here (a seccomp filter would refuse it, and the ranks inherit the
/// filter), and Yama's ptrace scope lets same-user processes do it (0; 1 once every
/// rank names any process its tracer, [`allow_peers`]; 2 only with privilege, taken
/// as running as root; 3 never).
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
    let src = [0x5au8; 16];
    let mut dst = [0u8; 16];
    read(std::process::id() as i32, src.as_ptr() as usize, &mut dst).is_ok() && dst == src
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
    let mut done = 0;
    while done < dst.len() {
        let rest = &mut dst[done..];
        let local = libc::iovec {
            iov_base: rest.as_mut_ptr().cast(),
            iov_len: rest.len(),
        };
        let remote = libc::iovec {
            iov_base: (addr + done) as *mut libc::c_void,
            iov_len: rest.len(),
        };
        // SAFETY: `local` is the unfilled part of `dst`, writable for its length, and
        // nothing else refers to it during the call; `remote` is only read, by the
        // kernel, which checks it against `pid`'s mappings (a bad range is EFAULT).
        let r = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
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
                "process_vm_readv read nothing",
            ));
        }
        done += r as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::read;

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
}
