//! The log's Ed25519 signing key on disk: a C2SP signer key string
//! (`PRIVATE+KEY+<name>+<hex8>+<base64>`) in a 0600 file, created on first use.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use cairn_tlog::note::{NoteError, Signer};

/// Why the key file could not be read or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot access key file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path} is readable by others (mode {mode:o}); it must be 0600")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("key file {path} does not hold a valid signer key")]
    Invalid {
        path: PathBuf,
        #[source]
        source: NoteError,
    },
    #[error("key file {path} is for `{found}`, not `{expected}`")]
    WrongName {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("the system random generator failed")]
    Random,
}

/// A fresh Ed25519 signer named `name`, from the system's random generator.
pub fn generate_signer(name: &str) -> Result<Signer, KeyFileError> {
    let mut seed = [0u8; 32];
    SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| KeyFileError::Random)?;
    Signer::from_seed(name, seed).map_err(|source| KeyFileError::Invalid {
        path: PathBuf::new(),
        source,
    })
}

/// Loads the signer from `path`; `None` when the file does not exist (nothing
/// is created: for readers that must leave no trace).
pub fn load_signer(path: &Path, name: &str) -> Result<Option<Signer>, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyFileError::Permissions {
                    path: path.to_owned(),
                    mode,
                });
            }
            let signer =
                Signer::parse(text.trim_end()).map_err(|source| KeyFileError::Invalid {
                    path: path.to_owned(),
                    source,
                })?;
            if signer.name() != name {
                return Err(KeyFileError::WrongName {
                    path: path.to_owned(),
                    expected: name.to_owned(),
                    found: signer.name().to_owned(),
                });
            }
            Ok(Some(signer))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(e)),
    }
}

/// Loads the signer from `path`, or creates the file (mode 0600, fsynced)
/// with a new key named `name` if it does not exist.
pub fn load_or_create_signer(path: &Path, name: &str) -> Result<Signer, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(signer) = load_signer(path, name)? {
        return Ok(signer);
    }
    // Not there: created (`create_new`, so a file that appeared meanwhile is
    // an error, never overwritten).
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    let signer = generate_signer(name)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(format!("{}\n", signer.to_secret_key_string()).as_bytes())
        .map_err(io)?;
    file.sync_all().map_err(io)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(signer)
}
