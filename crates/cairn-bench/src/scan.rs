//! `cairn bench scan`: `cairn scan --json` of one Cargo.lock beside the real
//! `cargo audit --no-fetch --json` on the same RustSec data, in the same run.
//!
//! The OSV records (default: the conformance RustSec export) are imported into a
//! scratch data directory and written back into the advisory-db layout cargo-audit
//! reads (`cairn_vuln::rustsec_export`); a record that cannot be written is left
//! out of both. The lockfile is given, or generated: every crate the records name,
//! at version 0.1.0 (a large, advisory-dense lockfile), and beside it, in the same
//! run, a small one of the first `--crates` of those (default 30: a typical
//! project, where process start and the store's open weigh most). Both tools run
//! as processes, interleaved, `--repeat` times after one warm-up each; their
//! vulnerability ids are compared (informational ones apart) and the wall-time
//! ratio printed, for each lockfile.

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
    /// Also scan a lockfile of the first N crates of the generated one, in the
    /// same run (0: not; ignored with --lockfile).
    #[arg(long, default_value_t = 30)]
    pub crates: usize,
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
    // A lockfile of `names` at 0.1.0, written to `dir/Cargo.lock`.
    let write_lockfile = |dir: &str, names: &mut dyn Iterator<Item = &String>| {
        let mut text =
            String::from("version = 3\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n");
        for name in names {
            text.push_str(&format!(
                "\n[[package]]\nname = \"{name}\"\nversion = \"0.1.0\"\n\
                 source = \"registry+https://github.com/rust-lang/crates.io-index\"\n"
            ));
        }
        let p = scratch.path().join(dir).join("Cargo.lock");
        std::fs::create_dir_all(scratch.path().join(dir)).context("scratch app")?;
        std::fs::write(&p, text).context("cannot write the lockfile")?;
        Ok::<_, Failure>(p)
    };
    let (lockfile, small_lockfile) = match &args.lockfile {
        Some(p) => (
            std::fs::canonicalize(p)
                .map_err(|e| Failure::user(anyhow!("cannot read {}: {e}", p.display())))?,
            None,
        ),
        None => {
            let large = write_lockfile("app", &mut crates.iter())?;
            let n = args.crates.min(crates.len());
            let small = if n == 0 || n == crates.len() {
                None
            } else {
                Some(write_lockfile("small", &mut crates.iter().take(n))?)
            };
            (large, small)
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
    let run = |lockfile: &std::path::Path| {
        measure(
            repeat,
            || cairn(&["--json".as_ref(), "scan".as_ref(), lockfile.as_os_str()]),
            || {
                let mut c = Command::new(&cargo_audit);
                c.args(["audit", "--no-fetch", "--json", "--db"])
                    .arg(&db)
                    .arg("--file")
                    .arg(lockfile)
                    .env("CARGO_HOME", scratch.path().join("cargo-home"));
                c
            },
        )
    };
    let large = run(&lockfile)?;
    let small = match small_lockfile {
        Some(p) => Some((run(&p)?, p)),
        None => None,
    };
    if out.json {
        let mut report = large.json();
        if let (Some(o), Some((m, p))) = (report.as_object_mut(), &small) {
            let mut j = m.json();
            j["lockfile"] = json!(p.display().to_string());
            o.insert("small".to_owned(), j);
        }
        report["advisories"] = json!(written);
        report["left_out"] = json!(left_out);
        report["lockfile"] = json!(lockfile.display().to_string());
        report["repeat"] = json!(repeat);
        print_json(&report);
    } else {
        println!(
            "{written} RustSec advisories ({} left out), {repeat} runs each, interleaved",
            left_out.len(),
        );
        large.print(&lockfile, 20.0);
        if let Some((m, p)) = &small {
            m.print(p, 10.0);
        }
        for l in &left_out {
            println!("left out: {l}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One lockfile's timed runs of both tools and what they found.
struct Measured {
    ours: Vec<Duration>,
    theirs: Vec<Duration>,
    packages: u64,
    our_vulns: BTreeSet<String>,
    their_vulns: BTreeSet<String>,
    our_info: BTreeSet<String>,
    their_info: BTreeSet<String>,
}

/// Runs both tools on one lockfile: one warm-up each (page cache, the store's
/// first open), then `repeat` interleaved timed runs.
fn measure(
    repeat: usize,
    ours_cmd: impl Fn() -> Command,
    theirs_cmd: impl Fn() -> Command,
) -> Result<Measured, Failure> {
    let (_, mut ours_v) = run_json(&mut ours_cmd(), "cairn scan")?;
    let (_, mut theirs_v) = run_json(&mut theirs_cmd(), "cargo audit")?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        let (t, v) = run_json(&mut ours_cmd(), "cairn scan")?;
        ours.push(t);
        ours_v = v;
        let (t, v) = run_json(&mut theirs_cmd(), "cargo audit")?;
        theirs.push(t);
        theirs_v = v;
    }
    let mut their_info = BTreeSet::new();
    if let Some(warnings) = theirs_v["warnings"].as_object() {
        for (kind, list) in warnings {
            if kind != "yanked" {
                their_info.extend(ids(list, "/advisory/id"));
            }
        }
    }
    Ok(Measured {
        ours,
        theirs,
        packages: ours_v["packages"].as_u64().unwrap_or(0),
        our_vulns: ids(&ours_v["vulnerabilities"], "/advisory"),
        their_vulns: ids(&theirs_v["vulnerabilities"]["list"], "/advisory/id"),
        our_info: ids(&ours_v["informational"], "/advisory"),
        their_info,
    })
}

fn min_ms(xs: &[Duration]) -> f64 {
    xs.iter()
        .min()
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

impl Measured {
    fn only_ours(&self) -> Vec<&String> {
        self.our_vulns.difference(&self.their_vulns).collect()
    }

    fn only_theirs(&self) -> Vec<&String> {
        self.their_vulns.difference(&self.our_vulns).collect()
    }

    fn json(&self) -> Value {
        let (o_min, t_min) = (min_ms(&self.ours), min_ms(&self.theirs));
        let (o, t) = (summary(self.ours.clone()), summary(self.theirs.clone()));
        let (only_ours, only_theirs) = (self.only_ours(), self.only_theirs());
        json!({
            "packages": self.packages,
            "cairn_scan_ms": { "min": o_min, "p50": o[0], "p99": o[1], "mean": o[2], "max": o[3] },
            "cargo_audit_ms": { "min": t_min, "p50": t[0], "p99": t[1], "mean": t[2], "max": t[3] },
            "ratio_p50": t[0] / o[0],
            "ratio_min": t_min / o_min,
            "vulnerabilities": { "cairn": self.our_vulns.len(), "cargo_audit": self.their_vulns.len(),
                "only_cairn": only_ours, "only_cargo_audit": only_theirs },
            "informational": { "cairn": self.our_info.len(), "cargo_audit": self.their_info.len(),
                "same": self.our_info == self.their_info },
            "same_ids": only_ours.is_empty() && only_theirs.is_empty(),
        })
    }

    fn print(&self, lockfile: &std::path::Path, goal: f64) {
        let (o_min, t_min) = (min_ms(&self.ours), min_ms(&self.theirs));
        let (o, t) = (summary(self.ours.clone()), summary(self.theirs.clone()));
        println!(
            "lockfile {} with {} crates",
            lockfile.display(),
            self.packages
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
            "ratio cargo-audit/cairn: {:.1}x at p50, {:.1}x at min (goal: >= {goal}x)",
            t[0] / o[0],
            t_min / o_min
        );
        println!(
            "vulnerability ids: cairn {}, cargo-audit {}, only cairn {:?}, only cargo-audit {:?}",
            self.our_vulns.len(),
            self.their_vulns.len(),
            self.only_ours(),
            self.only_theirs()
        );
        println!(
            "informational ids: cairn {}, cargo-audit {} ({})",
            self.our_info.len(),
            self.their_info.len(),
            if self.our_info == self.their_info {
                "same"
            } else {
                "different"
            }
        );
    }
}
