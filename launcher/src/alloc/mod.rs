//! Where the ranks may run: the allocation (hosts, their slots and limits) and where it
//! came from.
//!
//! This file owns the types ([`Allocation`], [`HostSlots`], [`AllocSource`]), the choice
//! of source ([`Allocation::resolve`]: `--host`, `--hostfile`, a batch system, else this
//! host), the merging of hosts listed more than once, which names mean "this host", and
//! the one parser of slot counts that every source shares. The rest:
//!
//! - `hostfile.rs`: Open MPI and MPICH hostfiles (also PBS node files) and `--host` lists.
//! - `hostlist.rs`: Slurm's compressed hostlists (`pi[01-04,07]`) and count lists
//!   (`2(x3),1`).
//! - `batch.rs`: the Slurm, PBS/TORQUE and LSF/OpenLava allocations, read from the
//!   environment.
//! - `map.rs`: ranks onto slots (`--map-by slot|node`, `--npernode`, oversubscription,
//!   `max_slots`).

mod batch;
mod hostfile;
mod hostlist;
mod map;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use crate::error::LaunchError;

pub use map::MapBy;

/// The most slots one hostfile line, `--host` item or batch-system entry may give a host.
pub const MAX_SLOTS_PER_ENTRY: usize = 1 << 16;

/// The most hosts an allocation may have (also bounds what a Slurm hostlist expands to).
pub const MAX_HOSTS: usize = 1 << 16;

/// One host of the allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSlots {
    /// Host name, as ranks and messages call it (and as `ssh` is given it).
    pub name: String,
    /// Slots on the host: ranks it takes without oversubscription. For this host alone
    /// (no hostfile, no batch system) one per core.
    pub cores: usize,
    /// Address ranks on this host bind and advertise: loopback when the whole job stays
    /// on this host, otherwise `0.0.0.0` (every interface; the launcher tells each rank
    /// which address to advertise).
    pub bind_addr: IpAddr,
    /// The most ranks the host may take even with `--oversubscribe` (`max_slots=` in an
    /// Open MPI hostfile); `None`: no limit.
    pub max_slots: Option<usize>,
    /// Whether the name means the machine `pirun` runs on (`localhost`, a loopback
    /// address or this machine's host name); decided once, when the host was added.
    pub local: bool,
}

impl HostSlots {
    /// Whether this is the machine `pirun` runs on (its ranks are forked, not started
    /// over ssh).
    pub fn is_local(&self) -> bool {
        self.local
    }
}

/// Where one rank runs (made by [`Allocation::map`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The rank.
    pub rank: u32,
    /// Index into [`Allocation::hosts`].
    pub host: usize,
    /// Index among the ranks of the same host (in rank order).
    pub local_rank: u32,
}

/// Where an allocation came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocSource {
    /// `--host pi1:2,pi2:2`.
    CommandLine,
    /// `--hostfile PATH`.
    Hostfile(PathBuf),
    /// Slurm: `SLURM_JOB_NODELIST` and `SLURM_TASKS_PER_NODE`.
    Slurm,
    /// PBS/TORQUE: the node file named by `PBS_NODEFILE`.
    Pbs(PathBuf),
    /// LSF/OpenLava: `LSB_MCPU_HOSTS` (or `LSB_HOSTS`).
    Lsf,
    /// No hosts given and no batch system: this host, one slot per core.
    Local,
}

impl fmt::Display for AllocSource {
    /// A phrase that fits after "using": `the Slurm allocation`, `hostfile hosts`, ….
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocSource::CommandLine => f.write_str("the hosts given with --host"),
            AllocSource::Hostfile(p) => write!(f, "hostfile {}", p.display()),
            AllocSource::Slurm => f.write_str("the Slurm allocation"),
            AllocSource::Pbs(p) => write!(f, "the PBS allocation ({})", p.display()),
            AllocSource::Lsf => f.write_str("the LSF allocation"),
            AllocSource::Local => f.write_str("this host alone"),
        }
    }
}

/// The hosts a job may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The hosts, in mapping order (the order they were first listed in).
    pub hosts: Vec<HostSlots>,
    /// Where the hosts came from.
    pub source: AllocSource,
}

