//! Shared-memory windows (MPI-3 RMA on one node): [`Window`], whose docs give the
//! memory model.

use std::cell::Cell;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{
    AtomicI8, AtomicI16, AtomicI32, AtomicI64, AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering,
    fence,
};
use std::time::{Duration, Instant};

use bytemuck::Pod;

use crate::call::Call;
use crate::collective::op::{Op, Reducible};
use crate::comm::{Communicator, PROC_NULL, Rank};
use crate::error::{Error, ErrorClass, Result};
use crate::segment::Segment;
use crate::sys::shm::{self, Mapping};

/// How long [`Window::lock`] (and an accumulate's internal lock) waits before giving
/// up with an error: a lock held this long is taken to be a deadlock.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// One cache line of the header per rank, and the alignment of every part.
const LINE: usize = 64;
/// The writer bit of a lock word; with it set, the low bits are the holder's world
/// rank, without it, the number of shared holders.
const WRITER: u32 = 1 << 31;

/// The kind of a passive-target lock ([`Window::lock`], `MPI_LOCK_SHARED` /
/// `MPI_LOCK_EXCLUSIVE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Many ranks may hold it at once; excludes only exclusive holders.
    Shared,
    /// One rank at a time; excludes every other lock of the target.
    Exclusive,
}

/// A shared-memory window (`MPI_Win`): MPI-3 one-sided communication (RMA) between the
/// ranks of one node, over one shared memory object (`MPI_Win_allocate_shared`), or
/// over each rank's own buffer ([`Window::create`], `MPI_Win_create`, reached by
/// cross-memory attach; the rules below hold for it too).
///
/// [`Window::allocate_shared`] is collective: each rank contributes a *part* of any
/// size (0 included), and the parts lie in one memfd, rank after rank, each aligned
/// to 64 bytes. Every rank maps the whole object, so any rank reads and writes any
/// part directly: [`put`](Window::put)/[`get`](Window::get) copy slices in and out at
/// a byte offset of a rank's part, [`accumulate`](Window::accumulate) combines with a
/// built-in [`Op`], [`fetch_add`](Window::fetch_add) and
/// [`compare_and_swap`](Window::compare_and_swap) are single hardware atomics, and
/// [`atomics`](Window::atomics) lends a slice of `std` atomics over a part for
/// element-wise concurrent access without copies.
///
/// ## Memory model
///
/// The window follows MPI's *unified* model: there is one copy of the memory, and a
/// put is visible in the target's part as soon as the copy is done (every RMA call
/// completes before it returns). What the synchronisation calls order:
/// [`fence`](Window::fence) is a barrier of the communicator between two
/// `fence(SeqCst)`, so everything any rank wrote before its fence is visible to every
/// rank after its fence; [`lock`](Window::lock) takes a readers-writer lock word kept
/// for the target rank in the window's header (Acquire) and [`unlock`](Window::unlock)
/// releases it (Release), so an exclusive lock holder sees everything written by the
/// previous holders of that lock, and accesses under an exclusive lock do not
/// interleave with those of other ranks that lock the same target; a shared lock
/// excludes only exclusive ones; [`flush`](Window::flush) and [`sync`](Window::sync)
/// are a `fence(SeqCst)` (puts are already complete; the fence orders this rank's
/// accesses before and after it, `MPI_Win_sync`). [`accumulate`](Window::accumulate)
/// is atomic per call with respect to other accumulates on the same target (a short
/// internal lock, MPI's rule for accumulates), [`fetch_add`](Window::fetch_add),
/// [`compare_and_swap`](Window::compare_and_swap) and the [`atomics`](Window::atomics)
/// are atomic with respect to each other. Accesses without synchronisation (a put and
/// a get of the same bytes at once, outside any lock or fence) race as in MPI: the
/// bytes read may mix old and new values. They never cause undefined behaviour in
/// Rust, because no reference to the shared bytes is ever handed out except to atomic
/// types: copies go through relaxed atomic loads and stores of 8 bytes (1 at the
/// unaligned edges).
///
/// ## Locks that never come
///
/// A rank waiting for a lock spins, then yields, then sleeps for short periods; it
/// gives up with [`Error::PeerFailed`] if the exclusive holder has left the job, with
/// [`Error::Aborted`] if the job is aborted, and with [`Error::Usage`] after
/// [`LOCK_TIMEOUT`] (30 s). A rank that dies holding a shared lock leaves it held (MPI
/// leaves this undefined): the launcher normally aborts the job when a rank fails, so
/// the waiters see the abort; otherwise exclusive lockers of that target time out.
/// Dropping a window releases the locks its rank still holds. A call that takes a
/// lock word this rank already holds (an [`accumulate`](Window::accumulate) inside a
/// [`modify`](Window::modify) of the same part) fails at once, an
/// [`ErrorClass::RmaSync`] error; so do a lock or unlock out of order.
///
/// ## `PROC_NULL` targets
///
/// [`PROC_NULL`] is a valid target of the communication calls (MPI 4.1 §12.3, the
/// same effect as in point-to-point): [`put`](Window::put),
/// [`get`](Window::get) (which leaves its buffer untouched) and
/// [`accumulate`](Window::accumulate) do nothing and succeed. So do
/// [`fetch_add`](Window::fetch_add) and [`compare_and_swap`](Window::compare_and_swap),
/// which return `Ok(None)` there: MPI's `MPI_Fetch_and_op` and `MPI_Compare_and_swap`
/// at `MPI_PROC_NULL` have no effect and leave the result buffer as it was, and a
/// returned value cannot be left as it was, so the `Option` says that nothing was
/// fetched (`Some(old)` at every real target); a caller that keeps a result
/// variable writes `if let Some(v) = ... { result = v }` and has MPI's behaviour
/// exactly. [`modify`](Window::modify), whose closure is shown the target's elements,
/// has none to show there and fails with an [`ErrorClass::Rank`] error naming
/// `PROC_NULL`. [`shared_query`](Window::shared_query) and
/// [`shared_part`](Window::shared_part) at `PROC_NULL` give the part of the lowest rank
/// whose part is not empty, as `MPI_Win_shared_query` does (MPI 4.1 §12.2.3). The
/// synchronisation calls ([`lock`](Window::lock), [`unlock`](Window::unlock),
/// [`flush`](Window::flush)) and [`atomics`](Window::atomics) need a real rank, as
/// `MPI_Win_lock` does (the standard makes no exception for `PROC_NULL` there): the
/// same error class, naming `PROC_NULL`.
///
/// The memory: rank 0 of the communicator creates a sealed memfd and every other rank
/// reopens it through `/proc/<pid>/fd/<n>` (same user, same machine), then rank 0
/// closes its descriptor; the mappings keep the object alive, and it vanishes with the
/// last of them, even after a crash.
pub struct Window {
    comm: Communicator,
    seg: Rc<Segment>,
    live: Option<Live>,
}

