//! `pirun` across hosts, on the simulated Pi cluster of `scripts/testbed`: four network
//! namespaces `pi1..pi4` (10.77.0.1-4) with their own sshd, hostname and private
//! `/opt/pirun-host`, on a bridge where this machine is 10.77.0.254.
//!
//! The testbed is shared by every test of this file: `main` brings it up once (in a
//! directory of its own, under a lock file so that two runs of this file do not collide,
//! waiting while another testbed is up), runs the tests one after the other, and takes it
//! down at the end — also when a test fails (each runs under `catch_unwind`), when one
//! exceeds its hard limit (a watchdog thread), and on SIGINT/SIGTERM/SIGHUP (a signal
//! thread). A testbed left behind by a run that was SIGKILLed is taken down by the next
//! run. Every process a test starts carries a marker in its environment (passed to remote
//! ranks with `-x`) and is killed by PID when the test ends.
//!
//! The namespaces share the filesystem, so `pirun` itself serves as `--proxy-path` and the
//! examples run at their absolute paths; a host's private directory makes a program exist
//! on some hosts only. Without root or `ip netns` the file is skipped with a message;
//! `harness = false` because libtest has no "after all tests" hook to tear down in.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::testbed::{skip_reason, Testbed};
use common::*;

/// Bound for one `pirun` run that should end quickly (hang detection only).
const SECS: u64 = 60;
/// Hard limit of one test; the watchdog tears everything down beyond it.
const TEST_LIMIT: Duration = Duration::from_secs(240);
/// Selects a rank behaviour when this binary runs as a rank.
const RANK_MODE: &str = "PIRUN_MH_RANK";

type TestFn = fn(&Testbed);

/// Tests that need no testbed: the "remote" hosts are this machine, reached through a
/// fake launch agent that runs the command here (and prints a login banner first).
const LOCAL_TESTS: &[(&str, fn())] = &[
    (
        "proxies_started_by_a_fake_agent_run_the_ranks",
        proxies_through_a_fake_agent,
    ),
    (
        "a_missing_proxy_behind_a_fake_agent_is_named",
        missing_proxy_behind_a_fake_agent,
    ),
    (
        "a_proxy_kills_its_ranks_when_pirun_is_killed",
        proxy_kills_ranks_when_pirun_dies,
    ),
];

const TESTS: &[(&str, TestFn)] = &[
    (
        "primes_on_4_hosts_prints_what_a_sequential_loop_prints",
        primes_on_4_hosts,
    ),
    (
        "ranks_get_their_host_and_a_routable_address",
        ranks_get_host_and_address,
    ),
    (
        "the_launcher_host_joins_with_the_address_the_others_see",
        launcher_host_joins,
    ),
    (
        "output_and_exit_codes_cross_hosts",
        output_and_exit_codes_cross_hosts,
    ),
    ("signals_reach_every_host", signals_reach_every_host),
    (
        "stdin_reaches_rank_0_on_a_remote_host",
        stdin_reaches_remote_rank_0,
    ),
    (
        "a_cut_link_ends_the_job_naming_the_host",
        a_cut_link_ends_the_job,
    ),
    (
        "a_killed_pirun_leaves_no_rank_on_any_host",
        a_killed_pirun_leaves_no_rank,
    ),
    (
        "a_program_missing_on_one_host_fails_before_any_rank_starts",
        a_program_missing_on_one_host,
    ),
    (
        "a_program_for_another_cpu_is_refused_naming_the_host",
        a_program_for_another_cpu,
    ),
    (
        "a_malformed_hostfile_is_a_clear_error",
        a_malformed_hostfile,
    ),
    (
        "preload_binary_runs_a_program_only_the_launcher_has",
        preload_binary,
    ),
    (
        "a_missing_remote_pirun_or_a_refused_login_is_named",
        missing_proxy_and_refused_login,
    ),
];

