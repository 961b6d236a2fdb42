//! Certificates: parsing (x509-cert), chain building to a trusted CA
//! (RFC 5280 §6, reduced to what Fulcio and TSA chains need), Fulcio identity
//! extensions, and embedded SCTs (RFC 6962 §3.2–3.3).

use der::Decode;
use der::asn1::ObjectIdentifier;
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, SubjectAltName};

use crate::crypto::{HashAlg, PublicKey, sha256};
use crate::error::VerifyError;
use crate::tlv;
use crate::trust::Log;

/// Fulcio's OIDC issuer extension (v2): a DER UTF8String.
const OID_FULCIO_ISSUER_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
/// Fulcio's legacy OIDC issuer extension (v1): the raw string bytes.
const OID_FULCIO_ISSUER_V1: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// The embedded SCT list extension (RFC 6962 §3.3), DER of 1.3.6.1.4.1.11129.2.4.2.
const OID_SCT_LIST_DER: [u8; 10] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02];
const OID_SCT_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.2");
const MAX_SCTS: usize = 64;

/// A parsed certificate with the raw bytes its signature covers.
#[derive(Debug, Clone)]
pub(crate) struct Cert {
    pub der: Vec<u8>,
    pub parsed: Certificate,
    pub(crate) tbs_raw: Vec<u8>,
    /// The subjectPublicKeyInfo as encoded in the certificate.
    pub(crate) spki_raw: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
    pub key: Option<PublicKey>,
}

impl Cert {
    pub(crate) fn from_der(der_bytes: &[u8]) -> Result<Cert, VerifyError> {
        let parsed = Certificate::from_der(der_bytes).map_err(|source| VerifyError::X509 {
            what: "a certificate",
            source,
        })?;
        let (outer, _) = tlv::expect(der_bytes, tlv::SEQUENCE, "a certificate")?;
        let (tbs, _) = tlv::expect(outer.content, tlv::SEQUENCE, "a certificate's TBS")?;
        // TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber,
        // signature, issuer, validity, subject, subjectPublicKeyInfo, ... }
        // (RFC 5280 §4.1); x509-cert has already checked that shape.
        let fields = tlv::children(tbs.content, 16, "a certificate's TBS")?;
        let spki_at = if fields.first().is_some_and(|f| f.tag == 0xa0) {
            6
        } else {
            5
        };
        let spki = fields
            .get(spki_at)
            .filter(|f| f.tag == tlv::SEQUENCE)
            .ok_or(VerifyError::Der {
                what: "a certificate's public key",
            })?;
        let validity = parsed.tbs_certificate().validity();
        let secs = |t: x509_cert::time::Time| {
            i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
        };
        Ok(Cert {
            der: der_bytes.to_vec(),
            tbs_raw: tbs.raw.to_vec(),
            spki_raw: spki.raw.to_vec(),
            not_before: secs(validity.not_before),
            not_after: secs(validity.not_after),
            // A key we cannot use is only an error if we need it.
            key: PublicKey::from_spki_der(spki.raw).ok(),
            parsed,
        })
    }

    pub(crate) fn valid_at(&self, t: i64) -> bool {
        self.not_before <= t && t <= self.not_after
    }

    fn is_ca(&self) -> bool {
        matches!(
            self.parsed
                .tbs_certificate()
                .get_extension::<BasicConstraints>(),
            Ok(Some((_, BasicConstraints { ca: true, .. })))
        )
    }

    /// True when the certificate's extended key usage lists `oid` (dotted).
    pub(crate) fn has_eku(&self, oid: &ObjectIdentifier) -> bool {
        match self
            .parsed
            .tbs_certificate()
            .get_extension::<ExtendedKeyUsage>()
        {
            Ok(Some((_, eku))) => eku.0.iter().any(|o| o == oid),
            _ => false,
        }
    }

    pub(crate) fn is_self_issued(&self) -> bool {
        self.parsed.tbs_certificate().subject() == self.parsed.tbs_certificate().issuer()
    }

    /// True when `issuer` names this certificate's issuer and its key verifies the signature.
    pub(crate) fn signed_by(&self, issuer: &Cert) -> bool {
        if self.parsed.tbs_certificate().issuer() != issuer.parsed.tbs_certificate().subject() {
            return false;
        }
        let Some(key) = &issuer.key else {
            return false;
        };
        let Some(sig) = self.parsed.signature().as_bytes() else {
            return false;
        };
        key.verify_oid(
            &self.parsed.signature_algorithm().oid,
            None,
            &self.tbs_raw,
            sig,
        )
    }

