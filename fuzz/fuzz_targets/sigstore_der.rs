//! cairn-sigstore's DER readers: certificates with their Fulcio extensions,
//! precertificate TBS and embedded SCTs; RFC 3161 timestamps; raw TLV.
#![no_main]

use cairn_sigstore::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fuzzing::der_elements(data);
    // No SCT can verify against an empty list of trusted CT logs.
    assert!(fuzzing::certificate(data).is_err());
    // No timestamp can verify against an empty trusted root.
    assert!(fuzzing::timestamp(data, b"signature").is_err());
});
