//! Non-blocking requests over MPI: a table per communicator that keeps each raw
//! `MPI_Request` with the buffer it reads, and non-blocking receives until they match.
//!
//! A request handle ([`crate::Request`]) names its entry by id and holds the
//! communicator weakly. Dropping a handle drops a pending receive (it has matched
//! nothing: it is cancelled) and leaves a send to finish; a communicator that is
//! dropped hands its unfinished sends to the environment, which waits for them before
//! `MPI_Finalize`. So no buffer MPI may still read is ever freed.

use std::rc::{Rc, Weak};

use ::mpi::ffi;
use rkyv::util::AlignedVec;

use super::Comm;
use crate::codec::PodVec;
use crate::completions::{Done, RecvData};
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::matching::{Matcher, Want};

enum Entry {
    Send {
        req: ffi::MPI_Request,
        msg: AlignedVec,
        give: Option<PodVec>,
    },
    Recv {
        m: Matcher,
        want: Want,
        buf: Option<PodVec>,
    },
    Done(Done),
    /// A send whose handle was dropped: finished in the background, still owning what
    /// it reads (`msg`, or `give` read in place).
    Orphan {
        req: ffi::MPI_Request,
        msg: AlignedVec,
        give: Option<PodVec>,
    },
}

/// The requests of one communicator, by id.
#[derive(Default)]
pub(crate) struct Table {
    entries: Vec<(u64, Entry)>,
    next: u64,
}

impl Table {
    fn push(&mut self, e: Entry) -> u64 {
        self.next += 1;
        self.entries.push((self.next, e));
        self.next
    }

    fn find(&mut self, id: u64) -> Option<&mut Entry> {
        self.entries
            .iter_mut()
            .find(|(i, _)| *i == id)
            .map(|(_, e)| e)
    }

    fn remove(&mut self, id: u64) -> Option<Entry> {
        let i = self.entries.iter().position(|(x, _)| *x == id)?;
        Some(self.entries.remove(i).1)
    }

    pub(crate) fn add_send(
        &mut self,
        req: ffi::MPI_Request,
        msg: AlignedVec,
        give: Option<PodVec>,
    ) -> u64 {
        // Finished orphans go first, so the table stays as short as what is in flight.
        self.entries.retain_mut(|(_, e)| match e {
            Entry::Orphan { req, .. } => !super::test_raw(req).unwrap_or(true),
            _ => true,
        });
        self.push(Entry::Send { req, msg, give })
    }

    pub(crate) fn add_recv(&mut self, m: Matcher, want: Want, buf: Option<PodVec>) -> u64 {
        self.push(Entry::Recv { m, want, buf })
    }

    pub(crate) fn has_pending_recv(&self) -> bool {
        self.entries
            .iter()
            .any(|(_, e)| matches!(e, Entry::Recv { .. }))
    }

    pub(crate) fn pending_recvs(&self) -> Vec<u64> {
        self.entries
            .iter()
            .filter(|(_, e)| matches!(e, Entry::Recv { .. }))
            .map(|(i, _)| *i)
            .collect()
    }

    pub(crate) fn recv_args(&self, id: u64) -> Option<(Matcher, Want)> {
        self.entries.iter().find_map(|(i, e)| match e {
            Entry::Recv { m, want, .. } if *i == id => Some((*m, *want)),
            _ => None,
        })
    }

    /// The earliest-posted pending receive that a message from world rank `src` with
    /// `tag` matches, with what it wants.
    pub(crate) fn first_match(&self, src: usize, tag: i32) -> Option<(u64, Want)> {
        self.entries.iter().find_map(|(i, e)| match e {
            Entry::Recv { m, want, .. }
                if m.src.is_none_or(|s| s == src) && m.tag.is_none_or(|t| t == tag) =>
            {
                Some((*i, *want))
            }
            _ => None,
        })
    }

    /// The buffer of pending receive `id`, if it has one.
    pub(crate) fn recv_buf(&mut self, id: u64) -> Option<&mut PodVec> {
        match self.find(id)? {
            Entry::Recv { buf, .. } => buf.as_mut(),
            _ => None,
        }
    }

    /// Completes receive `id`, whose message was written straight into its buffer.
    pub(crate) fn finish_recv_filled(&mut self, id: u64, env: Envelope) {
        let Some(e) = self.find(id) else { return };
        let Entry::Recv { buf: Some(b), .. } = e else {
            return;
        };
        let data = RecvData::Pod(std::mem::replace(b, PodVec::new(Vec::<u8>::new())));
        *e = Entry::Done(Done::Recv { env, data });
    }

