//! What a run needs resolved before it exists: cairn's signing key (no key or
//! no log, no certified run), the release candidate's catalog base and the
//! build image the steps run in, each checked against the catalog.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cairn_evidence::SigningKey;

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
        let signer = Signer {
            key: self.signing_key()?,
            data: self.data.clone(),
            logged: std::cell::RefCell::default(),
            signed: std::cell::RefCell::default(),
        };
        let plan = Plan {
            image: self.image_plan(loaded)?,
            build_image: self.build_image(loaded)?,
        };
        Ok((signer, plan))
    }

    /// cairn's signing key: read (and created, logged first, when there is
    /// none) by this engine's first run, with the audit log opened to check
    /// it opens; then the same key while its files are unchanged on disk
    /// (see [`KeyCache`]), read again the moment either changes.
    fn signing_key(&self) -> Result<Arc<SigningKey>, EngineError> {
        let keys = KeyStore::new(&self.data);
        let stamp = key_stamp(&keys)?;
        let mut cached = self
            .key_cache
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let (Some(now), Some((then, key))) = (stamp, cached.as_ref())
            && now == *then
        {
            return Ok(key.clone());
        }
        // The log is held only while recording (see `certify::sign_and_keep`), so runs
        // and commands sharing the data directory take turns appending.
        let (key, created) = {
            let audit = AuditLog::open_waiting(&self.data, LOCK_WAIT)?;
            keys.load_or_create(&audit)?
        };
        let key = Arc::new(key);
        // Stamped as the files were before the key was read (a change while
        // it was read is read again next time), or after, when it was made now.
        let stamp = if created { key_stamp(&keys)? } else { stamp };
        *cached = stamp.map(|stamp| (stamp, key.clone()));
        Ok(key)
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

/// The signing key an engine read, with the stamp of its files then
/// ([`key_stamp`]): its runs share it while the stamp is unchanged. A key
/// rotated, replaced, moved into a token or made readable by others changes
/// the stamp (a new file, or a new change time), so the next run reads it
/// again, with every check [`KeyStore::load`] makes.
#[derive(Default)]
pub(super) struct KeyCache(Mutex<Option<(KeyStamp, Arc<SigningKey>)>>);

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCache")
    }
}

/// What identifies a file's content and mode without reading it: device,
/// inode, size, modification and change times (nanoseconds) and mode; `None`
/// for a file that is not there.
type FileStamp = Option<[i64; 8]>;

/// The stamps of the key file and the token configuration.
type KeyStamp = [FileStamp; 2];

/// The stamp of the signing key's files, `None` (never reused) when either is
/// something other than a regular file or absent: a symlink's own stamp does
/// not change with what it points to.
fn key_stamp(keys: &KeyStore) -> Result<Option<KeyStamp>, EngineError> {
    let one = |path: &Path| -> Result<Option<FileStamp>, EngineError> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_file() => Ok(Some(Some([
                m.dev() as i64,
                m.ino() as i64,
                m.size() as i64,
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
                i64::from(m.mode()),
            ]))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Some(None)),
            Err(e) => Err(EngineError::io("read", path)(e)),
        }
    };
    let (Some(file), Some(token)) = (
        one(&keys.signing_key_path())?,
        one(&keys.token_config_path())?,
    ) else {
        return Ok(None);
    };
    Ok(Some([file, token]))
}