static TESTBED: OnceLock<Arc<Testbed>> = OnceLock::new();
/// The test running now and its deadline, for the watchdog.
static CURRENT: Mutex<Option<(&'static str, Instant)>> = Mutex::new(None);

fn main() {
    if let Ok(mode) = std::env::var(RANK_MODE) {
        std::process::exit(rank_main(&mode));
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in LOCAL_TESTS {
            println!("{name}: test");
        }
        for (name, _) in TESTS {
            println!("{name}: test");
        }
        return;
    }
    let exact = args.iter().any(|a| a == "--exact");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let wanted = |name: &str| {
        filters.is_empty()
            || filters.iter().any(|f| {
                if exact {
                    name == f.as_str()
                } else {
                    name.contains(f.as_str())
                }
            })
    };
    let local: Vec<&(&str, fn())> = LOCAL_TESTS.iter().filter(|(n, _)| wanted(n)).collect();
    let bed: Vec<&(&str, TestFn)> = TESTS.iter().filter(|(n, _)| wanted(n)).collect();
    let filtered = LOCAL_TESTS.len() + TESTS.len() - local.len() - bed.len();
    println!("\nrunning {} tests", local.len() + bed.len());
    handle_signals();
    std::thread::spawn(watchdog);
    let (mut passed, mut failed, mut ignored) = (0, 0, 0);
    let mut record = |name: &'static str, t0: Instant, ok: bool| {
        let secs = t0.elapsed().as_secs_f64();
        if ok {
            println!("test {name} ... ok ({secs:.1} s)");
            passed += 1;
        } else {
            println!("test {name} ... FAILED ({secs:.1} s)");
            failed += 1;
        }
    };
    for (name, test) in local {
        *CURRENT.lock().unwrap() = Some((name, Instant::now() + TEST_LIMIT));
        let t0 = Instant::now();
        let ok = catch_unwind(*test).is_ok();
        *CURRENT.lock().unwrap() = None;
        kill_my_processes();
        record(name, t0, ok);
    }
    if !bed.is_empty() {
        if let Some(reason) = skip_reason() {
            println!(
                "multihost: SKIPPED the {} tests on the simulated cluster: {reason}",
                bed.len()
            );
            ignored = bed.len();
        } else {
            let tb = match Testbed::start() {
                Ok(tb) => Arc::new(tb),
                Err(e) => {
                    eprintln!("multihost: cannot bring the testbed up: {e}");
                    std::process::exit(1);
                }
            };
            let _ = TESTBED.set(Arc::clone(&tb));
            for (name, test) in bed {
                *CURRENT.lock().unwrap() = Some((name, Instant::now() + TEST_LIMIT));
                let t0 = Instant::now();
                let ok = catch_unwind(AssertUnwindSafe(|| test(&tb))).is_ok();
                *CURRENT.lock().unwrap() = None;
                kill_my_processes();
                tb.heal_all();
                record(name, t0, ok);
            }
            tb.down();
        }
    }
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {verdict}. {passed} passed; {failed} failed; {ignored} ignored; \
         0 measured; {filtered} filtered out\n"
    );
    if failed > 0 {
        std::process::exit(101);
    }
}

// ---------------------------------------------------------------------------------------
// Tearing down on signals and hangs (the fixture itself is `common::testbed`).

/// Blocks SIGINT/SIGTERM/SIGHUP and tears everything down when one arrives.
fn handle_signals() {
    // SAFETY: sigset manipulation on a local value; the mask is set before any other
    // thread exists, so every thread inherits it and only the waiter takes the signals.
    let set = unsafe {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        let mut set = set.assume_init();
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: waiting on a valid set.
        unsafe { libc::sigwait(&set, &mut sig) };
        emergency(&format!("received signal {sig}"));
    });
}

/// Enforces [`TEST_LIMIT`].
fn watchdog() {
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let current = *CURRENT.lock().unwrap();
        if let Some((name, deadline)) = current {
            if Instant::now() > deadline {
                emergency(&format!(
                    "test {name} exceeded its {} s limit",
                    TEST_LIMIT.as_secs()
                ));
            }
        }
    }
}

/// Kills everything this run started, takes the testbed down, exits.
fn emergency(why: &str) -> ! {
    eprintln!("multihost: {why}; killing everything this run started and taking the testbed down");
    kill_my_processes();
    if let Some(tb) = TESTBED.get() {
        tb.down();
    }
    std::process::exit(1);
}

