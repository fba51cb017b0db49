//! Entry point: trunk builds this for wasm32 and calls `main` once the module has loaded.

/// The heap of the wasm: lol_alloc's free list (freed blocks are reused and coalesced, so the
/// long-running page does not grow without bound) is a few hundred bytes of code where std's
/// dlmalloc was ~4 KB (issue 7). The spin lock of `LockedAllocator` is never contended in the
/// browser's one thread, and unlike `AssumeSingleThreaded` it needs no `unsafe`.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());

fn main() {
    #[cfg(target_arch = "wasm32")]
    frontend::app::mount();
}
