//! The `gitops` deploy target: one commit per change in a local git repository
//! that Argo CD or Flux watches. Each change writes, in the environment's
//! directory of that repository (e.g. `envs/<environment>/<workload>`):
//!
//! - [`MANIFEST_FILE`]: a Kubernetes `Deployment` and `Service` whose container
//!   image is pinned by digest (`registry/repo@sha256:…`), for tools that apply
//!   a directory of plain manifests;
//! - [`KUSTOMIZATION_FILE`]: a kustomization naming that manifest, with an
//!   `images:` override (`name`, `newName`, `digest`) pinning the same digest,
//!   for tools that build the directory with kustomize.
//!
//! and commits them with the message `deploy <workload> to <env>: <digest>`
//! (or `rollback <workload> in <env>: <digest>`) and the trailers `Cairn-Run`,
//! `Cairn-Log-Index`, `Cairn-Change` and `Cairn-Actor`, as `cairn
//! <cairn@localhost>`. A rollback is a new commit that pins the earlier digest:
//! history is never rewritten.
//!
//! Pushing is out of scope: the repository is a local clone, and publishing its
//! commits to the remote that Argo CD or Flux watches is the caller's (or the
//! clone's) business.
//!
//! How a change is made, so that a failed deploy leaves `HEAD` as it was: the
//! new blobs and trees are written with `git hash-object` and `git mktree` (no
//! index, no work tree), the commit with `git commit-tree`, and `HEAD` moves with
//! one `git update-ref HEAD <new> <old>`, which fails if `HEAD` moved meanwhile.
//! Only then is the work tree brought up to date (`git read-tree -m -u <old>
//! <new>`, which touches only the paths that changed and refuses to overwrite
//! local changes); if that fails, `HEAD` is put back. Git runs with hooks and
//! fsmonitor disabled, without the user's global or system config, never signs
//! (`commit.gpgsign=false`), and with literal pathspecs. cairn's deploys to one
//! repository take turns on a lock file in its git directory
//! (`cairn-gitops.lock`), so concurrent promotions queue instead of failing.
//!
//! The directory is checked before anything is written: relative, at most
//! [`MAX_DIR_DEPTH`] components of `A-Z a-z 0-9 . _ -`, no `.`, `..` or `.git`
//! component, no component that is a symlink (in the work tree) or anything but
//! a directory (in `HEAD`), and the directory must hold no staged, modified or
//! untracked files.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cairn_model::config::is_valid_name;
use cairn_model::image_ref::ImageRef;

use crate::EngineError;

/// The Deployment and Service, digest-pinned.
pub const MANIFEST_FILE: &str = "workload.yaml";
/// The kustomization with the `images:` digest override.
pub const KUSTOMIZATION_FILE: &str = "kustomization.yaml";
/// The fixed identity of cairn's commits.
pub const COMMITTER_NAME: &str = "cairn";
pub const COMMITTER_EMAIL: &str = "cairn@localhost";
/// At most this many components in the environment's directory.
pub const MAX_DIR_DEPTH: usize = 16;
const MAX_DIR_BYTES: usize = 255;
const MAX_TRAILER_BYTES: usize = 256;
/// The files cairn reads back are at most this large.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// What a change is, for the `Cairn-Change` trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Deploy,
    Rollback,
    /// The workload's manifests removed from the directory ([`remove`]).
    Undeploy,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Deploy => "deploy",
            ChangeKind::Rollback => "rollback",
            ChangeKind::Undeploy => "undeploy",
        }
    }
}

/// What the commit says about the change: the run that produced the image, the
/// change's audit log index, what it is, and who asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trailers {
    pub run: String,
    pub log_index: u64,
    pub change: ChangeKind,
    pub actor: String,
}

/// One change to one environment in a GitOps repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitopsChange {
    /// The top level of the repository's work tree (or a bare repository).
    pub repo: PathBuf,
    /// The environment's directory, relative to the top level.
    pub dir: String,
    pub workload: String,
    pub environment: String,
    /// `registry/repository@sha256:<hex>` (a tag may precede the digest; it is
    /// dropped, the digest is what is deployed).
    pub image: String,
    /// The port the workload serves on (`PORT` in its environment).
    pub port: u16,
    pub trailers: Trailers,
}

/// The commit a change made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitopsCommit {
    pub commit: String,
    /// `HEAD` before the change; `None` when the repository had no commit.
    pub previous: Option<String>,
    /// The pinned image as written (`registry/repository@sha256:<hex>`).
    pub image: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// The files written, relative to the top level.
    pub files: Vec<String>,
}

/// Writes the pinned manifest and kustomization for `change` and commits them.
/// On `Err`, `HEAD` is what it was and the error says why.
pub fn deploy(change: &GitopsChange) -> Result<GitopsCommit, EngineError> {
    for (what, name) in [
        ("workload", &change.workload),
        ("environment", &change.environment),
    ] {
        check_name(what, name)?;
    }
    let components = check_dir(&change.dir)?;
    let dir = components.join("/");
    let (name, digest) = pinned_image(&change.image)?;
    check_trailers(&change.trailers)?;
    if change.port == 0 {
        return Err(bad("the port must be 1-65535".to_owned()));
    }
    let repo = Repo::open(&change.repo)?;
    let _lock = repo.lock()?;
    repo.wait_for_index()?;
    let head = repo.head()?;
    repo.check_path(&components, head.as_deref())?;
    if !repo.bare {
        repo.check_clean(&dir, head.as_deref())?;
    }

    let pinned = format!("{name}@{digest}");
    let files = [
        (
            MANIFEST_FILE,
            render_manifest(&change.workload, &change.environment, &pinned, change.port),
        ),
        (
            KUSTOMIZATION_FILE,
            render_kustomization(&change.workload, &change.environment, &name, &digest),
        ),
    ];
    let tree = repo.tree_with(head.as_deref(), &components, &files)?;
    let message = commit_message(change, &dir, &pinned, &digest);
    let commit = repo.commit_and_move(&tree, head.as_deref(), &message)?;
    Ok(GitopsCommit {
        commit,
        previous: head,
        image: pinned,
        digest,
        files: files
            .iter()
            .map(|(file, _)| format!("{dir}/{file}"))
            .collect(),
    })
}

