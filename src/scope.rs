//! Non-blocking operations that borrow their buffers: [`Communicator::scope`],
//! [`Scope`] and [`ScopedRequest`]; the rules are on [`Scope`].

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::ptr::NonNull;

use bytemuck::Pod;

use super::{Communicator, Rank, Status, Tag};
use crate::call::Call;
use crate::codec::{self, PodVec};
use crate::completions::Done;
use crate::error::Result;
use crate::matching::Want;
use crate::request::{AnyRequest, Pending, Request, Sealed};

/// The non-blocking calls of one communicator whose requests borrow their buffers,
/// alive for one call of [`Communicator::scope`] (after `std::thread::scope` and
/// rsmpi's `request::scope`).
///
/// A [`Request`] owns its buffer so that no handle, even a forgotten one, can leave the
/// runtime touching memory the program has reused. Inside a scope, a request may
/// borrow its buffer instead (`&'scope [T]` to send, `&'scope mut [T]` to receive),
/// so a window of sends can read one buffer, as C programs do, and a receive lands
/// where the program wants it with no vector moved in and out. The borrows outlive the
/// scope, and the scope does not return before the runtime has let go of every buffer
/// its requests borrowed, whatever happened to their handles:
///
/// - the closure returned `Ok`: every request still moving bytes is waited for, as
///   `std::thread::scope` joins its threads (a receive nobody sends to blocks like any
///   receive, and fails with [`Error::PeerFailed`](crate::Error::PeerFailed) if its peer leaves);
/// - the closure returned `Err` or panicked: a receive no message has reached is
///   cancelled, a send not all in the ring takes a copy of what is left (and completes
///   on its own), and only a receive already filling, or a send whose receiver copies
///   it straight from the borrowed buffer (an offered send, see
///   [`isend_vec`](crate::Communicator::isend_vec)), is waited for.
///
/// On the MPI backend (`mpi` feature) a standard send of more than 4 KiB reads its
/// borrowed buffer in place, as `MPI_Isend` does, and the scope's end waits for it
/// whichever way the closure ended, as a blocking send would (its receiver takes the
/// payload in whatever it is waiting for); a rank that panics while such a send is in
/// flight ends the job, as any panic does on that backend. Smaller sends and
/// synchronous ones travel from a copy and finish on their own.
///
/// Dropping a handle cancels nothing (unlike dropping a [`Request`]): the operation
/// goes on as a scoped thread does without its `JoinHandle`, and the scope's end
/// settles it. So no `Drop` has to block or panic, and leaking a handle
/// (`mem::forget`) costs nothing but its bookkeeping. [`ScopedRequest::cancel`]
/// cancels a receive that has not matched.
///
/// The borrow checker holds the rest: a request cannot leave its scope, and a buffer
/// must outlive the scope, not just the closure:
///
/// ```compile_fail
/// let world = shmpi::init()?.world();
/// let buf = [0u8; 4];
/// let mut kept = None;
/// world.scope(|s| {
///     kept = Some(s.isend_slice(&buf, 0, 0)?); // error: the request escapes its scope
///     Ok(())
/// })?;
/// # Ok::<(), shmpi::Error>(())
/// ```
///
/// ```compile_fail
/// let world = shmpi::init()?.world();
/// world.scope(|s| {
///     let mut local = [0u8; 4];
///     s.irecv_into(&mut local, 0, 0)?; // error: `local` dies before the scope ends
///     Ok(())
/// })?;
/// # Ok::<(), shmpi::Error>(())
/// ```
///
/// ```compile_fail
/// let world = shmpi::init()?.world();
/// let mut buf = [0u8; 4];
/// world.scope(|s| {
///     let r = s.irecv_into(&mut buf, 0, 0)?;
///     buf[0] = 1; // error: written while the receive may still fill it
///     r.wait()?;
///     Ok(())
/// })?;
/// # Ok::<(), shmpi::Error>(())
/// ```
///
/// On the MPI backend the same calls work: a send copies its buffer into the MPI
/// message when it starts, and a receive copies into the borrowed slice when it
/// matches, so the scope's end only withdraws or finishes unmatched receives.
pub struct Scope<'scope, 'env: 'scope> {
    comm: &'env Communicator,
    /// Every request started in the scope, settled at its end.
    ids: RefCell<Vec<u64>>,
    /// Invariant in both lifetimes, as `std::thread::Scope`: a borrow for `'scope`
    /// cannot be shortened behind the scope's back.
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// A pending operation of a [`Scope`] whose buffer is borrowed for the scope: it
/// cannot outlive the scope. Produces `()` for a send, and for a receive the slice
/// it filled with the message's [`Status`].
#[must_use = "the operation goes on if the handle is dropped, but only wait or test gives its result"]
pub struct ScopedRequest<'scope, T> {
    /// `None` once waited on.
    req: Option<Request<T>>,
    scope: PhantomData<&'scope mut &'scope ()>,
}

