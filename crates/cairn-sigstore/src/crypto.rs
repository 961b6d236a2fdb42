//! Public keys and signature checks, all through `aws-lc-rs`: ECDSA P-256/P-384
//! (ASN.1 signatures), Ed25519, RSA PKCS#1 v1.5 and PSS; SHA-2 digests.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, ParsedPublicKey, UnparsedPublicKey, VerificationAlgorithm};
use der::Decode;
use der::asn1::ObjectIdentifier;
use x509_cert::spki::SubjectPublicKeyInfoRef;

use crate::error::VerifyError;

// Object identifiers are compared as parsed values, never as formatted text
// (formatting one is an allocation per comparison on every verification).
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const OID_ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const OID_RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_RSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const OID_RSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const OID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// A SHA-2 hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    pub(crate) fn from_oid(oid: &ObjectIdentifier) -> Option<HashAlg> {
        match *oid {
            OID_SHA256 => Some(HashAlg::Sha256),
            OID_SHA384 => Some(HashAlg::Sha384),
            OID_SHA512 => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            HashAlg::Sha256 => &digest::SHA256,
            HashAlg::Sha384 => &digest::SHA384,
            HashAlg::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }
}

/// SHA-256 of an artifact fed in pieces, so a caller can stream a large file.
#[derive(Clone)]
pub struct ArtifactHasher(digest::Context);

impl std::fmt::Debug for ArtifactHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArtifactHasher(SHA-256)")
    }
}

impl Default for ArtifactHasher {
    fn default() -> Self {
        ArtifactHasher(digest::Context::new(&digest::SHA256))
    }
}

impl ArtifactHasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.finish().as_ref());
        out
    }
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    P256,
    P384,
    Ed25519,
    Rsa,
}

impl KeyKind {
    /// The hash this kind of key conventionally signs with (see [`PublicKey::verify_default`]).
    fn default_hash(self) -> HashAlg {
        match self {
            KeyKind::P384 => HashAlg::Sha384,
            KeyKind::P256 | KeyKind::Ed25519 | KeyKind::Rsa => HashAlg::Sha256,
        }
    }
}

