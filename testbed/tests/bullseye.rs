//! Acceptance: a bullseye host boots, and once its sources are switched to
//! the bookworm suite of the local repository (an OS mirror made from the
//! bookworm image's packages), apt sees bookworm's versions and can plan
//! the major upgrade without reaching Debian's mirror.

use hoist_testbed::{AptRepo, Image, ImageSpec, Suite, Testbed, leftovers, runtime_package};

#[test]
fn bullseye_host_boots_and_sees_bookworm_when_switched() -> hoist_testbed::Result<()> {
    let bookworm = Image::ensure(&ImageSpec::new(Suite::Bookworm))?;
    let mut repo = AptRepo::new()?;
    let suite = repo.add_os_mirror(&bookworm)?;
    assert_eq!(suite, "bookworm");
    repo.add("bookworm", &runtime_package())?;
    repo.publish()?;
    let tb = Testbed::builder()
        .host("old", Suite::Bullseye)
        .repo(&repo)
        .start()?;
    let run_id = tb.run_id().to_owned();
    let old = tb.host("old")?;

    let out = old.exec(". /etc/os-release; echo $VERSION_CODENAME; ps -p 1 -o comm=")?;
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["bullseye", "systemd"]
    );
    let state = old.wait_ready(hoist_testbed::BOOT_TIMEOUT)?;
    assert_eq!(state, "running", "services of a fresh bullseye host");

    old.use_suites(&["bookworm"])?;
    old.exec("apt-get update -q")?;
    let policy = old.exec("apt-cache policy systemd")?.stdout;
    let candidate = policy
        .lines()
        .find_map(|l| l.trim().strip_prefix("Candidate: "))
        .unwrap_or_default()
        .to_owned();
    assert!(
        candidate.starts_with("252."),
        "bookworm's systemd: {policy}"
    );
    assert!(
        policy.contains("file:/srv/hoist-repo bookworm/main"),
        "{policy}"
    );
    // The whole major upgrade resolves from the local mirror alone.
    let sim = old.exec("apt-get -s -q dist-upgrade")?.stdout;
    assert!(sim.contains("Inst libc6 "), "{sim}");
    assert!(sim.contains("Inst systemd "), "{sim}");
    assert!(!sim.contains("E: "), "{sim}");

    tb.teardown()?;
    let left = leftovers::of_run(&run_id);
    assert!(left.is_empty(), "left behind: {left:#?}");
    Ok(())
}
