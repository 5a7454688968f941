//! Batch systems' allocations, read from the environment when neither `--host` nor
//! `--hostfile` is given. Tried in this order:
//!
//! - Slurm: `SLURM_JOB_NODELIST` (or the older `SLURM_NODELIST`), a compressed hostlist,
//!   with slots per host from `SLURM_TASKS_PER_NODE` (else `SLURM_JOB_CPUS_PER_NODE`,
//!   else one each), a count list such as `2(x3),1`.
//! - PBS/TORQUE: the file named by `PBS_NODEFILE`, one line per slot (read as a hostfile,
//!   so repeated hosts add up).
//! - LSF/OpenLava: `LSB_MCPU_HOSTS` (`pi1 4 pi2 4`), else `LSB_HOSTS` (`pi1 pi1 pi2`,
//!   one slot per mention).
//!
//! Variables that are unset or blank count as absent.

use std::path::PathBuf;

use super::{count, hostfile, hostlist, AllocSource, HostsBuilder};
use crate::error::LaunchError;

/// Adds the batch system's hosts to `hosts` and says which system it was; `None` when
/// no batch system's variables are set.
pub(super) fn detect(
    env: &dyn Fn(&str) -> Option<String>,
    hosts: &mut HostsBuilder,
) -> Result<Option<AllocSource>, LaunchError> {
    let var = |name: &'static str| {
        env(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (name, v))
    };
    if let Some(nodelist) = var("SLURM_JOB_NODELIST").or_else(|| var("SLURM_NODELIST")) {
        let counts = var("SLURM_TASKS_PER_NODE").or_else(|| var("SLURM_JOB_CPUS_PER_NODE"));
        slurm(nodelist, counts, hosts)?;
        return Ok(Some(AllocSource::Slurm));
    }
    if let Some((_, path)) = var("PBS_NODEFILE") {
        let path = PathBuf::from(path);
        hostfile::read_hostfile(&path, "PBS node file (PBS_NODEFILE)", hosts)?;
        return Ok(Some(AllocSource::Pbs(path)));
    }
    if let Some(mcpu) = var("LSB_MCPU_HOSTS") {
        lsf_pairs(mcpu, hosts)?;
        return Ok(Some(AllocSource::Lsf));
    }
    if let Some(list) = var("LSB_HOSTS") {
        lsf_list(list, hosts)?;
        return Ok(Some(AllocSource::Lsf));
    }
    Ok(None)
}

