//! Non-blocking operations: [`Request`], the waits and tests over many requests
//! ([`wait_all`], [`wait_any`], [`wait_some`], [`test_any`], [`test_some`],
//! [`test_all`]), and over requests of different result types ([`AnyRequest`],
//! [`wait_any_of`], [`test_any_of`]).
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
//!
//! A request whose result was handed out (by [`Request::test`]) is *spent*, like a
//! request MPI has freed: waiting on it or testing it again is an error of class
//! [`ErrorClass::Request`]. The functions that return the results of the requests
//! that complete ([`wait_any`], [`test_any`], [`wait_some`], [`test_some`],
//! [`wait_any_of`], [`test_any_of`]) skip it (MPI's `MPI_REQUEST_NULL`); [`wait_all`]
//! and [`test_all`], which return one result per request, have none to give for it
//! and fail with that error ([`test_all`] before it takes any request out of the
//! list).
//!
//! Cancelling (`MPI_Cancel`, [`Request::cancel`]): a receive that no message has
//! matched yet is withdrawn at once, never gets a message later (the message goes to
//! the next matching receive), and completes with a status whose
//! [`is_cancelled`](crate::Status::is_cancelled) is true. A send is never cancelled:
//! shmpi's sends are in the receiver's ring (or queued to it in order) from the
//! moment they start, so they complete as usual.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use crate::call::Call;
use crate::comm::Status;
use crate::completions::Done;
use crate::error::{Error, ErrorClass, Result};
use crate::matching::Group;
use crate::out::{self, Filled, Slot};
use crate::progress::{Engine, Started, WaitDesc, WaitOp};
pub(crate) use sealed::Sealed;

/// A pending non-blocking operation that produces a `T` when it completes
/// (`()` for sends of objects, the buffer back for [`isend_vec`], the received value
/// and its [`Status`] for receives).
///
/// [`isend_vec`]: crate::Communicator::isend_vec
#[must_use = "dropping a request cancels a receive no message has matched; its result comes from wait or test"]
pub struct Request<T> {
    eng: Weak<RefCell<Engine>>,
    /// Turns the engine's result into the request's (a plain function: no allocation
    /// per request). `None` once it has run: the request is spent.
    finish: Option<Finish<T>>,
    state: State<T>,
    /// The request on the MPI backend (its id names it in its communicator's table).
    #[cfg(feature = "mpi")]
    mpi: Option<crate::mpi::req::Handle>,
}

/// Where a request's result is. An operation that finished as it started keeps its
/// result in the place of its engine bookkeeping, so that the handle is no larger.
enum State<T> {
    /// Under way or finished in the engine's slot `id` (or the MPI backend's table).
    Engine { id: u64, what: What },
    /// Finished as it started (a send all in the ring, a receive whose message was
    /// next in its ring): its result, made then, and how to read its status from it;
    /// waits and tests hand it out without a call into the engine.
    Ready(T, Call, fn(&T) -> Status),
    /// A `Ready` request whose result was handed out.
    Spent(Call),
}

/// The id of a request that finished as it started (never a slot's id).
pub(crate) const READY: u64 = 0;

/// How a request's result is made from the engine's [`Done`] and what it waited for,
/// written where the caller keeps it (see [`crate::out`]). It takes the `Done` from
/// where the engine made it: passed by value to a function pointer, it would be copied
/// whole first, while its fields are still being stored.
pub(crate) type Finish<T> = for<'a> fn(&mut Option<Done>, &What, Slot<'a, T>) -> Made<'a>;

/// What a [`Finish`] returns: its error boxed, so that the result is one word (in a
/// register, not a 56-byte `Result` stored and copied on every call).
pub(crate) type Made<'a> = std::result::Result<Filled<'a>, Box<Error>>;

/// What a request waits for, to check the peer is alive and to word errors.
pub(crate) struct What {
    pub(crate) call: Call,
    pub(crate) peer: Option<usize>,
    pub(crate) tag: i32,
    pub(crate) ctx: u32,
    pub(crate) group: Rc<Group>,
}

impl What {
    /// The description a blocked wait on this request publishes.
    pub(crate) fn desc(&self) -> WaitDesc<'_> {
        WaitDesc {
            op: WaitOp::Wait,
            call: self.call,
            peer: self.peer,
            tag: self.tag,
            ctx: self.ctx,
            group: &self.group,
        }
    }

    /// The call with its peer and tag, as a user wrote it (`irecv(source=1, tag=5)`).
    pub(crate) fn describe(&self) -> String {
        let peer = match self.peer {
            Some(p) => self.group.rank_of(p).to_string(),
            None => "ANY_SOURCE".into(),
        };
        let tag = if self.tag < 0 {
            "ANY_TAG".into()
        } else {
            self.tag.to_string()
        };
        let arg = if self.call.name().contains("recv") {
            "source"
        } else {
            "dest"
        };
        format!("{}({arg}={peer}, tag={tag})", self.call.name())
    }
}

/// The error of waiting on an object receive that was cancelled: it has no value.
pub(crate) fn cancelled_error(what: &What) -> Error {
    Error::invalid(
        ErrorClass::Request,
        format!(
            "{} was cancelled: it received nothing (get_status() before waiting tells a \
             cancelled request by Status::is_cancelled)",
            what.describe()
        ),
    )
}

/// The engine behind a request, unless this rank has already finalized.
fn engine_of(eng: &Weak<RefCell<Engine>>, call: Call) -> Result<Rc<RefCell<Engine>>> {
    eng.upgrade().ok_or_else(|| {
        Error::Usage(format!(
            "{} request waited on or tested after this rank finalized (its Universe and \
             every Communicator were dropped); wait on requests before dropping them",
            call.name()
        ))
    })
}

/// One progress pass for a test: then the caller looks for finished requests.
fn test_pass(eng: &mut Engine) -> Result<()> {
    eng.progress(None)?;
    if let Some(a) = eng.segment().abort_info() {
        return Err(a.to_error("in test"));
    }
    Ok(())
}

/// Fails as a wait on these requests (what each waits for) would when none of them
/// (with `every`, some one) can finish any more because the peers they depend on
/// left; `check` is the engine's look at one request, worded for a wait
/// ([`Engine::check_alive`]) or a test ([`Engine::check_tested`]).
fn check_requests<'a>(
    eng: &mut Engine,
    whats: impl Iterator<Item = &'a What>,
    every: bool,
    check: fn(&mut Engine, &WaitDesc<'_>) -> Result<()>,
) -> Result<()> {
    let mut first_err = None;
    let mut alive = false;
    for what in whats {
        match check(eng, &what.desc()) {
            Ok(()) => alive = true,
            Err(e) if every => return Err(e),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) if !alive => Err(e),
        _ => Ok(()),
    }
}

