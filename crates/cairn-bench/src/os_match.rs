//! `cairn bench os-match`: matching a Debian root filesystem's packages against
//! OSV.dev's Debian records, side by side with the independent Python matcher
//! (`crates/cairn-cli/tests/os_reference_matcher.py`, libapt's
//! `apt_pkg.version_compare`) on the same zip and root filesystem; both do the
//! whole job: read the zip's records, read the dpkg database, match; the two
//! answers are compared. cairn is also timed as it runs: the zip imported into
//! a store once, then each scan matching against the stored records of its
//! packages only; that ratio is the one with the goal (cairn ≥ 20× faster).
//!
//! Without `--rootfs` the root filesystem is this host's own packages: its
//! `/etc/os-release` and `/var/lib/dpkg/status` copied into a scratch directory
//! (a Debian 12 host has a few hundred installed).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, anyhow};
use cairn_vuln::archive::{Entry, OsvArchive};
use cairn_vuln::{Advisory, AdvisoryIndex};
use serde_json::json;

use crate::Failure;
use crate::Output;
use crate::print_json;

/// cairn's whole match: the root filesystem's packages (as `cairn scan` reads
/// them), the zip's records that can concern them into an index, the match.
/// Each record is peeked first ([`Advisory::peek`]: its id and package names,
/// borrowed, nothing else built) and parsed in full only when it names an
/// installed package; the index's answer is the same as if every record were
/// parsed: a record whose id was seen before is parsed in full with the skipped
/// one of that id (re-read, in archive order), so a newer record still replaces
/// an older one. Returns (advisory, source package) pairs and the package count.
fn cairn_match(osv: &Path, rootfs: &Path) -> Result<(BTreeSet<(String, String)>, usize), Failure> {
    let collected = cairn_engine::inventory::collect_rootfs(rootfs)?;
    let (packages, _) = cairn_engine::inventory::packages(&collected);
    let wanted: HashSet<(&str, String)> = packages
        .iter()
        .map(|p| {
            (
                p.ecosystem.as_str(),
                cairn_vuln::normalize_name(&p.ecosystem, &p.name),
            )
        })
        .collect();
    let file =
        std::fs::File::open(osv).with_context(|| format!("cannot read {}", osv.display()))?;
    let mut archive = OsvArchive::open(
        std::io::BufReader::new(file),
        cairn_engine::advisories::zip_limits(),
    )
    .map_err(|e| anyhow!("{}: {e}", osv.display()))?;
    let mut index = AdvisoryIndex::new();
    // Skipped records by id: the entry to re-read if the id comes again.
    let mut skipped: HashMap<String, usize> = HashMap::new();
    let insert = |index: &mut AdvisoryIndex, bytes: &[u8]| {
        if let Ok(a) = Advisory::parse(bytes)
            && !a.is_withdrawn()
        {
            index.insert(a);
        }
    };
    for i in 0..archive.len() {
        let Ok(Entry::Record { bytes, .. }) = archive.entry(i) else {
            continue;
        };
        let Ok(peek) = Advisory::peek(&bytes) else {
            continue; // the full parse refuses it too
        };
        if peek.withdrawn {
            continue; // skipped whether or not it parses
        }
        if let Some(j) = skipped.remove(peek.id.as_ref()) {
            if let Ok(Entry::Record { bytes: earlier, .. }) = archive.entry(j) {
                insert(&mut index, &earlier);
            }
            insert(&mut index, &bytes);
        } else if index.get(&peek.id).is_some()
            || peek
                .packages
                .iter()
                .any(|(e, n)| wanted.contains(&(e.as_ref(), cairn_vuln::normalize_name(e, n))))
        {
            insert(&mut index, &bytes);
        } else {
            skipped.insert(peek.id.into_owned(), i);
        }
    }
    let report = index.scan(&packages);
    Ok((
        report
            .vulnerabilities
            .iter()
            .chain(&report.informational)
            .map(|f| (f.advisory_id.clone(), f.package.clone()))
            .collect(),
        collected.report.components.len(),
    ))
}

/// cairn as it runs: the records imported once into a store (not timed
/// here), then each scan reads the dpkg database and matches against the
/// stored records of its packages only (`inventory::evaluate`, what `cairn
/// scan` and a build's scan run).
fn cairn_stored_match(
    store: &dyn cairn_store::Store,
    rootfs: &Path,
) -> Result<BTreeSet<(String, String)>, Failure> {
    let collected = cairn_engine::inventory::collect_rootfs(rootfs)?;
    let evaluation = cairn_engine::inventory::evaluate(store, &collected)?;
    Ok(evaluation
        .report
        .vulnerabilities
        .iter()
        .chain(&evaluation.report.informational)
        .map(|f| (f.advisory_id.clone(), f.package.clone()))
        .collect())
}

fn host_rootfs(dir: &Path) -> Result<PathBuf, Failure> {
    let root = dir.join("host-packages");
    for (from, to) in [
        ("/etc/os-release", "etc/os-release"),
        ("/var/lib/dpkg/status", "var/lib/dpkg/status"),
    ] {
        let to = root.join(to);
        std::fs::create_dir_all(to.parent().unwrap_or(&root))
            .with_context(|| format!("cannot create {}", to.display()))?;
        let text = std::fs::read(from).with_context(|| {
            format!("cannot read {from}: name a Debian root filesystem with --rootfs")
        })?;
        std::fs::write(&to, text).with_context(|| format!("cannot write {}", to.display()))?;
    }
    Ok(root)
}

