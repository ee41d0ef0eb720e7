//! The `berth` command line: arguments, running them through the library, what is
//! printed, and the exit codes.

mod args;
mod error;
mod exit_codes;
mod report;
mod run;
mod units;

pub use args::Cli;
pub use error::CliError;
pub use run::run;
