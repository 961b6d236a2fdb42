//! Rekor transparency log entries: the canonicalized body must describe this
//! bundle (hashedrekord 0.0.1/0.0.2, dsse 0.0.1, intoto 0.0.2), the signed entry
//! timestamp (inclusion promise) must verify, the RFC 9162 inclusion proof must
//! lead to the checkpoint's root, and the checkpoint (a C2SP signed note) must be
//! signed by the log.

use cairn_tlog::merkle::{Hash, leaf_hash, root_from_inclusion_proof};
use cairn_tlog::note::Note;
use serde_json::Value;

use crate::crypto::sha256;
use crate::error::VerifyError;
use crate::hex;
use crate::trust::{Log, TrustedRoot};
use crate::wire;

const MAX_PROOF_HASHES: usize = 64;

/// What the bundle signed, as the log entry must describe it.
#[derive(Debug)]
pub(crate) struct Signed<'a> {
    /// SHA-256 of what was signed: the artifact, or the DSSE PAE.
    pub message_sha256: [u8; 32],
    /// The signature bytes (the first DSSE signature for an envelope).
    pub signature: &'a [u8],
    /// The DSSE envelope, if the bundle holds one.
    pub dsse: Option<Dsse<'a>>,
    /// The signing certificate (DER), or the verification key (DER SPKI).
    pub verifier: Verifier<'a>,
}

#[derive(Debug)]
pub(crate) struct Dsse<'a> {
    pub payload: &'a [u8],
    pub payload_b64: &'a str,
    pub signatures: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Verifier<'a> {
    Certificate(&'a [u8]),
    Key(&'a [u8]),
}

/// What a verified entry proves.
#[derive(Debug, Clone)]
pub struct VerifiedEntry {
    pub log_index: i64,
    pub log_base_url: String,
    pub kind: String,
    /// The integrated time, when the log signed it (an inclusion promise).
    pub signed_time: Option<i64>,
    pub inclusion_proof: bool,
    /// When the log's key was trusted.
    pub log_validity: crate::trust::Window,
}

fn body_err(entry: usize, what: &'static str) -> VerifyError {
    VerifyError::TlogBody { entry, what }
}

fn get<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn get_str<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    get(v, path)?.as_str()
}

fn b64_field(
    v: &Value,
    path: &[&str],
    entry: usize,
    what: &'static str,
) -> Result<Vec<u8>, VerifyError> {
    let s = get_str(v, path).ok_or_else(|| body_err(entry, what))?;
    crate::b64(s, what)
}

/// The DER of a PEM certificate or public key, base64-wrapped in a body.
fn pem_verifier(v: &Value, path: &[&str], entry: usize) -> Result<Vec<u8>, VerifyError> {
    let pem = b64_field(v, path, entry, "the entry's verifier")?;
    if let Some(der) = crate::crypto::pem_block(&pem, "CERTIFICATE").ok().flatten() {
        return Ok(der);
    }
    crate::crypto::pem_block(&pem, "PUBLIC KEY")?
        .ok_or_else(|| body_err(entry, "the entry's verifier is not PEM"))
}

fn verifier_matches(found: &[u8], expected: Verifier<'_>) -> bool {
    match expected {
        Verifier::Certificate(der) | Verifier::Key(der) => found == der,
    }
}

