//! `cairn where PURL-or-NAME[@RANGE]`: every stored SBOM (artifact, workload,
//! environment) that contains a package, optionally only at versions in a range.
//!
//! The package is a purl (`pkg:cargo/smallvec@0.6.10`: that ecosystem, that exact
//! version) or a bare name (`smallvec`: any ecosystem, the name normalised as each
//! ecosystem's registry does). A range is comparators (`<`, `<=`, `>`, `>=`, `=`)
//! joined by `,` (`smallvec@>=0.6,<1`); a bare version means `=`. Versions are
//! compared with `cairn_vuln::version` in the component's ecosystem's own ordering;
//! a component whose ecosystem has no known ordering, or whose version does not
//! parse, is not compared: it is listed on stderr as such, never silently matched.
//!
//! Exit codes: 0 something matched, 1 nothing matched or the query is malformed.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use anyhow::anyhow;
use cairn_store::{PackageHit, Store};
use cairn_vuln::matching::normalize_name;
use cairn_vuln::version::{Scheme, Version};
use serde_json::{Value, json};

use super::{data_dir, open_store};
use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

#[derive(Debug, clap::Args)]
pub(crate) struct WhereArgs {
    /// A purl (`pkg:cargo/smallvec@0.6.10`) or a package name, optionally with a
    /// version range: `smallvec@<1.6.1`, `smallvec@>=0.6,<1`.
    pub package: String,
}

/// A comparison operator of a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "=",
        }
    }

    fn holds(self, ord: Ordering) -> bool {
        match self {
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Gt => ord == Ordering::Greater,
            Op::Ge => ord != Ordering::Less,
            Op::Eq => ord == Ordering::Equal,
        }
    }
}

/// What `cairn where` looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Query {
    /// The OSV ecosystem, when a purl named it.
    pub ecosystem: Option<String>,
    /// The name as given (a purl's namespace joined as the ecosystem writes it).
    pub name: String,
    /// All comparators must hold; empty means any version.
    pub range: Vec<(Op, String)>,
}

/// The OSV ecosystem of a purl type.
fn ecosystem_of_purl_type(ty: &str) -> Option<&'static str> {
    Some(match ty.to_ascii_lowercase().as_str() {
        "cargo" => "crates.io",
        "npm" => "npm",
        "pypi" => "PyPI",
        "golang" => "Go",
        "gem" => "RubyGems",
        "composer" => "Packagist",
        "maven" => "Maven",
        "nuget" => "NuGet",
        "deb" => "Debian",
        "apk" => "Alpine",
        _ => return None,
    })
}

/// Parses a range: comparators joined by `,`.
pub(super) fn parse_range(text: &str) -> anyhow::Result<Vec<(Op, String)>> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let (op, version) = if let Some(v) = part.strip_prefix(">=") {
            (Op::Ge, v)
        } else if let Some(v) = part.strip_prefix("<=") {
            (Op::Le, v)
        } else if let Some(v) = part.strip_prefix('>') {
            (Op::Gt, v)
        } else if let Some(v) = part.strip_prefix('<') {
            (Op::Lt, v)
        } else if let Some(v) = part.strip_prefix('=') {
            (Op::Eq, v)
        } else {
            (Op::Eq, part)
        };
        let version = version.trim();
        let starts_well = version
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if !starts_well || version.chars().any(char::is_whitespace) {
            return Err(anyhow!(
                "`{part}` in the range `{text}` is not a comparison: write <, <=, >, >= or = \
                 followed by a version, several joined by `,` (e.g. `>=0.6,<1`)"
            ));
        }
        out.push((op, version.to_owned()));
    }
    Ok(out)
}