impl fmt::Display for Allocation {
    /// One line for `-v`: `using the Slurm allocation: 4 hosts, 8 slots`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let (hosts, slots) = (self.hosts.len(), self.slots());
        write!(
            f,
            "using {}: {hosts} host{}, {slots} slot{}",
            self.source,
            plural(hosts),
            plural(slots)
        )
    }
}

impl Allocation {
    /// The allocation a job gets: the hosts of `--hostfile` or `--host` (giving both is
    /// an error), else the batch system's (Slurm, then PBS/TORQUE, then LSF, detected
    /// through `env`), else this host with one slot per core.
    ///
    /// `env` looks up an environment variable; pass `&|k| std::env::var(k).ok()`.
    pub fn resolve(
        hostfile: Option<&Path>,
        hosts: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Allocation, LaunchError> {
        let this_host =
            hostname().map_err(|e| LaunchError::system("cannot determine this host's name", e))?;
        Self::resolve_on(&this_host, hostfile, hosts, env)
    }

    /// [`Allocation::resolve`] on a machine called `this_host`.
    fn resolve_on(
        this_host: &str,
        hostfile: Option<&Path>,
        hosts: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Allocation, LaunchError> {
        let mut builder = HostsBuilder::new(this_host);
        let source = match (hostfile, hosts) {
            (Some(_), Some(_)) => return Err(LaunchError::HostAndHostfile),
            (Some(path), None) => {
                hostfile::read_hostfile(path, "hostfile", &mut builder)?;
                AllocSource::Hostfile(path.to_path_buf())
            }
            (None, Some(list)) => {
                hostfile::parse_host_list(list, &mut builder)?;
                AllocSource::CommandLine
            }
            (None, None) => match batch::detect(env, &mut builder)? {
                Some(source) => source,
                None => return Ok(Self::local_on(this_host)),
            },
        };
        Ok(builder.finish(source))
    }

    /// This host alone, called `this_host`.
    fn local_on(this_host: &str) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Allocation {
            hosts: vec![HostSlots {
                name: this_host.to_owned(),
                cores,
                bind_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
                max_slots: None,
                local: true,
            }],
            source: AllocSource::Local,
        }
    }

    /// Total slots: the number of ranks when `-n` is not given.
    pub fn slots(&self) -> usize {
        self.hosts.iter().map(|h| h.cores).sum()
    }
}

/// Collects hosts from any source: validates names, adds up hosts listed more than once
/// (all names of this host count as one), and decides bind addresses at the end.
struct HostsBuilder {
    this_host: String,
    hosts: Vec<HostSlots>,
    index: HashMap<String, usize>,
}

/// The key under which every name of this host is merged.
const LOCAL_KEY: &str = "\0local";

impl HostsBuilder {
    fn new(this_host: &str) -> Self {
        HostsBuilder {
            this_host: this_host.to_owned(),
            hosts: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Adds `slots` slots (and `max_slots`, if every listing of the host gives one) to
    /// host `name`. The error says what is wrong with the name.
    fn add(&mut self, name: &str, slots: usize, max_slots: Option<usize>) -> Result<(), String> {
        check_host_name(name)?;
        let local = is_local_name(name, &self.this_host);
        let key = if local {
            LOCAL_KEY.to_owned()
        } else {
            name.to_ascii_lowercase()
        };
        match self.index.get(&key) {
            Some(&i) => {
                let host = &mut self.hosts[i];
                host.cores = host.cores.saturating_add(slots);
                host.max_slots = match (host.max_slots, max_slots) {
                    (Some(a), Some(b)) => Some(a.saturating_add(b)),
                    _ => None,
                };
            }
            None => {
                if self.hosts.len() >= MAX_HOSTS {
                    return Err(format!(
                        "more than {MAX_HOSTS} hosts; pirun supports at most {MAX_HOSTS}"
                    ));
                }
                self.index.insert(key, self.hosts.len());
                self.hosts.push(HostSlots {
                    name: name.to_owned(),
                    cores: slots,
                    bind_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    max_slots,
                    local,
                });
            }
        }
        Ok(())
    }

    fn finish(mut self, source: AllocSource) -> Allocation {
        if let [only] = self.hosts.as_mut_slice() {
            if only.local {
                only.bind_addr = IpAddr::V4(Ipv4Addr::LOCALHOST);
            }
        }
        Allocation {
            hosts: self.hosts,
            source,
        }
    }
}

/// A host name (or address) as hostfiles, `--host` and batch systems may give it:
/// letters, digits, `-`, `.`, `_`, `:` (IPv6) and `@` (`user@host`).
fn check_host_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty host name".into());
    }
    if name.len() > 255 {
        return Err(format!(
            "host name {:?}… is longer than 255 characters",
            name.chars().take(20).collect::<String>()
        ));
    }
    match name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "-._:@".contains(c)))
    {
        Some(c) => Err(format!(
            "{name:?} is not a host name ({c:?} is not allowed); host names are letters, \
             digits, '-', '.' and '_'"
        )),
        None if name.starts_with('-') => {
            Err(format!("{name:?} is not a host name (it starts with '-')"))
        }
        None => Ok(()),
    }
}

