//! The host's packet filter: iptables (legacy or nf_tables flavour) and
//! native nftables, driven through their own programs.
//!
//! Seed 000: an aborted xivo-upgrade left `DROP udp dpt:5060` behind, and the
//! cure was "iptables -D INPUT -p udp --dport 5060 -j DROP ... Untill no more
//! unwanted rules are left behind". So a removal here deletes every copy, in
//! every place the rule can live on this host: the `iptables` the host uses,
//! the other iptables flavour when its tables are loaded (a dist-upgrade can
//! switch `iptables` from legacy to nf_tables between the add and the
//! remove: Debian 10 did), and hoist's own nftables table.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Backend, Firewall};

/// Every command is bounded: iptables waits at most 10 s for the xtables
/// lock (`-w 10`), the rest is margin.
const BOUND: Duration = Duration::from_secs(30);

/// A bound on the delete loop, far above any count of copies seen in
/// practice (each aborted xivo-upgrade left one).
const MAX_COPIES: usize = 1000;

/// hoist's own nftables table: rules hoist adds with nft live there only, so
/// they are found (and the table dropped) without touching the admin's.
pub const NFT_TABLE: &str = "hoist";

/// Runs the packet filter's programs: bounded, the command and its output
/// into the run log when there is one.
pub struct Sh<'a> {
    pub log: Option<&'a File>,
    pub env: &'a [(String, String)],
}

pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Sh<'_> {
    pub fn run(&self, argv: &[String]) -> Result<Out, String> {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            // Messages are parsed (`iptables -V`, `nft list`): one language.
            .env("LC_ALL", "C");
        let out = crate::sys::process::run(&mut cmd, BOUND)
            .map_err(|e| format!("{}: cannot run: {e}", argv[0]))?;
        if let Some(mut log) = self.log {
            let _ = writeln!(
                log,
                "{}",
                crate::sys::clock::log_line(&format!("run {}", argv.join(" ")))
            );
            let _ = log.write_all(out.stdout.as_bytes());
            let _ = log.write_all(out.stderr.as_bytes());
        }
        if out.timed_out() {
            return Err(format!(
                "`{}` did not end within {}s, killed",
                argv.join(" "),
                BOUND.as_secs()
            ));
        }
        Ok(Out {
            code: out.status.and_then(|s| s.code()),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// Runs and requires exit 0.
    pub fn ok(&self, argv: &[String]) -> Result<Out, String> {
        let out = self.run(argv)?;
        match out.code {
            Some(0) => Ok(out),
            c => Err(format!(
                "`{}` failed ({}): {}",
                argv.join(" "),
                c.map_or("killed by a signal".to_string(), |c| format!("status {c}")),
                out.stderr.trim()
            )),
        }
    }
}

/// A program's full path, from PATH and the sbin directories (an admin's
/// shell under sudo may lack them in PATH).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .filter(|d| !d.is_empty())
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// One iptables program: `iptables` itself, `iptables-legacy` or
/// `iptables-nft` (or the ip6tables ones).
#[derive(Clone, Debug)]
pub struct Xt {
    pub bin: String,
    /// How the admin knows it: `iptables (nf_tables)`, `iptables-legacy`.
    pub label: String,
    pub legacy: bool,
    /// `-w 10`, `-w`, or nothing: what this version accepts to wait for the
    /// xtables lock instead of failing when another program holds it
    /// (1.6 takes seconds, 1.4.20 only the flag, XiVO-era 1.4.x neither).
    wait: Vec<String>,
}

impl Xt {
    fn probe(sh: &Sh<'_>, bin: &Path) -> Result<Xt, String> {
        let bin_s = bin.display().to_string();
        let out = sh.ok(&[bin_s.clone(), "-V".into()])?;
        let v = format!("{}{}", out.stdout, out.stderr);
        let version: Vec<u32> = regex::Regex::new(r"v(\d+)\.(\d+)\.(\d+)")
            .ok()
            .and_then(|re| re.captures(&v))
            .map(|c| (1..=3).filter_map(|i| c[i].parse().ok()).collect())
            .unwrap_or_default();
        let wait = if version >= vec![1, 6, 0] {
            vec!["-w".into(), "10".into()]
        } else if version >= vec![1, 4, 20] {
            vec!["-w".into()]
        } else {
            Vec::new()
        };
        let nf = v.contains("nf_tables");
        let name = bin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let label = if name.ends_with("-legacy") || name.ends_with("-nft") {
            name
        } else if nf {
            format!("{name} (nf_tables)")
        } else {
            format!("{name} (legacy)")
        };
        Ok(Xt {
            bin: bin_s,
            label,
            // Before 1.8 there was only the legacy one, and it said nothing.
            legacy: !nf,
            wait,
        })
    }

    fn argv(&self, op: &str, fw: &Firewall) -> Vec<String> {
        let mut a = vec![self.bin.clone()];
        a.extend(self.wait.iter().cloned());
        a.extend([op.to_string(), fw.chain.clone()]);
        a.extend(fw.rule_args());
        a
    }

    /// `iptables -C`: 0 the rule is there, 1 it is not (or the chain is
    /// missing); anything else is an error worth stopping for.
    pub fn present(&self, sh: &Sh<'_>, fw: &Firewall) -> Result<bool, String> {
        let argv = self.argv("-C", fw);
        let out = sh.run(&argv)?;
        match out.code {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            c => Err(format!(
                "`{}` failed ({c:?}): {}",
                argv.join(" "),
                out.stderr.trim()
            )),
        }
    }

    /// How many copies `iptables -S CHAIN` lists (at least 1 when `-C` finds
    /// one the listing spells differently).
    pub fn count(&self, sh: &Sh<'_>, fw: &Firewall) -> Result<usize, String> {
        if !self.present(sh, fw)? {
            return Ok(0);
        }
        let mut argv = vec![self.bin.clone()];
        argv.extend(self.wait.iter().cloned());
        argv.extend(["-S".to_string(), fw.chain.clone()]);
        let listed = sh.ok(&argv)?;
        let line = fw.save_line();
        let n = listed.stdout.lines().filter(|l| l.trim() == line).count();
        Ok(n.max(1))
    }

    /// Inserts the rule at the top of the chain, so that a DROP comes
    /// before the host's own ACCEPT rules.
    pub fn insert(&self, sh: &Sh<'_>, fw: &Firewall) -> Result<(), String> {
        sh.ok(&self.argv("-I", fw)).map(|_| ())
    }

    /// Deletes every copy; how many there were.
    pub fn remove_all(&self, sh: &Sh<'_>, fw: &Firewall) -> Result<usize, String> {
        let mut n = 0;
        while self.present(sh, fw)? {
            if n == MAX_COPIES {
                return Err(format!(
                    "{}: still there after deleting {MAX_COPIES} copies",
                    self.label
                ));
            }
            sh.ok(&self.argv("-D", fw))?;
            n += 1;
        }
        Ok(n)
    }
}

/// `iptables` or `ip6tables`, by the rule's source address.
fn xt_name(fw: &Firewall) -> &'static str {
    if fw.ipv6() { "ip6tables" } else { "iptables" }
}

/// The iptables this host uses (what `iptables` runs), if installed.
pub fn xt_default(sh: &Sh<'_>, fw: &Firewall) -> Result<Option<Xt>, String> {
    which(xt_name(fw)).map(|b| Xt::probe(sh, &b)).transpose()
}

/// Whether legacy xtables tables are loaded in this network namespace. Read
/// from /proc so that asking does not load them (running iptables-legacy
/// would, and iptables-nft then warns about it forever).
fn legacy_loaded(fw: &Firewall) -> bool {
    let f = if fw.ipv6() {
        "/proc/net/ip6_tables_names"
    } else {
        "/proc/net/ip_tables_names"
    };
    std::fs::read_to_string(f).is_ok_and(|s| !s.trim().is_empty())
}

/// Every iptables flavour that may hold the rule: the host's `iptables`,
/// and the other flavour when its tables exist.
pub fn xt_all(sh: &Sh<'_>, fw: &Firewall) -> Result<Vec<Xt>, String> {
    let mut all = Vec::new();
    let default = xt_default(sh, fw)?;
    let default_legacy = default.as_ref().map(|x| x.legacy);
    if let Some(x) = default {
        all.push(x);
    }
    let name = xt_name(fw);
    if default_legacy != Some(true)
        && legacy_loaded(fw)
        && let Some(b) = which(&format!("{name}-legacy"))
    {
        all.push(Xt::probe(sh, &b)?);
    }
    if default_legacy == Some(true)
        && let (Some(b), Some(nft)) = (which(&format!("{name}-nft")), which("nft"))
    {
        let family = if fw.ipv6() { "ip6" } else { "ip" };
        let nft = nft.display().to_string();
        let has_table = sh
            .run(&[
                nft,
                "list".into(),
                "table".into(),
                family.into(),
                "filter".into(),
            ])?
            .code
            == Some(0);
        if has_table {
            all.push(Xt::probe(sh, &b)?);
        }
    }
    Ok(all)
}

/// Native nftables, rules in hoist's own table.
#[derive(Clone, Debug)]
pub struct Nft {
    pub bin: String,
}

impl Nft {
    pub fn find() -> Option<Nft> {
        which("nft").map(|b| Nft {
            bin: b.display().to_string(),
        })
    }

    fn argv(&self, words: &[&str]) -> Vec<String> {
        std::iter::once(self.bin.clone())
            .chain(words.iter().map(|w| w.to_string()))
            .collect()
    }

    /// The handles of the rule's copies in hoist's table (none when the
    /// table or chain does not exist). Rules are told by their comment,
    /// which names the rule exactly.
    pub fn handles(&self, sh: &Sh<'_>, fw: &Firewall) -> Result<Vec<u64>, String> {
        let chain = fw.nft_chain()?;
        let out = sh.run(&self.argv(&["-a", "list", "chain", "inet", NFT_TABLE, chain]))?;
        if out.code != Some(0) {
            return Ok(Vec::new());
        }
        let tag = format!("comment \"{}\"", fw.nft_tag());
        Ok(out
            .stdout
            .lines()
            .filter(|l| l.contains(&tag))
            .filter_map(|l| l.rsplit_once("# handle ")?.1.trim().parse().ok())
            .collect())
    }

    pub fn insert(&self, sh: &Sh<'_>, fw: &Firewall) -> Result<(), String> {
        let chain = fw.nft_chain()?;
        let hook = chain;
        sh.ok(&self.argv(&["add", "table", "inet", NFT_TABLE]))?;
        // Priority before the usual filter chains (0): a drop here is final
        // whatever the host's own tables accept.
        let spec = format!("{{ type filter hook {hook} priority -10 ; policy accept ; }}");
        sh.ok(&self.argv(&["add", "chain", "inet", NFT_TABLE, chain, &spec]))?;
        let mut words = vec!["insert", "rule", "inet", NFT_TABLE, chain];
        let expr = fw.nft_expr();
        words.extend(expr.iter().map(String::as_str));
        let comment = format!("\"{}\"", fw.nft_tag());
        words.extend(["comment", &comment]);
        sh.ok(&self.argv(&words)).map(|_| ())
    }

    /// Deletes every copy, then the table when nothing of hoist's is left in
    /// it; how many copies there were.
    pub fn remove_all(&self, sh: &Sh<'_>, fw: &Firewall) -> Result<usize, String> {
        let chain = fw.nft_chain()?;
        let handles = self.handles(sh, fw)?;
        for h in &handles {
            let h = h.to_string();
            sh.ok(&self.argv(&["delete", "rule", "inet", NFT_TABLE, chain, "handle", &h]))?;
        }
        let table = sh.run(&self.argv(&["list", "table", "inet", NFT_TABLE]))?;
        if table.code == Some(0) && !table.stdout.contains("comment \"hoist ") {
            sh.ok(&self.argv(&["delete", "table", "inet", NFT_TABLE]))?;
        }
        Ok(handles.len())
    }

    /// Tables of the host's own nftables ruleset, apart from those
    /// iptables-nft makes (`ip filter`, `ip6 nat` ...) and hoist's own.
    fn native_tables(&self, sh: &Sh<'_>) -> Result<Vec<String>, String> {
        let out = sh.run(&self.argv(&["list", "tables"]))?;
        if out.code != Some(0) {
            return Ok(Vec::new());
        }
        const XT: [&str; 5] = ["filter", "nat", "mangle", "raw", "security"];
        Ok(out
            .stdout
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some("table")).then_some(())?;
                Some((w.next()?.to_string(), w.next()?.to_string()))
            })
            .filter(|(family, name)| {
                let xt_family = ["ip", "ip6", "arp"].contains(&family.as_str());
                let iptables_nft = xt_family && XT.contains(&name.as_str());
                let ours = family == "inet" && name == NFT_TABLE;
                !(iptables_nft || ours)
            })
            .map(|(f, n)| format!("{f} {n}"))
            .collect())
    }
}

