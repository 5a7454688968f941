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
    /// A rendezvous payload to a rank on another host goes in data frames of at most this
    /// many bytes (0: one frame), so that a clear-to-send this rank owes its peer waits for
    /// one piece of its own outgoing payload, not for all of it (`PIRUN_DATA_PIECE`).
    ///
    /// With [`Config::unsent_limit`] it decides how fast two ranks on different hosts
    /// exchange large messages. Measured on `scripts/testbed` (100 Mbit/s links; 4 MiB
    /// per rank, medians of 2–3 alternated runs, ms; the link's bound is 352 per 4 MiB):
    /// alltoall on 2 ranks 699 with neither, 358–570 with pieces alone, 358–361 with the
    /// limit alone, 399–403 with both; on 4 ranks (bound 1057) 2137 / 1700–1800 /
    /// 2113–2133 / 1136–1180; allreduce on 2 ranks 697 with either alone, 407 with both
    /// and 64 KiB pieces, 439 with 256 KiB pieces, 444–525 with 1 MiB pieces.
    pub data_piece: usize,
    /// The same for a rank on this host: 0 (one frame, read straight into the receiver's
    /// buffer) unless `PIRUN_DATA_PIECE` is set.
    pub data_piece_local: usize,
    /// Unsent bytes the kernel may hold for a connection to another host
    /// (`TCP_NOTSENT_LOWAT`, `PIRUN_UNSENT_LIMIT`; 0: no limit): the kernel's own send
    /// buffer grows to megabytes, and a clear-to-send written behind them waits as long.
    pub unsent_limit: usize,
    /// TCP congestion control for peer connections (`None`: the system default).
    pub congestion: Option<String>,
    /// Dial ranks on this host over the local channel (a Unix socket; `stream.rs`) before
    /// TCP ([`local_channel_on`]).
    pub local_channel: bool,
}

impl Config {
    pub fn from_env() -> Config {
        let num = |name: &str, default: u64| env_u64(name).unwrap_or(default);
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
            data_piece: num("PIRUN_DATA_PIECE", 64 << 10) as usize,
            data_piece_local: num("PIRUN_DATA_PIECE", 0) as usize,
            unsent_limit: num("PIRUN_UNSENT_LIMIT", 128 << 10) as usize,
            congestion: match std::env::var("PIRUN_TCP_CONGESTION") {
                Ok(name) if name.trim().is_empty() => None,
                Ok(name) => Some(name.trim().to_string()),
                Err(_) => Some("reno".to_string()),
            },
            local_channel: local_channel_on(),
        }
    }
}

/// Whether ranks on one host use the local channel: `PIRUN_LOCAL_CHANNEL` is `unix` (the
/// default) or `tcp`. With `tcp` a rank neither listens on it nor dials it.
pub(crate) fn local_channel_on() -> bool {
    !std::env::var("PIRUN_LOCAL_CHANNEL").is_ok_and(|v| v.trim().eq_ignore_ascii_case("tcp"))
}

/// A whole number from environment variable `name`, if it is set and one.
pub(crate) fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}
