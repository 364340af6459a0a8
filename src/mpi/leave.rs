//! Ranks that have left the job, and leaving it: what lets a rank waiting for one that
//! finished get an error instead of waiting forever, as on the shared segment.
//!
//! MPI tells no rank that another has called `MPI_Finalize`, so a receive from it, or a
//! send it never receives, would wait for ever. So each rank, as its MPI environment
//! ends, first finishes every receive it has started (a payload on its way), then sends
//! a notice, an empty message, to every other rank on a communicator of the
//! environment's own. A notice thus says: this rank receives nothing more, and sends
//! nothing more (its last messages went before it, in MPI's order from one process to
//! another). Every wait of a point-to-point call looks now and then at the notices that
//! have come (`Departures::poll`); one that depends on a rank that has left fails with
//! [`Error::PeerFailed`] and [`Exit::Finalized`] after one more test of its request (its
//! last message may have come with the notice).
//!
//! Leaving, a rank keeps its sends moving on until every other rank's notice has come:
//! a send still unfinished then will never be received, and MPI may drop it (the C
//! library's `MPI_Finalize` returns with one pending), so its buffer is kept, leaked,
//! instead of holding the job forever.

use std::cell::{Cell, RefCell};
use std::ffi::{c_int, c_void};

use ::mpi::ffi;

use super::check;
use crate::error::{Error, Exit, Result};

/// The tag of a notice on the environment's communicator.
const NOTICE: c_int = 1;

/// The notices of the ranks that have left, on a communicator of the environment.
pub(crate) struct Departures {
    comm: ffi::MPI_Comm,
    /// A persistent receive of one notice from any rank, started again after each.
    notice: Cell<ffi::MPI_Request>,
    /// What an empty notice is received into (MPI wants a buffer all the same).
    buf: Box<u64>,
    left: RefCell<Vec<bool>>,
    count: Cell<usize>,
    /// This process's world rank.
    pub(crate) me: usize,
}

impl Departures {
    /// Made by every rank of `MPI_COMM_WORLD` together, right after `MPI_Init`.
    pub(crate) fn new() -> Result<Departures> {
        // SAFETY: MPI is initialized; the world communicator is predefined.
        let world = unsafe { ffi::RSMPI_COMM_WORLD };
        let comm = super::p2p::twin(world)?;
        let (mut me, mut n): (c_int, c_int) = (0, 0);
        let mut buf = Box::new(0u64);
        // SAFETY: a request handle is plain data, written by the call below.
        let mut req: ffi::MPI_Request = unsafe { std::mem::zeroed() };
        // SAFETY: `comm` was just made; `buf` lives (boxed, unmoved) as long as the
        // request, which reads zero bytes into it.
        unsafe {
            check(
                ffi::MPI_Comm_set_errhandler(comm, ffi::RSMPI_ERRORS_RETURN),
                "MPI_Comm_set_errhandler",
            )?;
            check(ffi::MPI_Comm_rank(comm, &mut me), "MPI_Comm_rank")?;
            check(ffi::MPI_Comm_size(comm, &mut n), "MPI_Comm_size")?;
            let p = (&raw mut *buf).cast::<c_void>();
            let rc = ffi::MPI_Recv_init(
                p,
                0,
                ffi::RSMPI_UINT8_T,
                ffi::RSMPI_ANY_SOURCE,
                NOTICE,
                comm,
                &mut req,
            );
            check(rc, "MPI_Recv_init")?;
            check(ffi::MPI_Start(&mut req), "MPI_Start")?;
        }
        Ok(Departures {
            comm,
            notice: Cell::new(req),
            buf,
            left: RefCell::new(vec![false; n as usize]),
            count: Cell::new(0),
            me: me as usize,
        })
    }

    /// Takes in the notices that have come.
    pub(crate) fn poll(&self) -> Result<()> {
        let mut req = self.notice.get();
        let r = self.poll_into(&mut req);
        self.notice.set(req);
        r
    }

    fn poll_into(&self, req: &mut ffi::MPI_Request) -> Result<()> {
        loop {
            let mut flag: c_int = 0;
            // SAFETY: plain data written by the call.
            let mut st: ffi::MPI_Status = unsafe { std::mem::zeroed() };
            // SAFETY: `req` is the active persistent receive of a notice.
            let rc = unsafe { ffi::MPI_Test(req, &mut flag, &mut st) };
            check(rc, "MPI_Test")?;
            if flag == 0 {
                return Ok(());
            }
            let mut left = self.left.borrow_mut();
            if let Some(l) = left.get_mut(st.MPI_SOURCE as usize) {
                if !*l {
                    *l = true;
                    self.count.set(self.count.get() + 1);
                }
            }
            // SAFETY: the request is inactive again; its buffer lives on.
            check(unsafe { ffi::MPI_Start(req) }, "MPI_Start")?;
        }
    }

    /// Whether any rank has left (the common answer, no, in one load).
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.count.get() != 0
    }

    /// Whether world rank `w` has left.
    pub(crate) fn has_left(&self, w: usize) -> bool {
        self.left.borrow().get(w).copied().unwrap_or(false)
    }

    /// Leaves the job: tells every other rank, then runs `turn` (the sends' progress)
    /// until every other rank has told this one. The receive of notices is withdrawn and
    /// the communicator freed after.
    pub(crate) fn leave(&self, mut turn: impl FnMut()) -> Result<()> {
        let n = self.left.borrow().len();
        let mut sent = Vec::with_capacity(n.saturating_sub(1));
        for d in (0..n).filter(|&d| d != self.me) {
            // SAFETY: a request handle is plain data, written by the call.
            let mut r: ffi::MPI_Request = unsafe { std::mem::zeroed() };
            // SAFETY: an empty message; the pointer is never read.
            let rc = unsafe {
                ffi::MPI_Isend(
                    (&raw const *self.buf).cast::<c_void>(),
                    0,
                    ffi::RSMPI_UINT8_T,
                    d as c_int,
                    NOTICE,
                    self.comm,
                    &mut r,
                )
            };
            check(rc, "MPI_Isend")?;
            sent.push(r);
        }
        let mut turns = 0u32;
        while self.count.get() < n.saturating_sub(1) {
            self.poll()?;
            turn();
            // A rank that finished first must not take the cores of those still at work
            // (more ranks than cores): after a short spin it naps between turns.
            turns = turns.saturating_add(1);
            if turns > 1000 {
                std::thread::sleep(std::time::Duration::from_micros(200));
            } else {
                std::thread::yield_now();
            }
        }
        for r in &mut sent {
            super::wait_raw(r)?;
        }
        let mut req = self.notice.get();
        // SAFETY: `req` is the active receive of a notice, which no rank sends any more:
        // it is cancelled, waited for and freed; then the communicator, unused.
        unsafe {
            ffi::MPI_Cancel(&mut req);
            ffi::MPI_Wait(&mut req, ffi::RSMPI_STATUS_IGNORE);
            ffi::MPI_Request_free(&mut req);
            let mut c = self.comm;
            ffi::MPI_Comm_free(&mut c);
        }
        Ok(())
    }

    /// The error of a wait on world rank `w`, which has left.
    pub(crate) fn error(w: usize, while_doing: String) -> Error {
        Error::PeerFailed {
            rank: w,
            how: Exit::Finalized,
            while_doing,
        }
    }
}
