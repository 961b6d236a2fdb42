//! The backend-independent test suite every [`Store`] must pass.
//!
//! Each case is a public function taking a fresh, empty store; it panics (through
//! `assert!`) on a wrong answer and returns `Err` when the store fails outright.
//! A backend runs them all with [`run_all`], or one `#[test]` per case with
//! [`conformance_tests!`](crate::conformance_tests):
//!
//! ```text
//! // in a backend's tests: the expression makes a fresh store (anything that is
//! // `AsRef<dyn Store>`, e.g. `Box<dyn Store>`, or a fixture that also owns a temp dir)
//! cairn_store::conformance_tests!(Box::new(MyStore::new()) as Box<dyn cairn_store::Store>);
//! ```

use cairn_model::{
    LogLine, LogStream, NewEvidence, NewRun, NewStage, RunId, RunRecord, RunStatus, StageId,
    StageKind, StageRecord, StageStatus,
};
use cairn_model::{NewDelivery, SessionRecord, Trigger, WorkloadRecord};

use crate::{
    AdvisoryPut, DeliveryAccepted, FindingFilter, FindingKey, FindingState, LogMark, LogStats,
    MatchScope, NewAdvisory, NewFinding, NewSbom, PackageHit, RunFilter, StageDurationStat, Store,
    StoreError, StoredAdvisory, StoredComponent, StoredFinding,
};

/// One case of the suite.
pub type Case = fn(&dyn Store) -> Result<(), StoreError>;

// Every case with its name, in a stable order: `pub const CASES: &[(&str, Case)]`.
crate::conformance_tests!(@list @const);

/// Runs every case, each on a store from `make`; panics naming the first case that fails.
pub fn run_all(make: &dyn Fn() -> Box<dyn Store>) {
    for (name, case) in CASES {
        let store = make();
        if let Err(e) = case(&*store) {
            panic!("conformance case `{name}` failed: {e:?}");
        }
    }
}

/// Defines one `#[test]` per conformance case, named after it. `$make` is an
/// expression evaluated afresh for every test; its value must implement
/// `AsRef<dyn Store>` and lives until the test ends (so it can own a temp dir).
#[macro_export]
macro_rules! conformance_tests {
    // One `#[test]` per case.
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() -> ::std::result::Result<(), $crate::StoreError> {
                let fixture = $make;
                $crate::conformance::$case(::std::convert::AsRef::<dyn $crate::Store>::as_ref(
                    &fixture,
                ))
            }
        )*
    };
    // `conformance::CASES`, from the same list.
    (@const; $($case:ident),* $(,)?) => {
        /// Every case with its name, in a stable order.
        pub const CASES: &[(&str, Case)] = &[$((::std::stringify!($case), $case as Case)),*];
    };
    // The one list of cases, handed to one of the arms above.
    (@list $($arm:tt)*) => {
        $crate::conformance_tests!($($arm)*;
            create_run_stores_queued_run_and_pending_stages,
            create_run_needs_a_known_workload,
            runs_are_listed_newest_first,
            runs_filter_and_limit,
            start_run_records_owner,
            stages_keep_chain_order,
            stage_transitions_are_checked,
            finish_stage_records_outcome,
            finish_run_skips_pending_stages,
            finish_run_interrupts_a_running_stage,
            finish_run_needs_a_final_status,
            interrupt_run_settles_stages,
            interrupt_run_is_idempotent,
            final_runs_are_immutable,
            logs_keep_binary_bytes,
            logs_refuse_gaps_and_duplicates,
            logs_page_by_seq,
            log_tail_and_stats,
            logs_are_per_stage,
            unknown_ids_are_not_found,
            evidence_is_kept_by_run_and_by_subject,
            evidence_refers_to_known_runs_and_their_stages,
            advisories_are_replaced_only_when_newer,
            advisories_are_found_by_package,
            withdrawn_advisories_are_kept_but_not_indexed,
            sboms_are_found_by_package,
            sbom_batches_are_all_or_nothing,
            components_are_found_by_package,
            findings_open_persist_and_fix,
            rematch_scope_covers_packages_advisories_and_one_sbom,
            rematch_refuses_findings_outside_its_scope,
            catalog_keeps_every_entry_and_the_newest_is_current,
            images_are_recorded_by_workload_and_digest,
            identities_are_unique_and_found_by_token_hash,
            revoked_identities_are_kept_but_not_found_by_token,
            the_first_identity_is_added_only_once,
            bindings_are_a_set_of_known_identities,
            the_newest_deployment_is_current,
            deployment_intents_get_outcomes,
            change_records_are_listed_newest_first_and_bounded,
            workloads_have_a_unique_forge_repository,
            triggers_round_trip,
            workers_claim_the_oldest_queued_run_once,
            a_delivery_is_accepted_once,
            a_delivery_may_create_no_run,
            sessions_are_kept_until_removed_or_expired,
            identity_expiry_round_trips,
            forge_accounts_map_logins_to_identities,
            run_counts_and_stage_durations,
            the_log_mark_starts_new_and_only_moves_forward,
        );
    };
    ($make:expr) => {
        $crate::conformance_tests!(@list @cases $make);
    };
}

// ---- helpers -------------------------------------------------------------------------

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const REPO: &str = "https://git.example.invalid/app.git";

fn new_run(workload: &str, created_at_ms: i64, stages: &[&str]) -> NewRun {
    NewRun {
        workload: workload.to_owned(),
        commit: COMMIT.to_owned(),
        git_ref: Some("main".to_owned()),
        created_at_ms,
        stages: stages
            .iter()
            .map(|name| NewStage {
                name: (*name).to_owned(),
                kind: StageKind::Command,
                command: Some(format!("make {name}")),
            })
            .collect(),
        trigger: Trigger::Cli,
    }
}

/// A workload `app` and a run of it with the given stages, already `running`.
fn running_run(
    store: &dyn Store,
    stages: &[&str],
) -> Result<(RunRecord, Vec<StageRecord>), StoreError> {
    store.upsert_workload("app", REPO, 1)?;
    let (run, stages) = store.create_run(&new_run("app", 10, stages))?;
    store.start_run(run.id, "host:1:2", 20)?;
    Ok((run, stages))
}

