//! Algorithm selection: which algorithm each collective uses for a given message size,
//! communicator size and [`Placement`], and the environment variables that override the
//! choice.
//!
//! The automatic choices started from MPICH's cut-overs (Thakur, Rabenseifner & Gropp,
//! *Optimization of Collective Communication Operations in MPICH*, 2005) and were then set
//! by measurement (`benches/compare/run --only coll` and forced-algorithm sweeps of
//! `collbench`), separately for the three placements a communicator can have:
//!
//! - **one host** ([`Placement::OneHost`], and [`Placement::Crowded`] when the host runs
//!   more ranks than it has cores): messages are copies through the kernel's loopback, so
//!   the fewest copies and the fewest ranks busy at once win. Measured on a 2-core VM at
//!   2 ranks (one host) and 4 and 8 ranks (crowded).
//! - **across hosts** ([`Placement::Hosts`]): a large message costs its bytes on the wire,
//!   so algorithms that send each byte over each link once win. Measured on
//!   `scripts/testbed` (4 hosts, 100 Mbit/s links, 1 or 2 ranks per host).
//!
//! Each override is read once, the first time the operation runs; an unknown name is
//! reported on stderr and ignored (`auto` or an empty value also mean the automatic
//! choice). The override is per process: ranks launched with different values detect the
//! disagreement from the message headers and fail with
//! [`crate::CollectiveError::Mismatch`] instead of hanging.
//!
//! | variable | names | one host | across hosts |
//! |---|---|---|---|
//! | `PIRUN_BCAST_ALGORITHM` | `binomial`, `scatter_allgather`, `pipeline` | `binomial` | `binomial` below 12 KiB; `pipeline` once the message has more segments than `(p - 2) / (log2 p - 1)` (p ≥ 3: 3 on 4 ranks, 4 on 8, 7 on 16); else `binomial` below 8 ranks, `scatter_allgather` from 8 |
//! | `PIRUN_REDUCE_ALGORITHM` | `binomial`, `rabenseifner`, `linear` | `binomial`; crowded: `linear` below 8 KiB | `binomial` up to 2 KiB (or fewer elements than the power of two below `p`) and above 512 KiB, else `rabenseifner` |
//! | `PIRUN_ALLREDUCE_ALGORITHM` | `recursive_doubling`, `rabenseifner`, `ring`, `reduce_bcast` | below 64 KiB `recursive_doubling`, else `rabenseifner`; crowded: below 8 KiB `recursive_doubling`, else `reduce_bcast` | up to 2 KiB (or few elements) `recursive_doubling`; from 256 KiB `ring` (commutative ops); else `rabenseifner` |
//! | `PIRUN_GATHER_ALGORITHM` (gather only) | `binomial`, `linear` | `linear`; crowded: `binomial` for blocks from 128 KiB while the message is at most 4 MiB | `linear` |
//! | `PIRUN_SCATTER_ALGORITHM` (scatter only) | `binomial`, `linear` | `linear`; crowded: `binomial` below 4 KiB blocks, and from 64 KiB while the message is at most 4 MiB | `binomial` below 64 KiB blocks, else `linear` |
//! | `PIRUN_ALLGATHER_ALGORITHM` (also allgatherv) | `recursive_doubling`, `bruck`, `ring` | below 80 KiB in total: `recursive_doubling` on powers of two, else `bruck`; below 512 KiB: `recursive_doubling` on powers of two; else `ring` | below 64 KiB in total: `recursive_doubling` on powers of two, else `bruck`; else `ring` |
//! | `PIRUN_ALLTOALL_ALGORITHM` (also alltoallv) | `pairwise`, `bruck` | `bruck` for blocks up to 256 bytes on 8 ranks or more (alltoall only), else `pairwise` | the same |
//! | `PIRUN_REDUCE_SCATTER_ALGORITHM` | `ring`, `reduce_then_scatter` | `ring` for commutative ops from 2 KiB, else `reduce_then_scatter` | the same |
//! | `PIRUN_SEGMENT_SIZE` | bytes, `k`/`m` suffixes allowed | 32 KiB: the segment size of the `pipeline` broadcast | |
//!
//! Gatherv and `gather_value` are always binomial, scatterv always linear, the barrier a
//! dissemination, scan and exscan recursive doubling.
//!
//! Where a forced algorithm cannot serve a call, a correct one is used instead:
//! `recursive_doubling` allgather on a non-power of two runs `bruck`; `ring` allreduce and
//! `ring` reduce-scatter with a non-commutative operation run `rabenseifner` and
//! `reduce_then_scatter` (their block order is not rank order); `bruck` alltoallv runs
//! `pairwise`.
//!
//! # The measurements behind the cut-overs
//!
//! µs per call (collbench: slowest rank, median of batches of back-to-back calls; medians
//! over repetitions, algorithms alternated). The VM is shared and was loaded (load average
//! 5–11) throughout, so single figures vary by ±30 %; the choices follow differences that
//! held in every sweep.
//!
//! *One host* (loopback TCP, 2 cores; 4 and 8 ranks are crowded). Most crowded figures
//! below were taken with the ranks unbound; since ranks that outnumber the cores bind to
//! them (`runtime/src/binding.rs`) the choices were checked again bound: linear and
//! binomial reduce below 8 KiB are equal within noise (8 B on 4 ranks 4.4 vs 4.4 µs), and
//! binomial scatter of small blocks still wins (8 B on 8 ranks 8.9 vs 16.8 µs):
//!
//! - reduce: `binomial` beat `rabenseifner` at every size and rank count (1 MiB: 256 vs
//!   329 µs at 2 ranks, 867 vs 1223 at 4, 2113 vs 4567 at 8; 64 KiB at 8 ranks: 237 vs
//!   284). `linear` was no better than `binomial` beyond noise in that (loaded) sweep at
//!   large sizes; for small vectors on a crowded host it is (below).
//! - bcast: `binomial` beat `scatter_allgather` and `pipeline` from 64 KiB (1 MiB: 170 /
//!   240 / 635 µs at 2 ranks, 622 / 1054 / 1457 at 4). A segmented binomial reduce (32 KiB
//!   eager pieces, so a child runs ahead while its parent folds) was slower too (1 MiB on
//!   2 ranks: 586 vs 250 µs): on loopback, extra messages cost more than the overlap wins.
//! - allreduce: at 2 ranks `recursive_doubling` up to 16 KiB (8 KiB: 7.6 vs 14.1 µs for
//!   `rabenseifner`), `rabenseifner` from 64 KiB (1 MiB: 390 vs 492); crowded,
//!   `reduce_bcast` from 8 KiB (64 KiB: 130 vs 205 `rabenseifner` at 4 ranks, 997 vs 1027
//!   at 8; 256 KiB at 8 ranks: 2712 vs 4318), `recursive_doubling` below (8 B at 4 ranks:
//!   25 vs 37).
//! - scatter on a crowded host, blocks below 4 KiB: `binomial` (six alternations of
//!   1000-call runs, µs: 8 B 5.9 vs 6.9 on 4 ranks, 13.7 vs 16.5 on 8; 1 KiB 7.4 vs 7.7,
//!   16.4 vs 19.4; but 8 KiB 13.3 vs 11.2, 38.9 vs 30.2): back-to-back calls wait for the
//!   root's sends, and a tree shares them out.
//! - gather and scatter otherwise: `linear` at every size. The root moves every block either way and
//!   a tree only adds hops and copies (gather 1 KiB on 8 ranks: 13 vs 38 µs, 1 MiB: 1950
//!   vs 3101). Rendezvous-sized blocks once favoured the tree, because a linear root
//!   waited for each receiver's clear-to-send in turn (64 KiB + header under the old
//!   64 KiB eager limit, 4 ranks: 51–80 vs 100–138 µs); now the linear root has every
//!   block on its way before it waits for any (`PointToPoint::exchange`), and it wins
//!   there too (four alternations, linear vs binomial, µs: gather 128 KiB 81 vs 144 on 4
//!   ranks, 366 vs 574 on 8; 256 KiB 167 vs 269, 524 vs 752; scatter 128 KiB 83 vs 102,
//!   305 vs 447; 512 KiB 262 vs 328, 716 vs 729), and at 1 MiB the all-at-once root beat
//!   the one-at-a-time one (8 ranks: gather 1186 vs 1460, scatter 1243 vs 1566).
//! - gather and scatter of large blocks on a crowded host, since ranks on one host talk
//!   over a Unix socket and send payloads over TCP (`runtime/src/stream.rs`): `binomial`
//!   from 64 KiB blocks (gather: 128 KiB; at 64 KiB on 8 ranks the tree lost, 126 vs 122
//!   and 115 vs 109) while the message is at most 4 MiB (three sweeps, 3–5 alternations,
//!   linear vs binomial, µs: scatter 64 KiB 42 vs 33 on 4 ranks, 115 vs 91 on 8; 256 KiB
//!   128 vs 118, 413 vs 373; 1 MiB on 4 ranks 565 vs 527 and 568 vs 525; gather 128 KiB
//!   72 vs 67, 340 vs 304; 256 KiB 154 vs 133, 581 vs 499; 1 MiB on 4 ranks 534 vs 519 and
//!   570 vs 556), `linear` above (1 MiB on 8 ranks: gather 1348 vs 1542, scatter 1290 vs
//!   1313) and for mid-sized blocks (scatter 8 KiB: 9.4 vs 11.0 on 4 ranks, 26 vs 34 on 8).
//!   A linear root copies every block into the kernel on its one core; a tree hands part
//!   of that to ranks on the other core.
//! - reduce on a crowded host: `linear` below 8 KiB (8 B on 8 ranks: 13.2 vs 20.3 µs, 1 KiB:
//!   8.9 vs 21.8; on 4 ranks 6.1 vs 7.9 and 7.0 vs 9.3; in 1000-call runs 2.8 vs 5.6 and
//!   3.1 vs 5.2 on 4 ranks, 9.0 vs 11.9 and 11.0 vs 13.4 on 8), `binomial` from 8 KiB (8 KiB:
//!   12.7 vs 12.8 and 30.0 vs 31.2; 64 KiB 57.9 vs 87.7 and 194 vs 205). Each level of
//!   a tree waits for a rank the scheduler has to run; a linear root folds what every rank
//!   sent eagerly.
//!
//! *Across hosts* (testbed, 100 Mbit/s ≈ 11.9 MB/s of payload, so 1 MiB takes 88 ms on one
//! link; 4 ranks = 1 per host, 8 ranks = 2 per host; ms):
//!
//! - bcast: `pipeline` won from 8 KiB in these back-to-back calls (1 MiB: 97 vs 187
//!   `scatter_allgather` vs 250 `binomial` at 4 ranks, 92 vs 190 vs 219 at 8; 64 KiB:
//!   6.3 / 8.3 / 11.0), since each link carries the message once. A single call of a
//!   small message reaches the last rank of a chain later than the leaves of a tree, hence
//!   the segment rule above rather than 8 KiB.
//! - reduce: `rabenseifner` won from 8 KiB to 256 KiB (64 KiB: 8.3 vs 11.0), `binomial` at
//!   1 MiB (175 vs 209 at 4 ranks, 176 vs 194 at 8): the exchanges of recursive halving
//!   reached ~70 % of the link rate, a clear-to-send queueing behind bulk data in the
//!   reverse direction.
//! - allreduce: `ring` from 256 KiB (1 MiB: 189 vs 262 `rabenseifner` at 4 ranks, 180 vs
//!   223 at 8), `rabenseifner` at 16–64 KiB (8 ranks, 64 KiB: 8.3 vs 9.8 `ring`),
//!   `recursive_doubling` at 2 KiB (4 ranks: 0.39 vs 1.01 `ring`).
//! - allgather: `ring` from 64 KiB in total (8 ranks × 8 KiB: 4.9 vs 8.4
//!   `recursive_doubling`; 4 × 64 KiB: 20.7 vs 29.3), `recursive_doubling` below (4 × 8
//!   KiB: 2.09 vs 2.20).
//! - alltoall: `bruck` only for 8 to 256-byte blocks on 8 ranks (8 B: 0.39 vs 0.86),
//!   `pairwise` otherwise (4 ranks, 8 B: 0.06 vs 0.29): MPICH's cut-over.

