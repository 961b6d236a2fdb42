//! `cairn backup DIR` and `cairn restore DIR` (`cairn_engine::backup`).

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use super::data_dir;
use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

#[derive(Debug, clap::Args)]
pub(crate) struct BackupArgs {
    /// A new (or empty) directory to write the backup into.
    pub dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RestoreArgs {
    /// A directory `cairn backup` wrote.
    pub dir: PathBuf,
    /// Restore over a data directory that is not empty (of the same
    /// installation); its contents are moved aside, not deleted.
    #[arg(long)]
    pub force: bool,
}

pub(super) fn backup(cli: &Cli, args: &BackupArgs) -> Result<ExitCode, Failure> {
    super::database::refuse_other_database("backup")?;
    let data = data_dir(cli)?;
    // The same checked open as every command: a store that lost its pair with
    // the log is not backed up as if it were whole.
    let (store, pairing) = cairn_engine::pairing::open_store(&data)?;
    super::report_pairing(&pairing);
    let m = cairn_engine::backup::backup(&data, &store, &args.dir, cairn_engine::now_ms())?;
    let bytes: u64 = m.files.iter().map(|f| f.size).sum();
    if cli.json {
        print_json(&json!({
            "dir": args.dir, "installation": m.installation, "cairn_version": m.cairn_version,
            "schema_version": m.schema_version, "log_size": m.log_size, "files": m.files.len(),
            "bytes": bytes,
        }));
    } else {
        println!(
            "backed up {} into {}: {} files, {bytes} bytes, the log's {} entries (installation {}, cairn {}, schema {}); `cairn restore {}` restores it",
            data.root().display(),
            args.dir.display(),
            m.files.len(),
            m.log_size,
            m.installation,
            m.cairn_version,
            m.schema_version,
            args.dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn restore(cli: &Cli, args: &RestoreArgs) -> Result<ExitCode, Failure> {
    super::database::refuse_other_database("restore")?;
    let data = data_dir(cli)?;
    let r = cairn_engine::backup::restore(&args.dir, &data, args.force)?;
    if cli.json {
        print_json(&json!({
            "dir": data.root(), "installation": r.manifest.installation,
            "files": r.manifest.files.len(), "log_size": r.log_size,
            "moved_aside": r.moved_aside, "log_verified": true,
            "unexplained": r.pairing.unexplained.len(),
        }));
    } else {
        if let Some(aside) = &r.moved_aside {
            println!(
                "moved the earlier contents of {} to {}",
                data.root().display(),
                aside.display()
            );
        }
        println!(
            "restored {} files into {} (installation {}); log verified: {} entries hash to its checkpoint; the store agrees with the log",
            r.manifest.files.len(),
            data.root().display(),
            r.manifest.installation,
            r.log_size
        );
    }
    super::report_pairing(&r.pairing);
    Ok(ExitCode::SUCCESS)
}
