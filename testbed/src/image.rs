//! Base images: a Debian root file system made by debootstrap from Debian's
//! packages, configured to boot under systemd-nspawn without network, built
//! once and cached under a key that hashes everything that went into it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::cache::{self, Lock};
use crate::cmd;
use crate::error::{Error, IoContext, Result};
use crate::mounts;
use crate::suite::Suite;

/// Bump when [`configure`] changes what ends up in an image, so that cached
/// images built by an older harness are not reused.
const IMAGE_FORMAT: u32 = 1;

/// Environment variable naming the Debian mirror used for image builds.
pub const MIRROR_ENV: &str = "HOIST_TESTBED_MIRROR";
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// A debootstrap can take long on a slow mirror; it is still bounded.
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What the stand-in products and the seed procedures need on every host,
/// preinstalled because hosts never reach Debian's mirror.
pub const DEFAULT_PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "iproute2",
    "iptables",
    "procps",
    "python3",
    "python3-pip",
    "postgresql",
    "mariadb-server",
];

/// What to build: a suite and the packages installed on top of `minbase`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageSpec {
    pub suite: Suite,
    pub packages: Vec<String>,
}

impl ImageSpec {
    /// The default image of `suite`: [`DEFAULT_PACKAGES`].
    pub fn new(suite: Suite) -> Self {
        Self {
            suite,
            packages: DEFAULT_PACKAGES.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Cache key: suite plus a hash of the sorted package list and the
    /// image format. The mirror is not part of it: any mirror of the same
    /// suite gives an equivalent image.
    pub fn key(&self) -> String {
        let mut pkgs = self.packages.clone();
        pkgs.sort();
        pkgs.dedup();
        let mut h = Sha256::new();
        h.update(format!("format={IMAGE_FORMAT}\nsuite={}\n", self.suite));
        for p in &pkgs {
            h.update(p.as_bytes());
            h.update(b"\n");
        }
        let digest = h.finalize();
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("{}-{hex}", self.suite)
    }
}

/// A built, cached, immutable base image.
#[derive(Debug, Clone)]
pub struct Image {
    pub spec: ImageSpec,
    /// Directory holding `rootfs/`, `debs/` and `ok`.
    pub dir: PathBuf,
    /// `Some(duration)` when this call built it, `None` when it was cached.
    pub built_in: Option<Duration>,
}

impl Image {
    /// Root file system; hosts use it read-only (as an overlay lower layer).
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The .deb files the image was installed from: exactly the suite's
    /// packages needed to upgrade a host of the previous release to this one.
    pub fn debs(&self) -> PathBuf {
        self.dir.join("debs")
    }

    /// Return the cached image for `spec`, building it first if needed.
    /// Concurrent callers (threads or processes) wait for one build.
    pub fn ensure(spec: &ImageSpec) -> Result<Image> {
        validate(spec)?;
        crate::preflight::check()?;
        let key = spec.key();
        let dir = cache::subdir("images")?.join(&key);
        let _lock = Lock::acquire(&format!("image-{key}"))?;
        if dir.join("ok").exists() {
            return Ok(Image {
                spec: spec.clone(),
                dir,
                built_in: None,
            });
        }
        let started = Instant::now();
        let tmp = dir.with_file_name(format!(".build-{key}"));
        // A build killed half-way leaves debootstrap's /proc and /sys mounts.
        mounts::remove_tree(&tmp)?;
        mounts::remove_tree(&dir)?;
        fs::create_dir_all(&tmp).ctx("create", &tmp)?;
        let result = build(spec, &tmp);
        // debootstrap unmounts after itself, but not when it fails.
        mounts::unmount_all_under(&tmp)?;
        result?;
        let secs = started.elapsed();
        fs::write(
            tmp.join("ok"),
            format!(
                "key={key}\nsuite={}\npackages={}\nbuild_seconds={}\n",
                spec.suite,
                spec.packages.join(","),
                secs.as_secs()
            ),
        )
        .ctx("write", tmp.join("ok"))?;
        fs::rename(&tmp, &dir).ctx("rename", &tmp)?;
        Ok(Image {
            spec: spec.clone(),
            dir,
            built_in: Some(secs),
        })
    }
}

fn mirror() -> String {
    std::env::var(MIRROR_ENV)
        .ok()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| DEFAULT_MIRROR.to_owned())
}

fn build(spec: &ImageSpec, tmp: &Path) -> Result<()> {
    let rootfs = tmp.join("rootfs");
    let mut include = spec.packages.clone();
    include.sort();
    include.dedup();
    // debootstrap resolves the dependencies of --include itself; one pass
    // is faster than debootstrap followed by apt-get in a chroot.
    // Under pdeathsig: a test process killed mid-build must not leave a
    // debootstrap writing into a directory the next build will remove.
    cmd::run(
        Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "debootstrap", "--variant=minbase"])
            .arg(format!("--include={}", include.join(",")))
            .arg(spec.suite.codename())
            .arg(&rootfs)
            .arg(mirror()),
        BUILD_TIMEOUT,
    )?;
    configure(&rootfs)?;
    keep_debs(&rootfs, &tmp.join("debs"))
}

