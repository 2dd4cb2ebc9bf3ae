//! The demo itself: set up (or reuse) a demo directory, run `hoist upgrade`
//! on its recipe as a child, and report what is served afterwards.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::DemoArgs;
use super::durable::{self, Context, Res};
use super::layout::{self, Config, Layout};
use super::{ops, server, setup};

/// What the service shows: for the reports before and after.
struct Snapshot {
    served: Option<String>,
    health: Option<u16>,
    rows: Option<usize>,
}

fn snapshot(config: &Config) -> Snapshot {
    let json = |path: &str| {
        server::get(config.port, path)
            .ok()
            .map(|(code, body)| (code, serde_json::from_str::<serde_json::Value>(&body).ok()))
    };
    let health = json("/health");
    let rows = json("/rows").and_then(|(_, v)| Some(v?.get("rows")?.as_array()?.len()));
    Snapshot {
        served: health
            .as_ref()
            .and_then(|(_, v)| Some(v.as_ref()?.get("version")?.as_str()?.to_string())),
        health: health.map(|(code, _)| code),
        rows,
    }
}

impl Snapshot {
    fn describe(&self, port: u16) -> String {
        match (&self.served, self.health) {
            (Some(v), Some(200)) => format!("version {v} at http://127.0.0.1:{port}/ (healthy)"),
            (Some(v), Some(code)) => {
                format!("version {v} at http://127.0.0.1:{port}/ (unhealthy: HTTP {code})")
            }
            _ => format!("nothing answers at http://127.0.0.1:{port}/"),
        }
    }
}

/// A line of the demo's own report: on stdout, or with `--json` on stderr
/// (stdout is then the run's JSON Lines events only).
macro_rules! say {
    ($json:expr) => {
        if $json {
            errln!("")
        } else {
            outln!()
        }
    };
    ($json:expr, $($t:tt)*) => {
        if $json {
            errln!($($t)*)
        } else {
            outln!($($t)*)
        }
    };
}

pub fn demo(args: &DemoArgs, json: bool) -> Res<u8> {
    let hoist = std::env::current_exe().ctx(|| "find the hoist binary".to_string())?;
    let layout = Layout::new(&choose_dir(args.dir.as_deref())?);
    let dir = layout.dir.display().to_string();
    let fresh = !layout.recipe().exists();
    if fresh {
        setup::setup(&layout, &hoist)?;
        say!(
            json,
            "hoist demo: set up v{} of the demo product in {dir}",
            layout::V1
        );
    } else {
        say!(json, "hoist demo: using the demo already set up in {dir}");
    }
    let steps = step_ids(&layout)?;
    if let Some(step) = &args.fail_at
        && !steps.contains(step)
    {
        return Err(format!(
            "--fail-at {step}: the demo recipe has no such step (its steps: {})",
            steps.join(", ")
        ));
    }
    if fresh {
        let started = Command::new(&hoist)
            .args(["demo-internal", "start", "--dir", &dir])
            .stdin(Stdio::null())
            // With `--json`, stdout is the run's events only.
            .stdout(if json {
                crate::output::out::stderr_for_child()
            } else {
                Stdio::inherit()
            })
            .status()
            .ctx(|| "start the demo service".to_string())?;
        if !started.success() {
            return Err(format!(
                "the demo service did not start: see {}",
                layout.server_log().display()
            ));
        }
    }
    let config = Config::load(&layout)?;
    let before = snapshot(&config);
    say!(json, "  before:   {}", before.describe(config.port));
    say!(json, "  data:     {}", count(&before, &config));
    say!(json);

    let code = upgrade(&hoist, &layout, args.fail_at.as_deref(), json)?;

    let after = snapshot(&config);
    say!(json);
    let state = layout.state().display().to_string();
    let outcome = match (code, &args.fail_at) {
        (0, _) => "the upgrade succeeded".to_string(),
        // Killed: the journal knows where it stopped.
        (129.., _) => format!(
            "the upgrade was killed (signal {}): `hoist resume --state-dir {state}` finishes it, \
             `hoist rollback --state-dir {state}` puts v{} back",
            code - 128,
            layout::V1
        ),
        (_, Some(step)) => format!("step `{step}` failed, as asked (exit {code})"),
        _ => format!("the upgrade failed (exit {code})"),
    };
    say!(json, "hoist demo: {outcome}");
    say!(json, "  serving:  {}", after.describe(config.port));
    let schema = ops::open_read_only(&config.data)
        .and_then(|db| ops::schema(&db))
        .map_or_else(|e| e, |s| format!("schema {s}"));
    say!(
        json,
        "  data:     {} ({} before), {schema}",
        count(&after, &config),
        count(&before, &config)
    );
    say!(
        json,
        "  state:    {state} (hoist status --state-dir {state})"
    );
    match newest_log(&layout.state()) {
        Some(log) => say!(json, "  run log:  {}", log.display()),
        None => say!(
            json,
            "  run log:  none found under {}",
            layout.state().display()
        ),
    }
    if server::running(&layout).is_some() {
        say!(
            json,
            "  service:  stops by itself after {} minutes idle, or: hoist demo-internal stop --dir {dir}",
            server::IDLE.as_secs() / 60
        );
    }
    Ok(code)
}

