//! `repo`: switch or add a package repository, with its signing key in a
//! keyring file (never `apt-key`, which seeds 000 and 004 still use).

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::Kind;
use crate::diag::Problem;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Replace `from` with `to` in a sources file (`stretch` -> `buster`,
    /// `4.2` -> `4.3`, a yum `baseurl`).
    Switch,
    /// Write a one-line or deb822 source (or a `.repo`) to `file`.
    Add,
    /// Remove `file`.
    Remove,
    /// Only import `key` into its keyring (seed 000: "Before upgrading from
    /// XiVO 1.2.3 or earlier ... apt-key add"); `file` is the source that
    /// uses it.
    Key,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Key {
    /// Where the key comes from: a URL (fetched in `prepare`) or a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The keyring file the source refers to with `signed-by`.
    pub keyring: String,
    /// Expected fingerprint: the key is refused if it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Repo {
    pub op: Op,
    pub file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The source's text for `add`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
}

impl Kind for Repo {
    const NAME: &'static str = "repo";

    fn summary(&self) -> String {
        let key = self
            .key
            .as_ref()
            .map(|k| format!(", key into {}", k.keyring))
            .unwrap_or_default();
        match self.op {
            Op::Switch => format!(
                "in {}: {} -> {}{key}",
                self.file,
                self.from.as_deref().unwrap_or("?"),
                self.to.as_deref().unwrap_or("?")
            ),
            Op::Add => format!("add source {}{key}", self.file),
            Op::Remove => format!("remove source {}", self.file),
            Op::Key => format!("trust a new signing key for {}{key}", self.file),
        }
    }

    fn undo_kinds(&self) -> &'static [&'static str] {
        &["repo", "exec"]
    }

    fn disruptive(&self) -> bool {
        true
    }

    fn validate(&self, span: &Range<usize>, problems: &mut Vec<Problem>) {
        let need = |what: &str, ok: bool, problems: &mut Vec<Problem>| {
            if !ok {
                problems.push(
                    Problem::error(
                        "missing-key",
                        span.clone(),
                        format!("`repo` with this `op` needs `{what}`"),
                    )
                    .label(format!("add `{what}`")),
                );
            }
        };
        match self.op {
            Op::Switch => {
                need("from", self.from.is_some(), problems);
                need("to", self.to.is_some(), problems);
            }
            Op::Add => need("content", self.content.is_some(), problems),
            Op::Remove => {}
            Op::Key => need("key", self.key.is_some(), problems),
        }
        if let Some(k) = &self.key {
            super::exactly_one(
                "repo.key",
                span,
                &[("url", k.url.is_some()), ("file", k.file.is_some())],
                problems,
            );
        }
    }
}
