//! A global allocator wrapper for allocation-counting tests: every
//! allocation (alloc, alloc_zeroed, realloc) first calls the test's hook,
//! which decides what counts (this thread's, or the relay threads').

#![allow(unsafe_code)] // a global allocator; each block has its SAFETY note

use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, calling `.0` before each allocation.
pub struct Counting(pub fn());

// SAFETY: every call is forwarded to `System` unchanged; the hook runs
// before it and touches none of the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        (self.0)();
        // SAFETY: the caller's contract, passed on to `System` unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        (self.0)();
        // SAFETY: the caller's contract, passed on to `System` unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        (self.0)();
        // SAFETY: the caller's contract, passed on to `System` unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on to `System` unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}
