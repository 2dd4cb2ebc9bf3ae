//! Crash-safe file writes: the durability points are explicit.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` so that after a crash the file is either the old
/// one or the new one: write a temporary file beside it, fsync it, rename it
/// over the target, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = tmp_beside(path);
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Never group- or world-writable whatever the umask (the state
        // directory refuses such files), and never through a link.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// The temporary file a crash-safe write of `path` goes through: beside it
/// (the rename stays in one file system), hidden, and named so a leftover
/// is known for hoist's (`.NAME.hoist-tmp`).
pub fn tmp_beside(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(".{name}.hoist-tmp"))
}

/// fsync of a directory, so a rename or a new entry in it is durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Creates a directory (and its parents) readable by its owner only.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Bytes free for an unprivileged user on the filesystem of `dir`, and for
/// root (root may use the blocks kept for it).
pub fn free(dir: &Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(dir).ok()?;
    let avail = if nix::unistd::geteuid().is_root() {
        s.blocks_free()
    } else {
        s.blocks_available()
    };
    Some(avail.saturating_mul(s.fragment_size()))
}
