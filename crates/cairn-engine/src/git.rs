//! Reading the app's repository with the `git` program: the top level, exact
//! commits, files at a commit, and the materialisation of a commit's tree. Only
//! plumbing commands; repository hooks and fsmonitor are disabled, so reading a
//! repository never runs code from it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::EngineError;

/// The most a config file read from git may be; more is refused.
const MAX_BLOB_BYTES: usize = cairn_model::config::MAX_CONFIG_BYTES + 1;

/// Settings given on git's command line, which outrank the repository's own
/// `.git/config`: everything a repository's config could use to make a host-side
/// git run a program (hooks, fsmonitor, signature verification, ssh, credential
/// helpers, proxies, other transports) is set to a harmless value here. Filters,
/// attributes and LFS are not listed because cairn never runs a git command that
/// applies them: trees are written from `cat-file --batch`'s objects.
const SAFE_CONFIG: &[&str] = &[
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "core.sshCommand=ssh",
    "core.askPass=",
    "core.pager=cat",
    "core.alternateRefsCommand=",
    "credential.helper=",
    "log.showSignature=false",
    // Nothing cairn commits (remediation branches, the GitOps repository) is
    // signed with a program a repository's config names.
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    // A work tree cairn writes (the GitOps repository's `read-tree -u`) gets the
    // blob's bytes and modes: no line-ending conversion, symlinks as symlinks.
    "core.autocrlf=false",
    "core.symlinks=true",
    "gc.auto=0",
    "maintenance.auto=false",
    "fetch.recurseSubmodules=false",
    "submodule.recurse=false",
    // A protocol's own setting outranks `protocol.allow`, so the ones that run
    // commands are refused by name too (a repository could allow them).
    "protocol.allow=never",
    "protocol.ext.allow=never",
    "protocol.fd.allow=never",
    "protocol.file.allow=always",
    "protocol.https.allow=always",
    "protocol.http.allow=always",
    "protocol.ssh.allow=always",
];

/// Environment variables that would point git somewhere other than the
/// repository it was given, or add configuration cairn did not choose.
const GIT_ENV_REMOVED: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_ATTR_SOURCE",
    "GIT_EXTERNAL_DIFF",
    "GIT_PAGER",
    "GIT_EXEC_PATH",
    "GIT_TEMPLATE_DIR",
    // A commit cairn makes is dated now, never by the caller's environment.
    "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_DATE",
];

