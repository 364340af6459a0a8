//! `shmpi._shmpi`: the native half of shmpi's Python package.
//!
//! A thin layer over shmpi's public Rust API; the mpi4py-shaped surface (buffer
//! specs, datatypes, pickling, ops on Python objects) lives in `shmpi/MPI.py`.
//!
//! - **State**: the `Universe` and every communicator live in one thread-local
//!   registry, so that [`finalize`] (run at interpreter exit) can drop them all and
//!   let the rank leave the job, whatever Python objects still refer to them. Python
//!   sees communicators as `RawComm` handles that hold only a registry key.
//! - **Buffers**: uppercase calls take any object with the buffer protocol, or an
//!   array in host memory that offers DLPack (`dlpack.rs`), and copy straight between
//!   its memory and shmpi (`buffer.rs`).
//! - **Threads**: shmpi handles are not `Send`, so the registry is per thread and the
//!   classes that hold handles are `unsendable`; `RawComm` holds only a key (a call
//!   from another thread finds no registry: a usage error). A call that has to wait
//!   releases the GIL at its first idle step (shmpi's idle hook, `comm::waiting`) and
//!   takes it back when it returns; one that does not wait keeps it.
//! - **Methods**: `MPI.Comm` derives from `CommBase` (`pycomm.rs`), whose methods run
//!   the calls of programs' inner loops in one native call and hand the rest to the
//!   Python methods of `shmpi/MPI.py`.
//! - **Pickling**: while `MPI.pickle` is the default, the lowercase methods pickle
//!   and unpickle small builtin objects natively, to and from `pickle`'s own bytes
//!   (`pickle5.rs`), and hand everything else to the standard library.
//! - **Loans**: shmpi's zero-copy loans as buffer-protocol objects (`loan.rs`), used by
//!   `shmpi/loans.py`.
//! - **Errors**: shmpi's errors become `MPI.Exception(error_class, message)`, the class
//!   registered by the Python package at import (`errors.rs`).

mod buffer;
mod comm;
mod dlpack;
mod errors;
mod last;
mod loan;
mod message;
mod pickle5;
mod pycomm;
mod reduce;
mod registry;
mod request;
mod win;

use std::cell::RefCell;

use pyo3::prelude::*;
use rustc_hash::FxHashMap;

use crate::comm::RawComm;
use crate::errors::to_py;

/// A value that crosses into `Python::detach`'s closure, which pyo3 requires to be
/// `Send` although it runs on the calling thread.
pub(crate) struct OnThisThread<T>(pub(crate) T);

// SAFETY: `Python::detach` runs the closure on the calling thread (it only releases
// the GIL around it), so the wrapped shmpi handle never leaves the thread that owns it.
unsafe impl<T> Send for OnThisThread<T> {}

/// The rank's shmpi state: the universe and the communicators Python holds.
pub(crate) struct State {
    universe: shmpi::Universe,
    // Looked up on every call: rustc-hash's one-multiply hash, not SipHash, for the
    // sequential keys.
    comms: FxHashMap<u64, shmpi::Communicator>,
    next_id: u64,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
    static FINALIZED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The id of `COMM_WORLD` in the registry.
pub(crate) const WORLD_ID: u64 = 0;

/// Looks up a communicator (a cheap `Rc` clone).
pub(crate) fn comm_of(id: u64) -> PyResult<shmpi::Communicator> {
    STATE.with(|s| {
        let s = s.borrow();
        let Some(st) = s.as_ref() else {
            return Err(errors::usage_error(if FINALIZED.with(|f| f.get()) {
                "shmpi is finalized: no MPI call may follow MPI.Finalize()"
            } else {
                "shmpi is not initialized on this thread: MPI calls are made from the \
                 thread that initialized it (MPI.THREAD_FUNNELED)"
            }));
        };
        st.comms.get(&id).cloned().ok_or_else(|| {
            errors::comm_error("the communicator was freed (Comm.Free) and cannot be used")
        })
    })
}

/// Registers a new communicator and returns its handle.
pub(crate) fn register(c: shmpi::Communicator) -> RawComm {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let st = s
            .as_mut()
            .expect("a communicator exists only while initialized");
        let id = st.next_id;
        st.next_id += 1;
        st.comms.insert(id, c);
        RawComm { id }
    })
}

/// Drops a communicator from the registry (`MPI_Comm_free`).
pub(crate) fn unregister(id: u64) {
    STATE.with(|s| {
        if let Some(st) = s.borrow_mut().as_mut() {
            st.comms.remove(&id);
        }
    })
}

/// Joins the job (`MPI_Init`) unless already joined; returns `COMM_WORLD`'s handle.
/// `MPI_Dims_create`: `dims` with its zeros filled in by shmpi's rule.
#[pyfunction]
fn dims_create(nnodes: i32, mut dims: Vec<i32>) -> PyResult<Vec<i32>> {
    shmpi::dims_create(nnodes, &mut dims).map_err(errors::to_py)?;
    Ok(dims)
}

