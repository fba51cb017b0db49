"""Cold start: process exec -> first HTTP 200, repeated, median reported.

Usage: coldstart.py --runs 20 --url-path /api/hello [--header 'K: V']... --env K=V... -- <command...>
A free port is chosen per run and passed in the variable named by --port-var. The clock starts just before
exec (subprocess.Popen) and stops when a complete 200 response has been read; the poller retries a refused
connection every 0.2 ms. Prints one JSON object: {"runs": [...ms], "median_ms", "min_ms", "max_ms"}.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def try_get(port, request: bytes):
    """The status code of one GET, or None if nothing listens yet."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(request)
            data = b""
            while b"\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return None
                data += chunk
            return int(data.split(b" ", 2)[1])
    except (ConnectionRefusedError, ConnectionResetError):
        return None


def one_run(command, env, port_var, path, headers, timeout_s):
    port = free_port()
    run_env = dict(os.environ, **env, **{port_var: str(port)})
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n" + "".join(
        f"{h}\r\n" for h in headers) + "\r\n").encode()
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            status = try_get(port, request)
            elapsed = time.perf_counter() - start
            if status == 200:
                return elapsed * 1000
            if status is not None and status != 200:
                raise SystemExit(f"cold start: {command[0]} answered {status} on {path}")
            if proc.poll() is not None:
                raise SystemExit(f"cold start: {command[0]} exited with {proc.returncode} before answering")
            if elapsed > timeout_s:
                raise SystemExit(f"cold start: no 200 from {command[0]} within {timeout_s}s")
            time.sleep(0.0002)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--port-var", required=True)
    parser.add_argument("--path", default="/healthz")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--timeout", type=float, default=10)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    env = dict(item.split("=", 1) for item in args.env)
    runs = [one_run(command, env, args.port_var, args.path, args.header, args.timeout) for _ in range(args.runs)]
    json.dump({"runs": [round(r, 3) for r in runs], "median_ms": statistics.median(runs), "min_ms": min(runs),
               "max_ms": max(runs)}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
