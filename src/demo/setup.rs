//! Setting up a demo product: v1 installed and its data seeded, the v2
//! release shipped as an artifact, a post-upgrade hook, and the recipe with
//! this demo's paths, port and checksum filled in.

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::durable::{self, Context, Res};
use super::layout::{Config, Layout, Release, V1, V2};
use super::{ops, tar};

const RECIPE: &str = include_str!("recipe.toml");

/// What the demo starts with: a few rows the upgrade must keep.
const ROWS: &[(&str, i64)] = &[
    ("Flour", 12),
    ("Olive oil", 3),
    ("Sea salt", 40),
    ("Dry yeast", 7),
    ("Sugar", 25),
];

const POST_HOOK: &str = r#"#!/bin/sh
# Runs after every upgrade of the demo, from hoist's `hooks` step, with the
# versions and the run id in its environment. Rewrites the same file each
# time, so running it again is harmless.
set -eu
demo="$(cd "$(dirname "$0")/../.." && pwd)"
echo "demo upgraded from $HOIST_FROM_VERSION to $HOIST_TO_VERSION (run $HOIST_RUN_ID)"
printf 'from %s to %s, run %s\n' "$HOIST_FROM_VERSION" "$HOIST_TO_VERSION" "$HOIST_RUN_ID" > "$demo/run/.last-upgrade.tmp"
mv "$demo/run/.last-upgrade.tmp" "$demo/run/last-upgrade"
"#;

/// Sets the demo up in `layout.dir` (empty or absent). `hoist` is the binary
/// the recipe runs. The recipe is written last: its presence means the setup
/// is complete.
pub fn setup(layout: &Layout, hoist: &Path) -> Res<()> {
    if layout.recipe().exists() {
        return Err(format!(
            "{}: a demo is set up there already",
            layout.dir.display()
        ));
    }
    for sub in [
        "config",
        "data",
        "backup",
        "releases",
        "artifacts",
        "downloads",
        "run",
        "state",
    ] {
        durable::mkdir(&layout.dir.join(sub))?;
    }
    durable::mkdir(&layout.post_hooks())?;

    let config = Config {
        port: free_port()?,
        data: layout.dir.join("data/demo.db"),
    };
    durable::write(&layout.config(), config.text()?.as_bytes(), 0o644)?;
    seed(&config.data)?;

    let v1 = Release {
        version: V1.into(),
        schema: 1,
    };
    for (name, bytes) in v1.files()? {
        durable::mkdir(&layout.release(V1))?;
        durable::write(&layout.release(V1).join(name), &bytes, 0o644)?;
    }
    ops::switch(layout, V1)?;

    let v2 = Release {
        version: V2.into(),
        schema: 2,
    };
    let artifact = tar::pack(&v2.files()?)?;
    durable::write(&layout.artifact(), &artifact, 0o644)?;
    let sha256 = hex::encode(Sha256::digest(&artifact));

    durable::write(
        &layout.post_hooks().join("50-record-upgrade"),
        POST_HOOK.as_bytes(),
        0o755,
    )?;

    let recipe = fill(layout, hoist, config.port, &sha256)?;
    durable::write(&layout.recipe(), recipe.as_bytes(), 0o644)
}

/// A port nothing uses now, below the kernel's ephemeral range (32768 and
/// up on Linux). The kernel's own choice for port 0 comes from that range,
/// which outgoing connections also draw from: one of them could hold the
/// port by the time the server binds it. Candidates vary by process and by
/// call, so demos set up side by side do not pick the same one.
fn free_port() -> Res<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(2_654_435_761);
    for _ in 0..4000 {
        let n = CALLS.fetch_add(1, Ordering::SeqCst);
        let port = 20_000 + (seed.wrapping_add(n.wrapping_mul(7_919)) % 12_000) as u16;
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free port between 20000 and 32000 on 127.0.0.1".to_string())
}

/// The data at schema 1, created beside and renamed into place.
fn seed(data: &Path) -> Res<()> {
    let tmp = durable::temp_beside(data);
    durable::remove(&tmp)?;
    {
        let db = rusqlite::Connection::open(&tmp).ctx(|| format!("create {}", tmp.display()))?;
        db.execute_batch(
            "PRAGMA journal_mode = DELETE;
             CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL);
             PRAGMA user_version = 1;",
        )
        .ctx(|| "create the schema".to_string())?;
        for (name, qty) in ROWS {
            db.execute(
                "INSERT INTO items (name, qty) VALUES (?1, ?2)",
                rusqlite::params![name, qty],
            )
            .ctx(|| "seed the data".to_string())?;
        }
    }
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .ctx(|| format!("fsync {}", tmp.display()))?;
    std::fs::rename(&tmp, data).ctx(|| format!("rename to {}", data.display()))?;
    durable::fsync_dir(data.parent().unwrap_or(Path::new(".")))
}

/// The embedded recipe with this demo's values. Paths go inside TOML basic
/// strings, so they are escaped as such.
fn fill(layout: &Layout, hoist: &Path, port: u16, sha256: &str) -> Res<String> {
    let dir = utf8(&layout.dir)?;
    let url = format!("file://{}", percent_encode(utf8(&layout.artifact())?));
    Ok(RECIPE
        .replace("@DIR@", &toml_escape(dir))
        .replace("@HOIST@", &toml_escape(utf8(hoist)?))
        .replace("@ARTIFACT_URL@", &toml_escape(&url))
        .replace("@PORT@", &port.to_string())
        .replace("@SHA256@", sha256))
}

fn utf8(p: &Path) -> Res<&str> {
    p.to_str()
        .ok_or_else(|| format!("{}: the demo needs a UTF-8 path", p.display()))
}

fn toml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A path as a URL path: everything but unreserved characters and `/`
/// percent-encoded.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(toml_escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(percent_encode("/tmp/a b/é"), "/tmp/a%20b/%C3%A9");
    }
}