/// Whether `name` means this machine: `localhost`, a loopback address, or `this_host`
/// (ignoring case, and a domain on either side: `pi1` is `pi1.lab`).
fn is_local_name(name: &str, this_host: &str) -> bool {
    if name.eq_ignore_ascii_case("localhost") || name.eq_ignore_ascii_case("localhost.localdomain")
    {
        return true;
    }
    if let Ok(ip) = name.parse::<IpAddr>() {
        return ip.is_loopback();
    }
    if this_host.is_empty() || this_host.parse::<IpAddr>().is_ok() {
        return false;
    }
    let short = |s: &str| s.split('.').next().unwrap_or(s).to_ascii_lowercase();
    name.eq_ignore_ascii_case(this_host)
        || ((!name.contains('.') || !this_host.contains('.')) && short(name) == short(this_host))
}

/// Why a slot count could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BadCount {
    NotANumber,
    Zero,
    TooLarge,
}

/// A slot count: a whole number from 1 to [`MAX_SLOTS_PER_ENTRY`]. Every source parses
/// its counts here.
fn parse_count(value: &str) -> Result<usize, BadCount> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadCount::NotANumber);
    }
    match value.parse::<usize>() {
        Ok(0) => Err(BadCount::Zero),
        Ok(n) if n <= MAX_SLOTS_PER_ENTRY => Ok(n),
        _ => Err(BadCount::TooLarge),
    }
}

