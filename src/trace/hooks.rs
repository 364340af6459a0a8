//! The recording wrappers: the engine's entry points branch here when [`hooked`] is
//! true. Each opens the call ([`enter`], which clears the hook), calls the same entry
//! point (which now takes its ordinary path), and records the span with what the call
//! sent or received ([`leave`]).
//!
//! They are cold and never inlined, so that the entry points keep their size and
//! layout when recording is off: one load, one branch, and a call out of line.
//!
//! The blocking sends and receives of slices and objects are recorded one level up,
//! by the public methods of `Communicator` (their `*_recorded` twins call
//! [`send_open`], [`recv_open`], [`close`] and [`close_recv`]): a wrapper here would
//! hold a second copy of the engine's paths, and with two copies the compiler stops
//! inlining them into the public methods (docs/tracing.md).
//!
//! [`hooked`]: super::hooked

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use rkyv::util::AlignedVec;

use super::{CODE_COMPLETED, CODE_IMPROBE, Ev, F_COLL, F_FAILED, F_RECVS, F_SENDS, IN_COLL, Open};
use super::{enter, leave};
use crate::call::Call;
use crate::completions::Done;
use crate::envelope::Envelope;
use crate::error::Result;
use crate::matching::{Group, Matcher, PostedBuf, Unexpected, Want};
use crate::progress::{Claimed, Engine, SendBuf, Started, WaitDesc};

fn code(c: Call) -> u8 {
    c.code() as u8
}

fn failed<T>(r: &Result<T>) -> u8 {
    if r.is_err() { F_FAILED } else { 0 }
}

/// The span of a call that sends one message to `dest`.
fn send_ev(call: Call, dest: usize, env: &Envelope, flags: u8) -> Ev {
    Ev {
        code: code(call),
        flags: F_SENDS | flags,
        ctx: env.ctx,
        speer: dest as i32,
        stag: env.tag,
        sbytes: env.len as u64,
        rpeer: -1,
        rtag: -1,
        ..Ev::default()
    }
}

/// Adds the message `env` received to a span.
fn with_recv(mut ev: Ev, env: &Envelope) -> Ev {
    ev.flags |= F_RECVS;
    ev.ctx = env.ctx;
    ev.rpeer = env.src as i32;
    ev.rtag = env.tag;
    ev.rbytes = env.len as u64;
    ev
}

/// A span with no message yet: peer and tag of what it waits for.
fn plain(call: Call, ctx: u32, peer: Option<usize>, tag: Option<i32>) -> Ev {
    Ev {
        code: code(call),
        ctx,
        speer: peer.map_or(-1, |p| p as i32),
        stag: tag.unwrap_or(-1),
        rpeer: -1,
        rtag: -1,
        ..Ev::default()
    }
}

fn open_for(ev: &Ev) -> Open {
    enter(ev.code, ev.ctx, ev.speer, ev.stag)
}

/// An open span of a blocking send or receive of the public API (`send_open`,
/// `recv_open`), closed by `close` or `close_recv`.
pub(crate) struct Span(Open, Ev);

// The functions below are inlined into the public methods' cold `*_recorded` twins,
// which call them: each layer of calls cost a frame on every recorded call.

/// A blocking send of `len` bytes to world rank `dest` starts.
#[inline(always)]
pub(crate) fn send_open(call: Call, dest: usize, ctx: u32, tag: i32, len: usize) -> Span {
    let ev = Ev {
        code: code(call),
        flags: F_SENDS,
        ctx,
        speer: dest as i32,
        stag: tag,
        sbytes: len as u64,
        rpeer: -1,
        rtag: -1,
        ..Ev::default()
    };
    Span(open_for(&ev), ev)
}

/// A blocking receive from world rank `src` (`None`: any) starts.
#[inline(always)]
pub(crate) fn recv_open(call: Call, ctx: u32, src: Option<usize>, tag: Option<i32>) -> Span {
    let ev = plain(call, ctx, src, tag);
    Span(open_for(&ev), ev)
}

/// Runs `f`, a public call that involves no message (to `PROC_NULL`, a bad rank) and so
/// opens no span, with the hook cleared as a span's `enter` would: with it set, the
/// call would branch back to its recording twin for ever.
#[inline(always)]
pub(crate) fn unrecorded<R>(f: impl FnOnce() -> R) -> R {
    super::HOOK.store(false, Ordering::Relaxed);
    let r = f();
    super::HOOK.store(true, Ordering::Relaxed);
    r
}

