//! Declarative Debian packages, built with `dpkg-deb`. A spec says what a
//! package *is* (control fields, files, conffiles, maintainer scripts,
//! systemd units, a database schema); [`PackageSpec::build`] turns it into
//! a real .deb that dpkg installs, upgrades, and asks about conffiles for,
//! exactly like a vendor's package.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cmd;
use crate::error::{Error, IoContext, Result};
use crate::schema::Schema;

/// One file shipped by a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// Absolute path on the target system.
    pub path: String,
    pub contents: Vec<u8>,
    pub mode: u32,
}

/// A systemd unit shipped in /lib/systemd/system, enabled and (re)started
/// by the postinst and stopped by the prerm, as debhelper would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSpec {
    /// Unit file name, e.g. `xivo-agid.service`.
    pub name: String,
    pub contents: String,
}

/// A Debian binary package, declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSpec {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub maintainer: String,
    pub description: String,
    pub depends: Vec<String>,
    pub pre_depends: Vec<String>,
    pub conflicts: Vec<String>,
    pub breaks: Vec<String>,
    pub replaces: Vec<String>,
    pub provides: Vec<String>,
    pub files: Vec<FileSpec>,
    /// Absolute paths of files (among `files`) that are conffiles.
    pub conffiles: Vec<String>,
    pub preinst: Option<String>,
    pub postinst: Option<String>,
    pub prerm: Option<String>,
    pub postrm: Option<String>,
    pub units: Vec<UnitSpec>,
    pub schema: Option<Schema>,
    /// Enable the units on install but do not start or restart them
    /// (debhelper's `--no-start`): the admin starts the service.
    pub no_start: bool,
}

