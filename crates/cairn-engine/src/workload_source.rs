//! Finding and loading what a run needs: the app's `cairn.toml` (from the exact
//! commit, checked against the work tree) and the organisation's chain.

use std::path::{Path, PathBuf};

use cairn_model::config::{
    Chain, ConfigError, DEFAULT_CHAIN_NAME, DEFAULT_CHAIN_TOML, ORG_FILE, OrgConfig, WORKLOAD_FILE,
    Workload, parse_chain, parse_org, parse_workload,
};

use crate::{EngineError, git};

/// A workload resolved to one commit, with its chain.
#[derive(Debug, Clone)]
pub struct LoadedWorkload {
    /// The repository's top level.
    pub repo: PathBuf,
    /// The app's directory relative to the top level (`""` or ending in `/`).
    pub prefix: String,
    pub commit: String,
    pub workload: Workload,
    pub chain: Chain,
    /// Set when the work tree's `cairn.toml` differs from the committed one (the
    /// run uses the committed one).
    pub uncommitted_config: bool,
    /// The organisation's settings (`org.toml`, or the defaults).
    pub org: OrgConfig,
    /// How the committed `cairn.toml` is named in errors, and its text, so checks
    /// made after loading (e.g. the base is not in the catalog) point at the line.
    pub config_file: String,
    pub config_text: String,
}

impl LoadedWorkload {
    /// An error at `span` of the committed `cairn.toml`.
    pub fn config_error(
        &self,
        span: std::ops::Range<usize>,
        message: String,
        help: &str,
    ) -> ConfigError {
        ConfigError::at(
            &self.config_file,
            &self.config_text,
            Some(span),
            message,
            Some(help.to_owned()),
        )
    }
}

/// Finds the directory holding `cairn.toml`: `start` or a parent, up to the repo top.
fn find_app_dir(start: &Path, top: &Path) -> Result<PathBuf, EngineError> {
    let mut dir = start.to_path_buf();
    loop {
        if dir.join(WORKLOAD_FILE).is_file() {
            return Ok(dir);
        }
        if dir == top || !dir.pop() || !dir.starts_with(top) {
            return Err(EngineError::NoWorkloadConfig {
                dir: start.to_path_buf(),
                file: WORKLOAD_FILE,
            });
        }
    }
}

/// Loads the workload in (or above) `dir` at `rev`, and its chain from
/// `platform_dir/chains/<name>.toml` (or the built-in default chain).
///
/// When `rev` is `HEAD`, the work tree's `cairn.toml` is validated first, so an
/// error points at the file the user is editing; the run itself always uses the
/// file as committed, so it is reproducible.
pub fn load_workload(
    dir: &Path,
    rev: &str,
    platform_dir: Option<&Path>,
) -> Result<LoadedWorkload, EngineError> {
    let dir = std::fs::canonicalize(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => EngineError::PathNotFound {
            path: dir.to_path_buf(),
        },
        _ => EngineError::io("open", dir)(e),
    })?;
    let top = git::top_level(&dir)?;
    let top = std::fs::canonicalize(&top).map_err(EngineError::io("open", &top))?;
    let app = find_app_dir(&dir, &top)?;
    // The app's directory below the top level, as `git rev-parse
    // --show-prefix` says it (both are canonical paths), without a process.
    let prefix = match app.strip_prefix(&top).ok().and_then(Path::to_str) {
        Some("") => String::new(),
        Some(below) => format!("{below}/"),
        None => git::prefix(&app)?,
    };
    let config_path = format!("{prefix}{WORKLOAD_FILE}");
    // The commit, and its `cairn.toml`: one git process.
    let (commit, committed) = git::commit_and_file(&top, rev, &config_path)?;
    let shown = display_path(&dir, &app.join(WORKLOAD_FILE));

    let worktree_text = if rev == "HEAD" {
        // The work tree is the repository's content: its `cairn.toml` is read
        // without following a symlink, and only as a regular file.
        let file = cairn_fs::Dir::open(&app)?.file_beneath(WORKLOAD_FILE)?;
        let text = read_bounded_from(file, &app.join(WORKLOAD_FILE))?;
        parse_workload(&shown, &text)?;
        Some(text)
    } else {
        None
    };

    let committed = committed.ok_or_else(|| EngineError::ConfigNotCommitted {
        commit: commit.clone(),
        path: config_path.clone(),
    })?;
    let committed = String::from_utf8_lossy(&committed).into_owned();
    let short = &commit[..12.min(commit.len())];
    let config_file = format!("{config_path} (at commit {short})");
    let workload = parse_workload(&config_file, &committed)?;
    let chain = load_chain(&workload.chain, platform_dir)?;
    let org = load_org(platform_dir)?;
    Ok(LoadedWorkload {
        repo: top,
        prefix,
        uncommitted_config: worktree_text.is_some_and(|t| t != committed),
        commit,
        workload,
        chain,
        org,
        config_file,
        config_text: committed,
    })
}

/// The organisation's settings: `platform_dir/org.toml`, or the defaults (no
/// registry allowed) when there is none.
pub fn load_org(platform_dir: Option<&Path>) -> Result<OrgConfig, EngineError> {
    let Some(platform) = platform_dir else {
        return Ok(OrgConfig::default());
    };
    let path = platform.join(ORG_FILE);
    if !path.is_file() {
        return Ok(OrgConfig::default());
    }
    let text = read_bounded(&path)?;
    Ok(parse_org(&path.display().to_string(), &text)?)
}

