//! Registry credentials where container tools keep them: a containers-auth.json
//! (`$REGISTRY_AUTH_FILE`, podman/skopeo/buildah) and Docker's `config.json`
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), in that order,
//! before `CAIRN_REGISTRY_USERNAME`/`CAIRN_REGISTRY_PASSWORD`. In each file,
//! as Docker reads it: a `credHelpers` entry for the host, else `credsStore`,
//! else `auths` (`auth` = base64 of `user:password`, or `username` and
//! `password`). A helper is `docker-credential-<name> get` with the host on
//! stdin (the docker-credential-helpers protocol), bounded in time and output;
//! its failure is an error naming the helper and the host, never a silent
//! fall back to anonymous.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use crate::auth::{Credentials, Secret};

/// A credential file or helper that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    #[error("cannot use the registry auth file {path}: {why}")]
    File { path: PathBuf, why: String },
    #[error("the credential helper docker-credential-{helper} failed for {host}: {why}")]
    Helper {
        helper: String,
        host: String,
        why: String,
    },
}

/// Where credentials come from, in order; the last resort is `fallback`.
#[derive(Debug, Clone, Default)]
pub struct AuthSources {
    pub files: Vec<PathBuf>,
    /// `CAIRN_REGISTRY_USERNAME`/`CAIRN_REGISTRY_PASSWORD`, or anonymous.
    pub fallback: Credentials,
}

/// The largest auth file read, and the most a helper may print.
const MAX_FILE: u64 = 1 << 20;
const MAX_HELPER_OUTPUT: u64 = 64 * 1024;
/// How long a credential helper may take.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

impl AuthSources {
    /// The sources this process's environment names: `$REGISTRY_AUTH_FILE`,
    /// `$DOCKER_CONFIG/config.json` or `$HOME/.docker/config.json`, then the
    /// `CAIRN_REGISTRY_*` variables.
    pub fn from_env() -> AuthSources {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let mut files = Vec::new();
        if let Some(f) = var("REGISTRY_AUTH_FILE") {
            files.push(PathBuf::from(f));
        }
        if let Some(d) = var("DOCKER_CONFIG") {
            files.push(PathBuf::from(d).join("config.json"));
        } else if let Some(home) = var("HOME") {
            files.push(PathBuf::from(home).join(".docker/config.json"));
        }
        let fallback = match (
            std::env::var("CAIRN_REGISTRY_USERNAME"),
            std::env::var("CAIRN_REGISTRY_PASSWORD"),
        ) {
            (Ok(username), Ok(password)) if !username.is_empty() => Credentials::Basic {
                username,
                password: Secret::new(password),
            },
            _ => Credentials::Anonymous,
        };
        AuthSources { files, fallback }
    }

    /// The credentials for registry `host` (`host[:port]`).
    pub fn credentials_for(&self, host: &str) -> Result<Credentials, AuthFileError> {
        for path in &self.files {
            if let Some(c) = from_file(path, host)? {
                return Ok(c);
            }
        }
        Ok(self.fallback.clone())
    }
}

/// The host an `auths` key names: `https://host/v1/` and `host/namespace` both
/// name `host`.
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

fn from_file(path: &Path, host: &str) -> Result<Option<Credentials>, AuthFileError> {
    let fail = |why: String| AuthFileError::File {
        path: path.to_owned(),
        why,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(e.to_string())),
    };
    let mut text = String::new();
    file.take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| fail(e.to_string()))?;
    if text.len() as u64 > MAX_FILE {
        return Err(fail("larger than 1 MiB".into()));
    }
    let v: Value = serde_json::from_str(&text).map_err(|e| fail(format!("not JSON: {e}")))?;
    let helper = v["credHelpers"][host]
        .as_str()
        .or_else(|| v["credsStore"].as_str());
    if let Some(helper) = helper {
        return helper_get(helper, host).map(Some);
    }
    let Some(auths) = v["auths"].as_object() else {
        return Ok(None);
    };
    let Some(entry) = auths.get(host).or_else(|| {
        auths
            .iter()
            .find(|(k, _)| key_host(k) == host)
            .map(|(_, e)| e)
    }) else {
        return Ok(None);
    };
    if let Some(auth) = entry["auth"].as_str().filter(|a| !a.is_empty()) {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| fail(format!("the `auth` of {host} is not base64")))?;
        let raw = String::from_utf8(raw)
            .map_err(|_| fail(format!("the `auth` of {host} is not UTF-8")))?;
        let (user, password) = raw
            .split_once(':')
            .ok_or_else(|| fail(format!("the `auth` of {host} is not user:password")))?;
        return Ok(Some(Credentials::basic(user, password)));
    }
    match (entry["username"].as_str(), entry["password"].as_str()) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials::basic(u, p))),
        _ if entry.get("identitytoken").is_some() => Err(fail(format!(
            "the entry for {host} holds an identity token, which cairn does not use; log in with a user name and password or token"
        ))),
        _ => Ok(None),
    }
}

