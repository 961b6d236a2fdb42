//! Small ordering cases per scheme, beyond the conformance files.

use super::{Scheme, Version, compare};
use std::cmp::Ordering;

/// `cases` are `"A op B"` lines, `op` one of `<`, `=`, `>`.
fn check(scheme: Scheme, cases: &[&str]) {
    for line in cases {
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(parts.len(), 3, "bad case {line:?}");
        let want = match parts[1] {
            "<" => Ordering::Less,
            "=" => Ordering::Equal,
            ">" => Ordering::Greater,
            op => panic!("bad operator {op:?}"),
        };
        let got = compare(scheme, parts[0], parts[2])
            .unwrap_or_else(|e| panic!("{scheme}: {line:?}: {e}"));
        assert_eq!(got, want, "{scheme}: {line:?}");
        let back = compare(scheme, parts[2], parts[0]).unwrap();
        assert_eq!(back, want.reverse(), "{scheme}: reversed {line:?}");
    }
}

fn check_invalid(scheme: Scheme, inputs: &[&str]) {
    for s in inputs {
        let err =
            Version::parse(scheme, s).expect_err(&format!("{scheme}: {s:?} should not parse"));
        assert_eq!(err.scheme, scheme);
    }
}

#[test]
fn semver_orders_prereleases_build_and_go_pseudo_versions() {
    check(
        Scheme::Semver,
        &[
            "1.0.0-alpha < 1.0.0-alpha.1",
            "1.0.0-alpha.beta < 1.0.0-beta",
            "1.0.0-beta.2 < 1.0.0-beta.11",
            "1.0.0-rc.1 < 1.0.0",
            "1.0.0+build.1 = 1.0.0+build.2",
            "1.0.0-rc.1+b = 1.0.0-rc.1",
            "1.0 = 1.0.0",
            "v1.2.3 = 1.2.3",
            "0.1.4-0 < 0.1.4",
            "0.1.4-0 < 0.1.4-alpha",
            "v0.0.0-20191109021931-daa7c04131f5 < v0.0.0-20200101000000-aaaaaaaaaaaa",
            "v0.0.0-20191109021931-daa7c04131f5 < v0.0.1",
            "v1.2.4-0.20191109021931-daa7c04131f5 > v1.2.3",
            "v1.2.4-0.20191109021931-daa7c04131f5 < v1.2.4",
            "v2.0.0+incompatible = v2.0.0",
            "v2.0.1+incompatible > v2.0.0",
            "18446744073709551616.0.0 > 18446744073709551615.0.0",
        ],
    );
    check_invalid(
        Scheme::Semver,
        &[
            "",
            " ",
            "1.x.0",
            "1..0",
            "1.0.0-",
            "1.0.0-a..b",
            "1.0.0-Ā",
            "abc",
        ],
    );
}

#[test]
fn pypi_normalises_and_orders_pep440() {
    check(
        Scheme::Pypi,
        &[
            "1.0 = 1.0.0",
            "1.0 = v1.0",
            "1.0a1 = 1.0alpha1",
            "1.0a1 = 1.0.a.1",
            "1.0b2 = 1.0-beta-2",
            "1.0rc1 = 1.0c1",
            "1.0rc1 = 1.0pre1",
            "1.0rc = 1.0rc0",
            "1.0.post1 = 1.0-1",
            "1.0.post1 = 1.0.rev1",
            "1.0.post = 1.0.post0",
            "1.0.dev = 1.0.dev0",
            "1.0.DEV1 = 1.0.dev1",
            "1!0.1 > 2.0",
            "1.0.dev1 < 1.0a1",
            "1.0a1.dev1 < 1.0a1",
            "1.0a1 < 1.0b1",
            "1.0b1 < 1.0rc1",
            "1.0rc1 < 1.0",
            "1.0 < 1.0.post1.dev1",
            "1.0.post1.dev1 < 1.0.post1",
            "1.0 < 1.0+local",
            "1.0+abc < 1.0+1",
            "1.0+1.a < 1.0+1.a.1",
            "1.0+ubuntu-1 = 1.0+ubuntu.1",
            "not.a.version < 0.0.1",
        ],
    );
    check_invalid(Scheme::Pypi, &["", "1.0 beta"]);
}

