//! `--limit PATTERN`: which hosts of the inventory a rollout takes, by
//! Ansible's host patterns (ansible-core's `InventoryManager.subset`,
//! `split_host_pattern`, `order_patterns`, `_evaluate_patterns`,
//! `_split_subscript`, `_enumerate_matches`; the guide's "Patterns:
//! targeting hosts and groups").
//!
//! A pattern is terms separated by `,` (or, without a comma, by `:`
//! outside brackets unless the whole is a host address such as
//! `host:22` or an IPv6 address); `@FILE` reads one term a line. Terms
//! are applied unions first, then `&` intersections, then `!`
//! exclusions; with no union term, `all` is the union. A term is a host
//! or group name, a shell wildcard (`web*`, `*.example.com`, `db?`,
//! `[ab]*`), or a regular expression after `~` (matched at the start of
//! the name, as Python's `re.match`); it may end in a subscript of the
//! hosts it matched: `[0]`, `[-1]`, `[1:3]` (both ends included), `[2:]`.
//!
//! Where Ansible only warns, hoist refuses: a term that matches no host
//! nor group (a typo in an exclusion would otherwise upgrade the hosts
//! it meant to leave out), and a pattern that selects no host.

use std::collections::HashSet;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use super::Inventory;

/// Why a `--limit` cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("--limit: `{0}` matches no host and no group of the inventory")]
    NoMatch(String),
    #[error("--limit: no host matched the subscripted pattern `{0}`")]
    Subscript(String),
    #[error("--limit: `{pattern}` is not a valid regular expression: {error}")]
    BadRegex { pattern: String, error: String },
    #[error("--limit: cannot read the limit file {path}: {error}")]
    File { path: String, error: String },
    #[error("--limit `{0}` selects no host of the inventory")]
    Empty(String),
}

/// The places (in `inventory.hosts`) of the hosts `limit` selects, in the
/// order Ansible lists them; never empty.
pub fn select(inventory: &Inventory, limit: &str) -> Result<Vec<usize>, LimitError> {
    let terms = expand(limit)?;
    let hosts = evaluate(inventory, &terms)?;
    if hosts.is_empty() {
        return Err(LimitError::Empty(limit.to_string()));
    }
    Ok(hosts)
}

/// `subset`: the pattern's terms, each `@FILE` replaced by the file's
/// lines (each line one term, not split again), relative to the current
/// directory as Ansible reads it.
pub fn expand(limit: &str) -> Result<Vec<String>, LimitError> {
    let mut out = Vec::new();
    for t in split(limit) {
        match t.strip_prefix('@') {
            Some(file) => {
                let bad = |error: String| LimitError::File {
                    path: file.to_string(),
                    error,
                };
                if Path::new(file).is_dir() {
                    return Err(bad("a directory, not a file".into()));
                }
                let text = std::fs::read_to_string(file).map_err(|e| bad(e.to_string()))?;
                out.extend(text.split('\n').map(|l| l.trim().to_string()));
            }
            None => out.push(t),
        }
    }
    Ok(out)
}

/// `split_host_pattern`: on commas when there is one, else the whole
/// pattern when it is a host address, else on `:` outside brackets and
/// on white space.
pub fn split(pattern: &str) -> Vec<String> {
    static TERM: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?:[^\s:\[\]]|\[[^\]]*\])+").expect("a fixed regex"));
    let parts: Vec<String> = if pattern.contains(',') {
        pattern.split(',').map(str::to_string).collect()
    } else if super::address::is_address(pattern) {
        vec![pattern.to_string()]
    } else {
        TERM.find_iter(pattern)
            .map(|m| m.as_str().to_string())
            .collect()
    };
    parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// `order_patterns` then `_evaluate_patterns`: unions in order, then
/// intersections, then exclusions; `all` when no union is given.
pub fn evaluate(inventory: &Inventory, terms: &[String]) -> Result<Vec<usize>, LimitError> {
    let mut unions = Vec::new();
    let mut ands = Vec::new();
    let mut nots = Vec::new();
    for t in terms.iter().filter(|t| !t.is_empty()) {
        match t.as_bytes()[0] {
            b'!' => nots.push(t.as_str()),
            b'&' => ands.push(t.as_str()),
            _ => unions.push(t.as_str()),
        }
    }
    if unions.is_empty() {
        unions.push("all");
    }
    let mut hosts: Vec<usize> = Vec::new();
    for t in unions.into_iter().chain(ands).chain(nots) {
        // A plain host name is that host, whatever else it would match.
        if let Some(&h) = inventory.index.get(t) {
            if !hosts.contains(&h) {
                hosts.push(h);
            }
            continue;
        }
        let mut that = match_term(inventory, t)?;
        let set: HashSet<usize> = that.iter().copied().collect();
        match t.as_bytes()[0] {
            b'!' => hosts.retain(|h| !set.contains(h)),
            b'&' => hosts.retain(|h| set.contains(h)),
            _ => {
                let had: HashSet<usize> = hosts.iter().copied().collect();
                that.retain(|h| !had.contains(h));
                // A term may list a host twice (two of its groups).
                let mut once = HashSet::new();
                that.retain(|h| once.insert(*h));
                hosts.extend(that);
            }
        }
    }
    Ok(hosts)
}

