//! The lockfile and package-database parsers against small fixtures per ecosystem
//! (tests/data/<case>/), their truncated and garbage variants, package URL encoding,
//! licence parsing, and the tree scan.

use std::path::Path;

use cairn_sbom::{FileKind, Licence, ParseError, parse_file, parse_licence, purl, scan_tree};

fn data(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn lic(l: &Licence) -> String {
    match l {
        Licence::Expression(e) => e.clone(),
        Licence::Unknown(raw) => format!("unknown:{raw}"),
        Licence::NotGiven => "-".into(),
    }
}

/// Parses `rel` as `kind` and compares `purl licence` lines (in the parser's order).
fn check(kind: FileKind, rel: &str, expect: &[&str]) {
    let distro = if kind == FileKind::ApkInstalled {
        "alpine"
    } else {
        "debian"
    };
    let out = parse_file(kind, rel, &data(rel), distro).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let got: Vec<String> = out
        .components
        .iter()
        .map(|c| format!("{} {}", c.purl, lic(&c.licence)))
        .collect();
    assert_eq!(got, expect, "{rel}");
    for c in &out.components {
        assert_eq!(c.source_file, rel);
    }
}

#[test]
fn cargo_lock_v4() {
    check(
        FileKind::CargoLock,
        "cargo/Cargo.lock",
        &[
            "pkg:cargo/serde@1.0.210 -",
            "pkg:cargo/serde_derive@1.0.210 -",
            "pkg:cargo/smallvec@0.6.14 -",
            "pkg:cargo/smallvec@1.13.2 -",
        ],
    );
    let out = parse_file(
        FileKind::CargoLock,
        "Cargo.lock",
        &data("cargo/Cargo.lock"),
        "debian",
    )
    .unwrap();
    assert_eq!(
        out.components[0].dependencies,
        ["pkg:cargo/serde_derive@1.0.210"]
    );
    assert_eq!(
        out.notes.len(),
        1,
        "the path crate `demo` is noted: {:?}",
        out.notes
    );
}

#[test]
fn cargo_lock_v1_with_metadata_checksums() {
    check(
        FileKind::CargoLock,
        "cargo/Cargo.v1.lock",
        &["pkg:cargo/libc@0.2.40 -"],
    );
}

#[test]
fn cargo_lock_future_version_is_refused() {
    let text = String::from_utf8(data("cargo/Cargo.lock"))
        .unwrap()
        .replace("version = 4", "version = 9");
    let err = parse_file(FileKind::CargoLock, "Cargo.lock", text.as_bytes(), "debian").unwrap_err();
    assert!(
        matches!(err, ParseError::UnsupportedVersion { .. }),
        "{err}"
    );
}

#[test]
fn cargo_lock_dangling_dependency_is_an_error() {
    let text = String::from_utf8(data("cargo/Cargo.lock"))
        .unwrap()
        .replace(" \"serde_derive\",", " \"serde_derivx\",");
    let err = parse_file(FileKind::CargoLock, "Cargo.lock", text.as_bytes(), "debian").unwrap_err();
    assert!(err.to_string().contains("serde_derivx"), "{err}");
}

#[test]
fn npm_package_lock_v3() {
    check(
        FileKind::NpmLock,
        "npm/package-lock.json",
        &[
            "pkg:npm/%40babel/core@7.24.5 MIT",
            "pkg:npm/semver@6.3.1 ISC",
            "pkg:npm/debug@4.3.4 MIT",
            "pkg:npm/lodash@4.17.21 MIT",
            "pkg:npm/weird@1.0.0 unknown:SEE LICENSE IN LICENSE.txt",
        ],
    );
    let out = parse_file(
        FileKind::NpmLock,
        "package-lock.json",
        &data("npm/package-lock.json"),
        "debian",
    )
    .unwrap();
    assert_eq!(out.components[0].namespace.as_deref(), Some("@babel"));
    assert_eq!(out.components[0].full_name(), "@babel/core");
    assert_eq!(
        out.notes.len(),
        2,
        "workspace package and link are noted: {:?}",
        out.notes
    );
}

#[test]
fn npm_lockfile_v1_is_refused() {
    let v1 = br#"{"name":"x","lockfileVersion":1,"dependencies":{"a":{"version":"1.0.0"}}}"#;
    let err = parse_file(FileKind::NpmLock, "package-lock.json", v1, "debian").unwrap_err();
    assert!(
        matches!(err, ParseError::UnsupportedVersion { .. }),
        "{err}"
    );
}

#[test]
fn poetry_lock() {
    check(
        FileKind::PoetryLock,
        "poetry/poetry.lock",
        &[
            "pkg:pypi/flask@3.0.3 -",
            "pkg:pypi/typing-extensions@4.12.2 -",
        ],
    );
}

#[test]
fn uv_lock() {
    check(
        FileKind::UvLock,
        "uv/uv.lock",
        &[
            "pkg:pypi/charset-normalizer@3.3.2 -",
            "pkg:pypi/requests@2.32.3 -",
        ],
    );
}

#[test]
fn requirements_txt_pins_hashes_markers_continuations() {
    check(
        FileKind::Requirements,
        "requirements/requirements.txt",
        &[
            "pkg:pypi/django@4.2.13 -",
            "pkg:pypi/requests@2.32.3 -",
            "pkg:pypi/zope-interface@6.4.post2 -",
        ],
    );
    let out = parse_file(
        FileKind::Requirements,
        "r.txt",
        &data("requirements/requirements.txt"),
        "debian",
    )
    .unwrap();
    let notes: Vec<String> = out
        .notes
        .iter()
        .map(|(l, m)| format!("{}: {m}", l.unwrap_or(0)))
        .collect();
    assert_eq!(
        notes,
        [
            "2: option line left out: --index-url",
            "10: pyyaml is not pinned with == (left out)",
            "11: option line left out: -e"
        ]
    );
}

#[test]
fn go_mod_with_replace() {
    check(
        FileKind::GoMod,
        "go/go.mod",
        &[
            "pkg:golang/github.com/BurntSushi/toml@v1.3.2 -",
            "pkg:golang/github.com/pkg/errors@v0.9.1 -",
            "pkg:golang/golang.org/x/text@v0.15.0 -",
            "pkg:golang/gopkg.in/yaml.v3@v3.0.1 -",
        ],
    );
}

#[test]
fn go_sum_lists_modules_with_code() {
    check(
        FileKind::GoSum,
        "go/go.sum",
        &[
            "pkg:golang/github.com/BurntSushi/toml@v1.3.2 -",
            "pkg:golang/github.com/pkg/errors@v0.9.1 -",
            "pkg:golang/golang.org/x/text@v0.15.0 -",
            "pkg:golang/gopkg.in/yaml.v3@v3.0.1 -",
        ],
    );
}

#[test]
fn gemfile_lock() {
    check(
        FileKind::GemfileLock,
        "ruby/Gemfile.lock",
        &[
            "pkg:gem/actionpack@7.1.3.4 -",
            "pkg:gem/nokogiri@1.16.6?platform=x86_64-linux -",
            "pkg:gem/racc@1.8.0 -",
            "pkg:gem/rack@3.1.7 -",
        ],
    );
}

#[test]
fn composer_lock_with_dev_packages() {
    check(
        FileKind::ComposerLock,
        "composer/composer.lock",
        &[
            "pkg:composer/monolog/monolog@3.6.0 MIT",
            "pkg:composer/symfony/polyfill-mbstring@v1.30.0 MIT OR Apache-2.0",
            "pkg:composer/phpunit/phpunit@10.5.20 BSD-3-Clause",
        ],
    );
}

#[test]
fn maven_pom_explicit_versions() {
    check(
        FileKind::PomXml,
        "maven-pom/pom.xml",
        &[
            "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.17.1 -",
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1 -",
            "pkg:maven/com.example/shop-api@2.1.0 -",
        ],
    );
    let out = parse_file(
        FileKind::PomXml,
        "pom.xml",
        &data("maven-pom/pom.xml"),
        "debian",
    )
    .unwrap();
    assert_eq!(out.notes.len(), 1, "junit has no version: {:?}", out.notes);
}

#[test]
fn maven_dependency_list_output() {
    check(
        FileKind::MavenDependencyList,
        "maven-list/dependency-list.txt",
        &[
            "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.17.1 -",
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1 -",
            "pkg:maven/io.netty/netty-transport-native-epoll@4.1.111.Final -",
        ],
    );
}

#[test]
fn dpkg_status_installed_only_with_source() {
    check(
        FileKind::DpkgStatus,
        "dpkg/status",
        &[
            "pkg:deb/debian/base-files@12.4%2Bdeb12u6?arch=amd64 -",
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64 -",
            "pkg:deb/debian/bsdutils@1:2.38.1-5%2Bb1?arch=amd64 -",
        ],
    );
    let out = parse_file(
        FileKind::DpkgStatus,
        "var/lib/dpkg/status",
        &data("dpkg/status"),
        "debian",
    )
    .unwrap();
    let src: Vec<String> = out
        .components
        .iter()
        .map(|c| {
            c.source_package
                .as_ref()
                .map(|s| format!("{} {}", s.name, s.version))
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        src,
        [
            "base-files 12.4+deb12u6",
            "glibc 2.36-9+deb12u7",
            "util-linux 2.38.1-5"
        ]
    );
    assert_eq!(out.notes.len(), 1, "removed-tool is noted: {:?}", out.notes);
}

#[test]
fn apk_installed() {
    check(
        FileKind::ApkInstalled,
        "apk/installed",
        &[
            "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64 MIT",
            "pkg:apk/alpine/busybox@1.36.1-r29?arch=x86_64 GPL-2.0-only",
            "pkg:apk/alpine/ssl_client@1.36.1-r29?arch=x86_64 unknown:GPL-2.0-only LGPL-2.1",
        ],
    );
}

/// Every fixture with the file kind it is parsed as.
const FIXTURES: &[(FileKind, &str)] = &[
    (FileKind::CargoLock, "cargo/Cargo.lock"),
    (FileKind::CargoLock, "cargo/Cargo.v1.lock"),
    (FileKind::NpmLock, "npm/package-lock.json"),
    (FileKind::PoetryLock, "poetry/poetry.lock"),
    (FileKind::UvLock, "uv/uv.lock"),
    (FileKind::Requirements, "requirements/requirements.txt"),
    (FileKind::GoMod, "go/go.mod"),
    (FileKind::GoSum, "go/go.sum"),
    (FileKind::GemfileLock, "ruby/Gemfile.lock"),
    (FileKind::ComposerLock, "composer/composer.lock"),
    (FileKind::PomXml, "maven-pom/pom.xml"),
    (
        FileKind::MavenDependencyList,
        "maven-list/dependency-list.txt",
    ),
    (FileKind::DpkgStatus, "dpkg/status"),
    (FileKind::ApkInstalled, "apk/installed"),
];

/// Formats whose syntax closes every value (strings, tables, elements).
fn structured(kind: FileKind) -> bool {
    matches!(
        kind,
        FileKind::CargoLock
            | FileKind::NpmLock
            | FileKind::PoetryLock
            | FileKind::UvLock
            | FileKind::ComposerLock
            | FileKind::PomXml
    )
}

/// Every prefix of every fixture: no panic, and never a component the whole file
/// does not have (a cut can only lose components, not invent or alter them). For
/// line formats this holds at line ends; a cut inside the last line's version
/// (`Django==4.2.13` → `Django==4`) reads as a shorter, valid version, which no
/// line-oriented parser can tell apart, so those cuts are only checked not to panic.
#[test]
fn every_prefix_is_an_error_or_a_subset() {
    for (kind, rel) in FIXTURES {
        let full = data(rel);
        let distro = if *kind == FileKind::ApkInstalled {
            "alpine"
        } else {
            "debian"
        };
        let whole = parse_file(*kind, rel, &full, distro).unwrap();
        let all: Vec<String> = whole.components.iter().map(|c| c.purl.clone()).collect();
        // go.mod's later `replace` lines change or drop earlier requirements, so a
        // cut before them rightly lists what the cut file says: only no-panic there.
        let subset = *kind != FileKind::GoMod;
        for cut in 0..full.len() {
            let at_line_end = cut == 0 || full[cut - 1] == b'\n';
            if !subset || (!structured(*kind) && !at_line_end) {
                let _ = parse_file(*kind, rel, &full[..cut], distro);
                continue;
            }
            if let Ok(out) = parse_file(*kind, rel, &full[..cut], distro) {
                for c in out.components {
                    assert!(
                        all.contains(&c.purl),
                        "{rel} cut at {cut}: invented {}",
                        c.purl
                    );
                }
            }
        }
    }
}

/// Corrupted on purpose: each fixture with one byte changed at many places (a bit
/// flip, a NUL, a newline, a quote). The parser must not panic, and whatever it
/// accepts must still be well-formed components: a name, a version and a purl of the
/// fixture's type, from the file it was given.
#[test]
fn corrupted_bytes_never_panic_and_never_yield_malformed_components() {
    for (kind, rel) in FIXTURES {
        let full = data(rel);
        let distro = if *kind == FileKind::ApkInstalled {
            "alpine"
        } else {
            "debian"
        };
        let whole = parse_file(*kind, rel, &full, distro).unwrap();
        let purl_type = whole.components[0]
            .purl
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let mut accepted = 0usize;
        let mut rejected = 0usize;
        for at in (0..full.len()).step_by(3) {
            for replacement in [full[at] ^ 0x01, 0, b'\n', b'"', b'=', b' '] {
                let mut bytes = full.clone();
                bytes[at] = replacement;
                match parse_file(*kind, rel, &bytes, distro) {
                    Err(_) => rejected += 1,
                    Ok(out) => {
                        accepted += 1;
                        for c in out.components {
                            assert!(
                                !c.name.is_empty() && !c.version.is_empty(),
                                "{rel} @{at}: {c:?}"
                            );
                            assert!(!c.name.contains(char::is_whitespace), "{rel} @{at}: {c:?}");
                            assert!(
                                c.purl.starts_with(&format!("{purl_type}/")),
                                "{rel} @{at}: {}",
                                c.purl
                            );
                            assert_eq!(c.source_file, *rel);
                        }
                    }
                }
            }
        }
        assert!(
            rejected > 0,
            "{rel}: no corruption was ever rejected ({accepted} accepted)"
        );
    }
}

/// Structured formats (JSON, XML) cut anywhere before their last closing token are errors.
#[test]
fn truncated_json_and_xml_are_always_errors() {
    for (kind, rel) in [
        (FileKind::NpmLock, "npm/package-lock.json"),
        (FileKind::ComposerLock, "composer/composer.lock"),
        (FileKind::PomXml, "maven-pom/pom.xml"),
    ] {
        let full = data(rel);
        let end = full.iter().rposition(|b| !b.is_ascii_whitespace()).unwrap();
        for cut in 0..end {
            assert!(
                parse_file(kind, rel, &full[..cut], "debian").is_err(),
                "{rel} cut at {cut} parsed"
            );
        }
    }
}

/// A cut at a chosen point that each format can detect: an error naming the problem.
#[test]
fn truncated_variants_are_errors() {
    let cut = |rel: &str, marker: &str| -> Vec<u8> {
        let full = String::from_utf8(data(rel)).unwrap();
        let at = full
            .find(marker)
            .unwrap_or_else(|| panic!("{marker:?} not in {rel}"))
            + marker.len();
        full.as_bytes()[..at].to_vec()
    };
    let cases: &[(FileKind, &str, &str, &str)] = &[
        (
            FileKind::CargoLock,
            "cargo/Cargo.lock",
            "name = \"smallvec\"\nversion = \"0.6",
            "TOML",
        ),
        (
            FileKind::CargoLock,
            "cargo/Cargo.lock",
            "dependencies = [\n \"serde\",",
            "TOML",
        ),
        (
            FileKind::PoetryLock,
            "poetry/poetry.lock",
            "name = \"typing_extensions\"",
            "TOML",
        ),
        (
            FileKind::PoetryLock,
            "poetry/poetry.lock",
            "url = \"../mylib\"\n",
            "metadata",
        ),
        (
            FileKind::UvLock,
            "uv/uv.lock",
            "name = \"requests\"\n",
            "TOML",
        ),
        (
            FileKind::Requirements,
            "requirements/requirements.txt",
            "Django==4.2.13 \\\n",
            "continuation",
        ),
        (
            FileKind::Requirements,
            "requirements/requirements.txt",
            "requests[soc",
            "extras",
        ),
        (
            FileKind::Requirements,
            "requirements/requirements.txt",
            "zope.interface===6.",
            "version",
        ),
        (
            FileKind::GoMod,
            "go/go.mod",
            "golang.org/x/text v0.14.0\n",
            "never closed",
        ),
        (
            FileKind::GoMod,
            "go/go.mod",
            "github.com/pkg/errors v0",
            "require",
        ),
        (FileKind::GoSum, "go/go.sum", "v1.3.2 h1:o7IhLm0M", "hash"),
        (
            FileKind::GemfileLock,
            "ruby/Gemfile.lock",
            "    racc (1.8.0)\n",
            "DEPENDENCIES",
        ),
        (
            FileKind::GemfileLock,
            "ruby/Gemfile.lock",
            "    nokogiri (1.16",
            "unclosed version",
        ),
        (
            FileKind::MavenDependencyList,
            "maven-list/dependency-list.txt",
            "com.fasterxml.jackson.core:jackson-data",
            "expected group",
        ),
        (
            FileKind::DpkgStatus,
            "dpkg/status",
            "Package: bsdutils\nStatus: install ok installed\n",
            "without",
        ),
        (
            FileKind::DpkgStatus,
            "dpkg/status",
            "Package: libc6\nStatus: install ok",
            "Status",
        ),
        (
            FileKind::ApkInstalled,
            "apk/installed",
            "P:busybox\nV:1.36.1-r",
            "without A:",
        ),
        (FileKind::ApkInstalled, "apk/installed", "P:busybox\n", "V:"),
    ];
    for (kind, rel, marker, expect) in cases {
        let bytes = cut(rel, marker);
        match parse_file(*kind, rel, &bytes, "debian") {
            Ok(out) => panic!(
                "{rel} cut after {marker:?} parsed: {:?}",
                out.components.len()
            ),
            Err(e) => {
                let text = format!(
                    "{e} {:?}",
                    std::error::Error::source(&e).map(std::string::ToString::to_string)
                );
                assert!(text.contains(expect), "{rel} cut after {marker:?}: {text}");
            }
        }
    }
}

#[test]
fn garbage_is_an_error_for_every_kind() {
    let kinds = FileKind::ALL;
    let garbage: &[&[u8]] = &[
        b"\x00\x01\x02\xff\xfe binary \x89PNG",
        b"hello world, this is not a lockfile\nat all }{ ][\n",
        b"{\"unexpected\": [1, 2, 3]}",
    ];
    for kind in kinds {
        for g in garbage {
            assert!(
                parse_file(kind, "f", g, "debian").is_err(),
                "{kind:?} accepted {:?}",
                String::from_utf8_lossy(g)
            );
        }
    }
}

#[test]
fn empty_files() {
    // An empty requirements.txt or go.sum is a project without dependencies; every
    // other format always has content, so empty means broken.
    for kind in [FileKind::Requirements, FileKind::GoSum] {
        let out = parse_file(kind, "f", b"", "debian").unwrap();
        assert!(out.components.is_empty());
    }
    for kind in [
        FileKind::CargoLock,
        FileKind::NpmLock,
        FileKind::PoetryLock,
        FileKind::UvLock,
        FileKind::GoMod,
        FileKind::GemfileLock,
        FileKind::ComposerLock,
        FileKind::PomXml,
        FileKind::MavenDependencyList,
        FileKind::DpkgStatus,
        FileKind::ApkInstalled,
    ] {
        assert!(
            parse_file(kind, "f", b"", "debian").is_err(),
            "{kind:?} accepted an empty file"
        );
    }
}

#[test]
fn bounds_size_and_depth() {
    let big = vec![b' '; cairn_sbom::MAX_FILE_BYTES + 1];
    let err = parse_file(FileKind::Requirements, "r.txt", &big, "debian").unwrap_err();
    assert!(matches!(err, ParseError::TooLarge { .. }), "{err}");
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let err = parse_file(
        FileKind::NpmLock,
        "package-lock.json",
        deep.as_bytes(),
        "debian",
    )
    .unwrap_err();
    assert!(matches!(err, ParseError::TooDeep { .. }), "{err}");
    let deep_toml = format!("a = {}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(
        parse_file(
            FileKind::CargoLock,
            "Cargo.lock",
            deep_toml.as_bytes(),
            "debian"
        )
        .is_err()
    );
    let deep_xml = format!(
        "<project>{}{}</project>",
        "<a>".repeat(100_000),
        "</a>".repeat(100_000)
    );
    let err = parse_file(FileKind::PomXml, "pom.xml", deep_xml.as_bytes(), "debian").unwrap_err();
    assert!(matches!(err, ParseError::TooDeep { .. }), "{err}");
}

#[test]
fn purl_encoding() {
    let cases: &[(String, &str)] = &[
        (
            purl::npm("@Angular/Core", "17.0.0"),
            "pkg:npm/%40angular/core@17.0.0",
        ),
        (purl::npm("lodash", "4.17.21"), "pkg:npm/lodash@4.17.21"),
        (
            purl::pypi("Django_REST.framework", "3.15.1"),
            "pkg:pypi/django-rest-framework@3.15.1",
        ),
        (
            purl::pypi("zope.interface", "1.0+local.1"),
            "pkg:pypi/zope-interface@1.0%2Blocal.1",
        ),
        (
            purl::cargo("serde_json", "1.0.0-rc.1"),
            "pkg:cargo/serde_json@1.0.0-rc.1",
        ),
        (
            purl::golang("github.com/Azure/azure-sdk-for-go/sdk/azcore", "v1.11.1"),
            "pkg:golang/github.com/Azure/azure-sdk-for-go/sdk/azcore@v1.11.1",
        ),
        (
            purl::golang("golang.org/x/net", "v0.0.0-20240101000000-abcdefabcdef"),
            "pkg:golang/golang.org/x/net@v0.0.0-20240101000000-abcdefabcdef",
        ),
        (
            purl::gem("nokogiri", "1.16.6", Some("x86_64-linux")),
            "pkg:gem/nokogiri@1.16.6?platform=x86_64-linux",
        ),
        (
            purl::composer("Laravel/Framework", "v11.0.0"),
            "pkg:composer/laravel/framework@v11.0.0",
        ),
        (
            purl::maven("org.apache.commons", "commons-lang3", "3.14.0"),
            "pkg:maven/org.apache.commons/commons-lang3@3.14.0",
        ),
        (
            purl::deb("debian", "libc6", "2.36-9+deb12u7", Some("amd64")),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64",
        ),
        (
            purl::deb("ubuntu", "bsdutils", "1:2.39.3-9ubuntu6", Some("amd64")),
            "pkg:deb/ubuntu/bsdutils@1:2.39.3-9ubuntu6?arch=amd64",
        ),
        (
            purl::apk("alpine", "musl", "1.2.5-r0", Some("x86_64")),
            "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64",
        ),
        (
            purl::build(
                "generic",
                None,
                "a b/c",
                Some("1 2"),
                &[("z", "1"), ("A", "x y"), ("e", "")],
            ),
            "pkg:generic/a%20b%2Fc@1%202?a=x%20y&z=1",
        ),
        (
            purl::build("npm", Some("@s"), "n", Some("1@2#3?4"), &[]),
            "pkg:npm/%40s/n@1%402%233%3F4",
        ),
        (purl::encode("ü"), "%C3%BC"),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
}

#[test]
fn licence_expressions() {
    let cases: &[(&str, Licence)] = &[
        ("MIT", Licence::Expression("MIT".into())),
        (
            "MIT OR Apache-2.0",
            Licence::Expression("MIT OR Apache-2.0".into()),
        ),
        (
            "(MIT OR Apache-2.0) AND BSD-3-Clause",
            Licence::Expression("(MIT OR Apache-2.0) AND BSD-3-Clause".into()),
        ),
        (
            "Apache-2.0 WITH LLVM-exception",
            Licence::Expression("Apache-2.0 WITH LLVM-exception".into()),
        ),
        (
            "MIT/Apache-2.0",
            Licence::Expression("MIT OR Apache-2.0".into()),
        ),
        ("GPL-2.0+", Licence::Expression("GPL-2.0-or-later".into())),
        (
            "LicenseRef-Proprietary",
            Licence::Expression("LicenseRef-Proprietary".into()),
        ),
        ("  ", Licence::NotGiven),
        ("", Licence::NotGiven),
        ("NOASSERTION", Licence::NotGiven),
        ("MIT OR", Licence::Unknown("MIT OR".into())),
        ("(MIT", Licence::Unknown("(MIT".into())),
        (
            "GPL-2.0-only LGPL-2.1",
            Licence::Unknown("GPL-2.0-only LGPL-2.1".into()),
        ),
        (
            "SEE LICENSE IN LICENSE",
            Licence::Unknown("SEE LICENSE IN LICENSE".into()),
        ),
        (
            "Totally-Made-Up-1.0",
            Licence::Unknown("Totally-Made-Up-1.0".into()),
        ),
    ];
    for (raw, want) in cases {
        assert_eq!(&parse_licence(raw), want, "{raw:?}");
    }
    assert!(!parse_licence("MIT").is_finding());
    assert!(parse_licence("bogus licence").is_finding());
    assert!(parse_licence("").is_finding());
}

fn tree_files() -> Vec<(String, Vec<u8>)> {
    let f = |p: &str, rel: &str| (p.to_string(), data(rel));
    vec![
        f("./Cargo.lock", "cargo/Cargo.lock"),
        f("web/package-lock.json", "npm/package-lock.json"),
        f(
            "web/node_modules/lodash/package-lock.json",
            "npm/package-lock.json",
        ),
        f("svc/go.mod", "go/go.mod"),
        f("svc/go.sum", "go/go.sum"),
        f("svc/vendor/github.com/x/y/go.mod", "go/go.mod"),
        f("py/requirements-dev.txt", "requirements/requirements.txt"),
        f("/var/lib/dpkg/status", "dpkg/status"),
        (
            "etc/os-release".into(),
            b"PRETTY_NAME=\"Ubuntu 24.04\"\nID=ubuntu\nVERSION_ID=\"24.04\"\n".to_vec(),
        ),
        ("broken/composer.lock".into(), b"{\"packages\": [".to_vec()),
        ("README.md".into(), b"# hi".to_vec()),
        ("missing/Gemfile.lock".into(), Vec::new()),
    ]
}

#[test]
fn scan_tree_finds_skips_and_reports() {
    let files = tree_files();
    let read = |p: &str| -> Option<Vec<u8>> {
        if p == "missing/Gemfile.lock" {
            return None;
        }
        files.iter().find(|(q, _)| q == p).map(|(_, b)| b.clone())
    };
    let report = scan_tree(files.iter().map(|(p, _)| p.as_str()), &read);
    let parsed: Vec<(&str, usize)> = report
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.components))
        .collect();
    assert_eq!(
        parsed,
        [
            ("./Cargo.lock", 4),
            ("/var/lib/dpkg/status", 3),
            ("py/requirements-dev.txt", 3),
            ("svc/go.mod", 4),
            ("svc/go.sum", 0),
            ("web/package-lock.json", 5),
        ]
    );
    let errors: Vec<(&str, FileKind)> = report
        .errors
        .iter()
        .map(|e| (e.path.as_str(), e.kind))
        .collect();
    assert_eq!(
        errors,
        [
            ("broken/composer.lock", FileKind::ComposerLock),
            ("missing/Gemfile.lock", FileKind::GemfileLock)
        ]
    );
    assert!(matches!(report.errors[1].error, ParseError::Unreadable));
    assert_eq!(report.components.len(), 19);
    let purls: Vec<&str> = report.components.iter().map(|c| c.purl.as_str()).collect();
    let mut sorted = purls.clone();
    sorted.sort();
    assert_eq!(purls, sorted, "components come sorted by purl");
    assert!(
        purls.contains(
            &"pkg:deb/ubuntu/libc6@2.36-9%2Bdeb12u7?arch=amd64&distro=ubuntu-24.04&upstream=glibc"
        ),
        "os-release names the distro and its release, the source package is upstream: {purls:?}"
    );
    assert!(report.notes.iter().any(|n| n.path == "svc/go.sum"));
}

#[test]
fn detect_paths() {
    use cairn_sbom::detect;
    let cases: &[(&str, Option<FileKind>)] = &[
        ("Cargo.lock", Some(FileKind::CargoLock)),
        ("a/b/Cargo.lock", Some(FileKind::CargoLock)),
        ("var/lib/dpkg/status", Some(FileKind::DpkgStatus)),
        ("/var/lib/dpkg/status", Some(FileKind::DpkgStatus)),
        ("./lib/apk/db/installed", Some(FileKind::ApkInstalled)),
        ("x/var/lib/dpkg/status", None),
        ("node_modules/a/package-lock.json", None),
        ("app/vendor/composer.lock", None),
        ("requirements/prod.txt", None),
        ("requirements-prod.txt", Some(FileKind::Requirements)),
        ("usr/lib/python3/dist-packages/x/requirements.txt", None),
        ("gems.locked", Some(FileKind::GemfileLock)),
        ("npm-shrinkwrap.json", Some(FileKind::NpmLock)),
        ("Cargo.toml", None),
    ];
    for (p, want) in cases {
        assert_eq!(detect(p), *want, "{p}");
    }
}

/// This machine's real dpkg database, read by the test (the crate itself does no I/O).
#[test]
fn host_dpkg_status() {
    let bytes =
        std::fs::read("/var/lib/dpkg/status").expect("this Debian host has /var/lib/dpkg/status");
    let out = parse_file(
        FileKind::DpkgStatus,
        "var/lib/dpkg/status",
        &bytes,
        "debian",
    )
    .unwrap();
    assert!(
        out.components.len() > 50,
        "{} packages",
        out.components.len()
    );
    let text = String::from_utf8(bytes).unwrap();
    for name in ["dpkg", "bash"] {
        let para = text
            .split("\n\n")
            .find(|p| p.lines().any(|l| l == format!("Package: {name}")))
            .unwrap_or_else(|| panic!("{name} in the host database"));
        let version = para
            .lines()
            .find_map(|l| l.strip_prefix("Version: "))
            .unwrap();
        let c = out
            .components
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("{name} parsed"));
        assert_eq!(c.version, version);
        assert!(
            c.purl.starts_with(&format!("pkg:deb/debian/{name}@")),
            "{}",
            c.purl
        );
    }
}

