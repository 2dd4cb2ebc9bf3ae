//! The kernel's guarantee on a systemd host: each command a run's step
//! starts is put in a transient scope unit of its own (`systemd-run
//! --scope`), so every process it starts stays in that scope's cgroup,
//! whatever it does: `setsid`, a double fork, `env -i` (which clears the
//! environment marker `scope` otherwise finds it by). The unit's name says
//! which marker it stands for, so a process is found by its cgroup exactly
//! as by its marker, after hoist died too.
//!
//! Used when hoist runs as root on a host booted with systemd
//! (`/run/systemd/system`, as sd_booted(3) tells) and `systemd-run` works;
//! elsewhere the markers and process groups are what there is (their limits
//! in docs/DURABILITY.md, "Containment").

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Unit names are at most 255 bytes (systemd.unit(5)); a longer marker
/// goes without a unit, found by its marker alone.
const MAX_NAME: usize = 255;
const PREFIX: &str = "hoist-";
const SUFFIX: &str = ".scope";

/// `systemd-run`, when transient scopes can be made here.
fn systemd_run() -> Option<&'static Path> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            if std::env::var_os("HOIST_NO_SYSTEMD_SCOPE").is_some()
                || !nix::unistd::geteuid().is_root()
                || !Path::new("/run/systemd/system").is_dir()
            {
                return None;
            }
            let exe = which(
                OsStr::new("systemd-run"),
                std::env::var_os("PATH").as_deref(),
            )?;
            // One scope made and collected proves the manager answers; a
            // host where it cannot (no D-Bus, a container without its own
            // systemd) keeps the markers.
            let mut probe = Command::new(&exe);
            probe
                .args(["--scope", "--collect", "--quiet", "--", "true"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut child = probe.spawn().ok()?;
            // Bounded by hand: `run` itself asks this function.
            for _ in 0..200 {
                match child.try_wait() {
                    Ok(Some(s)) => return s.success().then_some(exe),
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                    Err(_) => break,
                }
            }
            let _ = child.kill();
            let _ = child.wait();
            None
        })
        .as_deref()
}

/// Whether steps run in transient scopes here (for the journal).
pub fn available() -> bool {
    systemd_run().is_some()
}

/// `program` as `exec` would find it with `path`.
fn which(program: &OsStr, path: Option<&OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let p = Path::new(program);
    if p.components().count() > 1 {
        return Some(p.to_path_buf());
    }
    std::env::split_paths(path?).map(|d| d.join(p)).find(|c| {
        std::fs::metadata(c).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// The unit a marker's processes run in: `hoist-<marker escaped>.scope`.
/// Letters, digits and `.` stay; every other byte becomes `_xx`.
pub fn name(marker: &str) -> Option<String> {
    let mut n = String::from(PREFIX);
    for b in marker.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' {
            n.push(b as char);
        } else {
            n.push_str(&format!("_{b:02x}"));
        }
    }
    n.push_str(SUFFIX);
    (n.len() <= MAX_NAME).then_some(n)
}

/// The marker a unit name stands for (`name`'s inverse).
pub fn marker(unit: &str) -> Option<String> {
    let body = unit.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let bytes = body.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let hex = body.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The cgroup (v2) of `pid` and the marker of the hoist scope it is in, if
/// it is in one.
pub fn of(pid: i32) -> Option<(String, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    from_cgroup_file(&text)
}

fn from_cgroup_file(text: &str) -> Option<(String, String)> {
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    // A process may sit in a sub-cgroup its scope made.
    let marker = path.split('/').find_map(marker)?;
    Some((path.to_string(), marker))
}

/// `cmd` run inside the transient scope for `marker`: `systemd-run --scope`
/// registers it, then execs the command itself (same pid, same process
/// group, same environment). `None` when scopes are not used here, or the
/// program cannot be found (its spawn then fails as it would have).
pub fn wrap(cmd: &Command, marker: &str, about: &str) -> Option<Command> {
    let exe = systemd_run()?;
    let unit = name(marker)?;
    let path = cmd
        .get_envs()
        .find(|(k, _)| *k == "PATH")
        .map(|(_, v)| v.map(OsStr::to_os_string))
        .unwrap_or_else(|| std::env::var_os("PATH"));
    let program = which(cmd.get_program(), path.as_deref())?;
    let mut w = Command::new(exe);
    w.args(["--scope", "--collect", "--quiet"])
        .arg(format!("--unit={unit}"))
        .arg(format!("--description={about}"))
        .arg("--")
        .arg(program)
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => w.env(k, v),
            None => w.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        w.current_dir(dir);
    }
    Some(w)
}

/// Kills every process of a cgroup at once (`cgroup.kill`, Linux 5.14):
/// none can fork away between a scan and the signal. `false` when the file
/// is not there (an older kernel): the caller signals each process.
pub fn kill_all(cgroup: &str) -> bool {
    let file = Path::new("/sys/fs/cgroup")
        .join(cgroup.trim_start_matches('/'))
        .join("cgroup.kill");
    std::fs::write(file, "1").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_name_gives_back_its_marker() {
        let m = "803.1a2b/12/install.upgrade-packages#4242.7";
        let n = name(m).unwrap();
        assert!(n.starts_with("hoist-") && n.ends_with(".scope"), "{n}");
        assert!(
            n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
            "{n}"
        );
        assert_eq!(marker(&n).as_deref(), Some(m));
    }

    #[test]
    fn a_marker_too_long_for_a_unit_name_gets_none() {
        assert_eq!(name(&"x/".repeat(100)), None);
    }

    #[test]
    fn other_units_are_not_ours() {
        assert_eq!(marker("ssh.service"), None);
        assert_eq!(marker("hoist-_zz.scope"), None);
        assert_eq!(marker("hoist-_4.scope"), None);
    }

    #[test]
    fn the_scope_is_read_from_the_cgroup_file() {
        let unit = name("1.2/3/step#9.1").unwrap();
        let text = format!("0::/system.slice/{unit}\n");
        let (path, m) = from_cgroup_file(&text).unwrap();
        assert_eq!(path, format!("/system.slice/{unit}"));
        assert_eq!(m, "1.2/3/step#9.1");
        assert_eq!(from_cgroup_file("0::/user.slice/session-4.scope\n"), None);
        assert_eq!(from_cgroup_file("1:name=systemd:/x\n"), None);
    }

    #[test]
    fn a_program_is_found_on_the_path_as_exec_finds_it() {
        let found = which(OsStr::new("sh"), Some(OsStr::new("/nonexistent:/bin")));
        assert_eq!(found.as_deref(), Some(Path::new("/bin/sh")));
        assert_eq!(
            which(OsStr::new("no-such-program-here"), Some(OsStr::new("/bin"))),
            None
        );
        assert_eq!(
            which(OsStr::new("./x"), None).as_deref(),
            Some(Path::new("./x"))
        );
    }
}