/// [`check_requests`] after a test found its requests unfinished.
fn test_alive<'a>(
    eng: &mut Engine,
    whats: impl Iterator<Item = &'a What>,
    every: bool,
) -> Result<()> {
    check_requests(eng, whats, every, Engine::check_tested)
}

/// The status of a send: MPI's empty status.
fn sent_status<T>(_: &T) -> Status {
    Status::empty(false)
}

/// The status of a finished operation, for `get_status`.
pub(crate) fn status_of(done: &Done, what: &What) -> Status {
    match done {
        Done::Recv { env, .. } => Status::received(env, &what.group),
        Done::Cancelled(_) => Status::empty(true),
        Done::Failed(e) => Status::failed(e),
        Done::Sent(_) => Status::empty(false),
    }
}

impl<T> Request<T> {
    pub(crate) fn new(eng: &Rc<RefCell<Engine>>, id: u64, what: What, finish: Finish<T>) -> Self {
        Request {
            eng: Rc::downgrade(eng),
            finish: Some(finish),
            state: State::Engine { id, what },
            #[cfg(feature = "mpi")]
            mpi: None,
        }
    }

    /// The request of an operation as it started: finished (no slot), or under way.
    #[inline]
    pub(crate) fn started(
        eng: &Rc<RefCell<Engine>>,
        started: Started,
        what: What,
        finish: Finish<T>,
    ) -> Self {
        let id = match started {
            Started::Id(id) => id,
            // Recorded, a request keeps a slot so that the engine's wait records its
            // wait like any other (a check here costs less than one in `wait`).
            Started::Done(d) if crate::trace::hooked() => eng.borrow_mut().complete_now(d),
            // A send's result (nothing, or its owned buffer back) is made now and kept
            // in the handle: no slot, and no engine call to wait on it.
            Started::Done(d @ Done::Sent(_)) => {
                return Request::finished(eng, d, what, finish, sent_status::<T>);
            }
            Started::Done(d) => eng.borrow_mut().complete_now(d),
        };
        Request::new(eng, id, what, finish)
    }

    /// The request of an operation that finished as it started (a send all in the
    /// ring, a receive that took its message as it was posted): its result made now
    /// and kept in the handle, `status` reads the status from it. A result that is an
    /// error waits in a slot like any other.
    #[inline]
    pub(crate) fn finished(
        eng: &Rc<RefCell<Engine>>,
        done: Done,
        what: What,
        finish: Finish<T>,
        status: fn(&T) -> Status,
    ) -> Self {
        match out::make_with(|s| finish(&mut Some(done), &what, s).map_err(|e| *e)) {
            Ok(v) => Request::ready(eng, v, what.call, status),
            Err(e) => {
                let id = eng.borrow_mut().complete_now(Done::Failed(e));
                Request::new(eng, id, what, finish)
            }
        }
    }

    /// The request of a send whose message went whole into the ring as it started
    /// (`Communicator::try_isend_now`): finished, holding `v`, its buffer.
    #[inline]
    pub(crate) fn sent_at_start(eng: &Rc<RefCell<Engine>>, v: T, call: Call) -> Self {
        Request::ready(eng, v, call, sent_status::<T>)
    }

    /// A finished request holding its result `v`; `status` reads its status from it.
    #[inline]
    fn ready(eng: &Rc<RefCell<Engine>>, v: T, call: Call, status: fn(&T) -> Status) -> Self {
        Request {
            eng: Rc::downgrade(eng),
            finish: None,
            state: State::Ready(v, call, status),
            #[cfg(feature = "mpi")]
            mpi: None,
        }
    }

    /// A request of the MPI backend: `id` in `comm`'s request table.
    #[cfg(feature = "mpi")]
    pub(crate) fn new_mpi(
        comm: &Rc<crate::mpi::Comm>,
        eng: &Rc<RefCell<Engine>>,
        id: u64,
        what: What,
        finish: Finish<T>,
    ) -> Self {
        let mut r = Request::new(eng, id, what, finish);
        r.mpi = Some(crate::mpi::req::Handle(Rc::downgrade(comm)));
        r
    }

    /// The request's id (in the engine, or in its communicator's table on MPI);
    /// [`READY`] for one that finished as it started.
    pub(crate) fn id(&self) -> u64 {
        match self.state {
            State::Engine { id, .. } => id,
            State::Ready(..) | State::Spent(_) => READY,
        }
    }

    /// What the request waits for, unless it finished as it started.
    fn what(&self) -> Option<&What> {
        match &self.state {
            State::Engine { what, .. } => Some(what),
            State::Ready(..) | State::Spent(_) => None,
        }
    }

    /// The call that started the request.
    fn call(&self) -> Call {
        match &self.state {
            State::Engine { what, .. } => what.call,
            State::Ready(_, call, _) | State::Spent(call) => *call,
        }
    }

    /// The result of a request that finished as it started, once.
    #[inline]
    fn take_ready(&mut self) -> Option<T> {
        if !matches!(self.state, State::Ready(..)) {
            return None;
        }
        let call = self.call();
        match std::mem::replace(&mut self.state, State::Spent(call)) {
            State::Ready(v, ..) => Some(v),
            _ => unreachable!("checked above"),
        }
    }

    /// Whether this request runs on the MPI backend.
    #[cfg(feature = "mpi")]
    pub(crate) fn is_mpi(&self) -> bool {
        self.mpi.is_some()
    }

    /// On the MPI backend, whether the request has completed (progressing it once);
    /// `None` for a spent request or one of the shared segment.
    #[cfg(feature = "mpi")]
    pub(crate) fn mpi_state(&mut self) -> Option<Result<bool>> {
        match (&self.mpi, &self.finish) {
            (Some(h), Some(_)) => Some(h.is_done(self.id())),
            // Finished as it started (a small send that MPI or the ring took at once):
            // complete, whatever else the list holds.
            _ if matches!(self.state, State::Ready(..)) => Some(Ok(true)),
            // A result the engine keeps (on the MPI backend, an operation on PROC_NULL
            // or one that failed as it started): complete once it is there.
            (None, Some(_)) => {
                let eng = self.eng.upgrade()?;
                let done = eng.try_borrow().ok()?.is_done(self.id());
                done.then_some(Ok(true))
            }
            _ => None,
        }
    }

