//! Leftovers of cairn processes that died: their cgroups ([`list_cgroups`],
//! [`sweep_cgroups`]), and per-process directories named `<prefix><pid>-…` whose
//! process no longer exists ([`dead_process_entries`], for copies of `/etc`).
//!
//! A sweep removes only what it can identify as cairn's and abandoned: a cgroup under
//! cairn's own parent, with a name cairn gives, whose owner (the cairn process that
//! made it, see [`crate::owner`]) is gone, and that is empty (the kernel refuses to
//! remove a populated cgroup anyway). It never kills anything; everything else is
//! left alone and reported.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::cgroup::{self, DETACHED_PREFIX, RUN_PREFIX};
use crate::error::SandboxError;
use crate::owner;
use crate::spawn::is_root;

/// What a cgroup under cairn's parent is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CgroupKind {
    /// A run's (ends with the cairn process that started it).
    Run,
    /// A detached sandbox's (a `local` deployment; outlives its starter).
    Detached,
    /// Not a name cairn gives: never touched.
    Unknown,
}

/// One cgroup under cairn's parent directory (in each hierarchy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CairnCgroup {
    /// Its directory name, e.g. `detached-<owner token>-<id>`.
    pub name: String,
    pub kind: CgroupKind,
    /// Its directories, one per hierarchy, pids (or the v2 one) first.
    pub dirs: Vec<PathBuf>,
    /// The host pids in it now.
    pub pids: Vec<u32>,
    /// Whether the cairn process that made it still runs; `None` when that cannot be
    /// told (an unknown name).
    pub owner_alive: Option<bool>,
}

/// Why a sweep left a cgroup alone.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeftReason {
    /// Not a name cairn gives: somebody else's, never touched.
    UnknownName,
    /// The cairn process that made it still runs.
    OwnerAlive,
    /// Processes still run in it (e.g. a deployment whose starter has exited).
    Populated,
    /// Removing it failed.
    RemoveFailed(String),
}

impl fmt::Display for LeftReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeftReason::UnknownName => f.write_str("not a cgroup name cairn gives; left alone"),
            LeftReason::OwnerAlive => f.write_str("the cairn process that made it still runs"),
            LeftReason::Populated => f.write_str("processes still run in it; left alone"),
            LeftReason::RemoveFailed(why) => write!(f, "could not be removed: {why}"),
        }
    }
}

/// What [`sweep_cgroups`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Empty cgroups of gone cairn processes, removed.
    pub removed: Vec<CairnCgroup>,
    /// Everything else under cairn's parent, with why it stays.
    pub left: Vec<(CairnCgroup, LeftReason)>,
}

/// The cgroups under cairn's parent directories with the processes in them. Empty
/// when cairn does not run as root (it makes no cgroups then).
pub fn list_cgroups() -> Result<Vec<CairnCgroup>, SandboxError> {
    if !is_root() {
        return Ok(Vec::new());
    }
    Ok(list(&cgroup::parents()?))
}

/// The directories cairn's cgroups are made in (one per hierarchy, pids first); empty
/// when cairn does not run as root.
pub fn cgroup_parents() -> Result<Vec<PathBuf>, SandboxError> {
    if !is_root() {
        return Ok(Vec::new());
    }
    cgroup::parents()
}

/// Removes the empty cgroups of cairn processes that are gone (a killed run, a
/// deployment that ended after its starter exited) and reports what it removed and
/// what it left; never kills anything. Each cairn process also sweeps once, the
/// first time it needs cgroups; call this at start to report it.
pub fn sweep_cgroups() -> Result<SweepReport, SandboxError> {
    if !is_root() {
        return Ok(SweepReport::default());
    }
    Ok(sweep(&cgroup::parents()?))
}

pub(crate) fn sweep(parents: &[PathBuf]) -> SweepReport {
    let mut report = SweepReport::default();
    for found in list(parents) {
        let reason = match (found.kind, found.owner_alive) {
            (CgroupKind::Unknown, _) | (_, None) => Some(LeftReason::UnknownName),
            (_, Some(true)) => Some(LeftReason::OwnerAlive),
            _ if !found.pids.is_empty() => Some(LeftReason::Populated),
            _ => None,
        };
        if let Some(reason) = reason {
            report.left.push((found, reason));
            continue;
        }
        // rmdir(2) of a cgroup with processes (or children) fails: nothing running is
        // ever removed, even if it started after the listing.
        let failed = found
            .dirs
            .iter()
            .rev()
            .filter_map(|dir| match fs::remove_dir(dir) {
                Err(e) if e.kind() != ErrorKind::NotFound => {
                    Some(format!("{}: {e}", dir.display()))
                }
                _ => None,
            })
            .next();
        match failed {
            None => report.removed.push(found),
            Some(why) => report.left.push((found, LeftReason::RemoveFailed(why))),
        }
    }
    owner::sweep_gone();
    report
}