/// THE `git` command builder: every host-side git command (here and in
/// `deploy::gitops`) starts from it. A `git -C dir` safe to run on a repository
/// cairn does not trust: no system or global config, [`SAFE_CONFIG`] over the
/// repository's, pathspecs literal, no prompts, no optional locks, none of the
/// caller's `GIT_*` redirections or commit dates, and stdin closed.
pub(crate) fn command(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir);
    for setting in SAFE_CONFIG {
        cmd.args(["-c", setting]);
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_LFS_SKIP_SMUDGE", "1")
        .env("GIT_NO_REPLACE_OBJECTS", "1")
        .env("GIT_LITERAL_PATHSPECS", "1");
    for var in GIT_ENV_REMOVED {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn git(dir: &Path) -> Command {
    command(dir)
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
pub(crate) fn top_level(dir: &Path) -> Result<PathBuf, EngineError> {
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
pub(crate) fn resolve_commit(repo: &Path, rev: &str) -> Result<String, EngineError> {
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
pub(crate) fn has_commit(repo: &Path, commit: &str) -> bool {
    resolve_commit(repo, commit).is_ok_and(|id| id == commit)
}

/// Fetches `branch` from the repository's `origin` remote (no tags, hooks off,
/// no prompts), waiting at most `limit`. A repository without `origin` is an
/// error saying so.
pub(crate) fn fetch_branch(
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
        // A repository's `remote.origin.uploadpack` is a command git would run;
        // the flag outranks it (a `-c` would not: the first value wins there).
        "--upload-pack=git-upload-pack",
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
pub(crate) struct CommitInfo {
    pub author: String,
    pub committer: String,
    pub subject: String,
    /// Committer time, seconds since the epoch: the build's SOURCE_DATE_EPOCH.
    pub time: i64,
    pub tree: String,
}

pub(crate) fn commit_info(repo: &Path, commit: &str) -> Result<CommitInfo, EngineError> {
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
pub(crate) fn prefix(dir: &Path) -> Result<String, EngineError> {
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

/// The names of the entries directly in `prefix` (the app's directory, `""`
/// for the root, else ending in `/`) at `commit`: at most `max` of them.
pub(crate) fn names_at(
    repo: &Path,
    commit: &str,
    prefix: &str,
    max: usize,
) -> Result<Vec<String>, EngineError> {
    let spec = match prefix.trim_end_matches('/') {
        "" => commit.to_owned(),
        dir => format!("{commit}:{dir}"),
    };
    let mut cmd = git(repo);
    cmd.args(["ls-tree", "--name-only", "-z", &spec]);
    let out = run(cmd)?;
    if !out.ok {
        return Err(EngineError::Git {
            what: "ls-tree",
            stderr: out.stderr,
        });
    }
    Ok(out
        .stdout
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .take(max)
        .filter_map(|n| std::str::from_utf8(n).ok().map(str::to_owned))
        .collect())
}

/// The full commit id `rev` names and `path`'s contents at that commit (`None`
/// when the commit has no such file), read by one `git cat-file --batch`: the
/// commit asked for first, then the file at the id it answered (what
/// `rev-parse --verify` and three `cat-file` calls did). A file larger than
/// [`MAX_BLOB_BYTES`] is not read: a placeholder of that size is returned for
/// the config parser to refuse with its own message.
pub(crate) fn commit_and_file(
    repo: &Path,
    rev: &str,
    path: &str,
) -> Result<(String, Option<Vec<u8>>), EngineError> {
    use std::io::{BufReader, Read, Write};
    let unknown = || EngineError::UnknownCommit {
        rev: rev.to_owned(),
        repo: repo.to_path_buf(),
    };
    if rev.is_empty() || rev.starts_with('-') || rev.contains(['\0', '\n', ':']) || rev.len() > 256
    {
        return Err(unknown());
    }
    let failed = |stderr: String| EngineError::Git {
        what: "cat-file",
        stderr,
    };
    // One object name per line: a path with a line break cannot be asked for.
    if path.contains(['\0', '\n']) {
        return Err(failed(format!("cannot read {path:?}: it has a line break")));
    }
    let mut child = cat_file_batch(repo)?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(failed("git cat-file has no pipes".to_owned()));
    };
    let mut out = BufReader::new(stdout);
    // One answer's header, `<id> <type> <size>` (or `<name> missing`).
    let header = |out: &mut BufReader<_>| {
        batch_header(out, 512).map_err(|e| failed(format!("git cat-file --batch: {e}")))
    };
    let result = (|| {
        // The commit: asked for alone, its answer read whole before the file.
        writeln!(stdin, "{rev}^{{commit}}")
            .and_then(|()| stdin.flush())
            .map_err(|e| failed(format!("git cat-file --batch: {e}")))?;
        let commit = match header(&mut out)?.as_slice() {
            [id, kind, size]
                if kind == "commit"
                    && id.len() >= 40
                    && id.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                let size: u64 = size.parse().map_err(|_| unknown())?;
                // Its content and the newline after it, not needed here.
                let skipped = std::io::copy(&mut out.by_ref().take(size + 1), &mut std::io::sink())
                    .map_err(|e| failed(format!("git cat-file --batch: {e}")))?;
                if skipped != size + 1 {
                    return Err(failed("git cat-file --batch: a short commit".to_owned()));
                }
                id.to_ascii_lowercase()
            }
            _ => return Err(unknown()),
        };
        writeln!(stdin, "{commit}:{path}")
            .and_then(|()| stdin.flush())
            .map_err(|e| failed(format!("git cat-file --batch: {e}")))?;
        let file = match header(&mut out)?.as_slice() {
            [_, missing] if missing == "missing" => None,
            [_, kind, size] if kind == "blob" => {
                let size: usize = size.parse().unwrap_or(usize::MAX);
                if size > MAX_BLOB_BYTES {
                    // Let the config parser refuse it with its own message, without reading it all.
                    Some(vec![b'#'; MAX_BLOB_BYTES])
                } else {
                    let mut bytes = vec![0; size];
                    out.read_exact(&mut bytes)
                        .map_err(|e| failed(format!("git cat-file --batch: {e}")))?;
                    Some(bytes)
                }
            }
            other => {
                return Err(failed(format!(
                    "{commit}:{path} is not a file (git cat-file --batch: {})",
                    other.join(" ")
                )));
            }
        };
        Ok((commit, file))
    })();
    drop(stdin);
    // Whatever it has not written yet is not needed.
    drop(out);
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// The longest symlink target a tree may hold (Linux's `PATH_MAX`).
const MAX_LINK_TARGET: u64 = 4096;

/// The most entries a materialised tree may hold (every file, link and directory).
const MAX_TREE_ENTRIES: usize = 1 << 20;
/// The deepest a materialised tree may nest (git's own `core.maxTreeDepth`).
const MAX_TREE_DEPTH: usize = 4096;
/// The largest tree object read (one directory's listing).
const MAX_TREE_BYTES: u64 = 64 << 20;
/// The most all of a materialised tree's tree objects may be together.
const MAX_TREES_BYTES: u64 = 256 << 20;
/// The most tree requests written to `git cat-file --batch` before their
/// answers are read: one page, which every pipe holds (a pipe shrinks to its
/// minimum when its user has too many).
const REQUEST_BATCH_BYTES: usize = 4096;

/// One entry of a tree, as `git ls-tree -r -t` would list it: its path from the
/// materialised root, what it is, and its object.
struct Listed {
    path: Vec<u8>,
    kind: EntryKind,
    object: String,
}

/// What cairn writes for an entry: git's own modes, nothing else.
#[derive(Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    Dir,
    File {
        mode: libc::mode_t,
    },
    Symlink,
    /// A submodule: an empty directory, as a clone without
    /// `--recurse-submodules` leaves it. Its commit is never fetched.
    Submodule,
}

/// What git makes of a tree entry's mode (its `canon_mode`): a regular file is
/// 0644 or, with the owner's execute bit, 0755; anything neither a file, a
/// symlink nor a directory is a submodule.
fn entry_kind(mode: u32) -> EntryKind {
    match mode & 0o170_000 {
        0o100_000 => EntryKind::File {
            mode: if mode & 0o100 != 0 { 0o755 } else { 0o644 },
        },
        0o120_000 => EntryKind::Symlink,
        0o040_000 => EntryKind::Dir,
        _ => EntryKind::Submodule,
    }
}

/// One raw entry at the start of a tree object's `bytes` (`<octal mode> SP <name>
/// NUL <id of id_len bytes>`): its mode, name, hex id and length.
fn raw_entry(bytes: &[u8], id_len: usize) -> Option<(u32, &[u8], String, usize)> {
    let space = bytes.iter().take(8).position(|&b| b == b' ')?;
    let digits = &bytes[..space];
    if digits.is_empty() || !digits.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return None;
    }
    let mode = digits
        .iter()
        .fold(0u32, |mode, d| (mode << 3) | u32::from(d - b'0'));
    let rest = &bytes[space + 1..];
    let nul = rest.iter().position(|&b| b == 0)?;
    let id = rest.get(nul + 1..nul + 1 + id_len)?;
    let hex = id.iter().map(|b| format!("{b:02x}")).collect();
    Some((mode, &rest[..nul], hex, space + 1 + nul + 1 + id_len))
}

/// One answer's header from a `git cat-file --batch` (`<id> <type> <size>`, or
/// `<name> missing`), split at whitespace; at most `limit` bytes of it are read.
fn batch_header(out: &mut impl std::io::BufRead, limit: u64) -> std::io::Result<Vec<String>> {
    use std::io::{BufRead, Read};
    let mut line = Vec::new();
    out.take(limit).read_until(b'\n', &mut line)?;
    Ok(String::from_utf8_lossy(&line)
        .split_whitespace()
        .map(str::to_owned)
        .collect())
}

/// Reads the answer to a request for the tree `name` from a `git cat-file
/// --batch`: expects `expected` as its id when given, and returns the id and the
/// tree's bytes.
fn read_tree(
    out: &mut impl std::io::BufRead,
    name: &str,
    expected: Option<&str>,
    refuse: &dyn Fn(String) -> EngineError,
) -> Result<(String, Vec<u8>), EngineError> {
    use std::io::Read;
    let broken = |e: std::io::Error| refuse(format!("git cat-file --batch: {e}"));
    let fields = batch_header(out, 512).map_err(broken)?;
    let header = fields.join(" ");
    let (id, size) = match fields.as_slice() {
        [id, kind, size]
            if kind == "tree"
                && (id.len() == 40 || id.len() == 64)
                && id.bytes().all(|b| b.is_ascii_hexdigit())
                && expected.is_none_or(|e| e.eq_ignore_ascii_case(id)) =>
        {
            (id.to_ascii_lowercase(), size)
        }
        [_, missing] if missing == "missing" => {
            return Err(refuse(format!("{name} is not in the repository")));
        }
        _ => {
            return Err(refuse(format!(
                "{name} is not a tree (git cat-file --batch: {header})"
            )));
        }
    };
    let size: u64 = size
        .parse()
        .map_err(|_| refuse(format!("git cat-file --batch: a bad size in {header:?}")))?;
    if size > MAX_TREE_BYTES {
        return Err(refuse(format!(
            "tree {id} is {size} bytes, more than the {MAX_TREE_BYTES} a directory may list"
        )));
    }
    let mut bytes = Vec::with_capacity(size as usize + 1);
    out.take(size + 1).read_to_end(&mut bytes).map_err(broken)?;
    if bytes.len() as u64 != size + 1 || bytes.pop() != Some(b'\n') {
        return Err(refuse(format!(
            "git cat-file --batch: tree {id} ended early"
        )));
    }
    Ok((id, bytes))
}

/// Each entry of a tree object's `bytes` (ids of `id_len` bytes), in order: its
/// mode, name and hex id.
fn tree_entries(
    bytes: &[u8],
    id_len: usize,
    tree: &str,
    refuse: &dyn Fn(String) -> EngineError,
) -> Result<Vec<(u32, Vec<u8>, String)>, EngineError> {
    let mut entries = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let (mode, name, id, used) = raw_entry(&bytes[at..], id_len)
            .ok_or_else(|| refuse(format!("tree {tree} is a malformed tree object")))?;
        entries.push((mode, name.to_vec(), id));
        at += used;
    }
    Ok(entries)
}

/// Every entry below the tree `root` names, in `git ls-tree -r -t`'s order (a
/// directory before what it holds), from one `git cat-file --batch`: the trees
/// one level at a time (a level's trees asked for in batches of
/// [`REQUEST_BATCH_BYTES`], each distinct tree read once), then listed from
/// memory. Bounded: [`MAX_TREE_ENTRIES`]
/// entries, [`MAX_TREE_DEPTH`] levels, [`MAX_TREE_BYTES`] a tree and
/// [`MAX_TREES_BYTES`] all of them.
fn walk_tree(
    stdin: &mut impl std::io::Write,
    out: &mut impl std::io::BufRead,
    root: &str,
    refuse: &dyn Fn(String) -> EngineError,
) -> Result<Vec<Listed>, EngineError> {
    use std::collections::{HashMap, HashSet};
    let broken = |e: std::io::Error| refuse(format!("git cat-file --batch: {e}"));
    writeln!(stdin, "{root}")
        .and_then(|()| stdin.flush())
        .map_err(broken)?;
    let (root_id, bytes) = read_tree(out, root, None, refuse)?;
    // The object format's id size: SHA-1's 20 bytes or SHA-256's 32.
    let id_len = root_id.len() / 2;
    let mut total = bytes.len() as u64;
    let mut trees: HashMap<String, Vec<(u32, Vec<u8>, String)>> = HashMap::new();
    trees.insert(
        root_id.clone(),
        tree_entries(&bytes, id_len, &root_id, refuse)?,
    );
    let subtrees = |entries: &[(u32, Vec<u8>, String)]| -> Vec<String> {
        entries
            .iter()
            .filter(|(mode, _, _)| entry_kind(*mode) == EntryKind::Dir)
            .map(|(_, _, id)| id.clone())
            .collect()
    };
    let mut level = subtrees(&trees[&root_id]);
    let mut depth = 1;
    while !level.is_empty() {
        let mut asked = HashSet::new();
        level.retain(|id| !trees.contains_key(id) && asked.insert(id.clone()));
        if level.is_empty() {
            break;
        }
        if depth == MAX_TREE_DEPTH {
            return Err(refuse(format!(
                "the tree nests deeper than {MAX_TREE_DEPTH} directories"
            )));
        }
        // Asked for in batches that any pipe holds whole, each batch's answers
        // read before the next is written: the write never waits for git, and
        // a refused answer returns at once, with nothing left writing (git
        // is killed by the caller).
        let per_batch = (REQUEST_BATCH_BYTES / (2 * id_len + 1)).max(1);
        let mut read = Vec::with_capacity(level.len());
        for batch in level.chunks(per_batch) {
            let mut requests = Vec::with_capacity(batch.len() * (2 * id_len + 1));
            for id in batch {
                requests.extend_from_slice(id.as_bytes());
                requests.push(b'\n');
            }
            stdin
                .write_all(&requests)
                .and_then(|()| stdin.flush())
                .map_err(broken)?;
            for id in batch {
                read.push(read_tree(out, id, Some(id), refuse)?);
            }
        }
        let mut next = Vec::new();
        for (id, bytes) in read {
            total += bytes.len() as u64;
            if total > MAX_TREES_BYTES {
                return Err(refuse(format!(
                    "the trees are more than {MAX_TREES_BYTES} bytes together"
                )));
            }
            let entries = tree_entries(&bytes, id_len, &id, refuse)?;
            next.extend(subtrees(&entries));
            trees.insert(id, entries);
        }
        level = next;
        depth += 1;
    }

    // Listed from memory, depth first in each tree's own order.
    let mut listed = Vec::new();
    // The trees being listed: the path of their entries, their id, how far listed.
    let mut open: Vec<(Vec<u8>, &str, usize)> = vec![(Vec::new(), &root_id, 0)];
    while let Some((prefix, tree, at)) = open.last_mut() {
        let Some((mode, name, object)) = trees[*tree].get(*at) else {
            open.pop();
            continue;
        };
        *at += 1;
        let mut path = prefix.clone();
        path.extend_from_slice(name);
        if bad_name(name) {
            return Err(refuse(format!(
                "the tree has a path git would not check out: {}",
                String::from_utf8_lossy(&path).escape_debug()
            )));
        }
        if listed.len() == MAX_TREE_ENTRIES {
            return Err(refuse(format!(
                "the tree has more than {MAX_TREE_ENTRIES} entries"
            )));
        }
        let kind = entry_kind(*mode);
        if kind == EntryKind::Dir {
            let mut below = path.clone();
            below.push(b'/');
            open.push((below, object, 0));
        }
        listed.push(Listed {
            path,
            kind,
            object: object.clone(),
        });
    }
    Ok(listed)
}

/// A name git itself would refuse to check out: empty, `.`, `..`, `.git` in any
/// case, or one holding a `/` or NUL.
fn bad_name(name: &[u8]) -> bool {
    name.is_empty()
        || name == b"."
        || name == b".."
        || name.eq_ignore_ascii_case(b".git")
        || name.contains(&b'/')
        || name.contains(&0)
}

fn c_name(name: &[u8]) -> std::ffi::CString {
    // `bad_name` refused NUL already.
    std::ffi::CString::new(name).unwrap_or_default()
}

fn os_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Opens the directory `name` under `parent` without following a symlink.
fn open_dir_at(
    parent: libc::c_int,
    name: &std::ffi::CStr,
) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: a plain openat(2) on a descriptor we own; the result is checked.
    let fd = unsafe {
        libc::openat(
            parent,
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Writes the tree of `commit` under `prefix` into `dest` (an existing, empty
/// directory): exactly the committed bytes and git's modes, nothing from the
/// work tree.
///
/// The trees and their blobs are read with one `git cat-file --batch` (the
/// trees one by one, [`walk_tree`], then every blob in one stream), and cairn
/// writes the files itself, so no attribute
/// (`export-ignore`, `export-subst`, `eol`, `text`), filter driver, LFS, hook or
/// fsmonitor of the repository takes part (`git archive` applies all of the
/// former). Every file is created relative to a directory descriptor cairn made
/// in this call, with `O_NOFOLLOW | O_EXCL`: a symlink is written as a symlink
/// and never followed, and a tree that names one path twice, or a path under a
/// symlink, `..` or `.git`, is refused. Submodules become empty directories.
pub(crate) fn materialise(
    repo: &Path,
    commit: &str,
    prefix: &str,
    dest: &Path,
) -> Result<(), EngineError> {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    let refuse = |why: String| EngineError::Git {
        what: "materialise",
        stderr: why,
    };
    let tree = if prefix.is_empty() {
        format!("{commit}^{{tree}}")
    } else {
        format!("{commit}:{}", prefix.trim_end_matches('/'))
    };
    // One cat-file: the trees first, one at a time, then every blob, in the order
    // the walk below needs them.
    let mut child = cat_file_batch(repo)?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(refuse("git cat-file has no pipes".into()));
    };
    let mut blobs = BufReader::with_capacity(64 << 10, stdout);
    let entries = match walk_tree(&mut stdin, &mut blobs, &tree, &refuse) {
        Ok(entries) => entries,
        Err(e) => {
            drop(stdin);
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let mut ids = Vec::new();
    for entry in &entries {
        if matches!(entry.kind, EntryKind::File { .. } | EntryKind::Symlink) {
            ids.extend_from_slice(entry.object.as_bytes());
            ids.push(b'\n');
        }
    }
    // A write error shows up as a short read below.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&ids);
    });
    let feeder = Some(feeder);

    let result = (|| -> Result<(), EngineError> {
        let root = std::ffi::CString::new(dest.as_os_str().as_encoded_bytes())
            .map_err(|_| refuse(format!("{} has a NUL byte", dest.display())))?;
        let root = open_dir_at(libc::AT_FDCWD, &root).map_err(EngineError::io("open", dest))?;
        // The directories from the root down to the current entry's parent.
        let mut stack: Vec<(Vec<u8>, OwnedFd)> = vec![(Vec::new(), root)];
        for entry in &entries {
            let (kind, path) = (&entry.kind, entry.path.as_slice());
            let shown = || String::from_utf8_lossy(path).escape_debug().to_string();
            let (parent, name) = match path.iter().rposition(|&b| b == b'/') {
                Some(i) => (&path[..i], &path[i + 1..]),
                None => (&path[..0], path),
            };
            if bad_name(name)
                || parent
                    .split(|&b| b == b'/')
                    .any(|c| !parent.is_empty() && bad_name(c))
            {
                return Err(refuse(format!(
                    "the tree has a path git would not check out: {}",
                    shown()
                )));
            }
            while stack.last().is_some_and(|(p, _)| p.as_slice() != parent) {
                stack.pop();
            }
            let Some((_, dir)) = stack.last() else {
                return Err(refuse(format!(
                    "{} is not inside a directory of the tree (a symlink, a file or a submodule is in its path)",
                    shown()
                )));
            };
            let dir = dir.as_raw_fd();
            let cname = c_name(name);
            let exists = |e: std::io::Error| {
                if e.raw_os_error() == Some(libc::EEXIST) {
                    refuse(format!("the tree names {} twice", shown()))
                } else {
                    EngineError::io(
                        "write",
                        dest.join(
                            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(path),
                        ),
                    )(e)
                }
            };
            match kind {
                EntryKind::Dir | EntryKind::Submodule => {
                    // SAFETY: mkdirat(2) on a descriptor we own; the result is checked.
                    if unsafe { libc::mkdirat(dir, cname.as_ptr(), 0o755) } != 0 {
                        return Err(exists(os_error()));
                    }
                    let fd = open_dir_at(dir, &cname).map_err(exists)?;
                    // SAFETY: fchmod(2) on a descriptor we own.
                    if unsafe { libc::fchmod(fd.as_raw_fd(), 0o755) } != 0 {
                        return Err(exists(os_error()));
                    }
                    if *kind == EntryKind::Dir {
                        stack.push((path.to_vec(), fd));
                    }
                }
                EntryKind::File { .. } | EntryKind::Symlink => {
                    let size = blob_header(&mut blobs, &entry.object).map_err(refuse)?;
                    if let EntryKind::File { mode } = *kind {
                        // SAFETY: openat(2) relative to a directory we own, creating a
                        // new file only (O_EXCL) and never through a symlink.
                        let fd = unsafe {
                            libc::openat(
                                dir,
                                cname.as_ptr(),
                                libc::O_WRONLY
                                    | libc::O_CREAT
                                    | libc::O_EXCL
                                    | libc::O_NOFOLLOW
                                    | libc::O_CLOEXEC,
                                mode as libc::c_uint,
                            )
                        };
                        if fd < 0 {
                            return Err(exists(os_error()));
                        }
                        // SAFETY: `fd` is fresh and owned by nobody else.
                        let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
                        // SAFETY: fchmod(2) on a descriptor we own: git's mode, whatever the umask.
                        if unsafe { libc::fchmod(fd, mode) } != 0 {
                            return Err(exists(os_error()));
                        }
                        let copied = std::io::copy(&mut (&mut blobs).take(size), &mut file)
                            .map_err(exists)?;
                        if copied != size {
                            return Err(refuse(format!("{}: git cat-file ended early", shown())));
                        }
                    } else {
                        if size == 0 || size > MAX_LINK_TARGET {
                            return Err(refuse(format!(
                                "{}: a symlink target of {size} bytes",
                                shown()
                            )));
                        }
                        let mut target = Vec::new();
                        (&mut blobs)
                            .take(size)
                            .read_to_end(&mut target)
                            .map_err(|e| refuse(e.to_string()))?;
                        if target.len() as u64 != size || target.contains(&0) {
                            return Err(refuse(format!("{}: a bad symlink target", shown())));
                        }
                        let target = c_name(&target);
                        // SAFETY: symlinkat(2) creates the link itself (it never follows
                        // one) in a directory we own; the result is checked.
                        if unsafe { libc::symlinkat(target.as_ptr(), dir, cname.as_ptr()) } != 0 {
                            return Err(exists(os_error()));
                        }
                    }
                    let mut newline = [0u8; 1];
                    blobs
                        .read_exact(&mut newline)
                        .map_err(|e| refuse(e.to_string()))?;
                    if newline != *b"\n" {
                        return Err(refuse("git cat-file --batch: a malformed answer".into()));
                    }
                }
            }
        }
        // Nothing more may follow.
        if !blobs
            .fill_buf()
            .map_err(|e| refuse(e.to_string()))?
            .is_empty()
        {
            return Err(refuse(
                "git cat-file --batch: more output than asked for".into(),
            ));
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = child.kill();
    }
    drop(blobs);
    let _ = child.wait();
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    result
}

/// Reads the header `git cat-file --batch` writes before a blob and returns
/// the blob's size.
fn blob_header(blobs: &mut impl std::io::BufRead, object: &str) -> Result<u64, String> {
    let fields = batch_header(blobs, 256).map_err(|e| format!("git cat-file --batch: {e}"))?;
    let header = fields.join(" ");
    match fields.as_slice() {
        [id, kind, size] if kind == "blob" && id == object => size
            .parse()
            .map_err(|_| format!("git cat-file --batch: a bad size in {header:?}")),
        _ => Err(format!(
            "git cat-file --batch: expected blob {object}, got {header:?}"
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sh(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
        let mut child = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=T", "-c", "user.email=t@example.invalid"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        // Written beside the read: git may answer before it has read it all.
        let out = std::thread::scope(|scope| {
            scope.spawn(move || {
                if let Some(bytes) = stdin {
                    input.write_all(bytes).unwrap();
                }
            });
            child.wait_with_output().unwrap()
        });
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The one builder (`command`, which `deploy::gitops` uses too) holds the
    /// union of both former hardenings: whatever a hostile repository's own
    /// config says, git sees cairn's value for every setting that could run a
    /// program, sign with one, rewrite bytes or reach another transport.
    #[test]
    fn the_one_builder_outranks_a_hostile_repository_config() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = init_repo(tmp.path());
        let evil = "!touch /tmp/cairn-owned";
        let settings = [
            ("core.fsmonitor", evil, "false"),
            ("core.hooksPath", "/tmp/evil-hooks", "/dev/null"),
            ("core.sshCommand", evil, "ssh"),
            ("core.pager", evil, "cat"),
            ("credential.helper", evil, ""),
            ("commit.gpgSign", "true", "false"),
            ("tag.gpgSign", "true", "false"),
            ("core.autocrlf", "true", "false"),
            ("core.symlinks", "false", "true"),
            ("protocol.ext.allow", "always", "never"),
            ("protocol.fd.allow", "always", "never"),
            ("protocol.allow", "always", "never"),
            ("gc.auto", "1", "0"),
        ];
        for (key, hostile, _) in settings {
            sh(&repo, &["config", key, hostile], None);
        }
        for (key, _, safe) in settings {
            let out = command(&repo)
                .args(["config", "--get", key])
                .output()
                .unwrap();
            let got = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
            println!("{key}: repository says something else, git sees `{got}`");
            assert_eq!(got, safe, "{key}");
        }
        // Pathspecs are literal: a glob names no file.
        std::fs::write(repo.join("a.txt"), "a").unwrap();
        sh(&repo, &["add", "a.txt"], None);
        assert!(is_tracked(&repo, "a.txt").unwrap());
        assert!(!is_tracked(&repo, "*.txt").unwrap());
    }

    /// The builder's literal pathspecs must not break `check-ignore` (which
    /// refuses every pathspec magic): a data directory inside a work tree is
    /// accepted when ignored and refused, naming the line to add, when not.
    #[test]
    fn the_data_dir_check_works_through_the_builder() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = init_repo(tmp.path());
        let data = repo.join(".cairn");
        let err = check_data_dir_ignored(&data).unwrap_err().to_string();
        println!("not ignored: {err}");
        assert!(err.contains("/.cairn/"), "{err}");
        std::fs::write(repo.join(".gitignore"), ".cairn/\n").unwrap();
        check_data_dir_ignored(&data).unwrap();
    }

    /// git is asked only where its discovery could find a repository: a data
    /// directory with no `.git` above it spawns none; below a work tree, a
    /// `.git` file (a linked work tree) or inside a bare repository (whose
    /// `core.worktree` may name a work tree) it does.
    #[test]
    fn the_data_dir_check_asks_git_only_below_a_repository() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let plain = root.join("plain/data");
        std::fs::create_dir_all(&plain).unwrap();
        assert!(!may_be_in_a_repository(&plain));
        check_data_dir_ignored(&plain.join("new")).unwrap();

        let repo = root.join("repo");
        std::fs::create_dir(&repo).unwrap();
        sh(&repo, &["init", "-q"], None);
        std::fs::create_dir_all(repo.join("deep/down")).unwrap();
        assert!(may_be_in_a_repository(&repo.join("deep/down")));
        let err = check_data_dir_ignored(&repo.join("deep/down/.cairn"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/deep/down/.cairn/"), "{err}");

        let linked = root.join("linked");
        std::fs::create_dir(&linked).unwrap();
        std::fs::write(linked.join(".git"), "gitdir: /nowhere\n").unwrap();
        assert!(may_be_in_a_repository(&linked));

        let bare = root.join("bare.git");
        std::fs::create_dir(&bare).unwrap();
        sh(&bare, &["init", "-q", "--bare"], None);
        std::fs::create_dir_all(bare.join("data")).unwrap();
        assert!(may_be_in_a_repository(&bare.join("data")));
    }

    fn id(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap().trim().to_owned()
    }

    /// A raw tree object, written without git's checks (as an attacker could).
    fn raw_tree(repo: &Path, entries: &[(&str, &str, &str)]) -> String {
        let mut raw = Vec::new();
        for (mode, name, object) in entries {
            raw.extend_from_slice(format!("{mode} {name}\0").as_bytes());
            let hex = object.as_bytes();
            for pair in hex.chunks(2) {
                raw.push(u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap());
            }
        }
        id(sh(
            repo,
            &["hash-object", "-t", "tree", "--literally", "-w", "--stdin"],
            Some(&raw),
        ))
    }

    fn commit_of(repo: &Path, tree: &str) -> String {
        id(sh(repo, &["commit-tree", tree, "-m", "crafted"], None))
    }

    /// A fresh repository at `dir/repo`.
    fn init_repo(dir: &Path) -> PathBuf {
        let repo = dir.join("repo");
        std::fs::create_dir(&repo).unwrap();
        sh(&repo, &["init", "-q"], None);
        repo
    }

    /// The permission bits of `path`, not following a symlink.
    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    fn blob(repo: &Path, bytes: &[u8]) -> String {
        id(sh(repo, &["hash-object", "-w", "--stdin"], Some(bytes)))
    }

    /// One `cat-file --batch` answers what `rev-parse --verify` and three
    /// `cat-file` calls did: the commit a rev names (peeled from a tag), the
    /// file's committed bytes, `None` for no such file, and refusals for an
    /// unknown rev, an option-like one, a tree, and a file past the bound
    /// (a placeholder, never read whole).
    #[test]
    fn one_batch_reads_the_commit_and_its_file() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(repo.join("app")).unwrap();
        sh(&repo, &["init", "-q"], None);
        std::fs::write(repo.join("app/cairn.toml"), b"[workload]\nname = \"a\"\n").unwrap();
        let big = vec![b'x'; MAX_BLOB_BYTES + 10];
        std::fs::write(repo.join("big.toml"), &big).unwrap();
        sh(&repo, &["add", "."], None);
        sh(&repo, &["commit", "-q", "-m", "one"], None);
        sh(&repo, &["tag", "-a", "-m", "t", "v1"], None);
        let head = text(sh(&repo, &["rev-parse", "HEAD"], None));

        for rev in ["HEAD", "v1", "main~0", &head[..12], &head] {
            if rev == "main~0" && sh(&repo, &["branch", "--show-current"], None) != b"main\n" {
                continue;
            }
            let (commit, file) = commit_and_file(&repo, rev, "app/cairn.toml").unwrap();
            assert_eq!(commit, head, "{rev}");
            assert_eq!(file.unwrap(), b"[workload]\nname = \"a\"\n", "{rev}");
        }
        let (_, none) = commit_and_file(&repo, "HEAD", "cairn.toml").unwrap();
        assert!(none.is_none());
        let (_, placeholder) = commit_and_file(&repo, "HEAD", "big.toml").unwrap();
        assert_eq!(placeholder.unwrap(), vec![b'#'; MAX_BLOB_BYTES]);
        let tree = commit_and_file(&repo, "HEAD", "app").unwrap_err();
        println!("a tree: {tree}");
        assert!(matches!(tree, EngineError::Git { .. }), "{tree:?}");
        for rev in [
            "nope",
            "--output=x",
            "HEAD^{tree}",
            "HEAD:app",
            "v1\nHEAD",
            "",
        ] {
            let err = commit_and_file(&repo, rev, "app/cairn.toml").unwrap_err();
            assert!(
                matches!(err, EngineError::UnknownCommit { .. }),
                "{rev}: {err:?}"
            );
        }
        let err = commit_and_file(&repo, "HEAD", "app/x\ny").unwrap_err();
        println!("a line break: {err}");
        assert!(matches!(err, EngineError::Git { .. }), "{err:?}");
    }

    /// The change's `rev-list` says of each commit what `commit_info` (`git
    /// show`) says of it: the source stage takes its commit's facts from the
    /// change instead of another process.
    #[test]
    fn the_change_says_of_each_commit_what_commit_info_says() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = init_repo(tmp.path());
        std::fs::write(repo.join("a"), b"a").unwrap();
        sh(&repo, &["add", "a"], None);
        sh(&repo, &["commit", "-q", "-m", "first"], None);
        std::fs::write(repo.join("a"), b"b").unwrap();
        sh(&repo, &["add", "a"], None);
        sh(
            &repo,
            &[
                "-c",
                "user.name=Zoë Ünïcode",
                "commit",
                "-q",
                "-m",
                "second: a subject\nwrapped\n\nand a body\nwith lines",
            ],
            None,
        );
        let head = text(sh(&repo, &["rev-parse", "HEAD"], None));
        let entries = change_entries(&repo, &head, &[], 256).unwrap();
        assert_eq!(entries.len(), 2);
        for e in &entries {
            let shown = commit_info(&repo, &e.commit).unwrap();
            println!("{}: {shown:?}", e.commit);
            assert_eq!(e.info(), shown);
        }
        assert_eq!(entries[0].commit, head);
        assert_eq!(entries[0].subject, "second: a subject wrapped");
    }

    #[test]
    fn the_committed_bytes_without_attributes_filters_or_hooks() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = init_repo(tmp.path());
        let marker = tmp.path().join("MARKER");
        let files: &[(&str, &[u8])] = &[
            (
                ".gitattributes",
                b"ignored.txt export-ignore\nsubst.txt export-subst\nfiltered.txt filter=x\n\
                  crlf.txt text eol=crlf\nlfs.bin filter=lfs diff=lfs merge=lfs -text\n",
            ),
            ("ignored.txt", b"export-ignore would drop me\n"),
            ("subst.txt", b"commit $Format:%H$\n"),
            ("filtered.txt", b"smudge would rewrite me\n"),
            ("crlf.txt", b"one\ntwo\n"),
            (
                "lfs.bin",
                b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n",
            ),
            ("dir/run.sh", b"#!/bin/sh\necho hi\n"),
        ];
        for (path, bytes) in files {
            let p = repo.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        std::os::unix::fs::symlink("../ignored.txt", repo.join("dir/link")).unwrap();
        sh(&repo, &["add", "-A"], None);
        sh(&repo, &["update-index", "--chmod=+x", "dir/run.sh"], None);
        let sub = blob(&repo, b"not really a commit");
        sh(
            &repo,
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("160000,{sub},vendored"),
            ],
            None,
        );
        sh(&repo, &["commit", "-q", "-m", "attributes"], None);
        // The attack: the repository's own config names programs for git to run.
        let run_marker = format!("sh -c 'echo ran >> {}'; cat", marker.display());
        for (key, value) in [
            ("filter.x.smudge", run_marker.as_str()),
            ("filter.x.process", run_marker.as_str()),
            ("filter.x.required", "true"),
            ("filter.lfs.smudge", run_marker.as_str()),
            ("filter.lfs.process", run_marker.as_str()),
            ("core.fsmonitor", run_marker.as_str()),
            ("core.hooksPath", tmp.path().to_str().unwrap()),
            ("log.showSignature", "true"),
            ("gpg.program", run_marker.as_str()),
            ("core.pager", run_marker.as_str()),
        ] {
            sh(&repo, &["config", key, value], None);
        }
        let commit = resolve_commit(&repo, "HEAD").unwrap();
        let info = commit_info(&repo, &commit).unwrap();
        assert_eq!(info.subject, "attributes");
        let dest = tmp.path().join("ws");
        std::fs::create_dir(&dest).unwrap();
        materialise(&repo, &commit, "", &dest).unwrap();

        assert!(!marker.exists(), "a repository program ran on the host");
        for (path, bytes) in files {
            assert_eq!(
                std::fs::read(dest.join(path)).unwrap(),
                *bytes,
                "{path} differs from the commit"
            );
        }
        let mode = |p: &str| mode_of(&dest.join(p));
        assert_eq!(mode("dir/run.sh"), 0o755);
        assert_eq!(mode("subst.txt"), 0o644);
        assert_eq!(
            std::fs::read_link(dest.join("dir/link")).unwrap(),
            Path::new("../ignored.txt")
        );
        let vendored = std::fs::symlink_metadata(dest.join("vendored")).unwrap();
        assert!(vendored.is_dir());
        assert_eq!(std::fs::read_dir(dest.join("vendored")).unwrap().count(), 0);

        // A subdirectory alone, as a monorepo's workload gets it.
        let only_dir = tmp.path().join("ws2");
        std::fs::create_dir(&only_dir).unwrap();
        materialise(&repo, &commit, "dir/", &only_dir).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(&only_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["link", "run.sh"]);
        assert!(!marker.exists(), "a repository program ran on the host");
    }

    #[test]
    fn a_crafted_tree_never_writes_through_a_symlink_or_outside() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = init_repo(tmp.path());
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let payload = blob(&repo, b"owned\n");
        let link = blob(&repo, outside.to_str().unwrap().as_bytes());
        let inner = raw_tree(&repo, &[("100644", "f", &payload)]);

        type Entries<'a> = Vec<(&'a str, &'a str, &'a str)>;
        let cases: Vec<(&str, Entries<'_>, &str)> = vec![
            // `a` is a symlink to a host directory and also a directory holding `f`.
            (
                "symlink then tree",
                vec![("120000", "a", &link), ("40000", "a", &inner)],
                "names a twice",
            ),
            // A name holding a `/` (git's fsck refuses it; `ls-tree -r` listed it
            // as a path under the symlink).
            (
                "a path under a symlink",
                vec![("120000", "a", &link), ("100644", "a/f", &payload)],
                "would not check out: a/f",
            ),
            (
                "tree then symlink",
                vec![("40000", "a", &inner), ("120000", "a", &link)],
                "names a twice",
            ),
            (
                "file twice",
                vec![("100644", "f", &payload), ("100644", "f", &payload)],
                "names f twice",
            ),
            (
                "dot dot",
                vec![("40000", "..", &inner)],
                "would not check out",
            ),
            (
                ".git",
                vec![("40000", ".GIT", &inner)],
                "would not check out",
            ),
        ];
        for (what, entries, reason) in cases {
            let commit = commit_of(&repo, &raw_tree(&repo, &entries));
            let dest = tmp.path().join(format!("ws-{}", what.replace(' ', "-")));
            std::fs::create_dir(&dest).unwrap();
            let err = materialise(&repo, &commit, "", &dest)
                .unwrap_err()
                .to_string();
            assert!(err.contains(reason), "{what}: {err}");
            assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "{what}");
        }
    }

    /// The tree is read object by object the way git reads it: modes made
    /// canonical as git makes them (`100664` a 0644 file, `100775` a 0755 one, an
    /// unknown type a submodule), nested directories in `ls-tree -r -t`'s order;
    /// a malformed mode, an entry that says tree but names a blob, and a prefix
    /// that is no tree are refused, naming what.
    #[test]
    fn trees_are_read_as_git_reads_them() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = init_repo(tmp.path());
        let data = blob(&repo, b"data\n");
        let deep = raw_tree(&repo, &[("100644", "leaf", &data)]);
        let middle = raw_tree(&repo, &[("40000", "c", &deep), ("100664", "g", &data)]);
        let top = raw_tree(
            &repo,
            &[
                ("40000", "a", &middle),
                // The same tree twice: read once, written in both places.
                ("40000", "b", &middle),
                ("100775", "run", &data),
                ("100664", "shared", &data),
                ("150000", "odd", &data),
            ],
        );
        let commit = commit_of(&repo, &top);
        let dest = tmp.path().join("ws");
        std::fs::create_dir(&dest).unwrap();
        materialise(&repo, &commit, "", &dest).unwrap();
        let mode = |p: &str| mode_of(&dest.join(p));
        assert_eq!(mode("run"), 0o755);
        assert_eq!(mode("shared"), 0o644);
        assert_eq!(mode("a/g"), 0o644);
        assert_eq!(std::fs::read(dest.join("a/c/leaf")).unwrap(), b"data\n");
        assert_eq!(std::fs::read(dest.join("b/c/leaf")).unwrap(), b"data\n");
        assert!(dest.join("odd").is_dir());
        // Every path git lists, and nothing else.
        let listed = sh(
            &repo,
            &["ls-tree", "-r", "-t", "--name-only", &commit],
            None,
        );
        let listed = String::from_utf8(listed).unwrap();
        let mut git_paths: Vec<&str> = listed.lines().collect();
        git_paths.sort_unstable();
        let mut written = Vec::new();
        let mut dirs = vec![dest.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path.clone());
                }
                let below = path.strip_prefix(&dest).unwrap();
                written.push(below.to_str().unwrap().to_owned());
            }
        }
        written.sort_unstable();
        assert_eq!(written, git_paths);
        assert_eq!(std::fs::read_dir(dest.join("odd")).unwrap().count(), 0);
        // A monorepo's directory, nested.
        let below = tmp.path().join("below");
        std::fs::create_dir(&below).unwrap();
        materialise(&repo, &commit, "a/", &below).unwrap();
        assert_eq!(std::fs::read(below.join("c/leaf")).unwrap(), b"data\n");

        let cases = [
            (
                raw_tree(&repo, &[("10x644", "f", &data)]),
                "",
                "malformed tree",
            ),
            (
                raw_tree(&repo, &[("40000", "d", &data)]),
                "",
                "is not a tree",
            ),
            (top.clone(), "run/", "is not a tree"),
            (top.clone(), "nothing/", "is not in the repository"),
        ];
        for (i, (tree, prefix, reason)) in cases.into_iter().enumerate() {
            let commit = commit_of(&repo, &tree);
            let dest = tmp.path().join(format!("bad-{i}"));
            std::fs::create_dir(&dest).unwrap();
            let err = materialise(&repo, &commit, prefix, &dest)
                .unwrap_err()
                .to_string();
            assert!(err.contains(reason), "{i}: {err}");
        }
    }

    /// A tree bomb (a directory of 1,100 entries that all name one directory
    /// of 1,100 files: two tree objects, 1.2 million paths) is refused at the
    /// bound, before anything is written (its two distinct trees read once).
    #[test]
    fn a_tree_bomb_is_refused_at_the_bound() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = init_repo(tmp.path());
        let data = blob(&repo, b"x");
        let names: Vec<String> = (0..1100).map(|i| format!("e{i:04}")).collect();
        let files: Vec<(&str, &str, &str)> = names
            .iter()
            .map(|n| ("100644", n.as_str(), data.as_str()))
            .collect();
        let leaf = raw_tree(&repo, &files);
        let dirs: Vec<(&str, &str, &str)> = names
            .iter()
            .map(|n| ("40000", n.as_str(), leaf.as_str()))
            .collect();
        let commit = commit_of(&repo, &raw_tree(&repo, &dirs));
        let dest = tmp.path().join("ws");
        std::fs::create_dir(&dest).unwrap();
        let err = materialise(&repo, &commit, "", &dest)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than 1048576 entries"), "{err}");
        assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0);
    }

    /// A level of more trees than the pipes hold in requests, the first of
    /// them a blob a crafted entry calls a directory: refused at once, not
    /// left waiting on a git that waits on its unread answers.
    #[test]
    fn a_wide_level_with_a_bad_tree_first_is_refused_without_waiting() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = init_repo(tmp.path());
        let data = blob(&repo, b"x");
        // 5,000 distinct trees (205 KB of requests), made by one `git mktree`.
        let mut batch = String::new();
        for i in 0..5000 {
            batch.push_str(&format!("100644 blob {data}\tf{i}\n\n"));
        }
        let made = sh(&repo, &["mktree", "--batch"], Some(batch.as_bytes()));
        let made = String::from_utf8(made).unwrap();
        let names: Vec<String> = (0..=5000).map(|i| format!("d{i:04}")).collect();
        let mut dirs = vec![("40000", names[0].as_str(), data.as_str())];
        for (name, tree) in names[1..].iter().zip(made.lines()) {
            dirs.push(("40000", name.as_str(), tree));
        }
        assert_eq!(dirs.len(), 5001);
        let commit = commit_of(&repo, &raw_tree(&repo, &dirs));
        let dest = tmp.path().join("ws");
        std::fs::create_dir(&dest).unwrap();
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(materialise(&repo, &commit, "", &dest).map_err(|e| e.to_string()));
        });
        let err = result
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("materialise returns")
            .unwrap_err();
        println!("{err}");
        assert!(err.contains("is not a tree"), "{err}");
    }

    #[test]
    fn fetch_never_runs_the_repositorys_upload_pack_or_other_transports() {
        let tmp = tempfile::tempdir().unwrap();
        let origin = tmp.path().join("origin");
        let repo = tmp.path().join("repo");
        let marker = tmp.path().join("MARKER");
        for dir in [&origin, &repo] {
            std::fs::create_dir(dir).unwrap();
            sh(dir, &["init", "-q", "-b", "main"], None);
        }
        sh(
            &origin,
            &["commit", "-q", "--allow-empty", "-m", "one"],
            None,
        );
        let run_marker = format!("touch {}; git-upload-pack", marker.display());
        sh(
            &repo,
            &["remote", "add", "origin", origin.to_str().unwrap()],
            None,
        );
        sh(
            &repo,
            &["config", "remote.origin.uploadpack", &run_marker],
            None,
        );
        sh(&repo, &["config", "core.sshCommand", &run_marker], None);
        let limit = std::time::Duration::from_secs(30);
        fetch_branch(&repo, "main", limit).unwrap();
        assert!(!marker.exists(), "the repository's uploadpack ran");
        // Another transport (`ext::` runs a command) is refused.
        sh(
            &repo,
            &[
                "config",
                "remote.origin.url",
                &format!("ext::sh -c touch% {}", marker.display()),
            ],
            None,
        );
        sh(&repo, &["config", "protocol.ext.allow", "always"], None);
        let err = fetch_branch(&repo, "main", limit).unwrap_err().to_string();
        assert!(err.contains("not allowed"), "{err}");
        assert!(!marker.exists(), "an ext:: transport ran");
    }
}

