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
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Exit::Code(c) => write!(f, "exited with code {c}"),
            Exit::Signal(s) => write!(f, "was killed by signal {s} ({})", signal_name(s)),
            Exit::Finalized => write!(f, "finished and left the job"),
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
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A rank argument is outside the communicator.
    #[error("invalid rank {rank}: valid ranks on this communicator are 0..{size}{}", if *.any_allowed { " or ANY_SOURCE" } else { "" })]
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
         (receive it with recv_vec, or probe first for its size)"
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

impl Error {
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
