//! End-to-end tests of `cairn vulns import` from zip archives (as osv.dev publishes
//! them) and of the incremental re-match of stored SBOMs after an import. The zips,
//! hostile ones included, are built by Python's `zipfile` (python3 is a test
//! dependency of the suite already); the findings are checked through the store.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cairn_store::prelude::*;
use cairn_store::{FindingFilter, FindingState, SqliteStore};
use serde_json::Value;

fn rustsec_dir() -> PathBuf {
    cairn_testkit::conformance("osv/rustsec")
}

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

    fn file(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
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

    fn json(&self, args: &[&str]) -> (i32, Value) {
        let out = self.cairn(args);
        let code = out.status.code().unwrap();
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (code, v)
    }

    fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.path("home")).unwrap()
    }

    /// A zip built by Python's zipfile from `(name, source)` pairs: `source` is a
    /// Python expression for the entry's bytes. `raw` entries are written with the
    /// name as given (zipfile itself would keep `../` and `/` as they are).
    fn zip(&self, rel: &str, entries: &[(&str, &str)]) -> PathBuf {
        let out = self.path(rel);
        let mut script = format!(
            "import zipfile\nz = zipfile.ZipFile({:?}, 'w', zipfile.ZIP_DEFLATED)\n",
            out.to_str().unwrap()
        );
        for (name, source) in entries {
            script.push_str(&format!(
                "zi = zipfile.ZipInfo({name:?})\nzi.compress_type = zipfile.ZIP_DEFLATED\n\
                 z.writestr(zi, {source})\n"
            ));
        }
        script.push_str("z.close()\n");
        let mut child = Command::new("python3")
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), script.as_bytes()).unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "python3 zipfile failed:\n{script}");
        out
    }
}

/// A Python expression for a file's bytes.
fn bytes_of(path: &Path) -> String {
    format!("open({:?}, 'rb').read()", path.to_str().unwrap())
}

