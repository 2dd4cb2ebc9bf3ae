//! Which files an Ansible inventory is made of, and which plugin reads
//! each, as ansible-core's `InventoryManager` decides:
//!
//! - a directory: every entry in name order, subdirectories too, except
//!   hidden ones, `group_vars`, `host_vars`, `vars_plugins`, and names
//!   ending in `.pyc .pyo .swp .bak ~ .rpm .md .txt .rst .orig .ini .cfg
//!   .retry` (Ansible's defaults);
//! - a file: `.yml`/`.yaml` by the `yaml` plugin; no extension or `.json`
//!   first as YAML/JSON (a mapping of groups), else as INI; anything else
//!   as INI. A `.json` with a `_meta` key is `ansible-inventory --list`'s
//!   JSON (what an inventory script prints), which hoist reads too.
//! - then `group_vars/` and `host_vars/` beside the source (in it, for a
//!   directory): for a name, the first of `NAME`, `NAME.yml`,
//!   `NAME.yaml`, `NAME.json`; a directory there gives all its files
//!   (recursively, in name order, hidden and `~` ones left out, with no
//!   extension or one of those three), later files overriding earlier.
//!
//! What Ansible would run (inventory scripts, inventory plugins' configs)
//! and what it only warns about and skips (a file no plugin reads) are
//! refused: hoist reads an inventory whole or not at all.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::model::{Model, Origin, VarMap, refuse};
use super::{InventoryError, ini, json, plugins, yaml};
use crate::output::diag::{Located, Problem, Source};

const IGNORED_ENDINGS: [&str; 13] = [
    ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".ini", ".cfg",
    ".retry",
];

/// Python's `os.path.splitext(name)[1]`: leading dots are not an
/// extension.
pub fn py_ext(name: &str) -> &str {
    let base = name.rsplit('/').next().unwrap_or(name);
    let trimmed = base.trim_start_matches('.');
    match trimmed.rfind('.') {
        Some(i) => &trimmed[i..],
        None => "",
    }
}

fn io(path: &Path, error: std::io::Error) -> InventoryError {
    InventoryError::Io {
        path: path.to_path_buf(),
        error,
    }
}

pub fn located(model: &Model, refusal: &(Origin, Problem)) -> InventoryError {
    let (origin, problem) = refusal;
    InventoryError::Invalid(vec![Located {
        problem: problem.clone(),
        file: model.file(origin),
    }])
}

/// Reads an Ansible inventory (a file or a directory) and the variable
/// directories beside it.
pub fn read(path: &Path) -> Result<Model, InventoryError> {
    let mut model = Model::new();
    let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
    let basedir = if meta.is_dir() {
        read_dir(&mut model, path)?;
        path.to_path_buf()
    } else {
        read_file(&mut model, path)?;
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    };
    model.reconcile().map_err(|r| located(&model, &r))?;
    vars_dirs(&mut model, &basedir)?;
    Ok(model)
}

/// Reads one file's text as Ansible would its only source, without the
/// variable directories (for texts that are not on disk).
pub fn read_text(path: &Path, text: &str) -> Result<Model, InventoryError> {
    let mut model = Model::new();
    parse_text(&mut model, path, text, false)?;
    model.reconcile().map_err(|r| located(&model, &r))?;
    Ok(model)
}

fn read_dir(model: &mut Model, dir: &Path) -> Result<(), InventoryError> {
    let mut names: Vec<OsString> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(|e| io(dir, e))?;
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    for name in names {
        let n = name.to_string_lossy();
        if n.starts_with('.')
            || matches!(n.as_ref(), "host_vars" | "group_vars" | "vars_plugins")
            || IGNORED_ENDINGS.iter().any(|e| n.ends_with(e))
        {
            continue;
        }
        let path = dir.join(&name);
        let meta = std::fs::metadata(&path).map_err(|e| io(&path, e))?;
        if meta.is_dir() {
            read_dir(model, &path)?;
        } else {
            if py_ext(&n) == ".toml" {
                let file = model.add_file(Source::new(&path, ""));
                return Err(located(
                    model,
                    &refuse(
                        &Origin { file, span: 0..0 },
                        "a .toml file in an Ansible inventory directory: hoist reads TOML inventories as its own format, given alone",
                        "move it out of the directory, or give it with -i alone",
                    ),
                ));
            }
            read_file(model, &path)?;
        }
    }
    Ok(())
}

const VAULT: &str = "$ANSIBLE_VAULT";

fn file_text(path: &Path) -> Result<String, InventoryError> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    String::from_utf8(bytes).map_err(|e| {
        io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })
}

/// A whole file encrypted by `ansible-vault`.
fn vault_file(model: &mut Model, path: &Path, text: String) -> InventoryError {
    let file = model.add_file(Source::new(path, text));
    located(
        model,
        &refuse(
            &Origin {
                file,
                span: 0..VAULT.len(),
            },
            "a vault-encrypted file: hoist does not decrypt vault files",
            "give it decrypted (`ansible-vault view`), or leave it out",
        ),
    )
}

fn read_file(model: &mut Model, path: &Path) -> Result<(), InventoryError> {
    let text = file_text(path)?;
    let executable = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
    };
    if text.starts_with(VAULT) {
        return Err(vault_file(model, path, text));
    }
    if executable && text.starts_with("#!") {
        let file = model.add_file(Source::new(path, text));
        return Err(located(
            model,
            &refuse(
                &Origin { file, span: 0..2 },
                "an inventory script: hoist does not run inventory scripts",
                "save its output (`ansible-inventory -i SCRIPT --list > inventory.json`) and give that",
            ),
        ));
    }
    parse_text(model, path, &text, true)
}

