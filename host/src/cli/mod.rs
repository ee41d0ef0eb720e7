//! The `berth` command line: arguments, running them through the library, what is
//! printed, and the exit codes.

mod args;
mod controller;
mod error;
mod exit_codes;
mod fleet;
mod probes;
mod report;
mod rules_command;
mod run;
mod setup;
mod units;

pub use args::Cli;
pub use run::run;
