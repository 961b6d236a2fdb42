//! cairn's evidence signing key on disk, in `<data dir>/keys/` — outside anything
//! the sandbox sees:
//!
//! - `keys/signing.key`: the private key, PKCS#8 PEM, mode 0600, in a 0700
//!   directory, always written to a temporary file, synced, then renamed;
//! - `keys/signing.pub`: its public key (PEM, mode 0644), written with the key
//!   (and for a data directory made before it existed, by the next command
//!   that loads the key to sign); every load of the key compares the two and
//!   refuses when they disagree. Readers that only verify (`Trust::read_only`:
//!   gates, admission, `policy eval`; `cairn key show`) read this and never
//!   the private key; until it is recorded they derive it from the key file
//!   as before, writing nothing;
//! - `keys/retired/<keyid>.pub`: the public key of every key that was replaced, so
//!   evidence signed before a rotation stays verifiable.
//!
//! - or `keys/signing.pkcs11.json` (mode 0600): the key is in a PKCS#11 token
//!   instead (module, token label, key label, where the PIN is; see
//!   [`crate::hsm`]); the two never both exist (that is refused as ambiguous).
//!
//! The secret never leaves this module except as a [`SigningKey`], whose `Debug`
//! shows only its algorithm and key id.
//!
//! Every key change (the first key, `create --force`, `rotate`) is appended to the
//! audit log as a `key-rotation` entry (old and new key ids) before the new key
//! is written: if the entry cannot be made durable, the key is not replaced.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cairn_evidence::{Algorithm, SigningKey, VerifyingKey};

use crate::audit::{AuditLog, Change, KeyRotation, Receipt};
use crate::hsm::TokenKey;
use crate::{DataDir, EngineError};

/// The `purpose` of the evidence signing key in `key-rotation` entries.
pub const SIGNING_KEY_PURPOSE: &str = "evidence-signing";

/// The algorithm of keys cairn creates on its own: every Sigstore and in-toto
/// verifier accepts ECDSA P-256.
pub const DEFAULT_ALGORITHM: Algorithm = Algorithm::EcdsaP256Sha256;

/// `<data dir>/keys`.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
}

/// A key change that happened: the new key, the key it replaced, and the
/// audit log entry that recorded it first.
#[derive(Debug)]
pub struct KeyChange {
    pub key: SigningKey,
    pub retired: Option<Retired>,
    pub logged: Receipt,
}

/// A key that was replaced: its public key and where it was kept.
#[derive(Debug, Clone)]
pub struct Retired {
    pub key: VerifyingKey,
    pub path: PathBuf,
}