/// Where a rule is added: the backend the recipe names, or the one the
/// host uses.
#[derive(Clone, Debug)]
pub enum Chosen {
    Xt(Xt),
    Nft(Nft),
}

impl Chosen {
    pub fn label(&self) -> String {
        match self {
            Chosen::Xt(x) => x.label.clone(),
            Chosen::Nft(_) => format!("nftables (table inet {NFT_TABLE})"),
        }
    }

    pub fn present(&self, sh: &Sh<'_>, fw: &Firewall) -> Result<bool, String> {
        match self {
            Chosen::Xt(x) => x.present(sh, fw),
            Chosen::Nft(n) => Ok(!n.handles(sh, fw)?.is_empty()),
        }
    }

    pub fn insert(&self, sh: &Sh<'_>, fw: &Firewall) -> Result<(), String> {
        match self {
            Chosen::Xt(x) => x.insert(sh, fw),
            Chosen::Nft(n) => n.insert(sh, fw),
        }
    }
}

/// `auto`: XiVO-era hosts (Debian 6 to 9) have only legacy iptables; Debian
/// 10 and later ship `iptables` as iptables-nft and nftables beside it, and
/// a host managed with nftables has tables of its own (`inet filter` from
/// /etc/nftables.conf). So: the one installed when only one is; with both,
/// nftables when the host has native tables and no loaded legacy ones,
/// else iptables (the rule then shows in `iptables -nvL`, where seed 000
/// tells admins to look).
pub fn choose(sh: &Sh<'_>, fw: &Firewall) -> Result<Chosen, String> {
    let xt = xt_default(sh, fw)?;
    let nft = Nft::find();
    match fw.backend {
        Backend::Iptables => xt
            .map(Chosen::Xt)
            .ok_or_else(|| format!("`backend = \"iptables\"` but {} is not installed", xt_name(fw))),
        Backend::Nftables => nft
            .map(Chosen::Nft)
            .ok_or_else(|| "`backend = \"nftables\"` but nft is not installed".to_string()),
        Backend::Auto => match (xt, nft) {
            (None, None) => Err(
                "neither iptables nor nft is installed: install the one this host uses, or name it with `backend`"
                    .into(),
            ),
            (Some(x), None) => Ok(Chosen::Xt(x)),
            (None, Some(n)) => Ok(Chosen::Nft(n)),
            (Some(x), Some(n)) => {
                let native = !n.native_tables(sh)?.is_empty();
                let legacy_in_use = x.legacy && legacy_loaded(fw);
                if native && !legacy_in_use && fw.nft_chain().is_ok() {
                    Ok(Chosen::Nft(n))
                } else {
                    Ok(Chosen::Xt(x))
                }
            }
        },
    }
}

