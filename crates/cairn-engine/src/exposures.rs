//! Exposures: a vulnerability finding on a digest that runs (or ran) in an
//! environment. Computed on read from what the store already keeps — the
//! findings (with their first-seen times) and each environment's deployment
//! history — so the answer is always true to those records and needs no table
//! of its own: an exposure is *open* while the environment's current deployment
//! has the finding, and *remediated* at the first later deployment whose digest
//! does not (its time-to-remediate is that deployment's time minus the
//! exposure's start). An open exposure is *accepted* while a signed
//! acceptance (an OpenVEX statement and an expiry, `acceptance.rs`) applies to
//! it; past the expiry it is open again and carries the expired acceptance.
//!
//! An exposure starts when both were true: the finding was first seen and the
//! digest ran there (a finding carried over to the next digest keeps its start).
//! Its deadline is the start plus the organisation's SLA for its severity
//! (`[exposures] sla_hours`; an unknown severity gets the critical one).

use std::collections::{BTreeMap, BTreeSet};

use cairn_model::config::OrgConfig;
use cairn_model::{DeploymentRecord, DeploymentStatus};
use cairn_store::{FindingFilter, FindingState, Store, StoredFinding};

use crate::EngineError;

/// How many deployments of one environment the history is read back over.
const HISTORY: usize = 500;

/// Where an exposure stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExposureState {
    Open,
    /// Open, and a remediation by cairn covers it now (see
    /// `crate::remediation::mark_remediating`).
    Remediating,
    /// A signed acceptance (an OpenVEX statement with an expiry, not yet
    /// expired) applies, or a VEX statement suppressed the finding.
    Accepted,
    Remediated,
}

impl ExposureState {
    pub fn as_str(self) -> &'static str {
        match self {
            ExposureState::Open => "open",
            ExposureState::Remediating => "remediating",
            ExposureState::Accepted => "accepted",
            ExposureState::Remediated => "remediated",
        }
    }
}

/// One finding on a digest in one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    pub workload: String,
    pub environment: String,
    pub digest: String,
    pub advisory: String,
    /// The component's purl.
    pub package: String,
    /// `low` … `critical`, or `unknown`.
    pub severity: String,
    /// Versions that fix it (empty: no fix yet).
    pub fixed_versions: Vec<String>,
    /// When the exposure started.
    pub first_seen_ms: i64,
    pub deadline_ms: i64,
    pub state: ExposureState,
    /// When the environment moved to a digest without the finding, and that digest.
    pub remediated_at_ms: Option<i64>,
    pub remediated_by: Option<String>,
    /// The signed acceptance that applies (live: state `accepted`; expired:
    /// the exposure is open again and says so).
    pub acceptance: Option<crate::acceptance::Acceptance>,
}

impl Exposure {
    pub fn fixable(&self) -> bool {
        !self.fixed_versions.is_empty()
    }

    /// Open and past its deadline.
    pub fn overdue(&self, now_ms: i64) -> bool {
        matches!(self.state, ExposureState::Open | ExposureState::Remediating)
            && now_ms > self.deadline_ms
    }

    /// How long it has been (or was) open.
    pub fn age_ms(&self, now_ms: i64) -> i64 {
        self.remediated_at_ms.unwrap_or(now_ms) - self.first_seen_ms
    }

    /// Remediated: how long it took.
    pub fn time_to_remediate_ms(&self) -> Option<i64> {
        self.remediated_at_ms.map(|at| at - self.first_seen_ms)
    }
}

/// Which exposures [`list`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExposureFilter {
    pub environment: Option<String>,
    /// Only open ones past their deadline.
    pub overdue: bool,
    /// Remediated ones too.
    pub include_remediated: bool,
}

/// A stretch of time one digest ran in an environment.
struct Segment<'a> {
    digest: &'a str,
    start_ms: i64,
    /// When the next digest took over; `None` for what runs now.
    end: Option<(i64, &'a str)>,
}

/// A deployment that reached the environment (not an intent that failed).
fn reached(d: &DeploymentRecord) -> bool {
    matches!(
        d.status,
        DeploymentStatus::Deployed | DeploymentStatus::Superseded | DeploymentStatus::NotRunning
    )
}

