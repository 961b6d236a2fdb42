//! Debian ordering: dpkg's `dpkg_version_compare` (deb-version(7)).
//!
//! `[epoch:]upstream[-revision]`: epochs compare as numbers, then upstream and
//! revision with `verrevcmp`: alternating non-digit runs (letters before other
//! characters, `~` before everything including the end) and digit runs (by
//! value). A missing revision equals `0`.

use super::num::all_digits;
use super::{Scheme, VersionError};
use std::cmp::Ordering;

#[derive(Clone, Debug)]
pub(crate) struct Key {
    epoch: u64,
    upstream: String,
    revision: String,
}

pub(crate) fn parse(s: &str) -> Result<Key, VersionError> {
    let (epoch, upstream, revision) =
        split(s).map_err(|reason| VersionError::invalid(Scheme::Debian, s, reason))?;
    Ok(Key {
        epoch,
        upstream: upstream.to_owned(),
        revision: revision.to_owned(),
    })
}

/// `[epoch:]upstream[-revision]` split, borrowed from `s`: what [`parse`]
/// keeps, without allocating (a listed version compared to the installed one
/// is split, compared and dropped).
fn split(s: &str) -> Result<(u64, &str, &str), &'static str> {
    let t = s.trim();
    if t.is_empty() || t.chars().any(char::is_whitespace) || !t.is_ascii() {
        return Err("empty, non-ASCII or contains whitespace");
    }
    let (epoch, rest) = match t.split_once(':') {
        Some((e, r)) => {
            if !all_digits(e) {
                return Err("epoch is not a number");
            }
            (e.parse::<u64>().map_err(|_| "epoch too large")?, r)
        }
        None => (0, t),
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((u, r)) => (u, r),
        None => (rest, ""),
    };
    if upstream.is_empty() {
        return Err("empty upstream version");
    }
    Ok((epoch, upstream, revision))
}

/// `key` against the text `s`, as [`cmp`] of `key` and `parse(s)` would order
/// them; `None` when `s` does not parse.
pub(crate) fn cmp_text(key: &Key, s: &str) -> Option<Ordering> {
    let (epoch, upstream, revision) = split(s).ok()?;
    Some(
        key.epoch
            .cmp(&epoch)
            .then_with(|| verrevcmp(&key.upstream, upstream))
            .then_with(|| verrevcmp(&key.revision, revision)),
    )
}

/// The parts [`parse`] kept.
pub(crate) fn parts(key: &Key) -> (u64, &str, &str) {
    (key.epoch, &key.upstream, &key.revision)
}

/// `key` against parts split as [`parse`] splits: [`cmp`] without a `Key`.
pub(crate) fn cmp_parts(key: &Key, epoch: u64, upstream: &str, revision: &str) -> Ordering {
    key.epoch
        .cmp(&epoch)
        .then_with(|| verrevcmp(&key.upstream, upstream))
        .then_with(|| verrevcmp(&key.revision, revision))
}

fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`.
pub(crate) fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let mut first_diff = Ordering::Equal;
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied());
            let bc = order(b.get(j).copied());
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        while i < a.len() && j < b.len() && a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if a.get(i).is_some_and(u8::is_ascii_digit) {
            return Ordering::Greater;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

pub(crate) fn cmp(a: &Key, b: &Key) -> Ordering {
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| verrevcmp(&a.upstream, &b.upstream))
        .then_with(|| verrevcmp(&a.revision, &b.revision))
}