#[test]
fn maven_qualifiers_and_separators() {
    check(
        Scheme::Maven,
        &[
            "1.0-alpha1 < 1.0-beta1",
            "1.0-beta1 < 1.0-milestone1",
            "1.0-milestone1 < 1.0-rc1",
            "1.0-rc1 = 1.0-cr1",
            "1.0-rc1 < 1.0-SNAPSHOT",
            "1.0-SNAPSHOT < 1.0",
            "1.0 = 1.0-ga",
            "1.0 = 1.0.final",
            "1.0 < 1.0-sp1",
            "1.0-sp1 < 1.0-whatever",
            "1.0.RELEASE = 1.0",
            "2.12.7.1 > 2.12.7",
            "2.12.7-1 < 2.12.7.1",
            "1.0-jre > 1.0-android-foo",
            "1-ga-1 = 1-1",
            "1.0-1 = 1-1",
        ],
    );
    check_invalid(Scheme::Maven, &["", "1.0 beta"]);
}

#[test]
fn rubygems_prerelease_strings_sort_before_numbers() {
    check(
        Scheme::RubyGems,
        &[
            "1.0.0 = 1",
            "1.0.0.rc1 < 1.0.0",
            "1.0.0.rc1 > 1.0.0.beta2",
            "1.0.0-rc1 = 1.0.0.pre.rc1",
            "1.10 > 1.9",
            "2.0.0.a < 2.0.0.b",
        ],
    );
    check_invalid(Scheme::RubyGems, &["", "a1", "1.0_1", "1 0"]);
}

#[test]
fn packagist_stabilities() {
    check(
        Scheme::Packagist,
        &[
            "1.0.0-dev < 1.0.0-alpha1",
            "1.0.0-alpha1 < 1.0.0-beta1",
            "1.0.0-beta1 < 1.0.0-RC1",
            "1.0.0-RC1 < 1.0.0",
            "1.0.0 < 1.0.0-patch1",
            "v2.1 = 2.1",
            "2.1.0 > 2.1",
        ],
    );
}

#[test]
fn nuget_four_parts_and_case_insensitive_labels() {
    check(
        Scheme::NuGet,
        &[
            "1.0 = 1.0.0.0",
            "1.0.0.1 > 1.0.0",
            "1.0.0-ALPHA = 1.0.0-alpha",
            "1.0.0-alpha.2 < 1.0.0-alpha.10",
            "1.0.0-alpha.2 < 1.0.0-alpha.a",
            "1.0.0+meta = 1.0.0",
        ],
    );
    check_invalid(Scheme::NuGet, &["", "1.0.0.0.0", "1.a", "1.0.0-"]);
}

#[test]
fn debian_epochs_revisions_and_tilde() {
    check(
        Scheme::Debian,
        &[
            "1.0~rc1 < 1.0",
            "1.0~~ < 1.0~",
            "1.0~ < 1.0",
            "1.0 < 1.0+b1",
            "1.0 < 1.0a",
            "1.0a < 1.0+",
            "1:0.9 > 2.0",
            "2.30-1 < 2.30-10",
            "2.30-1ubuntu1 > 2.30-1",
            "1.2.3-1~deb12u1 < 1.2.3-1",
            "1.2.3-1+deb12u1 > 1.2.3-1",
            "1.0-1 = 1.0-01",
            "0:1.0 = 1.0",
        ],
    );
    check_invalid(Scheme::Debian, &["", "a:1.0", "1.0 1", "-1"]);
}

