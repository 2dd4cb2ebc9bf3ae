//! `service`: stop, start or restart services. Order comes from the
//! recipe's `[[services]]` `after` relations (seed 001: "all XiVO services are
//! restarted in the right order"): stop in reverse order, start in order.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::{Kind, non_empty};
use crate::actions::ctx::Ctx;
use crate::output::diag::Problem;
use crate::recipe::{Backend, ServiceSpec};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Stop,
    Start,
    Restart,
    Reload,
    Enable,
    Disable,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub op: Op,
    pub units: Vec<String>,
}

impl Kind for Service {
    const NAME: &'static str = "service";
    const UNDOES_EXEC: bool = true;

    fn summary(&self) -> String {
        let verb = serde_json::to_value(self.op)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let how = if self.op == Op::Restart && self.units.len() > 1 {
            " (all stopped in reverse order, then started in order)"
        } else {
            ""
        };
        format!("{verb} {}{how}", self.units.join(", "))
    }

    fn undo_kinds(&self) -> &'static [&'static str] {
        &["service", "exec"]
    }

    fn starts(&self, unit: &str) -> bool {
        matches!(self.op, Op::Restart | Op::Start) && self.units.iter().any(|u| u == unit)
    }

    /// A stop or a start puts back what it found: a stop starts again the
    /// units that were running before it, a start stops again those that
    /// were not (a rolled-back host must not keep the new code running on
    /// its old packages and database). A unit someone else stopped first
    /// (seed 003: a fleet stops every management server before the first
    /// one is upgraded) is not started by this host's rollback against a
    /// database another host has already upgraded.
    fn builtin_undo(&self) -> bool {
        matches!(self.op, Op::Stop | Op::Start)
    }

    fn compensate(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let Ok(text) = std::fs::read_to_string(ctx.step_dir.join(FOUND)) else {
            // Interrupted before it changed anything.
            return Ok(());
        };
        let units: Vec<String> = text.lines().map(str::to_string).collect();
        // Back to what was found: the stop's units started, in order; the
        // start's stopped, in reverse order.
        let (op, stopping) = match self.op {
            Op::Stop => (Op::Start, false),
            _ => (Op::Stop, true),
        };
        if units.is_empty() {
            ctx.note(&format!("nothing to {} again: as found", verb(op)));
        }
        for unit in crate::recipe::order::sort_units(ctx.services, &units, stopping) {
            let spec = ctx.services.iter().find(|s| s.name == unit);
            if is_running(spec, &unit) == (op == Op::Start) {
                continue;
            }
            ctx.run(
                command(spec, &unit, op)?,
                &format!("{} {unit}", verb(op)),
                ctx.timeout,
            )?;
        }
        Ok(())
    }

    fn disruptive(&self) -> bool {
        true
    }

    /// A restart or a reload leaves the units as it found them, running:
    /// nothing is left to put back (the rollback restarts the services that
    /// ran before once the old code is back).
    fn changes_host(&self) -> bool {
        !matches!(self.op, Op::Restart | Op::Reload)
    }

    fn validate(&self, span: &Range<usize>, problems: &mut Vec<Problem>) {
        non_empty("units", &self.units, span, problems);
    }

    fn cannot_with(&self, services: &[crate::recipe::ServiceSpec]) -> Option<String> {
        self.units.iter().find_map(|unit| {
            let spec = services.iter().find(|s| &s.name == unit);
            command(spec, unit, self.op).err()
        })
    }

    fn executable(&self) -> bool {
        true
    }

    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        if matches!(self.op, Op::Stop | Op::Start) && ctx.undoable {
            // Durable before anything changes: a crash in the middle is
            // undone from it. A stop keeps the units running, a start those
            // not running.
            let found: Vec<&str> = self
                .units
                .iter()
                .filter(|u| {
                    is_running(ctx.services.iter().find(|s| &s.name == *u), u)
                        == (self.op == Op::Stop)
                })
                .map(String::as_str)
                .collect();
            let mut text = found.join("\n");
            if !text.is_empty() {
                text.push('\n');
            }
            crate::sys::fsutil::write_atomic(&ctx.step_dir.join(FOUND), text.as_bytes())
                .map_err(|e| format!("saving which units run: {e}"))?;
        }
        // Several units restarted together go down and come up as a set:
        // all stopped in reverse order, then all started in order (seed
        // 001's "restarted in the right order", as `xivo-service restart`
        // does), so none starts against a dependency still running the old
        // code, and none runs while one it needs is down.
        if self.op == Op::Restart && self.units.len() > 1 {
            for (op, stopping) in [(Op::Stop, true), (Op::Start, false)] {
                self.each(ctx, op, stopping)?;
            }
            return Ok(());
        }
        self.each(ctx, self.op, matches!(self.op, Op::Stop | Op::Disable))
    }
}

