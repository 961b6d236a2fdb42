//! Reading the app's repository with the `git` program: the top level, exact
//! commits, files at a commit, and the materialisation of a commit's tree. Only
//! plumbing commands; repository hooks and fsmonitor are disabled, so reading a
//! repository never runs code from it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::EngineError;

/// The most a config file read from git may be; more is refused.
const MAX_BLOB_BYTES: usize = cairn_model::config::MAX_CONFIG_BYTES + 1;

fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(dir)
        .args([
            "-c",
            "core.fsmonitor=false",
            "-c",
            "core.hooksPath=/dev/null",
        ])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .stdin(Stdio::null());
    cmd
}

struct Output {
    ok: bool,
    stdout: Vec<u8>,
    stderr: String,
}

fn run(mut cmd: Command) -> Result<Output, EngineError> {
    let out = cmd.output().map_err(|source| EngineError::Spawn {
        program: "git",
        source,
    })?;
    Ok(Output {
        ok: out.status.success(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).trim().to_owned()
}

/// The top level of the work tree that contains `dir`.
pub fn top_level(dir: &Path) -> Result<PathBuf, EngineError> {
    let mut cmd = git(dir);
    cmd.args(["rev-parse", "--show-toplevel"]);
    let out = run(cmd)?;
    if !out.ok {
        return Err(EngineError::NotAGitRepo {
            path: dir.to_path_buf(),
        });
    }
    Ok(PathBuf::from(text(out.stdout)))
}

/// The full commit id that `rev` names.
pub fn resolve_commit(repo: &Path, rev: &str) -> Result<String, EngineError> {
    let unknown = || EngineError::UnknownCommit {
        rev: rev.to_owned(),
        repo: repo.to_path_buf(),
    };
    if rev.is_empty() || rev.starts_with('-') || rev.contains(['\0', '\n', ':']) || rev.len() > 256
    {
        return Err(unknown());
    }
    let mut cmd = git(repo);
    cmd.args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
        .arg(format!("{rev}^{{commit}}"));
    let out = run(cmd)?;
    let id = text(out.stdout);
    if !out.ok || id.len() < 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(unknown());
    }
    Ok(id)
}

/// Whether `repo` has commit `commit` (a full id).
pub fn has_commit(repo: &Path, commit: &str) -> bool {
    resolve_commit(repo, commit).is_ok_and(|id| id == commit)
}

/// Fetches `branch` from the repository's `origin` remote (no tags, hooks off,
/// no prompts), waiting at most `limit`. A repository without `origin` is an
/// error saying so.
pub fn fetch_branch(
    repo: &Path,
    branch: &str,
    limit: std::time::Duration,
) -> Result<(), EngineError> {
    let bad = |stderr: String| EngineError::Git {
        what: "fetch",
        stderr,
    };
    if branch.is_empty()
        || branch.starts_with('-')
        || branch.len() > 256
        || branch.contains(['\0', '\n', ':', ' ', '~', '^', '?', '*', '[', '\\'])
        || branch.contains("..")
    {
        return Err(bad(format!("`{branch}` is not a branch name")));
    }
    let mut remote = git(repo);
    remote.args(["remote", "get-url", "origin"]);
    if !run(remote)?.ok {
        return Err(bad(
            "the repository has no `origin` remote to fetch from".into()
        ));
    }
    let mut cmd = git(repo);
    cmd.args([
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-recurse-submodules",
        "origin",
    ])
    .arg(format!("refs/heads/{branch}"))
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| EngineError::Spawn {
        program: "git",
        source,
    })?;
    let deadline = std::time::Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(_)) => {
                let mut stderr = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = (&mut e).take(8 << 10).read_to_string(&mut stderr);
                }
                return Err(bad(stderr.trim().to_owned()));
            }
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(bad(format!(
                    "no answer from origin within {} s",
                    limit.as_secs()
                )));
            }
            Err(e) => return Err(bad(e.to_string())),
        }
    }
}

/// Who made a commit and what it says, for the source stage's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    pub author: String,
    pub committer: String,
    pub subject: String,
    /// Committer time, seconds since the epoch: the build's SOURCE_DATE_EPOCH.
    pub time: i64,
    pub tree: String,
}

pub fn commit_info(repo: &Path, commit: &str) -> Result<CommitInfo, EngineError> {
    let mut cmd = git(repo);
    cmd.args([
        "show",
        "-s",
        "--format=%an <%ae>%x00%cn <%ce>%x00%s%x00%ct%x00%T",
        commit,
    ]);
    let out = run(cmd)?;
    if !out.ok {
        return Err(EngineError::Git {
            what: "show",
            stderr: out.stderr,
        });
    }
    let text = text(out.stdout);
    let mut parts = text.split('\0');
    let mut next = || parts.next().unwrap_or_default().to_owned();
    Ok(CommitInfo {
        author: next(),
        committer: next(),
        subject: next(),
        time: next().parse().unwrap_or(0),
        tree: next(),
    })
}

/// The path of `dir` relative to the top level (`""` at the top, else ending in `/`).
pub fn prefix(dir: &Path) -> Result<String, EngineError> {
    let mut cmd = git(dir);
    cmd.args(["rev-parse", "--show-prefix"]);
    let out = run(cmd)?;
    if !out.ok {
        return Err(EngineError::NotAGitRepo {
            path: dir.to_path_buf(),
        });
    }
    Ok(text(out.stdout))
}

