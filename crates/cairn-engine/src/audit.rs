//! The audit log: one transparency log per data directory (`<data>/log`, in the
//! C2SP tlog-tiles layout of `cairn-tlog-fs`; its checkpoint key is
//! `<data>/keys/log.key`, or in a PKCS#11 token: see [`crate::log_key`]),
//! where every change that matters is recorded before it takes effect:
//! deployments, rollbacks, overrides, policy changes, key rotations (the
//! evidence key's and the log key's), identity and role changes, base catalog
//! changes, and the evidence cairn signs.
//!
//! The rule "an environment changes only after its log entry is durable"
//! (DESIGN.md, invariants) is one call: [`AuditLog::record`] returns a
//! [`Receipt`] only once the entry is fsync'd and covered by a published,
//! signed checkpoint; on `Err` nothing was recorded and the change must not
//! happen.
//!
//! ```no_run
//! # fn apply() {}
//! use cairn_engine::audit::{AuditLog, Change, Deploy};
//! # fn demo(data: &cairn_engine::DataDir) -> Result<(), cairn_engine::EngineError> {
//! let audit = AuditLog::open(data)?;
//! let receipt = audit.record(&Change::Deploy(Deploy {
//!     workload: "hello".into(),
//!     environment: "production".into(),
//!     artifact: "sha256:…".into(),
//!     actor: "alice".into(),
//! }))?;
//! apply(); // only now: the entry is durable at `receipt.index`
//! # Ok(()) }
//! ```
//!
//! Entries are small canonical JSON documents (keys sorted, no whitespace) in
//! Rekor's entry shape `{"apiVersion","kind","spec"}`; evidence entries are
//! exactly Rekor v2 `dsse` 0.0.2 bodies (see `cairn_evidence::dsse_log_body`), so
//! a bundle's `canonicalizedBody` is the log's leaf and Sigstore verifiers can
//! check its inclusion with `trusted_root.json`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cairn_evidence::{
    Envelope, InclusionProof, KindVersion, LogId, TlogEntry, VerifyingKey, dsse_log_body,
    log_key_id,
};
use cairn_tlog::merkle::Hash;
use cairn_tlog::note::Verifier;
use cairn_tlog_fs::{Appender, Log, LogError};
use serde_json::{Value, json};

use crate::{DataDir, EngineError};

/// The origin line of cairn's checkpoints, and the name of its log key.
pub const ORIGIN: &str = "cairn.local/log";
/// How long a short-lived user waits for another process's append lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);
const LOCK_POLL: Duration = Duration::from_millis(10);
/// The apiVersion of cairn's own change entries.
pub const CHANGE_VERSION: &str = "0.0.1";

/// This installation's name in its evidence: the SLSA `builder.id` of its
/// provenance, which its gate expects. `configured` (org.toml's `[evidence]
/// builder_id`) when given; otherwise derived from the audit log's key, made
/// once per data directory, never rotated and kept by a backup, so two
/// installations differ and one keeps its id across signing-key rotations:
/// `urn:cairn:builder:<the first 16 hex digits of the log's key id>`. `None`
/// before the log has a key (no provenance of this installation exists yet);
/// nothing is created.
pub fn builder_id(data: &DataDir, configured: Option<&str>) -> Result<Option<String>, EngineError> {
    if let Some(id) = configured {
        return Ok(Some(id.to_owned()));
    }
    // The installation's first log key: a log key moved into a token keeps
    // the id (see `crate::log_key`).
    Ok(crate::log_key::founding_verifier(data)?
        .map(|first| derived_builder_id(&log_key_id(&first))))
}

/// The builder id a gate expects before this installation's log has a key: no
/// provenance carries it (a writer makes the log's key before it signs).
pub const NO_BUILDS_YET: &str = "urn:cairn:builder:none-yet";

/// This installation's builder id for a gate (reads, creates nothing): see
/// [`builder_id`]; [`NO_BUILDS_YET`] before the log has a key.
pub fn gate_builder_id(data: &DataDir, configured: Option<&str>) -> Result<String, EngineError> {
    Ok(builder_id(data, configured)?.unwrap_or_else(|| NO_BUILDS_YET.to_owned()))
}

/// This installation's builder id for a writer of provenance: see
/// [`builder_id`]; makes the log's key when it has none yet (the writer logs
/// what it signs anyway).
pub fn own_builder_id(data: &DataDir, configured: Option<&str>) -> Result<String, EngineError> {
    if let Some(id) = configured {
        return Ok(id.to_owned());
    }
    let first = match crate::log_key::founding_verifier(data)? {
        Some(first) => first,
        None => crate::log_key::current_verifier_or_create(data)?,
    };
    Ok(derived_builder_id(&log_key_id(&first)))
}

