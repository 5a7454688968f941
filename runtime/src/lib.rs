//! pirun: MPI-style message passing for small clusters.

pub mod contract;
