//! `fetch`: download an artifact and verify it before anything uses it
//! (seed 003, L44-82: import the release managers' KEYS, then check the
//! tarball's `.asc` signature and its MD5 and SHA512 files).
//!
//! The artifact goes into `DEST.part` first (kept across a crash or a cut
//! connection, so the next attempt asks only for the rest with `Range`), is
//! verified there in one streamed pass (every digest and the signature at
//! once), and only then renamed over `dest`. A wrong digest or a bad
//! signature fails the step with `dest` untouched and the `.part` removed.

pub mod download;
pub mod openpgp;
pub mod verify;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::Kind;
use crate::actions::ctx::Ctx;
use crate::output::diag::Problem;
use verify::{Algo, Expected};

/// Downloads larger than this are refused unless the step says otherwise:
/// large enough for any release tarball, small enough that a wrong URL
/// (or a hostile server) cannot fill the disk.
pub const DEFAULT_MAX_SIZE: u64 = 4 << 30;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The detached signature (`.asc`, armored or binary).
    pub url: String,
    /// A local file of the keys it may be made by: an OpenPGP keyring
    /// (binary or armored, or a GnuPG keybox as `gpg --keyring` writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyring: Option<String>,
}

/// A size: bytes, or text with a unit (`"500M"`, `"2GiB"`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Size {
    Bytes(u64),
    Text(String),
}

impl Size {
    pub fn bytes(&self) -> Result<u64, String> {
        match self {
            Size::Bytes(n) => Ok(*n),
            Size::Text(t) => parse_size(t),
        }
    }
}

fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 500M, 2GiB)"))?;
    let mul: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" | "KiB" | "k" => 1 << 10,
        "M" | "MB" | "MiB" => 1 << 20,
        "G" | "GB" | "GiB" => 1 << 30,
        "T" | "TB" | "TiB" => 1 << 40,
        u => return Err(format!("`{u}` is not a size unit (B, K, M, G, T)")),
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("`{text}` is too large"))
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fetch {
    pub url: String,
    pub dest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha512: Option<String>,
    /// Only alongside a stronger check (seed 003 L76 checks MD5 and SHA512
    /// together; MD5 alone proves nothing against a forger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// Sidecar files listing checksums (`.sha512`, `.md5`, `.sha`), in
    /// coreutils form (`HEX  name`) or `gpg --print-md` form (`name: HEX
    /// HEX ...`, wrapped), fetched and checked too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checksum_urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
    /// An Apache `KEYS` file (text with armored keys) trusted for the
    /// signature, fetched with it (seed 003 L46-50: `gpg --import KEYS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys_url: Option<String>,
    /// When set, the signature must be made by one of these keys (full
    /// fingerprints): pins the trust a fetched KEYS file gives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fingerprints: Vec<String>,
    /// Largest download accepted (default 4 GiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<Size>,
    /// A PEM file of certificate authorities trusted for this step's https
    /// URLs besides the host's CA bundle (a product's private mirror).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
}

fn supported_url(url: &str) -> bool {
    url.starts_with("file://") || url.starts_with("http://") || url.starts_with("https://")
}

impl Fetch {
    fn max_size(&self) -> u64 {
        self.max_size
            .as_ref()
            .and_then(|s| s.bytes().ok())
            .unwrap_or(DEFAULT_MAX_SIZE)
    }

