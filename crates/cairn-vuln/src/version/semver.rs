//! Semantic Versioning 2.0.0 ordering, as used by crates.io, npm, Go and Hex.
//!
//! Lenient where those ecosystems are: a leading `v` (Go), any number of core
//! components (missing ones count as zero), numbers of any length. Build metadata
//! (`+build`, Go's `+incompatible`) never affects order. Go pseudo-versions
//! (`v0.0.0-20191109021931-daa7c04131f5`) are ordinary pre-releases and sort as the
//! Go toolchain sorts them.

use super::num::{Num, all_digits};
use super::{Scheme, VersionError};
use std::cmp::Ordering;

/// A pre-release or build identifier (SemVer §11.4: numeric ones sort first).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Ident {
    Numeric(Num),
    Alpha(String),
}

#[derive(Clone, Debug)]
pub(crate) struct Key {
    core: Vec<Num>,
    pre: Vec<Ident>,
    /// Kept for Pub, which orders by build metadata; ignored by plain SemVer.
    pub(crate) build: Vec<Ident>,
}

pub(crate) fn parse(scheme: Scheme, s: &str) -> Result<Key, VersionError> {
    let invalid = |reason| VersionError::invalid(scheme, s, reason);
    let t = s.trim();
    let t = t.strip_prefix(['v', 'V']).unwrap_or(t);
    let (rest, build) = match t.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (t, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    if core.is_empty() {
        return Err(invalid("no version core"));
    }
    let core = core
        .split('.')
        .map(|c| {
            if all_digits(c) {
                Ok(Num::new(c))
            } else {
                Err(invalid("core component is not a number"))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let idents = |p: Option<&str>| -> Result<Vec<Ident>, VersionError> {
        let Some(p) = p else { return Ok(Vec::new()) };
        p.split('.')
            .map(|id| {
                if id.is_empty() {
                    Err(invalid("empty identifier"))
                } else if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    Err(invalid("identifier has a character outside [0-9A-Za-z-]"))
                } else if all_digits(id) {
                    Ok(Ident::Numeric(Num::new(id)))
                } else {
                    Ok(Ident::Alpha(id.to_owned()))
                }
            })
            .collect()
    };
    Ok(Key {
        core,
        pre: idents(pre)?,
        build: idents(build)?,
    })
}

fn cmp_core(a: &[Num], b: &[Num]) -> Ordering {
    let zero = Num::new("");
    let n = a.len().max(b.len());
    for i in 0..n {
        let x = a.get(i).unwrap_or(&zero);
        let y = b.get(i).unwrap_or(&zero);
        match x.cmp(y) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    Ordering::Equal
}

/// Compares identifier lists where the empty list is a release (sorts last).
fn cmp_pre(a: &[Ident], b: &[Ident]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.cmp(b),
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_core(&self.core, &other.core).then_with(|| cmp_pre(&self.pre, &other.pre))
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Pub (Dart) orders like SemVer, except that build metadata counts: no build
/// sorts before any build, and builds compare like pre-release identifiers
/// (pub_semver's `Version.compareTo`).
pub(crate) fn cmp_pub(a: &Key, b: &Key) -> Ordering {
    a.cmp(b)
        .then_with(|| match (a.build.is_empty(), b.build.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => a.build.cmp(&b.build),
        })
}
