//! What the e2e tests share: the workspace's paths and binaries, temporary folders, log files in
//! `test-output/`, and the dev IdP's configuration for the browser tests. Child processes and the
//! stack itself are testkit's. Set-up failures panic: they fail the test.
#![allow(dead_code, unused_macros, unused_imports, clippy::unwrap_used)]

/// `ensure!(condition, "format", args…)`: a failed scenario step, with what was seen.
macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

pub mod browser;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use testkit::{ChildOutput, ChildServer};

/// The repository root (this crate is `backend/e2e`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// Where failing tests leave screenshots, console logs and child logs (git-ignored).
pub fn test_output_dir() -> PathBuf {
    let dir = workspace_root().join("test-output");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A server binary of this workspace, built now (a no-op when `scripts/test` built it already) with
/// the profile of this test, so the test never runs a stale binary. The package is named as its binary.
pub fn workspace_binary(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, path)) = built.iter().find(|(n, _)| n == name) {
        return path.clone();
    }
    // This test runs from target/<profile dir>/deps/; the binary lands in target/<profile dir>/.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => panic!("cannot tell the cargo profile from {}", exe.display()),
    };
    let status = Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .args([
            "build",
            "--quiet",
            "--profile",
            profile,
            "-p",
            name,
            "--bin",
            name,
        ])
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {name}: {e}"));
    assert!(status.success(), "cargo build -p {name} failed");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} missing after cargo build",
        path.display()
    );
    built.push((name.to_owned(), path.clone()));
    path
}

/// A folder under the system temp dir, removed when dropped.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(label: &str) -> Self {
        Self(
            tempfile::Builder::new()
                .prefix(&format!("e2e-{label}-"))
                .tempdir()
                .unwrap(),
        )
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// The stack's three server binaries, built for this test's profile.
pub fn binaries() -> testkit::Binaries {
    testkit::Binaries {
        dev_idp: workspace_binary("dev-idp"),
        hello: workspace_binary("hello"),
        gateway: workspace_binary("gateway"),
    }
}

/// A browser test's stack: the SPA at `spa_origin`, the dev IdP's data and its configuration
/// file — `<data>/devidp.toml`, which the test writes before the spawn — in `data`, the user flow
/// trusted, each server's log in `test-output/<name>.<server>.log`.
pub fn browser_stack(
    name: &str,
    function_key: &str,
    spa_origin: &str,
    data: &TempDir,
) -> testkit::StackOptions {
    let mut stack = testkit::StackOptions::new(binaries(), name, function_key);
    stack.log_dir = Some(test_output_dir());
    stack.ready_timeout = browser::STEP;
    let wiring = &mut stack.wiring;
    wiring.spa_origins = vec![spa_origin.to_owned()];
    wiring.trust = testkit::Trust::UserFlow;
    wiring.idp_data_dir = Some(data.path().join("idp"));
    wiring.idp_config = Some(data.path().join("devidp.toml"));
    stack
}

/// Output into `test-output/<file>`.
pub fn log(file: &str) -> ChildOutput {
    ChildOutput::Log(test_output_dir().join(file))
}

// The development tenant of contract.md, as the browser tests configure and use it.
pub use testkit::dev_tenant::{
    ALICE, ALICE_NAME, ALICE_PASSWORD, API_CLIENT_ID, API_SCOPE_URI as API_SCOPE,
    CONSOLE_CLIENT_ID, IDP_HOST, POLICY, SPA_CLIENT_ID, TENANT_ID,
};

/// The dev IdP's configuration for one browser test: the SPA's redirect URI on that test's port
/// and the access-token lifetime the test wants; otherwise the built-in development tenant
/// (contract.md). Its port, address and data folder come from the stack's wiring.
pub fn dev_idp_toml(spa_url: &str, access_token_seconds: u64) -> String {
    format!(
        r#"[tenant]
name = "devtenant"
id = "{TENANT_ID}"
policies = ["{POLICY}", {{ name = "B2C_1_passwordreset", kind = "password_reset" }}, {{ name = "B2C_1_profileedit", kind = "profile_edit" }}]

[lifetimes]
access_token_seconds = {access_token_seconds}
id_token_seconds = 3600
refresh_token_seconds = 86400
authorization_code_seconds = 600
session_seconds = 86400

[lockout]
threshold = 10
lock_seconds = 60

[[apis]]
name = "hello-api"
client_id = "{API_CLIENT_ID}"
app_id_uri = "https://devtenant.onmicrosoft.com/hello-api"
scopes = ["accessapp"]
app_roles = ["access:test-api"]

[[spas]]
name = "hello-spa"
client_id = "{SPA_CLIENT_ID}"
redirect_uris = ["{spa_url}"]
post_logout_redirect_uris = ["{spa_url}"]
api_permissions = ["{API_SCOPE}"]

[[spas]]
name = "developer-console"
client_id = "{CONSOLE_CLIENT_ID}"
redirect_uris = ["{spa_url}console"]
api_permissions = ["{API_SCOPE}"]

[[users]]
email = "{ALICE}"
password = "{ALICE_PASSWORD}"
display_name = "{ALICE_NAME}"
"#
    )
}
