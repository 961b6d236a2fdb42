//! Offline verification of Sigstore bundles (protobuf-specs bundle v0.1–v0.3).
//!
//! Pure (floor 1): the caller hands in the bundle, the artifact, the trusted
//! root and the current time; nothing here reads files, the network or the
//! clock. [`verify`] checks, and fails closed on anything it cannot check:
//!
//! - the signature over the artifact (or the DSSE envelope's PAE, with the
//!   in-toto subject digest matching the artifact), by the certificate's key or
//!   the caller's key;
//! - every Rekor entry: its body describes this bundle, its signed entry
//!   timestamp, its RFC 9162 inclusion proof and signed checkpoint, its
//!   integrated time not in the future;
//! - every RFC 3161 timestamp: signed by a trusted TSA, imprint = hash of the signature;
//! - the Fulcio certificate: chains to a trusted CA valid at each verified
//!   time, is valid at each, carries an SCT from a trusted CT log, and names
//!   the expected identity and OIDC issuer.

mod crypto;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod rekor;
pub mod time;
mod tlv;
mod trust;
mod tsa;
mod wire;
mod x509;

use base64::Engine as _;

pub use crate::crypto::{ArtifactHasher, PublicKey};
pub use crate::error::VerifyError;
pub use crate::rekor::VerifiedEntry;
pub use crate::trust::{Authority, Log, MAX_TRUSTED_ROOT_BYTES, TrustedRoot, Window};

use crate::crypto::sha256;
use crate::rekor::{Dsse, Signed, Verifier};
use crate::x509::Cert;

/// The largest bundle accepted.
pub const MAX_BUNDLE_BYTES: usize = 16 << 20;
/// The longest certificate chain followed.
pub const MAX_CHAIN: usize = 10;
const MAX_TLOG_ENTRIES: usize = 32;
const MAX_TIMESTAMPS: usize = 32;

const DSSE_INTOTO: &str = "application/vnd.in-toto+json";

/// What was signed.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum ArtifactInput<'a> {
    /// The artifact's bytes.
    Bytes(&'a [u8]),
    /// Only the artifact's SHA-256 (see [`ArtifactHasher`] to stream a large
    /// file). Enough for DSSE bundles and for message signatures by P-256 or
    /// RSA keys; other keys sign the artifact itself and give
    /// [`VerifyError::NeedsArtifactBytes`].
    Sha256([u8; 32]),
}

/// Whom the signature must come from.
#[derive(Debug, Clone)]
pub enum VerificationPolicy {
    /// A key-based bundle, signed by this public key (PEM or DER SubjectPublicKeyInfo).
    Key(Vec<u8>),
    /// A Fulcio certificate naming this identity (SAN URI or email) and OIDC issuer.
    Identity { san: String, issuer: String },
}

/// What kind of signature the bundle held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedContent {
    MessageSignature,
    Dsse { payload_type: String },
}

/// What a successful verification established.
#[derive(Debug, Clone)]
pub struct Verified {
    pub media_type: String,
    pub content: SignedContent,
    /// SHA-256 of the artifact.
    pub artifact_sha256: [u8; 32],
    /// The certificate's identities (empty for key-based bundles).
    pub identities: Vec<String>,
    pub issuer: Option<String>,
    pub tlog_entries: Vec<VerifiedEntry>,
    /// The `genTime`s of the verified RFC 3161 timestamps.
    pub timestamps: Vec<i64>,
    /// Every verified time the certificate was checked at (integrated times and timestamps).
    pub verified_times: Vec<i64>,
}

