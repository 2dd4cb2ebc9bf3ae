//! The host's package databases as every layer reads them: the installed
//! version of a package (dpkg, else rpm), and a temporary apt configuration
//! (`AptView`) a candidate is read through without touching the host's own.

use std::path::PathBuf;
use std::time::Duration;

use super::process;

/// Bounds one query of a package database.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The installed version of a package (dpkg, else rpm), if installed: `rc`
/// (removed, its configuration left) is not.
pub fn installed_version(pkg: &str) -> Option<String> {
    let read = |args: &[&str]| {
        let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = process::run(&mut process::argv(&argv), QUERY_TIMEOUT).ok()?;
        let text = out.stdout.trim().to_string();
        (out.success() && !text.is_empty()).then_some(text)
    };
    if let Some(line) = read(&[
        "dpkg-query",
        "-W",
        "-f",
        "${db:Status-Abbrev}\t${Version}",
        pkg,
    ]) {
        let (status, version) = line.split_once('\t')?;
        return status.starts_with("ii").then(|| version.to_string());
    }
    read(&["rpm", "-q", "--qf", "%{EPOCH}:%{VERSION}-%{RELEASE}", pkg])
        .map(|v| v.trim_start_matches("(none):").to_string())
}

/// A temporary apt configuration the candidate is read through instead of
/// the host's own: apt's options naming it, and its directory, removed
/// when dropped. The host's lists, keys and sources stay as they are.
#[derive(Debug)]
pub struct AptView {
    dir: PathBuf,
    options: Vec<String>,
}

impl AptView {
    /// `dir` is the view's own (made for it, removed with it); `options`
    /// are the arguments (`-o`, `Name=value`, ...) given to apt-get and
    /// apt-cache.
    pub fn new(dir: PathBuf, options: Vec<String>) -> Self {
        AptView { dir, options }
    }

    /// The arguments that point apt at this view.
    pub fn options(&self) -> &[String] {
        &self.options
    }
}

impl Drop for AptView {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
