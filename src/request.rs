//! Non-blocking operations: [`Request`], [`wait_all`], [`wait_any`].
//!
//! Requests are leak-safe by construction: the runtime owns every buffer a pending
//! operation uses (a non-blocking send takes its `Vec` or a serialized copy, a
//! non-blocking receive takes the `Vec` it fills) and hands it back at completion. So
//! dropping a request, or `mem::forget`-ing it, can never leave the runtime writing
//! into memory the program has reused. Dropping an unfinished receive cancels it;
//! dropping an unfinished send lets it complete in the background (like
//! `MPI_Request_free`); forgetting one leaks its bookkeeping, nothing else.
//!
//! A request holds only a weak reference to the engine, so that no request handle,
//! forgotten or not, keeps the rank from finalizing when its `Universe` and
//! communicators are dropped; waiting on a request after that is an error.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use crate::call::Call;
use crate::completions::Done;
use crate::error::{Error, Result};
use crate::matching::Group;
use crate::progress::{Engine, WaitDesc, WaitOp};

/// A pending non-blocking operation that produces a `T` when it completes
/// (`()` for sends of objects, the buffer back for [`isend_vec`], the received value
/// and its [`Status`](crate::Status) for receives).
///
/// [`isend_vec`]: crate::Communicator::isend_vec
#[must_use = "a request does nothing until it is waited on or tested"]
pub struct Request<T> {
    eng: Weak<RefCell<Engine>>,
    id: u64,
    what: What,
    /// Turns the engine's result into the request's (a plain function: no allocation
    /// per request). `None` once it has run.
    finish: Option<Finish<T>>,
}

/// How a request's result is made from the engine's [`Done`] and what it waited for.
pub(crate) type Finish<T> = fn(Done, &What) -> Result<T>;

/// What a request waits for, to check the peer is alive and to word errors.
pub(crate) struct What {
    pub(crate) call: Call,
    pub(crate) peer: Option<usize>,
    pub(crate) tag: i32,
    pub(crate) ctx: u32,
    pub(crate) group: Rc<Group>,
}

impl<T> Request<T> {
    pub(crate) fn new(eng: Rc<RefCell<Engine>>, id: u64, what: What, finish: Finish<T>) -> Self {
        Request {
            eng: Rc::downgrade(&eng),
            id,
            what,
            finish: Some(finish),
        }
    }

    /// The engine, unless this rank has already finalized.
    fn engine(&self) -> Result<Rc<RefCell<Engine>>> {
        self.eng.upgrade().ok_or_else(|| {
            Error::Usage(format!(
                "{} request waited on or tested after this rank finalized (its Universe and \
                 every Communicator were dropped); wait on requests before dropping them",
                self.what.call.name()
            ))
        })
    }

    fn desc(&self) -> WaitDesc<'_> {
        WaitDesc {
            op: WaitOp::Wait,
            call: self.what.call,
            peer: self.what.peer,
            tag: self.what.tag,
            ctx: self.what.ctx,
            group: &self.what.group,
        }
    }

    fn complete(&mut self, done: Done) -> Result<T> {
        let f = self.finish.take().expect("a request completes once");
        f(done, &self.what)
    }

    /// Blocks until the operation completes and returns its result (`MPI_Wait`).
    pub fn wait(mut self) -> Result<T> {
        let eng = self.engine()?;
        let done = eng.borrow_mut().wait(self.id, &self.desc())?;
        self.complete(done)
    }

    /// Makes progress once and tells whether the operation has completed (`MPI_Test`).
    /// A completed request still needs [`wait`](Self::wait) (which then returns at
    /// once) to collect its result.
    pub fn test(&mut self) -> Result<bool> {
        let eng = self.engine()?;
        let mut eng = eng.borrow_mut();
        if eng.is_done(self.id) {
            return Ok(true);
        }
        eng.progress(None)?;
        if let Some(a) = eng.segment().abort_info() {
            return Err(a.to_error("in test"));
        }
        Ok(eng.is_done(self.id))
    }
}

impl<T> Drop for Request<T> {
    fn drop(&mut self) {
        if self.finish.is_some() {
            if let Some(eng) = self.eng.upgrade() {
                if let Ok(mut eng) = eng.try_borrow_mut() {
                    eng.forget(self.id);
                }
            }
        }
    }
}

/// Waits for every request and returns their results in order (`MPI_Waitall`). The
/// first error is returned after all requests have been waited for.
pub fn wait_all<T>(requests: Vec<Request<T>>) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(requests.len());
    let mut first_err = None;
    for r in requests {
        match r.wait() {
            Ok(v) => out.push(v),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        None => Ok(out),
        Some(e) => Err(e),
    }
}

/// Waits until one of the requests completes, removes it from `requests` and returns
/// its index and result (`MPI_Waitany`). Fails on an empty list.
pub fn wait_any<T>(requests: &mut Vec<Request<T>>) -> Result<(usize, T)> {
    let Some(first) = requests.first() else {
        return Err(Error::Usage("wait_any on an empty list of requests".into()));
    };
    let eng = first.engine()?;
    let group = Group::world(eng.borrow().size());
    let desc = WaitDesc {
        op: WaitOp::Wait,
        call: Call::WaitAny,
        peer: None,
        tag: -1,
        ctx: 0,
        group: &group,
    };
    let mut b = eng.borrow().backoff();
    loop {
        let found = {
            let mut e = eng.borrow_mut();
            e.progress(None).inspect_err(|_| e.end_wait())?;
            requests.iter().position(|r| e.is_done(r.id))
        };
        if let Some(i) = found {
            eng.borrow_mut().end_wait();
            let mut r = requests.remove(i);
            let done = eng.borrow_mut().take_done(r.id).expect("checked done");
            return r.complete(done).map(|v| (i, v));
        }
        let mut e = eng.borrow_mut();
        // Fail only when no pending request can complete any more.
        let mut first_err = None;
        let mut alive = false;
        for r in requests.iter() {
            match e.check_alive(&r.desc()) {
                Ok(()) => alive = true,
                Err(err) => {
                    first_err.get_or_insert(err);
                }
            }
        }
        if !alive {
            e.end_wait();
            return Err(first_err.expect("non-empty list"));
        }
        e.idle(&mut b, &desc).inspect_err(|_| e.end_wait())?;
    }
}

impl<T> std::fmt::Debug for Request<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("call", &self.what.call.name())
            .field("peer", &self.what.peer)
            .field("tag", &self.what.tag)
            .field("context", &self.what.ctx)
            .field("collected", &self.finish.is_none())
            .finish()
    }
}
