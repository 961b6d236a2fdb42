//! `composer.lock`: `packages` and `packages-dev`, with their `license` arrays
//! (several entries mean a choice: `A OR B`).

use serde::Deserialize;

use super::{Output, check_tokens, component};
use crate::component::Ecosystem;
use crate::error::ParseError;
use crate::licence::parse_any_of;
use crate::{purl, text};

#[derive(Deserialize)]
struct Lock {
    packages: Vec<Package>,
    #[serde(rename = "packages-dev")]
    packages_dev: Option<Vec<Package>>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    version: String,
    #[serde(default)]
    license: Vec<String>,
}

pub fn parse(path: &str, bytes: &[u8]) -> Result<Output, ParseError> {
    let lock: Lock = text::json(bytes)?;
    let mut out = Output::default();
    for p in lock
        .packages
        .iter()
        .chain(lock.packages_dev.iter().flatten())
    {
        check_tokens("package", &p.name, &p.version)?;
        let (vendor, name) = p.name.split_once('/').ok_or_else(|| {
            ParseError::structure(format!("package {:?} is not vendor/name", p.name))
        })?;
        let mut c = component(
            Ecosystem::Packagist,
            Some(&vendor.to_ascii_lowercase()),
            &name.to_ascii_lowercase(),
            &p.version,
            purl::composer(&p.name, &p.version),
            path,
        );
        c.licence = parse_any_of(&p.license);
        out.push(c)?;
    }
    Ok(out)
}
