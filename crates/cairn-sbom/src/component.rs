//! A component: one package at one version, found in one file.

use crate::licence::Licence;

/// The package ecosystem a component belongs to (the OSV ecosystem names where one exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ecosystem {
    Cargo,
    Npm,
    PyPI,
    Go,
    RubyGems,
    Packagist,
    Maven,
    Debian,
    Alpine,
}

impl Ecosystem {
    /// The OSV ecosystem name (`crates.io`, `npm`, `PyPI`, …).
    pub fn osv_name(self) -> &'static str {
        match self {
            Ecosystem::Cargo => "crates.io",
            Ecosystem::Npm => "npm",
            Ecosystem::PyPI => "PyPI",
            Ecosystem::Go => "Go",
            Ecosystem::RubyGems => "RubyGems",
            Ecosystem::Packagist => "Packagist",
            Ecosystem::Maven => "Maven",
            Ecosystem::Debian => "Debian",
            Ecosystem::Alpine => "Alpine",
        }
    }
}

/// The source package an OS binary package was built from (dpkg `Source:`, apk `o:`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SourcePackage {
    pub name: String,
    pub version: String,
}

/// One package at one version, as one file names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub ecosystem: Ecosystem,
    /// npm scope (`@types`), Maven groupId, Go module path prefix, Composer vendor.
    pub namespace: Option<String>,
    pub name: String,
    pub version: String,
    /// The package URL, canonical per the purl spec.
    pub purl: String,
    pub licence: Licence,
    /// The file it came from, as the caller named it.
    pub source_file: String,
    /// OS packages: the architecture.
    pub arch: Option<String>,
    /// OS packages: the source package, where the database names one.
    pub source_package: Option<SourcePackage>,
    /// purls of the components this one depends on, where the file says (sorted).
    pub dependencies: Vec<String>,
    /// The SHA-256 (lowercase hex) of the registry archive the lockfile pins
    /// (`Cargo.lock`'s `checksum`), where it pins one: what lets the engine
    /// accept a downloaded archive as this component's and read its licence.
    pub checksum: Option<String>,
}

impl Component {
    /// The name with its namespace, as the ecosystem writes it
    /// (`@types/node`, `org.slf4j:slf4j-api`, `github.com/pkg/errors`).
    pub fn full_name(&self) -> String {
        match (&self.namespace, self.ecosystem) {
            (None, _) => self.name.clone(),
            (Some(ns), Ecosystem::Maven) => format!("{ns}:{}", self.name),
            (Some(ns), _) => format!("{ns}/{}", self.name),
        }
    }
}
