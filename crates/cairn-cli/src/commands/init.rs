//! `cairn init`: onboard the app in one step.

use std::process::ExitCode;

use cairn_engine::onboard;
use serde_json::json;

use crate::cli::{Cli, InitArgs};
use crate::exit::Failure;
use crate::output::print_json;

pub fn init(cli: &Cli, args: &InitArgs) -> Result<ExitCode, Failure> {
    let done = onboard::init(&args.dir, args.name.as_deref(), args.force)?;
    if cli.json {
        print_json(&json!({
            "path": done.path.display().to_string(),
            "workload": done.name,
            "ecosystem": done.ecosystem.name(),
        }));
    } else {
        println!(
            "wrote {} for workload `{}` ({} detected)",
            done.path.display(),
            done.name,
            done.ecosystem.name()
        );
        println!("next: review it, commit it, then `cairn run`");
    }
    Ok(ExitCode::SUCCESS)
}
