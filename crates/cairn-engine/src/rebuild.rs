//! `cairn recover`: rebuilds a lost or emptied store from what the data
//! directory still holds, and settles log entries whose effect the store lacks.
//!
//! Sources, in the order they are believed:
//! - the audit log (verified on open): identities added and revoked, role
//!   bindings, forge links, and every deploy, rollback, override and policy
//!   change;
//! - `<data>/changes.jsonl`, the change sink: the full change record of every
//!   promotion (decision, approvals, outcome, target), denials included. A line
//!   is used only when the log holds the entry it names;
//! - `<data>/server/admin.token`: the bootstrap admin's token, whose hash the
//!   store kept (no other token is anywhere but with its holder).
//!
//! What cannot come back is reported, never invented: runs with their stages,
//! logs and evidence bundles (the log keeps only each bundle's hash), SBOMs,
//! findings, the base catalog's and images' rows (the images stay in the OCI
//! layout), sessions, and the tokens of identities other than the bootstrap
//! admin. A logged change with no record of its outcome anywhere is recorded
//! as interrupted, with that reason.

use std::collections::{BTreeMap, BTreeSet};

use cairn_model::{ChangeRecord, DeploymentRecord, IdentityKind, IdentityRecord, RoleBinding};
use cairn_store::prelude::*;
use cairn_store::{LogMark, SqliteStore};
use serde_json::{Value, json};

use crate::pairing::{LogEntry, read_entry, read_log};
use crate::{DataDir, EngineError};

/// The largest change sink file read.
const MAX_SINK_BYTES: u64 = 256 << 20;

/// What [`rebuild`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rebuilt {
    /// The log's size; the store has now seen all of it.
    pub log_size: u64,
    /// The first entry examined (0 for a store rebuilt from nothing).
    pub from: u64,
    /// Whether the store was missing or empty (rebuilt from nothing).
    pub from_nothing: bool,
    pub identities: Vec<String>,
    /// Identities whose token works again (the bootstrap admin's, from
    /// `server/admin.token`).
    pub tokens_kept: Vec<String>,
    /// Identities whose token is lost (nothing on disk holds it).
    pub tokens_lost: Vec<String>,
    pub revoked: u64,
    pub bindings: u64,
    pub forge_links: u64,
    /// Change records rebuilt with their full record from the change sink.
    pub changes_from_sink: u64,
    pub deployments: u64,
    /// Logged changes with no outcome anywhere: recorded as interrupted.
    pub interrupted: Vec<LogEntry>,
    /// What a store rebuilt from nothing lost for good.
    pub lost: Vec<&'static str>,
}

/// What a store rebuilt from nothing cannot get back.
pub const LOST: &[&str] = &[
    "runs, their stages and logs",
    "evidence bundles (the log keeps only their hashes; `cairn run` makes them again)",
    "SBOMs, findings and advisories (`cairn vulns import` and `cairn scan` again)",
    "the base catalog's and images' rows (the images stay in the OCI layout)",
    "browser sessions",
];

