//! The audit log's checkpoint key (a C2SP signed-note Ed25519 key named
//! [`ORIGIN`]), in one of two places, never both (that is refused as
//! ambiguous):
//!
//! - `keys/log.key`: the seed, mode 0600, made on first use, with its
//!   verifier key (`cairn.local/log+<hash>+<key>`, public) recorded beside it
//!   in `keys/log.pub` (mode 0644): readers check checkpoints with that and
//!   never open the key file. The file is written (atomically) when the key is
//!   made, and for a data directory made before it existed by the next
//!   command that loads the key to sign anyway; whoever loads the key compares
//!   the two and refuses when they disagree. Until it is recorded, readers
//!   derive the verifier from the key file as before (nothing is written by a
//!   reader); with neither readable they refuse;
//! - `keys/log.pkcs11.json` (mode 0600): the key is in a PKCS#11 token
//!   (module, token label, key label, where the PIN is, and the key's
//!   verifier as recorded when it was chosen; see [`crate::hsm`]). The log's
//!   writer then signs checkpoints in the token and never holds the private
//!   key; a token that cannot be used is an error, never a fall-back to a file
//!   key or a new key.
//!
//! A key change (`cairn key log-hsm`) is visible to verifiers three ways: a
//! `key-rotation` entry (purpose `log-checkpoint`, old and new verifier keys)
//! recorded under the old key; the checkpoint at that size published again
//! signed by both keys ([`cairn_tlog_fs::Log::rotate_signer`]); and
//! `trusted_root.json`, which lists every log key the installation had with
//! its validity (a retired key's ends when it was replaced), so bundles
//! logged before the change keep verifying. Retired log keys are kept in
//! `keys/retired/log-<key hash>.json`. `keys/log.pub` goes with the key file
//! (removed with it when the key moves into a token, whose configuration
//! records the verifier).

use std::path::PathBuf;
use std::sync::Arc;

use cairn_tlog::note::{NoteSigner, Signer, Verifier};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditLog, Change, KeyRotation, ORIGIN, Receipt};
use crate::hsm::TokenKey;
use crate::keys::{
    private_dir, read_public_file, read_token_config, remove_if_there, write_atomically,
};
use crate::{DataDir, EngineError};

/// The `purpose` of the log's checkpoint key in `key-rotation` entries.
pub const LOG_KEY_PURPOSE: &str = "log-checkpoint";

/// `<data>/keys/log.key`: the checkpoint key's seed, when it is in a file.
pub fn key_path(data: &DataDir) -> PathBuf {
    data.root().join("keys").join("log.key")
}

/// `<data>/keys/log.pkcs11.json`: where the checkpoint key is when it is in a
/// PKCS#11 token.
pub fn token_config_path(data: &DataDir) -> PathBuf {
    data.root().join("keys").join("log.pkcs11.json")
}

/// The token holding the checkpoint key, when it is in one. Refuses a key
/// file beside it (which of the two signs would be a guess).
pub fn token_config(data: &DataDir) -> Result<Option<TokenKey>, EngineError> {
    let Some(config) = read_token_config(&token_config_path(data))? else {
        return Ok(None);
    };
    let file = key_path(data);
    if std::fs::symlink_metadata(&file).is_ok() {
        return Err(EngineError::KeysAmbiguous {
            file,
            token: token_config_path(data),
        });
    }
    Ok(Some(config))
}

/// The recorded verifier of a token key's configuration.
fn recorded(config: &TokenKey) -> Result<Verifier, EngineError> {
    let text = config.public_key.as_deref().ok_or_else(|| {
        EngineError::Token(format!(
            "the log key's configuration for {} records no verifier key; `cairn key log-hsm` it again",
            config.location()
        ))
    })?;
    let verifier = Verifier::parse(text).map_err(|e| {
        EngineError::Token(format!(
            "the log key's recorded verifier for {} is unusable: {e}",
            config.location()
        ))
    })?;
    if verifier.name() != ORIGIN {
        return Err(EngineError::Token(format!(
            "the log key's recorded verifier names `{}`, not `{ORIGIN}`",
            verifier.name()
        )));
    }
    Ok(verifier)
}

