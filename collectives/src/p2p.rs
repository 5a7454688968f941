//! The point-to-point trait the collective algorithms are written against.
//!
//! A transport provides blocking, byte-oriented send and receive between the ranks of one
//! communicator. The runtime implements it over authenticated TCP on a context separate
//! from user traffic; the tests implement it in memory with threads and channels
//! ([`crate::local`]). Tags here belong to the collectives alone and never match user
//! messages.
//!
//! Every collective message is a small header (which call it belongs to) followed by the
//! payload. The `*_parts` methods carry such a message as a list of slices; their provided
//! implementations copy the parts into (or out of) one contiguous buffer, and a transport
//! that can do scatter/gather I/O (`writev`/`readv`) should override them to keep numeric
//! payloads zero-copy.

use crate::CollectiveError;

/// Message tag used by the collective algorithms.
pub type Tag = i32;

/// Blocking byte-level point-to-point operations between the ranks of one communicator.
///
/// Implementations must preserve MPI's ordering rule (two messages from one sender with one
/// tag are received in the order sent) and must make progress on incoming traffic while a
/// call blocks, so that two ranks sending to each other at once cannot deadlock inside
/// [`PointToPoint::sendrecv_bytes_into`]. A send may block until the receiver takes the
/// message (rendezvous); the algorithms never rely on buffering.
pub trait PointToPoint {
    /// The transport's error type; collective-level errors convert into it.
    type Error: From<CollectiveError> + std::error::Error + Send + Sync + 'static;

    /// This process's rank in the communicator, `0..size`.
    fn rank(&self) -> usize;

    /// Number of ranks in the communicator.
    fn size(&self) -> usize;

    /// Whether the ranks of the communicator run on more than one host.
    ///
    /// Algorithm selection ([`crate::select::Placement`]) uses it: among the ranks of one
    /// host a large message costs copies and page faults, across hosts it costs its bytes
    /// on the wire, and the best algorithm differs. The provided implementation answers
    /// `true`, the case MPICH's cut-overs were made for.
    fn spans_hosts(&self) -> bool {
        true
    }

    /// Whether this rank's host runs more ranks than it has cores, so that ranks take
    /// turns on the cores. Algorithm selection then prefers algorithms that keep few ranks
    /// busy at once. The provided implementation answers `false`.
    fn oversubscribed(&self) -> bool {
        false
    }

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

    /// Sends every message of `sends` and receives every message of `recvs`, all at once,
    /// and returns when all are done.
    ///
    /// A send is (destination, tag, parts of its body), as [`PointToPoint::send_parts`]; a
    /// receive is (source, tag, parts its body is split across), as
    /// [`PointToPoint::recv_parts_into`]: its length must be exactly theirs. Nothing waits
    /// for anything else — the root of a linear scatter does not wait for one receiver's
    /// clear-to-send before it announces the next block — so the transport must post
    /// every receive and start every send before it waits for any of them.
    fn exchange(
        &self,
        sends: &[(usize, Tag, &[&[u8]])],
        recvs: &mut [(usize, Tag, &mut [&mut [u8]])],
    ) -> Result<(), Self::Error>;

    /// Sends the concatenation of `parts` as one message, as [`PointToPoint::send_bytes`].
    ///
    /// The provided implementation copies the parts into one buffer; override it with a
    /// vectored write to avoid the copy.
    fn send_parts(&self, dest: usize, tag: Tag, parts: &[&[u8]]) -> Result<(), Self::Error> {
        self.send_bytes(dest, tag, &parts.concat())
    }

    /// Receives one message whose length must be exactly the sum of the parts' lengths and
    /// splits it across `parts` in order, as [`PointToPoint::recv_bytes_into`].
    ///
    /// The provided implementation receives into one buffer and copies; override it with
    /// a vectored read to avoid the copy.
    fn recv_parts_into(
        &self,
        src: usize,
        tag: Tag,
        parts: &mut [&mut [u8]],
    ) -> Result<(), Self::Error> {
        let mut buf = vec![0u8; parts.iter().map(|p| p.len()).sum()];
        self.recv_bytes_into(src, tag, &mut buf)?;
        scatter_into(&buf, parts);
        Ok(())
    }

    /// [`PointToPoint::sendrecv_bytes_into`] with the outgoing and incoming messages given
    /// as parts, as [`PointToPoint::send_parts`] and [`PointToPoint::recv_parts_into`].
    fn sendrecv_parts_into(
        &self,
        dest: usize,
        send_tag: Tag,
        send: &[&[u8]],
        src: usize,
        recv_tag: Tag,
        recv: &mut [&mut [u8]],
    ) -> Result<(), Self::Error> {
        let mut buf = vec![0u8; recv.iter().map(|p| p.len()).sum()];
        self.sendrecv_bytes_into(dest, send_tag, &send.concat(), src, recv_tag, &mut buf)?;
        scatter_into(&buf, recv);
        Ok(())
    }
}

/// Copies `buf` into `parts` in order; `buf` must be exactly as long as the parts together.
/// Shared with transports that fall back to one contiguous buffer.
pub fn scatter_into(mut buf: &[u8], parts: &mut [&mut [u8]]) {
    for p in parts.iter_mut() {
        let (head, rest) = buf.split_at(p.len());
        p.copy_from_slice(head);
        buf = rest;
    }
}
