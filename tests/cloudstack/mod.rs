//! A CloudStack cloud on booted Debian hosts, for the end-to-end tests of
//! the shipped recipe (`recipes/cloudstack`): management servers, usage
//! servers, KVM hosts running the stand-in packages of one source version,
//! and a MariaDB host holding `cloud` and `cloud_usage` that the others
//! reach over the LAN (not in the inventory: hoist reaches it through
//! db.properties). Packages come from an HTTP mirror with the guide's
//! layout (`deb URL precise 4.3`), which the inventory names as the
//! recipe's `apt_repository` fact.
//!
//! ```ignore
//! let cloud = Cloud::build(&Topology::full(), "4.2.1", Template::Registered);
//! let out = cloud.upgrade(Some("4.3.2"));
//! ```
//! `Cloud::{testbed, inventory, state}` are what `hoist fleet` needs;
//! `cloudstack::FAIL_POSTINST` on a host makes its 4.3 management package
//! fail to configure (a real dpkg failure there).
// Each test binary uses a part of this.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hoist_testbed::products::cloudstack as cs;
use hoist_testbed::{AptRepo, Host, Mirror, Suite, Testbed};

use crate::common::{hoist_in, sh, small_hoist, text};

/// Every wait of these tests is bounded by this.
pub const BOUND: Duration = Duration::from_secs(420);
/// The mirror's name on the hosts; the inventory gives it as `apt_repository`.
pub const MIRROR: &str = "cloudstack-mirror.test";
/// The `cloud` user's password on the database server (db.properties).
pub const DB_PASSWORD: &str = "cloud-secret";
/// The encryption keys the admin gives `cloudstack-setup-encryption`.
pub const MS_KEY: &str = "ms-key-of-this-cloud";
pub const DB_KEY: &str = "db-key-of-this-cloud";

/// How many servers of each role.
#[derive(Clone, Copy, Debug)]
pub struct Topology {
    pub management: usize,
    pub usage: usize,
    pub kvm: usize,
}

impl Topology {
    /// Issue 8's cloud: 2 management servers, 1 usage server, 3 KVM hosts.
    pub fn full() -> Self {
        Topology {
            management: 2,
            usage: 1,
            kvm: 3,
        }
    }

    /// One of each.
    pub fn small() -> Self {
        Topology {
            management: 1,
            usage: 1,
            kvm: 1,
        }
    }
}

/// Whether the 4.3 system VM template is registered before the rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Template {
    Registered,
    Missing,
}

/// A cloud at one version, its testbed, mirror and scratch directory.
pub struct Cloud {
    // Field order: the testbed goes before the mirror and the repository.
    pub testbed: Testbed,
    pub mirror: Mirror,
    pub repo: AptRepo,
    pub version: String,
    /// The mirror as the hosts reach it (the `apt_repository` fact).
    pub mirror_url: String,
    pub scratch: Scratch,
    pub inventory: PathBuf,
    pub state: PathBuf,
    pub management: Vec<String>,
    pub usage: Vec<String>,
    pub kvm: Vec<String>,
    pub db: String,
}

/// A directory of the test's own (inventory, controller state), removed
/// at the end.
pub struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a command, killed after `BOUND`; its output.
pub fn bounded(mut c: Command) -> std::process::Output {
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hoist runs");
    finish(child)
}

/// A controller started in the background, killed if the test ends (a
/// failed assertion) before it does.
pub struct Running(Option<std::process::Child>);

impl Running {
    pub fn spawn(mut c: Command) -> Running {
        let child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hoist runs");
        Running(Some(child))
    }

