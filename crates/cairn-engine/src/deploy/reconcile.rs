//! Reconciliation: what really runs against what cairn recorded, resolved to a
//! true state with a recorded reason.
//!
//! A promotion records its intent twice before anything moves — the change entry,
//! durable in the audit log, then a deployment record `deploying` with a random
//! token — and its outcome (`deployed`, `failed`, `superseded`, `not-running`)
//! after. A promotion killed in between leaves facts without an outcome; on every
//! start of a command that reads or changes environments and before every
//! promotion, [`Promoter::reconcile`] finds and resolves them:
//!
//! - a deploy, rollback or override entry in the log with no deployment record and
//!   no change record: explained (nothing was deployed: the record is written
//!   before the target starts anything);
//! - a `deploying` record: for `local`, its sandbox is looked for by its token
//!   (in the cgroup's name; never by who answers on a port). Running, holding its
//!   port and still the newest: adopted (`deployed`, "adopted after an interrupted
//!   promotion"); replaced by a later recorded deployment: stopped; otherwise
//!   `failed`. For `gitops`, the newest commit of the environment's directory
//!   carries the change's log index in its trailers, or it was not made;
//! - a `deployed` record whose sandbox no longer serves: `not-running` (or
//!   re-adopted when its sandbox runs under its token but the record was lost);
//! - a sandbox with the token of a record that is not current: stopped. A
//!   sandbox this data directory has no record of is left alone and reported,
//!   never killed.
//!
//! Each resolution is a change record of kind `reconciled` naming the log entry
//! it explains, so `cairn audit` accounts for every deploy entry of the log. One
//! lock (`<data>/deploy/.lock`) is held by a promotion from before its log entry
//! to its outcome and by reconciliation, so a live promotion is never taken for
//! an interrupted one; a SIGKILL releases it.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cairn_model::config::DeployTarget;
use cairn_model::{
    ChangeKind, ChangeRecord, DeploymentKind, DeploymentRecord, DeploymentStatus, TargetKind,
};
use cairn_sandbox::FoundDetached;
use serde_json::{Value, json};

use crate::audit::log_dir;
use crate::deploy::local as deploy_local;
use crate::host::now_ms;
use crate::promotion::{Promoter, STATUS_SCAN};
use crate::{DataDir, EngineError};

/// The actor of reconciliation's change records.
pub const RECONCILE_ACTOR: &str = "cairn-reconcile";
/// The change record kind of a resolution.
pub const RECONCILED: &str = ChangeKind::Reconciled.as_str();
/// How long an adopted sandbox may take to hold its port.
const ADOPT_WAIT: Duration = deploy_local::START_TIMEOUT;
/// The most change records scanned for log indexes already explained.
const CHANGE_SCAN: usize = 100_000;

/// The deployments lock of a data directory, held while it lives.
#[derive(Debug)]
pub struct DeployLock {
    _file: File,
}

impl DeployLock {
    fn path(data: &DataDir) -> PathBuf {
        data.deployments().join(".lock")
    }

    /// Takes the lock, waiting up to `wait` for another promotion or
    /// reconciliation; `Ok(None)` when it is still held then.
    pub fn try_acquire(data: &DataDir, wait: Duration) -> Result<Option<DeployLock>, EngineError> {
        let dir = data.deployments();
        std::fs::create_dir_all(&dir).map_err(EngineError::io("create", &dir))?;
        let path = Self::path(data);
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
                .map_err(EngineError::io("open", &path))?
        };
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(DeployLock { _file: file })),
                Err(TryLockError::WouldBlock) if started.elapsed() < wait => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(e)) => return Err(EngineError::io("lock", &path)(e)),
            }
        }
    }

    /// Takes the lock, waiting up to `wait`; an error when another promotion
    /// still holds it.
    pub fn acquire(data: &DataDir, wait: Duration) -> Result<DeployLock, EngineError> {
        Self::try_acquire(data, wait)?.ok_or_else(|| EngineError::DeployFailed {
            why: format!(
                "another cairn promotion or reconciliation held {} for {} s; try again when it is done",
                Self::path(data).display(),
                wait.as_secs()
            ),
        })
    }
}

/// One fact reconciliation established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub workload: String,
    pub environment: String,
    pub digest: String,
    /// The log entry it explains.
    pub log_index: u64,
    /// The deployment's new status; `None` for a log entry that never got a
    /// deployment record.
    pub status: Option<DeploymentStatus>,
    /// Where the interrupted promotion was, or what else was found.
    pub stage: Stage,
    pub reason: String,
}

