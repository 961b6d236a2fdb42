//! Signing and verifying keys: Ed25519 (RFC 8032) and ECDSA P-256 with SHA-256
//! (FIPS 186-5, ASN.1 DER signatures, as Sigstore and DSSE use them), through
//! AWS-LC. Private keys travel as unencrypted PKCS#8 (RFC 5958) PEM, public keys as
//! SubjectPublicKeyInfo (RFC 5280 §4.1.2.7; RFC 8410 for Ed25519, RFC 5480 for
//! P-256) PEM. A key id is the SHA-256 of the SPKI DER in lowercase hex.
//!
//! A key may also live in a hardware token ([`TokenSigner`], e.g. a PKCS#11
//! HSM): the [`SigningKey`] then holds only the public half and asks the token
//! for each ECDSA P-256 signature over a SHA-256 digest computed here.
//!
//! Secret material never prints: `Debug` and `Display` of [`SigningKey`] and
//! [`SecretPem`] show the algorithm and key id only.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair, UnparsedPublicKey,
};

#[cfg(test)]
use crate::digest::hex;
use crate::digest::sha256;
use crate::{EvidenceError, pem};

const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";
const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";

/// SPKI DER prefix of an Ed25519 key (RFC 8410 §4): SEQUENCE { SEQUENCE { OID
/// 1.3.101.112 }, BIT STRING (32 bytes) }.
const ED25519_SPKI_PREFIX: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// SPKI DER prefix of an uncompressed P-256 key (RFC 5480 §2): id-ecPublicKey with
/// the namedCurve secp256r1, BIT STRING (65 bytes: 0x04 || X || Y).
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// RFC 5915 ECPrivateKey for P-256 up to the 32-byte scalar, and after it.
const P256_EC_PRIVATE_KEY_HEAD: &[u8] = &[0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20];
const P256_EC_PRIVATE_KEY_TAIL: &[u8] = &[
    0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
];

/// A signature algorithm cairn signs evidence with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Ed25519 (RFC 8032), pure (no pre-hash).
    Ed25519,
    /// ECDSA over P-256 with SHA-256, DER-encoded signatures.
    EcdsaP256Sha256,
}

impl Algorithm {
    /// The short name used on the command line: `ed25519` or `p256`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256Sha256 => "p256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = EvidenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ed25519" => Ok(Algorithm::Ed25519),
            "p256" | "ecdsa-p256-sha256" => Ok(Algorithm::EcdsaP256Sha256),
            other => Err(EvidenceError::UnknownAlgorithm(
                other.chars().take(40).collect(),
            )),
        }
    }
}

/// A key id: the SHA-256 of the key's SubjectPublicKeyInfo DER, lowercase hex.
/// It is what DSSE `keyid` and the Sigstore bundle's `publicKey.hint` carry.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    fn of_spki(spki_der: &[u8]) -> Self {
        KeyId(sha256(spki_der).hex())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

/// PKCS#8 PEM text of a private key. It prints as `SecretPem(<redacted>)`; only
/// [`SecretPem::expose`] gives the text, for writing it to a protected file.
pub struct SecretPem(String);

impl SecretPem {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretPem(<redacted>)")
    }
}

enum Secret {
    Ed25519(Ed25519KeyPair),
    P256(EcdsaKeyPair),
    /// An ECDSA P-256 key that never leaves its token.
    Token(Box<dyn TokenSigner>),
}

/// A P-256 private key held outside this process (a PKCS#11 token): the second
/// place a [`SigningKey`]'s secret can live, beside memory. The token signs a
/// SHA-256 digest computed by the caller (PKCS#11 `CKM_ECDSA`) and answers with
/// the raw `r || s` (32 bytes each); [`SigningKey::sign`] turns that into the
/// DER signature DSSE and Sigstore verifiers expect, and checks it against the
/// public key before handing it out, so a token answering with another key's
/// signature signs nothing.
pub trait TokenSigner: Send + Sync {
    /// The raw ECDSA signature `r || s` of `digest` (a SHA-256).
    fn sign_p256_digest(&self, digest: &[u8; 32]) -> Result<[u8; 64], EvidenceError>;
    /// Where the key is, for people (e.g. `PKCS#11 token "t", key "k"`); never a secret.
    fn location(&self) -> String;
}

