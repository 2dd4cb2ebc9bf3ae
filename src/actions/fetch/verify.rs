//! Digests and checksum sidecar files, and the one streamed pass that
//! checks an artifact against all of them and its signature.

use std::io::Read;
use std::path::Path;

use sha2::Digest;

use super::openpgp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algo {
    Md5,
    Sha256,
    Sha384,
    Sha512,
}

impl Algo {
    pub fn name(self) -> &'static str {
        match self {
            Algo::Md5 => "md5",
            Algo::Sha256 => "sha256",
            Algo::Sha384 => "sha384",
            Algo::Sha512 => "sha512",
        }
    }

    /// MD5 collisions are cheap to make: it only ever adds to a check.
    pub fn strong(self) -> bool {
        self != Algo::Md5
    }

    fn from_hex_len(len: usize) -> Option<Algo> {
        match len {
            32 => Some(Algo::Md5),
            64 => Some(Algo::Sha256),
            96 => Some(Algo::Sha384),
            128 => Some(Algo::Sha512),
            _ => None,
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algo::Md5 => 32,
            Algo::Sha256 => 64,
            Algo::Sha384 => 96,
            Algo::Sha512 => 128,
        }
    }
}

/// A digest the artifact must have, and where it was read.
#[derive(Clone, Debug)]
pub struct Expected {
    pub algo: Algo,
    /// Lower-case hexadecimal.
    pub hex: String,
    pub source: String,
}