use std::sync::OnceLock;

use crate::tree::Fold;
use crate::wire::OpCode;
use crate::PointToPoint;

macro_rules! algorithms {
    ($(#[$doc:meta])* $name:ident, $env:literal {
        $($(#[$vdoc:meta])* $variant:ident = $code:literal => $str:literal,)*
    }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// Every algorithm, in the order of the table in [`crate::select`].
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The environment variable that overrides the automatic choice.
            pub const ENV: &'static str = $env;

            /// The algorithm's name, as written in the environment variable.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $str),* }
            }

            /// Parses an algorithm name.
            pub fn from_name(s: &str) -> Option<Self> {
                match s { $($str => Some($name::$variant),)* _ => None }
            }

            pub(crate) fn code(self) -> u8 {
                match self { $($name::$variant => $code),* }
            }

            fn name_of_code(c: u8) -> &'static str {
                match c { $($code => $str,)* _ => "unknown" }
            }

            /// The override from the environment variable, read once.
            pub fn from_env() -> Option<Self> {
                static V: OnceLock<Option<$name>> = OnceLock::new();
                *V.get_or_init(|| {
                    read_env($env, $name::from_name, &[$($str),*])
                })
            }
        }
    };
}

algorithms! {
    /// Broadcast algorithms.
    BcastAlgorithm, "PIRUN_BCAST_ALGORITHM" {
        /// Binomial tree: `log p` steps, the whole message on every edge.
        Binomial = 1 => "binomial",
        /// Binomial scatter of `p` blocks, then an allgather of the blocks.
        ScatterAllgather = 2 => "scatter_allgather",
        /// A chain through the ranks with the message cut into segments, each rank
        /// forwarding one segment while receiving the next.
        Pipeline = 3 => "pipeline",
    }
}