    /// Its output, once it ends (killed after `BOUND`).
    pub fn finish(mut self) -> std::process::Output {
        finish(self.0.take().expect("running"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The child's output; killed if it is still there after `BOUND`.
pub fn finish(child: std::process::Child) -> std::process::Output {
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let d = Arc::clone(&done);
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

/// The runs in the host's own journal, read with the copied hoist.
pub fn host_runs(h: &Host) -> Vec<serde_json::Value> {
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

/// SQL on the database host as root; the first column of each row.
pub fn sql(db: &Host, query: &str) -> Vec<String> {
    let out = h_exec(
        db,
        &format!("mysql --batch --skip-column-names -e {}", shq(query)),
    );
    out.lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .collect()
}

fn h_exec(h: &Host, script: &str) -> String {
    let o = h.exec_unchecked(script).expect("exec");
    assert!(
        o.success(),
        "{}: {script}: {}{}",
        h.name(),
        o.stdout,
        o.stderr
    );
    o.stdout
}

/// Single-quoted for a shell.
pub fn shq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The installed version of `package` on `h` (empty when not installed).
pub fn dpkg_version(h: &Host, package: &str) -> String {
    sh(
        h,
        &format!(
            "dpkg-query -W -f '${{db:Status-Abbrev}}${{Version}}' {package} 2>/dev/null | sed -n 's/^ii //p' || true"
        ),
    )
    .trim()
    .to_string()
}

/// Whether anything of `package` is on the host: installed, or its
/// configuration files left (`rc`); not when purged or never installed.
pub fn dpkg_known(h: &Host, package: &str) -> bool {
    let st = sh(
        h,
        &format!("dpkg-query -W -f '${{db:Status-Abbrev}}' {package} 2>/dev/null || true"),
    );
    matches!(st.chars().nth(1), Some(c) if c != 'n')
}

impl Cloud {
    /// Boots the hosts of `topo` and installs CloudStack `version` on them
    /// (packages from the mirror, databases created by the first
    /// management server, then the rows a running cloud has), every service
    /// running. `name` prefixes the scratch directory.
    pub fn build(name: &str, topo: &Topology, version: &str, template: Template) -> Cloud {
        let mut repo = AptRepo::new().expect("repository");
        cs::add_to(&mut repo).expect("stand-in packages");
        repo.publish().expect("publish");
        let management: Vec<String> = (1..=topo.management).map(|i| format!("mgmt{i}")).collect();
        let usage: Vec<String> = (1..=topo.usage).map(|i| format!("usage{i}")).collect();
        let kvm: Vec<String> = (1..=topo.kvm).map(|i| format!("kvm{i}")).collect();
        let db = "db".to_string();
        let mut b = Testbed::builder().repo(&repo).host(&db, Suite::Bookworm);
        for h in management.iter().chain(&usage).chain(&kvm) {
            b = b.host(h, Suite::Bookworm);
        }
        let testbed = b.start().expect("testbed");
        // Testbeds of one test binary share the runner's address: each
        // mirror takes a free port of its own.
        let addr = testbed.runner_addr().expect("a LAN");
        let port = std::net::TcpListener::bind((addr, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mirror = Mirror::start(&repo.root(), addr, port, &[]).expect("mirror");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cloudstack-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cloud = Cloud {
            mirror_url: format!("http://{MIRROR}:{port}"),
            inventory: dir.join("inventory.toml"),
            state: dir.join("state"),
            testbed,
            mirror,
            repo,
            version: version.to_string(),
            scratch: Scratch(dir),
            management,
            usage,
            kvm,
            db,
        };
        cloud.database_server();
        std::thread::scope(|s| {
            let c = &cloud;
            for h in c.cloudstack_hosts() {
                s.spawn(move || c.install(&h));
            }
        });
        cloud.first_start();
        if template == Template::Registered {
            cloud.register_template();
        }
        cloud.write_inventory();
        cloud
    }

    pub fn host(&self, name: &str) -> Arc<Host> {
        self.testbed.host(name).expect("host")
    }

    pub fn db_host(&self) -> Arc<Host> {
        self.host(&self.db)
    }

    /// Every host of the inventory, in its order.
    pub fn cloudstack_hosts(&self) -> Vec<String> {
        self.management
            .iter()
            .chain(&self.usage)
            .chain(&self.kvm)
            .cloned()
            .collect()
    }

    fn role(&self, name: &str) -> &'static str {
        if self.management.iter().any(|n| n == name) {
            "management"
        } else if self.usage.iter().any(|n| n == name) {
            "usage"
        } else {
            "kvm"
        }
    }

    /// MariaDB on its own host (Debian's socket unit listens on port 3306
    /// of every address), with CloudStack's
    /// `cloud` user (cloudstack-setup-databases grants it the two
    /// databases and PROCESS).
    fn database_server(&self) {
        let db = self.db_host();
        h_exec(
            &db,
            &format!(
                "systemctl start mariadb && \
                 mysql -e \"CREATE USER 'cloud'@'%' IDENTIFIED BY '{DB_PASSWORD}'; \
                 GRANT ALL ON cloud.* TO 'cloud'@'%'; GRANT ALL ON cloud_usage.* TO 'cloud'@'%'; \
                 GRANT PROCESS ON *.* TO 'cloud'@'%'\""
            ),
        );
    }

    /// The stand-ins of `self.version` on one host, as its role needs.
    fn install(&self, name: &str) {
        let h = self.host(name);
        let v = &self.version;
        let (mgmt, usage, agent) = cs::names(v);
        let common = if cs::renamed(v) {
            "cloudstack-common"
        } else {
            "cloud-deps"
        };
        let db_addr = self.db_host().addr();
        self.mirror.alias_on(&h, MIRROR).expect("alias");
        // The local MariaDB of the image is not CloudStack's: the clients
        // of this host reach the database host (root-only option file).
        h_exec(
            &h,
            &format!(
                "systemctl disable --now mariadb >/dev/null 2>&1; \
                 install -m 0600 /dev/null /etc/mysql/conf.d/cloudstack.cnf && \
                 printf '[client]\\nhost = {db_addr}\\nuser = cloud\\npassword = {DB_PASSWORD}\\n' > /etc/mysql/conf.d/cloudstack.cnf && \
                 echo 'deb {url} {codename} {series}' > /etc/apt/sources.list.d/cloudstack.list && \
                 apt-get update -q >/dev/null",
                codename = cs::CODENAME,
                series = cs::series(v),
                url = self.mirror_url,
            ),
        );
        let pkg = match self.role(name) {
            "management" => mgmt,
            "usage" => usage,
            _ => agent,
        };
        h_exec(
            &h,
            &format!(
                "DEBIAN_FRONTEND=noninteractive apt-get install -q -y {pkg}={v} {common}={v} >/dev/null"
            ),
        );
        let etc = cs::etc(v);
        match self.role(name) {
            "management" => {
                // The admin's edit of the conffile: credentials, database host.
                h_exec(
                    &h,
                    &format!(
                        "f={etc}/management/db.properties; \
                         sed -i 's/^db.cloud.host=.*/db.cloud.host={db_addr}/; s/^db.usage.host=.*/db.usage.host={db_addr}/' $f && \
                         printf 'db.cloud.username=cloud\\ndb.cloud.password={DB_PASSWORD}\\ndb.usage.username=cloud\\ndb.usage.password={DB_PASSWORD}\\n' >> $f && \
                         chmod 0640 $f && \
                         install -d -m 0700 /root/cloudstack-keys && \
                         printf '{MS_KEY}' > /root/cloudstack-keys/management_server_key && \
                         printf '{DB_KEY}' > /root/cloudstack-keys/database_key && \
                         chmod 0600 /root/cloudstack-keys/*"
                    ),
                );
            }
            "kvm" => {
                // The host's identity and its bridge, added locally.
                h_exec(
                    &h,
                    &format!(
                        "printf 'host={name}\\nprivate.network.device=cloudVirBr100\\n' >> {etc}/agent/agent.properties"
                    ),
                );
            }
            _ => {}
        }
    }

    /// The first management server creates the databases; then the rows
    /// of a running cloud; then every service runs.
    fn first_start(&self) {
        let v = &self.version;
        let (ms, us, ag) = cs::services(v);
        let first = self.host(&self.management[0]);
        h_exec(&first, &format!("systemctl start {ms}"));
        let db = self.db_host();
        let stores = cs::cloud_schema_version(v) >= cs::cloud_schema_version("4.2.1");
        // The trailing slash of KVM local storage paths (seed L206-222)
        // comes with 4.1 and 4.2; the older sections have no such step.
        let local = if cs::renamed(v) {
            "/var/lib/libvirt/images/"
        } else {
            "/var/lib/libvirt/images"
        };
        let mut q = String::from(
            "INSERT INTO cloud.host (name, type, status, hypervisor_type) VALUES ('nfs-secondary', 'SecondaryStorage', 'Up', NULL);",
        );
        for k in &self.kvm {
            q.push_str(&format!(
                "INSERT INTO cloud.host (name, type, status, hypervisor_type) VALUES ('{k}', 'Routing', 'Up', 'KVM');\
                 INSERT INTO cloud.host_details (host_id, name, value) SELECT id, 'username', 'root' FROM cloud.host WHERE name = '{k}';\
                 INSERT INTO cloud.host_details (host_id, name, value) SELECT id, 'password', 'kvm-root-password' FROM cloud.host WHERE name = '{k}';\
                 INSERT INTO cloud.storage_pool (name, pool_type, path) VALUES ('{k}-local', 'Filesystem', '{local}');"
            ));
        }
        q.push_str(
            "INSERT INTO cloud.storage_pool (name, pool_type, path) VALUES ('primary', 'NetworkFilesystem', '/export/primary/');\
             INSERT INTO cloud.vm_instance (name, type) VALUES ('s-1-VM', 'SecondaryStorageVm'), ('v-2-VM', 'ConsoleProxy'), ('r-3-VM', 'DomainRouter'), ('i-2-4-VM', 'User');\
             INSERT INTO cloud.vm_template (name) VALUES ('systemvm-kvm-old');",
        );
        if stores {
            q.push_str(
                "INSERT INTO cloud.image_store (name, role, data_center_id) VALUES ('nfs-secondary', 'Image', 1);\
                 INSERT INTO cloud.template_store_ref (store_id, template_id, download_state) \
                 SELECT s.id, t.id, 'DOWNLOADED' FROM cloud.image_store s, cloud.vm_template t WHERE t.name = 'systemvm-kvm-old';",
            );
        } else {
            q.push_str(
                "INSERT INTO cloud.template_host_ref (host_id, template_id, download_state) \
                 SELECT h.id, t.id, 'DOWNLOADED' FROM cloud.host h, cloud.vm_template t WHERE h.name = 'nfs-secondary' AND t.name = 'systemvm-kvm-old';",
            );
        }
        sql(&db, &q);
        std::thread::scope(|s| {
            for n in self.management.iter().skip(1) {
                s.spawn(move || h_exec(&self.host(n), &format!("systemctl start {ms}")));
            }
            for n in &self.usage {
                s.spawn(move || h_exec(&self.host(n), &format!("systemctl start {us}")));
            }
            for n in &self.kvm {
                s.spawn(move || h_exec(&self.host(n), &format!("systemctl start {ag}")));
            }
        });
        for n in self.cloudstack_hosts() {
            let port = match self.role(&n) {
                "management" => cs::MANAGEMENT_PORT,
                "usage" => cs::USAGE_PORT,
                _ => cs::AGENT_PORT,
            };
            let (code, body) = self.host(&n).http_get(port, "/health").expect("health");
            assert_eq!(code, 200, "{n} at {v}: {body}");
        }
    }

    /// What the admin's registration in the UI leaves in the database: the
    /// template `systemvm-kvm-4.3`, downloaded to the secondary storage
    /// (an image store from 4.2, the storage host before).
    pub fn register_template(&self) {
        let db = self.db_host();
        let stores = !sql(
            &db,
            "SELECT 1 FROM information_schema.tables WHERE table_schema = 'cloud' AND table_name = 'template_store_ref'",
        )
        .is_empty();
        let refs = if stores {
            "INSERT INTO cloud.template_store_ref (store_id, template_id, download_state) \
             SELECT s.id, t.id, 'DOWNLOADED' FROM cloud.image_store s, cloud.vm_template t WHERE t.name = 'systemvm-kvm-4.3'"
        } else {
            "INSERT INTO cloud.template_host_ref (host_id, template_id, download_state) \
             SELECT h.id, t.id, 'DOWNLOADED' FROM cloud.host h, cloud.vm_template t WHERE h.name = 'nfs-secondary' AND t.name = 'systemvm-kvm-4.3'"
        };
        sql(
            &db,
            &format!("INSERT INTO cloud.vm_template (name) VALUES ('systemvm-kvm-4.3'); {refs};"),
        );
    }

    fn write_inventory(&self) {
        let vars = format!(
            "vars = {{ hypervisor = \"kvm\", apt_repository = \"{}\", verify_source_release = \"false\", ip_usage_processed = \"true\" }}",
            self.mirror_url
        );
        let mut text = String::new();
        for n in self.cloudstack_hosts() {
            text.push_str(&format!(
                "[hosts.{n}]\nroles = [\"{}\"]\n{vars}\n\n",
                self.role(&n)
            ));
        }
        std::fs::write(&self.inventory, text).unwrap();
    }

    /// `hoist fleet ARGS` on the controller, with this cloud's state,
    /// reaching its hosts with the testbed's ssh_config.
    pub fn fleet(&self, args: &[&str]) -> Command {
        let mut c = hoist_in(&self.state);
        c.arg("fleet").args(args);
        if matches!(args.first(), Some(&"upgrade" | &"resume" | &"rollback")) {
            c.arg("-i")
                .arg(&self.inventory)
                .arg("-r")
                .arg(recipe())
                .arg("--ssh-config")
                .arg(self.testbed.ssh_config())
                .arg("--hoist-binary")
                .arg(small_hoist())
                .args(["--host-timeout", "6m", "--connect-timeout", "10s"]);
        }
        c.stdin(Stdio::null());
        c
    }

    /// `hoist fleet upgrade --yes [--to TARGET]`, bounded.
    pub fn upgrade_command(&self, to: Option<&str>) -> Command {
        let mut args = vec!["upgrade", "--yes"];
        if let Some(t) = to {
            args.extend(["--to", t]);
        }
        self.fleet(&args)
    }

    /// `hoist fleet status --json`.
    pub fn status_json(&self) -> serde_json::Value {
        let mut c = self.fleet(&["status"]);
        c.arg("--json");
        let o = bounded(c);
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
    }

    /// The failure knob: from now on the 4.3 management package fails to
    /// configure on `host` (its postinst exits 1 while
    /// `cloudstack::FAIL_POSTINST` exists), so that host's install step
    /// fails for real and its run rolls back. `clear_failure` removes it.
    pub fn fail_management_postinst(&self, host: &str) {
        sh(
            &self.host(host),
            &format!(
                "mkdir -p \"$(dirname {f})\" && touch {f}",
                f = cs::FAIL_POSTINST
            ),
        );
    }

    pub fn clear_failure(&self, host: &str) {
        sh(&self.host(host), &format!("rm -f {}", cs::FAIL_POSTINST));
    }

    pub fn teardown(self) {
        let Cloud { testbed, .. } = self;
        testbed.teardown().expect("teardown");
    }
}

/// The shipped recipe's directory.
pub fn recipe() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes/cloudstack")
}
