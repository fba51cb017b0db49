//! The shell: index.html's static copy of the signed-out page, shown (and clickable) while the
//! wasm loads config.json and the identity provider's metadata (issue 20). The app takes it down
//! in the same task that mounts its own identical view, so the page neither flashes nor moves.

/// Removes the shell; `true` when the user clicked its Sign In before the app was ready (the
/// inline script in index.html marked it `data-sign-in`), which the app then honours.
pub fn take() -> bool {
    let Some(shell) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("shell"))
    else {
        return false;
    };
    let requested = shell.has_attribute("data-sign-in");
    shell.remove();
    requested
}
