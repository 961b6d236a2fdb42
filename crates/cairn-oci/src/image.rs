//! Images: reading and verifying a manifest and its config from a layout,
//! assembling an app image onto a base reproducibly, and rebasing an app
//! image onto a new base without rebuilding it (image-spec 1.1 `manifest.md`,
//! `config.md`, `annotations.md`).

use std::collections::{BTreeMap, HashMap};

use oci_spec::image::{
    ANNOTATION_BASE_IMAGE_DIGEST, ANNOTATION_BASE_IMAGE_NAME, ANNOTATION_CREATED,
    ANNOTATION_REVISION, History, HistoryBuilder, ImageManifestBuilder,
};

use crate::json::{CONFIG_TYPES, canonical, parse_config, parse_manifest};
use crate::layout::MAX_JSON_BYTES;
use crate::{
    Descriptor, Digest, ImageConfiguration, ImageManifest, Layer, Layout, MediaType, OciError,
};

/// Most layers an image may have.
pub(crate) const MAX_LAYERS: usize = 512;

/// Layer media types cairn reads: OCI and Docker schema2, uncompressed or gzip.
const LAYER_TYPES: [(&str, bool); 4] = [
    ("application/vnd.oci.image.layer.v1.tar", false),
    ("application/vnd.oci.image.layer.v1.tar+gzip", true),
    ("application/vnd.docker.image.rootfs.diff.tar", false),
    ("application/vnd.docker.image.rootfs.diff.tar.gzip", true),
];

/// An image read from a layout, its manifest and config verified against
/// their digests.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// The digest of the manifest: the image's identity.
    pub manifest_digest: Digest,
    /// The manifest's size in bytes.
    pub manifest_size: u64,
    /// The manifest.
    pub manifest: ImageManifest,
    /// The digest of the config blob.
    pub config_digest: Digest,
    /// The config.
    pub config: ImageConfiguration,
    /// The layers, bottom first: blob digest and size from the manifest,
    /// diff_id from the config.
    pub layers: Vec<Layer>,
}

impl Image {
    /// A descriptor of the manifest, for `index.json` or a registry.
    pub fn descriptor(&self) -> Result<Descriptor, OciError> {
        let media_type = self
            .manifest
            .media_type()
            .clone()
            .unwrap_or(MediaType::ImageManifest);
        Ok(Descriptor::new(
            media_type,
            self.manifest_size,
            crate::digest::to_oci(self.manifest_digest)?,
        ))
    }

    /// Whether the layer at `index` is gzip-compressed (false: plain tar).
    pub(crate) fn layer_is_gzip(&self, index: usize) -> Result<bool, OciError> {
        let descriptor = self
            .manifest
            .layers()
            .get(index)
            .ok_or_else(|| OciError::Invalid {
                what: format!("manifest {}", self.manifest_digest),
                reason: "layer index out of range",
            })?;
        layer_compression(self.manifest_digest, descriptor)
    }
}

fn layer_compression(manifest: Digest, descriptor: &Descriptor) -> Result<bool, OciError> {
    let media_type = descriptor.media_type().to_string();
    LAYER_TYPES
        .iter()
        .find(|(t, _)| *t == media_type)
        .map(|(_, gzip)| *gzip)
        .ok_or_else(|| OciError::UnsupportedMediaType {
            what: format!("layer {} of manifest {manifest}", descriptor.digest()),
            media_type,
            hint: "OCI or Docker tar / tar+gzip layers; recompress zstd layers with gzip",
        })
}

