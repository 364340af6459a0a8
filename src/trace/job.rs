//! The launcher's side: the memfd the ranks record into (created before any rank
//! starts, with the output file already open, so that an unwritable path fails
//! first: the launcher gives it a hidden file beside the path asked for, renamed onto
//! it once the job has run, so that a job that never starts replaces nothing), the
//! launcher's own markers, and the files and summary written at the end.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use super::model::{self, Clock, Marker, Model, RankEnd};
use super::{ENV_TRACE, ENV_TRACE_FD, LAYOUT, MODE_STATS, MODE_TRACE};
use crate::error::{Error, Result};
use crate::sys;
use crate::sys::shm::Mapping;
use crate::sys::tracemem::{monotonic_ns, ticks};

/// What the job records, and where it goes.
pub(crate) struct Job {
    n: usize,
    cap: usize,
    mode: u64,
    fd: OwnedFd,
    map: Mapping,
    out: Option<(PathBuf, File)>,
    tick0: u64,
    mono0: u64,
    markers: Vec<(u64, String, String, Option<usize>)>,
}

/// What the launcher prints once the job is written.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// The summary table (`--stats`).
    pub(crate) stats: Option<String>,
    /// Lines to print (where the trace went, lost events, a write error).
    pub(crate) notes: Vec<String>,
    /// Per marker name, the milliseconds at which the trace shows it.
    pub(crate) marker_ms: Vec<(String, f64)>,
    /// The trace's path, once written.
    pub(crate) path: Option<PathBuf>,
}

impl Job {
    /// Opens the trace file (if any) and creates the ranks' regions. `None` when
    /// neither a trace nor statistics is asked for.
    pub(crate) fn new(
        n: usize,
        trace: Option<&Path>,
        stats: bool,
        events: usize,
    ) -> Result<Option<Job>> {
        if trace.is_none() && !stats {
            return Ok(None);
        }
        let out = match trace {
            Some(p) => {
                let f = File::create(p).map_err(|e| {
                    Error::Usage(format!(
                        "cannot write the trace to {}: {e}; no rank was started",
                        p.display()
                    ))
                })?;
                Some((p.to_path_buf(), f))
            }
            None => None,
        };
        let cap = if trace.is_some() { events } else { 0 };
        let mode =
            if trace.is_some() { MODE_TRACE } else { 0 } | if stats { MODE_STATS } else { 0 };
        let (_, len) = super::geometry(n, cap);
        let (fd, map) = sys::shm::create(n * len * 8)?;
        sys::shm::inherit_across_exec(sys::shm::raw(&fd))
            .map_err(|e| Error::Usage(format!("passing the trace buffers to the ranks: {e}")))?;
        let mono0 = monotonic_ns();
        let tick0 = ticks();
        Ok(Some(Job {
            n,
            cap,
            mode,
            fd,
            map,
            out,
            tick0,
            mono0,
            markers: Vec::new(),
        }))
    }

    /// The environment every rank gets.
    pub(crate) fn env(&self) -> [(&'static str, String); 2] {
        [
            (ENV_TRACE_FD, sys::shm::raw(&self.fd).to_string()),
            (ENV_TRACE, format!("{}:{}:{LAYOUT}", self.mode, self.cap)),
        ]
    }

    /// Notes something the launcher saw, now.
    pub(crate) fn mark(&mut self, name: &str, text: &str, rank: Option<usize>) {
        self.markers
            .push((ticks(), name.to_string(), text.to_string(), rank));
    }

    /// Notes something the launcher saw at `t` (ticks).
    pub(crate) fn mark_at(&mut self, t: u64, name: &str, text: &str, rank: Option<usize>) {
        self.markers
            .push((t, name.to_string(), text.to_string(), rank));
    }

    /// The time to put beside a rank's end.
    pub(crate) fn now(&self) -> u64 {
        ticks()
    }

    /// Reads the regions (every rank has ended), writes the trace and builds the summary.
    pub(crate) fn finish(mut self, ends: &[RankEnd]) -> Output {
        let tick1 = ticks();
        let mono1 = monotonic_ns();
        let scale = if tick1 > self.tick0 && mono1 > self.mono0 {
            (mono1 - self.mono0) as f64 / (tick1 - self.tick0) as f64
        } else {
            1.0
        };
        let clock = Clock {
            tick0: self.tick0,
            mono0: self.mono0,
            scale,
        };
        let words = sys::tracemem::words(&self.map);
        let mut m: Model = model::read(
            words,
            self.n,
            self.cap,
            clock,
            ends,
            mono1.saturating_sub(self.mono0),
        );
        m.markers = self
            .markers
            .iter()
            .map(|(t, name, text, rank)| Marker {
                t: clock.ns(*t),
                name: name.clone(),
                text: text.clone(),
                rank: *rank,
            })
            .collect();
        let mut o = Output::default();
        if self.mode & MODE_STATS != 0 {
            o.stats = Some(super::stats::table(&m, self.mode & MODE_TRACE != 0));
        }
        for (r, info) in m.ranks.iter().enumerate() {
            if info.dropped > 0 {
                o.notes.push(format!(
                    "shmrun: rank {r}'s trace buffer was full: its {} newest events were lost \
                     (the trace says where; SHMPI_TRACE_EVENTS raises the bound of {} per rank)",
                    info.dropped, self.cap
                ));
            }
        }
        if let Some((path, mut f)) = self.out.take() {
            let html = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
            let json = super::chrome::json(&m);
            let text = if html {
                super::html::page(&json, &m)
            } else {
                json
            };
            match f.write_all(text.as_bytes()).and_then(|_| f.flush()) {
                Ok(()) => {
                    o.marker_ms = m
                        .markers
                        .iter()
                        .map(|k| (k.name.clone(), k.t as f64 / 1e6))
                        .collect();
                    o.path = Some(path);
                }
                Err(e) => o.notes.push(format!(
                    "shmrun: writing the trace to {} failed: {e}",
                    path.display()
                )),
            }
        }
        o
    }
}
