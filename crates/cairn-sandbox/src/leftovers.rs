//! Leftovers of cairn processes that died: per-process directories named
//! `<prefix><pid>-…` whose process no longer exists.

use std::fs;
use std::path::{Path, PathBuf};

/// Entries of `dir` named `<prefix><pid>…` whose pid is not this process and no
/// longer exists.
pub(crate) fn dead_process_entries(dir: &Path, prefix: &str) -> Vec<fs::DirEntry> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let me = std::process::id();
    entries
        .flatten()
        .filter(|entry| {
            let pid = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_prefix(prefix))
                .and_then(|n| n.split('-').next())
                .and_then(|n| n.parse::<u32>().ok());
            pid.is_some_and(|pid| pid != me && !PathBuf::from(format!("/proc/{pid}")).exists())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_only_dead_processes() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let me = std::process::id();
        for name in [
            format!("run-{me}-1"),
            "run-4194305-2".to_owned(),
            "run-x-3".to_owned(),
            "other-4194305".to_owned(),
        ] {
            fs::create_dir(dir.path().join(name)).unwrap_or_else(|e| panic!("{e}"));
        }
        let found: Vec<String> = dead_process_entries(dir.path(), "run-")
            .iter()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(found, ["run-4194305-2"]);
    }
}
