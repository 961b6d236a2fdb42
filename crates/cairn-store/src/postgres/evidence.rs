//! [`EvidenceStore`] on PostgreSQL: signed bundles by run and by subject digest
//! (the same rules as `sqlite/evidence.rs`).

use cairn_model::{EvidenceRecord, NewEvidence, RunId, StageId};
use postgres::Row;

use super::runs::{not_found_stage, run_status};
use super::{PostgresStore, Tx};
use crate::{EvidenceStore, StoreError};

const EVIDENCE_COLUMNS: &str =
    "id, run_id, stage_id, predicate_type, subject_name, subject_digest, bundle, created_at_ms";

fn evidence_from_row(row: &Row) -> Result<EvidenceRecord, postgres::Error> {
    Ok(EvidenceRecord {
        id: row.try_get(0)?,
        run: row.try_get::<_, Option<i64>>(1)?.map(RunId),
        stage: row.try_get::<_, Option<i64>>(2)?.map(StageId),
        predicate_type: row.try_get(3)?,
        subject_name: row.try_get(4)?,
        subject_digest: row.try_get(5)?,
        bundle: row.try_get(6)?,
        created_at_ms: row.try_get(7)?,
    })
}

fn query_evidence(
    tx: &mut Tx<'_>,
    what: &'static str,
    sql: &str,
    param: &(dyn postgres::types::ToSql + Sync),
) -> Result<Vec<EvidenceRecord>, StoreError> {
    tx.all(what, sql, &[param], evidence_from_row)
}

impl EvidenceStore for PostgresStore {
    fn add_evidence(&self, e: &NewEvidence) -> Result<i64, StoreError> {
        let what = "keeping evidence";
        check_evidence_size(e)?;
        self.write(what, |tx| insert_evidence(tx, e, what))
    }

    fn evidence_for_run(&self, run: RunId) -> Result<Vec<EvidenceRecord>, StoreError> {
        let what = "reading a run's evidence";
        self.snapshot(what, |tx| {
            run_status(tx, run, what)?;
            query_evidence(
                tx,
                what,
                &format!("SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE run_id = $1 ORDER BY id"),
                &run.0,
            )
        })
    }

    fn evidence_for_subject(&self, digest: &str) -> Result<Vec<EvidenceRecord>, StoreError> {
        let what = "reading an artifact's evidence";
        self.read(what, |tx| {
            query_evidence(
                tx,
                what,
                &format!(
                    "SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE subject_digest = $1 ORDER BY id"
                ),
                &digest,
            )
        })
    }
}

/// Refuses a bundle over [`crate::MAX_EVIDENCE_BYTES`].
pub(super) fn check_evidence_size(e: &NewEvidence) -> Result<(), StoreError> {
    if e.bundle.len() > crate::MAX_EVIDENCE_BYTES {
        return Err(StoreError::TooLarge {
            what: "the evidence bundle",
            size: e.bundle.len(),
            limit: crate::MAX_EVIDENCE_BYTES,
        });
    }
    Ok(())
}

/// Keeps one piece of evidence in `tx`, as `add_evidence` does and the stage
/// boundary does for its stage's: its run must exist, and its stage must be
/// of that run. Returns its id.
pub(super) fn insert_evidence(
    tx: &mut Tx<'_>,
    e: &NewEvidence,
    what: &'static str,
) -> Result<i64, StoreError> {
    check_evidence_size(e)?;
    if let Some(run) = e.run {
        run_status(tx, run, what)?;
    }
    if let Some(stage) = e.stage {
        let owner: Option<i64> = tx.opt(
            what,
            "SELECT run_id FROM stages WHERE id = $1",
            &[&stage.0],
            |r| r.try_get(0),
        )?;
        match owner {
            None => return Err(not_found_stage(stage)),
            Some(run) if Some(RunId(run)) != e.run => return Err(not_found_stage(stage)),
            Some(_) => {}
        }
    }
    tx.one(
        what,
        "INSERT INTO evidence (run_id, stage_id, predicate_type, subject_name, \
         subject_digest, bundle, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         RETURNING id",
        &[
            &e.run.map(|r| r.0),
            &e.stage.map(|s| s.0),
            &e.predicate_type,
            &e.subject_name,
            &e.subject_digest,
            &e.bundle,
            &e.created_at_ms,
        ],
        |r| r.try_get(0),
    )
}
