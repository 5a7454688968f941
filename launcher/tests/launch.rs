//! End-to-end tests of `pirun` on one host with shell-script ranks: environment, output
//! forwarding, stdin, exit codes, signals, timeouts and cleanup.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// Generous bound for jobs that should end quickly (hang detection only).
const SECS: u64 = 30;

#[test]
fn every_rank_gets_the_launch_contract_in_its_environment() {
    let out = run_with_timeout(
        pirun()
            .args(["-n", "3", "--oversubscribe", "sh", "-c"])
            .arg(
                "echo \"$PIRUN_RANK $PIRUN_SIZE $PIRUN_LOCAL_RANK $PIRUN_LOCAL_SIZE $PIRUN_HOST \
             $PIRUN_HOST_CORES $PIRUN_JOB_ID $PIRUN_BIND_ADDR $PIRUN_CONTROL_FD \
             $(readlink /proc/$$/fd/$PIRUN_CONTROL_FD | cut -c1-7)\"",
            ),
        SECS,
    );
    assert!(out.status.success(), "{}", describe(&out));
    let lines = sorted_lines(&out);
    assert_eq!(lines.len(), 3, "{}", describe(&out));
    let cores = std::thread::available_parallelism()
        .unwrap()
        .get()
        .to_string();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut job_ids = Vec::new();
    for (rank, line) in lines.iter().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 10, "{line}");
        assert_eq!(f[0], rank.to_string(), "PIRUN_RANK in {line}");
        assert_eq!(f[1], "3", "PIRUN_SIZE in {line}");
        assert_eq!(f[2], rank.to_string(), "PIRUN_LOCAL_RANK in {line}");
        assert_eq!(f[3], "3", "PIRUN_LOCAL_SIZE in {line}");
        assert_eq!(f[4], host.trim(), "PIRUN_HOST in {line}");
        assert_eq!(f[5], cores, "PIRUN_HOST_CORES in {line}");
        assert_eq!(f[6].len(), 16, "PIRUN_JOB_ID in {line}");
        assert!(f[6].bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
        job_ids.push(f[6].to_string());
        assert_eq!(f[7], "127.0.0.1", "PIRUN_BIND_ADDR in {line}");
        assert!(
            f[8].parse::<u32>().unwrap() > 2,
            "PIRUN_CONTROL_FD in {line}"
        );
        assert_eq!(
            f[9], "socket:",
            "the control fd is an inherited socket: {line}"
        );
    }
    job_ids.dedup();
    assert_eq!(job_ids.len(), 1, "one job id for all ranks");
}

#[test]
fn ranks_start_with_an_empty_signal_mask() {
    // `grep` runs as the rank itself (a shell would reset the mask on its own).
    let out = run_with_timeout(
        pirun().args(["-n", "2", "grep", "^SigBlk", "/proc/self/status"]),
        SECS,
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(sorted_lines(&out), ["SigBlk:\t0000000000000000"; 2]);
}

#[test]
fn only_the_own_control_socket_is_inherited() {
    // Each rank lists the sockets among its open descriptors: exactly its control fd.
    let out = run_with_timeout(
        pirun()
            .args(["-n", "2", "--oversubscribe", "sh", "-c"])
            .arg(
                "n=0; for f in /proc/$$/fd/*; do case $(readlink $f) in socket:*) \
             n=$((n+1)); s=${f##*/};; esac; done; echo \"$n $s $PIRUN_CONTROL_FD\"",
            ),
        SECS,
    );
    assert!(out.status.success(), "{}", describe(&out));
    for line in sorted_lines(&out) {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f[0], "1", "one socket: {line}");
        assert_eq!(f[1], f[2], "and it is PIRUN_CONTROL_FD: {line}");
    }
}

#[test]
fn np_alias_x_exports_and_wdir() {
    let dir = TempDir::new();
    let out = run_with_timeout(
        pirun()
            .env("PIRUN_TEST_PASSED", "from-launcher")
            .args([
                "-np",
                "2",
                "-x",
                "PIRUN_TEST_SET=a=b",
                "-x",
                "PIRUN_TEST_PASSED",
            ])
            .arg("--wdir")
            .arg(dir.path())
            .args([
                "sh",
                "-c",
                "echo \"$PIRUN_TEST_SET $PIRUN_TEST_PASSED $(pwd)\"",
            ]),
        SECS,
    );
    assert!(out.status.success(), "{}", describe(&out));
    let want = format!("a=b from-launcher {}", dir.path().display());
    assert_eq!(sorted_lines(&out), [want.clone(), want]);
}

