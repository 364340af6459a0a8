//! `init()`: join the launcher's job, or become a singleton world of size 1.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::comm::Communicator;
use crate::error::{Error, Result};
use crate::layout::{Layout, Params};
use crate::matching::Group;
use crate::progress::Engine;
use crate::segment::Segment;
use crate::sys;

/// Environment variable: this rank's number in the world.
pub const ENV_RANK: &str = "SHMPI_RANK";
/// Environment variable: the number of ranks in the world.
pub const ENV_SIZE: &str = "SHMPI_SIZE";
/// Environment variable: the inherited descriptor of the shared segment.
pub const ENV_FD: &str = "SHMPI_FD";

static INITIALIZED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The engine `init` made, held weakly: gone once the rank has finalized.
    static ENGINE: RefCell<Weak<RefCell<Engine>>> = const { RefCell::new(Weak::new()) };
}

/// The job as seen from this rank (the result of [`init`]). Holding it keeps the rank
/// in the job; when it and every [`Communicator`] cloned from it are dropped, the
/// rank finishes: queued sends are flushed and the rank is marked as gone, so that
/// peers still waiting on it get an error instead of hanging (`MPI_Finalize`).
pub struct Universe {
    world: Communicator,
    _not_send: PhantomData<*const ()>,
}

impl Universe {
    /// The communicator of all ranks (`MPI_COMM_WORLD`).
    ///
    /// MPI 4.1 §11.2 (`MPI_COMM_WORLD`).
    ///
    /// # Examples
    ///
    /// ```
    /// let universe = shmpi::init()?;
    /// let world = universe.world(); // a handle; clones share the communicator
    /// assert!((0..world.size()).contains(&world.rank()));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn world(&self) -> Communicator {
        self.world.clone()
    }

    /// A new communicator of this rank alone (`MPI_COMM_SELF`, mpi4py `MPI.COMM_SELF`):
    /// size 1, rank 0, a context of its own, so its messages never match another
    /// communicator's receives. Local: the other ranks do not take part. It takes none
    /// of the segment's communicator areas (nor do its `dup`s and `split`s), so any
    /// number can exist; each call returns a new one.
    ///
    /// MPI 4.1 §7.2.4 (`MPI_COMM_SELF`).
    ///
    /// # Examples
    ///
    /// ```
    /// let universe = shmpi::init()?;
    /// let me = universe.self_comm();
    /// assert_eq!((me.rank(), me.size()), (0, 1));
    /// let mut sum = [0i64];
    /// me.allreduce_into(&[7i64], &mut sum, shmpi::Op::Sum)?;
    /// assert_eq!(sum, [7]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn self_comm(&self) -> Communicator {
        self.world.new_self()
    }

    /// Aborts the whole job (`MPI_Abort`). Does not return.
    ///
    /// MPI 4.1 §11.2 (`MPI_Abort`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let universe = shmpi::init()?;
    /// if std::env::args().count() > 3 {
    ///     eprintln!("too many arguments");
    ///     universe.abort(2); // every rank stops; the launcher exits with 2
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }

    /// Leaves the job now (`MPI_Finalize`, mpi4py `MPI.Finalize()`): every queued send
    /// is flushed into its ring first, so no message is lost at exit, and the rank is
    /// then marked as gone, so that peers still waiting on it get an error instead of
    /// hanging. Dropping the `Universe` and every [`Communicator`] does the same;
    /// calling this says where it happens. Sends to ranks that have already left are
    /// dropped.
    ///
    /// MPI 4.1 §11.2 (`MPI_Finalize`).
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] if other communicator handles (clones of the world, `dup`s,
    /// `split`s) are still alive: the rank then finalizes when the last of them is
    /// dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let universe = shmpi::init()?;
    /// universe.world().barrier()?;
    /// universe.finalize()?;
    /// assert!(shmpi::finalized());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn finalize(self) -> Result<()> {
        let eng = self.world.inner.eng.clone();
        drop(self);
        let others = Rc::strong_count(&eng) - 1;
        drop(eng);
        if others > 0 {
            return Err(Error::Usage(format!(
                "finalize: {others} other communicator(s) of this rank are still alive; the \
                 rank finalizes when the last handle on them is dropped"
            )));
        }
        Ok(())
    }
}

