//! cairn's signing key in a PKCS#11 token (an HSM; SoftHSM in the tests),
//! through the `cryptoki` crate. `keys/signing.pkcs11.json` names the module (the
//! vendor's `.so`), the token label, the key label, and where the user PIN is: a
//! file only its owner may read, or an environment variable. The PIN is read
//! into a zeroised `secrecy` string, handed to `C_Login`, and never printed,
//! logged or written anywhere (errors name the file or the variable, not it).
//!
//! The private key never leaves the token: cairn computes the SHA-256 of what it
//! signs and asks the token for `CKM_ECDSA` over that digest; the token's raw
//! `r || s` becomes the DER signature DSSE and Sigstore verifiers expect, and is
//! checked against the key's public half before use (`cairn_evidence::TokenSigner`).
//! Only ECDSA P-256 keys are used, and only ones the token marks sensitive.
//!
//! The audit log's checkpoint key may live in a token too
//! (`keys/log.pkcs11.json`, [`TokenNoteSigner`]): an Ed25519 key signing with
//! `CKM_EDDSA` (pure Ed25519, PKCS#11 3.0 §2.3.14; SoftHSM 2.6 has it), the
//! message itself sent to the token, the C2SP key hash computed from the
//! token's public key.
//!
//! Every failure (module missing, token or key label not found, wrong PIN) is an
//! error: cairn never falls back to another key.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cairn_evidence::{EvidenceError, SigningKey, TokenSigner, VerifyingKey};
use cairn_tlog::note::{NoteError, NoteSigner, Verifier};
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// The DER of the namedCurve OID of P-256 (secp256r1, 1.2.840.10045.3.1.7), as
/// `CKA_EC_PARAMS` holds it.
const P256_EC_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// `CKA_EC_PARAMS` of an Ed25519 key: the DER of the curve's OID
/// (id-Ed25519, 1.3.101.112, RFC 8410), as SoftHSM and PKCS#11 3.0 §2.3.6 take it.
const ED25519_OID_PARAMS: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// `CKA_EC_PARAMS` of an Ed25519 key as PKCS#11 3.0 also allows it: the
/// PrintableString `edwards25519`.
const ED25519_NAME_PARAMS: &[u8] = b"\x13\x0cedwards25519";
/// What a log token key signs before cairn records it: the answer must verify
/// with the key's public half.
const NOTE_PROBE: &[u8] = b"cairn: probe of a checkpoint key in a token before it is used\n";
/// Longest PIN read (bytes); longer is refused, not cut.
const MAX_PIN: u64 = 256;
/// Longest label accepted (token labels are 32 bytes in PKCS#11).
const MAX_LABEL: usize = 256;

/// Where the signing key is: `keys/signing.pkcs11.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TokenKey {
    /// The PKCS#11 module (shared library), an absolute path.
    pub module: PathBuf,
    /// The token's label (`CKA_LABEL` of the token info, without padding).
    pub token: String,
    /// The key's `CKA_LABEL` (its private and public objects share it).
    pub key_label: String,
    /// The user PIN's file (mode 0600); or
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_file: Option<PathBuf>,
    /// the environment variable holding the user PIN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_env: Option<String>,
    /// The key's public half as it was when cairn was told to use it (the
    /// evidence key's SPKI PEM; the log key's C2SP verifier key
    /// `<origin>+<hash>+<key>`): opening refuses a different key under the
    /// same label, and readers that only verify use it without the token.
    /// Written by cairn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

fn err(message: impl Into<String>) -> EngineError {
    EngineError::Token(message.into())
}

impl TokenKey {
    /// For people: `PKCS#11 token "t", key "k"`.
    pub fn location(&self) -> String {
        format!(
            "PKCS#11 token \"{}\", key \"{}\"",
            self.token, self.key_label
        )
    }

