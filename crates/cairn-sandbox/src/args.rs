//! The sandbox's description, as a bubblewrap command line: which namespaces, which
//! mounts, which environment. Both runtimes read it: cairn's own ([`crate::runtime`])
//! for every sandbox that dies with cairn, bubblewrap for a detached one.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::etc::RESOLV_CONF;
use crate::image::{ImageNetwork, ImageSandboxSpec};
use crate::spec::{HOME_DIR, HOSTNAME, SandboxSpec, WORKSPACE_DIR};

/// Where Debian installs bubblewrap. Deliberately not looked up in `PATH`.
pub const BWRAP: &str = "/usr/bin/bwrap";

/// The fd on which the status is written in bubblewrap's JSON (`child-pid`, then
/// `exit-code` once the command's exec was attempted): by cairn's reaper, or by
/// bubblewrap for a detached sandbox. See [`crate::spawn`] and [`crate::status`].
pub(crate) const STATUS_FD: i32 = 3;

/// The fd a prepared sandbox's first process waits on, once its namespaces and
/// mounts are set up, until cairn releases it. See [`crate::prepare`].
pub(crate) const BLOCK_FD: i32 = 4;

/// Top-level directories that are either symlinks into `/usr` (merged-usr) or real
/// directories with system files.
const SYSTEM_DIRS: &[&str] = &["/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"];

#[derive(Debug)]
enum SystemDir {
    Symlink { path: &'static str, target: PathBuf },
    Dir { path: &'static str },
}

/// The host's top-level layout, read once per process: it does not change under a
/// running system, and re-reading it would cost every start.
fn system_dirs() -> &'static [SystemDir] {
    static LAYOUT: OnceLock<Vec<SystemDir>> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        SYSTEM_DIRS
            .iter()
            .filter_map(|&path| {
                let meta = std::fs::symlink_metadata(path).ok()?;
                if meta.file_type().is_symlink() {
                    let target = std::fs::read_link(path).ok()?;
                    Some(SystemDir::Symlink { path, target })
                } else if meta.is_dir() {
                    Some(SystemDir::Dir { path })
                } else {
                    None
                }
            })
            .collect()
    })
}

struct Args(Vec<OsString>);

impl Args {
    fn flag(&mut self, flag: &str) {
        self.0.push(flag.into());
    }
    fn with(&mut self, flag: &str, value: impl Into<OsString>) {
        self.0.push(flag.into());
        self.0.push(value.into());
    }
    fn with2(&mut self, flag: &str, a: impl Into<OsString>, b: impl Into<OsString>) {
        self.0.push(flag.into());
        self.0.push(a.into());
        self.0.push(b.into());
    }
}

/// Whose network the sandbox uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Net<'a> {
    /// A new network namespace with only a loopback interface.
    Own,
    /// The host's network namespace (the one the sandbox is started from), with the
    /// host's `resolv.conf` (only an image deployed to the `local` target; never a
    /// step).
    Host,
    /// The namespace the sandbox is started from, which [`crate::spawn`]'s child made
    /// another sandbox's (`setns`) first: no `--unshare-net`, and nothing of the
    /// host's.
    Joined,
    /// Joined as well, but the namespace is a user-mode network's
    /// ([`crate::usernet`]): `resolv_conf` (naming its DNS forwarder) is bound at
    /// `/etc/resolv.conf`.
    UserMode { resolv_conf: &'a Path },
}

/// A build image's root filesystem and its top-level entries (see
/// [`SandboxSpec::system_root`]).
pub(crate) struct System<'a> {
    pub(crate) root: &'a Path,
    pub(crate) entries: Vec<TopEntry>,
}

/// Top-level names of a build image that the sandbox does not take from it: its
/// own `/etc` (the curated copy), the home tmpfs's parent and the workspace.
const SYSTEM_ROOT_SKIPPED: &[&str] = &["etc", "home", "workspace"];

/// Files under a build image's `/etc` bound over the curated copy's, when the
/// image has them as a real directory or regular file: which program a command
/// name is, and where the image's libraries are.
const SYSTEM_ROOT_ETC: &[&str] = &["alternatives", "ld.so.cache"];

