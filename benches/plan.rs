//! Parsing, validating and planning a recipe of 2,000 steps.
//! Run: `cargo bench --bench plan`.

use std::fmt::Write;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use hoist::recipe::facts::{Facts, Value};
use hoist::version::Version;

const PHASES: [&str; 10] = [
    "pre",
    "stop",
    "backup",
    "install",
    "migrate",
    "configure",
    "start",
    "verify",
    "post",
    "cleanup",
];

/// A recipe with `n` steps of several kinds, a third of them conditional.
fn recipe(n: usize) -> String {
    let mut s = String::from(
        "[product]\nname = \"big\"\nversion = { package = \"big\" }\nroles = [\"a\", \"b\"]\n\n\
         [[facts]]\nname = \"flavour\"\nvalues = [\"x\", \"y\"]\ndefault = \"x\"\n\n\
         [[paths]]\nid = \"old\"\nfrom = \">= 1.0, < 1.5\"\nto = \"1.5\"\nstop = true\n\n\
         [[paths]]\nid = \"main\"\nfrom = \">= 1.5, < 2.0\"\nto = \"2.0\"\n\n",
    );
    for i in 0..n {
        let phase = PHASES[i % PHASES.len()];
        let _ = writeln!(s, "[[steps]]\nid = \"step-{i}\"\nphase = \"{phase}\"");
        match i % 3 {
            0 => s.push_str("when = { flavour = \"x\", from = \">= 1.2\" }\n"),
            1 => s.push_str("when = { any = [{ roles = \"a\" }, { package.foo = \"*\" }] }\n"),
            _ => {}
        }
        match i % 4 {
            0 => { let _ = writeln!(s, "exec = {{ argv = [\"/bin/true\", \"{i}\"] }}"); }
            1 => s.push_str("service = { op = \"restart\", units = [\"a\", \"b\"] }\nundo = { exec = { shell = \"true\" } }\n"),
            2 => s.push_str("file = { op = \"set_key\", path = \"/etc/big.properties\", key = \"k\", value = \"v\" }\n"),
            _ => s.push_str("wait = { until = { tcp = \"127.0.0.1:80\" }, timeout = \"1m\" }\n"),
        }
        s.push('\n');
    }
    s
}

fn bench(c: &mut Criterion) {
    let text = recipe(2000);
    let path = Path::new("big.toml");
    let loaded = hoist::recipe::load_str(path, &text);
    assert!(loaded.problems.is_empty(), "{}", loaded.problems[0].short());
    let r = loaded.recipe.unwrap();
    let mut facts = Facts::default();
    facts.set("current", Value::Version(Version::parse("1.2").unwrap()));
    facts.set("candidate", Value::Version(Version::parse("2.0").unwrap()));
    facts.set("roles", Value::List(vec!["a".into()]));
    facts.set("flavour", Value::Str("x".into()));

    // The floor: the TOML parser alone, for a ratio.
    c.bench_function("toml parse only 2000 steps", |b| {
        b.iter(|| toml::de::DeTable::parse(black_box(&text)).unwrap())
    });
    c.bench_function("load 2000 steps", |b| {
        b.iter(|| hoist::recipe::load_str(path, black_box(&text)))
    });
    c.bench_function("plan 2000 steps x 2 hops", |b| {
        b.iter(|| hoist::plan::resolve(black_box(&r), &facts, None).unwrap())
    });
    c.bench_function("load + plan 2000 steps", |b| {
        b.iter(|| {
            let r = hoist::recipe::load_str(path, black_box(&text))
                .recipe
                .unwrap();
            hoist::plan::resolve(&r, &facts, None).unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