fn line(seq: u64, text: &[u8]) -> LogLine {
    LogLine {
        seq,
        stream: LogStream::Stdout,
        at_ms: 1_000 + i64::try_from(seq).unwrap_or(i64::MAX),
        text: text.to_vec(),
    }
}

/// Lines `from..to` with text `line <seq>`.
fn lines(from: u64, to: u64) -> Vec<LogLine> {
    (from..to)
        .map(|seq| line(seq, format!("line {seq}").as_bytes()))
        .collect()
}

fn get_run(store: &dyn Store, id: RunId) -> Result<RunRecord, StoreError> {
    store.run(id)?.ok_or(StoreError::NotFound {
        what: "run (conformance)",
        id: id.to_string(),
    })
}

fn statuses(store: &dyn Store, run: RunId) -> Result<Vec<StageStatus>, StoreError> {
    Ok(store.stages(run)?.iter().map(|s| s.status).collect())
}

fn ids(runs: &[RunRecord]) -> Vec<RunId> {
    runs.iter().map(|r| r.id).collect()
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound { what: w, .. }) => assert_eq!(w, what),
        other => panic!("expected {what} not found, got {other:?}"),
    }
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

// ---- cases ---------------------------------------------------------------------------

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

// ---- advisories ----------------------------------------------------------------------

fn advisory(id: &str, modified: &str, packages: &[(&str, &str)]) -> NewAdvisory {
    NewAdvisory {
        id: id.to_owned(),
        modified: modified.to_owned(),
        withdrawn: false,
        packages: packages
            .iter()
            .map(|(e, n)| ((*e).to_owned(), (*n).to_owned()))
            .collect(),
        json: format!("{{\"id\":\"{id}\",\"modified\":\"{modified}\"}}").into_bytes(),
    }
}

fn keys(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(e, n)| ((*e).to_owned(), (*n).to_owned()))
        .collect()
}

fn found_ids(found: &[StoredAdvisory]) -> Vec<&str> {
    found.iter().map(|a| a.id.as_str()).collect()
}

/// A record replaces the stored one only when its `modified` is later; its package
/// index follows the replacement.
pub fn advisories_are_replaced_only_when_newer(store: &dyn Store) -> Result<(), StoreError> {
    let first = advisory(
        "A-1",
        "2024-01-01T00:00:00.000000000Z",
        &[("crates.io", "old")],
    );
    let other = advisory("A-2", "2024-01-01T00:00:00.000000000Z", &[("npm", "x")]);
    assert_eq!(
        store.put_advisories(&[first.clone(), other.clone()])?,
        vec![AdvisoryPut::New, AdvisoryPut::New]
    );
    // The same records again: nothing changes.
    assert_eq!(
        store.put_advisories(&[first.clone(), other])?,
        vec![AdvisoryPut::Unchanged, AdvisoryPut::Unchanged]
    );
    // An older copy does not replace a newer one.
    let older = advisory(
        "A-1",
        "2023-06-01T00:00:00.000000000Z",
        &[("crates.io", "older")],
    );
    assert_eq!(
        store.put_advisories(&[older])?,
        vec![AdvisoryPut::Unchanged]
    );
    let kept = store.advisory("A-1")?.expect("A-1 is kept");
    assert_eq!(kept.modified, first.modified);
    assert_eq!(kept.json, first.json);
    // A newer copy replaces it, and is found under its new package only.
    let newer = advisory(
        "A-1",
        "2024-02-01T00:00:00.000000000Z",
        &[("crates.io", "new")],
    );
    assert_eq!(
        store.put_advisories(std::slice::from_ref(&newer))?,
        vec![AdvisoryPut::Updated]
    );
    let kept = store.advisory("A-1")?.expect("A-1 is kept");
    assert_eq!(kept.modified, newer.modified);
    assert_eq!(kept.json, newer.json);
    assert!(
        store
            .advisories_for_packages(&keys(&[("crates.io", "old")]))?
            .is_empty()
    );
    assert_eq!(
        found_ids(&store.advisories_for_packages(&keys(&[("crates.io", "new")]))?),
        vec!["A-1"]
    );
    // Within one batch, a second copy is compared with the first.
    let twice = [
        advisory("A-3", "2024-01-01T00:00:00.000000000Z", &[]),
        advisory("A-3", "2024-03-01T00:00:00.000000000Z", &[]),
    ];
    assert_eq!(
        store.put_advisories(&twice)?,
        vec![AdvisoryPut::New, AdvisoryPut::Updated]
    );
    assert_eq!(store.advisory_count()?, 3);
    assert!(store.advisory("A-404")?.is_none());
    // A record over the limit refuses the whole batch.
    let mut big = advisory("A-4", "2024-01-01T00:00:00.000000000Z", &[]);
    big.json = vec![b' '; crate::MAX_ADVISORY_BYTES + 1];
    let fine = advisory("A-5", "2024-01-01T00:00:00.000000000Z", &[]);
    assert!(matches!(
        store.put_advisories(&[fine, big]),
        Err(StoreError::TooLarge { .. })
    ));
    assert!(store.advisory("A-5")?.is_none());
    assert_eq!(store.advisory_count()?, 3);
    Ok(())
}

/// Lookup by (ecosystem, name): exact on both, each record once however many of its
/// packages are asked for, sorted by id.
pub fn advisories_are_found_by_package(store: &dyn Store) -> Result<(), StoreError> {
    store.put_advisories(&[
        advisory(
            "B-2",
            "2024-01-01T00:00:00.000000000Z",
            &[("crates.io", "a"), ("crates.io", "b")],
        ),
        advisory(
            "B-1",
            "2024-01-01T00:00:00.000000000Z",
            &[("crates.io", "b")],
        ),
        advisory("B-3", "2024-01-01T00:00:00.000000000Z", &[("npm", "a")]),
    ])?;
    let found = store.advisories_for_packages(&keys(&[("crates.io", "a"), ("crates.io", "b")]))?;
    assert_eq!(found_ids(&found), vec!["B-1", "B-2"]);
    assert_eq!(
        found_ids(&store.advisories_for_packages(&keys(&[("npm", "a")]))?),
        vec!["B-3"]
    );
    assert!(
        store
            .advisories_for_packages(&keys(&[("npm", "b")]))?
            .is_empty()
    );
    assert!(store.advisories_for_packages(&[])?.is_empty());
    Ok(())
}

