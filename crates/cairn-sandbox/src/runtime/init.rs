//! The sandbox's init (pid 1 of its namespaces) and the command's start: the code
//! that runs after the reaper's clone, on memory prepared before the first fork.
//! Async-signal-safe system calls only, no allocation, no panics.
//!
//! The order, bubblewrap's:
//! 1. die with the reaper; every signal disposition at its default; close what
//!    the sandbox must not hold;
//! 2. wait until the reaper has written the id maps, then become the sandbox's
//!    user and group inside (with every capability, in this user namespace only),
//!    die with the reaper again (the id change disarmed that), undumpable;
//! 3. no nested user namespaces, the hostname, loopback up;
//! 4. the root: every mount made private, a tmpfs with the host's root moved
//!    aside ([`OLD_ROOT`]) and the sandbox's assembled at [`NEW_ROOT`] (the plan's
//!    ops), then the host's root detached and the new one pivoted to;
//! 5. every capability dropped (bounding and ambient sets too), no new privileges;
//! 6. a prepared sandbox waits here for its release; the command started in a new
//!    session (a vfork: the init waits for its exec), then the init reaps until
//!    the command has ended and exits with its status.

use std::ffi::CStr;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use super::Runtime;
use super::plan::{NEW_ROOT, OLD_ROOT, Op};
use crate::args::{BLOCK_FD, STATUS_FD};
use crate::prepared::NOT_RELEASED;

/// The reaper has cloned the init, and is writing its id maps.
const STAGE_CLONED: u32 = 1;
/// The maps are written: the init goes on.
const STAGE_MAPPED: u32 = 2;
/// The reaper gave up (it kills the init).
const STAGE_ABANDONED: u32 = 3;

/// What the reaper and the init share (one memory).
#[derive(Debug)]
pub(crate) struct Handshake {
    stage: AtomicU32,
    /// Set by the init once the command's exec was attempted: from then on the
    /// init's exit status is the command's, and the reaper reports it.
    ran: AtomicU32,
    /// The command's failed exec, for the init to report.
    exec_errno: AtomicI32,
}

impl Handshake {
    pub(crate) fn new() -> Handshake {
        Handshake {
            stage: AtomicU32::new(STAGE_CLONED),
            ran: AtomicU32::new(0),
            exec_errno: AtomicI32::new(0),
        }
    }

    /// In the reaper: the maps are written (`true`), or the init is abandoned.
    pub(crate) fn release(&self, mapped: bool) {
        let stage = if mapped {
            STAGE_MAPPED
        } else {
            STAGE_ABANDONED
        };
        self.stage.store(stage, Ordering::SeqCst);
        // SAFETY: futex(2) wake on a word of ours.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.stage.as_ptr(),
                libc::FUTEX_WAKE,
                libc::c_int::MAX,
            );
        }
    }

    /// In the reaper, once the init has exited: whether its status is the command's.
    pub(crate) fn ran(&self) -> bool {
        self.ran.load(Ordering::SeqCst) != 0
    }
}

/// What the reaper hands the init.
#[derive(Debug)]
pub(crate) struct InitArg<'a> {
    pub(crate) runtime: &'a Runtime,
    pub(crate) shared: &'a Handshake,
    /// A pidfd of the reaper: readable once it has exited.
    pub(crate) reaper: libc::c_int,
    /// Descriptors from here up are closed at once; below, 0-2 and (if this is 5)
    /// the release descriptor of a prepared sandbox stay.
    pub(crate) first_closed: libc::c_uint,
    /// A prepared sandbox ([`crate::prepare`]): once everything is set up, the init
    /// waits for the release line on [`BLOCK_FD`] before it starts the command.
    pub(crate) held: bool,
    /// The command's stack (until its exec), the reaper's.
    pub(crate) command_stack: *mut libc::c_void,
}

/// The init's entry point (see the module).
///
/// # Safety
/// `arg` is the reaper's `InitArg`, alive for as long as the init runs (the reaper
/// does not return while it has children).
pub(crate) extern "C" fn init_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: per the contract above; everything below is system calls on memory
    // prepared before the fork.
    unsafe {
        let arg = &*(arg as *const InitArg<'_>);
        arg.run()
    }
}