/// Every exposure of every workload in the environments of the promotion path,
/// by environment, workload, severity (worst first) and advisory, with the
/// signed acceptances that apply (`acceptance.rs`: read from verified evidence
/// only; an expired one leaves the exposure open).
pub fn list(
    store: &dyn Store,
    data: &crate::DataDir,
    org: &OrgConfig,
    filter: &ExposureFilter,
    now_ms: i64,
) -> Result<Vec<Exposure>, EngineError> {
    let mut all = list_unaccepted(
        store,
        org,
        &ExposureFilter {
            overdue: false,
            ..filter.clone()
        },
        now_ms,
    )?;
    crate::acceptance::apply(store, data, &mut all, now_ms)?;
    if filter.overdue {
        all.retain(|e| e.overdue(now_ms));
    }
    Ok(all)
}

/// [`list`] without acceptances: what the findings and the deployment
/// history alone say.
pub fn list_unaccepted(
    store: &dyn Store,
    org: &OrgConfig,
    filter: &ExposureFilter,
    now_ms: i64,
) -> Result<Vec<Exposure>, EngineError> {
    let mut findings_of: BTreeMap<String, Vec<StoredFinding>> = BTreeMap::new();
    let mut fixes: BTreeMap<(String, String, String, String), Vec<String>> = BTreeMap::new();
    let mut out = Vec::new();
    for workload in store.workloads()? {
        for environment in &org.promotion_path {
            if filter
                .environment
                .as_ref()
                .is_some_and(|e| e != environment)
            {
                continue;
            }
            let mut history: Vec<DeploymentRecord> = store
                .deployments(Some(&workload.name), Some(environment), HISTORY)?
                .into_iter()
                .filter(reached)
                .collect();
            history.reverse();
            // What runs now is the current deployment; later failed intents aside.
            let Some(current) = store.current_deployment(&workload.name, environment)? else {
                continue;
            };
            history.retain(|d| d.deployed_at_ms <= current.deployed_at_ms);
            let segments = segments(&history);
            for s in &segments {
                if !findings_of.contains_key(s.digest) {
                    let found = store.findings(&FindingFilter {
                        subject_digest: Some(s.digest.to_owned()),
                        ..FindingFilter::default()
                    })?;
                    findings_of.insert(s.digest.to_owned(), found);
                }
            }
            // Exposures carried from one digest to the next keep their start.
            let mut carried: BTreeMap<ExposureKey, i64> = BTreeMap::new();
            for s in &segments {
                let here = live(&findings_of[s.digest]);
                let next = s.end.map(|(_, d)| live(&findings_of[d]));
                let mut carry_on = BTreeMap::new();
                for (key, f) in here {
                    let start = carried
                        .get(&key)
                        .copied()
                        .unwrap_or_else(|| f.first_seen_ms.max(s.start_ms));
                    let (state, remediated) = match s.end {
                        None if f.state == FindingState::Suppressed => {
                            (ExposureState::Accepted, None)
                        }
                        None => (ExposureState::Open, None),
                        // Found only after this digest stopped running here.
                        Some((end, _)) if f.first_seen_ms >= end => continue,
                        Some(_) if next.as_ref().is_some_and(|n| n.contains_key(&key)) => {
                            carry_on.insert(key, start);
                            continue;
                        }
                        Some((end, by)) => (ExposureState::Remediated, Some((end, by))),
                    };
                    if state == ExposureState::Remediated && !filter.include_remediated {
                        continue;
                    }
                    let severity = match f.severity.as_deref() {
                        Some(s @ ("low" | "medium" | "high" | "critical")) => s.to_owned(),
                        _ => "unknown".to_owned(),
                    };
                    let hours =
                        i64::try_from(org.exposure_sla.hours(&severity)).unwrap_or(i64::MAX);
                    let exposure = Exposure {
                        workload: workload.name.clone(),
                        environment: environment.clone(),
                        digest: s.digest.to_owned(),
                        advisory: f.key.advisory_id.clone(),
                        package: f.purl.clone(),
                        fixed_versions: fixed_versions(store, &mut fixes, f)?,
                        deadline_ms: start.saturating_add(hours.saturating_mul(3_600_000)),
                        severity,
                        first_seen_ms: start,
                        state,
                        remediated_at_ms: remediated.map(|(at, _)| at),
                        remediated_by: remediated.map(|(_, by)| by.to_owned()),
                        acceptance: None,
                    };
                    if filter.overdue && !exposure.overdue(now_ms) {
                        continue;
                    }
                    out.push(exposure);
                }
                carried = carry_on;
            }
        }
    }
    let rank = |s: &str| match s {
        "low" => 3,
        "medium" => 2,
        "high" => 1,
        _ => 0,
    };
    out.sort_by(|a, b| {
        (
            &a.environment,
            &a.workload,
            a.state,
            rank(&a.severity),
            &a.advisory,
            &a.package,
        )
            .cmp(&(
                &b.environment,
                &b.workload,
                b.state,
                rank(&b.severity),
                &b.advisory,
                &b.package,
            ))
    });
    Ok(out)
}

