//! PEP 440 version ordering for PyPI, with the legacy fallback of `packaging`.
//!
//! Normalisation follows PEP 440 §"Normalization": case-insensitive, a leading
//! `v`, alternative spellings (`alpha`→`a`, `c`/`pre`/`preview`→`rc`,
//! `rev`/`r`→`post`, `-N` as an implicit post-release), optional separators and
//! implicit zero numbers. Ordering follows `packaging.version._cmpkey`: epoch,
//! release with trailing zeros dropped, pre (a dev-only release sorts before
//! every pre-release), post, dev, local (numeric segments above alphanumeric).
//! Strings that are not PEP 440 versions sort as `packaging`'s `LegacyVersion`
//! did: before every valid version, compared by its legacy key.

use super::num::{Num, all_digits};
use super::{Scheme, VersionError};
use std::cmp::Ordering;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    /// Sorts before any valid version (`LegacyVersion` had epoch -1).
    Legacy(Vec<String>),
    Valid(Pep440),
}

/// Field order is the comparison order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pep440 {
    epoch: Num,
    release: Vec<Num>,
    pre: Pre,
    post: Option<Num>,
    dev: Dev,
    local: Option<Vec<LocalPart>>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pre {
    /// A dev release with neither pre nor post sorts before its pre-releases.
    DevOnly,
    /// 0 = a, 1 = b, 2 = rc.
    Tagged(u8, Num),
    None,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Dev {
    Dev(Num),
    None,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum LocalPart {
    Alpha(String),
    Numeric(Num),
}

pub(crate) fn parse(s: &str) -> Result<Key, VersionError> {
    let t = s.trim();
    if t.is_empty() || t.chars().any(char::is_whitespace) {
        return Err(VersionError::invalid(
            Scheme::Pypi,
            s,
            "empty or contains whitespace",
        ));
    }
    let lower = t.to_ascii_lowercase();
    match parse_pep440(&lower) {
        Some(v) => Ok(Key::Valid(v)),
        None => Ok(Key::Legacy(legacy_key(&lower))),
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn eat_sep(&mut self) -> bool {
        matches!(self.peek(), Some(b'-' | b'_' | b'.')) && {
            self.i += 1;
            true
        }
    }
    fn digits(&mut self) -> Option<&'a str> {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        (self.i > start).then(|| std::str::from_utf8(&self.s[start..self.i]).unwrap_or(""))
    }
    fn word(&mut self, words: &[&str]) -> Option<usize> {
        // Longest match first, so `preview` wins over `pre`.
        let rest = &self.s[self.i..];
        let mut best: Option<(usize, usize)> = None;
        for (k, w) in words.iter().enumerate() {
            if rest.starts_with(w.as_bytes()) && best.is_none_or(|(_, l)| w.len() > l) {
                best = Some((k, w.len()));
            }
        }
        best.map(|(k, l)| {
            self.i += l;
            k
        })
    }
}

fn parse_pep440(s: &str) -> Option<Pep440> {
    let s = s.strip_prefix('v').unwrap_or(s);
    let (main, local) = match s.split_once('+') {
        Some((m, l)) => (m, Some(l)),
        None => (s, None),
    };
    let mut c = Cursor {
        s: main.as_bytes(),
        i: 0,
    };
    let first = c.digits()?;
    let (epoch, mut release) = if c.eat(b'!') {
        (Num::new(first), vec![Num::new(c.digits()?)])
    } else {
        (Num::new(""), vec![Num::new(first)])
    };
    loop {
        let save = c.i;
        if c.eat(b'.')
            && let Some(d) = c.digits()
        {
            release.push(Num::new(d));
            continue;
        }
        c.i = save;
        break;
    }
    // Pre-release.
    let mut pre = None;
    {
        let save = c.i;
        c.eat_sep();
        const PRE: [&str; 7] = ["a", "alpha", "b", "beta", "c", "rc", "pre"];
        const PRE2: [&str; 1] = ["preview"];
        let kind = if c.word(&PRE2).is_some() {
            Some(2)
        } else {
            c.word(&PRE).map(|k| match k {
                0 | 1 => 0,
                2 | 3 => 1,
                _ => 2,
            })
        };
        match kind {
            Some(k) => {
                let save2 = c.i;
                c.eat_sep();
                let n = match c.digits() {
                    Some(d) => Num::new(d),
                    None => {
                        c.i = save2;
                        Num::new("")
                    }
                };
                pre = Some((k, n));
            }
            None => c.i = save,
        }
    }
    // Post-release.
    let mut post = None;
    {
        let save = c.i;
        if c.eat(b'-')
            && let Some(d) = c.digits()
        {
            post = Some(Num::new(d));
        } else {
            c.i = save;
            c.eat_sep();
            if c.word(&["post", "rev", "r"]).is_some() {
                let save2 = c.i;
                c.eat_sep();
                post = Some(match c.digits() {
                    Some(d) => Num::new(d),
                    None => {
                        c.i = save2;
                        Num::new("")
                    }
                });
            } else {
                c.i = save;
            }
        }
    }
    // Dev release.
    let mut dev = None;
    {
        let save = c.i;
        c.eat_sep();
        if c.word(&["dev"]).is_some() {
            let save2 = c.i;
            c.eat_sep();
            dev = Some(match c.digits() {
                Some(d) => Num::new(d),
                None => {
                    c.i = save2;
                    Num::new("")
                }
            });
        } else {
            c.i = save;
        }
    }
    if c.i != c.s.len() {
        return None;
    }
    let local = match local {
        None => None,
        Some(l) => {
            let parts = l
                .split(['.', '-', '_'])
                .map(|p| {
                    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        None
                    } else if all_digits(p) {
                        Some(LocalPart::Numeric(Num::new(p)))
                    } else {
                        Some(LocalPart::Alpha(p.to_owned()))
                    }
                })
                .collect::<Option<Vec<_>>>()?;
            Some(parts)
        }
    };
    while release.len() > 1 && release.last().is_some_and(Num::is_zero) {
        release.pop();
    }
    if release.last().is_some_and(Num::is_zero) {
        release.pop();
    }
    let pre = match (pre, &post, &dev) {
        (None, None, Some(_)) => Pre::DevOnly,
        (None, _, _) => Pre::None,
        (Some((k, n)), _, _) => Pre::Tagged(k, n),
    };
    Some(Pep440 {
        epoch,
        release,
        pre,
        post,
        dev: dev.map_or(Dev::None, Dev::Dev),
        local,
    })
}

/// `packaging`'s `_legacy_cmpkey` (packaging < 22).
fn legacy_key(s: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for part in legacy_parts(s) {
        if part.starts_with('*') {
            if part.as_str() < "*final" {
                while parts.last().is_some_and(|p| p == "*final-") {
                    parts.pop();
                }
            }
            while parts.last().is_some_and(|p| p == "00000000") {
                parts.pop();
            }
        }
        parts.push(part);
    }
    parts
}

/// Splits on `\d+ | [a-z]+ | \. | -`, as `_legacy_version_component_re` does.
fn legacy_parts(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut raw: Vec<&str> = Vec::new();
    let mut i = 0;
    let mut gap_start = 0;
    while i < b.len() {
        let start = i;
        let len = if b[i].is_ascii_digit() {
            b[i..].iter().take_while(|c| c.is_ascii_digit()).count()
        } else if b[i].is_ascii_lowercase() {
            b[i..].iter().take_while(|c| c.is_ascii_lowercase()).count()
        } else if b[i] == b'.' || b[i] == b'-' {
            1
        } else {
            0
        };
        if len == 0 {
            i += s[i..].chars().next().map_or(1, char::len_utf8);
            continue;
        }
        if gap_start < start {
            raw.push(&s[gap_start..start]);
        }
        raw.push(&s[start..start + len]);
        i = start + len;
        gap_start = i;
    }
    if gap_start < b.len() {
        raw.push(&s[gap_start..]);
    }
    let mut out = Vec::new();
    for part in raw {
        let part = match part {
            "pre" | "preview" => "c",
            "-" => "final-",
            "rc" => "c",
            "dev" => "@",
            p => p,
        };
        if part.is_empty() || part == "." {
            continue;
        }
        if part.as_bytes()[0].is_ascii_digit() {
            out.push(format!("{part:0>8}"));
        } else {
            out.push(format!("*{part}"));
        }
    }
    out.push("*final".to_owned());
    out
}

impl Key {
    pub(crate) fn cmp_key(&self, other: &Self) -> Ordering {
        self.cmp(other)
    }
}
