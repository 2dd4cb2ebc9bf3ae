//! `reboot`: restart the host and carry on after boot (seed 004: "Now, we
//! must reboot the server. Note: this is mandatory").
//!
//! Before rebooting: a one-shot systemd unit that runs `hoist resume` at
//! boot, a marker in the state directory naming the run, the step and the
//! boot it was made in, and a login banner (`/etc/motd.d/hoist`) saying an
//! upgrade is in progress and where to look; all written and fsynced. Then
//! `systemctl reboot`: the shutdown's SIGTERM ends hoist with the step still
//! journaled `running`. At boot the unit resumes the run; the step's probe
//! sees a new boot, so it is done, and the unit is disabled. The banner goes
//! when the run ends, however it ends.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Kind;
use crate::actions::ctx::Ctx;
use crate::output::diag::Problem;
use crate::recipe::duration;
use crate::sys::fsutil::write_atomic;

pub const UNIT: &str = "hoist-resume.service";
const UNIT_DIR: &str = "/etc/systemd/system";
pub const BANNER: &str = "/etc/motd.d/hoist";

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Reboot {
    /// Why, shown in the plan and to logged-in users.
    pub reason: String,
    /// How long the host may take to go down before the step fails.
    #[serde(with = "duration", default = "default_back_within")]
    pub back_within: Duration,
}

fn default_back_within() -> Duration {
    Duration::from_secs(15 * 60)
}

#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    run: i64,
    step: PathBuf,
    boot_id: String,
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn marker_path(state_dir: &Path) -> PathBuf {
    state_dir.join("reboot-pending.json")
}

/// The unit that resumes the run at boot, only while the marker exists.
fn unit_text(hoist: &Path, state_dir: &Path) -> String {
    format!(
        "# Written by hoist: resumes the upgrade its reboot interrupted.\n\
         [Unit]\n\
         Description=Resume the hoist upgrade after its reboot\n\
         After=local-fs.target network-online.target\n\
         Wants=network-online.target\n\
         ConditionPathExists={marker}\n\n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={hoist} --state-dir {state} resume\n\
         StandardOutput=journal+console\n\
         TimeoutStartSec=infinity\n\n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        marker = marker_path(state_dir).display(),
        hoist = hoist.display(),
        state = state_dir.display(),
    )
}

/// Says at login that an upgrade is in progress, and where to look.
pub fn banner_text(product: &str, run: i64, state_dir: &Path) -> String {
    format!(
        "*** An upgrade of {product} is in progress (hoist run {run}). ***\n\
         It resumes by itself after the reboot. Where it stands:\n\
         \x20   hoist --state-dir {} status\n",
        state_dir.display()
    )
}

/// Removes the banner (at the end of a run, however it ended).
pub fn clear_banner() {
    let _ = std::fs::remove_file(BANNER);
}

fn disable_unit(ctx: &Ctx<'_>) {
    let unit = Path::new(UNIT_DIR).join(UNIT);
    if unit.exists() {
        let mut c = std::process::Command::new("systemctl");
        c.args(["disable", UNIT]);
        let _ = ctx.run(c, "systemctl disable hoist-resume", Duration::from_secs(60));
        let _ = std::fs::remove_file(&unit);
    }
    let _ = std::fs::remove_file(marker_path(ctx.state_dir()));
}

impl Kind for Reboot {
    const NAME: &'static str = "reboot";

    fn summary(&self) -> String {
        format!("reboot the host: {}", self.reason)
    }

    fn default_timeout(&self) -> Duration {
        self.back_within + Duration::from_secs(120)
    }

