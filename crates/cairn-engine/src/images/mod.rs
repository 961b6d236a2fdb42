//! Images in the engine: the data directory's OCI layout, the base-image catalog
//! ([`catalog`]), the release candidate a run builds and tests
//! ([`release_candidate`]), rebase, and the `local` deploy target ([`deploy_local`]).

pub mod catalog;
pub mod deploy_local;
pub mod image_inventory;
pub mod rebase;
pub mod registry;
pub(crate) mod release_candidate;

use std::path::{Path, PathBuf};

use cairn_model::BaseRecord;
use cairn_oci::{Digest, Image, Layout, UnpackLimits};
use cairn_sandbox::{ImageNetwork, ImageSandboxSpec};
use cairn_store::Store;

use crate::{DataDir, EngineError};

/// The ref prefix of catalog bases in the layout (`base/<name>`).
const BASE_REF: &str = "base/";

/// The data directory's images: one OCI image layout for every image cairn built
/// or imported, and a cache of unpacked root filesystems for the sandbox.
#[derive(Debug)]
pub struct Images {
    layout: Layout,
    rootfs_cache: PathBuf,
}

impl Images {
    /// Opens (creating on first use) `<data>/oci`.
    pub fn open(data: &DataDir) -> Result<Images, EngineError> {
        std::fs::create_dir_all(data.root()).map_err(EngineError::io("create", data.root()))?;
        Ok(Images {
            layout: Layout::open_or_create(&data.images())?,
            rootfs_cache: data.rootfs_cache(),
        })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The image with manifest `digest` (`sha256:…`), verified.
    pub fn image(&self, digest: &str) -> Result<Image, EngineError> {
        let d = Digest::parse(digest).map_err(|_| EngineError::ImageNotFound {
            reference: digest.to_owned(),
            why: "not a sha256 digest".into(),
        })?;
        if !self.layout.has_blob(&d) {
            return Err(EngineError::ImageNotFound {
                reference: digest.to_owned(),
                why: "not in the image store of this data directory".to_owned(),
            });
        }
        Ok(self.layout.image(&d)?)
    }

    /// Finds an image by digest, a layout ref (`hello-web:run-3`), or a unique
    /// digest prefix of at least 12 hex digits.
    pub fn find(&self, reference: &str) -> Result<Image, EngineError> {
        if reference.starts_with("sha256:") && reference.len() == 71 {
            return self.image(reference);
        }
        if let Ok(desc) = self.layout.resolve(reference) {
            return self.image(desc.digest().as_ref());
        }
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        if hex.len() >= 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut found: Vec<String> = Vec::new();
            for (_, desc) in self.layout.refs()? {
                let d = desc.digest().to_string();
                if d.trim_start_matches("sha256:").starts_with(hex) && !found.contains(&d) {
                    found.push(d);
                }
            }
            if found.len() == 1 {
                return self.image(&found[0]);
            }
        }
        Err(EngineError::ImageNotFound {
            reference: reference.to_owned(),
            why: "no image with that digest or name (`cairn image list` shows them)".into(),
        })
    }

    /// The catalog base `name` (pinned to `digest` when given): its record and image.
    pub fn base(
        &self,
        store: &dyn Store,
        name: &str,
        digest: Option<&str>,
    ) -> Result<(BaseRecord, Image), EngineError> {
        let entries = store.base_history(name)?;
        let record = match digest {
            None => entries.into_iter().next(),
            Some(d) => entries.into_iter().find(|b| b.digest == d),
        }
        .ok_or_else(|| EngineError::BaseNotInCatalog {
            name: match digest {
                Some(d) => format!("{name}@{d}"),
                None => name.to_owned(),
            },
        })?;
        let image = self.image(&record.digest)?;
        Ok((record, image))
    }

    /// The ref a catalog base has in the layout.
    pub fn base_ref(name: &str) -> String {
        format!("{BASE_REF}{name}")
    }

