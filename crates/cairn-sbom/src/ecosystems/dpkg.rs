//! Debian/Ubuntu `var/lib/dpkg/status` (deb822 paragraphs). Only packages whose
//! `Status` is `install ok installed` are components; `Source: name (version)` is kept.
//! dpkg's database states no licence, so the licence is `NotGiven` here; `scan_tree`
//! reads it from the package's DEP-5 copyright file (`crate::dep5`).

use super::{Output, check_tokens, component};
use crate::component::{Ecosystem, SourcePackage};
use crate::error::ParseError;
use crate::{purl, text};

/// One deb822 / apk-style paragraph: (first line number, fields in order).
pub(crate) struct Paragraph<'a> {
    pub line: usize,
    pub fields: Vec<(&'a str, String)>,
}

impl Paragraph<'_> {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn paragraphs(text: &str) -> Result<Vec<Paragraph<'_>>, ParseError> {
    let mut out: Vec<Paragraph<'_>> = Vec::new();
    let mut current: Option<Paragraph<'_>> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            if let Some(p) = current.take() {
                out.push(p);
            }
            continue;
        }
        let p = current.get_or_insert_with(|| Paragraph {
            line: n,
            fields: Vec::new(),
        });
        if line.starts_with(' ') || line.starts_with('\t') {
            let Some(last) = p.fields.last_mut() else {
                return Err(ParseError::line(n, "continuation line before any field"));
            };
            last.1.push('\n');
            last.1.push_str(line.trim());
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| ParseError::line(n, format!("expected `Field: value`, got {line:?}")))?;
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(ParseError::line(n, format!("bad field name {key:?}")));
        }
        p.fields.push((key, value.trim().to_string()));
    }
    if let Some(p) = current {
        out.push(p);
    }
    Ok(out)
}

/// `debian` by default; `ubuntu` etc. when the caller read `ID=` from os-release.
pub fn parse(path: &str, bytes: &[u8], distro: &str) -> Result<Output, ParseError> {
    let text = text::utf8(bytes)?;
    let mut out = Output::default();
    let paras = paragraphs(text)?;
    if paras.is_empty() {
        return Err(ParseError::structure("no package paragraphs"));
    }
    for p in &paras {
        let at = |what: &str| ParseError::line(p.line, format!("package paragraph without {what}"));
        let name = p.get("Package").ok_or_else(|| at("Package"))?;
        let status = p.get("Status").ok_or_else(|| at("Status"))?;
        let words: Vec<&str> = status.split_whitespace().collect();
        if words.len() != 3 {
            return Err(ParseError::line(
                p.line,
                format!("{name}: bad Status {status:?}"),
            ));
        }
        if words[2] != "installed" {
            out.note(
                Some(p.line),
                format!("{name} is {} (not installed)", words[2]),
            );
            continue;
        }
        let version = p.get("Version").ok_or_else(|| at("Version"))?;
        let arch = p.get("Architecture").ok_or_else(|| at("Architecture"))?;
        check_tokens("package", name, version)?;
        if !version.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(ParseError::line(
                p.line,
                format!("{name}: invalid version {version:?}"),
            ));
        }
        let mut c = component(
            Ecosystem::Debian,
            None,
            name,
            version,
            purl::deb(distro, name, version, Some(arch)),
            path,
        );
        c.arch = Some(arch.to_string());
        c.source_package = Some(match p.get("Source") {
            Some(src) => match src.split_once(" (") {
                Some((n, v)) => SourcePackage {
                    name: n.to_string(),
                    version: v
                        .strip_suffix(')')
                        .ok_or_else(|| at("a closed Source version"))?
                        .to_string(),
                },
                None => SourcePackage {
                    name: src.to_string(),
                    version: version.to_string(),
                },
            },
            None => SourcePackage {
                name: name.to_string(),
                version: version.to_string(),
            },
        });
        out.push(c)?;
    }
    Ok(out)
}

pub(crate) fn apk_paragraphs(text: &str) -> Result<Vec<Paragraph<'_>>, ParseError> {
    // apk's `X:value` lines have no space after the colon but otherwise split the same way.
    paragraphs(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One installed package paragraph with `extra` fields: its source package,
    /// or the parse error's text.
    fn check(extra: &str, want: Result<(&str, &str), &str>) {
        let status = format!(
            "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u7\n\
             Architecture: amd64\n{extra}"
        );
        let got = parse("var/lib/dpkg/status", status.as_bytes(), "debian")
            .map(|out| out.components[0].source_package.clone().unwrap());
        match (want, got) {
            (Ok((name, version)), Ok(src)) => {
                assert_eq!(
                    (src.name.as_str(), src.version.as_str()),
                    (name, version),
                    "{extra:?}"
                );
            }
            (Err(part), Err(e)) => assert!(e.to_string().contains(part), "{extra:?}: {e}"),
            (want, got) => panic!("{extra:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn source_packages_from_the_source_field() {
        // No Source: the binary package is its own source.
        check("", Ok(("libc6", "2.36-9+deb12u7")));
        // Source without a version: the binary's version.
        check("Source: glibc\n", Ok(("glibc", "2.36-9+deb12u7")));
        // Source with its own version (a binNMU, or a package built apart).
        check("Source: glibc (2.36-9)\n", Ok(("glibc", "2.36-9")));
        check(
            "Source: util-linux (1:2.38.1-5)\n",
            Ok(("util-linux", "1:2.38.1-5")),
        );
        check(
            "Source: gcc-12 (12.2.0-14+deb12u1)\n",
            Ok(("gcc-12", "12.2.0-14+deb12u1")),
        );
        // An unclosed version is refused, not guessed.
        check("Source: glibc (2.36-9\n", Err("a closed Source version"));
    }
}