impl Communicator {
    /// Runs `f` with a [`Scope`] in which non-blocking sends and receives borrow their
    /// buffers, and returns once the runtime has let go of all of them (see the
    /// [`Scope`] for what happens to requests still pending when
    /// `f` returns).
    ///
    /// Returns `f`'s result, or, when `f` returned `Ok`, the first error of waiting for
    /// a request `f` left pending. A panic in `f` is resumed after the requests are
    /// settled.
    ///
    /// MPI 4.1 §3.7 (non-blocking communication; the scope stands for the rule that a
    /// buffer is not reused before its request completes).
    ///
    /// # Errors
    ///
    /// - whatever `f` returns;
    /// - when `f` returned `Ok`: [`Error::PeerFailed`](crate::Error::PeerFailed) or [`Error::Aborted`](crate::Error::Aborted) when a request
    ///   it left pending can no longer complete.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let data = [1.5f64; 4];
    /// let mut got = [0.0f64; 4];
    /// world.scope(|s| {
    ///     // mpi4py: comm.Irecv(got, me, 0); comm.Isend(data, me, 0), twice from one buffer
    ///     let r = s.irecv_into(&mut got, me, 0)?;
    ///     let a = s.isend_slice(&data, me, 0)?;
    ///     let b = s.isend_slice(&data, me, 1)?; // nothing receives it: the scope cleans up
    ///     let (buf, st) = r.wait()?;
    ///     assert_eq!((buf[3], st.count::<f64>()), (1.5, Some(4)));
    ///     a.wait()?;
    ///     drop(b);
    ///     Ok(())
    /// })?;
    /// let (rest, _) = world.recv_vec::<f64>(me, 1)?;
    /// assert_eq!(rest, data);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn scope<'env, R>(
        &'env self,
        f: impl for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> Result<R>,
    ) -> Result<R> {
        let s = Scope {
            comm: self,
            ids: RefCell::new(SPARE_IDS.take()),
            scope: PhantomData,
            env: PhantomData,
        };
        match catch_unwind(AssertUnwindSafe(|| f(&s))) {
            Ok(Ok(v)) => s.settle(true).map(|()| v),
            Ok(Err(e)) => {
                let _ = s.settle(false);
                Err(e)
            }
            Err(panic) => {
                let _ = s.settle(false);
                resume_unwind(panic)
            }
        }
    }
}

