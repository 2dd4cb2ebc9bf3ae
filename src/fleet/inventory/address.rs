//! Host patterns as Ansible reads them (`parse_address` and
//! `expand_hostname_range` of ansible-core): an optional `:port`
//! (`host:2222`, `[2001:db8::2]:2222`), then ranges (`web[01:10]`,
//! `db-[a:c]`, `[1:9:2]`).
//!
//! The regular expressions are Ansible's own, translated: `^` and `$` sit
//! where Ansible put them (inside the IPv6 alternation: most of its
//! branches only need to match a prefix, and hoist matches as Ansible
//! does). Non-ASCII patterns with a port or a range are refused:
//! Python's `\w` and Rust's differ there.

use std::sync::LazyLock;

use regex::Regex;

const NUMERIC_RANGE: &str = r"\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]";
const HEX_RANGE: &str = r"\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\]";
const ALNUM_RANGE: &str = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]";

struct Patterns {
    bracketed_hostport: Regex,
    hostport: Regex,
    ipv4: Regex,
    ipv6: Regex,
    hostname: Regex,
}

static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| {
    let i6 = format!("(?:[0-9a-f]{{1,4}}|{HEX_RANGE})");
    let i4 = format!("(?:[01]?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5]|{NUMERIC_RANGE})");
    let ipv6 = [
        format!("^(?:{i6}:){{7}}{i6}"),
        format!("(?:{i6}:){{1,6}}:"),
        format!("(?:{i6}:)(?::{i6}){{1,6}}"),
        format!("(?:{i6}:){{2}}(?::{i6}){{1,5}}"),
        format!("(?:{i6}:){{3}}(?::{i6}){{1,4}}"),
        format!("(?:{i6}:){{4}}(?::{i6}){{1,3}}"),
        format!("(?:{i6}:){{5}}(?::{i6}){{1,2}}"),
        format!("(?:{i6}:){{6}}(?::{i6})"),
        format!(":(?::{i6}){{1,6}}"),
        format!("{i6}?::"),
        format!("(?:0:){{6}}(?:{i6}\\.){{3}}{i6}"),
        format!("::(?:ffff:)?(?:{i6}\\.){{3}}{i6}"),
        format!("(?:0:){{5}}ffff:(?:{i6}\\.){{3}}{i6}$"),
    ]
    .join("|");
    // Ansible's label ends with a lookbehind `(?<![_-])`; the same
    // language without it: the last unit is a letter, a digit or a range.
    let unit = format!("(?:[a-z0-9_-]|{ALNUM_RANGE})");
    let first = format!("(?:[a-z0-9_]|{ALNUM_RANGE})");
    let last = format!("(?:[a-z0-9]|{ALNUM_RANGE})");
    let label = format!("(?:{last}|{first}{unit}*{last})");
    let re = |s: &str| Regex::new(&format!("(?i){s}")).expect("a fixed regular expression");
    Patterns {
        bracketed_hostport: re(r"^\[(.+)\]:([0-9]+)$"),
        hostport: re(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$"),
        ipv4: re(&format!(r"^(?:{i4}\.){{3}}{i4}$")),
        ipv6: re(&ipv6),
        hostname: re(&format!(r"^{label}(?:\.{label})*$")),
    }
});

/// Python's `re.match`: a match starting at the beginning.
fn matches_at_start(re: &Regex, s: &str) -> bool {
    re.find(s).is_some_and(|m| m.start() == 0)
}

/// `parse_address(pattern, allow_ranges=True)` as `_expand_hostpattern`
/// uses it: the pattern and its port; on failure the whole text and no
/// port.
fn split_port(pattern: &str) -> (String, Option<u64>) {
    let p = &*PATTERNS;
    let mut address = pattern.to_string();
    let mut port = None;
    // Both are tried in turn, the second on what the first left.
    for re in [&p.bracketed_hostport, &p.hostport] {
        if let Some(c) = re.captures(&address) {
            let host = c[1].to_string();
            // Digits only; a port too long to be a number is refused later.
            port = Some(c[2].parse::<u64>().unwrap_or(u64::MAX));
            address = host;
        }
    }
    if is_host(&address) {
        (address, port)
    } else {
        (pattern.to_string(), None)
    }
}

/// An IPv4 or IPv6 address or a host name, ranges allowed.
fn is_host(address: &str) -> bool {
    let p = &*PATTERNS;
    [&p.ipv4, &p.ipv6, &p.hostname]
        .iter()
        .any(|re| matches_at_start(re, address))
}

/// Whether `parse_address(pattern, allow_ranges=True)` accepts the text:
/// a host pattern with an optional port (`split_host_pattern` keeps such
/// a pattern whole, its `:` not a separator).
pub fn is_address(pattern: &str) -> bool {
    let (host, _) = split_port(pattern);
    is_host(&host)
}

