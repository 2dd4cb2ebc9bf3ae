//! What the built-in undo needs, kept in the step's own directory, and the
//! writes that keep a file's owner, group and mode.
//!
//! Layout of the step directory: `original` (the file's bytes before the
//! step), `new-file` (for `merge_new`: the packaged new version it removes),
//! and `saved.json` (paths, owners, modes). `saved.json` is written last,
//! after the bytes are fsynced: when it exists the save is whole, and when
//! it does not, nothing was changed yet (every change comes after it).

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil;

/// Owner, group and mode (with the set-id and sticky bits) of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl Meta {
    pub fn of(path: &Path) -> std::io::Result<Meta> {
        let m = std::fs::symlink_metadata(path)?;
        Ok(Meta {
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode() & 0o7777,
        })
    }
}

/// One file as it was.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedFile {
    pub path: PathBuf,
    pub meta: Meta,
    /// Modification time (seconds, nanoseconds), put back with the bytes.
    pub mtime: (i64, i64),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Saved {
    pub file: SavedFile,
    /// `merge_new`: the packaged new version, removed after the merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_file: Option<SavedFile>,
}

const INDEX: &str = "saved.json";
const ORIGINAL: &str = "original";
const NEW_FILE: &str = "new-file";

fn describe(path: &Path) -> SavedFile {
    let m = std::fs::symlink_metadata(path).ok();
    SavedFile {
        path: path.to_path_buf(),
        meta: Meta::of(path).unwrap_or(Meta {
            uid: 0,
            gid: 0,
            mode: 0o644,
        }),
        mtime: m.map_or((0, 0), |m| (m.mtime(), m.mtime_nsec())),
    }
}

/// A whole save: the index and the bytes it names.
pub struct Kept {
    pub saved: Saved,
    pub original: Vec<u8>,
    pub new_file: Option<Vec<u8>>,
}

