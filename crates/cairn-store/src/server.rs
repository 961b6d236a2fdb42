//! What the server keeps beside runs: webhook deliveries (each accepted once),
//! and the store's view of the audit log (the log mark).

use cairn_model::{DeliveryRecord, NewDelivery, NewRun, RunRecord, StageRecord};

use crate::StoreError;

/// What [`ServerStore::accept_delivery`] did.
// Returned once per delivery and matched at once: boxing the run buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryAccepted {
    /// The (forge, delivery) was seen before: nothing was written.
    Replay,
    /// The delivery was recorded, with the run it created, if one was asked for.
    Accepted {
        run: Option<(RunRecord, Vec<StageRecord>)>,
    },
}

/// The audit log as the store last checked it, from [`ServerStore::log_mark`]. The
/// store and the log are a pair: the engine compares this with the log on open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogMark {
    /// The store has never been paired with a log: it is new (or was emptied).
    New,
    /// The store holds data from before the mark existed: it takes the log as
    /// it finds it, once.
    Adopt,
    /// The log had `size` entries with root `root` (hex) when last checked.
    Seen { size: u64, root: String, at_ms: i64 },
}

/// Webhook deliveries and the audit log mark.
///
/// Every method is one transaction (see [`Store`](crate::Store)).
pub trait ServerStore {
    /// Records a webhook delivery and, when `run` is given, creates that run as
    /// [`RunStore::create_run`](crate::RunStore::create_run) does, in one transaction. A (forge, delivery) seen
    /// before is a [`DeliveryAccepted::Replay`] and writes nothing.
    fn accept_delivery(
        &self,
        delivery: &NewDelivery,
        run: Option<&NewRun>,
    ) -> Result<DeliveryAccepted, StoreError>;

    /// The last `limit` deliveries, newest first (by receipt time, then arrival).
    fn deliveries(&self, limit: usize) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// Takes the store-wide lock of the audit log's appender, waiting up to
    /// `wait`: held while the returned guard lives, so that processes on many
    /// hosts sharing one store append to the log one at a time, even where
    /// their shared volume's file lock does not reach across hosts. `None`
    /// where the store is one machine's (SQLite: the log's lock file serves).
    /// PostgreSQL: a session advisory lock on a connection of the guard's own.
    fn lock_audit_log(
        &self,
        wait: std::time::Duration,
    ) -> Result<Option<Box<dyn std::any::Any + Send>>, StoreError>;

    /// The audit log as the store last checked it.
    fn log_mark(&self) -> Result<LogMark, StoreError>;

    /// Records that the log had `size` entries with root `root` (hex). The mark
    /// only moves forward: a smaller size than the one kept is ignored (another
    /// process checked a longer log meanwhile).
    fn set_log_mark(&self, size: u64, root: &str, at_ms: i64) -> Result<(), StoreError>;

    /// Takes or renews the lease on the installation-wide duty `duty` (the
    /// advisory feed, the exposure watch, the remediation loop: work exactly one
    /// process at a time performs) for `owner`, for `ttl_ms` from now. True when
    /// `owner` holds it afterwards: it was free, already `owner`'s, or its
    /// holder's lease had run out. Two owners never hold one duty at once.
    /// "Now" is `now_ms` on SQLite (one machine, one clock) and the database's
    /// own clock on PostgreSQL, so replicas with skewed clocks agree, as with
    /// [`RunStore::heartbeat_runs`](crate::RunStore::heartbeat_runs).
    fn take_duty(
        &self,
        duty: &str,
        owner: &str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Who holds (or last held, if it ran out) the lease on `duty`; `None`
    /// when nobody took it or it was released. With [`ServerStore::release_duty`]
    /// a process takes over at once a lease whose holder it knows to be gone.
    fn duty_holder(&self, duty: &str) -> Result<Option<String>, StoreError>;

    /// Gives up `owner`'s lease on `duty` (a process stopping), so another may
    /// take it at once; a lease held by someone else is left alone. True when
    /// one was released.
    fn release_duty(&self, duty: &str, owner: &str) -> Result<bool, StoreError>;
}
