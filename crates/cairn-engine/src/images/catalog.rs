//! The base-image catalog. A base enters it only through these steps: the source
//! is resolved to one pinned digest (a registry reference must be on the
//! organisation's allow-list and pinned by digest; Docker Hub never), every blob is
//! verified and the layers are unpacked safely ([`Candidate`]); the caller then
//! makes its SBOM and scan, and [`admit`] applies the catalog's gate (the
//! default policy's licence and vulnerability rules with the organisation's
//! parameters, `crate::policy_params::catalog_denials`), signs the SBOM as evidence about the
//! digest, records it in the audit log, and only then names the base.

use std::path::{Path, PathBuf};

use cairn_evidence::sbom::CycloneDxBom;
use cairn_evidence::{Bundle, Predicate, SigningKey, Statement, Subject};
use cairn_model::BaseRecord;
use cairn_model::config::{OrgConfig, is_valid_name};
use cairn_model::image_ref::ImageRef;
use cairn_oci::Image;
use cairn_store::Store;

use super::Images;
use crate::audit::{AuditLog, CatalogChange, Change, LOCK_WAIT};
use crate::certify::{Filed, sign_and_keep};
use crate::host::now_ms;
use crate::keys::KeyStore;
use crate::{DataDir, EngineError};

/// The predicate type of an SBOM statement (CycloneDX).
pub const CYCLONEDX_PREDICATE: &str = CycloneDxBom::PREDICATE_TYPE;

/// Where a base comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseSource {
    /// An OCI image layout directory, and the ref inside it (when it holds several).
    Layout {
        dir: PathBuf,
        reference: Option<String>,
    },
    /// A root filesystem: a directory or a tarball (e.g. from `mmdebstrap`).
    Rootfs(PathBuf),
    /// A registry reference, pinned by digest, from an allowed registry.
    Registry(ImageRef),
    /// A root filesystem cairn made itself (`cairn base create`) by a recipe
    /// ([`super::recipe::run_recipe`]), kept with the catalog entry.
    Created {
        rootfs: PathBuf,
        recipe: cairn_model::BaseRecipe,
    },
}

impl BaseSource {
    /// Reads `text`: `oci:DIR[:REF]`, an existing directory holding an
    /// `oci-layout` file, an existing directory or file (a root filesystem), else a
    /// registry reference — which must not be Docker Hub, must be on `org`'s
    /// allow-list and must be pinned by digest.
    pub fn parse(text: &str, org: &OrgConfig) -> Result<BaseSource, EngineError> {
        if let Some(rest) = text.strip_prefix("oci:") {
            let (dir, reference) = match rest.rsplit_once(':') {
                Some((dir, r)) if Path::new(dir).is_dir() => (dir, Some(r.to_owned())),
                _ => (rest, None),
            };
            return Ok(BaseSource::Layout {
                dir: PathBuf::from(dir),
                reference,
            });
        }
        let path = Path::new(text);
        if path.is_dir() && path.join("oci-layout").is_file() {
            return Ok(BaseSource::Layout {
                dir: path.to_path_buf(),
                reference: None,
            });
        }
        if path.exists() {
            return Ok(BaseSource::Rootfs(path.to_path_buf()));
        }
        let reference = ImageRef::parse(text)?;
        reference.check_allowed(&org.registries, true)?;
        Ok(BaseSource::Registry(reference))
    }

    /// How the catalog records the source.
    pub fn describe(&self) -> String {
        match self {
            BaseSource::Layout { dir, reference } => match reference {
                Some(r) => format!("oci:{}:{r}", dir.display()),
                None => format!("oci:{}", dir.display()),
            },
            BaseSource::Rootfs(path) => format!("rootfs:{}", path.display()),
            BaseSource::Registry(r) => r.to_string(),
            BaseSource::Created { recipe, .. } => format!("created: {}", recipe.describe()),
        }
    }
}

/// A base on its way into the catalog: in the layout (not yet named) and unpacked.
#[derive(Debug)]
pub struct Candidate {
    pub name: String,
    pub source: BaseSource,
    pub image: Image,
    /// Its root filesystem, unpacked (for the SBOM).
    pub rootfs: PathBuf,
}

