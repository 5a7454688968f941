//! Algorithm selection: which algorithm each collective uses for a given message size and
//! communicator size, and the environment variables that override the choice.
//!
//! The automatic choices start from MPICH's cut-overs (Thakur, Rabenseifner & Gropp,
//! *Optimization of Collective Communication Operations in MPICH*, 2005). Each override is
//! read once, the first time the operation runs; an unknown name is reported on stderr
//! and ignored (`auto` or an empty value also mean the automatic choice). The override is
//! per process: ranks launched with different values detect the disagreement from the
//! message headers and fail with [`crate::CollectiveError::Mismatch`] instead of hanging.
//!
//! | variable | names | automatic choice |
//! |---|---|---|
//! | `PIRUN_BCAST_ALGORITHM` | `binomial`, `scatter_allgather`, `pipeline` | `binomial` below 12 KiB or 8 ranks, else `scatter_allgather` (binomial scatter + allgather) |
//! | `PIRUN_REDUCE_ALGORITHM` | `binomial`, `rabenseifner` | `binomial` up to 2 KiB or fewer elements than the power of two below the size, else `rabenseifner` (reduce-scatter by recursive halving + gather) |
//! | `PIRUN_ALLREDUCE_ALGORITHM` | `recursive_doubling`, `rabenseifner`, `ring`, `reduce_bcast` | `recursive_doubling` up to 2 KiB or few elements; `ring` from 1 MiB on non-powers of two (commutative ops); else `rabenseifner` |
//! | `PIRUN_ALLGATHER_ALGORITHM` (also allgatherv) | `recursive_doubling`, `bruck`, `ring` | below 80 KiB in total: `recursive_doubling` on powers of two, else `bruck`; below 512 KiB: `recursive_doubling` on powers of two; else `ring` |
//! | `PIRUN_ALLTOALL_ALGORITHM` (also alltoallv) | `pairwise`, `bruck` | `bruck` for blocks up to 256 bytes on 8 ranks or more (alltoall only), else `pairwise` |
//! | `PIRUN_REDUCE_SCATTER_ALGORITHM` | `ring`, `reduce_then_scatter` | `ring` for commutative ops from 2 KiB, else `reduce_then_scatter` |
//! | `PIRUN_SEGMENT_SIZE` | bytes, `k`/`m` suffixes allowed | 32 KiB: the segment size of the `pipeline` broadcast |
//!
//! Where a forced algorithm cannot serve a call, a correct one is used instead:
//! `recursive_doubling` allgather on a non-power of two runs `bruck`; `ring` allreduce and
//! `ring` reduce-scatter with a non-commutative operation run `rabenseifner` and
//! `reduce_then_scatter` (their block order is not rank order); `bruck` alltoallv runs
//! `pairwise`.

use std::sync::OnceLock;

use crate::tree::Fold;
use crate::wire::OpCode;

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
        Barrier => "dissemination",
        BcastValue | Gather | Gatherv | GatherValue | Scatter => "binomial",
        Scatterv => "linear",
        Scan | Exscan => "recursive_doubling",
    }
}

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

/// The broadcast algorithm for `bytes` bytes on `size` ranks.
pub fn bcast(bytes: usize, size: usize) -> BcastAlgorithm {
    BcastAlgorithm::from_env().unwrap_or(if bytes < 12 * 1024 || size < 8 {
        BcastAlgorithm::Binomial
    } else {
        BcastAlgorithm::ScatterAllgather
    })
}

fn few(count: usize, bytes: usize, size: usize) -> bool {
    bytes <= 2048 || count < Fold::new(size).pof2
}

/// The reduce algorithm for `count` elements of `bytes` bytes in all on `size` ranks.
pub fn reduce(count: usize, bytes: usize, size: usize) -> ReduceAlgorithm {
    ReduceAlgorithm::from_env().unwrap_or(if few(count, bytes, size) {
        ReduceAlgorithm::Binomial
    } else {
        ReduceAlgorithm::Rabenseifner
    })
}

/// The allreduce algorithm for `count` elements of `bytes` bytes in all on `size` ranks.
pub fn allreduce(count: usize, bytes: usize, size: usize, commutative: bool) -> AllreduceAlgorithm {
    use AllreduceAlgorithm::*;
    let auto = if few(count, bytes, size) {
        RecursiveDoubling
    } else if commutative && bytes >= 1 << 20 && !size.is_power_of_two() {
        Ring
    } else {
        Rabenseifner
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

/// The allgather algorithm for `total` bytes gathered in all on `size` ranks.
pub fn allgather(total: usize, size: usize) -> AllgatherAlgorithm {
    usable_allgather(
        AllgatherAlgorithm::from_env().unwrap_or(allgather_auto(total, size)),
        size,
    )
}

/// The automatic allgather choice, ignoring the environment (the allgather phase of the
/// scatter-allgather broadcast uses it, so only `PIRUN_BCAST_ALGORITHM` steers a bcast).
pub(crate) fn allgather_auto(total: usize, size: usize) -> AllgatherAlgorithm {
    use AllgatherAlgorithm::*;
    let pow2 = size.is_power_of_two();
    if total < 80 * 1024 {
        if pow2 {
            RecursiveDoubling
        } else {
            Bruck
        }
    } else if total < 512 * 1024 && pow2 {
        RecursiveDoubling
    } else {
        Ring
    }
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

/// The alltoall algorithm for blocks of `block` bytes on `size` ranks.
pub fn alltoall(block: usize, size: usize) -> AlltoallAlgorithm {
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
    fn mpich_cutovers() {
        if std::env::vars().any(|(k, _)| k.starts_with("PIRUN_")) {
            return; // an override is in force; the automatic choice is not observable
        }
        assert_eq!(bcast(100, 16), BcastAlgorithm::Binomial);
        assert_eq!(bcast(1 << 20, 16), BcastAlgorithm::ScatterAllgather);
        assert_eq!(bcast(1 << 20, 4), BcastAlgorithm::Binomial);
        assert_eq!(
            allreduce(2, 16, 6, true),
            AllreduceAlgorithm::RecursiveDoubling
        );
        assert_eq!(
            allreduce(1 << 16, 1 << 19, 6, true),
            AllreduceAlgorithm::Rabenseifner
        );
        assert_eq!(
            allreduce(1 << 18, 1 << 21, 6, true),
            AllreduceAlgorithm::Ring
        );
        assert_eq!(
            allreduce(1 << 18, 1 << 21, 6, false),
            AllreduceAlgorithm::Rabenseifner
        );
        assert_eq!(allgather(1000, 8), AllgatherAlgorithm::RecursiveDoubling);
        assert_eq!(allgather(1000, 7), AllgatherAlgorithm::Bruck);
        assert_eq!(allgather(1 << 20, 8), AllgatherAlgorithm::Ring);
        assert_eq!(alltoall(8, 16), AlltoallAlgorithm::Bruck);
        assert_eq!(alltoall(8, 4), AlltoallAlgorithm::Pairwise);
    }
}