fn errors(v: &Value) -> Vec<(String, String)> {
    v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_owned(),
                e["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A zip as osv.dev publishes it imports like the directory it came from, and a
/// second import of it changes nothing.
#[test]
fn a_zip_of_osv_records_imports_like_the_directory() {
    let f = Fixture::new();
    let mut entries = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(rustsec_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    let sources: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.clone(), bytes_of(&rustsec_dir().join(n))))
        .collect();
    for (n, s) in &sources {
        entries.push((n.as_str(), s.as_str()));
    }
    let zip = f.zip("crates.io-all.zip", &entries);
    let (code, v) = f.json(&["--json", "vulns", "import", zip.to_str().unwrap()]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["files"], names.len());
    assert_eq!(v["new"], names.len());
    assert_eq!(v["stored"], names.len());
    assert!(errors(&v).is_empty(), "{v}");
    let (code, again) = f.json(&["--json", "vulns", "import", zip.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(
        (&again["new"], &again["unchanged"]),
        (&Value::from(0), &Value::from(names.len()))
    );
}

/// Hostile entries are refused one by one, each named with its reason, and the
/// good records around them are imported; nothing is written outside the store.
#[test]
fn hostile_zip_entries_are_refused_and_the_rest_imported() {
    let f = Fixture::new();
    let good_a = bytes_of(&rustsec_dir().join("RUSTSEC-2019-0009.json"));
    let good_b = bytes_of(&rustsec_dir().join("RUSTSEC-2021-0003.json"));
    let zip = f.zip(
        "hostile.zip",
        &[
            ("osv/RUSTSEC-2019-0009.json", &good_a),
            ("../../escape.json", "b'{}'"),
            ("/etc/absolute.json", "b'{}'"),
            ("dir/../../up.json", "b'{}'"),
            // 6 MiB of spaces (under the record limit): deflates ~1000:1, a bomb.
            ("bomb.json", "b' ' * (6 << 20)"),
            // Over the record limit even at an honest ratio (random bytes).
            ("huge.json", "__import__('os').urandom(9 << 20)"),
            ("broken.json", "b'{\"id\": '"),
            ("README.md", "b'not a record'"),
            ("osv/RUSTSEC-2021-0003.json", &good_b),
        ],
    );
    let (code, v) = f.json(&["--json", "vulns", "import", zip.to_str().unwrap()]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["new"], 2, "{v}");
    assert_eq!(v["ignored"], 1, "{v}");
    let errs = errors(&v);
    let reason = |suffix: &str| {
        errs.iter()
            .find(|(p, _)| p.ends_with(suffix))
            .unwrap_or_else(|| panic!("no error for {suffix}: {errs:?}"))
            .1
            .clone()
    };
    assert!(reason("!../../escape.json").contains("unsafe entry name"));
    assert!(reason("!/etc/absolute.json").contains("unsafe entry name"));
    assert!(reason("!dir/../../up.json").contains("unsafe entry name"));
    assert!(reason("!bomb.json").contains("compression ratio"));
    assert!(reason("!huge.json").contains("over the limit"));
    assert!(reason("!broken.json").contains("JSON"));
    assert_eq!(errs.len(), 6, "{errs:?}");
    assert!(!f.path("escape.json").exists() && !Path::new("/etc/absolute.json").exists());

    // The same as text: each refusal on stderr, the summary counts them.
    let out = f.cairn(&["vulns", "import", zip.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("skipped ") && stderr.contains("bomb.json"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("6 errors"));
}

/// Not a zip, or a zip with nothing importable: exit 1 with a clear message.
#[test]
fn an_unreadable_zip_fails_whole() {
    let f = Fixture::new();
    let fake = f.file("osv.zip", b"PK\x03\x04 this is no archive");
    let out = f.cairn(&["vulns", "import", fake.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a readable zip archive"), "{stderr}");
    let only_bad = f.zip("bad.zip", &[("../x.json", "b'{}'")]);
    let out = f.cairn(&["vulns", "import", only_bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
}

const LOCK_HEAD: &str = "version = 3\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n";

fn cargo_lock(crates: &[(&str, &str)]) -> String {
    let mut text = LOCK_HEAD.to_owned();
    for (name, version) in crates {
        text.push_str(&format!(
            "\n[[package]]\nname = \"{name}\"\nversion = \"{version}\"\n\
             source = \"registry+https://github.com/rust-lang/crates.io-index\"\n"
        ));
    }
    text
}

/// An import re-matches only the stored components of the packages its new or
/// changed records name, finds the right artifacts, and a second identical import
/// finds nothing new. A record that stops matching fixes its findings.
#[test]
fn an_import_rematches_only_the_packages_it_touches() {
    let f = Fixture::new();
    // Two stored SBOMs: app-a has the vulnerable smallvec, app-b a fixed one; both
    // have libc and serde.
    f.file(
        "a/Cargo.lock",
        cargo_lock(&[
            ("smallvec", "0.6.9"),
            ("libc", "0.2.150"),
            ("serde", "1.0.0"),
        ])
        .as_bytes(),
    );
    f.file(
        "b/Cargo.lock",
        cargo_lock(&[
            ("smallvec", "1.13.2"),
            ("libc", "0.2.150"),
            ("time", "0.1.45"),
        ])
        .as_bytes(),
    );
    for (dir, name) in [("a", "app-a"), ("b", "app-b")] {
        let out = f.cairn(&[
            "sbom",
            "--record",
            "--subject",
            name,
            "--output",
            f.path(&format!("{dir}.cdx.json")).to_str().unwrap(),
            f.path(dir).to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
    let store = f.store();
    let sbom_of = |name: &str| {
        store
            .where_package(Some("crates.io"), "libc")
            .unwrap()
            .into_iter()
            .find(|h| h.subject_name == name)
            .unwrap()
            .sbom_id
    };
    let (a, b) = (sbom_of("app-a"), sbom_of("app-b"));

    // One record, about smallvec: only the two smallvec components are re-matched.
    f.file(
        "osv1/RUSTSEC-2019-0009.json",
        &std::fs::read(rustsec_dir().join("RUSTSEC-2019-0009.json")).unwrap(),
    );
    let (code, v) = f.json(&[
        "--json",
        "vulns",
        "import",
        f.path("osv1").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{v}");
    let rematch = &v["rematch"];
    assert_eq!(rematch["packages"], 1, "{v}");
    assert_eq!(rematch["components"], 2, "{v}");
    assert_eq!(rematch["artifacts"], 1, "{v}");
    let new: Vec<(String, i64, String)> = rematch["new_findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["advisory"].as_str().unwrap().to_owned(),
                n["sbom_id"].as_i64().unwrap(),
                format!(
                    "{}@{}",
                    n["package"].as_str().unwrap(),
                    n["version"].as_str().unwrap()
                ),
            )
        })
        .collect();
    assert_eq!(
        new,
        vec![(
            "RUSTSEC-2019-0009".to_owned(),
            a,
            "smallvec@0.6.9".to_owned()
        )]
    );
    assert_eq!(rematch["new_findings"][0]["subject"]["name"], "app-a");
    assert_eq!(rematch["new_findings"][0]["severity"], "critical");
    // Through the store: the logged re-match covered exactly those 2 components.
    let last = &store.rematches(1).unwrap()[0];
    assert_eq!((last.packages, last.components, last.opened), (1, 2, 1));
    let open = store
        .findings(&FindingFilter {
            state: Some(FindingState::Open),
            ..FindingFilter::default()
        })
        .unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].key.sbom_id, open[0].subject_name.as_str()),
        (a, "app-a")
    );

    // The same import again: nothing new, nothing re-matched.
    let (code, v) = f.json(&[
        "--json",
        "vulns",
        "import",
        f.path("osv1").to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert_eq!(v["unchanged"], 1);
    assert_eq!(v["rematch"]["components"], 0, "{v}");
    assert_eq!(v["rematch"]["new_findings"], Value::Array(vec![]));
    let text = f.cairn(&["vulns", "import", f.path("osv1").to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("0 new findings in 0 artifacts"), "{stdout}");

    // A record about time touches app-b alone (1 component).
    f.file(
        "osv2/RUSTSEC-2020-0071.json",
        &std::fs::read(rustsec_dir().join("RUSTSEC-2020-0071.json")).unwrap(),
    );
    let out = f.cairn(&["vulns", "import", f.path("osv2").to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "re-matched 1 stored components of 1 packages: 1 new findings in 1 artifacts"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("new in app-b")
            && stdout.contains("RUSTSEC-2020-0071 crates.io time 0.1.45"),
        "{stdout}"
    );
    assert_eq!(store.rematches(1).unwrap()[0].components, 1);
    assert_eq!(
        store
            .findings(&FindingFilter {
                sbom: Some(b),
                ..FindingFilter::default()
            })
            .unwrap()
            .len(),
        1
    );

    // A newer copy of the smallvec record that is withdrawn: the finding is fixed.
    let mut withdrawn: Value = serde_json::from_slice(
        &std::fs::read(rustsec_dir().join("RUSTSEC-2019-0009.json")).unwrap(),
    )
    .unwrap();
    withdrawn["modified"] = Value::from("2999-01-01T00:00:00Z");
    withdrawn["withdrawn"] = Value::from("2999-01-01T00:00:00Z");
    f.file("osv3/r.json", withdrawn.to_string().as_bytes());
    let (code, v) = f.json(&[
        "--json",
        "vulns",
        "import",
        f.path("osv3").to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        v["rematch"]["fixed"][0]["advisory"], "RUSTSEC-2019-0009",
        "{v}"
    );
    assert_eq!(v["rematch"]["fixed"][0]["state"], "fixed");
}

/// A newly recorded SBOM is matched against the stored advisories at once.
#[test]
fn a_recorded_sbom_is_matched_when_it_is_stored() {
    let f = Fixture::new();
    f.file(
        "osv/RUSTSEC-2019-0009.json",
        &std::fs::read(rustsec_dir().join("RUSTSEC-2019-0009.json")).unwrap(),
    );
    let out = f.cairn(&["vulns", "import", f.path("osv").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    f.file(
        "a/Cargo.lock",
        cargo_lock(&[("smallvec", "0.6.9")]).as_bytes(),
    );
    let out = f.cairn(&[
        "sbom",
        "--record",
        "--output",
        f.path("a.cdx.json").to_str().unwrap(),
        f.path("a").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 new findings"), "{stderr}");
    let open = f.store().findings(&FindingFilter::default()).unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].key.advisory_id, "RUSTSEC-2019-0009");
}
