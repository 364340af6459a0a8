//! The MPI backend (cargo feature `mpi`): the same [`Communicator`]
//! over a system MPI (Open MPI, MPICH) through rsmpi's `mpi` crate, for programs
//! started by `mpirun`/`mpiexec`, on one machine or a cluster.
//!
//! `init()` picks the backend at run time ([`wanted`]): the shared segment when
//! started by `shmrun`, MPI when started by an MPI launcher (Open MPI's
//! `OMPI_COMM_WORLD_SIZE`, PMIx's `PMIX_RANK`, Hydra's `PMI_RANK`), a singleton
//! otherwise; `SHMPI_BACKEND=mpi|shm` overrides the guess.
//!
//! How the meaning of each call is kept:
//! - A message of up to 4 KiB is one MPI message of bytes: the payload, then a 16-byte
//!   trailer (the object type's fingerprint, 0 for plain data, and a magic word; the
//!   payload comes first so that a received archive starts at the buffer's aligned
//!   start). Plain data goes bare, without the trailer, unless its last 8 bytes are one
//!   of the magic words, so that its end is never taken for a trailer or a head (at 8
//!   bytes it then fills one of Open MPI's 32-byte shared-memory slots, not two). A
//!   larger message is two: a 32-byte head on the communicator under the message's tag
//!   (type, length, the payload's tag), then its payload, contiguous, on a twin of the
//!   communicator (its group, a context of its own) under a tag of its own, so that the
//!   MPI can use its single-copy or zero-copy path (the head first, so that the
//!   receiver has usually posted the payload's receive when the payload comes). Every
//!   message on the communicator thus fits a 4 KiB buffer, and a receive needs no
//!   probe: it receives into that buffer, checks, then copies (small) or receives the
//!   payload straight into the caller's slice.
//! - A message that fails a receive's check (a type mismatch, a truncation, a bad
//!   element size) is kept, whole, in this communicator's *held* queue, which every
//!   later receive and probe looks at before MPI's queue, so it stays queued as on the
//!   shared segment (a held message is older than anything MPI still holds from its
//!   sender, so the non-overtaking order is kept). A probe receives the message it
//!   finds into the held queue, as its length and type are inside it.
//! - Sends never wait for their receive, as on the segment: a large send's payload
//!   needs a posted receive, so no rank ever blocks inside MPI for a point-to-point call:
//!   every wait (a blocking receive, probe or send, a request's wait, a loop of tests)
//!   polls, and every 16th turn receives into vectors of their own the payloads that came
//!   on the twin ahead of their heads, where the heads' receives find them. Whatever its
//!   receiver waits for (a later message of the sender, another rank), a large send
//!   finishes; only a rank inside one of MPI's blocking collectives takes nothing in.
//!   A large synchronous send sends its head with `MPI_Issend` and its payload, copied,
//!   as a standard send, so that it still waits for a receive to take the head.
//! - Non-blocking requests own their buffers: the raw `MPI_Request` is kept with its
//!   buffer in the communicator's request table ([`req`]); a dropped or forgotten send
//!   moves on until every rank has left, its buffer kept after if it never finished; a non-blocking receive is posted in MPI at once
//!   (its message's first part into a stage of its own), so MPI matches receives in
//!   posting order, and dropping one that has matched nothing cancels it.
//! - Collectives of plain data with a built-in op on a machine type run as the MPI
//!   collective with MPI's op and datatype; closures, `MinLoc`/`MaxLoc` pairs and
//!   object reductions gather the contributions and combine them in rank order. The
//!   non-blocking collectives are MPI's own ([`nbc`]), kept with their vectors.
//! - Persistent requests start an `MPI_Isend` or a posted receive per start, the
//!   vector moving into the request table and back.
//! - Every communicator has `MPI_ERRORS_RETURN`: an MPI error is an [`Error`] naming
//!   the MPI call and MPI's own message.
//! - A rank that finishes tells the others ([`leave`]): a wait on it fails with
//!   [`Error::PeerFailed`] as on the segment, and sends never received do not hold the
//!   job at its end.
//!
//! What differs (see docs/cluster.md): a rank that dies ends the job through the MPI
//! launcher (Open MPI and MPICH abort the other ranks), mismatched collectives are
//! not detected (MPI's behaviour is undefined: they may hang or fail), shared windows
//! are refused, and a receive posted before an earlier one failed its check may have
//! taken a later message than the refused one (which stays queued).

