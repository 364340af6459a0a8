//! Point-to-point messages over MPI: the wire format, the held queue, blocking and
//! non-blocking sends and receives (see the module above for the rules).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::{c_int, c_void};
use std::rc::Rc;

use ::mpi::ffi;
use rkyv::util::AlignedVec;

use super::req::Table;
use super::{Env, check};
use crate::codec::{self, PodVec};
use crate::comm::Status;
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::matching::{Group, Matcher, Want};

/// Bytes after a small message's payload: the type fingerprint and a magic word. Plain
/// data travels without one where it can ([`bare`]).
pub(crate) const TRAILER: usize = 16;
const MAGIC: u64 = 0x7368_6d70_695f_6d31; // "shmpi_m1"
/// A large message's head: the type fingerprint, the payload's length, the payload's
/// tag on the payload communicator, and a magic word of its own.
const HEAD: usize = 32;
const MAGIC_HEAD: u64 = 0x7368_6d70_695f_6831; // "shmpi_h1"
/// Payloads up to this many bytes travel inline, before their trailer, and go out with
/// `MPI_Send`, which returns at once for messages the library sends eagerly; larger
/// ones travel as a head and a payload of their own (see the module docs).
const EAGER: usize = 4096;
/// No message on a communicator is longer, so a receive needs no probe for its size.
const INLINE_MAX: usize = EAGER + TRAILER;

/// What a wait needs another rank to do, so that it fails when that rank has left the
/// job (`Comm::left`) instead of waiting for ever.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Peer {
    /// Send a message: communicator rank (or `ANY_SOURCE`) and tag of a receive or probe.
    From(c_int, c_int),
    /// Receive this rank's message: communicator rank and tag of a send.
    To(c_int, c_int),
    /// Nothing a rank that leaves would not do first (a payload whose head has come: its
    /// sender finishes its sends as it leaves).
    Nothing,
}

/// An MPI communicator with shmpi's meaning.
pub(crate) struct Comm {
    pub(crate) env: Rc<Env>,
    pub(crate) raw: ffi::MPI_Comm,
    /// A duplicate of `raw` that carries the payloads of large messages, each under a
    /// tag of its own, so that they reach the receiver's buffer contiguous.
    bulk: ffi::MPI_Comm,
    /// The next payload tag towards each member (by communicator rank).
    next_seq: RefCell<Vec<u32>>,
    /// Payload tags run from 0 to this (`MPI_TAG_UB`).
    seq_ub: u32,
    /// Where a status holds a receive's byte count as one 8-byte word, if it does
    /// (`count_offset`).
    count_at: Option<usize>,
    /// `INLINE_MAX` bytes for one blocking call: where every message of `raw` lands
    /// first, and where a small blocking send puts its payload beside its trailer.
    stage: RefCell<Box<[u8]>>,
    /// World ranks of the members (envelopes carry world ranks, as on the segment).
    pub(crate) group: Rc<Group>,
    pub(crate) rank: usize,
    /// `raw` is freed on drop (every communicator but the world and self).
    owned: bool,
    /// Messages received whose receive failed its check: still queued, oldest first.
    pub(super) held: RefCell<VecDeque<(Envelope, AlignedVec)>>,
    /// Stages of finished non-blocking receives, for the next ones.
    spare: RefCell<Vec<Box<[u8]>>>,
    /// Payloads taken from `bulk` before their heads were received (`prefetch`), by
    /// their sender's communicator rank and payload tag.
    prefetched: RefCell<Vec<(c_int, c_int, AlignedVec)>>,
    /// The program's polls on this communicator (`polled`).
    polls: std::cell::Cell<u32>,
    /// Persistent receives (`MPI_Recv_init`) of the blocking calls, by source, tag and
    /// buffer (the stage), the last few used: starting one costs less than a new
    /// request of `MPI_Irecv`, and less than `MPI_Recv` (docs/cluster.md).
    stage_reqs: RefCell<Vec<(c_int, c_int, *mut u8, ffi::MPI_Request)>>,
    /// The one of `stage_reqs` used last (a null buffer before any).
    last_stage: std::cell::Cell<(c_int, c_int, *mut u8, ffi::MPI_Request)>,
    pub(crate) reqs: RefCell<Table>,
}

fn head(type_id: u64, len: usize, seq: u32) -> [u8; HEAD] {
    let mut h = [0u8; HEAD];
    h[..8].copy_from_slice(&type_id.to_le_bytes());
    h[8..16].copy_from_slice(&(len as u64).to_le_bytes());
    h[16..24].copy_from_slice(&u64::from(seq).to_le_bytes());
    h[24..].copy_from_slice(&MAGIC_HEAD.to_le_bytes());
    h
}

/// The error of a failed `MPI_Recv` into a stage: a message longer than the stage
/// was not sent by shmpi.
#[cold]
#[inline(never)]
fn recv_failed(rc: c_int, st: &ffi::MPI_Status) -> Error {
    let e = check(rc, "MPI_Recv").expect_err("a failed call");
    if e.class() == crate::error::ErrorClass::Truncate {
        return Error::Corrupted(format!(
            "an MPI message from rank {} is longer than any of shmpi's: every rank must \
             use shmpi on this communicator",
            st.MPI_SOURCE
        ));
    }
    e
}

/// `dst.copy_from_slice(src)` without a call to `memcpy` for the few bytes of a small
/// message (two overlapping word copies).
#[inline(always)]
fn copy_small(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if (8..=16).contains(&n) {
        dst[..8].copy_from_slice(&src[..8]);
        dst[n - 8..].copy_from_slice(&src[n - 8..]);
    } else if (4..8).contains(&n) {
        dst[..4].copy_from_slice(&src[..4]);
        dst[n - 4..].copy_from_slice(&src[n - 4..]);
    } else if (1..4).contains(&n) {
        dst[0] = src[0];
        dst[n / 2] = src[n / 2];
        dst[n - 1] = src[n - 1];
    } else {
        dst.copy_from_slice(src);
    }
}