#[pyfunction]
fn init() -> PyResult<RawComm> {
    if FINALIZED.with(|f| f.get()) {
        return Err(errors::usage_error(
            "shmpi cannot be initialized again after Finalize",
        ));
    }
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if s.is_none() {
            let universe = shmpi::init().map_err(to_py)?;
            // A call that has to wait releases the GIL (`comm::waiting`).
            shmpi::set_idle_hook(Some(comm::release_gil));
            let mut comms = FxHashMap::default();
            comms.insert(WORLD_ID, universe.world());
            *s = Some(State {
                universe,
                comms,
                next_id: WORLD_ID + 1,
            });
        }
        Ok(RawComm { id: WORLD_ID })
    })
}

/// Leaves the job (`MPI_Finalize`): drops every communicator and the universe, which
/// flushes queued sends. Idempotent.
#[pyfunction]
fn finalize(py: Python<'_>) {
    let st = STATE.with(|s| s.borrow_mut().take());
    if let Some(st) = st {
        FINALIZED.with(|f| f.set(true));
        shmpi::set_idle_hook(None);
        let st = OnThisThread(st);
        py.detach(move || {
            let st = st;
            let State {
                universe, comms, ..
            } = st.0;
            drop(comms);
            drop(universe);
        });
    }
}

#[pyfunction]
fn is_initialized() -> bool {
    STATE.with(|s| s.borrow().is_some()) || FINALIZED.with(|f| f.get())
}

#[pyfunction]
fn is_finalized() -> bool {
    FINALIZED.with(|f| f.get())
}

/// Seconds on the machine's monotonic clock, the same in every rank (`MPI_Wtime`).
#[pyfunction]
fn wtime() -> f64 {
    shmpi::wtime()
}

/// Aborts the job with `code` (`MPI_Abort` on `COMM_WORLD`); does not return.
#[pyfunction]
fn abort(code: i32) -> PyResult<()> {
    let world = STATE.with(|s| s.borrow().as_ref().map(|st| st.universe.world()));
    match world {
        Some(w) => w.abort(code),
        // Outside the job there is nothing to stop but this process.
        None => std::process::exit(code),
    }
}

#[pymodule]
fn _shmpi(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RawComm>()?;
    m.add_class::<pycomm::CommBase>()?;
    m.add_class::<request::RawRequest>()?;
    m.add_class::<request::RequestBase>()?;
    m.add_class::<message::RawMessage>()?;
    m.add_class::<dlpack::DLPackView>()?;
    m.add_class::<buffer::ByteView>()?;
    m.add_class::<win::RawWin>()?;
    m.add_class::<win::WinMemory>()?;
    m.add_class::<win::WinBase>()?;
    m.add_class::<loan::Loan>()?;
    m.add_class::<loan::LoanView>()?;
    m.add_function(wrap_pyfunction!(loan::loan, m)?)?;
    m.add_function(wrap_pyfunction!(loan::send_loan, m)?)?;
    m.add_function(wrap_pyfunction!(loan::recv_loan, m)?)?;
    m.add_function(wrap_pyfunction!(dlpack::dlpack_view, m)?)?;
    m.add_function(wrap_pyfunction!(buffer::byte_view, m)?)?;
    m.add_function(wrap_pyfunction!(init, m)?)?;
    m.add_function(wrap_pyfunction!(finalize, m)?)?;
    m.add_function(wrap_pyfunction!(is_initialized, m)?)?;
    m.add_function(wrap_pyfunction!(is_finalized, m)?)?;
    m.add_function(wrap_pyfunction!(wtime, m)?)?;
    m.add_function(wrap_pyfunction!(dims_create, m)?)?;
    m.add_function(wrap_pyfunction!(abort, m)?)?;
    m.add_function(wrap_pyfunction!(errors::set_exception_class, m)?)?;
    m.add_function(wrap_pyfunction!(registry::register, m)?)?;
    m.add_function(wrap_pyfunction!(pycomm::pickle_changed, m)?)?;
    m.add_function(wrap_pyfunction!(request::wait_any, m)?)?;
    m.add_function(wrap_pyfunction!(request::wait_all, m)?)?;
    m.add_function(wrap_pyfunction!(pickle5::dumps, m)?)?;
    m.add_function(wrap_pyfunction!(pickle5::loads, m)?)?;
    m.add_function(wrap_pyfunction!(pickle5::_native_dumps, m)?)?;
    m.add_function(wrap_pyfunction!(pickle5::_native_loads, m)?)?;
    m.add("ANY_SOURCE", shmpi::ANY_SOURCE)?;
    m.add("ANY_TAG", shmpi::ANY_TAG)?;
    m.add("PROC_NULL", shmpi::PROC_NULL)?;
    m.add("UNDEFINED", shmpi::UNDEFINED)?;
    m.add("TAG_UB", shmpi::TAG_UB)?;
    Ok(())
}