impl std::fmt::Debug for Universe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Universe")
            .field("world", &self.world)
            .finish()
    }
}

/// Joins the job (`MPI_Init`).
///
/// Under `shmrun`, attaches to the launcher's shared segment and checks it (magic
/// number, layout version, job size). Without `shmrun` (no `SHMPI_*` variables),
/// returns a singleton world of size 1, like MPI's singleton init. May be called once
/// per process.
///
/// MPI 4.1 §11.2 (`MPI_Init`).
///
/// # Errors
///
/// - [`Error::Init`] when `init` was already called in this process, when only some of
///   the `SHMPI_*` variables are set or one is not a number, when the rank is not below
///   the size, or when the segment fails its checks (magic number, layout version, job
///   size) or this rank was already claimed;
/// - [`Error::Os`] when the shared segment cannot be created or mapped.
///
/// # Examples
///
/// ```
/// // mpi4py: from mpi4py import MPI; comm = MPI.COMM_WORLD
/// let universe = shmpi::init()?;
/// let world = universe.world();
/// println!("rank {} of {}", world.rank(), world.size());
/// assert!(matches!(shmpi::init(), Err(shmpi::Error::Init(_)))); // once per process
/// # Ok::<(), shmpi::Error>(())
/// ```
pub fn init() -> Result<Universe> {
    if INITIALIZED.swap(true, Ordering::SeqCst) {
        return Err(Error::Init(
            "init was already called in this process; call it once".into(),
        ));
    }
    #[cfg(feature = "mpi")]
    let r = match crate::mpi::wanted() {
        Ok(true) => crate::mpi::init_universe(),
        Ok(false) => attach_or_singleton(),
        Err(e) => Err(e),
    };
    #[cfg(not(feature = "mpi"))]
    let r = attach_or_singleton();
    if r.is_err() {
        INITIALIZED.store(false, Ordering::SeqCst);
    }
    r
}

/// A universe whose world is `world` (the MPI backend's).
#[cfg(feature = "mpi")]
pub(crate) fn universe_of(world: Communicator) -> Universe {
    ENGINE.with(|e| *e.borrow_mut() = Rc::downgrade(&world.inner.eng));
    Universe {
        world,
        _not_send: PhantomData,
    }
}

pub(crate) fn attach_or_singleton() -> Result<Universe> {
    let fd = std::env::var(ENV_FD).ok();
    let rank = std::env::var(ENV_RANK).ok();
    let size = std::env::var(ENV_SIZE).ok();
    let pid = std::process::id() as i32;
    let (seg, rank) = match (fd, rank, size) {
        (None, None, None) => {
            let layout = Layout::new(1, crate::ring::MIN_CAPACITY)?;
            let (_fd, map) = sys::shm::create(layout.total_len)?;
            let params = Params {
                nranks: 1,
                ring_bytes: layout.ring_bytes,
                ncpus: sys::proc::allowed_cpus().len(),
                single_copy: false,
            };
            (Segment::init(map, params, pid)?, 0)
        }
        (Some(fd), Some(rank), Some(size)) => {
            let parse = |name: &str, v: &str| -> Result<usize> {
                v.trim().parse::<usize>().map_err(|_| {
                    Error::Init(format!("{name}={v:?} is not a non-negative number; was this program started by shmrun?"))
                })
            };
            let raw = parse(ENV_FD, &fd)? as i32;
            let rank = parse(ENV_RANK, &rank)?;
            let size = parse(ENV_SIZE, &size)?;
            if rank >= size {
                return Err(Error::Init(format!(
                    "{ENV_RANK}={rank} is not below {ENV_SIZE}={size}"
                )));
            }
            let map = sys::shm::attach(raw, 4096)?;
            (Segment::attach(map, size)?, rank)
        }
        (fd, rank, size) => {
            return Err(Error::Init(format!(
                "only some of {ENV_FD}, {ENV_RANK} and {ENV_SIZE} are set ({ENV_FD}={fd:?}, \
                 {ENV_RANK}={rank:?}, {ENV_SIZE}={size:?}); start the program with shmrun, or \
                 unset them all to run it as a singleton"
            )));
        }
    };
    let seg = Rc::new(seg);
    if seg.single_copy() {
        sys::cma::allow_peers();
    }
    let claim = seg.claim(rank, pid)?;
    let n = seg.nranks();
    crate::trace::attach(rank, n)?;
    let eng = Rc::new(RefCell::new(Engine::new(seg, claim)));
    ENGINE.with(|e| *e.borrow_mut() = Rc::downgrade(&eng));
    let world = Communicator::new_world(eng, Rc::new(Group::world(n)), rank);
    Ok(Universe {
        world,
        _not_send: PhantomData,
    })
}

