//! Notifications (filled in by the next commit).

use cairn_model::RunRecord;
use cairn_model::config::OrgConfig;

use crate::DataDir;

/// A run failed.
pub fn run_failed(_data: &DataDir, _org: &OrgConfig, _run: &RunRecord) {}