    /// Completes receive `id` with the message it took, or with its error.
    pub(crate) fn finish_recv(&mut self, id: u64, got: Result<(Envelope, AlignedVec)>) {
        let Some(e) = self.find(id) else { return };
        let Entry::Recv { buf, .. } = e else { return };
        let done = match (got, buf.take()) {
            (Err(err), Some(b)) => {
                // The buffer goes back with the error only through `Failed`; keep it out
                // of the way (it is dropped with the entry).
                drop(b);
                Done::Failed(err)
            }
            (Err(err), None) => Done::Failed(err),
            (Ok((env, data)), Some(mut b)) => {
                b.bytes_mut()[..data.len()].copy_from_slice(&data);
                Done::Recv {
                    env,
                    data: RecvData::Pod(b),
                }
            }
            (Ok((env, data)), None) => Done::Recv {
                env,
                data: RecvData::Object(data),
            },
        };
        *e = Entry::Done(done);
    }

    /// The unfinished sends, for the environment to finish (the communicator is going).
    pub(crate) fn take_sends(&mut self) -> Vec<(ffi::MPI_Request, Box<dyn std::any::Any>)> {
        let mut out: Vec<(ffi::MPI_Request, Box<dyn std::any::Any>)> = Vec::new();
        for (_, e) in self.entries.drain(..) {
            match e {
                Entry::Send { req, msg, give } => out.push((req, Box::new((msg, give)))),
                Entry::Orphan { req, msg, give } => out.push((req, Box::new((msg, give)))),
                _ => {}
            }
        }
        out
    }

    /// Advances a send: `Done` once its request finished.
    fn poll_send(e: &mut Entry) -> Result<()> {
        if let Entry::Send { req, give, .. } = e {
            if super::test_raw(req)? {
                *e = Entry::Done(Done::Sent(give.take()));
            }
        }
        Ok(())
    }
}

/// What a [`crate::Request`] on the MPI backend holds.
#[derive(Clone)]
pub(crate) struct Handle(pub(crate) Weak<Comm>);

fn gone() -> Error {
    Error::Usage(
        "request used after its communicator and this rank's MPI environment were \
         dropped; wait on requests before dropping them"
            .into(),
    )
}

impl Handle {
    fn comm(&self) -> Result<Rc<Comm>> {
        self.0.upgrade().ok_or_else(gone)
    }

    /// `Some(done)` once request `id` has finished, taking its result.
    pub(crate) fn test(&self, id: u64) -> Result<Option<Done>> {
        let c = self.comm()?;
        if !self.is_done(id)? {
            return Ok(None);
        }
        match c.reqs.borrow_mut().remove(id) {
            Some(Entry::Done(d)) => Ok(Some(d)),
            _ => Err(gone()),
        }
    }

    /// Whether request `id` has finished (progressing it once).
    pub(crate) fn is_done(&self, id: u64) -> Result<bool> {
        let c = self.comm()?;
        c.progress_pending()?;
        let mut t = c.reqs.borrow_mut();
        let Some(e) = t.find(id) else {
            return Err(gone());
        };
        Table::poll_send(e)?;
        Ok(matches!(e, Entry::Done(_)))
    }

    /// Blocks until request `id` finishes and takes its result.
    pub(crate) fn wait(&self, id: u64) -> Result<Done> {
        let c = self.comm()?;
        // A send: wait in MPI. A receive: take its message, blocking.
        let send = {
            let mut t = c.reqs.borrow_mut();
            match t.find(id) {
                Some(Entry::Send { req, .. }) => Some(*req),
                Some(_) => None,
                None => return Err(gone()),
            }
        };
        if let Some(mut r) = send {
            super::wait_raw(&mut r)?;
            let mut t = c.reqs.borrow_mut();
            if let Some(Entry::Send { req, give, .. }) = t.find(id) {
                *req = r;
                let g = give.take();
                *t.find(id).expect("found") = Entry::Done(Done::Sent(g));
            }
        } else {
            // A receive: try every pending one in posting order (this one among them)
            // until this one has its message; a blocking receive here could take a
            // message for this request after the pass had already matched it.
            while c.reqs.borrow().recv_args(id).is_some() {
                c.progress_pending()?;
            }
        }
        match c.reqs.borrow_mut().remove(id) {
            Some(Entry::Done(d)) => Ok(d),
            _ => Err(gone()),
        }
    }

    /// Looks at request `id`'s result without taking it.
    pub(crate) fn peek<R>(&self, id: u64, f: impl FnOnce(&Done) -> R) -> Result<Option<R>> {
        if !self.is_done(id)? {
            return Ok(None);
        }
        let c = self.comm()?;
        let mut t = c.reqs.borrow_mut();
        Ok(match t.find(id) {
            Some(Entry::Done(d)) => Some(f(d)),
            _ => None,
        })
    }

    /// Cancels a receive that has not matched (`MPI_Cancel`); sends are not cancelled.
    pub(crate) fn cancel(&self, id: u64) -> Result<bool> {
        let c = self.comm()?;
        let mut t = c.reqs.borrow_mut();
        let Some(e) = t.find(id) else {
            return Err(gone());
        };
        if let Entry::Recv { buf, .. } = e {
            *e = Entry::Done(Done::Cancelled(buf.take()));
            return Ok(true);
        }
        Ok(false)
    }

