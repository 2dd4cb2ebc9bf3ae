//! The test LAN. Each run gets a /24 and a namespace holding a bridge; each
//! host gets its own network namespace with an `eth0` plugged into that
//! bridge, and the runner gets one veth plugged into it too. Hosts reach
//! each other and the runner at layer 2; nothing is routed or forwarded, so
//! the runner's own firewall and forwarding settings never matter.
//!
//! Why not 127.0.N.1 in the runner's namespace: hosts would share one port
//! space (every PostgreSQL wants 5432), their firewall rules (XiVO's DROP on
//! 5060) would hit the runner's machine, and a host reboot would bounce
//! interfaces the runner uses.
//!
//! Addresses come from 198.18.0.0/15 (RFC 2544, reserved for network tests)
//! so they cannot clash with a real network; namespaces have no default
//! route, so nothing inside can reach anything but the LAN.
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
/// Prefix of the runner-side veth of every LAN.
pub const VETH_PREFIX: &str = "htb";
/// 198.18.0.0/15 holds 512 /24s; /24 number 0 is never used.
const MAX_SLOT: u32 = 511;
/// Host numbers 1..=MAX_HOSTS get .2 to .254; the runner is .1.
pub const MAX_HOSTS: u32 = 253;
const IP_TIMEOUT: Duration = Duration::from_secs(30);

fn slots_dir() -> PathBuf {
    PathBuf::from(RUNTIME_DIR).join("slots")
}

fn ip(args: &[&str]) -> Result<()> {
    cmd::run(Command::new("ip").args(args), IP_TIMEOUT).map(drop)
}

/// One run's LAN: a reserved /24, its bridge namespace and runner veth.
#[derive(Debug, Clone)]
pub struct Lan {
    pub index: u32,
}

impl Lan {
    /// Reserve the lowest free slot for `owner` (a run id).
    pub(crate) fn reserve(owner: &str) -> Result<Lan> {
        let dir = slots_dir();
        fs::create_dir_all(&dir).ctx("create", &dir)?;
        for index in 1..=MAX_SLOT {
            let p = dir.join(index.to_string());
            match fs::create_dir(&p) {
                Ok(()) => {
                    fs::write(p.join("owner"), owner).ctx("write", &p)?;
                    return Ok(Lan { index });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).ctx("create", &p),
            }
        }
        Err(Error::Unsupported(format!(
            "all {MAX_SLOT} LAN slots are taken"
        )))
    }

    /// Slots whose owner file names `owner`.
    pub(crate) fn owned_by(owner: &str) -> Vec<Lan> {
        let Ok(entries) = fs::read_dir(slots_dir()) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter(|e| fs::read_to_string(e.path().join("owner")).is_ok_and(|o| o == owner))
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .map(|index| Lan { index })
            .collect()
    }

    /// Namespace holding the bridge.
    pub fn netns(&self) -> String {
        format!("{NETNS_PREFIX}{}", self.index)
    }

    /// Namespace of host number `n` (1-based).
    pub fn host_netns(&self, n: u32) -> String {
        format!("{NETNS_PREFIX}{}-{n}", self.index)
    }

    /// The runner's interface on this LAN.
    pub fn veth(&self) -> String {
        format!("{VETH_PREFIX}{}", self.index)
    }

    fn base(&self) -> u32 {
        u32::from(Ipv4Addr::new(198, 18, 0, 0)) + 256 * self.index
    }

    /// The runner's address on the LAN.
    pub fn runner_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base() + 1)
    }

    /// Address of host number `n` (1-based).
    pub fn host_addr(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.base() + 1 + n)
    }

    /// Create the bridge namespace and plug the runner in.
    pub(crate) fn create(&self) -> Result<()> {
        // Names of this slot can only be leftovers of a killed run that held
        // it before (the sweeper failed on them): ours now.
        self.delete()?;
        let ns = self.netns();
        let veth = self.veth();
        ip(&["netns", "add", &ns])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&["-n", &ns, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &ns, "link", "set", "br0", "up"])?;
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "up0", "netns", &ns,
        ])?;
        ip(&["-n", &ns, "link", "set", "up0", "master", "br0", "up"])?;
        // IPv6 autoconfiguration would only add noise on the link.
        let _ = fs::write(format!("/proc/sys/net/ipv6/conf/{veth}/disable_ipv6"), "1");
        ip(&[
            "addr",
            "add",
            &format!("{}/24", self.runner_addr()),
            "dev",
            &veth,
        ])?;
        ip(&["link", "set", &veth, "up"])
    }

    /// Create host `n`'s namespace with `eth0` on the bridge; returns the
    /// namespace path for nspawn's `--network-namespace-path`.
    pub(crate) fn add_host(&self, n: u32) -> Result<PathBuf> {
        if n == 0 || n > MAX_HOSTS {
            return Err(Error::Spec(format!(
                "host number {n} out of 1..={MAX_HOSTS}"
            )));
        }
        let lan = self.netns();
        let ns = self.host_netns(n);
        let port = format!("h{n}");
        ip(&["netns", "add", &ns])?;
        ip(&[
            "-n", &lan, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ])?;
        ip(&["-n", &lan, "link", "set", &port, "master", "br0", "up"])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/24", self.host_addr(n)),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(PathBuf::from("/run/netns").join(ns))
    }

    /// Delete every namespace of this LAN (veths go with them) and free
    /// the slot.
    pub(crate) fn delete(&self) -> Result<()> {
        let own = self.netns();
        let hosts = format!("{own}-");
        for ns in existing_netns() {
            if ns == own || ns.starts_with(&hosts) {
                ip(&["netns", "delete", &ns])?;
            }
        }
        Ok(())
    }

    /// Give the slot back (after [`Lan::delete`]).
    pub(crate) fn release(&self) {
        let _ = fs::remove_dir_all(slots_dir().join(self.index.to_string()));
    }
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
    fn addresses_are_a_slash_24_per_lan() {
        let l = Lan { index: 1 };
        assert_eq!(l.runner_addr(), Ipv4Addr::new(198, 18, 1, 1));
        assert_eq!(l.host_addr(1), Ipv4Addr::new(198, 18, 1, 2));
        assert_eq!(l.host_addr(MAX_HOSTS), Ipv4Addr::new(198, 18, 1, 254));
        let l = Lan { index: MAX_SLOT };
        assert_eq!(l.host_addr(MAX_HOSTS), Ipv4Addr::new(198, 19, 255, 254));
        assert!(l.veth().len() <= 15, "interface names are at most 15 bytes");
        assert!(l.host_netns(MAX_HOSTS).len() < 64);
    }
}
