//! The habits that keep the house in order, checked over every crate's manifest
//! and source (no build needed): floors strictly downward (ARCHITECTURE.md),
//! processes started only by the sandbox and the engine's git module (with the
//! exceptions below, each with its reason), and every dependency declared once,
//! in the workspace's `[workspace.dependencies]`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Each crate's rank: a crate's normal dependencies on cairn crates must have a
/// lower rank. Floor 1 (pure) is 10–12 (the order inside floor 1 is the
/// existing one), floor 2 is 20–21 (`cairn-fs` the lowest), the engine 30, the
/// outer floor 40–42 (`cairn-bench` under the CLI that calls it). `cairn-testkit`
/// is a dev-dependency only.
const RANKS: &[(&str, u32)] = &[
    ("cairn-model", 9),
    ("cairn-tlog", 10),
    ("cairn-vuln", 10),
    ("cairn-sbom", 10),
    ("cairn-evidence", 11),
    ("cairn-sigstore", 11),
    ("cairn-policy", 12),
    ("cairn-fs", 20),
    ("cairn-store", 21),
    ("cairn-sandbox", 21),
    ("cairn-oci", 21),
    ("cairn-registry", 21),
    ("cairn-tlog-fs", 21),
    ("cairn-engine", 30),
    ("cairn-server", 40),
    ("cairn-bench", 41),
    ("cairn-cli", 42),
];

/// Third-party crates a floor-1 crate must not use directly (I/O, storage, HTTP,
/// terminals); the transitive check is `cargo tree` in `scripts/test`.
const OUTER_ONLY: &[&str] = &[
    "rusqlite",
    "clap",
    "indicatif",
    "ureq",
    "axum",
    "tokio",
    "tower",
    "libc",
    "tempfile",
];
/// What the engine must not know: HTTP serving, or an async runtime (engine code
/// is synchronous). The rule is about the engine's code and its direct
/// dependencies: the binary links tokio under the engine only through the
/// store's PostgreSQL client (rust-postgres drives its connection on a runtime
/// of its own, behind a synchronous API), which only the binary turns on — see
/// `only_the_binary_turns_on_the_postgresql_store`.
const NOT_IN_ENGINE: &[&str] = &["axum", "tokio", "tower", "tower-http", "cairn-server"];

/// Source files outside `cairn-sandbox` and `cairn-engine/src/git.rs` that start
/// a process, and why. Shrink this list; never grow it without a reason.
const COMMAND_EXCEPTIONS: &[(&str, &str)] = &[
    (
        "crates/cairn-testkit/src/lib.rs",
        "test support (a dev-dependency only): the test harnesses' one git helper",
    ),
    (
        "crates/cairn-registry/src/authfile.rs",
        "a registry credential helper the user configured (`docker-credential-<name> get`, Docker's protocol): its name checked, stdin the host, bounded in time and output",
    ),
    (
        "crates/cairn-testkit/src/smtp_server.rs",
        "tests' SMTP server: PyPI aiosmtpd from the interop venv (a dev-dependency only, never in the product)",
    ),
    (
        "crates/cairn-testkit/src/pg.rs",
        "tests' PostgreSQL server: initdb, pg_ctl, createdb and dropdb (a dev-dependency only, never in the product)",
    ),
    (
        "crates/cairn-engine/src/images/recipe.rs",
        "mmdebstrap on the host for a base's recipe (`cairn base create debian`, `base refresh`): the operator's command, not the workload's; its arguments are checked names",
    ),
    (
        "crates/cairn-bench/src/os_match.rs",
        "the OS-matching benchmark runs the Python + libapt reference matcher beside cairn",
    ),
    (
        "crates/cairn-bench/src/chain_setup.rs",
        "the chain benchmark's setup: a throwaway git repository",
    ),
    (
        "crates/cairn-bench/src/sandbox_noop.rs",
        "the sandbox benchmark's peer: a bare `bwrap --ro-bind / / true`",
    ),
    (
        "crates/cairn-bench/src/push_layer.rs",
        "the push benchmark's floor: sha256sum of the same bytes",
    ),
    (
        "crates/cairn-bench/src/peers.rs",
        "benchmarks run peers (node, git, docker-registry, sha256sum, cairn itself)",
    ),
    (
        "crates/cairn-bench/src/scan.rs",
        "the scan benchmark runs cairn and cargo-audit",
    ),
    (
        "crates/cairn-bench/src/workers.rs",
        "the workers benchmark starts `cairn worker` processes and a throwaway git repository",
    ),
    (
        "crates/cairn-bench/src/replicas.rs",
        "the replica reads benchmark starts `cairn up`, two `cairn serve` replicas and wrk",
    ),
    (
        "crates/cairn-bench/src/serve.rs",
        "the serve benchmark sets up git repositories",
    ),
];

