//! Rebase: an image moved onto a newer catalog base without rebuilding its app
//! layers (what the closed loop does for a base-image vulnerability). The result
//! has a new digest, is recorded with the image it came from, and gets new SLSA
//! provenance, signed by cairn, that names both bases.

use cairn_evidence::sbom::CycloneDxBom;
use cairn_evidence::{Digest, NamedDigest, Observed, Statement, Subject};
use cairn_model::{BaseRecord, ImageRecord};
use cairn_oci::Image;
use cairn_store::Store;

use super::{Images, image_inventory};
use crate::audit::{AuditLog, LOCK_WAIT};
use crate::certify::{Filed, sign_and_keep};
use crate::host::now_ms;
use crate::keys::KeyStore;
use crate::{DataDir, EngineError};
use crate::{git, inventory};

/// What a rebase made.
#[derive(Debug)]
pub struct Rebased {
    pub image: Image,
    pub record: ImageRecord,
    pub old_base: BaseRecord,
    pub new_base: BaseRecord,
    /// The evidence id of the new provenance.
    pub provenance: i64,
    /// The evidence ids of its SBOM and its scan (the image's root filesystem
    /// and the source it was built from).
    pub sbom: i64,
    pub scan: i64,
    /// What the inventory noted (components, findings, what was not read).
    pub notes: Vec<String>,
}

fn sha(digest: &str) -> Result<Digest, EngineError> {
    Ok(Digest::parse(digest).map_err(cairn_evidence::EvidenceError::from)?)
}

/// Rebases the image `reference` (a digest, a layout ref or a digest prefix) onto
/// catalog base `onto` (`name` or `name@sha256:…`).
pub fn rebase(
    data: &DataDir,
    store: &dyn Store,
    images: &Images,
    org: &cairn_model::config::OrgConfig,
    reference: &str,
    onto: &str,
) -> Result<Rebased, EngineError> {
    let builder = crate::audit::own_builder_id(data, org.builder_id.as_deref())?;
    let started_ms = now_ms();
    let image = images.find(reference)?;
    let digest = image.manifest_digest.to_string();
    let built = store
        .images(None, Some(&digest), 1)?
        .into_iter()
        .next()
        .ok_or_else(|| EngineError::ImageNotFound {
            reference: reference.to_owned(),
            why: "cairn did not build it, so it does not know its base".into(),
        })?;
    // The commit and workload the new provenance signs come from the image's
    // own verified provenance, never from its store row alone.
    check_signed_origin(data, store, &builder, &digest, &built, reference)?;
    let old_base_image = images.image(&built.base_digest)?;
    let old_base = store
        .base_history(&built.base_name)?
        .into_iter()
        .find(|b| b.digest == built.base_digest)
        .ok_or_else(|| EngineError::BaseNotInCatalog {
            name: format!("{}@{}", built.base_name, built.base_digest),
        })?;
    let (name, pin) = match onto.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (onto, None),
    };
    let (new_base, new_base_image) = images.base(store, name, pin)?;
    if new_base.digest == old_base.digest {
        return Err(EngineError::ImageNotFound {
            reference: onto.to_owned(),
            why: format!(
                "the image is already on {} ({})",
                new_base.name, new_base.digest
            ),
        });
    }
    let rebased = cairn_oci::rebase(
        images.layout(),
        &image,
        &old_base_image,
        &new_base_image,
        &new_base.name,
    )?;
    let new_digest = rebased.manifest_digest.to_string();
    let short = &built.commit[..12.min(built.commit.len())];
    images.layout().set_ref(
        &format!("{}:{short}-on-{}", built.workload, new_base.name),
        &rebased.descriptor()?,
    )?;
    let record = ImageRecord {
        digest: new_digest.clone(),
        workload: built.workload.clone(),
        run: None,
        commit: built.commit.clone(),
        base_name: new_base.name.clone(),
        base_digest: new_base.digest.clone(),
        created_at_ms: now_ms(),
        rebased_from: Some(digest.clone()),
    };
    store.add_image(&record)?;

    let key = {
        let audit = AuditLog::open_waiting(data, LOCK_WAIT)?;
        KeyStore::new(data).load_or_create(&audit)?.0
    };
    let subject = Subject::sha256(
        format!("{}@{new_digest}", built.workload),
        sha(&new_digest)?,
    );
    let observed = Observed {
        workload: built.workload.clone(),
        repository: format!("oci-image:{digest}"),
        commit: built.commit.clone(),
        run_id: format!("rebase-of-{}", image.manifest_digest.hex()),
        chain: "rebase".to_owned(),
        stage: "rebase".to_owned(),
        stage_kind: "rebase".to_owned(),
        command: Some(format!(
            "cairn rebase {digest} --onto {}@{}",
            new_base.name, new_base.digest
        )),
        started_ms,
        finished_ms: now_ms(),
        exit_code: Some(0),
        logs: Vec::new(),
        base_images: vec![
            NamedDigest::new(
                format!("previous catalog base {}", old_base.name),
                sha(&old_base.digest)?,
            ),
            NamedDigest::new(
                format!("catalog base {}", new_base.name),
                sha(&new_base.digest)?,
            ),
            NamedDigest::new(format!("rebased image {}", built.workload), sha(&digest)?),
        ],
        failed_tests: Vec::new(),
        tests: None,
        artifacts: vec![subject.clone()],
        triggered_by: None,
        change: Vec::new(),
    };
    let statement = Statement::provenance(&observed, &builder)?;
    let (provenance, _) = sign_and_keep(
        data,
        store,
        &key,
        &statement,
        Filed {
            run: None,
            stage: None,
            subject_name: &subject.name,
            subject_digest: &new_digest,
        },
    )?;
    // The rebased image's own SBOM and scan: the gates ask for them about
    // exactly this digest.
    let mut notes = Vec::new();
    let mut source = source_of(data, store, &built.workload, &built.commit, &mut notes);
    if let Some(source) = &mut source {
        carry_crate_licences(data, store, &digest, &built.workload, source, &mut notes);
    }
    let rootfs = images.rootfs(&rebased)?;
    let commit_time_ms = built.created_at_ms;
    let inventory = image_inventory::inventory(
        store,
        image_inventory::Subject {
            what: "the rebased image",
            workload: &built.workload,
            digest: &new_digest,
            rootfs: &rootfs,
            source,
            time_ms: commit_time_ms,
        },
        &mut |note| notes.push(note.to_owned()),
    )?;
    let filed = Filed {
        run: None,
        stage: None,
        subject_name: &subject.name,
        subject_digest: &new_digest,
    };
    let sbom_statement = Statement::new(vec![subject.clone()], CycloneDxBom(inventory.bom))?;
    let (sbom, _) = sign_and_keep(data, store, &key, &sbom_statement, filed)?;
    let scan_statement = Statement::new(vec![subject.clone()], inventory.scan)?;
    let filed = Filed {
        run: None,
        stage: None,
        subject_name: &subject.name,
        subject_digest: &new_digest,
    };
    let (scan, _) = sign_and_keep(data, store, &key, &scan_statement, filed)?;
    Ok(Rebased {
        image: rebased,
        record,
        old_base,
        new_base,
        provenance,
        sbom,
        scan,
        notes,
    })
}

