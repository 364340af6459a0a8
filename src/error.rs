//! The one error type of shmpi.
//!
//! Every public call returns [`Result<T>`]. Messages say what went wrong, with which
//! rank, tag and sizes, and what to do about it.

use std::fmt;

/// How a rank ended, as the launcher saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The process exited with this status code.
    Code(i32),
    /// The process was killed by this signal number.
    Signal(i32),
    /// The rank finished (dropped its [`Universe`](crate::Universe)) and left the job.
    Finalized,
    /// The rank's thread panicked and dropped its [`Universe`](crate::Universe) while
    /// unwinding: it left the job (its process's exit status follows when it ends).
    Panicked,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Exit::Code(c) => write!(f, "exited with code {c}"),
            Exit::Signal(s) => write!(f, "was killed by signal {s} ({})", signal_name(s)),
            Exit::Finalized => write!(f, "finished and left the job"),
            Exit::Panicked => write!(f, "panicked and left the job"),
        }
    }
}

/// The conventional name of a signal number (`SIGKILL` for 9), or `"?"`.
pub(crate) fn signal_name(sig: i32) -> &'static str {
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(s) => s.as_str(),
        Err(_) => "?",
    }
}

/// Everything that can go wrong in shmpi.
///
/// # Collective errors
///
/// The errors of a collective call's arguments carry MPI's error class
/// ([`Error::class`]), as `MPI_Error_class` would give it:
///
/// - a buffer, count or displacement list of the wrong length, or a block that does
///   not fit its buffer: [`Error::InvalidArgument`] of class
///   [`Count`](ErrorClass::Count), or [`Truncate`](ErrorClass::Truncate) where more
///   elements arrive than the receiving buffer or count takes;
/// - a built-in [`Op`](crate::Op) not defined for the element type:
///   [`InvalidArgument`](Error::InvalidArgument) of class [`Op`](ErrorClass::Op);
/// - ranks whose calls do not match (another collective, or another root, count,
///   element size or op): [`InvalidArgument`](Error::InvalidArgument) naming both
///   calls, of class [`Root`](ErrorClass::Root) or [`Op`](ErrorClass::Op) where that
///   differs, [`Truncate`](ErrorClass::Truncate) where another rank's count is larger
///   than this rank's, [`Count`](ErrorClass::Count) where it is smaller, and
///   [`Other`](ErrorClass::Other) for another call or element size, or a rank that
///   found its own arguments invalid (its error says which);
/// - a root that passes `None` where the call needs its value, an element type that is
///   zero-sized or too large, or a communicator on which an earlier collective failed:
///   [`Error::Usage`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A rank argument is outside the communicator.
    #[error("invalid rank {rank}: valid ranks on this communicator are 0 to {}{}", .size.saturating_sub(1), if *.any_allowed { " or ANY_SOURCE" } else { "" })]
    InvalidRank {
        /// The rank that was passed.
        rank: i32,
        /// The communicator size.
        size: usize,
        /// Whether `ANY_SOURCE` would have been accepted here.
        any_allowed: bool,
    },

    /// A tag argument is out of range.
    #[error("invalid tag {tag}: tags are 0..={max}{}", if *.any_allowed { " or ANY_TAG" } else { " (ANY_TAG is for receives only)" })]
    InvalidTag {
        /// The tag that was passed.
        tag: i32,
        /// The largest valid tag ([`TAG_UB`](crate::TAG_UB)).
        max: i32,
        /// Whether `ANY_TAG` would have been accepted here.
        any_allowed: bool,
    },

    /// The matched message is longer than the receive buffer. The message stays queued.
    #[error(
        "message truncated: the message from rank {source_rank} with tag {tag} has {message_len} bytes \
         but the receive buffer holds {buffer_len}; the message is still queued \
         (receive it into a buffer of at least {message_len} bytes, or probe first for its size)"
    )]
    Truncated {
        /// Sender's rank in the communicator.
        source_rank: i32,
        /// The message tag.
        tag: i32,
        /// Bytes in the message.
        message_len: usize,
        /// Bytes in the receive buffer.
        buffer_len: usize,
    },

    /// The message length is not a whole number of elements of the receive type.
    #[error(
        "size mismatch: the message from rank {source_rank} with tag {tag} has {message_len} bytes, \
         not a multiple of the {elem_size}-byte element type `{elem_type}`; the message is still queued"
    )]
    ElementSize {
        /// Sender's rank.
        source_rank: i32,
        /// The message tag.
        tag: i32,
        /// Bytes in the message.
        message_len: usize,
        /// Size of one element of the receive type.
        elem_size: usize,
        /// Name of the receive element type.
        elem_type: &'static str,
    },

    /// An object of one type was sent and received as another.
    #[error(
        "type mismatch: rank {source_rank} sent a `{sent}` with tag {tag}, but this receive expects a \
         `{expected}`; the message is still queued"
    )]
    TypeMismatch {
        /// Sender's rank.
        source_rank: i32,
        /// The message tag.
        tag: i32,
        /// Type name the sender used (`"raw bytes"` for slices).
        sent: String,
        /// Type name the receiver asked for.
        expected: &'static str,
    },

    /// A received archive failed validation.
    #[error(
        "invalid archive from rank {source_rank} with tag {tag} (type `{type_name}`): {reason}"
    )]
    InvalidArchive {
        /// Sender's rank.
        source_rank: i32,
        /// The message tag.
        tag: i32,
        /// Type the receiver asked for.
        type_name: &'static str,
        /// What the validator said.
        reason: String,
    },

    /// An object could not be serialized.
    #[error("could not serialize a `{type_name}`: {reason}")]
    Serialize {
        /// Type being sent.
        type_name: &'static str,
        /// What rkyv said.
        reason: String,
    },

    /// A peer the call depends on has died or left the job.
    #[error("rank {rank} (world rank) {how}; {while_doing}")]
    PeerFailed {
        /// World rank of the peer.
        rank: usize,
        /// How it ended.
        how: Exit,
        /// What this rank was doing when it noticed.
        while_doing: String,
    },

    /// The job was aborted (a rank failed, called `abort`, or the launcher stopped it).
    #[error("the job was aborted: {reason}")]
    Aborted {
        /// Why, as recorded in the segment.
        reason: String,
    },

    /// Shared state failed a consistency check (a corrupted segment or a shmpi bug).
    #[error("corrupted shared state: {0}; the job cannot continue")]
    Corrupted(String),

    /// The caller misused an operation (wrong argument combination, mismatched collective).
    #[error("{0}")]
    Usage(String),

    /// The root of a rooted collective is not a rank of the communicator (class
    /// `Root`).
    #[error("invalid root {root}: valid roots on this communicator are 0 to {}", .size.saturating_sub(1))]
    InvalidRoot {
        /// The root that was passed.
        root: i32,
        /// The communicator size.
        size: usize,
    },

    /// An argument is invalid in a way that MPI gives an error class of its own (a
    /// count, an op, a group, the dimensions of a topology, a request, a window...).
    #[error("{message}")]
    InvalidArgument {
        /// The MPI error class.
        class: ErrorClass,
        /// What was wrong, with the values involved.
        message: String,
    },

    /// `init` could not join the job.
    #[error("shmpi::init failed: {0}")]
    Init(String),

    /// An operating-system call failed.
    #[error("{what}: {source}")]
    Os {
        /// What shmpi was doing.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// MPI's error classes (MPI 4.1 section 9.4), for bindings that raise MPI's own
/// exception classes (mpi4py's `MPI.Exception.Get_error_class()`). The numbers are
/// MPICH's, which mpi4py's constants take when built against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(i32)]
pub enum ErrorClass {
    /// `MPI_ERR_BUFFER`: an invalid buffer.
    Buffer = 1,
    /// `MPI_ERR_COUNT`: an invalid count.
    Count = 2,
    /// `MPI_ERR_TYPE`: an invalid datatype, or a message of another type.
    Type = 3,
    /// `MPI_ERR_TAG`: an invalid tag.
    Tag = 4,
    /// `MPI_ERR_COMM`: an invalid communicator.
    Comm = 5,
    /// `MPI_ERR_RANK`: an invalid rank.
    Rank = 6,
    /// `MPI_ERR_ROOT`: an invalid root.
    Root = 7,
    /// `MPI_ERR_GROUP`: an invalid group.
    Group = 8,
    /// `MPI_ERR_OP`: an invalid reduction op.
    Op = 9,
    /// `MPI_ERR_TOPOLOGY`: an invalid topology.
    Topology = 10,
    /// `MPI_ERR_DIMS`: invalid dimensions.
    Dims = 11,
    /// `MPI_ERR_ARG`: another invalid argument.
    Arg = 12,
    /// `MPI_ERR_UNKNOWN`.
    Unknown = 13,
    /// `MPI_ERR_TRUNCATE`: a message longer than the receive buffer.
    Truncate = 14,
    /// `MPI_ERR_OTHER`: an error without a class of its own.
    Other = 15,
    /// `MPI_ERR_INTERN`: an internal error.
    Intern = 16,
    /// `MPI_ERR_REQUEST`: an invalid request.
    Request = 19,
    /// `MPI_ERR_PROC_ABORTED`: a peer process failed or aborted.
    ProcAborted = 76,
    /// `MPI_ERR_WIN`: an invalid window.
    Win = 45,
    /// `MPI_ERR_RMA_RANGE`: an access outside a window.
    RmaRange = 55,
    /// `MPI_ERR_RMA_SYNC`: a lock or unlock out of order (an unlock of a part this rank
    /// has not locked, a lock of one it holds, a free while it holds a lock).
    RmaSync = 50,
}

impl ErrorClass {
    /// The class's number (MPICH's value of the `MPI_ERR_*` constant).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmpi::ErrorClass::Truncate.code(), 14); // MPI_ERR_TRUNCATE
    /// ```
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The constant's name without the `MPI_` prefix, as mpi4py spells it (`"ERR_RANK"`).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmpi::ErrorClass::Dims.name(), "ERR_DIMS"); // mpi4py: MPI.ERR_DIMS
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Buffer => "ERR_BUFFER",
            ErrorClass::Count => "ERR_COUNT",
            ErrorClass::Type => "ERR_TYPE",
            ErrorClass::Tag => "ERR_TAG",
            ErrorClass::Comm => "ERR_COMM",
            ErrorClass::Rank => "ERR_RANK",
            ErrorClass::Root => "ERR_ROOT",
            ErrorClass::Group => "ERR_GROUP",
            ErrorClass::Op => "ERR_OP",
            ErrorClass::Topology => "ERR_TOPOLOGY",
            ErrorClass::Dims => "ERR_DIMS",
            ErrorClass::Arg => "ERR_ARG",
            ErrorClass::Unknown => "ERR_UNKNOWN",
            ErrorClass::Truncate => "ERR_TRUNCATE",
            ErrorClass::Other => "ERR_OTHER",
            ErrorClass::Intern => "ERR_INTERN",
            ErrorClass::Request => "ERR_REQUEST",
            ErrorClass::ProcAborted => "ERR_PROC_ABORTED",
            ErrorClass::Win => "ERR_WIN",
            ErrorClass::RmaRange => "ERR_RMA_RANGE",
            ErrorClass::RmaSync => "ERR_RMA_SYNC",
        }
    }
}

