fn main() -> std::process::ExitCode {
    // Called as `<product>-upgrade` (a link to hoist): the branded entry
    // point; otherwise hoist's own command line.
    match hoist::branded::product_of_argv0() {
        Some(product) => std::process::ExitCode::from(hoist::branded::main(&product)),
        None => hoist::cli::main(),
    }
}