/// `{ "exit-code": N }` as bubblewrap writes it, into `buffer`.
pub(crate) fn exit_code_line(code: i32, buffer: &mut [u8; 48]) -> &[u8] {
    json_line(b"{ \"exit-code\": ", code, buffer)
}

/// `{ "child-pid": N }` as bubblewrap writes it, into `buffer`.
pub(crate) fn child_pid_line(pid: i32, buffer: &mut [u8; 48]) -> &[u8] {
    json_line(b"{ \"child-pid\": ", pid, buffer)
}

fn json_line<'b>(key: &[u8], value: i32, buffer: &'b mut [u8; 48]) -> &'b [u8] {
    let mut digits = [0u8; 12];
    let number = decimal(value, &mut digits);
    let mut at = 0;
    for part in [key, number, b" }\n"] {
        for &byte in part {
            if let Some(slot) = buffer.get_mut(at) {
                *slot = byte;
                at += 1;
            }
        }
    }
    &buffer[..at]
}

/// `value` in decimal, into the end of `buffer`.
fn decimal(value: i32, buffer: &mut [u8; 12]) -> &[u8] {
    let negative = value < 0;
    let mut rest = value.unsigned_abs();
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if negative {
        at -= 1;
        buffer[at] = b'-';
    }
    &buffer[at..]
}

/// `/proc/<pid>/<name>` into `buffer`, NUL-terminated.
pub(crate) fn proc_file<'b>(pid: i32, name: &[u8], buffer: &'b mut [u8; 64]) -> &'b CStr {
    let mut digits = [0u8; 12];
    let number = decimal(pid, &mut digits);
    let mut at = 0;
    for part in [b"/proc/".as_slice(), number, b"/", name] {
        for &byte in part {
            if at + 1 < buffer.len() {
                buffer[at] = byte;
                at += 1;
            }
        }
    }
    buffer[at] = 0;
    CStr::from_bytes_until_nul(&buffer[..=at]).unwrap_or(c"")
}

/// Writes `bytes` to the file at `path` in one write; the errno if that fails.
///
/// # Safety
/// Async-signal-safe: callable in a forked child.
pub(crate) unsafe fn write_file(path: &CStr, bytes: &[u8]) -> Result<(), i32> {
    // SAFETY: open/write/close on a NUL-terminated path and a live slice.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(errno());
        }
        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        let error = errno();
        libc::close(fd);
        if usize::try_from(written).ok() == Some(bytes.len()) {
            Ok(())
        } else {
            Err(if written < 0 { error } else { libc::EIO })
        }
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Writes `parts` to stderr, best effort.
fn say(parts: &[&[u8]]) {
    for part in parts {
        // SAFETY: write(2) of a live slice to fd 2.
        unsafe {
            libc::write(2, part.as_ptr().cast(), part.len());
        }
    }
}

