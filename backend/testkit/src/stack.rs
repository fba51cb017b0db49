//! The local stack — dev-idp, hello and the gateway as real processes — on free ports, wired by
//! [`Wiring`] exactly as `scripts/dev` wires it, waited for, and stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{ChildOutput, ChildServer};
use crate::wiring::{Env, Wiring};

/// Where the three server binaries are (a test's `CARGO_BIN_EXE_…`, or a build it made).
#[derive(Debug, Clone)]
pub struct Binaries {
    pub dev_idp: PathBuf,
    pub hello: PathBuf,
    pub gateway: PathBuf,
}

/// The three servers' ports, chosen before the spawn (a dev IdP configuration may name them).
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub idp: u16,
    pub hello: u16,
    pub gateway: u16,
}

impl Ports {
    /// Three ports that were free a moment ago.
    pub fn free() -> Ports {
        Ports {
            idp: crate::free_port(),
            hello: crate::free_port(),
            gateway: crate::free_port(),
        }
    }
}

/// What [`Stack::spawn`] starts.
pub struct StackOptions {
    pub binaries: Binaries,
    /// Names the log files (`<log_dir>/<name>.<server>.log`) and the data folder.
    pub name: String,
    /// Where the servers' output goes; `None` discards it ([`ChildOutput::Quiet`]).
    pub log_dir: Option<PathBuf>,
    /// The wiring; its ports are those the servers get. Its `idp_data_dir`, when `None`, becomes
    /// a fresh temporary folder of the stack's.
    pub wiring: Wiring,
    /// Settings added after the wiring's, per server (later ones win).
    pub dev_idp_env: Env,
    pub hello_env: Env,
    pub gateway_env: Env,
    /// Each server's patience to answer `/healthz`.
    pub ready_timeout: Duration,
}

impl StackOptions {
    /// [`Wiring::plain`] on free ports with `function_key`, logging at `info`, output discarded.
    pub fn new(binaries: Binaries, name: &str, function_key: &str) -> StackOptions {
        let ports = Ports::free();
        let mut wiring = Wiring::plain(ports.idp, ports.hello, ports.gateway);
        wiring.function_key = function_key.into();
        let info = || vec![("RUST_LOG", "info".to_owned())];
        StackOptions {
            binaries,
            name: name.into(),
            log_dir: None,
            wiring,
            dev_idp_env: info(),
            hello_env: info(),
            gateway_env: info(),
            ready_timeout: Duration::from_secs(60),
        }
    }
}

/// One of the stack's servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    DevIdp,
    Hello,
    Gateway,
}

/// dev-idp, hello and the gateway, running; each process is killed when the stack is dropped.
pub struct Stack {
    pub wiring: Wiring,
    /// The dev IdP's data folder (its verification mails are in `mail/`).
    pub idp_data_dir: PathBuf,
    binaries: Binaries,
    name: String,
    log_dir: Option<PathBuf>,
    ready_timeout: Duration,
    hello_env: Env,
    gateway_env: Env,
    servers: Vec<ChildServer>,
    _data: Option<tempfile::TempDir>,
}

impl Stack {
    /// Starts dev-idp, then hello, then the gateway, each waited for on `/healthz`. Panics (with
    /// the server's log) if one does not come up: a set-up failure.
    pub async fn spawn(options: StackOptions) -> Stack {
        let StackOptions {
            binaries,
            name,
            log_dir,
            mut wiring,
            dev_idp_env,
            hello_env,
            gateway_env,
            ready_timeout,
        } = options;
        let data = wiring.idp_data_dir.is_none().then(|| {
            tempfile::Builder::new()
                .prefix(&format!("stack-{name}-"))
                .tempdir()
                .unwrap_or_else(|e| panic!("no temporary folder: {e}"))
        });
        if let Some(dir) = &data {
            wiring.idp_data_dir = Some(dir.path().join("idp"));
        }
        let idp_data_dir = wiring.idp_data_dir.clone().unwrap_or_default();
        let mut stack = Stack {
            wiring,
            idp_data_dir,
            binaries,
            name,
            log_dir,
            ready_timeout,
            hello_env,
            gateway_env,
            servers: Vec::new(),
            _data: data,
        };
        let wiring = stack.wiring.clone();
        stack
            .start(Server::DevIdp, "dev-idp", &wiring, &dev_idp_env)
            .await;
        stack.start(Server::Hello, "hello", &wiring, &[]).await;
        stack.start(Server::Gateway, "gateway", &wiring, &[]).await;
        stack
    }

    /// Another function or gateway beside the stack's, on a free port, wired as the stack with
    /// `patch` applied (a gateway may be pointed at another function: `hello_port`) and `env`
    /// added; `label` names it in the logs. Its wiring (`hello_url()`, `gateway_url()`, ports).
    pub async fn spawn_another(
        &mut self,
        server: Server,
        label: &str,
        patch: impl FnOnce(&mut Wiring),
        env: &[(&'static str, String)],
    ) -> Wiring {
        let mut wiring = self.wiring.clone();
        match server {
            Server::DevIdp => wiring.idp_port = crate::free_port(),
            Server::Hello => wiring.hello_port = crate::free_port(),
            Server::Gateway => wiring.gateway_port = crate::free_port(),
        }
        patch(&mut wiring);
        self.start(server, label, &wiring, env).await;
        wiring
    }

    /// Starts `server` wired by `wiring`, with the stack's settings for it and then `env`, and
    /// waits for its `/healthz`.
    async fn start(
        &mut self,
        server: Server,
        label: &str,
        wiring: &Wiring,
        env: &[(&'static str, String)],
    ) {
        let (program, wired, stacks, url) = match server {
            Server::DevIdp => (
                &self.binaries.dev_idp,
                wiring.dev_idp_env(),
                &[][..],
                wiring.idp_url(),
            ),
            Server::Hello => (
                &self.binaries.hello,
                wiring.hello_env(),
                &self.hello_env[..],
                wiring.hello_url(),
            ),
            Server::Gateway => (
                &self.binaries.gateway,
                wiring.gateway_env(),
                &self.gateway_env[..],
                wiring.gateway_url(),
            ),
        };
        let mut command = Command::new(program);
        command.envs(wired.iter().chain(stacks).chain(env).map(|(k, v)| (k, v)));
        let output = match &self.log_dir {
            Some(dir) => ChildOutput::Log(dir.join(format!("{}.{label}.log", self.name))),
            None => ChildOutput::Quiet,
        };
        let mut child = ChildServer::spawn(command, label, output);
        child
            .wait_ready(&format!("{url}/healthz"), self.ready_timeout)
            .await;
        self.servers.push(child);
    }

    pub fn idp_url(&self) -> String {
        self.wiring.idp_url()
    }

    pub fn hello_url(&self) -> String {
        self.wiring.hello_url()
    }

    pub fn gateway_url(&self) -> String {
        self.wiring.gateway_url()
    }

    /// The log files of the servers started so far.
    pub fn log_paths(&self) -> Vec<&Path> {
        self.servers.iter().filter_map(ChildServer::log).collect()
    }
}
