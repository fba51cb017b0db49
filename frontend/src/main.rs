//! Entry point: trunk builds this for wasm32 and calls `main` once the module has loaded.

fn main() {
    #[cfg(target_arch = "wasm32")]
    frontend::app::mount();
}