/// The text of `errno`, into `buffer`.
fn describe(errno: i32, buffer: &mut [u8; 128]) -> &[u8] {
    // SAFETY: strerror_r(3) (the XSI one) writes at most `len` bytes, NUL-terminated.
    let rc = unsafe { libc::strerror_r(errno, buffer.as_mut_ptr().cast(), buffer.len()) };
    if rc != 0 {
        return b"unknown error";
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    &buffer[..end]
}

/// Reports a failed step of the set-up on stderr (the last line of which cairn
/// shows as the reason) and ends the init: the reaper writes no exit code, so the
/// run is a set-up error.
fn die(action: &[u8], path: Option<&CStr>, errno: i32) -> ! {
    let mut text = [0u8; 128];
    let path = path.map_or(&[][..], shown);
    say(&[
        b"cairn-sandbox: ",
        action,
        if path.is_empty() { b"" } else { b" " },
        path,
        b": ",
        describe(errno, &mut text),
        b"\n",
    ]);
    // SAFETY: _exit(2) ends this process only.
    unsafe { libc::_exit(1) }
}

/// A path as the host (a mount source) or the sandbox (a mount point) names it:
/// without the prefix it has while the root is assembled.
fn shown(path: &CStr) -> &[u8] {
    let bytes = path.to_bytes();
    for prefix in [OLD_ROOT, NEW_ROOT] {
        if let Some(rest) = bytes.strip_prefix(prefix.to_bytes())
            && rest.first() == Some(&b'/')
        {
            return rest;
        }
    }
    bytes
}

/// `Err(errno)` when a system call returned a negative value.
fn check(rc: libc::c_int) -> Result<(), i32> {
    if rc < 0 { Err(errno()) } else { Ok(()) }
}

/// Directory and file mount points: one that exists is fine.
fn exists_ok(result: Result<(), i32>) -> Result<(), i32> {
    match result {
        Err(libc::EEXIST) => Ok(()),
        other => other,
    }
}

/// `mount_setattr(2)`'s argument.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Sets `attr` on the mount at `path` (and every mount below it if `recursive`).
///
/// # Safety
/// A system call on a NUL-terminated path.
unsafe fn set_attr(path: &CStr, attr: u64, recursive: bool) -> Result<(), i32> {
    let attr = MountAttr {
        attr_set: attr,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // The path is resolved as mount(2) resolved it (links followed), so the
    // attributes land on the mount just made there.
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: mount_setattr(2) reads `size` bytes of `attr`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 { Err(errno()) } else { Ok(()) }
}

/// `capset(2)`'s header and data (version 3: two words).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}
#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

impl InitArg<'_> {
    /// # Safety
    /// In the init only.
    unsafe fn run(&self) -> ! {
        // SAFETY (whole body): system calls on prepared memory; see the module.
        unsafe {
            libc::prctl(libc::PR_SET_NAME, c"init".as_ptr(), 0, 0, 0);
            // 1. The reaper's death is ours; if it is already gone, nothing starts.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                die(b"binding its life to the reaper's", None, errno());
            }
            let mut reaper = libc::pollfd {
                fd: self.reaper,
                events: libc::POLLIN,
                revents: 0,
            };
            if libc::poll(&mut reaper, 1, 0) != 0 {
                libc::_exit(1);
            }
            // No handler and nothing ignored: glibc's own two signals included (its
            // sigaction refuses them, the system call does not). Signals sent from
            // inside the sandbox to its init are then dropped by the kernel, the
            // waits below are never interrupted, and the command starts with
            // every disposition at its default.
            let default = [0u64; 4];
            for signal in 1..=64 {
                if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                    libc::syscall(
                        libc::SYS_rt_sigaction,
                        signal,
                        default.as_ptr(),
                        std::ptr::null_mut::<u64>(),
                        8,
                    );
                }
            }
            // The status descriptor is the reaper's; the rest (std's exec-status
            // pipe, anything inherited close-on-exec) nobody's here. The reaper's
            // pidfd is closed once the parent-death signal is armed for good.
            libc::close(STATUS_FD);
            let reaper_fd = self.reaper as libc::c_uint;
            let closed = [
                (self.first_closed, reaper_fd.saturating_sub(1)),
                (reaper_fd + 1, libc::c_uint::MAX),
            ]
            .iter()
            .filter(|(first, last)| first <= last)
            .all(|&(first, last)| libc::syscall(libc::SYS_close_range, first, last, 0) == 0);
            if !closed {
                die(b"closing inherited descriptors", None, errno());
            }

            // 2. The maps.
            while self.shared.stage.load(Ordering::SeqCst) == STAGE_CLONED {
                libc::syscall(
                    libc::SYS_futex,
                    self.shared.stage.as_ptr(),
                    libc::FUTEX_WAIT,
                    STAGE_CLONED,
                    std::ptr::null::<libc::timespec>(),
                );
            }
            if self.shared.stage.load(Ordering::SeqCst) != STAGE_MAPPED {
                libc::_exit(1);
            }
            let plan = &self.runtime.plan;
            if let Err(e) = check(libc::setresgid(plan.gid, plan.gid, plan.gid))
                .and_then(|()| check(libc::setresuid(plan.uid, plan.uid, plan.uid)))
            {
                die(b"switching to the sandbox's user", None, e);
            }
            // A change of ids clears the parent-death signal: armed again, and the
            // reaper checked again (it may have died in between).
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                die(b"binding its life to the reaper's", None, errno());
            }
            if libc::poll(&mut reaper, 1, 0) != 0 {
                libc::_exit(1);
            }
            libc::close(self.reaper);
            // This memory is the reaper's too: never readable or writable through
            // ptrace or /proc from the sandbox.
            if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
                die(b"making the init undumpable", None, errno());
            }

            // 3. No user namespace below this one: its own limit, which only
            // CAP_SYS_RESOURCE here (dropped below) could raise.
            let limit = c"/proc/sys/user/max_user_namespaces";
            if let Err(e) = write_file(limit, b"0") {
                die(b"disabling nested user namespaces in", Some(limit), e);
            }
            let hostname = plan.hostname.to_bytes();
            if !hostname.is_empty()
                && libc::sethostname(hostname.as_ptr().cast(), hostname.len()) != 0
            {
                die(b"setting the hostname", None, errno());
            }
            if plan.new_network
                && let Err(e) = loopback_up()
            {
                die(b"bringing up the loopback interface", None, e);
            }

            // 4. The root.
            self.assemble_root();

            // 5. Nothing left to gain.
            if let Err(e) = drop_capabilities() {
                die(b"dropping capabilities", None, e);
            }

            // 6. The command: once released, if held.
            if self.held {
                self.wait_for_release();
            }
            let command = libc::clone(
                command_main,
                self.command_stack,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                (self as *const InitArg<'_>).cast_mut().cast(),
            );
            if command < 0 {
                die(b"starting the command", None, errno());
            }
            let failed = self.shared.exec_errno.load(Ordering::SeqCst);
            self.shared.ran.store(1, Ordering::SeqCst);
            if failed != 0 {
                let mut text = [0u8; 128];
                say(&[
                    b"cairn-sandbox: execvp ",
                    plan.command.name.to_bytes(),
                    b": ",
                    describe(failed, &mut text),
                    b"\n",
                ]);
                libc::_exit(if failed == libc::EACCES { 126 } else { 127 });
            }
            // The init holds nothing the command's readers wait on.
            libc::syscall(libc::SYS_close_range, 0, libc::c_uint::MAX, 0);
            // No signal handler is installed here: wait4 is never interrupted, and
            // fails only once no child is left.
            loop {
                let mut status = 0;
                let pid = libc::wait4(-1, &mut status, 0, std::ptr::null_mut());
                if pid == command {
                    if libc::WIFEXITED(status) {
                        libc::_exit(libc::WEXITSTATUS(status));
                    }
                    libc::_exit(128 + libc::WTERMSIG(status));
                }
                if pid < 0 {
                    libc::_exit(255);
                }
            }
        }
    }

    /// A prepared sandbox, set up to the command's start: waits for a line on
    /// [`BLOCK_FD`] (named `cairn-held` meanwhile), then closes it, so the command
    /// starts with the descriptors of a direct run. End of file first (cairn gone,
    /// or the sandbox discarded) ends the init with [`NOT_RELEASED`] and nothing
    /// run; nothing of the sandbox's own runs before the release either.
    ///
    /// # Safety
    /// In the init only.
    unsafe fn wait_for_release(&self) {
        // SAFETY (whole body): system calls on a buffer of this frame.
        unsafe {
            libc::prctl(libc::PR_SET_NAME, c"cairn-held".as_ptr(), 0, 0, 0);
            let mut line = [0u8; 64];
            loop {
                let read = libc::read(BLOCK_FD, line.as_mut_ptr().cast(), line.len());
                if read > 0 {
                    if line[..read as usize].contains(&b'\n') {
                        break;
                    }
                    continue;
                }
                // No handler is installed, so no EINTR either: end of file, or an
                // error; either way nobody released it.
                self.shared.ran.store(1, Ordering::SeqCst);
                libc::_exit(NOT_RELEASED);
            }
            libc::close(BLOCK_FD);
            libc::prctl(libc::PR_SET_NAME, c"init".as_ptr(), 0, 0, 0);
        }
    }

    /// Step 4 (see the module); dies on the first failure, naming it.
    ///
    /// # Safety
    /// In the init only, after step 2.
    unsafe fn assemble_root(&self) {
        // SAFETY (whole body): system calls on prepared, NUL-terminated paths.
        unsafe {
            let none = std::ptr::null::<libc::c_char>();
            // Every mount private before anything is bound (a bind of a private mount
            // is private): nothing mounted here reaches the host's namespace, and
            // nothing the host mounts later reaches the sandbox (bubblewrap leaves
            // its mounts the host's slaves).
            check(libc::mount(
                none,
                c"/".as_ptr(),
                none,
                libc::MS_PRIVATE | libc::MS_REC,
                std::ptr::null(),
            ))
            .unwrap_or_else(|e| die(b"making private the mounts of", Some(c"/"), e));
            let base = c"/tmp";
            check(libc::mount(
                c"tmpfs".as_ptr(),
                base.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                c"mode=0755".as_ptr().cast(),
            ))
            .unwrap_or_else(|e| die(b"mounting the assembly tmpfs on", Some(base), e));
            check(libc::chdir(base.as_ptr())).unwrap_or_else(|e| die(b"entering", Some(base), e));
            let (new, old) = (c"newroot", c"oldroot");
            exists_ok(check(libc::mkdir(new.as_ptr(), 0o755)))
                .and_then(|()| {
                    check(libc::mount(
                        new.as_ptr(),
                        new.as_ptr(),
                        none,
                        libc::MS_BIND | libc::MS_REC,
                        std::ptr::null(),
                    ))
                })
                .and_then(|()| exists_ok(check(libc::mkdir(old.as_ptr(), 0o755))))
                .and_then(|()| {
                    check(libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), old.as_ptr()) as i32)
                })
                .and_then(|()| check(libc::chdir(c"/".as_ptr())))
                .unwrap_or_else(|e| die(b"moving the host's root aside to", Some(OLD_ROOT), e));

            for op in &self.runtime.plan.ops {
                run_op(op);
            }
            let (new_root, old_root) = (NEW_ROOT, OLD_ROOT);
            check(libc::umount2(old_root.as_ptr(), libc::MNT_DETACH))
                .unwrap_or_else(|e| die(b"detaching the host's root at", Some(old_root), e));
            check(libc::chdir(new_root.as_ptr()))
                .and_then(|()| {
                    check(libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) as i32)
                })
                .and_then(|()| check(libc::umount2(c".".as_ptr(), libc::MNT_DETACH)))
                .and_then(|()| check(libc::chdir(c"/".as_ptr())))
                .unwrap_or_else(|e| die(b"pivoting to the sandbox's root", Some(new_root), e));
            let workdir = &self.runtime.plan.workdir;
            check(libc::chdir(workdir.as_ptr()))
                .unwrap_or_else(|e| die(b"changing to the working directory", Some(workdir), e));
        }
    }
}