impl PackageSpec {
    /// A package with no content yet.
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            architecture: "all".into(),
            maintainer: "hoist testbed <testbed@hoist.invalid>".into(),
            description: format!("stand-in {name} for hoist's tests"),
            depends: Vec::new(),
            pre_depends: Vec::new(),
            conflicts: Vec::new(),
            breaks: Vec::new(),
            replaces: Vec::new(),
            provides: Vec::new(),
            files: Vec::new(),
            conffiles: Vec::new(),
            preinst: None,
            postinst: None,
            prerm: None,
            postrm: None,
            units: Vec::new(),
            schema: None,
            no_start: false,
        }
    }

    /// Units enabled but not started by the postinst (`--no-start`).
    pub fn no_start(mut self) -> Self {
        self.no_start = true;
        self
    }

    pub fn description(mut self, d: &str) -> Self {
        self.description = d.to_owned();
        self
    }

    pub fn depends(mut self, dep: &str) -> Self {
        self.depends.push(dep.to_owned());
        self
    }

    pub fn pre_depends(mut self, dep: &str) -> Self {
        self.pre_depends.push(dep.to_owned());
        self
    }

    pub fn conflicts(mut self, p: &str) -> Self {
        self.conflicts.push(p.to_owned());
        self
    }

    pub fn breaks(mut self, p: &str) -> Self {
        self.breaks.push(p.to_owned());
        self
    }

    pub fn replaces(mut self, p: &str) -> Self {
        self.replaces.push(p.to_owned());
        self
    }

    pub fn provides(mut self, p: &str) -> Self {
        self.provides.push(p.to_owned());
        self
    }

    /// A regular file (mode 0644).
    pub fn file(self, path: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.file_mode(path, contents, 0o644)
    }

    /// An executable (mode 0755).
    pub fn executable(self, path: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.file_mode(path, contents, 0o755)
    }

    pub fn file_mode(mut self, path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        self.files.retain(|f| f.path != path);
        self.files.push(FileSpec {
            path: path.to_owned(),
            contents: contents.into(),
            mode,
        });
        self
    }

    /// A configuration file that dpkg tracks: a local change to it makes
    /// the next upgrade that also changes it ask (or follow --force-conf*).
    pub fn conffile(self, path: &str, contents: impl Into<Vec<u8>>) -> Self {
        let mut s = self.file(path, contents);
        if !s.conffiles.iter().any(|c| c == path) {
            s.conffiles.push(path.to_owned());
        }
        s
    }

    /// Maintainer script bodies: run by `/bin/sh -e`, `$1` as dpkg passes it.
    pub fn preinst(mut self, body: &str) -> Self {
        self.preinst = Some(body.to_owned());
        self
    }

    pub fn postinst(mut self, body: &str) -> Self {
        self.postinst = Some(body.to_owned());
        self
    }

    pub fn prerm(mut self, body: &str) -> Self {
        self.prerm = Some(body.to_owned());
        self
    }

    pub fn postrm(mut self, body: &str) -> Self {
        self.postrm = Some(body.to_owned());
        self
    }

    pub fn unit(mut self, name: &str, contents: &str) -> Self {
        self.units.retain(|u| u.name != name);
        self.units.push(UnitSpec {
            name: name.to_owned(),
            contents: contents.to_owned(),
        });
        self
    }

    /// Ship a database schema (see [`Schema`]): its migrations become
    /// files of the package, and the postinst migrates if the schema says so.
    pub fn schema(mut self, schema: Schema) -> Self {
        self.schema = Some(schema);
        self
    }

    /// `name_version_arch.deb`, with an epoch's colon escaped as Debian does.
    pub fn file_name(&self) -> String {
        format!(
            "{}_{}_{}.deb",
            self.name,
            self.version.replace(':', "%3a"),
            self.architecture
        )
    }

    /// Check the spec before building.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Spec(format!("package {}: {m}", self.name)));
        if self.name.len() < 2
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
        {
            return bad("invalid package name".into());
        }
        if self.version.is_empty() || !self.version.starts_with(|c: char| c.is_ascii_digit()) {
            return bad(format!("invalid version {:?}", self.version));
        }
        for f in &self.files {
            if !f.path.starts_with('/') || f.path.contains("..") {
                return bad(format!("file path {:?} must be absolute", f.path));
            }
        }
        for c in &self.conffiles {
            if !self.files.iter().any(|f| &f.path == c) {
                return bad(format!("conffile {c} is not among the files"));
            }
        }
        Ok(())
    }

    /// Build the .deb into `out_dir`; returns its path.
    pub fn build(&self, out_dir: &Path) -> Result<PathBuf> {
        self.validate()?;
        let staging = tempfile::Builder::new()
            .prefix("debspec-")
            .tempdir_in(out_dir)
            .ctx("create staging dir in", out_dir)?;
        let root = staging.path().join("pkg");
        let mut files = self.files.clone();
        for u in &self.units {
            files.push(FileSpec {
                path: format!("/lib/systemd/system/{}", u.name),
                contents: u.contents.clone().into_bytes(),
                mode: 0o644,
            });
        }
        if let Some(s) = &self.schema {
            files.extend(s.files(&self.name));
        }
        for f in &files {
            write_mode(
                &root.join(f.path.trim_start_matches('/')),
                &f.contents,
                f.mode,
            )?;
        }
        let debian = root.join("DEBIAN");
        write_mode(&debian.join("control"), self.control().as_bytes(), 0o644)?;
        if !self.conffiles.is_empty() {
            let list = self.conffiles.join("\n") + "\n";
            write_mode(&debian.join("conffiles"), list.as_bytes(), 0o644)?;
        }
        for (name, body) in self.scripts() {
            write_mode(&debian.join(name), body.as_bytes(), 0o755)?;
        }
        let out = out_dir.join(self.file_name());
        cmd::run(
            Command::new("dpkg-deb")
                .args(["--root-owner-group", "-Zgzip", "--build"])
                .arg(&root)
                .arg(&out),
            Duration::from_secs(120),
        )?;
        Ok(out)
    }

    fn control(&self) -> String {
        let mut c = String::new();
        let _ = writeln!(c, "Package: {}", self.name);
        let _ = writeln!(c, "Version: {}", self.version);
        let _ = writeln!(c, "Architecture: {}", self.architecture);
        let _ = writeln!(c, "Maintainer: {}", self.maintainer);
        let installed_kb: usize =
            self.files.iter().map(|f| f.contents.len()).sum::<usize>() / 1024 + 1;
        let _ = writeln!(c, "Installed-Size: {installed_kb}");
        let mut depends = self.depends.clone();
        if self.schema.is_some() {
            depends.push(crate::schema::RUNTIME_PACKAGE.to_owned());
        }
        for (field, list) in [
            ("Pre-Depends", &self.pre_depends),
            ("Depends", &depends),
            ("Conflicts", &self.conflicts),
            ("Breaks", &self.breaks),
            ("Replaces", &self.replaces),
            ("Provides", &self.provides),
        ] {
            if !list.is_empty() {
                let _ = writeln!(c, "{field}: {}", list.join(", "));
            }
        }
        let _ = writeln!(c, "Section: misc\nPriority: optional");
        let _ = writeln!(c, "Description: {}", self.description);
        let _ = writeln!(c, " Built by hoist-testbed from a declarative spec.");
        c
    }

    /// Maintainer scripts: the spec's bodies plus what debhelper would add
    /// for units (enable/restart in postinst, stop in prerm) and the schema.
    fn scripts(&self) -> Vec<(&'static str, String)> {
        let units: Vec<&str> = self.units.iter().map(|u| u.name.as_str()).collect();
        let mut out = Vec::new();
        let wrap = |parts: Vec<String>| -> Option<String> {
            let body: Vec<String> = parts.into_iter().filter(|p| !p.trim().is_empty()).collect();
            (!body.is_empty()).then(|| format!("#!/bin/sh\nset -e\n{}\nexit 0\n", body.join("\n")))
        };
        if let Some(s) = wrap(vec![self.preinst.clone().unwrap_or_default()]) {
            out.push(("preinst", s));
        }
        let mut post = vec![];
        if let Some(s) = &self.schema {
            post.push(s.postinst_snippet(&self.name));
        }
        post.push(self.postinst.clone().unwrap_or_default());
        if !units.is_empty() {
            let names = units.join(" ");
            let restart = if self.no_start {
                String::new()
            } else {
                format!("\n\x20   deb-systemd-invoke restart {names}")
            };
            post.push(format!(
                "if [ \"$1\" = configure ] || [ \"$1\" = abort-upgrade ]; then\n\
                 \x20 for u in {names}; do deb-systemd-helper unmask \"$u\" >/dev/null || true; \
                 deb-systemd-helper enable \"$u\" >/dev/null || true; done\n\
                 \x20 if [ -d /run/systemd/system ]; then\n\
                 \x20   systemctl --system daemon-reload >/dev/null || true{restart}\n\
                 \x20 fi\nfi"
            ));
        }
        if let Some(s) = wrap(post) {
            out.push(("postinst", s));
        }
        let mut prerm = Vec::new();
        if !units.is_empty() {
            prerm.push(format!(
                "if [ -d /run/systemd/system ] && [ \"$1\" = remove ]; then\n\
                 \x20 deb-systemd-invoke stop {} >/dev/null || true\nfi",
                units.join(" ")
            ));
        }
        prerm.push(self.prerm.clone().unwrap_or_default());
        if let Some(s) = wrap(prerm) {
            out.push(("prerm", s));
        }
        let mut postrm = vec![self.postrm.clone().unwrap_or_default()];
        if !units.is_empty() {
            postrm.push(format!(
                "if [ \"$1\" = remove ] && [ -d /run/systemd/system ]; then systemctl --system daemon-reload >/dev/null || true; fi\n\
                 if [ \"$1\" = purge ]; then for u in {}; do deb-systemd-helper purge \"$u\" >/dev/null || true; done; fi",
                units.join(" ")
            ));
        }
        if let Some(s) = wrap(postrm) {
            out.push(("postrm", s));
        }
        out
    }
}