/// This installation as the verifier of its VSAs (SLSA `verifier.id`): with a
/// configured builder id, that id's `#verifier`; else
/// `urn:cairn:verifier:<the same 16 hex digits as its builder id>`. Reads only.
pub fn verifier_id(data: &DataDir, configured: Option<&str>) -> Result<String, EngineError> {
    if let Some(id) = configured {
        return Ok(format!("{id}#verifier"));
    }
    let builder = gate_builder_id(data, None)?;
    Ok(builder.replacen("urn:cairn:builder:", "urn:cairn:verifier:", 1))
}

fn derived_builder_id(log_id: &[u8; 32]) -> String {
    let hex: String = log_id[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("urn:cairn:builder:{hex}")
}

/// `<data>/log`: the log's tiles, entry bundles and checkpoint.
pub fn log_dir(data: &DataDir) -> PathBuf {
    data.root().join("log")
}

/// `<data>/keys/log.key`: the log's Ed25519 checkpoint key (0600), when it
/// is in a file (its verifier recorded in `keys/log.pub`, what readers use),
/// else `keys/log.pkcs11.json`: see [`crate::log_key`].
pub fn key_path(data: &DataDir) -> PathBuf {
    crate::log_key::key_path(data)
}

/// `<data>/trusted_root.json`: a Sigstore trusted root naming the log's key, for
/// `cairn verify` and other Sigstore verifiers of cairn's bundles.
pub fn trusted_root_path(data: &DataDir) -> PathBuf {
    data.root().join("trusted_root.json")
}

/// A deployment of an artifact to an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    pub workload: String,
    pub environment: String,
    /// `sha256:<hex>` of the artifact.
    pub artifact: String,
    pub actor: String,
}

/// A deployment stopped (`cairn undeploy`): the environment runs nothing of
/// the workload afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undeploy {
    pub workload: String,
    pub environment: String,
    /// `sha256:<hex>` of the artifact that ran.
    pub artifact: String,
    pub actor: String,
}

/// A rollback of an environment to an earlier artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    pub workload: String,
    pub environment: String,
    pub from_artifact: String,
    pub to_artifact: String,
    pub actor: String,
}

/// A gate decision overridden by someone allowed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub workload: String,
    pub environment: String,
    pub artifact: String,
    pub gate: String,
    pub reason: String,
    pub actor: String,
}

/// A change of a policy or chain file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyChange {
    pub policy: String,
    /// `sha256:<hex>` of the old content, if there was one.
    pub old_digest: Option<String>,
    pub new_digest: String,
    pub actor: String,
}

/// A signing key replaced (or made for the first time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRotation {
    /// Which key: `evidence-signing`, or `log-checkpoint` (the log's own key).
    pub purpose: String,
    pub old_key_id: Option<String>,
    pub new_key_id: String,
    pub algorithm: String,
}

/// What an [`AccessChange`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessAction {
    /// An identity was added (the bootstrap too).
    IdentityAdd,
    /// An identity was revoked: its token stops working.
    IdentityRevoke,
    /// A role was bound to an identity.
    RoleGrant,
    /// A role binding was removed.
    RoleRevoke,
    /// A forge login was linked to an identity (its approvals become reviews).
    ForgeLink,
    /// An SSH commit-signing key was registered to an identity.
    SigningKeyAdd,
}

impl AccessAction {
    /// The action's name in the entry.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessAction::IdentityAdd => "identity-add",
            AccessAction::IdentityRevoke => "identity-revoke",
            AccessAction::RoleGrant => "role-grant",
            AccessAction::RoleRevoke => "role-revoke",
            AccessAction::ForgeLink => "forge-link",
            AccessAction::SigningKeyAdd => "signing-key-add",
        }
    }
}

/// An identity or role change (see `crate::access`). Never carries a token or
/// a token's hash: only names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessChange {
    pub action: AccessAction,
    /// The identity added, revoked, or whose binding changed.
    pub identity: String,
    /// `user` or `service-account`, for [`AccessAction::IdentityAdd`].
    pub kind: Option<String>,
    /// For [`AccessAction::ForgeLink`]: `forge:login`, the forge account whose
    /// approvals become this identity's reviews.
    pub forge_login: Option<String>,
    /// For [`AccessAction::SigningKeyAdd`]: the SSH key's `SHA256:…`
    /// fingerprint (commits it signs are bound to the identity).
    pub signing_key: Option<String>,
    /// The role granted or revoked; for the bootstrap's identity-add, the
    /// `platform-admin` it is bound organisation-wide.
    pub role: Option<String>,
    /// The binding's workload (`None`: organisation-wide).
    pub workload: Option<String>,
    /// The binding's environment (only with a workload).
    pub environment: Option<String>,
    /// Who made the change; `None` only for the bootstrap (no identity existed).
    pub actor: Option<String>,
}

