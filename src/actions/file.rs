//! `file`: exact edits of configuration files (seed 003: "environment.properties
//! must contain paths.script=...", the agent.properties class rename, merging
//! `components.xml.rpmnew`).
//!
//! Every change is computed from the file as it is, written crash-safely
//! with the file's owner, group and mode (`saved::write_as`), and undone by
//! the action itself: before the first change the file (and, for a merge,
//! the packaged new file it removes) is saved in the step's directory by
//! the shared `saved` module, which puts back bytes, owner, group, mode and
//! modification time. A file that is a symbolic link is changed (and put
//! back) where it points, the link left a link.

mod edit;
mod merge;
mod validate;

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Kind;
use crate::actions::ctx::Ctx;
use crate::actions::saved::{self, Saved, real};
use crate::output::diag::Problem;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// The file contains `line` (appended when missing).
    EnsureLine,
    /// Every match of the regex `pattern` becomes `replacement`.
    Replace,
    /// `key<separator>value` in a properties-style file.
    SetKey,
    /// 3-way merge of the package's new version (`.rpmnew`, `.dpkg-dist`)
    /// into the admin's file, against the previous packaged version.
    MergeNew,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub op: Op,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default = "default_separator")]
    pub separator: String,
    /// `set_key`: the ini section (`[name]`) the key belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// `merge_new`: the old packaged version to merge from (a file, or a
    /// `.deb` holding `path`), when apt's cache does not have it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// `merge_new`: the package shipping `path`, when `dpkg -S` cannot say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

fn default_separator() -> String {
    "=".into()
}

/// What `merge_new` found to do.
struct Merge {
    new_path: PathBuf,
    theirs: String,
    merged: String,
}

fn resolve(dir: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

fn read_text(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))
}

impl File {
    /// The edit of `ensure_line`, `replace` and `set_key` applied to `text`.
    fn edit(&self, text: &str) -> Result<String, String> {
        let o = |s: &Option<String>, what: &str| {
            s.clone()
                .ok_or_else(|| format!("`file` {:?} needs `{what}`", self.op))
        };
        Ok(match self.op {
            Op::EnsureLine => edit::ensure_line(text, &o(&self.line, "line")?),
            Op::Replace => {
                let re = regex::Regex::new(&o(&self.pattern, "pattern")?)
                    .map_err(|e| format!("`pattern` is not a regex: {e}"))?;
                edit::replace(text, &re, &o(&self.replacement, "replacement")?)
            }
            Op::SetKey => edit::set_key(
                text,
                self.section.as_deref(),
                &o(&self.key, "key")?,
                &self.separator,
                &o(&self.value, "value")?,
            ),
            Op::MergeNew => text.to_string(),
        })
    }

    /// The merge of the packaged new file into `ours`, when there is one.
    /// `scratch` receives the base taken out of a `.deb`.
    fn merge(
        &self,
        dir: &Path,
        path: &Path,
        ours: &str,
        scratch: &Path,
    ) -> Result<Option<Merge>, String> {
        let news = merge::new_files(path);
        let new_path = match news.as_slice() {
            [] => return Ok(None),
            [one] => one.clone(),
            many => {
                let list: Vec<String> = many.iter().map(|p| p.display().to_string()).collect();
                return Err(format!(
                    "{} has several packaged new versions ({}): which one to merge is the admin's call",
                    path.display(),
                    list.join(", ")
                ));
            }
        };
        let theirs = read_text(&new_path)?;
        if theirs == ours {
            return Ok(Some(Merge {
                new_path,
                merged: theirs.clone(),
                theirs,
            }));
        }
        let base = merge::find_base(
            path,
            self.base.as_deref().map(|b| resolve(dir, b)).as_deref(),
            self.package.as_deref(),
            Path::new(merge::APT_ARCHIVES),
            scratch,
        )?;
        let shown = path.display().to_string();
        let new_shown = new_path.display().to_string();
        let names = [
            format!("{shown} (live)"),
            format!("base ({})", base.from),
            format!("{new_shown} (packaged)"),
        ];
        match merge::merge(&base.text, ours, &theirs, [&names[0], &names[1], &names[2]]) {
            Ok(merged) => Ok(Some(Merge {
                new_path,
                theirs,
                merged,
            })),
            Err(conflicted) => {
                let kept = scratch.join("merge-conflict");
                let _ = crate::sys::fsutil::write_atomic(&kept, conflicted.as_bytes());
                Err(format!(
                    "merge conflict: {shown} and {new_shown} change the same lines (base: {}); \
                     nothing was changed. Merge by hand (the conflicted merge is in {}), remove \
                     {new_shown}, then `hoist resume`; or `hoist rollback`.\n{}",
                    base.from,
                    kept.display(),
                    edit::unified(&shown, ours, &conflicted)
                ))
            }
        }
    }

    fn apply_edit(&self, ctx: &Ctx<'_>, path: &Path, ours: &str) -> Result<(), String> {
        let shown = path.display().to_string();
        // A previous attempt (a retry, or a run again after a crash) may
        // have written already: its result is the edit of the saved file.
        let kept = Saved::new(&ctx.step_dir);
        if let Some(original) = kept.original(path)
            && let Ok(original) = String::from_utf8(original)
            && original != ours
            && self.edit(&original)? == ours
        {
            ctx.note(&format!("{shown}: already changed by an earlier attempt"));
            return Ok(());
        }
        let want = self.edit(ours)?;
        if want == ours {
            ctx.note(&format!("{shown}: already as wanted, unchanged"));
            return Ok(());
        }
        let meta = saved::Meta::of(path).map_err(|e| format!("{shown}: {e}"))?;
        kept.save_once(path)
            .map_err(|e| format!("cannot save {shown}: {e}"))?;
        saved::write_as(path, want.as_bytes(), meta)?;
        ctx.note(&format!(
            "{shown} changed:\n{}",
            edit::unified(&shown, ours, &want)
        ));
        Ok(())
    }

