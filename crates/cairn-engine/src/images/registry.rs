//! Moving images between the data directory's layout and registries, with their
//! evidence: `push` sends an image and attaches every signed bundle about its
//! digest (OCI 1.1 referrers, or the `sha256-<hex>.att` tag where the registry
//! has no referrers API); `pull` brings an image (pinned by digest) into the
//! layout. Registries must be on the organisation's allow-list; Docker Hub never.

use std::io::{Read, Write};

use cairn_model::config::OrgConfig;
use cairn_model::image_ref::ImageRef;
use cairn_oci::{Image, Layout};
use cairn_registry::{BlobStore, BlobStoreError, Credentials, Registry, RegistryOptions, Scheme};
use cairn_store::Store;

use super::Images;
use crate::EngineError;

/// The media type and artifact type of cairn's evidence in a registry.
pub const SIGSTORE_BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// The layout as the registry client's blob store.
struct LayoutBlobs<'a>(&'a Layout);

impl BlobStore for LayoutBlobs<'_> {
    fn has_blob(&self, digest: &cairn_registry::Digest) -> Result<bool, BlobStoreError> {
        Ok(self.0.has_blob(digest))
    }

    fn open_blob(
        &self,
        digest: &cairn_registry::Digest,
    ) -> Result<(Box<dyn Read + '_>, u64), BlobStoreError> {
        let file = self.0.open_blob(digest)?;
        let size = file.metadata()?.len();
        Ok((Box::new(file), size))
    }

    fn put_blob(
        &self,
        digest: &cairn_registry::Digest,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<(), BlobStoreError> {
        let expected = *digest;
        let blob = self
            .0
            .put_blob_from_reader(reader.take(size.saturating_add(1)))?;
        if blob.digest != expected || blob.size != size {
            return Err(format!(
                "the blob read is {} ({} bytes), not the expected {expected} ({size} bytes)",
                blob.digest, blob.size
            )
            .into());
        }
        Ok(())
    }
}

/// Connection settings for a registry host.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub credentials: Credentials,
    /// Plain HTTP (allowed only to loopback hosts).
    pub plain_http: bool,
    /// Where to find the credentials for each host (container auth files,
    /// credential helpers, then the `CAIRN_REGISTRY_*` variables); when set,
    /// `credentials` is not used.
    pub sources: Option<cairn_registry::AuthSources>,
}

fn client(host: &str, connection: &Connection) -> Result<Registry, EngineError> {
    let credentials = match &connection.sources {
        Some(sources) => sources.credentials_for(host)?,
        None => connection.credentials.clone(),
    };
    let mut options = RegistryOptions::new(host, credentials);
    if connection.plain_http {
        options.scheme = Scheme::HttpLoopback;
    }
    Ok(Registry::with_options(options)?)
}

fn checked(
    reference: &str,
    org: &OrgConfig,
    pinned: bool,
) -> Result<(ImageRef, String), EngineError> {
    let r = ImageRef::parse(reference)?;
    r.check_allowed(&org.registries, pinned)?;
    let host = r.registry.clone().unwrap_or_default();
    Ok((r, host))
}

/// What `push` did.
#[derive(Debug)]
pub struct Pushed {
    pub reference: String,
    pub digest: String,
    /// Evidence bundles attached.
    pub attached: usize,
}

/// Pushes `image` to `target` (`host/repository:tag`) and attaches every evidence
/// bundle the store has about its digest.
pub fn push(
    images: &Images,
    store: &dyn Store,
    org: &OrgConfig,
    image: &Image,
    target: &str,
    connection: &Connection,
) -> Result<Pushed, EngineError> {
    let (r, host) = checked(target, org, false)?;
    let registry = client(&host, connection)?;
    let tag = r.tag.clone().unwrap_or_else(|| "latest".to_owned());
    let manifest = image.manifest_digest;
    let pushed = registry.push_image(
        &LayoutBlobs(images.layout()),
        &manifest,
        &r.repository,
        &tag,
    )?;
    let subject = cairn_registry::Descriptor {
        media_type: image
            .manifest
            .media_type()
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".to_owned()),
        digest: pushed,
        size: image.manifest_size,
        artifact_type: None,
        annotations: Default::default(),
        platform: None,
        data: None,
    };
    let evidence = store.evidence_for_subject(&image.manifest_digest.to_string())?;
    for e in &evidence {
        registry.attach(
            &r.repository,
            &subject,
            SIGSTORE_BUNDLE_MEDIA_TYPE,
            &e.bundle,
            SIGSTORE_BUNDLE_MEDIA_TYPE,
        )?;
    }
    Ok(Pushed {
        reference: format!("{host}/{}:{tag}@{pushed}", r.repository),
        digest: pushed.to_string(),
        attached: evidence.len(),
    })
}

/// Stores everything `reader` yields as a blob in the layout and, in the same
/// pass, uploads it to `target`'s repository (`host/repository[:tag]`, on the
/// allow-list): each byte is read once, hashed once, written to the layout's
/// temporary file and handed to the registry's upload thread. The local copy is
/// fsync'd and in place before the registry is told the digest, and the
/// registry verifies the bytes against it; a later [`push`] of an image holding
/// the blob finds it there and sends only what is missing.
pub fn store_and_upload(
    images: &Images,
    org: &OrgConfig,
    target: &str,
    connection: &Connection,
    mut reader: impl Read,
) -> Result<cairn_oci::Blob, EngineError> {
    let (r, host) = checked(target, org, false)?;
    let registry = client(&host, connection)?;
    registry.push_blob_streaming(&r.repository, |sink| {
        let mut writer = images.layout().blob_writer()?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(EngineError::io("read the blob to store and upload", "")(e)),
            };
            writer
                .write_all(&buf[..n])
                .map_err(EngineError::io("write a blob into", images.layout().root()))?;
            sink.write_all(&buf[..n])
                .map_err(EngineError::io("upload a blob to", target))?;
        }
        let blob = writer.commit()?;
        Ok((blob, blob.digest, blob.size))
    })
}

/// Pulls `reference` (pinned by digest) into the layout; returns its digest.
pub fn pull(
    images: &Images,
    org: &OrgConfig,
    reference: &ImageRef,
    connection: &Connection,
) -> Result<String, EngineError> {
    reference.check_allowed(&org.registries, true)?;
    let host = reference.registry.clone().unwrap_or_default();
    let registry = client(&host, connection)?;
    let digest = registry.pull_image(
        &reference.repository,
        &reference.reference(),
        &LayoutBlobs(images.layout()),
    )?;
    Ok(digest.to_string())
}

/// The evidence bundles attached to `digest` in `reference`'s repository.
pub fn attached(
    org: &OrgConfig,
    reference: &str,
    digest: &str,
    connection: &Connection,
) -> Result<Vec<Vec<u8>>, EngineError> {
    let (r, host) = checked(reference, org, false)?;
    let registry = client(&host, connection)?;
    let subject = cairn_registry::Digest::parse(digest).map_err(cairn_registry::Error::from)?;
    Ok(registry
        .attached(&r.repository, &subject)?
        .into_iter()
        .filter(|a| a.media_type == SIGSTORE_BUNDLE_MEDIA_TYPE)
        .map(|a| a.payload)
        .collect())
}