/// Orderings seen in Debian's own archive and advisories, each checked against
/// libapt's `apt_pkg.version_compare` when written (python3-apt, Debian 12).
#[test]
fn debian_archive_versions_order_as_libapt_does() {
    check(
        Scheme::Debian,
        &[
            "1:2.38.1-5+b1 > 2.38.1-5+deb12u3",
            "2.36-9+deb12u10 > 2.36-9+deb12u9",
            "7.88.1-10+deb12u5 < 7.88.1-10+deb12u12",
            "1.0+dfsg-1~bpo11+1 < 1.0+dfsg-1",
            "1:7.0.4-4+deb11u1~bpo10+1 < 1:7.0.4-4+deb11u1",
            "0~ < 0",
            "1.0~rc1-1 < 1.0-1",
            "2:1.0 > 1:9.9",
            "1.0.0 > 1.0",
            "5.2.15-2+b7 > 5.2.15-2",
            "1.47.0-2 < 1.47.0-2+b1",
            "3.0.11-1~deb12u2 < 3.0.11-1",
            "252.30-1~deb12u2 > 252.22-1~deb12u1",
            "1.0-1 < 1.0-1.1",
            "9.2p1-2+deb12u3 > 9.2p1-2",
            "1.0 = 1.0-0",
        ],
    );
}

#[test]
fn alpine_suffixes_and_revisions() {
    check(
        Scheme::Alpine,
        &[
            "1.0_alpha1 < 1.0_beta1",
            "1.0_beta1 < 1.0_pre1",
            "1.0_pre1 < 1.0_rc1",
            "1.0_rc1 < 1.0",
            "1.0 < 1.0_p1",
            "1.0_p1 < 1.0a",
            "1.0-r0 < 1.0-r1",
            "1.0-r10 > 1.0-r9",
            "1.2.3 = 1.2.3-r0",
            "1.2.3-r1 > 1.2.3",
            "3.0.15-r0 < 3.0.15-r1",
            "1.02 < 1.1",
        ],
    );
}

#[test]
fn rpm_epoch_release_tilde_caret() {
    check(
        Scheme::Rpm,
        &[
            "1.0~rc1 < 1.0",
            "1.0 < 1.0^git1",
            "1.0^git1 < 1.0.1",
            "1:1.0 > 2.0",
            "1.0-1.el9 < 1.0-2.el9",
            "1.0-1.el9_1 > 1.0-1.el9",
            "1.0a < 1.0.1",
        ],
    );
}

#[test]
fn cran_hackage_pub() {
    check(
        Scheme::Cran,
        &["1.2-3 = 1.2.3", "1.2-10 > 1.2-9", "1.0 < 1.0.0"],
    );
    check(Scheme::Hackage, &["1.0 < 1.0.0", "0.10 > 0.9"]);
    check(
        Scheme::Pub,
        &["1.0.0 < 1.0.0+1", "1.0.0-dev < 1.0.0", "1.0.0+1 < 1.0.0+2"],
    );
    check_invalid(Scheme::Cran, &["1.a", ""]);
    check_invalid(Scheme::Hackage, &["1-2", "1..2"]);
}

#[test]
fn overlong_versions_are_errors() {
    let long = "1.".repeat(200) + "0";
    for scheme in Scheme::ALL {
        assert!(Version::parse(scheme, &long).is_err(), "{scheme}");
    }
}

#[test]
fn different_schemes_do_not_compare() {
    let a = Version::parse(Scheme::Semver, "1.0.0").unwrap();
    let b = Version::parse(Scheme::Pypi, "1.0.0").unwrap();
    assert_eq!(a.compare(&b), None);
    assert_eq!(a.compare(&a), Some(Ordering::Equal));
}

#[test]
fn ecosystems_map_to_schemes() {
    let cases = [
        ("crates.io", Some(Scheme::Semver)),
        ("npm", Some(Scheme::Semver)),
        ("Go", Some(Scheme::Semver)),
        ("Hex", Some(Scheme::Semver)),
        ("PyPI", Some(Scheme::Pypi)),
        ("Debian:12", Some(Scheme::Debian)),
        ("Ubuntu:22.04:LTS", Some(Scheme::Debian)),
        ("Alpine:v3.20", Some(Scheme::Alpine)),
        ("Red Hat", Some(Scheme::Rpm)),
        ("Pub", Some(Scheme::Pub)),
        ("GIT", None),
        ("pypi", None),
    ];
    for (eco, want) in cases {
        assert_eq!(Scheme::for_ecosystem(eco), want, "{eco}");
    }
}

