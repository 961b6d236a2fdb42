//! Debian/Ubuntu `var/lib/dpkg/status` (deb822 paragraphs). Only packages whose
//! `Status` is `install ok installed` are components; `Source: name (version)` is kept.
//! dpkg's database states no licence, so the licence is `NotGiven` here; `scan_tree`
//! reads it from the package's DEP-5 copyright file (`crate::dep5`).

use std::borrow::Cow;

use super::{Output, check_tokens, component};
use crate::component::{Ecosystem, SourcePackage};
use crate::error::ParseError;
use crate::{purl, text};

/// One deb822 / apk-style paragraph: (first line number, fields in order).
pub(crate) struct Paragraph<'a> {
    pub line: usize,
    pub fields: Vec<Field<'a>>,
}

/// One field, borrowed from the text: its name, its first line's value
/// (trimmed) and its continuation lines as they stand (empty when none). The
/// value is only put together when asked for ([`Field::value`]), so the fields
/// nobody reads (a package's `Description`, `Conffiles`) cost no allocation.
pub(crate) struct Field<'a> {
    pub key: &'a str,
    first: &'a str,
    rest: &'a str,
}

impl<'a> Field<'a> {
    /// The value: the first line's, then each continuation line trimmed, one
    /// `\n` before each; borrowed when the field has one line.
    pub(crate) fn value(&self) -> Cow<'a, str> {
        if self.rest.is_empty() {
            return Cow::Borrowed(self.first);
        }
        let mut v = String::with_capacity(self.first.len() + self.rest.len());
        v.push_str(self.first);
        for line in self.rest.lines() {
            v.push('\n');
            v.push_str(line.trim());
        }
        Cow::Owned(v)
    }
}

impl<'a> Paragraph<'a> {
    pub(crate) fn get(&self, key: &str) -> Option<Cow<'a, str>> {
        self.fields.iter().find(|f| f.key == key).map(Field::value)
    }
}

/// `key.contains(char::is_whitespace)`, without the pattern search for an
/// ASCII key (a field name always is): the ASCII characters that are Unicode
/// white space.
fn has_whitespace(key: &str) -> bool {
    if key.is_ascii() {
        key.bytes()
            .any(|b| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
    } else {
        key.contains(char::is_whitespace)
    }
}

/// The paragraphs of `text`, one pass over its lines; every field borrowed
/// from it.
fn paragraphs(text: &str) -> Result<Vec<Paragraph<'_>>, ParseError> {
    let mut out: Vec<Paragraph<'_>> = Vec::new();
    let mut current: Option<Paragraph<'_>> = None;
    // Where a line starts in `text` (each is a slice of it).
    let at = |line: &str| line.as_ptr() as usize - text.as_ptr() as usize;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        // A line starting with a visible ASCII character is not blank (most
        // are: the trim is for the others).
        let visible = line.as_bytes().first().is_some_and(u8::is_ascii_graphic);
        if !visible && line.trim().is_empty() {
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
            // The continuation lines run from the first one's start to this
            // one's end: re-split by `lines()`, they are these lines.
            let start = if last.rest.is_empty() {
                at(line)
            } else {
                at(last.rest)
            };
            last.rest = &text[start..at(line) + line.len()];
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| ParseError::line(n, format!("expected `Field: value`, got {line:?}")))?;
        if key.is_empty() || has_whitespace(key) {
            return Err(ParseError::line(n, format!("bad field name {key:?}")));
        }
        p.fields.push(Field {
            key,
            first: value.trim(),
            rest: "",
        });
    }
    if let Some(p) = current {
        out.push(p);
    }
    Ok(out)
}

/// `debian` by default; `ubuntu` etc. when the caller read `ID=` from os-release.
pub fn parse(path: &str, bytes: &[u8], distro: &str) -> Result<Output, ParseError> {
    parse_with(path, bytes, Some(distro))
}

