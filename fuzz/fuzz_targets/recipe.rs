//! Any text given to the recipe parser and validator gives a recipe or
//! problems, never a panic; a recipe that loads also plans without panic,
//! and every problem renders.
#![no_main]

use std::path::Path;

use hoist::host::facts::{Facts, Value};
use hoist::version::Version;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let loaded = hoist::recipe::load_str(Path::new("fuzz.toml"), text);
    for p in &loaded.problems {
        let _ = p.line_col();
        let _ = p.render();
    }
    if let Some(recipe) = loaded.recipe {
        let mut facts = Facts::default();
        for (name, v) in [("current", "1.0"), ("candidate", "2.0")] {
            if let Ok(v) = Version::parse(v) {
                facts.set(name, Value::Version(v));
            }
        }
        facts.set("roles", Value::List(vec![]));
        if let Ok(hoist::plan::Outcome::Plan(p)) = hoist::plan::resolve(&recipe, &facts, None) {
            let _ = p.render();
        }
    }
    let _ = hoist::version::Range::parse(text);
});
