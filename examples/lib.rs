//! Code shared by the example programs.
