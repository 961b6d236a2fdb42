//! One strict, bounded parser per lockfile or package database. Each takes the file's
//! name (to record where a component came from) and its bytes, and returns the
//! components, notes about what it left out, or an error for the whole file.

pub mod apk;
pub mod cargo;
pub mod composer;
pub mod dpkg;
pub mod go;
pub mod maven;
pub mod npm;
pub mod python;
pub mod ruby;
pub mod rust_toolchain;

use crate::component::{Component, Ecosystem};
use crate::error::ParseError;
use crate::licence::Licence;
use crate::text;

/// What one file yielded.
#[derive(Debug, Default)]
pub struct Output {
    pub components: Vec<Component>,
    /// What the parser deliberately left out, and why (line number where it has one).
    pub notes: Vec<(Option<usize>, String)>,
}

impl Output {
    pub(crate) fn push(&mut self, c: Component) -> Result<(), ParseError> {
        self.components.push(c);
        text::check_count(self.components.len())
    }
    pub(crate) fn note(&mut self, line: Option<usize>, message: impl Into<String>) {
        self.notes.push((line, message.into()));
    }
}

pub(crate) fn component(
    ecosystem: Ecosystem,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    purl: String,
    path: &str,
) -> Component {
    Component {
        ecosystem,
        namespace: namespace.map(str::to_string),
        name: name.to_string(),
        version: version.to_string(),
        purl,
        licence: Licence::NotGiven,
        source_file: path.to_string(),
        arch: None,
        source_package: None,
        dependencies: Vec::new(),
        checksum: None,
    }
}

/// Checks a name and version are plausible tokens, naming the field that is not.
pub(crate) fn check_tokens(what: &str, name: &str, version: &str) -> Result<(), ParseError> {
    if !text::token_ok(name) {
        return Err(ParseError::structure(format!(
            "{what}: invalid package name {name:?}"
        )));
    }
    if !text::token_ok(version) {
        return Err(ParseError::structure(format!(
            "{what} {name}: invalid version {version:?}"
        )));
    }
    Ok(())
}
