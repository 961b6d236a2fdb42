//! `cairn bench exposures`: a new advisory batch arriving through the feed →
//! the exposures of what is deployed listed, over many stored SBOMs (goal: ≤ 5 s
//! for 10,000).
//!
//! The world is synthetic but shaped like a real one: `--workloads` workloads,
//! each with a history of digests in staging and production; every SBOM holds
//! Debian 12 OS packages (real source package names and versions, taken from
//! this host's dpkg database when it is Debian, otherwise a built-in list; a
//! tenth of them one revision behind) and npm packages drawn from a pool with a
//! heavy head (a few in nearly every SBOM, as `lodash` is). The advisory batch
//! is OSV records in a directory — Debian records fixed just above the
//! installed versions of some source packages and npm records on popular
//! packages — imported through the same code `cairn up`'s feed runs
//! (`cairn_engine::feed::sync`: audit entry, import, re-match of what changed),
//! then every exposure is listed (`cairn_engine::exposures::list`, what `cairn
//! exposures` and `GET /api/exposures` run). A second, small batch (a few
//! records changed) is timed the same way: the steady state of a feed.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use cairn_model::config::{AdvisoryFeed, FeedSource, OrgConfig};
use cairn_model::{DeploymentRecord, DeploymentStatus};
use cairn_store::prelude::*;
use cairn_store::{NewSbom, SqliteStore};
use serde_json::json;

use crate::Failure;
use crate::Output;
use crate::print_json;

/// SBOMs per transaction while generating.
const BATCH: usize = 250;
/// Distinct npm package names.
const POOL: usize = 20_000;
const SEED: u64 = 0x005e_ed0f_feed;

/// Source packages of a Debian 12 minbase (name, version), when the host's
/// dpkg database cannot be read.
const DEBIAN_FALLBACK: &[(&str, &str)] = &[
    ("glibc", "2.36-9+deb12u4"),
    ("openssl", "3.0.11-1~deb12u2"),
    ("systemd", "252.22-1~deb12u1"),
    ("zlib", "1:1.2.13.dfsg-1"),
    ("bash", "5.2.15-2"),
    ("coreutils", "9.1-1"),
    ("tar", "1.34+dfsg-1.2+deb12u1"),
    ("gnutls28", "3.7.9-2+deb12u2"),
    ("perl", "5.36.0-7+deb12u1"),
    ("apt", "2.6.1"),
    ("xz-utils", "5.4.1-0.2"),
    ("util-linux", "2.38.1-5+b1"),
    ("shadow", "1:4.13+dfsg1-1"),
    ("pam", "1.5.2-6+deb12u1"),
    ("ncurses", "6.4-4"),
    ("libgcrypt20", "1.10.1-3"),
    ("gnupg2", "2.2.40-1.1"),
    ("curl", "7.88.1-10+deb12u5"),
    ("krb5", "1.20.1-2+deb12u1"),
    ("sqlite3", "3.40.1-2"),
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn skewed(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((u * u * u) * n as f64) as usize % n
    }
}

/// (source name, source version) of the installed packages of this host, if
/// it is Debian 12; otherwise the built-in list.
fn debian_sources() -> (Vec<(String, String)>, &'static str) {
    let is_bookworm = std::fs::read_to_string("/etc/os-release")
        .is_ok_and(|t| t.contains("ID=debian") && t.contains("VERSION_ID=\"12\""));
    let status = std::fs::read_to_string("/var/lib/dpkg/status").ok();
    if let (true, Some(status)) = (is_bookworm, status) {
        let mut out = std::collections::BTreeSet::new();
        for para in status.split("\n\n") {
            let field = |k: &str| {
                para.lines()
                    .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_owned()))
            };
            let (Some(pkg), Some(version)) = (field("Package:"), field("Version:")) else {
                continue;
            };
            let (name, version) = match field("Source:") {
                Some(s) => match s.split_once(" (") {
                    Some((n, v)) => (n.to_owned(), v.trim_end_matches(')').to_owned()),
                    None => (s, version),
                },
                None => (pkg, version),
            };
            out.insert((name, version));
        }
        if !out.is_empty() {
            return (
                out.into_iter().collect(),
                "this host's dpkg database (Debian 12)",
            );
        }
    }
    (
        DEBIAN_FALLBACK
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        "a built-in list of Debian 12 source packages",
    )
}

/// A Debian version one revision lower (`…-2` → `…-1`), or the same.
fn older(version: &str) -> String {
    match version.rsplit_once('-') {
        Some((up, rev)) if rev.chars().all(|c| c.is_ascii_digit()) && rev != "0" && rev != "1" => {
            format!("{up}-{}", rev.parse::<u64>().unwrap_or(2) - 1)
        }
        _ => version.to_owned(),
    }
}

fn npm_name(i: usize) -> String {
    format!("synthetic-npm-{i}")
}

