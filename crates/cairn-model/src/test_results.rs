//! Which tests ran and how each ended, from a test runner's machine-readable
//! output: JUnit XML (pytest `--junitxml`, Maven surefire, `go-junit-report`),
//! TAP (`node --test`, many npm packages), cargo's libtest lines and `go test -v`
//! lines. What the engine signs into a test-result statement (in-toto
//! test-result v0.1's `passedTests`/`failedTests`, with counts).
//!
//! Every input is untrusted (a step wrote it) and bounded: a JUnit file is at
//! most [`MAX_REPORT_BYTES`], parsed by `roxmltree` with DTDs refused (so no
//! entity expansion, internal or external) and at most [`MAX_XML_NODES`] nodes;
//! at most [`MAX_NAMED`] names are kept per outcome (the counts go on), each at
//! most [`MAX_NAME_BYTES`].

use std::fmt;

/// Where a test step writes its machine-readable results, relative to the
/// workspace (`cairn init` points pytest there); the engine reads the JUnit XML
/// files in it after the step.
pub const RESULTS_DIR: &str = ".cairn-results";
/// The largest JUnit XML report read.
pub const MAX_REPORT_BYTES: u64 = 8 << 20;
/// The most XML nodes one report may hold.
pub const MAX_XML_NODES: u32 = 1_000_000;
/// The most test names kept per outcome (the counts are exact beyond it).
pub const MAX_NAMED: usize = 5_000;
/// The longest test name kept (longer names are cut on a character boundary).
pub const MAX_NAME_BYTES: usize = 300;

/// The machine-readable format a report was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    JUnit,
    Tap,
    Libtest,
    GoTest,
}

impl ReportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::JUnit => "junit-xml",
            ReportFormat::Tap => "tap",
            ReportFormat::Libtest => "cargo-libtest",
            ReportFormat::GoTest => "go-test",
        }
    }
}

impl fmt::Display for ReportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The tests one stage ran: names by outcome (at most [`MAX_NAMED`] each) and
/// exact counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestReport {
    pub format: ReportFormat,
    pub passed: Vec<String>,
    pub failed: Vec<String>,
    pub skipped: Vec<String>,
    pub passed_count: u64,
    pub failed_count: u64,
    pub skipped_count: u64,
}

/// How one test ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    Skipped,
}

impl TestReport {
    pub fn new(format: ReportFormat) -> Self {
        TestReport {
            format,
            passed: Vec::new(),
            failed: Vec::new(),
            skipped: Vec::new(),
            passed_count: 0,
            failed_count: 0,
            skipped_count: 0,
        }
    }

    /// Counts one test and keeps its name (within the bounds).
    pub fn add(&mut self, outcome: Outcome, name: &str) {
        let (names, count) = match outcome {
            Outcome::Passed => (&mut self.passed, &mut self.passed_count),
            Outcome::Failed => (&mut self.failed, &mut self.failed_count),
            Outcome::Skipped => (&mut self.skipped, &mut self.skipped_count),
        };
        *count += 1;
        if names.len() < MAX_NAMED {
            names.push(bounded_name(name));
        }
    }

    /// Adds `other`'s tests (another file of the same run).
    pub fn merge(&mut self, other: TestReport) {
        for (names, more) in [
            (&mut self.passed, other.passed),
            (&mut self.failed, other.failed),
            (&mut self.skipped, other.skipped),
        ] {
            let room = MAX_NAMED.saturating_sub(names.len());
            names.extend(more.into_iter().take(room));
        }
        self.passed_count += other.passed_count;
        self.failed_count += other.failed_count;
        self.skipped_count += other.skipped_count;
    }

    pub fn total(&self) -> u64 {
        self.passed_count + self.failed_count + self.skipped_count
    }
}

