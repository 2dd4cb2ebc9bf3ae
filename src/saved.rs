//! What an action changes, saved before it changes it, so its built-in undo
//! puts it back exactly: bytes, mode, owner, or absence.
//!
//! Each saved file is a pair in the step's directory: `N.data` (the bytes)
//! and `N.json` (path, whether it existed, mode, uid, gid). Both are fsynced
//! (and the directory) before the action touches the original: that is the
//! durability point of the compensation. The first save of a path wins, so a
//! step re-run after a crash keeps the true original.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::{sync_dir, write_atomic};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Meta {
    path: PathBuf,
    existed: bool,
    mode: u32,
    uid: u32,
    gid: u32,
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

    fn entries(&self) -> Vec<(PathBuf, Meta)> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<(PathBuf, Meta)> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| {
                let meta: Meta = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
                Some((p.with_extension("data"), meta))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Saves `path` as it is now, unless it was saved already.
    pub fn save_once(&self, path: &Path) -> std::io::Result<()> {
        if self.entries().iter().any(|(_, m)| m.path == path) {
            return Ok(());
        }
        crate::fsutil::private_dir(&self.dir)?;
        let n = self.entries().len();
        let meta = match std::fs::metadata(path) {
            Ok(m) => {
                write_atomic(
                    &self.dir.join(format!("{n:04}.data")),
                    &std::fs::read(path)?,
                )?;
                Meta {
                    path: path.to_path_buf(),
                    existed: true,
                    mode: m.permissions().mode() & 0o7777,
                    uid: m.uid(),
                    gid: m.gid(),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Meta {
                path: path.to_path_buf(),
                existed: false,
                mode: 0,
                uid: 0,
                gid: 0,
            },
            Err(e) => return Err(e),
        };
        // The metadata last: a save is complete only when it exists.
        write_atomic(
            &self.dir.join(format!("{n:04}.json")),
            &serde_json::to_vec(&meta).map_err(std::io::Error::other)?,
        )?;
        sync_dir(&self.dir)
    }

    /// The bytes `path` had before the step, if it was saved and existed.
    pub fn original(&self, path: &Path) -> Option<Vec<u8>> {
        self.entries()
            .into_iter()
            .find(|(_, m)| m.path == path && m.existed)
            .and_then(|(data, _)| std::fs::read(data).ok())
    }

    /// Puts every saved file back as it was (or removes it if it did not
    /// exist). Idempotent; nothing saved, nothing done.
    pub fn restore(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut restored = Vec::new();
        for (data, m) in self.entries().into_iter().rev() {
            if m.existed {
                write_atomic(&m.path, &std::fs::read(&data)?)?;
                std::fs::set_permissions(&m.path, std::fs::Permissions::from_mode(m.mode))?;
                std::os::unix::fs::chown(&m.path, Some(m.uid), Some(m.gid))?;
            } else {
                match std::fs::remove_file(&m.path) {
                    Ok(()) => {
                        if let Some(dir) = m.path.parent() {
                            sync_dir(dir)?;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            restored.push(m.path);
        }
        Ok(restored)
    }
}

/// Writes `bytes` to `path` atomically, keeping the mode and owner the file
/// had (a new file gets 0644).
pub fn write_keeping_meta(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let old = std::fs::metadata(path).ok();
    write_atomic(path, bytes)?;
    match old {
        Some(m) => {
            std::fs::set_permissions(
                path,
                std::fs::Permissions::from_mode(m.permissions().mode() & 0o7777),
            )?;
            std::os::unix::fs::chown(path, Some(m.uid()), Some(m.gid()))
        }
        None => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restores_bytes_mode_and_absence() {
        let dir = std::env::temp_dir().join(format!("hoist-saved-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.list");
        let b = dir.join("b.list");
        std::fs::write(&a, "deb http://x stretch main\n").unwrap();
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o640)).unwrap();
        let s = Saved::new(&dir.join("step"));
        s.save_once(&a).unwrap();
        s.save_once(&b).unwrap();
        write_keeping_meta(&a, b"deb http://x buster main\n").unwrap();
        std::fs::write(&b, "new\n").unwrap();
        // A second save (a re-run) keeps the true original.
        s.save_once(&a).unwrap();
        assert_eq!(s.original(&a).unwrap(), b"deb http://x stretch main\n");
        s.restore().unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"deb http://x stretch main\n");
        assert_eq!(
            std::fs::metadata(&a).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert!(!b.exists());
        // Idempotent.
        s.restore().unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"deb http://x stretch main\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
