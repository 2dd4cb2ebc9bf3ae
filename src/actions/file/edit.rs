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

/// The name of an ini section header line (`[name]`).
fn header(line: &str) -> Option<&str> {
    let t = line.trim();
    t.strip_prefix('[')?.strip_suffix(']').map(str::trim)
}

/// `text` with `key` set to `value` on every line that sets it (so whichever
/// occurrence a reader takes, it gets `value`), keeping the line's own
/// spacing around the separator, every comment and the order; when no line
/// sets it, `key<separator>value` is appended. With a `section`, only the
/// lines of that ini section count, and a missing key goes at the end of
/// the section (a missing section at the end of the file).
pub fn set_key(
    text: &str,
    section: Option<&str>,
    key: &str,
    separator: &str,
    value: &str,
) -> String {
    let nl = newline(text);
    let mut lines: Vec<String> = text.split_inclusive('\n').map(String::from).collect();
    let mut current: Option<String> = None;
    let mut found = false;
    // The last non-blank line of the wanted section: where a missing key goes.
    let mut end_of_section: Option<usize> = None;
    for (i, line) in lines.iter_mut().enumerate() {
        let body = line.trim_end_matches(['\n', '\r']).to_string();
        if section.is_some()
            && let Some(name) = header(&body)
        {
            current = Some(name.to_string());
            if current.as_deref() == section {
                end_of_section = Some(i);
            }
            continue;
        }
        if section.is_some() && current.as_deref() != section {
            continue;
        }
        if !body.trim().is_empty() {
            end_of_section = Some(i);
        }
        if let Some(at) = value_start(&body, key, separator) {
            found = true;
            let ending = line[body.len()..].to_string();
            *line = format!("{}{value}{ending}", &body[..at]);
        }
    }
    if !found {
        let wanted = format!("{key}{separator}{value}{nl}");
        let at = match (section, end_of_section) {
            (Some(_), Some(i)) => i + 1,
            _ => lines.len(),
        };
        if let Some(prev) = at.checked_sub(1).and_then(|p| lines.get_mut(p))
            && !prev.ends_with('\n')
        {
            prev.push_str(nl);
        }
        match (section, end_of_section) {
            (Some(s), None) => {
                if !lines.is_empty() {
                    lines.push(nl.to_string());
                }
                lines.push(format!("[{s}]{nl}"));
                lines.push(wanted);
            }
            _ => lines.insert(at, wanted),
        }
    }
    lines.concat()
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
        let re =
            regex::Regex::new(r"com\.cloud\.agent\.resource\.computing\.LibvirtComputingResource")
                .unwrap();
        let text =
            "# agent\nresource=com.cloud.agent.resource.computing.LibvirtComputingResource\n";
        let out = replace(
            text,
            &re,
            "com.cloud.hypervisor.kvm.resource.LibvirtComputingResource",
        );
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
            set_key(text, None, "mode", "=", "modern"),
            "# mode: classic or modern\nmode = modern\nother=1\n  # mode = old\n"
        );
        // A key that only starts like another is another key.
        assert_eq!(
            set_key("modes=1\n", None, "mode", "=", "2"),
            "modes=1\nmode=2\n"
        );
        // Missing: appended, after a newline if the file lacks one.
        assert_eq!(set_key("a=1", None, "b", "=", "2"), "a=1\nb=2\n");
        // Every occurrence, line endings kept.
        assert_eq!(
            set_key("k=1\r\nk=2\r\n", None, "k", "=", "3"),
            "k=3\r\nk=3\r\n"
        );
        assert_eq!(set_key("a=1\r\n", None, "k", "=", "3"), "a=1\r\nk=3\r\n");
        // `:` separators and whitespace separators.
        assert_eq!(set_key("k : 1\n", None, "k", ":", "2"), "k : 2\n");
        assert_eq!(
            set_key("Port 22\nPorts 1\n", None, "Port", " ", "2222"),
            "Port 2222\nPorts 1\n"
        );
        // An empty value.
        assert_eq!(set_key("k=1\n", None, "k", "=", ""), "k=\n");
        assert_eq!(set_key("k=\n", None, "k", "=", "v"), "k=v\n");
    }

    #[test]
    fn set_key_in_an_ini_section() {
        let ini = "top=0\n[a]\nk=1\n\n[b]\nk=2\nz=9\n\n# end\n";
        // Only the section's line.
        assert_eq!(
            set_key(ini, Some("b"), "k", "=", "3"),
            "top=0\n[a]\nk=1\n\n[b]\nk=3\nz=9\n\n# end\n"
        );
        // Missing in the section: after its last line, before the blank.
        assert_eq!(
            set_key(ini, Some("a"), "n", "=", "5"),
            "top=0\n[a]\nk=1\nn=5\n\n[b]\nk=2\nz=9\n\n# end\n"
        );
        // A section with only its header.
        assert_eq!(set_key("[a]\n", Some("a"), "k", "=", "1"), "[a]\nk=1\n");
        // A missing section: at the end.
        assert_eq!(
            set_key("x=1", Some("c"), "k", "=", "1"),
            "x=1\n\n[c]\nk=1\n"
        );
        assert_eq!(set_key("", Some("c"), "k", "=", "1"), "[c]\nk=1\n");
        // Without a section, the whole file.
        assert_eq!(
            set_key(ini, None, "k", "=", "7"),
            "top=0\n[a]\nk=7\n\n[b]\nk=7\nz=9\n\n# end\n"
        );
    }

    #[test]
    fn unified_diff_names_the_file() {
        let d = unified("/etc/x.conf", "a\nb\n", "a\nc\n");
        assert!(d.starts_with("--- /etc/x.conf\n+++ /etc/x.conf\n"), "{d}");
        assert!(d.contains("-b\n+c\n"), "{d}");
        assert_eq!(unified("p", "a\n", "a\n"), "");
    }
}
