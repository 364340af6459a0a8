//! Non-blocking requests over MPI: a table per communicator that keeps each raw
//! `MPI_Request` with the buffer it reads or writes.
//!
//! A non-blocking receive is posted in MPI at once (`MPI_Irecv` of the message's first
//! part into a stage of its own), so MPI matches it in posting order with every other
//! receive. When that part is in, the request takes its next step: a small message is
//! checked and copied into the receive's buffer; a large one's payload receive is
//! posted, straight into the buffer (or taken from the payloads received early, see
//! `Comm::prefetch`). Because a sender may wait for that second post, every call that
//! waits (a blocking receive, probe or send, a request's wait) tests the posted
//! receives meanwhile instead of blocking in MPI.
//!
//! A request handle ([`crate::Request`]) names its entry by id and holds the
//! communicator weakly. Dropping a handle withdraws a posted receive (`MPI_Cancel`; a
//! message it had matched goes to the held queue, so it takes none) and leaves a send,
//! or a payload on its way, to finish; a communicator that is dropped hands its
//! unfinished operations to the environment, which waits for them before
//! `MPI_Finalize`. So no buffer MPI may still read or write is ever freed.

use std::rc::{Rc, Weak};

use ::mpi::ffi;
use rkyv::util::AlignedVec;

use super::p2p::{Arrived, Peer};
use super::{Comm, Orphan};
use crate::codec::PodVec;
use crate::completions::{Done, RecvData, slot_id, split};
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::matching::{Matcher, Want};

enum Entry {
    Send {
        req: ffi::MPI_Request,
        msg: AlignedVec,
        give: Option<PodVec>,
        to: Peer,
    },
    /// A receive posted in MPI (`MPI_Irecv`) for its message's first part, which lands
    /// in `stage`: MPI matches it, in posting order with every other receive.
    Recv {
        req: ffi::MPI_Request,
        stage: Box<[u8]>,
        want: Want,
        buf: Option<PodVec>,
        from: Peer,
    },
    /// A receive whose head has arrived and passed its check: the payload is on its way
    /// into `buf`, or into `vec` (an object, or no buffer).
    Payload {
        req: ffi::MPI_Request,
        env: Envelope,
        vec: AlignedVec,
        buf: Option<PodVec>,
    },
    Done(Done),
    /// A send whose handle was dropped: finished in the background, still owning what
    /// it reads (`msg`, or `give` read in place); or, `recv`, a payload on its way in.
    Orphan {
        req: ffi::MPI_Request,
        msg: AlignedVec,
        give: Option<PodVec>,
        recv: bool,
    },
}

/// The requests of one communicator: a slot table, so that finding a request is an
/// index and a comparison (a window of 64 requests searched by id cost every wait a
/// scan of the table). A request's id is its slot's index in the low 32 bits and the
/// slot's generation in the high 32, bumped at each reuse, so a stale id finds nothing.
#[derive(Default)]
pub(crate) struct Table {
    slots: Vec<(u32, Option<Entry>)>,
    free: Vec<u32>,
    orphans: usize,
    /// How many entries are `Entry::Recv` (posted in MPI, head not in): every wait on a
    /// send asks, and a scan of a window of 64 sends per wait cost ~400 instructions.
    recvs: usize,
    /// Small messages of finished sends, their capacity kept for the next ones (an
    /// allocation and a free per message cost ~350 instructions).
    spare: Vec<AlignedVec>,
}

/// Whether `e` counts in `Table::recvs`.
fn is_recv(e: &Entry) -> bool {
    matches!(e, Entry::Recv { .. })
}

/// What `e` adds to `Table::orphans` and `Table::recvs`.
fn tallies(e: &Entry) -> (usize, usize) {
    (
        usize::from(matches!(e, Entry::Orphan { .. })),
        usize::from(is_recv(e)),
    )
}

/// The largest message buffer kept for reuse (a small message with its trailer fits;
/// a large one is not kept, so a communicator holds at most 512 KiB), and how many.
const SPARE_BYTES: usize = 8 << 10;
const SPARE_MAX: usize = 64;

impl Table {
    /// The rank request `id` waits for: a receive's source, a send's destination.
    pub(super) fn peer_of(&mut self, id: u64) -> Peer {
        match self.find(id) {
            Some(Entry::Recv { from: p, .. } | Entry::Send { to: p, .. }) => *p,
            _ => Peer::Nothing,
        }
    }

    /// Counts an entry's tallies (`tallies`) in or out of the table's.
    fn count(&mut self, (o, r): (usize, usize), in_table: bool) {
        if in_table {
            (self.orphans, self.recvs) = (self.orphans + o, self.recvs + r);
        } else {
            (self.orphans, self.recvs) = (self.orphans - o, self.recvs - r);
        }
    }

