//! `cairn evidence RUN [--export DIR]`: the signed statements a run produced —
//! listed with the audit log entry each bundle carries, or written out as
//! Sigstore bundles for `cairn verify` (which checks that entry with the trusted
//! root cairn keeps for its log) or any Sigstore verifier.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use cairn_model::EvidenceRecord;
use cairn_model::time::rfc3339_utc;
use serde_json::json;

use super::{data_dir, open_store, resolve_run};
use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

#[derive(Debug, clap::Args)]
pub(crate) struct EvidenceArgs {
    /// The run (its id, or `last` for the newest), or an artifact digest
    /// (`sha256:…`, e.g. an image or a catalog base).
    pub run: String,
    /// Write each bundle to DIR as `<id>-<kind>.sigstore.json`, the kind named by its
    /// predicate (provenance, test-result, sbom, vulns, vsa, review, decision).
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,
}

pub(super) fn evidence(cli: &Cli, args: &EvidenceArgs) -> Result<ExitCode, Failure> {
    let store = open_store(&data_dir(cli)?)?;
    let (records, stages, about) = if args.run.starts_with(cairn_model::digest::SHA256_PREFIX) {
        (
            store.evidence_for_subject(&args.run)?,
            Vec::new(),
            args.run.clone(),
        )
    } else {
        let id = resolve_run(&*store, &args.run)?;
        (
            store.evidence_for_run(id)?,
            store.stages(id)?,
            format!("run {id}"),
        )
    };
    let stage_name = |e: &EvidenceRecord| {
        stages
            .iter()
            .find(|s| Some(s.id) == e.stage)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    };
    let mut written = Vec::new();
    if let Some(dir) = &args.export {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for e in &records {
            written.push(export(dir, e)?);
        }
    }
    if cli.json {
        let list: Vec<_> = records
            .iter()
            .enumerate()
            .map(|(i, e)| {
                json!({
                    "id": e.id,
                    "stage": stage_name(e),
                    "predicate_type": e.predicate_type,
                    "subject": { "name": e.subject_name, "digest": e.subject_digest },
                    "created_at": rfc3339_utc(e.created_at_ms),
                    "log_index": log_index(e),
                    "file": written.get(i).map(|p: &PathBuf| p.display().to_string()),
                })
            })
            .collect();
        print_json(&json!(list));
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        println!("{about} has no evidence");
        return Ok(ExitCode::SUCCESS);
    }
    for (i, e) in records.iter().enumerate() {
        println!(
            "{:>4}  {:<18} {:<48} {} {}",
            e.id,
            stage_name(e),
            e.predicate_type,
            e.subject_name,
            e.subject_digest
        );
        if let Some(index) = log_index(e) {
            println!("      audit log entry {index}");
        }
        if let Some(path) = written.get(i) {
            println!("      written to {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The audit log index the bundle's entry names (`cairn log show INDEX`), if
/// it carries one. Read, not verified: `cairn verify` checks it.
fn log_index(e: &EvidenceRecord) -> Option<i64> {
    cairn_evidence::Bundle::from_json(&e.bundle)
        .ok()?
        .tlog_entries
        .first()
        .map(|entry| entry.log_index)
}

/// The file-name word for a bundle's predicate type: one per type cairn signs,
/// `attestation` for any other (never text taken from the record itself).
fn predicate_kind(predicate_type: &str) -> &'static str {
    use cairn_evidence::Predicate;
    match predicate_type {
        cairn_evidence::provenance::PROVENANCE_PREDICATE_TYPE => "provenance",
        cairn_evidence::test_result::TEST_RESULT_PREDICATE_TYPE => "test-result",
        cairn_evidence::vsa::VSA_PREDICATE_TYPE => "vsa",
        cairn_evidence::review::REVIEW_PREDICATE_TYPE => "review",
        cairn_engine::promotion::DECISION_PREDICATE => "decision",
        t if t == cairn_evidence::sbom::CycloneDxBom::PREDICATE_TYPE => "sbom",
        t if t == cairn_evidence::vulns::VulnsScan::PREDICATE_TYPE => "vulns",
        _ => "attestation",
    }
}

fn export(dir: &Path, e: &EvidenceRecord) -> Result<PathBuf, Failure> {
    let kind = predicate_kind(&e.predicate_type);
    let path = dir.join(format!("{}-{kind}.sigstore.json", e.id));
    std::fs::write(&path, &e.bundle).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}
