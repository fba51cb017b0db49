"""Renders one scripts/bench run (a directory of JSON files) as the markdown table of issue 9: every figure with
its same-run baseline, the ratio, the target and whether it is met. Usage: bench_report.py RUN_DIR > table.md"""

import json
import os
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


def main():
    machine = load("machine.json") or {}
    after = load("load-after.json") or {}
    out = []
    out.append("# scripts/bench — latest results\n")
    loads = {n: load(f"load-{n}.json") for n in
             ["bare", "bare-chain", "function", "chain", "chain-policies", "node-function", "node-chain", "idp-cc",
              "idp-refresh"]}
    servers = any(loads.values())  # none with `scripts/bench --spa-only`: the SPA's figures alone
    out.append(f"Run {machine.get('date', '?')} on {machine.get('nproc', '?')} × {machine.get('cpu', '?')}, "
               f"Linux {machine.get('kernel', '?')}; load average before {machine.get('load_before', '?')}, "
               f"after {after.get('load_after', '?')}." + (
                   f" Load: wrk, {machine.get('connections')} connections, "
                   f"{machine.get('threads')} threads, {machine.get('duration_s')} s per target after a warm-up, "
                   "all on loopback; load generator and servers share the same cores.\n" if servers else
                   " `scripts/bench --spa-only`: the SPA's figures alone.\n"))

    bare = loads["bare"]
    labels = {
        "bare": "bare axum hello, no auth (ceiling)",
        "bare-chain": "bare two-hop chain, no auth (axum proxy → bare hello): the architecture's floor",
        "function": "hello function alone (key + EasyAuth validation)",
        "chain": "gateway → function, both validating (ours)",
        "chain-policies": "the same with a product: subscription key, its rate limit and quota, required claims",
        "node-function": "Node function alone (express + jose)",
        "node-chain": "Node gateway → function (express, jose, http-proxy-middleware, express-rate-limit)",
        "idp-cc": "dev IdP token endpoint, client_credentials",
        "idp-refresh": "dev IdP token endpoint, refresh_token (one rotating chain per connection)",
    }
    servers = any(loads.values())  # none with `scripts/bench --spa-only`: the SPA's figures alone
    if servers:
        out.append("## Throughput and latency\n")
        out.append("| target | req/s | p50 | p99 | failed | req/s vs bare | p99 vs bare |")
        out.append("|---|---:|---:|---:|---:|---:|---:|")
    for name, w in loads.items() if servers else []:
        if w is None:
            out.append(f"| {labels[name]} | not measured | | | | | |")
            continue
        vs = f"{rps(w) / rps(bare):.2f}×" if bare else "–"
        vs99 = f"{w['p99_us'] / bare['p99_us']:.2f}×" if bare and bare["p99_us"] else "–"
        out.append(f"| {labels[name]} | {rps(w):,.0f} | {ms(w['p50_us'])} | {ms(w['p99_us'])} | {failed(w)} | "
                   f"{vs} | {vs99} |")
    if servers:
        out.append("")

    rows = []  # (figure, measured, baseline, ratio, target, met)

    def target(figure, value, baseline_label, ratio, target_text, met):
        rows.append((figure, value, baseline_label, ratio, target_text,
                     "—" if met is None else ("**met**" if met else "**not met**")))

    chain, node, bare_chain = loads["chain"], loads["node-chain"], loads["bare-chain"]
    if chain and bare:
        r = rps(chain) / rps(bare)
        target("our chain req/s vs bare axum", f"{rps(chain):,.0f} req/s", f"{rps(bare):,.0f} req/s", f"{r:.2f}×",
               "≥ 0.50×", r >= 0.5)
        r99 = chain["p99_us"] / bare["p99_us"]
        target("our chain p99 vs bare axum p99", ms(chain["p99_us"]), ms(bare["p99_us"]), f"{r99:.2f}×", "≤ 2×",
               r99 <= 2.0)
    if chain and bare_chain:
        r = rps(chain) / rps(bare_chain)
        target("our chain req/s vs the bare two-hop chain (same hops, no auth)", f"{rps(chain):,.0f} req/s",
               f"{rps(bare_chain):,.0f} req/s", f"{r:.2f}×", "report", None)
        if bare_chain["p99_us"]:
            r99 = chain["p99_us"] / bare_chain["p99_us"]
            target("our chain p99 vs the bare two-hop chain p99", ms(chain["p99_us"]), ms(bare_chain["p99_us"]),
                   f"{r99:.2f}×", "report", None)
    policies = loads["chain-policies"]
    if chain and policies:
        target("our chain with a product (subscription key, rate limit, quota) and required claims vs the plain "
               "chain", f"{rps(policies):,.0f} req/s", f"{rps(chain):,.0f} req/s", f"{rps(policies) / rps(chain):.2f}×",
               "report", None)
    if chain and node:
        r = rps(chain) / rps(node)
        target("our chain req/s vs Node chain", f"{rps(chain):,.0f} req/s", f"{rps(node):,.0f} req/s", f"{r:.1f}×",
               "≥ 3×", r >= 3.0)
    if chain and (failed(chain) or (node and failed(node))):
        target("failed requests under load (chain / Node chain)", f"{failed(chain)} / {failed(node) if node else '–'}",
               "", "", "0", failed(chain) == 0)

    crit = load("criterion.json") or {}
    jose = load("jose-verify.json")
    first = next((v for k, v in crit.items() if "first" in k.lower()), None)
    cached = next((v for k, v in crit.items() if "cached" in k.lower()), None)
    if first is not None:
        target("token validation, first-seen RS256 (criterion)", fmt_us(first),
               f"jose jwtVerify {fmt_us(jose['verify_us'])}" if jose else "", 
               f"{first / jose['verify_us']:.2f}×" if jose else "", "≤ 60 µs", first <= 60)
    elif servers:
        target("token validation, first-seen RS256", crit.get("missing", "not measured"), "", "", "≤ 60 µs", False)
    if cached is not None:
        target("token validation, cached", fmt_us(cached), f"first-seen {fmt_us(first)}" if first else "",
               f"{cached / first:.3f}×" if first else "", "≤ 2 µs", cached <= 2)
    elif servers:
        target("token validation, cached", "not measured", "", "", "≤ 2 µs", False)

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
               f"{c['median_ms'] / n['median_ms']:.2f}×" if n else "", "≤ 20 ms", c["median_ms"] <= 20)

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
            target(f"SPA navigation → interactive, {label}", "not measured", "", "", "≤ 1.00× (issue 20)", False)

    for name, label in [("idp-cc", "dev IdP client_credentials"), ("idp-refresh", "dev IdP refresh_token")]:
        w = loads[name]
        if w:
            target(f"{label} req/s (failed: {failed(w)})", f"{rps(w):,.0f} req/s",
                   f"bare axum {rps(bare):,.0f} req/s" if bare else "", f"{rps(w) / rps(bare):.3f}×" if bare else "",
                   "report", None)

    out.append("## Figures, baselines and targets (issue 9)\n")
    out.append("| figure | measured | baseline (same run) | ratio | target | |")
    out.append("|---|---:|---|---:|---|---|")
    for row in rows:
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    if chain and bare and bare_chain:
        floor, ours = rps(bare_chain) / rps(bare), rps(chain) / rps(bare)
        verdict = "is not met" if ours < 0.5 else "is met"
        out.append(f"The ≥ 0.50× req/s target {verdict} ({ours:.2f}×). The architecture alone sets a ceiling: the "
                   "bare two-hop chain (a no-auth axum proxy in front of the bare hello over a pooled keep-alive "
                   f"HTTP/1.1 client, sharing the cores with wrk as ours does) reaches {floor:.2f}× of bare axum on "
                   f"this machine. Ours keeps {rps(chain) / rps(bare_chain):.2f}× of the bare two-hop chain; the rest "
                   "of the gap is what our servers do beyond relaying (token validation at both layers, the function "
                   "key, rate limiting, header handling).\n")
    if timing:
        out.extend(spa_load_table(timing))
    if size:
        out.append("SPA files (gzip -9): " + ", ".join(
            f"`{k}` {v['gzip']:,} B" for k, v in size["spa"]["files"].items()) + ".\n")
        out.extend(spa_code_table(size.get("linked_code")))
    print("\n".join(out))


if __name__ == "__main__":
    main()
