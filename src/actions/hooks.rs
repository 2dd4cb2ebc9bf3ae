//! `hooks`: run every script of a directory, run-parts style (seed 001's
//! `pre-upgrade.d` / `post-upgrade.d`).
//!
//! run-parts semantics: names made of letters, digits, `_` and `-` only (so
//! `foo.dpkg-old` is ignored), lexical order, executable regular files only,
//! and a symbolic link to such a file runs as the file would (packages link
//! their hooks into a site's directory). A script anyone but root or the
//! running user owns, or that group or others may write, is refused: it
//! would run as root; for a link, so is one whose target's directory others
//! may write (they could replace the target). The check is made on every
//! hook directory before the run changes anything, and again before each
//! script runs. Every other entry (a bad name, a directory, a file or a
//! link's target not executable, a dangling link) is skipped and said so,
//! with why, in the run log and the step's output: a hook that did not run
//! is never silent.

use std::ops::Range;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Kind;
use crate::actions::ctx::Ctx;
use crate::output::diag::Problem;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// The directory; scripts run in lexical order. A relative path is
    /// relative to the recipe's own directory (hooks ship with the recipe).
    pub dir: String,
    /// Each script runs once per host, ever (remembered by name).
    #[serde(default)]
    pub each_once: bool,
    /// The maintainer's word that the scripts change nothing on the host
    /// (as `exec`'s): only then may they run in `prepare`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// run-parts' LSB name rule.
fn runnable_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Refuses a path others could have changed.
fn safe(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != me {
        return Err(format!(
            "{} is owned by uid {}, not root: refused",
            path.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is writable by {}: refused (chmod go-w)",
            path.display(),
            if meta.mode() & 0o002 != 0 {
                "everyone"
            } else {
                "its group"
            }
        ));
    }
    Ok(())
}

/// An entry of a hooks directory that does not run, and why.
struct Skipped {
    path: PathBuf,
    why: String,
}

/// Why an entry (not a symbolic link) does not run; `None`: it runs, once
/// found safe.
fn not_runnable(m: &std::fs::Metadata) -> Option<&'static str> {
    if m.is_dir() {
        Some("a directory")
    } else if !m.is_file() {
        Some("not a regular file")
    } else if m.permissions().mode() & 0o111 == 0 {
        Some("not executable")
    } else {
        None
    }
}

/// Why a symbolic link does not run; `None`: it runs. `Err` when its
/// target is unsafe, as a script there would be.
fn link_skipped(link: &Path) -> Result<Option<String>, String> {
    let to = std::fs::read_link(link).map_err(|e| format!("{}: {e}", link.display()))?;
    let Ok(target) = std::fs::canonicalize(link) else {
        return Ok(Some(format!(
            "a symbolic link to {}, which does not exist",
            to.display()
        )));
    };
    let m = std::fs::metadata(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    if let Some(why) = not_runnable(&m) {
        return Ok(Some(format!(
            "a symbolic link to {}: {why}",
            target.display()
        )));
    }
    safe(&target, &m)?;
    if let Some(parent) = target.parent() {
        let pm = std::fs::metadata(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        safe(parent, &pm)
            .map_err(|e| format!("{} links to {}: {e}", link.display(), target.display()))?;
    }
    Ok(None)
}

impl Hooks {
    /// The scripts to run, in order, and the entries skipped; `Err` when
    /// one is unsafe.
    fn scripts(&self, dir: &Path) -> Result<(Vec<PathBuf>, Vec<Skipped>), String> {
        let meta = match std::fs::metadata(dir) {
            Ok(m) => m,
            // No directory: no hooks (a package may not ship any).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        };
        safe(dir, &meta)?;
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        paths.sort();
        let mut out = Vec::new();
        let mut skipped = Vec::new();
        let mut skip = |path: &Path, why: String| {
            skipped.push(Skipped {
                path: path.to_path_buf(),
                why,
            })
        };
        for p in paths {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !runnable_name(name) {
                skip(
                    &p,
                    "its name is not only letters, digits, `_` and `-` (as run-parts)".into(),
                );
                continue;
            }
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.file_type().is_symlink() {
                match link_skipped(&p)? {
                    None => out.push(p),
                    Some(why) => skip(&p, why),
                }
                continue;
            }
            if let Some(why) = not_runnable(&m) {
                skip(&p, why.into());
                continue;
            }
            safe(&p, &m)?;
            out.push(p);
        }
        Ok((out, skipped))
    }
}

impl Kind for Hooks {
    const NAME: &'static str = "hooks";
    const UNDOES_EXEC: bool = true;

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
        !self.read_only
    }

    fn changes_host(&self) -> bool {
        !self.read_only
    }

    fn may_declare_read_only(&self) -> bool {
        true
    }

    fn validate(&self, span: &Range<usize>, problems: &mut Vec<Problem>) {
        if self.dir.trim().is_empty() {
            problems
                .push(Problem::error("empty-value", span.clone(), "`dir` is empty").label("here"));
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
        let (scripts, skipped) = self.scripts(&dir)?;
        for s in &skipped {
            ctx.note(&format!("skipped {}: {}", s.path.display(), s.why));
        }
        if scripts.is_empty() {
            ctx.note(&format!("no scripts in {}", dir.display()));
        }
        let done = if self.each_once {
            ctx.once_done()?
        } else {
            Vec::new()
        };
        for script in scripts {
            let mark = format!("hook:{}", script.display());
            if done.contains(&mark) {
                ctx.note(&format!(
                    "{} already ran once on this host",
                    script.display()
                ));
                continue;
            }
            let cmd = std::process::Command::new(&script);
            ctx.run(cmd, &script.display().to_string(), ctx.timeout)?;
            if self.each_once {
                ctx.mark_once(&mark)?;
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
