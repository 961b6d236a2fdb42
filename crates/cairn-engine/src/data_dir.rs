//! Where cairn keeps its state: `CAIRN_HOME`, or `.cairn/` in the working directory.
//! The sandbox never sees any of it.

use std::path::{Path, PathBuf};

/// The data directory and the places inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
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
        DataDir { root }
    }

    pub fn at(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
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
    /// [`ROOT_WORKSPACES`] (created by root, so no other user can plant anything
    /// there), one directory per data directory. Anyone else's sandbox runs as
    /// themselves and uses `<data>/work`.
    pub fn workspaces(&self) -> PathBuf {
        self.sandbox_visible("work", ROOT_WORKSPACES)
    }

    /// Where unpacked image root filesystems live (one directory per manifest
    /// digest), for the sandbox to run them. Like [`DataDir::workspaces`], root's
    /// live under [`ROOT_ROOTFS`].
    pub fn rootfs_cache(&self) -> PathBuf {
        self.sandbox_visible("rootfs", ROOT_ROOTFS)
    }

    /// The OCI image layout holding every image cairn built or imported.
    pub fn images(&self) -> PathBuf {
        self.root.join("oci")
    }

    /// Records and logs of the `local` deploy target's running deployments.
    pub fn deployments(&self) -> PathBuf {
        self.root.join("deploy")
    }

    fn sandbox_visible(&self, name: &str, root_parent: &str) -> PathBuf {
        if !running_as_root() {
            return self.root.join(name);
        }
        let canonical = std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&canonical, &mut hasher);
        Path::new(root_parent).join(format!("{:016x}", std::hash::Hasher::finish(&hasher)))
    }
}

/// The parent of root's workspaces (see [`DataDir::workspaces`]).
pub const ROOT_WORKSPACES: &str = "/var/lib/cairn/work";
/// The parent of root's unpacked image root filesystems.
pub const ROOT_ROOTFS: &str = "/var/lib/cairn/rootfs";

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
            assert!(a.starts_with(ROOT_WORKSPACES), "{}", a.display());
        } else {
            assert_eq!(a, Path::new("/srv/a/.cairn/work"));
        }
    }
}