pub(crate) fn b64(s: &str, what: &'static str) -> Result<Vec<u8>, VerifyError> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    // Like Go's encoding/base64 (which Sigstore's reference verifier uses),
    // line breaks inside the text are ignored.
    // (Byte searches, memchr-fast: fields run to kilobytes, and a `char`
    // pattern search over them showed in profiles.)
    let bytes = s.as_bytes();
    let decoded = if bytes.contains(&b'\n') || bytes.contains(&b'\r') {
        let joined: String = s.chars().filter(|c| !matches!(c, '\n' | '\r')).collect();
        LENIENT.decode(joined.trim())
    } else {
        LENIENT.decode(s.trim())
    };
    decoded.map_err(|source| VerifyError::Base64 { what, source })
}

/// The bundle versions and whether each requires inclusion proofs.
fn bundle_version(media_type: &str) -> Result<u8, VerifyError> {
    match media_type {
        "application/vnd.dev.sigstore.bundle+json;version=0.1" => Ok(1),
        "application/vnd.dev.sigstore.bundle+json;version=0.2" => Ok(2),
        "application/vnd.dev.sigstore.bundle+json;version=0.3"
        | "application/vnd.dev.sigstore.bundle.v0.3+json" => Ok(3),
        other => Err(VerifyError::MediaType(other.chars().take(200).collect())),
    }
}

/// DSSE pre-authentication encoding (DSSE protocol.md, "Signature definition").
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Lowercase hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Verifies a Sigstore bundle offline. `now_unix` is the current time (Unix seconds).
pub fn verify(
    bundle_json: &[u8],
    artifact: ArtifactInput<'_>,
    policy: &VerificationPolicy,
    trusted_root: &TrustedRoot,
    now_unix: i64,
) -> Result<Verified, VerifyError> {
    if bundle_json.len() > MAX_BUNDLE_BYTES {
        return Err(VerifyError::TooLarge {
            what: "the bundle",
            size: bundle_json.len(),
            max: MAX_BUNDLE_BYTES,
        });
    }
    let bundle: wire::Bundle =
        serde_json::from_slice(bundle_json).map_err(|source| VerifyError::Json {
            what: "the bundle",
            source,
        })?;
    let version = bundle_version(&bundle.media_type)?;
    let material = &bundle.verification_material;
    let (artifact_bytes, artifact_sha256) = match artifact {
        ArtifactInput::Bytes(bytes) => (Some(bytes), sha256(bytes)),
        ArtifactInput::Sha256(digest) => (None, digest),
    };

    // The verification material, and the key it yields.
    let leaf_der = match (&material.certificate, &material.x509_certificate_chain) {
        (Some(c), None) => Some(b64(&c.raw_bytes, "the certificate")?),
        (None, Some(chain)) => {
            let first = chain.certificates.first().ok_or(VerifyError::Bundle {
                what: "the certificate chain is empty",
            })?;
            if chain.certificates.len() > MAX_CHAIN {
                return Err(VerifyError::Bundle {
                    what: "the certificate chain is too long",
                });
            }
            Some(b64(&first.raw_bytes, "the certificate")?)
        }
        (Some(_), Some(_)) => {
            return Err(VerifyError::Bundle {
                what: "both a certificate and a chain",
            });
        }
        (None, None) => None,
    };
    let (leaf, key, key_der) = match (&leaf_der, policy, &material.public_key) {
        (Some(der), VerificationPolicy::Identity { .. }, None) => {
            let leaf = Cert::from_der(der)?;
            let key = leaf.key.clone().ok_or(VerifyError::Unsupported {
                what: "the certificate's key",
            })?;
            (Some(leaf), key, None)
        }
        (None, VerificationPolicy::Key(given), Some(_)) => {
            let key = PublicKey::from_pem_or_der(given)?;
            let der = key.spki_der().to_vec();
            (None, key, Some(der))
        }
        (Some(_), VerificationPolicy::Key(_), _) => {
            return Err(VerifyError::Policy {
                what: "the bundle is signed with a certificate; verify it by identity and issuer",
            });
        }
        (None, VerificationPolicy::Identity { .. }, _) => {
            return Err(VerifyError::Policy {
                what: "the bundle is signed with a key; verify it with that key",
            });
        }
        (_, _, _) => {
            return Err(VerifyError::Bundle {
                what: "no usable verification material",
            });
        }
    };
    let verifier = match (&leaf_der, &key_der) {
        (Some(der), _) => Verifier::Certificate(der),
        (None, Some(der)) => Verifier::Key(der),
        (None, None) => {
            return Err(VerifyError::Bundle {
                what: "no verification material",
            });
        }
    };

    // The signature over the content.
    let (content, signature, message_sha256, dsse_parts) =
        match (&bundle.message_signature, &bundle.dsse_envelope) {
            (Some(ms), None) => {
                let sig = b64(&ms.signature, "the message signature")?;
                if let Some(d) = &ms.message_digest {
                    let digest = b64(&d.digest, "the message digest")?;
                    if d.algorithm != "SHA2_256" || digest != artifact_sha256 {
                        return Err(VerifyError::Digest);
                    }
                }
                let valid = match artifact_bytes {
                    Some(bytes) => key.verify_default(bytes, &sig),
                    None => key
                        .verify_prehashed_sha256(&artifact_sha256, &sig)
                        .ok_or(VerifyError::NeedsArtifactBytes)?,
                };
                if !valid {
                    return Err(VerifyError::Signature {
                        what: "the signature over the artifact is not valid for the key",
                    });
                }
                (SignedContent::MessageSignature, sig, artifact_sha256, None)
            }
            (None, Some(env)) => {
                let payload = b64(&env.payload, "the DSSE payload")?;
                let [only] = env.signatures.as_slice() else {
                    return Err(VerifyError::Dsse {
                        what: "the envelope must carry exactly one signature",
                    });
                };
                let sig = b64(&only.sig, "the DSSE signature")?;
                let pae = pae(&env.payload_type, &payload);
                if !key.verify_default(&pae, &sig) {
                    return Err(VerifyError::Signature {
                        what: "the DSSE signature is not valid for the key",
                    });
                }
                check_statement(&env.payload_type, &payload, &artifact_sha256)?;
                (
                    SignedContent::Dsse {
                        payload_type: env.payload_type.clone(),
                    },
                    sig.clone(),
                    sha256(&pae),
                    Some((payload, vec![sig], env.payload.as_str())),
                )
            }
            _ => {
                return Err(VerifyError::Bundle {
                    what: "exactly one of messageSignature and dsseEnvelope is required",
                });
            }
        };

    let signed = Signed {
        message_sha256,
        signature: &signature,
        dsse: dsse_parts.as_ref().map(|(payload, sigs, b64)| Dsse {
            payload,
            payload_b64: b64,
            signatures: sigs.clone(),
        }),
        verifier,
    };

    // Transparency log entries.
    if material.tlog_entries.is_empty() {
        return Err(VerifyError::Bundle {
            what: "no transparency log entry",
        });
    }
    if material.tlog_entries.len() > MAX_TLOG_ENTRIES {
        return Err(VerifyError::Bundle {
            what: "too many transparency log entries",
        });
    }
    let mut entries = Vec::new();
    for (i, e) in material.tlog_entries.iter().enumerate() {
        entries.push(rekor::verify_entry(
            i,
            e,
            &signed,
            trusted_root,
            now_unix,
            version >= 2,
        )?);
    }

    // RFC 3161 timestamps.
    let stamps = material
        .timestamp_verification_data
        .as_ref()
        .map(|t| t.rfc3161_timestamps.as_slice())
        .unwrap_or_default();
    if stamps.len() > MAX_TIMESTAMPS {
        return Err(VerifyError::Bundle {
            what: "too many timestamps",
        });
    }
    let mut timestamps = Vec::new();
    for (i, ts) in stamps.iter().enumerate() {
        let der = b64(&ts.signed_timestamp, "a signed timestamp")?;
        let t = tsa::verify_timestamp(i, &der, &signature, trusted_root)?;
        if t > now_unix {
            return Err(VerifyError::Timestamp {
                index: i,
                what: "the timestamp is in the future",
            });
        }
        timestamps.push(t);
    }
    // An entry without a signed time (Rekor v2) is checked against the log
    // key's validity at every trusted timestamp.
    for (i, e) in entries.iter().enumerate() {
        if e.signed_time.is_none() && timestamps.iter().any(|&t| !e.log_validity.contains(t)) {
            return Err(VerifyError::TlogEntry {
                entry: i,
                what: "the log's key was not valid at the timestamp",
            });
        }
    }
    let mut verified_times: Vec<i64> = entries.iter().filter_map(|e| e.signed_time).collect();
    verified_times.extend(&timestamps);

    // The certificate, at every verified time.
    let (identities, issuer) = match (&leaf, policy) {
        (Some(leaf), VerificationPolicy::Identity { san, issuer }) => {
            if verified_times.is_empty() {
                return Err(VerifyError::NoTime {
                    what: "neither a signed log entry time nor a trusted timestamp",
                });
            }
            x509::check_leaf(leaf)?;
            // The leaf's signature by a trusted certificate does not depend
            // on the time: check it once per issuer, not once per time.
            let mut leaf_signed_by = Vec::new();
            let mut issuer_cert = None;
            for &t in &verified_times {
                let path = certificate_path(leaf, trusted_root, t, &mut leaf_signed_by)?;
                issuer_cert = path.into_iter().nth(1);
            }
            let issuer_cert = issuer_cert.ok_or(VerifyError::Chain {
                what: "the certificate has no issuer",
            })?;
            x509::verify_embedded_sct(leaf, issuer_cert, &trusted_root.ctlogs)?;
            let identities = leaf.identities();
            if !identities.iter().any(|i| i == san) {
                return Err(VerifyError::Identity {
                    expected: san.clone(),
                    found: identities,
                });
            }
            let found = leaf.oidc_issuer();
            if found.as_deref() != Some(issuer.as_str()) {
                return Err(VerifyError::Issuer {
                    expected: issuer.clone(),
                    found,
                });
            }
            (identities, found)
        }
        _ => (Vec::new(), None),
    };

    Ok(Verified {
        media_type: bundle.media_type,
        content,
        artifact_sha256,
        identities,
        issuer,
        tlog_entries: entries,
        timestamps,
        verified_times,
    })
}

/// A path from `leaf` to a trusted CA whose window holds `time`. `memo`
/// records whether the leaf is signed by (authority, member), across calls.
fn certificate_path<'r>(
    leaf: &'r Cert,
    root: &'r TrustedRoot,
    time: i64,
    memo: &mut Vec<(usize, usize, bool)>,
) -> Result<Vec<&'r Cert>, VerifyError> {
    let mut last = VerifyError::Chain {
        what: "no certificate authority in the trusted root is valid at the signing time",
    };
    for (a, ca) in root
        .certificate_authorities
        .iter()
        .enumerate()
        .filter(|(_, ca)| ca.valid.contains(time))
    {
        let pool = ca.pool()?;
        let mut signed_by = |j: usize| {
            if let Some(&(_, _, ok)) = memo.iter().find(|&&(ma, mj, _)| ma == a && mj == j) {
                return ok;
            }
            let ok = pool
                .certs
                .get(j)
                .is_some_and(|issuer| leaf.signed_by(issuer));
            memo.push((a, j, ok));
            ok
        };
        match x509::build_path(leaf, &mut signed_by, pool, 0, time) {
            Ok(path) => return Ok(path),
            Err(e @ VerifyError::CertificateValidity { .. }) => return Err(e),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// An in-toto statement in the envelope must name the artifact's SHA-256.
fn check_statement(
    payload_type: &str,
    payload: &[u8],
    artifact_sha256: &[u8; 32],
) -> Result<(), VerifyError> {
    if payload_type != DSSE_INTOTO {
        return Err(VerifyError::Dsse {
            what: "the payload is not an in-toto statement, so it names no artifact",
        });
    }
    let st: wire::Statement =
        serde_json::from_slice(payload).map_err(|source| VerifyError::Json {
            what: "the in-toto statement",
            source,
        })?;
    if !st.type_.starts_with("https://in-toto.io/Statement/") {
        return Err(VerifyError::Dsse {
            what: "the payload's _type is not an in-toto Statement",
        });
    }
    let want = hex(artifact_sha256);
    if st.subject.iter().any(|s| {
        s.digest
            .get("sha256")
            .is_some_and(|d| d.eq_ignore_ascii_case(&want))
    }) {
        Ok(())
    } else {
        Err(VerifyError::Digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // DSSE protocol.md: PAE("http://example.com/HelloWorld", "hello world").
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex(&[]), "");
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        let all: Vec<u8> = (0..=255).collect();
        let expected: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&all), expected);
    }

    #[test]
    fn media_types() {
        for (m, v) in [
            ("application/vnd.dev.sigstore.bundle+json;version=0.1", 1),
            ("application/vnd.dev.sigstore.bundle+json;version=0.2", 2),
            ("application/vnd.dev.sigstore.bundle+json;version=0.3", 3),
            ("application/vnd.dev.sigstore.bundle.v0.3+json", 3),
        ] {
            assert_eq!(bundle_version(m).ok(), Some(v), "{m}");
        }
        for m in [
            "",
            "application/vnd.dev.sigstore.bundle+json;version=0.4",
            "application/vnd.dev.sigstore.bundle.v0.4+json",
            "application/json",
        ] {
            assert!(
                matches!(bundle_version(m), Err(VerifyError::MediaType(_))),
                "{m}"
            );
        }
    }

    #[test]
    fn base64_ignores_line_breaks_and_padding_but_not_junk() {
        assert_eq!(b64("aGVs\nbG8=", "t").ok(), Some(b"hello".to_vec()));
        assert_eq!(b64("aGVsbG8", "t").ok(), Some(b"hello".to_vec()));
        assert!(b64("aGVs bG8=", "t").is_err());
        assert!(b64("aGVsbG8=!", "t").is_err());
    }

    #[test]
    fn statements_must_name_the_artifact() {
        let digest = sha256(b"artifact");
        let st = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"x","digest":{{"sha256":"{}"}}}}]}}"#,
            hex(&digest)
        );
        assert!(check_statement(DSSE_INTOTO, st.as_bytes(), &digest).is_ok());
        assert!(matches!(
            check_statement(DSSE_INTOTO, st.as_bytes(), &sha256(b"other")),
            Err(VerifyError::Digest)
        ));
        assert!(matches!(
            check_statement("application/json", st.as_bytes(), &digest),
            Err(VerifyError::Dsse { .. })
        ));
        let no_subject = r#"{"_type":"https://in-toto.io/Statement/v1","subject":[]}"#;
        assert!(check_statement(DSSE_INTOTO, no_subject.as_bytes(), &digest).is_err());
        let not_intoto = r#"{"_type":"something","subject":[]}"#;
        assert!(check_statement(DSSE_INTOTO, not_intoto.as_bytes(), &digest).is_err());
    }

    #[test]
    fn garbage_never_verifies() {
        let root = TrustedRoot::empty();
        let policy = VerificationPolicy::Key(Vec::new());
        for input in [
            &b""[..],
            b"null",
            b"{}",
            b"[]",
            b"{\"mediaType\":1}",
            &[0xff, 0xfe],
        ] {
            assert!(verify(input, ArtifactInput::Bytes(b"a"), &policy, &root, 0).is_err());
        }
    }
}
