//! `packages`: refresh indexes, download, install, upgrade or remove packages
//! with apt, dnf or yum, never asking a question (seed 001: "questions to
//! answer about replacing packaged files that have been modified").

use std::ops::Range;

use serde::{Deserialize, Serialize};

mod apt;
mod hold;
mod rpm;
mod stale;

use super::{Kind, non_empty};
use crate::actions::ctx::Ctx;
use crate::output::diag::Problem;

pub use apt::{Change, LEFTOVER_SUFFIXES, interrupted, parse_simulation};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    /// Refresh the package indexes (`apt-get update`).
    Update,
    /// Fetch packages into the cache without installing (`-d`): the named
    /// ones, or without `names` everything a dist-upgrade would install.
    Download,
    Install,
    Upgrade,
    DistUpgrade,
    Remove,
    Purge,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    /// apt on Debian-family hosts, dnf (or yum) on RHEL-family hosts.
    #[default]
    Auto,
    Apt,
    Dnf,
    Yum,
}

/// What to do with a configuration file the admin changed and the package
/// also changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Conffiles {
    /// Keep the admin's file; the package's goes beside it (.dpkg-dist).
    #[default]
    KeepOld,
    /// Take the package's file; the admin's goes beside it (.dpkg-old).
    TakeNew,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Packages {
    pub op: Op,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub manager: Manager,
    #[serde(default)]
    pub conffiles: Conffiles,
    /// Units whose start, stop and restart by the packages' maintainer
    /// scripts are held back (apt only): they keep running the old code
    /// until the recipe restarts them, in order, in a later step.
    #[serde(default)]
    pub hold_restarts: Vec<String>,
}

impl Packages {
    /// Whether the operation changes installed packages.
    pub fn disruptive_op(&self) -> bool {
        !matches!(self.op, Op::Update | Op::Download)
    }

    /// apt or dnf/yum, from the step or from what the host has.
    fn manager(&self) -> Manager {
        match self.manager {
            Manager::Auto if std::path::Path::new("/usr/bin/apt-get").exists() => Manager::Apt,
            Manager::Auto if std::path::Path::new("/usr/bin/dnf").exists() => Manager::Dnf,
            Manager::Auto => Manager::Yum,
            m => m,
        }
    }
}

impl Kind for Packages {
    const NAME: &'static str = "packages";
    const UNDOES_EXEC: bool = true;

    fn summary(&self) -> String {
        let names = self.names.join(" ");
        let mgr = match self.manager {
            Manager::Auto => "",
            Manager::Apt => " (apt)",
            Manager::Dnf => " (dnf)",
            Manager::Yum => " (yum)",
        };
        let conf = match self.conffiles {
            Conffiles::KeepOld => "keeping changed config files",
            Conffiles::TakeNew => "taking the packaged config files",
        };
        let held = if self.hold_restarts.is_empty() {
            String::new()
        } else {
            format!(
                ", holding restarts of {} for the recipe",
                self.hold_restarts.join(", ")
            )
        };
        match self.op {
            Op::Update => format!("refresh package indexes{mgr}"),
            Op::Download if names.is_empty() => {
                format!("download every package the upgrade needs{mgr} (no install)")
            }
            Op::Download => format!("download {names}{mgr} (no install)"),
            Op::Install => format!("install {names}{mgr}, {conf}{held}"),
            Op::Upgrade if names.is_empty() => format!("upgrade all packages{mgr}, {conf}{held}"),
            Op::Upgrade => format!("upgrade {names}{mgr}, {conf}{held}"),
            Op::DistUpgrade => format!("dist-upgrade{mgr}, {conf}{held}"),
            Op::Remove => format!("remove {names}{mgr}{held}"),
            Op::Purge => format!("purge {names}{mgr}{held}"),
        }
    }

