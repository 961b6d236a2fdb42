//! Cases of [`DeploymentStore`](crate::DeploymentStore): deployments and change records.

use super::*;

fn deployment(
    env: &str,
    digest: char,
    previous: Option<char>,
    at: i64,
) -> cairn_model::DeploymentRecord {
    let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
    cairn_model::DeploymentRecord {
        workload: "app".to_owned(),
        environment: env.to_owned(),
        digest: d(digest),
        previous_digest: previous.map(d),
        kind: "deploy".to_owned(),
        actor: "alice".to_owned(),
        target: "local".to_owned(),
        detail: "http://127.0.0.1:8080".to_owned(),
        log_index: u64::try_from(at).unwrap_or(0) + (1 << 40),
        deployed_at_ms: at,
        status: cairn_model::DeploymentStatus::Deployed,
        token: None,
        reason: None,
    }
}

pub fn the_newest_deployment_is_current(store: &dyn Store) -> Result<(), StoreError> {
    assert_eq!(store.current_deployment("app", "staging")?, None);
    assert!(store.deployments(None, None, 10)?.is_empty());
    let s1 = deployment("staging", '1', None, 100);
    let p1 = deployment("production", '1', None, 200);
    let s2 = deployment("staging", '2', Some('1'), 300);
    // Recorded later with an earlier clock reading: still the newest record.
    let rollback = cairn_model::DeploymentRecord {
        kind: "rollback".to_owned(),
        ..deployment("staging", '1', Some('2'), 250)
    };
    let other = cairn_model::DeploymentRecord {
        workload: "web".to_owned(),
        ..deployment("staging", '9', None, 400)
    };
    let ids = [
        store.add_deployment(&s1)?,
        store.add_deployment(&p1)?,
        store.add_deployment(&s2)?,
        store.add_deployment(&rollback)?,
        store.add_deployment(&other)?,
    ];
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");
    assert_eq!(
        store.current_deployment("app", "staging")?,
        Some(rollback.clone())
    );
    assert_eq!(
        store.current_deployment("app", "production")?,
        Some(p1.clone())
    );
    assert_eq!(store.current_deployment("web", "production")?, None);
    assert_eq!(
        store.deployments(Some("app"), Some("staging"), 10)?,
        vec![rollback.clone(), s2.clone(), s1.clone()]
    );
    assert_eq!(
        store.deployments(None, Some("staging"), 2)?,
        vec![other.clone(), rollback.clone()]
    );
    assert_eq!(
        store.deployments(Some("app"), None, 10)?,
        vec![rollback, s2.clone(), p1.clone(), s1.clone()]
    );
    assert_eq!(store.deployments(None, None, 0)?, vec![]);
    assert!(store.was_deployed("app", "staging", &s2.digest)?);
    assert!(store.was_deployed("app", "production", &p1.digest)?);
    assert!(!store.was_deployed("app", "production", &s2.digest)?);
    assert!(!store.was_deployed("web", "staging", &s1.digest)?);
    // Bounded and complete: an oversized or empty field, or a log index beyond
    // what the store can keep, is refused.
    let huge = cairn_model::DeploymentRecord {
        detail: "x".repeat(1 << 20),
        ..deployment("staging", '3', None, 500)
    };
    assert!(matches!(
        store.add_deployment(&huge),
        Err(StoreError::TooLarge { .. })
    ));
    let no_env = deployment("", '3', None, 500);
    assert!(matches!(
        store.add_deployment(&no_env),
        Err(StoreError::Invalid { .. })
    ));
    let far = cairn_model::DeploymentRecord {
        log_index: u64::MAX,
        ..deployment("staging", '3', None, 500)
    };
    assert!(matches!(
        store.add_deployment(&far),
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(store.deployments(None, None, 100)?.len(), 5);
    Ok(())
}

/// An intent (`deploying`) is not current and not "was deployed" until its
/// outcome says so; a failed one never is; a token names one deployment.
pub fn deployment_intents_get_outcomes(store: &dyn Store) -> Result<(), StoreError> {
    use cairn_model::DeploymentStatus as S;
    let first = cairn_model::DeploymentRecord {
        token: Some("t1".to_owned()),
        ..deployment("staging", '1', None, 100)
    };
    store.add_deployment(&first)?;
    let intent = cairn_model::DeploymentRecord {
        status: S::Deploying,
        token: Some("t2".to_owned()),
        ..deployment("staging", '2', Some('1'), 200)
    };
    store.add_deployment(&intent)?;
    assert_eq!(
        store.current_deployment("app", "staging")?,
        Some(first.clone())
    );
    assert!(!store.was_deployed("app", "staging", &intent.digest)?);
    // A token is unique.
    assert!(store.add_deployment(&intent).is_err());
    assert!(store.set_deployment_status("t2", S::Failed, Some("it did not answer"), None)?);
    assert!(!store.set_deployment_status("t-none", S::Failed, None, None)?);
    assert!(!store.was_deployed("app", "staging", &intent.digest)?);
    let newest = store.deployments(Some("app"), Some("staging"), 1)?;
    assert_eq!(newest[0].status, S::Failed);
    assert_eq!(newest[0].reason.as_deref(), Some("it did not answer"));
    assert!(store.set_deployment_status("t2", S::Deployed, None, Some("http://127.0.0.1:9"))?);
    assert!(store.set_deployment_status("t1", S::Superseded, Some("t2 replaced it"), None)?);
    assert_eq!(
        store
            .current_deployment("app", "staging")?
            .map(|d| (d.digest, d.detail)),
        Some((intent.digest.clone(), "http://127.0.0.1:9".to_owned()))
    );
    assert!(store.was_deployed("app", "staging", &first.digest)?);
    assert!(store.set_deployment_status("t2", S::NotRunning, Some("its sandbox is gone"), None)?);
    let current = store.current_deployment("app", "staging")?;
    assert_eq!(current.map(|d| d.status), Some(S::NotRunning));
    assert!(matches!(
        store.set_deployment_status("t2", S::Failed, Some(&"x".repeat(1 << 20)), None),
        Err(StoreError::TooLarge { .. })
    ));
    Ok(())
}

pub fn change_records_are_listed_newest_first_and_bounded(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let change = |workload: &str, kind: &str, at: i64| cairn_model::ChangeRecord {
        kind: kind.to_owned(),
        workload: workload.to_owned(),
        environment: "production".to_owned(),
        actor: "alice".to_owned(),
        from_digest: Some(format!("sha256:{}", "1".repeat(64))),
        to_digest: format!("sha256:{}", "2".repeat(64)),
        log_index: 7,
        at_ms: at,
        json: format!(r#"{{"kind":"{kind}","approvals":["bob"]}}"#),
    };
    assert!(store.changes(None, 10)?.is_empty());
    let a = change("app", "deploy", 1);
    let b = change("web", "override", 2);
    let c = cairn_model::ChangeRecord {
        from_digest: None,
        ..change("app", "rollback", 3)
    };
    let ia = store.add_change(&a)?;
    let ib = store.add_change(&b)?;
    let ic = store.add_change(&c)?;
    assert!(ia < ib && ib < ic);
    assert_eq!(
        store.changes(None, 10)?,
        vec![(ic, c.clone()), (ib, b.clone()), (ia, a.clone())]
    );
    assert_eq!(
        store.changes(Some("app"), 10)?,
        vec![(ic, c.clone()), (ia, a)]
    );
    assert_eq!(store.changes(None, 1)?, vec![(ic, c)]);
    assert_eq!(store.changes(Some("nothing"), 10)?, vec![]);
    // The JSON is bounded: exactly the limit is kept, one byte more is refused.
    let mut at_limit = change("app", "deploy", 4);
    at_limit.json = "x".repeat(crate::MAX_CHANGE_JSON_BYTES);
    store.add_change(&at_limit)?;
    let mut over = change("app", "deploy", 5);
    over.json = "x".repeat(crate::MAX_CHANGE_JSON_BYTES + 1);
    assert!(matches!(
        store.add_change(&over),
        Err(StoreError::TooLarge { .. })
    ));
    assert!(matches!(
        store.add_change(&change("app", "", 6)),
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(store.changes(None, 100)?.len(), 4);
    Ok(())
}
