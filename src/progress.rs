//! The progress engine: one per process. It owns this rank's ends of all rings, the
//! matching state and the queued sends, and it is the only code that moves bytes.
//!
//! [`Engine::progress`] makes one pass:
//! 1. drain every incoming ring in rank order `0, 1, ..., N-1` (at most one ring's
//!    capacity of bytes per ring per pass, so one busy sender cannot starve the others),
//!    delivering each record to a posted receive, the blocking receive in progress, or
//!    the unexpected queue; then wake any sender that sleeps waiting for ring space.
//!    Once the blocking receive in progress has its whole message, the rest of that
//!    ring is left for the next call (it would only be copied into the unexpected
//!    queue: an allocation and a second copy per message);
//! 2. push queued (non-blocking) sends, per destination in order.
//!
//! Every blocked call runs this in a loop (spin, yield, sleep: `doorbell.rs`). Because a
//! blocked call keeps draining its incoming rings into the unexpected queue, a send
//! never waits for a matching receive, only for ring space that the receiver frees as
//! soon as it makes progress: two ranks that send each other large messages before
//! receiving cannot deadlock.
//!
//! A message that does not fit in one record (`eager_max`) streams in chunks through
//! the same ring; the receiver copies each chunk straight into its destination.
//!
//! Fast paths skip the pass where nothing else could claim the message: a blocking
//! send or a non-blocking one pushes a whole small message as one record
//! (`Producer::try_push_whole`); a blocking receive from a named peer first polls that
//! ring alone (`try_recv_whole`); a wait on the earliest posted receive takes its whole
//! message straight from its source's ring (`take_posted_whole`).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;
use std::sync::atomic::Ordering;

use rkyv::util::AlignedVec;

use crate::codec::{PodVec, sent_type_name};
use crate::completions::Completions;
use crate::doorbell::{self, Backoff, Phase};
use crate::envelope::{Envelope, Kind, decode_start, start_words, unpack_ctx_tag};
use crate::error::{Error, Result};
use crate::matching::{
    Binding, Group, Matcher, Posted, PostedBuf, Unexpected, UnexpectedQueue, Want,
};
use crate::ring::{Consumer, Producer, Record, Take};
use crate::segment::{STATE_FINALIZED, Segment};

/// What a blocked call waits in, published for the launcher's reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum WaitOp {
    Recv = 1,
    Send = 2,
    Probe = 3,
    Wait = 4,
    Finalize = 5,
    Collective = 6,
}

/// What a blocked call waits for: used to publish it, to check that the peers it
/// depends on are alive, and to word the error if they are not.
pub(crate) struct WaitDesc<'g> {
    pub(crate) op: WaitOp,
    /// Operation name for messages (`"recv"`, `"bcast"`...).
    pub(crate) name: &'static str,
    /// World rank waited on; `None` for any member of `group`.
    pub(crate) peer: Option<usize>,
    /// -1 for any tag.
    pub(crate) tag: i32,
    pub(crate) ctx: u32,
    pub(crate) group: &'g Group,
}

impl WaitDesc<'_> {
    fn describe(&self) -> String {
        let peer = match self.peer {
            Some(p) => format!("{}", self.group.rank_of(p)),
            None => "ANY_SOURCE".into(),
        };
        let tag = if self.tag < 0 {
            "ANY_TAG".into()
        } else {
            self.tag.to_string()
        };
        match self.op {
            WaitOp::Send => format!(
                "{}(dest={peer}, tag={tag}) on context {}",
                self.name, self.ctx
            ),
            WaitOp::Collective | WaitOp::Finalize => {
                format!("{} on context {}", self.name, self.ctx)
            }
            _ => format!(
                "{}(source={peer}, tag={tag}) on context {}",
                self.name, self.ctx
            ),
        }
    }
}

/// Names of blocking operations, published by index for the launcher's reports.
/// Index 0 is "an operation".
pub(crate) const WAIT_NAMES: &[&str] = &[
    "an operation",
    "recv",
    "recv_into",
    "recv_vec",
    "send",
    "send_slice",
    "probe",
    "wait",
    "wait_any",
    "isend",
    "isend_vec",
    "isend_slice",
    "irecv",
    "irecv_into",
    "finalize",
    "barrier",
    "bcast",
    "scatter",
    "gather",
    "allgather",
    "alltoall",
    "reduce",
    "allreduce",
    "scan",
    "exscan",
    "bcast_into",
    "scatter_into",
    "gather_into",
    "allgather_into",
    "alltoall_into",
    "reduce_into",
    "allreduce_into",
    "scan_into",
    "exscan_into",
    "reduce_scatter_block_into",
    "gatherv_into",
    "scatterv_into",
    "allgatherv_into",
    "dup",
    "split",
    "sendrecv_slice",
];

fn wait_name_code(name: &str) -> u32 {
    WAIT_NAMES.iter().position(|&n| n == name).unwrap_or(0) as u32
}

/// The buffer of the blocking receive in progress, filled straight from the ring.
pub(crate) struct Direct<'a> {
    pub(crate) m: Matcher,
    pub(crate) want: Want,
    pub(crate) buf: &'a mut [u8],
    pub(crate) state: DirectState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirectState {
    /// No message matched yet.
    Open,
    /// A streamed message matched; more chunks to come.
    Receiving,
    /// The whole message is in the buffer.
    Done(Envelope),
    /// A matching message could not go into the buffer; it is in the unexpected queue.
    Refused,
}

/// What [`Engine::probe_or_take`] found.
enum Probed {
    /// A matching message is in the unexpected queue at this index.
    Queued(usize),
    /// It took a whole message from the ring.
    Took(Envelope, AlignedVec),
}

/// A finished non-blocking operation, waiting for `wait`/`test` to collect it.
pub(crate) enum Done {
    Recv { env: Envelope, data: RecvData },
    Sent(Option<PodVec>),
    Failed(Error),
}

pub(crate) enum RecvData {
    Pod(PodVec),
    Object(AlignedVec),
}

/// Bytes a queued send still owns.
pub(crate) enum SendBuf {
    Pod(PodVec),
    Bytes(AlignedVec),
}

impl SendBuf {
    fn bytes(&self) -> &[u8] {
        match self {
            SendBuf::Pod(b) => b.bytes(),
            SendBuf::Bytes(v) => v,
        }
    }
}

struct PendingSend {
    id: u64,
    env: Envelope,
    buf: SendBuf,
    st: SendState,
}

/// How far a message has been pushed into its ring.
#[derive(Default, Clone, Copy)]
struct SendState {
    started: bool,
    sent: usize,
}

/// Where the rest of a streamed message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    Unexpected(u64),
    Direct,
    Active(u64),
    Discard,
}

struct Inflight {
    env: Envelope,
    got: usize,
    sink: Sink,
}

/// A non-blocking receive that matched a streamed message still arriving.
struct Active {
    env: Envelope,
    buf: RecvData,
}

/// Message sizes, derived from the ring size.
#[derive(Debug, Clone, Copy)]
struct Tuning {
    /// Messages up to this size travel as one record.
    eager_max: usize,
    /// First chunk of a streamed message.
    chunk: usize,
    /// Largest chunk (chunks grow from `chunk` as the message goes).
    chunk_max: usize,
    /// Smallest chunk worth writing while more data waits.
    min_part: usize,
    /// Bytes drained from one ring per pass.
    drain_budget: usize,
}

/// Matching state: everything `progress` delivers into. Split from the rings so that a
/// record borrowed from a ring can be delivered without copying it first.
#[derive(Default)]
struct Matching {
    unexpected: UnexpectedQueue,
    /// Non-blocking receives in posting order.
    posted: VecDeque<Posted>,
    /// Non-blocking receives bound to a streamed unexpected message.
    bound: IdMap<Posted>,
    /// Non-blocking receives filling from a streamed message.
    active: IdMap<Active>,
    /// Per source: the streamed message in progress.
    inflight: Vec<Option<Inflight>>,
    /// Request ids, and the results of finished requests until they are taken.
    done: Completions,
}

/// Request ids are this process's own sequential numbers, not attacker-chosen keys:
/// a multiplicative hash (Fibonacci hashing, spreading the bits to the top ones that
/// hashbrown's control bytes use) is enough and ~10x cheaper per lookup than the
/// default SipHash, which showed up as ~90 instructions per message in osu_bw.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Request id -> state.
type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// The per-process progress engine.
pub(crate) struct Engine {
    producers: Vec<Option<Producer>>,
    consumers: Vec<Option<Consumer>>,
    /// Non-blocking sends per destination, in order.
    queues: Vec<VecDeque<PendingSend>>,
    /// Destinations with a non-empty queue.
    pending_dests: Vec<usize>,
    m: Matching,
    seg: Rc<Segment>,
    me: usize,
    n: usize,
    tuning: Tuning,
    spin_ns: u64,
    /// Polls of `try_recv_whole`: `FAST_POLLS`, fewer if the spin phase is shorter
    /// than they take (at least 1: `SHMPI_SPIN_US=0` polls once). The general loop's
    /// spin phase comes after them, so they add at most about that phase again before
    /// a receive yields (2 us when ranks outnumber CPUs: 64 polls, about 1.9 us).
    fast_polls: u32,
    /// The spin phase of a collective's wait.
    coll_spin_ns: u64,
    yield_ns: u64,
    wait_published: bool,
}