fn manifest(path: &Path) -> toml::Table {
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn crates() -> BTreeMap<String, toml::Table> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(workspace().join("crates")).unwrap() {
        let path = entry.unwrap().path().join("Cargo.toml");
        if path.is_file() {
            let m = manifest(&path);
            let name = m["package"]["name"].as_str().unwrap().to_owned();
            out.insert(name, m);
        }
    }
    out
}

fn section<'a>(m: &'a toml::Table, name: &str) -> Vec<(&'a String, &'a toml::Value)> {
    m.get(name)
        .and_then(|t| t.as_table())
        .map(|t| t.iter().collect())
        .unwrap_or_default()
}

#[test]
fn floors_point_strictly_downward() {
    let ranks: BTreeMap<&str, u32> = RANKS.iter().copied().collect();
    let mut wrong = Vec::new();
    for (name, m) in crates() {
        if name == "cairn-testkit" {
            assert!(
                section(&m, "dependencies")
                    .iter()
                    .all(|(d, _)| !d.starts_with("cairn-")),
                "cairn-testkit depends on no cairn crate"
            );
            continue;
        }
        let Some(&rank) = ranks.get(name.as_str()) else {
            wrong.push(format!(
                "{name} has no floor in RANKS (add it, and to ARCHITECTURE.md)"
            ));
            continue;
        };
        for (dep, _) in section(&m, "dependencies") {
            if dep == "cairn-testkit" {
                wrong.push(format!(
                    "{name} uses cairn-testkit outside dev-dependencies"
                ));
            } else if let Some(&r) = ranks.get(dep.as_str())
                && r >= rank
            {
                wrong.push(format!("{name} (rank {rank}) depends on {dep} (rank {r})"));
            }
            if rank < 20 && OUTER_ONLY.contains(&dep.as_str()) {
                wrong.push(format!("floor-1 {name} depends on {dep}"));
            }
            if name == "cairn-engine" && NOT_IN_ENGINE.contains(&dep.as_str()) {
                wrong.push(format!("cairn-engine depends on {dep} (HTTP serving)"));
            }
        }
    }
    assert!(wrong.is_empty(), "floors broken:\n{}", wrong.join("\n"));
}