    /// The image's root filesystem, unpacked once into the cache (safely: see
    /// [`cairn_oci::unpack`]) and reused; readable by the sandbox user.
    pub fn rootfs(&self, image: &Image) -> Result<PathBuf, EngineError> {
        let dir = self.rootfs_cache.join(image.manifest_digest.hex());
        if dir.join(".cairn-complete").is_file() {
            return Ok(dir);
        }
        create_traversable(&self.rootfs_cache)?;
        let tmp = self.rootfs_cache.join(format!(
            ".tmp-{}-{}",
            image.manifest_digest.hex(),
            std::process::id()
        ));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(EngineError::io("clear", &tmp))?;
        }
        create_traversable(&tmp)?;
        cairn_oci::unpack(&self.layout, image, &tmp, UnpackLimits::default())?;
        {
            // The image's `/`: readable by the sandbox user, like any root.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
                .map_err(EngineError::io("chmod", &tmp))?;
        }
        std::fs::write(tmp.join(".cairn-complete"), b"").map_err(EngineError::io("write", &tmp))?;
        // Another process may have finished the same unpack meanwhile (and may be
        // running from it): keep theirs. Only an incomplete leftover is replaced.
        if dir.join(".cairn-complete").is_file() {
            std::fs::remove_dir_all(&tmp).map_err(EngineError::io("clear", &tmp))?;
            return Ok(dir);
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(EngineError::io("clear", &dir))?;
        }
        if let Err(e) = std::fs::rename(&tmp, &dir) {
            // Lost a race to a complete copy: use it.
            if dir.join(".cairn-complete").is_file() {
                std::fs::remove_dir_all(&tmp).map_err(EngineError::io("clear", &tmp))?;
                return Ok(dir);
            }
            return Err(EngineError::io("rename", &tmp)(e));
        }
        Ok(dir)
    }
}

/// How `image` runs in the sandbox from its unpacked `rootfs`: its entrypoint and
/// cmd; its env, with `set` replacing or adding variables and a default `PATH`;
/// its working directory when the rootfs has it (else `/`); the ids its `USER`
/// names (on the host it is always the sandbox user). `None` when the image names
/// nothing to run.
pub(crate) fn sandbox_spec(
    rootfs: &Path,
    image: &Image,
    set: &[(&str, String)],
    network: ImageNetwork,
) -> Result<Option<ImageSandboxSpec>, EngineError> {
    let config = image.config.config().clone().unwrap_or_default();
    let mut argv: Vec<String> = config.entrypoint().clone().unwrap_or_default();
    argv.extend(config.cmd().clone().unwrap_or_default());
    if argv.is_empty() {
        return Ok(None);
    }
    let mut env: Vec<(String, String)> = config
        .env()
        .clone()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .filter(|(k, _)| !set.iter().any(|(name, _)| name == k))
        .collect();
    env.extend(set.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    }
    let working_dir = config
        .working_dir()
        .clone()
        .filter(|w| {
            // Resolved inside the image's root, never on the host's.
            cairn_fs::Dir::open(rootfs)
                .and_then(|root| root.open_in_root(w))
                .is_ok_and(|node| matches!(node, cairn_fs::Node::Dir(_)))
        })
        .unwrap_or_else(|| "/".to_owned());
    let mut spec = ImageSandboxSpec::new(rootfs, argv);
    if let Some(user) = config.user().as_deref().filter(|u| !u.is_empty()) {
        let (uid, gid) = cairn_sandbox::image_user_ids(rootfs, user)?;
        spec.uid = uid;
        spec.gid = gid;
    }
    spec.env = env;
    spec.working_dir = working_dir.into();
    spec.network = network;
    Ok(Some(spec))
}

/// A directory others may traverse but not list (the sandbox user walks through).
pub(crate) fn create_traversable(path: &Path) -> Result<(), EngineError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(path)
        .map_err(EngineError::io("create", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o711))
        .map_err(EngineError::io("chmod", path))
}
