//! [`CollectiveError`]: the errors a collective operation detects by itself, as opposed to
//! the transport's own errors (which the transport reports through its `Error` type).

/// An error detected by a collective operation itself (as opposed to the transport).
///
/// Every message says what happened and names the ranks involved, so that a failed
/// collective in a job of many ranks can be traced to the rank that called it wrongly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CollectiveError {
    /// The root rank given is not a rank of the communicator.
    #[error("root rank {root} is out of range for a communicator of {size} ranks")]
    InvalidRoot {
        /// The root that was given.
        root: usize,
        /// The communicator's size.
        size: usize,
    },
    /// A message from a peer belongs to a different collective call than the one this rank
    /// is in: another operation, root, element size or algorithm (each message carries a
    /// small header saying which call it belongs to).
    #[error(
        "rank {rank} is in {expected} but received a message of {found} from rank {peer}: \
         the ranks called different collectives (or the same one with a different root, \
         element type or algorithm)"
    )]
    Mismatch {
        /// The rank that detected the mismatch.
        rank: usize,
        /// The rank whose message did not match.
        peer: usize,
        /// The call this rank is in.
        expected: String,
        /// The call the peer's message belongs to.
        found: String,
    },
    /// Two ranks called the same collective with element counts that must agree but don't.
    #[error(
        "rank {rank} called {call} with a count of {expected} but rank {peer} called it \
         with a count of {found}"
    )]
    CountMismatch {
        /// The call, e.g. `allreduce`.
        call: String,
        /// The rank that detected the mismatch.
        rank: usize,
        /// The rank whose count differs.
        peer: usize,
        /// This rank's count.
        expected: u64,
        /// The peer's count.
        found: u64,
    },
    /// A message had a different length than the receiver expected.
    #[error("rank {rank} expected a message of {expected} bytes from rank {peer} but received {found} bytes")]
    LengthMismatch {
        /// The receiving rank.
        rank: usize,
        /// The sending rank.
        peer: usize,
        /// The length the receiver expected, in bytes.
        expected: usize,
        /// The length received, in bytes.
        found: usize,
    },
    /// A buffer or count passed to a collective has the wrong length, or counts don't add up.
    #[error("rank {rank}: {call}: {detail}")]
    InvalidArgument {
        /// The collective, e.g. `scatterv`.
        call: &'static str,
        /// The rank that passed the argument.
        rank: usize,
        /// What is wrong.
        detail: String,
    },
    /// A collective message could not be parsed (too short, unknown operation, counts that
    /// don't add up to its length).
    #[error("rank {rank} received a malformed collective message from rank {peer}: {detail}")]
    Malformed {
        /// The receiving rank.
        rank: usize,
        /// The sending rank.
        peer: usize,
        /// What is wrong with it.
        detail: String,
    },
    /// A serde value sent by a rank could not be decoded.
    #[error("rank {rank} could not decode the value contributed by rank {peer}: {detail}")]
    Decode {
        /// The decoding rank.
        rank: usize,
        /// The rank whose value it was.
        peer: usize,
        /// The decoder's message.
        detail: String,
    },
    /// A serde value could not be encoded.
    #[error("rank {rank} could not encode its value: {detail}")]
    Encode {
        /// The encoding rank.
        rank: usize,
        /// The encoder's message.
        detail: String,
    },
}

impl CollectiveError {
    /// Shorthand for [`CollectiveError::InvalidArgument`].
    pub(crate) fn arg(call: &'static str, rank: usize, detail: impl Into<String>) -> Self {
        CollectiveError::InvalidArgument {
            call,
            rank,
            detail: detail.into(),
        }
    }
}

/// Returns [`CollectiveError::InvalidRoot`] unless `root < size`.
pub(crate) fn check_root(root: usize, size: usize) -> Result<(), CollectiveError> {
    if root < size {
        Ok(())
    } else {
        Err(CollectiveError::InvalidRoot { root, size })
    }
}

/// Returns an [`CollectiveError::InvalidArgument`] unless `found == expected`.
pub(crate) fn check_len(
    call: &'static str,
    rank: usize,
    what: &str,
    expected: usize,
    found: usize,
) -> Result<(), CollectiveError> {
    if expected == found {
        Ok(())
    } else {
        Err(CollectiveError::arg(
            call,
            rank,
            format!("{what} has {found} elements, expected {expected}"),
        ))
    }
}
