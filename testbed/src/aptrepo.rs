//! A local Debian archive: suites side by side, each with its own pool,
//! indexed with apt-ftparchive and signed (InRelease and Release.gpg) with
//! a key generated for this repository. Hosts see it read-only at
//! /srv/hoist-repo through a bind mount and trust that key, so apt on a
//! host verifies signatures and hashes exactly as with a real mirror.
//! Chosen suites can be signed with another key instead (a vendor's key
//! rotation, as XiVO's before 1.2.4): hosts refuse them until that key,
//! published under `keys/`, is added to their trusted keys.
//!
//! Layout: `repo/dists/<suite>/{Release,InRelease,Release.gpg}`,
//! `repo/dists/<suite>/main/binary-amd64/Packages`, `repo/pool/<suite>/*.deb`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cache;
use crate::cmd;
use crate::debspec::PackageSpec;
use crate::error::{Error, IoContext, Result};
use crate::gpg::SigningKey;
use crate::image::Image;

const INDEX_TIMEOUT: Duration = Duration::from_secs(300);

/// A signed apt repository on the runner.
#[derive(Debug)]
pub struct AptRepo {
    // Field order matters for Drop: the key (and its gpg-agent) goes
    // before the directory holding its home.
    key: SigningKey,
    /// Other keys by name, and the suites each one signs.
    other_keys: BTreeMap<String, SigningKey>,
    signed_by: BTreeMap<String, String>,
    /// Suites signed by the repository key and by another key too.
    cosigned_by: BTreeMap<String, String>,
    dir: tempfile::TempDir,
    suites: BTreeSet<String>,
    /// Codenames published with components of their own
    /// (`dists/precise/4.3`): component -> the pool suites it indexes.
    components: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

impl AptRepo {
    /// A new, empty repository in the cache (removed on drop) with a fresh
    /// signing key.
    pub fn new() -> Result<AptRepo> {
        let parent = cache::subdir("repos")?;
        let dir = tempfile::Builder::new()
            .prefix("repo-")
            .tempdir_in(&parent)
            .ctx("create repository in", &parent)?;
        // The run's hosts bind-mount it and apt's sandbox user reads it.
        set_mode(dir.path(), 0o755)?;
        let root = dir.path().join("repo");
        fs::create_dir_all(root.join("dists")).ctx("create", &root)?;
        fs::create_dir_all(root.join("pool")).ctx("create", &root)?;
        let key = SigningKey::generate(&dir.path().join("gnupg"), &dir.path().join("keyring.gpg"))?;
        Ok(AptRepo {
            key,
            other_keys: BTreeMap::new(),
            signed_by: BTreeMap::new(),
            cosigned_by: BTreeMap::new(),
            dir,
            suites: BTreeSet::new(),
            components: BTreeMap::new(),
        })
    }

    /// The archive root (what hosts see at /srv/hoist-repo).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// The public keyring hosts trust (in /etc/apt/trusted.gpg.d).
    pub fn keyring(&self) -> &Path {
        self.key.keyring()
    }

    /// Fingerprint of the signing key.
    pub fn fingerprint(&self) -> &str {
        self.key.fingerprint()
    }

    /// Sign `suite` with the key called `key_name` (made on first use)
    /// instead of the repository's key. Returns where hosts find that key:
    /// `/srv/hoist-repo/keys/<key_name>.gpg`.
    pub fn sign_suite_with(&mut self, suite: &str, key_name: &str) -> Result<String> {
        if key_name.is_empty()
            || !key_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        {
            return Err(Error::Spec(format!("bad key name {key_name:?}")));
        }
        if !self.other_keys.contains_key(key_name) {
            let keys = self.root().join("keys");
            fs::create_dir_all(&keys).ctx("create", &keys)?;
            let k = SigningKey::generate(
                &self.dir.path().join(format!("gnupg-{key_name}")),
                &keys.join(format!("{key_name}.gpg")),
            )?;
            self.other_keys.insert(key_name.to_owned(), k);
        }
        self.signed_by.insert(suite.to_owned(), key_name.to_owned());
        Ok(format!("{}/keys/{key_name}.gpg", crate::host::REPO_MOUNT))
    }

