//! The acceptance stage of a workload with an image: the release candidate
//! runs in the sandbox and is tested there (one that serves no port has the
//! acceptance command run inside it).

use std::path::Path;

use cairn_model::RunRecord;
use cairn_model::config::ChainStage;

use super::Engine;
use super::log_sink::LogSink;
use super::plan::ImagePlan;
use super::stages::{
    RunFacts, StageEnd, log_stream, stage_command, step_env, step_limits, step_sandbox,
};
use crate::EngineError;
use crate::images::release_candidate::{self, BuiltImage, RcInside, RcOutcome, RcTest};
use crate::workload_source::LoadedWorkload;

impl Engine {
    /// The acceptance stage of a workload with an image: the RC runs in the
    /// sandbox and is tested there (see [`release_candidate::acceptance`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn rc_acceptance(
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
        let limits = step_limits(loaded, spec);
        let command = stage_command(loaded, spec)
            .map(|command| step_sandbox(loaded, run, spec, workspace, facts, command, false));
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
            &mut |stream, bytes| sink.borrow_mut().line(log_stream(stream), bytes),
        )?;
        let sink = sink.into_inner();
        Self::rc_end(built, outcome, facts, sink)
    }

    /// The acceptance stage of a workload whose image serves no port: its
    /// acceptance command runs inside the release candidate (see
    /// [`release_candidate::acceptance_inside`]); without one, it is skipped
    /// (and no test result says the RC was tested).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn rc_acceptance_inside(
        &self,
        loaded: &LoadedWorkload,
        run: &RunRecord,
        spec: &ChainStage,
        workspace: &Path,
        facts: &mut RunFacts<'_>,
        plan: &ImagePlan,
        built: &BuiltImage,
        sink: &mut LogSink<'_>,
    ) -> Result<StageEnd, EngineError> {
        let Some(command) = stage_command(loaded, spec) else {
            let what = "the workload declares no acceptance tests (test.acceptance)";
            sink.system(&format!("skipped: {what}"));
            return Ok(StageEnd::skipped(what));
        };
        // cairn's variables and the chain's; the image's own PATH (the
        // chain's tools are not in the image), a writable HOME and TMPDIR.
        let mut env: Vec<(String, String)> = step_env(loaded, run, spec, facts.source_date_epoch)
            .into_iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "PATH" | "HOME" | "TMPDIR" | "GOTOOLCHAIN" | "GOPROXY"
                )
            })
            .collect();
        env.push(("HOME".into(), "/tmp".into()));
        env.push(("TMPDIR".into(), "/tmp".into()));
        env.push(("CAIRN_RC_DIGEST".into(), built.digest.clone()));
        let test = RcInside {
            images: &plan.images,
            built,
            command,
            env,
            workspace,
            limits: step_limits(loaded, spec),
        };
        let sink = std::cell::RefCell::new(sink);
        let outcome = release_candidate::acceptance_inside(
            test,
            &mut |text| sink.borrow_mut().system(text),
            &mut |stream, bytes| sink.borrow_mut().line(log_stream(stream), bytes),
        )?;
        let sink = sink.into_inner();
        Self::rc_end(built, outcome, facts, sink)
    }

    /// How an acceptance stage against the RC ended: its failures named for
    /// the test result, the RC marked as the one tested.
    fn rc_end(
        built: &BuiltImage,
        outcome: RcOutcome,
        facts: &mut RunFacts<'_>,
        sink: &mut LogSink<'_>,
    ) -> Result<StageEnd, EngineError> {
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
}