/// Small inline inputs: one `check_inline(kind, text, expect)` per edge case.
fn check_inline(kind: FileKind, text: &str, expect: &[&str]) {
    let distro = if kind == FileKind::ApkInstalled {
        "alpine"
    } else {
        "debian"
    };
    let out =
        parse_file(kind, "f", text.as_bytes(), distro).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    let got: Vec<String> = out
        .components
        .iter()
        .map(|c| format!("{} {}", c.purl, lic(&c.licence)))
        .collect();
    assert_eq!(got, expect, "{text:?}");
}

#[test]
fn inline_edge_cases() {
    use FileKind::*;
    check_inline(
        Requirements,
        "Flask[async,dotenv]==3.0.3\n",
        &["pkg:pypi/flask@3.0.3 -"],
    );
    check_inline(
        Requirements,
        "numpy==1.26.4 ; python_version < \"3.13\" --hash=sha256:abc\n",
        &["pkg:pypi/numpy@1.26.4 -"],
    );
    check_inline(
        Requirements,
        "Foo_Bar.baz==1.0  # why\nwheel @ https://x.example/w.whl\nx==1.*\n",
        &["pkg:pypi/foo-bar-baz@1.0 -"],
    );
    check_inline(Requirements, "\t\n# only comments\n", &[]);
    check_inline(
        GoMod,
        "module m\nrequire github.com/a/b v1.2.3 // indirect\nreplace github.com/a/b v1.2.3 => github.com/c/d v1.0.0\n",
        &["pkg:golang/github.com/c/d@v1.0.0 -"],
    );
    check_inline(GoMod, "module m\n\ngo 1.22\n", &[]);
    check_inline(
        GemfileLock,
        "PATH\n  remote: .\n  specs:\n    mine (0.1.0)\n\nGEM\n  remote: https://rubygems.org/\n  specs:\n    rake (13.2.1)\n\nDEPENDENCIES\n  rake\n",
        &["pkg:gem/rake@13.2.1 -"],
    );
    check_inline(
        DpkgStatus,
        "Package: a\nStatus: install ok half-installed\nArchitecture: all\nVersion: 1\n\nPackage: b\nStatus: install ok installed\nArchitecture: all\nSource: bsrc\nVersion: 2.0-1\n",
        &["pkg:deb/debian/b@2.0-1?arch=all -"],
    );
    check_inline(
        ApkInstalled,
        "P:zlib\nV:1.3.1-r1\nA:aarch64\n",
        &["pkg:apk/alpine/zlib@1.3.1-r1?arch=aarch64 -"],
    );
    check_inline(
        ComposerLock,
        r#"{"packages":[{"name":"acme/x","version":"1.0.0","license":["proprietary"]}]}"#,
        &["pkg:composer/acme/x@1.0.0 unknown:proprietary"],
    );
    check_inline(
        NpmLock,
        r#"{"lockfileVersion":2,"packages":{"":{},"node_modules/alias":{"name":"@Scope/Real","version":"2.0.0","license":"(MIT OR Apache-2.0)"}}}"#,
        &["pkg:npm/%40scope/real@2.0.0 (MIT OR Apache-2.0)"],
    );
    check_inline(
        CargoLock,
        "version = 3\n[[package]]\nname = \"git-dep\"\nversion = \"0.1.0\"\nsource = \"git+https://example.com/x#abc\"\n",
        &["pkg:cargo/git-dep@0.1.0 -"],
    );
}