/// Make a debootstrapped tree bootable as an offline, SSH-reachable host.
/// Per-host identity (hostname, machine-id, SSH host key, authorized key)
/// is written later into each host's own layer.
fn configure(root: &Path) -> Result<()> {
    let w = |rel: &str, body: &str| -> Result<()> {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).ctx("create", parent)?;
        }
        fs::write(&p, body).ctx("write", &p)
    };
    // Hosts never reach Debian's mirror: an entry for it would only make
    // `apt-get update` fail. Each host gets the local repository instead.
    w(
        "etc/apt/sources.list",
        "# hoist testbed: sources are in /etc/apt/sources.list.d/\n",
    )?;
    remove_matching(&root.join("var/lib/apt/lists"), |_| true)?;
    // Identity comes per host; an empty machine-id is "not yet set".
    w("etc/machine-id", "")?;
    w("etc/hostname", "localhost\n")?;
    remove_matching(&root.join("etc/ssh"), |n| n.starts_with("ssh_host_"))?;
    w(
        "etc/ssh/sshd_config.d/hoist-testbed.conf",
        "HostKey /etc/ssh/ssh_host_ed25519_key\n\
         PermitRootLogin prohibit-password\n\
         PasswordAuthentication no\n",
    )?;
    // Timers that would take the dpkg lock or try the network in the middle
    // of a test.
    for unit in [
        "apt-daily.timer",
        "apt-daily-upgrade.timer",
        "e2scrub_all.timer",
        "fstrim.timer",
        "man-db.timer",
        "systemd-networkd-wait-online.service",
    ] {
        let link = root.join("etc/systemd/system").join(unit);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink("/dev/null", &link).ctx("symlink", &link)?;
    }
    // No prompt may ever block a test: dpkg keeps changed conffiles unless
    // a recipe says otherwise, and debconf never asks.
    w(
        "etc/apt/apt.conf.d/90hoist-testbed",
        "APT::Install-Recommends \"false\";\nAPT::Get::Assume-Yes \"true\";\n",
    )?;
    w("etc/hoist-testbed-image", "")?;
    Ok(())
}

/// Move the downloaded .debs out of the rootfs: the image stays small, and
/// they become the OS mirror suite that a previous-release host upgrades from.
fn keep_debs(root: &Path, debs: &Path) -> Result<()> {
    fs::create_dir_all(debs).ctx("create", debs)?;
    let archives = root.join("var/cache/apt/archives");
    for entry in fs::read_dir(&archives).ctx("read", &archives)? {
        let path = entry.ctx("read", &archives)?.path();
        if path.extension().is_some_and(|e| e == "deb") {
            let to = debs.join(path.file_name().unwrap_or_default());
            fs::rename(&path, &to).ctx("move", &path)?;
        }
    }
    Ok(())
}

fn remove_matching(dir: &Path, pred: impl Fn(&str) -> bool) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries {
        let e = e.ctx("read", dir)?;
        let name = e.file_name().to_string_lossy().into_owned();
        if pred(&name) && e.file_type().ctx("stat", e.path())?.is_file() {
            fs::remove_file(e.path()).ctx("remove", e.path())?;
        }
    }
    Ok(())
}

/// Fail early when `spec` names something that cannot be an apt package.
pub(crate) fn validate(spec: &ImageSpec) -> Result<()> {
    for p in &spec.packages {
        if p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Err(Error::Spec(format!("bad package name {p:?}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ignores_order_and_duplicates() {
        let a = ImageSpec {
            suite: Suite::Bookworm,
            packages: vec!["b".into(), "a".into()],
        };
        let b = ImageSpec {
            suite: Suite::Bookworm,
            packages: vec!["a".into(), "b".into(), "a".into()],
        };
        assert_eq!(a.key(), b.key());
        assert!(a.key().starts_with("bookworm-"));
        let c = ImageSpec {
            suite: Suite::Bullseye,
            ..a.clone()
        };
        assert_ne!(a.key(), c.key());
    }

    #[test]
    fn rejects_bad_names() {
        let s = ImageSpec {
            suite: Suite::Bookworm,
            packages: vec!["ok".into(), "no pe".into()],
        };
        assert!(validate(&s).is_err());
        assert!(validate(&ImageSpec::new(Suite::Bookworm)).is_ok());
    }
}
