//! Getting bytes: `file://`, `http://` and `https://` (rustls), bounded in
//! time and size, with resume of a partial download by `Range`.
//!
//! An https server must show a certificate for its name, vouched for by
//! the host's CA bundle (what `update-ca-certificates` maintains, so an
//! admin's own authority added there is trusted, as by apt, curl and wget)
//! plus the step's `ca` file (a product's private mirror). A host without a
//! bundle falls back on Mozilla's list built into hoist.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ureq::tls::{Certificate, PemItem, RootCerts};

use crate::actions::ctx::Ctx;

/// The system CA bundles, Debian's first (RHEL's second).
pub const SYSTEM_BUNDLES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// The authorities an https server's certificate must chain to.
#[derive(Clone)]
pub struct Trust {
    roots: RootCerts,
    /// Said in a refusal: which authorities were asked.
    what: String,
}

/// Every certificate of a PEM file; a file with none is an error (a key, a
/// DER file or a wrong path would otherwise trust nothing, silently).
fn pem_certs(path: &Path) -> Result<Vec<Certificate<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("{}: not a PEM file: {e}", path.display())),
        }
    }
    if certs.is_empty() {
        return Err(format!(
            "{}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            path.display()
        ));
    }
    Ok(certs)
}

impl Trust {
    /// The host's bundle (the first of `bundles` that exists), plus the
    /// certificates of `ca`.
    pub fn new(ca: Option<&Path>, bundles: &[&str]) -> Result<Trust, String> {
        let system = bundles.iter().map(PathBuf::from).find(|p| p.is_file());
        let (mut certs, mut what) = match (&system, ca) {
            (Some(s), _) => (pem_certs(s)?, vec![s.display().to_string()]),
            (None, Some(_)) => (Vec::new(), Vec::new()),
            (None, None) => {
                return Ok(Trust {
                    roots: RootCerts::WebPki,
                    what: "the authorities built into hoist (no CA bundle on this host)".into(),
                });
            }
        };
        if let Some(ca) = ca {
            certs.extend(pem_certs(ca)?);
            what.push(ca.display().to_string());
        }
        Ok(Trust {
            roots: RootCerts::new_with_certs(&certs),
            what: what.join(" or "),
        })
    }

    /// The host's trust alone (a `repo` key URL, a step without `ca`).
    pub fn system() -> Result<Trust, String> {
        Trust::new(None, &SYSTEM_BUNDLES)
    }

    fn agent(&self, timeout: Duration) -> ureq::Agent {
        ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            // Statuses are read here: 206 and 416 mean something for a resume.
            .http_status_as_error(false)
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(self.roots.clone())
                    .build(),
            )
            .build()
            .into()
    }

    /// `url: error`, and for a certificate refused, who was asked.
    fn error(&self, url: &str, e: ureq::Error) -> String {
        let text = e.to_string();
        if text.contains("certificate") {
            format!(
                "{url}: {text}: the server's certificate is refused (it must be valid for the \
                 server's name and issued by an authority in {})",
                self.what
            )
        } else {
            format!("{url}: {text}")
        }
    }
}

/// Sidecars, signatures and KEYS files are small; a larger one is not what
/// the recipe meant (Apache's KEYS for CloudStack is about 30 KiB).
pub const SMALL_MAX: u64 = 4 << 20;

fn remaining(url: &str, deadline: Instant) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(format!("{url}: the step's time is up"))
    } else {
        Ok(left)
    }
}

fn file_path(url: &str) -> Option<&Path> {
    url.strip_prefix("file://").map(Path::new)
}

/// A whole small file, in memory.
pub fn fetch_small(url: &str, deadline: Instant, trust: &Trust) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    if let Some(path) = file_path(url) {
        std::fs::File::open(path)
            .and_then(|f| f.take(SMALL_MAX + 1).read_to_end(&mut out))
            .map_err(|e| format!("{url}: {e}"))?;
    } else {
        let mut resp = trust
            .agent(remaining(url, deadline)?)
            .get(url)
            .call()
            .map_err(|e| trust.error(url, e))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(format!("{url}: HTTP status {status}"));
        }
        out = resp
            .body_mut()
            .with_config()
            .limit(SMALL_MAX + 1)
            .read_to_vec()
            .map_err(|e| format!("{url}: {e}"))?;
    }
    if out.len() as u64 > SMALL_MAX {
        return Err(format!("{url}: larger than {SMALL_MAX} bytes: refused"));
    }
    Ok(out)
}

fn too_large(url: &str, max: u64) -> String {
    format!("{url}: larger than the step's max_size ({max} bytes): refused")
}

