//! Properties of version ordering and of path finding.

use std::path::Path;

use hoist::recipe::PathEdge;
use hoist::recipe::route::{Route, route};
use hoist::version::{Range, Version};
use proptest::prelude::*;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

/// Dotted numeric versions: `1.2.10`, `0.7`.
fn dotted() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(0u32..40, 1..4)
}

fn text(parts: &[u32]) -> String {
    parts
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

proptest! {
    /// Debian's order on plain dotted versions is the numeric order of
    /// their parts (padded with zeros: `1.2` < `1.2.0` breaks the tie, as
    /// the shorter one sorts first).
    #[test]
    fn dotted_versions_order_numerically(a in dotted(), b in dotted()) {
        let (va, vb) = (v(&text(&a)), v(&text(&b)));
        let n = a.len().max(b.len());
        let pad = |x: &[u32]| { let mut x = x.to_vec(); x.resize(n, 0); x };
        let expected = pad(&a).cmp(&pad(&b)).then(a.len().cmp(&b.len()));
        prop_assert_eq!(va.cmp(&vb), expected, "{} vs {}", va, vb);
    }

    /// An epoch beats anything without one.
    #[test]
    fn epoch_wins(a in dotted(), b in dotted(), e in 1u32..5) {
        let with_epoch = v(&format!("{e}:{}", text(&a)));
        prop_assert!(with_epoch > v(&text(&b)));
    }

    /// A tilde sorts before the release.
    #[test]
    fn tilde_sorts_first(a in dotted()) {
        let rc = v(&format!("{}~rc1", text(&a)));
        prop_assert!(rc < v(&text(&a)));
    }

    /// Ordering is a total order: antisymmetric and transitive.
    #[test]
    fn total_order(a in dotted(), b in dotted(), c in dotted()) {
        let (a, b, c) = (v(&text(&a)), v(&text(&b)), v(&text(&c)));
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        if a <= b && b <= c { prop_assert!(a <= c); }
    }

    /// `>= lo, < hi` holds exactly for lo <= x < hi.
    #[test]
    fn ranges_agree_with_comparisons(lo in dotted(), hi in dotted(), x in dotted()) {
        let (l, h, xv) = (v(&text(&lo)), v(&text(&hi)), v(&text(&x)));
        let r = Range::parse(&format!(">= {l}, < {h}")).unwrap();
        prop_assert_eq!(r.contains(&xv), l <= xv && xv < h);
        // The empty-range check is exact for such ranges.
        prop_assert_eq!(r.witness().is_some(), l < h);
    }

    /// A series holds its releases and nothing else.
    #[test]
    fn series_membership(s in dotted(), tail in dotted(), other in dotted()) {
        let series = text(&s);
        let r = Range::parse(&format!("{series}.*")).unwrap();
        prop_assert!(r.contains(&v(&series)));
        let release = v(&format!("{series}.{}", text(&tail)));
        prop_assert!(r.contains(&release));
        let o = text(&other);
        let prefix = format!("{series}.");
        if !(o == series || o.starts_with(&prefix)) {
            prop_assert!(!r.contains(&v(&o)));
        }
    }
}

fn edge(id: String, from: &str, to: &str, stop: bool) -> PathEdge {
    PathEdge {
        atomic_with_next: false,
        id,
        from: Range::parse(from).unwrap(),
        to: Some(v(to)),
        stop,
        unsupported: None,
        span: 0..0,
        from_span: 0..0,
    }
}

/// A chain of release lines 1..=n; each line may be a required stop (its
/// sources must go to `k.9` first) or go straight to the final target.
fn graph(n: u32, stops: &[bool]) -> Vec<PathEdge> {
    let mut edges = Vec::new();
    for k in 1..=n {
        if stops[k as usize - 1] {
            edges.push(edge(
                format!("to-{k}.9"),
                &format!(">= {k}.0, < {k}.9"),
                &format!("{k}.9"),
                true,
            ));
        } else {
            edges.push(edge(format!("line-{k}"), &format!("{k}.*"), "100", false));
        }
    }
    edges
}

/// Reference: breadth-first over every version that appears as a stop.
fn brute_force_len(edges: &[PathEdge], current: &Version, target: &Version) -> Option<usize> {
    let mut frontier = vec![current.clone()];
    for depth in 1..=edges.len() + 1 {
        let mut next = Vec::new();
        for at in &frontier {
            for e in edges.iter().filter(|e| e.from.contains(at)) {
                let to = e.to.as_ref().unwrap();
                if target.in_series(to) {
                    return Some(depth);
                }
                if e.stop && to > at {
                    next.push(to.clone());
                }
            }
        }
        if next.is_empty() {
            return None;
        }
        frontier = next;
    }
    None
}

proptest! {
    #[test]
    fn routes_are_valid_chains_and_shortest(
        n in 1u32..8,
        stops in prop::collection::vec(any::<bool>(), 8),
        start_line in 1u32..8,
        minor in 0u32..9,
    ) {
        let edges = graph(n, &stops);
        let current = v(&format!("{}.{minor}", start_line.min(n)));
        let target = v("100");
        match route(&edges, &current, &target) {
            Ok(Route::Hops(hops)) => {
                prop_assert_eq!(&hops[0].from, &current);
                prop_assert_eq!(&hops.last().unwrap().to, &target);
                for pair in hops.windows(2) {
                    prop_assert_eq!(&pair[0].to, &pair[1].from);
                }
                for h in &hops {
                    let e = edges.iter().find(|e| e.id == h.path).unwrap();
                    let inside = e.from.contains(&h.from);
                    prop_assert!(inside, "{} not in {}", h.from, e.from);
                    prop_assert!(h.to > h.from);
                }
                prop_assert_eq!(Some(hops.len()), brute_force_len(&edges, &current, &target));
            }
            Ok(Route::UpToDate) => prop_assert!(current >= target),
            Err(_) => prop_assert_eq!(brute_force_len(&edges, &current, &target), None),
        }
    }
}

#[test]
fn required_stop_is_taken_first() {
    let edges = vec![
        edge("to-2.2.14".into(), ">= 2.2.0, < 2.2.14", "2.2.14", true),
        edge("from-2.2.14".into(), "2.2.14", "4.3", false),
    ];
    let Ok(Route::Hops(h)) = route(&edges, &v("2.2.5"), &v("4.3.2")) else {
        panic!("no route")
    };
    let stops: Vec<String> = h.iter().map(|h| h.to.to_string()).collect();
    assert_eq!(stops, ["2.2.14", "4.3.2"]);
    let _ = Path::new("");
}

#[test]
fn a_required_stop_can_be_the_target() {
    // A stop is a supported version: the admin may go there and no
    // further (`--to 2.2.14`), without a path of its own for it.
    let edges = vec![
        edge("to-2.2.14".into(), ">= 2.2.0, < 2.2.14", "2.2.14", true),
        edge("from-2.2.14".into(), "2.2.14", "4.3", false),
    ];
    let Ok(Route::Hops(h)) = route(&edges, &v("2.2.5"), &v("2.2.14")) else {
        panic!("no route to the stop")
    };
    assert_eq!(h.len(), 1);
    assert_eq!(
        (h[0].path.as_str(), h[0].to.to_string()),
        ("to-2.2.14", "2.2.14".into())
    );
    // Past the stop, not on the way: still no route.
    assert!(route(&edges, &v("2.2.5"), &v("2.2.20")).is_err());
}