impl Engine {
    pub(crate) fn new(seg: Rc<Segment>, claim: crate::segment::Claim) -> Self {
        let me = claim.rank();
        let n = seg.nranks();
        let (producers, consumers) = seg.endpoints(claim);
        let cap = seg.layout().ring_bytes;
        // Streaming chunks: the first ones small, so that the receiver copies one out
        // while the sender copies the next in, then growing (each as long as the part
        // already sent) up to `chunk_max`, so that a long message pays few records.
        // Measured on the reference VM (osu_latency, osu_bw; docs/performance.md):
        // 16 KiB chunks gave the lowest latency from 32 KiB to 1 MiB, 64-128 KiB chunks
        // 10-20 % more bandwidth than 16 KiB. Multiples of the cache line, so that every
        // chunk's payload starts on one (ring.rs).
        let chunk = env_bytes("SHMPI_CHUNK_BYTES")
            .unwrap_or(16 << 10)
            .clamp(256, cap / 4)
            & !63;
        let chunk_max = env_bytes("SHMPI_CHUNK_MAX_BYTES")
            .unwrap_or(128 << 10)
            .clamp(chunk, (cap / 8).max(chunk))
            & !63;
        let eager_max = env_bytes("SHMPI_EAGER_BYTES")
            .unwrap_or(chunk)
            .clamp(0, cap / 4);
        let tuning = Tuning {
            eager_max,
            chunk,
            chunk_max,
            min_part: (chunk / 4).max(256),
            drain_budget: cap,
        };
        let oversubscribed = n > seg.header().ncpus.max(1) as usize;
        // Spin 50 us, or 2 us when ranks outnumber CPUs: measured (docs/performance.md)
        // with 8 ranks on 2 CPUs, a 2 us spin before yielding kept a ping-pong between
        // two ranks at 0.18 us (6 ranks asleep in recv) where yielding at once gave
        // 0.6-1.6 us, and with 8 busy ranks (4 ping-pong pairs) 0.4-2.6 us where
        // yielding at once gave 1.4-5 us. A longer spin (10 us) had 2-14 us outliers.
        let spin_env = env_us("SHMPI_SPIN_US");
        let spin_ns = spin_env.unwrap_or(if oversubscribed { 2_000 } else { 50_000 });
        // Collectives yield at once when ranks outnumber CPUs (`collective_backoff`).
        let coll_spin_ns = spin_env.unwrap_or(if oversubscribed { 0 } else { spin_ns });
        let yield_ns = env_us("SHMPI_YIELD_US").unwrap_or(2_000_000);
        // The same inputs in every rank, so every rank picks the same handshake.
        let rare_sleeps =
            spin_ns.min(coll_spin_ns) + yield_ns >= doorbell::LIGHT_MIN_WAIT.as_nanos() as u64;
        doorbell::enable_light_wakers(!oversubscribed && rare_sleeps);
        let mut inflight = Vec::with_capacity(n);
        inflight.resize_with(n, || None);
        Engine {
            producers,
            consumers,
            queues: (0..n).map(|_| VecDeque::new()).collect(),
            pending_dests: Vec::new(),
            m: Matching {
                inflight,
                ..Default::default()
            },
            seg,
            me,
            n,
            tuning,
            spin_ns,
            fast_polls: (spin_ns / POLL_NS).clamp(1, FAST_POLLS as u64) as u32,
            coll_spin_ns,
            yield_ns,
            wait_published: false,
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.n
    }

    pub(crate) fn segment(&self) -> &Rc<Segment> {
        &self.seg
    }

    /// Messages waiting in the unexpected queue (for tests and diagnostics).
    pub(crate) fn unexpected_len(&self) -> usize {
        self.m.unexpected.len()
    }

    fn new_id(&mut self) -> u64 {
        self.m.done.open()
    }

    // ---- progress ---------------------------------------------------------------

    /// One pass: drain incoming rings, then push queued sends.
    pub(crate) fn progress(&mut self, mut direct: Option<&mut Direct<'_>>) -> Result<()> {
        for src in 0..self.n {
            let Some(cons) = self.consumers[src].as_mut() else {
                continue;
            };
            if !cons.has_data() {
                continue;
            }
            let mut budget = self.tuning.drain_budget;
            let mut popped = false;
            loop {
                let rec = match cons.peek() {
                    Ok(Some(r)) => r,
                    Ok(None) => break,
                    Err(e) => return Err(Error::Corrupted(format!("ring from rank {src}: {e}"))),
                };
                let len = rec.payload.len();
                self.m.on_record(src, rec, &mut direct)?;
                cons.advance();
                popped = true;
                // The blocking receive has its message: leave the rest of this ring
                // for the next call instead of copying it into the unexpected queue
                // (an allocation and a second copy each). The caller returns at once;
                // every blocked call still drains, so no sender can starve.
                if direct
                    .as_ref()
                    .is_some_and(|d| matches!(d.state, DirectState::Done(_)))
                {
                    break;
                }
                if len >= budget {
                    break;
                }
                budget -= len;
            }
            if popped {
                // The sender may sleep waiting for the space we just freed. No fence
                // here (this is on every receive's critical path): a sender that
                // announced its sleep in the same instant is covered by its short
                // sleep slice (see `doorbell::SPACE_SLICE`).
                doorbell::notify_relaxed(&self.seg.ctrl(src).bell);
            }
        }
        if !self.pending_dests.is_empty() {
            self.push_queued();
        }
        Ok(())
    }

    /// Pushes queued sends as far as ring space allows.
    fn push_queued(&mut self) {
        let mut i = 0;
        while i < self.pending_dests.len() {
            let dest = self.pending_dests[i];
            let prod = self.producers[dest].as_mut().expect("no ring to self");
            let queue = &mut self.queues[dest];
            let mut pushed = false;
            while let Some(ps) = queue.front_mut() {
                let (done, any) =
                    push_message(prod, &self.tuning, &ps.env, ps.buf.bytes(), &mut ps.st);
                pushed |= any;
                if !done {
                    break;
                }
                let ps = queue.pop_front().expect("front exists");
                let back = match ps.buf {
                    SendBuf::Pod(b) => Some(b),
                    SendBuf::Bytes(_) => None,
                };
                self.m.finish(ps.id, Done::Sent(back));
            }
            if pushed {
                doorbell::notify(&self.seg.ctrl(dest).bell);
            }
            if queue.is_empty() {
                self.pending_dests.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Whether anything could be done now: used to re-check before sleeping.
    fn has_work(&mut self, desc: &WaitDesc<'_>) -> bool {
        if self.seg.abort_info().is_some() {
            return true;
        }
        if self.consumers.iter().flatten().any(|c| c.has_data()) {
            return true;
        }
        for &d in &self.pending_dests {
            if self.producers[d].as_mut().is_some_and(|p| p.refresh()) {
                return true;
            }
        }
        if desc.op == WaitOp::Send {
            if let Some(p) = desc.peer.and_then(|d| self.producers[d].as_mut()) {
                return p.refresh();
            }
        }
        false
    }

    /// One idle step of a blocked call: spin, yield or sleep, checking in the slower
    /// phases that the job and the peers the call depends on are alive.
    pub(crate) fn idle(&mut self, b: &mut Backoff, desc: &WaitDesc<'_>) -> Result<()> {
        self.idle_until(b, desc, &|| false)
    }

    /// Like [`idle`](Self::idle) for a call that also waits for a condition outside the
    /// rings (a collective's arrival counters): `ready` is re-checked after announcing
    /// a sleep, so a peer that changes it and then rings the doorbell cannot be missed.
    pub(crate) fn idle_until(
        &mut self,
        b: &mut Backoff,
        desc: &WaitDesc<'_>,
        ready: &dyn Fn() -> bool,
    ) -> Result<()> {
        match b.phase() {
            Phase::Spin => doorbell::pause(),
            Phase::Yield => {
                self.publish_wait(desc);
                self.check_alive_unless(desc, ready)?;
                doorbell::yield_now();
            }
            Phase::Sleep => {
                self.publish_wait(desc);
                self.check_alive_unless(desc, ready)?;
                let seg = self.seg.clone();
                // Ring space is announced without a fence: bound the sleep.
                let slice = if desc.op == WaitOp::Send || !self.pending_dests.is_empty() {
                    doorbell::SPACE_SLICE
                } else {
                    doorbell::SLEEP_SLICE
                };
                doorbell::sleep(&seg.ctrl(self.me).bell, slice, || {
                    ready() || self.has_work(desc)
                });
            }
        }
        Ok(())
    }

    pub(crate) fn backoff(&self) -> Backoff {
        Backoff::new(self.spin_ns, self.yield_ns)
    }

    /// The backoff of a collective's wait. When ranks outnumber CPUs, some member of
    /// the collective is not running, and spinning only delays it: yield at once.
    /// Measured with 8 ranks on 2 CPUs (`osu_allreduce -m 8`, `osu_barrier`): a 2 us
    /// spin gave 28-38 us per call, yielding at once 11-15 us.
    pub(crate) fn collective_backoff(&self) -> Backoff {
        Backoff::new(self.coll_spin_ns, self.yield_ns)
    }

    /// Whether a collective's wait starts by spinning (ranks do not outnumber CPUs).
    pub(crate) fn collective_spins(&self) -> bool {
        self.coll_spin_ns > 0
    }

    fn publish_wait(&mut self, desc: &WaitDesc<'_>) {
        if self.wait_published {
            return;
        }
        let w = &self.seg.ctrl(self.me).wait;
        w.peer
            .store(desc.peer.map_or(-1, |p| p as i32), Ordering::Relaxed);
        w.tag.store(desc.tag, Ordering::Relaxed);
        w.ctx.store(desc.ctx, Ordering::Relaxed);
        w.name.store(wait_name_code(desc.name), Ordering::Relaxed);
        w.op.store(desc.op as u32, Ordering::Relaxed);
        w.epoch.fetch_add(1, Ordering::Relaxed);
        self.wait_published = true;
    }

    /// Marks the end of a blocked call.
    pub(crate) fn end_wait(&mut self) {
        if self.wait_published {
            let w = &self.seg.ctrl(self.me).wait;
            w.op.store(0, Ordering::Relaxed);
            w.epoch.fetch_add(1, Ordering::Relaxed);
            self.wait_published = false;
        }
    }

    /// [`Self::check_alive`], but a wait whose condition came true meanwhile succeeds.
    ///
    /// A peer may publish what we wait for and leave between the caller's last look at
    /// `ready` and our look at its state (its last collective step, then `finalize`).
    /// Its departure is read with Acquire after everything it wrote before leaving,
    /// so a second look at `ready` after seeing it gone tells a peer that left early
    /// from one that left after doing its part.
    fn check_alive_unless(&mut self, desc: &WaitDesc<'_>, ready: &dyn Fn() -> bool) -> Result<()> {
        match self.check_alive(desc) {
            Err(_) if ready() => Ok(()),
            r => r,
        }
    }

    /// Fails if the job was aborted or if the peers `desc` depends on have left with
    /// nothing more in flight from them.
    pub(crate) fn check_alive(&mut self, desc: &WaitDesc<'_>) -> Result<()> {
        if let Some(a) = self.seg.abort_info() {
            return Err(a.to_error(&format!("in {}", desc.describe())));
        }
        let gone = |this: &Self, p: usize| -> Option<crate::error::Exit> {
            let how = this.seg.departed(p)?;
            // Everything it pushed before leaving is visible now: is any of it unread?
            let unread = this.consumers[p].as_ref().is_some_and(|c| c.has_data())
                || this.m.inflight[p].is_some();
            if unread { None } else { Some(how) }
        };
        let fail = |p: usize, how| Error::PeerFailed {
            rank: p,
            how,
            while_doing: format!("this rank was waiting in {}", desc.describe()),
        };
        match (desc.op, desc.peer) {
            (_, Some(p)) if p != self.me => {
                if desc.op == WaitOp::Send {
                    if let Some(how) = self.seg.departed(p) {
                        return Err(fail(p, how));
                    }
                } else if let Some(how) = gone(self, p) {
                    return Err(fail(p, how));
                }
            }
            (WaitOp::Recv | WaitOp::Probe | WaitOp::Collective, None) => {
                let others: Vec<usize> = desc
                    .group
                    .ranks
                    .iter()
                    .copied()
                    .filter(|&p| p != self.me)
                    .collect();
                if !others.is_empty() && others.iter().all(|&p| gone(self, p).is_some()) {
                    let p = others[0];
                    return Err(fail(p, gone(self, p).expect("checked")));
                }
            }
            _ => {}
        }
        Ok(())
    }

    // ---- sends ------------------------------------------------------------------

    /// Sends `data` and returns once all of it is in the ring (or delivered locally).
    pub(crate) fn send(
        &mut self,
        dest: usize,
        env: Envelope,
        data: &[u8],
        desc: &WaitDesc<'_>,
    ) -> Result<()> {
        if self.try_send_whole(dest, &env, data) {
            return Ok(());
        }
        self.send_declined(dest, env, data, desc)
    }

    /// [`send`](Self::send) once [`try_send_whole`](Self::try_send_whole) declined (a
    /// caller that tried it first, to build `desc` only when needed, goes on here).
    pub(crate) fn send_declined(
        &mut self,
        dest: usize,
        env: Envelope,
        data: &[u8],
        desc: &WaitDesc<'_>,
    ) -> Result<()> {
        if dest == self.me {
            return self.m.deliver_local(env, data);
        }
        let r = self.send_with(dest, env, data, desc, None);
        self.end_wait();
        r
    }

    /// The common case of a blocking send in few steps, before the caller builds
    /// anything a wait would need: a message to a peer, nothing queued to it, and the
    /// whole message fits in one record in the ring's free space. Returns false, having
    /// sent nothing, otherwise.
    #[inline]
    pub(crate) fn try_send_whole(&mut self, dest: usize, env: &Envelope, data: &[u8]) -> bool {
        if dest == self.me || data.len() > self.tuning.eager_max || !self.queues[dest].is_empty() {
            return false;
        }
        let (kind, words, nw) = start_words(env, true);
        let prod = self.producers[dest].as_mut().expect("ring to a peer");
        if !prod.try_push_whole(kind as u8, &words[..nw], data) {
            return false;
        }
        doorbell::notify(&self.seg.ctrl(dest).bell);
        self.end_wait();
        true
    }

    /// Starts a non-blocking send; the engine owns `buf` until it is all in the ring.
    pub(crate) fn isend(&mut self, dest: usize, env: Envelope, buf: SendBuf) -> Result<u64> {
        let id = self.new_id();
        if dest == self.me {
            let r = self.m.deliver_local(env, buf.bytes());
            let done = match r {
                Ok(()) => Done::Sent(match buf {
                    SendBuf::Pod(b) => Some(b),
                    SendBuf::Bytes(_) => None,
                }),
                Err(e) => Done::Failed(e),
            };
            self.m.finish(id, done);
            return Ok(id);
        }
        let mut st = SendState::default();
        if self.queues[dest].is_empty() {
            let prod = self.producers[dest].as_mut().expect("ring to a peer");
            let (done, any) = push_message(prod, &self.tuning, &env, buf.bytes(), &mut st);
            if any {
                doorbell::notify(&self.seg.ctrl(dest).bell);
            }
            if done {
                let back = match buf {
                    SendBuf::Pod(b) => Some(b),
                    SendBuf::Bytes(_) => None,
                };
                self.m.finish(id, Done::Sent(back));
                return Ok(id);
            }
            self.pending_dests.push(dest);
        }
        self.queues[dest].push_back(PendingSend { id, env, buf, st });
        Ok(id)
    }

    // ---- receives ---------------------------------------------------------------

    /// Blocking receive into `buf`, straight from the ring when the message arrives
    /// after the call. Returns the envelope of the received message.
    pub(crate) fn recv_into(
        &mut self,
        m: Matcher,
        want: Want,
        buf: &mut [u8],
        desc: &WaitDesc<'_>,
    ) -> Result<Envelope> {
        let r = self.recv_into_inner(m, want, buf, desc);
        self.end_wait();
        r
    }

    fn recv_into_inner(
        &mut self,
        m: Matcher,
        want: Want,
        buf: &mut [u8],
        desc: &WaitDesc<'_>,
    ) -> Result<Envelope> {
        if let Some(idx) = self.m.unexpected.find(&m) {
            return self.take_unexpected_into(idx, want, buf, desc);
        }
        let d = Direct {
            m,
            want,
            buf,
            state: DirectState::Open,
        };
        self.recv_direct(d, desc)
    }

    /// The first polls of a blocking receive from one peer, before the caller builds
    /// its wait description, in a loop of their own: no wait state, no backoff, no
    /// progress passes. While nothing else could claim the peer's next record (no
    /// unexpected message, `may_take`) and no send is queued, spins on that ring alone
    /// for up to `FAST_POLLS` polls (within the spin phase the general loop would start
    /// with) and takes the record if it is a whole raw-bytes message that `m` and
    /// `want` accept. `None`, having changed nothing, otherwise: `recv_into` takes over.
    ///
    /// 8-byte ping-pong (`examples/pingpong`), alternating runs against `recv_into`
    /// alone: lower in 8 of 8, 6 of 8 and 5 of 8 pairs in three sets (medians about
    /// 0.069 -> 0.065 us). The same loop inside `recv_into`, after the unexpected
    /// queue's search, was higher in 6 of 8, and the same loop for object receives
    /// (`take_eager_object`) made the small-struct latency worse (0.091-0.098 ->
    /// 0.098-0.108 us, 5 pairs): at this size the code's layout matters as much as its
    /// length.
    #[inline]
    pub(crate) fn try_recv_whole(
        &mut self,
        m: &Matcher,
        want: &Want,
        buf: &mut [u8],
    ) -> Option<Envelope> {
        let src = m.src?;
        if src == self.me
            || self.m.unexpected.len() != 0
            || !self.may_take(src)
            || !self.pending_dests.is_empty()
        {
            return None;
        }
        for _ in 0..self.fast_polls {
            match self.take_eager(src, m, want, buf) {
                Take::Took(env) => return Some(env),
                Take::Empty => doorbell::pause(),
                Take::Other => return None,
            }
        }
        None
    }

    /// The receive fast path for a wait on posted receive `id`: if it is the earliest
    /// posted receive, of plain data from one named peer, and the next record from that
    /// peer is a whole message it matches and accepts, the message goes straight from
    /// the ring into its buffer, without the general delivery of `progress` (its pass
    /// over every ring, the record's decoding, the search of the posted queue, the
    /// result's round trip through its slot). The earliest posted receive is the one a
    /// matching message belongs to, so the order of matching is MPI's. Anything else is
    /// left for `progress`.
    ///
    /// With the slot table of `completions.rs` and the one-record push of non-blocking
    /// sends: `osu_bibw` (64 receives posted, then 64 sends, then the waits, on both
    /// ranks) 8.4-10.9 -> 9.9-12.5 MB/s at 1 byte, 499-527 -> 573-744 at 64 bytes, 4
    /// alternating pairs.
    #[inline]
    fn take_posted_whole(&mut self, id: u64) -> Option<Done> {
        let p = self.m.posted.front_mut()?;
        let src = p.m.src?;
        if p.id != id
            || src == self.me
            || self.m.inflight[src].is_some()
            || !self.pending_dests.is_empty()
        {
            return None;
        }
        let PostedBuf::Pod(buf) = &mut p.buf else {
            return None;
        };
        // Into the receive's buffer where it stands: it leaves the queue only if taken.
        let cons = self.consumers[src].as_mut().expect("ring from a peer");
        let taken = take_eager(cons, &self.seg, src, &p.m, &p.want, buf.bytes_mut());
        let Take::Took(env) = taken else {
            return None;
        };
        let p = self.m.posted.pop_front().expect("the receive just filled");
        self.m.done.close(id);
        let PostedBuf::Pod(b) = p.buf else {
            unreachable!("checked: a plain-data receive")
        };
        Some(Done::Recv {
            env,
            data: RecvData::Pod(b),
        })
    }

    /// Finishes the blocking receive `d`, in whatever state an earlier pass left it.
    fn recv_direct(&mut self, mut d: Direct<'_>, desc: &WaitDesc<'_>) -> Result<Envelope> {
        let (m, want) = (d.m, d.want);
        // A receive of raw bytes from one named peer can take a whole-message record
        // straight from that peer's ring (`take_eager`), without the general delivery.
        let fast_src = match (m.src, want) {
            (Some(s), Want::Bytes { .. }) if s != self.me => Some(s),
            _ => None,
        };
        let mut b = self.backoff();
        let mut steps = 0u32;
        let outcome = loop {
            match d.state {
                DirectState::Done(env) => break Ok(Some(env)),
                DirectState::Refused => break Ok(None),
                DirectState::Open | DirectState::Receiving => {}
            }
            // `take_eager` only while nothing else could claim the message (`may_take`).
            let mut fast_empty = false;
            if let Some(src) = fast_src {
                if d.state == DirectState::Open && self.may_take(src) {
                    match self.take_eager(src, &m, &want, d.buf) {
                        Take::Took(env) => break Ok(Some(env)),
                        Take::Empty => fast_empty = true,
                        Take::Other => {}
                    }
                }
            }
            steps = steps.wrapping_add(1);
            if self.pass_due(fast_empty, &b, steps) {
                if let Err(e) = self.progress(Some(&mut d)) {
                    break Err(e);
                }
                if matches!(d.state, DirectState::Done(_) | DirectState::Refused) {
                    continue;
                }
            }
            if let Err(e) = self.idle(&mut b, desc) {
                break Err(e);
            }
        };
        if d.state == DirectState::Receiving {
            // Failed mid-stream: the rest of the message has nowhere to go.
            self.m.abandon_direct();
        }
        match outcome? {
            Some(env) => Ok(env),
            None => {
                let idx = self
                    .m
                    .unexpected
                    .find(&m)
                    .expect("a refused message is queued");
                self.take_unexpected_into(idx, want, d.buf, desc)
            }
        }
    }

    /// `send` then `recv_into`, overlapped (`MPI_Sendrecv`): while the send waits for
    /// ring space, the receive takes matching data straight into `buf`, so that two
    /// ranks exchanging long messages copy each byte twice, not three times through
    /// the unexpected queue, and both directions flow at once.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn sendrecv_into(
        &mut self,
        dest: usize,
        env: Envelope,
        data: &[u8],
        m: Matcher,
        want: Want,
        buf: &mut [u8],
        send_desc: &WaitDesc<'_>,
        recv_desc: &WaitDesc<'_>,
    ) -> Result<Envelope> {
        if dest == self.me
            || data.len() <= self.tuning.eager_max
            || self.m.unexpected.find(&m).is_some()
        {
            self.send(dest, env, data, send_desc)?;
            return self.recv_into(m, want, buf, recv_desc);
        }
        let mut d = Direct {
            m,
            want,
            buf,
            state: DirectState::Open,
        };
        let r = self.send_with(dest, env, data, send_desc, Some(&mut d));
        self.end_wait();
        if let Err(e) = r {
            if d.state == DirectState::Receiving {
                self.m.abandon_direct();
            }
            return Err(e);
        }
        let r = self.recv_direct(d, recv_desc);
        self.end_wait();
        r
    }

    /// The blocking send of `send` and `sendrecv_into`, once the fast path declined: it
    /// waits for ring space running progress passes, which feed the receive `d` (if
    /// any) until it has its message, and drain every ring into the unexpected queue
    /// otherwise, so that no sender can starve.
    fn send_with(
        &mut self,
        dest: usize,
        env: Envelope,
        data: &[u8],
        desc: &WaitDesc<'_>,
        mut d: Option<&mut Direct<'_>>,
    ) -> Result<()> {
        let mut b = self.backoff();
        let pass = |e: &mut Self, d: &mut Option<&mut Direct<'_>>| match d.as_deref_mut() {
            Some(d) if matches!(d.state, DirectState::Open | DirectState::Receiving) => {
                e.progress(Some(d))
            }
            _ => e.progress(None),
        };
        // Queued non-blocking sends to `dest` go first (non-overtaking).
        while !self.queues[dest].is_empty() {
            pass(self, &mut d)?;
            if self.queues[dest].is_empty() {
                break;
            }
            self.idle(&mut b, desc)?;
        }
        let mut st = SendState::default();
        loop {
            let prod = self.producers[dest].as_mut().expect("ring to a peer");
            let (done, any) = push_message(prod, &self.tuning, &env, data, &mut st);
            if any {
                doorbell::notify(&self.seg.ctrl(dest).bell);
            }
            if done {
                return Ok(());
            }
            pass(self, &mut d)?;
            self.idle(&mut b, desc)?;
        }
    }

    /// Whether a blocking receive from `src` may take the next record of `src`'s ring
    /// itself: no posted receive and no message of `src` half-way through its ring
    /// could claim it first. (The caller has checked the unexpected queue; while its
    /// receive is open, the progress passes hand a matching message to it, so none
    /// can join the queue in between.)
    #[inline]
    fn may_take(&self, src: usize) -> bool {
        self.m.posted.is_empty() && self.m.inflight[src].is_none()
    }

    /// Whether a receive spinning on one ring makes a full progress pass (every ring,
    /// the queued sends) at this step: while spinning on an empty ring, every 16th
    /// step; in the yield and sleep phases, and whenever the ring held something the
    /// fast path left, every step.
    #[inline]
    fn pass_due(&self, fast_empty: bool, b: &Backoff, steps: u32) -> bool {
        !fast_empty || !b.spinning() || steps % 16 == 0 || !self.pending_dests.is_empty()
    }

    /// [`take_eager`] from `src`'s ring.
    #[inline]
    fn take_eager(
        &mut self,
        src: usize,
        m: &Matcher,
        want: &Want,
        buf: &mut [u8],
    ) -> Take<Envelope> {
        let cons = self.consumers[src].as_mut().expect("ring from a peer");
        take_eager(cons, &self.seg, src, m, want, buf)
    }

    /// `take_eager` for an object receive: a whole object message of the wanted type
    /// from `src`, copied out of the ring into a new aligned buffer.
    #[inline]
    fn take_eager_object(
        &mut self,
        src: usize,
        m: &Matcher,
        type_id: u64,
    ) -> Take<(Envelope, AlignedVec)> {
        let cons = self.consumers[src].as_mut().expect("ring from a peer");
        let fits = |w: &[u64; 2], _: usize| w[1] == type_id;
        let take = |w: &[u64; 2], payload: &[u8]| {
            let mut v = AlignedVec::with_capacity(payload.len());
            v.extend_from_slice(payload);
            (eager_envelope(src, w[0], payload.len(), type_id), v)
        };
        take_whole(cons, &self.seg, src, m, Kind::EagerTyped, 2, fits, take)
    }

    /// Takes unexpected message `idx` into `buf`, waiting for the rest of it if it is
    /// still streaming in. Leaves it queued if it does not fit `want`.
    fn take_unexpected_into(
        &mut self,
        idx: usize,
        want: Want,
        buf: &mut [u8],
        desc: &WaitDesc<'_>,
    ) -> Result<Envelope> {
        let u = self.m.unexpected.get(idx);
        let comm_src = desc.group.rank_of(u.env.src);
        want.check(&u.env, comm_src, || sent_type_name(&u.data, u.env.type_id))?;
        let u = self.wait_complete(idx, desc)?;
        buf[..u.data.len()].copy_from_slice(&u.data);
        Ok(u.env)
    }

    /// Waits until unexpected message `idx` has all its bytes, then takes it.
    fn wait_complete(&mut self, idx: usize, desc: &WaitDesc<'_>) -> Result<Unexpected> {
        if self.m.unexpected.get(idx).is_complete() {
            return Ok(self.m.unexpected.take(idx));
        }
        self.m.unexpected.get_mut(idx).binding = Binding::Blocking;
        let mut b = self.backoff();
        loop {
            let r = self.progress(None).map(|_| {
                let i = self
                    .m
                    .unexpected
                    .find_bound(Binding::Blocking)
                    .expect("bound message stays queued");
                self.m.unexpected.get(i).is_complete().then_some(i)
            });
            match r {
                Ok(Some(i)) => {
                    self.end_wait();
                    return Ok(self.m.unexpected.take(i));
                }
                Ok(None) => {}
                Err(e) => return Err(self.unbind_blocking(e)),
            }
            if let Err(e) = self.idle(&mut b, desc) {
                return Err(self.unbind_blocking(e));
            }
        }
    }

    fn unbind_blocking(&mut self, e: Error) -> Error {
        if let Some(i) = self.m.unexpected.find_bound(Binding::Blocking) {
            self.m.unexpected.get_mut(i).binding = Binding::Free;
        }
        self.end_wait();
        e
    }

    /// Blocking receive of a whole message as bytes (objects): waits for a match, checks
    /// it against `want`, and takes it.
    pub(crate) fn recv_message(
        &mut self,
        m: Matcher,
        want: Want,
        desc: &WaitDesc<'_>,
    ) -> Result<(Envelope, AlignedVec)> {
        let idx = match self.probe_or_take(m, &want, desc)? {
            Probed::Queued(idx) => idx,
            Probed::Took(env, v) => return Ok((env, v)),
        };
        let u = self.m.unexpected.get(idx);
        let comm_src = desc.group.rank_of(u.env.src);
        want.check(&u.env, comm_src, || sent_type_name(&u.data, u.env.type_id))?;
        let u = self.wait_complete(idx, desc)?;
        Ok((u.env, u.data))
    }

    /// Blocks until a message matching `m` has arrived (at least its first record).
    /// Returns its envelope and its index in the unexpected queue.
    pub(crate) fn probe(&mut self, m: Matcher, desc: &WaitDesc<'_>) -> Result<(Envelope, usize)> {
        let mut b = self.backoff();
        loop {
            if let Some(idx) = self.m.unexpected.find(&m) {
                self.end_wait();
                return Ok((self.m.unexpected.get(idx).env, idx));
            }
            self.progress(None).inspect_err(|_| self.end_wait())?;
            if let Some(idx) = self.m.unexpected.find(&m) {
                self.end_wait();
                return Ok((self.m.unexpected.get(idx).env, idx));
            }
            self.idle(&mut b, desc).inspect_err(|_| self.end_wait())?;
        }
    }

    /// [`probe`](Self::probe) for an object receive from one named peer, which takes a
    /// whole message of the wanted type straight from that peer's ring when it is the
    /// next thing there (as `recv_into_inner` does for bytes).
    fn probe_or_take(&mut self, m: Matcher, want: &Want, desc: &WaitDesc<'_>) -> Result<Probed> {
        let fast = match (m.src, *want) {
            (Some(s), Want::Object { type_id, .. }) if s != self.me => Some((s, type_id)),
            _ => None,
        };
        let Some((src, type_id)) = fast else {
            return Ok(Probed::Queued(self.probe(m, desc)?.1));
        };
        let mut b = self.backoff();
        let mut steps = 0u32;
        let r = loop {
            if let Some(idx) = self.m.unexpected.find(&m) {
                break Ok(Probed::Queued(idx));
            }
            // As in `recv_direct`: only while nothing else could claim it first.
            let mut fast_empty = false;
            if self.may_take(src) {
                match self.take_eager_object(src, &m, type_id) {
                    Take::Took((env, v)) => break Ok(Probed::Took(env, v)),
                    Take::Empty => fast_empty = true,
                    Take::Other => {}
                }
            }
            steps = steps.wrapping_add(1);
            if self.pass_due(fast_empty, &b, steps) {
                if let Err(e) = self.progress(None) {
                    break Err(e);
                }
                if let Some(idx) = self.m.unexpected.find(&m) {
                    break Ok(Probed::Queued(idx));
                }
            }
            if let Err(e) = self.idle(&mut b, desc) {
                break Err(e);
            }
        };
        self.end_wait();
        r
    }

    /// One progress pass, then: is a message matching `m` there?
    pub(crate) fn iprobe(&mut self, m: Matcher) -> Result<Option<Envelope>> {
        if let Some(idx) = self.m.unexpected.find(&m) {
            return Ok(Some(self.m.unexpected.get(idx).env));
        }
        self.progress(None)?;
        if let Some(a) = self.seg.abort_info() {
            return Err(a.to_error("in iprobe"));
        }
        Ok(self
            .m
            .unexpected
            .find(&m)
            .map(|i| self.m.unexpected.get(i).env))
    }

    /// Posts a non-blocking receive. Returns its request id.
    pub(crate) fn irecv(
        &mut self,
        m: Matcher,
        want: Want,
        buf: PostedBuf,
        group: Rc<Group>,
    ) -> u64 {
        let id = self.new_id();
        let p = Posted {
            id,
            group,
            m,
            want,
            buf,
        };
        match self.m.unexpected.find(&m) {
            None => self.m.posted.push_back(p),
            Some(idx) => {
                let u = self.m.unexpected.get(idx);
                let comm_src = p.group.rank_of(u.env.src);
                if let Err(e) =
                    want.check(&u.env, comm_src, || sent_type_name(&u.data, u.env.type_id))
                {
                    self.m.finish(id, Done::Failed(e));
                } else if u.is_complete() {
                    let u = self.m.unexpected.take(idx);
                    let done = fill(p.buf, u);
                    self.m.finish(id, done);
                } else {
                    self.m.unexpected.get_mut(idx).binding = Binding::Request(id);
                    self.m.bound.insert(id, p);
                }
            }
        }
        id
    }

    /// Takes the result of request `id` if it has finished.
    pub(crate) fn take_done(&mut self, id: u64) -> Option<Done> {
        self.m.done.take(id)
    }

    pub(crate) fn is_done(&self, id: u64) -> bool {
        self.m.done.is_done(id)
    }

    /// A request handle was dropped: cancel its receive, or let its send finish
    /// unobserved.
    pub(crate) fn forget(&mut self, id: u64) {
        if self.m.done.orphan(id) {
            return; // it had finished: its result is dropped
        }
        // An orphan now; a receive that has not started is cancelled instead.
        if let Some(i) = self.m.posted.iter().position(|p| p.id == id) {
            self.m.posted.remove(i);
            self.m.done.close(id);
            return;
        }
        if self.m.bound.remove(&id).is_some() {
            if let Some(i) = self.m.unexpected.find_bound(Binding::Request(id)) {
                self.m.unexpected.get_mut(i).binding = Binding::Free;
            }
            self.m.done.close(id);
        }
    }

    /// Blocks until request `id` finishes.
    #[inline]
    pub(crate) fn wait(&mut self, id: u64, desc: &WaitDesc<'_>) -> Result<Done> {
        // A finished request (most of a `wait_all` after its first waits) is taken
        // without the wait loop's setup and frame: 37-42 -> 24-31 ns per wait (8c7cbbc).
        match self.m.done.take(id) {
            Some(d) => Ok(d),
            None => self.wait_loop(id, desc),
        }
    }

    #[inline(never)]
    fn wait_loop(&mut self, id: u64, desc: &WaitDesc<'_>) -> Result<Done> {
        let mut b = self.backoff();
        loop {
            if let Some(d) = self.m.done.take(id) {
                self.end_wait();
                return Ok(d);
            }
            if let Some(d) = self.take_posted_whole(id) {
                self.end_wait();
                return Ok(d);
            }
            self.progress(None).inspect_err(|_| self.end_wait())?;
            if let Some(d) = self.m.done.take(id) {
                self.end_wait();
                return Ok(d);
            }
            self.idle(&mut b, desc).inspect_err(|_| self.end_wait())?;
        }
    }

    /// Flushes queued sends and leaves the job. Called once, when the last handle goes.
    pub(crate) fn finalize(&mut self) {
        let group = Group::world(self.n);
        let desc = WaitDesc {
            op: WaitOp::Finalize,
            name: "finalize",
            peer: None,
            tag: -1,
            ctx: 0,
            group: &group,
        };
        let mut b = self.backoff();
        while !self.pending_dests.is_empty() {
            if self.progress(None).is_err() || self.seg.abort_info().is_some() {
                break;
            }
            // Sends to ranks that left can never complete.
            let seg = self.seg.clone();
            let queues = &mut self.queues;
            self.pending_dests.retain(|&d| {
                let gone = seg.departed(d).is_some();
                if gone {
                    queues[d].clear();
                }
                !gone
            });
            if self.pending_dests.is_empty() || self.idle(&mut b, &desc).is_err() {
                break;
            }
        }
        self.end_wait();
        self.seg.set_state(self.me, STATE_FINALIZED);
        for p in 0..self.n {
            if p != self.me {
                doorbell::notify(&self.seg.ctrl(p).bell);
            }
        }
    }
}

impl Drop for Engine {
    /// The last handle is gone: the rank finishes (`MPI_Finalize`).
    fn drop(&mut self) {
        self.finalize();
    }
}

/// Polls of [`Engine::try_recv_whole`] before the general receive loop, which also
/// drains the other rings: about 2 us (a `pause` takes 28 ns on the Zen 5 host), many
/// times a round trip between two cores even in the host's slow phases (about 500 ns).
/// 16 polls measured no better than none (8 alternating ping-pong runs), perhaps by
/// the code's layout.
const FAST_POLLS: u32 = 64;

/// About what one poll of `try_recv_whole` takes (a `pause` and a load, on the Zen 5
/// host), to keep its polls within a short spin phase (`SHMPI_SPIN_US`).
const POLL_NS: u64 = 30;

/// The envelope of a whole-message record from `src` with first header word `w0`.
#[inline]
fn eager_envelope(src: usize, w0: u64, len: usize, type_id: u64) -> Envelope {
    let (ctx, tag) = unpack_ctx_tag(w0);
    Envelope {
        ctx,
        src,
        tag,
        len,
        type_id,
    }
}

/// Pushes as much of a message as the ring takes now. Returns (all pushed, any pushed).
/// Takes the next record of `cons` (the ring from `src`) if it is a whole message of kind `kind` (with `nwords` header words) that `m` matches and
/// `fits(words, len)` accepts, handing it to `take`; then wakes the sender if it sleeps
/// waiting for the space just freed (as `progress` does). Anything else stays in the
/// ring for the general path.
#[inline]
fn take_whole<R>(
    cons: &mut Consumer,
    seg: &Segment,
    src: usize,
    m: &Matcher,
    kind: Kind,
    nwords: usize,
    fits: impl FnOnce(&[u64; 2], usize) -> bool,
    take: impl FnOnce(&[u64; 2], &[u8]) -> R,
) -> Take<R> {
    let accept = |w: &[u64; 2], len: usize| {
        let (ctx, tag) = unpack_ctx_tag(w[0]);
        m.matches_ctx_tag(ctx, tag) && fits(w, len)
    };
    let r = cons.take_if(kind as u8, nwords, accept, take);
    if matches!(r, Take::Took(_)) {
        doorbell::notify_relaxed(&seg.ctrl(src).bell);
    }
    r
}

/// The receive fast path: if the next record of `cons` (the ring from `src`) is a
/// whole raw-bytes message that `m` matches and `want` accepts, copies it into `buf`
/// and consumes it. Anything else (an object, the start of a streamed message, a
/// message for another receive, one that would be an error) is left in the ring for
/// the general path.
#[inline]
fn take_eager(
    cons: &mut Consumer,
    seg: &Segment,
    src: usize,
    m: &Matcher,
    want: &Want,
    buf: &mut [u8],
) -> Take<Envelope> {
    let Want::Bytes { cap, elem, .. } = *want else {
        return Take::Other;
    };
    let fits = |_: &[u64; 2], len: usize| len <= cap && (elem <= 1 || len % elem == 0);
    let take = |w: &[u64; 2], payload: &[u8]| {
        crate::ring::copy_from(&mut buf[..payload.len()], payload);
        eager_envelope(src, w[0], payload.len(), 0)
    };
    take_whole(cons, seg, src, m, Kind::Eager, 1, fits, take)
}

fn push_message(
    prod: &mut Producer,
    t: &Tuning,
    env: &Envelope,
    data: &[u8],
    st: &mut SendState,
) -> (bool, bool) {
    let mut any = false;
    if !st.started {
        let whole = data.len() <= t.eager_max;
        let (kind, words, nw) = start_words(env, whole);
        let n = if whole {
            // The one-record fast path first, as blocking sends take it.
            if prod.try_push_whole(kind as u8, &words[..nw], data) {
                Some(data.len())
            } else {
                prod.push(kind as u8, &words[..nw], data, data.len())
            }
        } else {
            let first = &data[..t.chunk.min(data.len())];
            prod.push(kind as u8, &words[..nw], first, t.min_part)
        };
        let Some(n) = n else { return (false, false) };
        st.started = true;
        st.sent = n;
        any = true;
    }
    while st.sent < data.len() {
        let end = (st.sent + st.sent.clamp(t.chunk, t.chunk_max)).min(data.len());
        let part = &data[st.sent..end];
        match prod.push(Kind::Cont as u8, &[], part, t.min_part.min(part.len())) {
            Some(n) => {
                st.sent += n;
                any = true;
            }
            None => return (false, any),
        }
    }
    (true, any)
}

/// Fills a posted receive's buffer from a complete unexpected message.
fn fill(buf: PostedBuf, u: Unexpected) -> Done {
    match buf {
        PostedBuf::Pod(mut b) => {
            b.bytes_mut()[..u.data.len()].copy_from_slice(&u.data);
            Done::Recv {
                env: u.env,
                data: RecvData::Pod(b),
            }
        }
        PostedBuf::Object => Done::Recv {
            env: u.env,
            data: RecvData::Object(u.data),
        },
    }
}

fn env_bytes(name: &str) -> Option<usize> {
    std::env::var(name).ok()?.trim().parse::<usize>().ok()
}

fn env_us(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|us| us.saturating_mul(1000))
}

impl Matching {
    fn finish(&mut self, id: u64, done: Done) {
        self.done.finish(id, done);
    }

