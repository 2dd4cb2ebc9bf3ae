//! Acceptance: apt on a host refuses a tampered package, a tampered index
//! and a tampered signed Release, and says why.

use std::fs;

use hoist_testbed::{AptRepo, PackageSpec, Suite, Testbed, leftovers, runtime_package};

fn flip_byte_in_middle(path: &std::path::Path) {
    let mut bytes = fs::read(path).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    // Same size: only the hash check can catch it.
    fs::write(path, bytes).expect("write");
}

#[test]
fn apt_refuses_tampered_package_index_and_release() -> hoist_testbed::Result<()> {
    let pkg = PackageSpec::new("tamper-standin", "1.0")
        .file("/usr/share/tamper-standin/data", "x".repeat(4096));
    let mut repo = AptRepo::new()?;
    for suite in ["good", "badpkg", "badindex", "badrelease"] {
        repo.add(suite, &runtime_package())?;
        repo.add(suite, &pkg)?;
    }
    repo.publish()?;
    // Break one thing per suite, after signing, like a hostile mirror.
    flip_byte_in_middle(&repo.deb_path("badpkg", &pkg));
    let index = repo.packages_index("badindex");
    let text = fs::read_to_string(&index).expect("read Packages");
    fs::write(&index, text.replace("Version: 1.0", "Version: 9.0")).expect("write Packages");
    let inrelease = repo.root().join("dists/badrelease/InRelease");
    let text = fs::read_to_string(&inrelease).expect("read InRelease");
    fs::write(
        &inrelease,
        text.replacen("Suite: badrelease", "Suite: badreleasf", 1),
    )
    .expect("write InRelease");

    let tb = Testbed::builder()
        .host("h", Suite::Bookworm)
        .repo(&repo)
        .start()?;
    let run_id = tb.run_id().to_owned();
    let h = tb.host("h")?;

    // Control: the same package from the intact suite installs.
    h.use_suites(&["good"])?;
    h.exec("apt-get update -q && apt-get install -q -y tamper-standin && apt-get remove -q -y tamper-standin && apt-get clean")?;

    h.use_suites(&["badpkg"])?;
    h.exec("apt-get update -q")?;
    let out = h.exec_unchecked("apt-get install -q -y tamper-standin")?;
    assert!(!out.success(), "tampered package installed: {}", out.stdout);
    assert!(out.stderr.contains("Hash Sum mismatch"), "{}", out.stderr);
    assert!(h.exec_unchecked("dpkg -s tamper-standin")?.code() != Some(0));

    h.use_suites(&["badindex"])?;
    let out = h.exec_unchecked("apt-get update -q")?;
    assert!(!out.success(), "tampered index accepted: {}", out.stdout);
    assert!(
        out.stderr.contains("Hash Sum mismatch") || out.stderr.contains("unexpected size"),
        "{}",
        out.stderr
    );
    assert!(
        !h.exec("apt-cache policy tamper-standin")?
            .stdout
            .contains("9.0")
    );

    h.use_suites(&["badrelease"])?;
    let out = h.exec_unchecked("apt-get update -q")?;
    assert!(!out.success(), "tampered Release accepted: {}", out.stdout);
    assert!(
        out.stderr.contains("BADSIG") || out.stderr.contains("signatures were invalid"),
        "{}",
        out.stderr
    );

    tb.teardown()?;
    let left = leftovers::of_run(&run_id);
    assert!(left.is_empty(), "left behind: {left:#?}");
    Ok(())
}
