//! Running a chain for one exact commit: create the run, materialise the commit,
//! run each stage (the source stage here, every other one in the sandbox), stream
//! logs into the store, and stop at the first failing stage with its reason.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cairn_evidence::sbom::CycloneDxBom;
use cairn_evidence::{Digest, NamedDigest, Observed, Sha256Hasher, SigningKey, Statement, Subject};
use cairn_model::config::{ChainStage, WORKLOAD_FILE};
use cairn_model::error_chain;
use cairn_model::test_report::failed_tests;
use cairn_model::test_results::{LineReader, TestReport};
use cairn_model::time::human_duration;
use cairn_model::{
    LogLine, LogStream, NewRun, NewStage, RunId, RunRecord, RunStatus, StageKind, StageRecord,
    StageStatus, Trigger, WorkloadRecord,
};
use cairn_sandbox::{Exit, Limits, SandboxSpec, Stream};
use cairn_store::Store;

use crate::audit::{AuditLog, LOCK_WAIT};
use crate::certify::{Filed, sign_and_keep};
use crate::images::Images;
use crate::images::image_inventory::{self, ImageInventory};
use crate::images::release_candidate::{self, BuiltImage, RcTest};
use crate::inventory;
use crate::keys::KeyStore;
use crate::test_reports;

use crate::host::{now_ms, owner_tag};
use crate::workload_source::{LoadedWorkload, load_workload};
use crate::{DataDir, EngineError, git};

/// The most of one stage's output kept in the store; the rest is counted, not kept.
pub const MAX_STAGE_LOG_BYTES: u64 = 16 << 20;
/// Lines longer than this are split.
pub const MAX_LINE_BYTES: usize = 64 << 10;
/// Log lines are written to the store in batches of at most this many lines or
/// this much time, so a chatty step costs few transactions and a follower still
/// sees output promptly.
const BATCH_LINES: usize = 512;
const BATCH_AGE: Duration = Duration::from_millis(100);

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
}

/// What certifies a run: cairn's signing key, and the data directory whose
/// audit log every bundle is recorded in.
struct Signer {
    key: SigningKey,
    data: DataDir,
}

/// How a stage ended.
struct StageEnd {
    status: StageStatus,
    exit_code: Option<i32>,
    reason: Option<String>,
}

