//! Python: `poetry.lock`, `uv.lock`, and pinned `requirements.txt` (`name==version`
//! lines, with extras, environment markers, `--hash` options and `\` continuations).

use serde::Deserialize;

use super::{Output, check_tokens, component};
use crate::component::Ecosystem;
use crate::error::ParseError;
use crate::{purl, text};

#[derive(Deserialize)]
struct PoetryLock {
    #[serde(default)]
    package: Vec<PoetryPackage>,
    metadata: Option<toml::Table>,
}

#[derive(Deserialize)]
struct PoetryPackage {
    name: String,
    version: String,
    source: Option<toml::Table>,
}

pub fn parse_poetry(path: &str, bytes: &[u8]) -> Result<Output, ParseError> {
    let lock: PoetryLock = text::toml(bytes)?;
    if lock.metadata.is_none() {
        return Err(ParseError::structure("no [metadata] table (truncated?)"));
    }
    let mut out = Output::default();
    for p in &lock.package {
        check_tokens("package", &p.name, &p.version)?;
        let kind = p
            .source
            .as_ref()
            .and_then(|s| s.get("type"))
            .and_then(|t| t.as_str());
        if matches!(kind, Some("directory" | "file")) {
            out.note(
                None,
                format!("{} is a local {} package", p.name, kind.unwrap_or_default()),
            );
            continue;
        }
        let name = purl::normalise_pypi(&p.name);
        out.push(component(
            Ecosystem::PyPI,
            None,
            &name,
            &p.version,
            purl::pypi(&name, &p.version),
            path,
        ))?;
    }
    Ok(out)
}

#[derive(Deserialize)]
struct UvLock {
    version: i64,
    #[serde(default)]
    package: Vec<UvPackage>,
}

#[derive(Deserialize)]
struct UvPackage {
    name: String,
    version: Option<String>,
    source: toml::Table,
}

pub fn parse_uv(path: &str, bytes: &[u8]) -> Result<Output, ParseError> {
    let lock: UvLock = text::toml(bytes)?;
    if lock.version != 1 {
        return Err(ParseError::UnsupportedVersion {
            found: lock.version.to_string(),
            supported: "1",
        });
    }
    let mut out = Output::default();
    for p in &lock.package {
        let local = ["editable", "virtual", "directory", "path"]
            .iter()
            .any(|k| p.source.contains_key(*k));
        if local {
            out.note(
                None,
                format!("{} is the project's own (local source)", p.name),
            );
            continue;
        }
        let version = p
            .version
            .as_deref()
            .ok_or_else(|| ParseError::structure(format!("package {}: no version", p.name)))?;
        check_tokens("package", &p.name, version)?;
        let name = purl::normalise_pypi(&p.name);
        out.push(component(
            Ecosystem::PyPI,
            None,
            &name,
            version,
            purl::pypi(&name, version),
            path,
        ))?;
    }
    Ok(out)
}

/// A PEP 440 version, loosely: starts with a digit (or `N!` epoch), ends with a letter
/// or digit, and uses only the characters PEP 440 allows.
fn pep440_ok(v: &str) -> bool {
    let first_ok = v.chars().next().is_some_and(|c| c.is_ascii_digit());
    let last_ok = v.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
    first_ok
        && last_ok
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '!' | '+' | '-' | '_'))
}

fn name_ok(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && n.starts_with(|c: char| c.is_ascii_alphanumeric())
}

