//! Image references (`registry/repository[:tag][@sha256:…]`) and the rules cairn
//! applies to them before any work starts: never Docker Hub, and only registries
//! on the organisation's allow-list.
//!
//! The grammar is the distribution project's: the first path component is a
//! registry host when it contains `.` or `:` or is `localhost`; otherwise the name
//! is unqualified, and an unqualified name means Docker Hub to every container
//! tool — which is exactly why cairn refuses it rather than guessing.

use std::fmt;

/// Hosts that are Docker Hub, whatever they are called.
pub const DOCKER_HUB_HOSTS: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/// The rule's name and what it says, quoted in every refusal.
pub const NO_DOCKER_HUB_RULE: &str = "rule no-docker-hub: nothing is built on or deployed from Docker Hub \
(docker.io, index.docker.io, registry-1.docker.io, or an unqualified name such as `nginx:latest`, which means Docker Hub)";

/// What to do instead, for help lines.
pub const NO_DOCKER_HUB_HELP: &str = "build on a base from the organisation's catalog (`cairn base list`); \
a new base enters the catalog with `cairn base import` from an allowed registry, an OCI layout or a root filesystem";

const MAX_REFERENCE_BYTES: usize = 512;
const MAX_NAME_BYTES: usize = 255;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry host (and port) as written; `None` when the name is unqualified.
    pub registry: Option<String>,
    /// The repository path, e.g. `platform/debian`.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>` when pinned.
    pub digest: Option<String>,
}

/// Why a reference is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("`{reference}` is not a valid image reference: {why}")]
    Invalid { reference: String, why: String },
    #[error("`{reference}` is refused: {NO_DOCKER_HUB_RULE}")]
    DockerHub { reference: String },
    #[error(
        "`{reference}` is refused: registry `{registry}` is not on the organisation's allow-list ({allowed})"
    )]
    RegistryNotAllowed {
        reference: String,
        registry: String,
        allowed: String,
    },
    #[error(
        "`{reference}` is not pinned by digest: add `@sha256:<digest>` so what was checked is what is used"
    )]
    NotPinned { reference: String },
}