impl StageEnd {
    fn passed(exit_code: Option<i32>) -> Self {
        StageEnd {
            status: StageStatus::Passed,
            exit_code,
            reason: None,
        }
    }
    fn skipped(reason: &str) -> Self {
        StageEnd {
            status: StageStatus::Skipped,
            exit_code: None,
            reason: Some(reason.to_owned()),
        }
    }
    fn failed(exit_code: Option<i32>, reason: String) -> Self {
        StageEnd {
            status: StageStatus::Failed,
            exit_code,
            reason: Some(reason),
        }
    }
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, data: DataDir, platform_dir: Option<PathBuf>) -> Self {
        Engine {
            store,
            data,
            platform_dir,
            actor: None,
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
        let store = &*self.store;
        let (signer, plan) = self.prepare(loaded)?;
        let (run, stages) = self.create(loaded, git_ref, Trigger::Cli)?;
        observer.run_created(&run, &stages, loaded);
        store.start_run(run.id, &owner_tag(), now_ms())?;
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
        crate::images::rebase::check_signed_origin(&self.data, store, digest, &record, digest)?;
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
        let (run, stages) = self.create(loaded, Some("retest"), Trigger::Cli)?;
        observer.run_created(&run, &stages, loaded);
        store.start_run(run.id, &owner_tag(), now_ms())?;
        self.execute(loaded, &run, &stages, &signer, &plan, false, observer)
    }

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
        let Some(run) = store.claim_queued_run(&owner_tag(), now_ms())? else {
            return Ok(None);
        };
        let stages = store.stages(run.id)?;
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
                store.finish_run(run.id, RunStatus::Failed, Some(&reason), now_ms())?;
                Ok(store.run(run.id)?)
            }
        }
    }

    /// Marks this process's running runs interrupted (a server stopping past its
    /// grace period); returns their ids.
    pub fn interrupt_own_runs(&self, reason: &str) -> Result<Vec<RunId>, EngineError> {
        let me = owner_tag();
        let running = self.store.runs(&cairn_store::RunFilter {
            workload: None,
            status: Some(RunStatus::Running),
            limit: usize::MAX >> 1,
        })?;
        let mut ids = Vec::new();
        for run in running.iter().filter(|r| r.owner.as_deref() == Some(&me)) {
            if self.store.interrupt_run(run.id, reason, now_ms())? {
                ids.push(run.id);
            }
        }
        Ok(ids)
    }

    /// What certifies a run and the image plan, before the run exists: no key or
    /// no log, no certified run.
    fn prepare(&self, loaded: &LoadedWorkload) -> Result<(Signer, Plan), EngineError> {
        // The log is held only while recording (see `certify::sign_and_keep`), so runs
        // and commands sharing the data directory take turns appending.
        let key = {
            let audit = AuditLog::open_waiting(&self.data, LOCK_WAIT)?;
            KeyStore::new(&self.data).load_or_create(&audit)?.0
        };
        let signer = Signer {
            key,
            data: self.data.clone(),
        };
        let plan = Plan {
            image: self.image_plan(loaded)?,
            build_image: self.build_image(loaded)?,
        };
        Ok((signer, plan))
    }

    /// The workload's build image (`[build] image`): a catalog base the catalog
    /// admitted (its signed admission verifies against cairn's keys and log),
    /// unpacked; checked before the run exists, so a missing or unadmitted one
    /// is refused naming it, before any work. `None`: the host's `/usr`.
    fn build_image(&self, loaded: &LoadedWorkload) -> Result<Option<BuildImage>, EngineError> {
        let Some(wanted) = &loaded.workload.build_image else {
            return self.org_build_image(loaded);
        };
        let images = Images::open(&self.data)?;
        let (record, image) = match images.base(
            &*self.store,
            &wanted.name,
            wanted.digest.as_deref(),
        ) {
            Ok(base) => base,
            Err(EngineError::BaseNotInCatalog { name }) => {
                return Err(loaded
                        .config_error(
                            wanted.span.clone(),
                            format!("build image `{name}` is not in the organisation's catalog"),
                            "`cairn base list` shows the catalog; `cairn base create debian --name NAME --include TOOLS` makes a toolchain base",
                        )
                        .into());
            }
            Err(e) => return Err(e),
        };
        let (trust, _) = crate::verified::Trust::load(&self.data)?;
        if let Err(why) = crate::verified::catalog_admitted(&*self.store, &trust, &record.digest)? {
            return Err(loaded
                .config_error(
                    wanted.span.clone(),
                    format!(
                        "build image `{}` ({}) did not pass the catalog's gate: {why}",
                        record.name, record.digest
                    ),
                    "build only on a base the catalog admitted: `cairn base create` / `cairn base import` it again",
                )
                .into());
        }
        let rootfs = images.rootfs(&image)?;
        Ok(Some(BuildImage {
            name: record.name,
            digest: record.digest,
            rootfs,
            why: "named by [build] image".to_owned(),
        }))
    }

    /// The build image org.toml's `[build.images]` maps the workload's
    /// ecosystem to (detected from the app directory's names at the commit),
    /// validated as [`Engine::build_image`] does; `None` when it maps none.
    fn org_build_image(&self, loaded: &LoadedWorkload) -> Result<Option<BuildImage>, EngineError> {
        if loaded.org.build_images.is_empty() {
            return Ok(None);
        }
        let names = git::names_at(
            &loaded.repo,
            &loaded.commit,
            &loaded.prefix,
            crate::onboard::MAX_ROOT_ENTRIES,
        )?;
        let Some(recipe) = cairn_model::ecosystem::detect(names.iter().map(String::as_str)) else {
            return Ok(None);
        };
        let ecosystem = recipe.ecosystem.name();
        let Some(name) = loaded.org.build_images.get(ecosystem) else {
            return Ok(None);
        };
        let why_used =
            format!("org.toml [build.images] maps the detected ecosystem {ecosystem} to it");
        let refused = |why: String| EngineError::BuildImageRefused {
            name: name.clone(),
            why_used: why_used.clone(),
            why,
        };
        let images = Images::open(&self.data)?;
        let (record, image) = match images.base(&*self.store, name, None) {
            Ok(base) => base,
            Err(EngineError::BaseNotInCatalog { .. }) => {
                return Err(refused(
                    "it is not in the organisation's catalog (`cairn base list`)".to_owned(),
                ));
            }
            Err(e) => return Err(e),
        };
        let (trust, _) = crate::verified::Trust::load(&self.data)?;
        if let Err(why) = crate::verified::catalog_admitted(&*self.store, &trust, &record.digest)? {
            return Err(refused(format!(
                "{} did not pass the catalog's gate: {why}",
                record.digest
            )));
        }
        let rootfs = images.rootfs(&image)?;
        Ok(Some(BuildImage {
            name: record.name,
            digest: record.digest,
            rootfs,
            why: why_used,
        }))
    }

    /// A workload with an image builds only on a catalog base: checked before the
    /// run exists, so a missing base is refused before any work.
    fn image_plan(&self, loaded: &LoadedWorkload) -> Result<Option<ImagePlan>, EngineError> {
        let Some(config) = &loaded.workload.image else {
            return Ok(None);
        };
        let images = Images::open(&self.data)?;
        let base = match images.base(&*self.store, &config.base, config.base_digest.as_deref()) {
            Ok(base) => base,
            Err(EngineError::BaseNotInCatalog { name }) => {
                return Err(loaded
                    .config_error(
                        config.base_span.clone(),
                        format!("base `{name}` is not in the organisation's catalog"),
                        "`cairn base list` shows the catalog; `cairn base import` adds a validated base",
                    )
                    .into());
            }
            Err(e) => return Err(e),
        };
        Ok(Some(ImagePlan {
            images,
            base,
            retest: None,
        }))
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
        Ok(store.create_run(&new_run(loaded, git_ref, trigger))?)
    }

    /// Runs a started run's stages and ends it: it always ends in a final
    /// state, even when cairn itself fails.
    #[allow(clippy::too_many_arguments)]
    fn execute(
        &self,
        loaded: &LoadedWorkload,
        run: &RunRecord,
        stages: &[StageRecord],
        signer: &Signer,
        plan: &Plan,
        keep_workspace: bool,
        observer: &mut dyn RunObserver,
    ) -> Result<RunRecord, EngineError> {
        let store = &*self.store;
        let workspace = self.data.workspaces().join(run.id.to_string());
        let result = self.run_stages(loaded, run, stages, &workspace, signer, plan, observer);
        if !keep_workspace {
            // Best effort: a leftover workspace wastes disk but loses nothing.
            let _ = std::fs::remove_dir_all(&workspace);
        }
        match result {
            Ok(None) => store.finish_run(run.id, RunStatus::Succeeded, None, now_ms())?,
            Ok(Some(reason)) => {
                store.finish_run(run.id, RunStatus::Failed, Some(&reason), now_ms())?
            }
            Err(err) => {
                let reason = format!("cairn could not complete the run: {}", error_chain(&err));
                store.finish_run(run.id, RunStatus::Failed, Some(&reason), now_ms())?;
                return Err(err);
            }
        }
        store.run(run.id)?.ok_or(EngineError::RunNotFound(run.id))
    }

    /// Runs the stages in order; `Ok(Some(reason))` when one failed.
    #[allow(clippy::too_many_arguments)]
    fn run_stages(
        &self,
        loaded: &LoadedWorkload,
        run: &RunRecord,
        stages: &[StageRecord],
        workspace: &Path,
        signer: &Signer,
        plan: &Plan,
        observer: &mut dyn RunObserver,
    ) -> Result<Option<String>, EngineError> {
        let mut facts = RunFacts {
            image_plan: plan.image.as_ref(),
            build_image: plan.build_image.as_ref(),
            ..RunFacts::default()
        };
        // Unit tests that passed, to certify again about the image once it exists.
        #[allow(clippy::type_complexity)]
        let mut unit_tests: Vec<(
            usize,
            StageRecord,
            i64,
            i64,
            Vec<String>,
            Option<TestReport>,
        )> = Vec::new();
        for (index, (stage, spec)) in stages.iter().zip(&loaded.chain.stages).enumerate() {
            let started_ms = now_ms();
            self.store.start_stage(stage.id, started_ms)?;
            let mut current = stage.clone();
            current.status = StageStatus::Running;
            observer.stage_started(&current);
            let mut sink = LogSink::new(self.store.clone(), &current, observer);
            let is_test = matches!(spec.kind, StageKind::UnitTest | StageKind::AcceptanceTest);
            // A report from the repository or an earlier stage is never this stage's.
            let cleared = if is_test {
                test_reports::clear(workspace)
            } else {
                Ok(())
            };
            let end = match cleared
                .and_then(|()| self.run_stage(loaded, run, spec, workspace, &mut facts, &mut sink))
            {
                Ok(end) => end,
                Err(err) => StageEnd::failed(
                    None,
                    format!("cairn could not run the stage: {}", error_chain(&err)),
                ),
            };
            let junit = if is_test && end.status != StageStatus::Skipped {
                test_reports::read(workspace, &mut |note| sink.system(note))
            } else {
                None
            };
            let mut log = sink.finish_with(|sink, from_lines| {
                let tests = if is_test { junit.or(from_lines) } else { None };
                if let Some(t) = &tests {
                    sink.system(&format!(
                        "tests ({}): {} passed, {} failed, {} skipped",
                        t.format, t.passed_count, t.failed_count, t.skipped_count
                    ));
                }
                tests
            })?;
            let finished_ms = now_ms();
            self.store.finish_stage(
                stage.id,
                end.status,
                end.exit_code,
                end.reason.as_deref(),
                finished_ms,
            )?;
            current.status = end.status;
            current.exit_code = end.exit_code;
            current.reason = end.reason.clone();
            facts
                .logs
                .push(NamedDigest::new(format!("log/{}", stage.name), log.digest));
            let stage_facts = StageFacts {
                spec,
                record: &current,
                started_ms,
                finished_ms,
                failed_tests: std::mem::take(&mut log.failed_tests),
                tests: log.tests.take(),
            };
            self.certify(loaded, run, &stage_facts, &facts, signer, None)?;
            // What the fetch installed, about the source tree it was installed for.
            if let (Some(bom), Some(source)) = (facts.fetched.take(), &facts.source) {
                let sbom = Statement::new(vec![source.clone()], CycloneDxBom(bom))?;
                self.keep(run, &current, source, &sbom, signer)?;
            }
            if spec.kind == StageKind::UnitTest && current.status == StageStatus::Passed {
                unit_tests.push((
                    index,
                    current.clone(),
                    started_ms,
                    finished_ms,
                    stage_facts.failed_tests.clone(),
                    stage_facts.tests.clone(),
                ));
            }
            // The image was built from the tested source: the engine saw both, so
            // it certifies the unit tests about the image's digest too (the digest
            // the gates ask about).
            if spec.kind == StageKind::Build
                && current.status == StageStatus::Passed
                && let Some(built) = &facts.image
            {
                let about = image_subject(loaded, built);
                for (i, record, started, finished, failed, tests) in &unit_tests {
                    let unit = StageFacts {
                        spec: &loaded.chain.stages[*i],
                        record,
                        started_ms: *started,
                        finished_ms: *finished,
                        failed_tests: failed.clone(),
                        tests: tests.clone(),
                    };
                    self.certify(loaded, run, &unit, &facts, signer, Some(about.clone()))?;
                }
                if let Some(inventory) = facts.inventory.take() {
                    self.certify_inventory(run, &current, &about, inventory, signer)?;
                }
            }
            observer.stage_finished(&current);
            if end.status == StageStatus::Failed {
                let why = end.reason.unwrap_or_else(|| "failed".to_owned());
                return Ok(Some(format!("stage `{}` failed: {why}", stage.name)));
            }
        }
        Ok(None)
    }

    /// Signs what the engine observed about a finished stage, and keeps it: a test
    /// result for every test stage that ran (passed or failed), provenance for a
    /// build that produced its declared output. Never from what a step claims.
    /// Each bundle is recorded in the audit log first, and carries that entry
    /// (index, inclusion proof, signed checkpoint) as its `tlogEntries[0]`.
    fn certify(
        &self,
        loaded: &LoadedWorkload,
        run: &RunRecord,
        stage: &StageFacts<'_>,
        facts: &RunFacts<'_>,
        signer: &Signer,
        about: Option<Subject>,
    ) -> Result<(), EngineError> {
        if !matches!(
            stage.record.status,
            StageStatus::Passed | StageStatus::Failed
        ) {
            return Ok(());
        }
        let image_subject = facts
            .image
            .as_ref()
            .map(|built| image_subject(loaded, built));
        let subject = match stage.spec.kind {
            _ if about.is_some() => about,
            StageKind::UnitTest => facts.source.clone(),
            StageKind::AcceptanceTest if facts.tested_image => image_subject.clone(),
            StageKind::AcceptanceTest => facts.output.clone().or_else(|| facts.source.clone()),
            // A retest's build assembled no image: its provenance is about the
            // output only (the image's own is the rebase's).
            StageKind::Build if stage.record.status == StageStatus::Passed && facts.retesting() => {
                facts.output.clone()
            }
            StageKind::Build if stage.record.status == StageStatus::Passed => {
                image_subject.clone().or_else(|| facts.output.clone())
            }
            _ => None,
        };
        let Some(subject) = subject else {
            return Ok(());
        };
        let mut artifacts = vec![subject.clone()];
        if stage.spec.kind == StageKind::Build
            && !facts.retesting()
            && image_subject.is_some()
            && let Some(output) = &facts.output
        {
            artifacts.push(output.clone());
        }
        let base_images = facts
            .image
            .as_ref()
            .and_then(|built| {
                Some(NamedDigest::new(
                    format!("catalog base {}", built.base.name),
                    Digest::parse(&built.base.digest).ok()?,
                ))
            })
            .into_iter()
            .chain(facts.build_image.and_then(|b| {
                Some(NamedDigest::new(
                    format!("build image {}", b.name),
                    Digest::parse(&b.digest).ok()?,
                ))
            }))
            .collect();
        let observed = Observed {
            workload: loaded.workload.name.clone(),
            repository: format!("git+file://{}", loaded.repo.display()),
            commit: loaded.commit.clone(),
            run_id: run.id.to_string(),
            chain: loaded.chain.name.clone(),
            stage: stage.spec.name.clone(),
            stage_kind: stage.spec.kind.as_str().to_owned(),
            command: stage_command(loaded, stage.spec),
            started_ms: stage.started_ms,
            finished_ms: stage.finished_ms,
            exit_code: stage.record.exit_code,
            logs: facts.logs.clone(),
            base_images,
            failed_tests: stage.failed_tests.clone(),
            tests: stage.tests.clone(),
            artifacts,
            triggered_by: self.triggered_by(run),
            change: facts.change.clone(),
        };
        if stage.spec.kind == StageKind::Build {
            let statement = Statement::provenance(&observed, BUILDER_ID)?;
            self.keep(run, stage.record, &subject, &statement, signer)
        } else {
            let statement = Statement::test_result(&observed, None)?;
            self.keep(run, stage.record, &subject, &statement, signer)
        }
    }

    /// Inventories the release candidate: the components of its unpacked root
    /// filesystem and of the workspace's lockfiles (the source it was built
    /// from; the sandbox's `.home` caches are not the app's), as a CycloneDX 1.6
    /// document recorded in the SBOM index (so `cairn where` finds the image),
    /// then matched against the stored advisories.
    fn inventory_rc(
        &self,
        loaded: &LoadedWorkload,
        plan: &ImagePlan,
        built: &BuiltImage,
        workspace: &Path,
        source_date_epoch: i64,
        sink: &mut LogSink<'_>,
    ) -> Result<ImageInventory, EngineError> {
        let rootfs = plan.images.rootfs(&built.image)?;
        let source = inventory::collect_tree(inventory::Tree::walk_except(workspace, &[HOME_DIR])?);
        image_inventory::inventory(
            &*self.store,
            image_inventory::Subject {
                what: "the release candidate",
                workload: &loaded.workload.name,
                digest: &built.digest,
                rootfs: &rootfs,
                source: Some(source),
                time_ms: source_date_epoch.saturating_mul(1000),
            },
            &mut |note| sink.system(note),
        )
    }

    /// Inventories what the fetch stage installed in the workspace: the
    /// resolved lockfiles and the installed packages' own metadata (the
    /// sandbox's `.home` caches left out), recorded in the SBOM index; signed
    /// about the source tree once the stage is over.
    fn inventory_fetched(
        &self,
        loaded: &LoadedWorkload,
        source: &Subject,
        workspace: &Path,
        source_date_epoch: i64,
        sink: &mut LogSink<'_>,
    ) -> Result<serde_json::Value, EngineError> {
        let digest = source.sha256_digest().ok_or_else(|| {
            EngineError::io("inventory", workspace)(std::io::Error::other(
                "the source tree has no sha256 digest",
            ))
        })?;
        let collected =
            inventory::collect_installed(inventory::Tree::walk_except(workspace, &[HOME_DIR])?);
        image_inventory::fetched(
            &*self.store,
            &loaded.workload.name,
            &source.name,
            &digest,
            &collected,
            source_date_epoch.saturating_mul(1000),
            &mut |note| sink.system(note),
        )
    }

    /// Signs the RC's SBOM and scan about its digest: each recorded in the audit
    /// log first, then kept with the run and the build stage.
    fn certify_inventory(
        &self,
        run: &RunRecord,
        stage: &StageRecord,
        about: &Subject,
        inventory: ImageInventory,
        signer: &Signer,
    ) -> Result<(), EngineError> {
        let sbom = Statement::new(vec![about.clone()], CycloneDxBom(inventory.bom))?;
        self.keep(run, stage, about, &sbom, signer)?;
        let scan = Statement::new(vec![about.clone()], inventory.scan)?;
        self.keep(run, stage, about, &scan, signer)
    }

    /// Signs one statement, records it in the audit log, then stores it
    /// (see [`sign_and_keep`]).
    fn keep<P: cairn_evidence::Predicate>(
        &self,
        run: &RunRecord,
        stage: &StageRecord,
        about: &Subject,
        statement: &Statement<P>,
        signer: &Signer,
    ) -> Result<(), EngineError> {
        let digest = about
            .sha256_digest()
            .map(|d| d.to_string())
            .unwrap_or_default();
        sign_and_keep(
            &signer.data,
            &*self.store,
            &signer.key,
            statement,
            Filed {
                run: Some(run.id),
                stage: Some(stage.id),
                subject_name: &about.name,
                subject_digest: &digest,
            },
        )?;
        Ok(())
    }

    fn run_stage(
        &self,
        loaded: &LoadedWorkload,
        run: &RunRecord,
        spec: &ChainStage,
        workspace: &Path,
        facts: &mut RunFacts<'_>,
        sink: &mut LogSink<'_>,
    ) -> Result<StageEnd, EngineError> {
        if spec.kind == StageKind::Source {
            return self.source_stage(loaded, workspace, facts, sink);
        }
        if spec.kind == StageKind::AcceptanceTest
            && let Some(built) = facts.image.clone()
            && let Some(plan) = facts.image_plan
            && let Some(port) = loaded.workload.image.as_ref().and_then(|i| i.port)
        {
            return self.rc_acceptance(
                loaded, run, spec, workspace, facts, plan, &built, port, sink,
            );
        }
        let Some(command) = stage_command(loaded, spec) else {
            let what = match spec.kind {
                StageKind::Fetch => "the workload declares no dependency fetch (build.fetch)",
                StageKind::AcceptanceTest => {
                    "the workload declares no acceptance tests (test.acceptance)"
                }
                _ => "the stage has no command",
            };
            sink.system(&format!("skipped: {what}"));
            return Ok(StageEnd::skipped(what));
        };
        let policy = &loaded.chain.sandbox;
        let network = spec.kind == StageKind::Fetch;
        sink.system(&format!(
            "$ {command}   [sandbox: network {}, timeout {}, memory {} MiB, {} processes, {}]",
            if network {
                "user-mode (dependency fetch; no host loopback, no link-local)"
            } else {
                "off"
            },
            human_duration(spec.timeout),
            policy.memory_bytes >> 20,
            policy.processes,
            match facts.build_image {
                Some(b) => format!("build image {} {}, {}", b.name, b.digest, b.why),
                None => "the host's /usr".to_owned(),
            }
        ));
        let sandbox = SandboxSpec {
            workspace: workspace.to_path_buf(),
            argv: vec!["/bin/sh".into(), "-c".into(), command.clone()],
            env: step_env(loaded, run, spec, facts.source_date_epoch),
            network,
            read_only_binds: policy
                .tools
                .iter()
                .map(|t| (PathBuf::from(&t.host), PathBuf::from(&t.at)))
                .collect(),
            limits: Limits {
                wall_clock: spec.timeout,
                memory_bytes: policy.memory_bytes,
                max_processes: policy.processes,
                max_line_bytes: MAX_LINE_BYTES,
            },
            system_root: facts.build_image.map(|b| b.rootfs.clone()),
        };
        let outcome = cairn_sandbox::run(&sandbox, &mut |stream, bytes| {
            let stream = match stream {
                Stream::Stdout => LogStream::Stdout,
                Stream::Stderr => LogStream::Stderr,
            };
            sink.line(stream, bytes);
        })?;
        sink.store_error()?;
        let took = human_duration(outcome.duration);
        let end = match outcome.exit {
            Exit::Code(0) => StageEnd::passed(Some(0)),
            Exit::Code(127) => StageEnd::failed(
                Some(127),
                "exit code 127: command not found in the sandbox (it sees /usr, the workspace and the chain's tools only)".to_owned(),
            ),
            Exit::Code(126) => StageEnd::failed(Some(126), "exit code 126: command not executable".to_owned()),
            Exit::Code(code) if (129..160).contains(&code) => StageEnd::failed(
                Some(code),
                format!("exit code {code}: killed by signal {}{}", code - 128, signal_hint(code - 128)),
            ),
            Exit::Code(code) => StageEnd::failed(Some(code), format!("exit code {code}")),
            Exit::Signal(sig) => StageEnd::failed(None, format!("killed by signal {sig}{}", signal_hint(sig))),
            Exit::TimedOut => StageEnd::failed(
                None,
                format!("timed out after {} (the chain's limit for this stage)", human_duration(spec.timeout)),
            ),
            Exit::OutOfMemory => StageEnd::failed(
                None,
                format!("killed: out of memory (the chain's limit is {} MiB)", policy.memory_bytes >> 20),
            ),
            other => StageEnd::failed(None, format!("ended abnormally: {other:?}")),
        };
        sink.system(&format!(
            "{} after {took}",
            end.reason.as_deref().unwrap_or("exit code 0")
        ));
        if end.status == StageStatus::Passed
            && spec.kind == StageKind::Fetch
            && let Some(source) = &facts.source
        {
            // A failure is logged and leaves no such evidence; the run goes on.
            facts.fetched = match self.inventory_fetched(
                loaded,
                source,
                workspace,
                facts.source_date_epoch,
                sink,
            ) {
                Ok(bom) => Some(bom),
                Err(e) => {
                    sink.system(&format!(
                        "no inventory of what the fetch installed, so no SBOM of it: {}",
                        error_chain(&e)
                    ));
                    None
                }
            };
        }
        if end.status == StageStatus::Passed
            && spec.kind == StageKind::Build
            && let Some(output) = &loaded.workload.output
        {
            // Whatever the build left in the workspace is untrusted: the output is
            // resolved beneath it with no symlink, and must be a regular file or a
            // directory of regular files, directories and symlinks (stored, never
            // followed).
            let root = cairn_fs::Dir::open(workspace)?;
            let digest = match artifact_digest(&root, output) {
                Ok(digest) => digest,
                Err(EngineError::Fs(e)) if e.is_not_found() => {
                    let reason = format!(
                        "the build passed but did not produce its declared output `{output}`"
                    );
                    sink.system(&reason);
                    return Ok(StageEnd::failed(Some(0), reason));
                }
                Err(EngineError::Fs(e)) => {
                    let reason = format!(
                        "the declared output `{output}` is refused: {}",
                        error_chain(&e)
                    );
                    sink.system(&reason);
                    return Ok(StageEnd::failed(Some(0), reason));
                }
                Err(e) => return Err(e),
            };
            sink.system(&format!("declared output `{output}` is present: {digest}"));
            facts.output = Some(Subject::sha256(output.clone(), digest));
            if let Some(under_test) = facts.image_plan.and_then(|p| p.retest.clone()) {
                sink.system(&format!(
                    "not assembled: the image under test is {} on catalog base {} ({}), a rebase of an image of this commit",
                    under_test.digest, under_test.base.name, under_test.base.digest
                ));
                facts.image = Some(under_test);
            } else if let (Some(plan), Some(config)) = (facts.image_plan, &loaded.workload.image) {
                let built = release_candidate::build_image(
                    &plan.images,
                    loaded,
                    config,
                    plan.base.clone(),
                    &root,
                    output,
                    facts.source_date_epoch,
                )?;
                sink.system(&format!(
                    "release-candidate image {} on catalog base {} ({})",
                    built.digest, built.base.name, built.base.digest
                ));
                self.store.add_image(&release_candidate::image_record(
                    &built,
                    loaded,
                    Some(run.id),
                ))?;
                // What is inside the RC, and its scan: certified about the
                // image's digest once the stage is over. A failure is logged and
                // leaves no such evidence (the gate then denies); the run goes on.
                facts.inventory = match self.inventory_rc(
                    loaded,
                    plan,
                    &built,
                    workspace,
                    facts.source_date_epoch,
                    sink,
                ) {
                    Ok(inventory) => Some(inventory),
                    Err(e) => {
                        sink.system(&format!(
                            "no inventory of the release candidate, so no SBOM or scan evidence (a gate will deny it): {}",
                            error_chain(&e)
                        ));
                        None
                    }
                };
                facts.image = Some(built);
            }
        }
        Ok(end)
    }

    /// The acceptance stage of a workload with an image: the RC runs in the
    /// sandbox and is tested there (see [`release_candidate::acceptance`]).
    #[allow(clippy::too_many_arguments)]
    fn rc_acceptance(
        &self,
        loaded: &LoadedWorkload,
        run: &RunRecord,
        spec: &ChainStage,
        workspace: &Path,
        facts: &mut RunFacts<'_>,
        plan: &ImagePlan,
        built: &BuiltImage,
        port: u16,
        sink: &mut LogSink<'_>,
    ) -> Result<StageEnd, EngineError> {
        let policy = &loaded.chain.sandbox;
        let limits = Limits {
            wall_clock: spec.timeout,
            memory_bytes: policy.memory_bytes,
            max_processes: policy.processes,
            max_line_bytes: MAX_LINE_BYTES,
        };
        let command = stage_command(loaded, spec).map(|command| SandboxSpec {
            workspace: workspace.to_path_buf(),
            argv: vec!["/bin/sh".into(), "-c".into(), command],
            env: step_env(loaded, run, spec, facts.source_date_epoch),
            network: false,
            read_only_binds: policy
                .tools
                .iter()
                .map(|t| (PathBuf::from(&t.host), PathBuf::from(&t.at)))
                .collect(),
            limits,
            system_root: facts.build_image.map(|b| b.rootfs.clone()),
        });
        let test = RcTest {
            images: &plan.images,
            built,
            port,
            checks: &loaded.workload.http_checks,
            command,
            limits,
        };
        // cairn's own lines and the step's output share the stage log.
        let sink = std::cell::RefCell::new(sink);
        let outcome = release_candidate::acceptance(
            test,
            &mut |text| sink.borrow_mut().system(text),
            &mut |stream, bytes| {
                let stream = match stream {
                    Stream::Stdout => LogStream::Stdout,
                    Stream::Stderr => LogStream::Stderr,
                };
                sink.borrow_mut().line(stream, bytes);
            },
        )?;
        let sink = sink.into_inner();
        sink.store_error()?;
        for name in outcome.failed {
            if !sink.failed_tests.contains(&name) {
                sink.failed_tests.push(name);
            }
        }
        facts.tested_image = true;
        Ok(match outcome.failure {
            None => {
                sink.system(&format!(
                    "the release candidate {} passed its acceptance tests",
                    built.digest
                ));
                StageEnd::passed(outcome.exit_code)
            }
            Some(why) => {
                let reason = format!("release candidate {}: {why}", built.digest);
                sink.system(&reason);
                StageEnd::failed(outcome.exit_code, reason)
            }
        })
    }

    /// The source stage: the exact commit's tree, never the work tree.
    fn source_stage(
        &self,
        loaded: &LoadedWorkload,
        workspace: &Path,
        facts: &mut RunFacts<'_>,
        sink: &mut LogSink<'_>,
    ) -> Result<StageEnd, EngineError> {
        let info = git::commit_info(&loaded.repo, &loaded.commit)?;
        facts.source_date_epoch = info.time;
        sink.system(&format!("commit {} (tree {})", loaded.commit, info.tree));
        sink.system(&format!(
            "author {}, committer {}",
            info.author, info.committer
        ));
        sink.system(&format!("subject: {}", info.subject));
        facts.change = self.change_of(loaded)?;
        let signed = facts
            .change
            .iter()
            .filter(|c| c.signed_by.is_some())
            .count();
        sink.system(&format!(
            "the change: {} commit(s) not yet in the last environment, {signed} with a verified signature of a registered key{}",
            facts.change.len(),
            facts
                .change
                .iter()
                .filter_map(|c| Some(format!("{} by {}", &c.commit[..12.min(c.commit.len())], c.signed_by.as_ref()?)))
                .map(|s| format!("; {s}"))
                .collect::<String>()
        ));
        if loaded.uncommitted_config {
            sink.system(
                &format!("note: the work tree's {WORKLOAD_FILE} has uncommitted changes; this run uses the committed file"),
            );
        }
        if workspace.exists() {
            std::fs::remove_dir_all(workspace).map_err(EngineError::io("clear", workspace))?;
        }
        {
            use std::os::unix::fs::DirBuilderExt;
            // Traversable, not listable: other users can't browse workspaces.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o711)
                .create(workspace)
                .map_err(EngineError::io("create", workspace))?;
        }
        git::materialise(&loaded.repo, &loaded.commit, &loaded.prefix, workspace)?;
        let source = tree_digest(&cairn_fs::Dir::open(workspace)?)?;
        sink.system(&format!("source tree digest {source}"));
        facts.source = Some(Subject::sha256(
            format!("{}@{}", loaded.workload.name, loaded.commit),
            source,
        ));
        let home = workspace.join(".home");
        std::fs::create_dir_all(&home).map_err(EngineError::io("create", &home))?;
        cairn_sandbox::prepare_workspace(workspace)?;
        let (files, bytes) = tree_size(&cairn_fs::Dir::open(workspace)?)?;
        let from = if loaded.prefix.is_empty() {
            "/".to_owned()
        } else {
            loaded.prefix.clone()
        };
        sink.system(&format!(
            "materialised {files} files ({bytes} bytes) from {from} at the commit"
        ));
        Ok(StageEnd::passed(None))
    }
}

