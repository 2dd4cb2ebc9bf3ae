//! A reboot in the middle of a run, on a booted Debian test host: the run
//! goes on by itself after boot (a one-shot systemd unit runs `hoist
//! resume`), the steps after the reboot run in the new boot, and the unit,
//! its marker and the login banner are gone at the end.

mod common;
use common::{install_hoist, sh};

use std::time::{Duration, Instant};

use hoist_testbed::{AptRepo, Suite, Testbed};

const RECIPE: &str = r#"[product]
name = "walt-server"
version = { file = "/root/VERSION" }

[[paths]]
id = "main"
from = "4.*"
to = "5.0"

[[steps]]
id = "before"
phase = "pre"
exec = { shell = "cat /proc/sys/kernel/random/boot_id > /root/boot-before" }
undo = "none"
undo_reason = "it only records what it saw"

[[steps]]
id = "install"
phase = "install"
exec = { shell = "echo 5.0 > /root/VERSION" }
undo = { exec = { shell = "echo 4.0 > /root/VERSION" } }

[[steps]]
id = "reboot"
phase = "configure"
reboot = { reason = "mandatory: otherwise walt server will fail to mount images" }

[[steps]]
id = "after"
phase = "start"
exec = { shell = "cat /proc/sys/kernel/random/boot_id > /root/boot-after" }
undo = "none"
undo_reason = "it only records what it saw"
"#;

#[test]
fn a_run_continues_by_itself_after_its_reboot() -> hoist_testbed::Result<()> {
    let repo = AptRepo::new()?;
    repo.publish()?;
    let tb = Testbed::builder()
        .host("r", Suite::Bookworm)
        .repo(&repo)
        .start()?;
    let h = tb.host("r")?;
    install_hoist(&h, RECIPE)?;
    h.write_file("/root/VERSION", b"4.0\n", 0o644)?;
    let boots = h.boots();
    // Detached, as an admin's session would be cut by the reboot.
    sh(
        &h,
        "setsid nohup hoist upgrade --yes -r /root/recipe.toml > /root/upgrade.out 2>&1 < /dev/null &",
    );
    h.wait_for_boot(boots, Duration::from_secs(180))?;
    h.wait_ssh(Duration::from_secs(60))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        let s = h.exec_unchecked("hoist --json status")?.stdout;
        if s.contains("\"state\": \"committed\"") || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        status.contains("\"state\": \"committed\""),
        "{status}\n{}",
        sh(
            &h,
            "journalctl -u hoist-resume --no-pager | tail -20; cat /root/upgrade.out"
        )
    );
    let before = sh(&h, "cat /root/boot-before");
    let after = sh(&h, "cat /root/boot-after");
    assert_ne!(
        before, after,
        "the steps after the reboot ran in the new boot"
    );
    assert_eq!(sh(&h, "cat /root/VERSION"), "5.0\n");
    assert!(sh(&h, "cat /root/upgrade.out").contains("resumes by itself at boot"));
    // Nothing is left to resume again, and nobody is told an upgrade runs.
    assert_eq!(
        sh(
            &h,
            "ls /etc/systemd/system/hoist-resume.service /var/lib/hoist/reboot-pending.json /etc/motd.d/hoist 2>/dev/null || true"
        ),
        ""
    );
    assert!(status.contains("\"kind\": \"probe\""), "{status}");
    tb.teardown()?;
    Ok(())
}
