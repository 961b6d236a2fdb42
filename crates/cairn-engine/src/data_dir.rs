//! Where cairn keeps its state: `CAIRN_HOME`, or `.cairn/` in the working directory.
//! The sandbox never sees any of it. Run as root, the files a sandbox must reach
//! (workspaces, unpacked root filesystems) live under the sandbox directory
//! (`CAIRN_SANDBOX_DIR`, default [`DEFAULT_SANDBOX_DIR`]), checked root-owned.

use std::path::{Path, PathBuf};

/// The data directory and the places inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
    /// Root's sandbox-visible parent (see [`DataDir::workspaces`]).
    sandbox_dir: PathBuf,
}

impl DataDir {
    /// `CAIRN_HOME` when given (non-empty), else `<cwd>/.cairn`.
    pub fn resolve(cairn_home: Option<&Path>, cwd: &Path) -> Self {
        let root = match cairn_home {
            Some(p) if !p.as_os_str().is_empty() => {
                if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    cwd.join(p)
                }
            }
            _ => cwd.join(".cairn"),
        };
        DataDir::at(root)
    }

    pub fn at(root: impl Into<PathBuf>) -> Self {
        DataDir {
            root: root.into(),
            sandbox_dir: PathBuf::from(DEFAULT_SANDBOX_DIR),
        }
    }

    /// The same data directory with root's sandbox files under `dir` instead of
    /// [`DEFAULT_SANDBOX_DIR`]; `dir` must be absolute (a relative one would move
    /// with the working directory and could land in a workspace).
    pub fn with_sandbox_dir(mut self, dir: &Path) -> Result<Self, crate::EngineError> {
        if !dir.is_absolute() {
            return Err(crate::EngineError::SandboxDirRefused {
                path: dir.to_path_buf(),
                problem: "it is not an absolute path".to_owned(),
            });
        }
        self.sandbox_dir = dir.to_path_buf();
        Ok(self)
    }

    /// The parent of root's workspaces and unpacked root filesystems.
    pub fn sandbox_dir(&self) -> &Path {
        &self.sandbox_dir
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Refuses a data directory inside a git work tree that git does not ignore
    /// (it holds the signing key; `git add -A` would commit it).
    pub fn check_not_committable(&self) -> Result<(), crate::EngineError> {
        crate::git::check_data_dir_ignored(&self.root)
    }

    /// Where per-run workspaces live, bound into the sandbox one at a time.
    ///
    /// Run as root, bubblewrap starts as the unprivileged sandbox user, which must
    /// be able to walk to the workspace; the data directory is private (0700) and
    /// may sit under a private home, so root's workspaces live under
    /// `<sandbox dir>/work` (root-owned, checked by [`DataDir::prepare_sandbox_dir`],
    /// so no other user can plant anything there), one directory per data
    /// directory. Anyone else's sandbox runs as themselves and uses `<data>/work`.
    pub fn workspaces(&self) -> PathBuf {
        self.sandbox_visible("work")
    }

    /// Where unpacked image root filesystems live (one directory per manifest
    /// digest), for the sandbox to run them. Like [`DataDir::workspaces`], root's
    /// live under `<sandbox dir>/rootfs`.
    pub fn rootfs_cache(&self) -> PathBuf {
        self.sandbox_visible("rootfs")
    }

    /// Run as root: creates the sandbox directory and its `work/` and `rootfs/`
    /// (mode 0711, root-owned) where missing, and refuses to use them unless each
    /// of them and every directory above is a real directory (not a symlink),
    /// owned by root, and writable by no one else (a sticky ancestor such as
    /// `/tmp` excepted: nobody else can move what root made there). Anything
    /// else would let another user swap a workspace or a cached rootfs for a
    /// symlink between cairn's check and its use. Not root: nothing to do.
    pub fn prepare_sandbox_dir(&self) -> Result<(), crate::EngineError> {
        if !running_as_root() {
            return Ok(());
        }
        for place in ["work", "rootfs"] {
            let dir = self.sandbox_dir.join(place);
            create_traversable(&dir)?;
            check_root_owned(&dir)?;
        }
        Ok(())
    }

    /// The OCI image layout holding every image cairn built or imported.
    pub fn images(&self) -> PathBuf {
        self.root.join("oci")
    }

    /// Records and logs of the `local` deploy target's running deployments.
    pub fn deployments(&self) -> PathBuf {
        self.root.join("deploy")
    }

    fn sandbox_visible(&self, name: &str) -> PathBuf {
        if !running_as_root() {
            return self.root.join(name);
        }
        let canonical = std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&canonical, &mut hasher);
        self.sandbox_dir
            .join(name)
            .join(format!("{:016x}", std::hash::Hasher::finish(&hasher)))
    }
}

/// Where root's workspaces and unpacked root filesystems go unless
/// `CAIRN_SANDBOX_DIR` says otherwise.
pub(crate) const DEFAULT_SANDBOX_DIR: &str = "/var/lib/cairn";

/// Creates `dir` and its missing parents, mode 0711 (traversable, not listable).
fn create_traversable(dir: &Path) -> Result<(), crate::EngineError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(dir)
        .map_err(crate::EngineError::io("create", dir))
}

