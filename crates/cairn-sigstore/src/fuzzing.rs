//! Entry points for `fuzz/` (cargo-fuzz) into the crate's private DER
//! readers: certificates and their extensions, the precertificate TBS of
//! RFC 6962 §3.2, the embedded SCT list, and RFC 3161 / CMS timestamps. Not
//! part of the API: the fuzz targets need a way in, and each function only
//! runs the same code [`crate::verify`] runs on untrusted bytes.

use crate::error::VerifyError;
use crate::trust::TrustedRoot;
use crate::x509::{self, Cert};

/// Parses `der` as a certificate and reads everything verification reads
/// from a leaf: identities, OIDC issuer, leaf checks, its precertificate TBS
/// and embedded SCTs (checked against no trusted log, with itself as issuer,
/// so they never verify), and its signature by itself. `Ok` would mean an
/// SCT verified without a trusted log: the fuzz target asserts it never does.
pub fn certificate(der: &[u8]) -> Result<(), VerifyError> {
    let cert = Cert::from_der(der)?;
    let _ = cert.identities();
    let _ = cert.oidc_issuer();
    let _ = x509::check_leaf(&cert);
    let _ = cert.signed_by(&cert);
    let _ = x509::precert_tbs(&cert.tbs_raw)?;
    x509::verify_embedded_sct(&cert, &cert, &[])
}

/// Reads `der` as an RFC 3161 timestamp over `signature`, against an empty
/// trusted root (so it never verifies).
pub fn timestamp(der: &[u8], signature: &[u8]) -> Result<i64, VerifyError> {
    crate::tsa::verify_timestamp(0, der, signature, &TrustedRoot::empty())
}

/// Splits `der` into DER elements, recursively, as far as the reader allows.
pub fn der_elements(der: &[u8]) -> usize {
    fn walk(mut input: &[u8], depth: usize) -> usize {
        let mut seen = 0;
        while let Ok((tlv, rest)) = crate::tlv::read(input, "fuzz input") {
            seen += 1;
            if tlv.tag & 0x20 != 0 && depth < 32 {
                seen += walk(tlv.content, depth + 1);
            }
            input = rest;
        }
        seen
    }
    walk(der, 0)
}
