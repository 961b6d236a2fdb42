//! Configuration: the workload's `cairn.toml` and the organisation's chain
//! (`chains/<name>.toml`). Each is parsed strictly (unknown keys, wrong types and
//! missing fields are errors), then validated into a separate type; every error
//! points at the file, line and column and says what is allowed.

mod chain;
mod diagnostic;
mod workload;

pub use chain::{
    Chain, ChainStage, DEFAULT_CHAIN_NAME, DEFAULT_CHAIN_TOML, SandboxPolicy, Tool, parse_chain,
};
pub use diagnostic::ConfigError;
pub use workload::{ImageConfig, WORKLOAD_FILE, Workload, parse_workload, render_workload};

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
