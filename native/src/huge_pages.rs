//! Transparent huge pages for big cache arrays. Block tables scatter a
//! sequence's tiles over the whole cache, so with 4 KiB pages nearly every
//! tile is a TLB miss; with 2 MiB pages the TLB covers the cache. Linux
//! only gives huge pages to anonymous memory that asks (`enabled` is
//! usually `madvise`), and only at first touch, so the backend asks right
//! after allocating a cache, before writing it.

/// Advises the kernel to back `[p, p + bytes)` with huge pages; true when
/// the advice was taken. A hint: contents and correctness never change.
pub fn advise_huge_pages(p: *const u8, bytes: usize) -> bool {
    #[cfg(target_os = "linux")]
    {
        extern "C" {
            fn madvise(addr: *mut std::ffi::c_void, length: usize, advice: i32) -> i32;
        }
        const MADV_HUGEPAGE: i32 = 14;
        const PAGE: usize = 4096;
        // madvise wants page-aligned bounds: shrink the range inward.
        let start = (p as usize).next_multiple_of(PAGE);
        let end = (p as usize + bytes) / PAGE * PAGE;
        if end <= start {
            return false;
        }
        // Safety: the range lies inside the caller's live allocation, and
        // MADV_HUGEPAGE changes no contents.
        unsafe { madvise(start as *mut std::ffi::c_void, end - start, MADV_HUGEPAGE) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (p, bytes);
        false
    }
}
