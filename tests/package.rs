//! The Debian package `scripts/build-deb` makes, read without installing it:
//! its control fields, owners and modes, the bundled recipes (clean for the
//! packaged hoist), no product's entry point, and the same files as the
//! assets Cargo.toml gives cargo-deb; its manual pages and shell
//! completions, and what lintian says of it.

mod common;
use common::{build_deb, text};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Files the script makes itself, which cargo-deb makes its own way
/// (copyright) or not at all (what the packaged binary writes: the manual
/// pages and the shell completions); a path ending in `/` stands for
/// everything under it.
const GENERATED: &[&str] = &[
    "usr/share/doc/hoist/copyright",
    "usr/share/doc/hoist/changelog.gz",
    "usr/share/man/man8/",
    "usr/share/bash-completion/completions/hoist",
    "usr/share/zsh/vendor-completions/_hoist",
    "usr/share/fish/vendor_completions.d/hoist.fish",
];

fn generated(path: &str) -> bool {
    GENERATED
        .iter()
        .any(|g| path == *g || (g.ends_with('/') && path.starts_with(g)))
}

fn run(c: &mut Command) -> String {
    let o = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(o.status.success(), "{c:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `dpkg-deb -c`: path (without `./`) -> (mode string, owner/group), files only.
fn contents(deb: &Path) -> BTreeMap<String, (String, String)> {
    run(Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .filter(|l| !l.starts_with('d'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let path = f[5].trim_start_matches("./").to_string();
            (path, (f[0].to_string(), f[1].to_string()))
        })
        .collect()
}

/// `*` in one path component.
fn matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

/// The files a source pattern of a cargo-deb asset names, relative to ROOT.
fn expand(pattern: &str) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::new()];
    for component in pattern.split('/') {
        let mut next = Vec::new();
        for dir in &found {
            if !component.contains('*') {
                next.push(dir.join(component));
                continue;
            }
            let Ok(entries) = std::fs::read_dir(Path::new(ROOT).join(dir)) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if matches(component, &name) {
                    next.push(dir.join(name));
                }
            }
        }
        found = next;
    }
    found.retain(|p| Path::new(ROOT).join(p).is_file());
    found
}

/// What cargo-deb would put in the package: path -> mode, by its rules (a
/// glob keeps the path from its first wildcard's directory on; a
/// destination ending in `/` is a directory).
fn cargo_deb_assets() -> BTreeMap<String, u32> {
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap())
            .unwrap();
    let assets = manifest["package"]["metadata"]["deb"]["assets"]
        .as_array()
        .expect("[package.metadata.deb] assets");
    let mut out = BTreeMap::new();
    for a in assets {
        let a: Vec<&str> = a
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let (source, dest, mode) = (a[0], a[1], u32::from_str_radix(a[2], 8).unwrap());
        let files = if source == "target/release/hoist" {
            vec![PathBuf::from(source)]
        } else {
            expand(source)
        };
        assert!(!files.is_empty(), "the asset {source} names no file");
        let components: Vec<&str> = source.split('/').collect();
        let skip = if !source.contains('*') {
            None
        } else if components[components.len() - 1].contains('*') {
            Some(
                components[..components.len() - 1]
                    .iter()
                    .position(|c| c.contains('*'))
                    .unwrap_or(components.len() - 1),
            )
        } else {
            Some(components.len() - 1)
        };
        for f in files {
            let target = match skip {
                Some(skip) => Path::new(dest).join(f.iter().skip(skip).collect::<PathBuf>()),
                None if dest.ends_with('/') => Path::new(dest).join(f.file_name().unwrap()),
                None => PathBuf::from(dest),
            };
            out.insert(target.display().to_string(), mode);
        }
    }
    out
}

fn mode_bits(ls: &str) -> u32 {
    ls[1..]
        .chars()
        .zip([0o400, 0o200, 0o100, 0o40, 0o20, 0o10, 0o4, 0o2, 0o1])
        .filter(|(c, _)| *c != '-')
        .map(|(_, b)| b)
        .sum()
}

