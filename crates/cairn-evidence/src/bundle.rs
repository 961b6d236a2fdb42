//! Sigstore bundle v0.3 in its protobuf JSON form (sigstore/protobuf-specs
//! `protos/sigstore_bundle.proto`, `sigstore_rekor.proto`, `sigstore_common.proto`;
//! proto3 JSON mapping: lowerCamelCase names, `bytes` as standard base64, `int64`
//! as decimal strings). cairn writes key-based bundles: `publicKey.hint` is the key
//! id, the content is a DSSE envelope.
//!
//! cairn's log entry in a bundle is shaped like a Rekor v2 `dsse` 0.0.2 entry
//! (protobuf-specs `rekor/v2/dsse.proto`): the log's leaf is the canonicalized
//! body `{"apiVersion":"0.0.2","kind":"dsse","spec":{"dsseV002":{"payloadHash":
//! {...},"signatures":[{"content":...,"verifier":{...}}]}}}` (keys sorted, no
//! spaces), the inclusion proof is RFC 9162 §2.1.3, and the checkpoint is a C2SP
//! signed note by cairn's log key. The log id is the SHA-256 of the note key
//! material (`name || 0x0A || 0x01 || Ed25519 key`, c2sp.org/signed-note), so its
//! first four bytes are the note signature's key hash.

use cairn_tlog::checkpoint::{Checkpoint as CheckpointBody, CheckpointError};
use cairn_tlog::merkle::{Hash, leaf_hash, verify_inclusion};
use cairn_tlog::note::{Note, Verifier as LogVerifier};
use serde::{Deserialize, Serialize};

use crate::dsse::{EnvelopeJson, check_size};
use crate::statement::{IN_TOTO_PAYLOAD_TYPE, Predicate, Statement};
use crate::{Envelope, EvidenceError, SigningKey, VerifyingKey};

/// The media type of a v0.3 bundle.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// A bundle's JSON larger than this is refused before parsing.
pub(crate) const MAX_BUNDLE_BYTES: usize = 16 * 1024 * 1024;
/// At most this many transparency log entries in one bundle.
pub(crate) const MAX_TLOG_ENTRIES: usize = 16;

/// The kind and version of cairn's evidence entries (Rekor v2 `dsse`).
pub const DSSE_ENTRY_KIND: &str = "dsse";
pub const DSSE_ENTRY_VERSION: &str = "0.0.2";
/// At most this many hashes in an inclusion proof (a tree of 2^64 leaves).
const MAX_PROOF_HASHES: usize = 64;