    /// Checks the shape: an absolute module path, labels of printable text, one
    /// PIN source.
    pub fn validate(&self) -> Result<(), EngineError> {
        if !self.module.is_absolute() {
            return Err(err(format!(
                "the PKCS#11 module must be an absolute path, not {}",
                self.module.display()
            )));
        }
        for (what, label) in [("token label", &self.token), ("key label", &self.key_label)] {
            if label.is_empty() || label.len() > MAX_LABEL || label.chars().any(char::is_control) {
                return Err(err(format!(
                    "the {what} must be 1 to {MAX_LABEL} bytes of printable text"
                )));
            }
        }
        match (&self.pin_file, &self.pin_env) {
            (Some(_), None) => Ok(()),
            (None, Some(name))
                if !name.is_empty()
                    && name.len() <= 128
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                Ok(())
            }
            (None, Some(_)) => Err(err(
                "the PIN variable's name must be letters, digits and `_`",
            )),
            _ => Err(err(
                "give the token's PIN as a file or a variable (one of them)",
            )),
        }
    }

    /// The user PIN, from its file (owner-only, a regular file, at most 256
    /// bytes, trailing newline dropped) or its variable.
    fn pin(&self) -> Result<AuthPin, EngineError> {
        let text = match (&self.pin_file, &self.pin_env) {
            (Some(path), _) => {
                // Opened without blocking (a FIFO put in its place cannot
                // hang cairn), then checked on the open file itself.
                let file = fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                    .open(path)
                    .map_err(|e| {
                        err(format!("cannot read the PIN file {}: {e}", path.display()))
                    })?;
                let meta = file.metadata().map_err(|e| {
                    err(format!("cannot read the PIN file {}: {e}", path.display()))
                })?;
                if !meta.is_file() {
                    return Err(err(format!(
                        "the PIN file {} is not a regular file",
                        path.display()
                    )));
                }
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(err(format!(
                        "the PIN file {} is readable by other users (mode {mode:o}); chmod 600 it and change the PIN",
                        path.display()
                    )));
                }
                let mut bytes = Vec::new();
                file.take(MAX_PIN + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| {
                        err(format!("cannot read the PIN file {}: {e}", path.display()))
                    })?;
                if bytes.len() as u64 > MAX_PIN {
                    return Err(err(format!(
                        "the PIN file {} is longer than {MAX_PIN} bytes",
                        path.display()
                    )));
                }
                while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    bytes.pop();
                }
                String::from_utf8(bytes)
                    .map_err(|_| err(format!("the PIN file {} is not UTF-8", path.display())))?
            }
            (None, Some(name)) => std::env::var(name)
                .map_err(|_| err(format!("the PIN variable {name} is not set (or not UTF-8)")))?,
            (None, None) => return Err(err("no PIN source is configured")),
        };
        if text.is_empty() {
            return Err(err("the token's PIN is empty"));
        }
        Ok(AuthPin::new(text))
    }

    /// The key, opened in its token: logged in, found by label, its public half
    /// read. Each failure is a clear error naming what was not found.
    pub fn open(&self) -> Result<SigningKey, EngineError> {
        self.validate()?;
        let pin = self.pin()?;
        let (session, private, public) = self.session(&pin)?;
        if let Some(recorded) = self.recorded_public_key()?
            && recorded != public
        {
            return Err(err(format!(
                "{} is key {}, not the key {} cairn was set to use; if it was replaced on purpose, `cairn key hsm` it again",
                self.location(),
                public.key_id(),
                recorded.key_id()
            )));
        }
        let signer = Pkcs11Signer {
            session: Mutex::new(session),
            key: private,
            location: self.location(),
        };
        SigningKey::in_token(public, Box::new(signer))
            .map_err(|e| err(format!("{}: {e}", self.location())))
    }

    /// The public key recorded when this key was chosen.
    pub fn recorded_public_key(&self) -> Result<Option<VerifyingKey>, EngineError> {
        self.public_key
            .as_deref()
            .map(|pem| {
                VerifyingKey::from_pem(pem).map_err(|e| {
                    err(format!(
                        "{}: the recorded public key is unusable: {e}",
                        self.location()
                    ))
                })
            })
            .transpose()
    }

    fn session(&self, pin: &AuthPin) -> Result<(Session, ObjectHandle, VerifyingKey), EngineError> {
        let session = self.login(pin, false)?;
        let private = self.one(&session, ObjectClass::PRIVATE_KEY)?;
        let public = self.one(&session, ObjectClass::PUBLIC_KEY)?;
        self.check_private(&session, private, false)?;
        let key =
            public_key(&session, public).map_err(|e| err(format!("{}: {e}", self.location())))?;
        Ok((session, private, key))
    }

    /// A session with the token, logged in as the user: the slot found by the
    /// token's label, the PIN checked. Each failure names what went wrong,
    /// never the PIN.
    fn login(&self, pin: &AuthPin, rw: bool) -> Result<Session, EngineError> {
        let ctx = context(&self.module)?;
        let slots = ctx
            .get_slots_with_token()
            .map_err(|e| err(format!("the PKCS#11 module lists no slots: {e}")))?;
        let mut labels = Vec::new();
        let mut found = None;
        for slot in slots {
            let Ok(info) = ctx.get_token_info(slot) else {
                continue;
            };
            let label = info.label().trim_end().to_owned();
            if label == self.token {
                found = Some(slot);
                break;
            }
            if !label.is_empty() {
                labels.push(label);
            }
        }
        let slot = found.ok_or_else(|| {
            err(format!(
                "no PKCS#11 token labelled \"{}\" in {} (tokens: {})",
                self.token,
                self.module.display(),
                if labels.is_empty() {
                    "none".to_owned()
                } else {
                    labels.join(", ")
                }
            ))
        })?;
        let opened = if rw {
            ctx.open_rw_session(slot)
        } else {
            ctx.open_ro_session(slot)
        };
        let session = opened.map_err(|e| {
            err(format!(
                "cannot open a session with token \"{}\": {e}",
                self.token
            ))
        })?;
        match session.login(UserType::User, Some(pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
                return Err(err(format!(
                    "wrong PIN for PKCS#11 token \"{}\" (from {})",
                    self.token,
                    self.pin_source()
                )));
            }
            Err(CkError::Pkcs11(rv, _)) => {
                return Err(err(format!(
                    "PKCS#11 token \"{}\" refused the login: {}",
                    self.token,
                    rv_name(rv)
                )));
            }
            Err(e) => {
                return Err(err(format!(
                    "cannot log in to PKCS#11 token \"{}\": {e}",
                    self.token
                )));
            }
        }
        Ok(session)
    }

    /// The private key must be sensitive (never readable out of the token)
    /// and allowed to sign; with `unextractable`, also never extractable
    /// (not even wrapped under another key).
    fn check_private(
        &self,
        session: &Session,
        private: ObjectHandle,
        unextractable: bool,
    ) -> Result<(), EngineError> {
        let attrs = session
            .get_attributes(
                private,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Sign,
                    AttributeType::Extractable,
                ],
            )
            .map_err(|e| {
                err(format!(
                    "{}: cannot read the key's attributes: {e}",
                    self.location()
                ))
            })?;
        let mut sensitive = false;
        for attr in attrs {
            match attr {
                Attribute::Sensitive(true) => sensitive = true,
                Attribute::Sign(false) => {
                    return Err(err(format!(
                        "{}: the private key may not sign (CKA_SIGN)",
                        self.location()
                    )));
                }
                Attribute::Extractable(true) if unextractable => {
                    return Err(err(format!(
                        "{}: the private key is extractable (CKA_EXTRACTABLE); cairn's log key must never leave the token",
                        self.location()
                    )));
                }
                _ => {}
            }
        }
        if !sensitive {
            return Err(err(format!(
                "{}: the private key is not marked sensitive (CKA_SENSITIVE); cairn uses only keys that cannot be read out",
                self.location()
            )));
        }
        Ok(())
    }

    /// The one EC object of `class` labelled `key_label`.
    fn one(&self, session: &Session, class: ObjectClass) -> Result<ObjectHandle, EngineError> {
        let what = if class == ObjectClass::PRIVATE_KEY {
            "private"
        } else {
            "public"
        };
        let found = session
            .find_objects(&[
                Attribute::Class(class),
                Attribute::KeyType(KeyType::EC),
                Attribute::Label(self.key_label.as_bytes().to_vec()),
            ])
            .map_err(|e| err(format!("{}: cannot search the token: {e}", self.location())))?;
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(err(format!(
                "no EC {what} key labelled \"{}\" in PKCS#11 token \"{}\"",
                self.key_label, self.token
            ))),
            more => Err(err(format!(
                "{} EC {what} keys are labelled \"{}\" in PKCS#11 token \"{}\"; a label must name one key",
                more.len(),
                self.key_label,
                self.token
            ))),
        }
    }

    fn pin_source(&self) -> String {
        match (&self.pin_file, &self.pin_env) {
            (Some(path), _) => format!("the file {}", path.display()),
            (None, Some(name)) => format!("the variable {name}"),
            (None, None) => "nowhere".to_owned(),
        }
    }
}

