//! A record's compiled match form per (ecosystem, package): the binary answer
//! to "does version V of this package match, and with which finding", read
//! without JSON.
//!
//! [`compile`] writes, for each (ecosystem, normalised name) a record names,
//! only what deciding that needs: whether the record is withdrawn, and for each
//! of its `affected` entries for that package the ranges (ordering, events
//! sorted as the OSV algorithm walks them, bounds pre-split for dpkg), the
//! listed versions the ranges do not already cover, whether a range cannot be
//! evaluated (an unknown type, a bound that does not parse, no ordering: kept
//! as a mark only), and what a finding of that entry says (its fixed versions,
//! its own severity, computed from its CVSS vector at compile time, and its
//! urgency); then once the record's finding head: id, aliases, summary, kind,
//! the record-level severity and the ecosystems the record names.
//!
//! [`decide`] answers [`Decision::No`] exactly when [`crate::matches`] of the
//! record would answer `Ok(None)` (not affected, or withdrawn);
//! [`Decision::Affected`] only when it would answer `Ok(Some(finding))`, with
//! what makes exactly that finding ([`Hit::finding`]); [`Decision::Maybe`]
//! (read the record) for the rest: an entry that cannot tell and none that
//! says affected, or a form that keeps no finding data (a text past its
//! bound). That is the invariant the conformance test checks on every probe.
//!
//! Encoding (version byte [`FORM_VERSION`]), every integer little-endian,
//! every count and length bounded and checked on decode:
//!
//! ```text
//! form     = version:u8 flags:u8 (bit 0 withdrawn, bit 1 head kept)
//!            entries:u16 entry* (head_len:u32 head)?
//! entry    = scheme:u8 (0xff none) eflags:u8 (bit 0 a range cannot be
//!            evaluated, bit 1 finding kept) ranges:u16 range* versions:u32 text*
//!            (finding_len:u32 finding)?
//! range    = scheme:u8 events:u16 event*
//! event    = kind:u8 (0 introduced, 1 fixed, 2 last_affected, 3 limit) bound
//! bound    = 0 (introduced "0") | 1 text | 2 epoch:u64 text text (dpkg parts)
//! text     = len:u16 bytes (UTF-8, at most MAX_VERSION_LEN)
//! finding  = fixed:u16 long* severity urgency:opt(long)
//! head     = id:long aliases:u16 long* summary:opt(long)
//!            kind:u8 (0 vulnerability, 1 unmaintained, 2 unsound, 3 notice,
//!            4 another: long) severity ecosystems:u16 long*
//! severity = 0 (none) | 1 kind:long vector:long score:u64 (f64 bits) rating:u8
//! long     = len:u16 bytes (UTF-8)
//! opt(x)   = 0 | 1 x
//! ```
//!
//! [`decide`] reads and checks every byte of what its answer rests on: every
//! entry's ranges and listed versions, and the finding data and head when it
//! makes a finding of them (an entry that does not match uses none of its
//! finding data, an answer "no" or "maybe" none of the head: each is skipped
//! by its length, checked against the end, so a scan of many packages of one
//! distribution, most answered "no", decodes no finding data for those).
//! A form that is truncated, has trailing bytes, another version byte, a count
//! or length past its bound or the end, an unknown tag, a text that is not
//! UTF-8, a score out of range, or a bound that no longer parses is a
//! [`FormError`] naming the byte: the caller reports the pair not evaluated.
//! Forms of the former version (1, without finding data) are refused the same
//! way; the store's schema v19 dropped them, and the back-fill at the next
//! import writes them again.

pub use crate::matching::Installed;
use crate::matching::{
    Finding, FindingKind, Package, Rating, Severity, fixed_of, normalize_name, severity_of,
    urgency_of,
};
use crate::osv::{Advisory, Affected, Bound, Compiled, EventKind, Informational, RangeKind};
use crate::version::{MAX_VERSION_LEN, Scheme, Version};
use std::cmp::Ordering;

