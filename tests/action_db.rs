//! `db` and `wait` with an SQL check, through the binary, against real
//! servers each test starts for itself: PostgreSQL 15 (initdb into a
//! temporary directory, a unix socket only) and MariaDB (mariadb-install-db,
//! `--skip-networking`), run as their own users, stopped by a guard even
//! when the test fails. Nothing depends on the host's own database services:
//! the clients are pointed at the test servers through the environment
//! (`PGHOST`, and a `~/.my.cnf` naming the socket).

mod common;
use common::{text, with_state};

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const PG_PORT: &str = "5432";

/// The OS user a server runs as, and the one hoist's `os_user` names.
#[derive(Clone)]
struct OsUser {
    name: String,
    uid: u32,
    gid: u32,
}

/// A system user when hoist's tests run as root (initdb refuses root),
/// else the current user.
fn server_user(name: &str) -> OsUser {
    let me = nix::unistd::geteuid();
    let u = if me.is_root() {
        nix::unistd::User::from_name(name)
            .unwrap()
            .unwrap_or_else(|| panic!("no user {name}: install the server package"))
    } else {
        nix::unistd::User::from_uid(me).unwrap().unwrap()
    };
    OsUser {
        name: u.name,
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
    }
}

fn as_user(c: &mut Command, u: &OsUser) {
    if nix::unistd::geteuid().is_root() {
        c.uid(u.uid).gid(u.gid);
    }
    c.current_dir("/");
}

/// A temporary directory, removed when dropped (also when a server fails
/// to start and the test panics).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!("hoist-db-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

