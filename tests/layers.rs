//! Imports run down the flow only. The tree is being regrouped into layers
//! (docs/ARCHITECTURE.md); each layer that has its folder is checked here:
//! `sys/` is the bottom one (with the exit codes, `sys::exit`) and imports
//! nothing else of the crate; `recipe/` (with the fact types its conditions
//! and templates name) imports `sys`, `version` and `actions` (each kind
//! parses its own table); `host/` imports the recipe
//! and what is below it; `run/` (the engine, its journal, states and lock)
//! imports the plan, the actions it runs and what is below them; `output/`
//! (what hoist shows and the typed messages between processes, which every
//! layer may use) imports only `sys`; `statedir/` (the state directory's trust, free
//! space and damage) imports `sys`; `actions/` (the kinds, their context
//! `ctx` and `saved` files) imports the recipe, the host and what is below
//! them (the journal reaches actions only through `ctx::Recorder`, which it
//! implements); `commands/`
//! (the host's commands, the two the fleet's controller runs on a host among
//! them) imports every layer below the command line but the fleet.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Each `crate::` path in `text`, with the line it starts on: `crate::a::b`
/// gives `a::b`; a group, `crate::{a, b::c}`, gives `a` and `b::c`.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let path_char = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(i) = text[at..].find("crate::") {
        let start = at + i + "crate::".len();
        let line = text[..start].matches('\n').count() + 1;
        let after = &text[start..];
        if let Some(group) = after.strip_prefix('{') {
            // Up to the matching brace; each item's own path, nested groups
            // cut at their brace (their prefix names the module).
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(group.len(), |(j, _)| j);
            let mut item_depth = 0;
            let mut item = String::new();
            for c in group[..end].chars().chain([',']) {
                match c {
                    '{' => item_depth += 1,
                    '}' => item_depth -= 1,
                    ',' if item_depth == 0 => {
                        let name: String =
                            item.trim().chars().take_while(|&c| path_char(c)).collect();
                        let name = name.trim_end_matches(':').to_string();
                        if !name.is_empty() {
                            found.push((line, name));
                        }
                        item.clear();
                    }
                    _ if item_depth == 0 => item.push(c),
                    _ => {}
                }
            }
        } else {
            let name: String = after.chars().take_while(|&c| path_char(c)).collect();
            let name = name.trim_end_matches(':').to_string();
            if !name.is_empty() {
                found.push((line, name));
            }
        }
        at = start;
    }
    found
}

/// `file:line: path` of each use of `crate::X` where X is not allowed.
fn up_imports(files: &[PathBuf], allowed: &[&str]) -> Vec<String> {
    up_imports_but(files, allowed, &mut [])
}

/// An import from a layer to one above it that stays, named: the file (the
/// end of its path) and the imported path (its start, after `crate::`).
struct Exception {
    file: &'static str,
    import: &'static str,
    /// How many imports it covered: an exception nothing uses any more must
    /// go.
    used: usize,
}

const fn except(file: &'static str, import: &'static str) -> Exception {
    Exception {
        file,
        import,
        used: 0,
    }
}

/// Like `up_imports`, but an import an exception names is counted in it
/// instead of being found.
fn up_imports_but(
    files: &[PathBuf],
    allowed: &[&str],
    exceptions: &mut [Exception],
) -> Vec<String> {
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        for (line, path) in crate_paths(&text) {
            let top = path.split("::").next().unwrap_or_default();
            if allowed.contains(&top) {
                continue;
            }
            let named = exceptions.iter_mut().find(|e| {
                f.ends_with(e.file)
                    && (path == e.import || path.starts_with(&format!("{}::", e.import)))
            });
            match named {
                Some(e) => e.used += 1,
                None => found.push(format!("{}:{line}: crate::{path}", f.display())),
            }
        }
    }
    found
}

/// Every `.rs` file of the layer `src/<dir>`, checked: nothing imported but
/// `allowed` and the exceptions, each of which is still used. Returns how
/// many up-imports the exceptions cover.
fn check_layer(
    dir: &str,
    min_files: usize,
    allowed: &[&str],
    exceptions: &mut [Exception],
) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    // A layer that is one file so far (`plan.rs`, `version.rs`).
    let files = if root.is_file() {
        vec![root]
    } else {
        sources(&root)
    };
    assert!(files.len() >= min_files, "{files:?}");
    let found = up_imports_but(&files, allowed, exceptions);
    assert!(
        found.is_empty(),
        "imports from above `{dir}`:\n{}",
        found.join("\n")
    );
    for e in exceptions.iter() {
        assert!(
            e.used > 0,
            "the exception for {} importing crate::{} is used no more: remove it",
            e.file,
            e.import
        );
    }
    exceptions.iter().map(|e| e.used).sum()
}

#[test]
fn the_bottom_layer_imports_nothing_above_it() {
    check_layer("sys", 4, &["sys"], &mut []);
}

/// The output edge (`output::out`, `output::ui`, `output::diag`): every layer
/// may say what it does and show the problems it finds.
const OUTPUT: &str = "output";

#[test]
fn the_recipe_imports_its_actions_and_what_is_below_it() {
    // `actions`: each action kind parses and checks its own table, the one
    // pair of layers that import each other.
    let allowed = ["recipe", "sys", "version", "actions", OUTPUT];
    check_layer("recipe", 10, &allowed, &mut []);
}

