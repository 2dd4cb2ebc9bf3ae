//! SIGINT/SIGTERM of the test process (Ctrl-C, a CI job cancelled) tear
//! down every live testbed before the process exits, so that no container,
//! mount or namespace outlives the run. The handler runs on an ordinary
//! thread (signal-hook's iterator), where teardown's blocking work is safe.

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::error::{Error, IoContext, Result};
use crate::testbed::Inner;

fn live() -> &'static Mutex<Vec<Weak<Inner>>> {
    static LIVE: OnceLock<Mutex<Vec<Weak<Inner>>>> = OnceLock::new();
    LIVE.get_or_init(|| Mutex::new(Vec::new()))
}

/// Install the handler once per process.
pub(crate) fn install() -> Result<()> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let mut signals = Signals::new([SIGINT, SIGTERM])
                .ctx("install signal handler", "SIGINT/SIGTERM")
                .map_err(|e| e.to_string())?;
            thread::Builder::new()
                .name("hoist-testbed-signals".into())
                .spawn(move || {
                    if let Some(sig) = signals.forever().next() {
                        teardown_all();
                        // Exit as the signal would have: 128 + signal number.
                        std::process::exit(128 + sig);
                    }
                })
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(Error::Unsupported)
}

/// Track a testbed for teardown on a signal.
pub(crate) fn register(inner: &Arc<Inner>) {
    let mut l = live().lock().unwrap_or_else(|p| p.into_inner());
    l.retain(|w| w.strong_count() > 0);
    l.push(Arc::downgrade(inner));
}

/// Stop tracking a testbed that was torn down.
pub(crate) fn unregister(inner: &Arc<Inner>) {
    let mut l = live().lock().unwrap_or_else(|p| p.into_inner());
    l.retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(inner)));
}

fn teardown_all() {
    let all: Vec<Arc<Inner>> = live()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    for tb in all {
        if let Err(e) = tb.teardown() {
            eprintln!("hoist-testbed: teardown on signal: {e}");
        }
    }
}