/// Mutated inputs (inserted and deleted characters, including non-ASCII) never
/// panic in any scheme, and whenever both sides parse, `compare(a, b)` is the
/// reverse of `compare(b, a)` and a version equals itself.
#[test]
fn mutated_versions_never_panic_and_order_antisymmetrically() {
    let seeds = [
        "1.2.3-rc.1+build",
        "1!2.0.post1.dev3+local.7",
        "1.0-alpha-1-SNAPSHOT",
        "2:1.2.3-1~deb12u1",
        "1.2.3_rc1-r4",
        "1:4.2-3.el9_1^git",
        "v1.0.0-0.20191109021931-daa7c04131f5",
        "1.0.0.rc2",
    ];
    let inserts = [
        '.', '-', '_', '+', '~', '^', ':', '!', '0', '9', 'a', 'r', 'Z', 'é', ' ',
    ];
    let mut mutated: Vec<String> = Vec::new();
    for seed in seeds {
        let chars: Vec<char> = seed.chars().collect();
        for i in 0..=chars.len() {
            for c in inserts {
                let mut m = chars.clone();
                m.insert(i, c);
                mutated.push(m.into_iter().collect());
            }
            if i < chars.len() {
                let mut m = chars.clone();
                m.remove(i);
                mutated.push(m.into_iter().collect());
            }
        }
    }
    for scheme in Scheme::ALL {
        let parsed: Vec<Version> = mutated
            .iter()
            .filter_map(|s| Version::parse(scheme, s).ok())
            .collect();
        for (i, a) in parsed.iter().enumerate() {
            assert_eq!(a.compare(a), Some(Ordering::Equal), "{scheme}: {a}");
            // Compare with a window of neighbours to keep the test quick.
            for b in parsed.iter().skip(i + 1).take(24) {
                let ab = a.compare(b).unwrap();
                let ba = b.compare(a).unwrap();
                assert_eq!(ab, ba.reverse(), "{scheme}: {a} vs {b}");
            }
        }
    }
}

/// `compare_text` (no `Version` built for dpkg and SemVer) orders every pair
/// as `compare` of the parsed text does, and is `None` exactly where the text
/// does not parse.
#[test]
fn compare_text_orders_as_compare_of_the_parsed_text() {
    let semver = [
        "0",
        "0.0",
        "0.1.0",
        "00.1.0",
        "v1.2.3",
        "1.2.3-alpha",
        "1.2.3-alpha.1",
        "1.2.3-alpha.beta",
        "1.2.3-1",
        "1.2.3-01",
        "1.2.3-1.2",
        "1.2.3-rc.10",
        "1.2.3-rc.9",
        "1.2.3+build",
        "1.2.3-a+b.c",
        "1.2",
        "1.2.3.4",
        "v0.0.0-20191109021931-daa7c04131f5",
        "1..2",
        "1.2.x",
        "1.2.3-",
        "1.2.3-a..b",
        "1.2.3+",
        "1.2.3-ä",
        " 1.2.3 ",
        "",
        "-1",
        "1.2.3-a_b",
        "1.",
        ".1",
        "1.2.3.",
        "01.2.03",
        "1.2.3",
        "1.2.10",
        "10.0.0",
        "0.0.0",
        "1.2.0",
        "1.2.3.0",
        "18446744073709551616.0.0",
        "0.0.0-0",
        "1.2.3-rc.1",
        "1.2.3-rc-1",
        "1.2.3--",
        "1.2.3-.a",
        "1.2.3-a.",
        "1.2.3-0.a.b-c",
        "1.2.3-0",
        "1-2",
        "1.-2",
        "-",
        "1.2.3-A",
        "  ",
        "\t1.0.0",
    ];
    let debian = [
        "0",
        "1:0",
        "1.0-1",
        "1.0~rc1-1",
        "2:1.0",
        "1.0-1+b1",
        "a b",
        "",
        ":1",
        "1.0-",
    ];
    for (scheme, list) in [(Scheme::Semver, &semver[..]), (Scheme::Debian, &debian[..])] {
        for a in list {
            let Ok(va) = Version::parse(scheme, a) else {
                continue;
            };
            for b in list {
                let want = Version::parse(scheme, b)
                    .ok()
                    .and_then(|vb| va.compare(&vb));
                assert_eq!(va.compare_text(b), want, "{scheme} {a:?} vs {b:?}");
            }
        }
    }
}
