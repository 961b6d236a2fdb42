//! `cairn init`: onboarding an app in one step — read the project (its ecosystem,
//! committed lockfiles, test runner configuration, acceptance script, Dockerfile),
//! write a `cairn.toml` that builds and tests it the way it really does, and keep
//! the data directory (`.cairn/`, which holds the signing key) out of git.
//!
//! Host-side reads of the project never follow a symlink nor open anything but a
//! regular file, and each is bounded (names at the root, bytes per file).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use cairn_model::config::{WORKLOAD_FILE, render_detected, sanitize_name};
use cairn_model::ecosystem::{
    ACCEPTANCE_SCRIPTS, Detection, Ecosystem, LOCKFILES, MAX_READ_BYTES, Project, READ_FILES,
    candidates, detect_project,
};

use crate::{EngineError, git};

/// The most names read at the project's root; a bigger directory is refused.
pub const MAX_ROOT_ENTRIES: usize = 10_000;
/// The line `cairn init` puts into `.gitignore`.
pub const GITIGNORE_ENTRY: &str = ".cairn/";

/// What `init` wrote (or, with `dry_run`, would write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onboarded {
    pub path: PathBuf,
    pub name: String,
    pub ecosystem: Ecosystem,
    pub detection: Detection,
    /// The file's text.
    pub text: String,
    /// What happened to `.gitignore`.
    pub gitignore: GitIgnore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitIgnore {
    Created,
    Appended,
    AlreadyThere,
    /// `--dry-run`: nothing written.
    NotWritten,
}

/// Options of `cairn init`.
#[derive(Debug, Clone, Default)]
pub struct InitOptions<'a> {
    pub name: Option<&'a str>,
    pub force: bool,
    pub dry_run: bool,
    pub ecosystem: Option<Ecosystem>,
}

/// Writes `cairn.toml` into `dir` (which must be in a git work tree). Refuses to
/// overwrite an existing one unless `force`.
pub fn init(dir: &Path, opts: &InitOptions<'_>) -> Result<Onboarded, EngineError> {
    git::top_level(dir)?;
    let path = dir.join(WORKLOAD_FILE);
    if path.exists() && !opts.force && !opts.dry_run {
        return Err(EngineError::AlreadyInitialised { file: path });
    }
    let project = read_project(dir)?;
    let detection = detect_project(&project, opts.ecosystem).ok_or_else(|| {
        let found = candidates(&project);
        match opts.ecosystem {
            Some(e) if !found.is_empty() => EngineError::EcosystemNotFound {
                asked: e.name(),
                found: found
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            _ => EngineError::UnknownEcosystem {
                dir: dir.to_path_buf(),
            },
        }
    })?;
    let dir_name = std::fs::canonicalize(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let name = sanitize_name(opts.name.unwrap_or(&dir_name));
    let text = render_detected(&name, &detection);
    let gitignore = if opts.dry_run {
        GitIgnore::NotWritten
    } else {
        // Ignore the data directory first: a config without it is the dangerous half.
        let g = ignore_data_dir(dir)?;
        // Write to a temporary file and rename, so a crash never leaves half a config.
        let tmp = dir.join(format!(".{WORKLOAD_FILE}.tmp"));
        std::fs::write(&tmp, &text).map_err(EngineError::io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(EngineError::io("write", &path))?;
        g
    };
    Ok(Onboarded {
        path,
        name,
        ecosystem: detection.recipe.ecosystem,
        detection,
        text,
        gitignore,
    })
}

/// Reads what detection needs, bounded, never following a symlink.
fn read_project(dir: &Path) -> Result<Project, EngineError> {
    let mut p = Project::default();
    for entry in std::fs::read_dir(dir).map_err(EngineError::io("list", dir))? {
        let entry = entry.map_err(EngineError::io("list", dir))?;
        if p.names.len() >= MAX_ROOT_ENTRIES {
            return Err(EngineError::TooManyEntries {
                dir: dir.to_path_buf(),
                max: MAX_ROOT_ENTRIES,
            });
        }
        p.names
            .push(entry.file_name().to_string_lossy().into_owned());
    }
    for name in READ_FILES {
        if let Some(text) = read_regular(&dir.join(name))? {
            p.texts.insert(name.to_owned(), text);
        }
    }
    for lock in LOCKFILES {
        if p.names.iter().any(|n| n == lock) && git::is_tracked(dir, lock)? {
            p.committed.push(lock.to_owned());
        }
    }
    for script in ACCEPTANCE_SCRIPTS {
        if is_regular(&dir.join(script)) {
            p.scripts.push(script.to_owned());
        }
    }
    Ok(p)
}

/// Whether every component of `path` under the project is a real directory and
/// the last a regular file (no symlinks).
fn is_regular(path: &Path) -> bool {
    let mut cur = PathBuf::new();
    let comps: Vec<_> = path.components().collect();
    for (i, c) in comps.iter().enumerate() {
        cur.push(c);
        let Ok(m) = std::fs::symlink_metadata(&cur) else {
            return false;
        };
        if m.file_type().is_symlink() {
            return false;
        }
        if i + 1 == comps.len() {
            return m.is_file();
        }
    }
    false
}

/// A regular file's text (at most [`MAX_READ_BYTES`]), `None` when absent or not a
/// regular file; never follows a symlink.
fn read_regular(path: &Path) -> Result<Option<String>, EngineError> {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Ok(None);
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(EngineError::io("read", path))?;
    let mut buf = Vec::new();
    Read::by_ref(&mut f)
        .take(MAX_READ_BYTES)
        .read_to_end(&mut buf)
        .map_err(EngineError::io("read", path))?;
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// Puts [`GITIGNORE_ENTRY`] into `dir/.gitignore`: creates it, or appends the line
/// once. A `.gitignore` that is a symlink or not a regular file, or that cannot
/// be written, is an error naming it.
pub fn ignore_data_dir(dir: &Path) -> Result<GitIgnore, EngineError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(".gitignore");
    let unwritable = |reason: String| EngineError::GitIgnoreUnwritable {
        path: path.clone(),
        reason,
    };
    let existing = match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(unwritable("it is a symlink".into()));
        }
        Ok(m) if !m.is_file() => return Err(unwritable("it is not a regular file".into())),
        Ok(_) => Some(read_regular(&path)?.unwrap_or_default()),
        Err(_) => None,
    };
    if let Some(text) = &existing {
        let already = text.lines().any(|l| {
            matches!(
                l.trim(),
                ".cairn" | ".cairn/" | "/.cairn" | "/.cairn/" | ".cairn/*" | "/.cairn/*"
            )
        });
        if already {
            return Ok(GitIgnore::AlreadyThere);
        }
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| unwritable(e.to_string()))?;
    let mut line = String::new();
    if existing
        .as_deref()
        .is_some_and(|t| !t.is_empty() && !t.ends_with('\n'))
    {
        line.push('\n');
    }
    line.push_str("# cairn's data directory (holds the signing key)\n");
    line.push_str(GITIGNORE_ENTRY);
    line.push('\n');
    f.write_all(line.as_bytes())
        .map_err(|e| unwritable(e.to_string()))?;
    Ok(if existing.is_some() {
        GitIgnore::Appended
    } else {
        GitIgnore::Created
    })
}