    fn urls(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.url)
            .chain(self.checksum_urls.iter())
            .chain(self.signature.iter().map(|s| &s.url))
            .chain(self.keys_url.iter())
    }

    /// The file name sidecars list the artifact under.
    fn artifact_name(&self) -> String {
        let from_url = self.url.rsplit('/').next().unwrap_or("");
        if from_url.is_empty() {
            Path::new(&self.dest)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            from_url.to_string()
        }
    }

    /// Everything the artifact is checked against, fetched (sidecars,
    /// signature, KEYS) and parsed, before the artifact itself is read.
    /// Who vouches for the https servers: the host's CA bundle, and `ca`.
    fn trust(&self, ctx: &Ctx<'_>) -> Result<download::Trust, String> {
        let ca = self.ca.as_ref().map(|c| ctx.path(c));
        download::Trust::new(ca.as_deref(), &download::SYSTEM_BUNDLES)
            .map_err(|e| format!("`ca`: {e}"))
    }

    fn checks(
        &self,
        ctx: &Ctx<'_>,
        deadline: Instant,
        trust: &download::Trust,
    ) -> Result<verify::Checks, String> {
        let mut expected = Vec::new();
        for (algo, digest) in [
            (Algo::Sha256, &self.sha256),
            (Algo::Sha512, &self.sha512),
            (Algo::Md5, &self.md5),
        ] {
            if let Some(d) = digest {
                expected.push(Expected {
                    algo,
                    hex: d.to_ascii_lowercase(),
                    source: format!("the recipe's `{}`", algo.name()),
                });
            }
        }
        let name = self.artifact_name();
        for url in &self.checksum_urls {
            let bytes = download::fetch_small(url, deadline, trust)?;
            let text = String::from_utf8_lossy(&bytes);
            let e = verify::parse_sidecar(&text, url, &name).map_err(|e| format!("{url}: {e}"))?;
            expected.push(e);
        }
        let signature = match &self.signature {
            None => None,
            Some(sig) => {
                let mut keys = Vec::new();
                if let Some(keyring) = &sig.keyring {
                    let path = ctx.path(keyring);
                    let bytes =
                        std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                    keys.extend(
                        openpgp::load_keys(&bytes)
                            .map_err(|e| format!("{}: {e}", path.display()))?,
                    );
                }
                if let Some(url) = &self.keys_url {
                    let bytes = download::fetch_small(url, deadline, trust)?;
                    keys.extend(openpgp::load_keys(&bytes).map_err(|e| format!("{url}: {e}"))?);
                }
                let bytes = download::fetch_small(&sig.url, deadline, trust)?;
                let parsed =
                    openpgp::parse_signature(&bytes).map_err(|e| format!("{}: {e}", sig.url))?;
                Some(openpgp::Check {
                    signature: parsed,
                    keys,
                    fingerprints: self.fingerprints.clone(),
                    url: sig.url.clone(),
                })
            }
        };
        Ok(verify::Checks {
            digests: expected,
            signature,
        })
    }

    fn part_path(dest: &Path) -> PathBuf {
        let mut p = dest.as_os_str().to_owned();
        p.push(".part");
        PathBuf::from(p)
    }

    fn saved_path(ctx: &Ctx<'_>) -> PathBuf {
        ctx.step_dir.join("fetch-old-dest")
    }

    fn created_marker(ctx: &Ctx<'_>) -> PathBuf {
        ctx.step_dir.join("fetch-created-dest")
    }

    /// Downloads into the `.part` (resuming it) and verifies it.
    fn download_verified(
        &self,
        ctx: &Ctx<'_>,
        checks: &verify::Checks,
        part: &Path,
        deadline: Instant,
        trust: &download::Trust,
    ) -> Result<String, String> {
        let max = self.max_size();
        let resumed = download::fetch_to_part(&self.url, part, max, deadline, trust, ctx)?;
        match checks.verify_file(part) {
            Ok(how) => Ok(how),
            Err(e) => {
                // Refused data is never kept: the next attempt starts over.
                let _ = std::fs::remove_file(part);
                if resumed {
                    // The kept part may be what was wrong (a power cut can
                    // leave a torn tail): one whole download more decides.
                    ctx.note(&format!(
                        "{}: resumed download failed verification ({e}); downloading it whole",
                        self.url
                    ));
                    download::fetch_to_part(&self.url, part, max, deadline, trust, ctx)?;
                    checks.verify_file(part).inspect_err(|_| {
                        let _ = std::fs::remove_file(part);
                    })
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Keeps what `dest` was, for `compensate`: a hard link when the step
    /// directory is on the same file system (a 1 GiB artifact is not
    /// copied), a durable copy otherwise.
    fn save_old(ctx: &Ctx<'_>, dest: &Path) -> Result<(), String> {
        let saved = Self::saved_path(ctx);
        if saved.exists() {
            // Saved by an earlier attempt of this step: that is the original.
            return Ok(());
        }
        let tmp = ctx.step_dir.join("fetch-old-dest.tmp");
        let _ = std::fs::remove_file(&tmp);
        if std::fs::hard_link(dest, &tmp).is_err() {
            std::fs::copy(dest, &tmp).map_err(|e| format!("saving {}: {e}", dest.display()))?;
        }
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .and_then(|_| std::fs::rename(&tmp, &saved))
            .and_then(|_| crate::sys::fsutil::sync_dir(&ctx.step_dir))
            .map_err(|e| format!("saving {}: {e}", dest.display()))
    }
}

impl Kind for Fetch {
    const NAME: &'static str = "fetch";

    fn summary(&self) -> String {
        let mut how = Vec::new();
        for (name, d) in [
            ("sha256", &self.sha256),
            ("sha512", &self.sha512),
            ("md5", &self.md5),
        ] {
            if d.is_some() {
                how.push(name.to_string());
            }
        }
        if !self.checksum_urls.is_empty() {
            how.push(format!("{} checksum file(s)", self.checksum_urls.len()));
        }
        if self.signature.is_some() {
            let mut s = "OpenPGP signature".to_string();
            if self.keys_url.is_some() {
                s.push_str(" (KEYS file)");
            }
            if !self.fingerprints.is_empty() {
                s.push_str(&format!(" by {} pinned key(s)", self.fingerprints.len()));
            }
            how.push(s);
        }
        format!(
            "download {} to {}, verified by {}",
            self.url,
            self.dest,
            how.join(" + ")
        )
    }

    fn undo_kinds(&self) -> &'static [&'static str] {
        &["exec", "file"]
    }

    fn disruptive(&self) -> bool {
        false
    }

    fn executable(&self) -> bool {
        self.urls().all(|u| supported_url(u))
    }

    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let deadline = Instant::now() + ctx.timeout;
        let dest = ctx.path(&self.dest);
        let trust = self.trust(ctx)?;
        let checks = self.checks(ctx, deadline, &trust)?;
        if dest.exists() && checks.verify_file(&dest).is_ok() {
            ctx.note(&format!(
                "{} already there and verified: not downloaded again",
                dest.display()
            ));
            return Ok(());
        }
        let dir = dest.parent().unwrap_or(Path::new("/"));
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let part = Self::part_path(&dest);
        let how = self.download_verified(ctx, &checks, &part, deadline, &trust)?;
        // What compensate needs is on disk before dest changes.
        crate::sys::fsutil::private_dir(&ctx.step_dir)
            .map_err(|e| format!("{}: {e}", ctx.step_dir.display()))?;
        if dest.exists() {
            Self::save_old(ctx, &dest)?;
        } else if !Self::saved_path(ctx).exists() {
            crate::sys::fsutil::write_atomic(
                &Self::created_marker(ctx),
                dest.as_os_str().as_encoded_bytes(),
            )
            .map_err(|e| format!("{}: {e}", ctx.step_dir.display()))?;
        }
        std::fs::rename(&part, &dest)
            .and_then(|_| crate::sys::fsutil::sync_dir(dir))
            .map_err(|e| format!("{}: {e}", dest.display()))?;
        ctx.note(&format!(
            "{} verified ({how}) and written to {}",
            self.url,
            dest.display()
        ));
        Ok(())
    }

    fn builtin_undo(&self) -> bool {
        true
    }

    fn compensate(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let dest = ctx.path(&self.dest);
        let saved = Self::saved_path(ctx);
        let marker = Self::created_marker(ctx);
        let _ = std::fs::remove_file(Self::part_path(&dest));
        if saved.exists() {
            let dir = dest.parent().unwrap_or(Path::new("/"));
            // Back beside dest first, then renamed over it: dest is whole
            // at every moment.
            let tmp = crate::sys::fsutil::tmp_beside(&dest);
            let _ = std::fs::remove_file(&tmp);
            if std::fs::hard_link(&saved, &tmp).is_err() {
                std::fs::copy(&saved, &tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
                std::fs::File::open(&tmp)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| format!("{}: {e}", tmp.display()))?;
            }
            std::fs::rename(&tmp, &dest)
                .and_then(|_| crate::sys::fsutil::sync_dir(dir))
                .map_err(|e| format!("{}: {e}", dest.display()))?;
            ctx.note(&format!("{} put back as it was", dest.display()));
        } else if marker.exists() {
            match std::fs::remove_file(&dest) {
                Ok(()) => {
                    let dir = dest.parent().unwrap_or(Path::new("/"));
                    let _ = crate::sys::fsutil::sync_dir(dir);
                    ctx.note(&format!(
                        "{} removed (it was not there before)",
                        dest.display()
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("{}: {e}", dest.display())),
            }
        }
        Ok(())
    }

    fn applied(&self, ctx: &Ctx<'_>) -> Option<bool> {
        let dest = ctx.path(&self.dest);
        if !dest.exists() {
            return Some(false);
        }
        let deadline = Instant::now() + ctx.timeout;
        Some(
            self.trust(ctx)
                .and_then(|t| self.checks(ctx, deadline, &t))
                .and_then(|c| c.verify_file(&dest))
                .is_ok(),
        )
    }

    fn validate(&self, span: &Range<usize>, problems: &mut Vec<Problem>) {
        let sidecar_strong = self
            .checksum_urls
            .iter()
            .any(|u| !u.to_ascii_lowercase().ends_with(".md5"));
        let strong = self.sha256.is_some()
            || self.sha512.is_some()
            || sidecar_strong
            || self.signature.is_some();
        if !strong {
            let weak = self.md5.is_some() || !self.checksum_urls.is_empty();
            let (code, message, label) = if weak {
                (
                    "weak-fetch",
                    "MD5 alone does not verify a download: anyone can make a file with a given MD5",
                    "only MD5 checks this one",
                )
            } else {
                (
                    "unverified-fetch",
                    "a download must be verified: nothing checks this one",
                    "no checksum, checksum file or signature",
                )
            };
            problems.push(
                Problem::error(code, span.clone(), message)
                    .label(label)
                    .help("add `sha512 = \"...\"`, `checksum_urls = [\"....sha512\"]` or `signature = { url, keyring }`"),
            );
        }
        for (name, digest, len) in [
            ("sha256", &self.sha256, 64),
            ("sha512", &self.sha512, 128),
            ("md5", &self.md5, 32),
        ] {
            if let Some(d) = digest
                && (d.len() != len || !d.chars().all(|c| c.is_ascii_hexdigit()))
            {
                problems.push(
                    Problem::error(
                        "bad-checksum",
                        span.clone(),
                        format!("`{name}` must be {len} hexadecimal digits"),
                    )
                    .label("here"),
                );
            }
        }
        for url in self.urls() {
            if !supported_url(url) {
                problems.push(
                    Problem::error(
                        "unsupported-url",
                        span.clone(),
                        format!("`{url}`: only file://, http:// and https:// URLs are fetched"),
                    )
                    .label("here"),
                );
            }
        }
        match &self.signature {
            Some(sig) if sig.keyring.is_none() && self.keys_url.is_none() => {
                problems.push(
                    Problem::error(
                        "no-trusted-keys",
                        span.clone(),
                        "a signature needs keys to check it against: nothing says which",
                    )
                    .label("no `keyring` and no `keys_url`")
                    .help("add `keyring = \"/path/to/keyring.gpg\"` to `signature`, or `keys_url = \".../KEYS\"`"),
                );
            }
            None if self.keys_url.is_some() || !self.fingerprints.is_empty() => {
                problems.push(
                    Problem::error(
                        "keys-without-signature",
                        span.clone(),
                        "`keys_url` and `fingerprints` check a signature, and there is none",
                    )
                    .label("no `signature`")
                    .help("add `signature = { url = \"....asc\" }`"),
                );
            }
            _ => {}
        }
        if let Some(k) = &self.keys_url
            && !k.starts_with("file://")
            && self.fingerprints.is_empty()
        {
            problems.push(
                Problem::warning(
                    "unpinned-keys",
                    span.clone(),
                    "a KEYS file fetched over the network is trusted as it comes",
                )
                .label("`keys_url` without `fingerprints`")
                .help("pin the release managers' keys with `fingerprints = [\"...\"]`"),
            );
        }
        for f in &self.fingerprints {
            let hex: String = f.chars().filter(|c| !c.is_whitespace()).collect();
            if !matches!(hex.len(), 40 | 64) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                problems.push(
                    Problem::error(
                        "bad-fingerprint",
                        span.clone(),
                        format!(
                            "`{f}` is not a full OpenPGP fingerprint (40 or 64 hexadecimal digits)"
                        ),
                    )
                    .label("here"),
                );
            }
        }
        if let Some(ca) = &self.ca {
            if ca.trim().is_empty() {
                problems.push(
                    Problem::error(
                        "bad-ca",
                        span.clone(),
                        "`ca` is empty: it names a PEM file of certificate authorities",
                    )
                    .label("here"),
                );
            } else if !self.urls().any(|u| u.starts_with("https://")) {
                problems.push(
                    Problem::error(
                        "ca-without-https",
                        span.clone(),
                        "`ca` vouches for https servers, and this step fetches no https:// URL",
                    )
                    .label("`ca` here")
                    .help("remove `ca`, or fetch over https://"),
                );
            }
        }
        if let Some(Size::Text(t)) = &self.max_size
            && let Err(e) = parse_size(t)
        {
            problems.push(
                Problem::error("bad-size", span.clone(), format!("`max_size`: {e}")).label("here"),
            );
        }
    }
}
