//! Every broken recipe under tests/broken/ gets exactly the problems its
//! first line expects (`# expect: CODE at LINE:COL [help WORD] / ...`), with
//! no panic; every shipped recipe lints clean.

use std::path::{Path, PathBuf};

use hoist::recipe;

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn found(path: &Path) -> String {
    let loaded = recipe::load(path).unwrap();
    assert!(
        loaded.recipe.is_none(),
        "{}: a broken recipe was accepted",
        path.display()
    );
    loaded
        .problems
        .iter()
        .map(|p| {
            let (line, col) = p.line_col();
            let help = p
                .problem
                .help
                .as_deref()
                .filter(|h| h.starts_with("did you mean"))
                .and_then(|h| h.split('`').nth(1))
                .map(|w| format!(" help {w}"))
                .unwrap_or_default();
            format!("{} at {line}:{col}{help}", p.problem.code)
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

#[test]
fn each_broken_recipe_gets_its_diagnostic() {
    let broken = files("tests/broken", "toml");
    assert!(broken.len() >= 15, "only {} broken recipes", broken.len());
    let mut codes = std::collections::BTreeSet::new();
    for path in &broken {
        let text = std::fs::read_to_string(path).unwrap();
        let expected = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: no `# expect:` line", path.display()));
        assert_eq!(found(path), expected, "{}", path.display());
        codes.insert(expected.split(' ').next().unwrap().to_string());
    }
    // Distinct mistakes, not one mistake fifteen times.
    assert!(
        codes.len() >= 15,
        "only {} distinct codes: {codes:?}",
        codes.len()
    );
}

#[test]
fn every_problem_is_rendered_with_its_place() {
    for path in files("tests/broken", "toml") {
        for p in recipe::load(&path).unwrap().problems {
            let (line, col) = p.line_col();
            let short = p.short();
            assert!(short.contains(&format!(":{line}:{col}: ")), "{short}");
            let drawn = p.render();
            assert!(drawn.contains(&format!(":{line}:{col}]")), "{drawn}");
            assert!(drawn.contains(&p.problem.message), "{drawn}");
        }
    }
}

#[test]
fn shipped_recipes_lint_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes");
    let mut n = 0;
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path().join("recipe.toml");
        if !path.exists() {
            continue;
        }
        n += 1;
        let loaded = recipe::load(&path).unwrap();
        let problems: Vec<String> = loaded.problems.iter().map(|p| p.short()).collect();
        assert!(
            problems.is_empty(),
            "{}:\n{}",
            path.display(),
            problems.join("\n")
        );
        assert!(loaded.recipe.is_some());
    }
    assert!(n >= 1, "no recipes found");
}

#[test]
fn garbage_never_panics() {
    // Truncations of a real recipe at every byte: each is either valid or
    // reported, never a panic.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes/xivo/recipe.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    for cut in (0..text.len()).step_by(7) {
        if !text.is_char_boundary(cut) {
            continue;
        }
        let loaded = recipe::load_str(&path, &text[..cut]);
        assert!(
            loaded.recipe.is_some() || !loaded.problems.is_empty(),
            "cut at {cut}"
        );
    }
}

// --- undo = "none" and the `no-undo` warning ---------------------------------

/// A recipe with one step: `step` is its body after `id`.
fn one_step(step: &str) -> String {
    format!(
        "[product]\nname = \"demo\"\nversion = {{ package = \"demo\" }}\n\n\
         [[paths]]\nid = \"main\"\nfrom = \"1.*\"\nto = \"2.0\"\n\n\
         [[steps]]\nid = \"s\"\n{step}\n"
    )
}

/// Every problem as `severity code at line:col`.
fn problems_of(text: &str) -> Vec<String> {
    recipe::load_str(Path::new("r.toml"), text)
        .problems
        .iter()
        .map(|p| {
            let (line, col) = p.line_col();
            format!(
                "{:?} {} at {line}:{col}",
                p.problem.severity, p.problem.code
            )
        })
        .collect()
}