    /// A message sent to this rank by itself: delivered whole, at once.
    fn deliver_local(&mut self, env: Envelope, data: &[u8]) -> Result<()> {
        self.deliver_start(env, data, &mut None)
    }

    fn on_record(
        &mut self,
        src: usize,
        rec: Record<'_>,
        direct: &mut Option<&mut Direct<'_>>,
    ) -> Result<()> {
        let corrupt = |what: &str| Error::Corrupted(format!("ring from rank {src}: {what}"));
        let kind = Kind::from_u8(rec.kind)
            .ok_or_else(|| corrupt(&format!("unknown record kind {}", rec.kind)))?;
        match decode_start(kind, &rec.words, rec.payload.len(), src) {
            Some(env) => {
                if self.inflight[src].is_some() {
                    return Err(corrupt(
                        "a new message started before the previous one ended",
                    ));
                }
                // A streamed message may fit in its first chunk (the eager limit is
                // below the chunk size): that first record then completes it.
                if env.len < rec.payload.len() {
                    return Err(corrupt("message length smaller than its first chunk"));
                }
                self.deliver_start(env, rec.payload, direct)
            }
            None => self.deliver_cont(src, rec.payload, direct),
        }
    }

    /// Delivers the first chunk of a message: to the earliest posted receive that
    /// matches, else to the blocking receive in progress, else to the unexpected queue.
    fn deliver_start(
        &mut self,
        env: Envelope,
        chunk: &[u8],
        direct: &mut Option<&mut Direct<'_>>,
    ) -> Result<()> {
        let complete = chunk.len() == env.len;
        let mut i = 0;
        while i < self.posted.len() {
            if !self.posted[i].m.matches(&env) {
                i += 1;
                continue;
            }
            // The earliest posted receive usually matches: pop it without VecDeque's
            // general removal.
            let p = if i == 0 {
                self.posted.pop_front()
            } else {
                self.posted.remove(i)
            }
            .expect("index checked");
            let comm_src = p.group.rank_of(env.src);
            if let Err(e) = p
                .want
                .check(&env, comm_src, || sent_type_name(chunk, env.type_id))
            {
                // This receive cannot take it; it fails, and the message stays available.
                self.finish(p.id, Done::Failed(e));
                continue;
            }
            let buf = match p.buf {
                PostedBuf::Pod(mut b) => {
                    b.bytes_mut()[..chunk.len()].copy_from_slice(chunk);
                    RecvData::Pod(b)
                }
                PostedBuf::Object => {
                    // The length comes from shared memory: do not trust it for a big
                    // allocation before the bytes arrive.
                    let mut v = AlignedVec::with_capacity(env.len.min(64 << 20));
                    v.extend_from_slice(chunk);
                    RecvData::Object(v)
                }
            };
            if complete {
                self.finish(p.id, Done::Recv { env, data: buf });
            } else {
                self.active.insert(p.id, Active { env, buf });
                self.inflight[env.src] = Some(Inflight {
                    env,
                    got: chunk.len(),
                    sink: Sink::Active(p.id),
                });
            }
            return Ok(());
        }
        if let Some(d) = direct.as_deref_mut() {
            if d.state == DirectState::Open && d.m.matches(&env) {
                if d.want.check(&env, 0, String::new).is_ok() {
                    d.buf[..chunk.len()].copy_from_slice(chunk);
                    if complete {
                        d.state = DirectState::Done(env);
                    } else {
                        d.state = DirectState::Receiving;
                        self.inflight[env.src] = Some(Inflight {
                            env,
                            got: chunk.len(),
                            sink: Sink::Direct,
                        });
                    }
                    return Ok(());
                }
                d.state = DirectState::Refused;
            }
        }
        let id = self.unexpected.push(env, chunk);
        if !complete {
            self.inflight[env.src] = Some(Inflight {
                env,
                got: chunk.len(),
                sink: Sink::Unexpected(id),
            });
        }
        Ok(())
    }