/// All of bubblewrap's arguments for `spec`, the command last; `etc` is the curated
/// copy bound at `/etc` (see [`crate::etc`]); `net` is the network the caller set up
/// (never [`Net::Host`] for a step); `system` the build image, if any.
pub(crate) fn build(
    spec: &SandboxSpec,
    etc: &Path,
    net: Net<'_>,
    system: Option<&System<'_>>,
) -> Vec<OsString> {
    let mut a = Args(Vec::with_capacity(
        96 + 3 * spec.env.len() + spec.argv.len(),
    ));
    namespaces(&mut a, net, false);
    environment(&mut a, &spec.env);

    // Read-only system: the build image's, or the host's.
    let root = Path::new("/");
    match system {
        Some(system) => {
            for entry in &system.entries {
                match entry {
                    TopEntry::Bind(name) if SYSTEM_ROOT_SKIPPED.iter().any(|s| name == *s) => {}
                    TopEntry::Symlink(name, _)
                        if SYSTEM_ROOT_SKIPPED.iter().any(|s| name == *s) => {}
                    TopEntry::Bind(name) => {
                        a.with2("--ro-bind", system.root.join(name), root.join(name));
                    }
                    TopEntry::Symlink(name, target) => {
                        a.with2("--symlink", target, root.join(name));
                    }
                }
            }
        }
        None => {
            a.with2("--ro-bind", "/usr", "/usr");
            for dir in system_dirs() {
                match dir {
                    SystemDir::Symlink { path, target } => a.with2("--symlink", target, *path),
                    SystemDir::Dir { path } => a.with2("--ro-bind", *path, *path),
                }
            }
        }
    }
    a.with2("--ro-bind", etc, "/etc");
    if let Some(system) = system {
        let image_etc = system.root.join("etc");
        let etc_is_dir = std::fs::symlink_metadata(&image_etc).is_ok_and(|m| m.is_dir());
        for name in SYSTEM_ROOT_ETC {
            let (source, in_copy) = (image_etc.join(name), etc.join(name));
            // Never through a symlink; only over a mount point the copy has.
            let real =
                |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir() || m.is_file());
            if etc_is_dir && real(&source) && real(&in_copy) {
                a.with2("--ro-bind", source, Path::new("/etc").join(name));
            }
        }
    }
    let resolv = Path::new("/etc").join(RESOLV_CONF);
    match net {
        // Resolved on the host (it is often a symlink into /run), bound over the
        // empty placeholder of the copy.
        Net::Host => a.with2("--ro-bind-try", &resolv, &resolv),
        Net::UserMode { resolv_conf } => a.with2("--ro-bind", resolv_conf, &resolv),
        Net::Own | Net::Joined => {}
    }
    a.with("--proc", "/proc");
    a.with("--dev", "/dev");

    // Private scratch space, bounded (tmpfs pages are also charged to the cgroup).
    let size = spec.limits.memory_bytes.to_string();
    a.with("--size", size.as_str());
    a.with("--tmpfs", "/tmp");
    a.with("--size", size.as_str());
    a.with("--tmpfs", HOME_DIR);

    // Toolchains, then the workspace.
    for (source, dest) in &spec.read_only_binds {
        a.with2("--ro-bind", source, dest);
    }
    a.with2("--bind", &spec.workspace, WORKSPACE_DIR);

    // The root tmpfs (with its mount points) becomes read-only; the mounts on it keep
    // their own flags.
    a.with("--remount-ro", "/");
    a.with("--chdir", WORKSPACE_DIR);

    a.flag("--");
    a.0.extend(spec.argv.iter().map(OsString::from));
    a.0
}

/// Namespaces: all of them (user, mount, pid, ipc, uts, cgroup, and net unless it is
/// shared or joined), nested user namespaces disabled inside, every capability dropped.
/// `detached`: bubblewrap outlives its parent, which exits at once (see
/// [`crate::spawn`]); otherwise the sandbox dies with the reaper.
fn namespaces(a: &mut Args, net: Net<'_>, detached: bool) {
    a.flag("--unshare-all");
    a.flag("--unshare-user");
    if net != Net::Own {
        a.flag("--share-net");
    }
    a.flag("--disable-userns");
    a.with("--cap-drop", "ALL");
    if !detached {
        a.flag("--die-with-parent");
    }
    a.flag("--new-session");
    a.with("--hostname", HOSTNAME);
    a.with("--json-status-fd", STATUS_FD.to_string());
}

