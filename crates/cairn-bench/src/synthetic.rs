//! Synthetic inputs for timing matching (`examples/match_bench.rs`). Deterministic; no clock here — the caller times.

use cairn_vuln::{AdvisoryIndex, Package};

/// `n` components: about a third name packages the index has advisories for
/// (with versions spread over 0.0.0–9.9.9), the rest are names it does not know,
/// as in a real SBOM where most components have no advisory.
pub fn synthetic_components(index: &AdvisoryIndex, n: usize) -> Vec<Package> {
    let mut known: Vec<(&str, &str)> = index.package_keys().collect();
    known.sort_unstable();
    let mut out = Vec::with_capacity(n);
    // A fixed linear congruential sequence: same input, same components.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..n {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let version = format!("{}.{}.{}", (x >> 33) % 10, (x >> 40) % 10, (x >> 50) % 10);
        if i % 3 == 0 && !known.is_empty() {
            let (eco, name) = known[(x >> 13) as usize % known.len()];
            out.push(Package::new(eco, name, &version));
        } else {
            out.push(Package::new(
                "crates.io",
                &format!("synthetic-crate-{i}"),
                &version,
            ));
        }
    }
    out
}
