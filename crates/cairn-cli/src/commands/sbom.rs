//! `cairn sbom PATH [--format cyclonedx|spdx] [--output FILE]`: the components of a
//! source tree or a root filesystem directory, as a CycloneDX 1.6 (default) or SPDX
//! 2.3 JSON document. The bounded tree walk is the engine's
//! ([`cairn_engine::inventory`]), shared with `cairn scan` and the run.
//!
//! The walk is bounded: symlinked directories are not followed, a symlinked file is
//! read only when it resolves inside the tree, files over
//! [`cairn_sbom::MAX_FILE_BYTES`] are skipped, and the walk stops after
//! [`cairn_engine::inventory::MAX_ENTRIES`] entries or below [`cairn_engine::inventory::MAX_DEPTH`] levels, saying so. Every file that
//! could not be read or parsed is listed on stderr as `skipped PATH: reason`; the
//! exit code is 1 only when nothing could be read.
//!
//! The document's UUID comes from the kernel's randomness (`/dev/urandom`), its
//! timestamp from the system clock.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use cairn_engine::EngineError;
use cairn_sbom::cyclonedx::DocumentInput;

use crate::cli::Cli;
use crate::exit::Failure;

/// The base of SPDX `documentNamespace`s; the document's name and UUID follow it.
const SPDX_NAMESPACE: &str = "https://cairn.invalid/spdxdocs";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SbomFormat {
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
    /// SPDX 2.3 JSON.
    Spdx,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SbomArgs {
    /// A source tree or a root filesystem directory (or one lockfile).
    pub path: PathBuf,
    /// The document format.
    #[arg(long, value_enum, default_value = "cyclonedx")]
    pub format: SbomFormat,
    /// Write the document to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also keep the document in the store and index its components for
    /// `cairn where`. The artifact's digest is the SHA-256 of PATH when PATH is a
    /// file, else of the document's bytes.
    #[arg(long)]
    pub record: bool,
    /// The artifact's name when recording (default: PATH's file or directory name).
    #[arg(long, value_name = "NAME", requires = "record")]
    pub subject: Option<String>,
}

pub(super) fn sbom(cli: &Cli, args: &SbomArgs) -> Result<ExitCode, Failure> {
    let collected = collect(&args.path)?;
    print_problems(&collected);
    if collected.nothing_read() {
        return Err(Failure::user(anyhow!(
            "no file under {} could be read",
            args.path.display()
        )));
    }
    if collected.report.files.is_empty() {
        eprintln!(
            "cairn: no lockfile or package database found under {}; the document lists no components",
            args.path.display()
        );
    }
    // The kernel's CSPRNG: a serial number needs no more, and aws-lc's DRBG seeds
    // itself with ~30 ms of jitter entropy on first use in a process.
    let mut uuid = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut uuid))
        .context("no randomness for the UUID (/dev/urandom)")?;
    let timestamp = now_rfc3339();
    let input = DocumentInput {
        subject: collected.subject(),
        components: &collected.report.components,
        uuid,
        timestamp: &timestamp,
        tool_version: env!("CARGO_PKG_VERSION"),
    };
    let mut doc = match args.format {
        SbomFormat::Cyclonedx => cairn_sbom::cyclonedx::to_json(&input),
        SbomFormat::Spdx => cairn_sbom::spdx_doc::to_json(&input, SPDX_NAMESPACE),
    }
    .context("cannot write the SBOM document")?;
    doc.push(b'\n');
    match &args.output {
        Some(file) => std::fs::write(file, &doc)
            .with_context(|| format!("cannot write {}", file.display()))?,
        None => crate::output::write_stdout_bytes(&doc),
    }
    if args.record {
        record(cli, args, &collected, &doc)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Keeps the document and its components in the store (`--record`).
fn record(cli: &Cli, args: &SbomArgs, collected: &Collected, doc: &[u8]) -> Result<(), Failure> {
    let (digested, of) = if std::fs::metadata(&args.path).is_ok_and(|m| m.is_file()) {
        let bytes = std::fs::read(&args.path)
            .with_context(|| format!("cannot read {}", args.path.display()))?;
        (bytes, format!("the file {}", args.path.display()))
    } else {
        (doc.to_vec(), "the SBOM document".to_owned())
    };
    let subject_digest = cairn_evidence::sha256(&digested).to_string();
    let subject_name = args
        .subject
        .clone()
        .unwrap_or_else(|| collected.name.clone());
    // As matching keys them (OS packages under their source packages).
    let components = cairn_engine::inventory::index_rows(collected);
    let created_at_ms = cairn_engine::now_ms();
    let store = super::open_store(&super::data_dir(cli)?)?;
    // Kept and matched against the stored advisories now, so its findings
    // exist before the next import.
    let (id, matched) = cairn_engine::advisories::record_sbom(
        &*store,
        &cairn_store::NewSbom {
            subject_name: subject_name.clone(),
            subject_digest: subject_digest.clone(),
            workload: None,
            environment: None,
            created_at_ms,
            format: match args.format {
                SbomFormat::Cyclonedx => "cyclonedx",
                SbomFormat::Spdx => "spdx",
            }
            .to_owned(),
            document: doc.to_vec(),
            components,
        },
    )?;
    eprintln!(
        "cairn: recorded SBOM {id} of {subject_name} ({subject_digest}, the SHA-256 of {of}), {} components",
        collected.report.components.len()
    );
    eprintln!(
        "cairn: matched SBOM {id} against the stored advisories: {} new findings, {} not evaluated",
        matched.outcome.opened.len(),
        matched.not_evaluated.len()
    );
    for f in &matched.outcome.opened {
        eprintln!(
            "  {} {} {} {}  [{}{}]",
            f.key.advisory_id,
            f.key.ecosystem,
            f.key.name,
            f.key.version,
            f.kind,
            f.severity
                .as_deref()
                .map_or_else(String::new, |s| format!(", {s}"))
        );
    }
    Ok(())
}

/// The RFC 3339 UTC time now, from the system clock.
pub(super) fn now_rfc3339() -> String {
    cairn_model::time::rfc3339_utc(cairn_engine::now_ms())
}

pub(super) use cairn_engine::inventory::Collected;

/// Walks `path` and scans the files cairn knows (see [`cairn_engine::inventory`]).
/// `Err` only when `path` itself cannot be walked (a missing path is the user's
/// input: exit 1).
pub(super) fn collect(path: &Path) -> Result<Collected, Failure> {
    Tree::walk(path).map(|tree| cairn_engine::inventory::collect_tree(tree.0))
}

/// Lists what was skipped (`skipped PATH: reason`) and what parsers left out on
/// purpose (`note: PATH:LINE: message`), on stderr.
pub(super) fn print_problems(collected: &Collected) {
    // eprintln! is the CLI's: control bytes from a lockfile are escaped.
    for s in &collected.skipped {
        eprintln!("skipped {}: {}", s.path, s.reason);
    }
    for n in &collected.report.notes {
        let at = n.line.map_or_else(String::new, |l| format!(":{l}"));
        eprintln!("note: {}{at}: {}", n.path, n.message);
    }
}

/// The engine's bounded tree walk, with the CLI's exit codes.
#[derive(Debug)]
pub(super) struct Tree(cairn_engine::inventory::Tree);

impl std::ops::Deref for Tree {
    type Target = cairn_engine::inventory::Tree;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Tree {
    /// Lists the tree under `path`; a path that cannot be read (missing, neither a
    /// directory nor a file) is the user's input (exit 1).
    pub(super) fn walk(path: &Path) -> Result<Tree, Failure> {
        cairn_engine::inventory::Tree::walk(path)
            .map(Tree)
            .map_err(|e| match e {
                EngineError::Io { what: "read", .. } => Failure::user(e),
                other => Failure::from(other),
            })
    }
}