/// `dir` and every directory above it: a real directory, owned by root, not
/// writable by group or others (an ancestor with the sticky bit excepted).
fn check_root_owned(dir: &Path) -> Result<(), crate::EngineError> {
    use std::os::unix::fs::MetadataExt;
    let refuse = |path: &Path, problem: String| crate::EngineError::SandboxDirRefused {
        path: path.to_path_buf(),
        problem,
    };
    for (depth, path) in dir.ancestors().enumerate() {
        let meta =
            std::fs::symlink_metadata(path).map_err(crate::EngineError::io("inspect", path))?;
        if meta.file_type().is_symlink() {
            return Err(refuse(path, "it is a symbolic link".to_owned()));
        }
        if !meta.is_dir() {
            return Err(refuse(path, "it is not a directory".to_owned()));
        }
        if meta.uid() != 0 {
            return Err(refuse(
                path,
                format!("it is owned by uid {}, not root", meta.uid()),
            ));
        }
        let mode = meta.mode() & 0o7777;
        let sticky = mode & 0o1000 != 0;
        // The sandbox directory and its own places must not be shared even with
        // the sticky bit; above it, a sticky shared directory (/tmp) is fine.
        let own = depth <= 1;
        if mode & 0o022 != 0 && (own || !sticky) {
            return Err(refuse(
                path,
                format!("it is writable by group or others (mode {mode:o})"),
            ));
        }
    }
    Ok(())
}

fn running_as_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution() {
        let cwd = Path::new("/home/u/app");
        assert_eq!(
            DataDir::resolve(None, cwd).root(),
            Path::new("/home/u/app/.cairn")
        );
        assert_eq!(
            DataDir::resolve(Some(Path::new("")), cwd).root(),
            Path::new("/home/u/app/.cairn")
        );
        assert_eq!(
            DataDir::resolve(Some(Path::new("/var/cairn")), cwd).root(),
            Path::new("/var/cairn")
        );
        assert_eq!(
            DataDir::resolve(Some(Path::new("state")), cwd).root(),
            Path::new("/home/u/app/state")
        );
    }

    #[test]
    fn workspaces_are_per_data_dir() {
        let a = DataDir::at("/srv/a/.cairn").workspaces();
        let b = DataDir::at("/srv/b/.cairn").workspaces();
        assert_ne!(a, b);
        assert_eq!(a, DataDir::at("/srv/a/.cairn").workspaces());
        if running_as_root() {
            assert!(
                a.starts_with(Path::new(DEFAULT_SANDBOX_DIR).join("work")),
                "{}",
                a.display()
            );
        } else {
            assert_eq!(a, Path::new("/srv/a/.cairn/work"));
        }
    }

    #[test]
    fn a_relative_sandbox_dir_is_refused() {
        let err = DataDir::at("/srv/a/.cairn")
            .with_sandbox_dir(Path::new("state"))
            .unwrap_err();
        assert!(err.to_string().contains("not an absolute path"), "{err}");
    }

    /// As root (CI is): a sandbox directory another user owns, one that is
    /// group-writable, and one that is a symlink are refused, naming the path and
    /// the problem; a fresh one is made root-owned 0711 with work/ and rootfs/.
    #[test]
    fn the_sandbox_dir_must_be_root_owned_and_private() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if !running_as_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::at(tmp.path().join("data"));

        let fresh = tmp.path().join("fresh/cairn");
        let d = data.clone().with_sandbox_dir(&fresh).unwrap();
        d.prepare_sandbox_dir().unwrap();
        for place in ["", "work", "rootfs"] {
            let meta = std::fs::symlink_metadata(fresh.join(place)).unwrap();
            assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o711), "{place}");
        }
        assert!(d.workspaces().starts_with(fresh.join("work")));
        assert!(d.rootfs_cache().starts_with(fresh.join("rootfs")));

        let foreign = tmp.path().join("foreign");
        std::fs::create_dir(&foreign).unwrap();
        std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
        let err = data
            .clone()
            .with_sandbox_dir(&foreign)
            .unwrap()
            .prepare_sandbox_dir()
            .unwrap_err()
            .to_string();
        assert!(err.contains("owned by uid 65534, not root"), "{err}");
        assert!(err.contains(&foreign.display().to_string()), "{err}");

        let shared = tmp.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = data
            .clone()
            .with_sandbox_dir(&shared)
            .unwrap()
            .prepare_sandbox_dir()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("writable by group or others (mode 1777)"),
            "{err}"
        );
        // Under a sticky shared directory, a root-owned one of its own is fine.
        let under = data
            .clone()
            .with_sandbox_dir(&shared.join("cairn"))
            .unwrap();
        under.prepare_sandbox_dir().unwrap();

        let planted = tmp.path().join("planted");
        std::fs::create_dir(tmp.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("elsewhere"), &planted).unwrap();
        let err = data
            .with_sandbox_dir(&planted)
            .unwrap()
            .prepare_sandbox_dir()
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }
}
