//! The organisation's settings (`org.toml` in the platform config directory):
//! which registries images may come from, and what a base image must pass to
//! enter the catalog.

use serde::Deserialize;
use toml::Spanned;

use super::diagnostic::ConfigError;
use super::parse_toml;
use crate::image_ref::{DOCKER_HUB_HOSTS, NO_DOCKER_HUB_RULE};

/// The file name, in `$CAIRN_PLATFORM_DIR`.
pub const ORG_FILE: &str = "org.toml";

/// Validated organisation settings. The default (no file) allows no registry:
/// bases then come only from OCI layouts and root filesystems.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrgConfig {
    /// Registry hosts (`host[:port]`) images may be pulled from or pushed to.
    pub registries: Vec<String>,
    /// A base whose scan finds an unfixed vulnerability at or above this severity
    /// (`low`, `medium`, `high`, `critical`) does not enter the catalog.
    pub base_max_severity: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrg {
    registries: Option<RawRegistries>,
    base: Option<RawBase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistries {
    #[serde(default)]
    allow: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBase {
    max_severity: Option<Spanned<String>>,
}

const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// Parses and validates `org.toml`; `file` names it in errors.
pub fn parse_org(file: &str, text: &str) -> Result<OrgConfig, ConfigError> {
    let raw: RawOrg = parse_toml(file, text)?;
    let mut registries = Vec::new();
    for host in raw.registries.map(|r| r.allow).unwrap_or_default() {
        let h = host.get_ref().trim().to_ascii_lowercase();
        let bare = h.split(':').next().unwrap_or_default();
        if DOCKER_HUB_HOSTS.contains(&bare) {
            return Err(ConfigError::at(
                file,
                text,
                Some(host.span()),
                format!("`{h}` cannot be allowed: {NO_DOCKER_HUB_RULE}"),
                Some(
                    "allow the organisation's own registry and mirror validated bases into it"
                        .into(),
                ),
            ));
        }
        let ok = !h.is_empty()
            && h.len() <= 260
            && !h.contains('/')
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
        if !ok {
            return Err(ConfigError::at(
                file,
                text,
                Some(host.span()),
                format!("`{}` is not a registry host", host.get_ref()),
                Some(
                    "write host or host:port, e.g. \"registry.example.org\" or \"127.0.0.1:5000\""
                        .into(),
                ),
            ));
        }
        registries.push(h);
    }
    let base_max_severity = match raw.base.and_then(|b| b.max_severity) {
        None => None,
        Some(s) if SEVERITIES.contains(&s.get_ref().as_str()) => Some(s.into_inner()),
        Some(s) => {
            return Err(ConfigError::at(
                file,
                text,
                Some(s.span()),
                format!("unknown severity `{}`", s.get_ref()),
                Some(format!("one of {}", SEVERITIES.join(", "))),
            ));
        }
    };
    Ok(OrgConfig {
        registries,
        base_max_severity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let org = parse_org(
            "org.toml",
            "[registries]\nallow = [\"Registry.Example.org\", \"127.0.0.1:5000\"]\n[base]\nmax_severity = \"high\"\n",
        )
        .unwrap();
        assert_eq!(org.registries, ["registry.example.org", "127.0.0.1:5000"]);
        assert_eq!(org.base_max_severity.as_deref(), Some("high"));
        assert_eq!(parse_org("org.toml", "").unwrap(), OrgConfig::default());

        let e = parse_org("org.toml", "[registries]\nallow = [\"docker.io\"]\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 10));
        assert!(e.message.contains("rule no-docker-hub"), "{e}");
        let e = parse_org("org.toml", "[registries]\nallow = [\"a/b\"]\n").unwrap_err();
        assert!(e.message.contains("not a registry host"), "{e}");
        let e = parse_org("org.toml", "[base]\nmax_severity = \"huge\"\n").unwrap_err();
        assert!(e.message.contains("unknown severity"), "{e}");
        let e = parse_org("org.toml", "[registry]\n").unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
    }
}
