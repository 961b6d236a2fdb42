//! `cairn recover`: rebuild the store from the audit log and what else the data
//! directory holds (`cairn_engine::rebuild`), then check the pair again.

use std::process::ExitCode;

use serde_json::json;

use super::data_dir;
use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

pub(super) fn recover(cli: &Cli) -> Result<ExitCode, Failure> {
    super::database::refuse_other_database("recover")?;
    let data = data_dir(cli)?;
    let r = cairn_engine::rebuild::rebuild(&data, cairn_engine::now_ms())?;
    // The same check every command makes: it must now pass with nothing left over.
    let (_, pairing) = cairn_engine::pairing::open_store(&data)?;
    let interrupted: Vec<_> = r
        .interrupted
        .iter()
        .map(|e| json!({"index": e.index, "kind": e.kind, "summary": e.summary}))
        .collect();
    if cli.json {
        print_json(&json!({
            "log_size": r.log_size,
            "from": r.from,
            "rebuilt_from_nothing": r.from_nothing,
            "identities": r.identities,
            "tokens_kept": r.tokens_kept,
            "tokens_lost": r.tokens_lost,
            "revoked": r.revoked,
            "bindings": r.bindings,
            "forge_links": r.forge_links,
            "changes_from_sink": r.changes_from_sink,
            "deployments": r.deployments,
            "interrupted": interrupted,
            "lost": r.lost,
            "unexplained_after": pairing.unexplained.len(),
        }));
    } else {
        println!(
            "recovered the store in {} from the audit log's {} entries (from entry {}):",
            data.root().display(),
            r.log_size,
            r.from
        );
        println!(
            "  identities: {} ({} revoked again), role bindings: {}, forge links: {}",
            r.identities.len(),
            r.revoked,
            r.bindings,
            r.forge_links
        );
        if !r.tokens_kept.is_empty() {
            println!(
                "  tokens that work again: {} (from server/admin.token)",
                r.tokens_kept.join(", ")
            );
        }
        if !r.tokens_lost.is_empty() {
            println!(
                "  tokens LOST (nothing on disk holds them; those identities cannot log in): {}",
                r.tokens_lost.join(", ")
            );
        }
        println!(
            "  change records from changes.jsonl: {}, deployments: {}",
            r.changes_from_sink, r.deployments
        );
        for e in &r.interrupted {
            println!(
                "  entry {}: {} — no outcome recorded anywhere; recorded as interrupted",
                e.index, e.summary
            );
        }
        if !r.lost.is_empty() {
            println!("  lost for good (not in the log): {}", r.lost.join("; "));
        }
        println!(
            "the store has now seen the log's {} entries",
            pairing.log_size
        );
    }
    if !pairing.unexplained.is_empty() {
        super::report_pairing(&pairing);
        return Ok(ExitCode::from(crate::exit::INTERNAL));
    }
    Ok(ExitCode::SUCCESS)
}
