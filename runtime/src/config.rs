//! Tunables read once from the environment at start-up.

use crate::frame::Limits;

/// Tunables read from the environment once at start-up.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Messages up to this many bytes go eagerly; larger ones by rendezvous.
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
            eager_limit: num("PIRUN_EAGER_LIMIT", 64 << 10).min(limits.eager_max) as usize,
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