/// `_match_one_pattern`: a term (its `&`/`!` taken off), its subscript
/// applied.
fn match_term(inventory: &Inventory, term: &str) -> Result<Vec<usize>, LimitError> {
    let p = term.strip_prefix(['&', '!']).unwrap_or(term);
    if p.is_empty() {
        return Err(LimitError::NoMatch(term.to_string()));
    }
    let (expr, sub) = subscript(p);
    let hosts = enumerate(inventory, expr)?;
    let Some((start, end)) = sub else {
        return Ok(hosts);
    };
    let n = hosts.len() as i64;
    match end {
        // `[i]`, and `[i:0]` (Ansible reads an end of 0 as none).
        None | Some(0) => {
            let i = if start < 0 { n + start } else { start };
            if i < 0 || i >= n {
                return Err(LimitError::Subscript(p.to_string()));
            }
            Ok(vec![hosts[i as usize]])
        }
        // Python's slice `hosts[start:end + 1]`: clipped, maybe empty.
        Some(end) => {
            let end = if end == -1 { n - 1 } else { end };
            let from = start.clamp(0, n) as usize;
            let to = (end + 1).clamp(0, n) as usize;
            Ok(hosts
                .get(from..to)
                .map(<[usize]>::to_vec)
                .unwrap_or_default())
        }
    }
}

/// `_split_subscript`: `NAME[i]`, `NAME[a:b]`, `NAME[a:]` (`-1`: to the
/// end); a regex (`~`) has none. `[a-b]` is read as `[a:b]`, as Ansible
/// still does.
fn subscript(p: &str) -> (&str, Option<(i64, Option<i64>)>) {
    static SUB: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?s)^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$").expect("a fixed regex")
    });
    if p.starts_with('~') {
        return (p, None);
    }
    let Some(c) = SUB.captures(p) else {
        return (p, None);
    };
    let expr = c.get(1).map_or(p, |m| m.as_str());
    let num = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<i64>().ok());
    if let Some(i) = num(2) {
        return (expr, Some((i, None)));
    }
    match num(3) {
        Some(start) => (expr, Some((start, Some(num(5).unwrap_or(-1))))),
        // Digits too many for a number: no subscript, as a name.
        None => (p, None),
    }
}

/// `_enumerate_matches`: the hosts of the groups the expression matches
/// (in group order), then, when no group matched or it is a wildcard or
/// a regex, the hosts it matches by name (in inventory order).
fn enumerate(inventory: &Inventory, expr: &str) -> Result<Vec<usize>, LimitError> {
    let matcher = Matcher::new(expr)?;
    let mut out = Vec::new();
    let mut groups = false;
    for (name, hosts) in &inventory.groups {
        if matcher.matches(name) {
            groups = true;
            out.extend(hosts);
        }
    }
    let special = expr.starts_with('~') || expr.contains(['.', '?', '*', '[']);
    if !groups || special {
        for (i, h) in inventory.hosts.iter().enumerate() {
            if matcher.matches(&h.name) {
                out.push(i);
            }
        }
    }
    if out.is_empty() && !groups && expr != "all" {
        return Err(LimitError::NoMatch(expr.to_string()));
    }
    Ok(out)
}

/// A term's test on a name: Python's `fnmatch.translate` (whole name,
/// case-sensitive) or, after `~`, a regular expression matched at the
/// start of the name.
struct Matcher(Regex);

impl Matcher {
    fn new(expr: &str) -> Result<Matcher, LimitError> {
        let source = match expr.strip_prefix('~') {
            Some(re) => format!("^(?:{re})"),
            None => format!("^(?s:{})\\z", translate(expr)),
        };
        Regex::new(&source)
            .map(Matcher)
            .map_err(|e| LimitError::BadRegex {
                pattern: expr.to_string(),
                error: e.to_string().lines().last().unwrap_or_default().to_string(),
            })
    }

    fn matches(&self, name: &str) -> bool {
        self.0.is_match(name)
    }
}

