//! Client for the OCI distribution API (distribution-spec v1.1): one [`Registry`]
//! per host, with anonymous, basic and Bearer-token authentication; blobs pushed
//! monolithically, in chunks or by cross-repository mount and pulled with their
//! digest verified while streaming; manifests bounded and verified; whole images
//! moved to and from a [`BlobStore`]; and evidence attached to images as OCI 1.1
//! referrers, with the cosign `sha256-<hex>.att` tag as the fallback for
//! registries that have no referrers API.

mod attach;
mod auth;
pub mod authfile;
mod blobs;
mod client;
mod digest;
mod error;
pub mod http;
mod image;
mod manifest;
mod reference;

pub use attach::{
    ATT_LAYER_ARTIFACT_TYPE, ATT_LAYER_REFERRER, Attached, MAX_PAYLOAD_BYTES, att_tag,
};
pub use auth::{Credentials, Secret};
pub use authfile::{AuthFileError, AuthSources};
pub use blobs::{BlobReader, PushedBlob};
pub use client::{Registry, RegistryOptions, Scheme};
pub use digest::{Digest, Sha256};
pub use error::{Context, Error, RegistryErrors};
pub use image::{BlobStore, BlobStoreError};
pub use manifest::{
    Descriptor, FetchedManifest, ImageIndex, ImageManifest, MAX_MANIFEST_BYTES, Platform,
    media_types,
};

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