/// The most commits of a change that are attributed (newest first).
const MAX_CHANGE_COMMITS: usize = 256;

impl Engine {
    /// The commits of the change `loaded.commit` is: reachable from it and not
    /// from the commit of what runs in the promotion path's last environment
    /// (read from that digest's *verified* provenance; the deployment row only
    /// says which digest to look at), at most [`MAX_CHANGE_COMMITS`], and
    /// never fewer than the commit itself. Each with its SSH signer, when the
    /// signature verifies against a key registered to an active identity
    /// (`git verify-commit` with an allowed-signers file cairn writes).
    fn change_of(
        &self,
        loaded: &LoadedWorkload,
    ) -> Result<Vec<cairn_evidence::ChangeCommit>, EngineError> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let store = &*self.store;
        let workload = &loaded.workload.name;
        let org = crate::load_org(self.platform_dir.as_deref())?;
        let mut bases = Vec::new();
        if let Some(last) = org.promotion_path.last()
            && let Some(d) = store.current_deployment(workload, last)?
        {
            let (trust, _) = crate::verified::Trust::load(&self.data)?;
            let (checked, _) = crate::verified::about_artifact(store, &trust, &d.digest, workload)?;
            bases.extend(
                checked
                    .iter()
                    .filter(|c| c.facts.builder.as_deref() == Some(BUILDER_ID))
                    .filter_map(|c| c.facts.commit.clone()),
            );
        }
        let mut entries =
            git::change_entries(&loaded.repo, &loaded.commit, &bases, MAX_CHANGE_COMMITS)?;
        if !entries.iter().any(|e| e.commit == loaded.commit) {
            let info = git::commit_info(&loaded.repo, &loaded.commit)?;
            entries.insert(
                0,
                git::ChangeEntry {
                    commit: loaded.commit.clone(),
                    author: info.author,
                    committer: info.committer,
                },
            );
        }
        let tag = format!(
            "{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let signers = crate::access::write_allowed_signers(store, &self.data, &tag)?;
        let mut change = Vec::with_capacity(entries.len());
        let verified = (|| {
            for e in entries {
                let signed_by = match &signers {
                    Some(file) => git::verified_signer(&loaded.repo, &e.commit, file)?,
                    None => None,
                };
                change.push(cairn_evidence::ChangeCommit {
                    commit: e.commit,
                    author: e.author,
                    committer: e.committer,
                    signed_by,
                });
            }
            Ok::<(), EngineError>(())
        })();
        if let Some(file) = &signers {
            let _ = std::fs::remove_file(file);
        }
        verified?;
        Ok(change)
    }
}