struct Live {
    /// Shared with the [`SharedPart`]s handed out, which keep it mapped.
    map: Rc<Mapping>,
    /// (byte offset in the mapping, length) of each rank's part.
    parts: Vec<(usize, usize)>,
    /// The lock this rank holds on each target, if any.
    held: Vec<Cell<Option<LockKind>>>,
    /// Whether the shared locks come from `lock_all`.
    all: Cell<bool>,
    /// A window over the ranks' own buffers ([`Window::create`]): where each rank's
    /// part is in its process; the mapping then holds only the header (the locks).
    remote: Option<Vec<Remote>>,
}

/// A rank's part of a created window: `len` bytes at `addr` in process `pid`.
#[derive(Clone, Copy)]
struct Remote {
    pid: i32,
    addr: usize,
    len: usize,
}

/// Where the bytes of an access are.
enum Loc {
    /// In this process's address space (the shared mapping, or this rank's own buffer
    /// of a created window).
    Here(NonNull<u8>),
    /// In another process (a created window's part), reached by cross-memory attach.
    There { pid: i32, addr: usize },
}

impl std::fmt::Debug for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Window");
        match &self.live {
            Some(l) => d.field("parts", &l.parts).field("bytes", &l.map.len()),
            None => d.field("freed", &true),
        };
        d.finish_non_exhaustive()
    }
}

/// Refuses an intercommunicator for `call`, which makes a window: a window's ranks
/// are one group (MPI 4.1 §12.2: the window calls take an intracommunicator).
fn intra_only(comm: &Communicator, call: &str) -> Result<()> {
    if comm.is_inter() {
        return Err(Error::invalid(
            ErrorClass::Comm,
            format!(
                "{call} on an intercommunicator: a window is made over an \
                 intracommunicator, whose ranks are all in one group (MPI 4.1 §12.2); make \
                 it over the local group's communicator, or merge the intercommunicator \
                 (`merge`) first"
            ),
        ));
    }
    Ok(())
}

/// The error of a cross-memory access to rank `rank`'s part (process `pid`).
fn cma_error(rank: Rank, pid: i32, err: std::io::Error) -> Error {
    Error::Os {
        what: format!(
            "accessing rank {rank}'s part of a window over its own buffer (process {pid}, \
             process_vm_readv/writev): the rank may have exited"
        ),
        source: err,
    }
}

/// One rank's part of a [`Window`]'s memory, mapped while this handle lives
/// ([`Window::shared_part`]). Other ranks may write the bytes at any time, so the handle
/// offers no slice, only the address and the length.
pub struct SharedPart {
    _map: Rc<Mapping>,
    ptr: NonNull<u8>,
    len: usize,
}

impl SharedPart {
    /// The part's first byte (64-byte aligned), valid for [`len`](Self::len) bytes
    /// while the handle lives.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The part's size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the part has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for SharedPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedPart")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// The `std` atomic types that [`Window::atomics`] can lend over a window's memory.
pub trait SharedAtomic: sealed::Sealed + Sync {}

mod sealed {
    #[allow(unreachable_pub)]
    pub trait Sealed {}
}

macro_rules! shared_atomic {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl SharedAtomic for $t {}
    )*};
}
shared_atomic!(
    AtomicU8, AtomicU16, AtomicU32, AtomicU64, AtomicI8, AtomicI16, AtomicI32, AtomicI64
);

impl Window {
    /// Allocates a window over `comm` in which this rank's part has `bytes` bytes
    /// (zero-filled; ranks may pass different sizes, 0 included). Collective over
    /// `comm` (`MPI_Win_allocate_shared`); fails on every rank if any rank cannot map
    /// the memory, and on an intercommunicator, which MPI 4.1 §12.2.3 rules out (an
    /// [`ErrorClass::Comm`] error).
    pub fn allocate_shared(comm: &Communicator, bytes: usize) -> Result<Window> {
        intra_only(comm, "Window::allocate_shared")?;
        Self::allocate(comm, bytes)
    }

