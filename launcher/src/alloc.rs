//! Where the ranks run: the allocation (hosts and their slots) and the mapping of ranks
//! onto it (by slot: fill each host's cores in order).
//!
//! Today the allocation is always this host with one slot per core. Hostfiles and batch
//! systems (issue 4) only have to produce more [`HostSlots`]; the mapping and everything
//! downstream already work per host.

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use crate::error::LaunchError;

/// One host of the allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSlots {
    /// Host name, as ranks and messages call it.
    pub name: String,
    /// Cores (slots) on the host.
    pub cores: usize,
    /// Address ranks on this host bind and advertise.
    pub bind_addr: IpAddr,
}

/// The hosts a job may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The hosts, in mapping order.
    pub hosts: Vec<HostSlots>,
}

/// Where one rank runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The rank.
    pub rank: u32,
    /// Index into [`Allocation::hosts`].
    pub host: usize,
    /// Index among the ranks of the same host.
    pub local_rank: u32,
}

impl Allocation {
    /// This host alone: its name, one slot per available core, loopback addresses.
    pub fn local() -> io::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Allocation {
            hosts: vec![HostSlots {
                name: hostname()?,
                cores,
                bind_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            }],
        })
    }

    /// Total slots: the number of ranks when `-n` is not given.
    pub fn slots(&self) -> usize {
        self.hosts.iter().map(|h| h.cores).sum()
    }

    /// Maps `ranks` ranks by slot. More ranks than slots is refused unless
    /// `oversubscribe`, in which case the extra ranks go round-robin over the hosts.
    pub fn map(&self, ranks: u32, oversubscribe: bool) -> Result<Vec<Placement>, LaunchError> {
        if ranks == 0 {
            return Err(LaunchError::NoRanks);
        }
        let slots = self.slots();
        if ranks as usize > slots && !oversubscribe {
            return Err(LaunchError::Oversubscribed {
                ranks,
                cores: slots,
                host: self
                    .hosts
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            });
        }
        let mut per_host = vec![0u32; self.hosts.len()];
        let mut out = Vec::with_capacity(ranks as usize);
        let mut filling = self
            .hosts
            .iter()
            .enumerate()
            .flat_map(|(i, h)| std::iter::repeat_n(i, h.cores));
        for rank in 0..ranks {
            let host = filling
                .next()
                .unwrap_or_else(|| (rank as usize - slots) % self.hosts.len());
            out.push(Placement {
                rank,
                host,
                local_rank: per_host[host],
            });
            per_host[host] += 1;
        }
        Ok(out)
    }
}

/// This machine's host name.
pub fn hostname() -> io::Result<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..len]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(cores: &[usize]) -> Allocation {
        Allocation {
            hosts: cores
                .iter()
                .enumerate()
                .map(|(i, &cores)| HostSlots {
                    name: format!("pi{i}"),
                    cores,
                    bind_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
                })
                .collect(),
        }
    }

    #[test]
    fn maps_by_slot_and_refuses_oversubscription() {
        let a = alloc(&[2, 1]);
        let m = a.map(3, false).unwrap();
        let hosts: Vec<_> = m.iter().map(|p| (p.host, p.local_rank)).collect();
        assert_eq!(hosts, [(0, 0), (0, 1), (1, 0)]);
        let err = a.map(4, false).unwrap_err().to_string();
        assert!(err.contains("--oversubscribe"), "{err}");
        let m = a.map(5, true).unwrap();
        let hosts: Vec<_> = m.iter().map(|p| (p.host, p.local_rank)).collect();
        assert_eq!(hosts, [(0, 0), (0, 1), (1, 0), (0, 2), (1, 1)]);
        assert!(matches!(a.map(0, true), Err(LaunchError::NoRanks)));
    }

    #[test]
    fn local_allocation_has_this_host() {
        let a = Allocation::local().unwrap();
        assert_eq!(a.hosts.len(), 1);
        assert!(a.slots() >= 1);
        assert!(!a.hosts[0].name.is_empty());
    }
}