/// SIGKILLs every process carrying a marker of this test process (pirun, local and
/// remote ranks: remote ranks get the marker through `-x`).
fn kill_my_processes() {
    let prefix = format!("{MARKER_VAR}=mark-{}-", std::process::id());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for pid in entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()) {
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env
            .split(|&b| b == 0)
            .any(|v| v.starts_with(prefix.as_bytes()))
        {
            // SAFETY: kill(2) on a process carrying this run's marker.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.

/// A `pirun` that reaches the testbed: its ssh config, this very pirun as the proxy, the
/// test marker exported to every rank.
fn job(tb: &Testbed) -> Command {
    let mut cmd = pirun();
    cmd.env_remove("PIRUN_PROXY_PATH")
        .env_remove("PIRUN_LAUNCH_AGENT")
        .args(["--launch-agent", &tb.agent])
        .args(["--proxy-path", env!("CARGO_BIN_EXE_pirun")])
        .args(["-x", MARKER_VAR]);
    cmd
}

/// `job` on all four hosts, two slots each.
fn on_testbed(tb: &Testbed, n: u32) -> Command {
    let mut cmd = job(tb);
    cmd.arg("--hostfile")
        .arg(&tb.hostfile)
        .args(["-n", &n.to_string()]);
    cmd
}

/// A built example next to this test binary (`target/<profile>/examples/NAME`).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --examples` (or `cargo test --workspace`) first",
        path.display()
    );
    path
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

/// Waits until `running`'s stdout has `count` lines containing `needle`.
fn wait_for_lines(running: &Running, needle: &str, count: usize, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let so_far = running.output_so_far();
        let stdout_part = so_far.split("\nstderr:\n").next().unwrap_or("");
        if stdout_part.lines().filter(|l| l.contains(needle)).count() >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {count} `{needle}` lines within {secs} s:\n{so_far}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes an executable file.
fn write_exec(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Removes the files a test put into the hosts' private directories, even if it fails.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p).or_else(|_| std::fs::remove_dir_all(p));
        }
    }
}

fn preload_dirs() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("pirun-preload-"))
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------
// The rank side: this binary started by pirun with RANK_MODE set.

