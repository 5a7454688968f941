//! `pirun bench` run as a user runs it: a short benchmark on two ranks gives a table with
//! every test, a CSV with one row per measurement and a well-formed SVG; the algorithm
//! shown is the one the ranks ran (an `-x` override included); bad arguments are usage
//! errors (exit 2) that say what is wrong; a rank started by a different pirun version
//! says so. Every run is bounded by the harness's hard timeout and kept short (few
//! sizes and iterations).

mod common;

use common::{assert_ok, describe, pirun, stderr, stdout, Running, TempDir};

/// Runs `pirun ARGS` to completion (at most `secs` seconds).
fn run(args: &[&str], secs: u64) -> std::process::Output {
    Running::start(pirun().args(args)).wait(secs)
}

const TESTS: [&str; 9] = [
    "pingpong",
    "barrier",
    "bcast",
    "reduce",
    "allreduce",
    "gather",
    "scatter",
    "allgather",
    "alltoall",
];

#[test]
fn a_short_run_gives_the_table_the_csv_and_the_plot() {
    let dir = TempDir::new();
    let (csv, svg) = (dir.path().join("b.csv"), dir.path().join("b.svg"));
    let out = run(
        &[
            "bench",
            "-n",
            "2",
            "--oversubscribe",
            "--sizes",
            "1,1K",
            "--iters",
            "20",
            "--time-limit",
            "5",
            "--csv",
            csv.to_str().unwrap(),
            "--svg",
            svg.to_str().unwrap(),
        ],
        60,
    );
    assert_ok(&out);
    let table = stdout(&out);
    assert!(
        table.contains("pirun bench: 2 ranks on 1 host; ping-pong between rank 0"),
        "{}",
        describe(&out)
    );
    assert!(table.contains("latency α = "), "{table}");
    let rows: Vec<&str> = table
        .lines()
        .skip_while(|l| !l.starts_with("test "))
        .skip(1)
        .collect();
    for test in TESTS {
        let n = rows
            .iter()
            .filter(|l| l.starts_with(&format!("{test} ")))
            .count();
        let want = if test == "barrier" { 1 } else { 2 };
        assert_eq!(n, want, "rows of {test}:\n{table}");
    }
    assert!(
        !table.contains("@pirun-bench"),
        "report lines must not be forwarded"
    );

    // CSV: a header and one row per measurement, each with every column.
    let text = std::fs::read_to_string(&csv).expect("the CSV was written");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&header[..3], ["test", "size_bytes", "payload_bytes"]);
    let col = |name| header.iter().position(|&h| h == name).unwrap();
    let body: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(
        body.len(),
        17,
        "2 ping-pong, 1 barrier, 7 x 2 collectives:\n{text}"
    );
    for row in &body {
        assert_eq!(row.len(), header.len(), "{row:?}");
        let median: f64 = row[col("median_us")].parse().expect("a median");
        assert!(median > 0.0 && median.is_finite(), "{row:?}");
        assert!(row[col("error")].is_empty(), "{row:?}");
        assert!(!row[col("model_us")].is_empty(), "a model time: {row:?}");
    }
    let reduce_1 = body
        .iter()
        .find(|r| r[0] == "allreduce" && r[1] == "1")
        .unwrap();
    assert_eq!(reduce_1[col("payload_bytes")], "8", "a whole f64");

    // SVG: well-formed XML naming every test.
    let text = std::fs::read_to_string(&svg).expect("the SVG was written");
    let doc = roxmltree::Document::parse(&text).expect("the SVG is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let words: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    for test in TESTS {
        assert!(
            words.iter().any(|w| w.starts_with(test)),
            "{test} in the legend: {words:?}"
        );
    }
}

#[test]
fn the_algorithm_shown_is_the_one_the_ranks_ran() {
    let out = run(
        &[
            "bench",
            "-n",
            "2",
            "--oversubscribe",
            "allreduce",
            "-x",
            "PIRUN_ALLREDUCE_ALGORITHM=ring",
            "--sizes",
            "8,64K",
            "--iters",
            "10",
        ],
        60,
    );
    assert_ok(&out);
    let table = stdout(&out);
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("allreduce"))
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(rows.iter().all(|r| r.contains(" ring ")), "{table}");
    assert!(
        !table.lines().any(|l| l.starts_with("bcast")),
        "only the tests asked for, and the ping-pong"
    );
    assert_eq!(
        table.lines().filter(|l| l.starts_with("pingpong")).count(),
        2
    );
}

/// Two "hosts" that are this machine, reached through a launch agent that runs the
/// command here: rank 0 runs behind a proxy, so its report lines come back relayed, and
/// the ping-pong partner is on the other host.
#[test]
fn rank_0_behind_a_proxy_reports_through_it() {
    let routable = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .is_ok_and(|o| !String::from_utf8_lossy(&o.stdout).trim().is_empty());
    if !routable {
        eprintln!("bench: no non-loopback address here; skipping the two-host run");
        return;
    }
    let dir = TempDir::new();
    let agent = dir.path().join("agent");
    std::fs::write(&agent, "#!/bin/sh\nhost=$1; shift\nexec sh -c \"$*\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Running::start(
        pirun()
            .env_remove("PIRUN_PROXY_PATH")
            .env_remove("SSH_CONNECTION")
            .args(["bench", "--launch-agent", agent.to_str().unwrap()])
            .args(["--proxy-path", env!("CARGO_BIN_EXE_pirun")])
            .args([
                "-x",
                common::MARKER_VAR,
                "--host",
                "fake1:1,fake2:1",
                "-n",
                "2",
            ])
            .args(["bcast", "--sizes", "1K,64K", "--iters", "10"]),
    )
    .wait(60);
    assert_ok(&out);
    let table = stdout(&out);
    assert!(
        table.contains("2 ranks on 2 hosts; ping-pong between rank 0 (fake1) and rank 1 (fake2)"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        table.lines().filter(|l| l.starts_with("bcast ")).count(),
        2,
        "{table}"
    );
}

#[test]
fn bad_arguments_are_usage_errors() {
    for (args, says) in [
        (&["bench", "allreduse"][..], "unknown test `allreduse`"),
        (&["bench", "--sizes", "1,8X"], "bad size \"8X\""),
        (&["bench", "--iters", "0"], "bad --iters"),
        (&["bench", "--time-limit", "-3"], "bad --time-limit"),
        (&["bench", "-n", "1"], "needs at least 2 ranks"),
        (
            &["bench", "--output-dir", "/tmp/x", "-n", "2"],
            "--output-dir",
        ),
    ] {
        let out = run(args, 20);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", describe(&out));
        assert!(stdout(&out).is_empty(), "{args:?}: {}", describe(&out));
    }
}

#[test]
fn a_rank_of_another_pirun_version_says_so() {
    let out = run(&["--bench-rank", "0.0.0-other", "--tests", "pingpong"], 20);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the launcher's is 0.0.0-other") && err.contains("same pirun"),
        "{err}"
    );
}
