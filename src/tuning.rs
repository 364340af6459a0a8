//! Every `SHMPI_*` knob in one table: its name, default, range and help text, how it
//! is parsed, and the values derived from it. The engine, the launcher, the doorbell
//! and the collectives read their settings here, and `shmrun --help` prints the table.
//!
//! A value that does not parse is ignored (the default applies), except those the
//! launcher reads itself (`SHMPI_RING_BYTES`, `SHMPI_GRACE_MS`, `SHMPI_DEADLOCK_MS`,
//! `SHMPI_TRACE_EVENTS`), which it reports as errors before any rank starts. Values
//! outside a knob's range are clamped into it.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::layout::Layout;

/// One environment variable.
#[derive(Debug, Clone, Copy)]
pub struct Knob {
    /// The variable's name.
    pub name: &'static str,
    /// Its default, in words.
    pub default: &'static str,
    /// The values it takes, in words.
    pub range: &'static str,
    /// What it sets.
    pub help: &'static str,
}

/// Size of each ring, read by the launcher.
const RING_BYTES: Knob = Knob {
    name: "SHMPI_RING_BYTES",
    default: "256 MiB of rings in all, at most 1 MiB each",
    range: "a power of two, 4096..=2^30",
    help: "bytes of each ring between two ranks",
};
/// First chunk of a streamed message.
const CHUNK_BYTES: Knob = Knob {
    name: "SHMPI_CHUNK_BYTES",
    default: "16384",
    range: "256..=ring/4, rounded down to a multiple of 64",
    help: "first chunk of a message streamed in several records",
};
/// Largest chunk of a streamed message.
const CHUNK_MAX_BYTES: Knob = Knob {
    name: "SHMPI_CHUNK_MAX_BYTES",
    default: "131072",
    range: "SHMPI_CHUNK_BYTES..=ring/8, rounded down to a multiple of 64",
    help: "largest chunk; chunks grow from the first as the message goes",
};
/// Largest message that travels as one record.
const EAGER_BYTES: Knob = Knob {
    name: "SHMPI_EAGER_BYTES",
    default: "SHMPI_CHUNK_BYTES",
    range: "0..=ring/4",
    help: "largest message sent as one record",
};
/// Spin phase of a blocked call.
const SPIN_US: Knob = Knob {
    name: "SHMPI_SPIN_US",
    default: "50; when ranks outnumber CPUs, 2, and 0 in collectives",
    range: "microseconds",
    help: "how long a blocked call spins before it yields",
};
/// Yield phase of a blocked call.
const YIELD_US: Knob = Knob {
    name: "SHMPI_YIELD_US",
    default: "2000",
    range: "microseconds",
    help: "how long it then yields before it sleeps on its futex",
};
/// The sleepers' membarrier handshake.
const MEMBARRIER: Knob = Knob {
    name: "SHMPI_MEMBARRIER",
    default: "on where the kernel has it and sleeps are rare",
    range: "0 or unset",
    help: "sleepers pay a membarrier so that wakers skip a fence; 0 fences every wake instead",
};
/// Non-temporal stores of collective data.
const COLL_STREAM: Knob = Knob {
    name: "SHMPI_COLL_STREAM",
    default: "off",
    range: "1 or unset",
    help: "collectives publish large data with non-temporal stores",
};
/// Non-temporal stores of streamed messages.
const RING_STREAM: Knob = Knob {
    name: "SHMPI_RING_STREAM",
    default: "auto: once three large chunks' plain copies in a row ran below 6 GB/s",
    range: "0, 1 or unset",
    help: "chunks of streamed messages are written with non-temporal stores (1: always, 0: never)",
};
/// Single-copy large collectives.
const CMA: Knob = Knob {
    name: "SHMPI_CMA",
    default: "on where the system allows it",
    range: "0 or unset",
    help: "large broadcasts (2 ranks), allgathers, alltoalls and non-blocking sends read (2-rank broadcasts also write) peers' buffers directly (process_vm_readv, process_vm_writev); 0 copies through the segment",
};
/// Offered (single-copy) non-blocking sends.
const OFFER_BYTES: Knob = Knob {
    name: "SHMPI_OFFER_BYTES",
    default: "65536",
    range: "bytes",
    help: "where SHMPI_CMA allows it, non-blocking sends of plain data from this size are copied once, by the receiver from the sender's buffer; larger than any message: through the ring",
};
/// Offered messages whose copy the sender shares.
const SPLIT_BYTES: Knob = Knob {
    name: "SHMPI_SPLIT_BYTES",
    default: "131072",
    range: "bytes",
    help: "an offered message from this size that a receive reads into a buffer is split: the receiver reads the front while the sender, if it waits in shmpi, writes the rest; larger than any message: the receiver reads it all",
};
/// Non-temporal stores of collective results.
const COLL_NT_BYTES: Knob = Knob {
    name: "SHMPI_COLL_NT_BYTES",
    default: "never",
    range: "bytes",
    help: "collective results of at least this size are written with non-temporal stores",
};
/// The launcher's grace period after a failure.
const GRACE_MS: Knob = Knob {
    name: "SHMPI_GRACE_MS",
    default: "100",
    range: "milliseconds",
    help: "how long the other ranks get to stop after one fails, before they are killed",
};
/// The launcher's deadlock report.
const DEADLOCK_MS: Knob = Knob {
    name: "SHMPI_DEADLOCK_MS",
    default: "500",
    range: "milliseconds; 0: never",
    help: "how long every rank must be stuck before a deadlock is reported",
};

