"""Renders one scripts/bench run (a directory of JSON files) as the markdown table of issue 9: every figure with
its same-run baseline, the ratio, the target and whether it is met. Usage: bench_report.py RUN_DIR > table.md"""

import json
import os
import statistics
import sys

RUN = sys.argv[1]


def load(name):
    path = os.path.join(RUN, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def rps(w):
    return w["requests"] / (w["duration_us"] / 1e6)


def failed(w):
    return w["status"] + w["connect"] + w["read"] + w["write"] + w["timeout"]


def ms(us):
    return f"{us / 1000:.2f} ms"


def fmt_us(us):
    return f"{us:.2f} µs" if us < 10 else f"{us:.1f} µs"


# The design card's packages (issue 15) and what they bring in, shown first.
CARD_CRATES = ("leptos_router", "gloo_net", "gloo_storage", "gloo_utils", "serde_json", "serde")


def spa_code_table(linked):
    """Where the wasm's code goes, before wasm-opt (whose -Oz shrinks every crate alike, roughly)."""
    if not linked:
        return []
    total, crates = linked["total"], linked["crates"]
    top = [c for c in CARD_CRATES if c in crates] + [c for c in list(crates)[:12] if c not in CARD_CRATES]
    lines = [f"SPA code by crate (function bodies in the linked wasm before wasm-opt, {total:,} B in all):\n",
             "| crate | bytes | share |", "|---|---:|---:|"]
    lines += [f"| `{c}` | {crates[c]:,} | {crates[c] / total:.1%} |" for c in top]
    return lines + [""]


def spa_package_lines(packages, linked):
    """What the design card's packages cost: builds without each (gloo-net, gloo-storage), and leptos_router's
    share of the linked code (it has no stand-in build)."""
    lines = []
    if packages:
        lines.append(f"Design card packages, cost in dist/ gzip -9 (the SPA as built: {packages['gzip']:,} B; "
                     "each built once more with that package's job done by web-sys directly):\n")
        lines += ["| package | dist/ without it | cost |", "|---|---:|---:|"]
        lines += [f"| `{name}` | {p['gzip_without']:,} B | {p['cost']:+,} B |"
                  for name, p in packages["packages"].items()]
        lines.append("")
        lines.append("Without gloo-storage the values are still serde structs in JSON: serde_json stays in that build "
                     "(its share of the code is in the table above).\n")
    if linked and "leptos_router" in linked["crates"]:
        router, total = linked["crates"]["leptos_router"], linked["total"]
        lines.append(f"`leptos_router`: {router:,} B of the linked wasm's {total:,} B of function bodies "
                     f"({router / total:.1%}; by symbol, before wasm-opt: no build without it).\n")
    return lines


def spa_load_table(timing):
    """Issue 20's table: first contentful paint and interactive, ours and the seed's page, per condition."""
    first = next(iter(timing.values()))
    runs = len(first["spa"]["interactive_ms"])
    out = ["## SPA load: ours vs the seed's MSAL.js page (issue 20)\n",
           f"Headless Chromium, cold cache (fresh profile per load), {runs} loads of each page per condition, "
           "alternating, same local server; medians in ms since navigation start. *Interactive*: an enabled, "
           "visible Sign In button (ours: index.html's shell, whose click the app honours once ready). *App ready*: "
           "ours with the wasm running and config.json and the IdP's metadata loaded. CLS: the worst of our loads.\n",
           "| condition | FCP ours | FCP seed | interactive ours | interactive seed | ours / seed | "
           "app ready ours | CLS ours |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for condition, pages in timing.items():
        spa, seed = pages["spa"], pages["seed"]
        ready = f"{spa['median_ready_ms']:.0f}" if "median_ready_ms" in spa else "–"
        out.append(f"| {condition} | {spa['median_fcp_ms']:.0f} | {seed['median_fcp_ms']:.0f} | "
                   f"{spa['median_interactive_ms']:.0f} | {seed['median_interactive_ms']:.0f} | "
                   f"{spa['median_interactive_ms'] / seed['median_interactive_ms']:.2f}× | {ready} | "
                   f"{spa['max_cls']:.3f} |")
    out.append("")
    return out


LABELS = {
    "bare": "bare axum hello, no auth (ceiling)",
    "bare-chain": "bare two-hop chain, no auth (axum proxy → bare hello): the architecture's floor",
    "nginx-1": "nginx two-hop chain, 1 worker (keep-alive proxy → bare hello)",
    "nginx-2": "nginx two-hop chain, 2 workers (keep-alive proxy → bare hello)",
    "function": "hello function alone (key + EasyAuth validation)",
    "chain": "gateway → function, both validating (ours)",
    "chain-redis": "the same with the rate limits shared through Redis (GATEWAY_REDIS_URL)",
    "chain-policies": "the same with a product: subscription key, its rate limit and quota, required claims",
    "chain-baseline": "the chain built from --baseline-bin (before)",
    "node-function": "Node function alone (express + jose)",
    "node-chain": "Node gateway → function (express, jose, http-proxy-middleware, express-rate-limit)",
    "idp-cc": "dev IdP token endpoint, client_credentials",
    "idp-refresh": "dev IdP token endpoint, refresh_token (one rotating chain per connection)",
}


def round_ratio(rounds, a, b, key="rps"):
    """The median over rounds of a's figure over b's in the same round."""
    ratios = [r[a][key] / r[b][key] for r in rounds["rounds"] if a in r and b in r and r[b][key]]
    return statistics.median(ratios) if ratios else None


def cpu_text(t):
    parts = " + ".join(f"{role} {fmt_us(us)}" for role, us in t["cpu_us_per_request"].items() if us is not None)
    return f"{parts} = **{fmt_us(t['cpu_us_per_request_total'])}**"


def throughput_table(rounds, single):
    """Medians of the interleaved rounds, then the single runs (the dev IdP's grants)."""
    targets = rounds["targets"] if rounds else {}
    bare = targets.get("bare")
    out = ["## Throughput, latency and CPU per request\n",
           "| target | req/s | p50 | p99 | failed | req/s vs bare (per round) | CPU µs per request (median) | "
           "other load |",
           "|---|---:|---:|---:|---:|---:|---|---:|"]
    for name, t in targets.items():
        vs = round_ratio(rounds, name, "bare") if bare else None
        out.append(f"| {LABELS.get(name, name)} | {t['rps']:,.0f} | {ms(t['p50_us'])} | {ms(t['p99_us'])} | "
                   f"{t['failed']} | {f'{vs:.2f}×' if vs else '–'} | {cpu_text(t)} | "
                   f"{100 * (t['other_share'] or 0):.1f} % |")
    for name, w in single.items():
        if w:
            vs = f"{rps(w) / bare['rps']:.3f}×" if bare else "–"
            out.append(f"| {LABELS[name]} (one run) | {rps(w):,.0f} | {ms(w['p50_us'])} | {ms(w['p99_us'])} | "
                       f"{failed(w)} | {vs} | | |")
    out.append("")
    return out


def interference_text(rounds):
    share, limit = rounds["other_share"], rounds["other_load_limit"]
    flagged = sum(t["flagged_runs"] for t in rounds["targets"].values())
    total = len(rounds["rounds"]) * len(rounds["targets"])
    verdict = ("**flagged: other processes disturbed this run**, read the ratios (same round) rather than the "
               "absolute figures" if rounds["flagged"] else "quiet")
    return (f"Other load (CPU the machine spent outside the measured processes and wrk, from /proc/stat): "
            f"{100 * share:.1f} % of the measured CPU over all runs, limit {100 * limit:.0f} %: {verdict}; "
            f"{flagged} of {total} runs above the limit.\n")


def before_after(rounds):
    """Issue 19's closing table: the chain from --baseline-bin against this build, same rounds."""
    targets = rounds["targets"]
    before, after = targets.get("chain-baseline"), targets.get("chain")
    if not before or not after:
        return []
    out = ["## Before / after: the chain from `--baseline-bin` and this build, same rounds\n",
           "| | before | after | after / before |", "|---|---:|---:|---:|"]
    for role in after["cpu_us_per_request"]:
        b, a = before["cpu_us_per_request"].get(role), after["cpu_us_per_request"][role]
        if b and a:
            out.append(f"| CPU µs per request, {role} | {fmt_us(b)} | {fmt_us(a)} | {a / b:.2f}× |")
    b, a = before["cpu_us_per_request_total"], after["cpu_us_per_request_total"]
    out.append(f"| CPU µs per request, total | {fmt_us(b)} | {fmt_us(a)} | {a / b:.2f}× |")
    r = round_ratio(rounds, "chain", "chain-baseline")
    out.append(f"| req/s (median; ratio: median of per-round ratios) | {before['rps']:,.0f} | {after['rps']:,.0f} | "
               f"{r:.2f}× |")
    for floor in ("bare-chain", "nginx-2"):
        if floor in targets:
            rb, ra = round_ratio(rounds, "chain-baseline", floor), round_ratio(rounds, "chain", floor)
            out.append(f"| req/s vs {LABELS[floor].split(' (')[0].split(',')[0]} ({floor}), per round | {rb:.2f}× | "
                       f"{ra:.2f}× | |")
    out.append("")
    return out


def server_targets(rounds, target):
    """The throughput targets of issues 9 and 19, from the same rounds: medians, ratios per round."""
    targets = rounds["targets"] if rounds else {}
    t = targets.get

    def ratio_row(figure, a, b, goal, check, fmt="{:.2f}×", key="rps"):
        if not (t(a) and t(b)):
            return
        r = round_ratio(rounds, a, b, key)
        unit = (lambda v: f"{v:,.0f} req/s") if key == "rps" else (lambda v: ms(v))
        target(figure, unit(t(a)[key]), unit(t(b)[key]), fmt.format(r), goal, None if check is None else check(r))

    ratio_row("our chain req/s vs the bare two-hop chain (axum, same hops, no auth)", "chain", "bare-chain",
              "≥ 0.80× (issue 19)", lambda r: r >= 0.80)
    ratio_row("our chain req/s vs the nginx two-hop chain (2 workers)", "chain", "nginx-2", "≥ 0.65× (issue 19)",
              lambda r: r >= 0.65)
    ratio_row("our chain req/s vs the nginx two-hop chain (1 worker)", "chain", "nginx-1", "report", None)
    ratio_row("our chain p99 vs the bare two-hop chain p99", "chain", "bare-chain", "≤ 1.5× (issue 19)",
              lambda r: r <= 1.5, key="p99_us")
    if t("chain"):
        total = t("chain")["cpu_us_per_request_total"]
        target("our chain: total CPU per request (all processes and wrk)", cpu_text(t("chain")),
               cpu_text(t("bare-chain")) if t("bare-chain") else "", "", "≤ 56 µs (issue 19)", total <= 56)
    ratio_row("our chain with Redis-shared rate limits vs in memory", "chain-redis", "chain", "≥ 0.70× (issue 19)",
              lambda r: r >= 0.70)
    ratio_row("our chain with a product (subscription key, rate limit, quota) and required claims vs the plain "
              "chain", "chain-policies", "chain", "report", None)
    ratio_row("our chain req/s vs Node chain", "chain", "node-chain", "≥ 10× (issue 19)", lambda r: r >= 10,
              fmt="{:.1f}×")
    ratio_row("our chain req/s vs bare axum (one hop)", "chain", "bare", "≥ 0.50× (issue 9)", lambda r: r >= 0.5)
    ratio_row("our chain p99 vs bare axum p99", "chain", "bare", "≤ 2× (issue 9)", lambda r: r <= 2.0, key="p99_us")
    if t("chain") and (t("chain")["failed"] or (t("node-chain") or {}).get("failed")):
        target("failed requests under load (chain / Node chain)",
               f"{t('chain')['failed']} / {(t('node-chain') or {}).get('failed', '–')}", "", "", "0",
               t("chain")["failed"] == 0)


def main():
    machine = load("machine.json") or {}
    after = load("load-after.json") or {}
    rounds = load("rounds.json")
    single = {n: load(f"load-{n}.json") for n in ["idp-cc", "idp-refresh"]}
    out = ["# scripts/bench — latest results\n"]
    servers = bool(rounds)  # none with `scripts/bench --spa-only`: the SPA's figures alone
    out.append(f"Run {machine.get('date', '?')} on {machine.get('nproc', '?')} × {machine.get('cpu', '?')}, "
               f"Linux {machine.get('kernel', '?')}; load average before {machine.get('load_before', '?')}, "
               f"after {after.get('load_after', '?')}." + (
                   f" Load: wrk, {machine.get('connections')} connections, {machine.get('threads')} threads; "
                   f"every target once per round, {machine.get('rounds')} rounds interleaved, "
                   f"{machine.get('duration_s')} s per run after a warm-up; figures are medians over the rounds, "
                   "ratios the median of the per-round ratios. All on loopback; wrk and the servers share the same "
                   "cores. The Rust servers run at the default log level (info: access log on).\n" if servers else
                   " `scripts/bench --spa-only`: the SPA's figures alone.\n"))
    if servers:
        out.append(interference_text(rounds))
        out.extend(throughput_table(rounds, single))
        out.extend(before_after(rounds))
    targets = rounds["targets"] if rounds else {}

    rows = []  # (figure, measured, baseline, ratio, target, met)

    def target(figure, value, baseline_label, ratio, target_text, met):
        rows.append((figure, value, baseline_label, ratio, target_text,
                     "—" if met is None else ("**met**" if met else "**not met**")))

    server_targets(rounds, target)
    crit = load("criterion.json") or {}
    jose = load("jose-verify.json")
    first = next((v for k, v in crit.items() if "first" in k.lower()), None)
    cached = next((v for k, v in crit.items() if "cached" in k.lower()), None)
    if first is not None:
        target("token validation, first-seen RS256 (criterion)", fmt_us(first),
               f"jose jwtVerify {fmt_us(jose['verify_us'])}" if jose else "", 
               f"{first / jose['verify_us']:.2f}×" if jose else "", "≤ 60 µs", first <= 60)
    elif servers:
        target("token validation, first-seen RS256", crit.get("missing", "not measured"), "", "", "≤ 60 µs", None)
    if cached is not None:
        target("token validation, cached", fmt_us(cached), f"first-seen {fmt_us(first)}" if first else "",
               f"{cached / first:.3f}×" if first else "", "≤ 2 µs", cached <= 2)
    elif servers:
        target("token validation, cached", "not measured", "", "", "≤ 2 µs", None)

    cold = {n: load(f"cold-{n}.json") for n in ["function-healthz", "function-hello", "bare", "node-function"]}
    if cold["function-healthz"]:
        c, b = cold["function-healthz"], cold["bare"]
        target("function cold start, exec → first 200 (/healthz), median", f"{c['median_ms']:.1f} ms",
               f"bare axum {b['median_ms']:.1f} ms" if b else "", f"{c['median_ms'] / b['median_ms']:.2f}×" if b else "",
               "≤ 20 ms", c["median_ms"] <= 20)
    if cold["function-hello"]:
        c, n = cold["function-hello"], cold["node-function"]
        target("function cold start, exec → first authenticated 200 on /api/hello (incl. discovery + JWKS)",
               f"{c['median_ms']:.1f} ms", f"Node function {n['median_ms']:.1f} ms" if n else "",
               f"{c['median_ms'] / n['median_ms']:.2f}×" if n else "", "≤ 10 ms (issue 19)", c["median_ms"] <= 10)

    size, timing = load("spa-size.json"), load("spa-timing.json")
    if size:
        s, seed = size["spa"]["gzip"], size["seed_page"]["gzip"]
        target("SPA transfer size: dist/ wasm+js+css+html, gzip -9", f"{s:,} B",
               f"seed page (msal-browser 2.11.1 + bootstrap 5.0.0-beta2 + its index.html) {seed:,} B",
               f"{s / seed:.2f}×", "≤ 1.00× (issue 15)", s <= seed)
    else:
        target("SPA transfer size", "not measured", "", "", "report", None)
    conditions = {"unthrottled": "unthrottled", "cpu4": "CPU 4× slower", "net": "network 1.6 Mbps, 150 ms RTT"}
    for condition, label in conditions.items():
        page = (timing or {}).get(condition)
        if page:
            s, seed = page["spa"]["median_interactive_ms"], page["seed"]["median_interactive_ms"]
            target(f"SPA navigation → interactive (Sign In enabled), {label}, median", f"{s:.0f} ms",
                   f"seed page, same server {seed:.0f} ms", f"{s / seed:.2f}×", "≤ 1.00× (issue 20)", s <= seed)
        else:
            target(f"SPA navigation → interactive, {label}", "not measured", "", "", "≤ 1.00× (issue 20)", None)

    out.append("## Figures, baselines and targets (issues 9 and 19)\n")
    out.append("| figure | measured | baseline (same run) | ratio | target | |")
    out.append("|---|---:|---|---:|---|---|")
    for row in rows:
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    if timing:
        out.extend(spa_load_table(timing))
    if size:
        out.append("SPA files (gzip -9): " + ", ".join(
            f"`{k}` {v['gzip']:,} B" for k, v in size["spa"]["files"].items()) + ".\n")
        out.extend(spa_code_table(size.get("linked_code")))
        out.extend(spa_package_lines(load("spa-packages.json"), size.get("linked_code")))
    print("\n".join(out))


if __name__ == "__main__":
    main()