/// A base image named in the catalog: a new name, or a name moved to another
/// digest (the entry names the one it replaces; the catalog keeps both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogChange {
    pub name: String,
    /// `sha256:<hex>` of the base's manifest.
    pub digest: String,
    /// The digest the name had until now, if it had one.
    pub replaces: Option<String>,
    /// Where the base came from (a layout, a root filesystem, a registry reference).
    pub source: String,
    /// Who made the change; `None` only while the organisation has no identities.
    pub actor: Option<String>,
}

/// Advisories imported into the store (the closed loop matches them and
/// gates read their findings): where from, and who asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvisoryImport {
    /// The directory, file or archive the records were read from.
    pub source: String,
    /// Who imported them; `None` only while the organisation has no identities.
    pub actor: Option<String>,
}

/// One step of a remediation by cairn (see `crate::remediation`): started,
/// base refreshed, rebased, tested, waiting for approval, failed, remediated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemediationStep {
    /// The remediation's id (`<workload>-<start ms>`).
    pub id: String,
    pub workload: String,
    /// The environment whose exposure it remediates.
    pub environment: String,
    pub step: String,
    /// The digest the step made or acted on.
    pub artifact: Option<String>,
    pub detail: String,
    /// Who started the remediation (`cairn-remediation` for the server's loop).
    pub actor: String,
}

/// One change, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Deploy(Deploy),
    Rollback(Rollback),
    Undeploy(Undeploy),
    Override(Override),
    PolicyChange(PolicyChange),
    KeyRotation(KeyRotation),
    Access(AccessChange),
    Catalog(CatalogChange),
    AdvisoryImport(AdvisoryImport),
    Remediation(RemediationStep),
    /// A signed DSSE envelope: the Rekor v2 `dsse` body (payload hash,
    /// signatures, verifier key) — see [`Change::evidence`].
    Evidence {
        body: Vec<u8>,
    },
}

impl Change {
    /// The evidence entry for `envelope`, signed by `key`.
    pub fn evidence(envelope: &Envelope, key: &VerifyingKey) -> Result<Change, EngineError> {
        Ok(Change::Evidence {
            body: dsse_log_body(envelope, key)?,
        })
    }

    /// `(kind, apiVersion)` of the entry.
    pub fn kind(&self) -> (&'static str, &'static str) {
        match self {
            Change::Deploy(_) => ("deploy", CHANGE_VERSION),
            Change::Rollback(_) => ("rollback", CHANGE_VERSION),
            Change::Undeploy(_) => ("undeploy", CHANGE_VERSION),
            Change::Override(_) => ("override", CHANGE_VERSION),
            Change::PolicyChange(_) => ("policy-change", CHANGE_VERSION),
            Change::KeyRotation(_) => ("key-rotation", CHANGE_VERSION),
            Change::Access(_) => ("access-change", CHANGE_VERSION),
            Change::Catalog(_) => ("catalog-change", CHANGE_VERSION),
            Change::AdvisoryImport(_) => ("advisory-import", CHANGE_VERSION),
            Change::Remediation(_) => ("remediation", CHANGE_VERSION),
            Change::Evidence { .. } => (
                cairn_evidence::DSSE_ENTRY_KIND,
                cairn_evidence::DSSE_ENTRY_VERSION,
            ),
        }
    }

    /// The entry's bytes: canonical JSON, keys sorted, no whitespace.
    pub fn to_entry(&self) -> Vec<u8> {
        let spec = match self {
            Change::Evidence { body } => return body.clone(),
            Change::Deploy(d) => json!({
                "workload": d.workload, "environment": d.environment,
                "artifact": d.artifact, "actor": d.actor,
            }),
            Change::Undeploy(u) => json!({
                "workload": u.workload, "environment": u.environment,
                "artifact": u.artifact, "actor": u.actor,
            }),
            Change::Rollback(r) => json!({
                "workload": r.workload, "environment": r.environment,
                "fromArtifact": r.from_artifact, "toArtifact": r.to_artifact,
                "actor": r.actor,
            }),
            Change::Override(o) => json!({
                "workload": o.workload, "environment": o.environment,
                "artifact": o.artifact, "gate": o.gate, "reason": o.reason,
                "actor": o.actor,
            }),
            Change::PolicyChange(p) => json!({
                "policy": p.policy, "oldDigest": p.old_digest,
                "newDigest": p.new_digest, "actor": p.actor,
            }),
            Change::KeyRotation(k) => json!({
                "purpose": k.purpose, "oldKeyId": k.old_key_id,
                "newKeyId": k.new_key_id, "algorithm": k.algorithm,
            }),
            Change::Catalog(c) => json!({
                "name": c.name, "digest": c.digest, "replaces": c.replaces,
                "source": c.source, "actor": c.actor,
            }),
            Change::AdvisoryImport(a) => json!({ "source": a.source, "actor": a.actor }),
            Change::Remediation(r) => json!({
                "id": r.id, "workload": r.workload, "environment": r.environment,
                "step": r.step, "artifact": r.artifact, "detail": r.detail,
                "actor": r.actor,
            }),
            Change::Access(a) => {
                let mut spec = json!({
                    "action": a.action.as_str(), "identity": a.identity,
                    "kind": a.kind, "role": a.role, "workload": a.workload,
                    "environment": a.environment, "actor": a.actor,
                });
                if let Some(login) = &a.forge_login {
                    spec["forgeLogin"] = json!(login);
                }
                if let Some(key) = &a.signing_key {
                    spec["signingKey"] = json!(key);
                }
                spec
            }
        };
        let (kind, version) = self.kind();
        let entry: Value = json!({ "apiVersion": version, "kind": kind, "spec": spec });
        // A `Value` of strings and nulls always serialises; the map is sorted.
        entry.to_string().into_bytes()
    }
}