/// One op of the plan; dies on failure, naming it.
///
/// # Safety
/// In the init only, while it assembles the root.
unsafe fn run_op(op: &Op) {
    let none = std::ptr::null::<libc::c_char>();
    // SAFETY (whole body): system calls on the op's NUL-terminated paths.
    unsafe {
        match op {
            Op::Dir(path) => exists_ok(check(libc::mkdir(path.as_ptr(), 0o755)))
                .unwrap_or_else(|e| die(b"creating the mount point", Some(path), e)),
            Op::File(path) => {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_WRONLY
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC,
                    0o444,
                );
                if fd >= 0 {
                    libc::close(fd);
                } else {
                    exists_ok(Err(errno()))
                        .unwrap_or_else(|e| die(b"creating the mount point", Some(path), e));
                }
            }
            Op::Bind {
                source,
                dest,
                attr,
                optional,
            } => {
                let bound = check(libc::mount(
                    source.as_ptr(),
                    dest.as_ptr(),
                    none,
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ));
                match bound {
                    Ok(()) => set_attr(dest, *attr, true)
                        .unwrap_or_else(|e| die(b"restricting the mount at", Some(dest), e)),
                    Err(libc::ENOENT | libc::EACCES) if *optional => {}
                    Err(e) => die(b"can't bind", Some(source), e),
                }
            }
            Op::Symlink { target, dest } => check(libc::symlink(target.as_ptr(), dest.as_ptr()))
                .unwrap_or_else(|e| die(b"creating the link", Some(dest), e)),
            Op::Mount {
                fstype,
                dest,
                flags,
                data,
            } => check(libc::mount(
                fstype.as_ptr(),
                dest.as_ptr(),
                fstype.as_ptr(),
                *flags,
                data.as_ref()
                    .map_or(std::ptr::null(), |d| d.as_ptr().cast()),
            ))
            .unwrap_or_else(|e| die(b"mounting a new filesystem at", Some(dest), e)),
            Op::ReadOnly(path) => set_attr(
                path,
                super::plan::ATTR_RDONLY | super::plan::ATTR_NOSUID | super::plan::ATTR_NODEV,
                false,
            )
            .unwrap_or_else(|e| die(b"making read-only", Some(path), e)),
        }
    }
}

