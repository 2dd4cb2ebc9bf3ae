//! Seed 001: "reload services when libraries are modified". After packages
//! change, a process still mapping a file the upgrade replaced or deleted
//! runs old code. As needrestart does, `/proc/PID/maps` tells which
//! processes do, and `/proc/PID/cgroup` which systemd unit each belongs to.

use std::collections::BTreeSet;
use std::path::Path;

/// Units with a process mapping a deleted or replaced file, with one such
/// file each (for the report).
pub fn stale_units() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    let me = std::process::id().to_string();
    for p in procs.filter_map(|e| e.ok()) {
        let pid = p.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let Some(file) = stale_mapping(&p.path()) else {
            continue;
        };
        let Some(unit) = unit_of(&p.path()) else {
            continue;
        };
        if !out.iter().any(|(u, _)| *u == unit) {
            out.push((unit, file));
        }
    }
    out.sort();
    out
}

/// The first file a process maps that is deleted or was replaced. Only
/// executables and libraries count: data files are the program's own
/// business.
fn stale_mapping(proc_dir: &Path) -> Option<String> {
    let maps = std::fs::read_to_string(proc_dir.join("maps")).ok()?;
    let mut seen = BTreeSet::new();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (_, perms, _, _, inode) = (
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
        );
        let path: String = fields.collect::<Vec<_>>().join(" ");
        if !perms.contains('x') || !path.starts_with('/') || !seen.insert(path.clone()) {
            continue;
        }
        if let Some(gone) = path.strip_suffix(" (deleted)") {
            return Some(gone.to_string());
        }
        // Replaced in place by a new inode with the same name.
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = std::fs::metadata(&path)
            && inode.parse::<u64>().is_ok_and(|i| i != 0 && i != m.ino())
        {
            return Some(path);
        }
    }
    None
}

/// `foo.service` from `0::/system.slice/foo.service` (user sessions and
/// scopes are not services hoist restarts).
fn unit_of(proc_dir: &Path) -> Option<String> {
    let cg = std::fs::read_to_string(proc_dir.join("cgroup")).ok()?;
    cg.lines()
        .filter_map(|l| l.rsplit(':').next())
        .filter_map(|path| path.rsplit('/').next())
        .find(|last| last.ends_with(".service"))
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_from_cgroup_paths() {
        let dir = std::env::temp_dir().join(format!("hoist-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cgroup"), "0::/system.slice/xivo-agid.service\n").unwrap();
        assert_eq!(unit_of(&dir).as_deref(), Some("xivo-agid.service"));
        std::fs::write(
            dir.join("cgroup"),
            "0::/user.slice/user-0.slice/session-1.scope\n",
        )
        .unwrap();
        assert_eq!(unit_of(&dir), None);
        std::fs::write(
            dir.join("maps"),
            "7f0-7f1 r-xp 00000000 08:01 123 /usr/lib/demo/demod (deleted)\n7f2-7f3 rw-p 00000000 08:01 124 /var/lib/data (deleted)\n",
        )
        .unwrap();
        assert_eq!(stale_mapping(&dir).as_deref(), Some("/usr/lib/demo/demod"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
