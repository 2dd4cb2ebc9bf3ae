//! What actions may see of the journal: [`Recorder`], and nothing that
//! moves a run's or a step's state.

use std::path::Path;

use crate::actions::ctx::Recorder;

use super::Journal;

impl Recorder for Journal {
    fn state_dir(&self) -> &Path {
        self.dir()
    }

    fn event(&mut self, run: i64, kind: &str, detail: &str) -> Result<(), String> {
        Journal::event(self, run, kind, detail).map_err(|e| e.to_string())
    }

    fn once_done(&self, product: &str) -> Result<Vec<String>, String> {
        Journal::once_done(self, product).map_err(|e| e.to_string())
    }

    fn mark_once(&mut self, product: &str, name: &str, run: i64) -> Result<(), String> {
        Journal::mark_once(self, product, name, run).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_see_the_journal_s_events_marks_and_directory() {
        let d = std::env::temp_dir().join(format!("hoist-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let mut journal = Journal::open(&d).unwrap();
        let dir = journal.dir().to_path_buf();
        let record: &mut dyn Recorder = &mut journal;
        assert_eq!(record.state_dir(), dir);
        record.event(7, "conffiles", "/etc/app.conf").unwrap();
        assert_eq!(record.once_done("app").unwrap(), Vec::<String>::new());
        record.mark_once("app", "hook:/x", 7).unwrap();
        // Marking again is no error: a resumed step marks what it ran.
        record.mark_once("app", "hook:/x", 8).unwrap();
        assert_eq!(record.once_done("app").unwrap(), ["hook:/x"]);
        assert!(record.once_done("other").unwrap().is_empty());
        let events = journal.events(7).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].kind.as_str(), events[0].detail.as_str()),
            ("conffiles", "/etc/app.conf")
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