/// A withdrawn record is kept (and counted, and can be updated) but never found by
/// package; one that becomes withdrawn leaves the index.
pub fn withdrawn_advisories_are_kept_but_not_indexed(store: &dyn Store) -> Result<(), StoreError> {
    let live = advisory("C-1", "2024-01-01T00:00:00.000000000Z", &[("PyPI", "p")]);
    let mut gone = advisory("C-2", "2024-01-01T00:00:00.000000000Z", &[("PyPI", "p")]);
    gone.withdrawn = true;
    store.put_advisories(&[live, gone])?;
    let p = keys(&[("PyPI", "p")]);
    assert_eq!(found_ids(&store.advisories_for_packages(&p)?), vec!["C-1"]);
    assert!(store.advisory("C-2")?.expect("C-2 is kept").withdrawn);
    assert_eq!(store.advisory_count()?, 2);
    let mut withdrawn_later = advisory("C-1", "2024-05-01T00:00:00.000000000Z", &[("PyPI", "p")]);
    withdrawn_later.withdrawn = true;
    assert_eq!(
        store.put_advisories(&[withdrawn_later])?,
        vec![AdvisoryPut::Updated]
    );
    assert!(store.advisories_for_packages(&p)?.is_empty());
    assert_eq!(store.advisory_count()?, 2);
    // The database's state lists every kept record, withdrawn ones included.
    assert_eq!(
        store.advisory_versions()?,
        vec![
            (
                "C-1".to_owned(),
                "2024-05-01T00:00:00.000000000Z".to_owned(),
                true
            ),
            (
                "C-2".to_owned(),
                "2024-01-01T00:00:00.000000000Z".to_owned(),
                true
            ),
        ]
    );
    Ok(())
}

// ---- SBOMs -----------------------------------------------------------------------------

fn sbom(subject: &str, components: &[(&str, &str, &str)]) -> NewSbom {
    NewSbom {
        subject_name: subject.to_owned(),
        subject_digest: format!("sha256:{subject}"),
        workload: None,
        environment: None,
        created_at_ms: 1_000,
        format: "cyclonedx".to_owned(),
        document: format!("{{\"subject\":\"{subject}\"}}").into_bytes(),
        components: components
            .iter()
            .map(|(eco, name, version)| {
                (
                    (*eco).to_owned(),
                    (*name).to_owned(),
                    (*version).to_owned(),
                    format!("pkg:{eco}/{name}@{version}"),
                )
            })
            .collect(),
    }
}

fn hit_summary(hits: &[PackageHit]) -> Vec<(i64, &str, &str, &str)> {
    hits.iter()
        .map(|h| {
            (
                h.sbom_id,
                h.subject_name.as_str(),
                h.ecosystem.as_str(),
                h.version.as_str(),
            )
        })
        .collect()
}

/// A stored SBOM is found by each component's name, in one ecosystem or in any;
/// a component listed twice in one SBOM is one hit; the hit names the artifact.
pub fn sboms_are_found_by_package(store: &dyn Store) -> Result<(), StoreError> {
    assert!(store.where_package(None, "smallvec")?.is_empty());
    let a = store.add_sbom(&sbom(
        "app-a",
        &[
            ("crates.io", "smallvec", "0.6.10"),
            ("crates.io", "smallvec", "0.6.10"),
            ("crates.io", "serde", "1.0.0"),
        ],
    ))?;
    let mut b_sbom = sbom(
        "app-b",
        &[
            ("crates.io", "smallvec", "1.6.1"),
            ("npm", "smallvec", "2.0.0"),
        ],
    );
    b_sbom.workload = Some("shop".to_owned());
    b_sbom.environment = Some("production".to_owned());
    let b = store.add_sbom(&b_sbom)?;
    assert!(b > a, "ids grow: {a} then {b}");
    let any = store.where_package(None, "smallvec")?;
    assert_eq!(
        hit_summary(&any),
        vec![
            (a, "app-a", "crates.io", "0.6.10"),
            (b, "app-b", "crates.io", "1.6.1"),
            (b, "app-b", "npm", "2.0.0"),
        ]
    );
    assert_eq!(any[0].subject_digest, "sha256:app-a");
    assert_eq!(any[0].purl, "pkg:crates.io/smallvec@0.6.10");
    assert_eq!(any[0].workload, None);
    assert_eq!(any[1].workload.as_deref(), Some("shop"));
    assert_eq!(any[1].environment.as_deref(), Some("production"));
    assert_eq!(
        hit_summary(&store.where_package(Some("npm"), "smallvec")?),
        vec![(b, "app-b", "npm", "2.0.0")]
    );
    assert_eq!(
        hit_summary(&store.where_package(Some("crates.io"), "serde")?),
        vec![(a, "app-a", "crates.io", "1.0.0")]
    );
    assert!(store.where_package(Some("PyPI"), "smallvec")?.is_empty());
    assert!(store.where_package(None, "SmallVec")?.is_empty());
    Ok(())
}

/// A batch is kept whole or not at all: one oversized document or component list
/// refuses every SBOM in it; an empty batch stores nothing.
pub fn sbom_batches_are_all_or_nothing(store: &dyn Store) -> Result<(), StoreError> {
    assert!(store.add_sboms(&[])?.is_empty());
    let fine = sbom("fine", &[("crates.io", "libc", "0.2.0")]);
    let mut big = sbom("big", &[("crates.io", "libc", "0.2.1")]);
    big.document = vec![b' '; crate::MAX_SBOM_BYTES + 1];
    assert!(matches!(
        store.add_sboms(&[fine.clone(), big]),
        Err(StoreError::TooLarge { limit, .. }) if limit == crate::MAX_SBOM_BYTES
    ));
    let mut many = sbom("many", &[]);
    many.components = vec![
        (
            "crates.io".to_owned(),
            "libc".to_owned(),
            "0.2.2".to_owned(),
            "pkg:cargo/libc@0.2.2".to_owned(),
        );
        crate::MAX_SBOM_COMPONENTS + 1
    ];
    assert!(matches!(
        store.add_sboms(&[fine.clone(), many]),
        Err(StoreError::TooLarge { limit, .. }) if limit == crate::MAX_SBOM_COMPONENTS
    ));
    assert!(store.where_package(None, "libc")?.is_empty());
    let ids = store.add_sboms(&[
        fine.clone(),
        sbom("other", &[("crates.io", "libc", "0.2.3")]),
    ])?;
    assert_eq!(ids.len(), 2);
    assert_eq!(
        hit_summary(&store.where_package(Some("crates.io"), "libc")?),
        vec![
            (ids[0], "fine", "crates.io", "0.2.0"),
            (ids[1], "other", "crates.io", "0.2.3"),
        ]
    );
    Ok(())
}

