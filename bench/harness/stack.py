"""The local stack as child processes for the hardening suite: dev IdP, hello function, gateway, Redis, wrk.
Which setting each server gets comes from testkit's Wiring (`devstack env`), as for scripts/dev and the Rust tests.
Every process is started here, remembered, and stopped by pid (TERM, then KILL) when the suite ends."""

import atexit
import json
import os
import secrets
import socket
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# scripts/harden says which build to drive (debug for --short, reusing what `cargo test` built; release otherwise).
BIN_DIR = os.environ.get("HARDEN_BIN_DIR") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release")
WRK_DIR = os.path.join(ROOT, "bench", "wrk")


def dev_tenant():
    """scripts/lib/dev-tenant.env: the development tenant's names, the same file scripts/dev sources."""
    with open(os.path.join(ROOT, "scripts", "lib", "dev-tenant.env")) as env:
        pairs = (line.strip().split("=", 1) for line in env)
        return {pair[0]: pair[1] for pair in pairs if len(pair) == 2 and not pair[0].startswith("#")}


DEV_TENANT = dev_tenant()
API_AUDIENCE = DEV_TENANT["API_CLIENT_ID"]
SPA_ORIGIN = "http://127.0.0.1:8080"
TENANT = DEV_TENANT["TENANT"]
POLICY = DEV_TENANT["POLICY"]
HIGH_LIMIT = "1000000000/1"

LOG_DIR = tempfile.mkdtemp(prefix="harden-logs-")
_children = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def function_key():
    return secrets.token_urlsafe(32)


class Proc:
    def __init__(self, name, argv, env, port=None, health="/healthz", wait=30, host="127.0.0.1"):
        self.name, self.argv, self.env, self.port, self.health = name, argv, env, port, health
        self.host = host
        self.log_path = os.path.join(LOG_DIR, f"{name}.log")
        self.start(wait)

    def start(self, wait=30):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, env=dict(os.environ, **self.env), stdout=self.log,
                                     stderr=subprocess.STDOUT)
        _children.append(self)
        if self.port and self.health:
            self.wait_ready(wait)

    @property
    def pid(self):
        return self.proc.pid

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def alive(self):
        return self.proc.poll() is None

    def wait_ready(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log: {self.log_path}\n"
                                   + self.tail())
            try:
                with urllib.request.urlopen(self.url + self.health, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready within {seconds}s; log: {self.log_path}")

    def tail(self, lines=20):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def restart(self, wait=30):
        self.stop()
        self.start(wait)

    def rss_kb(self):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0


def remember(child):
    """Stops `child` (anything with `stop()`) when the suite ends, with the servers."""
    _children.append(child)


@atexit.register
def stop_all():
    for child in reversed(_children):
        try:
            child.stop()
        except Exception:  # noqa: BLE001 — cleanup must reach every child
            pass


def binary(name):
    path = os.path.join(BIN_DIR, name)
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"missing {path}: scripts/harden builds it (or run `cargo build -p {name}`)")
    return path


# The dev IdP's own loopback address (its default): browsers keep its cookies apart from 127.0.0.1's ports.
IDP_HOST = DEV_TENANT["IDP_HOST"]


def wiring(*args):
    """The environments testkit's Wiring gives the servers (`devstack env --plain`, the wiring scripts/dev and the
    Rust tests' Stack use), for these devstack arguments: {"dev-idp": {…}, "hello": {…}, "gateway": {…}, "urls": {…}}."""
    out = subprocess.run([binary("devstack"), "env", "--plain", "--format", "json", *map(str, args)],
                         check=True, capture_output=True, text=True, timeout=30)
    return json.loads(out.stdout)


def dev_idp(data_dir=None, port=None, name="dev-idp", **env):
    port = port or free_port()
    data_dir = data_dir or tempfile.mkdtemp(prefix="harden-idp-")
    wired = wiring("--idp-port", port, "--idp-data-dir", data_dir)
    proc = Proc(name, [binary("dev-idp")], {**wired["dev-idp"], "RUST_LOG": "warn", **env}, port, host=IDP_HOST)
    proc.data_dir = data_dir
    proc.openid_config_url = wired["urls"]["OPENID_CONFIG"]
    proc.token_url = f"{proc.url}/{TENANT}/{POLICY}/oauth2/v2.0/token"
    return proc


def rotate_keys(idp):
    """`dev-idp rotate-keys` against the running IdP's data directory."""
    subprocess.run([binary("dev-idp"), "rotate-keys"], env=dict(os.environ, DEVIDP_DATA_DIR=idp.data_dir,
                                                                 RUST_LOG="warn"),
                   check=True, capture_output=True, timeout=60)


def function(openid_config_url, key, name="hello", action="Return401", **extra):
    port = free_port()
    wired = wiring("--hello-port", port, "--openid-config-url", openid_config_url, "--function-key", key)
    env = {**wired["hello"], "EASYAUTH_UNAUTHENTICATED_ACTION": action, "RUST_LOG": "warn", **extra}
    return Proc(name, [binary("hello")], env, port)


def gateway(backend_port, openid_config_url, key, name="gateway", per_ip=HIGH_LIMIT, per_subject=HIGH_LIMIT,
            **extra):
    port = free_port()
    wired = wiring("--gateway-port", port, "--hello-port", backend_port, "--openid-config-url", openid_config_url,
                   "--function-key", key, "--spa-origin", SPA_ORIGIN)
    env = {**wired["gateway"], "GATEWAY_RATE_LIMIT_PER_IP": per_ip, "GATEWAY_RATE_LIMIT_PER_SUBJECT": per_subject,
           "RUST_LOG": "warn", **extra}
    return Proc(name, [binary("gateway")], env, port)


def redis():
    port = free_port()
    proc = Proc("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no"], {}, port, health=None)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    proc.redis_url = f"redis://127.0.0.1:{port}/"
                    return proc
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not answer PING within 10 s")


class Wrk:
    """wrk in the background; `result()` waits for it and returns its WRKJSON summary."""

    def __init__(self, url, seconds, token=None, key=None, connections=16, threads=2):
        env = dict(os.environ, BENCH_WRK_DIR=WRK_DIR)
        if token:
            env["BENCH_TOKEN"] = token
        if key:
            env["BENCH_FUNCTION_KEY"] = key
        self.proc = subprocess.Popen(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "--latency", "-s",
             os.path.join(WRK_DIR, "auth_get.lua"), url],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.seconds = seconds

    def result(self):
        out, _ = self.proc.communicate(timeout=self.seconds + 60)
        for line in out.decode("utf-8", "replace").splitlines():
            if line.startswith("WRKJSON "):
                summary = json.loads(line[len("WRKJSON "):])
                summary["failed"] = sum(summary[k] for k in ("status", "connect", "read", "write", "timeout"))
                summary["rps"] = summary["requests"] / (summary["duration_us"] / 1e6)
                return summary
        raise RuntimeError("wrk printed no summary:\n" + out.decode("utf-8", "replace")[-2000:])
