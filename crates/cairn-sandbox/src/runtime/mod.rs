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

/// A start of the native runtime, prepared before the fork: the plan, the id maps
/// the reaper writes, and the two stacks.
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
    /// The init's and the command's, written only in the reaper's copy of this
    /// memory (which the init and the command share).
    stacks: [std::cell::UnsafeCell<Vec<u8>>; 2],
}

// SAFETY: `plan` is Send + Sync (see `plan::Command`); the stacks are written only
// after the fork, in the reaper's own copy, by one process at a time (the command's
// while the init is suspended in its vfork).
unsafe impl Sync for Runtime {}

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
            stacks: [
                std::cell::UnsafeCell::new(vec![0u8; STACK_BYTES]),
                std::cell::UnsafeCell::new(vec![0u8; STACK_BYTES]),
            ],
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

    /// The top of the init's (0) or the command's (1) stack, 16-byte aligned (the
    /// stack grows down).
    ///
    /// # Safety
    /// Only in the reaper or the init, for the process about to run on it.
    pub(crate) unsafe fn stack_top(&self, which: usize) -> *mut libc::c_void {
        // SAFETY: per the contract, no other process uses this stack now.
        let stack = unsafe { &mut *self.stacks[which & 1].get() };
        let end = stack.as_mut_ptr().wrapping_add(stack.len()) as usize;
        (end & !15) as *mut libc::c_void
    }
}