    /// Delivers the next chunk of the message streaming in from `src`.
    fn deliver_cont(
        &mut self,
        src: usize,
        chunk: &[u8],
        direct: &mut Option<&mut Direct<'_>>,
    ) -> Result<()> {
        let corrupt = |what: &str| Error::Corrupted(format!("ring from rank {src}: {what}"));
        let inf = self.inflight[src]
            .as_mut()
            .ok_or_else(|| corrupt("a continuation without a message"))?;
        let off = inf.got;
        if off + chunk.len() > inf.env.len {
            return Err(corrupt("a message longer than its envelope says"));
        }
        inf.got += chunk.len();
        let (env, sink, complete) = (inf.env, inf.sink, inf.got == inf.env.len);
        if complete {
            self.inflight[src] = None;
        }
        match sink {
            Sink::Direct => match direct.as_deref_mut() {
                Some(d) if d.state == DirectState::Receiving => {
                    d.buf[off..off + chunk.len()].copy_from_slice(chunk);
                    if complete {
                        d.state = DirectState::Done(env);
                    }
                }
                _ => return Err(corrupt("streamed message lost its receive buffer")),
            },
            Sink::Active(id) => {
                let a = self
                    .active
                    .get_mut(&id)
                    .ok_or_else(|| corrupt("streamed message lost its request"))?;
                match &mut a.buf {
                    RecvData::Pod(b) => {
                        b.bytes_mut()[off..off + chunk.len()].copy_from_slice(chunk)
                    }
                    RecvData::Object(v) => v.extend_from_slice(chunk),
                }
                if complete {
                    let a = self.active.remove(&id).expect("present");
                    self.finish(
                        id,
                        Done::Recv {
                            env: a.env,
                            data: a.buf,
                        },
                    );
                }
            }
            Sink::Unexpected(id) => {
                let (idx, done) = self
                    .unexpected
                    .append(id, chunk)
                    .ok_or_else(|| corrupt("streamed message vanished"))?;
                if done {
                    if let Binding::Request(rid) = self.unexpected.get(idx).binding {
                        let u = self.unexpected.take(idx);
                        let p = self.bound.remove(&rid).expect("bound request");
                        self.finish(rid, fill(p.buf, u));
                    }
                }
            }
            Sink::Discard => {}
        }
        Ok(())
    }

