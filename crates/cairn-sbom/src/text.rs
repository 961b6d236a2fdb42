//! Shared input guards: size caps, UTF-8, JSON depth.

use crate::error::ParseError;
use crate::{MAX_COMPONENTS_PER_FILE, MAX_FILE_BYTES, MAX_JSON_DEPTH};

/// Bytes → text, within the size cap. A leading UTF-8 BOM is dropped.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, ParseError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ParseError::TooLarge {
            size: bytes.len(),
            limit: MAX_FILE_BYTES,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(ParseError::NotUtf8)?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// Parses JSON after checking its nesting depth, so a deep file cannot exhaust the stack.
pub(crate) fn json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ParseError> {
    let text = utf8(bytes)?;
    check_json_depth(text)?;
    serde_json::from_str(text).map_err(ParseError::Json)
}

fn check_json_depth(text: &str) -> Result<(), ParseError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(ParseError::TooDeep {
                        limit: MAX_JSON_DEPTH,
                    });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

pub(crate) fn toml<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ParseError> {
    let text = utf8(bytes)?;
    toml::from_str(text).map_err(ParseError::Toml)
}

/// Fails once a file yields more components than the cap.
pub(crate) fn check_count(n: usize) -> Result<(), ParseError> {
    if n > MAX_COMPONENTS_PER_FILE {
        return Err(ParseError::TooManyComponents {
            limit: MAX_COMPONENTS_PER_FILE,
        });
    }
    Ok(())
}

/// A name or version must be non-empty, printable, with no whitespace or control characters.
/// Printable ASCII other than the space (what names and versions nearly always
/// are) holds neither, and is checked first, over the whole text without
/// stopping early (the compiler tests 16 bytes at a time), before decoding
/// characters.
pub(crate) fn token_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 512
        && (s.bytes().fold(true, |ok, b| ok & (0x21..0x7f).contains(&b))
            || !s.chars().any(|c| c.is_whitespace() || c.is_control()))
}

#[cfg(test)]
mod tests {
    /// The ASCII fast path gives the answer the character test gives, for every
    /// one-byte character alone and inside a token, and for characters beyond
    /// ASCII that are whitespace, control or neither.
    #[test]
    fn token_ok_agrees_with_the_character_test() {
        let slow = |s: &str| {
            !s.is_empty()
                && s.len() <= 512
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        };
        let mut cases: Vec<String> = (0u8..0x80)
            .flat_map(|b| {
                let c = char::from(b);
                [c.to_string(), format!("a{c}1.0")]
            })
            .collect();
        for c in [
            '\u{85}', '\u{a0}', '\u{9f}', '\u{2028}', '\u{3000}', 'é', '\u{feff}',
        ] {
            cases.push(format!("x{c}y"));
        }
        cases.push(String::new());
        cases.push("a".repeat(512));
        cases.push("a".repeat(513));
        for s in &cases {
            assert_eq!(super::token_ok(s), slow(s), "{s:?}");
        }
        assert!(!super::token_ok("a b") && super::token_ok("serde_json-1.0"));
    }
}
