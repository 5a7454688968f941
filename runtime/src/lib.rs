//! pirun: MPI-style message passing for small clusters.
//!
//! A program started by `pirun -n N ./prog` calls [`init`] to join the job and gets the
//! world [`Communicator`]: its rank, the number of ranks, point-to-point messages
//! ([`Communicator::send`], [`Communicator::recv`], non-blocking [`Communicator::isend`] /
//! [`Communicator::irecv`] with [`Request`]s) and the collectives of [`Collectives`].
//! Started without `pirun`, the same program runs as a world of one.
//!
//! ```
//! use pirun::prelude::*;
//!
//! fn main() -> pirun::Result<()> {
//!     let world = pirun::init()?;
//!     let next = (world.rank() + 1) % world.size();
//!     let prev = (world.rank() + world.size() - 1) % world.size();
//!     let (token, _) = world.sendrecv::<u64, u64>(next, 0, &[world.rank() as u64], prev, 0)?;
//!     assert_eq!(token, [prev as u64]);
//!     Ok(())
//! }
//! ```

mod binding;
mod bootstrap;
mod buf;
mod comm;
mod config;
mod conn;
pub mod contract;
mod datatype;
mod deliver;
mod engine;
mod error;
mod fault;
pub mod frame;
pub mod handshake;
mod log;
mod matching;
mod nonblocking;
mod partition;
mod poller;
mod progress;
mod request;
mod split;
mod stream;
mod transport;
mod wait;

pub use bootstrap::init;
pub use comm::{Communicator, Source, Status, Tag, TagFilter, ANY_SOURCE, ANY_TAG};
#[doc(hidden)]
pub use datatype::signature as type_signature;
pub use error::{Error, Result};
pub use nonblocking::{wait_all, wait_any, Request};
pub use partition::partition;
pub use pirun_collectives::{op, select, CollectiveError, Collectives, PointToPoint, WithCounts};

/// Everything a typical program needs, for `use pirun::prelude::*`.
pub mod prelude {
    pub use crate::op::{
        BitAnd, BitOr, BitXor, Loc, LogicalAnd, LogicalOr, LogicalXor, Max, MaxLoc, Min, MinLoc,
        Op, Prod, Sum, UserOp,
    };
    pub use crate::{
        Collectives, Communicator, PointToPoint, Source, Status, Tag, ANY_SOURCE, ANY_TAG,
    };
}

/// The README's code runs as a doctest, so the tour cannot go stale.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
