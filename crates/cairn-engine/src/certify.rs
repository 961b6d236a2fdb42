//! The one way the engine keeps evidence: sign the statement with cairn's key,
//! append the envelope to the audit log (durable before anything else), put that
//! log entry into the bundle, and only then store the bundle. The base catalog,
//! rebases, reviews and promotions go through [`sign_and_keep`]; a run's stages
//! through [`sign`] and, at the stage's end, [`log_signed`] (every bundle of
//! the stage in one audit-log append), their bundles stored with the stage's
//! end in one transaction ([`cairn_store::RunStore::stage_boundary`]).

use cairn_evidence::{Bundle, Predicate, SigningKey, Statement};
use cairn_model::{NewEvidence, RunId, StageId};
use cairn_store::Store;

use crate::audit::{AuditLog, Change, LOCK_WAIT};
use crate::host::now_ms;
use crate::{DataDir, EngineError};

/// What a kept bundle is filed under.
#[derive(Debug, Clone, Copy)]
pub struct Filed<'a> {
    pub run: Option<RunId>,
    pub stage: Option<StageId>,
    pub subject_name: &'a str,
    /// `sha256:<hex>`, the digest the evidence is found by.
    pub subject_digest: &'a str,
}

/// Signs `statement` with `key`, records it in `data`'s audit log, and stores
/// the bundle (carrying its log entry) as `filed`. Returns the evidence id and
/// the log index.
pub fn sign_and_keep<P: Predicate>(
    data: &DataDir,
    store: &dyn Store,
    key: &SigningKey,
    statement: &Statement<P>,
    filed: Filed<'_>,
) -> Result<(i64, u64), EngineError> {
    let (evidence, index) = sign_and_log(data, key, statement, filed)?;
    let id = store.add_evidence(&evidence)?;
    Ok((id, index))
}

/// The first half of [`sign_and_keep`]: signs `statement` with `key` and
/// records it in `data`'s audit log (durable when this returns); returns the
/// bundle, carrying its log entry, as the store is to keep it, and the log
/// index. The caller stores it (a run at its stage's boundary: a bundle the
/// log holds but the store does not is never shown to a gate, which fails
/// closed without it).
pub fn sign_and_log<P: Predicate>(
    data: &DataDir,
    key: &SigningKey,
    statement: &Statement<P>,
    filed: Filed<'_>,
) -> Result<(NewEvidence, u64), EngineError> {
    let Signed {
        mut bundle,
        change,
        mut evidence,
    } = sign(key, statement, filed)?;
    let receipt = AuditLog::open_waiting(data, LOCK_WAIT)?.record(&change)?;
    bundle
        .tlog_entries
        .push(receipt.tlog_entry(now_ms() / 1000));
    evidence.bundle = bundle.to_json()?.into_bytes();
    evidence.created_at_ms = now_ms();
    Ok((evidence, receipt.index))
}

/// A statement signed and not yet in the audit log ([`sign`]): nothing may
/// store it before [`log_signed`] recorded it.
#[derive(Debug)]
pub struct Signed {
    bundle: Bundle,
    change: Change,
    evidence: NewEvidence,
}

/// Signs `statement` with `key`, to be filed as `filed` once
/// [`log_signed`] has recorded it in the audit log.
pub fn sign<P: Predicate>(
    key: &SigningKey,
    statement: &Statement<P>,
    filed: Filed<'_>,
) -> Result<Signed, EngineError> {
    let bundle = Bundle::sign_statement(statement, key)?;
    let change = Change::evidence(&bundle.envelope, key.verifying_key())?;
    Ok(Signed {
        bundle,
        change,
        evidence: NewEvidence {
            run: filed.run,
            stage: filed.stage,
            predicate_type: statement.predicate_type.clone(),
            subject_name: filed.subject_name.to_owned(),
            subject_digest: filed.subject_digest.to_owned(),
            bundle: Vec::new(),
            created_at_ms: now_ms(),
        },
    })
}

/// Records `signed` in `data`'s audit log in one append (durable when this
/// returns: one set of fsyncs however many) and returns each bundle, carrying
/// its log entry, as the store is to keep it, with its log index, in order.
pub fn log_signed(
    data: &DataDir,
    signed: Vec<Signed>,
) -> Result<Vec<(NewEvidence, u64)>, EngineError> {
    if signed.is_empty() {
        return Ok(Vec::new());
    }
    let changes: Vec<Change> = signed.iter().map(|s| s.change.clone()).collect();
    let receipts = AuditLog::open_waiting(data, LOCK_WAIT)?.record_all(&changes)?;
    let integrated = now_ms() / 1000;
    signed
        .into_iter()
        .zip(receipts)
        .map(|(mut s, receipt)| {
            s.bundle.tlog_entries.push(receipt.tlog_entry(integrated));
            s.evidence.bundle = s.bundle.to_json()?.into_bytes();
            s.evidence.created_at_ms = now_ms();
            Ok((s.evidence, receipt.index))
        })
        .collect()
}
