//! RFC 3161 signed timestamps: a TimeStampResp (or bare TimeStampToken), whose
//! CMS SignedData (RFC 5652 §5) carries a TSTInfo (RFC 3161 §2.4.2). The token
//! must be signed by a timestamp authority of the trusted root, valid at
//! `genTime`, and its message imprint must be the hash of the bundle's signature.

use der::Decode;
use der::asn1::ObjectIdentifier;

use crate::crypto::HashAlg;
use crate::error::VerifyError;
use crate::time::parse_generalized_time;
use crate::tlv::{self, Tlv};
use crate::trust::TrustedRoot;
use crate::x509::Cert;

const OID_SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const OID_TST_INFO: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04,
];
const OID_MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
const OID_CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
const MAX_CERTS: usize = 16;

fn oid(t: &Tlv<'_>) -> Result<ObjectIdentifier, VerifyError> {
    ObjectIdentifier::from_der(t.raw).map_err(|source| VerifyError::X509 {
        what: "an object identifier",
        source,
    })
}

/// The hash algorithm of a DER AlgorithmIdentifier.
fn hash_alg(alg: &Tlv<'_>, what: &'static str) -> Result<HashAlg, VerifyError> {
    let (o, _) = tlv::expect(alg.content, tlv::OID, what)?;
    HashAlg::from_oid(&oid(&o)?).ok_or(VerifyError::Unsupported { what })
}

