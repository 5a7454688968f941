//! Mapping ranks onto the allocation: which host each rank runs on, and its local rank
//! there.
//!
//! Ranks first fill the hosts' slots: by slot (each host's slots in order, host after
//! host) or by node (round-robin, one rank per host with a free slot per round).
//! `--npernode K` sets every host's share to exactly K instead of its slot count. Ranks
//! beyond the slots need `--oversubscribe` and then go round-robin over the hosts, never
//! past a host's `max_slots`, which no flag lifts.

use std::fmt;

use super::{Allocation, Placement};
use crate::error::LaunchError;

/// How ranks are spread over the hosts (`--map-by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum MapBy {
    /// Fill each host's slots before moving to the next host (Open MPI's default).
    #[default]
    Slot,
    /// Round-robin: one rank per host in turn, skipping hosts whose slots are full.
    Node,
}

impl fmt::Display for MapBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MapBy::Slot => "slot",
            MapBy::Node => "node",
        })
    }
}

impl Allocation {
    /// Maps the job's ranks onto the hosts: `ranks` ranks (`None`: one per slot, or
    /// `npernode` × hosts), spread `by` slot or node, `npernode` ranks on each host if
    /// given (hosts in order; later hosts may get fewer or none when `ranks` is smaller).
    ///
    /// More ranks than slots (or an `npernode` above a host's slots) is refused unless
    /// `oversubscribe`; a host's `max_slots` is never exceeded. The result is in rank
    /// order.
    pub fn map(
        &self,
        ranks: Option<u32>,
        by: MapBy,
        npernode: Option<u32>,
        oversubscribe: bool,
    ) -> Result<Vec<Placement>, LaunchError> {
        let hosts = &self.hosts;
        if hosts.is_empty() {
            return Err(LaunchError::NoHosts);
        }
        if npernode == Some(0) {
            return Err(LaunchError::NpernodeZero);
        }
        let share: Vec<usize> = match npernode {
            Some(k) => vec![k as usize; hosts.len()],
            None => hosts.iter().map(|h| h.cores).collect(),
        };
        let shares: usize = share.iter().fold(0, |a, &b| a.saturating_add(b));
        let n = match ranks {
            Some(0) => return Err(LaunchError::NoRanks),
            Some(n) => n,
            None => u32::try_from(shares).unwrap_or(u32::MAX),
        };
        let wanted = n as usize;
        if wanted == 0 {
            return Err(LaunchError::NoRanks);
        }
        if let Some(k) = npernode {
            if wanted > shares {
                return Err(LaunchError::NpernodeTooFew {
                    ranks: n,
                    npernode: k,
                    hosts: hosts.len(),
                });
            }
        } else if wanted > shares && !oversubscribe && !self.above_hard_limit(wanted) {
            return Err(match hosts.as_slice() {
                [only] => LaunchError::Oversubscribed {
                    ranks: n,
                    cores: only.cores,
                    host: only.name.clone(),
                },
                _ => LaunchError::TooFewSlots {
                    ranks: n,
                    slots: shares,
                    hosts: hosts.len(),
                },
            });
        }

        let mut count = vec![0usize; hosts.len()];
        let mut order = Vec::with_capacity(wanted.min(1 << 16));
        match by {
            MapBy::Slot => {
                for (h, &cap) in share.iter().enumerate() {
                    let take = cap.min(wanted - order.len());
                    order.extend(std::iter::repeat_n(h, take));
                    count[h] += take;
                }
            }
            MapBy::Node => round_robin(&mut order, &mut count, wanted, |h| Some(share[h])),
        }
        // Beyond the shares (only without --npernode): round-robin up to max_slots.
        round_robin(&mut order, &mut count, wanted, |h| hosts[h].max_slots);
        if order.len() < wanted {
            // Every host is at its max_slots; the next round would start with the first.
            return Err(self.above_max(n, 0, count[0] + 1));
        }
        for (h, host) in hosts.iter().enumerate() {
            if host.max_slots.is_some_and(|m| count[h] > m) {
                return Err(self.above_max(n, h, count[h]));
            }
        }
        if let (Some(k), false) = (npernode, oversubscribe) {
            if let Some(h) = (0..hosts.len()).find(|&h| count[h] > hosts[h].cores) {
                return Err(LaunchError::NpernodeOversubscribed {
                    npernode: k,
                    ranks: count[h],
                    host: hosts[h].name.clone(),
                    slots: hosts[h].cores,
                });
            }
        }

        let mut local = vec![0u32; hosts.len()];
        Ok(order
            .into_iter()
            .zip(0..n)
            .map(|(host, rank)| {
                let local_rank = local[host];
                local[host] += 1;
                Placement {
                    rank,
                    host,
                    local_rank,
                }
            })
            .collect())
    }

