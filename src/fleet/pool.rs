//! The one bounded host pool: at most `limit` hosts worked on at once, each
//! on its own thread, what they say brought back to the caller's thread,
//! which alone journals and decides what starts next. A batch of upgrades,
//! a run-on-each step and a fleet rollback's hosts all go through it.

use std::sync::mpsc;
use std::thread::Scope;

use super::transport::HostEvent;

enum Msg<R> {
    Event(String, HostEvent),
    Ended(String, R),
}

/// Hosts at work, each ending with an `R`.
pub struct Pool<'scope, 'env, R> {
    scope: &'scope Scope<'scope, 'env>,
    tx: mpsc::Sender<Msg<R>>,
    rx: mpsc::Receiver<Msg<R>>,
    limit: usize,
    inflight: usize,
}

/// Runs `f` with a pool of at most `limit` hosts at once (at least one);
/// every host started there has ended when it returns.
pub fn with_pool<'env, R: Send + 'env, T>(
    limit: usize,
    f: impl for<'scope> FnOnce(&mut Pool<'scope, 'env, R>) -> T,
) -> T {
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel();
        let mut pool = Pool {
            scope,
            tx,
            rx,
            limit: limit.max(1),
            inflight: 0,
        };
        f(&mut pool)
    })
}

impl<'scope, 'env, R: Send + 'env> Pool<'scope, 'env, R> {
    /// How many more hosts may start now.
    pub fn room(&self) -> usize {
        self.limit.saturating_sub(self.inflight)
    }

    /// Hosts started and not yet ended.
    pub fn inflight(&self) -> usize {
        self.inflight
    }

    /// Starts `work` for `host`: it reports what the host says through the
    /// callback it is given, and ends with its result. Not bounded here:
    /// the caller asks `room` first (a host re-attached after a crash or a
    /// person's answer is taken beyond it rather than left waiting).
    pub fn start(
        &mut self,
        host: String,
        work: impl FnOnce(&mut dyn FnMut(HostEvent)) -> R + Send + 'scope,
    ) {
        let tx = self.tx.clone();
        self.inflight += 1;
        self.scope.spawn(move || {
            let mut events = |e: HostEvent| drop(tx.send(Msg::Event(host.clone(), e)));
            let result = work(&mut events);
            let _ = tx.send(Msg::Ended(host, result));
        });
    }

    /// Waits for something, then takes everything already there: events go
    /// to `on_event` as they came, the hosts that ended are returned
    /// together (so they are journaled together), maybe none. `None` when
    /// no host is at work.
    pub fn next(&mut self, mut on_event: impl FnMut(&str, &HostEvent)) -> Option<Vec<(String, R)>> {
        if self.inflight == 0 {
            return None;
        }
        let first = self.rx.recv().ok()?;
        let mut ended = Vec::new();
        for msg in std::iter::once(first).chain(self.rx.try_iter()) {
            match msg {
                Msg::Event(h, e) => on_event(&h, &e),
                Msg::Ended(h, r) => ended.push((h, r)),
            }
        }
        Some(ended)
    }

    /// `n` of the hosts `next` returned are counted ended (the rest, held
    /// back by a test's crash hook, are abandoned with the controller).
    pub fn ended(&mut self, n: usize) {
        self.inflight = self.inflight.saturating_sub(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn no_more_than_the_limit_run_at_once_and_every_result_comes_back() {
        let now = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let mut todo: Vec<u32> = (0..20).collect();
        let mut results = Vec::new();
        let mut events = 0;
        with_pool(3, |pool| {
            loop {
                while pool.room() > 0 {
                    let Some(n) = todo.pop() else { break };
                    let (now, most) = (&now, &most);
                    pool.start(format!("h{n}"), move |say| {
                        let at = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(at, Ordering::SeqCst);
                        say(HostEvent::Started);
                        std::thread::yield_now();
                        now.fetch_sub(1, Ordering::SeqCst);
                        n * 2
                    });
                }
                let Some(ended) = pool.next(|_, _| events += 1) else {
                    break;
                };
                pool.ended(ended.len());
                results.extend(ended);
            }
        });
        assert!(most.load(Ordering::SeqCst) <= 3);
        assert_eq!(results.len(), 20);
        assert_eq!(events, 20);
        let mut got: Vec<u32> = results.iter().map(|(_, r)| *r).collect();
        got.sort_unstable();
        assert_eq!(got, (0..20).map(|n| n * 2).collect::<Vec<_>>());
        assert!(results.iter().all(|(h, r)| *h == format!("h{}", r / 2)));
    }

    #[test]
    fn an_empty_pool_has_nothing_to_wait_for() {
        with_pool::<(), _>(0, |pool| {
            assert_eq!(pool.room(), 1);
            assert!(pool.next(|_, _| {}).is_none());
        });
    }
}
