//! Which address ranks bind and advertise in a multi-host job.
//!
//! Ranks must advertise an address their peers on other hosts can reach: never a
//! loopback address (Debian and Raspberry Pi OS map the host name to `127.0.1.1`, so
//! "resolve my own name" is a trap), and not a container bridge (`docker0`, `virbr0`) by
//! accident. The reliable source is the ssh connection itself: the address the launcher
//! reached a host by (`SSH_CONNECTION` server address, seen by the proxy) is an address
//! of that host on the network the launcher uses, and the address the launcher came from
//! (the client address, reported by a proxy) is the launcher host's. `--iface NAME|CIDR`
//! overrides both on every host. This module lists the host's addresses (`getifaddrs`)
//! and applies `--iface`.

use std::ffi::CStr;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One address of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    /// Interface name (`eth0`).
    pub name: String,
    /// The address.
    pub addr: IpAddr,
    /// Whether the interface is up.
    pub up: bool,
}

/// Every IPv4 and IPv6 address of this host's interfaces.
pub fn addresses() -> io::Result<Vec<IfAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_addr points at a sockaddr whose family says its real type.
        let addr = unsafe {
            match (*ifa.ifa_addr).sa_family as i32 {
                libc::AF_INET => {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
                }
                libc::AF_INET6 => {
                    let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
                }
                _ => continue,
            }
        };
        // SAFETY: a NUL-terminated name owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        out.push(IfAddr {
            name,
            addr,
            up: ifa.ifa_flags & libc::IFF_UP as u32 != 0,
        });
    }
    // SAFETY: freeing the list getifaddrs allocated, once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// Interfaces that are virtual bridges of containers or VMs: never chosen by accident.
fn is_virtual_bridge(name: &str) -> bool {
    [
        "docker", "virbr", "veth", "br-", "lxcbr", "lxdbr", "podman", "cni", "flannel",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// Whether `addr` can reach other hosts at all (not loopback, unspecified or link-local
/// IPv6, which would need a scope).
pub fn is_routable(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => !a.is_loopback() && !a.is_unspecified() && !a.is_broadcast(),
        IpAddr::V6(a) => {
            !a.is_loopback() && !a.is_unspecified() && (a.segments()[0] & 0xffc0) != 0xfe80
        }
    }
}

/// Whether `addr` is one of this host's addresses.
pub fn is_local(addr: IpAddr, addrs: &[IfAddr]) -> bool {
    addrs.iter().any(|a| a.addr == addr)
}

/// The address `--iface SPEC` selects among `addrs`: SPEC is an interface name (its
/// first IPv4 address, else its first routable IPv6 one), a network in CIDR notation
/// (the host's address inside it), or a plain address of this host.
pub fn select(spec: &str, addrs: &[IfAddr]) -> Result<IpAddr, String> {
    let shown = || {
        let mut names: Vec<String> = addrs
            .iter()
            .filter(|a| a.up)
            .map(|a| format!("{} {}", a.name, a.addr))
            .collect();
        names.dedup();
        names.join(", ")
    };
    if let Some((net, prefix)) = spec.split_once('/') {
        let net: IpAddr = net
            .parse()
            .map_err(|_| format!("`{spec}` is not a network like 10.77.0.0/24"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|&p| p <= if net.is_ipv4() { 32 } else { 128 })
            .ok_or_else(|| format!("`{spec}`: bad prefix length"))?;
        return addrs
            .iter()
            .filter(|a| a.up && in_network(a.addr, net, prefix))
            .map(|a| a.addr)
            .next()
            .ok_or_else(|| format!("no address of this host is in {spec} (it has: {})", shown()));
    }
    if let Ok(addr) = spec.parse::<IpAddr>() {
        return if is_local(addr, addrs) {
            Ok(addr)
        } else {
            Err(format!(
                "{addr} is not an address of this host (it has: {})",
                shown()
            ))
        };
    }
    let mine: Vec<&IfAddr> = addrs.iter().filter(|a| a.name == spec).collect();
    if mine.is_empty() {
        return Err(format!(
            "no interface named `{spec}` (this host has: {})",
            shown()
        ));
    }
    mine.iter()
        .find(|a| a.addr.is_ipv4())
        .or_else(|| mine.iter().find(|a| is_routable(a.addr)))
        .map(|a| a.addr)
        .ok_or_else(|| format!("interface `{spec}` has no usable address"))
}

/// A last resort when nothing tells which address to use: the first routable IPv4
/// address of an interface that is up and not a container or VM bridge.
pub fn fallback(addrs: &[IfAddr]) -> Option<IpAddr> {
    addrs
        .iter()
        .filter(|a| a.up && !is_virtual_bridge(&a.name) && is_routable(a.addr))
        .find(|a| a.addr.is_ipv4())
        .map(|a| a.addr)
}

fn in_network(addr: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<IfAddr> {
        let a = |name: &str, addr: &str| IfAddr {
            name: name.into(),
            addr: addr.parse().unwrap(),
            up: true,
        };
        vec![
            a("lo", "127.0.0.1"),
            a("docker0", "172.17.0.1"),
            a("eth0", "fe80::1"),
            a("eth0", "10.77.0.3"),
            a("wlan0", "192.168.1.20"),
        ]
    }

    #[test]
    fn selects_by_name_network_or_address() {
        let addrs = sample();
        assert_eq!(
            select("eth0", &addrs).unwrap(),
            "10.77.0.3".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            select("192.168.1.0/24", &addrs).unwrap(),
            "192.168.1.20".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            select("10.77.0.3", &addrs).unwrap(),
            "10.77.0.3".parse::<IpAddr>().unwrap()
        );
        let err = select("eth9", &addrs).unwrap_err();
        assert!(
            err.contains("eth9") && err.contains("eth0 10.77.0.3"),
            "{err}"
        );
        assert!(select("10.0.0.0/8x", &addrs).is_err());
        assert!(select("10.1.0.0/16", &addrs).is_err());
    }

    #[test]
    fn fallback_skips_loopback_and_container_bridges() {
        assert_eq!(fallback(&sample()), Some("10.77.0.3".parse().unwrap()));
        assert!(!is_routable("127.0.1.1".parse().unwrap()));
        assert!(!is_routable("fe80::2".parse().unwrap()));
        assert!(is_routable("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn this_host_has_a_loopback_address() {
        let addrs = addresses().unwrap();
        assert!(is_local("127.0.0.1".parse().unwrap(), &addrs), "{addrs:?}");
    }
}