    /// [`allocate_shared`](Self::allocate_shared) on an intracommunicator.
    fn allocate(comm: &Communicator, bytes: usize) -> Result<Window> {
        #[cfg(feature = "mpi")]
        if comm.inner.mpi.is_some() {
            return Err(crate::mpi::unsupported(
                "Window::allocate_shared",
                "shared windows need every rank on one node's shared segment; start the job with shmrun to use them",
            ));
        }
        let n = comm.size() as usize;
        let me = comm.rank() as usize;
        let mut sizes = vec![0u64; n];
        comm.allgather_into(&[bytes as u64], &mut sizes)?;
        // Every rank computes the same layout from the same sizes, so an overflow
        // fails on all of them alike.
        let mut parts = Vec::with_capacity(n);
        let mut end = n * LINE;
        for (r, &s) in sizes.iter().enumerate() {
            let next = usize::try_from(s)
                .ok()
                .and_then(|s| s.checked_next_multiple_of(LINE))
                .and_then(|s| end.checked_add(s))
                .filter(|&e| e <= isize::MAX as usize);
            let Some(next) = next else {
                return Err(Error::invalid(
                    ErrorClass::Arg,
                    format!("a shared window too large: rank {r} asks {s} bytes after {end}"),
                ));
            };
            parts.push((end, s as usize));
            end = next;
        }
        let total = end;
        let mut created = None;
        let mut msg = [-1i64, -1, total as i64];
        let mut own_err = None;
        if me == 0 {
            match shm::create_window(total) {
                Ok((fd, map)) => {
                    msg = [
                        std::process::id() as i64,
                        shm::raw(&fd) as i64,
                        total as i64,
                    ];
                    created = Some((fd, map));
                }
                Err(e) => own_err = Some(e),
            }
        }
        comm.bcast_into(&mut msg, 0)?;
        if msg[0] < 0 {
            return Err(own_err.unwrap_or_else(|| {
                Error::Usage("rank 0 could not create a shared window's memory".into())
            }));
        }
        let (fd, map) = match created {
            Some((fd, map)) => (Some(fd), Ok(map)),
            None => (None, shm::map_proc_fd(msg[0] as i32, msg[1] as i32, total)),
        };
        let mut oks = vec![0u8; n];
        comm.allgather_into(&[map.is_ok() as u8], &mut oks)?;
        // Every rank has opened the object by now: the mappings keep it alive.
        drop(fd);
        let map = map?;
        if let Some(bad) = oks.iter().position(|&ok| ok == 0) {
            return Err(Error::Usage(format!(
                "rank {bad} could not map a shared window's memory"
            )));
        }
        let seg = comm.inner.eng.borrow().segment().clone();
        Ok(Window {
            comm: comm.clone(),
            seg,
            live: Some(Live {
                map: Rc::new(map),
                parts,
                held: (0..n).map(|_| Cell::new(None)).collect(),
                all: Cell::new(false),
                remote: None,
            }),
        })
    }

    /// Makes a window over `len` bytes at `base` in each rank's own memory
    /// (`MPI_Win_create`; ranks may pass different lengths, 0 included). Collective.
    /// Other ranks reach a part by cross-memory attach (`process_vm_readv`,
    /// `process_vm_writev`), so it needs what the launcher checks for large messages
    /// (and `SHMPI_CMA` not `0`) when the communicator has more than one rank; the
    /// locks live in a small shared header. [`shared_query`](Self::shared_query),
    /// [`shared_part`](Self::shared_part) and [`atomics`](Self::atomics) are errors
    /// on such a window (its parts are private memory); `fetch_add` and
    /// `compare_and_swap` go through [`modify`](Self::modify) there.
    ///
    /// # Safety
    ///
    /// `base..base + len` must stay valid for reads and writes, and must not be moved
    /// or freed, until the window is freed or dropped on every rank: other ranks write
    /// into it meanwhile, so this rank's own accesses to it follow MPI's rules (between
    /// fences, or under a lock).
    pub unsafe fn create(comm: &Communicator, base: *mut u8, len: usize) -> Result<Window> {
        #[cfg(feature = "mpi")]
        if comm.inner.mpi.is_some() {
            return Err(Error::Usage(
                "windows over the ranks' own buffers need every rank on one node's shared \
                 segment"
                    .into(),
            ));
        }
        intra_only(comm, "Window::create")?;
        let mut win = Window::allocate(comm, 0)?;
        let n = comm.size() as usize;
        let seg = win.seg.clone();
        let can = n == 1 || seg.single_copy();
        let mine = [
            std::process::id() as u64,
            base as usize as u64,
            len as u64,
            u64::from(can),
        ];
        let mut all = vec![0u64; 4 * n];
        comm.allgather_into(&mine, &mut all)?;
        if let Some(bad) = all.chunks(4).position(|c| c[3] == 0) {
            // Every rank decides the same: nothing is kept.
            win.live = None;
            return Err(Error::Usage(format!(
                "a window over the ranks' own buffers needs cross-memory attach \
                 (process_vm_readv), which rank {bad} cannot use here (a ptrace or seccomp \
                 restriction, or SHMPI_CMA=0); allocate the window instead \
                 (Window::allocate_shared)"
            )));
        }
        let remote: Vec<Remote> = all
            .chunks(4)
            .map(|c| Remote {
                pid: c[0] as i32,
                addr: c[1] as usize,
                len: c[2] as usize,
            })
            .collect();
        let live = win.live.as_mut().expect("just allocated");
        live.parts = remote.iter().map(|r| (0, r.len)).collect();
        live.remote = Some(remote);
        Ok(win)
    }

    fn live(&self) -> Result<&Live> {
        self.live
            .as_ref()
            .ok_or_else(|| Error::invalid(ErrorClass::Win, "the window has been freed"))
    }

    /// The index of target `rank`'s part. [`PROC_NULL`] has none: the communication
    /// calls take it as a no-op before they come here ([`Window::is_null`]), so here it
    /// is a call that needs a real rank, and the error says so by name, not as `-2`.
    fn target(&self, rank: Rank) -> Result<usize> {
        let size = self.comm.size() as usize;
        if rank == PROC_NULL {
            return Err(Error::invalid(
                ErrorClass::Rank,
                format!(
                    "PROC_NULL has no part of the window: put, get, accumulate, fetch_add \
                     and compare_and_swap take it (and do nothing), shared_query and shared_part take it for the lowest \
                     rank with a part that is not empty; lock, unlock, flush and atomics \
                     need a rank from 0 to {}",
                    size.saturating_sub(1)
                ),
            ));
        }
        if rank < 0 || rank as usize >= size {
            return Err(Error::InvalidRank {
                rank,
                size,
                any_allowed: false,
            });
        }
        Ok(rank as usize)
    }