algorithms! {
    /// Reduce algorithms.
    ReduceAlgorithm, "PIRUN_REDUCE_ALGORITHM" {
        /// Binomial tree.
        Binomial = 1 => "binomial",
        /// Reduce-scatter by recursive halving, then each block straight to the root.
        Rabenseifner = 2 => "rabenseifner",
        /// Every rank sends its vector straight to the root, which folds them in.
        Linear = 3 => "linear",
    }
}

algorithms! {
    /// Gather algorithms (equal blocks; gatherv is always binomial).
    GatherAlgorithm, "PIRUN_GATHER_ALGORITHM" {
        /// Binomial tree: each edge carries the sender's whole subtree.
        Binomial = 1 => "binomial",
        /// Every rank sends its block straight to the root.
        Linear = 2 => "linear",
    }
}

algorithms! {
    /// Scatter algorithms (equal blocks; scatterv is always linear).
    ScatterAlgorithm, "PIRUN_SCATTER_ALGORITHM" {
        /// Binomial tree: each edge carries the receiver's whole subtree.
        Binomial = 1 => "binomial",
        /// The root sends every rank its block directly.
        Linear = 2 => "linear",
    }
}

algorithms! {
    /// Allreduce algorithms.
    AllreduceAlgorithm, "PIRUN_ALLREDUCE_ALGORITHM" {
        /// Recursive doubling: `log p` exchanges of the whole vector.
        RecursiveDoubling = 1 => "recursive_doubling",
        /// Reduce-scatter by recursive halving, then allgather by recursive doubling.
        Rabenseifner = 2 => "rabenseifner",
        /// Ring reduce-scatter, then ring allgather.
        Ring = 3 => "ring",
        /// Reduce to rank 0, then broadcast.
        ReduceBcast = 4 => "reduce_bcast",
    }
}

