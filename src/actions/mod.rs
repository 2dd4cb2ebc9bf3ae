//! Action kinds: what a step does.
//!
//! Each kind is one type in one file, implementing [`Kind`]; the `registry!`
//! line below is the only other place it is named. In a recipe a step names
//! its kind by a key: `exec = { argv = ["true"] }`.

pub mod ctx;
pub mod saved;

use std::ops::Range;

use serde::Serialize;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::DeValue;

use crate::actions::ctx::Ctx;
use crate::output::diag::Problem;

/// What every action kind provides.
pub trait Kind: DeserializeOwned + Serialize + Clone + std::fmt::Debug {
    /// The key that names the kind in a recipe.
    const NAME: &'static str;

    /// One line for the plan: what will be done, concretely.
    fn summary(&self) -> String;

    /// Kinds that may compensate this one in `undo`. Empty: the action
    /// changes nothing that could be put back (a wait, a gate, a reboot).
    fn undo_kinds(&self) -> &'static [&'static str];

    /// Whether it disrupts the host (stops a service, changes packages or
    /// files). Disruptive actions are refused in `prepare` (DESIGN: nothing
    /// disruptive before `prepare` has fully succeeded).
    fn disruptive(&self) -> bool;

    /// Whether the recipe can say `read_only = true` of it (a command
    /// hoist cannot judge, whose maintainer vouches it changes nothing).
    fn may_declare_read_only(&self) -> bool {
        false
    }

    /// Whether it leaves a change on the host that a rollback would have to
    /// put back. Wider than `disruptive`, which only says what `prepare`
    /// refuses: an `exec` may change anything. An action that takes no undo
    /// (a wait, a gate, a reboot) leaves nothing to put back.
    fn changes_host(&self) -> bool {
        !self.undo_kinds().is_empty()
    }

    /// The step's time bound when the recipe gives none: every step ends.
    fn default_timeout(&self) -> std::time::Duration {
        crate::actions::ctx::DEFAULT_TIMEOUT
    }

    /// Whether only a person can let the run past it (a gate with no
    /// check): `--yes` does not, `--confirm ID` or a terminal does. Plans
    /// list these so the admin knows who must be there.
    fn needs_person(&self) -> bool {
        false
    }

    /// Whether it may be the `undo` of an `exec` step: the command may have
    /// changed anything, so kinds that put a change of their own back may
    /// (not a wait, a gate, a reboot, nor a `fetch`). Listed, in registry
    /// order, by [`UNDO_EXEC_KINDS`].
    const UNDOES_EXEC: bool = false;

    /// Whether it holds the run until something is true, changing nothing
    /// on the host (a `wait`, a `gate`): a fleet's run-once step of such a
    /// kind is a gate of the rollout, and needs no undo.
    fn is_wait(&self) -> bool {
        false
    }

    /// Whether it reboots the host: a fleet's run-once step may not (the
    /// reboot belongs in the host's own upgrade, which resumes at boot).
    fn reboots(&self) -> bool {
        false
    }

    /// Whether it works on a database, so that undoing it restores data
    /// and loses what was written since (the fleet rollback of a committed
    /// run says so).
    fn touches_database(&self) -> bool {
        false
    }

    /// The units whose restarts it holds back, which a later step must
    /// start or restart (lint: `held-never-restarted`).
    fn held_restarts(&self) -> &[String] {
        &[]
    }

    /// Whether it starts or restarts `unit`.
    fn starts(&self, _unit: &str) -> bool {
        false
    }

    /// Checks the types cannot express; problems point at `span`.
    fn validate(&self, span: &Range<usize>, problems: &mut Vec<Problem>);

    /// What the recipe's `[[services]]` make impossible (a `reload` of a
    /// service whose backend has start, stop and status only), caught by
    /// lint rather than at run time.
    fn cannot_with(&self, _services: &[crate::recipe::ServiceSpec]) -> Option<String> {
        None
    }

    /// Whether this hoist can carry the action out. When not, the plan says
    /// "not yet supported" and `upgrade` refuses before changing anything.
    fn executable(&self) -> bool {
        false
    }

    /// Read-only checks before the run changes anything (unsafe hook
    /// scripts are refused here, before any step runs).
    fn preflight(&self, _ctx: &Ctx<'_>) -> Result<(), String> {
        Ok(())
    }

    /// Carries the action out. `Err` says what went wrong, for the admin.
    /// An action with a built-in undo saves what it will change under
    /// `ctx.step_dir` (durably: written and fsynced) before changing it.
    fn apply(&self, _ctx: &mut Ctx<'_>) -> Result<(), String> {
        Err(format!(
            "`{}` is not yet supported by this hoist",
            Self::NAME
        ))
    }

    /// Whether the action puts back by itself what `apply` changed (from
    /// what it saved under `ctx.step_dir`), so a step needs no `undo`.
    fn builtin_undo(&self) -> bool {
        false
    }

    /// The built-in undo. Idempotent, and a no-op when nothing was saved
    /// (the step was interrupted before it changed anything).
    fn compensate(&self, _ctx: &mut Ctx<'_>) -> Result<(), String> {
        Err(format!("`{}` has no built-in undo", Self::NAME))
    }

    /// Whether the effect is already there, for resuming a step found
    /// running after a crash when the recipe gives no `probe`. `None`: the
    /// action cannot tell (the step is run again).
    fn applied(&self, _ctx: &Ctx<'_>) -> Option<bool> {
        None
    }

    /// What the plan shows beyond the summary (a unified diff of a config
    /// change, when it can be computed in advance).
    fn preview(&self, _recipe_dir: &std::path::Path) -> Option<String> {
        None
    }
}