/// Proof that an entry is durable in the log: its index, the signed checkpoint
/// that covers it, and the RFC 9162 inclusion proof to that checkpoint's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub index: u64,
    /// The entry's bytes (the Merkle leaf).
    pub entry: Vec<u8>,
    pub kind: (&'static str, &'static str),
    pub tree_size: u64,
    pub root: Hash,
    pub inclusion_proof: Vec<Hash>,
    /// The signed checkpoint (C2SP signed note) for `tree_size`.
    pub checkpoint: String,
    /// The log id (see `cairn_evidence::log_key_id`).
    pub log_id: [u8; 32],
}

impl Receipt {
    /// The bundle's `tlogEntries[]` item for this entry, integrated at
    /// `integrated_time` (unix seconds).
    pub fn tlog_entry(&self, integrated_time: i64) -> TlogEntry {
        let index = i64::try_from(self.index).unwrap_or(i64::MAX);
        TlogEntry {
            log_index: index,
            log_id: LogId {
                key_id: self.log_id.to_vec(),
            },
            kind_version: KindVersion {
                kind: self.kind.0.to_owned(),
                version: self.kind.1.to_owned(),
            },
            integrated_time,
            inclusion_promise: None,
            inclusion_proof: Some(InclusionProof {
                log_index: index,
                root_hash: self.root.to_vec(),
                tree_size: i64::try_from(self.tree_size).unwrap_or(i64::MAX),
                hashes: self.inclusion_proof.iter().map(|h| h.to_vec()).collect(),
                checkpoint: cairn_evidence::Checkpoint {
                    envelope: self.checkpoint.clone(),
                },
            }),
            canonicalized_body: self.entry.clone(),
        }
    }
}

/// The store whose lock every appender of this process also takes
/// ([`serialise_appends_through`]).
static SHARED_STORE: std::sync::OnceLock<std::sync::Arc<dyn cairn_store::Store>> =
    std::sync::OnceLock::new();

/// Makes every appender of this process also hold `store`'s audit-log lock
/// ([`cairn_store::ServerStore::lock_audit_log`]) while it has the log open:
/// processes on many hosts that share one database (`cairn serve` replicas,
/// `cairn worker`s) then append one at a time even where the volume holding
/// the log does not carry file locks across hosts. Taken before the log's own
/// lock file, in every process, so the two never deadlock. Set once, when the
/// process opens a shared database; later calls change nothing.
pub fn serialise_appends_through(store: std::sync::Arc<dyn cairn_store::Store>) {
    let _ = SHARED_STORE.set(store);
}

/// The data directory's audit log, open for appending (it holds the log's
/// append lock while it lives). Appends from many threads share fsyncs.
pub struct AuditLog {
    appender: Appender,
    verifier: Verifier,
    log_id: [u8; 32],
    /// The shared store's lock, held while the log is open (declared last:
    /// released after the log's own lock).
    _shared_lock: Option<Box<dyn std::any::Any + Send>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("appender", &self.appender)
            .field("shared_lock", &self._shared_lock.is_some())
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens the log, creating it and its key on first use, and writes
    /// `trusted_root.json` when it is missing or names another key. Fails at
    /// once when another process holds the log (see [`AuditLog::open_waiting`]).
    pub fn open(data: &DataDir) -> Result<AuditLog, EngineError> {
        Self::open_waiting(data, Duration::ZERO)
    }

