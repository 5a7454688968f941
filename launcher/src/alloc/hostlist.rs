//! Slurm's compressed lists: hostlists such as `pi[01-04,07]`, `node-[1-3]-ib,login` or
//! `rack[1-2]-node[01-02]` (zero padding kept, several bracket groups expanded left to
//! right, the leftmost varying slowest, as Slurm does), and count lists such as
//! `2(x3),1` (`SLURM_TASKS_PER_NODE`, `SLURM_JOB_CPUS_PER_NODE`).
//!
//! Both refuse malformed input with a message, and neither expands past
//! [`MAX_HOSTS`] entries, whatever the numbers in the input say.

use super::{count, MAX_HOSTS};

/// One piece of a hostlist entry: literal text or a bracket group of ranges.
#[derive(Debug)]
enum Piece<'a> {
    Text(&'a str),
    /// `(first, last, width)`: numbers `first..=last`, zero-padded to `width` digits.
    Ranges(Vec<(u64, u64, usize)>),
}

/// Expands a Slurm hostlist into host names, in order.
pub(super) fn expand(list: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for entry in split_top_level(list)? {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err("it has an empty entry (two commas in a row, or one at an end)".into());
        }
        let pieces = pieces(entry)?;
        expand_entry(&pieces, &mut String::new(), &mut names)?;
    }
    Ok(names)
}