/// `name` without control characters, at most [`MAX_NAME_BYTES`].
fn bounded_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > MAX_NAME_BYTES {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

/// Why a report was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("it is {size} bytes; a report may be at most {max} bytes")]
    TooLarge { size: u64, max: u64 },
    #[error("it is not UTF-8 text")]
    NotText,
    #[error(
        "it declares a DTD (<!DOCTYPE ...>): refused, so no entity is ever expanded (internal or external)"
    )]
    Dtd,
    #[error("it is not well-formed XML: {0}")]
    Xml(#[source] roxmltree::Error),
    #[error("its root element is <{0}>, not <testsuites> or <testsuite>: not a JUnit XML report")]
    NotJUnit(String),
}

/// Reads a JUnit XML report (the schema pytest, surefire and go-junit-report
/// write): every `<testcase>` is a test named `classname.name` (or `name`), failed
/// when it holds `<failure>` or `<error>`, skipped when it holds `<skipped>`.
pub fn parse_junit(bytes: &[u8]) -> Result<TestReport, ReportError> {
    if bytes.len() as u64 > MAX_REPORT_BYTES {
        return Err(ReportError::TooLarge {
            size: bytes.len() as u64,
            max: MAX_REPORT_BYTES,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ReportError::NotText)?;
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_XML_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => ReportError::Dtd,
        e => ReportError::Xml(e),
    })?;
    let root = doc.root_element();
    let root_name = root.tag_name().name();
    if !matches!(root_name, "testsuites" | "testsuite") {
        return Err(ReportError::NotJUnit(bounded_name(root_name)));
    }
    let mut report = TestReport::new(ReportFormat::JUnit);
    for case in root
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "testcase")
    {
        let name = case.attribute("name").unwrap_or("");
        let full = match case.attribute("classname") {
            Some(class) if !class.is_empty() => format!("{class}.{name}"),
            _ => name.to_owned(),
        };
        let child = |tag: &str| {
            case.children()
                .any(|c| c.is_element() && c.tag_name().name() == tag)
        };
        let outcome = if child("failure") || child("error") {
            Outcome::Failed
        } else if child("skipped") {
            Outcome::Skipped
        } else {
            Outcome::Passed
        };
        report.add(outcome, &full);
    }
    Ok(report)
}

/// Reads test results from a stage's output lines as they arrive: cargo's
/// libtest (`test name ... ok|FAILED|ignored`), `go test -v` (`--- PASS: name`),
/// and TAP (`ok 1 - name`, `not ok 2 - name`, `# SKIP`), which counts only once
/// its `TAP version` header or a plan line (`1..N`) has been seen.
#[derive(Debug, Default)]
pub struct LineReader {
    libtest: Option<TestReport>,
    go: Option<TestReport>,
    tap_seen: bool,
    /// TAP points read before the header or plan said this is TAP.
    tap_pending: Vec<(Outcome, String)>,
    /// The last TAP point, while its YAML block may still say it is a suite.
    tap_last: Option<(Outcome, String)>,
    tap_summary: TapSummary,
}

#[derive(Debug, Default)]
struct TapSummary {
    pass: Option<u64>,
    fail: Option<u64>,
    skipped: Option<u64>,
}

