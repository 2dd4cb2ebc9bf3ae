//! Helpers shared by the end-to-end tests on booted test hosts.
// Each test binary uses a part of them.
#![allow(dead_code)]

use hoist_testbed::Host;

/// Runs a script on the host; its standard output, or a panic naming it.
pub fn sh(h: &Host, script: &str) -> String {
    h.exec(script)
        .unwrap_or_else(|e| panic!("{script}: {e}"))
        .stdout
}

/// Puts this build's hoist on the host as /usr/local/bin/hoist and the
/// recipe at /root/recipe.toml.
pub fn install_hoist(h: &Host, recipe: &str) -> hoist_testbed::Result<()> {
    let binary = std::fs::read(env!("CARGO_BIN_EXE_hoist")).expect("the hoist binary");
    h.write_file("/usr/local/bin/hoist", &binary, 0o755)?;
    h.write_file("/root/recipe.toml", recipe.as_bytes(), 0o644)
}
