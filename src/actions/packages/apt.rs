//! apt and dpkg: unattended, bounded, and undoable offline.
//!
//! Before anything changes, a simulation (`apt-get -s`) says which packages
//! the step will install, upgrade or remove; their installed versions are
//! written to the step's directory with the exact old `.deb` of each (from
//! apt's cache, else downloaded, else rebuilt by dpkg-repack), fsynced. The
//! built-in undo reinstalls those `.deb`s and removes what the step newly
//! installed, with no network.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Conffiles, Op, Packages};
use crate::actions::ctx::Ctx;

/// A package the step changes: its version before and after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub package: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// What the step saved before acting (`packages.json` in its directory).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Manifest {
    changes: Vec<Change>,
    /// Old `.deb` files kept, under `debs/`.
    debs: Vec<String>,
    /// Config files left beside live ones before the step (`.dpkg-dist`...):
    /// the undo removes those the step added.
    #[serde(default)]
    leftovers_before: Vec<PathBuf>,
    /// Packages the step installs that left nothing on the host before (no
    /// configuration files either): the undo purges them, so none of their
    /// files stays. One that had its configuration files left is only
    /// removed (those files are the admin's).
    #[serde(default)]
    absent_before: Vec<String>,
}

/// How long to wait for another apt or dpkg to release its lock.
const LOCK_WAIT_SECS: u32 = 300;

fn apt_get(p: &Packages, args: &[&str]) -> Command {
    let mut c = Command::new("apt-get");
    c.args(["-q", "-y"])
        .arg(format!("-oDPkg::Lock::Timeout={LOCK_WAIT_SECS}"))
        .arg("-oDpkg::Options::=--force-confdef");
    match p.conffiles {
        Conffiles::KeepOld => c
            .arg("-oDpkg::Options::=--force-confold")
            .env("UCF_FORCE_CONFFOLD", "1"),
        Conffiles::TakeNew => c
            .arg("-oDpkg::Options::=--force-confnew")
            .env("UCF_FORCE_CONFFNEW", "1"),
    };
    // Seed 001: "questions to answer about replacing packaged files that have
    // been modified": none are ever asked.
    c.env("DEBIAN_FRONTEND", "noninteractive")
        .env("APT_LISTCHANGES_FRONTEND", "none")
        .env("NEEDRESTART_MODE", "l")
        .args(args);
    c
}

/// The apt-get arguments for the step's operation.
pub fn op_args(p: &Packages) -> Vec<String> {
    let names = p.names.iter().cloned();
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match p.op {
        Op::Update => v(&["update"]),
        Op::Download if p.names.is_empty() => v(&["-d", "dist-upgrade"]),
        Op::Download => v(&["-d", "install"]).into_iter().chain(names).collect(),
        Op::Install => v(&["install"]).into_iter().chain(names).collect(),
        Op::Upgrade if p.names.is_empty() => v(&["upgrade"]),
        Op::Upgrade => v(&["install", "--only-upgrade"])
            .into_iter()
            .chain(names)
            .collect(),
        Op::DistUpgrade => v(&["dist-upgrade"]),
        Op::Remove => v(&["remove"]).into_iter().chain(names).collect(),
        Op::Purge => v(&["purge"]).into_iter().chain(names).collect(),
    }
}

/// Parses `apt-get -s` output: `Inst pkg [old] (new ...)`, `Remv pkg [old]`,
/// `Purg pkg [old]`.
pub fn parse_simulation(out: &str) -> Vec<Change> {
    let mut changes = Vec::new();
    for line in out.lines() {
        let mut words = line.split_whitespace();
        let (Some(kind), Some(pkg)) = (words.next(), words.next()) else {
            continue;
        };
        if !matches!(kind, "Inst" | "Remv" | "Purg") {
            continue;
        }
        let rest: Vec<&str> = words.collect();
        let rest = rest.join(" ");
        let old = rest
            .strip_prefix('[')
            .and_then(|r| r.split(']').next())
            .map(String::from);
        let new = (kind == "Inst")
            .then(|| {
                rest.split('(')
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
            })
            .flatten()
            .map(String::from);
        // A package name may carry `:arch`.
        let package = pkg.to_string();
        if let Some(c) = changes
            .iter_mut()
            .find(|c: &&mut Change| c.package == package)
        {
            c.new = new;
        } else {
            changes.push(Change { package, old, new });
        }
    }
    changes
}

