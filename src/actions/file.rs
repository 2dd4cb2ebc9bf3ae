//! `file`: exact edits of configuration files (seed 003: "environment.properties
//! must contain paths.script=...", the agent.properties class rename, merging
//! `components.xml.rpmnew`).

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::Kind;
use crate::diag::Problem;

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
}

fn default_separator() -> String {
    "=".into()
}

impl Kind for File {
    const NAME: &'static str = "file";

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
            Op::SetKey => format!("in {p}: {}{}{}", o(&self.key), self.separator, o(&self.value)),
            Op::MergeNew => format!("merge the packaged new version of {p} into it"),
        }
    }

    fn undo_kinds(&self) -> &'static [&'static str] {
        &["file", "exec"]
    }

    fn disruptive(&self) -> bool {
        true
    }

    fn validate(&self, span: &Range<usize>, problems: &mut Vec<Problem>) {
        let needs: &[(&str, bool)] = match self.op {
            Op::EnsureLine => &[("line", self.line.is_some())],
            Op::Replace => &[
                ("pattern", self.pattern.is_some()),
                ("replacement", self.replacement.is_some()),
            ],
            Op::SetKey => &[("key", self.key.is_some()), ("value", self.value.is_some())],
            Op::MergeNew => &[],
        };
        for (what, ok) in needs {
            if !ok {
                problems.push(
                    Problem::error(
                        "missing-key",
                        span.clone(),
                        format!("`file` with this `op` needs `{what}`"),
                    )
                    .label(format!("add `{what}`")),
                );
            }
        }
        if let Some(p) = &self.pattern
            && let Err(e) = regex::Regex::new(p)
        {
            problems.push(
                Problem::error("bad-regex", span.clone(), format!("`pattern` is not a regex: {e}"))
                    .label("here"),
            );
        }
    }
}
