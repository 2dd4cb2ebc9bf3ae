//! Writes that survive a crash at any instant: the new content goes to a
//! temporary name, is fsynced, renamed over the old one, and the directory is
//! fsynced so the rename itself is on disk. A reader sees the old file or the
//! new one, never half of either.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// An error with what was being done, for the admin reading the run log.
pub type Res<T> = Result<T, String>;

pub trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Res<T>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn ctx(self, what: impl FnOnce() -> String) -> Res<T> {
        self.map_err(|e| format!("{}: {e}", what()))
    }
}

/// The temporary name beside `path`: same directory, so the rename is atomic.
pub fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

pub fn fsync_dir(dir: &Path) -> Res<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(|| format!("fsync {}", dir.display()))
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replaces `path` with `bytes` (created with `mode`), atomically and durably.
pub fn write(path: &Path, bytes: &[u8], mode: u32) -> Res<()> {
    let tmp = temp_beside(path);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .ctx(|| format!("create {}", tmp.display()))?;
    // The umask may have taken bits away; hooks must be exactly 0755.
    f.set_permissions(fs::Permissions::from_mode(mode))
        .ctx(|| format!("chmod {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .ctx(|| format!("write {}", tmp.display()))?;
    drop(f);
    fs::rename(&tmp, path).ctx(|| format!("rename {} to {}", tmp.display(), path.display()))?;
    fsync_dir(parent(path))
}

/// Copies `from` over `to`, atomically and durably.
pub fn copy(from: &Path, to: &Path) -> Res<u64> {
    let tmp = temp_beside(to);
    let n = fs::copy(from, &tmp).ctx(|| format!("copy {} to {}", from.display(), tmp.display()))?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .ctx(|| format!("fsync {}", tmp.display()))?;
    fs::rename(&tmp, to).ctx(|| format!("rename {} to {}", tmp.display(), to.display()))?;
    fsync_dir(parent(to))?;
    Ok(n)
}

/// Points the symlink `link` at `target`: a new link under a temporary name,
/// renamed over the old one (rename(2) replaces it atomically), then the
/// directory fsynced.
pub fn symlink(target: &Path, link: &Path) -> Res<()> {
    let tmp = temp_beside(link);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("remove {}: {e}", tmp.display())),
    }
    std::os::unix::fs::symlink(target, &tmp).ctx(|| format!("symlink {}", tmp.display()))?;
    fs::rename(&tmp, link).ctx(|| format!("rename {} to {}", tmp.display(), link.display()))?;
    fsync_dir(parent(link))
}

/// Creates a directory (and its parents) with mode 0755 whatever the umask:
/// hook directories must not be group- or world-writable.
pub fn mkdir(dir: &Path) -> Res<()> {
    fs::create_dir_all(dir).ctx(|| format!("create {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .ctx(|| format!("chmod {}", dir.display()))
}

/// `--dir` given by the admin: created when absent, left as it is otherwise.
pub fn mkdir_if_absent(dir: &Path) -> Res<()> {
    if dir.exists() { Ok(()) } else { mkdir(dir) }
}

/// Removes a file; a file already gone is fine (the point of a re-run).
pub fn remove(path: &Path) -> Res<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("remove {}: {e}", path.display())),
    }
}
