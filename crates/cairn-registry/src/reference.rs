//! Validation of repository names, tags and references (distribution-spec
//! "Pulling manifests": the `<name>` and `<reference>` grammars), so nothing
//! unvalidated is ever spliced into a URL path.

use crate::{Digest, Error};

/// A tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
    pub(crate) fn parse(value: &str) -> Result<Self, Error> {
        if value.contains(':') {
            return Ok(Reference::Digest(Digest::parse(value)?));
        }
        check_tag(value)?;
        Ok(Reference::Tag(value.to_owned()))
    }

    pub(crate) fn text(&self) -> String {
        match self {
            Reference::Tag(t) => t.clone(),
            Reference::Digest(d) => d.to_string(),
        }
    }
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub(crate) fn check_tag(tag: &str) -> Result<(), Error> {
    let bad = |reason| Error::InvalidName {
        what: "tag",
        value: tag.chars().take(140).collect(),
        reason,
    };
    let mut bytes = tag.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphanumeric() || b == b'_' => {}
        _ => return Err(bad("a tag starts with a letter, digit or underscore")),
    }
    if tag.len() > 128 {
        return Err(bad("a tag is at most 128 characters"));
    }
    if !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err(bad("a tag holds only letters, digits, `.`, `_` and `-`"));
    }
    Ok(())
}

/// Path components of lowercase letters and digits, separated by `.`, `_`, `__`
/// or runs of `-`, joined by `/`.
pub(crate) fn check_repository(name: &str) -> Result<(), Error> {
    let bad = |reason| Error::InvalidName {
        what: "repository name",
        value: name.chars().take(300).collect(),
        reason,
    };
    if name.is_empty() || name.len() > 255 {
        return Err(bad("a repository name has 1 to 255 characters"));
    }
    for component in name.split('/') {
        let b = component.as_bytes();
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return Err(bad(
                "each `/`-separated part starts and ends with a lowercase letter or digit",
            ));
        }
        let mut prev_sep: Option<u8> = None;
        let mut run = 0;
        for &c in b {
            if alnum(c) {
                prev_sep = None;
                run = 0;
            } else if matches!(c, b'.' | b'_' | b'-') {
                run += 1;
                let ok = match (prev_sep, c) {
                    (None, _) => true,
                    (Some(b'-'), b'-') => true,
                    (Some(b'_'), b'_') => run == 2,
                    _ => false,
                };
                if !ok {
                    return Err(bad("separators are `.`, `_`, `__` or runs of `-`"));
                }
                prev_sep = Some(c);
            } else {
                return Err(bad(
                    "a repository name holds only lowercase letters, digits, `.`, `_`, `-` and `/`",
                ));
            }
        }
    }
    Ok(())
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
pub(crate) fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories() {
        for good in ["a", "library/debian", "a.b_c__d---e/f0", "cairn/app-1"] {
            assert!(check_repository(good).is_ok(), "{good}");
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "a/../b", "-a", "a-", "a___b", "a._b", "a?b", "a b",
            "a%2fb",
        ] {
            assert!(check_repository(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags() {
        for good in ["latest", "v1.2.3", "_x", "sha256-abc.att"] {
            assert!(check_tag(good).is_ok(), "{good}");
        }
        for bad in ["", ".x", "-x", "a/b", "a?b", &"x".repeat(129)] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_encoding() {
        assert_eq!(
            encode_query("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