/// Exactly the caller's environment (`--clearenv` first: nothing of cairn's reaches
/// the command).
fn environment(a: &mut Args, env: &[(String, String)]) {
    a.flag("--clearenv");
    for (name, value) in env {
        a.with2("--setenv", name, value);
    }
}

/// Names at the top of an image's root that the sandbox provides itself (fresh
/// `/proc`, minimal `/dev`, private tmpfs `/tmp` and `/run`); the image's own are
/// hidden.
pub(crate) const IMAGE_OWN_MOUNTS: &[&str] = &["proc", "dev", "tmp", "run"];

/// One top-level entry of an image's root filesystem, as bound into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TopEntry {
    /// A directory or regular file, bound read-only at `/<name>`.
    Bind(OsString),
    /// A symlink, recreated with the same target (it resolves inside the sandbox).
    Symlink(OsString, PathBuf),
}

/// bubblewrap's arguments for an image: its root filesystem's top-level `entries`
/// bound read-only over the (then read-only) root, the command last. `detached`: the
/// sandbox outlives cairn ([`crate::start_detached`]).
pub(crate) fn build_image(
    spec: &ImageSandboxSpec,
    entries: &[TopEntry],
    detached: bool,
) -> Vec<OsString> {
    let mut a = Args(Vec::with_capacity(
        64 + 3 * entries.len() + 3 * spec.env.len() + spec.argv.len(),
    ));
    namespaces(
        &mut a,
        match spec.network {
            ImageNetwork::Isolated => Net::Own,
            ImageNetwork::Host => Net::Host,
        },
        detached,
    );
    // The ids the command sees; outside, it is the sandbox user whatever they are.
    a.with("--uid", spec.uid.to_string());
    a.with("--gid", spec.gid.to_string());
    environment(&mut a, &spec.env);

    let root = Path::new("/");
    let workspace_name = crate::image::WORKSPACE_AT.trim_start_matches('/');
    for entry in entries {
        match entry {
            // The image's own `/workspace` is hidden by the one bound there.
            TopEntry::Bind(name) | TopEntry::Symlink(name, _)
                if spec.workspace.is_some() && name == workspace_name => {}
            TopEntry::Bind(name) => a.with2("--ro-bind", spec.rootfs.join(name), root.join(name)),
            TopEntry::Symlink(name, target) => a.with2("--symlink", target, root.join(name)),
        }
    }
    if let Some(workspace) = &spec.workspace {
        a.with2("--ro-bind", workspace, crate::image::WORKSPACE_AT);
    }
    a.with("--proc", "/proc");
    a.with("--dev", "/dev");
    let size = spec.limits.memory_bytes.to_string();
    for dir in ["/tmp", "/run"] {
        a.with("--size", size.as_str());
        a.with("--tmpfs", dir);
    }
    a.with("--remount-ro", "/");
    a.with("--chdir", &spec.working_dir);

    a.flag("--");
    a.0.extend(spec.argv.iter().map(OsString::from));
    a.0
}

