//! The upgrade graph: which versions can go where, through which stops.
//!
//! Edges go from a version range to a version or release series. An edge
//! marked `stop` is an intermediate hop whose `to` is a concrete version the
//! route must pass through (seed 003: "2.2.0-2.2.13 must upgrade to 2.2.14
//! first"); other edges end a route at the target. An edge with
//! `unsupported` refuses its sources with the maintainer's words (seed 000:
//! "Upgrading to XiVO 1.2 from a previous version (i.e. XiVO 1.1) is not
//! supported right now").

use std::collections::{HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::output::diag::Problem;
use crate::recipe::PathEdge;
use crate::version::Version;

/// One hop of a route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    pub path: String,
    pub from: Version,
    pub to: Version,
    /// Its path says a failure in the next hop rolls it back too: its
    /// stop is not safe to stay at. Left out of the JSON when false, so
    /// plans hash as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub atomic_with_next: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("{message}")]
    Unsupported { path: String, message: String },
    #[error("no upgrade path from {from} to {to}")]
    NoPath { from: String, to: String },
}

/// The outcome of routing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Already at (or past) the target.
    UpToDate,
    Hops(Vec<Hop>),
}

fn live(paths: &[PathEdge]) -> impl Iterator<Item = &PathEdge> {
    paths.iter().filter(|p| p.unsupported.is_none())
}

/// Whether an edge's `to` reaches `target`: the same version or, when `to`
/// is a series, a release of it.
fn reaches(edge_to: &Version, target: &Version) -> bool {
    target.in_series(edge_to)
}

/// The target when the admin names none and the recipe has no candidate
/// probe: the highest version a final edge reaches.
pub fn default_target(paths: &[PathEdge]) -> Option<Version> {
    live(paths)
        .filter(|p| !p.stop)
        .filter_map(|p| p.to.clone())
        .max()
}

/// Shortest route (fewest hops; recipe order breaks ties) from `current` to
/// `target`, which may be any version an edge reaches, a stop included.
pub fn route(paths: &[PathEdge], current: &Version, target: &Version) -> Result<Route, RouteError> {
    if current >= target {
        return Ok(Route::UpToDate);
    }
    for p in paths {
        if let Some(message) = &p.unsupported
            && p.from.contains(current)
            && p.to.as_ref().is_none_or(|to| reaches(to, target))
        {
            return Err(RouteError::Unsupported {
                path: p.id.clone(),
                message: message.clone(),
            });
        }
    }
    let mut queue: VecDeque<(Version, Vec<Hop>)> = VecDeque::from([(current.clone(), vec![])]);
    let mut seen: HashSet<Version> = HashSet::from([current.clone()]);
    while let Some((at, hops)) = queue.pop_front() {
        for edge in live(paths).filter(|e| e.from.contains(&at)) {
            let Some(to) = &edge.to else { continue };
            let hop = |to: &Version| Hop {
                path: edge.id.clone(),
                from: at.clone(),
                to: to.clone(),
                atomic_with_next: edge.atomic_with_next,
            };
            // A stop is a supported version too: a route may end there
            // (`--to` a required stop), as at any other edge's end.
            if reaches(to, target) {
                let mut done = hops.clone();
                done.push(hop(target));
                return Ok(Route::Hops(done));
            }
            if edge.stop && to > &at && to < target && seen.insert(to.clone()) {
                let mut next = hops.clone();
                next.push(hop(to));
                queue.push_back((to.clone(), next));
            }
        }
    }
    Err(RouteError::NoPath {
        from: current.to_string(),
        to: target.to_string(),
    })
}