/// One workload removed from an environment's directory (`cairn undeploy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitopsRemoval {
    /// The top level of the repository's work tree (or a bare repository).
    pub repo: PathBuf,
    /// The environment's directory, relative to the top level.
    pub dir: String,
    pub workload: String,
    pub environment: String,
    /// The undeploy's audit log entry (`Cairn-Log-Index`).
    pub log_index: u64,
    pub actor: String,
}

/// Removes cairn's [`MANIFEST_FILE`] and [`KUSTOMIZATION_FILE`] from the
/// directory in one commit (`undeploy <workload> from <env>`, the trailers
/// `Cairn-Log-Index`, `Cairn-Change: undeploy` and `Cairn-Actor`); any other
/// file there stays, and a directory left empty goes. Made like [`deploy`]'s
/// commit (plumbing, `HEAD` moved only if unmoved, the work tree after), under
/// the same checks of the directory. A directory without either file is an
/// error, never an empty commit. On `Err`, `HEAD` is what it was.
pub fn remove(removal: &GitopsRemoval) -> Result<GitopsCommit, EngineError> {
    for (what, name) in [
        ("workload", &removal.workload),
        ("environment", &removal.environment),
    ] {
        check_name(what, name)?;
    }
    let components = check_dir(&removal.dir)?;
    let dir = components.join("/");
    let trailers = Trailers {
        run: "-".to_owned(),
        log_index: removal.log_index,
        change: ChangeKind::Undeploy,
        actor: removal.actor.clone(),
    };
    check_trailers(&trailers)?;
    let repo = Repo::open(&removal.repo)?;
    let _lock = repo.lock()?;
    repo.wait_for_index()?;
    let nothing = || {
        bad(format!(
            "{dir} in {} holds no manifests of cairn's: nothing of {} is deployed there",
            repo.root.display(),
            removal.workload
        ))
    };
    let Some(head) = repo.head()? else {
        return Err(nothing());
    };
    repo.check_path(&components, Some(&head))?;
    if !repo.bare {
        repo.check_clean(&dir, Some(&head))?;
    }
    let digest = current(&removal.repo, &dir)
        .ok()
        .flatten()
        .unwrap_or_else(|| "-".to_owned());
    let Some(tree) = repo.tree_without(&head, &components, &[MANIFEST_FILE, KUSTOMIZATION_FILE])?
    else {
        return Err(nothing());
    };
    let message = format!(
        "undeploy {} from {}: {digest}\n\nRemoves {MANIFEST_FILE} and {KUSTOMIZATION_FILE} in {dir}.\n\nCairn-Log-Index: {}\nCairn-Change: {}\nCairn-Actor: {}\n",
        removal.workload,
        removal.environment,
        trailers.log_index,
        trailers.change.as_str(),
        trailers.actor
    );
    let commit = repo.commit_and_move(&tree, Some(&head), &message)?;
    Ok(GitopsCommit {
        commit,
        previous: Some(head),
        image: String::new(),
        digest,
        files: [MANIFEST_FILE, KUSTOMIZATION_FILE]
            .iter()
            .map(|file| format!("{dir}/{file}"))
            .collect(),
    })
}

/// The digest (`sha256:<hex>`) deployed in `dir` at `HEAD`, read from the
/// committed files: `None` when there is no commit or neither file. The
/// manifest and the kustomization must agree; files edited so that they do not
/// (or that cairn cannot read) are an error, never a guess.
pub fn current(repo: &Path, dir: &str) -> Result<Option<String>, EngineError> {
    let components = check_dir(dir)?;
    let dir = components.join("/");
    let repo = Repo::open(repo)?;
    let Some(head) = repo.head()? else {
        return Ok(None);
    };
    let manifest = repo.read_file(&head, &format!("{dir}/{MANIFEST_FILE}"))?;
    let kustomization = repo.read_file(&head, &format!("{dir}/{KUSTOMIZATION_FILE}"))?;
    let damaged = |why: String| {
        bad(format!(
            "{dir} in {} at {head} was not written by cairn or was edited: {why}; deploy again to repair it",
            repo.root.display()
        ))
    };
    let (manifest, kustomization) = match (manifest, kustomization) {
        (None, None) => return Ok(None),
        (Some(m), Some(k)) => (m, k),
        (Some(_), None) => return Err(damaged(format!("{KUSTOMIZATION_FILE} is missing"))),
        (None, Some(_)) => return Err(damaged(format!("{MANIFEST_FILE} is missing"))),
    };
    let manifest_image =
        single_value(&manifest, "image").map_err(|w| damaged(format!("{MANIFEST_FILE}: {w}")))?;
    let new_name = single_value(&kustomization, "newName")
        .map_err(|w| damaged(format!("{KUSTOMIZATION_FILE}: {w}")))?;
    let digest = single_value(&kustomization, "digest")
        .map_err(|w| damaged(format!("{KUSTOMIZATION_FILE}: {w}")))?;
    let parsed =
        ImageRef::parse(&manifest_image).map_err(|e| damaged(format!("{MANIFEST_FILE}: {e}")))?;
    if parsed.digest.as_deref() != Some(digest.as_str())
        || format!("{new_name}@{digest}") != manifest_image
    {
        return Err(damaged(format!(
            "{MANIFEST_FILE} pins `{manifest_image}` but {KUSTOMIZATION_FILE} pins `{new_name}@{digest}`"
        )));
    }
    Ok(Some(digest))
}

