//! The `berth` command: parse arguments, run them through the library, report an error
//! on one line, exit with the code of the outcome (see `cli/exit_codes.rs`).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(status) => status.into(),
        Err(err) => {
            eprintln!("berth: {}", one_line(&err));
            err.exit_status().into()
        }
    }
}

/// The error and its causes, on one line (the library's wording, which the controller's
/// conditions use too).
fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    berth::hooks::one_line(err)
}