/// Exactly one of the options must be set: shared by kinds whose table offers
/// alternatives (`argv` or `shell`, `tcp` or `http` ...).
pub fn exactly_one(
    kind: &str,
    span: &Range<usize>,
    options: &[(&str, bool)],
    problems: &mut Vec<Problem>,
) {
    let set: Vec<&str> = options.iter().filter(|o| o.1).map(|o| o.0).collect();
    let names: Vec<String> = options.iter().map(|o| format!("`{}`", o.0)).collect();
    if set.len() != 1 {
        let what = if set.is_empty() {
            "none is set".to_string()
        } else {
            format!("{} are set", set.join(" and "))
        };
        problems.push(
            Problem::error(
                "one-of",
                span.clone(),
                format!("`{kind}` needs exactly one of {}: {what}", names.join(", ")),
            )
            .label("here"),
        );
    }
}

/// A non-empty list, or a problem.
pub fn non_empty<T>(what: &str, items: &[T], span: &Range<usize>, problems: &mut Vec<Problem>) {
    if items.is_empty() {
        problems.push(
            Problem::error("empty-list", span.clone(), format!("`{what}` is empty"))
                .label("at least one is needed"),
        );
    }
}

macro_rules! registry {
    ($($name:literal => $module:ident :: $ty:ident),* $(,)?) => {
        $(pub mod $module;)*

        /// One action of any kind. Serialised with its kind as `kind`, so a
        /// plan stored in the journal reads back as it was.
        #[derive(Clone, Debug, Serialize, serde::Deserialize)]
        #[serde(tag = "kind")]
        pub enum Action {
            $(#[serde(rename = $name)] $ty($module::$ty),)*
        }

        /// Every kind's name, in registry order.
        pub const KINDS: &[&str] = &[$($name),*];

        /// The kinds that may undo an `exec` step ([`Kind::UNDOES_EXEC`]),
        /// in registry order.
        pub const UNDO_EXEC_KINDS: &[&str] = {
            const N: usize = 0 $(+ <$module::$ty as Kind>::UNDOES_EXEC as usize)*;
            const LIST: [&str; N] = {
                let mut list = [""; N];
                let mut i = 0;
                $(if <$module::$ty as Kind>::UNDOES_EXEC {
                    list[i] = $name;
                    i += 1;
                })*
                let _ = i;
                list
            };
            &LIST
        };

        impl Action {
            /// Reads the table under a kind's key. `None` with problems
            /// pushed when it does not fit the kind.
            pub fn parse(
                name: &str,
                value: Spanned<DeValue<'_>>,
                problems: &mut Vec<Problem>,
            ) -> Option<Action> {
                match name {
                    $($name => {
                        let span = value.span();
                        let a: $module::$ty = crate::recipe::parse::de(value, problems)?;
                        a.validate(&span, problems);
                        Some(Action::$ty(a))
                    })*
                    _ => None,
                }
            }

            pub fn kind(&self) -> &'static str {
                match self { $(Action::$ty(_) => $name,)* }
            }

            pub fn summary(&self) -> String {
                match self { $(Action::$ty(a) => a.summary(),)* }
            }

            pub fn undo_kinds(&self) -> &'static [&'static str] {
                match self { $(Action::$ty(a) => a.undo_kinds(),)* }
            }

            pub fn disruptive(&self) -> bool {
                match self { $(Action::$ty(a) => a.disruptive(),)* }
            }

            pub fn changes_host(&self) -> bool {
                match self { $(Action::$ty(a) => a.changes_host(),)* }
            }

            pub fn default_timeout(&self) -> std::time::Duration {
                match self { $(Action::$ty(a) => a.default_timeout(),)* }
            }

            pub fn may_declare_read_only(&self) -> bool {
                match self { $(Action::$ty(a) => a.may_declare_read_only(),)* }
            }

            pub fn cannot_with(&self, services: &[crate::recipe::ServiceSpec]) -> Option<String> {
                match self { $(Action::$ty(a) => a.cannot_with(services),)* }
            }

            pub fn needs_person(&self) -> bool {
                match self { $(Action::$ty(a) => a.needs_person(),)* }
            }

            pub fn is_wait(&self) -> bool {
                match self { $(Action::$ty(a) => a.is_wait(),)* }
            }

            pub fn reboots(&self) -> bool {
                match self { $(Action::$ty(a) => a.reboots(),)* }
            }

            pub fn touches_database(&self) -> bool {
                match self { $(Action::$ty(a) => a.touches_database(),)* }
            }

            pub fn held_restarts(&self) -> &[String] {
                match self { $(Action::$ty(a) => a.held_restarts(),)* }
            }

            pub fn starts(&self, unit: &str) -> bool {
                match self { $(Action::$ty(a) => a.starts(unit),)* }
            }

            pub fn executable(&self) -> bool {
                match self { $(Action::$ty(a) => a.executable(),)* }
            }

            pub fn preflight(&self, ctx: &Ctx<'_>) -> Result<(), String> {
                match self { $(Action::$ty(a) => a.preflight(ctx),)* }
            }

            pub fn apply(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
                match self { $(Action::$ty(a) => a.apply(ctx),)* }
            }

            pub fn builtin_undo(&self) -> bool {
                match self { $(Action::$ty(a) => a.builtin_undo(),)* }
            }

            pub fn compensate(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
                match self { $(Action::$ty(a) => a.compensate(ctx),)* }
            }

            pub fn applied(&self, ctx: &Ctx<'_>) -> Option<bool> {
                match self { $(Action::$ty(a) => a.applied(ctx),)* }
            }

            pub fn preview(&self, recipe_dir: &std::path::Path) -> Option<String> {
                match self { $(Action::$ty(a) => a.preview(recipe_dir),)* }
            }
        }
    };
}

