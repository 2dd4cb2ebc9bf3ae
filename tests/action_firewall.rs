//! The `firewall` action against real iptables and nftables, through the
//! binary, each test inside a network namespace of its own (never this
//! machine's own rules), deleted at the end.
//!
//! Seed 000: an aborted xivo-upgrade left `DROP udp dpt:5060` behind and no
//! SIP phone could register. The rule must be gone after an injected
//! failure, after a power cut (SIGKILL right after the rule went in) followed
//! by `hoist resume` or `hoist rollback`, and `remove` deletes every copy
//! ("Untill no more unwanted rules are left behind").

mod common;
use common::{killed, text, with_state};

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Every program a test runs ends within this, or is killed.
const BOUND: Duration = Duration::from_secs(120);

fn output_within(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + BOUND;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!("{cmd:?} did not end within {BOUND:?}: {}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// A network namespace, deleted when dropped.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("hoist-fw-{}-{tag}", std::process::id());
        let mut del = Command::new("ip");
        del.args(["netns", "del", &name]);
        let _ = output_within(del);
        let mut add = Command::new("ip");
        add.args(["netns", "add", &name]);
        let o = output_within(add);
        assert!(
            o.status.success(),
            "cannot create a network namespace (root needed): {}",
            text(&o)
        );
        Netns { name }
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// A shell script in the namespace.
    fn sh(&self, script: &str) -> Output {
        let mut c = self.cmd("sh");
        c.args(["-c", script]);
        output_within(c)
    }

    fn sh_ok(&self, script: &str) -> String {
        let o = self.sh(script);
        assert!(o.status.success(), "{script}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Copies of the SIP DROP rule in `iptables -S` (iptables-nft here).
    fn sip_drops(&self) -> usize {
        self.sh_ok("iptables -w 10 -S INPUT")
            .lines()
            .filter(|l| l.trim() == SIP_DROP_SAVED)
            .count()
    }

    /// hoist's nftables table, if it exists.
    fn hoist_table(&self) -> Option<String> {
        let o = self.sh("nft -a list table inet hoist");
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let mut c = Command::new("ip");
        c.args(["netns", "del", &self.name]);
        let _ = output_within(c);
    }
}

const SIP_DROP_SAVED: &str = "-A INPUT -p udp -m udp --dport 5060 -j DROP";

/// A product of one file, upgraded by a recipe that blocks SIP for the
/// length of the upgrade, like XiVO's.
struct Product {
    dir: PathBuf,
    ns: Netns,
}

struct Variant {
    /// `backend = "..."` or nothing.
    backend: &'static str,
    /// An `undo` in the recipe, or the built-in one.
    explicit_undo: bool,
    /// The rule's keys.
    rule: &'static str,
}

const SIP: &str = r#"proto = "udp", dport = 5060, target = "DROP""#;

const IPTABLES: Variant = Variant {
    backend: "",
    explicit_undo: true,
    rule: SIP,
};

impl Product {
    fn new(tag: &str, v: &Variant) -> Product {
        let dir = std::env::temp_dir().join(format!("hoist-fw-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = Product {
            dir,
            ns: Netns::new(tag),
        };
        std::fs::write(p.path("VERSION"), "1.0\n").unwrap();
        let d = p.dir.display();
        let rule = v.rule;
        let backend = if v.backend.is_empty() {
            String::new()
        } else {
            format!(r#", backend = "{}""#, v.backend)
        };
        let undo = if v.explicit_undo {
            format!("undo = {{ firewall = {{ op = \"remove\", {rule} }} }}")
        } else {
            String::new()
        };
        // `blocked` records, mid-run, how many copies each filter holds;
        // while `hold` exists the run waits there (at most 30 s).
        let recipe = format!(
            r#"[product]
name = "fwtest"
version = {{ file = "{d}/VERSION" }}

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

[[steps]]
id = "block-sip"
phase = "pre"
firewall = {{ op = "add", {rule}{backend} }}
{undo}

[[steps]]
id = "look"
phase = "install"
exec = {{ shell = "(iptables -w 10 -S INPUT | grep -c -- '--dport 5060'; nft list table inet hoist 2>/dev/null | grep -c 'dport 5060') > {d}/blocked; i=0; while [ -e {d}/hold ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; true" }}
undo = "none"
undo_reason = "it only looks"

[[steps]]
id = "work"
phase = "install"
exec = {{ shell = "echo 2.0 > {d}/VERSION" }}
undo = {{ exec = {{ shell = "echo 1.0 > {d}/VERSION" }} }}

[[steps]]
id = "unblock-sip"
phase = "cleanup"
firewall = {{ op = "remove", {rule} }}
"#
        );
        std::fs::write(p.path("recipe.toml"), recipe).unwrap();
        p
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_default()
    }

    /// hoist, in the namespace, with this product's state directory.
    fn hoist(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.ns.cmd(env!("CARGO_BIN_EXE_hoist"));
        with_state(&mut c, &self.path("state")).args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        output_within(c)
    }

    fn upgrade(&self, env: &[(&str, &str)]) -> Output {
        let r = self.path("recipe.toml");
        self.hoist(&["upgrade", "--yes", "-r", r.to_str().unwrap()], env)
    }

    fn leftovers(&self, remove: bool) -> Output {
        let r = self.path("recipe.toml");
        let mut args = vec!["firewall", "leftovers", "-r", r.to_str().unwrap()];
        if remove {
            args.push("--remove");
        }
        self.hoist(&args, &[])
    }

    fn log(&self) -> String {
        self.read("state/runs/1.log")
    }
}

impl Drop for Product {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn an_uninterrupted_upgrade_blocks_sip_while_it_runs_and_not_after() {
    let p = Product::new("plain", &IPTABLES);
    let o = p.upgrade(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.read("blocked"), "1\n0\n", "one iptables rule mid-run");
    assert_eq!(p.ns.sip_drops(), 0);
    assert_eq!(p.read("VERSION"), "2.0\n");
}

#[test]
fn a_failure_after_the_rule_is_added_rolls_it_back() {
    for (tag, v) in [
        ("fail-undo", IPTABLES),
        (
            "fail-builtin",
            Variant {
                backend: "iptables",
                explicit_undo: false,
                rule: SIP,
            },
        ),
    ] {
        let p = Product::new(tag, &v);
        let o = p.upgrade(&[("HOIST_TEST_FAIL_AT", "work")]);
        assert_eq!(o.status.code(), Some(1), "{tag}: {}", text(&o));
        assert_eq!(p.read("blocked"), "1\n0\n", "{tag}: the rule was in");
        assert_eq!(p.ns.sip_drops(), 0, "{tag}: the rule is left: {}", p.log());
        assert_eq!(p.read("VERSION"), "1.0\n", "{tag}");
        assert!(text(&o).contains("Rolled back"), "{tag}: {}", text(&o));
    }
}

#[test]
fn a_power_cut_after_the_rule_is_added_then_resume_removes_it() {
    for (tag, v) in [
        ("cut-resume", IPTABLES),
        (
            "cut-resume-builtin",
            Variant {
                backend: "",
                explicit_undo: false,
                rule: SIP,
            },
        ),
    ] {
        let p = Product::new(tag, &v);
        let o = p.upgrade(&[("HOIST_TEST_CRASH_AT", "block-sip:after")]);
        assert!(killed(&o), "{tag}: {}", text(&o));
        assert_eq!(p.ns.sip_drops(), 1, "{tag}: the cut left the rule in");
        let o = p.hoist(&["resume"], &[]);
        assert!(o.status.success(), "{tag}: {}", text(&o));
        // Found applied by asking iptables, not added a second time.
        assert_eq!(p.read("blocked"), "1\n0\n", "{tag}");
        assert!(
            p.log()
                .contains("block-sip was interrupted; its probe says it is applied"),
            "{tag}: {}",
            p.log()
        );
        assert_eq!(p.ns.sip_drops(), 0, "{tag}: {}", p.log());
        assert_eq!(p.read("VERSION"), "2.0\n", "{tag}");
    }
}

#[test]
fn a_power_cut_after_the_rule_is_added_then_rollback_removes_it() {
    for (tag, v) in [
        ("cut-rollback", IPTABLES),
        (
            "cut-rollback-builtin",
            Variant {
                backend: "",
                explicit_undo: false,
                rule: SIP,
            },
        ),
    ] {
        let p = Product::new(tag, &v);
        let o = p.upgrade(&[("HOIST_TEST_CRASH_AT", "block-sip:after")]);
        assert!(killed(&o), "{tag}: {}", text(&o));
        assert_eq!(p.ns.sip_drops(), 1, "{tag}");
        let o = p.hoist(&["rollback"], &[]);
        assert!(o.status.success(), "{tag}: {}", text(&o));
        assert_eq!(p.ns.sip_drops(), 0, "{tag}: {}", p.log());
        assert_eq!(p.read("VERSION"), "1.0\n", "{tag}");
    }
}

#[test]
fn add_adds_once_and_remove_deletes_every_copy() {
    let p = Product::new("copies", &IPTABLES);
    // Three aborted xivo-upgrades' worth (seed 000).
    for _ in 0..3 {
        p.ns.sh_ok("iptables -w 10 -A INPUT -p udp --dport 5060 -j DROP");
    }
    assert_eq!(p.ns.sip_drops(), 3);
    let o = p.upgrade(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.read("blocked"), "3\n0\n", "no fourth copy");
    assert!(
        p.log().contains("already there before this step"),
        "{}",
        p.log()
    );
    assert_eq!(p.ns.sip_drops(), 0, "{}", p.log());
    assert!(p.log().contains("removed 3 copies"), "{}", p.log());
}

#[test]
fn the_leftovers_check_finds_and_removes_a_rule_left_by_hand() {
    let p = Product::new("leftovers", &IPTABLES);
    let o = p.leftovers(false);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("no temporary firewall rule is left"),
        "{}",
        text(&o)
    );

    p.ns
        .sh_ok("iptables -w 10 -I INPUT -p udp --dport 5060 -j DROP; iptables -w 10 -A INPUT -p udp --dport 5060 -j DROP");
    let o = p.leftovers(false);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("LEFT"), "{out}");
    assert!(out.contains("INPUT -p udp --dport 5060 -j DROP"), "{out}");
    assert!(out.contains("2 copies"), "{out}");
    assert!(out.contains("block-sip"), "{out}");
    assert!(out.contains("--remove"), "{out}");
    assert_eq!(p.ns.sip_drops(), 2, "listing removes nothing");

    let o = p.leftovers(true);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("REMOVED"), "{out}");
    assert_eq!(p.ns.sip_drops(), 0);
}

#[test]
fn the_leftovers_check_knows_the_rules_of_an_abandoned_run_without_the_recipe() {
    let p = Product::new("abandoned", &IPTABLES);
    let o = p.upgrade(&[("HOIST_TEST_CRASH_AT", "look:before")]);
    assert!(killed(&o), "{}", text(&o));
    assert_eq!(p.ns.sip_drops(), 1);
    // The recipe is gone: the journal still names the rule.
    std::fs::remove_file(p.path("recipe.toml")).unwrap();
    let o = p.hoist(&["firewall", "leftovers"], &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("run 1 is unfinished"), "{out}");
    let o = p.hoist(&["firewall", "leftovers", "--remove"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.ns.sip_drops(), 0);
}

#[test]
fn a_copy_in_the_other_iptables_flavour_is_removed_too() {
    // A dist-upgrade can switch `iptables` from legacy to nf_tables between
    // the add and the remove: the legacy copy must go as well.
    let p = Product::new("legacy", &IPTABLES);
    p.ns.sh_ok("iptables-legacy -w 10 -A INPUT -p udp --dport 5060 -j DROP");
    let o = p.leftovers(false);
    assert!(text(&o).contains("iptables-legacy"), "{}", text(&o));
    let o = p.upgrade(&[]);
    assert!(o.status.success(), "{}", text(&o));
    let left = p.ns.sh_ok("iptables-legacy -w 10 -S INPUT");
    assert!(!left.contains("5060"), "{left}\n{}", p.log());
}

#[test]
fn nftables_failure_and_power_cut_leave_no_rule_nor_table() {
    let v = Variant {
        backend: "nftables",
        explicit_undo: false,
        rule: SIP,
    };
    let p = Product::new("nft-fail", &v);
    let o = p.upgrade(&[("HOIST_TEST_FAIL_AT", "work")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(p.read("blocked"), "0\n1\n", "in nft, not iptables");
    assert_eq!(p.ns.hoist_table(), None, "{}", p.log());

    let p = Product::new("nft-cut", &v);
    let o = p.upgrade(&[("HOIST_TEST_CRASH_AT", "block-sip:after")]);
    assert!(killed(&o), "{}", text(&o));
    let table = p.ns.hoist_table().expect("the rule's table");
    assert!(
        table.contains("udp dport 5060 drop comment \"hoist INPUT -p udp --dport 5060 -j DROP\""),
        "{table}"
    );
    let o = p.hoist(&["resume"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.read("blocked"), "0\n1\n");
    assert_eq!(p.ns.hoist_table(), None, "{}", p.log());
    assert_eq!(p.read("VERSION"), "2.0\n");
}

#[test]
fn auto_uses_nftables_on_a_host_managed_with_nftables() {
    let p = Product::new("nft-auto", &IPTABLES);
    // Debian's /etc/nftables.conf: an `inet filter` table of the admin's.
    p.ns.sh_ok(
        "nft add table inet filter && nft add chain inet filter input '{ type filter hook input priority 0 ; policy accept ; }'",
    );
    let o = p.upgrade(&[("HOIST_TEST_CRASH_AT", "block-sip:after")]);
    assert!(killed(&o), "{}", text(&o));
    assert!(p.ns.hoist_table().is_some(), "{}", p.log());
    assert_eq!(p.ns.sip_drops(), 0);
    let o = p.hoist(&["rollback"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.ns.hoist_table(), None, "{}", p.log());
    // The admin's own table is untouched.
    p.ns.sh_ok("nft list table inet filter");
}

#[test]
fn the_leftovers_check_leaves_a_running_upgrade_its_rule() {
    let p = Product::new("held", &IPTABLES);
    std::fs::write(p.path("hold"), "").unwrap();
    let mut cmd = p.ns.cmd(env!("CARGO_BIN_EXE_hoist"));
    let mut child = with_state(&mut cmd, &p.path("state"))
        .args(["upgrade", "--yes", "-r"])
        .arg(p.path("recipe.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.read("blocked").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let listed = p.leftovers(false);
    let removed = p.leftovers(true);
    let drops = p.ns.sip_drops();
    // Let the run go on and end, whatever was found.
    std::fs::remove_file(p.path("hold")).unwrap();
    let deadline = Instant::now() + BOUND;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the upgrade did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(p.read("blocked"), "1\n0\n");
    let out = text(&listed);
    assert!(listed.status.success(), "{out}");
    assert!(out.contains("HELD"), "{out}");
    assert!(out.contains("a hoist is running"), "{out}");
    assert_eq!(removed.status.code(), Some(1), "{}", text(&removed));
    assert_eq!(drops, 1, "the running upgrade's rule stays");
    assert!(status.success());
    assert_eq!(p.ns.sip_drops(), 0);
}

#[test]
fn lint_refuses_words_that_are_not_a_rule() {
    // The words go to iptables and nft as they are.
    let dir = std::env::temp_dir().join(format!("hoist-fw-{}-lint", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let recipe = dir.join("recipe.toml");
    std::fs::write(
        &recipe,
        r#"[product]
name = "fwlint"
version = { file = "/nonexistent" }

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

[[steps]]
id = "bad-source"
phase = "pre"
firewall = { op = "add", proto = "udp", dport = 5060, target = "DROP", source = "10.0.0.0/8 drop" }

[[steps]]
id = "bad-chain"
phase = "pre"
firewall = { op = "add", chain = "my chain", proto = "udp", dport = 5060, target = "DROP" }

[[steps]]
id = "nft-custom-chain"
phase = "pre"
firewall = { op = "add", chain = "SIP", backend = "nftables", proto = "udp", dport = 5060, target = "DROP" }
"#,
    )
    .unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_hoist"));
    c.args(["lint"]).arg(&recipe).env("NO_COLOR", "1");
    let o = output_within(c);
    let _ = std::fs::remove_dir_all(&dir);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("3 error(s)"), "{out}");
    assert!(out.contains("`source` is `10.0.0.0/8 drop`"), "{out}");
    assert!(out.contains("`chain` is `my chain`"), "{out}");
    assert!(out.contains("only INPUT, FORWARD and OUTPUT"), "{out}");
}

#[test]
fn an_ipv6_rule_from_a_source_network_goes_with_rollback_in_both_backends() {
    const V6: &str = r#"proto = "tcp", dport = 8096, source = "fd00::/8", target = "REJECT""#;
    for (tag, backend, listing) in [
        ("v6-ipt", "iptables", "ip6tables -w 10 -S INPUT"),
        ("v6-nft", "nftables", "nft list ruleset"),
    ] {
        let v = Variant {
            backend,
            explicit_undo: false,
            rule: V6,
        };
        let p = Product::new(tag, &v);
        let o = p.upgrade(&[("HOIST_TEST_CRASH_AT", "block-sip:after")]);
        assert!(killed(&o), "{tag}: {}", text(&o));
        let during = p.ns.sh_ok(listing);
        assert!(during.contains("fd00::/8"), "{tag}: {during}\n{}", p.log());
        assert!(during.contains("8096"), "{tag}: {during}");
        let o = p.hoist(&["rollback"], &[]);
        assert!(o.status.success(), "{tag}: {}", text(&o));
        let after = p.ns.sh_ok(listing);
        assert!(!after.contains("8096"), "{tag}: {after}\n{}", p.log());
    }
}
