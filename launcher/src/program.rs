//! Finding the program the ranks run, so that a missing or non-executable program, or one
//! built for another CPU, is reported (naming it, with the shell's 127/126 exit codes)
//! before anything starts. Every host of a job runs these checks: the launcher for its
//! own host, each proxy for its.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::elf::{host_machine, pretty_machine, runs_on, ElfTarget};
use crate::error::LaunchError;
use crate::remote::HostError;

/// Finds the executable a rank will run, so that a missing or non-executable program is
/// reported (naming it) before anything starts. A name without `/` is looked up in
/// `path_var` (the ranks' `PATH`); a relative path is taken from `wdir` if given.
pub fn resolve_program(
    program: &OsStr,
    wdir: Option<&Path>,
    path_var: Option<&OsStr>,
) -> Result<PathBuf, LaunchError> {
    let base = |p: &Path| -> PathBuf {
        match wdir {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p.to_path_buf(),
        }
    };
    let shown = program.to_string_lossy().into_owned();
    if program.as_bytes().contains(&b'/') {
        let path = base(Path::new(program));
        return match check_executable(&path) {
            Ok(()) => Ok(path),
            Err(None) => Err(LaunchError::ProgramNotFound {
                program: shown,
                where_: format!("at {}", path.display()),
            }),
            Err(Some(reason)) => Err(LaunchError::NotExecutable { path, reason }),
        };
    }
    let default_path = OsStr::new("/usr/local/bin:/usr/bin:/bin");
    let mut not_executable = None;
    for dir in std::env::split_paths(path_var.unwrap_or(default_path)) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let path = base(&dir).join(program);
        match check_executable(&path) {
            Ok(()) => return Ok(path),
            Err(None) => {}
            Err(Some(reason)) => {
                not_executable.get_or_insert(LaunchError::NotExecutable { path, reason });
            }
        }
    }
    Err(not_executable.unwrap_or(LaunchError::ProgramNotFound {
        program: shown,
        where_: "in PATH".to_string(),
    }))
}

/// Checks that the ELF file at `path` (shown as `shown`) is built for this machine,
/// called `host` in messages. Scripts and other non-ELF files pass (the kernel or the
/// shell judges them), and so does a file that cannot be read (execute-only): `exec`
/// will tell.
pub fn check_machine(path: &Path, shown: &str, host: &str) -> Result<(), LaunchError> {
    let Ok(Some(target)) = ElfTarget::of_file(path) else {
        return Ok(());
    };
    let machine = host_machine();
    match runs_on(&target, &machine) {
        Some(false) => Err(HostError::WrongMachine {
            program: shown.to_string(),
            program_arch: target.name(),
            host: host.to_string(),
            host_arch: pretty_machine(&machine),
        }
        .into()),
        _ => Ok(()),
    }
}

/// `Ok` if `path` is an executable file; `Err(None)` if it does not exist;
/// `Err(Some(reason))` if it exists but cannot be executed.
fn check_executable(path: &Path) -> Result<(), Option<String>> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(None),
        Err(e) => return Err(Some(e.to_string())),
    };
    if meta.is_dir() {
        return Err(Some("it is a directory".to_string()));
    }
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Some("the path contains a NUL byte".to_string()))?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::access(c_path.as_ptr(), libc::X_OK) } != 0 {
        return Err(Some("no execute permission".to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_programs_in_path_and_by_path() {
        let found = resolve_program(
            OsStr::new("sh"),
            None,
            Some(OsStr::new("/nonexistent:/bin")),
        )
        .unwrap();
        assert_eq!(found, Path::new("/bin/sh"));
        let err = resolve_program(OsStr::new("no-such-program-xyz"), None, None).unwrap_err();
        assert_eq!(err.exit_code(), 127);
        assert!(err.to_string().contains("no-such-program-xyz"), "{err}");
        let err = resolve_program(OsStr::new("/etc/passwd"), None, None).unwrap_err();
        assert_eq!(err.exit_code(), 126, "{err}");
        let err = resolve_program(OsStr::new("./tmp"), Some(Path::new("/")), None).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
        assert!(resolve_program(OsStr::new("bin/sh"), Some(Path::new("/")), None).is_ok());
    }

    #[test]
    fn programs_for_another_machine_are_refused_naming_both() {
        let dir = std::env::temp_dir().join(format!("pirun-elf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let foreign = dir.join("foreign");
        let mut head = b"\x7fELF\x02\x01\x01".to_vec();
        head.resize(18, 0);
        // An s390 binary (big-endian, machine 22) runs on none of our CI machines.
        head[5] = 2;
        head.extend(22u16.to_be_bytes());
        std::fs::write(&foreign, &head).unwrap();
        let err = check_machine(&foreign, "./foreign", "pi3").unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(err.exit_code(), 126, "{err}");
        let msg = err.to_string();
        assert!(msg.starts_with("./foreign is s390, pi3 is "), "{msg}");
        let script = Path::new("/bin/sh");
        assert!(check_machine(script, "sh", "here").is_ok());
    }
}