algorithms! {
    /// Allgather and allgatherv algorithms.
    AllgatherAlgorithm, "PIRUN_ALLGATHER_ALGORITHM" {
        /// Recursive doubling (powers of two only).
        RecursiveDoubling = 1 => "recursive_doubling",
        /// Bruck's algorithm: `ceil(log p)` steps for any `p`.
        Bruck = 2 => "bruck",
        /// Ring: `p - 1` steps, each passing one block on.
        Ring = 3 => "ring",
    }
}

algorithms! {
    /// Alltoall and alltoallv algorithms.
    AlltoallAlgorithm, "PIRUN_ALLTOALL_ALGORITHM" {
        /// Pairwise exchange: `p - 1` steps, one partner each.
        Pairwise = 1 => "pairwise",
        /// Bruck's algorithm: `ceil(log p)` steps of about half the data (alltoall only).
        Bruck = 2 => "bruck",
    }
}

algorithms! {
    /// Reduce-scatter (block) algorithms.
    ReduceScatterAlgorithm, "PIRUN_REDUCE_SCATTER_ALGORITHM" {
        /// Ring reduce-scatter (commutative operations).
        Ring = 1 => "ring",
        /// Reduce to rank 0, then scatter.
        ReduceThenScatter = 2 => "reduce_then_scatter",
    }
}

fn read_env<T>(var: &str, parse: fn(&str) -> Option<T>, names: &[&str]) -> Option<T> {
    let val = std::env::var(var).ok()?;
    let val = val.trim();
    if val.is_empty() || val == "auto" {
        return None;
    }
    let parsed = parse(val);
    if parsed.is_none() {
        eprintln!(
            "pirun: ignoring {var}={val:?}: expected auto or one of {}",
            names.join(", ")
        );
    }
    parsed
}

/// The name of algorithm `code` of `op`, for error messages.
pub(crate) fn algorithm_name(op: OpCode, code: u8) -> &'static str {
    use OpCode::*;
    match op {
        Bcast => BcastAlgorithm::name_of_code(code),
        Reduce => ReduceAlgorithm::name_of_code(code),
        Allreduce => AllreduceAlgorithm::name_of_code(code),
        Allgather | Allgatherv | AllgathervCounts | AllgatherValue => {
            AllgatherAlgorithm::name_of_code(code)
        }
        Alltoall | Alltoallv | AlltoallvCounts => AlltoallAlgorithm::name_of_code(code),
        ReduceScatterBlock => ReduceScatterAlgorithm::name_of_code(code),
        Barrier => BARRIER_ALGORITHM,
        Gather => GatherAlgorithm::name_of_code(code),
        Gatherv | GatherValue => GATHER_ALGORITHM,
        Scatter => ScatterAlgorithm::name_of_code(code),
        BcastValue => "binomial",
        Scatterv => "linear",
        Scan | Exscan => "recursive_doubling",
    }
}