    /// Like [`AuditLog::open`], but while another process holds the log's
    /// append lock, retries for up to `wait`. Short-lived users (a CLI command,
    /// one certification) open, record and drop, so that processes sharing a
    /// data directory take turns; a long-lived one (a server) keeps one open and
    /// shares it between threads, whose appends then share fsyncs.
    pub fn open_waiting(data: &DataDir, wait: Duration) -> Result<AuditLog, EngineError> {
        // The checkpoint key, opened once (a key in a token is logged in to
        // and probed here; any failure is an error, never another key).
        let signer = crate::log_key::signer(data)?;
        let verifier = signer.verifier();
        let dir = log_dir(data);
        let shared_lock = match SHARED_STORE.get() {
            Some(store) => store.lock_audit_log(wait.max(LOCK_POLL))?,
            None => None,
        };
        let deadline = Instant::now() + wait;
        let log = loop {
            match Log::open_shared(&dir, signer.clone()) {
                Err(LogError::Locked(_)) if Instant::now() < deadline => {
                    std::thread::sleep(LOCK_POLL);
                }
                opened => break opened.map_err(|source| EngineError::AuditLog { dir, source })?,
            }
        };
        let log_id = log_key_id(&verifier);
        write_trusted_root_for(data)?;
        Ok(AuditLog {
            appender: Appender::new(log),
            verifier,
            log_id,
            _shared_lock: shared_lock,
        })
    }

    /// Hands the log to a new checkpoint key (see
    /// [`cairn_tlog_fs::Log::rotate_signer`]): the current checkpoint is
    /// published again signed by the old key and `next`, which signs every
    /// later one. Record the change (`key-rotation`) before calling this.
    pub(crate) fn rotate_signer(
        &mut self,
        next: std::sync::Arc<dyn cairn_tlog::note::NoteSigner>,
    ) -> Result<(), EngineError> {
        let dir = self
            .appender
            .with_log(|log| log.dir().to_owned())
            .map_err(EngineError::AuditAppend)?;
        let verifier = next.verifier();
        self.appender
            .with_log_mut(|log| log.rotate_signer(next))
            .map_err(EngineError::AuditAppend)?
            .map_err(|source| EngineError::AuditLog { dir, source })?;
        self.log_id = log_key_id(&verifier);
        self.verifier = verifier;
        Ok(())
    }

    /// The verifier of the log's checkpoints.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    pub fn log_id(&self) -> [u8; 32] {
        self.log_id
    }

    /// This installation's builder id (see [`builder_id`]).
    pub fn builder_id(&self, configured: Option<&str>) -> String {
        configured.map_or_else(|| derived_builder_id(&self.log_id), str::to_owned)
    }

    /// Appends `change` and returns once it is durable and covered by a
    /// published checkpoint, with the proof of that. On `Err` the change was
    /// not recorded: the caller must not make it.
    pub fn record(&self, change: &Change) -> Result<Receipt, EngineError> {
        let entry = change.to_entry();
        let index = self
            .appender
            .append(entry.clone())
            .map_err(EngineError::AuditAppend)?;
        let proved = self
            .appender
            .with_log(|log| {
                let size = log.size();
                let proof = log.inclusion_proof(index, size)?;
                Ok((size, log.root(), proof, log.checkpoint().to_owned()))
            })
            .map_err(EngineError::AuditAppend)?;
        let (tree_size, root, inclusion_proof, checkpoint) =
            proved.map_err(|source| EngineError::AuditProof { index, source })?;
        Ok(Receipt {
            index,
            entry,
            kind: change.kind(),
            tree_size,
            root,
            inclusion_proof,
            checkpoint,
            log_id: self.log_id,
        })
    }

    /// Appends `changes` in one append (one set of fsyncs and one published
    /// checkpoint, whatever their number) and returns, in order, each one's
    /// receipt once all are durable. On `Err` none was recorded.
    pub fn record_all(&self, changes: &[Change]) -> Result<Vec<Receipt>, EngineError> {
        let entries: Vec<Vec<u8>> = changes.iter().map(Change::to_entry).collect();
        let (indices, tree_size, root, checkpoint) = self
            .appender
            .with_log_mut(|log| {
                let indices = log
                    .append(&entries)
                    .map_err(|e| cairn_tlog_fs::AppendError::Batch(std::sync::Arc::new(e)))?;
                Ok((indices, log.size(), log.root(), log.checkpoint().to_owned()))
            })
            .and_then(|appended| appended)
            .map_err(EngineError::AuditAppend)?;
        let mut receipts = Vec::with_capacity(changes.len());
        for ((index, entry), change) in indices.into_iter().zip(entries).zip(changes) {
            let inclusion_proof = self
                .appender
                .with_log(|log| log.inclusion_proof(index, tree_size))
                .map_err(EngineError::AuditAppend)?
                .map_err(|source| EngineError::AuditProof { index, source })?;
            receipts.push(Receipt {
                index,
                entry,
                kind: change.kind(),
                tree_size,
                root,
                inclusion_proof,
                checkpoint: checkpoint.clone(),
                log_id: self.log_id,
            });
        }
        Ok(receipts)
    }
}

