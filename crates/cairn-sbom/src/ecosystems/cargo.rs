//! `Cargo.lock`, lockfile versions 1 to 4 (v1/v2 have no `version` key; v1 keeps
//! checksums under `[metadata]`). Path dependencies (no `source`) are the project's
//! own crates and are left out; their dependencies still resolve. A registry
//! crate's pinned archive checksum is kept ([`crate::Component::checksum`]).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Output, check_tokens, component};
use crate::component::Ecosystem;
use crate::error::ParseError;
use crate::{purl, text};

#[derive(Debug, PartialEq, Deserialize)]
struct Lock {
    version: Option<i64>,
    #[serde(default)]
    package: Vec<Package>,
    /// v1: `"checksum NAME VERSION (SOURCE)" = "HEX"`.
    #[serde(default)]
    metadata: BTreeMap<String, toml::Value>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Package {
    name: String,
    version: String,
    source: Option<String>,
    checksum: Option<String>,
    #[serde(default)]
    dependencies: Vec<String>,
}

/// A lockfile as [`parse`] reads it: every string borrowed, from the text (the
/// line reader) or from the [`Lock`] the TOML parser built, so the line reader
/// allocates no string per package.
#[derive(Debug, PartialEq)]
struct View<'a> {
    version: Option<i64>,
    package: Vec<Entry<'a>>,
    /// v1's `[metadata]`; `None` when there is none (the line reader's answer).
    metadata: Option<&'a BTreeMap<String, toml::Value>>,
}

#[derive(Debug, PartialEq)]
struct Entry<'a> {
    name: &'a str,
    version: &'a str,
    source: Option<&'a str>,
    checksum: Option<&'a str>,
    dependencies: Vec<&'a str>,
}

impl Lock {
    fn view(&self) -> View<'_> {
        View {
            version: self.version,
            package: self
                .package
                .iter()
                .map(|p| Entry {
                    name: &p.name,
                    version: &p.version,
                    source: p.source.as_deref(),
                    checksum: p.checksum.as_deref(),
                    dependencies: p.dependencies.iter().map(String::as_str).collect(),
                })
                .collect(),
            metadata: (!self.metadata.is_empty()).then_some(&self.metadata),
        }
    }
}

