//! End-to-end tests of the control protocol between `pirun` and its ranks.
//!
//! The ranks are this very test binary: started with `PIRUN_FAKE_RANK` set (pirun passes
//! its environment on), `main` plays a rank that speaks the protocol through
//! `pirun::contract` — Welcome, Ready, Peers, PeerExited, Panicked — instead of running
//! the tests. That keeps these tests independent of the runtime library being written
//! concurrently. Hence `harness = false`, and a small runner below that prints libtest's
//! summary line.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, UnwindSafe};

use common::*;
use pirun::contract::{self, ControlMsg};

/// Selects the fake-rank behaviour in the child.
const FAKE_VAR: &str = "PIRUN_FAKE_RANK";
const SECS: u64 = 30;

fn main() {
    if let Ok(mode) = std::env::var(FAKE_VAR) {
        std::process::exit(fake_rank(&mode));
    }
    let tests: &[(&str, fn())] = &[
        (
            "welcome_carries_one_secret_per_job",
            welcome_carries_one_secret_per_job,
        ),
        (
            "fence_hands_every_rank_the_peer_table",
            fence_hands_every_rank_the_peer_table,
        ),
        (
            "ranks_hear_about_exited_peers",
            ranks_hear_about_exited_peers,
        ),
        (
            "a_reported_panic_is_named_in_the_final_line",
            a_reported_panic_is_named_in_the_final_line,
        ),
        (
            "a_wrong_rank_in_ready_closes_only_that_channel",
            a_wrong_rank_in_ready_closes_only_that_channel,
        ),
    ];
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let (mut passed, mut failed, mut filtered) = (0, 0, 0);
    println!("\nrunning {} tests", tests.len());
    for (name, test) in tests {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            filtered += 1;
            continue;
        }
        if run_one(*test) {
            println!("test {name} ... ok");
            passed += 1;
        } else {
            println!("test {name} ... FAILED");
            failed += 1;
        }
    }
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {verdict}. {passed} passed; {failed} failed; 0 ignored; 0 measured; \
         {filtered} filtered out\n"
    );
    if failed > 0 {
        std::process::exit(101);
    }
}

fn run_one(test: impl FnOnce() + UnwindSafe) -> bool {
    catch_unwind(test).is_ok()
}

/// A `pirun` whose ranks are this binary in fake-rank `mode`.
fn fake_job(n: u32, mode: &str) -> std::process::Command {
    let mut cmd = pirun();
    cmd.env(FAKE_VAR, mode)
        .args(["-n", &n.to_string(), "--oversubscribe"])
        .arg(std::env::current_exe().expect("own path"));
    cmd
}

// ---------------------------------------------------------------------------------------
// The tests.

fn welcome_carries_one_secret_per_job() {
    let out = run_with_timeout(&mut fake_job(3, "welcome"), SECS);
    assert!(out.status.success(), "{}", describe(&out));
    let lines = sorted_lines(&out);
    assert_eq!(lines.len(), 3, "{}", describe(&out));
    let secrets: Vec<&str> = lines.iter().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert!(
        secrets.iter().all(|s| *s == secrets[0]),
        "one secret per job: {lines:?}"
    );
    assert_eq!(secrets[0].len(), 64);
    assert!(
        lines.iter().all(|l| l.ends_with(" secret-not-in-env")),
        "{lines:?}"
    );

    let again = run_with_timeout(&mut fake_job(1, "welcome"), SECS);
    let other = stdout(&again);
    assert!(!other.contains(secrets[0]), "a fresh secret for every job");
}

fn fence_hands_every_rank_the_peer_table() {
    let out = run_with_timeout(&mut fake_job(4, "fence"), SECS);
    assert!(out.status.success(), "{}", describe(&out));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let table: String = (0..4)
        .map(|r| format!(" 127.0.0.1:{}@{}", 40000 + r, host.trim()))
        .collect();
    let expected: Vec<String> = (0..4).map(|r| format!("{r} peers{table}")).collect();
    assert_eq!(sorted_lines(&out), expected, "{}", describe(&out));
}

fn ranks_hear_about_exited_peers() {
    // Rank 1 exits (code 0) without ever sending Ready: the fence never completes, and
    // the others learn about it instead of waiting forever.
    let out = run_with_timeout(&mut fake_job(3, "exit-watch"), SECS);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        sorted_lines(&out),
        [
            "0 saw rank 1 end with Code(0)",
            "2 saw rank 1 end with Code(0)"
        ],
        "{}",
        describe(&out)
    );
}