/// Parses `PURL` or `NAME[@RANGE]`.
pub(super) fn parse_query(text: &str) -> anyhow::Result<Query> {
    let text = text.trim();
    if text.starts_with("pkg:") {
        let purl = cairn_model::purl::Purl::parse(text)
            .map_err(|e| anyhow!("{e}; expected pkg:TYPE/NAME[@VERSION]"))?;
        let ty = purl.ty.as_str();
        let ecosystem = ecosystem_of_purl_type(ty).ok_or_else(|| {
            anyhow!(
                "cairn indexes no purl type `{ty}`; known: cargo, npm, pypi, golang, gem, \
                 composer, maven, nuget, deb, apk"
            )
        })?;
        let mut segments: Vec<String> = purl
            .namespace
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        segments.push(purl.name.clone());
        let name = match (ecosystem, segments.as_slice()) {
            ("Maven", [group, artifact]) => format!("{group}:{artifact}"),
            // The namespace of a distribution package is the distribution.
            ("Debian" | "Alpine", [.., name]) => name.clone(),
            (_, all) => all.join("/"),
        };
        let version = purl.version;
        let range = match version {
            None => Vec::new(),
            Some(v) => {
                if v.starts_with(['<', '>', '=']) {
                    parse_range(&v)?
                } else {
                    parse_range(&format!("={v}"))?
                }
            }
        };
        return Ok(Query {
            ecosystem: Some(ecosystem.to_owned()),
            name,
            range,
        });
    }
    // An npm scope starts with `@`: the range's `@` is a later one.
    let split = text
        .char_indices()
        .skip(1)
        .find(|&(_, c)| c == '@')
        .map(|(i, _)| i);
    let (name, range) = match split {
        Some(i) => (&text[..i], parse_range(&text[i + 1..])?),
        None => (text, Vec::new()),
    };
    if !name.chars().any(char::is_alphanumeric) {
        return Err(anyhow!("`{text}` names no package"));
    }
    Ok(Query {
        ecosystem: None,
        name: name.to_owned(),
        range,
    })
}

/// A component that could not be compared with the range, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NotCompared {
    pub hit: PackageHit,
    pub reason: String,
}

/// The answer to a query.
#[derive(Debug, Default)]
pub(super) struct Found {
    pub hits: Vec<PackageHit>,
    pub not_compared: Vec<NotCompared>,
}

/// Whether `version` (in `scheme`) satisfies every comparator. `Err` names the
/// range's version that does not parse in this scheme (the user's input).
fn in_range(
    scheme: Scheme,
    version: &Version,
    range: &[(Op, String)],
) -> Result<Option<bool>, String> {
    for (op, bound) in range {
        let bound = Version::parse(scheme, bound).map_err(|e| {
            format!(
                "the range's version `{bound}` is not a valid {} version: {e}",
                scheme.name()
            )
        })?;
        match version.compare(&bound) {
            Some(ord) if op.holds(ord) => {}
            Some(_) => return Ok(Some(false)),
            None => return Ok(None),
        }
    }
    Ok(Some(true))
}

/// Looks the query up in the store and applies its range.
pub(super) fn find(store: &dyn Store, query: &Query) -> Result<Found, Failure> {
    let mut hits = Vec::new();
    match &query.ecosystem {
        Some(eco) => {
            hits = store.where_package(Some(eco), &normalize_name(eco, &query.name))?;
        }
        None => {
            // Each ecosystem normalises names its own way (PyPI, NuGet, Packagist):
            // ask for every spelling, keep the hits whose ecosystem spells it so.
            let spellings: BTreeSet<String> = ["crates.io", "PyPI", "NuGet"]
                .iter()
                .map(|eco| normalize_name(eco, &query.name))
                .collect();
            if spellings.len() == 1
                && let Some(spelling) = spellings.first()
            {
                // One spelling (the common case): the store's answer is already
                // deduplicated and in order; keep the hits this ecosystem spells so.
                hits = store.where_package(None, spelling)?;
                // Spelled once per ecosystem, not once per hit.
                let mut spelled: Vec<(String, bool)> = Vec::new();
                hits.retain(|hit| {
                    if let Some((_, ok)) = spelled.iter().find(|(e, _)| *e == hit.ecosystem) {
                        return *ok;
                    }
                    let ok = normalize_name(&hit.ecosystem, &query.name) == hit.name;
                    spelled.push((hit.ecosystem.clone(), ok));
                    ok
                });
                return in_range_only(hits, query);
            }
            let mut seen = BTreeSet::new();
            for spelling in &spellings {
                for hit in store.where_package(None, spelling)? {
                    if normalize_name(&hit.ecosystem, &query.name) == hit.name
                        && seen.insert((
                            hit.sbom_id,
                            hit.ecosystem.clone(),
                            hit.version.clone(),
                            hit.purl.clone(),
                        ))
                    {
                        hits.push(hit);
                    }
                }
            }
            hits.sort_by(|a, b| {
                (a.sbom_id, &a.ecosystem, &a.version).cmp(&(b.sbom_id, &b.ecosystem, &b.version))
            });
        }
    }
    in_range_only(hits, query)
}