/// [`parse`] for a caller that names each component's purl itself (the tree
/// scan writes the release and source package into it): the components'
/// purls are left empty rather than built to be thrown away.
pub(crate) fn parse_unnamed(path: &str, bytes: &[u8]) -> Result<Output, ParseError> {
    parse_with(path, bytes, None)
}

fn parse_with(path: &str, bytes: &[u8], distro: Option<&str>) -> Result<Output, ParseError> {
    let text = text::utf8(bytes)?;
    let mut out = Output::default();
    let paras = paragraphs(text)?;
    if paras.is_empty() {
        return Err(ParseError::structure("no package paragraphs"));
    }
    for p in &paras {
        let at = |what: &str| ParseError::line(p.line, format!("package paragraph without {what}"));
        let name = p.get("Package").ok_or_else(|| at("Package"))?;
        let name = &*name;
        let status = p.get("Status").ok_or_else(|| at("Status"))?;
        // Exactly three words; the third is the state.
        let mut words = status.split_whitespace();
        let (Some(_), Some(_), Some(state), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(ParseError::line(
                p.line,
                format!("{name}: bad Status {status:?}"),
            ));
        };
        if state != "installed" {
            out.note(Some(p.line), format!("{name} is {state} (not installed)"));
            continue;
        }
        let version = p.get("Version").ok_or_else(|| at("Version"))?;
        let version = &*version;
        let arch = p.get("Architecture").ok_or_else(|| at("Architecture"))?;
        let arch = &*arch;
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
            distro.map_or_else(String::new, |d| purl::deb(d, name, version, Some(arch))),
            path,
        );
        c.arch = Some(arch.to_string());
        c.source_package = Some(match p.get("Source").as_deref() {
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

    /// Fields are borrowed from the text; a value over continuation lines is
    /// its first line's, then each continuation line trimmed after a `\n`,
    /// with `\n` and `\r\n` line ends alike.
    #[test]
    fn paragraphs_borrow_their_fields_and_join_continuation_lines() {
        let text = "Package: a\nDescription: short\n  long one \n\t.\n second\nVersion:  1.0 \n\n\
                    Package: b\nConffiles:\n /etc/b 0123\n";
        for text in [text.to_owned(), text.replace('\n', "\r\n")] {
            let ps = paragraphs(&text).unwrap();
            assert_eq!(ps.len(), 2);
            assert_eq!((ps[0].line, ps[1].line), (1, 8));
            let a = &ps[0];
            assert!(matches!(a.get("Package"), Some(Cow::Borrowed("a"))));
            assert!(matches!(a.get("Version"), Some(Cow::Borrowed("1.0"))));
            assert_eq!(a.get("Description").unwrap(), "short\nlong one\n.\nsecond");
            assert_eq!(ps[1].get("Conffiles").unwrap(), "\n/etc/b 0123");
            assert_eq!(a.get("Conffiles"), None);
            let keys: Vec<&str> = a.fields.iter().map(|f| f.key).collect();
            assert_eq!(keys, ["Package", "Description", "Version"]);
        }
        let e = paragraphs(" lead\nPackage: a\n").err().unwrap();
        assert!(
            e.to_string().contains("continuation line before any field"),
            "{e}"
        );
    }

    #[test]
    fn field_names_with_white_space_are_refused_as_before() {
        for key in [
            "Pack age",
            "Pack\tage",
            "A\u{b}",
            "A\u{c}",
            "A\r",
            "Pa\u{a0}ck",
            "Pa\u{2003}",
            "Pa\u{85}",
        ] {
            assert!(has_whitespace(key), "{key:?}");
            assert_eq!(has_whitespace(key), key.contains(char::is_whitespace));
        }
        for key in ["Package", "X-Über", "A_b-c.d", "\u{1c}"] {
            assert_eq!(
                has_whitespace(key),
                key.contains(char::is_whitespace),
                "{key:?}"
            );
        }
        // Every ASCII character alone, as the char test says.
        for b in 0u8..128 {
            let key = (b as char).to_string();
            assert_eq!(
                has_whitespace(&key),
                key.contains(char::is_whitespace),
                "{b}"
            );
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
