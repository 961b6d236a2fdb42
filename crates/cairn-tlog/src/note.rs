//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys.
//!
//! A note is UTF-8 text ending in a newline, then a blank line, then one or
//! more signature lines `— <name> <base64(key hash || signature)>`. The
//! generic parser ([`Note::parse`]) keeps every signature line as raw bytes
//! so that another crate can verify signatures of other key types (Rekor's
//! ECDSA checkpoints); [`Note::verify`] checks the Ed25519 ones.
//!
//! Signing goes through [`NoteSigner`]: a key in memory ([`Signer`]) or a key
//! in a token that signs without giving its private half out. Every signature
//! a signer returns is verified with its public key before it is written.

use aws_lc_rs::digest::{self, SHA256};
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// The largest note accepted, text and signatures together.
pub const MAX_NOTE_BYTES: usize = 1 << 20;
/// The most signature lines a note may carry (signed-note §Signatures).
pub const MAX_SIGNATURES: usize = 100;
/// The longest signature line accepted.
const MAX_SIGNATURE_LINE: usize = 4096;

/// The signature type byte of Ed25519 keys (signed-note §Signature types).
const ALG_ED25519: u8 = 0x01;

/// Why a note or a key could not be parsed, signed or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("the note is {len} bytes, more than the {max} allowed")]
    TooLarge { len: usize, max: usize },
    #[error("the note is not valid UTF-8")]
    NotUtf8,
    #[error("the note text contains a control character other than newline")]
    ControlCharacter,
    #[error("the note text must be non-empty and end in a newline")]
    TextNotTerminated,
    #[error("the note has no blank line separating text from signatures")]
    NoSignatureBlock,
    #[error("the note has no signatures")]
    NoSignatures,
    #[error("the note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    #[error("signature line {line} is malformed")]
    MalformedSignature { line: usize },
    #[error("key name `{0}` is invalid (empty, or contains a space or `+`)")]
    BadKeyName(String),
    #[error("the key string is malformed")]
    MalformedKey,
    #[error("the key's hash does not match its name and public key")]
    KeyHashMismatch,
    #[error("the key is not an Ed25519 key (type byte {0:#04x})")]
    UnsupportedKeyType(u8),
    #[error("the signature by {name} does not verify")]
    BadSignature { name: String },
    #[error("the note is signed by none of the given keys")]
    NotSigned,
    /// The signer (a key in a token) could not sign; the text names the
    /// token and key, never a secret.
    #[error("{0}")]
    SignerFailed(String),
    #[error("the signature {name} returned does not verify with its public key")]
    SignerMismatch { name: String },
}

/// One signature line of a note, as found: a key name, the 4-byte key hash
/// and the signature bytes (signed-note §Signatures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_hash: u32,
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The line as written in a note, without its newline.
    pub fn to_line(&self) -> String {
        let mut raw = self.key_hash.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.signature);
        format!("— {} {}", self.name, B64.encode(raw))
    }
}

/// A parsed signed note: its text and its signatures, none verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

/// A key name is non-empty and has no Unicode whitespace and no `+`
/// (signed-note §Keys).
pub fn valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// Checks note text: non-empty, ends in a newline, no control characters
/// other than newline (signed-note §Note text).
pub fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::TextNotTerminated);
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(NoteError::ControlCharacter);
    }
    Ok(())
}

impl Note {
    /// Parses a signed note strictly; signatures are kept, not verified.
    pub fn parse(bytes: &[u8]) -> Result<Note, NoteError> {
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge {
                len: bytes.len(),
                max: MAX_NOTE_BYTES,
            });
        }
        let all = std::str::from_utf8(bytes).map_err(|_| NoteError::NotUtf8)?;
        let split = all.rfind("\n\n").ok_or(NoteError::NoSignatureBlock)?;
        let text = &all[..split + 1];
        let block = &all[split + 2..];
        check_text(text)?;
        if block.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        let Some(block) = block.strip_suffix('\n') else {
            return Err(NoteError::MalformedSignature { line: 1 });
        };
        let mut signatures = Vec::new();
        for (i, line) in block.split('\n').enumerate() {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            signatures.push(parse_signature_line(line, i + 1)?);
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The signed text, ending in a newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Every signature line, in order, including those of unknown keys.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Verifies the note against `verifiers` and returns those that signed,
    /// in the order given. Signatures by keys not in `verifiers` are skipped;
    /// a signature by a known key that does not verify is an error, and so
    /// is a note signed by none of them (fail closed).
    pub fn verify<'v>(&self, verifiers: &'v [Verifier]) -> Result<Vec<&'v Verifier>, NoteError> {
        let mut signed: Vec<&Verifier> = Vec::new();
        for v in verifiers {
            let mut matched = false;
            for sig in &self.signatures {
                if sig.name != v.name || sig.key_hash != v.key_hash {
                    continue;
                }
                if !v.verify_raw(self.text.as_bytes(), &sig.signature) {
                    return Err(NoteError::BadSignature {
                        name: sig.name.clone(),
                    });
                }
                matched = true;
            }
            if matched {
                signed.push(v);
            }
        }
        if signed.is_empty() {
            return Err(NoteError::NotSigned);
        }
        Ok(signed)
    }

    /// The note as bytes: text, blank line, one line per signature.
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for sig in &self.signatures {
            out.push_str(&sig.to_line());
            out.push('\n');
        }
        out
    }
}

