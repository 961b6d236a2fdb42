//! Images on disk: OCI image layouts (image-spec 1.1 `image-layout.md`),
//! reproducible layers, image assembly onto a base, rebase, imports from other
//! layouts and root filesystems, and a safe unpacker for untrusted layers.
//!
//! Everything read from disk is treated as untrusted: blobs are verified
//! against their digests, JSON documents are bounded, and unpacking never
//! writes outside its target directory.

#![warn(missing_docs)]

mod digest;
mod error;
mod image;
mod import;
mod json;
mod layer;
mod layout;
mod unpack;

pub use digest::Digest;
pub use error::OciError;
pub use image::{Image, ImageSpec, assemble, rebase};
pub use import::{import_layout, import_rootfs, import_rootfs_clamped};
pub use json::{parse_config, parse_index, parse_manifest};
pub use layer::{Layer, LayerSource, layer_from, layer_from_dir};
pub use layout::{Blob, BlobWriter, Layout, MAX_JSON_BYTES};
pub use unpack::{
    SkippedEntry, SpecialKind, UnpackLimits, UnpackReport, unpack, unpack_layer_bytes,
};

/// The oci-spec types images are made of, re-exported so callers need no
/// direct dependency on `oci-spec`.
pub use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
