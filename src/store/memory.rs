//! Memory accounting and the allocator: the counting global allocator the
//! binary installs (over jemalloc by default, see Cargo features
//! `jemalloc` / `mimalloc`, or the system allocator without them), INFO's
//! `used_memory`, the allocator's own figures for INFO's `allocator_*`
//! fields, handing freed memory back to the OS, and the process RSS.
//!
//! `used_memory` counts what the allocator really hands out: over jemalloc
//! each allocation is counted at its size class (`nallocx`), as Redis's
//! zmalloc counts `malloc_usable_size`, so it tracks jemalloc's own
//! `stats.allocated`; over the other allocators it counts requested bytes.
//! Library tests run without the global allocator: the count is then 0.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

#[cfg(feature = "jemalloc")]
type Inner = tikv_jemallocator::Jemalloc;
#[cfg(feature = "jemalloc")]
const INNER: Inner = tikv_jemallocator::Jemalloc;

#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
type Inner = mimalloc::MiMalloc;
#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
const INNER: Inner = mimalloc::MiMalloc;

#[cfg(not(any(feature = "jemalloc", feature = "mimalloc")))]
type Inner = std::alloc::System;
#[cfg(not(any(feature = "jemalloc", feature = "mimalloc")))]
const INNER: Inner = std::alloc::System;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

/// The bytes the allocator holds for an allocation of `layout`.
#[inline]
fn counted(layout: Layout) -> usize {
    #[cfg(feature = "jemalloc")]
    {
        // tikv-jemallocator's flags: an alignment flag only where the
        // natural alignment of the size class does not already cover it.
        let (size, align) = (layout.size(), layout.align());
        let flags = if align <= 16 && align <= size {
            0
        } else {
            align.trailing_zeros() as std::os::raw::c_int
        };
        // SAFETY: nallocx only computes a size class; size > 0 for every
        // layout GlobalAlloc is called with.
        unsafe { tikv_jemalloc_sys::nallocx(size.max(1), flags) }
    }
    #[cfg(not(feature = "jemalloc"))]
    {
        layout.size()
    }
}

/// Wraps the build's allocator and counts live bytes. The binary installs
/// it with `#[global_allocator]`.
pub struct CountingAllocator;

unsafe impl GlobalAlloc for CountingAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = INNER.alloc(layout);
        if !ptr.is_null() {
            ALLOCATED.fetch_add(counted(layout), Ordering::Relaxed);
        }
        ptr
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        INNER.dealloc(ptr, layout);
        ALLOCATED.fetch_sub(counted(layout), Ordering::Relaxed);
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = INNER.alloc_zeroed(layout);
        if !ptr.is_null() {
            ALLOCATED.fetch_add(counted(layout), Ordering::Relaxed);
        }
        ptr
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_ptr = INNER.realloc(ptr, layout, new_size);
        if !new_ptr.is_null() {
            let old = counted(layout);
            // SAFETY: GlobalAlloc::realloc's contract makes this layout valid.
            let new = counted(Layout::from_size_align_unchecked(new_size, layout.align()));
            if new > old {
                ALLOCATED.fetch_add(new - old, Ordering::Relaxed);
            } else {
                ALLOCATED.fetch_sub(old - new, Ordering::Relaxed);
            }
        }
        new_ptr
    }
}

/// Bytes currently allocated through [`CountingAllocator`].
pub fn used_memory() -> usize {
    ALLOCATED.load(Ordering::Relaxed)
}

/// INFO's `mem_allocator`: the allocator this process allocates with
/// ("libc" where [`CountingAllocator`] is not installed: library tests).
pub fn allocator_name() -> String {
    if used_memory() == 0 {
        return "libc".to_string();
    }
    #[cfg(feature = "jemalloc")]
    {
        let version = tikv_jemalloc_ctl::version::read().unwrap_or("5");
        // "5.3.0-1-g…": Redis prints "jemalloc-5.3.0".
        let short = version.split('-').next().unwrap_or(version);
        format!("jemalloc-{short}")
    }
    #[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
    {
        "mimalloc".to_string()
    }
    #[cfg(not(any(feature = "jemalloc", feature = "mimalloc")))]
    {
        "libc".to_string()
    }
}

/// The allocator's own figures (INFO's `allocator_*` fields), as Redis
/// reads them from jemalloc: bytes in live allocations, in active pages,
/// resident, and mapped but kept back from the OS (retained).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocatorStats {
    pub allocated: usize,
    pub active: usize,
    pub resident: usize,
    pub retained: usize,
}

/// The allocator's figures; `None` where the allocator gives none (the
/// system allocator, mimalloc) or it is not the global one (library tests).
pub fn allocator_stats() -> Option<AllocatorStats> {
    #[cfg(feature = "jemalloc")]
    {
        use tikv_jemalloc_ctl::{epoch, stats};
        if used_memory() == 0 {
            return None;
        }
        epoch::advance().ok()?;
        Some(AllocatorStats {
            allocated: stats::allocated::read().ok()?,
            active: stats::active::read().ok()?,
            resident: stats::resident::read().ok()?,
            retained: stats::retained::read().ok()?,
        })
    }
    #[cfg(not(feature = "jemalloc"))]
    {
        None
    }
}

/// Starts the allocator's own upkeep at process start: jemalloc's
/// background threads, which hand dirty pages back to the OS as they decay
/// even while the server is idle (Redis turns them on too).
pub fn start_allocator_upkeep() {
    #[cfg(feature = "jemalloc")]
    {
        if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
            tracing::warn!("jemalloc background threads not started: {e}");
        }
    }
}

/// Hands the memory that is free inside the allocator back to the OS at
/// once (after a flush frees a large keyspace): jemalloc purges every
/// arena, glibc trims its heaps.
pub fn release_free_memory() {
    #[cfg(feature = "jemalloc")]
    {
        // "arena.<MALLCTL_ARENAS_ALL>.purge": no argument, no result.
        let name = b"arena.4096.purge\0";
        // SAFETY: a NUL-terminated mallctl name, and null old/new pointers
        // as the purge control takes neither.
        unsafe {
            tikv_jemalloc_sys::mallctl(
                name.as_ptr().cast(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            );
        }
    }
    #[cfg(all(
        not(any(feature = "jemalloc", feature = "mimalloc")),
        target_os = "linux",
        target_env = "gnu"
    ))]
    {
        // SAFETY: malloc_trim has no preconditions.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Resident set size of this process in bytes (0 where unavailable).
pub fn rss_bytes() -> usize {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// "1.50M"-style formatting used by INFO's `*_human` fields.
pub fn human_bytes(bytes: usize) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", b / (1024.0 * 1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_size_covers_the_request() {
        for (size, align) in [(1, 1), (7, 8), (24, 8), (100, 4), (4097, 8), (64, 64)] {
            let layout = Layout::from_size_align(size, align).unwrap();
            let n = counted(layout);
            assert!(n >= size, "{size} bytes counted as {n}");
            assert!(n <= size.max(align) * 2 + 16, "{size} bytes counted as {n}");
        }
    }

    #[test]
    fn without_the_global_allocator_nothing_is_counted() {
        // Library tests run on the default allocator, not CountingAllocator.
        assert_eq!(used_memory(), 0);
        assert_eq!(allocator_stats(), None);
        assert_eq!(allocator_name(), "libc");
        release_free_memory();
    }
}