pub fn parse_requirements(path: &str, bytes: &[u8]) -> Result<Output, ParseError> {
    let text = text::utf8(bytes)?;
    let mut out = Output::default();
    // Join `\` continuations, remembering the line each logical line starts on.
    let mut logical: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let (start, mut acc) = pending.take().unwrap_or((n, String::new()));
        if let Some(body) = raw.strip_suffix('\\') {
            acc.push_str(body);
            acc.push(' ');
            pending = Some((start, acc));
        } else {
            acc.push_str(raw);
            logical.push((start, acc));
        }
    }
    if let Some((start, _)) = pending {
        return Err(ParseError::line(
            start,
            "continuation `\\` at the end of the file (truncated?)",
        ));
    }
    for (n, line) in logical {
        // A comment starts at `#` at the line start or after whitespace.
        let code = match line.find(" #").or_else(|| line.find("\t#")) {
            Some(i) => &line[..i],
            None if line.trim_start().starts_with('#') => "",
            None => &line,
        };
        let code = code.trim();
        if code.is_empty() {
            continue;
        }
        if code.starts_with('-') {
            out.note(
                Some(n),
                format!(
                    "option line left out: {}",
                    code.split_whitespace().next().unwrap_or(code)
                ),
            );
            continue;
        }
        // requirement [; markers] [--hash ...]
        let req = code.split(" --").next().unwrap_or(code);
        let req = req.split(';').next().unwrap_or(req).trim();
        if req.contains("://") || req.starts_with('.') || req.starts_with('/') {
            out.note(
                Some(n),
                "URL or path requirement left out (no pinned version)",
            );
            continue;
        }
        if let Some(open) = req.find('[')
            && !req[open..].contains(']')
        {
            return Err(ParseError::line(n, format!("unclosed extras in {req:?}")));
        }
        let (name_part, version) = if let Some((a, b)) = req.split_once("===") {
            (a, b)
        } else if let Some((a, b)) = req.split_once("==") {
            (a, b)
        } else {
            let name: String = req
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                .collect();
            let rest = req[name.len()..].trim_start();
            let spec_ok = rest.is_empty() || rest.starts_with(['[', '<', '>', '=', '!', '~', '@']);
            if !name_ok(&name) || !spec_ok {
                return Err(ParseError::line(n, format!("not a requirement: {req:?}")));
            }
            out.note(Some(n), format!("{name} is not pinned with == (left out)"));
            continue;
        };
        let name = name_part.split('[').next().unwrap_or(name_part).trim();
        let version = version.trim();
        if !name_ok(name) {
            return Err(ParseError::line(
                n,
                format!("invalid package name {name:?}"),
            ));
        }
        if version.ends_with(".*") {
            out.note(
                Some(n),
                format!("{name}=={version} is a wildcard, not a pin (left out)"),
            );
            continue;
        }
        if !pep440_ok(version) {
            return Err(ParseError::line(
                n,
                format!("{name}: invalid version {version:?}"),
            ));
        }
        let norm = purl::normalise_pypi(name);
        out.push(component(
            Ecosystem::PyPI,
            None,
            &norm,
            version,
            purl::pypi(&norm, version),
            path,
        ))?;
    }
    Ok(out)
}

/// An installed distribution's `<name>-<version>.dist-info/METADATA` (the core
/// metadata's RFC 822 header: `Name`, `Version`, `License-Expression` or
/// `License`), as pip writes it into site-packages or a `--target` directory.
pub fn parse_dist_info(path: &str, bytes: &[u8]) -> Result<Output, ParseError> {
    let text = text::utf8(bytes)?;
    let (mut name, mut version, mut expression, mut licence) = (None, None, None, None);
    for line in text.lines() {
        if line.trim().is_empty() {
            break; // the header ends; the description follows
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Name" => name = Some(value),
            "Version" => version = Some(value),
            "License-Expression" => expression = Some(value),
            "License" if !value.is_empty() => licence = Some(value),
            _ => {}
        }
    }
    let name = name.ok_or_else(|| ParseError::structure("no Name: header"))?;
    let version = version.ok_or_else(|| ParseError::structure("no Version: header"))?;
    check_tokens("distribution", name, version)?;
    let name = purl::normalise_pypi(name);
    let mut c = component(
        Ecosystem::PyPI,
        None,
        &name,
        version,
        purl::pypi(&name, version),
        path,
    );
    if let Some(l) = expression.or(licence) {
        c.licence = crate::licence::parse_licence(l);
    }
    let mut out = Output::default();
    out.push(c)?;
    Ok(out)
}