/// The barrier's only algorithm (no choice, no override).
pub const BARRIER_ALGORITHM: &str = "dissemination";
/// The only algorithm of gatherv and gather_value (gather: [`gather_on`]).
pub const GATHER_ALGORITHM: &str = "binomial";
/// The tree algorithm of scatter (the choice: [`scatter_on`]; scatterv is linear).
pub const SCATTER_ALGORITHM: &str = "binomial";

/// Default segment size of the pipelined broadcast, in bytes.
pub const DEFAULT_SEGMENT_SIZE: usize = 32 * 1024;

/// The segment size of pipelined algorithms: `PIRUN_SEGMENT_SIZE` (read once) or
/// [`DEFAULT_SEGMENT_SIZE`].
pub fn segment_size() -> usize {
    static V: OnceLock<usize> = OnceLock::new();
    *V.get_or_init(|| {
        let Ok(val) = std::env::var("PIRUN_SEGMENT_SIZE") else {
            return DEFAULT_SEGMENT_SIZE;
        };
        parse_size(&val).unwrap_or_else(|| {
            eprintln!("pirun: ignoring PIRUN_SEGMENT_SIZE={val:?}: expected a positive byte count like 65536 or 64k");
            DEFAULT_SEGMENT_SIZE
        })
    })
}

fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim().to_ascii_lowercase();
    let (digits, mult) = match s.strip_suffix('k') {
        Some(d) => (d, 1024),
        None => match s.strip_suffix('m') {
            Some(d) => (d, 1024 * 1024),
            None => (s.as_str(), 1),
        },
    };
    digits
        .parse::<usize>()
        .ok()?
        .checked_mul(mult)
        .filter(|&n| n > 0)
}

/// Where a communicator's ranks run, as far as the choice of algorithm cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Placement {
    /// Every rank on one host, each with a core: a message is two copies through the
    /// kernel, so the fewest copies win.
    OneHost,
    /// Every rank on one host, which runs more ranks than it has cores: ranks take turns on
    /// the cores, so algorithms that keep few ranks busy at once win (each hop that wakes a
    /// rank that is not running costs a scheduler turn).
    Crowded,
    /// Ranks on several hosts: a large message costs its bytes on the wire, so algorithms
    /// that move each byte over each link once win (pipelines and rings).
    Hosts,
}

impl Placement {
    /// The placement of `comm`'s ranks ([`PointToPoint::spans_hosts`],
    /// [`PointToPoint::oversubscribed`]).
    pub fn of<C: PointToPoint + ?Sized>(comm: &C) -> Placement {
        if comm.spans_hosts() {
            Placement::Hosts
        } else if comm.oversubscribed() {
            Placement::Crowded
        } else {
            Placement::OneHost
        }
    }
}

/// The broadcast algorithm for `bytes` bytes on `size` ranks spread over hosts
/// ([`bcast_on`] with [`Placement::Hosts`]).
pub fn bcast(bytes: usize, size: usize) -> BcastAlgorithm {
    bcast_on(bytes, size, Placement::Hosts)
}

/// The broadcast algorithm for `bytes` bytes on `size` ranks placed as `placement` says.
pub fn bcast_on(bytes: usize, size: usize, placement: Placement) -> BcastAlgorithm {
    use BcastAlgorithm::*;
    BcastAlgorithm::from_env().unwrap_or(match placement {
        Placement::OneHost | Placement::Crowded => Binomial,
        Placement::Hosts if bytes < 12 * 1024 => Binomial,
        Placement::Hosts if pipeline_pays(bytes, size) => Pipeline,
        Placement::Hosts if size < 8 => Binomial,
        Placement::Hosts => ScatterAllgather,
    })
}

/// Whether a chain of `size` ranks carrying `bytes` in [`segment_size`] pieces beats a
/// binomial tree for one broadcast: the chain takes `pieces + size - 2` segment times, the
/// tree `depth` whole-message times, so the chain wins once
/// `pieces * (depth - 1) > size - 2` (from 3 segments on 4 ranks, 4 on 8, 7 on 16).
fn pipeline_pays(bytes: usize, size: usize) -> bool {
    let depth = (usize::BITS - size.saturating_sub(1).leading_zeros()) as usize;
    let pieces = bytes.div_ceil(segment_size());
    size >= 3 && pieces * depth.saturating_sub(1) > size - 2
}

/// The gather algorithm for blocks of `block` bytes on `size` ranks placed as `placement`
/// says: a binomial tree on a crowded host for blocks from 128 KiB up to a 4 MiB message,
/// else linear.
pub fn gather_on(block: usize, size: usize, placement: Placement) -> GatherAlgorithm {
    // Linear (every receive posted at once, `Ctx::take_all`), except for large blocks on a
    // crowded host (see [`crowded_tree`]; at 64 KiB on 8 ranks the tree lost by 3–5 %).
    let tree = block >= 128 * 1024 && crowded_tree(block, size, placement);
    GatherAlgorithm::from_env().unwrap_or(if tree {
        GatherAlgorithm::Binomial
    } else {
        GatherAlgorithm::Linear
    })
}

