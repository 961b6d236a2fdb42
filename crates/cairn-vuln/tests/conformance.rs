//! Conformance: the shared version-ordering vectors (google/osv-scalibr) and the
//! RustSec OSV export. Reads `CAIRN_CONFORMANCE_DIR` (fails loudly when it is set
//! but a file is missing; a relative path is tried from the working directory,
//! then from the workspace root); when unset, `../../../shared/conformance`
//! relative to this crate.

use cairn_vuln::{Advisory, AdvisoryIndex, Package, Scheme, Version};
use std::cmp::Ordering;
use std::path::PathBuf;

fn conformance_dir() -> PathBuf {
    cairn_testkit::conformance_dir()
}

/// Each vector file and the scheme that must pass it.
const FILES: [(&str, Option<Scheme>); 12] = [
    ("semver-versions.txt", Some(Scheme::Semver)),
    ("pypi-versions.txt", Some(Scheme::Pypi)),
    ("maven-versions.txt", Some(Scheme::Maven)),
    ("rubygems-versions.txt", Some(Scheme::RubyGems)),
    ("packagist-versions.txt", Some(Scheme::Packagist)),
    ("nuget-versions.txt", Some(Scheme::NuGet)),
    ("debian-versions.txt", Some(Scheme::Debian)),
    ("alpine-versions.txt", Some(Scheme::Alpine)),
    ("redhat-versions.txt", Some(Scheme::Rpm)),
    ("cran-versions.txt", Some(Scheme::Cran)),
    ("hackage-versions.txt", Some(Scheme::Hackage)),
    ("pub-versions.txt", Some(Scheme::Pub)),
];

#[test]
fn version_ordering_vectors_hold() {
    let dir = conformance_dir().join("version-ordering");
    let mut failures = Vec::new();
    let mut unsupported = Vec::new();
    for (file, scheme) in FILES {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} cannot be read: {e}", path.display()));
        let Some(scheme) = scheme else {
            unsupported.push(file);
            continue;
        };
        let mut checked = 0;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("//") {
                continue;
            }
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts.len(), 3, "{file}:{}: malformed line {line:?}", n + 1);
            let want = match parts[1] {
                "<" => Ordering::Less,
                "=" => Ordering::Equal,
                ">" => Ordering::Greater,
                op => panic!("{file}:{}: unknown operator {op:?}", n + 1),
            };
            checked += 1;
            let got = Version::parse(scheme, parts[0])
                .and_then(|a| Version::parse(scheme, parts[2]).map(|b| a.compare(&b)));
            match got {
                Ok(Some(o)) if o == want => {}
                other => failures.push(format!("{file}:{}: {line} → {other:?}", n + 1)),
            }
        }
        println!("{file}: {checked} lines checked under {scheme}");
        assert!(checked > 0, "{file} has no comparisons");
    }
    println!("unsupported ecosystems: {unsupported:?}");
    assert!(
        failures.is_empty(),
        "{} wrong lines:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn rustsec() -> Vec<(String, Vec<u8>)> {
    let dir = conformance_dir().join("osv/rustsec");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{} cannot be read: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("directory entry").path();
            let bytes = std::fs::read(&path).expect("record");
            (
                path.file_name()
                    .expect("file name")
                    .to_string_lossy()
                    .into_owned(),
                bytes,
            )
        })
        .filter(|(name, _)| name.ends_with(".json"))
        .collect();
    out.sort();
    out
}

#[test]
fn every_rustsec_record_parses_without_problems() {
    let records = rustsec();
    assert_eq!(
        records.len(),
        1206,
        "the RustSec export should hold 1,206 records"
    );
    let mut withdrawn = 0;
    let mut informational = 0;
    for (name, bytes) in &records {
        let adv = Advisory::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(format!("{}.json", adv.id), *name);
        assert!(adv.problems.is_empty(), "{name}: {:?}", adv.problems);
        assert!(!adv.affected.is_empty(), "{name}: no affected package");
        withdrawn += usize::from(adv.is_withdrawn());
        informational += usize::from(adv.informational.is_some());
    }
    // Counted from the export independently (a Python one-off over the JSON):
    // 13 withdrawn; 267 unmaintained + 203 unsound + 6 notice = 476 informational.
    assert_eq!(withdrawn, 13);
    assert_eq!(informational, 476);
}

