//! The example programs, run under `pirun` as a user would run them. `cargo test
//! --workspace` builds the examples before running this file.

mod common;

use std::path::PathBuf;

use common::{assert_ok, pirun, stdout, Running};

/// Path of a built example next to this test binary (`target/<profile>/examples/NAME`).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace` (or `cargo build --examples`) so the examples are built",
        path.display()
    );
    path
}

fn run(n: usize, prog: &str, args: &[&str]) -> std::process::Output {
    Running::start(
        pirun()
            .args(["-n", &n.to_string(), "--oversubscribe"])
            .arg(example(prog))
            .args(args),
    )
    .wait(120)
}

fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

#[test]
fn primes_prints_exactly_what_a_sequential_loop_prints_for_any_rank_count() {
    let expected: String = (2..=1000u64)
        .filter(|&n| is_prime(n))
        .map(|p| format!("{p}\n"))
        .collect();
    assert_eq!(expected.lines().count(), 168);
    for n in [1, 2, 3, 8] {
        let out = run(n, "primes", &["2", "1000"]);
        assert_ok(&out);
        assert_eq!(stdout(&out), expected, "with {n} ranks");
    }
}

#[test]
fn primes_counts_agree_with_known_values_and_both_splits() {
    for n in [1, 3, 8] {
        for split in ["cost", "block"] {
            let out = run(n, "primes", &["1000000", "--count", "--split", split]);
            assert_ok(&out);
            assert_eq!(stdout(&out).trim(), "78498", "{n} ranks, {split} split");
        }
    }
}

#[test]
fn hello_ring_and_pingpong_run() {
    let out = run(4, "hello", &[]);
    assert_ok(&out);
    let mut lines: Vec<String> = stdout(&out)
        .lines()
        .map(|l| l.split(" on ").next().unwrap_or("").to_string())
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        (0..4)
            .map(|r| format!("hello from rank {r} of 4"))
            .collect::<Vec<_>>()
    );

    let out = run(5, "ring", &["20"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("token = 200 (expected 200)"),
        "{}",
        stdout(&out)
    );

    let out = run(
        3,
        "pingpong",
        &["--sizes", "8,100000", "--iters", "20", "--warmup", "2"],
    );
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("pingpong size=8 iters=20 oneway_us="),
        "{text}"
    );
    assert!(
        text.contains("pingpong size=100000 iters=20 oneway_us="),
        "{text}"
    );
}
