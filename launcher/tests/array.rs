//! `pirun --array`: job arrays, end to end. Every run is bounded by a hard deadline and
//! everything it started is killed by PID when the test ends (see `common`). The last
//! test runs on the simulated cluster of `scripts/testbed` (skipped without root or
//! `ip netns`), brought up and taken down by the test itself.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::testbed::{skip_reason, Testbed};
use common::*;

/// Bound for one run that should end quickly (hang detection only).
const SECS: u64 = 60;

/// `pirun --array SPEC -n SLOTS --oversubscribe ARGS...`.
fn array(spec: &str, slots: u32, args: &[&str]) -> Command {
    let mut cmd = pirun();
    cmd.args(["--array", spec, "-n", &slots.to_string(), "--oversubscribe"])
        .args(args);
    cmd
}

fn run(cmd: &mut Command) -> Output {
    Running::start(cmd).wait(SECS)
}

/// The summary line (the last line of stderr).
fn summary(out: &Output) -> String {
    stderr(out).lines().last().unwrap_or_default().to_string()
}

/// A task whose duration varies with its index, so that tasks finish out of order.
const SHUFFLE: &str = "i={}; case $((i % 5)) in 0) sleep 0.3;; 1) sleep 0.1;; esac; \
                       echo line one of $i; printf 'line two of %s\\n' $i";

#[test]
fn ordered_output_equals_the_sequential_loop() {
    let out = run(&mut array("1-60", 4, &["--", "sh", "-c", SHUFFLE]));
    assert_ok(&out);
    // The same script run by a sequential shell loop.
    let script = SHUFFLE.replace("{}", "$1");
    let reference = Command::new("sh")
        .arg("-c")
        .arg("for i in $(seq 1 60); do sh -c \"$0\" task $i; done")
        .arg(script.replace("sleep 0.3", ":").replace("sleep 0.1", ":"))
        .output()
        .unwrap();
    assert_eq!(stdout(&out), String::from_utf8_lossy(&reference.stdout));
    assert_eq!(stdout(&out).lines().count(), 120);
    let s = summary(&out);
    assert!(
        s.starts_with("pirun: array: 60 done, 0 failed, 0 retried in "),
        "{}",
        describe(&out)
    );
}

#[test]
fn placeholders_and_index_variables() {
    let out = run(&mut array(
        "3-4",
        2,
        &[
            "sh",
            "-c",
            "echo \"$0|$1|$PIRUN_ARRAY_INDEX $LSB_JOBINDEX $SLURM_ARRAY_TASK_ID $PBS_ARRAYID|$2\"",
            "x{}y",
            "{}{}",
            "{1}",
        ],
    ));
    assert_ok(&out);
    assert_eq!(stdout(&out), "x3y|33|3 3 3 3|3\nx4y|44|4 4 4 4|4\n");
    // Output without a final newline passes byte for byte, as the loop would print it.
    let out = run(&mut array("1-3", 2, &["printf", "%s,", "{}"]));
    assert_ok(&out);
    assert_eq!(stdout(&out), "1,2,3,");
}

#[test]
fn index_lists_and_steps() {
    let out = run(&mut array("9,1-3,20-30:5,7", 3, &["echo", "{}"]));
    assert_ok(&out);
    assert_eq!(stdout(&out), "9\n1\n2\n3\n20\n25\n30\n7\n");
    for bad in ["5-1", "1-9:0", "x", "1,,2"] {
        let out = run(&mut array(bad, 1, &["true"]));
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", describe(&out));
        assert!(
            stderr(&out).contains("2-1000, 1-99:2 or 1,5,7-9"),
            "{}",
            describe(&out)
        );
    }
    let out = run(&mut array("1", 1, &["./prog{}"]));
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(stderr(&out).contains("contains a placeholder"));
}

