//! Version ordering per ecosystem, each written to its ecosystem's own rules.
//!
//! [`Version::parse`] turns a string into a comparable value once; comparing two
//! versions of the same [`Scheme`] is then cheap. A string a scheme cannot read
//! is a [`VersionError`], never a panic.

mod alpine;
mod debian;
mod maven;
mod nuget;
mod num;
mod numeric_list;
mod packagist;
mod pypi;
mod rpm;
mod rubygems;
mod semver;

use std::cmp::Ordering;
use std::fmt;

/// The ordering rules a version follows. Several ecosystems share one scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// SemVer 2.0: crates.io, npm, Go (with pseudo-versions), Hex, and others
    /// whose OSV ranges are `SEMVER`.
    Semver,
    /// PEP 440 (PyPI).
    Pypi,
    /// Maven `ComparableVersion`.
    Maven,
    /// RubyGems `Gem::Version`.
    RubyGems,
    /// Composer / PHP `version_compare`.
    Packagist,
    /// `NuGetVersion`.
    NuGet,
    /// dpkg (Debian, Ubuntu).
    Debian,
    /// apk-tools (Alpine).
    Alpine,
    /// rpm `rpmvercmp` with epoch and release (Red Hat, Rocky, Alma, SUSE).
    Rpm,
    /// R `package_version` (CRAN).
    Cran,
    /// Haskell `Data.Version` (Hackage).
    Hackage,
    /// Dart `pub_semver` (Pub): SemVer where build metadata counts.
    Pub,
}

impl Scheme {
    /// Every scheme, for listings.
    pub const ALL: [Scheme; 12] = [
        Scheme::Semver,
        Scheme::Pypi,
        Scheme::Maven,
        Scheme::RubyGems,
        Scheme::Packagist,
        Scheme::NuGet,
        Scheme::Debian,
        Scheme::Alpine,
        Scheme::Rpm,
        Scheme::Cran,
        Scheme::Hackage,
        Scheme::Pub,
    ];

    /// The scheme of an OSV ecosystem name (`affected[].package.ecosystem`);
    /// a `:suffix` such as `Debian:12` or `Alpine:v3.20` is ignored.
    pub fn for_ecosystem(ecosystem: &str) -> Option<Scheme> {
        let base = ecosystem.split_once(':').map_or(ecosystem, |(b, _)| b);
        Some(match base {
            "crates.io" | "npm" | "Go" | "Hex" | "SwiftURL" | "Bitnami" => Scheme::Semver,
            "PyPI" => Scheme::Pypi,
            "Maven" => Scheme::Maven,
            "RubyGems" => Scheme::RubyGems,
            "Packagist" => Scheme::Packagist,
            "NuGet" => Scheme::NuGet,
            "Debian" | "Ubuntu" => Scheme::Debian,
            "Alpine" | "Wolfi" | "Chainguard" => Scheme::Alpine,
            "Red Hat" | "Rocky Linux" | "AlmaLinux" | "openSUSE" | "SUSE" | "Mageia" => Scheme::Rpm,
            "CRAN" => Scheme::Cran,
            "Hackage" => Scheme::Hackage,
            "Pub" => Scheme::Pub,
            _ => return None,
        })
    }

    /// A short stable name.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Semver => "semver",
            Scheme::Pypi => "pypi",
            Scheme::Maven => "maven",
            Scheme::RubyGems => "rubygems",
            Scheme::Packagist => "packagist",
            Scheme::NuGet => "nuget",
            Scheme::Debian => "debian",
            Scheme::Alpine => "alpine",
            Scheme::Rpm => "redhat",
            Scheme::Cran => "cran",
            Scheme::Hackage => "hackage",
            Scheme::Pub => "pub",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A version string the scheme cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{scheme} version {version:?} does not parse: {reason}")]
pub struct VersionError {
    /// The scheme that was asked.
    pub scheme: Scheme,
    /// The input, cut to 128 characters.
    pub version: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl VersionError {
    pub(crate) fn invalid(scheme: Scheme, version: &str, reason: &'static str) -> Self {
        VersionError {
            scheme,
            version: version.chars().take(128).collect(),
            reason,
        }
    }
}

#[derive(Clone, Debug)]
enum Key {
    Semver(semver::Key),
    Pub(semver::Key),
    Pypi(pypi::Key),
    Maven(maven::Item),
    RubyGems(Vec<rubygems::Seg>),
    Packagist(Vec<String>),
    NuGet(nuget::Key),
    Debian(debian::Key),
    Alpine(alpine::Key),
    Rpm(rpm::Key),
    NumericList(Vec<num::Num>),
}

/// A parsed version: its scheme, the text it came from, and a comparable key.
#[derive(Clone, Debug)]
pub struct Version {
    scheme: Scheme,
    raw: String,
    key: Key,
}

/// The longest version string accepted; longer is an error, not a slow compare.
pub const MAX_VERSION_LEN: usize = 256;

impl Version {
    /// Parses `s` under `scheme`'s rules.
    pub fn parse(scheme: Scheme, s: &str) -> Result<Version, VersionError> {
        if s.len() > MAX_VERSION_LEN {
            return Err(VersionError::invalid(scheme, s, "longer than 256 bytes"));
        }
        if s.trim().is_empty() {
            return Err(VersionError::invalid(scheme, s, "empty"));
        }
        let key = match scheme {
            Scheme::Semver => Key::Semver(semver::parse(scheme, s)?),
            Scheme::Pub => Key::Pub(semver::parse(scheme, s)?),
            Scheme::Pypi => Key::Pypi(pypi::parse(s)?),
            Scheme::Maven => Key::Maven(maven::parse(s)?),
            Scheme::RubyGems => Key::RubyGems(rubygems::parse(s)?),
            Scheme::Packagist => Key::Packagist(packagist::parse(s)?),
            Scheme::NuGet => Key::NuGet(nuget::parse(s)?),
            Scheme::Debian => Key::Debian(debian::parse(s)?),
            Scheme::Alpine => Key::Alpine(alpine::parse(s)?),
            Scheme::Rpm => Key::Rpm(rpm::parse(s)?),
            Scheme::Cran | Scheme::Hackage => Key::NumericList(numeric_list::parse(scheme, s)?),
        };
        Ok(Version {
            scheme,
            raw: s.to_owned(),
            key,
        })
    }

