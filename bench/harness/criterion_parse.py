"""Reads `cargo bench` (criterion) output on stdin; prints {bench id: median estimate in microseconds}.
Criterion prints `<id>\n    time:   [low mid high]` (or `<id> time: [...]` on one line for short ids)."""

import json
import re
import sys

UNITS = {"ps": 1e-6, "ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3, "s": 1e6}
TIME = re.compile(r"time:\s+\[\s*([\d.]+)\s+(\S+)\s+([\d.]+)\s+(\S+)\s+([\d.]+)\s+(\S+)\s*\]")


def main():
    results, last_id = {}, None
    for line in sys.stdin:
        stripped = line.rstrip("\n")
        match = TIME.search(stripped)
        if match:
            head = stripped[: match.start()].strip()
            bench_id = head or last_id
            if bench_id:
                results[bench_id] = float(match.group(3)) * UNITS[match.group(4)]
            last_id = None
        elif stripped and not stripped.startswith((" ", "Benchmarking", "Found", "Gnuplot", "Warning", "change:",
                                                   "Performance", "No change", "Change within", "Running",
                                                   "Finished", "Compiling")):
            last_id = stripped.strip()
    if not results:
        raise SystemExit("no criterion results found in the input")
    json.dump(results, sys.stdout)
    print()


if __name__ == "__main__":
    main()
