//! cairn's own sandbox runtime: the namespaces, the root filesystem and the start of
//! the command, set up by cairn's reaper and the sandbox's init instead of by an
//! executed bubblewrap. It builds the sandbox bubblewrap would build from the same
//! arguments ([`crate::args`]), stricter in two ways (its user namespace belongs to
//! root, not to the sandbox user; its mounts are private, not the host's slaves),
//! and leaves everything around a start as it was: the reaper, the run cgroup, the
//! limits, bubblewrap's JSON status on the status descriptor, the supervision.
//!
//! ```text
//! cairn ── reaper (subreaper, in the cgroup) ── init (pid 1) ── command
//! ```
//!
//! Why: executing bubblewrap cost two thirds of a sandboxed start (it re-reads
//! `/proc/self/mountinfo` after every bind to keep locked flags, where
//! `mount_setattr(2)` with `AT_RECURSIVE` does it in one call), and its set-up
//! bounds how fast the chain's stages follow each other.
//!
//! The init shares the reaper's memory (`CLONE_VM`: no copy of cairn's page tables,
//! the largest host-side cost of a start) and runs on a stack of its own. It never
//! allocates and makes only async-signal-safe system calls. That memory is never
//! dumpable (the init makes sure), so nothing in the sandbox can read or write it:
//! `ptrace` and `/proc/1/mem` need `CAP_SYS_PTRACE` in the host's user namespace.
//! Detached sandboxes ([`crate::start_detached`]) still execute bubblewrap.

mod init;
mod plan;

pub(crate) use init::{
    Handshake, InitArg, child_pid_line, exit_code_line, init_main, proc_file, write_file,
};
pub(crate) use plan::Plan;

use std::ffi::CString;
use std::sync::OnceLock;

use crate::error::SandboxError;

/// What `/proc/<pid>/cmdline` shows of the reaper and the init.
const TITLE: &[u8] = b"cairn-sandbox";

/// Where this process's command line is, read once from `/proc/self/stat`
/// (`arg_start` and `arg_end`, fields 48 and 49; they never change).
fn command_line() -> Result<(usize, usize), SandboxError> {
    static AREA: OnceLock<Option<(usize, usize)>> = OnceLock::new();
    let area = AREA.get_or_init(|| {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace().skip(45);
        let start = fields.next()?.parse().ok()?;
        let end = fields.next()?.parse().ok()?;
        (start > 0 && end >= start).then_some((start, end))
    });
    area.ok_or_else(|| SandboxError::Io {
        action: "find this process's command line in /proc/self/stat",
        source: std::io::Error::from(std::io::ErrorKind::InvalidData),
    })
}

/// How much stack the init and the command (until its exec) each run on.
const STACK_BYTES: usize = 128 << 10;
/// The inaccessible page below each stack: an overflow faults, never writes on.
const GUARD_BYTES: usize = 4 << 10;

/// A start of the native runtime, prepared before the fork: the plan and the id maps
/// the reaper writes. The stacks are the reaper's own ([`Stacks`]).
#[derive(Debug)]
pub(crate) struct Runtime {
    pub(crate) plan: Plan,
    /// `/proc/<init>/uid_map` and `gid_map`: the ids inside, mapped to the sandbox
    /// user's outside.
    pub(crate) uid_map: CString,
    pub(crate) gid_map: CString,
    /// Where this process's command line is (`arg_start`..`arg_end`): the reaper
    /// overwrites its copy with [`TITLE`], which is what the init shows too.
    command_line: (usize, usize),
}

// SAFETY: `plan` is Send + Sync (see `plan::Command`).
unsafe impl Sync for Runtime {}

/// The init's and the command's stacks, mapped by the reaper after the fork (in its
/// own memory, which the init and the command share), each above a guard page.
/// Mapped there, not allocated by cairn before it: cairn's zeroing of fresh stacks
/// for every start wrote to pages its last reaper still shared copy-on-write, a
/// copy and a TLB shootdown per page.
pub(crate) struct Stacks {
    base: *mut u8,
}

impl Stacks {
    const BYTES: usize = 2 * (GUARD_BYTES + STACK_BYTES);

    /// Maps both stacks; `None` (errno set) if the kernel refuses.
    ///
    /// # Safety
    /// In the reaper only: system calls, no allocation.
    pub(crate) unsafe fn map() -> Option<Stacks> {
        // SAFETY: an anonymous private mapping of our own; the guard pages are
        // inside it.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                Self::BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return None;
            }
            let base = base.cast::<u8>();
            for which in 0..2 {
                let guard = base.add(which * (GUARD_BYTES + STACK_BYTES));
                if libc::mprotect(guard.cast(), GUARD_BYTES, libc::PROT_NONE) != 0 {
                    libc::munmap(base.cast(), Self::BYTES);
                    return None;
                }
            }
            Some(Stacks { base })
        }
    }

    /// The top of the init's (0) or the command's (1) stack, 16-byte aligned (the
    /// stack grows down).
    pub(crate) fn top(&self, which: usize) -> *mut libc::c_void {
        let end = (which & 1) * (GUARD_BYTES + STACK_BYTES) + GUARD_BYTES + STACK_BYTES;
        (self.base.wrapping_add(end) as usize & !15) as *mut libc::c_void
    }
}

impl Runtime {
    pub(crate) fn new(plan: Plan) -> Result<Runtime, SandboxError> {
        let command_line = command_line()?;
        let (outside_uid, outside_gid) = plan::ids();
        let map = |inside: u32, outside: u32| {
            // Digits and spaces only.
            CString::new(format!("{inside} {outside} 1\n")).unwrap_or_default()
        };
        Ok(Runtime {
            uid_map: map(plan.uid, outside_uid),
            gid_map: map(plan.gid, outside_gid),
            command_line,
            plan,
        })
    }

    /// Overwrites this process's command line with [`TITLE`] (zeros after it), as
    /// setproctitle does: `/proc/<pid>/cmdline` of the reaper and of the init (the
    /// sandbox's `/proc/1/cmdline`) shows that, never cairn's arguments.
    ///
    /// # Safety
    /// Only in the reaper (cairn's forked child): its copy of the memory changes.
    pub(crate) unsafe fn retitle(&self) {
        let (start, end) = self.command_line;
        let length = end.saturating_sub(start);
        let title = &TITLE[..TITLE.len().min(length)];
        // SAFETY: the range is this process's argument area (read from the kernel
        // before the fork; a forked copy has the same mappings), which nothing here
        // reads any more.
        unsafe {
            std::ptr::write_bytes(start as *mut u8, 0, length);
            std::ptr::copy_nonoverlapping(title.as_ptr(), start as *mut u8, title.len());
        }
    }
}