/// A public key object's `CKA_EC_PARAMS` and `CKA_EC_POINT`, each as the
/// token gives it (absent when it gives none).
type EcAttributes = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Reads [`EcAttributes`] of a public key object.
fn ec_attributes(session: &Session, handle: ObjectHandle) -> Result<EcAttributes, String> {
    let attrs = session
        .get_attributes(handle, &[AttributeType::EcParams, AttributeType::EcPoint])
        .map_err(|e| format!("cannot read the public key: {e}"))?;
    let mut params = None;
    let mut point = None;
    for attr in attrs {
        match attr {
            Attribute::EcParams(p) => params = Some(p),
            Attribute::EcPoint(p) => point = Some(p),
            _ => {}
        }
    }
    Ok((params, point))
}

/// The P-256 public key of a public key object: `CKA_EC_PARAMS` must name
/// P-256 and `CKA_EC_POINT` hold the uncompressed point (DER OCTET STRING, or
/// bare as some modules give it).
fn public_key(session: &Session, handle: ObjectHandle) -> Result<VerifyingKey, String> {
    let (params, point) = ec_attributes(session, handle)?;
    if params.as_deref() != Some(P256_EC_PARAMS) {
        return Err("the key is not on the P-256 curve; cairn signs with ECDSA P-256".to_owned());
    }
    let point = point.ok_or("the public key has no CKA_EC_POINT")?;
    let raw = match point.as_slice() {
        [0x04, 0x41, rest @ ..] if rest.len() == 65 => rest,
        bare if bare.len() == 65 => bare,
        _ => {
            return Err(
                "the public key's CKA_EC_POINT is not an uncompressed P-256 point".to_owned(),
            );
        }
    };
    VerifyingKey::from_p256_point(raw).map_err(|e| e.to_string())
}

