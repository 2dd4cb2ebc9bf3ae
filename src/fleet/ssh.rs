//! `SshTransport`: the fleet's hosts reached with OpenSSH (`crate::ssh`).
//!
//! Per host one master connection. Before anything runs there, hoist's own
//! binary and the recipe's directory (a tar stream) are copied into the
//! rollout's directory on the host (`/var/lib/hoist/fleet/<tag>/`), each
//! checked by the SHA-256 the host computes (`Session::put`); a copy
//! already there with the right sum is kept, so a resume copies nothing.
//! The host then runs its own upgrade with that binary (issue 7: "hoist
//! copies its own binary and the recipe to each host ... runs the host
//! upgrade there with JSON events streamed back").
//!
//! The host's upgrade is started in its own session (`setsid`) writing its
//! events to a file that `tail` streams back: a controller killed, or a
//! connection cut, never kills an upgrade halfway; the host finishes or
//! rolls back by its own journal, and `status`/`follow` read that journal
//! (`hoist status --json`, whose run carries this rollout's tag).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::events::{self, Upgrade};
use super::inventory::Inventory;
use super::plan::{FleetPlan, HostRef};
use super::transport::{
    HostEvent, HostJob, HostResult, HostRollback, OnceJob, RemoteStatus, Transport,
};
use crate::output::wire::{self, Event, Unread};
use crate::recipe::Recipe;
use crate::recipe::facts::is_secret;
use crate::ssh::{Session, Target};

/// Where rollouts' copies live on a host.
pub const REMOTE_ROOT: &str = "/var/lib/hoist/fleet";

#[derive(Clone, Debug)]
pub struct Settings {
    pub ssh: crate::ssh::Options,
    /// The hoist binary copied to the hosts.
    pub binary: PathBuf,
    /// Bound on one host's upgrade (and on following it after a resume):
    /// past it the host is `Lost`.
    pub host_timeout: Duration,
    /// Bound on copying the binary and the recipe to one host.
    pub copy_timeout: Duration,
    /// How often `follow` asks a host's journal.
    pub poll: Duration,
}

/// What is copied to every host, read once.
struct Payload {
    binary: Vec<u8>,
    binary_sha: String,
    tar: Vec<u8>,
    tar_sha: String,
    /// The recipe's file name inside its directory.
    recipe_file: String,
}

pub struct SshTransport {
    settings: Settings,
    /// This rollout on the hosts: the controller's rollout id and its
    /// plan's hash, so runs of another controller's rollout 1 differ.
    tag: String,
    dir: String,
    payload: Payload,
    /// Per host: `--role` and `--fact` arguments.
    args: HashMap<String, Vec<String>>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// Hosts whose copy was checked in this process.
    copied: Mutex<HashSet<String>>,
}

/// The tag of rollout `id` of `plan` on the hosts.
pub fn tag(id: i64, plan: &FleetPlan) -> String {
    format!("{id}-{}", &plan.hash[..plan.hash.len().min(12)])
}

