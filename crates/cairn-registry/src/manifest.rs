//! Manifests (OCI image-spec v1.1 manifest and index, and their Docker v2
//! equivalents): push with the returned digest checked, fetch bounded to
//! [`MAX_MANIFEST_BYTES`] with the digest verified, and pick linux/amd64 from an index.

use std::collections::BTreeMap;

use ureq::http;

use crate::client::{Body, Call, header, read_bounded};
use crate::reference::Reference;
use crate::{Digest, Error, Registry, Result};

/// Manifests are read up to 4 MiB (the limit registries apply on push).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// Media types cairn speaks.
pub mod media_types {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// OCI gzip'd layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// The empty descriptor's media type (`{}`), OCI 1.1.
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    /// Docker image manifest v2 schema 2.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// The Sigstore bundle v0.3: cairn's evidence.
    pub const SIGSTORE_BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
    /// Every manifest type cairn can read.
    pub const ALL_MANIFESTS: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];
}

/// An OCI content descriptor.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the content.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The artifact type (for manifests of artifacts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The platform (in an index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Embedded content, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl Descriptor {
    /// A plain descriptor.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        Self {
            media_type: media_type.into(),
            digest,
            size,
            artifact_type: None,
            annotations: BTreeMap::new(),
            platform: None,
            data: None,
        }
    }
}

/// A platform in an index.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Platform {
    /// e.g. `amd64`.
    pub architecture: String,
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image manifest (OCI or Docker v2 schema 2, same shape).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// OCI 1.1 artifact type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers, in order.
    pub layers: Vec<Descriptor>,
    /// OCI 1.1 subject (what this artifact is about).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index (or Docker manifest list).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always 2.
    pub schema_version: u32,
    /// The index's own media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests it lists.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// A manifest as fetched: its media type, exact bytes and verified digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedManifest {
    /// From `Content-Type`, or the document's `mediaType`.
    pub media_type: String,
    /// The exact bytes (the digest is over these).
    pub bytes: Vec<u8>,
    /// sha256 of `bytes`, checked against the reference or `Docker-Content-Digest`.
    pub digest: Digest,
}

impl FetchedManifest {
    /// Whether this is an index or manifest list.
    pub fn is_index(&self) -> bool {
        self.media_type == media_types::OCI_INDEX || self.media_type == media_types::DOCKER_LIST
    }
}

/// What a manifest PUT returned.
pub(crate) struct PushedManifest {
    pub digest: Digest,
    /// The registry processed the `subject` field (OCI 1.1 `OCI-Subject` header).
    pub subject_supported: bool,
}

impl Registry {
    /// Pushes a manifest under a tag or its digest and returns its digest,
    /// checked against the registry's `Docker-Content-Digest`.
    pub fn push_manifest(
        &self,
        repository: &str,
        tag_or_digest: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        self.push_manifest_inner(repository, tag_or_digest, media_type, bytes)
            .map(|p| p.digest)
    }

