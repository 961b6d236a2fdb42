//! The one way the engine keeps evidence: sign the statement with cairn's key,
//! append the envelope to the audit log (durable before anything else), put that
//! log entry into the bundle, and only then store the bundle. The base catalog,
//! rebases, reviews and promotions go through [`sign_and_keep`]; a run's stages
//! through [`sign_and_log`], their bundles stored with the stage's end in one
//! transaction ([`cairn_store::RunStore::stage_boundary`]).

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
    let mut bundle = Bundle::sign_statement(statement, key)?;
    let receipt = AuditLog::open_waiting(data, LOCK_WAIT)?
        .record(&Change::evidence(&bundle.envelope, key.verifying_key())?)?;
    bundle
        .tlog_entries
        .push(receipt.tlog_entry(now_ms() / 1000));
    let evidence = NewEvidence {
        run: filed.run,
        stage: filed.stage,
        predicate_type: statement.predicate_type.clone(),
        subject_name: filed.subject_name.to_owned(),
        subject_digest: filed.subject_digest.to_owned(),
        bundle: bundle.to_json()?.into_bytes(),
        created_at_ms: now_ms(),
    };
    Ok((evidence, receipt.index))
}
