//! Issue 7, bench (a): 1,000 simulated hosts (`SimulatedTransport`: each
//! host's upgrade is a fixed sleep, nothing is connected to), batches of
//! 10%, the controller's journal on disk (WAL, synchronous=FULL). Prints
//! the wall time against the ideal sum of batch times (10 x the sleep) and
//! the controller's peak resident memory (VmHWM of this process).
//! Run: `cargo bench --bench fleet` (HOIST_BENCH_HOSTS, HOIST_BENCH_SLEEP_MS
//! change the size).

use std::path::Path;
use std::time::{Duration, Instant};

use hoist::fleet::inventory;
use hoist::fleet::journal::FleetJournal;
use hoist::fleet::plan::plan;
use hoist::fleet::run::{Executor, Options, Outcome, Progress};
use hoist::fleet::simulated::SimulatedTransport;
use hoist::recipe;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident set size of this process, in KiB (Linux).
fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let hosts = env("HOIST_BENCH_HOSTS", 1000) as usize;
    let sleep = Duration::from_millis(env("HOIST_BENCH_SLEEP_MS", 2000));
    let recipe_text = format!(
        "[product]\nname = \"bench\"\nversion = {{ package = \"bench\" }}\nroles = [\"node\"]\n\n\
         [[paths]]\nid = \"main\"\nfrom = \"1.*\"\nto = \"2.0\"\n\n\
         [fleet]\nmax_fail_percentage = 10\nparallel = {hosts}\n\n\
         [[fleet.stages]]\nid = \"nodes\"\nrole = \"node\"\nbatch = \"10%\"\n"
    );
    let r = recipe::load_str(Path::new("bench.toml"), &recipe_text)
        .recipe
        .expect("bench recipe");
    let inv_text: String = (0..hosts)
        .map(|i| {
            format!(
                "[hosts.node{i:04}]\naddress = \"10.{}.{}.{}\"\nroles = [\"node\"]\n",
                i / 65536,
                (i / 256) % 256,
                i % 256
            )
        })
        .collect();
    let inv = inventory::load_str(Path::new("bench-inventory.toml"), &inv_text).expect("inventory");
    let p = plan(&r, &inv, Some("2.0")).expect("plan");
    let batches = p.stages[0].batches.len();
    let dir = std::env::temp_dir().join(format!("hoist-bench-fleet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let before = vm_hwm_kib();
    let transport = SimulatedTransport::new(sleep);
    let mut journal = FleetJournal::open(&dir).expect("journal");
    let mut events = 0u64;
    let mut progress = |_: Progress<'_>| events += 1;
    let start = Instant::now();
    let outcome = Executor::new(&mut journal, &transport, Options::default(), &mut progress)
        .start(&p)
        .expect("run")
        .1;
    let wall = start.elapsed();
    let peak = vm_hwm_kib();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(outcome, Outcome::Done);
    let ideal = sleep * batches as u32;
    println!(
        "fleet: {hosts} simulated hosts, {batches} batches of 10%, each host {} ms: wall {:.3} s, ideal {:.3} s, ratio {:.4} ({:+.2}%); {events} progress events",
        sleep.as_millis(),
        wall.as_secs_f64(),
        ideal.as_secs_f64(),
        wall.as_secs_f64() / ideal.as_secs_f64(),
        (wall.as_secs_f64() / ideal.as_secs_f64() - 1.0) * 100.0
    );
    println!(
        "fleet: controller peak resident memory (VmHWM) {:.1} MiB (before the rollout {:.1} MiB)",
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
}