    /// The SAN URIs and email addresses.
    pub(crate) fn identities(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(Some((_, san))) = self
            .parsed
            .tbs_certificate()
            .get_extension::<SubjectAltName>()
        {
            for name in san.0 {
                match name {
                    GeneralName::UniformResourceIdentifier(s) | GeneralName::Rfc822Name(s) => {
                        out.push(s.to_string());
                    }
                    _ => {}
                }
            }
        }
        out
    }

    fn extension(&self, oid: &ObjectIdentifier) -> Option<&[u8]> {
        self.parsed
            .tbs_certificate()
            .extensions()?
            .iter()
            .find(|e| e.extn_id == *oid)
            .map(|e| e.extn_value.as_bytes())
    }

    /// The OIDC issuer Fulcio recorded: the v2 extension, else the legacy v1 one.
    pub(crate) fn oidc_issuer(&self) -> Option<String> {
        if let Some(v) = self.extension(&OID_FULCIO_ISSUER_V2) {
            let s = der::asn1::Utf8StringRef::from_der(v).ok()?;
            return Some(s.as_str().to_owned());
        }
        self.extension(&OID_FULCIO_ISSUER_V1)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_owned)
    }
}

/// A trusted certificate chain (a CA's or TSA's, from the trusted root),
/// parsed once, with the signatures among its members checked once: they are
/// fixed by the trusted root, and whether a signature verifies does not
/// depend on the time. Only the untrusted certificate a path starts from is
/// checked on every verification.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    pub certs: Vec<Cert>,
    is_ca: Vec<bool>,
    /// `signed[i][j]`: certificate `i` names `j` as its issuer and `j`'s key
    /// verifies its signature ([`Cert::signed_by`]).
    signed: Vec<Vec<bool>>,
}

impl Pool {
    pub(crate) fn new(ders: &[Vec<u8>]) -> Result<Pool, VerifyError> {
        let certs = ders
            .iter()
            .map(|d| Cert::from_der(d))
            .collect::<Result<Vec<_>, _>>()?;
        let is_ca = certs.iter().map(Cert::is_ca).collect();
        let signed = certs
            .iter()
            .map(|c| certs.iter().map(|issuer| c.signed_by(issuer)).collect())
            .collect();
        Ok(Pool {
            certs,
            is_ca,
            signed,
        })
    }

    /// Whether member `i` is signed by member `j`.
    pub(crate) fn signed(&self, i: usize, j: usize) -> bool {
        self.signed
            .get(i)
            .and_then(|row| row.get(j))
            .copied()
            .unwrap_or(false)
    }
}

/// A certificate on a path being built: the start, or a pool member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Start,
    Member(usize),
}

/// Builds a path from `start` to a self-signed root using only the members
/// of `pool` from index `from` on (the trusted chain), every certificate
/// valid at `time`. `start_signed_by(j)` says whether `start` is signed by
/// member `j` (checked live for an untrusted certificate; looked up for a
/// member). Returns the path, start first.
pub(crate) fn build_path<'p>(
    start: &'p Cert,
    start_signed_by: &mut dyn FnMut(usize) -> bool,
    pool: &'p Pool,
    from: usize,
    time: i64,
) -> Result<Vec<&'p Cert>, VerifyError> {
    if !start.valid_at(time) {
        return Err(VerifyError::CertificateValidity {
            time,
            not_before: start.not_before,
            not_after: start.not_after,
        });
    }
    let members = from.min(pool.certs.len())..pool.certs.len();
    let anchor = pool.certs.get(members.clone()).and_then(<[Cert]>::last);
    let cert = |n: Node| match n {
        Node::Start => start,
        Node::Member(i) => &pool.certs[i],
    };
    let mut path = vec![Node::Start];
    for _ in 0..crate::MAX_CHAIN {
        let current = *path
            .last()
            .ok_or(VerifyError::Chain { what: "empty path" })?;
        // Done at a self-signed root of the trusted chain, or at its last
        // certificate (the anchor the trusted root lists).
        let at_anchor = match current {
            Node::Member(i) if path.len() > 1 => {
                let c = &pool.certs[i];
                (c.is_self_issued() && pool.signed(i, i)) || anchor.is_some_and(|a| a.der == c.der)
            }
            _ => false,
        };
        if at_anchor {
            return Ok(path.into_iter().map(cert).collect());
        }
        let issuer = members.clone().find(|&j| {
            pool.is_ca[j]
                && match current {
                    Node::Start => start_signed_by(j),
                    Node::Member(i) => pool.signed(i, j),
                }
                && !path.iter().any(|&p| cert(p).der == pool.certs[j].der)
        });
        let Some(issuer) = issuer else {
            return Err(VerifyError::Chain {
                what: "no trusted issuer signed the certificate",
            });
        };
        if !pool.certs[issuer].valid_at(time) {
            return Err(VerifyError::Chain {
                what: "an issuing certificate is not valid at the signing time",
            });
        }
        path.push(Node::Member(issuer));
    }
    Err(VerifyError::Chain {
        what: "the chain is longer than the limit",
    })
}

