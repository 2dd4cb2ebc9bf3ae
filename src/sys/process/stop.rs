//! The admin's signals during a run: SIGTERM, SIGINT and SIGHUP.
//!
//! The first asks the run to pause: a wait, a gate or a retry delay ends
//! at once (they poll `requested`), a command is left to finish within its
//! time bound, then the run pauses (exit 3, `hoist resume` goes on). The
//! second ends the current step's processes (SIGTERM, then SIGKILL after a
//! grace) and the run pauses. SIGHUP is one of them, so a closed terminal
//! or SSH session never kills hoist in the middle of a step.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static COUNT: AtomicUsize = AtomicUsize::new(0);
static INSTALLED: OnceLock<()> = OnceLock::new();

/// What a second signal gives the step's processes after SIGTERM.
const GRACE: Duration = Duration::from_secs(5);

/// Installs the handling, once per process (a run does, nothing else).
pub fn install() {
    INSTALLED.get_or_init(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]) else {
            return;
        };
        std::thread::spawn(move || {
            for _ in signals.forever() {
                if COUNT.fetch_add(1, Ordering::SeqCst) >= 1 {
                    super::scope::end_current(GRACE);
                }
            }
        });
    });
}

/// Whether the admin asked the run to stop.
pub fn requested() -> bool {
    COUNT.load(Ordering::SeqCst) > 0
}

/// Asks the run to stop, as a signal would (the test hook's SIGTERM does
/// the same through the handler).
pub fn request() {
    COUNT.fetch_add(1, Ordering::SeqCst);
}

/// Sleeps `d`, or less when a stop is asked for: then `false`.
pub fn sleep(d: Duration) -> bool {
    let until = Instant::now() + d;
    loop {
        if requested() {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(100)));
    }
}
