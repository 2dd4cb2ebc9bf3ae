//! `wait`: wait, bounded, until a port answers, a URL is healthy, a command
//! succeeds or an SQL query returns what is expected (seed 003: "wait until
//! all hosts are Up").

use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Kind;
use super::db::{Credentials, Engine};
use crate::actions::ctx::Ctx;
use crate::output::diag::Problem;
use crate::recipe::duration;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sql {
    pub engine: Engine,
    pub database: String,
    pub query: String,
    /// The first column of the first row must equal this; without it, the
    /// query must return at least one row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    #[serde(default)]
    pub credentials: Credentials,
}

/// What must turn true. Exactly one field is set.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Until {
    /// `host:port` accepting TCP connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    /// A URL answering 2xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<Sql>,
}

/// How often a wait says where it stands.
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

impl Until {
    /// Every check runs (SQL ones through the `db` clients).
    pub fn executable(&self) -> bool {
        true
    }

    /// Whether it holds now; `Err` is what was seen instead.
    pub fn holds(&self, ctx: &Ctx<'_>) -> Result<(), String> {
        let short = Duration::from_secs(10);
        if let Some(t) = &self.tcp {
            use std::net::ToSocketAddrs;
            let addrs = t.to_socket_addrs().map_err(|e| format!("{t}: {e}"))?;
            let mut last = format!("{t}: no address");
            for a in addrs {
                match std::net::TcpStream::connect_timeout(&a, short) {
                    Ok(_) => return Ok(()),
                    Err(e) => last = format!("{t}: {e}"),
                }
            }
            Err(last)
        } else if let Some(u) = &self.http {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(short))
                .http_status_as_error(false)
                .build()
                .into();
            match agent.get(u).call() {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("{u}: HTTP {}", r.status().as_u16())),
                Err(e) => Err(format!("{u}: {e}")),
            }
        } else if let Some(c) = &self.command {
            check_status(
                ctx,
                crate::sys::process::argv(c),
                &super::exec::shell_words(c),
            )
        } else if let Some(sh) = &self.shell {
            check_status(
                ctx,
                crate::sys::process::shell(sh),
                &super::exec::first_line(sh),
            )
        } else if let Some(q) = &self.sql {
            // Each poll's answer goes to the run log: the admin following
            // a long wait (seed 003: all hosts Up) sees where it stands.
            let got = super::db::query_value(ctx, q.engine, &q.database, &q.query, &q.credentials);
            let seen = match (&got, &q.expect) {
                (Ok(Some(v)), Some(e)) if v == e => return Ok(()),
                (Ok(Some(_)), None) => return Ok(()),
                (Ok(Some(v)), _) => format!("{} returned {v:?}", q.database),
                (Ok(None), _) => format!("{} returned no row", q.database),
                (Err(e), _) => e.clone(),
            };
            ctx.note(&format!("waiting: {seen}"));
            Err(seen)
        } else {
            Err("nothing to wait for".into())
        }
    }

    /// Polls until it holds, at most `timeout`.
    pub fn wait(&self, ctx: &Ctx<'_>, timeout: Duration, interval: Duration) -> Result<(), String> {
        let start = std::time::Instant::now();
        let deadline = start + timeout;
        let mut shown: Option<std::time::Instant> = None;
        loop {
            let seen = match self.holds(ctx) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let now = std::time::Instant::now();
            // Where a long wait stands (seed 003: "You may need to wait 20
            // or 30 minutes"), at the first miss and then every
            // PROGRESS_EVERY, not at every poll.
            if shown.is_none_or(|t| now - t >= PROGRESS_EVERY) {
                shown = Some(now);
                (ctx.progress)(&format!(
                    "waiting, {} of at most {}: {seen}",
                    humantime::format_duration(Duration::from_secs((now - start).as_secs())),
                    humantime::format_duration(timeout)
                ));
            }
            if now >= deadline {
                return Err(format!(
                    "not true after {}: {}; last seen: {seen}",
                    humantime::format_duration(timeout),
                    self.describe()
                ));
            }
            if !ctx.sleep(interval.min(deadline - now)) {
                return Err(format!(
                    "stopped by a signal while waiting; last seen: {seen}"
                ));
            }
        }
    }

    pub fn describe(&self) -> String {
        if let Some(t) = &self.tcp {
            format!("{t} accepts TCP connections")
        } else if let Some(u) = &self.http {
            format!("{u} answers 2xx")
        } else if let Some(c) = &self.command {
            format!("`{}` succeeds", super::exec::shell_words(c))
        } else if let Some(s) = &self.shell {
            format!("`{}` succeeds", super::exec::first_line(s))
        } else if let Some(q) = &self.sql {
            match &q.expect {
                Some(e) => format!("`{}` on {} returns {e:?}", q.query.trim(), q.database),
                None => format!("`{}` on {} returns a row", q.query.trim(), q.database),
            }
        } else {
            "nothing".into()
        }
    }

    pub fn validate(&self, what: &str, span: &Range<usize>, problems: &mut Vec<Problem>) {
        super::exactly_one(
            what,
            span,
            &[
                ("tcp", self.tcp.is_some()),
                ("http", self.http.is_some()),
                ("command", self.command.is_some()),
                ("shell", self.shell.is_some()),
                ("sql", self.sql.is_some()),
            ],
            problems,
        );
        if let Some(t) = &self.tcp
            && t.rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            problems.push(
                Problem::error(
                    "bad-address",
                    span.clone(),
                    format!("`{t}` is not host:port"),
                )
                .label("expected e.g. \"127.0.0.1:5432\""),
            );
        }
        if let Some(q) = &self.sql {
            q.credentials.validate(span, problems);
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    pub until: Until,
    /// Every wait is bounded: the timeout is required.
    #[serde(with = "duration")]
    pub timeout: Duration,
    #[serde(with = "duration", default = "default_interval")]
    pub interval: Duration,
}

fn default_interval() -> Duration {
    Duration::from_secs(2)
}

impl Kind for Wait {
    const NAME: &'static str = "wait";

    fn summary(&self) -> String {
        format!(
            "wait until {} (at most {})",
            self.until.describe(),
            humantime::format_duration(self.timeout)
        )
    }

    fn default_timeout(&self) -> Duration {
        self.timeout
    }

    fn undo_kinds(&self) -> &'static [&'static str] {
        &[]
    }

    fn is_wait(&self) -> bool {
        true
    }

    fn disruptive(&self) -> bool {
        false
    }

    fn executable(&self) -> bool {
        self.until.executable()
    }

    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        ctx.note(&self.summary());
        self.until.wait(ctx, self.timeout, self.interval)
    }

    fn validate(&self, span: &Range<usize>, problems: &mut Vec<Problem>) {
        self.until.validate("wait.until", span, problems);
        // The default interval under a shorter timeout is simply cut to
        // it (each sleep is bounded by the deadline); only an interval the
        // recipe gives can be wrong.
        if self.interval.is_zero()
            || (self.interval > self.timeout && self.interval != default_interval())
        {
            problems.push(
                Problem::error(
                    "bad-interval",
                    span.clone(),
                    format!(
                        "`interval` ({}) must be above zero and at most `timeout` ({})",
                        humantime::format_duration(self.interval),
                        humantime::format_duration(self.timeout)
                    ),
                )
                .label("here"),
            );
        }
    }
}

/// A command check: its output goes to the run log, its status decides.
fn check_status(ctx: &Ctx<'_>, cmd: std::process::Command, what: &str) -> Result<(), String> {
    ctx.run(cmd, what, Duration::from_secs(60))
}