/// Rebuilds the store of `data` from its log (see the module documentation).
/// Refuses a log that is shorter than, or different from, what the store saw.
pub fn rebuild(data: &DataDir, now_ms: i64) -> Result<Rebuilt, EngineError> {
    let from_nothing = matches!(
        crate::pairing::refuse_missing_store(data),
        Err(EngineError::StoreLost { .. })
    );
    let store = SqliteStore::open(data.root())?;
    let log = read_log(data)?;
    let size = log.as_ref().map_or(0, cairn_tlog_fs::Log::size);
    let from = match store.log_mark()? {
        LogMark::New | LogMark::Adopt => 0,
        LogMark::Seen { .. } => {
            // The same refusals as any open (a truncated or replaced log); the
            // mark stays before the first entry lacking its effect.
            crate::pairing::check(data, &store, now_ms)?;
            match store.log_mark()? {
                LogMark::Seen { size, .. } => size,
                _ => 0,
            }
        }
    };
    let mut out = Rebuilt {
        log_size: size,
        from,
        from_nothing,
        ..Rebuilt::default()
    };
    if from_nothing {
        out.lost = LOST.to_vec();
    }
    let Some(log) = log else {
        return Ok(out);
    };
    let sink = read_sink(data, size)?;
    let admin_token = std::fs::read_to_string(data.root().join("server").join("admin.token"))
        .ok()
        .map(|t| crate::access::token_sha256(t.trim()));

    let mut recorded: BTreeSet<u64> = store
        .changes(None, 1_000_000)?
        .into_iter()
        .map(|(_, c)| c.log_index)
        .collect();
    let deployed: BTreeSet<u64> = store
        .deployments(None, None, 1_000_000)?
        .into_iter()
        .map(|d| d.log_index)
        .collect();

    for index in from..size {
        let entry = read_entry(&log, index, data)?;
        let spec = &entry.spec;
        let text = |k: &str| spec[k].as_str().map(str::to_owned);
        match entry.kind.as_str() {
            "access-change" => {
                apply_access(&store, &entry, admin_token.as_deref(), now_ms, &mut out)?;
            }
            "deploy" | "rollback" | "undeploy" | "override" | "policy-change" => {
                if recorded.contains(&index) {
                    continue;
                }
                if let Some(line) = sink.get(&index) {
                    keep_from_sink(&store, line, index, now_ms, &deployed, &mut out)?;
                } else {
                    let (workload, environment) = if entry.kind == "policy-change" {
                        ("*".to_owned(), "*".to_owned())
                    } else {
                        (
                            text("workload").unwrap_or_default(),
                            text("environment").unwrap_or_default(),
                        )
                    };
                    let (from_digest, to_digest) = match entry.kind.as_str() {
                        "rollback" => (text("fromArtifact"), text("toArtifact")),
                        "policy-change" => (text("oldDigest"), text("newDigest")),
                        _ => (None, text("artifact")),
                    };
                    store.add_change(&ChangeRecord {
                        kind: entry.kind.clone(),
                        workload,
                        environment,
                        actor: text("actor").unwrap_or_else(|| "?".into()),
                        from_digest,
                        to_digest: to_digest.unwrap_or_default(),
                        log_index: index,
                        at_ms: now_ms,
                        json: json!({
                            "outcome": "interrupted: the change was logged, but cairn stopped before \
                                        recording its outcome; whether it took effect is unknown \
                                        (recorded by cairn recover)",
                            "recovered": true,
                        })
                        .to_string(),
                    })?;
                    out.interrupted.push(entry.clone());
                }
                recorded.insert(index);
            }
            _ => {}
        }
    }
    // Change records whose entry is evidence (a denial names its signed
    // decision's entry): from the sink, when the log holds the entry.
    for (index, line) in &sink {
        if !recorded.contains(index) {
            keep_from_sink(&store, line, *index, now_ms, &deployed, &mut out)?;
            recorded.insert(*index);
        }
    }
    let root = if size > 0 {
        log.root_at(size)
            .map_err(|source| EngineError::AuditLog {
                dir: crate::audit::log_dir(data),
                source,
            })?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    } else {
        String::new()
    };
    store.set_log_mark(size, &root, now_ms)?;
    Ok(out)
}

/// The change sink's lines by log index (the first line of each index; lines
/// that do not parse, or name an entry the log does not hold, are skipped).
fn read_sink(data: &DataDir, log_size: u64) -> Result<BTreeMap<u64, Value>, EngineError> {
    use std::io::Read;
    let path = data.root().join("changes.jsonl");
    let mut text = String::new();
    match std::fs::File::open(&path) {
        Ok(file) => {
            file.take(MAX_SINK_BYTES)
                .read_to_string(&mut text)
                .map_err(EngineError::io("read", &path))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(EngineError::Io {
                what: "read",
                path,
                source,
            });
        }
    }
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let Some(index) = value["log_index"].as_u64()
            && index < log_size
        {
            out.entry(index).or_insert(value);
        }
    }
    Ok(out)
}