/// How far back [`head_change`] looks for cairn's newest change of a directory.
const HISTORY_SCAN: usize = 500;

/// The newest change of `dir` at `HEAD`: cairn's newest commit for it (its
/// message says it pins an image in `dir`, or removes its manifests there; a redeploy of the same digest changes
/// no file, so "the last commit that touched the files" would miss it) and the
/// audit log index its `Cairn-Log-Index` trailer names — or a later commit by
/// anyone else that changed the directory (`None` for the index: not cairn's).
/// Reconciliation compares it with the recorded deployment.
pub fn head_change(repo: &Path, dir: &str) -> Result<Option<(String, Option<u64>)>, EngineError> {
    let components = check_dir(dir)?;
    let dir = components.join("/");
    let repo = Repo::open(repo)?;
    if repo.head()?.is_none() {
        return Ok(None);
    }
    let touched = repo
        .must(
            "log",
            &["log", "-1", "--format=%H", "HEAD", "--", &dir],
            None,
        )?
        .text();
    let limit = format!("-n{HISTORY_SCAN}");
    let out = repo.must(
        "log",
        &[
            "log",
            "--first-parent",
            &limit,
            "--format=%H%x00%B%x1e",
            "HEAD",
        ],
        None,
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    let pins = format!(" in {dir}.");
    for record in text.split('\u{1e}') {
        let Some((commit, message)) = record.split_once('\0') else {
            continue;
        };
        let commit = commit.trim();
        let ours = message
            .lines()
            .any(|l| (l.starts_with("Pins ") || l.starts_with("Removes ")) && l.ends_with(&pins));
        if ours {
            let index = message
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("Cairn-Log-Index: "))
                .and_then(|i| i.trim().parse().ok());
            return Ok(Some((commit.to_owned(), index)));
        }
        if commit == touched {
            return Ok(Some((commit.to_owned(), None)));
        }
    }
    Ok((!touched.is_empty()).then_some((touched, None)))
}

/// Completes a change whose commit `commit` became `HEAD` but whose index and
/// work tree were not brought along (a cairn killed between the two): when
/// the index still matches the commit's parent, the work tree is moved from
/// the parent to the commit, touching only what differs. Anything else
/// (a bare repository, other changes in the index) is left as it is.
/// Returns whether it moved the work tree.
pub fn complete(repo: &Path, commit: &str) -> Result<bool, EngineError> {
    let repo = Repo::open(repo)?;
    let _lock = repo.lock()?;
    if repo.bare || !repo.wait_for_index()? || repo.head()?.as_deref() != Some(commit) {
        return Ok(false);
    }
    let unchanged = |tree: &str| -> Result<bool, EngineError> {
        Ok(repo
            .run(&["diff-index", "--cached", "--quiet", tree, "--"], None)?
            .code
            == Some(0))
    };
    if unchanged(commit)? {
        return Ok(false);
    }
    let parent = format!("{commit}^");
    if !repo
        .run(&["rev-parse", "--verify", "--quiet", &parent], None)?
        .ok()
        || !unchanged(&parent)?
    {
        return Ok(false);
    }
    repo.update_work_tree(Some(&parent), commit)?;
    Ok(true)
}

/// The Deployment and Service of `workload` in `environment`, running `image`
/// (digest-pinned) like the sandbox runs it: uid 65534, read-only root, a
/// writable `/tmp`, no privilege escalation, no capabilities, `PORT` and
/// `HOST` set.
pub fn render_manifest(workload: &str, environment: &str, image: &str, port: u16) -> String {
    let w = quote(workload);
    let e = quote(environment);
    let img = quote(image);
    let p = quote(&port.to_string());
    format!(
        "# Written by cairn for workload {w} in environment {e}. Do not edit:
# `cairn promote` and `cairn rollback` replace this file in a new commit.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {w}
  labels:
    app.kubernetes.io/name: {w}
    app.kubernetes.io/managed-by: \"cairn\"
    cairn.invalid/environment: {e}
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: {w}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {w}
    spec:
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 65534
        runAsGroup: 65534
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: {w}
          image: {img}
          env:
            - name: \"PORT\"
              value: {p}
            - name: \"HOST\"
              value: \"0.0.0.0\"
          ports:
            - name: \"http\"
              containerPort: {port}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop:
                - \"ALL\"
          volumeMounts:
            - name: \"tmp\"
              mountPath: \"/tmp\"
      volumes:
        - name: \"tmp\"
          emptyDir: {{}}
---
apiVersion: v1
kind: Service
metadata:
  name: {w}
  labels:
    app.kubernetes.io/name: {w}
    app.kubernetes.io/managed-by: \"cairn\"
    cairn.invalid/environment: {e}
spec:
  selector:
    app.kubernetes.io/name: {w}
  ports:
    - name: \"http\"
      port: {port}
      targetPort: \"http\"
"
    )
}