    /// Whether `rank` is [`PROC_NULL`] on a live window: a communication call then does
    /// nothing and succeeds (MPI 4.1 §12.3, as a send to `PROC_NULL`). A freed window
    /// is still an error, as for every other rank.
    fn is_null(&self, rank: Rank) -> Result<bool> {
        if rank != PROC_NULL {
            return Ok(false);
        }
        self.live()?;
        Ok(true)
    }

    /// The error of `call` at [`PROC_NULL`], which has no elements to show its
    /// closure (the `u64` atomics return `None` there instead).
    fn null_fetch(call: &str) -> Error {
        Error::invalid(
            ErrorClass::Rank,
            format!(
                "{call} at PROC_NULL: it reaches no memory, so there are no elements to \
                 show its closure (MPI leaves the result buffer unchanged); skip the call \
                 when the target is PROC_NULL, or use put, get, accumulate, fetch_add or \
                 compare_and_swap, which do nothing for it (the last two return None)"
            ),
        )
    }

    /// Checks that an atomic of `T` at `offset` of `rank`'s part is aligned to its size,
    /// the same rule on every kind of window: on a shared one the hardware needs it (the
    /// parts are 64-byte aligned, so the offset decides), and a created one keeps the
    /// same contract so that code moves between them unchanged.
    fn check_atomic_offset<T>(rank: Rank, offset: usize) -> Result<()> {
        let size = std::mem::size_of::<T>();
        if offset % size != 0 {
            return Err(Error::invalid(
                ErrorClass::Arg,
                format!(
                    "an atomic {} at offset {offset} of rank {rank}'s part of the window: \
                     atomics need an offset that is a multiple of {size} bytes",
                    std::any::type_name::<T>()
                ),
            ));
        }
        Ok(())
    }

    /// Where `len` bytes at `offset` of `rank`'s part are, bounds-checked: any window.
    fn locate(&self, rank: Rank, offset: usize, len: usize) -> Result<(&Live, Loc)> {
        let live = self.live()?;
        let Some(remote) = &live.remote else {
            let (live, p) = self.range(rank, offset, len)?;
            return Ok((live, Loc::Here(p)));
        };
        let r = self.target(rank)?;
        let part = remote[r];
        if offset.checked_add(len).is_none_or(|end| end > part.len) {
            return Err(Error::invalid(
                ErrorClass::RmaRange,
                format!(
                    "an access of {len} bytes at offset {offset} of rank {r}'s part of the \
                     window, which has {} bytes",
                    part.len
                ),
            ));
        }
        if r == self.comm.rank() as usize {
            // This rank's own buffer (valid by `create`'s contract); a part of no
            // bytes has no address to speak of, and no access touches it.
            let p = NonNull::new((part.addr + offset) as *mut u8).unwrap_or(NonNull::dangling());
            return Ok((live, Loc::Here(p)));
        }
        Ok((
            live,
            Loc::There {
                pid: part.pid,
                addr: part.addr + offset,
            },
        ))
    }

    /// Reads `dst.len()` bytes at `loc`.
    fn load(&self, loc: &Loc, rank: Rank, dst: &mut [u8]) -> Result<()> {
        match *loc {
            // SAFETY: `locate` checked the bytes are in the mapping or this rank's part.
            Loc::Here(p) => unsafe { load_bytes(p.as_ptr(), dst) },
            Loc::There { pid, addr } => {
                crate::sys::cma::read(pid, addr, dst).map_err(|e| cma_error(rank, pid, e))?
            }
        }
        Ok(())
    }

    /// Writes `src` at `loc`.
    fn store(&self, loc: &Loc, rank: Rank, src: &[u8]) -> Result<()> {
        match *loc {
            // SAFETY: as in `load`.
            Loc::Here(p) => unsafe { store_bytes(p.as_ptr(), src) },
            Loc::There { pid, addr } => {
                crate::sys::cma::write(pid, addr, src).map_err(|e| cma_error(rank, pid, e))?
            }
        }
        Ok(())
    }