fn rank_main(mode: &str) -> i32 {
    match mode {
        // Every rank but 4 waits for a message from rank 4, which never sends one; when
        // rank 4's host is lost, the launcher's PeerExited notice must end the wait.
        "wait-on-4" => {
            // SAFETY: setting a disposition; the job's SIGTERM must not cut the report.
            unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
            let world = match pirun::init() {
                Ok(w) => w,
                Err(e) => {
                    println!("init failed: {e}");
                    return 1;
                }
            };
            let r = world.rank();
            println!("ready {r}");
            let _ = std::io::stdout().flush();
            if r == 4 {
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            match world.recv::<u8>(4usize, 0) {
                Ok(_) => println!("rank {r}: recv from 4 returned a message"),
                Err(e) => println!("rank {r}: recv from 4 failed: {e}"),
            }
            let _ = std::io::stdout().flush();
            std::process::exit(0);
        }
        other => {
            eprintln!("unknown rank mode {other}");
            2
        }
    }
}

// ---------------------------------------------------------------------------------------
// The tests.

fn primes_on_4_hosts(tb: &Testbed) {
    let out = Running::start(
        on_testbed(tb, 8)
            .arg(example("primes"))
            .args(["2", "100000"]),
    )
    .wait(SECS);
    assert_ok(&out);
    let expected: Vec<String> = (2..=100_000u64)
        .filter(|&n| is_prime(n))
        .map(|p| p.to_string())
        .collect();
    let got: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(got.len(), expected.len(), "9592 primes up to 100000");
    assert!(
        got.iter().zip(&expected).all(|(g, e)| g == e),
        "the primes differ from a sequential loop"
    );
}

fn ranks_get_host_and_address(tb: &Testbed) {
    let out = Running::start(
        on_testbed(tb, 8)
            .args(["-x", "MH_VALUE=forty two", "sh", "-c"])
            .arg("echo \"$PIRUN_RANK $(hostname) $PIRUN_HOST $PIRUN_BIND_ADDR $PIRUN_LOCAL_RANK $PIRUN_LOCAL_SIZE $PIRUN_SIZE $MH_VALUE\""),
    )
    .wait(SECS);
    assert_ok(&out);
    let mut lines: Vec<Vec<String>> = stdout(&out)
        .lines()
        .map(|l| l.split(' ').map(str::to_owned).collect())
        .collect();
    lines.sort_by_key(|f| f[0].parse::<u32>().unwrap());
    assert_eq!(lines.len(), 8, "{}", describe(&out));
    for (rank, f) in lines.iter().enumerate() {
        let k = rank / 2 + 1;
        let expected = [
            rank.to_string(),
            format!("pi{k}"),
            format!("pi{k}"),
            format!("10.77.0.{k}"),
            (rank % 2).to_string(),
            "2".into(),
            "8".into(),
            "forty".into(),
            "two".into(),
        ];
        assert_eq!(
            f, &expected,
            "rank {rank}: never 127.0.1.1, the hostname's address on a Pi"
        );
    }
}

fn launcher_host_joins(tb: &Testbed) {
    let hosts = format!("{}:2,pi1:2,pi2:2", this_host());
    let env = Running::start(
        job(tb)
            .args(["--host", &hosts, "-n", "6", "sh", "-c"])
            .arg("echo $PIRUN_RANK $PIRUN_HOST $PIRUN_BIND_ADDR"),
    )
    .wait(SECS);
    assert_ok(&env);
    let here = this_host();
    let expected: Vec<String> = vec![
        format!("0 {here} 10.77.0.254"),
        format!("1 {here} 10.77.0.254"),
        "2 pi1 10.77.0.1".into(),
        "3 pi1 10.77.0.1".into(),
        "4 pi2 10.77.0.2".into(),
        "5 pi2 10.77.0.2".into(),
    ];
    assert_eq!(sorted_lines(&env), expected, "{}", describe(&env));

    // Ranks here and there talk to each other (gatherv to rank 0 here), also with --iface.
    let reference: String = (2..=20_000u64)
        .filter(|&n| is_prime(n))
        .map(|p| format!("{p}\n"))
        .collect();
    for iface in [None, Some("10.77.0.0/24")] {
        let mut cmd = job(tb);
        cmd.args(["--host", &hosts, "-n", "6"]);
        if let Some(i) = iface {
            cmd.args(["--iface", i]);
        }
        let out = Running::start(cmd.arg(example("primes")).args(["2", "20000"])).wait(SECS);
        assert_ok(&out);
        assert_eq!(stdout(&out), reference, "with --iface {iface:?}");
    }
    let bad =
        Running::start(job(tb).args(["--host", &hosts, "-n", "6", "--iface", "eth9", "true"]))
            .wait(SECS);
    assert_eq!(bad.status.code(), Some(1), "{}", describe(&bad));
    assert!(
        stderr(&bad).contains("no interface named `eth9`"),
        "{}",
        describe(&bad)
    );
}

fn output_and_exit_codes_cross_hosts(tb: &Testbed) {
    let t0 = Instant::now();
    let out = Running::start(on_testbed(tb, 8).args(["--tag-output", "sh", "-c"]).arg(
        "echo out $PIRUN_RANK; echo err $PIRUN_RANK >&2; \
         if [ $PIRUN_RANK = 5 ]; then sleep 1; exit 3; fi; exec sleep 30",
    ))
    .wait(SECS);
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "the job ends when rank 5 fails"
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "rank 5's code: {}",
        describe(&out)
    );
    let (o, e) = (stdout(&out), stderr(&out));
    for r in 0..8 {
        assert!(
            o.contains(&format!("[{r}] out {r}\n")),
            "{}",
            describe(&out)
        );
        assert!(
            e.contains(&format!("[{r}] err {r}\n")),
            "{}",
            describe(&out)
        );
    }
    let last = e
        .lines()
        .filter(|l| l.starts_with("pirun: "))
        .collect::<Vec<_>>();
    assert_eq!(last.len(), 1, "one line from pirun: {}", describe(&out));
    assert!(
        last[0].starts_with("pirun: rank 5 (pid ")
            && last[0].ends_with(" on host pi3) exited with code 3; ending the job"),
        "{}",
        last[0]
    );

    let killed = Running::start(
        on_testbed(tb, 8)
            .args(["sh", "-c"])
            .arg("if [ $PIRUN_RANK = 6 ]; then kill -9 $$; fi; exec sleep 30"),
    )
    .wait(SECS);
    assert_eq!(killed.status.code(), Some(137), "{}", describe(&killed));
    assert!(
        stderr(&killed).contains("on host pi4) was killed by signal 9 (SIGKILL); ending the job"),
        "{}",
        describe(&killed)
    );
}