#[test]
fn array_file_lines_and_fields() {
    let dir = TempDir::new();
    let file = dir.path().join("inputs");
    std::fs::write(&file, "alpha beta gamma\n\n  delta\tepsilon \nzeta\n").unwrap();
    let out = run(pirun()
        .arg("--array-file")
        .arg(&file)
        .args(["-n", "2", "--", "sh", "-c"])
        .arg("echo \"$PIRUN_ARRAY_INDEX [$0] <$1> <$2> <$3>\"")
        .args(["{}", "{1}", "{2}", "{3}"]));
    assert_ok(&out);
    assert_eq!(
        stdout(&out),
        "1 [alpha beta gamma] <alpha> <beta> <gamma>\n\
         3 [  delta\tepsilon ] <delta> <epsilon> <>\n\
         4 [zeta] <zeta> <> <>\n"
    );
    std::fs::write(&file, "\n\n").unwrap();
    let out = run(pirun().arg("--array-file").arg(&file).arg("true"));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(stderr(&out).contains("has no tasks"), "{}", describe(&out));
}

#[test]
fn unordered_prints_the_same_lines() {
    let ordered = run(&mut array("1-40", 4, &["--", "sh", "-c", SHUFFLE]));
    let unordered = run(&mut array(
        "1-40",
        4,
        &["--unordered", "--", "sh", "-c", SHUFFLE],
    ));
    assert_ok(&unordered);
    assert_eq!(sorted_lines(&unordered), sorted_lines(&ordered));
    assert_ne!(
        stdout(&unordered),
        stdout(&ordered),
        "the slow tasks come last"
    );
    // Each task's lines stay together.
    let lines: Vec<&str> = std::str::from_utf8(&unordered.stdout)
        .unwrap()
        .lines()
        .collect();
    for pair in lines.chunks(2) {
        let i = pair[0].strip_prefix("line one of ").unwrap();
        assert_eq!(pair[1], format!("line two of {i}"));
    }
    // --tag-output prefixes stdout too; stderr always carries the index.
    let out = run(&mut array(
        "5-6",
        1,
        &[
            "--tag-output",
            "sh",
            "-c",
            "echo out; printf part; echo err >&2",
        ],
    ));
    assert_ok(&out);
    assert_eq!(stdout(&out), "[5] out\n[5] part\n[6] out\n[6] part\n");
    assert!(
        stderr(&out).starts_with("[5] err\n[6] err\n"),
        "{}",
        describe(&out)
    );
}

