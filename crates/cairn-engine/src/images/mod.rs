//! Images in the engine: the data directory's OCI layout, the base-image catalog
//! ([`catalog`]), the release candidate a run builds and tests
//! ([`release_candidate`]) and rebase. The `local` deploy target that runs an
//! image is [`crate::deploy::local`].

pub mod catalog;
pub mod image_inventory;
pub mod rebase;
pub mod recipe;
pub mod refresh;
pub mod registry;
pub(crate) mod release_candidate;
pub mod toolchain;

use std::path::{Path, PathBuf};

use cairn_model::BaseRecord;
use cairn_oci::{Digest, Image, Layout, UnpackLimits};
use cairn_sandbox::{ImageNetwork, ImageSandboxSpec};
use cairn_store::Store;

use crate::{DataDir, EngineError};

/// Fewest hex digits a digest prefix must have to name an image.
pub const MIN_DIGEST_PREFIX: usize = 12;

/// The ref prefix of catalog bases in the layout (`base/<name>`).
const BASE_REF: &str = "base/";

/// The data directory's images: one OCI image layout for every image cairn built
/// or imported, and a cache of unpacked root filesystems for the sandbox.
#[derive(Debug)]
pub struct Images {
    layout: Layout,
    data: DataDir,
    rootfs_cache: PathBuf,
    /// The digest of each cached rootfs's tree, recorded when it was unpacked
    /// (in the data directory, out of the sandbox's and other users' reach).
    rootfs_records: PathBuf,
}

impl Images {
    /// Opens (creating on first use) `<data>/oci`.
    pub fn open(data: &DataDir) -> Result<Images, EngineError> {
        std::fs::create_dir_all(data.root()).map_err(EngineError::io("create", data.root()))?;
        Ok(Images {
            layout: Layout::open_or_create(&data.images())?,
            data: data.clone(),
            rootfs_cache: data.rootfs_cache(),
            rootfs_records: data.root().join("rootfs-digests"),
        })
    }