#[test]
fn without_n_one_rank_per_core() {
    let out = run_with_timeout(pirun().args(["sh", "-c", "echo $PIRUN_SIZE"]), SECS);
    assert!(out.status.success(), "{}", describe(&out));
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(sorted_lines(&out), vec![cores.to_string(); cores]);
}

#[test]
fn more_ranks_than_cores_needs_oversubscribe() {
    let dir = TempDir::new();
    let cores = std::thread::available_parallelism().unwrap().get();
    let n = (cores + 1).to_string();
    let out = run_with_timeout(
        pirun()
            .args(["-n", &n, "sh", "-c", "touch started.$PIRUN_RANK"])
            .current_dir(dir.path()),
        SECS,
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        stderr(&out).contains("--oversubscribe"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing ran"
    );

    let out = run_with_timeout(
        pirun()
            .args([
                "-n",
                &n,
                "--oversubscribe",
                "sh",
                "-c",
                "touch started.$PIRUN_RANK",
            ])
            .current_dir(dir.path()),
        SECS,
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), cores + 1);
}

#[test]
fn missing_or_non_executable_program_is_named_before_anything_starts() {
    let out = run_with_timeout(pirun().args(["-n", "1", "pirun-no-such-program"]), SECS);
    assert_eq!(out.status.code(), Some(127), "{}", describe(&out));
    assert!(
        stderr(&out).contains("pirun-no-such-program"),
        "{}",
        describe(&out)
    );

    let dir = TempDir::new();
    let script = dir.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let out = run_with_timeout(pirun().args(["-n", "1"]).arg(&script), SECS);
    assert_eq!(out.status.code(), Some(126), "{}", describe(&out));
    assert!(
        stderr(&out).contains("not-executable.sh"),
        "{}",
        describe(&out)
    );
    assert!(stdout(&out).is_empty(), "{}", describe(&out));
}

#[test]
fn tag_output_prefixes_each_line_with_the_rank() {
    let out = run_with_timeout(
        pirun().args([
            "-n",
            "3",
            "--oversubscribe",
            "--tag-output",
            "sh",
            "-c",
            "echo out $PIRUN_RANK; echo more; echo err $PIRUN_RANK >&2",
        ]),
        SECS,
    );
    assert!(out.status.success(), "{}", describe(&out));
    let mut expected = Vec::new();
    for r in 0..3 {
        expected.push(format!("[{r}] more"));
        expected.push(format!("[{r}] out {r}"));
    }
    expected.sort();
    assert_eq!(sorted_lines(&out), expected);
    let mut err: Vec<&str> = std::str::from_utf8(&out.stderr).unwrap().lines().collect();
    err.sort();
    assert_eq!(err, ["[0] err 0", "[1] err 1", "[2] err 2"]);
}

#[test]
fn long_lines_from_eight_ranks_are_never_interleaved() {
    // Each rank writes 5 lines of 100 000 copies of its digit; `tr` writes them in
    // small chunks, so the pipes deliver partial lines all the time.
    const LEN: usize = 100_000;
    let script = format!(
        "for i in 1 2 3 4 5; do head -c {LEN} /dev/zero | tr '\\0' \"$PIRUN_RANK\"; echo; done"
    );
    for tag in [false, true] {
        let mut cmd = pirun();
        cmd.args(["-n", "8", "--oversubscribe"]);
        if tag {
            cmd.arg("--tag-output");
        }
        let out = run_with_timeout(cmd.args(["sh", "-c", &script]), SECS);
        assert!(out.status.success(), "{:?}", out.status);
        let text = stdout(&out);
        let mut per_rank = [0; 8];
        for line in text.lines() {
            let (prefix, body) = if tag { line.split_at(4) } else { ("", line) };
            assert_eq!(body.len(), LEN, "a line was cut or mixed (tag {tag})");
            let digit = body.as_bytes()[0];
            assert!(body.bytes().all(|b| b == digit), "mixed line (tag {tag})");
            let rank = (digit - b'0') as usize;
            if tag {
                assert_eq!(prefix, format!("[{rank}] "));
            }
            per_rank[rank] += 1;
        }
        assert_eq!(per_rank, [5; 8], "tag {tag}");
    }
}

