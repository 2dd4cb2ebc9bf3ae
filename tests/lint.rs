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