thread_local! {
    /// The id list of the last scope that ended, reused by the next one (a window of
    /// small requests per scope would otherwise grow a fresh vector each time).
    static SPARE_IDS: std::cell::Cell<Vec<u64>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A view of `data` for the engine to read.
fn borrow_ref<T: Pod>(data: &[T]) -> PodVec {
    let bytes: &[u8] = bytemuck::cast_slice(data);
    // SAFETY: the slice is borrowed for the scope, and the scope settles every request
    // (the engine lets go of the pointer) before it returns; a send only reads.
    unsafe { PodVec::borrowed(NonNull::from(bytes).cast(), bytes.len()) }
}

/// The slice a borrowed receive buffer was made from, handed back when the receive is
/// over.
///
/// # Safety
///
/// `b` must have been made from a `&'scope mut [T]` (in `irecv_into`), and the engine
/// must hold no other pointer into it (its request has completed and been taken).
unsafe fn give_back<'scope, T: Pod>(b: PodVec) -> &'scope mut [T] {
    let n = b.bytes().len() / size_of::<T>();
    // SAFETY: the caller's contract: the pointer and length of a `&'scope mut [T]`
    // (aligned, valid for the scope), whose only other user, the engine, is done.
    unsafe { std::slice::from_raw_parts_mut(b.ptr().as_ptr().cast::<T>(), n) }
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// The communicator the scope's calls use.
    pub fn communicator(&self) -> &'env Communicator {
        self.comm
    }

    fn register<T>(&self, req: Request<T>) -> ScopedRequest<'scope, T> {
        // A request that finished as it started (most small sends) holds nothing the
        // scope's end would have to settle.
        if self.under_way(&req) {
            self.ids.borrow_mut().push(req.id());
        }
        ScopedRequest {
            req: Some(req),
            scope: PhantomData,
        }
    }

    /// Starts sending `data`, read in place until the message is all in the receiver's
    /// ring (`MPI_Isend`; mpi4py `comm.Isend(buf, dest, tag)`). `data` may be shared
    /// by any number of sends at once.
    ///
    /// MPI 4.1 §3.7.2 (`MPI_Isend`).
    ///
    /// # Errors
    ///
    /// As [`Communicator::isend_slice`]: [`Error::InvalidRank`](crate::Error::InvalidRank), [`Error::InvalidTag`](crate::Error::InvalidTag),
    /// [`Error::Usage`](crate::Error::Usage) for a zero-sized `T`; from `wait`, [`Error::PeerFailed`](crate::Error::PeerFailed) and
    /// [`Error::Aborted`](crate::Error::Aborted).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let buf = [7u32; 16];
    /// world.scope(|s| {
    ///     let reqs = (0..4).map(|t| s.isend_slice(&buf, me, t)).collect::<shmpi::Result<Vec<_>>>()?;
    ///     s.wait_all(reqs)?;
    ///     Ok(())
    /// })?;
    /// for t in 0..4 {
    ///     assert_eq!(world.recv_vec::<u32>(me, t)?.0, buf);
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn isend_slice<T: Pod>(
        &self,
        data: &'scope [T],
        dest: Rank,
        tag: Tag,
    ) -> Result<ScopedRequest<'scope, ()>> {
        self.send_as(data, dest, tag, Call::IsendSlice)
    }

    /// Starts a synchronous send of `data`, read in place (`MPI_Issend`): it completes
    /// once the message is all in the ring and a receive has matched it.
    ///
    /// MPI 4.1 §3.7.2 (`MPI_Issend`).
    ///
    /// # Errors
    ///
    /// As [`isend_slice`](Self::isend_slice).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.scope(|s| {
    ///     let req = s.issend_slice(&[1u8, 2], me, 0)?;
    ///     assert_eq!(world.recv_vec::<u8>(me, 0)?.0, [1, 2]);
    ///     req.wait()
    /// })?;
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn issend_slice<T: Pod>(
        &self,
        data: &'scope [T],
        dest: Rank,
        tag: Tag,
    ) -> Result<ScopedRequest<'scope, ()>> {
        self.send_as(data, dest, tag, Call::IssendSlice)
    }

    fn send_as<T: Pod>(
        &self,
        data: &'scope [T],
        dest: Rank,
        tag: Tag,
        call: Call,
    ) -> Result<ScopedRequest<'scope, ()>> {
        Communicator::elem::<T>()?;
        if call == Call::IsendSlice
            && self
                .comm
                .try_isend_now(bytemuck::cast_slice(data), dest, tag)?
        {
            let eng = &self.comm.inner.eng;
            return Ok(self.register(Request::sent_at_start(eng, (), call)));
        }
        let finish: crate::request::Finish<()> = |done, _, out| match done.take() {
            Some(Done::Sent(_)) => Ok(out.fill(())),
            Some(Done::Failed(e)) => Err(e.into()),
            _ => unreachable!("a send completes as sent"),
        };
        let req = self
            .comm
            .isend_pod(borrow_ref(data), dest, tag, call, finish)?;
        Ok(self.register(req))
    }

    /// Starts receiving into `buf`, written in place (`MPI_Irecv`; mpi4py
    /// `comm.Irecv(buf, source, tag)`). Waiting gives `buf` back with the message's
    /// [`Status`]; a cancelled receive gives it back untouched, with a status that
    /// [`is_cancelled`](Status::is_cancelled).
    ///
    /// MPI 4.1 §3.7.2 (`MPI_Irecv`).
    ///
    /// # Errors
    ///
    /// As [`Communicator::irecv_into`]: [`Error::InvalidRank`](crate::Error::InvalidRank), [`Error::InvalidTag`](crate::Error::InvalidTag),
    /// [`Error::Usage`](crate::Error::Usage) for a zero-sized `T`; from `wait`, [`Error::Truncated`](crate::Error::Truncated),
    /// [`Error::ElementSize`](crate::Error::ElementSize) and [`Error::TypeMismatch`](crate::Error::TypeMismatch) (the message stays queued),
    /// [`Error::PeerFailed`](crate::Error::PeerFailed) and [`Error::Aborted`](crate::Error::Aborted).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let mut grid = vec![0i32; 1000];
    /// world.scope(|s| {
    ///     let (lo, hi) = grid.split_at_mut(500);
    ///     let a = s.irecv_into(lo, me, 1)?;
    ///     let b = s.irecv_into(hi, me, 2)?;
    ///     world.send_slice(&[2i32; 500], me, 2)?;
    ///     world.send_slice(&[1i32; 500], me, 1)?;
    ///     let (hi, _) = b.wait()?;
    ///     hi[0] += 1; // the filled half, writable again
    ///     a.wait()?;
    ///     Ok(())
    /// })?;
    /// assert_eq!((grid[0], grid[500], grid[999]), (1, 3, 2));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn irecv_into<T: Pod>(
        &self,
        buf: &'scope mut [T],
        source: Rank,
        tag: Tag,
    ) -> Result<ScopedRequest<'scope, (&'scope mut [T], Status)>> {
        let elem = Communicator::elem::<T>()?;
        let want = Want::Bytes {
            cap: size_of_val(buf),
            elem,
            elem_type: codec::type_name::<T>(),
        };
        let finish: crate::request::Finish<(&'scope mut [T], Status)> = |done, what, out| {
            // SAFETY: made from `buf` below; the receive is over or was cancelled, so
            // the engine holds the buffer no more.
            super::recv_result(done, what, out, |b| unsafe { give_back(b) })
        };
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(buf);
        let len = bytes.len();
        // SAFETY: `buf` is borrowed uniquely for the scope (the reference is consumed
        // here, so only the engine uses the memory until the request gives it back),
        // and the scope settles the request before it returns.
        let b = unsafe { PodVec::borrowed(NonNull::from(bytes).cast(), len) };
        let req = self.comm.irecv_pod(b, want, source, tag, finish)?;
        Ok(self.register(req))
    }

    /// Starts receiving into `buf`, cells that other receives may share, written in
    /// place (`MPI_Irecv`): so a window of receives can land in one buffer, as C
    /// programs post them. MPI calls overlapping receive buffers erroneous and leaves
    /// their contents undefined; here they hold what was written last. Each message is
    /// copied in as it arrives, only from this thread and inside runtime calls, so with
    /// one source and tag the buffer ends holding the last message sent (on the MPI
    /// backend, where a large message arrives in a vector of its own and is copied when
    /// it completes, and large ones may complete out of order: one of them, whole);
    /// messages from several sources streamed at once may interleave there. The program
    /// may read the cells meanwhile (`Cell::get`). Waiting gives `buf` back with the
    /// message's [`Status`].
    ///
    /// MPI 4.1 §3.7.2 (`MPI_Irecv`).
    ///
    /// # Errors
    ///
    /// As [`irecv_into`](Self::irecv_into).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let mut frame = [0u16; 4];
    /// let cells = Cell::from_mut(&mut frame[..]).as_slice_of_cells();
    /// world.scope(|s| {
    ///     // OSU's window: every receive into the same buffer
    ///     let reqs = (0..3)
    ///         .map(|_| s.irecv_cells(cells, me, 0))
    ///         .collect::<shmpi::Result<Vec<_>>>()?;
    ///     for i in 1..=3u16 {
    ///         world.send_slice(&[i; 4], me, 0)?;
    ///     }
    ///     for (buf, st) in s.wait_all(reqs)? {
    ///         assert_eq!((buf.len(), st.count::<u16>()), (4, Some(4)));
    ///     }
    ///     Ok(())
    /// })?;
    /// assert_eq!(frame, [3; 4]); // the last message, written last
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    #[allow(clippy::type_complexity)] // what the wait gives back, spelled out as `irecv_into`'s
    pub fn irecv_cells<T: Pod>(
        &self,
        buf: &'scope [Cell<T>],
        source: Rank,
        tag: Tag,
    ) -> Result<ScopedRequest<'scope, (&'scope [Cell<T>], Status)>> {
        let elem = Communicator::elem::<T>()?;
        let want = Want::Bytes {
            cap: size_of_val(buf),
            elem,
            elem_type: codec::type_name::<T>(),
        };
        let finish: crate::request::Finish<(&'scope [Cell<T>], Status)> = |done, what, out| {
            super::recv_result(done, what, out, |b| {
                let n = b.bytes().len() / size_of::<T>();
                // SAFETY: made from a `&'scope [Cell<T>]` below (`Cell<T>` has `T`'s
                // layout), valid for the scope.
                unsafe { std::slice::from_raw_parts(b.ptr().as_ptr().cast::<Cell<T>>(), n) }
            })
        };
        // SAFETY: the cells are borrowed for the scope, which settles the request before
        // it returns; writing through a shared reference to cells is what they allow,
        // and the engine writes them only from this thread (`!Sync` keeps them here),
        // within its calls, while the program is not in a `Cell` method.
        let b = unsafe { PodVec::shared(NonNull::from(buf).cast(), size_of_val(buf)) };
        let req = self.comm.irecv_pod(b, want, source, tag, finish)?;
        Ok(self.register(req))
    }

    /// Waits for every request and returns their results in order (`MPI_Waitall`),
    /// the first error once all have been waited for.
    ///
    /// MPI 4.1 §3.7.5 (`MPI_Waitall`).
    ///
    /// # Errors
    ///
    /// The first error of the requests, in order, as [`ScopedRequest::wait`] gives it.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let (mut a, mut b) = ([0u8; 2], [0u8; 2]);
    /// world.scope(|s| {
    ///     let reqs = vec![s.irecv_into(&mut a, me, 0)?, s.irecv_into(&mut b, me, 1)?];
    ///     world.send_slice(&[1u8, 1], me, 0)?;
    ///     world.send_slice(&[2u8, 2], me, 1)?;
    ///     let got = s.wait_all(reqs)?;
    ///     assert_eq!(got[1].0, [2, 2]);
    ///     Ok(())
    /// })?;
    /// assert_eq!(a, [1, 1]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn wait_all<T>(&self, mut requests: Vec<ScopedRequest<'scope, T>>) -> Result<Vec<T>> {
        let n = requests.len();
        crate::request::wait_each(requests.iter_mut().map(ScopedRequest::inner), n)
    }

    fn under_way<T>(&self, req: &Request<T>) -> bool {
        if req.finished_at_start() {
            return false;
        }
        #[cfg(feature = "mpi")]
        if self.comm.inner.mpi.is_some() {
            return true;
        }
        self.comm
            .inner
            .eng
            .try_borrow()
            .map_or(true, |e| e.is_under_way(req.id()))
    }

    /// Lets the runtime go of every buffer the scope's requests borrowed (see
    /// `Engine::settle`). The first error is returned after all are settled.
    fn settle(&self, wait: bool) -> Result<()> {
        let mut ids = std::mem::take(&mut *self.ids.borrow_mut());
        let mut first = None;
        for &id in &ids {
            let r = {
                #[cfg(feature = "mpi")]
                if let Some(mc) = &self.comm.inner.mpi {
                    mc.settle(id, wait)
                } else {
                    self.settle_shm(id, wait)
                }
                #[cfg(not(feature = "mpi"))]
                self.settle_shm(id, wait)
            };
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        }
        ids.clear();
        SPARE_IDS.set(ids);
        first.map_or(Ok(()), Err)
    }

    fn settle_shm(&self, id: u64, wait: bool) -> Result<()> {
        let Ok(mut eng) = self.comm.inner.eng.try_borrow_mut() else {
            // Unreachable: no engine call is on the stack when a scope ends. Returning
            // with the engine still holding borrowed buffers would be unsound.
            eprintln!("shmpi: a scope ended inside a runtime call; aborting");
            std::process::abort();
        };
        eng.settle(id, wait)
    }
}