const EXEC_IN_STOP: &str =
    "phase = \"stop\"\nexec = { argv = [\"systemctl\", \"mask\", \"demo\"] }";

#[test]
fn a_step_that_changes_the_host_without_undo_warns_at_the_step() {
    let text = one_step(EXEC_IN_STOP);
    assert_eq!(problems_of(&text), ["Warning no-undo at 10:1"]);
    let loaded = recipe::load_str(Path::new("r.toml"), &text);
    let p = &loaded.problems[0].problem;
    assert!(
        p.message.contains("step `s` (exec) changes the host"),
        "{}",
        p.message
    );
    let help = p.help.as_deref().unwrap_or_default();
    assert!(
        help.contains("undo = {")
            && help.contains("undo = \"none\"")
            && help.contains("undo_reason"),
        "{help}"
    );
    // A warning: the recipe is still usable.
    assert!(loaded.recipe.is_some());
}

#[test]
fn undo_none_with_a_reason_is_a_clean_step() {
    let text = one_step(&format!(
        "{EXEC_IN_STOP}\nundo = \"none\"\nundo_reason = \"masked for good: the old release must not start again\""
    ));
    assert_eq!(problems_of(&text), Vec::<String>::new());
    let r = recipe::load_str(Path::new("r.toml"), &text).recipe.unwrap();
    assert!(r.steps[0].undo.is_none());
    assert_eq!(
        r.steps[0].no_undo.as_deref(),
        Some("masked for good: the old release must not start again")
    );
}

#[test]
fn undo_none_needs_a_reason_and_a_reason_needs_undo_none() {
    let text = one_step(&format!("{EXEC_IN_STOP}\nundo = \"none\""));
    assert_eq!(problems_of(&text), ["Error undo-reason at 14:8"]);
    let loaded = recipe::load_str(Path::new("r.toml"), &text);
    assert!(loaded.recipe.is_none());
    let p = &loaded.problems[0];
    assert!(p.short().contains(":14:8: "), "{}", p.short());
    assert!(
        p.problem
            .help
            .as_deref()
            .unwrap_or_default()
            .contains("undo_reason = \"")
    );

    let text = one_step(&format!(
        "{EXEC_IN_STOP}\nundo = \"none\"\nundo_reason = \" \""
    ));
    assert_eq!(problems_of(&text), ["Error undo-reason at 15:15"]);

    let text = one_step(&format!(
        "{EXEC_IN_STOP}\nundo = {{ exec = {{ argv = [\"systemctl\", \"unmask\", \"demo\"] }} }}\nundo_reason = \"why\""
    ));
    assert_eq!(problems_of(&text), ["Error undo-reason at 15:1"]);

    let text = one_step(&format!("{EXEC_IN_STOP}\nundo = \"nothing\""));
    assert_eq!(problems_of(&text), ["Error unknown-value at 14:8"]);
}

#[test]
fn steps_that_change_nothing_or_have_an_undo_do_not_warn() {
    for step in [
        // Changes nothing.
        "phase = \"verify\"\nwait = { until = { tcp = \"127.0.0.1:80\" }, timeout = \"1m\" }",
        "phase = \"post\"\ngate = { message = \"look\" }",
        "phase = \"configure\"\nreboot = { reason = \"new kernel\" }",
        "phase = \"start\"\nservice = { op = \"restart\", units = [\"demo\"] }",
        "phase = \"backup\"\ndb = { op = \"backup\", engine = \"postgresql\", database = \"demo\", dump = \"/tmp/d\", credentials = { os_user = \"postgres\" } }",
        // `prepare` changes nothing by design: its commands say so.
        "phase = \"prepare\"\nexec = { argv = [\"true\"], read_only = true }",
        "phase = \"post\"\nexec = { argv = [\"true\"], read_only = true }",
        // An undo of the recipe's, or a built-in one.
        "phase = \"stop\"\nexec = { argv = [\"true\"] }\nundo = { exec = { argv = [\"true\"] } }",
        "phase = \"stop\"\nservice = { op = \"stop\", units = [\"demo\"] }",
        "phase = \"configure\"\nfile = { op = \"ensure_line\", path = \"/etc/demo.conf\", line = \"a=1\" }",
        // The point of no return is never undone.
        "phase = \"install\"\nexec = { argv = [\"true\"] }\npoint_of_no_return = \"no downgrade\"",
    ] {
        assert_eq!(problems_of(&one_step(step)), Vec::<String>::new(), "{step}");
    }
}

