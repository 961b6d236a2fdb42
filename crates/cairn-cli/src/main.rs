//! `cairn`: the command line of the supply chain. Parses arguments, opens the
//! store, calls the engine and presents what it returns — text for people,
//! `--json` for programs. Exit codes: 0 ok, 1 the input or a policy said no or the
//! run failed, 2 cairn itself failed.

// Every `print!`, `println!`, `eprint!` and `eprintln!` in this crate is one
// of these (they shadow std's): std's panic on a closed pipe (`cairn runs |
// head -1` was exit 101 with a backtrace) becomes quiet, for every command and
// every line added later. See `output::write_stdout`.
macro_rules! println {
    () => { $crate::output::write_stdout(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!($($arg)*), true) };
}
macro_rules! print {
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!($($arg)*), false) };
}
macro_rules! eprintln {
    () => { $crate::output::write_stderr(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::output::write_stderr(format_args!($($arg)*), true) };
}
#[allow(unused_macros)] // none today; kept so a new `eprint!` is covered too
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::output::write_stderr(format_args!($($arg)*), false) };
}

mod authz;
mod cli;
mod commands;
mod config_file;
mod exit;
mod heap;
mod output;
mod progress;

use std::process::ExitCode;

use crate::cli::Cli;
use crate::exit::Failure;

fn main() -> ExitCode {
    // The user's config file, under the environment and flags (see config_file.rs).
    let json_from_file = match config_file::apply() {
        Ok(json) => json,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(1);
        }
    };
    let cli = match Cli::parse_lazily(std::env::args_os()) {
        Ok(mut cli) => {
            cli.json |= json_from_file;
            cli
        }
        Err(err) => {
            // Help and version are successes; a usage error is the user's input (1).
            let code = if err.use_stderr() { 1 } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    let code = match commands::dispatch(&cli) {
        Ok(code) => {
            finish_deliveries();
            code
        }
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
            finish_deliveries();
            ExitCode::from(code)
        }
    };
    // A reader that went away (EPIPE) is fine; output lost otherwise is not.
    match output::stdout_failure() {
        Some(e) => {
            eprintln!("error: cannot write the output: {e}");
            ExitCode::from(exit::INTERNAL)
        }
        None => code,
    }
}

/// Forge statuses and notifications this command queued go out in the
/// background; before the process ends it gives them a bounded time, then says
/// how many it leaves undelivered (`<data>/outbox.jsonl` has each outcome).
fn finish_deliveries() {
    let left = cairn_engine::outbox::flush(std::time::Duration::from_secs(20));
    if left > 0 {
        eprintln!(
            "warning: {left} forge status(es) or notification(s) not delivered yet; left undelivered"
        );
    }
}