    /// Sign `suite` with the repository key and with `key_name` too, as a
    /// vendor does while rotating keys: hosts that trust either accept it.
    /// Only `Release.gpg` then (two detached signatures), no `InRelease`.
    /// Returns the other key's path on hosts.
    pub fn cosign_suite_with(&mut self, suite: &str, key_name: &str) -> Result<String> {
        let at = self.sign_suite_with(suite, key_name)?;
        self.signed_by.remove(suite);
        self.cosigned_by
            .insert(suite.to_owned(), key_name.to_owned());
        Ok(at)
    }

    /// Suites that have packages.
    pub fn suites(&self) -> Vec<String> {
        self.suites.iter().cloned().collect()
    }

    fn pool(&self, suite: &str) -> Result<PathBuf> {
        if suite.is_empty()
            || !suite
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        {
            return Err(Error::Spec(format!("bad suite name {suite:?}")));
        }
        let p = self.root().join("pool").join(suite);
        fs::create_dir_all(&p).ctx("create", &p)?;
        Ok(p)
    }

    /// Build `spec` into `suite`'s pool; returns the .deb path. Call
    /// [`AptRepo::publish`] afterwards.
    pub fn add(&mut self, suite: &str, spec: &PackageSpec) -> Result<PathBuf> {
        let pool = self.pool(suite)?;
        let deb = spec.build(&pool)?;
        self.suites.insert(suite.to_owned());
        Ok(deb)
    }

    /// Add several packages to one suite.
    pub fn add_all(&mut self, suite: &str, specs: &[PackageSpec]) -> Result<()> {
        for s in specs {
            self.add(suite, s)?;
        }
        Ok(())
    }

    /// Add an existing .deb (hard-linked when possible, else copied).
    pub fn add_deb(&mut self, suite: &str, deb: &Path) -> Result<PathBuf> {
        let pool = self.pool(suite)?;
        let to = pool.join(deb.file_name().unwrap_or_default());
        if !to.exists() && fs::hard_link(deb, &to).is_err() {
            fs::copy(deb, &to).ctx("copy", deb)?;
        }
        self.suites.insert(suite.to_owned());
        Ok(to)
    }

    /// Make `image`'s Debian packages a suite named after its codename: a
    /// host of the previous release can then switch its sources to it and
    /// dist-upgrade without reaching Debian's mirror.
    pub fn add_os_mirror(&mut self, image: &Image) -> Result<String> {
        let suite = image.spec.suite.codename().to_owned();
        let debs = image.debs();
        for e in fs::read_dir(&debs).ctx("read", &debs)? {
            let p = e.ctx("read", &debs)?.path();
            if p.extension().is_some_and(|x| x == "deb") {
                self.add_deb(&suite, &p)?;
            }
        }
        Ok(suite)
    }

    /// Also publish `pool_suite`'s packages as component `component` of
    /// `codename`, the layout of a vendor's repository whose lines name a
    /// series (`deb URL precise 4.3`: `dists/precise/4.3/binary-amd64`).
    /// Several pool suites may make one component. Signed with the
    /// repository key by [`AptRepo::publish`].
    pub fn add_component(&mut self, codename: &str, component: &str, pool_suite: &str) {
        self.components
            .entry(codename.to_owned())
            .or_default()
            .entry(component.to_owned())
            .or_default()
            .insert(pool_suite.to_owned());
    }