impl SshTransport {
    /// Reads the binary and packs the recipe's directory; works out each
    /// host's roles and facts. Refuses an inventory variable that is a
    /// fact of the recipe and looks like a secret: facts travel in argv,
    /// which every user of the host can read.
    pub fn new(
        settings: Settings,
        recipe: &Recipe,
        inventory: &Inventory,
        plan: &FleetPlan,
    ) -> Result<SshTransport, String> {
        let binary = std::fs::read(&settings.binary)
            .map_err(|e| format!("the hoist binary {}: {e}", settings.binary.display()))?;
        let recipe_dir = recipe.dir();
        let recipe_file = recipe
            .source
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .ok_or("the recipe has no file name")?;
        let tar = pack(&recipe_dir)?;
        let mut args = HashMap::new();
        for h in &plan.hosts {
            let mut a = Vec::new();
            for r in &h.roles {
                if recipe.product.roles.is_empty() || recipe.product.roles.contains(r) {
                    a.push("--role".to_string());
                    a.push(r.clone());
                }
            }
            if let Some(inv) = inventory.host(&h.name) {
                for (k, v) in &inv.vars {
                    if !recipe.catalogue.contains(k) {
                        continue;
                    }
                    if is_secret(k) {
                        return Err(format!(
                            "host {}: variable `{k}` is a fact of the recipe and looks like a secret; \
                             hoist passes facts on the host's command line, where any user can read them: \
                             give it another way (a file only root reads, read by the recipe)",
                            h.name
                        ));
                    }
                    a.push("--fact".to_string());
                    a.push(format!("{k}={v}"));
                }
            }
            args.insert(h.name.clone(), a);
        }
        Ok(SshTransport {
            dir: String::new(),
            tag: String::new(),
            payload: Payload {
                binary_sha: hex::encode(Sha256::digest(&binary)),
                binary,
                tar_sha: hex::encode(Sha256::digest(&tar)),
                tar,
                recipe_file,
            },
            args,
            settings,
            sessions: Mutex::new(HashMap::new()),
            copied: Mutex::new(HashSet::new()),
        })
    }

    /// Ties the transport to rollout `id` of `plan` (its tag and its
    /// directory on the hosts).
    pub fn for_rollout(mut self, id: i64, plan: &FleetPlan) -> SshTransport {
        self.tag = tag(id, plan);
        self.dir = format!("{REMOTE_ROOT}/{}", self.tag);
        self
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    fn hoist(&self) -> String {
        format!("{}/hoist", self.dir)
    }

    fn recipe(&self) -> String {
        format!("{}/recipe/{}", self.dir, self.payload.recipe_file)
    }

    /// The host's master connection, opened on first use.
    fn session(&self, host: &HostRef) -> Result<Arc<Session>, String> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = sessions.get(&host.name) {
            return Ok(Arc::clone(s));
        }
        let s = Arc::new(Session::open(
            Target {
                host: host.address.clone(),
                user: host.user.clone(),
                port: host.port,
                key: host.key.clone(),
            },
            &self.settings.ssh,
        )?);
        sessions.insert(host.name.clone(), Arc::clone(&s));
        Ok(s)
    }

