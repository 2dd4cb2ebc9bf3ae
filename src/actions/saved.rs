//! What an action changes, saved before it changes it, so its built-in undo
//! puts it back exactly: bytes, owner, group, mode and modification time,
//! or absence. `repo`, `file` and `db` keep theirs here.
//!
//! Each saved file is a pair in the step's directory: `N.data` (the bytes)
//! and `N.json` (path, whether it existed, owner, group, mode, mtime). Both
//! are fsynced (and the directory) before the action touches the original:
//! that is the durability point of the compensation. The first save of a
//! path wins, so a step re-run after a crash keeps the true original.
//!
//! Symbolic links are followed: a path that is a link (a configuration file
//! linked to /etc/alternatives or a shared copy) is saved and put back where
//! it points, and the link stays a link; a rename over it would replace it.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::sys::fsutil::{sync_dir, write_atomic};

/// Owner, group and mode (with the set-id and sticky bits) of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl Meta {
    /// The file's, through symbolic links.
    pub fn of(path: &Path) -> std::io::Result<Meta> {
        let m = std::fs::metadata(path)?;
        Ok(Meta {
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode() & 0o7777,
        })
    }
}

/// The file a path names, through symbolic links. A path that does not
/// exist (any more) is resolved through its directory, so a file saved
/// and then removed is still found under the same name.
pub fn real(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .map(|d| d.join(name))
            .unwrap_or_else(|_| path.to_path_buf()),
        _ => path.to_path_buf(),
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Entry {
    path: PathBuf,
    existed: bool,
    #[serde(flatten)]
    meta: Meta,
    /// Modification time (seconds, nanoseconds); absent in saves made
    /// before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mtime: Option<(i64, i64)>,
}

pub struct Saved {
    dir: PathBuf,
}

impl Saved {
    pub fn new(step_dir: &Path) -> Saved {
        Saved {
            dir: step_dir.join("saved"),
        }
    }

    fn entries(&self) -> Vec<(PathBuf, Entry)> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<(PathBuf, Entry)> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| {
                let entry: Entry = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
                Some((p.with_extension("data"), entry))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Saves `path` as it is now, unless it was saved already.
    pub fn save_once(&self, path: &Path) -> std::io::Result<()> {
        let path = real(path);
        if self.entries().iter().any(|(_, e)| e.path == path) {
            return Ok(());
        }
        crate::sys::fsutil::private_dir(&self.dir)?;
        let n = self.entries().len();
        let entry = match std::fs::metadata(&path) {
            Ok(m) => {
                write_atomic(
                    &self.dir.join(format!("{n:04}.data")),
                    &std::fs::read(&path)?,
                )?;
                Entry {
                    path,
                    existed: true,
                    meta: Meta {
                        uid: m.uid(),
                        gid: m.gid(),
                        mode: m.mode() & 0o7777,
                    },
                    mtime: Some((m.mtime(), m.mtime_nsec())),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Entry {
                path,
                existed: false,
                meta: Meta {
                    uid: 0,
                    gid: 0,
                    mode: 0,
                },
                mtime: None,
            },
            Err(e) => return Err(e),
        };
        // The metadata last: a save is complete only when it exists.
        write_atomic(
            &self.dir.join(format!("{n:04}.json")),
            &serde_json::to_vec(&entry).map_err(std::io::Error::other)?,
        )?;
        sync_dir(&self.dir)
    }

    /// The bytes `path` had before the step, if it was saved and existed.
    pub fn original(&self, path: &Path) -> Option<Vec<u8>> {
        let path = real(path);
        self.entries()
            .into_iter()
            .find(|(_, e)| e.path == path && e.existed)
            .and_then(|(data, _)| std::fs::read(data).ok())
    }

    /// Puts every saved file back as it was, byte for byte with owner,
    /// group, mode and modification time (or removes it if it did not
    /// exist), newest save first. Idempotent; nothing saved, nothing done.
    pub fn restore(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut restored = Vec::new();
        for (data, e) in self.entries().into_iter().rev() {
            if e.existed {
                let bytes = std::fs::read(&data)?;
                let same = std::fs::read(&e.path).is_ok_and(|b| b == bytes)
                    && Meta::of(&e.path).is_ok_and(|m| m == e.meta);
                if !same {
                    write_file(&e.path, &bytes, e.meta)?;
                }
                if let Some((s, ns)) = e.mtime {
                    set_mtime(&e.path, s, ns);
                }
            } else {
                remove(&e.path)?;
            }
            restored.push(e.path);
        }
        Ok(restored)
    }
}

/// The time is a courtesy (tools that compare it); the bytes, owner and
/// mode are the undo, so a file hoist may not open for writing keeps its
/// restored bytes with the time of the restore.
fn set_mtime(path: &Path, secs: i64, nanos: i64) {
    let at = UNIX_EPOCH + Duration::new(secs.max(0) as u64, nanos.clamp(0, 999_999_999) as u32);
    if let Ok(f) = std::fs::File::options().write(true).open(path) {
        let _ = f.set_times(std::fs::FileTimes::new().set_modified(at));
    }
}

/// Writes `bytes` to `path` crash-safely with the given owner, group and
/// mode: a temporary file beside it (created 0600, so nobody reads it in
/// between), chown, chmod, write, fsync, rename over `path`, fsync of the
/// directory. After a crash `path` is whole, old or new.
fn write_file(path: &Path, bytes: &[u8], meta: Meta) -> std::io::Result<()> {
    let ctx = |what: &str, e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = crate::sys::fsutil::tmp_beside(path);
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut f = std::fs::File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| ctx("cannot write beside", e))?;
        // Owner first: a chown clears the set-id bits the chmod then sets.
        std::os::unix::fs::fchown(&f, Some(meta.uid), Some(meta.gid))
            .map_err(|e| ctx("cannot give the owner of", e))?;
        f.set_permissions(std::fs::Permissions::from_mode(meta.mode))
            .map_err(|e| ctx("cannot give the mode of", e))?;
        f.write_all(bytes).map_err(|e| ctx("cannot write", e))?;
        f.sync_all().map_err(|e| ctx("cannot fsync", e))?;
        std::fs::rename(&tmp, path).map_err(|e| ctx("cannot rename over", e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir).map_err(|e| ctx("cannot fsync the directory of", e))
}

/// `write_file` for the actions, with its error as text; `path` is written
/// where it points.
pub fn write_as(path: &Path, bytes: &[u8], meta: Meta) -> Result<(), String> {
    write_file(&real(path), bytes, meta).map_err(|e| e.to_string())
}

/// Writes `bytes` to `path` (where it points) crash-safely, keeping the
/// owner, group and mode the file had; a new file is 0644 and hoist's.
pub fn write_keeping_meta(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let path = real(path);
    let meta = Meta::of(&path).unwrap_or_else(|_| Meta {
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
        mode: 0o644,
    });
    write_file(&path, bytes, meta)
}

/// Removes `path` durably (the directory is fsynced); gone already is fine.
pub fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_dir(path.parent().unwrap_or(Path::new("."))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mtime_of(path: &Path) -> Option<std::time::SystemTime> {
        std::fs::metadata(path).and_then(|m| m.modified()).ok()
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hoist-saved-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn restores_bytes_mode_mtime_and_absence() {
        let dir = tmp("exact");
        let a = dir.join("a.list");
        let b = dir.join("b.list");
        std::fs::write(&a, "deb http://x stretch main\n").unwrap();
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o640)).unwrap();
        let before = mtime_of(&a).unwrap() - Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&a)
            .unwrap()
            .set_times(std::fs::FileTimes::new().set_modified(before))
            .unwrap();
        let s = Saved::new(&dir.join("step"));
        assert!(
            s.restore().unwrap().is_empty(),
            "nothing saved: nothing to do"
        );
        s.save_once(&a).unwrap();
        s.save_once(&b).unwrap();
        write_keeping_meta(&a, b"deb http://x buster main\n").unwrap();
        write_as(&b, b"new\n", Meta::of(&a).unwrap()).unwrap();
        // A second save (a re-run) keeps the true original.
        s.save_once(&a).unwrap();
        assert_eq!(s.original(&a).unwrap(), b"deb http://x stretch main\n");
        s.restore().unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"deb http://x stretch main\n");
        assert_eq!(
            std::fs::metadata(&a).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        assert_eq!(mtime_of(&a), Some(before));
        assert!(!b.exists());
        assert!(!dir.join(".a.list.hoist-tmp").exists());
        // Idempotent.
        s.restore().unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"deb http://x stretch main\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_link_is_written_through_and_stays_a_link() {
        let dir = tmp("link");
        let target = dir.join("real.conf");
        let link = dir.join("app.conf");
        std::fs::write(&target, "a=1\n").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let s = Saved::new(&dir.join("step"));
        s.save_once(&link).unwrap();
        write_keeping_meta(&link, b"a=2\n").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"a=2\n");
        assert_eq!(s.original(&target).unwrap(), b"a=1\n");
        assert_eq!(s.restore().unwrap(), vec![real(&target)]);
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&link).unwrap(), b"a=1\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