/// The call of `span` ends with no message received (a send, or a failed receive).
#[inline(always)]
pub(crate) fn close(span: Span, failed: bool) {
    let Span(o, ev) = span;
    let flags = ev.flags | if failed { F_FAILED } else { 0 };
    leave(o, Ev { flags, ..ev });
}

/// The receive of `span` ends with the message of `len` bytes from world rank `src`.
#[inline(always)]
pub(crate) fn close_recv(span: Span, ctx: u32, src: usize, tag: i32, len: usize) {
    let Span(o, ev) = span;
    let ev = Ev {
        flags: ev.flags | F_RECVS,
        ctx,
        rpeer: src as i32,
        rtag: tag,
        rbytes: len as u64,
        ..ev
    };
    leave(o, ev);
}

/// Runs `call` inside a span of `ev`, marked failed if it returns an error.
fn spanned<T>(ev: Ev, call: impl FnOnce() -> Result<T>) -> Result<T> {
    let o = open_for(&ev);
    let r = call();
    leave(
        o,
        Ev {
            flags: ev.flags | failed(&r),
            ..ev
        },
    );
    r
}

/// `Engine::ssend`.
#[cold]
#[inline(never)]
pub(crate) fn ssend(
    eng: &mut Engine,
    dest: usize,
    env: Envelope,
    data: &[u8],
    desc: &WaitDesc<'_>,
    ack_desc: &WaitDesc<'_>,
) -> Result<()> {
    spanned(send_ev(desc.call, dest, &env, 0), || {
        eng.ssend(dest, env, data, desc, ack_desc)
    })
}

/// `Engine::isend` and `Engine::issend` (`sync`).
#[cold]
#[inline(never)]
pub(crate) fn isend(
    eng: &mut Engine,
    dest: usize,
    env: Envelope,
    buf: SendBuf,
    sync: bool,
) -> Result<Started> {
    let call = if sync { Call::Issend } else { Call::Isend };
    spanned(send_ev(call, dest, &env, 0), || {
        if sync {
            eng.issend(dest, env, buf)
        } else {
            eng.isend(dest, env, buf)
        }
    })
}

fn done_recv(ev: Ev, env: Option<Envelope>, flags: u8) -> Ev {
    let ev = Ev {
        flags: ev.flags | flags,
        ..ev
    };
    match env {
        Some(env) if flags & F_FAILED == 0 => with_recv(ev, &env),
        _ => ev,
    }
}

/// `Engine::recv_message`.
#[cold]
#[inline(never)]
pub(crate) fn recv_message(
    eng: &mut Engine,
    m: Matcher,
    want: Want,
    desc: &WaitDesc<'_>,
) -> Result<(Envelope, AlignedVec)> {
    let ev = plain(desc.call, m.ctx, m.src, m.tag);
    let o = open_for(&ev);
    let r = eng.recv_message(m, want, desc);
    let env = r.as_ref().ok().map(|(e, _)| *e);
    leave(o, done_recv(ev, env, failed(&r)));
    r
}

/// `Engine::sendrecv_into`.
#[cold]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn sendrecv_into(
    eng: &mut Engine,
    dest: usize,
    env: Envelope,
    data: &[u8],
    m: Matcher,
    want: Want,
    buf: &mut [u8],
    send_desc: &WaitDesc<'_>,
    recv_desc: &WaitDesc<'_>,
) -> Result<Envelope> {
    let ev = send_ev(send_desc.call, dest, &env, 0);
    let o = open_for(&ev);
    let r = eng.sendrecv_into(dest, env, data, m, want, buf, send_desc, recv_desc);
    let got = r.as_ref().ok().copied();
    // A failed sendrecv may have sent its message; it is drawn as not sent.
    leave(o, done_recv(ev, got, failed(&r)));
    r
}

/// `Engine::probe`.
#[cold]
#[inline(never)]
pub(crate) fn probe(
    eng: &mut Engine,
    m: Matcher,
    desc: &WaitDesc<'_>,
) -> Result<(Envelope, usize)> {
    spanned(plain(desc.call, m.ctx, m.src, m.tag), || eng.probe(m, desc))
}

/// `Engine::mprobe`: the matched probe receives the message (it leaves matching).
#[cold]
#[inline(never)]
pub(crate) fn mprobe(
    eng: &mut Engine,
    m: Matcher,
    desc: &WaitDesc<'_>,
) -> Result<(Envelope, Claimed)> {
    let ev = plain(desc.call, m.ctx, m.src, m.tag);
    let o = open_for(&ev);
    let r = eng.mprobe(m, desc);
    let env = r.as_ref().ok().map(|(e, _)| *e);
    leave(o, done_recv(ev, env, failed(&r)));
    r
}