#![allow(unsafe_code)]

pub(crate) mod coll;
pub(crate) mod leave;
pub(crate) mod nbc;
pub(crate) mod p2p;
pub(crate) mod req;

use std::cell::RefCell;
use std::ffi::c_int;
use std::rc::Rc;

use ::mpi::ffi;

use crate::error::{Error, ErrorClass, Result};

pub(crate) use p2p::Comm;

/// Environment variable: `mpi` or `shm` forces the backend.
pub(crate) const ENV_BACKEND: &str = "SHMPI_BACKEND";

/// Whether `init()` should use MPI: `SHMPI_BACKEND` if set, else whether an MPI
/// launcher started this process (and `shmrun` did not).
pub(crate) fn wanted() -> Result<bool> {
    match std::env::var(ENV_BACKEND).as_deref() {
        Ok("mpi") => return Ok(true),
        Ok("shm") => return Ok(false),
        Ok(other) => {
            return Err(Error::Init(format!(
                "{ENV_BACKEND}={other:?}: the backend is `mpi` or `shm` (unset: chosen from \
                 the launcher's environment)"
            )));
        }
        Err(_) => {}
    }
    if std::env::var_os(crate::init::ENV_FD).is_some() {
        return Ok(false);
    }
    Ok(
        ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"]
            .iter()
            .any(|v| std::env::var_os(v).is_some()),
    )
}

/// The MPI library of this process: initialized once, finalized when the last
/// communicator is dropped, after every receive still in flight has finished and every
/// other rank has left (`leave`).
pub(crate) struct Env {
    /// Operations whose requests or communicators were dropped before they finished,
    /// with what they read or write.
    orphans: RefCell<Vec<Adopted>>,
    /// The next context id this process would give a new communicator.
    next_ctx: std::cell::Cell<u32>,
    /// Which ranks have left the job.
    pub(crate) departures: leave::Departures,
    universe: Option<::mpi::environment::Universe>,
}

/// An orphaned operation: its request, what it reads or writes, and what it waits for.
pub(crate) type Adopted = (ffi::MPI_Request, Box<dyn std::any::Any>, Orphan);

/// What an orphaned operation waits for, which decides when a leaving rank waits for it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Orphan {
    /// A payload on its way in, whose head has come: its sender finishes it, so it is
    /// waited for before this rank tells the others it leaves.
    Recv,
    /// A send, or a collective: it finishes once other ranks take part, which they may
    /// never do; it moves on until every rank has left, then its buffers are kept.
    Other,
}

impl Env {
    pub(crate) fn init() -> Result<Rc<Env>> {
        let universe = ::mpi::initialize()
            .ok_or_else(|| Error::Init("MPI was already initialized in this process".into()))?;
        // SAFETY: MPI is initialized; the handles are the library's predefined ones.
        let rc = unsafe {
            ffi::MPI_Comm_set_errhandler(ffi::RSMPI_COMM_WORLD, ffi::RSMPI_ERRORS_RETURN)
        };
        check(rc, "MPI_Comm_set_errhandler")?;
        // SAFETY: as above.
        let rc =
            unsafe { ffi::MPI_Comm_set_errhandler(ffi::RSMPI_COMM_SELF, ffi::RSMPI_ERRORS_RETURN) };
        check(rc, "MPI_Comm_set_errhandler")?;
        Ok(Rc::new(Env {
            orphans: RefCell::new(Vec::new()),
            next_ctx: std::cell::Cell::new(1),
            departures: leave::Departures::new()?,
            universe: Some(universe),
        }))
    }

    /// Keeps an operation in flight (and its buffer) until it finishes or MPI finalizes.
    pub(crate) fn adopt(&self, req: ffi::MPI_Request, buf: Box<dyn std::any::Any>, kind: Orphan) {
        let mut o = self.orphans.borrow_mut();
        o.push((req, buf, kind));
        // Finished ones are released now and then, so the list stays short.
        if o.len() >= 64 {
            drop_finished(&mut o);
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // MPI_Finalize waits for the other ranks, which may wait for this one: a
            // rank that panicked ends the job instead (its message is printed already).
            eprintln!("shmpi: this rank panicked; aborting the MPI job (MPI_Abort)");
            // SAFETY: MPI is initialized; MPI_Abort ends the process.
            unsafe { ffi::MPI_Abort(ffi::RSMPI_COMM_WORLD, 101) };
        }
        let mut orphans = std::mem::take(self.orphans.get_mut());
        for (r, _buf, kind) in &mut orphans {
            if *kind == Orphan::Recv {
                // SAFETY: `r` is an active request whose buffer `_buf` lives until after it.
                unsafe { ffi::MPI_Wait(r, ffi::RSMPI_STATUS_IGNORE) };
            }
        }
        let left = self.departures.leave(|| drop_finished(&mut orphans));
        if let Err(e) = left {
            eprintln!("shmpi: leaving the MPI job: {e}");
        }
        // What is still in flight will never finish (no rank receives any more): MPI
        // may still hold its requests, so their buffers are kept, not freed.
        std::mem::forget(orphans);
        drop(self.universe.take()); // MPI_Finalize
    }
}

