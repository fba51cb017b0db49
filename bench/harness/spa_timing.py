"""Navigation -> interactive in headless Chromium, over WebDriver (chromedriver) with only the standard library.

For each page URL: a fresh browser profile per run, a script injected before any page script runs records
performance.now() (milliseconds since navigation start) at the first moment a <button> whose text is the sign-in
label exists in the DOM and is enabled; the median over the runs is reported.

Usage: spa_timing.py --runs 5 --label "Sign In" NAME=URL [NAME=URL...]   -> JSON {NAME: {"runs": [...], "median_ms"}}
"""

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]

OBSERVER = """
(() => {
  const label = %s;
  const found = () => Array.from(document.querySelectorAll('button'))
      .some(b => !b.disabled && b.textContent.trim().toLowerCase() === label.toLowerCase());
  const mark = () => { if (window.__interactiveAt === undefined && found()) window.__interactiveAt = performance.now(); };
  new MutationObserver(mark).observe(document, {childList: true, subtree: true, attributes: true, characterData: true});
  document.addEventListener('DOMContentLoaded', mark);
})();
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Driver:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                self.call("GET", "/status")
                return
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise SystemExit("chromedriver did not start within 15 s")
                time.sleep(0.05)

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.load(resp)["value"]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def measure(driver, url, label):
    profile = tempfile.mkdtemp(prefix="bench-chromium-")
    caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
        "binary": CHROMIUM, "args": [*FLAGS, f"--user-data-dir={profile}"]}}}}
    session = driver.call("POST", "/session", caps)["sessionId"]
    try:
        driver.call("POST", f"/session/{session}/goog/cdp/execute",
                    {"cmd": "Page.addScriptToEvaluateOnNewDocument",
                     "params": {"source": OBSERVER % json.dumps(label)}})
        driver.call("POST", f"/session/{session}/url", {"url": url})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            value = driver.call("POST", f"/session/{session}/execute/sync",
                                {"script": "return window.__interactiveAt === undefined ? null : window.__interactiveAt;",
                                 "args": []})
            if value is not None:
                return float(value)
            time.sleep(0.05)
        raise SystemExit(f"no enabled '{label}' button on {url} within 30 s")
    finally:
        driver.call("DELETE", f"/session/{session}")
        shutil.rmtree(profile, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--label", default="Sign In")
    parser.add_argument("pages", nargs="+")
    args = parser.parse_args()
    driver = Driver()
    results = {}
    try:
        for page in args.pages:
            name, url = page.split("=", 1)
            measure(driver, url, args.label)  # one unmeasured run: first start of chromium pays for disk caches
            runs = [measure(driver, url, args.label) for _ in range(args.runs)]
            results[name] = {"runs": [round(r, 1) for r in runs], "median_ms": statistics.median(runs)}
    finally:
        driver.stop()
    json.dump(results, sys.stdout)
    print()


if __name__ == "__main__":
    main()
