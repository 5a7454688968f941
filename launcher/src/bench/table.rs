//! The table `pirun bench` prints on stdout: a header naming the job and the fitted
//! model, then one row per measurement (test, size, algorithm, iterations, min / median /
//! max µs, MB/s, the model's µs and measured/model, and a faster algorithm where the model
//! knows one), then the measurements that gave no figures or were skipped.

use std::fmt::Write;

use pirun_benches::sizes::format_size;

use super::progress::label;
use super::report::{Report, Row};

/// A time in µs with the precision that matters at its size.
pub fn fmt_us(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.2}")
    } else if x < 1000.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

/// The header lines: ranks, hosts, ping-pong pair, oversubscription, model.
pub fn header(r: &Report) -> String {
    let mut s = String::new();
    if let Some(setup) = &r.setup {
        let _ = writeln!(
            s,
            "pirun bench: {} ranks on {} host{}; ping-pong between rank 0 ({}) and rank {} ({})",
            setup.ranks,
            setup.hosts,
            if setup.hosts == 1 { "" } else { "s" },
            setup.host0,
            setup.partner,
            setup.partner_host
        );
        if setup.oversubscribed {
            s.push_str(
                "note: some host runs more ranks than it has cores: the times include waiting \
                 for a core\n",
            );
        }
    }
    match &r.model {
        Ok(h) => {
            let bw = h
                .bandwidth_mbps()
                .map_or("unbounded".to_string(), |b| format!("{} MB/s", fmt_us(b)));
            let _ = writeln!(
                s,
                "α-β model (Hockney fit of the fastest ping-pongs): latency α = {} µs, bandwidth 1/β = {bw}",
                fmt_us(h.alpha_us)
            );
        }
        Err(e) => {
            let _ = writeln!(s, "no α-β model: {e}");
        }
    }
    s
}

/// Column titles, and whether the column is right-aligned.
const COLUMNS: [(&str, bool); 11] = [
    ("test", false),
    ("size", true),
    ("algorithm", false),
    ("iters", true),
    ("min µs", true),
    ("median µs", true),
    ("max µs", true),
    ("MB/s", true),
    ("model µs", true),
    ("ratio", true),
    ("faster (model µs)", false),
];

fn cells(row: &Row) -> [String; 11] {
    let m = &row.m;
    let dash = || "-".to_string();
    [
        m.test.name().to_string(),
        if m.test.sized() {
            format_size(m.size)
        } else {
            dash()
        },
        m.algorithm.clone(),
        m.iters.to_string(),
        fmt_us(m.min_us),
        fmt_us(m.median_us),
        fmt_us(m.max_us),
        row.mbps.map_or_else(dash, fmt_us),
        row.model_us.map_or_else(dash, fmt_us),
        row.ratio().map_or_else(dash, |x| format!("{x:.2}")),
        row.better()
            .map_or(String::new(), |(alg, t)| format!("{alg} ({})", fmt_us(t))),
    ]
}

/// The whole table (header, rows, failures), ready to print.
pub fn render(r: &Report) -> String {
    let mut out = header(r);
    out.push('\n');
    let rows: Vec<[String; 11]> = r.rows.iter().map(cells).collect();
    let width = |i: usize| {
        rows.iter()
            .map(|c| c[i].chars().count())
            .chain([COLUMNS[i].0.chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..COLUMNS.len()).map(width).collect();
    let mut line = |cells: &[String]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            let pad = widths[i].saturating_sub(c.chars().count());
            if COLUMNS[i].1 {
                l.extend(std::iter::repeat_n(' ', pad));
                l.push_str(c);
            } else {
                l.push_str(c);
                l.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&COLUMNS.map(|c| c.0.to_string()));
    for c in &rows {
        line(c);
    }
    for (test, size, what) in &r.failures {
        let _ = writeln!(out, "{}: no figures: {what}", label(*test, *size));
    }
    for (test, size, why) in &r.skipped {
        let _ = writeln!(out, "{}: skipped: {why}", label(*test, *size));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pirun_benches::coll::Op;
    use pirun_benches::line::{Measurement, Setup};
    use pirun_benches::model::Hockney;
    use pirun_benches::plan::Test;

    fn m(test: Test, size: usize, median: f64, alg: &str) -> Measurement {
        Measurement {
            test,
            size,
            bytes: size,
            ranks: 4,
            iters: 10,
            min_us: median * 0.9,
            median_us: median,
            max_us: median * 2.0,
            algorithm: alg.into(),
        }
    }

    #[test]
    fn the_table_has_a_header_a_row_per_measurement_and_the_failures() {
        let h = Hockney {
            alpha_us: 50.0,
            beta_us_per_byte: 0.08,
        };
        let r = Report {
            setup: Some(Setup {
                ranks: 4,
                hosts: 2,
                host0: "pi1".into(),
                partner: 2,
                partner_host: "pi2".into(),
                oversubscribed: false,
                segment: 32768,
                measurements: 3,
                memory: 1 << 30,
            }),
            model: Ok(h),
            rows: vec![
                Row {
                    m: m(Test::PingPong, 8, 50.7, "-"),
                    mbps: Some(8.0 / 50.7),
                    model_us: Some(50.64),
                    best: Some(("-", 50.64)),
                },
                Row {
                    m: m(
                        Test::Coll(Op::Allreduce),
                        1 << 20,
                        300000.0,
                        "recursive_doubling",
                    ),
                    mbps: None,
                    model_us: Some(167872.0),
                    best: Some(("rabenseifner", 126000.0)),
                },
            ],
            failures: vec![(Test::Coll(Op::Gather), 64, "wrong result on rank 3".into())],
            skipped: vec![(Test::Coll(Op::Alltoall), 1 << 30, "needs 8 GiB".into())],
        };
        let t = render(&r);
        assert!(t.contains("4 ranks on 2 hosts; ping-pong between rank 0 (pi1) and rank 2 (pi2)"));
        assert!(
            t.contains("latency α = 50.0 µs, bandwidth 1/β = 12.5 MB/s"),
            "{t}"
        );
        let lines: Vec<&str> = t.lines().collect();
        let head = lines.iter().position(|l| l.starts_with("test ")).unwrap();
        assert!(lines[head + 1].starts_with("pingpong") && lines[head + 1].contains("1.00"));
        let ar = lines[head + 2];
        assert!(
            ar.contains("1 MiB") && ar.contains("300000") && ar.contains("1.79"),
            "{ar}"
        );
        assert!(ar.contains("rabenseifner (126000)"), "{ar}");
        assert_eq!(
            lines[head + 3],
            "gather 64 B: no figures: wrong result on rank 3"
        );
        // Columns line up: every "median µs" cell ends where its title does.
        let end = lines[head].find("median µs").unwrap() + "median µs".len();
        let chars = |l: &str, n: usize| l.chars().take(n).collect::<String>();
        let title_end = chars(lines[head], lines[head][..end].chars().count());
        assert!(title_end.ends_with("median µs"));
        for l in &lines[head + 1..head + 3] {
            let cell = chars(l, lines[head][..end].chars().count());
            assert!(cell.ends_with(|c: char| c.is_ascii_digit()), "{l}");
        }
    }

    #[test]
    fn times_keep_the_digits_that_matter() {
        assert_eq!(fmt_us(3.456), "3.46");
        assert_eq!(fmt_us(123.45), "123.5");
        assert_eq!(fmt_us(123456.7), "123457");
    }
}