/// The history as stretches of one digest each, oldest first.
fn segments(history: &[DeploymentRecord]) -> Vec<Segment<'_>> {
    let mut out: Vec<Segment<'_>> = Vec::new();
    for d in history {
        if out.last().is_some_and(|s| s.digest == d.digest) {
            continue;
        }
        if let Some(last) = out.last_mut() {
            last.end = Some((d.deployed_at_ms, &d.digest));
        }
        out.push(Segment {
            digest: &d.digest,
            start_ms: d.deployed_at_ms,
            end: None,
        });
    }
    out
}

/// The key an exposure continues by from one digest to the next: the advisory
/// and the package, whatever its version (a digest with another still-affected
/// version of it has not remediated it).
type ExposureKey = (String, String, String);

/// A digest's findings that hold (open or suppressed vulnerabilities), by
/// (advisory, ecosystem, package).
fn live(findings: &[StoredFinding]) -> BTreeMap<ExposureKey, &StoredFinding> {
    findings
        .iter()
        .filter(|f| f.kind == "vulnerability" && f.state != FindingState::Fixed)
        .map(|f| {
            (
                (
                    f.key.advisory_id.clone(),
                    f.key.ecosystem.clone(),
                    f.key.name.clone(),
                ),
                f,
            )
        })
        .collect()
}

/// The versions that fix the finding, from its stored record (matched again
/// through `cairn_vuln`, the same matcher that found it).
fn fixed_versions(
    store: &dyn Store,
    cache: &mut BTreeMap<(String, String, String, String), Vec<String>>,
    f: &StoredFinding,
) -> Result<Vec<String>, EngineError> {
    let key = (
        f.key.advisory_id.clone(),
        f.key.ecosystem.clone(),
        f.key.name.clone(),
        f.key.version.clone(),
    );
    if let Some(v) = cache.get(&key) {
        return Ok(v.clone());
    }
    let mut fixed = Vec::new();
    if let Some(stored) = store.advisory(&f.key.advisory_id)?
        && let Ok(advisory) = cairn_vuln::Advisory::parse(&stored.json)
    {
        let mut index = cairn_vuln::AdvisoryIndex::new();
        index.insert(advisory);
        let package = cairn_vuln::Package::new(&f.key.ecosystem, &f.key.name, &f.key.version);
        for hit in index.scan(&[package]).vulnerabilities {
            fixed.extend(hit.fixed_versions);
        }
    }
    let fixed: Vec<String> = fixed
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    cache.insert(key, fixed.clone());
    Ok(fixed)
}

/// The ledger of overdue exposures already sent (`<data>/exposures/overdue-sent.jsonl`).
pub const OVERDUE_LEDGER: &str = "exposures/overdue-sent.jsonl";

/// The most ledger bytes read back (a line is a few hundred bytes).
const MAX_LEDGER: u64 = 64 << 20;

impl Exposure {
    /// What identifies one exposure across reads: environment, workload,
    /// digest, advisory, package and start.
    pub fn key(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            self.environment,
            self.workload,
            self.digest,
            self.advisory,
            self.package,
            self.first_seen_ms
        )
    }
}

/// One overdue exposure sent, and how its delivery went.
#[derive(Debug)]
pub struct OverdueNotice {
    pub exposure: Exposure,
    /// `Ok`: the webhook took it; `Err`: why not (kept in
    /// `<data>/changes-undelivered.jsonl`).
    pub delivery: Result<(), String>,
}

