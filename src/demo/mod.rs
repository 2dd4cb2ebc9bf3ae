//! `hoist demo`: a whole upgrade of an embedded demo product, no root and no
//! network needed.

use clap::Args;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where to set the demo up (default: a new temporary directory).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// Make this step fail, to see the automatic rollback.
    #[arg(long, value_name = "STEP")]
    pub fail_at: Option<String>,
}

#[derive(Args, Debug)]
pub struct InternalArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn main(_args: &DemoArgs) -> u8 {
    eprintln!("hoist: the demo is not built yet");
    2
}

pub fn internal(_args: &InternalArgs) -> u8 {
    eprintln!("hoist: the demo is not built yet");
    2
}