/// Where an interrupted promotion was when it stopped, as reconciliation tells
/// from what it left (or what else reconciliation found).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// After its log entry, before its deployment record.
    BeforeRecord,
    /// Its deployment record was `deploying`: the target was at work.
    Deploying,
    /// Its outcome was recorded, its change record was not.
    AfterOutcome,
    /// A recorded deployment found not running (or running again).
    Observed,
    /// A sandbox of a deployment that is not current, stopped.
    Stray,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::BeforeRecord => "before-record",
            Stage::Deploying => "deploying",
            Stage::AfterOutcome => "after-outcome",
            Stage::Observed => "observed",
            Stage::Stray => "stray",
        }
    }
}

/// What one reconciliation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciliation {
    /// When it ran (0 when it did not: `busy`).
    pub at_ms: i64,
    pub resolutions: Vec<Resolution>,
    /// Running sandboxes this data directory has no record of (another data
    /// directory's, or not cairn's naming): left alone, never killed.
    pub left_alone: Vec<String>,
    /// Another promotion held the lock: nothing was checked this time.
    pub busy: bool,
    /// What could not be checked (a GitOps repository that cannot be read):
    /// left as recorded, and said.
    pub unchecked: Vec<String>,
}

/// When reconciliation last ran (ms since the epoch) and how far it read the log.
pub fn last_reconciled(data: &DataDir) -> Option<(i64, u64)> {
    let text = std::fs::read_to_string(state_path(data)).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    Some((v["at_ms"].as_i64()?, v["log_size"].as_u64()?))
}

fn state_path(data: &DataDir) -> PathBuf {
    data.deployments().join("reconciled.json")
}

/// The audit log's entries from `from` on, and its size. No log yet: none.
/// The detached sandboxes found, by their token. A token can name two cgroups
/// for a moment (a deployment started again after a failed deploy, the old
/// cgroup not yet removed): the running one counts.
fn by_token(found: &[FoundDetached]) -> HashMap<&str, &FoundDetached> {
    let mut by_token: HashMap<&str, &FoundDetached> = HashMap::new();
    for f in found {
        if let Some(t) = f.token.as_deref() {
            let entry = by_token.entry(t).or_insert(f);
            if !entry.is_running() && f.is_running() {
                *entry = f;
            }
        }
    }
    by_token
}

/// Entries of the log by index.
type Entries = Vec<(u64, Vec<u8>)>;

fn log_entries(data: &DataDir, from: u64) -> Result<(u64, Entries), EngineError> {
    let dir = log_dir(data);
    if !dir.join("checkpoint").is_file() {
        return Ok((0, Vec::new()));
    }
    let Some(verifier) = crate::log_key::current_verifier(data)? else {
        return Ok((0, Vec::new()));
    };
    let log = cairn_tlog_fs::Log::open_read_only(&dir, verifier)
        .map_err(|source| EngineError::AuditLog { dir, source })?;
    let size = log.size();
    let mut entries = Vec::new();
    for index in from.min(size)..size {
        let entry = log.entry(index).map_err(|source| EngineError::AuditLog {
            dir: log_dir(data),
            source,
        })?;
        entries.push((index, entry));
    }
    Ok((size, entries))
}

