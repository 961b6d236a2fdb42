//! The sandbox a start asks for, turned into what the sandbox's init does: read from
//! the same bubblewrap command line [`crate::args`] builds (so both runtimes are
//! given one description), checked strictly (an option this runtime does not
//! implement is refused, never ignored), and prepared down to every path and
//! argument vector before the fork, because the init may not allocate.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use crate::args::STATUS_FD;
use crate::error::SandboxError;

/// Where the host's root is while the sandbox's root is assembled (see [`super::init`]).
pub(super) const OLD_ROOT: &CStr = c"/oldroot";
/// Where the sandbox's root is assembled.
pub(super) const NEW_ROOT: &CStr = c"/newroot";

/// Nodes bound from the host's `/dev` into the sandbox's (bubblewrap's `--dev` set).
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];
/// Links in the sandbox's `/dev`.
const DEVICE_LINKS: &[(&str, &str)] = &[
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("/proc/kcore", "core"),
    ("pts/ptmx", "ptmx"),
];
/// Parts of the fresh `/proc` that reach beyond the sandbox; bound read-only over
/// themselves where they exist.
const PROC_COVERED: &[&str] = &["sys", "sysrq-trigger", "irq", "bus"];

/// `mount_setattr(2)` attributes.
pub(super) const ATTR_RDONLY: u64 = 0x1;
pub(super) const ATTR_NOSUID: u64 = 0x2;
pub(super) const ATTR_NODEV: u64 = 0x4;

/// One step of assembling the root, in order. Paths are absolute in the init's
/// view while it assembles ([`OLD_ROOT`] for the host's, [`NEW_ROOT`] for the
/// sandbox's).
#[derive(Debug)]
pub(super) enum Op {
    /// A directory (mode 0755); one that exists already is fine.
    Dir(CString),
    /// An empty file to mount a file over; one that exists already is fine.
    File(CString),
    /// `source` bound at `dest` with all mounts below it, then `attr` set on every
    /// one of them (`mount_setattr`, `AT_RECURSIVE`: flags a mount locked stay).
    /// `optional`: a source that is missing is skipped.
    Bind {
        source: CString,
        dest: CString,
        attr: u64,
        optional: bool,
    },
    Symlink {
        target: CString,
        dest: CString,
    },
    /// A new filesystem (proc, tmpfs, devpts).
    Mount {
        fstype: &'static CStr,
        dest: CString,
        flags: libc::c_ulong,
        data: Option<CString>,
    },
    /// `dest` itself (not the mounts below it) read-only.
    ReadOnly(CString),
}

/// Everything the init needs, prepared.
#[derive(Debug)]
pub(crate) struct Plan {
    /// A network namespace of its own (else the one the reaper is in).
    pub(super) new_network: bool,
    /// The user and group the command has inside.
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) hostname: CString,
    pub(super) ops: Vec<Op>,
    pub(super) workdir: CString,
    pub(super) command: Command,
}

/// The command as `execve(2)` takes it, with bubblewrap's `execvp` lookup prepared:
/// the paths to try in order.
#[derive(Debug)]
pub(super) struct Command {
    /// Shown in the message of a failed exec.
    pub(super) name: CString,
    pub(super) candidates: Vec<CString>,
    /// Owns what `argv` and `envp` point to.
    _strings: Vec<CString>,
    /// NULL-terminated.
    pub(super) argv: Vec<*const libc::c_char>,
    /// NULL-terminated.
    pub(super) envp: Vec<*const libc::c_char>,
    /// `/bin/sh`, a slot for the script, then `argv[1..]`, NULL-terminated: a file
    /// without a known format is run by the shell, as `execvp` does.
    pub(super) script_argv: std::cell::UnsafeCell<Vec<*const libc::c_char>>,
}

// SAFETY: the raw pointers point into `_strings` (owned by the same value, never
// changed after `Plan::from_args`) or are NULL; moving the value moves no CString's
// heap data. `script_argv` is written only in a forked child, by one process.
unsafe impl Send for Command {}
// SAFETY: as for Send.
unsafe impl Sync for Command {}

fn refused(problem: &'static str, value: &OsStr) -> SandboxError {
    SandboxError::InvalidSpec {
        field: "sandbox arguments",
        problem,
        value: value.to_string_lossy().into_owned(),
    }
}

fn c_string(bytes: &[u8], value: &OsStr) -> Result<CString, SandboxError> {
    CString::new(bytes).map_err(|_| refused("contains a NUL byte", value))
}