#[test]
fn inline_errors() {
    use FileKind::*;
    let cases: &[(FileKind, &str, &str)] = &[
        (Requirements, "flask==\n", "invalid version"),
        (Requirements, "==1.0\n", "invalid package name"),
        (
            GoMod,
            "module m\nrequire github.com/a/b 1.2.3\n",
            "bad require",
        ),
        (GoMod, "module m\nfrobnicate x\n", "unknown directive"),
        // Found by `cargo fuzz` (fuzz/fuzz_targets/parse_file.rs): a path ending in `/`
        // gave a component with an empty name.
        (
            GoMod,
            "module m\nrequire g.ortteg/xx/ v0.15.0\n",
            "bad require",
        ),
        (
            GoSum,
            "g.org/xx/ v0.15.0 h1:o7IhLm0Msx3BaB+n3Ag7L8EVlByGnpq14C4YWiu/gL8=\n",
            "bad module path",
        ),
        (
            GoSum,
            "github.com/a/b v1.0.0\n",
            "expected `module version hash`",
        ),
        (DpkgStatus, " continuation first\n", "continuation"),
        (
            DpkgStatus,
            "Package: a\nStatus: install ok installed\nArchitecture: all\nVersion: not-a-version\n",
            "invalid version",
        ),
        (
            ApkInstalled,
            "P:zlib\nV:1.3.1\nA:x86_64\n",
            "no -rN release",
        ),
        (
            ComposerLock,
            r#"{"packages":[{"name":"noslash","version":"1.0.0"}]}"#,
            "vendor/name",
        ),
        (
            NpmLock,
            r#"{"lockfileVersion":3,"packages":{"node_modules/x":{}}}"#,
            "no version",
        ),
        (
            NpmLock,
            r#"{"lockfileVersion":3,"packages":{"node_modules/x":{"version":"1 0"}}}"#,
            "invalid version",
        ),
        (UvLock, "version = 2\n", "unsupported format version"),
        (PomXml, "<notaproject/>", "<project>"),
        (
            PomXml,
            "<project><dependencies><dependency><artifactId>a</artifactId><version>1</version></dependency></dependencies></project>",
            "lacks groupId",
        ),
        (
            MavenDependencyList,
            "The following files have been resolved:\n   a:b:1.0\n",
            "expected group",
        ),
    ];
    for (kind, text, want) in cases {
        match parse_file(*kind, "f", text.as_bytes(), "debian") {
            Ok(out) => panic!("{kind:?} {text:?} parsed: {:?}", out.components),
            Err(e) => assert!(e.to_string().contains(want), "{kind:?} {text:?}: {e}"),
        }
    }
}

