//! Licences as files state them, parsed into SPDX expressions with the `spdx` crate.
//! A licence that does not parse is kept as `Unknown` with its text, ready to become
//! a finding; a missing one is `NotGiven`. Neither is ever treated as a pass.

/// A component's declared licence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Licence {
    /// A valid SPDX licence expression, in canonical form (`MIT OR Apache-2.0`).
    Expression(String),
    /// The file states a licence that is not a valid SPDX expression; the text is kept.
    Unknown(String),
    /// The file does not state a licence.
    NotGiven,
}

impl Licence {
    /// The canonical SPDX expression, if there is one.
    pub fn expression(&self) -> Option<&str> {
        match self {
            Licence::Expression(e) => Some(e),
            _ => None,
        }
    }

    /// Unknown and missing licences are findings for the licence policy.
    pub fn is_finding(&self) -> bool {
        !matches!(self, Licence::Expression(_))
    }
}

/// Parses a licence as a file states it. Accepts the SPDX 2.3 expression syntax and,
/// as the `spdx` crate's lax mode does, `/` for `OR` and well-known imprecise names
/// (`Apache 2.0`, `GPLv2+`); the result is re-parsed strictly in canonical form.
pub fn parse_licence(raw: &str) -> Licence {
    let raw = raw.trim();
    if raw.is_empty() || raw.eq_ignore_ascii_case("NOASSERTION") || raw.eq_ignore_ascii_case("NONE")
    {
        return Licence::NotGiven;
    }
    let canonical = match spdx::Expression::canonicalize(raw) {
        Ok(Some(c)) => c,
        Ok(None) => raw.to_string(),
        Err(_) => return Licence::Unknown(raw.to_string()),
    };
    match spdx::Expression::parse(&canonical) {
        Ok(_) => Licence::Expression(canonical),
        Err(_) => Licence::Unknown(raw.to_string()),
    }
}

/// Several licences a file lists side by side (Composer's array, which means a choice).
pub(crate) fn parse_any_of(list: &[String]) -> Licence {
    match list {
        [] => Licence::NotGiven,
        [one] => parse_licence(one),
        many => {
            let parts: Vec<Licence> = many.iter().map(|l| parse_licence(l)).collect();
            if parts.iter().all(|p| p.expression().is_some()) {
                let joined = parts
                    .iter()
                    .filter_map(|p| p.expression())
                    .map(|e| {
                        if e.contains(' ') {
                            format!("({e})")
                        } else {
                            e.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" OR ");
                parse_licence(&joined)
            } else {
                Licence::Unknown(many.join(" OR "))
            }
        }
    }
}