#[test]
fn undo_none_where_no_undo_could_run_is_refused() {
    // A wait changes nothing: there is nothing to say.
    let text = one_step(
        "phase = \"verify\"\nwait = { until = { tcp = \"127.0.0.1:80\" }, timeout = \"1m\" }\nundo = \"none\"\nundo_reason = \"r\"",
    );
    assert_eq!(problems_of(&text), ["Error undo-kind at 14:8"]);
    // A built-in undo runs whatever the recipe says.
    let text = one_step(
        "phase = \"stop\"\nservice = { op = \"stop\", units = [\"demo\"] }\nundo = \"none\"\nundo_reason = \"r\"",
    );
    assert_eq!(problems_of(&text), ["Error builtin-undo at 14:8"]);
    // The point of no return takes no undo of any form.
    let text = one_step(
        "phase = \"install\"\nexec = { argv = [\"true\"] }\npoint_of_no_return = \"no downgrade\"\nundo = \"none\"\nundo_reason = \"r\"",
    );
    assert_eq!(problems_of(&text), ["Error point-of-no-return at 15:8"]);
}

#[test]
fn the_plan_carries_the_reason_in_its_json_and_its_text() {
    use hoist::plan::{Outcome, resolve};
    use hoist::recipe::facts::{Facts, Value};
    use hoist::version::Version;

    let text = one_step(&format!(
        "{EXEC_IN_STOP}\nundo = \"none\"\nundo_reason = \"masked for good\"\n\n\
         [[steps]]\nid = \"t\"\nphase = \"stop\"\nexec = {{ argv = [\"true\"] }}\nundo = {{ exec = {{ argv = [\"true\"] }} }}"
    ));
    let r = recipe::load_str(Path::new("r.toml"), &text).recipe.unwrap();
    let mut facts = Facts::default();
    facts.set("current", Value::Version(Version::parse("1.0").unwrap()));
    let Outcome::Plan(p) = resolve(&r, &facts, None).unwrap() else {
        panic!("no plan")
    };
    let json = serde_json::to_value(&*p).unwrap();
    assert_eq!(json["steps"][0]["no_undo"], "masked for good");
    // Left out when unset, so plans without it hash as before.
    assert!(json["steps"][1].get("no_undo").is_none(), "{json}");
    let back: hoist::plan::Plan = serde_json::from_value(json).unwrap();
    assert_eq!(back.steps[0].no_undo.as_deref(), Some("masked for good"));
    assert_eq!(back.compute_hash(), p.hash);

    let shown = p.render();
    assert!(shown.contains("[no undo, timeout 1h]"), "{shown}");
    assert!(shown.contains("undo: none (masked for good)"), "{shown}");
}

#[test]
fn a_wait_shorter_than_the_default_interval_is_fine_and_a_given_interval_is_checked() {
    // No interval given: the default (2 s) is cut to the 1 s timeout.
    let quick =
        "phase = \"verify\"\nwait = { until = { tcp = \"127.0.0.1:80\" }, timeout = \"1s\" }";
    assert_eq!(problems_of(&one_step(quick)), Vec::<String>::new());
    let slow = "phase = \"verify\"\nwait = { until = { tcp = \"127.0.0.1:80\" }, timeout = \"1s\", interval = \"5s\" }";
    assert_eq!(problems_of(&one_step(slow)), ["Error bad-interval at 13:8"]);
    let loaded = recipe::load_str(Path::new("r.toml"), &one_step(slow));
    let said = loaded.problems[0].problem.message.clone();
    assert!(said.contains("(5s)") && said.contains("(1s)"), "{said}");
}

