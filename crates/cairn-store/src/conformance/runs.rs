//! Cases of [`RunStore`](crate::RunStore): workloads, runs, stages, logs, the workers' queue, metrics.

use super::*;

/// Lines `from..to` with text `line <seq>`.
fn lines(from: u64, to: u64) -> Vec<LogLine> {
    (from..to)
        .map(|seq| line(seq, format!("line {seq}").as_bytes()))
        .collect()
}

fn statuses(store: &dyn Store, run: RunId) -> Result<Vec<StageStatus>, StoreError> {
    Ok(store.stages(run)?.iter().map(|s| s.status).collect())
}

#[track_caller]
fn assert_refused<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(
        matches!(
            result,
            Err(StoreError::InvalidTransition { .. } | StoreError::RunNotActive { .. })
        ),
        "expected the transition to be refused, got {result:?}"
    );
}

fn api_run(workload: &str, created_at_ms: i64, actor: &str) -> NewRun {
    NewRun {
        trigger: Trigger::Api {
            actor: actor.to_owned(),
        },
        ..new_run(workload, created_at_ms, &["build"])
    }
}

fn get_workload(store: &dyn Store, name: &str) -> Result<WorkloadRecord, StoreError> {
    store.workload(name)?.ok_or(StoreError::NotFound {
        what: "workload (conformance)",
        id: name.to_owned(),
    })
}

/// `create_run` stores a queued run and its stages pending, and returns what it stored.
pub fn create_run_stores_queued_run_and_pending_stages(
    store: &dyn Store,
) -> Result<(), StoreError> {
    store.upsert_workload("app", REPO, 1)?;
    let (run, stages) = store.create_run(&new_run("app", 42, &["source", "test", "build"]))?;
    assert_eq!(run.workload, "app");
    assert_eq!(run.commit, COMMIT);
    assert_eq!(run.git_ref.as_deref(), Some("main"));
    assert_eq!(run.status, RunStatus::Queued);
    assert_eq!(run.created_at_ms, 42);
    assert_eq!(
        (
            run.started_at_ms,
            run.finished_at_ms,
            &run.owner,
            &run.reason
        ),
        (None, None, &None, &None)
    );
    assert_eq!(stages.len(), 3);
    for (i, stage) in stages.iter().enumerate() {
        assert_eq!(stage.run, run.id);
        assert_eq!(usize::try_from(stage.index).ok(), Some(i));
        assert_eq!(stage.status, StageStatus::Pending);
        assert_eq!(stage.kind, StageKind::Command);
        assert_eq!(stage.exit_code, None);
    }
    assert_eq!(stages[1].name, "test");
    assert_eq!(stages[1].command.as_deref(), Some("make test"));

    // What came back is what is stored.
    assert_eq!(store.run(run.id)?, Some(run.clone()));
    assert_eq!(store.stages(run.id)?, stages);

    // A run without a git ref or stages is fine too; ids are distinct.
    let mut bare = new_run("app", 43, &[]);
    bare.git_ref = None;
    let (other, no_stages) = store.create_run(&bare)?;
    assert_ne!(other.id, run.id);
    assert!(no_stages.is_empty());
    assert_eq!(get_run(store, other.id)?.git_ref, None);
    assert!(store.stages(other.id)?.is_empty());
    Ok(())
}

/// A run names a workload the store knows; `upsert_workload` may repeat.
pub fn create_run_needs_a_known_workload(store: &dyn Store) -> Result<(), StoreError> {
    assert_not_found(store.create_run(&new_run("ghost", 1, &["a"])), "workload");
    assert!(store.runs(&RunFilter::default())?.is_empty());

    store.upsert_workload("ghost", REPO, 1)?;
    store.upsert_workload("ghost", "https://git.example.invalid/moved.git", 2)?;
    let (run, _) = store.create_run(&new_run("ghost", 3, &["a"]))?;
    assert_eq!(get_run(store, run.id)?.workload, "ghost");
    Ok(())
}

/// Newest first by creation time; equal times by id, the later run first.
pub fn runs_are_listed_newest_first(store: &dyn Store) -> Result<(), StoreError> {
    store.upsert_workload("app", REPO, 1)?;
    let (a, _) = store.create_run(&new_run("app", 300, &[]))?;
    let (b, _) = store.create_run(&new_run("app", 100, &[]))?;
    let (c, _) = store.create_run(&new_run("app", 200, &[]))?;
    let (d, _) = store.create_run(&new_run("app", 200, &[]))?;
    let listed = store.runs(&RunFilter::default())?;
    assert_eq!(ids(&listed), vec![a.id, d.id, c.id, b.id]);
    assert_eq!(listed[0], a);
    Ok(())
}

/// Filters by workload and status, alone and together; `limit` keeps the newest.
pub fn runs_filter_and_limit(store: &dyn Store) -> Result<(), StoreError> {
    store.upsert_workload("web", REPO, 1)?;
    store.upsert_workload("api", REPO, 1)?;
    let (w1, _) = store.create_run(&new_run("web", 1, &[]))?;
    let (a1, _) = store.create_run(&new_run("api", 2, &[]))?;
    let (w2, _) = store.create_run(&new_run("web", 3, &[]))?;
    let (a2, _) = store.create_run(&new_run("api", 4, &[]))?;
    let (w3, _) = store.create_run(&new_run("web", 5, &[]))?;
    store.start_run(w2.id, "me", 10)?;
    store.start_run(a2.id, "me", 10)?;
    store.finish_run(w3.id, RunStatus::Failed, Some("boom"), 11)?;

    let query = |workload: Option<&str>, status: Option<RunStatus>, limit: usize| {
        store
            .runs(&RunFilter {
                workload: workload.map(str::to_owned),
                status,
                limit,
                ..Default::default()
            })
            .map(|runs| ids(&runs))
    };
    assert_eq!(
        query(None, None, 100)?,
        vec![w3.id, a2.id, w2.id, a1.id, w1.id]
    );
    assert_eq!(query(Some("web"), None, 100)?, vec![w3.id, w2.id, w1.id]);
    assert_eq!(query(Some("api"), None, 100)?, vec![a2.id, a1.id]);
    assert_eq!(
        query(None, Some(RunStatus::Running), 100)?,
        vec![a2.id, w2.id]
    );
    assert_eq!(
        query(None, Some(RunStatus::Queued), 100)?,
        vec![a1.id, w1.id]
    );
    assert_eq!(query(None, Some(RunStatus::Failed), 100)?, vec![w3.id]);
    assert_eq!(query(None, Some(RunStatus::Succeeded), 100)?, vec![]);
    assert_eq!(
        query(Some("web"), Some(RunStatus::Running), 100)?,
        vec![w2.id]
    );
    assert_eq!(query(Some("nobody"), None, 100)?, vec![]);
    assert_eq!(query(None, None, 2)?, vec![w3.id, a2.id]);
    assert_eq!(query(Some("web"), None, 1)?, vec![w3.id]);
    assert_eq!(query(None, None, 0)?, vec![]);
    assert_eq!(query(None, None, usize::MAX)?.len(), 5);
    Ok(())
}

