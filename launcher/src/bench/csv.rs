//! `pirun bench --csv FILE`: one row per measurement, and one per measurement without
//! figures or skipped (with its `error`), for spreadsheets and scripts. Times are µs, sizes bytes;
//! cells with no value are empty. Values never contain commas or quotes except `error`,
//! which is quoted.

use std::fmt::Write;

use super::report::Report;

/// The header row.
pub const HEADER: &str = "test,size_bytes,payload_bytes,ranks,algorithm,iters,min_us,median_us,\
max_us,mbps,model_us,ratio,best_algorithm,best_model_us,alpha_us,beta_us_per_byte,error";

/// The whole file.
pub fn render(r: &Report) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    let opt = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.4}"));
    let (alpha, beta) = match &r.model {
        Ok(h) => (
            format!("{:.4}", h.alpha_us),
            format!("{:.9}", h.beta_us_per_byte),
        ),
        Err(_) => (String::new(), String::new()),
    };
    for row in &r.rows {
        let m = &row.m;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{:.4},{:.4},{:.4},{},{},{},{},{},{alpha},{beta},",
            m.test.name(),
            m.size,
            m.bytes,
            m.ranks,
            m.algorithm,
            m.iters,
            m.min_us,
            m.median_us,
            m.max_us,
            opt(row.mbps),
            opt(row.model_us),
            opt(row.ratio()),
            row.best.map_or("", |b| b.0),
            opt(row.best.map(|b| b.1)),
        );
    }
    let failed = r.failures.iter().map(|(t, s, w)| (t, s, w.clone()));
    let skipped = r
        .skipped
        .iter()
        .map(|(t, s, w)| (t, s, format!("skipped: {w}")));
    for (test, size, what) in failed.chain(skipped) {
        let _ = writeln!(
            out,
            "{},{size},,,,,,,,,,,,,{alpha},{beta},\"{}\"",
            test.name(),
            what.replace('"', "\"\"")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::Row;
    use pirun_benches::coll::Op;
    use pirun_benches::line::Measurement;
    use pirun_benches::model::FitError;
    use pirun_benches::plan::Test;

    #[test]
    fn every_row_has_every_column() {
        let r = Report {
            setup: None,
            model: Err(FitError::TooFewSizes(1)),
            rows: vec![Row {
                m: Measurement {
                    test: Test::Coll(Op::Barrier),
                    size: 0,
                    bytes: 0,
                    ranks: 3,
                    iters: 1000,
                    min_us: 1.0,
                    median_us: 2.0,
                    max_us: 3.0,
                    algorithm: "dissemination".into(),
                },
                mbps: None,
                model_us: None,
                best: None,
            }],
            failures: vec![(Test::Coll(Op::Bcast), 8, "said \"no\"".into())],
            skipped: vec![(Test::Coll(Op::Alltoall), 1 << 30, "needs 8 GiB".into())],
        };
        let text = render(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        let columns = HEADER.split(',').count();
        assert_eq!(lines[1].split(',').count(), columns, "{}", lines[1]);
        assert!(lines[1].starts_with("barrier,0,0,3,dissemination,1000,1.0000,2.0000,3.0000,"));
        assert_eq!(lines[2].split(',').count(), columns);
        assert!(lines[2].ends_with(",\"said \"\"no\"\"\""), "{}", lines[2]);
        assert!(lines[3].starts_with("alltoall,1073741824,"), "{}", lines[3]);
        assert!(
            lines[3].ends_with(",\"skipped: needs 8 GiB\""),
            "{}",
            lines[3]
        );
    }
}