/// A key-based Sigstore bundle around one DSSE envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// `verificationMaterial.publicKey.hint`: the signing key's id.
    pub key_hint: String,
    /// `verificationMaterial.tlogEntries`: cairn's log entry for the envelope
    /// (see [`dsse_log_body`]), or none for a bundle made outside the engine.
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
    /// signature. A bundle that carries log entries is refused here: without the
    /// log's key they cannot be checked; use [`Bundle::verify_with_log`].
    pub fn verify(&self, key: &VerifyingKey) -> Result<&[u8], EvidenceError> {
        if !self.tlog_entries.is_empty() {
            return Err(EvidenceError::Invalid {
                what: "Sigstore bundle",
                reason: "it carries transparency log entries; verify it with the log's key",
            });
        }
        self.verify_signature(key)
    }

    /// Verifies the signature as [`Bundle::verify`] does, and every log entry
    /// against `log`, cairn's log key; at least one entry is required. Each entry
    /// must be a `dsse` 0.0.2 entry whose body is exactly [`dsse_log_body`] of this
    /// envelope and `key`, from the log `log` names, with an RFC 9162 inclusion
    /// proof of that body to a root that a checkpoint signed by `log` commits to.
    /// Fails closed: anything missing, malformed or not matching is an error.
    pub fn verify_with_log(
        &self,
        key: &VerifyingKey,
        log: &LogVerifier,
    ) -> Result<&[u8], EvidenceError> {
        if self.tlog_entries.is_empty() {
            return Err(entry_err("the bundle has no transparency log entry"));
        }
        let payload = self.verify_signature(key)?;
        let body = dsse_log_body(&self.envelope, key)?;
        for entry in &self.tlog_entries {
            verify_entry(entry, &body, log)?;
        }
        Ok(payload)
    }

    fn verify_signature(&self, key: &VerifyingKey) -> Result<&[u8], EvidenceError> {
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

/// The canonicalized body of the log entry for `envelope` signed by `key`: a
/// Rekor v2 `dsse` 0.0.2 body (protobuf-specs `rekor/v2/dsse.proto`,
/// `DSSELogEntryV002`) as canonical JSON (keys sorted, no whitespace). It holds
/// the SHA-256 of the payload and each signature with the verifier's SPKI; as the
/// signature covers the PAE (payload type and payload), it names one envelope.
pub fn dsse_log_body(envelope: &Envelope, key: &VerifyingKey) -> Result<Vec<u8>, EvidenceError> {
    let key_details = match key.algorithm() {
        crate::Algorithm::Ed25519 => "PKIX_ED25519",
        crate::Algorithm::EcdsaP256Sha256 => "PKIX_ECDSA_P256_SHA_256",
    };
    let payload_hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &envelope.payload);
    let signatures: Vec<serde_json::Value> = envelope
        .signatures
        .iter()
        .map(|s| {
            serde_json::json!({
                "content": crate::b64::encode(&s.sig),
                "verifier": {
                    "keyDetails": key_details,
                    "publicKey": { "rawBytes": crate::b64::encode(key.spki_der()) },
                },
            })
        })
        .collect();
    let body = serde_json::json!({
        "apiVersion": DSSE_ENTRY_VERSION,
        "kind": DSSE_ENTRY_KIND,
        "spec": { "dsseV002": {
            "payloadHash": {
                "algorithm": "SHA2_256",
                "digest": crate::b64::encode(payload_hash.as_ref()),
            },
            "signatures": signatures,
        }},
    });
    // serde_json's map is a BTreeMap (no `preserve_order`): keys come out sorted.
    serde_json::to_vec(&body).map_err(EvidenceError::json("log entry body"))
}

/// The log id of cairn's log key: SHA-256 of `name || 0x0A || 0x01 || key`
/// (the key hash of c2sp.org/signed-note, in full).
pub fn log_key_id(log: &LogVerifier) -> [u8; 32] {
    let mut material = Vec::with_capacity(log.name().len() + 34);
    material.extend_from_slice(log.name().as_bytes());
    material.push(b'\n');
    material.push(0x01);
    material.extend_from_slice(log.public_key());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &material);
    let mut id = [0u8; 32];
    id.copy_from_slice(digest.as_ref());
    id
}

fn entry_err(reason: &'static str) -> EvidenceError {
    EvidenceError::Invalid {
        what: "transparency log entry",
        reason,
    }
}

fn to_hash(bytes: &[u8]) -> Result<Hash, EvidenceError> {
    bytes
        .try_into()
        .map_err(|_| entry_err("a proof hash is not 32 bytes"))
}

/// One entry: kind, body, log id, inclusion proof, checkpoint (see
/// [`Bundle::verify_with_log`]).
fn verify_entry(entry: &TlogEntry, body: &[u8], log: &LogVerifier) -> Result<(), EvidenceError> {
    if entry.kind_version.kind != DSSE_ENTRY_KIND
        || entry.kind_version.version != DSSE_ENTRY_VERSION
    {
        return Err(entry_err("it is not a dsse 0.0.2 entry"));
    }
    if entry.canonicalized_body != body {
        return Err(entry_err(
            "its body does not describe this envelope and key",
        ));
    }
    if entry.log_id.key_id != log_key_id(log) {
        return Err(entry_err("it is not from the given log"));
    }
    let proof = entry
        .inclusion_proof
        .as_ref()
        .ok_or_else(|| entry_err("it has no inclusion proof"))?;
    if proof.log_index != entry.log_index {
        return Err(entry_err("the proof is for another index"));
    }
    let index = u64::try_from(proof.log_index).map_err(|_| entry_err("a negative log index"))?;
    let size = u64::try_from(proof.tree_size).map_err(|_| entry_err("a negative tree size"))?;
    if proof.hashes.len() > MAX_PROOF_HASHES {
        return Err(entry_err("the proof has too many hashes"));
    }
    let hashes = proof
        .hashes
        .iter()
        .map(|h| to_hash(h))
        .collect::<Result<Vec<_>, _>>()?;
    let root = to_hash(&proof.root_hash)?;
    verify_inclusion(&leaf_hash(body), index, size, &hashes, &root)
        .map_err(|_| entry_err("the inclusion proof does not lead to the root hash"))?;
    let checkpoint = open_checkpoint(&proof.checkpoint.envelope, log)
        .map_err(|_| entry_err("the checkpoint is not a note signed by the log's key"))?;
    if checkpoint.origin != log.name() {
        return Err(entry_err("the checkpoint is for another log"));
    }
    if checkpoint.size != size || checkpoint.root != root {
        return Err(entry_err(
            "the checkpoint's size and root are not the proof's",
        ));
    }
    Ok(())
}

