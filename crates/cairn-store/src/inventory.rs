//! What is in each artifact (stored SBOMs and their components), what is known
//! about packages (OSV advisories), and where the two meet (findings, re-matches).

use crate::StoreError;

/// The largest OSV record [`InventoryStore::put_advisories`] keeps.
pub const MAX_ADVISORY_BYTES: usize = 16 << 20;

/// An OSV advisory to keep. The store does not read the JSON: the caller hands in
/// the id, the `modified` time and the packages the record names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAdvisory {
    pub id: String,
    /// The record's `modified` time, in a form whose byte order is time order
    /// (the CLI writes RFC 3339 UTC with nine fractional digits).
    pub modified: String,
    /// A withdrawn record is kept but indexed under no package.
    pub withdrawn: bool,
    /// (OSV ecosystem, normalised package name) pairs the record is found by.
    pub packages: Vec<(String, String)>,
    /// The OSV JSON record as it was read.
    pub json: Vec<u8>,
    /// The record's match form (`cairn_vuln::match_form`: only what matching
    /// and a finding read), which [`InventoryStore::advisories_for_packages`]
    /// returns in its place; `None` keeps none (the record itself is read).
    pub match_form: Option<Vec<u8>>,
    /// The compiled match form (`cairn_vuln::compiled`) of each of `packages`,
    /// by position; a missing or `None` one keeps none (the record is read).
    pub compiled: Vec<Option<Vec<u8>>>,
}

/// One index row of a record for matching: the package it is found by, the
/// record's id and `modified`, and its compiled match form when one is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMatcher {
    pub ecosystem: String,
    pub name: String,
    pub id: String,
    pub modified: String,
    pub compiled: Option<Vec<u8>>,
}

/// A compiled match form to back-fill ([`InventoryStore::put_compiled`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledRow {
    pub ecosystem: String,
    pub name: String,
    pub id: String,
    /// The record the form was compiled from, as stored.
    pub json: Vec<u8>,
    pub form: Vec<u8>,
}

/// What [`InventoryStore::put_advisories`] did with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdvisoryPut {
    /// No record had this id.
    New,
    /// The stored record was older; it was replaced.
    Updated,
    /// The stored record was as new or newer; it was kept.
    Unchanged,
}

/// Refuses a batch with a record (or its match form) over [`MAX_ADVISORY_BYTES`].
pub(crate) fn check_advisory_sizes(advisories: &[NewAdvisory]) -> Result<(), StoreError> {
    for a in advisories {
        let compiled = a.compiled.iter().flatten().map(Vec::len).max().unwrap_or(0);
        let size = a
            .json
            .len()
            .max(a.match_form.as_ref().map_or(0, Vec::len))
            .max(compiled);
        if size > MAX_ADVISORY_BYTES {
            return Err(StoreError::TooLarge {
                what: "an advisory record",
                size,
                limit: MAX_ADVISORY_BYTES,
            });
        }
    }
    Ok(())
}

/// A kept OSV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAdvisory {
    pub id: String,
    pub modified: String,
    pub withdrawn: bool,
    pub json: Vec<u8>,
}

/// The largest SBOM document [`InventoryStore::add_sbom`] keeps.
pub const MAX_SBOM_BYTES: usize = 64 << 20;

/// The most components one stored SBOM may index.
pub const MAX_SBOM_COMPONENTS: usize = 200_000;

/// An SBOM to keep, with the components it is found by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSbom {
    /// What the SBOM describes (a tree's or an image's name).
    pub subject_name: String,
    /// The artifact's digest, `<algorithm>:<hex>`.
    pub subject_digest: String,
    /// The workload it belongs to, once deployments exist.
    pub workload: Option<String>,
    /// The environment it runs in, once deployments exist.
    pub environment: Option<String>,
    pub created_at_ms: i64,
    /// The document's format (`cyclonedx`, `spdx`).
    pub format: String,
    /// The document as it was written.
    pub document: Vec<u8>,
    /// (OSV ecosystem, normalised name, version, purl) of each component.
    pub components: Vec<(String, String, String, String)>,
}

/// A stored SBOM that contains a package, from [`InventoryStore::where_package`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageHit {
    pub sbom_id: i64,
    pub subject_name: String,
    pub subject_digest: String,
    pub workload: Option<String>,
    pub environment: Option<String>,
    pub ecosystem: String,
    pub name: String,
    pub version: String,
    pub purl: String,
}

/// A component of a stored SBOM, from [`InventoryStore::components_for_packages`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoredComponent {
    pub sbom_id: i64,
    pub ecosystem: String,
    /// The normalised name, as the SBOM was indexed.
    pub name: String,
    pub version: String,
    pub purl: String,
}

/// Where a finding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingState {
    /// The advisory matches the component.
    Open,
    /// It matches, but a VEX statement says the artifact is not affected.
    Suppressed,
    /// It no longer matches (the record changed or was withdrawn).
    Fixed,
}

