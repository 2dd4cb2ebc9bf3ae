//! A set of hosts on one test LAN, with their SSH files and the apt
//! repository they see, torn down as one: on drop, on panic (drop runs
//! while unwinding), and on SIGINT/SIGTERM (see signals.rs). A run killed
//! with SIGKILL is swept by the next run (see run.rs).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::cgroup;
use crate::error::{Error, IoContext, Result};
use crate::host::{BOOT_TIMEOUT, Host, REPO_KEYRING, REPO_MOUNT, SHUTDOWN_LOG, SHUTDOWN_UNIT};
use crate::image::{Image, ImageSpec};
use crate::mounts;
use crate::net::Lan;
use crate::nspawn::{self, State};
use crate::run::Run;
use crate::signals;
use crate::ssh::{self, KnownHost, SshFiles};
use crate::suite::Suite;

/// How to build a [`Testbed`].
#[derive(Debug, Default)]
pub struct TestbedBuilder {
    hosts: Vec<(String, ImageSpec)>,
    repo: Option<(PathBuf, PathBuf)>,
    boot: bool,
}

impl TestbedBuilder {
    /// Add a host with the default image of `suite`.
    pub fn host(self, name: &str, suite: Suite) -> Self {
        self.host_with(name, ImageSpec::new(suite))
    }

    /// Add a host with a custom image.
    pub fn host_with(mut self, name: &str, image: ImageSpec) -> Self {
        self.hosts.push((name.to_owned(), image));
        self
    }

    /// Make `repo` visible to every host (read-only at /srv/hoist-repo) and
    /// trust its signing key. Sources are chosen per host with
    /// [`Host::use_suites`].
    pub fn repo(mut self, repo: &crate::AptRepo) -> Self {
        self.repo = Some((repo.root().to_path_buf(), repo.keyring().to_path_buf()));
        self
    }

    /// Create the hosts but leave them powered off.
    pub fn powered_off(mut self) -> Self {
        self.boot = false;
        self
    }

    /// Build or reuse the images, create the LAN and hosts, boot them all in
    /// parallel and wait until each answers SSH.
    pub fn start(self) -> Result<Testbed> {
        crate::preflight::check()?;
        for (i, (name, _)) in self.hosts.iter().enumerate() {
            if !valid_name(name) || self.hosts[..i].iter().any(|(n, _)| n == name) {
                return Err(Error::Spec(format!("bad or duplicate host name {name:?}")));
            }
        }
        let mut images = Vec::new();
        for (_, spec) in &self.hosts {
            images.push(Image::ensure(spec)?);
        }
        signals::install()?;
        let run = Run::start()?;
        let inner = Arc::new(Inner {
            run,
            lan: Mutex::new(None),
            ssh: Mutex::new(None),
            hosts: Mutex::new(Vec::new()),
            torn_down: Mutex::new(false),
        });
        signals::register(&inner);
        // From here on, any error tears down what was made so far.
        let tb = Testbed { inner };
        tb.populate(&self, images)?;
        if self.boot {
            tb.boot_all()?;
        }
        Ok(tb)
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 32
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !n.starts_with('-')
}

/// Shared with the signal handler, which tears down every live testbed.
pub(crate) struct Inner {
    run: Run,
    lan: Mutex<Option<Lan>>,
    ssh: Mutex<Option<SshFiles>>,
    hosts: Mutex<Vec<Arc<Host>>>,
    torn_down: Mutex<bool>,
}

impl Inner {
    /// Kill every host and remove everything of the run. Idempotent.
    pub(crate) fn teardown(&self) -> Result<()> {
        let mut done = self.torn_down.lock().unwrap_or_else(|p| p.into_inner());
        if *done {
            return Ok(());
        }
        let hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for h in &hosts {
            // Throw-away hosts need no clean shutdown; a bounded power cut
            // is fast and cannot hang on a stuck unit.
            let _ = h.crash();
        }
        let result = self.run.remove();
        *done = true;
        result
    }
}

/// Booted test hosts; dropping it tears everything down.
pub struct Testbed {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Testbed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Testbed")
            .field("run", &self.inner.run.id)
            .field("hosts", &self.hosts())
            .finish()
    }
}

impl Testbed {
    /// Start describing a testbed.
    pub fn builder() -> TestbedBuilder {
        TestbedBuilder {
            boot: true,
            ..Default::default()
        }
    }

