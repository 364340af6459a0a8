//! `membarrier(2)` with `MEMBARRIER_CMD_GLOBAL_EXPEDITED`: one process makes every
//! running thread of every registered process execute a full memory barrier (an IPI to
//! each CPU running one). The sleep handshake in `doorbell.rs` uses it as the heavy
//! side of an asymmetric barrier.

use std::sync::atomic::{AtomicU8, Ordering};

use rustix::thread::{MembarrierCommand, MembarrierQuery, membarrier, membarrier_query};

/// 0 = not asked yet, 1 = supported, 2 = not. Relaxed: a cache of an answer that is
/// the same for every caller, so two threads that both ask just ask twice.
static SUPPORTED: AtomicU8 = AtomicU8::new(0);

/// Whether the kernel offers `MEMBARRIER_CMD_GLOBAL_EXPEDITED` (Linux 4.16+, and not
/// filtered by a seccomp policy). Asked once.
pub(crate) fn supported() -> bool {
    match SUPPORTED.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let ok = membarrier_query().contains(MembarrierQuery::GLOBAL_EXPEDITED);
            SUPPORTED.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
            ok
        }
    }
}

/// Registers this process, so that other processes' [`global_expedited`] calls reach
/// its threads. Returns whether it worked.
pub(crate) fn register() -> bool {
    membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok()
}

/// A full memory barrier on every running thread of every registered process, done
/// when this returns (threads not running pass one when they are next scheduled).
/// Returns false where the kernel refuses.
pub(crate) fn global_expedited() -> bool {
    membarrier(MembarrierCommand::GlobalExpedited).is_ok()
}
