//! Reading test output: which tests failed, from the log lines of a test stage, in
//! the formats of the common runners (cargo/libtest, Go, pytest, unittest, Jest/TAP,
//! and a plain `FAIL: name` convention). Used to say *which* test failed in
//! `cairn explain`.

/// The names of failed tests found in `lines`, in order of first appearance,
/// without duplicates.
pub fn failed_tests<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for line in lines {
        if let Some(name) = failed_test_in(line.trim_end())
            && !name.is_empty()
            && !found.iter().any(|f| f == name)
        {
            found.push(name.to_owned());
        }
    }
    found
}

fn failed_test_in(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    // libtest: `test tests::adds ... FAILED`
    if let Some(rest) = trimmed.strip_prefix("test ")
        && let Some(name) = rest.strip_suffix(" ... FAILED")
    {
        return Some(name.trim());
    }
    // Go: `--- FAIL: TestAdd (0.00s)`
    if let Some(rest) = trimmed.strip_prefix("--- FAIL: ") {
        return rest.split_whitespace().next();
    }
    // pytest short summary: `FAILED tests/test_x.py::test_add - assert 1 == 2`
    // (pytest node ids always hold `::`; unittest's `FAILED (failures=1)` names none)
    if let Some(rest) = trimmed.strip_prefix("FAILED ") {
        return rest
            .split(" - ")
            .next()
            .map(str::trim)
            .filter(|n| n.contains("::"));
    }
    // unittest: `FAIL: test_add (test_calc.CalcTest.test_add)` / `ERROR: ...`
    for prefix in ["FAIL: ", "ERROR: "] {
        if let Some(rest) = trimmed.strip_prefix(prefix) {
            return Some(rest.trim());
        }
    }
    // unittest verbose: `test_add (test_calc.CalcTest.test_add) ... FAIL`
    for suffix in [" ... FAIL", " ... ERROR"] {
        if let Some(name) = trimmed.strip_suffix(suffix) {
            return Some(name.trim());
        }
    }
    // TAP: `not ok 3 - adds numbers`
    if let Some(rest) = trimmed.strip_prefix("not ok ") {
        let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit()).trim();
        return Some(rest.trim_start_matches('-').trim());
    }
    // Jest: `✕ adds numbers (3 ms)`
    if let Some(rest) = trimmed.strip_prefix("✕ ") {
        return Some(strip_timing(rest));
    }
    None
}

fn strip_timing(name: &str) -> &str {
    match name.rfind(" (") {
        Some(i) if name.ends_with("ms)") || name.ends_with("s)") => name[..i].trim(),
        _ => name.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(log: &str, expect: &[&str]) {
        assert_eq!(failed_tests(log.lines()), expect, "log: {log}");
    }

    #[test]
    fn runners() {
        check(
            "running 2 tests\ntest tests::ok ... ok\ntest tests::adds ... FAILED\n\nfailures:\n",
            &["tests::adds"],
        );
        check(
            "=== RUN   TestAdd\n--- FAIL: TestAdd (0.00s)\nFAIL\n",
            &["TestAdd"],
        );
        check(
            "FAILED tests/test_calc.py::test_add - assert 3 == 4\n",
            &["tests/test_calc.py::test_add"],
        );
        check(
            "test_add (test_calc.CalcTest.test_add) ... FAIL\n====\nFAIL: test_add (test_calc.CalcTest.test_add)\n",
            &["test_add (test_calc.CalcTest.test_add)"],
        );
        check("ok 1 - a\nnot ok 2 - adds numbers\n", &["adds numbers"]);
        check("  ✕ adds numbers (3 ms)\n", &["adds numbers"]);
        check("FAIL: test_greeting\n", &["test_greeting"]);
    }

    #[test]
    fn nothing_failed() {
        check("", &[]);
        check("test a ... ok\nPASS\nall good\n", &[]);
        // A bare `FAIL` summary line names no test.
        check("FAIL\n", &[]);
        check(
            "Ran 2 tests in 0.000s\n\nFAILED (failures=1, errors=2)\n",
            &[],
        );
    }
}
