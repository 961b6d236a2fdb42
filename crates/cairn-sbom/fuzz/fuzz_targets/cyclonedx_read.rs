//! Fuzzes the strict CycloneDX reader.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cairn_sbom::cyclonedx_read::read(data);
});