/// The hits whose version is in the query's range (all when it has none).
fn in_range_only(hits: Vec<PackageHit>, query: &Query) -> Result<Found, Failure> {
    if query.range.is_empty() {
        return Ok(Found {
            hits,
            not_compared: Vec::new(),
        });
    }
    let mut found = Found::default();
    for hit in hits {
        let Some(scheme) = Scheme::for_ecosystem(&hit.ecosystem) else {
            let reason = format!("cairn knows no version ordering for {}", hit.ecosystem);
            found.not_compared.push(NotCompared { hit, reason });
            continue;
        };
        let version = match Version::parse(scheme, &hit.version) {
            Ok(v) => v,
            Err(e) => {
                let reason = format!("its version does not parse as {}: {e}", scheme.name());
                found.not_compared.push(NotCompared { hit, reason });
                continue;
            }
        };
        match in_range(scheme, &version, &query.range) {
            Err(msg) => return Err(Failure::user(anyhow!(msg))),
            Ok(Some(true)) => found.hits.push(hit),
            Ok(Some(false)) => {}
            Ok(None) => {
                let reason = "its version cannot be ordered against the range".to_owned();
                found.not_compared.push(NotCompared { hit, reason });
            }
        }
    }
    Ok(found)
}

fn range_text(range: &[(Op, String)]) -> String {
    range
        .iter()
        .map(|(op, v)| format!("{}{v}", op.symbol()))
        .collect::<Vec<_>>()
        .join(",")
}

/// The environments the hit's artifact runs in now.
fn environments<'a>(h: &PackageHit, running: &'a BTreeMap<String, Vec<String>>) -> &'a [String] {
    running.get(&h.subject_digest).map_or(&[], Vec::as_slice)
}

fn hit_json(h: &PackageHit, running: &BTreeMap<String, Vec<String>>) -> Value {
    let envs = environments(h, running);
    json!({
        "sbom_id": h.sbom_id,
        "subject": { "name": h.subject_name, "digest": h.subject_digest },
        "workload": h.workload,
        // The furthest environment on the promotion path it runs in; all of them.
        "environment": envs.last().or(h.environment.as_ref()),
        "environments": envs,
        "ecosystem": h.ecosystem,
        "name": h.name,
        "version": h.version,
        "purl": h.purl,
    })
}

