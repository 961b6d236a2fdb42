//! What a gate may believe: the evidence about one artifact read back from the
//! store and checked, bundle by bundle, against cairn's keys and log. Every
//! fact a gate decides on (statement kind, stage kind, run, workload, commit,
//! the identity that ran it) comes out of the *signed statement*; the store's
//! row is only the index that found the bundle. A bundle that does not verify,
//! is about another artifact, or whose row disagrees with what it signs
//! (a row moved to another stage, a stage whose kind was edited) is never
//! dropped silently: it is returned as a [`Failure`] naming the bundle, and the
//! default policy denies on it (`evidence`, "bundle N failed verification: …").

use std::collections::BTreeMap;

use cairn_evidence::provenance::PROVENANCE_PREDICATE_TYPE;
use cairn_evidence::test_result::TEST_RESULT_PREDICATE_TYPE;
use cairn_evidence::{Bundle, Digest, SigningKey, VerifyingKey};
use cairn_model::{EvidenceRecord, RunId, StageRecord};
use cairn_store::Store;
use serde_json::Value;

use crate::audit::{AuditLog, LOCK_WAIT};
use crate::keys::KeyStore;
use crate::{DataDir, EngineError};

/// cairn's public keys (current and retired), and the log's verifiers (its
/// current checkpoint key and every retired one; none before the log has a
/// key: then nothing verifies).
pub(crate) struct Trust {
    keys: Vec<VerifyingKey>,
    logs: Vec<cairn_tlog::note::Verifier>,
}

impl Trust {
    pub(crate) fn load(data: &DataDir) -> Result<(Trust, SigningKey), EngineError> {
        let audit = AuditLog::open_waiting(data, LOCK_WAIT)?;
        let store = KeyStore::new(data);
        let key = store.load_or_create(&audit)?.0;
        let mut keys = vec![key.verifying_key().clone()];
        keys.extend(store.retired()?.into_iter().map(|r| r.key));
        let mut logs = vec![audit.verifier().clone()];
        logs.extend(
            crate::log_key::retired(data)?
                .into_iter()
                .map(|r| r.verifier),
        );
        Ok((Trust { keys, logs }, key))
    }

    /// The keys and the log's verifier as they are on disk, creating nothing
    /// (no signing key, no log key, no log directory, no `trusted_root.json`):
    /// for readers that promise to record nothing (`cairn policy eval`).
    /// Without a signing key or a log key nothing verifies.
    pub(crate) fn read_only(data: &DataDir) -> Result<Trust, EngineError> {
        let store = KeyStore::new(data);
        let mut keys: Vec<VerifyingKey> = store.public_key()?.into_iter().collect();
        keys.extend(store.retired()?.into_iter().map(|r| r.key));
        let logs = crate::log_key::verifiers(data)?;
        Ok(Trust { keys, logs })
    }

    /// The statement a bundle carries and the id of the key that signed it,
    /// when its signature and log entry verify against one of cairn's keys;
    /// otherwise why not.
    pub(crate) fn statement(&self, bundle: &[u8]) -> Result<(Value, String), String> {
        let bundle = Bundle::from_json(bundle).map_err(|e| format!("it is not a bundle: {e}"))?;
        if self.logs.is_empty() {
            return Err("the audit log has no key yet, so no log entry can verify".to_owned());
        }
        let mut last = None;
        for key in &self.keys {
            for log in &self.logs {
                match bundle.verify_with_log(key, log) {
                    Ok(payload) => {
                        let statement: Value = serde_json::from_slice(payload)
                            .map_err(|e| format!("its statement is not JSON: {e}"))?;
                        return Ok((statement, key.key_id().to_string()));
                    }
                    Err(e) => last = Some(e.to_string()),
                }
            }
        }
        Err(format!(
            "its signature or log entry does not verify against cairn's keys ({})",
            last.unwrap_or_else(|| "no key".to_owned())
        ))
    }
}

/// The sha256 digest an in-toto subject names (`digest.sha256`), when it is one.
pub(crate) fn subject_digest(subject: &Value) -> Option<Digest> {
    Digest::from_hex(subject["digest"]["sha256"].as_str()?).ok()
}