    /// A distribution upgrade, a large dump or cluster upgrade takes
    /// hours on a slow disk or mirror.
    fn default_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(6 * 3600)
    }

    fn undo_kinds(&self) -> &'static [&'static str] {
        &["packages", "exec"]
    }

    /// Only an operation that changes packages runs maintainer scripts
    /// whose restarts it could hold.
    fn held_restarts(&self) -> &[String] {
        if self.disruptive_op() {
            &self.hold_restarts
        } else {
            &[]
        }
    }

    fn disruptive(&self) -> bool {
        self.disruptive_op()
    }

    /// `update` and `download` touch only apt's lists and cache.
    fn changes_host(&self) -> bool {
        self.disruptive_op()
    }

    fn executable(&self) -> bool {
        true
    }

    /// An interrupted dpkg is a host in an unknown state: refused before the
    /// run starts, with the diagnosis and the remedy.
    fn preflight(&self, _ctx: &Ctx<'_>) -> Result<(), String> {
        match (self.manager(), apt::interrupted()) {
            (Manager::Apt, Some(why)) => Err(format!(
                "{why}: finish it with `dpkg --configure -a` and check `dpkg --audit` is empty, then upgrade"
            )),
            _ => Ok(()),
        }
    }

    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        match self.manager() {
            Manager::Apt => apt::apply(self, ctx),
            _ if !self.hold_restarts.is_empty() => Err(
                "hold_restarts needs apt (Debian's policy-rc.d); this host has dnf or yum".into(),
            ),
            m => {
                let argv = rpm::command(self, m);
                ctx.run(
                    crate::sys::process::argv(&argv),
                    &argv.join(" "),
                    ctx.timeout,
                )
            }
        }
    }

    fn builtin_undo(&self) -> bool {
        self.disruptive_op()
    }

    fn compensate(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        match self.manager() {
            Manager::Apt => apt::compensate(self, ctx),
            _ => Err("packages changed by dnf or yum are not put back by hoist yet".into()),
        }
    }

    fn applied(&self, _ctx: &Ctx<'_>) -> Option<bool> {
        match self.manager() {
            Manager::Apt => apt::applied(self),
            _ => None,
        }
    }

    fn validate(&self, span: &Range<usize>, problems: &mut Vec<Problem>) {
        match self.op {
            Op::Install | Op::Remove | Op::Purge => non_empty("names", &self.names, span, problems),
            Op::Update | Op::DistUpgrade if !self.names.is_empty() => problems.push(
                Problem::error(
                    "unexpected-key",
                    span.clone(),
                    "`names` means nothing for `update` and `dist-upgrade`",
                )
                .label("remove `names`"),
            ),
            _ => {}
        }
        if !self.hold_restarts.is_empty() {
            if !self.disruptive_op() {
                problems.push(
                    Problem::error(
                        "unexpected-key",
                        span.clone(),
                        "`hold_restarts` means nothing for `update` and `download`: they restart nothing",
                    )
                    .label("remove `hold_restarts`"),
                );
            } else if matches!(self.manager, Manager::Dnf | Manager::Yum) {
                problems.push(
                    Problem::error(
                        "unsupported",
                        span.clone(),
                        "`hold_restarts` needs apt: it works through Debian's policy-rc.d, which dnf and yum do not ask",
                    )
                    .label("remove `hold_restarts` or use apt"),
                );
            }
            non_empty_names("hold_restarts", &self.hold_restarts, span, problems);
        }
    }
}

/// Every entry a unit name: an empty one would hold nothing, silently.
fn non_empty_names(key: &str, names: &[String], span: &Range<usize>, problems: &mut Vec<Problem>) {
    if names
        .iter()
        .any(|n| n.trim().is_empty() || n.contains(char::is_whitespace))
    {
        problems.push(
            Problem::error(
                "bad-value",
                span.clone(),
                format!("`{key}` holds an empty or spaced unit name"),
            )
            .label("name each unit, e.g. \"asterisk\""),
        );
    }
}