fn index() -> AdvisoryIndex {
    let mut index = AdvisoryIndex::new();
    for (_, bytes) in rustsec() {
        index.insert(Advisory::parse(&bytes).expect("record"));
    }
    index
}

#[test]
fn rustsec_records_match_known_vulnerable_and_fixed_versions() {
    let index = index();
    assert_eq!(index.len(), 1206);
    // RUSTSEC-2021-0001: mdbook, introduced 0.1.4-0, fixed 0.4.5, CVSS 3.1 6.1.
    let (f, e) = index.lookup(&Package::new("crates.io", "mdbook", "0.4.4"));
    assert!(e.is_empty(), "{e:?}");
    let ids: Vec<&str> = f.iter().map(|f| f.advisory_id.as_str()).collect();
    assert!(ids.contains(&"RUSTSEC-2021-0001"), "{ids:?}");
    let mdbook = f
        .iter()
        .find(|f| f.advisory_id == "RUSTSEC-2021-0001")
        .unwrap();
    assert_eq!(mdbook.aliases, vec!["CVE-2020-26297".to_owned()]);
    assert_eq!(mdbook.fixed_versions, vec!["0.4.5".to_owned()]);
    assert_eq!(mdbook.installed_version, "0.4.4");
    let sev = mdbook.severity.as_ref().expect("severity");
    assert_eq!(sev.kind, "CVSS_V3");
    assert!((sev.score - 6.1).abs() < 1e-9, "{}", sev.score);
    assert_eq!(sev.rating, cairn_vuln::Rating::Medium);
    for fixed_or_before in ["0.4.5", "0.5.0", "0.1.3"] {
        let (f, _) = index.lookup(&Package::new("crates.io", "mdbook", fixed_or_before));
        assert!(
            !f.iter().any(|f| f.advisory_id == "RUSTSEC-2021-0001"),
            "mdbook {fixed_or_before} should not match"
        );
    }
}

fn ids(findings: &[cairn_vuln::Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.advisory_id.as_str()).collect()
}

#[test]
fn rustsec_scan_reports_exact_findings_with_informational_apart() {
    let index = index();
    let packages = [
        Package::new("crates.io", "smallvec", "0.6.2"),
        Package::new("crates.io", "smallvec", "0.6.10"),
        Package::new("crates.io", "smallvec", "1.6.0"),
        Package::new("crates.io", "smallvec", "1.6.1"),
        Package::new("crates.io", "libusb", "0.3.0"),
        Package::new("crates.io", "spin", "0.0.0-alpha"),
    ];
    let report = index.scan(&packages);
    assert!(report.issues.is_empty(), "{:?}", report.issues);
    let vulns: Vec<(&str, &str)> = report
        .vulnerabilities
        .iter()
        .map(|f| (f.installed_version.as_str(), f.advisory_id.as_str()))
        .collect();
    assert_eq!(
        vulns,
        vec![
            ("0.6.10", "RUSTSEC-2021-0003"),
            ("0.6.2", "RUSTSEC-2018-0003"),
            ("1.6.0", "RUSTSEC-2021-0003"),
            // spin: introduced 0.0.0-0, fixed 0.5.2.
            ("0.0.0-alpha", "RUSTSEC-2019-0013"),
        ]
    );
    let info: Vec<(&str, &str, String)> = report
        .informational
        .iter()
        .map(|f| {
            let kind = match &f.kind {
                cairn_vuln::FindingKind::Informational(i) => i.as_str().to_owned(),
                cairn_vuln::FindingKind::Vulnerability => "vulnerability".to_owned(),
            };
            (f.package.as_str(), f.advisory_id.as_str(), kind)
        })
        .collect();
    // spin's RUSTSEC-2019-0031 is withdrawn: never reported.
    assert_eq!(
        info,
        vec![
            ("libusb", "RUSTSEC-2016-0004", "unmaintained".to_owned()),
            ("smallvec", "RUSTSEC-2018-0018", "unsound".to_owned()),
            ("smallvec", "RUSTSEC-2018-0018", "unsound".to_owned()),
        ]
    );
    let sv = report
        .vulnerabilities
        .iter()
        .find(|f| f.advisory_id == "RUSTSEC-2018-0003")
        .expect("smallvec finding");
    assert_eq!(sv.aliases, vec!["CVE-2018-20991", "GHSA-rxr4-x558-x7hw"]);
    assert_eq!(sv.fixed_versions, vec!["0.3.4", "0.4.5", "0.5.1", "0.6.3"]);
    let sev = sv.severity.as_ref().expect("severity");
    assert_eq!(
        (sev.kind.as_str(), sev.score, sev.rating),
        ("CVSS_V3", 9.8, cairn_vuln::Rating::Critical)
    );
}

