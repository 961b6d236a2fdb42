//! The organisation's licence policy (`allow` and `deny` lists of SPDX licences, in
//! TOML) evaluated over a component's licence expression with the `spdx` crate.
//!
//! An expression is allowed when some choice through it (an `OR` picks one side, an
//! `AND` needs both) uses only allowed licences; denied when every choice needs a
//! denied one. A `WITH` exception only adds permissions, so a licence is judged
//! by its base licence as well as by the exact `licence WITH exception` entry. An
//! unknown licence (a `LicenseRef-…`, text that is not SPDX) or a missing one is a
//! finding, never a pass. With an empty `allow` list, everything that is a known
//! SPDX licence and not denied is allowed.

use serde::Deserialize;
use spdx::{Expression, LicenseItem, LicenseReq, Licensee};

use crate::Licence;

/// The largest policy file accepted.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;

/// A parsed licence policy.
#[derive(Debug, Clone)]
pub struct LicencePolicy {
    allow: Vec<Licensee>,
    deny: Vec<Licensee>,
}

/// Why a policy file was refused, with the 1-based line and column it points at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct PolicyError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    allow: Vec<toml::Spanned<String>>,
    #[serde(default)]
    deny: Vec<toml::Spanned<String>>,
}

/// The verdict on one component's licence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenceVerdict {
    /// Satisfiable with allowed licences.
    Allowed,
    /// Every choice needs one of these denied licences.
    Denied { denied: Vec<String> },
    /// No licence is stated, or it is not a known SPDX licence.
    Unknown { reason: String },
    /// Known licences, none denied outright, but no choice is on the allow list.
    NotAllowed,
}

impl LicenceVerdict {
    /// Whether this verdict is a finding (anything but `Allowed`).
    pub fn is_finding(&self) -> bool {
        !matches!(self, LicenceVerdict::Allowed)
    }

    /// The finding's kind as printed: `denied-licence`, `unknown-licence`,
    /// `licence-not-allowed`; `allowed` for a pass.
    pub fn kind(&self) -> &'static str {
        match self {
            LicenceVerdict::Allowed => "allowed",
            LicenceVerdict::Denied { .. } => "denied-licence",
            LicenceVerdict::Unknown { .. } => "unknown-licence",
            LicenceVerdict::NotAllowed => "licence-not-allowed",
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = offset
        - before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, column)
}

fn parse_list(
    text: &str,
    list: &[toml::Spanned<String>],
    which: &str,
) -> Result<Vec<Licensee>, PolicyError> {
    list.iter()
        .map(|entry| {
            Licensee::parse(entry.get_ref().trim()).map_err(|e| {
                let (line, column) = line_col(text, entry.span().start);
                PolicyError {
                    line,
                    column,
                    message: format!(
                        "`{}` in `{which}` is not an SPDX licence identifier: {e}",
                        entry.get_ref()
                    ),
                }
            })
        })
        .collect()
}

