//! Alpine ordering: apk's `number{.number}...{letter}{_suffix{number}}...{~hash}{-r#}`.
//!
//! Valid versions order as apk-tools does: number components by value (after the
//! first, a component with a leading zero compares as a string, as in Gentoo);
//! then the letter; then suffixes `alpha` < `beta` < `pre` < `rc` < (none) <
//! `cvs` < `svn` < `git` < `hg` < `p`, each with its number; then `-rN`.
//! Commit hashes are not compared. Malformed versions follow the behaviour
//! google/osv-scalibr documents for apk-tools 2.10 (its `AlpineVersion`): the
//! letter part may repeat with numbers (`1.0a9b10`), empty number components
//! have their own order, comparison stops at the first invalid token, and an
//! unparsed remainder orders after a clean end (with the special cases below).

use super::num::{Num, all_digits};
use super::{Scheme, VersionError};
use std::cmp::Ordering;

#[derive(Clone, Debug)]
struct NumComp {
    original: String,
    /// `None` for an empty component (`1..2`).
    value: Option<Num>,
    first: bool,
    trailing: bool,
}

#[derive(Clone, Debug)]
struct Letter {
    letter: u8,
    number: Option<Num>,
}

#[derive(Clone, Debug)]
struct Suffix {
    weight: usize,
    number: Num,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Last {
    Numeric,
    Letter,
    Suffix,
    Hash,
    Build,
}

#[derive(Clone, Debug)]
pub(crate) struct Key {
    components: Vec<NumComp>,
    letters: Vec<Letter>,
    suffixes: Vec<Suffix>,
    build: Num,
    remainder: String,
    last: Last,
}

/// Suffix names in the order `_(alpha|beta|pre|rc|cvs|svn|git|hg|p)` is tried,
/// with their weights (4 is "no suffix").
const SUFFIXES: [(&str, usize); 9] = [
    ("alpha", 0),
    ("beta", 1),
    ("pre", 2),
    ("rc", 3),
    ("cvs", 5),
    ("svn", 6),
    ("git", 7),
    ("hg", 8),
    ("p", 9),
];
const NO_SUFFIX: usize = 4;

fn digits_len(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

pub(crate) fn parse(s: &str) -> Result<Key, VersionError> {
    let t = s.trim();
    if t.is_empty() || t.chars().any(char::is_whitespace) || !t.is_ascii() {
        return Err(VersionError::invalid(
            Scheme::Alpine,
            s,
            "empty, non-ASCII or contains whitespace",
        ));
    }
    // A leading 0 changes no version (".0" = "0.0" = "00.0") and makes the
    // first component always present.
    let owned = format!("0{t}");
    let mut rest: &str = &owned;

    // Number components: the longest prefix of digits and dots.
    let n = rest
        .bytes()
        .take_while(|c| c.is_ascii_digit() || *c == b'.')
        .count();
    let parts: Vec<&str> = rest[..n].split('.').collect();
    let count = parts.len();
    let components = parts
        .iter()
        .enumerate()
        .map(|(i, d)| NumComp {
            original: (*d).to_owned(),
            value: all_digits(d).then(|| Num::new(d)),
            first: i == 0,
            trailing: d.is_empty() && i == count - 1,
        })
        .collect();
    let mut last = Last::Numeric;
    rest = &rest[n..];

    // Letters: `([a-z]\d+)*([a-z]\d*)`.
    let mut letters = Vec::new();
    loop {
        let b = rest.as_bytes();
        let Some(&c) = b.first().filter(|c| c.is_ascii_lowercase()) else {
            break;
        };
        let d = digits_len(&b[1..]);
        letters.push(Letter {
            letter: c,
            number: (d > 0).then(|| Num::new(&rest[1..1 + d])),
        });
        last = Last::Letter;
        rest = &rest[1 + d..];
        if d == 0 {
            break;
        }
    }

    // Suffixes: every `_name{digits}` match in the rest counts; a match is
    // consumed only when it is at the front.
    let mut suffixes = Vec::new();
    let mut i = 0;
    let bytes = rest.as_bytes().to_vec();
    let mut consumed = 0;
    while i < bytes.len() {
        if bytes[i] != b'_' {
            i += 1;
            continue;
        }
        let after = &rest[i + 1..];
        match SUFFIXES.iter().find(|(name, _)| after.starts_with(name)) {
            Some(&(name, weight)) => {
                let d = digits_len(&after.as_bytes()[name.len()..]);
                let digits = &after[name.len()..name.len() + d];
                suffixes.push(Suffix {
                    weight,
                    number: Num::new(digits),
                });
                last = Last::Suffix;
                let end = i + 1 + name.len() + d;
                if i == consumed {
                    consumed = end;
                }
                i = end;
            }
            None => i += 1,
        }
    }
    rest = &rest[consumed..];

    // Commit hash.
    if let Some(h) = rest.strip_prefix('~') {
        let n = h
            .bytes()
            .take_while(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            .count();
        if n > 0 {
            last = Last::Hash;
            rest = &h[n..];
        }
    }

    // Build component.
    let mut build = Num::new("");
    if let Some(r) = rest.strip_prefix("-r") {
        let d = digits_len(r.as_bytes());
        // `-r` alone is revision 0; `-r` followed by a letter is junk.
        if d > 0 || !r.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) {
            build = Num::new(&r[..d]);
            last = Last::Build;
            rest = &r[d..];
        }
    }

    Ok(Key {
        components,
        letters,
        suffixes,
        build,
        remainder: rest.to_owned(),
        last,
    })
}

fn cmp_component(a: &NumComp, b: &NumComp) -> Ordering {
    if !a.first && !b.first {
        match (&a.value, &b.value) {
            (None, None) => return b.trailing.cmp(&a.trailing),
            (None, Some(bv)) => {
                return if a.trailing || !bv.is_zero() {
                    Ordering::Less
                } else {
                    Ordering::Greater
                };
            }
            (Some(av), None) => {
                return if b.trailing || !av.is_zero() {
                    Ordering::Greater
                } else {
                    Ordering::Less
                };
            }
            (Some(_), Some(_)) => {
                if a.original.starts_with('0') || b.original.starts_with('0') {
                    return a.original.as_bytes().cmp(b.original.as_bytes());
                }
            }
        }
    }
    a.value.cmp(&b.value)
}

fn numeric_junk(v: &Key, w: &Key) -> Option<Ordering> {
    if !v.remainder.is_empty() && v.last == Last::Numeric && w.remainder.is_empty() {
        if w.last == Last::Letter {
            // apk-tools 3: an invalid character where a letter may stand
            // (`1.2.0A`) sorts below the letter (`1.2.0d`).
            return Some(Ordering::Less);
        }
        if w.last == Last::Numeric {
            return Some(if v.remainder == "_" {
                Ordering::Greater
            } else {
                Ordering::Less
            });
        }
    }
    None
}

fn letter_junk(v: &Key, w: &Key) -> Option<Ordering> {
    (!v.remainder.is_empty()
        && v.last == Last::Letter
        && w.remainder.is_empty()
        && w.last == Last::Letter)
        .then_some(Ordering::Less)
}

fn final_remainders(v: &Key, w: &Key) -> Ordering {
    match (v.remainder.is_empty(), w.remainder.is_empty()) {
        (true, true) => Ordering::Equal,
        // apk-tools 3: junk after the revision (`1-r-0`) is invalid, below a
        // clean revision; other junk sorts above a clean end.
        (false, true) if v.last == Last::Build => Ordering::Less,
        (true, false) if w.last == Last::Build => Ordering::Greater,
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, false) => match (v.last, w.last) {
            (Last::Numeric, Last::Build) => Ordering::Greater,
            (Last::Build, Last::Numeric) => Ordering::Less,
            _ => Ordering::Equal,
        },
    }
}

pub(crate) fn cmp(v: &Key, w: &Key) -> Ordering {
    let n = v.components.len().min(w.components.len());
    for i in 0..n {
        let o = cmp_component(&v.components[i], &w.components[i]);
        if o != Ordering::Equal {
            return o;
        }
    }
    // apk-tools 3: a dot followed by no digits and then more text (`0.r1`)
    // is invalid there, below a version that goes on validly (`0r2`).
    let dangling = |k: &Key, i: usize| {
        k.components.get(i).is_some_and(|c| c.trailing) && !k.remainder.is_empty() || {
            k.components.get(i).is_some_and(|c| c.trailing) && !k.letters.is_empty()
        }
    };
    if v.components.len() > n && dangling(v, n) && w.components.len() == n {
        return Ordering::Less;
    }
    if w.components.len() > n && dangling(w, n) && v.components.len() == n {
        return Ordering::Greater;
    }
    let o = v.components.len().cmp(&w.components.len());
    if o != Ordering::Equal {
        return o;
    }
    if let Some(o) = numeric_junk(v, w) {
        return o;
    }
    if let Some(o) = numeric_junk(w, v) {
        return o.reverse();
    }
    let n = v.letters.len().min(w.letters.len());
    for i in 0..n {
        let (a, b) = (&v.letters[i], &w.letters[i]);
        let o = a
            .letter
            .cmp(&b.letter)
            .then_with(|| a.number.cmp(&b.number));
        if o != Ordering::Equal {
            return o;
        }
    }
    let o = v.letters.len().cmp(&w.letters.len());
    if o != Ordering::Equal {
        return o;
    }
    if let Some(o) = letter_junk(v, w) {
        return o;
    }
    if let Some(o) = letter_junk(w, v) {
        return o.reverse();
    }
    let none = Suffix {
        weight: NO_SUFFIX,
        number: Num::new(""),
    };
    for i in 0..v.suffixes.len().max(w.suffixes.len()) {
        let a = v.suffixes.get(i).unwrap_or(&none);
        let b = w.suffixes.get(i).unwrap_or(&none);
        let o = a
            .weight
            .cmp(&b.weight)
            .then_with(|| a.number.cmp(&b.number));
        if o != Ordering::Equal {
            return o;
        }
    }
    let o = v.build.cmp(&w.build);
    if o != Ordering::Equal {
        return o;
    }
    final_remainders(v, w)
}
