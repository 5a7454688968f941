//! Ping-pong between ranks 0 and 1: one-way latency and bandwidth per message size, or
//! the CPU a rank burns while blocked in a receive (`--idle SECS`).
//!
//! ```text
//! pingpong [--sizes 8,1024,65536,1048576] [--iters N] [--warmup W]
//! pingpong --idle SECS
//! ```
//! Prints `pingpong size=<bytes> iters=<N> oneway_us=<median RTT/2> mbps=<MB/s>` per size
//! (10^6 bytes per second), or `idle_recv secs=<S> cpu_percent=<P>`. Ranks beyond 1 wait
//! in a receive from rank 0 for the whole run, which is what `-n 8` on few cores measures.
//! The C twin in `benches/compare/c/` prints the same lines.

use std::time::{Duration, Instant};

use pirun::Communicator;

const PING: pirun::Tag = 1;
const DONE: pirun::Tag = 2;

struct Args {
    sizes: Vec<usize>,
    iters: usize,
    warmup: usize,
    idle: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        sizes: vec![8, 1024, 65536, 1 << 20],
        iters: 1000,
        warmup: 100,
        idle: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--sizes" => {
                a.sizes = value()?
                    .split(',')
                    .map(|s| s.trim().parse().map_err(|_| format!("bad size {s:?}")))
                    .collect::<Result<_, _>>()?
            }
            "--iters" => a.iters = value()?.parse().map_err(|_| "bad --iters")?,
            "--warmup" => a.warmup = value()?.parse().map_err(|_| "bad --warmup")?,
            "--idle" => a.idle = Some(value()?.parse().map_err(|_| "bad --idle")?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

fn main() -> pirun::Result<()> {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("pingpong: {e}");
            std::process::exit(2);
        }
    };
    let world = pirun::init()?;
    if world.size() < 2 {
        eprintln!("pingpong: needs at least 2 ranks (pirun -n 2 ...)");
        std::process::exit(2);
    }
    match world.rank() {
        0 | 1 => match args.idle {
            Some(secs) => idle(&world, secs)?,
            None => {
                for &size in &args.sizes {
                    measure(&world, size, args.iters, args.warmup)?;
                }
            }
        },
        _ => {
            world.recv::<u8>(0, DONE)?;
        }
    }
    if world.rank() == 0 {
        for r in 2..world.size() {
            world.send::<u8>(r, DONE, &[])?;
        }
    }
    Ok(())
}

fn measure(world: &Communicator, size: usize, iters: usize, warmup: usize) -> pirun::Result<()> {
    let mut buf = vec![0u8; size];
    let mut rtts = Vec::with_capacity(iters);
    for i in 0..warmup + iters {
        let t = Instant::now();
        if world.rank() == 0 {
            world.send(1, PING, &buf)?;
            world.recv_into(1, PING, &mut buf)?;
        } else {
            world.recv_into(0, PING, &mut buf)?;
            world.send(0, PING, &buf)?;
        }
        if i >= warmup {
            rtts.push(t.elapsed());
        }
    }
    if world.rank() == 0 {
        rtts.sort_unstable();
        let oneway = rtts[rtts.len() / 2].as_secs_f64() / 2.0;
        println!(
            "pingpong size={size} iters={iters} oneway_us={:.3} mbps={:.1}",
            oneway * 1e6,
            size as f64 / oneway / 1e6
        );
    }
    Ok(())
}

fn idle(world: &Communicator, secs: u64) -> pirun::Result<()> {
    if world.rank() == 0 {
        std::thread::sleep(Duration::from_secs(secs));
        world.send(1, PING, &[0u8; 8])?;
    } else {
        let (cpu0, t0) = (cpu_time(), Instant::now());
        world.recv::<u8>(0, PING)?;
        let (cpu, wall) = (cpu_time() - cpu0, t0.elapsed());
        println!(
            "idle_recv secs={secs} cpu_percent={:.1}",
            100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
        );
    }
    Ok(())
}

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes into `ru`.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}