    /// Forgets a connection that failed: the next use opens a new one.
    fn drop_session(&self, host: &HostRef) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&host.name);
        self.copied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&host.name);
    }

    /// The binary and the recipe in the rollout's directory on the host,
    /// each checked by its SHA-256 there; what is already right is kept.
    fn ensure_copy(&self, host: &HostRef, s: &Session) -> Result<(), String> {
        if self
            .copied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&host.name)
        {
            return Ok(());
        }
        let t = self.settings.copy_timeout;
        let have = s.run(
            &[
                "sh",
                "-c",
                "umask 077; mkdir -p \"$1\" && cd \"$1\" && \
                 { sha256sum hoist recipe.tar 2>/dev/null; test -d recipe && echo dir; true; }",
                "hoist-copy",
                &self.dir,
            ],
            None,
            t,
        )?;
        if !have.success() {
            return Err(format!(
                "cannot make {} on {}: {}",
                self.dir,
                host.name,
                have.stderr.trim()
            ));
        }
        let has = |sum: &str, file: &str| {
            have.stdout
                .lines()
                .any(|l| l.split_whitespace().eq([sum, file]))
        };
        if !has(&self.payload.binary_sha, "hoist") {
            s.put(&self.payload.binary, &self.hoist(), 0o755, t)?;
        }
        let unpacked = has(&self.payload.tar_sha, "recipe.tar") && have.stdout.contains("\ndir");
        if !unpacked {
            let tar = format!("{}/recipe.tar", self.dir);
            s.put(&self.payload.tar, &tar, 0o600, t)?;
            let out = s.run(
                &[
                    "sh",
                    "-c",
                    "set -e; cd \"$1\"; rm -rf recipe.new; mkdir recipe.new; \
                     tar -xf recipe.tar -C recipe.new --no-same-owner; rm -rf recipe; mv recipe.new recipe",
                    "hoist-copy",
                    &self.dir,
                ],
                None,
                t,
            )?;
            if !out.success() {
                return Err(format!(
                    "unpacking the recipe on {}: {}",
                    host.name,
                    out.stderr.trim()
                ));
            }
        }
        self.copied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.name.clone());
        Ok(())
    }

    fn upgrade_argv(&self, host: &HostRef, job: &HostJob) -> Vec<String> {
        let mut argv = vec![
            self.hoist(),
            "--json".into(),
            "upgrade".into(),
            "--yes".into(),
            "-r".into(),
            self.recipe(),
            "--rollout".into(),
            self.tag.clone(),
        ];
        if let Some(t) = &job.target {
            argv.push("--to".into());
            argv.push(t.clone());
        }
        for gate in super::transport::confirmed_on(&job.confirm, &host.name) {
            argv.push("--confirm".into());
            argv.push(gate);
        }
        argv.extend(self.args.get(&host.name).cloned().unwrap_or_default());
        argv
    }

    /// Reads the lines of the upgrade's output the stream did not bring
    /// (it was cut, or `tail` stopped before the last write).
    fn rest(&self, s: &Session, u: &mut Upgrade, events: &mut dyn FnMut(HostEvent)) {
        let from = (u.lines + 1).to_string();
        let file = format!("{}/upgrade.jsonl", self.dir);
        if let Ok(out) = s.run(
            &["tail", "-n", &format!("+{from}"), &file],
            None,
            self.settings.copy_timeout,
        ) && out.success()
        {
            for l in out.stdout.lines() {
                if let Some(e) = u.line(l) {
                    events(e);
                }
            }
        }
    }

    fn upgrade_on(
        &self,
        host: &HostRef,
        job: &HostJob,
        events: &mut dyn FnMut(HostEvent),
    ) -> Result<HostResult, String> {
        self.launch(host, &self.upgrade_argv(host, job), events)
    }

    /// Runs `argv` (hoist's `upgrade` or `resume`) on the host, detached,
    /// and reads its events to its end.
    fn launch(
        &self,
        host: &HostRef,
        argv: &[String],
        events: &mut dyn FnMut(HostEvent),
    ) -> Result<HostResult, String> {
        let s = self.session(host)?;
        self.ensure_copy(host, &s)?;
        // `setsid`: the upgrade outlives this connection and the
        // controller; `tail --pid` streams its events until it exits.
        let script = "cd \"$1\" || exit 97; shift; : > upgrade.jsonl; \
             setsid \"$@\" </dev/null >upgrade.jsonl 2>upgrade.err & pid=$!; \
             tail -n +1 -s 0.2 --pid=$pid -f upgrade.jsonl; wait $pid; rc=$?; \
             echo \"hoist-exit $rc\" >&2; tail -n 5 upgrade.err >&2; exit $rc";
        let mut all: Vec<&str> = vec!["sh", "-c", script, "hoist-fleet", &self.dir];
        all.extend(argv.iter().map(String::as_str));
        let mut u = Upgrade::default();
        let started = Instant::now();
        let code = s.stream_err(&all, self.settings.host_timeout, &mut |l| {
            if let Some(e) = u.line(l) {
                events(e);
            }
        });
        match code {
            Ok((Some(code), stderr)) => {
                if u.finished.is_none() {
                    self.rest(&s, &mut u, events);
                }
                Ok(u.result(Some(code), &stderr))
            }
            Ok((None, _)) => Ok(HostResult::Lost(format!(
                "no end within {} (the host goes on by its own journal)",
                humantime::format_duration(started.elapsed())
            ))),
            Err(e) => {
                self.drop_session(host);
                Ok(HostResult::Lost(e))
            }
        }
    }

    /// The host's journal, read for this rollout.
    fn status_of(&self, host: &HostRef) -> Result<RemoteStatus, String> {
        let s = self.session(host)?;
        let out = s.run(
            &[
                "sh",
                "-c",
                // No copy of hoist (the controller died while copying):
                // nothing of this rollout ran there.
                "cd \"$1\" 2>/dev/null && test -x hoist || { echo '{\"runs\":0}'; exit 0; }; \
                 test -e upgrade.jsonl && echo launched >&2; exec ./hoist --json status",
                "hoist-status",
                &self.dir,
            ],
            None,
            self.settings.copy_timeout,
        );
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                self.drop_session(host);
                return Err(e);
            }
        };
        if !out.success() {
            return Err(format!(
                "hoist status on {}: {}",
                host.name,
                out.stderr.trim()
            ));
        }
        events::status(&out.stdout, &self.tag, out.stderr.contains("launched"))
    }
}