/// One initialised context per module per process (a module may be
/// `C_Initialize`d once).
fn context(module: &Path) -> Result<Pkcs11, EngineError> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut contexts = CONTEXTS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .map_err(|_| err("the PKCS#11 context lock is poisoned"))?;
    if let Some(ctx) = contexts.get(module) {
        return Ok(ctx.clone());
    }
    match fs::metadata(module) {
        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o022 != 0 => {
            return Err(err(format!(
                "the PKCS#11 module {} is writable by other users (mode {:o}); cairn runs its code, so it must not be",
                module.display(),
                meta.permissions().mode() & 0o777
            )));
        }
        Ok(meta) if meta.is_file() => {}
        Ok(_) => {
            return Err(err(format!(
                "the PKCS#11 module {} is not a file",
                module.display()
            )));
        }
        Err(e) => {
            return Err(err(format!(
                "the PKCS#11 module {} cannot be read: {e}",
                module.display()
            )));
        }
    }
    let ctx = Pkcs11::new(module).map_err(|e| {
        err(format!(
            "cannot load the PKCS#11 module {}: {e}",
            module.display()
        ))
    })?;
    match ctx.initialize(CInitializeArgs::OsThreads) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(err(format!(
                "the PKCS#11 module {} failed to initialise: {e}",
                module.display()
            )));
        }
    }
    contexts.insert(module.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// A return value's name only (cryptoki's Display adds a paragraph).
fn rv_name(rv: RvError) -> String {
    format!("{rv:?}")
}

/// A logged-in session and the private key's handle.
struct Pkcs11Signer {
    session: Mutex<Session>,
    key: ObjectHandle,
    location: String,
}

impl TokenSigner for Pkcs11Signer {
    fn sign_p256_digest(&self, digest: &[u8; 32]) -> Result<[u8; 64], EvidenceError> {
        let session = self.session.lock().map_err(|_| {
            EvidenceError::Token(format!("{}: session lock poisoned", self.location))
        })?;
        let sig = session
            .sign(&Mechanism::Ecdsa, self.key, digest)
            .map_err(|e| EvidenceError::Token(format!("{} failed to sign: {e}", self.location)))?;
        sig.as_slice().try_into().map_err(|_| {
            EvidenceError::Token(format!(
                "{} answered with a {}-byte signature, not a 64-byte P-256 one",
                self.location,
                sig.len()
            ))
        })
    }

    fn location(&self) -> String {
        self.location.clone()
    }
}

/// Generates a key pair in the token under `config`'s key label with a fresh
/// random id: the private half sensitive, never extractable, for signing only.
/// `kind` names the key in the error ("a P-256", "an Ed25519").
fn generate_pair(
    session: &Session,
    config: &TokenKey,
    mechanism: Mechanism,
    ec_params: &[u8],
    kind: &str,
) -> Result<(), EngineError> {
    let mut id = [0u8; 16];
    aws_lc_rs::rand::fill(&mut id).map_err(|_| EngineError::NoRandomness)?;
    let label = config.key_label.as_bytes().to_vec();
    session
        .generate_key_pair(
            &mechanism,
            &[
                Attribute::Token(true),
                Attribute::Verify(true),
                Attribute::EcParams(ec_params.to_vec()),
                Attribute::Label(label.clone()),
                Attribute::Id(id.to_vec()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::Label(label),
                Attribute::Id(id.to_vec()),
            ],
        )
        .map_err(|e| {
            err(format!(
                "PKCS#11 token \"{}\" could not generate {kind} key: {e}",
                config.token
            ))
        })?;
    Ok(())
}

/// Generates a new ECDSA P-256 key pair in the token, labelled `label`
/// (sensitive, never extractable, a token object); refuses a label in use.
pub fn generate(config: &TokenKey) -> Result<SigningKey, EngineError> {
    config.validate()?;
    let pin = config.pin()?;
    let ctx = context(&config.module)?;
    // Log in (and find the slot) through a read-only session first: the same
    // clear errors as opening.
    let slot = {
        let probe = TokenKey {
            key_label: config.key_label.clone(),
            ..config.clone()
        };
        match probe.session(&pin) {
            Ok(_) => {
                return Err(err(format!(
                    "PKCS#11 token \"{}\" already holds a key labelled \"{}\"; choose a new label",
                    config.token, config.key_label
                )));
            }
            Err(EngineError::Token(m)) if m.starts_with("no EC private key labelled") => {}
            Err(e) => return Err(e),
        }
        ctx.get_slots_with_token()
            .map_err(|e| err(format!("the PKCS#11 module lists no slots: {e}")))?
            .into_iter()
            .find(|s| {
                ctx.get_token_info(*s)
                    .is_ok_and(|i| i.label().trim_end() == config.token)
            })
            .ok_or_else(|| err(format!("no PKCS#11 token labelled \"{}\"", config.token)))?
    };
    let session = ctx.open_rw_session(slot).map_err(|e| {
        err(format!(
            "cannot open a session with token \"{}\": {e}",
            config.token
        ))
    })?;
    match session.login(UserType::User, Some(&pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => {
            return Err(err(format!(
                "cannot log in to token \"{}\": {e}",
                config.token
            )));
        }
    }
    generate_pair(
        &session,
        config,
        Mechanism::EccKeyPairGen,
        P256_EC_PARAMS,
        "a P-256",
    )?;
    drop(session);
    config.open()
}

impl TokenKey {
    /// The log's checkpoint key in its token, as a note signer named `name`
    /// (the log's origin): an Ed25519 key (`CKK_EC_EDWARDS`, curve
    /// Ed25519) that is sensitive, never extractable and may sign. Its
    /// verifier (and so the note's key hash, signed-note §Keys) comes from the
    /// token's public key, which must match the one recorded in `public_key`
    /// when there is one; a probe signature must verify before the signer is
    /// returned. Every failure is an error: no other key is ever used.
    pub fn open_note_signer(&self, name: &str) -> Result<TokenNoteSigner, EngineError> {
        self.validate()?;
        let pin = self.pin()?;
        let session = self.login(&pin, false)?;
        let private = self.one_ed25519(&session, ObjectClass::PRIVATE_KEY)?;
        let public = self.one_ed25519(&session, ObjectClass::PUBLIC_KEY)?;
        self.check_private(&session, private, true)?;
        let raw = ed25519_public_key(&session, public)
            .map_err(|e| err(format!("{}: {e}", self.location())))?;
        let verifier = Verifier::from_public_key(name, raw)
            .map_err(|e| err(format!("{}: {e}", self.location())))?;
        if let Some(recorded) = &self.public_key
            && recorded != &verifier.to_string()
        {
            return Err(err(format!(
                "{} is key {verifier}, not the log key {recorded} cairn was set to use; if it was replaced on purpose, `cairn key log-hsm` it again",
                self.location()
            )));
        }
        let signer = TokenNoteSigner {
            session: Mutex::new(session),
            key: private,
            verifier,
            location: self.location(),
        };
        signer.sign(NOTE_PROBE).map_err(|e| err(e.to_string()))?;
        Ok(signer)
    }

    /// The one object of `class` labelled `key_label`, which must be an
    /// Ed25519 key: another key type under the label is refused by name.
    fn one_ed25519(
        &self,
        session: &Session,
        class: ObjectClass,
    ) -> Result<ObjectHandle, EngineError> {
        let what = if class == ObjectClass::PRIVATE_KEY {
            "private"
        } else {
            "public"
        };
        let found = session
            .find_objects(&[
                Attribute::Class(class),
                Attribute::Label(self.key_label.as_bytes().to_vec()),
            ])
            .map_err(|e| err(format!("{}: cannot search the token: {e}", self.location())))?;
        let one = match found.as_slice() {
            [one] => *one,
            [] => {
                return Err(err(format!(
                    "no {what} key labelled \"{}\" in PKCS#11 token \"{}\"",
                    self.key_label, self.token
                )));
            }
            more => {
                return Err(err(format!(
                    "{} {what} keys are labelled \"{}\" in PKCS#11 token \"{}\"; a label must name one key",
                    more.len(),
                    self.key_label,
                    self.token
                )));
            }
        };
        let kind = session
            .get_attributes(one, &[AttributeType::KeyType])
            .map_err(|e| {
                err(format!(
                    "{}: cannot read the key's type: {e}",
                    self.location()
                ))
            })?;
        match kind.as_slice() {
            [Attribute::KeyType(k)] if *k == KeyType::EC_EDWARDS => Ok(one),
            [Attribute::KeyType(k)] => Err(err(format!(
                "{} is a {k} key, not an Ed25519 key (CKK_EC_EDWARDS); a log's checkpoints are signed with Ed25519 (C2SP signed-note)",
                self.location()
            ))),
            _ => Err(err(format!("{}: the key has no type", self.location()))),
        }
    }
}

/// The 32-byte Ed25519 public key of a public key object: `CKA_EC_PARAMS`
/// must name Ed25519 and `CKA_EC_POINT` hold the key (a DER OCTET STRING, or
/// bare as some modules give it).
fn ed25519_public_key(session: &Session, handle: ObjectHandle) -> Result<[u8; 32], String> {
    let (params, point) = ec_attributes(session, handle)?;
    if !matches!(
        params.as_deref(),
        Some(ED25519_OID_PARAMS | ED25519_NAME_PARAMS)
    ) {
        return Err("the key is not on Ed25519 (CKA_EC_PARAMS names another curve)".to_owned());
    }
    let point = point.ok_or("the public key has no CKA_EC_POINT")?;
    let raw = match point.as_slice() {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest,
        bare if bare.len() == 32 => bare,
        _ => return Err("the public key's CKA_EC_POINT is not a 32-byte Ed25519 key".to_owned()),
    };
    raw.try_into()
        .map_err(|_| "the public key's CKA_EC_POINT is not a 32-byte Ed25519 key".to_owned())
}

/// The log's checkpoint key in a token: a logged-in session, the private
/// key's handle and the verifier read from the token's public key. Signs
/// with `CKM_EDDSA` (pure Ed25519); the private key never leaves the token.
/// Every signature is checked against the verifier before it is returned.
pub struct TokenNoteSigner {
    session: Mutex<Session>,
    key: ObjectHandle,
    verifier: Verifier,
    location: String,
}

impl std::fmt::Debug for TokenNoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenNoteSigner")
            .field("location", &self.location)
            .field("verifier", &self.verifier.to_string())
            .finish_non_exhaustive()
    }
}

impl TokenNoteSigner {
    /// For people: `PKCS#11 token "t", key "k"`.
    pub fn location(&self) -> &str {
        &self.location
    }
}

impl NoteSigner for TokenNoteSigner {
    fn name(&self) -> &str {
        self.verifier.name()
    }

    fn key_hash(&self) -> u32 {
        self.verifier.key_hash()
    }

    fn verifier(&self) -> Verifier {
        self.verifier.clone()
    }

    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], NoteError> {
        let session = self.session.lock().map_err(|_| {
            NoteError::SignerFailed(format!("{}: session lock poisoned", self.location))
        })?;
        let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
        let sig = session.sign(&mechanism, self.key, msg).map_err(|e| {
            NoteError::SignerFailed(format!("{} failed to sign: {e}", self.location))
        })?;
        let sig: [u8; 64] = sig.as_slice().try_into().map_err(|_| {
            NoteError::SignerFailed(format!(
                "{} answered with a {}-byte signature, not a 64-byte Ed25519 one",
                self.location,
                sig.len()
            ))
        })?;
        if !self.verifier.verify_raw(msg, &sig) {
            return Err(NoteError::SignerFailed(format!(
                "{} answered with a signature its public key does not verify",
                self.location
            )));
        }
        Ok(sig)
    }
}

