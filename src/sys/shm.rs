//! The shared segment as an OS object: an anonymous `memfd`, sized once, sealed
//! against resizing, and mapped `MAP_SHARED` into every rank.
//!
//! A memfd has no name in `/dev/shm`: it lives exactly as long as some process holds
//! its descriptor or a mapping, so nothing can leak after a crash, and Docker's
//! 64 MiB cap on `/dev/shm` does not apply. The launcher passes the descriptor to
//! the ranks by inheritance (its number in `SHMPI_FD`); only processes of the job
//! (and root) can reach it.

use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

use nix::fcntl::{FcntlArg, FdFlag, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};

use crate::error::{Error, Result};

/// A `MAP_SHARED` mapping of a whole memfd. Unmapped on drop.
pub(crate) struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; all access to it goes through atomics
// or through the ring protocol, whose synchronisation is documented in `ring.rs`.
unsafe impl Send for Mapping {}
// SAFETY: as above; `Mapping` itself only hands out the base pointer and the length.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// First byte of the mapping (page aligned).
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// Length of the mapping in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly what mmap returned; nothing derived from the
        // mapping outlives it (every user holds an `Arc` of the segment that owns it).
        unsafe {
            let _ = munmap(self.base.cast(), self.len);
        }
    }
}

/// Creates a memfd of `len` bytes (zero-filled, sparse), sealed against shrinking and
/// growing, with close-on-exec set. Returns the descriptor and a mapping of it.
pub(crate) fn create(len: usize) -> Result<(OwnedFd, Mapping)> {
    let fd = memfd_create(
        c"shmpi",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(|e| Error::os("memfd_create for the shared segment", e))?;
    nix::unistd::ftruncate(&fd, len as libc::off_t)
        .map_err(|e| Error::os(format!("sizing the shared segment to {len} bytes"), e))?;
    fcntl(
        &fd,
        FcntlArg::F_ADD_SEALS(
            SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL,
        ),
    )
    .map_err(|e| Error::os("sealing the shared segment", e))?;
    let map = map(fd.as_fd(), len)?;
    Ok((fd, map))
}

/// Maps an inherited memfd whose number came from the environment. Checks that it is
/// a descriptor of at least `min_len` bytes; returns the mapping of its whole length.
pub(crate) fn attach(raw: RawFd, min_len: usize) -> Result<Mapping> {
    if raw < 0 {
        return Err(Error::Init(format!(
            "SHMPI_FD={raw} is not a file descriptor"
        )));
    }
    // SAFETY: fstat on an arbitrary number is harmless; an invalid one gives EBADF.
    let stat = nix::sys::stat::fstat(unsafe { BorrowedFd::borrow_raw(raw) }).map_err(|e| {
        Error::Init(format!(
            "SHMPI_FD={raw} is not an open descriptor ({e}); was this program started by \
             shmrun? Unset SHMPI_FD/SHMPI_RANK/SHMPI_SIZE to run it as a singleton"
        ))
    })?;
    let len = stat.st_size as usize;
    if (stat.st_mode & libc::S_IFMT) != libc::S_IFREG || len < min_len {
        return Err(Error::Init(format!(
            "SHMPI_FD={raw} is not a shmpi segment (a {len}-byte object, mode {:o}); was this \
             program started by shmrun?",
            stat.st_mode
        )));
    }
    // SAFETY: checked open above; we take ownership to close it after mapping (the
    // mapping keeps the memory alive) so that exec'd grandchildren do not inherit it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    map(fd.as_fd(), len)
}

fn map(fd: BorrowedFd<'_>, len: usize) -> Result<Mapping> {
    let nz = NonZeroUsize::new(len).ok_or_else(|| Error::Init("empty segment".into()))?;
    // SAFETY: a fresh shared mapping of a file we hold; no existing memory is affected.
    let ptr = unsafe {
        mmap(
            None,
            nz,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
            fd,
            0,
        )
    }
    .map_err(|e| Error::os(format!("mapping the {len}-byte shared segment"), e))?;
    Ok(Mapping {
        base: ptr.cast(),
        len,
    })
}

/// Clears close-on-exec on `fd` so that an exec'd child inherits it. Only async-signal-
/// safe calls: usable between fork and exec.
pub(crate) fn inherit_across_exec(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor number; no memory is touched.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::empty()))
        .map(|_| ())
        .map_err(Into::into)
}

/// The raw number of an owned descriptor.
pub(crate) fn raw(fd: &OwnedFd) -> RawFd {
    fd.as_raw_fd()
}

/// Asks the kernel to fault in now the pages of `[ptr, ptr + len)` (rounded out to
/// whole pages), allocating them for writing (`write`) or mapping the existing ones
/// for reading: one system call instead of one page fault every 4 KiB during the
/// first lap of a ring. Best effort: on kernels without `MADV_POPULATE_*` (before
/// 5.14) the pages are faulted in as they are touched, as before.
///
/// # Safety
/// The range must lie within a live mapping of this process.
pub(crate) unsafe fn populate(ptr: *const u8, len: usize, write: bool) {
    const PAGE: usize = 4096;
    let start = ptr as usize & !(PAGE - 1);
    let end = (ptr as usize + len).next_multiple_of(PAGE);
    let advice = if write {
        libc::MADV_POPULATE_WRITE
    } else {
        libc::MADV_POPULATE_READ
    };
    // SAFETY: populating only faults pages of our own mapping in (caller's contract);
    // it changes no contents. A failure (old kernel, range past the mapping's end) is
    // harmless and ignored.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, advice);
    }
}

/// Maps the object behind descriptor `fd` of process `pid` (same user, same machine)
/// by opening `/proc/<pid>/fd/<fd>`, which reopens a memfd rather than following a
/// path. Checks that it is a regular object of exactly `len` bytes. The descriptor
/// opened here is closed before returning: the mapping keeps the memory alive.
pub(crate) fn map_proc_fd(pid: i32, fd: RawFd, len: usize) -> Result<Mapping> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = format!("/proc/{pid}/fd/{fd}");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| Error::os(format!("opening {path} (a shared window's memory)"), e))?;
    let fd = OwnedFd::from(file);
    let stat = nix::sys::stat::fstat(&fd)
        .map_err(|e| Error::os(format!("fstat of {path} (a shared window's memory)"), e))?;
    let got = stat.st_size as usize;
    if (stat.st_mode & libc::S_IFMT) != libc::S_IFREG || got != len {
        return Err(Error::Usage(format!(
            "{path} is not the shared window's memory (a {got}-byte object, mode {:o}, \
             where {len} bytes were expected)",
            stat.st_mode
        )));
    }
    map(fd.as_fd(), len)
}

/// Creates a sealed memfd of `len` bytes for a shared window (as [`create`], under
/// another name so that `/proc/<pid>/maps` tells the two apart).
pub(crate) fn create_window(len: usize) -> Result<(OwnedFd, Mapping)> {
    let fd = memfd_create(
        c"shmpi-window",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(|e| Error::os("memfd_create for a shared window", e))?;
    nix::unistd::ftruncate(&fd, len as libc::off_t)
        .map_err(|e| Error::os(format!("sizing a shared window to {len} bytes"), e))?;
    fcntl(
        &fd,
        FcntlArg::F_ADD_SEALS(
            SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL,
        ),
    )
    .map_err(|e| Error::os("sealing a shared window", e))?;
    let map = map(fd.as_fd(), len)?;
    Ok((fd, map))
}
