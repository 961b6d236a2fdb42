//! The crate's one error type: every variant names the registry, the repository
//! and the operation, and says what to do. Secrets never appear in it.

use std::fmt;

/// Where an error happened: registry, repository and operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// `host[:port]` of the registry.
    pub registry: String,
    /// The repository, or empty for registry-wide calls.
    pub repository: String,
    /// What cairn was doing, e.g. `push blob`.
    pub operation: &'static str,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.repository.is_empty() {
            write!(f, "registry {}: {}", self.registry, self.operation)
        } else {
            write!(
                f,
                "registry {}, repository `{}`: {}",
                self.registry, self.repository, self.operation
            )
        }
    }
}

/// The `errors` array of a distribution-spec error body, kept short.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistryErrors(pub Vec<(String, String)>);

impl fmt::Display for RegistryErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (code, message)) in self.0.iter().enumerate() {
            f.write_str(if i == 0 { ", registry says " } else { "; " })?;
            write!(f, "{code}")?;
            if !message.is_empty() {
                write!(f, ": {message}")?;
            }
        }
        Ok(())
    }
}

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry (or its token service) refused the credentials.
    #[error(
        "{context}: refused (HTTP {status}{errors}); check the user name and password (or token) configured for this registry and that it may access this repository"
    )]
    Unauthorized {
        context: Context,
        status: u16,
        errors: RegistryErrors,
    },
    /// The repository, blob or manifest does not exist.
    #[error(
        "{context}: {what} not found (HTTP 404{errors}); check the repository name and the tag or digest"
    )]
    NotFound {
        context: Context,
        what: String,
        errors: RegistryErrors,
    },
    /// Any other unexpected status.
    #[error("{context}: unexpected HTTP {status}{errors}; {hint}")]
    Status {
        context: Context,
        status: u16,
        errors: RegistryErrors,
        hint: &'static str,
    },
    /// HTTPS was spoken to a registry that answers plain HTTP.
    #[error(
        "{context}: the registry answers plain HTTP, not HTTPS; {}",
        if *loopback {
            "it is on this machine: say so with --plain-http (plain HTTP is only ever used to a loopback address)"
        } else {
            "cairn speaks only HTTPS to another machine: serve the registry over TLS (a private CA can be given)"
        }
    )]
    PlainHttp { context: Context, loopback: bool },
    /// The registry could not be reached or the connection broke.
    #[error(
        "{context}: could not talk to the registry; check the address, that it is running and the network"
    )]
    Transport {
        context: Context,
        #[source]
        source: Box<ureq::Error>,
    },
    /// Content did not match the digest it was asked for: nothing was kept.
    #[error(
        "{context}: content does not match its digest (expected {expected}, got {actual}); the registry or the data is corrupt, nothing was kept"
    )]
    DigestMismatch {
        context: Context,
        expected: String,
        actual: String,
    },
    /// A response was larger than cairn reads.
    #[error("{context}: the response is larger than the {limit}-byte limit; refusing to read it")]
    TooLarge { context: Context, limit: u64 },
    /// The registry answered something cairn cannot use.
    #[error("{context}: invalid response from the registry: {reason}")]
    InvalidResponse { context: Context, reason: String },
    /// A JSON document from the registry could not be parsed.
    #[error("{context}: could not parse the {what} the registry returned")]
    Json {
        context: Context,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// Reading the content to upload or writing the content downloaded failed.
    #[error("{context}: I/O error on the local side")]
    Io {
        context: Context,
        #[source]
        source: std::io::Error,
    },
    /// The local blob store failed.
    #[error("{context}: the local blob store failed for {digest}")]
    BlobStore {
        context: Context,
        digest: String,
        #[source]
        source: crate::BlobStoreError,
    },
    /// An index had no image for the platform cairn runs.
    #[error("{context}: the index has no linux/amd64 image; pick the image by its digest")]
    NoPlatform { context: Context },
    /// A digest string is malformed or uses an algorithm cairn does not verify.
    #[error("invalid digest `{value}`: expected sha256:<64 lowercase hex>")]
    InvalidDigest { value: String },
    /// A repository name, tag or host is malformed.
    #[error("invalid {what} `{value}`: {reason}")]
    InvalidName {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
}
