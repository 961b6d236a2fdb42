//! The JSON wire shapes of the Sigstore protobuf-specs (bundle v0.1–v0.3,
//! trusted root v0.1), as serde reads them. Only the fields verification
//! needs; unknown fields are ignored, as protobuf JSON requires.

use serde::{Deserialize, Deserializer};

/// A protobuf JSON int64: a decimal string, or a number.
pub(crate) fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        S(String),
        N(i64),
    }
    match Int::deserialize(d)? {
        Int::N(n) => Ok(n),
        Int::S(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

fn opt_int64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    int64(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Bundle {
    pub media_type: String,
    pub verification_material: VerificationMaterial,
    pub message_signature: Option<MessageSignature>,
    pub dsse_envelope: Option<Envelope>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VerificationMaterial {
    pub certificate: Option<RawBytes>,
    pub x509_certificate_chain: Option<CertChain>,
    /// Only its presence matters: the key itself comes from the caller.
    pub public_key: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub tlog_entries: Vec<TlogEntry>,
    pub timestamp_verification_data: Option<TimestampData>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawBytes {
    #[serde(default)]
    pub raw_bytes: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CertChain {
    #[serde(default)]
    pub certificates: Vec<RawBytes>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TimestampData {
    #[serde(default)]
    pub rfc3161_timestamps: Vec<SignedTimestamp>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignedTimestamp {
    pub signed_timestamp: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TlogEntry {
    #[serde(deserialize_with = "int64")]
    pub log_index: i64,
    pub log_id: LogId,
    pub kind_version: KindVersion,
    #[serde(default, deserialize_with = "opt_int64")]
    pub integrated_time: Option<i64>,
    pub inclusion_promise: Option<InclusionPromise>,
    pub inclusion_proof: Option<InclusionProof>,
    pub canonicalized_body: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LogId {
    pub key_id: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct KindVersion {
    pub kind: String,
    pub version: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InclusionPromise {
    pub signed_entry_timestamp: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InclusionProof {
    #[serde(deserialize_with = "int64")]
    pub log_index: i64,
    pub root_hash: String,
    #[serde(deserialize_with = "int64")]
    pub tree_size: i64,
    #[serde(default)]
    pub hashes: Vec<String>,
    pub checkpoint: Option<Checkpoint>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Checkpoint {
    pub envelope: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageSignature {
    pub message_digest: Option<HashOutput>,
    pub signature: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct HashOutput {
    pub algorithm: String,
    pub digest: String,
}

/// A DSSE envelope (https://github.com/secure-systems-lab/dsse/blob/master/envelope.md).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Envelope {
    pub payload: String,
    pub payload_type: String,
    #[serde(default)]
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct EnvelopeSignature {
    pub sig: String,
}

// ---- trusted root ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TrustedRootJson {
    #[serde(default)]
    pub tlogs: Vec<LogJson>,
    #[serde(default)]
    pub certificate_authorities: Vec<CaJson>,
    #[serde(default)]
    pub ctlogs: Vec<LogJson>,
    #[serde(default)]
    pub timestamp_authorities: Vec<CaJson>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LogJson {
    #[serde(default)]
    pub base_url: String,
    pub public_key: KeyJson,
    pub log_id: LogId,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KeyJson {
    #[serde(default)]
    pub raw_bytes: String,
    #[serde(default)]
    pub key_details: String,
    pub valid_for: Option<ValidFor>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ValidFor {
    pub start: Option<String>,
    pub end: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CaJson {
    pub cert_chain: CertChain,
    pub valid_for: Option<ValidFor>,
}

// ---- Rekor entry bodies ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RekorBody {
    pub api_version: String,
    pub kind: String,
}

/// An in-toto Statement, as far as subjects go.
#[derive(Debug, Deserialize)]
pub(crate) struct Statement {
    #[serde(rename = "_type")]
    pub type_: String,
    #[serde(default)]
    pub subject: Vec<Subject>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Subject {
    #[serde(default)]
    pub digest: std::collections::BTreeMap<String, String>,
}