/// The encoding this cairn writes and reads.
pub const FORM_VERSION: u8 = 2;
/// The largest compiled form accepted on decode.
pub const MAX_FORM_BYTES: usize = 4 << 20;
/// The most entries in one form.
pub const MAX_FORM_ENTRIES: usize = crate::osv::MAX_AFFECTED;
/// The most listed versions of one entry.
pub const MAX_FORM_VERSIONS: usize = 1 << 20;
/// The longest text of a finding a form keeps (an id, an alias, the summary,
/// a CVSS vector, a fixed version): a record with a longer one keeps no
/// finding data, and its matches are read from the record.
pub const MAX_FINDING_TEXT: usize = u16::MAX as usize;

const FLAG_WITHDRAWN: u8 = 1;
const FLAG_HEAD: u8 = 2;
const FLAGS_KNOWN: u8 = FLAG_WITHDRAWN | FLAG_HEAD;
const ENTRY_UNEVALUABLE: u8 = 1;
const ENTRY_FINDING: u8 = 2;
const ENTRY_FLAGS_KNOWN: u8 = ENTRY_UNEVALUABLE | ENTRY_FINDING;
const NO_SCHEME: u8 = 0xff;

/// What a compiled form says about one installed version.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<'f> {
    /// The record does not match (not affected, or withdrawn).
    No,
    /// It matches, or cannot be evaluated, and the form cannot say the
    /// finding: read the record.
    Maybe,
    /// It matches, and this is what the record's finding says.
    Affected(Box<Hit<'f>>),
}

/// A severity as a form keeps it (already computed from its CVSS vector).
#[derive(Debug, Clone, Copy, PartialEq)]
struct SeverityRef<'f> {
    kind: &'f str,
    vector: &'f str,
    score: f64,
    rating: Rating,
}

impl SeverityRef<'_> {
    fn owned(&self) -> Severity {
        Severity {
            kind: self.kind.to_owned(),
            vector: self.vector.to_owned(),
            score: self.score,
            rating: self.rating,
        }
    }
}

/// The record-level part of a finding, as a form keeps it.
#[derive(Debug, Clone, PartialEq)]
struct Head<'f> {
    id: &'f str,
    aliases: Vec<&'f str>,
    summary: Option<&'f str>,
    /// `None`: a vulnerability.
    informational: Option<Informational>,
    severity: Option<SeverityRef<'f>>,
    ecosystems: Vec<&'f str>,
}

/// What a form says a finding is, borrowed from the form: the record's
/// head, and of the entries that match the installed version their fixed
/// versions (in entry order, each once) and the first one's severity (else the
/// record's) and urgency, as [`crate::matches`] puts them together.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit<'f> {
    /// Where the head starts in the form.
    head_at: usize,
    head: Head<'f>,
    fixed_versions: Vec<&'f str>,
    severity: Option<SeverityRef<'f>>,
    urgency: Option<&'f str>,
}

