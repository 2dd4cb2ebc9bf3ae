//! Each host lives in its own network namespace, joined to the runner by a
//! veth pair with a /30 of its own. Why not 127.0.N.1 in the runner's
//! namespace: hosts would share one port space (every PostgreSQL wants
//! 5432), their firewall rules (XiVO's DROP on 5060) would hit the runner's
//! machine, and a reboot would bounce interfaces the runner uses.
//!
//! Addresses come from 198.18.0.0/15 (RFC 2544, reserved for network
//! testing), so they cannot clash with a real network; the namespace has no
//! default route, so nothing inside can reach anything but the runner.
//!
//! Slots are machine-wide (netns names and addresses are), allocated with an
//! atomic `mkdir` under /run so that concurrent test binaries never collide.

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::cmd;
use crate::error::{Error, IoContext, Result};

/// Machine-wide runtime state (tmpfs: gone at reboot, like netns).
pub(crate) const RUNTIME_DIR: &str = "/run/hoist-testbed";
/// Prefix of every network namespace the harness creates.
pub const NETNS_PREFIX: &str = "hoist-tb-";
/// Prefix of the runner-side veth of every host.
pub const VETH_PREFIX: &str = "htb";
const MAX_SLOT: u32 = 16_000;
const IP_TIMEOUT: Duration = Duration::from_secs(30);

fn slots_dir() -> PathBuf {
    PathBuf::from(RUNTIME_DIR).join("slots")
}

/// A reserved slot: its netns name, veth name and /30.
#[derive(Debug, Clone)]
pub struct Slot {
    pub index: u32,
}

impl Slot {
    /// Reserve the lowest free slot for `owner` (a run id).
    pub(crate) fn reserve(owner: &str) -> Result<Slot> {
        let dir = slots_dir();
        fs::create_dir_all(&dir).ctx("create", &dir)?;
        for index in 1..=MAX_SLOT {
            let p = dir.join(index.to_string());
            match fs::create_dir(&p) {
                Ok(()) => {
                    fs::write(p.join("owner"), owner).ctx("write", &p)?;
                    return Ok(Slot { index });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).ctx("create", &p),
            }
        }
        Err(Error::Unsupported(format!("all {MAX_SLOT} host slots are taken")))
    }

    /// Give the slot back (after its netns is gone).
    pub(crate) fn release(index: u32) {
        let _ = fs::remove_dir_all(slots_dir().join(index.to_string()));
    }

    /// Slots whose owner file names `owner`.
    pub(crate) fn owned_by(owner: &str) -> Vec<u32> {
        let Ok(entries) = fs::read_dir(slots_dir()) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter(|e| fs::read_to_string(e.path().join("owner")).is_ok_and(|o| o == owner))
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect()
    }

    pub fn netns(&self) -> String {
        format!("{NETNS_PREFIX}{}", self.index)
    }

    pub fn veth(&self) -> String {
        format!("{VETH_PREFIX}{}", self.index)
    }

    fn base(&self) -> u32 {
        u32::from(Ipv4Addr::new(198, 18, 0, 0)) + 4 * self.index
    }

    /// The runner's address on this host's link.
    pub fn runner_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base() + 1)
    }

    /// The host's address, the one SSH and health checks use.
    pub fn host_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base() + 2)
    }

    /// Path nspawn joins with `--network-namespace-path`.
    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(self.netns())
    }

    /// Create the namespace and the veth pair, addressed and up.
    pub(crate) fn create_link(&self) -> Result<()> {
        let ns = self.netns();
        let veth = self.veth();
        // A namespace of this name can only be a leftover of a killed run
        // that held this slot before: ours now.
        delete_netns(&ns)?;
        let ip = |args: &[&str]| cmd::run(Command::new("ip").args(args), IP_TIMEOUT);
        ip(&["netns", "add", &ns])?;
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ])?;
        // IPv6 autoconfiguration would only add noise on the link.
        let _ = fs::write(format!("/proc/sys/net/ipv6/conf/{veth}/disable_ipv6"), "1");
        ip(&["addr", "add", &format!("{}/30", self.runner_addr()), "dev", &veth])?;
        ip(&["link", "set", &veth, "up"])?;
        ip(&["-n", &ns, "addr", "add", &format!("{}/30", self.host_addr()), "dev", "eth0"])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(())
    }
}

/// Delete a namespace if it exists; its veth pair goes with it.
pub(crate) fn delete_netns(name: &str) -> Result<()> {
    if PathBuf::from("/run/netns").join(name).exists() {
        cmd::run(Command::new("ip").args(["netns", "delete", name]), IP_TIMEOUT)?;
    }
    Ok(())
}

/// Names of the harness's namespaces that exist now.
pub fn existing_netns() -> Vec<String> {
    let Ok(entries) = fs::read_dir("/run/netns") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(NETNS_PREFIX))
        .collect()
}

/// Names of the harness's runner-side veths that exist now.
pub fn existing_veths() -> Vec<String> {
    let Ok(entries) = fs::read_dir("/sys/class/net") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            n.strip_prefix(VETH_PREFIX)
                .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_a_slash_30_per_slot() {
        let s = Slot { index: 1 };
        assert_eq!(s.runner_addr(), Ipv4Addr::new(198, 18, 0, 5));
        assert_eq!(s.host_addr(), Ipv4Addr::new(198, 18, 0, 6));
        let s = Slot { index: MAX_SLOT };
        assert!(s.host_addr() < Ipv4Addr::new(198, 20, 0, 0));
        assert!(s.veth().len() <= 15, "interface names are at most 15 bytes");
    }
}
