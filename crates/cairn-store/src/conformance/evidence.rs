//! Cases of [`EvidenceStore`](crate::EvidenceStore).

use super::*;

fn evidence(
    run: Option<RunId>,
    stage: Option<StageId>,
    digest: &str,
    bundle: &[u8],
) -> NewEvidence {
    NewEvidence {
        run,
        stage,
        predicate_type: "https://slsa.dev/provenance/v1".to_owned(),
        subject_name: "hello".to_owned(),
        subject_digest: digest.to_owned(),
        bundle: bundle.to_vec(),
        created_at_ms: 10,
    }
}

/// Bundles come back byte for byte, by run and by subject, oldest first.
pub fn evidence_is_kept_by_run_and_by_subject(store: &dyn Store) -> Result<(), StoreError> {
    let (run, stages) = running_run(store, &["build", "test"])?;
    let (other, _) = running_run(store, &["build"])?;
    let a = store.add_evidence(&evidence(
        Some(run.id),
        Some(stages[0].id),
        "sha256:aa",
        b"{\"a\":1}\xff",
    ))?;
    let b = store.add_evidence(&evidence(
        Some(run.id),
        Some(stages[1].id),
        "sha256:bb",
        b"{}",
    ))?;
    let c = store.add_evidence(&evidence(Some(other.id), None, "sha256:aa", b"[]"))?;
    let d = store.add_evidence(&evidence(None, None, "sha256:aa", b"decision"))?;
    let of_run = store.evidence_for_run(run.id)?;
    assert_eq!(of_run.iter().map(|e| e.id).collect::<Vec<_>>(), vec![a, b]);
    assert_eq!(of_run[0].bundle, b"{\"a\":1}\xff");
    assert_eq!(of_run[0].stage, Some(stages[0].id));
    assert_eq!(of_run[0].predicate_type, "https://slsa.dev/provenance/v1");
    let of_subject = store.evidence_for_subject("sha256:aa")?;
    assert_eq!(
        of_subject.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![a, c, d]
    );
    assert_eq!(of_subject[2].run, None);
    assert!(store.evidence_for_subject("sha256:zz")?.is_empty());
    // Evidence may still be added once the run is final (decisions about it).
    store.finish_run(run.id, RunStatus::Succeeded, None, 20)?;
    store.add_evidence(&evidence(Some(run.id), None, "sha256:bb", b"vsa"))?;
    assert_eq!(store.evidence_for_run(run.id)?.len(), 3);
    Ok(())
}

/// Unknown runs and stages, a stage of another run, and oversized bundles are refused.
pub fn evidence_refers_to_known_runs_and_their_stages(store: &dyn Store) -> Result<(), StoreError> {
    let (run, stages) = running_run(store, &["build"])?;
    let (other, _) = running_run(store, &["build"])?;
    assert_not_found(
        store.add_evidence(&evidence(Some(RunId(9_999)), None, "sha256:aa", b"x")),
        "run",
    );
    assert_not_found(
        store.add_evidence(&evidence(
            Some(run.id),
            Some(StageId(9_999)),
            "sha256:aa",
            b"x",
        )),
        "stage",
    );
    assert_not_found(
        store.add_evidence(&evidence(
            Some(other.id),
            Some(stages[0].id),
            "sha256:aa",
            b"x",
        )),
        "stage",
    );
    let huge = vec![b'x'; crate::MAX_EVIDENCE_BYTES + 1];
    assert!(matches!(
        store.add_evidence(&evidence(Some(run.id), None, "sha256:aa", &huge)),
        Err(StoreError::TooLarge { .. })
    ));
    assert_not_found(store.evidence_for_run(RunId(9_999)), "run");
    assert!(store.evidence_for_run(run.id)?.is_empty());
    Ok(())
}
