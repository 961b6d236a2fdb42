//! cairn's own evidence, pure (floor 1): signing keys, DSSE envelopes, in-toto
//! Statement v1 with the SLSA Provenance v1 and in-toto test-result v0.1
//! predicates, and Sigstore bundle v0.3 JSON.
//!
//! No I/O, no clock: the caller hands in key bytes, times (unix milliseconds) and
//! digests. Two documented exceptions, both inside AWS-LC: [`SigningKey::generate`]
//! draws a new key from AWS-LC's RNG, and ECDSA signatures draw their nonce from it
//! (Ed25519 signatures are deterministic).
//!
//! The engine fills an [`Observed`] with what it saw, and turns it into statements:
//! ```
//! use cairn_evidence::{Algorithm, Bundle, Observed, SigningKey, Statement, Subject, sha256};
//! let key = SigningKey::from_secret_bytes(Algorithm::Ed25519, &[7; 32])?;
//! let observed = Observed {
//!     workload: "hello".into(),
//!     repository: "https://git.example/hello.git".into(),
//!     commit: "0123456789abcdef0123456789abcdef01234567".into(),
//!     run_id: "42".into(),
//!     chain: "default".into(),
//!     stage: "build".into(),
//!     stage_kind: "build".into(),
//!     command: Some("make".into()),
//!     started_ms: 1_764_072_000_000,
//!     finished_ms: 1_764_072_003_250,
//!     exit_code: Some(0),
//!     logs: vec![],
//!     base_images: vec![],
//!     failed_tests: vec![],
//!     tests: None,
//!     artifacts: vec![Subject::sha256("hello", sha256(b"binary"))],
//!     triggered_by: None,
//!     change: vec![],
//! };
//! let statement = Statement::provenance(&observed, "https://example.invalid/cairn/builder/local")?;
//! let bundle = Bundle::sign_statement(&statement, &key)?;
//! let json = bundle.to_json()?;
//! let read = Bundle::from_json(json.as_bytes())?;
//! read.verify(key.verifying_key())?;
//! # Ok::<(), cairn_evidence::EvidenceError>(())
//! ```

mod b64;
mod bundle;
mod digest;
pub mod dsse;
mod error;
mod key;
mod observed;
mod pem;
pub mod provenance;
pub mod review;
pub mod sbom;
mod statement;
pub mod test_result;
mod time;
pub mod types;
pub mod vsa;
pub mod vulns;

pub use bundle::{
    BUNDLE_MEDIA_TYPE, Bundle, Checkpoint, DSSE_ENTRY_KIND, DSSE_ENTRY_VERSION, InclusionPromise,
    InclusionProof, KindVersion, LogId, TlogEntry, dsse_log_body, log_key_id,
};
pub use digest::{Digest, Sha256Hasher, hash_log_lines, sha256};
pub use dsse::Envelope;
pub use error::EvidenceError;
pub use key::{Algorithm, KeyId, SecretPem, SigningKey, TokenSigner, VerifyingKey};
pub use observed::{ChangeCommit, NamedDigest, Observed};
pub use statement::{
    IN_TOTO_PAYLOAD_TYPE, Predicate, ResourceDescriptor, STATEMENT_TYPE, Statement, Subject,
};
pub use time::rfc3339_utc_ms;
