"""Shared helpers of the comparison drivers `run`, `multihost` and `testbed` (next to this file).

Owns: the contenders' launch description (`Contender`), building the C twins in `c/`,
running one bounded job (`run_job`: every process under `timeout -k 3 LIMIT`, ended only
through our own `timeout` child, by pid), the parsers of the programs' output lines, the
markdown table printer, and the simulated cluster of `scripts/testbed` (`Testbed`, the
lock shared with the multihost tests, signal handling for an always-run cleanup).

Nothing here chooses what to measure or how often: that is each driver's business.
"""

import fcntl
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TESTBED = REPO / "scripts" / "testbed"
NET = "10.77.0.0/24"      # the testbed's network (scripts/testbed)
GW_IP = "10.77.0.254"     # the testbed's bridge: the root namespace, where launchers run
# The multihost tests serialize on this lock; the drivers take it too for as long as a
# testbed is up, so tests and benchmarks never share (or tear down) each other's hosts.
TEST_LOCK = "/tmp/pirun-multihost-tests.lock"
PATIENCE = 600            # seconds to wait for the lock or for another testbed to go away

VERBOSE = False
PREFIX = ""               # prepended to log lines ("multihost: ")
HUNG = {}                 # contender -> runs that printed their figures but did not exit


def log(msg, always=False):
    """A progress line on stderr (only with VERBOSE unless always)."""
    if VERBOSE or always:
        print(f"{PREFIX}{msg}", file=sys.stderr, flush=True)


def loadavg():
    """The 1, 5 and 15 minute load averages as one string."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def load1():
    """The 1-minute load average."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError):
        return float("nan")


def rotate(xs, k):
    """xs rotated left by k: repetition k's order of the contenders (A B C, B C A, ...)."""
    k %= len(xs)
    return xs[k:] + xs[:k]


def ompi_root_env():
    """Open MPI refuses to run as root without these."""
    if os.geteuid() == 0:
        return {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    return {}


# --------------------------------------------------------------------------------------
# Contenders and the C twins
# --------------------------------------------------------------------------------------

class Contender:
    """One MPI implementation: where its programs are and how to launch them."""

    def __init__(self, name, bindir, launcher, env=None, oversub=(), extra=(), ncores=None):
        self.name = name
        self.bindir = Path(bindir)
        self.launcher = launcher
        self.env = dict(env or {})
        self.oversub = list(oversub)   # flags needed when ranks outnumber cores
        self.extra = list(extra)       # flags always passed to the launcher
        self.paths = {}                # program name -> path, where not in bindir
        self.ncores = ncores or os.cpu_count() or 1

    def prog(self, name):
        return str(self.paths.get(name) or self.bindir / name)

    def cmd(self, n, argv):
        """Launcher command line running argv (a list) on n ranks."""
        over = self.oversub if n > self.ncores else []
        return [self.launcher, "-n", str(n), *over, *self.extra, *argv]

    def full_env(self):
        env = dict(os.environ)
        env.update(self.env)
        return env

    def shell(self, n, argv, limit):
        """One self-contained command string (for hyperfine -N): env + timeout + launcher."""
        envs = [f"{k}={v}" for k, v in self.env.items()]
        pre = ["env", *envs] if envs else []
        return shlex.join(pre + ["timeout", "-k", "3", str(limit)] + self.cmd(n, argv))


MPICC = {"openmpi": "mpicc.openmpi", "mpich": "mpicc.mpich"}


def build_c(peers, programs):
    """Builds c/PROGRAM.c with each peer's mpicc into its bindir, where the source (or a
    shared header) is newer than the binary."""
    src = HERE / "c"
    deps = list(src.glob("*.h"))
    for c in peers:
        c.bindir.mkdir(parents=True, exist_ok=True)
        for p in programs:
            out, s = c.bindir / p, src / f"{p}.c"
            newest = max(x.stat().st_mtime for x in [s, *deps])
            if out.exists() and out.stat().st_mtime >= newest:
                continue
            cmd = [MPICC[c.name], "-O2", "-Wall", "-Wextra", "-o", str(out), str(s)]
            log("build: " + " ".join(cmd))
            subprocess.run(cmd, check=True, timeout=120)


# --------------------------------------------------------------------------------------
# Running one bounded job
# --------------------------------------------------------------------------------------

class Result:
    def __init__(self, out, rc, wall, status, err=""):
        self.out, self.rc, self.wall, self.status, self.err = out, rc, wall, status, err
        self.peaks = {}


def descendants(pid):
    """All live descendants of pid (via /proc/PID/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    kids = [int(k) for k in f.read().split()]
                found += kids
                todo += kids
        except OSError:
            pass
    return found


def proc_peak(pid):
    """(comm, VmHWM in KiB) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return comm, int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


CURRENT = []  # Popen objects of the jobs in progress (our own `timeout` children)


def end_current():
    """SIGTERM to every `timeout` child of ours still running (by pid): on the way out."""
    for p in list(CURRENT):
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except OSError:
                pass


def run_job(name, cmd, env, limit, done=None, grace=3.0, sample=False):
    """Runs cmd under `timeout -k 3 limit`; returns a Result (output, status, wall time).

    done(lines) -> bool says when all expected output has arrived; if the job has not
    exited `grace` seconds later it is ended (SIGTERM to our own `timeout` child, which
    passes it on to the launcher) and reported as status "hung-after-output": its
    printed figures are still valid, its wall time is not (counted in HUNG[name]).
    sample: also record the peak RSS (VmHWM) of every process in the job's tree.
    """
    cmd = ["timeout", "-k", "3", str(limit), *cmd]
    log(f"[{name}] " + shlex.join(cmd))
    errf = tempfile.TemporaryFile(mode="w+")
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, env=env,
                         stdin=subprocess.DEVNULL)
    CURRENT.append(p)
    peaks, stop = {}, threading.Event()

    def sampler():
        while not stop.is_set():
            for d in descendants(p.pid):
                r = proc_peak(d)
                if r:
                    old = peaks.get(d, (r[0], 0))
                    peaks[d] = (r[0], max(old[1], r[1]))
            time.sleep(0.001)

    th = threading.Thread(target=sampler, daemon=True) if sample else None
    if th:
        th.start()
    buf, complete_at, status = b"", None, "ok"
    fd = p.stdout.fileno()
    try:
        while True:
            now = time.monotonic()
            if complete_at is not None and now - complete_at > grace:
                p.send_signal(signal.SIGTERM)  # our own child `timeout`, by pid
                status = "hung-after-output"
                HUNG[name] = HUNG.get(name, 0) + 1
                break
            if now - t0 > limit + 10:  # timeout itself should have ended it by now
                p.kill()
                status = "timeout"
                break
            r, _, _ = select.select([fd], [], [], 0.05)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                buf += chunk
                if complete_at is None and done and \
                        done(buf.decode(errors="replace").splitlines()):
                    complete_at = time.monotonic()
        try:
            rest = p.communicate(timeout=limit + 10)[0] or b""
        except subprocess.TimeoutExpired:
            p.kill()
            rest = p.communicate()[0] or b""
    finally:
        if p.poll() is None:  # only on an exception (e.g. a signal): end our own child
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        CURRENT.remove(p)
        stop.set()
        if th:
            th.join()
    wall = time.monotonic() - t0
    out = (buf + rest).decode(errors="replace")
    errf.seek(0)
    err = errf.read()
    errf.close()
    if status == "ok":
        if p.returncode in (124, 137):
            status = "timeout"
        elif p.returncode != 0:
            status = f"exit {p.returncode}"
    res = Result(out, p.returncode, wall, status, err)
    res.peaks = peaks
    if status != "ok":
        log(f"[{name}] status {status}; stderr tail: {err.strip()[-300:]}")
    return res


