//! A counting global allocator that attributes live heap bytes to the part
//! of the process whose thread made the allocation. RSS alone cannot tell
//! siphon's memory from the in-process browsers' and echo's.
//!
//! Attribution is by the allocating and the freeing thread; it is exact as
//! long as memory does not cross domains, which holds for everything a call
//! keeps: siphon, the echo and the clients only talk over sockets.

#![allow(unsafe_code)] // a global allocator; each block has its SAFETY note

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};

/// Where a thread's allocations are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Domain {
    /// siphon and the bench's main thread (the default).
    Siphon = 0,
    /// The echo UAS runtime.
    Echo = 1,
    /// The lightweight browsers' runtime.
    Client = 2,
}

const DOMAINS: usize = 3;

/// One cache line per counter: the relay, echo and client threads allocate
/// concurrently and must not contend on a shared line.
#[repr(align(64))]
struct Counter(AtomicI64);

static LIVE: [Counter; DOMAINS] = [
    Counter(AtomicI64::new(0)),
    Counter(AtomicI64::new(0)),
    Counter(AtomicI64::new(0)),
];

thread_local! {
    // Const-initialised and without a destructor: safe to read from inside
    // the allocator, even while a thread is being torn down.
    static DOMAIN: Cell<u8> = const { Cell::new(Domain::Siphon as u8) };
}

/// Count this thread's future allocations under `domain`.
pub fn enter(domain: Domain) {
    DOMAIN.with(|d| d.set(domain as u8));
}

/// Live heap bytes per domain: (siphon, echo, client).
pub fn live() -> [i64; DOMAINS] {
    [0, 1, 2].map(|i| LIVE[i].0.load(Ordering::Relaxed))
}

fn add(delta: i64) {
    let d = DOMAIN.try_with(Cell::get).unwrap_or(0) as usize;
    LIVE[d].0.fetch_add(delta, Ordering::Relaxed);
}

/// The system allocator plus per-domain counts.
pub struct Counting;

// SAFETY: every call is forwarded to `System` unchanged; counting has no
// effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on to `System` unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(layout.size() as i64);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on to `System` unchanged.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on to `System` unchanged.
        unsafe { System.dealloc(ptr, layout) };
        add(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on to `System` unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(new_size as i64 - layout.size() as i64);
        }
        p
    }
}
