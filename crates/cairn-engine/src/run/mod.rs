//! Running a chain for one exact commit: create the run, materialise the commit,
//! run each stage (the source stage here, every other one in the sandbox), stream
//! logs into the store, and stop at the first failing stage with its reason.
//!
//! One file per seam: [`queue`] (runs queued for workers and claimed by them),
//! [`plan`] (what a run needs resolved before it exists: key, catalog base, build
//! image), [`stages`] (the stage loop and one sandboxed stage), [`source`] (the
//! source stage: the commit's tree and the change it is), [`rc_accept`] (the
//! acceptance stage against the running release candidate), [`certify`] (signed
//! evidence of what the engine observed), [`tree_hash`] (digests of workspace
//! trees), [`log_sink`] (a stage's log, batched into the store).

mod certify;
mod log_sink;
mod plan;
mod queue;
pub use queue::LostRun;
mod rc_accept;
mod source;
mod stages;
mod tree_hash;

use std::path::PathBuf;
use std::sync::Arc;

use cairn_evidence::SigningKey;
use cairn_model::{LogLine, NewRun, NewStage, RunRecord, StageRecord, Trigger};
use cairn_store::Store;

use crate::host::{now_ms, owner_tag};
use crate::images::release_candidate::BuiltImage;
use crate::workload_source::{LoadedWorkload, load_workload};
use crate::{DataDir, EngineError};

pub use log_sink::{MAX_LINE_BYTES, MAX_STAGE_LOG_BYTES};
pub(crate) use queue::forge_name_ok;
use stages::stage_command;

/// What to run: the app in (or above) `dir`, at `rev`.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub dir: PathBuf,
    pub rev: String,
    /// Keep the run's workspace after the run (for debugging a build).
    pub keep_workspace: bool,
}

/// Hooks for a front end to show a run as it happens. All default to nothing.
pub trait RunObserver {
    fn run_created(&mut self, _run: &RunRecord, _stages: &[StageRecord], _loaded: &LoadedWorkload) {
    }
    fn stage_started(&mut self, _stage: &StageRecord) {}
    fn log_line(&mut self, _stage: &StageRecord, _line: &LogLine) {}
    fn stage_finished(&mut self, _stage: &StageRecord) {}
}

/// An observer that shows nothing.
impl RunObserver for () {}

/// Runs chains and records them.
#[derive(Debug, Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    data: DataDir,
    platform_dir: Option<PathBuf>,
    /// The authenticated identity running `cairn run` here (from
    /// `CAIRN_TOKEN`), signed into the run's evidence as the identity that ran it.
    actor: Option<String>,
    /// cairn's signing key as this engine (and its clones: a server's
    /// workers) last read it, reused while its files are unchanged.
    key_cache: Arc<plan::KeyCache>,
}

