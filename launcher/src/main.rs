//! `pirun`: starts a program as the ranks of a message-passing job, forwards their
//! output, and ends them cleanly.
//!
//! Module map: [`cli`] (command line), [`job`] (policy: fence, ending the job, exit
//! code), [`alloc`] (hosts and rank mapping), [`host`] (the [`host::Host`] abstraction;
//! spawning and supervising the ranks of this machine), [`remote`] (a remote host seen
//! through its proxy: ssh start-up, preparation, relaying), [`proxy`] (`pirun --proxy`,
//! the per-host proxy), [`wire`] (the launcher ↔ proxy protocol), [`control`] (one rank's
//! control channel), [`program`] and [`elf`] (finding the executable, checking its CPU),
//! [`iface`] (which address ranks bind across hosts), [`output`] (line forwarding),
//! [`guard`] (kills the ranks' groups if pirun is killed), [`signals`] (signalfd, signal
//! names), [`poller`] (`poll(2)`), [`terminal_bar`] (the progress bar of arrays and
//! bench), [`error`] (launch errors and exit codes),
//! [`array`](mod@array) (`pirun --array`: job arrays over the same hosts and proxies),
//! [`bench`](mod@bench) (`pirun bench`: the benchmark tool, ranks included).

mod alloc;
mod array;
mod bench;
mod cli;
mod control;
mod elf;
mod error;
mod guard;
mod host;
mod iface;
mod job;
mod output;
mod poller;
mod program;
mod proxy;
mod remote;
mod signals;
mod terminal_bar;
mod wire;

use std::os::fd::RawFd;

fn main() {
    ensure_std_fds();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == bench::rank::RANK_FLAG) {
        std::process::exit(bench::rank::main(&args[2..]));
    }
    if let Some(at) = cli::bench_position(&args) {
        std::process::exit(bench::main(&args, at));
    }
    let cli = cli::Cli::from_env();
    if cli.proxy {
        std::process::exit(proxy::main());
    }
    if cli.is_array() {
        std::process::exit(array::main(&cli));
    }
    let code = match job::run(&cli) {
        Ok(code) => code,
        Err(e) => {
            output::report(&e.to_string());
            e.exit_code()
        }
    };
    std::process::exit(code);
}

/// Opens `/dev/null` on any of fds 0, 1, 2 that is closed, so that no pipe or socket the
/// launcher creates lands there (a rank would then take it for its stdin or stdout).
fn ensure_std_fds() {
    for fd in 0..3 as RawFd {
        // SAFETY: F_GETFD only inspects the descriptor.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            // SAFETY: open(2) with a static NUL-terminated path; the lowest free
            // descriptor, which is `fd`, is returned and deliberately kept open.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
}