/// Whether dpkg was interrupted: `/var/lib/dpkg/updates` not empty, or
/// `dpkg --audit` reporting half-configured packages. The text says what.
pub fn interrupted() -> Option<String> {
    let pending = std::fs::read_dir("/var/lib/dpkg/updates")
        .map(|d| d.filter_map(|e| e.ok()).count())
        .unwrap_or(0);
    let audit = crate::sys::process::run(
        &mut crate::sys::process::argv(&["dpkg".into(), "--audit".into()]),
        Duration::from_secs(60),
    )
    .map(|o| o.stdout.trim().to_string())
    .unwrap_or_default();
    match (pending, audit.is_empty()) {
        (0, true) => None,
        (n, _) => Some(format!(
            "dpkg was interrupted ({n} pending update(s) in /var/lib/dpkg/updates{}{})",
            if audit.is_empty() {
                ""
            } else {
                "; dpkg --audit: "
            },
            audit.lines().next().unwrap_or("")
        )),
    }
}

fn installed(pkg: &str) -> Option<String> {
    crate::sys::pkgdb::installed_version(pkg)
}

/// `name_version_arch.deb` as apt names files in its cache (an epoch's `:`
/// becomes `%3a`).
fn cached_deb(pkg: &str, version: &str) -> Option<PathBuf> {
    cached_deb_in(Path::new("/var/cache/apt/archives"), pkg, version)
}

fn cached_deb_in(dir: &Path, pkg: &str, version: &str) -> Option<PathBuf> {
    let name = pkg.split(':').next().unwrap_or(pkg);
    let prefix = format!("{name}_{}_", version.replace(':', "%3a"));
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
}

/// Keeps the exact installed `.deb` of `pkg` in `debs`.
fn keep_old_deb(ctx: &Ctx<'_>, pkg: &str, version: &str, debs: &Path) -> Result<PathBuf, String> {
    let name = pkg.split(':').next().unwrap_or(pkg);
    if let Some(cached) = cached_deb(pkg, version) {
        let dest = debs.join(cached.file_name().unwrap_or_default());
        std::fs::copy(&cached, &dest).map_err(|e| format!("{}: {e}", cached.display()))?;
        return Ok(dest);
    }
    let before: Vec<PathBuf> = list_debs(debs);
    let mut cmd = Command::new("apt-get");
    cmd.args(["-q", "download"])
        .arg(format!("{name}={version}"))
        .current_dir(debs);
    if ctx
        .run(
            cmd,
            &format!("keep {name} {version}: apt-get download"),
            Duration::from_secs(600),
        )
        .is_ok()
        && let Some(p) = list_debs(debs).into_iter().find(|p| !before.contains(p))
    {
        return Ok(p);
    }
    let mut cmd = Command::new("dpkg-repack");
    cmd.arg(name).current_dir(debs);
    if ctx
        .run(
            cmd,
            &format!("keep {name} {version}: dpkg-repack"),
            Duration::from_secs(600),
        )
        .is_ok()
        && let Some(p) = list_debs(debs).into_iter().find(|p| !before.contains(p))
    {
        return Ok(p);
    }
    Err(format!(
        "cannot keep {name} {version} for the undo: not in apt's cache, not downloadable, and dpkg-repack could not rebuild it; nothing was changed"
    ))
}

fn list_debs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "deb"))
                .collect()
        })
        .unwrap_or_default()
}

fn manifest_path(ctx: &Ctx<'_>) -> PathBuf {
    ctx.step_dir.join("packages.json")
}