/// What certifies a run: cairn's signing key, the data directory whose audit
/// log every bundle is recorded in, and the bundles signed and logged during
/// the current stage, which its boundary stores with the stage's end (one
/// transaction, [`cairn_store::RunStore::stage_boundary`]).
struct Signer {
    key: Arc<SigningKey>,
    data: DataDir,
    logged: std::cell::RefCell<Vec<cairn_model::NewEvidence>>,
    /// Bundles signed during the current stage, not yet in the audit log:
    /// recorded in one append at its end ([`Signer::log_signed`]).
    signed: std::cell::RefCell<Vec<crate::certify::Signed>>,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, data: DataDir, platform_dir: Option<PathBuf>) -> Self {
        Engine {
            store,
            data,
            platform_dir,
            actor: None,
            key_cache: Arc::default(),
        }
    }

    /// The authenticated identity that runs this process's runs (`cairn run`
    /// with `CAIRN_TOKEN`): signed into their evidence (`triggeredBy`), so it
    /// never counts as an approver of what it ran.
    pub fn with_actor(mut self, actor: Option<String>) -> Self {
        self.actor = actor;
        self
    }

    /// Who queued or ran `run`, as its evidence names it: the API's actor, or
    /// this process's actor for a run started here.
    fn triggered_by(&self, run: &RunRecord) -> Option<String> {
        match &run.trigger {
            Trigger::Api { actor } => Some(actor.clone()),
            Trigger::Cli => self.actor.clone(),
            Trigger::Push { pusher, .. } => Some(pusher.clone()),
            // A push by a login linked to no identity: nobody to exclude.
            Trigger::Webhook { .. } => None,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Loads the workload and runs its chain for the exact commit. Errors before
    /// the run exists (bad config, unknown commit) create no run. Once the run
    /// exists it always ends in a final state, even when cairn itself fails.
    pub fn run(
        &self,
        req: &RunRequest,
        observer: &mut dyn RunObserver,
    ) -> Result<RunRecord, EngineError> {
        let loaded = load_workload(&req.dir, &req.rev, self.platform_dir.as_deref())?;
        self.run_loaded(&loaded, Some(&req.rev), req.keep_workspace, observer)
    }

    /// Runs an already loaded workload.
    pub fn run_loaded(
        &self,
        loaded: &LoadedWorkload,
        git_ref: Option<&str>,
        keep_workspace: bool,
        observer: &mut dyn RunObserver,
    ) -> Result<RunRecord, EngineError> {
        let (signer, plan) = self.prepare(loaded)?;
        let (run, stages) = self.create_started(loaded, git_ref)?;
        observer.run_created(&run, &stages, loaded);
        self.execute(
            loaded,
            &run,
            &stages,
            &signer,
            &plan,
            keep_workspace,
            observer,
        )
    }

    /// Runs the chain of `loaded` — the commit image `digest` was built from —
    /// with that image as the run's image: every stage runs as for any run of
    /// the commit, except that the build stage does not assemble an image (the
    /// one under test is `digest`, a rebase of an image of this commit, with its
    /// own provenance), so the unit tests are certified about `digest` and the
    /// acceptance tests (the HTTP checks and the workload's command) run against
    /// it in the sandbox. The signed test results are this digest's own.
    pub fn retest(
        &self,
        loaded: &LoadedWorkload,
        digest: &str,
        observer: &mut dyn RunObserver,
    ) -> Result<RunRecord, EngineError> {
        let store = &*self.store;
        let refuse = |why: String| EngineError::ImageNotFound {
            reference: digest.to_owned(),
            why,
        };
        let record = store
            .images(None, Some(digest), 1)?
            .into_iter()
            .next()
            .ok_or_else(|| refuse("cairn has no record of it".to_owned()))?;
        if record.workload != loaded.workload.name || record.commit != loaded.commit {
            return Err(refuse(format!(
                "it is an image of {} at {}, not of {} at {}",
                record.workload, record.commit, loaded.workload.name, loaded.commit
            )));
        }
        // The commit is the one cairn's verified provenance about the digest
        // signs, never the store row's alone.
        let builder = crate::audit::gate_builder_id(&self.data, loaded.org.builder_id.as_deref())?;
        crate::images::rebase::check_signed_origin(
            &self.data, store, &builder, digest, &record, digest,
        )?;
        if record.rebased_from.is_none() {
            return Err(refuse(
                "a run built it and tested it already; only a rebased image is retested".to_owned(),
            ));
        }
        let (signer, mut plan) = self.prepare(loaded)?;
        let Some(image_plan) = plan.image.as_mut() else {
            return Err(refuse(format!(
                "workload {} declares no image",
                loaded.workload.name
            )));
        };
        let base = store
            .base_history(&record.base_name)?
            .into_iter()
            .find(|b| b.digest == record.base_digest)
            .ok_or_else(|| EngineError::BaseNotInCatalog {
                name: format!("{}@{}", record.base_name, record.base_digest),
            })?;
        image_plan.retest = Some(BuiltImage {
            image: image_plan.images.image(digest)?,
            digest: digest.to_owned(),
            base,
        });
        let (run, stages) = self.create_started(loaded, Some("retest"))?;
        observer.run_created(&run, &stages, loaded);
        self.execute(loaded, &run, &stages, &signer, &plan, false, observer)
    }

    /// Records the workload and creates its run (queued, every stage pending).
    fn create(
        &self,
        loaded: &LoadedWorkload,
        git_ref: Option<&str>,
        trigger: Trigger,
    ) -> Result<(RunRecord, Vec<StageRecord>), EngineError> {
        let store = &*self.store;
        store.upsert_workload(&loaded.workload.name, &app_dir(loaded), now_ms())?;
        let created = store.create_run(&new_run(loaded, git_ref, trigger))?;
        self.announce(
            &loaded.org,
            created.0.id,
            crate::forge_status::Phase::Queued,
        );
        Ok(created)
    }

    /// Records the workload and creates its run started here, its first stage
    /// started: one store transaction
    /// ([`cairn_store::RunStore::create_started_run`]).
    fn create_started(
        &self,
        loaded: &LoadedWorkload,
        git_ref: Option<&str>,
    ) -> Result<(RunRecord, Vec<StageRecord>), EngineError> {
        let created = self.store.create_started_run(
            &app_dir(loaded),
            &new_run(loaded, git_ref, Trigger::Cli),
            &owner_tag(),
            now_ms(),
        )?;
        self.announce(
            &loaded.org,
            created.0.id,
            crate::forge_status::Phase::Queued,
        );
        Ok(created)
    }

    /// Tells the outside where run `id` is: a commit status on its forge and,
    /// when it failed, the notification sinks. Queued, never waited for; a
    /// failure to report is recorded in `<data>/outbox.jsonl`, never the run's.
    pub(crate) fn announce(
        &self,
        org: &cairn_model::config::OrgConfig,
        id: cairn_model::RunId,
        phase: crate::forge_status::Phase,
    ) {
        use crate::forge_status::Phase;
        let Ok(Some(run)) = self.store.run(id) else {
            return;
        };
        crate::forge_status::report_run(&self.data, org, &*self.store, &run, phase);
        if matches!(phase, Phase::Failed | Phase::Error) {
            crate::notify::run_failed(&self.data, org, &run);
        }
    }
}

/// The run to create for `loaded` at its commit (not yet written).
fn new_run(loaded: &LoadedWorkload, git_ref: Option<&str>, trigger: Trigger) -> NewRun {
    NewRun {
        workload: loaded.workload.name.clone(),
        commit: loaded.commit.clone(),
        git_ref: git_ref.map(str::to_owned),
        created_at_ms: now_ms(),
        stages: loaded
            .chain
            .stages
            .iter()
            .map(|s| NewStage {
                name: s.name.clone(),
                kind: s.kind,
                command: stage_command(loaded, s),
            })
            .collect(),
        trigger,
    }
}

/// Where the app lives: its directory in its git repository (what a worker
/// loads it from again, at the run's commit).
fn app_dir(loaded: &LoadedWorkload) -> String {
    loaded.repo.join(&loaded.prefix).display().to_string()
}