#[test]
fn rustsec_multi_range_record_with_cvss_v4() {
    let index = index();
    let (f, e) = index.lookup(&Package::new("crates.io", "wasmtime", "41.0.0"));
    assert!(e.is_empty(), "{e:?}");
    assert!(ids(&f).contains(&"RUSTSEC-2026-0006"), "{:?}", ids(&f));
    let w = f
        .iter()
        .find(|f| f.advisory_id == "RUSTSEC-2026-0006")
        .expect("finding");
    assert_eq!(w.fixed_versions, vec!["36.0.5", "40.0.3", "41.0.1"]);
    let sev = w.severity.as_ref().expect("severity");
    assert_eq!(sev.kind, "CVSS_V4");
    assert_eq!(
        sev.vector,
        "CVSS:4.0/AV:L/AC:L/AT:P/PR:L/UI:A/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N"
    );
    assert!(sev.score > 0.0 && sev.score <= 10.0);
    // Between ranges (40.0.3 fixed, 41.0.0 introduced) and after the last fix.
    for v in ["40.0.3", "41.0.1", "28.0.0"] {
        let (f, _) = index.lookup(&Package::new("crates.io", "wasmtime", v));
        assert!(!ids(&f).contains(&"RUSTSEC-2026-0006"), "wasmtime {v}");
    }
    let (f, _) = index.lookup(&Package::new("crates.io", "wasmtime", "36.0.4"));
    assert!(ids(&f).contains(&"RUSTSEC-2026-0006"));
}

/// Every RustSec record is written back as an advisory-db entry (so cargo-audit
/// can read the data cairn imported) or refused with a reason; refusals are rare
/// and each is named.
#[test]
fn rustsec_records_export_to_the_advisory_db_layout() {
    let mut refused = Vec::new();
    let mut exported = 0usize;
    for (name, bytes) in rustsec() {
        let advisory = Advisory::parse(&bytes).unwrap();
        match cairn_vuln::rustsec_export::to_rustsec(&advisory) {
            Ok(entry) => {
                assert_eq!(entry.file_name, format!("{}.md", advisory.id), "{name}");
                assert!(
                    entry.markdown.starts_with("```toml\n[advisory]\n"),
                    "{name}"
                );
                exported += 1;
            }
            Err(e) => refused.push(e.to_string()),
        }
    }
    println!(
        "exported {exported}, refused {}: {refused:#?}",
        refused.len()
    );
    assert!(refused.len() * 100 <= exported, "{refused:#?}");
}