impl LineReader {
    pub fn line(&mut self, line: &str) {
        let line = line.trim_end();
        let trimmed = line.trim_start();
        // libtest: `test tests::adds ... ok`, `... FAILED`, `... ignored, reason`
        if let Some(rest) = trimmed.strip_prefix("test ")
            && let Some((name, outcome)) = rest.rsplit_once(" ... ")
        {
            let outcome = match outcome {
                "ok" => Some(Outcome::Passed),
                "FAILED" => Some(Outcome::Failed),
                o if o == "ignored" || o.starts_with("ignored, ") => Some(Outcome::Skipped),
                _ => None,
            };
            if let Some(outcome) = outcome {
                self.libtest
                    .get_or_insert_with(|| TestReport::new(ReportFormat::Libtest))
                    .add(outcome, name);
                return;
            }
        }
        // go test -v: `--- PASS: TestAdd (0.00s)` (subtests indented)
        for (prefix, outcome) in [
            ("--- PASS: ", Outcome::Passed),
            ("--- FAIL: ", Outcome::Failed),
            ("--- SKIP: ", Outcome::Skipped),
        ] {
            if let Some(rest) = trimmed.strip_prefix(prefix)
                && let Some(name) = rest.split_whitespace().next()
            {
                self.go
                    .get_or_insert_with(|| TestReport::new(ReportFormat::GoTest))
                    .add(outcome, name);
                return;
            }
        }
        // go test: a package whose tests could not be built or set up ran none
        // of them, `FAIL\tgithub.com/x/y [build failed]`: one failure, named by
        // the package, so the counts do not read as all passed.
        if let Some(rest) = line.strip_prefix("FAIL\t")
            && let Some((package, why)) = rest.split_once(' ')
            && matches!(why, "[build failed]" | "[setup failed]")
            && !package.is_empty()
        {
            self.go
                .get_or_insert_with(|| TestReport::new(ReportFormat::GoTest))
                .add(Outcome::Failed, &format!("{package} {why}"));
            return;
        }
        self.tap_line(trimmed);
    }

    fn tap_line(&mut self, trimmed: &str) {
        if trimmed.starts_with("TAP version ") || is_tap_plan(trimmed) {
            self.tap_seen = true;
        }
        // A suite (node's `describe`) is a test point whose YAML says so.
        if trimmed == "type: 'suite'" || trimmed == "type: suite" {
            self.tap_last = None;
            return;
        }
        if let Some(rest) = trimmed.strip_prefix("# ") {
            let count = |key: &str| {
                rest.strip_prefix(key)
                    .and_then(|n| n.trim().parse::<u64>().ok())
            };
            if let Some(n) = count("pass ") {
                self.tap_summary.pass = Some(n);
            } else if let Some(n) = count("fail ") {
                self.tap_summary.fail = Some(n);
            } else if let Some(n) = count("skipped ") {
                self.tap_summary.skipped = Some(n);
            }
            return;
        }
        let (failed, rest) = if let Some(rest) = trimmed.strip_prefix("not ok") {
            (true, rest)
        } else if let Some(rest) = trimmed.strip_prefix("ok") {
            (false, rest)
        } else {
            return;
        };
        if !(rest.is_empty() || rest.starts_with(' ')) {
            return;
        }
        let rest = rest
            .trim_start()
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start();
        let rest = rest.strip_prefix("- ").unwrap_or(rest);
        let (name, directive) = match rest.split_once(" # ") {
            Some((n, d)) => (n, d.trim().to_ascii_uppercase()),
            None => (rest, String::new()),
        };
        let outcome = if directive.starts_with("SKIP") || directive.starts_with("TODO") {
            Outcome::Skipped
        } else if failed {
            Outcome::Failed
        } else {
            Outcome::Passed
        };
        self.flush_tap_last();
        self.tap_last = Some((outcome, bounded_name(name)));
    }

    fn flush_tap_last(&mut self) {
        if let Some(point) = self.tap_last.take()
            && self.tap_pending.len() < 4 * MAX_NAMED
        {
            self.tap_pending.push(point);
        }
    }

    /// What the lines said, if they held test results: libtest first, then Go,
    /// then TAP (a stage runs one runner).
    pub fn finish(mut self) -> Option<TestReport> {
        if let Some(r) = self.libtest.take() {
            return Some(r);
        }
        if let Some(r) = self.go.take() {
            return Some(r);
        }
        self.flush_tap_last();
        if !self.tap_seen || self.tap_pending.is_empty() {
            return None;
        }
        let mut report = TestReport::new(ReportFormat::Tap);
        for (outcome, name) in &self.tap_pending {
            report.add(*outcome, name);
        }
        // The runner's own summary counts, when it prints one (node does).
        let s = &self.tap_summary;
        if let (Some(pass), Some(fail)) = (s.pass, s.fail) {
            report.passed_count = pass;
            report.failed_count = fail;
            report.skipped_count = s.skipped.unwrap_or(report.skipped_count);
        }
        Some(report)
    }
}