/// Verifies one timestamp; returns its `genTime` (Unix seconds).
pub(crate) fn verify_timestamp(
    index: usize,
    bytes: &[u8],
    signature: &[u8],
    root: &TrustedRoot,
) -> Result<i64, VerifyError> {
    let err = |what| VerifyError::Timestamp { index, what };
    const W: &str = "an RFC 3161 timestamp";
    // TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken OPTIONAL },
    // or a bare ContentInfo.
    let (outer, _) = tlv::expect(bytes, tlv::SEQUENCE, W)?;
    let parts = tlv::children(outer.content, 4, W)?;
    let token = match parts.first() {
        Some(first) if first.tag == tlv::SEQUENCE => {
            let status = tlv::children(first.content, 4, W)?;
            let ok = status
                .first()
                .is_some_and(|s| s.tag == tlv::INTEGER && (s.content == [0] || s.content == [1]));
            if !ok {
                return Err(err("the timestamp response's status is not granted"));
            }
            *parts
                .get(1)
                .ok_or_else(|| err("the response carries no token"))?
        }
        _ => outer,
    };
    // ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT content }
    let ci = tlv::children(token.content, 2, W)?;
    let [ct, content] = ci.as_slice() else {
        return Err(err("malformed ContentInfo"));
    };
    if ct.tag != tlv::OID || ct.content != OID_SIGNED_DATA || content.tag != 0xa0 {
        return Err(err("the token is not CMS SignedData"));
    }
    let (sd, _) = tlv::expect(content.content, tlv::SEQUENCE, W)?;
    let sd = tlv::children(sd.content, 8, W)?;
    // version, digestAlgorithms, encapContentInfo, [0] certificates?, [1] crls?, signerInfos
    let encap = sd.get(2).ok_or_else(|| err("malformed SignedData"))?;
    let signer_infos = sd
        .last()
        .filter(|s| s.tag == tlv::SET)
        .ok_or_else(|| err("malformed SignedData"))?;
    let embedded: Vec<Cert> = match sd.iter().find(|t| t.tag == 0xa0) {
        Some(certs) => tlv::children(certs.content, MAX_CERTS, W)?
            .iter()
            .filter(|c| c.tag == tlv::SEQUENCE)
            .map(|c| Cert::from_der(c.raw))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let ec = tlv::children(encap.content, 2, W)?;
    let [ect, econtent] = ec.as_slice() else {
        return Err(err("the token has no TSTInfo"));
    };
    if ect.content != OID_TST_INFO || econtent.tag != 0xa0 {
        return Err(err("the token does not hold a TSTInfo"));
    }
    let (tst_octets, _) = tlv::expect(econtent.content, tlv::OCTET_STRING, W)?;
    let tst_der = tst_octets.content;

    // TSTInfo ::= SEQUENCE { version, policy, messageImprint, serialNumber, genTime, ... }
    let (tst, _) = tlv::expect(tst_der, tlv::SEQUENCE, W)?;
    let tst = tlv::children(tst.content, 12, W)?;
    let imprint = tst
        .get(2)
        .filter(|t| t.tag == tlv::SEQUENCE)
        .ok_or_else(|| err("malformed TSTInfo"))?;
    let gen_time = tst
        .get(4)
        .filter(|t| t.tag == tlv::GENERALIZED_TIME)
        .ok_or_else(|| err("malformed TSTInfo"))?;
    let imp = tlv::children(imprint.content, 2, W)?;
    let [imp_alg, imp_hash] = imp.as_slice() else {
        return Err(err("malformed message imprint"));
    };
    let alg = hash_alg(imp_alg, "the message imprint's hash algorithm")?;
    if imp_hash.tag != tlv::OCTET_STRING || imp_hash.content != alg.digest(signature).as_slice() {
        return Err(err(
            "the message imprint is not the hash of the bundle's signature",
        ));
    }
    let time = std::str::from_utf8(gen_time.content)
        .ok()
        .and_then(parse_generalized_time)
        .ok_or_else(|| err("genTime is not a GeneralizedTime"))?;

    // SignerInfo ::= SEQUENCE { version, sid, digestAlgorithm, [0] signedAttrs,
    //                           signatureAlgorithm, signature, [1] unsignedAttrs? }
    let mut last_failure = "no signer info";
    for si in tlv::children(signer_infos.content, 4, W)? {
        let f = tlv::children(si.content, 8, W)?;
        let (Some(digest_alg), Some(attrs)) = (f.get(2), f.get(3)) else {
            return Err(err("malformed SignerInfo"));
        };
        if attrs.tag != 0xa0 {
            return Err(err("the SignerInfo has no signed attributes"));
        }
        let (Some(sig_alg), Some(sig)) = (f.get(4), f.get(5)) else {
            return Err(err("malformed SignerInfo"));
        };
        let digest = hash_alg(digest_alg, "the signer's digest algorithm")?;
        // The messageDigest attribute must be the hash of the TSTInfo (RFC 5652 §11.2).
        let mut digest_ok = false;
        let mut content_type_ok = false;
        for attr in tlv::children(attrs.content, 32, W)? {
            let a = tlv::children(attr.content, 2, W)?;
            let [t, values] = a.as_slice() else { continue };
            if t.content == OID_MESSAGE_DIGEST {
                let (v, _) = tlv::expect(values.content, tlv::OCTET_STRING, W)?;
                digest_ok = v.content == digest.digest(tst_der).as_slice();
            } else if t.content == OID_CONTENT_TYPE {
                let (v, _) = tlv::expect(values.content, tlv::OID, W)?;
                content_type_ok = v.content == OID_TST_INFO;
            }
        }
        if !digest_ok || !content_type_ok {
            last_failure = "the signed attributes do not match the TSTInfo";
            continue;
        }
        // The signature covers the DER of the attributes as a SET (RFC 5652 §5.4).
        let signed_attrs = tlv::encode(tlv::SET, attrs.content);
        let (sig_oid, _) = tlv::expect(sig_alg.content, tlv::OID, W)?;
        let sig_oid = oid(&sig_oid)?;
        if sig.tag != tlv::OCTET_STRING {
            return Err(err("malformed SignerInfo signature"));
        }
        match trusted_signer(&embedded, root, time, |c| {
            c.key
                .as_ref()
                .is_some_and(|k| k.verify_oid(&sig_oid, Some(digest), &signed_attrs, sig.content))
        }) {
            Ok(()) => return Ok(time),
            Err(what) => last_failure = what,
        }
    }
    Err(err(last_failure))
}

/// Finds a trusted TSA whose signing certificate (from the trusted root, or an
/// embedded one that chains to the TSA's root) `signs`, all valid at `time`.
fn trusted_signer(
    embedded: &[Cert],
    root: &TrustedRoot,
    time: i64,
    signs: impl Fn(&Cert) -> bool,
) -> Result<(), &'static str> {
    let mut failure = "no trusted timestamp authority signed the token";
    for tsa in &root.timestamp_authorities {
        let Ok(pool) = tsa.pool() else {
            continue;
        };
        let chain = &pool.certs;
        let Some(leaf) = chain.first() else { continue };
        let candidates = std::iter::once(leaf).chain(embedded.iter());
        for cand in candidates {
            if !signs(cand) {
                continue;
            }
            if !cand.has_eku(&crate::x509::OID_KP_TIME_STAMPING) {
                failure = "the signing certificate is not for time stamping";
                continue;
            }
            // The signer must be the TSA's own certificate, or chain to its root.
            let anchored = cand.der == leaf.der
                || crate::x509::build_path(
                    cand,
                    &mut |j| chain.get(j).is_some_and(|issuer| cand.signed_by(issuer)),
                    pool,
                    1,
                    time,
                )
                .is_ok();
            if !anchored {
                continue;
            }
            if !tsa.valid.contains(time) {
                failure = "the timestamp is outside the authority's validity in the trusted root";
                continue;
            }
            if !cand.valid_at(time) {
                failure = "the timestamp is outside the signing certificate's validity";
                continue;
            }
            if chain.len() > 1
                && crate::x509::build_path(leaf, &mut |j| pool.signed(0, j), pool, 1, time).is_err()
            {
                failure = "the authority's chain is not valid at the timestamp";
                continue;
            }
            return Ok(());
        }
    }
    Err(failure)
}
