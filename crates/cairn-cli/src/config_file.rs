//! The user's config file, `$XDG_CONFIG_HOME/cairn/config.toml` (else
//! `~/.config/cairn/config.toml`), layered the way uv layers its own: a flag
//! wins over an environment variable, which wins over the file, which wins over
//! the default. `CAIRN_NO_CONFIG=1` skips the file.
//!
//! It is applied once, first thing in `main` (before clap parses and before any
//! thread exists): each key whose environment variable is unset sets it, so
//! every reader of that variable — clap's `env =` for the global flags, the
//! engine's `CAIRN_TOKEN` — sees one layered value and flags still win. Unknown
//! keys are refused with the key named, paths must be absolute (or `~/…`), and
//! a token file must be a 0600 regular file.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use serde::Deserialize;

/// The file's keys and the variables they stand in for.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    /// `CAIRN_HOME` (`--cairn-home`).
    data_dir: Option<String>,
    /// `CAIRN_SANDBOX_DIR` (`--sandbox-dir`).
    sandbox_dir: Option<String>,
    /// `CAIRN_PLATFORM_DIR` (`--platform-dir`).
    platform_dir: Option<String>,
    /// `CAIRN_SERVER` (`cairn logs --server`).
    server: Option<String>,
    /// `CAIRN_DATABASE_URL` (`--database`): `sqlite://PATH` or `postgres://…`.
    database: Option<String>,
    /// A 0600 file holding the token, for `CAIRN_TOKEN`.
    token_file: Option<String>,
    /// `text` or `json` (`--json`).
    output: Option<String>,
}

/// The largest config file read.
const MAX_BYTES: u64 = 64 * 1024;

/// Where the file is, from the environment.
pub(crate) fn path() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if var("CAIRN_NO_CONFIG").is_some_and(|v| v != "0") {
        return None;
    }
    match var("XDG_CONFIG_HOME").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => Some(dir.join("cairn/config.toml")),
        _ => var("HOME").map(|h| PathBuf::from(h).join(".config/cairn/config.toml")),
    }
}

/// What the file asks for that the environment does not already say: the
/// variables to set, and whether output is JSON.
#[derive(Debug, Default)]
pub(crate) struct Layered {
    pub(crate) env: Vec<(&'static str, String)>,
    pub(crate) json: bool,
}

/// Reads and checks the file at `path` (none there: nothing to layer).
pub(crate) fn read(path: &Path) -> anyhow::Result<Layered> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Layered::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut text = String::new();
    file.take(MAX_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if text.len() as u64 > MAX_BYTES {
        bail!("{} is larger than 64 KiB", path.display());
    }
    let config: ConfigFile =
        toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let absolute = |key: &str, value: &str| -> anyhow::Result<String> {
        let expanded = match (value.strip_prefix("~/"), &home) {
            (Some(rest), Some(h)) => h.join(rest),
            _ => PathBuf::from(value),
        };
        if !expanded.is_absolute() {
            bail!(
                "{}: `{key}` must be an absolute path (or ~/…), not `{value}`",
                path.display()
            );
        }
        Ok(expanded.display().to_string())
    };
    let mut layered = Layered::default();
    let unset = |var: &str| std::env::var_os(var).is_none();
    for (key, var, value) in [
        ("data_dir", "CAIRN_HOME", &config.data_dir),
        ("sandbox_dir", "CAIRN_SANDBOX_DIR", &config.sandbox_dir),
        ("platform_dir", "CAIRN_PLATFORM_DIR", &config.platform_dir),
    ] {
        if let Some(v) = value {
            let v = absolute(key, v)?;
            if unset(var) {
                layered.env.push((var, v));
            }
        }
    }
    if let Some(server) = &config.server {
        if !(server.starts_with("https://") || server.starts_with("http://")) {
            bail!(
                "{}: `server` must be an http(s) URL, not `{server}`",
                path.display()
            );
        }
        if unset("CAIRN_SERVER") {
            layered.env.push(("CAIRN_SERVER", server.clone()));
        }
    }
    if let Some(url) = &config.database {
        // Checked where every command reads it (`commands/database.rs`), which
        // never repeats the URL; only its scheme is looked at here.
        if !(url.starts_with("sqlite://")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            bail!(
                "{}: `database` must be a sqlite:// or postgres:// URL",
                path.display()
            );
        }
        if unset("CAIRN_DATABASE_URL") {
            layered.env.push(("CAIRN_DATABASE_URL", url.clone()));
        }
    }
    if let Some(file) = &config.token_file {
        let file = absolute("token_file", file)?;
        if unset(cairn_engine::access::TOKEN_ENV) {
            let token = cairn_engine::outbox::read_secret_file(&file, "the token").map_err(
                |f| match f {
                    cairn_engine::outbox::Failure::Retry(w)
                    | cairn_engine::outbox::Failure::Permanent(w) => {
                        anyhow!("{} (`token_file`): {w}", path.display())
                    }
                },
            )?;
            layered.env.push((cairn_engine::access::TOKEN_ENV, token));
        }
    }
    match config.output.as_deref() {
        None | Some("text") => {}
        Some("json") => layered.json = true,
        Some(other) => bail!(
            "{}: `output` is `text` or `json`, not `{other}`",
            path.display()
        ),
    }
    Ok(layered)
}

/// Applies the file to this process's environment. Must run first in `main`,
/// before any thread is started.
pub(crate) fn apply() -> anyhow::Result<bool> {
    let Some(path) = path() else {
        return Ok(false);
    };
    let layered = read(&path)?;
    for (var, value) in &layered.env {
        // SAFETY: called at the start of `main`, before any other thread
        // exists, so nothing reads the environment concurrently.
        unsafe { std::env::set_var(var, value) };
    }
    Ok(layered.json)
}
