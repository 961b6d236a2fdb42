//! The test reports a test stage leaves in its workspace: JUnit XML files in
//! [`RESULTS_DIR`] (pytest `--junitxml`, surefire reports copied there,
//! `go-junit-report`), read host-side after the step with the bounds and
//! refusals of [`cairn_model::test_results`]. The runner clears the directory
//! before each test stage, so a report committed to the repository or left by an
//! earlier stage is never taken for this stage's.
//!
//! Everything here is untrusted (the step wrote it): the directory and each file
//! are opened beneath the workspace without following any symlink, special files
//! are never opened, and the files read, their sizes and their sum are bounded.
//! A refused file is named in the stage log with the reason and contributes
//! nothing.

use std::path::Path;

use cairn_model::error_chain;
use cairn_model::test_results::{MAX_REPORT_BYTES, RESULTS_DIR, TestReport, parse_junit};

use crate::EngineError;

/// The most entries the results directory may hold.
const MAX_FILES: u64 = 256;
/// The most bytes read from all reports of one stage.
const MAX_TOTAL_BYTES: u64 = 4 * MAX_REPORT_BYTES;

/// Removes the results directory beneath `workspace` (a symlink there is removed,
/// never followed); nothing there is fine.
pub fn clear(workspace: &Path) -> Result<(), EngineError> {
    let path = workspace.join(RESULTS_DIR);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EngineError::io("inspect", &path)(e)),
        Ok(meta) if meta.is_dir() => {
            std::fs::remove_dir_all(&path).map_err(EngineError::io("clear", &path))
        }
        Ok(_) => std::fs::remove_file(&path).map_err(EngineError::io("clear", &path)),
    }
}

/// The JUnit XML reports the stage left in [`RESULTS_DIR`], merged; `None`
/// when it left none that could be read. `note` hears every refusal.
pub fn read(workspace: &Path, note: &mut dyn FnMut(&str)) -> Option<TestReport> {
    let dir = match cairn_fs::Dir::open(workspace).and_then(|w| w.dir_beneath(RESULTS_DIR)) {
        Ok(dir) => dir,
        Err(e) if e.is_not_found() => return None,
        Err(e) => {
            note(&format!(
                "test reports: {RESULTS_DIR} refused: {}",
                error_chain(&e)
            ));
            return None;
        }
    };
    let entries = match dir.entries(MAX_FILES) {
        Ok(entries) => entries,
        Err(e) => {
            note(&format!(
                "test reports: {RESULTS_DIR} refused: {}",
                error_chain(&e)
            ));
            return None;
        }
    };
    let mut merged: Option<TestReport> = None;
    let mut budget = MAX_TOTAL_BYTES;
    for entry in entries {
        let name = entry.name.to_string_lossy().into_owned();
        if !name.ends_with(".xml") {
            continue;
        }
        let shown = format!("{RESULTS_DIR}/{name}");
        let bytes = dir
            .file_beneath(&entry.name)
            .and_then(|f| f.read_bounded(MAX_REPORT_BYTES.min(budget)));
        let bytes = match bytes {
            Ok(bytes) => bytes,
            Err(e) => {
                note(&format!("test report {shown} refused: {}", error_chain(&e)));
                continue;
            }
        };
        budget = budget.saturating_sub(bytes.len() as u64);
        match parse_junit(&bytes) {
            Ok(report) => match &mut merged {
                Some(m) => m.merge(report),
                None => merged = Some(report),
            },
            Err(e) => note(&format!("test report {shown} refused: {e}")),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_notes(workspace: &Path) -> (Option<TestReport>, Vec<String>) {
        let mut notes = Vec::new();
        let report = read(workspace, &mut |n| notes.push(n.to_owned()));
        (report, notes)
    }

    #[test]
    fn reads_reports_and_refuses_what_it_must_not_open() {
        let w = tempfile::tempdir().unwrap();
        assert_eq!(read_notes(w.path()), (None, vec![]));
        let dir = w.path().join(RESULTS_DIR);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(
            dir.join("a.xml"),
            r#"<testsuite><testcase classname="m" name="ok"/></testsuite>"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("b.xml"),
            r#"<testsuite><testcase classname="m" name="bad"><failure/></testcase></testsuite>"#,
        )
        .unwrap();
        std::fs::write(dir.join("notes.txt"), "not a report").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", dir.join("shadow.xml")).unwrap();
        let (report, notes) = read_notes(w.path());
        let report = report.unwrap();
        assert_eq!((report.passed_count, report.failed_count), (1, 1));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with("test report .cairn-results/shadow.xml refused")
                && notes[0].contains("is a symlink"),
            "{notes:?}"
        );

        // The directory itself a symlink: never entered.
        clear(w.path()).unwrap();
        assert!(!dir.exists());
        std::os::unix::fs::symlink("/etc", &dir).unwrap();
        let (report, notes) = read_notes(w.path());
        assert!(report.is_none());
        assert!(notes[0].contains("is a symlink"), "{notes:?}");
        clear(w.path()).unwrap();
        assert!(std::fs::symlink_metadata(&dir).is_err());
        assert!(Path::new("/etc/hostname").exists() || Path::new("/etc").exists());
    }
}
