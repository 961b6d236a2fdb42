//! The one error type of this crate. `Err` means "could not produce or check the
//! evidence"; every variant names what was being handled.

/// Why evidence could not be produced, read or verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    #[error("the {algorithm} key was rejected")]
    KeyRejected {
        algorithm: &'static str,
        #[source]
        source: aws_lc_rs::error::KeyRejected,
    },
    #[error("the private key is neither an Ed25519 nor an ECDSA P-256 PKCS#8 key")]
    UnsupportedPrivateKey,
    #[error(
        "the public key is neither an Ed25519 nor an ECDSA P-256 (uncompressed) SubjectPublicKeyInfo"
    )]
    UnsupportedPublicKey,
    #[error("unknown key algorithm `{0}` (expected `ed25519` or `p256`)")]
    UnknownAlgorithm(String),
    #[error("AWS-LC failed to {operation}")]
    Crypto { operation: &'static str },
    #[error("not a PEM `{label}` block: {reason}")]
    Pem {
        label: &'static str,
        reason: &'static str,
    },
    #[error("invalid base64 in {field}")]
    Base64 {
        field: &'static str,
        #[source]
        source: base64::DecodeError,
    },
    #[error(transparent)]
    Digest(#[from] cairn_model::DigestError),
    #[error("{what} is {size} bytes; the limit is {limit}")]
    TooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("malformed {what} JSON")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid {what}: {reason}")]
    Invalid {
        what: &'static str,
        reason: &'static str,
    },
    #[error("{what} is `{found}`, expected `{expected}`")]
    Unexpected {
        what: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("time {unix_ms} ms is outside the years 0001 to 9999")]
    TimeOutOfRange { unix_ms: i64 },
    /// A key held outside this process (a PKCS#11 token) failed to sign; the
    /// message names the token and key, never a PIN.
    #[error("{0}")]
    Token(String),
    #[error("no signature verifies with key {keyid}")]
    NoValidSignature { keyid: String },
}

impl EvidenceError {
    pub(crate) fn json(what: &'static str) -> impl FnOnce(serde_json::Error) -> Self {
        move |source| EvidenceError::Json { what, source }
    }
}
