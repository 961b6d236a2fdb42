//! `[policy.params]` in org.toml: the organisation's values for the default
//! policy's parameters (licences, severity thresholds, whether unfixed or
//! `unimportant` findings block), validated here with errors that name the key
//! and point at it, then handed to every gate as `data.cairn.params`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::diagnostic::ConfigError;

/// The parameters the organisation set; `None` keeps the policy's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyParams {
    /// SPDX licences allowed for application dependencies.
    pub allowed_licences: Option<Vec<String>>,
    /// Licences no component may need.
    pub denied_licences: Option<Vec<String>>,
    /// Licences allowed for an OS distribution's packages.
    pub os_allowed_licences: Option<Vec<String>>,
    /// Whether an OS package with no SPDX licence in its copyright file blocks.
    pub os_unknown_licence_blocks: Option<bool>,
    /// Lowest blocking severity per environment (`"*"`: any other).
    pub severity_threshold: Option<BTreeMap<String, String>>,
    /// Whether an OS package's finding with no fix yet blocks, per environment.
    pub block_unfixed: Option<BTreeMap<String, bool>>,
    /// Whether findings the distribution rates `unimportant` count.
    pub count_unimportant: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    params: Option<RawParams>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParams {
    allowed_licences: Option<Spanned<Vec<Spanned<String>>>>,
    denied_licences: Option<Spanned<Vec<Spanned<String>>>>,
    os_allowed_licences: Option<Spanned<Vec<Spanned<String>>>>,
    os_unknown_licence_blocks: Option<bool>,
    severity_threshold: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    block_unfixed: Option<Spanned<BTreeMap<String, bool>>>,
    count_unimportant: Option<bool>,
}

/// Most licences one list may hold.
const MAX_LICENCES: usize = 1000;
const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// An SPDX licence id (`GPL-2.0-or-later`, `LicenseRef-x`), optionally `WITH`
/// an exception id.
fn is_licence_id(text: &str) -> bool {
    let id = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
    };
    match text.split_once(" WITH ") {
        Some((base, exception)) => id(base) && id(exception),
        None => id(text),
    }
}