    /// The blocking receive filling from a stream gave up: drop the rest.
    fn abandon_direct(&mut self) {
        for inf in self.inflight.iter_mut().flatten() {
            if inf.sink == Sink::Direct {
                inf.sink = Sink::Discard;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{Layout, Params};

    /// Garbage records (a corrupted or hostile segment) give errors, never a panic, an
    /// out-of-bounds access or an absurd allocation.
    #[test]
    fn garbage_records_are_errors_not_crashes() {
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let payload = vec![0xabu8; 5000];
        let mut errors = 0;
        for _ in 0..20_000 {
            // Fresh state each round, so queues stay small.
            let mut m = Matching::default();
            m.inflight.resize_with(4, || None);
            for _ in 0..8 {
                let kind = (next() % 6) as u8;
                let len = (next() % 5000) as usize;
                let mut words = [next(), next(), next()];
                if next() % 2 == 0 {
                    words[1] %= 10_000; // plausible total lengths too
                }
                let rec = Record {
                    kind,
                    words,
                    payload: &payload[..len],
                };
                if m.on_record((next() % 4) as usize, rec, &mut None).is_err() {
                    errors += 1;
                }
            }
        }
        assert!(errors > 0);
    }

    /// Two engines of one 2-rank segment in this thread (ranks 0 and 1).
    fn pair(ring_bytes: usize) -> (Engine, Engine) {
        let layout = Layout::new(2, ring_bytes).unwrap();
        let (_fd, map) = crate::sys::shm::create(layout.total_len).unwrap();
        let params = Params {
            nranks: 2,
            ring_bytes,
            ncpus: 2,
        };
        let seg = Rc::new(Segment::init(map, params, 1).unwrap());
        let c0 = seg.claim(0, 100).unwrap();
        let c1 = seg.claim(1, 101).unwrap();
        (Engine::new(seg.clone(), c0), Engine::new(seg, c1))
    }

    /// A collective's peer may publish what a waiter waits for and leave between the
    /// waiter's last look at the awaited word and its liveness check (the peer's last
    /// step, then `finalize`). The wait must then complete, not report the peer failed:
    /// `examples/pi` at N=3 failed so in 16 of 600 runs before the re-check (0 of 400
    /// after it). A peer that left without publishing still fails the wait.
    #[test]
    fn a_peer_that_did_its_part_and_left_is_not_a_failure() {
        let (mut e0, e1) = pair(1 << 16);
        let group = Group::world(2);
        let desc = test_desc(WaitOp::Collective, Some(1), &group);
        let arrived = std::cell::Cell::new(false);
        let ready = || arrived.get();
        // A yield-phase step from the start, where the liveness check runs.
        let mut b = Backoff::new(0, u64::MAX / 2);

        // The caller looked and saw nothing; then the peer arrived and finalized.
        assert!(!ready());
        arrived.set(true);
        e1.seg.set_state(1, crate::segment::STATE_FINALIZED);
        e0.idle_until(&mut b, &desc, &ready)
            .expect("the peer did its part before leaving");

        // The same departure without the arrival is the peer's failure.
        arrived.set(false);
        let r = e0.idle_until(&mut b, &desc, &ready);
        assert!(matches!(r, Err(Error::PeerFailed { rank: 1, .. })), "{r:?}");
    }

    /// The wait description of a test's blocked call.
    fn test_desc(op: WaitOp, peer: Option<usize>, group: &Group) -> WaitDesc<'_> {
        WaitDesc {
            op,
            name: "test",
            peer,
            tag: -1,
            ctx: 0,
            group,
        }
    }

    fn env(src: usize, tag: i32, len: usize) -> Envelope {
        Envelope {
            ctx: 0,
            src,
            tag,
            len,
            type_id: 0,
        }
    }

    /// Rank 0 sends 8 bytes of `byte` with `tag` to rank 1.
    fn send8(e0: &mut Engine, group: &Group, tag: i32, byte: u8) {
        e0.send(
            1,
            env(0, tag, 8),
            &[byte; 8],
            &test_desc(WaitOp::Send, Some(0), group),
        )
        .unwrap()
    }

    /// A receive of up to `cap` raw bytes.
    fn want_bytes(cap: usize) -> Want {
        Want::Bytes {
            cap,
            elem: 1,
            elem_type: "u8",
        }
    }

    /// A receive from rank 0 on context 0 (`None`: any tag).
    fn from0(tag: Option<i32>) -> Matcher {
        Matcher {
            ctx: 0,
            src: Some(0),
            tag,
        }
    }

    #[test]
    fn blocking_receive_leaves_later_messages_in_the_ring() {
        let (mut e0, mut e1) = pair(1 << 16);
        let group = Group::world(2);
        let desc = |op| test_desc(op, None, &group);
        for i in 0..3u8 {
            e0.send(1, env(0, 5, 8), &[i; 8], &desc(WaitOp::Send))
                .unwrap();
        }
        let m = Matcher {
            ctx: 0,
            src: Some(0),
            tag: Some(5),
        };
        let want = Want::Bytes {
            cap: 8,
            elem: 1,
            elem_type: "u8",
        };
        let mut buf = [0u8; 8];
        for i in 0..3u8 {
            let got = e1
                .recv_into(m, want, &mut buf, &desc(WaitOp::Recv))
                .unwrap();
            assert_eq!((got, buf), (env(0, 5, 8), [i; 8]));
            assert_eq!(
                e1.unexpected_len(),
                0,
                "messages behind the received one stay in the ring"
            );
        }
        // A receive that does not match still drains everything behind it.
        e0.send(1, env(0, 6, 8), &[9; 8], &desc(WaitOp::Send))
            .unwrap();
        e0.send(1, env(0, 5, 8), &[7; 8], &desc(WaitOp::Send))
            .unwrap();
        e1.recv_into(m, want, &mut buf, &desc(WaitOp::Recv))
            .unwrap();
        assert_eq!((buf, e1.unexpected_len()), ([7; 8], 1));
    }

    /// The blocking receive's fast path (`take_eager`) must not take a message that an
    /// earlier posted receive, the unexpected queue or a wildcard rule gives elsewhere.
    #[test]
    fn fast_receive_keeps_the_matching_rules() {
        let (mut e0, mut e1) = pair(1 << 16);
        let group = Rc::new(Group::world(2));
        let desc = |op| test_desc(op, Some(0), &group);
        let send = |e: &mut Engine, tag, byte| send8(e, &group, tag, byte);
        let (m, want) = (from0, want_bytes);
        let mut buf = [0u8; 8];

        // A posted receive matching the same message is served first.
        let id = e1.irecv(
            m(Some(5)),
            want(8),
            PostedBuf::Pod(PodVec::new(vec![0u8; 8])),
            group.clone(),
        );
        send(&mut e0, 5, 1);
        send(&mut e0, 5, 2);
        e1.recv_into(m(Some(5)), want(8), &mut buf, &desc(WaitOp::Recv))
            .unwrap();
        assert_eq!(buf, [2; 8], "the blocking receive gets the second message");
        match e1.take_done(id) {
            Some(Done::Recv {
                data: RecvData::Pod(b),
                ..
            }) => assert_eq!(b.bytes(), &[1; 8]),
            _ => panic!("the posted receive got the first message"),
        }

        // Messages of another tag queue as unexpected; later ones still come in order.
        send(&mut e0, 6, 3);
        send(&mut e0, 5, 4);
        send(&mut e0, 5, 5);
        e1.recv_into(m(Some(5)), want(8), &mut buf, &desc(WaitOp::Recv))
            .unwrap();
        assert_eq!((buf, e1.unexpected_len()), ([4; 8], 1));
        // ANY_TAG takes the earliest: the queued tag-6 message before the ring's tag 5.
        let got = e1
            .recv_into(m(None), want(8), &mut buf, &desc(WaitOp::Recv))
            .unwrap();
        assert_eq!((got.tag, buf), (6, [3; 8]));
        let got = e1
            .recv_into(m(None), want(8), &mut buf, &desc(WaitOp::Recv))
            .unwrap();
        assert_eq!((got.tag, buf), (5, [5; 8]));

        // Too long for the buffer: the general path's error, and the message stays.
        send(&mut e0, 5, 6);
        let mut short = [0u8; 4];
        let e = e1
            .recv_into(m(Some(5)), want(4), &mut short, &desc(WaitOp::Recv))
            .unwrap_err();
        assert!(matches!(e, Error::Truncated { .. }), "{e}");
        e1.recv_into(m(Some(5)), want(8), &mut buf, &desc(WaitOp::Recv))
            .unwrap();
        assert_eq!((buf, e1.unexpected_len()), ([6; 8], 0));
    }

    /// A wait on a posted receive takes its message straight from the ring
    /// (`take_posted_whole`) only when the general path would give it that message: it
    /// is the earliest posted receive and the next record matches and fits it.
    #[test]
    fn a_wait_takes_from_the_ring_only_what_its_posted_receive_would_get() {
        let (mut e0, mut e1) = pair(1 << 16);
        let group = Rc::new(Group::world(2));
        let desc = |op| test_desc(op, Some(0), &group);
        let send = |e: &mut Engine, tag, byte| send8(e, &group, tag, byte);
        let (m, want) = (from0, want_bytes);
        let post = |e: &mut Engine, tag, cap| {
            e.irecv(
                m(tag),
                want(cap),
                PostedBuf::Pod(PodVec::new(vec![0u8; cap])),
                group.clone(),
            )
        };
        let got = |d: Done| match d {
            Done::Recv {
                env,
                data: RecvData::Pod(b),
            } => (env.tag, b.bytes()[0]),
            Done::Failed(e) => panic!("failed: {e}"),
            _ => panic!("not a receive"),
        };

        // Two posted receives; the second is waited for first: the fast path declines
        // (it is not the earliest), and the general path gives each its own message.
        let (a, b) = (post(&mut e1, Some(5), 8), post(&mut e1, None, 8));
        send(&mut e0, 5, 1);
        send(&mut e0, 7, 2);
        assert!(e1.take_posted_whole(b).is_none());
        assert_eq!(got(e1.wait(b, &desc(WaitOp::Wait)).unwrap()), (7, 2));
        assert_eq!(got(e1.wait(a, &desc(WaitOp::Wait)).unwrap()), (5, 1));

        // The earliest, with its message next in the ring: taken, and the queue is empty.
        let a = post(&mut e1, Some(5), 8);
        assert!(e1.take_posted_whole(a).is_none(), "nothing has arrived");
        send(&mut e0, 5, 3);
        assert_eq!(got(e1.take_posted_whole(a).expect("taken")), (5, 3));
        assert!(e1.m.posted.is_empty() && !e1.is_done(a));

        // The next record is for another receive: left in the ring, receive still posted.
        let a = post(&mut e1, Some(5), 8);
        send(&mut e0, 6, 4);
        send(&mut e0, 5, 5);
        assert!(e1.take_posted_whole(a).is_none());
        assert_eq!(e1.m.posted.len(), 1);
        assert_eq!(got(e1.wait(a, &desc(WaitOp::Wait)).unwrap()), (5, 5));
        assert_eq!(
            e1.unexpected_len(),
            1,
            "the tag-6 message is queued, not lost"
        );

        // Too long for the buffer: the general path's error, as without the fast path.
        let a = post(&mut e1, Some(5), 4);
        send(&mut e0, 5, 6);
        assert!(e1.take_posted_whole(a).is_none());
        match e1.wait(a, &desc(WaitOp::Wait)).unwrap() {
            Done::Failed(Error::Truncated { .. }) => {}
            _ => panic!("a truncated receive fails"),
        }
    }

    /// A blocking receive's first polls (`try_recv_whole`) take only the message the
    /// general path would give that receive, and leave anything else where it is.
    #[test]
    fn first_polls_take_only_the_next_matching_whole_message() {
        let (mut e0, mut e1) = pair(1 << 16);
        let group = Group::world(2);
        let desc = |op| test_desc(op, Some(0), &group);
        let send = |e: &mut Engine, tag, byte| send8(e, &group, tag, byte);
        let m = |src, tag| Matcher { ctx: 0, src, tag };
        let want = want_bytes;
        let mut buf = [0u8; 8];

        assert!(
            e1.try_recv_whole(&m(Some(0), None), &want(8), &mut buf)
                .is_none()
        );
        send(&mut e0, 5, 1);
        let got = e1.try_recv_whole(&m(Some(0), Some(5)), &want(8), &mut buf);
        assert_eq!((got, buf), (Some(env(0, 5, 8)), [1; 8]));

        // Another tag first: left in the ring; the general path queues it.
        send(&mut e0, 6, 2);
        send(&mut e0, 5, 3);
        assert!(
            e1.try_recv_whole(&m(Some(0), Some(5)), &want(8), &mut buf)
                .is_none()
        );
        e1.recv_into(m(Some(0), Some(5)), want(8), &mut buf, &desc(WaitOp::Recv))
            .unwrap();
        assert_eq!((buf, e1.unexpected_len()), ([3; 8], 1));

        // A queued message might be the one to take first (ANY_TAG): hands off.
        send(&mut e0, 5, 4);
        assert!(
            e1.try_recv_whole(&m(Some(0), None), &want(8), &mut buf)
                .is_none()
        );
        let got = e1
            .recv_into(m(Some(0), None), want(8), &mut buf, &desc(WaitOp::Recv))
            .unwrap();
        assert_eq!((got.tag, buf), (6, [2; 8]));

        // Too long for the buffer, or from any source: left to the general path.
        let mut short = [0u8; 4];
        assert!(
            e1.try_recv_whole(&m(Some(0), Some(5)), &want(4), &mut short)
                .is_none()
        );
        assert!(
            e1.try_recv_whole(&m(None, Some(5)), &want(8), &mut buf)
                .is_none()
        );
        e1.recv_into(m(Some(0), Some(5)), want(8), &mut buf, &desc(WaitOp::Recv))
            .unwrap();
        assert_eq!((buf, e1.unexpected_len()), ([4; 8], 0));
    }

    /// The object receive's fast path (`take_eager_object`): the right type from the
    /// ring; another type is an error that leaves the message for the right receive.
    #[test]
    fn fast_object_receive_checks_the_type_and_loses_nothing() {
        let (mut e0, mut e1) = pair(1 << 16);
        let group = Group::world(2);
        let desc = |op| test_desc(op, Some(0), &group);
        let typed = |tag, type_id| Envelope {
            type_id,
            ..env(0, tag, 8)
        };
        e0.send(1, typed(3, 77), &[1; 8], &desc(WaitOp::Send))
            .unwrap();
        e0.send(1, typed(3, 77), &[2; 8], &desc(WaitOp::Send))
            .unwrap();
        let m = Matcher {
            ctx: 0,
            src: Some(0),
            tag: Some(3),
        };
        let want = |type_id| Want::Object {
            type_id,
            type_name: "T",
        };
        let (got, v) = e1.recv_message(m, want(77), &desc(WaitOp::Recv)).unwrap();
        assert_eq!(
            (got, &v[..], e1.unexpected_len()),
            (typed(3, 77), &[1u8; 8][..], 0)
        );
        let e = e1
            .recv_message(m, want(78), &desc(WaitOp::Recv))
            .unwrap_err();
        assert!(matches!(e, Error::TypeMismatch { .. }), "{e}");
        let (_, v) = e1.recv_message(m, want(77), &desc(WaitOp::Recv)).unwrap();
        assert_eq!((&v[..], e1.unexpected_len()), (&[2u8; 8][..], 0));
    }
}