/// Pulls a registry reference into the layout and returns its manifest digest
/// (see [`super::registry::pull`]).
pub type Puller<'a> = &'a dyn Fn(&ImageRef) -> Result<String, EngineError>;

/// Brings `source` into the layout and unpacks it. Nothing is named yet.
pub fn stage(
    images: &Images,
    name: &str,
    source: BaseSource,
    registry: Option<Puller<'_>>,
) -> Result<Candidate, EngineError> {
    if !is_valid_name(name) {
        return Err(EngineError::BadBaseName {
            name: name.to_owned(),
        });
    }
    let image = match &source {
        BaseSource::Layout { dir, reference } => {
            cairn_oci::import_layout(images.layout(), dir, reference.as_deref())?
        }
        // A root filesystem has no time of its own: epoch 0 keeps it
        // reproducible (a tarball keeps its files' times, normalised
        // otherwise). One cairn made has its recipe's SOURCE_DATE_EPOCH.
        BaseSource::Rootfs(path) => {
            cairn_oci::import_rootfs_clamped(images.layout(), path, 0, None)?
        }
        BaseSource::Created { rootfs, recipe } => {
            cairn_oci::import_rootfs(images.layout(), rootfs, recipe.source_date_epoch())?
        }
        BaseSource::Registry(reference) => {
            let pull = registry.ok_or_else(|| EngineError::NoRegistryClient {
                reference: reference.to_string(),
            })?;
            let digest = pull(reference)?;
            images.image(&digest)?
        }
    };
    let rootfs = images.rootfs(&image)?;
    Ok(Candidate {
        name: name.to_owned(),
        source,
        image,
        rootfs,
    })
}

/// Checks a publisher's signature over `candidate`: when the organisation names
/// base signers, one of `bundles` (Sigstore bundles of an in-toto statement whose
/// subject is the candidate's manifest digest, signed with a publisher's key) must
/// verify. `Ok(None)` when no signer is configured; `Ok(Some(key id))` when one
/// verified; `Err(reason)` otherwise (the catalog then refuses).
pub fn check_signature(
    org: &OrgConfig,
    candidate: &Candidate,
    bundles: &[Vec<u8>],
) -> Result<Option<String>, String> {
    if org.base_signers.is_empty() {
        return Ok(None);
    }
    let mut keys = Vec::new();
    for path in &org.base_signers {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the base signer key {path}: {e}"))?;
        let key = cairn_evidence::VerifyingKey::from_pem(&text)
            .map_err(|e| format!("{path} is not a public key cairn can use: {e}"))?;
        keys.push(key);
    }
    if bundles.is_empty() {
        return Err(format!(
            "rule base-signature: the organisation requires a publisher's signature over {} and none was given (--signature FILE, or attached in the registry)",
            candidate.image.manifest_digest
        ));
    }
    let hex = candidate.image.manifest_digest.hex();
    for bytes in bundles {
        let Ok(bundle) = Bundle::from_json(bytes) else {
            continue;
        };
        for key in &keys {
            let Ok(payload) = bundle.verify(key) else {
                continue;
            };
            let Ok(statement) = serde_json::from_slice::<serde_json::Value>(payload) else {
                continue;
            };
            let about = statement["subject"].as_array().is_some_and(|subjects| {
                subjects
                    .iter()
                    .any(|s| s["digest"]["sha256"].as_str() == Some(hex.as_str()))
            });
            if about {
                return Ok(Some(key.key_id().to_string()));
            }
        }
    }
    Err(format!(
        "rule base-signature: no signature over {} verifies with the organisation's base signers ({} keys)",
        candidate.image.manifest_digest,
        keys.len()
    ))
}