    /// Marks a request that finished as it started on the MPI backend as the MPI
    /// backend's, so that the functions over many requests take the MPI backend's way.
    #[cfg(feature = "mpi")]
    pub(crate) fn of_mpi(mut self, comm: &Rc<crate::mpi::Comm>) -> Self {
        if matches!(self.state, State::Ready(..)) {
            self.mpi = Some(crate::mpi::req::Handle(Rc::downgrade(comm)));
        }
        self
    }

    /// Whether the request's result was handed out (by [`test`](Self::test)).
    #[inline]
    fn spent(&self) -> bool {
        match self.state {
            State::Engine { .. } => self.finish.is_none(),
            State::Ready(..) => false,
            State::Spent(_) => true,
        }
    }

    /// The engine, unless this rank has already finalized or the request is spent.
    fn engine(&self) -> Result<Rc<RefCell<Engine>>> {
        if self.spent() {
            return Err(Error::invalid(
                ErrorClass::Request,
                format!(
                    "{} request used after test() returned its result: the request is \
                     spent, its result was handed out once",
                    self.what()
                        .map_or_else(|| self.call().name().into(), What::describe)
                ),
            ));
        }
        engine_of(&self.eng, self.call())
    }

    /// The result of a request found finished.
    fn take_finished(&mut self) -> Result<T> {
        if let Some(v) = self.take_ready() {
            return Ok(v);
        }
        let eng = self.engine()?;
        let d = eng.borrow_mut().take_done(self.id()).expect("checked done");
        self.complete(d)
    }

    /// Whether the request finished as it started (its result is in the handle).
    #[inline]
    pub(crate) fn finished_at_start(&self) -> bool {
        matches!(self.state, State::Ready(..))
    }

    /// The request's result from the engine's.
    fn complete(&mut self, done: Done) -> Result<T> {
        out::make_with(|s| self.complete_into(&mut Some(done), s))
    }

