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

/// Something a step needed that was not there: not a failing test but a missing
/// tool, module or up-to-date lockfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// A program the shell could not find (exit 127, `command not found`).
    Command(Option<String>),
    /// A Python module (`ModuleNotFoundError`, `No module named`).
    PythonModule(String),
    /// A Node module (`Cannot find module 'x'`), not a relative path.
    NodeModule(String),
    /// A Rust crate the code uses but Cargo.toml does not declare
    /// (`can't find crate for `x``, `use of undeclared crate or module `x``).
    RustCrate(String),
    /// A Go package no required module provides (`no required module provides
    /// package x`).
    GoPackage(String),
    /// cargo's `--locked` with a `Cargo.lock` that does not match `Cargo.toml`
    /// (or none at all).
    CargoLockfile,
    /// The step tried to reach the network and could not (name resolution or
    /// an unreachable network): the sign, as the log said it.
    Network(String),
}

/// What a resolver or socket says when there is no network (glibc, Node, curl,
/// Go, Python, Java), as it appears in a log line.
const NO_NETWORK: &[&str] = &[
    "Temporary failure in name resolution",
    "Name or service not known",
    "getaddrinfo EAI_AGAIN",
    "getaddrinfo ENOTFOUND",
    "Could not resolve host",
    "Network is unreachable",
    "ENETUNREACH",
    "java.net.UnknownHostException",
];

/// The longest name taken from a log line.
const MAX_NAME: usize = 200;

/// What was missing, from a failed step's log `lines` and its exit code: the
/// first sign found. `None` when nothing says a tool, module or lockfile was
/// missing (the step or its tests failed on their own).
pub fn missing<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    exit_code: Option<i32>,
) -> Option<Missing> {
    let mut command = None;
    for line in lines {
        let line = line.trim();
        if let Some(m) = missing_in(line) {
            match m {
                Missing::Command(_) => {
                    command.get_or_insert(m);
                }
                other => return Some(other),
            }
        }
    }
    if command.is_none() && exit_code == Some(127) {
        return Some(Missing::Command(None));
    }
    command
}

fn name(s: &str) -> Option<String> {
    let s = s.trim().trim_matches(|c| c == '\'' || c == '"' || c == '`');
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/@+:".contains(c));
    ok.then(|| s.to_owned())
}