// ---- findings and re-matches -------------------------------------------------------------

fn packages(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    keys(pairs)
}

fn found(advisory: &str, sbom: i64, ecosystem: &str, name: &str, version: &str) -> NewFinding {
    NewFinding {
        key: FindingKey {
            advisory_id: advisory.to_owned(),
            sbom_id: sbom,
            ecosystem: ecosystem.to_owned(),
            name: name.to_owned(),
            version: version.to_owned(),
        },
        purl: format!("pkg:{ecosystem}/{name}@{version}"),
        kind: "vulnerability".to_owned(),
        severity: Some("high".to_owned()),
    }
}

fn finding_summary(findings: &[StoredFinding]) -> Vec<(String, i64, String, FindingState)> {
    findings
        .iter()
        .map(|f| {
            (
                f.key.advisory_id.clone(),
                f.key.sbom_id,
                format!("{}@{}", f.key.name, f.key.version),
                f.state,
            )
        })
        .collect()
}

fn all_findings(store: &dyn Store) -> Result<Vec<(String, i64, String, FindingState)>, StoreError> {
    Ok(finding_summary(&store.findings(&FindingFilter::default())?))
}

/// Components are found by (ecosystem, name), each once, in one SBOM or in all.
pub fn components_are_found_by_package(store: &dyn Store) -> Result<(), StoreError> {
    assert!(store.components_for_packages(&[], None)?.is_empty());
    let a = store.add_sbom(&sbom(
        "app-a",
        &[
            ("crates.io", "smallvec", "0.6.10"),
            ("crates.io", "smallvec", "0.6.10"),
            ("crates.io", "serde", "1.0.0"),
            ("npm", "smallvec", "1.0.0"),
        ],
    ))?;
    let b = store.add_sbom(&sbom("app-b", &[("crates.io", "smallvec", "1.6.1")]))?;
    let got = store.components_for_packages(&packages(&[("crates.io", "smallvec")]), None)?;
    let summary: Vec<(i64, &str)> = got
        .iter()
        .map(|c| (c.sbom_id, c.version.as_str()))
        .collect();
    assert_eq!(summary, vec![(a, "0.6.10"), (b, "1.6.1")]);
    assert_eq!(
        got[0],
        StoredComponent {
            sbom_id: a,
            ecosystem: "crates.io".to_owned(),
            name: "smallvec".to_owned(),
            version: "0.6.10".to_owned(),
            purl: "pkg:crates.io/smallvec@0.6.10".to_owned(),
        }
    );
    let only_b = store.components_for_packages(&packages(&[("crates.io", "smallvec")]), Some(b))?;
    assert_eq!(only_b.len(), 1);
    assert_eq!(only_b[0].sbom_id, b);
    let two = store.components_for_packages(
        &packages(&[
            ("crates.io", "serde"),
            ("npm", "smallvec"),
            ("PyPI", "serde"),
        ]),
        None,
    )?;
    assert_eq!(two.len(), 2);
    Ok(())
}

