//! The one clock hoist writes down: RFC 3339 in UTC with milliseconds, in
//! the journals and on every event line (they sort as text).

use std::time::SystemTime;

/// Now, as the journals and the event lines write it.
pub fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// A line of hoist's own in a run log (`<state>/runs/N.log`), where the
/// steps' output goes too: stamped with `now`, so the admin can line it up
/// with the journal's events and with `journalctl`.
pub fn log_line(line: &str) -> String {
    format!("{} hoist: {line}", now())
}