impl<'f> Hit<'f> {
    /// The advisory's id.
    pub fn advisory_id(&self) -> &'f str {
        self.head.id
    }

    /// `Ok` when the head is of the advisory `id` (the index row's): a form
    /// stored under another advisory's row is corrupt, never its finding.
    pub fn check_id(&self, id: &str) -> Result<(), FormError> {
        if self.head.id == id {
            Ok(())
        } else {
            Err(FormError {
                at: self.head_at,
                reason: "the head names another advisory than its row",
            })
        }
    }

    /// Every ecosystem the record names (each once, in record order), as a
    /// caller that read the record would learn them.
    pub fn ecosystems(&self) -> &[&'f str] {
        &self.head.ecosystems
    }

    /// The finding for `package` (the installed package this form was
    /// decided for).
    pub fn finding(&self, package: &Package) -> Finding {
        Finding {
            advisory_id: self.head.id.to_owned(),
            aliases: self.head.aliases.iter().map(|a| (*a).to_owned()).collect(),
            summary: self.head.summary.map(str::to_owned),
            kind: match &self.head.informational {
                Some(i) => FindingKind::Informational(i.clone()),
                None => FindingKind::Vulnerability,
            },
            ecosystem: package.ecosystem.clone(),
            package: package.name.clone(),
            installed_version: package.version.clone(),
            fixed_versions: self
                .fixed_versions
                .iter()
                .map(|v| (*v).to_owned())
                .collect(),
            severity: self.severity.or(self.head.severity).map(|s| s.owned()),
            urgency: self.urgency.map(str::to_owned),
        }
    }
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
    let head = head(advisory);
    keys.into_iter()
        .map(|key| {
            let form = compile_one(advisory, &key.0, &key.1, head.as_deref());
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

/// A finding's text; `None` past [`MAX_FINDING_TEXT`].
fn long(out: &mut Vec<u8>, s: &str) -> Option<()> {
    out.extend_from_slice(&u16::try_from(s.len()).ok()?.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Some(())
}

fn opt_long(out: &mut Vec<u8>, s: Option<&str>) -> Option<()> {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            long(out, s)?;
        }
    }
    Some(())
}

fn severity(out: &mut Vec<u8>, s: Option<&Severity>) -> Option<()> {
    let Some(s) = s else {
        out.push(0);
        return Some(());
    };
    out.push(1);
    long(out, &s.kind)?;
    long(out, &s.vector)?;
    out.extend_from_slice(&s.score.to_bits().to_le_bytes());
    out.push(Rating::ALL.iter().position(|r| *r == s.rating)? as u8);
    Some(())
}

/// The record's finding head; `None` when a text or a count is past its bound.
fn head(advisory: &Advisory) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    long(&mut out, &advisory.id)?;
    out.extend_from_slice(&u16::try_from(advisory.aliases.len()).ok()?.to_le_bytes());
    for a in &advisory.aliases {
        long(&mut out, a)?;
    }
    opt_long(&mut out, advisory.summary.as_deref())?;
    match &advisory.informational {
        None => out.push(0),
        Some(Informational::Unmaintained) => out.push(1),
        Some(Informational::Unsound) => out.push(2),
        Some(Informational::Notice) => out.push(3),
        Some(Informational::Other(s)) => {
            out.push(4);
            long(&mut out, s)?;
        }
    }
    severity(&mut out, severity_of(&advisory.severity).as_ref())?;
    let mut ecosystems: Vec<&str> = Vec::new();
    for a in &advisory.affected {
        if !ecosystems.contains(&a.ecosystem.as_str()) {
            ecosystems.push(&a.ecosystem);
        }
    }
    out.extend_from_slice(&u16::try_from(ecosystems.len()).ok()?.to_le_bytes());
    for e in ecosystems {
        long(&mut out, e)?;
    }
    Some(out)
}