/// The peek (id, withdrawal, package names, nothing else built) says what the
/// full parse says, for every record the full parse accepts: OSV.dev's Debian
/// 12 records and the RustSec ones. A record it would skip cannot concern a
/// package the full record names.
#[test]
fn peek_agrees_with_the_full_parse_on_real_records() {
    use cairn_vuln::archive::{Entry, Limits, OsvArchive};
    let file = std::fs::File::open(conformance_dir().join("osv/debian-12.zip")).unwrap();
    let mut archive = OsvArchive::open(std::io::BufReader::new(file), Limits::default()).unwrap();
    let mut records: Vec<Vec<u8>> = rustsec().into_iter().map(|(_, b)| b).collect();
    for i in 0..archive.len() {
        if let Entry::Record { bytes, .. } = archive.entry(i).unwrap() {
            records.push(bytes);
        }
    }
    assert!(records.len() > 30_000, "{} records", records.len());
    for bytes in &records {
        let full = Advisory::parse(bytes).unwrap();
        let peek = Advisory::peek(bytes).unwrap();
        assert_eq!(peek.id, full.id);
        assert_eq!(peek.withdrawn, full.is_withdrawn(), "{}", full.id);
        let names: Vec<(&str, &str)> = full
            .affected
            .iter()
            .map(|a| (a.ecosystem.as_str(), a.name.as_str()))
            .collect();
        let peeked: Vec<(&str, &str)> = peek
            .packages
            .iter()
            .map(|(e, n)| (e.as_ref(), n.as_ref()))
            .collect();
        assert_eq!(peeked, names, "{}", full.id);
    }
    // Bad input: what the full parse refuses, the peek refuses too when it
    // cannot say what the record names.
    assert!(Advisory::peek(b"{\"modified\":\"x\"}").is_err());
    assert!(Advisory::peek(b"not json").is_err());
    let w = br#"{"id":"X","modified":"m","withdrawn":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Debian:12","name":"glibc"}}]}"#;
    assert!(Advisory::peek(w).unwrap().withdrawn);
    let n = br#"{"id":"X","modified":"m","withdrawn":null,"affected":[{"ranges":[]}]}"#;
    let p = Advisory::peek(n).unwrap();
    assert!(!p.withdrawn && p.packages.is_empty());
}

/// The versions a record's entry for its package names (events and listed), and
/// a few around them: where a range's answer can change.
fn probe_versions(affected: &cairn_vuln::Affected) -> Vec<String> {
    let mut out = vec![
        "0.1.0".to_owned(),
        "0:0".to_owned(),
        "999.0.0".to_owned(),
        "not a version".to_owned(),
    ];
    for r in &affected.ranges {
        for e in &r.events {
            let v = e.version().to_owned();
            out.push(format!("{v}~"));
            out.push(format!("{v}.1"));
            out.push(v);
        }
    }
    // Each listed version as written and in a form that orders equal to it
    // but is not the same text (an explicit zero epoch, dpkg), so a match form
    // that keeps fewer listed versions is tried with both.
    for v in affected.versions.iter().take(20) {
        out.push(v.clone());
        if !v.contains(':') {
            out.push(format!("0:{v}"));
        }
    }
    out
}

