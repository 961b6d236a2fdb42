//! Times `Gate::decide` on a realistic production input with the default policy
//! set, side by side with regorus alone (run with `--release`):
//! `cargo run --release -p cairn-bench --example gate_bench [ITERATIONS]`.

use std::time::Instant;

use cairn_policy::{DefaultParams, Gate, bench_gate, default_policy_files, realistic_input};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(2000);
    let builder = "urn:cairn:builder:engine";
    let params = DefaultParams::new(builder);
    let gate = Gate::default_set(&params)?;
    let input = realistic_input(builder);
    let bench = bench_gate(
        &gate,
        &default_policy_files(),
        &params.to_data()?,
        &input,
        iterations,
        &Instant::now,
    )?;
    println!(
        "gate decision, default set, realistic production input ({} iterations; allowed: {}, denials: {})",
        bench.iterations, bench.allowed, bench.denials
    );
    println!(
        "  cairn Gate::decide   p50 {:>9.1?}  p99 {:>9.1?}  max {:>9.1?}",
        bench.gate.p50, bench.gate.p99, bench.gate.max
    );
    println!(
        "  regorus alone        p50 {:>9.1?}  p99 {:>9.1?}  max {:>9.1?}",
        bench.regorus.p50, bench.regorus.p99, bench.regorus.max
    );
    println!(
        "  ratio p50 {:.2}x, p99 {:.2}x; goal p99 <= 1 ms: {}",
        bench.gate.p50.as_secs_f64() / bench.regorus.p50.as_secs_f64(),
        bench.gate.p99.as_secs_f64() / bench.regorus.p99.as_secs_f64(),
        if bench.gate.p99.as_micros() <= 1000 {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}
