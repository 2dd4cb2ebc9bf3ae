//! A vendor's HTTP mirror on the test LAN: serves the repository tree (or
//! any directory) from the runner, so apt on a host really downloads
//! packages into its cache (a `file:` source never does), a download can
//! be slowed down to a chosen rate, and a test can count what was fetched
//! (a `-d` run then a `-f` run: the second must fetch no package).
//!
//! Hosts find it by name: [`Mirror::alias_on`] maps a vendor's host name
//! (`mirror.xivo.fr`) to the runner's address in the host's /etc/hosts, so
//! recipes keep their real URLs.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::net::IpAddr;
use std::net::Ipv4Addr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::host::Host;

/// How often the accept loop looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);

struct Shared {
    root: PathBuf,
    aliases: BTreeMap<String, PathBuf>,
    /// Bytes per second for `.deb` files; 0: unlimited.
    rate: AtomicU64,
    /// `.deb` files served, by client address.
    debs: Mutex<BTreeMap<IpAddr, u64>>,
    stop: AtomicBool,
}

/// An HTTP server for one directory; stops when dropped.
pub struct Mirror {
    addr: Ipv4Addr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Mirror {
    /// Serve `root` on `addr:port` (port 80 lets recipes keep plain
    /// `http://name/` URLs). `aliases` map URL paths to files anywhere
    /// (the vendor's key at `/xivo_current.key`).
    pub fn start(
        root: &Path,
        addr: Ipv4Addr,
        port: u16,
        aliases: &[(&str, &Path)],
    ) -> Result<Mirror> {
        let server = tiny_http::Server::http((addr, port))
            .map_err(|e| Error::Spec(format!("mirror on {addr}:{port}: {e}")))?;
        let shared = Arc::new(Shared {
            root: root.to_path_buf(),
            aliases: aliases
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_path_buf()))
                .collect(),
            rate: AtomicU64::new(0),
            debs: Mutex::new(BTreeMap::new()),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            while !s.stop.load(Ordering::SeqCst) {
                match server.recv_timeout(POLL) {
                    Ok(Some(req)) => {
                        let s = s.clone();
                        // One thread per request: a slowed download must not
                        // hold up the index files apt asks for meanwhile.
                        std::thread::spawn(move || serve(&s, req));
                    }
                    Ok(None) => {}
                    Err(_) => break,
                }
            }
        });
        Ok(Mirror {
            addr,
            shared,
            thread: Some(thread),
        })
    }

    /// Limit `.deb` downloads to `bytes_per_second` (0: no limit).
    pub fn set_rate(&self, bytes_per_second: u64) {
        self.shared.rate.store(bytes_per_second, Ordering::SeqCst);
    }

    /// How many `.deb` files were served to `host` so far.
    pub fn debs_served_to(&self, host: &Host) -> u64 {
        let debs = self.shared.debs.lock().unwrap_or_else(|p| p.into_inner());
        debs.get(&IpAddr::V4(host.addr())).copied().unwrap_or(0)
    }

    /// Make `name` resolve to this mirror on `host` (its /etc/hosts).
    pub fn alias_on(&self, host: &Host, name: &str) -> Result<()> {
        host.exec(&format!(
            "sed -i '/ {name}$/d' /etc/hosts && echo '{} {name}' >> /etc/hosts",
            self.addr
        ))
        .map(drop)
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(s: &Shared, req: tiny_http::Request) {
    let url = req.url().split('?').next().unwrap_or("").to_string();
    let path = s.aliases.get(&url).cloned().or_else(|| {
        let rel = Path::new(url.trim_start_matches('/'));
        // Only plain names below the root: no `..`, no absolute paths.
        rel.components()
            .all(|c| matches!(c, Component::Normal(_)))
            .then(|| s.root.join(rel))
    });
    let file = path.as_ref().filter(|p| p.is_file()).and_then(|p| {
        let f = File::open(p).ok()?;
        let len = f.metadata().ok()?.len();
        Some((f, len))
    });
    let Some((file, len)) = file else {
        let _ = req.respond(tiny_http::Response::empty(404));
        return;
    };
    let is_deb = url.ends_with(".deb");
    if is_deb && let Some(peer) = req.remote_addr() {
        let mut debs = s.debs.lock().unwrap_or_else(|p| p.into_inner());
        *debs.entry(peer.ip()).or_default() += 1;
    }
    let rate = if is_deb {
        s.rate.load(Ordering::SeqCst)
    } else {
        0
    };
    let body = Throttled {
        inner: file,
        rate,
        sent: 0,
        since: Instant::now(),
    };
    let _ = req.respond(tiny_http::Response::new(
        tiny_http::StatusCode(200),
        Vec::new(),
        body,
        Some(len as usize),
        None,
    ));
}

/// A reader that keeps to `rate` bytes per second on average.
struct Throttled {
    inner: File,
    rate: u64,
    sent: u64,
    since: Instant,
}

impl Read for Throttled {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.rate == 0 {
            return self.inner.read(buf);
        }
        // Small chunks, then sleep until the average is back to the rate.
        let chunk = buf.len().min(16 * 1024);
        let n = self.inner.read(&mut buf[..chunk])?;
        self.sent += n as u64;
        let due = Duration::from_secs_f64(self.sent as f64 / self.rate as f64);
        if let Some(wait) = due.checked_sub(self.since.elapsed()) {
            std::thread::sleep(wait);
        }
        Ok(n)
    }
}
