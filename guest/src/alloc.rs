//! The component's memory allocator: free lists per size class in front of the system one.
//!
//! Building one component's objects makes a few hundred small allocations (strings, maps,
//! JSON text) and frees them all again. In wasm the system allocator (dlmalloc) is about a
//! fifth of the build; a block taken from and returned to a list per power-of-two size is a
//! handful of instructions. Blocks return to their list, never to dlmalloc: the component
//! keeps the high-water mark of each size, which is small and bounded by the memory limit.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr;

/// The smallest block; a freed block holds the list's next pointer.
const MIN_SIZE: usize = 16;
/// The largest block kept in a list; larger ones go to the system allocator.
const MAX_SIZE: usize = 4096;
/// Blocks are aligned this much; more demanding layouts go to the system allocator.
const ALIGN: usize = 8;
/// 16, 32, … 4096 bytes.
const CLASSES: usize = (MAX_SIZE / MIN_SIZE).trailing_zeros() as usize + 1;

/// Free lists of blocks of `16 << class` bytes, taken from `system` when empty.
#[derive(Debug)]
pub struct FreeLists<A> {
    system: A,
    heads: UnsafeCell<[*mut u8; CLASSES]>,
}

// SAFETY: a component instance runs on one thread (wasm32-wasip2 has no threads), so the
// lists are never touched concurrently.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl<A: Sync> Sync for FreeLists<A> {}

impl<A> FreeLists<A> {
    /// Empty lists in front of `system`.
    pub const fn new(system: A) -> Self {
        Self {
            system,
            heads: UnsafeCell::new([ptr::null_mut(); CLASSES]),
        }
    }
}

/// The size class serving `layout`, if one does.
fn class(layout: Layout) -> Option<usize> {
    if layout.size() > MAX_SIZE || layout.align() > ALIGN {
        return None;
    }
    let size = layout.size().max(MIN_SIZE).next_power_of_two();
    Some((size / MIN_SIZE).trailing_zeros() as usize)
}

/// The layout of the blocks of `class`.
fn block(class: usize) -> Layout {
    // 16 << class is at most MAX_SIZE and a power of two; ALIGN is a power of two.
    Layout::from_size_align(MIN_SIZE << class, ALIGN).unwrap_or(Layout::new::<[u64; 2]>())
}

// SAFETY: every block handed out is either fresh from `system` or a block of the same class
// that was returned to its list, at least `layout.size()` bytes and `ALIGN`-aligned
// (≥ `layout.align()`); a list only holds blocks no one else holds.
unsafe impl<A: GlobalAlloc> GlobalAlloc for FreeLists<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class(layout) else {
            // SAFETY: the caller's layout, passed on.
            return unsafe { self.system.alloc(layout) };
        };
        // SAFETY: one thread, and no other reference to the lists lives across this call.
        let heads = unsafe { &mut *self.heads.get() };
        let head = heads[class];
        if head.is_null() {
            // SAFETY: a non-zero size.
            return unsafe { self.system.alloc(block(class)) };
        }
        // SAFETY: `head` is a free block of this class; its first word is the next one.
        heads[class] = unsafe { head.cast::<*mut u8>().read() };
        head
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(class) = class(layout) else {
            // SAFETY: blocks outside the classes came from `system` with this layout.
            return unsafe { self.system.dealloc(ptr, layout) };
        };
        // SAFETY: as in `alloc`; the block is ours again, large and aligned enough for a
        // pointer.
        unsafe {
            let heads = &mut *self.heads.get();
            ptr.cast::<*mut u8>().write(heads[class]);
            heads[class] = ptr;
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: GlobalAlloc's contract: `new_size` rounded up to `align` does not overflow.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class(layout), class(new_layout)) {
            // A string growing within its block: nothing to do.
            (Some(old), Some(new)) if old == new => ptr,
            // SAFETY: both outside the classes: the block is the system's, with `layout`.
            (None, None) => unsafe { self.system.realloc(ptr, layout, new_size) },
            _ => {
                // SAFETY: `new_layout` is valid (above); the old block holds `layout.size()`
                // bytes and the new one `new_size`; both are ours until freed.
                unsafe {
                    let new = self.alloc(new_layout);
                    if !new.is_null() {
                        ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    new
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn sizes_map_to_power_of_two_classes() {
        assert_eq!(CLASSES, 9);
        assert_eq!(class(layout(1, 1)), Some(0));
        assert_eq!(class(layout(16, 8)), Some(0));
        assert_eq!(class(layout(17, 1)), Some(1));
        assert_eq!(class(layout(4096, 8)), Some(8));
        assert_eq!(class(layout(4097, 1)), None);
        assert_eq!(class(layout(32, 16)), None);
        for c in 0..CLASSES {
            assert_eq!(class(block(c)), Some(c));
        }
    }

    #[test]
    fn a_freed_block_is_reused_by_its_class_only() {
        let lists = FreeLists::new(System);
        unsafe {
            let a = lists.alloc(layout(24, 8));
            lists.dealloc(a, layout(24, 8));
            // Another size of the same class (17..=32) gets the same block back.
            assert_eq!(lists.alloc(layout(32, 4)), a);
            let b = lists.alloc(layout(10, 1));
            assert_ne!(b, a);
            lists.dealloc(b, layout(10, 1));
            lists.dealloc(a, layout(32, 4));
            assert_eq!(lists.alloc(layout(30, 2)), a);
            assert_eq!(lists.alloc(layout(16, 8)), b);
        }
    }

    #[test]
    fn realloc_keeps_the_bytes_across_classes_and_sizes() {
        let lists = FreeLists::new(System);
        unsafe {
            let mut size = 5;
            let mut p = lists.alloc(layout(size, 1));
            p.copy_from_nonoverlapping(b"berth".as_ptr(), 5);
            // Grow through every class and beyond, then shrink back.
            for new_size in [16, 20, 64, 1000, 4096, 5000, 70_000, 3000, 12, 5] {
                let q = lists.realloc(p, layout(size, 1), new_size);
                assert!(!q.is_null());
                if class(layout(size, 1)).is_some()
                    && class(layout(size, 1)) == class(layout(new_size, 1))
                {
                    assert_eq!(q, p, "{size} -> {new_size} stays in its block");
                }
                assert_eq!(
                    std::slice::from_raw_parts(q, 5),
                    b"berth",
                    "{size} -> {new_size}"
                );
                (p, size) = (q, new_size);
            }
            lists.dealloc(p, layout(size, 1));
        }
    }

    #[test]
    fn blocks_are_aligned_for_any_layout_they_serve() {
        let lists = FreeLists::new(System);
        let mut live = Vec::new();
        unsafe {
            for size in 1..=300 {
                for align in [1, 2, 4, 8] {
                    let l = layout(size, align);
                    let p = lists.alloc(l);
                    assert_eq!(p as usize % align, 0);
                    p.write_bytes(0xab, size);
                    live.push((p, l));
                }
            }
            for (p, l) in live.drain(..) {
                lists.dealloc(p, l);
            }
        }
    }
}
