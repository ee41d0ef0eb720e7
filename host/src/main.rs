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

/// The error and its causes, on one line. A cause is left out when the text already holds
/// it, and the chain stops at kube's own error: berth's message already carries the API
/// server's words, and kube's display adds its debug form of the same status.
fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(source) = cause {
        if source.downcast_ref::<kube::Error>().is_some() {
            break;
        }
        let said = source.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        cause = source.source();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
