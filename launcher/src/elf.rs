//! Is a program built for this CPU? Reads the ELF header (class, byte order, `e_machine`)
//! before anything is executed, so that `./primes` built on a laptop and started on a
//! Raspberry Pi fails with "pi3: ./primes is x86-64, pi3 is aarch64" instead of a bare
//! "Exec format error" from one rank.
//!
//! Files that are not ELF (scripts with `#!`, anything else) are left to `exec`.
//! Machines are compared by what the kernel runs: an aarch64 kernel also runs 32-bit ARM
//! binaries (Raspberry Pi OS with a 64-bit kernel and a 32-bit userland), an x86-64
//! kernel also runs i386 ones. Machines this module does not know are not judged.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

const EM_386: u16 = 3;
const EM_MIPS: u16 = 8;
const EM_PPC: u16 = 20;
const EM_PPC64: u16 = 21;
const EM_S390: u16 = 22;
const EM_ARM: u16 = 40;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const EM_RISCV: u16 = 243;
const EM_LOONGARCH: u16 = 258;

/// What an ELF header says about the machine a file was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfTarget {
    /// `e_machine`.
    pub machine: u16,
    /// 32 or 64.
    pub bits: u8,
    /// Little-endian (`ELFDATA2LSB`).
    pub little_endian: bool,
}

impl ElfTarget {
    /// Parses the first bytes of a file; `None` if it is not ELF.
    pub fn parse(head: &[u8]) -> Option<Self> {
        if head.len() < 20 || head[..4] != *b"\x7fELF" {
            return None;
        }
        let bits = match head[4] {
            1 => 32,
            2 => 64,
            _ => return None,
        };
        let little_endian = match head[5] {
            1 => true,
            2 => false,
            _ => return None,
        };
        let raw = [head[18], head[19]];
        let machine = if little_endian {
            u16::from_le_bytes(raw)
        } else {
            u16::from_be_bytes(raw)
        };
        Some(ElfTarget {
            machine,
            bits,
            little_endian,
        })
    }

    /// Reads the header of `path`; `Ok(None)` if it is not an ELF file.
    pub fn of_file(path: &Path) -> io::Result<Option<Self>> {
        let mut head = [0u8; 20];
        let mut file = File::open(path)?;
        let mut got = 0;
        while got < head.len() {
            match file.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Self::parse(&head[..got]))
    }

    /// A human name: `x86-64`, `aarch64`, `32-bit arm`, …
    pub fn name(&self) -> String {
        let base = match (self.machine, self.bits) {
            (EM_X86_64, 64) => return "x86-64".into(),
            (EM_X86_64, _) => return "x32 (x86-64, 32-bit pointers)".into(),
            (EM_386, _) => "i386",
            (EM_AARCH64, _) => "aarch64",
            (EM_ARM, _) => return "32-bit arm".into(),
            (EM_RISCV, _) => "riscv",
            (EM_PPC64, _) | (EM_PPC, _) => "powerpc",
            (EM_S390, _) => "s390",
            (EM_MIPS, _) => "mips",
            (EM_LOONGARCH, _) => "loongarch",
            (m, _) => return format!("ELF machine {m} ({}-bit)", self.bits),
        };
        match base {
            "riscv" | "powerpc" | "mips" | "loongarch" => format!("{base}{}", self.bits),
            _ => base.to_string(),
        }
    }
}

/// Whether a kernel reporting `uname -m` = `host` can run `target`. `None`: unknown host
/// machine, not judged.
pub fn runs_on(target: &ElfTarget, host: &str) -> Option<bool> {
    let le = target.little_endian;
    let ok = match host {
        "x86_64" | "amd64" => le && matches!(target.machine, EM_X86_64 | EM_386),
        "i386" | "i486" | "i586" | "i686" => le && target.machine == EM_386,
        "aarch64" | "arm64" => {
            le && (target.machine == EM_AARCH64 || (target.machine == EM_ARM && target.bits == 32))
        }
        h if h.starts_with("armv") || h == "arm" => {
            le && target.machine == EM_ARM && target.bits == 32
        }
        "riscv64" => le && target.machine == EM_RISCV && target.bits == 64,
        "ppc64le" => le && target.machine == EM_PPC64,
        "ppc64" => !le && matches!(target.machine, EM_PPC64 | EM_PPC),
        "s390x" => !le && target.machine == EM_S390,
        "loongarch64" => le && target.machine == EM_LOONGARCH,
        _ => return None,
    };
    Some(ok)
}

/// This machine as `uname -m` reports it (`aarch64`, `x86_64`, `armv7l`).
pub fn host_machine() -> String {
    // SAFETY: utsname is plain data; uname fills it.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return std::env::consts::ARCH.to_string();
    }
    let bytes: Vec<u8> = uts
        .machine
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `uname -m` as people say it: `x86_64` → `x86-64`, the rest unchanged.
pub fn pretty_machine(machine: &str) -> String {
    match machine {
        "x86_64" | "amd64" => "x86-64".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(bits: u8, le: bool, machine: u16) -> Vec<u8> {
        let mut h = b"\x7fELF".to_vec();
        h.push(if bits == 64 { 2 } else { 1 });
        h.push(if le { 1 } else { 2 });
        h.extend([1, 0]);
        h.extend([0; 8]);
        h.extend([2, 0]); // e_type
        if le {
            h.extend(machine.to_le_bytes());
        } else {
            h.extend(machine.to_be_bytes());
        }
        h
    }

    #[test]
    fn parses_and_names_headers() {
        let t = ElfTarget::parse(&header(64, true, EM_X86_64)).unwrap();
        assert_eq!(t.name(), "x86-64");
        let t = ElfTarget::parse(&header(64, true, EM_AARCH64)).unwrap();
        assert_eq!(t.name(), "aarch64");
        assert_eq!(
            ElfTarget::parse(&header(32, true, EM_ARM)).unwrap().name(),
            "32-bit arm"
        );
        assert_eq!(
            ElfTarget::parse(&header(64, false, EM_S390))
                .unwrap()
                .machine,
            EM_S390
        );
        assert!(ElfTarget::parse(b"#!/bin/sh\necho hello world\n").is_none());
        assert!(ElfTarget::parse(b"\x7fELF").is_none());
    }

    #[test]
    fn judges_compatibility_like_the_kernel() {
        let x86 = ElfTarget::parse(&header(64, true, EM_X86_64)).unwrap();
        let a64 = ElfTarget::parse(&header(64, true, EM_AARCH64)).unwrap();
        let arm = ElfTarget::parse(&header(32, true, EM_ARM)).unwrap();
        assert_eq!(runs_on(&x86, "x86_64"), Some(true));
        assert_eq!(runs_on(&x86, "aarch64"), Some(false));
        assert_eq!(runs_on(&a64, "aarch64"), Some(true));
        assert_eq!(runs_on(&arm, "aarch64"), Some(true));
        assert_eq!(runs_on(&arm, "armv7l"), Some(true));
        assert_eq!(runs_on(&a64, "armv7l"), Some(false));
        assert_eq!(runs_on(&a64, "x86_64"), Some(false));
        assert_eq!(runs_on(&a64, "vax"), None);
    }

    #[test]
    fn this_test_binary_runs_here() {
        let exe = std::env::current_exe().unwrap();
        let t = ElfTarget::of_file(&exe).unwrap().expect("an ELF binary");
        assert_eq!(runs_on(&t, &host_machine()), Some(true), "{}", t.name());
    }
}