impl<T> ScopedRequest<'_, T> {
    fn into_inner(mut self) -> Request<T> {
        self.req
            .take()
            .expect("a scoped request holds its request until consumed")
    }

    fn inner(&mut self) -> &mut Request<T> {
        self.req
            .as_mut()
            .expect("a scoped request holds its request until consumed")
    }

    /// Blocks until the operation completes and returns its result (`MPI_Wait`).
    ///
    /// MPI 4.1 §3.7.3 (`MPI_Wait`).
    ///
    /// # Errors
    ///
    /// As [`Request::wait`].
    pub fn wait(self) -> Result<T> {
        self.into_inner().wait()
    }

    /// Makes progress once and returns the result if the operation has completed
    /// (`MPI_Test`); the request is spent after it returned `Some`.
    ///
    /// MPI 4.1 §3.7.3 (`MPI_Test`).
    ///
    /// # Errors
    ///
    /// As [`Request::test`].
    pub fn test(&mut self) -> Result<Option<T>> {
        self.inner().test()
    }

    /// Cancels a receive that no message has matched yet (`MPI_Cancel`); see
    /// [`Request::cancel`]. Returns whether it was cancelled.
    ///
    /// MPI 4.1 §3.8.4 (`MPI_Cancel`).
    ///
    /// # Errors
    ///
    /// As [`Request::cancel`].
    pub fn cancel(&mut self) -> Result<bool> {
        self.inner().cancel()
    }
}

/// Dropping a scoped request cancels nothing (unlike a [`Request`]): the operation
/// goes on, and the scope's end waits for it or settles it.
impl<T> Drop for ScopedRequest<'_, T> {
    fn drop(&mut self) {
        if let Some(r) = self.req.take() {
            r.detach();
        }
    }
}

impl<T> Sealed for ScopedRequest<'_, T> {
    fn pending(&self) -> Option<Pending<'_>> {
        self.req.as_ref().and_then(Request::pending)
    }
    #[cfg(feature = "mpi")]
    fn mpi_state(&mut self) -> Option<Result<bool>> {
        self.req.as_mut().and_then(Request::mpi_state)
    }
}

impl<T> AnyRequest for ScopedRequest<'_, T> {}

impl std::fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("communicator", self.comm)
            .field("requests", &self.ids.borrow().len())
            .finish()
    }
}

impl<T> std::fmt::Debug for ScopedRequest<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedRequest")
            .field("id", &self.req.as_ref().map(Request::id))
            .finish()
    }
}
