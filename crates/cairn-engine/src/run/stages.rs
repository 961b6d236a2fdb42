//! The stage loop: each stage in order, its log, its end and its evidence; a
//! sandboxed stage's command, environment and limits, and what the engine takes
//! from a fetch (what it installed) and a build (its output, the release
//! candidate).

use std::path::{Path, PathBuf};

use cairn_evidence::sbom::CycloneDxBom;
use cairn_evidence::{NamedDigest, Statement, Subject};
use cairn_model::config::ChainStage;
use cairn_model::error_chain;
use cairn_model::test_results::TestReport;
use cairn_model::time::human_duration;
use cairn_model::{LogStream, RunRecord, RunStatus, StageKind, StageRecord, StageStatus};
use cairn_sandbox::{Exit, Limits, SandboxSpec, Stream};
use cairn_store::{EndedStage, RunEnd, StageBoundary};

use super::certify::PassedUnitTest;
use super::log_sink::{LogFlusher, LogSink, MAX_LINE_BYTES};
use super::plan::{BuildImage, ImagePlan, Plan};
use super::tree_hash::artifact_digest;
use super::{Engine, RunObserver, Signer};
use crate::EngineError;
use crate::host::now_ms;
use crate::images::image_inventory::ImageInventory;
use crate::images::release_candidate::{self, BuiltImage};
use crate::test_reports;
use crate::workload_source::LoadedWorkload;

/// A run's last stage's end, not yet stored: the run's end stores it
/// ([`cairn_store::RunStore::end_run`]), in the same transaction.
pub(super) struct LastEnd {
    /// The stage as the observer is told it once stored.
    record: StageRecord,
    log: Vec<cairn_model::LogLine>,
    status: StageStatus,
    exit_code: Option<i32>,
    reason: Option<String>,
    finished_ms: i64,
    evidence: Vec<cairn_model::NewEvidence>,
}

impl LastEnd {
    fn ended(&self) -> EndedStage<'_> {
        EndedStage {
            stage: self.record.id,
            log: &self.log,
            status: self.status,
            exit_code: self.exit_code,
            reason: self.reason.as_deref(),
            finished_ms: self.finished_ms,
            evidence: &self.evidence,
        }
    }
}

/// How a stage ended.
pub(super) struct StageEnd {
    pub(super) status: StageStatus,
    pub(super) exit_code: Option<i32>,
    pub(super) reason: Option<String>,
}

impl StageEnd {
    pub(super) fn passed(exit_code: Option<i32>) -> Self {
        StageEnd {
            status: StageStatus::Passed,
            exit_code,
            reason: None,
        }
    }
    pub(super) fn skipped(reason: &str) -> Self {
        StageEnd {
            status: StageStatus::Skipped,
            exit_code: None,
            reason: Some(reason.to_owned()),
        }
    }
    pub(super) fn failed(exit_code: Option<i32>, reason: String) -> Self {
        StageEnd {
            status: StageStatus::Failed,
            exit_code,
            reason: Some(reason),
        }
    }
}