/// `Content-Range: bytes START-END/TOTAL` -> (START, TOTAL if known).
fn content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim();
    let (range, total) = rest.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()))
}

/// Copies `from` onto the end of `file` (holding `have` bytes already),
/// refusing to go past `max`. What was written stays written on an error,
/// for the next attempt to resume from.
fn copy_capped(
    url: &str,
    from: &mut dyn Read,
    file: &mut std::fs::File,
    mut have: u64,
    max: u64,
) -> Result<(), String> {
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(format!(
                    "{url}: {e} (after {have} bytes; kept for resuming)"
                ));
            }
        };
        have += n as u64;
        if have > max {
            return Err(too_large(url, max));
        }
        file.write_all(&buf[..n])
            .map_err(|e| format!("{url}: writing the download: {e}"))?;
    }
}

/// Downloads `url` into `part`, continuing what an earlier attempt left
/// there. Returns whether it resumed (so the caller knows the first bytes
/// come from an earlier attempt). The part is fsynced on success.
pub fn fetch_to_part(
    url: &str,
    part: &Path,
    max: u64,
    deadline: Instant,
    trust: &Trust,
    ctx: &Ctx<'_>,
) -> Result<bool, String> {
    let result = fetch_into(url, part, max, deadline, trust, ctx);
    if let Err(e) = &result
        && e.contains("max_size")
    {
        // Nothing of an over-large download is worth keeping.
        let _ = std::fs::remove_file(part);
    }
    result
}

fn fetch_into(
    url: &str,
    part: &Path,
    max: u64,
    deadline: Instant,
    trust: &Trust,
    ctx: &Ctx<'_>,
) -> Result<bool, String> {
    let mut have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    if have > max {
        have = 0;
    }
    let open = |append: bool| {
        let mut o = std::fs::OpenOptions::new();
        o.create(true).write(true);
        if append {
            o.append(true);
        } else {
            o.truncate(true);
        }
        o.open(part).map_err(|e| format!("{}: {e}", part.display()))
    };
    let resumed;
    if let Some(path) = file_path(url) {
        let mut src = std::fs::File::open(path).map_err(|e| format!("{url}: {e}"))?;
        let len = src.metadata().map_err(|e| format!("{url}: {e}"))?.len();
        if len > max {
            return Err(too_large(url, max));
        }
        if have > len {
            have = 0;
        }
        resumed = have > 0;
        src.seek(SeekFrom::Start(have))
            .map_err(|e| format!("{url}: {e}"))?;
        let mut f = open(resumed)?;
        copy_capped(url, &mut src, &mut f, have, max)?;
        return f
            .sync_all()
            .map(|_| resumed)
            .map_err(|e| format!("{}: {e}", part.display()));
    }
    let mut req = trust.agent(remaining(url, deadline)?).get(url);
    if have > 0 {
        req = req.header("Range", format!("bytes={have}-"));
    }
    let mut resp = req.call().map_err(|e| trust.error(url, e))?;
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let length = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
    let mut start = 0;
    match status {
        206 if have > 0 => {
            let (from, total) = header("content-range")
                .as_deref()
                .and_then(content_range)
                .ok_or_else(|| format!("{url}: a partial answer without a usable Content-Range"))?;
            if from != have {
                return Err(format!(
                    "{url}: asked for the bytes from {have}, the server sent them from {from}"
                ));
            }
            if total.is_some_and(|t| t > max) {
                return Err(too_large(url, max));
            }
            start = have;
            ctx.note(&format!("{url}: resuming after {have} bytes"));
        }
        200 => {}
        416 if have > 0 => {
            // Nothing past what is there: the part is complete, or it is
            // not this file; verification tells which.
            return Ok(true);
        }
        _ => return Err(format!("{url}: HTTP status {status}")),
    }
    if length.is_some_and(|l| start + l > max) {
        return Err(too_large(url, max));
    }
    let mut f = open(start > 0)?;
    let mut body = resp
        .body_mut()
        .with_config()
        .limit(max - start + 1)
        .reader();
    copy_capped(url, &mut body, &mut f, start, max)?;
    f.sync_all()
        .map_err(|e| format!("{}: {e}", part.display()))?;
    Ok(start > 0)
}

#[cfg(test)]
mod tests {
    use super::content_range;

    #[test]
    fn content_ranges() {
        assert_eq!(content_range("bytes 100-199/200"), Some((100, Some(200))));
        assert_eq!(content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(content_range("items 1-2/3"), None);
    }
}