impl Layout {
    /// Reads the image whose manifest has this digest: manifest and config
    /// each at most 4 MiB and verified against their digests, sizes as
    /// declared, one diff_id per layer, supported media types (OCI, and
    /// Docker schema2 for reading).
    pub fn image(&self, manifest_digest: &Digest) -> Result<Image, OciError> {
        let bytes = self.read_blob_as("manifest", manifest_digest, MAX_JSON_BYTES)?;
        let manifest = parse_manifest(&bytes)?;
        let what = || format!("manifest {manifest_digest}");
        let config_desc = manifest.config();
        let config_type = config_desc.media_type().to_string();
        if !CONFIG_TYPES.contains(&config_type.as_str()) {
            return Err(OciError::UnsupportedMediaType {
                what: format!("config of {}", what()),
                media_type: config_type,
                hint: "an OCI or Docker image config",
            });
        }
        let config_digest = crate::digest::from_oci(config_desc.digest())?;
        let config_bytes = self.read_blob_as("config", &config_digest, MAX_JSON_BYTES)?;
        if config_bytes.len() as u64 != config_desc.size() {
            return Err(OciError::SizeMismatch {
                what: "config",
                digest: config_digest,
                expected: config_desc.size(),
                actual: config_bytes.len() as u64,
            });
        }
        let config = parse_config(&config_bytes)?;
        if manifest.layers().len() > MAX_LAYERS {
            return Err(OciError::InputTooLarge {
                what: format!("layer count of {}", what()),
                max: MAX_LAYERS as u64,
                unit: "layers",
            });
        }
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(OciError::Invalid {
                what: what(),
                reason: "its config lists a different number of diff_ids than it has layers",
            });
        }
        let mut layers = Vec::with_capacity(diff_ids.len());
        for (descriptor, diff_id) in manifest.layers().iter().zip(diff_ids) {
            layer_compression(*manifest_digest, descriptor)?;
            layers.push(Layer {
                digest: crate::digest::from_oci(descriptor.digest())?,
                diff_id: Digest::parse(diff_id)?,
                size: descriptor.size(),
            });
        }
        Ok(Image {
            manifest_digest: *manifest_digest,
            manifest_size: bytes.len() as u64,
            manifest,
            config_digest,
            config,
            layers,
        })
    }
}

/// What an app image says on top of its base.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSpec {
    /// The entrypoint; when set, the base's cmd is dropped unless `cmd` is set too
    /// (as a Dockerfile `ENTRYPOINT` does).
    pub entrypoint: Option<Vec<String>>,
    /// The default arguments; `None` keeps the base's (unless `entrypoint` is set).
    pub cmd: Option<Vec<String>>,
    /// `NAME=value` entries; each replaces the base's entry of the same name.
    pub env: Vec<String>,
    /// The user to run as; `None` keeps the base's.
    pub user: Option<String>,
    /// The working directory; `None` keeps the base's.
    pub working_dir: Option<String>,
    /// A TCP port to expose (added to the base's).
    pub exposed_port: Option<u16>,
    /// Labels, added to (and overriding) the base's.
    pub labels: BTreeMap<String, String>,
    /// SOURCE_DATE_EPOCH: the `created` time of the config, history and manifest.
    pub created_epoch: u64,
    /// The source revision (commit), as `org.opencontainers.image.revision`.
    pub revision: Option<String>,
    /// The base image's name, as `org.opencontainers.image.base.name`.
    pub base_name: String,
}