impl Engine {
    /// Runs a started run's stages (its first stage started with it) and ends
    /// it: it always ends in a final state, even when cairn itself fails. The
    /// last stage's end is stored with the run's end, in one transaction
    /// ([`cairn_store::RunStore::end_run`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn execute(
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
        self.announce(&loaded.org, run.id, crate::forge_status::Phase::Running);
        let workspace = self.data.workspaces().join(run.id.to_string());
        let mut last = None;
        let result = self.run_stages(
            loaded, run, stages, &workspace, signer, plan, observer, &mut last,
        );
        if !keep_workspace {
            // Best effort: a leftover workspace wastes disk but loses nothing.
            let _ = std::fs::remove_dir_all(&workspace);
        }
        use crate::forge_status::Phase;
        let (status, reason, phase) = match &result {
            Ok(None) => (RunStatus::Succeeded, None, Phase::Succeeded),
            Ok(Some(reason)) => (RunStatus::Failed, Some(reason.clone()), Phase::Failed),
            Err(err) => (
                RunStatus::Failed,
                Some(format!(
                    "cairn could not complete the run: {}",
                    error_chain(err)
                )),
                Phase::Error,
            ),
        };
        let ended = last.as_ref().map(LastEnd::ended);
        let stored = store.end_run(
            ended.as_ref(),
            &RunEnd {
                run: run.id,
                status,
                reason: reason.as_deref(),
                finished_ms: now_ms(),
            },
        );
        if let Err(err) = stored {
            // The last stage's end was refused: the run still ends, failed,
            // and the stage that was running with it (interrupted).
            let reason = format!("cairn could not complete the run: {}", error_chain(&err));
            store.finish_run(run.id, RunStatus::Failed, Some(&reason), now_ms())?;
            self.announce(&loaded.org, run.id, Phase::Error);
            return Err(result.err().unwrap_or_else(|| err.into()));
        }
        // Told once it is stored; a stage whose certifying failed is not told
        // (the run's error says why).
        if let (Some(last), Ok(_)) = (&last, &result) {
            observer.stage_finished(&last.record);
        }
        self.announce(&loaded.org, run.id, phase);
        result?;
        store.run(run.id)?.ok_or(EngineError::RunNotFound(run.id))
    }

    /// Runs the stages in order; `Ok(Some(reason))` when one failed. The
    /// first stage was started with the run; the last one's end (after the
    /// last stage, a failed one, or certifying that failed) is left in `last`
    /// for the run's end to store.
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
        last: &mut Option<LastEnd>,
    ) -> Result<Option<String>, EngineError> {
        let mut facts = RunFacts {
            image_plan: plan.image.as_ref(),
            build_image: plan.build_image.as_ref(),
            ..RunFacts::default()
        };
        // Unit tests that passed, to certify again about the image once it exists.
        let mut unit_tests: Vec<PassedUnitTest> = Vec::new();
        // One transaction per stage boundary: the first stage started with
        // the run, then each stage's end (its log's tail, outcome and
        // evidence) with the next one's start, and the last one's end with
        // the run's. Nothing of a stage is told to the observer before the
        // transaction that records it commits.
        let mut started_ms = stages
            .first()
            .and_then(|s| s.started_at_ms)
            .unwrap_or_else(now_ms);
        // The next stage's sandbox, started while this one runs; dropped (killed,
        // its command never run) when the run stops before it. The starter (the
        // thread that forks it, to which its reaper's life is bound) is declared
        // first, so it ends after the last of them.
        let mut starter = Starter::default();
        let mut ahead: Option<Ahead> = None;
        let flusher = LogFlusher::start();
        for (index, (stage, spec)) in stages.iter().zip(&loaded.chain.stages).enumerate() {
            let mut current = stage.clone();
            current.status = StageStatus::Running;
            observer.stage_started(&current);
            let mut sink = LogSink::new(self.store.clone(), &current, observer, &flusher);
            let held = ahead.take().filter(|a| a.index == index);
            ahead = prepare_ahead(&mut starter, loaded, run, index + 1, workspace, &facts);
            let is_test = matches!(spec.kind, StageKind::UnitTest | StageKind::AcceptanceTest);
            // A report from the repository or an earlier stage is never this stage's.
            let cleared = if is_test {
                test_reports::clear(workspace)
            } else {
                Ok(())
            };
            let end = match cleared.and_then(|()| {
                self.run_stage(loaded, run, spec, workspace, &mut facts, &mut sink, held)
            }) {
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
            // A store error while the stage ran leaves it running: the run's
            // end interrupts it.
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
            // Signed and in the audit log now; stored with the stage's end.
            let certified = (|| {
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
                if spec.kind == StageKind::Build && current.status == StageStatus::Passed {
                    self.certify_about_image(
                        loaded,
                        run,
                        &current,
                        &unit_tests,
                        &mut facts,
                        signer,
                    )?;
                }
                Ok::<(), EngineError>(())
            })();
            // The stage's boundary: its end, what was signed about it, and the
            // next stage's start; after the last stage, a failure, or
            // certifying that failed (the run ends with that error, the
            // stage's end and the evidence logged before it kept), its end is
            // stored with the run's.
            // Every bundle signed during the stage (those signed before a
            // failure to certify too): one audit-log append.
            let logged = signer.log_signed();
            let certified = certified.and(logged);
            let next = stages
                .get(index + 1)
                .filter(|_| end.status != StageStatus::Failed && certified.is_ok());
            let next_started_ms = now_ms();
            let evidence = signer.logged.take();
            let Some(next) = next else {
                // The last boundary: stored with the run's end.
                *last = Some(LastEnd {
                    record: current,
                    log: log.tail,
                    status: end.status,
                    exit_code: end.exit_code,
                    reason: end.reason.clone(),
                    finished_ms,
                    evidence,
                });
                certified?;
                return Ok((end.status == StageStatus::Failed).then(|| {
                    let why = end.reason.as_deref().unwrap_or("failed");
                    format!("stage `{}` failed: {why}", stage.name)
                }));
            };
            self.store.stage_boundary(&StageBoundary {
                ended: Some(EndedStage {
                    stage: stage.id,
                    log: &log.tail,
                    status: end.status,
                    exit_code: end.exit_code,
                    reason: end.reason.as_deref(),
                    finished_ms,
                    evidence: &evidence,
                }),
                next: Some((next.id, next_started_ms)),
            })?;
            observer.stage_finished(&current);
            started_ms = next_started_ms;
        }
        Ok(None)
    }

    /// Runs one stage: the source stage here, the acceptance stage of an image
    /// against the running RC, any other in the sandbox with its command (the
    /// one `held` ahead for it, if its spec is the one the stage needs now).
    #[allow(clippy::too_many_arguments)]
    fn run_stage(
        &self,
        loaded: &LoadedWorkload,
        run: &RunRecord,
        spec: &ChainStage,
        workspace: &Path,
        facts: &mut RunFacts<'_>,
        sink: &mut LogSink<'_>,
        held: Option<Ahead>,
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
        // An image that serves no port: its acceptance command runs inside it.
        if spec.kind == StageKind::AcceptanceTest
            && let Some(built) = facts.image.clone()
            && let Some(plan) = facts.image_plan
        {
            return self
                .rc_acceptance_inside(loaded, run, spec, workspace, facts, plan, &built, sink);
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
        let sandbox = step_sandbox(
            loaded,
            run,
            spec,
            workspace,
            facts,
            command.clone(),
            network,
        );
        let held = held.filter(|h| h.spec == sandbox).and_then(Ahead::ready);
        sink.system(&format!(
            "$ {command}   [sandbox: network {}, timeout {}, memory {} MiB, {} processes, {}{}]",
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
            },
            if held.is_some() {
                ", started ahead during the previous stage"
            } else {
                ""
            }
        ));
        let mut on_line = |stream, bytes: &[u8]| sink.line(log_stream(stream), bytes);
        let outcome = match held {
            Some(held) => held.release(&mut on_line)?,
            None => cairn_sandbox::run(&sandbox, &mut on_line)?,
        };
        sink.store_error()?;
        let took = human_duration(outcome.duration);
        let end = exit_end(outcome.exit, spec, policy);
        sink.system(&format!(
            "{} after {took}",
            end.reason.as_deref().unwrap_or("exit code 0")
        ));
        if end.status == StageStatus::Passed && spec.kind == StageKind::Fetch {
            self.after_fetch(loaded, workspace, facts, sink);
        }
        if end.status == StageStatus::Passed
            && spec.kind == StageKind::Build
            && let Some(output) = &loaded.workload.output
            && let Some(refused) = self.after_build(loaded, run, workspace, output, facts, sink)?
        {
            return Ok(refused);
        }
        Ok(end)
    }

    /// What a passed fetch installed, inventoried (see
    /// [`Engine::inventory_fetched`]): a failure is logged and leaves no such
    /// evidence; the run goes on.
    fn after_fetch(
        &self,
        loaded: &LoadedWorkload,
        workspace: &Path,
        facts: &mut RunFacts<'_>,
        sink: &mut LogSink<'_>,
    ) {
        let Some(source) = &facts.source else {
            return;
        };
        facts.fetched = match self.inventory_fetched(
            loaded,
            source,
            workspace,
            facts.source_date_epoch,
            sink,
        ) {
            Ok((bom, licences)) => {
                facts.crate_licences = licences;
                Some(bom)
            }
            Err(e) => {
                sink.system(&format!(
                    "no inventory of what the fetch installed, so no SBOM of it: {}",
                    error_chain(&e)
                ));
                None
            }
        };
    }

    /// A passed build's declared output, digested beneath the workspace, and the
    /// release candidate assembled from it (or, for a retest, the image under
    /// test); `Some(end)` when the output is missing or refused.
    fn after_build(
        &self,
        loaded: &LoadedWorkload,
        run: &RunRecord,
        workspace: &Path,
        output: &str,
        facts: &mut RunFacts<'_>,
        sink: &mut LogSink<'_>,
    ) -> Result<Option<StageEnd>, EngineError> {
        // Whatever the build left in the workspace is untrusted: the output is
        // resolved beneath it with no symlink, and must be a regular file or a
        // directory of regular files, directories and symlinks (stored, never
        // followed).
        let root = cairn_fs::Dir::open(workspace)?;
        let digest = match artifact_digest(&root, output) {
            Ok(digest) => digest,
            Err(EngineError::Fs(e)) if e.is_not_found() => {
                let reason =
                    format!("the build passed but did not produce its declared output `{output}`");
                sink.system(&reason);
                return Ok(Some(StageEnd::failed(Some(0), reason)));
            }
            Err(EngineError::Fs(e)) => {
                let reason = format!(
                    "the declared output `{output}` is refused: {}",
                    error_chain(&e)
                );
                sink.system(&reason);
                return Ok(Some(StageEnd::failed(Some(0), reason)));
            }
            Err(e) => return Err(e),
        };
        sink.system(&format!("declared output `{output}` is present: {digest}"));
        facts.output = Some(Subject::sha256(output.to_owned(), digest));
        if let Some(under_test) = facts.image_plan.and_then(|p| p.retest.clone()) {
            sink.system(&format!(
                "not assembled: the image under test is {} on catalog base {} ({}), a rebase of an image of this commit",
                under_test.digest, under_test.base.name, under_test.base.digest
            ));
            facts.image = Some(under_test);
        } else if let (Some(plan), Some(config)) = (facts.image_plan, &loaded.workload.image) {
            self.assemble_rc(
                loaded, run, workspace, &root, output, plan, config, facts, sink,
            )?;
        }
        Ok(None)
    }

    /// The release candidate: the build's output as one layer on the catalog
    /// base, recorded, and inventoried for its SBOM and scan (certified about
    /// the image's digest once the stage is over).
    #[allow(clippy::too_many_arguments)]
    fn assemble_rc(
        &self,
        loaded: &LoadedWorkload,
        run: &RunRecord,
        workspace: &Path,
        root: &cairn_fs::Dir,
        output: &str,
        plan: &ImagePlan,
        config: &cairn_model::config::ImageConfig,
        facts: &mut RunFacts<'_>,
        sink: &mut LogSink<'_>,
    ) -> Result<(), EngineError> {
        let built = release_candidate::build_image(
            &plan.images,
            loaded,
            config,
            plan.base.clone(),
            root,
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
            &facts.crate_licences,
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
        Ok(())
    }
}

/// How a sandboxed stage ended, from its exit: the reason names the likely
/// cause (a missing command, a signal, the chain's time or memory limit).
fn exit_end(
    exit: Exit,
    spec: &ChainStage,
    policy: &cairn_model::config::SandboxPolicy,
) -> StageEnd {
    match exit {
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
    }
}

/// The sandbox of a step that runs `command` for `spec`: the workspace, the
/// step's environment, the chain's tools (read-only) and limits, and the build
/// image as its system, if any.
pub(super) fn step_sandbox(
    loaded: &LoadedWorkload,
    run: &RunRecord,
    spec: &ChainStage,
    workspace: &Path,
    facts: &RunFacts<'_>,
    command: String,
    network: bool,
) -> SandboxSpec {
    SandboxSpec {
        workspace: workspace.to_path_buf(),
        argv: vec!["/bin/sh".into(), "-c".into(), command],
        env: step_env(loaded, run, spec, facts.source_date_epoch),
        network,
        read_only_binds: loaded
            .chain
            .sandbox
            .tools
            .iter()
            .map(|t| (PathBuf::from(&t.host), PathBuf::from(&t.at)))
            .collect(),
        limits: step_limits(loaded, spec),
        system_root: facts.build_image.map(|b| b.rootfs.clone()),
    }
}

/// The thread of a run that starts stages' sandboxes ahead ([`prepare_ahead`]).
/// It lives until the run's stages are over: a sandbox's reaper is bound to
/// the life of the thread that forked it (its parent-death signal), so the
/// starter must outlive every sandbox it started.
#[derive(Default)]
pub(super) struct Starter {
    requests: Option<std::sync::mpsc::Sender<(SandboxSpec, std::sync::mpsc::Sender<Prepared>)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Prepared = Result<cairn_sandbox::PreparedSandbox, cairn_sandbox::SandboxError>;

impl Starter {
    /// Starts `spec`'s sandbox on the starter thread (made on first use); its
    /// result arrives on the returned channel.
    fn start(&mut self, spec: SandboxSpec) -> Option<std::sync::mpsc::Receiver<Prepared>> {
        if self.requests.is_none() {
            let (requests, inbox) =
                std::sync::mpsc::channel::<(SandboxSpec, std::sync::mpsc::Sender<Prepared>)>();
            let thread = std::thread::Builder::new()
                .name("cairn-stage-ahead".into())
                .spawn(move || {
                    for (spec, reply) in inbox {
                        // Nobody waiting any more: the held sandbox is dropped here.
                        let _ = reply.send(cairn_sandbox::prepare(&spec));
                    }
                })
                .ok()?;
            self.requests = Some(requests);
            self.thread = Some(thread);
        }
        let (reply, result) = std::sync::mpsc::channel();
        self.requests.as_ref()?.send((spec, reply)).ok()?;
        Some(result)
    }
}

impl Drop for Starter {
    fn drop(&mut self) {
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A stage's sandbox being started ahead by the run's [`Starter`] and held
/// before its command ([`cairn_sandbox::prepare`]), with the spec it is for.
/// Dropped unused, it waits for the start and drops the held sandbox (killed,
/// its command never run) before the run goes on.
pub(super) struct Ahead {
    index: usize,
    spec: SandboxSpec,
    result: Option<std::sync::mpsc::Receiver<Prepared>>,
}

impl Ahead {
    /// The held sandbox, once started; `None` if it could not be (the stage then
    /// starts one at its turn, which reports the error).
    fn ready(mut self) -> Option<cairn_sandbox::PreparedSandbox> {
        self.result.take()?.recv().ok()?.ok()
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        if let Some(result) = self.result.take() {
            drop(result.recv());
        }
    }
}

/// Starts stage `index`'s sandbox now, held until its turn, when everything it
/// is made of is known before the stage before it ends: the source stage has
/// materialised the workspace (and set SOURCE_DATE_EPOCH), the stage runs a
/// command in a plain step sandbox (not a fetch, whose network starts at its
/// turn, nor an acceptance stage against the image the build makes), and its
/// spec is built from the workload, the chain and the run only. At its turn
/// it is used only if its spec is the one the stage needs then; otherwise, or
/// when the run stops first, it is dropped: killed, its command never run. A
/// sandbox that cannot be started ahead is simply started at its turn.
fn prepare_ahead(
    starter: &mut Starter,
    loaded: &LoadedWorkload,
    run: &RunRecord,
    index: usize,
    workspace: &Path,
    facts: &RunFacts<'_>,
) -> Option<Ahead> {
    facts.source.as_ref()?;
    let spec = loaded.chain.stages.get(index)?;
    let plain = match spec.kind {
        StageKind::UnitTest | StageKind::Build | StageKind::Command => true,
        StageKind::AcceptanceTest => facts.image_plan.is_none(),
        StageKind::Source | StageKind::Fetch => false,
    };
    if !plain {
        return None;
    }
    let command = stage_command(loaded, spec)?;
    let sandbox = step_sandbox(loaded, run, spec, workspace, facts, command, false);
    let result = starter.start(sandbox.clone())?;
    Some(Ahead {
        index,
        spec: sandbox,
        result: Some(result),
    })
}

/// The chain's limits for a step of `spec`.
pub(super) fn step_limits(loaded: &LoadedWorkload, spec: &ChainStage) -> Limits {
    let policy = &loaded.chain.sandbox;
    Limits {
        wall_clock: spec.timeout,
        memory_bytes: policy.memory_bytes,
        max_processes: policy.processes,
        max_line_bytes: MAX_LINE_BYTES,
    }
}

/// The log stream of a step's output stream.
pub(super) fn log_stream(stream: Stream) -> LogStream {
    match stream {
        Stream::Stdout => LogStream::Stdout,
        Stream::Stderr => LogStream::Stderr,
    }
}

/// The command a stage runs for this workload, if any.
pub(super) fn stage_command(loaded: &LoadedWorkload, stage: &ChainStage) -> Option<String> {
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
pub(super) fn step_env(
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

/// The sandbox's home in the workspace (tool caches, not the app's source).
pub(super) const HOME_DIR: &str = ".home";
/// What the engine has established about the run so far.
#[derive(Default)]
pub(super) struct RunFacts<'p> {
    /// The image plan, when the workload has an image.
    pub(super) image_plan: Option<&'p ImagePlan>,
    /// The build image the steps run in, if any.
    pub(super) build_image: Option<&'p BuildImage>,
    /// The release-candidate image the build produced.
    pub(super) image: Option<BuiltImage>,
    /// The RC's SBOM and scan, until they are certified.
    pub(super) inventory: Option<ImageInventory>,
    /// The SBOM of what the fetch stage installed, until it is certified.
    pub(super) fetched: Option<serde_json::Value>,
    /// Registry crates' licences from the archives the fetch downloaded (read
    /// right after the fetch, before any build or test code ran), for the
    /// release candidate's SBOM.
    pub(super) crate_licences: crate::crate_archives::CrateLicences,
    /// Whether the acceptance tests ran against the RC image.
    pub(super) tested_image: bool,
    /// The materialised source tree.
    pub(super) source: Option<Subject>,
    /// The build's declared output.
    pub(super) output: Option<Subject>,
    /// Digests of the logs of the stages finished so far.
    pub(super) logs: Vec<NamedDigest>,
    /// The commit's committer time: every step's SOURCE_DATE_EPOCH.
    pub(super) source_date_epoch: i64,
    /// The commits of the change and who signed them (the source stage's).
    pub(super) change: Vec<cairn_evidence::ChangeCommit>,
}

impl RunFacts<'_> {
    /// Whether the run retests an image it did not build.
    pub(super) fn retesting(&self) -> bool {
        self.image_plan.is_some_and(|p| p.retest.is_some())
    }
}

/// One finished stage, as its evidence needs it.
pub(super) struct StageFacts<'a> {
    pub(super) spec: &'a ChainStage,
    pub(super) record: &'a StageRecord,
    pub(super) started_ms: i64,
    pub(super) finished_ms: i64,
    pub(super) failed_tests: Vec<String>,
    /// The tests the stage ran, from the runner's reports or output.
    pub(super) tests: Option<TestReport>,
}
