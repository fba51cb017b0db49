//! What the e2e tests share: the workspace's paths, temporary folders, child processes whose
//! output is kept in a log file, and readiness waits. Set-up failures panic: they fail the test.
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

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// A child process killed (and reaped) when dropped; stdout and stderr go to `log`.
pub struct Proc {
    pub name: String,
    child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(mut command: Command, name: &str, log: PathBuf) -> Self {
        let out = File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        Self {
            name: name.to_owned(),
            child,
            log,
        }
    }

    /// Panics with the log's tail if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}); its log {}:\n{}",
                self.name,
                self.log.display(),
                tail(&self.log)
            );
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last 40 lines of a log file.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Waits until `url` answers at all (any status) — or 2xx when `want_ok` — within `timeout`.
pub async fn wait_for(proc: &mut Proc, url: &str, want_ok: bool, timeout: Duration) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        proc.assert_running();
        match client.get(url).send().await {
            Ok(r) if !want_ok || r.status().is_success() => return,
            Ok(r) => last = format!("status {}", r.status()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{} not ready at {url} after {timeout:?} ({last}); log:\n{}",
        proc.name,
        tail(&proc.log)
    );
}

// The development tenant of contract.md, as the browser tests configure and use it.
pub use testkit::dev_tenant::{
    ALICE, ALICE_NAME, ALICE_PASSWORD, API_CLIENT_ID, API_SCOPE_URI as API_SCOPE,
    CONSOLE_CLIENT_ID, IDP_HOST, POLICY, SPA_CLIENT_ID, TENANT_ID,
};

/// The dev IdP's configuration for one browser test: its port, a fresh data folder, the SPA's
/// redirect URI on that test's port, and the access-token lifetime the test wants; otherwise the
/// built-in development tenant (contract.md).
pub fn dev_idp_toml(
    port: u16,
    data_dir: &Path,
    spa_url: &str,
    access_token_seconds: u64,
) -> String {
    format!(
        r#"port = {port}
bind_address = "{IDP_HOST}"
data_dir = "{data_dir}"

[tenant]
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
"#,
        data_dir = data_dir.display(),
    )
}