fn signals_reach_every_host(tb: &Testbed) {
    let running =
        Running::start(on_testbed(tb, 8).args(["sh", "-c"]).arg(
            "trap 'echo TERM $PIRUN_RANK $(hostname); exit 0' TERM; echo up; sleep 30 & wait",
        ));
    wait_for_lines(&running, "up", 8, 30);
    running.signal(libc::SIGTERM);
    let out = running.wait(SECS);
    assert_eq!(
        out.status.code(),
        Some(128 + libc::SIGTERM),
        "{}",
        describe(&out)
    );
    for r in 0..8 {
        let line = format!("TERM {r} pi{}", r / 2 + 1);
        assert!(
            stdout(&out).lines().any(|l| l == line),
            "{line}: {}",
            describe(&out)
        );
    }
    assert!(
        stderr(&out).contains("received SIGTERM; forwarding it to the ranks"),
        "{}",
        describe(&out)
    );
}

fn stdin_reaches_remote_rank_0(tb: &Testbed) {
    let data: String = (0..50_000)
        .map(|i| format!("line {i} of the input\n"))
        .collect();
    let mut cksum = Command::new("cksum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    cksum
        .stdin
        .take()
        .unwrap()
        .write_all(data.as_bytes())
        .unwrap();
    let expected = String::from_utf8(cksum.wait_with_output().unwrap().stdout).unwrap();

    let mut cmd = on_testbed(tb, 8);
    cmd.stdin(Stdio::piped()).args(["sh", "-c"]).arg(
        "if [ $PIRUN_RANK = 0 ]; then echo \"$(hostname) $(cksum)\"; else cat; echo \"$PIRUN_RANK saw eof\"; fi",
    );
    let mut running = Running::start(&mut cmd);
    let mut stdin = running.stdin().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(data.as_bytes()));
    let out = running.wait(SECS);
    writer.join().unwrap().unwrap();
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("pi1 {}", expected.trim())),
        "rank 0 on pi1 read it all: {}",
        describe(&out)
    );
    assert_eq!(
        text.lines().filter(|l| l.ends_with("saw eof")).count(),
        7,
        "{}",
        describe(&out)
    );
}

fn a_cut_link_ends_the_job(tb: &Testbed) {
    let exe = std::env::current_exe().unwrap();
    let running = Running::start(
        on_testbed(tb, 8)
            .args(["--grace", "5", "-x", RANK_MODE])
            .env(RANK_MODE, "wait-on-4")
            .arg(exe),
    );
    wait_for_lines(&running, "ready", 8, 30);
    let all = my_processes();
    tb.cut("pi3");
    let cut_at = Instant::now();
    let out = running.wait(SECS);
    let took = cut_at.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "the job ended {took:?} after the cut: {}",
        describe(&out)
    );
    assert_eq!(out.status.code(), Some(255), "{}", describe(&out));
    let err = stderr(&out);
    assert!(err.contains("pirun: lost host pi3 ("), "{}", describe(&out));
    assert!(
        err.contains("its ranks 4, 5 cannot be reached; ending the job"),
        "{}",
        describe(&out)
    );
    // The ranks elsewhere that waited for rank 4 were told it is gone.
    for r in [0, 1, 2, 3, 6, 7] {
        let line = stdout(&out)
            .lines()
            .find(|l| l.starts_with(&format!("rank {r}: recv from 4 failed: ")))
            .unwrap_or_else(|| panic!("rank {r} did not fail naming rank 4: {}", describe(&out)))
            .to_string();
        assert!(line.contains("rank 4"), "{line}");
    }
    tb.heal_all();
    let left = wait_gone(&all, 20);
    assert!(
        left.is_empty(),
        "ranks still alive after the link was restored: {left:?}"
    );
}

/// The pids of the processes carrying a marker of this run now (one test runs at a time).
fn my_processes() -> Vec<i32> {
    let prefix = format!("mark-{}-", std::process::id());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let needle = format!("{MARKER_VAR}={prefix}");
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| {
                    env.split(|&b| b == 0)
                        .any(|v| v.starts_with(needle.as_bytes()))
                })
                .unwrap_or(false)
        })
        .collect()
}