/// The store's conformance suite is for tests: no crate turns the feature on
/// outside `[dev-dependencies]`, and the workspace declares cairn-store without
/// it, so the product binary does not contain the suite.
#[test]
fn the_store_conformance_suite_is_for_tests_only() {
    let uses_it = |spec: &toml::Value| {
        spec.get("features")
            .and_then(|f| f.as_array())
            .is_some_and(|f| f.iter().any(|x| x.as_str() == Some("conformance")))
    };
    let root = manifest(&workspace().join("Cargo.toml"));
    assert!(
        !uses_it(&root["workspace"]["dependencies"]["cairn-store"]),
        "[workspace.dependencies] cairn-store turns on `conformance` for every crate"
    );
    let mut wrong = Vec::new();
    for (name, m) in crates() {
        for sec in ["dependencies", "build-dependencies"] {
            for (dep, spec) in section(&m, sec) {
                if dep == "cairn-store" && uses_it(spec) {
                    wrong.push(format!(
                        "{name} [{sec}] turns on cairn-store's `conformance`"
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// cairn-store's `postgres` feature (rust-postgres, and tokio under it) is
/// turned on by the binary only: the engine and every crate below it build and
/// test without a database client or an async runtime in their own graph
/// (`cargo tree -p cairn-engine -e normal -i tokio` finds nothing), while the
/// `cairn` binary opens `postgres://` stores.
#[test]
fn only_the_binary_turns_on_the_postgresql_store() {
    let uses_it = |spec: &toml::Value| {
        spec.get("features")
            .and_then(|f| f.as_array())
            .is_some_and(|f| f.iter().any(|x| x.as_str() == Some("postgres")))
    };
    let root = manifest(&workspace().join("Cargo.toml"));
    assert!(
        !uses_it(&root["workspace"]["dependencies"]["cairn-store"]),
        "[workspace.dependencies] cairn-store turns on `postgres` for every crate"
    );
    let mut turned_on = Vec::new();
    for (name, m) in crates() {
        for (dep, spec) in section(&m, "dependencies") {
            if dep == "cairn-store" && uses_it(spec) {
                turned_on.push(name.clone());
            }
        }
    }
    assert_eq!(turned_on, vec!["cairn-cli".to_owned()]);
}

#[test]
fn every_dependency_is_declared_once_in_the_workspace() {
    let root = manifest(&workspace().join("Cargo.toml"));
    let declared = root["workspace"]["dependencies"].as_table().unwrap();
    let mut wrong = Vec::new();
    for (name, m) in crates() {
        for sec in ["dependencies", "dev-dependencies", "build-dependencies"] {
            for (dep, spec) in section(&m, sec) {
                let inherits = spec
                    .as_table()
                    .and_then(|t| t.get("workspace"))
                    .and_then(toml::Value::as_bool)
                    == Some(true);
                let only_features = spec.as_table().is_some_and(|t| {
                    t.keys()
                        .all(|k| matches!(k.as_str(), "workspace" | "features" | "optional"))
                });
                if !inherits || !only_features {
                    wrong.push(format!(
                        "{name} [{sec}] {dep} = {spec}: write `{dep}.workspace = true` and declare the version in [workspace.dependencies]"
                    ));
                } else if !declared.contains_key(dep) {
                    wrong.push(format!(
                        "{name} [{sec}] {dep} is not in [workspace.dependencies]"
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Text of a source file without its `#[cfg(test)]` modules (from the first
/// `#[cfg(test)]` on: cairn keeps unit tests at the end of a file).
fn product_text(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn only_the_sandbox_and_the_git_module_start_processes() {
    let root = workspace();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let src = entry.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    let mut found = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace("crates/../", "");
        let rel = rel.trim_start_matches("./").to_owned();
        let text = product_text(&file);
        if !(text.contains("Command::new") || text.contains("process::Command")) {
            continue;
        }
        if rel.starts_with("crates/cairn-sandbox/src/") || rel == "crates/cairn-engine/src/git.rs" {
            continue;
        }
        found.push(rel);
    }
    let allowed: Vec<&str> = COMMAND_EXCEPTIONS.iter().map(|(f, _)| *f).collect();
    let unexpected: Vec<&String> = found
        .iter()
        .filter(|f| !allowed.contains(&f.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "these files start processes outside cairn-sandbox and cairn-engine's git module: {unexpected:?} \
         (use the sandbox or git.rs, or add the file to COMMAND_EXCEPTIONS with a reason)"
    );
    let stale: Vec<&&str> = allowed
        .iter()
        .filter(|f| !found.iter().any(|g| g == *f))
        .collect();
    assert!(
        stale.is_empty(),
        "COMMAND_EXCEPTIONS lists files that no longer start processes: {stale:?} (remove them)"
    );
}

/// A clone without the conformance material fails `scripts/test` once, first,
/// with one line saying how to provide it (not dozens of test panics later).
#[test]
fn the_test_command_checks_the_conformance_material_first() {
    let root = workspace();
    let script = std::fs::read_to_string(root.join("scripts/test")).unwrap();
    let first_command = script
        .lines()
        .map(str::trim)
        .find(|l| {
            !l.is_empty()
                && !l.starts_with('#')
                && !l.starts_with("set ")
                && !l.starts_with("cd ")
                && !l.starts_with("export ")
        })
        .unwrap();
    assert_eq!(first_command, "scripts/check-conformance", "{script}");

    let absent = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-conformance-here");
    let out = std::process::Command::new(root.join("scripts/check-conformance"))
        .env("CAIRN_CONFORMANCE_DIR", &absent)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    println!("{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("set CAIRN_CONFORMANCE_DIR"), "{err}");
    assert!(err.contains(&absent.display().to_string()), "{err}");

    let present = cairn_testkit::conformance_dir();
    let out = std::process::Command::new(root.join("scripts/check-conformance"))
        .env("CAIRN_CONFORMANCE_DIR", &present)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