/// A place the rule was found, and how many copies.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Found {
    pub place: String,
    pub copies: usize,
}

/// Every place on this host that holds the rule.
pub fn find_everywhere(sh: &Sh<'_>, fw: &Firewall) -> Result<Vec<Found>, String> {
    let mut found = Vec::new();
    for x in xt_all(sh, fw)? {
        let copies = x.count(sh, fw)?;
        if copies > 0 {
            found.push(Found {
                place: x.label.clone(),
                copies,
            });
        }
    }
    if let Some(n) = Nft::find()
        && fw.nft_chain().is_ok()
    {
        let copies = n.handles(sh, fw)?.len();
        if copies > 0 {
            found.push(Found {
                place: Chosen::Nft(n).label(),
                copies,
            });
        }
    }
    Ok(found)
}

/// Deletes every copy from every place; what was removed where.
pub fn remove_everywhere(sh: &Sh<'_>, fw: &Firewall) -> Result<Vec<Found>, String> {
    let mut removed = Vec::new();
    for x in xt_all(sh, fw)? {
        let copies = x.remove_all(sh, fw)?;
        if copies > 0 {
            removed.push(Found {
                place: x.label.clone(),
                copies,
            });
        }
    }
    if let Some(n) = Nft::find()
        && fw.nft_chain().is_ok()
    {
        let copies = n.remove_all(sh, fw)?;
        if copies > 0 {
            removed.push(Found {
                place: Chosen::Nft(n).label(),
                copies,
            });
        }
    }
    Ok(removed)
}