fn is_tap_plan(line: &str) -> bool {
    line.strip_prefix("1..")
        .map(|n| n.split_whitespace().next().unwrap_or(""))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The results in `lines`, read with [`LineReader`].
pub fn parse_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<TestReport> {
    let mut reader = LineReader::default();
    for line in lines {
        reader.line(line);
    }
    reader.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIBTEST: &str = include_str!("../tests/data/test_reports/cargo-test.txt");
    const NODE_TAP: &str = include_str!("../tests/data/test_reports/node-test.tap");
    const PYTEST_JUNIT: &str = include_str!("../tests/data/test_reports/pytest-junit.xml");

    fn counts(r: &TestReport) -> (u64, u64, u64) {
        (r.passed_count, r.failed_count, r.skipped_count)
    }

    #[test]
    fn cargo_test_output() {
        let r = parse_lines(LIBTEST.lines()).unwrap();
        assert_eq!(r.format, ReportFormat::Libtest);
        assert_eq!(
            r.passed,
            ["tests::adds", "integration", "src/lib.rs - add (line 3)"]
        );
        assert_eq!(r.failed, ["tests::fails"]);
        assert_eq!(r.skipped, ["tests::slow"]);
        assert_eq!(counts(&r), (3, 1, 1));
    }

    #[test]
    fn node_test_tap() {
        let r = parse_lines(NODE_TAP.lines()).unwrap();
        assert_eq!(r.format, ReportFormat::Tap);
        // `group` is a describe() suite, not a test.
        assert_eq!(r.passed, ["adds numbers", "inner works"]);
        assert_eq!(r.failed, ["fails"]);
        assert_eq!(r.skipped, ["skipped one"]);
        assert_eq!(counts(&r), (2, 1, 1));
    }

    #[test]
    fn plain_tap_and_lines_that_are_not_results() {
        let r = parse_lines("1..3\nok 1 - a\nnot ok 2 - b\nok 3 c # TODO later\n".lines()).unwrap();
        assert_eq!(
            (r.passed.as_slice(), r.failed.as_slice()),
            (&["a".to_owned()][..], &["b".to_owned()][..])
        );
        assert_eq!(counts(&r), (1, 1, 1));
        // `ok` lines without a TAP header or plan are just output.
        assert_eq!(parse_lines("ok 1 - looks like tap\nok\n".lines()), None);
        assert_eq!(parse_lines("okay then\ntest passed\n".lines()), None);
        assert_eq!(parse_lines("".lines()), None);
    }

    #[test]
    fn go_test_verbose() {
        let out = "=== RUN   TestAdd\n--- PASS: TestAdd (0.00s)\n=== RUN   TestSub\n    --- FAIL: TestSub/neg (0.00s)\n--- FAIL: TestSub (0.00s)\n--- SKIP: TestSlow (0.00s)\nFAIL\n";
        let r = parse_lines(out.lines()).unwrap();
        assert_eq!(r.format, ReportFormat::GoTest);
        assert_eq!(r.failed, ["TestSub/neg", "TestSub"]);
        assert_eq!(counts(&r), (1, 2, 1));
    }

    /// A package whose test binary did not build ran none of its tests: it
    /// counts as a failure, not as nothing (go-cmp's tests without a C compiler
    /// for runtime/cgo: 257 passed, 0 failed, while two packages never ran).
    #[test]
    fn go_test_package_that_did_not_build_is_a_failure() {
        let out = "# runtime/cgo\ncgo: C compiler \"gcc\" not found\nFAIL\tgithub.com/google/go-cmp/cmp [build failed]\nFAIL\texample.com/x [setup failed]\n=== RUN   TestA\n--- PASS: TestA (0.00s)\nok  \tgithub.com/google/go-cmp/cmp/internal/diff\t0.07s\nFAIL\n";
        let r = parse_lines(out.lines()).unwrap();
        assert_eq!(r.format, ReportFormat::GoTest);
        assert_eq!(
            r.failed,
            [
                "github.com/google/go-cmp/cmp [build failed]",
                "example.com/x [setup failed]"
            ]
        );
        assert_eq!(counts(&r), (1, 2, 0));
        // A test's own FAIL line, or a plain FAIL, is not a package that did not build.
        assert_eq!(
            parse_lines("FAIL\nFAIL\texample.com/x\t0.01s\n".lines()),
            None
        );
    }

    #[test]
    fn pytest_junit_xml() {
        let r = parse_junit(PYTEST_JUNIT.as_bytes()).unwrap();
        assert_eq!(
            r.passed,
            ["test_calc.test_add", "test_calc.TestGroup.test_inner"]
        );
        assert_eq!(r.failed, ["test_calc.test_fail"]);
        assert_eq!(r.skipped, ["test_calc.test_skip"]);
        assert_eq!(counts(&r), (2, 1, 1));
    }

    #[test]
    fn surefire_style_junit_with_errors() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="com.example.AppTest" tests="3" failures="0" errors="1" skipped="0">
  <properties><property name="java.version" value="17"/></properties>
  <testcase name="adds" classname="com.example.AppTest" time="0.01"/>
  <testcase name="throws" classname="com.example.AppTest"><error type="java.lang.IllegalStateException">boom</error></testcase>
  <testcase name="" classname=""/>
</testsuite>"#;
        let r = parse_junit(xml.as_bytes()).unwrap();
        assert_eq!(r.passed, ["com.example.AppTest.adds", ""]);
        assert_eq!(r.failed, ["com.example.AppTest.throws"]);
    }

    fn refused(bytes: &[u8]) -> String {
        parse_junit(bytes).unwrap_err().to_string()
    }

    #[test]
    fn hostile_reports_are_refused_with_the_reason() {
        let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<testsuite><testcase name="&lol3;"/></testsuite>"#;
        assert!(
            refused(bomb.as_bytes()).contains("declares a DTD"),
            "{}",
            refused(bomb.as_bytes())
        );
        let external = r#"<!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/shadow">]><testsuite><testcase name="&x;"/></testsuite>"#;
        assert!(refused(external.as_bytes()).contains("declares a DTD"));
        let huge = vec![b' '; MAX_REPORT_BYTES as usize + 1];
        assert!(refused(&huge).contains("a report may be at most 8388608 bytes"));
        assert!(refused(b"<html><body/></html>").contains("not a JUnit XML report"));
        assert!(refused(b"<testsuite><testcase").contains("not well-formed XML"));
        assert!(refused(&[0xff, 0xfe, b'<']).contains("not UTF-8"));
        // Many nodes: bounded by the parser, not by memory.
        let many = format!(
            "<testsuite>{}</testsuite>",
            "<a/>".repeat(MAX_XML_NODES as usize + 1)
        );
        assert!(
            refused(many.as_bytes()).contains("not well-formed XML"),
            "{}",
            refused(many.as_bytes())
        );
    }

    #[test]
    fn names_and_counts_are_bounded() {
        let mut r = TestReport::new(ReportFormat::Tap);
        for i in 0..MAX_NAMED + 10 {
            r.add(Outcome::Passed, &format!("t{i}"));
        }
        r.add(Outcome::Failed, &"x\u{7}y".repeat(400));
        assert_eq!(r.passed.len(), MAX_NAMED);
        assert_eq!(r.passed_count, MAX_NAMED as u64 + 10);
        assert!(r.failed[0].len() <= MAX_NAME_BYTES + '…'.len_utf8());
        assert!(r.failed[0].starts_with("x y"));
    }
}
