"""The throughput loads of scripts/bench, interleaved in rounds (issue 19).

Each round runs every target once, starting one target further along each round, so that a burst of other load on
the shared machine hits every target alike instead of whichever ran at that moment. Around every run it reads the
CPU time of each measured process and its descendants (utime + stime from /proc/PID/stat; nginx's workers are the
master's children) and of wrk (the harness's rusage of its finished children), and the machine's total from
/proc/stat: what the machine spent beyond the measured processes is other load, and a run where it exceeds 5 % of
the measured processes' CPU is flagged.

    rounds.py SPEC.json OUT.json --rounds R --duration S --warmup S --connections N --threads N

SPEC: {"targets": [{"name", "url", "env": {wrk's environment}, "processes": {"role": pid, ...}}]}.
OUT: every run of every round, the flag, and per target the medians.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
WRK_DIR = os.path.join(HERE, "..", "wrk")
HZ = os.sysconf("SC_CLK_TCK")
OTHER_LOAD_LIMIT = 0.05


def proc_stat_fields(pid):
    """(ppid, utime + stime in ticks) of one process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


def process_table():
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = proc_stat_fields(int(entry))
            if fields:
                table[int(entry)] = fields
    return table


def tree_ticks(table, root):
    """CPU ticks of `root` and all its descendants."""
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            total += table[pid][1]
        todo.extend(children.get(pid, []))
    return total


def machine_ticks():
    """(busy in user + nice + system, softirq + irq, steal) over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        cpu = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = cpu[:8]
    return user + nice + system, irq + softirq, steal


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk(target, seconds, args):
    env = dict(os.environ, BENCH_WRK_DIR=WRK_DIR, **target.get("env", {}))
    script = os.path.join(WRK_DIR, target.get("script", "auth_get.lua"))
    argv = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s", "--timeout", "5s", "--latency",
            "-s", script, target["url"]]
    done = subprocess.run(argv, env=env, capture_output=True, timeout=seconds + 30, check=False)
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[len("WRKJSON "):])
    sys.exit(f"wrk printed no summary for {target['name']} ({target['url']}):\n"
             + done.stdout.decode("utf-8", "replace")[-2000:] + done.stderr.decode("utf-8", "replace")[-2000:])


def measured_run(target, args):
    """One measured wrk run with the CPU every party spent during it."""
    processes = target["processes"]
    table = process_table()
    before = {role: tree_ticks(table, pid) for role, pid in processes.items()}
    machine_before, children_before = machine_ticks(), children_cpu_seconds()
    summary = wrk(target, args.duration, args)
    machine_after, children_after = machine_ticks(), children_cpu_seconds()
    table = process_table()
    for role, pid in processes.items():
        if pid not in table:
            sys.exit(f"{target['name']}: its {role} process ({pid}) is gone")
    seconds = {role: (tree_ticks(table, pid) - before[role]) / HZ for role, pid in processes.items()}
    seconds["wrk"] = children_after - children_before
    measured = sum(seconds.values())
    busy = (machine_after[0] - machine_before[0]) / HZ
    # wrk's rusage is exact and the /proc figures are in whole ticks: a small negative remainder is rounding.
    other = max(0.0, busy - measured)
    requests = summary["requests"]
    failed = sum(summary[k] for k in ("status", "connect", "read", "write", "timeout"))
    return {
        "rps": requests / (summary["duration_us"] / 1e6),
        "requests": requests,
        "failed": failed,
        "p50_us": summary["p50_us"],
        "p99_us": summary["p99_us"],
        "cpu_s": seconds,
        "cpu_us_per_request": {role: s * 1e6 / requests if requests else None for role, s in seconds.items()},
        "other_cpu_s": other,
        "other_share": other / measured if measured else None,
        "irq_s": (machine_after[1] - machine_before[1]) / HZ,
        "steal_s": (machine_after[2] - machine_before[2]) / HZ,
    }


def median_of(runs, pick):
    values = [v for v in (pick(r) for r in runs) if v is not None]
    return statistics.median(values) if values else None


def summarise(name, runs):
    roles = runs[0]["cpu_us_per_request"].keys()
    cpu = {role: median_of(runs, lambda r, role=role: r["cpu_us_per_request"][role]) for role in roles}
    return {
        "name": name,
        "rps": median_of(runs, lambda r: r["rps"]),
        "p50_us": median_of(runs, lambda r: r["p50_us"]),
        "p99_us": median_of(runs, lambda r: r["p99_us"]),
        "failed": sum(r["failed"] for r in runs),
        "cpu_us_per_request": cpu,
        # The median of each run's total, not the sum of medians: they can come from different runs.
        "cpu_us_per_request_total": median_of(runs, lambda r: sum(v for v in r["cpu_us_per_request"].values()
                                                                   if v is not None)),
        "other_share": median_of(runs, lambda r: r["other_share"]),
        "flagged_runs": sum(1 for r in runs if (r["other_share"] or 0) > OTHER_LOAD_LIMIT),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("spec")
    parser.add_argument("out")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not 1 <= args.rounds <= 50 or not 1 <= args.duration <= 120:
        sys.exit("--rounds must be 1..50 and --duration 1..120 (the run is bounded in time)")
    with open(args.spec) as f:
        targets = json.load(f)["targets"]

    for target in targets:
        print(f"warm-up: {target['name']} ({args.warmup}s)", file=sys.stderr, flush=True)
        wrk(target, args.warmup, args)
    rounds = []
    for number in range(args.rounds):
        order = targets[number % len(targets):] + targets[:number % len(targets)]
        results = {}
        for target in order:
            results[target["name"]] = measured_run(target, args)
            run = results[target["name"]]
            print(f"round {number + 1}/{args.rounds}: {target['name']}: {run['rps']:,.0f} req/s, "
                  f"other load {100 * (run['other_share'] or 0):.1f} %", file=sys.stderr, flush=True)
        rounds.append(results)

    measured = sum(sum(r["cpu_s"].values()) for results in rounds for r in results.values())
    other = sum(r["other_cpu_s"] for results in rounds for r in results.values())
    out = {
        "rounds": rounds,
        "targets": {t["name"]: summarise(t["name"], [results[t["name"]] for results in rounds]) for t in targets},
        "settings": {"rounds": args.rounds, "duration_s": args.duration, "warmup_s": args.warmup,
                     "connections": args.connections, "threads": args.threads},
        "other_share": other / measured if measured else None,
        "other_load_limit": OTHER_LOAD_LIMIT,
        "flagged": bool(measured) and other / measured > OTHER_LOAD_LIMIT,
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