/// Whether the catalog admitted `digest` (`sha256:…`): a stored CycloneDX
/// statement about it, signed by cairn's key and in the log, which
/// [`crate::images::catalog::admit`] writes only once the base passed the
/// catalog's gate. `Err` says why not (for the refusal).
pub(crate) fn catalog_admitted(
    store: &dyn Store,
    trust: &Trust,
    digest: &str,
) -> Result<Result<(), String>, EngineError> {
    let Ok(wanted) = Digest::parse(digest) else {
        return Ok(Err(format!("{digest} is not a sha256 digest")));
    };
    let mut why = "there is no signed catalog admission (SBOM) about it".to_owned();
    for e in store.evidence_for_subject(digest)? {
        if e.run.is_some() || e.predicate_type != "https://cyclonedx.org/bom" {
            continue;
        }
        match trust.statement(&e.bundle) {
            Ok((statement, _)) => {
                let about = statement["subject"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|s| subject_digest(s) == Some(wanted));
                if about && statement["predicateType"] == "https://cyclonedx.org/bom" {
                    return Ok(Ok(()));
                }
                why = format!("its admission bundle {} is about another artifact", e.id);
            }
            Err(reason) => why = format!("its admission bundle {} {reason}", e.id),
        }
    }
    Ok(Err(why))
}

/// A bundle that did not verify, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The bundle's evidence id; `None` for a fact of the store that its
    /// signed evidence contradicts (an image record).
    pub evidence: Option<i64>,
    /// What the row says it is (its predicate type column), for people.
    pub what: String,
    pub reason: String,
}

impl Failure {
    /// As the gate input names it (`verification.failures`).
    pub(crate) fn to_input(&self) -> cairn_policy::VerificationFailure {
        cairn_policy::VerificationFailure {
            evidence: self.evidence,
            what: self.what.clone(),
            reason: self.reason.clone(),
        }
    }
}

/// The facts a statement signs about where it came from (cairn's provenance
/// and test results carry them; other statements carry none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SignedFacts {
    pub run: Option<String>,
    pub stage: Option<String>,
    pub stage_kind: Option<String>,
    pub workload: Option<String>,
    pub commit: Option<String>,
    pub triggered_by: Option<String>,
    /// Provenance only: the builder id.
    pub builder: Option<String>,
    /// Provenance only: the catalog base digests it names (`sha256:…`).
    pub bases: Vec<String>,
    /// Provenance only: the change's commits (`changeCommits`), as signed.
    pub change: Vec<cairn_evidence::ChangeCommit>,
}

/// One bundle that verified, about the artifact.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub statement: Value,
    pub signer: String,
    pub facts: SignedFacts,
}

