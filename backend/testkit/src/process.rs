//! Ports, readiness waits and child processes for tests that run real binaries.

use std::path::{Path, PathBuf};
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
    poll(url, true, timeout, || Ok(())).await
}

/// Polls `url` until it answers (2xx only when `want_ok`), `timeout` passes, or `alive` fails.
async fn poll(
    url: &str,
    want_ok: bool,
    timeout: Duration,
    mut alive: impl FnMut() -> Result<(), String>,
) -> Result<(), String> {
    let client = reqwest::Client::builder()
        // A loaded machine (browser tests beside builds) can take over a second to answer.
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        alive()?;
        match client.get(url).send().await {
            Ok(response) if !want_ok || response.status().is_success() => return Ok(()),
            Ok(response) => last = format!("status {}", response.status()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("{url} not ready after {timeout:?}: {last}"))
}

/// Where a child's stdout and stderr go.
pub enum ChildOutput {
    /// Discarded, or the test's terminal when `TESTKIT_CHILD_OUTPUT=1`.
    Quiet,
    /// Both into this file (created or truncated), whose tail failures quote.
    Log(PathBuf),
    /// Both kept for [`ChildServer::stop_and_read`] (for tests of what a server logs).
    Captured,
}

/// A child process that is killed when dropped.
pub struct ChildServer {
    name: String,
    child: Child,
    log: Option<PathBuf>,
}

impl ChildServer {
    /// Spawns `program` with `envs` added to the environment, its output [`ChildOutput::Quiet`],
    /// and waits until `ready_url` answers 2xx; fails if the process exits first or `timeout`
    /// passes.
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
        let mut command = Command::new(program);
        command.envs(envs);
        let mut server = Self::try_spawn(command, program, ChildOutput::Quiet)?;
        server.ready(ready_url, true, timeout).await?;
        Ok(server)
    }

    /// Spawns a prepared `command` (arguments, environment, working directory) as `name`, with
    /// no input and its output to `output`. Panics if it cannot start: a set-up failure.
    pub fn spawn(command: impl Into<Command>, name: &str, output: ChildOutput) -> ChildServer {
        Self::try_spawn(command.into(), name, output).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_spawn(
        mut command: Command,
        name: &str,
        output: ChildOutput,
    ) -> Result<ChildServer, String> {
        let (stdout, stderr, log) = match output {
            ChildOutput::Quiet if std::env::var("TESTKIT_CHILD_OUTPUT").is_ok_and(|v| v == "1") => {
                (Stdio::inherit(), Stdio::inherit(), None)
            }
            ChildOutput::Quiet => (Stdio::null(), Stdio::null(), None),
            ChildOutput::Captured => (Stdio::piped(), Stdio::piped(), None),
            ChildOutput::Log(path) => {
                let file = std::fs::File::create(&path)
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                let copy = file.try_clone().map_err(|e| e.to_string())?;
                (file.into(), copy.into(), Some(path))
            }
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {name} ({command:?}): {e}"))?;
        Ok(ChildServer {
            name: name.to_owned(),
            child,
            log,
        })
    }

    /// Waits until `url` answers 2xx; panics, with the log's tail, if the process exits first or
    /// `timeout` passes.
    pub async fn wait_ready(&mut self, url: &str, timeout: Duration) {
        if let Err(e) = self.ready(url, true, timeout).await {
            panic!("{e}");
        }
    }

    /// Waits until `url` answers at all (any status), as [`wait_ready`](Self::wait_ready).
    pub async fn wait_answering(&mut self, url: &str, timeout: Duration) {
        if let Err(e) = self.ready(url, false, timeout).await {
            panic!("{e}");
        }
    }

    async fn ready(&mut self, url: &str, want_ok: bool, timeout: Duration) -> Result<(), String> {
        let outcome = poll(url, want_ok, timeout, || self.running()).await;
        outcome.map_err(|why| format!("{}: {why}{}", self.name, self.log_tail()))
    }

    /// Fails, naming the exit status, if the process has exited.
    pub fn running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(format!(
                "{} exited before it was ready: {status}",
                self.name
            )),
            _ => Ok(()),
        }
    }

    /// Panics with the log's tail if the process has exited.
    pub fn assert_running(&mut self) {
        if let Err(e) = self.running() {
            panic!("{e}{}", self.log_tail());
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file its output goes to, if any.
    pub fn log(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// `"; its log <path>:\n<last 40 lines>"`, or nothing without a log.
    fn log_tail(&self) -> String {
        self.log
            .as_deref()
            .map(|path| format!("; its log {}:\n{}", path.display(), tail(path)))
            .unwrap_or_default()
    }

    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Sends `signal` (`"TERM"`, `"HUP"`, …) with kill(1); whether it was delivered.
    pub async fn signal(&self, signal: &str) -> bool {
        let Some(pid) = self.child.id() else {
            return false;
        };
        Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .await
            .is_ok_and(|status| status.success())
    }

    /// Kills the process and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// Stops the process as the Functions host and container runtimes do (SIGTERM, SIGKILL if it
    /// is still running after 5 s) and returns its stdout and then its stderr, as text; empty
    /// unless spawned with [`ChildOutput::Captured`]. SIGTERM, not SIGKILL: the servers batch
    /// their log lines (`http_serve::logging`) and write out the last ones as they stop.
    pub async fn stop_and_read(mut self) -> String {
        let stdout = self.child.stdout.take().map(read_all);
        let stderr = self.child.stderr.take().map(read_all);
        self.signal("TERM").await;
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        let mut text = String::new();
        for pipe in [stdout, stderr].into_iter().flatten() {
            let bytes = pipe.await.unwrap_or_default();
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
        text
    }
}

/// Everything a child writes to `pipe`, read as it comes (a full pipe would stall the child).
fn read_all(
    mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> tokio::task::JoinHandle<Vec<u8>> {
    tokio::spawn(async move {
        let mut bytes = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut pipe, &mut bytes).await;
        bytes
    })
}

/// The last 40 lines of a log file.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
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