/// The aws-lc algorithm for a key kind, hash and padding; `None` when the
/// combination is not one we accept.
fn algorithm(
    kind: KeyKind,
    hash: HashAlg,
    pss: bool,
) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match (kind, hash, pss) {
        (KeyKind::P256, HashAlg::Sha256, _) => &signature::ECDSA_P256_SHA256_ASN1,
        (KeyKind::P256, HashAlg::Sha384, _) => &signature::ECDSA_P256_SHA384_ASN1,
        (KeyKind::P384, HashAlg::Sha256, _) => &signature::ECDSA_P384_SHA256_ASN1,
        (KeyKind::P384, HashAlg::Sha384, _) => &signature::ECDSA_P384_SHA384_ASN1,
        (KeyKind::Ed25519, _, _) => &signature::ED25519,
        (KeyKind::Rsa, HashAlg::Sha256, false) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (KeyKind::Rsa, HashAlg::Sha384, false) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (KeyKind::Rsa, HashAlg::Sha512, false) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (KeyKind::Rsa, HashAlg::Sha256, true) => &signature::RSA_PSS_2048_8192_SHA256,
        (KeyKind::Rsa, HashAlg::Sha384, true) => &signature::RSA_PSS_2048_8192_SHA384,
        (KeyKind::Rsa, HashAlg::Sha512, true) => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

/// A verification key parsed from a DER SubjectPublicKeyInfo.
#[derive(Debug, Clone)]
pub struct PublicKey {
    kind: KeyKind,
    /// The key's bits: an EC point, 32 Ed25519 bytes, or a PKCS#1 RSAPublicKey.
    raw: Vec<u8>,
    spki_der: Vec<u8>,
    /// The key loaded into aws-lc once, for its conventional algorithm (most
    /// signatures a key checks use it: trusted log and CA keys verify one per
    /// bundle). `None` when aws-lc rejects the bits; every check then fails,
    /// as it would when parsing them afresh.
    prepared: Option<ParsedPublicKey>,
}

impl PublicKey {
    fn new(kind: KeyKind, raw: Vec<u8>, spki_der: Vec<u8>) -> PublicKey {
        let prepared = algorithm(kind, kind.default_hash(), false)
            .and_then(|alg| ParsedPublicKey::new(alg, &raw).ok());
        PublicKey {
            kind,
            raw,
            spki_der,
            prepared,
        }
    }

    /// Parses a DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
    pub fn from_spki_der(der_bytes: &[u8]) -> Result<PublicKey, VerifyError> {
        let spki =
            SubjectPublicKeyInfoRef::from_der(der_bytes).map_err(|source| VerifyError::X509 {
                what: "public key",
                source,
            })?;
        let kind = match spki.algorithm.oid {
            OID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
                match curve {
                    Some(OID_P256) => KeyKind::P256,
                    Some(OID_P384) => KeyKind::P384,
                    _ => {
                        return Err(VerifyError::Unsupported {
                            what: "elliptic curve (only P-256 and P-384)",
                        });
                    }
                }
            }
            OID_ED25519 => KeyKind::Ed25519,
            OID_RSA => KeyKind::Rsa,
            _ => {
                return Err(VerifyError::Unsupported {
                    what: "public key algorithm",
                });
            }
        };
        let raw = spki
            .subject_public_key
            .as_bytes()
            .ok_or(VerifyError::Der {
                what: "public key bits",
            })?
            .to_vec();
        Ok(PublicKey::new(kind, raw, der_bytes.to_vec()))
    }

    /// An RSA key given as a bare PKCS#1 RSAPublicKey (trusted root `PKCS1_RSA_*`).
    pub fn from_pkcs1_rsa(der_bytes: &[u8]) -> Result<PublicKey, VerifyError> {
        let (seq, rest) = crate::tlv::expect(der_bytes, crate::tlv::SEQUENCE, "an RSA public key")?;
        if !rest.is_empty() || crate::tlv::children(seq.content, 2, "an RSA public key")?.len() != 2
        {
            return Err(VerifyError::Der {
                what: "an RSA public key",
            });
        }
        Ok(PublicKey::new(
            KeyKind::Rsa,
            der_bytes.to_vec(),
            der_bytes.to_vec(),
        ))
    }

    /// Parses a PEM `PUBLIC KEY` block, or DER.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<PublicKey, VerifyError> {
        match pem_block(bytes, "PUBLIC KEY")? {
            Some(der_bytes) => PublicKey::from_spki_der(&der_bytes),
            None => PublicKey::from_spki_der(bytes),
        }
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// Verifies `sig` over `msg` with the hash this key conventionally uses
    /// (P-256: SHA-256, P-384: SHA-384, RSA: PKCS#1 v1.5 SHA-256, Ed25519).
    pub(crate) fn verify_default(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.verify_with(self.kind.default_hash(), false, msg, sig)
    }

    /// Verifies a signature over a message known only by its SHA-256, for keys
    /// that sign with SHA-256 (ECDSA P-256, RSA PKCS#1 v1.5). `None`: this key
    /// needs the message itself (Ed25519 signs the message, P-384 hashes with SHA-384).
    pub(crate) fn verify_prehashed_sha256(&self, sha256: &[u8; 32], sig: &[u8]) -> Option<bool> {
        // Both kinds that qualify sign with SHA-256 by default, so the
        // prepared key is the one for this algorithm.
        let alg: &dyn VerificationAlgorithm = match self.kind {
            KeyKind::P256 => &signature::ECDSA_P256_SHA256_ASN1,
            KeyKind::Rsa => &signature::RSA_PKCS1_2048_8192_SHA256,
            KeyKind::P384 | KeyKind::Ed25519 => return None,
        };
        let digest = digest::Digest::import_less_safe(sha256, &digest::SHA256).ok()?;
        Some(match &self.prepared {
            Some(key) => key.verify_digest_sig(&digest, sig).is_ok(),
            None => UnparsedPublicKey::new(alg, &self.raw)
                .verify_digest(&digest, sig)
                .is_ok(),
        })
    }

    /// Verifies with an explicit hash; `pss` selects RSA-PSS over PKCS#1 v1.5.
    pub(crate) fn verify_with(&self, hash: HashAlg, pss: bool, msg: &[u8], sig: &[u8]) -> bool {
        let Some(alg) = algorithm(self.kind, hash, pss) else {
            return false;
        };
        let conventional =
            matches!(self.kind, KeyKind::Ed25519) || (hash == self.kind.default_hash() && !pss);
        match &self.prepared {
            Some(key) if conventional => key.verify_sig(msg, sig).is_ok(),
            _ => UnparsedPublicKey::new(alg, &self.raw)
                .verify(msg, sig)
                .is_ok(),
        }
    }

    /// Verifies a signature made with the X.509 / CMS signature algorithm `oid`
    /// (`digest` is the CMS digest algorithm, used when `oid` names only the key type).
    pub(crate) fn verify_oid(
        &self,
        oid: &ObjectIdentifier,
        digest: Option<HashAlg>,
        msg: &[u8],
        sig: &[u8],
    ) -> bool {
        let (hash, pss) = match *oid {
            OID_ECDSA_SHA256 | OID_RSA_SHA256 => (HashAlg::Sha256, false),
            OID_ECDSA_SHA384 | OID_RSA_SHA384 => (HashAlg::Sha384, false),
            OID_ECDSA_SHA512 | OID_RSA_SHA512 => (HashAlg::Sha512, false),
            OID_ED25519 => (HashAlg::Sha512, false),
            OID_EC_PUBLIC_KEY | OID_RSA => match digest {
                Some(h) => (h, false),
                None => return false,
            },
            _ => return false,
        };
        if (*oid == OID_ED25519) != (self.kind == KeyKind::Ed25519) {
            return false;
        }
        self.verify_with(hash, pss, msg, sig)
    }
}