/// `fnmatch.translate`: `*` any text, `?` one character, `[...]` a set
/// (`[!...]` its complement; an unclosed `[` is itself), the rest as is.
fn translate(glob: &str) -> String {
    let chars: Vec<char> = glob.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '[' => {
                // The set runs to the first `]` past a leading `!` and `]`.
                let mut j = i;
                if j < chars.len() && chars[j] == '!' {
                    j += 1;
                }
                if j < chars.len() && chars[j] == ']' {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    out.push_str("\\[");
                    continue;
                }
                let body: String = chars[i..j].iter().collect();
                i = j + 1;
                let (neg, body) = match body.strip_prefix('!') {
                    Some(b) => (true, b.to_string()),
                    None => (false, body),
                };
                // Each character literal within the set, ranges kept.
                let mut set = String::new();
                for ch in body.chars() {
                    match ch {
                        '-' => set.push('-'),
                        '\\' | '[' | ']' | '^' | '&' | '~' => {
                            set.push('\\');
                            set.push(ch);
                        }
                        _ => set.push(ch),
                    }
                }
                out.push('[');
                if neg {
                    out.push('^');
                }
                out.push_str(&set);
                out.push(']');
            }
            _ => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const INV: &str = "\
solo
[web]
web1.example.com
web2.example.com
web3.example.com
[db]
db1
db2
[staging]
web3.example.com
db2
[prod:children]
web
db
";

    fn inv() -> Inventory {
        super::super::load_str(Path::new("hosts.ini"), INV).unwrap()
    }

    fn sel(p: &str) -> Result<Vec<String>, LimitError> {
        let i = inv();
        select(&i, p).map(|hs| hs.iter().map(|&h| i.hosts[h].name.clone()).collect())
    }

    fn names(p: &str) -> String {
        sel(p).unwrap().join(" ")
    }

    #[test]
    fn split_as_ansible() {
        assert_eq!(split("a:b,c"), ["a:b", "c"]);
        assert_eq!(split("web:&db:!x"), ["web", "&db", "!x"]);
        assert_eq!(split("web[0:2]"), ["web[0:2]"]);
        assert_eq!(split("web[1:]:db"), ["web[1:]", "db"]);
        assert_eq!(split("host:22"), ["host:22"]);
        assert_eq!(split("fe80::1"), ["fe80::1"]);
        assert_eq!(split(" a , ,b "), ["a", "b"]);
    }

    #[test]
    fn names_groups_and_all() {
        // `all`'s groups level by level, as `ansible all --list-hosts`.
        let all = "solo web3.example.com db2 web1.example.com web2.example.com db1";
        assert_eq!(names("all"), all);
        assert_eq!(names("*"), names("all"));
        assert_eq!(names("db"), "db1 db2");
        assert_eq!(names("db2,solo"), "db2 solo");
        assert_eq!(
            names("prod"),
            "web1.example.com web2.example.com web3.example.com db1 db2"
        );
        assert_eq!(names("ungrouped"), "solo");
    }

    #[test]
    fn operators_apply_unions_then_intersections_then_exclusions() {
        assert_eq!(names("!staging:web"), "web1.example.com web2.example.com");
        assert_eq!(names("&staging,prod"), "web3.example.com db2");
        let not_db = "solo web3.example.com web1.example.com web2.example.com";
        assert_eq!(names("!db"), not_db);
        assert_eq!(names("web:db:&staging:!db2"), "web3.example.com");
    }

    #[test]
    fn wildcards_and_regexes() {
        assert_eq!(
            names("*.example.com"),
            "web1.example.com web2.example.com web3.example.com"
        );
        assert_eq!(names("db?"), "db1 db2");
        // Groups first (db, staging), then hosts.
        assert_eq!(names("[ds]*"), "db1 db2 web3.example.com solo");
        assert_eq!(
            names("~(web|db)[13]"),
            "web1.example.com web3.example.com db1"
        );
        assert_eq!(names("~db"), "db1 db2");
        // fnmatch is whole-name and case-sensitive.
        assert!(matches!(sel("DB"), Err(LimitError::NoMatch(_))));
        assert!(matches!(sel("~("), Err(LimitError::BadRegex { .. })));
    }

    #[test]
    fn subscripts() {
        assert_eq!(names("web[0]"), "web1.example.com");
        assert_eq!(names("web[-1]"), "web3.example.com");
        assert_eq!(names("web[0:1]"), "web1.example.com web2.example.com");
        assert_eq!(names("web[1:]"), "web2.example.com web3.example.com");
        assert_eq!(names("web[1:9]"), "web2.example.com web3.example.com");
        assert_eq!(names("prod[3]"), "db1");
        assert_eq!(sel("web[3]"), Err(LimitError::Subscript("web[3]".into())));
    }

    #[test]
    fn nothing_matched_is_refused() {
        assert_eq!(sel("webz"), Err(LimitError::NoMatch("webz".into())));
        assert_eq!(sel("web:!typo"), Err(LimitError::NoMatch("typo".into())));
        assert_eq!(sel("web:&db"), Err(LimitError::Empty("web:&db".into())));
        assert_eq!(sel("web[5:9]"), Err(LimitError::Empty("web[5:9]".into())));
    }

    #[test]
    fn a_file_gives_one_term_a_line() {
        let dir = std::env::temp_dir().join(format!("hoist-limit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("hosts.txt");
        std::fs::write(&f, "db1\n\n  web[0]  \n!staging\n").unwrap();
        let got = names(&format!("@{},solo", f.display()));
        assert_eq!(got, "db1 web1.example.com solo");
        let missing = sel(&format!("@{}", dir.join("none").display()));
        assert!(matches!(missing, Err(LimitError::File { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