pub fn os_match(
    out: &Output,
    rootfs: Option<&Path>,
    osv: Option<&Path>,
    reference: &Path,
    repeat: usize,
) -> Result<ExitCode, Failure> {
    let repeat = repeat.clamp(1, 20);
    let osv = match osv {
        Some(p) => p.to_path_buf(),
        None => std::env::var_os("CAIRN_CONFORMANCE_DIR")
            .map(|d| PathBuf::from(d).join("osv/debian-12.zip"))
            .ok_or_else(|| {
                Failure::user(anyhow!(
                    "name OSV.dev's Debian records with --osv (e.g. ../shared/conformance/osv/debian-12.zip)"
                ))
            })?,
    };
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let rootfs = match rootfs {
        Some(r) => r.to_path_buf(),
        None => host_rootfs(scratch.path())?,
    };
    // The store the warm path reads: the zip imported once.
    let store =
        cairn_store::SqliteStore::open(scratch.path()).context("cannot open the scratch store")?;
    let importing = Instant::now();
    {
        let file =
            std::fs::File::open(&osv).with_context(|| format!("cannot read {}", osv.display()))?;
        let mut import = cairn_engine::advisories::Import::new(&store);
        import.zip(
            std::io::BufReader::new(file),
            cairn_engine::advisories::zip_limits(),
            &osv.display().to_string(),
            &mut |_, _| {},
        )?;
        import.finish()?;
    }
    let imported_in = importing.elapsed().as_secs_f64();
    let (mut ours, mut theirs, mut warm) = (Vec::new(), Vec::new(), Vec::new());
    let mut warm_answer = BTreeSet::new();
    let (mut our_answer, mut their_answer, mut packages) = (BTreeSet::new(), BTreeSet::new(), 0);
    for _ in 0..repeat {
        let start = Instant::now();
        (our_answer, packages) = cairn_match(&osv, &rootfs)?;
        ours.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        warm_answer = cairn_stored_match(&store, &rootfs)?;
        warm.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        let out = Command::new("/usr/bin/python3")
            .arg(reference)
            .arg(&osv)
            .arg(&rootfs)
            .output()
            .context("cannot run the reference matcher (python3)")?;
        theirs.push(start.elapsed().as_secs_f64());
        if !out.status.success() {
            return Err(Failure::from(anyhow!(
                "the reference matcher failed (it needs Debian's python3-apt): {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        their_answer = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(a, p)| (a.to_owned(), p.to_owned()))
            .collect();
    }
    let best = |xs: &[f64]| xs.iter().copied().fold(f64::INFINITY, f64::min);
    let (o, t, w) = (best(&ours), best(&theirs), best(&warm));
    let only_cairn: Vec<_> = our_answer.difference(&their_answer).take(10).collect();
    let only_reference: Vec<_> = their_answer.difference(&our_answer).take(10).collect();
    let warm_identical = warm_answer == their_answer;
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    if out.json {
        print_json(&json!({
            "rootfs": rootfs.display().to_string(),
            "osv": osv.display().to_string(),
            "packages": packages,
            "repeat": repeat,
            "cairn_s": o,
            "reference_s": t,
            "ratio": t / o,
            "cairn_stored_s": w,
            "ratio_stored": t / w,
            "import_once_s": imported_in,
            "stored_identical": warm_identical,
            "goal_ratio": 20,
            "findings": { "cairn": our_answer.len(), "reference": their_answer.len() },
            "identical": only_cairn.is_empty() && only_reference.is_empty(),
            "only_cairn": only_cairn,
            "only_reference": only_reference,
            "build": build,
        }));
    } else {
        println!(
            "{packages} packages of {} against {} (best of {repeat}, each doing the whole job: zip, dpkg database, match)",
            rootfs.display(),
            osv.display()
        );
        println!(
            "cairn:                              {o:>8.3} s  {} findings",
            our_answer.len()
        );
        println!(
            "cairn, records already stored:      {w:>8.3} s  {} findings (the zip imported once beforehand, in {imported_in:.1} s; only the packages' records are read)",
            warm_answer.len()
        );
        println!(
            "reference (python3 + libapt):       {t:>8.3} s  {} findings",
            their_answer.len()
        );
        println!(
            "ratio, records stored: cairn is {:.1}x faster (goal: >= 20x; a {build} build: how cairn matches, its records kept in its store); answers {}",
            t / w,
            if warm_identical {
                "identical"
            } else {
                "differ"
            }
        );
        println!(
            "ratio, whole job from the zip: cairn is {:.1}x faster (each time inflating and reading the zip's records, which cairn does once at import); answers {}",
            t / o,
            if only_cairn.is_empty() && only_reference.is_empty() {
                "identical".to_owned()
            } else {
                format!("differ: only cairn {only_cairn:?}, only reference {only_reference:?}")
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
