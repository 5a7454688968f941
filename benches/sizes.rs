//! Byte counts as people write them on a command line (`64K`, `1M`, `16MiB`) and as the
//! benchmark output shows them (`64 KiB`).
//!
//! Suffixes are binary and case-insensitive: `K` = 2^10, `M` = 2^20, `G` = 2^30, with an
//! optional `iB` or `B` after them (`1KiB`, `1kb`); a bare number is bytes (`512`, `512B`).

/// Largest byte count [`parse_size`] accepts (1 GiB per rank is already more than a board
/// has to spare).
pub const MAX_SIZE: usize = 1 << 30;

/// Parses one byte count: `4096`, `64K`, `1M`, `16MiB`. Zero and counts above
/// [`MAX_SIZE`] are refused.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let body = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (digits, mult) = match body.char_indices().last() {
        Some((i, 'k')) => (&body[..i], 1usize << 10),
        Some((i, 'm')) => (&body[..i], 1 << 20),
        Some((i, 'g')) => (&body[..i], 1 << 30),
        _ => (body, 1),
    };
    let bad = || format!("bad size {t:?}: expected a byte count like 8, 64K, 1M or 16MiB");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n = digits
        .parse::<usize>()
        .ok()
        .and_then(|d| d.checked_mul(mult))
        .ok_or_else(bad)?;
    if n == 0 {
        return Err(format!("bad size {t:?}: sizes start at 1 byte"));
    }
    if n > MAX_SIZE {
        return Err(format!("bad size {t:?}: at most 1G (bytes per rank)"));
    }
    Ok(n)
}

/// Parses a comma-separated list of byte counts (`1,8,1K,64K,1M,16M`), kept in the order
/// given, duplicates dropped. An empty list is an error.
pub fn parse_sizes(list: &str) -> Result<Vec<usize>, String> {
    let mut out: Vec<usize> = Vec::new();
    for part in list.split(',') {
        let n = parse_size(part)?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

/// `bytes` for people: `1 B`, `512 B`, `64 KiB`, `1.5 MiB` (exact multiples without a
/// fraction).
pub fn format_size(bytes: usize) -> String {
    const UNITS: [(usize, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if bytes >= unit {
            return if bytes % unit == 0 {
                format!("{} {name}", bytes / unit)
            } else {
                format!("{:.1} {name}", bytes as f64 / unit as f64)
            };
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_binary_and_case_insensitive() {
        assert_eq!(parse_size("1"), Ok(1));
        assert_eq!(parse_size(" 512B "), Ok(512));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
    }

    #[test]
    fn bad_sizes_say_what_is_expected() {
        for bad in ["", "K", "1.5M", "-1", "12x", "M1", "2G", "0"] {
            let e = parse_size(bad).expect_err(bad);
            assert!(e.contains("bad size"), "{bad}: {e}");
        }
        assert_eq!(parse_sizes("1,8,1K,8"), Ok(vec![1, 8, 1024]));
        assert!(parse_sizes("1,,8").is_err());
    }

    #[test]
    fn sizes_format_for_people() {
        assert_eq!(format_size(1), "1 B");
        assert_eq!(format_size(1023), "1023 B");
        assert_eq!(format_size(65536), "64 KiB");
        assert_eq!(format_size(3 << 19), "1.5 MiB");
        assert_eq!(format_size(16 << 20), "16 MiB");
        for s in ["1", "4K", "16M"] {
            let n = parse_size(s).unwrap();
            assert_eq!(parse_size(&format_size(n).replace(' ', "")), Ok(n));
        }
    }
}
