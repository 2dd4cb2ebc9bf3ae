//! Reads an inventory as `hoist fleet` does and says how long it took:
//! `cargo run --release --example read_inventory -- INVENTORY [--json]`.
//! With `--json`, prints each host as `ansible-inventory --list` would
//! show its variables (for comparing by hand). Used by
//! scripts/bench-inventory.

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: read_inventory INVENTORY [--json]");
        std::process::exit(2);
    };
    let json = args.next().as_deref() == Some("--json");
    let start = Instant::now();
    match hoist::fleet::inventory::load(std::path::Path::new(&path)) {
        Ok(inv) => {
            let took = start.elapsed();
            if json {
                let hosts: serde_json::Map<String, serde_json::Value> = inv
                    .hosts
                    .iter()
                    .map(|h| (h.name.clone(), serde_json::json!(h.values)))
                    .collect();
                println!("{}", serde_json::Value::Object(hosts));
            }
            for w in &inv.warnings {
                eprintln!("{w}");
            }
            eprintln!(
                "{} hosts read in {:.3} s",
                inv.hosts.len(),
                took.as_secs_f64()
            );
            // As hoist itself: the inventory lives until the process ends,
            // which frees it at once.
            std::process::exit(0);
        }
        Err(hoist::fleet::inventory::InventoryError::Invalid(problems)) => {
            for p in problems {
                eprintln!("{}", p.short());
            }
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