#[test]
fn output_without_a_final_newline_is_flushed_at_exit() {
    let out = run_with_timeout(
        pirun().args([
            "-n",
            "2",
            "--tag-output",
            "sh",
            "-c",
            "printf 'line\\npartial %s' $PIRUN_RANK; printf 'err-partial' >&2",
        ]),
        SECS,
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        sorted_lines(&out),
        ["[0] line", "[0] partial 0", "[1] line", "[1] partial 1"]
    );
    assert_eq!(
        stderr(&out).matches("err-partial\n").count(),
        2,
        "{}",
        describe(&out)
    );
}

#[test]
fn stdin_goes_to_rank_zero_only() {
    let mut cmd = pirun();
    cmd.args([
        "-n",
        "3",
        "--oversubscribe",
        "sh",
        "-c",
        "n=0; while read l; do n=$((n+1)); last=$l; done; echo \"$PIRUN_RANK $n $last\"",
    ])
    .stdin(Stdio::piped());
    let mut running = Running::start(&mut cmd);
    let mut stdin = running.stdin().expect("piped stdin");
    // More than a pipe buffer, so that forwarding has to wait for rank 0 to read.
    for i in 0..20_000 {
        writeln!(stdin, "input line {i}").unwrap();
    }
    drop(stdin); // end of file must reach rank 0
    let out = running.wait(SECS);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        sorted_lines(&out),
        ["0 20000 input line 19999", "1 0 ", "2 0 "]
    );
}

#[test]
fn output_dir_gets_one_file_per_rank_and_stream() {
    let dir = TempDir::new();
    let out_dir = dir.path().join("new/sub");
    let out = run_with_timeout(
        pirun()
            .args(["-n", "2", "--output-dir"])
            .arg(&out_dir)
            .args([
                "sh",
                "-c",
                "echo out $PIRUN_RANK; printf 'err %s' $PIRUN_RANK >&2",
            ]),
        SECS,
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    for r in 0..2 {
        let read = |ext| std::fs::read_to_string(out_dir.join(format!("rank.{r}.{ext}"))).unwrap();
        assert_eq!(read("out"), format!("out {r}\n"));
        assert_eq!(read("err"), format!("err {r}"));
    }
}

#[test]
fn a_failing_rank_ends_the_job_with_its_exit_code() {
    let dir = TempDir::new();
    // Rank 2 waits until the others have recorded their pids, then exits with 3.
    let script = "if [ $PIRUN_RANK = 2 ]; then \
                      i=0; while [ $(ls | wc -l) -lt 3 ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i+1)); done; \
                      exit 3; \
                  fi; echo $$ > pid.$PIRUN_RANK; exec sleep 60";
    let out = run_with_timeout(
        pirun()
            .args(["-n", "4", "--oversubscribe", "sh", "-c", script])
            .current_dir(dir.path()),
        SECS,
    );
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let err = stderr(&out);
    let report: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("ending the job"))
        .collect();
    assert_eq!(report.len(), 1, "exactly one report line: {err}");
    assert!(report[0].contains("rank 2 (pid "), "{err}");
    assert!(report[0].contains("exited with code 3"), "{err}");
    let pids = wait_for_pid_files(dir.path(), "pid.", 3, 1);
    assert_eq!(pids.len(), 3);
    assert_eq!(
        wait_gone(&pids, 5),
        Vec::<i32>::new(),
        "ranks survived the job"
    );
}

#[test]
fn a_rank_killed_by_a_signal_gives_128_plus_the_signal() {
    let out = run_with_timeout(
        pirun().args([
            "-n",
            "2",
            "sh",
            "-c",
            "if [ $PIRUN_RANK = 1 ]; then kill -9 $$; fi; exec sleep 60",
        ]),
        SECS,
    );
    assert_eq!(out.status.code(), Some(137), "{}", describe(&out));
    let err = stderr(&out);
    assert!(err.contains("rank 1 (pid "), "{err}");
    assert!(err.contains("signal 9 (SIGKILL)"), "{err}");
}

#[test]
fn timeout_ends_the_job_with_its_own_code() {
    let out = run_with_timeout(
        pirun().args([
            "-n",
            "2",
            "--timeout",
            "0.5",
            "--grace",
            "0.5",
            "sleep",
            "60",
        ]),
        SECS,
    );
    assert_eq!(out.status.code(), Some(124), "{}", describe(&out));
    assert!(stderr(&out).contains("timed out"), "{}", describe(&out));
}

