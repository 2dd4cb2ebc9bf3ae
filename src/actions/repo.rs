//! `repo`: switch or add a package repository, with its signing key in a
//! keyring file (never `apt-key`, which seeds 000 and 004 still use).

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::Kind;
use crate::actions::ctx::Ctx;
use crate::actions::saved::{Saved, write_keeping_meta};
use crate::output::diag::Problem;
use crate::sys::pkgdb::AptView;

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

    /// Trusting an archive's key is allowed in `prepare`: nothing of the
    /// archive can be listed or downloaded without it (seed 000: the key
    /// comes "before upgrading from XiVO 1.2.3 or earlier", so before
    /// `xivo-upgrade -d` too). It stops nothing, installs nothing, and
    /// undoes itself.
    fn disruptive(&self) -> bool {
        self.op != Op::Key
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
    let k = binary_key(key, |p| ctx.path(p))?;
    for why in &k.left_out {
        ctx.note(&format!("{why}: left out of {}", keyring.display()));
    }
    write_keeping_meta(keyring, &k.bytes).map_err(|e| format!("{}: {e}", keyring.display()))?;
    ctx.note(&format!(
        "key {} written to {}",
        k.fingerprints.join(", "),
        keyring.display()
    ));
    Ok(())
}

/// A key made ready for apt: the binary keyring's bytes, the fingerprints
/// in it, and why any key given was left out.
struct BinaryKey {
    bytes: Vec<u8>,
    fingerprints: Vec<String>,
    left_out: Vec<String>,
}

/// Reads the key (`file`, a path as `path` resolves it, or `url`) and makes
/// the binary keyring apt expects, checked against the fingerprint.
fn binary_key(key: &Key, path: impl Fn(&str) -> std::path::PathBuf) -> Result<BinaryKey, String> {
    let raw = match (&key.file, &key.url) {
        (Some(f), _) => std::fs::read(path(f)).map_err(|e| format!("{f}: {e}"))?,
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
    let mut left_out = Vec::new();
    keys.retain(|k| match crate::actions::fetch::openpgp::unusable_now(k) {
        Some(why) => {
            left_out.push(why);
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
    if let Some(why) = left_out
        .iter()
        .find(|why| want.as_ref().is_some_and(|w| why.contains(w.as_str())))
    {
        return Err(format!("{why}: refused"));
    }
    if keys.is_empty() {
        return Err(format!(
            "{}: no usable key to import: refused",
            left_out.join("; ")
        ));
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
    Ok(BinaryKey {
        bytes,
        fingerprints,
        left_out,
    })
}

/// apt's sources, as Debian configures them.
const SOURCE_LIST: &str = "/etc/apt/sources.list";
const SOURCE_PARTS: &str = "/etc/apt/sources.list.d";

/// The view the candidate is read through when the recipe trusts an
/// archive key before the run's first `apt-get update` (seed 000: "Before
/// upgrading from XiVO 1.2.3 or earlier ... apt-key add" the new key; on
/// an archive signed with it only, the host's lists would show no new
/// release). The keys are those of the `prepare` steps with `op = "key"`
/// that apply to this host and are not in place yet: each goes into a
/// keyring of the view's own, which the view's copy of the step's source
/// names with `signed-by`. The plan then shows the version the run will
/// reach and trusts nothing on the host: the step trusts the key, when the
/// run gets there, with its undo. None: the host's apt shows it as is.
pub fn candidate_view(
    recipe: &crate::recipe::Recipe,
    facts: &crate::recipe::facts::Facts,
) -> Result<Option<AptView>, String> {
    use crate::recipe::facts::Value;
    let mut facts = facts.clone();
    // The first hop starts at the installed version.
    if let Some(v) = facts.version("current").cloned() {
        facts.set("from", Value::Version(v));
    }
    let pending: Vec<(&str, &Repo, &Key)> = recipe
        .steps
        .iter()
        .filter(|s| s.phase == crate::recipe::Phase::Prepare)
        // A condition on a fact not known yet (the target, read from the
        // candidate) counts as holding: the view trusts nothing on the host.
        .filter(|s| {
            s.when
                .as_ref()
                .is_none_or(|w| w.eval(&facts).unwrap_or(true))
        })
        .filter_map(|s| match &s.action {
            super::Action::Repo(r) if r.op == Op::Key => {
                r.key.as_ref().map(|k| (s.id.as_str(), r, k))
            }
            _ => None,
        })
        .filter(|(_, r, k)| !key_in_place(r, k))
        .collect();
    if pending.is_empty() {
        return Ok(None);
    }
    let dir = std::env::temp_dir().join(format!(
        "hoist-candidate-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let at = |p: &str| dir.join(p).display().to_string();
    let options = [
        ("Dir::Etc::SourceList", at("sources.list")),
        ("Dir::Etc::SourceParts", at("sources.list.d")),
        ("Dir::State::Lists", at("lists")),
        ("Dir::Cache", at("cache")),
    ]
    .into_iter()
    .flat_map(|(k, v)| ["-o".to_string(), format!("{k}={v}")])
    .collect();
    // apt fetches as its sandbox user (`_apt`): the view is readable by all,
    // as /etc/apt is.
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let view = AptView::new(dir.clone(), options);
    let io = |p: &std::path::Path, e: std::io::Error| format!("{}: {e}", p.display());
    for d in ["sources.list.d", "lists/partial", "cache/archives/partial"] {
        std::fs::create_dir_all(dir.join(d)).map_err(|e| io(&dir.join(d), e))?;
    }
    let copy = |from: &std::path::Path, to: std::path::PathBuf| match std::fs::read(from) {
        Ok(bytes) => write_readable(&to, &bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(from, e)),
    };
    copy(std::path::Path::new(SOURCE_LIST), dir.join("sources.list"))?;
    if let Ok(entries) = std::fs::read_dir(SOURCE_PARTS) {
        for e in entries.flatten() {
            let name = e.file_name();
            let n = name.to_string_lossy();
            if n.ends_with(".list") || n.ends_with(".sources") {
                copy(&e.path(), dir.join("sources.list.d").join(&name))?;
            }
        }
    }
    let recipe_dir = recipe.dir();
    for (i, (id, r, k)) in pending.iter().enumerate() {
        let key = binary_key(k, |p| recipe_dir.join(p))
            .map_err(|e| format!("the key of step `{id}`: {e}"))?;
        let keyring = dir.join(format!("key-{i}.gpg"));
        write_readable(&keyring, &key.bytes)?;
        let file = std::path::Path::new(&r.file);
        let copied = if file == std::path::Path::new(SOURCE_LIST) {
            dir.join("sources.list")
        } else if file.parent() == Some(std::path::Path::new(SOURCE_PARTS))
            && let Some(name) = file.file_name()
        {
            dir.join("sources.list.d").join(name)
        } else {
            // apt reads no other file: the key binds no source of its.
            continue;
        };
        if let Ok(text) = std::fs::read_to_string(&copied) {
            write_readable(
                &copied,
                signed_by(&text, &keyring.display().to_string()).as_bytes(),
            )?;
        }
    }
    Ok(Some(view))
}

/// Whether the step's key is trusted already: its keyring is there and
/// every entry of its source names a keyring.
fn key_in_place(r: &Repo, k: &Key) -> bool {
    std::path::Path::new(&k.keyring).exists()
        && std::fs::read_to_string(&r.file).is_ok_and(|t| signed_by(&t, &k.keyring) == t)
}

fn write_readable(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)))
        .map_err(|e| format!("{}: {e}", path.display()))
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
