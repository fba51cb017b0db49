//! Ports, readiness waits and child processes for tests that run real binaries.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// A port that was free a moment ago on 127.0.0.1 (for binaries that must be told their port;
/// in-process servers should bind `127.0.0.1:0` instead).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}

/// Polls `url` until it answers 2xx or `timeout` passes.
pub async fn wait_for_http_ok(url: &str, timeout: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        match client.get(url).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => last = format!("status {}", response.status()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("{url} not ready after {timeout:?}: {last}"))
}

/// A child process that is killed when dropped. Its output goes to the test's terminal when
/// `TESTKIT_CHILD_OUTPUT=1`, and is discarded otherwise.
pub struct ChildServer {
    child: Child,
}

impl ChildServer {
    /// Spawns `program` with `envs` added to the environment and waits until `ready_url`
    /// answers 2xx; fails if the process exits first or `timeout` passes.
    pub async fn start<K, V>(
        program: &str,
        envs: impl IntoIterator<Item = (K, V)>,
        ready_url: &str,
        timeout: Duration,
    ) -> Result<ChildServer, String>
    where
        K: AsRef<std::ffi::OsStr>,
        V: AsRef<std::ffi::OsStr>,
    {
        let show = std::env::var("TESTKIT_CHILD_OUTPUT").is_ok_and(|v| v == "1");
        let output = || {
            if show {
                Stdio::inherit()
            } else {
                Stdio::null()
            }
        };
        let child = Command::new(program)
            .envs(envs)
            .stdin(Stdio::null())
            .stdout(output())
            .stderr(output())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let mut server = ChildServer { child };
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("{program} exited before it was ready: {status}"));
            }
            if wait_for_http_ok(ready_url, Duration::from_millis(100))
                .await
                .is_ok()
            {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{program} not ready at {ready_url} after {timeout:?}"
                ));
            }
        }
    }

    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the process and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Runs `program` with `envs` added to the environment until it exits (killed after `timeout`),
/// capturing its output: for start-up failures such as a bad setting.
pub async fn run_to_exit<K, V>(
    program: &str,
    envs: impl IntoIterator<Item = (K, V)>,
    timeout: Duration,
) -> Result<Output, String>
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let mut command = Command::new(program);
    command.envs(envs);
    run_command_to_exit(command, timeout).await
}

/// Runs a prepared `command` (arguments, environment) until it exits (killed after `timeout`),
/// with no input, capturing its output.
pub async fn run_command_to_exit(
    mut command: Command,
    timeout: Duration,
) -> Result<Output, String> {
    let program = command
        .as_std()
        .get_program()
        .to_string_lossy()
        .into_owned();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| format!("{program} still running after {timeout:?}"))?
        .map_err(|e| e.to_string())
}