#[test]
fn output_dir_gets_one_file_per_task() {
    let dir = TempDir::new();
    let outdir = dir.path().join("out");
    let out = run(array("2-4", 2, &["--output-dir"]).arg(&outdir).args([
        "sh",
        "-c",
        "echo out {}; echo err {} >&2; [ {} != 3 ]",
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(stdout(&out), "", "nothing on the terminal");
    for i in 2..=4 {
        let read = |ext: &str| std::fs::read_to_string(outdir.join(format!("task.{i}.{ext}")));
        assert_eq!(read("out").unwrap(), format!("out {i}\n"));
        assert_eq!(read("err").unwrap(), format!("err {i}\n"));
    }
    assert_eq!(std::fs::read_dir(&outdir).unwrap().count(), 6);
}

#[test]
fn a_failing_task_is_reported_with_index_host_and_code() {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let out = run(&mut array(
        "1-6",
        2,
        &[
            "sh",
            "-c",
            "[ {} != 4 ] || exit 7; [ {} != 5 ] || kill -9 $$; echo {}",
        ],
    ));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(stdout(&out), "1\n2\n3\n6\n");
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines.contains(&format!("pirun: task 4 on {} exited with code 7", host.trim()).as_str()),
        "{err}"
    );
    assert!(
        lines.contains(
            &format!(
                "pirun: task 5 on {} was killed by signal 9 (SIGKILL)",
                host.trim()
            )
            .as_str()
        ),
        "{err}"
    );
    assert!(
        lines[2].starts_with("pirun: array: 4 done, 2 failed, 0 retried in "),
        "{err}"
    );
}

#[test]
fn retries_rerun_a_flaky_task() {
    let dir = TempDir::new();
    // Even tasks fail the first time (the marker file does not exist yet).
    let flaky = format!(
        "m={}/marker.{{}}; if [ $(({{}} % 2)) = 0 ] && [ ! -e $m ]; then touch $m; \
         echo first attempt of {{}}; exit 3; fi; echo {{}} ok",
        dir.path().display()
    );
    let out = run(&mut array(
        "1-6",
        2,
        &["--retries", "1", "sh", "-c", &flaky],
    ));
    assert_ok(&out);
    assert_eq!(
        stdout(&out),
        "1 ok\n2 ok\n3 ok\n4 ok\n5 ok\n6 ok\n",
        "a retried attempt's output is dropped"
    );
    let err = stderr(&out);
    for i in [2, 4, 6] {
        assert!(
            err.contains(&format!("pirun: task {i} on "))
                && err.contains("exited with code 3; retrying (attempt 2 of 2)"),
            "{err}"
        );
    }
    assert!(
        summary(&out).starts_with("pirun: array: 6 done, 0 failed, 3 retried in "),
        "{err}"
    );
    // Failing every time: given up after the last attempt.
    let out = run(&mut array("1", 1, &["--retries", "2", "false"]));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(stderr(&out).contains("exited with code 1 (attempt 3 of 3); giving up"));
    assert!(summary(&out).starts_with("pirun: array: 0 done, 1 failed, 2 retried in "));
}

#[test]
fn signals_stop_every_task() {
    for (sig, code, name) in [
        (libc::SIGTERM, 143, "SIGTERM"),
        (libc::SIGINT, 130, "SIGINT"),
        (libc::SIGHUP, 129, "SIGHUP"),
    ] {
        let dir = TempDir::new();
        let running = Running::start(array("1-100", 2, &["--grace", "5", "sh", "-c"]).arg(
            format!("echo $$ > {}/pid.{{}}; exec sleep 60", dir.path().display()),
        ));
        let pids = wait_for_pid_files(dir.path(), "pid.", 2, 30);
        assert_eq!(pids.len(), 2, "{}", running.output_so_far());
        let t0 = Instant::now();
        running.signal(sig);
        let out = running.wait(SECS);
        assert!(t0.elapsed() < Duration::from_secs(4), "stopped at once");
        assert_eq!(out.status.code(), Some(code), "{}", describe(&out));
        assert!(wait_gone(&pids, 5).is_empty(), "tasks left running");
        let started = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(started, 2, "no task started after the signal");
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "pirun: received {name}; stopping the tasks on every host"
            )),
            "{err}"
        );
        assert!(
            summary(&out).starts_with(&format!(
                "pirun: array stopped ({name}): 0 done, 0 failed, 0 retried, 2 stopped, 98 not run in "
            )),
            "{err}"
        );
    }
}

#[test]
fn timeout_and_a_killed_pirun_leave_no_task() {
    let out = run(&mut array("1-4", 2, &["--timeout", "1", "sleep", "30"]));
    assert_eq!(out.status.code(), Some(124), "{}", describe(&out));
    assert!(
        summary(&out).starts_with(
            "pirun: array stopped (--timeout): 0 done, 0 failed, 0 retried, 2 stopped, \
             2 not run in "
        ),
        "{}",
        describe(&out)
    );
    // pirun SIGKILLed: the tasks die with it (PDEATHSIG), their children too (the guard).
    let dir = TempDir::new();
    let d = dir.path().display();
    let running = Running::start(array("1-10", 2, &["sh", "-c"]).arg(format!(
        "sleep 60 & echo $! > {d}/child.{{}}; echo $$ > {d}/pid.{{}}; wait"
    )));
    let mut pids = wait_for_pid_files(dir.path(), "pid.", 2, 30);
    pids.extend(wait_for_pid_files(dir.path(), "child.", 2, 30));
    assert_eq!(pids.len(), 4, "{}", running.output_so_far());
    running.signal(libc::SIGKILL);
    assert!(wait_gone(&pids, 10).is_empty(), "tasks outlived pirun");
}

