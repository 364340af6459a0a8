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
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::matching::{Group, Matcher, Want};

/// Bytes of the trailer after every payload: the type fingerprint and a magic word.
pub(crate) const TRAILER: usize = 16;
const MAGIC: u64 = 0x7368_6d70_695f_6d31; // "shmpi_m1"
/// Sends up to this many bytes go out with `MPI_Send`, which returns at once for
/// messages the library sends eagerly; larger ones go through `MPI_Isend`.
const EAGER: usize = 4096;

/// An MPI communicator with shmpi's meaning.
pub(crate) struct Comm {
    pub(crate) env: Rc<Env>,
    pub(crate) raw: ffi::MPI_Comm,
    /// World ranks of the members (envelopes carry world ranks, as on the segment).
    pub(crate) group: Rc<Group>,
    pub(crate) rank: usize,
    /// Freed on drop (every communicator but the world and self).
    owned: bool,
    /// Messages received whose receive failed its check: still queued, oldest first.
    held: RefCell<VecDeque<(Envelope, AlignedVec)>>,
    pub(crate) reqs: RefCell<Table>,
}

fn trailer(type_id: u64) -> [u8; TRAILER] {
    let mut t = [0u8; TRAILER];
    t[..8].copy_from_slice(&type_id.to_le_bytes());
    t[8..].copy_from_slice(&MAGIC.to_le_bytes());
    t
}

/// A committed MPI datatype, freed on drop (MPI keeps it for operations in flight).
struct Datatype(ffi::MPI_Datatype);

impl Drop for Datatype {
    fn drop(&mut self) {
        // SAFETY: a committed datatype of ours; pending operations keep their own reference.
        unsafe { ffi::MPI_Type_free(&mut self.0) };
    }
}

/// The datatype of `len` bytes at `payload` then the trailer at `trailer`, addressed
/// from `MPI_BOTTOM`: one message without copying the payload next to its trailer.
fn two_blocks(payload: *const u8, len: usize, trailer: *const u8) -> Result<Datatype> {
    let len = c_int::try_from(len).map_err(|_| {
        Error::Usage(format!(
            "a message of {len} bytes is larger than one MPI message can be (2 GiB)"
        ))
    })?;
    let (mut a0, mut a1): (ffi::MPI_Aint, ffi::MPI_Aint) = (0, 0);
    // SAFETY: plain address queries.
    unsafe {
        ffi::MPI_Get_address(payload.cast(), &mut a0);
        ffi::MPI_Get_address(trailer.cast(), &mut a1);
    }
    let lens = [len, TRAILER as c_int];
    let displs = [a0, a1];
    // SAFETY: a handle is plain data, written by the call.
    let mut dt: ffi::MPI_Datatype = unsafe { std::mem::zeroed() };
    // SAFETY: two blocks of bytes; the arrays hold two entries each.
    let rc = unsafe {
        ffi::MPI_Type_create_hindexed(
            2,
            lens.as_ptr(),
            displs.as_ptr(),
            ffi::RSMPI_UINT8_T,
            &mut dt,
        )
    };
    check(rc, "MPI_Type_create_hindexed")?;
    let mut dt = Datatype(dt);
    // SAFETY: a datatype just created.
    let rc = unsafe { ffi::MPI_Type_commit(&mut dt.0) };
    check(rc, "MPI_Type_commit")?;
    Ok(dt)
}

/// A message's payload with its trailer appended.
pub(crate) fn with_trailer(mut bytes: AlignedVec, type_id: u64) -> AlignedVec {
    bytes.extend_from_slice(&type_id.to_le_bytes());
    bytes.extend_from_slice(&MAGIC.to_le_bytes());
    bytes
}

