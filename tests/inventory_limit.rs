//! `--limit` selects the hosts Ansible's host patterns select: each
//! pattern below is evaluated by hoist (`inventory::limit::select`) and by
//! ansible-core's own `InventoryManager` (Debian's `ansible-core`, as
//! `tests/inventory_ansible.rs` uses it) on fixture inventories, one
//! Python process per inventory: the hosts of `--limit PATTERN` (a
//! `subset` of `all`, what the rollout takes) and, without `@FILE`, the
//! pattern's own order (`ansible PATTERN --list-hosts`), which decides
//! what a subscript picks. Where Ansible warns that a term matched
//! nothing, or selects nothing, hoist must refuse.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use hoist::fleet::inventory::{self, limit::LimitError};
use serde_json::Value;

/// Ansible's evaluation of each pattern (JSON lines of patterns on stdin).
const ORACLE: &str = r#"
import json, sys
from ansible.parsing.dataloader import DataLoader
from ansible.inventory.manager import InventoryManager
from ansible.errors import AnsibleError
import ansible.inventory.manager as m
warned = []
m.display.warning = lambda msg, *a, **k: warned.append(msg)
inv = InventoryManager(loader=DataLoader(), sources=[sys.argv[1]])
for line in sys.stdin:
    p = json.loads(line)
    del warned[:]
    out = {"pattern": p}
    try:
        inv.subset(p)
        inv.clear_pattern_cache()
        out["subset"] = [h.name for h in inv.get_hosts("all")]
        inv.subset(None)
        inv.clear_pattern_cache()
        if "@" not in p:
            out["ordered"] = [h.name for h in inv.get_hosts(p)]
    except AnsibleError as e:
        out["error"] = str(e)
    inv.subset(None)
    inv.clear_pattern_cache()
    out["warned"] = [w for w in warned if "Could not match" in w]
    print(json.dumps(out))
"#;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inventory/ansible")
        .join(name)
}

fn ansible(inventory: &Path, patterns: &[String], scratch: &Path) -> Vec<Value> {
    let config = scratch.join("ansible.cfg");
    std::fs::write(&config, "").unwrap();
    let mut child = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(ORACLE)
        .arg(inventory)
        .current_dir(scratch)
        .env("ANSIBLE_CONFIG", &config)
        .env("ANSIBLE_LOCAL_TEMP", scratch)
        .env("HOME", scratch)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 with ansible-core (apt-get install -y ansible-core)");
    let input: String = patterns
        .iter()
        .map(|p| format!("{}\n", Value::from(p.as_str())))
        .collect();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the oracle failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn names(v: &Value) -> Option<Vec<String>> {
    v.as_array()
        .map(|a| a.iter().map(|h| h.as_str().unwrap().to_string()).collect())
}

/// One difference between hoist and Ansible for a pattern, if any.
fn compare(inv: &inventory::Inventory, theirs: &Value) -> Option<String> {
    let p = theirs["pattern"].as_str().unwrap();
    let ours = inventory::limit::select(inv, p).map(|hs| {
        hs.iter()
            .map(|&h| inv.hosts[h].name.clone())
            .collect::<Vec<_>>()
    });
    let warned = !theirs["warned"].as_array().unwrap().is_empty();
    let subset = names(&theirs["subset"]);
    let ok = match (&ours, subset) {
        (Err(LimitError::Subscript(_) | LimitError::File { .. }), _) => {
            theirs.get("error").is_some()
        }
        (Err(LimitError::NoMatch(_)), _) => warned,
        (Err(LimitError::Empty(_)), Some(s)) => s.is_empty() && !warned,
        (Ok(o), Some(s)) => {
            let same_set = o.iter().collect::<BTreeSet<_>>() == s.iter().collect();
            let same_order = names(&theirs["ordered"]).is_none_or(|t| &t == o);
            same_set && same_order && !warned
        }
        _ => false,
    };
    (!ok).then(|| format!("`{p}`:\n  hoist:   {ours:?}\n  ansible: {theirs}"))
}

#[test]
fn limit_selects_the_hosts_ansible_selects() {
    let scratch = std::env::temp_dir().join(format!("hoist-limit-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let file = scratch.join("limit.txt");
    std::fs::write(&file, "web[0]\n\n  nginx \n!tomcat1\n").unwrap();
    let at = format!("@{}", file.display());
    let cases: [(&str, Vec<String>); 3] = [
        (
            "plugin-doc__ini__example1",
            [
                "all",
                "*",
                "web",
                "apache:nginx",
                "apache,nginx,host1",
                "web:&apache",
                "web:!apache",
                "!nginx",
                "&web:!host1",
                "tomcat*",
                "*1",
                "~tomcat[12]",
                "~(host|jenkins)",
                "web[0]",
                "web[-1]",
                "web[1:3]",
                "web[2:]",
                "apache[0:0]",
                "web[9]",
                "web[7:9]",
                "apache:&nginx",
                "nosuch",
                "web:!nosuch",
                "t?mcat[!1]",
                "host2:22",
                "web,",
                &at,
                "web:@x",
            ]
            .map(String::from)
            .to_vec(),
        ),
        (
            "plugin-doc__yaml__example.yml",
            [
                "all",
                "other_group",
                "other_group[1]",
                "other_group[-1]",
                "all[0:2]",
                "test*:!group_x",
                "last_group:other_group",
                "&other_group",
                "~test[45]",
                "group_?",
                "*group*",
                "ungrouped",
            ]
            .map(String::from)
            .to_vec(),
        ),
        (
            "ansible-doc__inventory",
            [
                "all[3]",
                "group01[1:2]",
                "nogroup0*:&ungrouped",
                "~.*0[13]$",
                "*:!group01",
            ]
            .map(String::from)
            .to_vec(),
        ),
    ];
    let mut failures = Vec::new();
    let mut n = 0;
    for (name, patterns) in &cases {
        let path = fixture(name);
        let inv = inventory::load(&path).unwrap();
        for theirs in ansible(&path, patterns, &scratch) {
            n += 1;
            if let Some(d) = compare(&inv, &theirs) {
                failures.push(format!("{name}: {d}"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    println!("{n} patterns compared, {} different", failures.len());
    assert!(n >= 40, "the oracle answered {n} patterns");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
