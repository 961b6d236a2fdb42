//! Runs queued for the server's workers: checked and queued ([`Engine::enqueue`],
//! [`Engine::plan_run`]), claimed and executed ([`Engine::execute_next`]), and a
//! workload registered for its forge's webhooks.

use std::path::Path;
use std::time::Duration;

use cairn_model::error_chain;
use cairn_model::{NewRun, RunId, RunRecord, RunStatus, Trigger, WorkloadRecord};

use super::{Engine, RunObserver, app_dir, new_run};
use crate::host::{now_ms, owner_tag};
use crate::workload_source::{LoadedWorkload, load_workload};
use crate::{EngineError, git};

impl Engine {
    /// Loads the workload in `dir` at `rev`, checks what a run checks before it
    /// exists (config, commit, catalog base) and queues a run for the server's
    /// workers ([`Engine::execute_next`]). With `expect`, the commit's
    /// `cairn.toml` must name that workload. Nothing is written when it fails.
    pub fn enqueue(
        &self,
        dir: &Path,
        rev: &str,
        expect: Option<&str>,
        trigger: Trigger,
    ) -> Result<RunRecord, EngineError> {
        let loaded = self.load_queueable(dir, rev, expect)?;
        let git_ref = (rev != loaded.commit).then_some(rev);
        Ok(self.create(&loaded, git_ref, trigger)?.0)
    }

    /// The run [`Engine::enqueue`] would create, checked the same way but not
    /// written: for a caller that writes it together with something else (a
    /// webhook delivery, in one transaction). The workload must be onboarded
    /// already (nothing upserts it).
    pub fn plan_run(
        &self,
        dir: &Path,
        rev: &str,
        expect: Option<&str>,
        trigger: Trigger,
    ) -> Result<NewRun, EngineError> {
        let loaded = self.load_queueable(dir, rev, expect)?;
        let git_ref = (rev != loaded.commit).then_some(rev);
        Ok(new_run(&loaded, git_ref, trigger))
    }

    /// Whether the repository of the app in `dir` has commit `commit` (a full id).
    pub fn has_commit(&self, dir: &Path, commit: &str) -> bool {
        git::top_level(dir).is_ok_and(|top| git::has_commit(&top, commit))
    }

    /// Makes sure the repository of the app in `dir` has `commit`: when it does
    /// not, fetches `branch` from its `origin` (a clone of the forge's
    /// repository), waiting at most `limit`. `Ok(true)` when it fetched.
    pub fn fetch_if_missing(
        &self,
        dir: &Path,
        commit: &str,
        branch: &str,
        limit: Duration,
    ) -> Result<bool, EngineError> {
        let top = git::top_level(dir)?;
        if git::has_commit(&top, commit) {
            return Ok(false);
        }
        git::fetch_branch(&top, branch, limit)?;
        Ok(true)
    }

    /// Loads the workload in `dir` at `rev` and checks what a queued run needs:
    /// the expected name and the image plan.
    fn load_queueable(
        &self,
        dir: &Path,
        rev: &str,
        expect: Option<&str>,
    ) -> Result<LoadedWorkload, EngineError> {
        let loaded = load_workload(dir, rev, self.platform_dir.as_deref())?;
        if let Some(expected) = expect
            && loaded.workload.name != expected
        {
            return Err(EngineError::WrongWorkload {
                expected: expected.to_owned(),
                found: loaded.workload.name.clone(),
                commit: loaded.commit.clone(),
            });
        }
        self.image_plan(&loaded)?;
        self.build_image(&loaded)?;
        Ok(loaded)
    }

    /// Registers the app in `dir` (its `cairn.toml` at `HEAD`) as an onboarded
    /// workload, optionally under its forge's repository name (for webhooks).
    pub fn register(
        &self,
        dir: &Path,
        forge_repository: Option<&str>,
    ) -> Result<WorkloadRecord, EngineError> {
        if let Some(f) = forge_repository
            && !forge_name_ok(f)
        {
            return Err(EngineError::BadName {
                what: "forge repository",
                value: f.chars().take(200).collect(),
                why: "write owner/name (GitLab groups: group/sub/name)",
            });
        }
        let loaded = load_workload(dir, "HEAD", self.platform_dir.as_deref())?;
        let name = &loaded.workload.name;
        self.store
            .upsert_workload(name, &app_dir(&loaded), now_ms())?;
        self.store
            .set_forge_repository(name, forge_repository, now_ms())?;
        self.store.workload(name)?.ok_or_else(|| {
            EngineError::Store(cairn_store::StoreError::NotFound {
                what: "workload",
                id: name.clone(),
            })
        })
    }

