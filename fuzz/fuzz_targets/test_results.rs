//! cairn-model's test-report readers (JUnit XML, TAP / libtest / `go test -v`
//! lines) on arbitrary bytes: a step writes them, so they must never panic, and
//! what they keep stays within the bounds.
#![no_main]

use cairn_model::test_results::{MAX_NAME_BYTES, MAX_NAMED, TestReport, parse_junit, parse_lines};
use libfuzzer_sys::fuzz_target;

fn bounded(r: &TestReport) {
    for names in [&r.passed, &r.failed, &r.skipped] {
        assert!(names.len() <= MAX_NAMED);
        assert!(names.iter().all(|n| n.len() <= MAX_NAME_BYTES + '…'.len_utf8()));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = parse_junit(data) {
        bounded(&r);
        assert_eq!(r.total(), r.passed_count + r.failed_count + r.skipped_count);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(r) = parse_lines(text.lines())
    {
        bounded(&r);
    }
});