enum Hasher {
    Md5(md5::Md5),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn new(algo: Algo) -> Hasher {
        match algo {
            Algo::Md5 => Hasher::Md5(md5::Md5::new()),
            Algo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algo::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            Algo::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    fn hex(self) -> String {
        match self {
            Hasher::Md5(h) => hex::encode(h.finalize()),
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha384(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// A reader that feeds every byte read through it to the hashers, so the
/// signature check and the digests share one pass over the file.
pub struct Tee<R> {
    inner: R,
    hashers: Vec<(Algo, Hasher)>,
}

impl<R: Read> Tee<R> {
    pub fn new(inner: R, algos: &[Algo]) -> Tee<R> {
        let mut hashers: Vec<(Algo, Hasher)> = Vec::new();
        for &a in algos {
            if !hashers.iter().any(|h| h.0 == a) {
                hashers.push((a, Hasher::new(a)));
            }
        }
        Tee { inner, hashers }
    }

    /// Reads what is left and returns each algorithm's digest, in hex.
    pub fn finish(mut self) -> std::io::Result<Vec<(Algo, String)>> {
        std::io::copy(&mut self, &mut std::io::sink())?;
        Ok(self
            .hashers
            .into_iter()
            .map(|(a, h)| (a, h.hex()))
            .collect())
    }
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (_, h) in &mut self.hashers {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Large reads: fewer system calls, and the hashers get whole blocks.
const CHUNK: usize = 1 << 20;

/// The digests of a file, in one streamed pass.
pub fn digest_file(path: &Path, algos: &[Algo]) -> std::io::Result<Vec<(Algo, String)>> {
    let f = std::fs::File::open(path)?;
    Tee::new(std::io::BufReader::with_capacity(CHUNK, f), algos).finish()
}

/// Everything an artifact is checked against.
pub struct Checks {
    pub digests: Vec<Expected>,
    pub signature: Option<openpgp::Check>,
}

impl Checks {
    /// Checks the file; `Ok` says how it was verified.
    pub fn verify_file(&self, path: &Path) -> Result<String, String> {
        let strong = self.signature.is_some() || self.digests.iter().any(|e| e.algo.strong());
        if !strong {
            return Err(format!(
                "{}: only MD5 could be checked, which proves nothing: refused",
                path.display()
            ));
        }
        let algos: Vec<Algo> = self.digests.iter().map(|e| e.algo).collect();
        let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut tee = Tee::new(std::io::BufReader::with_capacity(CHUNK, f), &algos);
        let mut how = Vec::new();
        let signed = self
            .signature
            .as_ref()
            .map(|check| check.verify(&mut tee, path));
        let got = tee
            .finish()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        // Digests first: "sha512 is X, expected Y" says more than a bad
        // signature when both are wrong.
        for e in &self.digests {
            let have = got
                .iter()
                .find(|g| g.0 == e.algo)
                .map(|g| g.1.as_str())
                .unwrap_or("");
            if have != e.hex {
                return Err(format!(
                    "{}: {} is {have}, {} says {}: refused",
                    path.display(),
                    e.algo.name(),
                    e.source,
                    e.hex
                ));
            }
            how.push(format!("{} from {}", e.algo.name(), e.source));
        }
        if let Some(signed) = signed {
            how.push(signed?);
        }
        Ok(how.join(", "))
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// The algorithm a sidecar's name claims, if any.
fn algo_from_suffix(url: &str) -> Option<Result<Algo, String>> {
    let lower = url.to_ascii_lowercase();
    let ext = lower.rsplit('.').next()?;
    Some(match ext {
        "md5" => Ok(Algo::Md5),
        "sha256" => Ok(Algo::Sha256),
        "sha384" => Ok(Algo::Sha384),
        "sha512" => Ok(Algo::Sha512),
        "sha1" => Err("SHA-1 checksums are not accepted (SHA-1 is broken)".to_string()),
        _ => return None,
    })
}

/// One entry of a checksum file: the name it is for (when given) and the
/// digest's hexadecimal digits.
fn entries(text: &str) -> Vec<(Option<String>, String)> {
    let mut out: Vec<(Option<String>, String)> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        i += 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        // BSD form: `SHA512 (name) = HEX`.
        if let Some((head, hex)) = line.rsplit_once(" = ")
            && let (Some(open), true) = (head.find(" ("), head.ends_with(')'))
            && is_hex(hex.trim())
        {
            out.push((
                Some(head[open + 2..head.len() - 1].to_string()),
                hex.trim().to_string(),
            ));
            continue;
        }
        // coreutils form: `HEX  name`, `HEX *name` or a bare `HEX`.
        let mut words = line.splitn(2, char::is_whitespace);
        let first = words.next().unwrap_or("");
        let rest = words.next().map(str::trim);
        if is_hex(first) && Algo::from_hex_len(first.len()).is_some() {
            let name = rest
                .filter(|r| !r.is_empty())
                .map(|r| r.trim_start_matches('*').to_string());
            // A `gpg --print-md` continuation never starts a line; a
            // coreutils name is not more hex groups.
            if name
                .as_deref()
                .is_none_or(|n| !n.split_whitespace().all(is_hex))
            {
                out.push((name, first.to_ascii_lowercase()));
                continue;
            }
        }
        // `gpg --print-md` form (seed 003 L76-77, the `.md5` and `.sha`
        // files of Apache releases): `name: HEX HEX ...`, wrapped onto
        // indented lines; MD5 comes as byte pairs (`9B 6E ...`).
        if !line.starts_with(char::is_whitespace)
            && let Some((name, first_hex)) = line
                .rsplit_once(':')
                .filter(|(_, h)| h.split_whitespace().all(is_hex))
        {
            let mut hex: String = first_hex.split_whitespace().collect();
            while i < lines.len()
                && lines[i].starts_with(char::is_whitespace)
                && lines[i].split_whitespace().all(is_hex)
                && !lines[i].trim().is_empty()
            {
                hex.extend(lines[i].split_whitespace());
                i += 1;
            }
            out.push((Some(name.trim().to_string()), hex.to_ascii_lowercase()));
        }
    }
    out
}

/// Reads a checksum file for the artifact named `name`: coreutils
/// (`sha512sum`), BSD (`shasum --tag`) or `gpg --print-md` form. The
/// algorithm comes from the digest's length, and must agree with the
/// file's suffix when that names one.
pub fn parse_sidecar(text: &str, url: &str, name: &str) -> Result<Expected, String> {
    let all = entries(text);
    let base = |n: &str| n.rsplit('/').next().unwrap_or(n).to_string();
    let mine: Vec<&(Option<String>, String)> = all
        .iter()
        .filter(|(n, _)| n.as_deref().map(base).as_deref() == Some(name))
        .collect();
    let chosen = match (mine.as_slice(), all.as_slice()) {
        ([one], _) => *one,
        ([], [only]) => only,
        ([], []) => return Err("no checksum found in it".to_string()),
        ([], _) => return Err(format!("no checksum for `{name}` in it")),
        _ => return Err(format!("more than one checksum for `{name}` in it")),
    };
    let hex = &chosen.1;
    let algo = Algo::from_hex_len(hex.len()).ok_or_else(|| {
        format!(
            "a digest of {} hexadecimal digits is no known algorithm",
            hex.len()
        )
    })?;
    if let Some(claimed) = algo_from_suffix(url) {
        let claimed = claimed?;
        if claimed != algo {
            return Err(format!(
                "the file is named for {} but holds a digest of {} hexadecimal digits (want {})",
                claimed.name(),
                hex.len(),
                claimed.hex_len()
            ));
        }
    }
    Ok(Expected {
        algo,
        hex: hex.clone(),
        source: url.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha512() -> String {
        hex::encode(sha2::Sha512::digest(b"x"))
    }

    #[test]
    fn coreutils_form() {
        let sha512 = sha512();
        let text = format!("{sha512}  other.tar\n{sha512}  a.tar.bz2\n");
        let e = parse_sidecar(&text, "http://x/a.tar.bz2.sha512", "a.tar.bz2").unwrap();
        assert_eq!(e.algo, Algo::Sha512);
        let e = parse_sidecar(&format!("{}\n", &sha512[..64]), "http://x/a.sha256", "a").unwrap();
        assert_eq!(e.algo, Algo::Sha256);
        assert!(parse_sidecar(&format!("{}\n", &sha512[..64]), "http://x/a.sha512", "a").is_err());
    }

    #[test]
    fn print_md_form() {
        // As `gpg --print-md SHA512` wraps it.
        let sha512 = sha512();
        let upper = sha512.to_ascii_uppercase();
        let groups: Vec<&str> = (0..16).map(|i| &upper[i * 8..i * 8 + 8]).collect();
        let text = format!(
            "apache-cloudstack-4.3.1-src.tar.bz2: {}\n                                     {}\n",
            groups[..6].join(" "),
            groups[6..].join(" ")
        );
        let e = parse_sidecar(
            &text,
            "http://x/y.sha",
            "apache-cloudstack-4.3.1-src.tar.bz2",
        )
        .unwrap();
        assert_eq!((e.algo, e.hex.as_str()), (Algo::Sha512, sha512.as_str()));
        let md5 = "apache-cloudstack-4.3.1-src.tar.bz2: 9B 6E 0A 1C 2D 3E 4F 50 61 72 83 94 A5 B6 C7 D8\n";
        let e =
            parse_sidecar(md5, "http://x/y.md5", "apache-cloudstack-4.3.1-src.tar.bz2").unwrap();
        assert_eq!(
            (e.algo, e.hex.as_str()),
            (Algo::Md5, "9b6e0a1c2d3e4f5061728394a5b6c7d8")
        );
    }

    #[test]
    fn bsd_form() {
        let text = format!("SHA512 (a.tar) = {}\n", sha512());
        let e = parse_sidecar(&text, "http://x/CHECKSUMS", "a.tar").unwrap();
        assert_eq!(e.algo, Algo::Sha512);
    }
}