/// One commit of a change, as git recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChangeEntry {
    pub commit: String,
    pub author: String,
    pub committer: String,
    /// The rest of what [`commit_info`] says of it (from the same `rev-list`).
    pub subject: String,
    pub time: i64,
    pub tree: String,
}

impl ChangeEntry {
    /// What [`commit_info`] says of this commit, without another process.
    pub(crate) fn info(&self) -> CommitInfo {
        CommitInfo {
            author: self.author.clone(),
            committer: self.committer.clone(),
            subject: self.subject.clone(),
            time: self.time,
            tree: self.tree.clone(),
        }
    }
}

/// The commits reachable from `commit` and from none of `not` (those `repo`
/// does not have are left out of `not`), newest first, at most `max`
/// (plumbing: `rev-list`; no signature is checked, so no program the
/// repository's config names runs).
pub(crate) fn change_entries(
    repo: &Path,
    commit: &str,
    not: &[String],
    max: usize,
) -> Result<Vec<ChangeEntry>, EngineError> {
    let mut cmd = git(repo);
    cmd.args([
        "rev-list",
        "--no-commit-header",
        "--format=%H%x00%an <%ae>%x00%cn <%ce>%x00%s%x00%ct%x00%T",
        &format!("--max-count={max}"),
        commit,
    ]);
    let known: Vec<&String> = not.iter().filter(|c| has_commit(repo, c)).collect();
    if !known.is_empty() {
        cmd.arg("--not").args(known);
    }
    cmd.arg("--");
    let out = run(cmd)?;
    if !out.ok {
        return Err(EngineError::Git {
            what: "rev-list",
            stderr: out.stderr,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut parts = line.split('\0');
            Some(ChangeEntry {
                commit: parts.next()?.to_owned(),
                author: parts.next()?.to_owned(),
                committer: parts.next()?.to_owned(),
                subject: parts.next()?.to_owned(),
                time: parts.next()?.parse().unwrap_or(0),
                tree: parts.next()?.trim().to_owned(),
            })
        })
        .collect())
}