/// The kustomization naming [`MANIFEST_FILE`], with the image `name` pinned to
/// `digest` (`sha256:<hex>`).
pub fn render_kustomization(workload: &str, environment: &str, name: &str, digest: &str) -> String {
    let n = quote(name);
    format!(
        "# Written by cairn for workload {} in environment {}. Do not edit:
# `cairn promote` and `cairn rollback` replace this file in a new commit.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - {}
images:
  - name: {n}
    newName: {n}
    digest: {}
",
        quote(workload),
        quote(environment),
        quote(MANIFEST_FILE),
        quote(digest),
    )
}

fn commit_message(change: &GitopsChange, dir: &str, pinned: &str, digest: &str) -> String {
    let t = &change.trailers;
    let subject = match t.change {
        ChangeKind::Deploy => format!(
            "deploy {} to {}: {digest}",
            change.workload, change.environment
        ),
        ChangeKind::Rollback => format!(
            "rollback {} in {}: {digest}",
            change.workload, change.environment
        ),
        ChangeKind::Undeploy => format!(
            "undeploy {} from {}: {digest}",
            change.workload, change.environment
        ),
    };
    format!(
        "{subject}\n\nPins {pinned} in {dir}.\n\nCairn-Run: {}\nCairn-Log-Index: {}\nCairn-Change: {}\nCairn-Actor: {}\n",
        t.run,
        t.log_index,
        t.change.as_str(),
        t.actor
    )
}

fn bad(why: String) -> EngineError {
    EngineError::BadDeployTarget { why }
}

/// A Kubernetes-compatible name (an RFC 1123 label): cairn's names, not
/// ending in `-`.
fn check_name(what: &str, name: &str) -> Result<(), EngineError> {
    if is_valid_name(name) && !name.ends_with('-') {
        Ok(())
    } else {
        Err(bad(format!(
            "`{}` is not a valid {what} name (1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit)",
            name.chars().take(80).collect::<String>()
        )))
    }
}

/// The environment's directory as checked components (see the module doc).
fn check_dir(dir: &str) -> Result<Vec<&str>, EngineError> {
    let refuse = |why: &str| {
        Err(bad(format!(
            "the GitOps directory `{}` is refused: {why}",
            dir.chars().take(MAX_DIR_BYTES).collect::<String>()
        )))
    };
    if dir.is_empty() {
        return refuse("it is empty; name a directory such as envs/<environment>/<workload>");
    }
    if dir.len() > MAX_DIR_BYTES {
        return refuse("it is longer than 255 bytes");
    }
    if dir.starts_with('/') {
        return refuse("it is absolute; it must be relative to the repository's top level");
    }
    let components: Vec<&str> = dir.trim_end_matches('/').split('/').collect();
    if components.len() > MAX_DIR_DEPTH {
        return refuse("it has more than 16 components");
    }
    for c in &components {
        if c.is_empty() {
            return refuse("it has an empty component (`//`)");
        }
        if *c == "." || *c == ".." {
            return refuse("`.` and `..` are not allowed: it must stay inside the repository");
        }
        if c.eq_ignore_ascii_case(".git") {
            return refuse("it names git's own directory");
        }
        if c.starts_with('-') {
            return refuse("a component starts with `-`");
        }
        if !c
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return refuse("components are letters, digits, `.`, `_` and `-`");
        }
    }
    Ok(components)
}

/// A digest-pinned reference that is not Docker Hub, as its name (registry and
/// repository, without a tag) and its digest (`sha256:<hex>`).
fn pinned_image(text: &str) -> Result<(String, String), EngineError> {
    let image = ImageRef::parse(text)?;
    image.check_not_docker_hub()?;
    let Some(digest) = image.digest.clone() else {
        return Err(cairn_model::image_ref::RefError::NotPinned {
            reference: image.to_string(),
        }
        .into());
    };
    let name = ImageRef {
        tag: None,
        digest: None,
        ..image
    };
    Ok((name.to_string(), digest))
}

fn check_trailers(t: &Trailers) -> Result<(), EngineError> {
    for (what, value) in [("run id", &t.run), ("actor", &t.actor)] {
        if value.trim().is_empty() || value.trim() != value {
            return Err(bad(format!(
                "the {what} for the commit trailer is empty or has surrounding spaces"
            )));
        }
        if value.len() > MAX_TRAILER_BYTES || value.chars().any(char::is_control) {
            return Err(bad(format!(
                "the {what} for the commit trailer is longer than {MAX_TRAILER_BYTES} bytes or holds control characters"
            )));
        }
    }
    Ok(())
}

/// A YAML double-quoted scalar (YAML 1.2 §7.3.1, also valid YAML 1.1):
/// printable ASCII as is except `"` and `\`, everything else escaped.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if u32::from(c) <= 0xffff => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

/// The inverse of [`quote`] for one scalar after `key: `; a plain scalar is
/// taken as is up to a ` #` comment.
fn unquote(value: &str) -> Option<String> {
    let value = value.trim();
    let Some(rest) = value.strip_prefix('"') else {
        let plain = value.split(" #").next().unwrap_or_default().trim();
        return (!plain.is_empty()
            && !plain.starts_with(['\'', '{', '[', '&', '*', '!', '|', '>']))
        .then(|| plain.to_owned());
    };
    let mut out = String::new();
    let mut chars = rest.chars();
    loop {
        match chars.next()? {
            '"' => break,
            '\\' => match chars.next()? {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                '/' => out.push('/'),
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'u' => out.push(hex_char(&mut chars, 4)?),
                'U' => out.push(hex_char(&mut chars, 8)?),
                _ => return None,
            },
            c => out.push(c),
        }
    }
    let tail = chars.as_str().trim();
    (tail.is_empty() || tail.starts_with('#')).then_some(out)
}

