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
        let alone = sandbox_noop::bubblewrap_alone_noop().unwrap();
        let bare = sandbox_noop::bare_bwrap_noop().unwrap();
        for took in [ours, alone, bare] {
            assert!(
                took > Duration::ZERO && took < Duration::from_secs(2),
                "{took:?}"
            );
        }
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

/// The one-pass path the push benchmark measures: the layer is stored in the
/// layout (whole, under its digest) and in the registry from one read; a
/// registry off the allow-list is refused before anything is stored; and the
/// image push afterwards finds the layer there.
#[test]
fn store_and_upload_stores_and_uploads_in_one_pass() {
    use cairn_engine::images::registry::{Connection, push, store_and_upload};
    let server = BenchRegistry::start(None).expect("docker-registry");
    let dir = tempfile::tempdir().expect("tmp");
    let data = cairn_engine::DataDir::at(dir.path().join("data"));
    let images = cairn_engine::images::Images::open(&data).expect("images");
    let org = cairn_model::config::OrgConfig {
        registries: vec![server.host.clone()],
        ..Default::default()
    };
    let connection = Connection {
        plain_http: true,
        ..Default::default()
    };
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let target = format!("{}/one/pass:latest", server.host);

    let elsewhere = cairn_model::config::OrgConfig {
        registries: vec!["registry.example.org".into()],
        ..Default::default()
    };
    let err = store_and_upload(&images, &elsewhere, &target, &connection, bytes.as_slice())
        .expect_err("a registry off the allow-list");
    println!("refused: {err}");
    let digest = cairn_evidence::sha256(&bytes);
    assert!(!images.layout().has_blob(&digest));

    let blob = store_and_upload(&images, &org, &target, &connection, bytes.as_slice())
        .expect("store and upload");
    assert_eq!((blob.digest, blob.size), (digest, bytes.len() as u64));
    assert_eq!(
        std::fs::read(images.layout().blob_path(&digest)).expect("stored"),
        bytes
    );
    let mut options = RegistryOptions::new(server.host.clone(), Credentials::Anonymous);
    options.scheme = Scheme::HttpLoopback;
    let reg = Registry::with_options(options).expect("client");
    let mut pulled = Vec::new();
    reg.pull_blob("one/pass", &digest, blob.size, &mut pulled)
        .expect("the registry has it");
    assert_eq!(pulled, bytes);

    let rootfs = dir.path().join("base");
    std::fs::create_dir_all(rootfs.join("etc")).expect("rootfs");
    std::fs::write(rootfs.join("etc/os-release"), "ID=bench\n").expect("rootfs");
    let base = cairn_oci::import_rootfs(images.layout(), &rootfs, 0).expect("base");
    let layer = cairn_oci::Layer {
        digest,
        diff_id: digest,
        size: blob.size,
    };
    let spec = cairn_oci::ImageSpec {
        base_name: "bench".into(),
        ..cairn_oci::ImageSpec::default()
    };
    let image = cairn_oci::assemble(images.layout(), &base, &[layer], &spec).expect("image");
    let (store, _) = cairn_engine::pairing::open_store(&data).expect("store");
    let pushed = push(&images, &store, &org, &image, &target, &connection).expect("push");
    assert_eq!(pushed.digest, image.manifest_digest.to_string());
}

/// `bench chain` counts the store's commits per run: the run's creation (its
/// workload, its start and its first stage's start), one per boundary between
/// two of source + 10 no-op stages, and the last stage's end with the run's
/// end: 12, where a stage used to take four of its own, 47 a run, then 16
/// (issue 19). A stage that outlives the log flusher's 100 ms tick (a loaded
/// host) may add one or two for followers.
#[test]
fn the_chain_bench_commits_once_per_stage_boundary() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let runs = cairn_bench::chain_setup::chain(tmp.path(), 10, 3).expect("chain");
    let (fewest, most) = runs.commits_per_run;
    println!(
        "{} runs, {fewest} to {most} store commits per run",
        runs.times.len()
    );
    assert_eq!(runs.times.len(), 3);
    assert!(fewest >= 12, "{fewest}");
    assert!(most <= 12 + 11, "{most}");
}