/// Filters by commit prefix and trigger kind; keyset pages (`after`) walk
/// every run once, newest first, equal creation times by id, and a
/// pattern character in a prefix matches only itself.
pub fn runs_filter_by_commit_and_trigger_and_page_by_keyset(
    store: &dyn Store,
) -> Result<(), StoreError> {
    use crate::{RunCursor, TriggerKind};
    store.upsert_workload("web", REPO, 1)?;
    let with = |commit: &str, at: i64, trigger: Trigger| NewRun {
        commit: commit.to_owned(),
        trigger,
        ..new_run("web", at, &[])
    };
    let api = || Trigger::Api {
        actor: "alice".to_owned(),
    };
    let hook = || Trigger::Webhook {
        forge: "github".to_owned(),
        delivery: "d1".to_owned(),
    };
    let mut made = Vec::new();
    for (i, (commit, trigger)) in [
        ("aaaa1111", Trigger::Cli),
        ("aaaa2222", api()),
        ("bbbb1111", hook()),
        ("aaaa3333", api()),
        ("a%_b", Trigger::Cli),
    ]
    .into_iter()
    .enumerate()
    {
        // Two runs share each creation time: the id orders them.
        let at = i64::try_from(i / 2).unwrap_or(0) + 10;
        made.push(store.create_run(&with(commit, at, trigger))?.0);
    }
    let query = |filter: RunFilter| store.runs(&filter).map(|runs| ids(&runs));
    assert_eq!(
        query(RunFilter {
            commit_prefix: Some("aaaa".to_owned()),
            ..RunFilter::default()
        })?,
        vec![made[3].id, made[1].id, made[0].id]
    );
    assert_eq!(
        query(RunFilter {
            commit_prefix: Some("a%".to_owned()),
            ..RunFilter::default()
        })?,
        vec![made[4].id]
    );
    assert_eq!(
        query(RunFilter {
            commit_prefix: Some("a_".to_owned()),
            ..RunFilter::default()
        })?,
        vec![]
    );
    for (kind, expected) in [
        (TriggerKind::Api, vec![made[3].id, made[1].id]),
        (TriggerKind::Cli, vec![made[4].id, made[0].id]),
        (TriggerKind::Webhook, vec![made[2].id]),
        (TriggerKind::Push, vec![]),
    ] {
        assert_eq!(
            query(RunFilter {
                trigger: Some(kind),
                ..RunFilter::default()
            })?,
            expected,
            "{kind:?}"
        );
    }
    assert_eq!(
        query(RunFilter {
            commit_prefix: Some("aaaa".to_owned()),
            trigger: Some(TriggerKind::Cli),
            ..RunFilter::default()
        })?,
        vec![made[0].id]
    );
    // Pages of two, each after the last run of the one before.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.runs(&RunFilter {
            after,
            limit: 2,
            ..RunFilter::default()
        })?;
        let Some(last) = page.last() else { break };
        after = Some(RunCursor::of(last));
        seen.extend(ids(&page));
    }
    assert_eq!(
        seen,
        vec![made[4].id, made[3].id, made[2].id, made[1].id, made[0].id]
    );
    Ok(())
}

/// `start_run` moves a queued run to running with its owner and start time, once.
pub fn start_run_records_owner(store: &dyn Store) -> Result<(), StoreError> {
    store.upsert_workload("app", REPO, 1)?;
    let (run, _) = store.create_run(&new_run("app", 5, &["a"]))?;
    store.start_run(run.id, "host-a:4242:1700000000", 7)?;
    let started = get_run(store, run.id)?;
    assert_eq!(started.status, RunStatus::Running);
    assert_eq!(started.owner.as_deref(), Some("host-a:4242:1700000000"));
    assert_eq!(started.started_at_ms, Some(7));
    assert_eq!(started.finished_at_ms, None);

    assert_refused(store.start_run(run.id, "host-b:1:1", 8));
    assert_eq!(get_run(store, run.id)?, started);
    Ok(())
}

/// `stages` returns chain order, whatever the names.
pub fn stages_keep_chain_order(store: &dyn Store) -> Result<(), StoreError> {
    let names = [
        "zeta", "alpha", "mid", "beta", "omega", "a", "k", "c", "j", "b", "i",
    ];
    store.upsert_workload("app", REPO, 1)?;
    let (run, created) = store.create_run(&new_run("app", 1, &names))?;
    let stored = store.stages(run.id)?;
    assert_eq!(stored, created);
    let stored_names: Vec<&str> = stored.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(stored_names, names);
    let indices: Vec<u32> = stored.iter().map(|s| s.index).collect();
    assert_eq!(indices, (0..11).collect::<Vec<u32>>());
    Ok(())
}

/// Stages move pending -> running -> final, only while their run runs.
pub fn stage_transitions_are_checked(store: &dyn Store) -> Result<(), StoreError> {
    store.upsert_workload("app", REPO, 1)?;
    let (run, stages) = store.create_run(&new_run("app", 1, &["a", "b"]))?;
    let (a, b) = (stages[0].id, stages[1].id);

    // The run is still queued.
    assert_refused(store.start_stage(a, 2));
    store.start_run(run.id, "me", 3)?;

    // Not running yet: cannot finish.
    assert_refused(store.finish_stage(a, StageStatus::Passed, Some(0), None, 4));
    store.start_stage(a, 5)?;
    assert_refused(store.start_stage(a, 6));
    // Only final statuses end a stage.
    assert_refused(store.finish_stage(a, StageStatus::Pending, None, None, 7));
    assert_refused(store.finish_stage(a, StageStatus::Running, None, None, 7));
    assert_eq!(
        statuses(store, run.id)?,
        [StageStatus::Running, StageStatus::Pending]
    );

    store.finish_stage(a, StageStatus::Passed, Some(0), None, 8)?;
    assert_refused(store.finish_stage(a, StageStatus::Failed, Some(1), None, 9));
    assert_refused(store.start_stage(a, 9));

    // A running stage may also end skipped or interrupted.
    store.start_stage(b, 10)?;
    store.finish_stage(b, StageStatus::Skipped, None, Some("nothing to do"), 11)?;
    assert_eq!(
        statuses(store, run.id)?,
        [StageStatus::Passed, StageStatus::Skipped]
    );
    Ok(())
}

/// `finish_stage` keeps status, exit code, reason and both times.
pub fn finish_stage_records_outcome(store: &dyn Store) -> Result<(), StoreError> {
    let (run, stages) = running_run(store, &["unit", "build"])?;
    store.start_stage(stages[0].id, 100)?;
    let running = &store.stages(run.id)?[0];
    assert_eq!(running.status, StageStatus::Running);
    assert_eq!(running.started_at_ms, Some(100));
    assert_eq!(running.finished_at_ms, None);

    store.finish_stage(
        stages[0].id,
        StageStatus::Failed,
        Some(-9),
        Some("killed by signal 9"),
        250,
    )?;
    let done = &store.stages(run.id)?[0];
    assert_eq!(done.status, StageStatus::Failed);
    assert_eq!(done.exit_code, Some(-9));
    assert_eq!(done.reason.as_deref(), Some("killed by signal 9"));
    assert_eq!(
        (done.started_at_ms, done.finished_at_ms),
        (Some(100), Some(250))
    );
    // The other stage is untouched and the run still runs.
    assert_eq!(store.stages(run.id)?[1], stages[1]);
    assert_eq!(get_run(store, run.id)?.status, RunStatus::Running);
    Ok(())
}

/// A bundle about `stage` of `run`, as a boundary keeps it.
fn bundle(run: RunId, stage: StageId, bytes: &[u8]) -> NewEvidence {
    NewEvidence {
        run: Some(run),
        stage: Some(stage),
        predicate_type: "https://in-toto.io/attestation/test-result/v0.1".to_owned(),
        subject_name: "app@source".to_owned(),
        subject_digest: "sha256:bb".to_owned(),
        bundle: bytes.to_vec(),
        created_at_ms: 140,
    }
}

/// The ended stage's end, for a boundary.
fn ended<'a>(
    stage: StageId,
    log: &'a [LogLine],
    status: StageStatus,
    finished_ms: i64,
    evidence: &'a [NewEvidence],
) -> crate::EndedStage<'a> {
    crate::EndedStage {
        stage,
        log,
        status,
        exit_code: Some(if status == StageStatus::Passed { 0 } else { 1 }),
        reason: (status != StageStatus::Passed).then_some("exit code 1"),
        finished_ms,
        evidence,
    }
}