/// Whether a gather or scatter of `block`-byte blocks on `size` ranks goes by binomial
/// tree because the host is crowded, the blocks are at least 64 KiB and the whole message
/// is at most 4 MiB. A linear root copies every block into the kernel itself, on its one core;
/// a tree hands part of that to ranks on the other cores. The tree moves more bytes in
/// all (each level forwards half of what it got), which only pays while the message is
/// not too large.
fn crowded_tree(block: usize, size: usize, placement: Placement) -> bool {
    placement == Placement::Crowded && block >= 64 * 1024 && block.saturating_mul(size) <= 4 << 20
}

/// The scatter algorithm for blocks of `block` bytes on `size` ranks placed as `placement`
/// says: a binomial tree on a crowded host for small blocks and for large ones up to a
/// 4 MiB message (the root's sends are the bottleneck of back-to-back calls; a tree shares
/// them), and below 64 KiB across hosts, else linear (every block on its way at once,
/// `Ctx::put_each`).
pub fn scatter_on(block: usize, size: usize, placement: Placement) -> ScatterAlgorithm {
    ScatterAlgorithm::from_env().unwrap_or(match placement {
        Placement::Crowded if block < 4 * 1024 => ScatterAlgorithm::Binomial,
        _ if crowded_tree(block, size, placement) => ScatterAlgorithm::Binomial,
        Placement::Hosts if block < 64 * 1024 => ScatterAlgorithm::Binomial,
        _ => ScatterAlgorithm::Linear,
    })
}

fn few(count: usize, bytes: usize, size: usize) -> bool {
    bytes <= 2048 || count < Fold::new(size).pof2
}

/// The reduce algorithm for `count` elements of `bytes` bytes in all on `size` ranks spread
/// over hosts ([`reduce_on`] with [`Placement::Hosts`]).
pub fn reduce(count: usize, bytes: usize, size: usize) -> ReduceAlgorithm {
    reduce_on(count, bytes, size, Placement::Hosts)
}

/// The reduce algorithm for `count` elements of `bytes` bytes in all on `size` ranks placed
/// as `placement` says.
pub fn reduce_on(count: usize, bytes: usize, size: usize, placement: Placement) -> ReduceAlgorithm {
    use ReduceAlgorithm::*;
    ReduceAlgorithm::from_env().unwrap_or(match placement {
        Placement::Crowded if bytes < 8 * 1024 => Linear,
        Placement::OneHost | Placement::Crowded => Binomial,
        Placement::Hosts if few(count, bytes, size) || bytes > 512 * 1024 => Binomial,
        Placement::Hosts => Rabenseifner,
    })
}

/// The allreduce algorithm for `count` elements of `bytes` bytes in all on `size` ranks
/// spread over hosts ([`allreduce_on`] with [`Placement::Hosts`]).
pub fn allreduce(count: usize, bytes: usize, size: usize, commutative: bool) -> AllreduceAlgorithm {
    allreduce_on(count, bytes, size, commutative, Placement::Hosts)
}

/// The allreduce algorithm for `count` elements of `bytes` bytes in all on `size` ranks
/// placed as `placement` says.
pub fn allreduce_on(
    count: usize,
    bytes: usize,
    size: usize,
    commutative: bool,
    placement: Placement,
) -> AllreduceAlgorithm {
    use AllreduceAlgorithm::*;
    let auto = match placement {
        _ if few(count, bytes, size) => RecursiveDoubling,
        Placement::OneHost if bytes < 64 * 1024 => RecursiveDoubling,
        Placement::OneHost => Rabenseifner,
        Placement::Crowded if bytes < 8 * 1024 => RecursiveDoubling,
        Placement::Crowded => ReduceBcast,
        Placement::Hosts if commutative && bytes >= 256 * 1024 => Ring,
        Placement::Hosts => Rabenseifner,
    };
    usable_allreduce(AllreduceAlgorithm::from_env().unwrap_or(auto), commutative)
}

/// `alg`, or the algorithm that replaces it when it cannot serve the operation.
pub(crate) fn usable_allreduce(alg: AllreduceAlgorithm, commutative: bool) -> AllreduceAlgorithm {
    match alg {
        AllreduceAlgorithm::Ring if !commutative => AllreduceAlgorithm::Rabenseifner,
        a => a,
    }
}

