//! `hoist-testbed`: the harness from a shell, for trying things by hand and
//! for the signal tests.
//!
//! ```text
//! hoist-testbed up [--for SECONDS] NAME[:bullseye]...   boot hosts, print how to reach them,
//!                                                         hold until SIGINT/SIGTERM or the time
//! hoist-testbed images                                    build (or find) the cached images
//! hoist-testbed sweep                                     remove runs whose process died
//! ```

use std::time::{Duration, Instant};

use hoist_testbed::{Image, ImageSpec, Suite, Testbed, cache_dir, disk_usage};

const USAGE: &str = "usage: hoist-testbed up [--for SECONDS] NAME[:bullseye]... | images | sweep";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("up") => up(&args[1..]),
        Some("images") => images(),
        Some("sweep") => {
            hoist_testbed::sweep_dead_runs();
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("hoist-testbed: {e}");
        std::process::exit(1);
    }
}

fn up(args: &[String]) -> hoist_testbed::Result<()> {
    let mut hold = Duration::from_secs(3600);
    let mut builder = Testbed::builder();
    let mut it = args.iter();
    let mut any = false;
    while let Some(a) = it.next() {
        if a == "--for" {
            let secs = it.next().and_then(|s| s.parse().ok()).unwrap_or(3600);
            hold = Duration::from_secs(secs);
            continue;
        }
        let (name, suite) = match a.split_once(':') {
            None => (a.as_str(), Suite::Bookworm),
            Some((n, "bookworm")) => (n, Suite::Bookworm),
            Some((n, "bullseye")) => (n, Suite::Bullseye),
            Some(_) => {
                eprintln!("{USAGE}");
                std::process::exit(2);
            }
        };
        builder = builder.host(name, suite);
        any = true;
    }
    if !any {
        eprintln!("{USAGE}");
        std::process::exit(2);
    }
    let t = Instant::now();
    let tb = builder.start()?;
    println!("booted in {:?}", t.elapsed());
    for h in tb.hosts() {
        println!(
            "{} {} ({}): ssh -F {} {}",
            h.name(),
            h.addr(),
            h.suite(),
            tb.ssh_config().display(),
            h.name()
        );
    }
    // The signal tests wait for this line.
    println!("READY {}", tb.run_id());
    let until = Instant::now() + hold;
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
    }
    tb.teardown()
}

fn images() -> hoist_testbed::Result<()> {
    // The two host images, and the OS mirror WalT hosts upgrade from.
    let specs = [
        ImageSpec::new(Suite::Bookworm),
        ImageSpec::new(Suite::Bullseye),
        hoist_testbed::products::walt::os_mirror_image(),
    ];
    for spec in specs {
        let t = Instant::now();
        let img = Image::ensure(&spec)?;
        println!(
            "{}: {} ({}, {} MiB, {:?})",
            spec.suite,
            img.dir.display(),
            if img.built_in.is_some() {
                "built"
            } else {
                "cached"
            },
            disk_usage(&img.dir)? >> 20,
            t.elapsed()
        );
    }
    println!("cache: {}", cache_dir().display());
    Ok(())
}