fn missing_in(line: &str) -> Option<Missing> {
    // Python: `ModuleNotFoundError: No module named 'requests'`,
    // `ImportError: No module named requests` (Python 2 style).
    if let Some(i) = line.find("No module named ") {
        let rest = &line[i + "No module named ".len()..];
        let module = rest.split_whitespace().next().and_then(name)?;
        return Some(Missing::PythonModule(module));
    }
    // Node: `Error: Cannot find module 'left-pad'` (a relative path is the
    // project's own file, not a dependency).
    if let Some(i) = line.find("Cannot find module ") {
        let rest = &line[i + "Cannot find module ".len()..];
        let quoted = rest.split(['\'', '"']).nth(1).unwrap_or(rest);
        let module = name(quoted)?;
        if module.starts_with('.') || module.starts_with('/') {
            return None;
        }
        return Some(Missing::NodeModule(module));
    }
    // rustc: error[E0463]: can't find crate for `quickcheck`;
    // error[E0433]: failed to resolve: use of undeclared crate or module `rand`
    // (the module case is also a typo in the project's own path: still the
    // likeliest fix is the dependency).
    for marker in [
        "can't find crate for `",
        "use of undeclared crate or module `",
    ] {
        if let Some(i) = line.find(marker) {
            let rest = &line[i + marker.len()..];
            let krate = rest.split('`').next().and_then(name)?;
            return Some(Missing::RustCrate(krate));
        }
    }
    // go: `no required module provides package github.com/x/y; to add it:`
    if let Some(i) = line.find("no required module provides package ") {
        let rest = &line[i + "no required module provides package ".len()..];
        let package = rest
            .split(|c: char| c == ';' || c.is_whitespace())
            .next()
            .and_then(name)?;
        return Some(Missing::GoPackage(package));
    }
    // cargo: `the lock file /w/Cargo.lock needs to be updated but --locked was
    // passed to prevent this`.
    if line.contains("--locked was passed") && line.contains("lock file") {
        return Some(Missing::CargoLockfile);
    }
    // No network: the test stages run without one.
    if let Some(sign) = NO_NETWORK.iter().find(|sign| line.contains(**sign)) {
        return Some(Missing::Network((*sign).to_owned()));
    }
    if line.contains("dial tcp: lookup ") && line.contains("no such host") {
        return Some(Missing::Network(
            "dial tcp: lookup … no such host".to_owned(),
        ));
    }
    // Shells: `bash: cargo: command not found`, `sh: 1: cargo: not found`,
    // `/bin/sh: line 1: cargo: command not found`.
    for suffix in [": command not found", ": not found"] {
        if let Some(rest) = line.strip_suffix(suffix) {
            let prog = rest.rsplit(": ").next().and_then(name);
            return Some(Missing::Command(prog));
        }
    }
    None
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

    fn check_missing(log: &str, exit: Option<i32>, expect: Option<Missing>) {
        assert_eq!(missing(log.lines(), exit), expect, "log: {log}");
    }

    #[test]
    fn missing_tools_modules_and_lockfiles() {
        use Missing::*;
        let cmd = |s: &str| Some(Command(Some(s.to_owned())));
        let cases: &[(&str, Option<i32>, Option<Missing>)] = &[
            ("bash: cargo: command not found\n", Some(127), cmd("cargo")),
            ("sh: 1: pytest: not found\n", Some(127), cmd("pytest")),
            (
                "/bin/sh: line 1: go: command not found\n",
                Some(127),
                cmd("go"),
            ),
            ("", Some(127), Some(Command(None))),
            (
                "urllib.error.URLError: <urlopen error [Errno -3] Temporary failure in name resolution>\n",
                Some(1),
                Some(Network("Temporary failure in name resolution".into())),
            ),
            (
                "Error: getaddrinfo EAI_AGAIN registry.npmjs.org\n",
                Some(1),
                Some(Network("getaddrinfo EAI_AGAIN".into())),
            ),
            (
                "dial tcp: lookup proxy.golang.org on 10.0.2.3:53: no such host\n",
                Some(1),
                Some(Network("dial tcp: lookup … no such host".into())),
            ),
            (
                "E   ModuleNotFoundError: No module named 'requests'\n",
                Some(2),
                Some(PythonModule("requests".into())),
            ),
            (
                "ImportError: No module named yaml\n",
                Some(1),
                Some(PythonModule("yaml".into())),
            ),
            (
                "/usr/bin/python3: No module named pytest\n",
                Some(1),
                Some(PythonModule("pytest".into())),
            ),
            (
                "Error: Cannot find module 'left-pad'\nRequire stack:\n",
                Some(1),
                Some(NodeModule("left-pad".into())),
            ),
            (
                "error[E0463]: can't find crate for `quickcheck`\n",
                Some(101),
                Some(RustCrate("quickcheck".into())),
            ),
            (
                "error[E0433]: failed to resolve: use of undeclared crate or module `rand`\n",
                Some(101),
                Some(RustCrate("rand".into())),
            ),
            (
                "x_test.go:4:2: no required module provides package github.com/stretchr/testify/assert; to add it:\n",
                Some(1),
                Some(GoPackage("github.com/stretchr/testify/assert".into())),
            ),
            // The project's own file missing is not a dependency.
            ("Error: Cannot find module './lib/x'\n", Some(1), None),
            (
                "error: the lock file /w/Cargo.lock needs to be updated but --locked was passed to prevent this\n",
                Some(101),
                Some(CargoLockfile),
            ),
            // A module error wins over a shell's complaint seen earlier.
            (
                "sh: 1: foo: not found\nModuleNotFoundError: No module named 'x'\n",
                Some(1),
                Some(PythonModule("x".into())),
            ),
            // A failing test is not a missing anything.
            (
                "FAILED tests/test_calc.py::test_add - assert 3 == 4\n",
                Some(1),
                None,
            ),
            ("test tests::adds ... FAILED\n", Some(101), None),
            ("--- FAIL: TestAdd (0.00s)\n", Some(1), None),
            ("", Some(1), None),
            ("", None, None),
            // A name with shell or control characters is not repeated.
            ("No module named '$(rm -rf /)'\n", Some(1), None),
        ];
        for (log, exit, expect) in cases {
            check_missing(log, *exit, expect.clone());
        }
    }
}