fn word(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Where a message's payload is once its first part has arrived.
#[derive(Clone, Copy)]
pub(super) enum Arrived {
    /// In the stage buffer, this many bytes.
    Inline(usize),
    /// Still on the payload communicator: `len` bytes under tag `seq`.
    Large { len: usize, seq: c_int },
}

fn too_large(len: usize) -> Error {
    Error::Usage(format!(
        "a message of {len} bytes is larger than one MPI message can be (2 GiB)"
    ))
}

/// Whether a small message travels bare, its payload alone: plain data (type 0) whose
/// last 8 bytes, if it has 16 or more, are neither magic word, so that the receiver
/// (`parse`) cannot take its end for a trailer or a head. Anything else carries its
/// trailer. Open MPI's shared-memory fast path holds a small message in 32-byte slots
/// with 24 bytes of its own headers: the 8 bytes of a bare message fill one, where the
/// trailer took a second.
fn bare(type_id: u64, payload: &[u8]) -> bool {
    let n = payload.len();
    type_id == 0
        && n <= EAGER
        && (n < TRAILER || !matches!(word(payload, n - 8), MAGIC | MAGIC_HEAD))
}

/// A small message as it travels: its payload with its trailer appended, or bare.
pub(super) fn with_trailer(mut bytes: AlignedVec, type_id: u64) -> AlignedVec {
    if !bare(type_id, &bytes) {
        bytes.extend_from_slice(&type_id.to_le_bytes());
        bytes.extend_from_slice(&MAGIC.to_le_bytes());
    }
    bytes
}

fn slice_with_trailer(data: &[u8], type_id: u64) -> AlignedVec {
    let mut v = AlignedVec::with_capacity(data.len() + TRAILER);
    v.extend_from_slice(data);
    with_trailer(v, type_id)
}

fn any_source() -> c_int {
    // SAFETY: reading a predefined constant.
    unsafe { ffi::RSMPI_ANY_SOURCE }
}

fn any_tag() -> c_int {
    // SAFETY: reading a predefined constant.
    unsafe { ffi::RSMPI_ANY_TAG }
}

/// Where `MPI_Status` holds the byte count of a receive as one native 8-byte word, if
/// it does: asked of MPI itself, by setting counts with `MPI_Status_set_elements` and
/// finding the offset that reads each back (Open MPI: its `_ucount`, at 16; MPICH:
/// `count_lo` and `count_hi_and_cancelled` together, at 0, for counts below 2^31 of a
/// status not cancelled, which is every receive's). A small receive then reads its
/// length there instead of calling `MPI_Get_count`, whose argument checks and
/// datatype lookup are a visible part of a small receive (docs/cluster.md). `None`:
/// every count asks MPI.
fn count_offset() -> Option<usize> {
    const COUNTS: [c_int; 8] = [0, 1, 7, 255, 4096, INLINE_MAX as c_int, 65_539, 1 << 20];
    let size = std::mem::size_of::<ffi::MPI_Status>();
    let statuses: Vec<ffi::MPI_Status> = COUNTS
        .iter()
        .map(|&n| {
            // SAFETY: plain data, then set by MPI.
            let mut st: ffi::MPI_Status = unsafe { std::mem::zeroed() };
            let mut got: c_int = -1;
            // SAFETY: `st` is a status and `got` an int the calls write.
            let ok = unsafe {
                ffi::MPI_Status_set_elements(&mut st, ffi::RSMPI_UINT8_T, n) == 0
                    && ffi::MPI_Get_count(&st, ffi::RSMPI_UINT8_T, &mut got) == 0
            };
            (ok && got == n).then_some(st)
        })
        .collect::<Option<_>>()?;
    (0..=size.checked_sub(8)?).step_by(4).find(|&off| {
        statuses
            .iter()
            .zip(COUNTS)
            .all(|(st, n)| status_word(st, off) == n as u64)
    })
}

/// The native 8-byte word at byte `off` of `st`.
#[inline]
fn status_word(st: &ffi::MPI_Status, off: usize) -> u64 {
    assert!(off + 8 <= std::mem::size_of::<ffi::MPI_Status>());
    // SAFETY: the 8 bytes at `off` lie within `st` (asserted), which is plain data.
    unsafe { std::ptr::read_unaligned(std::ptr::from_ref(st).cast::<u8>().add(off).cast::<u64>()) }
}

/// The largest tag MPI accepts (`MPI_TAG_UB`; the standard promises at least 32767).
fn tag_ub() -> u32 {
    let mut v: *mut c_int = std::ptr::null_mut();
    let mut flag: c_int = 0;
    // SAFETY: for this predefined key MPI writes the address of an int into `v`.
    let rc = unsafe {
        ffi::MPI_Comm_get_attr(
            ffi::RSMPI_COMM_WORLD,
            ffi::MPI_TAG_UB as c_int,
            (&raw mut v).cast::<c_void>(),
            &mut flag,
        )
    };
    if rc != ffi::MPI_SUCCESS as c_int || flag == 0 || v.is_null() {
        return 32767;
    }
    // SAFETY: MPI gave the address of its attribute's value.
    unsafe { *v }.max(32767) as u32
}

/// The payloads' communicator beside `raw`, made by every member together. Of an
/// intracommunicator with `MPI_Comm_create_group`, which agrees on the new context by
/// point-to-point messages: Open MPI's `MPI_Comm_dup` agrees by a non-blocking
/// allreduce of `libnbc`, which then adds its progress function to every poll of the
/// process until `raw` is freed (never, for `MPI_COMM_WORLD`), lengthening each wait's
/// turn. The tag cannot take a user's message: the agreement's messages from each
/// member precede, in MPI's order, anything that member sends on `raw` afterwards.
pub(super) fn twin(raw: ffi::MPI_Comm) -> Result<ffi::MPI_Comm> {
    // SAFETY: handles and flags are plain data, written by the calls; `raw` is valid.
    unsafe {
        let mut bulk: ffi::MPI_Comm = std::mem::zeroed();
        let mut inter: c_int = 0;
        check(
            ffi::MPI_Comm_test_inter(raw, &mut inter),
            "MPI_Comm_test_inter",
        )?;
        if inter != 0 {
            check(ffi::MPI_Comm_dup(raw, &mut bulk), "MPI_Comm_dup")?;
            return Ok(bulk);
        }
        let mut g: ffi::MPI_Group = std::mem::zeroed();
        check(ffi::MPI_Comm_group(raw, &mut g), "MPI_Comm_group")?;
        let rc = ffi::MPI_Comm_create_group(raw, g, 0, &mut bulk);
        ffi::MPI_Group_free(&mut g);
        check(rc, "MPI_Comm_create_group")?;
        Ok(bulk)
    }
}

impl Comm {
    pub(crate) fn new(
        env: Rc<Env>,
        raw: ffi::MPI_Comm,
        group: Rc<Group>,
        owned: bool,
    ) -> Result<Rc<Comm>> {
        let mut rank: c_int = 0;
        // SAFETY: `raw` is a valid communicator of which this process is a member.
        let rc = unsafe { ffi::MPI_Comm_rank(raw, &mut rank) };
        check(rc, "MPI_Comm_rank")?;
        if owned {
            // SAFETY: as above; the error handler is predefined.
            let rc = unsafe { ffi::MPI_Comm_set_errhandler(raw, ffi::RSMPI_ERRORS_RETURN) };
            check(rc, "MPI_Comm_set_errhandler")?;
        }
        let bulk = twin(raw)?;
        // SAFETY: a communicator just created; the error handler is predefined.
        let rc = unsafe { ffi::MPI_Comm_set_errhandler(bulk, ffi::RSMPI_ERRORS_RETURN) };
        check(rc, "MPI_Comm_set_errhandler")?;
        Ok(Rc::new(Comm {
            env,
            raw,
            bulk,
            next_seq: RefCell::new(vec![0; group.size()]),
            seq_ub: tag_ub(),
            count_at: count_offset(),
            stage: RefCell::new(vec![0u8; INLINE_MAX].into_boxed_slice()),
            group,
            rank: rank as usize,
            owned,
            held: RefCell::new(VecDeque::new()),
            spare: RefCell::new(Vec::new()),
            prefetched: RefCell::new(Vec::new()),
            polls: std::cell::Cell::new(0),
            stage_reqs: RefCell::new(Vec::new()),
            // SAFETY: a request handle is plain data; this one is never used (no stage
            // is at the null address).
            last_stage: std::cell::Cell::new((0, 0, std::ptr::null_mut(), unsafe {
                std::mem::zeroed()
            })),
            reqs: RefCell::new(Table::default()),
        }))
    }

    pub(crate) fn size(&self) -> usize {
        self.group.size()
    }

    /// Communicator rank of world rank `w`.
    fn local(&self, w: usize) -> c_int {
        self.group.rank_of(w)
    }

    fn src_tag(&self, m: &Matcher) -> (c_int, c_int) {
        let src = m.src.map_or(any_source(), |w| self.local(w));
        (src, m.tag.unwrap_or(any_tag()))
    }

    // ---- sends ----------------------------------------------------------------------

    /// Sends `payload` (with its trailer, or bare) to world rank `d`: returns once the
    /// message is on its way, never waiting for the receive unless `sync`.
    pub(crate) fn send(&self, d: usize, env: Envelope, payload: &[u8], sync: bool) -> Result<()> {
        if payload.len() > EAGER {
            // Large: straight from the caller's slice, which outlives the request.
            return self.send_large(d, env, payload, sync);
        }
        if sync {
            return self.send_msg(d, env.tag, slice_with_trailer(payload, env.type_id), sync);
        }
        let len = payload.len();
        if bare(env.type_id, payload) {
            // Straight from the caller's slice: nothing goes after it.
            return self.send_bytes(d, env.tag, payload);
        }
        let mut stage = self.stage.borrow_mut();
        stage[..len].copy_from_slice(payload);
        stage[len..len + 8].copy_from_slice(&env.type_id.to_le_bytes());
        stage[len + 8..len + TRAILER].copy_from_slice(&MAGIC.to_le_bytes());
        self.send_bytes(d, env.tag, &stage[..len + TRAILER])
    }

    /// `MPI_Send` of `msg`, a whole small message, to world rank `d`.
    fn send_bytes(&self, d: usize, tag: i32, msg: &[u8]) -> Result<()> {
        // SAFETY: `msg` holds its bytes for the blocking call.
        let rc = unsafe {
            ffi::MPI_Send(
                msg.as_ptr().cast::<c_void>(),
                msg.len() as c_int,
                ffi::RSMPI_UINT8_T,
                self.local(d),
                tag,
                self.raw,
            )
        };
        check(rc, "MPI_Send")
    }

    /// A blocking slice send's common case, called with the caller's arguments: a
    /// member `dest`, a tag, and plain data that travels bare. Then it sends and
    /// returns MPI's code; otherwise `None` before anything is sent, and the caller
    /// takes the general path, which gives its errors.
    #[inline(always)]
    pub(crate) fn send_pod(&self, bytes: &[u8], dest: i32, tag: i32) -> Option<c_int> {
        if dest < 0 || dest as usize >= self.group.ranks.len() || tag < 0 || !bare(0, bytes) {
            return None;
        }
        // SAFETY: `bytes` holds its bytes for the blocking call.
        Some(unsafe {
            ffi::MPI_Send(
                bytes.as_ptr().cast::<c_void>(),
                bytes.len() as c_int,
                ffi::RSMPI_UINT8_T,
                dest,
                tag,
                self.raw,
            )
        })
    }

    /// [`send`](Self::send) of an archive, which gets its trailer in place.
    pub(crate) fn send_archive(
        &self,
        d: usize,
        env: Envelope,
        bytes: AlignedVec,
        sync: bool,
    ) -> Result<()> {
        if bytes.len() > EAGER {
            return self.send_large(d, env, &bytes, sync);
        }
        self.send_msg(d, env.tag, with_trailer(bytes, env.type_id), sync)
    }

    /// A blocking send of a large message, which returns once its payload is all sent
    /// (`sync`: once a receive has taken its head; the payload goes on from a copy).
    fn send_large(&self, d: usize, env: Envelope, payload: &[u8], sync: bool) -> Result<()> {
        let dest = self.local(d);
        let peer = Peer::To(dest, env.tag);
        if sync {
            let (mut r, head) = self.start_large_sync(dest, env.type_id, env.tag, payload)?;
            if let Err(e) = self.wait_req(&mut r, peer) {
                // The request may still read `head`: it finishes in the background.
                self.reqs.borrow_mut().add_orphan(r, head);
                return Err(e);
            }
            return Ok(());
        }
        let mut r = self.start_large(dest, env.type_id, env.tag, payload)?;
        // On an error (its receiver has left, so no receive will ever match the payload
        // and MPI reads no more of it) the request is left to MPI, never freed.
        self.wait_req(&mut r, peer)
    }

    fn send_msg(&self, d: usize, tag: i32, msg: AlignedVec, sync: bool) -> Result<()> {
        if !sync && msg.len() <= INLINE_MAX {
            return self.send_bytes(d, tag, &msg);
        }
        let dest = self.local(d);
        let mut r = self.start_send(dest, tag, &msg, sync)?;
        if let Err(e) = self.wait_req(&mut r, Peer::To(dest, tag)) {
            // The request may still read `msg`: it finishes in the background.
            self.reqs.borrow_mut().add_orphan(r, msg);
            return Err(e);
        }
        Ok(())
    }

    /// Waits for request `r` while, now and then, this rank's posted receives move on
    /// and payloads that came ahead of their heads are taken in ([`waiting`](Self::waiting)),
    /// since another rank's send may wait for either.
    pub(super) fn wait_req(&self, r: &mut ffi::MPI_Request, peer: Peer) -> Result<()> {
        let mut turn = 0u32;
        loop {
            if super::test_raw(r)? {
                return Ok(());
            }
            self.waiting(&mut turn, peer)?;
        }
    }

    /// One turn of a wait in MPI (a test, a probe): every 16th turn (each call is a
    /// progress pass of MPI's own) the posted receives move on (a receive whose head is
    /// in posts its payload's receive, which its sender may wait for), then payloads
    /// that came on `bulk` ahead of their heads are taken in (`prefetch`), so that no
    /// large send waits for what this rank waits for; and a wait on `peer`, a rank
    /// that has left, fails (`turns`).
    #[inline]
    pub(super) fn waiting(&self, turn: &mut u32, peer: Peer) -> Result<()> {
        *turn = turn.wrapping_add(1);
        if *turn % 16 != 0 {
            return Ok(());
        }
        self.turns(*turn, peer)?;
        if self.has_posted() {
            self.progress_pending()?;
        }
        self.prefetch()
    }

    /// The departures' part of every 16th turn of a wait on `peer`: an error if `peer`
    /// has left, as known at an earlier turn (the wait's request was tested since, so a
    /// last message that came with the notice has been found); every 256th turn, the
    /// notices that have come are taken in.
    #[inline]
    pub(super) fn turns(&self, turn: u32, peer: Peer) -> Result<()> {
        let d = &self.env.departures;
        if d.any() {
            if let Some(e) = self.left(peer) {
                return Err(e);
            }
        }
        if turn % 256 == 0 {
            d.poll()?;
        }
        Ok(())
    }

    /// The error of a wait on `peer` if the rank (or, for a receive from
    /// `ANY_SOURCE`, every other member) it needs has left the job.
    #[cold]
    fn left(&self, peer: Peer) -> Option<Error> {
        let d = &self.env.departures;
        let rank = |r: c_int| {
            if r == any_source() {
                "ANY_SOURCE".to_string()
            } else {
                r.to_string()
            }
        };
        let tag = |t: c_int| {
            if t == any_tag() {
                "ANY_TAG".to_string()
            } else {
                t.to_string()
            }
        };
        let (who, doing) = match peer {
            Peer::Nothing => return None,
            Peer::To(dest, t) => (
                dest,
                format!(
                    "this rank was waiting for its send (dest={}, tag={}) to be received",
                    dest,
                    tag(t)
                ),
            ),
            Peer::From(src, t) => (
                src,
                format!(
                    "this rank was waiting for a message (source={}, tag={})",
                    rank(src),
                    tag(t)
                ),
            ),
        };
        let w = if who == any_source() {
            // Every member but this rank has left (this rank cannot send to itself while
            // it waits): the last of them is named.
            let mut others = self.group.ranks.iter().filter(|&&w| w != d.me).peekable();
            others.peek()?;
            let mut last = None;
            for &w in others {
                if !d.has_left(w) {
                    return None;
                }
                last = Some(w);
            }
            last?
        } else {
            let w = *self.group.ranks.get(usize::try_from(who).ok()?)?;
            if !d.has_left(w) {
                return None;
            }
            w
        };
        Some(super::leave::Departures::error(w, doing))
    }

    /// Receives, each into a vector of its own, the payloads that have come on `bulk`
    /// while their heads wait in `raw` for a receive: a large standard send then
    /// finishes whatever its receiver is waiting for, as on the shared segment (a
    /// rank may wait for a later message of the sender, or for another rank). The
    /// head's receive takes its payload from here (`take_prefetched`).
    pub(super) fn prefetch(&self) -> Result<()> {
        while let Some(st) = iprobe(self.bulk, any_source(), any_tag())? {
            let v = self.bulk_vec(st.MPI_SOURCE, st.MPI_TAG, Self::count(&st)?)?;
            (self.prefetched.borrow_mut()).push((st.MPI_SOURCE, st.MPI_TAG, v));
        }
        Ok(())
    }

    /// The payload of `src` under tag `seq`, if [`prefetch`](Self::prefetch) took it.
    pub(super) fn take_prefetched(
        &self,
        src: c_int,
        seq: c_int,
        len: usize,
    ) -> Result<Option<AlignedVec>> {
        let mut p = self.prefetched.borrow_mut();
        if p.is_empty() {
            return Ok(None);
        }
        let Some(i) = p.iter().position(|&(s, t, _)| s == src && t == seq) else {
            return Ok(None);
        };
        let v = p.swap_remove(i).2;
        payload_len(src, v.len(), len)?;
        Ok(Some(v))
    }

    /// Starts a send of `msg` (as `with_trailer` made it); the caller keeps `msg`
    /// alive and unmoved until the request finishes.
    pub(crate) fn start_send(
        &self,
        dest: c_int,
        tag: i32,
        msg: &AlignedVec,
        sync: bool,
    ) -> Result<ffi::MPI_Request> {
        if msg.len() > INLINE_MAX {
            // Only standard sends build a large message (`isend_buf` of a view): a
            // synchronous one goes through `start_large_sync`.
            debug_assert!(!sync, "a large synchronous send builds no message");
            let len = msg.len() - TRAILER;
            return self.start_large(dest, word(msg, len), tag, &msg[..len]);
        }
        // SAFETY: a request handle is plain data, written by the call below.
        let mut r: ffi::MPI_Request = unsafe { std::mem::zeroed() };
        let p = msg.as_ptr().cast::<c_void>();
        let n = msg.len() as c_int;
        // SAFETY: `msg` stays alive and unmoved until the request finishes (the caller's
        // promise: its heap buffer is owned by the request table or by this frame).
        let rc = unsafe {
            if sync {
                ffi::MPI_Issend(p, n, ffi::RSMPI_UINT8_T, dest, tag, self.raw, &mut r)
            } else {
                ffi::MPI_Isend(p, n, ffi::RSMPI_UINT8_T, dest, tag, self.raw, &mut r)
            }
        };
        check(rc, if sync { "MPI_Issend" } else { "MPI_Isend" })?;
        Ok(r)
    }

    /// Starts a large message: its head on `raw` under the message's tag, then its
    /// payload, contiguous, on `bulk` under a payload tag of its own. The head goes
    /// first so that the receiver, which posts the payload's receive when it has the
    /// head, has usually posted it when the payload's first fragment comes: one that
    /// comes earlier waits in MPI's unexpected queue and is copied twice (Open MPI's
    /// `vader` sends the first 32 KiB of a large message with its rendezvous header).
    /// The request is the payload's; the caller keeps `payload` alive and unmoved
    /// until it finishes.
    fn start_large(
        &self,
        dest: c_int,
        type_id: u64,
        tag: i32,
        payload: &[u8],
    ) -> Result<ffi::MPI_Request> {
        let (n, seq, h) = self.large_head(dest, type_id, payload.len())?;
        // SAFETY: `h` holds HEAD bytes for the blocking call.
        let rc = unsafe {
            ffi::MPI_Send(
                h.as_ptr().cast::<c_void>(),
                HEAD as c_int,
                ffi::RSMPI_UINT8_T,
                dest,
                tag,
                self.raw,
            )
        };
        check(rc, "MPI_Send")?;
        // SAFETY: `payload` stays alive and unmoved until the request finishes (the
        // caller's promise).
        unsafe { self.isend_payload(dest, seq, payload.as_ptr(), n) }
    }

    /// Starts the payload of a large message whose head went out: `n` bytes at `p` to
    /// communicator rank `dest` under payload tag `seq` on `bulk`.
    ///
    /// # Safety
    /// `p` is valid for `n` bytes, unmoved until the request finishes.
    unsafe fn isend_payload(
        &self,
        dest: c_int,
        seq: u32,
        p: *const u8,
        n: c_int,
    ) -> Result<ffi::MPI_Request> {
        // SAFETY: a request handle is plain data, written by the call below.
        let mut r: ffi::MPI_Request = unsafe { std::mem::zeroed() };
        let (p, ptag) = (p.cast::<c_void>(), seq as c_int);
        // SAFETY: the caller's promise for `p`; `ptag` is at most the tag bound.
        let rc = unsafe { ffi::MPI_Isend(p, n, ffi::RSMPI_UINT8_T, dest, ptag, self.bulk, &mut r) };
        if let Err(e) = check(rc, "MPI_Isend") {
            // The head announced a payload that will not come: an empty one in its
            // place fails the receiver's length check instead of leaving it waiting.
            // SAFETY: an empty send reads no memory.
            unsafe {
                ffi::MPI_Send(
                    std::ptr::null(),
                    0,
                    ffi::RSMPI_UINT8_T,
                    dest,
                    ptag,
                    self.bulk,
                );
            }
            return Err(e);
        }
        Ok(r)
    }

    /// A large message's head towards communicator rank `dest`, with the payload's
    /// length as MPI's count and its payload tag.
    fn large_head(
        &self,
        dest: c_int,
        type_id: u64,
        len: usize,
    ) -> Result<(c_int, u32, [u8; HEAD])> {
        let n = c_int::try_from(len).map_err(|_| too_large(len))?;
        let seq = self.next_payload_tag(dest);
        Ok((n, seq, head(type_id, len, seq)))
    }

    /// The next payload tag towards communicator rank `dest`.
    fn next_payload_tag(&self, dest: c_int) -> u32 {
        let mut next = self.next_seq.borrow_mut();
        let s = &mut next[dest as usize];
        let seq = *s;
        *s = if seq >= self.seq_ub { 0 } else { seq + 1 };
        seq
    }

    /// Starts a large synchronous send: its head with `MPI_Issend`, so that the send
    /// finishes once a receive has taken the head (MPI's rule for a synchronous send),
    /// and its payload, copied, with a standard `MPI_Isend` finished in the background
    /// (an orphan of the request table), so that a receiver may take it in early
    /// (`prefetch`) without finishing the send. Returns the head's request and the
    /// head, which the caller keeps alive and unmoved until the request finishes.
    pub(super) fn start_large_sync(
        &self,
        dest: c_int,
        type_id: u64,
        tag: i32,
        payload: &[u8],
    ) -> Result<(ffi::MPI_Request, AlignedVec)> {
        let (n, seq, head) = self.large_head(dest, type_id, payload.len())?;
        let mut h = AlignedVec::with_capacity(HEAD);
        h.extend_from_slice(&head);
        // SAFETY: a request handle is plain data, written by the call below.
        let mut hr: ffi::MPI_Request = unsafe { std::mem::zeroed() };
        // SAFETY: `h`'s heap buffer stays put until the request finishes (the caller
        // keeps it).
        let rc = unsafe {
            ffi::MPI_Issend(
                h.as_ptr().cast::<c_void>(),
                HEAD as c_int,
                ffi::RSMPI_UINT8_T,
                dest,
                tag,
                self.raw,
                &mut hr,
            )
        };
        check(rc, "MPI_Issend")?;
        let mut copy: AlignedVec = AlignedVec::with_capacity(payload.len());
        copy.extend_from_slice(payload);
        // SAFETY: `copy`'s heap buffer goes to the request table with the request,
        // which keeps it until the request finishes.
        let pr = match unsafe { self.isend_payload(dest, seq, copy.as_ptr(), n) } {
            Ok(pr) => pr,
            Err(e) => {
                // The head's send still reads `h`: it finishes in the background.
                self.reqs.borrow_mut().add_orphan(hr, h);
                return Err(e);
            }
        };
        self.reqs.borrow_mut().add_orphan(pr, copy);
        Ok((hr, h))
    }

    // ---- receives -------------------------------------------------------------------

    fn iprobe_mpi(&self, src: c_int, tag: c_int) -> Result<Option<ffi::MPI_Status>> {
        iprobe(self.raw, src, tag)
    }

    /// A blocking probe: `MPI_Iprobe` until a message matches, the wait's turns
    /// moving the rest on (`waiting`; not `MPI_Probe`, see `recv_stage`).
    fn probe_mpi(&self, src: c_int, tag: c_int) -> Result<ffi::MPI_Status> {
        let mut turn = 0u32;
        loop {
            if let Some(st) = self.iprobe_mpi(src, tag)? {
                return Ok(st);
            }
            self.waiting(&mut turn, Peer::From(src, tag))?;
        }
    }

    /// A turn of a program's polling (a test, a non-blocking probe or receive): every
    /// 16th on this communicator takes in early payloads, as a wait's turns do, so
    /// that a program that polls leaves no sender waiting either.
    pub(super) fn polled(&self) -> Result<()> {
        let n = self.polls.get().wrapping_add(1);
        self.polls.set(n);
        if n % 16 == 0 {
            self.prefetch()?;
        }
        Ok(())
    }

    /// After a test found request `id` unfinished (`polled` counted it): fails as the
    /// request's wait would if the rank it waits for has left (known once a rank has:
    /// notices are taken in on every 256th turn), so that a loop of tests ends instead
    /// of spinning for ever. Every test looks, so that a test over many requests sees
    /// each one's peer gone in the same pass.
    pub(super) fn tested(&self, id: u64) -> Result<()> {
        let turn = self.polls.get();
        let peer = if self.env.departures.any() {
            self.reqs.borrow_mut().peer_of(id)
        } else {
            Peer::Nothing
        };
        self.turns(turn, peer)
    }

    /// Receives the next message from communicator rank `src` with `tag` (wildcards
    /// allowed, blocking) into `stage`: its envelope, its sender's communicator rank
    /// and where its payload is. No probe is needed: every message fits `stage`.
    fn recv_head(
        &self,
        src: c_int,
        tag: c_int,
        stage: &mut [u8],
    ) -> Result<(Envelope, c_int, Arrived)> {
        // SAFETY: plain data written by the call.
        let mut st: ffi::MPI_Status = unsafe { std::mem::zeroed() };
        self.recv_stage(src, tag, stage, &mut st)?;
        self.parse(&st, stage)
    }

    /// Receives into `stage` the next message from communicator rank `src` with `tag`
    /// (wildcards allowed, blocking), its status in `st` (written in place: a status
    /// returned by value is one more copy per message). Not `MPI_Recv`: a rank blocked
    /// inside MPI would leave a sender waiting for a payload's receive, or for its posted
    /// receives to move on; it polls with the wait's turns (`recv_polling`).
    #[inline(always)]
    fn recv_stage(
        &self,
        src: c_int,
        tag: c_int,
        stage: &mut [u8],
        st: &mut ffi::MPI_Status,
    ) -> Result<()> {
        let rc = self.recv_polling(src, tag, stage, st)?;
        if rc != ffi::MPI_SUCCESS as c_int {
            return Err(recv_failed(rc, st));
        }
        Ok(())
    }

    /// Starts the persistent receive of `src` and `tag` into `stage` (`stage_req`),
    /// then tests until it finishes, the wait's turns moving the rest on (`waiting`):
    /// the receive's return code, its status in `st`. The first test is inline: in a
    /// stream, the message is mostly there when its receive starts.
    #[inline(always)]
    fn recv_polling(
        &self,
        src: c_int,
        tag: c_int,
        stage: &mut [u8],
        st: &mut ffi::MPI_Status,
    ) -> Result<c_int> {
        let mut r = self.stage_req(src, tag, stage)?;
        // SAFETY: `r` is an inactive persistent receive into `stage`, which holds
        // INLINE_MAX writable bytes; the request finishes before this returns, also on
        // error (`recv_waiting`).
        check(unsafe { ffi::MPI_Start(&mut r) }, "MPI_Start")?;
        let mut flag: c_int = 0;
        // SAFETY: `r` is the active request started above.
        let rc = unsafe { ffi::MPI_Test(&mut r, &mut flag, st) };
        if rc != ffi::MPI_SUCCESS as c_int || flag != 0 {
            return Ok(rc);
        }
        self.recv_waiting(r, src, tag, st)
    }

    /// The rest of [`recv_polling`](Self::recv_polling) when its first test found
    /// nothing: tests until request `r` (active, into the stage) finishes.
    #[inline(never)]
    fn recv_waiting(
        &self,
        mut r: ffi::MPI_Request,
        src: c_int,
        tag: c_int,
        st: &mut ffi::MPI_Status,
    ) -> Result<c_int> {
        let mut turn = 0u32;
        loop {
            let mut flag: c_int = 0;
            // SAFETY: `r` is the active request started above.
            let rc = unsafe { ffi::MPI_Test(&mut r, &mut flag, st) };
            if rc != ffi::MPI_SUCCESS as c_int || flag != 0 {
                return Ok(rc);
            }
            if let Err(e) = self.waiting(&mut turn, Peer::From(src, tag)) {
                // The stage must not be written after this returns: withdraw the receive.
                if let Ok((got, false)) = super::req::cancel_raw(&mut r) {
                    // It had taken a message meanwhile: the receive succeeded.
                    *st = got;
                    return Ok(ffi::MPI_SUCCESS as c_int);
                }
                return Err(e);
            }
        }
    }

    /// The persistent receive of `src` and `tag` into `stage`, made on first use; four
    /// are kept (a program's blocking receives mostly repeat one source and tag), the
    /// last one used at hand in one comparison.
    #[inline(always)]
    fn stage_req(&self, src: c_int, tag: c_int, stage: &mut [u8]) -> Result<ffi::MPI_Request> {
        let p = stage.as_mut_ptr();
        let (s, t, q, r) = self.last_stage.get();
        if (s, t, q) == (src, tag, p) {
            return Ok(r);
        }
        let r = self.stage_req_find(src, tag, p)?;
        self.last_stage.set((src, tag, p, r));
        Ok(r)
    }

    #[inline(never)]
    fn stage_req_find(&self, src: c_int, tag: c_int, p: *mut u8) -> Result<ffi::MPI_Request> {
        let mut reqs = self.stage_reqs.borrow_mut();
        if let Some(&(.., r)) = reqs.iter().find(|e| (e.0, e.1, e.2) == (src, tag, p)) {
            return Ok(r);
        }
        // SAFETY: a request handle is plain data, written by the call below.
        let mut r: ffi::MPI_Request = unsafe { std::mem::zeroed() };
        // SAFETY: the request is only ever started by `recv_polling` with this buffer,
        // whose INLINE_MAX bytes are then borrowed writable until it finishes.
        let rc = unsafe {
            ffi::MPI_Recv_init(
                p.cast::<c_void>(),
                INLINE_MAX as c_int,
                ffi::RSMPI_UINT8_T,
                src,
                tag,
                self.raw,
                &mut r,
            )
        };
        check(rc, "MPI_Recv_init")?;
        if reqs.len() == 4 {
            let (.., mut old) = reqs.remove(0);
            // SAFETY: an inactive persistent request of this communicator.
            unsafe { ffi::MPI_Request_free(&mut old) };
        }
        reqs.push((src, tag, p, r));
        Ok(r)
    }

    /// The envelope, sender's communicator rank and payload's place of the message a
    /// receive into `stage` finished with (status `st`).
    pub(super) fn parse(
        &self,
        st: &ffi::MPI_Status,
        stage: &[u8],
    ) -> Result<(Envelope, c_int, Arrived)> {
        let n = self.stage_count(st)?;
        let corrupted = || {
            Error::Corrupted(format!(
                "an MPI message of {n} bytes from rank {} with tag {} is not one of shmpi's \
                 (bad trailer): every rank must use shmpi on this communicator",
                st.MPI_SOURCE, st.MPI_TAG
            ))
        };
        let (type_id, len, arrived) = match (n >= TRAILER).then(|| word(stage, n - 8)) {
            Some(MAGIC) => (
                word(stage, n - TRAILER),
                n - TRAILER,
                Arrived::Inline(n - TRAILER),
            ),
            Some(MAGIC_HEAD) if n == HEAD => {
                let len = word(stage, 8) as usize;
                let seq = c_int::try_from(word(stage, 16)).map_err(|_| corrupted())?;
                (word(stage, 0), len, Arrived::Large { len, seq })
            }
            // Plain data sent bare (`bare`).
            _ if n <= EAGER => (0, n, Arrived::Inline(n)),
            _ => return Err(corrupted()),
        };
        let env = Envelope {
            ctx: 0,
            src: self.group.ranks[st.MPI_SOURCE as usize],
            tag: st.MPI_TAG,
            len,
            type_id,
        };
        Ok((env, st.MPI_SOURCE, arrived))
    }

    /// The bytes a status of a receive into the stage describes: read where
    /// `count_offset` found MPI keeps them, or asked of MPI.
    #[inline]
    fn stage_count(&self, st: &ffi::MPI_Status) -> Result<usize> {
        if let Some(off) = self.count_at {
            let n = status_word(st, off);
            if n <= INLINE_MAX as u64 {
                return Ok(n as usize);
            }
        }
        Self::count(st)
    }

    /// The bytes a status describes.
    fn count(st: &ffi::MPI_Status) -> Result<usize> {
        let mut n: c_int = 0;
        // SAFETY: `st` came from a completed receive.
        let rc = unsafe { ffi::MPI_Get_count(st, ffi::RSMPI_UINT8_T, &mut n) };
        check(rc, "MPI_Get_count")?;
        Ok(n.max(0) as usize)
    }

    /// Receives a large message's payload, `len` bytes under tag `seq` from
    /// communicator rank `src`, to `dst`: taken in early (`prefetch`), or on its way,
    /// since its head has arrived.
    ///
    /// # Safety
    /// `dst` is valid for `len` writable bytes.
    unsafe fn recv_payload(&self, src: c_int, seq: c_int, dst: *mut u8, len: usize) -> Result<()> {
        if let Some(v) = self.take_prefetched(src, seq, len)? {
            // SAFETY: `dst` holds `len` writable bytes (the caller's promise); `v` holds
            // `len` bytes of its own (checked by `take_prefetched`).
            unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), dst, len) };
            return Ok(());
        }
        // SAFETY: the caller's promise.
        unsafe { self.recv_bulk(src, seq, dst, len) }
    }

    /// `MPI_Recv` of `len` bytes under tag `seq` from communicator rank `src` on
    /// `bulk`, to `dst`, checked to be exactly `len` bytes.
    ///
    /// # Safety
    /// `dst` is valid for `len` writable bytes.
    unsafe fn recv_bulk(&self, src: c_int, seq: c_int, dst: *mut u8, len: usize) -> Result<()> {
        let n = c_int::try_from(len).map_err(|_| too_large(len))?;
        // SAFETY: plain data written by the call.
        let mut st: ffi::MPI_Status = unsafe { std::mem::zeroed() };
        // SAFETY: `dst` holds `len` writable bytes (the caller's promise).
        let rc = unsafe {
            ffi::MPI_Recv(
                dst.cast::<c_void>(),
                n,
                ffi::RSMPI_UINT8_T,
                src,
                seq,
                self.bulk,
                &mut st,
            )
        };
        check(rc, "MPI_Recv")?;
        payload_len(src, Self::count(&st)?, len)
    }

    /// `len` bytes under tag `seq` from communicator rank `src` on `bulk`, in a vector
    /// of their own.
    fn bulk_vec(&self, src: c_int, seq: c_int, len: usize) -> Result<AlignedVec> {
        let mut v = AlignedVec::with_capacity(len.max(1));
        // SAFETY: the vector has room for `len` bytes; its length is set only after
        // MPI wrote exactly that many (checked by `recv_bulk`).
        unsafe {
            self.recv_bulk(src, seq, v.as_mut_ptr(), len)?;
            v.set_len(len);
        }
        Ok(v)
    }

    /// The payload of a message whose first part is in `stage`, in a vector of its own.
    pub(super) fn payload(&self, src: c_int, arrived: Arrived, stage: &[u8]) -> Result<AlignedVec> {
        match arrived {
            Arrived::Inline(len) => {
                let mut v = AlignedVec::with_capacity(len);
                v.extend_from_slice(&stage[..len]);
                Ok(v)
            }
            Arrived::Large { len, seq } => match self.take_prefetched(src, seq, len)? {
                Some(v) => Ok(v),
                None => self.bulk_vec(src, seq, len),
            },
        }
    }

    /// Receives the next message from communicator rank `src` with `tag` (wildcards
    /// allowed, blocking), whole: its envelope and payload.
    fn receive(&self, src: c_int, tag: c_int) -> Result<(Envelope, AlignedVec)> {
        let mut stage = self.stage.borrow_mut();
        let (env, from, arrived) = self.recv_head(src, tag, &mut stage)?;
        let data = self.payload(from, arrived, &stage)?;
        Ok((env, data))
    }

    fn matches(m: &Matcher, env: &Envelope) -> bool {
        m.src.is_none_or(|s| s == env.src) && m.tag.is_none_or(|t| t == env.tag)
    }

    /// The next message matching `m` and, if `want` is given, passing its check: from
    /// the held queue first, then from MPI. `None` when `block` is false and there is
    /// none yet. A message that fails the check stays (or is put) in the held queue.
    pub(crate) fn take(
        &self,
        m: &Matcher,
        want: Option<&Want>,
        block: bool,
    ) -> Result<Option<(Envelope, AlignedVec)>> {
        self.take_now(m, want, block)
    }

    fn take_now(
        &self,
        m: &Matcher,
        want: Option<&Want>,
        block: bool,
    ) -> Result<Option<(Envelope, AlignedVec)>> {
        if let Some(got) = self.take_held(m, want)? {
            return Ok(Some(got));
        }
        // Non-blocking receives posted earlier are MPI's: it gives them their messages
        // first.
        let (src, tag) = self.src_tag(m);
        let (env, data) = if block {
            self.receive(src, tag)?
        } else {
            let Some(st) = self.iprobe_mpi(src, tag)? else {
                self.polled()?;
                return Ok(None);
            };
            // The earliest message with the probed source and tag is the probed one.
            self.receive(st.MPI_SOURCE, st.MPI_TAG)?
        };
        if let Some(w) = want {
            if let Err(e) = self.check(w, &env, &data) {
                self.held.borrow_mut().push_back((env, data));
                return Err(e);
            }
        }
        Ok(Some((env, data)))
    }

    pub(super) fn take_held(
        &self,
        m: &Matcher,
        want: Option<&Want>,
    ) -> Result<Option<(Envelope, AlignedVec)>> {
        let mut held = self.held.borrow_mut();
        let Some(i) = held.iter().position(|(e, _)| Self::matches(m, e)) else {
            return Ok(None);
        };
        if let Some(w) = want {
            let (env, data) = &held[i];
            self.check(w, env, data)?;
        }
        Ok(held.remove(i))
    }

    pub(crate) fn check(&self, want: &Want, env: &Envelope, data: &AlignedVec) -> Result<()> {
        want.check(env, self.local(env.src), || {
            codec::sent_type_name(data, env.type_id)
        })
    }

    /// Describes the next matching message without receiving it.
    pub(crate) fn probe(&self, m: &Matcher, block: bool) -> Result<Option<Envelope>> {
        if let Some((e, _)) = self.held.borrow().iter().find(|(e, _)| Self::matches(m, e)) {
            return Ok(Some(*e));
        }
        let (src, tag) = self.src_tag(m);
        let st = if block {
            self.probe_mpi(src, tag)?
        } else {
            match self.iprobe_mpi(src, tag)? {
                Some(st) => st,
                None => {
                    self.polled()?;
                    return Ok(None);
                }
            }
        };
        // The envelope's length and type are in the message, so a probe receives it
        // (its payload too: a sender is never left waiting on a probed message) and
        // keeps it at the back of the held queue, the front of what is left of its
        // sender's messages.
        let got = self.receive(st.MPI_SOURCE, st.MPI_TAG)?;
        let env = got.0;
        self.held.borrow_mut().push_back(got);
        Ok(Some(env))
    }

    /// A blocking slice receive into `buf`: the status of the message it took.
    pub(crate) fn recv_into(&self, m: &Matcher, want: &Want, buf: &mut [u8]) -> Result<Status> {
        let held = {
            let h = self.held.borrow();
            !h.is_empty() && h.iter().any(|(e, _)| Self::matches(m, e))
        };
        let env = if !held {
            let (src, tag) = self.src_tag(m);
            let mut stage = self.stage.borrow_mut();
            if !self.has_posted() {
                return self.recv_into_direct(src, tag, want, buf, &mut stage);
            }
            let (env, from, arrived) = self.recv_head(src, tag, &mut stage)?;
            self.recv_arrived(want, buf, env, from, arrived, &stage)?
        } else {
            let (env, data) = self
                .take(m, Some(want), true)?
                .expect("a blocking take returns a message");
            buf[..data.len()].copy_from_slice(&data);
            env
        };
        Ok(Status::received(&env, &self.group))
    }

    /// A blocking slice receive's common case, called with the caller's arguments
    /// before any is put in a [`Matcher`] or [`Want`]: a source that is a member or
    /// `ANY_SOURCE`, a tag that is a tag or `ANY_TAG`, nothing held and no receive
    /// posted. Then it receives (as [`recv_into_direct`](Self::recv_into_direct)) and
    /// returns `Some`; otherwise `None` before anything is received, and the caller
    /// takes the general path, which gives its errors.
    #[inline(always)]
    pub(crate) fn recv_pod(
        &self,
        buf: &mut [u8],
        elem: usize,
        elem_type: &'static str,
        source: i32,
        tag: i32,
    ) -> Result<Option<Status>> {
        let src = match source {
            crate::ANY_SOURCE => any_source(),
            s if s >= 0 && (s as usize) < self.group.ranks.len() => s,
            _ => return Ok(None),
        };
        let tag = match tag {
            crate::ANY_TAG => any_tag(),
            t if t >= 0 => t,
            _ => return Ok(None),
        };
        if !self.held.borrow().is_empty() || self.has_posted() {
            return Ok(None);
        }
        let want = Want::Bytes {
            cap: buf.len(),
            elem,
            elem_type,
        };
        let mut stage = self.stage.borrow_mut();
        self.recv_into_direct(src, tag, &want, buf, &mut stage)
            .map(Some)
    }

    /// [`recv_into`](Self::recv_into) where MPI's next matching message is this
    /// receive's (nothing held, no receive posted): `MPI_Recv` into the stage, then
    /// the common case, plain data sent bare that `want` accepts, straight into `buf`
    /// in few steps, its status made from MPI's, since a small message's frames and
    /// moves bound the bandwidth of a receiver that keeps up (docs/cluster.md);
    /// anything else as [`recv_head`](Self::recv_head) and
    /// [`recv_arrived`](Self::recv_arrived) do it.
    #[inline(always)]
    fn recv_into_direct(
        &self,
        src: c_int,
        tag: c_int,
        want: &Want,
        buf: &mut [u8],
        stage: &mut [u8],
    ) -> Result<Status> {
        // SAFETY: plain data written by the call.
        let mut st: ffi::MPI_Status = unsafe { std::mem::zeroed() };
        self.recv_stage(src, tag, stage, &mut st)?;
        let n = self.stage_count(&st)?;
        if let Want::Bytes { cap, elem, .. } = *want {
            let bare =
                n <= EAGER && (n < TRAILER || !matches!(word(stage, n - 8), MAGIC | MAGIC_HEAD));
            // Bytes need no division (a `div` costs tens of cycles).
            if bare && n <= cap && (elem == 1 || n % elem == 0) {
                copy_small(&mut buf[..n], &stage[..n]);
                // MPI's source is the communicator rank a status names.
                return Ok(Status::from_mpi(st.MPI_SOURCE, st.MPI_TAG, n));
            }
        }
        let (env, from, arrived) = self.parse(&st, stage)?;
        let env = self.recv_arrived(want, buf, env, from, arrived, stage)?;
        Ok(Status::received(&env, &self.group))
    }

    /// The rest of a blocking slice receive whose message has arrived in `stage` (its
    /// payload, if large, still on its way): checked against `want`, it goes to `buf`,
    /// or, failing the check, to the held queue (the message stays queued).
    #[inline(never)]
    fn recv_arrived(
        &self,
        want: &Want,
        buf: &mut [u8],
        env: Envelope,
        from: c_int,
        arrived: Arrived,
        stage: &[u8],
    ) -> Result<Envelope> {
        match arrived {
            Arrived::Inline(len) => {
                let sent = || codec::sent_type_name(&stage[..len], env.type_id);
                if let Err(e) = want.check(&env, from, sent) {
                    let data = self.payload(from, arrived, stage)?;
                    self.held.borrow_mut().push_back((env, data));
                    return Err(e);
                }
                buf[..len].copy_from_slice(&stage[..len]);
            }
            Arrived::Large { len, seq } => {
                if want.check(&env, from, String::new).is_err() {
                    // Failed: the payload goes to the held queue (the message stays
                    // queued), and the error names what was sent.
                    let data = self.payload(from, arrived, stage)?;
                    let e = self.check(want, &env, &data).err();
                    self.held.borrow_mut().push_back((env, data));
                    return Err(e.unwrap_or_else(|| {
                        Error::Corrupted("a receive's check changed its answer".into())
                    }));
                }
                // Passed: `len` fits `buf`, and the payload lands there directly.
                let dst = &mut buf[..len];
                // SAFETY: `dst` is `len` writable bytes.
                unsafe { self.recv_payload(from, seq, dst.as_mut_ptr(), len)? };
            }
        }
        Ok(env)
    }

    /// Exchanges with one send and one receive in flight at once (`MPI_Sendrecv`).
    pub(crate) fn sendrecv(
        &self,
        d: usize,
        env: Envelope,
        payload: &[u8],
        m: &Matcher,
        want: &Want,
        buf: &mut [u8],
    ) -> Result<Status> {
        let dest = self.local(d);
        let mut small = AlignedVec::new();
        let mut r = if payload.len() > EAGER {
            self.start_large(dest, env.type_id, env.tag, payload)?
        } else {
            small = slice_with_trailer(payload, env.type_id);
            self.start_send(dest, env.tag, &small, false)?
        };
        let got = self.recv_into(m, want, buf);
        let sent = self.wait_req(&mut r, Peer::To(dest, env.tag));
        if sent.is_err() && !small.is_empty() {
            // The request may still read `small`: it finishes in the background.
            self.reqs.borrow_mut().add_orphan(r, small);
        }
        let got = got?;
        sent?;
        Ok(got)
    }

    // ---- non-blocking ---------------------------------------------------------------

    /// Starts a non-blocking send of `bytes` (an object's archive), which its request
    /// owns: a large one is read in place.
    pub(crate) fn isend_bytes(
        &self,
        d: usize,
        tag: i32,
        type_id: u64,
        bytes: AlignedVec,
        sync: bool,
    ) -> Result<u64> {
        let dest = self.local(d);
        let to = Peer::To(dest, tag);
        if bytes.len() > EAGER && sync {
            let (r, head) = self.start_large_sync(dest, type_id, tag, &bytes)?;
            return Ok(self.reqs.borrow_mut().add_send(r, head, None, to));
        }
        if bytes.len() > EAGER {
            // The vector's heap buffer stays put when the table takes the vector.
            let r = self.start_large(dest, type_id, tag, &bytes)?;
            return Ok(self.reqs.borrow_mut().add_send(r, bytes, None, to));
        }
        let msg = with_trailer(bytes, type_id);
        let r = self.start_send(dest, tag, &msg, sync)?;
        Ok(self.reqs.borrow_mut().add_send(r, msg, None, to))
    }

    /// Starts a non-blocking send of the plain data `buf` holds, handed back at
    /// completion. A large one is read in place, as MPI reads a send buffer (a borrowed
    /// view too: its scope's end waits for the send, `settle`); a small one is copied
    /// beside its trailer.
    pub(crate) fn isend_buf(&self, d: usize, tag: i32, buf: PodVec, sync: bool) -> Result<u64> {
        let dest = self.local(d);
        let to = Peer::To(dest, tag);
        if buf.bytes().len() > EAGER && sync {
            // The payload is copied as it starts, so a view is no longer needed: its
            // scope's end need not wait for the receive.
            let (r, head) = self.start_large_sync(dest, 0, tag, buf.bytes())?;
            return Ok(self.reqs.borrow_mut().add_send(r, head, owned(buf), to));
        }
        if buf.bytes().len() > EAGER {
            // The table keeps `buf`, whose bytes stay put, until the request finishes.
            let r = self.start_large(dest, 0, tag, buf.bytes())?;
            return Ok(self
                .reqs
                .borrow_mut()
                .add_send(r, AlignedVec::new(), Some(buf), to));
        }
        let msg = self.reqs.borrow_mut().message(buf.bytes(), 0);
        let r = self.start_send(dest, tag, &msg, sync)?;
        Ok(self.reqs.borrow_mut().add_send(r, msg, owned(buf), to))
    }

    /// [`isend_buf`](Self::isend_buf) where the request may finish as it starts: a
    /// small non-synchronous send that MPI completes at once (its message copied out,
    /// as an eager send's is) hands `buf` back (`Err`) and leaves no entry, so that
    /// neither a wait nor a scope's end has anything to look up.
    pub(crate) fn isend_buf_now(
        &self,
        d: usize,
        tag: i32,
        buf: PodVec,
        sync: bool,
    ) -> Result<std::result::Result<u64, PodVec>> {
        if sync || buf.bytes().len() > EAGER {
            return self.isend_buf(d, tag, buf, sync).map(Ok);
        }
        let msg = self.reqs.borrow_mut().message(buf.bytes(), 0);
        let dest = self.local(d);
        let to = Peer::To(dest, tag);
        let mut r = self.start_send(dest, tag, &msg, false)?;
        // A finished request's test makes no progress pass, so this costs little.
        if super::test_raw(&mut r)? {
            self.reqs.borrow_mut().recycle(msg);
            return Ok(Err(buf));
        }
        Ok(Ok(self.reqs.borrow_mut().add_send(r, msg, owned(buf), to)))
    }

    /// Posts `MPI_Irecv` for the first part of the next message `m` matches, into a
    /// stage of its own; the caller keeps the stage unmoved until the request finishes.
    /// Also what the receive waits for (`Peer::From`).
    pub(super) fn post_head(&self, m: &Matcher) -> Result<(ffi::MPI_Request, Box<[u8]>, Peer)> {
        let mut stage = self
            .spare
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| vec![0u8; INLINE_MAX].into_boxed_slice());
        let (src, tag) = self.src_tag(m);
        // SAFETY: `stage` holds INLINE_MAX bytes and stays alive and unmoved (boxed, in
        // the request table) until the request finishes or is cancelled and waited for.
        let r = unsafe { irecv(self.raw, stage.as_mut_ptr(), INLINE_MAX, src, tag)? };
        Ok((r, stage, Peer::From(src, tag)))
    }

    /// A finished receive's stage, back for the next one.
    pub(super) fn give_stage(&self, stage: Box<[u8]>) {
        let mut spare = self.spare.borrow_mut();
        if spare.len() < 64 {
            spare.push(stage);
        }
    }

    /// Starts the receive of a large message's payload (`len` bytes under tag `seq`
    /// from communicator rank `src`) into `dst`.
    ///
    /// # Safety
    /// `dst` is valid for `len` writable bytes, unmoved until the request finishes.
    pub(super) unsafe fn start_payload(
        &self,
        src: c_int,
        seq: c_int,
        dst: *mut u8,
        len: usize,
    ) -> Result<ffi::MPI_Request> {
        // SAFETY: the caller's promise.
        unsafe { irecv(self.bulk, dst, len, src, seq) }
    }

    /// Puts the message whose first part a receive got into `stage` (status `st`),
    /// whole, at the back of the held queue.
    pub(super) fn hold_arrived(&self, st: &ffi::MPI_Status, stage: &[u8]) -> Result<()> {
        let (env, from, arrived) = self.parse(st, stage)?;
        let data = self.payload(from, arrived, stage)?;
        self.held.borrow_mut().push_back((env, data));
        Ok(())
    }
}