/// A match is opened once with its first-seen time; the same match again keeps it
/// open (and its first-seen time); a match that is gone is fixed; a fixed one that
/// matches again is opened again. Every re-match is logged with its counts.
pub fn findings_open_persist_and_fix(store: &dyn Store) -> Result<(), StoreError> {
    let a = store.add_sbom(&sbom(
        "app-a",
        &[
            ("crates.io", "smallvec", "0.6.10"),
            ("crates.io", "serde", "1.0.0"),
        ],
    ))?;
    let b = store.add_sbom(&sbom("app-b", &[("crates.io", "smallvec", "0.6.10")]))?;
    let scope = MatchScope {
        packages: packages(&[("crates.io", "smallvec")]),
        advisories: vec!["RUSTSEC-1".to_owned()],
        sbom: None,
    };
    let matches = [
        found("RUSTSEC-1", a, "crates.io", "smallvec", "0.6.10"),
        found("RUSTSEC-1", b, "crates.io", "smallvec", "0.6.10"),
    ];
    let first = store.record_matches(&scope, &matches, 1_000)?;
    assert_eq!(first.components, 2);
    assert_eq!(first.still_open, 0);
    assert!(first.fixed.is_empty());
    assert_eq!(
        finding_summary(&first.opened),
        vec![
            (
                "RUSTSEC-1".to_owned(),
                a,
                "smallvec@0.6.10".to_owned(),
                FindingState::Open
            ),
            (
                "RUSTSEC-1".to_owned(),
                b,
                "smallvec@0.6.10".to_owned(),
                FindingState::Open
            ),
        ]
    );
    let opened = &first.opened[1];
    assert_eq!(opened.subject_name, "app-b");
    assert_eq!(opened.subject_digest, "sha256:app-b");
    assert_eq!(opened.first_seen_ms, 1_000);
    assert_eq!(opened.severity.as_deref(), Some("high"));
    assert_eq!(opened.kind, "vulnerability");
    assert_eq!(opened.purl, "pkg:crates.io/smallvec@0.6.10");

    // The same matches again: nothing new, first-seen kept.
    let again = store.record_matches(&scope, &matches, 2_000)?;
    assert!(again.opened.is_empty());
    assert_eq!(again.still_open, 2);
    let kept = store.findings(&FindingFilter {
        sbom: Some(b),
        ..FindingFilter::default()
    })?;
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].first_seen_ms, kept[0].last_seen_ms),
        (1_000, 2_000)
    );
    // Found by the artifact's digest as well (exposures read them so).
    let by_digest = store.findings(&FindingFilter {
        subject_digest: Some("sha256:app-b".to_owned()),
        ..FindingFilter::default()
    })?;
    assert_eq!(by_digest, kept);
    assert!(
        store
            .findings(&FindingFilter {
                subject_digest: Some("sha256:elsewhere".to_owned()),
                ..FindingFilter::default()
            })?
            .is_empty()
    );

    // Gone from app-a: fixed there, still open in app-b.
    let third = store.record_matches(&scope, &matches[1..], 3_000)?;
    assert_eq!(
        finding_summary(&third.fixed),
        vec![(
            "RUSTSEC-1".to_owned(),
            a,
            "smallvec@0.6.10".to_owned(),
            FindingState::Fixed
        )]
    );
    assert_eq!(third.fixed[0].fixed_at_ms, Some(3_000));
    assert_eq!(
        finding_summary(&store.findings(&FindingFilter {
            state: Some(FindingState::Open),
            ..FindingFilter::default()
        })?),
        vec![(
            "RUSTSEC-1".to_owned(),
            b,
            "smallvec@0.6.10".to_owned(),
            FindingState::Open
        )]
    );

    // It matches again: opened again, first-seen kept, no longer fixed.
    let fourth = store.record_matches(&scope, &matches, 4_000)?;
    assert_eq!(fourth.opened.len(), 1);
    assert_eq!(fourth.opened[0].key.sbom_id, a);
    assert_eq!(fourth.opened[0].first_seen_ms, 1_000);
    assert_eq!(fourth.opened[0].fixed_at_ms, None);
    // What a re-match returns is what it stored (it is not read back row by row).
    let stored = store.findings(&FindingFilter::default())?;
    for f in fourth.opened.iter().chain(&third.fixed) {
        let now = stored.iter().find(|s| s.key == f.key).expect("stored");
        if f.state == FindingState::Open {
            assert_eq!(now, f);
        } else {
            assert_eq!(f.fixed_at_ms, Some(3_000));
        }
    }
    let first_stored = first.opened.iter().all(|f| {
        stored
            .iter()
            .any(|s| s.key == f.key && s.first_seen_ms == f.first_seen_ms && s.purl == f.purl)
    });
    assert!(first_stored);

    // A finding given twice counts once.
    let twice = store.record_matches(
        &scope,
        &[matches[0].clone(), matches[0].clone(), matches[1].clone()],
        5_000,
    )?;
    assert_eq!((twice.opened.len(), twice.still_open), (0, 2));

    let log = store.rematches(10)?;
    assert_eq!(log.len(), 5);
    assert!(log[0].id > log[1].id, "newest first");
    assert_eq!(
        (log[0].at_ms, log[0].components, log[0].still_open),
        (5_000, 2, 2)
    );
    assert_eq!(
        (
            log[2].opened,
            log[2].fixed,
            log[2].packages,
            log[2].advisories
        ),
        (0, 1, 1, 1)
    );
    assert_eq!(log[4].opened, 2);
    assert_eq!(store.rematches(1)?.len(), 1);
    assert!(store.rematches(0)?.is_empty());
    assert_eq!(
        store.findings(&FindingFilter {
            advisory: Some("RUSTSEC-404".to_owned()),
            ..FindingFilter::default()
        })?,
        vec![]
    );
    Ok(())
}

/// A re-match fixes only what it covers: findings of its packages, of its
/// advisories whatever their package, and only in its SBOM when it names one.
pub fn rematch_scope_covers_packages_advisories_and_one_sbom(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let a = store.add_sbom(&sbom(
        "app-a",
        &[
            ("crates.io", "smallvec", "0.6.10"),
            ("npm", "left-pad", "1.0.0"),
        ],
    ))?;
    let b = store.add_sbom(&sbom("app-b", &[("crates.io", "smallvec", "0.6.10")]))?;
    let everything = MatchScope {
        packages: packages(&[("crates.io", "smallvec"), ("npm", "left-pad")]),
        advisories: Vec::new(),
        sbom: None,
    };
    store.record_matches(
        &everything,
        &[
            found("X-1", a, "crates.io", "smallvec", "0.6.10"),
            found("X-1", b, "crates.io", "smallvec", "0.6.10"),
            found("X-2", a, "npm", "left-pad", "1.0.0"),
            found("X-3", a, "npm", "left-pad", "1.0.0"),
        ],
        1_000,
    )?;
    // Re-matching app-b alone fixes nothing in app-a.
    let only_b = store.record_matches(
        &MatchScope {
            packages: packages(&[("crates.io", "smallvec")]),
            advisories: Vec::new(),
            sbom: Some(b),
        },
        &[],
        2_000,
    )?;
    assert_eq!(only_b.components, 1);
    assert_eq!(
        finding_summary(&only_b.fixed),
        vec![(
            "X-1".to_owned(),
            b,
            "smallvec@0.6.10".to_owned(),
            FindingState::Fixed
        )]
    );
    // X-2 no longer names left-pad (its package is not re-matched): fixed; X-3 and
    // the rest are untouched.
    let by_advisory = store.record_matches(
        &MatchScope {
            packages: Vec::new(),
            advisories: vec!["X-2".to_owned()],
            sbom: None,
        },
        &[],
        3_000,
    )?;
    assert_eq!(by_advisory.components, 0);
    assert_eq!(
        finding_summary(&by_advisory.fixed),
        vec![(
            "X-2".to_owned(),
            a,
            "left-pad@1.0.0".to_owned(),
            FindingState::Fixed
        )]
    );
    assert_eq!(
        all_findings(store)?,
        vec![
            (
                "X-1".to_owned(),
                a,
                "smallvec@0.6.10".to_owned(),
                FindingState::Open
            ),
            (
                "X-2".to_owned(),
                a,
                "left-pad@1.0.0".to_owned(),
                FindingState::Fixed
            ),
            (
                "X-3".to_owned(),
                a,
                "left-pad@1.0.0".to_owned(),
                FindingState::Open
            ),
            (
                "X-1".to_owned(),
                b,
                "smallvec@0.6.10".to_owned(),
                FindingState::Fixed
            ),
        ]
    );
    Ok(())
}