/// `Engine::improbe`: recorded only when it matched a message.
#[cold]
#[inline(never)]
pub(crate) fn improbe(eng: &mut Engine, m: Matcher) -> Result<Option<(Envelope, Claimed)>> {
    let ev = Ev {
        code: CODE_IMPROBE,
        ..plain(Call::Mprobe, m.ctx, m.src, m.tag)
    };
    let o = open_for(&ev);
    let r = eng.improbe(m);
    let env = match &r {
        Ok(Some((e, _))) => Some(*e),
        _ => None,
    };
    match env {
        Some(e) => leave(o, with_recv(ev, &e)),
        None => cancel(),
    }
    r
}

/// Closes a call that is not worth an event (an `improbe` that found nothing).
fn cancel() {
    if let Some(r) = super::REGION.get() {
        r.head[super::H_OPEN_T].store(0, Ordering::Relaxed);
    }
    super::HOOK.store(true, Ordering::Relaxed);
}

/// `Engine::wait_claimed` (the receive of a message a matched probe took).
#[cold]
#[inline(never)]
pub(crate) fn wait_claimed(eng: &mut Engine, id: u64, desc: &WaitDesc<'_>) -> Result<Unexpected> {
    spanned(
        plain(Call::Mrecv, desc.ctx, desc.peer, Some(desc.tag)),
        || eng.wait_claimed(id, desc),
    )
}

/// `Engine::irecv`: posting, a short span with no message.
#[cold]
#[inline(never)]
pub(crate) fn irecv(
    eng: &mut Engine,
    m: Matcher,
    want: Want,
    buf: PostedBuf,
    group: Rc<Group>,
) -> u64 {
    let ev = plain(Call::Irecv, m.ctx, m.src, m.tag);
    let o = open_for(&ev);
    let id = eng.irecv(m, want, buf, group);
    leave(o, ev);
    id
}

/// `Engine::wait`: a receive's message is received when its wait hands it out.
#[cold]
#[inline(never)]
pub(crate) fn wait(eng: &mut Engine, id: u64, desc: &WaitDesc<'_>) -> Result<Done> {
    // Named `wait`; the request's own call goes where a collective keeps its op.
    let ev = Ev {
        op: code(desc.call),
        ..plain(Call::Wait, desc.ctx, desc.peer, Some(desc.tag))
    };
    let o = open_for(&ev);
    let r = eng.wait(id, desc);
    let env = match &r {
        Ok(Done::Recv { env, .. }) => Some(*env),
        _ => None,
    };
    let fl = match &r {
        Ok(Done::Failed(_)) | Err(_) => F_FAILED,
        _ => 0,
    };
    leave(o, done_recv(ev, env, fl));
    r
}

/// `Engine::take_done`: a request's result handed out by a test or a wait on several;
/// recorded when it is a received message.
#[cold]
#[inline(never)]
pub(crate) fn take_done(eng: &mut Engine, id: u64) -> Option<Done> {
    let ev = Ev {
        code: CODE_COMPLETED,
        ..plain(Call::Wait, 0, None, None)
    };
    let o = open_for(&ev);
    let r = eng.take_done(id);
    match &r {
        Some(Done::Recv { env, .. }) => leave(o, with_recv(ev, env)),
        _ => cancel(),
    }
    r
}

thread_local! {
    /// The open collective: its start and its event, valid while `IN_COLL` is set.
    static COLL: Cell<(Open, Ev)> = const { Cell::new((Open { t0: 0 }, Ev::EMPTY)) };
}

/// A collective call starts.
#[cold]
#[inline(never)]
pub(crate) fn coll_begin(code: u8, ctx: u32, root: u32, op: u8, count: u64) {
    let ev = Ev {
        code,
        flags: F_COLL,
        op,
        ctx,
        speer: -1,
        stag: -1,
        sbytes: count,
        rpeer: root as i32,
        rtag: -1,
        rbytes: 0,
    };
    let o = enter(code, ctx, -1, -1);
    IN_COLL.store(true, Ordering::Relaxed);
    COLL.with(|c| c.set((o, ev)));
}

/// A collective call ends.
#[cold]
#[inline(never)]
pub(crate) fn coll_end(failed: bool) {
    IN_COLL.store(false, Ordering::Relaxed);
    let (o, ev) = COLL.with(Cell::get);
    let flags = ev.flags | if failed { F_FAILED } else { 0 };
    leave(o, Ev { flags, ..ev });
}
