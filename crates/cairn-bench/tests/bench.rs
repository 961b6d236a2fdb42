//! The benchmarks' own measurements do real work and report sane figures (run
//! small; the figures themselves are not asserted beyond sanity).

use std::time::Duration;

use cairn_bench::peers::BenchRegistry;
use cairn_bench::{log, push_layer, sandbox_noop};
use cairn_registry::{Credentials, Registry, RegistryOptions, Scheme};
use cairn_tlog::note::Signer;
use cairn_tlog_fs::Log;

#[test]
fn bench_noops_run() {
    for _ in 0..3 {
        let ours = sandbox_noop::sandboxed_noop().unwrap();
        let bare = sandbox_noop::bare_bwrap_noop().unwrap();
        assert!(ours < Duration::from_secs(2) && bare < Duration::from_secs(2));
    }
}

#[test]
fn bench_measures_batched_and_baseline() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = log::BenchConfig {
        threads: 32,
        entries: 2_000,
        baseline_entries: 20,
        entry_bytes: 100,
    };
    let seed = |b| Signer::from_seed("bench.local/log", [b; 32]).expect("signer");
    let report = log::run(tmp.path(), seed(1), seed(2), config).expect("bench");
    assert!(report.batched_per_sec > 0.0 && report.baseline_per_sec > 0.0);
    assert!(report.raw_fsync_per_sec > 0.0);
    assert!(
        report.batches >= 1 && report.batches < 2_000,
        "{} batches",
        report.batches
    );
    assert!(report.latency_p50 <= report.latency_p99 && report.latency_p99 <= report.latency_max);
    let log = Log::open(&tmp.path().join("batched"), seed(1)).expect("reopen");
    assert_eq!(log.size(), 2_000);
    let baseline = Log::open(&tmp.path().join("baseline"), seed(2)).expect("reopen");
    assert_eq!(baseline.size(), 20);
    println!(
        "batched {:.0}/s in {} batches, p50 {:?} p99 {:?}; baseline {:.0}/s; x{:.1}",
        report.batched_per_sec,
        report.batches,
        report.latency_p50,
        report.latency_p99,
        report.baseline_per_sec,
        report.speedup()
    );
}

#[test]
fn bench_push_layer_small() {
    let server = BenchRegistry::start(None).expect("docker-registry");
    let mut options = RegistryOptions::new(server.host.clone(), Credentials::Anonymous);
    options.scheme = Scheme::HttpLoopback;
    let reg = Registry::with_options(options).expect("client");
    let dir = tempfile::tempdir().expect("tmp");
    let report = push_layer::push_layer(&reg, "bench", 8 * 1024 * 1024, dir.path()).expect("bench");
    assert_eq!(report.bytes, 8 * 1024 * 1024);
    assert!(report.push_seconds > 0.0 && report.sha256sum_seconds > 0.0);
    assert!(reg.get_manifest("bench", "latest", &[]).is_ok());
}