/// A match outside the scope, or of a component that is not stored, refuses the
/// whole re-match: nothing is stored or logged.
pub fn rematch_refuses_findings_outside_its_scope(store: &dyn Store) -> Result<(), StoreError> {
    let a = store.add_sbom(&sbom("app-a", &[("crates.io", "smallvec", "0.6.10")]))?;
    let b = store.add_sbom(&sbom("app-b", &[("crates.io", "smallvec", "0.6.10")]))?;
    let scope = MatchScope {
        packages: packages(&[("crates.io", "smallvec")]),
        advisories: Vec::new(),
        sbom: Some(a),
    };
    let ok = found("X-1", a, "crates.io", "smallvec", "0.6.10");
    assert!(matches!(
        store.record_matches(&scope, &[ok.clone(), found("X-1", b, "crates.io", "smallvec", "0.6.10")], 1),
        Err(StoreError::OutOfScope { sbom, .. }) if sbom == b
    ));
    assert!(matches!(
        store.record_matches(
            &scope,
            &[ok.clone(), found("X-1", a, "crates.io", "serde", "1.0.0")],
            1
        ),
        Err(StoreError::OutOfScope { .. })
    ));
    assert!(matches!(
        store.record_matches(
            &scope,
            &[
                ok.clone(),
                found("X-1", a, "crates.io", "smallvec", "9.9.9")
            ],
            1
        ),
        Err(StoreError::NotFound { .. })
    ));
    assert!(all_findings(store)?.is_empty());
    assert!(store.rematches(10)?.is_empty());
    assert_eq!(store.record_matches(&scope, &[ok], 1)?.opened.len(), 1);
    Ok(())
}

// ---- images (schema v6) ----------------------------------------------------------------

fn base(name: &str, digest_byte: char, at: i64) -> cairn_model::BaseRecord {
    cairn_model::BaseRecord {
        name: name.to_owned(),
        digest: format!("sha256:{}", digest_byte.to_string().repeat(64)),
        source: format!("rootfs:/tmp/{name}"),
        imported_at_ms: at,
        packages: 90,
        vulnerabilities: 0,
        recipe: (digest_byte == 'c').then(|| {
            cairn_model::BaseRecipe::Debian(
                cairn_model::DebianRecipe::new(
                    "bookworm",
                    "minbase",
                    &["make".to_owned()],
                    1_700_000_000,
                )
                .expect("a valid recipe"),
            )
        }),
        package_list: vec![
            "base-files=12.4+deb12u11".to_owned(),
            "make=4.3-4.1".to_owned(),
        ],
    }
}

pub fn catalog_keeps_every_entry_and_the_newest_is_current(
    store: &dyn Store,
) -> Result<(), StoreError> {
    assert!(store.bases()?.is_empty());
    assert!(store.base_history("debian")?.is_empty());
    store.add_base(&base("debian", 'a', 1))?;
    store.add_base(&base("tiny", 'b', 2))?;
    store.add_base(&base("debian", 'c', 3))?;
    let history = store.base_history("debian")?;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0], base("debian", 'c', 3), "newest first");
    assert_eq!(history[1], base("debian", 'a', 1));
    let current = store.bases()?;
    assert_eq!(current, vec![base("debian", 'c', 3), base("tiny", 'b', 2)]);
    let huge = cairn_model::BaseRecord {
        source: "x".repeat(1 << 20),
        ..base("big", 'd', 4)
    };
    assert!(matches!(
        store.add_base(&huge),
        Err(StoreError::TooLarge { .. })
    ));
    let huge_list = cairn_model::BaseRecord {
        package_list: vec!["p=1".repeat(1 << 19); 2],
        ..base("big", 'd', 4)
    };
    assert!(matches!(
        store.add_base(&huge_list),
        Err(StoreError::TooLarge { .. })
    ));
    Ok(())
}

pub fn images_are_recorded_by_workload_and_digest(store: &dyn Store) -> Result<(), StoreError> {
    let (run, _) = running_run(store, &["build"])?;
    let image = |digest: char, workload: &str, run: Option<RunId>, from: Option<&str>| {
        cairn_model::ImageRecord {
            digest: format!("sha256:{}", digest.to_string().repeat(64)),
            workload: workload.to_owned(),
            run,
            commit: COMMIT.to_owned(),
            base_name: "tiny".to_owned(),
            base_digest: format!("sha256:{}", "b".repeat(64)),
            created_at_ms: 5,
            rebased_from: from.map(str::to_owned),
        }
    };
    let first = image('1', "app", Some(run.id), None);
    let other = image('2', "web", None, None);
    let rebased = image('3', "app", None, Some(&first.digest));
    store.add_image(&first)?;
    store.add_image(&other)?;
    store.add_image(&rebased)?;
    assert_eq!(
        store.images(None, None, 10)?,
        vec![rebased.clone(), other.clone(), first.clone()]
    );
    assert_eq!(
        store.images(Some("app"), None, 10)?,
        vec![rebased.clone(), first.clone()]
    );
    assert_eq!(
        store.images(None, Some(&first.digest), 10)?,
        vec![first.clone()]
    );
    assert_eq!(store.images(Some("web"), Some(&first.digest), 10)?, vec![]);
    assert_eq!(store.images(None, None, 1)?, vec![rebased]);
    // An image of an unknown run is refused.
    let orphan = image('4', "app", Some(RunId(run.id.0 + 1000)), None);
    assert!(matches!(
        store.add_image(&orphan),
        Err(StoreError::NotFound { .. })
    ));
    Ok(())
}

// ---- identities, bindings, deployments, change records (schema v7) ----------------------

fn identity(
    name: &str,
    byte: char,
    kind: cairn_model::IdentityKind,
) -> cairn_model::IdentityRecord {
    cairn_model::IdentityRecord {
        name: name.to_owned(),
        kind,
        token_sha256: byte.to_string().repeat(64),
        created_at_ms: 10,
        revoked_at_ms: None,
        expires_at_ms: None,
    }
}

fn binding(
    identity: &str,
    role: &str,
    workload: Option<&str>,
    environment: Option<&str>,
) -> cairn_model::RoleBinding {
    cairn_model::RoleBinding {
        identity: identity.to_owned(),
        role: role.to_owned(),
        workload: workload.map(str::to_owned),
        environment: environment.map(str::to_owned),
    }
}

