//! OSU-style ping-pong between rank 0 and one partner: the one-way time of a message of
//! each size, for `pirun bench` and for the Hockney fit of [`crate::model`].
//!
//! The partner is the first rank on another host than rank 0 when the job spans several
//! hosts (the link is what a cluster benchmark is about), else rank 1 ([`partner`]).
//! Iterations are as in [`crate::coll`]: `warmup` untimed round trips, then timed
//! batches of round trips; a batch's figure is its time per round trip halved, the
//! larger of the two ends' (rank 0 sends then receives, the partner receives then sends
//! back what it got). After each batch the two ends swap `[batch time, elapsed]` (outside
//! the timed region) so both stop after the same batch when the time share is used up.
//! Ranks other than the two wait in the closing separator, which also makes every rank
//! agree on the outcome and the time it took.
//!
//! The first warm-up round trip runs with rank 0's receive buffer poisoned; the echo must
//! equal the byte pattern rank 0 sent, or the size gives no figure.

use std::time::Instant;

use pirun::{Communicator, Tag};

use crate::coll::{separator, Config};
use crate::timing::timed_loop;

/// Tag of the ping-pong messages.
const PING_TAG: Tag = 0x5ea;
/// Tag of the two ends' per-batch exchange.
const SYNC_TAG: Tag = 0x5eb;

/// The one-way times of one size: median, minimum and maximum over the batches, µs.
#[derive(Clone, Debug, PartialEq)]
pub struct OneWay {
    /// Timed round trips run.
    pub iters: usize,
    pub median_us: f64,
    pub min_us: f64,
    pub max_us: f64,
}

/// The rank rank 0 ping-pongs with: the lowest rank on another host than rank 0, or
/// rank 1 if every rank shares rank 0's host (`None` for a single rank).
pub fn partner(world: &Communicator) -> Option<usize> {
    let n = world.size();
    if n < 2 {
        return None;
    }
    let host0 = world.host_of(0);
    (1..n).find(|&r| world.host_of(r) != host0).or(Some(1))
}

/// Byte `k` of the ping message.
fn pat(k: usize) -> u8 {
    (k.wrapping_mul(131) >> 3) as u8 ^ 0x5a
}

/// One round trip between rank 0 (`send` out, echo into `recv`) and `peer`.
fn round_trip(
    world: &Communicator,
    peer: usize,
    send: &[u8],
    recv: &mut [u8],
) -> pirun::Result<()> {
    if world.rank() == 0 {
        world.send(peer, PING_TAG, send)?;
        world.recv_into(peer, PING_TAG, recv)?;
    } else {
        world.recv_into(peer, PING_TAG, recv)?;
        world.send(peer, PING_TAG, recv)?;
    }
    Ok(())
}

/// Element-wise maximum of `v` between the two ends.
fn swap_max<const N: usize>(
    world: &Communicator,
    peer: usize,
    mut v: [f64; N],
) -> pirun::Result<[f64; N]> {
    let mut got = [0.0f64; N];
    world.sendrecv_into(peer, SYNC_TAG, &v, peer, SYNC_TAG, &mut got)?;
    for (x, y) in v.iter_mut().zip(got) {
        *x = x.max(y);
    }
    Ok(v)
}

/// Measures the ping-pong between rank 0 and `partner` at `size` bytes within about `slot`
/// seconds (iteration counts from `cfg`, as for the collectives). Collective: every rank
/// calls it with the same arguments. Returns the figures (or why there are none: the
/// same on every rank) and the seconds it took, the same on every rank.
pub fn measure_within(
    world: &Communicator,
    cfg: &Config,
    partner: usize,
    size: usize,
    slot: f64,
) -> pirun::Result<(Result<OneWay, String>, f64)> {
    let rank = world.rank();
    let peer = match rank {
        0 => Some(partner),
        r if r == partner => Some(0),
        _ => None,
    };
    separator(world, [0.0; 2])?;
    let start = Instant::now();
    let mut result = None;
    let mut bad = 0.0;
    if let Some(peer) = peer {
        let send: Vec<u8> = (0..size).map(pat).collect();
        let mut recv = vec![0xEEu8; size]; // poisoned for the check
                                           // The first warm-up round trip is the check.
        let t = Instant::now();
        round_trip(world, peer, &send, &mut recv)?;
        if rank == 0 && recv != send {
            bad = 1.0;
        }
        let [fastest, spent] = swap_max(
            world,
            peer,
            [t.elapsed().as_secs_f64(), start.elapsed().as_secs_f64()],
        )?;
        let t = timed_loop(
            &cfg.plan(size, slot, 2.0), // a round trip, reported one way
            start,
            fastest,
            spent,
            || round_trip(world, peer, &send, &mut recv),
            |v| swap_max(world, peer, v),
        )?;
        result = Some(OneWay {
            iters: t.iters,
            median_us: t.median_us,
            min_us: t.min_us,
            max_us: t.max_us,
        });
    }
    let [bad, spent] = separator(world, [bad, start.elapsed().as_secs_f64()])?;
    let outcome = if bad != 0.0 {
        Err(format!(
            "rank {partner} did not echo the message rank 0 sent"
        ))
    } else {
        // Ranks outside the pair have no figures; only rank 0's are ever reported.
        Ok(result.unwrap_or(OneWay {
            iters: 0,
            median_us: 0.0,
            min_us: 0.0,
            max_us: 0.0,
        }))
    };
    Ok((outcome, spent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_is_not_constant() {
        let p: Vec<u8> = (0..64).map(pat).collect();
        assert!(p.windows(2).any(|w| w[0] != w[1]));
    }
}