#[test]
fn a_final_path_another_starts_from_is_flagged_as_a_forgotten_stop() {
    let text = "[product]\nname = \"demo\"\nversion = { package = \"demo\" }\n\n\
                [[paths]]\nid = \"to-16.7\"\nfrom = \">= 16.3, < 16.7.8\"\nto = \"16.7.8\"\n\n\
                [[paths]]\nid = \"to-17\"\nfrom = \">= 16.7.8, < 17\"\nto = \"17.0.0\"\n";
    assert_eq!(problems_of(text), ["Warning not-a-stop at 5:1"]);
    let fixed = text.replace("to = \"16.7.8\"\n", "to = \"16.7.8\"\nstop = true\n");
    assert_eq!(problems_of(&fixed), Vec::<String>::new());
}

// --- an archive key trusted before apt reads the archive ---------------------

/// The shipped XiVO recipe with its key step moved to `pre`: after the
/// plan's refresh and after `refresh-indexes` and `download`, the order it
/// had before (seed 000: the key comes "before upgrading").
fn xivo_with_key_in_pre() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes/xivo/recipe.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let from = "id = \"trust-new-archive-key\"\nphase = \"prepare\"";
    assert!(text.contains(from), "the key step moved");
    text.replace(from, "id = \"trust-new-archive-key\"\nphase = \"pre\"")
}

#[test]
fn a_key_trusted_after_apt_reads_the_archive_warns() {
    let text = xivo_with_key_in_pre();
    let loaded = recipe::load_str(Path::new("r.toml"), &text);
    let warned: Vec<_> = loaded
        .problems
        .iter()
        .filter(|p| p.problem.code == "key-after-refresh")
        .collect();
    assert_eq!(warned.len(), 1, "{:?}", problems_of(&text));
    let p = &warned[0].problem;
    assert!(
        p.message.contains("step `trust-new-archive-key`")
            && p.message
                .contains("step `refresh-indexes` reads the archive before it"),
        "{}",
        p.message
    );
    // The key step itself is where it points.
    let at = &text[p.span.start..];
    assert!(
        at.starts_with("[[steps]]\nid = \"trust-new-archive-key\""),
        "{}",
        &at[..at.len().min(80)]
    );
    assert!(loaded.recipe.is_some(), "a warning only");
}

#[test]
fn a_key_in_prepare_is_allowed_a_source_switch_is_not() {
    let recipe = |step: &str| {
        format!(
            "[product]\nname = \"demo\"\nversion = {{ package = \"demo\" }}\n\
             candidate = {{ package = \"demo\", refresh = true }}\n\n\
             [[paths]]\nid = \"main\"\nfrom = \"1.*\"\nto = \"2.0\"\n\n\
             [[steps]]\nid = \"k\"\nphase = \"prepare\"\n{step}\n\n\
             [[steps]]\nid = \"u\"\nphase = \"prepare\"\npackages = {{ op = \"update\" }}\n"
        )
    };
    let key = "repo = { op = \"key\", file = \"/etc/apt/sources.list.d/demo.list\", key = { file = \"demo.gpg\", keyring = \"/etc/apt/keyrings/demo.gpg\" } }";
    assert_eq!(problems_of(&recipe(key)), Vec::<String>::new());
    let switch = "repo = { op = \"switch\", file = \"/etc/apt/sources.list.d/demo.list\", from = \"1\", to = \"2\" }";
    assert_eq!(
        problems_of(&recipe(switch)),
        ["Error disruptive-in-prepare at 11:1"]
    );
    // Not in `prepare`: the plan's refresh reads the archive without it.
    let later = recipe(key).replacen("phase = \"prepare\"", "phase = \"pre\"", 1);
    assert_eq!(problems_of(&later), ["Warning key-after-refresh at 11:1"]);
}