def running(exes):
    """Pids of live processes whose executable is one of exes."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/exe") in exes:
                found.append(int(pid))
        except OSError:
            pass
    return found


# --------------------------------------------------------------------------------------
# Output of the programs, and tables
# --------------------------------------------------------------------------------------

PP_RE = re.compile(r"pingpong size=(\d+) iters=(\d+) oneway_us=([\d.]+) mbps=([\d.]+)")
COLL_OPS = ("barrier", "bcast", "reduce", "allreduce", "gather", "scatter", "allgather",
            "alltoall")
COLL_RE = re.compile(r"^coll op=(\w+) size=(\d+) n=(\d+) iters=(\d+) median_us=([\d.]+) "
                     r"min_us=([\d.]+) max_us=([\d.]+)", re.M)
COLL_ERR_RE = re.compile(r"^coll_error op=(\w+) size=(\d+) n=(\d+) (.*)$", re.M)
COLL_LINE_RE = re.compile(r"^coll(?:_error)? op=")


def coll_iters(n_arg, size):
    """Mirror of collbench's Config::iters_for (timed calls at `size` bytes)."""
    scaled = n_arg * 8192 // max(size, 8192)
    return min(max(scaled, max(n_arg // 50, 3)), n_arg)


def coll_argv(prog, ops, sizes, iters, tlimit, warmup=None):
    """collbench's command line."""
    argv = [prog, "--ops", ",".join(ops), "--sizes", ",".join(map(str, sizes)),
            "--iters", str(iters), "--time-limit", f"{tlimit:g}"]
    return argv + (["--warmup", str(warmup)] if warmup is not None else [])


def coll_done(nlines):
    """done() for run_job: collbench has printed nlines result (or error) lines."""
    return lambda ls: sum(1 for l in ls if COLL_LINE_RE.match(l)) >= nlines


def fmt_us(v):
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 1000 else f"{v:.0f}"


def fmt_size(z):
    return ("-" if z == 0 else f"{z >> 20} MiB" if z >= 1 << 20 and z % (1 << 20) == 0
            else f"{z >> 10} KiB" if z >= 1024 and z % 1024 == 0 else f"{z} B")


def markdown_table(head, rows):
    """A markdown table with padded columns."""
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    fmt_row = lambda r: "| " + " | ".join(x.ljust(w) for x, w in zip(r, widths)) + " |"
    out = [fmt_row(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return "\n".join(out + [fmt_row(r) for r in rows])


# --------------------------------------------------------------------------------------
# The simulated cluster (scripts/testbed)
# --------------------------------------------------------------------------------------

class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted(f"signal {signum}")


def catch_signals():
    """SIGINT/SIGTERM/SIGHUP raise Interrupted, so `finally` blocks take the testbed down."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)


def ignore_signals():
    """While cleaning up: let the cleanup finish."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)


def run_quiet(cmd, limit=180, check=True):
    """A bounded helper command (testbed, ip); returns CompletedProcess."""
    p = subprocess.run(["timeout", "-k", "3", str(limit), *cmd], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} exited {p.returncode}: {p.stderr.strip()}")
    return p


def take_test_lock():
    """Opens and exclusively locks TEST_LOCK (waiting up to PATIENCE s); returns the file,
    which holds the lock until it is closed."""
    lock = open(TEST_LOCK, "a")
    t0, told = time.monotonic(), False
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except BlockingIOError:
            if not told:
                log(f"{TEST_LOCK} is held (multihost tests?); waiting up to {PATIENCE} s",
                    always=True)
                told = True
            if time.monotonic() - t0 > PATIENCE:
                lock.close()
                raise RuntimeError(f"{TEST_LOCK} held for {PATIENCE} s")
            time.sleep(2)


def other_testbed_up():
    """Why another testbed seems to be up (pi* namespaces or the bridge), else None."""
    ns = run_quiet(["ip", "netns", "list"], check=False).stdout
    names = [l.split()[0] for l in ns.splitlines() if re.match(r"^pi\d+\b", l)]
    if names:
        return "namespaces " + " ".join(names[:8])
    if Path("/sys/class/net/pirunbr0").exists():
        return "bridge pirunbr0"
    return None


class Testbed:
    """One `scripts/testbed` cluster under our own --dir: up() waits for any other one to
    go away; down() is safe to call at any time, also twice."""

    def __init__(self, hosts, dir_, rate):
        self.hosts = hosts
        self.dir = dir_
        self.rate = rate
        self.up_done = False
        self.names = [f"pi{k}" for k in range(1, hosts + 1)]

    def tb(self, *args, check=True):
        return run_quiet([str(TESTBED), "--dir", self.dir, *args], check=check)

    def up(self):
        t0 = time.monotonic()
        told = False
        while True:
            why = other_testbed_up()
            if why is None:
                self.up_done = True  # from here on, down() must run (up rolls back itself too)
                p = self.tb("up", str(self.hosts), "--rate", self.rate, check=False)
                if p.returncode == 0:
                    break
                busy = "already exists" in p.stderr or "lock" in p.stderr
                if not busy:
                    raise RuntimeError(f"testbed up {self.hosts} failed: {p.stderr.strip()}")
                why = p.stderr.strip()
            if time.monotonic() - t0 > PATIENCE:
                raise RuntimeError(f"another testbed stayed up for {PATIENCE} s ({why})")
            if not told:
                log(f"another testbed is up ({why}); waiting (up to {PATIENCE} s)", always=True)
                told = True
            time.sleep(2)
        self.cfg = self.tb("ssh-config").stdout.strip()
        self.ssh_wrapper = str(Path(self.dir, "bin", "ssh"))  # `ssh -F cfg "$@"`
        self.sshd = {h: Path(self.dir, "run", f"{h}.sshd.pid").read_text().strip()
                     for h in self.names}
        log(f"testbed up: {self.hosts} hosts at {self.rate} in "
            f"{time.monotonic() - t0:.1f} s ({self.dir})", always=True)

    def hostfile(self, slots, path):
        Path(path).write_text(self.tb("hostfile", "--slots", str(slots)).stdout)

    def set_bashrc(self, empty_file, on):
        """Bind-mount (on) or unmount (off) an empty file over /root/.bashrc in every host."""
        for h in self.names:
            if on:
                self.tb("exec", h, "mount", "--bind", empty_file, "/root/.bashrc")
            else:
                self.tb("exec", h, "umount", "/root/.bashrc")

    def exec_cmd(self, host, *cmd):
        """A command line running cmd inside host (its network, hostname, mounts)."""
        return [str(TESTBED), "--dir", self.dir, "exec", host, *cmd]

    def busy_pids(self):
        """Processes in the hosts' namespaces other than the listening sshds."""
        pids = []
        for h in self.names:
            out = run_quiet(["ip", "netns", "pids", h], check=False).stdout.split()
            pids += [p for p in out if p != self.sshd[h]]
        return pids

    def link_bytes(self, host):
        """(bytes sent to host, bytes sent by host) so far, from its switch-side veth."""
        d = Path("/sys/class/net", f"pirun-{host}", "statistics")
        try:
            return int((d / "tx_bytes").read_text()), int((d / "rx_bytes").read_text())
        except (OSError, ValueError):
            return None

    def down(self):
        if not self.up_done:
            return
        self.up_done = False
        p = self.tb("down", check=False)
        if p.returncode != 0:
            log(f"WARNING: testbed down failed: {p.stderr.strip()}", always=True)
        else:
            log(f"testbed down ({self.dir})", always=True)
