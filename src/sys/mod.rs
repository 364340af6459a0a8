//! The only place that talks to the operating system.
//!
//! - [`shm`]: an anonymous, sealed `memfd` segment mapped `MAP_SHARED`.
//! - [`futex`]: wait/wake on a 32-bit word in shared memory, across processes.
//! - [`membarrier`]: a memory barrier on every registered process's running threads.
//! - [`proc`]: spawning ranks (fork + exec with a prepared child), CPU affinity,
//!   signals, reaping children, the monotonic clock.
//! - [`guard`]: the process that kills what the ranks started if the launcher dies.
//! - [`tracemem`]: the time-stamp counter and the tracing buffers' words.
//! - [`cma`]: reading another rank's memory (`process_vm_readv`).
//!
//! Everything here is `unsafe` inside and safe outside.

pub(crate) mod cma;
pub(crate) mod futex;
pub(crate) mod guard;
pub(crate) mod membarrier;
pub(crate) mod proc;
pub(crate) mod shm;
pub(crate) mod tracemem;