fn keep_from_sink(
    store: &dyn Store,
    line: &Value,
    index: u64,
    now_ms: i64,
    deployed: &BTreeSet<u64>,
    out: &mut Rebuilt,
) -> Result<(), EngineError> {
    let text = |k: &str| line[k].as_str().map(str::to_owned);
    let record = &line["record"];
    let kind = text("kind").unwrap_or_default();
    let change = ChangeRecord {
        kind: kind.clone(),
        workload: text("workload").unwrap_or_default(),
        environment: text("environment").unwrap_or_default(),
        actor: text("actor").unwrap_or_default(),
        from_digest: text("from"),
        to_digest: text("to").unwrap_or_default(),
        log_index: index,
        at_ms: now_ms,
        json: record.to_string(),
    };
    store.add_change(&change)?;
    out.changes_from_sink += 1;
    if record["outcome"] == "deployed"
        && matches!(kind.as_str(), "deploy" | "rollback" | "override")
        && !deployed.contains(&index)
    {
        store.add_deployment(&DeploymentRecord {
            workload: change.workload.clone(),
            environment: change.environment.clone(),
            digest: change.to_digest.clone(),
            previous_digest: change.from_digest.clone(),
            kind,
            actor: change.actor.clone(),
            target: record["target"].as_str().unwrap_or("unknown").to_owned(),
            detail: record["detail"].as_str().unwrap_or_default().to_owned(),
            log_index: index,
            deployed_at_ms: now_ms,
            // What runs now is reconciliation's to tell (the token is not in the
            // change record: the deployment is matched by its digest).
            status: cairn_model::DeploymentStatus::Deployed,
            token: None,
            reason: Some("rebuilt by cairn recover from the change records".to_owned()),
        })?;
        out.deployments += 1;
    }
    Ok(())
}

fn apply_access(
    store: &dyn Store,
    entry: &LogEntry,
    admin_token: Option<&str>,
    now_ms: i64,
    out: &mut Rebuilt,
) -> Result<(), EngineError> {
    let spec = &entry.spec;
    let text = |k: &str| spec[k].as_str().map(str::to_owned);
    let Some(name) = text("identity") else {
        return Ok(());
    };
    let exists = store.identity(&name)?;
    match text("action").as_deref() {
        Some("identity-add") => {
            if exists.is_some() {
                return Ok(());
            }
            let kind = match text("kind").as_deref() {
                Some("service-account") => IdentityKind::ServiceAccount,
                _ => IdentityKind::User,
            };
            // The bootstrap admin (no actor) gets its token back from the file
            // `cairn up` wrote; every other token is lost: a hash of fresh
            // random bytes, whose preimage nobody holds, keeps the row valid.
            let bootstrap = spec["actor"].is_null() && name == "admin";
            let token_sha256 = match admin_token {
                Some(hash) if bootstrap && store.identity_by_token(hash)?.is_none() => {
                    out.tokens_kept.push(name.clone());
                    hash.to_owned()
                }
                _ => {
                    let mut bytes = [0u8; 32];
                    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| EngineError::NoRandomness)?;
                    out.tokens_lost.push(name.clone());
                    bytes.iter().map(|b| format!("{b:02x}")).collect()
                }
            };
            store.add_identity(&IdentityRecord {
                name: name.clone(),
                kind,
                token_sha256,
                created_at_ms: now_ms,
                revoked_at_ms: None,
                expires_at_ms: None,
            })?;
            if let Some(role) = text("role") {
                store.add_binding(&RoleBinding {
                    identity: name.clone(),
                    role,
                    workload: text("workload"),
                    environment: text("environment"),
                })?;
                out.bindings += 1;
            }
            out.identities.push(name);
        }
        Some("identity-revoke") if store.revoke_identity(&name, now_ms)? => out.revoked += 1,
        Some(action @ ("role-grant" | "role-revoke")) => {
            let Some(role) = text("role") else {
                return Ok(());
            };
            let binding = RoleBinding {
                identity: name,
                role,
                workload: text("workload"),
                environment: text("environment"),
            };
            let active = exists.as_ref().is_some_and(|i| i.revoked_at_ms.is_none());
            if action == "role-grant" && active {
                let before = store.bindings()?.contains(&binding);
                store.add_binding(&binding)?;
                if !before {
                    out.bindings += 1;
                }
            } else if action == "role-revoke" {
                store.remove_binding(&binding)?;
            }
        }
        Some("forge-link") => {
            if exists.is_some()
                && let Some((forge, login)) = text("forgeLogin")
                    .as_deref()
                    .and_then(|l| l.split_once(':'))
                && store.forge_account(forge, login)?.as_deref() != Some(name.as_str())
            {
                store.link_forge_account(forge, login, &name, now_ms)?;
                out.forge_links += 1;
            }
        }
        _ => {}
    }
    Ok(())
}
