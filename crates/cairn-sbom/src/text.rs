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
pub(crate) fn token_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 512 && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}
