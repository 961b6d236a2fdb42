//! NuGet ordering: `NuGetVersion` with `VersionComparer.Default`.
//!
//! Up to four numeric parts (major.minor.patch.revision, missing = 0), then
//! SemVer 2.0 release labels compared case-insensitively (numeric labels by
//! value and before alphanumeric ones; fewer labels sort first); a version
//! without labels is above its pre-releases; metadata after `+` is ignored.

use super::num::{Num, all_digits};
use super::{Scheme, VersionError};
use std::cmp::Ordering;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Label {
    Numeric(Num),
    Alpha(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    parts: [Num; 4],
    labels: Vec<Label>,
}

pub(crate) fn parse(s: &str) -> Result<Key, VersionError> {
    let invalid = |reason| VersionError::invalid(Scheme::NuGet, s, reason);
    let t = s.trim();
    let t = t.strip_prefix(['v', 'V']).unwrap_or(t);
    let main = t.split_once('+').map_or(t, |(m, _)| m);
    let (core, pre) = match main.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (main, None),
    };
    let nums: Vec<&str> = core.split('.').collect();
    if nums.len() > 4 || nums.iter().any(|n| !all_digits(n)) {
        return Err(invalid("needs one to four numeric parts"));
    }
    let part = |i: usize| Num::new(nums.get(i).copied().unwrap_or(""));
    let labels = match pre {
        None => Vec::new(),
        Some(p) => p
            .split('.')
            .map(|l| {
                if l.is_empty() || !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    Err(invalid("bad release label"))
                } else if all_digits(l) {
                    Ok(Label::Numeric(Num::new(l)))
                } else {
                    Ok(Label::Alpha(l.to_ascii_lowercase()))
                }
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(Key {
        parts: [part(0), part(1), part(2), part(3)],
        labels,
    })
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts.cmp(&other.parts).then_with(|| {
            match (self.labels.is_empty(), other.labels.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.labels.cmp(&other.labels),
            }
        })
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