/// A sandbox path (absolute, only plain components) under `prefix`.
fn under(prefix: &CStr, path: &OsStr) -> Result<CString, SandboxError> {
    let path = Path::new(path);
    let plain = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !plain {
        return Err(refused(
            "names a sandbox path that is not absolute or not plain",
            path.as_os_str(),
        ));
    }
    let mut joined = prefix.to_bytes().to_vec();
    for component in path.components().skip(1) {
        joined.push(b'/');
        joined.extend_from_slice(component.as_os_str().as_bytes());
    }
    if joined.is_empty() {
        joined.push(b'/');
    }
    c_string(&joined, path.as_os_str())
}

/// Builds the ops, creating each mount point's missing parents once.
struct Ops {
    ops: Vec<Op>,
    made: std::collections::HashSet<Vec<u8>>,
}

impl Ops {
    /// The directories above `dest` (a path under [`NEW_ROOT`]).
    fn parents(&mut self, dest: &CStr) {
        let bytes = dest.to_bytes();
        for (at, _) in bytes
            .iter()
            .enumerate()
            .filter(|&(at, &b)| b == b'/' && at > NEW_ROOT.count_bytes())
        {
            let parent = &bytes[..at];
            if self.made.insert(parent.to_vec()) {
                // A prefix of a CString has no NUL.
                if let Ok(parent) = CString::new(parent) {
                    self.ops.push(Op::Dir(parent));
                }
            }
        }
    }

    fn mount_point(&mut self, dest: &CStr, directory: bool) {
        self.parents(dest);
        if self.made.insert(dest.to_bytes().to_vec()) {
            self.ops.push(if directory {
                Op::Dir(dest.to_owned())
            } else {
                Op::File(dest.to_owned())
            });
        }
    }

    fn bind(
        &mut self,
        source: &OsStr,
        dest: &OsStr,
        attr: u64,
        optional: bool,
    ) -> Result<(), SandboxError> {
        let path = Path::new(source);
        if !path.is_absolute() {
            return Err(refused("names a mount source that is not absolute", source));
        }
        // As bubblewrap: the mount point is a directory or a file as the source is
        // (following links, as the mount will); a missing source fails at the mount,
        // naming it, unless the bind is optional.
        let meta = std::fs::metadata(path);
        if optional && meta.is_err() {
            return Ok(());
        }
        let dest = under(NEW_ROOT, dest)?;
        self.mount_point(&dest, meta.as_ref().map_or(true, std::fs::Metadata::is_dir));
        let mut host = OLD_ROOT.to_bytes().to_vec();
        host.extend_from_slice(source.as_bytes());
        self.ops.push(Op::Bind {
            source: c_string(&host, source)?,
            dest,
            attr,
            optional,
        });
        Ok(())
    }

    fn mount(
        &mut self,
        fstype: &'static CStr,
        dest: CString,
        flags: libc::c_ulong,
        data: Option<CString>,
    ) {
        self.mount_point(&dest, true);
        self.ops.push(Op::Mount {
            fstype,
            dest,
            flags,
            data,
        });
    }

    fn symlink(&mut self, target: &OsStr, dest: CString) -> Result<(), SandboxError> {
        self.parents(&dest);
        self.made.insert(dest.to_bytes().to_vec());
        self.ops.push(Op::Symlink {
            target: c_string(target.as_bytes(), target)?,
            dest,
        });
        Ok(())
    }

    fn proc(&mut self, dest: &OsStr) -> Result<(), SandboxError> {
        let at = under(NEW_ROOT, dest)?;
        self.mount(
            c"proc",
            at.clone(),
            libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV,
            None,
        );
        for covered in PROC_COVERED {
            let path = join(&at, covered);
            self.ops.push(Op::Bind {
                source: path.clone(),
                dest: path,
                attr: ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV,
                optional: true,
            });
        }
        Ok(())
    }

    fn dev(&mut self, dest: &OsStr) -> Result<(), SandboxError> {
        let at = under(NEW_ROOT, dest)?;
        self.mount(
            c"tmpfs",
            at.clone(),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some(c"mode=0755".to_owned()),
        );
        let host_dev = join(OLD_ROOT, "dev");
        for device in DEVICES {
            let node = join(&at, device);
            self.mount_point(&node, false);
            self.ops.push(Op::Bind {
                source: join(&host_dev, device),
                dest: node,
                // Device nodes must stay usable: no `nodev`.
                attr: ATTR_NOSUID,
                optional: false,
            });
        }
        self.mount_point(&join(&at, "shm"), true);
        self.mount(
            c"devpts",
            join(&at, "pts"),
            libc::MS_NOSUID | libc::MS_NOEXEC,
            Some(c"newinstance,ptmxmode=0666,mode=620".to_owned()),
        );
        for (target, name) in DEVICE_LINKS {
            self.symlink(OsStr::new(target), join(&at, name))?;
        }
        Ok(())
    }
}

