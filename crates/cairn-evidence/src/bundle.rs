//! Sigstore bundle v0.3 in its protobuf JSON form (sigstore/protobuf-specs
//! `protos/sigstore_bundle.proto`, `sigstore_rekor.proto`, `sigstore_common.proto`;
//! proto3 JSON mapping: lowerCamelCase names, `bytes` as standard base64, `int64`
//! as decimal strings). cairn writes key-based bundles: `publicKey.hint` is the key
//! id, the content is a DSSE envelope.

use serde::{Deserialize, Serialize};

use crate::dsse::{EnvelopeJson, check_size};
use crate::statement::{IN_TOTO_PAYLOAD_TYPE, Predicate, Statement};
use crate::{Envelope, EvidenceError, SigningKey, VerifyingKey};

/// The media type of a v0.3 bundle.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// A bundle's JSON larger than this is refused before parsing.
pub const MAX_BUNDLE_BYTES: usize = 16 * 1024 * 1024;
/// At most this many transparency log entries in one bundle.
pub const MAX_TLOG_ENTRIES: usize = 16;

/// A key-based Sigstore bundle around one DSSE envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// `verificationMaterial.publicKey.hint`: the signing key's id.
    pub key_hint: String,
    /// `verificationMaterial.tlogEntries`: empty until cairn's log records bundles.
    pub tlog_entries: Vec<TlogEntry>,
    pub envelope: Envelope,
}

/// `dev.sigstore.rekor.v1.TransparencyLogEntry`: the typed place for cairn's log
/// entry, its inclusion proof and checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlogEntry {
    #[serde(with = "int64")]
    pub log_index: i64,
    pub log_id: LogId,
    pub kind_version: KindVersion,
    #[serde(with = "int64")]
    pub integrated_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion_promise: Option<InclusionPromise>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion_proof: Option<InclusionProof>,
    #[serde(
        default,
        with = "crate::b64::serde_bytes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub canonicalized_body: Vec<u8>,
}

/// `dev.sigstore.common.v1.LogId`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogId {
    #[serde(with = "crate::b64::serde_bytes")]
    pub key_id: Vec<u8>,
}

/// `dev.sigstore.rekor.v1.KindVersion`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindVersion {
    pub kind: String,
    pub version: String,
}

/// `dev.sigstore.rekor.v1.InclusionPromise`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InclusionPromise {
    #[serde(with = "crate::b64::serde_bytes")]
    pub signed_entry_timestamp: Vec<u8>,
}

/// `dev.sigstore.rekor.v1.InclusionProof` (RFC 9162 audit path and checkpoint).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InclusionProof {
    #[serde(with = "int64")]
    pub log_index: i64,
    #[serde(with = "crate::b64::serde_bytes")]
    pub root_hash: Vec<u8>,
    #[serde(with = "int64")]
    pub tree_size: i64,
    #[serde(with = "bytes_list")]
    pub hashes: Vec<Vec<u8>>,
    pub checkpoint: Checkpoint,
}

/// `dev.sigstore.rekor.v1.Checkpoint`: a C2SP signed note, as text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub envelope: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BundleJson {
    media_type: String,
    verification_material: VerificationMaterialJson,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dsse_envelope: Option<EnvelopeJson>,
    /// Present only so that a message-signature bundle gets a clear error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_signature: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VerificationMaterialJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public_key: Option<PublicKeyIdentifierJson>,
    /// Present only so that certificate bundles get a clear error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x509_certificate_chain: Option<serde_json::Value>,
    /// Written even when empty: verifiers (sigstore-js) require the field.
    #[serde(default)]
    tlog_entries: Vec<TlogEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp_verification_data: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicKeyIdentifierJson {
    hint: String,
}

