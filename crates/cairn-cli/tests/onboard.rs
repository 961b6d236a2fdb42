//! Onboarding end to end: `cairn init` reads the project (lockfiles, test runner
//! config, acceptance script, Dockerfile), keeps `.cairn/` out of git, `cairn run`
//! refuses a data directory git would commit, and `cairn explain` tells a missing
//! tool or module from a failing test. Real git, real bubblewrap.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::Command;

use common::{Fixture, Run, git};

/// `cairn ARGS` with the default data directory (`.cairn/` in the repository).
fn cairn_here(f: &Fixture, args: &[&str]) -> Run {
    let mut cmd = f.cairn(args);
    cmd.env_remove("CAIRN_HOME");
    Run::from(cmd.output().unwrap())
}

fn staged(f: &Fixture) -> Vec<String> {
    git(&f.repo, &["add", "-A"]);
    let out = Command::new("git")
        .arg("-C")
        .arg(&f.repo)
        .args(["diff", "--cached", "--name-only"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn init_ignores_the_data_dir_and_run_refuses_one_git_would_commit() {
    let f = Fixture::new();
    f.write("Makefile", "all:\n\ttrue\ntest:\n\ttrue\n")
        .write(".gitignore", "target")
        .commit("app");
    let r = cairn_here(&f, &["init"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("added `.cairn/` to .gitignore"), "{r:?}");
    println!("{}", r.stdout);
    let text = std::fs::read_to_string(f.repo.join(".gitignore")).unwrap();
    assert!(text.starts_with("target\n"), "{text}");
    // Idempotent: a second init does not add it again.
    let r = cairn_here(&f, &["init", "--force"]);
    assert!(
        r.stdout.contains(".gitignore already ignores `.cairn/`"),
        "{r:?}"
    );
    let text = std::fs::read_to_string(f.repo.join(".gitignore")).unwrap();
    assert_eq!(
        text.lines().filter(|l| *l == ".cairn/").count(),
        1,
        "{text}"
    );
    f.commit("cairn init");

    let r = cairn_here(&f, &["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(f.repo.join(".cairn/keys").is_dir());
    let staged = staged(&f);
    assert!(
        staged.iter().all(|p| !p.starts_with(".cairn")),
        "{staged:?}"
    );

    // Without the line, the run is refused before anything is opened, naming the fix.
    std::fs::write(f.repo.join(".gitignore"), "target\n").unwrap();
    f.commit("forget the ignore");
    std::fs::remove_dir_all(f.repo.join(".cairn")).unwrap();
    let r = cairn_here(&f, &["run"]);
    println!("{r:?}");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("git does not ignore it"), "{r:?}");
    assert!(r.stderr.contains("add `/.cairn/` to"), "{r:?}");
    assert!(r.stderr.contains("CAIRN_HOME"), "{r:?}");
    assert!(!f.repo.join(".cairn").exists(), "nothing created");
    // Every command that touches state, not only `run`: the key is never made there.
    for args in [&["key", "show"][..], &["runs"], &["log", "checkpoint"]] {
        let r = cairn_here(&f, args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(r.stderr.contains("git does not ignore it"), "{r:?}");
    }
    assert!(!f.repo.join(".cairn").exists(), "nothing created");
    // Any data directory inside the work tree counts, not only `.cairn`.
    let r = Run::from(
        f.cairn(&["run"])
            .env("CAIRN_HOME", f.repo.join("state"))
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("add `/state/` to"), "{r:?}");
    // Ignored through git's own rules (here .git/info/exclude), it runs.
    std::fs::write(f.repo.join(".git/info/exclude"), "/state/\n").unwrap();
    let r = Run::from(
        f.cairn(&["run"])
            .env("CAIRN_HOME", f.repo.join("state"))
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn a_gitignore_that_cannot_be_written_is_a_clear_error() {
    let f = Fixture::new();
    f.write("Makefile", "all:\n\ttrue\ntest:\n\ttrue\n")
        .commit("app");
    std::fs::create_dir(f.repo.join(".gitignore")).unwrap();
    let r = f.run(&["init"]);
    println!("{r:?}");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(".gitignore: it is not a regular file")
            && r.stderr.contains("add the line `.cairn/`"),
        "{r:?}"
    );
    assert!(!f.repo.join("cairn.toml").exists());
    std::fs::remove_dir(f.repo.join(".gitignore")).unwrap();
    // A symlink is never followed out of the project.
    let outside = f.repo.parent().unwrap().join("outside");
    std::fs::write(&outside, "keep\n").unwrap();
    std::os::unix::fs::symlink(&outside, f.repo.join(".gitignore")).unwrap();
    let r = f.run(&["init"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("it is a symlink"), "{r:?}");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep\n");
}

/// `cairn init --dry-run [EXTRA]` in a fresh repository holding `files`
/// (committed when `commit`): its stdout, with nothing written.
fn dry_run(files: &[(&str, &str)], untracked: &[(&str, &str)], extra: &[&str]) -> Run {
    let f = Fixture::new();
    for (p, t) in files {
        f.write(p, t);
    }
    f.commit("app");
    for (p, t) in untracked {
        f.write(p, t);
    }
    let mut args = vec!["init", "--dry-run"];
    args.extend_from_slice(extra);
    let r = f.run(&args);
    assert!(!f.repo.join("cairn.toml").exists(), "dry run wrote: {r:?}");
    assert!(!f.repo.join(".gitignore").exists(), "dry run wrote: {r:?}");
    r
}

/// One project, and the fragments its dry run must (and must not) print.
fn check(files: &[(&str, &str)], untracked: &[(&str, &str)], want: &[&str], not: &[&str]) {
    let r = dry_run(files, untracked, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    for w in want {
        assert!(r.stdout.contains(w), "missing {w:?}: {r:?}");
    }
    for n in not {
        assert!(!r.stdout.contains(n), "unwanted {n:?}: {r:?}");
    }
}

const CARGO: (&str, &str) = (
    "Cargo.toml",
    "[package]\nname = \"demo\"\nversion = \"0.1.0\"\n",
);
const SETUP_PY: (&str, &str) = ("setup.py", "from setuptools import setup\nsetup()\n");

#[test]
fn init_reads_how_the_project_builds_and_tests() {
    // A lockfile counts only when committed.
    check(
        &[CARGO],
        &[("Cargo.lock", "# untracked\n")],
        &[
            "fetch = \"cargo fetch\"",
            "Cargo.lock is not committed, so no `--locked`",
        ],
        &["--locked\""],
    );
    check(
        &[CARGO, ("Cargo.lock", "version = 3\n")],
        &[],
        &[
            "fetch = \"cargo fetch --locked\"",
            "unit = \"cargo test --offline\"",
        ],
        &[],
    );
    check(
        &[("package.json", r#"{"scripts":{"test":"node test.js"}}"#)],
        &[],
        &[
            "npm install --ignore-scripts",
            "package.json's test script (node test.js)",
        ],
        &["npm ci"],
    );
    check(
        &[("package.json", "{}"), ("package-lock.json", "{}")],
        &[],
        &["npm ci --ignore-scripts", "no test script"],
        &[],
    );
    // pytest from each of the project's own config files, fetched with the deps.
    for (file, text, from) in [
        (
            "pyproject.toml",
            "[project]\nname = \"x\"\n[tool.pytest.ini_options]\naddopts = \"-q\"\n",
            "pyproject.toml [tool.pytest.ini_options]",
        ),
        (
            "setup.cfg",
            "[metadata]\nname = x\n[tool:pytest]\n",
            "setup.cfg [tool:pytest]",
        ),
        ("tox.ini", "[tox]\n[pytest]\n", "tox.ini [pytest]"),
        ("pytest.ini", "[pytest]\n", "pytest.ini"),
    ] {
        check(
            &[SETUP_PY, (file, text)],
            &[],
            &[
                &format!("pytest, configured in {from}"),
                "python3 -m pip install --target .deps pytest .",
                "unit = \"PYTHONPATH=.deps python3 -m pytest -p no:cacheprovider --junitxml=.cairn-results/junit.xml\"",
                "writes JUnit XML to .cairn-results/",
            ],
            &["unittest"],
        );
    }
    check(
        &[(
            "pyproject.toml",
            "[project]\nname = \"x\"\n[project.optional-dependencies]\ntest = [\"pytest\"]\n[tool.pytest.ini_options]\n",
        )],
        &[],
        &["--target .deps pytest '.[test]'", "its `test` extra"],
        &[],
    );
    check(
        &[("requirements.txt", "requests\n")],
        &[],
        &[
            "--target .deps -r requirements.txt",
            "no pytest configuration found, so unittest",
        ],
        &[],
    );
    check(
        &[("go.mod", "module x\n")],
        &[],
        &["unit = \"go test -v ./...\""],
        &[],
    );
    check(
        &[("pom.xml", "<project/>\n")],
        &[],
        &[
            "unit = \"mvn -B -o verify\"",
            "mvn -B dependency:go-offline",
        ],
        &[],
    );
    check(
        &[("Makefile", "test:\n\ttrue\n")],
        &[],
        &["unit = \"make test\""],
        &[],
    );
    // The project's acceptance script, and a Dockerfile's EXPOSE/CMD — never its FROM.
    check(
        &[
            ("Makefile", "test:\n\ttrue\n"),
            ("acceptance-test.sh", "#!/bin/sh\n"),
            (
                "Dockerfile",
                "FROM docker.io/evil/base:latest\nEXPOSE 8080/tcp\nCMD [\"./server\", \"--port\", \"8080\"]\n",
            ),
        ],
        &[],
        &[
            "acceptance = \"./acceptance-test.sh\"",
            "acceptance: the project's own acceptance-test.sh",
            "# port = 8080",
            "# cmd = [\"./server\", \"--port\", \"8080\"]",
            "FROM (docker.io/evil/base:latest) is not used: bases come from cairn's catalog",
            "# base = \"<a catalog base>\"",
            "would add `.cairn/` to .gitignore",
        ],
        &["\nbase = \"docker"],
    );
}

#[test]
fn init_with_two_ecosystems_none_or_a_huge_tree() {
    let both = [
        ("package.json", "{}"),
        ("pyproject.toml", "[project]\nname = \"x\"\n"),
    ];
    let r = dry_run(&both, &[], &[]);
    println!("{}", r.stdout);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("the project also looks like python — chose npm as the first in the order")
            && r.stdout.contains("--ecosystem python"),
        "{r:?}"
    );
    let r = dry_run(&both, &[], &["--ecosystem", "python"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("ecosystem python: chosen with --ecosystem"),
        "{r:?}"
    );
    let r = dry_run(&both, &[], &["--ecosystem", "go"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("no go files (found: npm, python)"),
        "{r:?}"
    );
    let r = dry_run(&both, &[], &["--ecosystem", "cobol"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("unknown ecosystem `cobol`"), "{r:?}");

    let r = dry_run(&[("README.md", "hi\n")], &[], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("cannot tell which ecosystem")
            && r.stderr.contains("write cairn.toml by hand"),
        "{r:?}"
    );

    // A huge directory is refused after a bounded read, not walked.
    let f = Fixture::new();
    f.write("Makefile", "test:\n\ttrue\n");
    for i in 0..=cairn_engine::onboard::MAX_ROOT_ENTRIES {
        std::fs::File::create(f.repo.join(format!("f{i}"))).unwrap();
    }
    let r = f.run(&["init"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("holds more than 10000 entries"), "{r:?}");
    assert!(!f.repo.join("cairn.toml").exists());
}

#[test]
fn explain_tells_a_missing_module_or_tool_from_a_failing_test() {
    let f = Fixture::new();
    f.write(
        "cairn.toml",
        "[workload]\nname = \"app\"\n[build]\ncommand = \"true\"\n[test]\nunit = \"python3 -m unittest discover -v\"\n",
    )
    .write(
        "test_app.py",
        "import unittest\nimport no_such_module_xyz\n\nclass T(unittest.TestCase):\n    def test_a(self):\n        pass\n",
    )
    .commit("app");
    let r = f.run(&["run"]);
    assert_eq!(r.code, 1, "{r:?}");
    let e = f.run(&["explain", "last"]);
    println!("{}", e.stdout);
    assert_eq!(e.code, 0, "{e:?}");
    assert!(
        e.stdout.contains(
            "not a failing test: the Python module `no_such_module_xyz` is not installed"
        ) && e.stdout.contains("build.fetch"),
        "{e:?}"
    );
    assert!(!e.stdout.contains("fix the failing test"), "{e:?}");

    // A program that is not in the sandbox: a build image or a declared tool.
    f.write(
        "cairn.toml",
        "[workload]\nname = \"app\"\n[build]\ncommand = \"true\"\n[test]\nunit = \"no-such-tool-xyz --run\"\n",
    )
    .commit("tool");
    let r = f.run(&["run"]);
    assert_eq!(r.code, 1, "{r:?}");
    let e = f.run(&["explain", "last"]);
    println!("{}", e.stdout);
    assert!(
        e.stdout
            .contains("the program `no-such-tool-xyz` is not installed")
            && e.stdout.contains("[[sandbox.tool]]"),
        "{e:?}"
    );

    // A test that needs the network, in the offline test stage: refused by the
    // sandbox, and explained as such (not as a failing test).
    f.write(
        "cairn.toml",
        "[workload]\nname = \"app\"\n[build]\ncommand = \"true\"\n[test]\nunit = \"python3 -m unittest discover -v\"\n",
    )
    .write(
        "test_app.py",
        "import socket, unittest\n\nclass T(unittest.TestCase):\n    def test_remote(self):\n        socket.getaddrinfo('pypi.org', 443)\n",
    )
    .commit("network");
    assert_eq!(f.run(&["run"]).code, 1);
    let e = f.run(&["explain", "last"]);
    println!("{}", e.stdout);
    assert!(
        e.stdout
            .contains("not a failing test: the step needs the network")
            && e.stdout.contains("only the fetch stage has one"),
        "{e:?}"
    );

    // A real failing test still says so.
    f.write(
        "cairn.toml",
        "[workload]\nname = \"app\"\n[build]\ncommand = \"true\"\n[test]\nunit = \"python3 -m unittest discover -v\"\n",
    )
    .write(
        "test_app.py",
        "import unittest\n\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(1, 2)\n",
    )
    .commit("failing");
    assert_eq!(f.run(&["run"]).code, 1);
    let e = f.run(&["explain", "last"]);
    assert!(e.stdout.contains("fix the failing test"), "{e:?}");
    assert!(!e.stdout.contains("not a failing test"), "{e:?}");
}

#[test]
fn a_host_tool_the_sandbox_user_cannot_reach_is_refused_at_load_time() {
    use std::os::unix::fs::PermissionsExt;
    // The tool sits in a private directory, like a toolchain under /root/.rustup.
    let base = tempfile::tempdir().unwrap();
    let private = base.path().join("home");
    let bin = private.join("toolchain/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("hello-tool"), "#!/bin/sh\necho tool says hi\n").unwrap();
    for (p, mode) in [
        (base.path().to_path_buf(), 0o755),
        (private.join("toolchain"), 0o755),
        (bin.clone(), 0o755),
        (bin.join("hello-tool"), 0o755),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    // As root the sandbox runs as uid 65534 (a 0700 home shuts it out); as
    // anyone else it runs as the caller (a 0600 one does).
    let root = unsafe { libc_geteuid() } == 0;
    let private_mode = if root { 0o700 } else { 0o600 };
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(private_mode)).unwrap();
    let platform = base.path().join("platform");
    std::fs::create_dir_all(platform.join("chains")).unwrap();
    std::fs::write(
        platform.join("chains/default.toml"),
        format!(
            "name = \"default\"\n[[sandbox.tool]]\nhost = \"{}\"\nat = \"/opt/hello\"\nbin = \"/opt/hello/bin\"\n\
             [[stage]]\nname = \"source\"\nkind = \"source\"\n[[stage]]\nname = \"unit-tests\"\nkind = \"unit-test\"\n\
             [[stage]]\nname = \"build\"\nkind = \"build\"\n",
            private.join("toolchain").display()
        ),
    )
    .unwrap();
    let f = Fixture::new();
    f.write(
        "cairn.toml",
        "[workload]\nname = \"app\"\n[build]\ncommand = \"true\"\n[test]\nunit = \"hello-tool\"\n",
    )
    .commit("app");
    let run = || {
        Run::from(
            f.cairn(&["run"])
                .env("CAIRN_PLATFORM_DIR", &platform)
                .output()
                .unwrap(),
        )
    };
    let r = run();
    println!("{r:?}");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "`{}` is mode {private_mode:04o}",
            private.display()
        )) && r.stderr.contains("cannot pass through it")
            && r.stderr
                .contains("Fix: install the toolchain where every directory is world-searchable"),
        "{r:?}"
    );
    // Nothing ran.
    assert_eq!(f.json(&["runs"]), serde_json::json!([]));

    // Made traversable (not readable), the same chain loads and the tool runs.
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o711)).unwrap();
    let r = run();
    assert_eq!(r.code, 0, "{r:?}");
    let logs = f.run(&["logs", "last", "unit-tests"]);
    assert!(logs.stdout.contains("tool says hi"), "{logs:?}");
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[test]
fn a_data_dir_outside_any_work_tree_or_without_git_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |path: &str| {
        Run::from(
            Command::new(env!("CARGO_BIN_EXE_cairn"))
                .args(["runs"])
                .current_dir(tmp.path())
                .env_remove("CAIRN_HOME")
                .env_remove("CAIRN_PLATFORM_DIR")
                .env("PATH", path)
                .output()
                .unwrap(),
        )
    };
    // Not in a git work tree: nothing could stage it.
    let r = run(&std::env::var("PATH").unwrap());
    assert_eq!(r.code, 0, "{r:?}");
    // No git on the machine at all: neither.
    let empty = tmp.path().join("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let r = run(empty.to_str().unwrap());
    assert_eq!(r.code, 0, "{r:?}");
    assert!(tmp.path().join(".cairn").is_dir());
}

/// The unit-tests test-result statement of the last run, and its stage annotations.
fn unit_test_result(f: &Fixture) -> (serde_json::Value, serde_json::Value) {
    let (_, statement) = f
        .statements()
        .into_iter()
        .find(|(stage, s)| {
            stage == "unit-tests"
                && s["predicateType"] == "https://in-toto.io/attestation/test-result/v0.1"
        })
        .expect("a unit-test result");
    let predicate = statement["predicate"].clone();
    let notes = predicate["configuration"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "cairn chain stage")
        .unwrap()["annotations"]
        .clone();
    (predicate, notes)
}

/// Issue 14, item 4: a pytest project onboarded with `cairn init` and run with
/// `cairn run` (real bubblewrap; pytest fetched from PyPI by the fetch stage):
/// the signed test result names the tests and counts them (from pytest's JUnit
/// XML, which init asked for), and the run's signed SBOM lists what the fetch
/// installed.
#[test]
fn a_pytest_run_signs_test_names_counts_and_the_fetched_packages() {
    let f = Fixture::new();
    f.write(
        "pyproject.toml",
        "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\
         [project]\nname = \"calc\"\nversion = \"0.1.0\"\n\
         [tool.setuptools]\npy-modules = [\"calc\"]\n\
         [tool.pytest.ini_options]\ntestpaths = [\"tests\"]\n",
    )
    .write("calc.py", "def add(a, b):\n    return a + b\n")
    .write(
        "tests/test_calc.py",
        "import pytest\nimport calc\n\ndef test_add():\n    assert calc.add(1, 2) == 3\n\n\
         def test_add_negative():\n    assert calc.add(-1, -2) == -3\n\n\
         @pytest.mark.skip(reason=\"later\")\ndef test_later():\n    pass\n",
    )
    .commit("calc");
    let init = f.ok(&["init"]);
    println!("{}", init.stdout);
    let toml = std::fs::read_to_string(f.repo.join("cairn.toml")).unwrap();
    assert!(
        toml.contains("--junitxml=.cairn-results/junit.xml"),
        "{toml}"
    );
    f.commit("cairn init");
    let r = f.run(&["run"]);
    println!(
        "{}",
        f.run(&["logs", "last", "fetch"])
            .stdout
            .lines()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(r.code, 0, "{r:?}\n{}", f.run(&["logs", "last"]).stdout);
    let unit = f.run(&["logs", "last", "unit-tests"]).stdout;
    assert!(
        unit.contains("tests (junit-xml): 2 passed, 0 failed, 1 skipped"),
        "{unit}"
    );

    let (predicate, notes) = unit_test_result(&f);
    println!(
        "passedTests: {}\nannotations: {notes}",
        predicate["passedTests"]
    );
    assert_eq!(predicate["result"], "PASSED");
    assert_eq!(
        predicate["passedTests"],
        serde_json::json!([
            "tests.test_calc.test_add",
            "tests.test_calc.test_add_negative"
        ])
    );
    assert_eq!(notes["cairn.tests.format"], "junit-xml");
    assert_eq!(notes["cairn.tests.passed"], "2");
    assert_eq!(notes["cairn.tests.failed"], "0");
    assert_eq!(notes["cairn.tests.skipped"], "1");

    // The SBOM of what the fetch installed, signed about the source tree.
    let statements = f.statements();
    let (_, sbom) = statements
        .iter()
        .find(|(stage, s)| stage == "fetch" && s["predicateType"] == "https://cyclonedx.org/bom")
        .unwrap_or_else(|| panic!("no fetch SBOM: {statements:?}"));
    let purls: Vec<&str> = sbom["predicate"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["purl"].as_str())
        .collect();
    println!("fetched: {purls:?}");
    for want in [
        "pkg:pypi/pytest@",
        "pkg:pypi/pluggy@",
        "pkg:pypi/iniconfig@",
        "pkg:pypi/calc@0.1.0",
    ] {
        assert!(
            purls.iter().any(|p| p.starts_with(want)),
            "{want}: {purls:?}"
        );
    }
    assert!(
        sbom["subject"][0]["name"]
            .as_str()
            .unwrap()
            .starts_with("app@"),
        "{sbom}"
    );
}

/// Issue 14, item 4: a test step that leaves hostile reports (an entity bomb, a
/// huge file, a symlink to /etc/shadow) has each refused with the reason in its
/// log; nothing of them reaches the signed result.
#[test]
fn hostile_test_reports_are_refused_with_the_reason() {
    let f = Fixture::new();
    let unit = "mkdir -p .cairn-results && ln -s /etc/shadow .cairn-results/shadow.xml && \
        printf '<!DOCTYPE t [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]><testsuite><testcase name=\"&b;\"/></testsuite>' > .cairn-results/bomb.xml && \
        head -c 9000000 /dev/zero | tr '\\0' ' ' > .cairn-results/huge.xml && \
        mkfifo .cairn-results/pipe.xml && echo 'ok 1 - from the log' && echo '1..1'";
    f.write(
        "cairn.toml",
        &format!(
            "[workload]\nname = \"app\"\n[build]\ncommand = \"true\"\n[test]\nunit = {unit:?}\n"
        ),
    )
    // A report committed to the repository is never taken for the stage's.
    .write(
        ".cairn-results/junit.xml",
        "<testsuite><testcase name=\"committed-fake\"/></testsuite>",
    )
    .commit("hostile reports");
    let r = f.run(&["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    let log = f.run(&["logs", "last", "unit-tests"]).stdout;
    println!("{log}");
    for want in [
        "test report .cairn-results/bomb.xml refused: it declares a DTD",
        "test report .cairn-results/huge.xml refused",
        "more than the limit of 8388608",
        "test report .cairn-results/shadow.xml refused",
        "is a symlink, and cairn never follows a symlink",
        "test report .cairn-results/pipe.xml refused",
        "tests (tap): 1 passed, 0 failed, 0 skipped",
    ] {
        assert!(log.contains(want), "missing {want:?}: {log}");
    }
    let (predicate, notes) = unit_test_result(&f);
    assert_eq!(
        predicate["passedTests"],
        serde_json::json!(["from the log"])
    );
    assert_eq!(notes["cairn.tests.format"], "tap");
    assert!(!predicate.to_string().contains("committed-fake"));
}

/// A fixture root filesystem from host files: dash as `/bin/sh`, the C library
/// and its loader (merged-usr), and `cairn-fixture-cc`, a tool the host does not
/// have.
fn toolchain_rootfs(root: &std::path::Path) {
    use std::os::unix::fs::{PermissionsExt, symlink};
    for dir in ["usr/bin", "usr/lib/x86_64-linux-gnu", "usr/lib64", "etc"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::copy("/usr/bin/dash", root.join("usr/bin/sh")).unwrap();
    std::fs::copy(
        "/lib/x86_64-linux-gnu/libc.so.6",
        root.join("usr/lib/x86_64-linux-gnu/libc.so.6"),
    )
    .unwrap();
    std::fs::copy(
        "/lib64/ld-linux-x86-64.so.2",
        root.join("usr/lib64/ld-linux-x86-64.so.2"),
    )
    .unwrap();
    let tool = root.join("usr/bin/cairn-fixture-cc");
    std::fs::write(
        &tool,
        "#!/bin/sh\necho \"compiled by cairn-fixture-cc $*\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (link, target) in [
        ("bin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        symlink(target, root.join(link)).unwrap();
    }
    std::fs::write(root.join("etc/os-release"), "ID=fixture\nVERSION_ID=1\n").unwrap();
    std::fs::write(root.join("etc/passwd"), "nobody:x:65534:65534::/:/bin/sh\n").unwrap();
}

/// Issue 14, item 1: a workload naming a build image (`[build] image`) runs its
/// stages with that catalog base as the sandbox's system (a tool absent from the
/// host is there), and its digest is in the provenance; a build image missing
/// from the catalog, or one without a signed catalog admission, refuses the run
/// before it starts, naming it. Real bubblewrap.
#[test]
fn stages_run_in_the_build_image_the_workload_names() {
    assert!(
        !std::path::Path::new("/usr/bin/cairn-fixture-cc").exists(),
        "the host must not have the fixture's tool"
    );
    let f = Fixture::new();
    let rootfs = f.repo.parent().unwrap().join("toolchain-rootfs");
    toolchain_rootfs(&rootfs);
    f.ok(&[
        "base",
        "import",
        rootfs.to_str().unwrap(),
        "--name",
        "fixture-cc",
    ]);
    let config = |image: &str| {
        format!(
            "[workload]\nname = \"app\"\n[build]\nimage = \"{image}\"\n\
             command = \"cairn-fixture-cc main.c > app.txt\"\noutput = \"app.txt\"\n\
             [test]\nunit = \"cairn-fixture-cc --test && test ! -e /usr/bin/git\"\n"
        )
    };
    f.write("cairn.toml", &config("fixture-cc"))
        .write("main.c", "int main(void) { return 0; }\n")
        .commit("build in the fixture image");
    let r = f.run(&["run"]);
    let build = f.run(&["logs", "last", "build"]).stdout;
    println!("{build}");
    assert_eq!(r.code, 0, "{r:?}\n{build}");
    assert!(build.contains("build image fixture-cc sha256:"), "{build}");
    let unit = f.run(&["logs", "last", "unit-tests"]).stdout;
    assert!(
        unit.contains("compiled by cairn-fixture-cc --test"),
        "{unit}"
    );
    let statements = f.statements();
    let (_, provenance) = statements
        .iter()
        .find(|(_, s)| s["predicateType"] == "https://slsa.dev/provenance/v1")
        .unwrap();
    let deps = provenance["predicate"]["buildDefinition"]["resolvedDependencies"].to_string();
    println!("resolvedDependencies: {deps}");
    assert!(deps.contains("build image fixture-cc"), "{deps}");

    // Not in the catalog: refused before the run exists, naming it.
    f.write("cairn.toml", &config("no-such-toolchain"))
        .commit("missing");
    let r = f.run(&["run"]);
    println!("{}", r.stderr);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("build image `no-such-toolchain` is not in the organisation's catalog"),
        "{r:?}"
    );

    // In the store but without a signed admission (a row an attacker wrote, or
    // evidence removed): it did not pass the catalog's gate, so no run.
    f.tamper(
        "DELETE FROM evidence WHERE run_id IS NULL AND subject_name LIKE 'base fixture-cc%'",
        &[],
    );
    f.write("cairn.toml", &config("fixture-cc")).commit("back");
    let r = f.run(&["run"]);
    println!("{}", r.stderr);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("build image `fixture-cc` (sha256:")
            && r.stderr.contains("did not pass the catalog's gate")
            && r.stderr.contains("no signed catalog admission"),
        "{r:?}"
    );
}

/// Issue 14, item 1: org.toml's `[build.images]` maps the detected ecosystem to
/// a build image when the workload names none (here a Makefile project runs
/// `make`-less in the fixture image); a mapping to a base missing from the
/// catalog refuses the run before it starts, naming it and where it came from.
#[test]
fn org_maps_the_detected_ecosystem_to_a_build_image() {
    let f = Fixture::new();
    let rootfs = f.repo.parent().unwrap().join("toolchain-rootfs");
    toolchain_rootfs(&rootfs);
    f.ok(&[
        "base",
        "import",
        rootfs.to_str().unwrap(),
        "--name",
        "fixture-cc",
    ]);
    let platform = f.repo.parent().unwrap().join("platform");
    std::fs::create_dir_all(&platform).unwrap();
    let with_platform = |args: &[&str]| {
        Run::from(
            f.cairn(args)
                .env("CAIRN_PLATFORM_DIR", &platform)
                .output()
                .unwrap(),
        )
    };
    f.write("Makefile", "all:\n\ttrue\ntest:\n\ttrue\n")
        .write(
            "cairn.toml",
            "[workload]\nname = \"app\"\n[build]\ncommand = \"cairn-fixture-cc build\"\n\
             [test]\nunit = \"cairn-fixture-cc --test\"\n",
        )
        .commit("a make project");
    std::fs::write(
        platform.join("org.toml"),
        "[build.images]\nmake = \"fixture-cc\"\n",
    )
    .unwrap();
    let r = with_platform(&["run"]);
    let unit = f.run(&["logs", "last", "unit-tests"]).stdout;
    println!("{unit}");
    assert_eq!(r.code, 0, "{r:?}\n{unit}");
    assert!(
        unit.contains("build image fixture-cc sha256:")
            && unit.contains("org.toml [build.images] maps the detected ecosystem make to it")
            && unit.contains("compiled by cairn-fixture-cc --test"),
        "{unit}"
    );

    std::fs::write(
        platform.join("org.toml"),
        "[build.images]\nmake = \"gcc-toolchain\"\n",
    )
    .unwrap();
    let r = with_platform(&["run"]);
    println!("{}", r.stderr);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("build image `gcc-toolchain` (org.toml [build.images] maps the detected ecosystem make to it) is refused: it is not in the organisation's catalog"),
        "{r:?}"
    );
    // Without a mapping (or an org.toml), the host's /usr, as before.
    let r = f.run(&["run"]);
    assert_eq!(r.code, 1, "{r:?}");
    let unit = f.run(&["logs", "last", "unit-tests"]).stdout;
    assert!(unit.contains("the host's /usr"), "{unit}");
}