/// The allgather algorithm for `total` bytes gathered in all on `size` ranks spread over
/// hosts ([`allgather_on`] with [`Placement::Hosts`]).
pub fn allgather(total: usize, size: usize) -> AllgatherAlgorithm {
    allgather_on(total, size, Placement::Hosts)
}

/// The allgather algorithm for `total` bytes gathered in all on `size` ranks placed as
/// `placement` says.
pub fn allgather_on(total: usize, size: usize, placement: Placement) -> AllgatherAlgorithm {
    usable_allgather(
        AllgatherAlgorithm::from_env().unwrap_or(allgather_auto(total, size, placement)),
        size,
    )
}

/// The automatic allgather choice, ignoring the environment (the allgather phase of the
/// scatter-allgather broadcast uses it, so only `PIRUN_BCAST_ALGORITHM` steers a bcast).
pub(crate) fn allgather_auto(
    total: usize,
    size: usize,
    placement: Placement,
) -> AllgatherAlgorithm {
    use AllgatherAlgorithm::*;
    let pow2 = size.is_power_of_two();
    let small = match placement {
        Placement::OneHost | Placement::Crowded => 80 * 1024,
        Placement::Hosts => 64 * 1024,
    };
    match placement {
        _ if total < small && pow2 => RecursiveDoubling,
        _ if total < small => Bruck,
        Placement::OneHost | Placement::Crowded if total < 512 * 1024 && pow2 => RecursiveDoubling,
        _ => Ring,
    }
}

/// The allgather the `scatter_allgather` broadcast of `bytes` bytes on `size` ranks spread
/// over hosts runs after its scatter ([`bcast_allgather_on`] with [`Placement::Hosts`]).
pub fn bcast_allgather(bytes: usize, size: usize) -> AllgatherAlgorithm {
    bcast_allgather_on(bytes, size, Placement::Hosts)
}

/// The allgather the `scatter_allgather` broadcast of `bytes` bytes runs after its scatter
/// (the automatic choice: `PIRUN_ALLGATHER_ALGORITHM` does not steer it).
pub fn bcast_allgather_on(bytes: usize, size: usize, placement: Placement) -> AllgatherAlgorithm {
    allgather_auto(bytes, size, placement)
}

/// `alg`, or the algorithm that replaces it on `size` ranks.
pub(crate) fn usable_allgather(alg: AllgatherAlgorithm, size: usize) -> AllgatherAlgorithm {
    match alg {
        AllgatherAlgorithm::RecursiveDoubling if !size.is_power_of_two() => {
            AllgatherAlgorithm::Bruck
        }
        a => a,
    }
}

/// The alltoall algorithm for blocks of `block` bytes on `size` ranks spread over hosts
/// ([`alltoall_on`] with [`Placement::Hosts`]).
pub fn alltoall(block: usize, size: usize) -> AlltoallAlgorithm {
    alltoall_on(block, size, Placement::Hosts)
}

/// The alltoall algorithm for blocks of `block` bytes on `size` ranks placed as
/// `placement` says.
pub fn alltoall_on(block: usize, size: usize, placement: Placement) -> AlltoallAlgorithm {
    let _ = placement; // MPICH's cut-over held on both (see the table above)
    AlltoallAlgorithm::from_env().unwrap_or(if block <= 256 && size >= 8 {
        AlltoallAlgorithm::Bruck
    } else {
        AlltoallAlgorithm::Pairwise
    })
}

/// The reduce-scatter algorithm for `bytes` bytes in all on `size` ranks.
pub fn reduce_scatter(bytes: usize, commutative: bool) -> ReduceScatterAlgorithm {
    let auto = if commutative && bytes >= 2048 {
        ReduceScatterAlgorithm::Ring
    } else {
        ReduceScatterAlgorithm::ReduceThenScatter
    };
    usable_reduce_scatter(
        ReduceScatterAlgorithm::from_env().unwrap_or(auto),
        commutative,
    )
}