fn open_checkpoint(text: &str, log: &LogVerifier) -> Result<CheckpointBody, CheckpointError> {
    let note = Note::parse(text.as_bytes())?;
    note.verify(std::slice::from_ref(log))?;
    CheckpointBody::parse(note.text())
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

    /// A bundle signed by `key`, logged at index 2 of a five-entry log signed by
    /// `log`, as the engine writes it.
    fn logged_bundle(key: &SigningKey, log: &cairn_tlog::note::Signer) -> Bundle {
        use cairn_tlog::merkle::root_from_leaves;
        use cairn_tlog::proof::{LeafHashes, inclusion_proof};
        let envelope = Envelope::sign("text/plain", b"logged".to_vec(), key).expect("signs");
        let body = dsse_log_body(&envelope, key.verifying_key()).expect("body");
        let leaves: Vec<Hash> = [&b"a"[..], b"b", &body, b"d", b"e"]
            .iter()
            .map(|e| leaf_hash(e))
            .collect();
        let root = root_from_leaves(&leaves);
        let proof = inclusion_proof(&LeafHashes(&leaves), 2, 5).expect("proof");
        let checkpoint = CheckpointBody {
            origin: log.name().to_owned(),
            size: 5,
            root,
            extensions: vec![],
        };
        let note = cairn_tlog::note::sign_note(&checkpoint.to_text(), &[log]).expect("note");
        Bundle {
            key_hint: key.key_id().to_string(),
            tlog_entries: vec![TlogEntry {
                log_index: 2,
                log_id: LogId {
                    key_id: log_key_id(&log.verifier()).to_vec(),
                },
                kind_version: KindVersion {
                    kind: DSSE_ENTRY_KIND.into(),
                    version: DSSE_ENTRY_VERSION.into(),
                },
                integrated_time: 1_764_072_000,
                inclusion_promise: None,
                inclusion_proof: Some(InclusionProof {
                    log_index: 2,
                    root_hash: root.to_vec(),
                    tree_size: 5,
                    hashes: proof.iter().map(|h| h.to_vec()).collect(),
                    checkpoint: Checkpoint { envelope: note },
                }),
                canonicalized_body: body,
            }],
            envelope,
        }
    }

    #[test]
    fn the_log_entry_verifies_and_every_tampering_is_refused() {
        let key = SigningKey::from_secret_bytes(crate::Algorithm::Ed25519, &[5; 32]).expect("key");
        let signer = cairn_tlog::note::Signer::from_seed("cairn.test/log", [6; 32]).expect("log");
        let log = signer.verifier();
        let good = logged_bundle(&key, &signer);
        // Through JSON and back, as a verifier reads it.
        let read = Bundle::from_json(good.to_json().expect("json").as_bytes()).expect("reads");
        assert_eq!(
            read.verify_with_log(key.verifying_key(), &log)
                .expect("verifies"),
            b"logged"
        );
        // The body is a Rekor v2 dsse 0.0.2 body, canonical.
        let body: serde_json::Value =
            serde_json::from_slice(&good.tlog_entries[0].canonicalized_body).expect("json");
        assert_eq!(
            body.to_string().as_bytes(),
            good.tlog_entries[0].canonicalized_body
        );
        assert_eq!(body["kind"], "dsse");
        assert_eq!(body["apiVersion"], "0.0.2");
        let sig = &body["spec"]["dsseV002"]["signatures"][0];
        assert_eq!(sig["verifier"]["keyDetails"], "PKIX_ED25519");
        assert_eq!(
            sig["content"],
            crate::b64::encode(&good.envelope.signatures[0].sig)
        );
        // Without the log key, a logged bundle is not accepted.
        assert!(good.verify(key.verifying_key()).is_err());

        type Tamper = fn(&mut Bundle);
        let cases: [(&str, Tamper); 14] = [
            ("no entry", |b| b.tlog_entries.clear()),
            ("entry index", |b| b.tlog_entries[0].log_index = 3),
            ("proof index", |b| {
                let p = b.tlog_entries[0].inclusion_proof.as_mut().expect("proof");
                p.log_index = 3;
                b.tlog_entries[0].log_index = 3;
            }),
            ("negative index", |b| {
                let p = b.tlog_entries[0].inclusion_proof.as_mut().expect("proof");
                p.log_index = -1;
                b.tlog_entries[0].log_index = -1;
            }),
            ("tree size", |b| {
                b.tlog_entries[0]
                    .inclusion_proof
                    .as_mut()
                    .expect("proof")
                    .tree_size = 6;
            }),
            ("proof hash bit", |b| {
                b.tlog_entries[0]
                    .inclusion_proof
                    .as_mut()
                    .expect("proof")
                    .hashes[0][0] ^= 1;
            }),
            ("proof hash dropped", |b| {
                b.tlog_entries[0]
                    .inclusion_proof
                    .as_mut()
                    .expect("proof")
                    .hashes
                    .pop();
            }),
            ("root hash bit", |b| {
                b.tlog_entries[0]
                    .inclusion_proof
                    .as_mut()
                    .expect("proof")
                    .root_hash[31] ^= 1;
            }),
            ("checkpoint signature", |b| {
                let c = &mut b.tlog_entries[0]
                    .inclusion_proof
                    .as_mut()
                    .expect("proof")
                    .checkpoint;
                let at = c.envelope.len() - 3;
                let flipped = if c.envelope.as_bytes()[at] == b'A' {
                    "B"
                } else {
                    "A"
                };
                c.envelope.replace_range(at..at + 1, flipped);
            }),
            ("checkpoint junk after", |b| {
                b.tlog_entries[0]
                    .inclusion_proof
                    .as_mut()
                    .expect("proof")
                    .checkpoint
                    .envelope
                    .push_str("junk\n");
            }),
            ("body byte", |b| {
                b.tlog_entries[0].canonicalized_body[10] ^= 1;
            }),
            ("kind", |b| {
                b.tlog_entries[0].kind_version.version = "0.0.1".into();
            }),
            ("log id", |b| b.tlog_entries[0].log_id.key_id[0] ^= 1),
            ("no proof", |b| b.tlog_entries[0].inclusion_proof = None),
        ];
        for (name, tamper) in cases {
            let mut bad = good.clone();
            tamper(&mut bad);
            assert!(
                bad.verify_with_log(key.verifying_key(), &log).is_err(),
                "{name} was accepted"
            );
        }
        // A checkpoint signed by another key with the same name is refused.
        let other = cairn_tlog::note::Signer::from_seed("cairn.test/log", [7; 32]).expect("log");
        let forged = logged_bundle(&key, &other);
        assert!(forged.verify_with_log(key.verifying_key(), &log).is_err());
        // The entry of another envelope (same key) does not vouch for this one.
        let mut swapped = good.clone();
        swapped.envelope = Envelope::sign("text/plain", b"other".to_vec(), &key).expect("signs");
        assert!(swapped.verify_with_log(key.verifying_key(), &log).is_err());
        // The log id's first four bytes are the note key hash.
        assert_eq!(log_key_id(&log)[..4], log.key_hash().to_be_bytes());
    }
}
