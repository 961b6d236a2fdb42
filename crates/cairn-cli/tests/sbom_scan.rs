//! End-to-end tests of `cairn sbom`, `cairn vulns import` and `cairn scan`: the real
//! binary on temporary trees, a temporary data directory (`CAIRN_HOME`), and the
//! RustSec OSV export from `CAIRN_CONFORMANCE_DIR` (a relative path is tried from
//! the working directory, then from the workspace root; when unset,
//! `../shared/conformance` beside the workspace).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn rustsec_dir() -> PathBuf {
    cairn_testkit::conformance("osv/rustsec")
}

/// A temp dir holding a data directory (`home/`) and the trees under test.
struct Fixture {
    tmp: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Writes `text` at `rel`, creating its directories.
    fn file(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    fn cairn(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(args)
            .current_dir(self.tmp.path())
            .env("CAIRN_HOME", self.path("home"))
            .env_remove("CAIRN_PLATFORM_DIR")
            .output()
            .unwrap()
    }

    fn import_rustsec(&self) -> Value {
        let out = self.cairn(&["vulns", "import", "--json", rustsec_dir().to_str().unwrap()]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        json(&out)
    }

    /// `cairn scan --json` of a tree holding one Cargo.lock with these crates.
    fn scan_crates(&self, name: &str, crates: &[(&str, &str)], extra: &[&str]) -> (i32, Value) {
        self.file(&format!("{name}/Cargo.lock"), &cargo_lock(crates));
        let dir = self.path(name);
        let mut args = vec!["scan", "--json", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = self.cairn(&args);
        (code(&out), json(&out))
    }
}

/// A Cargo.lock of every crates.io package the RustSec records name, at 0.1.0
/// (as `scripts/perf-guard` scans them), and how many they are.
fn every_rustsec_crate_locked() -> (usize, String) {
    let mut names = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(rustsec_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for a in record["affected"].as_array().into_iter().flatten() {
            if a["package"]["ecosystem"] == "crates.io" {
                names.insert(a["package"]["name"].as_str().unwrap().to_owned());
            }
        }
    }
    let crates: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "0.1.0")).collect();
    (crates.len(), cargo_lock(&crates))
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("cairn exited by a signal")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            stderr(out)
        )
    })
}

/// A Cargo.lock (v3) of a root package `app` depending on registry crates.
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

const PACKAGE_LOCK: &str = r#"{
  "name": "web",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "packages": {
    "": { "name": "web", "version": "1.0.0" },
    "node_modules/left-pad": { "version": "1.3.0", "license": "WTFPL" },
    "node_modules/@types/node": { "version": "20.1.0", "license": "MIT" }
  }
}"#;

