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

/// Most choices [`licence_choices`] expands an expression into.
pub const MAX_LICENCE_CHOICES: usize = 64;

/// The ways to satisfy an SPDX expression: each choice is the licences (sorted,
/// each `ID` or `ID WITH EXCEPTION`, as `spdx` writes them) that picking one
/// side of every `OR` needs together. `(A OR B) AND C` → `[[A, C], [B, C]]`.
/// `None` when the text is not an SPDX expression or expands to more than
/// [`MAX_LICENCE_CHOICES`] choices (a policy then treats it as unknown).
pub fn licence_choices(text: &str) -> Option<Vec<Vec<String>>> {
    let expr = spdx::Expression::parse(text).ok()?;
    let mut stack: Vec<Vec<Vec<String>>> = Vec::new();
    for node in expr.iter() {
        match node {
            spdx::expression::ExprNode::Req(r) => stack.push(vec![vec![r.req.to_string()]]),
            spdx::expression::ExprNode::Op(op) => {
                let right = stack.pop()?;
                let left = stack.pop()?;
                let combined = match op {
                    spdx::expression::Operator::Or => left.into_iter().chain(right).collect(),
                    spdx::expression::Operator::And => {
                        if left.len().saturating_mul(right.len()) > MAX_LICENCE_CHOICES {
                            return None;
                        }
                        let mut out = Vec::new();
                        for l in &left {
                            for r in &right {
                                out.push(l.iter().chain(r).cloned().collect());
                            }
                        }
                        out
                    }
                };
                if combined.len() > MAX_LICENCE_CHOICES {
                    return None;
                }
                stack.push(combined);
            }
        }
    }
    let mut choices = stack.pop()?;
    if !stack.is_empty() {
        return None;
    }
    for c in &mut choices {
        c.sort();
        c.dedup();
    }
    choices.sort();
    choices.dedup();
    Some(choices)
}

#[cfg(test)]
mod choices_tests {
    use super::licence_choices;

    #[test]
    fn expressions_expand_into_their_choices() {
        let c = |t: &str| licence_choices(t);
        let v = |x: &[&[&str]]| -> Option<Vec<Vec<String>>> {
            Some(
                x.iter()
                    .map(|c| c.iter().map(|s| (*s).to_owned()).collect())
                    .collect(),
            )
        };
        assert_eq!(c("MIT"), v(&[&["MIT"]]));
        assert_eq!(c("MIT OR Apache-2.0"), v(&[&["Apache-2.0"], &["MIT"]]));
        assert_eq!(
            c("(BSD-3-Clause OR GPL-2.0-only) AND Zlib AND MIT"),
            v(&[
                &["BSD-3-Clause", "MIT", "Zlib"],
                &["GPL-2.0-only", "MIT", "Zlib"]
            ])
        );
        assert_eq!(
            c("GPL-3.0-or-later AND (GPL-3.0-or-later WITH Bison-exception-2.2)"),
            v(&[&[
                "GPL-3.0-or-later",
                "GPL-3.0-or-later WITH Bison-exception-2.2"
            ]])
        );
        assert_eq!(c("not a licence ("), None);
        let huge = ["(MIT OR Apache-2.0 OR ISC)"; 3].join(" AND ");
        assert_eq!(
            c(&huge).map(|c| c.len()),
            Some(7),
            "27 choices, 7 distinct sets"
        );
        let huge = [
            "(MIT OR Apache-2.0 OR ISC)",
            "(Zlib OR 0BSD OR BSL-1.0)",
            "(MPL-2.0 OR CC0-1.0 OR Unlicense)",
            "(BSD-2-Clause OR BSD-3-Clause OR MIT-0)",
        ]
        .join(" AND ");
        assert_eq!(c(&huge), None, "too many choices is unknown, not a pass");
    }
}
