//! [`EvidenceStore`] on SQLite: signed bundles by run and by subject digest.

use cairn_model::{EvidenceRecord, NewEvidence, RunId, StageId};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::runs::{not_found_stage, run_status};
use crate::{EvidenceStore, StoreError};

const EVIDENCE_COLUMNS: &str =
    "id, run_id, stage_id, predicate_type, subject_name, subject_digest, bundle, created_at_ms";

fn evidence_from_row(row: &Row<'_>) -> rusqlite::Result<EvidenceRecord> {
    Ok(EvidenceRecord {
        id: row.get(0)?,
        run: row.get::<_, Option<i64>>(1)?.map(RunId),
        stage: row.get::<_, Option<i64>>(2)?.map(StageId),
        predicate_type: row.get(3)?,
        subject_name: row.get(4)?,
        subject_digest: row.get(5)?,
        bundle: row.get(6)?,
        created_at_ms: row.get(7)?,
    })
}

fn query_evidence(
    tx: &Connection,
    what: &'static str,
    sql: &str,
    param: &dyn rusqlite::ToSql,
) -> Result<Vec<EvidenceRecord>, StoreError> {
    let mut stmt = tx.prepare_cached(sql).map_err(StoreError::sqlite(what))?;
    stmt.query_map([param], evidence_from_row)
        .map_err(StoreError::sqlite(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite(what))
}

/// Refuses a bundle larger than [`crate::MAX_EVIDENCE_BYTES`].
pub(super) fn check_size(e: &NewEvidence) -> Result<(), StoreError> {
    if e.bundle.len() > crate::MAX_EVIDENCE_BYTES {
        return Err(StoreError::TooLarge {
            what: "the evidence bundle",
            size: e.bundle.len(),
            limit: crate::MAX_EVIDENCE_BYTES,
        });
    }
    Ok(())
}

/// Keeps one bundle in `tx` (the body of [`EvidenceStore::add_evidence`],
/// after [`check_size`]): its run and stage must exist, the stage the run's.
pub(super) fn insert_evidence(
    tx: &Connection,
    e: &NewEvidence,
    what: &'static str,
) -> Result<i64, StoreError> {
    if let Some(run) = e.run {
        run_status(tx, run, what)?;
    }
    if let Some(stage) = e.stage {
        let owner: Option<i64> = super::cached_row(
            tx,
            "SELECT run_id FROM stages WHERE id = ?1",
            [stage.0],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::sqlite(what))?;
        match owner {
            None => return Err(not_found_stage(stage)),
            Some(run) if Some(RunId(run)) != e.run => return Err(not_found_stage(stage)),
            Some(_) => {}
        }
    }
    tx.execute(
        "INSERT INTO evidence (run_id, stage_id, predicate_type, subject_name, \
         subject_digest, bundle, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            e.run.map(|r| r.0),
            e.stage.map(|s| s.0),
            e.predicate_type,
            e.subject_name,
            e.subject_digest,
            e.bundle,
            e.created_at_ms
        ],
    )
    .map_err(StoreError::sqlite(what))?;
    Ok(tx.last_insert_rowid())
}

impl EvidenceStore for SqliteStore {
    fn add_evidence(&self, e: &NewEvidence) -> Result<i64, StoreError> {
        let what = "keeping evidence";
        check_size(e)?;
        self.write(what, |tx| insert_evidence(tx, e, what))
    }

    fn evidence_for_run(&self, run: RunId) -> Result<Vec<EvidenceRecord>, StoreError> {
        let what = "reading a run's evidence";
        self.read(what, |tx| {
            run_status(tx, run, what)?;
            query_evidence(
                tx,
                what,
                &format!("SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE run_id = ?1 ORDER BY id"),
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
                    "SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE subject_digest = ?1 ORDER BY id"
                ),
                &digest,
            )
        })
    }
}
