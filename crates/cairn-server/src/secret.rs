//! Secrets the server keeps in its data directory: the webhook secret and the
//! first admin's token, each in a file only the owner may read. A secret's
//! `Debug` never shows it.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A secret value; compared in constant time, never printed.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// 32 random bytes, hex: a fresh secret.
    pub fn generate() -> std::io::Result<Secret> {
        Ok(Secret(random_hex(32)?.into_bytes()))
    }

    /// Equal to `other`, in time independent of where they differ and of
    /// their lengths (the SHA-256 of each is compared in constant time).
    pub fn matches(&self, other: &[u8]) -> bool {
        use aws_lc_rs::digest::{SHA256, digest};
        let (a, b) = (digest(&SHA256, &self.0), digest(&SHA256, other));
        aws_lc_rs::constant_time::verify_slices_are_equal(a.as_ref(), b.as_ref()).is_ok()
    }
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> std::io::Result<String> {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| std::io::Error::other("the system random generator failed"))?;
    Ok(hex(&bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the server keeps its own files.
pub fn server_dir(data: &Path) -> PathBuf {
    data.join("server")
}

/// Writes `contents` to a new file readable by its owner only (0600, in a 0700
/// directory); refuses to replace an existing file.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Reads a private file, refusing one that others may read.
pub fn read_private(path: &Path) -> std::io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "{} is readable by other users (mode {:o}); chmod 600 it and replace the secret",
            path.display(),
            meta.permissions().mode() & 0o777
        )));
    }
    std::fs::read(path)
}

/// One webhook secret per forge: GitLab sends its secret in clear
/// (`X-Gitlab-Token`), so a secret shared with GitHub or Gitea would let
/// whoever sees a GitLab delivery sign GitHub and Gitea ones.
#[derive(Clone, Debug)]
pub struct WebhookSecrets {
    pub github: Secret,
    pub gitlab: Secret,
    pub gitea: Secret,
}

/// The forges, and the file each one's secret is kept in under `<data>/server/`.
pub const WEBHOOK_SECRET_FILES: [(&str, &str); 3] = [
    ("github", "webhook-github.secret"),
    ("gitlab", "webhook-gitlab.secret"),
    ("gitea", "webhook-gitea.secret"),
];

/// The forges' webhook secrets in `<data>/server/webhook-<forge>.secret`, each
/// created (random, 0600) on first use. Returns them and their files. (An
/// older shared `webhook.secret` is no longer read.)
pub fn webhook_secrets(data: &Path) -> std::io::Result<(WebhookSecrets, Vec<PathBuf>)> {
    let mut secrets = Vec::new();
    let mut paths = Vec::new();
    for (_, file) in WEBHOOK_SECRET_FILES {
        let path = server_dir(data).join(file);
        let secret = match read_private(&path) {
            Ok(bytes) => Secret(trim(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = Secret::generate()?;
                write_private(&path, secret.expose())?;
                secret
            }
            Err(e) => return Err(e),
        };
        secrets.push(secret);
        paths.push(path);
    }
    let mut secrets = secrets.into_iter();
    let mut next = || secrets.next().unwrap_or_else(|| Secret(Vec::new()));
    Ok((
        WebhookSecrets {
            github: next(),
            gitlab: next(),
            gitea: next(),
        },
        paths,
    ))
}

fn trim(mut bytes: Vec<u8>) -> Vec<u8> {
    while bytes.last().is_some_and(u8::is_ascii_whitespace) {
        bytes.pop();
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_private_per_forge_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let (secrets, paths) = webhook_secrets(dir.path()).unwrap();
        assert_eq!(paths.len(), 3);
        assert!(
            !secrets.github.matches(secrets.gitlab.expose()),
            "one secret per forge"
        );
        assert!(
            !secrets.gitea.matches(secrets.gitlab.expose()),
            "one secret per forge"
        );
        assert!(
            !secrets.github.matches(secrets.gitea.expose()),
            "one secret per forge"
        );
        for path in &paths {
            assert_eq!(
                std::fs::metadata(path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(format!("{:?}", secrets.github), "Secret(<redacted>)");
        let (again, _) = webhook_secrets(dir.path()).unwrap();
        assert!(again.gitlab.matches(secrets.gitlab.expose()));
        assert!(!again.gitlab.matches(b"wrong"));
        std::fs::set_permissions(&paths[1], std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(webhook_secrets(dir.path()).is_err());
    }
}