/// In the step's directory: the units a stop found running, or a start
/// found not running (what its undo changes back).
const FOUND: &str = "found";

impl Service {
    fn each(&self, ctx: &mut Ctx<'_>, op: Op, stopping: bool) -> Result<(), String> {
        for unit in crate::recipe::order::sort_units(ctx.services, &self.units, stopping) {
            let spec = ctx.services.iter().find(|s| s.name == unit);
            let cmd = command(spec, &unit, op)?;
            ctx.run(cmd, &format!("{} {unit}", verb(op)), ctx.timeout)?;
        }
        Ok(())
    }
}

fn verb(op: Op) -> &'static str {
    match op {
        Op::Stop => "stop",
        Op::Start => "start",
        Op::Restart => "restart",
        Op::Reload => "reload",
        Op::Enable => "enable",
        Op::Disable => "disable",
    }
}

/// The command for `op` on `unit` with its backend (systemd for services
/// the recipe does not declare).
pub fn command(
    spec: Option<&ServiceSpec>,
    unit: &str,
    op: Op,
) -> Result<std::process::Command, String> {
    let backend = spec.map_or(Backend::Systemd, |s| s.backend);
    let argv: Vec<String> = match (backend, op) {
        (Backend::Systemd, _) => vec!["systemctl".into(), verb(op).into(), unit.into()],
        (Backend::Sysv, Op::Enable | Op::Disable) => {
            vec!["update-rc.d".into(), unit.into(), verb(op).into()]
        }
        (Backend::Sysv, _) => vec!["service".into(), unit.into(), verb(op).into()],
        (Backend::Command, Op::Start) => spec.and_then(|s| s.start.clone()).unwrap_or_default(),
        (Backend::Command, Op::Stop) => spec.and_then(|s| s.stop.clone()).unwrap_or_default(),
        (Backend::Command, Op::Restart) => {
            let stop = spec.and_then(|s| s.stop.clone()).unwrap_or_default();
            let start = spec.and_then(|s| s.start.clone()).unwrap_or_default();
            let quote = |v: &[String]| super::exec::shell_words(v);
            vec![
                "/bin/sh".into(),
                "-c".into(),
                format!("{} && {}", quote(&stop), quote(&start)),
            ]
        }
        (Backend::Command, _) => {
            return Err(format!(
                "service {unit}: `{}` needs systemd or sysv; the command backend has start, stop and status only",
                verb(op)
            ));
        }
    };
    if argv.is_empty() {
        return Err(format!("service {unit}: no command to {}", verb(op)));
    }
    let mut cmd = crate::sys::process::argv(&argv);
    // A start script that is not systemd's leaves the service's daemon
    // behind on purpose: it must not be ended with the step.
    if backend != Backend::Systemd && matches!(op, Op::Start | Op::Restart | Op::Reload) {
        crate::sys::process::scope::detach(&mut cmd);
    }
    Ok(cmd)
}

/// Whether `unit` runs now (for putting services back as they were).
pub fn is_running(spec: Option<&ServiceSpec>, unit: &str) -> bool {
    let argv: Vec<String> = match spec.map_or(Backend::Systemd, |s| s.backend) {
        Backend::Systemd => vec![
            "systemctl".into(),
            "is-active".into(),
            "--quiet".into(),
            unit.into(),
        ],
        Backend::Sysv => vec!["service".into(), unit.into(), "status".into()],
        Backend::Command => match spec.and_then(|s| s.status.clone()) {
            Some(a) if !a.is_empty() => a,
            _ => return false,
        },
    };
    crate::sys::process::run(
        &mut crate::sys::process::argv(&argv),
        std::time::Duration::from_secs(30),
    )
    .is_ok_and(|o| o.success())
}
