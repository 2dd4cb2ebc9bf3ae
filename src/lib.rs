//! hoist: safe, automatic, resumable upgrades of server software from
//! declarative recipes. See docs/ARCHITECTURE.md for the flow of data.

// Every line for the admin goes through `output::out`, which never panics and lets
// the command decide what a closed output means.
#![deny(clippy::print_stdout, clippy::print_stderr)]

// First: its macros (`outln!`, `out!`, `errln!`, from `output::out`) are for
// every module.
#[macro_use]
pub mod output;

pub mod actions;
pub mod branded;
pub mod cli;
pub mod commands;
pub mod demo;
pub mod fleet;
pub mod host;
pub mod plan;
pub mod recipe;
pub mod run;
pub mod ssh;
pub mod statedir;
pub mod sys;
pub mod version;