    fn push(&mut self, e: Entry) -> u64 {
        self.count(tallies(&e), true);
        let idx = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                self.slots.push((0, None));
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[idx];
        // Generation 0 is never handed out, so no id is 0.
        slot.0 = slot.0.wrapping_add(1).max(1);
        slot.1 = Some(e);
        slot_id(idx, slot.0)
    }

    fn find(&mut self, id: u64) -> Option<&mut Entry> {
        find_in(&mut self.slots, id)
    }

    fn remove(&mut self, id: u64) -> Option<Entry> {
        let (idx, generation) = split(id);
        let slot = self.slots.get_mut(idx)?;
        if slot.0 != generation {
            return None;
        }
        let e = slot.1.take()?;
        self.free.push(idx as u32);
        self.count(tallies(&e), false);
        Some(e)
    }

    /// Drops request `id`'s entry where it is, not moved out as by `remove`.
    fn discard(&mut self, id: u64) {
        let (idx, generation) = split(id);
        let Some((g, Some(e))) = self.slots.get_mut(idx) else {
            return;
        };
        if *g != generation {
            return;
        }
        let t = tallies(e);
        self.slots[idx].1 = None;
        self.count(t, false);
        self.free.push(idx as u32);
    }

    /// Puts `e` back as request `id`'s entry, which [`remove`](Self::remove) took out
    /// with nothing pushed since (the slot is still free, under the same generation).
    fn restore(&mut self, id: u64, e: Entry) {
        let (idx, generation) = split(id);
        debug_assert!(self.slots[idx].0 == generation && self.slots[idx].1.is_none());
        self.count(tallies(&e), true);
        self.slots[idx].1 = Some(e);
        // `remove` pushed the slot last onto the free list.
        if let Some(at) = self.free.iter().rposition(|&i| i as usize == idx) {
            self.free.swap_remove(at);
        }
    }

    /// Puts `e` in the place of request `id`'s entry and returns that entry.
    fn replace(&mut self, id: u64, e: Entry) -> Option<Entry> {
        let new = tallies(&e);
        let old = std::mem::replace(self.find(id)?, e);
        self.count(new, true);
        self.count(tallies(&old), false);
        Some(old)
    }

    /// A buffer for a small message: `data` followed by its trailer (`type_id` and the
    /// magic word), in the capacity of a finished one where there is one.
    pub(crate) fn message(&mut self, data: &[u8], type_id: u64) -> AlignedVec {
        let mut v = self.spare.pop().unwrap_or_default();
        v.clear();
        v.reserve(data.len() + super::p2p::TRAILER);
        v.extend_from_slice(data);
        super::p2p::with_trailer(v, type_id)
    }

    /// Keeps a finished send's message for the next one.
    pub(crate) fn recycle(&mut self, msg: AlignedVec) {
        keep_spare(msg, &mut self.spare);
    }

    /// Send `id`, whose request finished, becomes its result.
    fn finish_send(&mut self, id: u64) {
        if let Some(e) = find_in(&mut self.slots, id) {
            finish_send(e, &mut self.spare);
        }
    }

    /// The ids of the entries, in slot order.
    fn ids(&self) -> impl Iterator<Item = (u64, &Entry)> {
        (self.slots.iter().enumerate())
            .filter_map(|(i, (g, e))| e.as_ref().map(|e| (slot_id(i, *g), e)))
    }

    pub(crate) fn add_send(
        &mut self,
        req: ffi::MPI_Request,
        msg: AlignedVec,
        give: Option<PodVec>,
        to: Peer,
    ) -> u64 {
        // Finished orphans go first, so the table stays as short as what is in flight.
        if self.orphans > 0 {
            let done: Vec<u64> = (self.slots.iter_mut().enumerate())
                .filter_map(|(i, (g, e))| match e {
                    Some(Entry::Orphan { req, .. }) => super::test_raw(req)
                        .unwrap_or(true)
                        .then_some(slot_id(i, *g)),
                    _ => None,
                })
                .collect();
            for id in done {
                self.remove(id);
            }
        }
        self.push(Entry::Send { req, msg, give, to })
    }

    /// A send with no handle, finished in the background (a large synchronous send's
    /// copied payload): it goes with the next send's purge, or with the communicator.
    pub(crate) fn add_orphan(&mut self, req: ffi::MPI_Request, msg: AlignedVec) {
        self.push(Entry::Orphan {
            req,
            msg,
            give: None,
            recv: false,
        });
    }

