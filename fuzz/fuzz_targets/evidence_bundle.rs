//! `cairn_evidence::Bundle::from_json` (cairn's key-based Sigstore bundles) on arbitrary bytes.
#![no_main]

use cairn_evidence::Bundle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = Bundle::from_json(data) {
        let json = bundle.to_json().expect("a parsed bundle serialises");
        let again = Bundle::from_json(json.as_bytes()).expect("its JSON parses again");
        assert_eq!(
            again.to_json().expect("serialises"),
            json,
            "round trip changed the bundle"
        );
    }
});
