//! Packagist (Composer) ordering: PHP's `version_compare` after Composer-style
//! canonicalisation.
//!
//! A leading `v`/`V` is dropped; `-`, `_`, `+` become `.`; a `.` is inserted at
//! every digit/non-digit transition. Parts compare numerically when both are
//! numbers; otherwise by special form, matched by prefix: unknown < `dev` <
//! `alpha`=`a` < `beta`=`b` < `RC`=`rc` < `#` (a number) < `pl`=`p`. When one
//! version runs out, a following number makes the longer one greater; a
//! following word is compared against `#` (so `1.0-beta < 1.0 < 1.0-pl1`).

use super::num::{all_digits, cmp_digits};
use super::{Scheme, VersionError};
use std::cmp::Ordering;

pub(crate) fn parse(s: &str) -> Result<Vec<String>, VersionError> {
    let t = s.trim();
    if t.is_empty() || t.chars().any(char::is_whitespace) || !t.is_ascii() {
        return Err(VersionError::invalid(
            Scheme::Packagist,
            s,
            "empty, non-ASCII or contains whitespace",
        ));
    }
    let t = t.strip_prefix(['v', 'V']).unwrap_or(t);
    let mut canon = String::with_capacity(t.len() + 4);
    let mut prev: Option<char> = None;
    for c in t.chars() {
        let c = if matches!(c, '-' | '_' | '+') { '.' } else { c };
        if let Some(p) = prev
            && p != '.'
            && c != '.'
            && p.is_ascii_digit() != c.is_ascii_digit()
        {
            canon.push('.');
        }
        canon.push(c);
        prev = Some(c);
    }
    Ok(canon.split('.').map(str::to_owned).collect())
}

fn special_weight(s: &str) -> i32 {
    let l = s.to_ascii_lowercase();
    const FORMS: [(&str, i32); 8] = [
        ("dev", 0),
        ("alpha", 1),
        ("a", 1),
        ("beta", 2),
        ("b", 2),
        ("rc", 3),
        ("#", 4),
        ("p", 5),
    ];
    FORMS
        .iter()
        .find(|(f, _)| l.starts_with(f))
        .map_or(-1, |(_, w)| *w)
}

fn cmp_special(a: &str, b: &str) -> Ordering {
    special_weight(a).cmp(&special_weight(b))
}

pub(crate) fn cmp(a: &[String], b: &[String]) -> Ordering {
    let n = a.len().min(b.len());
    for i in 0..n {
        let (x, y) = (a[i].as_str(), b[i].as_str());
        let o = match (all_digits(x), all_digits(y)) {
            (true, true) => cmp_digits(x, y),
            (false, false) => cmp_special(x, y),
            (true, false) => cmp_special("#", y),
            (false, true) => cmp_special(x, "#"),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    let hash = ["#".to_owned()];
    match a.len().cmp(&b.len()) {
        Ordering::Greater => {
            if all_digits(&a[n]) {
                Ordering::Greater
            } else {
                cmp(&a[n..], &hash)
            }
        }
        Ordering::Less => {
            if all_digits(&b[n]) {
                Ordering::Less
            } else {
                cmp(&hash, &b[n..])
            }
        }
        Ordering::Equal => Ordering::Equal,
    }
}