/// Releases the orphans whose requests have finished (one that fails its test too).
fn drop_finished(orphans: &mut Vec<Adopted>) {
    orphans.retain_mut(|(r, ..)| !test_raw(r).unwrap_or(true));
}

/// Whether request `r` has finished (`MPI_Test`); a finished request becomes null.
pub(crate) fn test_raw(r: &mut ffi::MPI_Request) -> Result<bool> {
    let mut flag: c_int = 0;
    // SAFETY: `r` is a request handle (active or null); status is ignored.
    let rc = unsafe { ffi::MPI_Test(r, &mut flag, ffi::RSMPI_STATUS_IGNORE) };
    check(rc, "MPI_Test")?;
    Ok(flag != 0)
}

/// Waits for request `r` (`MPI_Wait`).
pub(crate) fn wait_raw(r: &mut ffi::MPI_Request) -> Result<()> {
    // SAFETY: `r` is a request handle (active or null); status is ignored.
    let rc = unsafe { ffi::MPI_Wait(r, ffi::RSMPI_STATUS_IGNORE) };
    check(rc, "MPI_Wait")
}

/// An MPI return code as a `Result`, with MPI's message.
#[inline]
pub(crate) fn check(rc: c_int, call: &str) -> Result<()> {
    if rc == ffi::MPI_SUCCESS as c_int {
        return Ok(());
    }
    failed(rc, call)
}

/// The error of a failed MPI call (kept out of line: every message checks a code).
#[cold]
#[inline(never)]
fn failed(rc: c_int, call: &str) -> Result<()> {
    let mut buf = vec![0 as std::ffi::c_char; ffi::MPI_MAX_ERROR_STRING as usize + 1];
    let mut len: c_int = 0;
    let mut class: c_int = 0;
    // SAFETY: the buffer holds MPI_MAX_ERROR_STRING characters, as the call requires.
    unsafe {
        ffi::MPI_Error_string(rc, buf.as_mut_ptr(), &mut len);
        ffi::MPI_Error_class(rc, &mut class);
    }
    let bytes: Vec<u8> = buf[..len.max(0) as usize]
        .iter()
        .map(|&c| c as u8)
        .collect();
    let msg = String::from_utf8_lossy(&bytes);
    let ours = if class == ffi::MPI_ERR_TRUNCATE as c_int {
        ErrorClass::Truncate
    } else if class == ffi::MPI_ERR_RANK as c_int {
        ErrorClass::Rank
    } else if class == ffi::MPI_ERR_COMM as c_int {
        ErrorClass::Comm
    } else {
        ErrorClass::Other
    };
    Error::invalid(
        ours,
        format!("{call} failed in the MPI library: {msg} (MPI error class {class})"),
    )
    .into_err()
}

trait IntoErr {
    fn into_err(self) -> Result<()>;
}

impl IntoErr for Error {
    fn into_err(self) -> Result<()> {
        Err(self)
    }
}

/// The error of a call the MPI backend does not provide.
pub(crate) fn unsupported(call: &str, why: &str) -> Error {
    Error::Usage(format!("{call} is not available on the MPI backend: {why}"))
}

// ---- communicators ---------------------------------------------------------------------

use std::cell::Cell;

use crate::comm::{CommInner, Communicator};
use crate::matching::Group;

