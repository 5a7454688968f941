//! Rate-limited warnings on stderr, so a flood of garbage connections cannot flood the
//! job's output.

use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(10);
const PER_WINDOW: u32 = 5;

/// Prints at most a few warnings per window and counts the rest.
pub(crate) struct RateLimited {
    rank: u32,
    window_start: Option<Instant>,
    printed: u32,
    suppressed: u32,
}

impl RateLimited {
    pub fn new(rank: u32) -> RateLimited {
        RateLimited {
            rank,
            window_start: None,
            printed: 0,
            suppressed: 0,
        }
    }

    /// Logs `msg` unless too many warnings were printed recently.
    pub fn warn(&mut self, msg: impl std::fmt::Display) {
        let now = Instant::now();
        if self
            .window_start
            .is_none_or(|t| now.duration_since(t) > WINDOW)
        {
            if self.suppressed > 0 {
                eprintln!(
                    "pirun: rank {}: {} similar warnings suppressed",
                    self.rank, self.suppressed
                );
            }
            self.window_start = Some(now);
            self.printed = 0;
            self.suppressed = 0;
        }
        if self.printed < PER_WINDOW {
            self.printed += 1;
            eprintln!("pirun: rank {}: {msg}", self.rank);
        } else {
            self.suppressed += 1;
        }
    }

    /// Warnings dropped in the current window.
    #[cfg(test)]
    pub fn suppressed(&self) -> u32 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn floods_are_cut_short() {
        let mut l = super::RateLimited::new(0);
        for i in 0..100 {
            l.warn(format!("garbage {i}"));
        }
        assert_eq!(l.suppressed(), 95);
    }
}
