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

/// `key` against the text `s`, as `key.cmp(parse(s))` orders them (SemVer,
/// not Pub: build metadata never counts), without building a `Key`; `None`
/// when `s` does not parse. Every part of `s` is checked as [`parse`] checks
/// it before anything is compared.
pub(crate) fn cmp_text(key: &Key, s: &str) -> Option<Ordering> {
    if let Some(o) = cmp_plain(key, s) {
        return Some(o);
    }
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
    if core.is_empty() || !core.split('.').all(all_digits) {
        return None;
    }
    let idents_ok = |p: Option<&str>| {
        p.is_none_or(|p| {
            p.split('.').all(|id| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
        })
    };
    if !idents_ok(pre) || !idents_ok(build) {
        return None;
    }
    Some(match cmp_core_text(key, core) {
        Ordering::Equal => cmp_pre_text(key, pre.unwrap_or("")),
        o => o,
    })
}

/// [`cmp_text`] of the common texts, a plain core with perhaps a pre-release
/// (`1.2.3`, `0.0.0-0`, `1.0.0-rc.1`: no `v`, no build metadata, nothing
/// around them), checked and compared in one pass; `None` for any other
/// text, which the general path reads.
fn cmp_plain(key: &Key, s: &str) -> Option<Ordering> {
    let bytes = s.as_bytes();
    // The core: digits and dots, no component empty, up to the first `-`.
    let mut core_end = bytes.len();
    let mut previous = b'.';
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'0'..=b'9' => {}
            b'.' if previous != b'.' => {}
            b'-' if previous != b'.' => {
                core_end = i;
                break;
            }
            _ => return None,
        }
        previous = b;
    }
    if previous == b'.' {
        // Empty, or a trailing dot.
        return None;
    }
    let pre = match bytes.get(core_end + 1..) {
        Some(rest) => {
            // Identifiers of ASCII alphanumerics and `-`, none empty.
            let mut previous = b'.';
            for &b in rest {
                match b {
                    b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'-' => {}
                    b'.' if previous != b'.' => {}
                    _ => return None,
                }
                previous = b;
            }
            if previous == b'.' {
                return None;
            }
            &s[core_end + 1..]
        }
        None => "",
    };
    Some(match cmp_core_text(key, &s[..core_end]) {
        Ordering::Equal => cmp_pre_text(key, pre),
        o => o,
    })
}

/// `key`'s core against a checked core text: missing components count as zero.
fn cmp_core_text(key: &Key, core: &str) -> Ordering {
    let mut theirs = core.split('.');
    let mut i = 0;
    loop {
        let mine = key.core.get(i).map(Num::digits);
        let other = theirs.next();
        if mine.is_none() && other.is_none() {
            return Ordering::Equal;
        }
        match super::num::cmp_digits(mine.unwrap_or(""), other.unwrap_or("")) {
            Ordering::Equal => {}
            o => return o,
        }
        i += 1;
    }
}

/// `key`'s pre-release against a checked one (`""` for none): none sorts after
/// any; else identifier by identifier (numeric before alphanumeric), then the
/// longer list after.
fn cmp_pre_text(key: &Key, pre: &str) -> Ordering {
    match (key.pre.is_empty(), pre.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => {
            let mut theirs = pre.split('.');
            for mine in &key.pre {
                let Some(other) = theirs.next() else {
                    return Ordering::Greater;
                };
                let o = match (mine, all_digits(other)) {
                    (Ident::Numeric(n), true) => super::num::cmp_digits(n.digits(), other),
                    (Ident::Numeric(_), false) => Ordering::Less,
                    (Ident::Alpha(_), true) => Ordering::Greater,
                    (Ident::Alpha(a), false) => a.as_str().cmp(other),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
            if theirs.next().is_some() {
                Ordering::Less
            } else {
                Ordering::Equal
            }
        }
    }
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
