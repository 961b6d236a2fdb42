//! The registry push benchmark (`examples/push_bench.rs`): push a large layer (plus config and manifest) to a
//! registry and compare with the floor, `sha256sum` of the same bytes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use cairn_registry::{
    Descriptor, Digest, ImageManifest, PushedBlob, Registry, Sha256, media_types,
};

/// What [`push_layer`] measured.
#[derive(Clone, Debug)]
pub struct PushBench {
    /// Layer size.
    pub bytes: u64,
    /// Seconds to push the layer, config and manifest.
    pub push_seconds: f64,
    /// Seconds `sha256sum` took over the same file (the floor).
    pub sha256sum_seconds: f64,
    /// `push_seconds / sha256sum_seconds` (the goal is at most 1.5).
    pub ratio: f64,
    /// Push throughput, MiB/s.
    pub push_mib_per_second: f64,
    /// How the layer went (uploaded whole or in chunks).
    pub layer: PushedBlob,
    /// The pushed manifest.
    pub manifest_digest: Digest,
}

/// Writes `size` fresh pseudo-random bytes to a file in `scratch`, times
/// `sha256sum` over it, then times pushing it as the one layer of an image
/// to `repository:latest`. The file is removed afterwards.
pub fn push_layer(
    registry: &Registry,
    repository: &str,
    size: u64,
    scratch: &Path,
) -> Result<PushBench> {
    let path = scratch.join(format!("cairn-bench-layer-{}", std::process::id()));
    let result = (|| {
        let digest =
            write_layer(&path, size).with_context(|| format!("cannot write {}", path.display()))?;

        let started = Instant::now();
        let out = Command::new("sha256sum")
            .arg(&path)
            .output()
            .context("cannot run sha256sum")?;
        let sha256sum_seconds = started.elapsed().as_secs_f64();
        let printed = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || printed.split_whitespace().next() != Some(digest.hex().as_str())
        {
            return Err(anyhow!("sha256sum did not confirm the layer digest"));
        }

        let started = Instant::now();
        let mut file =
            File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let layer = registry.push_blob(repository, &digest, size, &mut file)?;
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{digest}"]}}}}"#
        );
        let config_desc = Descriptor::new(
            media_types::OCI_CONFIG,
            cairn_evidence::sha256(config.as_bytes()),
            config.len() as u64,
        );
        registry.push_blob(
            repository,
            &config_desc.digest,
            config_desc.size,
            &mut config.as_bytes(),
        )?;
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(media_types::OCI_MANIFEST.into()),
            artifact_type: None,
            config: config_desc,
            layers: vec![Descriptor::new(
                "application/vnd.oci.image.layer.v1.tar",
                digest,
                size,
            )],
            subject: None,
            annotations: Default::default(),
        };
        let bytes = serde_json::to_vec(&manifest).context("the bench manifest")?;
        let manifest_digest =
            registry.push_manifest(repository, "latest", media_types::OCI_MANIFEST, &bytes)?;
        let push_seconds = started.elapsed().as_secs_f64();
        Ok(PushBench {
            bytes: size,
            push_seconds,
            sha256sum_seconds,
            ratio: push_seconds / sha256sum_seconds.max(1e-9),
            push_mib_per_second: size as f64 / (1024.0 * 1024.0) / push_seconds.max(1e-9),
            layer,
            manifest_digest,
        })
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// Fresh bytes each run (seeded from the clock) so the registry cannot
/// already have the layer.
fn write_layer(path: &Path, size: u64) -> std::io::Result<Digest> {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut x = seed;
    let mut hasher = Sha256::new();
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for chunk in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(hasher.finish())
}
