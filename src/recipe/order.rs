//! Service order from `after` relations: start in this order, stop in
//! reverse (seed 001: "all XiVO services are restarted in the right order").

use std::collections::BTreeMap;

use crate::recipe::ServiceSpec;

/// A topological order of the services (declaration order among equals), or
/// the services of a cycle.
pub fn service_order(services: &[ServiceSpec]) -> Result<Vec<String>, Vec<String>> {
    let index: BTreeMap<&str, usize> = services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let deps: Vec<Vec<usize>> = services
        .iter()
        .map(|s| {
            s.after
                .iter()
                .filter_map(|a| index.get(a.as_str()).copied())
                .collect()
        })
        .collect();
    let mut state = vec![0u8; services.len()];
    let mut out = Vec::new();
    fn visit(
        n: usize,
        deps: &[Vec<usize>],
        state: &mut [u8],
        out: &mut Vec<usize>,
        trail: &mut Vec<usize>,
    ) -> Result<(), Vec<usize>> {
        match state[n] {
            2 => return Ok(()),
            1 => {
                let pos = trail.iter().position(|&t| t == n).unwrap_or(0);
                let mut cycle = trail[pos..].to_vec();
                cycle.push(n);
                return Err(cycle);
            }
            _ => {}
        }
        state[n] = 1;
        trail.push(n);
        for &d in &deps[n] {
            visit(d, deps, state, out, trail)?;
        }
        trail.pop();
        state[n] = 2;
        out.push(n);
        Ok(())
    }
    for n in 0..services.len() {
        visit(n, &deps, &mut state, &mut out, &mut Vec::new()).map_err(|c| {
            c.into_iter()
                .map(|i| services[i].name.clone())
                .collect::<Vec<_>>()
        })?;
    }
    Ok(out.into_iter().map(|i| services[i].name.clone()).collect())
}

/// `units` sorted for `op`: starts follow the service order, stops reverse
/// it. Units not declared in `[[services]]` keep their place at the end.
pub fn sort_units(services: &[ServiceSpec], units: &[String], stopping: bool) -> Vec<String> {
    let order = service_order(services).unwrap_or_default();
    let rank = |u: &String| order.iter().position(|o| o == u).unwrap_or(usize::MAX);
    let mut sorted: Vec<String> = units.to_vec();
    sorted.sort_by_key(rank);
    if stopping {
        let known = sorted.iter().take_while(|u| rank(u) != usize::MAX).count();
        sorted[..known].reverse();
    }
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::Backend;

    fn svc(name: &str, after: &[&str]) -> ServiceSpec {
        ServiceSpec {
            name: name.into(),
            after: after.iter().map(|s| s.to_string()).collect(),
            backend: Backend::Systemd,
            start: None,
            stop: None,
            status: None,
        }
    }

    #[test]
    fn orders_by_after_and_finds_cycles() {
        let s = vec![svc("web", &["app"]), svc("app", &["db"]), svc("db", &[])];
        assert_eq!(service_order(&s).unwrap(), ["db", "app", "web"]);
        let units: Vec<String> = ["web", "db", "app"].map(String::from).to_vec();
        assert_eq!(sort_units(&s, &units, false), ["db", "app", "web"]);
        assert_eq!(sort_units(&s, &units, true), ["web", "app", "db"]);
        let c = vec![svc("a", &["b"]), svc("b", &["a"])];
        assert_eq!(service_order(&c).unwrap_err(), ["a", "b", "a"]);
    }
}
