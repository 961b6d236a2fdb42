//! cairn-tlog's C2SP signed-note and checkpoint parsers on arbitrary bytes.
#![no_main]

use cairn_tlog::checkpoint::{self, Checkpoint};
use cairn_tlog::note::{Note, Verifier};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = Note::parse(data) {
        // A parsed note re-serialises to a note that parses to the same.
        let text = note.to_text();
        let again = Note::parse(text.as_bytes()).expect("a serialised note parses");
        assert_eq!(again, note);
        let _ = Checkpoint::parse(note.text());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cp) = Checkpoint::parse(text) {
            let again = Checkpoint::parse(&cp.to_text()).expect("a serialised checkpoint parses");
            assert_eq!(again, cp);
        }
        let _ = Verifier::parse(text);
    }
    // No verifiers: nothing can open.
    assert!(checkpoint::open(data, "origin", &[]).is_err());
});
