//! `cairn workload`: onboarded workloads — register an app's repository (and
//! its forge name, so the forge's webhooks find it), and list them.

use std::path::PathBuf;
use std::process::ExitCode;

use cairn_engine::Engine;
use serde_json::json;

use super::{data_dir, open_store};
use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum WorkloadCommand {
    /// Onboard the app in DIR (its cairn.toml at HEAD names the workload).
    Add {
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// `owner/name` of its repository on the forge (GitHub, GitLab, Gitea).
        #[arg(long, value_name = "OWNER/NAME")]
        forge_repo: Option<String>,
    },
    /// The onboarded workloads.
    List,
}

pub(super) fn workload(cli: &Cli, cmd: &WorkloadCommand) -> Result<ExitCode, Failure> {
    let data = data_dir(cli)?;
    let store = open_store(&data)?;
    match cmd {
        WorkloadCommand::Add { dir, forge_repo } => {
            let engine = Engine::new(store.clone(), data, cli.platform_dir.clone());
            let w = engine.register(dir, forge_repo.as_deref())?;
            if cli.json {
                print_json(
                    &json!({"name": w.name, "repo": w.repo, "forge_repository": w.forge_repository}),
                );
            } else {
                println!(
                    "workload {} onboarded from {}{}",
                    w.name,
                    w.repo,
                    w.forge_repository
                        .as_deref()
                        .map(|f| format!(" (forge repository {f})"))
                        .unwrap_or_default()
                );
            }
        }
        WorkloadCommand::List => {
            let all = store.workloads()?;
            if cli.json {
                print_json(&json!(all.iter().map(|w| json!({"name": w.name, "repo": w.repo, "forge_repository": w.forge_repository})).collect::<Vec<_>>()));
            } else if all.is_empty() {
                println!("no workloads yet: `cairn workload add DIR` or `cairn run` onboards one");
            } else {
                for w in &all {
                    println!(
                        "{:<24} {}{}",
                        w.name,
                        w.repo,
                        w.forge_repository
                            .as_deref()
                            .map(|f| format!("  forge: {f}"))
                            .unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
