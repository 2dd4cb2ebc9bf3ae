//! Verifying a 1 GiB artifact: hoist's streamed SHA-256 and SHA-512 (the
//! pass `fetch` makes before anything uses a download) against coreutils'
//! `sha256sum` and `sha512sum` on the same file, side by side in one run so
//! the ratios hold on a noisy machine. Ratio = tool time / hoist time:
//! >= 1.0 means hoist is at least as fast.
//!
//!   cargo bench --bench verify            # 1 GiB file made in $TMPDIR
//!   VERIFY_FILE=/path cargo bench --bench verify
//!   VERIFY_ROUNDS=5 cargo bench --bench verify

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hoist::actions::fetch::verify::{Algo, digest_file};

fn make_file() -> (PathBuf, bool) {
    if let Ok(f) = std::env::var("VERIFY_FILE") {
        return (PathBuf::from(f), false);
    }
    let path = std::env::temp_dir().join(format!("hoist-verify-bench-{}", std::process::id()));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    // Incompressible-looking bytes (xorshift), 1 GiB.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        for chunk in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
    (path, true)
}

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let t = Instant::now();
    let out = f();
    (t.elapsed(), out)
}

fn tool(name: &str, path: &Path) -> String {
    let o = Command::new(name).arg(path).output().unwrap();
    assert!(o.status.success(), "{name} failed");
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let rounds: usize = std::env::var("VERIFY_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let (path, made) = make_file();
    let size = std::fs::metadata(&path).unwrap().len();
    // Warm the page cache: both sides then read from memory.
    let _ = digest_file(&path, &[Algo::Md5]);
    println!(
        "verify {} ({:.2} GiB), best of {rounds} rounds, alternating",
        path.display(),
        size as f64 / (1u64 << 30) as f64
    );
    for (algo, cmd) in [(Algo::Sha256, "sha256sum"), (Algo::Sha512, "sha512sum")] {
        let mut best_hoist = Duration::MAX;
        let mut best_tool = Duration::MAX;
        for _ in 0..rounds {
            let (th, ours) = time(|| digest_file(&path, &[algo]).unwrap());
            let (tt, theirs) = time(|| tool(cmd, &path));
            assert_eq!(ours[0].1, theirs, "{cmd} and hoist disagree");
            best_hoist = best_hoist.min(th);
            best_tool = best_tool.min(tt);
        }
        let mib = size as f64 / (1u64 << 20) as f64;
        println!(
            "{:<7} hoist {:>7.3} s ({:>6.0} MiB/s)   {cmd} {:>7.3} s ({:>6.0} MiB/s)   ratio {:.2}",
            algo.name(),
            best_hoist.as_secs_f64(),
            mib / best_hoist.as_secs_f64(),
            best_tool.as_secs_f64(),
            mib / best_tool.as_secs_f64(),
            best_tool.as_secs_f64() / best_hoist.as_secs_f64()
        );
    }
    if made {
        let _ = std::fs::remove_file(&path);
    }
}
