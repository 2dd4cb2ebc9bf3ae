//! Issue 7's acceptance: `hoist fleet upgrade | resume | status` driving
//! booted Debian test hosts over real SSH (the system `ssh`, the test
//! run's ssh_config, key and known_hosts). hoist is not installed on the
//! hosts: the controller copies its binary and the recipe there.
//!
//! - seed 000's XiVO HA pair, fully automatic: the order from the hosts'
//!   journals, the master's replication cron at each point;
//! - 6 hosts, batches [1, 2, "50%"], one health check failing: it rolls
//!   back, the rollout stops at the threshold, the hosts not started are
//!   untouched, and `hoist fleet status` says so;
//! - the controller killed (SIGKILL) mid-rollout, then `hoist fleet
//!   resume`: it finishes, no host upgraded twice.

mod common;
use common::{hoist_in, sh, small_hoist, text};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hoist_testbed::products::xivo;
use hoist_testbed::{AptRepo, Host, Mirror, Suite, Testbed};

/// Every wait of this file is bounded by this (a rollout's whole time).
const BOUND: Duration = Duration::from_secs(300);

/// A directory of the test's own (state, inventory, recipe), removed at
/// the end.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let d =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fleet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

/// `hoist fleet ARGS` on the controller, state in `state`, reaching the
/// testbed's hosts with its ssh_config.
fn fleet(state: &Path, tb: &Testbed, args: &[&str]) -> Command {
    let mut c = hoist_in(state);
    c.arg("fleet").args(args);
    if matches!(args.first(), Some(&"upgrade" | &"resume")) {
        c.arg("--ssh-config")
            .arg(tb.ssh_config())
            .arg("--hoist-binary")
            .arg(small_hoist())
            .args(["--host-timeout", "4m", "--connect-timeout", "10s"]);
    }
    c.stdin(Stdio::null());
    c
}