/// `lo` up in the sandbox's own network namespace (the kernel gives it its
/// addresses).
///
/// # Safety
/// Async-signal-safe.
unsafe fn loopback_up() -> Result<(), i32> {
    // SAFETY: socket/ioctl/close on a request structure on our stack.
    unsafe {
        let socket = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if socket < 0 {
            return Err(errno());
        }
        let mut request: libc::ifreq = std::mem::zeroed();
        for (slot, &byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
            *slot = byte as libc::c_char;
        }
        let mut result = check(libc::ioctl(socket, libc::SIOCGIFFLAGS, &mut request));
        if result.is_ok() {
            request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            result = check(libc::ioctl(socket, libc::SIOCSIFFLAGS, &request));
        }
        libc::close(socket);
        result
    }
}

/// Every capability gone for good: the bounding and ambient sets emptied, then the
/// effective, permitted and inheritable sets; and no exec may gain privileges.
///
/// # Safety
/// Async-signal-safe.
unsafe fn drop_capabilities() -> Result<(), i32> {
    // SAFETY: prctl(2) and capset(2) on structures on our stack.
    unsafe {
        for capability in 0..64 {
            if libc::prctl(libc::PR_CAPBSET_DROP, capability, 0, 0, 0) != 0 {
                let e = errno();
                // Past the kernel's last capability.
                if e != libc::EINVAL {
                    return Err(e);
                }
            }
        }
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        ) != 0
        {
            return Err(errno());
        }
        let header = CapHeader {
            version: CAPABILITY_VERSION_3,
            pid: 0,
        };
        let none = [CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        if libc::syscall(libc::SYS_capset, &header as *const CapHeader, none.as_ptr()) != 0 {
            return Err(errno());
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(errno());
        }
        Ok(())
    }
}