/// A host pattern: its host names (ranges expanded) and its port.
pub fn expand_hostpattern(pattern: &str) -> Result<(Vec<String>, Option<u16>), String> {
    // Without `:` there is no port, and without `[` no range: the name is
    // the pattern whether Ansible finds it a valid address or not.
    if !pattern.contains([':', '[']) {
        return Ok((vec![pattern.to_string()], None));
    }
    if pattern.contains('|') {
        return Err(format!(
            "`{pattern}`: `|` is not allowed in a host name with a port or a range"
        ));
    }
    if !pattern.is_ascii() {
        return Err(format!(
            "`{pattern}`: a port or a range in a non-ASCII host name (Python's rules for those differ from hoist's)"
        ));
    }
    let (host, port) = split_port(pattern);
    let port = match port {
        None => None,
        Some(p) => match u16::try_from(p) {
            Ok(p) => Some(p),
            Err(_) => return Err(format!("`{pattern}`: port {p} is beyond 65535")),
        },
    };
    let names = if host.contains('[') {
        expand_range(&host)?
    } else {
        vec![host]
    };
    Ok((names, port))
}

/// `expand_hostname_range`: the first `[begin:end(:step)]`, then the rest
/// recursively. Numeric bounds with a leading zero keep their width
/// (both bounds must then have it); letters range over `a-zA-Z` in that
/// order; `begin > end` gives no host at all, as in Ansible.
pub fn expand_range(line: &str) -> Result<Vec<String>, String> {
    let bad = |why: &str| Err(format!("`{line}`: {why}"));
    let Some(open) = line.find('[') else {
        return Ok(vec![line.to_string()]);
    };
    let Some(close) = line.find(']') else {
        return bad("a range lacks its `]`");
    };
    if close < open || line[close + 1..].find(']') < line[close + 1..].find('[') {
        return bad("brackets do not pair");
    }
    let (head, range, tail) = (&line[..open], &line[open + 1..close], &line[close + 1..]);
    let bounds: Vec<&str> = range.split(':').collect();
    let (beg, end, step) = match bounds.as_slice() {
        [b, e] => (*b, *e, "1"),
        [b, e, s] => (*b, *e, *s),
        _ => return bad("a host range is begin:end or begin:end:step"),
    };
    let beg = if beg.is_empty() { "0" } else { beg };
    if end.is_empty() {
        return bad("a host range must have an end");
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(step) || step.len() > 9 {
        return bad("a range's step is a number");
    }
    let step: usize = step.parse().unwrap_or(0);
    if step == 0 {
        return bad("a range's step must not be 0");
    }
    let width = if beg.starts_with('0') && beg.len() > 1 {
        if beg.len() != end.len() {
            return bad("the bounds of a zero-padded range must have the same width");
        }
        beg.len()
    } else {
        0
    };
    const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let items: Vec<String> = match (LETTERS.find(beg), LETTERS.find(end)) {
        (Some(b), Some(e)) if beg.len() == 1 && end.len() == 1 => {
            if b > e {
                return bad("a host range must have begin <= end");
            }
            LETTERS[b..=e]
                .chars()
                .step_by(step)
                .map(|c| format!("{c:0>width$}"))
                .collect()
        }
        _ if digits(beg) && digits(end) && beg.len() <= 9 && end.len() <= 9 => {
            let (b, e): (usize, usize) = (beg.parse().unwrap_or(0), end.parse().unwrap_or(0));
            if e.saturating_sub(b) / step > 1_000_000 {
                return bad("a range of more than a million hosts");
            }
            (b..=e)
                .step_by(step)
                .map(|n| format!("{n:0width$}"))
                .collect()
        }
        _ => return bad("a range is numeric (01:10) or one letter to another (a:f)"),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let name = format!("{head}{item}{tail}");
        if name.contains('[') {
            out.extend(expand_range(&name)?);
        } else {
            out.push(name);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(p: &str) -> (Vec<String>, Option<u16>) {
        expand_hostpattern(p).unwrap()
    }

    #[test]
    fn ports_and_ipv6() {
        assert_eq!(ex("host1:2222"), (vec!["host1".into()], Some(2222)));
        assert_eq!(
            ex("[2001:db8::2]:2222"),
            (vec!["2001:db8::2".into()], Some(2222))
        );
        assert_eq!(ex("2001:db8::2"), (vec!["2001:db8::2".into()], None));
        assert_eq!(ex("10.0.0.1:22"), (vec!["10.0.0.1".into()], Some(22)));
        // Not an address: the whole text is the name.
        assert_eq!(ex("we!rd:22"), (vec!["we!rd:22".into()], None));
        assert_eq!(ex("web[1:2]:22").1, Some(22));
    }

    #[test]
    fn ranges() {
        assert_eq!(ex("web[01:03]").0, ["web01", "web02", "web03"]);
        assert_eq!(ex("db-[a:c].lan").0, ["db-a.lan", "db-b.lan", "db-c.lan"]);
        assert_eq!(ex("h[1:5:2]").0, ["h1", "h3", "h5"]);
        assert_eq!(ex("h[1:2]-[a:b]").0, ["h1-a", "h1-b", "h2-a", "h2-b"]);
        assert!(ex("h[5:1]").0.is_empty());
        assert!(expand_hostpattern("h[1:").is_err());
        assert!(expand_hostpattern("h[01:100]").is_err());
    }
}