/// A private key that signs evidence, with its public half.
pub struct SigningKey {
    secret: Secret,
    public: VerifyingKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.public.algorithm)
            .field("key_id", &self.public.key_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl fmt::Display for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} signing key {}",
            self.public.algorithm, self.public.key_id
        )
    }
}

impl SigningKey {
    /// A new key from AWS-LC's random generator (its CTR-DRBG seeded by the
    /// operating system). This is the one place this crate draws randomness it was
    /// not handed; [`SigningKey::from_secret_bytes`] is the pure alternative.
    pub fn generate(algorithm: Algorithm) -> Result<Self, EvidenceError> {
        let secret = match algorithm {
            Algorithm::Ed25519 => {
                Secret::Ed25519(
                    Ed25519KeyPair::generate().map_err(|_| EvidenceError::Crypto {
                        operation: "generate an Ed25519 key",
                    })?,
                )
            }
            Algorithm::EcdsaP256Sha256 => Secret::P256(
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).map_err(|_| {
                    EvidenceError::Crypto {
                        operation: "generate a P-256 key",
                    }
                })?,
            ),
        };
        Ok(Self::from_secret(secret))
    }

    /// A key from 32 caller-supplied secret bytes: the Ed25519 seed (RFC 8032
    /// §5.1.5), or the P-256 private scalar, big-endian (must be in [1, n-1]).
    pub fn from_secret_bytes(
        algorithm: Algorithm,
        bytes: &[u8; 32],
    ) -> Result<Self, EvidenceError> {
        let secret = match algorithm {
            Algorithm::Ed25519 => Secret::Ed25519(
                Ed25519KeyPair::from_seed_unchecked(bytes).map_err(|source| {
                    EvidenceError::KeyRejected {
                        algorithm: "Ed25519",
                        source,
                    }
                })?,
            ),
            Algorithm::EcdsaP256Sha256 => {
                let mut der = Vec::with_capacity(49);
                der.extend_from_slice(P256_EC_PRIVATE_KEY_HEAD);
                der.extend_from_slice(bytes);
                der.extend_from_slice(P256_EC_PRIVATE_KEY_TAIL);
                Secret::P256(
                    EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_ASN1_SIGNING, &der)
                        .map_err(|source| EvidenceError::KeyRejected {
                            algorithm: "ECDSA P-256",
                            source,
                        })?,
                )
            }
        };
        Ok(Self::from_secret(secret))
    }

    /// An unencrypted PKCS#8 (v1 or v2) private key, DER.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, EvidenceError> {
        if let Ok(pair) = Ed25519KeyPair::from_pkcs8(der) {
            return Ok(Self::from_secret(Secret::Ed25519(pair)));
        }
        if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der) {
            return Ok(Self::from_secret(Secret::P256(pair)));
        }
        Err(EvidenceError::UnsupportedPrivateKey)
    }

    /// A `-----BEGIN PRIVATE KEY-----` PEM block.
    pub fn from_pkcs8_pem(text: &str) -> Result<Self, EvidenceError> {
        Self::from_pkcs8_der(&pem::decode(PRIVATE_KEY_LABEL, text)?)
    }

    /// The private key as PKCS#8 v1 PEM (`-----BEGIN PRIVATE KEY-----`), the form
    /// `openssl genpkey` writes and `openssl pkey`/Node's `crypto` read.
    pub fn to_pkcs8_pem(&self) -> Result<SecretPem, EvidenceError> {
        let der = match &self.secret {
            Secret::Ed25519(pair) => pair.to_pkcs8v1(),
            Secret::P256(pair) => pair.to_pkcs8v1(),
            Secret::Token(_) => {
                return Err(EvidenceError::Token(
                    "a key held in a token cannot be exported".to_owned(),
                ));
            }
        }
        .map_err(|_| EvidenceError::Crypto {
            operation: "encode the private key as PKCS#8",
        })?;
        Ok(SecretPem(pem::encode(PRIVATE_KEY_LABEL, der.as_ref())))
    }

    pub fn algorithm(&self) -> Algorithm {
        self.public.algorithm
    }

    pub fn key_id(&self) -> &KeyId {
        &self.public.key_id
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// Signs `message`: Ed25519 deterministically; ECDSA with a nonce from AWS-LC's
    /// generator (ECDSA needs one; it cannot be handed in through AWS-LC's API).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, EvidenceError> {
        match &self.secret {
            Secret::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Secret::P256(pair) => {
                // aws-lc-rs ignores this argument and uses AWS-LC's own generator.
                let rng = aws_lc_rs::rand::SystemRandom::new();
                pair.sign(&rng, message)
                    .map(|sig| sig.as_ref().to_vec())
                    .map_err(|_| EvidenceError::Crypto {
                        operation: "sign with ECDSA P-256",
                    })
            }
            Secret::Token(token) => {
                let raw = token.sign_p256_digest(sha256(message).as_bytes())?;
                let der = ecdsa_raw_to_der(&raw);
                // The token must have signed with the key it was named by.
                self.public.verify(message, &der).map_err(|_| {
                    EvidenceError::Token(format!(
                        "{} answered with a signature that does not verify with its public key {}",
                        token.location(),
                        self.public.key_id
                    ))
                })?;
                Ok(der)
            }
        }
    }

    /// A key held in a token: `public` must be its ECDSA P-256 public half.
    pub fn in_token(
        public: VerifyingKey,
        token: Box<dyn TokenSigner>,
    ) -> Result<Self, EvidenceError> {
        if public.algorithm != Algorithm::EcdsaP256Sha256 {
            return Err(EvidenceError::Token(format!(
                "{} holds a {} key; cairn signs with ECDSA P-256 keys in tokens",
                token.location(),
                public.algorithm
            )));
        }
        Ok(SigningKey {
            secret: Secret::Token(token),
            public,
        })
    }

    /// Where the private key is held: `None` in memory (a key file), or the
    /// token's description.
    pub fn token_location(&self) -> Option<String> {
        match &self.secret {
            Secret::Token(token) => Some(token.location()),
            _ => None,
        }
    }

    fn from_secret(secret: Secret) -> Self {
        let (algorithm, prefix, raw) = match &secret {
            Secret::Ed25519(pair) => (
                Algorithm::Ed25519,
                ED25519_SPKI_PREFIX,
                pair.public_key().as_ref().to_vec(),
            ),
            Secret::P256(pair) => (
                Algorithm::EcdsaP256Sha256,
                P256_SPKI_PREFIX,
                pair.public_key().as_ref().to_vec(),
            ),
            Secret::Token(_) => unreachable!("token keys are made by SigningKey::in_token"),
        };
        let mut spki = prefix.to_vec();
        spki.extend_from_slice(&raw);
        let public = VerifyingKey {
            algorithm,
            key_id: KeyId::of_spki(&spki),
            raw_offset: prefix.len(),
            spki,
        };
        SigningKey { secret, public }
    }
}