/// The error for variable `name` with value `value`.
fn bad(name: &'static str, value: &str, reason: impl Into<String>) -> LaunchError {
    LaunchError::BatchEnv {
        var: name,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// Slurm: the expanded node list, each host with its count (1 when Slurm gives none).
fn slurm(
    (list_var, list): (&'static str, String),
    counts: Option<(&'static str, String)>,
    hosts: &mut HostsBuilder,
) -> Result<(), LaunchError> {
    let names = hostlist::expand(&list).map_err(|e| bad(list_var, &list, e))?;
    let counts = match &counts {
        Some((count_var, value)) => {
            let counts = hostlist::expand_counts(value).map_err(|e| bad(count_var, value, e))?;
            if counts.len() != names.len() {
                return Err(bad(
                    count_var,
                    value,
                    format!(
                        "it gives {} counts but {list_var}={list:?} lists {} hosts",
                        counts.len(),
                        names.len()
                    ),
                ));
            }
            counts
        }
        None => vec![1; names.len()],
    };
    for (name, n) in names.iter().zip(counts) {
        hosts
            .add(name, n, None)
            .map_err(|e| bad(list_var, &list, e))?;
    }
    Ok(())
}

/// LSF's `LSB_MCPU_HOSTS`: pairs of host and slot count.
fn lsf_pairs(
    (var, value): (&'static str, String),
    hosts: &mut HostsBuilder,
) -> Result<(), LaunchError> {
    let words: Vec<&str> = value.split_whitespace().collect();
    for pair in words.chunks(2) {
        let [name, n] = pair else {
            let name = pair.first().copied().unwrap_or_default();
            return Err(bad(
                var,
                &value,
                format!(
                    "host {name} has no slot count; it should be pairs such as \"pi1 4 pi2 4\""
                ),
            ));
        };
        let n = count(n, &format!("the slot count of {name}"), "\"host N\"")
            .map_err(|e| bad(var, &value, e))?;
        hosts.add(name, n, None).map_err(|e| bad(var, &value, e))?;
    }
    Ok(())
}

/// LSF's `LSB_HOSTS`: one word per slot.
fn lsf_list(
    (var, value): (&'static str, String),
    hosts: &mut HostsBuilder,
) -> Result<(), LaunchError> {
    for name in value.split_whitespace() {
        hosts.add(name, 1, None).map_err(|e| bad(var, &value, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::alloc::Allocation;

    /// Resolves with no `--host`/`--hostfile` on a machine called `head`, in `vars`.
    fn resolve(vars: &[(&str, &str)]) -> Result<Allocation, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Allocation::resolve_on("head", None, None, &|k| vars.get(k).cloned())
            .map_err(|e| e.to_string())
    }

    fn hosts(a: &Allocation) -> Vec<(&str, usize)> {
        a.hosts.iter().map(|h| (h.name.as_str(), h.cores)).collect()
    }

    #[test]
    fn slurm_nodelist_and_tasks_per_node() {
        let a = resolve(&[
            ("SLURM_JOB_NODELIST", "pi[01-04]"),
            ("SLURM_TASKS_PER_NODE", "2(x3),1"),
            ("PBS_NODEFILE", "/nonexistent"),
        ])
        .unwrap();
        assert_eq!(a.source, AllocSource::Slurm);
        assert_eq!(
            hosts(&a),
            [("pi01", 2), ("pi02", 2), ("pi03", 2), ("pi04", 1)]
        );
        assert_eq!(
            a.to_string(),
            "using the Slurm allocation: 4 hosts, 7 slots"
        );

        let a = resolve(&[
            ("SLURM_NODELIST", "node-[1-2]-ib,head"),
            ("SLURM_JOB_CPUS_PER_NODE", "4(x3)"),
        ])
        .unwrap();
        assert_eq!(hosts(&a), [("node-1-ib", 4), ("node-2-ib", 4), ("head", 4)]);
        assert!(a.hosts[2].is_local() && !a.hosts[0].is_local());

        let a = resolve(&[("SLURM_JOB_NODELIST", "tux[0-1]")]).unwrap();
        assert_eq!(hosts(&a), [("tux0", 1), ("tux1", 1)]);

        let a = resolve(&[
            ("SLURM_JOB_NODELIST", "head"),
            ("SLURM_TASKS_PER_NODE", "4"),
        ])
        .unwrap();
        assert_eq!(hosts(&a), [("head", 4)]);
        assert!(a.hosts[0].is_local());
    }

    #[test]
    fn slurm_errors_name_the_variable() {
        assert_eq!(
            resolve(&[("SLURM_JOB_NODELIST", "pi[01-04")]).unwrap_err(),
            "cannot use the batch system's allocation: SLURM_JOB_NODELIST=\"pi[01-04\": \
             '[' at offset 2 is never closed; fix or unset SLURM_JOB_NODELIST, or choose \
             hosts with --host or --hostfile"
        );
        let e = resolve(&[
            ("SLURM_JOB_NODELIST", "pi[01-04]"),
            ("SLURM_TASKS_PER_NODE", "2(x3)"),
        ])
        .unwrap_err();
        assert!(
            e.contains(
                "SLURM_TASKS_PER_NODE=\"2(x3)\": it gives 3 counts but \
                 SLURM_JOB_NODELIST=\"pi[01-04]\" lists 4 hosts"
            ),
            "{e}"
        );
        let e = resolve(&[
            ("SLURM_JOB_NODELIST", "pi1"),
            ("SLURM_TASKS_PER_NODE", "two"),
        ])
        .unwrap_err();
        assert!(e.contains("not a whole number"), "{e}");
    }

    #[test]
    fn pbs_node_file() {
        let dir = std::env::temp_dir().join(format!("pirun-pbs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("1234.pbsserver");
        // As TORQUE writes it for -l nodes=2:ppn=3: one line per slot.
        std::fs::write(&path, "n001\nn001\nn001\nn002\nn002\nn002\n").unwrap();
        let file = path.to_str().unwrap();
        let a = resolve(&[("PBS_NODEFILE", file), ("LSB_HOSTS", "x")]).unwrap();
        assert_eq!(a.source, AllocSource::Pbs(path.clone()));
        assert_eq!(hosts(&a), [("n001", 3), ("n002", 3)]);

        std::fs::write(&path, "n001\nn0$2\n").unwrap();
        assert_eq!(
            resolve(&[("PBS_NODEFILE", file)]).unwrap_err(),
            format!(
                "{file}:2: \"n0$2\" is not a host name ('$' is not allowed); host names are \
                 letters, digits, '-', '.' and '_'"
            )
        );
        std::fs::write(&path, "").unwrap();
        assert!(resolve(&[("PBS_NODEFILE", file)])
            .unwrap_err()
            .starts_with(&format!(
                "PBS node file (PBS_NODEFILE) `{file}` lists no hosts"
            )));
        std::fs::remove_dir_all(&dir).unwrap();
        let e = resolve(&[("PBS_NODEFILE", file)]).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "cannot read PBS node file (PBS_NODEFILE) `{file}`"
            )),
            "{e}"
        );
    }

    #[test]
    fn lsf_variables() {
        let a = resolve(&[("LSB_MCPU_HOSTS", "pi1 4 pi2 4 "), ("LSB_HOSTS", "x")]).unwrap();
        assert_eq!(a.source, AllocSource::Lsf);
        assert_eq!(hosts(&a), [("pi1", 4), ("pi2", 4)]);
        let a = resolve(&[("LSB_HOSTS", "pi1 pi1 pi2")]).unwrap();
        assert_eq!(hosts(&a), [("pi1", 2), ("pi2", 1)]);
        assert_eq!(
            resolve(&[("LSB_MCPU_HOSTS", "pi1 4 pi2")]).unwrap_err(),
            "cannot use the batch system's allocation: LSB_MCPU_HOSTS=\"pi1 4 pi2\": host pi2 \
             has no slot count; it should be pairs such as \"pi1 4 pi2 4\"; fix or unset \
             LSB_MCPU_HOSTS, or choose hosts with --host or --hostfile"
        );
        let e = resolve(&[("LSB_MCPU_HOSTS", "pi1 four")]).unwrap_err();
        assert!(
            e.contains("the slot count of pi1 \"four\" is not a whole number"),
            "{e}"
        );
    }

    /// The `SLURM_*` variables of a real allocation: `salloc ARGS env -0` on the cluster
    /// `launcher/tests/slurm/slurm-check` starts (emulated nodes pi01..pi03, 2 CPUs each).
    fn salloc_env(args: &[&str]) -> HashMap<String, String> {
        let out = std::process::Command::new("salloc")
            .args(["--quiet", "--time=1"])
            .args(args)
            .args(["env", "-0"])
            .output()
            .expect("salloc runs");
        assert!(
            out.status.success(),
            "salloc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .split('\0')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| k.starts_with("SLURM_"))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    #[ignore = "needs a running Slurm; run launcher/tests/slurm/slurm-check"]
    fn real_slurm_allocations() {
        assert_eq!(
            std::env::var("PIRUN_SLURM_CHECK").as_deref(),
            Ok("1"),
            "run through launcher/tests/slurm/slurm-check"
        );
        /// `salloc` arguments, and the hosts and slots they must give.
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, usize)]);
        let cases: [Case; 4] = [
            (&["-N3", "-n6"], &[("pi01", 2), ("pi02", 2), ("pi03", 2)]),
            (&["-N3", "-n3"], &[("pi01", 1), ("pi02", 1), ("pi03", 1)]),
            (&["-w", "pi[01,03]", "-n4"], &[("pi01", 2), ("pi03", 2)]),
            (&["-N2", "-n3"], &[("pi01", 2), ("pi02", 1)]),
        ];
        for (args, want) in cases {
            let vars = salloc_env(args);
            let shown = |k: &str| format!("{k}={:?}", vars.get(k).map_or("", String::as_str));
            println!(
                "salloc {}: {} {}",
                args.join(" "),
                shown("SLURM_JOB_NODELIST"),
                shown("SLURM_TASKS_PER_NODE")
            );
            let a = Allocation::resolve_on("head", None, None, &|k| vars.get(k).cloned())
                .unwrap_or_else(|e| panic!("salloc {args:?}: {e}"));
            assert_eq!(a.source, AllocSource::Slurm);
            assert_eq!(hosts(&a), want, "salloc {args:?}: {vars:?}");
            let n = want.iter().map(|&(_, n)| n).sum::<usize>();
            assert_eq!(
                a.map(None, crate::alloc::MapBy::Slot, None, false)
                    .unwrap()
                    .len(),
                n
            );
        }
    }

    #[test]
    fn blank_variables_are_absent() {
        let a = resolve(&[("SLURM_JOB_NODELIST", " "), ("LSB_HOSTS", "")]).unwrap();
        assert_eq!(a.source, AllocSource::Local);
        assert_eq!(a.hosts[0].name, "head");
    }
}