/// The DER inside the first PEM block labelled `label`, or `None` when the
/// input holds no PEM at all.
pub(crate) fn pem_block(bytes: &[u8], label: &str) -> Result<Option<Vec<u8>>, VerifyError> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(None);
    };
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let Some(start) = text.find(&begin) else {
        if text.contains("-----BEGIN") {
            return Err(VerifyError::Bundle {
                what: "PEM block of an unexpected type",
            });
        }
        return Ok(None);
    };
    let body = &text[start + begin.len()..];
    let stop = body.find(&end).ok_or(VerifyError::Bundle {
        what: "unterminated PEM block",
    })?;
    let b64: String = body[..stop].split_whitespace().collect();
    crate::b64(&b64, "PEM body").map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_keys() {
        assert!(PublicKey::from_spki_der(b"").is_err());
        assert!(PublicKey::from_spki_der(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
        assert!(
            PublicKey::from_pem_or_der(
                b"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"
            )
            .is_err()
        );
        assert!(PublicKey::from_pem_or_der(b"-----BEGIN PUBLIC KEY-----\nAAAA").is_err());
    }

    #[test]
    fn ed25519_key_verifies_its_own_signature_only() {
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("keygen");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
        let mut spki = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        spki.extend_from_slice(pair.public_key().as_ref());
        let key = PublicKey::from_spki_der(&spki).expect("parses");
        let sig = pair.sign(b"hello");
        assert!(key.verify_default(b"hello", sig.as_ref()));
        assert!(!key.verify_default(b"hellp", sig.as_ref()));
        // Ed25519 signs the message, so a digest alone cannot be checked.
        assert_eq!(
            key.verify_prehashed_sha256(&sha256(b"hello"), sig.as_ref()),
            None
        );
    }

    #[test]
    fn p256_verifies_from_the_message_or_its_digest() {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("keygen");
        let spki = pair.public_key().as_der().expect("spki");
        let key = PublicKey::from_spki_der(spki.as_ref()).expect("parses");
        let sig = pair.sign(&rng, b"artifact").expect("signs");
        assert!(key.verify_default(b"artifact", sig.as_ref()));
        assert_eq!(
            key.verify_prehashed_sha256(&sha256(b"artifact"), sig.as_ref()),
            Some(true)
        );
        assert_eq!(
            key.verify_prehashed_sha256(&sha256(b"artifacT"), sig.as_ref()),
            Some(false)
        );
    }
}