impl ImageRef {
    /// Parses `text` strictly. Docker Hub references parse (so they can be named in
    /// the refusal); [`ImageRef::check_not_docker_hub`] refuses them.
    pub fn parse(text: &str) -> Result<ImageRef, RefError> {
        let invalid = |why: &str| RefError::Invalid {
            reference: text.chars().take(MAX_REFERENCE_BYTES).collect(),
            why: why.to_owned(),
        };
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        if text.len() > MAX_REFERENCE_BYTES {
            return Err(invalid("it is longer than 512 bytes"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                if !digest.starts_with(crate::digest::SHA256_PREFIX) {
                    return Err(invalid("only sha256 digests are accepted"));
                }
                if !crate::Digest::is_valid(digest) {
                    return Err(invalid(
                        "the digest is not `sha256:` and 64 lowercase hex digits",
                    ));
                }
                (rest, Some(digest.to_owned()))
            }
            None => (text, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(rest[at + 1..].to_owned()))
            }
            None => (rest, None),
        };
        if let Some(tag) = &tag
            && !valid_tag(tag)
        {
            return Err(invalid(
                "the tag must be 1-128 characters of letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
            ));
        }
        if name.is_empty() {
            return Err(invalid("the name is empty"));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                if !valid_host(first) {
                    return Err(invalid("the registry host is not a valid host[:port]"));
                }
                (Some(first.to_owned()), rest)
            }
            _ => (None, name),
        };
        if repository.len() > MAX_NAME_BYTES {
            return Err(invalid("the repository name is longer than 255 bytes"));
        }
        if !repository.split('/').all(valid_path_component) {
            return Err(invalid(
                "repository path components are lowercase letters and digits, separated by `.`, `_`, `__` or `-`",
            ));
        }
        Ok(ImageRef {
            registry,
            repository: repository.to_owned(),
            tag,
            digest,
        })
    }

    /// Whether this names Docker Hub: an unqualified name, or one of its hosts.
    pub fn is_docker_hub(&self) -> bool {
        match &self.registry {
            None => true,
            Some(host) => {
                let host = host.to_ascii_lowercase();
                let bare = host.split(':').next().unwrap_or(&host).to_owned();
                DOCKER_HUB_HOSTS.contains(&bare.as_str())
            }
        }
    }

    /// Refuses Docker Hub.
    pub fn check_not_docker_hub(&self) -> Result<(), RefError> {
        if self.is_docker_hub() {
            Err(RefError::DockerHub {
                reference: self.to_string(),
            })
        } else {
            Ok(())
        }
    }

    /// Refuses Docker Hub, registries not on `allowed`, and (when `pinned`) a
    /// reference without a digest. Host comparison ignores ASCII case.
    pub fn check_allowed(&self, allowed: &[String], pinned: bool) -> Result<(), RefError> {
        self.check_not_docker_hub()?;
        let registry = self.registry.clone().unwrap_or_default();
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(&registry)) {
            return Err(RefError::RegistryNotAllowed {
                reference: self.to_string(),
                registry,
                allowed: if allowed.is_empty() {
                    "the list is empty: add registries to `[registries] allow` in org.toml"
                        .to_owned()
                } else {
                    allowed.join(", ")
                },
            });
        }
        if pinned && self.digest.is_none() {
            return Err(RefError::NotPinned {
                reference: self.to_string(),
            });
        }
        Ok(())
    }

    /// The tag or digest to ask a registry for (digest first).
    pub fn reference(&self) -> String {
        self.digest
            .clone()
            .or_else(|| self.tag.clone())
            .unwrap_or_else(|| "latest".to_owned())
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(r) = &self.registry {
            write!(f, "{r}/")?;
        }
        f.write_str(&self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Whether `text` looks like an image reference rather than a catalog name: it
/// has a registry, a path, a tag or a digest.
pub fn looks_like_reference(text: &str) -> bool {
    text.contains('/') || text.contains(':') || text.contains('@')
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with('.')
        && !tag.starts_with('-')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    port_ok
        && !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_the_usual_shapes() {
        let r = ImageRef::parse("registry.example.org:5000/platform/debian:bookworm").unwrap();
        assert_eq!(r.registry.as_deref(), Some("registry.example.org:5000"));
        assert_eq!(r.repository, "platform/debian");
        assert_eq!(r.tag.as_deref(), Some("bookworm"));
        assert_eq!(r.digest, None);
        assert!(!r.is_docker_hub());

        let pinned = format!("localhost/app@{D}");
        let r = ImageRef::parse(&pinned).unwrap();
        assert_eq!(r.registry.as_deref(), Some("localhost"));
        assert_eq!(r.digest.as_deref(), Some(D));
        assert_eq!(r.to_string(), pinned);
        assert_eq!(r.reference(), D);

        let r = ImageRef::parse("127.0.0.1:5000/a/b:v1.2").unwrap();
        assert_eq!(r.registry.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(r.to_string(), "127.0.0.1:5000/a/b:v1.2");
    }

    #[test]
    fn docker_hub_in_every_spelling_is_refused() {
        for text in [
            "nginx:latest",
            "nginx",
            "library/nginx",
            "docker.io/library/alpine",
            "docker.io/library/alpine:3.20",
            "index.docker.io/library/alpine",
            "registry-1.docker.io/library/alpine",
            "DOCKER.IO/library/alpine",
            "docker.io:443/library/alpine",
        ] {
            let r = ImageRef::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let err = r.check_not_docker_hub().expect_err(text);
            assert!(err.to_string().contains("rule no-docker-hub"), "{err}");
            assert!(
                r.check_allowed(&["docker.io".to_owned()], false).is_err(),
                "the allow-list cannot re-admit Docker Hub: {text}"
            );
        }
    }

    #[test]
    fn allow_list_and_pinning() {
        let allowed = vec!["registry.example.org".to_owned()];
        let r = ImageRef::parse("registry.example.org/base/debian:12").unwrap();
        assert!(r.check_allowed(&allowed, false).is_ok());
        assert!(matches!(
            r.check_allowed(&allowed, true),
            Err(RefError::NotPinned { .. })
        ));
        let other = ImageRef::parse("ghcr.io/x/y:1").unwrap();
        let err = other.check_allowed(&allowed, false).unwrap_err();
        assert!(err.to_string().contains("ghcr.io"), "{err}");
        assert!(err.to_string().contains("registry.example.org"), "{err}");
        let err = other.check_allowed(&[], false).unwrap_err();
        assert!(err.to_string().contains("org.toml"), "{err}");
    }

    #[test]
    fn malformed_references_are_refused() {
        for text in [
            "",
            "UPPER/case",
            "a//b",
            "a/b:",
            "a/b:-x",
            "a/b@sha256:abc",
            "a/b@md5:0123",
            &format!("a/b@{}", D.to_uppercase().replace("SHA256", "sha256")),
            "reg.example.org/-x",
            "reg..example/x",
            "reg.example:99999999/x",
            &"a/".repeat(300),
        ] {
            assert!(
                matches!(ImageRef::parse(text), Err(RefError::Invalid { .. })),
                "{text:?} should be invalid"
            );
        }
    }

    #[test]
    fn catalog_names_are_not_references() {
        assert!(!looks_like_reference("debian-minbase"));
        assert!(looks_like_reference("nginx:latest"));
        assert!(looks_like_reference("docker.io/library/alpine"));
        assert!(looks_like_reference(&format!("base@{D}")));
    }
}