    /// `<data>/oci` when it exists, creating nothing (`None`: this data
    /// directory has no images yet): for readers that promise to record
    /// nothing (`cairn policy eval`).
    pub fn open_existing(data: &DataDir) -> Result<Option<Images>, EngineError> {
        if !data.images().join("oci-layout").exists() {
            return Ok(None);
        }
        Ok(Some(Images {
            layout: Layout::open(&data.images())?,
            data: data.clone(),
            rootfs_cache: data.rootfs_cache(),
            rootfs_records: data.root().join("rootfs-digests"),
        }))
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
    /// digest prefix of at least [`MIN_DIGEST_PREFIX`] hex digits (a shorter one
    /// is refused with that rule, an ambiguous one with the count).
    pub fn find(&self, reference: &str) -> Result<Image, EngineError> {
        if cairn_oci::Digest::is_valid(reference) {
            return self.image(reference);
        }
        if let Ok(desc) = self.layout.resolve(reference) {
            return self.image(desc.digest().as_ref());
        }
        let hex = reference
            .strip_prefix(cairn_model::digest::SHA256_PREFIX)
            .unwrap_or(reference);
        let is_hex = !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
        if is_hex && hex.len() < MIN_DIGEST_PREFIX {
            return Err(EngineError::ImageNotFound {
                reference: reference.to_owned(),
                why: format!(
                    "a digest prefix needs at least {MIN_DIGEST_PREFIX} hex digits, this one has {} \
                     (`cairn image list` shows the digests)",
                    hex.len()
                ),
            });
        }
        if is_hex {
            let mut found: Vec<String> = Vec::new();
            for (_, desc) in self.layout.refs()? {
                let d = desc.digest().to_string();
                if desc.digest().digest().starts_with(hex) && !found.contains(&d) {
                    found.push(d);
                }
            }
            if found.len() == 1 {
                return self.image(&found[0]);
            }
            if found.len() > 1 {
                return Err(EngineError::ImageNotFound {
                    reference: reference.to_owned(),
                    why: format!(
                        "the prefix matches {} images; give more hex digits",
                        found.len()
                    ),
                });
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

    /// The image's root filesystem, unpacked into the cache (safely: see
    /// [`cairn_oci::unpack`]; group and other write bits stripped) and reused only
    /// while it still matches the digest of the tree recorded when it was
    /// unpacked (in the data directory, which the sandbox never sees): a cached
    /// rootfs that was changed, or has no record, is unpacked again before use.
    /// Root-owned; only the sandbox's group may enter it (see [`private_dir`]).
    pub fn rootfs(&self, image: &Image) -> Result<PathBuf, EngineError> {
        let hex = image.manifest_digest.hex();
        let dir = self.rootfs_cache.join(&hex);
        let record = self.rootfs_records.join(&hex);
        if cached_rootfs_matches(&dir, &record) {
            touch_dir(&dir);
            return Ok(dir);
        }
        // The parent shared by every data directory's cache (root's only).
        self.data.prepare_sandbox_dir()?;
        private_dir(&self.rootfs_cache, false)?;
        let tmp = self
            .rootfs_cache
            .join(format!(".tmp-{hex}-{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(EngineError::io("clear", &tmp))?;
        }
        private_dir(&tmp, false)?;
        cairn_oci::unpack(&self.layout, image, &tmp, UnpackLimits::default())?;
        // The image's `/`: readable by the sandbox user (through its group).
        private_dir(&tmp, true)?;
        let digest = rootfs_digest(&tmp)?;
        // Another process may have finished the same unpack meanwhile (and may be
        // running from it): keep theirs if it verifies. Anything else is replaced.
        if cached_rootfs_matches(&dir, &record) {
            std::fs::remove_dir_all(&tmp).map_err(EngineError::io("clear", &tmp))?;
            return Ok(dir);
        }
        if std::fs::symlink_metadata(&dir).is_ok() {
            std::fs::remove_dir_all(&dir).map_err(EngineError::io("clear", &dir))?;
        }
        std::fs::rename(&tmp, &dir).map_err(EngineError::io("rename", &tmp))?;
        write_record(&self.rootfs_records, &record, &digest)?;
        Ok(dir)
    }
}

/// Marks a cached rootfs as used now (its mtime), so `cairn gc` keeps what is
/// in use: best effort, opened without following a symlink.
fn touch_dir(dir: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()));
}

/// The most bytes hashed when a cached rootfs is checked (the unpack's own bound).
const MAX_ROOTFS_BYTES: u64 = 16 << 30;

/// Whether the rootfs at `dir` hashes to what `record` says.
fn cached_rootfs_matches(dir: &Path, record: &Path) -> bool {
    let Ok(expected) = std::fs::read_to_string(record) else {
        return false;
    };
    matches!(rootfs_digest(dir), Ok(actual) if actual == expected.trim())
}

/// A digest of an unpacked root filesystem that changes with any change an
/// attacker could make: every entry (in path order, never following a symlink)
/// with its type, permission bits, owner and group, a file's size and SHA-256, a
/// symlink's target; and the root directory's own mode and owner.
fn rootfs_digest(dir: &Path) -> Result<String, EngineError> {
    use std::io::Read;
    let root = cairn_fs::Dir::open(dir)?;
    let mut tree = cairn_evidence::Sha256Hasher::new();
    let top = root.meta().map_err(EngineError::io("inspect", dir))?;
    tree.update(format!("/ {:o} {} {}\n", top.mode, top.uid, top.gid).as_bytes());
    let limits = cairn_fs::WalkLimits {
        max_entries: UnpackLimits::default().max_entries,
        max_depth: UnpackLimits::default().max_depth + 1,
        max_path_len: UnpackLimits::default().max_path_len,
    };
    let mut budget = MAX_ROOTFS_BYTES;
    let mut buf = vec![0u8; 1 << 16];
    for entry in cairn_fs::walk(&root, limits, &[])? {
        let m = entry.meta;
        tree.update(format!("{} {:o} {} {} ", m.kind.name(), m.mode, m.uid, m.gid).as_bytes());
        match m.kind {
            cairn_fs::Kind::File => {
                let mut file = root.file_beneath(entry.rel_path())?;
                let mut hasher = cairn_evidence::Sha256Hasher::new();
                let mut len = 0u64;
                loop {
                    let n = file
                        .read(&mut buf)
                        .map_err(EngineError::io("read", file.path()))?;
                    if n == 0 {
                        break;
                    }
                    len += n as u64;
                    budget =
                        budget
                            .checked_sub(n as u64)
                            .ok_or_else(|| cairn_fs::FsError::Limit {
                                path: dir.to_path_buf(),
                                what: "bytes in a cached root filesystem",
                                max: MAX_ROOTFS_BYTES,
                            })?;
                    hasher.update(&buf[..n]);
                }
                tree.update(format!("{len} {} ", hasher.finish().hex()).as_bytes());
            }
            cairn_fs::Kind::Symlink => {
                tree.update(
                    root.read_link_beneath(entry.rel_path())?
                        .as_os_str()
                        .as_encoded_bytes(),
                );
                tree.update(b" ");
            }
            _ => {}
        }
        tree.update(&entry.rel);
        tree.update(b"\n");
    }
    Ok(tree.finish().hex())
}

fn running_as_root() -> bool {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Writes a rootfs record atomically into the data directory's private `dir`.
fn write_record(dir: &Path, record: &Path, digest: &str) -> Result<(), EngineError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(EngineError::io("create", dir))?;
    let tmp = record.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, format!("{digest}\n")).map_err(EngineError::io("write", &tmp))?;
    std::fs::rename(&tmp, record).map_err(EngineError::io("rename", &tmp))
}

/// A directory of the rootfs cache that only root and the sandbox may enter:
/// when cairn is root, owned by root with group [`cairn_sandbox::SANDBOX_GID`]
/// and mode 0710 (0750 with `listable`, for an image's `/`), so the sandbox
/// user can reach and read what it runs, can write nothing, and other users
/// cannot even look; otherwise (the sandbox runs as cairn's own user) 0700.
pub(crate) fn private_dir(path: &Path, listable: bool) -> Result<(), EngineError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(EngineError::io("create", path))?;
    let root = running_as_root();
    let mode = match (root, listable) {
        (true, true) => 0o750,
        (true, false) => 0o710,
        (false, _) => 0o700,
    };
    if root {
        std::os::unix::fs::lchown(path, Some(0), Some(cairn_sandbox::SANDBOX_GID))
            .map_err(EngineError::io("chown", path))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(EngineError::io("chmod", path))
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
    command_spec(rootfs, image, set, network, argv).map(Some)
}

/// [`sandbox_spec`] with `argv` run instead of the image's entrypoint and cmd
/// (an acceptance command inside the release candidate): the image's env with
/// `set` over it, its working directory and its user.
pub(crate) fn command_spec(
    rootfs: &Path,
    image: &Image,
    set: &[(&str, String)],
    network: ImageNetwork,
    argv: Vec<String>,
) -> Result<ImageSandboxSpec, EngineError> {
    let config = image.config.config().clone().unwrap_or_default();
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
    Ok(spec)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// An image from a small rootfs, in a fresh data directory.
    fn image() -> (tempfile::TempDir, Images, Image) {
        let tmp = tempfile::tempdir().unwrap();
        let rootfs = tmp.path().join("src");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::create_dir_all(rootfs.join("app")).unwrap();
        std::fs::write(rootfs.join("etc/passwd"), "nobody:x:65534:65534::/:/x\n").unwrap();
        std::fs::write(rootfs.join("app/run"), "#!/bin/true\n").unwrap();
        let images = Images::open(&DataDir::at(tmp.path().join("data"))).unwrap();
        let image = cairn_oci::import_rootfs(images.layout(), &rootfs, 0).unwrap();
        (tmp, images, image)
    }

    #[test]
    fn a_tampered_cached_rootfs_is_detected_and_unpacked_again_before_use() {
        use std::os::unix::fs::PermissionsExt;
        let (_tmp, images, image) = image();
        let dir = images.rootfs(&image).unwrap();
        let app = dir.join("app/run");
        assert_eq!(std::fs::read_to_string(&app).unwrap(), "#!/bin/true\n");
        // Reuse: the same tree, not unpacked again (the inode stays).
        let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let first = ino(&app);
        assert_eq!(images.rootfs(&image).unwrap(), dir);
        assert_eq!(ino(&app), first);

        // Each kind of change is found before use, and the image's own content
        // comes back.
        let tampers: [(&str, &dyn Fn()); 4] = [
            ("content", &|| {
                std::fs::write(&app, "#!/bin/sh\nevil\n").unwrap();
            }),
            ("mode", &|| {
                std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o4777)).unwrap();
            }),
            ("a new file", &|| {
                std::fs::write(dir.join("app/evil"), "x").unwrap();
            }),
            ("a symlink", &|| {
                std::fs::remove_file(dir.join("etc/passwd")).unwrap();
                std::os::unix::fs::symlink("/etc/shadow", dir.join("etc/passwd")).unwrap();
            }),
        ];
        for (what, tamper) in tampers {
            tamper();
            assert!(
                !cached_rootfs_matches(
                    &dir,
                    &images.rootfs_records.join(image.manifest_digest.hex())
                ),
                "{what} not detected"
            );
            let again = images.rootfs(&image).unwrap();
            assert_eq!(again, dir);
            assert_eq!(
                std::fs::read_to_string(&app).unwrap(),
                "#!/bin/true\n",
                "{what}"
            );
            assert_eq!(
                std::fs::metadata(&app).unwrap().permissions().mode() & 0o7777,
                0o644,
                "{what}"
            );
            assert!(!dir.join("app/evil").exists(), "{what}");
            assert!(
                !std::fs::symlink_metadata(dir.join("etc/passwd"))
                    .unwrap()
                    .file_type()
                    .is_symlink(),
                "{what}"
            );
        }

        // A cache without its record (an older cairn's, or planted) is not trusted.
        std::fs::remove_file(images.rootfs_records.join(image.manifest_digest.hex())).unwrap();
        std::fs::write(&app, "planted").unwrap();
        images.rootfs(&image).unwrap();
        assert_eq!(std::fs::read_to_string(&app).unwrap(), "#!/bin/true\n");
    }
}