/// The trusted root for cairn's log: each of its Ed25519 keys (SPKI DER), log
/// id and origin with its validity (`(verifier, start, end)`; the current key
/// has no end), in the Sigstore trusted root v0.1 JSON. Certificate
/// authorities, CT logs and timestamp authorities are empty: cairn signs with
/// keys.
pub fn trusted_root_json(keys: &[(Verifier, String, Option<String>)]) -> String {
    let tlogs: Vec<Value> = keys
        .iter()
        .map(|(verifier, start, end)| {
            // RFC 8410 §4: SubjectPublicKeyInfo of an Ed25519 key.
            let mut spki = vec![
                0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
            ];
            spki.extend_from_slice(verifier.public_key());
            let mut valid_for = json!({ "start": start });
            if let Some(end) = end {
                valid_for["end"] = json!(end);
            }
            json!({
                "baseUrl": format!("https://{ORIGIN}"),
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": b64(&spki),
                    "keyDetails": "PKIX_ED25519",
                    "validFor": valid_for,
                },
                "logId": { "keyId": b64(&log_key_id(verifier)) },
            })
        })
        .collect();
    json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": tlogs,
        "certificateAuthorities": [],
        "ctlogs": [],
        "timestampAuthorities": [],
    })
    .to_string()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Writes `trusted_root.json` naming every log key the installation had
/// (`crate::log_key::validity`), when what is there differs. The first key's
/// validity starts at the epoch: the key is cairn's own, and entries are
/// checked by inclusion proof, not by time.
pub(crate) fn write_trusted_root_for(data: &DataDir) -> Result<(), EngineError> {
    let path = trusted_root_path(data);
    let text = trusted_root_json(&crate::log_key::validity(data)?);
    if std::fs::read_to_string(&path).is_ok_and(|existing| existing == text) {
        return Ok(());
    }
    crate::keys::write_atomically(&path, text.as_bytes(), 0o644)
}

/// An entry's inclusion in the log as it is now, proven and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inclusion {
    /// The tree size the proof is for (the log's size when read).
    pub tree_size: u64,
    /// RFC 9162 leaf hash of the entry, hex.
    pub leaf_hash: String,
    /// The tree's root at `tree_size`, hex.
    pub root: String,
    /// How many hashes the audit path has.
    pub path_len: usize,
}