impl Error {
    /// The MPI error class of this error (`MPI_Error_class`), for bindings that raise
    /// MPI's exception classes. MPI 4.1 §9.4.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let e = world.send_slice(&[1u8], world.size(), 0).unwrap_err(); // no such rank
    /// assert_eq!(e.class(), shmpi::ErrorClass::Rank);
    /// assert_eq!(e.class().name(), "ERR_RANK");
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::InvalidRank { .. } => ErrorClass::Rank,
            Error::InvalidTag { .. } => ErrorClass::Tag,
            Error::Truncated { .. } => ErrorClass::Truncate,
            Error::ElementSize { .. } | Error::TypeMismatch { .. } => ErrorClass::Type,
            Error::InvalidArchive { .. } | Error::Serialize { .. } => ErrorClass::Type,
            Error::PeerFailed { .. } | Error::Aborted { .. } => ErrorClass::ProcAborted,
            Error::Corrupted(_) => ErrorClass::Intern,
            Error::InvalidRoot { .. } => ErrorClass::Root,
            Error::InvalidArgument { class, .. } => *class,
            Error::Usage(_) | Error::Init(_) | Error::Os { .. } => ErrorClass::Other,
        }
    }

    /// An [`Error::InvalidArgument`] of `class`.
    pub(crate) fn invalid(class: ErrorClass, message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            class,
            message: message.into(),
        }
    }

    /// The error of `got` elements arriving where `want` were expected: more than
    /// the receiver takes is a truncation (as MPI reports a message longer than its
    /// receive), fewer an invalid count.
    pub(crate) fn counts(got: usize, want: usize, message: impl Into<String>) -> Self {
        let class = if got > want {
            ErrorClass::Truncate
        } else {
            ErrorClass::Count
        };
        Error::invalid(class, message)
    }

    pub(crate) fn os(what: impl Into<String>, errno: impl Into<std::io::Error>) -> Self {
        Error::Os {
            what: what.into(),
            source: errno.into(),
        }
    }
}

impl From<nix::Error> for Error {
    fn from(e: nix::Error) -> Self {
        Error::os("system call failed", std::io::Error::from(e))
    }
}

/// `Result` with shmpi's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