/// The command a stage runs for this workload, if any.
fn stage_command(loaded: &LoadedWorkload, stage: &ChainStage) -> Option<String> {
    let w = &loaded.workload;
    match stage.kind {
        StageKind::Source => None,
        StageKind::Fetch => w.fetch.clone(),
        StageKind::UnitTest => Some(w.unit_test.clone()),
        StageKind::Build => Some(w.build.clone()),
        StageKind::AcceptanceTest => w.acceptance_test.clone(),
        StageKind::Command => stage.command.clone(),
    }
}

/// The complete environment of a step: cairn's variables, then the chain's, then
/// host variables the chain passes by name. Nothing else reaches the sandbox.
fn step_env(
    loaded: &LoadedWorkload,
    run: &RunRecord,
    stage: &ChainStage,
    source_date_epoch: i64,
) -> Vec<(String, String)> {
    let policy = &loaded.chain.sandbox;
    let mut path: Vec<String> = policy.tools.iter().filter_map(|t| t.bin.clone()).collect();
    path.extend(["/usr/local/bin", "/usr/bin", "/bin"].map(str::to_owned));
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), path.join(":")),
        ("HOME".into(), "/workspace/.home".into()),
        ("TMPDIR".into(), "/tmp".into()),
        ("SOURCE_DATE_EPOCH".into(), source_date_epoch.to_string()),
        ("CAIRN_RUN".into(), run.id.to_string()),
        ("CAIRN_WORKLOAD".into(), loaded.workload.name.clone()),
        ("CAIRN_COMMIT".into(), loaded.commit.clone()),
        ("CAIRN_STAGE".into(), stage.name.clone()),
        // Go: the build image's toolchain, never one `go` would download for a
        // newer `go` line in go.mod.
        ("GOTOOLCHAIN".into(), "local".into()),
    ];
    if stage.kind != StageKind::Fetch {
        // Go, where the sandbox has no network: a module the fetch did not
        // download fails at once and says so, rather than after a lookup.
        env.push(("GOPROXY".into(), "off".into()));
    }
    let mut set = |k: &str, v: String| match env.iter_mut().find(|(name, _)| name == k) {
        Some(slot) => slot.1 = v,
        None => env.push((k.to_owned(), v)),
    };
    for (k, v) in &policy.env {
        set(k, v.clone());
    }
    for name in &policy.pass_env {
        if let Ok(v) = std::env::var(name) {
            set(name, v);
        }
    }
    env
}

