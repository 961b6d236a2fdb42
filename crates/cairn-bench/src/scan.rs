//! `cairn bench scan`: `cairn scan --json` of one Cargo.lock beside the real
//! `cargo audit --no-fetch --json` on the same RustSec data, in the same run.
//!
//! The OSV records (default: the conformance RustSec export) are imported into a
//! scratch data directory and written back into the advisory-db layout cargo-audit
//! reads (`cairn_vuln::rustsec_export`); a record that cannot be written is left
//! out of both. The lockfile is given, or generated: every crate the records name,
//! at version 0.1.0 (a large, advisory-dense lockfile). Both tools run as processes,
//! interleaved, `--repeat` times after one warm-up each; their vulnerability ids
//! are compared (informational ones apart) and the wall-time ratio printed.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use serde_json::{Value, json};

use crate::Failure;
use crate::Output;
use crate::print_json;
use crate::summary;

#[derive(Debug, clap::Args)]
pub struct ScanBenchArgs {
    /// A directory of OSV records of crates.io (RustSec's export).
    #[arg(long, default_value = "../shared/conformance/osv/rustsec")]
    pub osv: PathBuf,
    /// The Cargo.lock to scan (default: every crate the records name, at 0.1.0).
    #[arg(long)]
    pub lockfile: Option<PathBuf>,
    /// The cargo-audit binary (default: $CAIRN_INTEROP_DIR/bin/cargo-audit, else
    /// target/interop-tools/bin/cargo-audit, as scripts/install-audit-tools puts it).
    #[arg(long)]
    pub cargo_audit: Option<PathBuf>,
    /// Timed runs of each tool.
    #[arg(long, default_value_t = 10)]
    pub repeat: usize,
}