    fn publish_components(&self) -> Result<()> {
        let root = self.root();
        for (codename, comps) in &self.components {
            let dist = root.join("dists").join(codename);
            for (comp, pools) in comps {
                let bin = dist.join(comp).join("binary-amd64");
                fs::create_dir_all(&bin).ctx("create", &bin)?;
                let mut index = Vec::new();
                for pool in pools {
                    let out = cmd::run(
                        Command::new("apt-ftparchive")
                            .current_dir(&root)
                            .args(["packages", &format!("pool/{pool}")]),
                        INDEX_TIMEOUT,
                    )?;
                    index.extend(out.stdout.into_bytes());
                }
                fs::write(bin.join("Packages"), index).ctx("write", &bin)?;
            }
            for f in ["Release", "InRelease", "Release.gpg"] {
                let _ = fs::remove_file(dist.join(f));
            }
            let names: Vec<&str> = comps.keys().map(String::as_str).collect();
            let opt = |k: &str, v: &str| format!("-oAPT::FTPArchive::Release::{k}={v}");
            let release = cmd::run(
                Command::new("apt-ftparchive")
                    .arg(opt("Origin", "hoist-testbed"))
                    .arg(opt("Label", "hoist-testbed"))
                    .arg(opt("Suite", codename))
                    .arg(opt("Codename", codename))
                    .arg(opt("Architectures", "amd64 all"))
                    .arg(opt("Components", &names.join(" ")))
                    .arg("release")
                    .arg(&dist),
                INDEX_TIMEOUT,
            )?;
            let rel = dist.join("Release");
            fs::write(&rel, release.stdout).ctx("write", &rel)?;
            self.key.sign_release(&rel)?;
        }
        Ok(())
    }

    /// Index and sign every suite. Run again after adding packages.
    pub fn publish(&self) -> Result<()> {
        self.publish_components()?;
        let root = self.root();
        for suite in &self.suites {
            let dist = root.join("dists").join(suite);
            let bin = dist.join("main/binary-amd64");
            fs::create_dir_all(&bin).ctx("create", &bin)?;
            let packages = cmd::run(
                Command::new("apt-ftparchive")
                    .current_dir(&root)
                    .args(["packages", &format!("pool/{suite}")]),
                INDEX_TIMEOUT,
            )?;
            fs::write(bin.join("Packages"), packages.stdout).ctx("write", &bin)?;
            for f in ["Release", "InRelease", "Release.gpg"] {
                let _ = fs::remove_file(dist.join(f));
            }
            let opt = |k: &str, v: &str| format!("-oAPT::FTPArchive::Release::{k}={v}");
            let release = cmd::run(
                Command::new("apt-ftparchive")
                    .arg(opt("Origin", "hoist-testbed"))
                    .arg(opt("Label", "hoist-testbed"))
                    .arg(opt("Suite", suite))
                    .arg(opt("Codename", suite))
                    .arg(opt("Architectures", "amd64 all"))
                    .arg(opt("Components", "main"))
                    .arg("release")
                    .arg(&dist),
                INDEX_TIMEOUT,
            )?;
            let rel = dist.join("Release");
            fs::write(&rel, release.stdout).ctx("write", &rel)?;
            if let Some(other) = self
                .cosigned_by
                .get(suite)
                .and_then(|k| self.other_keys.get(k))
            {
                let mut sigs = self.key.detached_signature(&rel)?;
                sigs.extend(other.detached_signature(&rel)?);
                let out = dist.join("Release.gpg");
                fs::write(&out, sigs).ctx("write", &out)?;
                continue;
            }
            let key = self
                .signed_by
                .get(suite)
                .and_then(|k| self.other_keys.get(k))
                .unwrap_or(&self.key);
            key.sign_release(&rel)?;
        }
        Ok(())
    }

    /// Put a file that is not a Debian package in the repository tree
    /// (e.g. `pip/<wheel>`); hosts see it under /srv/hoist-repo.
    pub fn add_file(&self, rel: &str, contents: &[u8]) -> Result<PathBuf> {
        if rel.starts_with('/') || rel.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(Error::Spec(format!("bad repository path {rel:?}")));
        }
        let p = self.root().join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).ctx("create", parent)?;
        }
        fs::write(&p, contents).ctx("write", &p)?;
        Ok(p)
    }

    /// Path of a published .deb, for tests that tamper with it.
    pub fn deb_path(&self, suite: &str, spec: &PackageSpec) -> PathBuf {
        self.root().join("pool").join(suite).join(spec.file_name())
    }

    /// Path of a suite's Packages index, for tests that tamper with it.
    pub fn packages_index(&self, suite: &str) -> PathBuf {
        self.root()
            .join("dists")
            .join(suite)
            .join("main/binary-amd64/Packages")
    }
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).ctx("chmod", p)
}
