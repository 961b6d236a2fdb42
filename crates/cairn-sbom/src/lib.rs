//! SBOMs, pure: components from lockfiles and OS package databases, their package
//! URLs and licences, and CycloneDX 1.6 / SPDX 2.3 JSON documents about them.
//!
//! Nothing here reads a file, a clock or randomness: callers hand in file paths and
//! bytes, the timestamp and the bytes of the document's UUID.

mod component;
pub mod cyclonedx;
pub mod cyclonedx_read;
pub mod dep5;
pub mod ecosystems;
mod error;
mod licence;
pub mod licence_policy;
pub mod purl;
mod scan;
pub mod spdx_doc;
mod text;

pub use component::{Component, Ecosystem, SourcePackage};
pub use error::{Error, ParseError};
pub use licence::{Licence, MAX_LICENCE_CHOICES, licence_choices, parse_licence};
pub use scan::{
    FileError, FileKind, Note, ParsedFile, ScanReport, detect, detect_installed, parse_file,
    scan_installed, scan_rootfs, scan_tree,
};

/// The largest file a parser accepts (a dpkg status of a big image is a few MiB).
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;
/// The most components one file may yield.
pub const MAX_COMPONENTS_PER_FILE: usize = 200_000;
/// The deepest nesting a JSON lockfile or a pom.xml may have.
pub const MAX_JSON_DEPTH: usize = 64;
