//! `fetch`: download an artifact and verify it before anything uses it
//! (seed 003: KEYS import, `.asc` signature, MD5 and SHA512 sidecars).

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::Kind;
use crate::context::Ctx;
use crate::diag::Problem;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The detached signature (`.asc`).
    pub url: String,
    /// The keyring holding the keys it must be made by.
    pub keyring: String,
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
    /// A sidecar file listing checksums (`.sha512`, `.md5`), fetched too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checksum_urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

impl Kind for Fetch {
    const NAME: &'static str = "fetch";

    fn summary(&self) -> String {
        let mut how = Vec::new();
        if self.sha256.is_some() {
            how.push("sha256".to_string());
        }
        if self.sha512.is_some() {
            how.push("sha512".to_string());
        }
        if !self.checksum_urls.is_empty() {
            how.push(format!("{} checksum file(s)", self.checksum_urls.len()));
        }
        if self.signature.is_some() {
            how.push("OpenPGP signature".to_string());
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
        // Signatures and checksum files come with the verified downloads of
        // the system actions; plain digests over file: and http: work now.
        self.signature.is_none()
            && self.checksum_urls.is_empty()
            && (self.url.starts_with("file://") || self.url.starts_with("http://"))
    }

    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let dest = ctx.path(&self.dest);
        let bytes = read_url(&self.url, ctx.timeout)?;
        for (name, want, got) in [
            ("sha256", &self.sha256, hex_digest::<sha2::Sha256>(&bytes)),
            ("sha512", &self.sha512, hex_digest::<sha2::Sha512>(&bytes)),
        ] {
            if let Some(want) = want
                && !want.eq_ignore_ascii_case(&got)
            {
                return Err(format!("{}: {name} is {got}, expected {want}: refused", self.url));
            }
        }
        crate::fsutil::write_atomic(&dest, &bytes).map_err(|e| format!("{}: {e}", dest.display()))?;
        ctx.note(&format!("{} verified and written to {}", self.url, dest.display()));
        Ok(())
    }

    fn validate(&self, span: &Range<usize>, problems: &mut Vec<Problem>) {
        let verified = self.sha256.is_some()
            || self.sha512.is_some()
            || !self.checksum_urls.is_empty()
            || self.signature.is_some();
        if !verified {
            problems.push(
                Problem::error(
                    "unverified-fetch",
                    span.clone(),
                    "a download must be verified: nothing checks this one",
                )
                .label("no checksum, checksum file or signature")
                .help("add `sha512 = \"...\"`, `checksum_urls = [...]` or `signature = { url, keyring }`"),
            );
        }
        for (name, digest, len) in [("sha256", &self.sha256, 64), ("sha512", &self.sha512, 128)] {
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
    }
}

fn hex_digest<D: sha2::Digest>(bytes: &[u8]) -> String {
    crate::plan::hex(&D::digest(bytes))
}

fn read_url(url: &str, timeout: std::time::Duration) -> Result<Vec<u8>, String> {
    if let Some(path) = url.strip_prefix("file://") {
        return std::fs::read(path).map_err(|e| format!("{url}: {e}"));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .build()
        .into();
    let mut resp = agent.get(url).call().map_err(|e| format!("{url}: {e}"))?;
    resp.body_mut()
        .with_config()
        .limit(4 << 30)
        .read_to_vec()
        .map_err(|e| format!("{url}: {e}"))
}