fn hex_char(chars: &mut std::str::Chars<'_>, n: usize) -> Option<char> {
    let digits: String = chars.by_ref().take(n).collect();
    if digits.len() != n {
        return None;
    }
    char::from_u32(u32::from_str_radix(&digits, 16).ok()?)
}

/// The value of the one line whose key is `key` (`key: value` or `- key:
/// value`); none or several is an error.
fn single_value(text: &str, key: &str) -> Result<String, String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        let line = line.strip_prefix("- ").unwrap_or(line).trim_start();
        if let Some(value) = line
            .strip_prefix(key)
            .and_then(|rest| rest.strip_prefix(':'))
        {
            found.push(unquote(value).ok_or_else(|| format!("the `{key}` value cannot be read"))?);
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!("no `{key}`")),
        _ => Err(format!("more than one `{key}`")),
    }
}

/// A repository cairn writes to: its top level (or git directory, when bare).
struct Repo {
    root: PathBuf,
    bare: bool,
}

/// How long a deploy waits for another cairn deploy to the same repository.
const LOCK_WAIT: Duration = Duration::from_secs(60);
/// How long a deploy or a reconciliation waits for another git process's
/// index lock (a killed cairn's git command finishing).
const INDEX_WAIT: Duration = Duration::from_secs(10);

struct Output {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

impl Output {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim().to_owned()
    }
}

impl Repo {
    fn open(path: &Path) -> Result<Repo, EngineError> {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(bad(format!(
                    "the GitOps repository {} is not a directory",
                    path.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(bad(format!(
                    "the GitOps repository {} does not exist; clone it there first",
                    path.display()
                )));
            }
            Err(e) => return Err(EngineError::io("read", path)(e)),
        }
        let root = std::fs::canonicalize(path).map_err(EngineError::io("resolve", path))?;
        let probe = Repo {
            root: root.clone(),
            bare: false,
        };
        let out = probe.run(&["rev-parse", "--is-bare-repository"], None)?;
        if !out.ok() {
            return Err(EngineError::NotAGitRepo { path: root });
        }
        let (bare, top) = if out.text() == "true" {
            let out = probe.run(&["rev-parse", "--absolute-git-dir"], None)?;
            (true, out.ok().then(|| PathBuf::from(out.text())))
        } else {
            let out = probe.run(&["rev-parse", "--show-toplevel"], None)?;
            (false, out.ok().then(|| PathBuf::from(out.text())))
        };
        let top = top.and_then(|t| std::fs::canonicalize(t).ok());
        if top.as_deref() != Some(root.as_path()) {
            return Err(bad(format!(
                "{} is not the top level of a git repository{}; give the repository's top level",
                root.display(),
                top.map(|t| format!(" (it is inside {})", t.display()))
                    .unwrap_or_default()
            )));
        }
        Ok(Repo { root, bare })
    }

    /// An exclusive lock on `<git common dir>/cairn-gitops.lock`, held until
    /// the returned file is dropped: cairn's deploys to one repository take
    /// turns (git's own locks would make concurrent ones fail instead).
    fn lock(&self) -> Result<File, EngineError> {
        let out = self.must(
            "rev-parse",
            &["rev-parse", "--path-format=absolute", "--git-common-dir"],
            None,
        )?;
        let path = PathBuf::from(out.text()).join("cairn-gitops.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(EngineError::io("open", &path))?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(EngineError::DeployFailed {
                        why: format!(
                            "another cairn deploy to {} held {} for {} s; try again when it is done",
                            self.root.display(),
                            path.display(),
                            LOCK_WAIT.as_secs()
                        ),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(EngineError::io("lock", &path)(e)),
            }
        }
    }

