//! `repo`: switch or add a package repository, with its signing key in a
//! keyring file (never `apt-key`, which seeds 000 and 004 still use).

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::Kind;
use crate::actions::ctx::Ctx;
use crate::actions::saved::{Saved, write_keeping_meta};
use crate::output::diag::Problem;

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
    const UNDOES_EXEC: bool = true;

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

    fn executable(&self) -> bool {
        true
    }

    fn builtin_undo(&self) -> bool {
        true
    }

    /// Saves the sources file and the keyring, then changes them. Each write
    /// is atomic and keeps the file's mode and owner.
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let file = ctx.path(&self.file);
        let saved = Saved::new(&ctx.step_dir);
        let io = |e: std::io::Error| format!("{}: {e}", file.display());
        saved.save_once(&file).map_err(io)?;
        let keyring = self.key.as_ref().map(|k| ctx.path(&k.keyring));
        if let Some(k) = &keyring {
            saved
                .save_once(k)
                .map_err(|e| format!("{}: {e}", k.display()))?;
        }
        match self.op {
            Op::Switch => {
                let (from, to) = (
                    self.from.as_deref().unwrap_or(""),
                    self.to.as_deref().unwrap_or(""),
                );
                // From the saved original, so a re-run after a crash does
                // not switch twice (`4.2` -> `4.2.1` would become 4.2.1.1).
                let original = saved
                    .original(&file)
                    .ok_or_else(|| format!("{} does not exist", file.display()))?;
                let text = String::from_utf8_lossy(&original);
                if !text.contains(from) {
                    return Err(format!(
                        "{}: `{from}` is not in it: nothing to switch (is it already switched, or another file?)",
                        file.display()
                    ));
                }
                write_keeping_meta(&file, text.replace(from, to).as_bytes()).map_err(io)?;
                ctx.note(&format!("{}: {from} -> {to}", file.display()));
            }
            Op::Add => {
                let mut content = self.content.clone().unwrap_or_default();
                if !content.ends_with('\n') {
                    content.push('\n');
                }
                write_keeping_meta(&file, content.as_bytes()).map_err(io)?;
                ctx.note(&format!("wrote {}", file.display()));
            }
            Op::Remove => match std::fs::remove_file(&file) {
                Ok(()) => ctx.note(&format!("removed {}", file.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            },
            Op::Key => {}
        }
        if let (Some(k), Some(keyring)) = (&self.key, &keyring) {
            import_key(ctx, k, keyring)?;
            if self.op != Op::Remove && file.exists() {
                let text = std::fs::read_to_string(&file).map_err(io)?;
                let signed = signed_by(&text, &keyring.display().to_string());
                if signed != text {
                    write_keeping_meta(&file, signed.as_bytes()).map_err(io)?;
                }
            }
        }
        Ok(())
    }

    fn compensate(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let restored = Saved::new(&ctx.step_dir)
            .restore()
            .map_err(|e| e.to_string())?;
        for p in restored {
            ctx.note(&format!("put back {}", p.display()));
        }
        Ok(())
    }

    fn applied(&self, ctx: &Ctx<'_>) -> Option<bool> {
        let file = ctx.path(&self.file);
        let text = std::fs::read_to_string(&file).ok();
        Some(match self.op {
            Op::Switch => {
                let (from, to) = (self.from.as_deref()?, self.to.as_deref()?);
                match Saved::new(&ctx.step_dir).original(&file) {
                    Some(orig) => text? == String::from_utf8_lossy(&orig).replace(from, to),
                    // Not saved: the step never got to change anything.
                    None => false,
                }
            }
            Op::Add => text
                .is_some_and(|t| t.trim_end() == self.content.as_deref().unwrap_or("").trim_end()),
            Op::Remove => !file.exists(),
            Op::Key => self
                .key
                .as_ref()
                .is_some_and(|k| ctx.path(&k.keyring).exists()),
        })
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

/// Imports the key into its keyring file: binary (dearmored), checked
/// against the expected fingerprint, written atomically. Never `apt-key`.
fn import_key(ctx: &Ctx<'_>, key: &Key, keyring: &std::path::Path) -> Result<(), String> {
    let raw = match (&key.file, &key.url) {
        (Some(f), _) => std::fs::read(ctx.path(f)).map_err(|e| format!("{f}: {e}"))?,
        (_, Some(u)) => {
            // As `fetch` gets its files: https servers vouched for by the
            // host's CA bundle, bounded in time and size.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            let trust = crate::actions::fetch::download::Trust::system()?;
            crate::actions::fetch::download::fetch_small(u, deadline, &trust)?
        }
        _ => return Err("the key has neither `file` nor `url`".into()),
    };
    // rPGP reads armored or binary keys and writes the binary keyring apt
    // expects: no gpg on the host, no keyring of the admin's touched.
    let mut keys = crate::actions::fetch::openpgp::load_keys(&raw)
        .map_err(|e| format!("the key is not an OpenPGP public key: {e}"))?;
    // A revoked or expired key would only make apt refuse the repository
    // later, with the sources already switched: it is left out now.
    let mut unusable = Vec::new();
    keys.retain(|k| match crate::actions::fetch::openpgp::unusable_now(k) {
        Some(why) => {
            unusable.push(why);
            false
        }
        None => true,
    });
    let want = key.fingerprint.as_ref().map(|w| {
        w.chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_uppercase()
    });
    if let Some(why) = unusable
        .iter()
        .find(|why| want.as_ref().is_some_and(|w| why.contains(w.as_str())))
    {
        return Err(format!("{why}: refused"));
    }
    if keys.is_empty() {
        return Err(format!(
            "{}: no usable key to import: refused",
            unusable.join("; ")
        ));
    }
    for why in &unusable {
        ctx.note(&format!("{why}: left out of {}", keyring.display()));
    }
    let (bytes, fingerprints) = crate::actions::fetch::openpgp::binary_keyring(&keys)?;
    if let Some(want) = want
        && !fingerprints.contains(&want)
    {
        return Err(format!(
            "the key's fingerprint is {}, not {want}: refused",
            fingerprints.join(", ")
        ));
    }
    write_keeping_meta(keyring, &bytes).map_err(|e| format!("{}: {e}", keyring.display()))?;
    ctx.note(&format!(
        "key {} written to {}",
        fingerprints.join(", "),
        keyring.display()
    ));
    Ok(())
}

/// The sources text with every entry bound to `keyring`: one-line entries
/// get `[signed-by=...]`, deb822 stanzas a `Signed-By:` field. Entries that
/// already name a keyring are left alone.
fn signed_by(text: &str, keyring: &str) -> String {
    let deb822 = text.lines().any(|l| l.starts_with("Types:"));
    let mut out = String::with_capacity(text.len() + 64);
    if deb822 {
        for stanza in text.split("\n\n") {
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            out.push_str(stanza.trim_end_matches('\n'));
            if stanza.contains("Types:") && !stanza.lines().any(|l| l.starts_with("Signed-By:")) {
                out.push_str(&format!("\nSigned-By: {keyring}"));
            }
        }
        out.push('\n');
        return out;
    }
    for line in text.lines() {
        let trimmed = line.trim_start();
        let kind = ["deb-src ", "deb "]
            .into_iter()
            .find(|k| trimmed.starts_with(k));
        match kind {
            Some(k) if !trimmed.contains("signed-by=") => {
                let rest = &trimmed[k.len()..];
                if let Some(opts) = rest.strip_prefix('[') {
                    out.push_str(&format!("{k}[signed-by={keyring} {opts}"));
                } else {
                    out.push_str(&format!("{k}[signed-by={keyring}] {rest}"));
                }
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::signed_by;

    #[test]
    fn binds_entries_to_the_keyring() {
        let one = "# comment\ndeb http://mirror.xivo.fr/debian squeeze main\ndeb [arch=amd64] http://x y z\ndeb [signed-by=/k.gpg] http://a b c\n";
        assert_eq!(
            signed_by(one, "/etc/apt/keyrings/xivo.gpg"),
            "# comment\ndeb [signed-by=/etc/apt/keyrings/xivo.gpg] http://mirror.xivo.fr/debian squeeze main\ndeb [signed-by=/etc/apt/keyrings/xivo.gpg arch=amd64] http://x y z\ndeb [signed-by=/k.gpg] http://a b c\n"
        );
        let d822 = "Types: deb\nURIs: http://x\nSuites: bookworm\nComponents: main\n";
        assert_eq!(
            signed_by(d822, "/k.gpg"),
            "Types: deb\nURIs: http://x\nSuites: bookworm\nComponents: main\nSigned-By: /k.gpg\n"
        );
    }
}