fn parse_signature_line(line: &str, number: usize) -> Result<NoteSignature, NoteError> {
    let bad = || NoteError::MalformedSignature { line: number };
    if line.len() > MAX_SIGNATURE_LINE {
        return Err(bad());
    }
    let rest = line.strip_prefix("— ").ok_or_else(bad)?;
    let (name, b64) = rest.split_once(' ').ok_or_else(bad)?;
    if !valid_key_name(name) || b64.contains(' ') {
        return Err(bad());
    }
    let raw = B64.decode(b64).map_err(|_| bad())?;
    if raw.len() < 5 {
        return Err(bad());
    }
    let (hash, signature) = raw.split_at(4);
    let key_hash = u32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]);
    Ok(NoteSignature {
        name: name.to_owned(),
        key_hash,
        signature: signature.to_vec(),
    })
}

/// The key hash of a key: the first 4 bytes of SHA-256(name || 0x0A ||
/// type byte || public key), as a big-endian integer (signed-note §Keys).
pub fn key_hash(name: &str, key_with_type: &[u8]) -> u32 {
    let mut ctx = digest::Context::new(&SHA256);
    ctx.update(name.as_bytes());
    ctx.update(b"\n");
    ctx.update(key_with_type);
    let d = ctx.finish();
    let d = d.as_ref();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// An Ed25519 note verifier: `<name>+<hex8 hash>+<base64(0x01 || pubkey)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    key_hash: u32,
    public_key: [u8; 32],
}

impl Verifier {
    /// Parses a verifier key string and checks its hash.
    pub fn parse(key: &str) -> Result<Verifier, NoteError> {
        let mut parts = key.splitn(3, '+');
        let (Some(name), Some(hash), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::MalformedKey);
        };
        if !valid_key_name(name) {
            return Err(NoteError::BadKeyName(name.to_owned()));
        }
        let key_hash = parse_hex8(hash)?;
        let raw = B64.decode(b64).map_err(|_| NoteError::MalformedKey)?;
        let (&alg, public) = raw.split_first().ok_or(NoteError::MalformedKey)?;
        if alg != ALG_ED25519 {
            return Err(NoteError::UnsupportedKeyType(alg));
        }
        let public_key: [u8; 32] = public.try_into().map_err(|_| NoteError::MalformedKey)?;
        if key_hash != self::key_hash(name, &raw) {
            return Err(NoteError::KeyHashMismatch);
        }
        Ok(Verifier {
            name: name.to_owned(),
            key_hash,
            public_key,
        })
    }

    /// Builds the verifier of an Ed25519 public key under `name`.
    pub fn from_public_key(name: &str, public_key: [u8; 32]) -> Result<Verifier, NoteError> {
        if !valid_key_name(name) {
            return Err(NoteError::BadKeyName(name.to_owned()));
        }
        Ok(Verifier {
            name: name.to_owned(),
            key_hash: key_hash(name, &typed(&public_key)),
            public_key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_hash(&self) -> u32 {
        self.key_hash
    }

    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }

    /// Checks one Ed25519 signature over `msg`.
    pub fn verify_raw(&self, msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::ED25519, &self.public_key)
            .verify(msg, sig)
            .is_ok()
    }
}

impl std::fmt::Display for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.key_hash,
            B64.encode(typed(&self.public_key))
        )
    }
}

fn typed(key: &[u8; 32]) -> [u8; 33] {
    let mut out = [0u8; 33];
    out[0] = ALG_ED25519;
    out[1..].copy_from_slice(key);
    out
}

fn parse_hex8(text: &str) -> Result<u32, NoteError> {
    // Canonical form only: eight lowercase hex digits, as keys are written.
    if text.len() != 8 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(NoteError::MalformedKey);
    }
    u32::from_str_radix(text, 16).map_err(|_| NoteError::MalformedKey)
}

/// An Ed25519 note signer. Its `Debug` never shows the key.
pub struct Signer {
    name: String,
    key_hash: u32,
    seed: [u8; 32],
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .field("key_hash", &format_args!("{:08x}", self.key_hash))
            .field("seed", &"<redacted>")
            .finish()
    }
}

