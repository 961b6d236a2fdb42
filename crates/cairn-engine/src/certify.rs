//! The one way the engine keeps evidence: sign the statement with cairn's key,
//! append the envelope to the audit log (durable before anything else), put that
//! log entry into the bundle, and only then store the bundle. Runs, the base
//! catalog, rebases, reviews and promotions all go through [`sign_and_keep`].

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
    let mut bundle = Bundle::sign_statement(statement, key)?;
    let receipt = AuditLog::open_waiting(data, LOCK_WAIT)?
        .record(&Change::evidence(&bundle.envelope, key.verifying_key())?)?;
    bundle
        .tlog_entries
        .push(receipt.tlog_entry(now_ms() / 1000));
    let id = store.add_evidence(&NewEvidence {
        run: filed.run,
        stage: filed.stage,
        predicate_type: statement.predicate_type.clone(),
        subject_name: filed.subject_name.to_owned(),
        subject_digest: filed.subject_digest.to_owned(),
        bundle: bundle.to_json()?.into_bytes(),
        created_at_ms: now_ms(),
    })?;
    Ok((id, receipt.index))
}
