//! Mounts the harness makes in the runner's mount namespace (overlay roots)
//! or that a killed debootstrap leaves behind, and their removal. Before any
//! directory is deleted recursively, everything mounted below it is unmounted:
//! `remove_dir_all` through a live bind or overlay mount would delete the
//! lower layers, i.e. the cached image or the machine's own /proc.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use crate::error::{Error, IoContext, Result, SysContext};

/// Mount points at or below `root`, deepest first.
pub fn mounts_under(root: &Path) -> Result<Vec<PathBuf>> {
    let info = fs::read_to_string("/proc/self/mountinfo").ctx("read", "/proc/self/mountinfo")?;
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(root))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    Ok(found)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) if b[i] == b'\\' => {
                let v = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(v as u8);
                i += 4;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmount everything at or below `root`, deepest first. A busy mount is
/// detached lazily (it disappears from the tree at once; the kernel frees it
/// when its last user goes), so teardown never hangs on it.
pub fn unmount_all_under(root: &Path) -> Result<()> {
    for m in mounts_under(root)? {
        if nix::mount::umount2(&m, MntFlags::empty()).is_err() {
            nix::mount::umount2(&m, MntFlags::MNT_DETACH).sys(format!("umount {}", m.display()))?;
        }
    }
    let left = mounts_under(root)?;
    if left.is_empty() {
        Ok(())
    } else {
        Err(Error::Leftovers(
            left.iter()
                .map(|p| format!("mount {}", p.display()))
                .collect(),
        ))
    }
}

/// Delete `dir` recursively, after making sure nothing is mounted below it.
pub fn remove_tree(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    unmount_all_under(dir)?;
    fs::remove_dir_all(dir).ctx("remove", dir)
}

/// Mount an overlay at `merged` with a read-only `lower` and a writable
/// `upper`/`work` pair (work must be empty and on the same fs as upper).
pub fn mount_overlay(lower: &Path, upper: &Path, work: &Path, merged: &Path) -> Result<()> {
    for p in [lower, upper, work, merged] {
        if p.to_string_lossy().contains([',', ':']) {
            return Err(Error::Spec(format!(
                "overlay path {} contains ',' or ':'",
                p.display()
            )));
        }
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    nix::mount::mount(
        Some("overlay"),
        merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
    .sys(format!("mount overlay on {}", merged.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape(r"/x\134y"), r"/x\y");
    }
}