/// The layout cargo itself writes, read line by line (a third of `cairn scan`'s
/// own time went to the general TOML parser). `None` for anything else (escapes,
/// inline tables, `[metadata]`, comments after values, keys it does not know, a
/// key given twice): the general parser then reads the file, so the answer never
/// depends on which path read it.
fn canonical(text: &str) -> Option<View<'_>> {
    /// `key = "value"` with a plain basic string (no escapes, no quotes inside).
    fn string_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
        let rest = line.strip_prefix(key)?.strip_prefix(" = \"")?;
        let value = rest.strip_suffix('"')?;
        plain(value).then_some(value)
    }
    /// No quote, backslash or control character: read the same by any TOML parser.
    /// Printable ASCII (all a lockfile usually holds) is checked first, over
    /// the whole value without stopping early, which the compiler turns into a
    /// test of 16 bytes at a time (an early exit made it 12 instructions a
    /// byte); anything else is checked a byte at a time: the control characters
    /// are U+0000-U+001F and U+007F, one byte each, and U+0080-U+009F, encoded
    /// 0xC2 0x80-0x9F; no other character's encoding holds those bytes in that
    /// order.
    fn plain(value: &str) -> bool {
        let b = value.as_bytes();
        let printable = b.iter().fold(true, |ok, &c| {
            ok & (0x20..0x7f).contains(&c) & (c != b'"') & (c != b'\\')
        });
        if printable {
            return true;
        }
        !b.iter().enumerate().any(|(i, &c)| {
            c == b'"'
                || c == b'\\'
                || c < 0x20
                || c == 0x7f
                || (c == 0xc2 && b.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)))
        })
    }
    fn set<'a>(slot: &mut Option<&'a str>, value: &'a str) -> Option<()> {
        if slot.is_some() {
            return None;
        }
        *slot = Some(value);
        Some(())
    }
    #[derive(Default)]
    struct Building<'a> {
        name: Option<&'a str>,
        version: Option<&'a str>,
        source: Option<&'a str>,
        checksum: Option<&'a str>,
        dependencies: Option<Vec<&'a str>>,
    }
    fn finish(b: Building<'_>) -> Option<Entry<'_>> {
        Some(Entry {
            name: b.name?,
            version: b.version?,
            source: b.source,
            checksum: b.checksum,
            dependencies: b.dependencies.unwrap_or_default(),
        })
    }
    let mut version = None;
    let mut packages = Vec::new();
    let mut current: Option<Building<'_>> = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "[[package]]" {
            if let Some(b) = current.take() {
                packages.push(finish(b)?);
            }
            current = Some(Building::default());
            continue;
        }
        let Some(b) = current.as_mut() else {
            // Before the first package: only `version = N`.
            let n = line.strip_prefix("version = ")?;
            if version.is_some() || n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            version = Some(n.parse::<i64>().ok()?);
            continue;
        };
        if let Some(v) = string_value(line, "name") {
            set(&mut b.name, v)?;
        } else if let Some(v) = string_value(line, "version") {
            set(&mut b.version, v)?;
        } else if let Some(v) = string_value(line, "source") {
            set(&mut b.source, v)?;
        } else if let Some(v) = string_value(line, "checksum") {
            set(&mut b.checksum, v)?;
        } else if line == "dependencies = [" {
            if b.dependencies.is_some() {
                return None;
            }
            let mut deps = Vec::new();
            loop {
                let item = lines.next()?;
                if item == "]" {
                    break;
                }
                let dep = item.strip_prefix(" \"")?.strip_suffix("\",")?;
                if !plain(dep) {
                    return None;
                }
                deps.push(dep);
            }
            b.dependencies = Some(deps);
        } else {
            return None;
        }
    }
    if let Some(b) = current.take() {
        packages.push(finish(b)?);
    }
    Some(View {
        version,
        package: packages,
        metadata: None,
    })
}

pub fn parse(path: &str, bytes: &[u8]) -> Result<Output, ParseError> {
    let owned: Lock;
    let lock = match canonical(text::utf8(bytes)?) {
        Some(view) => view,
        None => {
            owned = text::toml(bytes)?;
            owned.view()
        }
    };
    match lock.version {
        None | Some(1..=4) => {}
        Some(v) => {
            return Err(ParseError::UnsupportedVersion {
                found: v.to_string(),
                supported: "1-4",
            });
        }
    }
    if lock.package.is_empty() {
        return Err(ParseError::structure("no [[package]] entries"));
    }
    // (name, version, package index), sorted by name (stably: a name's versions
    // in the file's order), to resolve "name" / "name version" / "name version
    // (source)" with a binary search; one allocation, not one per name.
    for p in &lock.package {
        check_tokens("package", p.name, p.version)?;
    }
    let mut by_name: Vec<(&str, &str, usize)> = lock
        .package
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name, p.version, i))
        .collect();
    by_name.sort_by(|a, b| a.0.cmp(b.0));
    let named = |name: &str| {
        let from = by_name.partition_point(|e| e.0 < name);
        let to = from + by_name[from..].partition_point(|e| e.0 == name);
        &by_name[from..to]
    };
    let mut out = Output::default();
    for p in &lock.package {
        if p.source.is_none() {
            out.note(
                None,
                format!(
                    "{} {} is a path dependency (the project's own)",
                    p.name, p.version
                ),
            );
            continue;
        }
        let mut c = component(
            Ecosystem::Cargo,
            None,
            p.name,
            p.version,
            purl::cargo(p.name, p.version),
            path,
        );
        c.checksum = pinned_checksum(lock.metadata, p);
        c.dependencies.reserve_exact(p.dependencies.len());
        for dep in &p.dependencies {
            let mut parts = dep.split(' ');
            let name = parts.next().unwrap_or_default();
            let versions = named(name);
            if versions.is_empty() {
                return Err(ParseError::structure(format!(
                    "{}: dependency {dep:?} is not in the lockfile",
                    p.name
                )));
            }
            let version = match (parts.next(), versions) {
                (Some(v), _) => versions.iter().find(|x| x.1 == v).ok_or_else(|| {
                    ParseError::structure(format!(
                        "{}: dependency {dep:?} is not in the lockfile",
                        p.name
                    ))
                })?,
                (None, [only]) => only,
                (None, _) => {
                    return Err(ParseError::structure(format!(
                        "{}: dependency {dep:?} is ambiguous",
                        p.name
                    )));
                }
            };
            c.dependencies.push(purl::cargo(name, version.1));
        }
        c.dependencies.sort();
        c.dependencies.dedup();
        out.push(c)?;
    }
    // Dependencies on path crates point at nothing in the SBOM: drop them. A
    // dependency's purl is some package's; it is in the SBOM unless every
    // package with that purl is a path crate (no registry crate of the same
    // name and version, the purl being a function of the two), so only those
    // purls are looked for (usually the project's own few, not every component).
    let path_only: std::collections::BTreeSet<String> = lock
        .package
        .iter()
        .filter(|p| p.source.is_none())
        .filter(|p| {
            !named(p.name)
                .iter()
                .any(|e| e.1 == p.version && lock.package[e.2].source.is_some())
        })
        .map(|p| purl::cargo(p.name, p.version))
        .collect();
    if !path_only.is_empty() {
        for c in &mut out.components {
            c.dependencies.retain(|d| !path_only.contains(d));
        }
    }
    Ok(out)
}