/// The save of a previous attempt of this step (a retry, or a run again
/// after a crash), whole, with the bytes of the file and of the new file.
pub fn load(step_dir: &Path) -> Result<Option<Kept>, String> {
    let index = step_dir.join(INDEX);
    let text = match std::fs::read(&index) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", index.display())),
    };
    let saved: Saved = serde_json::from_slice(&text)
        .map_err(|e| format!("{} is unreadable: {e}", index.display()))?;
    let read = |name: &str| {
        let p = step_dir.join(name);
        std::fs::read(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let original = read(ORIGINAL)?;
    let new_file = match &saved.new_file {
        Some(_) => Some(read(NEW_FILE)?),
        None => None,
    };
    Ok(Some(Kept {
        saved,
        original,
        new_file,
    }))
}

/// Saves `path` as it is (`bytes`) and, for a merge, the new file, durably,
/// before anything is changed. A save already there is kept: it holds the
/// file as it was before the first attempt.
pub fn save(
    step_dir: &Path,
    path: &Path,
    bytes: &[u8],
    new_file: Option<(&Path, &[u8])>,
) -> Result<(), String> {
    if step_dir.join(INDEX).exists() {
        return Ok(());
    }
    let io = |what: &Path, e: std::io::Error| format!("cannot save {}: {e}", what.display());
    fsutil::private_dir(step_dir).map_err(|e| io(step_dir, e))?;
    fsutil::write_atomic(&step_dir.join(ORIGINAL), bytes).map_err(|e| io(path, e))?;
    if let Some((p, b)) = new_file {
        fsutil::write_atomic(&step_dir.join(NEW_FILE), b).map_err(|e| io(p, e))?;
    }
    let saved = Saved {
        file: describe(path),
        new_file: new_file.map(|(p, _)| describe(p)),
    };
    let json = serde_json::to_vec_pretty(&saved).map_err(|e| e.to_string())?;
    fsutil::write_atomic(&step_dir.join(INDEX), &json).map_err(|e| io(path, e))
}

/// Puts back what was saved, byte for byte with owner, group, mode and
/// modification time. Idempotent; `false` when nothing was saved.
pub fn restore(step_dir: &Path) -> Result<bool, String> {
    let Some(Kept {
        saved,
        original,
        new_file,
    }) = load(step_dir)?
    else {
        return Ok(false);
    };
    put_back(&saved.file, &original)?;
    if let (Some(f), Some(bytes)) = (&saved.new_file, &new_file) {
        put_back(f, bytes)?;
    }
    Ok(true)
}

fn put_back(f: &SavedFile, bytes: &[u8]) -> Result<(), String> {
    let same = std::fs::read(&f.path).is_ok_and(|b| b == bytes)
        && Meta::of(&f.path).is_ok_and(|m| m == f.meta);
    if !same {
        write_as(&f.path, bytes, f.meta)?;
    }
    let times = std::fs::FileTimes::new().set_modified(
        std::time::UNIX_EPOCH
            + std::time::Duration::new(f.mtime.0.max(0) as u64, f.mtime.1.clamp(0, 999_999_999) as u32),
    );
    // The time is a courtesy (tools that compare it); the bytes, owner and
    // mode are the undo, so a file hoist may not open for writing keeps its
    // restored bytes with the time of the restore.
    if let Ok(h) = std::fs::File::options().write(true).open(&f.path) {
        let _ = h.set_times(times);
    }
    Ok(())
}

/// Writes `bytes` to `path` crash-safely with the given owner, group and
/// mode: a temporary file beside it (created 0600, so nobody reads it in
/// between), chown, chmod, write, fsync, rename over `path`, fsync of the
/// directory. After a crash `path` is whole, old or new.
pub fn write_as(path: &Path, bytes: &[u8], meta: Meta) -> Result<(), String> {
    let err = |what: &str, e: std::io::Error| format!("{what} {}: {e}", path.display());
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.hoist-tmp"));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut f = std::fs::File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| err("cannot write beside", e))?;
        // Owner first: a chown clears the set-id bits the chmod then sets.
        std::os::unix::fs::fchown(&f, Some(meta.uid), Some(meta.gid))
            .map_err(|e| err("cannot give the owner of", e))?;
        f.set_permissions(std::fs::Permissions::from_mode(meta.mode))
            .map_err(|e| err("cannot give the mode of", e))?;
        f.write_all(bytes).map_err(|e| err("cannot write", e))?;
        f.sync_all().map_err(|e| err("cannot fsync", e))?;
        std::fs::rename(&tmp, path).map_err(|e| err("cannot rename over", e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    fsutil::sync_dir(dir).map_err(|e| err("cannot fsync the directory of", e))
}

/// Removes `path` durably (the rename of its removal is fsynced).
pub fn remove(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot remove {}: {e}", path.display())),
    }
    fsutil::sync_dir(path.parent().unwrap_or(Path::new(".")))
        .map_err(|e| format!("cannot fsync the directory of {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hoist-file-saved-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn save_then_restore_is_exact_and_idempotent() {
        let d = tmp("exact");
        let f = d.join("app.conf");
        std::fs::write(&f, b"a=1\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        let before = std::fs::metadata(&f).unwrap();
        let step = d.join("step");
        assert!(!restore(&step).unwrap(), "nothing saved: nothing to do");
        save(&step, &f, b"a=1\n", None).unwrap();
        write_as(&f, b"a=2\n", Meta { mode: 0o600, ..Meta::of(&f).unwrap() }).unwrap();
        // A second save (a retry) keeps the first.
        save(&step, &f, b"a=2\n", None).unwrap();
        assert!(restore(&step).unwrap());
        assert!(restore(&step).unwrap());
        assert_eq!(std::fs::read(&f).unwrap(), b"a=1\n");
        let after = std::fs::metadata(&f).unwrap();
        assert_eq!(after.mode() & 0o7777, 0o640);
        assert_eq!(after.mtime(), before.mtime());
        assert!(!d.join(".app.conf.hoist-tmp").exists());
        let _ = std::fs::remove_dir_all(&d);
    }
}