/// `create_started_run` records the workload, creates the run running (its
/// owner, its start) and starts its first stage, in one transaction: all of
/// it, or (on a refusal) nothing of it.
pub fn a_run_created_started_is_one_transaction_with_its_first_stage(
    store: &dyn Store,
) -> Result<(), StoreError> {
    // The workload need not exist: the run's creation records it.
    let (run, stages) =
        store.create_started_run(REPO, &new_run("app", 10, &["a", "b", "c"]), "host:1:2", 20)?;
    assert_eq!(get_workload(store, "app")?.repo, REPO);
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(
        (run.owner.as_deref(), run.started_at_ms, run.created_at_ms),
        (Some("host:1:2"), Some(20), 10)
    );
    assert_eq!(get_run(store, run.id)?, run);
    assert_eq!(store.stages(run.id)?, stages);
    assert_eq!(
        stages
            .iter()
            .map(|s| (s.name.as_str(), s.status, s.started_at_ms))
            .collect::<Vec<_>>(),
        [
            ("a", StageStatus::Running, Some(20)),
            ("b", StageStatus::Pending, None),
            ("c", StageStatus::Pending, None),
        ]
    );
    // Not a run for workers: no claim takes it.
    assert!(store.claim_started_run("worker", 30)?.is_none());
    // Its first boundary ends the first stage and starts the next.
    store.stage_boundary(&crate::StageBoundary {
        ended: Some(ended(stages[0].id, &[], StageStatus::Passed, 30, &[])),
        next: Some((stages[1].id, 31)),
    })?;
    assert_eq!(
        statuses(store, run.id)?,
        [
            StageStatus::Passed,
            StageStatus::Running,
            StageStatus::Pending
        ]
    );
    // A run without stages starts none.
    let (bare, none) = store.create_started_run(REPO, &new_run("app", 11, &[]), "h", 21)?;
    assert!(none.is_empty());
    assert_eq!(bare.status, RunStatus::Running);
    // A refused run leaves nothing: neither the run nor a new workload.
    let before = store.runs(&RunFilter::default())?;
    let bad = NewRun {
        workload: "other".to_owned(),
        trigger: Trigger::Api {
            actor: "a:b".to_owned(),
        },
        ..new_run("other", 12, &["a"])
    };
    assert!(matches!(
        store.create_started_run(REPO, &bad, "h", 22),
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(store.runs(&RunFilter::default())?, before);
    assert!(store.workload("other")?.is_none());
    Ok(())
}

/// `claim_started_run` claims as `claim_queued_run` does (the oldest queued
/// run for workers, leased to its claimer) and starts its first stage in the
/// same transaction; an empty queue gives nothing.
pub fn a_claimed_run_starts_its_first_stage_in_the_claim(
    store: &dyn Store,
) -> Result<(), StoreError> {
    store.upsert_workload("app", REPO, 1)?;
    let (cli, _) = store.create_run(&new_run("app", 1, &["a"]))?;
    let (older, _) = store.create_run(&api_run("app", 2, "alice"))?;
    let (newer, _) = store.create_run(&NewRun {
        stages: new_run("app", 3, &["x", "y"]).stages,
        ..api_run("app", 3, "bob")
    })?;
    let (run, stages) =
        store
            .claim_started_run("worker-1", wall_ms())?
            .ok_or(StoreError::NotFound {
                what: "claimed run (conformance)",
                id: "first".to_owned(),
            })?;
    assert_eq!(run.id, older.id);
    assert_eq!(
        (run.status, run.owner.as_deref()),
        (RunStatus::Running, Some("worker-1"))
    );
    assert_eq!(stages.len(), 1);
    assert_eq!(stages[0].status, StageStatus::Running);
    assert!(stages[0].started_at_ms.is_some());
    assert_eq!(store.stages(run.id)?, stages);
    // Leased to its claimer, as a claim leases.
    assert_eq!(store.heartbeat_runs("worker-1", wall_ms())?, 1);
    let (second, stages) =
        store
            .claim_started_run("worker-2", wall_ms())?
            .ok_or(StoreError::NotFound {
                what: "claimed run (conformance)",
                id: "second".to_owned(),
            })?;
    assert_eq!(second.id, newer.id);
    assert_eq!(
        stages.iter().map(|s| s.status).collect::<Vec<_>>(),
        [StageStatus::Running, StageStatus::Pending]
    );
    // The CLI's run is not for workers; nothing else is queued.
    assert!(store.claim_started_run("worker-3", wall_ms())?.is_none());
    assert_eq!(get_run(store, cli.id)?.status, RunStatus::Queued);
    Ok(())
}

/// `end_run` records the last stage's end (its log's tail, its outcome, its
/// evidence) and the run's end in one transaction: all of it, or (on any
/// refusal) nothing of it; without an ended stage it is `finish_run`.
pub fn a_runs_end_is_one_transaction_with_its_last_stages_end(
    store: &dyn Store,
) -> Result<(), StoreError> {
    use crate::RunEnd;
    let (run, stages) = running_run(store, &["a", "b", "c"])?;
    let (other, others) = running_run(store, &["x"])?;
    let (a, b) = (stages[0].id, stages[1].id);
    store.stage_boundary(&crate::StageBoundary {
        ended: None,
        next: Some((a, 100)),
    })?;
    store.stage_boundary(&crate::StageBoundary {
        ended: Some(ended(a, &lines(0, 1), StageStatus::Passed, 110, &[])),
        next: Some((b, 111)),
    })?;
    store.stage_boundary(&crate::StageBoundary {
        ended: None,
        next: Some((others[0].id, 100)),
    })?;
    let before = store.stages(run.id)?;
    let end = |status| RunEnd {
        run: run.id,
        status,
        reason: None,
        finished_ms: 300,
    };
    let unchanged = |store: &dyn Store| -> Result<(), StoreError> {
        assert_eq!(
            store.stages(run.id)?,
            before,
            "a refused end changed the stages"
        );
        assert_eq!(get_run(store, run.id)?.status, RunStatus::Running);
        assert_eq!(store.log_stats(b)?.lines, 0);
        assert!(store.evidence_for_run(run.id)?.is_empty());
        assert_eq!(get_run(store, other.id)?.status, RunStatus::Running);
        Ok(())
    };
    let tail = lines(0, 3);
    let kept = [bundle(run.id, b, b"{\"b\":1}")];
    // A gap in the tail.
    let r = store.end_run(
        Some(&ended(b, &lines(1, 2), StageStatus::Passed, 200, &kept)),
        &end(RunStatus::Succeeded),
    );
    assert!(matches!(r, Err(StoreError::LogSequence { .. })), "{r:?}");
    unchanged(store)?;
    // A status that is not final.
    assert_refused(store.end_run(
        Some(&ended(b, &tail, StageStatus::Passed, 200, &kept)),
        &end(RunStatus::Running),
    ));
    unchanged(store)?;
    // The ended stage of another run, and evidence filed under another run.
    let r = store.end_run(
        Some(&ended(others[0].id, &[], StageStatus::Passed, 200, &[])),
        &end(RunStatus::Succeeded),
    );
    assert!(matches!(r, Err(StoreError::Invalid { .. })), "{r:?}");
    assert_eq!(statuses(store, other.id)?, [StageStatus::Running]);
    unchanged(store)?;
    let wrong = [bundle(other.id, others[0].id, b"{}")];
    let r = store.end_run(
        Some(&ended(b, &tail, StageStatus::Passed, 200, &wrong)),
        &end(RunStatus::Succeeded),
    );
    assert!(
        matches!(
            r,
            Err(StoreError::Invalid { .. } | StoreError::NotFound { .. })
        ),
        "{r:?}"
    );
    unchanged(store)?;
    // A bundle over the limit.
    let huge = [bundle(
        run.id,
        b,
        &vec![b'x'; crate::MAX_EVIDENCE_BYTES + 1],
    )];
    let r = store.end_run(
        Some(&ended(b, &tail, StageStatus::Passed, 200, &huge)),
        &end(RunStatus::Succeeded),
    );
    assert!(matches!(r, Err(StoreError::TooLarge { .. })), "{r:?}");
    unchanged(store)?;

    // All of it: b's tail, its end and its evidence, c skipped, the run ended.
    let ids = store.end_run(
        Some(&ended(b, &tail, StageStatus::Failed, 200, &kept)),
        &RunEnd {
            reason: Some("stage `b` failed: exit code 1"),
            ..end(RunStatus::Failed)
        },
    )?;
    assert_eq!(ids.len(), 1);
    assert_eq!(store.logs(b, None, 100)?, tail);
    let after = store.stages(run.id)?;
    assert_eq!(
        (after[1].status, after[1].exit_code, after[1].finished_at_ms),
        (StageStatus::Failed, Some(1), Some(200))
    );
    assert_eq!(after[2].status, StageStatus::Skipped);
    let done = get_run(store, run.id)?;
    assert_eq!(
        (done.status, done.reason.as_deref(), done.finished_at_ms),
        (
            RunStatus::Failed,
            Some("stage `b` failed: exit code 1"),
            Some(300)
        )
    );
    let evidence = store.evidence_for_run(run.id)?;
    assert_eq!(evidence.iter().map(|e| e.id).collect::<Vec<_>>(), ids);
    assert_eq!(evidence[0].stage, Some(b));
    // A final run ends once.
    assert_refused(store.end_run(None, &end(RunStatus::Succeeded)));
    // Without an ended stage it is `finish_run`: a running stage interrupted.
    store.end_run(
        None,
        &RunEnd {
            run: other.id,
            status: RunStatus::Failed,
            reason: Some("cairn failed"),
            finished_ms: 400,
        },
    )?;
    assert_eq!(statuses(store, other.id)?, [StageStatus::Interrupted]);
    assert_eq!(get_run(store, other.id)?.status, RunStatus::Failed);
    Ok(())
}

/// `stage_boundary` writes a stage's last log lines, its end, its evidence and
/// the next stage's start in one transaction: all of it, or (on any refusal)
/// nothing of it; each part is checked as its own method checks it.
pub fn a_stage_boundary_is_one_transaction_of_end_evidence_and_next_start(
    store: &dyn Store,
) -> Result<(), StoreError> {
    use crate::StageBoundary;
    let (run, stages) = running_run(store, &["a", "b", "c"])?;
    let (other, others) = running_run(store, &["x"])?;
    let (a, b, c) = (stages[0].id, stages[1].id, stages[2].id);
    // The first stage starts.
    let first = StageBoundary {
        ended: None,
        next: Some((a, 100)),
    };
    assert!(store.stage_boundary(&first)?.is_empty());
    assert_eq!(store.stages(run.id)?[0].status, StageStatus::Running);
    assert_eq!(store.stages(run.id)?[0].started_at_ms, Some(100));
    // Some of its log was flushed while it ran; the rest comes with its end.
    store.append_logs(a, &lines(0, 2))?;
    let tail = lines(2, 4);
    let kept = [
        bundle(run.id, a, b"{\"a\":1}"),
        bundle(run.id, a, b"{\"a\":2}"),
    ];
    let ids = store.stage_boundary(&StageBoundary {
        ended: Some(ended(a, &tail, StageStatus::Passed, 150, &kept)),
        next: Some((b, 151)),
    })?;
    assert_eq!(ids.len(), 2);
    let after = store.stages(run.id)?;
    assert_eq!(
        (after[0].status, after[0].exit_code, after[0].finished_at_ms),
        (StageStatus::Passed, Some(0), Some(150))
    );
    assert_eq!(after[0].started_at_ms, Some(100));
    assert_eq!(
        (after[1].status, after[1].started_at_ms),
        (StageStatus::Running, Some(151))
    );
    assert_eq!(after[2].status, StageStatus::Pending);
    assert_eq!(store.logs(a, None, 100)?, lines(0, 4));
    assert_eq!(store.log_stats(a)?.lines, 4);
    let evidence = store.evidence_for_run(run.id)?;
    assert_eq!(evidence.iter().map(|e| e.id).collect::<Vec<_>>(), ids);
    assert_eq!(evidence[1].bundle, b"{\"a\":2}");
    assert_eq!(evidence[0].stage, Some(a));

    // Every refusal leaves everything as it was: b running with no log, no
    // new evidence, c pending.
    let unchanged = |store: &dyn Store| -> Result<(), StoreError> {
        let now = store.stages(run.id)?;
        assert_eq!(now, after, "a refused boundary changed the stages");
        assert_eq!(store.log_stats(b)?.lines, 0);
        assert_eq!(store.evidence_for_run(run.id)?.len(), 2);
        assert_eq!(store.stages(other.id)?, others);
        Ok(())
    };
    let b_log = lines(0, 2);
    let good = [bundle(run.id, b, b"{}")];
    // A gap in the tail.
    let gappy = lines(1, 3);
    let r = store.stage_boundary(&StageBoundary {
        ended: Some(ended(b, &gappy, StageStatus::Passed, 200, &good)),
        next: Some((c, 201)),
    });
    assert!(
        matches!(
            r,
            Err(StoreError::LogSequence {
                expected: 0,
                found: 1,
                ..
            })
        ),
        "{r:?}"
    );
    unchanged(store)?;
    // Evidence filed under another run, or about another run's stage.
    for wrong in [
        bundle(other.id, others[0].id, b"{}"),
        bundle(run.id, others[0].id, b"{}"),
    ] {
        let bad = [good[0].clone(), wrong];
        let r = store.stage_boundary(&StageBoundary {
            ended: Some(ended(b, &b_log, StageStatus::Passed, 200, &bad)),
            next: Some((c, 201)),
        });
        assert!(
            matches!(
                r,
                Err(StoreError::Invalid { .. } | StoreError::NotFound { .. })
            ),
            "{r:?}"
        );
        unchanged(store)?;
    }
    // A bundle over the limit.
    let huge = [bundle(
        run.id,
        b,
        &vec![b'x'; crate::MAX_EVIDENCE_BYTES + 1],
    )];
    let r = store.stage_boundary(&StageBoundary {
        ended: Some(ended(b, &b_log, StageStatus::Passed, 200, &huge)),
        next: Some((c, 201)),
    });
    assert!(matches!(r, Err(StoreError::TooLarge { .. })), "{r:?}");
    unchanged(store)?;
    // A next stage of another run, one that already ran, or an unknown one.
    let r = store.stage_boundary(&StageBoundary {
        ended: Some(ended(b, &b_log, StageStatus::Passed, 200, &good)),
        next: Some((others[0].id, 201)),
    });
    assert!(matches!(r, Err(StoreError::Invalid { .. })), "{r:?}");
    unchanged(store)?;
    assert_refused(store.stage_boundary(&StageBoundary {
        ended: Some(ended(b, &b_log, StageStatus::Passed, 200, &good)),
        next: Some((a, 201)),
    }));
    unchanged(store)?;
    assert_not_found(
        store.stage_boundary(&StageBoundary {
            ended: Some(ended(b, &b_log, StageStatus::Passed, 200, &good)),
            next: Some((StageId(9_999), 201)),
        }),
        "stage",
    );
    unchanged(store)?;
    // A stage that is not running cannot end; an end must be final.
    assert_refused(store.stage_boundary(&StageBoundary {
        ended: Some(ended(c, &[], StageStatus::Passed, 200, &[])),
        next: None,
    }));
    assert_refused(store.stage_boundary(&StageBoundary {
        ended: Some(ended(b, &b_log, StageStatus::Running, 200, &good)),
        next: Some((c, 201)),
    }));
    unchanged(store)?;

    // The last boundary of a failed stage starts nothing; the run runs on
    // until it is finished, and then no boundary is taken.
    store.stage_boundary(&StageBoundary {
        ended: Some(ended(b, &b_log, StageStatus::Failed, 200, &good)),
        next: None,
    })?;
    assert_eq!(
        statuses(store, run.id)?,
        [
            StageStatus::Passed,
            StageStatus::Failed,
            StageStatus::Pending
        ]
    );
    assert_eq!(store.logs(b, None, 100)?, b_log);
    assert_eq!(
        store.stages(run.id)?[1].reason.as_deref(),
        Some("exit code 1")
    );
    assert_eq!(get_run(store, run.id)?.status, RunStatus::Running);
    store.finish_run(run.id, RunStatus::Failed, Some("stage b failed"), 300)?;
    assert_refused(store.stage_boundary(&StageBoundary {
        ended: None,
        next: Some((c, 301)),
    }));
    assert_eq!(store.evidence_for_run(run.id)?.len(), 3);
    Ok(())
}

/// `finish_run` sets the final status and reason; pending stages become skipped.
pub fn finish_run_skips_pending_stages(store: &dyn Store) -> Result<(), StoreError> {
    let (run, stages) = running_run(store, &["a", "b", "c"])?;
    store.start_stage(stages[0].id, 30)?;
    store.finish_stage(
        stages[0].id,
        StageStatus::Failed,
        Some(2),
        Some("tests failed"),
        40,
    )?;
    store.finish_run(run.id, RunStatus::Failed, Some("stage a failed"), 50)?;

    let finished = get_run(store, run.id)?;
    assert_eq!(finished.status, RunStatus::Failed);
    assert_eq!(finished.reason.as_deref(), Some("stage a failed"));
    assert_eq!(finished.finished_at_ms, Some(50));
    assert_eq!(finished.started_at_ms, Some(20));
    let after = store.stages(run.id)?;
    assert_eq!(
        after.iter().map(|s| s.status).collect::<Vec<_>>(),
        [
            StageStatus::Failed,
            StageStatus::Skipped,
            StageStatus::Skipped
        ]
    );
    // The finished stage kept its outcome; skipped ones never started.
    assert_eq!(after[0].exit_code, Some(2));
    assert_eq!(after[0].reason.as_deref(), Some("tests failed"));
    assert_eq!(after[1].started_at_ms, None);

    // A queued run may end without starting (e.g. refused before it began).
    let (queued, _) = store.create_run(&new_run("app", 60, &["a"]))?;
    store.finish_run(queued.id, RunStatus::Succeeded, None, 61)?;
    assert_eq!(get_run(store, queued.id)?.status, RunStatus::Succeeded);
    assert_eq!(statuses(store, queued.id)?, [StageStatus::Skipped]);
    Ok(())
}

/// A stage still running when its run finishes is interrupted, never left running.
pub fn finish_run_interrupts_a_running_stage(store: &dyn Store) -> Result<(), StoreError> {
    let (run, stages) = running_run(store, &["a", "b"])?;
    store.start_stage(stages[0].id, 30)?;
    store.finish_run(run.id, RunStatus::Failed, Some("internal error"), 40)?;
    let after = store.stages(run.id)?;
    assert_eq!(after[0].status, StageStatus::Interrupted);
    assert_eq!(after[0].finished_at_ms, Some(40));
    assert!(after[0].reason.is_some());
    assert_eq!(after[1].status, StageStatus::Skipped);
    Ok(())
}

/// `finish_run` accepts only a final status, and only once.
pub fn finish_run_needs_a_final_status(store: &dyn Store) -> Result<(), StoreError> {
    let (run, _) = running_run(store, &["a"])?;
    assert_refused(store.finish_run(run.id, RunStatus::Queued, None, 30));
    assert_refused(store.finish_run(run.id, RunStatus::Running, None, 30));
    assert_eq!(get_run(store, run.id)?.status, RunStatus::Running);
    assert_eq!(statuses(store, run.id)?, [StageStatus::Pending]);
    store.finish_run(run.id, RunStatus::Succeeded, None, 31)?;
    assert_refused(store.finish_run(run.id, RunStatus::Failed, Some("again"), 32));
    Ok(())
}

/// `interrupt_run`: running stages interrupted, pending skipped, finished ones kept.
pub fn interrupt_run_settles_stages(store: &dyn Store) -> Result<(), StoreError> {
    let (run, stages) = running_run(store, &["a", "b", "c"])?;
    store.start_stage(stages[0].id, 30)?;
    store.finish_stage(stages[0].id, StageStatus::Passed, Some(0), None, 40)?;
    store.start_stage(stages[1].id, 50)?;

    assert!(store.interrupt_run(run.id, "the process running it died", 99)?);
    let after_run = get_run(store, run.id)?;
    assert_eq!(after_run.status, RunStatus::Interrupted);
    assert_eq!(
        after_run.reason.as_deref(),
        Some("the process running it died")
    );
    assert_eq!(after_run.finished_at_ms, Some(99));
    assert_eq!(after_run.owner.as_deref(), Some("host:1:2"));

    let after = store.stages(run.id)?;
    assert_eq!(
        after.iter().map(|s| s.status).collect::<Vec<_>>(),
        [
            StageStatus::Passed,
            StageStatus::Interrupted,
            StageStatus::Skipped
        ]
    );
    assert_eq!(after[0], {
        let mut passed = stages[0].clone();
        passed.status = StageStatus::Passed;
        passed.exit_code = Some(0);
        passed.started_at_ms = Some(30);
        passed.finished_at_ms = Some(40);
        passed
    });
    assert_eq!(after[1].finished_at_ms, Some(99));
    assert_eq!(after[1].started_at_ms, Some(50));

    // A queued run can be interrupted too.
    let (queued, _) = store.create_run(&new_run("app", 100, &["a"]))?;
    assert!(store.interrupt_run(queued.id, "cancelled", 101)?);
    assert_eq!(get_run(store, queued.id)?.status, RunStatus::Interrupted);
    assert_eq!(statuses(store, queued.id)?, [StageStatus::Skipped]);
    Ok(())
}

/// Interrupting again, or interrupting a finished run, changes nothing.
pub fn interrupt_run_is_idempotent(store: &dyn Store) -> Result<(), StoreError> {
    let (run, stages) = running_run(store, &["a", "b"])?;
    store.start_stage(stages[0].id, 30)?;
    assert!(store.interrupt_run(run.id, "first", 40)?);
    let (run_once, stages_once) = (get_run(store, run.id)?, store.stages(run.id)?);
    assert!(!store.interrupt_run(run.id, "second", 50)?);
    assert_eq!(get_run(store, run.id)?, run_once);
    assert_eq!(store.stages(run.id)?, stages_once);
    assert_eq!(run_once.reason.as_deref(), Some("first"));

    let (done, _) = store.create_run(&new_run("app", 60, &["a"]))?;
    store.start_run(done.id, "me", 61)?;
    store.finish_run(done.id, RunStatus::Succeeded, None, 62)?;
    let before = (get_run(store, done.id)?, store.stages(done.id)?);
    assert!(!store.interrupt_run(done.id, "late", 63)?);
    assert_eq!((get_run(store, done.id)?, store.stages(done.id)?), before);
    Ok(())
}

/// Once succeeded, failed or interrupted, nothing about a run changes: not its
/// status, not its stages, not its logs.
pub fn final_runs_are_immutable(store: &dyn Store) -> Result<(), StoreError> {
    store.upsert_workload("app", REPO, 1)?;
    for (i, end) in (0i64..).zip([
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Interrupted,
    ]) {
        let (run, stages) = store.create_run(&new_run("app", 100 * i, &["a", "b"]))?;
        store.start_run(run.id, "me", 100 * i + 1)?;
        store.start_stage(stages[0].id, 100 * i + 2)?;
        store.append_logs(stages[0].id, &lines(0, 3))?;
        store.finish_stage(
            stages[0].id,
            StageStatus::Passed,
            Some(0),
            None,
            100 * i + 3,
        )?;
        store.finish_run(run.id, end, Some("done"), 100 * i + 4)?;

        let before = (
            get_run(store, run.id)?,
            store.stages(run.id)?,
            store.logs(stages[0].id, None, 100)?,
        );
        let (a, b) = (stages[0].id, stages[1].id);
        assert_refused(store.start_run(run.id, "other", 999));
        for again in RunStatus::ALL {
            assert_refused(store.finish_run(run.id, *again, Some("again"), 999));
        }
        assert!(!store.interrupt_run(run.id, "again", 999)?);
        assert_refused(store.start_stage(a, 999));
        assert_refused(store.start_stage(b, 999));
        assert_refused(store.finish_stage(a, StageStatus::Failed, Some(1), None, 999));
        assert_refused(store.finish_stage(b, StageStatus::Passed, Some(0), None, 999));
        assert_refused(store.append_logs(a, &lines(3, 4)));
        assert_refused(store.append_logs(b, &lines(0, 1)));

        let after = (
            get_run(store, run.id)?,
            store.stages(run.id)?,
            store.logs(a, None, 100)?,
        );
        assert_eq!(after, before, "run ended {end} changed");
        assert_eq!(store.log_stats(b)?, LogStats::default());
    }
    Ok(())
}

/// Log lines are raw bytes: invalid UTF-8, NUL, escapes and empty lines come back exact.
pub fn logs_keep_binary_bytes(store: &dyn Store) -> Result<(), StoreError> {
    let (_, stages) = running_run(store, &["a"])?;
    let stage = stages[0].id;
    let all_bytes: Vec<u8> = (0..=255).collect();
    let written = vec![
        LogLine {
            seq: 0,
            stream: LogStream::Stdout,
            at_ms: 5,
            text: b"plain".to_vec(),
        },
        LogLine {
            seq: 1,
            stream: LogStream::Stderr,
            at_ms: 6,
            text: b"\xff\xfe not utf-8 \x00 nul \x1b[31m red".to_vec(),
        },
        LogLine {
            seq: 2,
            stream: LogStream::System,
            at_ms: 7,
            text: Vec::new(),
        },
        LogLine {
            seq: 3,
            stream: LogStream::Stdout,
            at_ms: 7,
            text: all_bytes,
        },
        LogLine {
            seq: 4,
            stream: LogStream::Stdout,
            at_ms: 8,
            text: "ünïcødé ✓".as_bytes().to_vec(),
        },
    ];
    store.append_logs(stage, &written[..2])?;
    store.append_logs(stage, &written[2..])?;
    assert_eq!(store.logs(stage, None, 100)?, written);
    Ok(())
}

/// A batch must start at the next seq and have no gaps; a bad batch stores nothing.
pub fn logs_refuse_gaps_and_duplicates(store: &dyn Store) -> Result<(), StoreError> {
    let (_, stages) = running_run(store, &["a"])?;
    let stage = stages[0].id;

    let refused = |result: Result<(), StoreError>, expected: u64, found: u64| match result {
        Err(StoreError::LogSequence {
            expected: e,
            found: f,
            ..
        }) => {
            assert_eq!((e, f), (expected, found));
        }
        other => panic!("expected a log sequence error, got {other:?}"),
    };
    // Must start at 0.
    refused(store.append_logs(stage, &lines(1, 3)), 0, 1);
    store.append_logs(stage, &lines(0, 3))?;
    // An empty batch is fine and changes nothing.
    store.append_logs(stage, &[])?;
    // A gap between batches.
    refused(store.append_logs(stage, &lines(4, 6)), 3, 4);
    // Repeating lines already stored.
    refused(store.append_logs(stage, &lines(2, 5)), 3, 2);
    // A gap inside a batch whose start is right: nothing of it is stored.
    let mut gappy = lines(3, 6);
    gappy.push(line(7, b"after a gap"));
    refused(store.append_logs(stage, &gappy), 6, 7);
    // A duplicate inside a batch.
    let mut dup = lines(3, 5);
    dup.push(line(4, b"again"));
    refused(store.append_logs(stage, &dup), 5, 4);

    assert_eq!(store.logs(stage, None, 100)?, lines(0, 3));
    assert_eq!(
        store.log_stats(stage)?,
        LogStats {
            lines: 3,
            bytes: 18
        }
    );
    store.append_logs(stage, &lines(3, 5))?;
    assert_eq!(store.logs(stage, None, 100)?, lines(0, 5));
    Ok(())
}

/// `logs` pages by `after_seq` and `limit`, ascending.
pub fn logs_page_by_seq(store: &dyn Store) -> Result<(), StoreError> {
    let (_, stages) = running_run(store, &["a"])?;
    let stage = stages[0].id;
    store.append_logs(stage, &lines(0, 10))?;

    assert_eq!(store.logs(stage, None, 3)?, lines(0, 3));
    assert_eq!(store.logs(stage, Some(2), 3)?, lines(3, 6));
    assert_eq!(store.logs(stage, Some(7), 100)?, lines(8, 10));
    assert_eq!(store.logs(stage, Some(9), 100)?, vec![]);
    assert_eq!(store.logs(stage, Some(1_000), 100)?, vec![]);
    assert_eq!(store.logs(stage, Some(u64::MAX), 100)?, vec![]);
    assert_eq!(store.logs(stage, None, 0)?, vec![]);
    assert_eq!(store.logs(stage, None, usize::MAX)?, lines(0, 10));

    // Following a log: read to the end, append, read on from the last seq seen.
    let mut seen = store.logs(stage, None, 4)?;
    while let Some(last) = seen.last().map(|l| l.seq) {
        let next = store.logs(stage, Some(last), 4)?;
        if next.is_empty() {
            break;
        }
        seen.extend(next);
    }
    assert_eq!(seen, lines(0, 10));
    store.append_logs(stage, &lines(10, 12))?;
    assert_eq!(store.logs(stage, Some(9), 100)?, lines(10, 12));
    Ok(())
}

/// `log_tail` gives the last lines ascending; `log_stats` counts lines and bytes.
pub fn log_tail_and_stats(store: &dyn Store) -> Result<(), StoreError> {
    let (_, stages) = running_run(store, &["a", "b"])?;
    let stage = stages[0].id;
    assert_eq!(store.log_tail(stage, 5)?, vec![]);
    assert_eq!(store.log_stats(stage)?, LogStats { lines: 0, bytes: 0 });

    store.append_logs(stage, &lines(0, 12))?;
    assert_eq!(store.log_tail(stage, 3)?, lines(9, 12));
    assert_eq!(store.log_tail(stage, 1)?, lines(11, 12));
    assert_eq!(store.log_tail(stage, 0)?, vec![]);
    assert_eq!(store.log_tail(stage, 12)?, lines(0, 12));
    assert_eq!(store.log_tail(stage, 1_000)?, lines(0, 12));
    assert_eq!(store.log_tail(stage, usize::MAX)?, lines(0, 12));

    // "line 0".."line 9" are 6 bytes, "line 10".."line 11" are 7.
    assert_eq!(
        store.log_stats(stage)?,
        LogStats {
            lines: 12,
            bytes: 10 * 6 + 2 * 7
        }
    );
    store.append_logs(stage, &[line(12, b""), line(13, &[0u8; 1000])])?;
    assert_eq!(
        store.log_stats(stage)?,
        LogStats {
            lines: 14,
            bytes: 74 + 1000
        }
    );
    assert_eq!(store.log_stats(stages[1].id)?, LogStats::default());
    Ok(())
}

/// Each stage has its own log, numbered from 0; other runs' logs don't mix in.
pub fn logs_are_per_stage(store: &dyn Store) -> Result<(), StoreError> {
    let (_, first) = running_run(store, &["a", "b"])?;
    let (second, second_stages) = store.create_run(&new_run("app", 11, &["a"]))?;
    store.start_run(second.id, "me", 12)?;
    let (a, b, c) = (first[0].id, first[1].id, second_stages[0].id);

    store.append_logs(a, &lines(0, 3))?;
    let other: Vec<LogLine> = (0..2).map(|seq| line(seq, b"from b")).collect();
    store.append_logs(b, &other)?;
    store.append_logs(c, &lines(0, 1))?;
    store.append_logs(a, &lines(3, 4))?;

    assert_eq!(store.logs(a, None, 100)?, lines(0, 4));
    assert_eq!(store.logs(b, None, 100)?, other);
    assert_eq!(store.logs(c, None, 100)?, lines(0, 1));
    assert_eq!(store.log_tail(b, 1)?, other[1..]);
    assert_eq!(store.log_stats(a)?.lines, 4);
    assert_eq!(store.log_stats(b)?.lines, 2);
    assert_eq!(store.log_stats(c)?.lines, 1);
    Ok(())
}

/// Every method given an unknown id says `NotFound` (`run` says `None`).
pub fn unknown_ids_are_not_found(store: &dyn Store) -> Result<(), StoreError> {
    // Make sure the ids are unknown for a reason other than an empty store.
    let (run, stages) = running_run(store, &["a"])?;
    let run_id = RunId(run.id.0 + 1_000);
    let stage_id = StageId(stages[0].id.0 + 1_000);

    assert_eq!(store.run(run_id)?, None);
    assert_not_found(store.start_run(run_id, "me", 1), "run");
    assert_not_found(store.finish_run(run_id, RunStatus::Failed, None, 1), "run");
    assert_not_found(store.interrupt_run(run_id, "gone", 1), "run");
    assert_not_found(store.stages(run_id), "run");
    assert_not_found(store.start_stage(stage_id, 1), "stage");
    assert_not_found(
        store.finish_stage(stage_id, StageStatus::Passed, Some(0), None, 1),
        "stage",
    );
    assert_not_found(store.append_logs(stage_id, &lines(0, 1)), "stage");
    assert_not_found(store.append_logs(stage_id, &[]), "stage");
    assert_not_found(store.logs(stage_id, None, 10), "stage");
    assert_not_found(store.log_tail(stage_id, 10), "stage");
    assert_not_found(store.log_stats(stage_id), "stage");
    assert_not_found(store.create_run(&new_run("nobody", 1, &[])), "workload");

    // The known ones are untouched.
    assert_eq!(get_run(store, run.id)?.status, RunStatus::Running);
    assert_eq!(store.stages(run.id)?, stages);
    Ok(())
}

pub fn workloads_have_a_unique_forge_repository(store: &dyn Store) -> Result<(), StoreError> {
    assert!(store.workloads()?.is_empty());
    assert_eq!(store.workload("web")?, None);
    store.upsert_workload("web", REPO, 1)?;
    store.upsert_workload("api", "/srv/api", 2)?;
    let api = get_workload(store, "api")?;
    assert_eq!(
        api,
        WorkloadRecord {
            name: "api".to_owned(),
            repo: "/srv/api".to_owned(),
            forge_repository: None,
            created_at_ms: 2,
            updated_at_ms: 2,
        }
    );
    store.set_forge_repository("web", Some("acme/web"), 5)?;
    let web = get_workload(store, "web")?;
    assert_eq!(web.forge_repository.as_deref(), Some("acme/web"));
    assert_eq!((web.created_at_ms, web.updated_at_ms), (1, 5));
    assert_eq!(
        store.workloads()?,
        vec![api.clone(), web.clone()],
        "by name"
    );
    assert_eq!(
        store.workload_by_forge_repository("acme/web")?,
        Some(web.clone())
    );
    // Exact match only.
    assert_eq!(store.workload_by_forge_repository("ACME/web")?, None);
    assert_eq!(store.workload_by_forge_repository("acme/we")?, None);
    // Setting it again is fine; another workload cannot take it.
    store.set_forge_repository("web", Some("acme/web"), 6)?;
    match store.set_forge_repository("api", Some("acme/web"), 7) {
        Err(StoreError::InUse { what, id, holder }) => {
            assert_eq!(
                (what, id.as_str(), holder.as_str()),
                ("forge repository", "acme/web", "web")
            );
        }
        other => panic!("a taken forge repository must be refused: {other:?}"),
    }
    assert_eq!(get_workload(store, "api")?, api);
    // An unknown workload, an empty or oversized name.
    assert_not_found(
        store.set_forge_repository("ghost", Some("acme/ghost"), 8),
        "workload",
    );
    assert_eq!(store.workload("ghost")?, None);
    assert!(matches!(
        store.set_forge_repository("api", Some(""), 8),
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store.set_forge_repository("api", Some(&"x".repeat(5000)), 8),
        Err(StoreError::TooLarge { .. })
    ));
    // Updating the repository keeps the forge repository; clearing frees it.
    store.upsert_workload("web", "/moved", 9)?;
    assert_eq!(
        get_workload(store, "web")?.forge_repository.as_deref(),
        Some("acme/web")
    );
    store.set_forge_repository("web", None, 10)?;
    assert_eq!(store.workload_by_forge_repository("acme/web")?, None);
    store.set_forge_repository("api", Some("acme/web"), 11)?;
    assert_eq!(
        store
            .workload_by_forge_repository("acme/web")?
            .map(|w| w.name),
        Some("api".to_owned())
    );
    // Several workloads may have none.
    store.set_forge_repository("api", None, 12)?;
    assert!(
        store
            .workloads()?
            .iter()
            .all(|w| w.forge_repository.is_none())
    );
    Ok(())
}

pub fn triggers_round_trip(store: &dyn Store) -> Result<(), StoreError> {
    store.upsert_workload("app", REPO, 1)?;
    let (cli, _) = store.create_run(&new_run("app", 1, &[]))?;
    let (api, _) = store.create_run(&api_run("app", 2, "alice"))?;
    let (hook, _) = store.create_run(&webhook_run("app", 3, "72d3162e:cc78:11e3"))?;
    assert_eq!(cli.trigger, Trigger::Cli);
    assert_eq!(
        api.trigger,
        Trigger::Api {
            actor: "alice".to_owned()
        }
    );
    assert_eq!(
        hook.trigger,
        Trigger::Webhook {
            forge: "github".to_owned(),
            delivery: "72d3162e:cc78:11e3".to_owned()
        }
    );
    for run in [&cli, &api, &hook] {
        assert_eq!(&get_run(store, run.id)?, run);
    }
    assert_eq!(
        store.runs(&RunFilter::default())?,
        vec![hook.clone(), api.clone(), cli.clone()]
    );
    // A trigger that would not read back as itself is refused, and nothing is written.
    for bad in [
        Trigger::Api {
            actor: "a:b".to_owned(),
        },
        Trigger::Api {
            actor: String::new(),
        },
        Trigger::Webhook {
            forge: "git:hub".to_owned(),
            delivery: "1".to_owned(),
        },
        Trigger::Webhook {
            forge: "github".to_owned(),
            delivery: String::new(),
        },
    ] {
        let run = NewRun {
            trigger: bad,
            ..new_run("app", 4, &["a"])
        };
        assert!(
            matches!(store.create_run(&run), Err(StoreError::Invalid { .. })),
            "{:?}",
            run.trigger
        );
    }
    assert_eq!(store.runs(&RunFilter::default())?.len(), 3);
    Ok(())
}

pub fn workers_claim_the_oldest_queued_run_once(store: &dyn Store) -> Result<(), StoreError> {
    store.upsert_workload("app", REPO, 1)?;
    assert_eq!(store.claim_queued_run("worker-1", 5)?, None);
    assert_eq!(store.queued_count()?, 0);
    // A CLI run, older than all, is never the workers'.
    let (cli, _) = store.create_run(&new_run("app", 1, &["a"]))?;
    let (late, _) = store.create_run(&api_run("app", 30, "alice"))?;
    let (early, _) = store.create_run(&webhook_run("app", 10, "d-1"))?;
    let (same_time, _) = store.create_run(&api_run("app", 30, "bob"))?;
    let (started, _) = store.create_run(&api_run("app", 2, "carol"))?;
    store.start_run(started.id, "elsewhere", 3)?;
    assert_eq!(store.queued_count()?, 3);

    let first = store.claim_queued_run("worker-1", 40)?;
    let expected = RunRecord {
        status: RunStatus::Running,
        owner: Some("worker-1".to_owned()),
        started_at_ms: Some(40),
        ..early.clone()
    };
    assert_eq!(first, Some(expected.clone()), "the oldest");
    assert_eq!(get_run(store, early.id)?, expected);
    assert_eq!(store.queued_count()?, 2);
    // Equal creation times: the earlier id first. Never the same run twice.
    let second = store.claim_queued_run("worker-2", 41)?;
    assert_eq!(second.as_ref().map(|r| r.id), Some(late.id));
    assert_eq!(second.and_then(|r| r.owner).as_deref(), Some("worker-2"));
    let third = store.claim_queued_run("worker-1", 42)?;
    assert_eq!(third.map(|r| r.id), Some(same_time.id));
    assert_eq!(store.claim_queued_run("worker-2", 43)?, None);
    assert_eq!(store.queued_count()?, 0);
    // The CLI run is still queued, untouched.
    assert_eq!(get_run(store, cli.id)?, cli);
    // A finished (or interrupted) queued run leaves the queue.
    let (ended, _) = store.create_run(&api_run("app", 50, "alice"))?;
    assert_eq!(store.queued_count()?, 1);
    store.finish_run(ended.id, RunStatus::Interrupted, Some("cancelled"), 51)?;
    assert_eq!(store.queued_count()?, 0);
    assert_eq!(store.claim_queued_run("worker-1", 52)?, None);
    Ok(())
}

/// Unix milliseconds by this machine's clock (leases are judged by the
/// database's clock on PostgreSQL, which is this machine's in the tests).
pub(super) fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub fn claimed_runs_are_leased_and_stale_leases_expire(
    store: &dyn Store,
) -> Result<(), StoreError> {
    store.upsert_workload("app", REPO, 1)?;
    let (cli, _) = store.create_run(&new_run("app", 1, &["a"]))?;
    store.start_run(cli.id, "cli", wall_ms())?;
    let (a, _) = store.create_run(&api_run("app", 2, "alice"))?;
    let (b, _) = store.create_run(&api_run("app", 3, "bob"))?;
    let a_claim = store.claim_queued_run("worker-1", wall_ms())?;
    let b_claim = store.claim_queued_run("worker-2", wall_ms())?;
    assert_eq!(a_claim.map(|r| r.id), Some(a.id));
    assert_eq!(b_claim.map(|r| r.id), Some(b.id));
    let b_stages = store.stages(b.id)?;
    store.start_stage(b_stages[0].id, wall_ms())?;
    // Fresh leases are not stale; a worker renews only its own claimed runs.
    assert!(store.expire_leases(60_000, "gone", wall_ms())?.is_empty());
    assert_eq!(store.heartbeat_runs("worker-1", wall_ms())?, 1);
    assert_eq!(store.heartbeat_runs("cli", wall_ms())?, 0, "not leased");
    assert_eq!(store.heartbeat_runs("nobody", wall_ms())?, 0);
    std::thread::sleep(std::time::Duration::from_millis(300));
    // worker-1 keeps renewing; worker-2 stopped: its run is interrupted, once.
    assert_eq!(store.heartbeat_runs("worker-1", wall_ms())?, 1);
    let expired = store.expire_leases(150, "worker-2 stopped renewing its lease", wall_ms())?;
    assert_eq!(expired, vec![b.id]);
    assert!(store.expire_leases(150, "again", wall_ms())?.is_empty());
    let b_now = get_run(store, b.id)?;
    assert_eq!(b_now.status, RunStatus::Interrupted);
    assert_eq!(
        b_now.reason.as_deref(),
        Some("worker-2 stopped renewing its lease")
    );
    assert_eq!(store.stages(b.id)?[0].status, StageStatus::Interrupted);
    assert_eq!(store.heartbeat_runs("worker-2", wall_ms())?, 0, "final");
    // The run without a lease (not claimed from the queue) is never expired.
    assert_eq!(get_run(store, cli.id)?.status, RunStatus::Running);
    assert_eq!(get_run(store, a.id)?.status, RunStatus::Running);
    Ok(())
}

pub fn a_lost_run_is_requeued_once_and_its_copy_lost_again_is_interrupted(
    store: &dyn Store,
) -> Result<(), StoreError> {
    store.upsert_workload("app", REPO, 1)?;
    let (a, a_stages) = store.create_run(&api_run("app", 2, "alice"))?;
    let (b, _) = store.create_run(&api_run("app", 3, "bob"))?;
    assert_eq!(
        store.claim_queued_run("worker-1", wall_ms())?.map(|r| r.id),
        Some(a.id)
    );
    store.start_stage(a_stages[0].id, wall_ms())?;
    // Fresh leases are neither requeued nor expired.
    assert!(
        store
            .requeue_expired_leases(60_000, "gone", wall_ms())?
            .is_empty()
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let requeued = store.requeue_expired_leases(150, "worker-1 stopped", wall_ms())?;
    assert_eq!(requeued.len(), 1);
    let (lost, copy) = requeued[0];
    assert_eq!(lost, a.id);
    assert!(
        store
            .requeue_expired_leases(150, "again", wall_ms())?
            .is_empty()
    );
    let a_now = get_run(store, a.id)?;
    assert_eq!(a_now.status, RunStatus::Interrupted);
    assert_eq!(
        a_now.reason.as_deref(),
        Some(format!("worker-1 stopped; requeued once as run {}", copy.0).as_str())
    );
    // The copy: queued for workers, as old as the lost run (so it is taken
    // before runs queued after it), its stages pending.
    let c = get_run(store, copy)?;
    assert_eq!(c.status, RunStatus::Queued);
    assert_eq!(
        (c.workload.as_str(), c.commit.as_str()),
        ("app", a.commit.as_str())
    );
    assert_eq!(c.trigger, a.trigger);
    assert_eq!(c.created_at_ms, a.created_at_ms);
    let names = |stages: Vec<StageRecord>| {
        stages
            .into_iter()
            .map(|s| (s.name, s.kind, s.status))
            .collect::<Vec<_>>()
    };
    let expected: Vec<_> = a_stages
        .iter()
        .map(|s| (s.name.clone(), s.kind, StageStatus::Pending))
        .collect();
    assert_eq!(names(store.stages(copy)?), expected);
    assert_eq!(store.queued_count()?, 2);
    // The copy is claimed first (the older), and lost again: it ends
    // interrupted, not requeued a second time.
    assert_eq!(
        store.claim_queued_run("worker-2", wall_ms())?.map(|r| r.id),
        Some(copy)
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        store
            .requeue_expired_leases(150, "worker-2 stopped", wall_ms())?
            .is_empty()
    );
    assert_eq!(
        store.expire_leases(150, "worker-2 stopped", wall_ms())?,
        vec![copy]
    );
    assert_eq!(get_run(store, copy)?.status, RunStatus::Interrupted);
    assert_eq!(get_run(store, b.id)?.status, RunStatus::Queued);
    assert_eq!(store.queued_count()?, 1);
    Ok(())
}

pub fn run_counts_and_stage_durations(store: &dyn Store) -> Result<(), StoreError> {
    let zero: Vec<(RunStatus, u64)> = RunStatus::ALL.iter().map(|s| (*s, 0)).collect();
    assert_eq!(store.run_counts()?, zero);
    assert!(store.stage_durations()?.is_empty());

    store.upsert_workload("app", REPO, 1)?;
    // Passed 10 + 30 ms, failed 5 ms; one skipped without a start; one running.
    let (a, a_stages) = store.create_run(&new_run("app", 1, &["x", "y"]))?;
    store.start_run(a.id, "me", 100)?;
    store.start_stage(a_stages[0].id, 100)?;
    store.finish_stage(a_stages[0].id, StageStatus::Passed, Some(0), None, 110)?;
    store.start_stage(a_stages[1].id, 110)?;
    store.finish_stage(a_stages[1].id, StageStatus::Failed, Some(1), None, 115)?;
    store.finish_run(a.id, RunStatus::Failed, Some("y failed"), 115)?;
    let (b, b_stages) = store.create_run(&new_run("app", 2, &["x", "y"]))?;
    store.start_run(b.id, "me", 200)?;
    store.start_stage(b_stages[0].id, 200)?;
    store.finish_stage(b_stages[0].id, StageStatus::Passed, Some(0), None, 230)?;
    store.finish_run(b.id, RunStatus::Succeeded, None, 230)?;
    let (c, c_stages) = store.create_run(&new_run("app", 3, &["x"]))?;
    store.start_run(c.id, "me", 300)?;
    store.start_stage(c_stages[0].id, 300)?;
    store.create_run(&new_run("app", 4, &["x"]))?;
    store.create_run(&api_run("app", 5, "alice"))?;

    let counts = store.run_counts()?;
    assert_eq!(
        counts,
        vec![
            (RunStatus::Queued, 2),
            (RunStatus::Running, 1),
            (RunStatus::Succeeded, 1),
            (RunStatus::Failed, 1),
            (RunStatus::Interrupted, 0),
        ]
    );
    assert_eq!(
        store.stage_durations()?,
        vec![
            StageDurationStat {
                kind: StageKind::Command,
                status: StageStatus::Failed,
                count: 1,
                sum_ms: 5,
            },
            StageDurationStat {
                kind: StageKind::Command,
                status: StageStatus::Passed,
                count: 2,
                sum_ms: 40,
            },
        ]
    );
    // Interrupting the running run finishes its running stage (started at 300).
    assert!(store.interrupt_run(c.id, "killed", 307)?);
    let stats = store.stage_durations()?;
    assert!(stats.contains(&StageDurationStat {
        kind: StageKind::Command,
        status: StageStatus::Interrupted,
        count: 1,
        sum_ms: 7,
    }));
    assert_eq!(stats.len(), 3);
    assert_eq!(
        store.run_counts()?.iter().map(|(_, n)| n).sum::<u64>(),
        5,
        "every run counted once"
    );
    Ok(())
}
