//! hoist reads inventories as `ansible-inventory --list` does, or refuses
//! them at a line and column: every inventory under
//! `tests/fixtures/inventory/` (Ansible's own test data in `ansible/`,
//! hoist's tricky cases in `own/`) is read by both and compared host by
//! host: groups, variables, and the address, port, user and key hoist
//! connects with. No silent difference is allowed.
//!
//! A case is a file (`-i FILE`), a directory (`-i DIR`), or a directory
//! named `*.case` holding one inventory file beside its `group_vars/` and
//! `host_vars/` (`-i DIR/FILE`). A `*.list.json` file is the JSON
//! `ansible-inventory --list` prints: Ansible reads it from a script that
//! prints it. Cases of `own/` named `ok-*` must be read identically,
//! `refused-*` refused by hoist.
//!
//! `ansible-inventory` comes from Debian's `ansible-core`, which the test
//! command installs (scripts/apt-packages.txt).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use hoist::fleet::inventory::{self, InventoryError};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inventory")
}

/// Every case: its set (`ansible` or `own`), its name, the path to give.
fn cases() -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    for set in ["ansible", "own"] {
        let dir = fixtures().join(set);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "LICENSE-NOTE")
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let target = if name.ends_with(".case") {
                let files: Vec<PathBuf> = std::fs::read_dir(&path)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .filter(|p| p.is_file())
                    .collect();
                assert_eq!(files.len(), 1, "{name}: one inventory file expected");
                files[0].clone()
            } else {
                path
            };
            out.push((set.to_string(), name, target));
        }
    }
    out
}

/// One host as either side sees it.
#[derive(Debug, PartialEq)]
struct Seen {
    groups: BTreeSet<String>,
    vars: BTreeMap<String, Value>,
    address: String,
    port: Option<u16>,
    user: Option<String>,
    key: Option<String>,
}