/// `init()` on the MPI backend: `MPI_Init`, and the world over `MPI_COMM_WORLD`. A
/// private singleton of the shared segment stands behind the handles' unused parts.
pub(crate) fn init_universe() -> Result<crate::init::Universe> {
    let local = crate::init::attach_or_singleton()?.world();
    let env = Env::init()?;
    let mut n: c_int = 0;
    // SAFETY: MPI is initialized; the world communicator is predefined.
    let rc = unsafe { ffi::MPI_Comm_size(ffi::RSMPI_COMM_WORLD, &mut n) };
    check(rc, "MPI_Comm_size")?;
    let group = Rc::new(Group::world(n as usize));
    // SAFETY: as above.
    let mc = Comm::new(env, unsafe { ffi::RSMPI_COMM_WORLD }, group, false)?;
    Ok(crate::init::universe_of(wrap(&local, mc, 0)))
}

/// A [`Communicator`] handle over MPI communicator `mc`.
pub(crate) fn wrap(local: &Communicator, mc: Rc<Comm>, ctx: u32) -> Communicator {
    let group = mc.group.clone();
    wrap_with(local, mc, ctx, group)
}

/// [`wrap`] with `group` as the communicator's own group (an intercommunicator's
/// local group; `mc`'s is the group its point-to-point calls name).
fn wrap_with(local: &Communicator, mc: Rc<Comm>, ctx: u32, group: Rc<Group>) -> Communicator {
    let i = &local.inner;
    Communicator {
        inner: Rc::new(CommInner {
            eng: i.eng.clone(),
            ctx,
            peers: mc.group.clone(),
            wrank: group.ranks[mc.rank],
            group,
            inter: None,
            rank: mc.rank,
            coll: i.coll.clone(),
            area: i.area.clone(),
            step: Cell::new(1),
            broken: Cell::new(false),
            mpi: Some(mc),
        }),
    }
}

impl Env {
    /// A context id for a new communicator of `parent`'s members, the same at each of
    /// them (the largest next id among them), as MPI agrees on contexts.
    fn agree_ctx(&self, parent: &Comm) -> Result<u32> {
        let mine = [self.next_ctx.get() as u64];
        let mut all = [0u64];
        // SAFETY: one u64 each way; predefined datatype and op.
        let rc = unsafe {
            ffi::MPI_Allreduce(
                mine.as_ptr().cast(),
                all.as_mut_ptr().cast(),
                1,
                ffi::RSMPI_UINT64_T,
                ffi::RSMPI_MAX,
                parent.raw,
            )
        };
        check(rc, "MPI_Allreduce")?;
        self.next_ctx.set(all[0] as u32 + 1);
        Ok(all[0] as u32)
    }
}

/// `dup` on the MPI backend (`MPI_Comm_dup`).
pub(crate) fn dup(c: &Communicator, mc: &Rc<Comm>) -> Result<Communicator> {
    if c.is_inter() {
        return dup_inter(c, mc);
    }
    let ctx = mc.env.agree_ctx(mc)?;
    // SAFETY: a handle is plain data, written by the call.
    let mut raw: ffi::MPI_Comm = unsafe { std::mem::zeroed() };
    // SAFETY: a valid communicator.
    let rc = unsafe { ffi::MPI_Comm_dup(mc.raw, &mut raw) };
    check(rc, "MPI_Comm_dup")?;
    let new = Comm::new(mc.env.clone(), raw, mc.group.clone(), true)?;
    Ok(wrap(c, new, ctx))
}

/// `split` on the MPI backend (`MPI_Comm_split`).
pub(crate) fn split(
    c: &Communicator,
    mc: &Rc<Comm>,
    color: i32,
    key: i32,
) -> Result<Option<Communicator>> {
    if color < 0 && color != crate::collective::comms::UNDEFINED {
        return Err(Error::Usage(format!(
            "split: the color must be non-negative or UNDEFINED, not {color}"
        )));
    }
    let ctx = mc.env.agree_ctx(mc)?;
    // SAFETY: a handle is plain data, written by the call.
    let mut raw: ffi::MPI_Comm = unsafe { std::mem::zeroed() };
    // SAFETY: reading a predefined constant.
    let undefined = unsafe { ffi::RSMPI_UNDEFINED };
    let color = if color < 0 { undefined } else { color };
    // SAFETY: a valid communicator.
    let rc = unsafe { ffi::MPI_Comm_split(mc.raw, color, key, &mut raw) };
    check(rc, "MPI_Comm_split")?;
    // SAFETY: reading a predefined constant.
    if raw == unsafe { ffi::RSMPI_COMM_NULL } {
        return Ok(None);
    }
    let group = members(raw, c.world_rank() as usize, mc.group.inv.len())?;
    let new = Comm::new(mc.env.clone(), raw, group, true)?;
    Ok(Some(wrap(c, new, ctx)))
}