    /// [`complete`](Self::complete), writing the result into `out`.
    #[inline]
    fn complete_into<'a>(
        &mut self,
        done: &mut Option<Done>,
        out: Slot<'a, T>,
    ) -> Result<Filled<'a>> {
        let f = self.finish.take().expect("a request completes once");
        let State::Engine { what, .. } = &self.state else {
            unreachable!("only a request in the engine has a finish left")
        };
        f(done, what, out).map_err(|e| *e)
    }

    /// Blocks until the operation completes and returns its result (`MPI_Wait`).
    ///
    /// MPI 4.1 §3.7.3 (`MPI_Wait`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] of class [`ErrorClass::Request`] when the request is spent
    ///   (a `test` returned its result already);
    /// - [`Error::Usage`] when this rank has finalized (its `Universe` and every
    ///   `Communicator` were dropped);
    /// - the operation's own errors, given in the call that started it: for a receive
    ///   [`Error::Truncated`], [`Error::ElementSize`], [`Error::TypeMismatch`] (the message stays
    ///   queued) or [`Error::InvalidArchive`]; for a cancelled object receive,
    ///   [`Error::InvalidArgument`] of class [`ErrorClass::Request`];
    /// - [`Error::PeerFailed`] when the peer it waits on (for a receive from `ANY_SOURCE`,
    ///   every other rank) dies or leaves first; [`Error::Aborted`] when the job is aborted;
    ///   [`Error::Corrupted`] when a ring fails a consistency check.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let req = world.irecv::<u32>(me, 0)?;
    /// world.send(&9u32, me, 0)?;
    /// let (v, st) = req.wait()?;
    /// assert_eq!((v, st.source()), (9, me));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn wait(mut self) -> Result<T> {
        self.wait_in_place()
    }

    /// [`wait`](Self::wait) on a request left where it is, spent once its result is
    /// out, so that `wait_all` moves no request out of its vector.
    #[inline]
    fn wait_in_place(&mut self) -> Result<T> {
        out::make_with(|s| self.wait_into(s))
    }

    /// [`wait_in_place`](Self::wait_in_place), writing the result into `out` (for
    /// `wait_all`, the next element of the vector it returns).
    #[inline]
    fn wait_into<'a>(&mut self, out: Slot<'a, T>) -> Result<Filled<'a>> {
        if let Some(v) = self.take_ready() {
            return Ok(out.fill(v));
        }
        let eng = self.engine()?;
        #[cfg(feature = "mpi")]
        if let Some(h) = &self.mpi {
            let done = h.wait(self.id())?;
            return self.complete_into(&mut Some(done), out);
        }
        let State::Engine { id, what } = &self.state else {
            unreachable!("a request not in the engine is ready or spent")
        };
        // The result is made where the engine has it (`Engine::wait_with`); the finish
        // is spent only then, so that a failed wait leaves the request pending.
        let f = self.finish.expect("a request in the engine has its finish");
        let r = eng
            .borrow_mut()
            .wait_with(*id, &what.desc(), |done| f(done, what, out))?;
        self.finish = None;
        r.map_err(|e| *e)
    }

    /// Makes progress once and returns the result if the operation has completed
    /// (`MPI_Test`; mpi4py's `req.test()` returns `(flag, obj)`). After it returned
    /// `Some`, the request is spent: a later `test` or `wait` is an error of class
    /// [`ErrorClass::Request`].
    ///
    /// MPI 4.1 §3.7.3 (`MPI_Test`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] of class [`ErrorClass::Request`] when the request is spent
    ///   (a `test` returned its result already);
    /// - [`Error::Usage`] when this rank has finalized (its `Universe` and every
    ///   `Communicator` were dropped);
    /// - when it completes, the operation's own errors, as for [`wait`](Self::wait);
    /// - [`Error::PeerFailed`] or [`Error::Aborted`] when the job was aborted (a rank died,
    ///   called `abort`, or the launcher stopped it); [`Error::Corrupted`] when a ring fails a
    ///   consistency check;
    /// - [`Error::PeerFailed`] when the request can never complete, as its wait would: the
    ///   peer it waits on (for a receive from `ANY_SOURCE`, every other rank) has left
    ///   (noticed by one test in a few), so that a loop of tests ends; the request stays
    ///   pending and may still be cancelled (as ULFM's `MPI_ERR_PROC_FAILED_PENDING`).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let mut req = world.irecv::<u32>(me, 0)?;
    /// assert!(req.test()?.is_none());
    /// world.send(&9u32, me, 0)?;
    /// let (v, _) = loop {
    ///     if let Some(r) = req.test()? { break r; }
    /// };
    /// assert_eq!(v, 9);
    /// assert!(req.test().is_err()); // spent
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn test(&mut self) -> Result<Option<T>> {
        if let Some(v) = self.take_ready() {
            return Ok(Some(v));
        }
        let eng = self.engine()?;
        #[cfg(feature = "mpi")]
        if let Some(h) = &self.mpi {
            return h.test(self.id())?.map(|d| self.complete(d)).transpose();
        }
        let id = self.id();
        let done = {
            let mut e = eng.borrow_mut();
            match e.take_done(id) {
                Some(d) => Some(d),
                None => {
                    test_pass(&mut e)?;
                    let d = e.take_done(id);
                    if d.is_none() && e.test_turn() {
                        test_alive(&mut e, self.what().into_iter(), true)?;
                    }
                    d
                }
            }
        };
        done.map(|d| self.complete(d)).transpose()
    }

    /// Makes progress once and tells whether the operation has completed, without
    /// collecting its result: [`wait`](Self::wait) then returns it at once.
    ///
    /// MPI 4.1 §3.7.3 (`MPI_Test`, without freeing the request).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] of class [`ErrorClass::Request`] when the request is spent
    ///   (a `test` returned its result already);
    /// - [`Error::Usage`] when this rank has finalized (its `Universe` and every
    ///   `Communicator` were dropped);
    /// - [`Error::PeerFailed`] or [`Error::Aborted`] when the job was aborted (a rank died,
    ///   called `abort`, or the launcher stopped it); [`Error::Corrupted`] when a ring fails a
    ///   consistency check;
    /// - [`Error::PeerFailed`] when the request can never complete, as its wait would: the
    ///   peer it waits on (for a receive from `ANY_SOURCE`, every other rank) has left
    ///   (noticed by one test in a few), so that a loop of tests ends; the request stays
    ///   pending and may still be cancelled (as ULFM's `MPI_ERR_PROC_FAILED_PENDING`).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let mut req = world.irecv_into(vec![0u8; 1], me, 0)?;
    /// assert!(!req.is_complete()?);
    /// world.send_slice(&[1u8], me, 0)?;
    /// while !req.is_complete()? {}
    /// assert_eq!(req.wait()?.0, [1]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn is_complete(&mut self) -> Result<bool> {
        let eng = self.engine()?;
        if self.finished_at_start() {
            return Ok(true);
        }
        #[cfg(feature = "mpi")]
        if let Some(h) = &self.mpi {
            return h.is_done(self.id());
        }
        let mut e = eng.borrow_mut();
        if e.is_done(self.id()) {
            return Ok(true);
        }
        test_pass(&mut e)?;
        let done = e.is_done(self.id());
        if !done && e.test_turn() {
            test_alive(&mut e, self.what().into_iter(), true)?;
        }
        Ok(done)
    }

    /// Makes progress once and returns the status if the operation has completed,
    /// without completing the request (`MPI_Request_get_status`; mpi4py
    /// `req.Get_status()`): the request can still be waited on or tested. A send's
    /// status is MPI's empty status; a cancelled receive's says
    /// [`is_cancelled`](Status::is_cancelled); a receive that failed on a message (too
    /// long, of another element size or type: the message stays queued) is complete,
    /// with that message's source and tag and a length of 0, as nothing was received
    /// (its error comes from `wait` or `test`).
    ///
    /// MPI 4.1 §3.7.6 (`MPI_Request_get_status`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] of class [`ErrorClass::Request`] when the request is spent
    ///   (a `test` returned its result already);
    /// - [`Error::Usage`] when this rank has finalized (its `Universe` and every
    ///   `Communicator` were dropped);
    /// - [`Error::PeerFailed`] or [`Error::Aborted`] when the job was aborted (a rank died,
    ///   called `abort`, or the launcher stopped it); [`Error::Corrupted`] when a ring fails a
    ///   consistency check;
    /// - [`Error::PeerFailed`] when the request can never complete, as its wait would: the
    ///   peer it waits on (for a receive from `ANY_SOURCE`, every other rank) has left
    ///   (noticed by one test in a few), so that a loop of tests ends; the request stays
    ///   pending and may still be cancelled (as ULFM's `MPI_ERR_PROC_FAILED_PENDING`).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let mut req = world.irecv_into(vec![0u8; 4], me, 0)?;
    /// assert_eq!(req.get_status()?, None);
    /// world.send_slice(&[1u8, 2], me, 0)?;
    /// let st = loop {
    ///     if let Some(st) = req.get_status()? { break st; }
    /// };
    /// assert_eq!(st.len(), 2);
    /// assert_eq!(req.wait()?.1, st); // still there to wait on
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn get_status(&mut self) -> Result<Option<Status>> {
        let eng = self.engine()?;
        let (id, what) = match &self.state {
            State::Engine { id, what } => (id, what),
            State::Ready(v, _, status) => return Ok(Some(status(v))),
            State::Spent(_) => unreachable!("checked by engine()"),
        };
        #[cfg(feature = "mpi")]
        if let Some(h) = &self.mpi {
            return h.peek(*id, |d| status_of(d, what));
        }
        let mut e = eng.borrow_mut();
        if !e.is_done(*id) {
            test_pass(&mut e)?;
            if !e.is_done(*id) && e.test_turn() {
                test_alive(&mut e, std::iter::once(what), true)?;
            }
        }
        Ok(e.peek_done(*id).map(|d| status_of(d, what)))
    }

    /// Cancels a receive that no message has matched yet (`MPI_Cancel`): it will never
    /// get a message (the message goes to the next matching receive), and it completes
    /// at once with a status that [`is_cancelled`](Status::is_cancelled). Waiting on it
    /// then gives back the buffer of [`irecv_into`](crate::Communicator::irecv_into)
    /// with that status, and an error for an object receive, which has no value.
    ///
    /// Returns whether the request was cancelled. A send never is (it is in the ring,
    /// or queued to it, or offered to its receiver, from the start), nor a receive that has completed or whose
    /// message has started arriving: those complete as usual.
    ///
    /// MPI 4.1 §3.8.4 (`MPI_Cancel`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] of class [`ErrorClass::Request`] when the request is spent
    ///   (a `test` returned its result already);
    /// - [`Error::Usage`] when this rank has finalized (its `Universe` and every
    ///   `Communicator` were dropped);
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let mut recv = world.irecv_into(vec![0u8; 4], me, 5)?;
    /// assert!(recv.cancel()?);
    /// let (_, st) = recv.wait()?;
    /// assert!(st.is_cancelled());
    /// let mut send = world.isend(&1u8, me, 5)?;
    /// assert!(!send.cancel()?); // a send completes as usual
    /// send.wait()?;
    /// let _: u8 = world.recv(me, 5)?;
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn cancel(&mut self) -> Result<bool> {
        let eng = self.engine()?;
        if self.finished_at_start() {
            return Ok(false);
        }
        #[cfg(feature = "mpi")]
        if let Some(h) = &self.mpi {
            return h.cancel(self.id());
        }
        let cancelled = eng.borrow_mut().cancel(self.id());
        Ok(cancelled)
    }

    /// The request's id in the engine, unless it is spent.
    pub(crate) fn pending(&self) -> Option<Pending<'_>> {
        (!self.spent()).then(|| Pending {
            eng: &self.eng,
            id: self.id(),
            call: self.call(),
            what: self.what(),
        })
    }
}