/// The ASN.1 DER `ECDSA-Sig-Value` (RFC 5480 §2.2: SEQUENCE { r INTEGER, s
/// INTEGER }) of a raw P-256 signature `r || s`.
fn ecdsa_raw_to_der(raw: &[u8; 64]) -> Vec<u8> {
    fn integer(out: &mut Vec<u8>, bytes: &[u8]) {
        let start = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        let bytes = &bytes[start..];
        let pad = bytes[0] & 0x80 != 0;
        out.push(0x02);
        out.push((bytes.len() + usize::from(pad)) as u8);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(bytes);
    }
    let mut body = Vec::with_capacity(72);
    integer(&mut body, &raw[..32]);
    integer(&mut body, &raw[32..]);
    let mut der = Vec::with_capacity(body.len() + 2);
    der.push(0x30);
    der.push(body.len() as u8);
    der.extend_from_slice(&body);
    der
}

/// A public key that verifies evidence signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    algorithm: Algorithm,
    spki: Vec<u8>,
    /// Where the raw key (the BIT STRING contents) starts in `spki`.
    raw_offset: usize,
    key_id: KeyId,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl fmt::Display for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} public key {}", self.algorithm, self.key_id)
    }
}

impl VerifyingKey {
    /// A SubjectPublicKeyInfo DER: Ed25519, or P-256 with an uncompressed point.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, EvidenceError> {
        let (algorithm, prefix, raw_len) = if der.starts_with(ED25519_SPKI_PREFIX) {
            (Algorithm::Ed25519, ED25519_SPKI_PREFIX, 32)
        } else if der.starts_with(P256_SPKI_PREFIX) {
            (Algorithm::EcdsaP256Sha256, P256_SPKI_PREFIX, 65)
        } else {
            return Err(EvidenceError::UnsupportedPublicKey);
        };
        if der.len() != prefix.len() + raw_len {
            return Err(EvidenceError::UnsupportedPublicKey);
        }
        let key = VerifyingKey {
            algorithm,
            spki: der.to_vec(),
            raw_offset: prefix.len(),
            key_id: KeyId::of_spki(der),
        };
        if algorithm == Algorithm::EcdsaP256Sha256 {
            // Reject points not on the curve now rather than at first use.
            signature::ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.raw())
                .map_err(|_| EvidenceError::UnsupportedPublicKey)?;
        }
        Ok(key)
    }

    /// A P-256 public key from its uncompressed point (`0x04 || X || Y`), as a
    /// PKCS#11 token's `CKA_EC_POINT` holds it.
    pub fn from_p256_point(point: &[u8]) -> Result<Self, EvidenceError> {
        let mut der = P256_SPKI_PREFIX.to_vec();
        der.extend_from_slice(point);
        Self::from_spki_der(&der)
    }

    /// A `-----BEGIN PUBLIC KEY-----` PEM block.
    pub fn from_pem(text: &str) -> Result<Self, EvidenceError> {
        Self::from_spki_der(&pem::decode(PUBLIC_KEY_LABEL, text)?)
    }

    pub fn to_pem(&self) -> String {
        pem::encode(PUBLIC_KEY_LABEL, &self.spki)
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// `Ok` if `signature` is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), EvidenceError> {
        let alg: &'static dyn signature::VerificationAlgorithm = match self.algorithm {
            Algorithm::Ed25519 => &ED25519,
            Algorithm::EcdsaP256Sha256 => &ECDSA_P256_SHA256_ASN1,
        };
        UnparsedPublicKey::new(alg, self.raw())
            .verify(message, signature)
            .map_err(|_| EvidenceError::NoValidSignature {
                keyid: self.key_id.to_string(),
            })
    }

    fn raw(&self) -> &[u8] {
        &self.spki[self.raw_offset..]
    }
}

