//! Following a log file while a command runs. Some long steps report
//! their progress only to a file: seed 003's system VM restart
//! (`cloudstack-sysvmadm ... -l LOG`) "can take an hour or more" (L1226)
//! and writes nothing else. Its new lines are shown as they are written,
//! so the admin at 3 a.m. sees it move.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// At most this much is read per poll, so a log written faster than it is
/// shown cannot make one poll take long or hold much memory.
const MAX_CHUNK: u64 = 1 << 20;
/// A line longer than this is shown cut (a binary blob in a log).
const MAX_LINE: usize = 4096;

/// Reads what is appended to a file after [`Follower::start`].
pub struct Follower {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Follower {
    /// Starts at the file's current end: what was there before the step
    /// is an earlier run's. A file that does not exist yet is read from
    /// its start once it appears.
    pub fn start(path: &Path) -> Follower {
        let offset = std::fs::metadata(path).map_or(0, |m| m.len());
        Follower {
            path: path.to_path_buf(),
            offset,
            partial: Vec::new(),
        }
    }

    /// The complete lines written since the last poll.
    pub fn poll(&mut self) -> Vec<String> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let len = file.metadata().map_or(0, |m| m.len());
        if len < self.offset {
            // Truncated or replaced (a rotated log): read the new one from
            // its start.
            self.offset = 0;
            self.partial.clear();
        }
        if len == self.offset || file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut chunk = Vec::new();
        let read = file
            .take(MAX_CHUNK)
            .read_to_end(&mut chunk)
            .unwrap_or_default();
        self.offset += read as u64;
        self.partial.extend_from_slice(&chunk[..read]);
        let mut lines = Vec::new();
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            lines.push(shown(&line[..end]));
        }
        lines
    }

    /// The last lines, with one the command left without its newline.
    pub fn finish(&mut self) -> Vec<String> {
        let mut lines = self.poll();
        if !self.partial.is_empty() {
            lines.push(shown(&self.partial));
            self.partial.clear();
        }
        lines
    }
}

fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end_matches('\r');
    if text.len() <= MAX_LINE {
        return text.to_string();
    }
    let mut cut = MAX_LINE;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{} ...", &text[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A directory of the test's own, removed at the end.
    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn dir(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("hoist-follow-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    #[test]
    fn only_new_complete_lines_then_the_rest_at_the_end() {
        let dir = dir("old");
        let p = dir.0.join("sysvmadm.log");
        std::fs::write(&p, "from an earlier run\n").unwrap();
        let mut f = Follower::start(&p);
        assert!(f.poll().is_empty());
        let mut file = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        write!(file, "Stopping console proxy 1\nStarting con").unwrap();
        assert_eq!(f.poll(), ["Stopping console proxy 1"]);
        write!(file, "sole proxy 1\nDone").unwrap();
        assert_eq!(f.poll(), ["Starting console proxy 1"]);
        assert_eq!(f.finish(), ["Done"]);
        assert!(f.finish().is_empty());
    }

    #[test]
    fn a_file_created_later_or_truncated_is_read_from_its_start() {
        let dir = dir("later");
        let p = dir.0.join("later.log");
        let mut f = Follower::start(&p);
        assert!(f.poll().is_empty());
        std::fs::write(&p, "one\ntwo\n").unwrap();
        assert_eq!(f.poll(), ["one", "two"]);
        std::fs::write(&p, "new\n").unwrap();
        assert_eq!(f.poll(), ["new"]);
    }

    #[test]
    fn a_huge_line_is_cut_and_bad_bytes_do_not_stop_it() {
        let dir = dir("big");
        let p = dir.0.join("big.log");
        let mut f = Follower::start(&p);
        let mut data = vec![b'x'; 10_000];
        data.push(b'\n');
        data.extend_from_slice(b"\xff\xfe ok\n");
        std::fs::write(&p, data).unwrap();
        let lines = f.poll();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_LINE + 4);
        assert!(lines[0].ends_with(" ..."));
        assert!(lines[1].ends_with(" ok"));
    }
}
