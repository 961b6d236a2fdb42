//! DSSE v1: the pre-authentication encoding, the JSON envelope, signing and
//! verifying (secure-systems-lab/dsse `protocol.md` and `envelope.md`).

use serde::{Deserialize, Serialize};

use crate::{EvidenceError, SigningKey, VerifyingKey, b64};

/// An envelope's JSON larger than this is refused before parsing.
pub const MAX_ENVELOPE_BYTES: usize = 8 * 1024 * 1024;
/// At most this many signatures in one envelope.
pub const MAX_SIGNATURES: usize = 16;
/// A payload type longer than this is refused (a media type is short).
pub const MAX_PAYLOAD_TYPE_BYTES: usize = 256;
/// A key id longer than this is refused.
pub const MAX_KEYID_BYTES: usize = 256;
/// A signature longer than this is refused (DER P-256 is at most 72 bytes).
pub const MAX_SIGNATURE_BYTES: usize = 1024;

/// `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, where
/// `LEN` is the byte length in ASCII decimal without leading zeros (protocol.md,
/// "Signature definition"). This is the byte string that is signed.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_type.len() + payload.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// One signature: `keyid` is an unauthenticated hint (here: cairn's key id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub keyid: String,
    pub sig: Vec<u8>,
}

/// A DSSE envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub payload_type: String,
    pub payload: Vec<u8>,
    pub signatures: Vec<Signature>,
}

/// The JSON shape of envelope.md (also the Sigstore bundle's `dsseEnvelope`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnvelopeJson {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: String,
    signatures: Vec<SignatureJson>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureJson {
    #[serde(default)]
    keyid: String,
    sig: String,
}

impl Envelope {
    /// Signs `payload` of `payload_type` with `key`: one signature over the PAE,
    /// `keyid` = the key id.
    pub fn sign(
        payload_type: &str,
        payload: Vec<u8>,
        key: &SigningKey,
    ) -> Result<Self, EvidenceError> {
        check_payload_type(payload_type)?;
        let sig = key.sign(&pae(payload_type, &payload))?;
        Ok(Envelope {
            payload_type: payload_type.to_owned(),
            payload,
            signatures: vec![Signature {
                keyid: key.key_id().to_string(),
                sig,
            }],
        })
    }

    /// `Ok` if a signature verifies with `key` over the PAE. `keyid` is only an
    /// unauthenticated hint (envelope.md), and other producers use other key id
    /// schemes (securesystemslib hashes its own key JSON), so every signature is
    /// tried; an envelope with no signature, or none that verifies, is refused.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), EvidenceError> {
        let message = pae(&self.payload_type, &self.payload);
        let verified = self
            .signatures
            .iter()
            .any(|s| key.verify(&message, &s.sig).is_ok());
        if verified {
            Ok(())
        } else {
            Err(EvidenceError::NoValidSignature {
                keyid: key.key_id().to_string(),
            })
        }
    }

    /// Like [`Envelope::verify`], and the payload type must be `expected`.
    pub fn verify_typed(
        &self,
        key: &VerifyingKey,
        expected: &'static str,
    ) -> Result<&[u8], EvidenceError> {
        if self.payload_type != expected {
            return Err(EvidenceError::Unexpected {
                what: "the DSSE payloadType",
                expected,
                found: self.payload_type.chars().take(80).collect(),
            });
        }
        self.verify(key)?;
        Ok(&self.payload)
    }

    /// The envelope JSON of envelope.md: `payload` and `sig` in standard base64.
    pub fn to_json(&self) -> Result<String, EvidenceError> {
        serde_json::to_string(&self.to_wire()).map_err(EvidenceError::json("DSSE envelope"))
    }

    /// Parses envelope JSON strictly: size-bounded, no unknown fields, a payload
    /// type, 1 to [`MAX_SIGNATURES`] signatures each with a non-empty `sig`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EvidenceError> {
        check_size("DSSE envelope JSON", bytes.len(), MAX_ENVELOPE_BYTES)?;
        let wire: EnvelopeJson =
            serde_json::from_slice(bytes).map_err(EvidenceError::json("DSSE envelope"))?;
        Self::from_wire(wire)
    }

    pub(crate) fn to_wire(&self) -> EnvelopeJson {
        EnvelopeJson {
            payload: b64::encode(&self.payload),
            payload_type: self.payload_type.clone(),
            signatures: self
                .signatures
                .iter()
                .map(|s| SignatureJson {
                    keyid: s.keyid.clone(),
                    sig: b64::encode(&s.sig),
                })
                .collect(),
        }
    }

    pub(crate) fn from_wire(wire: EnvelopeJson) -> Result<Self, EvidenceError> {
        check_payload_type(&wire.payload_type)?;
        if wire.signatures.is_empty() {
            return Err(EvidenceError::Invalid {
                what: "DSSE envelope",
                reason: "it has no signature",
            });
        }
        check_size(
            "the DSSE signature list",
            wire.signatures.len(),
            MAX_SIGNATURES,
        )?;
        let mut signatures = Vec::with_capacity(wire.signatures.len());
        for s in wire.signatures {
            check_size("a DSSE keyid", s.keyid.len(), MAX_KEYID_BYTES)?;
            let sig = b64::decode(&s.sig, "a DSSE signature")?;
            check_size("a DSSE signature", sig.len(), MAX_SIGNATURE_BYTES)?;
            if sig.is_empty() {
                return Err(EvidenceError::Invalid {
                    what: "DSSE envelope",
                    reason: "a signature is empty",
                });
            }
            signatures.push(Signature {
                keyid: s.keyid,
                sig,
            });
        }
        Ok(Envelope {
            payload: b64::decode(&wire.payload, "the DSSE payload")?,
            payload_type: wire.payload_type,
            signatures,
        })
    }
}