    /// Claims the oldest run queued for workers, if any, and executes it to its
    /// end. A run whose workload can no longer be loaded ends failed, saying why.
    pub fn execute_next(
        &self,
        observer: &mut dyn RunObserver,
    ) -> Result<Option<RunRecord>, EngineError> {
        let store = &*self.store;
        // Claimed with its first stage started: one transaction.
        let Some((run, stages)) = store.claim_started_run(&owner_tag(), now_ms())? else {
            return Ok(None);
        };
        let prepared = store
            .workload(&run.workload)?
            .ok_or_else(|| {
                EngineError::Store(cairn_store::StoreError::NotFound {
                    what: "workload",
                    id: run.workload.clone(),
                })
            })
            .and_then(|w| {
                load_workload(
                    Path::new(&w.repo),
                    &run.commit,
                    self.platform_dir.as_deref(),
                )
            })
            .and_then(|loaded| {
                let (signer, plan) = self.prepare(&loaded)?;
                Ok((loaded, signer, plan))
            });
        match prepared {
            Ok((loaded, signer, plan)) => {
                observer.run_created(&run, &stages, &loaded);
                self.execute(&loaded, &run, &stages, &signer, &plan, false, observer)
                    .map(Some)
            }
            Err(err) => {
                let reason = format!(
                    "cannot load the workload at its commit: {}",
                    error_chain(&err)
                );
                // The first stage, started with the claim, failed for the
                // same reason; the run with it, in one transaction.
                let first = stages.first().map(|s| cairn_store::EndedStage {
                    stage: s.id,
                    log: &[],
                    status: cairn_model::StageStatus::Failed,
                    exit_code: None,
                    reason: Some(&reason),
                    finished_ms: now_ms(),
                    evidence: &[],
                });
                store.end_run(
                    first.as_ref(),
                    &cairn_store::RunEnd {
                        run: run.id,
                        status: RunStatus::Failed,
                        reason: Some(&reason),
                        finished_ms: now_ms(),
                    },
                )?;
                if let Ok(org) = crate::load_org(self.platform_dir.as_deref()) {
                    self.announce(&org, run.id, crate::forge_status::Phase::Error);
                }
                Ok(store.run(run.id)?)
            }
        }
    }

    /// Renews the leases of the runs this process claimed from the queue and is
    /// running (see [`cairn_store::RunStore::heartbeat_runs`]); returns how many.
    pub fn heartbeat_own_runs(&self) -> Result<u64, EngineError> {
        Ok(self.store.heartbeat_runs(&owner_tag(), now_ms())?)
    }

    /// Ends every run claimed from the queue whose lease was not renewed for
    /// `stale` (its worker died, or lost the database): whoever notices first,
    /// a worker or a server. With org.toml `[runs] requeue_interrupted`, a run
    /// lost for the first time is requeued once (interrupted, with a copy queued
    /// for another worker, see [`cairn_store::RunStore::requeue_expired_leases`]);
    /// otherwise, and for a copy lost again, it is interrupted. An org.toml
    /// that cannot be read requeues nothing. Returns what became of each run.
    pub fn expire_stale_leases(
        &self,
        stale: std::time::Duration,
    ) -> Result<Vec<LostRun>, EngineError> {
        let stale_ms = i64::try_from(stale.as_millis()).unwrap_or(i64::MAX);
        let reason = format!(
            "its worker stopped renewing the run's lease for {} s (the process died or lost the database)",
            stale.as_secs()
        );
        let requeue =
            crate::load_org(self.platform_dir.as_deref()).is_ok_and(|org| org.requeue_interrupted);
        let mut lost = Vec::new();
        if requeue {
            for (run, copy) in self
                .store
                .requeue_expired_leases(stale_ms, &reason, now_ms())?
            {
                lost.push(LostRun {
                    run,
                    requeued_as: Some(copy),
                });
            }
        }
        for run in self.store.expire_leases(stale_ms, &reason, now_ms())? {
            lost.push(LostRun {
                run,
                requeued_as: None,
            });
        }
        Ok(lost)
    }

    /// Marks this process's running runs interrupted (a server stopping past its
    /// grace period); returns their ids.
    pub fn interrupt_own_runs(&self, reason: &str) -> Result<Vec<RunId>, EngineError> {
        let me = owner_tag();
        let running = self.store.runs(&cairn_store::RunFilter {
            workload: None,
            status: Some(RunStatus::Running),
            limit: usize::MAX >> 1,
            ..Default::default()
        })?;
        let mut ids = Vec::new();
        for run in running.iter().filter(|r| r.owner.as_deref() == Some(&me)) {
            if self.store.interrupt_run(run.id, reason, now_ms())? {
                ids.push(run.id);
            }
        }
        Ok(ids)
    }
}

/// A run whose worker was lost, as [`Engine::expire_stale_leases`] left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LostRun {
    /// The run, now interrupted.
    pub run: RunId,
    /// The copy queued for another worker, when it was requeued.
    pub requeued_as: Option<RunId>,
}

/// `owner/name` (or GitLab's `group/sub/name`): non-empty segments of letters,
/// digits, `-`, `_` and `.`, none of them `.` or `..`.
pub(crate) fn forge_name_ok(name: &str) -> bool {
    let segments: Vec<&str> = name.split('/').collect();
    name.len() <= 512
        && segments.len() >= 2
        && segments.iter().all(|s| {
            !s.is_empty()
                && *s != "."
                && *s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
}