fn join(dir: &CStr, name: &str) -> CString {
    let mut bytes = dir.to_bytes().to_vec();
    bytes.push(b'/');
    bytes.extend_from_slice(name.as_bytes());
    // Both parts are free of NUL bytes.
    CString::new(bytes).unwrap_or_default()
}

impl Plan {
    /// Whether the sandbox gets a network namespace of its own.
    pub(crate) fn new_network(&self) -> bool {
        self.new_network
    }

    /// The plan for bubblewrap arguments as [`crate::args::build`] and
    /// [`crate::args::build_image`] make them for a sandbox that dies with its
    /// parent. Anything else is refused.
    pub(crate) fn from_args(args: &[OsString]) -> Result<Plan, SandboxError> {
        let mut ops = Ops {
            ops: Vec::with_capacity(64),
            made: std::collections::HashSet::new(),
        };
        let mut new_network = true;
        let (mut uid, mut gid) = (None, None);
        let mut hostname = None;
        let mut workdir = None;
        let mut env: Vec<(OsString, OsString)> = Vec::new();
        let mut size: Option<u64> = None;
        let (mut all, mut user, mut no_userns, mut no_caps, mut with_parent, mut session) =
            (false, false, false, false, false, false);
        let mut command = None;
        let mut rest = args.iter();
        let mut value = |flag: &OsStr| {
            rest.next()
                .map(OsString::as_os_str)
                .ok_or_else(|| refused("lacks the value of an option", flag))
        };
        // `value` borrows `rest`: options are read through it only.
        while let Ok(flag) = value(OsStr::new("")) {
            match flag.as_bytes() {
                b"--" => {
                    let mut argv = Vec::new();
                    while let Ok(arg) = value(flag) {
                        argv.push(arg.to_owned());
                    }
                    command = Some(argv);
                    break;
                }
                b"--unshare-all" => all = true,
                b"--unshare-user" => user = true,
                b"--share-net" => new_network = false,
                b"--disable-userns" => no_userns = true,
                b"--die-with-parent" => with_parent = true,
                b"--new-session" => session = true,
                b"--clearenv" => env.clear(),
                b"--cap-drop" => {
                    if value(flag)? != "ALL" {
                        return Err(refused("drops capabilities other than ALL", flag));
                    }
                    no_caps = true;
                }
                b"--json-status-fd" => {
                    if value(flag)? != STATUS_FD.to_string().as_str() {
                        return Err(refused("names another status descriptor", flag));
                    }
                }
                b"--hostname" => hostname = Some(value(flag)?.to_owned()),
                b"--uid" => uid = Some(number(value(flag)?)?),
                b"--gid" => gid = Some(number(value(flag)?)?),
                b"--setenv" => {
                    let (name, val) = (value(flag)?.to_owned(), value(flag)?.to_owned());
                    env.retain(|(n, _)| *n != name);
                    env.push((name, val));
                }
                b"--ro-bind" | b"--ro-bind-try" => {
                    let (source, dest) = (value(flag)?, value(flag)?);
                    let optional = flag == "--ro-bind-try";
                    ops.bind(
                        source,
                        dest,
                        ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV,
                        optional,
                    )?;
                }
                b"--bind" => {
                    let (source, dest) = (value(flag)?, value(flag)?);
                    ops.bind(source, dest, ATTR_NOSUID | ATTR_NODEV, false)?;
                }
                b"--symlink" => {
                    let (target, dest) = (value(flag)?, value(flag)?);
                    let dest = under(NEW_ROOT, dest)?;
                    ops.symlink(target, dest)?;
                }
                b"--proc" => ops.proc(value(flag)?)?,
                b"--dev" => ops.dev(value(flag)?)?,
                b"--size" => size = Some(number(value(flag)?)?),
                b"--tmpfs" => {
                    let dest = under(NEW_ROOT, value(flag)?)?;
                    let data = match size.take() {
                        Some(bytes) => format!("mode=0755,size={bytes}"),
                        None => "mode=0755".to_owned(),
                    };
                    // Digits and letters only.
                    let data = CString::new(data).unwrap_or_default();
                    ops.mount(c"tmpfs", dest, libc::MS_NOSUID | libc::MS_NODEV, Some(data));
                }
                b"--remount-ro" => ops.ops.push(Op::ReadOnly(under(NEW_ROOT, value(flag)?)?)),
                b"--chdir" => workdir = Some(value(flag)?.to_owned()),
                _ => {
                    return Err(refused(
                        "names an option the sandbox runtime does not implement",
                        flag,
                    ));
                }
            }
        }
        if !(all && user && no_userns && no_caps && with_parent && session) {
            return Err(refused(
                "lacks one of --unshare-all, --unshare-user, --disable-userns, \
                 --cap-drop ALL, --die-with-parent, --new-session",
                OsStr::new(""),
            ));
        }
        let argv = command
            .filter(|argv| !argv.is_empty())
            .ok_or_else(|| refused("has no command", OsStr::new("")))?;
        let workdir = workdir.unwrap_or_else(|| "/".into());
        // bubblewrap sets PWD to the directory it changed to.
        let pwd = OsString::from("PWD");
        match env.iter_mut().find(|(name, _)| *name == pwd) {
            Some((_, value)) => *value = workdir.clone(),
            None => env.push((pwd, workdir.clone())),
        }
        let (outside_uid, outside_gid) = ids();
        Ok(Plan {
            new_network,
            uid: uid.unwrap_or(outside_uid),
            gid: gid.unwrap_or(outside_gid),
            hostname: c_string(
                hostname.as_deref().unwrap_or(OsStr::new("")).as_bytes(),
                OsStr::new("hostname"),
            )?,
            ops: ops.ops,
            workdir: c_string(workdir.as_bytes(), &workdir)?,
            command: Command::new(&argv, &env)?,
        })
    }
}

