//! cairn's findings beside the real cargo-audit's on the same RustSec data: every
//! record of the conformance export is imported into cairn and written back into
//! the advisory-db layout cargo-audit reads (`crates/<name>/<ID>.md`), then both
//! scan one Cargo.lock of known-vulnerable crates. Vulnerability ids must be equal;
//! informational advisories (unmaintained, unsound, notice) are compared apart.
//!
//! cargo-audit is installed by `scripts/install-audit-tools` into
//! `$CAIRN_INTEROP_DIR` (default `<target dir>/interop-tools`); without it the
//! test fails, it never skips.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn rustsec_dir() -> PathBuf {
    cairn_testkit::conformance("osv/rustsec")
}

fn cargo_audit() -> PathBuf {
    let dir = match std::env::var_os("CAIRN_INTEROP_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
            .join("interop-tools"),
    };
    let bin = dir.join("bin/cargo-audit");
    assert!(
        bin.is_file(),
        "run scripts/install-audit-tools first (missing {})",
        bin.display()
    );
    bin
}

/// Writes every record of `osv` into `db` in the advisory-db layout; returns how
/// many were written.
fn write_advisory_db(osv: &Path, db: &Path) -> usize {
    let mut written = 0;
    for entry in std::fs::read_dir(osv).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let advisory = cairn_vuln::Advisory::parse(&std::fs::read(&path).unwrap()).unwrap();
        let e = cairn_vuln::rustsec_export::to_rustsec(&advisory).unwrap();
        let dir = db.join("crates").join(&e.package);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(&e.file_name), e.markdown).unwrap();
        written += 1;
    }
    written
}

/// The crates of the lockfile: vulnerable versions of well-known crates, crates
/// with informational advisories (unsound, unmaintained), and clean ones.
const CRATES: &[(&str, &str)] = &[
    ("smallvec", "0.6.9"),
    ("time", "0.1.45"),
    ("chrono", "0.4.19"),
    ("regex", "1.5.4"),
    ("hyper", "0.14.9"),
    ("tokio", "1.8.0"),
    ("h2", "0.3.16"),
    ("openssl", "0.10.45"),
    ("idna", "0.2.3"),
    ("atty", "0.2.14"),
    ("ansi_term", "0.12.1"),
    ("yaml-rust", "0.4.5"),
    ("lru", "0.6.0"),
    ("crossbeam-channel", "0.5.13"),
    ("serde", "1.0.200"),
    ("libc", "0.2.150"),
];

fn cargo_lock(crates: &[(&str, &str)]) -> String {
    let deps: Vec<String> = crates.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    let mut text = format!(
        "version = 3\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [{}]\n",
        deps.join(", ")
    );
    for (name, version) in crates {
        text.push_str(&format!(
            "\n[[package]]\nname = \"{name}\"\nversion = \"{version}\"\n\
             source = \"registry+https://github.com/rust-lang/crates.io-index\"\n"
        ));
    }
    text
}

fn ids(list: &Value, pointer: &str) -> BTreeSet<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|x| {
            x.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn cairn_finds_what_cargo_audit_finds_on_the_same_rustsec_data() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("advisory-db");
    let written = write_advisory_db(&rustsec_dir(), &db);
    assert!(written > 1000, "{written} advisories written");
    let app = tmp.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("Cargo.lock"), cargo_lock(CRATES)).unwrap();

    // cargo-audit, offline, on the written database.
    let out = Command::new(cargo_audit())
        .args(["audit", "--no-fetch", "--json", "--db"])
        .arg(&db)
        .arg("--file")
        .arg(app.join("Cargo.lock"))
        .env("CARGO_HOME", tmp.path().join("cargo-home"))
        .output()
        .unwrap();
    let theirs: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "cargo-audit printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let their_vulns = ids(&theirs["vulnerabilities"]["list"], "/advisory/id");
    let mut their_info = BTreeSet::new();
    for (kind, list) in theirs["warnings"].as_object().unwrap() {
        if kind == "yanked" {
            continue;
        }
        their_info.extend(ids(list, "/advisory/id"));
    }

    // cairn, on the same records.
    let cairn = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(args)
            .current_dir(tmp.path())
            .env("CAIRN_HOME", tmp.path().join("home"))
            .env_remove("CAIRN_PLATFORM_DIR")
            .output()
            .unwrap()
    };
    let import = cairn(&["vulns", "import", rustsec_dir().to_str().unwrap()]);
    assert_eq!(import.status.code(), Some(0), "{import:?}");
    let scan = cairn(&["--json", "scan", app.to_str().unwrap()]);
    assert_eq!(
        scan.status.code(),
        Some(1),
        "vulnerable crates must fail the scan"
    );
    let ours: Value = serde_json::from_slice(&scan.stdout).unwrap();
    let our_vulns = ids(&ours["vulnerabilities"], "/advisory");
    let our_info = ids(&ours["informational"], "/advisory");

    println!(
        "cargo-audit vulnerabilities ({}): {their_vulns:?}",
        their_vulns.len()
    );
    println!(
        "cairn vulnerabilities       ({}): {our_vulns:?}",
        our_vulns.len()
    );
    println!(
        "cargo-audit informational   ({}): {their_info:?}",
        their_info.len()
    );
    println!(
        "cairn informational         ({}): {our_info:?}",
        our_info.len()
    );
    assert!(
        their_vulns.len() >= 20,
        "the lockfile must hit many advisories"
    );
    assert_eq!(our_vulns, their_vulns, "vulnerability ids differ");
    assert!(
        our_info.contains("RUSTSEC-2024-0375") && our_info.contains("RUSTSEC-2021-0145"),
        "atty is unmaintained and unsound: {our_info:?}"
    );
    // Informational advisories, apart: cargo-audit lists them as warnings.
    assert!(!their_info.is_empty(), "cargo-audit warned about nothing");
    assert_eq!(our_info, their_info, "informational advisory ids differ");
}