    /// Waits (up to [`INDEX_WAIT`]) until no git process holds the index lock: a
    /// git command of a cairn process that was killed goes on to its end, and
    /// the index is what it leaves. `false` when the lock is still held.
    fn wait_for_index(&self) -> Result<bool, EngineError> {
        if self.bare {
            return Ok(true);
        }
        let out = self.must(
            "rev-parse",
            &["rev-parse", "--path-format=absolute", "--git-dir"],
            None,
        )?;
        let lock = PathBuf::from(out.text()).join("index.lock");
        let started = Instant::now();
        while std::fs::symlink_metadata(&lock).is_ok() {
            if started.elapsed() >= INDEX_WAIT {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(true)
    }

    fn command(&self) -> Command {
        // The one hardened builder every host-side git command starts from;
        // only cairn's identity as the committer is added here.
        let mut cmd = crate::git::command(&self.root);
        cmd.env("GIT_AUTHOR_NAME", COMMITTER_NAME)
            .env("GIT_AUTHOR_EMAIL", COMMITTER_EMAIL)
            .env("GIT_COMMITTER_NAME", COMMITTER_NAME)
            .env("GIT_COMMITTER_EMAIL", COMMITTER_EMAIL);
        cmd
    }

    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Output, EngineError> {
        let mut cmd = self.command();
        cmd.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let spawn = |source| EngineError::Spawn {
            program: "git",
            source,
        };
        let mut child = cmd.spawn().map_err(spawn)?;
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A write error shows up as git's failure below.
            let _ = pipe.write_all(bytes);
        }
        let out = child.wait_with_output().map_err(spawn)?;
        Ok(Output {
            code: out.status.code(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }

    /// Runs git; a non-zero exit is `DeployFailed` naming the command.
    fn must(&self, what: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<Output, EngineError> {
        let out = self.run(args, stdin)?;
        if out.ok() {
            Ok(out)
        } else {
            Err(EngineError::DeployFailed {
                why: format!(
                    "git {what} failed in {}: {}",
                    self.root.display(),
                    if out.stderr.is_empty() {
                        "no message"
                    } else {
                        &out.stderr
                    }
                ),
            })
        }
    }

    /// The commit `HEAD` names, or `None` on an unborn branch.
    fn head(&self) -> Result<Option<String>, EngineError> {
        let out = self.run(&["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], None)?;
        if out.ok() {
            let id = out.text();
            if id.len() >= 40 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(Some(id));
            }
        }
        if self.run(&["symbolic-ref", "--quiet", "HEAD"], None)?.ok() {
            // HEAD names a branch that has no commit yet.
            return Ok(None);
        }
        Err(EngineError::DeployFailed {
            why: format!(
                "HEAD of {} names no commit and no branch; repair the repository",
                self.root.display()
            ),
        })
    }

    /// Every prefix of the directory is a directory: a tree in `HEAD`, and no
    /// symlink (nor file) in the work tree. So nothing cairn writes or checks
    /// out can land outside the directory.
    fn check_path(&self, components: &[&str], head: Option<&str>) -> Result<(), EngineError> {
        for i in 1..=components.len() {
            let prefix = components[..i].join("/");
            if let Some(head) = head {
                let out = self.must("ls-tree", &["ls-tree", "-z", head, "--", &prefix], None)?;
                for entry in parse_ls_tree(&out.stdout) {
                    if entry.name == prefix.as_bytes() && entry.kind != "tree" {
                        return Err(bad(format!(
                            "`{prefix}` is a {} in HEAD of {}, not a directory",
                            if entry.mode == "120000" {
                                "symlink"
                            } else {
                                entry.kind.as_str()
                            },
                            self.root.display()
                        )));
                    }
                }
            }
            if !self.bare {
                let path = self.root.join(&prefix);
                match std::fs::symlink_metadata(&path) {
                    Ok(m) if m.file_type().is_symlink() => {
                        return Err(bad(format!(
                            "{} is a symlink: the GitOps directory must not leave the repository",
                            path.display()
                        )));
                    }
                    Ok(m) if !m.is_dir() => {
                        return Err(bad(format!("{} is not a directory", path.display())));
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(EngineError::io("inspect", path)(e)),
                }
            }
        }
        if !self.bare {
            let dir = self.root.join(components.join("/"));
            for file in [MANIFEST_FILE, KUSTOMIZATION_FILE] {
                let path = dir.join(file);
                match std::fs::symlink_metadata(&path) {
                    Ok(m) if !m.is_file() => {
                        return Err(bad(format!("{} is not a regular file", path.display())));
                    }
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(EngineError::io("inspect", path)(e));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// No staged, modified or untracked files in `dir`; on an unborn branch,
    /// an empty index.
    fn check_clean(&self, dir: &str, head: Option<&str>) -> Result<(), EngineError> {
        // Refresh the index's stat data so that a touched but unchanged file is
        // not taken for a change; its result is in the checks that follow.
        self.run(&["update-index", "-q", "--refresh"], None)?;
        let dirty = |what: &str| {
            Err(bad(format!(
                "{dir} in {} has {what}; commit or discard them, then deploy again",
                self.root.display()
            )))
        };
        let quiet_diff = |args: &[&str]| -> Result<bool, EngineError> {
            let out = self.run(args, None)?;
            match out.code {
                Some(0) => Ok(false),
                Some(1) => Ok(true),
                _ => Err(EngineError::DeployFailed {
                    why: format!(
                        "git {} failed in {}: {}",
                        args[0],
                        self.root.display(),
                        out.stderr
                    ),
                }),
            }
        };
        match head {
            Some(head) => {
                if quiet_diff(&["diff-index", "--cached", "--quiet", head, "--", dir])? {
                    return dirty("staged changes (the index differs from HEAD)");
                }
            }
            None => {
                let out = self.must("ls-files", &["ls-files", "-z"], None)?;
                if !out.stdout.is_empty() {
                    return dirty("staged files on a branch with no commit yet");
                }
            }
        }
        if quiet_diff(&["diff-files", "--quiet", "--", dir])? {
            return dirty("modified files that are not committed");
        }
        let out = self.must("ls-files", &["ls-files", "-z", "--others", "--", dir], None)?;
        if !out.stdout.is_empty() {
            return dirty("untracked files");
        }
        Ok(())
    }

    /// The tree of `head` with `files` (name, content) written into the
    /// directory `components`, which is created as needed.
    fn tree_with(
        &self,
        head: Option<&str>,
        components: &[&str],
        files: &[(&str, String)],
    ) -> Result<String, EngineError> {
        // The trees along the path: the root tree, then each directory's.
        let mut trees: Vec<Option<String>> = Vec::with_capacity(components.len() + 1);
        trees.push(match head {
            Some(h) => Some(
                self.must("rev-parse", &["rev-parse", &format!("{h}^{{tree}}")], None)?
                    .text(),
            ),
            None => None,
        });
        for (i, component) in components.iter().enumerate() {
            let next = match &trees[i] {
                Some(tree) => {
                    let entries = self.entries(tree)?;
                    match entries.into_iter().find(|e| e.name == component.as_bytes()) {
                        Some(e) if e.kind == "tree" => Some(e.oid),
                        Some(_) => {
                            return Err(bad(format!(
                                "`{}` is not a directory in HEAD",
                                components[..=i].join("/")
                            )));
                        }
                        None => None,
                    }
                }
                None => None,
            };
            trees.push(next);
        }
        let mut replacements = Vec::new();
        for (name, content) in files {
            let blob = self
                .must(
                    "hash-object",
                    &["hash-object", "-w", "--no-filters", "--stdin"],
                    Some(content.as_bytes()),
                )?
                .text();
            replacements.push(TreeEntry {
                mode: "100644".into(),
                kind: "blob".into(),
                oid: blob,
                name: name.as_bytes().to_vec(),
            });
        }
        let mut child = self.mktree(trees[components.len()].as_deref(), replacements)?;
        for i in (0..components.len()).rev() {
            let entry = TreeEntry {
                mode: "040000".into(),
                kind: "tree".into(),
                oid: child,
                name: components[i].as_bytes().to_vec(),
            };
            child = self.mktree(trees[i].as_deref(), vec![entry])?;
        }
        Ok(child)
    }

    /// `head`'s tree with `names` removed from the directory `components`
    /// (a directory left empty removed from its parent, up the path); `None`
    /// when the directory holds none of them.
    fn tree_without(
        &self,
        head: &str,
        components: &[&str],
        names: &[&str],
    ) -> Result<Option<String>, EngineError> {
        let mut trees: Vec<String> = Vec::with_capacity(components.len() + 1);
        trees.push(
            self.must(
                "rev-parse",
                &["rev-parse", &format!("{head}^{{tree}}")],
                None,
            )?
            .text(),
        );
        for component in components {
            let entries = self.entries(&trees[trees.len() - 1])?;
            match entries.into_iter().find(|e| e.name == component.as_bytes()) {
                Some(e) if e.kind == "tree" => trees.push(e.oid),
                _ => return Ok(None),
            }
        }
        let mut entries = self.entries(&trees[components.len()])?;
        let before = entries.len();
        entries.retain(|e| !names.iter().any(|n| e.name == n.as_bytes()));
        if entries.len() == before {
            return Ok(None);
        }
        let mut child = (!entries.is_empty())
            .then(|| self.write_tree(&entries))
            .transpose()?;
        for i in (0..components.len()).rev() {
            let mut parent = self.entries(&trees[i])?;
            parent.retain(|e| e.name != components[i].as_bytes());
            if let Some(oid) = child {
                parent.push(TreeEntry {
                    mode: "040000".into(),
                    kind: "tree".into(),
                    oid,
                    name: components[i].as_bytes().to_vec(),
                });
            }
            // The root stays, even empty.
            child = (i == 0 || !parent.is_empty())
                .then(|| self.write_tree(&parent))
                .transpose()?;
        }
        Ok(child)
    }

    /// A tree of exactly `entries`.
    fn write_tree(&self, entries: &[TreeEntry]) -> Result<String, EngineError> {
        let mut input = Vec::new();
        for e in entries {
            input.extend_from_slice(format!("{} {} {}\t", e.mode, e.kind, e.oid).as_bytes());
            input.extend_from_slice(&e.name);
            input.push(0);
        }
        Ok(self.must("mktree", &["mktree", "-z"], Some(&input))?.text())
    }

    fn entries(&self, tree: &str) -> Result<Vec<TreeEntry>, EngineError> {
        let out = self.must("ls-tree", &["ls-tree", "-z", "--full-tree", tree], None)?;
        Ok(parse_ls_tree(&out.stdout))
    }

    /// A tree: `base`'s entries with `replace` put in (same names replaced).
    fn mktree(&self, base: Option<&str>, replace: Vec<TreeEntry>) -> Result<String, EngineError> {
        let mut entries = match base {
            Some(tree) => self.entries(tree)?,
            None => Vec::new(),
        };
        entries.retain(|e| !replace.iter().any(|r| r.name == e.name));
        entries.extend(replace);
        let mut input = Vec::new();
        for e in &entries {
            input.extend_from_slice(format!("{} {} {}\t", e.mode, e.kind, e.oid).as_bytes());
            input.extend_from_slice(&e.name);
            input.push(0);
        }
        Ok(self.must("mktree", &["mktree", "-z"], Some(&input))?.text())
    }

    /// Commits `tree` on `head` with `message`, moves `HEAD` to it (only if
    /// it is still at `head`) and brings the work tree along; when the work
    /// tree cannot follow, `HEAD` is put back and the error says so.
    fn commit_and_move(
        &self,
        tree: &str,
        head: Option<&str>,
        message: &str,
    ) -> Result<String, EngineError> {
        let commit = self.commit_tree(tree, head, message)?;
        self.move_head(&commit, head)?;
        if !self.bare
            && let Err(why) = self.update_work_tree(head, &commit)
        {
            let restored = match self.restore_head(head, &commit) {
                Ok(()) => "HEAD is back where it was".to_owned(),
                Err(e) => format!("HEAD could not be put back ({e}); it is at {commit}"),
            };
            return Err(EngineError::DeployFailed {
                why: format!(
                    "the work tree of {} could not be updated to the new commit: {why}; {restored}",
                    self.root.display()
                ),
            });
        }
        Ok(commit)
    }

    fn commit_tree(
        &self,
        tree: &str,
        parent: Option<&str>,
        message: &str,
    ) -> Result<String, EngineError> {
        let mut args = vec!["commit-tree", "--no-gpg-sign", tree];
        if let Some(parent) = parent {
            args.extend(["-p", parent]);
        }
        args.extend(["-F", "-"]);
        Ok(self
            .must("commit-tree", &args, Some(message.as_bytes()))?
            .text())
    }

    /// `HEAD` (or the branch it names) from `old` to `new`, only if it is still
    /// at `old`.
    fn move_head(&self, new: &str, old: Option<&str>) -> Result<(), EngineError> {
        let out = self.run(
            &[
                "update-ref",
                "-m",
                "cairn: gitops change",
                "HEAD",
                new,
                old.unwrap_or(""),
            ],
            None,
        )?;
        if out.ok() {
            Ok(())
        } else {
            Err(EngineError::DeployFailed {
                why: format!(
                    "HEAD of {} could not be moved to the new commit (did another change land meanwhile? deploy again): {}",
                    self.root.display(),
                    out.stderr
                ),
            })
        }
    }

    fn restore_head(&self, old: Option<&str>, new: &str) -> Result<(), EngineError> {
        match old {
            Some(old) => self.must(
                "update-ref",
                &[
                    "update-ref",
                    "-m",
                    "cairn: undo gitops change",
                    "HEAD",
                    old,
                    new,
                ],
                None,
            ),
            None => self.must("update-ref", &["update-ref", "-d", "HEAD", new], None),
        }
        .map(|_| ())
    }

    /// Brings the index and work tree from `old` to `new`: only the paths that
    /// differ are touched, and local changes to them are never overwritten.
    fn update_work_tree(&self, old: Option<&str>, new: &str) -> Result<(), EngineError> {
        let mut args = vec!["read-tree", "-m", "-u"];
        args.extend(old);
        args.push(new);
        self.must("read-tree", &args, None).map(|_| ())
    }

    /// A file's contents at `commit`: `None` when absent; an error when it is
    /// not a regular file or is larger than [`MAX_FILE_BYTES`].
    fn read_file(&self, commit: &str, path: &str) -> Result<Option<String>, EngineError> {
        let out = self.must(
            "ls-tree",
            &["ls-tree", "-z", "-l", commit, "--", path],
            None,
        )?;
        let Some(line) = out
            .stdout
            .split(|b| *b == 0)
            .find(|l| l.ends_with(format!("\t{path}").as_bytes()))
        else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(line);
        let fields: Vec<&str> = line.split(['\t', ' ']).filter(|f| !f.is_empty()).collect();
        let [mode, kind, oid, size, _name] = fields.as_slice() else {
            return Err(bad(format!("cannot read the tree entry of {path}")));
        };
        if *kind != "blob" || !matches!(*mode, "100644" | "100755") {
            return Err(bad(format!("{path} at {commit} is not a regular file")));
        }
        if size.parse::<u64>().map_or(true, |s| s > MAX_FILE_BYTES) {
            return Err(bad(format!(
                "{path} at {commit} is larger than {MAX_FILE_BYTES} bytes"
            )));
        }
        let out = self.must("cat-file", &["cat-file", "blob", oid], None)?;
        String::from_utf8(out.stdout)
            .map(Some)
            .map_err(|_| bad(format!("{path} at {commit} is not UTF-8")))
    }
}

struct TreeEntry {
    mode: String,
    kind: String,
    oid: String,
    name: Vec<u8>,
}

/// `git ls-tree -z` output: `<mode> SP <type> SP <oid> TAB <name> NUL`.
fn parse_ls_tree(out: &[u8]) -> Vec<TreeEntry> {
    out.split(|b| *b == 0)
        .filter_map(|record| {
            let tab = record.iter().position(|b| *b == b'\t')?;
            let head = std::str::from_utf8(&record[..tab]).ok()?;
            let mut parts = head.split(' ');
            Some(TreeEntry {
                mode: parts.next()?.to_owned(),
                kind: parts.next()?.to_owned(),
                oid: parts.next()?.to_owned(),
                name: record[tab + 1..].to_vec(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_that_could_leave_the_repository_are_refused() {
        for bad in [
            "", "/etc", "..", "../x", "a/../b", "a/./b", ".", "a//b", ".git", "a/.GIT/b", "-rf",
            "a b", "a\nb", "a\\b", "envs/*",
        ] {
            assert!(check_dir(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            check_dir("envs/staging/hello-web").expect("fine"),
            ["envs", "staging", "hello-web"]
        );
        assert_eq!(check_dir("envs/").expect("fine"), ["envs"]);
        assert!(check_dir(&"a/".repeat(17)).is_err());
    }

    #[test]
    fn images_are_pinned_by_digest_and_lose_their_tag() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            pinned_image(&format!("registry.example.invalid:5000/a/b:1.2@{d}")).expect("pinned"),
            ("registry.example.invalid:5000/a/b".to_owned(), d.clone())
        );
        for bad in [
            "registry.example.invalid/a/b:1.2".to_owned(),
            format!("a/b@{d}"),
            format!("index.docker.io/a/b@{d}"),
            format!("registry.example.invalid/a/b@{}", d.to_uppercase()),
        ] {
            assert!(pinned_image(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quoting_round_trips() {
        for text in [
            "plain",
            "with \"quotes\" and \\",
            "tab\tnew\nline",
            "é ü \u{1F600}",
            "",
        ] {
            let quoted = quote(text);
            assert!(quoted.is_ascii(), "{quoted}");
            assert_eq!(unquote(&quoted).as_deref(), Some(text), "{quoted}");
        }
        assert_eq!(unquote("plain # comment").as_deref(), Some("plain"));
        assert_eq!(unquote("\"open"), None);
        assert_eq!(unquote("\"x\" junk"), None);
    }

    #[test]
    fn single_values_are_found_exactly_once() {
        let text = "a:\n  - name: \"x\"\n    digest: \"sha256:1\"\n";
        assert_eq!(single_value(text, "digest").as_deref(), Ok("sha256:1"));
        assert_eq!(single_value(text, "name").as_deref(), Ok("x"));
        assert!(single_value(text, "newName").is_err());
        assert!(single_value("digest: a\ndigest: b\n", "digest").is_err());
    }
}