    /// The handle is gone: a receive is cancelled, a send finishes in the background.
    pub(crate) fn forget(&self, id: u64) {
        let Some(c) = self.0.upgrade() else { return };
        let Ok(mut t) = c.reqs.try_borrow_mut() else {
            return;
        };
        match t.remove(id) {
            Some(Entry::Send { req, msg, give }) | Some(Entry::Orphan { req, msg, give }) => {
                t.push(Entry::Orphan { req, msg, give });
            }
            _ => {}
        }
    }
}

impl Comm {
    /// Makes sure MPI no longer writes the buffer of request `id` (a scoped request at
    /// its scope's end; see `Engine::settle`). A scoped send's buffer is a borrowed view,
    /// which is copied into the message as it starts, so only a receive that has not matched
    /// yet holds one: with `wait` it is progressed until it has its message, else (or
    /// when that fails) it is withdrawn.
    pub(crate) fn settle(&self, id: u64, wait: bool) -> Result<()> {
        let mut r = Ok(());
        if wait {
            while self.reqs.borrow().recv_args(id).is_some() {
                if let Err(e) = self.progress_pending() {
                    r = Err(e);
                    break;
                }
            }
        }
        let mut t = self.reqs.borrow_mut();
        if t.recv_args(id).is_some() {
            t.remove(id);
        }
        r
    }
}

// ---- the functions over many requests (see request.rs), on the MPI backend -----------

use crate::request::{AnyRequest, Request};

pub(crate) fn none_pending(call: &str) -> Error {
    Error::invalid(
        crate::error::ErrorClass::Request,
        format!("{call}: no request in the list is pending (all are spent)"),
    )
}

/// The index of the first completed request, `Err` if one failed to progress.
fn first_complete<T>(requests: &mut [Request<T>]) -> Result<(Option<usize>, bool)> {
    let mut any = false;
    for (i, r) in requests.iter_mut().enumerate() {
        match r.mpi_state() {
            Some(Ok(true)) => return Ok((Some(i), true)),
            Some(Ok(false)) => any = true,
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    Ok((None, any))
}

pub(crate) fn test_any<T>(requests: &mut Vec<Request<T>>) -> Result<Option<(usize, T)>> {
    match first_complete(requests)? {
        (Some(i), _) => {
            let r = requests.remove(i);
            r.wait().map(|v| Some((i, v)))
        }
        (None, _) => Ok(None),
    }
}

pub(crate) fn wait_any<T>(requests: &mut Vec<Request<T>>) -> Result<(usize, T)> {
    loop {
        match first_complete(requests)? {
            (Some(i), _) => {
                let r = requests.remove(i);
                return r.wait().map(|v| (i, v));
            }
            (None, false) => return Err(none_pending("wait_any")),
            (None, true) => {}
        }
    }
}

pub(crate) fn test_some<T>(requests: &mut Vec<Request<T>>) -> Result<Vec<(usize, Result<T>)>> {
    let mut done = Vec::new();
    for (i, r) in requests.iter_mut().enumerate() {
        if let Some(Ok(true)) = r.mpi_state() {
            done.push(i);
        }
    }
    let mut out = Vec::new();
    for (k, i) in done.into_iter().enumerate() {
        let r = requests.remove(i - k);
        out.push((i, r.wait()));
    }
    Ok(out)
}

pub(crate) fn wait_some<T>(requests: &mut Vec<Request<T>>) -> Result<Vec<(usize, Result<T>)>> {
    loop {
        let out = test_some(requests)?;
        if !out.is_empty() {
            return Ok(out);
        }
        if !first_complete(requests)?.1 {
            return Ok(out);
        }
    }
}

pub(crate) fn test_all<T>(requests: &mut Vec<Request<T>>) -> Result<Option<Vec<T>>> {
    for r in requests.iter_mut() {
        if let Some(Ok(false)) | Some(Err(_)) = r.mpi_state() {
            return Ok(None);
        }
    }
    crate::request::wait_all(std::mem::take(requests)).map(Some)
}

/// `wait_any_of`/`test_any_of` over a list holding requests of the MPI backend
/// (`None` when it holds none: the shared segment's functions run).
pub(crate) fn any_of(
    requests: &mut [&mut dyn AnyRequest],
    block: bool,
) -> Result<Option<Option<usize>>> {
    let mut mpi = false;
    loop {
        let mut pending = false;
        for (i, r) in requests.iter_mut().enumerate() {
            match r.mpi_state() {
                Some(Ok(true)) => return Ok(Some(Some(i))),
                Some(Ok(false)) => {
                    mpi = true;
                    pending = true;
                }
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        if !mpi {
            return Ok(None);
        }
        if !block || !pending {
            return Ok(Some(None));
        }
    }
}