/// What a send whose message is a copy keeps to give back: an owned buffer, not a
/// borrowed view, so that a send's entry holds a view only while MPI reads it in place
/// (a scoped large send, which its scope's end waits for: `Comm::settle`).
fn owned(buf: PodVec) -> Option<PodVec> {
    (!buf.is_view()).then_some(buf)
}

/// `MPI_Iprobe` on `comm`: the status of the next matching message, if one is there.
fn iprobe(comm: ffi::MPI_Comm, src: c_int, tag: c_int) -> Result<Option<ffi::MPI_Status>> {
    let mut flag: c_int = 0;
    // SAFETY: plain data written by the call.
    let mut st: ffi::MPI_Status = unsafe { std::mem::zeroed() };
    // SAFETY: valid communicator and status pointer.
    let rc = unsafe { ffi::MPI_Iprobe(src, tag, comm, &mut flag, &mut st) };
    check(rc, "MPI_Iprobe")?;
    Ok((flag != 0).then_some(st))
}

/// `MPI_Irecv` of up to `len` bytes into `dst` on `comm`.
///
/// # Safety
/// `dst` is valid for `len` writable bytes until the request finishes.
unsafe fn irecv(
    comm: ffi::MPI_Comm,
    dst: *mut u8,
    len: usize,
    src: c_int,
    tag: c_int,
) -> Result<ffi::MPI_Request> {
    let n = c_int::try_from(len).map_err(|_| too_large(len))?;
    // SAFETY: a request handle is plain data, written by the call below.
    let mut r: ffi::MPI_Request = unsafe { std::mem::zeroed() };
    // SAFETY: `dst` holds `len` writable bytes until the request finishes (the caller's
    // promise).
    let rc = unsafe {
        ffi::MPI_Irecv(
            dst.cast::<c_void>(),
            n,
            ffi::RSMPI_UINT8_T,
            src,
            tag,
            comm,
            &mut r,
        )
    };
    check(rc, "MPI_Irecv")?;
    Ok(r)
}

