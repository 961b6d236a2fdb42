//! The acceptance stage of a workload with an image: the release candidate
//! runs in the sandbox and is tested there.

use std::path::Path;

use cairn_model::RunRecord;
use cairn_model::config::ChainStage;

use super::Engine;
use super::log_sink::LogSink;
use super::plan::ImagePlan;
use super::stages::{RunFacts, StageEnd, log_stream, stage_command, step_limits, step_sandbox};
use crate::EngineError;
use crate::images::release_candidate::{self, BuiltImage, RcTest};
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
