//! Bringing images in: a single-layer base image from a root filesystem (a
//! directory of host files, or a tarball such as `mmdebstrap --variant=minbase`
//! writes), and a copy of an image out of another OCI layout (e.g. one written
//! by `skopeo copy`), verifying every blob.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use flate2::{Compression, GzBuilder};
use oci_spec::image::{
    ANNOTATION_CREATED, Arch, ConfigBuilder, ImageConfigurationBuilder, Os, RootFsBuilder,
};

use crate::digest::HashWriter;
use crate::image::{history_entry, write_image};
use crate::json::{INDEX_TYPES, MANIFEST_TYPES, parse_index};
use crate::layout::MAX_JSON_BYTES;
use crate::time::rfc3339;
use crate::{Descriptor, Digest, Image, Layer, Layout, MediaType, OciError, layer_from_dir};

/// The largest uncompressed root filesystem tarball `import_rootfs` accepts (16 GiB).
const MAX_ROOTFS_BYTES: u64 = 16 << 30;
/// Most entries a root filesystem tarball may hold.
const MAX_ROOTFS_ENTRIES: u64 = 1_000_000;
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Makes a single-layer linux/amd64 base image from `source`: a directory
/// (its contents become `/`, made reproducible as by [`layer_from_dir`]) or a
/// tar file, plain or gzip (its entries are kept as they are, recompressed
/// deterministically; they are checked like any layer's when unpacked). The
/// config sets only `PATH`; `created` is `mtime_epoch_secs`.
pub fn import_rootfs(
    layout: &Layout,
    source: &Path,
    mtime_epoch_secs: u64,
) -> Result<Image, OciError> {
    let meta = std::fs::metadata(source).map_err(OciError::io("stat", source))?;
    let layer = if meta.is_dir() {
        layer_from_dir(layout, source, "/", mtime_epoch_secs)?
    } else {
        layer_from_tarball(layout, source)?
    };
    let created = rfc3339(mtime_epoch_secs);
    let spec_err = |what| move |source| OciError::Spec { what, source };
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(vec![layer.diff_id.to_string()])
        .build()
        .map_err(spec_err("rootfs"))?;
    let runtime = ConfigBuilder::default()
        .env(vec![DEFAULT_PATH.to_string()])
        .build()
        .map_err(spec_err("runtime config"))?;
    let config = ImageConfigurationBuilder::default()
        .created(created.clone())
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .rootfs(rootfs)
        .config(runtime)
        .history(vec![history_entry(&created, "cairn import-rootfs")?])
        .build()
        .map_err(spec_err("image config"))?;
    let layers = vec![Descriptor::new(
        MediaType::ImageLayerGzip,
        layer.size,
        layer.digest.to_oci()?,
    )];
    let mut annotations = HashMap::new();
    annotations.insert(ANNOTATION_CREATED.to_string(), created);
    write_image(layout, &config, layers, annotations)
}

/// Reads the tarball (gunzipping it if needed), checks it is a well-formed
/// tar within bounds, and stores it as a deterministic gzip layer.
fn layer_from_tarball(layout: &Layout, path: &Path) -> Result<Layer, OciError> {
    let mut file = BufReader::new(File::open(path).map_err(OciError::io("open", path))?);
    let mut magic = [0u8; 2];
    let is_gzip = {
        let buf = io::BufRead::fill_buf(&mut file).map_err(OciError::io("read", path))?;
        if buf.len() >= 2 {
            magic.copy_from_slice(&buf[..2]);
        }
        magic == [0x1f, 0x8b]
    };
    let input: Box<dyn Read> = if is_gzip {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };

    let writer = layout.blob_writer()?;
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(writer, Compression::new(6));
    let out = HashWriter::new(BufWriter::with_capacity(1 << 20, gz));
    let mut tee = Tee {
        inner: input.take(MAX_ROOTFS_BYTES + 1),
        out,
        error: None,
    };
    let too_large = || OciError::InputTooLarge {
        what: format!("uncompressed size of {}", path.display()),
        max: MAX_ROOTFS_BYTES,
        unit: "bytes",
    };
    {
        let mut archive = tar::Archive::new(&mut tee);
        let malformed = |source: io::Error| OciError::Io {
            action: "read tar",
            path: path.to_path_buf(),
            source,
        };
        let mut count = 0u64;
        for entry in archive.entries().map_err(malformed)? {
            let mut entry = entry.map_err(malformed)?;
            count += 1;
            if count > MAX_ROOTFS_ENTRIES {
                return Err(OciError::InputTooLarge {
                    what: format!("entry count of {}", path.display()),
                    max: MAX_ROOTFS_ENTRIES,
                    unit: "entries",
                });
            }
            io::copy(&mut entry, &mut io::sink()).map_err(malformed)?;
        }
    }
    // The tar reader stops at the end-of-archive marker: keep the padding too.
    io::copy(&mut tee, &mut io::sink()).map_err(OciError::io("read", path))?;
    if let Some(source) = tee.error.take() {
        return Err(OciError::Io {
            action: "write layer from",
            path: path.to_path_buf(),
            source,
        });
    }
    if tee.out.count > MAX_ROOTFS_BYTES {
        return Err(too_large());
    }
    let diff_id = tee.out.hasher.finish();
    let gz = tee.out.inner.into_inner().map_err(|e| OciError::Io {
        action: "compress",
        path: path.to_path_buf(),
        source: e.into_error(),
    })?;
    let blob = gz
        .finish()
        .map_err(OciError::io("compress", path))?
        .commit()?;
    Ok(Layer {
        digest: blob.digest,
        diff_id,
        size: blob.size,
    })
}