/// A path bubblewrap would resolve; shown in errors.
pub(crate) fn bwrap_path() -> &'static Path {
    Path::new(BWRAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_of(spec: &SandboxSpec) -> Vec<String> {
        let net = if spec.network {
            Net::UserMode {
                resolv_conf: Path::new("/run/usernet-resolv.conf"),
            }
        } else {
            Net::Own
        };
        build(spec, Path::new("/run/etc-copy"), net, None)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn has_pair(args: &[String], flag: &str, value: &str) -> bool {
        args.windows(2).any(|w| w[0] == flag && w[1] == value)
    }

    /// A workspace handed to an image sandbox is bound read-only at
    /// /workspace, over the image's own entry of that name (a directory or a
    /// symlink the image ships there is not bound).
    #[test]
    fn an_image_sees_the_workspace_read_only_over_its_own() {
        let mut spec = crate::ImageSandboxSpec::new("/rootfs", vec!["/bin/sh".into()]);
        let entries = [
            TopEntry::Bind("bin".into()),
            TopEntry::Symlink("workspace".into(), "/etc".into()),
        ];
        let without: Vec<String> = build_image(&spec, &entries, false)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(
            without
                .windows(3)
                .any(|w| w == ["--symlink", "/etc", "/workspace"])
        );
        spec.workspace = Some("/data/workspaces/7".into());
        let with: Vec<String> = build_image(&spec, &entries, false)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(
            with.windows(3)
                .any(|w| w == ["--ro-bind", "/data/workspaces/7", "/workspace"])
        );
        assert!(!with.iter().any(|a| a == "--symlink"), "{with:?}");
        assert!(!with.iter().any(|a| a == "--bind"), "{with:?}");
        assert!(has_pair(&with, "--ro-bind", "/rootfs/bin"));
    }

    #[test]
    fn network_only_when_allowed() {
        let mut spec = SandboxSpec::new("/w", vec!["make".into(), "--".into()]);
        let closed = args_of(&spec);
        assert!(closed.contains(&"--unshare-all".to_owned()));
        assert!(!closed.contains(&"--share-net".to_owned()));
        assert!(!closed.iter().any(|a| a == "/etc/resolv.conf"));
        spec.network = true;
        // The user-mode network's namespace is joined before the sandbox starts, and
        // its DNS forwarder replaces the host's resolv.conf.
        let open = args_of(&spec);
        assert!(open.contains(&"--share-net".to_owned()));
        assert!(has_pair(&open, "--ro-bind", "/run/usernet-resolv.conf"));
        assert!(!open.iter().any(|a| a == "--ro-bind-try"));
    }

    #[test]
    fn a_build_image_replaces_the_host_system() {
        let img = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(img.path().join("etc/alternatives")).unwrap();
        let copy = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(copy.path().join("alternatives")).unwrap();
        let spec = SandboxSpec::new("/host/ws", vec!["cc".into()]);
        let system = System {
            root: img.path(),
            entries: vec![
                TopEntry::Symlink("bin".into(), "usr/bin".into()),
                TopEntry::Bind("etc".into()),
                TopEntry::Bind("home".into()),
                TopEntry::Bind("opt".into()),
                TopEntry::Bind("usr".into()),
                TopEntry::Bind("workspace".into()),
            ],
        };
        let args: Vec<String> = build(&spec, copy.path(), Net::Own, Some(&system))
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let at = |rel: &str| img.path().join(rel).to_string_lossy().into_owned();
        assert!(has_pair(&args, "--ro-bind", &at("usr")));
        assert!(has_pair(&args, "--ro-bind", &at("opt")));
        assert!(has_pair(&args, "--symlink", "usr/bin"));
        assert!(has_pair(&args, "--ro-bind", &at("etc/alternatives")));
        // Not the host's /usr, not the image's /etc, /home or /workspace.
        assert!(!has_pair(&args, "--ro-bind", "/usr"));
        for own in ["etc", "home", "workspace"] {
            assert!(!has_pair(&args, "--ro-bind", &at(own)), "{own}: {args:?}");
        }
        assert!(has_pair(&args, "--ro-bind", &copy.path().to_string_lossy()));
        assert!(has_pair(&args, "--bind", "/host/ws"));
    }

    #[test]
    fn command_environment_and_mounts() {
        let mut spec = SandboxSpec::new("/host/ws", vec!["make".into(), "--".into()]);
        spec.env.push(("A".into(), "1 2".into()));
        spec.read_only_binds
            .push(("/opt/rust".into(), "/opt/rust".into()));
        let args = args_of(&spec);
        // The command comes last, verbatim, after the one separator both runtimes
        // read.
        let separator = args.iter().position(|a| a == "--").unwrap_or(usize::MAX);
        assert_eq!(args[separator + 1..], ["make", "--"]);
        let clearenv = args
            .iter()
            .position(|a| a == "--clearenv")
            .unwrap_or(usize::MAX);
        let setenv = args.iter().position(|a| a == "--setenv").unwrap_or(0);
        assert!(clearenv < setenv && args[setenv + 1] == "A" && args[setenv + 2] == "1 2");
        assert!(has_pair(&args, "--ro-bind", "/run/etc-copy"));
        assert!(has_pair(&args, "--ro-bind", "/opt/rust"));
        assert!(has_pair(&args, "--bind", "/host/ws"));
        assert!(has_pair(&args, "--chdir", WORKSPACE_DIR));
        assert!(has_pair(&args, "--cap-drop", "ALL"));
        for flag in [
            "--unshare-user",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
        ] {
            assert!(args.contains(&flag.to_owned()), "{flag}");
        }
    }
}