/// Inputs `cargo fuzz` once crashed on (tests/data/fuzz-crashes/), replayed the way
/// the fuzz target reads them: the first byte picks the kind, the rest is the file.
#[test]
fn fuzz_crashes_stay_fixed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz-crashes");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let (first, rest) = bytes.split_first().unwrap();
        let kind = FileKind::ALL[usize::from(*first) % FileKind::ALL.len()];
        if let Ok(out) = parse_file(kind, "fuzz", rest, "debian") {
            for c in out.components {
                assert!(
                    !c.name.is_empty() && !c.version.is_empty() && c.purl.starts_with("pkg:"),
                    "{c:?}"
                );
            }
        }
        n += 1;
    }
    assert!(n > 0, "no fuzz crash cases found");
}

/// What a dependency fetch installed: pip's `--target` directory and
/// `node_modules`, read from the installed packages' own metadata (real files:
/// pytest's and iniconfig's METADATA as pip wrote them, left-pad's and
/// @types/node's package.json from the npm registry).
#[test]
fn installed_package_metadata() {
    use cairn_sbom::{detect_installed, scan_installed};
    for (path, want) in [
        (
            ".deps/pytest-9.2.0.dist-info/METADATA",
            Some(FileKind::PythonDistInfo),
        ),
        (
            "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
            Some(FileKind::PythonDistInfo),
        ),
        (".dist-info/METADATA", None),
        ("pkg/METADATA", None),
        (
            "node_modules/left-pad/package.json",
            Some(FileKind::NpmInstalled),
        ),
        (
            "node_modules/@types/node/package.json",
            Some(FileKind::NpmInstalled),
        ),
        (
            "node_modules/a/node_modules/b/package.json",
            Some(FileKind::NpmInstalled),
        ),
        ("node_modules/left-pad/test/package.json", None),
        ("node_modules/@types/package.json", None),
        ("node_modules/.bin/package.json", None),
        ("package.json", None),
    ] {
        assert_eq!(detect_installed(path), want, "{path}");
    }
    check(
        FileKind::PythonDistInfo,
        "installed/.deps/pytest-9.2.0.dist-info/METADATA",
        &["pkg:pypi/pytest@9.2.0 MIT"],
    );
    check(
        FileKind::NpmInstalled,
        "installed/node_modules/@types/node/package.json",
        &["pkg:npm/%40types/node@20.11.0 MIT"],
    );
    // The plain scan reads lockfiles only; the installed scan reads both.
    let files = [
        "installed/.deps/pytest-9.2.0.dist-info/METADATA",
        "installed/.deps/iniconfig-2.3.1.dist-info/METADATA",
        "installed/node_modules/left-pad/package.json",
        "installed/node_modules/@types/node/package.json",
    ];
    let read = |p: &str| Some(data(p));
    assert!(scan_tree(files, &read).components.is_empty());
    let report = scan_installed(files, &read);
    let purls: Vec<&str> = report.components.iter().map(|c| c.purl.as_str()).collect();
    assert_eq!(
        purls,
        [
            "pkg:npm/%40types/node@20.11.0",
            "pkg:npm/left-pad@1.3.0",
            "pkg:pypi/iniconfig@2.3.1",
            "pkg:pypi/pytest@9.2.0"
        ]
    );
    // Broken metadata is a file error, not a silent pass.
    for (kind, bytes, why) in [
        (
            FileKind::PythonDistInfo,
            &b"Metadata-Version: 2.1\nVersion: 1\n"[..],
            "no Name",
        ),
        (
            FileKind::PythonDistInfo,
            b"Name: x y\nVersion: 1\n",
            "invalid package name",
        ),
        (FileKind::NpmInstalled, b"{\"name\": \"x\"}", "no version"),
        (FileKind::NpmInstalled, b"[[[[", "JSON"),
    ] {
        let err = parse_file(kind, "f", bytes, "debian")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(why) || err.to_lowercase().contains(&why.to_lowercase()),
            "{err}"
        );
    }
}