impl Promoter<'_> {
    /// Reconciles, waiting up to `wait` for a promotion in progress; when it is
    /// still in progress, returns `busy` without checking anything.
    pub fn reconcile(&self, wait: Duration) -> Result<Reconciliation, EngineError> {
        match DeployLock::try_acquire(self.data, wait)? {
            Some(_lock) => self.reconcile_locked(),
            None => Ok(Reconciliation {
                busy: true,
                ..Reconciliation::default()
            }),
        }
    }

    /// Reconciles; the caller holds the [`DeployLock`].
    pub(crate) fn reconcile_locked(&self) -> Result<Reconciliation, EngineError> {
        let mut out = Reconciliation {
            at_ms: now_ms(),
            ..Reconciliation::default()
        };
        let rows = self.store.deployments(None, None, STATUS_SCAN)?;
        // 1. Deploy entries of the log that never got a record.
        let log_size = self.explain_log_entries(&mut out, &rows)?;

        // 2. The detached sandboxes on this host, by token.
        let local = rows
            .iter()
            .any(|d| TargetKind::parse(&d.target) == Some(TargetKind::Local));
        let found: Vec<FoundDetached> = if local {
            cairn_sandbox::find_detached().unwrap_or_default()
        } else {
            Vec::new()
        };
        let by_token = by_token(&found);

        // 3. Intents without an outcome (newest first).
        self.resolve_intents(&mut out, &rows, &by_token)?;

        // 4. What should run: does it?
        let rows = self.store.deployments(None, None, STATUS_SCAN)?;
        let current_tokens = self.check_current(&mut out, &rows, &by_token)?;

        // 5. Sandboxes of records that are not current: stopped. Unknown ones: left alone.
        self.stop_strays(&mut out, &rows, &found, &current_tokens)?;

        // 6. When, and how far into the log.
        let state = json!({ "at_ms": out.at_ms, "log_size": log_size }).to_string();
        crate::keys::write_atomically(&state_path(self.data), state.as_bytes(), 0o644)?;
        Ok(out)
    }

    /// Step 1: deploy entries of the log that never got a record; returns how
    /// far the log was read.
    fn explain_log_entries(
        &self,
        out: &mut Reconciliation,
        rows: &[DeploymentRecord],
    ) -> Result<u64, EngineError> {
        let from = last_reconciled(self.data).map_or(0, |(_, size)| size);
        let (log_size, entries) = log_entries(self.data, from)?;
        let explained: HashSet<u64> = if entries.is_empty() {
            HashSet::new()
        } else {
            self.store
                .changes(None, CHANGE_SCAN)?
                .into_iter()
                .map(|(_, c)| c.log_index)
                .collect()
        };
        let by_index: HashMap<u64, &DeploymentRecord> =
            rows.iter().map(|d| (d.log_index, d)).collect();
        for (index, entry) in entries {
            let Ok(v) = serde_json::from_slice::<Value>(&entry) else {
                continue;
            };
            let kind = v["kind"].as_str().unwrap_or_default();
            if DeploymentKind::parse(kind).is_none() || explained.contains(&index) {
                continue;
            }
            let resolution = match by_index.get(&index) {
                // An intent: resolved below.
                Some(row) if row.status == DeploymentStatus::Deploying => continue,
                Some(row) => Resolution {
                    stage: Stage::AfterOutcome,
                    ..resolution(
                        row,
                        row.status,
                        format!(
                            "the {kind} was interrupted after its outcome ({}) was recorded and before its change record; recorded now",
                            row.status.as_str()
                        ),
                    )
                },
                None => {
                    let spec = &v["spec"];
                    let text = |k: &str| spec[k].as_str().unwrap_or("?").to_owned();
                    Resolution {
                        workload: text("workload"),
                        environment: text("environment"),
                        digest: spec["artifact"]
                            .as_str()
                            .or(spec["toArtifact"].as_str())
                            .unwrap_or("?")
                            .to_owned(),
                        log_index: index,
                        status: None,
                        stage: Stage::BeforeRecord,
                        reason: format!(
                            "the {kind} was interrupted after its log entry and before its deployment was recorded: nothing was deployed"
                        ),
                    }
                }
            };
            let token = by_index.get(&index).and_then(|r| r.token.clone());
            self.record_resolution(out, resolution, token.as_deref())?;
        }
        Ok(log_size)
    }

    /// Step 3: intents without an outcome (newest first).
    fn resolve_intents(
        &self,
        out: &mut Reconciliation,
        rows: &[DeploymentRecord],
        by_token: &HashMap<&str, &FoundDetached>,
    ) -> Result<(), EngineError> {
        for (i, row) in rows.iter().enumerate() {
            if row.status != DeploymentStatus::Deploying {
                continue;
            }
            let Some(token) = row.token.as_deref() else {
                continue;
            };
            let same_env = |r: &&DeploymentRecord| {
                r.workload == row.workload && r.environment == row.environment
            };
            let later = rows[..i]
                .iter()
                .filter(same_env)
                .find(|r| r.status == DeploymentStatus::Deploying || r.status.was_deployed());
            let previous = rows[i + 1..].iter().filter(same_env).find(|r| {
                matches!(
                    r.status,
                    DeploymentStatus::Deployed | DeploymentStatus::NotRunning
                )
            });
            let (status, reason, detail) = match TargetKind::parse(&row.target) {
                Some(TargetKind::Local) => {
                    self.resolve_local_intent(row, token, later, by_token.get(token).copied())?
                }
                Some(TargetKind::Gitops) => self.resolve_gitops_intent(row, later)?,
                None => (
                    DeploymentStatus::Failed,
                    format!(
                        "interrupted; cairn cannot check the deploy target `{}`",
                        row.target
                    ),
                    None,
                ),
            };
            self.store
                .set_deployment_status(token, status, Some(&reason), detail.as_deref())?;
            if status == DeploymentStatus::Deployed
                && let Some(p) = previous
                && let Some(t) = &p.token
            {
                self.store.set_deployment_status(
                    t,
                    DeploymentStatus::Superseded,
                    Some(&format!(
                        "replaced by the deployment of log entry {} (adopted by reconciliation)",
                        row.log_index
                    )),
                    None,
                )?;
            }
            let r = Resolution {
                stage: Stage::Deploying,
                ..resolution(row, status, reason)
            };
            self.record_resolution(out, r, Some(token))?;
        }
        Ok(())
    }

    /// Step 4: what should run — does it? Returns the tokens of the current
    /// deployments.
    fn check_current(
        &self,
        out: &mut Reconciliation,
        rows: &[DeploymentRecord],
        by_token: &HashMap<&str, &FoundDetached>,
    ) -> Result<HashSet<String>, EngineError> {
        let mut current_tokens = HashSet::new();
        let mut seen = HashSet::new();
        for row in rows {
            if !matches!(
                row.status,
                DeploymentStatus::Deployed | DeploymentStatus::NotRunning
            ) || !seen.insert((row.workload.clone(), row.environment.clone()))
            {
                continue;
            }
            if let Some(t) = &row.token {
                current_tokens.insert(t.clone());
            }
            let target = TargetKind::parse(&row.target);
            if target == Some(TargetKind::Gitops) {
                if let Err(e) = self.check_gitops_current(out, row) {
                    out.unchecked.push(format!(
                        "{} → {}: the GitOps repository could not be read: {e}",
                        row.workload, row.environment
                    ));
                }
                continue;
            }
            if target != Some(TargetKind::Local) {
                continue;
            }
            let recorded = deploy_local::current(self.data, &row.workload, &row.environment)
                .ok()
                .flatten();
            let serving = recorded.as_ref().is_some_and(|l| {
                let same = match &row.token {
                    Some(t) => l.token().as_deref() == Some(t.as_str()),
                    None => l.digest == row.digest,
                };
                same && l.serves()
            });
            let mut runs = serving;
            // A sandbox under its token that the record does not point at (the
            // record was lost, or a restart was interrupted) may still be
            // starting: it gets the start timeout; the recorded one is taken as
            // it is now.
            let recorded_pid = recorded.as_ref().map(|l| l.sandbox().pid);
            if !serving
                && let Some(t) = row.token.as_deref()
                && let Some(f) = by_token.get(t)
                && let Some(port) = deploy_local::port_of(&row.detail)
                && f.is_running()
                && serves_within(
                    f,
                    port,
                    if f.sandbox(PathBuf::new()).map(|s| s.pid) == recorded_pid {
                        Duration::ZERO
                    } else {
                        ADOPT_WAIT
                    },
                )
                && deploy_local::adopt(
                    self.data,
                    &row.workload,
                    &row.environment,
                    &row.digest,
                    port,
                    f,
                )?
                .is_some()
            {
                runs = true;
                self.set_and_resolve(
                    out,
                    row,
                    DeploymentStatus::Deployed,
                    format!(
                        "its sandbox runs under its token and holds port {port}; its lost record was written again"
                    ),
                )?;
            }
            if !runs && row.status == DeploymentStatus::Deployed {
                self.set_and_resolve(
                    out,
                    row,
                    DeploymentStatus::NotRunning,
                    "its sandbox no longer runs or no longer holds its port (found by reconciliation)"
                        .to_owned(),
                )?;
            }
        }
        Ok(current_tokens)
    }

    /// Step 5: sandboxes of records that are not current are stopped; unknown
    /// ones are left alone.
    fn stop_strays(
        &self,
        out: &mut Reconciliation,
        rows: &[DeploymentRecord],
        found: &[FoundDetached],
        current_tokens: &HashSet<String>,
    ) -> Result<(), EngineError> {
        let by_record: HashMap<&str, &DeploymentRecord> = rows
            .iter()
            .filter_map(|d| Some((d.token.as_deref()?, d)))
            .collect();
        for f in found {
            let name = f
                .cgroups
                .first()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let record = f.token.as_deref().and_then(|t| by_record.get(t));
            match record {
                None => {
                    if f.is_running() {
                        out.left_alone.push(format!(
                            "detached sandbox {name}: this data directory has no record of it; left alone"
                        ));
                    }
                }
                Some(_) if !f.is_running() => {
                    // Nothing of it runs: its empty cgroup is removed.
                    stop_found(f)?;
                }
                Some(row) if current_tokens.contains(row.token.as_deref().unwrap_or_default()) => {}
                Some(row) => {
                    let running = true;
                    stop_found(f)?;
                    if running {
                        let reason = format!(
                            "its sandbox ({name}) still ran although the deployment is {}: stopped",
                            row.status.as_str()
                        );
                        let r = Resolution {
                            stage: Stage::Stray,
                            ..resolution(row, row.status, reason)
                        };
                        self.record_resolution(out, r, row.token.as_deref())?;
                    }
                }
            }
        }
        Ok(())
    }

    fn set_and_resolve(
        &self,
        out: &mut Reconciliation,
        row: &DeploymentRecord,
        status: DeploymentStatus,
        reason: String,
    ) -> Result<(), EngineError> {
        if let Some(t) = &row.token {
            self.store
                .set_deployment_status(t, status, Some(&reason), None)?;
        }
        self.record_resolution(out, resolution(row, status, reason), row.token.as_deref())
    }

    /// Keeps a resolution as a `reconciled` change record naming its log entry.
    fn record_resolution(
        &self,
        out: &mut Reconciliation,
        r: Resolution,
        token: Option<&str>,
    ) -> Result<(), EngineError> {
        self.keep_change(&ChangeRecord {
            kind: RECONCILED.to_owned(),
            workload: r.workload.clone(),
            environment: r.environment.clone(),
            actor: RECONCILE_ACTOR.to_owned(),
            from_digest: None,
            to_digest: r.digest.clone(),
            log_index: r.log_index,
            at_ms: now_ms(),
            json: json!({
                "status": r.status.map(DeploymentStatus::as_str),
                "stage": r.stage.as_str(),
                "token": token,
                "outcome": r.reason,
            })
            .to_string(),
        })?;
        out.resolutions.push(r);
        Ok(())
    }

    /// A current `gitops` deployment: the newest commit of its directory must be
    /// its own (carry its log entry); otherwise it no longer is what the
    /// repository holds.
    fn check_gitops_current(
        &self,
        out: &mut Reconciliation,
        row: &DeploymentRecord,
    ) -> Result<(), EngineError> {
        let DeployTarget::Gitops { repo, dir, .. } = self.org.target(&row.environment) else {
            return Ok(());
        };
        let dir = dir
            .replace("{workload}", &row.workload)
            .replace("{environment}", &row.environment);
        let head = crate::deploy::gitops::head_change(std::path::Path::new(&repo), &dir)?;
        let holds = matches!(&head, Some((_, Some(i))) if *i == row.log_index);
        match (row.status, holds) {
            (DeploymentStatus::Deployed, false) => self.set_and_resolve(
                out,
                row,
                DeploymentStatus::NotRunning,
                format!(
                    "{dir} in {repo} is at {} now, not at this deployment's commit",
                    head.map_or("no commit".to_owned(), |(c, i)| format!(
                        "commit {c} ({})",
                        i.map_or("not cairn's".to_owned(), |i| format!("log entry {i}"))
                    ))
                ),
            ),
            (DeploymentStatus::NotRunning, true) => self.set_and_resolve(
                out,
                row,
                DeploymentStatus::Deployed,
                format!("{dir} in {repo} holds its commit again"),
            ),
            _ => Ok(()),
        }
    }

    /// A `local` intent: adopt its running sandbox, stop it, or mark it failed.
    fn resolve_local_intent(
        &self,
        row: &DeploymentRecord,
        token: &str,
        later: Option<&DeploymentRecord>,
        found: Option<&FoundDetached>,
    ) -> Result<(DeploymentStatus, String, Option<String>), EngineError> {
        let port = deploy_local::port_of(&row.detail);
        let running = found.is_some_and(FoundDetached::is_running);
        if let Some(later) = later {
            if let Some(f) = found {
                stop_found(f)?;
            }
            return Ok((
                DeploymentStatus::Superseded,
                format!(
                    "interrupted, and the deployment of log entry {} came after it{}",
                    later.log_index,
                    if running {
                        "; its sandbox was stopped"
                    } else {
                        ""
                    }
                ),
                None,
            ));
        }
        if let (Some(f), Some(port)) = (found, port)
            && running
        {
            if serves_within(f, port, ADOPT_WAIT)
                && deploy_local::adopt(
                    self.data,
                    &row.workload,
                    &row.environment,
                    &row.digest,
                    port,
                    f,
                )?
                .is_some()
            {
                return Ok((
                    DeploymentStatus::Deployed,
                    format!(
                        "adopted after interrupted promotion: its sandbox (token {token}) runs and holds port {port}"
                    ),
                    None,
                ));
            }
            stop_found(f)?;
            return Ok((
                DeploymentStatus::Failed,
                format!(
                    "interrupted; its sandbox ran but did not hold port {port} within {} s: stopped",
                    ADOPT_WAIT.as_secs()
                ),
                None,
            ));
        }
        if let Some(f) = found {
            stop_found(f)?;
        }
        Ok((
            DeploymentStatus::Failed,
            "interrupted before its sandbox served; nothing of it runs".to_owned(),
            None,
        ))
    }

    /// A `gitops` intent: the commit was made (it carries the log index) or not.
    fn resolve_gitops_intent(
        &self,
        row: &DeploymentRecord,
        later: Option<&DeploymentRecord>,
    ) -> Result<(DeploymentStatus, String, Option<String>), EngineError> {
        let DeployTarget::Gitops { repo, dir, .. } = self.org.target(&row.environment) else {
            return Ok((
                DeploymentStatus::Failed,
                "interrupted; the environment's target is no longer gitops".to_owned(),
                None,
            ));
        };
        let dir = dir
            .replace("{workload}", &row.workload)
            .replace("{environment}", &row.environment);
        let head = crate::deploy::gitops::head_change(std::path::Path::new(&repo), &dir)?;
        match head {
            Some((commit, Some(index))) if index == row.log_index => {
                Ok(if let Some(later) = later {
                    (
                        DeploymentStatus::Superseded,
                        format!(
                            "interrupted after commit {commit}; the deployment of log entry {} came after it",
                            later.log_index
                        ),
                        Some(format!("commit {commit}")),
                    )
                } else {
                    // The commit is HEAD; its work tree may not have followed.
                    let completed =
                        match crate::deploy::gitops::complete(std::path::Path::new(&repo), &commit)
                        {
                            Ok(true) => "; the work tree was brought to it".to_owned(),
                            Ok(false) => String::new(),
                            Err(e) => format!("; its work tree could not be brought to it: {e}"),
                        };
                    (
                        DeploymentStatus::Deployed,
                        format!(
                            "adopted after interrupted promotion: commit {commit} of {repo} carries its log entry{completed}"
                        ),
                        Some(format!("commit {commit}")),
                    )
                })
            }
            Some((commit, index)) => Ok((
                DeploymentStatus::Failed,
                format!(
                    "interrupted before its commit: {dir} in {repo} is at commit {commit} ({})",
                    index.map_or("not cairn's".to_owned(), |i| format!("log entry {i}"))
                ),
                None,
            )),
            None => Ok((
                DeploymentStatus::Failed,
                format!("interrupted before its commit: {repo} has no commit of {dir}"),
                None,
            )),
        }
    }
}