/// Checks that the entry's body describes the bundle's signature, content and verifier.
fn check_body(
    entry: usize,
    body: &Value,
    kind: &str,
    version: &str,
    signed: &Signed<'_>,
) -> Result<(), VerifyError> {
    let spec = body.get("spec").ok_or_else(|| body_err(entry, "no spec"))?;
    match (kind, version) {
        ("hashedrekord", "0.0.1") => {
            if get_str(spec, &["data", "hash", "algorithm"]) != Some("sha256") {
                return Err(body_err(entry, "the hash algorithm is not sha256"));
            }
            if get_str(spec, &["data", "hash", "value"])
                != Some(hex(&signed.message_sha256).as_str())
            {
                return Err(body_err(entry, "the logged digest is not the artifact's"));
            }
            if b64_field(
                spec,
                &["signature", "content"],
                entry,
                "the logged signature",
            )? != signed.signature
            {
                return Err(body_err(entry, "the logged signature is not the bundle's"));
            }
            let v = pem_verifier(spec, &["signature", "publicKey", "content"], entry)?;
            if !verifier_matches(&v, signed.verifier) {
                return Err(body_err(
                    entry,
                    "the logged certificate or key is not the bundle's",
                ));
            }
        }
        ("hashedrekord", "0.0.2") => {
            let s = spec
                .get("hashedRekordV002")
                .ok_or_else(|| body_err(entry, "no hashedRekordV002"))?;
            if get_str(s, &["data", "algorithm"]) != Some("SHA2_256") {
                return Err(body_err(entry, "the hash algorithm is not SHA2_256"));
            }
            if b64_field(s, &["data", "digest"], entry, "the logged digest")?
                != signed.message_sha256
            {
                return Err(body_err(entry, "the logged digest is not the artifact's"));
            }
            if b64_field(s, &["signature", "content"], entry, "the logged signature")?
                != signed.signature
            {
                return Err(body_err(entry, "the logged signature is not the bundle's"));
            }
            check_v2_verifier(entry, s.get("signature"), signed)?;
        }
        ("dsse", "0.0.1") => {
            let dsse = signed
                .dsse
                .as_ref()
                .ok_or_else(|| body_err(entry, "a dsse entry for a message signature"))?;
            if get_str(spec, &["payloadHash", "algorithm"]) != Some("sha256")
                || get_str(spec, &["payloadHash", "value"])
                    != Some(hex(&sha256(dsse.payload)).as_str())
            {
                return Err(body_err(
                    entry,
                    "the logged payload hash is not the envelope's",
                ));
            }
            let sigs = spec
                .get("signatures")
                .and_then(Value::as_array)
                .ok_or_else(|| body_err(entry, "no signatures"))?;
            check_sig_list(
                entry,
                sigs,
                dsse,
                signed,
                &["signature"],
                &["verifier"],
                false,
            )?;
        }
        ("dsse", "0.0.2") => {
            let dsse = signed
                .dsse
                .as_ref()
                .ok_or_else(|| body_err(entry, "a dsse entry for a message signature"))?;
            let s = spec
                .get("dsseV002")
                .ok_or_else(|| body_err(entry, "no dsseV002"))?;
            if get_str(s, &["payloadHash", "algorithm"]) != Some("SHA2_256")
                || b64_field(
                    s,
                    &["payloadHash", "digest"],
                    entry,
                    "the logged payload hash",
                )? != sha256(dsse.payload)
            {
                return Err(body_err(
                    entry,
                    "the logged payload hash is not the envelope's",
                ));
            }
            let sigs = s
                .get("signatures")
                .and_then(Value::as_array)
                .ok_or_else(|| body_err(entry, "no signatures"))?;
            if sigs.len() != dsse.signatures.len() {
                return Err(body_err(
                    entry,
                    "the logged signatures are not the envelope's",
                ));
            }
            for (logged, sig) in sigs.iter().zip(&dsse.signatures) {
                if &b64_field(logged, &["content"], entry, "a logged signature")? != sig {
                    return Err(body_err(
                        entry,
                        "the logged signatures are not the envelope's",
                    ));
                }
                check_v2_verifier(entry, Some(logged), signed)?;
            }
        }
        ("intoto", "0.0.2") => {
            let dsse = signed
                .dsse
                .as_ref()
                .ok_or_else(|| body_err(entry, "an intoto entry for a message signature"))?;
            let content = spec
                .get("content")
                .ok_or_else(|| body_err(entry, "no content"))?;
            let env = content
                .get("envelope")
                .ok_or_else(|| body_err(entry, "no envelope"))?;
            // The 0.0.2 body base64-encodes the envelope's (already base64) fields once more.
            let payload = b64_field(env, &["payload"], entry, "the logged payload")?;
            if payload != dsse.payload_b64.as_bytes() && payload != dsse.payload {
                return Err(body_err(entry, "the logged payload is not the envelope's"));
            }
            if get_str(content, &["payloadHash", "algorithm"]) != Some("sha256")
                || get_str(content, &["payloadHash", "value"])
                    != Some(hex(&sha256(dsse.payload)).as_str())
            {
                return Err(body_err(
                    entry,
                    "the logged payload hash is not the envelope's",
                ));
            }
            let sigs = env
                .get("signatures")
                .and_then(Value::as_array)
                .ok_or_else(|| body_err(entry, "no signatures"))?;
            check_sig_list(entry, sigs, dsse, signed, &["sig"], &["publicKey"], true)?;
        }
        _ => {
            return Err(VerifyError::TlogEntry {
                entry,
                what: "unsupported entry kind or version",
            });
        }
    }
    Ok(())
}

fn check_v2_verifier(
    entry: usize,
    sig: Option<&Value>,
    signed: &Signed<'_>,
) -> Result<(), VerifyError> {
    let sig = sig.ok_or_else(|| body_err(entry, "no signature"))?;
    let found = if let Some(raw) = get_str(sig, &["verifier", "x509Certificate", "rawBytes"]) {
        crate::b64(raw, "the logged certificate")?
    } else if let Some(raw) = get_str(sig, &["verifier", "publicKey", "rawBytes"]) {
        crate::b64(raw, "the logged key")?
    } else {
        return Err(body_err(entry, "no verifier"));
    };
    if !verifier_matches(&found, signed.verifier) {
        return Err(body_err(
            entry,
            "the logged certificate or key is not the bundle's",
        ));
    }
    Ok(())
}

