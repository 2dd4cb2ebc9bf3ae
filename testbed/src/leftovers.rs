//! What a run can leave on the machine, looked for from the outside: the
//! check behind "nothing is left behind" in the tests.

use std::fs;
use std::path::Path;

use crate::cache;
use crate::cgroup;
use crate::mounts;
use crate::net::{self, Lan};

/// Everything of run `run_id` that still exists: processes, mounts,
/// network namespaces and veths, cgroups, files, records. Empty when the
/// run was torn down completely.
pub fn of_run(run_id: &str) -> Vec<String> {
    let mut found = Vec::new();
    let machine_arg = format!("--machine={run_id}-");
    for pid in all_pids() {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&machine_arg) {
            found.push(format!("process {pid}: {cmdline}"));
        }
    }
    for h in cgroup::hierarchies() {
        let g = cgroup::run_group(&h, run_id);
        for pid in cgroup::pids_in(&g) {
            found.push(format!("process {pid} in cgroup {}", g.display()));
        }
        if g.exists() {
            found.push(format!("cgroup {}", g.display()));
        }
    }
    let dir = cache::cache_dir().join("runs").join(run_id);
    for m in mounts::mounts_under(&dir).unwrap_or_default() {
        found.push(format!("mount {}", m.display()));
    }
    if dir.exists() {
        found.push(format!("directory {}", dir.display()));
    }
    for lan in Lan::owned_by(run_id) {
        found.push(format!("LAN slot {}", lan.index));
        let own = lan.netns();
        for ns in net::existing_netns() {
            if ns == own || ns.starts_with(&format!("{own}-")) {
                found.push(format!("netns {ns}"));
            }
        }
        if Path::new("/sys/class/net").join(lan.veth()).exists() {
            found.push(format!("veth {}", lan.veth()));
        }
    }
    if crate::run::recorded_runs().iter().any(|r| r == run_id) {
        found.push(format!("run record {run_id}"));
    }
    found
}

/// Everything of any run that is not live: namespaces, veths and slots
/// with no recorded run. For a suite-wide check at the end.
pub fn orphans() -> Vec<String> {
    let runs = crate::run::recorded_runs();
    let mut found = Vec::new();
    let owned: Vec<Lan> = runs.iter().flat_map(|r| Lan::owned_by(r)).collect();
    for ns in net::existing_netns() {
        let mine = owned
            .iter()
            .any(|l| ns == l.netns() || ns.starts_with(&format!("{}-", l.netns())));
        if !mine {
            found.push(format!("netns {ns}"));
        }
    }
    for v in net::existing_veths() {
        if !owned.iter().any(|l| l.veth() == v) {
            found.push(format!("veth {v}"));
        }
    }
    found
}

fn all_pids() -> Vec<i32> {
    fs::read_dir("/proc")
        .map(|es| {
            es.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}
