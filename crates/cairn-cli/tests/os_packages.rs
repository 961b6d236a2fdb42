//! OS packages (dpkg, apk) matched against their distribution's OSV records
//! through `cairn vulns import` and `cairn scan`: by *source* package, in the
//! release's ecosystem (`Debian:12`, `Alpine:v3.20`), under the distribution's
//! own version ordering. A real Debian 12 minbase rootfs and OSV.dev's Debian
//! records are compared with an independent matcher using libapt's
//! `apt_pkg.version_compare` (tests/os_reference_matcher.py, Debian python3-apt);
//! small hand-made root filesystems show each bad input refused with its reason.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::Fixture;
use serde_json::{Value, json};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// (advisory, package) of every `vulnerabilities[]` entry.
fn findings(scan: &Value) -> BTreeSet<(String, String)> {
    scan["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["advisory"].as_str().unwrap().to_owned(),
                v["package"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_debian_rootfs_matches_its_source_packages_as_libapt_orders_them() {
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    common::debian_minbase(&rootfs);
    // An up-to-date bookworm has only unfixed findings; taking the stable
    // updates' `+deb12uN` off every version makes it older, so fixed records
    // (DSAs, CVEs with a fixed version) match too. Both matchers read this file.
    let status = rootfs.join("var/lib/dpkg/status");
    let text = std::fs::read_to_string(&status).unwrap();
    let mut older = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("+deb12u") {
        older.push_str(&rest[..at]);
        rest = rest[at + "+deb12u".len()..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    older.push_str(rest);
    std::fs::write(&status, older).unwrap();

    let zip = cairn_testkit::conformance("osv/debian-12.zip");
    let f = Fixture::new();
    let imported = f.json(&["vulns", "import", zip.to_str().unwrap()]);
    assert!(imported["new"].as_u64().unwrap() > 30_000, "{imported}");
    let r = f.run(&["--json", "scan", rootfs.to_str().unwrap()]);
    assert_eq!(r.code, 1, "findings fail the scan: {r:?}");
    let scan: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(scan["issues"], json!([]), "every package was evaluated");
    let ours = findings(&scan);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/os_reference_matcher.py");
    let out = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(&zip)
        .arg(&rootfs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the reference matcher (needs Debian's python3-apt: scripts/install-deps): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: BTreeSet<(String, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (a, p) = l.split_once(' ').unwrap();
            (a.to_owned(), p.to_owned())
        })
        .collect();
    let vulns = scan["vulnerabilities"].as_array().unwrap();
    let fixed = vulns.iter().filter(|v| v["fix"] == "fixed").count();
    println!(
        "cairn {} findings ({fixed} fixed, {} no fix yet), libapt reference {}; only cairn {:?}, only reference {:?}",
        ours.len(),
        vulns.len() - fixed,
        theirs.len(),
        ours.difference(&theirs).collect::<Vec<_>>(),
        theirs.difference(&ours).collect::<Vec<_>>(),
    );
    assert_eq!(ours, theirs, "identical advisories per source package");

    // Both kinds, both id forms, source packages, the release's ecosystem.
    assert!(
        fixed > 0 && fixed < vulns.len(),
        "{fixed} of {}",
        vulns.len()
    );
    assert!(ours.iter().any(|(a, _)| a.starts_with("DSA-")), "{ours:?}");
    assert!(ours.iter().any(|(a, _)| a.starts_with("CVE-")), "{ours:?}");
    assert!(ours.iter().any(|(_, p)| p == "glibc"), "{ours:?}");
    assert!(
        !ours.iter().any(|(_, p)| p == "libc6"),
        "binary names are not matched"
    );
    for v in vulns {
        assert_eq!(v["ecosystem"], "Debian:12", "{v}");
        let fixes = v["fixed_versions"].as_array().unwrap();
        assert_eq!(v["fix"] == "fixed", !fixes.is_empty(), "{v}");
        assert!(v["installed_version"].is_string(), "{v}");
    }
    let glibc = vulns
        .iter()
        .find(|v| v["package"] == "glibc" && v["fix"] == "fixed")
        .unwrap();
    let purl = glibc["purl"].as_str().unwrap();
    assert!(
        purl.contains("distro=debian-12") && purl.contains("upstream=glibc"),
        "{glibc}"
    );
    assert!(
        vulns.iter().any(|v| v["urgency"] == "unimportant"),
        "Debian's urgency is kept as data"
    );

    // Licences from the packages' DEP-5 copyright files.
    let r = f.ok(&["sbom", rootfs.to_str().unwrap()]);
    let bom: Value = serde_json::from_str(&r.stdout).unwrap();
    let debs: Vec<&Value> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["purl"].as_str().unwrap().starts_with("pkg:deb/"))
        .collect();
    let spdx = debs
        .iter()
        .filter(|c| {
            c["licenses"][0]["expression"].is_string()
                || c["licenses"][0]["license"]["id"].is_string()
        })
        .count();
    println!(
        "{spdx} of {} Debian packages have an SPDX licence from DEP-5",
        debs.len()
    );
    assert_eq!(cdx_licence(&bom, "zlib1g").as_deref(), Some("Zlib"));
    assert!(spdx >= 20, "{spdx}");
}

/// A record for `ecosystem`/`name` with `ranges`, `versions` and an urgency.
fn record(id: &str, ecosystem: &str, name: &str, ranges: Value, versions: Value) -> Value {
    json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": "2026-01-01T00:00:00Z",
        "summary": format!("{name} test advisory"),
        "affected": [{
            "package": { "ecosystem": ecosystem, "name": name },
            "ranges": ranges,
            "versions": versions,
            "ecosystem_specific": { "urgency": "unimportant" },
        }],
    })
}

fn ecosystem_range(events: Value) -> Value {
    json!([{ "type": "ECOSYSTEM", "events": events }])
}

const STATUS: &str = "\
Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc (2.36-9)
Version: 2.36-9+b1

Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib
Version: 1:1.2.13.dfsg-1

Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b7

Package: badbin
Status: install ok installed
Architecture: amd64
Source: badsrc (1.0-1 junk)
Version: 1.0-1
";

#[test]
fn os_packages_match_by_source_and_release_and_bad_input_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let advisories = tmp.path().join("advisories");
    let records = [
        record(
            "DSA-9000-1",
            "Debian:12",
            "glibc",
            ecosystem_range(json!([{ "introduced": "0" }, { "fixed": "2.36-9+deb12u4" }])),
            json!([]),
        ),
        record(
            "DEBIAN-CVE-2099-0001",
            "Debian:12",
            "glibc",
            ecosystem_range(json!([{ "introduced": "0" }])),
            json!([]),
        ),
        // Matched by its `versions` list alone (epoch included).
        record(
            "DLA-9001-1",
            "Debian:12",
            "zlib",
            json!([]),
            json!(["1:1.2.13.dfsg-1"]),
        ),
        // Another release's record never applies.
        record(
            "CVE-2099-0005",
            "Debian:11",
            "glibc",
            ecosystem_range(json!([{ "introduced": "0" }])),
            json!([]),
        ),
        // A release cairn does not know: stored, named at import, never matched.
        record(
            "CVE-2099-0002",
            "Debian:bookworm",
            "glibc",
            ecosystem_range(json!([{ "introduced": "0" }])),
            json!([]),
        ),
        // A range type cairn cannot evaluate: named at import and at the scan.
        record(
            "CVE-2099-0003",
            "Debian:12",
            "bash",
            json!([{ "type": "WEIRD", "events": [{ "introduced": "0" }] }]),
            json!([]),
        ),
        // A malformed version in a record: named, not passed.
        record(
            "CVE-2099-0006",
            "Debian:12",
            "bash",
            ecosystem_range(json!([{ "introduced": "0" }, { "fixed": "5.2 junk" }])),
            json!([]),
        ),
        record(
            "ALPINE-CVE-2099-0004",
            "Alpine:v3.20",
            "openssl",
            ecosystem_range(json!([{ "introduced": "0" }, { "fixed": "3.3.2-r1" }])),
            json!([]),
        ),
    ];
    for r in &records {
        write(
            &advisories,
            &format!("{}.json", r["id"].as_str().unwrap()),
            &r.to_string(),
        );
    }
    let f = Fixture::new();
    let r = f.run(&["--json", "vulns", "import", advisories.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    let imported: Value = serde_json::from_str(&r.stdout).unwrap();
    println!("import problems: {}", imported["problems"]);
    assert_eq!(imported["new"], 8, "{imported}");
    assert_eq!(imported["problem_count"], 3, "{imported}");
    let problems = imported["problems"].to_string();
    assert!(
        problems.contains("unknown Debian release in ecosystem \\\"Debian:bookworm\\\""),
        "{problems}"
    );
    assert!(
        problems.contains("unknown range type \\\"WEIRD\\\""),
        "{problems}"
    );
    assert!(
        problems.contains("\\\"5.2 junk\\\" does not parse"),
        "{problems}"
    );

    // Debian 12: matched by source package and source version.
    let debian = tmp.path().join("debian");
    write(
        &debian,
        "etc/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
    );
    write(&debian, "var/lib/dpkg/status", STATUS);
    let r = f.run(&["--json", "scan", debian.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    let scan: Value = serde_json::from_str(&r.stdout).unwrap();
    println!("debian 12: {}", scan["vulnerabilities"]);
    println!("debian 12 issues: {}", scan["issues"]);
    let got: Vec<(String, String)> = findings(&scan).into_iter().collect();
    let want: Vec<(String, String)> = [
        ("DEBIAN-CVE-2099-0001", "glibc"),
        ("DLA-9001-1", "zlib"),
        ("DSA-9000-1", "glibc"),
    ]
    .iter()
    .map(|(a, p)| ((*a).to_owned(), (*p).to_owned()))
    .collect();
    assert_eq!(got, want);
    let by_id = |id: &str| {
        scan["vulnerabilities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["advisory"] == id)
            .unwrap()
            .clone()
    };
    let dsa = by_id("DSA-9000-1");
    assert_eq!(
        dsa["installed_version"], "2.36-9",
        "the source version, not the binNMU's"
    );
    assert_eq!(dsa["fixed_versions"], json!(["2.36-9+deb12u4"]));
    assert_eq!(dsa["fix"], "fixed");
    assert_eq!(dsa["ecosystem"], "Debian:12");
    assert_eq!(
        dsa["purl"],
        "pkg:deb/debian/libc6@2.36-9%2Bb1?arch=amd64&distro=debian-12&upstream=glibc"
    );
    let unfixed = by_id("DEBIAN-CVE-2099-0001");
    assert_eq!(unfixed["fix"], "no fix yet");
    assert_eq!(unfixed["fixed_versions"], json!([]));
    assert_eq!(unfixed["urgency"], "unimportant");
    let issues = scan["issues"].to_string();
    assert!(
        issues.contains("OS package not matched: source package badsrc version \\\"1.0-1 junk\\\" is not a valid debian version"),
        "{issues}"
    );
    assert!(
        issues.contains("CVE-2099-0003") && issues.contains("WEIRD"),
        "{issues}"
    );
    assert!(
        issues.contains("CVE-2099-0006") && issues.contains("5.2 junk"),
        "{issues}"
    );
    assert_eq!(scan["issues"].as_array().unwrap().len(), 3, "{issues}");
    // The text output says it too.
    let text = f.run(&["scan", debian.to_str().unwrap()]);
    assert!(
        text.stdout.contains("fixed: no fix yet") && text.stdout.contains("urgency: unimportant"),
        "{text:?}"
    );

    // A recorded SBOM is indexed as it is matched: an advisory imported later
    // opens a finding on it by source package.
    f.ok(&[
        "sbom",
        debian.to_str().unwrap(),
        "--record",
        "--subject",
        "base",
    ]);
    let later = tmp.path().join("later");
    write(
        &later,
        "DSA-9002-1.json",
        &record(
            "DSA-9002-1",
            "Debian:12",
            "zlib",
            ecosystem_range(json!([{ "introduced": "0" }, { "fixed": "1:1.2.13.dfsg-1+deb12u1" }])),
            json!([]),
        )
        .to_string(),
    );
    let imported = f.json(&["vulns", "import", later.to_str().unwrap()]);
    let opened = &imported["rematch"]["new_findings"];
    println!("re-match after import: {opened}");
    assert_eq!(opened.as_array().unwrap().len(), 1, "{imported}");
    assert_eq!(opened[0]["advisory"], "DSA-9002-1");
    assert_eq!(opened[0]["package"], "zlib");
    assert_eq!(opened[0]["ecosystem"], "Debian:12");

    // Debian without a release (testing/unstable): every package is named
    // unevaluated, and a scan that evaluated nothing fails.
    let sid = tmp.path().join("sid");
    write(
        &sid,
        "etc/os-release",
        "ID=debian\nVERSION_CODENAME=trixie\n",
    );
    write(&sid, "var/lib/dpkg/status", STATUS);
    let r = f.run(&["--json", "scan", sid.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("none of the components"), "{r:?}");
    let scan: Value = serde_json::from_str(&r.stdout).unwrap();
    let issues = scan["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 4, "{issues:?}");
    assert!(
        issues.iter().all(|i| i["reason"]
            .as_str()
            .unwrap()
            .contains("the debian release is unknown")),
        "{issues:?}"
    );

    // Debian 13 against Debian 12 records only: nothing names its packages, which
    // is said rather than passed as "no findings".
    let trixie = tmp.path().join("trixie");
    write(&trixie, "etc/os-release", "ID=debian\nVERSION_ID=\"13\"\n");
    write(&trixie, "var/lib/dpkg/status", STATUS);
    let r = f.run(&["--json", "scan", trixie.to_str().unwrap()]);
    let scan: Value = serde_json::from_str(&r.stdout).unwrap();
    println!("debian 13 issues: {}", scan["issues"]);
    assert_eq!(scan["vulnerabilities"], json!([]));
    assert!(
        scan["issues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["subject"] == "OS packages of Debian:13"
                && i["reason"]
                    .as_str()
                    .unwrap()
                    .contains("no stored advisory names any of its 3 source packages")),
        "{scan}"
    );

    // Alpine 3.20: the origin package, apk ordering, `Alpine:v3.20`.
    let alpine = tmp.path().join("alpine");
    write(
        &alpine,
        "etc/os-release",
        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\n",
    );
    write(
        &alpine,
        "lib/apk/db/installed",
        "P:libcrypto3\nV:3.3.2-r0\nA:x86_64\nL:Apache-2.0\no:openssl\n\nP:musl\nV:1.2.5-r0\nA:x86_64\nL:MIT\no:musl\n",
    );
    let r = f.run(&["--json", "scan", alpine.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    let scan: Value = serde_json::from_str(&r.stdout).unwrap();
    println!("alpine 3.20: {}", scan["vulnerabilities"]);
    let v = &scan["vulnerabilities"][0];
    assert_eq!(
        scan["vulnerabilities"].as_array().unwrap().len(),
        1,
        "{scan}"
    );
    assert_eq!(v["advisory"], "ALPINE-CVE-2099-0004");
    assert_eq!(v["package"], "openssl");
    assert_eq!(v["ecosystem"], "Alpine:v3.20");
    assert_eq!(v["installed_version"], "3.3.2-r0");
    assert_eq!(v["fixed_versions"], json!(["3.3.2-r1"]));
    assert_eq!(
        v["purl"],
        "pkg:apk/alpine/libcrypto3@3.3.2-r0?arch=x86_64&distro=alpine-3.20.3&upstream=openssl"
    );
    assert_eq!(scan["issues"], json!([]));
}

/// A component's licence in a CycloneDX document: its expression, its named
/// (unknown) licence, or `None`.
/// `sqlite3 DB SQL` on the store a fixture's cairn keeps (no cairn running).
fn sql(f: &Fixture, statement: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(f.data.join("cairn.db"))
        .arg(statement)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A scan decides each (advisory, package) pair by its compiled match form
/// and reads the record only where it may match: the findings are the same as
/// from the records alone (every compiled form dropped, as for rows kept before
/// schema v17), and importing the same records again fills the forms back in.
/// A compiled form that is truncated, has another version byte or a count past
/// its end leaves that pair "not evaluated" with the reason: never a panic,
/// never a silent "not affected".
#[test]
fn a_corrupt_compiled_form_leaves_its_pair_not_evaluated_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let advisories = tmp.path().join("advisories");
    for r in [
        record(
            "DSA-9000-1",
            "Debian:12",
            "glibc",
            ecosystem_range(json!([{ "introduced": "0" }, { "fixed": "2.36-9+deb12u4" }])),
            json!([]),
        ),
        // Fixed long before the installed version: the compiled form says no.
        record(
            "DSA-8000-1",
            "Debian:12",
            "glibc",
            ecosystem_range(json!([{ "introduced": "0" }, { "fixed": "2.30-1" }])),
            json!([]),
        ),
        record(
            "DLA-9001-1",
            "Debian:12",
            "zlib",
            json!([]),
            json!(["1:1.2.13.dfsg-1"]),
        ),
    ] {
        write(
            &advisories,
            &format!("{}.json", r["id"].as_str().unwrap()),
            &r.to_string(),
        );
    }
    let f = Fixture::new();
    f.ok(&["vulns", "import", advisories.to_str().unwrap()]);
    assert_eq!(
        sql(
            &f,
            "SELECT count(*) FROM advisory_packages WHERE compiled IS NOT NULL"
        ),
        "3"
    );
    let debian = tmp.path().join("debian");
    write(
        &debian,
        "etc/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
    );
    write(&debian, "var/lib/dpkg/status", STATUS);
    let scan = |f: &Fixture| -> Value {
        let r = f.run(&["--json", "scan", debian.to_str().unwrap()]);
        assert_eq!(r.code, 1, "{r:?}");
        serde_json::from_str(&r.stdout).unwrap()
    };
    let compiled = scan(&f);
    let want: BTreeSet<(String, String)> = [("DLA-9001-1", "zlib"), ("DSA-9000-1", "glibc")]
        .iter()
        .map(|(a, p)| ((*a).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(findings(&compiled), want);

    // Without compiled forms (rows kept before v17): the records answer, the same.
    sql(&f, "UPDATE advisory_packages SET compiled = NULL");
    let records = scan(&f);
    assert_eq!(records["vulnerabilities"], compiled["vulnerabilities"]);
    assert_eq!(records["issues"], compiled["issues"]);
    // The same records imported again fill the forms back in.
    f.ok(&["vulns", "import", advisories.to_str().unwrap()]);
    assert_eq!(
        sql(
            &f,
            "SELECT count(*) FROM advisory_packages WHERE compiled IS NOT NULL"
        ),
        "3"
    );

    // Where DSA-9000-1's head starts in its form: its id's length, before the id.
    let head_at = sql(
        &f,
        "SELECT instr(compiled, CAST('DSA-9000-1' AS BLOB)) - 3 FROM advisory_packages \
         WHERE id = 'DSA-9000-1'",
    );
    for (corruption, reason) in [
        // Cut to 9 bytes: the entry count promises more than is left.
        (
            "substr(compiled, 1, 9)",
            "compiled match form is corrupt at byte 4: a count past its bound or the end",
        ),
        (
            "X'09' || substr(compiled, 2)",
            "compiled match form is corrupt at byte 0: unknown form version",
        ),
        (
            "X'0200FFFF'",
            "compiled match form is corrupt at byte 4: a count past its bound or the end",
        ),
        // One entry (dpkg ordering, no flags, no range) listing one version
        // whose length (255) runs past the end.
        (
            "X'020001000600000001000000FF00'",
            "compiled match form is corrupt at byte 14: truncated: a field runs past the end",
        ),
        // A form of the former version (1: no finding data) is not read.
        (
            "X'01' || substr(compiled, 2)",
            "compiled match form is corrupt at byte 0: unknown form version",
        ),
        // The head of another advisory (DSA-9000-1's form under this row):
        // its finding is never given for this advisory.
        (
            "(SELECT compiled FROM advisory_packages WHERE id = 'DSA-9000-1')",
            "compiled match form is corrupt at byte HEAD: the head names another advisory than its row",
        ),
    ] {
        f.ok(&["vulns", "import", advisories.to_str().unwrap()]);
        sql(
            &f,
            &format!(
                "UPDATE advisory_packages SET compiled = CAST({corruption} AS BLOB) WHERE id = 'DSA-8000-1'"
            ),
        );
        let scan = scan(&f);
        println!("{corruption}: {}", scan["issues"]);
        assert_eq!(findings(&scan), want, "{corruption}");
        let issues = scan["issues"].as_array().unwrap();
        let hit: Vec<&Value> = issues
            .iter()
            .filter(|i| i["reason"].as_str().unwrap().contains("DSA-8000-1"))
            .collect();
        assert_eq!(hit.len(), 1, "{corruption}: {issues:?}");
        assert_eq!(
            hit[0]["reason"],
            format!("advisory DSA-8000-1: {}", reason.replace("HEAD", &head_at)),
            "{corruption}"
        );
        assert!(
            hit[0]["subject"].as_str().unwrap().contains("glibc 2.36-9"),
            "{hit:?}"
        );
    }
}

fn cdx_licence(bom: &Value, name: &str) -> Option<String> {
    let c = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in {bom}"));
    let l = c["licenses"].get(0)?;
    l["expression"]
        .as_str()
        .or_else(|| l["license"]["id"].as_str())
        .or_else(|| l["license"]["name"].as_str())
        .map(str::to_owned)
}

#[test]
fn debian_packages_take_their_licence_from_dep5_copyright_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("rootfs");
    write(&root, "etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n");
    write(&root, "var/lib/dpkg/status", STATUS);
    let dep5 = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n";
    write(
        &root,
        "usr/share/doc/zlib1g/copyright",
        &format!(
            "{dep5}Files: *\nCopyright: 1995-2013 Jean-loup Gailly and Mark Adler\nLicense: Zlib\n\nLicense: Zlib\n The text.\n"
        ),
    );
    write(
        &root,
        "usr/share/doc/bash/copyright",
        &format!(
            "{dep5}Files: *\nCopyright: FSF\nLicense: GPL-3+\n\nFiles: lib/x/*\nCopyright: someone\nLicense: BSLA\n"
        ),
    );
    // A copyright file that is a symlink out of the tree is not followed.
    std::fs::create_dir_all(root.join("usr/share/doc/libc6")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("usr/share/doc/libc6/copyright")).unwrap();
    let f = Fixture::new();
    let r = f.ok(&["sbom", root.to_str().unwrap()]);
    let bom: Value = serde_json::from_str(&r.stdout).unwrap();
    let got: Vec<(&str, Option<String>)> = ["zlib1g", "bash", "libc6", "badbin"]
        .iter()
        .map(|n| (*n, cdx_licence(&bom, n)))
        .collect();
    println!("{got:?}");
    assert_eq!(got[0].1.as_deref(), Some("Zlib"));
    assert_eq!(
        got[1].1.as_deref(),
        Some("DEP-5 names licences without a known SPDX id: BSLA"),
        "a name without an SPDX id is said, not guessed"
    );
    assert_eq!(got[2].1, None, "the symlinked copyright file was not read");
    assert_eq!(got[3].1, None, "no copyright file: no licence");
}

/// `cairn bench os-match` on this host's own packages (a Debian 12 host) and
/// OSV.dev's Debian records: cairn and the libapt reference agree.
#[test]
fn the_os_match_bench_agrees_with_the_reference_matcher() {
    let f = Fixture::new();
    let zip = cairn_testkit::conformance("osv/debian-12.zip");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/os_reference_matcher.py");
    let v = f.json(&[
        "bench",
        "os-match",
        "--repeat",
        "1",
        "--osv",
        zip.to_str().unwrap(),
        "--reference",
        script.to_str().unwrap(),
    ]);
    println!("{v:#}");
    assert_eq!(v["identical"], true, "{v}");
    assert_eq!(v["stored_identical"], true, "{v}");
    assert!(v["packages"].as_u64().unwrap() > 100, "{v}");
}

/// A store kept before schema v17 has index rows without compiled forms; a
/// scan (read-only) leaves them so, and the next import of anything — here
/// one unrelated record — fills in every one from the stored records, with the
/// scan's findings unchanged.
#[test]
fn an_import_fills_in_the_compiled_forms_a_store_kept_before_v17_lacks() {
    let tmp = tempfile::tempdir().unwrap();
    let advisories = tmp.path().join("advisories");
    for r in [
        record(
            "DSA-9000-1",
            "Debian:12",
            "glibc",
            ecosystem_range(json!([{ "introduced": "0" }, { "fixed": "2.36-9+deb12u4" }])),
            json!([]),
        ),
        record(
            "DSA-8000-1",
            "Debian:12",
            "glibc",
            ecosystem_range(json!([{ "introduced": "0" }, { "fixed": "2.30-1" }])),
            json!([]),
        ),
        record(
            "DLA-9001-1",
            "Debian:12",
            "zlib",
            json!([]),
            json!(["1:1.2.13.dfsg-1"]),
        ),
    ] {
        write(
            &advisories,
            &format!("{}.json", r["id"].as_str().unwrap()),
            &r.to_string(),
        );
    }
    let f = Fixture::new();
    f.ok(&["vulns", "import", advisories.to_str().unwrap()]);
    let forms = |f: &Fixture| {
        sql(
            f,
            "SELECT count(*) FROM advisory_packages WHERE compiled IS NOT NULL",
        )
    };
    assert_eq!(forms(&f), "3");
    let kept = sql(
        &f,
        "SELECT group_concat(hex(compiled), ',') FROM \
         (SELECT compiled FROM advisory_packages ORDER BY id)",
    );
    let debian = tmp.path().join("debian");
    write(
        &debian,
        "etc/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
    );
    write(&debian, "var/lib/dpkg/status", STATUS);
    let scan = |f: &Fixture| -> String {
        let r = f.run(&["--json", "scan", debian.to_str().unwrap()]);
        assert_eq!(r.code, 1, "{r:?}");
        r.stdout
    };
    let before = scan(&f);

    // The rows as a v16 store keeps them: no compiled form.
    sql(&f, "UPDATE advisory_packages SET compiled = NULL");
    assert_eq!(scan(&f), before, "matched through the records, the same");
    assert_eq!(forms(&f), "0", "a scan writes nothing");

    // Any import fills them in: one record of another package.
    let other = tmp.path().join("other");
    let r = record(
        "DSA-9100-1",
        "Debian:12",
        "openssl",
        ecosystem_range(json!([{ "introduced": "0" }, { "fixed": "3.0.1-1" }])),
        json!([]),
    );
    write(&other, "DSA-9100-1.json", &r.to_string());
    let out = f.ok(&["vulns", "import", other.to_str().unwrap()]);
    println!("{}", out.stdout);
    assert_eq!(forms(&f), "4");
    assert_eq!(
        sql(
            &f,
            "SELECT group_concat(hex(compiled), ',') FROM \
             (SELECT compiled FROM advisory_packages WHERE id <> 'DSA-9100-1' ORDER BY id)",
        ),
        kept,
        "the forms an import of the same records writes"
    );
    assert_eq!(scan(&f), before, "findings identical after the back-fill");
}
