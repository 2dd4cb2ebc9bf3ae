//! Prometheus metrics as a file for node_exporter's textfile collector: a
//! host's newest run (`hoist.prom`, from its report) and a controller's
//! newest rollout (`hoist_fleet.prom`), rewritten at each run's or
//! rollout's end. The directory is `HOIST_METRICS_DIR`, by default
//! node_exporter's as Debian packages it
//! (`/var/lib/prometheus/node-exporter`); nothing is written when it does
//! not exist (no node_exporter here), nor when the variable is empty.
//!
//! Prometheus' conventions: the `hoist_` prefix, base units (`_seconds`),
//! `_total` only for counters (there are none: each value is the newest
//! run's), `HELP` and `TYPE` before each family, an enumeration as one
//! series per value (1 for the one that holds), versions as labels of an
//! `_info` metric. The file is written beside its final name and renamed
//! over it, as the collector requires (it would read a half-written file).

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::output::report::Report;

/// node_exporter's textfile directory in Debian's package.
pub const DEFAULT_DIR: &str = "/var/lib/prometheus/node-exporter";

/// Where the files go: `HOIST_METRICS_DIR`, or the default; `None` when
/// that is empty or not a directory.
pub fn dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("HOIST_METRICS_DIR") {
        Some(d) if d.is_empty() => return None,
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(DEFAULT_DIR),
    };
    dir.is_dir().then_some(dir)
}

/// Writes `text` as `<dir>/<name>` crash-safely (temporary file beside it,
/// fsync, rename, fsync of the directory: `sys::fsutil::write_atomic`; the
/// temporary name does not end in `.prom`, so the collector skips it).
/// `Ok(None)`: no directory, nothing written.
pub fn write(name: &str, text: &str) -> Result<Option<PathBuf>, String> {
    let Some(dir) = dir() else { return Ok(None) };
    write_in(&dir, name, text).map(Some)
}

fn write_in(dir: &Path, name: &str, text: &str) -> Result<PathBuf, String> {
    let path = dir.join(name);
    crate::sys::fsutil::write_atomic(&path, text.as_bytes())
        .map_err(|e| format!("cannot write the metrics file {}: {e}", path.display()))?;
    Ok(path)
}

/// A label value in the exposition format.
fn label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// Seconds since the Unix epoch of an RFC 3339 time.
fn unix(t: &str) -> Option<f64> {
    let t = humantime::parse_rfc3339(t).ok()?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs_f64())
}

/// A family: its HELP and TYPE lines, then each `(labels, value)` sample.
fn family(o: &mut String, name: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} gauge");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(o, "{name} {value}");
        } else {
            let _ = writeln!(o, "{name}{{{labels}}} {value}");
        }
    }
}

/// One sample per value of an enumeration, 1 for `now`.
fn one_of(key: &str, all: &[&str], now: &str) -> Vec<(String, f64)> {
    all.iter()
        .map(|s| {
            (
                format!("{key}=\"{}\"", label(s)),
                if *s == now { 1.0 } else { 0.0 },
            )
        })
        .collect()
}

/// `hoist.prom` for the run of `r`; `run_states` and `step_states` every
/// state a run and a step may be in (`run::state`), so each has a series.
pub fn host(r: &Report, run_states: &[&str], step_states: &[&str]) -> String {
    let mut o = String::new();
    family(
        &mut o,
        "hoist_last_run_info",
        "The newest hoist run on this host: its id, product and versions (always 1).",
        &[(
            format!(
                "run=\"{}\",product=\"{}\",from=\"{}\",to=\"{}\"",
                r.run,
                label(&r.product),
                label(&r.from),
                label(&r.to)
            ),
            1.0,
        )],
    );
    family(
        &mut o,
        "hoist_last_run_state",
        "The newest run's state: 1 for the state it is in, 0 for the others.",
        &one_of("state", run_states, &r.state),
    );
    let mut times = Vec::new();
    if let Some(t) = unix(&r.started_at) {
        times.push((
            "hoist_last_run_start_time_seconds",
            "When the newest run started, in seconds since the Unix epoch.",
            t,
        ));
    }
    if let Some(t) = unix(r.finished_at.as_deref().unwrap_or(&r.updated_at)) {
        times.push((
            "hoist_last_run_end_time_seconds",
            "When the newest run reached its state, in seconds since the Unix epoch.",
            t,
        ));
    }
    if let Some(s) = r.seconds {
        times.push((
            "hoist_last_run_duration_seconds",
            "From the newest run's start to its state.",
            s,
        ));
    }
    for (name, help, v) in times {
        family(&mut o, name, help, &[(String::new(), v)]);
    }
    let steps: Vec<(String, f64)> = step_states
        .iter()
        .map(|s| {
            let n = r.steps.iter().filter(|x| x.state == *s).count();
            (format!("state=\"{}\"", label(s)), n as f64)
        })
        .collect();
    family(
        &mut o,
        "hoist_last_run_steps",
        "The newest run's steps by state (done, failed, ...).",
        &steps,
    );
    let phases: Vec<(String, f64)> = r
        .phases
        .iter()
        .map(|p| (format!("phase=\"{}\"", label(&p.phase)), p.seconds))
        .collect();
    family(
        &mut o,
        "hoist_last_run_phase_duration_seconds",
        "Time the newest run's steps of each phase took.",
        &phases,
    );
    // The product's version when the run's state says it: the target once
    // committed, the start where nothing was installed or all was undone.
    let version = match r.state.as_str() {
        "committed" => Some(&r.to),
        "prepared" | "rolled-back" => Some(&r.from),
        _ => None,
    };
    if let Some(v) = version {
        family(
            &mut o,
            "hoist_product_info",
            "The product's version as the newest run left it (always 1).",
            &[(
                format!("product=\"{}\",version=\"{}\"", label(&r.product), label(v)),
                1.0,
            )],
        );
    }
    o
}

