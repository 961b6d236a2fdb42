//! Whole images between a local [`BlobStore`] (an OCI layout, implemented by
//! the integrator for `cairn_oci::Layout`) and a repository: config, layers
//! and manifest, existing blobs skipped, everything verified on the way in.

use std::io::Read;

use crate::manifest::{ImageIndex, ImageManifest, MAX_MANIFEST_BYTES, media_types, parse_json};
use crate::{Descriptor, Digest, Error, Registry, Result};

/// Errors of a [`BlobStore`], whatever its implementation.
pub type BlobStoreError = Box<dyn std::error::Error + Send + Sync>;

/// Content-addressed local storage of blobs (manifests included).
pub trait BlobStore {
    /// Whether the store holds the blob.
    fn has_blob(&self, digest: &Digest) -> Result<bool, BlobStoreError>;
    /// A reader over a stored blob and its size.
    fn open_blob(&self, digest: &Digest) -> Result<(Box<dyn Read + '_>, u64), BlobStoreError>;
    /// Stores a blob from `reader`. The implementation must verify the size
    /// and digest, and keep nothing when the reader fails or they differ.
    fn put_blob(
        &self,
        digest: &Digest,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<(), BlobStoreError>;
}

impl Registry {
    /// Pushes the image (or index) whose manifest is `manifest_digest` in
    /// `store` to `repository:tag`: blobs first (skipping those the registry
    /// has), then the manifest; returns the manifest digest.
    pub fn push_image(
        &self,
        store: &dyn BlobStore,
        manifest_digest: &Digest,
        repository: &str,
        tag: &str,
    ) -> Result<Digest> {
        let context = self.repo_context(repository, "push image")?;
        let bytes = read_manifest(store, manifest_digest, &context)?;
        let media_type = manifest_media_type(&bytes, &context)?;
        if media_type == media_types::OCI_INDEX || media_type == media_types::DOCKER_LIST {
            let index: ImageIndex = parse_json(&bytes, &context, "image index")?;
            for child in &index.manifests {
                self.push_image(store, &child.digest, repository, &child.digest.to_string())?;
            }
        } else {
            let manifest: ImageManifest = parse_json(&bytes, &context, "image manifest")?;
            for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
                self.push_from_store(store, repository, blob)?;
            }
        }
        let pushed = self.push_manifest(repository, tag, &media_type, &bytes)?;
        if pushed != *manifest_digest {
            return Err(Error::DigestMismatch {
                context,
                expected: manifest_digest.to_string(),
                actual: pushed.to_string(),
            });
        }
        Ok(pushed)
    }

    fn push_from_store(
        &self,
        store: &dyn BlobStore,
        repository: &str,
        blob: &Descriptor,
    ) -> Result<()> {
        if self.blob_exists(repository, &blob.digest)? {
            return Ok(());
        }
        let context = self.context(repository, "read a blob to push from the local store");
        let store_err = |source| Error::BlobStore {
            context: context.clone(),
            digest: blob.digest.to_string(),
            source,
        };
        let (mut reader, size) = store.open_blob(&blob.digest).map_err(store_err)?;
        if size != blob.size {
            return Err(Error::InvalidResponse {
                context,
                reason: format!(
                    "the local blob {} is {size} bytes, the manifest says {}",
                    blob.digest, blob.size
                ),
            });
        }
        self.push_blob(repository, &blob.digest, size, &mut reader)?;
        Ok(())
    }

    /// Pulls `repository:reference` (an index resolves to linux/amd64) into
    /// `store`: config, layers, then the manifest, each verified; returns the
    /// image manifest's digest.
    pub fn pull_image(
        &self,
        repository: &str,
        reference: &str,
        store: &dyn BlobStore,
    ) -> Result<Digest> {
        let (fetched, manifest) = self.get_image_manifest(repository, reference)?;
        let context = self.context(repository, "store a pulled blob");
        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            let store_err = |source| Error::BlobStore {
                context: context.clone(),
                digest: blob.digest.to_string(),
                source,
            };
            if store.has_blob(&blob.digest).map_err(store_err)? {
                continue;
            }
            let mut reader = self.open_blob(repository, &blob.digest, blob.size)?;
            if let Err(source) = store.put_blob(&blob.digest, blob.size, &mut reader) {
                // The registry's failure (a digest mismatch) explains the store's.
                return Err(reader.take_failure().unwrap_or(store_err(source)));
            }
        }
        let store_err = |source| Error::BlobStore {
            context: context.clone(),
            digest: fetched.digest.to_string(),
            source,
        };
        store
            .put_blob(
                &fetched.digest,
                fetched.bytes.len() as u64,
                &mut fetched.bytes.as_slice(),
            )
            .map_err(store_err)?;
        Ok(fetched.digest)
    }
}

fn read_manifest(
    store: &dyn BlobStore,
    digest: &Digest,
    context: &crate::error::Context,
) -> Result<Vec<u8>> {
    let store_err = |source| Error::BlobStore {
        context: context.clone(),
        digest: digest.to_string(),
        source,
    };
    let (reader, size) = store.open_blob(digest).map_err(store_err)?;
    if size > MAX_MANIFEST_BYTES {
        return Err(Error::TooLarge {
            context: context.clone(),
            limit: MAX_MANIFEST_BYTES,
        });
    }
    let mut bytes = Vec::new();
    reader
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Io {
            context: context.clone(),
            source,
        })?;
    let actual = cairn_evidence::sha256(&bytes);
    if actual != *digest {
        return Err(Error::DigestMismatch {
            context: context.clone(),
            expected: digest.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(bytes)
}

fn manifest_media_type(bytes: &[u8], context: &crate::error::Context) -> Result<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe = parse_json(bytes, context, "manifest")?;
    Ok(match probe.media_type {
        Some(t) => t,
        // OCI allows mediaType to be absent; tell manifest and index apart by shape.
        None if probe.manifests.is_some() => media_types::OCI_INDEX.to_owned(),
        None => media_types::OCI_MANIFEST.to_owned(),
    })
}