    /// Identity of this run (names its cgroups, netns records, run dir).
    pub fn run_id(&self) -> &str {
        &self.inner.run.id
    }

    /// Directory of this run under the cache.
    pub fn run_dir(&self) -> &Path {
        &self.inner.run.dir
    }

    /// The runner's own address on the test LAN: hosts reach servers the
    /// test starts there (e.g. a [`crate::Mirror`]).
    pub fn runner_addr(&self) -> Option<std::net::Ipv4Addr> {
        self.inner
            .lan
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(Lan::runner_addr)
    }

    /// All hosts, in the order they were added.
    pub fn hosts(&self) -> Vec<Arc<Host>> {
        self.inner
            .hosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> Result<Arc<Host>> {
        self.hosts()
            .into_iter()
            .find(|h| h.name() == name)
            .ok_or_else(|| Error::Spec(format!("no host named {name:?}")))
    }

    /// ssh_config naming every host: `ssh -F <this> <host> ...`, or hand it
    /// to hoist's fleet mode.
    pub fn ssh_config(&self) -> PathBuf {
        self.ssh_files().config
    }

    /// The run's client key, known_hosts and ssh_config.
    pub fn ssh_files(&self) -> SshFiles {
        self.inner
            .ssh
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| SshFiles {
                identity: PathBuf::new(),
                known_hosts: PathBuf::new(),
                config: PathBuf::new(),
            })
    }

    /// Power-cut `host` and power it on again; returns when it answers SSH.
    pub fn crash(&self, host: &Host) -> Result<()> {
        host.crash()?;
        host.boot()
    }

    /// Tear down now and report anything that could not be removed.
    pub fn teardown(self) -> Result<()> {
        let r = self.inner.teardown();
        signals::unregister(&self.inner);
        r
    }

    fn populate(&self, b: &TestbedBuilder, images: Vec<Image>) -> Result<()> {
        let run = &self.inner.run;
        let lan = Lan::reserve(&run.id)?;
        *self.inner.lan.lock().unwrap_or_else(|p| p.into_inner()) = Some(lan.clone());
        lan.create()?;
        let ssh = SshFiles::create(&run.dir)?;
        *self.inner.ssh.lock().unwrap_or_else(|p| p.into_inner()) = Some(ssh.clone());
        let authorized = ssh::public_key(&ssh.identity)?;
        let all: Vec<(String, std::net::Ipv4Addr)> = b
            .hosts
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.clone(), lan.host_addr(i as u32 + 1)))
            .collect();
        let mut known = Vec::new();
        for (i, ((name, _), image)) in b.hosts.iter().zip(images).enumerate() {
            let n = i as u32 + 1;
            let host = make_host(run, &lan, n, name, image, &ssh, b.repo.as_ref())?;
            let key = write_identity(&host, &authorized, &all)?;
            known.push(KnownHost {
                name: name.clone(),
                addr: host.addr,
                host_key: key,
            });
            self.inner
                .hosts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Arc::new(host));
        }
        ssh.write(&known)
    }

    fn boot_all(&self) -> Result<()> {
        let hosts = self.hosts();
        for h in &hosts {
            h.start()?;
        }
        // Wait in parallel so that N hosts cost one boot, not N.
        let results: Vec<Result<()>> = thread::scope(|s| {
            let handles: Vec<_> = hosts
                .iter()
                .map(|h| s.spawn(move || h.wait_ssh(BOOT_TIMEOUT)))
                .collect();
            handles
                .into_iter()
                .map(|j| {
                    j.join()
                        .unwrap_or_else(|_| Err(Error::Spec("boot panicked".into())))
                })
                .collect()
        });
        results.into_iter().collect()
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if let Err(e) = self.inner.teardown() {
            // Drop cannot return the error; the next run's sweep retries.
            eprintln!("hoist-testbed: teardown of {}: {e}", self.inner.run.id);
        }
        signals::unregister(&self.inner);
    }
}