/// Assembles an image from `base` plus `layers` (already stored in `layout`,
/// e.g. by [`crate::layer_from_dir`]) and `spec`, stores its config and
/// manifest in `layout` and returns it. The base's blobs must be in `layout`.
/// The result depends only on the inputs: the same inputs give the same
/// manifest digest in any layout.
pub fn assemble(
    layout: &Layout,
    base: &Image,
    layers: &[Layer],
    spec: &ImageSpec,
) -> Result<Image, OciError> {
    if base.layers.len() + layers.len() > MAX_LAYERS {
        return Err(OciError::InputTooLarge {
            what: format!("layer count of an image on {}", base.manifest_digest),
            max: MAX_LAYERS as u64,
            unit: "layers",
        });
    }
    for layer in base.layers.iter().chain(layers) {
        if !layout.has_blob(&layer.digest) {
            return Err(OciError::MissingBlob {
                digest: layer.digest,
                layout: layout.root().to_path_buf(),
            });
        }
    }
    let created =
        cairn_model::time::rfc3339_utc_secs(i64::try_from(spec.created_epoch).unwrap_or(i64::MAX));
    let mut config = base.config.clone();
    let mut diff_ids = config.rootfs().diff_ids().clone();
    let mut history = config.history().clone().unwrap_or_default();
    for layer in layers {
        diff_ids.push(layer.diff_id.to_string());
        history.push(history_entry(
            &created,
            &format!("cairn assemble: layer {}", layer.digest),
        )?);
    }
    let mut rootfs = config.rootfs().clone();
    rootfs.set_diff_ids(diff_ids);
    config.set_rootfs(rootfs);
    config.set_history(Some(history));
    config.set_created(Some(created.clone()));
    config.set_config(Some(runtime_config(
        config.config().clone().unwrap_or_default(),
        spec,
    )));

    let mut descriptors = normalised_layers(base)?;
    for layer in layers {
        descriptors.push(Descriptor::new(
            MediaType::ImageLayerGzip,
            layer.size,
            crate::digest::to_oci(layer.digest)?,
        ));
    }
    let mut annotations = HashMap::new();
    annotations.insert(
        ANNOTATION_BASE_IMAGE_DIGEST.to_string(),
        base.manifest_digest.to_string(),
    );
    annotations.insert(
        ANNOTATION_BASE_IMAGE_NAME.to_string(),
        spec.base_name.clone(),
    );
    annotations.insert(ANNOTATION_CREATED.to_string(), created);
    if let Some(revision) = &spec.revision {
        annotations.insert(ANNOTATION_REVISION.to_string(), revision.clone());
    }
    write_image(layout, &config, descriptors, annotations)
}

/// Moves `image` from `old_base` onto `new_base` without rebuilding it: the
/// image's first layers must be exactly `old_base`'s (digest and diff_id) and
/// its history must start with the base's; they are replaced by `new_base`'s,
/// the app layers and the rest of the config are kept, and the base
/// annotations name the new base. `new_base`'s blobs must be in `layout`.
pub fn rebase(
    layout: &Layout,
    image: &Image,
    old_base: &Image,
    new_base: &Image,
    new_base_name: &str,
) -> Result<Image, OciError> {
    let not_built = |detail| OciError::NotBuiltOnBase {
        image: image.manifest_digest,
        base: old_base.manifest_digest,
        detail,
    };
    let n = old_base.layers.len();
    if image.layers.len() < n {
        return Err(not_built("it has fewer layers than the base"));
    }
    if image.layers[..n] != old_base.layers[..] {
        return Err(not_built("its first layers differ from the base's layers"));
    }
    let old_history = old_base.config.history().clone().unwrap_or_default();
    let history = image.config.history().clone().unwrap_or_default();
    if history.len() < old_history.len() || history[..old_history.len()] != old_history[..] {
        return Err(not_built(
            "its history does not start with the base's history",
        ));
    }
    if new_base.layers.len() + image.layers.len() - n > MAX_LAYERS {
        return Err(OciError::InputTooLarge {
            what: format!("layer count of {} rebased", image.manifest_digest),
            max: MAX_LAYERS as u64,
            unit: "layers",
        });
    }
    for layer in &new_base.layers {
        if !layout.has_blob(&layer.digest) {
            return Err(OciError::MissingBlob {
                digest: layer.digest,
                layout: layout.root().to_path_buf(),
            });
        }
    }

    let mut config = image.config.clone();
    let mut new_history = new_base.config.history().clone().unwrap_or_default();
    new_history.extend_from_slice(&history[old_history.len()..]);
    let mut diff_ids: Vec<String> = new_base
        .layers
        .iter()
        .map(|l| l.diff_id.to_string())
        .collect();
    diff_ids.extend(image.layers[n..].iter().map(|l| l.diff_id.to_string()));
    let mut rootfs = config.rootfs().clone();
    rootfs.set_diff_ids(diff_ids);
    config.set_rootfs(rootfs);
    config.set_history(Some(new_history));

    let mut descriptors = normalised_layers(new_base)?;
    descriptors.extend(normalised_layers(image)?.into_iter().skip(n));
    let mut annotations = image.manifest.annotations().clone().unwrap_or_default();
    annotations.insert(
        ANNOTATION_BASE_IMAGE_DIGEST.to_string(),
        new_base.manifest_digest.to_string(),
    );
    annotations.insert(
        ANNOTATION_BASE_IMAGE_NAME.to_string(),
        new_base_name.to_string(),
    );
    write_image(layout, &config, descriptors, annotations)
}