impl Checked {
    pub(crate) fn predicate_type(&self) -> &str {
        self.statement["predicateType"].as_str().unwrap_or_default()
    }
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// The signed facts of a statement.
pub(crate) fn signed_facts(statement: &Value) -> SignedFacts {
    let p = &statement["predicate"];
    match statement["predicateType"].as_str() {
        Some(PROVENANCE_PREDICATE_TYPE) => {
            let internal = &p["buildDefinition"]["internalParameters"];
            let external = &p["buildDefinition"]["externalParameters"];
            SignedFacts {
                run: text(&p["runDetails"]["metadata"]["invocationId"]),
                stage: text(&internal["stage"]),
                stage_kind: text(&internal["stageKind"]),
                workload: text(&external["workload"]),
                commit: text(&external["commit"]),
                triggered_by: text(&internal["triggeredBy"]),
                builder: text(&p["runDetails"]["builder"]["id"]),
                bases: p["buildDefinition"]["resolvedDependencies"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|d| {
                        d["name"]
                            .as_str()
                            .is_some_and(|n| n.starts_with("catalog base "))
                    })
                    .filter_map(|d| d["digest"]["sha256"].as_str())
                    // Malformed hex stays as it was signed: it names no
                    // catalog entry, so a gate never finds it admitted.
                    .map(|h| Digest::from_hex(h).map_or_else(|_| h.to_owned(), |d| d.to_string()))
                    .collect(),
                change: internal["changeCommits"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| serde_json::from_value(c.clone()).ok())
                    .collect(),
            }
        }
        Some(TEST_RESULT_PREDICATE_TYPE) => {
            let configuration = p["configuration"].as_array();
            let find = |name: &str| {
                configuration
                    .into_iter()
                    .flatten()
                    .find(|d| d["name"].as_str() == Some(name))
            };
            let stage = find(cairn_evidence::test_result::STAGE_DESCRIPTOR_NAME);
            let note = |key: &str| stage.and_then(|d| text(&d["annotations"][key]));
            SignedFacts {
                run: note("cairn.run"),
                stage: note("cairn.stage"),
                stage_kind: note("cairn.stageKind"),
                workload: note("cairn.workload"),
                commit: find("cairn.toml").and_then(|d| text(&d["digest"]["gitCommit"])),
                triggered_by: note("cairn.triggeredBy"),
                builder: None,
                bases: Vec::new(),
                change: Vec::new(),
            }
        }
        _ => SignedFacts::default(),
    }
}

/// Reads every stored bundle filed under `digest` and checks it: signature and
/// log entry against cairn's keys, the signed subject is `digest` and the
/// signed workload `workload` (otherwise it is a [`Failure`] and not
/// returned); the row's predicate type, run and stage (name and kind) are the
/// ones the statement signs (otherwise the bundle is returned — its content is
/// authentic — *and* named as a [`Failure`]).
pub(crate) fn about_artifact(
    store: &dyn Store,
    trust: &Trust,
    digest: &str,
    workload: &str,
) -> Result<(Vec<Checked>, Vec<Failure>), EngineError> {
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    let mut stages: BTreeMap<RunId, Vec<StageRecord>> = BTreeMap::new();
    for e in store.evidence_for_subject(digest)? {
        let fail = |reason| Failure {
            evidence: Some(e.id),
            what: e.predicate_type.chars().take(200).collect(),
            reason,
        };
        match check(trust, &e, digest, workload) {
            Ok(c) => {
                // Authentic and about the artifact: the gate reads its signed
                // content; a row that disagrees with it is named as well.
                if let Some(why) = row_disagrees(store, &e, &c, &mut stages)? {
                    failures.push(fail(why));
                }
                checked.push(c);
            }
            Err(reason) => failures.push(fail(reason)),
        }
    }
    Ok((checked, failures))
}

fn check(
    trust: &Trust,
    e: &EvidenceRecord,
    digest: &str,
    workload: &str,
) -> Result<Checked, String> {
    let (statement, signer) = trust.statement(&e.bundle)?;
    let wanted = Digest::parse(digest).map_err(|e| e.to_string())?;
    let subjects: Vec<Digest> = statement["subject"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(subject_digest)
        .collect();
    if !subjects.contains(&wanted) {
        return Err(format!(
            "it is filed under {digest}, but its signed statement is about {}",
            if subjects.is_empty() {
                "no sha256 subject".to_owned()
            } else {
                subjects
                    .iter()
                    .map(Digest::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
    }
    let facts = signed_facts(&statement);
    if let Some(signed) = &facts.workload
        && signed != workload
    {
        return Err(format!(
            "it is signed about workload `{signed}`, not `{workload}`"
        ));
    }
    Ok(Checked {
        statement,
        signer,
        facts,
    })
}

/// Why the row that filed a verified bundle disagrees with what the bundle
/// signs (its predicate type, run, its stage's name and kind), if it does.
fn row_disagrees(
    store: &dyn Store,
    e: &EvidenceRecord,
    c: &Checked,
    stages: &mut BTreeMap<RunId, Vec<StageRecord>>,
) -> Result<Option<String>, EngineError> {
    let facts = &c.facts;
    if c.predicate_type() != e.predicate_type {
        return Ok(Some(format!(
            "its row says it is a {}, but it signs a {}",
            e.predicate_type.chars().take(200).collect::<String>(),
            c.predicate_type()
        )));
    }
    let Some(run) = e.run else {
        return Ok(None);
    };
    if let Some(signed) = &facts.run
        && *signed != run.to_string()
    {
        return Ok(Some(format!(
            "its row files it under run {run}, but it signs run {signed}"
        )));
    }
    let (Some(stage_id), Some(signed_stage)) = (e.stage, &facts.stage) else {
        return Ok(None);
    };
    let rows = match stages.entry(run) {
        std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
        std::collections::btree_map::Entry::Vacant(v) => v.insert(store.stages(run)?),
    };
    let row = rows.iter().find(|s| s.id == stage_id);
    let Some(row) = row else {
        return Ok(Some(format!(
            "its row files it under a stage run {run} does not have"
        )));
    };
    let signed_kind = facts.stage_kind.as_deref().unwrap_or("?");
    if row.name != *signed_stage || row.kind.as_str() != signed_kind {
        return Ok(Some(format!(
            "its row files it under stage `{}` ({}) of run {run}, but it signs stage `{signed_stage}` ({signed_kind})",
            row.name,
            row.kind.as_str()
        )));
    }
    Ok(None)
}

/// One bundle checked: the statement and the id of the key that signed it, or
/// why it does not verify.
pub type BundleCheck = Result<(Value, String), String>;

/// Each bundle checked as the gate checks it (signature and log entry against
/// cairn's keys), reading only — no key, log key or log entry is created: the
/// statement and the signing key's id, or why it does not verify. For pages
/// that show a "verify" result beside each statement.
pub fn check_bundles(data: &DataDir, bundles: &[&[u8]]) -> Result<Vec<BundleCheck>, EngineError> {
    let trust = Trust::read_only(data)?;
    Ok(bundles.iter().map(|b| trust.statement(b)).collect())
}

/// Whether a verified statement names `digest` (`sha256:<hex>`) among its subjects.
pub fn names_subject(statement: &Value, digest: &str) -> bool {
    statement["subject"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(subject_digest)
        .any(|d| d.to_string() == digest)
}