fn record(
    id: &str,
    modified: &str,
    ecosystem: &str,
    name: &str,
    fixed: &str,
    score: &str,
) -> String {
    json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": modified,
        "published": "2026-12-01T00:00:00Z",
        "summary": format!("{name}: synthetic advisory"),
        "severity": [{ "type": "CVSS_V3", "score": score }],
        "affected": [{
            "package": { "ecosystem": ecosystem, "name": name },
            "ranges": [{ "type": "ECOSYSTEM", "events": [{ "introduced": "0" }, { "fixed": fixed }] }]
        }]
    })
    .to_string()
}

const CRITICAL: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";
const MEDIUM: &str = "CVSS:3.1/AV:N/AC:H/PR:L/UI:R/S:U/C:L/I:L/A:N";

#[allow(clippy::too_many_lines)]
pub fn exposures(
    out: &Output,
    sboms: usize,
    workloads: usize,
    npm_per_sbom: usize,
    debian_per_sbom: usize,
    advisories: usize,
) -> Result<ExitCode, Failure> {
    let sboms = sboms.clamp(1, 100_000);
    let workloads = workloads.clamp(1, sboms);
    let npm_per_sbom = npm_per_sbom.clamp(0, POOL / 2);
    let advisories = advisories.clamp(2, 100_000);
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let data = cairn_engine::DataDir::at(scratch.path().join("data"));
    std::fs::create_dir_all(data.root()).context("cannot create the scratch data directory")?;
    let store = SqliteStore::open(data.root()).context("cannot open the scratch store")?;
    let (mut debian, debian_from) = debian_sources();
    // A base image's share of them (a minbase has about a hundred), spread
    // over the list.
    let step = (debian.len() / debian_per_sbom.max(1)).max(1);
    debian = debian
        .into_iter()
        .step_by(step)
        .take(debian_per_sbom.max(1))
        .collect();
    let mut rng = Rng(SEED);

    // The SBOMs: digest k belongs to workload k % W.
    let generating = Instant::now();
    let mut made = 0usize;
    let mut rows = 0usize;
    while made < sboms {
        let n = BATCH.min(sboms - made);
        let mut batch = Vec::with_capacity(n);
        for k in made..made + n {
            let mut comps = Vec::with_capacity(debian.len() + npm_per_sbom);
            for (name, version) in &debian {
                let version = if rng.below(10) == 0 {
                    older(version)
                } else {
                    version.clone()
                };
                let purl = format!("pkg:deb/debian/{name}@{version}?distro=debian-12");
                comps.push(("Debian:12".to_owned(), name.clone(), version, purl));
            }
            // Ordered, so that the same seed gives the same SBOMs (and findings) every run.
            let mut picked = BTreeSet::new();
            while picked.len() < npm_per_sbom {
                picked.insert(rng.skewed(POOL));
            }
            for i in picked {
                let name = npm_name(i);
                let version = format!("{}.{}.{}", rng.below(3), rng.below(20), rng.below(10));
                let purl = format!("pkg:npm/{name}@{version}");
                comps.push(("npm".to_owned(), name, version, purl));
            }
            rows += comps.len();
            let workload = format!("app-{}", k % workloads);
            batch.push(NewSbom {
                document: json!({ "bomFormat": "CycloneDX", "specVersion": "1.6" })
                    .to_string()
                    .into_bytes(),
                subject_digest: format!("sha256:{k:064x}"),
                subject_name: workload.clone(),
                workload: Some(workload),
                environment: None,
                created_at_ms: 0,
                format: "cyclonedx".to_owned(),
                components: comps,
            });
        }
        store.add_sboms(&batch)?;
        made += n;
    }
    // Deployments: each workload's three newest digests went through staging
    // (the newest runs there), the second newest runs in production.
    let mut deployments = 0usize;
    for w in 0..workloads {
        let name = format!("app-{w}");
        store.upsert_workload(&name, "/srv/repos/app", 0)?;
        let digests: Vec<usize> = (w..sboms).step_by(workloads).collect();
        let newest: Vec<usize> = digests.iter().rev().take(3).rev().copied().collect();
        for (i, k) in newest.iter().enumerate() {
            for env in ["staging", "production"] {
                if env == "production" && i + 2 != newest.len() && newest.len() > 1 {
                    continue;
                }
                let current = if env == "staging" {
                    i + 1 == newest.len()
                } else {
                    true
                };
                store.add_deployment(&DeploymentRecord {
                    workload: name.clone(),
                    environment: env.to_owned(),
                    digest: format!("sha256:{k:064x}"),
                    previous_digest: None,
                    kind: "deploy".into(),
                    actor: "bench".into(),
                    target: "local".into(),
                    detail: String::new(),
                    log_index: 0,
                    deployed_at_ms: 1_000 + i as i64,
                    status: if current {
                        DeploymentStatus::Deployed
                    } else {
                        DeploymentStatus::Superseded
                    },
                    token: None,
                    reason: None,
                })?;
                deployments += 1;
            }
        }
    }
    let generated_in = generating.elapsed();

    // The advisory batch: half Debian (fixed just above the installed
    // version), half npm (popular packages, fixed at 2.0.0).
    let records = scratch.path().join("osv");
    let write_batch = |modified: &str, count: usize, offset: usize| -> anyhow::Result<()> {
        std::fs::create_dir_all(&records)?;
        for i in 0..count {
            let j = i + offset;
            let (id, text) = if j.is_multiple_of(2) {
                let (name, version) = &debian[(j / 2) % debian.len()];
                let id = format!("DEBIAN-CVE-2026-{j:05}");
                (
                    id.clone(),
                    record(
                        &id,
                        modified,
                        "Debian:12",
                        name,
                        &format!("{version}+fix1"),
                        if j.is_multiple_of(4) {
                            CRITICAL
                        } else {
                            MEDIUM
                        },
                    ),
                )
            } else {
                let id = format!("GHSA-bnch-{j:04}-xxxx");
                (
                    id.clone(),
                    record(
                        &id,
                        modified,
                        "npm",
                        &npm_name(j / 2 % 200),
                        "2.0.0",
                        if j.is_multiple_of(3) {
                            CRITICAL
                        } else {
                            MEDIUM
                        },
                    ),
                )
            };
            std::fs::write(records.join(format!("{id}.json")), text)?;
        }
        Ok(())
    };
    write_batch("2026-12-01T00:00:00Z", advisories, 0).context("cannot write the advisories")?;
    let org = OrgConfig::default();
    let feed = AdvisoryFeed {
        sources: vec![FeedSource::Dir(records.display().to_string())],
        interval_seconds: 3600,
    };
    let mut quiet = |_: &str| {};
    let limits = cairn_engine::feed::FeedLimits::default();
    let mut round = |what: &str| -> Result<BTreeMap<&'static str, f64>, Failure> {
        let start = Instant::now();
        let report =
            cairn_engine::feed::sync(&store, &data, &feed, Some("bench"), &limits, &mut quiet)?;
        let imported = start.elapsed();
        if let Some(failed) = report.sources.iter().find_map(|s| s.result.as_ref().err()) {
            return Err(Failure::from(anyhow::anyhow!(
                "{what}: the source failed: {failed}"
            )));
        }
        let listing = Instant::now();
        let list = cairn_engine::exposures::list(
            &store,
            &data,
            &org,
            &cairn_engine::exposures::ExposureFilter::default(),
            cairn_engine::now_ms(),
        )?;
        let listed = listing.elapsed();
        let total = start.elapsed();
        let mut m = BTreeMap::new();
        m.insert("import_and_rematch_s", imported.as_secs_f64());
        m.insert("list_exposures_s", listed.as_secs_f64());
        m.insert("total_s", total.as_secs_f64());
        m.insert("new_findings", report.rematched.outcome.opened.len() as f64);
        m.insert(
            "components_rematched",
            report.rematched.outcome.components as f64,
        );
        m.insert("exposures", list.len() as f64);
        Ok(m)
    };
    let first = round("first batch")?;
    // A few records change: the steady state.
    let changed = (advisories / 50).max(2);
    write_batch("2026-12-02T00:00:00Z", changed, 0).context("cannot write the advisories")?;
    let delta = round("delta")?;
    let secs = |d: Duration| d.as_secs_f64();
    if out.json {
        print_json(&json!({
            "sboms": sboms,
            "workloads": workloads,
            "deployments": deployments,
            "component_rows": rows,
            "debian_source_packages": debian.len(),
            "debian_from": debian_from,
            "npm_per_sbom": npm_per_sbom,
            "generate_s": secs(generated_in),
            "advisories": advisories,
            "first_batch": first,
            "changed_records": changed,
            "delta_batch": delta,
            "goal_total_s": 5,
            "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        }));
    } else {
        println!(
            "generated {sboms} SBOMs ({rows} component rows: {} Debian source packages from {debian_from}, {npm_per_sbom} npm packages each) for {workloads} workloads, {deployments} deployments, in {:.1} s",
            debian.len(),
            secs(generated_in)
        );
        for (label, m, n) in [
            ("first batch", &first, advisories),
            ("delta", &delta, changed),
        ] {
            println!(
                "{label}: {n} advisories → {:.0} new findings over {:.0} components re-matched, {:.0} exposures listed: import + re-match {:.2} s, list {:.2} s, total {:.2} s (goal: <= 5 s)",
                m["new_findings"],
                m["components_rematched"],
                m["exposures"],
                m["import_and_rematch_s"],
                m["list_exposures_s"],
                m["total_s"]
            );
        }
        if cfg!(debug_assertions) {
            println!("(a debug build: figures are slower than a release build's)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