/// `docker-credential-<helper> get`, the host on stdin; its JSON
/// `{"ServerURL", "Username", "Secret"}` on stdout.
fn helper_get(helper: &str, host: &str) -> Result<Credentials, AuthFileError> {
    let fail = |why: String| AuthFileError::Helper {
        helper: helper.chars().take(64).collect(),
        host: host.to_owned(),
        why,
    };
    if helper.is_empty()
        || helper.len() > 64
        || !helper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(fail("not a helper name (letters, digits, - _ .)".into()));
    }
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(host.as_bytes());
    }
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout {
            let _ = s.take(MAX_HELPER_OUTPUT).read_to_end(&mut buf);
        }
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr {
            let _ = s.take(4096).read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + HELPER_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "it did not answer within {}s",
                    HELPER_TIMEOUT.as_secs()
                )));
            }
            Err(e) => return Err(fail(e.to_string())),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        // The helper's own words (stdout for the protocol's errors, e.g.
        // "credentials not found in native keychain"), one line, bounded.
        let said = String::from_utf8_lossy(if stdout.is_empty() { &stderr } else { &stdout })
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect::<String>();
        return Err(fail(format!("it exited with {status}: {said}")));
    }
    let v: Value = serde_json::from_slice(&stdout)
        .map_err(|_| fail("its answer is not the credential JSON".into()))?;
    match (v["Username"].as_str(), v["Secret"].as_str()) {
        (Some("<token>"), _) => Err(fail(
            "it returned an identity token, which cairn does not use".into(),
        )),
        (Some(u), Some(s)) if !u.is_empty() && !s.is_empty() => Ok(Credentials::basic(u, s)),
        _ => Err(fail("its answer has no Username and Secret".into())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sources(dir: &Path, files: &[(&str, &str)]) -> AuthSources {
        AuthSources {
            files: files
                .iter()
                .map(|(name, text)| {
                    let p = dir.join(name);
                    std::fs::write(&p, text).unwrap();
                    p
                })
                .collect(),
            fallback: Credentials::basic("env-user", "env-pass"),
        }
    }

    fn user(c: &Credentials) -> String {
        match c {
            Credentials::Basic { username, password } => {
                format!("{username}:{}", password.expose())
            }
            Credentials::Anonymous => "anonymous".into(),
        }
    }

    #[test]
    fn auth_files_come_first_in_order_then_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:pw1");
        let s = sources(
            dir.path(),
            &[
                (
                    "auth.json",
                    &format!(r#"{{"auths":{{"reg.example.org/team":{{"auth":"{b64}"}}}}}}"#),
                ),
                (
                    "config.json",
                    r#"{"auths":{"https://reg.example.org/v1/":{"auth":"Ym9iOnB3Mg=="},"other:5000":{"username":"carol","password":"pw3"}}}"#,
                ),
            ],
        );
        assert_eq!(
            user(&s.credentials_for("reg.example.org").unwrap()),
            "alice:pw1"
        );
        assert_eq!(user(&s.credentials_for("other:5000").unwrap()), "carol:pw3");
        assert_eq!(
            user(&s.credentials_for("elsewhere").unwrap()),
            "env-user:env-pass"
        );
        // A debug print never shows a password.
        let shown = format!("{:?}", s.credentials_for("reg.example.org").unwrap());
        assert!(!shown.contains("pw1"), "{shown}");
        let bad = sources(dir.path(), &[("bad.json", "{not json")]);
        let e = bad.credentials_for("x").unwrap_err().to_string();
        assert!(e.contains("bad.json") && e.contains("not JSON"), "{e}");
        let helper = sources(
            dir.path(),
            &[("h.json", r#"{"credHelpers":{"x":"../../bin/sh"}}"#)],
        );
        let e = helper.credentials_for("x").unwrap_err().to_string();
        assert!(e.contains("not a helper name"), "{e}");
    }
}