fn resolution(row: &DeploymentRecord, status: DeploymentStatus, reason: String) -> Resolution {
    Resolution {
        workload: row.workload.clone(),
        environment: row.environment.clone(),
        digest: row.digest.clone(),
        log_index: row.log_index,
        status: Some(status),
        stage: Stage::Observed,
        reason,
    }
}

/// Whether the found sandbox holds `port` (waiting up to `wait` while it runs).
fn serves_within(f: &FoundDetached, port: u16, wait: Duration) -> bool {
    let Some(sandbox) = f.sandbox(PathBuf::new()) else {
        return false;
    };
    let deadline = Instant::now() + wait;
    loop {
        if sandbox.port_holders(port).ours {
            return true;
        }
        if !sandbox.is_running() || Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops a found sandbox (or removes its empty cgroup).
fn stop_found(f: &FoundDetached) -> Result<(), EngineError> {
    let sandbox = f
        .sandbox(PathBuf::new())
        .unwrap_or_else(|| cairn_sandbox::DetachedSandbox {
            pid: 0,
            start_time: 0,
            cgroups: f.cgroups.clone(),
            log: PathBuf::new(),
        });
    cairn_sandbox::stop_detached(&sandbox, deploy_local::STOP_GRACE)?;
    Ok(())
}
