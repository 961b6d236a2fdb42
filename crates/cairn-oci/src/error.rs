//! The crate's one error type: every variant names what failed (a path, a
//! blob or layer digest, a tar entry) and, where it helps, what to do.

use std::io;
use std::path::PathBuf;

use crate::Digest;

/// Everything that can go wrong reading, writing or unpacking images.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// A path in an untrusted tree was refused or could not be read (a symlink on
    /// the way, a special file, too large).
    #[error(transparent)]
    Fs(#[from] cairn_fs::FsError),
    /// A file-system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("read", "create", "rename", ...).
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A digest string is not `sha256:` followed by 64 lowercase hex digits.
    #[error(
        "invalid digest {text:?}: expected sha256:<64 lowercase hex digits> (only sha256 is supported)"
    )]
    InvalidDigest {
        /// The offending text (at most 80 characters of it).
        text: String,
    },
    /// The directory is not a usable OCI image layout.
    #[error("{path} is not an OCI image layout: {reason}")]
    NotALayout {
        /// The layout directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A blob the caller or a manifest refers to is not in the layout.
    #[error(
        "blob {digest} is missing from the layout at {layout}; import or copy the image (with all its blobs) first"
    )]
    MissingBlob {
        /// The missing blob.
        digest: Digest,
        /// The layout directory.
        layout: PathBuf,
    },
    /// A blob's content does not hash to the digest it is stored or referenced under.
    #[error(
        "{what} {expected} is corrupt or tampered with: its content hashes to {actual}; re-import it from a trusted source"
    )]
    DigestMismatch {
        /// What the blob is (manifest, config, layer, blob).
        what: &'static str,
        /// The digest it was referenced by.
        expected: Digest,
        /// The digest of the bytes actually found.
        actual: Digest,
    },
    /// A blob's size differs from the size its descriptor declares.
    #[error(
        "{what} {digest} is {actual} bytes but its descriptor says {expected}; the image is inconsistent"
    )]
    SizeMismatch {
        /// What the blob is.
        what: &'static str,
        /// The blob.
        digest: Digest,
        /// The declared size.
        expected: u64,
        /// The size found.
        actual: u64,
    },
    /// A blob or document is larger than cairn accepts.
    #[error("{what} {digest} is larger than the limit of {max} bytes")]
    TooLarge {
        /// What it is (manifest, config, index).
        what: &'static str,
        /// Its digest, or the digest of the bytes that were handed in.
        digest: Digest,
        /// The limit.
        max: u64,
    },
    /// A JSON document (manifest, config, index, oci-layout) did not parse.
    #[error("{what} is not valid: {source}")]
    Json {
        /// Which document, e.g. "manifest sha256:...".
        what: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A document parsed but breaks a rule of the image spec.
    #[error("{what} is not valid: {reason}")]
    Invalid {
        /// Which document or value.
        what: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A media type cairn does not handle here.
    #[error("{what} has media type {media_type:?}, which cairn does not support here ({hint})")]
    UnsupportedMediaType {
        /// What carries it, e.g. "layer sha256:...".
        what: String,
        /// The media type.
        media_type: String,
        /// What is accepted.
        hint: &'static str,
    },
    /// A reference name is not acceptable in index.json.
    #[error(
        "invalid reference name {name:?}: use 1-128 characters from [A-Za-z0-9._:@/+-], starting with a letter or digit"
    )]
    InvalidRefName {
        /// The name.
        name: String,
    },
    /// No index.json entry carries this reference name.
    #[error("no image named {name:?} in the layout at {layout}")]
    RefNotFound {
        /// The name looked up.
        name: String,
        /// The layout directory.
        layout: PathBuf,
    },
    /// No reference was given and the layout does not hold exactly one image.
    #[error("the layout at {layout} holds {count} images; name the one to import")]
    AmbiguousImage {
        /// The layout directory.
        layout: PathBuf,
        /// How many index entries it has.
        count: usize,
    },
    /// An image index has no linux/amd64 image.
    #[error("image index {index} has no linux/amd64 image")]
    NoMatchingPlatform {
        /// The index.
        index: Digest,
    },
    /// `rebase` was asked to replace a base the image is not built on.
    #[error(
        "image {image} is not built on base {base}: {detail}; rebase only replaces the base the image was assembled on"
    )]
    NotBuiltOnBase {
        /// The image.
        image: Digest,
        /// The claimed old base.
        base: Digest,
        /// What differs.
        detail: &'static str,
    },
    /// The build output holds a file type images do not carry.
    #[error(
        "{path} is a {kind}; build outputs may hold only regular files, directories and symlinks"
    )]
    UnsupportedFile {
        /// The file.
        path: PathBuf,
        /// Its type.
        kind: &'static str,
    },
    /// A build output or image value exceeds a fixed bound.
    #[error("{what} exceeds the limit of {max} {unit}")]
    InputTooLarge {
        /// What was being counted.
        what: String,
        /// The bound.
        max: u64,
        /// Its unit (entries, bytes, levels).
        unit: &'static str,
    },
    /// A layer entry is hostile or malformed; the layer is refused.
    #[error("layer {layer}: entry {entry:?} refused: {reason}")]
    UnsafeEntry {
        /// The layer.
        layer: Digest,
        /// The entry's path as written in the tar (lossy UTF-8).
        entry: String,
        /// Why.
        reason: &'static str,
    },
    /// Unpacking went past one of the `UnpackLimits`.
    #[error(
        "layer {layer}: unpack stopped at the {limit} limit of {max}; the image is too large or a decompression bomb (raise UnpackLimits only for images you trust)"
    )]
    LimitExceeded {
        /// The layer being unpacked.
        layer: Digest,
        /// Which limit.
        limit: &'static str,
        /// Its value.
        max: u64,
    },
    /// The layer's tar (or gzip) stream is malformed.
    #[error("layer {layer}: malformed archive: {source}")]
    Archive {
        /// The layer.
        layer: Digest,
        /// The reader's error.
        #[source]
        source: io::Error,
    },
    /// The uncompressed layer does not hash to the diff_id the config lists.
    #[error(
        "layer {layer}: uncompressed content hashes to {actual} but the image config says diff_id {expected}; the image is inconsistent or tampered with"
    )]
    DiffIdMismatch {
        /// The layer.
        layer: Digest,
        /// The diff_id from the config.
        expected: Digest,
        /// The hash of what was read.
        actual: Digest,
    },
    /// An unpack target that is neither absent nor an empty directory.
    #[error("unpack target {path} must not exist or be an empty directory")]
    TargetNotEmpty {
        /// The target.
        path: PathBuf,
    },
    /// oci-spec refused to build a document.
    #[error("building the {what}: {source}")]
    Spec {
        /// Which document.
        what: &'static str,
        /// oci-spec's error.
        #[source]
        source: oci_spec::OciSpecError,
    },
}

impl OciError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> OciError {
        let path = path.into();
        move |source| OciError::Io {
            action,
            path,
            source,
        }
    }
}