pub fn apply(p: &Packages, ctx: &mut Ctx<'_>) -> Result<(), String> {
    if let Some(why) = interrupted() {
        // Our own interrupted operation (a crash or power cut mid-upgrade):
        // finish what dpkg was doing before going on.
        ctx.note(&format!("{why}: repairing with dpkg --configure -a"));
        if let Err(e) = repair(ctx) {
            // A package whose unpack was cut is half-installed: dpkg cannot
            // configure it, only install it again. Its new .deb is in apt's
            // cache (the step downloaded it), so the run can go forward.
            ctx.note(&format!(
                "{e}: installing the half-installed packages again"
            ));
            if let Err(e) = reinstall_half_installed(ctx).and_then(|()| repair(ctx)) {
                // Cut in the middle of a large upgrade, unpacked packages
                // may need others apt has not unpacked yet: dpkg alone
                // cannot finish that, and apt's own commands then refuse
                // ("unmet dependencies ... try apt --fix-broken install").
                // The configure folded dpkg's journal in, so apt can run:
                // `apt-get -f install` unpacks what the unpacked packages
                // need (from the cache the step filled) and configures
                // them, and the step's own apt command below does the rest;
                // if it cannot, the step fails with apt's own words.
                ctx.note(&format!("{e}: apt-get -f install finishes the rest"));
                if let Err(e) = ctx.run(
                    apt_get(p, &["-f", "install"]),
                    "apt-get -f install",
                    ctx.timeout,
                ) {
                    ctx.note(&format!("{e}: the step's own apt-get goes on from there"));
                }
            }
        }
    }
    let args = op_args(p);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    if p.disruptive_op() && !manifest_path(ctx).exists() {
        save_before(p, ctx, &argv)?;
    }
    let held = super::hold::hold(ctx, &p.hold_restarts)?;
    ctx.run(
        apt_get(p, &argv),
        &format!("apt-get {}", args.join(" ")),
        ctx.timeout,
    )?;
    drop(held);
    if p.disruptive_op() {
        report_leftovers(ctx);
        restart_stale(ctx, &p.hold_restarts)?;
    }
    Ok(())
}

/// Seed 001: "reload services when libraries are modified". The product's
/// own services (the recipe's `[[services]]`) still running replaced code
/// are restarted in their order; any other service is reported, not
/// touched: restarting sshd or dbus unasked is not hoist's call. Units
/// whose restarts the step holds are left to the recipe's own restart.
fn restart_stale(ctx: &mut Ctx<'_>, held: &[String]) -> Result<(), String> {
    let stale = super::stale::stale_units();
    if stale.is_empty() {
        return Ok(());
    }
    let name = |u: &str| u.trim_end_matches(".service").to_string();
    let declared: Vec<String> = stale
        .iter()
        .map(|(u, _)| name(u))
        .filter(|u| ctx.services.iter().any(|s| s.name == *u))
        .filter(|u| !held.iter().any(|h| h.trim_end_matches(".service") == u))
        .collect();
    for unit in crate::recipe::order::sort_units(ctx.services, &declared, false) {
        let spec = ctx.services.iter().find(|s| s.name == unit);
        let cmd =
            crate::actions::service::command(spec, &unit, crate::actions::service::Op::Restart)?;
        ctx.run(
            cmd,
            &format!("restart {unit}: it still ran replaced files"),
            ctx.timeout,
        )?;
    }
    let others: Vec<String> = stale
        .iter()
        .filter(|(u, _)| !declared.contains(&name(u)))
        .filter(|(u, _)| !held.iter().any(|h| name(h) == name(u)))
        .map(|(u, f)| format!("{u} ({f})"))
        .collect();
    if !others.is_empty() {
        let list = others.join(", ");
        ctx.note(&format!(
            "services still running replaced files (restart them when convenient): {list}"
        ));
        let _ = ctx.event("stale-services", &list);
    }
    Ok(())
}

/// Finishes what an interrupted dpkg was doing, keeping local config files.
fn repair(ctx: &Ctx<'_>) -> Result<(), String> {
    let mut c = Command::new("dpkg");
    c.args(["--configure", "-a", "--force-confdef", "--force-confold"])
        .env("DEBIAN_FRONTEND", "noninteractive");
    ctx.run(c, "dpkg --configure -a", ctx.timeout)
}