/// id-kp-codeSigning (RFC 5280 §4.2.1.12), which Fulcio puts in every leaf.
const OID_KP_CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// id-kp-timeStamping (RFC 3161 §2.3), required of a TSA's signing certificate.
pub(crate) const OID_KP_TIME_STAMPING: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");

/// A Fulcio signing certificate is an end-entity certificate for code signing.
pub(crate) fn check_leaf(leaf: &Cert) -> Result<(), VerifyError> {
    if leaf.is_ca() {
        return Err(VerifyError::Chain {
            what: "the signing certificate is a CA certificate",
        });
    }
    if !leaf.has_eku(&OID_KP_CODE_SIGNING) {
        return Err(VerifyError::Chain {
            what: "the signing certificate is not for code signing (extended key usage)",
        });
    }
    Ok(())
}

/// The precertificate TBS an embedded SCT signs: the leaf's TBS without the
/// SCT list extension (RFC 6962 §3.2; the poison extension is already absent).
pub(crate) fn precert_tbs(tbs_raw: &[u8]) -> Result<Vec<u8>, VerifyError> {
    const WHAT: &str = "the certificate's TBS";
    let (tbs, _) = tlv::expect(tbs_raw, tlv::SEQUENCE, WHAT)?;
    let mut out = Vec::with_capacity(tbs.raw.len());
    for field in tlv::children(tbs.content, 16, WHAT)? {
        if field.tag != 0xa3 {
            out.extend_from_slice(field.raw);
            continue;
        }
        let (exts, _) = tlv::expect(field.content, tlv::SEQUENCE, WHAT)?;
        let mut kept = Vec::with_capacity(exts.raw.len());
        for ext in tlv::children(exts.content, 256, WHAT)? {
            let (oid, _) = tlv::expect(ext.content, tlv::OID, WHAT)?;
            if oid.content != OID_SCT_LIST_DER {
                kept.extend_from_slice(ext.raw);
            }
        }
        out.extend_from_slice(&tlv::encode(0xa3, &tlv::encode(tlv::SEQUENCE, &kept)));
    }
    Ok(tlv::encode(tlv::SEQUENCE, &out))
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], VerifyError> {
        if self.0.len() < n {
            return Err(VerifyError::Sct {
                what: "the SCT list is truncated",
            });
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn uint(&mut self, n: usize) -> Result<u64, VerifyError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }
    fn vec(&mut self, len_bytes: usize) -> Result<&'a [u8], VerifyError> {
        let n = usize::try_from(self.uint(len_bytes)?).map_err(|_| VerifyError::Sct {
            what: "an SCT length overflows",
        })?;
        self.take(n)
    }
}