    fn undo_kinds(&self) -> &'static [&'static str] {
        &[]
    }

    fn reboots(&self) -> bool {
        true
    }

    fn disruptive(&self) -> bool {
        true
    }

    fn validate(&self, _span: &Range<usize>, _problems: &mut Vec<Problem>) {}

    fn executable(&self) -> bool {
        true
    }

    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let state_dir = ctx.state_dir().to_path_buf();
        let hoist = std::env::current_exe().map_err(|e| format!("where is hoist? {e}"))?;
        let marker = Marker {
            run: ctx.run,
            step: ctx.step_dir.clone(),
            boot_id: boot_id(),
        };
        // Durability points: the marker, the unit and the banner are on
        // disk before the reboot is asked for.
        write_atomic(
            &marker_path(&state_dir),
            &serde_json::to_vec(&marker).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("{}: {e}", marker_path(&state_dir).display()))?;
        write_atomic(
            &Path::new(UNIT_DIR).join(UNIT),
            unit_text(&hoist, &state_dir).as_bytes(),
        )
        .map_err(|e| format!("{UNIT_DIR}/{UNIT}: {e}"))?;
        write_atomic(
            Path::new(BANNER),
            banner_text(ctx.product, ctx.run, &state_dir).as_bytes(),
        )
        .map_err(|e| format!("{BANNER}: {e}"))?;
        let mut c = std::process::Command::new("systemctl");
        c.args(["daemon-reload"]);
        ctx.run(c, "systemctl daemon-reload", Duration::from_secs(60))?;
        let mut c = std::process::Command::new("systemctl");
        c.args(["enable", UNIT]);
        ctx.run(c, "systemctl enable hoist-resume", Duration::from_secs(60))?;
        ctx.note(&format!(
            "rebooting: {}; the run resumes at boot ({UNIT})",
            self.reason
        ));
        let _ = std::process::Command::new("sync").status();
        // The reboot request is hoist's own, not a process of the step: it
        // runs outside the step's transient scope, which the shutdown it
        // starts stops first (killing `systemctl` before it returns, so a
        // reboot that happened would read as a failed step). `--no-block`:
        // queued, not waited for; the shutdown's SIGTERM is the answer.
        let mut c = std::process::Command::new("systemctl");
        c.args(["--no-block", "reboot"]);
        crate::sys::process::scope::detach(&mut c);
        ctx.run(c, "systemctl --no-block reboot", Duration::from_secs(60))?;
        // The shutdown stops hoist (SIGTERM). The step stays `running` in
        // the journal; the resume at boot finds it done. Reporting it done
        // or failed here would be a lie either way.
        let deadline = std::time::Instant::now() + self.back_within;
        while std::time::Instant::now() < deadline {
            if ctx.stop_requested() {
                outln!("hoist: the host is rebooting; the upgrade resumes by itself at boot");
                std::process::exit(crate::sys::exit::EXIT_PAUSED.into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        disable_unit(ctx);
        Err(format!(
            "asked for a reboot, but the host did not go down within {}",
            humantime::format_duration(self.back_within)
        ))
    }

    /// Done when the host booted since the marker was written. The unit is
    /// disabled then: it has done its work.
    fn applied(&self, ctx: &Ctx<'_>) -> Option<bool> {
        let text = std::fs::read(marker_path(ctx.state_dir())).ok()?;
        let marker: Marker = serde_json::from_slice(&text).ok()?;
        let rebooted = marker.boot_id != boot_id();
        if rebooted {
            ctx.note("the host has rebooted: the reboot step is done");
            disable_unit(ctx);
        }
        Some(rebooted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_resumes_only_while_a_reboot_is_pending() {
        let t = unit_text(Path::new("/usr/bin/hoist"), Path::new("/var/lib/hoist"));
        assert!(t.contains("ExecStart=/usr/bin/hoist --state-dir /var/lib/hoist resume"));
        assert!(t.contains("ConditionPathExists=/var/lib/hoist/reboot-pending.json"));
        assert!(t.contains("WantedBy=multi-user.target"));
        let b = banner_text("walt-server", 7, Path::new("/var/lib/hoist"));
        assert!(b.contains("upgrade of walt-server is in progress (hoist run 7)"));
        assert!(b.contains("hoist --state-dir /var/lib/hoist status"));
    }
}