/// `alg`, or the algorithm that replaces it for the operation.
pub(crate) fn usable_reduce_scatter(
    alg: ReduceScatterAlgorithm,
    commutative: bool,
) -> ReduceScatterAlgorithm {
    match alg {
        ReduceScatterAlgorithm::Ring if !commutative => ReduceScatterAlgorithm::ReduceThenScatter,
        a => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in AllreduceAlgorithm::ALL {
            assert_eq!(AllreduceAlgorithm::from_name(a.name()), Some(*a));
            assert_eq!(algorithm_name(OpCode::Allreduce, a.code()), a.name());
        }
        assert_eq!(BcastAlgorithm::from_name("nope"), None);
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size(" 64K "), Some(65536));
        assert_eq!(parse_size("2m"), Some(2 << 20));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn cutovers() {
        if std::env::vars().any(|(k, _)| k.starts_with("PIRUN_")) {
            return; // an override is in force; the automatic choice is not observable
        }
        use Placement::*;
        // Across hosts: MPICH's small-message choices, pipelines and rings for bulk.
        assert_eq!(bcast(100, 16), BcastAlgorithm::Binomial);
        assert_eq!(bcast(64 << 10, 4), BcastAlgorithm::Binomial);
        assert_eq!(bcast(96 << 10, 4), BcastAlgorithm::Pipeline);
        assert_eq!(bcast(96 << 10, 8), BcastAlgorithm::ScatterAllgather);
        assert_eq!(bcast(128 << 10, 8), BcastAlgorithm::Pipeline);
        assert_eq!(bcast(1 << 20, 2), BcastAlgorithm::Binomial);
        assert_eq!(reduce(4, 32, 4), ReduceAlgorithm::Binomial);
        assert_eq!(reduce(1 << 13, 1 << 16, 4), ReduceAlgorithm::Rabenseifner);
        assert_eq!(reduce(1 << 17, 1 << 20, 4), ReduceAlgorithm::Binomial);
        assert_eq!(
            allreduce(2, 16, 6, true),
            AllreduceAlgorithm::RecursiveDoubling
        );
        assert_eq!(
            allreduce(1 << 13, 1 << 16, 6, true),
            AllreduceAlgorithm::Rabenseifner
        );
        assert_eq!(
            allreduce(1 << 15, 1 << 18, 8, true),
            AllreduceAlgorithm::Ring
        );
        assert_eq!(
            allreduce(1 << 18, 1 << 21, 6, false),
            AllreduceAlgorithm::Rabenseifner
        );
        assert_eq!(allgather(1000, 8), AllgatherAlgorithm::RecursiveDoubling);
        assert_eq!(allgather(1000, 7), AllgatherAlgorithm::Bruck);
        assert_eq!(allgather(64 << 10, 8), AllgatherAlgorithm::Ring);
        assert_eq!(alltoall(8, 16), AlltoallAlgorithm::Bruck);
        assert_eq!(alltoall(8, 4), AlltoallAlgorithm::Pairwise);
        assert_eq!(gather_on(1 << 20, 8, Hosts), GatherAlgorithm::Linear);
        assert_eq!(scatter_on(8, 8, Hosts), ScatterAlgorithm::Binomial);
        assert_eq!(scatter_on(1 << 20, 8, Hosts), ScatterAlgorithm::Linear);
        // One host: trees and direct sends.
        for p in [OneHost, Crowded] {
            assert_eq!(bcast_on(1 << 20, 8, p), BcastAlgorithm::Binomial);
            assert_eq!(reduce_on(1 << 17, 1 << 20, 8, p), ReduceAlgorithm::Binomial);
            assert_eq!(gather_on(8, 8, p), GatherAlgorithm::Linear);
            assert_eq!(gather_on(32 << 10, 8, p), GatherAlgorithm::Linear);
            assert_eq!(gather_on(1 << 20, 8, p), GatherAlgorithm::Linear);
            assert_eq!(scatter_on(8 << 10, 8, p), ScatterAlgorithm::Linear);
            assert_eq!(scatter_on(1 << 20, 8, p), ScatterAlgorithm::Linear);
            // Crowded: a tree for small scatter blocks, and for large blocks while the
            // whole message is at most 4 MiB.
            let tree = |crowded| match (p, crowded) {
                (Crowded, true) => (GatherAlgorithm::Binomial, ScatterAlgorithm::Binomial),
                _ => (GatherAlgorithm::Linear, ScatterAlgorithm::Linear),
            };
            for (block, size) in [(128 << 10, 8), (256 << 10, 8), (1 << 20, 4)] {
                let got = (gather_on(block, size, p), scatter_on(block, size, p));
                assert_eq!(got, tree(true), "{block} B on {size} ranks, {p:?}");
            }
            assert_eq!(gather_on(64 << 10, 8, p), GatherAlgorithm::Linear);
            assert_eq!(scatter_on(64 << 10, 8, p), tree(true).1);
            assert_eq!(scatter_on(8, 8, p), tree(true).1);
            assert_eq!(
                allgather_on(256 << 10, 8, p),
                AllgatherAlgorithm::RecursiveDoubling
            );
        }
        assert_eq!(
            allreduce_on(1 << 12, 1 << 15, 2, true, OneHost),
            AllreduceAlgorithm::RecursiveDoubling
        );
        assert_eq!(
            allreduce_on(1 << 17, 1 << 20, 2, true, OneHost),
            AllreduceAlgorithm::Rabenseifner
        );
        assert_eq!(
            allreduce_on(1 << 10, 1 << 13, 8, true, Crowded),
            AllreduceAlgorithm::ReduceBcast
        );
    }
}
