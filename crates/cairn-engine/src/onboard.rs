//! `cairn init`: onboarding an app in one step — detect its ecosystem and write a
//! `cairn.toml` with that ecosystem's build and test commands.

use std::path::{Path, PathBuf};

use cairn_model::config::{WORKLOAD_FILE, render_workload, sanitize_name};
use cairn_model::ecosystem::{Ecosystem, detect};

use crate::{EngineError, git};

/// What `init` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onboarded {
    pub path: PathBuf,
    pub name: String,
    pub ecosystem: Ecosystem,
}

/// Writes `cairn.toml` into `dir` (which must be in a git work tree). Refuses to
/// overwrite an existing one unless `force`.
pub fn init(dir: &Path, name: Option<&str>, force: bool) -> Result<Onboarded, EngineError> {
    git::top_level(dir)?;
    let path = dir.join(WORKLOAD_FILE);
    if path.exists() && !force {
        return Err(EngineError::AlreadyInitialised { file: path });
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(EngineError::io("list", dir))? {
        let entry = entry.map_err(EngineError::io("list", dir))?;
        files.push(entry.file_name().to_string_lossy().into_owned());
    }
    let recipe =
        detect(files.iter().map(String::as_str)).ok_or_else(|| EngineError::UnknownEcosystem {
            dir: dir.to_path_buf(),
        })?;
    let dir_name = std::fs::canonicalize(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let name = sanitize_name(name.unwrap_or(&dir_name));
    let text = render_workload(&name, &recipe);
    // Write to a temporary file and rename, so a crash never leaves half a config.
    let tmp = dir.join(format!(".{WORKLOAD_FILE}.tmp"));
    std::fs::write(&tmp, text).map_err(EngineError::io("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(EngineError::io("write", &path))?;
    Ok(Onboarded {
        path,
        name,
        ecosystem: recipe.ecosystem,
    })
}
