//! Restarts held back while apt runs (`hold_restarts`), so that the
//! product's daemons keep serving the old code during the whole package
//! upgrade and go down only once, for the ordered restart the recipe does
//! after it (seed 001, step 6: "All XiVO services are restarted in the right
//! order"; DESIGN: "keeps services down only for the restart itself").
//!
//! Debian's maintainer scripts start, stop and restart services through
//! `deb-systemd-invoke` or `invoke-rc.d`, and both ask `/usr/sbin/policy-rc.d`
//! first: exit 101 means "not now". hoist writes one that says 101 for the
//! held units only, and removes it when apt is done.
//!
//! A file left behind would silently stop every later package upgrade from
//! restarting those units, so it is made harmless by construction: it
//! answers 101 only while a marker in `/run` (a tmpfs, empty after a boot)
//! exists and the hoist process that wrote it is alive. After a crash or a
//! power cut it answers 0, and the next `apply` or `compensate` of a
//! packages step removes it.

use std::path::Path;

use crate::actions::ctx::Ctx;

const POLICY: &str = "/usr/sbin/policy-rc.d";
const MARKER: &str = "/run/hoist/restarts-held";
/// First line of the file hoist writes: how it knows the file is its own.
const SIGNATURE: &str = "# hoist: service restarts held during a package upgrade";

/// The held restarts; dropping it lets them through again.
pub struct Hold {
    active: bool,
}

/// The policy script: 101 for the held units while this process lives.
fn script(units: &[String], pid: u32) -> String {
    let names: Vec<String> = units.iter().map(|u| unit_name(u).to_owned()).collect();
    format!(
        "#!/bin/sh\n{SIGNATURE}.\n\
         # The recipe restarts these units itself, in order, after the upgrade.\n\
         # Harmless if left behind: it holds nothing once hoist (pid {pid}) is gone.\n\
         [ -e {MARKER} ] && kill -0 {pid} 2>/dev/null || exit 0\n\
         case \"${{1%.service}}\" in\n  {}) exit 101 ;;\nesac\nexit 0\n",
        names.join("|")
    )
}

/// `asterisk` from `asterisk.service`: invoke-rc.d passes the first,
/// deb-systemd-invoke the second.
fn unit_name(u: &str) -> &str {
    u.strip_suffix(".service").unwrap_or(u)
}

fn ours(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .is_ok_and(|t| t.lines().nth(1).is_some_and(|l| l.starts_with(SIGNATURE)))
}

/// Removes a policy file a crashed hoist left behind (it holds nothing
/// any more, see the module's comment; this tidies it away).
pub fn remove_leftover(ctx: &Ctx<'_>) {
    if ours(Path::new(POLICY)) {
        ctx.note(&format!(
            "remove {POLICY}: left by an interrupted package upgrade"
        ));
        let _ = std::fs::remove_file(POLICY);
    }
}

/// Holds the restarts of `units` until the returned value is dropped. An
/// admin's own policy-rc.d is left alone: it decides, and the run log
/// says so.
pub fn hold(ctx: &Ctx<'_>, units: &[String]) -> Result<Hold, String> {
    if units.is_empty() {
        return Ok(Hold { active: false });
    }
    remove_leftover(ctx);
    if Path::new(POLICY).exists() {
        ctx.note(&format!(
            "{POLICY} exists and is not hoist's: it decides which restarts the packages may do; {} may restart during the upgrade",
            units.join(", ")
        ));
        return Ok(Hold { active: false });
    }
    let write = || -> std::io::Result<()> {
        crate::sys::fsutil::write_atomic(Path::new(MARKER), b"")?;
        crate::sys::fsutil::write_atomic(
            Path::new(POLICY),
            script(units, std::process::id()).as_bytes(),
        )?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(POLICY, std::fs::Permissions::from_mode(0o755))
    };
    let held = Hold { active: true };
    write().map_err(|e| format!("hold restarts ({POLICY}): {e}"))?;
    ctx.note(&format!(
        "restarts of {} held until the recipe restarts them",
        units.join(", ")
    ));
    Ok(held)
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.active && ours(Path::new(POLICY)) {
            let _ = std::fs::remove_file(POLICY);
        }
        if self.active {
            let _ = std::fs::remove_file(MARKER);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// The script's answers, run by the real shell as dpkg's helpers do.
    fn answer(script: &str, unit: &str, marker: &Path) -> i32 {
        let dir = std::env::temp_dir().join(format!("hoist-hold-{}-{unit}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("policy-rc.d");
        std::fs::write(&path, script.replace(MARKER, &marker.to_string_lossy())).unwrap();
        let code = Command::new("sh")
            .arg(&path)
            .args([unit, "restart"])
            .status()
            .unwrap()
            .code()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        code
    }

    #[test]
    fn holds_the_named_units_only_while_marked_and_alive() {
        let marker = std::env::temp_dir().join(format!("hoist-hold-marker-{}", std::process::id()));
        std::fs::write(&marker, "").unwrap();
        let units = vec!["asterisk".to_string(), "xivo-agid.service".to_string()];
        let live = script(&units, std::process::id());
        assert!(live.lines().nth(1).unwrap().starts_with(SIGNATURE));
        assert_eq!(answer(&live, "asterisk.service", &marker), 101);
        assert_eq!(answer(&live, "asterisk", &marker), 101);
        assert_eq!(answer(&live, "xivo-agid.service", &marker), 101);
        assert_eq!(answer(&live, "postgresql.service", &marker), 0);
        assert_eq!(answer(&live, "asterisk-extra.service", &marker), 0);
        // A hoist that is gone (here: a child that has exited) holds nothing.
        let mut child = Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        assert_eq!(
            answer(&script(&units, dead), "asterisk.service", &marker),
            0
        );
        // Nor does one whose marker a boot removed.
        std::fs::remove_file(&marker).unwrap();
        assert_eq!(answer(&live, "asterisk.service", &marker), 0);
    }
}
