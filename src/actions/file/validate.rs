//! What lint finds in a `file` step beyond its types.

use std::ops::Range;

use super::{File, Op, default_separator};
use crate::output::diag::Problem;

pub fn check(f: &File, span: &Range<usize>, problems: &mut Vec<Problem>) {
    let needs: &[(&str, bool)] = match f.op {
        Op::EnsureLine => &[("line", f.line.is_some())],
        Op::Replace => &[
            ("pattern", f.pattern.is_some()),
            ("replacement", f.replacement.is_some()),
        ],
        Op::SetKey => &[("key", f.key.is_some()), ("value", f.value.is_some())],
        Op::MergeNew => &[],
    };
    for (what, ok) in needs {
        if !ok {
            problems.push(
                Problem::error(
                    "missing-key",
                    span.clone(),
                    format!("`file` with this `op` needs `{what}`"),
                )
                .label(format!("add `{what}`")),
            );
        }
    }
    // A key of another op is a mistake the admin would not see: it
    // would be silently ignored.
    let own: &[&str] = match f.op {
        Op::EnsureLine => &["line"],
        Op::Replace => &["pattern", "replacement"],
        Op::SetKey => &["key", "value", "separator", "section"],
        Op::MergeNew => &["base", "package"],
    };
    let given = [
        ("line", f.line.is_some()),
        ("pattern", f.pattern.is_some()),
        ("replacement", f.replacement.is_some()),
        ("key", f.key.is_some()),
        ("value", f.value.is_some()),
        ("separator", f.separator != default_separator()),
        ("section", f.section.is_some()),
        ("base", f.base.is_some()),
        ("package", f.package.is_some()),
    ];
    for (what, set) in given {
        if set && !own.contains(&what) {
            problems.push(
                Problem::error(
                    "unused-key",
                    span.clone(),
                    format!("`{what}` has no meaning for `file` with this `op`"),
                )
                .label("here")
                .help(format!("this `op` takes: {}", own.join(", "))),
            );
        }
    }
    let mut bad = |code: &'static str, message: String| {
        problems.push(Problem::error(code, span.clone(), message).label("here"));
    };
    if f.path.trim().is_empty() {
        bad("empty-value", "`path` is empty".into());
    }
    for (what, v) in [
        ("line", &f.line),
        ("key", &f.key),
        ("value", &f.value),
        ("section", &f.section),
    ] {
        if v.as_ref().is_some_and(|v| v.contains(['\n', '\r'])) {
            bad("bad-value", format!("`{what}` must be one line"));
        }
    }
    if f.op == Op::SetKey {
        if f.separator.is_empty() || f.separator.contains(['\n', '\r']) {
            bad(
                "bad-value",
                "`separator` must be one or more characters on one line".into(),
            );
        }
        if let Some(k) = &f.key
            && (k.trim().is_empty() || k.trim() != k)
        {
            bad(
                "bad-value",
                "`key` must be a name without surrounding spaces".into(),
            );
        }
    }
    if let Some(p) = &f.pattern
        && let Err(e) = regex::Regex::new(p)
    {
        problems.push(
            Problem::error(
                "bad-regex",
                span.clone(),
                format!("`pattern` is not a regex: {e}"),
            )
            .label("here"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Kind;

    fn file(toml_text: &str) -> File {
        toml::from_str(toml_text).unwrap()
    }

    fn codes(f: &File) -> Vec<&'static str> {
        let mut p = Vec::new();
        f.validate(&(0..1), &mut p);
        p.iter().map(|p| p.code).collect()
    }

    #[test]
    fn validation() {
        assert!(codes(&file("op = 'ensure_line'\npath = '/x'\nline = 'a=1'")).is_empty());
        assert_eq!(
            codes(&file("op = 'ensure_line'\npath = '/x'")),
            ["missing-key"]
        );
        assert_eq!(
            codes(&file(
                "op = 'ensure_line'\npath = '/x'\nline = 'a'\nbase = '/b'"
            )),
            ["unused-key"]
        );
        assert_eq!(
            codes(&file(
                "op = 'set_key'\npath = '/x'\nkey = 'a'\nvalue = \"1\\n2\""
            )),
            ["bad-value"]
        );
        assert_eq!(
            codes(&file(
                "op = 'set_key'\npath = '/x'\nkey = 'a'\nvalue = '1'\nseparator = ''"
            )),
            ["bad-value"]
        );
        assert_eq!(
            codes(&file(
                "op = 'replace'\npath = '/x'\npattern = '('\nreplacement = ''"
            )),
            ["bad-regex"]
        );
        assert!(
            codes(&file(
                "op = 'merge_new'\npath = '/x'\nbase = 'old.deb'\npackage = 'p'"
            ))
            .is_empty()
        );
        assert_eq!(codes(&file("op = 'merge_new'\npath = ''")), ["empty-value"]);
        assert!(
            codes(&file(
                "op = 'set_key'\npath = '/x'\nkey = 'a'\nvalue = '1'\nsection = 's'"
            ))
            .is_empty()
        );
        assert_eq!(
            codes(&file(
                "op = 'replace'\npath = '/x'\npattern = 'a'\nreplacement = 'b'\nsection = 's'"
            )),
            ["unused-key"]
        );
    }
}
