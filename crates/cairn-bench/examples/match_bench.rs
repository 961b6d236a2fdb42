//! Micro benchmark (not a test): index the RustSec OSV export and match 10,000
//! synthetic components against it.
//!
//! `cargo run --release -p cairn-bench --example match_bench [DIR] [N]`
//! DIR defaults to `$CAIRN_CONFORMANCE_DIR/osv/rustsec` or
//! `../shared/conformance/osv/rustsec`; N to 10000. Goal: matching ≤ 1 s.

use cairn_bench::synthetic as bench;
use cairn_vuln::{Advisory, AdvisoryIndex};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = match args.next() {
        Some(d) => PathBuf::from(d),
        None => std::env::var_os("CAIRN_CONFORMANCE_DIR")
            .map_or_else(|| PathBuf::from("../shared/conformance"), PathBuf::from)
            .join("osv/rustsec"),
    };
    let n: usize = match args.next() {
        Some(n) => n.parse()?,
        None => 10_000,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            files.push(std::fs::read(&path)?);
        }
    }
    let t = Instant::now();
    let mut index = AdvisoryIndex::new();
    for bytes in &files {
        index.insert(Advisory::parse(bytes)?);
    }
    let parse = t.elapsed();
    let components = bench::synthetic_components(&index, n);
    let t = Instant::now();
    let report = index.scan(&components);
    let scan = t.elapsed();
    println!(
        "parsed and indexed {} records in {parse:?}; matched {} components in {scan:?}: \
         {} vulnerabilities, {} informational, {} not evaluable",
        index.len(),
        report.packages,
        report.vulnerabilities.len(),
        report.informational.len(),
        report.issues.len()
    );
    Ok(())
}
