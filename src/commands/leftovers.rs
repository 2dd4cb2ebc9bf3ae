//! `hoist firewall leftovers [-r RECIPE] [--remove]`: the check seed 000
//! asks admins to do by hand ("run iptables -nvL ... if it displays
//! something like DROP udp dpt:5060 ... delete the DROP rules ... Untill no
//! more unwanted rules are left behind"), for every temporary rule of the
//! recipe and of the runs in the journal.
//!
//! What the admin woken at 3 a.m. because no phone registers needs: one
//! command that says which rule is in the way, where (which iptables or
//! nftables), how many copies, which step put it there, whether a hoist is
//! still working (then the rule is its own and goes at its end), whether an
//! unfinished run would remove it (`hoist resume` / `hoist rollback`), and
//! one flag that removes every copy and checks none is left. Exit 1 while a
//! leftover is there, so monitoring can run it too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::actions::Action;
use crate::actions::firewall::{Firewall, Found, Op, Sh};
use crate::output::wire;
use crate::run::journal::Journal;
use crate::sys::exit::{EXIT_OK, EXIT_REFUSED, EXIT_USAGE};

#[derive(clap::Subcommand, Debug)]
pub enum FirewallCommand {
    /// List temporary firewall rules (those a recipe removes, or an
    /// unfinished run added) that no running hoist holds; --remove deletes
    /// every copy.
    Leftovers {
        /// The recipe whose temporary rules to look for (besides those of
        /// the runs in the journal).
        #[arg(short, long, env = "HOIST_RECIPE")]
        recipe: Option<PathBuf>,
        /// Delete every copy of each leftover rule.
        #[arg(long)]
        remove: bool,
    },
}

/// A rule to look for, and the steps that name it.
struct Wanted {
    rule: Firewall,
    steps: Vec<String>,
}

#[derive(serde::Serialize)]
struct Report {
    rule: String,
    steps: Vec<String>,
    found: Vec<Found>,
    removed: Vec<Found>,
    saved_in: Vec<String>,
}

fn firewall_of(a: &Action) -> Option<&Firewall> {
    match a {
        Action::Firewall(f) => Some(f),
        _ => None,
    }
}

/// Adds the rules of one recipe's or plan's steps: those a `remove` (a
/// step's or an undo) names are temporary by the recipe's own words; those
/// an unfinished run added (`adds`) go with its rollback.
fn collect<'a>(
    wanted: &mut BTreeMap<String, Wanted>,
    steps: impl Iterator<Item = (&'a str, &'a Action, Option<&'a Action>)>,
    adds: bool,
) {
    let steps: Vec<_> = steps.collect();
    let removed: Vec<String> = steps
        .iter()
        .flat_map(|(_, a, u)| [Some(*a), *u])
        .flatten()
        .filter_map(firewall_of)
        .filter(|f| f.op == Op::Remove)
        .map(Firewall::rule_text)
        .collect();
    for (id, a, u) in &steps {
        for f in [Some(*a), *u].into_iter().flatten().filter_map(firewall_of) {
            let key = f.rule_text();
            let temporary = removed.contains(&key) || (adds && f.op == Op::Add);
            if !temporary {
                continue;
            }
            let w = wanted.entry(key).or_insert_with(|| Wanted {
                rule: f.clone(),
                steps: Vec::new(),
            });
            if !w.steps.iter().any(|s| s == id) {
                w.steps.push(id.to_string());
            }
        }
    }
}

/// Files that reload rules at boot: a leftover saved there comes back.
const SAVED: [&str; 5] = [
    "/etc/iptables/rules.v4",
    "/etc/iptables/rules.v6",
    "/etc/sysconfig/iptables",
    "/etc/iptables.up.rules",
    "/etc/network/iptables",
];

fn saved_in(f: &Firewall) -> Vec<String> {
    let line = f.save_line();
    SAVED
        .iter()
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.lines().any(|l| l.trim() == line)))
        .map(|p| p.to_string())
        .collect()
}

