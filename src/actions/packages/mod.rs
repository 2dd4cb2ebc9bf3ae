//! `packages`: refresh indexes, download, install, upgrade or remove packages
//! with apt, dnf or yum, never asking a question (seed 001: "questions to
//! answer about replacing packaged files that have been modified").

use std::ops::Range;

use serde::{Deserialize, Serialize};

mod apt;
mod rpm;
mod stale;

use super::{Kind, non_empty};
use crate::context::Ctx;
use crate::diag::Problem;

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
        match self.op {
            Op::Update => format!("refresh package indexes{mgr}"),
            Op::Download if names.is_empty() => {
                format!("download every package the upgrade needs{mgr} (no install)")
            }
            Op::Download => format!("download {names}{mgr} (no install)"),
            Op::Install => format!("install {names}{mgr}, {conf}"),
            Op::Upgrade if names.is_empty() => format!("upgrade all packages{mgr}, {conf}"),
            Op::Upgrade => format!("upgrade {names}{mgr}, {conf}"),
            Op::DistUpgrade => format!("dist-upgrade{mgr}, {conf}"),
            Op::Remove => format!("remove {names}{mgr}"),
            Op::Purge => format!("purge {names}{mgr}"),
        }
    }

    fn undo_kinds(&self) -> &'static [&'static str] {
        &["packages", "exec"]
    }

    fn disruptive(&self) -> bool {
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
            m => {
                let argv = rpm::command(self, m);
                ctx.run(crate::process::argv(&argv), &argv.join(" "), ctx.timeout)
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
            Op::Install | Op::Remove | Op::Purge => {
                non_empty("names", &self.names, span, problems)
            }
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
    }
}