/// JSON first, then YAML, as Ansible's loader does.
fn load_node(text: &str) -> Result<Option<yaml::Node>, (std::ops::Range<usize>, String)> {
    match json::load(text) {
        json::Json::Value(v) => Ok(Some(v)),
        json::Json::Refused(at, why) => Err((at, why)),
        json::Json::NotJson => yaml::load(text),
    }
}

fn parse_text(
    model: &mut Model,
    path: &Path,
    text: &str,
    _on_disk: bool,
) -> Result<(), InventoryError> {
    let file = model.add_file(Source::new(path, text));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = py_ext(&name);
    let result = match ext {
        ".yml" | ".yaml" | ".json" => match load_node(text) {
            Err((span, why)) => Err(refuse(&Origin { file, span }, why, "valid YAML or JSON")),
            Ok(Some(root)) if ext == ".json" && is_list_json(&root) => {
                plugins::list_inventory(model, file, &root)
            }
            Ok(root) => plugins::yaml_inventory(model, file, root),
        },
        "" => match load_node(text) {
            Ok(Some(root)) if is_group_mapping(&root) => {
                plugins::yaml_inventory(model, file, Some(root))
            }
            // Not an inventory in YAML: Ansible's INI plugin is next.
            _ => ini::parse(model, file, text),
        },
        _ => ini::parse(model, file, text),
    };
    result.map_err(|r| located(model, &r))
}

fn is_list_json(root: &yaml::Node) -> bool {
    matches!(&root.kind, yaml::Kind::Map(m) if m.iter().any(|(k, _)| plugins::text(k) == Some("_meta")))
}

/// What Ansible's `yaml` plugin accepts before it reads anything: a
/// non-empty mapping without a `plugin` key.
fn is_group_mapping(root: &yaml::Node) -> bool {
    match &root.kind {
        yaml::Kind::Map(m) => {
            !m.is_empty()
                && !m
                    .iter()
                    .any(|(k, v)| plugins::text(k) == Some("plugin") && !v.is_falsy())
        }
        _ => false,
    }
}

/// `group_vars/` and `host_vars/` in `basedir`.
fn vars_dirs(model: &mut Model, basedir: &Path) -> Result<(), InventoryError> {
    for (sub, groups) in [("group_vars", true), ("host_vars", false)] {
        let dir = basedir.join(sub);
        let Ok(meta) = std::fs::metadata(&dir) else {
            continue;
        };
        if !meta.is_dir() {
            let file = model.add_file(Source::new(&dir, ""));
            model.warn(
                &Origin { file, span: 0..0 },
                format!("found {sub} that is not a directory, skipping"),
            );
            continue;
        }
        let entries: HashSet<OsString> = std::fs::read_dir(&dir)
            .map_err(|e| io(&dir, e))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        let count = if groups {
            model.groups.len()
        } else {
            model.hosts.len()
        };
        for i in 0..count {
            let name = if groups {
                model.groups[i].name.clone()
            } else {
                model.hosts[i].name.clone()
            };
            if name.starts_with('/') {
                continue;
            }
            let files = find_vars_files(&dir, &name, &entries).map_err(|e| io(&dir, e))?;
            let mut vars = VarMap::new();
            for f in files {
                load_vars_file(model, &f, &mut vars)?;
            }
            if groups {
                model.groups[i].file_vars = vars;
            } else {
                model.hosts[i].file_vars = vars;
            }
        }
    }
    Ok(())
}

const VARS_EXTS: [&str; 4] = ["", ".yml", ".yaml", ".json"];

/// ansible-core's `DataLoader.find_vars_files`.
fn find_vars_files(
    dir: &Path,
    name: &str,
    entries: &HashSet<OsString>,
) -> std::io::Result<Vec<PathBuf>> {
    for ext in VARS_EXTS {
        let candidate = format!("{name}{ext}");
        let listed = entries.contains(&OsString::from(&candidate));
        let path = dir.join(&candidate);
        // Names with a `/` are paths below the directory: ask the disk.
        if !listed && !candidate.contains('/') {
            continue;
        }
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => return dir_vars_files(&path),
            Ok(_) => return Ok(vec![path]),
            Err(_) => continue,
        }
    }
    Ok(Vec::new())
}

fn dir_vars_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut names: Vec<OsString> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    let mut out = Vec::new();
    for name in names {
        let n = name.to_string_lossy();
        if n.starts_with('.') || n.ends_with('~') {
            continue;
        }
        let ext = py_ext(&n);
        let path = dir.join(&name);
        let meta = std::fs::metadata(&path)?;
        if meta.is_dir() && ext.is_empty() {
            out.extend(dir_vars_files(&path)?);
        } else if meta.is_file() && VARS_EXTS.contains(&ext) {
            out.push(path);
        }
    }
    Ok(out)
}

fn load_vars_file(model: &mut Model, path: &Path, into: &mut VarMap) -> Result<(), InventoryError> {
    let text = file_text(path)?;
    if text.starts_with(VAULT) {
        return Err(vault_file(model, path, text));
    }
    let file = model.add_file(Source::new(path, text.as_str()));
    let root = match load_node(&text) {
        Ok(r) => r,
        Err((span, why)) => {
            return Err(located(
                model,
                &refuse(&Origin { file, span }, why, "valid YAML or JSON"),
            ));
        }
    };
    let Some(root) = root.filter(|r| !r.is_falsy()) else {
        return Ok(());
    };
    let yaml::Kind::Map(pairs) = &root.kind else {
        return Err(located(
            model,
            &refuse(
                &Origin {
                    file,
                    span: root.span.clone(),
                },
                format!("a variables file holds a mapping, not {}", root.type_name()),
                "expected `name: value` lines",
            ),
        ));
    };
    for (name, var) in plugins::vars_of(pairs, file).map_err(|r| located(model, &r))? {
        into.insert(name, var);
    }
    Ok(())
}