/// What the caller established about a candidate: its SBOM and scan.
#[derive(Debug, Clone)]
pub struct Vetting {
    /// The CycloneDX document.
    pub sbom: serde_json::Value,
    pub packages: u64,
    /// Its OS packages, `name=version` ([`super::recipe::package_list`]).
    pub package_list: Vec<String>,
    /// Known vulnerabilities, with their severity ratings (`low` … `critical`, or
    /// `unknown`).
    pub vulnerabilities: Vec<(String, String)>,
    /// The publisher's signature check ([`check_signature`]).
    pub signature: Result<Option<String>, String>,
}

/// What [`admit`] decided.
#[derive(Debug)]
pub enum Admission {
    Admitted {
        record: Box<BaseRecord>,
        /// The evidence id of the signed SBOM statement.
        evidence: i64,
        /// The digest the name had before (kept in its history).
        replaces: Option<String>,
        /// The index of the `catalog-change` entry in the audit log.
        log_index: u64,
    },
    /// The gate said no; nothing was named.
    Refused { reasons: Vec<String> },
}

/// The catalog's gate, then signed evidence, then a `catalog-change` entry in
/// the audit log (naming the digest the name replaces), and only then the name.
/// `actor` is who asked (authorised for `change-catalog` by the caller; `None`
/// only while the organisation has no identities). A name keeps its history:
/// the store appends, never overwrites.
pub fn admit(
    data: &DataDir,
    store: &dyn Store,
    images: &Images,
    org: &OrgConfig,
    candidate: &Candidate,
    vetting: &Vetting,
    actor: Option<&cairn_policy::Identity>,
) -> Result<Admission, EngineError> {
    let mut reasons = Vec::new();
    if let Err(why) = &vetting.signature {
        reasons.push(why.clone());
    }
    // The default policy with the organisation's `[policy.params]`: licences,
    // and vulnerabilities at `[base] max_severity` when set.
    let builder = crate::audit::gate_builder_id(data, org.builder_id.as_deref())?;
    reasons.extend(crate::policy_params::catalog_denials(
        store,
        org,
        &builder,
        (
            &candidate.name,
            &candidate.image.manifest_digest.to_string(),
        ),
        &vetting.sbom,
    ));
    if !reasons.is_empty() {
        return Ok(Admission::Refused { reasons });
    }
    let digest = candidate.image.manifest_digest.to_string();
    let replaces = store
        .base_history(&candidate.name)?
        .into_iter()
        .next()
        .map(|current| current.digest);
    let key: SigningKey = {
        let audit = AuditLog::open_waiting(data, LOCK_WAIT)?;
        KeyStore::new(data).load_or_create(&audit)?.0
    };
    let subject = Subject::sha256(
        format!("base {}@{digest}", candidate.name),
        candidate.image.manifest_digest,
    );
    let statement = Statement::new(vec![subject], CycloneDxBom(vetting.sbom.clone()))?;
    let (evidence, _) = sign_and_keep(
        data,
        store,
        &key,
        &statement,
        Filed {
            run: None,
            stage: None,
            subject_name: &format!("base {}", candidate.name),
            subject_digest: &digest,
        },
    )?;
    let record = BaseRecord {
        name: candidate.name.clone(),
        digest,
        source: candidate.source.describe(),
        imported_at_ms: now_ms(),
        packages: vetting.packages,
        vulnerabilities: vetting.vulnerabilities.len() as u64,
        recipe: match &candidate.source {
            BaseSource::Created { recipe, .. } => Some(recipe.clone()),
            _ => None,
        },
        package_list: vetting.package_list.clone(),
    };
    // The change is durable in the log before the name moves.
    let receipt =
        AuditLog::open_waiting(data, LOCK_WAIT)?.record(&Change::Catalog(CatalogChange {
            name: record.name.clone(),
            digest: record.digest.clone(),
            replaces: replaces.clone(),
            source: record.source.clone(),
            actor: actor.map(|a| a.name.clone()),
        }))?;
    images.layout().set_ref(
        &Images::base_ref(&candidate.name),
        &candidate.image.descriptor()?,
    )?;
    store.add_base(&record)?;
    Ok(Admission::Admitted {
        record: Box::new(record),
        evidence,
        replaces,
        log_index: receipt.index,
    })
}