/// The world ranks of the members of a new intracommunicator `raw`, in its order
/// (each member gives its own: collective over `raw`).
fn members(raw: ffi::MPI_Comm, me: usize, world_n: usize) -> Result<Rc<Group>> {
    let mut n: c_int = 0;
    // SAFETY: a valid communicator.
    check(unsafe { ffi::MPI_Comm_size(raw, &mut n) }, "MPI_Comm_size")?;
    let me = [me as u64];
    let mut ranks = vec![0u64; n as usize];
    // SAFETY: one u64 from each of the n members into `ranks`.
    let rc = unsafe {
        ffi::MPI_Allgather(
            me.as_ptr().cast(),
            1,
            ffi::RSMPI_UINT64_T,
            ranks.as_mut_ptr().cast(),
            1,
            ffi::RSMPI_UINT64_T,
            raw,
        )
    };
    check(rc, "MPI_Allgather")?;
    Ok(Rc::new(Group::new(
        ranks.iter().map(|&r| r as usize).collect(),
        world_n,
    )))
}

/// `create_group` on the MPI backend (`MPI_Comm_create_group`), of the members with
/// world ranks `members`, in that order.
pub(crate) fn create_group(
    c: &Communicator,
    mc: &Rc<Comm>,
    members: &[usize],
    tag: crate::comm::Tag,
) -> Result<Communicator> {
    let ranks: Vec<c_int> = members.iter().map(|&w| mc.group.rank_of(w)).collect();
    // SAFETY: handles are plain data, written by the calls below.
    let (mut all, mut g, mut raw): (ffi::MPI_Group, ffi::MPI_Group, ffi::MPI_Comm) =
        unsafe { (std::mem::zeroed(), std::mem::zeroed(), std::mem::zeroed()) };
    // SAFETY: a valid communicator; `ranks` holds `ranks.len()` ranks of it (members
    // of a subgroup, checked by the caller); the groups are freed below.
    let rc = unsafe {
        check(ffi::MPI_Comm_group(mc.raw, &mut all), "MPI_Comm_group")?;
        let rc = ffi::MPI_Group_incl(all, ranks.len() as c_int, ranks.as_ptr(), &mut g);
        ffi::MPI_Group_free(&mut all);
        check(rc, "MPI_Group_incl")?;
        let rc = ffi::MPI_Comm_create_group(mc.raw, g, tag, &mut raw);
        ffi::MPI_Group_free(&mut g);
        rc
    };
    check(rc, "MPI_Comm_create_group")?;
    let group = Rc::new(Group::new(members.to_vec(), mc.group.inv.len()));
    let new = Comm::new(mc.env.clone(), raw, group, true)?;
    let ctx = mc.env.agree_ctx(&new)?;
    Ok(wrap(c, new, ctx))
}

/// `intercomm_create` on the MPI backend (`MPI_Intercomm_create`).
pub(crate) fn intercomm_create(
    c: &Communicator,
    mc: &Rc<Comm>,
    local_leader: crate::comm::Rank,
    peer: &Communicator,
    remote_leader: crate::comm::Rank,
    tag: crate::comm::Tag,
) -> Result<Communicator> {
    let Some(pc) = &peer.inner.mpi else {
        return Err(Error::Usage(
            "intercomm_create: the peer communicator is not an MPI one".into(),
        ));
    };
    // SAFETY: a handle is plain data, written by the call.
    let mut raw: ffi::MPI_Comm = unsafe { std::mem::zeroed() };
    // SAFETY: valid communicators; MPI checks the ranks and returns an error code.
    let rc = unsafe {
        ffi::MPI_Intercomm_create(mc.raw, local_leader, pc.raw, remote_leader, tag, &mut raw)
    };
    check(rc, "MPI_Intercomm_create")?;
    wrap_inter(c, mc, raw)
}

