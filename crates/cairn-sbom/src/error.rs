//! Errors: why one file could not be read, and why a document could not be written.

use std::str::Utf8Error;

/// Why one file did not yield components. The scan reports it beside the others.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("file is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("file is not UTF-8")]
    NotUtf8(#[source] Utf8Error),
    #[error("invalid JSON")]
    Json(#[source] serde_json::Error),
    #[error("JSON nesting deeper than {limit}")]
    TooDeep { limit: usize },
    #[error("invalid TOML")]
    Toml(#[source] toml::de::Error),
    #[error("invalid XML")]
    Xml(#[source] roxmltree::Error),
    #[error("more than {limit} components")]
    TooManyComponents { limit: usize },
    #[error("unsupported format version {found} (supported: {supported})")]
    UnsupportedVersion {
        found: String,
        supported: &'static str,
    },
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("{0}")]
    Structure(String),
    #[error("the file source could not read it")]
    Unreadable,
}

impl ParseError {
    pub(crate) fn line(line: usize, message: impl Into<String>) -> Self {
        ParseError::Line {
            line,
            message: message.into(),
        }
    }
    pub(crate) fn structure(message: impl Into<String>) -> Self {
        ParseError::Structure(message.into())
    }
}

/// Why a document could not be written, or a CycloneDX document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("document is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("document is not JSON")]
    Json(#[source] serde_json::Error),
    #[error("JSON nesting deeper than {limit}")]
    TooDeep { limit: usize },
    #[error("CycloneDX {at}: {message}")]
    Invalid { at: String, message: String },
    #[error("timestamp {0:?} is not RFC 3339 UTC (YYYY-MM-DDTHH:MM:SSZ)")]
    Timestamp(String),
    #[error("document namespace {0:?} must be an absolute URI without '#'")]
    Namespace(String),
    #[error("subject name is empty")]
    EmptySubject,
    #[error("could not serialise the document")]
    Serialise(#[source] serde_json::Error),
}
