//! The simulated fleet's helpers shared by `fleet_run.rs` and
//! `fleet_rollback.rs`: a scratch state directory, a recipe around a
//! `[fleet]` table, a rollout run to its end, `hoist fleet status`'s text.
// Each test binary uses a part of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use hoist::fleet::inventory::{self, Inventory};
use hoist::fleet::journal::FleetJournal;
use hoist::fleet::plan::{FleetPlan, plan};
use hoist::fleet::run::{Executor, Options, Outcome, Progress};
use hoist::fleet::simulated::SimulatedTransport;
use hoist::recipe::{self, Recipe};

pub struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn scratch(name: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!("hoist-fleet-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

pub fn with_fleet(fleet: &str) -> Recipe {
    let text = format!(
        "[product]\nname = \"demo\"\nversion = {{ package = \"demo\" }}\nroles = [\"web\", \"db\"]\n\n[[paths]]\nid = \"main\"\nfrom = \"1.*\"\nto = \"2.0\"\n\n{fleet}"
    );
    let loaded = recipe::load_str(Path::new("fleet.toml"), &text);
    let problems: Vec<String> = loaded.problems.iter().map(|p| p.short()).collect();
    loaded.recipe.unwrap_or_else(|| panic!("{problems:#?}"))
}

pub const QUICK: Duration = Duration::from_millis(20);

pub fn run(
    dir: &Path,
    transport: &SimulatedTransport,
    plan: &FleetPlan,
    options: Options,
) -> Outcome {
    let mut journal = FleetJournal::open(dir).unwrap();
    let mut progress = |_: Progress<'_>| {};
    let mut ex = Executor::new(&mut journal, transport, options, &mut progress);
    ex.start(plan).unwrap().1
}

pub fn status(dir: &Path) -> String {
    FleetJournal::open(dir)
        .unwrap()
        .latest()
        .unwrap()
        .unwrap()
        .summary()
}

pub fn web_hosts(n: usize) -> Inventory {
    let text: String = (1..=n)
        .map(|i| format!("[hosts.web{i}]\nroles = [\"web\"]\n"))
        .collect();
    inventory::load_str(Path::new("inv.toml"), &text).unwrap()
}

pub fn six_hosts(thresholds: &str) -> FleetPlan {
    let r = with_fleet(&format!(
        "[fleet]\n{thresholds}\n[[fleet.stages]]\nid = \"web\"\nrole = \"web\"\nbatch = [1, 2, \"50%\"]\n"
    ));
    plan(&r, &web_hosts(6), Some("2.0")).unwrap()
}