registry! {
    "exec" => exec::Exec,
    "hooks" => hooks::Hooks,
    "service" => service::Service,
    "packages" => packages::Packages,
    "repo" => repo::Repo,
    "db" => db::Db,
    "file" => file::File,
    "fetch" => fetch::Fetch,
    "wait" => wait::Wait,
    "firewall" => firewall::Firewall,
    "reboot" => reboot::Reboot,
    "gate" => gate::Gate,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One action of every kind, read as a recipe gives it.
    fn every_kind() -> Vec<Action> {
        let tables = [
            ("exec", r#"{ argv = ["true"] }"#),
            ("hooks", r#"{ dir = "hooks" }"#),
            ("service", r#"{ op = "restart", units = ["web", "db"] }"#),
            (
                "packages",
                r#"{ op = "upgrade", names = ["app"], hold_restarts = ["web"] }"#,
            ),
            (
                "repo",
                r#"{ op = "switch", file = "/etc/apt/sources.list", from = "a 4.2", to = "a 4.3" }"#,
            ),
            (
                "db",
                r#"{ op = "backup", engine = "postgresql", database = "app", dump = "/tmp/d", credentials = { os_user = "postgres" } }"#,
            ),
            (
                "file",
                r#"{ op = "ensure_line", path = "/etc/app.conf", line = "a=1" }"#,
            ),
            (
                "fetch",
                r#"{ url = "https://example.org/a", dest = "/tmp/a", sha256 = "0000000000000000000000000000000000000000000000000000000000000000" }"#,
            ),
            (
                "wait",
                r#"{ until = { tcp = "127.0.0.1:80" }, timeout = "1m" }"#,
            ),
            (
                "firewall",
                r#"{ op = "add", proto = "tcp", dport = 80, target = "ACCEPT" }"#,
            ),
            ("reboot", r#"{ reason = "new kernel" }"#),
            ("gate", r#"{ message = "look" }"#),
        ];
        assert_eq!(tables.map(|t| t.0), KINDS, "one action per kind, in order");
        tables
            .iter()
            .map(|(kind, table)| read(kind, table))
            .collect()
    }

    /// The action a step's `kind = table` gives.
    fn read(kind: &str, table: &str) -> Action {
        let text = format!("a = {table}");
        let doc = toml::de::DeTable::parse(&text).unwrap();
        let value = doc.get_ref().get("a").unwrap().clone();
        let mut problems = Vec::new();
        let a = Action::parse(kind, value, &mut problems);
        assert!(problems.is_empty(), "{kind}: {problems:?}");
        a.unwrap()
    }

    /// The kinds for which `answer` is true.
    fn kinds_where(answer: impl Fn(&Action) -> bool) -> Vec<&'static str> {
        every_kind()
            .iter()
            .filter(|a| answer(a))
            .map(Action::kind)
            .collect()
    }

    #[test]
    fn the_kinds_that_may_undo_a_command() {
        assert_eq!(
            UNDO_EXEC_KINDS,
            [
                "exec", "hooks", "service", "packages", "repo", "db", "file", "firewall"
            ]
        );
        let exec = &every_kind()[0];
        assert_eq!(exec.undo_kinds(), UNDO_EXEC_KINDS);
    }

    #[test]
    fn each_kind_says_what_it_is() {
        assert_eq!(kinds_where(Action::is_wait), ["wait", "gate"]);
        assert_eq!(kinds_where(Action::reboots), ["reboot"]);
        assert_eq!(kinds_where(Action::touches_database), ["db"]);
        assert_eq!(kinds_where(|a| a.starts("web")), ["service"]);
        assert_eq!(kinds_where(|a| a.starts("mail")), Vec::<&str>::new());
        assert_eq!(
            kinds_where(|a| a.held_restarts() == ["web".to_string()]),
            ["packages"]
        );
    }

    #[test]
    fn only_what_changes_packages_holds_restarts_and_only_a_start_starts() {
        let download = read("packages", r#"{ op = "download", names = ["app"] }"#);
        assert!(download.held_restarts().is_empty());
        for (op, starts) in [
            ("start", true),
            ("restart", true),
            ("stop", false),
            ("reload", false),
        ] {
            let service = read("service", &format!(r#"{{ op = "{op}", units = ["web"] }}"#));
            assert_eq!(service.starts("web"), starts, "{op}");
        }
    }
}
