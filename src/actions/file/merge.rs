//! `merge_new`: the package's new version of a config file (`.rpmnew`,
//! `.dpkg-dist`, ...) merged three-way into the admin's file.
//!
//! Seed 003 has the admin do this by hand for components.xml ("mv to
//! -backup, cp -ap the .rpmnew, merge your changes in vi") and for
//! log4j-cloud.xml (`mv log4j-cloud.xml.dpkg-dist log4j-cloud.xml`, which
//! loses the admin's changes). A 3-way merge keeps both sides, given the
//! file both started from: the old package's pristine copy.
//!
//! Where that base comes from: dpkg keeps no pristine copy of a conffile
//! (only its MD5 in the status file), so it is taken from the old package's
//! `.deb` still in apt's cache, or from a `base` the step names (a file, or
//! a `.deb` to take it from). Without either there is no base, and the step
//! stops saying so rather than guess.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::version::Version;

/// What package managers leave beside a locally changed config file.
pub const SUFFIXES: &[&str] = &[".rpmnew", ".dpkg-dist", ".dpkg-new", ".ucf-dist"];

/// apt's cache of downloaded packages.
pub const APT_ARCHIVES: &str = "/var/cache/apt/archives";

const TOOL_TIMEOUT: Duration = Duration::from_secs(600);

/// The packaged new versions of `path` present now.
pub fn new_files(path: &Path) -> Vec<PathBuf> {
    SUFFIXES
        .iter()
        .map(|s| {
            let mut p = path.as_os_str().to_owned();
            p.push(s);
            PathBuf::from(p)
        })
        .filter(|p| p.exists())
        .collect()
}

/// The pristine old copy of `path`, and where it came from.
pub struct Base {
    pub text: String,
    pub from: String,
}

/// Finds the base: the step's `base` (a file, or a `.deb` holding `path`),
/// else the newest `.deb` of the package owning `path` in `archives` that
/// is older than the installed version. `scratch` receives the extracted
/// copy.
pub fn find_base(
    path: &Path,
    given: Option<&Path>,
    package: Option<&str>,
    archives: &Path,
    scratch: &Path,
) -> Result<Base, String> {
    if let Some(b) = given {
        let is_deb = b.extension().is_some_and(|e| e == "deb");
        let text = if is_deb {
            extract(b, path, scratch)?
        } else {
            std::fs::read(b).map_err(|e| format!("base {}: {e}", b.display()))?
        };
        return Ok(Base {
            text: text_of(b, text)?,
            from: b.display().to_string(),
        });
    }
    let package = match package {
        Some(p) => p.to_string(),
        None => owner(path)?,
    };
    let installed = installed_version(&package)?;
    let Some(deb) = older_deb(archives, &package, &installed) else {
        return Err(format!(
            "no base for a 3-way merge of {}: dpkg keeps no pristine copy of a config file, \
             {} holds no .deb of {package} older than the installed {installed}, and the step \
             names no `base` (a file or an old .deb)",
            path.display(),
            archives.display()
        ));
    };
    let text = extract(&deb, path, scratch)?;
    Ok(Base {
        text: text_of(&deb, text)?,
        from: deb.display().to_string(),
    })
}

fn text_of(from: &Path, bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", from.display()))
}

/// The package that ships `path` (`dpkg-query -S`; diversions aside).
fn owner(path: &Path) -> Result<String, String> {
    let shown = path.display().to_string();
    let out = crate::sys::process::run(
        std::process::Command::new("dpkg-query").arg("-S").arg(path),
        TOOL_TIMEOUT,
    )
    .map_err(|e| format!("no base for a 3-way merge of {shown}: cannot run dpkg-query: {e}"))?;
    out.stdout
        .lines()
        .filter(|l| !l.starts_with("diversion "))
        .find_map(|l| l.strip_suffix(&format!(": {shown}")))
        .and_then(|pkgs| pkgs.split(", ").next())
        .map(|p| p.split(':').next().unwrap_or(p).to_string())
        .ok_or_else(|| {
            format!(
                "no base for a 3-way merge of {shown}: no installed package ships it \
                 (dpkg-query -S), and the step names no `base` or `package`"
            )
        })
}

fn installed_version(package: &str) -> Result<String, String> {
    crate::sys::pkgdb::installed_version(package).ok_or_else(|| {
        format!("{package} is not installed: no older version to take a merge base from")
    })
}

/// The version in an apt cache file name (`name_version_arch.deb`, the
/// epoch's `:` written `%3a`), when the file is one of `package`.
pub fn deb_version(file_name: &str, package: &str) -> Option<String> {
    let rest = file_name.strip_prefix(package)?.strip_prefix('_')?;
    let rest = rest.strip_suffix(".deb")?;
    let (version, _arch) = rest.rsplit_once('_')?;
    Some(version.replace("%3a", ":").replace("%3A", ":"))
}

/// The newest `.deb` of `package` in `dir` older than `installed`.
pub fn older_deb(dir: &Path, package: &str, installed: &str) -> Option<PathBuf> {
    let installed = Version::parse(installed).ok()?;
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let v = Version::parse(&deb_version(&name, package)?).ok()?;
            (v < installed).then(|| (v, e.path()))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, p)| p)
}

