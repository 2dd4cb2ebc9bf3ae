//! Whether the state directory deserves trust.
//!
//! Its journal holds the plans hoist runs as root and its lock is a file
//! hoist writes: whoever could change them could run commands as root, or
//! have hoist write through a planted symbolic link. So the directory, and
//! what hoist keeps in it (the journal and its `-wal`/`-shm`, the
//! controller's `fleet.db` and its own, the locks, the
//! run logs `runs/N.log`, the run and step directories `runs/N/<step>/`),
//! must be owned by the user running hoist, not writable by group or others,
//! and never symbolic links. Checked before the lock is taken and before the
//! journal is opened, by [`trusted`].
//!
//! Once the directory itself passes, nobody else can add, remove or rename
//! an entry in it, so what the walk found stays true while hoist runs; files
//! are still opened with `O_NOFOLLOW` ([`open_file`]; SQLite opens its own
//! files so). The directory's parents are not checked: whoever can replace
//! a parent can replace the state directory whatever hoist checks; the
//! default `/var/lib` belongs to root. The state directory itself may be a
//! symbolic link owned by the user running hoist (an admin's choice of
//! disk): hoist then works in the directory it points to.

pub mod damage;
pub mod space;

use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A state directory, or an entry of it, refused; says what to do.
#[derive(Debug, thiserror::Error)]
#[error("untrusted state directory {dir}: {what}")]
pub struct Untrusted {
    pub dir: PathBuf,
    pub what: String,
}

/// What a path is expected to be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Dir,
    File,
    /// A file or a directory (or a socket): any entry hoist may keep.
    Any,
}

/// The user named as `name (uid N)`, or `uid N` when it has no name.
pub fn user(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => format!("{} (uid {uid})", u.name),
        _ => format!("uid {uid}"),
    }
}

fn me() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn mode(m: &Metadata) -> String {
    format!("{:04o}", m.mode() & 0o7777)
}

/// The state directory `dir`, created (mode 0700) when `create` and absent,
/// after checking it and what hoist keeps in it; its path with symbolic
/// links resolved (SQLite refuses any in its path when asked not to follow
/// them). `Ok(None)`: absent and not created.
pub fn trusted(dir: &Path, create: bool) -> Result<Option<PathBuf>, Untrusted> {
    let top = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::sys::fsutil::private_dir(dir).map_err(|e| Untrusted {
                dir: dir.to_path_buf(),
                what: format!("cannot create it: {e}"),
            })?;
            std::fs::symlink_metadata(dir).map_err(|e| io(dir, dir, e))?
        }
        Err(e) => return Err(io(dir, dir, e)),
    };
    if top.file_type().is_symlink() {
        // The admin's link to where the state lives: it must be theirs.
        owned(dir, dir, &top)?;
    }
    let real = std::fs::canonicalize(dir).map_err(|e| io(dir, dir, e))?;
    check(&real, &real, Expect::Dir)?;
    for entry in entries(&real)? {
        let expect = match entry.file_name().and_then(|n| n.to_str()) {
            Some(
                "journal.db" | "journal.db-wal" | "journal.db-shm" | "fleet.db" | "fleet.db-wal"
                | "fleet.db-shm" | "lock" | "fleet.lock",
            ) => Expect::File,
            Some("runs") => Expect::Dir,
            _ => Expect::Any,
        };
        check(&real, &entry, expect)?;
    }
    let runs = real.join("runs");
    if runs.is_dir() {
        for run in entries(&runs)? {
            let is_log = run.extension().is_some_and(|e| e == "log");
            check(&real, &run, if is_log { Expect::File } else { Expect::Any })?;
            if !is_log && std::fs::symlink_metadata(&run).is_ok_and(|m| m.is_dir()) {
                for step in entries(&run)? {
                    check(&real, &step, Expect::Any)?;
                }
            }
        }
    }
    Ok(Some(real))
}

/// Opens a file of the state directory without following a symbolic link,
/// creating it with mode 0600 when `create`, and checks what was opened
/// (the descriptor's owner and mode: no window between check and use).
pub fn open_file(dir: &Path, path: &Path, write: bool, create: bool) -> Result<File, OpenError> {
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .create(create)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(OpenError::Absent),
        // ELOOP: the last component is a symbolic link.
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            let m = std::fs::symlink_metadata(path).map_err(|e| io(dir, path, e))?;
            return Err(OpenError::Untrusted(refuse_link(dir, path, &m)));
        }
        Err(e) => return Err(OpenError::Untrusted(io(dir, path, e))),
    };
    let m = file.metadata().map_err(|e| io(dir, path, e))?;
    judge(dir, path, &m, Expect::File)?;
    Ok(file)
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("absent")]
    Absent,
    #[error(transparent)]
    Untrusted(#[from] Untrusted),
}