/// Verifies that at least one SCT embedded in `leaf` is signed by a trusted CT
/// log (RFC 6962 §3.2 precert entry). `issuer` is the certificate that signed `leaf`.
pub(crate) fn verify_embedded_sct(
    leaf: &Cert,
    issuer: &Cert,
    ctlogs: &[Log],
) -> Result<(), VerifyError> {
    let ext = leaf.extension(&OID_SCT_LIST).ok_or(VerifyError::Sct {
        what: "the certificate has no embedded SCTs",
    })?;
    let (octets, _) = tlv::expect(ext, tlv::OCTET_STRING, "the SCT list")?;
    let mut list = Reader(octets.content);
    let mut scts = Reader(list.vec(2)?);
    let tbs = precert_tbs(&leaf.tbs_raw)?;
    let issuer_key_hash = sha256(&issuer.spki_raw);
    let tbs_len = u32::try_from(tbs.len())
        .ok()
        .filter(|&n| n < 1 << 24)
        .ok_or(VerifyError::Sct {
            what: "the precertificate is too large",
        })?;
    let mut seen = 0;
    while !scts.0.is_empty() {
        seen += 1;
        if seen > MAX_SCTS {
            return Err(VerifyError::Sct {
                what: "too many SCTs",
            });
        }
        let mut sct = Reader(scts.vec(2)?);
        let version = sct.uint(1)?;
        let log_id = sct.take(32)?;
        let timestamp = sct.uint(8)?;
        let extensions = sct.vec(2)?;
        let hash = sct.uint(1)?;
        let _sig_alg = sct.uint(1)?;
        let sig = sct.vec(2)?;
        if version != 0 {
            continue;
        }
        let hash = match hash {
            4 => HashAlg::Sha256,
            5 => HashAlg::Sha384,
            6 => HashAlg::Sha512,
            _ => continue,
        };
        let mut signed = Vec::with_capacity(tbs.len() + 64);
        signed.extend_from_slice(&[0, 0]); // v1, certificate_timestamp
        signed.extend_from_slice(&timestamp.to_be_bytes());
        signed.extend_from_slice(&[0, 1]); // precert_entry
        signed.extend_from_slice(&issuer_key_hash);
        signed.extend_from_slice(&tbs_len.to_be_bytes()[1..]);
        signed.extend_from_slice(&tbs);
        let ext_len = u16::try_from(extensions.len()).map_err(|_| VerifyError::Sct {
            what: "SCT extensions too long",
        })?;
        signed.extend_from_slice(&ext_len.to_be_bytes());
        signed.extend_from_slice(extensions);
        let t = i64::try_from(timestamp / 1000).unwrap_or(i64::MAX);
        let ok = ctlogs.iter().any(|log| {
            log.key_id == log_id
                && log.valid.contains(t)
                && log.key.verify_with(hash, false, &signed, sig)
        });
        if ok {
            return Ok(());
        }
    }
    Err(VerifyError::Sct {
        what: "no embedded SCT verifies with a trusted CT log key",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(oid: &[u8], value: &[u8]) -> Vec<u8> {
        let mut c = tlv::encode(tlv::OID, oid);
        c.extend(tlv::encode(tlv::OCTET_STRING, value));
        tlv::encode(tlv::SEQUENCE, &c)
    }

    #[test]
    fn precert_tbs_drops_only_the_sct_extension() {
        let other = ext(&[0x55, 0x1d, 0x0f], &[0x03, 0x02, 0x07, 0x80]);
        let sct = ext(&OID_SCT_LIST_DER, &[0x04, 0x02, 0x00, 0x00]);
        let serial = tlv::encode(tlv::INTEGER, &[0x05]);
        let build = |exts: &[&[u8]]| {
            let mut body = serial.clone();
            body.extend(tlv::encode(
                0xa3,
                &tlv::encode(tlv::SEQUENCE, &exts.concat()),
            ));
            tlv::encode(tlv::SEQUENCE, &body)
        };
        let with = build(&[&other, &sct]);
        let without = build(&[&other]);
        assert_eq!(precert_tbs(&with).expect("parses"), without);
        assert_eq!(precert_tbs(&without).expect("parses"), without);
        assert!(precert_tbs(&with[..with.len() - 1]).is_err());
    }

    /// The conformance suite's production trusted root (see tests/conformance.rs).
    fn production_root() -> crate::TrustedRoot {
        let path =
            cairn_testkit::conformance("sigstore-bundle-verify/production_trusted_root.json");
        let bytes = std::fs::read(&path).expect("the conformance suite's trusted root");
        crate::TrustedRoot::from_json(&bytes).expect("parses")
    }

    #[test]
    fn prepared_pools_agree_with_live_signature_checks() {
        let root = production_root();
        let mut relations = 0;
        for a in root
            .certificate_authorities
            .iter()
            .chain(&root.timestamp_authorities)
        {
            let pool = a.pool().expect("the production chains parse");
            assert_eq!(pool.certs.len(), a.chain().len());
            for (i, c) in pool.certs.iter().enumerate() {
                assert_eq!(c.der, a.chain()[i]);
                for (j, issuer) in pool.certs.iter().enumerate() {
                    let live = c.signed_by(issuer);
                    assert_eq!(pool.signed(i, j), live, "{i} signed by {j}");
                    relations += usize::from(live);
                }
            }
            assert!(!pool.signed(pool.certs.len(), 0), "out of range is false");
        }
        // Fulcio intermediates signed by their roots, self-signed roots.
        assert!(
            relations >= 4,
            "only {relations} signatures among the chains"
        );
    }

    #[test]
    fn a_path_from_a_member_uses_the_pool_and_stops_at_the_anchor() {
        let root = production_root();
        let ca = root
            .certificate_authorities
            .iter()
            .find(|a| a.chain().len() == 2)
            .expect("a CA with an intermediate");
        let pool = ca.pool().expect("parses");
        let (first, anchor) = (&pool.certs[0], &pool.certs[1]);
        let t = first.not_before.max(anchor.not_before);
        let path = build_path(first, &mut |j| pool.signed(0, j), pool, 1, t).expect("chains");
        assert_eq!(path.len(), 2);
        assert_eq!(path[1].der, anchor.der);
        // Outside the intermediate's validity, no path.
        assert!(matches!(
            build_path(
                first,
                &mut |j| pool.signed(0, j),
                pool,
                1,
                first.not_before - 1
            ),
            Err(VerifyError::CertificateValidity { .. })
        ));
        // A start no member signed finds no issuer.
        assert!(matches!(
            build_path(first, &mut |_| false, pool, 1, t),
            Err(VerifyError::Chain { .. })
        ));
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(Cert::from_der(b"").is_err());
        assert!(Cert::from_der(&[0x30, 0x00]).is_err());
    }
}
