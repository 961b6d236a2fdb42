//! Red Hat ordering: `[epoch:]version[-release]`, each part by rpm's `rpmvercmp`
//! (non-ASCII characters are separators, as bytes outside `[0-9A-Za-z~^]` are).
//!
//! `rpmvercmp` walks alternating runs of digits and letters, skipping other
//! separators: `~` sorts before everything (pre-releases), `^` after the end
//! but before anything else; a numeric run beats an alphabetic one; numbers
//! compare by value; when one side runs out, the longer one is newer.

use super::num::cmp_digits;
use super::{Scheme, VersionError};
use std::cmp::Ordering;

#[derive(Clone, Debug)]
pub(crate) struct Key {
    epoch: String,
    version: String,
    /// `None` without a `-`; a present release (even empty) sorts above none.
    release: Option<String>,
}

/// `[epoch:]version[-release]`: the epoch is whatever precedes the first `:`
/// (compared with `rpmvercmp`, so a non-numeric one still orders), the release
/// whatever follows the last `-`.
pub(crate) fn parse(s: &str) -> Result<Key, VersionError> {
    let t = s.trim();
    if t.is_empty() || t.chars().any(char::is_whitespace) {
        return Err(VersionError::invalid(
            Scheme::Rpm,
            s,
            "empty or contains whitespace",
        ));
    }
    let (epoch, rest) = t.split_once(':').unwrap_or(("0", t));
    let (version, release) = match rest.rsplit_once('-') {
        Some((v, r)) => (v, Some(r.to_owned())),
        None => (rest, None),
    };
    Ok(Key {
        epoch: if epoch.is_empty() { "0" } else { epoch }.to_owned(),
        version: version.to_owned(),
        release,
    })
}

/// rpm's `rpmvercmp` (rpmio/rpmvercmp.c).
pub(crate) fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    while i < a.len() || j < b.len() {
        while i < a.len() && sep(a[i]) {
            i += 1;
        }
        while j < b.len() && sep(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(ca), Some(_)) = (ca, cb) else { break };
        let (si, sj) = (i, j);
        let isnum = ca.is_ascii_digit();
        let class = |c: &u8| {
            if isnum {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        while i < a.len() && class(&a[i]) {
            i += 1;
        }
        while j < b.len() && class(&b[j]) {
            j += 1;
        }
        if j == sj {
            return if isnum {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (x, y) = (&a[si..i], &b[sj..j]);
        let o = if isnum {
            cmp_digits(
                std::str::from_utf8(x).unwrap_or(""),
                std::str::from_utf8(y).unwrap_or(""),
            )
        } else {
            x.cmp(y)
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    match (i < a.len(), j < b.len()) {
        (false, false) => Ordering::Equal,
        (true, _) => Ordering::Greater,
        (false, true) => Ordering::Less,
    }
}

pub(crate) fn cmp(a: &Key, b: &Key) -> Ordering {
    rpmvercmp(&a.epoch, &b.epoch)
        .then_with(|| rpmvercmp(&a.version, &b.version))
        .then_with(|| match (&a.release, &b.release) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => rpmvercmp(x, y),
        })
}