/// The components of the source `commit` of `workload` was built from, read
/// from its onboarded repository; `None` (noted) when it cannot be read.
fn source_of(
    data: &DataDir,
    store: &dyn Store,
    workload: &str,
    commit: &str,
    notes: &mut Vec<String>,
) -> Option<inventory::Collected> {
    let read = || -> Result<inventory::Collected, EngineError> {
        let record = store.workload(workload)?.ok_or_else(|| {
            EngineError::Store(cairn_store::StoreError::NotFound {
                what: "workload",
                id: workload.to_owned(),
            })
        })?;
        let dir = std::path::Path::new(&record.repo);
        let top = git::top_level(dir)?;
        let prefix = git::prefix(dir)?;
        let tmp = scratch_dir(data)?;
        git::materialise(&top, commit, &prefix, tmp.path())?;
        // The inventory leaves out what that commit's cairn.toml excludes, as
        // the run that built the image did; a cairn.toml that cannot be read
        // or parsed excludes nothing.
        let exclude = cairn_fs::Dir::open(tmp.path())
            .and_then(|d| d.file_beneath(cairn_model::config::WORKLOAD_FILE))
            .and_then(|f| f.read_bounded(1024 * 1024))
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| {
                cairn_model::config::parse_workload(cairn_model::config::WORKLOAD_FILE, &text).ok()
            })
            .map(|w| w.sbom_exclude)
            .unwrap_or_default();
        Ok(inventory::collect_tree(inventory::Tree::walk_source(
            tmp.path(),
            &[],
            &exclude,
        )?))
    };
    match read() {
        Ok(collected) => Some(collected),
        Err(e) => {
            notes.push(format!(
                "the source of {workload} at {commit} was not read ({}); the SBOM covers the image only",
                cairn_model::error_chain(&e)
            ));
            None
        }
    }
}