impl Transport for SshTransport {
    fn upgrade(
        &self,
        host: &HostRef,
        job: &HostJob,
        events: &mut dyn FnMut(HostEvent),
    ) -> HostResult {
        match self.upgrade_on(host, job, events) {
            Ok(r) => r,
            // Nothing ran there: the connection or the copy failed.
            Err(e) => {
                self.drop_session(host);
                HostResult::Lost(e)
            }
        }
    }

    fn resume(
        &self,
        host: &HostRef,
        job: &HostJob,
        events: &mut dyn FnMut(HostEvent),
    ) -> HostResult {
        let mut argv = vec![self.hoist(), "--json".into(), "resume".into()];
        for gate in super::transport::confirmed_on(&job.confirm, &host.name) {
            argv.push("--confirm".into());
            argv.push(gate);
        }
        match self.launch(host, &argv, events) {
            Ok(r) => r,
            Err(e) => {
                self.drop_session(host);
                HostResult::Lost(e)
            }
        }
    }

    fn status(&self, host: &HostRef, _job: &HostJob) -> RemoteStatus {
        match self.status_of(host) {
            Ok(s) => s,
            // Unreachable now: followed, bounded, until it answers.
            Err(_) => RemoteStatus::Running,
        }
    }

    fn follow(
        &self,
        host: &HostRef,
        job: &HostJob,
        events: &mut dyn FnMut(HostEvent),
    ) -> HostResult {
        let deadline = Instant::now() + self.settings.host_timeout;
        let mut last_error = String::from("no answer");
        let mut said = false;
        loop {
            match self.status_of(host) {
                Ok(RemoteStatus::Ended(r)) => return r,
                Ok(RemoteStatus::NotStarted) => {
                    // Ours ended before it made a run (a refusal): its
                    // output says why; started again, it would say it again.
                    return self.upgrade(host, job, events);
                }
                Ok(RemoteStatus::Running) => {
                    if !said {
                        events(HostEvent::Note {
                            text: "still upgrading: following its journal".into(),
                        });
                        said = true;
                    }
                }
                Err(e) => last_error = e,
            }
            if Instant::now() >= deadline {
                return HostResult::Lost(format!(
                    "not ended within {}: {last_error}",
                    humantime::format_duration(self.settings.host_timeout)
                ));
            }
            std::thread::sleep(self.settings.poll);
        }
    }