/// "N rows" as served, or as in the data file when nothing serves them.
fn count(snap: &Snapshot, config: &Config) -> String {
    match snap.rows {
        Some(n) => format!("{n} rows"),
        None => ops::open_read_only(&config.data)
            .and_then(|db| ops::row_count(&db))
            .map_or_else(
                |e| format!("rows unknown ({e})"),
                |n| format!("{n} rows in the file, not served"),
            ),
    }
}

/// Runs `hoist upgrade` on the demo's recipe, its output straight to the
/// admin's terminal; its exit code is the demo's.
fn upgrade(hoist: &Path, layout: &Layout, fail_at: Option<&str>, json: bool) -> Res<u8> {
    let mut cmd = Command::new(hoist);
    if json {
        cmd.arg("--json");
    }
    cmd.arg("upgrade")
        .arg("--yes")
        .arg("-r")
        .arg(layout.recipe())
        .arg("--state-dir")
        .arg(layout.state());
    if let Some(step) = fail_at {
        cmd.env("HOIST_TEST_FAIL_AT", step);
    }
    say!(
        json,
        "$ hoist upgrade --yes -r {} --state-dir {}{}",
        layout.recipe().display(),
        layout.state().display(),
        fail_at.map_or(String::new(), |s| format!("   (HOIST_TEST_FAIL_AT={s})"))
    );
    let mut child = cmd.spawn().ctx(|| "run hoist upgrade".to_string())?;
    // Ctrl-C reaches the whole foreground group: the upgrade handles it (a
    // clean stop, resumable); this process waits for it and still reports.
    let mut sigint = nix::sys::signal::SigSet::empty();
    sigint.add(nix::sys::signal::Signal::SIGINT);
    let _ = sigint.thread_block();
    let status = child.wait().ctx(|| "wait for hoist upgrade".to_string())?;
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => u8::try_from(c).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(1),
        _ => 1,
    })
}

/// `--dir` (created if absent; empty, or holding a demo already), or a new
/// directory under the system's temporary directory.
fn choose_dir(dir: Option<&Path>) -> Res<PathBuf> {
    let dir = match dir {
        Some(d) => {
            durable::mkdir_if_absent(d)?;
            let has_demo = d.join("recipe.toml").exists();
            let empty = std::fs::read_dir(d)
                .ctx(|| format!("read {}", d.display()))?
                .next()
                .is_none();
            if !has_demo && !empty {
                return Err(format!(
                    "{} is neither empty nor a demo directory: give a new or empty one",
                    d.display()
                ));
            }
            d.to_path_buf()
        }
        None => {
            let base = std::env::temp_dir();
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let d = base.join(format!("hoist-demo-{}-{nanos:x}", std::process::id()));
            std::fs::create_dir(&d).ctx(|| format!("create {}", d.display()))?;
            d
        }
    };
    std::fs::canonicalize(&dir).ctx(|| format!("resolve {}", dir.display()))
}

fn step_ids(layout: &Layout) -> Res<Vec<String>> {
    let loaded = crate::recipe::load(&layout.recipe())
        .ctx(|| format!("read {}", layout.recipe().display()))?;
    match &loaded.recipe {
        Some(recipe) => Ok(recipe.steps.iter().map(|s| s.id.clone()).collect()),
        None => {
            let problems: Vec<String> = loaded.errors().map(|p| p.render()).collect();
            Err(format!(
                "the demo recipe is invalid:\n{}",
                problems.join("\n")
            ))
        }
    }
}

/// The run log hoist wrote last: the newest `*.log` under the state dir
/// (the journal decides its name).
fn newest_log(state: &Path) -> Option<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    let mut dirs = vec![(state.to_path_buf(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() && depth < 3 {
                dirs.push((path, depth + 1));
            } else if path.extension().is_some_and(|e| e == "log")
                && let Ok(t) = meta.modified()
            {
                found.push((t, path));
            }
        }
    }
    found.into_iter().max().map(|(_, p)| p)
}
