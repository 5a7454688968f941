//! Hostfiles and `--host` lists.
//!
//! A hostfile line is a host token, then optional `key=value` settings, then an optional
//! `#` comment: `pi1 slots=4 max_slots=8` (Open MPI) or `pi1:4` (MPICH); `slots`
//! defaults to 1, `max_slots` (also spelled `max-slots`) to no limit. Blank lines, tabs
//! and CRLF line ends are fine. A PBS/TORQUE node file (one line per slot) is read as a
//! hostfile too. `--host` is a comma-separated list of the same host tokens
//! (`pi1:2,pi2:2`, or `pi1,pi1,pi2`: one slot per mention). One function,
//! [`parse_host_token`], reads the `name[:slots]` token for both.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::{count, HostsBuilder};
use crate::error::LaunchError;

/// The largest hostfile read: enough for any cluster, and `--hostfile /dev/zero` stops.
const MAX_HOSTFILE_BYTES: u64 = 16 << 20;

/// Reads the hostfile at `path` into `hosts`. `what` names the file in messages
/// (`hostfile`, `PBS node file`).
pub(super) fn read_hostfile(
    path: &Path,
    what: &'static str,
    hosts: &mut HostsBuilder,
) -> Result<(), LaunchError> {
    let read_error = |source| LaunchError::HostfileRead {
        what,
        path: path.to_path_buf(),
        source,
    };
    let mut text = Vec::new();
    File::open(path)
        .and_then(|f| f.take(MAX_HOSTFILE_BYTES + 1).read_to_end(&mut text))
        .map_err(read_error)?;
    if text.len() as u64 > MAX_HOSTFILE_BYTES {
        return Err(read_error(io::Error::new(
            io::ErrorKind::InvalidData,
            "larger than 16 MiB, so not a hostfile",
        )));
    }
    parse_hostfile(path, what, &text, hosts)
}

/// Parses hostfile `text` (read from `path`, which messages name with the line number).
pub(super) fn parse_hostfile(
    path: &Path,
    what: &'static str,
    text: &[u8],
    hosts: &mut HostsBuilder,
) -> Result<(), LaunchError> {
    let mut listed = false;
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let at_line = |message| LaunchError::Hostfile {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let line = std::str::from_utf8(raw).map_err(|_| {
            at_line(format!(
                "this line is not text (invalid UTF-8); is `{}` really a {what}?",
                path.display()
            ))
        })?;
        // Editors on Windows may start the file with a byte-order mark.
        let line = if i == 0 {
            line.strip_prefix('\u{feff}').unwrap_or(line)
        } else {
            line
        };
        if let Some(entry) = parse_line(line).map_err(at_line)? {
            hosts
                .add(entry.name, entry.slots, entry.max_slots)
                .map_err(at_line)?;
            listed = true;
        }
    }
    if listed {
        Ok(())
    } else {
        Err(LaunchError::EmptyHostfile {
            what,
            path: path.to_path_buf(),
        })
    }
}

/// Parses a `--host` list into `hosts`.
pub(super) fn parse_host_list(list: &str, hosts: &mut HostsBuilder) -> Result<(), LaunchError> {
    let bad = |reason: String| LaunchError::BadHostList {
        spec: list.to_owned(),
        reason,
    };
    if list.trim().is_empty() {
        return Err(bad("it names no hosts; write --host pi1:2,pi2:2".into()));
    }
    for item in list.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(bad(
                "it has an empty entry (two commas in a row, or one at an end); \
                 write --host pi1:2,pi2:2"
                    .into(),
            ));
        }
        let (name, slots) = parse_host_token(item).map_err(bad)?;
        hosts.add(name, slots.unwrap_or(1), None).map_err(bad)?;
    }
    Ok(())
}

/// One host of a hostfile line.
#[derive(Debug, PartialEq, Eq)]
struct Entry<'a> {
    name: &'a str,
    slots: usize,
    max_slots: Option<usize>,
}