/// The principal (a cairn identity) whose key in `allowed_signers` made
/// `commit`'s SSH signature, when `git verify-commit` says it is good; `None`
/// when the commit is unsigned, signed by a key nobody registered, or signed
/// any other way. Every program and file git could take from the repository's
/// or the user's config is pinned on the command line: `gpg.format=ssh`,
/// `ssh-keygen` as the SSH program, OpenPGP and X.509 programs that refuse.
pub(crate) fn verified_signer(
    repo: &Path,
    commit: &str,
    allowed_signers: &Path,
) -> Result<Option<String>, EngineError> {
    let mut cmd = git(repo);
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(["-c", "gpg.format=ssh", "-c", "gpg.ssh.program=ssh-keygen"])
        .arg("-c")
        .arg(format!(
            "gpg.ssh.allowedSignersFile={}",
            allowed_signers.display()
        ))
        .args([
            "-c",
            "gpg.ssh.revocationFile=/dev/null",
            "-c",
            "gpg.program=/bin/false",
            "-c",
            "gpg.openpgp.program=/bin/false",
            "-c",
            "gpg.x509.program=/bin/false",
            "verify-commit",
            "--raw",
            commit,
        ]);
    let out = run(cmd)?;
    if !out.ok {
        return Ok(None);
    }
    // ssh-keygen: `Good "git" signature for <principal> with <TYPE> key SHA256:…`
    let said = format!("{}\n{}", out.stderr, String::from_utf8_lossy(&out.stdout));
    Ok(said.lines().find_map(|line| {
        let rest = line.strip_prefix("Good \"git\" signature for ")?;
        let (principal, _) = rest.split_once(" with ")?;
        (!principal.is_empty() && !principal.contains(char::is_whitespace))
            .then(|| principal.to_owned())
    }))
}