impl KeyStore {
    pub fn new(data: &DataDir) -> Self {
        KeyStore {
            dir: data.root().join("keys"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn signing_key_path(&self) -> PathBuf {
        self.dir.join("signing.key")
    }

    /// `keys/signing.pub`: the key file's public key, what readers verify with.
    pub fn public_key_path(&self) -> PathBuf {
        self.dir.join("signing.pub")
    }

    /// The public key recorded in `keys/signing.pub`, `None` when there is
    /// none (see [`read_public_file`] for what is refused).
    pub fn recorded_public_key(&self) -> Result<Option<VerifyingKey>, EngineError> {
        let path = self.public_key_path();
        let bad = |problem: String| EngineError::SigningPublicKey {
            path: path.clone(),
            problem,
        };
        let Some(text) = read_public_file(&path, 16 * 1024, bad)? else {
            return Ok(None);
        };
        VerifyingKey::from_pem(&text)
            .map(Some)
            .map_err(|e| bad(format!("does not hold a public key: {e}")))
    }

    /// Records `key`'s public key in `keys/signing.pub` when it is not there
    /// yet; one that differs is refused (one of the two files was replaced).
    fn record_public_key(&self, key: &SigningKey) -> Result<(), EngineError> {
        match self.recorded_public_key()? {
            Some(recorded) if recorded.key_id() == key.key_id() => Ok(()),
            Some(recorded) => Err(EngineError::SigningPublicKey {
                path: self.public_key_path(),
                problem: format!(
                    "records key {}, but {} is key {}: one of them was replaced",
                    recorded.key_id(),
                    self.signing_key_path().display(),
                    key.key_id()
                ),
            }),
            None => write_atomically(
                &self.public_key_path(),
                key.public_key_pem().as_bytes(),
                0o644,
            ),
        }
    }

    /// Where a PKCS#11-held key is configured: `keys/signing.pkcs11.json`.
    pub fn token_config_path(&self) -> PathBuf {
        self.dir.join("signing.pkcs11.json")
    }

    /// The token key's configuration, when the signing key is in a token.
    pub fn token_config(&self) -> Result<Option<TokenKey>, EngineError> {
        read_token_config(&self.token_config_path())
    }

    pub fn retired_dir(&self) -> PathBuf {
        self.dir.join("retired")
    }

    /// The public keys of every retired key (evidence they signed still verifies).
    /// A file that is not a public key is an error, not skipped: trust is not guessed.
    pub fn retired(&self) -> Result<Vec<Retired>, EngineError> {
        let dir = self.retired_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(EngineError::io("list", &dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(EngineError::io("list", &dir))?.path();
            if path.extension().is_none_or(|x| x != "pub") {
                continue;
            }
            let text = fs::read_to_string(&path).map_err(EngineError::io("read", &path))?;
            let key = VerifyingKey::from_pem(&text).map_err(|source| EngineError::BadKey {
                path: path.clone(),
                source,
            })?;
            out.push(Retired { key, path });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The signing key's public half, if there is a key: for a key in a token
    /// the one recorded when it was chosen (no PIN, no token needed), for a
    /// key file the one recorded in `keys/signing.pub` (the key file is not
    /// opened). Only before that is recorded is it derived from the key file,
    /// and nothing is written.
    pub fn public_key(&self) -> Result<Option<VerifyingKey>, EngineError> {
        if let Some(token) = self.token_config()? {
            if let Some(public) = token.recorded_public_key()? {
                return Ok(Some(public));
            }
        } else if let Some(public) = self.recorded_public_key()? {
            return Ok(Some(public));
        }
        Ok(self.load_unrecorded()?.map(|k| k.verifying_key().clone()))
    }

    /// The signing key, if there is one. A key file others can read is refused,
    /// and so is one whose recorded public key (`keys/signing.pub`) differs;
    /// a missing record is written. A key in a PKCS#11 token is opened there;
    /// any failure is an error, never a fall-back to another key.
    pub fn load(&self) -> Result<Option<SigningKey>, EngineError> {
        let key = self.load_unrecorded()?;
        if let Some(key) = &key
            && key.token_location().is_none()
        {
            self.record_public_key(key)?;
        }
        Ok(key)
    }

    /// [`KeyStore::load`] without recording or checking `keys/signing.pub`.
    fn load_unrecorded(&self) -> Result<Option<SigningKey>, EngineError> {
        let path = self.signing_key_path();
        if let Some(token) = self.token_config()? {
            if fs::symlink_metadata(&path).is_ok() {
                return Err(EngineError::KeysAmbiguous {
                    file: path,
                    token: self.token_config_path(),
                });
            }
            return token.open().map(Some);
        }
        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(EngineError::Io {
                    what: "read",
                    path,
                    source,
                });
            }
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(EngineError::KeyExposed { path, mode });
        }
        let text = fs::read_to_string(&path).map_err(EngineError::io("read", &path))?;
        let key = SigningKey::from_pkcs8_pem(&text)
            .map_err(|source| EngineError::BadKey { path, source })?;
        Ok(Some(key))
    }

    /// The signing key; an error telling how to make one when there is none.
    pub fn require(&self) -> Result<SigningKey, EngineError> {
        self.load()?.ok_or_else(|| EngineError::NoSigningKey {
            dir: self.dir.clone(),
        })
    }

    /// The signing key, created with [`DEFAULT_ALGORITHM`] when there is none yet
    /// (and that logged in `audit` first); `true` when it was created now.
    pub fn load_or_create(&self, audit: &AuditLog) -> Result<(SigningKey, bool), EngineError> {
        match self.load()? {
            Some(key) => Ok((key, false)),
            None => {
                let change = self.replace(None, DEFAULT_ALGORITHM, audit)?;
                Ok((change.key, true))
            }
        }
    }

    /// Creates a key; refuses to replace an existing one unless `force`. The
    /// change is logged in `audit` before the key is written.
    pub fn create(
        &self,
        algorithm: Algorithm,
        force: bool,
        audit: &AuditLog,
    ) -> Result<KeyChange, EngineError> {
        let existing = self.load()?;
        if existing.is_some() && !force {
            return Err(EngineError::KeyExists {
                path: self.signing_key_path(),
            });
        }
        self.replace(existing, algorithm, audit)
    }

    /// Replaces the key with a new one (of `algorithm`, or the old key's),
    /// logged in `audit` before the new key takes effect.
    pub fn rotate(
        &self,
        algorithm: Option<Algorithm>,
        audit: &AuditLog,
    ) -> Result<KeyChange, EngineError> {
        if self.token_config()?.is_some() {
            return Err(EngineError::Token(
                "the signing key is in a PKCS#11 token; `cairn key rotate --key-label NEW` makes a new key there (or `cairn key create --force` a key file)".to_owned(),
            ));
        }
        let old = self.require()?;
        let algorithm = algorithm.unwrap_or(old.algorithm());
        self.replace(Some(old), algorithm, audit)
    }

    /// Makes `config`'s key (generated in its token when `generate`, else one
    /// already there) the signing key: the key must sign (a probe signature is
    /// checked) before the `key-rotation` entry is recorded; then the old key is
    /// retired like any rotation, the configuration written and a key file
    /// removed. Nothing changes when the token or the log fails.
    pub fn use_token(
        &self,
        config: &TokenKey,
        generate: bool,
        audit: &AuditLog,
    ) -> Result<KeyChange, EngineError> {
        config.validate()?;
        let old = self.load()?;
        let key = if generate {
            crate::hsm::generate(config)?
        } else {
            config.open()?
        };
        key.sign(b"cairn: probe of a token key before it is used")?;
        if old.as_ref().is_some_and(|o| o.key_id() == key.key_id()) {
            return Err(EngineError::Token(format!(
                "{} is already the signing key",
                config.location()
            )));
        }
        let logged = audit.record(&Change::KeyRotation(KeyRotation {
            purpose: SIGNING_KEY_PURPOSE.to_owned(),
            old_key_id: old.as_ref().map(|k| k.key_id().to_string()),
            new_key_id: key.key_id().to_string(),
            algorithm: key.algorithm().name().to_owned(),
        }))?;
        private_dir(&self.dir)?;
        let retired = self.retire(old)?;
        let stored = TokenKey {
            public_key: Some(key.public_key_pem()),
            ..config.clone()
        };
        let json =
            serde_json::to_vec_pretty(&stored).map_err(|e| EngineError::Token(e.to_string()))?;
        write_atomically(&self.token_config_path(), &json, 0o600)?;
        remove_if_there(&self.signing_key_path())?;
        remove_if_there(&self.public_key_path())?;
        Ok(KeyChange {
            key,
            retired,
            logged,
        })
    }

    /// A new key in the current key's token, labelled `key_label`; the
    /// current key must be a token key.
    pub fn rotate_in_token(
        &self,
        key_label: &str,
        audit: &AuditLog,
    ) -> Result<KeyChange, EngineError> {
        let current = self.token_config()?.ok_or_else(|| {
            EngineError::Token(
                "the signing key is not in a PKCS#11 token; `cairn key hsm` moves it there"
                    .to_owned(),
            )
        })?;
        let config = TokenKey {
            key_label: key_label.to_owned(),
            public_key: None,
            ..current
        };
        self.use_token(&config, true, audit)
    }

    /// Keeps `old`'s public key in `retired/<keyid>.pub`.
    fn retire(&self, old: Option<SigningKey>) -> Result<Option<Retired>, EngineError> {
        let Some(old) = old else { return Ok(None) };
        private_dir(&self.retired_dir())?;
        let path = self.retired_dir().join(format!("{}.pub", old.key_id()));
        write_atomically(&path, old.public_key_pem().as_bytes(), 0o644)?;
        Ok(Some(Retired {
            key: old.verifying_key().clone(),
            path,
        }))
    }

    /// Makes a new key of `algorithm` in memory, records the `key-rotation` entry
    /// (durably), then retires `old` (its public key to `retired/<keyid>.pub`) and
    /// writes the new key in its place. Nothing on disk changes when the entry
    /// cannot be recorded.
    fn replace(
        &self,
        old: Option<SigningKey>,
        algorithm: Algorithm,
        audit: &AuditLog,
    ) -> Result<KeyChange, EngineError> {
        let key = SigningKey::generate(algorithm)?;
        let logged = audit.record(&Change::KeyRotation(KeyRotation {
            purpose: SIGNING_KEY_PURPOSE.to_owned(),
            old_key_id: old.as_ref().map(|k| k.key_id().to_string()),
            new_key_id: key.key_id().to_string(),
            algorithm: algorithm.name().to_owned(),
        }))?;
        private_dir(&self.dir)?;
        let retired = self.retire(old)?;
        let pem = key.to_pkcs8_pem()?;
        // The old record goes first: a crash before the new one is written
        // leaves none, which the next load records from the key file.
        remove_if_there(&self.public_key_path())?;
        write_atomically(&self.signing_key_path(), pem.expose().as_bytes(), 0o600)?;
        write_atomically(
            &self.public_key_path(),
            key.public_key_pem().as_bytes(),
            0o644,
        )?;
        // A key file replaces a token key.
        remove_if_there(&self.token_config_path())?;
        Ok(KeyChange {
            key,
            retired,
            logged,
        })
    }
}

/// A PKCS#11 key configuration (`keys/signing.pkcs11.json`,
/// `keys/log.pkcs11.json`): a regular file of at most 64 KiB, never followed
/// through a symlink, validated; `None` when there is none.
pub(crate) fn read_token_config(path: &Path) -> Result<Option<TokenKey>, EngineError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EngineError::io("read", path)(e)),
    };
    if !meta.is_file() || meta.len() > 64 * 1024 {
        return Err(EngineError::Token(format!(
            "{} is not a regular file of at most 64 KiB",
            path.display()
        )));
    }
    let bytes = fs::read(path).map_err(EngineError::io("read", path))?;
    let config: TokenKey = serde_json::from_slice(&bytes).map_err(|e| {
        EngineError::Token(format!(
            "{} is not a PKCS#11 key configuration: {e}",
            path.display()
        ))
    })?;
    config.validate()?;
    Ok(Some(config))
}

/// The text of a recorded public key file (`keys/log.pub`,
/// `keys/signing.pub`); `None` when there is none. Opened without following a
/// symlink (nor blocking on a FIFO), it must be a regular file of at most
/// `max` bytes that no other user may write, in UTF-8; `bad` makes the error
/// for one that is not.
pub(crate) fn read_public_file(
    path: &Path,
    max: u64,
    bad: impl Fn(String) -> EngineError,
) -> Result<Option<String>, EngineError> {
    use std::io::Read as _;
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(bad("is a symbolic link; it is never followed".to_owned()));
        }
        Err(e) => return Err(EngineError::io("read", path)(e)),
    };
    let meta = file.metadata().map_err(EngineError::io("read", path))?;
    if !meta.is_file() || meta.len() > max {
        return Err(bad(format!("is not a regular file of at most {max} bytes")));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(bad(format!(
            "is writable by other users (mode {mode:o}); `chmod 644` it and check it against the key"
        )));
    }
    let mut text = String::new();
    file.take(max + 1)
        .read_to_string(&mut text)
        .map_err(|e| bad(format!("cannot be read as text: {e}")))?;
    Ok(Some(text))
}