/// cairn scans its own Cargo.lock (run by `.ci/run` through the test suite) against
/// the RustSec records of the conformance material: any finding of any severity
/// fails, unless `.ci/cargo-lock.vex.json` accepts it with a reason (OpenVEX
/// `not_affected` with a justification and impact statement, or `fixed`).
/// Informational advisories (unmaintained, unsound) are printed, not counted.
#[test]
fn cairns_own_cargo_lock_has_no_finding_the_vex_file_does_not_accept() {
    let tmp = tempfile::tempdir().unwrap();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cairn = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(args)
            .env("CAIRN_HOME", tmp.path().join("data"))
            .env_remove("CAIRN_PLATFORM_DIR")
            .env_remove("CAIRN_TOKEN")
            .current_dir(&workspace)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = cairn(&["vulns", "import", rustsec_dir().to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let scan = |lockfile: &str| {
        cairn(&[
            "scan",
            lockfile,
            "--fail-on",
            "low",
            "--vex",
            ".ci/cargo-lock.vex.json",
        ])
    };
    // The check bites: a lockfile with a vulnerable crate fails it.
    let bad = tmp.path().join("Cargo.lock");
    std::fs::write(&bad, cargo_lock(&[("smallvec", "0.6.9")])).unwrap();
    let (code, out, _) = scan(bad.to_str().unwrap());
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("RUSTSEC-2019-0009"), "{out}");

    let (code, out, err) = scan("Cargo.lock");
    println!("{out}");
    assert_eq!(
        code,
        Some(0),
        "cairn finds vulnerabilities in its own Cargo.lock that .ci/cargo-lock.vex.json does not \
         accept: update the crate, or add a not_affected statement with its reason\n{out}{err}"
    );
    assert!(
        out.contains(" packages scanned: 0 vulnerabilities"),
        "{out}"
    );
}

/// `cairn bench scan` measures two lockfiles in one run: the 908 crates the
/// records name and the first `--crates` of them, each against cargo-audit on
/// the same data, with the same vulnerability ids (the ratio is the lead's to
/// judge on a release build; here it only has to be a number).
#[test]
fn bench_scan_reports_the_small_lockfile_beside_the_large_one() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args([
            "--json", "bench", "scan", "--repeat", "1", "--crates", "30", "--osv",
        ])
        .arg(rustsec_dir())
        .arg("--cargo-audit")
        .arg(cargo_audit())
        .env("CAIRN_HOME", home.path().join("home"))
        .current_dir(home.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["same_ids"], true, "{report}");
    assert!(report["packages"].as_u64().unwrap() > 900, "{report}");
    let small = &report["small"];
    assert_eq!(small["packages"], 30, "{report}");
    assert_eq!(small["same_ids"], true, "{report}");
    assert!(small["ratio_p50"].as_f64().unwrap() > 0.0, "{report}");
    println!(
        "908: {} vulnerabilities, ratio {:.2}; 30: {} vulnerabilities, ratio {:.2} (debug build)",
        report["vulnerabilities"]["cairn"],
        report["ratio_p50"].as_f64().unwrap(),
        small["vulnerabilities"]["cairn"],
        small["ratio_p50"].as_f64().unwrap()
    );
}
