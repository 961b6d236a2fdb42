//! `Gemfile.lock`: the `specs:` of every `GEM` section (four-space `name (version)`
//! lines; a platform suffix such as `-x86_64-linux` becomes the purl `platform`).
//! `GIT` and `PATH` sections are not from a gem server and are noted, not listed.
//! Bundler always writes a `DEPENDENCIES` section: a file without one is truncated.

use super::{Output, check_tokens, component};
use crate::component::Ecosystem;
use crate::error::ParseError;
use crate::{purl, text};

pub fn parse(path: &str, bytes: &[u8]) -> Result<Output, ParseError> {
    let text = text::utf8(bytes)?;
    let mut out = Output::default();
    let mut section = "";
    let mut in_specs = false;
    let mut saw_dependencies = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            section = line.trim();
            in_specs = false;
            if section == "DEPENDENCIES" {
                saw_dependencies = true;
            }
            continue;
        }
        if line == "  specs:" {
            in_specs = true;
            continue;
        }
        if !in_specs || !line.starts_with("    ") || line.starts_with("     ") {
            continue; // remote:, revision:, or a dependency line (six spaces)
        }
        let spec = &line[4..];
        let (name, rest) = spec.split_once(" (").ok_or_else(|| {
            ParseError::line(n, format!("expected `name (version)`, got {spec:?}"))
        })?;
        let full = rest
            .strip_suffix(')')
            .ok_or_else(|| ParseError::line(n, format!("unclosed version in {spec:?}")))?;
        if section != "GEM" {
            out.note(Some(n), format!("{name} comes from a {section} section"));
            continue;
        }
        let (version, platform) = match full.split_once('-') {
            Some((v, p)) => (v, Some(p)),
            None => (full, None),
        };
        check_tokens("gem", name, version)?;
        if !version.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(ParseError::line(
                n,
                format!("{name}: invalid version {version:?}"),
            ));
        }
        let mut c = component(
            Ecosystem::RubyGems,
            None,
            name,
            version,
            purl::gem(name, version, platform),
            path,
        );
        c.arch = platform.map(str::to_string);
        out.push(c)?;
    }
    if !saw_dependencies {
        return Err(ParseError::structure(
            "no DEPENDENCIES section (truncated?)",
        ));
    }
    Ok(out)
}
