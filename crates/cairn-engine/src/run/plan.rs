//! What a run needs resolved before it exists: cairn's signing key (no key or
//! no log, no certified run), the release candidate's catalog base and the
//! build image the steps run in, each checked against the catalog.

use std::path::PathBuf;

use super::{BuiltImage, Engine, Signer};
use crate::audit::{AuditLog, LOCK_WAIT};
use crate::images::Images;
use crate::keys::KeyStore;
use crate::workload_source::LoadedWorkload;
use crate::{EngineError, git};

impl Engine {
    /// What certifies a run and the image plan, before the run exists: no key or
    /// no log, no certified run.
    pub(super) fn prepare(&self, loaded: &LoadedWorkload) -> Result<(Signer, Plan), EngineError> {
        // The log is held only while recording (see `certify::sign_and_keep`), so runs
        // and commands sharing the data directory take turns appending.
        let key = {
            let audit = AuditLog::open_waiting(&self.data, LOCK_WAIT)?;
            KeyStore::new(&self.data).load_or_create(&audit)?.0
        };
        let signer = Signer {
            key,
            data: self.data.clone(),
            logged: std::cell::RefCell::default(),
        };
        let plan = Plan {
            image: self.image_plan(loaded)?,
            build_image: self.build_image(loaded)?,
        };
        Ok((signer, plan))
    }

    /// The workload's build image (`[build] image`): a catalog base the catalog
    /// admitted (its signed admission verifies against cairn's keys and log),
    /// unpacked; checked before the run exists, so a missing or unadmitted one
    /// is refused naming it, before any work. `None`: the host's `/usr`.
    pub(crate) fn build_image(
        &self,
        loaded: &LoadedWorkload,
    ) -> Result<Option<BuildImage>, EngineError> {
        let Some(wanted) = &loaded.workload.build_image else {
            return self.org_build_image(loaded);
        };
        let images = Images::open(&self.data)?;
        let (record, image) = match images.base(
            &*self.store,
            &wanted.name,
            wanted.digest.as_deref(),
        ) {
            Ok(base) => base,
            Err(EngineError::BaseNotInCatalog { name }) => {
                return Err(loaded
                        .config_error(
                            wanted.span.clone(),
                            format!("build image `{name}` is not in the organisation's catalog"),
                            "`cairn base list` shows the catalog; `cairn base create debian --name NAME --include TOOLS` makes a toolchain base",
                        )
                        .into());
            }
            Err(e) => return Err(e),
        };
        let (trust, _) = crate::verified::Trust::load(&self.data)?;
        if let Err(why) = crate::verified::catalog_admitted(&*self.store, &trust, &record.digest)? {
            return Err(loaded
                .config_error(
                    wanted.span.clone(),
                    format!(
                        "build image `{}` ({}) did not pass the catalog's gate: {why}",
                        record.name, record.digest
                    ),
                    "build only on a base the catalog admitted: `cairn base create` / `cairn base import` it again",
                )
                .into());
        }
        let rootfs = images.rootfs(&image)?;
        Ok(Some(BuildImage {
            name: record.name,
            digest: record.digest,
            rootfs,
            why: "named by [build] image".to_owned(),
        }))
    }

    /// The build image org.toml's `[build.images]` maps the workload's
    /// ecosystem to (detected from the app directory's names at the commit),
    /// validated as [`Engine::build_image`] does; `None` when it maps none.
    fn org_build_image(&self, loaded: &LoadedWorkload) -> Result<Option<BuildImage>, EngineError> {
        if loaded.org.build_images.is_empty() {
            return Ok(None);
        }
        let names = git::names_at(
            &loaded.repo,
            &loaded.commit,
            &loaded.prefix,
            crate::onboard::MAX_ROOT_ENTRIES,
        )?;
        let Some(recipe) = cairn_model::ecosystem::detect(names.iter().map(String::as_str)) else {
            return Ok(None);
        };
        let ecosystem = recipe.ecosystem.name();
        let Some(name) = loaded.org.build_images.get(ecosystem) else {
            return Ok(None);
        };
        let why_used =
            format!("org.toml [build.images] maps the detected ecosystem {ecosystem} to it");
        let refused = |why: String| EngineError::BuildImageRefused {
            name: name.clone(),
            why_used: why_used.clone(),
            why,
        };
        let images = Images::open(&self.data)?;
        let (record, image) = match images.base(&*self.store, name, None) {
            Ok(base) => base,
            Err(EngineError::BaseNotInCatalog { .. }) => {
                return Err(refused(
                    "it is not in the organisation's catalog (`cairn base list`)".to_owned(),
                ));
            }
            Err(e) => return Err(e),
        };
        let (trust, _) = crate::verified::Trust::load(&self.data)?;
        if let Err(why) = crate::verified::catalog_admitted(&*self.store, &trust, &record.digest)? {
            return Err(refused(format!(
                "{} did not pass the catalog's gate: {why}",
                record.digest
            )));
        }
        let rootfs = images.rootfs(&image)?;
        Ok(Some(BuildImage {
            name: record.name,
            digest: record.digest,
            rootfs,
            why: why_used,
        }))
    }

    /// A workload with an image builds only on a catalog base: checked before the
    /// run exists, so a missing base is refused before any work.
    pub(super) fn image_plan(
        &self,
        loaded: &LoadedWorkload,
    ) -> Result<Option<ImagePlan>, EngineError> {
        let Some(config) = &loaded.workload.image else {
            return Ok(None);
        };
        let images = Images::open(&self.data)?;
        let base = match images.base(&*self.store, &config.base, config.base_digest.as_deref()) {
            Ok(base) => base,
            Err(EngineError::BaseNotInCatalog { name }) => {
                return Err(loaded
                    .config_error(
                        config.base_span.clone(),
                        format!("base `{name}` is not in the organisation's catalog"),
                        "`cairn base list` shows the catalog; `cairn base import` adds a validated base",
                    )
                    .into());
            }
            Err(e) => return Err(e),
        };
        Ok(Some(ImagePlan {
            images,
            base,
            retest: None,
        }))
    }
}

/// The image a run will build: the layout and the catalog base, resolved before
/// the run started.
pub(super) struct ImagePlan {
    pub(super) images: Images,
    pub(super) base: (cairn_model::BaseRecord, cairn_oci::Image),
    /// A retest ([`Engine::retest`]): the image under test, which the build
    /// stage does not rebuild (a rebase of an image of this commit, with its
    /// own provenance, SBOM and scan).
    pub(super) retest: Option<BuiltImage>,
}

/// What a run needs resolved before it exists.
pub(super) struct Plan {
    /// The RC's catalog base, when the workload has an image.
    pub(super) image: Option<ImagePlan>,
    /// The build image, when the workload names one.
    pub(super) build_image: Option<BuildImage>,
}

/// A catalog base the fetch, build and test stages run in (see
/// [`cairn_sandbox::SandboxSpec::system_root`]), and a remediation's
/// dependency bump too (`remediation.rs`), so its tool is the build's.
pub(crate) struct BuildImage {
    pub(crate) name: String,
    /// Its manifest digest, `sha256:…`.
    pub(crate) digest: String,
    /// Its unpacked root filesystem (the checked cache).
    pub(crate) rootfs: PathBuf,
    /// Why this one: the workload named it, or org.toml mapped its ecosystem.
    pub(crate) why: String,
}
