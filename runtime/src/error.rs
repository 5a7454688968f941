//! The error type of every fallible pirun call.
//!
//! Each variant says what happened and, where it helps, what to do about it, and names
//! the rank and host involved. Errors are values: nothing in the runtime panics on bad
//! input from the network or on a peer's failure.

use std::io;

/// Result of a pirun call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a pirun call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The launch contract in the environment is incomplete or malformed.
    #[error("bad launch environment: {0} (was this process started by a matching `pirun`?)")]
    Launch(String),

    /// The control channel to the launcher failed or the launcher went away.
    #[error("rank {rank}: lost the launcher ({detail}); the job is over")]
    LauncherGone {
        /// This process's rank.
        rank: usize,
        /// What was observed.
        detail: String,
    },

    /// An operating-system call failed.
    #[error("rank {rank}: {what}: {source}")]
    Io {
        /// This process's rank.
        rank: usize,
        /// What the runtime was doing.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A peer rank failed, exited or became unreachable while an operation involved it.
    #[error("rank {rank} on host {host}: {detail}")]
    PeerFailed {
        /// The peer's rank in the world communicator.
        rank: usize,
        /// The peer's host name.
        host: String,
        /// What happened.
        detail: String,
    },

    /// A peer exited normally; it will never send or receive again.
    #[error("rank {rank} on host {host} has already {how}; it will send and receive nothing more")]
    PeerFinished {
        /// The peer's rank in the world communicator.
        rank: usize,
        /// The peer's host name.
        host: String,
        /// How it ended, in words.
        how: String,
    },

    /// A rank number outside `0..size` was given.
    #[error("rank {rank} is out of range: the communicator has {size} ranks (0..{size})")]
    InvalidRank {
        /// The rank given.
        rank: usize,
        /// The communicator size.
        size: usize,
    },

    /// A negative tag was given to a send (only receives may use `ANY_TAG`).
    #[error("tag {0} is invalid for sending: tags must be >= 0")]
    InvalidTag(i32),

    /// A message does not fit the receive buffer.
    #[error("message of {len} bytes from rank {source_rank} (tag {tag}) does not fit the receive buffer of {capacity} bytes")]
    Truncated {
        /// Sender's rank in the communicator.
        source_rank: usize,
        /// The message tag.
        tag: i32,
        /// Length of the message.
        len: usize,
        /// Capacity of the buffer.
        capacity: usize,
    },

    /// A message's length differs from the exact length the receive required.
    #[error("message from rank {source_rank} (tag {tag}) has {len} bytes where {expected} were expected; do all ranks make the same call with the same counts?")]
    LengthMismatch {
        /// Sender's rank in the communicator.
        source_rank: usize,
        /// The message tag.
        tag: i32,
        /// Length of the message.
        len: usize,
        /// Length required.
        expected: usize,
    },

    /// A message was received as a type other than the one it was sent as.
    #[error("message from rank {source_rank} (tag {tag}) was sent as a different type than `{expected}` it is received as{detail}")]
    TypeMismatch {
        /// Sender's rank in the communicator.
        source_rank: usize,
        /// The message tag.
        tag: i32,
        /// The type the receiver asked for.
        expected: &'static str,
        /// Extra detail (element sizes, architectures).
        detail: String,
    },

    /// A serde value could not be encoded or decoded.
    #[error("could not {action} a `{ty}` (postcard: {source})")]
    Serde {
        /// "encode" or "decode".
        action: &'static str,
        /// The Rust type involved.
        ty: &'static str,
        /// The underlying error.
        #[source]
        source: postcard::Error,
    },

    /// A message is larger than this runtime accepts.
    #[error("message of {len} bytes exceeds the {limit}-byte limit (PIRUN_MAX_MESSAGE)")]
    TooLarge {
        /// Requested length.
        len: u64,
        /// Configured limit.
        limit: u64,
    },

    /// `test` was called again on a request that already returned its result.
    #[error("the request already returned its result")]
    RequestSpent,

    /// `wait_any` was given no requests.
    #[error("wait_any was given an empty list of requests")]
    NoRequests,

    /// A collective operation detected an error of its own.
    #[error(transparent)]
    Collective(#[from] pirun_collectives::CollectiveError),
}
