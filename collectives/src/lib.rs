//! Collective algorithms (barrier, bcast, reduce, gather, ...) written against the
//! [`PointToPoint`] trait, with no sockets or processes in them.

mod p2p;

pub use p2p::{PointToPoint, Tag};

/// An error detected by a collective operation itself (as opposed to the transport).
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
}