    /// The first receive at or after slot `from` still posted in MPI or waiting for its
    /// payload: its slot and id (a walk that allocates nothing).
    fn pending_recv_from(&self, from: usize) -> Option<(usize, u64)> {
        (self.slots.iter().enumerate().skip(from)).find_map(|(i, (g, e))| match e {
            Some(Entry::Recv { .. } | Entry::Payload { .. }) => Some((i, slot_id(i, *g))),
            _ => None,
        })
    }

    fn pending_recvs(&self) -> Vec<u64> {
        (self.ids())
            .filter(|(_, e)| matches!(e, Entry::Recv { .. } | Entry::Payload { .. }))
            .map(|(i, _)| i)
            .collect()
    }

    fn set(&mut self, id: u64, e: Entry) {
        self.replace(id, e);
    }

    /// The unfinished sends and orphaned payloads, for the environment to finish (the
    /// communicator is going).
    pub(crate) fn take_sends(&mut self) -> Vec<super::Adopted> {
        let mut out: Vec<super::Adopted> = Vec::new();
        self.orphans = 0;
        self.recvs = 0;
        self.free.clear();
        for e in self.slots.drain(..).filter_map(|(_, e)| e) {
            match e {
                Entry::Send { req, msg, give, .. } => {
                    out.push((req, Box::new((msg, give)), Orphan::Other));
                }
                Entry::Orphan {
                    req,
                    msg,
                    give,
                    recv,
                } => {
                    let kind = if recv { Orphan::Recv } else { Orphan::Other };
                    out.push((req, Box::new((msg, give)), kind));
                }
                _ => {}
            }
        }
        out
    }

    /// Advances send `id`: `Done` once its request finished.
    fn poll_send(&mut self, id: u64) -> Result<()> {
        if let Some(e) = find_in(&mut self.slots, id) {
            if let Entry::Send { req, .. } = e {
                if super::test_raw(req)? {
                    finish_send(e, &mut self.spare);
                }
            }
        }
        Ok(())
    }
}

/// The entry of request `id` in `slots` if `id` names its current owner.
fn find_in(slots: &mut [(u32, Option<Entry>)], id: u64) -> Option<&mut Entry> {
    let (idx, generation) = split(id);
    match slots.get_mut(idx)? {
        (g, Some(e)) if *g == generation => Some(e),
        _ => None,
    }
}

/// A send's entry whose request finished becomes its result; its message's buffer is
/// kept in `spare` for the next send.
fn finish_send(e: &mut Entry, spare: &mut Vec<AlignedVec>) {
    let Entry::Send { give, .. } = e else { return };
    let g = give.take();
    if let Entry::Send { msg, .. } = std::mem::replace(e, Entry::Done(Done::Sent(g))) {
        keep_spare(msg, spare);
    }
}

/// Whether `e` is a send that reads a borrowed view in place (a scoped large send).
fn reads_view(e: &Entry) -> bool {
    matches!(e, Entry::Send { give: Some(g), .. } if g.is_view())
}

/// Keeps a small message's buffer in `spare` for the next send.
fn keep_spare(msg: AlignedVec, spare: &mut Vec<AlignedVec>) {
    if (1..=SPARE_BYTES).contains(&msg.capacity()) && spare.len() < SPARE_MAX {
        spare.push(msg);
    }
}

/// The result of a receive that took `got`, with its buffer `buf` handed back filled.
fn done_of(got: Result<(Envelope, AlignedVec)>, buf: Option<PodVec>) -> Done {
    match (got, buf) {
        // The buffer goes back with the error only through `Failed`: it is dropped.
        (Err(err), _) => Done::Failed(err),
        (Ok((env, data)), Some(b)) if b.bytes().len() >= data.len() => filled(env, &data, b),
        (Ok((env, data)), _) => Done::Recv {
            env,
            data: RecvData::Object(data),
        },
    }
}