/// What a finding of `entry` adds to the head; `None` when past a bound.
fn entry_finding(entry: &Affected) -> Option<Vec<u8>> {
    let fixed: Vec<&str> = fixed_of(entry).collect();
    let mut out = Vec::new();
    out.extend_from_slice(&u16::try_from(fixed.len()).ok()?.to_le_bytes());
    for v in fixed {
        long(&mut out, v)?;
    }
    severity(&mut out, severity_of(&entry.severity).as_ref())?;
    opt_long(&mut out, urgency_of(entry).as_deref())?;
    Some(out)
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

/// The form of one package of `advisory`, with the record's `head` when it
/// could be written.
fn compile_one(
    advisory: &Advisory,
    ecosystem: &str,
    key: &str,
    head: Option<&[u8]>,
) -> Option<Vec<u8>> {
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
        let eflags_at = out.len();
        out.push(0);
        let mut eflags = 0;
        let count_at = out.len();
        out.extend_from_slice(&[0, 0]);
        let mut ranges: u16 = 0;
        for range in &entry.ranges {
            let events = match &range.compiled {
                Compiled::Git => continue,
                Compiled::Broken(_) => {
                    eflags |= ENTRY_UNEVALUABLE;
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
        if let Some(finding) = entry_finding(entry) {
            eflags |= ENTRY_FINDING;
            out.extend_from_slice(&u32::try_from(finding.len()).ok()?.to_le_bytes());
            out.extend_from_slice(&finding);
        }
        out[eflags_at] = eflags;
    }
    if let Some(head) = head {
        flags |= FLAG_HEAD;
        out.extend_from_slice(&u32::try_from(head.len()).ok()?.to_le_bytes());
        out.extend_from_slice(head);
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

    /// A finding's text.
    fn long(&mut self) -> Result<&'a str, FormError> {
        let at = self.at;
        let len = self.u16()?;
        let b = self.take(len)?;
        std::str::from_utf8(b).map_err(|_| FormError {
            at,
            reason: "a text is not UTF-8",
        })
    }

    fn opt_long(&mut self) -> Result<Option<&'a str>, FormError> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.long().map(Some),
            _ => {
                self.at -= 1;
                self.fail("unknown option tag")
            }
        }
    }

    fn severity(&mut self) -> Result<Option<SeverityRef<'a>>, FormError> {
        match self.u8()? {
            0 => return Ok(None),
            1 => {}
            _ => {
                self.at -= 1;
                return self.fail("unknown severity tag");
            }
        }
        let kind = self.long()?;
        let vector = self.long()?;
        let at = self.at;
        let score = f64::from_bits(self.u64()?);
        if !(0.0..=10.0).contains(&score) {
            self.at = at;
            return self.fail("a severity score out of range");
        }
        let rating = match Rating::ALL.get(usize::from(self.u8()?)) {
            Some(r) => *r,
            None => {
                self.at -= 1;
                return self.fail("unknown severity rating");
            }
        };
        Ok(Some(SeverityRef {
            kind,
            vector,
            score,
            rating,
        }))
    }

    /// A list of finding texts, each read and checked.
    fn longs(&mut self) -> Result<Vec<&'a str>, FormError> {
        let n = self.u16()?;
        let n = self.count(n, 2, usize::from(u16::MAX))?;
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(self.long()?);
        }
        Ok(out)
    }

    /// The record's head, every byte read and checked.
    fn head(&mut self) -> Result<Head<'a>, FormError> {
        let id = self.long()?;
        let aliases = self.longs()?;
        let summary = self.opt_long()?;
        let informational = match self.u8()? {
            0 => None,
            1 => Some(Informational::Unmaintained),
            2 => Some(Informational::Unsound),
            3 => Some(Informational::Notice),
            4 => {
                let at = self.at;
                let other = self.long()?;
                if matches!(other, "unmaintained" | "unsound" | "notice") {
                    self.at = at;
                    return self.fail("a known informational kind written as another");
                }
                Some(Informational::Other(other.to_owned()))
            }
            _ => {
                self.at -= 1;
                return self.fail("unknown advisory kind");
            }
        };
        let severity = self.severity()?;
        let ecosystems = self.longs()?;
        Ok(Head {
            id,
            aliases,
            summary,
            informational,
            severity,
            ecosystems,
        })
    }
}