    /// The address of `len` bytes at `offset` of `rank`'s part, bounds-checked: a
    /// window in shared memory only.
    fn range(&self, rank: Rank, offset: usize, len: usize) -> Result<(&Live, NonNull<u8>)> {
        let live = self.live()?;
        if live.remote.is_some() {
            return Err(Error::invalid(
                ErrorClass::Win,
                "the window was created over the ranks' own buffers (Window::create): its \
                 parts are not shared memory; use put, get, accumulate and modify",
            ));
        }
        let r = self.target(rank)?;
        let (start, size) = live.parts[r];
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::invalid(
                ErrorClass::RmaRange,
                format!(
                    "an access of {len} bytes at offset {offset} of rank {r}'s part of the \
                     window, which has {size} bytes"
                ),
            ));
        }
        // SAFETY: start + offset + len <= start + size <= the mapping's length.
        let p = unsafe { live.map.base().add(start + offset) };
        Ok((live, p))
    }

    /// The lock word (`0`) or the accumulate word (`1`) of target `r`.
    fn word(live: &Live, r: usize, which: usize) -> &AtomicU32 {
        debug_assert!(r < live.parts.len() && which < 2);
        // SAFETY: the header holds one 64-byte line per rank at the start of the
        // page-aligned mapping, so the word is in bounds and aligned; the memory is
        // zero-initialised and only ever accessed atomically; it lives as long as
        // `live`.
        unsafe { AtomicU32::from_ptr(live.map.base().as_ptr().add(r * LINE + 4 * which).cast()) }
    }

    /// The communicator the window was allocated over.
    pub fn comm(&self) -> &Communicator {
        &self.comm
    }

    /// The size in bytes of `rank`'s part and its address in this process
    /// (`MPI_Win_shared_query`). The address is for code that must hand the memory to
    /// `unsafe` code; the safe accessors are [`get`](Self::get), [`put`](Self::put)
    /// and [`atomics`](Self::atomics).
    ///
    /// At [`PROC_NULL`] it gives the part of the lowest rank whose part is not empty,
    /// and when every part is empty, size 0 (and rank 0's address, where no byte may be
    /// accessed), as MPI 4.1 §12.2.3 says.
    pub fn shared_query(&self, rank: Rank) -> Result<(usize, NonNull<u8>)> {
        let rank = self.query_rank(rank)?;
        let live = self.live()?;
        let r = self.target(rank)?;
        let (_, p) = self.range(rank, 0, 0)?;
        Ok((live.parts[r].1, p))
    }

    /// The rank whose part [`shared_query`](Self::shared_query) and
    /// [`shared_part`](Self::shared_part) give for `rank`: itself, or for [`PROC_NULL`]
    /// the lowest rank with a part that is not empty (rank 0 if none is).
    fn query_rank(&self, rank: Rank) -> Result<Rank> {
        if rank != PROC_NULL {
            return Ok(rank);
        }
        let live = self.live()?;
        let first = live.parts.iter().position(|&(_, len)| len > 0);
        Ok(first.unwrap_or(0) as Rank)
    }

    /// `rank`'s part of the window's memory as a handle that keeps it mapped for as
    /// long as it lives, after [`free`](Self::free) too: for bindings that lend the
    /// memory to code outside Rust (the Python package's `Win.Shared_query`, whose
    /// NumPy arrays may outlive the window). Rust reads and writes it through the
    /// window's safe accessors; the handle gives only its address and length.
    /// [`PROC_NULL`] stands for a rank as in [`shared_query`](Self::shared_query).
    pub fn shared_part(&self, rank: Rank) -> Result<SharedPart> {
        let rank = self.query_rank(rank)?;
        let live = self.live()?;
        let r = self.target(rank)?;
        let (_, p) = self.range(rank, 0, 0)?;
        Ok(SharedPart {
            _map: live.map.clone(),
            ptr: p,
            len: live.parts[r].1,
        })
    }

    /// Copies `src` into `rank`'s part at byte `offset` (`MPI_Put`; complete on
    /// return). An access past the part's end is an [`ErrorClass::RmaRange`] error and
    /// writes nothing.
    pub fn put<T: Pod>(&self, src: &[T], rank: Rank, offset: usize) -> Result<()> {
        if self.is_null(rank)? {
            return Ok(());
        }
        let bytes: &[u8] = bytemuck::cast_slice(src);
        let (_, loc) = self.locate(rank, offset, bytes.len())?;
        self.store(&loc, rank, bytes)
    }

    /// Copies bytes at `offset` of `rank`'s part into `dst` (`MPI_Get`; complete on
    /// return).
    pub fn get<T: Pod>(&self, dst: &mut [T], rank: Rank, offset: usize) -> Result<()> {
        if self.is_null(rank)? {
            return Ok(());
        }
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(dst);
        let (_, loc) = self.locate(rank, offset, bytes.len())?;
        self.load(&loc, rank, bytes)
    }

    /// [`put`](Self::put) into this rank's own part.
    pub fn write<T: Pod>(&self, src: &[T], offset: usize) -> Result<()> {
        self.put(src, self.comm.rank(), offset)
    }

    /// [`get`](Self::get) from this rank's own part.
    pub fn read<T: Pod>(&self, dst: &mut [T], offset: usize) -> Result<()> {
        self.get(dst, self.comm.rank(), offset)
    }

    /// `target[i] = target[i] op src[i]` for the elements of `src` at byte `offset` of
    /// `rank`'s part (`MPI_Accumulate` with a built-in op), atomically with respect to
    /// other accumulates on that rank's part. Calling it inside a [`modify`](Self::modify)
    /// of the same part is an [`ErrorClass::RmaSync`] error at once (that lock is this
    /// rank's already).
    pub fn accumulate<T: Reducible>(
        &self,
        src: &[T],
        rank: Rank,
        offset: usize,
        op: Op,
    ) -> Result<()> {
        if !T::supports(op) {
            return Err(Error::invalid(
                ErrorClass::Op,
                format!(
                    "accumulate with {op:?} on {}, which it does not apply to",
                    std::any::type_name::<T>()
                ),
            ));
        }
        if self.is_null(rank)? {
            return Ok(());
        }
        self.modify(rank, offset, src.len(), |cur: &mut [T]| {
            T::apply(op, cur, src)
        })
    }

    /// Reads the `count` elements at byte `offset` of `rank`'s part, lets `f` change
    /// them, and writes them back, atomically with respect to every other
    /// [`accumulate`](Self::accumulate) and `modify` on that rank's part (the short
    /// internal lock of accumulates): MPI's `MPI_Get_accumulate`, `MPI_Fetch_and_op` and
    /// `MPI_Compare_and_swap` on any type are this, `f` saving the old values where the
    /// caller wants them. Returns what `f` returns.
    ///
    /// At [`PROC_NULL`] there is nothing for `f` to see and so nothing to return: an
    /// [`ErrorClass::Rank`] error naming `PROC_NULL` (use [`accumulate`](Self::accumulate),
    /// which does nothing there). A call that takes the same part's accumulate lock
    /// inside `f` (`accumulate`, `modify`, and `fetch_add` or `compare_and_swap` on a
    /// created window) fails at once with an [`ErrorClass::RmaSync`] error instead of
    /// waiting for this rank itself.
    pub fn modify<T: Pod, R>(
        &self,
        rank: Rank,
        offset: usize,
        count: usize,
        f: impl FnOnce(&mut [T]) -> R,
    ) -> Result<R> {
        if self.is_null(rank)? {
            return Err(Self::null_fetch("modify"));
        }
        let len = count.saturating_mul(std::mem::size_of::<T>());
        let (live, loc) = self.locate(rank, offset, len)?;
        let r = rank as usize;
        let word = Self::word(live, r, 1);
        let me = self.my_world_rank();
        self.wait_for(
            &|| format!("waiting to accumulate into rank {r}'s part of the window"),
            || {
                word.compare_exchange(0, WRITER | me, Ordering::Acquire, Ordering::Relaxed)
                    .map(|_| ())
            },
        )?;
        // Released however `f` ends, a panic included, so no rank waits for ever.
        struct Release<'a>(&'a AtomicU32);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                // Release: the next accumulator sees the bytes written before.
                self.0.store(0, Ordering::Release);
            }
        }
        let _held = Release(word);
        let mut cur = vec![T::zeroed(); count];
        self.load(&loc, rank, bytemuck::cast_slice_mut(&mut cur))?;
        let out = f(&mut cur);
        self.store(&loc, rank, bytemuck::cast_slice(&cur))?;
        Ok(out)
    }

    /// Lends `count` atomics of type `A` at byte `offset` of `rank`'s part (a multiple of
    /// `A`'s size, else an [`ErrorClass::Arg`] error), for element-wise concurrent access without copies: every rank may
    /// load, store and update them at once. Plain [`put`](Self::put)s of the same bytes
    /// race with them (the bytes are well defined but unordered).
    pub fn atomics<A: SharedAtomic>(
        &self,
        rank: Rank,
        offset: usize,
        count: usize,
    ) -> Result<&[A]> {
        let size = std::mem::size_of::<A>();
        let len = count.saturating_mul(size);
        let (_, p) = self.range(rank, offset, len)?;
        Self::check_atomic_offset::<A>(rank, offset)?;
        debug_assert_eq!(p.as_ptr() as usize % std::mem::align_of::<A>(), 0);
        // SAFETY: in bounds (checked above) and aligned (the part is 64-byte aligned
        // and the offset a multiple of the size, which is the alignment); atomics may alias memory that
        // other processes change, as long as every access to it is atomic, which is
        // true of every access this module makes; zero bytes are a valid atomic; the
        // borrow of `self` keeps the mapping (freed only through `&mut self` or drop).
        Ok(unsafe { std::slice::from_raw_parts(p.as_ptr().cast::<A>(), count) })
    }

    /// The `AtomicU64` at byte `offset` (a multiple of 8) of `rank`'s part.
    pub fn atomic_u64(&self, rank: Rank, offset: usize) -> Result<&AtomicU64> {
        Ok(&self.atomics::<AtomicU64>(rank, offset, 1)?[0])
    }

    /// Adds `value` (wrapping) to the `u64` at byte `offset` (a multiple of 8) of
    /// `rank`'s part and returns the previous value (`MPI_Fetch_and_op` with
    /// `MPI_SUM`), atomically: `Some(old)`. At [`PROC_NULL`] it does nothing and
    /// returns `None`, as MPI leaves the result buffer unchanged there (see the type's
    /// doc, "`PROC_NULL` targets"). A misaligned offset is an [`ErrorClass::Arg`] error
    /// on every kind of window.
    ///
    /// MPI 4.1 §12.3.4 (`MPI_Fetch_and_op`), §12.3 (`MPI_PROC_NULL` targets).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let win = shmpi::Window::allocate_shared(&world, 8)?;
    /// assert_eq!(win.fetch_add(0, 0, 5)?, Some(0));
    /// assert_eq!(win.fetch_add(shmpi::PROC_NULL, 0, 5)?, None); // no effect
    /// assert_eq!(win.fetch_add(0, 0, 0)?, Some(5));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn fetch_add(&self, rank: Rank, offset: usize, value: u64) -> Result<Option<u64>> {
        if self.is_null(rank)? {
            return Ok(None);
        }
        if self.live()?.remote.is_some() {
            return self
                .modify_u64(rank, offset, |old| old.wrapping_add(value))
                .map(Some);
        }
        Ok(Some(
            self.atomic_u64(rank, offset)?
                .fetch_add(value, Ordering::AcqRel),
        ))
    }

    /// Replaces the `u64` at byte `offset` (a multiple of 8) of `rank`'s part by `new`
    /// if it equals `expected`, atomically; returns the value found, `Some(found)`
    /// (`MPI_Compare_and_swap`). At [`PROC_NULL`] it does nothing and returns `None`,
    /// as [`fetch_add`](Self::fetch_add) does. Errors as `fetch_add`.
    ///
    /// MPI 4.1 §12.3.4 (`MPI_Compare_and_swap`), §12.3 (`MPI_PROC_NULL` targets).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let win = shmpi::Window::allocate_shared(&world, 8)?;
    /// assert_eq!(win.compare_and_swap(0, 0, 0, 9)?, Some(0)); // swapped
    /// assert_eq!(win.compare_and_swap(shmpi::PROC_NULL, 0, 9, 1)?, None); // no effect
    /// assert_eq!(win.compare_and_swap(0, 0, 0, 1)?, Some(9)); // not swapped
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn compare_and_swap(
        &self,
        rank: Rank,
        offset: usize,
        expected: u64,
        new: u64,
    ) -> Result<Option<u64>> {
        if self.is_null(rank)? {
            return Ok(None);
        }
        if self.live()?.remote.is_some() {
            return self
                .modify_u64(rank, offset, |old| if old == expected { new } else { old })
                .map(Some);
        }
        let a = self.atomic_u64(rank, offset)?;
        Ok(Some(
            match a.compare_exchange(expected, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(v) | Err(v) => v,
            },
        ))
    }

    /// The `u64` at `offset` of `rank`'s part of a created window replaced by
    /// `f(old)` under the accumulate lock, returning `old`: the atomics of such a window,
    /// with the alignment check of [`atomics`](Self::atomics).
    fn modify_u64(&self, rank: Rank, offset: usize, f: impl FnOnce(u64) -> u64) -> Result<u64> {
        Self::check_atomic_offset::<u64>(rank, offset)?;
        self.modify(rank, offset, 1, |x: &mut [u64]| {
            let old = x[0];
            x[0] = f(old);
            old
        })
    }

    /// Ends one access epoch and begins the next (`MPI_Win_fence`): a barrier of the
    /// communicator between two `fence(SeqCst)`. Collective.
    pub fn fence(&self) -> Result<()> {
        self.live()?;
        fence(Ordering::SeqCst);
        // A call of its own, so that a rank calling `free` or a barrier here fails it.
        self.comm.sync_as(Call::WinFence, 0)?;
        fence(Ordering::SeqCst);
        Ok(())
    }

    /// Takes the `kind` lock of `rank`'s part (`MPI_Win_lock`), waiting for it as the
    /// [type's docs](Window) say. Locking a target this rank already holds is an error;
    /// so is [`PROC_NULL`], which has no lock ([`ErrorClass::Rank`], naming it).
    pub fn lock(&self, kind: LockKind, rank: Rank) -> Result<()> {
        let live = self.live()?;
        let r = self.target(rank)?;
        if let Some(k) = live.held[r].get() {
            return Err(Error::invalid(
                ErrorClass::RmaSync,
                format!("lock of rank {r}'s part of the window while this rank holds it ({k:?})"),
            ));
        }
        self.acquire(live, kind, r)?;
        live.held[r].set(Some(kind));
        Ok(())
    }

    fn acquire(&self, live: &Live, kind: LockKind, r: usize) -> Result<()> {
        let word = Self::word(live, r, 0);
        let name = match kind {
            LockKind::Shared => "a shared",
            LockKind::Exclusive => "an exclusive",
        };
        let what = || format!("waiting for {name} lock of rank {r}'s part of the window");
        match kind {
            LockKind::Exclusive => {
                let me = self.my_world_rank();
                self.wait_for(&what, || {
                    word.compare_exchange(0, WRITER | me, Ordering::Acquire, Ordering::Relaxed)
                        .map(|_| ())
                })
            }
            LockKind::Shared => self.wait_for(&what, || {
                let w = word.load(Ordering::Relaxed);
                if w & WRITER != 0 {
                    return Err(w);
                }
                word.compare_exchange(w, w + 1, Ordering::Acquire, Ordering::Relaxed)
                    .map(|_| ())
            }),
        }
    }

    fn release(live: &Live, kind: LockKind, r: usize) {
        let word = Self::word(live, r, 0);
        // Release: the next holder sees every access made under this lock.
        match kind {
            LockKind::Exclusive => word.store(0, Ordering::Release),
            LockKind::Shared => {
                word.fetch_sub(1, Ordering::Release);
            }
        }
    }

    /// Releases this rank's lock of `rank`'s part (`MPI_Win_unlock`); every access made
    /// under it is complete and visible to the next holder.
    pub fn unlock(&self, rank: Rank) -> Result<()> {
        let live = self.live()?;
        let r = self.target(rank)?;
        let Some(kind) = live.held[r].get().filter(|_| !live.all.get()) else {
            return Err(Error::invalid(
                ErrorClass::RmaSync,
                format!(
                    "unlock of rank {r}'s part of the window, which this rank has not locked \
                 with `lock`"
                ),
            ));
        };
        Self::release(live, kind, r);
        live.held[r].set(None);
        Ok(())
    }

    /// Takes a shared lock of every rank's part (`MPI_Win_lock_all`), in rank order.
    pub fn lock_all(&self) -> Result<()> {
        let live = self.live()?;
        if let Some(r) = live.held.iter().position(|h| h.get().is_some()) {
            return Err(Error::invalid(
                ErrorClass::RmaSync,
                format!("lock_all while this rank holds a lock of rank {r}'s part of the window"),
            ));
        }
        for r in 0..live.parts.len() {
            if let Err(e) = self.acquire(live, LockKind::Shared, r) {
                for t in 0..r {
                    Self::release(live, LockKind::Shared, t);
                    live.held[t].set(None);
                }
                return Err(e);
            }
            live.held[r].set(Some(LockKind::Shared));
        }
        live.all.set(true);
        Ok(())
    }

    /// Releases the locks of [`lock_all`](Self::lock_all) (`MPI_Win_unlock_all`).
    pub fn unlock_all(&self) -> Result<()> {
        let live = self.live()?;
        if !live.all.get() {
            return Err(Error::invalid(
                ErrorClass::RmaSync,
                "unlock_all of a window this rank has not locked with `lock_all`",
            ));
        }
        for (r, h) in live.held.iter().enumerate() {
            Self::release(live, LockKind::Shared, r);
            h.set(None);
        }
        live.all.set(false);
        Ok(())
    }

    /// Completes this rank's accesses to `rank`'s part (`MPI_Win_flush`): they are
    /// already complete, so this orders them before later ones (`fence(SeqCst)`).
    pub fn flush(&self, rank: Rank) -> Result<()> {
        self.live()?;
        self.target(rank)?;
        fence(Ordering::SeqCst);
        Ok(())
    }

    /// [`flush`](Self::flush) for every target (`MPI_Win_flush_all`).
    pub fn flush_all(&self) -> Result<()> {
        self.live()?;
        fence(Ordering::SeqCst);
        Ok(())
    }

    /// Orders this rank's accesses to the window before the later ones
    /// (`MPI_Win_sync`): a `fence(SeqCst)`.
    pub fn sync(&self) -> Result<()> {
        self.live()?;
        fence(Ordering::SeqCst);
        Ok(())
    }

    /// Frees the window (`MPI_Win_free`): collective, a barrier so that no rank unmaps
    /// memory another is still accessing. A rank that holds a lock (MPI 4.1 §12.2.5: its
    /// passive-target epochs must end first) refuses the free, and then the free fails
    /// on every rank and frees nothing anywhere: the window stays fully usable, so the
    /// program can unlock and free it again. A free that fails otherwise (another rank
    /// makes another collective call) frees nothing either. After a free, every call on
    /// the window is an [`ErrorClass::Win`] error.
    pub fn free(&mut self) -> Result<()> {
        let live = self.live()?;
        // Every rank says whether it refuses (1 + the target it holds a lock of), and
        // every rank decides from all of them, so that they all free or none does.
        let held = live.held.iter().position(|h| h.get().is_some());
        let word = held.map_or(0, |r| r as u64 + 1);
        fence(Ordering::SeqCst);
        let words = self.comm.allgather_as(Call::WinFree, word)?;
        if let Some((j, &w)) = words.iter().enumerate().find(|&(_, &w)| w != 0) {
            let me = self.comm.rank() as usize;
            let why = match held {
                Some(r) => format!("this rank holds a lock of rank {r}'s part"),
                None => format!("rank {j} holds a lock of rank {}'s part", w - 1),
            };
            return Err(Error::invalid(
                ErrorClass::RmaSync,
                format!(
                    "Window::free at rank {me} of the window's communicator: refused on every \
                     rank, as {why}; nothing is freed and the window stays usable: unlock, \
                     then free again"
                ),
            ));
        }
        fence(Ordering::SeqCst);
        self.live = None;
        Ok(())
    }

    fn my_world_rank(&self) -> u32 {
        self.comm.inner.wrank as u32
    }

    /// Retries `attempt` (which returns the lock word it found on failure) with a
    /// backoff until it succeeds, the job aborts, the exclusive holder leaves, or
    /// [`LOCK_TIMEOUT`] passes.
    fn wait_for(
        &self,
        what: &dyn Fn() -> String,
        mut attempt: impl FnMut() -> std::result::Result<(), u32>,
    ) -> Result<()> {
        const SPINS: u32 = 128;
        let mut tries = 0u32;
        let mut start = None;
        let mut nap = Duration::from_micros(20);
        loop {
            let w = match attempt() {
                Ok(()) => return Ok(()),
                Err(w) => w,
            };
            if w == WRITER | self.my_world_rank() {
                // Only this rank writes its own number into a word, and only while it
                // holds it, so waiting would be waiting for itself until the timeout.
                return Err(Error::invalid(
                    ErrorClass::RmaSync,
                    format!(
                        "{}: this rank holds that lock itself (an accumulate, modify, or an \
                     atomic on a created window, called inside `modify` of the same part?), \
                     so it would wait for itself; make the call after the one holding it \
                     returns",
                        what()
                    ),
                ));
            }
            tries = tries.saturating_add(1);
            if tries < SPINS {
                std::hint::spin_loop();
                continue;
            }
            if let Some(a) = self.seg.abort_info() {
                return Err(a.to_error(&what()));
            }
            if w & WRITER != 0 {
                let holder = (w & !WRITER) as usize;
                if holder < self.seg.nranks() {
                    if let Some(how) = self.seg.departed(holder) {
                        return Err(Error::PeerFailed {
                            rank: holder,
                            how,
                            while_doing: what(),
                        });
                    }
                }
            }
            let t = start.get_or_insert_with(Instant::now).elapsed();
            if t > LOCK_TIMEOUT {
                return Err(Error::Usage(format!(
                    "{}: not acquired within {LOCK_TIMEOUT:?} (a deadlock, or a holder that \
                     never unlocks)",
                    what()
                )));
            }
            if t < Duration::from_millis(1) {
                std::thread::yield_now();
            } else {
                std::thread::sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(1));
            }
        }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // Release what this rank still holds so that other ranks do not wait for it.
        if let Some(live) = &self.live {
            for (r, h) in live.held.iter().enumerate() {
                if let Some(kind) = h.get() {
                    Self::release(live, kind, r);
                }
            }
        }
    }
}

