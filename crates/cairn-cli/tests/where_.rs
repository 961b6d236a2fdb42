//! End-to-end tests of `cairn sbom --record` and `cairn where`: the real binary,
//! trees in a temporary repository, a temporary data directory (`CAIRN_HOME`).
#![allow(clippy::unwrap_used)]

use crate::common;

use common::Fixture;
use serde_json::Value;

fn cargo_lock(crates: &[(&str, &str)]) -> String {
    let mut text = "version = 3\n".to_owned();
    for (name, version) in crates {
        text.push_str(&format!(
            "\n[[package]]\nname = \"{name}\"\nversion = \"{version}\"\n\
             source = \"registry+https://github.com/rust-lang/crates.io-index\"\n"
        ));
    }
    text
}

fn sha256(bytes: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Two recorded SBOMs: `svc-a` (a directory: smallvec 0.6.10) and `svc-b/Cargo.lock`
/// (a file: smallvec 1.6.1). Returns the fixture, svc-a's printed document and
/// svc-b's lockfile text.
fn two_recorded() -> (Fixture, String, String) {
    let f = Fixture::new();
    f.write(
        "svc-a/Cargo.lock",
        &cargo_lock(&[("serde", "1.0.100"), ("smallvec", "0.6.10")]),
    );
    let lock_b = cargo_lock(&[("libc", "0.2.150"), ("smallvec", "1.6.1")]);
    f.write("svc-b/Cargo.lock", &lock_b);
    let a = f.ok(&["sbom", "svc-a", "--record", "--subject", "svc-a"]);
    assert!(a.stderr.contains("recorded SBOM"), "{a:?}");
    assert!(a.stderr.contains("the SBOM document"), "{a:?}");
    let b = f.ok(&["sbom", "svc-b/Cargo.lock", "--record"]);
    assert!(b.stderr.contains("the file svc-b/Cargo.lock"), "{b:?}");
    (f, a.stdout, lock_b)
}

fn matches(v: &Value) -> Vec<(String, String)> {
    v["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["subject"]["name"].as_str().unwrap().to_owned(),
                m["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn where_lists_every_recorded_artifact_and_filters_by_range() {
    let (f, doc_a, lock_b) = two_recorded();

    let all = f.json(&["where", "smallvec"]);
    assert_eq!(
        matches(&all),
        vec![
            ("svc-a".to_owned(), "0.6.10".to_owned()),
            ("Cargo.lock".to_owned(), "1.6.1".to_owned()),
        ]
    );
    let m = all["matches"].as_array().unwrap();
    // A directory's digest is the document's; a file's is the file's.
    assert_eq!(m[0]["subject"]["digest"], sha256(doc_a.as_bytes()).as_str());
    assert_eq!(
        m[1]["subject"]["digest"],
        sha256(lock_b.as_bytes()).as_str()
    );
    assert_eq!(m[0]["ecosystem"], "crates.io");
    assert_eq!(m[0]["purl"], "pkg:cargo/smallvec@0.6.10");
    assert!(m[0]["workload"].is_null() && m[0]["environment"].is_null());

    assert_eq!(
        matches(&f.json(&["where", "smallvec@<1.0"])),
        vec![("svc-a".to_owned(), "0.6.10".to_owned())]
    );
    assert_eq!(
        matches(&f.json(&["where", "smallvec@>=0.6,<1"])),
        vec![("svc-a".to_owned(), "0.6.10".to_owned())]
    );
    assert_eq!(
        matches(&f.json(&["where", "smallvec@>=1.6.1"])),
        vec![("Cargo.lock".to_owned(), "1.6.1".to_owned())]
    );
    assert_eq!(
        matches(&f.json(&["where", "pkg:cargo/smallvec@1.6.1"])),
        vec![("Cargo.lock".to_owned(), "1.6.1".to_owned())]
    );
    assert_eq!(matches(&f.json(&["where", "pkg:cargo/serde"])).len(), 1);

    let text = f.ok(&["where", "smallvec"]);
    assert!(
        text.stdout.starts_with("2 match(es) in 2 artifact(s)"),
        "{text:?}"
    );
    assert!(text.stdout.contains("svc-a"), "{text:?}");
    assert!(text.stdout.contains(&sha256(lock_b.as_bytes())), "{text:?}");
}

#[test]
fn nothing_found_exits_1() {
    let (f, _, _) = two_recorded();
    for query in [
        "not-a-package",
        "smallvec@<0.1",
        "pkg:npm/smallvec",
        "pkg:cargo/smallvec@0.6.11",
    ] {
        let r = f.run(&["where", query]);
        assert_eq!(r.code, 1, "{query}: {r:?}");
        assert!(r.stdout.is_empty(), "{query}: {r:?}");
        assert!(
            r.stderr.contains("no stored SBOM contains"),
            "{query}: {r:?}"
        );
    }
    let r = f.run(&["--json", "where", "nothing-here"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["matches"].as_array().unwrap().len(), 0);
}

#[test]
fn a_bad_range_exits_1_with_a_clear_error() {
    let (f, _, _) = two_recorded();
    let r = f.run(&["where", "smallvec@~1.0"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("`~1.0`"), "{r:?}");
    assert!(r.stderr.contains("not a comparison"), "{r:?}");
    let r = f.run(&["where", "smallvec@>=1,"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not a comparison"), "{r:?}");
    // Well formed, but not a version crates.io's ordering can read.
    let r = f.run(&["where", "smallvec@<one.two"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not a valid semver version"), "{r:?}");
    let r = f.run(&["where", "pkg:nosuchtype/smallvec"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("no purl type `nosuchtype`"), "{r:?}");
}

#[test]
fn subject_needs_record() {
    let f = Fixture::new();
    f.write("svc/Cargo.lock", &cargo_lock(&[("smallvec", "1.0.0")]));
    let r = f.run(&["sbom", "svc", "--subject", "x"]);
    assert_ne!(r.code, 0, "{r:?}");
    // Without --record nothing is stored.
    f.ok(&["sbom", "svc"]);
    assert_eq!(f.run(&["where", "smallvec"]).code, 1);
}