/// Installs again, from apt's cache (or fetched again), the new version of
/// every package a cut left half-installed (or marked for reinstallation), as the step's
/// manifest names it. Without a manifest the interruption is not this
/// step's, and nothing is guessed.
fn reinstall_half_installed(ctx: &Ctx<'_>) -> Result<(), String> {
    let m: Manifest = std::fs::read(manifest_path(ctx))
        .ok()
        .and_then(|t| serde_json::from_slice(&t).ok())
        .ok_or("dpkg was interrupted before this step saved what it changes: finish it by hand")?;
    let mut q = Command::new("dpkg-query");
    q.args(["-W", "-f", "${Package} ${db:Status-Abbrev}\n"]);
    let out = crate::sys::process::run(&mut q, Duration::from_secs(60))
        .map_err(|e| format!("dpkg-query: {e}"))?;
    let broken: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, st)| {
            st.as_bytes().get(1) == Some(&b'H') || st.as_bytes().get(2) == Some(&b'R')
        })
        .map(|(p, _)| p)
        .collect();
    let fetched = ctx.step_dir.join("new-debs");
    crate::sys::fsutil::private_dir(&fetched).map_err(|e| e.to_string())?;
    let mut debs = Vec::new();
    for pkg in broken {
        let name = pkg.split(':').next().unwrap_or(pkg);
        let change = m
            .changes
            .iter()
            .find(|c| c.package.split(':').next() == Some(name));
        let Some(version) = change.and_then(|c| c.new.as_deref()) else {
            return Err(format!(
                "{name} is half-installed but this step did not upgrade it: roll back instead"
            ));
        };
        // apt's cache has it when it came from a mirror; a `file:` source
        // is read in place, and apt-get download copies it.
        let deb = match cached_deb(name, version) {
            Some(d) => d,
            None => {
                let mut cmd = Command::new("apt-get");
                cmd.args(["-q", "download"])
                    .arg(format!("{name}={version}"))
                    .current_dir(&fetched);
                ctx.run(
                    cmd,
                    &format!("fetch {name} {version} again"),
                    Duration::from_secs(600),
                )?;
                cached_deb_in(&fetched, name, version).ok_or(format!(
                    "{name} {version}: apt-get download gave no .deb: roll back instead"
                ))?
            }
        };
        debs.push(deb);
    }
    if debs.is_empty() {
        return Err(
            "dpkg --configure -a failed and no package is half-installed: see the run log".into(),
        );
    }
    let mut c = Command::new("dpkg");
    // Unpack only: in the middle of a large upgrade the packages these
    // need are themselves unpacked and not yet configured, so configuring
    // these alone would fail; the `dpkg --configure -a` that follows
    // configures everything together.
    c.args(["--unpack", "--force-confdef", "--force-confold"])
        .args(&debs)
        .env("DEBIAN_FRONTEND", "noninteractive");
    ctx.run(c, "unpack the half-installed packages again", ctx.timeout)
}