/// The most of a packaged `Cargo.toml` read.
pub const MAX_MANIFEST_BYTES: usize = 256 * 1024;

#[derive(Deserialize)]
struct PackagedManifest {
    package: PackagedPackage,
}

#[derive(Deserialize)]
struct PackagedPackage {
    name: String,
    version: String,
    license: Option<String>,
    #[serde(rename = "license-file")]
    license_file: Option<String>,
}

/// The licence a crate's packaged `Cargo.toml` (the one `cargo package` writes
/// into its `.crate` archive, workspace inheritance already resolved) states
/// for the crate `name` at `version`: `package.license` as an SPDX expression
/// (a text that is not one is kept as unknown); `license-file` alone is an
/// unknown licence naming the file (cargo's way to say "not an SPDX
/// licence"); neither, none. `Err` when the manifest is not that crate's or
/// does not parse.
pub fn packaged_licence(
    bytes: &[u8],
    name: &str,
    version: &str,
) -> Result<crate::Licence, ParseError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ParseError::structure(format!(
            "Cargo.toml is {} bytes, more than {MAX_MANIFEST_BYTES}",
            bytes.len()
        )));
    }
    let manifest: PackagedManifest = text::toml(bytes)?;
    let p = manifest.package;
    if p.name != name || p.version != version {
        return Err(ParseError::structure(format!(
            "Cargo.toml is the manifest of {} {}, not of {name} {version}",
            p.name, p.version
        )));
    }
    Ok(match (p.license, p.license_file) {
        (Some(expression), _) => crate::parse_licence(&expression),
        (None, Some(file)) => crate::Licence::Unknown(format!(
            "license-file {} (no SPDX expression)",
            file.chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        )),
        (None, None) => crate::Licence::NotGiven,
    })
}