/// What `hoist_fleet.prom` says of a rollout.
pub struct Rollout<'a> {
    pub id: i64,
    pub product: &'a str,
    pub target: &'a str,
    /// done, paused, stopped, failed, crashed.
    pub state: &'a str,
    /// Every state a rollout's end may be.
    pub states: &'a [&'a str],
    /// Each host's state, and every state a host may be in.
    pub hosts: Vec<&'a str>,
    pub host_states: &'a [&'a str],
    pub seconds: f64,
}

/// `hoist_fleet.prom` for a rollout that ended or paused.
pub fn fleet(r: &Rollout<'_>) -> String {
    let mut o = String::new();
    family(
        &mut o,
        "hoist_fleet_last_rollout_info",
        "The newest rollout this controller drove: its id, product and target (always 1).",
        &[(
            format!(
                "rollout=\"{}\",product=\"{}\",target=\"{}\"",
                r.id,
                label(r.product),
                label(r.target)
            ),
            1.0,
        )],
    );
    family(
        &mut o,
        "hoist_fleet_last_rollout_state",
        "How the newest rollout ended this time: 1 for its end, 0 for the others.",
        &one_of("state", r.states, r.state),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    family(
        &mut o,
        "hoist_fleet_last_rollout_end_time_seconds",
        "When the newest rollout ended or paused, in seconds since the Unix epoch.",
        &[(String::new(), now)],
    );
    family(
        &mut o,
        "hoist_fleet_last_rollout_duration_seconds",
        "How long the controller drove the newest rollout this time.",
        &[(String::new(), r.seconds)],
    );
    let hosts: Vec<(String, f64)> = r
        .host_states
        .iter()
        .map(|s| {
            let n = r.hosts.iter().filter(|h| *h == s).count();
            (format!("state=\"{}\"", label(s)), n as f64)
        })
        .collect();
    family(
        &mut o,
        "hoist_fleet_hosts",
        "The newest rollout's hosts by state.",
        &hosts,
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
    }

    #[test]
    fn every_family_has_help_and_type_and_a_state_is_one_of_all() {
        let r = Report {
            run: 4,
            product: "app".into(),
            from: "1.0".into(),
            to: "2.0".into(),
            state: "committed".into(),
            started_at: "2025-01-01T10:00:00.000Z".into(),
            updated_at: "2025-01-01T10:00:02.000Z".into(),
            seconds: Some(2.0),
            ..Report::default()
        };
        let text = host(&r, &["failed", "committed"], &["done"]);
        assert!(text.contains("hoist_last_run_state{state=\"committed\"} 1\n"));
        assert!(text.contains("hoist_last_run_state{state=\"failed\"} 0\n"));
        assert!(text.contains("hoist_product_info{product=\"app\",version=\"2.0\"} 1\n"));
        assert!(text.contains("hoist_last_run_start_time_seconds 1735725600\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
            assert!(text.contains(&format!("# TYPE {name} gauge")), "{name}");
        }
    }

    #[test]
    fn the_file_is_written_whole_and_no_temporary_is_left() {
        let dir = std::env::temp_dir().join(format!("hoist-metrics-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = write_in(&dir, "hoist.prom", "# HELP x y\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "# HELP x y\n");
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