/// One hostfile line: `None` for a blank or comment line. The error is the message for
/// `path:line: ...`, ending with what to do.
fn parse_line(line: &str) -> Result<Option<Entry<'_>>, String> {
    let line = line.split('#').next().unwrap_or_default().trim();
    if line.is_empty() {
        return Ok(None);
    }
    let (token, mut rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    if token.contains('=') {
        return Err(format!(
            "the line starts with {token:?}; a line starts with the host name, \
             as in `pi1 slots=4`"
        ));
    }
    let (name, mpich_slots) = parse_host_token(token)?;
    let mut slots: Option<(usize, String)> = mpich_slots.map(|n| (n, token.to_owned()));
    let mut max_slots: Option<usize> = None;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let key_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(rest.len());
        let key = &rest[..key_len];
        let Some(after) = rest[key_len..].trim_start().strip_prefix('=') else {
            let word = rest.split_whitespace().next().unwrap_or(rest);
            let hint = if word.bytes().all(|b| b.is_ascii_digit()) {
                format!("write slots={word}")
            } else {
                "expected slots=N or max_slots=N".to_owned()
            };
            return Err(format!("unexpected {word:?} after host {name}; {hint}"));
        };
        let after = after.trim_start();
        let value_len = after.find(char::is_whitespace).unwrap_or(after.len());
        let value = &after[..value_len];
        rest = &after[value_len..];
        let setting = format!("{key}={value}");
        match key {
            "slots" => {
                let n = count(value, "slots", "slots=N")?;
                if let Some((_, first)) = &slots {
                    return Err(format!(
                        "slots given twice ({first} and {setting}); keep one"
                    ));
                }
                slots = Some((n, setting));
            }
            "max_slots" | "max-slots" => {
                let n = count(value, key, "max_slots=N")?;
                if max_slots.is_some() {
                    return Err(format!("{key} given twice; keep one"));
                }
                max_slots = Some(n);
            }
            "" => {
                return Err(format!(
                    "unexpected {setting:?} after host {name}; expected slots=N or max_slots=N"
                ));
            }
            _ => {
                return Err(format!(
                    "unknown key {key:?}; expected slots= or max_slots="
                ))
            }
        }
    }
    let slots = slots.map_or(1, |(n, _)| n);
    if let Some(max) = max_slots {
        if max < slots {
            return Err(format!(
                "max_slots={max} is less than slots={slots}; raise max_slots or lower slots"
            ));
        }
    }
    Ok(Some(Entry {
        name,
        slots,
        max_slots,
    }))
}