/// Whether git's discovery could find a repository from `dir` (canonical): some
/// ancestor, `dir` included, holds a `.git` entry of any kind, or is itself a git
/// directory (`HEAD` and `objects`, a bare repository, whose `core.worktree` may
/// name a work tree). Conservative: git stops earlier (ceilings, file-system
/// boundaries, ownership checks), never later, and cairn runs git with `GIT_DIR`
/// and `GIT_WORK_TREE` removed, so `false` means git would find none.
fn may_be_in_a_repository(dir: &Path) -> bool {
    dir.ancestors().any(|at| {
        std::fs::symlink_metadata(at.join(".git")).is_ok()
            || (std::fs::symlink_metadata(at.join("HEAD")).is_ok()
                && std::fs::symlink_metadata(at.join("objects")).is_ok())
    })
}

/// A `git cat-file --batch` on `repo`, its stdin and stdout piped, its stderr
/// dropped.
fn cat_file_batch(repo: &Path) -> Result<std::process::Child, EngineError> {
    let mut batch = git(repo);
    batch
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    batch.spawn().map_err(|source| EngineError::Spawn {
        program: "git",
        source,
    })
}

/// Whether `path` is tracked in the index of the work tree at or above `dir`.
pub(crate) fn is_tracked(dir: &Path, path: &str) -> Result<bool, EngineError> {
    let mut cmd = git(dir);
    cmd.args(["ls-files", "--error-unmatch", "--"]).arg(path);
    Ok(run(cmd)?.ok)
}