pub(crate) fn history_entry(created: &str, created_by: &str) -> Result<History, OciError> {
    HistoryBuilder::default()
        .created(created.to_string())
        .created_by(created_by.to_string())
        .build()
        .map_err(|source| OciError::Spec {
            what: "history entry",
            source,
        })
}

/// The image's layer descriptors with Docker media types mapped to their OCI
/// equivalents (same bytes), so the written manifest is a pure OCI manifest.
fn normalised_layers(image: &Image) -> Result<Vec<Descriptor>, OciError> {
    let mut out = Vec::with_capacity(image.layers.len());
    for (i, descriptor) in image.manifest.layers().iter().enumerate() {
        let media_type = if image.layer_is_gzip(i)? {
            MediaType::ImageLayerGzip
        } else {
            MediaType::ImageLayer
        };
        let mut descriptor = descriptor.clone();
        descriptor.set_media_type(media_type);
        out.push(descriptor);
    }
    Ok(out)
}

fn runtime_config(mut rc: oci_spec::image::Config, spec: &ImageSpec) -> oci_spec::image::Config {
    if let Some(entrypoint) = &spec.entrypoint {
        rc.set_entrypoint(Some(entrypoint.clone()));
        rc.set_cmd(spec.cmd.clone());
    } else if let Some(cmd) = &spec.cmd {
        rc.set_cmd(Some(cmd.clone()));
    }
    if !spec.env.is_empty() {
        let mut env = rc.env().clone().unwrap_or_default();
        for entry in &spec.env {
            let name = entry.split('=').next().unwrap_or(entry);
            env.retain(|e| e.split('=').next() != Some(name));
            env.push(entry.clone());
        }
        rc.set_env(Some(env));
    }
    if let Some(user) = &spec.user {
        rc.set_user(Some(user.clone()));
    }
    if let Some(dir) = &spec.working_dir {
        rc.set_working_dir(Some(dir.clone()));
    }
    if let Some(port) = spec.exposed_port {
        let mut ports = rc.exposed_ports().clone().unwrap_or_default();
        let port = format!("{port}/tcp");
        if !ports.contains(&port) {
            ports.push(port);
        }
        ports.sort();
        rc.set_exposed_ports(Some(ports));
    }
    if !spec.labels.is_empty() {
        let mut labels = rc.labels().clone().unwrap_or_default();
        labels.extend(spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        rc.set_labels(Some(labels));
    }
    rc
}

/// Stores `config` and a manifest over `layers` with `annotations`, both as
/// deterministic JSON, and reads the result back (verified).
pub(crate) fn write_image(
    layout: &Layout,
    config: &ImageConfiguration,
    layers: Vec<Descriptor>,
    annotations: HashMap<String, String>,
) -> Result<Image, OciError> {
    let config_blob = layout.put_blob(&canonical("image config", config)?)?;
    let mut builder = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config_blob.descriptor(MediaType::ImageConfig)?)
        .layers(layers);
    if !annotations.is_empty() {
        builder = builder.annotations(annotations);
    }
    let manifest = builder.build().map_err(|source| OciError::Spec {
        what: "image manifest",
        source,
    })?;
    let manifest_blob = layout.put_blob(&canonical("image manifest", &manifest)?)?;
    layout.image(&manifest_blob.digest)
}