fn check_payload_type(payload_type: &str) -> Result<(), EvidenceError> {
    check_size(
        "the DSSE payloadType",
        payload_type.len(),
        MAX_PAYLOAD_TYPE_BYTES,
    )?;
    if payload_type.is_empty() {
        return Err(EvidenceError::Invalid {
            what: "DSSE envelope",
            reason: "the payloadType is empty",
        });
    }
    Ok(())
}

pub(crate) fn check_size(
    what: &'static str,
    size: usize,
    limit: usize,
) -> Result<(), EvidenceError> {
    if size > limit {
        Err(EvidenceError::TooLarge { what, size, limit })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Algorithm;

    #[test]
    fn pae_matches_protocol_md() {
        // protocol.md "Test Vectors": PAE("http://example.com/HelloWorld", "hello world").
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("t", b""), b"DSSEv1 1 t 0 ");
        // Lengths are bytes, not characters.
        assert_eq!(pae("é", b"\xff"), b"DSSEv1 2 \xc3\xa9 1 \xff");
    }

    fn key(alg: Algorithm) -> SigningKey {
        SigningKey::from_secret_bytes(alg, &[4; 32]).expect("valid")
    }

    #[test]
    fn sign_json_round_trip_verify() {
        for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256] {
            let key = key(alg);
            let env =
                Envelope::sign("application/x-test", b"{\"a\":1}".to_vec(), &key).expect("signs");
            let json = env.to_json().expect("json");
            let back = Envelope::from_json(json.as_bytes()).expect("parses");
            assert_eq!(back, env);
            back.verify(key.verifying_key()).expect("verifies");
            assert_eq!(
                back.verify_typed(key.verifying_key(), "application/x-test")
                    .expect("typed"),
                b"{\"a\":1}"
            );
            assert!(
                back.verify_typed(key.verifying_key(), "application/other")
                    .is_err()
            );
            let value: serde_json::Value = serde_json::from_str(&json).expect("json");
            assert_eq!(value["payload"], "eyJhIjoxfQ==");
            assert_eq!(value["payloadType"], "application/x-test");
            assert_eq!(value["signatures"][0]["keyid"], key.key_id().as_str());
        }
    }

    #[test]
    fn tampering_is_detected() {
        let key = key(Algorithm::Ed25519);
        let env = Envelope::sign("application/x-test", b"payload".to_vec(), &key).expect("signs");
        let other = SigningKey::from_secret_bytes(Algorithm::Ed25519, &[5; 32]).expect("valid");

        let mut payload = env.clone();
        payload.payload[0] ^= 1;
        let mut payload_type = env.clone();
        payload_type.payload_type.push('x');
        let mut sig = env.clone();
        sig.signatures[0].sig[10] ^= 1;
        let mut unsigned = env.clone();
        unsigned.signatures.clear();
        for (name, bad) in [
            ("payload", payload),
            ("payloadType", payload_type),
            ("signature", sig),
            ("no signature", unsigned),
        ] {
            assert!(bad.verify(key.verifying_key()).is_err(), "{name}");
        }
        assert!(env.verify(other.verifying_key()).is_err(), "another key");
        // The keyid is a hint, not a credential: missing or foreign, the
        // signature decides.
        let mut no_hint = env.clone();
        no_hint.signatures[0].keyid.clear();
        no_hint
            .verify(key.verifying_key())
            .expect("verifies without a hint");
        let mut foreign_hint = env.clone();
        foreign_hint.signatures[0].keyid = "another scheme's id".into();
        foreign_hint
            .verify(key.verifying_key())
            .expect("verifies with a foreign hint");
        // Another key's signature beside ours does not get in the way.
        let mut two = env.clone();
        let theirs =
            Envelope::sign("application/x-test", b"payload".to_vec(), &other).expect("signs");
        two.signatures.insert(0, theirs.signatures[0].clone());
        two.verify(key.verifying_key()).expect("ours verifies");
        two.verify(other.verifying_key()).expect("theirs verifies");
    }

    #[test]
    fn strict_parsing() {
        let key = key(Algorithm::Ed25519);
        let env = Envelope::sign("t", b"p".to_vec(), &key).expect("signs");
        let sig = b64::encode(&env.signatures[0].sig);
        let cases = [
            (
                "unknown field",
                format!(
                    r#"{{"payload":"cA==","payloadType":"t","signatures":[{{"sig":"{sig}"}}],"x":1}}"#
                ),
            ),
            (
                "no signatures",
                r#"{"payload":"cA==","payloadType":"t","signatures":[]}"#.to_owned(),
            ),
            (
                "empty sig",
                r#"{"payload":"cA==","payloadType":"t","signatures":[{"sig":""}]}"#.to_owned(),
            ),
            (
                "empty type",
                format!(
                    r#"{{"payload":"cA==","payloadType":"","signatures":[{{"sig":"{sig}"}}]}}"#
                ),
            ),
            (
                "bad base64",
                format!(
                    r#"{{"payload":"c*==","payloadType":"t","signatures":[{{"sig":"{sig}"}}]}}"#
                ),
            ),
            (
                "missing payload",
                format!(r#"{{"payloadType":"t","signatures":[{{"sig":"{sig}"}}]}}"#),
            ),
            (
                "junk after",
                format!(
                    r#"{{"payload":"cA==","payloadType":"t","signatures":[{{"sig":"{sig}"}}]}} x"#
                ),
            ),
            (
                "too many signatures",
                format!(
                    r#"{{"payload":"cA==","payloadType":"t","signatures":[{}]}}"#,
                    vec![format!(r#"{{"sig":"{sig}"}}"#); MAX_SIGNATURES + 1].join(",")
                ),
            ),
        ];
        for (name, json) in cases {
            assert!(
                Envelope::from_json(json.as_bytes()).is_err(),
                "{name} was accepted"
            );
        }
        let ok =
            format!(r#"{{"payload":"cA==","payloadType":"t","signatures":[{{"sig":"{sig}"}}]}}"#);
        Envelope::from_json(ok.as_bytes())
            .expect("minimal envelope")
            .verify(key.verifying_key())
            .expect("verifies");
        let huge = vec![b' '; MAX_ENVELOPE_BYTES + 1];
        assert!(matches!(
            Envelope::from_json(&huge),
            Err(EvidenceError::TooLarge { .. })
        ));
    }
}