/// Copies `src` into shared memory at `dst` with relaxed atomic stores (8 bytes at a
/// time where `dst` is aligned), so that a concurrent access by another process is a
/// race on values, never undefined behaviour.
///
/// # Safety
/// `dst..dst + src.len()` must lie in a live mapping.
unsafe fn store_bytes(dst: *mut u8, src: &[u8]) {
    let n = src.len();
    let head = dst.align_offset(8).min(n);
    let body = (n - head) / 8 * 8;
    for (i, &b) in src[..head].iter().enumerate() {
        // SAFETY: in bounds (caller); a byte is always aligned.
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(b, Ordering::Relaxed);
    }
    for (i, w) in src[head..head + body].chunks_exact(8).enumerate() {
        let w = u64::from_ne_bytes(w.try_into().expect("8 bytes"));
        // SAFETY: in bounds (caller); `dst + head` is 8-aligned.
        unsafe { AtomicU64::from_ptr(dst.add(head + 8 * i).cast()) }.store(w, Ordering::Relaxed);
    }
    for (i, &b) in src[head + body..].iter().enumerate() {
        // SAFETY: in bounds (caller).
        unsafe { AtomicU8::from_ptr(dst.add(head + body + i)) }.store(b, Ordering::Relaxed);
    }
}

/// Copies shared memory at `src` into `dst` with relaxed atomic loads, as
/// [`store_bytes`].
///
/// # Safety
/// `src..src + dst.len()` must lie in a live mapping.
unsafe fn load_bytes(src: *mut u8, dst: &mut [u8]) {
    let n = dst.len();
    let head = src.align_offset(8).min(n);
    let body = (n - head) / 8 * 8;
    for (i, b) in dst[..head].iter_mut().enumerate() {
        // SAFETY: in bounds (caller).
        *b = unsafe { AtomicU8::from_ptr(src.add(i)) }.load(Ordering::Relaxed);
    }
    for (i, w) in dst[head..head + body].chunks_exact_mut(8).enumerate() {
        // SAFETY: in bounds (caller); `src + head` is 8-aligned.
        let v =
            unsafe { AtomicU64::from_ptr(src.add(head + 8 * i).cast()) }.load(Ordering::Relaxed);
        w.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in dst[head + body..].iter_mut().enumerate() {
        // SAFETY: in bounds (caller).
        *b = unsafe { AtomicU8::from_ptr(src.add(head + body + i)) }.load(Ordering::Relaxed);
    }
}