fn signal_hint(sig: i32) -> &'static str {
    match sig {
        9 => " (SIGKILL: the memory or process limit, or an outside kill)",
        11 => " (SIGSEGV: the program crashed)",
        6 => " (SIGABRT: the program aborted)",
        _ => "",
    }
}

/// The builder id in cairn's provenance: this engine, not any step.
pub const BUILDER_ID: &str = "urn:cairn:builder:engine";

/// The image a run will build: the layout and the catalog base, resolved before
/// the run started.
struct ImagePlan {
    images: Images,
    base: (cairn_model::BaseRecord, cairn_oci::Image),
    /// A retest ([`Engine::retest`]): the image under test, which the build
    /// stage does not rebuild (a rebase of an image of this commit, with its
    /// own provenance, SBOM and scan).
    retest: Option<BuiltImage>,
}

/// What a run needs resolved before it exists.
struct Plan {
    /// The RC's catalog base, when the workload has an image.
    image: Option<ImagePlan>,
    /// The build image, when the workload names one.
    build_image: Option<BuildImage>,
}

/// A catalog base the fetch, build and test stages run in (see
/// [`cairn_sandbox::SandboxSpec::system_root`]).
struct BuildImage {
    name: String,
    /// Its manifest digest, `sha256:…`.
    digest: String,
    /// Its unpacked root filesystem (the checked cache).
    rootfs: PathBuf,
    /// Why this one: the workload named it, or org.toml mapped its ecosystem.
    why: String,
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

/// `owner/name` (or GitLab's `group/sub/name`): non-empty segments of letters,
/// digits, `-`, `_` and `.`, none of them `.` or `..`.
fn forge_name_ok(name: &str) -> bool {
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

/// Where the app lives: its directory in its git repository (what a worker
/// loads it from again, at the run's commit).
fn app_dir(loaded: &LoadedWorkload) -> String {
    loaded.repo.join(&loaded.prefix).display().to_string()
}

/// The subject naming an image: the workload and its manifest digest.
fn image_subject(loaded: &LoadedWorkload, built: &BuiltImage) -> Subject {
    let digest = Digest::parse(&built.digest)
        .unwrap_or_else(|_| cairn_evidence::sha256(built.digest.as_bytes()));
    Subject::sha256(format!("{}@{}", loaded.workload.name, built.digest), digest)
}

/// The sandbox's home in the workspace (tool caches, not the app's source).
const HOME_DIR: &str = ".home";
/// What the engine has established about the run so far.
#[derive(Default)]
struct RunFacts<'p> {
    /// The image plan, when the workload has an image.
    image_plan: Option<&'p ImagePlan>,
    /// The build image the steps run in, if any.
    build_image: Option<&'p BuildImage>,
    /// The release-candidate image the build produced.
    image: Option<BuiltImage>,
    /// The RC's SBOM and scan, until they are certified.
    inventory: Option<ImageInventory>,
    /// The SBOM of what the fetch stage installed, until it is certified.
    fetched: Option<serde_json::Value>,
    /// Whether the acceptance tests ran against the RC image.
    tested_image: bool,
    /// The materialised source tree.
    source: Option<Subject>,
    /// The build's declared output.
    output: Option<Subject>,
    /// Digests of the logs of the stages finished so far.
    logs: Vec<NamedDigest>,
    /// The commit's committer time: every step's SOURCE_DATE_EPOCH.
    source_date_epoch: i64,
    /// The commits of the change and who signed them (the source stage's).
    change: Vec<cairn_evidence::ChangeCommit>,
}

impl RunFacts<'_> {
    /// Whether the run retests an image it did not build.
    fn retesting(&self) -> bool {
        self.image_plan.is_some_and(|p| p.retest.is_some())
    }
}