/// A receive's result: `data` copied into its buffer `b`, which holds it.
fn filled(env: Envelope, data: &[u8], mut b: PodVec) -> Done {
    b.bytes_mut()[..data.len()].copy_from_slice(data);
    Done::Recv {
        env,
        data: RecvData::Pod(b),
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
        c.progress_recv(id, false)?;
        let done = {
            let mut t = c.reqs.borrow_mut();
            if t.find(id).is_none() {
                return Err(gone());
            }
            t.poll_send(id)?;
            matches!(t.find(id), Some(Entry::Done(_)))
        };
        if !done {
            c.polled()?;
            c.tested(id)?;
        }
        Ok(done)
    }

    /// Blocks until request `id` finishes and takes its result.
    pub(crate) fn wait(&self, id: u64) -> Result<Done> {
        let c = self.comm()?;
        // A send: wait in MPI. A receive: take its message, blocking.
        let send = {
            let mut t = c.reqs.borrow_mut();
            match t.find(id) {
                Some(Entry::Send { req, to, .. }) => Some((*req, *to)),
                Some(_) => None,
                None => return Err(gone()),
            }
        };
        let Some((mut r, to)) = send else {
            return c.wait_recv(id);
        };
        c.wait_req(&mut r, to)?;
        let mut t = c.reqs.borrow_mut();
        if let Some(Entry::Send { req, .. }) = t.find(id) {
            *req = r;
            t.finish_send(id);
        }
        match t.remove(id) {
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
        let Entry::Recv { req, .. } = e else {
            return Ok(false);
        };
        let (st, cancelled) = cancel_raw(req)?;
        let old = t
            .replace(id, Entry::Done(Done::Cancelled(None)))
            .expect("found above");
        drop(t);
        let Entry::Recv {
            stage, want, buf, ..
        } = old
        else {
            unreachable!("matched above")
        };
        if cancelled {
            c.give_stage(stage);
            c.reqs
                .borrow_mut()
                .set(id, Entry::Done(Done::Cancelled(buf)));
            return Ok(true);
        }
        // It had matched a message: it completes with it, as MPI's cancel then fails.
        let next = c.head_arrived(&st, stage, want, buf);
        c.reqs.borrow_mut().set(id, next);
        Ok(false)
    }

    /// The handle is gone: a receive is cancelled, a send finishes in the background.
    pub(crate) fn forget(&self, id: u64) {
        let Some(c) = self.0.upgrade() else { return };
        let Ok(mut t) = c.reqs.try_borrow_mut() else {
            return;
        };
        match t.remove(id) {
            // A scoped send that reads its borrowed slice stays under its id, for its
            // scope's end to wait for (`settle`).
            Some(e) if reads_view(&e) => t.restore(id, e),
            Some(Entry::Send { req, msg, give, .. }) => {
                t.push(Entry::Orphan {
                    req,
                    msg,
                    give,
                    recv: false,
                });
            }
            Some(e @ Entry::Orphan { .. }) => {
                t.push(e);
            }
            // MPI still writes the buffers: they finish in the background.
            Some(Entry::Payload { req, vec, buf, .. }) => {
                t.push(Entry::Orphan {
                    req,
                    msg: vec,
                    give: buf,
                    recv: true,
                });
            }
            Some(Entry::Recv { mut req, stage, .. }) => {
                drop(t);
                c.withdraw(&mut req, stage);
            }
            _ => {}
        }
    }
}

impl Comm {
    /// Makes sure MPI no longer reads or writes the buffer of request `id` (a scoped
    /// request at its scope's end; see `Engine::settle`). A send is left to
    /// `settle_send`. A receive with `wait` is progressed until done; else (or when
    /// that fails) a receive still posted is withdrawn, and a payload already on its
    /// way into the buffer is waited for.
    pub(crate) fn settle(&self, id: u64, wait: bool) -> Result<()> {
        // Most of a scope's requests were waited for and are gone.
        let send = match self.reqs.borrow_mut().find(id).map(|e| &*e) {
            Some(Entry::Recv { .. } | Entry::Payload { .. }) => None,
            Some(e @ Entry::Send { req, to, .. }) => Some((*req, *to, reads_view(e))),
            _ => return Ok(()),
        };
        if let Some((req, to, in_place)) = send {
            return self.settle_send(id, req, to, in_place);
        }
        let mut r = Ok(());
        if wait {
            r = self.progress_recv(id, true);
        }
        let old = {
            let mut t = self.reqs.borrow_mut();
            match t.find(id) {
                Some(Entry::Recv { .. } | Entry::Payload { .. }) => t.remove(id),
                _ => None,
            }
        };
        match old {
            Some(Entry::Recv { mut req, stage, .. }) => self.withdraw(&mut req, stage),
            // A payload on its way writes the caller's buffer: it is waited for.
            Some(Entry::Payload { mut req, .. }) => {
                if let Err(e) = super::wait_raw(&mut req) {
                    r = r.and(Err(e));
                }
            }
            _ => {}
        }
        r
    }

    /// A scoped send its program did not wait for. One that reads its borrowed slice in
    /// place (a large one) is waited for, as a blocking send waits (its receiver takes
    /// the payload in any of its waits); a rank that panics meanwhile ends the job
    /// instead, as a panic does on this backend, since returning would free memory MPI
    /// may still read, and so does an MPI error in the wait. Any other (its message is
    /// a copy) finishes in the background.
    fn settle_send(
        &self,
        id: u64,
        mut req: ffi::MPI_Request,
        to: Peer,
        in_place: bool,
    ) -> Result<()> {
        if !in_place {
            let mut t = self.reqs.borrow_mut();
            if let Some(Entry::Send { req, msg, give, .. }) = t.remove(id) {
                t.push(Entry::Orphan {
                    req,
                    msg,
                    give,
                    recv: false,
                });
            }
            return Ok(());
        }
        let done = super::test_raw(&mut req).unwrap_or(false);
        if !done {
            let fatal = |why: &str| -> ! {
                eprintln!(
                    "shmpi: {why} while a scope's large send still reads its buffer; \
                     aborting the MPI job (MPI_Abort)"
                );
                // SAFETY: a valid communicator; MPI_Abort ends the process.
                unsafe { ffi::MPI_Abort(self.raw, 101) };
                std::process::abort()
            };
            if std::thread::panicking() {
                fatal("this rank panicked");
            }
            match self.wait_req(&mut req, to) {
                Ok(()) => {}
                // Its receiver has left, so no receive will ever match the payload and
                // MPI reads no more of the slice: the request is left to MPI.
                Err(e @ Error::PeerFailed { .. }) => {
                    self.reqs.borrow_mut().discard(id);
                    return Err(e);
                }
                Err(e) => fatal(&format!("waiting failed ({e})")),
            }
        }
        // The request has finished (`req` is the table's handle, now spent): the entry
        // goes without another test.
        self.reqs.borrow_mut().discard(id);
        Ok(())
    }

    /// Withdraws a posted receive whose request is going (`MPI_Cancel`): if it had
    /// matched a message already, the message goes, whole, to the held queue, so a
    /// withdrawn receive takes no message.
    fn withdraw(&self, req: &mut ffi::MPI_Request, stage: Box<[u8]>) {
        if let Ok((st, false)) = cancel_raw(req) {
            let _ = self.hold_arrived(&st, &stage);
        }
        self.give_stage(stage);
    }

    /// Every posted receive withdrawn, every payload on its way handed to the
    /// environment (the communicator is going).
    pub(crate) fn drop_recvs(&self) {
        let ids = self.reqs.borrow().pending_recvs();
        for id in ids {
            let old = self.reqs.borrow_mut().remove(id);
            match old {
                Some(Entry::Recv { mut req, stage, .. }) => self.withdraw(&mut req, stage),
                Some(Entry::Payload { req, vec, buf, .. }) => {
                    self.env.adopt(req, Box::new((vec, buf)), Orphan::Recv);
                }
                _ => {}
            }
        }
    }

    /// Posts a non-blocking receive: a held message it matches is older than anything
    /// MPI holds and completes it at once; otherwise `MPI_Irecv` into a stage.
    pub(crate) fn irecv(&self, m: Matcher, want: Want, buf: Option<PodVec>) -> Result<u64> {
        let done = match self.take_held(&m, Some(&want)) {
            Ok(Some(got)) => done_of(Ok(got), buf),
            Err(e) => Done::Failed(e),
            Ok(None) => {
                let (req, stage, from) = self.post_head(&m)?;
                return Ok(self.reqs.borrow_mut().push(Entry::Recv {
                    req,
                    stage,
                    want,
                    buf,
                    from,
                }));
            }
        };
        Ok(self.reqs.borrow_mut().push(Entry::Done(done)))
    }

    /// The common end of a receive into a buffer: a small message in `stage` (status
    /// `st`) that the receive accepts, copied into `buf`; its envelope, or `None` (the
    /// general path then takes it, with its errors).
    #[inline]
    fn accept_small(
        &self,
        st: &ffi::MPI_Status,
        stage: &[u8],
        want: &Want,
        buf: &mut PodVec,
    ) -> Option<Envelope> {
        let Ok((env, from, Arrived::Inline(len))) = self.parse(st, stage) else {
            return None;
        };
        if buf.bytes().len() < len || want.check(&env, from, String::new).is_err() {
            return None;
        }
        buf.bytes_mut()[..len].copy_from_slice(&stage[..len]);
        Some(env)
    }

    /// Whether a non-blocking receive is posted in MPI (its head not in yet).
    pub(crate) fn has_posted(&self) -> bool {
        let t = self.reqs.borrow();
        debug_assert_eq!(t.recvs, t.ids().filter(|(_, e)| is_recv(e)).count());
        t.recvs > 0
    }

    /// Tests every pending non-blocking receive once.
    pub(crate) fn progress_pending(&self) -> Result<()> {
        self.step_others(None)
    }

    /// Tests every pending receive but `except` once.
    fn step_others(&self, except: Option<u64>) -> Result<()> {
        let mut from = 0;
        loop {
            let Some((slot, id)) = self.reqs.borrow().pending_recv_from(from) else {
                return Ok(());
            };
            from = slot + 1;
            if Some(id) != except {
                self.step(id)?;
            }
        }
    }

    /// Moves pending receive `id` on: tests its MPI request and takes the next step
    /// when it has finished; with `block`, until the receive is done.
    pub(crate) fn progress_recv(&self, id: u64, block: bool) -> Result<()> {
        if !block {
            return self.step(id).map(|_| ());
        }
        // Every pending receive moves on meanwhile, so a payload whose head is in is
        // posted soon, not after the receives before it have finished; only every 16th
        // turn, as each test is a progress pass of MPI's own (docs/cluster.md).
        let mut turn = 0u32;
        while self.step(id)? {
            turn = turn.wrapping_add(1);
            if turn % 16 == 0 {
                self.recv_turn(id, turn)?;
            }
        }
        Ok(())
    }

    /// Blocks until receive `id` is done and takes its result, as `progress_recv`
    /// then a removal would, but a result made in the wait leaves the table at once
    /// instead of being stored in the entry and taken out again.
    fn wait_recv(&self, id: u64) -> Result<Done> {
        let mut turn = 0u32;
        loop {
            if let Some(d) = self.step_take(id)? {
                return Ok(d);
            }
            turn = turn.wrapping_add(1);
            if turn % 16 == 0 {
                self.recv_turn(id, turn)?;
            }
        }
    }

    /// Every 16th turn of a wait on receive `id`: the other receives move on, early
    /// payloads are taken in, and a receive whose sender has left fails.
    fn recv_turn(&self, id: u64, turn: u32) -> Result<()> {
        let peer = match self.reqs.borrow_mut().find(id) {
            // What it waits for matters only once a rank has left.
            Some(Entry::Recv { from, .. }) if self.env.departures.any() => *from,
            _ => Peer::Nothing,
        };
        self.turns(turn, peer)?;
        self.step_others(Some(id))?;
        self.prefetch()
    }

    /// [`step`](Self::step) for a wait: the result of receive `id` once it has one,
    /// taken out of the table.
    fn step_take(&self, id: u64) -> Result<Option<Done>> {
        let mut t = self.reqs.borrow_mut();
        let st = match t.find(id) {
            Some(Entry::Recv {
                req,
                stage,
                want,
                buf,
                ..
            }) if buf.is_some() => {
                let Some(st) = status_raw(req, false)? else {
                    return Ok(None);
                };
                // The common case in place, where the entry is large to move: a small
                // message the receive accepts goes from the stage into its buffer, and
                // the entry leaves the table with only its buffer and stage taken out.
                if let Some(env) = buf
                    .as_mut()
                    .and_then(|b| self.accept_small(&st, stage, want, b))
                {
                    let stage = std::mem::take(stage);
                    let b = buf.take().expect("matched above");
                    t.discard(id);
                    drop(t);
                    self.give_stage(stage);
                    return Ok(Some(Done::Recv {
                        env,
                        data: RecvData::Pod(b),
                    }));
                }
                st
            }
            Some(Entry::Recv { req, .. } | Entry::Payload { req, .. }) => {
                match status_raw(req, false)? {
                    Some(st) => st,
                    None => return Ok(None),
                }
            }
            Some(Entry::Done(_)) => match t.remove(id) {
                Some(Entry::Done(d)) => return Ok(Some(d)),
                _ => unreachable!("matched above"),
            },
            _ => return Err(gone()),
        };
        // Out of the table in one move: a result goes to the caller, a payload still on
        // its way goes back under the same id.
        let old = t.remove(id).expect("found above");
        drop(t);
        let next = self.next_of(old, &st);
        if let Entry::Done(d) = next {
            return Ok(Some(d));
        }
        self.reqs.borrow_mut().restore(id, next);
        Ok(None)
    }

    /// The next state of receive entry `old`, whose MPI request finished with status
    /// `st`.
    fn next_of(&self, old: Entry, st: &ffi::MPI_Status) -> Entry {
        match old {
            Entry::Recv {
                stage, want, buf, ..
            } => self.head_arrived(st, stage, want, buf),
            Entry::Payload { env, vec, buf, .. } => self.payload_arrived(st, env, vec, buf),
            _ => unreachable!("the caller found a receive"),
        }
    }

    /// The next state of receive `id`, whose MPI request finished with status `st`:
    /// its entry taken out of table `t` (a placeholder in its place) and moved on.
    fn advance(&self, mut t: std::cell::RefMut<'_, Table>, id: u64, st: &ffi::MPI_Status) -> Entry {
        let old = t
            .replace(id, Entry::Done(Done::Cancelled(None)))
            .expect("the caller found the receive");
        drop(t);
        self.next_of(old, st)
    }

    /// Tests pending receive `id` once, taking its next step if its MPI request has
    /// finished: whether it is still pending.
    fn step(&self, id: u64) -> Result<bool> {
        let mut t = self.reqs.borrow_mut();
        let Some(e) = t.find(id) else {
            return Ok(false);
        };
        let st = match e {
            Entry::Recv { req, .. } | Entry::Payload { req, .. } => match status_raw(req, false)? {
                Some(st) => st,
                None => return Ok(true),
            },
            _ => return Ok(false),
        };
        let next = self.advance(t, id, &st);
        let more = matches!(next, Entry::Payload { .. });
        self.reqs.borrow_mut().set(id, next);
        Ok(more)
    }

    /// The next state of a receive whose first part arrived in `stage`.
    fn head_arrived(
        &self,
        st: &ffi::MPI_Status,
        stage: Box<[u8]>,
        want: Want,
        buf: Option<PodVec>,
    ) -> Entry {
        let next = self.head_next(st, &stage, want, buf);
        self.give_stage(stage);
        next.unwrap_or_else(|e| Entry::Done(Done::Failed(e)))
    }

    fn head_next(
        &self,
        st: &ffi::MPI_Status,
        stage: &[u8],
        want: Want,
        buf: Option<PodVec>,
    ) -> Result<Entry> {
        let (env, from, arrived) = self.parse(st, stage)?;
        if want.check(&env, from, String::new).is_err() {
            // Refused: the message stays queued, whole, at the held queue's back.
            let data = self.payload(from, arrived, stage)?;
            let e = self.check(&want, &env, &data).err();
            self.held.borrow_mut().push_back((env, data));
            let e = e.unwrap_or_else(|| Error::Corrupted("a check changed its answer".into()));
            return Ok(Entry::Done(Done::Failed(e)));
        }
        let Arrived::Large { len, seq } = arrived else {
            return Ok(Entry::Done(match buf {
                // Straight from the stage into the receive's buffer, which the check
                // says holds it.
                Some(b) if b.bytes().len() >= env.len => filled(env, &stage[..env.len], b),
                buf => done_of(Ok((env, self.payload(from, arrived, stage)?)), buf),
            }));
        };
        if let Some(v) = self.take_prefetched(from, seq, len)? {
            return Ok(Entry::Done(done_of(Ok((env, v)), buf)));
        }
        // The payload goes straight into the receive's buffer when it has one, and
        // no other process may write it (cells the program may read meanwhile are
        // filled from a vector of their own, in this thread).
        match buf {
            Some(mut b) if b.bytes().len() >= len && !b.is_shared() => {
                // SAFETY: `b` holds `len` writable bytes and stays in the table, its
                // bytes unmoved, until the request finishes.
                let req =
                    unsafe { self.start_payload(from, seq, b.bytes_mut().as_mut_ptr(), len)? };
                Ok(Entry::Payload {
                    req,
                    env,
                    vec: AlignedVec::new(),
                    buf: Some(b),
                })
            }
            buf => {
                let mut vec = AlignedVec::with_capacity(len);
                // SAFETY: `vec` has room for `len` bytes and stays in the table, its
                // heap buffer unmoved, until the request finishes.
                let req = unsafe { self.start_payload(from, seq, vec.as_mut_ptr(), len)? };
                Ok(Entry::Payload { req, env, vec, buf })
            }
        }
    }

    /// The result of a receive whose payload arrived.
    fn payload_arrived(
        &self,
        st: &ffi::MPI_Status,
        env: Envelope,
        mut vec: AlignedVec,
        buf: Option<PodVec>,
    ) -> Entry {
        if let Err(e) = super::p2p::payload_count(st, env.len) {
            return Entry::Done(Done::Failed(e));
        }
        Entry::Done(match buf {
            Some(b) if vec.capacity() < env.len => Done::Recv {
                env,
                data: RecvData::Pod(b),
            },
            buf => {
                // SAFETY: MPI wrote exactly `env.len` bytes into `vec` (checked above).
                unsafe { vec.set_len(env.len) };
                done_of(Ok((env, vec)), buf)
            }
        })
    }
}

/// `MPI_Test` (or `MPI_Wait`) with the status: `Some` once the request finished.
fn status_raw(r: &mut ffi::MPI_Request, block: bool) -> Result<Option<ffi::MPI_Status>> {
    // SAFETY: plain data written by the call.
    let mut st: ffi::MPI_Status = unsafe { std::mem::zeroed() };
    if block {
        // SAFETY: `r` is an active request.
        let rc = unsafe { ffi::MPI_Wait(r, &mut st) };
        super::check(rc, "MPI_Wait")?;
        return Ok(Some(st));
    }
    let mut flag: std::ffi::c_int = 0;
    // SAFETY: `r` is an active request.
    let rc = unsafe { ffi::MPI_Test(r, &mut flag, &mut st) };
    super::check(rc, "MPI_Test")?;
    Ok((flag != 0).then_some(st))
}

/// Cancels receive `r` and waits for it: its status and whether it was cancelled (it
/// was not if it had matched a message).
pub(super) fn cancel_raw(r: &mut ffi::MPI_Request) -> Result<(ffi::MPI_Status, bool)> {
    // SAFETY: `r` is an active receive; its buffer lives until after the wait.
    let rc = unsafe { ffi::MPI_Cancel(r) };
    // Waited for whatever the cancel returned, so that MPI writes no buffer after this.
    let st = status_raw(r, true)?.expect("a wait finishes");
    super::check(rc, "MPI_Cancel")?;
    let mut flag: std::ffi::c_int = 0;
    // SAFETY: a status from a finished request.
    let rc = unsafe { ffi::MPI_Test_cancelled(&st, &mut flag) };
    super::check(rc, "MPI_Test_cancelled")?;
    Ok((st, flag != 0))
}

// ---- the functions over many requests (see request.rs), on the MPI backend -----------

use crate::request::{AnyRequest, Request};

pub(crate) fn none_pending(call: &str) -> Error {
    Error::invalid(
        crate::error::ErrorClass::Request,
        format!("{call}: no request in the list is pending (all are spent)"),
    )
}

/// The states of a list's requests as a function over many reads them: a request
/// whose peer left can never finish, which fails the function only when no other
/// request of the list can (as the shared segment's `wait_any` does).
#[derive(Default)]
struct Tally {
    pending: bool,
    left: Option<Error>,
}

impl Tally {
    /// Counts one request's state: whether it has completed; `Err` if it failed to
    /// progress for another reason than a departed peer.
    fn add(&mut self, state: Option<Result<bool>>) -> Result<bool> {
        match state {
            Some(Ok(done)) => {
                self.pending |= !done;
                Ok(done)
            }
            Some(Err(e @ Error::PeerFailed { .. })) => {
                self.left.get_or_insert(e);
                Ok(false)
            }
            Some(Err(e)) => Err(e),
            None => Ok(false),
        }
    }

    /// The error of a list none of whose unfinished requests can finish.
    fn stuck(&mut self) -> Option<Error> {
        if self.pending { None } else { self.left.take() }
    }
}

/// The index of the first completed request, and whether any is pending; `Err` if
/// one failed to progress, or if every pending one waits for a rank that left.
fn first_complete<T>(requests: &mut [Request<T>]) -> Result<(Option<usize>, bool)> {
    let mut t = Tally::default();
    for (i, r) in requests.iter_mut().enumerate() {
        if t.add(r.mpi_state())? {
            return Ok((Some(i), true));
        }
    }
    match t.stuck() {
        Some(e) => Err(e),
        None => Ok((None, t.pending)),
    }
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
    let mut t = Tally::default();
    for (i, r) in requests.iter_mut().enumerate() {
        // A request that failed to progress otherwise is left for its wait to report.
        if let Ok(true) = t.add(r.mpi_state()) {
            done.push(i);
        }
    }
    // None finished and none can any more: fail as `wait_some` would.
    if done.is_empty() {
        if let Some(e) = t.stuck() {
            return Err(e);
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
        match r.mpi_state() {
            // One that can never complete: neither can the list (as `wait_all` fails).
            Some(Err(e @ Error::PeerFailed { .. })) => return Err(e),
            Some(Ok(false) | Err(_)) => return Ok(None),
            Some(Ok(true)) | None => {}
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
        let mut t = Tally::default();
        for (i, r) in requests.iter_mut().enumerate() {
            let state = r.mpi_state();
            mpi |= state.is_some();
            if t.add(state)? {
                return Ok(Some(Some(i)));
            }
        }
        if let Some(e) = t.stuck() {
            return Err(e);
        }
        if !mpi {
            return Ok(None);
        }
        if !block || !t.pending {
            return Ok(Some(None));
        }
    }
}
