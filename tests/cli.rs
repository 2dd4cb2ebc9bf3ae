//! The binary's contract: output and exit codes (0 ok, 1 refused, 2 usage or
//! recipe error).

use std::process::Command;

fn hoist(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn lint_reports_file_line_column_and_exits_1() {
    let (code, out, err) = hoist(&["lint", "tests/broken/03-misspelt-step-key.toml"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("tests/broken/03-misspelt-step-key.toml:15:1"),
        "{err}"
    );
    assert!(err.contains("did you mean `timeout`?"), "{err}");
    assert!(out.contains("1 error(s)"), "{out}");
}

#[test]
fn lint_of_a_good_recipe_exits_0() {
    let (code, out, err) = hoist(&["lint", "recipes/xivo"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 error(s)"), "{out}");
}

#[test]
fn lint_json_lists_every_problem() {
    let (code, out, _) = hoist(&[
        "lint",
        "--json",
        "tests/broken/05-unknown-action.toml",
        "tests/broken/13-unknown-phase.toml",
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["errors"], 2);
    assert_eq!(v["problems"][0]["code"], "unknown-action");
    assert_eq!(v["problems"][1]["code"], "unknown-value");
    assert_eq!(v["problems"][1]["line"], 13);
}

#[test]
fn plan_refuses_xivo_1_1_with_the_recipes_message() {
    let (code, out, err) = hoist(&[
        "plan",
        "-r",
        "recipes/xivo",
        "--facts",
        "tests/fixtures/xivo/1.1.5.toml",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("Upgrading to XiVO 1.2 from a previous version (i.e. XiVO 1.1) is not supported right now."),
        "{err}"
    );
    let (code, out, _) = hoist(&[
        "plan",
        "--json",
        "-r",
        "recipes/xivo",
        "--facts",
        "tests/fixtures/xivo/1.1.5.toml",
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"], "unsupported");
}

#[test]
fn plan_shows_current_and_target_and_every_step() {
    let (code, out, err) = hoist(&[
        "plan",
        "-r",
        "recipes/xivo",
        "--facts",
        "tests/fixtures/xivo/1.2.2.toml",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("xivo: 1.2.2 -> 1.2.4\n"), "{out}");
    for id in [
        "refresh-indexes",
        "block-sip",
        "upgrade-packages",
        "post-upgrade-scripts",
        "unblock-sip",
    ] {
        assert!(out.contains(id), "{id} missing:\n{out}");
    }
}

#[test]
fn plan_json_is_stable_and_hashed() {
    let args = [
        "plan",
        "--json",
        "-r",
        "recipes/xivo",
        "--facts",
        "tests/fixtures/xivo/1.2.2.toml",
    ];
    let (_, a, _) = hoist(&args);
    let (_, b, _) = hoist(&args);
    assert_eq!(a, b, "the same inputs must give the same plan");
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert_eq!(v["schema"], 1);
    assert_eq!(v["hash"].as_str().unwrap().len(), 64);
    assert_eq!(v["current"], "1.2.2");
    assert_eq!(v["target"], "1.2.4");
}

#[test]
fn up_to_date_is_not_an_error() {
    let (code, out, _) = hoist(&[
        "plan",
        "-r",
        "recipes/xivo",
        "--facts",
        "tests/fixtures/xivo/1.2.2.toml",
        "--fact",
        "current=1.2.4",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("1.2.4 is up to date"), "{out}");
}

#[test]
fn bad_input_is_a_usage_error_not_a_panic() {
    let (code, _, err) = hoist(&[
        "plan",
        "-r",
        "recipes/xivo",
        "--facts",
        "tests/fixtures/xivo/1.2.2.toml",
        "--to",
        "banana",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("not a version"), "{err}");
    let (code, _, err) = hoist(&[
        "plan",
        "-r",
        "tests/broken/01-syntax.toml",
        "--facts",
        "tests/fixtures/xivo/1.2.2.toml",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("TOML syntax"), "{err}");
    let (code, _, err) = hoist(&[
        "plan",
        "-r",
        "recipes/xivo",
        "--fact",
        "nosuchfact=1",
        "--facts",
        "tests/fixtures/xivo/1.2.2.toml",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown fact `nosuchfact`"), "{err}");
}

#[test]
fn check_runs_tests_on_this_host_and_exits_by_severity() {
    let dir = std::env::temp_dir().join(format!("hoist-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let recipe = dir.join("recipe.toml");
    let marker = dir.join("configured");
    std::fs::write(
        &recipe,
        format!(
            r#"[product]
name = "demo"
version = {{ command = ["echo", "1.0"] }}

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

[[checks]]
id = "configured"
severity = "inhibitor"
message = "the product is not configured"
remedy = "configure it"
test = {{ file_exists = "{}" }}

[[checks]]
id = "space"
severity = "warning"
skippable = true
message = "low on space"
test = {{ command = ["false"] }}
"#,
            marker.display()
        ),
    )
    .unwrap();
    let r = recipe.to_str().unwrap();
    let (code, out, _) = hoist(&["check", "-r", r]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL  configured"), "{out}");
    assert!(out.contains("remedy: configure it"), "{out}");
    assert!(out.contains("WARN  space"), "{out}");
    std::fs::write(&marker, "").unwrap();
    let (code, out, _) = hoist(&["check", "--json", "-r", r, "--skip", "space"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["checks"][0]["status"], "PASS");
    assert_eq!(v["checks"][1]["status"], "SKIP");
    assert_eq!(v["checks"][1]["skipped_by_admin"], true);
    let (code, _, err) = hoist(&["check", "-r", r, "--skip", "configured"]);
    assert_eq!(code, 2);
    assert!(err.contains("may not be skipped"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_with_a_facts_file_runs_nothing_here_and_passes_show_their_title() {
    let dir = std::env::temp_dir().join(format!("hoist-check-facts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let recipe = dir.join("recipe.toml");
    let ran = dir.join("ran");
    std::fs::write(
        &recipe,
        format!(
            r#"[product]
name = "demo"
version = {{ command = ["echo", "1.0"] }}
roles = ["web"]

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

[[checks]]
id = "touches-the-host"
severity = "inhibitor"
title = "the host answers"
message = "the host does not answer"
test = {{ shell = "touch {}" }}

[[checks]]
id = "is-web"
severity = "inhibitor"
title = "a web server"
message = "not a web server"
require = {{ roles = "web" }}
"#,
            ran.display()
        ),
    )
    .unwrap();
    let facts = dir.join("facts.toml");
    std::fs::write(&facts, "current = \"1.0\"\nroles = [\"web\"]\n").unwrap();
    let r = recipe.to_str().unwrap();
    let f = facts.to_str().unwrap();
    let (code, out, err) = hoist(&["check", "-r", r, "--facts", f]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !ran.exists(),
        "a test ran on a machine that is not the host"
    );
    assert!(
        out.contains("NOT EVALUATED  touches-the-host  the host answers"),
        "{out}"
    );
    assert!(out.contains("PASS  is-web  a web server"), "{out}");
    assert!(!out.contains("not a web server"), "{out}");
    assert!(
        out.contains("1 not evaluated") && out.contains("need the host"),
        "{out}"
    );
    let (_, out, _) = hoist(&["check", "--json", "-r", r, "--facts", f]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["checks"][0]["status"], "NOT-EVALUATED");
    assert_eq!(v["not_evaluated"], 1);
    // On this machine itself the test runs (and this machine has no role:
    // the failure says what is wrong, not the title).
    let (code, out, _) = hoist(&["check", "-r", r]);
    assert_eq!(code, 1, "{out}");
    assert!(ran.exists());
    assert!(
        out.contains("PASS  touches-the-host  the host answers"),
        "{out}"
    );
    assert!(out.contains("FAIL  is-web  not a web server"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn facts_in_action_strings_are_filled_in_the_plan() {
    let dir = std::env::temp_dir().join(format!("hoist-template-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let recipe = dir.join("recipe.toml");
    std::fs::write(
        &recipe,
        r#"[product]
name = "demo"
version = { package = "demo" }

[[facts]]
name = "pg.old"
type = "version"

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

[[steps]]
id = "switch-suite"
phase = "install"
repo = { op = "switch", file = "/etc/apt/sources.list", from = "{{ os.codename }}", to = "bookworm" }

[[steps]]
id = "upgrade-cluster"
phase = "migrate"
exec = { argv = ["pg_upgradecluster", "{{ pg.old }}", "main"] }
undo = "none"
undo_reason = "a plan-only test"
"#,
    )
    .unwrap();
    let facts = dir.join("facts.toml");
    std::fs::write(
        &facts,
        "current = \"1.0\"\nos.codename = \"bullseye\"\npg.old = \"13\"\n",
    )
    .unwrap();
    let r = recipe.to_str().unwrap();
    let f = facts.to_str().unwrap();
    let (code, out, err) = hoist(&["plan", "-r", r, "--facts", f]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("in /etc/apt/sources.list: bullseye -> bookworm"),
        "{out}"
    );
    assert!(out.contains("run pg_upgradecluster 13 main"), "{out}");
    // A fact with no value on this host stops the plan, naming it.
    std::fs::write(&facts, "current = \"1.0\"\nos.codename = \"bullseye\"\n").unwrap();
    let (code, _, err) = hoist(&["plan", "-r", r, "--facts", f]);
    assert_eq!(code, 2);
    assert!(err.contains("fact `pg.old`"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn invoked_as_product_upgrade_it_speaks_like_the_seeds_command() {
    let dir = std::env::temp_dir().join(format!("hoist-branded-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display().to_string();
    std::fs::write(dir.join("VERSION"), "1.2.2\n").unwrap();
    std::fs::write(dir.join("artifact"), "1.2.4\n").unwrap();
    std::fs::write(
        dir.join("recipe.toml"),
        format!(
            r#"[product]
name = "xivo"
version = {{ file = "{d}/VERSION" }}

[[paths]]
id = "1.2"
from = "1.2.*"
to = "1.2.4"

[[steps]]
id = "download"
phase = "prepare"
exec = {{ shell = "cp {d}/artifact {d}/downloaded", read_only = true }}

[[steps]]
id = "upgrade"
phase = "install"
exec = {{ shell = "cp {d}/downloaded {d}/VERSION" }}
undo = "none"
undo_reason = "a plan-only test"
"#
        ),
    )
    .unwrap();
    let link = dir.join("xivo-upgrade");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_hoist"), &link).unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(&link)
            .args(args)
            .env("HOIST_RECIPE", dir.join("recipe.toml"))
            .env("HOIST_STATE_DIR", dir.join("state"))
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    };
    // No terminal and no -f: it does not guess.
    let (code, out) = run(&[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("(-f)"), "{out}");
    // -d: downloads only.
    let (code, out) = run(&["-d"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("current version: 1.2.2\nnew version: 1.2.4"),
        "{out}"
    );
    assert!(dir.join("downloaded").exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("VERSION")).unwrap(),
        "1.2.2\n"
    );
    // -f: the upgrade, without a question.
    let (code, out) = run(&["-f"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("current version: 1.2.2\nnew version: 1.2.4"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("VERSION")).unwrap(),
        "1.2.4\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_facts_file_of_the_wrong_types_is_refused_not_coerced() {
    let dir = std::env::temp_dir().join(format!("hoist-facts-types-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let facts = dir.join("facts.toml");
    for (text, said) in [
        (
            "current = 5\n",
            "`current` must be a version written as a string, e.g. \"2.0\", not integer `5`",
        ),
        (
            "current = \"1.2.3\"\nroles = \"master\"\n",
            "`roles` must be a list of strings, e.g. [\"web\"], not string `\"master\"`",
        ),
        (
            "current = \"1.2.3\"\nroles = [\"master\", 1]\n",
            "`roles` must be a list of strings",
        ),
    ] {
        std::fs::write(&facts, text).unwrap();
        let (code, out, err) = hoist(&[
            "plan",
            "-r",
            "recipes/xivo",
            "--facts",
            facts.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{text}: {out}{err}");
        assert!(err.contains(said), "{text}: {err}");
    }
    std::fs::write(&facts, "current = \"1.2.3\"\nroles = [\"master\"]\n").unwrap();
    let (code, out, err) = hoist(&[
        "plan",
        "-r",
        "recipes/xivo",
        "--facts",
        facts.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_host_with_none_of_the_required_roles_is_refused_and_roles_are_probed() {
    let dir = std::env::temp_dir().join(format!("hoist-roles-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // CloudStack: a host nobody said the role of, and a facts file that
    // says none, gets no plan of repository switches only.
    let facts = dir.join("facts.toml");
    std::fs::write(&facts, "current = \"4.2.1\"\nos.id = \"ubuntu\"\nos.family = \"debian\"\nos.codename = \"precise\"\nhypervisor = [\"kvm\"]\n").unwrap();
    let f = facts.to_str().unwrap();
    let (code, out, err) = hoist(&[
        "plan",
        "-r",
        "recipes/cloudstack",
        "--facts",
        f,
        "--to",
        "4.3.2",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("this host has none of cloudstack's roles (management, usage, kvm)")
            && err.contains("--role ROLE"),
        "{err}"
    );
    let (code, out, err) = hoist(&[
        "plan",
        "-r",
        "recipes/cloudstack",
        "--facts",
        f,
        "--to",
        "4.3.2",
        "--role",
        "management",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    // On this machine, the recipe's probes tell the roles nobody gave.
    let recipe = dir.join("recipe.toml");
    std::fs::write(
        &recipe,
        r#"[product]
name = "demo"
version = { command = ["echo", "1.0"] }
roles = ["web", "db"]
role_required = true

[product.role_probes]
web = { command = ["true"] }
db = { command = ["false"] }

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

[[steps]]
id = "on-web"
phase = "install"
when = { roles = "web" }
exec = { argv = ["true"], read_only = true }

[[steps]]
id = "on-db"
phase = "install"
when = { roles = "db" }
exec = { argv = ["true"], read_only = true }
"#,
    )
    .unwrap();
    let (code, out, err) = hoist(&["plan", "-r", recipe.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("on-web") && out.contains("not taken"), "{out}");
    let taken = out.split("not taken").next().unwrap();
    assert!(!taken.contains("on-db"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn completions_are_made_for_bash_zsh_and_fish_and_an_unknown_shell_is_usage() {
    for (shell, start) in [
        ("bash", "_hoist()"),
        ("zsh", "#compdef hoist"),
        ("fish", "complete -c hoist"),
    ] {
        let (code, out, err) = hoist(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains(start), "{shell}: {out}");
        // Every command an admin types; none of the hidden ones.
        for command in ["upgrade", "rollback", "fleet", "completions"] {
            assert!(out.contains(command), "{shell} lacks {command}");
        }
        assert!(!out.contains("fleet-action") && !out.contains("demo-internal"));
    }
    let (code, _, err) = hoist(&["completions", "tcsh"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn man_writes_a_page_per_command_with_the_sections_clap_cannot_know() {
    let dir = std::env::temp_dir().join(format!("hoist-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (code, out, err) = hoist(&["man", dir.to_str().unwrap(), "--date", "2026-01-02"]);
    assert_eq!(code, 0, "{err}");
    let pages: Vec<&str> = out.lines().collect();
    assert_eq!(pages[0], "hoist.8");
    for page in [
        "hoist-fleet.8",
        "hoist-fleet-rollback.8",
        "hoist-firewall-leftovers.8",
    ] {
        assert!(pages.contains(&page), "{page}: {pages:?}");
    }
    let top = std::fs::read_to_string(dir.join("hoist.8")).unwrap();
    assert!(
        top.contains(".TH hoist 8 2026-01-02 \"hoist "),
        "{}",
        &top[..200]
    );
    // man-pages(7)'s order, before clap_mangen's VERSION.
    let at = |s: &str| top.find(s).unwrap_or_else(|| panic!("no {s}"));
    assert!(at(".SH OPTIONS") < at(".SH \"EXIT STATUS\""));
    assert!(at(".SH \"EXIT STATUS\"") < at(".SH ENVIRONMENT"));
    assert!(at(".SH ENVIRONMENT") < at(".SH FILES"));
    assert!(at(".SH FILES") < at(".SH EXAMPLES"));
    assert!(at(".SH EXAMPLES") < at(".SH \"SEE ALSO\""));
    assert!(at(".SH \"SEE ALSO\"") < at(".SH VERSION"));
    assert_eq!(top.matches(".ds Aq").count(), 2, "one preamble");
    // The page of one command: its options, its examples only.
    let resume = std::fs::read_to_string(dir.join("hoist-fleet-resume.8")).unwrap();
    assert!(resume.contains("hoist fleet resume"), "{resume}");
    assert!(
        !resume.contains(".SH EXAMPLES"),
        "no example of it: {resume}"
    );
    let fleet = std::fs::read_to_string(dir.join("hoist-fleet.8")).unwrap();
    assert!(fleet.contains("hoist fleet status") && !fleet.contains("hoist demo"));
    std::fs::remove_dir_all(&dir).unwrap();
}
