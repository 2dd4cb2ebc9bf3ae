//! One cgroup per host. systemd-nspawn with `--keep-unit` and no systemd on
//! the runner side creates its `payload`/`supervisor` cgroups *inside the
//! cgroup it was started in*. Started from the root cgroup, two containers
//! would share `/payload` and each container's systemd would manage (and
//! kill) the other's services. So each nspawn is moved into its own group
//! before it starts, in every hierarchy that systemd in the container uses.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cmd::wait_for;
use crate::error::{Error, IoContext, Result};

/// Name of the harness's subtree in each hierarchy.
pub const CGROUP_ROOT: &str = "hoist-testbed";

/// The hierarchies systemd uses here: the named v1 `systemd` hierarchy and
/// the v2 one (hybrid layout), or the single v2 hierarchy (unified layout).
pub fn hierarchies() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let hybrid: Vec<PathBuf> = ["systemd", "unified"]
        .iter()
        .map(|h| base.join(h))
        .filter(|p| p.join("cgroup.procs").exists())
        .collect();
    if !hybrid.is_empty() {
        hybrid
    } else if base.join("cgroup.procs").exists() {
        vec![base.to_path_buf()]
    } else {
        Vec::new()
    }
}

/// The per-run directory in one hierarchy.
pub(crate) fn run_group(hierarchy: &Path, run_id: &str) -> PathBuf {
    hierarchy.join(CGROUP_ROOT).join(run_id)
}

/// Create the host's group in every hierarchy; returns their paths, which
/// the nspawn wrapper joins before exec'ing.
pub(crate) fn create(run_id: &str, host: &str) -> Result<Vec<PathBuf>> {
    let hs = hierarchies();
    if hs.is_empty() {
        return Err(Error::Unsupported(
            "no cgroup hierarchy with cgroup.procs under /sys/fs/cgroup".into(),
        ));
    }
    hs.iter()
        .map(|h| {
            let g = run_group(h, run_id).join(host);
            fs::create_dir_all(&g).ctx("create cgroup", &g)?;
            Ok(g)
        })
        .collect()
}

/// Remove a group tree bottom-up. Processes must already be dead; the
/// kernel may take a moment to release a cgroup after its last exit.
pub(crate) fn remove_tree(group: &Path) -> Result<()> {
    if !group.exists() {
        return Ok(());
    }
    wait_for(
        &format!("removal of cgroup {}", group.display()),
        Duration::from_secs(10),
        Duration::from_millis(50),
        || {
            let mut dirs = Vec::new();
            collect_dirs(group, &mut dirs);
            dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
            for d in &dirs {
                let _ = fs::remove_dir(d);
            }
            (!group.exists()).then_some(())
        },
    )
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

/// Every process in a group tree, for teardown and the leftover check.
pub fn pids_in(group: &Path) -> Vec<i32> {
    let mut dirs = Vec::new();
    if group.exists() {
        collect_dirs(group, &mut dirs);
    }
    let mut pids: Vec<i32> = dirs
        .iter()
        .filter_map(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}
