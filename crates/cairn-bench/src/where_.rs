//! `cairn bench where`: lookups of random package names over synthetic stored SBOMs.
//!
//! The SBOMs are generated into a fresh store in a temp data directory, in batches
//! of [`BATCH`] per transaction. Package names are drawn from a pool with a heavy
//! head (a few packages are in nearly every SBOM, as `serde` or `libc` are), each
//! at most once per SBOM, at one of a few versions. Every lookup goes through the
//! same code as `cairn where NAME` (store query, ecosystem-aware name spellings).
//! The stored documents are small JSON documents naming the SBOM's subject; the
//! component index, not the document blobs, is what is measured.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use cairn_store::prelude::*;
use cairn_store::{NewSbom, SqliteStore};
use serde_json::json;

use crate::Failure;
use crate::Output;
use crate::print_json;
use crate::summary;

/// SBOMs per transaction while generating.
const BATCH: usize = 250;
/// Distinct package names in the synthetic world.
const POOL: usize = 50_000;
/// The most common names, timed apart.
const HEAD: usize = 20;
/// How many times each of them is looked up.
const HEAD_ROUNDS: usize = 5;
/// The seed of the generator: runs are reproducible.
const SEED: u64 = 0x00c0_ffee_cafe_f00d;

/// xorshift64*: enough for synthetic data, no dependency.
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

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// In `0..n`, with a heavy head: index `n * u^3` for uniform `u`.
    fn skewed(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((u * u * u) * n as f64) as usize % n
    }
}

fn package_name(i: usize) -> String {
    format!("synthetic-pkg-{i}")
}

/// `find` is `cairn where NAME`'s lookup (the CLI's, handed in): the stored
/// SBOMs holding any version of a package name, counted.
pub fn where_(
    out: &Output,
    sboms: usize,
    components: usize,
    lookups: usize,
    find: &dyn Fn(&dyn Store, &str) -> Result<usize, Failure>,
) -> Result<ExitCode, Failure> {
    let sboms = sboms.clamp(1, 100_000);
    let components = components.clamp(1, POOL / 2);
    let lookups = lookups.clamp(10, 1_000_000);
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let store = SqliteStore::open(scratch.path()).context("cannot open the scratch store")?;
    let mut rng = Rng(SEED);

    let generating = Instant::now();
    let mut made = 0usize;
    while made < sboms {
        let n = BATCH.min(sboms - made);
        let mut batch = Vec::with_capacity(n);
        for k in made..made + n {
            // Ordered: the same seed gives the same SBOMs every run.
            let mut picked = BTreeSet::new();
            while picked.len() < components {
                picked.insert(rng.skewed(POOL));
            }
            let comps = picked
                .into_iter()
                .map(|i| {
                    let name = package_name(i);
                    let version = format!("{}.{}.{}", rng.below(3), rng.below(20), rng.below(10));
                    let purl = format!("pkg:cargo/{name}@{version}");
                    ("crates.io".to_owned(), name, version, purl)
                })
                .collect();
            let subject = format!("synthetic-app-{k}");
            batch.push(NewSbom {
                document:
                    json!({ "bomFormat": "CycloneDX", "specVersion": "1.6", "subject": subject })
                        .to_string()
                        .into_bytes(),
                subject_digest: format!("sha256:{k:064x}"),
                subject_name: subject,
                workload: None,
                environment: None,
                created_at_ms: 0,
                format: "cyclonedx".to_owned(),
                components: comps,
            });
        }
        store.add_sboms(&batch)?;
        made += n;
    }
    let generated_in = generating.elapsed();

    // Warm the page cache the way a long-lived store would be.
    let warm = |name: String| -> Result<usize, Failure> { find(&store, &name) };
    for i in 0..20 {
        warm(package_name(i))?;
    }
    let mut times: Vec<Duration> = Vec::with_capacity(lookups);
    let (mut total_hits, mut most_hits) = (0usize, 0usize);
    for _ in 0..lookups {
        let name = package_name(rng.below(POOL));
        let start = Instant::now();
        let hits = warm(name)?;
        times.push(start.elapsed());
        total_hits += hits;
        most_hits = most_hits.max(hits);
    }
    let s = summary(times);
    // The worst case apart: the most common names, each in nearly every SBOM.
    let mut head_times = Vec::with_capacity(HEAD * HEAD_ROUNDS);
    let mut head_hits = 0usize;
    for _ in 0..HEAD_ROUNDS {
        for i in 0..HEAD {
            let start = Instant::now();
            head_hits += warm(package_name(i))?;
            head_times.push(start.elapsed());
        }
    }
    let head_hits = head_hits / HEAD_ROUNDS;
    let h = summary(head_times);
    let peer = "Dependency-Track takes > 30 s for this question (the peer's published figure, not measured here)";
    if out.json {
        print_json(&json!({
            "sboms": sboms,
            "components_per_sbom": components,
            "package_pool": POOL,
            "generate_s": generated_in.as_secs_f64(),
            "lookups": lookups,
            "hits_mean": total_hits as f64 / lookups as f64,
            "hits_max": most_hits,
            "lookup_ms": { "p50": s[0], "p99": s[1], "mean": s[2], "max": s[3] },
            "most_common_names": {
                "lookups": HEAD * HEAD_ROUNDS,
                "hits_mean": head_hits as f64 / HEAD as f64,
                "lookup_ms": { "p50": h[0], "p99": h[1], "mean": h[2], "max": h[3] },
            },
            "goal_p99_ms": 10,
            "peer": peer,
        }));
    } else {
        println!(
            "generated {sboms} SBOMs x {components} components ({} rows) from a pool of {POOL} names in {:.1} s ({BATCH} SBOMs per transaction)",
            sboms * components,
            generated_in.as_secs_f64()
        );
        println!(
            "{lookups} lookups of random names (`cairn where NAME`): {:.1} hits on average, {most_hits} at most",
            total_hits as f64 / lookups as f64
        );
        println!(
            "p50 {:.3} ms, p99 {:.3} ms, mean {:.3} ms, max {:.3} ms (goal: p99 <= 10 ms)",
            s[0], s[1], s[2], s[3]
        );
        println!(
            "the {HEAD} most common names apart, {HEAD_ROUNDS} lookups each ({:.0} hits on average): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (goal: p99 <= 10 ms)",
            head_hits as f64 / HEAD as f64,
            h[0],
            h[1],
            h[3]
        );
        println!("peer: {peer}");
    }
    Ok(ExitCode::SUCCESS)
}