/// Generates a new Ed25519 key pair for the log's checkpoints in the token,
/// labelled `key_label` (sensitive, never extractable, a token object), and
/// opens it as [`TokenKey::open_note_signer`] does; refuses a label in use.
pub fn generate_note_key(config: &TokenKey, name: &str) -> Result<TokenNoteSigner, EngineError> {
    config.validate()?;
    let pin = config.pin()?;
    let session = config.login(&pin, true)?;
    let taken = session
        .find_objects(&[Attribute::Label(config.key_label.as_bytes().to_vec())])
        .map_err(|e| {
            err(format!(
                "{}: cannot search the token: {e}",
                config.location()
            ))
        })?;
    if !taken.is_empty() {
        return Err(err(format!(
            "PKCS#11 token \"{}\" already holds a key labelled \"{}\"; choose a new label",
            config.token, config.key_label
        )));
    }
    generate_pair(
        &session,
        config,
        Mechanism::EccEdwardsKeyPairGen,
        ED25519_OID_PARAMS,
        "an Ed25519",
    )?;
    drop(session);
    config.open_note_signer(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TokenKey {
        TokenKey {
            module: PathBuf::from("/nonexistent/libpkcs11.so"),
            token: "t".to_owned(),
            key_label: "k".to_owned(),
            pin_file: None,
            pin_env: Some("CAIRN_TEST_UNSET_PIN_VARIABLE".to_owned()),
            public_key: None,
        }
    }

    #[test]
    fn the_shape_is_checked_before_anything_is_loaded() {
        let mut c = config();
        c.module = PathBuf::from("relative.so");
        assert!(c.validate().unwrap_err().to_string().contains("absolute"));
        let mut c = config();
        c.pin_file = Some(PathBuf::from("/x"));
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("one of them")
        );
        let mut c = config();
        c.pin_env = Some("A B".to_owned());
        assert!(c.validate().is_err());
        let mut c = config();
        c.key_label = "a\nb".to_owned();
        assert!(c.validate().is_err());
    }

    #[test]
    fn a_pin_file_others_can_read_is_refused_and_never_shown() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("pin");
        fs::write(&path, "s3cret-pin\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let mut c = config();
        c.pin_env = None;
        c.pin_file = Some(path.clone());
        let e = c.open().unwrap_err().to_string();
        assert!(e.contains("readable by other users"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        // Past the PIN: the module is missing.
        let e = c.open().unwrap_err().to_string();
        assert!(
            e.contains("/nonexistent/libpkcs11.so cannot be read"),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "{e}");
        let e = config().open().unwrap_err().to_string();
        assert!(
            e.contains("CAIRN_TEST_UNSET_PIN_VARIABLE is not set"),
            "{e}"
        );
    }

    #[test]
    fn a_fifo_pin_file_and_a_module_others_can_write_are_refused_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("pin");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let mut c = config();
        c.pin_env = None;
        c.pin_file = Some(fifo);
        let e = c.open().unwrap_err().to_string();
        assert!(e.contains("is not a regular file"), "{e}");
        let module = tmp.path().join("libpkcs11.so");
        fs::write(&module, b"not a library").unwrap();
        fs::set_permissions(&module, fs::Permissions::from_mode(0o666)).unwrap();
        let e = context(&module).unwrap_err().to_string();
        assert!(e.contains("writable by other users (mode 666)"), "{e}");
        fs::set_permissions(&module, fs::Permissions::from_mode(0o644)).unwrap();
        let e = context(&module).unwrap_err().to_string();
        assert!(e.contains("cannot load the PKCS#11 module"), "{e}");
    }
}
