//! [`ServerStore`] on PostgreSQL: webhook deliveries, each accepted once, and the
//! store's view of the audit log (the same rules as `sqlite/server.rs`).
//!
//! A delivery is recorded with the run it created in one transaction, so a
//! replayed delivery can never create a second run.

use cairn_model::{DeliveryRecord, NewDelivery, NewRun, RunId};

use super::runs::insert_run;
use super::{PostgresStore, Tx, count, sql_limit};
use crate::sqlite::text::{check_len, check_nonempty};
use crate::{DeliveryAccepted, LogMark, ServerStore, StoreError};

// ---- webhook deliveries ----------------------------------------------------------------

fn accept_delivery(
    tx: &mut Tx<'_>,
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
    let seen = tx.opt(
        what,
        "SELECT 1 FROM webhook_deliveries WHERE forge = $1 AND delivery = $2",
        &[&d.forge, &d.delivery],
        |_| Ok(()),
    )?;
    if seen.is_some() {
        return Ok(DeliveryAccepted::Replay);
    }
    let created = run.map(|run| insert_run(tx, run, what)).transpose()?;
    tx.exec(
        what,
        "INSERT INTO webhook_deliveries (forge, delivery, event, received_at_ms, outcome, \
         run_id) VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &d.forge,
            &d.delivery,
            &d.event,
            &d.received_at_ms,
            &d.outcome,
            &created.as_ref().map(|(r, _)| r.id.0),
        ],
    )?;
    Ok(DeliveryAccepted::Accepted { run: created })
}

fn deliveries(tx: &mut Tx<'_>, limit: i64) -> Result<Vec<DeliveryRecord>, StoreError> {
    tx.all(
        "listing webhook deliveries",
        "SELECT forge, delivery, event, received_at_ms, outcome, run_id \
         FROM webhook_deliveries ORDER BY received_at_ms DESC, seq DESC LIMIT $1",
        &[&limit],
        |r| {
            Ok(DeliveryRecord {
                forge: r.try_get(0)?,
                delivery: r.try_get(1)?,
                event: r.try_get(2)?,
                received_at_ms: r.try_get(3)?,
                outcome: r.try_get(4)?,
                run: r.try_get::<_, Option<i64>>(5)?.map(RunId),
            })
        },
    )
}

impl ServerStore for PostgresStore {
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
        wait: std::time::Duration,
    ) -> Result<Option<Box<dyn std::any::Any + Send>>, StoreError> {
        let what = "taking the audit log's append lock";
        let mut conn = self.connect()?;
        conn.client
            .batch_execute(&format!(
                "SET lock_timeout = '{}ms'; SELECT pg_advisory_lock({})",
                wait.as_millis().max(1),
                super::LOG_LOCK
            ))
            .map_err(|e| StoreError::postgres(what, e))?;
        // Closing the connection (dropping the guard) releases the lock.
        Ok(Some(Box::new(conn.client)))
    }

    fn log_mark(&self) -> Result<LogMark, StoreError> {
        self.read("reading the log mark", |tx| {
            let row: Option<(Option<i64>, Option<String>, i64)> = tx.opt(
                "reading the log mark",
                "SELECT size, root, at_ms FROM log_mark WHERE id = 1",
                &[],
                |r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)),
            )?;
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
            tx.exec(
                "recording the log mark",
                "INSERT INTO log_mark (id, size, root, at_ms) VALUES (1, $1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET size = $1, root = $2, at_ms = $3 \
                 WHERE log_mark.size IS NULL OR log_mark.size <= $1",
                &[&sql_size, &root, &at_ms],
            )?;
            Ok(())
        })
    }

    fn take_duty(
        &self,
        duty: &str,
        owner: &str,
        ttl_ms: i64,
        _now_ms: i64,
    ) -> Result<bool, StoreError> {
        let what = "taking a duty lease";
        crate::sqlite::text::check_duty(duty, owner, ttl_ms)?;
        // The database's clock judges expiry: replicas' clocks may disagree.
        let now = super::runs::DB_NOW_MS;
        self.write(what, |tx| {
            let changed = tx.exec(
                what,
                &format!(
                    "INSERT INTO duty_leases (duty, owner, expires_at_ms) \
                     VALUES ($1, $2, {now} + $3) \
                     ON CONFLICT (duty) DO UPDATE SET owner = excluded.owner, \
                         expires_at_ms = excluded.expires_at_ms \
                     WHERE duty_leases.owner = excluded.owner \
                        OR duty_leases.expires_at_ms < {now}"
                ),
                &[&duty, &owner, &ttl_ms],
            )?;
            Ok(changed == 1)
        })
    }

    fn duty_holder(&self, duty: &str) -> Result<Option<String>, StoreError> {
        let what = "reading a duty lease";
        self.read(what, |tx| {
            tx.opt(
                what,
                "SELECT owner FROM duty_leases WHERE duty = $1",
                &[&duty],
                |r| r.try_get(0),
            )
        })
    }

    fn release_duty(&self, duty: &str, owner: &str) -> Result<bool, StoreError> {
        let what = "releasing a duty lease";
        self.write(what, |tx| {
            let changed = tx.exec(
                what,
                "DELETE FROM duty_leases WHERE duty = $1 AND owner = $2",
                &[&duty, &owner],
            )?;
            Ok(changed == 1)
        })
    }
}