fn a_killed_pirun_leaves_no_rank(tb: &Testbed) {
    let dir = TempDir::new();
    let hosts = format!("{}:2,pi1:2,pi2:2,pi3:2", this_host());
    let running = Running::start(job(tb).args(["--host", &hosts, "-n", "8", "sh", "-c"]).arg(
        format!(
            "echo $$ > {}/pid.$PIRUN_RANK; exec sleep 60",
            dir.path().display()
        ),
    ));
    let pids = wait_for_pid_files(dir.path(), "pid.", 8, 30);
    assert_eq!(
        pids.len(),
        8,
        "every rank wrote its pid: {}",
        running.output_so_far()
    );
    running.signal(libc::SIGKILL);
    let left = wait_gone(&pids, 10);
    assert!(
        left.is_empty(),
        "ranks alive 10 s after pirun was SIGKILLed: {left:?}"
    );
}

fn a_program_missing_on_one_host(tb: &Testbed) {
    let dir = TempDir::new();
    let name = unique("mh-prog");
    let script = format!(
        "#!/bin/sh\ntouch {}/started.$PIRUN_RANK\n",
        dir.path().display()
    );
    let mut files = Vec::new();
    for host in ["pi1", "pi2", "pi3"] {
        let path = tb.hostdir(host).join("bin").join(&name);
        write_exec(&path, script.as_bytes());
        files.push(path);
    }
    let _cleanup = Cleanup(files);
    for program in [name.clone(), format!("/opt/pirun-host/bin/{name}")] {
        let out = Running::start(on_testbed(tb, 8).arg(&program)).wait(SECS);
        assert_eq!(out.status.code(), Some(127), "{}", describe(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("pirun: host pi4: cannot find program `{program}`")),
            "{}",
            describe(&out)
        );
        assert_eq!(err.lines().count(), 1, "{}", describe(&out));
        let started = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(started, 0, "no rank may start anywhere: {started} did");
    }
    // The same hosts without pi4 run it.
    let out = Running::start(
        job(tb)
            .args(["--host", "pi1,pi2,pi3", "-n", "3"])
            .arg(&name),
    )
    .wait(SECS);
    assert_ok(&out);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
}

fn a_program_for_another_cpu(tb: &Testbed) {
    let name = unique("mh-foreign");
    let machine = Command::new("uname").arg("-m").output().unwrap();
    let machine = String::from_utf8(machine.stdout)
        .unwrap()
        .trim()
        .to_string();
    // An ELF header for a CPU this machine is not.
    let (e_machine, foreign) = if machine == "x86_64" {
        (183u16, "aarch64")
    } else {
        (62u16, "x86-64")
    };
    let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
    elf.resize(16, 0);
    elf.extend([2, 0]);
    elf.extend(e_machine.to_le_bytes());
    elf.resize(64, 0);
    let mut files = Vec::new();
    for host in ["pi1", "pi2", "pi3", "pi4"] {
        let path = tb.hostdir(host).join("bin").join(&name);
        if host == "pi2" {
            write_exec(&path, &elf);
        } else {
            write_exec(&path, b"#!/bin/sh\nexit 0\n");
        }
        files.push(path);
    }
    let _cleanup = Cleanup(files);
    let out = Running::start(on_testbed(tb, 8).arg(&name)).wait(SECS);
    assert_eq!(out.status.code(), Some(126), "{}", describe(&out));
    let here = if machine == "x86_64" {
        "x86-64".to_string()
    } else {
        machine
    };
    let expected =
        format!("pirun: host pi2: {name} is {foreign}, pi2 is {here}; build it for {here}");
    assert!(
        stderr(&out).contains(&expected),
        "expected `{expected}`: {}",
        describe(&out)
    );
}

fn a_malformed_hostfile(tb: &Testbed) {
    let dir = TempDir::new();
    let hostfile = dir.path().join("hosts");
    std::fs::write(&hostfile, "pi1 slots=2\npi2 slots=two\n").unwrap();
    let t0 = Instant::now();
    let out = Running::start(
        job(tb)
            .arg("--hostfile")
            .arg(&hostfile)
            .args(["-n", "2", "true"]),
    )
    .wait(SECS);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!("pirun: {}:2: ", hostfile.display())),
        "names file and line: {err}"
    );
    assert!(err.contains("two"), "{err}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "refused before any ssh"
    );
}

