//! Configuration: the workload's `cairn.toml` and the organisation's chain
//! (`chains/<name>.toml`). Each is parsed strictly (unknown keys, wrong types and
//! missing fields are errors), then validated into a separate type; every error
//! points at the file, line and column and says what is allowed.

mod chain;
mod diagnostic;
mod integrations;
mod org;
mod policy_params;
mod sso;
mod workload;

pub use chain::{
    Chain, ChainStage, DEFAULT_CHAIN_NAME, DEFAULT_CHAIN_TOML, SandboxPolicy, Tool, parse_chain,
};
pub use diagnostic::ConfigError;
pub use integrations::{
    ForgeApi, ForgeKind, Forges, NotifyEvent, NotifySink, NotifyTarget, is_email_address,
};
pub use org::{
    AdvisoryFeed, ChangeSink, DeployTarget, ExposureSla, FeedSource, ORG_FILE, OrgConfig,
    is_feed_url, parse_org,
};
pub use policy_params::PolicyParams;
pub use sso::{
    BearerIssuer, Claim, ClaimMap, DeclaredRoles, MappedRole, ROLE_NAMES, SsoConfig,
    is_loopback_authority, is_oidc_url,
};
pub use workload::{
    APP_DIR, HttpCheck, ImageConfig, MAX_HTTP_CHECKS, MAX_SBOM_EXCLUDES, WORKLOAD_FILE, Workload,
    parse_workload, render_detected, render_workload, sbom_excluded,
};

/// Config files are small; anything bigger is refused before parsing.
pub const MAX_CONFIG_BYTES: usize = 256 * 1024;

/// Parses a config file strictly into its raw (serde) shape, refusing oversized
/// input before parsing.
fn parse_toml<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, ConfigError> {
    if text.len() > MAX_CONFIG_BYTES {
        let message = format!(
            "the file is {} bytes; the limit is {MAX_CONFIG_BYTES}",
            text.len()
        );
        return Err(ConfigError::at(file, "", None, message, None));
    }
    toml::from_str(text).map_err(|e| diagnostic::from_toml(file, text, &e))
}

/// A name cairn uses in paths and URLs (workloads, chains, stages, environments):
/// 1–63 characters of `a-z`, `0-9` and `-`, starting with a letter or digit.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

const NAME_RULE: &str =
    "names are 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit";

/// Turns any string into a valid name (for `cairn init` from a directory name).
pub fn sanitize_name(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out.trim_end_matches('-').chars().take(63).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        "app".to_owned()
    } else {
        out
    }
}

/// Parses `30s`, `10m`, `1h`, `500ms` (a number and a unit, no spaces).
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => None,
    }?;
    Some(std::time::Duration::from_millis(ms))
}

/// Parses `512MiB`, `2GiB`, `64KiB`, `1G`, `100M` (binary units; `G` = `GiB`).
pub fn parse_size(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let mult: u64 = match unit {
        "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn names() {
        for ok in ["a", "hello-c", "0day", &"x".repeat(63)] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "-a", "A", "a_b", "a.b", "é", &"x".repeat(64)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert_eq!(sanitize_name("My App_2"), "my-app-2");
        assert_eq!(sanitize_name("..."), "app");
        assert!(is_valid_name(&sanitize_name(&"Ab-".repeat(40))));
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        for bad in [
            "",
            "10",
            "m",
            "1.5s",
            "-1s",
            "10 m",
            "99999999999999999999h",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        for bad in ["", "2", "2TB", "x", "99999999999999999999G"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }
}

/// Bad input never panics the parsers: every prefix of valid files, and files with
/// bytes flipped, give a value or a located error.
#[cfg(test)]
mod robustness {
    use super::*;

    const WORKLOAD: &str = "[workload]\nname = \"hello\"\nchain = \"default\"\nenvironments = [\"staging\", \"production\"]\n\n[build]\nfetch = \"cargo fetch\"\ncommand = \"make\"\noutput = \"bin/hello\"\n\n[test]\nunit = \"make test\"\nacceptance = \"./at.sh\"\n\n[image]\nbase = \"debian\"\nentrypoint = [\"/app\"]\nport = 8080\n";

    fn mutations(text: &str) -> Vec<String> {
        let bytes = text.as_bytes();
        let mut out: Vec<String> = (0..=bytes.len())
            .filter(|&i| text.is_char_boundary(i))
            .map(|i| text[..i].to_owned())
            .collect();
        // A fixed xorshift sequence: deterministic, no randomness from outside.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut m = bytes.to_vec();
            let at = (x % m.len() as u64) as usize;
            m[at] = b"\"[]=\n#\\\x00\xff{}.,'"[(x >> 32) as usize % 14];
            out.push(String::from_utf8_lossy(&m).into_owned());
        }
        out
    }

    #[test]
    fn parsers_never_panic() {
        let mut errors = 0;
        for text in mutations(WORKLOAD)
            .iter()
            .chain(mutations(DEFAULT_CHAIN_TOML).iter())
        {
            for result in [
                parse_workload("cairn.toml", text).map(|_| ()),
                parse_chain("chain.toml", text).map(|_| ()),
            ] {
                if let Err(e) = result {
                    errors += 1;
                    assert!(e.line >= 1 && e.column >= 1);
                    assert!(!e.to_string().is_empty());
                }
            }
        }
        assert!(errors > 1_000, "the mutations should mostly be refused");
        assert!(parse_workload("cairn.toml", WORKLOAD).is_ok());
    }
}