/// `{"__ansible_unsafe": "x"}` is Ansible's way to print the text `x`.
fn plain(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            if m.len() == 1
                && let Some(Value::String(s)) = m.get("__ansible_unsafe")
            {
                return Value::String(s.clone());
            }
            Value::Object(m.into_iter().map(|(k, v)| (k, plain(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(plain).collect()),
        v => v,
    }
}

fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// What `ansible-inventory --list` printed, per host; `Err` when it
/// failed.
fn ansible(target: &Path, scratch: &Path) -> Result<BTreeMap<String, Seen>, String> {
    let mut source = target.to_path_buf();
    if target.to_string_lossy().ends_with(".list.json") {
        source = scratch.join("list.sh");
        let script = format!(
            "#!/bin/sh\nif [ \"$1\" = --list ]; then cat '{}'; else echo '{{}}'; fi\n",
            target.display()
        );
        std::fs::write(&source, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&source, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let config = scratch.join("ansible.cfg");
    std::fs::write(&config, "").unwrap();
    let out = Command::new("ansible-inventory")
        .arg("-i")
        .arg(&source)
        .arg("--list")
        .current_dir(scratch)
        .env("ANSIBLE_CONFIG", &config)
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .env("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "true")
        .env("ANSIBLE_LOCAL_TEMP", scratch)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("HOME", scratch)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let json: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("unreadable output of ansible-inventory: {e}"))?;
    let obj = json.as_object().ok_or("not an object")?;
    // Each group's hosts and children, then every host's groups.
    let mut direct: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut parents: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (g, data) in obj {
        if g == "_meta" {
            continue;
        }
        for h in data["hosts"].as_array().into_iter().flatten() {
            direct
                .entry(h.as_str().unwrap().to_string())
                .or_default()
                .insert(g.clone());
        }
        for c in data["children"].as_array().into_iter().flatten() {
            parents
                .entry(c.as_str().unwrap().to_string())
                .or_default()
                .push(g.clone());
        }
    }
    let hostvars = &json["_meta"]["hostvars"];
    let mut out = BTreeMap::new();
    for (host, groups) in direct {
        let mut all = BTreeSet::new();
        let mut todo: Vec<String> = groups.into_iter().collect();
        while let Some(g) = todo.pop() {
            if all.insert(g.clone()) {
                todo.extend(parents.get(&g).cloned().unwrap_or_default());
            }
        }
        all.remove("all");
        all.remove("ungrouped");
        let vars: BTreeMap<String, Value> = match hostvars.get(&host) {
            Some(Value::Object(m)) => m.clone().into_iter().map(|(k, v)| (k, plain(v))).collect(),
            _ => BTreeMap::new(),
        };
        let first = |names: [&str; 2]| names.iter().find_map(|n| text_of(vars.get(*n)));
        let seen = Seen {
            groups: all,
            address: first(["ansible_host", "ansible_ssh_host"]).unwrap_or_else(|| host.clone()),
            port: first(["ansible_port", "ansible_ssh_port"]).and_then(|p| p.parse().ok()),
            user: first(["ansible_user", "ansible_ssh_user"]),
            key: first(["ansible_ssh_private_key_file", "ansible_private_key_file"]),
            vars,
        };
        out.insert(host, seen);
    }
    Ok(out)
}

fn hoist(target: &Path) -> Result<BTreeMap<String, Seen>, InventoryError> {
    let inv = inventory::load(target)?;
    Ok(inv
        .hosts
        .into_iter()
        .map(|h| {
            let seen = Seen {
                groups: h.roles.into_iter().collect(),
                vars: h.values.into_iter().collect(),
                address: h.address,
                port: h.port,
                user: h.user,
                key: h.key,
            };
            (h.name, seen)
        })
        .collect())
}

enum Outcome {
    Identical,
    /// hoist refused (Ansible too, or not): hoist's message.
    Refused(String),
    Different(String),
}

fn compare(target: &Path, scratch: &Path) -> Outcome {
    let theirs = ansible(target, scratch);
    let ours = hoist(target);
    match (theirs, ours) {
        (_, Err(InventoryError::Invalid(problems))) => {
            let first = problems[0].short();
            // path:line:col: ...
            let located = first
                .split(':')
                .nth(1)
                .is_some_and(|l| l.parse::<usize>().is_ok());
            if located {
                Outcome::Refused(first)
            } else {
                Outcome::Different(format!("refused without a place: {first}"))
            }
        }
        (_, Err(e)) => Outcome::Different(format!("refused without a place: {e}")),
        (Err(why), Ok(_)) => Outcome::Different(format!(
            "read by hoist, refused by Ansible: {}",
            why.lines().last().unwrap_or("")
        )),
        (Ok(theirs), Ok(ours)) => {
            let mut diffs = Vec::new();
            let names: BTreeSet<&String> = theirs.keys().chain(ours.keys()).collect();
            for n in names {
                match (theirs.get(n), ours.get(n)) {
                    (Some(t), Some(o)) if t == o => {}
                    (t, o) => diffs.push(format!("host {n}:\n  ansible: {t:?}\n  hoist:   {o:?}")),
                }
            }
            if diffs.is_empty() {
                Outcome::Identical
            } else {
                Outcome::Different(diffs.join("\n"))
            }
        }
    }
}

#[test]
fn inventories_are_read_as_ansible_inventory_reads_them() {
    let ok = Command::new("ansible-inventory")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "ansible-inventory is not installed: run the test command, which installs ansible-core \
         (scripts/apt-packages.txt), or `apt-get install -y ansible-core`"
    );
    let cases = cases();
    let scratch =
        std::env::temp_dir().join(format!("hoist-inventory-ansible-{}", std::process::id()));
    let results: Mutex<Vec<(usize, Outcome)>> = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (cases, results, next, scratch) = (&cases, &results, &next, &scratch);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((_, _, target)) = cases.get(i) else {
                        break;
                    };
                    let dir = scratch.join(format!("{t}-{i}"));
                    std::fs::create_dir_all(&dir).unwrap();
                    let outcome = compare(target, &dir);
                    results.lock().unwrap().push((i, outcome));
                }
            });
        }
    });
    let _ = std::fs::remove_dir_all(&scratch);
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for (i, outcome) in &results {
        let (set, name, _) = &cases[*i];
        let kind = match outcome {
            Outcome::Identical => "identical",
            Outcome::Refused(_) => "refused",
            Outcome::Different(_) => "different",
        };
        *counts.entry((set.as_str(), kind)).or_default() += 1;
        match outcome {
            Outcome::Refused(why) => println!("refused   {set}/{name}: {why}"),
            Outcome::Identical => println!("identical {set}/{name}"),
            Outcome::Different(d) => {
                println!("DIFFERENT {set}/{name}:\n{d}");
                failures.push(format!("{set}/{name}: different"));
            }
        }
        if set == "own" {
            if name.starts_with("ok-") && kind != "identical" {
                failures.push(format!("{set}/{name}: expected identical, was {kind}"));
            }
            if name.starts_with("refused-") && kind != "refused" {
                failures.push(format!("{set}/{name}: expected refused, was {kind}"));
            }
        }
    }
    for set in ["ansible", "own"] {
        let n = |k| counts.get(&(set, k)).copied().unwrap_or(0);
        println!(
            "{set}: {} cases: {} identical, {} refused by hoist, {} different",
            n("identical") + n("refused") + n("different"),
            n("identical"),
            n("refused"),
            n("different")
        );
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
