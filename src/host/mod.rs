//! The host: what it is (its facts, typed by `recipe::facts`, gathered by
//! probing it or read from a fixture) and whether it is fit for an upgrade
//! (the preflight checks).

pub mod checks;
pub mod probe;
