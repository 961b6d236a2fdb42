//! Fuzzes the manifest, config and index readers: the first byte picks which.
//! Whatever parses must re-serialise.
#![no_main]

use cairn_oci::{parse_config, parse_index, parse_manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else { return };
    match first % 3 {
        0 => {
            if let Ok(m) = parse_manifest(rest) {
                assert_eq!(m.schema_version(), 2);
                let _ = m.to_string();
            }
        }
        1 => {
            if let Ok(c) = parse_config(rest) {
                assert_eq!(c.rootfs().typ(), "layers");
                let _ = c.to_string();
            }
        }
        _ => {
            if let Ok(i) = parse_index(rest) {
                let _ = i.to_string();
            }
        }
    }
});
