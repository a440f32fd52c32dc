//! The components' global allocator: a bump arena over the instance's linear memory.
//!
//! The host instantiates a fresh component for every evaluation and drops its memory afterwards, so memory a policy
//! frees never needs to be reused. Allocation is a pointer bump and freeing does nothing, except for the most recent
//! block: it can grow or shrink in place, or be handed back (a `String` or `Vec` growing as it is filled, a temporary
//! dropped straight away). Against the default allocator this takes ~7 µs off each ~43 µs evaluation of a default
//! plugin (BENCHMARKS.md). Blocks come from a region reserved in the component's initial memory
//! ([`RESERVED_BYTES`]), then from memory grown in chunks of [`GROWTH_PAGES`]; when the memory cap refuses a growth
//! the allocation fails and the host reports that the policy went over its memory limit, as with any allocator.
//!
//! The bookkeeping is plain arithmetic over addresses behind [`Grow`], so it is unit tested natively against a
//! simulated memory; only the `GlobalAlloc` wrapper and [`WasmMemory`] are `wasm32` code. It relies on one fact of
//! the target: wasm32-wasip2 components run on one thread (no `atomics` feature), so the `Cell`s are never shared.

#![allow(unsafe_code)]

use core::cell::Cell;

/// A WebAssembly page.
pub const PAGE_BYTES: usize = 65536;
/// Memory is grown by at least this many pages at a time (256 KiB): one growth covers a default plugin's evaluation
/// of a typical pod, and pages it does not touch cost nothing.
pub const GROWTH_PAGES: usize = 4;

/// Where the arena gets memory: a reserved region, then `memory.grow`, in a component; a simulation in tests.
pub trait Grow {
    /// The region to use before growing the memory: `(start, length)` in bytes.
    fn reserved(&self) -> (usize, usize);
    /// Grow the memory by `pages`; the previous size in pages, or `None` when refused.
    fn grow(&self, pages: usize) -> Option<usize>;
}

/// The arena's bookkeeping over addresses. See the module docs.
pub struct Arena<G> {
    /// Where the next block may start.
    next: Cell<usize>,
    /// The end of the memory the arena owns (it starts owning nothing; the first allocation grows the memory).
    end: Cell<usize>,
    grower: G,
}

impl<G: Grow> Arena<G> {
    /// An arena that owns no memory yet.
    pub const fn new(grower: G) -> Self {
        Self {
            next: Cell::new(0),
            end: Cell::new(0),
            grower,
        }
    }

    /// The start of a new block of `size` bytes aligned to `align` (a power of two), or `None` when the memory
    /// cannot grow.
    pub fn allocate(&self, size: usize, align: usize) -> Option<usize> {
        if let Some(start) = self.fit(self.next.get(), size, align) {
            return Some(start);
        }
        if self.end.get() == 0 {
            // The first allocation: start with the reserved region.
            let (start, len) = self.grower.reserved();
            self.next.set(start);
            self.end.set(start + len);
            if let Some(start) = self.fit(start, size, align) {
                return Some(start);
            }
        }
        // `size + align` bytes hold the block whether or not the new memory follows the arena's.
        self.extend(size.checked_add(align)?)?;
        self.fit(self.next.get(), size, align)
    }

    /// Give back the block at `start` of `size` bytes: reclaimed only when it is the most recent one.
    pub fn release(&self, start: usize, size: usize) {
        if start.checked_add(size) == Some(self.next.get()) {
            self.next.set(start);
        }
    }

    /// Resize the block at `start` from `old` to `new` bytes where it is, which works when it is the most recent
    /// block (growing the memory behind it if needed). False: the caller moves it.
    pub fn resize_in_place(&self, start: usize, old: usize, new: usize) -> bool {
        let (Some(old_end), Some(new_end)) = (start.checked_add(old), start.checked_add(new))
        else {
            return false;
        };
        if old_end != self.next.get() {
            return false;
        }
        if new_end > self.end.get() && self.extend(new_end - self.end.get()) != Some(true) {
            return false;
        }
        self.next.set(new_end);
        true
    }

    /// Grow the owned memory by at least `bytes`; `Some(true)` when the new memory directly follows it. Otherwise
    /// something else in the component (wasi-libc's own malloc) grew the memory since, and the arena goes on in the
    /// new region.
    fn extend(&self, bytes: usize) -> Option<bool> {
        let (region, len) = self.grow_by(bytes)?;
        let contiguous = region == self.end.get();
        if !contiguous {
            self.next.set(region);
        }
        self.end.set(region + len);
        Some(contiguous)
    }