/// The durability point of the undo: which packages change, and their old
/// `.deb`s, on disk before apt runs.
fn save_before(p: &Packages, ctx: &mut Ctx<'_>, argv: &[&str]) -> Result<(), String> {
    let mut sim = apt_get(p, &["-s"]);
    sim.args(argv);
    sim.env("LC_ALL", "C");
    let out = crate::sys::process::run(&mut sim, Duration::from_secs(600))
        .map_err(|e| format!("apt-get -s: {e}"))?;
    if !out.success() {
        return Err(format!(
            "apt-get -s {}: {}",
            argv.join(" "),
            out.stderr.trim()
        ));
    }
    let changes = parse_simulation(&out.stdout);
    let debs = ctx.step_dir.join("debs");
    crate::sys::fsutil::private_dir(&debs).map_err(|e| e.to_string())?;
    let mut kept = Vec::new();
    // A point of no return is never undone: no old .deb is kept for it (the
    // old release's may not be downloadable any more), but the manifest
    // still names the new versions, which a resume after a cut unpack
    // installs again.
    for c in changes.iter().filter(|_| ctx.undoable) {
        if let Some(old) = &c.old {
            let deb = keep_old_deb(ctx, &c.package, old, &debs)?;
            kept.push(
                deb.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    for d in list_debs(&debs) {
        std::fs::File::open(&d)
            .and_then(|f| f.sync_all())
            .map_err(|e| e.to_string())?;
    }
    crate::sys::fsutil::sync_dir(&debs).map_err(|e| e.to_string())?;
    let absent_before = changes
        .iter()
        .filter(|c| c.old.is_none() && status_char(&c.package).is_none_or(|s| s == 'n'))
        .map(|c| c.package.clone())
        .collect();
    let manifest = Manifest {
        changes,
        debs: kept,
        leftovers_before: leftovers(),
        absent_before,
    };
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
    crate::sys::fsutil::write_atomic(&manifest_path(ctx), &text).map_err(|e| e.to_string())?;
    let summary: Vec<String> = manifest
        .changes
        .iter()
        .map(|c| {
            format!(
                "{} {} -> {}",
                c.package,
                c.old.as_deref().unwrap_or("(none)"),
                c.new.as_deref().unwrap_or("(removed)")
            )
        })
        .collect();
    ctx.note(&format!(
        "packages to change: {}",
        if summary.is_empty() {
            "none".into()
        } else {
            summary.join(", ")
        }
    ));
    Ok(())
}

/// Puts the packages back: the kept `.deb`s reinstalled (downgrades
/// allowed, nothing downloaded), what the step newly installed removed.
pub fn compensate(p: &Packages, ctx: &mut Ctx<'_>) -> Result<(), String> {
    let Ok(text) = std::fs::read(manifest_path(ctx)) else {
        ctx.note("nothing was saved: the step changed no package");
        return Ok(());
    };
    let m: Manifest = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
    // The old versions' maintainer scripts restart their services as they
    // always did: the ones the step held run the new code otherwise.
    super::hold::remove_leftover(ctx);
    // Going back must not depend on the new versions configuring: their
    // postinst may be what failed (a schema migration), or a power cut may
    // have left one half-installed. dpkg unpacks the kept versions over
    // either state; a repair is tried, and its failure only noted.
    if let Some(why) = interrupted() {
        ctx.note(&format!(
            "{why}: trying dpkg --configure -a before going back"
        ));
        if let Err(e) = repair(ctx) {
            ctx.note(&format!("{e}: going back over the unconfigured packages"));
        }
    }
    let debs = ctx.step_dir.join("debs");
    let wanted: Vec<&Change> = m.changes.iter().filter(|c| c.old.is_some()).collect();
    let to_reinstall: Vec<PathBuf> = m
        .debs
        .iter()
        .map(|d| debs.join(d))
        .zip(wanted.iter())
        .filter(|(_, c)| installed(&c.package) != c.old)
        .map(|(d, _)| d)
        .collect();
    if !to_reinstall.is_empty() {
        // dpkg itself, not apt: apt refuses to act while dpkg's state is
        // broken, and the kept set was consistent as installed before.
        let reinstall = || {
            let mut c = Command::new("dpkg");
            c.args(["--install", "--force-confdef", "--force-confold"])
                .args(&to_reinstall)
                .env("DEBIAN_FRONTEND", "noninteractive");
            c
        };
        if let Err(e) = ctx.run(reinstall(), "reinstall the kept packages", ctx.timeout) {
            // A package renamed by the step (seed 003: cloudstack-management
            // replaces and conflicts with cloud-client) keeps its old name
            // from coming back while it is installed: what the step newly
            // installed goes first, then the kept set again. Their
            // dependencies hold again once the kept set is back.
            let fresh = fresh_installed(&m);
            if fresh.is_empty() {
                return Err(e);
            }
            ctx.note(&format!(
                "{e}: removing what the step newly installed ({}) first, then again",
                fresh.join(", ")
            ));
            let mut c = Command::new("dpkg");
            let how = if fresh.iter().all(|f| m.absent_before.contains(f)) {
                "--purge"
            } else {
                "--remove"
            };
            c.args([how, "--force-depends"])
                .args(&fresh)
                .env("DEBIAN_FRONTEND", "noninteractive");
            ctx.run(c, "remove what the step installed", ctx.timeout)?;
            ctx.run(reinstall(), "reinstall the kept packages", ctx.timeout)?;
        }
    }
    if interrupted().is_some() {
        repair(ctx)?;
    }
    // Purged when they left nothing before (their configuration files are
    // the step's too), else removed.
    let (purge, remove): (Vec<String>, Vec<String>) = fresh_installed(&m)
        .into_iter()
        .partition(|f| m.absent_before.contains(f));
    for (verb, names) in [("purge", purge), ("remove", remove)] {
        if names.is_empty() {
            continue;
        }
        let mut argv = vec![verb];
        argv.extend(names.iter().map(String::as_str));
        ctx.run(
            apt_get(p, &argv),
            "remove what the step installed",
            ctx.timeout,
        )?;
    }
    for extra in leftovers()
        .into_iter()
        .filter(|f| !m.leftovers_before.contains(f))
    {
        ctx.note(&format!(
            "remove {}: the undone upgrade left it",
            extra.display()
        ));
        std::fs::remove_file(&extra).map_err(|e| format!("{}: {e}", extra.display()))?;
    }
    Ok(())
}

/// The packages the step installed that were not there before, and are
/// still on the host: installed, or unpacked or half-configured by a
/// failed postinst (seed 003's schema migration failing in dpkg).
fn fresh_installed(m: &Manifest) -> Vec<String> {
    m.changes
        .iter()
        .filter(|c| c.old.is_none() && present(&c.package))
        .map(|c| c.package.clone())
        .collect()
}

/// dpkg has the package's files: installed, half-installed, unpacked,
/// half-configured or awaiting triggers (not absent, not config files only).
fn present(pkg: &str) -> bool {
    status_char(pkg).is_some_and(|c| "iHUFWt".contains(c))
}

/// dpkg's current status letter of `pkg` (`i`, `c` for config files only,
/// `n` not installed ...); `None` when dpkg does not know it.
fn status_char(pkg: &str) -> Option<char> {
    let out = crate::sys::process::run(
        &mut crate::sys::process::argv(&[
            "dpkg-query".into(),
            "-W".into(),
            "-f".into(),
            "${db:Status-Abbrev}".into(),
            pkg.into(),
        ]),
        Duration::from_secs(30),
    )
    .ok()?;
    if !out.success() {
        return None;
    }
    out.stdout.chars().nth(1)
}

pub fn applied(p: &Packages) -> Option<bool> {
    match p.op {
        Op::Install => Some(p.names.iter().all(|n| installed(n).is_some())),
        Op::Remove | Op::Purge => Some(p.names.iter().all(|n| installed(n).is_none())),
        Op::Upgrade | Op::DistUpgrade => {
            let args = op_args(p);
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut sim = apt_get(p, &["-s"]);
            sim.args(&argv).env("LC_ALL", "C");
            let out = crate::sys::process::run(&mut sim, Duration::from_secs(600)).ok()?;
            out.success()
                .then(|| parse_simulation(&out.stdout).is_empty())
        }
        Op::Update | Op::Download => None,
    }
}

/// Configuration files a package left beside the admin's (`.dpkg-dist`,
/// `.dpkg-old`, `.dpkg-new`, `.ucf-*`, `.rpmnew`, `.rpmsave`), reported in
/// the run log and the journal so nobody has to hunt for them.
fn report_leftovers(ctx: &mut Ctx<'_>) {
    let found = leftovers();
    if found.is_empty() {
        return;
    }
    let list = found
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    ctx.note(&format!(
        "configuration files left beside the live ones: {list}"
    ));
    let _ = ctx.event("conffiles", &list);
}

/// Every such file under /etc now.
fn leftovers() -> Vec<PathBuf> {
    let mut found = Vec::new();
    walk(Path::new("/etc"), 6, &mut found);
    found.sort();
    found
}

pub const LEFTOVER_SUFFIXES: [&str; 8] = [
    ".dpkg-dist",
    ".dpkg-old",
    ".dpkg-new",
    ".ucf-dist",
    ".ucf-old",
    ".ucf-new",
    ".rpmnew",
    ".rpmsave",
];

fn walk(dir: &Path, depth: u32, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() && depth > 0 {
            walk(&p, depth - 1, out);
        } else if ft.is_file()
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| LEFTOVER_SUFFIXES.iter().any(|s| n.ends_with(s)))
        {
            out.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_a_simulation_will_do() {
        let out = "NOTE: This is only a simulation!\n\
                   Inst xivo-agid [1.2.2] (1.2.3 xivo-1.2.3 [all])\n\
                   Inst xivo-new (1.2.3 xivo-1.2.3 [all])\n\
                   Remv cloud-client [2.2.14]\n\
                   Conf xivo-agid (1.2.3 xivo-1.2.3 [all])\n";
        assert_eq!(
            parse_simulation(out),
            vec![
                Change {
                    package: "xivo-agid".into(),
                    old: Some("1.2.2".into()),
                    new: Some("1.2.3".into())
                },
                Change {
                    package: "xivo-new".into(),
                    old: None,
                    new: Some("1.2.3".into())
                },
                Change {
                    package: "cloud-client".into(),
                    old: Some("2.2.14".into()),
                    new: None
                },
            ]
        );
    }

    #[test]
    fn operations_map_to_apt_get() {
        let p = |op, names: &[&str]| Packages {
            op,
            names: names.iter().map(|s| s.to_string()).collect(),
            manager: super::super::Manager::Apt,
            conffiles: Conffiles::KeepOld,
            hold_restarts: vec![],
        };
        assert_eq!(op_args(&p(Op::Download, &[])), ["-d", "dist-upgrade"]);
        assert_eq!(
            op_args(&p(Op::Upgrade, &["xivo"])),
            ["install", "--only-upgrade", "xivo"]
        );
        assert_eq!(
            op_args(&p(Op::Purge, &["cloud-client"])),
            ["purge", "cloud-client"]
        );
    }
}