/// Checks that a payload's receive (status `st`) got the `len` bytes its head announced.
pub(super) fn payload_count(st: &ffi::MPI_Status, len: usize) -> Result<()> {
    payload_len(st.MPI_SOURCE, Comm::count(st)?, len)
}

/// Checks that a payload from communicator rank `src` has the `len` bytes its head
/// announced (`got`).
fn payload_len(src: c_int, got: usize, len: usize) -> Result<()> {
    if got != len {
        return Err(Error::Corrupted(format!(
            "the payload of a message from rank {src} has {got} bytes where its head \
             announced {len}"
        )));
    }
    Ok(())
}

impl Drop for Comm {
    fn drop(&mut self) {
        for (.., mut r) in self.stage_reqs.get_mut().drain(..) {
            // SAFETY: an inactive persistent request of this communicator.
            unsafe { ffi::MPI_Request_free(&mut r) };
        }
        self.drop_recvs();
        for (r, buf, kind) in self.reqs.get_mut().take_sends() {
            self.env.adopt(r, buf, kind);
        }
        // SAFETY: these communicators are ours (`raw` when `owned`) and no handle on
        // them remains; MPI frees them once the sends still in flight have finished.
        unsafe {
            ffi::MPI_Comm_free(&mut self.bulk);
            if self.owned {
                ffi::MPI_Comm_free(&mut self.raw);
            }
        }
    }
}