    /// Place a block at `from` if it fits in the owned memory.
    fn fit(&self, from: usize, size: usize, align: usize) -> Option<usize> {
        let start = from.checked_add(align - 1)? & !(align - 1);
        let end = start.checked_add(size)?;
        (end <= self.end.get()).then(|| {
            self.next.set(end);
            start
        })
    }

    /// Grow the memory by at least `bytes` (a chunk when the cap allows, else the exact pages): the new region's
    /// start and length in bytes.
    fn grow_by(&self, bytes: usize) -> Option<(usize, usize)> {
        let pages = bytes.div_ceil(PAGE_BYTES);
        [pages.max(GROWTH_PAGES), pages]
            .into_iter()
            .find_map(|pages| {
                let previous = self.grower.grow(pages)?;
                Some((previous.checked_mul(PAGE_BYTES)?, pages * PAGE_BYTES))
            })
    }
}

/// How much of the component's initial memory the arena reserves for itself (zeroed, in `.bss`). Its pages are part
/// of the memory the component starts with, which the host resets in place between evaluations: a typical
/// evaluation never grows the memory (growing costs ~5 µs of `mprotect` and page faults each time).
pub const RESERVED_BYTES: usize = 512 * 1024;

/// The reserved region's storage.
#[cfg(target_arch = "wasm32")]
#[repr(align(16))]
struct Reserved(core::cell::UnsafeCell<[u8; RESERVED_BYTES]>);

// SAFETY: only the arena hands out this memory, block by block (see `GlobalArena`'s `Sync`).
#[cfg(target_arch = "wasm32")]
unsafe impl Sync for Reserved {}

#[cfg(target_arch = "wasm32")]
static RESERVED: Reserved = Reserved(core::cell::UnsafeCell::new([0; RESERVED_BYTES]));

/// The component's own linear memory (index 0).
#[cfg(target_arch = "wasm32")]
pub struct WasmMemory;

#[cfg(target_arch = "wasm32")]
impl Grow for WasmMemory {
    fn reserved(&self) -> (usize, usize) {
        (RESERVED.0.get() as usize, RESERVED_BYTES)
    }

    fn grow(&self, pages: usize) -> Option<usize> {
        let previous = core::arch::wasm32::memory_grow(0, pages);
        (previous != usize::MAX).then_some(previous)
    }
}

/// The global allocator of every plugin built with `policy-kit` (feature `arena`, on by default).
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
pub struct GlobalArena(Arena<WasmMemory>);

// SAFETY: without the `atomics` target feature a wasm32 component has a single thread, so the arena's `Cell`s are
// never reached from two threads at once (the `cfg` above enforces the condition).
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl Sync for GlobalArena {}

#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
impl GlobalArena {
    /// An arena that owns no memory yet.
    pub const fn new() -> Self {
        Self(Arena::new(WasmMemory))
    }
}