    /// Whether `ranks` exceed what the hosts' `max_slots` allow together (only when every
    /// host has one): then the error to report is about `max_slots`, not
    /// `--oversubscribe`.
    fn above_hard_limit(&self, ranks: usize) -> bool {
        self.hosts
            .iter()
            .try_fold(0usize, |sum, h| h.max_slots.map(|m| sum.saturating_add(m)))
            .is_some_and(|limit| ranks > limit)
    }

    fn above_max(&self, ranks: u32, h: usize, wanted: usize) -> LaunchError {
        let host = &self.hosts[h];
        LaunchError::AboveMaxSlots {
            ranks,
            host: host.name.clone(),
            wanted,
            max_slots: host.max_slots.unwrap_or(0),
        }
    }
}

/// Appends hosts to `order` round-robin until it holds `wanted` entries: each round gives
/// one rank to every host (in order) whose `count` is below its `cap` (`None`: no cap).
/// Work is proportional to the ranks placed, however many hosts are full.
fn round_robin(
    order: &mut Vec<usize>,
    count: &mut [usize],
    wanted: usize,
    cap: impl Fn(usize) -> Option<usize>,
) {
    let has_room = |h: usize, count: &[usize]| cap(h).is_none_or(|c| count[h] < c);
    let mut active: Vec<usize> = (0..count.len()).filter(|&h| has_room(h, count)).collect();
    while order.len() < wanted && !active.is_empty() {
        for &h in &active {
            if order.len() == wanted {
                return;
            }
            order.push(h);
            count[h] += 1;
        }
        active.retain(|&h| has_room(h, count));
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::alloc::{AllocSource, HostSlots};

    /// Hosts pi0, pi1, … with the given slots and max_slots.
    fn alloc(hosts: &[(usize, Option<usize>)]) -> Allocation {
        Allocation {
            hosts: hosts
                .iter()
                .enumerate()
                .map(|(i, &(cores, max_slots))| HostSlots {
                    name: format!("pi{i}"),
                    cores,
                    bind_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    max_slots,
                    local: false,
                })
                .collect(),
            source: AllocSource::CommandLine,
        }
    }

    fn slots(cores: &[usize]) -> Allocation {
        alloc(&cores.iter().map(|&c| (c, None)).collect::<Vec<_>>())
    }

    /// (host, local rank) of each rank, checking that ranks are numbered in order.
    fn placed(r: Result<Vec<Placement>, LaunchError>) -> Vec<(usize, u32)> {
        let m = r.unwrap_or_else(|e| panic!("{e}"));
        for (i, p) in m.iter().enumerate() {
            assert_eq!(p.rank as usize, i);
        }
        m.iter().map(|p| (p.host, p.local_rank)).collect()
    }

    fn err(r: Result<Vec<Placement>, LaunchError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn by_slot_fills_hosts_in_order() {
        let a = slots(&[2, 1]);
        assert_eq!(
            placed(a.map(None, MapBy::Slot, None, false)),
            [(0, 0), (0, 1), (1, 0)]
        );
        assert_eq!(
            placed(a.map(Some(2), MapBy::Slot, None, false)),
            [(0, 0), (0, 1)]
        );
        assert_eq!(
            placed(a.map(Some(5), MapBy::Slot, None, true)),
            [(0, 0), (0, 1), (1, 0), (0, 2), (1, 1)]
        );
        assert!(matches!(
            a.map(Some(0), MapBy::Slot, None, true),
            Err(LaunchError::NoRanks)
        ));
    }

    #[test]
    fn by_node_goes_round_robin_skipping_full_hosts() {
        let a = slots(&[3, 1, 2]);
        assert_eq!(
            placed(a.map(None, MapBy::Node, None, false)),
            [(0, 0), (1, 0), (2, 0), (0, 1), (2, 1), (0, 2)]
        );
        assert_eq!(
            placed(a.map(Some(8), MapBy::Node, None, true)),
            [
                (0, 0),
                (1, 0),
                (2, 0),
                (0, 1),
                (2, 1),
                (0, 2),
                (0, 3),
                (1, 1)
            ]
        );
    }

    #[test]
    fn oversubscription_needs_the_flag() {
        let e = err(slots(&[2, 2]).map(Some(5), MapBy::Slot, None, false));
        assert_eq!(
            e,
            "5 ranks requested but the allocation has only 4 slots on 2 hosts; pass \
             --oversubscribe to run more ranks than slots, or use more hosts"
        );
        let e = err(slots(&[2]).map(Some(3), MapBy::Node, None, false));
        assert!(e.contains("host pi0 has only 2 cores") && e.contains("--oversubscribe"));
    }

    #[test]
    fn max_slots_is_never_exceeded() {
        // pi0 may take 3, pi1 has no limit: the extra ranks go to pi1 once pi0 is full.
        let a = alloc(&[(2, Some(3)), (1, None)]);
        assert_eq!(
            placed(a.map(Some(6), MapBy::Slot, None, true)),
            [(0, 0), (0, 1), (1, 0), (0, 2), (1, 1), (1, 2)]
        );
        let a = alloc(&[(2, Some(3)), (1, Some(2))]);
        assert_eq!(placed(a.map(Some(5), MapBy::Node, None, true)).len(), 5);
        let e = err(a.map(Some(6), MapBy::Slot, None, true));
        assert_eq!(
            e,
            "6 ranks do not fit: host pi0 would get 4 of them but its max_slots is 3, a limit \
             --oversubscribe does not lift; use fewer ranks, or raise max_slots for pi0 in the \
             hostfile"
        );
        // Without the flag the max_slots message comes first: the flag would not help.
        let e = err(a.map(Some(6), MapBy::Slot, None, false));
        assert!(e.contains("max_slots is 3"), "{e}");
        let e = err(alloc(&[(2, Some(2))]).map(Some(3), MapBy::Slot, None, true));
        assert!(
            e.contains("host pi0 would get 3 of them but its max_slots is 2"),
            "{e}"
        );
    }

    #[test]
    fn npernode_puts_exactly_k_on_each_host() {
        let a = slots(&[4, 4, 4]);
        assert_eq!(
            placed(a.map(None, MapBy::Slot, Some(2), false)),
            [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
        );
        assert_eq!(
            placed(a.map(None, MapBy::Node, Some(2), false)),
            [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
        );
        assert_eq!(
            placed(a.map(Some(3), MapBy::Slot, Some(2), false)),
            [(0, 0), (0, 1), (1, 0)]
        );
        assert_eq!(
            err(a.map(Some(7), MapBy::Slot, Some(2), true)),
            "-n 7 with --npernode 2 needs 4 hosts but the allocation has 3; use fewer \
             ranks, a larger --npernode, or more hosts"
        );
        assert_eq!(
            err(a.map(None, MapBy::Slot, Some(0), false)),
            "--npernode must be at least 1"
        );
    }

    #[test]
    fn npernode_above_a_hosts_slots() {
        let a = alloc(&[(4, None), (2, Some(3))]);
        assert_eq!(
            err(a.map(None, MapBy::Slot, Some(3), false)),
            "--npernode 3 puts 3 ranks on host pi1, which has 2 slots; pass --oversubscribe \
             to run more ranks than slots there, or lower --npernode"
        );
        assert_eq!(placed(a.map(None, MapBy::Slot, Some(3), true)).len(), 6);
        let e = err(a.map(None, MapBy::Slot, Some(4), true));
        assert!(
            e.contains("host pi1 would get 4 of them but its max_slots is 3"),
            "{e}"
        );
    }

    #[test]
    fn no_hosts_is_an_error_not_a_panic() {
        let a = slots(&[]);
        assert!(matches!(
            a.map(None, MapBy::Slot, None, true),
            Err(LaunchError::NoHosts)
        ));
        let a = slots(&[0, 0]);
        assert!(a.map(None, MapBy::Node, None, true).is_err());
        assert_eq!(placed(a.map(Some(3), MapBy::Node, None, true)).len(), 3);
    }

    #[test]
    fn round_robin_is_linear_in_the_ranks() {
        // One big host among many one-slot hosts: map-by node must not rescan full hosts.
        let mut cores = vec![1usize; 50_000];
        cores[0] = 50_000;
        let a = slots(&cores);
        let m = placed(a.map(None, MapBy::Node, None, false));
        assert_eq!(m.len(), 99_999);
        assert_eq!(m[50_000], (0, 1));
        assert_eq!(m[99_998], (0, 49_999));
    }

    #[test]
    fn map_by_parses_and_prints() {
        use clap::ValueEnum;
        assert_eq!(MapBy::from_str("node", true), Ok(MapBy::Node));
        assert_eq!(MapBy::from_str("slot", true), Ok(MapBy::Slot));
        assert!(MapBy::from_str("socket", true).is_err());
        assert_eq!(MapBy::default().to_string(), "slot");
    }
}