impl FindingState {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingState::Open => "open",
            FindingState::Suppressed => "suppressed",
            FindingState::Fixed => "fixed",
        }
    }

    /// The state named `name` (as [`FindingState::as_str`] writes it).
    pub fn parse(name: &str) -> Option<FindingState> {
        Some(match name {
            "open" => FindingState::Open,
            "suppressed" => FindingState::Suppressed,
            "fixed" => FindingState::Fixed,
            _ => return None,
        })
    }
}

/// A finding's identity: one advisory against one component of one stored SBOM.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FindingKey {
    pub advisory_id: String,
    pub sbom_id: i64,
    pub ecosystem: String,
    /// The normalised name, as the SBOM was indexed.
    pub name: String,
    pub version: String,
}

/// A match the caller computed, for [`InventoryStore::record_matches`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFinding {
    pub key: FindingKey,
    pub purl: String,
    /// `vulnerability`, or the informational kind (`unmaintained`, `unsound`, …).
    pub kind: String,
    /// The qualitative severity (`low` … `critical`), when the record gives one.
    pub severity: Option<String>,
}

/// A kept finding, with the artifact it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFinding {
    pub key: FindingKey,
    pub purl: String,
    pub kind: String,
    pub severity: Option<String>,
    pub state: FindingState,
    /// When it was first recorded (a fixed finding that matches again keeps it).
    pub first_seen_ms: i64,
    /// The last re-match that found it.
    pub last_seen_ms: i64,
    /// When it stopped matching, while [`FindingState::Fixed`].
    pub fixed_at_ms: Option<i64>,
    pub subject_name: String,
    pub subject_digest: String,
    pub workload: Option<String>,
    pub environment: Option<String>,
}

/// What one re-match covered: the findings of components of these packages, and
/// the findings of these advisories (whatever their package), in every stored SBOM
/// or only in `sbom`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchScope {
    /// (OSV ecosystem, normalised name) pairs whose components were re-matched
    /// against every advisory that names them.
    pub packages: Vec<(String, String)>,
    /// Advisories that were re-evaluated (new, changed or withdrawn records).
    pub advisories: Vec<String>,
    /// Only this SBOM (a newly stored one), or every SBOM when `None`.
    pub sbom: Option<i64>,
}

/// What [`InventoryStore::record_matches`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchOutcome {
    /// The re-match's id in [`InventoryStore::rematches`].
    pub rematch_id: i64,
    /// Stored components in the scope's packages: those that were re-matched.
    pub components: u64,
    /// Findings that are new, or match again after they were fixed.
    pub opened: Vec<StoredFinding>,
    /// Findings that were open or suppressed and still are.
    pub still_open: u64,
    /// Findings in the scope that no longer match: now fixed.
    pub fixed: Vec<StoredFinding>,
}

/// One re-match as logged by [`InventoryStore::record_matches`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RematchRecord {
    pub id: i64,
    pub at_ms: i64,
    pub packages: u64,
    pub advisories: u64,
    pub sbom: Option<i64>,
    pub components: u64,
    pub opened: u64,
    pub still_open: u64,
    pub fixed: u64,
}

/// Which findings [`InventoryStore::findings`] returns; every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingFilter {
    pub sbom: Option<i64>,
    pub advisory: Option<String>,
    pub state: Option<FindingState>,
    /// Only the findings of SBOMs about this artifact digest.
    pub subject_digest: Option<String>,
    /// At most this many (the first in the listing's order); every one when `None`.
    /// A page that shows findings sets it; a computation over all of them (an
    /// artifact's exposures) does not.
    pub limit: Option<usize>,
}

/// A stored SBOM without its document and components, from
/// [`InventoryStore::sboms_about`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomSummary {
    pub id: i64,
    pub subject_name: String,
    pub subject_digest: String,
    pub workload: Option<String>,
    pub environment: Option<String>,
    pub created_at_ms: i64,
    pub format: String,
}

/// Advisories, SBOMs and findings.
///
/// Every method is one transaction (see [`Store`](crate::Store)).
pub trait InventoryStore {
    /// Keeps OSV records, all in one transaction: a record whose id is new is
    /// inserted, one whose `modified` is later than the stored one replaces it (and
    /// its package index), any other is left as it was. Returns what happened to
    /// each, in order (an id given twice in a batch is compared with its first copy).
    /// A record larger than [`MAX_ADVISORY_BYTES`] refuses the whole batch.
    fn put_advisories(&self, advisories: &[NewAdvisory]) -> Result<Vec<AdvisoryPut>, StoreError>;

    /// The records (not withdrawn) indexed under any of these (ecosystem, name)
    /// pairs, each once, by id, for matching: each one's `json` is its match
    /// form when one is kept (written at import, or back-filled by schema v16),
    /// else the record. [`InventoryStore::advisory`] reads the record itself.
    fn advisories_for_packages(
        &self,
        packages: &[(String, String)],
    ) -> Result<Vec<StoredAdvisory>, StoreError>;

