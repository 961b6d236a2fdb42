//! Finding runs whose process died (SIGKILL, a crash, a reboot) and marking them
//! interrupted, so no run stays "running" forever. Every `cairn` command does this
//! on start.

use cairn_model::{RunId, RunStatus};
use cairn_store::{RunFilter, Store};

use crate::EngineError;
use crate::host::{Liveness, liveness, now_ms};

/// How many running runs one pass looks at.
const SCAN_LIMIT: usize = 10_000;

/// Marks every running run whose owning process is gone as interrupted; returns
/// their ids. Runs owned by another host are left alone (their host recovers them).
pub fn recover_interrupted(store: &dyn Store) -> Result<Vec<RunId>, EngineError> {
    let running = store.runs(&RunFilter {
        workload: None,
        status: Some(RunStatus::Running),
        limit: SCAN_LIMIT,
        ..Default::default()
    })?;
    let mut recovered = Vec::new();
    for run in running {
        let dead = match run.owner.as_deref() {
            Some(owner) => liveness(owner) == Liveness::Dead,
            None => false,
        };
        if dead {
            let reason = format!(
                "interrupted: the cairn process running it ({}) ended before the run finished",
                run.owner.as_deref().unwrap_or("unknown")
            );
            if store.interrupt_run(run.id, &reason, now_ms())? {
                recovered.push(run.id);
            }
        }
    }
    Ok(recovered)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::host::owner_tag;
    use cairn_model::{NewRun, NewStage, StageKind, StageStatus};
    use cairn_store::SqliteStore;
    use cairn_store::prelude::*;

    fn running_run(store: &dyn Store, owner: &str) -> RunId {
        store.upsert_workload("app", "/repo", 1).unwrap();
        let (run, stages) = store
            .create_run(&NewRun {
                workload: "app".into(),
                commit: "a".repeat(40),
                git_ref: None,
                created_at_ms: 2,
                stages: vec![
                    NewStage {
                        name: "source".into(),
                        kind: StageKind::Source,
                        command: None,
                    },
                    NewStage {
                        name: "build".into(),
                        kind: StageKind::Build,
                        command: Some("make".into()),
                    },
                ],
                trigger: cairn_model::Trigger::Cli,
            })
            .unwrap();
        store.start_run(run.id, owner, 3).unwrap();
        store.start_stage(stages[0].id, 4).unwrap();
        run.id
    }

    #[test]
    fn only_runs_of_dead_local_processes_are_interrupted() {
        let store = SqliteStore::open_in_memory().unwrap();
        let alive = running_run(&store, &owner_tag());
        let (prefix, start) = owner_tag()
            .rsplit_once(':')
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .unwrap();
        let dead_tag = format!("{prefix}:{}", start.parse::<u64>().unwrap() + 1);
        let dead = running_run(&store, &dead_tag);
        let elsewhere = running_run(&store, "another-host-xyz:1:1");

        assert_eq!(recover_interrupted(&store).unwrap(), vec![dead]);
        let status = |id| store.run(id).unwrap().unwrap().status;
        assert_eq!(status(alive), RunStatus::Running);
        assert_eq!(status(dead), RunStatus::Interrupted);
        assert_eq!(status(elsewhere), RunStatus::Running);
        let stages = store.stages(dead).unwrap();
        assert_eq!(stages[0].status, StageStatus::Interrupted);
        assert_eq!(stages[1].status, StageStatus::Skipped);
        assert!(
            store
                .run(dead)
                .unwrap()
                .unwrap()
                .reason
                .unwrap()
                .contains("ended before the run finished")
        );
        // A second pass finds nothing more.
        assert!(recover_interrupted(&store).unwrap().is_empty());
    }
}