/// A source tree with a Cargo.lock and a package-lock.json.
fn two_lockfiles(f: &Fixture) -> PathBuf {
    f.file(
        "tree/Cargo.lock",
        &cargo_lock(&[("smallvec", "1.6.1"), ("libc", "0.2.150")]),
    );
    f.file("tree/web/package-lock.json", PACKAGE_LOCK);
    f.path("tree")
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn strings(v: &Value, pointer: &str) -> Vec<String> {
    v.as_array()
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

const EXPECTED_PURLS: [&str; 4] = [
    "pkg:cargo/libc@0.2.150",
    "pkg:cargo/smallvec@1.6.1",
    "pkg:npm/%40types/node@20.1.0",
    "pkg:npm/left-pad@1.3.0",
];

#[test]
fn sbom_of_a_tree_lists_exactly_its_locked_components() {
    let f = Fixture::new();
    let tree = two_lockfiles(&f);
    let out = f.cairn(&["sbom", tree.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["bomFormat"], "CycloneDX");
    assert_eq!(doc["specVersion"], "1.6");
    let serial = doc["serialNumber"].as_str().unwrap();
    let uuid = serial.strip_prefix("urn:uuid:").unwrap();
    assert_eq!(uuid.len(), 36);
    assert_eq!(&uuid[14..15], "4", "a v4 UUID: {uuid}");
    assert!(
        doc["metadata"]["timestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let components = &doc["components"];
    assert_eq!(sorted(strings(components, "/purl")), EXPECTED_PURLS);
    let names = sorted(strings(components, "/name"));
    assert_eq!(names, ["left-pad", "libc", "node", "smallvec"]);

    // Two documents never share a serial number; --output writes the same shape.
    let file = f.path("bom.json");
    let out = f.cairn(&[
        "sbom",
        tree.to_str().unwrap(),
        "--output",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let written: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_ne!(written["serialNumber"], doc["serialNumber"]);
    assert_eq!(
        sorted(strings(&written["components"], "/purl")),
        EXPECTED_PURLS
    );
}

#[test]
fn sbom_exports_spdx() {
    let f = Fixture::new();
    let tree = two_lockfiles(&f);
    let out = f.cairn(&["sbom", "--format", "spdx", tree.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["dataLicense"], "CC0-1.0");
    let namespace = doc["documentNamespace"].as_str().unwrap();
    assert!(namespace.starts_with("https://"), "{namespace}");
    let mut purls = Vec::new();
    for p in doc["packages"].as_array().unwrap() {
        for r in p["externalRefs"].as_array().into_iter().flatten() {
            if r["referenceType"] == "purl" {
                purls.push(r["referenceLocator"].as_str().unwrap().to_owned());
            }
        }
    }
    assert_eq!(sorted(purls), EXPECTED_PURLS);
}

#[test]
fn sbom_reports_and_skips_bad_files() {
    let f = Fixture::new();
    f.file("tree/Cargo.lock", "this is [[not a lockfile");
    f.file("tree/web/package-lock.json", PACKAGE_LOCK);
    f.file(
        "tree/api/package-lock.json",
        "{\"lockfileVersion\": 3, \"packages\": {",
    );
    // A file over the 64 MiB limit (sparse: no disk is used).
    std::fs::create_dir_all(f.path("tree/big")).unwrap();
    let big = std::fs::File::create(f.path("tree/big/poetry.lock")).unwrap();
    big.set_len(65 << 20).unwrap();
    // A symlinked lockfile is never followed (here it points outside the tree).
    let outside = f.file("outside/Cargo.lock", &cargo_lock(&[("libc", "0.2.150")]));
    std::fs::create_dir_all(f.path("tree/linked")).unwrap();
    std::os::unix::fs::symlink(&outside, f.path("tree/linked/Cargo.lock")).unwrap();

    let out = f.cairn(&["sbom", f.path("tree").to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(
        sorted(strings(&doc["components"], "/purl")),
        ["pkg:npm/%40types/node@20.1.0", "pkg:npm/left-pad@1.3.0"]
    );
    let err = stderr(&out);
    for (path, reason) in [
        ("Cargo.lock", "invalid TOML"),
        ("api/package-lock.json", "invalid JSON"),
        ("big/poetry.lock", "more than the limit"),
        (
            "linked/Cargo.lock",
            "a symlink, which cairn does not follow",
        ),
    ] {
        let line = err
            .lines()
            .find(|l| l.starts_with(&format!("skipped {path}: ")))
            .unwrap_or_else(|| panic!("no `skipped {path}` in:\n{err}"));
        assert!(line.contains(reason), "{line}");
    }

    // Nothing readable at all: exit 1, and still no panic.
    f.file("junk/Cargo.lock", "\u{0}\u{1}garbage");
    f.file("junk/requirements.txt", "\u{ff}");
    let out = f.cairn(&["sbom", f.path("junk").to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("skipped Cargo.lock: "),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("could be read"), "{}", stderr(&out));

    // A path that does not exist is the user's input.
    let out = f.cairn(&["sbom", f.path("nowhere").to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
}

#[test]
fn rustsec_imports_completely_then_incrementally() {
    let f = Fixture::new();
    let total = std::fs::read_dir(rustsec_dir())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert!(total >= 1206, "{total}");
    let first = f.import_rustsec();
    assert_eq!(first["new"], total);
    assert_eq!(first["updated"], 0);
    assert_eq!(first["unchanged"], 0);
    assert_eq!(first["errors"].as_array().unwrap().len(), 0, "{first}");
    assert!(first["withdrawn"].as_u64().unwrap() > 0, "{first}");
    assert_eq!(first["stored"], total);
    let second = f.import_rustsec();
    assert_eq!(second["new"], 0);
    assert_eq!(second["updated"], 0);
    assert_eq!(second["unchanged"], total);
    assert_eq!(second["stored"], total);

    // The text form gives the same counts for people.
    let out = f.cairn(&["vulns", "import", rustsec_dir().to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("0 new, 0 updated, {total} unchanged")),
        "{text}"
    );
}

#[test]
fn import_replaces_only_newer_records_and_reports_bad_files() {
    let f = Fixture::new();
    let original = std::fs::read_to_string(rustsec_dir().join("RUSTSEC-2021-0003.json")).unwrap();
    let record: Value = serde_json::from_str(&original).unwrap();
    f.file("osv/RUSTSEC-2021-0003.json", &original);
    f.file("osv/garbage.json", "not json at all");
    f.file("osv/truncated.json", &original[..original.len() / 2]);
    f.file("osv/no-id.json", "{\"modified\": \"2024-01-01T00:00:00Z\"}");
    f.file("osv/README.md", "not a record, not read");
    let import = |dir: &str| {
        let out = f.cairn(&["vulns", "import", "--json", f.path(dir).to_str().unwrap()]);
        (code(&out), json(&out))
    };
    let (status, counts) = import("osv");
    assert_eq!(status, 0);
    assert_eq!(counts["new"], 1);
    assert_eq!(counts["files"], 4);
    let errors = sorted(strings(&counts["errors"], "/path"));
    assert_eq!(errors, ["garbage.json", "no-id.json", "truncated.json"]);

    // An older copy changes nothing; a newer one replaces the record.
    let mut older = record.clone();
    older["modified"] = Value::from("2000-01-01T00:00:00Z");
    f.file("older/r.json", &older.to_string());
    let (status, counts) = import("older");
    assert_eq!(
        (status, &counts["unchanged"]),
        (0, &Value::from(1)),
        "{counts}"
    );
    let mut newer = record.clone();
    newer["modified"] = Value::from("2999-01-01T00:00:00Z");
    f.file("newer/r.json", &newer.to_string());
    let (status, counts) = import("newer");
    assert_eq!(
        (status, &counts["updated"]),
        (0, &Value::from(1)),
        "{counts}"
    );

    // Only bad files: exit 1, each still listed.
    let (status, counts) = {
        f.file("bad/a.json", "[]");
        f.file("bad/b.json", "{");
        import("bad")
    };
    assert_eq!(status, 1);
    assert_eq!(counts["errors"].as_array().unwrap().len(), 2);

    // A `.zip` that is no zip archive is refused whole, with a clear message
    // (zip imports are tested in vulns_import.rs).
    f.file("osv.zip", "PK");
    let out = f.cairn(&["vulns", "import", f.path("osv.zip").to_str().unwrap()]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("zip"), "{}", stderr(&out));
}

fn ids(report: &Value, list: &str) -> Vec<String> {
    sorted(strings(&report[list], "/advisory"))
}

#[test]
fn scan_fails_on_a_vulnerable_crate_and_passes_the_fixed_one() {
    let f = Fixture::new();
    f.import_rustsec();
    // smallvec 0.6.10: RUSTSEC-2021-0003 (CVSS 9.8, fixed in 0.6.14 and 1.6.1).
    let (status, report) = f.scan_crates("vulnerable", &[("smallvec", "0.6.10")], &[]);
    assert_eq!(status, 1, "{report}");
    assert!(ids(&report, "vulnerabilities").contains(&"RUSTSEC-2021-0003".to_owned()));
    let finding = report["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["advisory"] == "RUSTSEC-2021-0003")
        .unwrap();
    assert_eq!(finding["package"], "smallvec");
    assert_eq!(finding["installed_version"], "0.6.10");
    assert_eq!(finding["severity"]["rating"], "critical");
    let fixed = strings(&finding["fixed_versions"], "");
    assert!(fixed.contains(&"1.6.1".to_owned()), "{fixed:?}");
    assert!(report["failed"].as_bool().unwrap());

    // The text form names the advisory too.
    let out = f.cairn(&["scan", f.path("vulnerable").to_str().unwrap()]);
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stdout).contains("RUSTSEC-2021-0003"));

    let (status, report) = f.scan_crates("fixed", &[("smallvec", "1.6.1")], &[]);
    assert_eq!(status, 0, "{report}");
    assert!(ids(&report, "vulnerabilities").is_empty(), "{report}");
    assert_eq!(report["packages"], 1);
}

#[test]
fn scan_threshold_decides_the_exit_code() {
    let f = Fixture::new();
    f.import_rustsec();
    // mdbook 0.4.4: RUSTSEC-2021-0001, CVSS 6.1 (medium).
    let (status, report) = f.scan_crates("app", &[("mdbook", "0.4.4")], &[]);
    assert_eq!(status, 0, "{report}");
    assert_eq!(ids(&report, "vulnerabilities"), ["RUSTSEC-2021-0001"]);
    assert!(!report["failed"].as_bool().unwrap());
    for (threshold, want) in [("low", 1), ("medium", 1), ("high", 0), ("critical", 0)] {
        let (status, _) = f.scan_crates("app", &[("mdbook", "0.4.4")], &["--fail-on", threshold]);
        assert_eq!(status, want, "--fail-on {threshold}");
    }
}

#[test]
fn informational_advisories_are_reported_apart() {
    let f = Fixture::new();
    f.import_rustsec();
    // libusb 0.3.0: RUSTSEC-2016-0004 (unmaintained), no vulnerability.
    let (status, report) = f.scan_crates("app", &[("libusb", "0.3.0")], &[]);
    assert_eq!(status, 0, "{report}");
    assert!(ids(&report, "vulnerabilities").is_empty(), "{report}");
    let info = &report["informational"];
    assert_eq!(ids(&report, "informational"), ["RUSTSEC-2016-0004"]);
    assert_eq!(info[0]["kind"], "unmaintained");

    let out = f.cairn(&["scan", f.path("app").to_str().unwrap()]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("informational"), "{text}");
    assert!(text.contains("[unmaintained] RUSTSEC-2016-0004"), "{text}");
}

#[test]
fn scan_reports_what_it_could_not_evaluate() {
    let f = Fixture::new();
    // Before any import, a scan cannot pass: exit 1, says what to do.
    f.file("app/Cargo.lock", &cargo_lock(&[("smallvec", "0.6.10")]));
    let out = f.cairn(&["scan", f.path("app").to_str().unwrap()]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("cairn vulns import"),
        "{}",
        stderr(&out)
    );

    f.import_rustsec();
    f.file("app/web/package-lock.json", "{ truncated");
    let out = f.cairn(&["scan", "--json", f.path("app").to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let report = json(&out);
    assert!(ids(&report, "vulnerabilities").contains(&"RUSTSEC-2021-0003".to_owned()));
    let issues = strings(&report["issues"], "/subject");
    assert_eq!(issues, ["web/package-lock.json"], "{report}");

    // A root filesystem without os-release: its release is unknown, so its OS
    // packages cannot be matched; each is listed with why, and a scan that
    // evaluated nothing does not pass.
    f.file(
        "rootfs/var/lib/dpkg/status",
        "Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.2.13.dfsg-1\n",
    );
    let out = f.cairn(&["scan", "--json", f.path("rootfs").to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["packages"], 0);
    let issues = strings(&report["issues"], "/subject");
    assert_eq!(issues, ["pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64"]);
    let reasons = strings(&report["issues"], "/reason");
    assert!(
        reasons[0].contains("the debian release is unknown"),
        "{reasons:?}"
    );
    assert!(
        stderr(&out).contains("could be evaluated"),
        "{}",
        stderr(&out)
    );

    // A tree with only garbage cannot be scanned at all.
    f.file("junk/Cargo.lock", "[[[");
    let out = f.cairn(&["scan", f.path("junk").to_str().unwrap()]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("skipped Cargo.lock"),
        "{}",
        stderr(&out)
    );
}

/// The README's flow in a fresh directory: import, then scan, with the data in
/// `.cairn/` of the working directory (no CAIRN_HOME).
#[test]
fn import_then_scan_in_a_fresh_directory() {
    let f = Fixture::new();
    f.file("proj/Cargo.lock", &cargo_lock(&[("smallvec", "0.6.10")]));
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(args)
            .current_dir(f.tmp.path())
            .env_remove("CAIRN_HOME")
            .output()
            .unwrap()
    };
    let out = run(&["vulns", "import", rustsec_dir().to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(f.path(".cairn").is_dir());
    let out = run(&["scan", "proj"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("RUSTSEC-2021-0003"));
}

/// Runs `script` (Python, `db` bound to an sqlite3 connection to the fixture's
/// store) and prints what it prints: the test reads or writes the database as
/// another program would.
fn sqlite(f: &Fixture, script: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            &format!("import sqlite3,sys\ndb=sqlite3.connect(sys.argv[1])\n{script}\ndb.commit()"),
        ])
        .arg(f.path("home/cairn.db"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The findings an affected (advisory, crate) pair's compiled form makes are
/// the records' own: a scan of every crate the RustSec records name (at
/// 0.1.0, as `scripts/perf-guard` scans them: 974 pairs that may match) gives
/// byte for byte the same JSON, text and SARIF as the scan that reads and
/// matches every record (each compiled form dropped, as for rows kept before
/// schema v17).
#[test]
fn findings_from_compiled_forms_are_the_records_byte_for_byte() {
    let f = Fixture::new();
    f.import_rustsec();
    let (crates, lock_text) = every_rustsec_crate_locked();
    f.file("every/Cargo.lock", &lock_text);
    let dir = f.path("every");
    let dir = dir.to_str().unwrap();
    let scans = |f: &Fixture| -> Vec<Vec<u8>> {
        [
            vec!["--json", "scan", dir],
            vec!["scan", dir],
            vec!["scan", "--format", "sarif", dir],
        ]
        .iter()
        .map(|args| {
            let out = f.cairn(args);
            assert_eq!(code(&out), 1, "{}", stderr(&out));
            out.stdout
        })
        .collect()
    };
    let compiled = scans(&f);
    let forms = sqlite(
        &f,
        "print(db.execute('SELECT count(*) FROM advisory_packages WHERE compiled IS NOT NULL').fetchone()[0])",
    );
    sqlite(
        &f,
        "db.execute('UPDATE advisory_packages SET compiled = NULL')",
    );
    let records = scans(&f);
    let report: Value = serde_json::from_slice(&compiled[0]).unwrap();
    // The report is written by hand as serde_json writes it: the line is
    // serde_json's own for its parsed value (keys in order, escapes, numbers).
    assert!(
        compiled[0] == format!("{}\n", serde_json::to_string(&report).unwrap()).into_bytes(),
        "the JSON report is not what serde_json writes for it"
    );
    println!(
        "{} crates, {forms} compiled forms: {} vulnerabilities, {} informational, {} not evaluated; JSON, text and SARIF ({} bytes) the same from the records",
        crates,
        report["vulnerabilities"].as_array().unwrap().len(),
        report["informational"].as_array().unwrap().len(),
        report["issues"].as_array().map_or(0, Vec::len),
        compiled.iter().map(Vec::len).sum::<usize>()
    );
    assert!(report["vulnerabilities"].as_array().unwrap().len() > 400);
    for (i, (a, b)) in compiled.iter().zip(&records).enumerate() {
        assert!(
            a == b,
            "output {i} differs between compiled forms and records"
        );
    }
}

/// `cairn scan` only reads: once the store is paired with the log, a scan
/// opens it through one connection SQLite keeps from writing, and the
/// database file is byte for byte what it was (no migration, no mark moved, no
/// checkpoint on close).
#[test]
fn scan_opens_the_store_without_writing_it() {
    let f = Fixture::new();
    f.import_rustsec();
    let (status, first) = f.scan_crates("app", &[("smallvec", "0.6.10")], &[]);
    assert_eq!(status, 1, "{first}");
    let before = std::fs::read(f.path("home/cairn.db")).unwrap();
    for _ in 0..2 {
        let (status, again) = f.scan_crates("app", &[("smallvec", "0.6.10")], &[]);
        assert_eq!(status, 1, "{again}");
        assert_eq!(again, first);
    }
    assert!(
        std::fs::read(f.path("home/cairn.db")).unwrap() == before,
        "a scan changed the database file"
    );
    let wal = f.path("home/cairn.db-wal");
    assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
    println!(
        "three scans: the database file ({} bytes) unchanged, no WAL frames",
        before.len()
    );
}

/// A store a read cannot serve as it is (here: not in WAL mode, as another
/// program may leave it) is opened the way every writing command opens it,
/// which switches it to WAL: the read open's one explicit write path, and the
/// scan's answer is the same.
#[test]
fn scan_opens_a_store_it_must_convert_as_writing_commands_do() {
    let f = Fixture::new();
    f.import_rustsec();
    let (_, first) = f.scan_crates("app", &[("smallvec", "0.6.10")], &[]);
    assert_eq!(
        sqlite(
            &f,
            "print(db.execute('PRAGMA journal_mode=DELETE').fetchone()[0])"
        ),
        "delete"
    );
    let (status, again) = f.scan_crates("app", &[("smallvec", "0.6.10")], &[]);
    assert_eq!(status, 1, "{again}");
    assert_eq!(again, first);
    let mode = sqlite(&f, "print(db.execute('PRAGMA journal_mode').fetchone()[0])");
    assert_eq!(mode, "wal");
    println!("journal mode after the scan: {mode}");
}

/// A read-only scan still refuses a store it cannot trust, untouched: one
/// from a newer cairn, and a file that is not a database.
#[test]
fn scan_refuses_a_newer_or_corrupt_store_untouched() {
    let f = Fixture::new();
    f.import_rustsec();
    f.file("app/Cargo.lock", &cargo_lock(&[("smallvec", "0.6.10")]));
    let app = f.path("app");
    sqlite(&f, "db.execute('PRAGMA user_version = 999')");
    let before = std::fs::read(f.path("home/cairn.db")).unwrap();
    let out = f.cairn(&["scan", "--json", app.to_str().unwrap()]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("schema version 999, newer than"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
    assert!(std::fs::read(f.path("home/cairn.db")).unwrap() == before);
    println!("newer: {}", stderr(&out).trim());

    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(f.path("home/cairn.db"), &garbage).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(f.path(&format!("home/cairn.db{suffix}")));
    }
    let out = f.cairn(&["scan", "--json", app.to_str().unwrap()]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("file is not a database"),
        "{}",
        stderr(&out)
    );
    assert!(std::fs::read(f.path("home/cairn.db")).unwrap() == garbage);
    println!("corrupt: {}", stderr(&out).trim());
}

/// What `/proc/PID/smaps` says of the heap's ranges advised for huge pages
/// (`VmFlags: … hg`).
#[derive(Debug, Default)]
struct AdvisedHeap {
    bytes: usize,
    resident_kib: u64,
    huge_kib: u64,
}

fn advised_heap(pid: u32) -> AdvisedHeap {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut heap = AdvisedHeap::default();
    let (mut range, mut resident, mut huge) = (0, 0, 0);
    let kib = |line: &str| -> u64 {
        line.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((from, to)) = first.split_once('-')
            && let (Ok(from), Ok(to)) = (
                usize::from_str_radix(from, 16),
                usize::from_str_radix(to, 16),
            )
        {
            range = if line.ends_with("[heap]") {
                to - from
            } else {
                0
            };
        } else if line.starts_with("Rss:") {
            resident = kib(line);
        } else if line.starts_with("AnonHugePages:") {
            huge = kib(line);
        } else if line.starts_with("VmFlags:")
            && range > 0
            && line.split_whitespace().any(|f| f == "hg")
        {
            heap.bytes += range;
            heap.resident_kib += resident;
            heap.huge_kib += huge;
        }
    }
    heap
}

/// Whether the process waits to write to a full pipe.
fn waits_on_a_pipe(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/wchan")).is_ok_and(|w| w.ends_with("pipe_write"))
}

/// Whether the kernel gives transparent huge pages to a range advised for them.
fn thp_enabled() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|s| s.contains("[always]") || s.contains("[madvise]"))
}

/// How often the kernel had no huge page to give a fault (`/proc/vmstat`).
fn thp_fault_fallbacks() -> u64 {
    std::fs::read_to_string("/proc/vmstat")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("thp_fault_fallback "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// `cairn scan` grows its heap once, by a reserve advised for transparent huge
/// pages (`crates/cairn-cli/src/heap.rs`), so that a large lockfile's many small
/// allocations do not cost a page fault per 4 KiB. Seen from outside, on the
/// real process: its report (every crate the RustSec records name) is larger
/// than a pipe holds, so the scan waits on its stdout while its
/// `/proc/PID/smaps` is read; then the report is read whole and is the same.
#[test]
fn a_scan_grows_its_heap_on_huge_pages() {
    // Where the heap falls is random (ASLR), and so was, once, whether the
    // reserve's first huge page came whole: several scans at once.
    const SCANS: usize = 8;
    let f = Fixture::new();
    f.import_rustsec();
    let (crates, lock_text) = every_rustsec_crate_locked();
    let lock = f.file("big/Cargo.lock", &lock_text);
    // The first scan after an import writes (it pairs the store with the
    // audit log); the ones measured only read.
    let first = f.cairn(&["scan", "--json", lock.to_str().unwrap()]);
    assert_eq!(code(&first), 1, "{}", stderr(&first));
    let report = json(&first);
    let fallbacks = thp_fault_fallbacks();
    let children: Vec<_> = (0..SCANS)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_cairn"))
                .args(["scan", "--json", lock.to_str().unwrap()])
                .current_dir(f.tmp.path())
                .env("CAIRN_HOME", f.path("home"))
                .env_remove("CAIRN_PLATFORM_DIR")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let heaps: Vec<AdvisedHeap> = children
        .iter()
        .map(|child| {
            // Its findings made, the scan waits to write the rest of its report.
            while !waits_on_a_pipe(child.id()) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            advised_heap(child.id())
        })
        .collect();
    let fell_back = thp_fault_fallbacks() != fallbacks;
    for (child, heap) in children.into_iter().zip(heaps) {
        let out = child.wait_with_output().unwrap();
        println!(
            "{crates} crates, {heap:?} of the heap advised for huge pages, {} bytes of report",
            out.stdout.len()
        );
        assert!(out.stdout.len() > 1 << 17, "the report fits a pipe");
        assert_eq!(code(&out), 1, "{}", stderr(&out));
        assert_eq!(json(&out), report);
        assert!(
            heap.bytes >= 2 << 20 && heap.bytes % (2 << 20) == 0,
            "{heap:?}"
        );
        assert!(heap.resident_kib > 0, "the scan allocates there: {heap:?}");
        // No advised range was touched before the advice: every page the
        // scan faulted in there is a huge one (unless the kernel had none to
        // give).
        if thp_enabled() && !fell_back {
            assert_eq!(heap.resident_kib, heap.huge_kib, "{heap:?}");
        }
    }
}