/// `<data>/keys/log.pub`: the verifier key of the key file's checkpoint key,
/// what readers check checkpoints with.
pub fn public_key_path(data: &DataDir) -> PathBuf {
    data.root().join("keys").join("log.pub")
}

/// The most a `keys/log.pub` may hold (a verifier key line is ~80 bytes).
const MAX_PUBLIC_KEY_FILE: u64 = 4096;

/// The verifier recorded in `keys/log.pub`; `None` when there is no such
/// file. Opened without following a symlink (nor blocking on a FIFO), it must
/// be a regular file of at most 4 KiB that no other user may write, holding
/// one verifier key line of this log's name; anything else is an error.
pub fn recorded_public_key(data: &DataDir) -> Result<Option<Verifier>, EngineError> {
    let path = public_key_path(data);
    let bad = |problem: String| EngineError::LogPublicKey {
        path: path.clone(),
        problem,
    };
    let Some(text) = read_public_file(&path, MAX_PUBLIC_KEY_FILE, bad)? else {
        return Ok(None);
    };
    let line = text.strip_suffix('\n').unwrap_or(&text);
    let verifier =
        Verifier::parse(line).map_err(|e| bad(format!("does not hold a verifier key: {e}")))?;
    if verifier.name() != ORIGIN {
        return Err(bad(format!("names `{}`, not `{ORIGIN}`", verifier.name())));
    }
    Ok(Some(verifier))
}

/// The key file's signer, made on first use, its verifier recorded in
/// `keys/log.pub` (written when missing: a data directory made before it).
/// A recorded verifier that differs from the key file's is refused, and so is
/// a missing key file beside one (a new key would not verify the log's
/// checkpoints): one of the two was replaced, and which one signs the log is
/// not guessed.
fn file_signer(data: &DataDir) -> Result<Signer, EngineError> {
    let key = key_path(data);
    let Some(recorded) = recorded_public_key(data)? else {
        let signer =
            cairn_tlog_fs::load_or_create_signer(&key, ORIGIN).map_err(EngineError::AuditKey)?;
        private_dir(&data.root().join("keys"))?;
        write_atomically(
            &public_key_path(data),
            format!("{}\n", signer.verifier()).as_bytes(),
            0o644,
        )?;
        return Ok(signer);
    };
    let refused = |problem: String| EngineError::LogPublicKey {
        path: public_key_path(data),
        problem,
    };
    let signer = cairn_tlog_fs::load_signer(&key, ORIGIN)
        .map_err(EngineError::AuditKey)?
        .ok_or_else(|| {
            refused(format!(
                "records {recorded}, but the key file {} is missing; restore it (from a backup): a new key would not verify the log's checkpoints",
                key.display()
            ))
        })?;
    if signer.verifier() != recorded {
        return Err(refused(format!(
            "records {recorded}, but the key in {} is {}: one of them was replaced; `cairn log verify` shows which one signed the log",
            key.display(),
            signer.verifier()
        )));
    }
    Ok(signer)
}

/// The verifier of the log's current checkpoints, as on disk: the token key's
/// recorded verifier (no PIN, no token needed), or the key file's recorded in
/// `keys/log.pub` (the key file is not opened). Only before that is recorded
/// (a data directory made by an older cairn, until a command that signs
/// records it) is it derived from the key file, and nothing is written.
/// `None` before the log has a key; nothing is created.
pub fn current_verifier(data: &DataDir) -> Result<Option<Verifier>, EngineError> {
    if let Some(config) = token_config(data)? {
        return recorded(&config).map(Some);
    }
    if let Some(verifier) = recorded_public_key(data)? {
        return Ok(Some(verifier));
    }
    Ok(cairn_tlog_fs::load_signer(&key_path(data), ORIGIN)
        .map_err(EngineError::AuditKey)?
        .map(|s| s.verifier()))
}

