"""Transfer size of the SPA: every wasm, js, css and html file of dist/ compressed with gzip -9, against the
seed's two CDN downloads (msal-browser 2.11.1 min.js and bootstrap 5.0.0-beta2 min.css) plus its index.html.
With LINKED_WASM (the linker's output, before wasm-bindgen and wasm-opt, which still has its name section) it
also says where the code bytes go: each function's body size, summed by the crate whose path its (v0-mangled)
symbol starts with — generic code instantiated for the app counts for the crate that defines it.
Usage: spa_size.py DIST_DIR SEED_DIR [LINKED_WASM] -> JSON.

`spa_size.py packages DIST_DIR NAME=DIR...`: what a package costs, as the gzip -9 bytes of DIST_DIR (the SPA as built)
minus those of DIR (the same SPA built without that package, its job done by web-sys directly) -> JSON."""

import collections
import gzip
import json
import os
import re
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


def leb128(data, i):
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def skip_import(data, j):
    """Skips one import entry; returns (is_function, next offset)."""
    for _ in range(2):  # module and field names
        length, j = leb128(data, j)
        j += length
    kind = data[j]
    j += 1
    if kind == 0:  # function: type index
        _, j = leb128(data, j)
    elif kind == 1:  # table: reftype, limits
        j += 1
        flags, j = leb128(data, j)
        _, j = leb128(data, j)
        if flags & 1:
            _, j = leb128(data, j)
    elif kind == 2:  # memory: limits
        flags, j = leb128(data, j)
        _, j = leb128(data, j)
        if flags & 1:
            _, j = leb128(data, j)
    elif kind == 3:  # global: valtype, mutability
        j += 2
    else:  # tag
        j += 1
        _, j = leb128(data, j)
    return kind == 0, j


def code_by_crate(path):
    data = open(path, "rb").read()
    i, imported, bodies, names = 8, 0, [], {}
    while i < len(data):
        section, i = data[i], i + 1
        size, i = leb128(data, i)
        end = i + size
        if section == 2:
            count, j = leb128(data, i)
            for _ in range(count):
                is_function, j = skip_import(data, j)
                imported += is_function
        elif section == 10:
            count, j = leb128(data, i)
            for _ in range(count):
                length, j = leb128(data, j)
                bodies.append(length)
                j += length
        elif section == 0:
            length, j = leb128(data, i)
            if data[j:j + length] == b"name":
                j += length
                while j < end:
                    sub, j = data[j], j + 1
                    sub_size, j = leb128(data, j)
                    if sub == 1:
                        count, k = leb128(data, j)
                        for _ in range(count):
                            index, k = leb128(data, k)
                            length, k = leb128(data, k)
                            names[index] = data[k:k + length].decode("utf-8", "replace")
                            k += length
                    j += sub_size
        i = end
    crates = collections.Counter()
    for index, size in enumerate(bodies):
        name = names.get(index + imported, "")
        match = re.search(r"C(?:s[0-9A-Za-z]*_)?(\d+)([A-Za-z_][A-Za-z0-9_]*)", name) if name.startswith("_R") else None
        crates[match.group(2)[:int(match.group(1))] if match else "(other: wasm-bindgen shims, unnamed)"] += size
    return {"total": sum(bodies), "crates": dict(crates.most_common())}


def packages(dist, variants):
    with_all = measure(dist)["gzip"]
    result = {}
    for variant in variants:
        name, _, directory = variant.partition("=")
        without = measure(directory)
        if not without["files"]:
            raise SystemExit(f"no wasm/js/css/html files in {directory}")
        result[name] = {"gzip_without": without["gzip"], "cost": with_all - without["gzip"]}
    return {"gzip": with_all, "packages": result}


def main():
    if sys.argv[1] == "packages":
        json.dump(packages(sys.argv[2], sys.argv[3:]), sys.stdout)
        print()
        return
    dist, seed = sys.argv[1], sys.argv[2]
    result = {"spa": measure(dist),
              "seed_cdn": measure(seed, {"msal-browser.min.js", "bootstrap.min.css"}),
              "seed_page": measure(seed, {"msal-browser.min.js", "bootstrap.min.css", "index.html"})}
    if len(sys.argv) > 3 and os.path.isfile(sys.argv[3]):
        result["linked_code"] = code_by_crate(sys.argv[3])
    if not result["spa"]["files"]:
        raise SystemExit(f"no wasm/js/css/html files in {dist}")
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
