//! `cairn gc` (`cairn_engine::gc`): removes workspaces and unpacked root
//! filesystems not in use and unused for `--older-than-days`.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;

use super::{data_dir, open_store};
use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

#[derive(Debug, clap::Args)]
pub(crate) struct GcArgs {
    /// Keep what was used in the last N days (0: remove all that is not in use).
    #[arg(long, value_name = "N", default_value_t = 7)]
    pub older_than_days: u32,
}

pub(super) fn gc(cli: &Cli, args: &GcArgs) -> Result<ExitCode, Failure> {
    let data = data_dir(cli)?;
    let store = open_store(&data)?;
    let older_than = Duration::from_secs(u64::from(args.older_than_days) * 86_400);
    let report = cairn_engine::gc::gc(&data, &*store, older_than)?;
    if cli.json {
        print_json(&json!({
            "removed": report.removed,
            "in_use": report.in_use,
            "recent": report.recent,
            "workspaces": data.workspaces(),
            "rootfs_cache": data.rootfs_cache(),
        }));
    } else {
        for p in &report.removed {
            println!("removed {}", p.display());
        }
        println!(
            "{} removed, {} in use kept, {} used in the last {} days kept (workspaces {}, root filesystems {})",
            report.removed.len(),
            report.in_use.len(),
            report.recent,
            args.older_than_days,
            data.workspaces().display(),
            data.rootfs_cache().display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
