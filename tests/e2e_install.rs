//! hoist's Debian package on a booted Debian test host: `dpkg -i` installs
//! hoist and the bundled recipes, which it finds clean; a product's own
//! command, a symlink `/usr/bin/xivo-upgrade -> hoist` as the product's
//! package would ship it, upgrades with the bundled recipe; `dpkg -r`
//! takes everything the package brought away again.

mod common;
use common::{hoist_deb, sh};

use hoist_testbed::{AptRepo, Mirror, PackageSpec, Suite, Testbed};

/// A product named like XiVO, enough for the bundled recipe: its version is
/// the package `xivo`'s.
fn xivo(version: &str) -> PackageSpec {
    PackageSpec::new("xivo", version).file("/usr/share/xivo/XIVO-VERSION", format!("{version}\n"))
}

#[test]
fn the_package_installs_hoist_and_its_recipes_and_removes_them() -> hoist_testbed::Result<()> {
    let mut repo = AptRepo::new()?;
    repo.add("x-1.2.2", &xivo("1.2.2"))?;
    repo.add("x-1.2.4", &xivo("1.2.4"))?;
    // 1.2.4 signed with the vendor's new key only, as XiVO's archive is
    // after its key change (seed 000): the bundled recipe trusts it first.
    repo.sign_suite_with("x-1.2.4", "xivo_current")?;
    repo.publish()?;
    let tb = Testbed::builder()
        .host("i", Suite::Bookworm)
        .repo(&repo)
        .start()?;
    let key = repo.root().join("keys/xivo_current.gpg");
    // Declared after the testbed, so dropped before it (its address is the
    // testbed's LAN).
    let mirror = Mirror::start(
        &repo.root(),
        tb.runner_addr().expect("a LAN"),
        80,
        &[("/xivo_current.key", key.as_path())],
    )?;
    let h = tb.host("i")?;
    mirror.alias_on(&h, "mirror.xivo.fr")?;
    assert!(sh(&h, "command -v dpkg-deb").contains("/usr/bin/dpkg-deb"));

    // dpkg -i, as an admin would.
    h.write_file("/root/hoist.deb", hoist_deb(), 0o644)?;
    let out = h.exec_unchecked("dpkg -i /root/hoist.deb")?;
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    assert!(sh(&h, "dpkg-query -W -f '${db:Status-Abbrev}' hoist").starts_with("ii"));
    assert_eq!(sh(&h, "command -v hoist").trim(), "/usr/bin/hoist");
    assert_eq!(
        sh(&h, "hoist --version").trim(),
        concat!("hoist ", env!("CARGO_PKG_VERSION"))
    );
    let listed = sh(&h, "dpkg -L hoist");
    for f in [
        "/usr/bin/hoist",
        "/usr/share/hoist/recipes/xivo/recipe.toml",
        "/usr/share/hoist/recipes/cloudstack/recipe.toml",
        "/usr/share/hoist/recipes/walt/recipe.toml",
        "/usr/share/doc/hoist/copyright",
    ] {
        assert!(listed.lines().any(|l| l == f), "{f} not in:\n{listed}");
    }
    // The product's command belongs to the product's package.
    assert!(!listed.lines().any(|l| l.ends_with("-upgrade")), "{listed}");
    let lint = h.exec_unchecked("hoist lint /usr/share/hoist/recipes/xivo")?;
    assert_eq!(
        lint.status.code(),
        Some(0),
        "{}{}",
        lint.stdout,
        lint.stderr
    );
    assert!(
        lint.stdout
            .contains("1 recipe(s): 0 error(s), 0 warning(s)"),
        "{}",
        lint.stdout
    );

    // The product's command: a symlink to hoist picks the bundled recipe.
    h.use_mirror("xivo", "http://mirror.xivo.fr/", &["x-1.2.2"])?;
    sh(&h, "apt-get update -q && apt-get install -q -y xivo");
    sh(
        &h,
        "mkdir -p /var/lib/xivo && touch /var/lib/xivo/configured",
    );
    // 1.2.4 is published, signed with the new key: hoist reads the
    // candidate through that key, and -d trusts it before refreshing.
    h.use_mirror("xivo", "http://mirror.xivo.fr/", &["x-1.2.4"])?;
    sh(&h, "ln -s hoist /usr/bin/xivo-upgrade");
    // No terminal and no -f: it does not guess.
    let out = h.exec_unchecked("xivo-upgrade < /dev/null")?;
    assert_eq!(out.status.code(), Some(2), "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("(-f)"), "{}", out.stderr);
    // -d: the bundled recipe's prepare steps, nothing installed.
    let out = h.exec_unchecked("NO_COLOR=1 xivo-upgrade -d < /dev/null")?;
    let said = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("current version: 1.2.2\nnew version: 1.2.4"),
        "{said}"
    );
    let log = sh(&h, "cat /var/lib/hoist/runs/1.log");
    assert!(
        log.contains("download only mode") && log.contains("xivo"),
        "{log}"
    );
    assert!(sh(&h, "dpkg-query -W -f '${Version}' xivo").starts_with("1.2.2"));
    let history = sh(&h, "hoist --json history");
    assert!(
        history.contains("\"product\": \"xivo\"") && history.contains("\"to\": \"1.2.4\""),
        "{history}"
    );

    // dpkg -r: nothing of the package left (the state directory, with its
    // journal and database backups, is the admin's).
    sh(&h, "rm /usr/bin/xivo-upgrade");
    let out = h.exec_unchecked("dpkg -r hoist")?;
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    assert!(
        !sh(
            &h,
            "dpkg-query -W -f '${db:Status-Abbrev}' hoist 2>/dev/null || true"
        )
        .starts_with("ii")
    );
    assert_eq!(
        sh(
            &h,
            "ls -d /usr/bin/hoist /usr/share/hoist /usr/share/doc/hoist /usr/share/man/man8/hoist.8.gz /usr/share/bash-completion/completions/hoist 2>/dev/null || true"
        ),
        ""
    );
    assert!(sh(&h, "dpkg --audit").trim().is_empty());
    tb.teardown()?;
    Ok(())
}
