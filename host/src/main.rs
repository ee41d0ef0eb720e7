//! The `berth` command: parse arguments, run, report errors on one line.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = berth::cli::Cli::parse();
    match berth::cli::run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            // One line, whatever the layers below put in their messages.
            let message = format!("{:#}", anyhow::Error::new(err));
            let line: Vec<&str> = message.split_whitespace().collect();
            eprintln!("berth: {}", line.join(" "));
            ExitCode::FAILURE
        }
    }
}