    /// The index rows (records not withdrawn) under any of these (ecosystem,
    /// name) pairs, by (ecosystem, name, id), with each row's compiled match
    /// form when one is kept: what a scan decides without reading records.
    fn advisory_matchers(
        &self,
        packages: &[(String, String)],
    ) -> Result<Vec<StoredMatcher>, StoreError>;

    /// The ids of records that have an index row without a compiled match
    /// form (rows kept before schema v17), after `after`, in order, at most
    /// `limit`. For the back-fill a writing command runs
    /// (`cairn_engine::advisories::backfill_compiled`).
    fn advisories_without_compiled(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;

    /// Fills in compiled match forms, each (ecosystem, name, id, form) only
    /// where that row still has none and the record is still `json` (a record
    /// replaced meanwhile keeps the forms its import wrote), in one
    /// transaction. Returns how many rows were filled.
    fn put_compiled(&self, rows: &[CompiledRow]) -> Result<usize, StoreError>;

    /// The records with these ids, each once, by id, for matching: as
    /// [`InventoryStore::advisories_for_packages`] gives them (the match form
    /// where one is kept). An id not kept is left out.
    fn advisory_forms(&self, ids: &[String]) -> Result<Vec<StoredAdvisory>, StoreError>;

    /// The record with this id, withdrawn or not.
    fn advisory(&self, id: &str) -> Result<Option<StoredAdvisory>, StoreError>;

    /// How many records are kept, withdrawn ones included.
    fn advisory_count(&self) -> Result<u64, StoreError>;

    /// Every kept record's (id, modified, withdrawn), by id: the advisory
    /// database's state, which a gate decision names.
    fn advisory_versions(&self) -> Result<Vec<(String, String, bool)>, StoreError>;

    /// Keeps one SBOM and indexes its components; returns its id. An SBOM equal
    /// to one stored (see [`InventoryStore::add_sboms`]) is not stored again.
    fn add_sbom(&self, sbom: &NewSbom) -> Result<i64, StoreError> {
        let ids = self.add_sboms(std::slice::from_ref(sbom))?;
        ids.first().copied().ok_or(StoreError::Corrupt {
            what: "stored SBOM ids",
            value: "none".to_owned(),
        })
    }

    /// Keeps SBOMs, all in one transaction; returns their ids in order. A document
    /// larger than [`MAX_SBOM_BYTES`] or with more than [`MAX_SBOM_COMPONENTS`]
    /// components refuses the whole batch.
    ///
    /// Storing is idempotent: an SBOM equal to one already stored (the same
    /// subject name and digest, workload, environment, format, document bytes
    /// and components; its creation time aside) is not stored again, its id is
    /// returned instead, so the same digest built twice keeps one SBOM and one
    /// set of findings. Equal SBOMs within one batch get one id too.
    fn add_sboms(&self, sboms: &[NewSbom]) -> Result<Vec<i64>, StoreError>;

    /// Every stored component named `name` (in `ecosystem`, or in any), with the SBOM
    /// it is in, each (SBOM, ecosystem, name, version, purl) once, by SBOM id then
    /// version. Versions are not compared here: ranges are the caller's.
    fn where_package(
        &self,
        ecosystem: Option<&str>,
        name: &str,
    ) -> Result<Vec<PackageHit>, StoreError>;

    /// Every stored component of these (ecosystem, normalised name) packages (in
    /// SBOM `sbom` only, when given), each (SBOM, ecosystem, name, version, purl)
    /// once, ordered.
    fn components_for_packages(
        &self,
        packages: &[(String, String)],
        sbom: Option<i64>,
    ) -> Result<Vec<StoredComponent>, StoreError>;

    /// Records a re-match, in one transaction. `found` is every match the caller
    /// computed for the components in `scope`; each must be of a stored component
    /// in the scope's packages (and SBOM), else nothing is stored
    /// ([`StoreError::NotFound`] for a component that is not stored,
    /// [`StoreError::OutOfScope`] for one outside the scope). A match not stored
    /// yet (or stored as fixed) is opened with `now_ms`; one stored as open or
    /// suppressed keeps its state and first-seen time; a stored open or suppressed
    /// finding in the scope (by package, or by advisory) that is not in `found` is
    /// fixed. The re-match is logged for [`InventoryStore::rematches`].
    fn record_matches(
        &self,
        scope: &MatchScope,
        found: &[NewFinding],
        now_ms: i64,
    ) -> Result<MatchOutcome, StoreError>;

    /// The stored SBOMs about artifact `subject_digest`, by id (their workloads are
    /// the artifact's, whatever the findings).
    fn sboms_about(&self, subject_digest: &str) -> Result<Vec<SbomSummary>, StoreError>;

    /// Kept findings matching `filter`, by SBOM id, advisory, ecosystem, name,
    /// version; at most `filter.limit`.
    fn findings(&self, filter: &FindingFilter) -> Result<Vec<StoredFinding>, StoreError>;

    /// The last `limit` re-matches, newest first.
    fn rematches(&self, limit: usize) -> Result<Vec<RematchRecord>, StoreError>;
}
