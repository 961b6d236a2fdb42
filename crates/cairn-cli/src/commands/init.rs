//! `cairn init`: onboard the app in one step.

use std::process::ExitCode;

use cairn_engine::onboard::{self, GitIgnore, InitOptions};
use cairn_model::ecosystem::Ecosystem;
use serde_json::json;

use crate::cli::{Cli, InitArgs};
use crate::exit::Failure;
use crate::output::print_json;

pub(super) fn init(cli: &Cli, args: &InitArgs) -> Result<ExitCode, Failure> {
    let ecosystem = match args.ecosystem.as_deref() {
        None => None,
        Some(name) => Some(Ecosystem::from_name(name).ok_or_else(|| {
            Failure::user(anyhow::anyhow!(
                "unknown ecosystem `{name}`: choose one of cargo, npm, go, maven, python, make"
            ))
        })?),
    };
    let done = onboard::init(
        &args.dir,
        &InitOptions {
            name: args.name.as_deref(),
            force: args.force,
            dry_run: args.dry_run,
            ecosystem,
        },
    )?;
    let gitignore = match done.gitignore {
        GitIgnore::Created => "created .gitignore with `.cairn/`",
        GitIgnore::Appended => "added `.cairn/` to .gitignore",
        GitIgnore::AlreadyThere => ".gitignore already ignores `.cairn/`",
        GitIgnore::NotWritten => "would add `.cairn/` to .gitignore",
    };
    if cli.json {
        print_json(&json!({
            "path": done.path.display().to_string(),
            "workload": done.name,
            "ecosystem": done.ecosystem.name(),
            "detected": done.detection.reasons,
            "dry_run": args.dry_run,
            "gitignore": gitignore,
            "text": done.text,
        }));
        return Ok(ExitCode::SUCCESS);
    }
    println!("detected:");
    for r in &done.detection.reasons {
        println!("  {r}");
    }
    if args.dry_run {
        println!(
            "--dry-run: would write {} (nothing written):\n",
            done.path.display()
        );
        print!("{}", done.text);
        println!("\n{gitignore}");
    } else {
        println!(
            "wrote {} for workload `{}` ({} detected)",
            done.path.display(),
            done.name,
            done.ecosystem.name()
        );
        println!("{gitignore}");
        println!("next: review it, commit it (with .gitignore), then `cairn run`");
    }
    Ok(ExitCode::SUCCESS)
}
