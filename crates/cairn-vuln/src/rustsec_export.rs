//! An OSV record of a crates.io package written back as a RustSec advisory-db
//! entry (`crates/<name>/<ID>.md`: TOML front matter in a fenced block, then the
//! title and description in Markdown), so that `cargo audit --db DIR` reads the
//! same data cairn imported. Used to compare cairn with cargo-audit side by side.
//!
//! The affected versions are the union of the record's `SEMVER` ranges
//! (`introduced`/`fixed` intervals, ordered by SemVer); RustSec states them by
//! their complement: `unaffected` below the first introduced version, `patched`
//! for every interval from a fix to the next introduction and from the last fix
//! on. Records this cannot state exactly (other range types, `last_affected`,
//! `limit`, explicit `versions`, several packages) are refused, never approximated.

use crate::osv::{Advisory, Event, RangeKind};
use crate::version::{Scheme, Version};
use std::cmp::Ordering;

/// Why a record cannot be written as a RustSec advisory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{id}: cannot be written as a RustSec advisory: {reason}")]
pub struct ExportError {
    /// The record's id.
    pub id: String,
    /// Why.
    pub reason: String,
}

/// One advisory-db entry: `crates/<package>/<file_name>` holds `markdown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RustsecEntry {
    /// The crate's name (the directory).
    pub package: String,
    /// `<ID>.md`.
    pub file_name: String,
    /// The advisory file's text.
    pub markdown: String,
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| toml_string(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// An affected interval: from `start` (`None`: from the beginning) up to `end`
/// exclusive (`None`: no end).
#[derive(Debug, Clone)]
struct Interval {
    start: Option<(Version, String)>,
    end: Option<(Version, String)>,
}

fn cmp_start(a: &Option<(Version, String)>, b: &Option<(Version, String)>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some((x, _)), Some((y, _))) => x.compare(y).unwrap_or(Ordering::Equal),
    }
}

/// `end` as an upper bound: `None` is above everything.
fn cmp_end(a: &Option<(Version, String)>, b: &Option<(Version, String)>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some((x, _)), Some((y, _))) => x.compare(y).unwrap_or(Ordering::Equal),
    }
}