fn a_reported_panic_is_named_in_the_final_line() {
    let out = run_with_timeout(&mut fake_job(3, "panic"), SECS);
    assert_eq!(out.status.code(), Some(101), "{}", describe(&out));
    let err = stderr(&out);
    let report: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("ending the job"))
        .collect();
    assert_eq!(report.len(), 1, "{err}");
    assert!(report[0].starts_with("pirun: rank 1 (pid "), "{err}");
    assert!(
        report[0]
            .ends_with("exited with code 101: panicked at fake/rank.rs:10:5: boom; ending the job"),
        "{err}"
    );
}

fn a_wrong_rank_in_ready_closes_only_that_channel() {
    let out = run_with_timeout(&mut fake_job(2, "wrong-ready"), SECS);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stderr(&out).contains("rank 1 on host"),
        "{}",
        describe(&out)
    );
    assert!(
        stderr(&out).contains("Ready claiming to be rank 7"),
        "{}",
        describe(&out)
    );
    assert_eq!(sorted_lines(&out), ["0 done", "1 done"]);
}

// ---------------------------------------------------------------------------------------
// The fake rank.

fn env_u32(name: &str) -> u32 {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} not set"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number"))
}

/// Plays one rank; returns its exit code.
fn fake_rank(mode: &str) -> i32 {
    let rank = env_u32(contract::ENV_RANK);
    let fd = env_u32(contract::ENV_CONTROL_FD) as i32;
    // SAFETY: the launcher handed us this descriptor for our exclusive use.
    let mut chan = unsafe { UnixStream::from_raw_fd(fd) };
    let Ok(Some(ControlMsg::Welcome { secret })) = ControlMsg::read_from(&mut chan) else {
        eprintln!("rank {rank}: no Welcome");
        return 1;
    };
    let addr: SocketAddr = format!("127.0.0.1:{}", 40000 + rank).parse().unwrap();
    let ready = ControlMsg::Ready { rank, addr };
    let out = &mut std::io::stdout();
    match mode {
        "welcome" => {
            let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            let env = std::fs::read("/proc/self/environ").unwrap_or_default();
            let cmdline = std::fs::read("/proc/self/cmdline").unwrap_or_default();
            let leaked = [env, cmdline]
                .iter()
                .any(|v| contains(v, &secret) || contains(v, hex.as_bytes()));
            let verdict = if leaked {
                "secret-leaked"
            } else {
                "secret-not-in-env"
            };
            writeln!(out, "{rank} {hex} {verdict}").unwrap();
            0
        }
        "fence" => {
            ready.write_to(&mut chan).unwrap();
            match ControlMsg::read_from(&mut chan) {
                Ok(Some(ControlMsg::Peers { peers })) => {
                    let table: String = peers
                        .iter()
                        .map(|p| format!(" {}@{}", p.addr, p.host))
                        .collect();
                    writeln!(out, "{rank} peers{table}").unwrap();
                    0
                }
                other => {
                    eprintln!("rank {rank}: expected Peers, got {other:?}");
                    1
                }
            }
        }
        "exit-watch" => {
            if rank == 1 {
                return 0;
            }
            ready.write_to(&mut chan).unwrap();
            // The first message after Ready is rank 1's exit (the fence never completes).
            match ControlMsg::read_from(&mut chan) {
                Ok(Some(ControlMsg::PeerExited { rank: r, how })) => {
                    writeln!(out, "{rank} saw rank {r} end with {how:?}").unwrap();
                    0
                }
                other => {
                    eprintln!("rank {rank}: expected PeerExited, got {other:?}");
                    1
                }
            }
        }
        "panic" => {
            if rank == 1 {
                let msg = ControlMsg::Panicked {
                    rank,
                    message: "boom".into(),
                    location: "fake/rank.rs:10:5".into(),
                };
                msg.write_to(&mut chan).unwrap();
                return 101;
            }
            // The others wait (on the channel) until the job ends them.
            while let Ok(Some(_)) = ControlMsg::read_from(&mut chan) {}
            0
        }
        "wrong-ready" => {
            let claimed = if rank == 1 { 7 } else { rank };
            ControlMsg::Ready {
                rank: claimed,
                addr,
            }
            .write_to(&mut chan)
            .unwrap();
            writeln!(out, "{rank} done").unwrap();
            0
        }
        _ => {
            eprintln!("unknown fake-rank mode {mode}");
            2
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
