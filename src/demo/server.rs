//! The demo service: a small HTTP/1.0 server on 127.0.0.1, and the `start`,
//! `stop` and `status` commands the recipe's `[[services]]` entry runs.
//!
//! `GET /health` answers 200 with the release's version when the data's
//! schema is the one the release expects, 503 otherwise; `GET /rows` gives
//! the data. The server is bounded so that nothing outlives a demo or a test:
//! it exits as soon as its pid file is gone or names another process (which
//! is how `stop` asks it to go, and how removing the demo directory ends
//! it), and after `IDLE` without a request.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::durable::{self, Context, Res};
use super::layout::{Config, Layout, Release};
use super::ops;

pub const IDLE: Duration = Duration::from_secs(15 * 60);
/// How often the server looks at its pid file.
const WATCH: Duration = Duration::from_millis(100);
/// How long `start` waits for the server to listen, and `stop` for it to go.
const PATIENCE: Duration = Duration::from_secs(10);

/// `serve --release R`: runs in the foreground until told to stop.
pub fn serve(layout: &Layout, release_dir: &Path) -> Res<()> {
    let config = Config::load(layout)?;
    let release = Release::load(release_dir)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, config.port))
        .ctx(|| format!("listen on 127.0.0.1:{}", config.port))?;
    listener
        .set_nonblocking(true)
        .ctx(|| "listen".to_string())?;
    let me = std::process::id();
    // Written once listening: a pid file means the port answers.
    let pid_file = layout.pid_file();
    durable::mkdir(pid_file.parent().unwrap_or(&layout.dir))?;
    durable::write(&pid_file, format!("{me}\n").as_bytes(), 0o644)?;
    errln!(
        "demo service {} (pid {me}) listening on http://127.0.0.1:{}/",
        release.version,
        config.port
    );
    let mut last_request = Instant::now();
    let mut last_watch = Instant::now();
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                last_request = Instant::now();
                if let Err(e) = answer(stream, &release, &config) {
                    errln!("request: {e}");
                }
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => errln!("accept: {e}"),
        }
        if last_watch.elapsed() >= WATCH {
            last_watch = Instant::now();
            if read_pid(&pid_file) != Some(me) {
                errln!("pid file gone: stopping");
                return Ok(());
            }
            if last_request.elapsed() >= IDLE {
                errln!("idle for {}s: stopping", IDLE.as_secs());
                durable::remove(&pid_file)?;
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn answer(mut stream: TcpStream, release: &Release, config: &Config) -> Res<()> {
    stream.set_nonblocking(false).ctx(|| "socket".to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(5))))
        .ctx(|| "socket".to_string())?;
    let request = read_head(&mut stream)?;
    let line = request.lines().next().unwrap_or("");
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, body) = if method != "GET" {
        (405, serde_json::json!({ "error": "only GET" }))
    } else {
        match path {
            "/health" => health(release, config),
            "/rows" => rows(release, config),
            "/" => (
                200,
                serde_json::json!({ "service": "hoist demo", "version": release.version }),
            ),
            _ => (404, serde_json::json!({ "error": "not found" })),
        }
    };
    errln!("{line} -> {status}");
    let body = format!("{body}\n");
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.0 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .ctx(|| "write the answer".to_string())
}

/// The request line and headers (the body of a GET is nothing).
fn read_head(stream: &mut TcpStream) -> Res<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.windows(2).any(|w| w == b"\n\n") {
        let n = stream
            .read(&mut chunk)
            .ctx(|| "read the request".to_string())?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 16 * 1024 {
            return Err("request head too large".into());
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn health(release: &Release, config: &Config) -> (u16, serde_json::Value) {
    let found = ops::open_read_only(&config.data).and_then(|db| ops::schema(&db));
    match found {
        Ok(s) if s == release.schema => (
            200,
            serde_json::json!({ "status": "ok", "version": release.version, "schema": s }),
        ),
        Ok(s) => (
            503,
            serde_json::json!({
                "status": "schema mismatch", "version": release.version,
                "schema": s, "expected_schema": release.schema,
            }),
        ),
        Err(e) => (
            503,
            serde_json::json!({ "status": "no data", "version": release.version, "error": e }),
        ),
    }
}

fn rows(release: &Release, config: &Config) -> (u16, serde_json::Value) {
    match read_rows(&config.data) {
        Ok(rows) => (
            200,
            serde_json::json!({ "version": release.version, "rows": rows }),
        ),
        Err(e) => (503, serde_json::json!({ "error": e })),
    }
}

/// Every row as an object of its columns, whatever the schema.
pub fn read_rows(data: &Path) -> Res<Vec<serde_json::Value>> {
    let db = ops::open_read_only(data)?;
    let mut stmt = db
        .prepare("SELECT * FROM items ORDER BY id")
        .ctx(|| "read the rows".to_string())?;
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let rows = stmt
        .query_map([], |r| {
            let mut obj = serde_json::Map::new();
            for (i, name) in names.iter().enumerate() {
                let v = match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Integer(n) => serde_json::json!(n),
                    rusqlite::types::ValueRef::Real(x) => serde_json::json!(x),
                    rusqlite::types::ValueRef::Text(t) => {
                        serde_json::json!(String::from_utf8_lossy(t))
                    }
                    _ => serde_json::Value::Null,
                };
                obj.insert(name.clone(), v);
            }
            Ok(serde_json::Value::Object(obj))
        })
        .ctx(|| "read the rows".to_string())?;
    rows.collect::<Result<_, _>>()
        .ctx(|| "read the rows".to_string())
}

/// A GET to the demo service: (status, body).
pub fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let addr = (Ipv4Addr::LOCALHOST, port).into();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, body.to_string()))
}

fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Alive and not a zombie (a server whose parent has not reaped it yet
/// serves nothing).
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st != "Z"))
        })
        .unwrap_or(false)
}

/// The pid is this demo's server, not a process that reused the number.
fn is_our_server(pid: u32, layout: &Layout) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let dir = layout.dir.as_os_str().as_encoded_bytes();
    let has = |w: &[u8]| args.contains(&w);
    alive(pid) && has(b"demo-internal") && has(b"serve") && has(dir)
}

/// The server's pid when it runs.
pub fn running(layout: &Layout) -> Option<u32> {
    read_pid(&layout.pid_file()).filter(|&pid| is_our_server(pid, layout))
}

/// `status`: true while the server runs.
pub fn status(layout: &Layout) -> (bool, String) {
    match running(layout) {
        Some(pid) => {
            let version = fs::read_to_string(layout.current().join("VERSION")).unwrap_or_default();
            (
                true,
                format!("running (pid {pid}); installed release {}", version.trim()),
            )
        }
        None => (false, "stopped".into()),
    }
}

/// `start`: the server, from the release `current` points to now, detached
/// (its own process group, output to run/server.log), once it listens.
pub fn start(layout: &Layout) -> Res<String> {
    if let Some(pid) = running(layout) {
        return Ok(format!("already running (pid {pid})"));
    }
    let config = Config::load(layout)?;
    // Resolved now: the server goes on serving this release after a switch,
    // until it is restarted, like any installed program.
    let release = fs::canonicalize(layout.current())
        .ctx(|| format!("resolve {}", layout.current().display()))?;
    let version = Release::load(&release)?.version;
    durable::remove(&layout.pid_file())?;
    durable::mkdir(&layout.dir.join("run"))?;
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(layout.server_log())
        .ctx(|| format!("open {}", layout.server_log().display()))?;
    let log2 = log.try_clone().ctx(|| "log".to_string())?;
    let exe = std::env::current_exe().ctx(|| "find the hoist binary".to_string())?;
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(exe)
        .arg("demo-internal")
        .arg("serve")
        .arg("--dir")
        .arg(&layout.dir)
        .arg("--release")
        .arg(&release)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        // Its own group: whoever runs `start` may kill its own group when
        // `start` returns (hoist bounds every command that way).
        .process_group(0)
        .spawn()
        .ctx(|| "start the server".to_string())?;
    let pid = child.id();
    let deadline = Instant::now() + PATIENCE;
    loop {
        if read_pid(&layout.pid_file()) == Some(pid) {
            return Ok(format!(
                "started release {version} (pid {pid}) on http://127.0.0.1:{}/",
                config.port
            ));
        }
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!(
                "the server exited ({st}) before listening: see {}",
                layout.server_log().display()
            ));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "the server did not listen within {}s: see {}",
                PATIENCE.as_secs(),
                layout.server_log().display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `stop`: removes the pid file, which the server takes as its cue to exit,
/// and waits until it has; a server that does not go is killed. Stopping a
/// stopped service is fine.
pub fn stop(layout: &Layout) -> Res<String> {
    let pid_file = layout.pid_file();
    let Some(pid) = running(layout) else {
        durable::remove(&pid_file)?;
        return Ok("not running".into());
    };
    durable::remove(&pid_file)?;
    for signal in [None, Some(Signal::SIGTERM), Some(Signal::SIGKILL)] {
        if let Some(sig) = signal {
            let _ = kill(Pid::from_raw(pid as i32), sig);
        }
        if wait_gone(pid, PATIENCE / 2) {
            return Ok(format!("stopped (pid {pid})"));
        }
    }
    Err(format!("pid {pid} does not go away"))
}

fn wait_gone(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}