/// The ids the sandbox's processes have outside, and (unless an image names its
/// own) inside: the sandbox user's as root, else the caller's.
pub(super) fn ids() -> (u32, u32) {
    if crate::spawn::is_root() {
        (crate::spawn::SANDBOX_UID, crate::spawn::SANDBOX_GID)
    } else {
        // SAFETY: getuid(2) and getgid(2) cannot fail.
        unsafe { (libc::getuid(), libc::getgid()) }
    }
}

fn number<T: std::str::FromStr>(text: &OsStr) -> Result<T, SandboxError> {
    text.to_str()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| refused("has a value that is not a number", text))
}

impl Command {
    fn new(argv: &[OsString], env: &[(OsString, OsString)]) -> Result<Command, SandboxError> {
        let name = c_string(argv[0].as_bytes(), &argv[0])?;
        // As execvp: a name with a slash is a path; else each directory of the
        // command's PATH (an empty entry is the working directory), or the C
        // library's default path.
        let candidates = if argv[0].as_bytes().contains(&b'/') {
            vec![name.clone()]
        } else if argv[0].is_empty() {
            Vec::new()
        } else {
            let path = env
                .iter()
                .find(|(n, _)| n == "PATH")
                .map_or(OsStr::new("/bin:/usr/bin"), |(_, v)| v.as_os_str());
            path.as_bytes()
                .split(|&b| b == b':')
                .map(|dir| {
                    let mut full = if dir.is_empty() {
                        b".".to_vec()
                    } else {
                        dir.to_vec()
                    };
                    full.push(b'/');
                    full.extend_from_slice(argv[0].as_bytes());
                    c_string(&full, path)
                })
                .collect::<Result<_, _>>()?
        };
        let mut strings = Vec::with_capacity(argv.len() + env.len() + 1);
        for arg in argv {
            strings.push(c_string(arg.as_bytes(), arg)?);
        }
        for (name, value) in env {
            let mut pair = name.as_bytes().to_vec();
            pair.push(b'=');
            pair.extend_from_slice(value.as_bytes());
            strings.push(c_string(&pair, name)?);
        }
        strings.push(c"/bin/sh".to_owned());
        let pointers = |range: std::ops::Range<usize>| {
            let mut list: Vec<*const libc::c_char> =
                strings[range].iter().map(|s| s.as_ptr()).collect();
            list.push(std::ptr::null());
            list
        };
        let argv_ptrs = pointers(0..argv.len());
        let envp = pointers(argv.len()..argv.len() + env.len());
        let mut script = vec![strings[strings.len() - 1].as_ptr(), std::ptr::null()];
        script.extend_from_slice(&argv_ptrs[1..]);
        Ok(Command {
            name,
            candidates,
            argv: argv_ptrs,
            envp,
            script_argv: std::cell::UnsafeCell::new(script),
            _strings: strings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{self, Net};
    use crate::spec::SandboxSpec;

    fn text(c: &CStr) -> String {
        c.to_string_lossy().into_owned()
    }

    /// Every option `args::build` gives a step is implemented: the plan binds what
    /// bubblewrap would, where it would, with the same flags.
    #[test]
    fn a_steps_arguments_become_its_plan() {
        let ws = tempfile::tempdir().unwrap();
        let etc = tempfile::tempdir().unwrap();
        let mut spec = SandboxSpec::new(ws.path(), vec!["make".into(), "all".into()]);
        spec.env.push(("PATH".into(), "/usr/bin:/bin".into()));
        spec.env.push(("A".into(), "1 2".into()));
        let args = args::build(&spec, etc.path(), Net::Own, None);
        let plan = Plan::from_args(&args).unwrap();
        assert!(plan.new_network);
        assert_eq!(text(&plan.hostname), crate::spec::HOSTNAME);
        assert_eq!(text(&plan.workdir), crate::spec::WORKSPACE_DIR);
        let binds: Vec<(String, String, u64)> = plan
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Bind {
                    source, dest, attr, ..
                } => Some((text(source), text(dest), *attr)),
                _ => None,
            })
            .collect();
        let ro = ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV;
        assert!(binds.contains(&("/oldroot/usr".into(), "/newroot/usr".into(), ro)));
        let etc_source = format!("/oldroot{}", etc.path().display());
        assert!(binds.contains(&(etc_source, "/newroot/etc".into(), ro)));
        let ws_source = format!("/oldroot{}", ws.path().display());
        assert!(binds.contains(&(
            ws_source,
            "/newroot/workspace".into(),
            ATTR_NOSUID | ATTR_NODEV
        )));
        assert!(binds.contains(&(
            "/oldroot/dev/null".into(),
            "/newroot/dev/null".into(),
            ATTR_NOSUID
        )));
        assert!(binds.contains(&("/newroot/proc/sys".into(), "/newroot/proc/sys".into(), ro)));
        // Mount points are made before their mounts, parents first.
        let position = |wanted: &str| {
            plan.ops
                .iter()
                .position(|op| matches!(op, Op::Dir(d) if text(d) == wanted))
        };
        assert!(position("/newroot/workspace").is_some());
        let home = format!("/newroot{}", crate::spec::HOME_DIR);
        assert!(position("/newroot/home") < position(&home));
        assert!(position("/newroot/home").is_some());
        assert!(matches!(plan.ops.last(), Some(Op::ReadOnly(root)) if text(root) == "/newroot"));

        let command = &plan.command;
        assert_eq!(text(&command.name), "make");
        let candidates: Vec<String> = command.candidates.iter().map(|c| text(c)).collect();
        assert_eq!(candidates, ["/usr/bin/make", "/bin/make"]);
        // SAFETY: the pointers point into the plan's own strings, NULL-terminated.
        let env: Vec<String> = command
            .envp
            .iter()
            .take_while(|p| !p.is_null())
            .map(|&p| unsafe { text(CStr::from_ptr(p)) })
            .collect();
        assert_eq!(env, ["PATH=/usr/bin:/bin", "A=1 2", "PWD=/workspace"]);
        assert_eq!(command.argv.len(), 3);
        assert!(command.argv[2].is_null());
    }

    #[test]
    fn what_it_does_not_implement_is_refused() {
        let ws = tempfile::tempdir().unwrap();
        let etc = tempfile::tempdir().unwrap();
        let spec = SandboxSpec::new(ws.path(), vec!["true".into()]);
        let good = args::build(&spec, etc.path(), Net::Own, None);
        let refuse = |args: Vec<OsString>| match Plan::from_args(&args) {
            Err(SandboxError::InvalidSpec { field, .. }) => field == "sandbox arguments",
            _ => false,
        };
        let mut unknown = good.clone();
        unknown.insert(0, "--seccomp".into());
        assert!(refuse(unknown));
        // A sandbox that would outlive its parent is not this runtime's.
        assert!(refuse(
            good.iter()
                .filter(|a| *a != "--die-with-parent")
                .cloned()
                .collect()
        ));
        let mut escape = good.clone();
        let at = escape.iter().position(|a| a == "--").unwrap();
        escape.splice(
            at..at,
            ["--bind".into(), "/tmp".into(), "/a/../../b".into()],
        );
        assert!(refuse(escape));
        let mut relative = good.clone();
        relative.splice(at..at, ["--bind".into(), "tmp".into(), "/b".into()]);
        assert!(refuse(relative));
        assert!(refuse(good[..at + 1].to_vec()));
    }
}