impl<T> Request<T> {
    /// Lets go of the handle without cancelling anything: a receive stays posted and
    /// its result is dropped when it finishes (a scoped request's drop: its scope's
    /// end settles the operation).
    pub(crate) fn detach(mut self) {
        if self.finish.take().is_none() {
            return; // spent, or finished as it started: nothing in the engine
        }
        #[cfg(feature = "mpi")]
        if self.mpi.is_some() {
            return; // the entry stays in the table; the scope's end settles it
        }
        if let Some(eng) = self.eng.upgrade() {
            if let Ok(mut eng) = eng.try_borrow_mut() {
                eng.detach(self.id());
            }
        }
    }
}

impl<T> Drop for Request<T> {
    fn drop(&mut self) {
        #[cfg(feature = "mpi")]
        if let (Some(h), Some(_)) = (&self.mpi, &self.finish) {
            return h.forget(self.id());
        }
        if self.finish.is_some() {
            if let Some(eng) = self.eng.upgrade() {
                if let Ok(mut eng) = eng.try_borrow_mut() {
                    eng.forget(self.id());
                }
            }
        }
    }
}

/// A request's place in the engine, for the functions over many requests.
#[doc(hidden)]
#[allow(missing_debug_implementations)] // never seen outside shmpi
pub struct Pending<'a> {
    eng: &'a Weak<RefCell<Engine>>,
    id: u64,
    call: Call,
    /// What it waits for; `None` for an operation that finished as it started (no
    /// slot in the engine).
    what: Option<&'a What>,
}

impl<'a> Pending<'a> {
    pub(crate) fn new(eng: &'a Weak<RefCell<Engine>>, id: u64, what: &'a What) -> Self {
        Pending {
            eng,
            id,
            call: what.call,
            what: Some(what),
        }
    }

    /// The place of a request that finished as it started, with no slot in the engine.
    pub(crate) fn finished(eng: &'a Weak<RefCell<Engine>>, call: Call) -> Self {
        Pending {
            eng,
            id: READY,
            call,
            what: None,
        }
    }

    fn is_done(&self, e: &Engine) -> bool {
        self.what.is_none() || e.is_done(self.id)
    }
}

mod sealed {
    /// Only shmpi's request types are [`AnyRequest`](super::AnyRequest)s.
    #[allow(unreachable_pub)]
    pub trait Sealed {
        /// The request's place in the engine; `None` when it is spent or inactive.
        fn pending(&self) -> Option<super::Pending<'_>>;
        /// On the MPI backend: whether the pending request has completed.
        #[cfg(feature = "mpi")]
        fn mpi_state(&mut self) -> Option<crate::error::Result<bool>> {
            None
        }
    }
}

/// Any of shmpi's requests, whatever its result type: [`Request<T>`] for every `T`,
/// [`PersistentRequest<T>`](crate::PersistentRequest) and
/// [`CollRequest<T>`](crate::CollRequest), for [`wait_any_of`] and
/// [`test_any_of`] over requests of different types (MPI's `MPI_Waitany` over any
/// requests; mpi4py's `Request.Waitany`). Sealed: implemented by shmpi's types only.
pub trait AnyRequest: sealed::Sealed {}

impl<T> sealed::Sealed for Request<T> {
    fn pending(&self) -> Option<Pending<'_>> {
        Request::pending(self)
    }
    #[cfg(feature = "mpi")]
    fn mpi_state(&mut self) -> Option<Result<bool>> {
        Request::mpi_state(self)
    }
}

impl<T> AnyRequest for Request<T> {}

/// The engine of the first request of `items` that is still pending.
fn engine_of_items<X>(
    items: &[X],
    key: &impl Fn(&X) -> Option<Pending<'_>>,
    call: &str,
) -> Result<Rc<RefCell<Engine>>> {
    let Some(p) = items.iter().find_map(key) else {
        return Err(Error::invalid(
            ErrorClass::Request,
            format!(
                "{call} on a list with no pending request (empty, or every request spent or inactive)"
            ),
        ));
    };
    engine_of(p.eng, p.call)
}

/// The index of the first finished request of `items`.
fn first_done<X>(
    items: &[X],
    key: &impl Fn(&X) -> Option<Pending<'_>>,
    e: &Engine,
) -> Option<usize> {
    items
        .iter()
        .position(|x| key(x).is_some_and(|p| p.is_done(e)))
}

/// Blocks until one of the pending requests of `items` has finished and returns its
/// index; fails when none is pending, or when no pending one can finish any more.
fn block_any<X>(
    items: &[X],
    key: impl Fn(&X) -> Option<Pending<'_>>,
    call: Call,
    name: &str,
) -> Result<usize> {
    let eng = engine_of_items(items, &key, name)?;
    if let Some(i) = first_done(items, &key, &eng.borrow()) {
        return Ok(i);
    }
    let group = Group::world(eng.borrow().size());
    let desc = WaitDesc {
        op: WaitOp::Wait,
        call,
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
            first_done(items, &key, &e)
        };
        if let Some(i) = found {
            eng.borrow_mut().end_wait();
            return Ok(i);
        }
        let mut e = eng.borrow_mut();
        // Fail only when no pending request can complete any more (a request without
        // `what` finished: `first_done` found none).
        let whats = items.iter().filter_map(&key).filter_map(|p| p.what);
        if let Err(err) = check_requests(&mut e, whats, false, Engine::check_alive) {
            e.end_wait();
            return Err(err);
        }
        e.idle(&mut b, &desc).inspect_err(|_| e.end_wait())?;
    }
}

