//! Tunables read once from the environment at start-up.

use crate::frame::Limits;

/// Tunables read from the environment once at start-up.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Messages up to this many bytes go eagerly; larger ones by rendezvous.
    ///
    /// The default, 128 KiB, is MPICH's. Measured on loopback (`pingpong`, three
    /// alternated runs, medians): 96 KiB one-way 17.6 µs eager vs 24.6 by rendezvous,
    /// 128 KiB 20.4 vs 26.6; and 64 KiB of collective data plus its 20-byte header,
    /// just over the old 64 KiB limit, made a linear scatter root on 8 ranks wait for
    /// each clear-to-send in turn (329 µs per call vs 167 eager). Larger limits were faster
    /// still for a posted receive (256 KiB: 29 vs 35.7 µs) but let more unexpected data
    /// pile up in a small board's memory.
    pub eager_limit: usize,
    /// Decoder limits.
    pub limits: Limits,
    /// Socket buffer size to ask for (0: leave the kernel's autotuning alone).
    pub sockbuf: usize,
    /// TCP congestion control for peer connections (`None`: the system default).
    pub congestion: Option<String>,
}

impl Config {
    pub fn from_env() -> Config {
        let num = |name: &str, default: u64| -> u64 {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        let limits = Limits {
            eager_max: crate::frame::EAGER_HARD_MAX,
            // Capped at what this host can address: on a 32-bit board a larger length
            // would be truncated by every `as usize`.
            message_max: num("PIRUN_MAX_MESSAGE", 1 << 36).min(usize::MAX as u64),
        };
        Config {
            eager_limit: num("PIRUN_EAGER_LIMIT", 128 << 10).min(limits.eager_max) as usize,
            limits,
            sockbuf: num("PIRUN_SOCKBUF", 0) as usize,
            congestion: match std::env::var("PIRUN_TCP_CONGESTION") {
                Ok(name) if name.trim().is_empty() => None,
                Ok(name) => Some(name.trim().to_string()),
                Err(_) => Some("reno".to_string()),
            },
        }
    }
}
