//! Reading facts off this host: OS, architecture, the packages the recipe
//! names, the product's installed and candidate versions, the recipe's own
//! fact probes. Probes are read-only and bounded in time.

use std::time::Duration;

use crate::recipe::condition::Condition;
use crate::recipe::facts::{Facts, Value};
use crate::recipe::{Probe, Recipe};
use crate::sys::process;
use crate::version::Version;

const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Facts given by the admin on the command line.
#[derive(Clone, Debug, Default)]
pub struct Given {
    pub roles: Vec<String>,
    pub facts: Vec<(String, String)>,
}

pub use crate::sys::pkgdb::{AptView, installed_version};

/// Given the facts read so far, the view to read a refreshed candidate
/// through, if the host's own apt configuration would not show what the
/// run will see (an archive key the run trusts before it refreshes).
pub type CandidateView<'a> = &'a dyn Fn(&Facts) -> Result<Option<AptView>, String>;

/// Every fact the recipe can use, read from this host.
pub fn gather(recipe: &Recipe, given: &Given, view: CandidateView<'_>) -> Result<Facts, String> {
    let mut facts = Facts::default();
    os_release(&mut facts);
    if let Some(arch) = read_cmd(&["dpkg", "--print-architecture"]) {
        facts.set("arch", Value::Str(arch));
    } else {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        facts.set("arch", Value::Str(arch.into()));
    }
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        facts.set("hostname", Value::Str(h.trim().into()));
    }
    for pkg in referenced_packages(recipe) {
        if let Some(v) = installed_version(&pkg).and_then(|t| Version::parse(&t).ok()) {
            facts.set(format!("package.{pkg}"), Value::Version(v));
        }
    }
    if let Some(v) =
        probe_text(&recipe.product.version, false).and_then(|t| Version::parse(&t).ok())
    {
        facts.set("current", Value::Version(v));
    }
    for f in &recipe.facts {
        let text = f.probe.as_ref().and_then(|p| probe_text(p, false));
        if let Some(t) = text.or_else(|| f.default.clone()) {
            facts.set_text(&recipe.catalogue, &f.name, &t)?;
        }
    }
    if let Some(c) = &recipe.product.candidate {
        let text = match (&c.package, c.refresh) {
            (Some(pkg), true) => {
                // Through the view when there is one: the lists it fetches
                // stay in its directory, read by this probe only.
                let view = view(&facts)?;
                let opts = view.as_ref().map_or(&[][..], |v| v.options());
                refresh_lists(pkg, opts)?;
                candidate_version(pkg, opts)
            }
            _ => probe_text(c, true),
        };
        if let Some(v) = text.and_then(|t| Version::parse(&t).ok()) {
            facts.set("candidate", Value::Version(v));
        }
    }
    apply_given(recipe, &mut facts, given)?;
    // Roles nobody gave: the recipe's probes tell them, when it has some.
    if facts
        .get("roles")
        .is_none_or(|r| matches!(r, Value::List(l) if l.is_empty()))
        && !recipe.product.role_probes.is_empty()
    {
        let found: Vec<String> = recipe
            .product
            .role_probes
            .iter()
            .filter(|(_, test)| crate::host::checks::test(test).is_ok())
            .map(|(role, _)| role.clone())
            .collect();
        facts.set("roles", Value::List(found));
    }
    Ok(facts)
}

/// Roles and `--fact` values override whatever was probed or loaded.
pub fn apply_given(recipe: &Recipe, facts: &mut Facts, given: &Given) -> Result<(), String> {
    if !given.roles.is_empty() {
        facts.set("roles", Value::List(given.roles.clone()));
    }
    if facts.get("roles").is_none() {
        facts.set("roles", Value::List(Vec::new()));
    }
    for (k, v) in &given.facts {
        facts.set_text(&recipe.catalogue, k, v)?;
    }
    // Recipe facts nobody gave keep their default.
    for f in &recipe.facts {
        if facts.get(&f.name).is_none()
            && let Some(d) = &f.default
        {
            facts.set_text(&recipe.catalogue, &f.name, d)?;
        }
    }
    Ok(())
}

fn os_release(facts: &mut Facts) {
    let Ok(text) = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
    else {
        return;
    };
    let mut id_like = String::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').to_string();
        match k {
            "ID" => facts.set("os.id", Value::Str(v)),
            "VERSION_CODENAME" => facts.set("os.codename", Value::Str(v)),
            "VERSION_ID" => {
                if let Ok(ver) = Version::parse(&v) {
                    facts.set("os.version_id", Value::Version(ver));
                }
            }
            "ID_LIKE" => id_like = v,
            _ => {}
        }
    }
    let id = match facts.get("os.id") {
        Some(Value::Str(s)) => s.clone(),
        _ => String::new(),
    };
    let family = family_of(&id, &id_like);
    facts.set("os.family", Value::Str(family));
}

/// `debian` or `rhel` (or the id itself) from os-release's ID and ID_LIKE.
pub fn family_of(id: &str, id_like: &str) -> String {
    let words: Vec<&str> = std::iter::once(id)
        .chain(id_like.split_whitespace())
        .collect();
    if words.iter().any(|w| ["debian", "ubuntu"].contains(w)) {
        "debian".into()
    } else if words
        .iter()
        .any(|w| ["rhel", "centos", "fedora"].contains(w))
    {
        "rhel".into()
    } else {
        id.into()
    }
}