/// One progress pass for a test over `items`, then the index of the first finished
/// request, if any.
fn poll_any<X>(
    items: &[X],
    key: impl Fn(&X) -> Option<Pending<'_>>,
    call: &str,
) -> Result<Option<usize>> {
    let eng = engine_of_items(items, &key, call)?;
    let mut e = eng.borrow_mut();
    if let Some(i) = first_done(items, &key, &e) {
        return Ok(Some(i));
    }
    test_pass(&mut e)?;
    let found = first_done(items, &key, &e);
    if found.is_none() && e.test_turn() {
        test_alive(
            &mut e,
            items.iter().filter_map(&key).filter_map(|p| p.what),
            false,
        )?;
    }
    Ok(found)
}

/// Takes every finished request out of `requests`, with its index before the call.
fn take_finished<T>(requests: &mut Vec<Request<T>>) -> Result<Vec<(usize, Result<T>)>> {
    let Some(eng) = requests.iter().find_map(|r| r.eng.upgrade()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut i = 0;
    let mut orig = 0;
    while i < requests.len() {
        let r = &requests[i];
        let done = r.pending().is_some_and(|p| p.is_done(&eng.borrow()));
        if done {
            let mut r = requests.remove(i);
            out.push((orig, r.take_finished()));
        } else {
            i += 1;
        }
        orig += 1;
    }
    Ok(out)
}

/// Waits for every request and returns their results in order (`MPI_Waitall`). The
/// first error is returned after all requests have been waited for; the results of
/// the others are dropped with it (a receive's message and buffer among them), so
/// where one may fail and the rest must not be lost, use [`wait_all_results`], which
/// returns each request's own result (MPI's `MPI_ERR_IN_STATUS`).
///
/// MPI 4.1 §3.7.5 (`MPI_Waitall`).
///
/// # Errors
///
/// - the first error of the requests, in order, as [`Request::wait`] gives it, once every
///   request has been waited for:
///   [`Error::InvalidArgument`] of class [`ErrorClass::Request`] for a spent request;
///   [`Error::Usage`] when this rank has finalized;
///   the operations' own errors; [`Error::PeerFailed`], [`Error::Aborted`].
///
/// # Examples
///
/// ```
/// let world = shmpi::init()?.world();
/// let me = world.rank();
/// let reqs = (0..3).map(|t| world.irecv::<i32>(me, t)).collect::<shmpi::Result<Vec<_>>>()?;
/// for t in 0..3 {
///     world.send(&(t * 10), me, t)?;
/// }
/// let got: Vec<i32> = shmpi::wait_all(reqs)?.into_iter().map(|(v, _)| v).collect();
/// assert_eq!(got, [0, 10, 20]);
/// # Ok::<(), shmpi::Error>(())
/// ```
pub fn wait_all<T>(mut requests: Vec<Request<T>>) -> Result<Vec<T>> {
    let n = requests.len();
    wait_each(requests.iter_mut(), n)
}

/// Waits for every request and returns each one's own result, in order: one that
/// failed does not hide the others', so nothing a completed request received is lost
/// (`MPI_Waitall` returning `MPI_ERR_IN_STATUS`, with each status's own error).
/// [`wait_all`] is this with the first error taken out.
///
/// MPI 4.1 §3.7.5 (`MPI_Waitall`), §3.7.6 (`MPI_ERR_IN_STATUS`).
///
/// # Examples
///
/// ```
/// let world = shmpi::init()?.world();
/// let me = world.rank();
/// world.send_slice(&[1u8; 4], me, 1)?;
/// world.send_slice(&[2u8; 4], me, 2)?;
/// let reqs = vec![world.irecv_into(vec![0u8; 1], me, 1)?, world.irecv_into(vec![0u8; 4], me, 2)?];
/// let mut got = shmpi::wait_all_results(reqs).into_iter();
/// assert!(matches!(got.next(), Some(Err(shmpi::Error::Truncated { .. })))); // still queued
/// assert_eq!(got.next().unwrap()?.0, [2; 4]); // not lost
/// assert_eq!(world.recv_vec::<u8>(me, 1)?.0, [1; 4]);
/// # Ok::<(), shmpi::Error>(())
/// ```
pub fn wait_all_results<T>(mut requests: Vec<Request<T>>) -> Vec<Result<T>> {
    requests.iter_mut().map(Request::wait_in_place).collect()
}

/// [`wait_all`] over requests left where they are (spent once their results are
/// out), so that no request is moved out of its vector.
pub(crate) fn wait_each<'a, T: 'a>(
    requests: impl Iterator<Item = &'a mut Request<T>>,
    n: usize,
) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(n);
    let mut first_err = None;
    for r in requests {
        if let Err(e) = out::push_with(&mut out, |s| r.wait_into(s)) {
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        None => Ok(out),
        Some(e) => Err(e),
    }
}

/// Waits until one of the requests completes, removes it from `requests` and returns
/// its index and result (`MPI_Waitany`). Fails on a list with no pending request
/// (empty, or every request spent), where MPI returns `MPI_UNDEFINED`.
///
/// MPI 4.1 §3.7.5 (`MPI_Waitany`).
///
/// # Errors
///
/// - [`Error::InvalidArgument`] of class [`ErrorClass::Request`] when no request of the
///   list is pending (it is empty, or every request is spent);
/// - [`Error::Usage`] when this rank has finalized;
/// - the completed request's own error, as [`Request::wait`] gives it (the request is
///   removed all the same, and its index is not returned: where it matters, use
///   [`wait_some`]/[`test_some`], whose entries pair each index with its result);
/// - [`Error::PeerFailed`] when no pending request can complete any more (their peers
///   died or left); [`Error::Aborted`] when the job is aborted.
///
/// # Examples
///
/// ```
/// let world = shmpi::init()?.world();
/// let me = world.rank();
/// let mut reqs = vec![world.irecv::<u8>(me, 1)?, world.irecv::<u8>(me, 2)?];
/// world.send(&7u8, me, 2)?;
/// let (i, (v, _)) = shmpi::wait_any(&mut reqs)?;
/// assert_eq!((i, v, reqs.len()), (1, 7, 1));
/// # Ok::<(), shmpi::Error>(())
/// ```
pub fn wait_any<T>(requests: &mut Vec<Request<T>>) -> Result<(usize, T)> {
    #[cfg(feature = "mpi")]
    if requests.iter().any(|r| r.is_mpi()) {
        return crate::mpi::req::wait_any(requests);
    }
    let i = block_any(requests, |r| r.pending(), Call::WaitAny, "wait_any")?;
    let mut r = requests.remove(i);
    r.take_finished().map(|v| (i, v))
}

/// Makes progress once; if one of the requests has completed, removes it from
/// `requests` and returns its index and result (`MPI_Testany`). `None` if none has.
/// Fails like [`wait_any`] on a list with no pending request.
///
/// MPI 4.1 §3.7.5 (`MPI_Testany`).
///
/// # Errors
///
/// - [`Error::InvalidArgument`] of class [`ErrorClass::Request`] when no request of the
///   list is pending (it is empty, or every request is spent);
/// - [`Error::Usage`] when this rank has finalized;
/// - the completed request's own error, as [`Request::wait`] gives it (the request is
///   removed all the same, and its index is not returned: where it matters, use
///   [`wait_some`]/[`test_some`], whose entries pair each index with its result);
/// - [`Error::PeerFailed`] or [`Error::Aborted`] when the job was aborted (a rank died,
///   called `abort`, or the launcher stopped it); [`Error::Corrupted`] when a ring fails a
///   consistency check;
/// - [`Error::PeerFailed`] when no pending request can complete any more (their peers
///   left; noticed by one test in a few), as the matching wait would fail.
///
/// # Examples
///
/// ```
/// let world = shmpi::init()?.world();
/// let me = world.rank();
/// let mut reqs = vec![world.irecv::<u8>(me, 1)?];
/// assert!(shmpi::test_any(&mut reqs)?.is_none());
/// world.send(&7u8, me, 1)?;
/// let (i, (v, _)) = loop {
///     if let Some(r) = shmpi::test_any(&mut reqs)? { break r; }
/// };
/// assert_eq!((i, v), (0, 7));
/// # Ok::<(), shmpi::Error>(())
/// ```
pub fn test_any<T>(requests: &mut Vec<Request<T>>) -> Result<Option<(usize, T)>> {
    #[cfg(feature = "mpi")]
    if requests.iter().any(|r| r.is_mpi()) {
        return crate::mpi::req::test_any(requests);
    }
    let Some(i) = poll_any(requests, |r| r.pending(), "test_any")? else {
        return Ok(None);
    };
    let mut r = requests.remove(i);
    r.take_finished().map(|v| Some((i, v)))
}

/// Waits until at least one of the requests completes, then removes every completed
/// one from `requests` and returns them with their indices in `requests` before the
/// call, in increasing order (`MPI_Waitsome`). Each has its own result: one that
/// failed does not hide the others' (MPI's `MPI_ERR_IN_STATUS`). A list with no
/// pending request gives an empty vector (MPI's `outcount = MPI_UNDEFINED`).
///
/// MPI 4.1 §3.7.5 (`MPI_Waitsome`).
///
/// # Errors
///
/// - [`Error::Usage`] when this rank has finalized;
/// - [`Error::PeerFailed`] when no pending request can complete any more (their peers
///   died or left); [`Error::Aborted`] when the job is aborted;
/// - each completed request's own error comes in its entry, not here.
///
/// # Examples
///
/// ```
/// let world = shmpi::init()?.world();
/// let me = world.rank();
/// let mut reqs = vec![world.irecv::<u8>(me, 1)?, world.irecv::<u8>(me, 2)?];
/// world.send(&1u8, me, 1)?;
/// let done = shmpi::wait_some(&mut reqs)?;
/// assert_eq!(done.len(), 1);
/// assert_eq!(done[0].0, 0);
/// assert_eq!(done[0].1.as_ref().map(|(v, _)| *v).ok(), Some(1));
/// assert_eq!(reqs.len(), 1);
/// reqs[0].cancel()?;
/// # Ok::<(), shmpi::Error>(())
/// ```
pub fn wait_some<T>(requests: &mut Vec<Request<T>>) -> Result<Vec<(usize, Result<T>)>> {
    #[cfg(feature = "mpi")]
    if requests.iter().any(|r| r.is_mpi()) {
        return crate::mpi::req::wait_some(requests);
    }
    if requests.iter().all(Request::spent) {
        return Ok(Vec::new());
    }
    block_any(requests, |r| r.pending(), Call::WaitAny, "wait_some")?;
    take_finished(requests)
}

/// Makes progress once, then removes every completed request from `requests` and
/// returns them like [`wait_some`] (`MPI_Testsome`); the vector is empty if none has
/// completed.
///
/// MPI 4.1 §3.7.5 (`MPI_Testsome`).
///
/// # Errors
///
/// - [`Error::Usage`] when this rank has finalized;
/// - [`Error::PeerFailed`] or [`Error::Aborted`] when the job was aborted (a rank died,
///   called `abort`, or the launcher stopped it); [`Error::Corrupted`] when a ring fails a
///   consistency check;
/// - [`Error::PeerFailed`] when none has completed and none can any more (their peers
///   left; noticed by one test in a few), as [`wait_some`] would fail;
/// - each completed request's own error comes in its entry, not here.
///
/// # Examples
///
/// ```
/// let world = shmpi::init()?.world();
/// let me = world.rank();
/// let mut reqs = vec![world.irecv::<u8>(me, 1)?];
/// assert!(shmpi::test_some(&mut reqs)?.is_empty());
/// world.send(&1u8, me, 1)?;
/// let done = loop {
///     let d = shmpi::test_some(&mut reqs)?;
///     if !d.is_empty() { break d; }
/// };
/// assert_eq!((done[0].0, reqs.len()), (0, 0));
/// # Ok::<(), shmpi::Error>(())
/// ```
pub fn test_some<T>(requests: &mut Vec<Request<T>>) -> Result<Vec<(usize, Result<T>)>> {
    #[cfg(feature = "mpi")]
    if requests.iter().any(|r| r.is_mpi()) {
        return crate::mpi::req::test_some(requests);
    }
    if requests.iter().all(Request::spent) {
        return Ok(Vec::new());
    }
    poll_any(requests, |r| r.pending(), "test_some")?;
    take_finished(requests)
}

/// Makes progress once; if every request has completed, takes them all out of
/// `requests` (leaving it empty) and returns their results in order, else returns
/// `None` and leaves every request as it was (`MPI_Testall`). As with [`wait_all`],
/// the first error is returned after all requests have been taken.
///
/// MPI 4.1 §3.7.5 (`MPI_Testall`).
///
/// # Errors
///
/// - [`Error::InvalidArgument`] of class [`ErrorClass::Request`] when a request is spent
///   (it has no result to give); the requests are left as they were;
/// - when all have completed, the first error of the requests as [`wait_all`] gives it
///   (the others' results are dropped with it; [`test_some`] and [`wait_all_results`]
///   give each request its own);
/// - [`Error::PeerFailed`] or [`Error::Aborted`] when the job was aborted (a rank died,
///   called `abort`, or the launcher stopped it); [`Error::Corrupted`] when a ring fails a
///   consistency check;
/// - [`Error::PeerFailed`] when one of the pending requests can never complete (its peer
///   left; noticed by one test in a few), as [`wait_all`] would fail; the requests are
///   left as they were.
///
/// # Examples
///
/// ```
/// let world = shmpi::init()?.world();
/// let me = world.rank();
/// let mut reqs = vec![world.irecv::<u8>(me, 1)?, world.irecv::<u8>(me, 2)?];
/// world.send(&1u8, me, 1)?;
/// assert!(shmpi::test_all(&mut reqs)?.is_none());
/// assert_eq!(reqs.len(), 2); // left as they were
/// world.send(&2u8, me, 2)?;
/// let all = loop {
///     if let Some(all) = shmpi::test_all(&mut reqs)? { break all; }
/// };
/// assert_eq!(all.iter().map(|(v, _)| *v).collect::<Vec<_>>(), [1, 2]);
/// # Ok::<(), shmpi::Error>(())
/// ```
pub fn test_all<T>(requests: &mut Vec<Request<T>>) -> Result<Option<Vec<T>>> {
    // A spent request has no result to give: the list is left as it was.
    if let Some(Err(e)) = requests.iter().find(|r| r.spent()).map(Request::engine) {
        return Err(e);
    }
    #[cfg(feature = "mpi")]
    if requests.iter().any(|r| r.is_mpi()) {
        return crate::mpi::req::test_all(requests);
    }
    if let Some(eng) = requests.iter().find_map(|r| r.eng.upgrade()) {
        let mut e = eng.borrow_mut();
        let all = |e: &Engine| {
            requests
                .iter()
                .all(|r| r.pending().is_none_or(|p| p.is_done(e)))
        };
        if !all(&e) {
            test_pass(&mut e)?;
            if !all(&e) && e.test_turn() {
                let unfinished: Vec<&What> = requests
                    .iter()
                    .filter_map(Request::pending)
                    .filter(|p| !p.is_done(&e))
                    .filter_map(|p| p.what)
                    .collect();
                test_alive(&mut e, unfinished.into_iter(), true)?;
            }
            if !all(&e) {
                return Ok(None);
            }
        }
    }
    wait_all(std::mem::take(requests)).map(Some)
}

/// Waits until one of `requests`, of any result types, completes, and returns its
/// index (`MPI_Waitany` over requests of different kinds). The request is not
/// consumed: its own `wait` then returns its result at once. Spent and inactive
/// requests are skipped; a list with none pending is an error of class
/// [`ErrorClass::Request`].
///
/// MPI 4.1 §3.7.5 (`MPI_Waitany`).
///
/// # Errors
///
/// - [`Error::InvalidArgument`] of class [`ErrorClass::Request`] when no request of the
///   list is pending (it is empty, or every request is spent or inactive);
/// - [`Error::Usage`] when this rank has finalized;
/// - [`Error::PeerFailed`] when no pending request can complete any more (their peers
///   died or left); [`Error::Aborted`] when the job is aborted. The completed request's
///   own error comes from its `wait`.
///
/// # Examples
///
/// ```
/// let world = shmpi::init()?.world();
/// let me = world.rank();
/// let mut text = world.irecv::<String>(me, 1)?;
/// let mut data = world.irecv_into(vec![0f64; 16], me, 2)?;
/// world.send(&"hello".to_string(), me, 1)?;
/// match shmpi::wait_any_of(&mut [&mut text, &mut data])? {
///     0 => assert_eq!(text.wait()?.0, "hello"),
///     _ => unreachable!("nothing was sent with tag 2"),
/// }
/// data.cancel()?;
/// # Ok::<(), shmpi::Error>(())
/// ```
pub fn wait_any_of(requests: &mut [&mut dyn AnyRequest]) -> Result<usize> {
    #[cfg(feature = "mpi")]
    if let Some(found) = crate::mpi::req::any_of(requests, true)? {
        return found.ok_or_else(|| crate::mpi::req::none_pending("wait_any_of"));
    }
    block_any(requests, |r| r.pending(), Call::WaitAny, "wait_any_of")
}

/// Makes progress once and returns the index of one of `requests` that has completed,
/// if any (`MPI_Testany` over requests of different kinds); like [`wait_any_of`], it
/// does not consume it.
///
/// MPI 4.1 §3.7.5 (`MPI_Testany`).
///
/// # Errors
///
/// - [`Error::InvalidArgument`] of class [`ErrorClass::Request`] when no request of the
///   list is pending (it is empty, or every request is spent or inactive);
/// - [`Error::Usage`] when this rank has finalized;
/// - [`Error::PeerFailed`] or [`Error::Aborted`] when the job was aborted (a rank died,
///   called `abort`, or the launcher stopped it); [`Error::Corrupted`] when a ring fails a
///   consistency check;
/// - [`Error::PeerFailed`] when no pending request can complete any more (their peers
///   left; noticed by one test in a few), as the matching wait would fail.
///
/// # Examples
///
/// ```
/// let world = shmpi::init()?.world();
/// let me = world.rank();
/// let mut text = world.irecv::<String>(me, 1)?;
/// let mut data = world.irecv_into(vec![0f64; 2], me, 2)?;
/// assert_eq!(shmpi::test_any_of(&mut [&mut text, &mut data])?, None);
/// world.send_slice(&[1.0f64, 2.0], me, 2)?;
/// let i = loop {
///     if let Some(i) = shmpi::test_any_of(&mut [&mut text, &mut data])? { break i; }
/// };
/// assert_eq!((i, data.wait()?.0), (1, vec![1.0, 2.0]));
/// text.cancel()?;
/// # Ok::<(), shmpi::Error>(())
/// ```
pub fn test_any_of(requests: &mut [&mut dyn AnyRequest]) -> Result<Option<usize>> {
    #[cfg(feature = "mpi")]
    if let Some(found) = crate::mpi::req::any_of(requests, false)? {
        return Ok(found);
    }
    poll_any(requests, |r| r.pending(), "test_any_of")
}

impl<T> std::fmt::Debug for Request<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Request");
        d.field("call", &self.call().name());
        if let Some(w) = self.what() {
            d.field("peer", &w.peer)
                .field("tag", &w.tag)
                .field("context", &w.ctx);
        }
        d.field("collected", &self.spent()).finish()
    }
}
