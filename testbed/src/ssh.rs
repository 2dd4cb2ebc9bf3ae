//! SSH from the runner to the hosts: a client key generated per run, one
//! host key generated per host (written into the host before it boots), and
//! a known_hosts and ssh_config written by the harness. Host keys are
//! therefore known in advance and checked strictly: nothing ever trusts a
//! key on first use.

use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cmd;
use crate::error::{IoContext, Result};

const KEYGEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Generate an ed25519 key pair at `path` (private) and `path.pub`, with no
/// passphrase: it only ever opens throw-away hosts of this run.
pub(crate) fn keygen(path: &Path, comment: &str) -> Result<()> {
    let _ = fs::remove_file(path);
    let _ = fs::remove_file(path.with_extension("pub"));
    cmd::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(path),
        KEYGEN_TIMEOUT,
    )?;
    Ok(())
}

/// Public half of a key made by [`keygen`], without the comment.
pub(crate) fn public_key(private: &Path) -> Result<String> {
    let p = PathBuf::from(format!("{}.pub", private.display()));
    let text = fs::read_to_string(&p).ctx("read", &p)?;
    Ok(text
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" "))
}

/// One host as the ssh client sees it.
#[derive(Debug, Clone)]
pub struct KnownHost {
    pub name: String,
    pub addr: Ipv4Addr,
    pub host_key: String,
}

/// The files the run's ssh client uses.
#[derive(Debug, Clone)]
pub struct SshFiles {
    /// Private key of the run.
    pub identity: PathBuf,
    /// known_hosts written by the harness.
    pub known_hosts: PathBuf,
    /// ssh_config naming every host (`ssh -F <this> <host name>`).
    pub config: PathBuf,
}

impl SshFiles {
    /// Generate the run's client key in `dir`.
    pub(crate) fn create(dir: &Path) -> Result<SshFiles> {
        let identity = dir.join("id_ed25519");
        keygen(&identity, "hoist-testbed-runner")?;
        let files = SshFiles {
            identity,
            known_hosts: dir.join("known_hosts"),
            config: dir.join("ssh_config"),
        };
        files.write(&[])?;
        Ok(files)
    }

    /// Rewrite known_hosts and ssh_config for `hosts`.
    pub(crate) fn write(&self, hosts: &[KnownHost]) -> Result<()> {
        let mut kh = String::new();
        let mut cfg = String::new();
        for h in hosts {
            let _ = writeln!(kh, "{},{} {}", h.name, h.addr, h.host_key);
            let _ = write!(
                cfg,
                "Host {name}\n  HostName {addr}\n  HostKeyAlias {name}\n",
                name = h.name,
                addr = h.addr
            );
        }
        let _ = write!(
            cfg,
            "Host *\n\
             \x20 User root\n\
             \x20 IdentityFile {id}\n\
             \x20 IdentitiesOnly yes\n\
             \x20 UserKnownHostsFile {kh}\n\
             \x20 GlobalKnownHostsFile /dev/null\n\
             \x20 StrictHostKeyChecking yes\n\
             \x20 UpdateHostKeys no\n\
             \x20 BatchMode yes\n\
             \x20 ConnectTimeout 5\n\
             \x20 ServerAliveInterval 5\n\
             \x20 ServerAliveCountMax 3\n\
             \x20 LogLevel ERROR\n",
            id = self.identity.display(),
            kh = self.known_hosts.display()
        );
        write_private(&self.known_hosts, &kh)?;
        write_private(&self.config, &cfg)
    }

    /// An `ssh` command for `host`, reading only the harness's config
    /// (never the user's ~/.ssh/config).
    pub fn command(&self, host: &str) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-F").arg(&self.config).arg(host);
        c
    }
}

fn write_private(path: &Path, body: &str) -> Result<()> {
    fs::write(path, body).ctx("write", path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).ctx("chmod", path)
}
