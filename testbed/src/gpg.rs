//! The repository's OpenPGP signing key: generated per repository with the
//! system's gpg in a private GNUPGHOME, never protected by a passphrase
//! (it signs throw-away test repositories only), never leaving that home
//! except as the exported public keyring the hosts trust.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cmd;
use crate::error::{Error, IoContext, Result};

const GPG_TIMEOUT: Duration = Duration::from_secs(60);

/// A signing key living in its own GNUPGHOME.
#[derive(Debug)]
pub struct SigningKey {
    home: PathBuf,
    fingerprint: String,
    keyring: PathBuf,
}

impl SigningKey {
    /// Generate an ed25519 signing key in `home` and export its public key
    /// to `keyring` (binary format, as apt's `signed-by=` expects).
    pub fn generate(home: &Path, keyring: &Path) -> Result<SigningKey> {
        fs::create_dir_all(home).ctx("create", home)?;
        fs::set_permissions(home, fs::Permissions::from_mode(0o700)).ctx("chmod", home)?;
        let mut key = SigningKey {
            home: home.to_path_buf(),
            fingerprint: String::new(),
            keyring: keyring.to_path_buf(),
        };
        // Parameters on stdin, not in argv; %no-protection: no passphrase.
        let params = "Key-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\n\
                      Name-Real: hoist testbed repository\n\
                      Name-Email: repository@hoist-testbed.invalid\n\
                      Expire-Date: 0\n%no-protection\n%commit\n";
        cmd::run_stdin(
            key.gpg().args(["--gen-key"]),
            Some(params.as_bytes()),
            GPG_TIMEOUT,
        )?;
        let listing = cmd::run(
            key.gpg().args(["--with-colons", "--list-secret-keys"]),
            GPG_TIMEOUT,
        )?;
        let fingerprint = listing
            .stdout
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .map(str::to_owned)
            .ok_or_else(|| Error::Spec("gpg made no key".into()))?;
        // Exported to a file: the binary key must not go through a pipe
        // that is read as text.
        let _ = fs::remove_file(keyring);
        cmd::run(
            key.gpg()
                .arg("--output")
                .arg(keyring)
                .arg("--export")
                .arg(&fingerprint),
            GPG_TIMEOUT,
        )?;
        fs::set_permissions(keyring, fs::Permissions::from_mode(0o644)).ctx("chmod", keyring)?;
        key.fingerprint = fingerprint;
        Ok(key)
    }

    /// The key's fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The public keyring to install on hosts.
    pub fn keyring(&self) -> &Path {
        &self.keyring
    }

    /// Write `InRelease` (clear-signed) and `Release.gpg` (detached,
    /// armored) next to `release`, as a Debian archive does.
    pub fn sign_release(&self, release: &Path) -> Result<()> {
        let dir = release.parent().unwrap_or(Path::new("."));
        for (flag, out) in [
            ("--clearsign", "InRelease"),
            ("--detach-sign", "Release.gpg"),
        ] {
            let out = dir.join(out);
            let _ = fs::remove_file(&out);
            cmd::run(
                self.gpg()
                    .args(["--armor", "--digest-algo", "SHA512", "--local-user"])
                    .arg(&self.fingerprint)
                    .arg("--output")
                    .arg(&out)
                    .arg(flag)
                    .arg(release),
                GPG_TIMEOUT,
            )?;
        }
        Ok(())
    }

    /// An armored detached signature of `file` (to be put together with
    /// another key's into one `Release.gpg`: an archive signed by two keys
    /// while its vendor rotates them).
    pub fn detached_signature(&self, file: &Path) -> Result<Vec<u8>> {
        let out = file.with_extension("sig.tmp");
        let _ = fs::remove_file(&out);
        cmd::run(
            self.gpg()
                .args(["--armor", "--digest-algo", "SHA512", "--local-user"])
                .arg(&self.fingerprint)
                .arg("--output")
                .arg(&out)
                .arg("--detach-sign")
                .arg(file),
            GPG_TIMEOUT,
        )?;
        let sig = fs::read(&out).ctx("read", &out)?;
        let _ = fs::remove_file(&out);
        Ok(sig)
    }

    fn gpg(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", &self.home)
            .args(["--batch", "--yes", "--no-tty", "--quiet"]);
        c
    }
}

impl Drop for SigningKey {
    /// gpg starts a gpg-agent for the home; stop it so that no process
    /// outlives the repository.
    fn drop(&mut self) {
        let _ = cmd::run(
            Command::new("gpgconf")
                .env("GNUPGHOME", &self.home)
                .args(["--kill", "all"]),
            GPG_TIMEOUT,
        );
    }
}