impl LicencePolicy {
    /// Parses a policy file's text. Unknown keys and entries that are not SPDX
    /// licence identifiers are errors pointing at their line and column.
    pub fn parse(text: &str) -> Result<LicencePolicy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError {
                line: 1,
                column: 1,
                message: format!(
                    "policy is {} bytes, more than the limit of {MAX_POLICY_BYTES}",
                    text.len()
                ),
            });
        }
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            PolicyError {
                line,
                column,
                message: e.message().to_owned(),
            }
        })?;
        Ok(LicencePolicy {
            allow: parse_list(text, &raw.allow, "allow")?,
            deny: parse_list(text, &raw.deny, "deny")?,
        })
    }

    fn hits(list: &[Licensee], req: &LicenseReq) -> bool {
        let base = LicenseReq {
            license: req.license.clone(),
            addition: None,
        };
        list.iter().any(|l| l.satisfies(req) || l.satisfies(&base))
    }

    fn denied(&self, req: &LicenseReq) -> bool {
        Self::hits(&self.deny, req)
    }

    fn allowed(&self, req: &LicenseReq) -> bool {
        if self.denied(req) || matches!(req.license, LicenseItem::Other(_)) {
            return false;
        }
        self.allow.is_empty() || Self::hits(&self.allow, req)
    }

    /// Evaluates a component's licence.
    pub fn evaluate(&self, licence: &Licence) -> LicenceVerdict {
        let text = match licence {
            Licence::NotGiven => {
                return LicenceVerdict::Unknown {
                    reason: "no licence is stated".to_owned(),
                };
            }
            Licence::Unknown(raw) => {
                return LicenceVerdict::Unknown {
                    reason: format!("`{raw}` is not an SPDX licence expression"),
                };
            }
            Licence::Expression(e) => e,
        };
        self.evaluate_expression(text)
    }

    /// Evaluates an SPDX expression given as text.
    pub fn evaluate_expression(&self, text: &str) -> LicenceVerdict {
        let expr = match Expression::parse(text) {
            Ok(e) => e,
            Err(e) => {
                return LicenceVerdict::Unknown {
                    reason: format!("`{text}` is not an SPDX licence expression: {e}"),
                };
            }
        };
        if expr.evaluate(|r| self.allowed(r)) {
            return LicenceVerdict::Allowed;
        }
        if !expr.evaluate(|r| !self.denied(r)) {
            let mut denied: Vec<String> = expr
                .requirements()
                .filter(|r| self.denied(&r.req))
                .map(|r| r.req.to_string())
                .collect();
            denied.sort();
            denied.dedup();
            return LicenceVerdict::Denied { denied };
        }
        let unknown: Vec<String> = expr
            .requirements()
            .filter(|r| matches!(r.req.license, LicenseItem::Other(_)))
            .map(|r| r.req.to_string())
            .collect();
        if !unknown.is_empty() {
            return LicenceVerdict::Unknown {
                reason: format!("not an SPDX list licence: {}", unknown.join(", ")),
            };
        }
        LicenceVerdict::NotAllowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_licence;

    const POLICY: &str = "allow = [\"MIT\", \"Apache-2.0\", \"BSD-3-Clause\"]\ndeny = [\"GPL-3.0-only\", \"AGPL-3.0-only\"]\n";

    fn verdict(expr: &str) -> LicenceVerdict {
        LicencePolicy::parse(POLICY)
            .unwrap()
            .evaluate(&parse_licence(expr))
    }

    #[test]
    fn table_of_expressions() {
        let cases: &[(&str, &str)] = &[
            ("MIT", "allowed"),
            ("Apache-2.0", "allowed"),
            ("MIT OR GPL-3.0-only", "allowed"),
            ("GPL-3.0-only OR MIT", "allowed"),
            ("MIT AND Apache-2.0", "allowed"),
            ("MIT AND GPL-3.0-only", "denied-licence"),
            ("GPL-3.0-only", "denied-licence"),
            ("GPL-3.0-only OR AGPL-3.0-only", "denied-licence"),
            (
                "GPL-3.0-only WITH Classpath-exception-2.0",
                "denied-licence",
            ),
            ("Apache-2.0 WITH LLVM-exception", "allowed"),
            ("(MIT OR Apache-2.0) AND BSD-3-Clause", "allowed"),
            ("LicenseRef-x", "unknown-licence"),
            ("MIT OR LicenseRef-x", "allowed"),
            ("MPL-2.0", "licence-not-allowed"),
            ("MPL-2.0 OR GPL-3.0-only", "licence-not-allowed"),
            ("", "unknown-licence"),
            ("NOASSERTION", "unknown-licence"),
            ("not a licence at all ((", "unknown-licence"),
        ];
        for (expr, want) in cases {
            assert_eq!(verdict(expr).kind(), *want, "{expr}");
        }
    }

    #[test]
    fn denied_names_the_denied_licence() {
        assert_eq!(
            verdict("MIT AND GPL-3.0-only"),
            LicenceVerdict::Denied {
                denied: vec!["GPL-3.0-only".to_owned()]
            }
        );
    }

    #[test]
    fn missing_licence_is_a_finding() {
        let p = LicencePolicy::parse(POLICY).unwrap();
        let v = p.evaluate(&Licence::NotGiven);
        assert!(v.is_finding());
        assert_eq!(v.kind(), "unknown-licence");
    }

    #[test]
    fn deny_only_policy_allows_other_spdx_licences() {
        let p = LicencePolicy::parse("deny = [\"GPL-3.0-only\"]\n").unwrap();
        assert_eq!(p.evaluate_expression("MPL-2.0"), LicenceVerdict::Allowed);
        assert_eq!(
            p.evaluate_expression("GPL-3.0-only").kind(),
            "denied-licence"
        );
        assert_eq!(
            p.evaluate_expression("LicenseRef-x").kind(),
            "unknown-licence"
        );
    }

    #[test]
    fn unknown_key_is_an_error_with_line_and_column() {
        let e = LicencePolicy::parse("allow = [\"MIT\"]\n  alow = [\"X\"]\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 3), "{e}");
        assert!(e.message.contains("alow"), "{e}");
    }

    #[test]
    fn entry_that_is_not_spdx_is_an_error_with_line_and_column() {
        let e = LicencePolicy::parse("allow = [\"MIT\",\n \"Nonsense-9\"]\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("Nonsense-9"), "{e}");
    }

    #[test]
    fn wrong_type_is_an_error() {
        let e = LicencePolicy::parse("allow = \"MIT\"\n").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
    }
}
