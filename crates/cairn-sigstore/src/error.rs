//! What did not check: one variant per verification step, each with a stable
//! name (`check()`) the CLI prints and `--json` reports.

/// Why a bundle was rejected. Every variant names the step that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("{what} is {size} bytes, over the {max}-byte limit")]
    TooLarge {
        what: &'static str,
        size: usize,
        max: usize,
    },
    #[error("{what} is not valid JSON of the expected shape")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what} is not valid base64")]
    Base64 {
        what: &'static str,
        #[source]
        source: base64::DecodeError,
    },
    #[error("{what} is not valid DER")]
    Der { what: &'static str },
    #[error("{what} is not a valid X.509 structure")]
    X509 {
        what: &'static str,
        #[source]
        source: der::Error,
    },
    #[error("the bundle is malformed: {what}")]
    Bundle { what: &'static str },
    #[error("unsupported bundle media type `{0}`")]
    MediaType(String),
    #[error("the trusted root is unusable: {what}")]
    TrustedRoot { what: &'static str },
    #[error("unsupported key or algorithm: {what}")]
    Unsupported { what: &'static str },
    #[error("the policy does not fit the bundle: {what}")]
    Policy { what: &'static str },
    #[error("certificate chain: {what}")]
    Chain { what: &'static str },
    #[error("signed certificate timestamp: {what}")]
    Sct { what: &'static str },
    #[error(
        "the certificate identity does not match: expected `{expected}`, the certificate has {found:?}"
    )]
    Identity {
        expected: String,
        found: Vec<String>,
    },
    #[error("the OIDC issuer does not match: expected `{expected}`, the certificate has {found:?}")]
    Issuer {
        expected: String,
        found: Option<String>,
    },
    #[error("transparency log entry {entry}: the entry's body does not match the bundle: {what}")]
    TlogBody { entry: usize, what: &'static str },
    #[error("transparency log entry {entry}: {what}")]
    TlogEntry { entry: usize, what: &'static str },
    #[error(
        "transparency log entry {entry}: the signed entry timestamp (inclusion promise) does not verify"
    )]
    Set { entry: usize },
    #[error("transparency log entry {entry}: inclusion proof: {what}")]
    InclusionProof { entry: usize, what: &'static str },
    #[error("transparency log entry {entry}: checkpoint: {what}")]
    Checkpoint { entry: usize, what: &'static str },
    #[error("transparency log entry {entry}: integrated time {integrated} is after now ({now})")]
    IntegratedTimeInFuture {
        entry: usize,
        integrated: i64,
        now: i64,
    },
    #[error("RFC 3161 timestamp {index}: {what}")]
    Timestamp { index: usize, what: &'static str },
    #[error("no verified time: {what}")]
    NoTime { what: &'static str },
    #[error("the signing certificate is not valid at {time} (valid {not_before}..={not_after})")]
    CertificateValidity {
        time: i64,
        not_before: i64,
        not_after: i64,
    },
    #[error("the artifact's digest does not match the bundle")]
    Digest,
    #[error("the signature does not verify: {what}")]
    Signature { what: &'static str },
    #[error("DSSE: {what}")]
    Dsse { what: &'static str },
    #[error("this key signs the artifact itself, not its digest: pass the artifact's bytes")]
    NeedsArtifactBytes,
}

impl VerifyError {
    /// A stable, short name of the check that failed.
    pub fn check(&self) -> &'static str {
        match self {
            VerifyError::TooLarge { .. }
            | VerifyError::Json { .. }
            | VerifyError::Base64 { .. }
            | VerifyError::Der { .. }
            | VerifyError::X509 { .. }
            | VerifyError::Bundle { .. }
            | VerifyError::MediaType(_) => "bundle-format",
            VerifyError::TrustedRoot { .. } => "trusted-root",
            VerifyError::Unsupported { .. } => "unsupported",
            VerifyError::Policy { .. } => "policy",
            VerifyError::Chain { .. } => "chain",
            VerifyError::Sct { .. } => "sct",
            VerifyError::Identity { .. } => "identity",
            VerifyError::Issuer { .. } => "issuer",
            VerifyError::TlogBody { .. } => "tlog-body",
            VerifyError::TlogEntry { .. } => "tlog-entry",
            VerifyError::Set { .. } => "set",
            VerifyError::InclusionProof { .. } => "inclusion-proof",
            VerifyError::Checkpoint { .. } => "checkpoint",
            VerifyError::IntegratedTimeInFuture { .. } => "integrated-time",
            VerifyError::Timestamp { .. } => "timestamp",
            VerifyError::NoTime { .. } => "time",
            VerifyError::CertificateValidity { .. } => "certificate-validity",
            VerifyError::Digest => "digest",
            VerifyError::Signature { .. } => "signature",
            VerifyError::Dsse { .. } => "dsse",
            VerifyError::NeedsArtifactBytes => "artifact-bytes",
        }
    }

    /// True when the input could not even be read (as opposed to read and refuted).
    pub fn is_malformed_input(&self) -> bool {
        self.check() == "bundle-format"
    }
}
