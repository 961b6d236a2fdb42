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
            runs_filter_by_commit_and_trigger_and_page_by_keyset,
            start_run_records_owner,
            stages_keep_chain_order,
            stage_transitions_are_checked,
            finish_stage_records_outcome,
            a_stage_boundary_is_one_transaction_of_end_evidence_and_next_start,
            a_run_created_started_is_one_transaction_with_its_first_stage,
            a_claimed_run_starts_its_first_stage_in_the_claim,
            a_runs_end_is_one_transaction_with_its_last_stages_end,
            finish_run_skips_pending_stages,
            finish_run_interrupts_a_running_stage,
            finish_run_needs_a_final_status,
            interrupt_run_settles_stages,
            interrupt_run_is_idempotent,
            claimed_runs_are_leased_and_stale_leases_expire,
            a_lost_run_is_requeued_once_and_its_copy_lost_again_is_interrupted,
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
            matching_reads_the_match_form_and_the_record_stays_whole,
            compiled_forms_are_kept_per_package_and_filled_in,
            matchers_of_many_and_few_packages_are_the_rows_of_each,
            compiled_forms_are_back_filled_where_missing,
            withdrawn_advisories_are_kept_but_not_indexed,
            sboms_are_found_by_package,
            sbom_batches_are_all_or_nothing,
            components_are_found_by_package,
            findings_open_persist_and_fix,
            rematch_scope_covers_packages_advisories_and_one_sbom,
            rematch_refuses_findings_outside_its_scope,
            a_large_rematch_stores_every_match_once,
            the_same_sbom_stored_twice_is_one_sbom_with_one_set_of_findings,
            the_finding_limit_bounds_the_results,
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
            a_duty_has_one_holder_until_its_lease_runs_out,
        );
    };
    ($make:expr) => {
        $crate::conformance_tests!(@list @cases $make);
    };
}

mod access;
mod catalog;
mod deployments;
mod evidence;
mod inventory;
mod runs;
mod server;

pub use access::*;
pub use catalog::*;
pub use deployments::*;
pub use evidence::*;
pub use inventory::*;
pub use runs::*;
pub use server::*;

// ---- helpers the cases share -----------------------------------------------------------

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

const REPO: &str = "https://git.example.invalid/app.git";

pub(crate) fn new_run(workload: &str, created_at_ms: i64, stages: &[&str]) -> NewRun {
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

pub(crate) fn line(seq: u64, text: &[u8]) -> LogLine {
    LogLine {
        seq,
        stream: LogStream::Stdout,
        at_ms: 1_000 + i64::try_from(seq).unwrap_or(i64::MAX),
        text: text.to_vec(),
    }
}

fn get_run(store: &dyn Store, id: RunId) -> Result<RunRecord, StoreError> {
    store.run(id)?.ok_or(StoreError::NotFound {
        what: "run (conformance)",
        id: id.to_string(),
    })
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
        match_form: None,
        compiled: Vec::new(),
    }
}

fn keys(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(e, n)| ((*e).to_owned(), (*n).to_owned()))
        .collect()
}

pub(crate) fn sbom(subject: &str, components: &[(&str, &str, &str)]) -> NewSbom {
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

pub(crate) fn packages(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    keys(pairs)
}

pub(crate) fn found(
    advisory: &str,
    sbom: i64,
    ecosystem: &str,
    name: &str,
    version: &str,
) -> NewFinding {
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