/// Lint of the graph: empty ranges, stops that lead nowhere, cycles, and
/// duplicate ids.
pub fn lint(paths: &[PathEdge], problems: &mut Vec<Problem>) {
    let mut ids = HashSet::new();
    for p in paths {
        if !ids.insert(p.id.as_str()) {
            problems.push(
                Problem::error(
                    "duplicate-id",
                    p.span.clone(),
                    format!("path id `{}` is used twice", p.id),
                )
                .label("second use"),
            );
        }
        if p.from.witness().is_none() {
            problems.push(
                Problem::error(
                    "empty-range",
                    p.from_span.clone(),
                    format!(
                        "no version is in `{}`: path `{}` can never be taken",
                        p.from.as_str(),
                        p.id
                    ),
                )
                .label("empty range"),
            );
        }
        if p.atomic_with_next && !p.stop {
            problems.push(
                Problem::error(
                    "atomic-without-next",
                    p.span.clone(),
                    format!(
                        "path `{}` is `atomic_with_next` but not a `stop`: no hop follows it",
                        p.id
                    ),
                )
                .label("here")
                .help("`atomic_with_next = true` belongs to a stop that is not safe to stay at"),
            );
        }
        if p.stop && p.unsupported.is_some() {
            problems.push(
                Problem::error(
                    "one-of",
                    p.span.clone(),
                    format!("path `{}` is both a stop and unsupported", p.id),
                )
                .label("choose one"),
            );
        }
    }
    // A final path whose `to` another path starts from: the route ends
    // there, never goes on (a forgotten `stop`, or a series `to` whose
    // releases the next path takes: then it is meant).
    for p in live(paths).filter(|p| !p.stop) {
        let Some(to) = &p.to else { continue };
        if let Some(n) = live(paths).find(|n| {
            !std::ptr::eq(p, *n) && n.from.contains(to) && n.to.as_ref().is_some_and(|t| t > to)
        }) {
            problems.push(
                Problem::warning(
                    "not-a-stop",
                    p.span.clone(),
                    format!(
                        "path `{}` ends at {to}, which path `{}` starts from, but it is not a `stop`: no route goes on from {to} through it",
                        p.id, n.id
                    ),
                )
                .label("a route ends here")
                .help(format!("add `stop = true` if versions before {to} must go through it to reach `{}`", n.id)),
            );
        }
    }
    // Stops form the only way a route can revisit a version: look for
    // cycles among them, and for stops nothing leads on from.
    let stops: Vec<&PathEdge> = live(paths).filter(|p| p.stop).collect();
    for s in &stops {
        let Some(to) = &s.to else { continue };
        let onward = live(paths).any(|n| !std::ptr::eq(*s, n) && n.from.contains(to));
        if !onward {
            problems.push(
                Problem::error(
                    "unreachable-target",
                    s.span.clone(),
                    format!(
                        "path `{}` stops at {to}, but no path leads on from {to}",
                        s.id
                    ),
                )
                .label("a dead end: no target is reachable through it")
                .help(format!(
                    "add a path with `from` containing {to}, or drop `stop`"
                )),
            );
        }
    }
    let next = |e: &PathEdge| -> Vec<usize> {
        let Some(to) = &e.to else { return vec![] };
        stops
            .iter()
            .enumerate()
            .filter(|(_, n)| n.from.contains(to))
            .map(|(i, _)| i)
            .collect()
    };
    // Depth-first search with colours; report each cycle once, at its first edge.
    let mut colour = vec![0u8; stops.len()];
    let mut reported = false;
    for start in 0..stops.len() {
        if colour[start] != 0 || reported {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        let mut trail = vec![start];
        colour[start] = 1;
        while let Some((node, idx)) = stack.pop() {
            let succ = next(stops[node]);
            if idx < succ.len() {
                stack.push((node, idx + 1));
                let n = succ[idx];
                if colour[n] == 1 {
                    let pos = trail.iter().position(|&t| t == n).unwrap_or(0);
                    let names: Vec<&str> = trail[pos..]
                        .iter()
                        .chain(std::iter::once(&n))
                        .map(|&i| stops[i].id.as_str())
                        .collect();
                    problems.push(
                        Problem::error(
                            "path-cycle",
                            stops[n].span.clone(),
                            format!("upgrade paths form a cycle: {}", names.join(" -> ")),
                        )
                        .label("this stop leads back to itself")
                        .help("a stop's `to` must not fall in the `from` of a stop before it"),
                    );
                    reported = true;
                    break;
                }
                if colour[n] == 0 {
                    colour[n] = 1;
                    trail.push(n);
                    stack.push((n, 0));
                }
            } else {
                colour[node] = 2;
                trail.pop();
            }
        }
    }
}
