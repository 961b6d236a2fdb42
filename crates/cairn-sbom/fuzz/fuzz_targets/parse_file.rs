//! Fuzzes every lockfile and package-database parser: the first byte picks the kind.
#![no_main]

use cairn_sbom::{FileKind, parse_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else { return };
    let kind = FileKind::ALL[usize::from(*first) % FileKind::ALL.len()];
    if let Ok(out) = parse_file(kind, "fuzz", rest, "debian") {
        for c in out.components {
            assert!(!c.name.is_empty() && !c.version.is_empty() && c.purl.starts_with("pkg:"));
        }
    }
});
