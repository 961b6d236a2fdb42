//! Cases of [`ServerStore`](crate::ServerStore): webhook deliveries and the log mark.

use super::*;

pub fn a_delivery_is_accepted_once(store: &dyn Store) -> Result<(), StoreError> {
    store.upsert_workload("app", REPO, 1)?;
    assert!(store.deliveries(10)?.is_empty());
    let first = delivery("d-1", 100, "queued run");
    let run = webhook_run("app", 100, "d-1");
    let accepted = store.accept_delivery(&first, Some(&run))?;
    let DeliveryAccepted::Accepted {
        run: Some((record, stages)),
    } = accepted
    else {
        panic!("a new delivery with a run must create it: {accepted:?}");
    };
    // The run is created exactly as `create_run` does.
    assert_eq!(record.status, RunStatus::Queued);
    assert_eq!(record.trigger, run.trigger);
    assert_eq!(get_run(store, record.id)?, record);
    assert_eq!(store.stages(record.id)?, stages);
    assert_eq!(
        stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        vec!["source", "build"]
    );
    assert_eq!(store.queued_count()?, 1);
    let kept = store.deliveries(10)?;
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (
            kept[0].forge.as_str(),
            kept[0].delivery.as_str(),
            kept[0].event.as_str(),
            kept[0].received_at_ms,
            kept[0].outcome.as_str(),
            kept[0].run
        ),
        ("github", "d-1", "push", 100, "queued run", Some(record.id))
    );
    // A replay, even with another run or outcome, writes nothing.
    let replay = NewDelivery {
        outcome: "queued run again".to_owned(),
        received_at_ms: 200,
        ..first.clone()
    };
    assert_eq!(
        store.accept_delivery(&replay, Some(&webhook_run("app", 200, "d-1")))?,
        DeliveryAccepted::Replay
    );
    assert_eq!(
        store.accept_delivery(&replay, None)?,
        DeliveryAccepted::Replay
    );
    assert_eq!(store.runs(&RunFilter::default())?, vec![record]);
    assert_eq!(store.deliveries(10)?, kept);
    // The same id from another forge is another delivery.
    let gitea = NewDelivery {
        forge: "gitea".to_owned(),
        ..first
    };
    assert!(matches!(
        store.accept_delivery(&gitea, None)?,
        DeliveryAccepted::Accepted { run: None }
    ));
    // A run that cannot be created refuses the delivery too: it may come again.
    let ghost = delivery("d-2", 300, "queued run");
    assert_not_found(
        store.accept_delivery(&ghost, Some(&webhook_run("ghost", 300, "d-2"))),
        "workload",
    );
    assert_eq!(store.deliveries(10)?.len(), 2);
    assert!(matches!(
        store.accept_delivery(&ghost, None)?,
        DeliveryAccepted::Accepted { run: None }
    ));
    Ok(())
}

pub fn a_delivery_may_create_no_run(store: &dyn Store) -> Result<(), StoreError> {
    let a = delivery("a", 10, "ignored: not a watched branch");
    let b = delivery("b", 30, "ignored: ping");
    let c = delivery("c", 20, "ignored: unknown repository");
    for d in [&a, &b, &c] {
        assert_eq!(
            store.accept_delivery(d, None)?,
            DeliveryAccepted::Accepted { run: None }
        );
    }
    assert!(store.runs(&RunFilter::default())?.is_empty());
    let listed = store.deliveries(10)?;
    assert_eq!(
        listed
            .iter()
            .map(|d| (d.delivery.as_str(), d.run))
            .collect::<Vec<_>>(),
        vec![("b", None), ("c", None), ("a", None)],
        "newest first"
    );
    assert_eq!(listed[0].outcome, "ignored: ping");
    assert_eq!(store.deliveries(1)?.len(), 1);
    assert!(store.deliveries(0)?.is_empty());
    // Bounded and complete.
    assert!(matches!(
        store.accept_delivery(&delivery("", 40, "x"), None),
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store.accept_delivery(&delivery("d", 40, &"x".repeat(5000)), None),
        Err(StoreError::TooLarge { .. })
    ));
    assert_eq!(store.deliveries(10)?.len(), 3);
    Ok(())
}

/// A new store has never seen a log; the mark it is given is kept, and a smaller
/// size (another process's older view) does not move it back.
pub fn the_log_mark_starts_new_and_only_moves_forward(store: &dyn Store) -> Result<(), StoreError> {
    assert_eq!(store.log_mark()?, LogMark::New);
    store.set_log_mark(3, "aa", 10)?;
    assert_eq!(
        store.log_mark()?,
        LogMark::Seen {
            size: 3,
            root: "aa".into(),
            at_ms: 10
        }
    );
    store.set_log_mark(2, "bb", 20)?;
    assert_eq!(
        store.log_mark()?,
        LogMark::Seen {
            size: 3,
            root: "aa".into(),
            at_ms: 10
        }
    );
    store.set_log_mark(5, "cc", 30)?;
    assert_eq!(
        store.log_mark()?,
        LogMark::Seen {
            size: 5,
            root: "cc".into(),
            at_ms: 30
        }
    );
    Ok(())
}

pub fn a_duty_has_one_holder_until_its_lease_runs_out(store: &dyn Store) -> Result<(), StoreError> {
    let now = super::runs::wall_ms;
    // One of two owners wins; the other is refused while the lease lasts.
    assert!(store.take_duty("watch", "replica-a", 60_000, now())?);
    assert!(!store.take_duty("watch", "replica-b", 60_000, now())?);
    // Duties are independent: the other replica may hold another one.
    assert!(store.take_duty("feed", "replica-b", 60_000, now())?);
    assert!(!store.take_duty("feed", "replica-a", 60_000, now())?);
    // The holder renews (here to a short lease), and keeps it while it renews.
    assert!(store.take_duty("watch", "replica-a", 200, now())?);
    std::thread::sleep(std::time::Duration::from_millis(120));
    assert!(store.take_duty("watch", "replica-a", 200, now())?);
    std::thread::sleep(std::time::Duration::from_millis(120));
    assert!(
        !store.take_duty("watch", "replica-b", 60_000, now())?,
        "renewed: still held"
    );
    // The holder stops renewing: once the lease ran out, the other takes over,
    // and the old holder cannot renew what it lost.
    std::thread::sleep(std::time::Duration::from_millis(350));
    assert!(store.take_duty("watch", "replica-b", 60_000, now())?);
    assert!(!store.take_duty("watch", "replica-a", 60_000, now())?);
    // Only the holder releases; then anyone takes it at once.
    assert!(!store.release_duty("watch", "replica-a")?);
    assert!(!store.take_duty("watch", "replica-c", 60_000, now())?);
    assert_eq!(store.duty_holder("watch")?.as_deref(), Some("replica-b"));
    assert!(store.release_duty("watch", "replica-b")?);
    assert_eq!(store.duty_holder("watch")?, None);
    assert!(store.take_duty("watch", "replica-c", 60_000, now())?);
    assert_eq!(store.duty_holder("watch")?.as_deref(), Some("replica-c"));
    assert_eq!(store.duty_holder("remediation")?, None);
    // Bounded input: empty names and silly lease lengths are refused.
    assert!(store.take_duty("", "replica-a", 1_000, now()).is_err());
    assert!(store.take_duty("watch", "", 1_000, now()).is_err());
    assert!(store.take_duty("watch", "replica-c", 0, now()).is_err());
    assert!(
        store
            .take_duty("watch", "replica-c", i64::MAX, now())
            .is_err()
    );
    Ok(())
}