/// A reader that copies everything it reads into `out`.
struct Tee<R, W> {
    inner: R,
    out: W,
    error: Option<io::Error>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.out.write_all(&buf[..n]) {
            let kind = e.kind();
            self.error = Some(e);
            return Err(io::Error::new(kind, "writing the layer failed"));
        }
        Ok(n)
    }
}

/// Copies one image out of the OCI layout at `src_dir` into `dest`, verifying
/// the digest (and size) of every blob as it is copied. `reference` names the
/// image in the source's `index.json`; without it the source must hold exactly
/// one. If the entry is an image index, its linux/amd64 image is taken. The
/// reference is not set in `dest` (call [`Layout::set_ref`]).
pub fn import_layout(
    dest: &Layout,
    src_dir: &Path,
    reference: Option<&str>,
) -> Result<Image, OciError> {
    let src = Layout::open(src_dir)?;
    let entry = match reference {
        Some(name) => src.resolve(name)?,
        None => {
            let index = src.index()?;
            match index.manifests().as_slice() {
                [one] => one.clone(),
                all => {
                    return Err(OciError::AmbiguousImage {
                        layout: src_dir.to_path_buf(),
                        count: all.len(),
                    });
                }
            }
        }
    };
    let mut digest = Digest::from_oci(entry.digest())?;
    let media_type = entry.media_type().to_string();
    if INDEX_TYPES.contains(&media_type.as_str()) {
        let index = parse_index(&src.read_blob_as("index", &digest, MAX_JSON_BYTES)?)?;
        let chosen = index
            .manifests()
            .iter()
            .find(|d| {
                MANIFEST_TYPES.contains(&d.media_type().to_string().as_str())
                    && d.platform()
                        .as_ref()
                        .is_some_and(|p| *p.os() == Os::Linux && *p.architecture() == Arch::Amd64)
            })
            .ok_or(OciError::NoMatchingPlatform { index: digest })?;
        digest = Digest::from_oci(chosen.digest())?;
    } else if !MANIFEST_TYPES.contains(&media_type.as_str()) {
        return Err(OciError::UnsupportedMediaType {
            what: format!("index.json entry {digest} in {}", src_dir.display()),
            media_type,
            hint: "an image manifest or image index",
        });
    }
    let image = src.image(&digest)?;
    let mut blobs = vec![(
        "config",
        image.config_digest,
        image.manifest.config().size(),
    )];
    blobs.extend(image.layers.iter().map(|l| ("layer", l.digest, l.size)));
    for (what, digest, size) in blobs {
        // Bounded by the declared size: a blob that is more is refused below.
        let reader = src.open_blob(&digest)?.take(size.saturating_add(1));
        let blob = dest.put_blob_expecting(reader, what, &digest)?;
        if blob.size != size {
            return Err(OciError::SizeMismatch {
                what,
                digest,
                expected: size,
                actual: blob.size,
            });
        }
    }
    // The manifest last, so a layout never names an image with missing blobs.
    let manifest = src.open_blob(&digest)?.take(MAX_JSON_BYTES);
    dest.put_blob_expecting(manifest, "manifest", &digest)?;
    dest.image(&digest)
}