pub fn identities_are_unique_and_found_by_token_hash(store: &dyn Store) -> Result<(), StoreError> {
    use cairn_model::IdentityKind::{ServiceAccount, User};
    assert_eq!(store.identity_count()?, 0);
    assert!(store.identities()?.is_empty());
    let alice = identity("alice", 'a', User);
    let ci = identity("ci-bot", 'c', ServiceAccount);
    store.add_identity(&alice)?;
    store.add_identity(&ci)?;
    assert_eq!(store.identity_count()?, 2);
    assert_eq!(store.identity("alice")?, Some(alice.clone()));
    assert_eq!(store.identity("bob")?, None);
    assert_eq!(store.identity_by_token(&"c".repeat(64))?, Some(ci.clone()));
    assert_eq!(store.identity_by_token(&"d".repeat(64))?, None);
    assert_eq!(
        store.identities()?,
        vec![alice.clone(), ci.clone()],
        "by name"
    );
    // A taken name, or a taken token hash, is refused and changes nothing.
    let again = identity("alice", 'e', ServiceAccount);
    match store.add_identity(&again) {
        Err(StoreError::Exists { what, id }) => {
            assert_eq!((what, id.as_str()), ("identity", "alice"));
        }
        other => panic!("a duplicate name must be refused: {other:?}"),
    }
    assert!(matches!(
        store.add_identity(&identity("mallory", 'a', User)),
        Err(StoreError::Exists { .. })
    ));
    assert_eq!(store.identity("alice")?, Some(alice));
    assert_eq!(store.identity("mallory")?, None);
    // Malformed records are refused.
    assert!(matches!(
        store.add_identity(&identity("", 'f', User)),
        Err(StoreError::Invalid { .. })
    ));
    let mut not_hex = identity("bob", 'f', User);
    not_hex.token_sha256 = "F".repeat(64);
    assert!(matches!(
        store.add_identity(&not_hex),
        Err(StoreError::Invalid { .. })
    ));
    not_hex.token_sha256 = "f".repeat(63);
    assert!(matches!(
        store.add_identity(&not_hex),
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store.add_identity(&identity(&"n".repeat(5000), 'f', User)),
        Err(StoreError::TooLarge { .. })
    ));
    assert_eq!(store.identity_count()?, 2);
    Ok(())
}

pub fn revoked_identities_are_kept_but_not_found_by_token(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let alice = identity("alice", 'a', cairn_model::IdentityKind::User);
    store.add_identity(&alice)?;
    assert!(!store.revoke_identity("nobody", 50)?);
    assert!(store.revoke_identity("alice", 50)?);
    assert!(!store.revoke_identity("alice", 60)?, "already revoked");
    assert_eq!(store.identity_by_token(&"a".repeat(64))?, None);
    let kept = store
        .identity("alice")?
        .expect("a revoked identity is kept");
    assert_eq!(kept.revoked_at_ms, Some(50), "the first revocation's time");
    assert_eq!(store.identities()?, vec![kept]);
    assert_eq!(store.identity_count()?, 1, "revoked identities count");
    // Its name stays taken.
    assert!(matches!(
        store.add_identity(&identity("alice", 'b', cairn_model::IdentityKind::User)),
        Err(StoreError::Exists { .. })
    ));
    Ok(())
}

