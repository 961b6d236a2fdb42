//! `Cargo.lock`, lockfile versions 1 to 4 (v1/v2 have no `version` key; v1 keeps
//! checksums under `[metadata]`). Path dependencies (no `source`) are the project's
//! own crates and are left out; their dependencies still resolve.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Output, check_tokens, component};
use crate::component::Ecosystem;
use crate::error::ParseError;
use crate::{purl, text};

#[derive(Deserialize)]
struct Lock {
    version: Option<i64>,
    #[serde(default)]
    package: Vec<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    version: String,
    source: Option<String>,
    #[serde(default)]
    dependencies: Vec<String>,
}

pub fn parse(path: &str, bytes: &[u8]) -> Result<Output, ParseError> {
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
    // name -> versions, to resolve "name" / "name version" / "name version (source)".
    let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in &lock.package {
        check_tokens("package", &p.name, &p.version)?;
        by_name.entry(&p.name).or_default().push(&p.version);
    }
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
            &p.name,
            &p.version,
            purl::cargo(&p.name, &p.version),
            path,
        );
        for dep in &p.dependencies {
            let mut parts = dep.split(' ');
            let name = parts.next().unwrap_or_default();
            let versions = by_name.get(name).ok_or_else(|| {
                ParseError::structure(format!(
                    "{}: dependency {dep:?} is not in the lockfile",
                    p.name
                ))
            })?;
            let version = match (parts.next(), versions.as_slice()) {
                (Some(v), _) => *versions.iter().find(|x| **x == v).ok_or_else(|| {
                    ParseError::structure(format!(
                        "{}: dependency {dep:?} is not in the lockfile",
                        p.name
                    ))
                })?,
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
    // Dependencies on path crates point at nothing in the SBOM: drop them.
    let known: std::collections::BTreeSet<String> =
        out.components.iter().map(|c| c.purl.clone()).collect();
    for c in &mut out.components {
        c.dependencies.retain(|d| known.contains(d));
    }
    Ok(out)
}