    pub(crate) fn push_manifest_inner(
        &self,
        repository: &str,
        tag_or_digest: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<PushedManifest> {
        let context = self.repo_context(repository, "push manifest")?;
        let reference = Reference::parse(tag_or_digest)?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(Error::TooLarge {
                context,
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let digest = cairn_evidence::sha256(bytes);
        if let Reference::Digest(d) = &reference
            && *d != digest
        {
            return Err(Error::DigestMismatch {
                context,
                expected: d.to_string(),
                actual: digest.to_string(),
            });
        }
        let resp = self.send(Call {
            method: http::Method::PUT,
            url: format!("/v2/{repository}/manifests/{}", reference.text()),
            context: context.clone(),
            scopes: vec![push_scope(repository)],
            headers: vec![("Content-Type", media_type.to_owned())],
            body: Body::Bytes(bytes),
        })?;
        let resp = self.expect(
            resp,
            &context,
            &[201],
            "the repository or a blob the manifest refers to",
            "the registry did not accept the manifest; push its blobs first and check its media type",
        )?;
        if let Some(returned) = header(&resp, "docker-content-digest")
            && *returned != digest.to_string()
        {
            return Err(Error::DigestMismatch {
                context,
                expected: digest.to_string(),
                actual: returned.chars().take(100).collect(),
            });
        }
        let subject_supported = resp.headers().contains_key("oci-subject");
        Ok(PushedManifest {
            digest,
            subject_supported,
        })
    }

    /// Fetches a manifest by tag or digest, accepting `accept` media types.
    /// Bounded to 4 MiB; the digest is verified against the reference when it
    /// is one, and against `Docker-Content-Digest` when the registry sends it.
    pub fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
        accept: &[&str],
    ) -> Result<FetchedManifest> {
        let context = self.repo_context(repository, "get manifest")?;
        let reference = Reference::parse(reference)?;
        let accept = if accept.is_empty() {
            media_types::ALL_MANIFESTS.join(", ")
        } else {
            accept.join(", ")
        };
        let resp = self.send(Call {
            method: http::Method::GET,
            url: format!("/v2/{repository}/manifests/{}", reference.text()),
            context: context.clone(),
            scopes: vec![pull_scope(repository)],
            headers: vec![("Accept", accept)],
            body: Body::Empty,
        })?;
        let what = format!("manifest `{}`", reference.text());
        let resp = self.expect(resp, &context, &[200], &what, "retry later")?;
        let content_type = header(&resp, "content-type")
            .map(|v| v.split(';').next().unwrap_or("").trim().to_owned())
            .filter(|v| !v.is_empty() && v != "application/json" && v != "text/plain");
        let returned = header(&resp, "docker-content-digest").map(str::to_owned);
        let bytes = read_bounded(resp, MAX_MANIFEST_BYTES, &context)?;
        let digest = cairn_evidence::sha256(&bytes);
        let expected = match &reference {
            Reference::Digest(d) => Some(d.to_string()),
            Reference::Tag(_) => {
                returned.filter(|r| r.starts_with(cairn_model::digest::SHA256_PREFIX))
            }
        };
        if let Some(expected) = expected
            && *expected != digest.to_string()
        {
            return Err(Error::DigestMismatch {
                context,
                expected,
                actual: digest.to_string(),
            });
        }
        let media_type = match content_type {
            Some(t) => t,
            None => {
                #[derive(serde::Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Probe {
                    media_type: Option<String>,
                }
                serde_json::from_slice::<Probe>(&bytes)
                    .map_err(|source| Error::Json {
                        context: context.clone(),
                        what: "manifest",
                        source,
                    })?
                    .media_type
                    .ok_or_else(|| Error::InvalidResponse {
                        context: context.clone(),
                        reason: "the manifest has neither a Content-Type nor a mediaType".into(),
                    })?
            }
        };
        Ok(FetchedManifest {
            media_type,
            bytes,
            digest,
        })
    }

    /// Fetches the image manifest for `reference`; an index is resolved to
    /// its linux/amd64 entry (fetched by digest, so verified).
    pub fn get_image_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<(FetchedManifest, ImageManifest)> {
        let mut fetched = self.get_manifest(repository, reference, media_types::ALL_MANIFESTS)?;
        if fetched.is_index() {
            let context = self.context(repository, "pick linux/amd64 from an index");
            let index: ImageIndex = parse_json(&fetched.bytes, &context, "image index")?;
            let entry = index
                .manifests
                .iter()
                .find(|d| {
                    d.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
                })
                .ok_or(Error::NoPlatform { context })?;
            fetched = self.get_manifest(
                repository,
                &entry.digest.to_string(),
                &[media_types::OCI_MANIFEST, media_types::DOCKER_MANIFEST],
            )?;
            if fetched.is_index() {
                return Err(Error::InvalidResponse {
                    context: self.context(repository, "pick linux/amd64 from an index"),
                    reason: "an index entry is itself an index".into(),
                });
            }
        }
        let context = self.context(repository, "get image manifest");
        let manifest: ImageManifest = parse_json(&fetched.bytes, &context, "image manifest")?;
        Ok((fetched, manifest))
    }
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    context: &crate::error::Context,
    what: &'static str,
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::Json {
        context: context.clone(),
        what,
        source,
    })
}

pub(crate) fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

pub(crate) fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}
