//! Imports run down the flow only. The tree is being regrouped into layers
//! (docs/ARCHITECTURE.md); each layer that has its folder is checked here:
//! `sys/` is the bottom one and imports nothing else of the crate.

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

/// `file:line: text` of each use of `crate::X` where X is not allowed.
fn up_imports(files: &[PathBuf], allowed: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(i) = rest.find("crate::") {
                let after = &rest[i + "crate::".len()..];
                let name: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && !allowed.contains(&name.as_str()) {
                    found.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
                }
                rest = after;
            }
        }
    }
    found
}

#[test]
fn the_bottom_layer_imports_nothing_above_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sys");
    let files = sources(&root);
    assert!(files.len() >= 4, "{files:?}");
    let found = up_imports(&files, &["sys"]);
    assert!(
        found.is_empty(),
        "imports from above `sys`:\n{}",
        found.join("\n")
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
