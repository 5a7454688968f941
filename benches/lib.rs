//! The benchmark tool: OSU-style measurements of pirun's point-to-point and collective
//! operations, and the α-β model that explains them.
//!
//! - [`coll`]: latency of one collective at one size (also the `collbench` binary);
//! - [`p2p`]: the ping-pong between rank 0 and a partner;
//! - [`plan`], [`suite`], [`line`](mod@line): what `pirun bench` measures, running it on the ranks
//!   within a time budget, and the lines rank 0 reports to the launcher;
//! - [`model`]: the Hockney fit of the ping-pong and the predictions of each algorithm;
//! - [`sizes`]: byte counts on command lines and in output;
//! - [`timing`]: the warm-up and timed-batch loop the measurements share.

pub mod coll;
pub mod line;
pub mod model;
pub mod p2p;
pub mod plan;
pub mod sizes;
pub mod suite;
pub mod timing;
