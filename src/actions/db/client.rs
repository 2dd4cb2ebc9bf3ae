//! Running the database clients (psql, pg_dump, pg_restore, mysql,
//! mysqldump) with the step's credentials, which never reach a command line
//! or the run log: seed 003 runs `mysqldump -u root -pmysql_password`, which
//! any user on the host can read in /proc while it runs.
//!
//! PostgreSQL: peer authentication as `os_user` (the client runs as that
//! user, through `runuser`), or a 0600 password file (`PGPASSFILE`) written
//! under the step's 0700 directory. MySQL: a 0600 option file passed with
//! `--defaults-extra-file`, written the same way, or the admin's own option
//! file. Host and port come from the properties file when the step names
//! their keys (`host_key`, `port_key`), else from what the client reads by
//! itself (`PGHOST`/`PGPORT`; MySQL's option files, `~/.my.cnf`), else the
//! client's defaults (the local socket).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Credentials, Engine};
use crate::actions::ctx::Ctx;

/// A secret file under the step's directory, removed when dropped.
struct Secret(PathBuf);

impl Secret {
    fn write(dir: &Path, name: &str, text: &str) -> Result<Secret, String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        crate::sys::fsutil::private_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // Files a killed hoist left behind are removed (the next client of
        // the step, e.g. resume's check, cleans up), never reused: each is
        // created anew with mode 0600 before the secret is written.
        // Several clients may be alive at once (a check inside a step).
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let prefix = format!(".{name}-");
        let mine = format!("{prefix}{}-", std::process::id());
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(&prefix) && !n.starts_with(&mine) {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = dir.join(format!("{mine}{n}"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        f.write_all(text.as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Secret(path))
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// How one client is started: as whom, with which files and variables.
pub struct Client {
    pub engine: Engine,
    run_as: Option<String>,
    env: Vec<(String, String)>,
    /// MySQL: `--defaults-extra-file` (the admin's, or the secret below).
    defaults: Option<PathBuf>,
    _secret: Option<Secret>,
}

/// A Java-style properties file (CloudStack's db.properties): `key=value`
/// or `key: value`, `#`/`!` comments, backslash escapes.
pub fn read_properties(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let mut key = String::new();
        let mut chars = line.chars();
        let mut escaped = false;
        for c in chars.by_ref() {
            if escaped {
                key.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '=' || c == ':' || c.is_whitespace() {
                break;
            } else {
                key.push(c);
            }
        }
        let rest = chars.as_str().trim_start();
        let rest = rest
            .strip_prefix('=')
            .or_else(|| rest.strip_prefix(':'))
            .unwrap_or(rest)
            .trim_start();
        let mut value = String::new();
        let mut escaped = false;
        for c in rest.chars() {
            if escaped {
                value.push(match c {
                    't' => '\t',
                    'n' => '\n',
                    'r' => '\r',
                    c => c,
                });
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else {
                value.push(c);
            }
        }
        out.push((key, value));
    }
    Ok(out)
}

fn property(props: &[(String, String)], key: &str, file: &str) -> Result<String, String> {
    let v = props
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| format!("{file} has no `{key}`"))?;
    // CloudStack's encrypted db.properties holds ENC(...) under the
    // management server key: with encryption type `file` that key is the
    // file `key` beside it (root only); with `web` it was typed at start.
    if let Some(inner) = v.strip_prefix("ENC(").and_then(|r| r.strip_suffix(')')) {
        let kind = props
            .iter()
            .rev()
            .find(|(k, _)| k == "db.cloud.encryption.type")
            .map(|(_, v)| v.as_str());
        if kind != Some("file") {
            return Err(format!(
                "`{key}` in {file} is encrypted (ENC(...)) and its key is not in a file (db.cloud.encryption.type is not `file`); give the credentials in a 0600 `defaults_file` instead"
            ));
        }
        let key_file = Path::new(file).with_file_name("key");
        refuse_world_readable(&key_file)?;
        let secret = std::fs::read_to_string(&key_file).map_err(|e| {
            format!(
                "`{key}` in {file} is encrypted: {}: {e}",
                key_file.display()
            )
        })?;
        return super::jasypt::decrypt(inner, secret.trim_end_matches(['\n', '\r'])).map_err(|e| {
            format!(
                "`{key}` in {file} is encrypted and {} does not open it: {e}",
                key_file.display()
            )
        });
    }
    Ok(v)
}

/// The name of the user hoist runs as.
fn current_user() -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
}

impl Client {
    /// Resolves the credentials; secret files go under `dir` (0700).
    pub fn new(engine: Engine, creds: &Credentials, dir: &Path) -> Result<Client, String> {
        let mut client = Client {
            engine,
            run_as: None,
            env: Vec::new(),
            defaults: None,
            _secret: None,
        };
        if let Some(u) = &creds.os_user {
            if nix::unistd::User::from_name(u).ok().flatten().is_none() {
                return Err(format!("`os_user` {u}: no such user on this host"));
            }
            if current_user().as_deref() != Some(u.as_str()) {
                if !nix::unistd::geteuid().is_root() {
                    return Err(format!(
                        "running the client as `{u}` needs root (hoist runs as {})",
                        current_user().unwrap_or_default()
                    ));
                }
                client.run_as = Some(u.clone());
            }
        }
        if let Some(f) = &creds.defaults_file {
            refuse_world_readable(Path::new(f))?;
            match engine {
                Engine::Mysql => client.defaults = Some(PathBuf::from(f)),
                // libpq's own password file format.
                Engine::Postgresql => client.env.push(("PGPASSFILE".into(), f.clone())),
            }
        }
        if let (Some(files), Some(uk), Some(pk)) =
            (&creds.properties, &creds.user_key, &creds.password_key)
        {
            let file = files.resolve()?;
            let props = read_properties(Path::new(file))?;
            let user = property(&props, uk, file)?;
            let password = property(&props, pk, file)?;
            let optional = |key: &Option<String>| match key {
                Some(k) => property(&props, k, file).map(Some),
                None => Ok(None),
            };
            let host = optional(&creds.host_key)?;
            let port = optional(&creds.port_key)?;
            if [&user, &password]
                .into_iter()
                .chain(host.iter())
                .chain(port.iter())
                .any(|v| v.contains('\n'))
            {
                return Err(format!("{file}: a value with a line break"));
            }
            match engine {
                Engine::Postgresql => {
                    let esc = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
                    let secret = Secret::write(
                        dir,
                        "pgpass",
                        &format!("*:*:*:{}:{}\n", esc(&user), esc(&password)),
                    )?;
                    client
                        .env
                        .push(("PGPASSFILE".into(), secret.0.display().to_string()));
                    client.env.push(("PGUSER".into(), user));
                    if let Some(h) = host {
                        client.env.push(("PGHOST".into(), h));
                    }
                    if let Some(p) = port {
                        client.env.push(("PGPORT".into(), p));
                    }
                    client._secret = Some(secret);
                }
                Engine::Mysql => {
                    // Option files strip one pair of quotes and read
                    // backslash escapes inside them.
                    let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\"));
                    let mut cnf =
                        format!("[client]\nuser={}\npassword={}\n", q(&user), q(&password));
                    if let Some(h) = host {
                        cnf.push_str(&format!("host={}\n", q(&h)));
                    }
                    if let Some(p) = port {
                        cnf.push_str(&format!("port={}\n", q(&p)));
                    }
                    let secret = Secret::write(dir, "my.cnf", &cnf)?;
                    client.defaults = Some(secret.0.clone());
                    client._secret = Some(secret);
                }
            }
        }
        Ok(client)
    }

    /// The command for `program` with its credentials; arguments follow.
    pub fn command(&self, program: &str) -> Command {
        let mut c = match &self.run_as {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--", program]);
                c
            }
            None => Command::new(program),
        };
        // The option file must be the first option.
        if let Some(d) = &self.defaults {
            c.arg(format!("--defaults-extra-file={}", d.display()));
        }
        // The client may run as another user, who cannot enter root's
        // working directory.
        c.current_dir("/");
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// A client command reading the SQL of the statements.
    pub fn sql_command(&self, database: &str) -> Command {
        match self.engine {
            Engine::Postgresql => {
                let mut c = self.command("psql");
                c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction"])
                    .arg(format!("--dbname={database}"))
                    .args(["-f", "-"]);
                c
            }
            Engine::Mysql => {
                let mut c = self.command("mysql");
                c.args(["--batch", "--skip-column-names"])
                    .arg(format!("--database={database}"));
                c
            }
        }
    }

    /// Runs `query` and returns its first row's first column (`None`: no
    /// row). NULL reads as `NULL` in both engines.
    pub fn query(
        &self,
        ctx: &Ctx<'_>,
        database: Option<&str>,
        query: &str,
        timeout: Duration,
    ) -> Result<Option<String>, String> {
        let query = query.trim().trim_end_matches(';');
        let mut cmd = match self.engine {
            Engine::Postgresql => {
                let mut c = self.command("psql");
                // The maintenance database when none is named.
                c.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
                    .args(["-F", "\u{1f}", "-P", "null=NULL"])
                    .arg(format!("--dbname={}", database.unwrap_or("postgres")))
                    .arg("-c")
                    .arg(query);
                c
            }
            Engine::Mysql => {
                let mut c = self.command("mysql");
                c.args(["--batch", "--skip-column-names"]);
                if let Some(d) = database {
                    c.arg(format!("--database={d}"));
                }
                c.arg("-e").arg(query);
                c
            }
        };
        cmd.envs(ctx.env.iter().map(|(k, v)| (k, v)));
        let out = crate::sys::process::run(&mut cmd, timeout)
            .map_err(|e| format!("{}: cannot run: {e}", self.program()))?;
        if !out.stderr.trim().is_empty() {
            ctx.note(&format!("{}: {}", self.program(), out.stderr.trim()));
        }
        if out.timed_out() {
            return Err(format!(
                "the query got no answer within {}",
                humantime::format_duration(timeout)
            ));
        }
        if !out.success() {
            let why = out.stderr.lines().last().unwrap_or("").trim().to_string();
            return Err(format!("the query failed: {why}"));
        }
        let sep = match self.engine {
            Engine::Postgresql => '\u{1f}',
            Engine::Mysql => '\t',
        };
        Ok(out
            .stdout
            .lines()
            .next()
            .map(|l| l.split(sep).next().unwrap_or("").to_string()))
    }

    pub fn program(&self) -> &'static str {
        match self.engine {
            Engine::Postgresql => "psql",
            Engine::Mysql => "mysql",
        }
    }
}

/// An option file every user can read is refused: its secret would be
/// everybody's (one readable by a service's group is the admin's choice).
fn refuse_world_readable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o004 != 0 {
        return Err(format!(
            "{} holds credentials and every user can read it: make it mode 0600 first",
            path.display()
        ));
    }
    Ok(())
}

/// Wraps `cmd` so that its standard output goes to `out` (opened by
/// hoist's shell, as root, even when the client runs as another user).
pub fn stdout_to(cmd: Command, out: &Path) -> Command {
    redirect(cmd, ">", out)
}

/// Wraps `cmd` so that it reads its standard input from `input`.
pub fn stdin_from(cmd: Command, input: &Path) -> Command {
    redirect(cmd, "<", input)
}

fn redirect(cmd: Command, op: &str, file: &Path) -> Command {
    let mut sh = Command::new("/bin/sh");
    sh.arg("-c")
        .arg(format!("exec \"$@\" {op}\"$HOIST_DB_FILE\""))
        .arg("sh")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env("HOIST_DB_FILE", file)
        .current_dir("/");
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_read_like_java_does() {
        let dir = std::env::temp_dir().join(format!("hoist-props-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("db.properties");
        std::fs::write(
            &f,
            "# comment\n! other\ndb.cloud.username=cloud\ndb.cloud.password = s3:cr=t\\\\x\ndb.usage.password: p w\n",
        )
        .unwrap();
        let p = read_properties(&f).unwrap();
        assert_eq!(property(&p, "db.cloud.username", "f").unwrap(), "cloud");
        assert_eq!(
            property(&p, "db.cloud.password", "f").unwrap(),
            "s3:cr=t\\x"
        );
        assert_eq!(property(&p, "db.usage.password", "f").unwrap(), "p w");
        std::fs::write(&f, "db.cloud.password=ENC(abc)\n").unwrap();
        let p = read_properties(&f).unwrap();
        assert!(
            property(&p, "db.cloud.password", "f")
                .unwrap_err()
                .contains("encrypted")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
