//! Runs `cairn_bench::push_layer::push_layer` against a running registry:
//! `push_bench HOST:PORT [BYTES] [SCRATCH_DIR] [CHUNK_THRESHOLD]` (plain HTTP
//! to loopback only; a threshold above BYTES pushes in one PUT).

use cairn_registry::{Credentials, Registry, RegistryOptions, Scheme};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let host = args
        .next()
        .ok_or("usage: push_bench HOST:PORT [BYTES] [SCRATCH_DIR] [CHUNK_THRESHOLD]")?;
    let size: u64 = args.next().map_or(Ok(1 << 30), |s| s.parse())?;
    let scratch = args.next().map_or_else(std::env::temp_dir, Into::into);
    let mut options = RegistryOptions::new(host, Credentials::Anonymous);
    options.scheme = Scheme::HttpLoopback;
    if let Some(t) = args.next() {
        options.chunk_threshold = t.parse()?;
    }
    let registry = Registry::with_options(options)?;
    registry.ping()?;
    let r = cairn_bench::push_layer::push_layer(&registry, "cairn/bench", size, &scratch)?;
    println!(
        "pushed {} bytes ({:?}) in {:.3} s ({:.0} MiB/s); sha256sum {:.3} s; ratio {:.2} (goal <= 1.5); manifest {}",
        r.bytes,
        r.layer,
        r.push_seconds,
        r.push_mib_per_second,
        r.sha256sum_seconds,
        r.ratio,
        r.manifest_digest
    );
    Ok(())
}