/// `path` as shipped in `deb` (`dpkg-deb --fsys-tarfile | tar -xO`),
/// through a file in `scratch` so a large file is not held in a pipe.
fn extract(deb: &Path, path: &Path, scratch: &Path) -> Result<Vec<u8>, String> {
    let _ = crate::sys::fsutil::private_dir(scratch);
    let out_file = scratch.join("base");
    let member = path.to_string_lossy().trim_start_matches('/').to_string();
    // Packages list members as `./etc/x`; some old ones as `etc/x`.
    for name in [format!("./{member}"), member.clone()] {
        let out = crate::sys::process::run(
            std::process::Command::new("bash")
                .arg("-c")
                .arg(r#"set -o pipefail; dpkg-deb --fsys-tarfile "$1" | tar -xOf - "$2" > "$3""#)
                .arg("bash")
                .arg(deb)
                .arg(&name)
                .arg(&out_file),
            TOOL_TIMEOUT,
        )
        .map_err(|e| format!("cannot run dpkg-deb: {e}"))?;
        if out.success() {
            return std::fs::read(&out_file)
                .map_err(|e| format!("cannot read {}: {e}", out_file.display()));
        }
    }
    let _ = std::fs::remove_file(&out_file);
    Err(format!(
        "no base for a 3-way merge of {}: {} does not hold it",
        path.display(),
        deb.display()
    ))
}

/// The 3-way merge of `theirs` (the packaged new file) into `ours` (the
/// live file), from `base`. `Err` holds the conflicted text, its markers
/// naming the three files.
pub fn merge(base: &str, ours: &str, theirs: &str, names: [&str; 3]) -> Result<String, String> {
    if ours == theirs {
        return Ok(ours.to_string());
    }
    diffy::merge(base, ours, theirs).map_err(|conflicted| {
        let [ours_name, base_name, theirs_name] = names;
        conflicted
            .split_inclusive('\n')
            .map(|l| {
                let (body, nl) = l.strip_suffix('\n').map_or((l, ""), |b| (b, "\n"));
                match body {
                    "<<<<<<< ours" => format!("<<<<<<< {ours_name}{nl}"),
                    "||||||| original" => format!("||||||| {base_name}{nl}"),
                    ">>>>>>> theirs" => format!(">>>>>>> {theirs_name}{nl}"),
                    _ => l.to_string(),
                }
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "a\nb\nc\nd\ne\nf\ng\n";

    #[test]
    fn clean_merge_keeps_both_changes() {
        let ours = "a\nB-local\nc\nd\ne\nf\ng\n";
        let theirs = "a\nb\nc\nd\ne\nf\ng-upstream\nh-new\n";
        let m = merge(BASE, ours, theirs, ["live", "base", "new"]).unwrap();
        assert_eq!(m, "a\nB-local\nc\nd\ne\nf\ng-upstream\nh-new\n");
    }

    #[test]
    fn conflict_names_the_files() {
        let ours = "a\nb-local\nc\nd\ne\nf\ng\n";
        let theirs = "a\nb-upstream\nc\nd\ne\nf\ng\n";
        let c = merge(
            BASE,
            ours,
            theirs,
            ["/etc/x", "old.deb", "/etc/x.dpkg-dist"],
        )
        .unwrap_err();
        assert!(c.contains("<<<<<<< /etc/x\nb-local\n"), "{c}");
        assert!(c.contains("||||||| old.deb\nb\n"), "{c}");
        assert!(c.contains(">>>>>>> /etc/x.dpkg-dist\n"), "{c}");
    }

    #[test]
    fn apt_cache_names() {
        assert_eq!(
            deb_version("cloudstack-agent_4.2.1_all.deb", "cloudstack-agent").as_deref(),
            Some("4.2.1")
        );
        assert_eq!(
            deb_version("foo_1%3a2.0-1_amd64.deb", "foo").as_deref(),
            Some("1:2.0-1")
        );
        assert_eq!(deb_version("foo-bar_1.0_all.deb", "foo"), None);
        assert_eq!(deb_version("foo_1.0_all.deb.part", "foo"), None);
    }

    #[test]
    fn older_deb_is_the_newest_below_the_installed_one() {
        let d = std::env::temp_dir().join(format!("hoist-file-debs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for n in [
            "foo_1.0-1_all.deb",
            "foo_1.2-1_all.deb",
            "foo_2.0-1_all.deb",
            "foo-doc_1.9_all.deb",
        ] {
            std::fs::write(d.join(n), b"").unwrap();
        }
        assert_eq!(
            older_deb(&d, "foo", "2.0-1"),
            Some(d.join("foo_1.2-1_all.deb"))
        );
        assert_eq!(older_deb(&d, "foo", "1.0-1"), None);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn new_files_by_suffix() {
        let d = std::env::temp_dir().join(format!("hoist-file-new-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("x.conf");
        assert!(new_files(&f).is_empty());
        std::fs::write(d.join("x.conf.dpkg-dist"), b"").unwrap();
        assert_eq!(new_files(&f), vec![d.join("x.conf.dpkg-dist")]);
        let _ = std::fs::remove_dir_all(&d);
    }
}