/// A host token, `name` or `name:slots` (MPICH, `--host`): the name and the slots if
/// given. A token with more than one `:` is an IPv6 address without a count.
pub(super) fn parse_host_token(token: &str) -> Result<(&str, Option<usize>), String> {
    match token.split_once(':') {
        Some((name, n)) if !n.contains(':') => {
            if name.is_empty() {
                return Err(format!(
                    "{token:?} has no host name before ':'; write host:N, as in pi1:4"
                ));
            }
            let slots = count(
                n,
                &format!("the slot count of {name}"),
                &format!("{name}:N"),
            )?;
            Ok((name, Some(slots)))
        }
        _ => Ok((token, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::{AllocSource, Allocation};

    fn parse(text: &str) -> Result<Allocation, String> {
        let mut b = HostsBuilder::new("head");
        parse_hostfile(Path::new("hosts"), "hostfile", text.as_bytes(), &mut b)
            .map_err(|e| e.to_string())?;
        Ok(b.finish(AllocSource::Hostfile("hosts".into())))
    }

    fn hosts(a: &Allocation) -> Vec<(&str, usize, Option<usize>)> {
        a.hosts
            .iter()
            .map(|h| (h.name.as_str(), h.cores, h.max_slots))
            .collect()
    }

    /// As Open MPI's documentation and a typical Raspberry Pi cluster write it.
    const OPEN_MPI: &str = "\
# This is an example hostfile.  Comments begin with #
#
# The following node is a single processor machine:
foo.example.com

# The following node is a dual-processor machine:
bar.example.com slots=2

# The following node is a quad-processor machine, and we absolutely
# want to disallow over-subscribing it:
yow.example.com slots=4 max_slots=4
\t# indented comment
pi1\tslots=4   max-slots=8 # trailing comment
pi2 slots = 2
bar.example.com slots=2
";

    #[test]
    fn open_mpi_hostfile() {
        let a = parse(OPEN_MPI).unwrap();
        assert_eq!(
            hosts(&a),
            [
                ("foo.example.com", 1, None),
                ("bar.example.com", 4, None),
                ("yow.example.com", 4, Some(4)),
                ("pi1", 4, Some(8)),
                ("pi2", 2, None),
            ]
        );
        assert_eq!(a.slots(), 15);
        assert!(a.hosts.iter().all(|h| !h.is_local()));
    }

    #[test]
    fn mpich_hostfile_with_crlf_and_tabs() {
        let text = "\u{feff}# MPICH machinefile\r\nhost1:4\r\n\r\n  host2:2  \r\n\thost3\r\nhost1:2 # more\r\nlocalhost:1\r\nhead\r\n";
        let a = parse(text).unwrap();
        assert_eq!(
            hosts(&a),
            [
                ("host1", 6, None),
                ("host2", 2, None),
                ("host3", 1, None),
                ("localhost", 2, None),
            ]
        );
        assert!(a.hosts[3].is_local());
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let cases = [
            (
                "pi1 slots=4\n\npi2 slot=4\n",
                "hosts:3: unknown key \"slot\"; expected slots= or max_slots=",
            ),
            (
                "pi1 slots=four",
                "hosts:1: slots \"four\" is not a whole number; write slots=N with N ≥ 1",
            ),
            (
                "# c\npi1 slots=",
                "hosts:2: slots \"\" is not a whole number; write slots=N with N ≥ 1",
            ),
            (
                "pi1 slots=-2",
                "hosts:1: slots \"-2\" is not a whole number; write slots=N with N ≥ 1",
            ),
            (
                "pi1 slots=0",
                "hosts:1: slots is 0, but a host needs at least one slot; \
                 write slots=N with N ≥ 1, or leave the host out",
            ),
            (
                "pi1 slots=99999999999999999999999",
                "hosts:1: slots \"99999999999999999999999\" is too large; \
                 write slots=N with N at most 65536",
            ),
            (
                "pi1:0",
                "hosts:1: the slot count of pi1 is 0, but a host needs at least one slot; \
                 write pi1:N with N ≥ 1, or leave the host out",
            ),
            (
                "pi1:x",
                "hosts:1: the slot count of pi1 \"x\" is not a whole number; \
                 write pi1:N with N ≥ 1",
            ),
            (
                "\n\npi1 slots=4 max_slots=2",
                "hosts:3: max_slots=2 is less than slots=4; raise max_slots or lower slots",
            ),
            (
                "pi1 max_slots=0",
                "hosts:1: max_slots is 0, but a host needs at least one slot; \
                 write max_slots=N with N ≥ 1, or leave the host out",
            ),
            (
                "pi1 4",
                "hosts:1: unexpected \"4\" after host pi1; write slots=4",
            ),
            (
                "pi1 slots",
                "hosts:1: unexpected \"slots\" after host pi1; expected slots=N or max_slots=N",
            ),
            (
                "pi1 ; rm -rf",
                "hosts:1: unexpected \";\" after host pi1; expected slots=N or max_slots=N",
            ),
            (
                "pi1 =4",
                "hosts:1: unexpected \"=4\" after host pi1; expected slots=N or max_slots=N",
            ),
            (
                "pi1 slots=2 slots=3",
                "hosts:1: slots given twice (slots=2 and slots=3); keep one",
            ),
            (
                "pi1:2 slots=3",
                "hosts:1: slots given twice (pi1:2 and slots=3); keep one",
            ),
            (
                "pi1 max_slots=2 max-slots=3",
                "hosts:1: max-slots given twice; keep one",
            ),
            (
                "slots=4",
                "hosts:1: the line starts with \"slots=4\"; a line starts with the host name, \
                 as in `pi1 slots=4`",
            ),
            (
                ":4",
                "hosts:1: \":4\" has no host name before ':'; write host:N, as in pi1:4",
            ),
            (
                "ok\npi$1 slots=2",
                "hosts:2: \"pi$1\" is not a host name ('$' is not allowed); host names are \
                 letters, digits, '-', '.' and '_'",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).unwrap_err(), want, "for {text:?}");
        }
    }

    #[test]
    fn garbage_and_empty_files() {
        let err = parse("pi1\n\u{0}\u{1}\u{2}binary").unwrap_err();
        assert!(err.starts_with("hosts:2: "), "{err}");
        let mut b = HostsBuilder::new("head");
        let err = parse_hostfile(Path::new("hosts"), "hostfile", b"ok\n\xff\xfe\n", &mut b)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "hosts:2: this line is not text (invalid UTF-8); is `hosts` really a hostfile?"
        );
        for empty in ["", "\n\n", "# only\n  # comments\r\n\t\n"] {
            assert_eq!(
                parse(empty).unwrap_err(),
                "hostfile `hosts` lists no hosts; add one line per host, \
                 such as `pi1 slots=4` or `pi1:4`"
            );
        }
    }

    #[test]
    fn reading_files() {
        let dir = std::env::temp_dir().join(format!("pirun-hostfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hosts");
        std::fs::write(&path, "pi1 slots=2\npi2:2\n").unwrap();
        let a = Allocation::resolve_on("head", Some(&path), None, &|_| None).unwrap();
        assert_eq!(a.source, AllocSource::Hostfile(path.clone()));
        assert_eq!(hosts(&a), [("pi1", 2, None), ("pi2", 2, None)]);
        let missing = dir.join("nope");
        let err = Allocation::resolve_on("head", Some(&missing), None, &|_| None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("cannot read hostfile `{}`: ", missing.display())),
            "{err}"
        );
        assert!(err.ends_with("; check the path"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn host_lists() {
        let list = |s: &str| -> Result<Vec<(String, usize)>, String> {
            let mut b = HostsBuilder::new("head");
            parse_host_list(s, &mut b).map_err(|e| e.to_string())?;
            let a = b.finish(AllocSource::CommandLine);
            Ok(a.hosts.into_iter().map(|h| (h.name, h.cores)).collect())
        };
        let own = |v: &[(&str, usize)]| -> Vec<(String, usize)> {
            v.iter().map(|&(n, c)| (n.to_owned(), c)).collect()
        };
        assert_eq!(list("pi1:2,pi2:2"), Ok(own(&[("pi1", 2), ("pi2", 2)])));
        assert_eq!(list("pi1,pi1,pi2"), Ok(own(&[("pi1", 2), ("pi2", 1)])));
        assert_eq!(list(" pi1 , pi2:3 "), Ok(own(&[("pi1", 1), ("pi2", 3)])));
        assert_eq!(list("fe80::1,pi1"), Ok(own(&[("fe80::1", 1), ("pi1", 1)])));
        assert_eq!(
            list("pi1:2,,pi2").unwrap_err(),
            "bad --host \"pi1:2,,pi2\": it has an empty entry (two commas in a row, or one \
             at an end); write --host pi1:2,pi2:2"
        );
        assert_eq!(
            list("pi1:x").unwrap_err(),
            "bad --host \"pi1:x\": the slot count of pi1 \"x\" is not a whole number; \
             write pi1:N with N ≥ 1"
        );
        assert!(list("").unwrap_err().contains("names no hosts"));
        assert!(list("pi1:0").unwrap_err().contains("at least one slot"));
        assert!(list("pi 1").unwrap_err().contains("is not a host name"));
    }
}