fn preload_binary(tb: &Testbed) {
    // /opt/pirun-host of this machine is hidden on the hosts by their private one.
    let dir = PathBuf::from("/opt/pirun-host").join(unique("mh-preload"));
    let program = dir.join("hello");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(example("hello"), &program).unwrap();
    let failing = dir.join("fails");
    write_exec(
        &failing,
        b"#!/bin/sh\necho failing on $(hostname)\nexit 3\n",
    );
    let _cleanup = Cleanup(vec![dir.clone()]);
    let before = preload_dirs();

    let hosts = format!("{}:1,pi1:2,pi2:2,pi3:2,pi4:1", this_host());
    let without =
        Running::start(job(tb).args(["--host", &hosts, "-n", "8"]).arg(&program)).wait(SECS);
    assert_eq!(
        without.status.code(),
        Some(127),
        "only the launcher has it: {}",
        describe(&without)
    );

    let out = Running::start(
        job(tb)
            .args(["--host", &hosts, "-n", "8", "--preload-binary"])
            .arg(&program),
    )
    .wait(SECS);
    assert_ok(&out);
    let here = this_host();
    let mut expected: Vec<String> = (0..8)
        .map(|r| {
            let host = match r {
                0 => here.clone(),
                7 => "pi4".into(),
                r => format!("pi{}", (r + 1) / 2),
            };
            format!("hello from rank {r} of 8 on {host}")
        })
        .collect();
    expected.sort();
    assert_eq!(sorted_lines(&out), expected, "{}", describe(&out));
    assert_eq!(preload_dirs(), before, "the temporary copies are gone");

    let fails = Running::start(
        job(tb)
            .args(["--hostfile"])
            .arg(&tb.hostfile)
            .args(["-n", "8", "--preload-binary"])
            .arg(&failing),
    )
    .wait(SECS);
    assert_eq!(fails.status.code(), Some(3), "{}", describe(&fails));
    assert!(
        stdout(&fails).contains("failing on pi"),
        "{}",
        describe(&fails)
    );
    assert_eq!(preload_dirs(), before, "removed after a failed job too");
}

