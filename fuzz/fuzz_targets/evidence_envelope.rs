//! `cairn_evidence::Envelope::from_json` (DSSE envelope JSON) on arbitrary bytes.
#![no_main]

use cairn_evidence::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::from_json(data) {
        // What parses must serialise, and read back the same.
        let json = envelope.to_json().expect("a parsed envelope serialises");
        let again = Envelope::from_json(json.as_bytes()).expect("its JSON parses again");
        assert_eq!(
            again.to_json().expect("serialises"),
            json,
            "round trip changed the envelope"
        );
    }
});