/// One finished stage, as its evidence needs it.
struct StageFacts<'a> {
    spec: &'a ChainStage,
    record: &'a StageRecord,
    started_ms: i64,
    finished_ms: i64,
    failed_tests: Vec<String>,
    /// The tests the stage ran, from the runner's reports or output.
    tests: Option<TestReport>,
}

/// Bounds on what the engine reads of a workspace: the tree of a build output or
/// a source checkout (entries, depth, path length) and the bytes it hashes.
const WORKSPACE_LIMITS: cairn_fs::WalkLimits = cairn_fs::WalkLimits {
    max_entries: 1_000_000,
    max_depth: 128,
    max_path_len: 4096,
};
/// The most bytes hashed from one workspace tree (the same as an image layer).
const MAX_TREE_BYTES: u64 = 16 << 30;

/// SHA-256 of the declared output `rel` beneath the workspace: a regular file's
/// bytes, or [`tree_digest`] of a directory. Resolved without following any
/// symlink (not even as the output itself); anything but a regular file or a
/// directory is refused without being opened (see `cairn_fs`).
fn artifact_digest(workspace: &cairn_fs::Dir, rel: &str) -> Result<Digest, EngineError> {
    match workspace.open_beneath(rel)? {
        cairn_fs::Node::Dir(dir) => tree_digest(&dir),
        cairn_fs::Node::File(mut file) => {
            let mut hasher = Sha256Hasher::new();
            let mut budget = MAX_TREE_BYTES;
            hash_file(&mut file, &mut hasher, &mut budget)?;
            Ok(hasher.finish())
        }
    }
}