    fn apply_merge(&self, ctx: &Ctx<'_>, path: &Path, ours: &str) -> Result<(), String> {
        let shown = path.display().to_string();
        let kept = Saved::new(&ctx.step_dir);
        let gone =
            |p: &Path| saved::remove(p).map_err(|e| format!("cannot remove {}: {e}", p.display()));
        // An earlier attempt wrote the merge but did not remove the new
        // file (a crash between the two): the live file is the merge of
        // what it saved, and only the removal is left.
        if let Some(original) = kept.original(path)
            && original.as_slice() != ours.as_bytes()
            && let Ok(original) = std::str::from_utf8(&original)
            && let Ok(Some(again)) = self.merge(ctx.recipe_dir, path, original, &ctx.step_dir)
            && kept.original(&again.new_path).as_deref() == Some(again.theirs.as_bytes())
            && again.merged == ours
        {
            gone(&again.new_path)?;
            ctx.note(&format!(
                "{shown}: merged by an earlier attempt; {} removed",
                again.new_path.display()
            ));
            return Ok(());
        }
        let Some(m) = self.merge(ctx.recipe_dir, path, ours, &ctx.step_dir)? else {
            ctx.note(&format!(
                "{shown}: no packaged new version beside it, nothing to merge"
            ));
            return Ok(());
        };
        let target = real(path);
        let meta = saved::Meta::of(&target).map_err(|e| format!("{shown}: {e}"))?;
        // Both saved before either changes: the undo puts back the file
        // and the packaged new version the merge removes.
        for p in [&target, &m.new_path] {
            kept.save_once(p)
                .map_err(|e| format!("cannot save {}: {e}", p.display()))?;
        }
        if m.merged != ours {
            saved::write_as(&target, m.merged.as_bytes(), meta)?;
        }
        gone(&m.new_path)?;
        ctx.note(&format!(
            "{shown}: {} merged in and removed (kept in {} for the undo):\n{}",
            m.new_path.display(),
            ctx.step_dir.display(),
            edit::unified(&shown, ours, &m.merged)
        ));
        Ok(())
    }
}

impl Kind for File {
    const NAME: &'static str = "file";
    const UNDOES_EXEC: bool = true;

    fn summary(&self) -> String {
        let p = &self.path;
        let o = |s: &Option<String>| s.clone().unwrap_or_default();
        match self.op {
            Op::EnsureLine => format!("{p} contains `{}`", o(&self.line)),
            Op::Replace => format!(
                "in {p}: /{}/ -> `{}`",
                o(&self.pattern),
                o(&self.replacement)
            ),
            Op::SetKey => {
                let section = self
                    .section
                    .as_ref()
                    .map(|s| format!(" [{s}]"))
                    .unwrap_or_default();
                format!(
                    "in {p}{section}: {}{}{}",
                    o(&self.key),
                    self.separator,
                    o(&self.value)
                )
            }
            Op::MergeNew => match &self.base {
                Some(b) => format!("merge the packaged new version of {p} into it (base {b})"),
                None => format!("merge the packaged new version of {p} into it"),
            },
        }
    }

    fn undo_kinds(&self) -> &'static [&'static str] {
        &["file", "exec"]
    }

    fn disruptive(&self) -> bool {
        true
    }

    fn executable(&self) -> bool {
        true
    }

    fn builtin_undo(&self) -> bool {
        true
    }

    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let path = ctx.path(&self.path);
        let ours = read_text(&path)?;
        match self.op {
            Op::MergeNew => self.apply_merge(ctx, &path, &ours),
            _ => self.apply_edit(ctx, &real(&path), &ours),
        }
    }

    fn compensate(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let put = Saved::new(&ctx.step_dir)
            .restore()
            .map_err(|e| format!("putting back {}: {e}", self.path))?;
        if !put.is_empty() {
            ctx.note(&format!("{}: put back as it was", self.path));
        } else {
            ctx.note(&format!(
                "{}: nothing was changed, nothing to put back",
                self.path
            ));
        }
        Ok(())
    }

    fn applied(&self, ctx: &Ctx<'_>) -> Option<bool> {
        let path = ctx.path(&self.path);
        match self.op {
            Op::MergeNew => Some(merge::new_files(&path).is_empty()),
            _ => {
                let text = read_text(&path).ok()?;
                Some(self.edit(&text).ok()? == text)
            }
        }
    }

    fn preview(&self, recipe_dir: &Path) -> Option<String> {
        let path = resolve(recipe_dir, &self.path);
        let ours = read_text(&path).ok()?;
        let shown = path.display().to_string();
        let after = match self.op {
            Op::MergeNew => {
                let scratch =
                    std::env::temp_dir().join(format!("hoist-plan-{}", std::process::id()));
                let m = self.merge(recipe_dir, &path, &ours, &scratch);
                let _ = std::fs::remove_dir_all(&scratch);
                match m {
                    Ok(Some(m)) => m.merged,
                    // No new file yet: the package that brings it has not
                    // been installed, so the merge cannot be foreseen.
                    Ok(None) => return None,
                    Err(e) => return Some(first_paragraph(&e)),
                }
            }
            _ => self.edit(&ours).ok()?,
        };
        if after == ours {
            return Some(format!("{shown}: already as wanted, no change"));
        }
        Some(edit::unified(&shown, &ours, &after).trim_end().to_string())
    }

    fn validate(&self, span: &Range<usize>, problems: &mut Vec<Problem>) {
        validate::check(self, span, problems);
    }
}

/// The message of a refusal without the diff under it.
fn first_paragraph(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}