/// A record's match form (what a store keeps for scans) answers every match as
/// the record does — findings (ids, aliases, summary, severity, urgency, fixed
/// versions, kind), errors and record problems — on every RustSec record and
/// every OSV.dev Debian 12 record, at the versions where a range can change its
/// answer; and it is smaller. Bad input: a record that does not parse has no form.
#[test]
fn match_form_matches_as_the_record_does_on_real_records() {
    use cairn_vuln::archive::{Entry, Limits, OsvArchive};
    let file = std::fs::File::open(conformance_dir().join("osv/debian-12.zip")).unwrap();
    let mut archive = OsvArchive::open(std::io::BufReader::new(file), Limits::default()).unwrap();
    let mut records: Vec<Vec<u8>> = rustsec().into_iter().map(|(_, b)| b).collect();
    for i in 0..archive.len() {
        if let Entry::Record { bytes, .. } = archive.entry(i).unwrap() {
            records.push(bytes);
        }
    }
    let (mut full_bytes, mut form_bytes, mut checked, mut found) = (0usize, 0usize, 0usize, 0usize);
    let (mut compiled_bytes, mut decided_no) = (0usize, 0usize);
    let (mut decided_affected, mut maybe_found) = (0usize, 0usize);
    for bytes in &records {
        let full = Advisory::parse(bytes).unwrap();
        let form_json =
            cairn_vuln::match_form(bytes).unwrap_or_else(|| panic!("{}: no match form", full.id));
        let form = Advisory::parse(&form_json).unwrap();
        full_bytes += bytes.len();
        form_bytes += form_json.len();
        assert_eq!(form.id, full.id);
        assert_eq!(form.modified, full.modified);
        assert_eq!(form.is_withdrawn(), full.is_withdrawn(), "{}", full.id);
        assert_eq!(form.problems, full.problems, "{}", full.id);
        assert_eq!(form.informational, full.informational, "{}", full.id);
        assert_eq!(form.affected.len(), full.affected.len(), "{}", full.id);
        // The compiled forms, one per (ecosystem, normalised name), made from
        // the record as an import makes them.
        let compiled = cairn_vuln::compiled::compile(&full);
        let mut ecosystems: Vec<&str> = Vec::new();
        for a in &full.affected {
            if !ecosystems.contains(&a.ecosystem.as_str()) {
                ecosystems.push(&a.ecosystem);
            }
        }
        for a in &full.affected {
            let key = (
                a.ecosystem.clone(),
                cairn_vuln::normalize_name(&a.ecosystem, &a.name),
            );
            let binary = compiled
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, f)| f.as_deref())
                .unwrap_or_else(|| panic!("{}: no compiled form for {key:?}", full.id));
            compiled_bytes += binary.len();
            for version in probe_versions(a) {
                let package = Package::new(&a.ecosystem, &a.name, &version);
                let (x, y) = (
                    cairn_vuln::matches(&full, &package),
                    cairn_vuln::matches(&form, &package),
                );
                // "No" from the compiled form exactly when the record says not
                // affected; "affected" only with the very finding the record
                // gives; anything else sends a scan to the record.
                let decision = cairn_vuln::compiled::decide(
                    binary,
                    &mut cairn_vuln::compiled::Installed::new(&version),
                )
                .unwrap_or_else(|e| panic!("{} {package:?}: {e}", full.id));
                assert_eq!(
                    decision == cairn_vuln::compiled::Decision::No,
                    matches!(x, Ok(None)),
                    "{} {package:?}: compiled {decision:?} vs {x:?}",
                    full.id
                );
                match &decision {
                    cairn_vuln::compiled::Decision::Affected(hit) => {
                        let made = hit.finding(&package);
                        assert_eq!(
                            x.as_ref().ok().and_then(Option::as_ref),
                            Some(&made),
                            "{} {package:?}: the compiled form's finding",
                            full.id
                        );
                        assert_eq!(hit.check_id(&full.id), Ok(()));
                        assert!(hit.check_id("another").is_err());
                        assert_eq!(hit.ecosystems(), ecosystems.as_slice(), "{}", full.id);
                        decided_affected += 1;
                    }
                    cairn_vuln::compiled::Decision::Maybe => {
                        maybe_found += usize::from(matches!(x, Ok(Some(_))));
                    }
                    cairn_vuln::compiled::Decision::No => {}
                }
                decided_no += usize::from(decision == cairn_vuln::compiled::Decision::No);
                found += usize::from(matches!(x, Ok(Some(_))));
                match (x, y) {
                    (Ok(x), Ok(y)) => assert_eq!(x, y, "{} {package:?}", full.id),
                    (Err(x), Err(y)) => {
                        assert_eq!(x.to_string(), y.to_string(), "{} {package:?}", full.id);
                    }
                    (x, y) => panic!("{} {package:?}: {x:?} vs {y:?}", full.id),
                }
                checked += 1;
            }
        }
    }
    println!(
        "{} records, {checked} matches compared ({found} findings, {decided_no} decided \"no\" by the compiled form, {decided_affected} findings made by it, {maybe_found} left to the record); {full_bytes} bytes of records, {form_bytes} of match forms, {compiled_bytes} of compiled forms",
        records.len()
    );
    // Every finding of these records is made from the compiled form: nothing
    // in them is past a bound, and an entry that cannot tell never hides one
    // that says affected.
    assert_eq!(maybe_found, 0, "{maybe_found} findings left to the record");
    assert_eq!(decided_affected, found);
    assert!(
        decided_no > 50_000,
        "{decided_no} decided by the compiled form"
    );
    assert!(found > 10_000, "{found} findings");
    assert!(form_bytes * 2 < full_bytes, "{form_bytes} vs {full_bytes}");
    assert!(cairn_vuln::match_form(b"not json").is_none());
    assert!(cairn_vuln::match_form(br#"{"modified":"m"}"#).is_none());
    assert!(cairn_vuln::match_form(br#"{"id":"X","modified":"m","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[]}]}]}"#).is_none());
}
