//! Binding a rank to a core (`PIRUN_BIND`): which core, and the system call.
//!
//! On a host that runs more ranks than it has cores, where the scheduler happens to put
//! each rank decided how fast small collectives ran, and it kept that placement for the
//! whole run: on 4 ranks over 2 cores, a bcast of 8 bytes took 5.1–5.5 µs in every run
//! with ranks 0–1 on one core and 2–3 on the other, 8.5–8.7 µs with 0 and 2 on one core,
//! and either in an unbound run. Bound to contiguous blocks of ranks per core, three
//! alternated runs of collbench on 4 and 8 ranks were faster in most cells (allreduce
//! 64 KiB on 8 ranks 117 vs 318 µs, 1 MiB 1880 vs 2452; bcast 8 B 9.2 vs 12.7; reduce
//! 1 KiB 5.9 vs 11.7) and slower in a few (gather 8 B on 4 ranks 4.7 vs 2.9).
//!
//! So by default (`auto`) a rank binds itself at [`crate::init`] when its host is
//! oversubscribed, and not otherwise (there one rank per core gained nothing measurable,
//! and another job on the same cores would be stuck with our choice). `core` binds
//! always, `none` never. The cores are those this process may use (`sched_getaffinity`:
//! a Slurm or cgroup cpuset is respected); binding is best effort and a failure is
//! ignored.

use std::mem::MaybeUninit;

/// When a rank binds itself to a core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bind {
    /// Only when the host runs more ranks than it has cores.
    Auto,
    /// Always.
    Core,
    /// Never.
    None,
}

impl Bind {
    /// The policy named by `PIRUN_BIND` (`auto` when unset; an unknown value is `auto`).
    pub fn from_env() -> Bind {
        match std::env::var("PIRUN_BIND").as_deref().map(str::trim) {
            Ok("core") => Bind::Core,
            Ok("none") => Bind::None,
            _ => Bind::Auto,
        }
    }
}

/// The core (an index into the usable ones, `0..cores`) for local rank `local_rank` of
/// `local_size` under `bind`, or `None` to leave the rank unbound. Ranks take contiguous
/// blocks: with 8 ranks on 2 cores, ranks 0–3 share the first, 4–7 the second.
pub(crate) fn core_for(
    bind: Bind,
    local_rank: usize,
    local_size: usize,
    cores: usize,
) -> Option<usize> {
    if cores == 0 || local_rank >= local_size {
        return None;
    }
    match bind {
        Bind::None => None,
        Bind::Auto if local_size <= cores => None,
        Bind::Auto | Bind::Core if local_size > cores => Some(local_rank * cores / local_size),
        Bind::Auto | Bind::Core => Some(local_rank),
    }
}

/// Binds the calling thread (and the threads it starts later) to the core `core_for`
/// picks among the CPUs this process may use. Best effort.
pub(crate) fn bind_self(bind: Bind, local_rank: usize, local_size: usize) {
    let Some(usable) = usable_cpus() else {
        return;
    };
    let Some(i) = core_for(bind, local_rank, local_size, usable.len()) else {
        return;
    };
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity get
    // a CPU number below CPU_SETSIZE (it came from the same kind of set) and the set's size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(usable[i], &mut set);
        let _ = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The CPUs this process may run on, in order.
fn usable_cpus() -> Option<Vec<usize>> {
    let mut set = MaybeUninit::<libc::cpu_set_t>::zeroed();
    // SAFETY: the kernel fills at most the set's size; on failure the set is not read.
    let set = unsafe {
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set.as_mut_ptr()) != 0
        {
            return None;
        }
        set.assume_init()
    };
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: CPU_ISSET reads the set within CPU_SETSIZE.
    let cpus: Vec<usize> = (0..max)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect();
    (!cpus.is_empty()).then_some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_blocks_when_ranks_outnumber_cores() {
        let on = |bind, size, cores| -> Vec<Option<usize>> {
            (0..size).map(|r| core_for(bind, r, size, cores)).collect()
        };
        let s = |v: &[usize]| v.iter().map(|&c| Some(c)).collect::<Vec<_>>();
        assert_eq!(on(Bind::Auto, 8, 2), s(&[0, 0, 0, 0, 1, 1, 1, 1]));
        assert_eq!(on(Bind::Auto, 4, 2), s(&[0, 0, 1, 1]));
        assert_eq!(on(Bind::Auto, 3, 2), s(&[0, 0, 1]));
        assert_eq!(on(Bind::Auto, 6, 4), s(&[0, 0, 1, 2, 2, 3]));
        assert_eq!(
            on(Bind::Auto, 2, 2),
            vec![None, None],
            "a core each: left alone"
        );
        assert_eq!(on(Bind::Core, 2, 4), s(&[0, 1]));
        assert_eq!(on(Bind::None, 8, 2), vec![None; 8]);
        assert_eq!(core_for(Bind::Core, 0, 1, 0), None, "no usable core known");
    }

    #[test]
    fn the_usable_cpus_include_the_current_one() {
        let cpus = usable_cpus().expect("sched_getaffinity works here");
        // SAFETY: no arguments.
        let now = unsafe { libc::sched_getcpu() };
        assert!(
            now < 0 || cpus.contains(&(now as usize)),
            "{cpus:?} lacks {now}"
        );
    }
}