/// Sends every open exposure past its deadline to the organisation's change
/// webhook (`[changes] webhook`) once: its key is appended to the ledger
/// (durable) before the POST, so a crash never sends one twice, and a failed
/// POST is kept in the undelivered file with why, as for change records.
/// Without a webhook nothing is sent or recorded (a webhook configured later
/// gets what is overdue then). Returns what was sent now.
pub fn notify_overdue(
    store: &dyn Store,
    data: &crate::DataDir,
    org: &OrgConfig,
    now_ms: i64,
) -> Result<Vec<OverdueNotice>, EngineError> {
    use std::io::Read;
    if org.change_sink.webhook.is_none()
        && !crate::notify::wants(org, cairn_model::config::NotifyEvent::ExposureOverdue)
    {
        return Ok(Vec::new());
    }
    let overdue = list(
        store,
        data,
        org,
        &ExposureFilter {
            overdue: true,
            ..ExposureFilter::default()
        },
        now_ms,
    )?;
    if overdue.is_empty() {
        return Ok(Vec::new());
    }
    let path = data.root().join(OVERDUE_LEDGER);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(EngineError::io("create", dir))?;
    }
    let mut text = String::new();
    match std::fs::File::open(&path) {
        Ok(f) => {
            f.take(MAX_LEDGER)
                .read_to_string(&mut text)
                .map_err(EngineError::io("read", &path))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(EngineError::io("read", &path)(e)),
    }
    let sent: BTreeSet<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["key"].as_str().map(str::to_owned))
        .collect();
    let mut out = Vec::new();
    for e in overdue {
        let key = e.key();
        if sent.contains(&key) {
            continue;
        }
        let record = serde_json::json!({
            "kind": "exposure-overdue",
            "at": cairn_model::time::rfc3339_utc(now_ms),
            "exposure": crate::wire::exposure_json(&e, now_ms),
        });
        let line = serde_json::json!({ "key": key, "record": record });
        crate::jsonl::append(&path, &line, true).map_err(EngineError::io("append to", &path))?;
        let delivery =
            crate::change_sink::deliver_notice(&org.change_sink, data, "exposure-overdue", &record)
                .unwrap_or(Ok(()));
        crate::notify::exposure_overdue(
            data,
            org,
            format!(
                "{} in {} of {} is past its deadline",
                e.advisory, e.environment, e.workload
            ),
            &record,
        );
        out.push(OverdueNotice {
            exposure: e,
            delivery,
        });
    }
    Ok(out)
}

