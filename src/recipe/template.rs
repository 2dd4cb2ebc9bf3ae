//! `{{ fact }}` in the strings of an action, resolved when the plan is made,
//! so the plan (and its hash) shows the command that will really run
//! (`pg_upgradecluster {{ postgresql.old }} main`, a sources line naming
//! `{{ os.codename }}`). A `{{` that does not open `{{ name }}` is left as
//! it is, so shell code is not disturbed.

use std::ops::Range;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Every `{{ name }}` in `text`: the name and the placeholder's byte range.
pub fn placeholders(text: &str) -> Vec<(String, Range<usize>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = text[at..].find("{{") {
        let start = at + i;
        let rest = &text[start + 2..];
        let Some(end) = rest.find("}}") else { break };
        let name = rest[..end].trim();
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if valid {
            out.push((name.to_string(), start..start + 2 + end + 2));
            at = start + 2 + end + 2;
        } else {
            at = start + 2;
        }
    }
    out
}

/// `text` with each placeholder replaced; `Err` names a fact with no value.
pub fn render(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (name, range) in placeholders(text) {
        out.push_str(&text[last..range.start]);
        out.push_str(&lookup(&name).ok_or(name)?);
        last = range.end;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// Every string inside a serialisable value (an action's parameters).
pub fn strings<T: Serialize>(value: &T) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::to_value(value) {
        walk(&v, &mut out);
    }
    out
}

/// `value` with every placeholder in its strings resolved. `Err` names a
/// fact with no value.
pub fn resolve<T: Serialize + DeserializeOwned + Clone>(
    value: &T,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<T, String> {
    fn walk(
        v: &mut serde_json::Value,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<bool, String> {
        Ok(match v {
            serde_json::Value::String(s) => {
                let r = render(s, lookup)?;
                let changed = r != *s;
                *s = r;
                changed
            }
            serde_json::Value::Array(a) => {
                let mut changed = false;
                for x in a {
                    changed |= walk(x, lookup)?;
                }
                changed
            }
            serde_json::Value::Object(o) => {
                let mut changed = false;
                for x in o.values_mut() {
                    changed |= walk(x, lookup)?;
                }
                changed
            }
            _ => false,
        })
    }
    let Ok(mut v) = serde_json::to_value(value) else {
        return Ok(value.clone());
    };
    if !walk(&mut v, lookup)? {
        return Ok(value.clone());
    }
    serde_json::from_value(v).map_err(|e| format!("after substitution: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_fills_placeholders_and_leaves_other_braces() {
        let t = "pg_upgradecluster {{ postgresql.old }} main; awk '{{print $1}}' {{os.codename}}";
        let names: Vec<String> = placeholders(t).into_iter().map(|p| p.0).collect();
        assert_eq!(names, ["postgresql.old", "os.codename"]);
        let lookup = |n: &str| match n {
            "postgresql.old" => Some("13".to_string()),
            "os.codename" => Some("bullseye".to_string()),
            _ => None,
        };
        assert_eq!(
            render(t, &lookup).unwrap(),
            "pg_upgradecluster 13 main; awk '{{print $1}}' bullseye"
        );
        assert_eq!(render("{{ nope }}", &lookup).unwrap_err(), "nope");
        assert_eq!(render("no braces", &lookup).unwrap(), "no braces");
    }
}