/// The package of this build, in a directory of the test's own (`name`):
/// (the directory, the package).
fn package(name: &str) -> (PathBuf, PathBuf) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let deb = build_deb(&dir);
    (dir, deb)
}

#[test]
fn the_package_holds_hoist_its_recipes_and_docs_as_cargo_deb_would() {
    let (dir, deb) = package("package");
    let arch = run(Command::new("dpkg").arg("--print-architecture"));
    assert_eq!(
        deb.file_name().unwrap().to_string_lossy(),
        format!("hoist_{}_{}.deb", env!("CARGO_PKG_VERSION"), arch.trim())
    );

    // Control fields, from Cargo.toml.
    let field = |name: &str| {
        run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg(name))
            .trim()
            .to_string()
    };
    assert_eq!(field("Package"), "hoist");
    assert_eq!(field("Version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(field("Architecture"), arch.trim());
    assert!(
        field("Depends").starts_with("libc6 (>= 2."),
        "{}",
        field("Depends")
    );
    assert!(field("Recommends").contains("iptables | nftables"));
    assert!(field("Maintainer").contains('@'));
    assert!(field("Description").starts_with(env!("CARGO_PKG_DESCRIPTION")));

    // Owners and modes.
    let files = contents(&deb);
    for (path, (mode, owner)) in &files {
        assert_eq!(owner, "root/root", "{path}");
        assert!(
            !mode.contains('w') || mode.starts_with("-rw-r--r--") || mode.starts_with("-rwxr-xr-x"),
            "{path} {mode}"
        );
    }
    assert_eq!(files["usr/bin/hoist"].0, "-rwxr-xr-x");
    // Every recipe; no product's own command (a product's package ships it).
    for e in std::fs::read_dir(Path::new(ROOT).join("recipes"))
        .unwrap()
        .flatten()
    {
        let product = e.file_name().to_string_lossy().into_owned();
        assert!(
            files.contains_key(&format!("usr/share/hoist/recipes/{product}/recipe.toml")),
            "{product}"
        );
    }
    assert!(!files.keys().any(|p| p.ends_with("-upgrade")), "{files:?}");

    // The packaged hoist finds nothing wrong in the packaged recipes.
    let tree = dir.join("tree");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree));
    let recipes: Vec<PathBuf> = std::fs::read_dir(tree.join("usr/share/hoist/recipes"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let mut lint = Command::new(tree.join("usr/bin/hoist"));
    common::clean_env(&mut lint).arg("lint").args(&recipes);
    let said = run(&mut lint);
    assert!(
        said.contains(&format!("{} recipe(s): 0 error(s)", recipes.len())),
        "{said}"
    );

    // cargo-deb's assets are the same files with the same modes.
    let assets = cargo_deb_assets();
    let built: BTreeMap<String, u32> = files
        .iter()
        .filter(|(p, _)| !generated(p))
        .map(|(p, (mode, _))| (p.clone(), mode_bits(mode)))
        .collect();
    assert_eq!(
        built, assets,
        "scripts/build-deb and [package.metadata.deb] assets differ"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A gzipped file of the package, as text.
fn gunzip(path: &Path) -> String {
    run(Command::new("gzip").arg("-dc").arg(path))
}

#[test]
fn the_package_has_manual_pages_and_completions_and_lintian_finds_no_fault() {
    let (dir, deb) = package("package-man");
    let files = contents(&deb);
    let tree = dir.join("tree");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree));

    // A page per command the binary shows, hoist(8) first among them.
    let pages = dir.join("pages");
    std::fs::create_dir_all(&pages).unwrap();
    let mut man = Command::new(tree.join("usr/bin/hoist"));
    common::clean_env(&mut man).arg("man").arg(&pages);
    let written: Vec<String> = run(&mut man).lines().map(String::from).collect();
    for page in [
        "hoist.8",
        "hoist-upgrade.8",
        "hoist-fleet.8",
        "hoist-fleet-upgrade.8",
        "hoist-completions.8",
    ] {
        assert!(
            written.iter().any(|w| w == page),
            "{page} not in {written:?}"
        );
    }
    assert!(
        !written.iter().any(|w| w.contains("fleet-action")
            || w.contains("demo-internal")
            || w == "hoist-man.8"),
        "{written:?}"
    );
    let packaged: Vec<&String> = files
        .keys()
        .filter(|p| p.starts_with("usr/share/man/"))
        .collect();
    assert_eq!(
        packaged,
        written
            .iter()
            .map(|w| format!("usr/share/man/man8/{w}.gz"))
            .collect::<std::collections::BTreeSet<_>>()
            .iter()
            .collect::<Vec<_>>(),
    );
    let top = gunzip(&tree.join("usr/share/man/man8/hoist.8.gz"));
    for part in [
        ".TH hoist 8",
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH \"EXIT STATUS\"",
        ".SH ENVIRONMENT",
        ".SH FILES",
        ".SH EXAMPLES",
        ".SH \"SEE ALSO\"",
        "HOIST_STATE_DIR",
        "HOIST_RECIPE",
        "NO_COLOR",
        "/var/lib/hoist/journal.db",
        "/usr/share/hoist/recipes/product/",
        "hoist\\-fleet",
    ] {
        assert!(top.contains(part), "hoist.8 lacks {part}:\n{top}");
    }
    // Every exit code of `sys::exit`.
    for code in ["0", "1", "2", "3", "141"] {
        assert!(
            top.contains(&format!(".TP\n\\fB{code}\\fR\n")),
            "exit {code}:\n{top}"
        );
    }
    let upgrade = gunzip(&tree.join("usr/share/man/man8/hoist-upgrade.8.gz"));
    assert!(
        upgrade.contains(".SH \"EXIT STATUS\"") && upgrade.contains("\\-\\-confirm"),
        "{upgrade}"
    );
    assert!(
        upgrade.contains("hoist upgrade \\-r"),
        "its own example:\n{upgrade}"
    );

    // The completions, where each shell looks for them, for hoist's commands.
    let bash = tree.join("usr/share/bash-completion/completions/hoist");
    let zsh =
        std::fs::read_to_string(tree.join("usr/share/zsh/vendor-completions/_hoist")).unwrap();
    let fish = std::fs::read_to_string(tree.join("usr/share/fish/vendor_completions.d/hoist.fish"))
        .unwrap();
    run(Command::new("bash").arg("-n").arg(&bash));
    let bash = std::fs::read_to_string(&bash).unwrap();
    assert!(
        bash.contains("complete -F _hoist") && bash.contains("rollback"),
        "{bash}"
    );
    assert!(
        zsh.starts_with("#compdef hoist") && zsh.contains("rollback"),
        "{zsh}"
    );
    assert!(
        fish.contains("complete -c hoist") && fish.contains("rollback"),
        "{fish}"
    );
    for script in [&bash, &zsh, &fish] {
        assert!(!script.contains("fleet-action") && !script.contains("demo-internal"));
    }

    // lintian, where it is installed (scripts/apt-packages.txt lists it):
    // no error, no warning; what it says that is meant is overridden in
    // packaging/hoist.lintian-overrides, each with its reason.
    if Command::new("lintian").arg("--version").output().is_ok() {
        let o = Command::new("lintian").arg(&deb).output().unwrap();
        let said = String::from_utf8_lossy(&o.stdout);
        let faults: Vec<&str> = said
            .lines()
            .filter(|l| l.starts_with("E: ") || l.starts_with("W: "))
            .collect();
        assert!(faults.is_empty(), "lintian:\n{said}");
        // Its exit status too: a lintian that could not read the package
        // says nothing on stdout.
        assert!(o.status.success(), "lintian: {}", text(&o));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