pub(super) fn validate(
    file: &str,
    text: &str,
    raw: Option<RawPolicy>,
    environments: &[String],
) -> Result<PolicyParams, ConfigError> {
    let Some(raw) = raw.and_then(|p| p.params) else {
        return Ok(PolicyParams::default());
    };
    let err = |span: std::ops::Range<usize>, msg: String, help: &str| {
        ConfigError::at(file, text, Some(span), msg, Some(help.to_owned()))
    };
    let licences = |key: &str,
                    list: Option<Spanned<Vec<Spanned<String>>>>|
     -> Result<Option<Vec<String>>, ConfigError> {
        let Some(list) = list else { return Ok(None) };
        if list.get_ref().len() > MAX_LICENCES {
            return Err(err(
                list.span(),
                format!("[policy.params] {key} lists more than {MAX_LICENCES} licences"),
                "list SPDX identifiers once each",
            ));
        }
        let mut out = Vec::new();
        for l in list.into_inner() {
            if !is_licence_id(l.get_ref()) {
                return Err(err(
                    l.span(),
                    format!(
                        "[policy.params] {key}: `{}` is not an SPDX licence identifier",
                        l.get_ref()
                    ),
                    "e.g. \"GPL-3.0-only\", \"Apache-2.0\", \"GPL-2.0-or-later WITH Classpath-exception-2.0\" (see https://spdx.org/licenses/)",
                ));
            }
            out.push(l.into_inner());
        }
        Ok(Some(out))
    };
    let check_env = |key: &str, env: &str, span: std::ops::Range<usize>| {
        if env == "*" || environments.iter().any(|e| e == env) {
            Ok(())
        } else {
            Err(err(
                span,
                format!(
                    "[policy.params] {key}: `{env}` is not an environment of the promotion path ({}) nor \"*\"",
                    environments.join(" → ")
                ),
                "name environments of [promotion] path, or \"*\" for any other",
            ))
        }
    };
    let allowed_licences = licences("allowed_licences", raw.allowed_licences)?;
    let denied_span = raw.denied_licences.as_ref().map(Spanned::span);
    let denied_licences = licences("denied_licences", raw.denied_licences)?;
    let os_allowed_licences = licences("os_allowed_licences", raw.os_allowed_licences)?;
    // A licence both allowed and denied is a contradiction, not a choice.
    if let (Some(denied), Some(span)) = (&denied_licences, denied_span) {
        for d in denied {
            let both = allowed_licences
                .iter()
                .chain(&os_allowed_licences)
                .flatten();
            if let Some(a) = both.into_iter().find(|a| *a == d) {
                return Err(err(
                    span,
                    format!("[policy.params] denied_licences: `{a}` is also allowed"),
                    "remove it from allowed_licences / os_allowed_licences, or from denied_licences",
                ));
            }
        }
    }
    let severity_threshold = match raw.severity_threshold {
        None => None,
        Some(map) => {
            let span = map.span();
            let mut out = BTreeMap::new();
            for (env, severity) in map.into_inner() {
                check_env("severity_threshold", &env, span.clone())?;
                if !SEVERITIES.contains(&severity.get_ref().as_str()) {
                    return Err(err(
                        severity.span(),
                        format!(
                            "[policy.params] severity_threshold.{env}: unknown severity `{}`",
                            severity.get_ref()
                        ),
                        "one of low, medium, high, critical",
                    ));
                }
                out.insert(env, severity.into_inner());
            }
            Some(out)
        }
    };
    let block_unfixed = match raw.block_unfixed {
        None => None,
        Some(map) => {
            let span = map.span();
            let map = map.into_inner();
            for env in map.keys() {
                check_env("block_unfixed", env, span.clone())?;
            }
            Some(map)
        }
    };
    Ok(PolicyParams {
        allowed_licences,
        denied_licences,
        os_allowed_licences,
        os_unknown_licence_blocks: raw.os_unknown_licence_blocks,
        severity_threshold,
        block_unfixed,
        count_unimportant: raw.count_unimportant,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::parse_org;

    #[test]
    fn policy_params_are_read_and_checked_naming_the_key() {
        let org = parse_org(
            "org.toml",
            "[policy.params]\ndenied_licences = [\"GPL-3.0-only\"]\nblock_unfixed = { production = true }\nseverity_threshold = { \"*\" = \"medium\" }\ncount_unimportant = true\n",
        )
        .unwrap();
        let p = &org.policy_params;
        assert_eq!(
            p.denied_licences.as_deref(),
            Some(&["GPL-3.0-only".to_owned()][..])
        );
        assert!(p.block_unfixed.as_ref().unwrap()["production"]);
        assert_eq!(p.severity_threshold.as_ref().unwrap()["*"], "medium");
        assert_eq!(p.count_unimportant, Some(true));
        assert_eq!(p.allowed_licences, None);
        for (bad, want) in [
            (
                "[policy.params]\nblock_unfixd = true\n",
                "unknown field `block_unfixd`",
            ),
            (
                "[policy.params]\ndenied_licences = [\"GPL 3\"]\n",
                "denied_licences: `GPL 3` is not an SPDX licence identifier",
            ),
            (
                "[policy.params]\nseverity_threshold = { production = \"huge\" }\n",
                "severity_threshold.production: unknown severity `huge`",
            ),
            (
                "[policy.params]\nblock_unfixed = { prod = true }\n",
                "block_unfixed: `prod` is not an environment",
            ),
            (
                "[policy.params]\nblock_unfixed = { production = \"yes\" }\n",
                "invalid type",
            ),
            (
                "[policy.params]\nallowed_licences = [\"MIT\"]\ndenied_licences = [\"MIT\"]\n",
                "denied_licences: `MIT` is also allowed",
            ),
            ("[policy]\nparam = {}\n", "unknown field `param`"),
        ] {
            let e = parse_org("org.toml", bad).unwrap_err();
            assert!(e.to_string().contains(want), "{bad}: {e}");
            assert!(e.line >= 1, "{bad}: located");
        }
    }
}