/// The command's process until its exec (it borrows the init's memory, and the
/// init waits): a new session, then bubblewrap's `execvp`: each candidate path in
/// order, a script without `#!` run by `/bin/sh`. A failure is left for the init
/// to report.
extern "C" fn command_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the init's `InitArg`, alive while the init is suspended in
    // its vfork; system calls only.
    unsafe {
        let arg = &*(arg as *const InitArg<'_>);
        let command = &arg.runtime.plan.command;
        let mut failed = libc::ENOENT;
        if libc::setsid() < 0 {
            failed = errno();
        } else {
            let mut denied = false;
            for candidate in &command.candidates {
                libc::execve(
                    candidate.as_ptr(),
                    command.argv.as_ptr(),
                    command.envp.as_ptr(),
                );
                let mut e = errno();
                if e == libc::ENOEXEC {
                    let script = &mut *command.script_argv.get();
                    if let Some(slot) = script.get_mut(1) {
                        *slot = candidate.as_ptr();
                    }
                    libc::execve(c"/bin/sh".as_ptr(), script.as_ptr(), command.envp.as_ptr());
                    e = errno();
                }
                match e {
                    libc::EACCES => denied = true,
                    libc::ENOENT
                    | libc::ENOTDIR
                    | libc::ESTALE
                    | libc::ENODEV
                    | libc::ETIMEDOUT => {}
                    _ => {
                        failed = e;
                        denied = false;
                        break;
                    }
                }
                failed = e;
            }
            if denied {
                failed = libc::EACCES;
            }
        }
        arg.shared.exec_errno.store(failed, Ordering::SeqCst);
        libc::_exit(127)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_bubblewraps() {
        let mut buffer = [0u8; 48];
        assert_eq!(
            child_pid_line(2976, &mut buffer),
            b"{ \"child-pid\": 2976 }\n"
        );
        assert_eq!(exit_code_line(0, &mut buffer), b"{ \"exit-code\": 0 }\n");
        assert_eq!(
            exit_code_line(-12, &mut buffer),
            b"{ \"exit-code\": -12 }\n"
        );
        assert_eq!(
            exit_code_line(i32::MIN, &mut buffer),
            b"{ \"exit-code\": -2147483648 }\n"
        );
        let mut path = [0u8; 64];
        assert_eq!(proc_file(42, b"uid_map", &mut path), c"/proc/42/uid_map");
    }
}
