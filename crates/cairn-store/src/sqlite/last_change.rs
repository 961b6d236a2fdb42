//! The newest change record of one kind, by the `changes_by_kind` index
//! (schema v12): one row read, however many changes are newer.

use cairn_model::ChangeRecord;
use rusqlite::{OptionalExtension, Transaction, params};

use crate::StoreError;

pub(super) fn last_change_of_kind(
    tx: &Transaction<'_>,
    kind: &str,
) -> Result<Option<(i64, ChangeRecord)>, StoreError> {
    let what = "reading the last change record of a kind";
    let row = tx
        .prepare_cached(
            "SELECT id, kind, workload, environment, actor, from_digest, to_digest, log_index, \
             at_ms, json FROM changes WHERE kind = ?1 ORDER BY id DESC LIMIT 1",
        )
        .map_err(StoreError::sqlite(what))?
        .query_row(params![kind], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(7)?,
                ChangeRecord {
                    kind: r.get(1)?,
                    workload: r.get(2)?,
                    environment: r.get(3)?,
                    actor: r.get(4)?,
                    from_digest: r.get(5)?,
                    to_digest: r.get(6)?,
                    log_index: 0,
                    at_ms: r.get(8)?,
                    json: r.get(9)?,
                },
            ))
        })
        .optional()
        .map_err(StoreError::sqlite(what))?;
    row.map(|(id, index, mut c)| {
        c.log_index = u64::try_from(index).map_err(|_| StoreError::Corrupt {
            what: "log index",
            value: index.to_string(),
        })?;
        Ok((id, c))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn the_newest_change_of_a_kind_is_found_by_the_index() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut conn = conn;
        crate::sqlite::schema::migrate(&mut conn, std::path::Path::new(":memory:")).unwrap();
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id FROM changes WHERE kind = 'x' ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("changes_by_kind"), "{plan}");
    }
}
