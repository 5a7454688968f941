//! `--array SPEC`: which indices a job array runs.
//!
//! A spec is a comma-separated list of items, each a number `N`, a range `A-B` (both
//! ends included) or a range with a step `A-B:S` (`A`, `A+S`, … up to `B`). Indices run
//! in the order written, so `pirun --array 9,1-3` runs 9, 1, 2, 3 and prints their output
//! in that order, as `for i in 9 1 2 3` would. An index may appear more than once.
//! The list is never expanded in memory: [`IndexSpec::iter`] walks it.

use std::fmt;
use std::str::FromStr;

/// Longest spec accepted (items are kept, indices are not).
const MAX_SPEC_LEN: usize = 64 * 1024;

/// One item of a spec: `start..=end` by `step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Item {
    start: u64,
    end: u64,
    step: u64,
}

impl Item {
    /// How many indices the item yields.
    fn count(&self) -> u64 {
        ((self.end - self.start) / self.step).saturating_add(1)
    }
}

/// A parsed `--array` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    items: Vec<Item>,
    text: String,
}

impl IndexSpec {
    /// How many tasks the spec describes (saturating at `u64::MAX`).
    pub fn count(&self) -> u64 {
        self.items
            .iter()
            .fold(0u64, |n, item| n.saturating_add(item.count()))
    }

    /// The indices, in the order written.
    pub fn iter(&self) -> Indices {
        Indices {
            items: self.items.clone(),
            item: 0,
            next: self.items.first().map(|i| i.start),
        }
    }
}

impl fmt::Display for IndexSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for IndexSpec {
    type Err = String;

    /// Parses `2-1000`, `1-99:2`, `1,5,7-9`. The error says what is wrong and shows the
    /// accepted forms.
    fn from_str(s: &str) -> Result<Self, String> {
        let forms = "write indices like 2-1000, 1-99:2 or 1,5,7-9";
        if s.len() > MAX_SPEC_LEN {
            return Err(format!("longer than {MAX_SPEC_LEN} characters"));
        }
        let mut items = Vec::new();
        for raw in s.split(',') {
            let part = raw.trim();
            if part.is_empty() {
                return Err(format!("empty item in {s:?}; {forms}"));
            }
            items.push(parse_item(part).map_err(|why| format!("{part:?}: {why}; {forms}"))?);
        }
        Ok(IndexSpec {
            items,
            text: s.trim().to_string(),
        })
    }
}

fn parse_item(part: &str) -> Result<Item, String> {
    let (range, step) = match part.split_once(':') {
        Some((r, st)) => (r, Some(st)),
        None => (part, None),
    };
    let (start, end) = match range.split_once('-') {
        Some((a, b)) => (number(a, "the start")?, number(b, "the end")?),
        None if step.is_some() => return Err("a step needs a range (A-B:STEP)".into()),
        None => {
            let n = number(range, "the index")?;
            (n, n)
        }
    };
    if end < start {
        return Err(format!("the range runs backwards ({start} > {end})"));
    }
    let step = match step {
        Some(st) => number(st, "the step")?,
        None => 1,
    };
    if step == 0 {
        return Err("the step must be at least 1".into());
    }
    Ok(Item { start, end, step })
}

fn number(s: &str, what: &str) -> Result<u64, String> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {s:?} is not a whole number ≥ 0"));
    }
    s.parse()
        .map_err(|_| format!("{what} {s:?} is too large (at most {})", u64::MAX))
}

/// The indices of an [`IndexSpec`], in order.
#[derive(Debug, Clone)]
pub struct Indices {
    items: Vec<Item>,
    item: usize,
    next: Option<u64>,
}

impl Iterator for Indices {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        loop {
            let item = self.items.get(self.item)?;
            if let Some(n) = self.next {
                self.next = n.checked_add(item.step).filter(|&m| m <= item.end);
                return Some(n);
            }
            self.item += 1;
            self.next = self.items.get(self.item).map(|i| i.start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(s: &str) -> Vec<u64> {
        s.parse::<IndexSpec>().unwrap().iter().collect()
    }

    #[test]
    fn ranges_lists_and_steps() {
        assert_eq!(all("2-5"), [2, 3, 4, 5]);
        assert_eq!(all("7"), [7]);
        assert_eq!(all("1,5,7-9"), [1, 5, 7, 8, 9]);
        assert_eq!(all("1-10:3"), [1, 4, 7, 10]);
        assert_eq!(all("1-11:3"), [1, 4, 7, 10]);
        assert_eq!(all("9, 1-3"), [9, 1, 2, 3]);
        assert_eq!(all("0-0"), [0]);
        assert_eq!(all("3,3"), [3, 3]);
        let top = format!("{}-{}", u64::MAX - 1, u64::MAX);
        assert_eq!(all(&top), [u64::MAX - 1, u64::MAX]);
        assert_eq!(all(&format!("{}-{}:7", u64::MAX - 9, u64::MAX)).len(), 2);
    }

    #[test]
    fn counts_without_expanding() {
        let s: IndexSpec = "1-1000000,5,10-20:5".parse().unwrap();
        assert_eq!(s.count(), 1_000_000 + 1 + 3);
        let huge: IndexSpec = format!("0-{}", u64::MAX).parse().unwrap();
        assert_eq!(huge.count(), u64::MAX, "saturates");
        assert_eq!(huge.iter().take(3).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(s.to_string(), "1-1000000,5,10-20:5");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for (bad, why) in [
            ("", "empty item"),
            ("1,,2", "empty item"),
            ("5-1", "backwards"),
            ("1-5:0", "at least 1"),
            ("x", "not a whole number"),
            ("-3", "not a whole number"),
            ("1-", "not a whole number"),
            ("5:2", "needs a range"),
            ("1-2:3:4", "not a whole number"),
            ("99999999999999999999", "too large"),
        ] {
            let e = bad.parse::<IndexSpec>().unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
            assert!(e.contains("2-1000"), "shows the forms: {e}");
        }
    }
}
