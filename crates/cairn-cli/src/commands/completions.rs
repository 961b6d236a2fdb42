//! `cairn completions SHELL` and `cairn man DIR`: text generated from the clap
//! grammar (clap_complete, clap_mangen), so completions and man pages never
//! disagree with the commands they describe.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit::Failure;

#[derive(Debug, clap::Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ManArgs {
    /// The directory to write the pages into (created if missing); read them
    /// with `man -l DIR/cairn.1`, or install them under a man1 directory.
    pub dir: PathBuf,
}

pub(super) fn completions(args: &CompletionsArgs) -> Result<ExitCode, Failure> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "cairn", &mut out);
    crate::output::write_stdout_bytes(&out);
    Ok(ExitCode::SUCCESS)
}

pub(super) fn man(args: &ManArgs) -> Result<ExitCode, Failure> {
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| Failure::user(anyhow!("cannot create {}: {e}", args.dir.display())))?;
    clap_mangen::generate_to(Cli::command(), &args.dir).map_err(|e| {
        anyhow!(
            "cannot write the man pages into {}: {e}",
            args.dir.display()
        )
    })?;
    let mut pages: Vec<String> = std::fs::read_dir(&args.dir)
        .map_err(|e| anyhow!("cannot read {}: {e}", args.dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("cairn") && n.ends_with(".1"))
        .collect();
    pages.sort();
    println!(
        "wrote {} man pages into {} (man -l {}/cairn.1)",
        pages.len(),
        args.dir.display(),
        args.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