/// A handle over intercommunicator `raw`, whose local group is `c`'s: point-to-point
/// calls name the remote group, whose world ranks MPI translates (a local call).
fn wrap_inter(c: &Communicator, mc: &Rc<Comm>, raw: ffi::MPI_Comm) -> Result<Communicator> {
    // SAFETY: handles are plain data, written by the calls below.
    let (mut rg, mut wg): (ffi::MPI_Group, ffi::MPI_Group) =
        unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    let mut n: c_int = 0;
    // SAFETY: `raw` is a valid intercommunicator and the world is predefined; the
    // groups are freed below.
    unsafe {
        check(
            ffi::MPI_Comm_remote_group(raw, &mut rg),
            "MPI_Comm_remote_group",
        )?;
        check(
            ffi::MPI_Comm_group(ffi::RSMPI_COMM_WORLD, &mut wg),
            "MPI_Comm_group",
        )?;
        check(ffi::MPI_Group_size(rg, &mut n), "MPI_Group_size")?;
    }
    let idx: Vec<c_int> = (0..n).collect();
    let mut world = vec![0 as c_int; n as usize];
    // SAFETY: `idx` and `world` hold `n` ranks each; the groups are valid.
    let rc = unsafe { ffi::MPI_Group_translate_ranks(rg, n, idx.as_ptr(), wg, world.as_mut_ptr()) };
    // SAFETY: groups made above, freed once.
    unsafe {
        ffi::MPI_Group_free(&mut rg);
        ffi::MPI_Group_free(&mut wg);
    }
    check(rc, "MPI_Group_translate_ranks")?;
    let remote = Rc::new(Group::new(
        world.iter().map(|&w| w as usize).collect(),
        mc.group.inv.len(),
    ));
    let new = Comm::new(mc.env.clone(), raw, remote.clone(), true)?;
    // A context of this process's own: MPI matches an intercommunicator's messages,
    // and its two groups could not agree on one with an intracommunicator's reduction.
    let ctx = mc.env.next_ctx.get();
    mc.env.next_ctx.set(ctx + 1);
    let mut h = wrap_with(c, new, ctx, c.inner.group.clone());
    let inner = Rc::get_mut(&mut h.inner).expect("a handle just made");
    crate::intercomm::mpi_inter(inner, remote);
    Ok(h)
}

/// `merge` on the MPI backend (`MPI_Intercomm_merge`).
pub(crate) fn merge(c: &Communicator, mc: &Rc<Comm>, high: bool) -> Result<Communicator> {
    // SAFETY: a handle is plain data, written by the call.
    let mut raw: ffi::MPI_Comm = unsafe { std::mem::zeroed() };
    // SAFETY: a valid intercommunicator.
    let rc = unsafe { ffi::MPI_Intercomm_merge(mc.raw, c_int::from(high), &mut raw) };
    check(rc, "MPI_Intercomm_merge")?;
    let group = members(raw, c.world_rank() as usize, mc.group.inv.len())?;
    let new = Comm::new(mc.env.clone(), raw, group, true)?;
    let ctx = mc.env.agree_ctx(&new)?;
    Ok(wrap(c, new, ctx))
}

/// `dup` of an intercommunicator on the MPI backend (`MPI_Comm_dup`).
fn dup_inter(c: &Communicator, mc: &Rc<Comm>) -> Result<Communicator> {
    // SAFETY: a handle is plain data, written by the call.
    let mut raw: ffi::MPI_Comm = unsafe { std::mem::zeroed() };
    // SAFETY: a valid communicator.
    let rc = unsafe { ffi::MPI_Comm_dup(mc.raw, &mut raw) };
    check(rc, "MPI_Comm_dup")?;
    wrap_inter(c, mc, raw)
}

/// `self_comm` on the MPI backend: a duplicate of `MPI_COMM_SELF`.
pub(crate) fn self_comm(c: &Communicator, mc: &Rc<Comm>) -> Communicator {
    let me = mc.group.ranks[mc.rank];
    let group = Rc::new(Group::new(vec![me], mc.group.inv.len()));
    // SAFETY: a handle is plain data, written by the call.
    let mut raw: ffi::MPI_Comm = unsafe { std::mem::zeroed() };
    // SAFETY: the predefined self communicator.
    let rc = unsafe { ffi::MPI_Comm_dup(ffi::RSMPI_COMM_SELF, &mut raw) };
    let (raw, owned) = if rc == ffi::MPI_SUCCESS as c_int {
        (raw, true)
    } else {
        // SAFETY: reading a predefined handle; it is never freed.
        (unsafe { ffi::RSMPI_COMM_SELF }, false)
    };
    let ctx = mc.env.next_ctx.get();
    mc.env.next_ctx.set(ctx + 1);
    match Comm::new(mc.env.clone(), raw, group, owned) {
        Ok(new) => wrap(c, new, ctx),
        // The rank of a valid communicator cannot fail to be read; keep the world.
        Err(_) => c.clone(),
    }
}
