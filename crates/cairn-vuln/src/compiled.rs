//! A record's compiled match form per (ecosystem, package): the binary answer
//! to "does version V of this package match", read without JSON.
//!
//! [`compile`] writes, for each (ecosystem, normalised name) a record names,
//! only what deciding that needs: whether the record is withdrawn, and for each
//! of its `affected` entries for that package the ranges (ordering, events
//! sorted as the OSV algorithm walks them, bounds pre-split for dpkg) and the
//! listed versions the ranges do not already cover. A range that cannot be
//! evaluated (an unknown type, a bound that does not parse, no ordering) is
//! kept as a mark only: a form with one never answers "no", so the record is
//! read and the same error is reported as without forms.
//!
//! [`decide`] answers [`Decision::No`] only when [`crate::matches`] of the
//! record would answer `Ok(None)` (not affected, or withdrawn); everything else
//! ([`Decision::Maybe`]: affected, or cannot tell) sends the caller to the record.
//! That is the invariant the conformance test checks on every probe.
//!
//! Encoding (version byte [`FORM_VERSION`]), every integer little-endian,
//! every count and length bounded and checked on decode:
//!
//! ```text
//! form    = version:u8 flags:u8 (bit 0 withdrawn, bit 1 unevaluable range)
//!           entries:u16 entry*
//! entry   = scheme:u8 (0xff none) ranges:u16 range* versions:u32 text*
//! range   = scheme:u8 events:u16 event*
//! event   = kind:u8 (0 introduced, 1 fixed, 2 last_affected, 3 limit) bound
//! bound   = 0 (introduced "0") | 1 text | 2 epoch:u64 text text (dpkg parts)
//! text    = len:u16 bytes (UTF-8, at most MAX_VERSION_LEN)
//! ```
//!
//! A form that is truncated, has trailing bytes, another version byte, a count
//! or length past its bound or the end, an unknown tag, or a bound that no longer
//! parses is a [`FormError`]: the caller reports the record not evaluated.

pub use crate::matching::Installed;
use crate::matching::normalize_name;
use crate::osv::{Advisory, Bound, Compiled, EventKind, RangeKind};
use crate::version::{MAX_VERSION_LEN, Scheme, Version};
use std::cmp::Ordering;

/// The encoding this cairn writes and reads.
pub const FORM_VERSION: u8 = 1;
/// The largest compiled form accepted on decode.
pub const MAX_FORM_BYTES: usize = 4 << 20;
/// The most entries in one form.
pub const MAX_FORM_ENTRIES: usize = crate::osv::MAX_AFFECTED;
/// The most listed versions of one entry.
pub const MAX_FORM_VERSIONS: usize = 1 << 20;

const FLAG_WITHDRAWN: u8 = 1;
const FLAG_UNEVALUABLE: u8 = 2;
const FLAGS_KNOWN: u8 = FLAG_WITHDRAWN | FLAG_UNEVALUABLE;
const NO_SCHEME: u8 = 0xff;

/// What a compiled form says about one installed version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The record does not match (not affected, or withdrawn).
    No,
    /// It matches, or cannot be evaluated: read the record.
    Maybe,
}

/// Why a compiled form cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("compiled match form is corrupt at byte {at}: {reason}")]
pub struct FormError {
    /// Where in the form.
    pub at: usize,
    /// What is wrong.
    pub reason: &'static str,
}

/// A package key (ecosystem, normalised name) and its compiled form, if any.
pub type KeyedForm = ((String, String), Option<Vec<u8>>);

/// The compiled forms of a record: one per (ecosystem, normalised name) its
/// entries name, in the order of first mention. `None` when a form would
/// exceed a bound (keep none: the record is read instead).
pub fn compile(advisory: &Advisory) -> Vec<KeyedForm> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for a in &advisory.affected {
        let key = (a.ecosystem.clone(), normalize_name(&a.ecosystem, &a.name));
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|key| {
            let form = compile_one(advisory, &key.0, &key.1);
            (key, form)
        })
        .collect()
}