/// The archive checksum the lockfile pins for a registry package: its own
/// `checksum` (v2 and later) or v1's `[metadata]` entry; only 64 lowercase hex
/// digits count (anything else pins nothing, so no archive is accepted). The
/// `[metadata]` key is written only when there is a `[metadata]` to look in
/// (a v3 lockfile of 908 registry crates without checksums formatted 908 keys
/// for nothing, a fifth of its parse).
fn pinned_checksum(
    metadata: Option<&BTreeMap<String, toml::Value>>,
    p: &Entry<'_>,
) -> Option<String> {
    let source = p.source?;
    if !source.starts_with("registry+") && !source.starts_with("sparse+") {
        return None;
    }
    let hex = match p.checksum {
        Some(hex) => hex,
        None => {
            let metadata = metadata?;
            let key = format!("checksum {} {} ({source})", p.name, p.version);
            metadata.get(&key)?.as_str()?
        }
    };
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then(|| hex.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Each registry crate keeps the archive checksum its lockfile pins, in
    /// v1's `[metadata]` and inline alike; a path crate, a git crate and a
    /// malformed pin keep none.
    #[test]
    fn registry_crates_keep_the_checksum_their_lockfile_pins() {
        let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cargo");
        let v1 = std::fs::read(here.join("Cargo.v1.lock")).unwrap();
        let out = parse("Cargo.lock", &v1).unwrap();
        assert_eq!(
            out.components[0].checksum.as_deref(),
            Some("6fd41f331ac7c5b8ac259b8bf82c75c0fb2e469bbf37d2becbba9a6a2221965b")
        );
        let v3 = std::fs::read(here.join("Cargo.lock")).unwrap();
        let out = parse("Cargo.lock", &v3).unwrap();
        let serde = out.components.iter().find(|c| c.name == "serde").unwrap();
        assert_eq!(
            serde.checksum.as_deref(),
            Some("c8e3592472072e6e22e0a54d5904d9febf8508f65fb8552499a1abc7d1078c3a")
        );
        let text = "version = 4\n\n[[package]]\nname = \"a\"\nversion = \"1.0.0\"\nsource = \"git+https://example.org/a#0123\"\nchecksum = \"6fd41f331ac7c5b8ac259b8bf82c75c0fb2e469bbf37d2becbba9a6a2221965b\"\n\n[[package]]\nname = \"b\"\nversion = \"1.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"6FD41F\"\n";
        let out = parse("Cargo.lock", text.as_bytes()).unwrap();
        assert!(
            out.components.iter().all(|c| c.checksum.is_none()),
            "{:?}",
            out.components
        );
    }

    #[test]
    fn a_packaged_manifest_states_its_crates_licence() {
        use crate::Licence;
        let m = |extra: &str| format!("[package]\nname = \"a\"\nversion = \"1.0.0\"\n{extra}");
        let cases: &[(&str, Result<Licence, &str>)] = &[
            (
                "license = \"MIT/Apache-2.0\"",
                Ok(Licence::Expression("MIT OR Apache-2.0".into())),
            ),
            (
                "license = \"Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT\"",
                Ok(Licence::Expression(
                    "Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT".into(),
                )),
            ),
            (
                "license = \"Public domain-ish\"",
                Ok(Licence::Unknown("Public domain-ish".into())),
            ),
            (
                "license-file = \"LICENCE.txt\"",
                Ok(Licence::Unknown(
                    "license-file LICENCE.txt (no SPDX expression)".into(),
                )),
            ),
            ("", Ok(Licence::NotGiven)),
        ];
        for (extra, want) in cases {
            let got =
                packaged_licence(m(extra).as_bytes(), "a", "1.0.0").map_err(|e| e.to_string());
            assert_eq!(got, want.clone().map_err(str::to_owned), "{extra}");
        }
        let other = packaged_licence(m("license = \"MIT\"").as_bytes(), "b", "1.0.0").unwrap_err();
        assert!(other.to_string().contains("not of b 1.0.0"), "{other}");
        let huge = m(&format!(
            "description = \"{}\"",
            "x".repeat(MAX_MANIFEST_BYTES)
        ));
        assert!(packaged_licence(huge.as_bytes(), "a", "1.0.0").is_err());
        assert!(packaged_licence(b"[package\n", "a", "1.0.0").is_err());
    }

    /// The line reader and the TOML parser read every lockfile the same, or the
    /// line reader declines it.
    /// A registry crate's dependency on a path crate (a `[patch]` to a local
    /// copy) points at nothing in the SBOM and is dropped; one on a crate that
    /// is there as a registry crate too, under the same purl, is kept.
    #[test]
    fn dependencies_on_path_crates_are_dropped() {
        let text = "version = 3\n\n\
            [[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\n \"foo\",\n]\n\n\
            [[package]]\nname = \"bar\"\nversion = \"1.0.0\"\n\n\
            [[package]]\nname = \"baz\"\nversion = \"2.0.0\"\n\n\
            [[package]]\nname = \"baz\"\nversion = \"2.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n\n\
            [[package]]\nname = \"foo\"\nversion = \"1.2.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\ndependencies = [\n \"bar\",\n \"baz 2.0.0\",\n \"qux\",\n]\n\n\
            [[package]]\nname = \"qux\"\nversion = \"0.3.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n";
        let out = parse("Cargo.lock", text.as_bytes()).unwrap();
        let foo = out.components.iter().find(|c| c.name == "foo").unwrap();
        assert_eq!(
            foo.dependencies,
            ["pkg:cargo/baz@2.0.0", "pkg:cargo/qux@0.3.0"]
        );
        let names: Vec<&str> = out.components.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["baz", "foo", "qux"]);
    }

    /// A C1 control character (U+0080-U+009F) in a value sends the file to the
    /// general parser like any other control character; other characters
    /// encoded with 0xC2 (U+00A0-U+00BF) stay on the line reader.
    #[test]
    fn the_line_reader_refuses_every_control_character() {
        for c in [
            '\u{0}', '\u{1f}', '\u{7f}', '\u{80}', '\u{85}', '\u{9f}', '"', '\\',
        ] {
            let text =
                format!("version = 3\n\n[[package]]\nname = \"a{c}b\"\nversion = \"0.1.0\"\n");
            assert!(canonical(&text).is_none(), "{c:?}");
        }
        for c in ['\u{a0}', '\u{a9}', '\u{bf}', 'é', '\u{2028}'] {
            let text =
                format!("version = 3\n\n[[package]]\nname = \"a{c}b\"\nversion = \"0.1.0\"\n");
            let lock = canonical(&text).unwrap_or_else(|| panic!("{c:?}"));
            assert_eq!(lock.package[0].name, format!("a{c}b"));
        }
    }

    #[test]
    fn the_canonical_reader_agrees_with_the_toml_parser() {
        let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = vec![here.join("../../Cargo.lock")];
        for e in std::fs::read_dir(here.join("tests/data/cargo")).unwrap() {
            files.push(e.unwrap().path());
        }
        let mut read_by_lines = 0;
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            let by_toml: Option<Lock> = toml::from_str(&text).ok();
            if let Some(by_lines) = canonical(&text) {
                assert_eq!(
                    Some(by_lines),
                    by_toml.as_ref().map(Lock::view),
                    "{}",
                    f.display()
                );
                read_by_lines += 1;
            }
        }
        assert!(
            read_by_lines >= 2,
            "the workspace's own lockfile is canonical"
        );
        for (text, canonical_ok) in [
            (
                "version = 4\n\n[[package]]\nname = \"a\"\nversion = \"1.0.0\"\n",
                true,
            ),
            ("[[package]]\nname = \"a\"\nversion = \"1\\u0030\"\n", false),
            (
                "[[package]]\nname = \"a\"\nname = \"b\"\nversion = \"1\"\n",
                false,
            ),
            ("[[package]]\nname = \"a\" # c\nversion = \"1\"\n", false),
            (
                "[[package]]\nname = \"a\"\nversion = \"1\"\ndependencies = [\n \"b\",\n",
                false,
            ),
            (
                "[[package]]\nname = \"a\"\nversion = \"1\"\n[metadata]\n",
                false,
            ),
            ("[[package]]\nversion = \"1\"\n", false),
            ("version = 3\nversion = 3\n", false),
        ] {
            assert_eq!(canonical(text).is_some(), canonical_ok, "{text:?}");
        }
    }

    /// `parse` as it was before it read borrowed entries and resolved names
    /// with a sorted index (owned strings, a `BTreeMap` of names, a set of the
    /// components' purls), kept to check the new one against.
    fn oracle(path: &str, bytes: &[u8]) -> Result<Output, ParseError> {
        let lock: Lock = text::toml(bytes)?;
        match lock.version {
            None | Some(1..=4) => {}
            Some(v) => {
                return Err(ParseError::UnsupportedVersion {
                    found: v.to_string(),
                    supported: "1-4",
                });
            }
        }
        if lock.package.is_empty() {
            return Err(ParseError::structure("no [[package]] entries"));
        }
        let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for p in &lock.package {
            check_tokens("package", &p.name, &p.version)?;
            by_name.entry(&p.name).or_default().push(&p.version);
        }
        let mut out = Output::default();
        let view = lock.view();
        for (i, p) in lock.package.iter().enumerate() {
            if p.source.is_none() {
                out.note(
                    None,
                    format!(
                        "{} {} is a path dependency (the project's own)",
                        p.name, p.version
                    ),
                );
                continue;
            }
            let mut c = component(
                Ecosystem::Cargo,
                None,
                &p.name,
                &p.version,
                purl::cargo(&p.name, &p.version),
                path,
            );
            c.checksum = pinned_checksum(view.metadata, &view.package[i]);
            for dep in &p.dependencies {
                let mut parts = dep.split(' ');
                let name = parts.next().unwrap_or_default();
                let not_in = || {
                    ParseError::structure(format!(
                        "{}: dependency {dep:?} is not in the lockfile",
                        p.name
                    ))
                };
                let versions = by_name.get(name).ok_or_else(not_in)?;
                let version = match (parts.next(), versions.as_slice()) {
                    (Some(v), _) => *versions.iter().find(|x| **x == v).ok_or_else(not_in)?,
                    (None, [only]) => *only,
                    (None, _) => {
                        return Err(ParseError::structure(format!(
                            "{}: dependency {dep:?} is ambiguous",
                            p.name
                        )));
                    }
                };
                c.dependencies.push(purl::cargo(name, version));
            }
            c.dependencies.sort();
            c.dependencies.dedup();
            out.push(c)?;
        }
        let registry: std::collections::BTreeSet<&str> =
            out.components.iter().map(|c| c.purl.as_str()).collect();
        let path_only: std::collections::BTreeSet<String> = lock
            .package
            .iter()
            .filter(|p| p.source.is_none())
            .map(|p| purl::cargo(&p.name, &p.version))
            .filter(|p| !registry.contains(p.as_str()))
            .collect();
        for c in &mut out.components {
            c.dependencies.retain(|d| !path_only.contains(d));
        }
        Ok(out)
    }

    /// A lockfile of `n` registry crates as perf-guard writes it (sorted, no
    /// dependencies) plus the workspace's shape: path crates depending on
    /// registry crates, two versions of one name, a path crate shadowing a
    /// registry crate of the same name and version.
    fn generated(n: usize) -> String {
        let mut t = String::from(
            "version = 4\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\n \"c0001\",\n \"dup 1.0.0\",\n \"dup 2.0.0\",\n \"lib\",\n \"twin 1.0.0\",\n]\n",
        );
        t.push_str("\n[[package]]\nname = \"lib\"\nversion = \"0.2.0\"\ndependencies = [\n \"dup 2.0.0\",\n]\n");
        t.push_str("\n[[package]]\nname = \"twin\"\nversion = \"1.0.0\"\n");
        let reg = "source = \"registry+https://github.com/rust-lang/crates.io-index\"\n";
        let sum =
            "checksum = \"6fd41f331ac7c5b8ac259b8bf82c75c0fb2e469bbf37d2becbba9a6a2221965b\"\n";
        for v in ["1.0.0", "2.0.0"] {
            t.push_str(&format!("\n[[package]]\nname = \"dup\"\nversion = \"{v}\"\n{reg}{sum}dependencies = [\n \"lib\",\n \"twin 1.0.0\",\n]\n"));
        }
        t.push_str(&format!(
            "\n[[package]]\nname = \"twin\"\nversion = \"1.0.0\"\n{reg}"
        ));
        for i in 0..n {
            t.push_str(&format!(
                "\n[[package]]\nname = \"c{i:04}\"\nversion = \"0.1.{i}\"\n{reg}"
            ));
            if i % 3 == 0 {
                t.push_str(sum);
            }
            if i > 0 && i % 5 == 0 {
                t.push_str(&format!(
                    "dependencies = [\n \"c{:04}\",\n \"dup 1.0.0\",\n]\n",
                    i - 1
                ));
            }
        }
        t
    }

    /// The line reader's `parse` gives what the earlier, TOML-only one gave,
    /// components, notes and errors alike, on the workspace's own lockfile, the
    /// test data, a lockfile the size of perf-guard's and a hostile set (bad
    /// tokens, unknown and ambiguous dependencies, v1 metadata, escapes, non-ASCII).
    #[test]
    fn parse_gives_what_the_toml_only_parse_gave() {
        let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut texts = vec![std::fs::read_to_string(here.join("../../Cargo.lock")).unwrap()];
        for e in std::fs::read_dir(here.join("tests/data/cargo")).unwrap() {
            texts.push(std::fs::read_to_string(e.unwrap().path()).unwrap());
        }
        texts.push(generated(908));
        let p = |body: &str| {
            format!(
                "version = 3\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n{body}\n[[package]]\nname = \"b\"\nversion = \"1.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n"
            )
        };
        for hostile in [
            p("dependencies = [\n \"nope\",\n]\n"),
            p("dependencies = [\n \"b 9.9.9\",\n]\n"),
            p(
                "dependencies = [\n \"b 1.0.0 (registry+https://github.com/rust-lang/crates.io-index)\",\n]\n",
            ),
            p("dependencies = [\n \"\\u0062\",\n]\n"),
            p("")
                + "\n[[package]]\nname = \"b\"\nversion = \"2.0.0\"\nsource = \"sparse+https://index.crates.io/\"\n\n[[package]]\nname = \"c\"\nversion = \"1.0.0\"\nsource = \"registry+x\"\ndependencies = [\n \"b\",\n]\n",
            p("")
                + "\n[[package]]\nname = \"bad name\"\nversion = \"1\"\nsource = \"registry+x\"\n",
            p("") + "\n[[package]]\nname = \"c\"\nversion = \"1\u{a0}\"\nsource = \"registry+x\"\n",
            p("") + "\n[[package]]\nname = \"c\u{e9}\"\nversion = \"1\"\nsource = \"registry+x\"\n",
            p("") + "\n[[package]]\nname = \"c\"\nversion = \"1\u{85}\"\nsource = \"registry+x\"\n",
            p("")
                + "\n[metadata]\n\"checksum b 1.0.0 (registry+https://github.com/rust-lang/crates.io-index)\" = \"6fd41f331ac7c5b8ac259b8bf82c75c0fb2e469bbf37d2becbba9a6a2221965b\"\n",
            "version = 5\n\n[[package]]\nname = \"a\"\nversion = \"1\"\n".to_owned(),
            "version = 3\n".to_owned(),
        ] {
            texts.push(hostile);
        }
        for text in &texts {
            let new = parse("Cargo.lock", text.as_bytes());
            let old = oracle("Cargo.lock", text.as_bytes());
            match (new, old) {
                (Ok(new), Ok(old)) => {
                    assert_eq!(new.components, old.components, "{text}");
                    assert_eq!(new.notes, old.notes, "{text}");
                }
                (new, old) => assert_eq!(
                    new.map(|o| o.components).map_err(|e| e.to_string()),
                    old.map(|o| o.components).map_err(|e| e.to_string()),
                    "{text}"
                ),
            }
        }
        let big = parse("Cargo.lock", generated(908).as_bytes()).unwrap();
        assert!(canonical(&generated(908)).is_some());
        assert_eq!(big.components.len(), 908 + 3);
        let c5 = big.components.iter().find(|c| c.name == "c0005").unwrap();
        assert_eq!(
            c5.dependencies,
            ["pkg:cargo/c0004@0.1.4", "pkg:cargo/dup@1.0.0"]
        );
        let dup = big.components.iter().find(|c| c.name == "dup").unwrap();
        assert_eq!(
            dup.dependencies,
            ["pkg:cargo/twin@1.0.0"],
            "lib is a path crate, twin is not only one"
        );
    }
}