impl Bundle {
    /// Signs `statement` as a DSSE envelope (`application/vnd.in-toto+json`) and
    /// wraps it in a bundle whose hint is `key`'s id.
    pub fn sign_statement<P: Predicate>(
        statement: &Statement<P>,
        key: &SigningKey,
    ) -> Result<Self, EvidenceError> {
        let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, statement.to_json()?, key)?;
        Ok(Bundle {
            key_hint: key.key_id().to_string(),
            tlog_entries: Vec::new(),
            envelope,
        })
    }

    pub fn to_json(&self) -> Result<String, EvidenceError> {
        let wire = BundleJson {
            media_type: BUNDLE_MEDIA_TYPE.to_owned(),
            verification_material: VerificationMaterialJson {
                public_key: Some(PublicKeyIdentifierJson {
                    hint: self.key_hint.clone(),
                }),
                certificate: None,
                x509_certificate_chain: None,
                tlog_entries: self.tlog_entries.clone(),
                timestamp_verification_data: None,
            },
            dsse_envelope: Some(self.envelope.to_wire()),
            message_signature: None,
        };
        serde_json::to_string(&wire).map_err(EvidenceError::json("Sigstore bundle"))
    }

    /// Reads a v0.3 key-based DSSE bundle strictly (size-bounded, no unknown
    /// fields). Certificate and message-signature bundles are refused: cairn signs
    /// with its own keys. Reading does not verify: see [`Bundle::verify`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, EvidenceError> {
        check_size("a Sigstore bundle", bytes.len(), MAX_BUNDLE_BYTES)?;
        let wire: BundleJson =
            serde_json::from_slice(bytes).map_err(EvidenceError::json("Sigstore bundle"))?;
        if wire.media_type != BUNDLE_MEDIA_TYPE {
            return Err(EvidenceError::Unexpected {
                what: "the bundle mediaType",
                expected: BUNDLE_MEDIA_TYPE,
                found: wire.media_type.chars().take(80).collect(),
            });
        }
        let material = wire.verification_material;
        if material.certificate.is_some() || material.x509_certificate_chain.is_some() {
            return Err(EvidenceError::Invalid {
                what: "Sigstore bundle",
                reason: "it is certificate-based; cairn reads key-based bundles only",
            });
        }
        let Some(public_key) = material.public_key else {
            return Err(EvidenceError::Invalid {
                what: "Sigstore bundle",
                reason: "verificationMaterial has no publicKey",
            });
        };
        check_size(
            "the bundle's tlogEntries",
            material.tlog_entries.len(),
            MAX_TLOG_ENTRIES,
        )?;
        if wire.message_signature.is_some() {
            return Err(EvidenceError::Invalid {
                what: "Sigstore bundle",
                reason: "it holds a messageSignature; cairn reads DSSE bundles only",
            });
        }
        let Some(envelope) = wire.dsse_envelope else {
            return Err(EvidenceError::Invalid {
                what: "Sigstore bundle",
                reason: "it has no dsseEnvelope",
            });
        };
        let envelope = Envelope::from_wire(envelope)?;
        if envelope.signatures.len() != 1 {
            return Err(EvidenceError::Invalid {
                what: "Sigstore bundle",
                reason: "its DSSE envelope must carry exactly one signature",
            });
        }
        Ok(Bundle {
            key_hint: public_key.hint,
            tlog_entries: material.tlog_entries,
            envelope,
        })
    }

    /// Verifies the envelope's signature with `key` and returns the payload. The
    /// bundle's key hint, and the signature's `keyid` when it has one, must name
    /// `key`: a bundle that says another key signed it is refused, whatever its
    /// signature. Fails closed on a bundle with log entries until cairn can verify
    /// them.
    pub fn verify(&self, key: &VerifyingKey) -> Result<&[u8], EvidenceError> {
        let names_key = |id: &str| id == key.key_id().as_str();
        let keyids_agree = self
            .envelope
            .signatures
            .iter()
            .all(|s| s.keyid.is_empty() || names_key(&s.keyid));
        if !names_key(&self.key_hint) || !keyids_agree {
            return Err(EvidenceError::NoValidSignature {
                keyid: key.key_id().to_string(),
            });
        }
        if !self.tlog_entries.is_empty() {
            return Err(EvidenceError::UnverifiedTlogEntries {
                count: self.tlog_entries.len(),
            });
        }
        self.envelope.verify(key)?;
        Ok(&self.envelope.payload)
    }

    /// Verifies, then parses the payload as an in-toto statement with predicate `P`.
    pub fn verify_statement<P: Predicate>(
        &self,
        key: &VerifyingKey,
    ) -> Result<Statement<P>, EvidenceError> {
        let payload = self.verify(key)?;
        if self.envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
            return Err(EvidenceError::Unexpected {
                what: "the DSSE payloadType",
                expected: IN_TOTO_PAYLOAD_TYPE,
                found: self.envelope.payload_type.chars().take(80).collect(),
            });
        }
        Statement::from_json(payload)
    }
}

/// proto3 JSON `int64`: written as a decimal string; read from a string or a number.
mod int64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_string())
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int64<'a> {
        Number(i64),
        Text(std::borrow::Cow<'a, str>),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        match Int64::deserialize(d)? {
            Int64::Number(n) => Ok(n),
            Int64::Text(text) => text
                .parse()
                .map_err(|_| serde::de::Error::custom("an int64 string is not a decimal integer")),
        }
    }
}

/// proto3 JSON `repeated bytes`: a list of base64 strings.
mod bytes_list {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(values: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(values.iter().map(|v| crate::b64::encode(v)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| {
                crate::b64::decode(text, "an inclusion proof hash")
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64;

    #[test]
    fn base64_round_trips_through_the_serde_helper() {
        let entry = TlogEntry {
            log_index: 7,
            log_id: LogId { key_id: vec![1, 2] },
            kind_version: KindVersion {
                kind: "dsse".into(),
                version: "0.0.1".into(),
            },
            integrated_time: 1_764_072_000,
            inclusion_promise: None,
            inclusion_proof: Some(InclusionProof {
                log_index: 7,
                root_hash: vec![0xff; 32],
                tree_size: 8,
                hashes: vec![vec![0xfb; 32]],
                checkpoint: Checkpoint {
                    envelope: "log\n8\nroot\n\n— sig\n".into(),
                },
            }),
            canonicalized_body: b"{}".to_vec(),
        };
        let json = serde_json::to_value(&entry).expect("json");
        assert_eq!(json["logIndex"], "7");
        assert_eq!(json["integratedTime"], "1764072000");
        assert_eq!(json["inclusionProof"]["treeSize"], "8");
        assert_eq!(json["logId"]["keyId"], "AQI=");
        assert_eq!(json["canonicalizedBody"], "e30=");
        assert_eq!(
            json["inclusionProof"]["hashes"][0],
            b64::encode(&[0xfb; 32])
        );
        let back: TlogEntry = serde_json::from_value(json).expect("back");
        assert_eq!(back, entry);
        // proto3 JSON parsers accept int64 as a number too.
        let numeric = r#"{"logIndex":7,"logId":{"keyId":"AQI="},"kindVersion":{"kind":"dsse","version":"0.0.1"},"integratedTime":1}"#;
        let parsed: TlogEntry = serde_json::from_str(numeric).expect("numbers");
        assert_eq!(parsed.log_index, 7);
        let bad = numeric.replace("\"logIndex\":7", "\"logIndex\":\"seven\"");
        assert!(serde_json::from_str::<TlogEntry>(&bad).is_err());
    }
}
