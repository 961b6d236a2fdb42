//! cairn's evidence signing key on disk, in `<data dir>/keys/` — outside anything
//! the sandbox sees:
//!
//! - `keys/signing.key`: the private key, PKCS#8 PEM, mode 0600, in a 0700
//!   directory, always written to a temporary file, synced, then renamed;
//! - `keys/retired/<keyid>.pub`: the public key of every key that was replaced, so
//!   evidence signed before a rotation stays verifiable.
//!
//! The secret never leaves this module except as a [`SigningKey`], whose `Debug`
//! shows only its algorithm and key id.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cairn_evidence::{Algorithm, SigningKey, VerifyingKey};

use crate::{DataDir, EngineError};

/// The algorithm of keys cairn creates on its own: every Sigstore and in-toto
/// verifier accepts ECDSA P-256.
pub const DEFAULT_ALGORITHM: Algorithm = Algorithm::EcdsaP256Sha256;

/// `<data dir>/keys`.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
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

    pub fn retired_dir(&self) -> PathBuf {
        self.dir.join("retired")
    }

    /// The signing key, if there is one. A key file others can read is refused.
    pub fn load(&self) -> Result<Option<SigningKey>, EngineError> {
        let path = self.signing_key_path();
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

    /// The signing key, created with [`DEFAULT_ALGORITHM`] when there is none yet;
    /// `true` when it was created now.
    pub fn load_or_create(&self) -> Result<(SigningKey, bool), EngineError> {
        match self.load()? {
            Some(key) => Ok((key, false)),
            None => {
                let (key, _) = self.replace(None, DEFAULT_ALGORITHM)?;
                Ok((key, true))
            }
        }
    }

    /// Creates a key; refuses to replace an existing one unless `force`.
    pub fn create(
        &self,
        algorithm: Algorithm,
        force: bool,
    ) -> Result<(SigningKey, Option<Retired>), EngineError> {
        let existing = self.load()?;
        if existing.is_some() && !force {
            return Err(EngineError::KeyExists {
                path: self.signing_key_path(),
            });
        }
        self.replace(existing, algorithm)
    }

    /// Replaces the key with a new one (of `algorithm`, or the old key's).
    pub fn rotate(
        &self,
        algorithm: Option<Algorithm>,
    ) -> Result<(SigningKey, Option<Retired>), EngineError> {
        let old = self.require()?;
        let algorithm = algorithm.unwrap_or(old.algorithm());
        self.replace(Some(old), algorithm)
    }

    /// Retires `old` (its public key to `retired/<keyid>.pub`), then writes a new
    /// key of `algorithm` in its place.
    fn replace(
        &self,
        old: Option<SigningKey>,
        algorithm: Algorithm,
    ) -> Result<(SigningKey, Option<Retired>), EngineError> {
        private_dir(&self.dir)?;
        let retired = match old {
            Some(old) => {
                private_dir(&self.retired_dir())?;
                let path = self.retired_dir().join(format!("{}.pub", old.key_id()));
                write_atomically(&path, old.public_key_pem().as_bytes(), 0o644)?;
                Some(Retired {
                    key: old.verifying_key().clone(),
                    path,
                })
            }
            None => None,
        };
        let key = SigningKey::generate(algorithm)?;
        let pem = key.to_pkcs8_pem()?;
        write_atomically(&self.signing_key_path(), pem.expose().as_bytes(), 0o600)?;
        Ok((key, retired))
    }
}

/// Creates `dir` (and parents) and makes it 0700, also when it already existed.
fn private_dir(dir: &Path) -> Result<(), EngineError> {
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
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), EngineError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
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

    fn store() -> (tempfile::TempDir, KeyStore) {
        let tmp = tempfile::tempdir().expect("temp dir");
        let keys = KeyStore::new(&DataDir::at(tmp.path()));
        (tmp, keys)
    }

    #[test]
    fn create_writes_a_private_key_in_a_private_dir() {
        let (tmp, keys) = store();
        for algorithm in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
            let (key, _) = keys.create(algorithm, true).expect("creates");
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
        assert_eq!(names, ["retired", "signing.key"]);
    }

    #[test]
    fn create_refuses_to_replace_without_force_and_retires_with_it() {
        let (_tmp, keys) = store();
        let (first, retired) = keys.create(Algorithm::Ed25519, false).expect("creates");
        assert!(retired.is_none());
        assert!(matches!(
            keys.create(Algorithm::Ed25519, false),
            Err(EngineError::KeyExists { .. })
        ));
        assert_eq!(keys.require().expect("loads").key_id(), first.key_id());
        let (_, retired) = keys
            .create(Algorithm::EcdsaP256Sha256, true)
            .expect("replaces");
        let retired = retired.expect("retired the old key");
        assert_eq!(retired.key.key_id(), first.key_id());
        assert_eq!(
            retired.path,
            keys.retired_dir().join(format!("{}.pub", first.key_id()))
        );
    }

    #[test]
    fn rotation_keeps_the_old_public_key() {
        let (_tmp, keys) = store();
        assert!(matches!(
            keys.rotate(None),
            Err(EngineError::NoSigningKey { .. })
        ));
        let (first, created) = keys.load_or_create().expect("creates");
        assert!(created);
        assert_eq!(first.algorithm(), DEFAULT_ALGORITHM);
        let (again, created) = keys.load_or_create().expect("loads");
        assert!(!created);
        assert_eq!(again.key_id(), first.key_id());
        let (rotated, retired) = keys.rotate(None).expect("rotates");
        assert_ne!(rotated.key_id(), first.key_id());
        let retired = retired.expect("retired");
        let kept =
            VerifyingKey::from_pem(&fs::read_to_string(&retired.path).expect("kept")).expect("pem");
        assert_eq!(&kept, first.verifying_key());
        let (changed, _) = keys.rotate(Some(Algorithm::Ed25519)).expect("rotates");
        assert_eq!(changed.algorithm(), Algorithm::Ed25519);
        assert_eq!(fs::read_dir(keys.retired_dir()).expect("lists").count(), 2);
    }

    #[test]
    fn refuses_a_key_file_others_can_read_or_that_is_not_a_key() {
        let (_tmp, keys) = store();
        keys.create(Algorithm::EcdsaP256Sha256, false)
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
}