impl Comm {
    /// A blocking receive of a message that passes `want`'s check.
    pub(crate) fn recv_message(&self, m: &Matcher, want: &Want) -> Result<(Envelope, AlignedVec)> {
        self.take(m, Some(want), true)?
            .ok_or_else(|| Error::Corrupted("a blocking receive returned nothing".into()))
    }

    /// A receive of whatever matches (a matched probe's message, taken out of matching).
    pub(crate) fn recv_message_any(
        &self,
        m: &Matcher,
        block: bool,
    ) -> Result<Option<(Envelope, AlignedVec)>> {
        self.take(m, None, block)
    }

    /// A receive into a new vector of exactly the message's length.
    pub(crate) fn recv_vec<T: bytemuck::Pod>(
        &self,
        m: &Matcher,
        elem: usize,
    ) -> Result<(Vec<T>, Envelope)> {
        let want = Want::Bytes {
            cap: usize::MAX,
            elem,
            elem_type: codec::type_name::<T>(),
        };
        let (env, data) = self.recv_message(m, &want)?;
        let mut v = vec![T::zeroed(); env.len / elem];
        bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(&data);
        Ok((v, env))
    }

    /// Messages received but not yet taken by a receive.
    pub(crate) fn held_len(&self) -> usize {
        self.held.borrow().len()
    }

    /// Ends every rank of the job (`MPI_Abort`).
    pub(crate) fn abort(&self, code: i32) -> ! {
        // SAFETY: a valid communicator; MPI_Abort does not return when it succeeds.
        unsafe { ffi::MPI_Abort(self.raw, code) };
        std::process::exit(if code == 0 { 1 } else { code })
    }
}