#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
impl Default for GlobalArena {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every block handed out lies in memory the arena obtained from `memory.grow` and no other block overlaps
// it: `next` only moves back over the most recent block, when that block is freed or resized.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl core::alloc::GlobalAlloc for GlobalArena {
    unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
        self.0
            .allocate(layout.size(), layout.align())
            .map_or(core::ptr::null_mut(), |start| start as *mut u8)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: core::alloc::Layout) {
        self.0.release(ptr as usize, layout.size());
    }

    unsafe fn realloc(
        &self,
        ptr: *mut u8,
        layout: core::alloc::Layout,
        new_size: usize,
    ) -> *mut u8 {
        if self
            .0
            .resize_in_place(ptr as usize, layout.size(), new_size)
        {
            return ptr;
        }
        // SAFETY: the caller guarantees `new_size` with `layout.align()` forms a valid layout (GlobalAlloc's
        // contract for `realloc`).
        let new_layout =
            unsafe { core::alloc::Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as for `alloc`.
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            // SAFETY: both blocks are live and distinct (the new one was just bumped past the old one), each at
            // least this long.
            unsafe { core::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size)) };
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A simulated linear memory: `pages` now, refusing to go past `cap`; `others` pages are grown by "someone
    /// else" before each growth the arena asks for.
    struct Memory {
        reserved: (usize, usize),
        pages: Cell<usize>,
        cap: usize,
        others: Cell<usize>,
    }

    impl Memory {
        fn new(pages: usize, cap: usize) -> Self {
            Self {
                reserved: (0, 0),
                pages: Cell::new(pages),
                cap,
                others: Cell::new(0),
            }
        }
    }

    impl Grow for &Memory {
        fn reserved(&self) -> (usize, usize) {
            self.reserved
        }

        fn grow(&self, pages: usize) -> Option<usize> {
            self.pages.set(self.pages.get() + self.others.take());
            let previous = self.pages.get();
            (previous + pages <= self.cap).then(|| {
                self.pages.set(previous + pages);
                previous
            })
        }
    }

    #[test]
    fn bumps_aligned_blocks_after_the_initial_memory() {
        let memory = Memory::new(17, 1000);
        let arena = Arena::new(&memory);
        let first = arena.allocate(10, 8).unwrap();
        assert_eq!(
            first,
            17 * PAGE_BYTES,
            "starts past the memory the module began with"
        );
        assert_eq!(
            memory.pages.get(),
            17 + GROWTH_PAGES,
            "grows a chunk, not a page"
        );
        assert_eq!(arena.allocate(4, 4).unwrap(), first + 12, "aligned");
        assert_eq!(arena.allocate(1, 16).unwrap(), first + 16);
        // A block larger than a chunk gets its exact pages.
        let big = arena.allocate(10 * PAGE_BYTES, 8).unwrap();
        assert!(big + 10 * PAGE_BYTES <= memory.pages.get() * PAGE_BYTES);
    }

    #[test]
    fn the_reserved_region_comes_first_then_grown_memory() {
        let memory = Memory {
            reserved: (1000, 4096),
            ..Memory::new(2, 1000)
        };
        let arena = Arena::new(&memory);
        assert_eq!(arena.allocate(100, 8).unwrap(), 1000);
        assert_eq!(arena.allocate(3000, 16).unwrap(), 1104);
        assert_eq!(memory.pages.get(), 2, "no growth while the region has room");
        // The rest of the region is too small: the block goes to grown memory.
        assert_eq!(arena.allocate(1000, 8).unwrap(), 2 * PAGE_BYTES);
        assert_eq!(memory.pages.get(), 2 + GROWTH_PAGES);
    }

    #[test]
    fn the_latest_block_is_freed_and_resized_in_place() {
        let memory = Memory::new(1, 1000);
        let arena = Arena::new(&memory);
        let a = arena.allocate(100, 8).unwrap();
        let b = arena.allocate(100, 8).unwrap();
        // Not the latest: neither freed nor resized.
        arena.release(a, 100);
        assert!(!arena.resize_in_place(a, 100, 200));
        // The latest grows in place, past the owned memory too (the memory grows right behind it).
        assert!(arena.resize_in_place(b, 100, 5 * PAGE_BYTES));
        assert!(arena.resize_in_place(b, 5 * PAGE_BYTES, 50));
        arena.release(b, 50);
        assert_eq!(arena.allocate(8, 8).unwrap(), b, "freed space is reused");
    }

    #[test]
    fn memory_grown_by_someone_else_is_skipped() {
        let memory = Memory::new(1, 1000);
        let arena = Arena::new(&memory);
        let a = arena.allocate(16, 8).unwrap();
        memory.others.set(3);
        // Growing in place fails when the new memory does not follow the arena's; the caller moves the block.
        assert!(!arena.resize_in_place(a, 16, GROWTH_PAGES * PAGE_BYTES + 100));
        let moved = arena.allocate(GROWTH_PAGES * PAGE_BYTES, 8).unwrap();
        assert!(moved >= (1 + GROWTH_PAGES + 3) * PAGE_BYTES, "{moved}");
        memory.others.set(2);
        let next = arena.allocate(GROWTH_PAGES * PAGE_BYTES, 8).unwrap();
        assert!(next > moved);
    }

    #[test]
    fn the_memory_cap_fails_the_allocation_and_exact_growth_is_tried_first() {
        let memory = Memory::new(1, 3);
        let arena = Arena::new(&memory);
        // A chunk (4 pages) would pass the cap; the exact page still fits.
        assert!(arena.allocate(100, 8).is_some());
        assert_eq!(memory.pages.get(), 2);
        assert!(arena.allocate(2 * PAGE_BYTES, 8).is_none());
        assert_eq!(arena.allocate(usize::MAX - 4, 8), None, "no overflow");
    }
}