/// A file's contents at a commit, or `None` when the commit has no such file.
pub fn read_at(repo: &Path, commit: &str, path: &str) -> Result<Option<Vec<u8>>, EngineError> {
    let spec = format!("{commit}:{path}");
    let mut cmd = git(repo);
    cmd.args(["cat-file", "-e", &spec]);
    if !run(cmd)?.ok {
        return Ok(None);
    }
    let mut cmd = git(repo);
    cmd.args(["cat-file", "-s", &spec]);
    let size: usize = text(run(cmd)?.stdout).parse().unwrap_or(usize::MAX);
    if size > MAX_BLOB_BYTES {
        // Let the config parser refuse it with its own message, without reading it all.
        return Ok(Some(vec![b'#'; MAX_BLOB_BYTES]));
    }
    let mut cmd = git(repo);
    cmd.args(["cat-file", "blob", &spec]);
    let out = run(cmd)?;
    if !out.ok {
        return Err(EngineError::Git {
            what: "cat-file",
            stderr: out.stderr,
        });
    }
    Ok(Some(out.stdout))
}

/// Writes the tree of `commit` under `prefix` into `dest` (which must exist): files
/// and symlinks exactly as committed, nothing from the work tree.
pub fn materialise(
    repo: &Path,
    commit: &str,
    prefix: &str,
    dest: &Path,
) -> Result<(), EngineError> {
    let tree = if prefix.is_empty() {
        commit.to_owned()
    } else {
        format!("{commit}:{}", prefix.trim_end_matches('/'))
    };
    let mut archive = git(repo);
    archive
        .args(["archive", "--format=tar", &tree])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut archive = archive.spawn().map_err(|source| EngineError::Spawn {
        program: "git",
        source,
    })?;
    let Some(tar_input) = archive.stdout.take() else {
        return Err(EngineError::Git {
            what: "archive",
            stderr: "no output pipe".into(),
        });
    };
    let tar = Command::new("tar")
        .args([
            "-x",
            "--no-same-owner",
            "--no-same-permissions",
            "--no-overwrite-dir",
            "-C",
        ])
        .arg(dest)
        .stdin(tar_input)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| EngineError::Spawn {
            program: "tar",
            source,
        })?;
    let archived = archive
        .wait_with_output()
        .map_err(|source| EngineError::Spawn {
            program: "git",
            source,
        })?;
    if !archived.status.success() {
        return Err(EngineError::Git {
            what: "archive",
            stderr: String::from_utf8_lossy(&archived.stderr).trim().to_owned(),
        });
    }
    if !tar.status.success() {
        return Err(EngineError::Git {
            what: "archive extraction (tar)",
            stderr: String::from_utf8_lossy(&tar.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

/// Whether `path` is tracked in the index of the work tree at or above `dir`.
pub fn is_tracked(dir: &Path, path: &str) -> Result<bool, EngineError> {
    let mut cmd = git(dir);
    cmd.env("GIT_LITERAL_PATHSPECS", "1")
        .args(["ls-files", "--error-unmatch", "--"])
        .arg(path);
    Ok(run(cmd)?.ok)
}

/// Refuses a data directory that lies inside a git work tree unless git ignores
/// it: it holds the signing key, which `git add -A` would otherwise commit. Asks
/// git itself (`check-ignore`, plumbing, hooks off), so every ignore source counts.
pub fn check_data_dir_ignored(data: &Path) -> Result<(), EngineError> {
    // The data directory may not exist yet: start from its nearest existing ancestor.
    let mut existing = data.to_path_buf();
    let mut missing = Vec::new();
    while std::fs::symlink_metadata(&existing).is_err() {
        let Some(name) = existing.file_name() else {
            return Ok(());
        };
        missing.push(name.to_owned());
        if !existing.pop() {
            return Ok(());
        }
    }
    let Ok(existing) = std::fs::canonicalize(&existing) else {
        return Ok(());
    };
    if !existing.is_dir() {
        return Ok(());
    }
    let mut inside = git(&existing);
    inside.args(["rev-parse", "--is-inside-work-tree"]);
    let out = match run(inside) {
        // Without git on the machine nothing here can stage the directory.
        Err(EngineError::Spawn { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(());
        }
        other => other?,
    };
    if !out.ok || text(out.stdout) != "true" {
        // Not in a work tree (or inside a `.git` directory): nothing can stage it.
        return Ok(());
    }
    let top = top_level(&existing)?;
    let top = std::fs::canonicalize(&top).unwrap_or(top);
    let mut full = existing.clone();
    for name in missing.iter().rev() {
        full.push(name);
    }
    let rel = full
        .strip_prefix(&top)
        .unwrap_or(Path::new(""))
        .to_path_buf();
    let refuse = || EngineError::DataDirNotIgnored {
        data: data.to_path_buf(),
        top: top.clone(),
        entry: format!("/{}/", rel.display()),
    };
    if rel.as_os_str().is_empty() {
        // The data directory is the work tree itself: nothing can ignore it.
        return Err(refuse());
    }
    let mut check = git(&top);
    // The trailing `/` lets a directory pattern (`.cairn/`) match a directory that
    // does not exist yet.
    let mut arg = rel.clone().into_os_string();
    arg.push("/");
    // (check-ignore takes plain paths, no pathspec magic.)
    check
        .args(["check-ignore", "-q", "--"])
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let out = check.output().map_err(|source| EngineError::Spawn {
        program: "git",
        source,
    })?;
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(refuse()),
        _ => Err(EngineError::Git {
            what: "check-ignore",
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        }),
    }
}
