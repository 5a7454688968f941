//! The lines rank 0 of a `pirun bench` job writes on its stdout for the launcher, and
//! their parser: one [`Line`] per line, `@pirun-bench <kind> key=value ...`.
//!
//! The launcher takes these lines out of rank 0's output (everything else is forwarded as
//! usual), shows progress from [`Line::Begin`] and [`Line::Result`], and builds the table,
//! CSV, SVG and model from the results. Values never contain spaces, except the free
//! text of [`Line::Failed`] and [`Line::Skipped`], which comes last.

use std::fmt;

use crate::plan::Test;

/// What starts every line of the protocol.
pub const PREFIX: &str = "@pirun-bench ";

/// One measured (test, size).
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    pub test: Test,
    /// Bytes per rank as asked (0 for the barrier).
    pub size: usize,
    /// Bytes per rank the call actually moved ([`crate::coll::payload_bytes`]; the
    /// reductions work on whole `f64`s).
    pub bytes: usize,
    /// Ranks taking part (2 for the ping-pong).
    pub ranks: usize,
    /// Timed iterations run.
    pub iters: usize,
    /// The slowest rank's time per call (ping-pong: one way), µs.
    pub min_us: f64,
    pub median_us: f64,
    pub max_us: f64,
    /// The algorithm pirun ran (`-` for the ping-pong).
    pub algorithm: String,
}

/// The job as rank 0 sees it, sent before any measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct Setup {
    pub ranks: usize,
    /// Distinct hosts with ranks.
    pub hosts: usize,
    /// Rank 0's host.
    pub host0: String,
    /// Rank 0's ping-pong partner and its host.
    pub partner: usize,
    pub partner_host: String,
    /// Whether some host runs more ranks than it has cores.
    pub oversubscribed: bool,
    /// The pipelined broadcast's segment size on rank 0 (for the model).
    pub segment: usize,
    /// Measurements to come.
    pub measurements: usize,
    /// Bytes of buffers a rank may use (half the free memory of the fullest host, shared
    /// among its ranks); larger measurements are skipped.
    pub memory: u64,
}

/// One line of the protocol.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// The job, before anything is measured.
    Setup(Setup),
    /// A measurement starts.
    Begin { test: Test, size: usize },
    /// A measurement's figures.
    Result(Measurement),
    /// A measurement gave no figures: the result check failed.
    Failed {
        test: Test,
        size: usize,
        what: String,
    },
    /// A measurement was left out: its buffers would not fit in memory.
    Skipped {
        test: Test,
        size: usize,
        why: String,
    },
    /// Every measurement is done.
    Done,
}

impl fmt::Display for Line {
    /// The line without its newline, [`PREFIX`] included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        match self {
            Line::Setup(s) => write!(
                f,
                "setup ranks={} hosts={} host0={} partner={} partner_host={} \
                 oversubscribed={} segment={} measurements={} memory={}",
                s.ranks,
                s.hosts,
                s.host0,
                s.partner,
                s.partner_host,
                s.oversubscribed as u8,
                s.segment,
                s.measurements,
                s.memory
            ),
            Line::Begin { test, size } => write!(f, "begin test={} size={size}", test.name()),
            Line::Result(m) => write!(
                f,
                "result test={} size={} bytes={} ranks={} iters={} min_us={:.3} \
                 median_us={:.3} max_us={:.3} algorithm={}",
                m.test.name(),
                m.size,
                m.bytes,
                m.ranks,
                m.iters,
                m.min_us,
                m.median_us,
                m.max_us,
                m.algorithm
            ),
            Line::Failed { test, size, what } => {
                write!(f, "failed test={} size={size} what={what}", test.name())
            }
            Line::Skipped { test, size, why } => {
                write!(f, "skipped test={} size={size} what={why}", test.name())
            }
            Line::Done => f.write_str("done"),
        }
    }
}