fn missing_proxy_and_refused_login(tb: &Testbed) {
    let out = Running::start(pirun().env_remove("PIRUN_PROXY_PATH").args([
        "--launch-agent",
        &tb.agent,
        "--proxy-path",
        "/nonexistent/pirun",
        "--host",
        "pi3",
        "true",
    ]))
    .wait(SECS);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(
        stderr(&out).trim(),
        "pirun: host pi3: cannot start the pirun proxy: '/nonexistent/pirun' was not found there; \
         install pirun there or correct --proxy-path",
        "{}",
        describe(&out)
    );

    let on_path = Command::new("ssh")
        .args(tb.agent.split(' ').skip(1))
        .args(["pi3", "command -v pirun"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if on_path.stdout.is_empty() {
        let out = Running::start(pirun().env_remove("PIRUN_PROXY_PATH").args([
            "--launch-agent",
            &tb.agent,
            "--host",
            "pi3",
            "true",
        ]))
        .wait(SECS);
        assert_eq!(
            stderr(&out).trim(),
            "pirun: host pi3: cannot start the pirun proxy: 'pirun' is not on its PATH; install \
             pirun there or pass --proxy-path",
            "{}",
            describe(&out)
        );
    } else {
        eprintln!("multihost: a pirun is on pi3's PATH; not checking the default --proxy-path");
    }

    let refused = Running::start(pirun().args([
        "--launch-agent",
        "ssh -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -o IdentitiesOnly=yes -o IdentityFile=/nonexistent -o LogLevel=ERROR",
        "--host",
        "10.77.0.2",
        "true",
    ]))
    .wait(SECS);
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    let err = stderr(&refused);
    assert!(
        err.starts_with("pirun: host 10.77.0.2: cannot start the pirun proxy: ssh could not log in to 10.77.0.2"),
        "{}",
        describe(&refused)
    );
    assert!(err.contains("Permission denied"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Tests without the testbed: a fake launch agent runs the proxy on this machine.

/// A launch agent that runs `CMD` here (`agent HOST CMD`), printing a login banner first
/// as a chatty `.bashrc` would; and `--host` for two fake hosts.
fn fake_agent(dir: &Path) -> String {
    let agent = dir.join("agent");
    write_exec(
        &agent,
        b"#!/bin/sh\nhost=$1; shift\necho \"Welcome to $host!\"\nexec sh -c \"$*\"\n",
    );
    agent.display().to_string()
}

/// Whether this machine has an address other hosts could reach (the fake hosts need
/// one: ranks never advertise loopback in a multi-host job).
fn has_routable_address() -> bool {
    let out = Command::new("hostname").arg("-I").output();
    out.is_ok_and(|o| !String::from_utf8_lossy(&o.stdout).trim().is_empty())
}

fn fake_job(dir: &Path, proxy: &str) -> Command {
    let mut cmd = pirun();
    cmd.env_remove("PIRUN_PROXY_PATH")
        .env_remove("SSH_CONNECTION")
        .args(["--launch-agent", &fake_agent(dir)])
        .args(["--proxy-path", proxy])
        .args(["-x", MARKER_VAR, "--host", "fake1:2,fake2:2", "-n", "4"]);
    cmd
}

fn proxies_through_a_fake_agent() {
    if !has_routable_address() {
        eprintln!("multihost: no non-loopback address here; skipping the fake-agent job");
        return;
    }
    let dir = TempDir::new();
    let out = Running::start(
        fake_job(dir.path(), env!("CARGO_BIN_EXE_pirun"))
            .args(["--tag-output", "sh", "-c"])
            .arg(
                "echo $PIRUN_RANK $PIRUN_HOST $PIRUN_LOCAL_RANK; echo to stderr >&2; \
         if [ $PIRUN_RANK = 3 ]; then sleep 1; exit 7; fi",
            ),
    )
    .wait(SECS);
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    assert_eq!(
        sorted_lines(&out),
        [
            "[0] 0 fake1 0",
            "[1] 1 fake1 1",
            "[2] 2 fake2 0",
            "[3] 3 fake2 1"
        ],
        "the login banner is not output: {}",
        describe(&out)
    );
    let err = stderr(&out);
    assert_eq!(err.matches("] to stderr\n").count(), 4, "{err}");
    let report: Vec<&str> = err.lines().filter(|l| l.starts_with("pirun: ")).collect();
    assert_eq!(report.len(), 1, "{err}");
    assert!(
        report[0].starts_with("pirun: rank 3 (pid ")
            && report[0].ends_with(" on host fake2) exited with code 7; ending the job"),
        "{err}"
    );
}

fn missing_proxy_behind_a_fake_agent() {
    let dir = TempDir::new();
    let out = Running::start(fake_job(dir.path(), "/nonexistent/pirun").arg("true")).wait(SECS);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let lines: Vec<String> = stderr(&out).lines().map(str::to_owned).collect();
    let expected: Vec<String> = ["fake1", "fake2"]
        .iter()
        .map(|h| {
            format!(
                "pirun: host {h}: cannot start the pirun proxy: '/nonexistent/pirun' was not \
                 found there; install pirun there or correct --proxy-path"
            )
        })
        .collect();
    assert_eq!(lines, expected, "{}", describe(&out));
}

fn proxy_kills_ranks_when_pirun_dies() {
    if !has_routable_address() {
        eprintln!("multihost: no non-loopback address here; skipping the fake-agent job");
        return;
    }
    let dir = TempDir::new();
    let running = Running::start(
        fake_job(dir.path(), env!("CARGO_BIN_EXE_pirun"))
            .args(["sh", "-c"])
            .arg(format!(
                "echo $$ > {}/pid.$PIRUN_RANK; exec sleep 60",
                dir.path().display()
            )),
    );
    let pids = wait_for_pid_files(dir.path(), "pid.", 4, 30);
    assert_eq!(pids.len(), 4, "{}", running.output_so_far());
    running.signal(libc::SIGKILL);
    let left = wait_gone(&pids, 10);
    assert!(
        left.is_empty(),
        "ranks alive 10 s after pirun was SIGKILLed: {left:?}"
    );
}