/// Splits at the commas outside brackets, checking that brackets match.
fn split_top_level(list: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut open: Option<usize> = None;
    let mut start = 0;
    for (i, c) in list.char_indices() {
        match (c, open) {
            ('[', Some(_)) => return Err(format!("'[' inside '[...]' at offset {i}")),
            ('[', None) => open = Some(i),
            (']', None) => return Err(format!("']' without '[' at offset {i}")),
            (']', Some(_)) => open = None,
            (',', None) => {
                parts.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if let Some(i) = open {
        return Err(format!("'[' at offset {i} is never closed"));
    }
    parts.push(&list[start..]);
    Ok(parts)
}

/// Cuts one entry (brackets already known to match) into text and range groups.
fn pieces(entry: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = entry;
    while let Some(open) = rest.find('[') {
        let close = rest[open..].find(']').map_or(rest.len(), |c| open + c);
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        let inside = rest.get(open + 1..close).unwrap_or_default();
        out.push(Piece::Ranges(ranges(inside)?));
        rest = rest.get(close + 1..).unwrap_or_default();
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// The inside of a bracket group: `01-04,07`.
fn ranges(inside: &str) -> Result<Vec<(u64, u64, usize)>, String> {
    if inside.is_empty() {
        return Err("'[]' is empty; write a range such as [01-04]".into());
    }
    inside
        .split(',')
        .map(|range| {
            let bad =
                || format!("{range:?} in [{inside}] is not a number or a range such as 01-04");
            let (first, last) = range.split_once('-').unwrap_or((range, range));
            let number = |s: &str| {
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                s.parse::<u64>().map_err(|_| bad())
            };
            let (lo, hi) = (number(first)?, number(last)?);
            if lo > hi {
                return Err(format!(
                    "range {range:?} in [{inside}] runs backwards; write it as {last}-{first}"
                ));
            }
            Ok((lo, hi, first.len()))
        })
        .collect()
}

/// Appends every name `prefix` + `pieces` stands for to `names`.
fn expand_entry(
    pieces: &[Piece],
    prefix: &mut String,
    names: &mut Vec<String>,
) -> Result<(), String> {
    let Some((first, rest)) = pieces.split_first() else {
        if names.len() >= MAX_HOSTS {
            return Err(format!(
                "it expands to more than {MAX_HOSTS} hosts; pirun supports at most {MAX_HOSTS}"
            ));
        }
        names.push(prefix.clone());
        return Ok(());
    };
    let len = prefix.len();
    match first {
        Piece::Text(text) => {
            prefix.push_str(text);
            expand_entry(rest, prefix, names)?;
        }
        Piece::Ranges(ranges) => {
            for &(lo, hi, width) in ranges {
                for n in lo..=hi {
                    use std::fmt::Write;
                    let _ = write!(prefix, "{n:0width$}");
                    expand_entry(rest, prefix, names)?;
                    prefix.truncate(len);
                }
            }
        }
    }
    prefix.truncate(len);
    Ok(())
}

/// Expands a Slurm count list (`2(x3),1` is 2, 2, 2, 1). Each count is a slot count.
pub(super) fn expand_counts(list: &str) -> Result<Vec<usize>, String> {
    let mut counts = Vec::new();
    for item in list.split(',') {
        let item = item.trim();
        let (n, times) = match item.strip_suffix(')') {
            Some(head) => {
                let (n, times) = head.split_once("(x").ok_or_else(|| {
                    format!("{item:?} is neither a count nor count(xTIMES), as in 2(x3)")
                })?;
                let times = count(times, &format!("the repeat in {item:?}"), "N(xTIMES)")?;
                (n, times)
            }
            None => (item, 1),
        };
        let n = count(n, &format!("the count in {item:?}"), "N or N(xTIMES)")?;
        if counts.len() + times > MAX_HOSTS {
            return Err(format!(
                "it counts more than {MAX_HOSTS} hosts; pirun supports at most {MAX_HOSTS}"
            ));
        }
        counts.extend(std::iter::repeat_n(n, times));
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &str) -> Vec<String> {
        expand(list).unwrap_or_else(|e| panic!("{list}: {e}"))
    }

    #[test]
    fn hostlists_from_the_slurm_documentation() {
        // scontrol(1), "show hostnames": tux[0-3] and linux[0-7,9] style lists.
        assert_eq!(names("tux[0-3]"), ["tux0", "tux1", "tux2", "tux3"]);
        assert_eq!(
            names("linux[0-7,9]"),
            [
                "linux0", "linux1", "linux2", "linux3", "linux4", "linux5", "linux6", "linux7",
                "linux9"
            ]
        );
        assert_eq!(
            names("pi[01-04,07]"),
            ["pi01", "pi02", "pi03", "pi04", "pi07"]
        );
        assert_eq!(names("node[8-11]"), ["node8", "node9", "node10", "node11"]);
        assert_eq!(names("n[098-101]"), ["n098", "n099", "n100", "n101"]);
        assert_eq!(
            names("node-[1-3]-ib,login"),
            ["node-1-ib", "node-2-ib", "node-3-ib", "login"]
        );
        assert_eq!(
            names("rack[1-2]-node[01-02]"),
            [
                "rack1-node01",
                "rack1-node02",
                "rack2-node01",
                "rack2-node02"
            ]
        );
        assert_eq!(
            names("a[1,3]b[7-8],c,d[00]"),
            ["a1b7", "a1b8", "a3b7", "a3b8", "c", "d00"]
        );
        assert_eq!(names("pi1"), ["pi1"]);
        assert_eq!(names("[1-2]x"), ["1x", "2x"]);
        assert_eq!(names("tux[7]"), ["tux7"]);
    }

    #[test]
    fn malformed_hostlists() {
        let err = |list: &str| expand(list).unwrap_err();
        assert_eq!(err("pi[01-04"), "'[' at offset 2 is never closed");
        assert_eq!(err("pi01-04]"), "']' without '[' at offset 7");
        assert_eq!(err("pi[[1-2]]"), "'[' inside '[...]' at offset 3");
        assert_eq!(err("pi[]"), "'[]' is empty; write a range such as [01-04]");
        assert_eq!(
            err("pi[a-b]"),
            "\"a-b\" in [a-b] is not a number or a range such as 01-04"
        );
        assert_eq!(
            err("pi[1-]"),
            "\"1-\" in [1-] is not a number or a range such as 01-04"
        );
        assert_eq!(
            err("pi[1,,2]"),
            "\"\" in [1,,2] is not a number or a range such as 01-04"
        );
        assert_eq!(
            err("pi[4-1]"),
            "range \"4-1\" in [4-1] runs backwards; write it as 1-4"
        );
        assert!(err("pi1,,pi2").contains("empty entry"));
        assert!(err("pi1,").contains("empty entry"));
        assert!(err("pi[99999999999999999999999-1]").contains("not a number"));
    }

    #[test]
    fn huge_ranges_are_refused_without_expanding_them() {
        let e = expand("n[0-18446744073709551615]").unwrap_err();
        assert!(e.contains("more than 65536 hosts"), "{e}");
        let e = expand("a[0-999]b[0-999]").unwrap_err();
        assert!(e.contains("more than 65536 hosts"), "{e}");
    }

    #[test]
    fn count_lists() {
        assert_eq!(expand_counts("2(x3),1"), Ok(vec![2, 2, 2, 1]));
        assert_eq!(expand_counts("4"), Ok(vec![4]));
        assert_eq!(expand_counts("1(x2)"), Ok(vec![1, 1]));
        assert_eq!(expand_counts("36(x2),72"), Ok(vec![36, 36, 72]));
        assert_eq!(
            expand_counts("2(3)").unwrap_err(),
            "\"2(3)\" is neither a count nor count(xTIMES), as in 2(x3)"
        );
        assert_eq!(
            expand_counts("0").unwrap_err(),
            "the count in \"0\" is 0, but a host needs at least one slot; \
             write N or N(xTIMES) with N ≥ 1, or leave the host out"
        );
        assert!(expand_counts("x(x2)")
            .unwrap_err()
            .contains("not a whole number"));
        assert!(expand_counts("2(x0)").is_err());
        assert!(expand_counts("2,").is_err());
        assert!(expand_counts("").is_err());
        assert!(expand_counts("1(x65536),1")
            .unwrap_err()
            .contains("more than"));
    }
}
