//! The pure text edits: what the file becomes, from what it is now. No I/O,
//! so the plan's preview and the run compute exactly the same bytes.

/// `text` with `line` present: unchanged when a line equals it (a trailing
/// `\r` aside), else `line` appended on a line of its own.
pub fn ensure_line(text: &str, line: &str) -> String {
    if text.lines().any(|l| l.trim_end_matches('\r') == line) {
        return text.to_string();
    }
    let nl = newline(text);
    let mut out = String::with_capacity(text.len() + line.len() + 2);
    out.push_str(text);
    if !text.is_empty() && !text.ends_with('\n') {
        out.push_str(nl);
    }
    out.push_str(line);
    out.push_str(nl);
    out
}

/// The file's own line ending, for what is appended to it.
fn newline(text: &str) -> &'static str {
    if text.contains("\r\n") { "\r\n" } else { "\n" }
}

/// Every match of `re` replaced by `replacement` (`$1` refers to a group).
pub fn replace(text: &str, re: &regex::Regex, replacement: &str) -> String {
    re.replace_all(text, replacement).into_owned()
}

/// Where the value starts on a `key<separator>value` line, when `line`
/// sets `key`. Comment lines (`#`, `;`, `!`) set nothing.
fn value_start(line: &str, key: &str, separator: &str) -> Option<usize> {
    let indent = line.len() - line.trim_start().len();
    let rest = line[indent..].strip_prefix(key)?;
    let sep = separator.trim();
    let after_key = line.len() - rest.len();
    let spaces = rest.len() - rest.trim_start().len();
    if sep.is_empty() {
        // A whitespace separator (`Port 22`): the key must end there.
        if spaces == 0 && !rest.is_empty() && !rest.starts_with(['\r', '\n']) {
            return None;
        }
        return Some(after_key + spaces);
    }
    let after_sep = rest.trim_start().strip_prefix(sep)?;
    let value = after_sep.trim_start();
    Some(line.len() - value.len())
}

/// `text` with `key` set to `value` on every line that sets it (so whichever
/// occurrence a reader takes, it gets `value`), keeping the line's own
/// spacing around the separator, every comment and the order; when no line
/// sets it, `key<separator>value` is appended.
pub fn set_key(text: &str, key: &str, separator: &str, value: &str) -> String {
    let mut out = String::with_capacity(text.len() + key.len() + value.len() + 4);
    let mut found = false;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        match value_start(body, key, separator) {
            Some(at) => {
                found = true;
                out.push_str(&body[..at]);
                out.push_str(value);
                out.push_str(ending);
            }
            None => out.push_str(line),
        }
    }
    if !found {
        let nl = newline(text);
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(nl);
        }
        out.push_str(key);
        out.push_str(separator);
        out.push_str(value);
        out.push_str(nl);
    }
    out
}

/// A unified diff of `before` -> `after`, both named `path`; empty when
/// they are equal.
pub fn unified(path: &str, before: &str, after: &str) -> String {
    if before == after {
        return String::new();
    }
    diffy::DiffOptions::new()
        .set_original_filename(path.to_string())
        .set_modified_filename(path.to_string())
        .create_patch(before, after)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_line_appends_once() {
        // Seed 003: "Verify that the file environment.properties has a line
        // that reads: paths.script=/usr/share/cloudstack-common. If not,
        // add the line."
        let line = "paths.script=/usr/share/cloudstack-common";
        let once = ensure_line("a=1", line);
        assert_eq!(once, format!("a=1\n{line}\n"));
        assert_eq!(ensure_line(&once, line), once);
        assert_eq!(ensure_line("", line), format!("{line}\n"));
        let crlf = format!("a=1\r\n{line}\r\n");
        assert_eq!(ensure_line(&crlf, line), crlf);
        // Appended with the file's own line ending.
        assert_eq!(ensure_line("a=1\r\n", "b=2"), "a=1\r\nb=2\r\n");
        // A commented-out copy is not the line.
        assert_eq!(
            ensure_line(&format!("#{line}\n"), line),
            format!("#{line}\n{line}\n")
        );
    }

    #[test]
    fn replace_renames_the_agent_class() {
        // Seed 003: the agent.properties resource class moved.
        let re = regex::Regex::new(
            r"com\.cloud\.agent\.resource\.computing\.LibvirtComputingResource",
        )
        .unwrap();
        let text = "# agent\nresource=com.cloud.agent.resource.computing.LibvirtComputingResource\n";
        let out = replace(text, &re, "com.cloud.hypervisor.kvm.resource.LibvirtComputingResource");
        assert_eq!(
            out,
            "# agent\nresource=com.cloud.hypervisor.kvm.resource.LibvirtComputingResource\n"
        );
        assert_eq!(replace(&out, &re, "x"), out);
    }

    #[test]
    fn set_key_keeps_comments_order_and_spacing() {
        let text = "# mode: classic or modern\nmode = classic\nother=1\n  # mode = old\n";
        assert_eq!(
            set_key(text, "mode", "=", "modern"),
            "# mode: classic or modern\nmode = modern\nother=1\n  # mode = old\n"
        );
        // A key that only starts like another is another key.
        assert_eq!(set_key("modes=1\n", "mode", "=", "2"), "modes=1\nmode=2\n");
        // Missing: appended, after a newline if the file lacks one.
        assert_eq!(set_key("a=1", "b", "=", "2"), "a=1\nb=2\n");
        // Every occurrence, line endings kept.
        assert_eq!(set_key("k=1\r\nk=2\r\n", "k", "=", "3"), "k=3\r\nk=3\r\n");
        assert_eq!(set_key("a=1\r\n", "k", "=", "3"), "a=1\r\nk=3\r\n");
        // `:` separators and whitespace separators.
        assert_eq!(set_key("k : 1\n", "k", ":", "2"), "k : 2\n");
        assert_eq!(set_key("Port 22\nPorts 1\n", "Port", " ", "2222"), "Port 2222\nPorts 1\n");
        // An empty value.
        assert_eq!(set_key("k=1\n", "k", "=", ""), "k=\n");
        assert_eq!(set_key("k=\n", "k", "=", "v"), "k=v\n");
    }

    #[test]
    fn unified_diff_names_the_file() {
        let d = unified("/etc/x.conf", "a\nb\n", "a\nc\n");
        assert!(d.starts_with("--- /etc/x.conf\n+++ /etc/x.conf\n"), "{d}");
        assert!(d.contains("-b\n+c\n"), "{d}");
        assert_eq!(unified("p", "a\n", "a\n"), "");
    }
}
