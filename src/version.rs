//! Versions and version ranges.
//!
//! Ordering follows Debian's rules (policy 5.6.12) through the `debversion`
//! crate, so `1.2.10 > 1.2.9` and `1:2.0 > 3.0`. Ranges are what a maintainer
//! writes in `paths.from` and in `when` conditions over version facts:
//!
//! * `2.2.14` — exactly that version;
//! * `4.2.*` — a release series: `4.2` itself or anything that starts `4.2.`,
//!   `4.2-` or `4.2~` (so `4.2.1`, `4.2-1` and `4.2~rc1`);
//! * `>= 2.2.0, < 2.2.14` — comparators joined by commas, all must hold
//!   (`=`, `!=`, `>`, `>=`, `<`, `<=`);
//! * `*` — any version.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A package or product version, compared with Debian's rules.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    text: String,
    parsed: debversion::Version,
}

/// Why a version or range could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct VersionError {
    pub message: String,
    /// Byte range inside the text that was parsed.
    pub offset: std::ops::Range<usize>,
}

impl Version {
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let trimmed = text.trim();
        let bad = |why: &str| VersionError {
            message: format!("`{trimmed}` is not a version: {why}"),
            offset: 0..text.len(),
        };
        if trimmed.is_empty() {
            return Err(bad("it is empty"));
        }
        if !trimmed.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(bad("a version starts with a digit"));
        }
        let parsed = debversion::Version::from_str(trimmed).map_err(|e| bad(&e.to_string()))?;
        Ok(Version {
            text: trimmed.to_string(),
            parsed,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when `self` is `series` or a release of it (`4.3.2` in `4.3`).
    pub fn in_series(&self, series: &Version) -> bool {
        let (v, s) = (self.text.as_str(), series.text.as_str());
        v == s
            || (v.len() > s.len()
                && v.starts_with(s)
                && matches!(v.as_bytes()[s.len()], b'.' | b'-' | b'~' | b'+'))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parsed.cmp(&other.parsed)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Version::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn holds(self, ord: Ordering) -> bool {
        match self {
            Op::Eq => ord == Ordering::Equal,
            Op::Ne => ord != Ordering::Equal,
            Op::Gt => ord == Ordering::Greater,
            Op::Ge => ord != Ordering::Less,
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }
}

/// One term of a range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Term {
    Any,
    Series(Version),
    Cmp(Op, Version),
}

/// A set of versions, as written by a maintainer (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    text: String,
    terms: Vec<Term>,
}

impl Range {
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let mut terms = Vec::new();
        let mut start = 0;
        for part in text.split(',') {
            let lead = part.len() - part.trim_start().len();
            let at = start + lead..start + lead + part.trim().len();
            start += part.len() + 1;
            let term = part.trim();
            let err = |message: String| VersionError {
                message,
                offset: at.clone(),
            };
            if term.is_empty() {
                return Err(err(
                    "empty term in version range (expected e.g. `>= 1.2, < 2.0`)".into(),
                ));
            }
            if term == "*" {
                terms.push(Term::Any);
                continue;
            }
            let (op, rest) = split_op(term);
            if rest.is_empty() {
                return Err(err(format!("`{term}` must be followed by a version")));
            }
            if let Some(series) = rest.strip_suffix(".*") {
                if op.is_some() {
                    return Err(err(format!(
                        "`{term}`: a series (`X.Y.*`) takes no comparator"
                    )));
                }
                let v = Version::parse(series).map_err(|e| err(e.message))?;
                terms.push(Term::Series(v));
                continue;
            }
            if rest.contains('*') {
                return Err(err(format!(
                    "`{term}`: `*` is only allowed alone or as a final `.*`"
                )));
            }
            let v = Version::parse(rest).map_err(|e| err(e.message))?;
            terms.push(Term::Cmp(op.unwrap_or(Op::Eq), v));
        }
        Ok(Range {
            text: text.trim().to_string(),
            terms,
        })
    }

    pub fn contains(&self, v: &Version) -> bool {
        self.terms.iter().all(|t| match t {
            Term::Any => true,
            Term::Series(s) => v.in_series(s),
            Term::Cmp(op, bound) => op.holds(v.cmp(bound)),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// A version known to lie in the range, if there is one: used by lint
    /// to tell an empty range (`>= 3, < 2`) from a real one. An intersection
    /// of intervals, if not empty, holds a point at or just beside one of its
    /// bounds, so those points (and `0`) are the candidates.
    pub fn witness(&self) -> Option<Version> {
        let mut candidates = vec!["0".to_string()];
        for t in &self.terms {
            if let Term::Series(v) | Term::Cmp(_, v) = t {
                candidates.extend([v.to_string(), format!("{v}~"), format!("{v}+0")]);
            }
        }
        candidates
            .iter()
            .filter_map(|c| Version::parse(c).ok())
            .find(|c| self.contains(c))
    }
}

fn split_op(term: &str) -> (Option<Op>, &str) {
    for (sym, op) in [
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("!=", Op::Ne),
        ("==", Op::Eq),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("=", Op::Eq),
    ] {
        if let Some(rest) = term.strip_prefix(sym) {
            return (Some(op), rest.trim());
        }
    }
    (None, term)
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .terms
            .iter()
            .map(|t| match t {
                Term::Any => "*".to_string(),
                Term::Series(v) => format!("{v}.*"),
                Term::Cmp(op, v) => format!("{} {v}", op.symbol()),
            })
            .collect();
        f.write_str(&parts.join(", "))
    }
}

impl Serialize for Range {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn debian_ordering() {
        assert!(v("1.2.10") > v("1.2.9"));
        assert!(v("1:2.0") > v("3.0"));
        assert!(v("1.0~rc1") < v("1.0"));
        assert!(v("2.2.14") > v("2.2.2"));
    }

    #[test]
    fn series_membership() {
        let s = v("4.2");
        assert!(v("4.2").in_series(&s));
        assert!(v("4.2.1").in_series(&s));
        assert!(v("4.2~rc1").in_series(&s));
        assert!(!v("4.20").in_series(&s));
        assert!(!v("4.3.0").in_series(&s));
    }

    #[test]
    fn ranges() {
        let r = Range::parse(">= 2.2.0, < 2.2.14").unwrap();
        assert!(r.contains(&v("2.2.0")));
        assert!(r.contains(&v("2.2.13")));
        assert!(!r.contains(&v("2.2.14")));
        assert!(!r.contains(&v("2.1.9")));
        assert!(Range::parse("4.2.*").unwrap().contains(&v("4.2.1")));
        assert!(Range::parse("*").unwrap().contains(&v("0.1")));
        assert!(Range::parse("2.2.14").unwrap().contains(&v("2.2.14")));
    }

    #[test]
    fn bad_ranges_point_at_the_term() {
        let e = Range::parse(">= 1.0, <").unwrap_err();
        assert_eq!(e.offset, 8..9);
        let e = Range::parse("1.*.2").unwrap_err();
        assert_eq!(e.offset, 0..5);
        assert!(Range::parse(">= 1.0,, < 2").is_err());
    }

    #[test]
    fn witness_finds_members_and_rejects_empty_ranges() {
        assert!(Range::parse(">= 3, < 2").unwrap().witness().is_none());
        assert!(Range::parse("< 1.2").unwrap().witness().is_some());
        assert!(Range::parse("> 1.2, < 1.2.0").unwrap().witness().is_some());
        assert!(Range::parse("> 2, <= 2").unwrap().witness().is_none());
        let w = Range::parse("> 2.2, < 2.3").unwrap().witness().unwrap();
        assert!(Range::parse("> 2.2, < 2.3").unwrap().contains(&w));
    }
}