impl Signer {
    /// A signer from a 32-byte Ed25519 seed the caller generated.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Signer, NoteError> {
        if !valid_key_name(name) {
            return Err(NoteError::BadKeyName(name.to_owned()));
        }
        let pair =
            Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| NoteError::MalformedKey)?;
        let public: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| NoteError::MalformedKey)?;
        Ok(Signer {
            name: name.to_owned(),
            key_hash: key_hash(name, &typed(&public)),
            seed,
            pair,
        })
    }

    /// Parses `PRIVATE+KEY+<name>+<hex8>+<base64(0x01 || seed)>` and checks
    /// that the hash matches the derived public key.
    pub fn parse(key: &str) -> Result<Signer, NoteError> {
        let rest = key
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::MalformedKey)?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(hash), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::MalformedKey);
        };
        if !valid_key_name(name) {
            return Err(NoteError::BadKeyName(name.to_owned()));
        }
        let key_hash = parse_hex8(hash)?;
        let raw = B64.decode(b64).map_err(|_| NoteError::MalformedKey)?;
        let (&alg, seed) = raw.split_first().ok_or(NoteError::MalformedKey)?;
        if alg != ALG_ED25519 {
            return Err(NoteError::UnsupportedKeyType(alg));
        }
        let seed: [u8; 32] = seed.try_into().map_err(|_| NoteError::MalformedKey)?;
        let signer = Signer::from_seed(name, seed)?;
        if signer.key_hash != key_hash {
            return Err(NoteError::KeyHashMismatch);
        }
        Ok(signer)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_hash(&self) -> u32 {
        self.key_hash
    }

    /// The matching verifier.
    pub fn verifier(&self) -> Verifier {
        let mut public_key = [0u8; 32];
        public_key.copy_from_slice(self.pair.public_key().as_ref());
        Verifier {
            name: self.name.clone(),
            key_hash: self.key_hash,
            public_key,
        }
    }

    /// The secret key string `PRIVATE+KEY+…`, for storing in a key file.
    /// Callers must never print it.
    pub fn to_secret_key_string(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(&self.seed);
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.key_hash,
            B64.encode(raw)
        )
    }

    /// Signs note text with this key: a signature line for [`sign_note`].
    pub fn sign_text(&self, text: &str) -> Result<NoteSignature, NoteError> {
        sign_text(self, text)
    }
}

impl NoteSigner for Signer {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_hash(&self) -> u32 {
        self.key_hash
    }

    fn verifier(&self) -> Verifier {
        Signer::verifier(self)
    }

    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], NoteError> {
        self.pair
            .sign(msg)
            .as_ref()
            .try_into()
            .map_err(|_| NoteError::SignerFailed("Ed25519 signature of the wrong length".into()))
    }
}

/// Whatever signs notes with an Ed25519 key (signed-note §Signatures, type
/// 0x01): a key in memory ([`Signer`]), or one in a hardware token that never
/// gives its private half out (cairn-engine's PKCS#11 signer). The name and
/// the key hash come from the public key (signed-note §Keys:
/// SHA-256(name || 0x0A || 0x01 || key), first 4 bytes).
pub trait NoteSigner: Send + Sync + std::fmt::Debug {
    /// The key's name (for a log's key: the checkpoint's origin).
    fn name(&self) -> &str;
    /// The key hash, as in [`key_hash`].
    fn key_hash(&self) -> u32;
    /// The verifier of this key's signatures.
    fn verifier(&self) -> Verifier;
    /// A pure Ed25519 signature (RFC 8032 §5.1.6) of `msg`.
    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], NoteError>;
}

/// Signs note text with `signer`: a signature line for [`sign_note`]. The
/// signature is checked with the signer's public key before it is returned,
/// so a signer that answers with anything else is caught here (fail closed).
pub fn sign_text(signer: &dyn NoteSigner, text: &str) -> Result<NoteSignature, NoteError> {
    check_text(text)?;
    let signature = signer.sign(text.as_bytes())?;
    let verifier = signer.verifier();
    if verifier.name() != signer.name()
        || verifier.key_hash() != signer.key_hash()
        || !verifier.verify_raw(text.as_bytes(), &signature)
    {
        return Err(NoteError::SignerMismatch {
            name: signer.name().to_owned(),
        });
    }
    Ok(NoteSignature {
        name: signer.name().to_owned(),
        key_hash: signer.key_hash(),
        signature: signature.to_vec(),
    })
}

/// Signs `text` with every signer and returns the whole signed note.
pub fn sign_note(text: &str, signers: &[&dyn NoteSigner]) -> Result<String, NoteError> {
    check_text(text)?;
    if signers.is_empty() {
        return Err(NoteError::NoSignatures);
    }
    if signers.len() > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures);
    }
    let signatures = signers
        .iter()
        .map(|s| sign_text(*s, text))
        .collect::<Result<Vec<_>, _>>()?;
    let note = Note {
        text: text.to_owned(),
        signatures,
    };
    Ok(note.to_text())
}