/// The advisory-db entry for `advisory`.
pub fn to_rustsec(advisory: &Advisory) -> Result<RustsecEntry, ExportError> {
    let refuse = |reason: &str| ExportError {
        id: advisory.id.clone(),
        reason: reason.to_owned(),
    };
    let [affected] = advisory.affected.as_slice() else {
        return Err(refuse("it names no package, or more than one"));
    };
    if affected.ecosystem != "crates.io" {
        return Err(refuse("its package is not a crates.io crate"));
    }
    if !affected.versions.is_empty() {
        return Err(refuse("it lists explicit versions"));
    }
    let parse = |v: &str| {
        Version::parse(Scheme::Semver, v)
            .map(|p| (p, v.to_owned()))
            .map_err(|e| refuse(&format!("version {v:?} is not SemVer: {e}")))
    };
    let mut intervals = Vec::new();
    for range in &affected.ranges {
        if range.kind != RangeKind::Semver {
            return Err(refuse("it has a range that is not SEMVER"));
        }
        let mut open: Option<Option<(Version, String)>> = None;
        for event in &range.events {
            match event {
                Event::Introduced(v) => {
                    if open.is_some() {
                        return Err(refuse("two introduced events without a fix between"));
                    }
                    open = Some(if v == "0" { None } else { Some(parse(v)?) });
                }
                Event::Fixed(v) => {
                    let start = open
                        .take()
                        .ok_or_else(|| refuse("a fixed event before any introduced"))?;
                    intervals.push(Interval {
                        start,
                        end: Some(parse(v)?),
                    });
                }
                Event::LastAffected(_) | Event::Limit(_) => {
                    return Err(refuse("it has last_affected or limit events"));
                }
            }
        }
        if let Some(start) = open {
            intervals.push(Interval { start, end: None });
        }
    }
    // Merge the union, in order of start.
    intervals.sort_by(|a, b| cmp_start(&a.start, &b.start));
    let mut merged: Vec<Interval> = Vec::new();
    for i in intervals {
        if let Some(last) = merged.last_mut() {
            // Overlapping or touching: `i.start <= last.end`.
            let touches = match (&i.start, &last.end) {
                (_, None) => true,
                (None, Some(_)) => true,
                (Some((s, _)), Some((e, _))) => s.compare(e) != Some(Ordering::Greater),
            };
            if touches {
                if cmp_end(&i.end, &last.end) == Ordering::Greater {
                    last.end = i.end;
                }
                continue;
            }
        }
        merged.push(i);
    }
    let mut unaffected = Vec::new();
    let mut patched = Vec::new();
    if let Some(Interval {
        start: Some((_, first)),
        ..
    }) = merged.first()
    {
        unaffected.push(format!("< {first}"));
    }
    for (k, i) in merged.iter().enumerate() {
        let Some((_, end)) = &i.end else { continue };
        match merged.get(k + 1).and_then(|n| n.start.as_ref()) {
            Some((_, next)) => patched.push(format!(">= {end}, < {next}")),
            None => patched.push(format!(">= {end}")),
        }
    }
    if merged.is_empty() {
        // Nothing affected: every version is unaffected.
        unaffected.push(">= 0.0.0".to_owned());
    }

    let date = advisory
        .published
        .as_deref()
        .or(Some(advisory.modified.as_str()))
        .and_then(|d| d.get(..10))
        .filter(|d| {
            d.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            })
        })
        .ok_or_else(|| refuse("no published or modified date"))?;
    let mut toml = String::from("[advisory]\n");
    toml.push_str(&format!("id = {}\n", toml_string(&advisory.id)));
    toml.push_str(&format!("package = {}\n", toml_string(&affected.name)));
    toml.push_str(&format!("date = {}\n", toml_string(date)));
    if !advisory.aliases.is_empty() {
        toml.push_str(&format!("aliases = {}\n", toml_list(&advisory.aliases)));
    }
    if let Some(kind) = &advisory.informational {
        toml.push_str(&format!("informational = {}\n", toml_string(kind.as_str())));
    }
    if let Some(w) = advisory.withdrawn.as_deref().and_then(|w| w.get(..10)) {
        toml.push_str(&format!("withdrawn = {}\n", toml_string(w)));
    }
    toml.push_str("\n[versions]\n");
    toml.push_str(&format!("patched = {}\n", toml_list(&patched)));
    if !unaffected.is_empty() {
        toml.push_str(&format!("unaffected = {}\n", toml_list(&unaffected)));
    }
    let title = advisory
        .summary
        .as_deref()
        .map(|s| s.lines().next().unwrap_or("").trim())
        .filter(|s| !s.is_empty())
        .unwrap_or(&advisory.id);
    let details = advisory
        .details
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .unwrap_or("(no details)");
    // A line starting with ``` in the description would end nothing (the front
    // matter ends at its first fence), but keep the body free of it anyway.
    let details = details.replace("\n```", "\n ```");
    Ok(RustsecEntry {
        package: affected.name.clone(),
        file_name: format!("{}.md", advisory.id),
        markdown: format!("```toml\n{toml}```\n\n# {title}\n\n{details}\n"),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn record(ranges: &str, extra: &str) -> Advisory {
        let json = format!(
            r#"{{"id":"RUSTSEC-2099-0001","modified":"2024-01-02T00:00:00Z",
            "published":"2023-05-06T00:00:00Z","aliases":["CVE-2099-1"],
            "summary":"A \"bad\" thing","details":"Long\ntext",
            "affected":[{{"package":{{"ecosystem":"crates.io","name":"foo"}},
            "ranges":[{ranges}]{extra}}}]}}"#
        );
        Advisory::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn ranges_become_patched_and_unaffected() {
        let a = record(
            r#"{"type":"SEMVER","events":[{"introduced":"0.2.0"},{"fixed":"0.2.5"},
               {"introduced":"0.3.0"},{"fixed":"0.3.1"}]}"#,
            "",
        );
        let e = to_rustsec(&a).unwrap();
        assert_eq!(e.package, "foo");
        assert_eq!(e.file_name, "RUSTSEC-2099-0001.md");
        assert!(
            e.markdown.starts_with("```toml\n[advisory]\n"),
            "{}",
            e.markdown
        );
        assert!(e.markdown.contains("date = \"2023-05-06\""));
        assert!(e.markdown.contains("aliases = [\"CVE-2099-1\"]"));
        assert!(
            e.markdown
                .contains("patched = [\">= 0.2.5, < 0.3.0\", \">= 0.3.1\"]"),
            "{}",
            e.markdown
        );
        assert!(e.markdown.contains("unaffected = [\"< 0.2.0\"]"));
        assert!(e.markdown.contains("\n# A \"bad\" thing\n\nLong\ntext\n"));
    }

    #[test]
    fn overlapping_ranges_merge_and_open_ends_stay_open() {
        let a = record(
            r#"{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.0"}]},
               {"type":"SEMVER","events":[{"introduced":"0.5.0"},{"fixed":"1.2.0"}]},
               {"type":"SEMVER","events":[{"introduced":"2.0.0"}]}"#,
            "",
        );
        let e = to_rustsec(&a).unwrap();
        assert!(
            e.markdown.contains("patched = [\">= 1.2.0, < 2.0.0\"]"),
            "{}",
            e.markdown
        );
        assert!(!e.markdown.contains("unaffected"), "{}", e.markdown);
    }

    #[test]
    fn informational_kinds_are_kept() {
        let a = record(
            r#"{"type":"SEMVER","events":[{"introduced":"0"}]}"#,
            r#","database_specific":{"informational":"unmaintained"}"#,
        );
        let e = to_rustsec(&a).unwrap();
        assert!(e.markdown.contains("informational = \"unmaintained\""));
        assert!(e.markdown.contains("patched = []"));
    }

    #[test]
    fn records_it_cannot_state_are_refused() {
        for (ranges, extra) in [
            (
                r#"{"type":"SEMVER","events":[{"introduced":"0"},{"last_affected":"1.0.0"}]}"#,
                "",
            ),
            (
                r#"{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.0.0"}]}"#,
                "",
            ),
            (
                r#"{"type":"SEMVER","events":[{"introduced":"0"}]}"#,
                r#","versions":["0.1.0"]"#,
            ),
        ] {
            assert!(to_rustsec(&record(ranges, extra)).is_err(), "{ranges}");
        }
    }
}