/// Hashes an opened regular file, at most `budget` bytes in all (what is left is
/// handed back).
fn hash_file(
    file: &mut cairn_fs::File,
    hasher: &mut Sha256Hasher,
    budget: &mut u64,
) -> Result<(), EngineError> {
    use std::io::Read;
    let too_large = |path: &Path| cairn_fs::FsError::Limit {
        path: path.to_path_buf(),
        what: "bytes hashed in one workspace tree",
        max: MAX_TREE_BYTES,
    };
    if file.meta().len > *budget {
        return Err(too_large(file.path()).into());
    }
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(EngineError::io("read", file.path()))?;
        if n == 0 {
            return Ok(());
        }
        *budget = budget
            .checked_sub(n as u64)
            .ok_or_else(|| too_large(file.path()))?;
        hasher.update(&buf[..n]);
    }
}

/// A digest of a directory tree that names exactly its content: for every entry in
/// byte order of its relative path, `d <path>`, `f <exec 0|1> <sha256> <path>` or
/// `l <target> <path>`, each line ending in `\n`. Symlinks are never followed;
/// a FIFO, socket or device anywhere is refused (never opened); cairn's `.home`
/// (the steps' HOME) is left out; the walk and the bytes hashed are bounded.
fn tree_digest(root: &cairn_fs::Dir) -> Result<Digest, EngineError> {
    let mut tree = Sha256Hasher::new();
    let mut budget = MAX_TREE_BYTES;
    for entry in cairn_fs::walk(root, WORKSPACE_LIMITS, &[HOME_DIR])? {
        match entry.meta.kind {
            cairn_fs::Kind::Dir => tree.update(b"d "),
            cairn_fs::Kind::Symlink => {
                let target = root.read_link_beneath(entry.rel_path())?;
                tree.update(b"l ");
                tree.update(target.as_os_str().as_encoded_bytes());
                tree.update(b" ");
            }
            cairn_fs::Kind::File => {
                let mut file = root.file_beneath(entry.rel_path())?;
                let mut hasher = Sha256Hasher::new();
                hash_file(&mut file, &mut hasher, &mut budget)?;
                let exec = if file.meta().mode & 0o111 != 0 {
                    "1"
                } else {
                    "0"
                };
                tree.update(format!("f {exec} {} ", hasher.finish().hex()).as_bytes());
            }
            other => {
                return Err(cairn_fs::FsError::Special {
                    path: root.path().join(entry.rel_path()),
                    kind: other.name(),
                }
                .into());
            }
        }
        tree.update(&entry.rel);
        tree.update(b"\n");
    }
    Ok(tree.finish())
}

