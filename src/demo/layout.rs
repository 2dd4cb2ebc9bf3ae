//! Where everything of a demo lives, under one directory:
//!
//! ```text
//! recipe.toml            the upgrade, paths filled in (written last by setup)
//! config/demo.toml       the service's port and data file
//! data/demo.db           the data (SQLite)
//! backup/demo.db         taken by the upgrade before the migration
//! releases/1.0, 2.0      one directory per release: VERSION, release.toml
//! current -> releases/V  the release that runs (the version probe reads it)
//! artifacts/*.tar        the 2.0 release as shipped; downloads/ as fetched
//! hooks/post-upgrade.d/  the product's post-upgrade scripts
//! run/demo.pid           the running server; run/server.log its output
//! state/                 hoist's journal and run logs
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::durable::{Context, Res};

pub const V1: &str = "1.0";
pub const V2: &str = "2.0";

#[derive(Clone, Debug)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
        }
    }

    pub fn recipe(&self) -> PathBuf {
        self.dir.join("recipe.toml")
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("config/demo.toml")
    }
    pub fn backup(&self) -> PathBuf {
        self.dir.join("backup/demo.db")
    }
    pub fn releases(&self) -> PathBuf {
        self.dir.join("releases")
    }
    pub fn release(&self, version: &str) -> PathBuf {
        self.releases().join(version)
    }
    pub fn current(&self) -> PathBuf {
        self.dir.join("current")
    }
    pub fn artifact(&self) -> PathBuf {
        self.dir.join(format!("artifacts/hoist-demo-{V2}.tar"))
    }
    pub fn post_hooks(&self) -> PathBuf {
        self.dir.join("hooks/post-upgrade.d")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("run/demo.pid")
    }
    pub fn server_log(&self) -> PathBuf {
        self.dir.join("run/server.log")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }
}

/// `config/demo.toml`: what the service reads at start.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Chosen free at setup; the recipe's health check uses it too.
    pub port: u16,
    pub data: PathBuf,
}

impl Config {
    pub fn load(layout: &Layout) -> Res<Config> {
        let path = layout.config();
        let text = std::fs::read_to_string(&path).ctx(|| format!("read {}", path.display()))?;
        toml::from_str(&text).ctx(|| format!("{}", path.display()))
    }

    pub fn text(&self) -> Res<String> {
        let body = toml::to_string(self).ctx(|| "config".to_string())?;
        Ok(format!("# The hoist demo service.\n{body}"))
    }
}

/// What a release directory says about itself (`release.toml`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub version: String,
    /// The data schema this release works with; health is 503 otherwise.
    pub schema: i64,
}

impl Release {
    pub fn load(dir: &Path) -> Res<Release> {
        let path = dir.join("release.toml");
        let text = std::fs::read_to_string(&path).ctx(|| format!("read {}", path.display()))?;
        toml::from_str(&text).ctx(|| format!("{}", path.display()))
    }

    /// The files of a release, as written at setup and packed in the artifact.
    pub fn files(&self) -> Res<Vec<(String, Vec<u8>)>> {
        let manifest = toml::to_string(self).ctx(|| "release.toml".to_string())?;
        Ok(vec![
            ("VERSION".into(), format!("{}\n", self.version).into_bytes()),
            ("release.toml".into(), manifest.into_bytes()),
        ])
    }
}