/// The `key=value` fields of a line, in order; `what` takes the rest of the line.
struct Fields<'a> {
    kind: &'a str,
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Fields<'a> {
    fn split(body: &'a str) -> Result<Fields<'a>, String> {
        let (kind, mut rest) = body.split_once(' ').unwrap_or((body, ""));
        let mut pairs = Vec::new();
        while !rest.is_empty() {
            if let Some(what) = rest.strip_prefix("what=") {
                pairs.push(("what", what));
                break;
            }
            let (word, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let (k, v) = word
                .split_once('=')
                .ok_or(format!("field {word:?} is not key=value"))?;
            pairs.push((k, v));
            rest = tail;
        }
        Ok(Fields { kind, pairs })
    }

    fn str(&self, key: &str) -> Result<&'a str, String> {
        self.pairs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .ok_or(format!("{} line without {key}=", self.kind))
    }

    fn num<T: std::str::FromStr>(&self, key: &str) -> Result<T, String> {
        let v = self.str(key)?;
        v.parse()
            .map_err(|_| format!("{} line: {key}={v:?} is not a number", self.kind))
    }

    fn test(&self) -> Result<Test, String> {
        let v = self.str("test")?;
        Test::from_name(v).ok_or(format!("{} line: unknown test {v:?}", self.kind))
    }
}

impl Line {
    /// Parses one line of output (with or without its newline): `None` if it is not a
    /// protocol line (no [`PREFIX`]), else the line or what is wrong with it.
    pub fn parse(line: &str) -> Option<Result<Line, String>> {
        let body = line.strip_prefix(PREFIX)?.trim_end_matches(['\n', '\r']);
        Some(Line::parse_body(body))
    }

    fn parse_body(body: &str) -> Result<Line, String> {
        let f = Fields::split(body)?;
        Ok(match f.kind {
            "setup" => Line::Setup(Setup {
                ranks: f.num("ranks")?,
                hosts: f.num("hosts")?,
                host0: f.str("host0")?.to_string(),
                partner: f.num("partner")?,
                partner_host: f.str("partner_host")?.to_string(),
                oversubscribed: f.num::<u8>("oversubscribed")? != 0,
                segment: f.num("segment")?,
                measurements: f.num("measurements")?,
                memory: f.num("memory")?,
            }),
            "begin" => Line::Begin {
                test: f.test()?,
                size: f.num("size")?,
            },
            "result" => Line::Result(Measurement {
                test: f.test()?,
                size: f.num("size")?,
                bytes: f.num("bytes")?,
                ranks: f.num("ranks")?,
                iters: f.num("iters")?,
                min_us: f.num("min_us")?,
                median_us: f.num("median_us")?,
                max_us: f.num("max_us")?,
                algorithm: f.str("algorithm")?.to_string(),
            }),
            "failed" => Line::Failed {
                test: f.test()?,
                size: f.num("size")?,
                what: f.str("what")?.to_string(),
            },
            "skipped" => Line::Skipped {
                test: f.test()?,
                size: f.num("size")?,
                why: f.str("what")?.to_string(),
            },
            "done" => Line::Done,
            other => return Err(format!("unknown line kind {other:?}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coll::Op;

    fn round_trip(l: Line) {
        let text = format!("{l}\n");
        assert_eq!(Line::parse(&text), Some(Ok(l)), "{text}");
    }

    #[test]
    fn every_kind_round_trips() {
        round_trip(Line::Setup(Setup {
            ranks: 4,
            hosts: 2,
            host0: "pi1".into(),
            partner: 2,
            partner_host: "pi2".into(),
            oversubscribed: true,
            segment: 32768,
            measurements: 105,
            memory: 1 << 30,
        }));
        round_trip(Line::Begin {
            test: Test::Coll(Op::Allreduce),
            size: 1 << 20,
        });
        round_trip(Line::Result(Measurement {
            test: Test::PingPong,
            size: 8,
            bytes: 8,
            ranks: 2,
            iters: 1000,
            min_us: 3.25,
            median_us: 3.5,
            max_us: 10.125,
            algorithm: "-".into(),
        }));
        round_trip(Line::Failed {
            test: Test::Coll(Op::Gather),
            size: 64,
            what: "wrong result on rank 3".into(),
        });
        round_trip(Line::Skipped {
            test: Test::Coll(Op::Alltoall),
            size: 16 << 20,
            why: "needs 512 MiB".into(),
        });
        round_trip(Line::Done);
    }

    #[test]
    fn other_lines_are_not_protocol_lines() {
        assert_eq!(Line::parse("hello from rank 0\n"), None);
        assert_eq!(Line::parse(" @pirun-bench done"), None);
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let err = |s: &str| Line::parse(s).unwrap().unwrap_err();
        assert!(err("@pirun-bench nonsense").contains("unknown line kind"));
        assert!(err("@pirun-bench begin test=allreduce").contains("size="));
        assert!(err("@pirun-bench begin test=frob size=1").contains("unknown test"));
        assert!(err("@pirun-bench begin test=bcast size=x").contains("not a number"));
        assert!(err("@pirun-bench begin test=bcast size").contains("key=value"));
    }
}
