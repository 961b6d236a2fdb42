//! [`ServerStore`] on SQLite: webhook deliveries (schema v8), each accepted once,
//! and the store's view of the audit log (the log mark, v9).
//!
//! A delivery is recorded with the run it created in one transaction, so a
//! replayed delivery can never create a second run.

use cairn_model::{DeliveryRecord, NewDelivery, NewRun, RunId};
use rusqlite::{OptionalExtension, Transaction, params};

use super::runs::insert_run;
use super::text::{check_duty, check_len, check_nonempty};
use super::{SqliteStore, count, sql_limit};
use crate::{DeliveryAccepted, LogMark, ServerStore, StoreError};

// ---- webhook deliveries ----------------------------------------------------------------

pub(super) fn accept_delivery(
    tx: &Transaction<'_>,
    d: &NewDelivery,
    run: Option<&NewRun>,
) -> Result<DeliveryAccepted, StoreError> {
    let what = "accepting a webhook delivery";
    check_len(
        "a webhook delivery's field",
        &[&d.forge, &d.delivery, &d.event, &d.outcome],
    )?;
    check_nonempty("webhook delivery", "forge", &d.forge)?;
    check_nonempty("webhook delivery", "delivery id", &d.delivery)?;
    let seen = super::cached_row(
        tx,
        "SELECT 1 FROM webhook_deliveries WHERE forge = ?1 AND delivery = ?2",
        params![d.forge, d.delivery],
        |_| Ok(()),
    )
    .optional()
    .map_err(StoreError::sqlite(what))?;
    if seen.is_some() {
        return Ok(DeliveryAccepted::Replay);
    }
    let created = run.map(|run| insert_run(tx, run, what)).transpose()?;
    tx.execute(
        "INSERT INTO webhook_deliveries (forge, delivery, event, received_at_ms, outcome, \
         run_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            d.forge,
            d.delivery,
            d.event,
            d.received_at_ms,
            d.outcome,
            created.as_ref().map(|(r, _)| r.id.0)
        ],
    )
    .map_err(StoreError::sqlite(what))?;
    Ok(DeliveryAccepted::Accepted { run: created })
}

pub(super) fn deliveries(
    tx: &rusqlite::Connection,
    limit: i64,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let what = "listing webhook deliveries";
    let mut stmt = tx
        .prepare_cached(
            "SELECT forge, delivery, event, received_at_ms, outcome, run_id \
             FROM webhook_deliveries ORDER BY received_at_ms DESC, rowid DESC LIMIT ?1",
        )
        .map_err(StoreError::sqlite(what))?;
    stmt.query_map([limit], |r| {
        Ok(DeliveryRecord {
            forge: r.get(0)?,
            delivery: r.get(1)?,
            event: r.get(2)?,
            received_at_ms: r.get(3)?,
            outcome: r.get(4)?,
            run: r.get::<_, Option<i64>>(5)?.map(RunId),
        })
    })
    .map_err(StoreError::sqlite(what))?
    .collect::<Result<Vec<_>, _>>()
    .map_err(StoreError::sqlite(what))
}

impl ServerStore for SqliteStore {
    fn accept_delivery(
        &self,
        delivery: &NewDelivery,
        run: Option<&NewRun>,
    ) -> Result<DeliveryAccepted, StoreError> {
        self.write("accepting a webhook delivery", |tx| {
            accept_delivery(tx, delivery, run)
        })
    }

    fn deliveries(&self, limit: usize) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.read("listing webhook deliveries", |tx| {
            deliveries(tx, sql_limit(limit))
        })
    }

    fn lock_audit_log(
        &self,
        _wait: std::time::Duration,
    ) -> Result<Option<Box<dyn std::any::Any + Send>>, StoreError> {
        // One machine: the log's own lock file is the one lock.
        Ok(None)
    }

    fn log_mark(&self) -> Result<LogMark, StoreError> {
        self.read("reading the log mark", |tx| {
            let row: Option<(Option<i64>, Option<String>, i64)> = super::cached_row(
                tx,
                "SELECT size, root, at_ms FROM log_mark WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(StoreError::sqlite("reading the log mark"))?;
            Ok(match row {
                None => LogMark::New,
                Some((None, _, _)) => LogMark::Adopt,
                Some((Some(size), root, at_ms)) => LogMark::Seen {
                    size: count("log mark size", size)?,
                    root: root.unwrap_or_default(),
                    at_ms,
                },
            })
        })
    }

    fn set_log_mark(&self, size: u64, root: &str, at_ms: i64) -> Result<(), StoreError> {
        let sql_size = i64::try_from(size).map_err(|_| StoreError::Invalid {
            what: "log mark",
            why: format!("size {size} is out of range"),
        })?;
        self.write("recording the log mark", |tx| {
            tx.execute(
                "INSERT INTO log_mark (id, size, root, at_ms) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET size = ?1, root = ?2, at_ms = ?3
                 WHERE log_mark.size IS NULL OR log_mark.size <= ?1",
                params![sql_size, root, at_ms],
            )
            .map_err(StoreError::sqlite("recording the log mark"))?;
            Ok(())
        })
    }

    fn take_duty(
        &self,
        duty: &str,
        owner: &str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let what = "taking a duty lease";
        check_duty(duty, owner, ttl_ms)?;
        self.write(what, |tx| {
            let changed = tx
                .execute(
                    "INSERT INTO duty_leases (duty, owner, expires_at_ms) VALUES (?1, ?2, ?3 + ?4)
                     ON CONFLICT (duty) DO UPDATE SET owner = excluded.owner,
                         expires_at_ms = excluded.expires_at_ms
                     WHERE duty_leases.owner = excluded.owner OR duty_leases.expires_at_ms < ?3",
                    params![duty, owner, now_ms, ttl_ms],
                )
                .map_err(StoreError::sqlite(what))?;
            Ok(changed == 1)
        })
    }

    fn duty_holder(&self, duty: &str) -> Result<Option<String>, StoreError> {
        let what = "reading a duty lease";
        self.read(what, |tx| {
            tx.query_row(
                "SELECT owner FROM duty_leases WHERE duty = ?1",
                [duty],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::sqlite(what))
        })
    }

    fn release_duty(&self, duty: &str, owner: &str) -> Result<bool, StoreError> {
        let what = "releasing a duty lease";
        self.write(what, |tx| {
            let changed = tx
                .execute(
                    "DELETE FROM duty_leases WHERE duty = ?1 AND owner = ?2",
                    params![duty, owner],
                )
                .map_err(StoreError::sqlite(what))?;
            Ok(changed == 1)
        })
    }
}