/// Runs `cmd`, which must exit 0 or 1 (1: findings), and parses its stdout.
fn run_json(cmd: &mut Command, what: &str) -> Result<(Duration, Value), Failure> {
    let start = Instant::now();
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    let took = start.elapsed();
    if !matches!(out.status.code(), Some(0 | 1)) {
        return Err(anyhow!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    let v =
        serde_json::from_slice(&out.stdout).with_context(|| format!("{what} printed no JSON"))?;
    Ok((took, v))
}

fn ids(list: &Value, pointer: &str) -> BTreeSet<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| {
            x.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

pub fn scan(out: &Output, args: &ScanBenchArgs) -> Result<ExitCode, Failure> {
    let repeat = args.repeat.clamp(1, 1000);
    let cargo_audit = match &args.cargo_audit {
        Some(p) => p.clone(),
        None => std::env::var_os("CAIRN_INTEROP_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/interop-tools"))
            .join("bin/cargo-audit"),
    };
    if !cargo_audit.is_file() {
        return Err(Failure::user(anyhow!(
            "cargo-audit is not at {} (run scripts/install-audit-tools, or pass --cargo-audit)",
            cargo_audit.display()
        )));
    }
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let (osv, db, home) = (
        scratch.path().join("osv"),
        scratch.path().join("advisory-db"),
        scratch.path().join("home"),
    );
    std::fs::create_dir_all(&osv).context("cannot create the scratch OSV directory")?;
    let mut crates = BTreeSet::new();
    let (mut written, mut left_out) = (0usize, Vec::new());
    let list = std::fs::read_dir(&args.osv)
        .map_err(|e| Failure::user(anyhow!("cannot read {}: {e}", args.osv.display())))?;
    for entry in list {
        let path = entry.context("cannot list the OSV directory")?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let exported = cairn_vuln::Advisory::parse(&bytes)
            .map_err(|e| anyhow!("{}: {e}", path.display()))
            .and_then(|a| cairn_vuln::rustsec_export::to_rustsec(&a).map_err(anyhow::Error::new));
        match exported {
            Ok(e) => {
                let dir = db.join("crates").join(&e.package);
                std::fs::create_dir_all(&dir).context("cannot write the advisory db")?;
                std::fs::write(dir.join(&e.file_name), &e.markdown)
                    .context("cannot write the advisory db")?;
                std::fs::write(osv.join(path.file_name().unwrap_or_default()), &bytes)
                    .context("cannot copy a record")?;
                crates.insert(e.package);
                written += 1;
            }
            Err(e) => left_out.push(e.to_string()),
        }
    }
    let lockfile = match &args.lockfile {
        Some(p) => std::fs::canonicalize(p)
            .map_err(|e| Failure::user(anyhow!("cannot read {}: {e}", p.display())))?,
        None => {
            let mut text =
                String::from("version = 3\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n");
            for name in &crates {
                text.push_str(&format!(
                    "\n[[package]]\nname = \"{name}\"\nversion = \"0.1.0\"\n\
                     source = \"registry+https://github.com/rust-lang/crates.io-index\"\n"
                ));
            }
            let p = scratch.path().join("app/Cargo.lock");
            std::fs::create_dir_all(scratch.path().join("app")).context("scratch app")?;
            std::fs::write(&p, text).context("cannot write the lockfile")?;
            p
        }
    };
    let exe = std::env::current_exe().context("cannot find the cairn binary")?;
    let cairn = |args: &[&std::ffi::OsStr]| {
        let mut c = Command::new(&exe);
        c.args(args)
            .env("CAIRN_HOME", &home)
            .env_remove("CAIRN_PLATFORM_DIR")
            .current_dir(scratch.path());
        c
    };
    let imported = cairn(&[
        "--json".as_ref(),
        "vulns".as_ref(),
        "import".as_ref(),
        osv.as_os_str(),
    ])
    .output()
    .context("cannot run cairn vulns import")?;
    if !imported.status.success() {
        return Err(anyhow!(
            "cairn vulns import failed: {}",
            String::from_utf8_lossy(&imported.stderr).trim()
        )
        .into());
    }
    let ours_cmd = || cairn(&["--json".as_ref(), "scan".as_ref(), lockfile.as_os_str()]);
    let theirs_cmd = || {
        let mut c = Command::new(&cargo_audit);
        c.args(["audit", "--no-fetch", "--json", "--db"])
            .arg(&db)
            .arg("--file")
            .arg(&lockfile)
            .env("CARGO_HOME", scratch.path().join("cargo-home"));
        c
    };
    // Warm-up (page cache, the store's first open), then interleaved timed runs.
    let (_, mut ours_v) = run_json(&mut ours_cmd(), "cairn scan")?;
    let (_, mut theirs_v) = run_json(&mut theirs_cmd(), "cargo audit")?;
    let (mut ours_t, mut theirs_t) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        let (t, v) = run_json(&mut ours_cmd(), "cairn scan")?;
        ours_t.push(t);
        ours_v = v;
        let (t, v) = run_json(&mut theirs_cmd(), "cargo audit")?;
        theirs_t.push(t);
        theirs_v = v;
    }
    let our_vulns = ids(&ours_v["vulnerabilities"], "/advisory");
    let their_vulns = ids(&theirs_v["vulnerabilities"]["list"], "/advisory/id");
    let our_info = ids(&ours_v["informational"], "/advisory");
    let mut their_info = BTreeSet::new();
    if let Some(warnings) = theirs_v["warnings"].as_object() {
        for (kind, list) in warnings {
            if kind != "yanked" {
                their_info.extend(ids(list, "/advisory/id"));
            }
        }
    }
    let only_ours: Vec<&String> = our_vulns.difference(&their_vulns).collect();
    let only_theirs: Vec<&String> = their_vulns.difference(&our_vulns).collect();
    let min_ms = |xs: &[Duration]| {
        xs.iter()
            .min()
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    let (o_min, t_min) = (min_ms(&ours_t), min_ms(&theirs_t));
    let (o, t) = (summary(ours_t), summary(theirs_t));
    let ratio = t[0] / o[0];
    let packages = ours_v["packages"].as_u64().unwrap_or(0);
    if out.json {
        print_json(&json!({
            "advisories": written,
            "left_out": left_out,
            "lockfile": lockfile.display().to_string(),
            "packages": packages,
            "repeat": repeat,
            "cairn_scan_ms": { "min": o_min, "p50": o[0], "p99": o[1], "mean": o[2], "max": o[3] },
            "cargo_audit_ms": { "min": t_min, "p50": t[0], "p99": t[1], "mean": t[2], "max": t[3] },
            "ratio_p50": ratio,
            "ratio_min": t_min / o_min,
            "vulnerabilities": { "cairn": our_vulns.len(), "cargo_audit": their_vulns.len(),
                "only_cairn": only_ours, "only_cargo_audit": only_theirs },
            "informational": { "cairn": our_info.len(), "cargo_audit": their_info.len(),
                "same": our_info == their_info },
            "same_ids": only_ours.is_empty() && only_theirs.is_empty(),
        }));
    } else {
        println!(
            "{written} RustSec advisories ({} left out), lockfile {} with {packages} crates, {repeat} runs each, interleaved",
            left_out.len(),
            lockfile.display()
        );
        println!(
            "{:<44} {:>9} {:>9} {:>9} {:>9}",
            "", "min ms", "p50 ms", "mean ms", "max ms"
        );
        println!(
            "{:<44} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            "cairn scan --json (import done beforehand)", o_min, o[0], o[2], o[3]
        );
        println!(
            "{:<44} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            "cargo audit --no-fetch --json", t_min, t[0], t[2], t[3]
        );
        println!(
            "ratio cargo-audit/cairn: {ratio:.1}x at p50, {:.1}x at min (goal: >= 10x)",
            t_min / o_min
        );
        println!(
            "vulnerability ids: cairn {}, cargo-audit {}, only cairn {only_ours:?}, only cargo-audit {only_theirs:?}",
            our_vulns.len(),
            their_vulns.len()
        );
        println!(
            "informational ids: cairn {}, cargo-audit {} ({})",
            our_info.len(),
            their_info.len(),
            if our_info == their_info {
                "same"
            } else {
                "different"
            }
        );
        for l in &left_out {
            println!("left out: {l}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