fn write_mode(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).ctx("create", p)?;
    }
    fs::write(path, contents).ctx("write", path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).ctx("chmod", path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_deb_that_dpkg_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = PackageSpec::new("hello-standin", "1.2.3-1")
            .depends("python3")
            .conffile("/etc/hello/hello.conf", "greeting=hi\n")
            .executable("/usr/bin/hello-standin", "#!/bin/sh\necho hi\n")
            .postinst("echo configured")
            .unit(
                "hello.service",
                "[Service]\nExecStart=/usr/bin/hello-standin\n",
            );
        let deb = spec.build(dir.path()).expect("build");
        assert!(deb.ends_with("hello-standin_1.2.3-1_all.deb"));
        let info = cmd::run(
            Command::new("dpkg-deb").arg("--info").arg(&deb),
            Duration::from_secs(30),
        )
        .expect("dpkg-deb --info");
        assert!(
            info.stdout.contains("Package: hello-standin"),
            "{}",
            info.stdout
        );
        assert!(info.stdout.contains("Depends: python3"));
        assert!(info.stdout.contains("postinst"));
        assert!(info.stdout.contains("conffiles"));
        let contents = cmd::run(
            Command::new("dpkg-deb").arg("--contents").arg(&deb),
            Duration::from_secs(30),
        )
        .expect("dpkg-deb --contents");
        assert!(
            contents
                .stdout
                .contains("./lib/systemd/system/hello.service")
        );
        assert!(contents.stdout.contains("rwxr-xr-x root/root"));
    }

    #[test]
    fn rejects_a_conffile_that_is_not_shipped() {
        let mut s = PackageSpec::new("x-pkg", "1.0");
        s.conffiles.push("/etc/missing".into());
        assert!(s.validate().is_err());
        assert!(PackageSpec::new("Bad_Name", "1.0").validate().is_err());
        assert!(PackageSpec::new("ok", "v1").validate().is_err());
    }
}
