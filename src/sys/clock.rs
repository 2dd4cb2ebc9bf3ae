//! The one clock hoist writes down: RFC 3339 in UTC with milliseconds, in
//! the journals and on every event line (they sort as text).

use std::time::SystemTime;

/// Now, as the journals and the event lines write it.
pub fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}