fn text(out: &mut Vec<u8>, s: &str) -> Option<()> {
    if s.len() > MAX_VERSION_LEN {
        return None;
    }
    out.extend_from_slice(&u16::try_from(s.len()).ok()?.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Some(())
}

fn scheme_byte(s: Option<Scheme>) -> u8 {
    match s {
        None => NO_SCHEME,
        Some(s) => Scheme::ALL
            .iter()
            .position(|x| *x == s)
            .map_or(NO_SCHEME, |i| i as u8),
    }
}

/// The form of one package of `advisory`.
fn compile_one(advisory: &Advisory, ecosystem: &str, key: &str) -> Option<Vec<u8>> {
    let entries: Vec<_> = advisory
        .affected
        .iter()
        .filter(|a| a.ecosystem == ecosystem && normalize_name(&a.ecosystem, &a.name) == key)
        .collect();
    let mut flags = 0;
    if advisory.is_withdrawn() {
        flags |= FLAG_WITHDRAWN;
    }
    let mut out = vec![FORM_VERSION, 0];
    out.extend_from_slice(&u16::try_from(entries.len()).ok()?.to_le_bytes());
    for entry in entries {
        out.push(scheme_byte(entry.scheme));
        let count_at = out.len();
        out.extend_from_slice(&[0, 0]);
        let mut ranges: u16 = 0;
        for range in &entry.ranges {
            let events = match &range.compiled {
                Compiled::Git => continue,
                Compiled::Broken(_) => {
                    flags |= FLAG_UNEVALUABLE;
                    continue;
                }
                Compiled::Ready(events) => events,
            };
            let scheme = match range.kind {
                RangeKind::Semver => Scheme::Semver,
                _ => match entry.scheme {
                    Some(s) => s,
                    // Matching skips it too (it is also a record problem).
                    None => continue,
                },
            };
            ranges = ranges.checked_add(1)?;
            out.push(scheme_byte(Some(scheme)));
            out.extend_from_slice(&u16::try_from(events.len()).ok()?.to_le_bytes());
            for (kind, bound) in events {
                out.push(match kind {
                    EventKind::Introduced => 0,
                    EventKind::Fixed => 1,
                    EventKind::LastAffected => 2,
                    EventKind::Limit => 3,
                });
                match bound {
                    Bound::Zero => out.push(0),
                    Bound::At(v) => match crate::version::debian_parts(v) {
                        Some((epoch, upstream, revision)) => {
                            out.push(2);
                            out.extend_from_slice(&epoch.to_le_bytes());
                            text(&mut out, upstream)?;
                            text(&mut out, revision)?;
                        }
                        None => {
                            out.push(1);
                            text(&mut out, v.as_str())?;
                        }
                    },
                }
            }
        }
        out[count_at..count_at + 2].copy_from_slice(&ranges.to_le_bytes());
        let listed: Vec<&String> = entry
            .versions
            .iter()
            .filter(|v| !crate::osv::covered_by_ranges(entry, v))
            .collect();
        if listed.len() > MAX_FORM_VERSIONS {
            return None;
        }
        out.extend_from_slice(&u32::try_from(listed.len()).ok()?.to_le_bytes());
        for v in listed {
            text(&mut out, v)?;
        }
    }
    out[1] = flags;
    (out.len() <= MAX_FORM_BYTES).then_some(out)
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn fail<T>(&self, reason: &'static str) -> Result<T, FormError> {
        Err(FormError {
            at: self.at,
            reason,
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], FormError> {
        match self.at.checked_add(n) {
            Some(end) if end <= self.buf.len() => {
                let s = &self.buf[self.at..end];
                self.at = end;
                Ok(s)
            }
            _ => self.fail("truncated: a field runs past the end"),
        }
    }

    fn u8(&mut self) -> Result<u8, FormError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize, FormError> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_le_bytes([b[0], b[1]])))
    }

    fn u32(&mut self) -> Result<usize, FormError> {
        let b = self.take(4)?;
        usize::try_from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .or_else(|_| self.fail("count too large"))
    }

    fn u64(&mut self) -> Result<u64, FormError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn text(&mut self) -> Result<&'a str, FormError> {
        let len = self.u16()?;
        if len > MAX_VERSION_LEN {
            return self.fail("a version longer than its bound");
        }
        let b = self.take(len)?;
        std::str::from_utf8(b).or_else(|_| self.fail("a version is not UTF-8"))
    }

    fn scheme(&mut self) -> Result<Option<Scheme>, FormError> {
        match self.u8()? {
            NO_SCHEME => Ok(None),
            i => match Scheme::ALL.get(usize::from(i)) {
                Some(s) => Ok(Some(*s)),
                None => self.fail("unknown version ordering"),
            },
        }
    }

    /// A count of items each at least `min` bytes long, checked against what is
    /// left, so a count can never promise more than the form holds.
    fn count(&mut self, n: usize, min: usize, max: usize) -> Result<usize, FormError> {
        if n > max || n.saturating_mul(min) > self.buf.len() - self.at {
            return self.fail("a count past its bound or the end");
        }
        Ok(n)
    }
}