/// The environments each digest runs in now (its workload's current
/// deployment there), in promotion-path order.
pub fn running(
    store: &dyn Store,
    org: &OrgConfig,
) -> Result<BTreeMap<String, Vec<String>>, EngineError> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for workload in store.workloads()? {
        for environment in &org.promotion_path {
            if let Some(d) = store.current_deployment(&workload.name, environment)? {
                out.entry(d.digest).or_default().push(environment.clone());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cairn_store::prelude::*;
    use cairn_store::{FindingKey, MatchScope, NewAdvisory, NewFinding, NewSbom, SqliteStore};

    const H: i64 = 3_600_000;

    /// An SBOM about `digest` with left-pad at `version`; returns its id.
    fn sbom(store: &dyn Store, digest: &str, version: &str) -> i64 {
        store
            .add_sbom(&NewSbom {
                subject_name: "app".into(),
                subject_digest: digest.into(),
                workload: Some("app".into()),
                environment: None,
                created_at_ms: 0,
                format: "cyclonedx".into(),
                document: b"{}".to_vec(),
                components: vec![(
                    "npm".into(),
                    "left-pad".into(),
                    version.into(),
                    format!("pkg:npm/left-pad@{version}"),
                )],
            })
            .unwrap()
    }

    fn finding(sbom: i64, version: &str) -> NewFinding {
        NewFinding {
            key: FindingKey {
                advisory_id: "A-1".into(),
                sbom_id: sbom,
                ecosystem: "npm".into(),
                name: "left-pad".into(),
                version: version.into(),
            },
            purl: format!("pkg:npm/left-pad@{version}"),
            kind: "vulnerability".into(),
            severity: Some("high".into()),
        }
    }

    fn deploy(store: &dyn Store, digest: &str, at_ms: i64, status: DeploymentStatus) {
        store
            .add_deployment(&DeploymentRecord {
                workload: "app".into(),
                environment: "production".into(),
                digest: digest.into(),
                previous_digest: None,
                kind: "deploy".into(),
                actor: "rita".into(),
                target: "local".into(),
                detail: String::new(),
                log_index: 0,
                deployed_at_ms: at_ms,
                status,
                token: None,
                reason: None,
            })
            .unwrap();
    }

    /// A finding carried from digest A to B keeps A's start; C without it
    /// remediates it at C's deployment; a failed deploy of a clean digest
    /// remediates nothing; the deadline is the start plus the SLA for `high`.
    #[test]
    fn an_exposure_spans_digests_with_the_finding_and_ends_at_one_without() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.upsert_workload("app", "/repo", 0).unwrap();
        let record = r#"{"id":"A-1","modified":"2026-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"left-pad"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.3.1"}]}]}]}"#;
        store
            .put_advisories(&[NewAdvisory {
                id: "A-1".into(),
                modified: "2026-01-01T00:00:00.000000000Z".into(),
                withdrawn: false,
                packages: vec![("npm".into(), "left-pad".into())],
                json: record.as_bytes().to_vec(),
                match_form: None,
                compiled: Vec::new(),
            }])
            .unwrap();
        let a = sbom(&store, "sha256:a", "1.2.0");
        let b = sbom(&store, "sha256:b", "1.3.0");
        sbom(&store, "sha256:c", "1.3.1");
        let scope = MatchScope {
            packages: vec![("npm".into(), "left-pad".into())],
            ..MatchScope::default()
        };
        store
            .record_matches(&scope, &[finding(a, "1.2.0"), finding(b, "1.3.0")], 2 * H)
            .unwrap();
        deploy(&store, "sha256:a", H, DeploymentStatus::Superseded);
        deploy(&store, "sha256:b", 3 * H, DeploymentStatus::Deployed);
        let org = OrgConfig::default();
        let open = list_unaccepted(&store, &org, &ExposureFilter::default(), 4 * H).unwrap();
        assert_eq!(open.len(), 1, "{open:?}");
        let e = &open[0];
        assert_eq!(
            (e.digest.as_str(), e.state),
            ("sha256:b", ExposureState::Open)
        );
        // Found at 2 h while A ran (since 1 h): the exposure starts at 2 h.
        assert_eq!(e.first_seen_ms, 2 * H);
        assert_eq!(e.deadline_ms, 26 * H);
        assert_eq!(e.fixed_versions, ["1.3.1"]);
        assert_eq!(e.package, "pkg:npm/left-pad@1.3.0");
        assert!(!e.overdue(26 * H) && e.overdue(26 * H + 1));
        let overdue = ExposureFilter {
            overdue: true,
            ..ExposureFilter::default()
        };
        assert!(
            list_unaccepted(&store, &org, &overdue, 4 * H)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            list_unaccepted(&store, &org, &overdue, 27 * H)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(running(&store, &org).unwrap()["sha256:b"], ["production"]);

        // A failed deploy of C changes nothing; a deployed one remediates.
        deploy(&store, "sha256:c", 5 * H, DeploymentStatus::Failed);
        assert_eq!(
            list_unaccepted(&store, &org, &ExposureFilter::default(), 6 * H)
                .unwrap()
                .len(),
            1
        );
        deploy(&store, "sha256:c", 7 * H, DeploymentStatus::Deployed);
        assert!(
            list_unaccepted(&store, &org, &ExposureFilter::default(), 8 * H)
                .unwrap()
                .is_empty()
        );
        let all = ExposureFilter {
            include_remediated: true,
            ..ExposureFilter::default()
        };
        let done = list_unaccepted(&store, &org, &all, 8 * H).unwrap();
        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(done[0].state, ExposureState::Remediated);
        assert_eq!(done[0].remediated_by.as_deref(), Some("sha256:c"));
        assert_eq!(done[0].time_to_remediate_ms(), Some(5 * H));
        assert!(!running(&store, &org).unwrap().contains_key("sha256:b"));
    }
}