fn copies(found: &[Found]) -> String {
    found
        .iter()
        .map(|f| {
            format!(
                "{} cop{} in {}",
                f.copies,
                if f.copies == 1 { "y" } else { "ies" },
                f.place
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn main(cmd: &FirewallCommand, state_dir: &Path, json: bool) -> u8 {
    let FirewallCommand::Leftovers { recipe, remove } = cmd;
    let fail = |code: u8, error: &str, message: &str| -> u8 {
        crate::output::wire::refuse(json, code, error, message)
    };
    let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
    if let Some(path) = recipe {
        let loaded = match crate::recipe::load(path) {
            Ok(l) => l,
            Err(e) => {
                return fail(
                    EXIT_USAGE,
                    "unreadable",
                    &format!("cannot read {}: {e}", path.display()),
                );
            }
        };
        let Some(r) = loaded.recipe else {
            return fail(
                EXIT_USAGE,
                "invalid-recipe",
                &format!(
                    "{} is not a valid recipe (see `hoist lint`)",
                    path.display()
                ),
            );
        };
        collect(
            &mut wanted,
            r.steps
                .iter()
                .map(|s| (s.id.as_str(), &s.action, s.undo.as_ref())),
            false,
        );
    }

    // Who holds the state directory: a live hoist's rules are its own.
    // Removing takes the lock, so no run starts meanwhile; listing only
    // probes it (a reader never stands in a writer's way).
    let mut _lock = None;
    let mut live = None;
    if *remove {
        match crate::run::lock::acquire(state_dir, "firewall leftovers") {
            Ok(l) => _lock = Some(l),
            Err(crate::run::lock::LockError::Held { holder }) => live = Some(holder),
            Err(e) => return fail(EXIT_REFUSED, e.code(), &e.to_string()),
        }
    } else {
        match crate::run::lock::holder(state_dir) {
            Ok(h) => live = h,
            Err(e) => return fail(EXIT_REFUSED, e.code(), &e.to_string()),
        }
    }
    let journal = match Journal::open_existing(state_dir) {
        Ok(j) => j,
        Err(e) => {
            return fail(
                EXIT_REFUSED,
                "journal",
                &format!("cannot read the journal: {e}"),
            );
        }
    };
    let have_state = journal.is_some();
    let mut unfinished = None;
    if let Some(journal) = &journal {
        for id in journal.run_ids().unwrap_or_default() {
            let Ok(run) = journal.load_run(id) else {
                continue;
            };
            let open = !run.state.is_final();
            if open {
                unfinished = Some((run.id, run.state.as_str().to_string()));
            }
            collect(
                &mut wanted,
                run.plan
                    .steps
                    .iter()
                    .map(|s| (s.id.as_str(), &s.action, s.undo.as_ref())),
                open,
            );
        }
    }
    if wanted.is_empty() {
        let why = if recipe.is_some() || have_state {
            "no temporary firewall rule in the recipe or the journal: nothing to look for"
        } else {
            "no recipe given (-r) and no run in the journal: nothing to look for"
        };
        if json {
            wire::print_doc(wire::Leftovers {
                rules: Vec::new(),
                live: None,
                unfinished_run: None,
                errors: Vec::new(),
                message: Some(why.to_string()),
            });
        } else {
            outln!("{why}");
        }
        return if recipe.is_some() || have_state {
            EXIT_OK
        } else {
            EXIT_USAGE
        };
    }

    let sh = Sh {
        log: None,
        env: &[],
    };
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for w in wanted.values() {
        let found = match w.rule.find_everywhere(&sh) {
            Ok(f) => f,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let mut removed = Vec::new();
        if *remove && live.is_none() && !found.is_empty() {
            match w.rule.remove_everywhere(&sh) {
                Ok(r) => removed = r,
                Err(e) => errors.push(e),
            }
        }
        reports.push(Report {
            rule: w.rule.rule_text(),
            steps: w.steps.clone(),
            found,
            removed,
            saved_in: saved_in(&w.rule),
        });
    }
    let left: Vec<&Report> = reports
        .iter()
        .filter(|r| r.found.len() > r.removed.len() || !r.saved_in.is_empty())
        .collect();
    let refused = *remove && live.is_some() && !left.is_empty();
    let code = if !errors.is_empty() || refused || (live.is_none() && !left.is_empty()) {
        EXIT_REFUSED
    } else {
        EXIT_OK
    };
    if json {
        wire::print_doc(wire::Leftovers {
            rules: reports
                .iter()
                .map(|r| serde_json::to_value(r).unwrap_or_default())
                .collect(),
            live: live.clone(),
            unfinished_run: unfinished.as_ref().map(|u| u.0),
            errors: errors.clone(),
            message: None,
        });
        return code;
    }
    for r in &reports {
        let steps = r.steps.join(", ");
        if !r.removed.is_empty() {
            outln!(
                "REMOVED  {}  ({}; steps {steps})",
                r.rule,
                copies(&r.removed)
            );
        } else if !r.found.is_empty() {
            let what = if live.is_some() { "HELD" } else { "LEFT" };
            outln!(
                "{what}     {}  ({}; steps {steps})",
                r.rule,
                copies(&r.found)
            );
        } else {
            outln!("absent   {}  (steps {steps})", r.rule);
        }
        for f in &r.saved_in {
            outln!(
                "         also saved in {f}: it comes back at the next boot; delete that line there"
            );
        }
    }
    for e in &errors {
        errln!("hoist: {e}");
    }
    if let Some(h) = &live {
        outln!(
            "a hoist is running ({h}): these rules are its own and go at its end; nothing was removed"
        );
    } else if left.iter().any(|r| r.found.len() > r.removed.len()) {
        outln!(
            "no hoist is running: nothing will remove these. `hoist firewall leftovers --remove{}` deletes every copy",
            recipe
                .as_ref()
                .map(|p| format!(" -r {}", p.display()))
                .unwrap_or_default()
        );
        if let Some((id, state)) = &unfinished {
            outln!(
                "run {id} is unfinished ({state}): `hoist resume` or `hoist rollback` also removes them, with the rest of that run"
            );
        }
    } else if errors.is_empty() && left.is_empty() {
        outln!("no temporary firewall rule is left on this host");
    }
    code
}