/// Reads a whole form (every byte is checked, whatever the answer) and
/// decides it for `installed`.
pub fn decide(form: &[u8], installed: &mut Installed<'_>) -> Result<Decision, FormError> {
    let mut r = Reader { buf: form, at: 0 };
    if form.len() > MAX_FORM_BYTES {
        return r.fail("longer than its bound");
    }
    if r.u8()? != FORM_VERSION {
        r.at = 0;
        return r.fail("unknown form version");
    }
    let flags = r.u8()?;
    if flags & !FLAGS_KNOWN != 0 {
        return r.fail("unknown flags");
    }
    let n = r.u16()?;
    let entries = r.count(n, 7, MAX_FORM_ENTRIES)?;
    // `Maybe` once anything says affected or cannot tell; reading goes on to
    // the end either way, so a corrupt tail is never hidden by an early answer.
    let mut maybe = flags & FLAG_UNEVALUABLE != 0;
    for _ in 0..entries {
        let entry_scheme = r.scheme()?;
        let n = r.u16()?;
        let ranges = r.count(n, 3, usize::from(u16::MAX))?;
        for _ in 0..ranges {
            let Some(scheme) = r.scheme()? else {
                return r.fail("a range without an ordering");
            };
            let n = r.u16()?;
            let events = r.count(n, 2, crate::osv::MAX_EVENTS_PER_RANGE)?;
            let version: Option<&Version> = if maybe {
                None
            } else {
                match installed.get(scheme) {
                    Ok(v) => Some(v),
                    Err(_) => {
                        // Matching reports the installed version: the record says why.
                        maybe = true;
                        None
                    }
                }
            };
            let mut walk = Walk::default();
            for _ in 0..events {
                let kind = r.u8()?;
                if kind > 3 {
                    return r.fail("unknown event kind");
                }
                let ord = match r.u8()? {
                    0 => None,
                    1 => {
                        let t = r.text()?;
                        match version {
                            Some(v) => match v.compare_text(t) {
                                Some(o) => Some(o),
                                None => return r.fail("a bound does not parse"),
                            },
                            None => None,
                        }
                    }
                    2 => {
                        if scheme != Scheme::Debian {
                            return r.fail("dpkg parts in a range of another ordering");
                        }
                        let epoch = r.u64()?;
                        let upstream = r.text()?;
                        let revision = r.text()?;
                        if upstream.is_empty() {
                            return r.fail("a bound does not parse");
                        }
                        version.and_then(|v| {
                            crate::version::cmp_debian_parts(v, epoch, upstream, revision)
                        })
                    }
                    _ => return r.fail("unknown bound tag"),
                };
                walk.event(kind, ord);
            }
            if version.is_some() && walk.affected() {
                maybe = true;
            }
        }
        let n = r.u32()?;
        let listed = r.count(n, 2, MAX_FORM_VERSIONS)?;
        for _ in 0..listed {
            let t = r.text()?;
            if !maybe && listed_matches(t, entry_scheme, installed) {
                maybe = true;
            }
        }
    }
    if r.at != form.len() {
        return r.fail("trailing bytes after the form");
    }
    Ok(if flags & FLAG_WITHDRAWN != 0 {
        Decision::No
    } else if maybe {
        Decision::Maybe
    } else {
        Decision::No
    })
}

/// The listed-version test of matching: the text as written, or equal under
/// the entry's ordering.
fn listed_matches(listed: &str, scheme: Option<Scheme>, installed: &mut Installed<'_>) -> bool {
    if listed == installed.raw() {
        return true;
    }
    let Some(scheme) = scheme else {
        return false;
    };
    installed.get(scheme).is_ok_and(|v| v.equals_text(listed))
}

/// The OSV walk of one range's sorted events, fed with the installed version
/// against each bound (`None`: the `introduced: "0"` bound, below everything).
#[derive(Default)]
struct Walk {
    affected: bool,
    limits: bool,
    below_a_limit: bool,
}

impl Walk {
    fn event(&mut self, kind: u8, ord: Option<Ordering>) {
        let ge = ord.is_none_or(|o| o != Ordering::Less);
        let gt = ord.is_none_or(|o| o == Ordering::Greater);
        match kind {
            0 if ge => self.affected = true,
            1 if ge => self.affected = false,
            2 if gt => self.affected = false,
            3 => {
                self.limits = true;
                if !ge {
                    self.below_a_limit = true;
                }
            }
            _ => {}
        }
    }

    fn affected(&self) -> bool {
        self.affected && (!self.limits || self.below_a_limit)
    }
}

#[cfg(test)]
mod tests;