/// Refuses a data directory that lies inside a git work tree unless git ignores
/// it: it holds the signing key, which `git add -A` would otherwise commit. Asks
/// git itself (`check-ignore`, plumbing, hooks off), so every ignore source counts.
pub(crate) fn check_data_dir_ignored(data: &Path) -> Result<(), EngineError> {
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
    if !may_be_in_a_repository(&existing) {
        // No git process for the common case (a data directory in no
        // repository): spawning one cost a read-only scan half its time.
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
    // check-ignore refuses every pathspec magic, the builder's literal one too;
    // it takes one path here, and a pattern in it is matched literally anyway.
    check.env_remove("GIT_LITERAL_PATHSPECS");
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

/// A new commit on new branch `branch` of `repo`: `parent`'s tree with each
/// file of `files` (`(path from the top level, bytes)`) replaced, authored
/// and committed by `who` (`(name, email)`), with `message`. Written with
/// plumbing (blobs, a private index at `index`, a tree, a commit) so the work
/// tree and the repository's index are untouched; the branch must not exist
/// yet (the ref is created only if absent). Returns the commit's id.
pub(crate) fn commit_files_on_branch(
    repo: &Path,
    index: &Path,
    parent: &str,
    files: &[(String, Vec<u8>)],
    branch: &str,
    who: (&str, &str),
    message: &str,
) -> Result<String, EngineError> {
    use std::io::Write;
    let fail = |what: &'static str, stderr: String| EngineError::Git { what, stderr };
    let with_index = |args: &[&str]| {
        let mut cmd = git(repo);
        cmd.env("GIT_INDEX_FILE", index).args(args);
        run(cmd)
    };
    let out = with_index(&["read-tree", &format!("{parent}^{{tree}}")])?;
    if !out.ok {
        return Err(fail("read-tree", out.stderr));
    }
    for (path, bytes) in files {
        let mut hash = git(repo);
        hash.args(["hash-object", "-w", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = hash.spawn().map_err(|source| EngineError::Spawn {
            program: "git",
            source,
        })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(bytes)
                .map_err(|e| fail("hash-object", e.to_string()))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| fail("hash-object", e.to_string()))?;
        if !out.status.success() {
            return Err(fail(
                "hash-object",
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
        let blob = text(out.stdout);
        let out = with_index(&[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("100644,{blob},{path}"),
        ])?;
        if !out.ok {
            return Err(fail("update the index", out.stderr));
        }
    }
    let out = with_index(&["write-tree"])?;
    if !out.ok {
        return Err(fail("write-tree", out.stderr));
    }
    let tree = text(out.stdout);
    let mut cmd = git(repo);
    cmd.args(["commit-tree", &tree, "-p", parent, "-m", message])
        .env("GIT_AUTHOR_NAME", who.0)
        .env("GIT_AUTHOR_EMAIL", who.1)
        .env("GIT_COMMITTER_NAME", who.0)
        .env("GIT_COMMITTER_EMAIL", who.1);
    let out = run(cmd)?;
    if !out.ok {
        return Err(fail("commit-tree", out.stderr));
    }
    let commit = text(out.stdout);
    let mut cmd = git(repo);
    cmd.args([
        "update-ref",
        &format!("refs/heads/{branch}"),
        &commit,
        "0000000000000000000000000000000000000000",
    ]);
    let out = run(cmd)?;
    if !out.ok {
        return Err(fail("create the branch", out.stderr));
    }
    Ok(commit)
}
