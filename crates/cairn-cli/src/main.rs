//! `cairn`: the command line of the supply chain. Parses arguments, opens the
//! store, calls the engine and presents what it returns — text for people,
//! `--json` for programs. Exit codes: 0 ok, 1 the input or a policy said no or the
//! run failed, 2 cairn itself failed.

mod cli;
mod commands;
mod exit;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::exit::Failure;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version are successes; a usage error is the user's input (1).
            let code = if err.use_stderr() { 1 } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    match commands::dispatch(&cli) {
        Ok(code) => code,
        Err(Failure { code, error }) => {
            let text = exit::render(&error);
            if exit::is_disk_full(&error) && !text.starts_with("disk full at") {
                let place = commands::data_dir(&cli)
                    .map(|d| d.root().display().to_string())
                    .unwrap_or_else(|_| "the data directory".to_owned());
                eprintln!(
                    "error: disk full at {place}: free some space and run the command again\n  {text}"
                );
                return ExitCode::from(code);
            }
            eprintln!("error: {text}");
            ExitCode::from(code)
        }
    }
}