pub(crate) fn slice_with_trailer(data: &[u8], type_id: u64) -> AlignedVec {
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
        Ok(Rc::new(Comm {
            env,
            raw,
            group,
            rank: rank as usize,
            owned,
            held: RefCell::new(VecDeque::new()),
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

    /// Sends `payload` (with its trailer) to world rank `d`: returns once the message is
    /// on its way, never waiting for the receive unless `sync`.
    pub(crate) fn send(&self, d: usize, env: Envelope, payload: &[u8], sync: bool) -> Result<()> {
        if payload.len() > EAGER {
            // Large: straight from the caller's slice, the trailer beside it.
            let trailer = trailer(env.type_id);
            let dt = two_blocks(payload.as_ptr(), payload.len(), trailer.as_ptr())?;
            // SAFETY: a handle is plain data, written by the call.
            let mut r: ffi::MPI_Request = unsafe { std::mem::zeroed() };
            let dest = self.local(d);
            // SAFETY: `dt` names the bytes of `payload` and `trailer` by address, both
            // alive until the request finishes below (this call does not return before).
            let rc = unsafe {
                if sync {
                    ffi::MPI_Issend(std::ptr::null(), 1, dt.0, dest, env.tag, self.raw, &mut r)
                } else {
                    ffi::MPI_Isend(std::ptr::null(), 1, dt.0, dest, env.tag, self.raw, &mut r)
                }
            };
            drop(dt);
            check(rc, "MPI_Isend")?;
            return self.finish_send(r, sync);
        }
        let msg = slice_with_trailer(payload, env.type_id);
        self.send_msg(d, env.tag, msg, sync)
    }

    /// [`send`](Self::send) of an archive, which gets its trailer in place.
    pub(crate) fn send_archive(
        &self,
        d: usize,
        env: Envelope,
        bytes: AlignedVec,
        sync: bool,
    ) -> Result<()> {
        self.send_msg(d, env.tag, with_trailer(bytes, env.type_id), sync)
    }

    fn send_msg(&self, d: usize, tag: i32, msg: AlignedVec, sync: bool) -> Result<()> {
        let dest = self.local(d);
        if !sync && msg.len() <= EAGER {
            // SAFETY: `msg` holds `len` bytes and outlives the blocking call.
            let rc = unsafe {
                ffi::MPI_Send(
                    msg.as_ptr().cast::<c_void>(),
                    msg.len() as c_int,
                    ffi::RSMPI_UINT8_T,
                    dest,
                    tag,
                    self.raw,
                )
            };
            return check(rc, "MPI_Send");
        }
        let r = self.start_send(dest, tag, &msg, sync)?;
        self.finish_send(r, sync)
    }

    /// Waits for a send: a standard one receives what arrives meanwhile, so that two
    /// ranks sending each other large messages both finish (see the module docs).
    fn finish_send(&self, mut r: ffi::MPI_Request, sync: bool) -> Result<()> {
        loop {
            if super::test_raw(&mut r)? {
                return Ok(());
            }
            if !sync {
                self.pull_one()?;
            } else {
                // A synchronous send must not receive for the program; it only waits.
                super::wait_raw(&mut r)?;
                return Ok(());
            }
        }
    }

    /// Starts a send of `msg` (`MPI_Isend`/`MPI_Issend`); the caller keeps `msg` alive
    /// until the request finishes.
    pub(crate) fn start_send(
        &self,
        dest: c_int,
        tag: i32,
        msg: &AlignedVec,
        sync: bool,
    ) -> Result<ffi::MPI_Request> {
        if msg.len() > c_int::MAX as usize {
            return Err(Error::Usage(format!(
                "a message of {} bytes is larger than one MPI message can be (2 GiB)",
                msg.len() - TRAILER
            )));
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

    /// Moves one incoming message, if there is one, into the held queue.
    fn pull_one(&self) -> Result<()> {
        if let Some(st) = self.iprobe_mpi(any_source(), any_tag())? {
            let m = self.receive(&st)?;
            self.held.borrow_mut().push_back(m);
        }
        Ok(())
    }

    // ---- receives -------------------------------------------------------------------

    fn iprobe_mpi(&self, src: c_int, tag: c_int) -> Result<Option<ffi::MPI_Status>> {
        let mut flag: c_int = 0;
        // SAFETY: plain data written by the call.
        let mut st: ffi::MPI_Status = unsafe { std::mem::zeroed() };
        // SAFETY: valid communicator and status pointer.
        let rc = unsafe { ffi::MPI_Iprobe(src, tag, self.raw, &mut flag, &mut st) };
        check(rc, "MPI_Iprobe")?;
        Ok((flag != 0).then_some(st))
    }

    fn probe_mpi(&self, src: c_int, tag: c_int) -> Result<ffi::MPI_Status> {
        // SAFETY: plain data written by the call.
        let mut st: ffi::MPI_Status = unsafe { std::mem::zeroed() };
        // SAFETY: valid communicator and status pointer.
        let rc = unsafe { ffi::MPI_Probe(src, tag, self.raw, &mut st) };
        check(rc, "MPI_Probe")?;
        Ok(st)
    }

    fn count(st: &ffi::MPI_Status) -> Result<usize> {
        let mut n: c_int = 0;
        // SAFETY: `st` came from a probe.
        let rc = unsafe { ffi::MPI_Get_count(st, ffi::RSMPI_UINT8_T, &mut n) };
        check(rc, "MPI_Get_count")?;
        if n < TRAILER as c_int {
            return Err(Error::Corrupted(format!(
                "an MPI message of {n} bytes from rank {} is not one of shmpi's (it has no \
                 trailer): every rank must use shmpi on this communicator",
                st.MPI_SOURCE
            )));
        }
        Ok(n as usize)
    }

    /// Receives the probed message `st` whole: its envelope and payload.
    fn receive(&self, st: &ffi::MPI_Status) -> Result<(Envelope, AlignedVec)> {
        let n = Self::count(st)?;
        let mut buf = AlignedVec::with_capacity(n);
        buf.resize(n, 0);
        // SAFETY: `buf` holds `n` bytes; the source and tag are those of the probed
        // message, which is the earliest such message, so this receive takes it.
        let rc = unsafe {
            ffi::MPI_Recv(
                buf.as_mut_ptr().cast::<c_void>(),
                n as c_int,
                ffi::RSMPI_UINT8_T,
                st.MPI_SOURCE,
                st.MPI_TAG,
                self.raw,
                ffi::RSMPI_STATUS_IGNORE,
            )
        };
        check(rc, "MPI_Recv")?;
        let len = n - TRAILER;
        let word = |i: usize| {
            u64::from_le_bytes(
                buf[len + 8 * i..len + 8 * i + 8]
                    .try_into()
                    .expect("8 bytes"),
            )
        };
        let (type_id, magic) = (word(0), word(1));
        if magic != MAGIC {
            return Err(Error::Corrupted(format!(
                "an MPI message from rank {} with tag {} is not one of shmpi's (bad trailer)",
                st.MPI_SOURCE, st.MPI_TAG
            )));
        }
        buf.resize(len, 0);
        let env = Envelope {
            ctx: 0,
            src: self.group.ranks[st.MPI_SOURCE as usize],
            tag: st.MPI_TAG,
            len,
            type_id,
        };
        Ok((env, buf))
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
        self.progress_pending()?;
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
        let (src, tag) = self.src_tag(m);
        let st = if block && !self.reqs.borrow().has_pending_recv() {
            self.probe_mpi(src, tag)?
        } else {
            loop {
                if let Some(st) = self.iprobe_mpi(src, tag)? {
                    break st;
                }
                if !block {
                    return Ok(None);
                }
                // Receives posted earlier take their messages first.
                self.progress_pending()?;
                if let Some(got) = self.take_held(m, None)? {
                    // Only a pending receive's failed check can have put it there.
                    self.held.borrow_mut().push_front(got);
                    return self.take_now(m, want, block);
                }
            }
        };
        let (env, data) = self.receive(&st)?;
        if let Some(w) = want {
            if let Err(e) = self.check(w, &env, &data) {
                self.held.borrow_mut().push_back((env, data));
                return Err(e);
            }
        }
        Ok(Some((env, data)))
    }

    fn take_held(
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
        self.progress_pending()?;
        if let Some((e, _)) = self.held.borrow().iter().find(|(e, _)| Self::matches(m, e)) {
            return Ok(Some(*e));
        }
        let (src, tag) = self.src_tag(m);
        let st = if block {
            loop {
                if let Some(st) = self.iprobe_mpi(src, tag)? {
                    break st;
                }
                if !self.reqs.borrow().has_pending_recv() {
                    break self.probe_mpi(src, tag)?;
                }
                self.progress_pending()?;
                if let Some((e, _)) = self.held.borrow().iter().find(|(e, _)| Self::matches(m, e)) {
                    return Ok(Some(*e));
                }
            }
        } else {
            match self.iprobe_mpi(src, tag)? {
                Some(st) => st,
                None => return Ok(None),
            }
        };
        let n = Self::count(&st)?;
        // The trailer holds the type; reading it means receiving the message, so a
        // probe keeps it, received, at the back of the held queue (the front of what is
        // left of its sender's messages).
        let got = self.receive(&st)?;
        debug_assert_eq!(got.0.len, n - TRAILER);
        let env = got.0;
        self.held.borrow_mut().push_back(got);
        Ok(Some(env))
    }

    /// A blocking slice receive into `buf`: the envelope of the message it took.
    pub(crate) fn recv_into(&self, m: &Matcher, want: &Want, buf: &mut [u8]) -> Result<Envelope> {
        self.progress_pending()?;
        let held = self.held.borrow().iter().any(|(e, _)| Self::matches(m, e));
        if !held && !self.reqs.borrow().has_pending_recv() {
            let (src, tag) = self.src_tag(m);
            let st = self.probe_mpi(src, tag)?;
            let len = Self::count(&st)? - TRAILER;
            if len > EAGER && len <= buf.len() {
                return self.recv_direct(&st, len, want, buf);
            }
            let (env, data) = self.receive(&st)?;
            if let Err(e) = self.check(want, &env, &data) {
                self.held.borrow_mut().push_back((env, data));
                return Err(e);
            }
            buf[..data.len()].copy_from_slice(&data);
            return Ok(env);
        }
        let (env, data) = self
            .take(m, Some(want), true)?
            .expect("a blocking take returns a message");
        buf[..data.len()].copy_from_slice(&data);
        Ok(env)
    }

    /// Receives the probed message `st` of `len` payload bytes straight into `buf`. If
    /// it fails `want`'s check, its bytes go to the held queue (the message stays
    /// queued) and `buf`'s first `len` bytes are left overwritten.
    fn recv_direct(
        &self,
        st: &ffi::MPI_Status,
        len: usize,
        want: &Want,
        buf: &mut [u8],
    ) -> Result<Envelope> {
        let mut t = [0u8; TRAILER];
        // The addresses come from mutable borrows: MPI writes through them.
        let dt = two_blocks(buf.as_mut_ptr(), len, t.as_mut_ptr())?;
        // SAFETY: `dt` names `len` bytes of `buf` and the trailer array, both alive and
        // writable for the blocking call; source and tag are the probed message's.
        let rc = unsafe {
            ffi::MPI_Recv(
                std::ptr::null_mut(),
                1,
                dt.0,
                st.MPI_SOURCE,
                st.MPI_TAG,
                self.raw,
                ffi::RSMPI_STATUS_IGNORE,
            )
        };
        drop(dt);
        check(rc, "MPI_Recv")?;
        let word = |i: usize| u64::from_le_bytes(t[8 * i..8 * i + 8].try_into().expect("8 bytes"));
        if word(1) != MAGIC {
            return Err(Error::Corrupted(format!(
                "an MPI message from rank {} with tag {} is not one of shmpi's (bad trailer)",
                st.MPI_SOURCE, st.MPI_TAG
            )));
        }
        let env = Envelope {
            ctx: 0,
            src: self.group.ranks[st.MPI_SOURCE as usize],
            tag: st.MPI_TAG,
            len,
            type_id: word(0),
        };
        let mut data = AlignedVec::with_capacity(len);
        if let Err(e) = want.check(&env, st.MPI_SOURCE, || {
            data.extend_from_slice(&buf[..len]);
            codec::sent_type_name(&data, env.type_id)
        }) {
            if data.is_empty() && len > 0 {
                data.extend_from_slice(&buf[..len]);
            }
            self.held.borrow_mut().push_back((env, data));
            return Err(e);
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
    ) -> Result<Envelope> {
        let msg = slice_with_trailer(payload, env.type_id);
        let mut r = self.start_send(self.local(d), env.tag, &msg, false)?;
        let got = self.recv_into(m, want, buf);
        let sent = super::wait_raw(&mut r);
        let got = got?;
        sent?;
        Ok(got)
    }

    // ---- non-blocking ---------------------------------------------------------------

    /// Starts a non-blocking send of `msg` (payload and trailer) whose request owns it;
    /// `give` is the caller's vector, handed back at completion.
    pub(crate) fn isend(
        &self,
        d: usize,
        tag: i32,
        msg: AlignedVec,
        give: Option<PodVec>,
        sync: bool,
    ) -> Result<u64> {
        let r = self.start_send(self.local(d), tag, &msg, sync)?;
        Ok(self.reqs.borrow_mut().add_send(r, msg, give))
    }

    /// Posts a non-blocking receive (matched when tested, waited on, or when a later
    /// receive or probe runs).
    pub(crate) fn irecv(&self, m: Matcher, want: Want, buf: Option<PodVec>) -> Result<u64> {
        let id = self.reqs.borrow_mut().add_recv(m, want, buf);
        // It may match at once; that keeps posting order among receives.
        self.progress_pending()?;
        Ok(id)
    }

    /// Tries every pending non-blocking receive once, in posting order.
    pub(crate) fn progress_pending(&self) -> Result<()> {
        let ids = self.reqs.borrow().pending_recvs();
        // Receives that found nothing this pass: a message that arrives meanwhile and
        // that one of them matches is theirs (the earliest posted), not a later one's.
        let mut missed: Vec<(u64, Matcher, Want)> = Vec::new();
        for id in ids {
            let Some((m, want)) = self.reqs.borrow().recv_args(id) else {
                continue;
            };
            let Some((env, data)) = self.take_now(&m, None, false)? else {
                missed.push((id, m, want));
                continue;
            };
            let (to, want) = match missed.iter().position(|(_, mj, _)| Self::matches(mj, &env)) {
                Some(j) => {
                    let (jd, _, wj) = missed.remove(j);
                    missed.push((id, m, want));
                    (jd, wj)
                }
                None => (id, want),
            };
            let done = match self.check(&want, &env, &data) {
                Ok(()) => Ok((env, data)),
                Err(e) => {
                    self.held.borrow_mut().push_back((env, data));
                    Err(e)
                }
            };
            self.reqs.borrow_mut().finish_recv(to, done);
        }
        Ok(())
    }
}

impl Drop for Comm {
    fn drop(&mut self) {
        for (r, buf) in self.reqs.get_mut().take_sends() {
            self.env.adopt(r, buf);
        }
        if self.owned {
            // SAFETY: this communicator is ours and no handle on it remains; MPI frees it
            // once the sends still in flight on it have finished.
            unsafe { ffi::MPI_Comm_free(&mut self.raw) };
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
