//! Measures the ways to give each host its own disk from a cached base
//! image: an overlayfs mount, a reflink copy, a plain copy. Prints time and
//! disk used per method. The harness uses overlayfs (see README.md for the
//! numbers and the choice).
//!
//! `cargo run -p hoist-testbed --example copy_methods [WORK_DIR]`; WORK_DIR
//! (default: $HOIST_TESTBED_CACHE/measure) should be on the file system to
//! measure; reflink needs XFS or btrfs there.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use hoist_testbed::{Image, ImageSpec, Suite, cache_dir, disk_usage};

fn run(cmd: &mut Command) -> bool {
    cmd.status().is_ok_and(|s| s.success())
}

fn free_bytes(p: &Path) -> u64 {
    nix::sys::statvfs::statvfs(p)
        .map(|s| s.blocks_available() * s.fragment_size())
        .unwrap_or(0)
}

fn main() -> hoist_testbed::Result<()> {
    let work = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("measure"));
    let image = Image::ensure(&ImageSpec::new(Suite::Bookworm))?;
    let rootfs = image.rootfs();
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("create work dir");
    println!(
        "image {} ({} bytes)",
        rootfs.display(),
        disk_usage(&rootfs)?
    );

    // The source for reflink must be on the same file system as the copy.
    let src = work.join("src");
    let t = Instant::now();
    let ok = run(Command::new("cp")
        .args(["-a", "--reflink=never"])
        .arg(&rootfs)
        .arg(&src));
    println!(
        "plain copy: ok={ok} {:?} used={} bytes",
        t.elapsed(),
        disk_usage(&src)?
    );

    let dst = work.join("reflink");
    let before = free_bytes(&work);
    let t = Instant::now();
    let ok = run(Command::new("cp")
        .args(["-a", "--reflink=always"])
        .arg(&src)
        .arg(&dst));
    let used = before.saturating_sub(free_bytes(&work));
    println!(
        "reflink copy: ok={ok} {:?} newly used={used} bytes",
        t.elapsed()
    );

    let (upper, wk, merged) = (work.join("upper"), work.join("work"), work.join("merged"));
    for d in [&upper, &wk, &merged] {
        std::fs::create_dir_all(d).expect("create overlay dirs");
    }
    let t = Instant::now();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        src.display(),
        upper.display(),
        wk.display()
    );
    let ok = run(Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(&merged));
    println!(
        "overlay mount: ok={ok} {:?} used={} bytes",
        t.elapsed(),
        disk_usage(&upper)?
    );
    let _ = run(Command::new("umount").arg(&merged));
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
