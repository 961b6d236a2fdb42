//! `cairn gc`: removes what runs leave outside the data directory's records and
//! nothing else: per-run workspaces and unpacked image root filesystems (for root
//! under `/var/lib/cairn/{work,rootfs}/<data dir hash>/`, see
//! [`DataDir::workspaces`]) not used for a while. Never one in use: a run's
//! workspace while the run is not final; no rootfs at all while any run is not
//! final (a run unpacks and uses bases and release candidates); never the
//! rootfs of a running `local` deployment. A rootfs's age is the last time cairn
//! used it (its mtime, set on every use). Symlinks found there are removed as
//! links, never followed.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use cairn_model::RunStatus;
use cairn_store::{RunFilter, Store};

use crate::{DataDir, EngineError};

/// What `gc` removed and what it kept because it is in use.
#[derive(Debug, Default)]
pub struct GcReport {
    pub removed: Vec<PathBuf>,
    pub in_use: Vec<PathBuf>,
    /// Entries not yet older than the limit.
    pub recent: usize,
}

/// Removes workspaces and unpacked root filesystems of `data` that are not in
/// use and were last changed or used more than `older_than` ago.
pub fn gc(
    data: &DataDir,
    store: &dyn Store,
    older_than: Duration,
) -> Result<GcReport, EngineError> {
    let mut report = GcReport::default();
    let now = SystemTime::now();
    let mut active_runs = Vec::new();
    for status in RunStatus::ALL.iter().filter(|s| !s.is_final()) {
        let filter = RunFilter {
            workload: None,
            status: Some(*status),
            limit: 10_000,
            ..Default::default()
        };
        active_runs.extend(store.runs(&filter)?.into_iter().map(|r| r.id.to_string()));
    }

    for (name, path) in entries(&data.workspaces())? {
        if active_runs.contains(&name) {
            report.in_use.push(path);
        } else {
            sweep(&path, now, older_than, &mut report)?;
        }
    }

    let deployed = running_local_digests(data)?;
    for (name, path) in entries(&data.rootfs_cache())? {
        let hex = name.strip_prefix(".tmp-").unwrap_or(&name);
        let in_use = !active_runs.is_empty() || deployed.iter().any(|d| hex.starts_with(d));
        if in_use {
            report.in_use.push(path);
        } else {
            sweep(&path, now, older_than, &mut report)?;
        }
    }
    Ok(report)
}

/// The hex digests of the images the running `local` deployments run.
fn running_local_digests(data: &DataDir) -> Result<Vec<String>, EngineError> {
    let mut out = Vec::new();
    for (workload, dir) in entries(&data.deployments())? {
        if !std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        for (file, _) in entries(&dir)? {
            let Some(env) = file.strip_suffix(".json") else {
                continue;
            };
            // A damaged record: its rootfs may be in use, keep every rootfs.
            let d = crate::deploy::local::current(data, &workload, env)
                .ok()
                .flatten();
            match d {
                Some(d) if !d.is_running() => {}
                Some(d) => out.push(
                    cairn_evidence::Digest::parse(&d.digest)
                        .map_or_else(|_| d.digest.clone(), |d| d.hex()),
                ),
                None => out.push(String::new()),
            }
        }
    }
    Ok(out)
}

/// The entries of `dir` (none when it does not exist), by name.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, EngineError> {
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EngineError::io("list", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.map_err(EngineError::io("list", dir))?;
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    out.sort();
    Ok(out)
}

/// Removes `path` if it was last modified more than `older_than` before `now`
/// (a symlink as a link).
fn sweep(
    path: &Path,
    now: SystemTime,
    older_than: Duration,
    report: &mut GcReport,
) -> Result<(), EngineError> {
    let meta = std::fs::symlink_metadata(path).map_err(EngineError::io("stat", path))?;
    let modified = meta.modified().map_err(EngineError::io("stat", path))?;
    if now.duration_since(modified).unwrap_or_default() < older_than {
        report.recent += 1;
        return Ok(());
    }
    if meta.is_dir() {
        std::fs::remove_dir_all(path).map_err(EngineError::io("remove", path))?;
    } else {
        std::fs::remove_file(path).map_err(EngineError::io("remove", path))?;
    }
    report.removed.push(path.to_owned());
    Ok(())
}
