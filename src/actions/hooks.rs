//! `hooks`: run every script of a directory, run-parts style (seed 001's
//! `pre-upgrade.d` / `post-upgrade.d`).
//!
//! run-parts semantics: names made of letters, digits, `_` and `-` only (so
//! `foo.dpkg-old` is ignored), lexical order, executable regular files only.
//! A script anyone but root or the running user owns, or that group or others
//! may write, is refused: it would run as root. The check is made on every
//! hook directory before the run changes anything, and again before each
//! script runs.

use std::ops::Range;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Kind;
use crate::context::Ctx;
use crate::diag::Problem;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// The directory; scripts run in lexical order. A relative path is
    /// relative to the recipe's own directory (hooks ship with the recipe).
    pub dir: String,
    /// Each script runs once per host, ever (remembered by name).
    #[serde(default)]
    pub each_once: bool,
}

/// run-parts' LSB name rule.
fn runnable_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Refuses a path others could have changed.
fn safe(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != me {
        return Err(format!("{} is owned by uid {}, not root: refused", path.display(), meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is writable by {}: refused (chmod go-w)",
            path.display(),
            if meta.mode() & 0o002 != 0 { "everyone" } else { "its group" }
        ));
    }
    Ok(())
}

impl Hooks {
    /// The scripts to run, in order; `Err` when one is unsafe.
    fn scripts(&self, dir: &Path) -> Result<Vec<PathBuf>, String> {
        let meta = match std::fs::metadata(dir) {
            Ok(m) => m,
            // No directory: no hooks (a package may not ship any).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        };
        safe(dir, &meta)?;
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| runnable_name(n))
            .collect();
        names.sort();
        let mut out = Vec::new();
        for n in names {
            let p = dir.join(&n);
            let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
            if !m.file_type().is_file() || m.permissions().mode() & 0o111 == 0 {
                continue;
            }
            safe(&p, &m)?;
            out.push(p);
        }
        Ok(out)
    }
}

impl Kind for Hooks {
    const NAME: &'static str = "hooks";

    fn summary(&self) -> String {
        let once = if self.each_once {
            " (each script once per host)"
        } else {
            ""
        };
        format!("run the scripts in {}{once}", self.dir)
    }

    fn undo_kinds(&self) -> &'static [&'static str] {
        &["exec", "hooks"]
    }

    fn disruptive(&self) -> bool {
        true
    }

    fn validate(&self, span: &Range<usize>, problems: &mut Vec<Problem>) {
        if self.dir.trim().is_empty() {
            problems.push(Problem::error("empty-value", span.clone(), "`dir` is empty").label("here"));
        }
    }

    fn executable(&self) -> bool {
        true
    }

    fn preflight(&self, ctx: &Ctx<'_>) -> Result<(), String> {
        self.scripts(&ctx.path(&self.dir)).map(|_| ())
    }

    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let dir = ctx.path(&self.dir);
        let scripts = self.scripts(&dir)?;
        if scripts.is_empty() {
            ctx.note(&format!("no scripts in {}", dir.display()));
        }
        let done = if self.each_once {
            ctx.journal.once_done(ctx.product).map_err(|e| e.to_string())?
        } else {
            Vec::new()
        };
        for script in scripts {
            let mark = format!("hook:{}", script.display());
            if done.contains(&mark) {
                ctx.note(&format!("{} already ran once on this host", script.display()));
                continue;
            }
            let cmd = std::process::Command::new(&script);
            ctx.run(cmd, &script.display().to_string(), ctx.timeout)?;
            if self.each_once {
                ctx.journal.mark_once(ctx.product, &mark, ctx.run).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::runnable_name;

    #[test]
    fn run_parts_names() {
        assert!(runnable_name("10-update-templates"));
        assert!(runnable_name("set_language"));
        assert!(!runnable_name("10-foo.dpkg-old"));
        assert!(!runnable_name("script.sh"));
        assert!(!runnable_name(""));
    }
}