/// `package.<name>` facts named anywhere in the recipe's conditions.
fn referenced_packages(recipe: &Recipe) -> Vec<String> {
    let conds: Vec<&Condition> = recipe
        .steps
        .iter()
        .filter_map(|s| s.when.as_ref())
        .chain(
            recipe
                .checks
                .iter()
                .flat_map(|c| c.when.iter().chain(c.require.iter())),
        )
        .collect();
    let mut out: Vec<String> = conds
        .iter()
        .flat_map(|c| c.facts())
        .filter_map(|m| m.fact.strip_prefix("package.").map(String::from))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn read_cmd(args: &[&str]) -> Option<String> {
    let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let out = process::run(&mut process::argv(&argv), PROBE_TIMEOUT).ok()?;
    let text = out.stdout.trim().to_string();
    (out.success() && !text.is_empty()).then_some(text)
}

/// Bounds `apt-get update` when a candidate is read after it.
const REFRESH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// `apt-get update` (seed 001: xivo-upgrade runs it before showing the new
/// version). Only apt's lists change. A failure is an error: a candidate
/// read from stale lists would say "up to date" when it is not.
fn refresh_lists(pkg: &str, opts: &[String]) -> Result<(), String> {
    let mut argv = vec!["apt-get".to_string(), "-q".into()];
    argv.extend(opts.iter().cloned());
    argv.push("update".into());
    let mut cmd = process::argv(&argv);
    cmd.env("DEBIAN_FRONTEND", "noninteractive");
    let out = process::run(&mut cmd, REFRESH_TIMEOUT)
        .map_err(|e| format!("apt-get update (to read {pkg}'s candidate version): {e}"))?;
    // apt-get update exits 0 on some fetch errors: its `W:`/`E:` lines say.
    let errors: Vec<&str> = out
        .stdout
        .lines()
        .chain(out.stderr.lines())
        .filter(|l| l.starts_with("E:") || l.starts_with("Err:") || l.contains("NO_PUBKEY"))
        .collect();
    if !out.success() || !errors.is_empty() {
        return Err(format!(
            "could not refresh the package lists to read {pkg}'s candidate version (apt-get update): {}",
            if errors.is_empty() {
                out.stderr.trim().to_string()
            } else {
                errors.join("; ")
            }
        ));
    }
    Ok(())
}

/// The version apt would install (`Candidate:` of `apt-cache policy`),
/// with apt's options `opts`.
pub fn candidate_version(pkg: &str, opts: &[String]) -> Option<String> {
    let mut argv: Vec<&str> = vec!["apt-cache"];
    argv.extend(opts.iter().map(String::as_str));
    argv.extend(["policy", pkg]);
    let text = read_cmd(&argv)?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Candidate:"))
        .map(|v| v.trim().to_string())
        .filter(|v| v != "(none)")
}

/// Runs a probe; `candidate` reads a package's candidate, not installed,
/// version.
/// The version `p` reads on this host now (the product's, after a run).
pub fn version_now(p: &Probe) -> Option<Version> {
    probe_text(p, false).and_then(|t| Version::parse(&t).ok())
}

fn probe_text(p: &Probe, candidate: bool) -> Option<String> {
    let raw = if let Some(pkg) = &p.package {
        if candidate {
            candidate_version(pkg, &[])?
        } else {
            installed_version(pkg)?
        }
    } else if let Some(argv) = &p.command {
        let out = process::run(&mut process::argv(argv), PROBE_TIMEOUT).ok()?;
        out.success().then_some(out.stdout)?
    } else if let Some(sh) = &p.shell {
        let out = process::run(&mut process::shell(sh), PROBE_TIMEOUT).ok()?;
        out.success().then_some(out.stdout)?
    } else if let Some(f) = &p.file {
        std::fs::read_to_string(f).ok()?
    } else if let Some(path) = &p.exists {
        return Some(std::path::Path::new(path).exists().to_string());
    } else {
        return None;
    };
    extract(&raw, p.regex.as_deref())
}

/// The first capture group of `regex` (or its whole match), or the trimmed
/// text when there is no regex.
pub fn extract(text: &str, regex: Option<&str>) -> Option<String> {
    let out = match regex {
        None => text.trim().to_string(),
        Some(r) => {
            let re = regex::Regex::new(r).ok()?;
            let caps = re.captures(text)?;
            caps.get(1)
                .or_else(|| caps.get(0))?
                .as_str()
                .trim()
                .to_string()
        }
    };
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_takes_the_first_group() {
        assert_eq!(
            extract("XiVO 1.2.4\n", Some(r"XiVO (\S+)")).as_deref(),
            Some("1.2.4")
        );
        assert_eq!(extract("  1.0 \n", None).as_deref(), Some("1.0"));
        assert_eq!(extract("nothing", Some(r"(\d+\.\d+)")), None);
    }

    #[test]
    fn os_families() {
        assert_eq!(family_of("ubuntu", "debian"), "debian");
        assert_eq!(family_of("centos", "rhel fedora"), "rhel");
        assert_eq!(family_of("debian", ""), "debian");
    }
}