/// Whether [`init`] has succeeded in this process (`MPI_Initialized`).
///
/// MPI 4.1 §11.2 (`MPI_Initialized`).
///
/// # Examples
///
/// ```
/// assert!(!shmpi::initialized());
/// let universe = shmpi::init()?;
/// assert!(shmpi::initialized());
/// drop(universe);
/// assert!(shmpi::initialized()); // still true after finalizing, as in MPI
/// # Ok::<(), shmpi::Error>(())
/// ```
pub fn initialized() -> bool {
    INITIALIZED.load(Ordering::SeqCst)
}

/// Whether this rank has finalized (`MPI_Finalized`): [`init`] succeeded and then its
/// [`Universe`] and every communicator were dropped, or [`Universe::finalize`] ran.
/// Asked from the thread that called `init`, as every shmpi call is.
///
/// MPI 4.1 §11.2 (`MPI_Finalized`).
///
/// # Examples
///
/// ```
/// let universe = shmpi::init()?;
/// let world = universe.world();
/// drop(universe);
/// assert!(!shmpi::finalized()); // `world` still holds the rank in the job
/// drop(world);
/// assert!(shmpi::finalized());
/// # Ok::<(), shmpi::Error>(())
/// ```
pub fn finalized() -> bool {
    initialized() && ENGINE.with(|e| e.borrow().strong_count() == 0)
}

/// The MPI standard version whose interface shmpi follows (`MPI_Get_version`):
/// `(3, 1)`.
///
/// MPI 4.1 §9.1.1 (`MPI_Get_version`).
///
/// # Examples
///
/// ```
/// assert_eq!(shmpi::version(), (3, 1));
/// ```
pub fn version() -> (i32, i32) {
    (3, 1)
}

/// shmpi's name and version (`MPI_Get_library_version`).
///
/// MPI 4.1 §9.1.1 (`MPI_Get_library_version`).
///
/// # Examples
///
/// ```
/// assert!(shmpi::library_version().starts_with("shmpi "));
/// ```
pub fn library_version() -> String {
    format!("shmpi {}", env!("CARGO_PKG_VERSION"))
}

/// The name of the machine the ranks run on (`MPI_Get_processor_name`): the host name.
///
/// MPI 4.1 §9.1.2 (`MPI_Get_processor_name`).
///
/// # Examples
///
/// ```
/// // Every rank runs on this machine.
/// assert_eq!(shmpi::processor_name(), shmpi::processor_name());
/// ```
pub fn processor_name() -> String {
    sys::proc::hostname()
}

/// The resolution of [`wtime`] in seconds (`MPI_Wtick`).
///
/// MPI 4.1 §9.6 (`MPI_Wtick`).
///
/// # Examples
///
/// ```
/// assert!(shmpi::wtick() > 0.0 && shmpi::wtick() < 1.0);
/// ```
pub fn wtick() -> f64 {
    sys::proc::monotonic_resolution()
}

/// Seconds since an arbitrary point in the past, the same for every process on the
/// machine (`MPI_Wtime`, with `MPI_WTIME_IS_GLOBAL`): the monotonic clock.
///
/// MPI 4.1 §9.6 (`MPI_Wtime`).
///
/// # Examples
///
/// ```
/// let t0 = shmpi::wtime();
/// std::thread::sleep(std::time::Duration::from_millis(1));
/// assert!(shmpi::wtime() - t0 >= 0.001);
/// ```
pub fn wtime() -> f64 {
    sys::proc::monotonic_seconds()
}