#[test]
fn ranks_ignoring_sigterm_are_killed_after_the_grace_period() {
    let out = run_with_timeout(
        pirun().args([
            "-n",
            "2",
            "--grace",
            "0.3",
            "sh",
            "-c",
            "trap '' TERM; if [ $PIRUN_RANK = 0 ]; then exit 5; fi; \
             while :; do sleep 0.05; done",
        ]),
        SECS,
    );
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
}

#[test]
fn sigterm_to_pirun_is_forwarded_to_the_ranks_and_their_children() {
    let dir = TempDir::new();
    // Each rank (a shell) waits for a child `sleep` in its process group. The forwarded
    // SIGTERM must reach both: the trap reports how the child ended.
    let script = "trap 'wait $c; echo \"term $PIRUN_RANK child $?\"; exit 0' TERM; \
                  sleep 60 & c=$!; echo $$ > pid.$PIRUN_RANK; wait";
    let mut cmd = pirun();
    cmd.args(["-n", "2", "sh", "-c", script])
        .current_dir(dir.path());
    let running = Running::start(&mut cmd);
    let pids = wait_for_pid_files(dir.path(), "pid.", 2, SECS);
    assert_eq!(
        pids.len(),
        2,
        "ranks did not start: {}",
        running.output_so_far()
    );
    running.signal(libc::SIGTERM);
    let out = running.wait(SECS);
    assert_eq!(out.status.code(), Some(128 + 15), "{}", describe(&out));
    assert_eq!(
        sorted_lines(&out),
        ["term 0 child 143", "term 1 child 143"],
        "{}",
        describe(&out)
    );
    assert!(
        stderr(&out).contains("received SIGTERM"),
        "{}",
        describe(&out)
    );
    assert_eq!(wait_gone(&pids, 5), Vec::<i32>::new());
}

#[test]
fn nothing_survives_pirun_being_sigkilled() {
    // Each rank is a shell with a child `sleep`: PDEATHSIG kills the shell, the guard
    // kills the child.
    let dir = TempDir::new();
    let mut cmd = pirun();
    cmd.args([
        "-n",
        "3",
        "--oversubscribe",
        "sh",
        "-c",
        "sleep 60 & echo $! > child.$PIRUN_RANK; echo $$ > pid.$PIRUN_RANK; wait",
    ])
    .current_dir(dir.path());
    let running = Running::start(&mut cmd);
    let ranks = wait_for_pid_files(dir.path(), "pid.", 3, SECS);
    assert_eq!(
        ranks.len(),
        3,
        "ranks did not start: {}",
        running.output_so_far()
    );
    let children = wait_for_pid_files(dir.path(), "child.", 3, SECS);
    assert_eq!(children.len(), 3);
    running.signal(libc::SIGKILL);
    assert_eq!(
        wait_gone(&ranks, 5),
        Vec::<i32>::new(),
        "ranks outlived pirun"
    );
    assert_eq!(
        wait_gone(&children, 5),
        Vec::<i32>::new(),
        "rank children outlived pirun"
    );
    let out = running.wait(SECS);
    assert_eq!(out.status.code(), None, "killed by a signal");
}

#[test]
fn garbage_on_the_control_channel_does_not_break_the_job() {
    let out = run_with_timeout(
        pirun().args([
            "-n",
            "2",
            "sh",
            "-c",
            "printf garbage >&$PIRUN_CONTROL_FD; sleep 0.1; echo ok $PIRUN_RANK",
        ]),
        SECS,
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(sorted_lines(&out), ["ok 0", "ok 1"]);
    let err = stderr(&out);
    for r in 0..2 {
        assert!(
            err.contains(&format!("rank {r} on host")) && err.contains("malformed"),
            "{err}"
        );
    }
}

#[test]
fn a_blocked_pirun_uses_no_cpu() {
    let mut cmd = pirun();
    cmd.args(["-n", "2", "sleep", "60"]);
    let running = Running::start(&mut cmd);
    std::thread::sleep(Duration::from_millis(300));
    let ticks = || -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", running.pid())).unwrap();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let before = ticks();
    std::thread::sleep(Duration::from_secs(1));
    let used = ticks() - before;
    // Clock ticks are 10 ms; a busy loop would use ~100 in a second.
    assert!(
        used <= 2,
        "pirun used {used} ticks of CPU in 1 s while blocked"
    );
    running.signal(libc::SIGTERM);
    let out = running.wait(SECS);
    assert_eq!(out.status.code(), Some(143), "{}", describe(&out));
}
