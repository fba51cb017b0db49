"""Navigation -> first contentful paint and -> interactive in headless Chromium, over WebDriver (chromedriver) with
only the standard library, in the network and CPU conditions of issue 20.

For each condition and page URL: a fresh browser profile per run (cold cache), the condition applied through the
DevTools protocol before the navigation, and a script injected before any page script runs that records, in
milliseconds since navigation start (performance.now()):
- interactive: the first moment a visible <button> whose text is the sign-in label exists and is enabled;
- fcp: the `first-contentful-paint` paint entry;
- ready (only with --ready-selector): the first moment the selector matches (ours: the app has taken over);
- cls: the layout shifts summed until the measurement ends (layout-shift entries without recent input).
Pages alternate run by run, so a change in the machine's load falls on both alike. Medians are reported.

Conditions: `unthrottled`; `cpu4` (Emulation.setCPUThrottlingRate 4, DevTools' slow-phone stand-in); `net` (Network.
emulateNetworkConditions: 150 ms round trip, 1.6 Mbps down, 750 kbps up: DevTools' and Lighthouse's slow 4G).

Usage: spa_timing.py --runs 15 --label "Sign In" [--conditions unthrottled,cpu4,net] [--ready-selector NAME=CSS]
       NAME=URL [NAME=URL...]
  -> JSON {CONDITION: {NAME: {"interactive_ms": [...], "fcp_ms": [...], "median_interactive_ms", "median_fcp_ms",
                              ["ready_ms", "median_ready_ms"], "max_cls"}}}
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
  const label = %s, ready = %s;
  const found = () => Array.from(document.querySelectorAll('button'))
      .some(b => !b.disabled && b.textContent.trim().toLowerCase() === label.toLowerCase() && b.checkVisibility());
  const mark = () => {
    if (window.__interactiveAt === undefined && found()) window.__interactiveAt = performance.now();
    if (ready && window.__readyAt === undefined && document.querySelector(ready)) window.__readyAt = performance.now();
  };
  new MutationObserver(mark).observe(document, {childList: true, subtree: true, attributes: true, characterData: true});
  document.addEventListener('DOMContentLoaded', mark);
  window.__cls = 0;
  new PerformanceObserver(list => list.getEntries().forEach(e => {
    if (e.name === 'first-contentful-paint') window.__fcpAt = e.startTime;
  })).observe({type: 'paint', buffered: true});
  new PerformanceObserver(list => list.getEntries().forEach(e => {
    if (!e.hadRecentInput) window.__cls += e.value;
  })).observe({type: 'layout-shift', buffered: true});
})();
"""

# DevTools protocol commands per condition, sent before the navigation.
MBPS = 1_000_000 / 8  # bytes per second in one megabit per second
CONDITIONS = {
    "unthrottled": [],
    "cpu4": [("Emulation.setCPUThrottlingRate", {"rate": 4})],
    "net": [("Network.enable", {}),
            ("Network.emulateNetworkConditions", {"offline": False, "latency": 150,
                                                  "downloadThroughput": 1.6 * MBPS,
                                                  "uploadThroughput": 0.75 * MBPS})],
}
# What the page records; measuring stops when each is known (or the deadline passes).
RESULT = """return {interactive: window.__interactiveAt ?? null, fcp: window.__fcpAt ?? null,
                    ready: window.__readyAt ?? null, cls: window.__cls ?? 0};"""


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


def measure(driver, url, label, condition, ready=None):
    profile = tempfile.mkdtemp(prefix="bench-chromium-")
    caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
        "binary": CHROMIUM, "args": [*FLAGS, f"--user-data-dir={profile}"]}}}}
    session = driver.call("POST", "/session", caps)["sessionId"]
    cdp = f"/session/{session}/goog/cdp/execute"
    try:
        driver.call("POST", cdp, {"cmd": "Page.addScriptToEvaluateOnNewDocument",
                                  "params": {"source": OBSERVER % (json.dumps(label), json.dumps(ready))}})
        for cmd, params in CONDITIONS[condition]:
            driver.call("POST", cdp, {"cmd": cmd, "params": params})
        driver.call("POST", f"/session/{session}/url", {"url": url})
        deadline, seen = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            seen = driver.call("POST", f"/session/{session}/execute/sync", {"script": RESULT, "args": []})
            if seen["interactive"] is not None and seen["fcp"] is not None and (ready is None or seen["ready"]):
                # A last look after the page settled, for shifts caused by the app taking over.
                time.sleep(0.3)
                seen["cls"] = driver.call("POST", f"/session/{session}/execute/sync",
                                          {"script": RESULT, "args": []})["cls"]
                return seen
            time.sleep(0.05)
        raise SystemExit(f"{url} ({condition}): no enabled '{label}' button, first contentful paint"
                         f"{' or ' + ready if ready else ''} within 60 s; last seen {seen}")
    finally:
        driver.call("DELETE", f"/session/{session}")
        shutil.rmtree(profile, ignore_errors=True)


def summary(runs):
    out = {"interactive_ms": [round(r["interactive"], 1) for r in runs],
           "fcp_ms": [round(r["fcp"], 1) for r in runs],
           "max_cls": round(max(r["cls"] for r in runs), 4)}
    out["median_interactive_ms"] = statistics.median(r["interactive"] for r in runs)
    out["median_fcp_ms"] = statistics.median(r["fcp"] for r in runs)
    if all(r["ready"] is not None for r in runs):
        out["ready_ms"] = [round(r["ready"], 1) for r in runs]
        out["median_ready_ms"] = statistics.median(r["ready"] for r in runs)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--label", default="Sign In")
    parser.add_argument("--conditions", default="unthrottled,cpu4,net")
    parser.add_argument("--ready-selector", action="append", default=[], metavar="NAME=CSS")
    parser.add_argument("pages", nargs="+")
    args = parser.parse_args()
    conditions = args.conditions.split(",")
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        parser.error(f"unknown condition(s) {unknown}; known: {list(CONDITIONS)}")
    pages = [p.split("=", 1) for p in args.pages]
    ready = dict(r.split("=", 1) for r in args.ready_selector)
    driver = Driver()
    results = {}
    try:
        for name, url in pages:
            measure(driver, url, args.label, "unthrottled")  # unmeasured: chromium's first start pays for disk caches
        for condition in conditions:
            runs = {name: [] for name, _ in pages}
            for _ in range(args.runs):
                for name, url in pages:
                    runs[name].append(measure(driver, url, args.label, condition, ready.get(name)))
            results[condition] = {name: summary(r) for name, r in runs.items()}
    finally:
        driver.stop()
    json.dump(results, sys.stdout)
    print()


if __name__ == "__main__":
    main()
