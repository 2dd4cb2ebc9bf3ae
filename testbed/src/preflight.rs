//! Checks that this machine can run the testbed at all, so a test fails at
//! once with a precise reason instead of half-way through a boot. A test
//! that cannot run must fail loudly: the harness never skips.

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// Binaries the harness runs, and the Debian package that ships each.
const BINARIES: &[(&str, &str)] = &[
    ("debootstrap", "debootstrap"),
    ("systemd-nspawn", "systemd-container"),
    ("ip", "iproute2"),
    ("ssh", "openssh-client"),
    ("ssh-keygen", "openssh-client"),
    ("gpg", "gnupg"),
    ("gpgconf", "gnupg"),
    ("dpkg-deb", "dpkg"),
    ("apt-ftparchive", "apt-utils"),
    ("setpriv", "util-linux"),
    ("du", "coreutils"),
];

/// Run the checks once per process; later calls return the first verdict.
pub fn check() -> Result<()> {
    static VERDICT: OnceLock<Result<(), String>> = OnceLock::new();
    VERDICT
        .get_or_init(run_checks)
        .clone()
        .map_err(Error::Unsupported)
}

fn run_checks() -> Result<(), String> {
    let mut problems = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        problems.push("must run as root (debootstrap, mounts, network namespaces)".to_owned());
    }
    for (bin, pkg) in BINARIES {
        if !on_path(bin) {
            problems.push(format!("`{bin}` not found (apt-get install {pkg})"));
        }
    }
    let fss = fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !fss.lines().any(|l| l.trim_end().ends_with("overlay")) {
        problems.push("the kernel has no overlayfs (modprobe overlay)".to_owned());
    }
    if !Path::new("/sys/fs/cgroup").is_dir() {
        problems.push("no cgroup file system at /sys/fs/cgroup".to_owned());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} (the packages are listed in testbed/apt-packages.txt)",
            problems.join("; ")
        ))
    }
}

fn on_path(bin: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|d| d.join(bin).is_file())
}
