//! cairn-vuln: the pure core of vulnerability matching.
//!
//! - [`version`]: version ordering per ecosystem (SemVer, PEP 440, Maven,
//!   RubyGems, Composer, NuGet, dpkg, apk, rpm, CRAN, Hackage, Pub).
//! - [`archive`]: osv.dev's zip exports, read entry by entry under limits
//!   (size, ratio, count, names) against bombs and hostile names.
//! - [`osv`]: OSV records (<https://ossf.github.io/osv-schema/>) read from bytes,
//!   bounded, into domain types; problems are reported per record.
//! - [`matching`]: an advisory against one package: name normalisation, the
//!   OSV range algorithm, CVSS severity, RustSec informational kinds.
//! - [`rustsec_export`]: a crates.io record written back as a RustSec
//!   advisory-db entry, so cargo-audit can read the same data.
//! - [`distro`]: which OSV ecosystem holds a distribution release's
//!   advisories (`Debian:12`, `Ubuntu:22.04`, `Alpine:v3.20`).
//! - [`compiled`]: a record's binary match form per (ecosystem, package),
//!   decided for an installed version without JSON (only "no" is final).
//! - [`index`]: advisories keyed by (ecosystem, normalised name) for scanning
//!   many components at once.
//!
//! Floor 1: no I/O, no clock. Callers hand in bytes.

pub mod archive;
pub mod compiled;
pub mod distro;
mod error;
pub mod index;
pub mod matching;
pub mod osv;
pub mod rustsec_export;
pub mod version;
pub mod vex;

pub use error::Error;
pub use index::{AdvisoryIndex, ScanIssue, ScanReport};
pub use matching::{Finding, FindingKind, Package, Rating, Severity, matches, normalize_name};
pub use osv::{Advisory, Affected, Event, Informational, RangeKind, RecordProblem, match_form};
pub use version::{Scheme, Version, VersionError};
pub use vex::{Justification, VexDocument, VexError, VexSet, VexStatus, VexVerdict};