fn check_sig_list(
    entry: usize,
    logged: &[Value],
    dsse: &Dsse<'_>,
    signed: &Signed<'_>,
    sig_path: &[&str],
    key_path: &[&str],
    double_b64: bool,
) -> Result<(), VerifyError> {
    if logged.len() != dsse.signatures.len() {
        return Err(body_err(
            entry,
            "the logged signatures are not the envelope's",
        ));
    }
    for (l, sig) in logged.iter().zip(&dsse.signatures) {
        let got = b64_field(l, sig_path, entry, "a logged signature")?;
        // intoto 0.0.2 bodies hold the signature base64-encoded once more by
        // some clients, and as is by others.
        let twice = double_b64
            .then(|| std::str::from_utf8(&got).ok())
            .flatten()
            .and_then(|text| crate::b64(text, "a logged signature").ok());
        let got = match twice {
            Some(inner) if &inner == sig => inner,
            _ => got,
        };
        if &got != sig {
            return Err(body_err(
                entry,
                "the logged signatures are not the envelope's",
            ));
        }
        let v = pem_verifier(l, key_path, entry)?;
        if !verifier_matches(&v, signed.verifier) {
            return Err(body_err(
                entry,
                "the logged certificate or key is not the bundle's",
            ));
        }
    }
    Ok(())
}

/// The SET payload Rekor signs: canonical JSON (RFC 8785), keys sorted, no
/// whitespace. Written directly; the body string is escaped by serde_json.
fn set_payload(body_b64: &str, integrated_time: i64, log_id: &[u8], log_index: i64) -> Vec<u8> {
    let body = serde_json::Value::from(body_b64).to_string();
    format!(
        r#"{{"body":{body},"integratedTime":{integrated_time},"logID":"{}","logIndex":{log_index}}}"#,
        hex(log_id)
    )
    .into_bytes()
}

fn find_log<'r>(root: &'r TrustedRoot, key_id: &[u8]) -> Option<&'r Log> {
    // A log whose validity has no start is never trusted (see `Window`).
    root.tlogs
        .iter()
        .find(|l| l.key_id == key_id && l.valid.start.is_some())
}

/// Verifies one entry. `require_proof`: bundles v0.2 and later must carry an inclusion proof.
pub(crate) fn verify_entry(
    index: usize,
    e: &wire::TlogEntry,
    signed: &Signed<'_>,
    root: &TrustedRoot,
    now: i64,
    require_proof: bool,
) -> Result<VerifiedEntry, VerifyError> {
    let entry_err = |what| VerifyError::TlogEntry { entry: index, what };
    if e.log_index < 0 {
        return Err(VerifyError::Bundle {
            what: "a negative log index",
        });
    }
    let body_bytes = crate::b64(&e.canonicalized_body, "the canonicalized body")?;
    let body: Value = serde_json::from_slice(&body_bytes).map_err(|source| VerifyError::Json {
        what: "the canonicalized body",
        source,
    })?;
    let parsed = <wire::RekorBody as serde::Deserialize>::deserialize(&body).map_err(|source| {
        VerifyError::Json {
            what: "the canonicalized body",
            source,
        }
    })?;
    if parsed.kind != e.kind_version.kind || parsed.api_version != e.kind_version.version {
        return Err(body_err(index, "kind and version differ from the entry's"));
    }
    check_body(index, &body, &parsed.kind, &parsed.api_version, signed)?;

    let log_id = crate::b64(&e.log_id.key_id, "the log id")?;
    let log =
        find_log(root, &log_id).ok_or_else(|| entry_err("the entry is not from a trusted log"))?;

    let mut signed_time = None;
    if let Some(t) = e.integrated_time.filter(|&t| t > now) {
        return Err(VerifyError::IntegratedTimeInFuture {
            entry: index,
            integrated: t,
            now,
        });
    }
    if let Some(promise) = &e.inclusion_promise {
        let t = e
            .integrated_time
            .ok_or_else(|| entry_err("an inclusion promise without an integrated time"))?;
        let sig = crate::b64(
            &promise.signed_entry_timestamp,
            "the signed entry timestamp",
        )?;
        let payload = set_payload(&e.canonicalized_body, t, &log_id, e.log_index);
        if !log.key.verify_default(&payload, &sig) {
            return Err(VerifyError::Set { entry: index });
        }
        if !log.valid.contains(t) {
            return Err(entry_err(
                "the log's key was not valid at the integrated time",
            ));
        }
        signed_time = Some(t);
    }

    let has_proof = match &e.inclusion_proof {
        Some(proof) => {
            verify_proof(index, proof, &body_bytes, log)?;
            true
        }
        None => false,
    };
    if !has_proof && (require_proof || signed_time.is_none()) {
        return Err(entry_err("the entry has no inclusion proof"));
    }
    Ok(VerifiedEntry {
        log_index: e.log_index,
        log_base_url: log.base_url.clone(),
        kind: parsed.kind,
        signed_time,
        inclusion_proof: has_proof,
        log_validity: log.valid,
    })
}

