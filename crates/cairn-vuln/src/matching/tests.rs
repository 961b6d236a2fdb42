//! OSV range evaluation, package identity, severity and robustness cases.

use super::{FindingKind, Package, Rating, matches, normalize_name};
use crate::error::Error;
use crate::osv::{Advisory, Informational, ProblemKind};

/// A record with one `affected` entry for (`ecosystem`, `name`) whose `ranges`
/// and `versions` are the given JSON fragments.
fn record(ecosystem: &str, name: &str, ranges: &str, versions: &str) -> Advisory {
    let json = format!(
        r#"{{"id":"TEST-1","modified":"2024-01-01T00:00:00Z","aliases":["CVE-2024-0001"],
        "affected":[{{"package":{{"ecosystem":"{ecosystem}","name":"{name}"}},
        "ranges":{ranges},"versions":{versions}}}]}}"#
    );
    Advisory::parse(json.as_bytes()).unwrap_or_else(|e| panic!("{e}: {json}"))
}

fn semver_range(events: &str) -> String {
    format!(r#"[{{"type":"SEMVER","events":{events}}}]"#)
}

/// `cases`: (installed version, affected?).
fn check(adv: &Advisory, ecosystem: &str, name: &str, cases: &[(&str, bool)]) {
    for (version, want) in cases {
        let got = matches(adv, &Package::new(ecosystem, name, version))
            .unwrap_or_else(|e| panic!("{name} {version}: {e}"));
        assert_eq!(got.is_some(), *want, "{name} {version}");
    }
}

#[test]
fn introduced_and_fixed_pairs() {
    let adv = record(
        "crates.io",
        "a",
        &semver_range(
            r#"[{"introduced":"0"},{"fixed":"1.0.5"},{"introduced":"1.1.0"},{"fixed":"1.1.3"},{"introduced":"2.0.0-alpha.1"},{"fixed":"2.0.1"}]"#,
        ),
        "[]",
    );
    check(
        &adv,
        "crates.io",
        "a",
        &[
            ("0.0.0", true),
            ("0.0.0-pre", true),
            ("1.0.4", true),
            ("1.0.5", false),
            ("1.0.9", false),
            ("1.1.0-rc.1", false),
            ("1.1.0", true),
            ("1.1.2", true),
            ("1.1.3", false),
            ("1.9.0", false),
            ("2.0.0-alpha.0", false),
            ("2.0.0-alpha.1", true),
            ("2.0.0", true),
            ("2.0.1", false),
            ("3.0.0", false),
        ],
    );
    let f = matches(&adv, &Package::new("crates.io", "a", "1.1.2"))
        .unwrap()
        .unwrap();
    assert_eq!(f.fixed_versions, vec!["1.0.5", "1.1.3", "2.0.1"]);
    assert_eq!(f.aliases, vec!["CVE-2024-0001"]);
    assert_eq!(f.advisory_id, "TEST-1");
    assert_eq!(f.installed_version, "1.1.2");
    assert_eq!(f.kind, FindingKind::Vulnerability);
    assert_eq!(f.severity, None);
}

#[test]
fn unsorted_events_are_sorted_first() {
    let adv = record(
        "npm",
        "b",
        &semver_range(
            r#"[{"fixed":"2.0.0"},{"introduced":"1.5.0"},{"fixed":"1.2.0"},{"introduced":"1.0.0"}]"#,
        ),
        "[]",
    );
    check(
        &adv,
        "npm",
        "b",
        &[
            ("0.9.0", false),
            ("1.0.0", true),
            ("1.2.0", false),
            ("1.4.9", false),
            ("1.5.0", true),
            ("2.0.0", false),
        ],
    );
}

#[test]
fn last_affected_includes_its_version() {
    let adv = record(
        "npm",
        "c",
        &semver_range(r#"[{"introduced":"1.0.0"},{"last_affected":"1.4.2"}]"#),
        "[]",
    );
    check(
        &adv,
        "npm",
        "c",
        &[
            ("0.1.0", false),
            ("1.0.0", true),
            ("1.4.2", true),
            ("1.4.3", false),
        ],
    );
    let f = matches(&adv, &Package::new("npm", "c", "1.4.2"))
        .unwrap()
        .unwrap();
    assert!(f.fixed_versions.is_empty());
}

#[test]
fn no_fixed_means_every_later_version() {
    let adv = record(
        "npm",
        "d",
        &semver_range(r#"[{"introduced":"3.1.0"}]"#),
        "[]",
    );
    check(
        &adv,
        "npm",
        "d",
        &[("3.0.9", false), ("3.1.0", true), ("99.0.0", true)],
    );
}

#[test]
fn limit_bounds_the_range() {
    let adv = record(
        "npm",
        "e",
        &semver_range(r#"[{"introduced":"0"},{"limit":"2.0.0"}]"#),
        "[]",
    );
    check(
        &adv,
        "npm",
        "e",
        &[
            ("0.1.0", true),
            ("1.9.9", true),
            ("2.0.0", false),
            ("3.0.0", false),
        ],
    );
    let star = record(
        "npm",
        "e",
        &semver_range(r#"[{"introduced":"1.0.0"},{"limit":"*"}]"#),
        "[]",
    );
    check(&star, "npm", "e", &[("0.1.0", false), ("5.0.0", true)]);
}

#[test]
fn explicit_versions_and_git_ranges() {
    let adv = record(
        "PyPI",
        "Some_Pkg",
        r#"[{"type":"GIT","repo":"https://example.invalid/r","events":[{"introduced":"0"},{"fixed":"abc123"}]}]"#,
        r#"["1.0", "1.1.post1"]"#,
    );
    check(
        &adv,
        "PyPI",
        "some-pkg",
        &[
            ("1.0", true),
            ("1.0.0", true),
            ("1.1.post1", true),
            ("1.1-1", true),
            ("1.1", false),
            ("0.9", false),
        ],
    );
    // GIT `fixed` commits are not versions.
    let f = matches(&adv, &Package::new("PyPI", "some.pkg", "1.0"))
        .unwrap()
        .unwrap();
    assert!(f.fixed_versions.is_empty());
    assert!(adv.problems.is_empty());
}

#[test]
fn ecosystem_ranges_use_the_ecosystem_ordering() {
    let adv = record(
        "Debian:12",
        "openssl",
        r#"[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.11-1~deb12u2"}]}]"#,
        "[]",
    );
    check(
        &adv,
        "Debian:12",
        "openssl",
        &[
            ("3.0.11-1~deb12u1", true),
            ("3.0.11-1~deb12u2", false),
            ("3.0.11-1", false),
            ("1:0.1", false),
        ],
    );
    // Another release of the distribution is another ecosystem.
    assert!(
        matches(&adv, &Package::new("Debian:11", "openssl", "1.0"))
            .unwrap()
            .is_none()
    );
    let pypi = record(
        "PyPI",
        "django",
        r#"[{"type":"ECOSYSTEM","events":[{"introduced":"4.2a1"},{"fixed":"4.2.8"}]}]"#,
        "[]",
    );
    check(
        &pypi,
        "PyPI",
        "Django",
        &[
            ("4.1", false),
            ("4.2rc1", true),
            ("4.2.7", true),
            ("4.2.8", false),
        ],
    );
    let maven = record(
        "Maven",
        "org.apache.logging.log4j:log4j-core",
        r#"[{"type":"ECOSYSTEM","events":[{"introduced":"2.0-beta9"},{"fixed":"2.15.0"}]}]"#,
        "[]",
    );
    check(
        &maven,
        "Maven",
        "org.apache.logging.log4j:log4j-core",
        &[
            ("2.0-alpha1", false),
            ("2.0-beta9", true),
            ("2.14.1", true),
            ("2.15.0", false),
            ("2.15.0-rc1", true),
        ],
    );
}

#[test]
fn package_identity_per_ecosystem() {
    let cases = [
        ("PyPI", "Foo.Bar__baz", "foo-bar-baz"),
        ("PyPI", "zope.interface", "zope-interface"),
        ("NuGet", "Newtonsoft.Json", "newtonsoft.json"),
        ("Packagist", "Symfony/HttpKernel", "symfony/httpkernel"),
        ("npm", "React", "React"),
        ("crates.io", "serde_json", "serde_json"),
        ("Go", "github.com/Foo/bar/v2", "github.com/Foo/bar/v2"),
        ("Maven", "org.example:Lib", "org.example:Lib"),
    ];
    for (eco, name, want) in cases {
        assert_eq!(normalize_name(eco, name), want, "{eco} {name}");
    }
    let adv = record(
        "npm",
        "lodash",
        &semver_range(r#"[{"introduced":"0"}]"#),
        "[]",
    );
    assert!(
        matches(&adv, &Package::new("npm", "Lodash", "1.0.0"))
            .unwrap()
            .is_none()
    );
    assert!(
        matches(&adv, &Package::new("crates.io", "lodash", "1.0.0"))
            .unwrap()
            .is_none()
    );
    let mvn = record(
        "Maven",
        "org.example:lib",
        &semver_range(r#"[{"introduced":"0"}]"#),
        "[]",
    );
    assert!(
        matches(&mvn, &Package::new("Maven", "org.other:lib", "1.0.0"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn withdrawn_records_never_match() {
    let json = br#"{"id":"W-1","modified":"2024-01-01T00:00:00Z","withdrawn":"2024-02-01T00:00:00Z",
      "affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}"#;
    let adv = Advisory::parse(json).unwrap();
    assert!(adv.is_withdrawn());
    assert!(
        matches(&adv, &Package::new("npm", "x", "1.0.0"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn broken_ranges_are_problems_and_matching_says_it_cannot_tell() {
    let adv = record(
        "npm",
        "y",
        r#"[{"type":"WEIRD","events":[{"introduced":"0"}]}]"#,
        "[]",
    );
    assert!(matches!(adv.problems[0].kind, ProblemKind::UnknownRangeType(ref t) if t == "WEIRD"));
    assert!(matches!(
        matches(&adv, &Package::new("npm", "y", "1.0.0")),
        Err(Error::RangeNotEvaluable { .. })
    ));
    let bad = record(
        "npm",
        "y",
        &semver_range(r#"[{"introduced":"1.x"},{"fixed":"2.0.0"}]"#),
        r#"["0.5.0"]"#,
    );
    assert!(matches!(adv.problems.len(), 1));
    assert!(matches!(
        bad.problems[0].kind,
        ProblemKind::UnparsableVersion { .. }
    ));
    // An explicit version still matches; anything else cannot be decided.
    assert!(
        matches(&bad, &Package::new("npm", "y", "0.5.0"))
            .unwrap()
            .is_some()
    );
    assert!(matches(&bad, &Package::new("npm", "y", "1.5.0")).is_err());
    let unsupported = record(
        "Nix",
        "z",
        r#"[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]"#,
        "[]",
    );
    assert!(matches!(
        unsupported.problems[0].kind,
        ProblemKind::UnsupportedEcosystem(_)
    ));
    // An installed version that does not parse is an error, not "not affected".
    let ok = record(
        "npm",
        "v",
        &semver_range(r#"[{"introduced":"0"},{"fixed":"1.0.0"}]"#),
        "[]",
    );
    assert!(matches!(
        matches(&ok, &Package::new("npm", "v", "latest")),
        Err(Error::Version(_))
    ));
    // …but a package the record does not name is simply not affected.
    assert!(
        matches(&ok, &Package::new("npm", "w", "latest"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn malformed_records_are_errors() {
    let cases: &[&[u8]] = &[
        b"",
        b"{}",
        b"[]",
        br#"{"id":"X","modified":""}"#,
        br#"{"id":"","modified":"2024-01-01T00:00:00Z"}"#,
        br#"{"id":"X","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0","fixed":"1"}]}]}]}"#,
        br#"{"id":"X","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"fixd":"1"}]}]}]}"#,
        br#"{"id":"X","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[]}]}]}"#,
        br#"{"id":"X","modified":"2024-01-01T00:00:00Z","aliases":"CVE-1"}"#,
        br#"{"id":"X","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"","name":"a"}}]}"#,
    ];
    for bytes in cases {
        assert!(
            Advisory::parse(bytes).is_err(),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
    let many: Vec<String> = (0..=crate::osv::MAX_EVENTS_PER_RANGE)
        .map(|i| format!(r#"{{"fixed":"{i}.0.0"}}"#))
        .collect();
    let json = format!(
        r#"{{"id":"X","modified":"m","affected":[{{"package":{{"ecosystem":"npm","name":"a"}},"ranges":[{{"type":"SEMVER","events":[{{"introduced":"0"}},{}]}}]}}]}}"#,
        many.join(",")
    );
    assert!(matches!(
        Advisory::parse(json.as_bytes()),
        Err(Error::InvalidRecord { .. })
    ));
    let big = vec![b' '; crate::osv::MAX_RECORD_BYTES + 1];
    assert!(matches!(
        Advisory::parse(&big),
        Err(Error::RecordTooLarge { .. })
    ));
}

#[test]
fn severity_from_cvss_v3_and_v4() {
    let json = br#"{"id":"S-1","modified":"m","severity":[
        {"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
      "affected":[{"package":{"ecosystem":"npm","name":"s"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}"#;
    let f = matches(
        &Advisory::parse(json).unwrap(),
        &Package::new("npm", "s", "1.0.0"),
    )
    .unwrap()
    .unwrap();
    let sev = f.severity.unwrap();
    assert_eq!(
        (sev.kind.as_str(), sev.score, sev.rating),
        ("CVSS_V3", 9.8, Rating::Critical)
    );
    let json = br#"{"id":"S-2","modified":"m","severity":[
        {"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:N/A:N"},
        {"type":"CVSS_V4","score":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}],
      "affected":[{"package":{"ecosystem":"npm","name":"s"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}"#;
    let f = matches(
        &Advisory::parse(json).unwrap(),
        &Package::new("npm", "s", "1.0.0"),
    )
    .unwrap()
    .unwrap();
    let sev = f.severity.unwrap();
    assert_eq!(
        (sev.kind.as_str(), sev.score, sev.rating),
        ("CVSS_V4", 9.3, Rating::Critical)
    );
    // A vector that does not parse gives no severity rather than a guess.
    let json = br#"{"id":"S-3","modified":"m","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/garbage"}],
      "affected":[{"package":{"ecosystem":"npm","name":"s"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}"#;
    let f = matches(
        &Advisory::parse(json).unwrap(),
        &Package::new("npm", "s", "1.0.0"),
    )
    .unwrap()
    .unwrap();
    assert_eq!(f.severity, None);
}

#[test]
fn rustsec_informational_kinds_are_apart() {
    for (kind, want) in [
        ("unmaintained", Informational::Unmaintained),
        ("unsound", Informational::Unsound),
        ("notice", Informational::Notice),
    ] {
        let json = format!(
            r#"{{"id":"I-1","modified":"m","affected":[{{"package":{{"ecosystem":"crates.io","name":"i"}},
            "database_specific":{{"informational":"{kind}"}},
            "ranges":[{{"type":"SEMVER","events":[{{"introduced":"0"}}]}}]}}]}}"#
        );
        let f = matches(
            &Advisory::parse(json.as_bytes()).unwrap(),
            &Package::new("crates.io", "i", "0.1.0"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(f.kind, FindingKind::Informational(want));
    }
}

const SAMPLE: &str = r#"{"id":"RUSTSEC-2021-0001","modified":"2021-10-19T22:14:35Z","published":"2021-01-04T12:00:00Z",
"aliases":["CVE-2020-26297"],"related":[],"summary":"XSS","details":"d",
"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"}],
"affected":[{"package":{"ecosystem":"crates.io","name":"mdbook","purl":"pkg:cargo/mdbook"},
"ecosystem_specific":{"affects":{"arch":[],"os":[],"functions":[]}},
"database_specific":{"categories":["code-execution"],"informational":null},
"ranges":[{"type":"SEMVER","events":[{"introduced":"0.1.4-0"},{"fixed":"0.4.5"},{"introduced":"1.0.0"},{"last_affected":"1.2.0"},{"limit":"9.0.0"}]}],
"versions":["0.0.1"]}],
"references":[{"type":"ADVISORY","url":"https://rustsec.org/advisories/RUSTSEC-2021-0001.html"}],
"database_specific":{"license":"CC0-1.0"}}"#;

/// Flipped bits, replaced bytes, truncations and junk before and after: the
/// reader returns `Ok` or `Err`, never panics, and whatever it accepts can be
/// matched without panicking.
#[test]
fn byte_mutations_never_panic() {
    let base = SAMPLE.as_bytes();
    assert!(Advisory::parse(base).is_ok());
    let pkg = Package::new("crates.io", "mdbook", "0.4.4");
    let mut accepted = 0;
    let mut rejected = 0;
    let mut try_parse = |bytes: &[u8]| match Advisory::parse(bytes) {
        Ok(adv) => {
            accepted += 1;
            let _ = matches(&adv, &pkg);
        }
        Err(_) => rejected += 1,
    };
    for i in 0..base.len() {
        for bit in [0x01u8, 0x20, 0x80] {
            let mut m = base.to_vec();
            m[i] ^= bit;
            try_parse(&m);
        }
        for b in [b'"', b'{', b']', b'0', b'\\', 0xff] {
            let mut m = base.to_vec();
            m[i] = b;
            try_parse(&m);
        }
        try_parse(&base[..i]);
        let mut m = base.to_vec();
        m.remove(i);
        try_parse(&m);
    }
    for junk in [&b"x"[..], b"{}", b"\0", b"\xef\xbb\xbf"] {
        try_parse(&[junk, base].concat());
        try_parse(&[base, junk].concat());
    }
    assert!(
        accepted > 0 && rejected > 0,
        "accepted {accepted}, rejected {rejected}"
    );
}