/// The bound of each rank's trace buffer.
const TRACE_EVENTS: Knob = Knob {
    name: "SHMPI_TRACE_EVENTS",
    default: "65536",
    range: "16..=16777216",
    help: "with --trace, events kept per rank (64 bytes each); newer ones are dropped and counted",
};

/// Every knob, in the order `shmrun --help` lists them.
pub const KNOBS: [Knob; 16] = [
    RING_BYTES,
    CHUNK_BYTES,
    CHUNK_MAX_BYTES,
    EAGER_BYTES,
    SPIN_US,
    YIELD_US,
    MEMBARRIER,
    COLL_STREAM,
    COLL_NT_BYTES,
    RING_STREAM,
    CMA,
    OFFER_BYTES,
    SPLIT_BYTES,
    GRACE_MS,
    DEADLOCK_MS,
    TRACE_EVENTS,
];

impl Knob {
    /// The variable's value, if it is set.
    fn raw(&self) -> Option<String> {
        std::env::var(self.name).ok()
    }

    /// The variable as a number, `None` if it is unset or not a number.
    fn number<T: std::str::FromStr>(&self) -> Option<T> {
        self.raw()?.trim().parse().ok()
    }

    /// Whether the variable is set to exactly `v`.
    fn is(&self, v: &str) -> bool {
        self.raw().is_some_and(|s| s == v)
    }
}

/// The table as `shmrun --help` prints it.
pub fn help_text() -> String {
    let mut s = String::from("Environment:\n");
    for k in KNOBS {
        s.push_str(&format!(
            "  {}\n      {} ({}; default: {})\n",
            k.name, k.help, k.range, k.default
        ));
    }
    s
}

/// Message sizes, derived from the ring size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    /// Messages up to this size travel as one record.
    pub(crate) eager_max: usize,
    /// First chunk of a streamed message.
    pub(crate) chunk: usize,
    /// Largest chunk (chunks grow from `chunk` as the message goes).
    pub(crate) chunk_max: usize,
    /// Smallest chunk worth writing while more data waits.
    pub(crate) min_part: usize,
    /// Bytes drained from one ring per pass.
    pub(crate) drain_budget: usize,
}

impl Sizes {
    /// The sizes for rings of `cap` bytes. Chunks start small, so that the receiver
    /// copies one out while the sender copies the next in, and grow so that a long
    /// message pays few records; they are multiples of the cache line, so that every
    /// chunk's payload starts on one (`ring.rs`).
    pub(crate) fn for_ring(cap: usize) -> Self {
        let chunk = CHUNK_BYTES
            .number::<usize>()
            .unwrap_or(16 << 10)
            .clamp(256, cap / 4)
            & !63;
        let chunk_max = CHUNK_MAX_BYTES
            .number::<usize>()
            .unwrap_or(128 << 10)
            .clamp(chunk, (cap / 8).max(chunk))
            & !63;
        let eager_max = EAGER_BYTES
            .number::<usize>()
            .unwrap_or(chunk)
            .clamp(0, cap / 4);
        Sizes {
            eager_max,
            chunk,
            chunk_max,
            min_part: (chunk / 4).max(256),
            drain_budget: cap,
        }
    }
}

/// How long a blocked call spins and yields before it sleeps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Waits {
    /// The spin phase of point-to-point waits.
    pub(crate) spin_ns: u64,
    /// The spin phase of a collective's wait.
    pub(crate) coll_spin_ns: u64,
    /// The yield phase, after the spin phase.
    pub(crate) yield_ns: u64,
}

