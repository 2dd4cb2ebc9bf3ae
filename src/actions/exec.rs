//! `exec`: run a program (argv) or a shell snippet.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::{Kind, exactly_one, non_empty};
use crate::actions::ctx::Ctx;
use crate::output::diag::Problem;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// A log file the command writes its progress to: its new lines are
    /// shown while the command runs (seed 003's `cloudstack-sysvmadm -l`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow: Option<String>,
    /// The maintainer's word that the command changes nothing on the host
    /// but files of its own in the download cache or hoist's state (a
    /// check, a verification, a download): the only kind of command
    /// `prepare` takes, and the only kind `-d` runs. Left out of the JSON
    /// when false, so plans hash as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// Run as this user (`runuser -u USER --`), as a product's own tools
    /// expect (Nextcloud's `occ` as `www-data`, `gitlab-rake` as `git`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl Kind for Exec {
    const NAME: &'static str = "exec";
    const UNDOES_EXEC: bool = true;

    fn summary(&self) -> String {
        let what = match (&self.argv, &self.shell) {
            (Some(argv), _) => format!("run {}", shell_words(argv)),
            (_, Some(sh)) => format!("sh -c {:?}", first_line(sh)),
            _ => "run nothing".into(),
        };
        match &self.user {
            Some(u) => format!("{what} as {u}"),
            None => what,
        }
    }

    fn undo_kinds(&self) -> &'static [&'static str] {
        crate::actions::UNDO_EXEC_KINDS
    }

    fn disruptive(&self) -> bool {
        // A command may do anything, unless the maintainer says it only
        // reads (DESIGN: nothing disruptive before `prepare` succeeded).
        !self.read_only
    }

    fn changes_host(&self) -> bool {
        !self.read_only
    }

    fn may_declare_read_only(&self) -> bool {
        true
    }

    fn executable(&self) -> bool {
        true
    }

    /// The user must exist before anything runs.
    fn preflight(&self, _ctx: &Ctx<'_>) -> Result<(), String> {
        match &self.user {
            Some(u) => match nix::unistd::User::from_name(u) {
                Ok(Some(_)) => Ok(()),
                _ => Err(format!("exec: no user `{u}` on this host")),
            },
            None => Ok(()),
        }
    }

    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let words: Vec<String> = match (&self.argv, &self.shell) {
            (Some(argv), _) => argv.clone(),
            (_, Some(sh)) => vec!["/bin/sh".into(), "-c".into(), sh.clone()],
            _ => return Err("exec: nothing to run".into()),
        };
        let words = match &self.user {
            // util-linux's runuser: no password, no PAM session to open.
            Some(u) => ["runuser", "-u", u.as_str(), "--"]
                .into_iter()
                .map(String::from)
                .chain(words)
                .collect(),
            None => words,
        };
        let mut cmd = crate::sys::process::argv(&words);
        cmd.envs(&self.env);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(ctx.path(dir));
        }
        match &self.follow {
            Some(log) => ctx.run_following(cmd, &self.summary(), ctx.timeout, &ctx.path(log)),
            None => ctx.run(cmd, &self.summary(), ctx.timeout),
        }
    }

    fn validate(&self, span: &Range<usize>, problems: &mut Vec<Problem>) {
        exactly_one(
            "exec",
            span,
            &[
                ("argv", self.argv.is_some()),
                ("shell", self.shell.is_some()),
            ],
            problems,
        );
        if let Some(argv) = &self.argv {
            non_empty("argv", argv, span, problems);
        }
        if self.user.as_deref().is_some_and(|u| u.trim().is_empty()) {
            problems.push(
                Problem::error("empty", span.clone(), "`user` names no user")
                    .label("expected a user name, e.g. \"www-data\""),
            );
        }
        if self.follow.as_deref().is_some_and(|f| f.trim().is_empty()) {
            problems.push(
                Problem::error("empty", span.clone(), "`follow` names no file")
                    .label("expected the path of the log file the command writes"),
            );
        }
    }
}

/// argv as an admin would type it, quoted where needed (a shell runs it
/// as the same words: `service`'s command backend relies on it).
pub fn shell_words(argv: &[String]) -> String {
    // Only a NUL byte cannot be quoted, and no argv can hold one.
    shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| format!("{argv:?}"))
}

pub fn first_line(s: &str) -> String {
    let line = s.trim().lines().next().unwrap_or("");
    if s.trim().lines().count() > 1 {
        format!("{line} ...")
    } else {
        line.to_string()
    }
}
