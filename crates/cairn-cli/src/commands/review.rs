//! `cairn review approve|request-changes [COMMIT]`: a signed review of one exact
//! commit by the identity in `CAIRN_TOKEN` (see `cairn_engine::review`).

use std::path::PathBuf;
use std::process::ExitCode;

use super::{data_dir, open_store};
use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;
use cairn_evidence::review::Verdict;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ReviewCommand {
    /// Approve the commit (default: HEAD).
    Approve(ReviewArgs),
    /// Ask for changes: the commit cannot be promoted on this review.
    RequestChanges(ReviewArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct ReviewArgs {
    #[arg(default_value = "HEAD")]
    pub commit: String,
    /// The app's directory (default: the working directory).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    #[arg(long)]
    pub comment: Option<String>,
}

pub(super) fn review(cli: &Cli, cmd: &ReviewCommand) -> Result<ExitCode, Failure> {
    let (verdict, args) = match cmd {
        ReviewCommand::Approve(a) => (Verdict::Approve, a),
        ReviewCommand::RequestChanges(a) => (Verdict::RequestChanges, a),
    };
    let data = data_dir(cli)?;
    let store = open_store(&data)?;
    let actor = cairn_engine::access::actor_from_env(&*store)?;
    let loaded = cairn_engine::load_workload(&args.dir, &args.commit, cli.platform_dir.as_deref())?;
    let r = cairn_engine::review::record(
        &data,
        &*store,
        &actor,
        &args.dir,
        &loaded.workload.name,
        &loaded.commit,
        verdict,
        args.comment.clone(),
    )?;
    if cli.json {
        print_json(&cairn_engine::wire::review_json(&r, verdict, &actor.name));
    } else {
        println!(
            "{} recorded: {} on {} ({}) by {}; signed evidence {}, audit log entry {}",
            verdict.as_str(),
            loaded.workload.name,
            r.commit,
            r.author,
            actor.name,
            r.evidence,
            r.log_index
        );
        if r.own_commit {
            println!("note: you wrote this commit; your approval does not count (four eyes)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