pub(crate) fn remove_if_there(path: &Path) -> Result<(), EngineError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(EngineError::io("remove", path)(e))
        }
        _ => Ok(()),
    }
}

/// Creates `dir` (and parents) and makes it 0700, also when it already existed.
pub(crate) fn private_dir(dir: &Path) -> Result<(), EngineError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(EngineError::io("create", dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(EngineError::io("make private", dir))
}

/// Writes `bytes` to a new temporary file of `mode` beside `path`, syncs it,
/// renames it over `path`, and syncs the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), EngineError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A random name, never a pid: a leftover of a dead process whose pid this one
    // reuses must not make the write fail.
    let mut nonce = [0u8; 16];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| EngineError::NoRandomness)?;
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!(".{name}.tmp-{nonce}"));
    let written = (|| -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(EngineError::Io {
            what: "write",
            path: path.to_path_buf(),
            source,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("exists").permissions().mode() & 0o777
    }

    fn store() -> (tempfile::TempDir, KeyStore, AuditLog) {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data = DataDir::at(tmp.path());
        let keys = KeyStore::new(&data);
        let audit = AuditLog::open(&data).expect("audit log");
        (tmp, keys, audit)
    }

    /// The `key-rotation` entries in the log, as (old, new) key ids.
    fn rotations(tmp: &Path) -> Vec<(Option<String>, String)> {
        let data = DataDir::at(tmp);
        let verifier = cairn_tlog_fs::load_or_create_signer(
            &crate::audit::key_path(&data),
            crate::audit::ORIGIN,
        )
        .expect("log key")
        .verifier();
        let log = cairn_tlog_fs::Log::open_read_only(&crate::audit::log_dir(&data), verifier)
            .expect("log");
        (0..log.size())
            .map(|i| {
                let v: serde_json::Value =
                    serde_json::from_slice(&log.entry(i).expect("entry")).expect("json");
                assert_eq!(v["kind"], "key-rotation");
                assert_eq!(v["spec"]["purpose"], SIGNING_KEY_PURPOSE);
                (
                    v["spec"]["oldKeyId"].as_str().map(str::to_owned),
                    v["spec"]["newKeyId"].as_str().expect("new").to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_leftover_temporary_file_named_after_this_pid_does_not_block_a_write() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let path = tmp.path().join("admin.token");
        let leftover = tmp
            .path()
            .join(format!(".admin.token.tmp-{}", std::process::id()));
        fs::write(&leftover, b"left by a dead process").expect("leftover");
        write_atomically(&path, b"fresh", 0o600).expect("writes despite the leftover");
        assert_eq!(fs::read(&path).expect("written"), b"fresh");
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn create_writes_a_private_key_in_a_private_dir() {
        let (tmp, keys, audit) = store();
        for algorithm in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
            let key = keys.create(algorithm, true, &audit).expect("creates").key;
            assert_eq!(key.algorithm(), algorithm);
            assert_eq!(mode(&tmp.path().join("keys")), 0o700);
            assert_eq!(mode(&keys.signing_key_path()), 0o600);
            assert_eq!(keys.require().expect("loads").key_id(), key.key_id());
        }
        let mut names: Vec<String> = fs::read_dir(keys.dir())
            .expect("lists")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "log.key",
                "log.pub",
                "retired",
                "signing.key",
                "signing.pub"
            ]
        );
    }

    #[test]
    fn create_refuses_to_replace_without_force_and_retires_with_it() {
        let (tmp, keys, audit) = store();
        let created = keys
            .create(Algorithm::Ed25519, false, &audit)
            .expect("creates");
        let first = created.key;
        assert!(created.retired.is_none());
        assert!(matches!(
            keys.create(Algorithm::Ed25519, false, &audit),
            Err(EngineError::KeyExists { .. })
        ));
        assert_eq!(keys.require().expect("loads").key_id(), first.key_id());
        let replaced = keys
            .create(Algorithm::EcdsaP256Sha256, true, &audit)
            .expect("replaces");
        assert_eq!(replaced.logged.index, 1);
        assert_eq!(
            rotations(tmp.path()),
            [
                (None, first.key_id().to_string()),
                (
                    Some(first.key_id().to_string()),
                    replaced.key.key_id().to_string()
                )
            ]
        );
        let retired = replaced.retired.expect("retired the old key");
        assert_eq!(retired.key.key_id(), first.key_id());
        assert_eq!(
            retired.path,
            keys.retired_dir().join(format!("{}.pub", first.key_id()))
        );
    }

    #[test]
    fn rotation_keeps_the_old_public_key() {
        let (tmp, keys, audit) = store();
        assert!(matches!(
            keys.rotate(None, &audit),
            Err(EngineError::NoSigningKey { .. })
        ));
        let (first, created) = keys.load_or_create(&audit).expect("creates");
        assert!(created);
        assert_eq!(first.algorithm(), DEFAULT_ALGORITHM);
        let (again, created) = keys.load_or_create(&audit).expect("loads");
        assert!(!created);
        assert_eq!(again.key_id(), first.key_id());
        let rotation = keys.rotate(None, &audit).expect("rotates");
        let rotated = rotation.key;
        assert_ne!(rotated.key_id(), first.key_id());
        assert_eq!(
            rotations(tmp.path()).last(),
            Some(&(
                Some(first.key_id().to_string()),
                rotated.key_id().to_string()
            ))
        );
        let retired = rotation.retired.expect("retired");
        let kept =
            VerifyingKey::from_pem(&fs::read_to_string(&retired.path).expect("kept")).expect("pem");
        assert_eq!(&kept, first.verifying_key());
        let changed = keys
            .rotate(Some(Algorithm::Ed25519), &audit)
            .expect("rotates")
            .key;
        assert_eq!(changed.algorithm(), Algorithm::Ed25519);
        assert_eq!(fs::read_dir(keys.retired_dir()).expect("lists").count(), 2);
    }

    #[test]
    fn refuses_a_key_file_others_can_read_or_that_is_not_a_key() {
        let (_tmp, keys, audit) = store();
        keys.create(Algorithm::EcdsaP256Sha256, false, &audit)
            .expect("creates");
        fs::set_permissions(keys.signing_key_path(), fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let err = keys.load().expect_err("refuses");
        assert!(
            matches!(err, EngineError::KeyExposed { mode: 0o644, .. }),
            "{err:?}"
        );
        assert!(err.is_user_error());
        fs::write(keys.signing_key_path(), "not a key").expect("write");
        fs::set_permissions(keys.signing_key_path(), fs::Permissions::from_mode(0o600))
            .expect("chmod");
        let err = keys.load().expect_err("refuses");
        assert!(matches!(err, EngineError::BadKey { .. }), "{err:?}");
        // Neither error shows key material.
        assert!(!err.to_string().contains("not a key"));
    }

    #[test]
    fn a_rotation_the_log_cannot_record_does_not_replace_the_key() {
        let (tmp, keys, audit) = store();
        let first = keys
            .create(Algorithm::Ed25519, false, &audit)
            .expect("creates")
            .key;
        // Make the log unwritable: its tile directory becomes a file.
        let tiles = crate::audit::log_dir(&DataDir::at(tmp.path())).join("tile");
        fs::remove_dir_all(&tiles).expect("remove tiles");
        fs::write(&tiles, "in the way").expect("block");
        let err = keys.rotate(None, &audit).expect_err("not logged");
        assert!(matches!(err, EngineError::AuditAppend(_)), "{err:?}");
        assert_eq!(keys.require().expect("loads").key_id(), first.key_id());
        assert!(
            !keys
                .retired_dir()
                .join(format!("{}.pub", first.key_id()))
                .exists()
        );
    }

    #[test]
    fn a_token_key_is_never_replaced_by_a_file_key_and_its_public_half_reads_without_the_token() {
        let (_tmp, keys, audit) = store();
        let public = SigningKey::generate(Algorithm::EcdsaP256Sha256)
            .expect("generates")
            .public_key_pem();
        let config = TokenKey {
            module: PathBuf::from("/nonexistent/libpkcs11.so"),
            token: "t".to_owned(),
            key_label: "k".to_owned(),
            pin_file: None,
            pin_env: Some("CAIRN_TEST_UNSET_PIN_VARIABLE".to_owned()),
            public_key: Some(public.clone()),
        };
        private_dir(keys.dir()).expect("dir");
        write_atomically(
            &keys.token_config_path(),
            &serde_json::to_vec(&config).expect("json"),
            0o600,
        )
        .expect("writes");
        // Readers that only verify get the recorded key without the token.
        assert_eq!(
            keys.public_key().expect("reads").expect("a key").to_pem(),
            public
        );
        // Signers fail: no fall-back to creating a key file.
        let err = keys.load_or_create(&audit).expect_err("no token");
        assert!(matches!(err, EngineError::Token(_)), "{err:?}");
        assert!(!keys.signing_key_path().exists());
        assert!(keys.rotate(None, &audit).is_err());
        // A key file beside the configuration is ambiguous, not chosen.
        write_atomically(&keys.signing_key_path(), b"x", 0o600).expect("writes");
        let err = keys.load().expect_err("ambiguous");
        assert!(matches!(err, EngineError::KeysAmbiguous { .. }), "{err:?}");
    }

    /// Readers of the evidence key (gates through `Trust::read_only`, `cairn
    /// key show`) use `keys/signing.pub` and never open the key file: with it
    /// replaced by a directory (tests run as root: mode 000 hides nothing)
    /// they still have the public key. Without the record a reader derives
    /// it from the key file and writes nothing, the next load records it; a
    /// record that disagrees with the key stops the signer; a malformed one
    /// is refused naming the file.
    #[test]
    fn readers_use_the_recorded_public_key_and_never_the_key_file() {
        let tmp = tempfile::tempdir().expect("tmp");
        let data = DataDir::at(tmp.path());
        let audit = AuditLog::open(&data).expect("log");
        let keys = KeyStore::new(&data);
        let key = keys
            .create(DEFAULT_ALGORITHM, false, &audit)
            .expect("creates")
            .key;
        let public = keys.public_key_path();
        assert_eq!(
            fs::read_to_string(&public).expect("recorded"),
            key.public_key_pem()
        );
        assert_eq!(mode(&public), 0o644);

        let file = keys.signing_key_path();
        let secret = fs::read(&file).expect("read");
        fs::remove_file(&file).expect("remove");
        fs::create_dir(&file).expect("a directory in its place");
        let shown = keys.public_key().expect("reads").expect("a key");
        assert_eq!(shown.key_id(), key.key_id());
        crate::verified::Trust::read_only(&data).expect("a reader's trust");
        assert!(keys.load().is_err(), "the signer does need the key");

        fs::remove_dir(&file).expect("remove");
        write_atomically(&file, &secret, 0o600).expect("write");
        fs::remove_file(&public).expect("remove");
        assert_eq!(
            keys.public_key().expect("derives").expect("a key").key_id(),
            key.key_id()
        );
        assert!(!public.exists(), "a reader writes nothing");
        keys.require().expect("loads");
        assert_eq!(
            fs::read_to_string(&public).expect("recorded"),
            key.public_key_pem()
        );

        let other = SigningKey::generate(DEFAULT_ALGORITHM).expect("key");
        write_atomically(&public, other.public_key_pem().as_bytes(), 0o644).expect("write");
        let e = keys.require().expect_err("disagrees").to_string();
        println!("keys/signing.pub disagreeing with keys/signing.key: {e}");
        assert!(e.contains("one of them was replaced"), "{e}");
        write_atomically(&public, b"not a key", 0o644).expect("write");
        let e = keys.public_key().expect_err("malformed").to_string();
        assert!(
            e.contains("signing.pub") && e.contains("does not hold a public key"),
            "{e}"
        );
    }
}