fn list(parents: &[PathBuf]) -> Vec<CairnCgroup> {
    let mut names: BTreeMap<OsString, Vec<PathBuf>> = BTreeMap::new();
    for parent in parents {
        let Ok(entries) = fs::read_dir(parent) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                names.entry(entry.file_name()).or_default();
            }
        }
    }
    names
        .into_keys()
        .map(|name| {
            let dirs: Vec<PathBuf> = parents
                .iter()
                .map(|p| p.join(&name))
                .filter(|d| d.is_dir())
                .collect();
            let mut pids: Vec<u32> = dirs
                .iter()
                .flat_map(|d| cgroup::pids_in(d))
                .filter_map(|p| u32::try_from(p).ok())
                .collect();
            pids.sort_unstable();
            pids.dedup();
            let name = name.to_string_lossy().into_owned();
            let (kind, owner_alive) = classify(&name);
            CairnCgroup {
                name,
                kind,
                dirs,
                pids,
                owner_alive,
            }
        })
        .collect()
}

/// The kind of a cgroup name and whether its owner lives. Names cairn gives:
/// `<prefix><owner token>-<id>` (a deployment's with its token first), and those earlier versions of cairn gave, `<prefix><pid>-<n>`,
/// whose owner is gone if that pid is gone or is this process (which gives no such
/// names).
fn classify(name: &str) -> (CgroupKind, Option<bool>) {
    let (kind, rest) = if let Some(rest) = name.strip_prefix(RUN_PREFIX) {
        (CgroupKind::Run, rest)
    } else if let Some(rest) = name.strip_prefix(DETACHED_PREFIX) {
        (CgroupKind::Detached, rest)
    } else {
        return (CgroupKind::Unknown, None);
    };
    // A deployment's sandbox carries its per-deployment token first:
    // `detached-<deployment token>-<owner token>-<id>` (see `start_detached`).
    let rest = match rest.split_once('-') {
        Some((token, tail))
            if kind == CgroupKind::Detached
                && crate::detached::is_token(token)
                && tail.split('-').count() == 2 =>
        {
            tail
        }
        _ => rest,
    };
    let Some((owner, id)) = rest.split_once('-') else {
        return (CgroupKind::Unknown, None);
    };
    if owner::is_id(owner) && owner::is_id(id) {
        return match owner::is_alive(owner) {
            Some(alive) => (kind, Some(alive)),
            None => (CgroupKind::Unknown, None),
        };
    }
    let legacy = |s: &str| !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit());
    if legacy(owner)
        && legacy(id)
        && let Ok(pid) = owner.parse::<u32>()
    {
        let gone = pid == std::process::id() || !Path::new(&format!("/proc/{pid}")).exists();
        return (kind, Some(!gone));
    }
    (CgroupKind::Unknown, None)
}

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
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn classifies_names_cairn_gives_and_no_others() {
        let me = std::process::id();
        let id = owner::random_id().unwrap();
        let gone = owner::random_id().unwrap();
        let cases = [
            (format!("run-{gone}-{id}"), CgroupKind::Run, Some(false)),
            (
                format!("detached-{gone}-{id}"),
                CgroupKind::Detached,
                Some(false),
            ),
            (
                format!("detached-{me}-0"),
                CgroupKind::Detached,
                Some(false),
            ),
            ("run-4194305-2".to_owned(), CgroupKind::Run, Some(false)),
            ("run-1-0".to_owned(), CgroupKind::Run, Some(true)),
            (format!("run-{gone}"), CgroupKind::Unknown, None),
            (format!("run-../{gone}-{id}"), CgroupKind::Unknown, None),
            ("system.slice".to_owned(), CgroupKind::Unknown, None),
            ("detached-x-1".to_owned(), CgroupKind::Unknown, None),
        ];
        for (name, kind, alive) in cases {
            assert_eq!(classify(&name), (kind, alive), "{name}");
        }
    }

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
