//! An installed Rust toolchain (rustup's layout): which components are
//! installed (`lib/rustlib/components`, one `component-target` a line) and
//! their versions (`lib/rustlib/multirust-channel-manifest.toml`,
//! `[pkg.<name>] version = "1.95.0 (59807616e 2026-04-14)"`). Components are
//! named as RustSec names the toolchain's parts (`rustc`, `cargo`, `std` for
//! `rust-std`, `clippy`, `rustfmt`), so advisories about them match.
//!
//! Licences: the toolchain's files say none per component, so the licence
//! is the one the Rust project declares for the parts named in
//! [`LICENSED`] (`license = "MIT OR Apache-2.0"` in their own Cargo.toml:
//! rust-lang/rust `library/std`, `compiler/rustc`; rust-lang/cargo); any other
//! component is listed without one (the licence rule then says so).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Output, check_tokens, component};
use crate::component::Ecosystem;
use crate::error::ParseError;
use crate::{purl, text};

/// The components whose licence the Rust project declares as
/// `MIT OR Apache-2.0`, by the name the SBOM gives them.
pub const LICENSED: &[&str] = &["cargo", "rustc", "std"];

#[derive(Debug, Deserialize)]
struct Channel {
    #[serde(default)]
    pkg: BTreeMap<String, Pkg>,
}

#[derive(Debug, Deserialize)]
struct Pkg {
    #[serde(default)]
    version: String,
}

/// The components of the toolchain whose channel manifest is at `path`:
/// those `components` lists (the file beside it), or none with a note when
/// it is absent (then which are installed is unknown).
pub fn parse(path: &str, manifest: &[u8], components: Option<&[u8]>) -> Result<Output, ParseError> {
    let channel: Channel = text::toml(manifest)?;
    let mut out = Output::default();
    let Some(components) = components else {
        out.note(
            None,
            "no lib/rustlib/components beside it: which components are installed is unknown, none listed",
        );
        return Ok(out);
    };
    let components = text::utf8(components)?;
    for (n, line) in components.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        // The longest package name the line starts with: `rust-std-x86_64-…`
        // is `rust-std`, not `rust`.
        let Some((pkg, info)) = channel
            .pkg
            .iter()
            .filter(|(name, _)| {
                line == name.as_str()
                    || line
                        .strip_prefix(name.as_str())
                        .is_some_and(|rest| rest.starts_with('-'))
            })
            .max_by_key(|(name, _)| name.len())
        else {
            out.note(
                Some(n + 1),
                format!(
                    "the component `{line}` has no package in the channel manifest: not listed"
                ),
            );
            continue;
        };
        let version = info.version.split_whitespace().next().unwrap_or_default();
        if version.is_empty() {
            out.note(
                Some(n + 1),
                format!("the channel manifest gives `{pkg}` no version: not listed"),
            );
            continue;
        }
        let name = match pkg.as_str() {
            "rust-std" => "std",
            other => other.strip_suffix("-preview").unwrap_or(other),
        };
        check_tokens("rust toolchain component", name, version)?;
        let mut c = component(
            Ecosystem::Cargo,
            None,
            name,
            version,
            purl::cargo(name, version),
            path,
        );
        if LICENSED.contains(&name) {
            c.licence = crate::licence::parse_licence("MIT OR Apache-2.0");
        }
        out.push(c)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"manifest-version = "2"
date = "2026-04-16"

[pkg.cargo]
version = "0.96.0 (f2d3ce0bd 2026-03-21)"

[pkg.cargo.target.x86_64-unknown-linux-gnu]
available = true

[pkg.rust]
version = "1.95.0 (59807616e 2026-04-14)"

[pkg.rust-std]
version = "1.95.0 (59807616e 2026-04-14)"

[pkg.rustc]
version = "1.95.0 (59807616e 2026-04-14)"

[pkg.rustc-dev]
version = "1.95.0 (59807616e 2026-04-14)"

[pkg.clippy-preview]
version = "0.1.95"
"#;

    #[test]
    fn installed_components_with_their_versions() {
        let components = b"rustc-x86_64-unknown-linux-gnu\ncargo-x86_64-unknown-linux-gnu\nrust-std-x86_64-unknown-linux-gnu\nclippy-preview-x86_64-unknown-linux-gnu\nmystery-x\n";
        let out = parse(
            "usr/local/lib/rustlib/multirust-channel-manifest.toml",
            MANIFEST.as_bytes(),
            Some(components),
        )
        .unwrap();
        let got: Vec<String> = out
            .components
            .iter()
            .map(|c| format!("{}@{} {}", c.name, c.version, c.purl))
            .collect();
        assert_eq!(
            got,
            [
                "rustc@1.95.0 pkg:cargo/rustc@1.95.0",
                "cargo@0.96.0 pkg:cargo/cargo@0.96.0",
                "std@1.95.0 pkg:cargo/std@1.95.0",
                "clippy@0.1.95 pkg:cargo/clippy@0.1.95",
            ]
        );
        assert_eq!(out.notes.len(), 1, "{:?}", out.notes);
        let licences: Vec<String> = out
            .components
            .iter()
            .map(|c| format!("{:?}", c.licence))
            .collect();
        assert!(licences[0].contains("MIT OR Apache-2.0"), "{licences:?}");
        assert!(licences[3].contains("NotGiven"), "{licences:?}");
        assert!(out.notes[0].1.contains("mystery-x"));
        let none = parse("m.toml", MANIFEST.as_bytes(), None).unwrap();
        assert!(none.components.is_empty() && none.notes.len() == 1);
        assert!(parse("m.toml", b"[pkg", Some(b"")).is_err());
    }
}
