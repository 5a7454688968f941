//! The point-to-point trait the collective algorithms are written against.
//!
//! A transport provides blocking, byte-oriented send and receive between the ranks of one
//! communicator. The runtime implements it over authenticated TCP on a context separate
//! from user traffic; the tests implement it in memory with threads and channels. Tags
//! here belong to the collectives alone and never match user messages.

use crate::CollectiveError;

/// Message tag used by the collective algorithms.
pub type Tag = i32;

/// Blocking byte-level point-to-point operations between the ranks of one communicator.
///
/// Implementations must preserve MPI's ordering rule (two messages from one sender with one
/// tag are received in the order sent) and must make progress on incoming traffic while a
/// call blocks, so that two ranks sending to each other at once cannot deadlock inside
/// [`PointToPoint::sendrecv_bytes_into`].
pub trait PointToPoint {
    /// The transport's error type; collective-level errors convert into it.
    type Error: From<CollectiveError> + std::error::Error + Send + Sync + 'static;

    /// This process's rank in the communicator, `0..size`.
    fn rank(&self) -> usize;

    /// Number of ranks in the communicator.
    fn size(&self) -> usize;

    /// Sends `data` to `dest`; returns once `data` may be reused.
    fn send_bytes(&self, dest: usize, tag: Tag, data: &[u8]) -> Result<(), Self::Error>;

    /// Receives a message from `src` with `tag` whose length must be exactly `buf.len()`;
    /// a message of any other length is an error.
    fn recv_bytes_into(&self, src: usize, tag: Tag, buf: &mut [u8]) -> Result<(), Self::Error>;

    /// Receives a message of any length from `src` with `tag`.
    fn recv_bytes(&self, src: usize, tag: Tag) -> Result<Vec<u8>, Self::Error>;

    /// Sends `data` to `dest` and receives exactly `buf.len()` bytes from `src` at the
    /// same time (either may be this rank), without deadlocking when the peer does the same.
    #[allow(clippy::too_many_arguments)]
    fn sendrecv_bytes_into(
        &self,
        dest: usize,
        send_tag: Tag,
        data: &[u8],
        src: usize,
        recv_tag: Tag,
        buf: &mut [u8],
    ) -> Result<(), Self::Error>;
}