/// [`parse_count`] with an error that says what to do: `subject` names the count
/// (`slots`, `the slot count of pi1`), `form` shows how to write it (`slots=N`).
fn count(value: &str, subject: &str, form: &str) -> Result<usize, String> {
    parse_count(value).map_err(|bad| match bad {
        BadCount::NotANumber => {
            format!("{subject} {value:?} is not a whole number; write {form} with N ≥ 1")
        }
        BadCount::Zero => format!(
            "{subject} is 0, but a host needs at least one slot; write {form} with N ≥ 1, \
             or leave the host out"
        ),
        BadCount::TooLarge => format!(
            "{subject} {value:?} is too large; write {form} with N at most {MAX_SLOTS_PER_ENTRY}"
        ),
    })
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

    /// No batch system in the environment.
    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn local_allocation_has_this_host() {
        let a = Allocation::resolve(None, None, &no_env).unwrap();
        assert_eq!(a.hosts.len(), 1);
        assert!(a.slots() >= 1);
        assert!(!a.hosts[0].name.is_empty());
        assert!(a.hosts[0].is_local());
        assert_eq!(a.hosts[0].bind_addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(a.source, AllocSource::Local);
    }

    #[test]
    fn resolve_falls_back_to_this_host() {
        let a = Allocation::resolve(None, None, &no_env).unwrap();
        assert_eq!(a.source, AllocSource::Local);
        assert_eq!(a.hosts[0].name, hostname().unwrap());
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(a.slots(), cores);
    }

    #[test]
    fn command_line_beats_batch_system_and_both_host_options_are_refused() {
        let slurm = |k: &str| (k == "SLURM_JOB_NODELIST").then(|| "tux[0-3]".to_owned());
        let a = Allocation::resolve_on("me", None, Some("pi1:2"), &slurm).unwrap();
        assert_eq!(a.source, AllocSource::CommandLine);
        assert_eq!(a.hosts.len(), 1);
        let b = Allocation::resolve_on("me", None, None, &slurm).unwrap();
        assert_eq!(b.source, AllocSource::Slurm);
        assert_eq!(b.hosts.len(), 4);
        let err = Allocation::resolve_on("me", Some(Path::new("h")), Some("pi1"), &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--host") && err.contains("--hostfile"),
            "{err}"
        );
    }

    #[test]
    fn local_names() {
        for name in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.0.1.1",
            "::1",
            "pi1",
        ] {
            assert!(is_local_name(name, "pi1"), "{name}");
        }
        assert!(is_local_name("pi1.lab", "pi1"));
        assert!(is_local_name("pi1", "pi1.lab"));
        assert!(is_local_name("PI1.lab", "pi1.lab"));
        for name in ["pi2", "pi10", "pi1.a", "10.0.0.1", "::2"] {
            assert!(!is_local_name(name, "pi1.b"), "{name}");
        }
        assert!(!is_local_name("10", "10.0.0.1"));
    }

    #[test]
    fn repeated_hosts_add_up_and_names_of_this_host_merge() {
        let mut b = HostsBuilder::new("pi1");
        b.add("pi1", 2, Some(4)).unwrap();
        b.add("pi2", 1, Some(1)).unwrap();
        b.add("localhost", 2, Some(3)).unwrap();
        b.add("PI2", 1, None).unwrap();
        b.add("127.0.0.1", 1, Some(1)).unwrap();
        let a = b.finish(AllocSource::CommandLine);
        let got: Vec<_> = a
            .hosts
            .iter()
            .map(|h| (h.name.as_str(), h.cores, h.max_slots, h.local))
            .collect();
        assert_eq!(
            got,
            [("pi1", 5, Some(8), true), ("pi2", 2, None, false)],
            "max_slots adds up while every listing has one"
        );
        assert!(a
            .hosts
            .iter()
            .all(|h| h.bind_addr == IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        assert_eq!(
            a.to_string(),
            "using the hosts given with --host: 2 hosts, 7 slots"
        );
    }

    #[test]
    fn bad_host_names() {
        let mut b = HostsBuilder::new("me");
        for bad in ["", "pi$1", "pi 1", "-pi", "pi/1", "é"] {
            assert!(b.add(bad, 1, None).is_err(), "{bad:?}");
        }
        assert!(b.add(&"a".repeat(300), 1, None).is_err());
        for good in ["pi-1.lab", "10.0.0.7", "fe80::1", "pi@pi1", "node_01"] {
            b.add(good, 1, None).unwrap();
        }
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("4"), Ok(4));
        assert_eq!(parse_count("0004"), Ok(4));
        assert_eq!(parse_count("0"), Err(BadCount::Zero));
        for bad in ["", "-1", "+1", "four", "4.0", " 4"] {
            assert_eq!(parse_count(bad), Err(BadCount::NotANumber), "{bad:?}");
        }
        assert_eq!(parse_count("65537"), Err(BadCount::TooLarge));
        assert_eq!(
            parse_count("99999999999999999999999"),
            Err(BadCount::TooLarge)
        );
        let e = count("x", "slots", "slots=N").unwrap_err();
        assert_eq!(
            e,
            "slots \"x\" is not a whole number; write slots=N with N ≥ 1"
        );
    }

    #[test]
    fn display_of_sources() {
        let a = Allocation {
            hosts: vec![],
            source: AllocSource::Slurm,
        };
        assert_eq!(
            a.to_string(),
            "using the Slurm allocation: 0 hosts, 0 slots"
        );
        assert_eq!(
            AllocSource::Hostfile("hosts".into()).to_string(),
            "hostfile hosts"
        );
        assert_eq!(
            AllocSource::Pbs("/var/spool/pbs/aux/1.pbs".into()).to_string(),
            "the PBS allocation (/var/spool/pbs/aux/1.pbs)"
        );
        assert_eq!(AllocSource::Lsf.to_string(), "the LSF allocation");
        assert_eq!(AllocSource::Local.to_string(), "this host alone");
    }
}