/// The verifier of the log's current checkpoints, making the key file (and
/// `keys/log.pub`) when the log has no key at all (a writer is about to log
/// anyway).
pub fn current_verifier_or_create(data: &DataDir) -> Result<Verifier, EngineError> {
    match current_verifier(data)? {
        Some(v) => Ok(v),
        None => Ok(file_signer(data)?.verifier()),
    }
}

/// The signer of the log's checkpoints: the key in its token (opened there,
/// its public key checked against the recorded one, a probe signature
/// verified), else the key file, made on first use, its verifier recorded in
/// `keys/log.pub` or checked against it. A token that cannot be used is an
/// error.
pub fn signer(data: &DataDir) -> Result<Arc<dyn NoteSigner>, EngineError> {
    if let Some(config) = token_config(data)? {
        recorded(&config)?;
        return Ok(Arc::new(config.open_note_signer(ORIGIN)?));
    }
    Ok(Arc::new(file_signer(data)?))
}

/// Where the checkpoint key is, for people: the token and key label, or the
/// file. `None` before the log has a key.
pub fn location(data: &DataDir) -> Result<Option<String>, EngineError> {
    if let Some(config) = token_config(data)? {
        return Ok(Some(format!(
            "{} (module {})",
            config.location(),
            config.module.display()
        )));
    }
    let file = key_path(data);
    Ok(file.is_file().then(|| file.display().to_string()))
}

/// A log key that was replaced: its verifier and when (RFC 3339, UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredLogKey {
    pub verifier: Verifier,
    pub retired_at: String,
    pub path: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RetiredFile {
    verifier: String,
    retired_at: String,
}

fn retired_dir(data: &DataDir) -> PathBuf {
    data.root().join("keys").join("retired")
}

/// Every retired log key, oldest first. A file that is not one is an error,
/// not skipped: trust is not guessed.
pub fn retired(data: &DataDir) -> Result<Vec<RetiredLogKey>, EngineError> {
    let dir = retired_dir(data);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EngineError::io("list", &dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(EngineError::io("list", &dir))?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !(name.starts_with("log-") && name.ends_with(".json")) {
            continue;
        }
        let bad = |what: String| EngineError::Token(format!("{}: {what}", path.display()));
        let meta = std::fs::symlink_metadata(&path).map_err(EngineError::io("read", &path))?;
        if !meta.is_file() || meta.len() > 4096 {
            return Err(bad("not a regular file of at most 4 KiB".to_owned()));
        }
        let bytes = std::fs::read(&path).map_err(EngineError::io("read", &path))?;
        let file: RetiredFile = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("not a retired log key: {e}")))?;
        let verifier =
            Verifier::parse(&file.verifier).map_err(|e| bad(format!("bad verifier: {e}")))?;
        if verifier.name() != ORIGIN || cairn_model::time::parse_rfc3339(&file.retired_at).is_none()
        {
            return Err(bad("not a retired key of this log".to_owned()));
        }
        out.push(RetiredLogKey {
            verifier,
            retired_at: file.retired_at,
            path,
        });
    }
    out.sort_by(|a, b| a.retired_at.cmp(&b.retired_at).then(a.path.cmp(&b.path)));
    Ok(out)
}

/// Every log key this installation had, current first: the verifiers that
/// checkpoints in bundles logged before a key change were signed by.
pub fn verifiers(data: &DataDir) -> Result<Vec<Verifier>, EngineError> {
    let mut out: Vec<Verifier> = current_verifier(data)?.into_iter().collect();
    out.extend(retired(data)?.into_iter().map(|r| r.verifier));
    Ok(out)
}

/// The installation's first log key (its builder id derives from it, so a
/// log key change keeps the id): the oldest retired key, else the current.
pub fn founding_verifier(data: &DataDir) -> Result<Option<Verifier>, EngineError> {
    if let Some(first) = retired(data)?.into_iter().next() {
        return Ok(Some(first.verifier));
    }
    current_verifier(data)
}