pub(super) fn where_(cli: &Cli, args: &WhereArgs) -> Result<ExitCode, Failure> {
    let query = parse_query(&args.package).map_err(Failure::user)?;
    let store = open_store(&data_dir(cli)?)?;
    let found = find(&*store, &query)?;
    let org = cairn_engine::load_org(cli.platform_dir.as_deref())?;
    let running = cairn_engine::exposures::running(&*store, &org)?;
    for n in &found.not_compared {
        eprintln!(
            "not compared: {} {} {} in {} ({}): {}",
            n.hit.ecosystem,
            n.hit.name,
            n.hit.version,
            n.hit.subject_name,
            n.hit.subject_digest,
            n.reason
        );
    }
    if cli.json {
        print_json(&json!({
            "query": {
                "ecosystem": query.ecosystem,
                "name": query.name,
                "range": range_text(&query.range),
            },
            "matches": found.hits.iter().map(|h| hit_json(h, &running)).collect::<Vec<_>>(),
            "not_compared": found.not_compared.iter().map(|n| json!({
                "component": hit_json(&n.hit, &running),
                "reason": n.reason,
            })).collect::<Vec<_>>(),
        }));
    } else if !found.hits.is_empty() {
        let artifacts: BTreeSet<i64> = found.hits.iter().map(|h| h.sbom_id).collect();
        println!(
            "{} match(es) in {} artifact(s)",
            found.hits.len(),
            artifacts.len()
        );
        println!(
            "{:<24} {:<73} {:<12} {:<12} {:<10} {:<24} VERSION",
            "ARTIFACT", "DIGEST", "WORKLOAD", "ENVIRONMENT", "ECOSYSTEM", "NAME"
        );
        for h in &found.hits {
            println!(
                "{:<24} {:<73} {:<12} {:<12} {:<10} {:<24} {}",
                h.subject_name,
                h.subject_digest,
                h.workload.as_deref().unwrap_or("-"),
                match environments(h, &running) {
                    [] => h.environment.clone().unwrap_or_else(|| "-".to_owned()),
                    envs => envs.join(","),
                },
                h.ecosystem,
                h.name,
                h.version
            );
        }
    }
    if found.hits.is_empty() {
        let range = if query.range.is_empty() {
            String::new()
        } else {
            format!(" at {}", range_text(&query.range))
        };
        eprintln!(
            "cairn: no stored SBOM contains {}{range}",
            match &query.ecosystem {
                Some(eco) => format!("{eco} package {}", query.name),
                None => query.name.clone(),
            }
        );
        return Ok(ExitCode::from(crate::exit::USER));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse() {
        let q = parse_query("pkg:cargo/smallvec@0.6.10").unwrap();
        assert_eq!(q.ecosystem.as_deref(), Some("crates.io"));
        assert_eq!(q.name, "smallvec");
        assert_eq!(q.range, vec![(Op::Eq, "0.6.10".to_owned())]);
        let q = parse_query("smallvec@>=0.6, <1").unwrap();
        assert_eq!(q.ecosystem, None);
        assert_eq!(
            q.range,
            vec![(Op::Ge, "0.6".to_owned()), (Op::Lt, "1".to_owned())]
        );
        let q = parse_query("@types/node@<20").unwrap();
        assert_eq!(q.name, "@types/node");
        assert_eq!(q.range, vec![(Op::Lt, "20".to_owned())]);
        assert_eq!(
            parse_query("pkg:npm/%40types/node").unwrap().name,
            "@types/node"
        );
        assert_eq!(
            parse_query("pkg:maven/org.slf4j/slf4j-api@1.7.36")
                .unwrap()
                .name,
            "org.slf4j:slf4j-api"
        );
        assert_eq!(parse_query("smallvec").unwrap().range, vec![]);
    }

    #[test]
    fn bad_queries_are_refused() {
        for bad in [
            "smallvec@",
            "smallvec@~1.0",
            "smallvec@<",
            "smallvec@>=1,,<2",
            "smallvec@^1",
            "pkg:cargo",
            "pkg:unknown/x@1",
            "pkg:cargo/x%zz",
            "@",
        ] {
            assert!(parse_query(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn ranges_compare_in_the_ecosystem_s_order() {
        let v = Version::parse(Scheme::Semver, "0.6.10").unwrap();
        let r = parse_range(">=0.6,<1").unwrap();
        assert_eq!(in_range(Scheme::Semver, &v, &r), Ok(Some(true)));
        let r = parse_range("<0.6.9").unwrap();
        assert_eq!(in_range(Scheme::Semver, &v, &r), Ok(Some(false)));
        let pep = Version::parse(Scheme::Pypi, "1.0rc1").unwrap();
        let r = parse_range("<1.0").unwrap();
        assert_eq!(in_range(Scheme::Pypi, &pep, &r), Ok(Some(true)));
        assert!(in_range(Scheme::Semver, &v, &parse_range("<x.y").unwrap()).is_err());
    }
}