/// Runs a command, bounded by `BOUND`; its output.
fn bounded(mut c: Command) -> std::process::Output {
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hoist runs");
    let pid = child.id();
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let d = std::sync::Arc::clone(&done);
    let guard = std::thread::spawn(move || {
        let start = Instant::now();
        while !d.load(Ordering::SeqCst) {
            if start.elapsed() > BOUND {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let out = child.wait_with_output().expect("hoist ends");
    done.store(true, Ordering::SeqCst);
    let _ = guard.join();
    out
}

/// `hoist fleet status --json` on the controller.
fn status_json(state: &Path, tb: &Testbed) -> serde_json::Value {
    let mut c = fleet(state, tb, &["status"]);
    c.arg("--json");
    let o = bounded(c);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
}

/// The runs in the host's own journal, read with the copied hoist.
fn host_runs(h: &Host) -> Vec<serde_json::Value> {
    let out = sh(
        h,
        "set -- /var/lib/hoist/fleet/*/hoist; \
         if [ -x \"$1\" ]; then \"$1\" --json history; else echo '{\"runs\": []}'; fi",
    );
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{}: {e}: {out}", h.name()));
    match v.get("runs") {
        Some(serde_json::Value::Array(runs)) => runs.clone(),
        _ => panic!("{}: `hoist --json history` has no runs: {out}", h.name()),
    }
}

/// Nothing of hoist on the host: no journal, no copy, no run.
fn untouched(h: &Host) {
    let o = h.exec_unchecked("test ! -e /var/lib/hoist").expect("exec");
    assert!(
        o.success(),
        "{}: /var/lib/hoist exists: {}",
        h.name(),
        sh(h, "find /var/lib/hoist -maxdepth 3")
    );
}

// ---------------------------------------------------------------------
// 6 hosts, one health check failing.

/// A small product whose version is a file: the install writes 2.0 (undo:
/// 1.0 again), the health check waits for /etc/demo/broken to be absent.
const DEMO: &str = r#"
[product]
name = "demo"
version = { file = "/etc/demo/VERSION" }
roles = ["web"]

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

[[facts]]
name = "site"
default = "nowhere"
{FACTS}

[[steps]]
id = "install"
phase = "install"
exec.shell = "sleep {SLEEP}; echo {{ site }} > /etc/demo/SITE; echo 2.0 > /etc/demo/VERSION"
undo = { exec.shell = "echo 1.0 > /etc/demo/VERSION" }

[[steps]]
id = "health-check"
phase = "verify"
wait = { until = { command = ["test", "!", "-e", "/etc/demo/broken"] }, timeout = "2s" }

[fleet]
{FLEET}

[[fleet.stages]]
id = "web"
role = "web"
batch = {BATCH}
"#;

fn demo_recipe(dir: &Path, sleep: u32, fleet: &str, batch: &str) -> PathBuf {
    let d = dir.join("recipe");
    std::fs::create_dir_all(&d).unwrap();
    let text = DEMO
        .replace("{SLEEP}", &sleep.to_string())
        .replace("{FLEET}", fleet)
        .replace("{BATCH}", batch)
        .replace("{FACTS}", "");
    std::fs::write(d.join("recipe.toml"), text).unwrap();
    d
}

fn web_inventory(dir: &Path, names: &[String]) -> PathBuf {
    let text: String = names
        .iter()
        .map(|n| format!("[hosts.{n}]\nroles = [\"web\"]\nvars = {{ site = \"site-of-{n}\" }}\n"))
        .collect();
    let p = dir.join("inventory.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn web_site(n: usize) -> (Testbed, Vec<String>) {
    let names: Vec<String> = (1..=n).map(|i| format!("web{i}")).collect();
    let mut b = Testbed::builder();
    for h in &names {
        b = b.host(h, Suite::Bookworm);
    }
    let tb = b.start().expect("testbed");
    for h in tb.hosts() {
        sh(&h, "mkdir -p /etc/demo && echo 1.0 > /etc/demo/VERSION");
    }
    (tb, names)
}

fn version(h: &Host) -> String {
    sh(h, "cat /etc/demo/VERSION").trim().to_string()
}

#[test]
fn six_hosts_one_failing_health_check_stop_at_the_threshold() {
    let (tb, names) = web_site(6);
    let dir = scratch("six");
    let state = dir.0.join("state");
    let recipe = demo_recipe(&dir.0, 0, "max_fail_percentage = 40", r#"[1, 2, "50%"]"#);
    let inv = web_inventory(&dir.0, &names);
    sh(&tb.host("web3").unwrap(), "touch /etc/demo/broken");

    let out = bounded(fleet(
        &state,
        &tb,
        &[
            "upgrade",
            "-i",
            inv.to_str().unwrap(),
            "-r",
            recipe.to_str().unwrap(),
            "--yes",
        ],
    ));
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    for line in [
        "stage web, batch 1/3: web1",
        "stage web, batch 2/3: web2, web3",
        "web3: ROLLED BACK",
        "web1: UPGRADED",
    ] {
        assert!(said.contains(line), "{line:?} not in\n{said}");
    }
    // The plan shows batch 3; the rollout never reached it.
    assert!(!said.contains("s] stage web, batch 3/3"), "{said}");

    // On the hosts: web1 and web2 upgraded once, web3 rolled back once,
    // the others never touched.
    for (name, want, state_) in [
        ("web1", "2.0", "committed"),
        ("web2", "2.0", "committed"),
        ("web3", "1.0", "rolled-back"),
    ] {
        let h = tb.host(name).unwrap();
        assert_eq!(version(&h), want, "{name}");
        // The inventory's variable reached the host as a fact.
        assert_eq!(
            sh(&h, "cat /etc/demo/SITE").trim(),
            format!("site-of-{name}")
        );
        let runs = host_runs(&h);
        assert_eq!(runs.len(), 1, "{name}: {runs:?}");
        assert_eq!(runs[0]["state"], state_, "{name}: {runs:?}");
    }
    for name in ["web4", "web5", "web6"] {
        let h = tb.host(name).unwrap();
        assert_eq!(version(&h), "1.0", "{name}");
        untouched(&h);
    }

    // `hoist fleet status` says exactly this.
    let st = bounded(fleet(&state, &tb, &["status"]));
    let st = String::from_utf8_lossy(&st.stdout).to_string();
    let lines: Vec<&str> = st.lines().collect();
    assert_eq!(
        lines[0],
        "Rollout 1 of demo to each host's candidate: stopped: stage web, batch 2: 1 of 2 host(s) failed, more than max_fail_percentage = 40%",
        "{st}"
    );
    assert_eq!(
        lines[1..4],
        ["  upgraded: 2", "    web1", "    web2"],
        "{st}"
    );
    assert_eq!(lines[4], "  failed: 1", "{st}");
    assert!(
        lines[5].starts_with("    web3: step health-check failed")
            && lines[5].ends_with("rolled back"),
        "{st}"
    );
    assert_eq!(
        lines[6..10],
        [
            "  not started (untouched): 3",
            "    web4",
            "    web5",
            "    web6"
        ],
        "{st}"
    );
    let j = status_json(&state, &tb);
    assert_eq!(j["state"], "stopped");
    assert_eq!(j["done"], serde_json::json!(["web1", "web2"]));
    assert_eq!(j["untouched"], serde_json::json!(["web4", "web5", "web6"]));
    drop(dir);
    tb.teardown().expect("teardown");
}

// ---------------------------------------------------------------------
// The controller paused, then killed mid-rollout, then resumed.

fn spawn(mut c: Command) -> std::process::Child {
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hoist runs")
}

/// The child's output; killed if it is still there after `BOUND`.
fn finish(mut child: std::process::Child) -> std::process::Output {
    let start = Instant::now();
    while child.try_wait().ok().flatten().is_none() {
        if start.elapsed() > BOUND {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("output")
}

/// Until the host's own run of this rollout has started.
fn wait_running(h: &Host) {
    let start = Instant::now();
    while upgrading(h) != "running" {
        assert!(start.elapsed() < BOUND, "{} never started", h.name());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn controller_paused_then_killed_then_resumed_upgrades_no_host_twice() {
    let (tb, names) = web_site(4);
    let dir = scratch("kill");
    let state = dir.0.join("state");
    let recipe = demo_recipe(&dir.0, 4, "max_fail = 0", "1");
    let inv = web_inventory(&dir.0, &names);
    let args = ["-i", inv.to_str().unwrap(), "-r", recipe.to_str().unwrap()];

    // SIGINT while web1 upgrades: its batch ends, then the rollout pauses.
    let up = fleet(
        &state,
        &tb,
        &[&["upgrade", "--yes"][..], &args[..]].concat(),
    );
    let child = spawn(up);
    wait_running(&tb.host("web1").unwrap());
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = finish(child);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(said.contains("web1: UPGRADED"), "{said}");
    assert!(said.contains("hoist fleet resume"), "{said}");
    let j = status_json(&state, &tb);
    assert_eq!(j["state"], "paused", "{j}");
    assert_eq!(j["done"], serde_json::json!(["web1"]), "{j}");
    untouched(&tb.host("web2").unwrap());

    // Resumed, then killed while web2's own run is under way: the host
    // carries on without its controller.
    let mut child = spawn(fleet(&state, &tb, &[&["resume"][..], &args[..]].concat()));
    wait_running(&tb.host("web2").unwrap());
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let j = status_json(&state, &tb);
    assert_eq!(j["state"], "running", "{j}");
    assert_eq!(j["done"], serde_json::json!(["web1"]), "{j}");

    let out = bounded(fleet(&state, &tb, &[&["resume"][..], &args[..]].concat()));
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("resuming rollout 1 (running)"), "{said}");
    let j = status_json(&state, &tb);
    assert_eq!(j["state"], "done", "{j}");
    assert_eq!(
        j["done"],
        serde_json::json!(["web1", "web2", "web3", "web4"]),
        "{j}"
    );
    // Each host's own journal: one run, committed.
    for n in &names {
        let h = tb.host(n).unwrap();
        let runs = host_runs(&h);
        assert_eq!(runs.len(), 1, "{n} upgraded {} times: {runs:?}", runs.len());
        assert_eq!(runs[0]["state"], "committed", "{n}");
        assert_eq!(version(&h), "2.0", "{n}");
    }
    // Nothing left to resume.
    let again = bounded(fleet(&state, &tb, &[&["resume"][..], &args[..]].concat()));
    assert!(
        text(&again).contains("nothing to resume"),
        "{}",
        text(&again)
    );
    drop(dir);
    tb.teardown().expect("teardown");
}

// ---------------------------------------------------------------------
// Seed 000's XiVO HA pair.

const MIRROR_NAME: &str = "mirror.xivo.fr";
const LIST: &str = "/etc/apt/sources.list.d/xivo.list";
const CRON: &str = "/etc/cron.d/xivo-ha-master";

/// A XiVO 1.2.3 host (wizard run), its sources pointing at 1.2.4.
fn xivo_host(tb: &Testbed, mirror: &Mirror, name: &str) -> std::sync::Arc<Host> {
    let h = tb.host(name).expect("host");
    mirror.alias_on(&h, MIRROR_NAME).expect("alias");
    h.use_mirror(
        "xivo",
        &format!("http://{MIRROR_NAME}/"),
        &[&xivo::suite("1.2.3")],
    )
    .expect("sources");
    sh(
        &h,
        "apt-get update -q && apt-get install -q -y xivo xivo-upgrade && xivo-wizard",
    );
    sh(&h, &format!("sed -i 's/xivo-1.2.3/xivo-1.2.4/' {LIST}"));
    h
}

/// Whether the master's replication line is commented out (`Some(true)`),
/// active (`Some(false)`), or missing.
fn cron_off(master: &Host) -> Option<bool> {
    let line = sh(
        master,
        &format!("grep xivo-master-slave-db-replication {CRON} || true"),
    );
    let line = line.trim();
    (!line.is_empty()).then(|| line.starts_with('#'))
}

/// Where a host's upgrade stands, from its output file on the host.
fn upgrading(h: &Host) -> &'static str {
    let out = sh(
        h,
        "f=$(ls /var/lib/hoist/fleet/*/upgrade.jsonl 2>/dev/null | head -n 1); \
         if [ -z \"$f\" ]; then echo none; \
         elif grep -q run-finished \"$f\"; then echo finished; \
         elif grep -q run-started \"$f\"; then echo running; else echo starting; fi",
    );
    match out.trim() {
        "none" => "none",
        "finished" => "finished",
        "running" => "running",
        _ => "starting",
    }
}

#[test]
fn xivo_ha_pair_is_upgraded_in_the_seeds_order() {
    let mut repo = AptRepo::new().expect("repository");
    xivo::add_to(&mut repo).expect("stand-in packages");
    repo.publish().expect("publish");
    let tb = Testbed::builder()
        .host("xivo-1", Suite::Bookworm)
        .host("xivo-2", Suite::Bookworm)
        .repo(&repo)
        .start()
        .expect("testbed");
    let key = repo.root().join("keys/xivo_current.gpg");
    let mirror = Mirror::start(
        &repo.root(),
        tb.runner_addr().expect("a LAN"),
        80,
        &[("/xivo_current.key", key.as_path())],
    )
    .expect("mirror");
    let (master, slave) = std::thread::scope(|s| {
        let m = s.spawn(|| xivo_host(&tb, &mirror, "xivo-1"));
        let sl = s.spawn(|| xivo_host(&tb, &mirror, "xivo-2"));
        (m.join().unwrap(), sl.join().unwrap())
    });
    // Seed 000: the master replicates to the slave from cron; the
    // replication script (not in the stand-in) says when it ran and
    // whether the cron was off then.
    sh(
        &master,
        &format!(
            "printf '%s\\n' '*/5 * * * * root /usr/sbin/xivo-master-slave-db-replication {}' > {CRON}",
            slave.addr()
        ),
    );
    master
        .write_file(
            "/usr/sbin/xivo-master-slave-db-replication",
            format!(
                "#!/bin/sh\nset -e\ntest -n \"$1\"\n\
                 state=on; grep -q '^#.*xivo-master-slave-db-replication' {CRON} && state=off\n\
                 echo \"replicated to $1, cron $state\" >> /root/replication.log\n"
            )
            .as_bytes(),
            0o755,
        )
        .expect("replication script");
    assert_eq!(cron_off(&master), Some(false));

    let dir = scratch("xivo");
    let state = dir.0.join("state");
    let inv = dir.0.join("inventory.toml");
    std::fs::write(
        &inv,
        "[hosts.xivo-1]\nroles = [\"master\"]\n\n[hosts.xivo-2]\nroles = [\"slave\"]\n",
    )
    .unwrap();
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes/xivo");

    // The cron and both hosts' upgrades, sampled while the rollout runs.
    let stop = AtomicBool::new(false);
    let (out, (samples, steady)) = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            // Each sample reads the hosts, the cron, then the hosts again.
            // `seen`: the master's first read before the slave's, so a
            // master seen started while the slave is then seen unfinished
            // is a real overlap (the slave's end only moves forward), not
            // the gap between two reads. `steady`: a host counts as
            // running only when both its reads say so, so it ran across
            // the cron's read.
            let mut seen = Vec::new();
            let mut steady = Vec::new();
            let start = Instant::now();
            while !stop.load(Ordering::SeqCst) && start.elapsed() < BOUND {
                let m1 = upgrading(&master);
                let s1 = upgrading(&slave);
                let cron = cron_off(&master);
                let s2 = upgrading(&slave);
                let m2 = upgrading(&master);
                let both = |a: &'static str, b: &'static str| if a == b { a } else { "changing" };
                seen.push((cron, s1, m1));
                steady.push((cron, both(s1, s2), both(m1, m2)));
                std::thread::sleep(Duration::from_millis(200));
            }
            (seen, steady)
        });
        let out = bounded(fleet(
            &state,
            &tb,
            &[
                "upgrade",
                "-i",
                inv.to_str().unwrap(),
                "-r",
                recipe.to_str().unwrap(),
                "--to",
                "1.2.4",
                "--yes",
            ],
        ));
        stop.store(true, Ordering::SeqCst);
        (out, watcher.join().unwrap())
    });
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");

    // While either host upgraded, the replication cron was off.
    let busy: Vec<_> = steady
        .iter()
        .filter(|(_, s, m)| *s == "running" || *m == "running")
        .collect();
    assert!(
        busy.iter().any(|(_, s, _)| *s == "running"),
        "the slave's upgrade was never seen running: {steady:?}"
    );
    assert!(
        busy.iter().any(|(_, _, m)| *m == "running"),
        "the master's upgrade was never seen running: {steady:?}"
    );
    assert!(
        busy.iter().all(|(c, _, _)| *c == Some(true)),
        "the cron was on during an upgrade: {steady:?}"
    );
    // Never both at once; the master only once the slave had finished.
    assert!(
        samples
            .iter()
            .all(|(_, s, m)| *m == "none" || *s == "finished"),
        "the master started before the slave had finished: {samples:?}"
    );
    // At the end: the cron back on, the replication run once, cron off then.
    assert_eq!(cron_off(&master), Some(false));
    assert_eq!(
        sh(&master, "cat /root/replication.log").trim(),
        format!("replicated to {}, cron off", slave.addr())
    );

    // From the hosts' own journals: the slave's run committed before the
    // master's started, each host upgraded once, to 1.2.4.
    let s_runs = host_runs(&slave);
    let m_runs = host_runs(&master);
    assert_eq!(
        (s_runs.len(), m_runs.len()),
        (1, 1),
        "{s_runs:?} {m_runs:?}"
    );
    for r in [&s_runs[0], &m_runs[0]] {
        assert_eq!(r["state"], "committed", "{r}");
        assert_eq!(r["to"], "1.2.4", "{r}");
    }
    let slave_done = s_runs[0]["finished_at"].as_str().unwrap().to_string();
    let master_started = m_runs[0]["started_at"].as_str().unwrap().to_string();
    assert!(
        slave_done < master_started,
        "slave finished {slave_done}, master started {master_started}"
    );
    for h in [&master, &slave] {
        assert_eq!(
            sh(h, "cat /usr/share/xivo/XIVO-VERSION").trim(),
            "1.2.4",
            "{}",
            h.name()
        );
    }
    let j = status_json(&state, &tb);
    assert_eq!(j["state"], "done", "{j}");
    drop(dir);
    drop(mirror);
    tb.teardown().expect("teardown");
}

// ---------------------------------------------------------------------
// A secret is never put on a command line.

#[test]
fn a_secret_inventory_variable_that_is_a_fact_is_refused_before_anything() {
    let dir = scratch("secret");
    let state = dir.0.join("state");
    let d = dir.0.join("recipe");
    std::fs::create_dir_all(&d).unwrap();
    let recipe_text = DEMO
        .replace("{SLEEP}", "0")
        .replace("{FLEET}", "")
        .replace("{BATCH}", "1")
        .replace(
            "{FACTS}",
            "\n[[facts]]\nname = \"api_token\"\ndefault = \"\"\n",
        );
    std::fs::write(d.join("recipe.toml"), recipe_text).unwrap();
    let inv = dir.0.join("inventory.toml");
    std::fs::write(
        &inv,
        "[hosts.web1]\nroles = [\"web\"]\nvars = { api_token = \"s3cret-value\" }\n",
    )
    .unwrap();
    let mut c = hoist_in(&state);
    c.args(["fleet", "upgrade", "--yes", "-i"])
        .arg(&inv)
        .arg("-r")
        .arg(&d)
        .stdin(Stdio::null());
    let out = bounded(c);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(
            "host web1: variable `api_token` is a fact of the recipe and looks like a secret"
        ),
        "{said}"
    );
    assert!(!said.contains("s3cret-value"), "{said}");
    // No rollout was journaled.
    let mut c = hoist_in(&state);
    c.args(["fleet", "status"]);
    let st = bounded(c);
    assert!(text(&st).contains("no fleet rollout"), "{}", text(&st));
}

// ---------------------------------------------------------------------
// Bench (b) of issue 7: the same rolling upgrade of 6 hosts by hoist and
// by an equivalent Ansible playbook (`serial`, `max_fail_percentage`).
// `scripts/bench-fleet-ansible` runs it.

const PLAYBOOK: &str = r#"- hosts: web
  serial: [1, 2, "50%"]
  max_fail_percentage: 40
  gather_facts: false
  tasks:
    - block:
        - name: install
          shell: "sleep 1; echo {{ site }} > /etc/demo/SITE; echo 2.0 > /etc/demo/VERSION"
        - name: health-check
          command: test ! -e /etc/demo/broken
          register: health
          retries: 2
          delay: 1
          until: health.rc == 0
      rescue:
        - name: undo install
          shell: echo 1.0 > /etc/demo/VERSION
        - name: failed
          fail:
            msg: health check failed; rolled back
"#;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[test]
#[ignore = "bench: scripts/bench-fleet-ansible"]
fn bench_rolling_upgrade_against_ansible() {
    let (tb, names) = web_site(6);
    let dir = scratch("bench");
    let recipe = demo_recipe(&dir.0, 1, "max_fail_percentage = 40", r#"[1, 2, "50%"]"#);
    let inv = web_inventory(&dir.0, &names);
    let ini: String = std::iter::once("[web]\n".to_string())
        .chain(names.iter().map(|n| format!("{n} site=site-of-{n}\n")))
        .collect();
    let ini_path = dir.0.join("inventory.ini");
    std::fs::write(&ini_path, ini).unwrap();
    let book = dir.0.join("playbook.yml");
    std::fs::write(&book, PLAYBOOK).unwrap();
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let reset = |broken: bool| {
        for h in tb.hosts() {
            sh(
                &h,
                "echo 1.0 > /etc/demo/VERSION; rm -rf /var/lib/hoist /etc/demo/broken /etc/demo/SITE",
            );
        }
        if broken {
            sh(&tb.host("web3").unwrap(), "touch /etc/demo/broken");
        }
    };
    let upgraded = || {
        names
            .iter()
            .filter(|n| version(&tb.host(n).unwrap()) == "2.0")
            .count()
    };
    for (scenario, broken, want) in [("all succeed", false, 6), ("web3 fails", true, 2)] {
        let (mut hoist_s, mut ansible_s) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            reset(broken);
            let state = dir.0.join(format!("state-{scenario}-{round}"));
            let t = Instant::now();
            let out = bounded(fleet(
                &state,
                &tb,
                &[
                    "upgrade",
                    "-i",
                    inv.to_str().unwrap(),
                    "-r",
                    recipe.to_str().unwrap(),
                    "--yes",
                ],
            ));
            hoist_s.push(t.elapsed().as_secs_f64());
            assert_eq!(out.status.success(), !broken, "{}", text(&out));
            assert_eq!(upgraded(), want, "hoist, {scenario}");

            reset(broken);
            let mut c = Command::new("ansible-playbook");
            c.arg("-i")
                .arg(&ini_path)
                .arg(&book)
                .env(
                    "ANSIBLE_SSH_ARGS",
                    format!(
                        "-F {} -o ControlMaster=auto -o ControlPersist=60s",
                        tb.ssh_config().display()
                    ),
                )
                .env("ANSIBLE_PIPELINING", "True")
                .env("ANSIBLE_PYTHON_INTERPRETER", "/usr/bin/python3")
                .env("ANSIBLE_HOST_KEY_CHECKING", "False")
                .env("ANSIBLE_FORKS", "10")
                .env("ANSIBLE_LOCAL_TEMP", dir.0.join("ansible-tmp"))
                .stdin(Stdio::null());
            let t = Instant::now();
            let out = bounded(c);
            ansible_s.push(t.elapsed().as_secs_f64());
            assert_eq!(out.status.success(), !broken, "{}", text(&out));
            assert_eq!(upgraded(), want, "ansible, {scenario}");
        }
        let (h, a) = (median(hoist_s.clone()), median(ansible_s.clone()));
        println!(
            "bench fleet (6 hosts, batches [1, 2, 50%], {scenario}): hoist {h:.2} s, ansible-playbook {a:.2} s, hoist/ansible {:.2} (medians of {rounds}; hoist {hoist_s:.2?}, ansible {ansible_s:.2?})",
            h / a
        );
    }
    drop(dir);
    tb.teardown().expect("teardown");
}