/// Proves that entry `index` is in the data directory's log, and checks the
/// proof against the root (RFC 9162 §2.1.3.2) before answering. Reading never
/// creates a log or a key: with neither, this is an error.
pub fn prove_inclusion(data: &DataDir, index: u64) -> Result<Inclusion, EngineError> {
    let dir = log_dir(data);
    let key = key_path(data);
    for needed in [dir.join("checkpoint")] {
        if !needed.is_file() {
            return Err(EngineError::Io {
                what: "read the audit log's",
                path: needed,
                source: std::io::ErrorKind::NotFound.into(),
            });
        }
    }
    let verifier = crate::log_key::current_verifier(data)?.ok_or_else(|| EngineError::Io {
        what: "read the audit log's",
        path: key.clone(),
        source: std::io::ErrorKind::NotFound.into(),
    })?;
    let log = Log::open_read_only(&dir, verifier)
        .map_err(|source| EngineError::AuditLog { dir, source })?;
    let proof_error = |source| EngineError::AuditProof { index, source };
    let size = log.size();
    let hashes = log.inclusion_proof(index, size).map_err(proof_error)?;
    let root = log.root_at(size).map_err(proof_error)?;
    let leaf = cairn_tlog::merkle::leaf_hash(&log.entry(index).map_err(proof_error)?);
    cairn_tlog::merkle::verify_inclusion(&leaf, index, size, &hashes, &root)
        .map_err(|e| proof_error(LogError::Prove(e.into())))?;
    Ok(Inclusion {
        tree_size: size,
        leaf_hash: hex(&leaf),
        root: hex(&root),
        path_len: hashes.len(),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_evidence::{Algorithm, SigningKey};

    fn open() -> (tempfile::TempDir, DataDir, AuditLog) {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data = DataDir::at(tmp.path());
        let audit = AuditLog::open(&data).expect("opens");
        (tmp, data, audit)
    }

    /// Issue 15: `builder.id` was one constant for every installation. It is
    /// derived from the log's key (two data directories differ; one keeps its
    /// id when reopened), org.toml's value wins, and asking creates nothing.
    #[test]
    fn the_builder_id_names_the_installation() {
        let fresh = tempfile::tempdir().expect("temp dir");
        let unopened = DataDir::at(fresh.path());
        assert_eq!(builder_id(&unopened, None).expect("reads"), None);
        assert!(!key_path(&unopened).exists(), "asking made no key");

        let (_a, data_a, audit_a) = open();
        let (_b, _data_b, audit_b) = open();
        let a = audit_a.builder_id(None);
        assert!(a.starts_with("urn:cairn:builder:"), "{a}");
        assert_eq!(a.len(), "urn:cairn:builder:".len() + 16);
        assert_ne!(a, audit_b.builder_id(None), "two installations, two ids");
        drop(audit_a);
        assert_eq!(builder_id(&data_a, None).expect("reads"), Some(a.clone()));
        assert_eq!(
            builder_id(&data_a, Some("https://ci.example.org/cairn")).expect("reads"),
            Some("https://ci.example.org/cairn".to_owned())
        );
        assert_eq!(
            audit_b.builder_id(Some("urn:example:prod")),
            "urn:example:prod"
        );
        // The VSAs' verifier is the same installation.
        assert_eq!(
            verifier_id(&data_a, None).expect("reads"),
            a.replace("urn:cairn:builder:", "urn:cairn:verifier:")
        );
        assert_eq!(
            verifier_id(&data_a, Some("https://ci.example.org/cairn")).expect("reads"),
            "https://ci.example.org/cairn#verifier"
        );
    }

    #[test]
    fn record_returns_a_receipt_that_proves_inclusion_in_the_checkpoint() {
        let (_tmp, data, audit) = open();
        let changes = [
            Change::Deploy(Deploy {
                workload: "hello".into(),
                environment: "production".into(),
                artifact: format!("sha256:{}", "ab".repeat(32)),
                actor: "alice".into(),
            }),
            Change::PolicyChange(PolicyChange {
                policy: "chains/default.toml".into(),
                old_digest: None,
                new_digest: format!("sha256:{}", "cd".repeat(32)),
                actor: "bob".into(),
            }),
        ];
        for (i, change) in changes.iter().enumerate() {
            let receipt = audit.record(change).expect("records");
            assert_eq!(receipt.index, i as u64);
            assert_eq!(receipt.tree_size, i as u64 + 1);
            let checkpoint = cairn_tlog::checkpoint::open(
                receipt.checkpoint.as_bytes(),
                ORIGIN,
                std::slice::from_ref(audit.verifier()),
            )
            .expect("signed by the log key");
            assert_eq!(checkpoint.checkpoint.size, receipt.tree_size);
            assert_eq!(checkpoint.checkpoint.root, receipt.root);
            cairn_tlog::merkle::verify_inclusion(
                &cairn_tlog::merkle::leaf_hash(&receipt.entry),
                receipt.index,
                receipt.tree_size,
                &receipt.inclusion_proof,
                &receipt.root,
            )
            .expect("included");
        }
        // Durable: a fresh reader sees both entries, as written.
        drop(audit);
        let reader = Log::open_read_only(
            &log_dir(&data),
            cairn_tlog_fs::load_or_create_signer(&key_path(&data), ORIGIN)
                .expect("key")
                .verifier(),
        )
        .expect("reads");
        assert_eq!(reader.size(), 2);
        let first: Value = serde_json::from_slice(&reader.entry(0).expect("entry")).expect("json");
        assert_eq!(first["kind"], "deploy");
        assert_eq!(first["apiVersion"], CHANGE_VERSION);
        assert_eq!(first["spec"]["environment"], "production");
    }

    /// `record_all` appends several changes in one append: one checkpoint
    /// covers them all (a stage's bundles: one set of fsyncs, issue 19), each
    /// receipt proves its entry's inclusion in it, in order after what the
    /// log held.
    #[test]
    fn record_all_appends_several_changes_under_one_checkpoint() {
        let (_tmp, _data, audit) = open();
        let deploy = |environment: &str| {
            Change::Deploy(Deploy {
                workload: "hello".into(),
                environment: environment.into(),
                artifact: format!("sha256:{}", "ab".repeat(32)),
                actor: "alice".into(),
            })
        };
        audit.record(&deploy("staging")).expect("records");
        let changes = [deploy("a"), deploy("b"), deploy("c")];
        let receipts = audit.record_all(&changes).expect("records");
        assert!(audit.record_all(&[]).expect("nothing").is_empty());
        println!(
            "indices {:?}, tree sizes {:?}",
            receipts.iter().map(|r| r.index).collect::<Vec<_>>(),
            receipts.iter().map(|r| r.tree_size).collect::<Vec<_>>()
        );
        assert_eq!(receipts.len(), 3);
        for (i, (receipt, change)) in receipts.iter().zip(&changes).enumerate() {
            assert_eq!(receipt.index, 1 + i as u64);
            // One append: one checkpoint, of all three.
            assert_eq!(receipt.tree_size, 4);
            assert_eq!(receipt.checkpoint, receipts[0].checkpoint);
            assert_eq!(receipt.entry, change.to_entry());
            let checkpoint = cairn_tlog::checkpoint::open(
                receipt.checkpoint.as_bytes(),
                ORIGIN,
                std::slice::from_ref(audit.verifier()),
            )
            .expect("signed by the log key");
            assert_eq!(checkpoint.checkpoint.size, 4);
            cairn_tlog::merkle::verify_inclusion(
                &cairn_tlog::merkle::leaf_hash(&receipt.entry),
                receipt.index,
                receipt.tree_size,
                &receipt.inclusion_proof,
                &receipt.root,
            )
            .expect("included");
        }
    }

    #[test]
    fn entries_are_canonical_json_of_typed_changes() {
        let rotation = Change::KeyRotation(KeyRotation {
            purpose: "evidence-signing".into(),
            old_key_id: None,
            new_key_id: "abc".into(),
            algorithm: "ed25519".into(),
        });
        assert_eq!(
            String::from_utf8(rotation.to_entry()).expect("utf-8"),
            r#"{"apiVersion":"0.0.1","kind":"key-rotation","spec":{"algorithm":"ed25519","newKeyId":"abc","oldKeyId":null,"purpose":"evidence-signing"}}"#
        );
        let kinds: Vec<String> = [
            Change::Rollback(Rollback {
                workload: "w".into(),
                environment: "e".into(),
                from_artifact: "a".into(),
                to_artifact: "b".into(),
                actor: "x".into(),
            }),
            Change::Override(Override {
                workload: "w".into(),
                environment: "e".into(),
                artifact: "a".into(),
                gate: "g".into(),
                reason: "r".into(),
                actor: "x".into(),
            }),
            rotation,
            Change::Access(AccessChange {
                action: AccessAction::RoleGrant,
                forge_login: None,
                signing_key: None,
                identity: "dev".into(),
                kind: None,
                role: Some("developer".into()),
                workload: Some("app".into()),
                environment: None,
                actor: Some("admin".into()),
            }),
        ]
        .iter()
        .map(|c| {
            let v: Value = serde_json::from_slice(&c.to_entry()).expect("json");
            assert_eq!(v.to_string().into_bytes(), c.to_entry());
            v["kind"].as_str().expect("kind").to_owned()
        })
        .collect();
        assert_eq!(
            kinds,
            ["rollback", "override", "key-rotation", "access-change"]
        );
        let bootstrap = Change::Access(AccessChange {
            action: AccessAction::IdentityAdd,
            forge_login: None,
            signing_key: None,
            identity: "admin".into(),
            kind: Some("user".into()),
            role: Some("platform-admin".into()),
            workload: None,
            environment: None,
            actor: None,
        });
        assert_eq!(
            String::from_utf8(bootstrap.to_entry()).expect("utf-8"),
            r#"{"apiVersion":"0.0.1","kind":"access-change","spec":{"action":"identity-add","actor":null,"environment":null,"identity":"admin","kind":"user","role":"platform-admin","workload":null}}"#
        );

        let key = SigningKey::from_secret_bytes(Algorithm::Ed25519, &[9; 32]).expect("key");
        let envelope = Envelope::sign("text/plain", b"hi".to_vec(), &key).expect("signs");
        let evidence = Change::evidence(&envelope, key.verifying_key()).expect("body");
        let v: Value = serde_json::from_slice(&evidence.to_entry()).expect("json");
        assert_eq!(v["kind"], "dsse");
        assert_eq!(v["apiVersion"], "0.0.2");
        assert_eq!(
            v["spec"]["dsseV002"]["payloadHash"]["algorithm"],
            "SHA2_256"
        );
    }

    #[test]
    fn the_trusted_root_names_the_log_key_and_is_kept() {
        let (_tmp, data, audit) = open();
        let path = trusted_root_path(&data);
        let root: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("written")).expect("json");
        assert_eq!(root["tlogs"][0]["logId"]["keyId"], b64(&audit.log_id()));
        assert_eq!(root["tlogs"][0]["publicKey"]["keyDetails"], "PKIX_ED25519");
        let key = root["tlogs"][0]["publicKey"]["rawBytes"]
            .as_str()
            .expect("key");
        assert!(key.len() > 40);
        // The first four bytes of the log id are the checkpoint signature's key hash.
        assert_eq!(
            audit.log_id()[..4],
            audit.verifier().key_hash().to_be_bytes()
        );
        // A second open (the lock is free again) keeps the file.
        drop(audit);
        let before = std::fs::metadata(&path)
            .expect("meta")
            .modified()
            .expect("mtime");
        let _again = AuditLog::open(&data).expect("reopens");
        let after = std::fs::metadata(&path)
            .expect("meta")
            .modified()
            .expect("mtime");
        assert_eq!(before, after);
    }

    #[test]
    fn a_second_appender_waits_for_the_first_or_is_refused() {
        let (_tmp, data, audit) = open();
        let err = AuditLog::open(&data).expect_err("locked");
        assert!(matches!(err, EngineError::AuditLog { .. }), "{err:?}");
        let released = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(audit);
        });
        let second = AuditLog::open_waiting(&data, LOCK_WAIT).expect("waits its turn");
        released.join().expect("joins");
        let receipt = second
            .record(&Change::Deploy(Deploy {
                workload: "w".into(),
                environment: "staging".into(),
                artifact: "sha256:00".into(),
                actor: "a".into(),
            }))
            .expect("records");
        assert_eq!(receipt.index, 0);
    }
}