    fn run_once(
        &self,
        host: &HostRef,
        job: &OnceJob<'_>,
        events: &mut dyn FnMut(HostEvent),
    ) -> Result<(), String> {
        let s = self.session(host)?;
        self.ensure_copy(host, &s)
            .inspect_err(|_| self.drop_session(host))?;
        // The action on stdin: what it carries is never in argv.
        let action = serde_json::to_vec(job.action).map_err(|e| e.to_string())?;
        let hoist = self.hoist();
        let recipe = self.recipe();
        // Progress lines (a long wait, a followed log) are shown as they
        // come; the last JSON line is the answer.
        let mut said: Option<Result<(bool, Option<String>), String>> = None;
        let mut on_line = |line: &str| match wire::read::<Event>(line) {
            Ok(l) => match l.event {
                Event::StepProgress { line, .. } => events(HostEvent::Note {
                    text: format!("{}: {line}", job.id),
                }),
                Event::ActionFinished { ok, error, .. } => said = Some(Ok((ok, error))),
                _ => {}
            },
            Err(Unread::NotAnEvent) => {}
            Err(e) => said = Some(Err(e.to_string())),
        };
        let mut argv = vec![
            hoist.as_str(),
            "fleet-action",
            "-r",
            &recipe,
            "--id",
            job.id,
        ];
        if job.confirmed(&host.name) {
            argv.push("--confirmed");
        }
        if let Some(step) = job.step {
            argv.extend(["--step", step, "--rollout", &self.tag]);
        }
        let (code, stderr) = s
            .stream_fed(
                &argv,
                Some(&action),
                self.settings.host_timeout,
                &mut on_line,
            )
            .inspect_err(|_| self.drop_session(host))?;
        if code.is_none() {
            return Err(format!(
                "no end within {}",
                humantime::format_duration(self.settings.host_timeout)
            ));
        }
        match said {
            Some(Ok((true, _))) => Ok(()),
            Some(Ok((false, error))) => Err(error.unwrap_or_else(|| "failed".to_string())),
            Some(Err(why)) => Err(why),
            None => Err(format!(
                "hoist fleet-action on {}: {}",
                host.name,
                stderr.lines().last().unwrap_or("no answer")
            )),
        }
    }

    fn rollback(&self, host: &HostRef, _job: &HostJob) -> Result<HostRollback, String> {
        let s = self.session(host)?;
        self.ensure_copy(host, &s)
            .inspect_err(|_| self.drop_session(host))?;
        // `setsid` and a file: a connection cut mid-rollback does not kill
        // it (a write to a closed pipe would); asked again, the host's
        // lock says it still runs, then its journal that it is done.
        let script = "cd \"$1\" || exit 97; shift; \
             setsid -w \"$@\" </dev/null >rollback.jsonl 2>rollback.err; rc=$?; \
             cat rollback.jsonl; tail -n 5 rollback.err >&2; exit $rc";
        let hoist = self.hoist();
        let argv = [
            "sh",
            "-c",
            script,
            "hoist-fleet",
            &self.dir,
            &hoist,
            "--json",
            "rollback",
            "--rollout",
            &self.tag,
        ];
        let out = s
            .run(&argv, None, self.settings.host_timeout)
            .inspect_err(|_| self.drop_session(host))?;
        if out.timed_out() {
            return Err(format!(
                "no end within {} (the rollback goes on there; `hoist fleet rollback` again asks it)",
                humantime::format_duration(self.settings.host_timeout)
            ));
        }
        events::rollback(&out.stdout, &out.stderr, out.status.and_then(|s| s.code()))
    }
}

impl Drop for SshTransport {
    fn drop(&mut self) {
        // Each session closes its master connection when dropped.
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// The recipe's directory as a tar stream, made the same way each time
/// (names sorted, owners and times fixed) so its SHA-256 tells a copy
/// already on a host. Through a file: `process::run` keeps text, a tar is
/// bytes.
fn pack(dir: &Path) -> Result<Vec<u8>, String> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let file = std::env::temp_dir().join(format!("hoist-recipe-{}.tar", std::process::id()));
    let out = crate::sys::process::run(
        std::process::Command::new("tar")
            .arg("-C")
            .arg(dir)
            .args([
                "--sort=name",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "--mtime=@0",
                "--exclude=.git",
                "-cf",
            ])
            .arg(&file)
            .arg("."),
        Duration::from_secs(120),
    )
    .map_err(|e| format!("tar of {}: {e}", dir.display()));
    let bytes = std::fs::read(&file);
    let _ = std::fs::remove_file(&file);
    let out = out?;
    if !out.success() {
        return Err(format!("tar of {}: {}", dir.display(), out.stderr.trim()));
    }
    bytes.map_err(|e| format!("{}: {e}", file.display()))
}