impl SigningKey {
    /// The key's public half as SPKI PEM; a shorthand for the CLI.
    pub fn public_key_pem(&self) -> String {
        self.public.to_pem()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALGORITHMS: [Algorithm; 2] = [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256];

    #[test]
    fn rfc8032_test_1_seed_gives_the_published_public_key() {
        // RFC 8032 §7.1, TEST 1.
        let seed: [u8; 32] = [
            0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec,
            0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03,
            0x1c, 0xae, 0x7f, 0x60,
        ];
        let key = SigningKey::from_secret_bytes(Algorithm::Ed25519, &seed).expect("valid seed");
        assert_eq!(
            hex(key.verifying_key().raw()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            hex(&key.sign(b"").expect("signs")),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn pkcs8_pem_round_trips_and_keeps_the_key_id() {
        for alg in ALGORITHMS {
            let key = SigningKey::generate(alg).expect("generates");
            let pem = key.to_pkcs8_pem().expect("encodes");
            assert!(pem.expose().starts_with("-----BEGIN PRIVATE KEY-----\n"));
            let back = SigningKey::from_pkcs8_pem(pem.expose()).expect("loads");
            assert_eq!(back.algorithm(), alg);
            assert_eq!(back.key_id(), key.key_id());
            let sig = back.sign(b"message").expect("signs");
            key.verifying_key()
                .verify(b"message", &sig)
                .expect("verifies");
        }
    }

    #[test]
    fn caller_supplied_bytes_are_deterministic() {
        for alg in ALGORITHMS {
            let a = SigningKey::from_secret_bytes(alg, &[3; 32]).expect("valid");
            let b = SigningKey::from_secret_bytes(alg, &[3; 32]).expect("valid");
            assert_eq!(a.key_id(), b.key_id());
            assert_eq!(a.verifying_key(), b.verifying_key());
        }
        // Zero is not a P-256 scalar; nor is anything >= the group order.
        for bad in [[0u8; 32], [0xff; 32]] {
            assert!(SigningKey::from_secret_bytes(Algorithm::EcdsaP256Sha256, &bad).is_err());
        }
    }

    #[test]
    fn public_key_pem_round_trips_and_key_id_is_sha256_of_spki() {
        for alg in ALGORITHMS {
            let key = SigningKey::from_secret_bytes(alg, &[9; 32]).expect("valid");
            let public = VerifyingKey::from_pem(&key.public_key_pem()).expect("parses");
            assert_eq!(&public, key.verifying_key());
            assert_eq!(public.algorithm(), alg);
            assert_eq!(public.key_id().as_str(), sha256(public.spki_der()).hex());
        }
    }

    #[test]
    fn spki_matches_what_aws_lc_encodes() {
        use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
        let ed = Ed25519KeyPair::from_seed_unchecked(&[5; 32]).expect("seed");
        let ours = SigningKey::from_secret_bytes(Algorithm::Ed25519, &[5; 32]).expect("seed");
        let theirs: PublicKeyX509Der = ed.public_key().as_der().expect("der");
        assert_eq!(ours.verifying_key().spki_der(), theirs.as_ref());

        let ours = SigningKey::generate(Algorithm::EcdsaP256Sha256).expect("generates");
        let Secret::P256(pair) = &ours.secret else {
            panic!("a P-256 key holds a P-256 secret")
        };
        let theirs: PublicKeyX509Der = pair.public_key().as_der().expect("der");
        assert_eq!(ours.verifying_key().spki_der(), theirs.as_ref());
    }

    #[test]
    fn verify_rejects_wrong_message_signature_and_key() {
        for alg in ALGORITHMS {
            let key = SigningKey::from_secret_bytes(alg, &[1; 32]).expect("valid");
            let other = SigningKey::from_secret_bytes(alg, &[2; 32]).expect("valid");
            let sig = key.sign(b"message").expect("signs");
            let public = key.verifying_key();
            public.verify(b"message", &sig).expect("verifies");
            assert!(public.verify(b"messagf", &sig).is_err());
            let mut flipped = sig.clone();
            let last = flipped.len() - 1;
            flipped[last] ^= 1;
            assert!(public.verify(b"message", &flipped).is_err());
            assert!(other.verifying_key().verify(b"message", &sig).is_err());
        }
    }

    #[test]
    fn refuses_unsupported_and_malformed_keys() {
        let ed = SigningKey::from_secret_bytes(Algorithm::Ed25519, &[1; 32]).expect("valid");
        let p = SigningKey::from_secret_bytes(Algorithm::EcdsaP256Sha256, &[1; 32]).expect("ok");
        let mut long = ed.verifying_key().spki_der().to_vec();
        long.push(0);
        let mut off_curve = p.verifying_key().spki_der().to_vec();
        let last = off_curve.len() - 1;
        off_curve[last] ^= 1;
        let cases: [(&str, &[u8]); 4] = [
            ("empty", &[]),
            ("trailing byte", &long),
            ("truncated", &ed.verifying_key().spki_der()[..40]),
            ("point off the curve", &off_curve),
        ];
        for (name, der) in cases {
            assert!(VerifyingKey::from_spki_der(der).is_err(), "{name}");
        }
        assert!(matches!(
            SigningKey::from_pkcs8_der(b"\x30\x00"),
            Err(EvidenceError::UnsupportedPrivateKey)
        ));
        assert!(SigningKey::from_pkcs8_pem(&ed.public_key_pem()).is_err());
        assert!(VerifyingKey::from_pem(ed.to_pkcs8_pem().expect("pem").expose()).is_err());
    }

    #[test]
    fn debug_and_display_never_show_secret_material() {
        for alg in ALGORITHMS {
            let key = SigningKey::from_secret_bytes(alg, &[0x5a; 32]).expect("valid");
            let pem = key.to_pkcs8_pem().expect("pem");
            let der_b64: String = pem
                .expose()
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect();
            let secret_hex = hex(&[0x5a; 32]);
            for shown in [
                format!("{key:?}"),
                format!("{key}"),
                format!("{key:#?}"),
                format!("{pem:?}"),
            ] {
                assert!(!shown.contains(&secret_hex), "{shown}");
                assert!(!shown.contains(&der_b64[..24]), "{shown}");
                assert!(!shown.contains("PRIVATE KEY"), "{shown}");
            }
            assert!(format!("{key:?}").contains(key.key_id().as_str()));
            assert!(format!("{key}").contains(key.key_id().as_str()));
        }
    }

    #[test]
    fn algorithm_names_parse() {
        assert_eq!(
            "ed25519".parse::<Algorithm>().expect("ok"),
            Algorithm::Ed25519
        );
        assert_eq!(
            "p256".parse::<Algorithm>().expect("ok"),
            Algorithm::EcdsaP256Sha256
        );
        assert!("rsa".parse::<Algorithm>().is_err());
    }
}

#[cfg(test)]
mod token_tests {
    use super::*;

    /// A token stand-in over an in-memory key: it signs the digest it is given
    /// (raw `r || s`), as PKCS#11 `CKM_ECDSA` does.
    struct Held {
        scalar: [u8; 32],
        wrong: bool,
    }

    impl TokenSigner for Held {
        fn sign_p256_digest(&self, digest: &[u8; 32]) -> Result<[u8; 64], EvidenceError> {
            // Sign the digest by a P-256 key with the fixed-length (raw) encoding.
            let mut der = Vec::new();
            der.extend_from_slice(P256_EC_PRIVATE_KEY_HEAD);
            let mut scalar = self.scalar;
            if self.wrong {
                scalar[31] ^= 1;
            }
            der.extend_from_slice(&scalar);
            der.extend_from_slice(P256_EC_PRIVATE_KEY_TAIL);
            let pair = EcdsaKeyPair::from_private_key_der(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &der,
            )
            .map_err(|_| EvidenceError::Token("bad key".to_owned()))?;
            let sig = pair
                .sign_digest(
                    &aws_lc_rs::digest::Digest::import_less_safe(
                        digest,
                        &aws_lc_rs::digest::SHA256,
                    )
                    .map_err(|_| EvidenceError::Token("digest".to_owned()))?,
                )
                .map_err(|_| EvidenceError::Token("sign".to_owned()))?;
            sig.as_ref()
                .try_into()
                .map_err(|_| EvidenceError::Token("length".to_owned()))
        }

        fn location(&self) -> String {
            "test token".to_owned()
        }
    }

    #[test]
    fn a_token_key_signs_der_that_verifies_and_refuses_another_keys_signature() {
        let scalar = [7u8; 32];
        let file = SigningKey::from_secret_bytes(Algorithm::EcdsaP256Sha256, &scalar).unwrap();
        let public = file.verifying_key().clone();
        let key = SigningKey::in_token(
            public.clone(),
            Box::new(Held {
                scalar,
                wrong: false,
            }),
        )
        .unwrap();
        assert_eq!(key.token_location().as_deref(), Some("test token"));
        for message in [&b""[..], b"message", &[0xffu8; 1000]] {
            let sig = key.sign(message).unwrap();
            public.verify(message, &sig).unwrap();
        }
        assert!(key.to_pkcs8_pem().is_err());
        let liar = SigningKey::in_token(
            public,
            Box::new(Held {
                scalar,
                wrong: true,
            }),
        )
        .unwrap();
        let err = liar.sign(b"message").unwrap_err();
        assert!(err.to_string().contains("does not verify"), "{err}");
        let ed = SigningKey::generate(Algorithm::Ed25519).unwrap();
        assert!(
            SigningKey::in_token(
                ed.verifying_key().clone(),
                Box::new(Held {
                    scalar,
                    wrong: false
                })
            )
            .is_err()
        );
    }

    #[test]
    fn raw_to_der_strips_and_pads() {
        let mut raw = [0u8; 64];
        raw[0] = 0x80; // r: high bit set, needs a 0 pad
        raw[63] = 1; // s: 1, leading zeros stripped
        let der = ecdsa_raw_to_der(&raw);
        assert_eq!(&der[..4], &[0x30, 33 + 2 + 3, 0x02, 33]);
        assert_eq!(der[4], 0);
        assert_eq!(&der[der.len() - 3..], &[0x02, 1, 1]);
    }
}