fn output(c: &mut Command, timeout: Duration) -> Output {
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{c:?}: {e}"));
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{c:?} did not end within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn ok(c: &mut Command) -> String {
    let o = output(c, Duration::from_secs(120));
    assert!(o.status.success(), "{c:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stops a server process: `sig` first, SIGKILL after `grace`.
fn stop(child: &mut Child, sig: nix::sys::signal::Signal, grace: Duration) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, sig);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

// --- PostgreSQL -------------------------------------------------------------

struct Pg {
    dir: PathBuf,
    user: OsUser,
    server: Child,
    _scratch: Scratch,
}

impl Pg {
    fn start(name: &str) -> Pg {
        let user = server_user("postgres");
        let scratch = scratch(&format!("{name}-pg"));
        let dir = scratch.0.clone();
        std::os::unix::fs::chown(&dir, Some(user.uid), Some(user.gid)).unwrap();
        let data = dir.join("data");
        ok(Command::new(format!("{PG_BIN}/initdb"))
            .args(["--no-sync", "-E", "UTF8", "--locale=C", "-A", "peer", "-D"])
            .arg(&data)
            .apply(|c| as_user(c, &user)));
        // The superuser by peer authentication (os_user); everyone else
        // with a password (the properties credentials).
        std::fs::write(
            data.join("pg_hba.conf"),
            format!(
                "local all {} peer\nlocal all all scram-sha-256\n",
                user.name
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        std::os::unix::fs::chown(dir.join("server.log"), Some(user.uid), Some(user.gid)).unwrap();
        let server = Command::new(format!("{PG_BIN}/postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&dir)
            .args(["-p", PG_PORT, "-c", "listen_addresses=", "-c", "fsync=off"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .apply(|c| as_user(c, &user))
            .spawn()
            .unwrap();
        let pg = Pg {
            dir,
            user,
            server,
            _scratch: scratch,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let o = output(
                &mut pg.psql_cmd("postgres", "SELECT 1"),
                Duration::from_secs(10),
            );
            if o.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start: {}",
                std::fs::read_to_string(pg.dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        pg
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("PGHOST".into(), self.dir.display().to_string()),
            ("PGPORT".into(), PG_PORT.into()),
        ]
    }

    fn psql_cmd(&self, db: &str, sql: &str) -> Command {
        let mut c = Command::new("psql");
        c.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            db,
            "-c",
            sql,
        ])
        .envs(self.env())
        .apply(|c| as_user(c, &self.user));
        c
    }

    fn sql(&self, db: &str, sql: &str) -> String {
        ok(&mut self.psql_cmd(db, sql)).trim().to_string()
    }

    /// Everything in the database, as text: the comparison of contents.
    /// pg_dump 15.14 and later fence the script with `\restrict KEY`, a
    /// random key each time: those lines are left out.
    fn dump(&self, db: &str) -> String {
        let all = ok(Command::new("pg_dump")
            .args(["--create", db])
            .envs(self.env())
            .apply(|c| as_user(c, &self.user)));
        all.lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// A database with a bit of everything a restore must bring back.
    fn sample(&self, db: &str) {
        self.sql("postgres", &format!("CREATE DATABASE {db}"));
        self.sql(
            db,
            "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, price numeric(10,2));
             INSERT INTO items (name, price) SELECT 'item ' || g, g * 1.5 FROM generate_series(1, 50) g;
             CREATE VIEW dear AS SELECT * FROM items WHERE price > 30;
             CREATE FUNCTION twice(x int) RETURNS int LANGUAGE sql AS 'SELECT 2 * x';
             CREATE TABLE flag (v text); INSERT INTO flag VALUES ('starting');
             CREATE TABLE counter (n int); INSERT INTO counter VALUES (1);",
        );
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        // SIGQUIT: immediate shutdown; nothing here needs to be kept.
        stop(
            &mut self.server,
            nix::sys::signal::Signal::SIGQUIT,
            Duration::from_secs(15),
        );
    }
}

// --- MariaDB ----------------------------------------------------------------

struct Maria {
    dir: PathBuf,
    server: Child,
    _scratch: Scratch,
}

impl Maria {
    fn start(name: &str) -> Maria {
        let user = server_user("mysql");
        let scratch = scratch(&format!("{name}-my"));
        let dir = scratch.0.clone();
        std::os::unix::fs::chown(&dir, Some(user.uid), Some(user.gid)).unwrap();
        let data = dir.join("data");
        // Its own temporary directory: servers sharing /tmp remove each
        // other's temporary tables (seen while several tests bootstrap).
        let tmp = dir.join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        std::os::unix::fs::chown(&tmp, Some(user.uid), Some(user.gid)).unwrap();
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .args(["--auth-root-authentication-method=socket", "--skip-test-db"]);
        if nix::unistd::geteuid().is_root() {
            install.arg(format!("--user={}", user.name));
        }
        ok(install.current_dir("/"));
        let log = dir.join("server.log");
        let server = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", log.display()))
            .args([
                "--skip-networking",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=32M",
                "--innodb-flush-log-at-trx-commit=2",
                "--character-set-server=utf8mb4",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .apply(|c| as_user(c, &user))
            .spawn()
            .unwrap();
        let mut m = Maria {
            dir,
            server,
            _scratch: scratch,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let o = output(&mut m.client(None, "SELECT 1"), Duration::from_secs(10));
            if o.status.success() {
                break;
            }
            if let Ok(Some(st)) = m.server.try_wait() {
                panic!(
                    "mariadbd exited ({st}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "MariaDB did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        // What an admin's ~/.my.cnf would say: where the server is. hoist
        // gets this HOME, so its clients find the test server and not the
        // host's (whose socket /etc/mysql names).
        std::fs::write(
            m.dir.join(".my.cnf"),
            format!("[client]\nsocket={}\n", m.dir.join("mysqld.sock").display()),
        )
        .unwrap();
        m
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![("HOME".into(), self.dir.display().to_string())]
    }

    fn sock(&self) -> String {
        format!("--socket={}", self.dir.join("mysqld.sock").display())
    }

    fn client(&self, db: Option<&str>, sql: &str) -> Command {
        let mut c = Command::new("mariadb");
        c.arg("--no-defaults").arg(self.sock()).args([
            "-u",
            "root",
            "--batch",
            "--skip-column-names",
        ]);
        if let Some(d) = db {
            c.arg(format!("--database={d}"));
        }
        c.arg("-e").arg(sql).current_dir("/");
        c
    }

    fn sql(&self, db: Option<&str>, sql: &str) -> String {
        ok(&mut self.client(db, sql)).trim().to_string()
    }

    fn dump(&self, db: &str) -> String {
        ok(Command::new("mariadb-dump")
            .arg("--no-defaults")
            .arg(self.sock())
            .args([
                "-u",
                "root",
                "--skip-dump-date",
                "--routines",
                "--triggers",
                "--events",
                "--databases",
                db,
            ])
            .current_dir("/"))
    }

    /// CloudStack's shape: a `cloud` database, its user with a password in
    /// a db.properties file.
    fn sample(&self, password: &str) {
        self.sql(
            None,
            &format!(
                "CREATE DATABASE cloud;
                 CREATE USER 'cloud'@'localhost' IDENTIFIED BY '{password}';
                 GRANT ALL ON cloud.* TO 'cloud'@'localhost';"
            ),
        );
        self.sql(
            Some("cloud"),
            "CREATE TABLE storage_pool (id INT AUTO_INCREMENT PRIMARY KEY, pool_type VARCHAR(32), path VARCHAR(255)) ENGINE=InnoDB;
             INSERT INTO storage_pool (pool_type, path) VALUES ('Filesystem', '/var/lib/libvirt/images/'), ('Filesystem', '/'), ('NetworkFilesystem', '/export/primary/'), ('Filesystem', '/data/local/');
             CREATE TABLE host (id INT PRIMARY KEY, status VARCHAR(16)) ENGINE=InnoDB;
             INSERT INTO host VALUES (1, 'Up'), (2, 'Connecting');
             CREATE TABLE version (id INT AUTO_INCREMENT PRIMARY KEY, version VARCHAR(32)) ENGINE=InnoDB;
             INSERT INTO version (version) VALUES ('4.2.1');
             CREATE DEFINER = 'cloud'@'localhost' VIEW up_hosts AS SELECT id FROM host WHERE status = 'Up';
             CREATE DEFINER = 'cloud'@'localhost' PROCEDURE host_count() SELECT COUNT(*) FROM host;
             CREATE DEFINER = 'cloud'@'localhost' TRIGGER host_upper BEFORE INSERT ON host FOR EACH ROW SET NEW.status = NEW.status;",
        );
        let props = self.dir.join("db.properties");
        std::fs::write(
            &props,
            format!("# CloudStack's db.properties\ndb.cloud.username=cloud\ndb.cloud.password={password}\ndb.cloud.host=localhost\n"),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&props, std::fs::Permissions::from_mode(0o640)).unwrap();
    }

    fn creds(&self) -> String {
        format!(
            r#"{{ properties = "{}", user_key = "db.cloud.username", password_key = "db.cloud.password" }}"#,
            self.dir.join("db.properties").display()
        )
    }
}

impl Drop for Maria {
    fn drop(&mut self) {
        stop(
            &mut self.server,
            nix::sys::signal::Signal::SIGTERM,
            Duration::from_secs(30),
        );
    }
}

trait Apply {
    fn apply(&mut self, f: impl FnOnce(&mut Self)) -> &mut Self;
}

impl Apply for Command {
    fn apply(&mut self, f: impl FnOnce(&mut Self)) -> &mut Self {
        f(self);
        self
    }
}

// --- the product: a version file and a recipe of db steps -------------------

/// The product's own install, in every recipe beside the test's db steps:
/// it moves the version the recipe reads to the target, and its undo puts
/// the old one back.
const INSTALL: &str = r#"[[steps]]
id = "install"
phase = "install"
exec = { shell = "echo 2.0 > {DIR}/VERSION" }
undo = { exec = { shell = "echo 1.0 > {DIR}/VERSION" } }
"#;

struct Product {
    dir: PathBuf,
    env: Vec<(String, String)>,
    _scratch: Scratch,
}

impl Product {
    fn new(name: &str, steps: &str, env: Vec<(String, String)>) -> Product {
        let scratch = scratch(&format!("{name}-product"));
        let dir = scratch.0.clone();
        std::fs::write(dir.join("VERSION"), "1.0\n").unwrap();
        let d = dir.display();
        let steps = format!("{INSTALL}\n{steps}").replace("{DIR}", &d.to_string());
        std::fs::write(
            dir.join("recipe.toml"),
            format!(
                "[product]\nname = \"app\"\nversion = {{ file = \"{d}/VERSION\" }}\n\n[[paths]]\nid = \"main\"\nfrom = \"1.*\"\nto = \"2.0\"\n\n{steps}"
            ),
        )
        .unwrap();
        Product {
            dir,
            env,
            _scratch: scratch,
        }
    }

    fn hoist_cmd(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hoist"));
        with_state(&mut c, &self.dir.join("state"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    fn hoist(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        output(&mut self.hoist_cmd(args, env), Duration::from_secs(300))
    }

    fn upgrade(&self, env: &[(&str, &str)]) -> Output {
        let recipe = self.dir.join("recipe.toml");
        self.hoist(&["upgrade", "--yes", "-r", recipe.to_str().unwrap()], env)
    }

    /// Every file hoist wrote in its state directory (journal, run logs).
    fn state_text(&self) -> Vec<u8> {
        let mut all = Vec::new();
        walk(&self.dir.join("state"), &mut |p| {
            all.extend(std::fs::read(p).unwrap_or_default());
        });
        all
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&self.state_text()).into_owned()
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, f);
        } else {
            f(&p);
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

// --- tests -------------------------------------------------------------------

#[test]
fn pg_backup_is_verified_kept_and_listed() {
    let pg = Pg::start("backup");
    pg.sample("walt");
    let steps = format!(
        r#"[[steps]]
id = "dump-walt-db"
phase = "backup"
db = {{ op = "backup", engine = "postgresql", database = "walt", dump = "{{DIR}}/backups/walt-db.dump", keep = 2, credentials = {{ os_user = "{}" }} }}
"#,
        pg.user.name
    );
    let p = Product::new("backup", &steps, pg.env());
    let recipe = p.dir.join("recipe.toml");
    let o = p.hoist(&["plan", "-r", recipe.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("not yet supported"), "{}", text(&o));
    // The same upgrade three times (1.0 put back in between, as after a
    // reinstall): each takes one more dump.
    for _ in 0..3 {
        std::fs::write(p.dir.join("VERSION"), "1.0\n").unwrap();
        let o = p.upgrade(&[]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let dump = p.dir.join("backups/walt-db.dump");
    let list = ok(Command::new("pg_restore").arg("--list").arg(&dump));
    assert!(list.contains("TABLE public items"), "{list}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&dump).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a dump is readable by its owner only");
    // keep = 2: the newest and the one it replaced; no temporary file left.
    let mut files: Vec<String> = std::fs::read_dir(p.dir.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files.iter().all(|f| f.starts_with("walt-db.dump")),
        "{files:?}"
    );
    let o = p.hoist(&["backups"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert_eq!(
        out.lines().filter(|l| l.contains(" walt ")).count(),
        2,
        "{out}"
    );
    assert!(
        out.contains("postgresql") && out.contains("walt-db.dump"),
        "{out}"
    );
    let o = p.hoist(&["--json", "backups"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["schema"], 1);
    let v = &v["backups"];
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert!(v[0]["bytes"].as_u64().unwrap() > 0);
    assert_eq!(v[0]["exists"], true);
}

#[test]
fn pg_failed_upgrade_restores_the_database_exactly() {
    let pg = Pg::start("restore");
    pg.sample("asterisk");
    let before = pg.dump("asterisk");
    let u = &pg.user.name;
    let steps = format!(
        r#"[[steps]]
id = "backup-database"
phase = "backup"
db = {{ op = "backup", engine = "postgresql", database = "asterisk", dump = "{{DIR}}/asterisk.dump", credentials = {{ os_user = "{u}" }} }}

[[steps]]
id = "migrate-schema"
phase = "migrate"
db = {{ op = "sql", engine = "postgresql", database = "asterisk", sql = "ALTER TABLE items ADD COLUMN stock int DEFAULT 7; CREATE TABLE audit (x int); INSERT INTO audit VALUES (1); UPDATE items SET price = price * 2; DROP VIEW dear;", check = {{ query = "SELECT count(*) FROM audit", expect = "1" }}, credentials = {{ os_user = "{u}" }} }}
undo = {{ db = {{ op = "restore", engine = "postgresql", database = "asterisk", dump = "{{DIR}}/asterisk.dump", credentials = {{ os_user = "{u}" }} }} }}

[[steps]]
id = "start-services"
phase = "start"
exec = {{ argv = ["true"] }}
undo = "none"
undo_reason = "starting the services is put back by the stop before it"
"#
    );
    let p = Product::new("restore", &steps, pg.env());
    // An open session on the database does not stop the restore.
    let mut idle = pg.psql_cmd("asterisk", "SELECT pg_sleep(60)");
    let mut idle = idle
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let o = p.upgrade(&[("HOIST_TEST_FAIL_AT", "start-services")]);
    let _ = idle.kill();
    let _ = idle.wait();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let log = p.log();
    assert!(log.contains("asterisk restored from"), "{log}");
    assert!(log.contains("ended 1 session(s) on asterisk"), "{log}");
    assert_eq!(
        pg.dump("asterisk"),
        before,
        "the database after rollback differs"
    );
}

#[test]
fn pg_sql_with_check_runs_once_and_resume_finds_it_applied() {
    let pg = Pg::start("check");
    pg.sample("app");
    // A password user, for the PGPASSFILE credentials.
    let password = "pg-Pa55:wd\\x";
    pg.sql(
        "postgres",
        &format!("CREATE ROLE app LOGIN PASSWORD '{password}'; ALTER DATABASE app OWNER TO app"),
    );
    pg.sql("app", "ALTER TABLE counter OWNER TO app");
    let props = pg.dir.join("app.properties");
    // The server's address from the same file (no PGHOST for hoist).
    std::fs::write(
        &props,
        format!(
            "db.user=app\ndb.password={}\ndb.host={}\ndb.port={PG_PORT}\n",
            password.replace('\\', "\\\\"),
            pg.dir.display()
        ),
    )
    .unwrap();
    let steps = format!(
        r#"[[steps]]
id = "bump"
phase = "migrate"
db = {{ op = "sql", engine = "postgresql", database = "app", sql = "UPDATE counter SET n = n + 1", check = {{ query = "SELECT n FROM counter", expect = "2" }}, credentials = {{ properties = "{}", user_key = "db.user", password_key = "db.password", host_key = "db.host", port_key = "db.port" }} }}
undo = "none"
undo_reason = "the database goes back whole from the backup step's dump"
"#,
        props.display()
    );
    let p = Product::new("check", &steps, Vec::new());
    // Killed right after the statements committed: resume asks the check,
    // which holds, and does not add one again.
    let o = p.upgrade(&[("HOIST_TEST_CRASH_AT", "bump:after")]);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&o.status),
        Some(9),
        "{}",
        text(&o)
    );
    assert_eq!(pg.sql("app", "SELECT n FROM counter"), "2", "{}", p.log());
    let o = p.hoist(&["resume"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("found applied"), "{}", text(&o));
    assert_eq!(pg.sql("app", "SELECT n FROM counter"), "2");
    assert!(
        !contains(&p.state_text(), password.as_bytes()),
        "the password is in the state directory"
    );
}

#[test]
fn pg_failing_sql_leaves_the_database_unchanged() {
    let pg = Pg::start("failing");
    pg.sample("app");
    let before = pg.dump("app");
    let u = &pg.user.name;
    for (name, sql, check) in [
        // A statement fails after one that succeeded.
        (
            "broken",
            "UPDATE items SET price = 0; INSERT INTO no_such_table VALUES (1)",
            "",
        ),
        // Every statement succeeds, but the check is not met: nothing is committed.
        (
            "unmet",
            "UPDATE items SET price = 0; DELETE FROM flag",
            r#", check = { query = "SELECT count(*) FROM items WHERE price = 0", expect = "49" }"#,
        ),
    ] {
        let steps = format!(
            r#"[[steps]]
id = "fix"
phase = "migrate"
db = {{ op = "sql", engine = "postgresql", database = "app", sql = "{sql}"{check}, credentials = {{ os_user = "{u}" }} }}
undo = "none"
undo_reason = "the database goes back whole from the backup step's dump"
"#
        );
        let p = Product::new(name, &steps, pg.env());
        let o = p.upgrade(&[]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", text(&o));
        assert!(text(&o).contains("rolled back"), "{name}: {}", text(&o));
        if name == "unmet" {
            assert!(
                p.log().contains("hoist check failed: got 50, expected 49"),
                "{}",
                p.log()
            );
        }
        assert_eq!(pg.dump("app"), before, "{name}: the database changed");
    }
}

#[test]
fn mysql_failed_upgrade_restores_the_database_exactly() {
    let my = Maria::start("restore");
    my.sample("Cl0ud-secret");
    let before = my.dump("cloud");
    let creds = my.creds();
    // CloudStack's trailing-slash fix, with DDL (which MySQL commits on its
    // own): `protect` dumps the database first and rollback restores it;
    // the backup's restore puts back the rest.
    let steps = format!(
        r#"[[steps]]
id = "backup-cloud-db"
phase = "backup"
db = {{ op = "backup", engine = "mysql", database = "cloud", dump = "{{DIR}}/cloud.sql", credentials = {creds} }}

[[steps]]
id = "kvm-local-storage-path"
phase = "migrate"
db = {{ op = "sql", engine = "mysql", database = "cloud", sql = "UPDATE cloud.storage_pool SET path = TRIM(TRAILING '/' FROM path) WHERE pool_type = 'Filesystem' AND path LIKE '%/' AND path <> '/'", check = {{ query = "SELECT COUNT(*) FROM cloud.storage_pool WHERE pool_type = 'Filesystem' AND path LIKE '%/' AND path <> '/'", expect = "0" }}, credentials = {creds} }}
undo = {{ db = {{ op = "restore", engine = "mysql", database = "cloud", dump = "{{DIR}}/cloud.sql", credentials = {creds} }} }}

[[steps]]
id = "schema"
phase = "migrate"
db = {{ op = "sql", engine = "mysql", database = "cloud", sql = "ALTER TABLE host ADD COLUMN cpu INT; CREATE TABLE audit (x INT); INSERT INTO audit VALUES (1); UPDATE version SET version = '4.3.2'", protect = true, credentials = {creds} }}

[[steps]]
id = "start-management"
phase = "start"
exec = {{ argv = ["true"] }}
undo = "none"
undo_reason = "starting the server is put back by the stop before it"
"#
    );
    let p = Product::new("my-restore", &steps, my.env());
    let o = p.upgrade(&[("HOIST_TEST_FAIL_AT", "start-management")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let log = p.log();
    assert!(log.contains("hoist check: got 0, expected 0"), "{log}");
    assert!(log.contains("cloud restored from"), "{log}");
    assert!(log.contains("before.dump"), "{log}");
    assert_eq!(
        my.dump("cloud"),
        before,
        "the database after rollback differs"
    );

    // The same plan without the failure: the fix and the schema change stay.
    std::fs::remove_dir_all(p.dir.join("state")).unwrap();
    let o = p.upgrade(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        my.sql(Some("cloud"), "SELECT path FROM storage_pool ORDER BY id"),
        "/var/lib/libvirt/images\n/\n/export/primary/\n/data/local"
    );
    assert_eq!(
        my.sql(Some("cloud"), "SELECT version FROM version"),
        "4.3.2"
    );
}

#[test]
fn mysql_failing_sql_leaves_the_database_unchanged() {
    let my = Maria::start("failing");
    my.sample("Cl0ud-secret");
    let before = my.dump("cloud");
    let creds = my.creds();
    for (name, sql, check) in [
        (
            "broken",
            "UPDATE host SET status = 'Down'; INSERT INTO no_such_table VALUES (1)",
            "",
        ),
        (
            "unmet",
            "UPDATE host SET status = 'Down'; DELETE FROM version",
            r#", check = { query = "SELECT COUNT(*) FROM host WHERE status = 'Down'", expect = "1" }"#,
        ),
    ] {
        let steps = format!(
            r#"[[steps]]
id = "fix"
phase = "migrate"
db = {{ op = "sql", engine = "mysql", database = "cloud", sql = "{sql}"{check}, credentials = {creds} }}
undo = "none"
undo_reason = "the database goes back whole from the backup step's dump"
"#
        );
        let p = Product::new(&format!("my-{name}"), &steps, my.env());
        let o = p.upgrade(&[]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", text(&o));
        if name == "unmet" {
            assert!(
                p.log().contains("hoist check: got 2, expected 1"),
                "{}",
                p.log()
            );
        }
        assert_eq!(my.dump("cloud"), before, "{name}: the database changed");
    }
}

/// Reads every process's command line and environment until `done`;
/// returns whether `secret` was seen and how many times `program` ran.
fn watch_proc(secret: &str, program: &str, done: &mut dyn FnMut() -> bool) -> (bool, usize) {
    let mut seen = false;
    let mut sightings = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    while !done() && Instant::now() < deadline {
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let p = e.path();
            let Ok(cmdline) = std::fs::read(p.join("cmdline")) else {
                continue;
            };
            if contains(&cmdline, program.as_bytes()) {
                sightings += 1;
            }
            let environ = std::fs::read(p.join("environ")).unwrap_or_default();
            if contains(&cmdline, secret.as_bytes()) || contains(&environ, secret.as_bytes()) {
                seen = true;
            }
        }
    }
    (seen, sightings)
}

#[test]
fn credentials_are_never_on_a_command_line() {
    let my = Maria::start("secret");
    let secret = "Sup3r-s3cret-pw";
    my.sample(secret);
    // Enough rows for the dump to run a while under watch.
    my.sql(
        Some("cloud"),
        "CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(200)) ENGINE=InnoDB;
         INSERT INTO big SELECT seq, REPEAT('x', 200) FROM seq_1_to_100000;",
    );
    let steps = format!(
        r#"[[steps]]
id = "backup-cloud-db"
phase = "backup"
db = {{ op = "backup", engine = "mysql", database = "cloud", dump = "{{DIR}}/cloud.sql", credentials = {} }}
"#,
        my.creds()
    );
    let p = Product::new("secret", &steps, my.env());
    let recipe = p.dir.join("recipe.toml");
    let mut child = p
        .hoist_cmd(&["upgrade", "--yes", "-r", recipe.to_str().unwrap()], &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut finished = None;
    let (seen, sightings) = watch_proc(secret, "mysqldump", &mut || {
        if finished.is_none() {
            finished = child.try_wait().unwrap();
        }
        finished.is_some()
    });
    let status = finished.unwrap_or_else(|| {
        let _ = child.kill();
        child.wait().unwrap()
    });
    assert!(status.success(), "the backup failed: {}", p.log());
    assert!(sightings > 0, "the scan never overlapped the dump");
    assert!(
        !seen,
        "the password was in a process's command line or environment"
    );
    assert!(
        !contains(&p.state_text(), secret.as_bytes()),
        "the password is in the state directory"
    );
    let dump = std::fs::read_to_string(p.dir.join("cloud.sql")).unwrap();
    assert!(dump.contains("INSERT INTO `big`"));
}

#[test]
fn pg_wait_sql_reaches_the_value_within_its_bound_and_times_out_otherwise() {
    let pg = Pg::start("wait");
    pg.sample("walt");
    let u = &pg.user.name;
    let wait = |expect: &str, timeout: &str| {
        format!(
            r#"[[steps]]
id = "walt-ready"
phase = "verify"
wait = {{ until = {{ sql = {{ engine = "postgresql", database = "walt", query = "SELECT v FROM flag", expect = "{expect}", credentials = {{ os_user = "{u}" }} }} }}, timeout = "{timeout}", interval = "200ms" }}
"#
        )
    };
    let p = Product::new("wait", &wait("ready", "30s"), pg.env());
    // The value changes once the wait has seen the old one (a loaded
    // machine may take long to start hoist), at most 25 s in.
    let (later, seen_waiting) = std::thread::scope(|s| {
        let flip = s.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(25);
            let mut seen = false;
            while !seen && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
                seen = p.log().contains(r#"waiting: walt returned "starting""#);
            }
            pg.sql("walt", "UPDATE flag SET v = 'ready'");
            seen
        });
        let out = p.upgrade(&[]);
        (out, flip.join().expect("flip"))
    });
    assert!(later.status.success(), "{}", text(&later));
    assert!(
        seen_waiting,
        "the wait never logged the old value: {}",
        p.log()
    );

    let p = Product::new("wait-never", &wait("never", "2s"), pg.env());
    let started = Instant::now();
    let o = p.upgrade(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("not true after 2s"), "{}", text(&o));
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn mysql_wait_sql_sees_every_host_up() {
    let my = Maria::start("wait");
    my.sample("Cl0ud-secret");
    let steps = format!(
        r#"[[steps]]
id = "hosts-up"
phase = "verify"
wait = {{ until = {{ sql = {{ engine = "mysql", database = "cloud", query = "SELECT COUNT(*) FROM host WHERE status <> 'Up'", expect = "0", credentials = {c} }} }}, timeout = "30s", interval = "200ms" }}

[[steps]]
id = "database-is-4.2"
phase = "verify"
gate = {{ message = "The database must be at 4.2.1", until = {{ sql = {{ engine = "mysql", database = "cloud", query = "SELECT version FROM cloud.version ORDER BY id DESC LIMIT 1", expect = "4.2.1", credentials = {c} }} }}, timeout = "30s" }}
"#,
        c = my.creds()
    );
    let p = Product::new("my-wait", &steps, my.env());
    let o = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(1000));
            my.sql(Some("cloud"), "UPDATE host SET status = 'Up'");
        });
        p.upgrade(&[])
    });
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        p.log().contains(r#"waiting: cloud returned "1""#),
        "{}",
        p.log()
    );
}

#[test]
fn mysql_backup_restore_on_rollback_restores_its_own_dump_even_after_a_later_one() {
    let my = Maria::start("own-dump");
    my.sample("Cl0ud-secret");
    let before = my.dump("cloud");
    let creds = my.creds();
    // Two backups to one path in one run (seed 003's 2.2.5 -> 2.2.14 -> 4.3
    // route dumps `cloud.sql` on each hop), the database changed between
    // them and after: rollback must end on the first dump's database.
    let steps = format!(
        r#"[[steps]]
id = "backup-first"
phase = "backup"
db = {{ op = "backup", engine = "mysql", database = "cloud", dump = "{{DIR}}/cloud.sql", keep = 1, restore_on_rollback = true, credentials = {creds} }}

[[steps]]
id = "to-2.2.14"
phase = "migrate"
db = {{ op = "sql", engine = "mysql", database = "cloud", sql = "UPDATE version SET version = '2.2.14'", credentials = {creds} }}
undo = "none"
undo_reason = "the database goes back whole from the backup step's dump"

[[steps]]
id = "backup-second"
phase = "migrate"
db = {{ op = "backup", engine = "mysql", database = "cloud", dump = "{{DIR}}/cloud.sql", keep = 1, restore_on_rollback = true, credentials = {creds} }}

[[steps]]
id = "to-4.3"
phase = "migrate"
db = {{ op = "sql", engine = "mysql", database = "cloud", sql = "CREATE TABLE audit (x INT); UPDATE version SET version = '4.3.2'", credentials = {creds} }}
undo = "none"
undo_reason = "the database goes back whole from the backup step's dump"

[[steps]]
id = "start-management"
phase = "start"
exec = {{ argv = ["true"] }}
undo = "none"
undo_reason = "starting the server is put back by the stop before it"
"#
    );
    let p = Product::new("my-own-dump", &steps, my.env());
    let o = p.upgrade(&[("HOIST_TEST_FAIL_AT", "start-management")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let log = p.log();
    assert!(log.contains("restore cloud from this step's dump"), "{log}");
    assert_eq!(
        my.dump("cloud"),
        before,
        "the database after rollback differs from before the first backup"
    );
}