/// Every log key with its validity for `trusted_root.json`: `(verifier,
/// start, end)`, the first from the epoch, each next from the second the one
/// before was retired, which stays valid one second past it (entries of that
/// second may carry either key's checkpoint).
pub fn validity(data: &DataDir) -> Result<Vec<(Verifier, String, Option<String>)>, EngineError> {
    let mut out = Vec::new();
    let mut start = "1970-01-01T00:00:00Z".to_owned();
    for r in retired(data)? {
        let end = cairn_model::time::parse_rfc3339(&r.retired_at)
            .map(|(secs, _)| cairn_model::time::rfc3339_utc_secs(secs.saturating_add(1)))
            .unwrap_or_else(|| r.retired_at.clone());
        out.push((r.verifier, start, Some(end)));
        start = r.retired_at;
    }
    if let Some(current) = current_verifier(data)? {
        out.push((current, start, None));
    }
    Ok(out)
}

/// What `cairn key log-hsm` did.
#[derive(Debug)]
pub struct LogKeyChange {
    /// The new verifier key (`<origin>+<hash>+<key>`).
    pub verifier: Verifier,
    /// The key it replaced, kept in `keys/retired/`.
    pub retired: Option<RetiredLogKey>,
    /// The `key-rotation` entry, recorded under the old key.
    pub logged: Receipt,
    /// Where the new key is.
    pub location: String,
}