/// Reads a whole form (every byte is checked, whatever the answer) and
/// decides it for `installed`: each entry says affected (a range or a listed
/// version holds the installed version), not affected, or cannot tell (a range
/// that cannot be evaluated, or the installed version does not parse under a
/// range's ordering), as [`crate::matches`]'s entries do.
pub fn decide<'f>(
    form: &'f [u8],
    installed: &mut Installed<'_>,
) -> Result<Decision<'f>, FormError> {
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
        r.at -= 1;
        return r.fail("unknown flags");
    }
    let n = r.u16()?;
    let entries = r.count(n, 8, MAX_FORM_ENTRIES)?;
    // Reading goes on to the end whatever the answer, so a corrupt tail is
    // never hidden by an early one.
    let mut any_affected = false;
    let mut any_unsure = false;
    // Whether every affected entry kept its finding data.
    let mut all_kept = true;
    let mut fixed: Vec<&'f str> = Vec::new();
    let mut first: Option<(Option<SeverityRef<'f>>, Option<&'f str>)> = None;
    for _ in 0..entries {
        let entry_scheme = r.scheme()?;
        let eflags = r.u8()?;
        if eflags & !ENTRY_FLAGS_KNOWN != 0 {
            r.at -= 1;
            return r.fail("unknown entry flags");
        }
        let mut affected = false;
        let mut unsure = eflags & ENTRY_UNEVALUABLE != 0;
        let n = r.u16()?;
        let ranges = r.count(n, 3, usize::from(u16::MAX))?;
        for _ in 0..ranges {
            let Some(scheme) = r.scheme()? else {
                r.at -= 1;
                return r.fail("a range without an ordering");
            };
            let n = r.u16()?;
            let events = r.count(n, 2, crate::osv::MAX_EVENTS_PER_RANGE)?;
            // Once the entry is affected the rest of its ranges are only read.
            let version: Option<&Version> = if affected {
                None
            } else {
                match installed.get(scheme) {
                    Ok(v) => Some(v),
                    Err(_) => {
                        // Matching reports the installed version: the record says why.
                        unsure = true;
                        None
                    }
                }
            };
            let mut walk = Walk::default();
            for _ in 0..events {
                let kind = r.u8()?;
                if kind > 3 {
                    r.at -= 1;
                    return r.fail("unknown event kind");
                }
                let ord = match r.u8()? {
                    0 => None,
                    1 => {
                        let at = r.at;
                        let t = r.text()?;
                        match version {
                            Some(v) => match v.compare_text(t) {
                                Some(o) => Some(o),
                                None => {
                                    r.at = at;
                                    return r.fail("a bound does not parse");
                                }
                            },
                            None => None,
                        }
                    }
                    2 => {
                        if scheme != Scheme::Debian {
                            r.at -= 1;
                            return r.fail("dpkg parts in a range of another ordering");
                        }
                        let at = r.at;
                        let epoch = r.u64()?;
                        let upstream = r.text()?;
                        let revision = r.text()?;
                        if upstream.is_empty() {
                            r.at = at;
                            return r.fail("a bound does not parse");
                        }
                        version.and_then(|v| {
                            crate::version::cmp_debian_parts(v, epoch, upstream, revision)
                        })
                    }
                    _ => {
                        r.at -= 1;
                        return r.fail("unknown bound tag");
                    }
                };
                walk.event(kind, ord);
            }
            if version.is_some() && walk.affected() {
                affected = true;
            }
        }
        let n = r.u32()?;
        let listed = r.count(n, 2, MAX_FORM_VERSIONS)?;
        for _ in 0..listed {
            let t = r.text()?;
            if !affected && listed_matches(t, entry_scheme, installed) {
                affected = true;
            }
        }
        if eflags & ENTRY_FINDING != 0 {
            let len_at = r.at;
            let len = r.u32()?;
            if len > form.len() - r.at {
                r.at = len_at;
                return r.fail("a finding's length past the end");
            }
            if affected {
                // Read and checked where a finding is made of it.
                let end = r.at + len;
                let n = r.u16()?;
                let n = r.count(n, 2, usize::from(u16::MAX))?;
                for _ in 0..n {
                    let v = r.long()?;
                    if !fixed.contains(&v) {
                        fixed.push(v);
                    }
                }
                let severity = r.severity()?;
                let urgency = r.opt_long()?;
                if r.at != end {
                    return r.fail("a finding's length does not end it");
                }
                if first.is_none() {
                    first = Some((severity, urgency));
                }
            } else {
                r.at += len;
            }
        } else if affected {
            all_kept = false;
        }
        any_affected |= affected;
        any_unsure |= unsure && !affected;
    }
    // The head is decoded (and checked) only when the answer is a finding.
    let keep = any_affected && all_kept && flags & FLAG_WITHDRAWN == 0;
    let mut head_at = r.at;
    let head = if flags & FLAG_HEAD != 0 {
        let len_at = r.at;
        let len = r.u32()?;
        head_at = r.at;
        if len != form.len() - r.at {
            r.at = len_at;
            return r.fail("the head's length does not end the form");
        }
        if keep {
            let head = r.head()?;
            if r.at != form.len() {
                return r.fail("trailing bytes after the head");
            }
            Some(head)
        } else {
            r.at = form.len();
            None
        }
    } else {
        None
    };
    if r.at != form.len() {
        return r.fail("trailing bytes after the form");
    }
    if flags & FLAG_WITHDRAWN != 0 {
        return Ok(Decision::No);
    }
    if any_affected {
        return Ok(match (head, first) {
            (Some(head), Some((severity, urgency))) if all_kept => {
                Decision::Affected(Box::new(Hit {
                    head_at,
                    head,
                    fixed_versions: fixed,
                    severity,
                    urgency,
                }))
            }
            _ => Decision::Maybe,
        });
    }
    Ok(if any_unsure {
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