impl Waits {
    /// The phases for a job whose ranks outnumber its CPUs or not: a short spin when
    /// they do (a waiting rank holds a CPU a peer needs), and collectives then yield at
    /// once, since some member of the collective is not running.
    pub(crate) fn for_job(oversubscribed: bool) -> Self {
        let us = |k: &Knob| k.number::<u64>().map(|us| us.saturating_mul(1000));
        let spin = us(&SPIN_US);
        let spin_ns = spin.unwrap_or(if oversubscribed { 2_000 } else { 50_000 });
        Waits {
            spin_ns,
            coll_spin_ns: spin.unwrap_or(if oversubscribed { 0 } else { spin_ns }),
            yield_ns: us(&YIELD_US).unwrap_or(2_000_000),
        }
    }
}

/// Whether `SHMPI_MEMBARRIER=0` turned the sleepers' membarrier handshake off.
pub(crate) fn membarrier_off() -> bool {
    MEMBARRIER.is("0")
}

/// Whether `SHMPI_COLL_STREAM=1` turned non-temporal stores of collective data on.
pub(crate) fn coll_stream() -> bool {
    COLL_STREAM.is("1")
}

/// `SHMPI_RING_STREAM`: `Some(true)` always streams large ring chunks, `Some(false)`
/// never does, `None` decides by the timed copies (`ring::Producer::copy_chunk`). Read
/// once.
pub(crate) fn ring_stream() -> Option<bool> {
    static MODE: std::sync::OnceLock<Option<bool>> = std::sync::OnceLock::new();
    *MODE.get_or_init(|| match RING_STREAM.raw().as_deref() {
        Some("1") => Some(true),
        Some("0") => Some(false),
        _ => None,
    })
}

/// Whether `SHMPI_CMA=0` turned single-copy collectives off (read by the launcher).
pub(crate) fn cma_off() -> bool {
    CMA.is("0")
}

/// The size from which non-blocking sends of plain data are offered
/// (`SHMPI_OFFER_BYTES`; 64 KiB, below which the ring's two copies cost less than the
/// system call's page pinning: docs/performance.md, "Decisions").
pub(crate) fn offer_bytes() -> usize {
    OFFER_BYTES.number::<usize>().unwrap_or(64 << 10).max(1)
}

/// The size from which an offered message read into a buffer is split with its sender
/// (`SHMPI_SPLIT_BYTES`; 128 KiB, below which the coordination costs about what the
/// sender's half saves: docs/performance.md, "Decisions").
pub(crate) fn split_bytes() -> usize {
    SPLIT_BYTES.number::<usize>().unwrap_or(128 << 10).max(1)
}

/// The size from which collective results are written with non-temporal stores.
pub(crate) fn coll_nt_bytes() -> usize {
    COLL_NT_BYTES.number().unwrap_or(usize::MAX)
}

/// The ring size for `n` ranks: `SHMPI_RING_BYTES`, else the default for `n`.
pub(crate) fn ring_bytes(n: usize) -> Result<usize> {
    match RING_BYTES.raw() {
        Some(v) => v.trim().parse::<usize>().map_err(|_| {
            Error::Usage(format!(
                "{}={v:?} is not a number of bytes",
                RING_BYTES.name
            ))
        }),
        None => Ok(Layout::default_ring_bytes(n)),
    }
}

/// How long the other ranks get to stop after one fails.
pub(crate) fn grace() -> Duration {
    GRACE_MS
        .number()
        .map_or(Duration::from_millis(100), Duration::from_millis)
}

/// How long every rank must be stuck before the launcher reports a deadlock (zero:
/// never).
pub(crate) fn deadlock_after() -> Duration {
    DEADLOCK_MS
        .number()
        .map_or(Duration::from_millis(500), Duration::from_millis)
}

/// Events each rank's trace buffer keeps (`SHMPI_TRACE_EVENTS`), read by the launcher.
pub(crate) fn trace_events() -> usize {
    TRACE_EVENTS
        .number::<usize>()
        .unwrap_or(1 << 16)
        .clamp(16, 1 << 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_knob_is_listed_once_with_its_help() {
        let text = help_text();
        for k in KNOBS {
            assert!(k.name.starts_with("SHMPI_"), "{}", k.name);
            assert_eq!(text.matches(&format!("  {}\n", k.name)).count(), 1);
            assert!(!k.help.is_empty() && !k.default.is_empty());
        }
    }

    #[test]
    fn sizes_stay_within_the_ring() {
        for cap in [4096, 1 << 16, 1 << 20] {
            let s = Sizes::for_ring(cap);
            assert!(s.chunk <= cap / 4 && s.chunk_max <= (cap / 8).max(s.chunk));
            assert!(s.eager_max <= cap / 4 && s.chunk % 64 == 0 && s.chunk_max % 64 == 0);
        }
    }
}