#[test]
fn the_host_imports_only_the_recipe_and_what_is_below_it() {
    let allowed = ["host", "recipe", "sys", "version", OUTPUT];
    check_layer("host", 3, &allowed, &mut []);
}

#[test]
fn the_run_imports_the_plan_the_actions_and_what_is_below_them() {
    // `statedir`: the state directory's trust and free space; `actions`:
    // what the engine runs, through the actions' context (`actions::ctx`).
    let allowed = [
        "run", "sys", "version", "recipe", "host", "plan", "statedir", "actions", OUTPUT,
    ];
    check_layer("run", 8, &allowed, &mut []);
}

#[test]
fn the_output_edge_imports_only_what_is_below_everything() {
    check_layer("output", 5, &[OUTPUT, "sys"], &mut []);
}

#[test]
fn the_state_directory_imports_only_the_bottom_layer() {
    check_layer("statedir", 3, &["statedir", "sys", OUTPUT], &mut []);
}

#[test]
fn the_actions_import_the_recipe_and_what_is_below_it() {
    // `recipe`: the pair of layers that import each other (each kind parses
    // its own table). What an action reads off the host (a package's
    // installed version) is in `sys::pkgdb`, as the host's probes read it.
    let allowed = ["actions", "recipe", "sys", "version", OUTPUT];
    check_layer("actions", 30, &allowed, &mut []);
}

#[test]
fn the_host_commands_import_neither_the_command_line_nor_the_fleet() {
    let allowed = [
        "commands", "run", "actions", "plan", "host", "recipe", "statedir", "sys", "version",
        OUTPUT,
    ];
    check_layer("commands", 7, &allowed, &mut []);
}

#[test]
fn versions_and_the_plan_import_only_what_is_below_them() {
    check_layer("version.rs", 1, &["version"], &mut []);
    let allowed = [
        "plan", "recipe", "host", "actions", "sys", "version", OUTPUT,
    ];
    check_layer("plan.rs", 1, &allowed, &mut []);
    check_layer("ssh.rs", 1, &["ssh", "sys", OUTPUT], &mut []);
}

#[test]
fn the_fleet_imports_neither_the_command_line_nor_the_host_commands() {
    // The controller drives hosts through their own commands, over a
    // transport: it never calls them in process.
    let allowed = [
        "fleet", "run", "actions", "plan", "host", "recipe", "statedir", "sys", "version", "ssh",
        OUTPUT,
    ];
    check_layer("fleet", 20, &allowed, &mut []);
}

/// The top-level module a source file belongs to (`src/fleet/run.rs` ->
/// `fleet`, `src/plan.rs` -> `plan`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

#[test]
fn the_import_graph_has_no_cycle_but_the_recipe_and_its_actions() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut edges: std::collections::BTreeSet<(String, String)> = Default::default();
    for f in sources(&src) {
        let from = module_of(&src, &f);
        let text = std::fs::read_to_string(&f).unwrap();
        for (_, path) in crate_paths(&text) {
            let to = path.split("::").next().unwrap_or_default().to_string();
            if to != from && !to.is_empty() {
                edges.insert((from.clone(), to));
            }
        }
    }
    // Modules that reach each other both ways, by a walk from each.
    let reach = |start: &str| {
        let mut seen = std::collections::BTreeSet::new();
        let mut todo = vec![start.to_string()];
        while let Some(m) = todo.pop() {
            for (a, b) in &edges {
                if *a == m && seen.insert(b.clone()) {
                    todo.push(b.clone());
                }
            }
        }
        seen
    };
    let modules: std::collections::BTreeSet<String> = edges
        .iter()
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect();
    let mut cyclic = Vec::new();
    for m in &modules {
        if reach(m).contains(m) {
            cyclic.push(m.clone());
        }
    }
    assert_eq!(
        cyclic,
        ["actions", "recipe"],
        "modules on an import cycle (edges: {edges:?})"
    );
}

#[test]
fn the_check_finds_an_import_from_above() {
    let dir = std::env::temp_dir().join(format!("hoist-layers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("x.rs");
    std::fs::write(
        &f,
        "use crate::sys::fsutil;\nfn f() { crate::run::stopping(); }\n",
    )
    .unwrap();
    let found = up_imports(&[f], &["sys"]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains(":2:"), "{found:?}");
}

#[test]
fn the_check_reads_grouped_imports_and_exceptions() {
    let text = "use crate::{\n    sys::fsutil,\n    run::{self, Engine},\n};\nuse crate::recipe::facts::{Facts, Value};\n";
    assert_eq!(
        crate_paths(text),
        [
            (1, "sys::fsutil".to_string()),
            (1, "run".to_string()),
            (5, "recipe::facts".to_string())
        ]
    );
    let dir = std::env::temp_dir().join(format!("hoist-layers-group-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("x.rs");
    std::fs::write(&f, text).unwrap();
    let mut exceptions = [except("x.rs", "recipe::facts"), except("x.rs", "plan")];
    let found = up_imports_but(&[f], &["sys"], &mut exceptions);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].ends_with(":1: crate::run"), "{found:?}");
    assert_eq!((exceptions[0].used, exceptions[1].used), (1, 0));
}
