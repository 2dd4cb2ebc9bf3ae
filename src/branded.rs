//! A product's own upgrade command (seeds 000 and 001: `xivo-upgrade`,
//! `xivo-upgrade -d`, `xivo-upgrade -f`): the hoist binary invoked through a
//! symlink named `<product>-upgrade` upgrades that product with its bundled
//! recipe, `/usr/share/hoist/recipes/<product>/recipe.toml` (or the one
//! `HOIST_RECIPE` names). A maintainer of another product ships their recipe
//! directory there and a `<product>-upgrade` symlink to hoist.

use std::path::PathBuf;

use clap::Parser;

/// Where products' recipes are installed.
pub const RECIPES: &str = "/usr/share/hoist/recipes";

/// `xivo` when hoist runs as `xivo-upgrade`.
pub fn product_of_argv0() -> Option<String> {
    let argv0 = std::env::args_os().next()?;
    let name = std::path::Path::new(&argv0)
        .file_name()?
        .to_str()?
        .to_string();
    name.strip_suffix("-upgrade")
        .filter(|p| !p.is_empty())
        .map(String::from)
}

#[derive(Parser, Debug)]
#[command(about = "Upgrade this product, the way its maintainers describe it")]
struct Args {
    /// Only download packages: nothing is installed.
    #[arg(short = 'd')]
    download_only: bool,
    /// Force the upgrade: do not ask for confirmation.
    #[arg(short = 'f')]
    force: bool,
    /// Where the journal and logs live.
    #[arg(long, env = "HOIST_STATE_DIR", default_value = "/var/lib/hoist")]
    state_dir: PathBuf,
}

pub fn main(product: &str) -> u8 {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => return crate::output::out::clap_error(&e),
    };
    // It upgrades: a closed output never stops it.
    crate::output::out::set_policy(crate::output::out::Policy::GoOn);
    let recipe = std::env::var_os("HOIST_RECIPE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(RECIPES).join(product));
    let host = crate::cli::HostArgs {
        recipe,
        to: None,
        facts: None,
        fact: Vec::new(),
        role: Vec::new(),
    };
    let run = || -> Result<u8, u8> {
        let recipe = crate::recipe::load_for_command(&host.recipe, false)?;
        let facts = crate::cli::host_facts(&recipe, &host, false)?;
        Ok(crate::commands::upgrade::upgrade(
            crate::commands::upgrade::Request {
                recipe: &recipe,
                facts,
                probed: true,
                to: None,
                options: crate::run::Options {
                    yes: args.force,
                    download_only: args.download_only,
                    no_rollback: false,
                    json: false,
                    branded: true,
                    confirm: Vec::new(),
                },
                skip: Vec::new(),
                state_dir: &args.state_dir,
                rollout: None,
            },
        ))
    };
    run().unwrap_or_else(|code| code)
}
