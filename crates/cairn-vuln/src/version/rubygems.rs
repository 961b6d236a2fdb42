//! RubyGems ordering: `Gem::Version#<=>`.
//!
//! `-` becomes `.pre.`; segments are runs of digits (numbers) or letters
//! (strings); trailing zeros of the numeric release part and of the string
//! part are dropped (`canonical_segments`); a string segment sorts before a
//! number, strings compare bytewise, a missing segment counts as 0.

use super::num::Num;
use super::{Scheme, VersionError};
use std::cmp::Ordering;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    Num(Num),
    Str(String),
}

pub(crate) fn parse(s: &str) -> Result<Vec<Seg>, VersionError> {
    let t = s.trim();
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(VersionError::invalid(
            Scheme::RubyGems,
            s,
            "empty or has a character outside [0-9A-Za-z.-]",
        ));
    }
    if !t.as_bytes()[0].is_ascii_digit() {
        return Err(VersionError::invalid(
            Scheme::RubyGems,
            s,
            "does not start with a digit",
        ));
    }
    let v = t.replace('-', ".pre.");
    let b = v.as_bytes();
    let mut segs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let n = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            segs.push(Seg::Num(Num::new(&v[i..i + n])));
            i += n;
        } else if b[i].is_ascii_alphabetic() {
            let n = b[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            segs.push(Seg::Str(v[i..i + n].to_owned()));
            i += n;
        } else {
            i += 1;
        }
    }
    // canonical_segments: split at the first string, drop trailing zeros of each half.
    let split = segs
        .iter()
        .position(|s| matches!(s, Seg::Str(_)))
        .unwrap_or(segs.len());
    let mut strings = segs.split_off(split);
    let mut nums = segs;
    let zero = |s: &Seg| matches!(s, Seg::Num(n) if n.is_zero());
    while nums.last().is_some_and(zero) {
        nums.pop();
    }
    while strings.last().is_some_and(zero) {
        strings.pop();
    }
    nums.extend(strings);
    Ok(nums)
}

pub(crate) fn cmp(a: &[Seg], b: &[Seg]) -> Ordering {
    let zero = Seg::Num(Num::new(""));
    for i in 0..a.len().max(b.len()) {
        let l = a.get(i).unwrap_or(&zero);
        let r = b.get(i).unwrap_or(&zero);
        let o = match (l, r) {
            (Seg::Num(x), Seg::Num(y)) => x.cmp(y),
            (Seg::Str(x), Seg::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
            (Seg::Str(_), Seg::Num(_)) => Ordering::Less,
            (Seg::Num(_), Seg::Str(_)) => Ordering::Greater,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}