pub fn the_first_identity_is_added_only_once(store: &dyn Store) -> Result<(), StoreError> {
    use cairn_model::IdentityKind::User;
    let admin = identity("admin", 'a', User);
    let admin_binding = binding("admin", "platform-admin", None, None);
    // A binding for another identity is refused, and nothing is written.
    assert!(matches!(
        store.add_first_identity(&admin, &binding("other", "platform-admin", None, None)),
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(store.identity_count()?, 0);
    assert!(store.add_first_identity(&admin, &admin_binding)?);
    assert_eq!(store.identity("admin")?, Some(admin));
    assert_eq!(store.bindings()?, vec![admin_binding.clone()]);
    // Once any identity exists (even revoked), there is no second bootstrap.
    let second = identity("eve", 'e', User);
    assert!(!store.add_first_identity(&second, &binding("eve", "platform-admin", None, None))?);
    assert_eq!(store.identity("eve")?, None);
    assert!(store.revoke_identity("admin", 20)?);
    assert!(!store.add_first_identity(&second, &binding("eve", "platform-admin", None, None))?);
    assert_eq!(store.identity("eve")?, None);
    assert_eq!(store.bindings()?, vec![admin_binding]);
    Ok(())
}

pub fn bindings_are_a_set_of_known_identities(store: &dyn Store) -> Result<(), StoreError> {
    use cairn_model::IdentityKind::User;
    store.add_identity(&identity("bob", 'b', User))?;
    store.add_identity(&identity("alice", 'a', User))?;
    let org = binding("bob", "viewer", None, None);
    let workload = binding("bob", "developer", Some("app"), None);
    let env = binding("bob", "release-manager", Some("app"), Some("production"));
    let alice = binding("alice", "maintainer", Some("app"), None);
    for b in [&env, &workload, &org, &alice] {
        store.add_binding(b)?;
    }
    // Duplicates are a no-op, also for organisation-wide bindings (NULL scopes).
    store.add_binding(&org)?;
    store.add_binding(&env)?;
    assert_eq!(
        store.bindings()?,
        vec![alice.clone(), workload.clone(), env.clone(), org.clone()],
        "by identity, role, workload, environment"
    );
    // An unknown identity, an environment without a workload, an empty name: refused.
    assert!(matches!(
        store.add_binding(&binding("carol", "viewer", None, None)),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.add_binding(&binding("bob", "viewer", None, Some("production"))),
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store.add_binding(&binding("bob", "", None, None)),
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store.add_binding(&binding("bob", "viewer", Some(""), None)),
        Err(StoreError::Invalid { .. })
    ));
    // Removal matches the scope exactly.
    assert!(!store.remove_binding(&binding("bob", "viewer", Some("app"), None))?);
    assert!(store.remove_binding(&org)?);
    assert!(!store.remove_binding(&org)?);
    assert!(store.remove_binding(&env)?);
    assert_eq!(store.bindings()?, vec![alice, workload.clone()]);
    // A revoked identity gets no new binding; its old ones are kept (the caller
    // ignores them, as the identity no longer authenticates).
    assert!(store.revoke_identity("bob", 30)?);
    assert!(matches!(
        store.add_binding(&org),
        Err(StoreError::Invalid { .. })
    ));
    assert!(store.bindings()?.contains(&workload));
    Ok(())
}

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

// ---- the server: forge repositories, the workers' queue, webhooks, sessions (schema v8) --

fn api_run(workload: &str, created_at_ms: i64, actor: &str) -> NewRun {
    NewRun {
        trigger: Trigger::Api {
            actor: actor.to_owned(),
        },
        ..new_run(workload, created_at_ms, &["build"])
    }
}

fn webhook_run(workload: &str, created_at_ms: i64, delivery: &str) -> NewRun {
    NewRun {
        trigger: Trigger::Webhook {
            forge: "github".to_owned(),
            delivery: delivery.to_owned(),
        },
        ..new_run(workload, created_at_ms, &["source", "build"])
    }
}

fn delivery(id: &str, at: i64, outcome: &str) -> NewDelivery {
    NewDelivery {
        forge: "github".to_owned(),
        delivery: id.to_owned(),
        event: "push".to_owned(),
        received_at_ms: at,
        outcome: outcome.to_owned(),
    }
}

fn get_workload(store: &dyn Store, name: &str) -> Result<WorkloadRecord, StoreError> {
    store.workload(name)?.ok_or(StoreError::NotFound {
        what: "workload (conformance)",
        id: name.to_owned(),
    })
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

fn session(byte: char, identity: &str, expires_at_ms: i64) -> SessionRecord {
    SessionRecord {
        token_sha256: byte.to_string().repeat(64),
        identity: identity.to_owned(),
        csrf: format!("csrf-{byte}"),
        created_at_ms: 10,
        expires_at_ms,
    }
}

pub fn sessions_are_kept_until_removed_or_expired(store: &dyn Store) -> Result<(), StoreError> {
    use cairn_model::IdentityKind::User;
    store.add_identity(&identity("alice", 'a', User))?;
    let s1 = session('1', "alice", 100);
    let s2 = session('2', "alice", 200);
    let s3 = session('3', "alice", 300);
    for s in [&s1, &s2, &s3] {
        store.add_session(s)?;
    }
    assert_eq!(store.session(&s1.token_sha256)?, Some(s1.clone()));
    assert_eq!(store.session(&"9".repeat(64))?, None);
    // Refused: a kept token, an unknown identity, a malformed hash.
    assert!(matches!(
        store.add_session(&s1),
        Err(StoreError::Exists { .. })
    ));
    assert_not_found(store.add_session(&session('4', "bob", 100)), "identity");
    let mut upper = session('4', "alice", 100);
    upper.token_sha256 = "A".repeat(64);
    assert!(matches!(
        store.add_session(&upper),
        Err(StoreError::Invalid { .. })
    ));
    // Removal.
    assert!(store.remove_session(&s2.token_sha256)?);
    assert!(!store.remove_session(&s2.token_sha256)?);
    assert_eq!(store.session(&s2.token_sha256)?, None);
    // An expired session is returned (the caller checks) until pruned.
    assert_eq!(store.session(&s1.token_sha256)?, Some(s1.clone()));
    assert_eq!(store.prune_sessions(99)?, 0);
    assert_eq!(store.prune_sessions(100)?, 1, "expired at 100");
    assert_eq!(store.session(&s1.token_sha256)?, None);
    assert_eq!(store.session(&s3.token_sha256)?, Some(s3.clone()));
    assert_eq!(store.prune_sessions(150)?, 0);
    assert_eq!(store.prune_sessions(1_000)?, 1);
    assert_eq!(store.session(&s3.token_sha256)?, None);
    Ok(())
}

pub fn identity_expiry_round_trips(store: &dyn Store) -> Result<(), StoreError> {
    use cairn_model::IdentityKind::{ServiceAccount, User};
    // The bootstrap keeps it, and so does `add_identity`.
    let admin = cairn_model::IdentityRecord {
        expires_at_ms: Some(5_000),
        ..identity("admin", 'd', User)
    };
    assert!(store.add_first_identity(&admin, &binding("admin", "platform-admin", None, None))?);
    let ci = cairn_model::IdentityRecord {
        expires_at_ms: Some(86_400_000),
        ..identity("ci-bot", 'c', ServiceAccount)
    };
    let alice = identity("alice", 'a', User);
    store.add_identity(&ci)?;
    store.add_identity(&alice)?;
    assert_eq!(store.identity("admin")?, Some(admin.clone()));
    assert_eq!(store.identity("ci-bot")?, Some(ci.clone()));
    // An expired identity is still found by its token: the caller checks.
    assert_eq!(
        store.identity_by_token(&"d".repeat(64))?,
        Some(admin.clone())
    );
    assert_eq!(store.identity("alice")?.and_then(|i| i.expires_at_ms), None);
    assert_eq!(store.identities()?, vec![admin, alice, ci]);
    Ok(())
}

pub fn forge_accounts_map_logins_to_identities(store: &dyn Store) -> Result<(), StoreError> {
    use cairn_model::IdentityKind::User;
    store.add_identity(&identity("alice", 'a', User))?;
    store.add_identity(&identity("bob", 'b', User))?;
    assert_eq!(store.forge_account("github", "octocat")?, None);
    store.link_forge_account("github", "octocat", "alice", 10)?;
    store.link_forge_account("gitlab", "octocat", "bob", 11)?;
    assert_eq!(
        store.forge_account("github", "octocat")?.as_deref(),
        Some("alice")
    );
    assert_eq!(
        store.forge_account("gitlab", "octocat")?.as_deref(),
        Some("bob")
    );
    assert_eq!(store.forge_account("gitea", "octocat")?, None);
    assert_eq!(store.forge_account("github", "Octocat")?, None, "exact");
    // Linking again replaces the mapping.
    store.link_forge_account("github", "octocat", "bob", 12)?;
    assert_eq!(
        store.forge_account("github", "octocat")?.as_deref(),
        Some("bob")
    );
    // An unknown identity is refused and the mapping stays.
    assert_not_found(
        store.link_forge_account("github", "octocat", "carol", 13),
        "identity",
    );
    assert_not_found(
        store.link_forge_account("github", "hubot", "carol", 13),
        "identity",
    );
    assert_eq!(
        store.forge_account("github", "octocat")?.as_deref(),
        Some("bob")
    );
    assert_eq!(store.forge_account("github", "hubot")?, None);
    assert!(matches!(
        store.link_forge_account("github", "", "bob", 14),
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store.link_forge_account("github", &"l".repeat(5000), "bob", 14),
        Err(StoreError::TooLarge { .. })
    ));
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
