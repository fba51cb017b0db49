"""Transfer size of the SPA: every wasm, js, css and html file of dist/ compressed with gzip -9, against the
seed's two CDN downloads (msal-browser 2.11.1 min.js and bootstrap 5.0.0-beta2 min.css) plus its index.html.
Usage: spa_size.py DIST_DIR SEED_DIR -> JSON."""

import gzip
import json
import os
import sys

KINDS = (".wasm", ".js", ".css", ".html")


def gz(path):
    with open(path, "rb") as f:
        data = f.read()
    return len(data), len(gzip.compress(data, compresslevel=9, mtime=0))


def measure(directory, names=None):
    files = {}
    for base, dirs, entries in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # trunk's .stage/ while a build is under way
        for entry in entries:
            path = os.path.join(base, entry)
            rel = os.path.relpath(path, directory)
            if (names is None and entry.endswith(KINDS)) or (names is not None and rel in names):
                files[rel] = gz(path)
    return {"files": {k: {"raw": r, "gzip": g} for k, (r, g) in sorted(files.items())},
            "raw": sum(r for r, _ in files.values()), "gzip": sum(g for _, g in files.values())}


def main():
    dist, seed = sys.argv[1], sys.argv[2]
    result = {"spa": measure(dist),
              "seed_cdn": measure(seed, {"msal-browser.min.js", "bootstrap.min.css"}),
              "seed_page": measure(seed, {"msal-browser.min.js", "bootstrap.min.css", "index.html"})}
    if not result["spa"]["files"]:
        raise SystemExit(f"no wasm/js/css/html files in {dist}")
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