/// Files (anything not a directory) and their bytes, as `lstat` sees them.
fn tree_size(root: &cairn_fs::Dir) -> Result<(u64, u64), EngineError> {
    let (mut files, mut bytes) = (0, 0);
    for entry in cairn_fs::walk(root, WORKSPACE_LIMITS, &[])? {
        if !entry.meta.is_dir() {
            files += 1;
            bytes += entry.meta.len;
        }
    }
    Ok((files, bytes))
}

/// Collects a stage's log lines and writes them to the store in batches, within
/// the per-stage budget. A flusher thread writes whatever is pending every
/// [`BATCH_AGE`], so a line printed before a long silence reaches followers
/// promptly. A store error is kept and reported after the step ends (the step's
/// output must still be drained).
struct LogSink<'a> {
    observer: &'a mut dyn RunObserver,
    shared: Arc<SinkShared>,
    flusher: Option<std::thread::JoinHandle<()>>,
    stage: &'a StageRecord,
    next_seq: u64,
    kept_bytes: u64,
    dropped_lines: u64,
    dropped_bytes: u64,
    hasher: Sha256Hasher,
    failed_tests: Vec<String>,
    results: LineReader,
}

/// What a finished stage's log says, for its evidence.
struct LogSummary {
    /// SHA-256 of the stored log: each line's bytes followed by `\n`.
    digest: Digest,
    /// Failed tests named in the step's output.
    failed_tests: Vec<String>,
    /// The tests the stage ran (see [`LogSink::finish_with`]).
    tests: Option<TestReport>,
}

struct SinkShared {
    store: Arc<dyn Store>,
    stage: cairn_model::StageId,
    state: std::sync::Mutex<SinkState>,
    wake: std::sync::Condvar,
}

#[derive(Default)]
struct SinkState {
    pending: Vec<LogLine>,
    error: Option<cairn_store::StoreError>,
    stopped: bool,
}

impl SinkShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, SinkState> {
        // A poisoned lock only means a panic elsewhere; the lines are still good.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes what is pending, under the lock, so batches land in order.
    fn flush_locked(&self, state: &mut SinkState) {
        if !state.pending.is_empty()
            && state.error.is_none()
            && let Err(e) = self.store.append_logs(self.stage, &state.pending)
        {
            state.error = Some(e);
        }
        state.pending.clear();
    }
}

impl<'a> LogSink<'a> {
    fn new(
        store: Arc<dyn Store>,
        stage: &'a StageRecord,
        observer: &'a mut dyn RunObserver,
    ) -> Self {
        let shared = Arc::new(SinkShared {
            store,
            stage: stage.id,
            state: std::sync::Mutex::new(SinkState::default()),
            wake: std::sync::Condvar::new(),
        });
        let background = shared.clone();
        let flusher = std::thread::Builder::new()
            .name("cairn-log-flush".into())
            .spawn(move || {
                let mut state = background.lock();
                while !state.stopped {
                    state = background
                        .wake
                        .wait_timeout(state, BATCH_AGE)
                        .map(|(s, _)| s)
                        .unwrap_or_else(|e| e.into_inner().0);
                    background.flush_locked(&mut state);
                }
            })
            .ok();
        LogSink {
            observer,
            shared,
            flusher,
            stage,
            next_seq: 0,
            kept_bytes: 0,
            dropped_lines: 0,
            dropped_bytes: 0,
            hasher: Sha256Hasher::new(),
            failed_tests: Vec::new(),
            results: LineReader::default(),
        }
    }

    fn system(&mut self, text: &str) {
        self.push(LogStream::System, text.as_bytes());
    }

    fn line(&mut self, stream: LogStream, bytes: &[u8]) {
        let size = bytes.len() as u64 + 1;
        if self.kept_bytes + size > MAX_STAGE_LOG_BYTES {
            self.dropped_lines += 1;
            self.dropped_bytes += size;
            return;
        }
        self.kept_bytes += size;
        if let Ok(text) = std::str::from_utf8(bytes) {
            for name in failed_tests(std::iter::once(text)) {
                if !self.failed_tests.contains(&name) {
                    self.failed_tests.push(name);
                }
            }
            self.results.line(text);
        }
        self.push(stream, bytes);
    }

    fn push(&mut self, stream: LogStream, bytes: &[u8]) {
        let line = LogLine {
            seq: self.next_seq,
            stream,
            at_ms: now_ms(),
            text: bytes.to_vec(),
        };
        self.next_seq += 1;
        self.hasher.update(&line.text);
        self.hasher.update(b"\n");
        self.observer.log_line(self.stage, &line);
        let mut state = self.shared.lock();
        state.pending.push(line);
        if state.pending.len() >= BATCH_LINES || self.flusher.is_none() {
            self.shared.flush_locked(&mut state);
        }
    }

    /// Writes everything pending now and reports a store error, if any.
    fn store_error(&mut self) -> Result<(), EngineError> {
        let mut state = self.shared.lock();
        self.shared.flush_locked(&mut state);
        match state.error.take() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Ends the log; `tests` hears the test results read from the step's
    /// output lines, may still write to the log, and says which results the
    /// stage's evidence carries.
    fn finish_with(
        mut self,
        tests: impl FnOnce(&mut Self, Option<TestReport>) -> Option<TestReport>,
    ) -> Result<LogSummary, EngineError> {
        let from_lines = std::mem::take(&mut self.results).finish();
        let tests = tests(&mut self, from_lines);
        if self.dropped_lines > 0 {
            let note = format!(
                "output truncated: {} more lines ({} bytes) were not kept; a stage keeps at most {} MiB of log",
                self.dropped_lines,
                self.dropped_bytes,
                MAX_STAGE_LOG_BYTES >> 20
            );
            self.system(&note);
        }
        self.stop_flusher();
        self.store_error()?;
        let hasher = std::mem::take(&mut self.hasher);
        Ok(LogSummary {
            digest: hasher.finish(),
            failed_tests: std::mem::take(&mut self.failed_tests),
            tests,
        })
    }

    fn stop_flusher(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.wake.notify_all();
        if let Some(handle) = self.flusher.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for LogSink<'_> {
    fn drop(&mut self) {
        self.stop_flusher();
    }
}
