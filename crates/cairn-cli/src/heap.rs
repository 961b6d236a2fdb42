//! The heap of a short command that allocates much and exits (`cairn scan`): one
//! reservation, before it allocates the most, on transparent huge pages.
//!
//! A scan of a large lockfile allocates a few megabytes in tens of thousands of
//! small pieces. glibc grows its heap 128 KiB at a time, and every fresh 4 KiB
//! page costs a page fault: some 800 of a 908-crate scan's 1,400, a fifth of its
//! time on this kind of host (each fault a trap, on a virtual machine an
//! expensive one). Here the heap grows once, by [`RESERVE`], and that range is
//! advised for huge pages (`MADV_HUGEPAGE`; this host's `transparent_hugepage` is
//! `madvise`), so it faults in 2 MiB at a time: what `GLIBC_TUNABLES=
//! glibc.malloc.top_pad=4194304:glibc.malloc.hugetlb=1` does, for this one
//! command, without an environment variable. Nothing changes but where the pages
//! come from: the same allocator, the same allocations.
//!
//! Best effort: where the kernel has no transparent huge pages, or `brk` cannot
//! grow, the heap stays as it was. Not for long-running commands: the reserve
//! stays mapped.

/// From how many components a scan reserves its heap: below, the first huge
/// page's zeroing (some 0.1 ms) costs more than the page faults it saves.
pub(crate) const MANY_COMPONENTS: usize = 200;

/// How far the heap grows at once (a multiple of 2 MiB, so whole huge pages
/// fit in it wherever it starts).
const RESERVE: usize = 8 << 20;
const HUGE_PAGE: usize = 2 << 20;
/// The block whose allocation makes the heap grow: more than a fresh heap has
/// left at its top (the mmap threshold is raised above it meanwhile, so it
/// comes from the heap).
const BLOCK: usize = 1 << 20;
/// glibc's default `M_MMAP_THRESHOLD`.
const DEFAULT_MMAP_THRESHOLD: libc::c_int = 128 << 10;
/// Room for malloc's chunk headers between the kept block and the first huge page.
const KEPT_SLACK: usize = 64;
/// A page: malloc writes the heap's new free top's header right after the
/// block, and that page is faulted in then, before any advice.
const PAGE: usize = 4 << 10;

/// Grows the heap by [`RESERVE`] now and advises it for huge pages. Call once,
/// in a short command, before it allocates the most.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn reserve_on_huge_pages() {
    // SAFETY: mallopt(3), sbrk(0), malloc(3) and free(3) as documented, and
    // madvise(2) on whole huge pages of the heap's free top, which malloc owns
    // and nothing has touched (advice, not a change of contents).
    unsafe {
        // Grow by the reserve whenever it grows, and never give the top back.
        // The block below comes from the heap (not a mapping of its own) and is
        // larger than what the heap has left, so the heap grows now.
        if libc::mallopt(libc::M_TOP_PAD, RESERVE as libc::c_int) == 0
            || libc::mallopt(libc::M_TRIM_THRESHOLD, (2 * RESERVE) as libc::c_int) == 0
            || libc::mallopt(libc::M_MMAP_THRESHOLD, (RESERVE + BLOCK) as libc::c_int) == 0
        {
            return;
        }
        let block = libc::malloc(BLOCK);
        if !block.is_null() && !advise_and_fill(block) {
            libc::free(block);
        }
        // Large allocations are mappings of their own again, as by default.
        libc::mallopt(libc::M_MMAP_THRESHOLD, DEFAULT_MMAP_THRESHOLD);
    }
}

/// `block`, just allocated, lies at the start of the heap's new room: the
/// whole huge pages above it and the page malloc wrote after it, up to the
/// top, are advised for huge pages, and `block` is resized in place to end
/// right below the first of them, so that the allocations to come start on
/// one. `false` when there is nothing to advise (`block` is then the
/// caller's to free).
///
/// A huge page only comes on a fault in a range that has no small page yet:
/// so no range the block or that header page touches is advised. (Advising
/// from the block's own start lost one of two huge pages in a third of the
/// scans: the header fell in the first, which then faulted in 4 KiB at a
/// time, some 500 faults more.)
///
/// # Safety
/// `block` is from `malloc` and untouched, the mmap threshold above
/// `RESERVE + BLOCK`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe fn advise_and_fill(block: *mut libc::c_void) -> bool {
    // SAFETY: see `reserve_on_huge_pages`; realloc(3) of a heap chunk that
    // the free top follows resizes it where it is (shrinking gives the rest
    // back to the top; growing takes from it); a moved block is still a
    // valid allocation, only the huge pages are then used less.
    unsafe {
        let at = block as usize;
        let top = libc::sbrk(0) as usize;
        // Only the main thread allocates from the heap `brk` grows (another
        // thread's come from mappings of their own): elsewhere, nothing to do.
        if top == usize::MAX || at > top || top - at > 2 * RESERVE {
            return false;
        }
        let touched = (at + BLOCK + KEPT_SLACK).next_multiple_of(PAGE);
        let start = touched.next_multiple_of(HUGE_PAGE);
        let end = top & !(HUGE_PAGE - 1);
        if end <= start
            || libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) != 0
        {
            return false;
        }
        // Kept, untouched but for malloc's headers: it costs a page or two.
        !libc::realloc(block, start - at - KEPT_SLACK).is_null()
    }
}

/// Elsewhere the heap stays as it is.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn reserve_on_huge_pages() {}