fn verify_proof(
    index: usize,
    proof: &wire::InclusionProof,
    body: &[u8],
    log: &Log,
) -> Result<(), VerifyError> {
    let err = |what| VerifyError::InclusionProof { entry: index, what };
    let idx = u64::try_from(proof.log_index).map_err(|_| VerifyError::Bundle {
        what: "a negative log index",
    })?;
    let size = u64::try_from(proof.tree_size).map_err(|_| err("a negative tree size"))?;
    if proof.hashes.len() > MAX_PROOF_HASHES {
        return Err(err("too many hashes"));
    }
    let to_hash = |s: &str| -> Result<Hash, VerifyError> {
        crate::b64(s, "an inclusion proof hash")?
            .try_into()
            .map_err(|_| err("a hash is not 32 bytes"))
    };
    let hashes = proof
        .hashes
        .iter()
        .map(|h| to_hash(h))
        .collect::<Result<Vec<_>, _>>()?;
    let root_hash = to_hash(&proof.root_hash)?;
    let computed = root_from_inclusion_proof(&leaf_hash(body), idx, size, &hashes)
        .map_err(|_| err("the proof does not fit the index and tree size"))?;
    if computed != root_hash {
        return Err(err("the proof does not lead to the root hash"));
    }
    let checkpoint = proof.checkpoint.as_ref().ok_or(VerifyError::Checkpoint {
        entry: index,
        what: "missing",
    })?;
    verify_checkpoint(index, &checkpoint.envelope, size, &root_hash, log)
}

/// A Rekor checkpoint: a signed note whose text is `origin\nsize\nbase64(root)\n[extensions]`
/// (C2SP tlog-checkpoint), signed by the log under the origin's name.
fn verify_checkpoint(
    index: usize,
    envelope: &str,
    size: u64,
    root: &Hash,
    log: &Log,
) -> Result<(), VerifyError> {
    let err = |what| VerifyError::Checkpoint { entry: index, what };
    let note = Note::parse(envelope.as_bytes()).map_err(|_| err("not a signed note"))?;
    let mut lines = note.text().lines();
    let origin = lines
        .next()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| err("no origin"))?;
    let note_size: u64 = lines
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| err("no tree size"))?;
    let note_root = lines
        .next()
        .and_then(|s| crate::b64(s, "the checkpoint root").ok())
        .ok_or_else(|| err("no root hash"))?;
    if note_size != size {
        return Err(err("its tree size is not the proof's"));
    }
    if note_root != root {
        return Err(err("its root hash is not the proof's"));
    }
    // Rekor v1 origins are `<host> - <tree id>`; the signer's name is the host.
    let name = origin.split(" - ").next().unwrap_or(origin);
    let hint_spki = log.key_hint();
    let hint_id: Option<[u8; 4]> = log.key_id.get(..4).and_then(|s| s.try_into().ok());
    let mut named = false;
    for sig in note.signatures() {
        if sig.name != name {
            continue;
        }
        named = true;
        let hint = sig.key_hash.to_be_bytes();
        if hint != hint_spki && Some(hint) != hint_id {
            continue;
        }
        if log
            .key
            .verify_default(note.text().as_bytes(), &sig.signature)
        {
            return Ok(());
        }
    }
    Err(err(if named {
        "no signature by the log's key verifies"
    } else {
        "no signature under the origin's name"
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_payload_is_the_canonical_json_rekor_signs() {
        // serde_json's sorted map is canonical for these four keys; the
        // hand-written payload must be byte for byte the same, escapes included.
        for body in ["eyJhIjoxfQ==", "", "quote\" back\\slash \u{1} é"] {
            let expected = serde_json::json!({
                "body": body,
                "integratedTime": -5,
                "logID": "00ff10",
                "logIndex": 79_571_823,
            })
            .to_string();
            assert_eq!(
                set_payload(body, -5, &[0x00, 0xff, 0x10], 79_571_823),
                expected.into_bytes()
            );
        }
    }
}
