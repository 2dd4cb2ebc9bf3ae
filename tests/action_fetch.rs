//! `fetch` end to end through the binary: downloads over http and https
//! from a server the test starts on 127.0.0.1 (and file://): https with a
//! throwaway CA and certificates made here (`rcgen`), served with rustls;
//! verified by digests,
//! checksum sidecars in coreutils and `gpg --print-md` form (seed 003
//! L76-77), and OpenPGP signatures against a keyring, a keybox or a KEYS
//! file (seed 003 L46-75). Keys are made here with `gpg --batch`; nothing
//! leaves the machine.

mod common;
use common::{gpg_revoke, hoist_in, text};

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::Digest;

// ---------------------------------------------------------------- server

#[derive(Default)]
struct Served {
    files: HashMap<String, Vec<u8>>,
    /// Paths whose next whole (not ranged) answer stops half-way.
    cut: Vec<String>,
    /// (path, Range header) of every request.
    log: Vec<(String, Option<String>)>,
}

/// A tiny HTTP/1.1 server: GET only, `Range: bytes=N-`, one request per
/// connection, over TLS when given a certificate. Stopped (and its thread
/// joined) when dropped.
struct Server {
    port: u16,
    tls: bool,
    state: Arc<Mutex<Served>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        Server::start_with(None)
    }

    /// An https server showing `cert` (its chain, then its key).
    fn start_tls(cert: &Cert) -> Server {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(cert.chain.clone(), cert.key.clone_key())
            .unwrap();
        Server::start_with(Some(Arc::new(config)))
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(Served::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let is_tls = tls.is_some();
        let thread = std::thread::spawn(move || {
            while !sp.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        // A refused handshake is an error here: the client's.
                        let _ = serve(conn, tls.as_ref(), &st);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server {
            port,
            tls: is_tls,
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn put(&self, path: &str, body: &[u8]) -> String {
        self.state
            .lock()
            .unwrap()
            .files
            .insert(path.to_string(), body.to_vec());
        self.url(path)
    }

    fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    fn cut_next(&self, path: &str) {
        self.state.lock().unwrap().cut.push(path.to_string());
    }

    fn log(&self) -> Vec<(String, Option<String>)> {
        self.state.lock().unwrap().log.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A connection the server answers on, plain or TLS.
trait Conn: Read + Write {
    /// Drops the connection half-way, as a flaky mirror's does (no TLS
    /// close_notify: the client sees the stream end early).
    fn cut(&mut self) -> std::io::Result<()>;
    /// Ends a whole answer.
    fn finish(&mut self) -> std::io::Result<()>;
}

impl Conn for TcpStream {
    fn cut(&mut self) -> std::io::Result<()> {
        self.flush()?;
        self.shutdown(std::net::Shutdown::Both)
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.flush()
    }
}

impl Conn for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    fn cut(&mut self) -> std::io::Result<()> {
        self.flush()?;
        self.sock.shutdown(std::net::Shutdown::Both)
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.conn.send_close_notify();
        self.flush()
    }
}

fn serve(
    conn: TcpStream,
    tls: Option<&Arc<rustls::ServerConfig>>,
    state: &Mutex<Served>,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    conn.set_write_timeout(Some(Duration::from_secs(10)))?;
    match tls {
        None => answer(conn, state),
        Some(config) => {
            let server =
                rustls::ServerConnection::new(config.clone()).map_err(std::io::Error::other)?;
            answer(rustls::StreamOwned::new(server, conn), state)
        }
    }
}

fn answer(mut conn: impl Conn, state: &Mutex<Served>) -> std::io::Result<()> {
    // The client sends its request and waits: the buffer reads no further.
    let mut reader = BufReader::new(&mut conn);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("range")
        {
            range = Some(v.trim().to_string());
        }
    }
    let (body, cut) = {
        let mut s = state.lock().unwrap();
        s.log.push((path.clone(), range.clone()));
        let cut = range.is_none() && s.cut.contains(&path);
        s.cut.retain(|c| !(cut && *c == path));
        (s.files.get(&path).cloned(), cut)
    };
    let out = reader.into_inner();
    let Some(body) = body else {
        out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        return out.finish();
    };
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    match start {
        Some(s) if s >= body.len() => out.write_all(
            format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        ),
        Some(s) => {
            out.write_all(
                format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {s}-{}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len() - 1,
                    body.len(),
                    body.len() - s
                )
                .as_bytes(),
            )?;
            out.write_all(&body[s..])
        }
        None => {
            out.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            )?;
            if cut {
                // The connection drops half-way, as a flaky mirror's does.
                out.write_all(&body[..body.len() / 2])?;
                return out.cut();
            }
            out.write_all(&body)
        }
    }?;
    out.finish()
}

// ---------------------------------------------------------------- TLS

/// A server certificate chain and its key, as rustls serves them.
struct Cert {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn cert(made: &rcgen::Certificate, key: &rcgen::KeyPair) -> Cert {
    Cert {
        chain: vec![made.der().clone()],
        key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    }
}

/// A throwaway certificate authority, made for one test.
struct Ca {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    /// Its certificate, what a step's `ca` file holds.
    pem: String,
}

impl Ca {
    fn new() -> Ca {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Thing Mirror CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    /// A server certificate for `names` (host names or IP addresses).
    fn issue(&self, names: &[&str]) -> Cert {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let made = rcgen::CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        cert(&made, &key)
    }
}

/// A certificate for 127.0.0.1 signed by its own key: no authority's.
fn self_signed() -> Cert {
    let key = rcgen::KeyPair::generate().unwrap();
    let made = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    cert(&made, &key)
}

// ---------------------------------------------------------------- keys

/// Two signing keys made once with gpg, and everything signed with them;
/// the gpg-agents are stopped before the files are used.
struct Keys {
    artifact: Vec<u8>,
    /// Armored detached signature of `artifact` by the release key.
    asc: Vec<u8>,
    /// The same by another key, not trusted.
    asc_other: Vec<u8>,
    /// A signature by the release key over other bytes.
    asc_wrong: Vec<u8>,
    /// Apache-style KEYS file: listings and armored blocks of both keys.
    keys_file: Vec<u8>,
    /// The release key alone: binary keyring, and a GnuPG keybox. Each
    /// product gets copies (`release.gpg`, `cloudstack-KEYS.gpg`), named
    /// relative to its recipe.
    keyring: Vec<u8>,
    keybox: Vec<u8>,
    fpr: String,
    fpr_other: String,
    /// `gpg --print-md` outputs for the artifact.
    print_md_sha512: Vec<u8>,
    print_md_md5: Vec<u8>,
}

fn gpg(home: &Path, args: &[&str]) -> Vec<u8> {
    let o = Command::new("gpg")
        .arg("--homedir")
        .arg(home)
        .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "gpg {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// The primary key's fingerprint, then its subkeys'.
fn fingerprints(home: &Path) -> Vec<String> {
    let out = String::from_utf8(gpg(home, &["--with-colons", "--list-keys"])).unwrap();
    out.lines()
        .filter_map(|l| l.strip_prefix("fpr:"))
        .map(|l| l.trim_matches(':').to_string())
        .collect()
}

fn fingerprint(home: &Path) -> String {
    fingerprints(home).swap_remove(0)
}

/// Stops the gpg-agent a test's GnuPG home started.
fn stop_agent(home: &Path) {
    let _ = Command::new("gpgconf")
        .arg("--homedir")
        .arg(home)
        .args(["--kill", "gpg-agent"])
        .output();
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("hoist-fetch-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (home, other, kbx) = (dir.join("gpg"), dir.join("gpg-other"), dir.join("gpg-kbx"));
        for h in [&home, &other, &kbx] {
            std::fs::create_dir_all(h).unwrap();
            chmod(h, 0o700);
        }
        gpg(
            &home,
            &[
                "--quick-gen-key",
                "Release Manager <rm@example.org>",
                "rsa2048",
                "sign",
                "never",
            ],
        );
        gpg(
            &other,
            &[
                "--quick-gen-key",
                "Someone Else <else@example.org>",
                "ed25519",
                "sign",
                "never",
            ],
        );
        let artifact: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let art = dir.join("apache-thing-1.0-src.tar.bz2");
        std::fs::write(&art, &artifact).unwrap();
        let wrong = dir.join("wrong");
        std::fs::write(&wrong, b"not the artifact").unwrap();
        let a = art.to_str().unwrap();
        let asc = gpg(&home, &["--armor", "--detach-sign", "--output", "-", a]);
        let asc_other = gpg(&other, &["--armor", "--detach-sign", "--output", "-", a]);
        let asc_wrong = gpg(
            &home,
            &[
                "--armor",
                "--detach-sign",
                "--output",
                "-",
                wrong.to_str().unwrap(),
            ],
        );
        let mut keys_file =
            b"This file contains the PGP keys of the release managers.\n\n".to_vec();
        for h in [&other, &home] {
            keys_file.extend(gpg(h, &["--list-keys"]));
            keys_file.extend(gpg(h, &["--armor", "--export"]));
            keys_file.extend(b"\n");
        }
        let keyring = gpg(&home, &["--export"]);
        let armored = dir.join("release.asc");
        std::fs::write(&armored, gpg(&home, &["--armor", "--export"])).unwrap();
        let keybox = dir.join("cloudstack-KEYS.gpg");
        gpg(
            &kbx,
            &[
                "--no-default-keyring",
                "--keyring",
                keybox.to_str().unwrap(),
                "--import",
                armored.to_str().unwrap(),
            ],
        );
        // `gpg --print-md` runs in the artifact's directory, as the seed does.
        let print_md = |algo: &str| {
            let o = Command::new("gpg")
                .arg("--homedir")
                .arg(&home)
                .args(["--print-md", algo, "apache-thing-1.0-src.tar.bz2"])
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(o.status.success());
            o.stdout
        };
        let k = Keys {
            artifact,
            asc,
            asc_other,
            asc_wrong,
            keys_file,
            keyring,
            keybox: std::fs::read(&keybox).unwrap(),
            fpr: fingerprint(&home),
            fpr_other: fingerprint(&other),
            print_md_sha512: print_md("SHA512"),
            print_md_md5: print_md("MD5"),
        };
        for h in [&home, &other, &kbx] {
            stop_agent(h);
        }
        let _ = std::fs::remove_dir_all(&dir);
        k
    })
}

/// Keys at the ends of their lives, made with gpg at faked times: each
/// signs `keys().artifact`; the keyrings are binary exports.
struct Lifecycle {
    /// Made 2020-01-01 to expire 365 days later; signed 2020-06-01.
    expired: (Vec<u8>, Vec<u8>, String),
    /// Revoked by its owner after signing: the keyring holds the
    /// revocation; `revoked_before` is the same key exported before it.
    revoked: (Vec<u8>, Vec<u8>, String),
    revoked_before: Vec<u8>,
    /// A primary key that only certifies, never expiring, whose signing
    /// subkey expired (made 2020-01-01 for 365 days, signed 2020-06-01).
    expired_sub: (Vec<u8>, Vec<u8>, String),
    sub_fpr: String,
    /// Expiring in five years: valid now.
    expiring: (Vec<u8>, Vec<u8>, String),
}

fn lifecycle() -> &'static Lifecycle {
    static KEYS: OnceLock<Lifecycle> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("hoist-fetch-life-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let art = dir.join("artifact");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&art, &keys().artifact).unwrap();
        let a = art.to_str().unwrap();
        let home = |name: &str| {
            let h = dir.join(name);
            std::fs::create_dir_all(&h).unwrap();
            chmod(&h, 0o700);
            h
        };
        const MADE: &str = "--faked-system-time=20200101T000000!";
        const SIGNED: &str = "--faked-system-time=20200601T000000!";
        let sign = |h: &Path, time: Option<&str>, user: Option<&str>| {
            let mut args: Vec<&str> = time.into_iter().collect();
            if let Some(u) = user {
                args.extend(["--local-user", u]);
            }
            args.extend(["--armor", "--detach-sign", "--output", "-", a]);
            gpg(h, &args)
        };
        let uid = |name: &str| format!("{name} <{}@example.org>", name.to_lowercase());

        let e = home("expired");
        gpg(
            &e,
            &[
                MADE,
                "--quick-gen-key",
                &uid("Expired"),
                "ed25519",
                "sign",
                "1y",
            ],
        );
        let expired = (
            gpg(&e, &["--export"]),
            sign(&e, Some(SIGNED), None),
            fingerprint(&e),
        );

        let r = home("revoked");
        gpg(
            &r,
            &[
                "--quick-gen-key",
                &uid("Revoked"),
                "ed25519",
                "sign",
                "never",
            ],
        );
        let r_fpr = fingerprint(&r);
        let r_asc = sign(&r, None, None);
        let revoked_before = gpg(&r, &["--export"]);
        gpg_revoke(&r, &r_fpr);
        let revoked = (gpg(&r, &["--export"]), r_asc, r_fpr);

        let s = home("expired-sub");
        gpg(
            &s,
            &[
                MADE,
                "--quick-gen-key",
                &uid("Subkeyed"),
                "ed25519",
                "cert",
                "never",
            ],
        );
        let s_fpr = fingerprint(&s);
        gpg(
            &s,
            &[MADE, "--quick-add-key", &s_fpr, "ed25519", "sign", "1y"],
        );
        let sub_fpr = fingerprints(&s)[1].clone();
        let s_asc = sign(&s, Some(SIGNED), Some(&format!("{sub_fpr}!")));
        let expired_sub = (gpg(&s, &["--export"]), s_asc, s_fpr);

        let v = home("expiring");
        gpg(
            &v,
            &["--quick-gen-key", &uid("Expiring"), "ed25519", "sign", "5y"],
        );
        let expiring = (
            gpg(&v, &["--export"]),
            sign(&v, None, None),
            fingerprint(&v),
        );

        for h in [&e, &r, &s, &v] {
            stop_agent(h);
        }
        let _ = std::fs::remove_dir_all(&dir);
        Lifecycle {
            expired,
            revoked,
            revoked_before,
            expired_sub,
            sub_fpr,
            expiring,
        }
    })
}

// ---------------------------------------------------------------- product

struct Product {
    dir: PathBuf,
}

impl Product {
    fn new(name: &str) -> Product {
        let dir = std::env::temp_dir().join(format!("hoist-fetch-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = Product { dir };
        p.write("VERSION", "1.0\n");
        p
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.path(rel), text).unwrap();
    }

    /// A recipe whose prepare phase is `steps` (TOML), followed by an
    /// install step that switches VERSION and leaves a mark.
    fn recipe(&self, steps: &str) {
        let k = keys();
        std::fs::write(self.path("release.gpg"), &k.keyring).unwrap();
        std::fs::write(self.path("cloudstack-KEYS.gpg"), &k.keybox).unwrap();
        let d = self.dir.display();
        self.write(
            "recipe.toml",
            &format!(
                r#"[product]
name = "thing"
version = {{ file = "{d}/VERSION" }}

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

{steps}

[[steps]]
id = "install"
phase = "install"
exec = {{ shell = "echo 2.0 > {d}/VERSION && touch {d}/installed" }}
undo = {{ exec = {{ shell = "echo 1.0 > {d}/VERSION && rm -f {d}/installed" }} }}
"#
            ),
        );
    }

    fn hoist(&self, state: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = hoist_in(&self.path(state));
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn upgrade(&self, state: &str, env: &[(&str, &str)]) -> Output {
        let r = self.path("recipe.toml");
        self.hoist(state, &["upgrade", "--yes", "-r", r.to_str().unwrap()], env)
    }

    fn download_only(&self, state: &str) -> Output {
        let r = self.path("recipe.toml");
        self.hoist(
            state,
            &["upgrade", "--yes", "-d", "-r", r.to_str().unwrap()],
            &[],
        )
    }

    fn bytes(&self, rel: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(rel)).ok()
    }

    /// The upgrade `o` failed saying each of `said`, and left everything
    /// as it was: `a` (`OLD`, written before), no `.part`, not installed.
    fn refused_untouched(&self, name: &str, o: &Output, said: &[&str]) {
        let out = text(o);
        assert!(!o.status.success(), "{name}: {out}");
        for s in said {
            assert!(out.contains(s), "{name}: want `{s}` in {out}");
        }
        assert_eq!(self.bytes("a").as_deref(), Some(OLD.as_bytes()), "{name}");
        assert!(!self.path("a.part").exists(), "{name}");
        assert!(!self.path("installed").exists(), "{name}");
        assert_eq!(
            self.bytes("VERSION").as_deref(),
            Some(&b"1.0\n"[..]),
            "{name}"
        );
    }
}

/// What `a` holds before a download that must not replace it.
const OLD: &str = "the old artifact\n";

impl Drop for Product {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fetch_step(id: &str, table: &str) -> String {
    format!("[[steps]]\nid = \"{id}\"\nphase = \"prepare\"\nfetch = {{ {table} }}\n")
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn run_log(p: &Product, state: &str) -> String {
    let mut all = String::new();
    for e in walk(&p.path(state)) {
        if e.extension().is_some_and(|x| x == "log") {
            all.push_str(&std::fs::read_to_string(&e).unwrap_or_default());
        }
    }
    all
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

const NAME: &str = "apache-thing-1.0-src.tar.bz2";

// ---------------------------------------------------------------- tests

#[test]
fn sha256_and_sha512_digests_verify_a_download() {
    let k = keys();
    let s = Server::start();
    let url = s.put(&format!("/{NAME}"), &k.artifact);
    let p = Product::new("digests");
    let d = p.dir.display();
    p.recipe(&format!(
        "{}{}",
        fetch_step(
            "by-sha256",
            &format!(
                r#"url = "{url}", dest = "{d}/a256", sha256 = "{}""#,
                hex(&sha2::Sha256::digest(&k.artifact))
            )
        ),
        fetch_step(
            "by-sha512",
            &format!(
                r#"url = "{url}", dest = "{d}/a512", sha512 = "{}", md5 = "{}""#,
                hex(&sha2::Sha512::digest(&k.artifact)),
                hex(&md5::Md5::digest(&k.artifact))
            )
        ),
    ));
    let o = p.download_only("state");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.bytes("a256").as_deref(), Some(&k.artifact[..]));
    assert_eq!(p.bytes("a512").as_deref(), Some(&k.artifact[..]));
    assert!(!p.path("a256.part").exists());
}

#[test]
fn checksum_sidecars_in_coreutils_and_print_md_forms() {
    let k = keys();
    let s = Server::start();
    let url = s.put(&format!("/{NAME}"), &k.artifact);
    let coreutils = format!("{}  {NAME}\n", hex(&sha2::Sha512::digest(&k.artifact)));
    let c = s.put(&format!("/{NAME}.sha512"), coreutils.as_bytes());
    // Apache's `.sha` and `.md5`: `gpg --print-md` output, wrapped.
    let sha = s.put(&format!("/{NAME}.sha"), &k.print_md_sha512);
    let md5 = s.put(&format!("/{NAME}.md5"), &k.print_md_md5);
    assert!(String::from_utf8_lossy(&k.print_md_sha512).contains(&format!("{NAME}:")));
    let p = Product::new("sidecars");
    let d = p.dir.display();
    p.recipe(&format!(
        "{}{}",
        fetch_step(
            "coreutils",
            &format!(r#"url = "{url}", dest = "{d}/a", checksum_urls = ["{c}"]"#)
        ),
        fetch_step(
            "print-md",
            &format!(r#"url = "{url}", dest = "{d}/b", checksum_urls = ["{md5}", "{sha}"]"#)
        ),
    ));
    let o = p.download_only("state");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.bytes("a").as_deref(), Some(&k.artifact[..]));
    assert_eq!(p.bytes("b").as_deref(), Some(&k.artifact[..]));
    let log = run_log(&p, "state");
    assert!(
        log.contains(&format!("md5 from {md5}")) && log.contains(&format!("sha512 from {sha}")),
        "{log}"
    );

    // A sidecar that does not match refuses the artifact.
    let q = Product::new("sidecar-bad");
    let bad = s.put(
        "/bad.sha512",
        format!("{}  {NAME}\n", hex(&sha2::Sha512::digest(b"x"))).as_bytes(),
    );
    let d = q.dir.display();
    q.recipe(&fetch_step(
        "f",
        &format!(r#"url = "{url}", dest = "{d}/a", checksum_urls = ["{bad}"]"#),
    ));
    let o = q.download_only("state");
    assert!(!o.status.success());
    assert!(text(&o).contains("refused"), "{}", text(&o));
    assert!(!q.path("a").exists() && !q.path("a.part").exists());
}

#[test]
fn signature_checked_against_a_keyring_and_a_keybox() {
    let k = keys();
    let s = Server::start();
    let url = s.put(&format!("/{NAME}"), &k.artifact);
    let asc = s.put(&format!("/{NAME}.asc"), &k.asc);
    let p = Product::new("keyring");
    let d = p.dir.display();
    p.recipe(&format!(
        "{}{}",
        fetch_step("keyring", &format!(r#"url = "{url}", dest = "{d}/a", signature = {{ url = "{asc}", keyring = "{}" }}"#, "release.gpg")),
        // The keybox `gpg --keyring FILE --import` makes, as the CloudStack
        // recipe's import-release-keys step does.
        fetch_step("keybox", &format!(r#"url = "{url}", dest = "{d}/b", signature = {{ url = "{asc}", keyring = "{}" }}, fingerprints = ["{}"]"#, "cloudstack-KEYS.gpg", k.fpr)),
    ));
    let o = p.download_only("state");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.bytes("a").as_deref(), Some(&k.artifact[..]));
    assert_eq!(p.bytes("b").as_deref(), Some(&k.artifact[..]));
    assert!(run_log(&p, "state").contains(&format!("by key {}", k.fpr.to_lowercase())));
}

#[test]
fn signature_checked_against_a_keys_file_with_pinned_fingerprints() {
    let k = keys();
    let s = Server::start();
    let url = s.put(&format!("/{NAME}"), &k.artifact);
    let asc = s.put(&format!("/{NAME}.asc"), &k.asc);
    let keys_url = s.put("/KEYS", &k.keys_file);
    let sha = s.put(&format!("/{NAME}.sha"), &k.print_md_sha512);
    let p = Product::new("keys-file");
    let d = p.dir.display();
    p.recipe(&fetch_step(
        "f",
        &format!(r#"url = "{url}", dest = "{d}/a", checksum_urls = ["{sha}"], signature = {{ url = "{asc}" }}, keys_url = "{keys_url}", fingerprints = ["{}"]"#, k.fpr),
    ));
    let o = p.download_only("state");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.bytes("a").as_deref(), Some(&k.artifact[..]));
}

#[test]
fn a_bad_signature_is_refused_with_nothing_written() {
    let k = keys();
    let s = Server::start();
    let url = s.put(&format!("/{NAME}"), &k.artifact);
    let keys_url = s.put("/KEYS", &k.keys_file);
    let cases = [
        // Made by a key the keyring does not hold.
        (
            "untrusted",
            s.put("/other.asc", &k.asc_other),
            format!(r#"keyring = "{}""#, "release.gpg"),
            String::new(),
            "not among the 1 trusted key(s)",
        ),
        // Made by the right key over other bytes.
        (
            "wrong-data",
            s.put("/wrong.asc", &k.asc_wrong),
            format!(r#"keyring = "{}""#, "cloudstack-KEYS.gpg"),
            String::new(),
            "bad signature by key",
        ),
        // In the KEYS file, but not the pinned key.
        (
            "not-pinned",
            s.put("/other2.asc", &k.asc_other),
            String::new(),
            format!(r#", keys_url = "{keys_url}", fingerprints = ["{}"]"#, k.fpr),
            "not among `fingerprints`",
        ),
    ];
    for (name, asc, keyring, extra, why) in cases {
        let p = Product::new(&format!("badsig-{name}"));
        p.write("a", OLD);
        let d = p.dir.display();
        let sep = if keyring.is_empty() { "" } else { ", " };
        p.recipe(&fetch_step("f", &format!(r#"url = "{url}", dest = "{d}/a", signature = {{ url = "{asc}"{sep}{keyring} }}{extra}"#)));
        let o = p.upgrade("state", &[]);
        p.refused_untouched(name, &o, &["refused", why]);
    }
    // The other key is in the KEYS file: only the pin kept it out.
    assert!(String::from_utf8_lossy(&k.keys_file).contains(&k.fpr_other));
}

#[test]
fn a_tampered_artifact_is_refused_with_nothing_changed() {
    let k = keys();
    let s = Server::start();
    let mut tampered = k.artifact.clone();
    tampered[1000] ^= 1;
    let url = s.put(&format!("/{NAME}"), &tampered);
    let asc = s.put(&format!("/{NAME}.asc"), &k.asc);
    let p = Product::new("tampered");
    p.write("a", OLD);
    let d = p.dir.display();
    p.recipe(&format!(
        "{}{}",
        fetch_step(
            "digest",
            &format!(
                r#"url = "{url}", dest = "{d}/a", sha512 = "{}""#,
                hex(&sha2::Sha512::digest(&k.artifact))
            )
        ),
        fetch_step(
            "signed",
            &format!(
                r#"url = "{url}", dest = "{d}/b", signature = {{ url = "{asc}", keyring = "{}" }}"#,
                "release.gpg"
            )
        ),
    ));
    let o = p.upgrade("state", &[]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("sha512 is"), "{}", text(&o));
    assert_eq!(p.bytes("a").as_deref(), Some(&b"the old artifact\n"[..]));
    assert!(!p.path("a.part").exists() && !p.path("b").exists());
    assert!(!p.path("installed").exists());

    // The signed one alone, tampered: refused by the signature.
    let q = Product::new("tampered-signed");
    let d = q.dir.display();
    q.recipe(&fetch_step(
        "signed",
        &format!(
            r#"url = "{url}", dest = "{d}/b", signature = {{ url = "{asc}", keyring = "{}" }}"#,
            "release.gpg"
        ),
    ));
    let o = q.upgrade("state", &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("bad signature"), "{}", text(&o));
    assert!(!q.path("b").exists() && !q.path("b.part").exists() && !q.path("installed").exists());
}

/// A download that `s` cuts half-way is finished by the step's retry,
/// which asks only for the rest (`Range`); `extra` adds to the step's
/// table. Where the retry started.
fn resumed_after_a_cut(s: &Server, p: &Product, extra: &str) -> usize {
    let k = keys();
    let path = format!("/{NAME}");
    let url = s.put(&path, &k.artifact);
    s.cut_next(&path);
    let d = p.dir.display();
    p.recipe(&format!(
        "{}retries = 1\n",
        fetch_step(
            "f",
            &format!(
                r#"url = "{url}", dest = "{d}/a", sha256 = "{}"{extra}"#,
                hex(&sha2::Sha256::digest(&k.artifact))
            )
        )
    ));
    let o = p.download_only("state");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.bytes("a").as_deref(), Some(&k.artifact[..]));
    let gets: Vec<Option<String>> = s
        .log()
        .into_iter()
        .filter(|(p, _)| *p == path)
        .map(|(_, r)| r)
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[0], None);
    let from: usize = gets[1]
        .as_deref()
        .unwrap()
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(from > 0 && from <= k.artifact.len() / 2, "{gets:?}");
    from
}

#[test]
fn an_interrupted_download_resumes_with_range() {
    resumed_after_a_cut(&Server::start(), &Product::new("resume"), "");
}

#[test]
fn a_download_over_max_size_is_refused() {
    let k = keys();
    let s = Server::start();
    let url = s.put(&format!("/{NAME}"), &k.artifact);
    let p = Product::new("size-cap");
    let d = p.dir.display();
    p.recipe(&fetch_step(
        "f",
        &format!(
            r#"url = "{url}", dest = "{d}/a", sha256 = "{}", max_size = "100K""#,
            hex(&sha2::Sha256::digest(&k.artifact))
        ),
    ));
    let o = p.download_only("state");
    assert!(!o.status.success());
    assert!(text(&o).contains("max_size"), "{}", text(&o));
    assert!(!p.path("a").exists() && !p.path("a.part").exists());
}

#[test]
fn an_upgrade_fetches_in_prepare_and_rollback_puts_the_old_file_back() {
    let k = keys();
    let p = Product::new("upgrade");
    let d = p.dir.display();
    let src = p.path("artifact");
    std::fs::write(&src, &k.artifact).unwrap();
    p.write("a", OLD);
    p.recipe(&format!(
        "{}{}",
        fetch_step(
            "replace",
            &format!(
                r#"url = "file://{}", dest = "{d}/a", sha256 = "{}""#,
                src.display(),
                hex(&sha2::Sha256::digest(&k.artifact))
            )
        ),
        fetch_step(
            "new",
            &format!(
                r#"url = "file://{}", dest = "{d}/b", sha256 = "{}""#,
                src.display(),
                hex(&sha2::Sha256::digest(&k.artifact))
            )
        ),
    ));
    let plan = p.hoist(
        "state0",
        &["plan", "-r", p.path("recipe.toml").to_str().unwrap()],
        &[],
    );
    assert!(
        !text(&plan).contains("not yet supported"),
        "{}",
        text(&plan)
    );

    // A failure after the downloads: both are undone by the built-in undo.
    let o = p.upgrade("state1", &[("HOIST_TEST_FAIL_AT", "install")]);
    assert!(!o.status.success(), "{}", text(&o));
    assert_eq!(p.bytes("a").as_deref(), Some(&b"the old artifact\n"[..]));
    assert!(!p.path("b").exists());
    assert_eq!(p.bytes("VERSION").as_deref(), Some(&b"1.0\n"[..]));

    // A tampered artifact stops the run in prepare: nothing else happens.
    let mut tampered = k.artifact.clone();
    tampered[7] ^= 0x80;
    std::fs::write(&src, &tampered).unwrap();
    let o = p.upgrade("state2", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("refused"), "{}", text(&o));
    assert_eq!(p.bytes("a").as_deref(), Some(&b"the old artifact\n"[..]));
    assert!(!p.path("b").exists() && !p.path("installed").exists());
    assert_eq!(p.bytes("VERSION").as_deref(), Some(&b"1.0\n"[..]));

    // The real artifact: the upgrade goes through.
    std::fs::write(&src, &k.artifact).unwrap();
    let o = p.upgrade("state3", &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.bytes("a").as_deref(), Some(&k.artifact[..]));
    assert_eq!(p.bytes("b").as_deref(), Some(&k.artifact[..]));
    assert_eq!(p.bytes("VERSION").as_deref(), Some(&b"2.0\n"[..]));
}

#[test]
fn lint_refuses_md5_alone_and_a_signature_without_keys() {
    let p = Product::new("lint");
    let d = p.dir.display();
    p.recipe(&format!(
        "{}{}{}",
        fetch_step("md5", &format!(r#"url = "http://127.0.0.1:9/a", dest = "{d}/a", md5 = "{}""#, "0".repeat(32))),
        fetch_step("nokeys", r#"url = "http://127.0.0.1:9/a", dest = "/tmp/x", signature = { url = "http://127.0.0.1:9/a.asc" }"#),
        fetch_step("ca-http", &format!(r#"url = "http://127.0.0.1:9/a", dest = "/tmp/y", sha256 = "{}", ca = "ca.pem""#, "0".repeat(64))),
    ));
    let o = p.hoist(
        "state",
        &["lint", p.path("recipe.toml").to_str().unwrap()],
        &[],
    );
    assert!(!o.status.success());
    let out = text(&o);
    assert!(
        out.contains("weak-fetch")
            && out.contains("no-trusted-keys")
            && out.contains("ca-without-https"),
        "{out}"
    );
}

#[test]
fn a_part_left_by_a_crash_is_resumed_and_a_torn_one_replaced() {
    let k = keys();
    let s = Server::start();
    let path = format!("/{NAME}");
    let url = s.put(&path, &k.artifact);
    let sha = hex(&sha2::Sha256::digest(&k.artifact));
    let half = k.artifact.len() / 2;
    for (name, part) in [
        // What a killed hoist leaves: the first bytes, as they came.
        ("kept", k.artifact[..half].to_vec()),
        // What a power cut can leave: a tail that is not the file's.
        ("torn", vec![0u8; half]),
    ] {
        let p = Product::new(&format!("part-{name}"));
        let d = p.dir.display();
        std::fs::write(p.path("a.part"), &part).unwrap();
        p.recipe(&fetch_step(
            "f",
            &format!(r#"url = "{url}", dest = "{d}/a", sha256 = "{sha}""#),
        ));
        let before = s.log().len();
        let o = p.download_only("state");
        assert!(o.status.success(), "{name}: {}", text(&o));
        assert_eq!(p.bytes("a").as_deref(), Some(&k.artifact[..]), "{name}");
        assert!(!p.path("a.part").exists(), "{name}");
        let gets: Vec<Option<String>> = s.log()[before..].iter().map(|(_, r)| r.clone()).collect();
        let ranged = Some(format!("bytes={half}-"));
        match name {
            "kept" => assert_eq!(gets, vec![ranged], "{name}"),
            _ => assert_eq!(
                gets,
                vec![ranged, None],
                "{name}: resumed, refused, then whole"
            ),
        }
    }
}

#[test]
fn killed_after_the_download_resume_finds_it_applied() {
    let k = keys();
    let s = Server::start();
    let path = format!("/{NAME}");
    let url = s.put(&path, &k.artifact);
    let p = Product::new("crash-after");
    let d = p.dir.display();
    p.recipe(&fetch_step(
        "f",
        &format!(
            r#"url = "{url}", dest = "{d}/a", sha256 = "{}""#,
            hex(&sha2::Sha256::digest(&k.artifact))
        ),
    ));
    let o = p.upgrade("state", &[("HOIST_TEST_CRASH_AT", "f:after")]);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(o.status.signal(), Some(9), "{}", text(&o));
    assert_eq!(p.bytes("a").as_deref(), Some(&k.artifact[..]));
    let o = p.hoist("state", &["resume"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.bytes("VERSION").as_deref(), Some(&b"2.0\n"[..]));
    // The probe read the file there; nothing was downloaded again.
    assert_eq!(s.log().iter().filter(|(p, _)| *p == path).count(), 1);
}

#[test]
fn https_from_a_server_the_step_ca_vouches_for_is_downloaded_and_verified() {
    let k = keys();
    let ca = Ca::new();
    let s = Server::start_tls(&ca.issue(&["127.0.0.1", "localhost"]));
    let url = s.put(&format!("/{NAME}"), &k.artifact);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let asc = s.put(&format!("/{NAME}.asc"), &k.asc);
    let sha = s.put(&format!("/{NAME}.sha"), &k.print_md_sha512);
    let p = Product::new("https");
    p.write("mirror-ca.pem", &ca.pem);
    let d = p.dir.display();
    // Artifact, checksum file and signature all over https; `ca` is named
    // relative to the recipe.
    p.recipe(&fetch_step(
        "f",
        &format!(
            r#"url = "{url}", dest = "{d}/a", checksum_urls = ["{sha}"], signature = {{ url = "{asc}", keyring = "release.gpg" }}, ca = "mirror-ca.pem""#
        ),
    ));
    let o = p.download_only("state");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.bytes("a").as_deref(), Some(&k.artifact[..]));
    let log = run_log(&p, "state");
    assert!(
        log.contains(&format!("sha512 from {sha}"))
            && log.contains(&format!("OpenPGP signature {asc}")),
        "{log}"
    );
    assert_eq!(s.log().len(), 3, "{:?}", s.log());
}

#[test]
fn https_refuses_an_unknown_authority_or_a_certificate_for_another_name() {
    let k = keys();
    let ca = Ca::new();
    let good = Server::start_tls(&ca.issue(&["127.0.0.1"]));
    let lone = Server::start_tls(&self_signed());
    let other_name = Server::start_tls(&ca.issue(&["mirror.example.org"]));
    let sha = hex(&sha2::Sha256::digest(&k.artifact));
    let path = format!("/{NAME}");
    let cases = [
        // The host's CA bundle does not know the throwaway authority.
        ("no-ca", &good, "", "UnknownIssuer"),
        // A certificate that signs itself, with the mirror's CA trusted.
        (
            "self-signed",
            &lone,
            r#", ca = "mirror-ca.pem""#,
            "UnknownIssuer",
        ),
        // Issued by the trusted authority, for another host.
        (
            "other-name",
            &other_name,
            r#", ca = "mirror-ca.pem""#,
            "not valid for name",
        ),
    ];
    for (name, server, ca_key, why) in cases {
        let url = server.put(&path, &k.artifact);
        let p = Product::new(&format!("tls-{name}"));
        p.write("mirror-ca.pem", &ca.pem);
        p.write("a", OLD);
        let d = p.dir.display();
        p.recipe(&fetch_step(
            "f",
            &format!(r#"url = "{url}", dest = "{d}/a", sha256 = "{sha}"{ca_key}"#),
        ));
        let o = p.upgrade("state", &[]);
        p.refused_untouched(name, &o, &["certificate is refused", why]);
        // Refused in the handshake: no request was ever read.
        assert!(server.log().is_empty(), "{name}: {:?}", server.log());
    }

    // A `ca` that is missing, or holds no certificate, is said so.
    let url = good.url(&path);
    for (name, ca_file, why) in [
        ("missing", "nowhere.pem", "No such file"),
        ("not-pem", "release.gpg", "no PEM certificate"),
    ] {
        let p = Product::new(&format!("tls-ca-{name}"));
        let d = p.dir.display();
        p.recipe(&fetch_step(
            "f",
            &format!(r#"url = "{url}", dest = "{d}/a", sha256 = "{sha}", ca = "{ca_file}""#),
        ));
        let o = p.download_only("state");
        assert!(!o.status.success(), "{name}: {}", text(&o));
        let out = text(&o);
        assert!(
            out.contains("`ca`") && out.contains(ca_file) && out.contains(why),
            "{name}: {out}"
        );
        assert!(!p.path("a").exists(), "{name}");
    }
}

#[test]
fn an_interrupted_https_download_resumes_with_range() {
    let ca = Ca::new();
    let s = Server::start_tls(&ca.issue(&["127.0.0.1"]));
    let p = Product::new("https-resume");
    p.write("mirror-ca.pem", &ca.pem);
    let from = resumed_after_a_cut(&s, &p, r#", ca = "mirror-ca.pem""#);
    assert!(run_log(&p, "state").contains(&format!("resuming after {from} bytes")));
}

#[test]
fn a_signature_by_a_revoked_or_expired_key_is_refused_and_a_valid_one_accepted() {
    let k = keys();
    let l = lifecycle();
    let s = Server::start();
    let url = s.put(&format!("/{NAME}"), &k.artifact);
    let lower = |f: &str| f.to_lowercase();
    let cases = [
        (
            "expired",
            &l.expired,
            None,
            format!("key {} expired on 2020-12-31", lower(&l.expired.2)),
        ),
        (
            "revoked",
            &l.revoked,
            None,
            format!("key {} is revoked by its owner", lower(&l.revoked.2)),
        ),
        // The keyring has the key as it was; the KEYS file has it revoked.
        (
            "revoked-in-keys",
            &l.revoked,
            Some(&l.revoked_before),
            format!("key {} is revoked by its owner", lower(&l.revoked.2)),
        ),
        (
            "expired-subkey",
            &l.expired_sub,
            None,
            format!(
                "subkey {} of key {} expired on 2020-12-31",
                lower(&l.sub_fpr),
                lower(&l.expired_sub.2)
            ),
        ),
    ];
    for (name, (keyring, asc, _), before, why) in cases {
        let asc = s.put(&format!("/{name}.asc"), asc);
        let p = Product::new(&format!("life-{name}"));
        p.write("a", OLD);
        let d = p.dir.display();
        let trust = match before {
            // The keyring file holds the unrevoked copy, the KEYS file
            // the revoked one.
            Some(old) => {
                std::fs::write(p.path("k.gpg"), old).unwrap();
                let keys_url = s.put(&format!("/{name}-KEYS"), keyring);
                format!(r#", keyring = "k.gpg" }}, keys_url = "{keys_url}""#)
            }
            None => {
                std::fs::write(p.path("k.gpg"), keyring).unwrap();
                r#", keyring = "k.gpg" }"#.to_string()
            }
        };
        p.recipe(&fetch_step(
            "f",
            &format!(r#"url = "{url}", dest = "{d}/a", signature = {{ url = "{asc}"{trust}"#),
        ));
        let o = p.upgrade("state", &[]);
        p.refused_untouched(name, &o, &[&why, "refused"]);
    }

    // A key that expires, but not yet; a signature made while the key was
    // valid (the expired key's) is refused above only because it is
    // expired now.
    let (keyring, asc, fpr) = &l.expiring;
    let asc = s.put("/expiring.asc", asc);
    let p = Product::new("life-valid");
    std::fs::write(p.path("k.gpg"), keyring).unwrap();
    let d = p.dir.display();
    p.recipe(&fetch_step(
        "f",
        &format!(
            r#"url = "{url}", dest = "{d}/a", signature = {{ url = "{asc}", keyring = "k.gpg" }}"#
        ),
    ));
    let o = p.upgrade("state", &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.bytes("a").as_deref(), Some(&k.artifact[..]));
    assert!(run_log(&p, "state").contains(&format!("by key {}", fpr.to_lowercase())));
}
