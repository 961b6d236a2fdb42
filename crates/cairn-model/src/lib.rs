//! Pure domain types of cairn: the workload and chain configuration (parsed with
//! spans), runs, stages and log lines, ecosystem detection, and the reading of test
//! output. Nothing here does I/O it was not handed: callers pass file contents,
//! file names and clock readings in.

pub mod config;
pub mod ecosystem;
pub mod run;
pub mod test_report;
pub mod time;

pub use run::{
    EvidenceRecord, LogLine, LogStream, NewEvidence, NewRun, NewStage, RunId, RunRecord, RunStatus,
    StageId, StageKind, StageRecord, StageStatus,
};