#[test]
fn a_missing_program_fails_before_any_task() {
    let out = run(&mut array("1-3", 1, &["/nonexistent/prog", "{}"]));
    assert_eq!(out.status.code(), Some(127), "{}", describe(&out));
    assert_eq!(stdout(&out), "");
}

// ---------------------------------------------------------------------------------------
// On the simulated cluster.

#[test]
fn across_four_hosts_of_the_testbed() {
    if let Some(reason) = skip_reason() {
        eprintln!("array: SKIPPED the testbed test: {reason}");
        return;
    }
    let tb = Testbed::start().unwrap_or_else(|e| panic!("cannot bring the testbed up: {e}"));
    dynamic_dispatch(&tb);
    a_lost_host_has_its_tasks_rerun(&tb);
    tb.down();
}

/// `pirun --array ... --hostfile` on the testbed (this pirun as the proxy, the marker
/// exported to the tasks).
fn on_testbed(tb: &Testbed, spec: &str) -> Command {
    let mut cmd = pirun();
    cmd.env_remove("PIRUN_PROXY_PATH")
        .env_remove("PIRUN_LAUNCH_AGENT")
        .args(["--launch-agent", &tb.agent])
        .args(["--proxy-path", env!("CARGO_BIN_EXE_pirun")])
        .args(["-x", MARKER_VAR, "--hostfile"])
        .arg(&tb.hostfile)
        .args(["--array", spec]);
    cmd
}

/// 200 tasks on 4 hosts of 2 slots; pi1 is slow, so it gets fewer.
fn dynamic_dispatch(tb: &Testbed) {
    let out = run(on_testbed(tb, "1-200")
        .args(["sh", "-c"])
        .arg("[ $(hostname) != pi1 ] || sleep 0.25; echo {} $(hostname) $PIRUN_HOST"));
    assert_ok(&out);
    let mut per_host = std::collections::BTreeMap::new();
    for (i, line) in stdout(&out).lines().enumerate() {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(
            f[0],
            (i + 1).to_string(),
            "in index order: {}",
            describe(&out)
        );
        assert_eq!(f[1], f[2], "{line}");
        *per_host.entry(f[1].to_string()).or_insert(0) += 1;
    }
    assert_eq!(per_host.values().sum::<i32>(), 200, "{}", describe(&out));
    assert_eq!(
        per_host.keys().collect::<Vec<_>>(),
        ["pi1", "pi2", "pi3", "pi4"],
        "every host ran some: {per_host:?}"
    );
    for fast in ["pi2", "pi3", "pi4"] {
        assert!(
            per_host["pi1"] < per_host[fast],
            "the slow host got fewer tasks: {per_host:?}"
        );
    }
    assert!(summary(&out).starts_with("pirun: array: 200 done, 0 failed, 0 retried in "));
}

/// pi3's link is cut while its tasks run: they run again elsewhere and the run succeeds.
fn a_lost_host_has_its_tasks_rerun(tb: &Testbed) {
    let dir = TempDir::new();
    let running = Running::start(on_testbed(tb, "1-24").args(["sh", "-c"]).arg(format!(
        "echo {{}} > {}/started.{{}}.$(hostname); sleep 2; echo {{}}",
        dir.path().display()
    )));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !started_on(dir.path(), "pi3") {
        assert!(Instant::now() < deadline, "{}", running.output_so_far());
        std::thread::sleep(Duration::from_millis(20));
    }
    tb.cut("pi3");
    let out = running.wait(SECS);
    tb.heal_all();
    assert_ok(&out);
    let expected: String = (1..=24).map(|i| format!("{i}\n")).collect();
    assert_eq!(stdout(&out), expected, "{}", describe(&out));
    let err = stderr(&out);
    assert!(err.contains("pirun: lost host pi3 ("), "{err}");
    assert!(err.contains("on the other hosts"), "{err}");
    assert!(
        summary(&out).contains(" rerun after a lost host in "),
        "{err}"
    );
}

fn started_on(dir: &Path, host: &str) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| {
        d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(host)))
    })
}
