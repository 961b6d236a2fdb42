//! `package-lock.json` (and `npm-shrinkwrap.json`), lockfile versions 2 and 3: the
//! `packages` map keyed by install path. Version 1 (no `packages`) is refused.
//! Linked and workspace packages (not under `node_modules/`) are the project's own.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Output, check_tokens, component};
use crate::component::Ecosystem;
use crate::error::ParseError;
use crate::licence::parse_licence;
use crate::{purl, text};

#[derive(Deserialize)]
struct Lock {
    #[serde(rename = "lockfileVersion")]
    lockfile_version: Option<i64>,
    packages: Option<BTreeMap<String, Package>>,
}

#[derive(Deserialize)]
struct Package {
    name: Option<String>,
    version: Option<String>,
    #[serde(default)]
    link: bool,
    license: Option<serde_json::Value>,
}

pub fn parse(path: &str, bytes: &[u8]) -> Result<Output, ParseError> {
    let lock: Lock = text::json(bytes)?;
    match lock.lockfile_version {
        Some(2) | Some(3) => {}
        Some(v) => {
            return Err(ParseError::UnsupportedVersion {
                found: v.to_string(),
                supported: "2, 3",
            });
        }
        None => return Err(ParseError::structure("no lockfileVersion")),
    }
    let packages = lock
        .packages
        .ok_or_else(|| ParseError::structure("no \"packages\" map"))?;
    let mut out = Output::default();
    for (key, p) in &packages {
        if key.is_empty() {
            continue; // the root project
        }
        let Some(idx) = key.rfind("node_modules/") else {
            out.note(
                None,
                format!("{key} is a workspace package (the project's own)"),
            );
            continue;
        };
        if p.link {
            out.note(None, format!("{key} is a link to a local package"));
            continue;
        }
        let install_name = &key[idx + "node_modules/".len()..];
        let name = p.name.as_deref().unwrap_or(install_name);
        let version = p
            .version
            .as_deref()
            .ok_or_else(|| ParseError::structure(format!("{key}: no version")))?;
        out.push(package(key, name, version, p.license.as_ref(), path)?)?;
    }
    Ok(out)
}

/// One npm package (`name` possibly `@scope/name`) as a component, its
/// `license` field read as an SPDX expression; `what` names it in errors.
fn package(
    what: &str,
    name: &str,
    version: &str,
    license: Option<&serde_json::Value>,
    path: &str,
) -> Result<crate::Component, ParseError> {
    check_tokens(what, name, version)?;
    let (ns, short) = match name.split_once('/') {
        Some((scope, n)) if scope.starts_with('@') => (Some(scope), n),
        _ => (None, name),
    };
    let mut c = component(
        Ecosystem::Npm,
        ns,
        short,
        version,
        purl::npm(name, version),
        path,
    );
    c.licence = match license {
        Some(serde_json::Value::String(s)) => parse_licence(s),
        Some(other) => crate::licence::Licence::Unknown(other.to_string()),
        None => crate::licence::Licence::NotGiven,
    };
    Ok(c)
}

#[derive(Deserialize)]
struct Installed {
    name: Option<String>,
    version: Option<String>,
    license: Option<serde_json::Value>,
}

/// An installed package's `node_modules/<name>/package.json` (or
/// `node_modules/@scope/<name>/package.json`): the name (from the file, else the
/// directory it is installed in), version and licence.
pub fn parse_installed(path: &str, bytes: &[u8]) -> Result<Output, ParseError> {
    let p: Installed = text::json(bytes)?;
    let install_name = path
        .rfind("node_modules/")
        .map(|i| &path[i + "node_modules/".len()..])
        .and_then(|rest| rest.strip_suffix("/package.json"))
        .unwrap_or("");
    let name = p.name.as_deref().unwrap_or(install_name);
    let version = p
        .version
        .as_deref()
        .ok_or_else(|| ParseError::structure("no version"))?;
    let mut out = Output::default();
    out.push(package("package", name, version, p.license.as_ref(), path)?)?;
    Ok(out)
}