/// The licences the image's own verified SBOM states for the registry crates
/// of its source: the archives its run's fetch read them from went with that
/// run's workspace, and the rebased image is of the same commit (so the same
/// lockfile and crates, matched by purl). Only a signed SPDX expression is
/// carried; anything else leaves the crate without a licence.
fn carry_crate_licences(
    data: &DataDir,
    store: &dyn Store,
    digest: &str,
    workload: &str,
    source: &mut inventory::Collected,
    notes: &mut Vec<String>,
) {
    let checked = crate::verified::Trust::read_only(data)
        .and_then(|trust| crate::verified::about_artifact(store, &trust, digest, workload));
    let checked = match checked {
        Ok((checked, _)) => checked,
        Err(e) => {
            notes.push(format!(
                "crate licences: the SBOM of {digest} could not be verified, so its crates keep none: {}",
                cairn_model::error_chain(&e)
            ));
            return;
        }
    };
    let mut signed: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    for c in checked.iter().filter(|c| {
        c.predicate_type() == <CycloneDxBom as cairn_evidence::Predicate>::PREDICATE_TYPE
    }) {
        for (purl, entry) in crate::policy_params::sbom_licence_entries(&c.statement["predicate"]) {
            if purl.starts_with("pkg:cargo/")
                && let Some(expression) = entry.expression
            {
                signed.entry(purl).or_insert(expression);
            }
        }
    }
    let mut given = 0;
    for c in &mut source.report.components {
        if c.ecosystem == cairn_sbom::Ecosystem::Cargo
            && c.licence == cairn_sbom::Licence::NotGiven
            && let Some(expression) = signed.get(&c.purl)
        {
            c.licence = cairn_sbom::Licence::Expression(expression.clone());
            given += 1;
        }
    }
    if given > 0 {
        notes.push(format!(
            "crate licences: {given} registry crates of the source keep the licence the verified SBOM of {digest} states"
        ));
    }
}

/// A fresh directory under the data directory's workspaces, removed when dropped.
pub(crate) fn scratch_dir(data: &DataDir) -> Result<TempDir, EngineError> {
    data.prepare_sandbox_dir()?;
    let base = data.workspaces();
    std::fs::create_dir_all(&base).map_err(EngineError::io("create", &base))?;
    for _ in 0..16 {
        let mut bytes = [0u8; 8];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| EngineError::NoRandomness)?;
        let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let path = base.join(format!("cairn-rebase-{name}"));
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(TempDir(path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(EngineError::io("create", path)(e)),
        }
    }
    Err(EngineError::io("create", base)(std::io::Error::other(
        "no free name",
    )))
}

/// A directory removed (best effort) when dropped.
pub(crate) struct TempDir(std::path::PathBuf);

impl TempDir {
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The image row's workload and commit are exactly what this installation's
/// (`builder`'s) verified provenance about `digest` signs, and every bundle filed under it verifies;
/// otherwise the rebase is refused, naming why.
pub(crate) fn check_signed_origin(
    data: &DataDir,
    store: &dyn Store,
    builder: &str,
    digest: &str,
    built: &ImageRecord,
    reference: &str,
) -> Result<(), EngineError> {
    let (trust, _) = crate::verified::Trust::load(data)?;
    let (checked, failures) =
        crate::verified::about_artifact(store, &trust, digest, &built.workload)?;
    let refuse = |why: String| EngineError::BadDeployTarget {
        why: format!("cannot rebase {reference}: {why}"),
    };
    if let Some(f) = failures.first() {
        return Err(refuse(format!(
            "bundle {} failed verification: {}",
            f.evidence.unwrap_or_default(),
            f.reason
        )));
    }
    let signed: std::collections::BTreeSet<String> = checked
        .iter()
        .filter(|c| c.facts.builder.as_deref() == Some(builder))
        .map(|c| {
            format!(
                "{} commit {}",
                c.facts.workload.as_deref().unwrap_or("?"),
                c.facts.commit.as_deref().unwrap_or("?")
            )
        })
        .collect();
    let expected = format!("{} commit {}", built.workload, built.commit);
    if signed.len() != 1 || !signed.contains(&expected) {
        return Err(refuse(format!(
            "its signed provenance does not say it was built from {expected} (it says: {})",
            if signed.is_empty() {
                "nothing".to_owned()
            } else {
                signed.into_iter().collect::<Vec<_>>().join("; ")
            }
        )));
    }
    Ok(())
}