/// The chain named `name`: `platform_dir/chains/<name>.toml`, else the built-in
/// default when `name` is `default`.
pub(crate) fn load_chain(name: &str, platform_dir: Option<&Path>) -> Result<Chain, EngineError> {
    if let Some(platform) = platform_dir {
        let path = platform.join("chains").join(format!("{name}.toml"));
        if path.is_file() {
            let text = read_bounded(&path)?;
            let chain = parse_chain(&path.display().to_string(), &text)?;
            check_tools(&chain)?;
            return Ok(chain);
        }
        if name != DEFAULT_CHAIN_NAME {
            return Err(EngineError::ChainNotFound {
                name: name.to_owned(),
                looked_for: path,
            });
        }
    } else if name != DEFAULT_CHAIN_NAME {
        return Err(EngineError::ChainNotFound {
            name: name.to_owned(),
            looked_for: PathBuf::from(format!("$CAIRN_PLATFORM_DIR/chains/{name}.toml")),
        });
    }
    Ok(parse_chain("<built-in default chain>", DEFAULT_CHAIN_TOML)?)
}

/// Every `[[sandbox.tool]]` of `chain` must be usable by the sandbox's user (uid
/// [`cairn_sandbox::SANDBOX_UID`] when cairn runs as root, else the caller): its
/// host directory (and `bin`) readable and searchable, and every directory on
/// the way there searchable. Checked when the chain is loaded, so a toolchain
/// under a private home (`/root/.rustup`, mode 0700) is refused with its path and
/// the fix, not met as `Permission denied` inside a stage.
pub(crate) fn check_tools(chain: &Chain) -> Result<(), EngineError> {
    for tool in &chain.sandbox.tools {
        let mut paths = vec![PathBuf::from(&tool.host)];
        if let Some(bin) = &tool.bin
            && let Some(rest) = Path::new(bin).strip_prefix(&tool.at).ok()
            && !rest.as_os_str().is_empty()
        {
            paths.push(Path::new(&tool.host).join(rest));
        }
        for path in paths {
            check_tool_path(&chain.name, &path)?;
        }
    }
    Ok(())
}

fn check_tool_path(chain: &str, path: &Path) -> Result<(), EngineError> {
    let refuse = |blocker: &Path, problem: String| EngineError::ToolUnusable {
        chain: chain.to_owned(),
        path: path.to_path_buf(),
        blocker: blocker.to_path_buf(),
        problem,
    };
    let real = std::fs::canonicalize(path)
        .map_err(|e| refuse(path, format!("it cannot be resolved ({e})")))?;
    let meta = std::fs::metadata(&real).map_err(|e| refuse(&real, e.to_string()))?;
    if !meta.is_dir() {
        return Err(refuse(&real, "it is not a directory".into()));
    }
    let mut walked = PathBuf::from("/");
    let comps: Vec<_> = real.components().skip(1).collect();
    let mut dirs = vec![walked.clone()];
    for c in &comps {
        walked.push(c);
        dirs.push(walked.clone());
    }
    let last = dirs.len() - 1;
    for (i, dir) in dirs.iter().enumerate() {
        // The tool's directory is listed and entered; those on the way, entered.
        let need_read = i == last;
        if let Some(problem) = sandbox_cannot(dir, need_read)? {
            return Err(refuse(dir, problem));
        }
    }
    Ok(())
}

/// Why the sandbox's user cannot search (and, with `need_read`, read) `dir`.
fn sandbox_cannot(dir: &Path, need_read: bool) -> Result<Option<String>, EngineError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).map_err(EngineError::io("inspect", dir))?;
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let (uid, gid) = if root {
        (cairn_sandbox::SANDBOX_UID, cairn_sandbox::SANDBOX_GID)
    } else {
        // SAFETY: as above.
        unsafe { (libc::geteuid(), libc::getegid()) }
    };
    let mode = meta.mode();
    let bits = if meta.uid() == uid {
        (mode >> 6) & 0o7
    } else if meta.gid() == gid {
        (mode >> 3) & 0o7
    } else {
        mode & 0o7
    };
    let want = if need_read { 0o5 } else { 0o1 };
    if bits & want == want {
        return Ok(None);
    }
    Ok(Some(format!(
        "`{}` is mode {:04o} (owner {}), so the sandbox's user (uid {uid}) cannot {}",
        dir.display(),
        mode & 0o7777,
        meta.uid(),
        if need_read {
            "read it"
        } else {
            "pass through it"
        }
    )))
}

fn read_bounded(path: &Path) -> Result<String, EngineError> {
    let file = std::fs::File::open(path).map_err(EngineError::io("read", path))?;
    read_bounded_from(file, path)
}

fn read_bounded_from(file: impl std::io::Read, path: &Path) -> Result<String, EngineError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    file.take(cairn_model::config::MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(EngineError::io("read", path))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `path` relative to `base` when it is below it (errors read `cairn.toml:3:1`).
fn display_path(base: &Path, path: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}