/// Lay out host `n`: its netns, cgroups, overlay root and nspawn spec.
fn make_host(
    run: &Run,
    lan: &Lan,
    n: u32,
    name: &str,
    image: Image,
    ssh: &SshFiles,
    repo: Option<&(PathBuf, PathBuf)>,
) -> Result<Host> {
    let dir = run.dir.join("hosts").join(name);
    let (upper, work, root) = (dir.join("upper"), dir.join("work"), dir.join("root"));
    for d in [&upper, &work, &root] {
        fs::create_dir_all(d).ctx("create", d)?;
    }
    let netns = lan.add_host(n)?;
    let cgroups = cgroup::create(&run.id, name)?;
    mounts::mount_overlay(&image.rootfs(), &upper, &work, &root)?;
    let mut binds_ro = Vec::new();
    if let Some((repo_root, keyring)) = repo {
        binds_ro.push((repo_root.clone(), REPO_MOUNT.to_owned()));
        let dst = root.join(REPO_KEYRING.trim_start_matches('/'));
        if let Some(p) = dst.parent() {
            fs::create_dir_all(p).ctx("create", p)?;
        }
        fs::copy(keyring, &dst).ctx("copy", keyring)?;
    }
    Ok(Host {
        name: name.to_owned(),
        addr: lan.host_addr(n),
        image,
        root: root.clone(),
        spec: nspawn::Spec {
            machine: format!("{}-{name}", run.id),
            root,
            netns,
            cgroups,
            binds_ro,
            console_log: dir.join("console.log"),
        },
        ssh: ssh.clone(),
        state: Arc::new(Mutex::new(State::default())),
        supervisor: Mutex::new(None),
    })
}

/// Per-host identity, written into the host's own layer before first boot:
/// hostname, hosts file, machine-id, SSH host key, the runner's key.
/// Returns the public host key for known_hosts.
fn write_identity(
    host: &Host,
    authorized: &str,
    all: &[(String, std::net::Ipv4Addr)],
) -> Result<String> {
    let keydir = host.spec.console_log.with_file_name("hostkey");
    fs::create_dir_all(&keydir).ctx("create", &keydir)?;
    let key = keydir.join("ssh_host_ed25519_key");
    ssh::keygen(&key, &format!("root@{}", host.name))?;
    let public = ssh::public_key(&key)?;
    let private = fs::read(&key).ctx("read", &key)?;
    host.write_file("/etc/ssh/ssh_host_ed25519_key", &private, 0o600)?;
    host.write_file(
        "/etc/ssh/ssh_host_ed25519_key.pub",
        format!("{public}\n").as_bytes(),
        0o644,
    )?;
    host.write_file(
        "/etc/hostname",
        format!("{}\n", host.name).as_bytes(),
        0o644,
    )?;
    let mut hosts = String::from("127.0.0.1 localhost\n::1 localhost ip6-localhost\n");
    for (n, a) in all {
        hosts.push_str(&format!("{a} {n}\n"));
    }
    host.write_file("/etc/hosts", hosts.as_bytes(), 0o644)?;
    let id: String = fs::read_to_string("/proc/sys/kernel/random/uuid")
        .ctx("read", "/proc/sys/kernel/random/uuid")?
        .trim()
        .replace('-', "");
    host.write_file("/etc/machine-id", format!("{id}\n").as_bytes(), 0o444)?;
    let sshdir = host.root.join("root/.ssh");
    fs::create_dir_all(&sshdir).ctx("create", &sshdir)?;
    fs::set_permissions(&sshdir, fs::Permissions::from_mode(0o700)).ctx("chmod", &sshdir)?;
    host.write_file(
        "/root/.ssh/authorized_keys",
        format!("{authorized}\n").as_bytes(),
        0o600,
    )?;
    // Records each clean shutdown with its boot id, so tests can tell a
    // reboot (recorded) from a power cut (not recorded).
    host.write_file(
        &format!("/etc/systemd/system/{SHUTDOWN_UNIT}"),
        format!(
            "[Unit]\nDescription=record clean shutdowns for hoist-testbed\n\n\
             [Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n\
             ExecStop=/bin/sh -c 'cat /proc/sys/kernel/random/boot_id >> {SHUTDOWN_LOG}'\n\n\
             [Install]\nWantedBy=multi-user.target\n"
        )
        .as_bytes(),
        0o644,
    )?;
    let wants = host.root.join("etc/systemd/system/multi-user.target.wants");
    fs::create_dir_all(&wants).ctx("create", &wants)?;
    let link = wants.join(SHUTDOWN_UNIT);
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(format!("/etc/systemd/system/{SHUTDOWN_UNIT}"), &link)
        .ctx("symlink", &link)?;
    Ok(public)
}