/// Makes `config`'s Ed25519 key (generated in its token when `generate`, else
/// one already there) the log's checkpoint key. The key is opened and a probe
/// signature verified first; then, holding the log: the `key-rotation` entry
/// is recorded (signed by the old key), the current checkpoint is published
/// again signed by both keys, the old verifier is retired, the configuration
/// written and the key file (with `keys/log.pub`) removed, and
/// `trusted_root.json` lists both keys.
/// Nothing changes when the token or the log fails before the entry.
pub fn use_token(
    data: &DataDir,
    config: &TokenKey,
    generate: bool,
) -> Result<LogKeyChange, EngineError> {
    config.validate()?;
    let fresh = TokenKey {
        public_key: None,
        ..config.clone()
    };
    let old = current_verifier(data)?;
    let next = if generate {
        crate::hsm::generate_note_key(&fresh, ORIGIN)?
    } else {
        fresh.open_note_signer(ORIGIN)?
    };
    let verifier = next.verifier();
    if old.as_ref() == Some(&verifier) {
        return Err(EngineError::Token(format!(
            "{} is already the log's checkpoint key",
            config.location()
        )));
    }
    let location = format!("{} (module {})", config.location(), config.module.display());
    let stored = TokenKey {
        public_key: Some(verifier.to_string()),
        ..fresh
    };
    let json = serde_json::to_vec_pretty(&stored).map_err(|e| EngineError::Token(e.to_string()))?;
    private_dir(&data.root().join("keys"))?;
    let rotation = |old: Option<&Verifier>| {
        Change::KeyRotation(KeyRotation {
            purpose: LOG_KEY_PURPOSE.to_owned(),
            old_key_id: old.map(ToString::to_string),
            new_key_id: verifier.to_string(),
            algorithm: "ed25519".to_owned(),
        })
    };
    let Some(old) = old else {
        // No log yet: the token's key starts it; the first entry says so.
        write_atomically(&token_config_path(data), &json, 0o600)?;
        let audit = AuditLog::open(data)?;
        let logged = audit.record(&rotation(None))?;
        return Ok(LogKeyChange {
            verifier,
            retired: None,
            logged,
            location,
        });
    };
    let mut audit = AuditLog::open_waiting(data, crate::audit::LOCK_WAIT)?;
    let logged = audit.record(&rotation(Some(&old)))?;
    audit.rotate_signer(Arc::new(next))?;
    let retired_at = cairn_model::time::rfc3339_utc(crate::now_ms());
    let dir = retired_dir(data);
    private_dir(&dir)?;
    let path = dir.join(format!("log-{:08x}.json", old.key_hash()));
    let retired_json = serde_json::to_vec_pretty(&RetiredFile {
        verifier: old.to_string(),
        retired_at: retired_at.clone(),
    })
    .map_err(|e| EngineError::Token(e.to_string()))?;
    write_atomically(&path, &retired_json, 0o644)?;
    write_atomically(&token_config_path(data), &json, 0o600)?;
    remove_if_there(&key_path(data))?;
    remove_if_there(&public_key_path(data))?;
    crate::audit::write_trusted_root_for(data)?;
    drop(audit);
    Ok(LogKeyChange {
        verifier,
        retired: Some(RetiredLogKey {
            verifier: old,
            retired_at,
            path,
        }),
        logged,
        location,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn retire(data: &DataDir, verifier: &Verifier, at: &str) {
        let dir = retired_dir(data);
        private_dir(&dir).expect("dir");
        let text = serde_json::to_vec(&RetiredFile {
            verifier: verifier.to_string(),
            retired_at: at.to_owned(),
        })
        .expect("json");
        std::fs::write(
            dir.join(format!("log-{:08x}.json", verifier.key_hash())),
            text,
        )
        .expect("write");
    }

    /// Without a token: the file key is current; a retired key (as
    /// `use_token` leaves one) is listed in the trusted root with its end,
    /// keeps verifying, and stays the builder id's key.
    #[test]
    fn retired_log_keys_stay_trusted_and_keep_the_builder_id() {
        let tmp = tempfile::tempdir().expect("tmp");
        let data = DataDir::at(tmp.path());
        assert_eq!(current_verifier(&data).expect("reads"), None);
        assert!(!key_path(&data).exists(), "reading made no key");
        let audit = AuditLog::open(&data).expect("log");
        let current = current_verifier(&data).expect("reads").expect("a key");
        assert_eq!(&current, audit.verifier());
        drop(audit);
        let first = cairn_tlog::note::Signer::from_seed(ORIGIN, [3u8; 32])
            .expect("signer")
            .verifier();
        retire(&data, &first, "2026-01-02T03:04:05Z");
        assert_eq!(
            verifiers(&data).expect("reads"),
            vec![current.clone(), first.clone()]
        );
        assert_eq!(
            founding_verifier(&data).expect("reads"),
            Some(first.clone())
        );
        let validity = validity(&data).expect("reads");
        assert_eq!(validity.len(), 2);
        assert_eq!(validity[0].2.as_deref(), Some("2026-01-02T03:04:06Z"));
        assert_eq!(validity[1].1, "2026-01-02T03:04:05Z");
        assert_eq!(validity[1].2, None);
        crate::audit::write_trusted_root_for(&data).expect("writes");
        let root: serde_json::Value = serde_json::from_slice(
            &std::fs::read(crate::audit::trusted_root_path(&data)).expect("read"),
        )
        .expect("json");
        assert_eq!(root["tlogs"].as_array().expect("tlogs").len(), 2);
        let id = crate::audit::builder_id(&data, None)
            .expect("id")
            .expect("some");
        let expected = crate::audit::gate_builder_id(&data, None).expect("id");
        assert_eq!(id, expected);
        let hex: String = cairn_evidence::log_key_id(&first)[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(id, format!("urn:cairn:builder:{hex}"));
        // A file in retired/ that is not a retired log key is refused, not skipped.
        std::fs::write(retired_dir(&data).join("log-bad.json"), "{}").expect("write");
        assert!(verifiers(&data).is_err());
    }

    /// A configuration whose recorded verifier is missing or names another
    /// origin is refused; a key file beside it is ambiguous; no reader makes
    /// a key file when a token is configured.
    #[test]
    fn a_token_configuration_is_checked_and_never_gets_a_key_file_beside_it() {
        let tmp = tempfile::tempdir().expect("tmp");
        let data = DataDir::at(tmp.path());
        private_dir(&data.root().join("keys")).expect("dir");
        let mut config = TokenKey {
            module: PathBuf::from("/nonexistent/libpkcs11.so"),
            token: "t".to_owned(),
            key_label: "log".to_owned(),
            pin_file: None,
            pin_env: Some("CAIRN_TEST_UNSET_LOG_PIN".to_owned()),
            public_key: None,
        };
        let write = |c: &TokenKey| {
            write_atomically(
                &token_config_path(&data),
                &serde_json::to_vec(c).expect("json"),
                0o600,
            )
            .expect("write");
        };
        write(&config);
        let e = current_verifier(&data)
            .expect_err("no verifier")
            .to_string();
        assert!(e.contains("records no verifier key"), "{e}");
        let other = cairn_tlog::note::Signer::from_seed("other.example/log", [1u8; 32])
            .expect("signer")
            .verifier();
        config.public_key = Some(other.to_string());
        write(&config);
        let e = current_verifier(&data)
            .expect_err("wrong origin")
            .to_string();
        assert!(e.contains("not `cairn.local/log`"), "{e}");
        let ours = cairn_tlog::note::Signer::from_seed(ORIGIN, [1u8; 32])
            .expect("signer")
            .verifier();
        config.public_key = Some(ours.to_string());
        write(&config);
        assert_eq!(current_verifier(&data).expect("reads"), Some(ours));
        // The writer needs the token: its failure is an error, and no key
        // file is made in its place.
        let e = AuditLog::open(&data).expect_err("no token").to_string();
        assert!(e.contains("CAIRN_TEST_UNSET_LOG_PIN is not set"), "{e}");
        let e = crate::audit::own_builder_id(&data, None);
        assert!(e.is_ok(), "the builder id reads the recorded key: {e:?}");
        assert!(!key_path(&data).exists());
        std::fs::write(key_path(&data), "x").expect("write");
        assert!(matches!(
            current_verifier(&data),
            Err(EngineError::KeysAmbiguous { .. })
        ));
    }

    /// A bundle of `key`'s signed statement about `what`, logged in `audit`.
    fn logged(audit: &AuditLog, key: &cairn_evidence::SigningKey, what: &[u8]) -> Vec<u8> {
        use cairn_evidence::sbom::CycloneDxBom;
        use cairn_evidence::{Bundle, Statement, Subject, sha256};
        let statement = Statement::new(
            vec![Subject::sha256("thing", sha256(what))],
            CycloneDxBom(serde_json::json!({"bomFormat": "CycloneDX"})),
        )
        .expect("statement");
        let mut bundle = Bundle::sign_statement(&statement, key).expect("signs");
        let receipt = audit
            .record(&Change::evidence(&bundle.envelope, key.verifying_key()).expect("entry"))
            .expect("logged");
        bundle.tlog_entries.push(receipt.tlog_entry(1_764_072_000));
        bundle.to_json().expect("json").into_bytes()
    }

    /// What a gate believes after a log key change: a bundle logged under the
    /// retired key and one logged under the new key both verify (the
    /// retired verifier is kept); without the retired key the old one does not.
    #[test]
    fn the_gate_verifies_bundles_logged_under_a_retired_log_key() {
        let tmp = tempfile::tempdir().expect("tmp");
        let data = DataDir::at(tmp.path());
        let mut audit = AuditLog::open(&data).expect("log");
        let (key, _) = crate::keys::KeyStore::new(&data)
            .load_or_create(&audit)
            .expect("key");
        let before = logged(&audit, &key, b"before");
        let old = audit.verifier().clone();
        let next = cairn_tlog::note::Signer::from_seed(ORIGIN, [9u8; 32]).expect("signer");
        let secret = next.to_secret_key_string();
        audit.rotate_signer(Arc::new(next)).expect("rotates");
        // As `use_token` leaves it, but with the new key in a file.
        retire(&data, &old, "2026-01-02T03:04:05Z");
        std::fs::remove_file(key_path(&data)).expect("remove");
        write_atomically(&key_path(&data), format!("{secret}\n").as_bytes(), 0o600).expect("write");
        let recorded = format!("{}\n", audit.verifier());
        write_atomically(&public_key_path(&data), recorded.as_bytes(), 0o644).expect("write");
        let after = logged(&audit, &key, b"after");
        drop(audit);
        let trust = crate::verified::Trust::read_only(&data).expect("trust");
        for bundle in [&before, &after] {
            let (statement, _) = trust.statement(bundle).expect("verifies");
            assert_eq!(statement["predicateType"], "https://cyclonedx.org/bom");
        }
        std::fs::remove_file(retired_dir(&data).join(format!("log-{:08x}.json", old.key_hash())))
            .expect("remove");
        let trust = crate::verified::Trust::read_only(&data).expect("trust");
        assert!(trust.statement(&after).is_ok());
        let refused = trust.statement(&before).expect_err("old log key unknown");
        assert!(refused.contains("does not verify"), "{refused}");
    }

    /// An error with its sources, as the CLI prints it.
    fn chain(e: &dyn std::error::Error) -> String {
        let mut out = e.to_string();
        let mut next = e.source();
        while let Some(cause) = next {
            out.push_str(": ");
            out.push_str(&cause.to_string());
            next = cause.source();
        }
        out
    }

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::symlink_metadata(path)
            .expect("stat")
            .permissions()
            .mode()
            & 0o777
    }

    /// A log with one entry, its key file made now (and `keys/log.pub` with it).
    fn one_entry(data: &DataDir) -> Verifier {
        let audit = AuditLog::open(data).expect("log");
        audit
            .record(&Change::KeyRotation(KeyRotation {
                purpose: "test".to_owned(),
                old_key_id: None,
                new_key_id: "k".to_owned(),
                algorithm: "ed25519".to_owned(),
            }))
            .expect("records");
        audit.verifier().clone()
    }

    /// Readers check checkpoints with `keys/log.pub` and never open the key
    /// file: with the key file replaced by a directory (any read of it fails;
    /// tests run as root, for whom mode 000 hides nothing), the store's
    /// pairing check still reads and verifies the log. Without the recorded
    /// key such a reader refuses, as before; a tampered one fails the
    /// checkpoint check closed; a malformed, foreign, linked, FIFO or
    /// writable one is refused naming the file (a FIFO without blocking).
    #[test]
    fn readers_check_the_log_with_the_recorded_public_key_never_the_key_file() {
        use std::os::unix::ffi::OsStrExt as _;
        let tmp = tempfile::tempdir().expect("tmp");
        let data = DataDir::at(tmp.path());
        let verifier = one_entry(&data);
        let public = public_key_path(&data);
        assert_eq!(
            std::fs::read_to_string(&public).expect("recorded"),
            format!("{verifier}\n")
        );
        assert_eq!(mode(&public), 0o644);
        assert_eq!(mode(&key_path(&data)), 0o600);

        let key = key_path(&data);
        let secret = std::fs::read(&key).expect("key");
        std::fs::remove_file(&key).expect("remove");
        std::fs::create_dir(&key).expect("a directory in its place");
        assert_eq!(
            current_verifier(&data).expect("reads"),
            Some(verifier.clone())
        );
        let log = crate::pairing::read_log(&data)
            .expect("reads without the key")
            .expect("a log");
        assert_eq!(log.size(), 1);
        assert_eq!(verifiers(&data).expect("reads"), vec![verifier.clone()]);

        // Nothing recorded and the key unreadable: refused, as a missing key is.
        let recorded = std::fs::read(&public).expect("read");
        std::fs::remove_file(&public).expect("remove");
        let e = crate::pairing::read_log(&data).expect_err("nothing to check with");
        assert!(
            chain(&e).contains("cannot load the audit log's key"),
            "{}",
            chain(&e)
        );

        let plant = |bytes: &[u8], mode: u32| {
            let _ = std::fs::remove_file(&public);
            std::fs::write(&public, bytes).expect("write");
            std::fs::set_permissions(&public, std::fs::Permissions::from_mode(mode))
                .expect("chmod");
        };
        // Another key's verifier: the checkpoint does not verify.
        let other = Signer::from_seed(ORIGIN, [7u8; 32])
            .expect("signer")
            .verifier();
        plant(format!("{other}\n").as_bytes(), 0o644);
        let e = crate::pairing::read_log(&data).expect_err("tampered");
        let said = chain(&e);
        println!("tampered keys/log.pub: {said}");
        assert!(said.contains("checkpoint is invalid"), "{said}");
        let foreign = Signer::from_seed("other.example/log", [7u8; 32])
            .expect("signer")
            .verifier();
        let foreign = format!("{foreign}\n");
        let cases: [(&[u8], u32, &str); 5] = [
            (b"not a key\n", 0o644, "does not hold a verifier key"),
            (foreign.as_bytes(), 0o644, "not `cairn.local/log`"),
            (&[0xff, 0xfe, b'\n'], 0o644, "cannot be read as text"),
            (&recorded, 0o664, "writable by other users"),
            (&vec![b'a'; 5000], 0o644, "at most 4096 bytes"),
        ];
        for (bytes, mode, expected) in cases {
            plant(bytes, mode);
            let e = current_verifier(&data).expect_err(expected);
            let said = chain(&e);
            assert!(
                said.contains(expected) && said.contains("log.pub"),
                "{said}"
            );
        }
        // A symlink to the right key is not followed; a FIFO is not waited on.
        std::fs::remove_file(&public).expect("remove");
        let elsewhere = tmp.path().join("elsewhere.pub");
        std::fs::write(&elsewhere, &recorded).expect("write");
        std::os::unix::fs::symlink(&elsewhere, &public).expect("link");
        let e = current_verifier(&data).expect_err("symlink");
        assert!(chain(&e).contains("symbolic link"), "{}", chain(&e));
        std::fs::remove_file(&public).expect("remove");
        let fifo = std::ffi::CString::new(public.as_os_str().as_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let e = current_verifier(&data).expect_err("fifo");
        assert!(chain(&e).contains("not a regular file"), "{}", chain(&e));

        // Put back, the writer signs again.
        std::fs::remove_file(&public).expect("remove");
        plant(&recorded, 0o644);
        std::fs::remove_dir(&key).expect("remove");
        write_atomically(&key, &secret, 0o600).expect("write");
        assert_eq!(AuditLog::open(&data).expect("opens").verifier(), &verifier);
    }

    /// A data directory made before `keys/log.pub`: readers derive the
    /// verifier from the key file as before and write nothing; the next
    /// command that loads the key records it; a recorded key that disagrees
    /// with the key file stops the writer, and a recorded key with no key
    /// file never lets a new key be made silently.
    #[test]
    fn the_next_signer_records_the_public_key_and_a_disagreeing_one_is_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let data = DataDir::at(tmp.path());
        let verifier = one_entry(&data);
        let public = public_key_path(&data);
        std::fs::remove_file(&public).expect("remove");
        assert_eq!(
            current_verifier(&data).expect("reads"),
            Some(verifier.clone())
        );
        assert!(crate::pairing::read_log(&data).expect("reads").is_some());
        assert!(!public.exists(), "a reader writes nothing");
        drop(AuditLog::open(&data).expect("opens"));
        assert_eq!(
            std::fs::read_to_string(&public).expect("recorded"),
            format!("{verifier}\n")
        );

        let other = Signer::from_seed(ORIGIN, [7u8; 32])
            .expect("signer")
            .verifier();
        write_atomically(&public, format!("{other}\n").as_bytes(), 0o644).expect("write");
        let e = AuditLog::open(&data).expect_err("disagrees");
        let said = chain(&e);
        println!("keys/log.pub disagreeing with keys/log.key: {said}");
        assert!(said.contains("one of them was replaced"), "{said}");
        assert!(!said.contains("PRIVATE"), "{said}");

        write_atomically(&public, format!("{verifier}\n").as_bytes(), 0o644).expect("write");
        std::fs::remove_file(key_path(&data)).expect("remove");
        let e = AuditLog::open(&data).expect_err("no new key beside a recorded one");
        let said = chain(&e);
        assert!(said.contains("is missing; restore it"), "{said}");
        assert!(!key_path(&data).exists(), "no key was made");
        assert_eq!(current_verifier_or_create(&data).expect("reads"), verifier);
        assert!(!key_path(&data).exists(), "no key was made");
    }
}