    /// The scheme this version was parsed under.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The text it was parsed from.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Orders two versions of the same scheme; `None` across schemes.
    pub fn compare(&self, other: &Version) -> Option<Ordering> {
        if self.scheme != other.scheme {
            return None;
        }
        Some(match (&self.key, &other.key) {
            (Key::Semver(a), Key::Semver(b)) => a.cmp(b),
            (Key::Pub(a), Key::Pub(b)) => semver::cmp_pub(a, b),
            (Key::Pypi(a), Key::Pypi(b)) => a.cmp_key(b),
            (Key::Maven(a), Key::Maven(b)) => maven::cmp(a, b),
            (Key::RubyGems(a), Key::RubyGems(b)) => rubygems::cmp(a, b),
            (Key::Packagist(a), Key::Packagist(b)) => packagist::cmp(a, b),
            (Key::NuGet(a), Key::NuGet(b)) => a.cmp(b),
            (Key::Debian(a), Key::Debian(b)) => debian::cmp(a, b),
            (Key::Alpine(a), Key::Alpine(b)) => alpine::cmp(a, b),
            (Key::Rpm(a), Key::Rpm(b)) => rpm::cmp(a, b),
            (Key::NumericList(a), Key::NumericList(b)) => a.cmp(b),
            _ => return None,
        })
    }
}

impl Version {
    /// Whether the text `s`, parsed under this version's scheme, orders equal
    /// to it (`false` when it does not parse): `compare(parse(s)) == Equal`,
    /// without building a `Version` where the scheme allows (dpkg).
    pub fn equals_text(&self, s: &str) -> bool {
        if s.len() > MAX_VERSION_LEN || s.trim().is_empty() {
            return false;
        }
        match &self.key {
            Key::Debian(k) => debian::cmp_text(k, s) == Some(Ordering::Equal),
            _ => Version::parse(self.scheme, s)
                .is_ok_and(|x| self.compare(&x) == Some(Ordering::Equal)),
        }
    }
}

impl Version {
    /// This version against the text `s` under its scheme, as
    /// `compare(parse(s))` orders them; `None` when `s` does not parse. dpkg
    /// and SemVer compare without building a `Version`.
    pub(crate) fn compare_text(&self, s: &str) -> Option<Ordering> {
        // A text starting with a letter or digit is not blank: no trim.
        let blank =
            || !s.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric) && s.trim().is_empty();
        if s.len() > MAX_VERSION_LEN || blank() {
            return None;
        }
        match &self.key {
            Key::Debian(k) => debian::cmp_text(k, s),
            Key::Semver(k) => semver::cmp_text(k, s),
            _ => Version::parse(self.scheme, s)
                .ok()
                .and_then(|x| self.compare(&x)),
        }
    }
}

/// A dpkg version's (epoch, upstream, revision), as a compiled form keeps it;
/// `None` for another scheme.
pub(crate) fn debian_parts(v: &Version) -> Option<(u64, &str, &str)> {
    match &v.key {
        Key::Debian(k) => Some(debian::parts(k)),
        _ => None,
    }
}

/// A dpkg version against pre-split parts, as [`Version::compare`] with the
/// version they were split from orders them; `None` for another scheme.
pub(crate) fn cmp_debian_parts(
    v: &Version,
    epoch: u64,
    upstream: &str,
    revision: &str,
) -> Option<Ordering> {
    match &v.key {
        Key::Debian(k) => Some(debian::cmp_parts(k, epoch, upstream, revision)),
        _ => None,
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Parses both strings under `scheme` and orders them.
pub fn compare(scheme: Scheme, a: &str, b: &str) -> Result<Ordering, VersionError> {
    let a = Version::parse(scheme, a)?;
    let b = Version::parse(scheme, b)?;
    // Same scheme, so `compare` is always `Some`.
    Ok(a.compare(&b).unwrap_or(Ordering::Equal))
}

#[cfg(test)]
mod tests;