fn entries(dir: &Path) -> Result<Vec<PathBuf>, Untrusted> {
    let root = dir.to_path_buf();
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io(&root, dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    out.sort();
    Ok(out)
}

fn check(dir: &Path, path: &Path, expect: Expect) -> Result<(), Untrusted> {
    let m = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        // Removed meanwhile (a temporary file of another reader): nothing
        // left to trust or distrust.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir, path, e)),
    };
    judge(dir, path, &m, expect)
}

fn judge(dir: &Path, path: &Path, m: &Metadata, expect: Expect) -> Result<(), Untrusted> {
    let t = m.file_type();
    if t.is_symlink() {
        return Err(refuse_link(dir, path, m));
    }
    let wrong = match expect {
        Expect::Dir if !t.is_dir() => Some("a directory"),
        Expect::File if !t.is_file() => Some("a regular file"),
        Expect::Any if !(t.is_file() || t.is_dir() || t.is_socket()) => {
            Some("a regular file or a directory")
        }
        _ => None,
    };
    if let Some(want) = wrong {
        return Err(Untrusted {
            dir: dir.to_path_buf(),
            what: format!(
                "{} is not {want} (owner {}, mode {}): move it aside, it is not hoist's",
                path.display(),
                user(m.uid()),
                mode(m)
            ),
        });
    }
    owned(dir, path, m)?;
    if m.mode() & 0o022 != 0 {
        return Err(Untrusted {
            dir: dir.to_path_buf(),
            what: format!(
                "{} is writable by {} (owner {}, mode {}), so others could change what hoist runs; check that nothing in it was changed, then `chmod go-w {}`",
                path.display(),
                if m.mode() & 0o002 != 0 {
                    "everyone"
                } else {
                    "its group"
                },
                user(m.uid()),
                mode(m),
                path.display()
            ),
        });
    }
    Ok(())
}

fn owned(dir: &Path, path: &Path, m: &Metadata) -> Result<(), Untrusted> {
    if m.uid() == me() {
        return Ok(());
    }
    Err(Untrusted {
        dir: dir.to_path_buf(),
        what: format!(
            "{} is owned by {}, mode {}, not by {} who runs hoist: its owner could change what hoist runs. Check what is in it; if it is yours, `chown -R {} {}`, else move the state directory aside and start with a new one",
            path.display(),
            user(m.uid()),
            mode(m),
            user(me()),
            nix::unistd::User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map_or_else(|| me().to_string(), |u| u.name),
            dir.display()
        ),
    })
}

fn refuse_link(dir: &Path, path: &Path, m: &Metadata) -> Untrusted {
    let to = std::fs::read_link(path)
        .map(|t| t.display().to_string())
        .unwrap_or_else(|_| "?".into());
    Untrusted {
        dir: dir.to_path_buf(),
        what: format!(
            "{} is a symbolic link to {to} (owner {}), where hoist keeps a file or directory of its own; hoist never follows links there. Find out who made it, then remove it (`rm {}`)",
            path.display(),
            user(m.uid()),
            path.display()
        ),
    }
}

fn io(dir: &Path, path: &Path, e: std::io::Error) -> Untrusted {
    Untrusted {
        dir: dir.to_path_buf(),
        what: format!("cannot examine {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hoist-statedir-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_new_directory_is_private_and_trusted() {
        let d = scratch("new");
        assert_eq!(trusted(&d, false).unwrap(), None);
        let real = trusted(&d, true).unwrap().unwrap();
        let m = std::fs::metadata(&real).unwrap();
        assert_eq!(m.mode() & 0o777, 0o700);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn group_writable_entries_and_links_are_refused_with_their_path() {
        let d = scratch("bad");
        std::fs::create_dir_all(d.join("runs/1/step")).unwrap();
        trusted(&d, false).unwrap();
        std::fs::set_permissions(
            d.join("runs/1/step"),
            std::fs::Permissions::from_mode(0o770),
        )
        .unwrap();
        let e = trusted(&d, false).unwrap_err().to_string();
        assert!(e.contains("runs/1/step is writable by its group"), "{e}");
        assert!(e.contains("mode 0770"), "{e}");
        std::fs::set_permissions(
            d.join("runs/1/step"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join("journal.db-wal")).unwrap();
        let e = trusted(&d, false).unwrap_err().to_string();
        assert!(
            e.contains("journal.db-wal is a symbolic link to /etc/passwd"),
            "{e}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn open_file_does_not_follow_a_link() {
        let d = scratch("open");
        trusted(&d, true).unwrap();
        let outside = d.with_extension("outside");
        std::fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, d.join("lock")).unwrap();
        let e = open_file(&d, &d.join("lock"), true, true).unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        std::fs::remove_file(&outside).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }
}
