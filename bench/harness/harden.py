"""The hardening suite of issue 9, driven over HTTP against the release binaries.

Stages (all in the full run; `--short` runs the ones marked short, with smaller numbers, for scripts/test):
  tokens     (short) every attack class of platform.md at the gateway and directly at the function
  ratelimit  (short) one subject's budget under concurrency: one instance, two on one Redis, Redis killed, back
  rotation   (short) `dev-idp rotate-keys` while wrk runs: zero failed requests, new-kid tokens accepted
  outage     (short) the IdP stops under load: cached keys keep working, new kids get 401 (not 500), recovery
  subscription (short) subscription-key bypasses: other spellings, suspended and near-miss keys, guesses
  validation (short) request validation from the OpenAPI document: malformed queries, 10,000 parameters, repeats,
                     invalid UTF-8 names, oversized headers, bodies on the GET (bench/harness/harden_validation.py)
  badinput   (short) huge headers, malformed queries and forms, invalid UTF-8, slow clients; the IdP loses nothing
  lockout, hashing, deadline, emails, csrf, headers
             (short) issue 13's defects, attacked as found (bench/harness/harden_idp.py)
  access     (short) spoofed forwarding headers vs ip-filter and the per-IP limit, Front Door id near misses,
                     look-alike required claims, a concurrency flood
  certs      (short) the TLS listener's client certificates: another CA with the same names, self-signed copies,
                     unlisted subject, wrong key usage, none, plain HTTP (bench/harness/harden_certs.py)
  memory             a soak at steady load (RSS start/end) and floods of distinct IPs and forged subjects
  fuzz               cargo fuzz targets for a bounded time each (runs during the soak)

Every check can fail; the exit status is 1 if any did. A summary table goes to stdout and to
bench/results/harden-latest.md.
"""

import argparse
import base64
import concurrent.futures
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import harden_certs
import harden_idp
import harden_subscription
import harden_validation
import idp_client
import stack
from issuer import ROLE, Issuer
from probe import bearer, get, raw

APIM_401 = {"statusCode": 401, "message": "Unauthorized. Access token is missing or invalid."}
RESULTS = []


def check(stage, name, ok, detail=""):
    RESULTS.append((stage, name, bool(ok), str(detail)))
    mark = "ok  " if ok else "FAIL"
    print(f"[{mark}] {stage}: {name}{' — ' + str(detail) if detail else ''}", flush=True)
    return ok


def no_panics(stage, *procs):
    for proc in procs:
        log = proc.tail(100000)
        check(stage, f"{proc.name}: alive and no panic in its log",
              proc.alive() and "panicked" not in log, "" if proc.alive() else f"exited {proc.proc.returncode}")


def parallel(fn, items, workers=32):
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def b64url_json(value):
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).rstrip(b"=").decode()


def kid_of(token):
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


def metadata(openid_config_url):
    with urllib.request.urlopen(openid_config_url, timeout=10) as resp:
        return json.load(resp)


# ------------------------------------------------------------------------------------------------ tokens
def stage_tokens(args):
    stage = "tokens"
    issuer = Issuer()
    key = stack.function_key()
    fn = stack.function(issuer.openid_config_url, key, name="hello-return401", action="Return401")
    fn_redirect = stack.function(issuer.openid_config_url, key, name="hello-redirect", action="RedirectToLoginPage")
    gw = stack.gateway(fn.port, issuer.openid_config_url, key)
    good = issuer.token()
    status, _, _ = get(gw.port, headers=bearer(good))
    check(stage, "a valid token passes the gateway and the function (the suite can tell pass from refuse)",
          status == 200, f"status {status}")
    status, _, _ = get(fn.port, headers={**bearer(good), "x-functions-key": key})
    check(stage, "a valid token with the function key passes the function alone", status == 200, f"status {status}")
    status, _, _ = get(fn.port, headers=bearer(good))
    check(stage, "the function without its key answers 401", status == 401, f"status {status}")

    attacks = issuer.attack_tokens()
    bad = []
    for name, token in attacks:
        hdr = {"Authorization": f"Bearer {token}"}
        g_status, _, g_body = get(gw.port, headers=hdr)
        try:
            g_json = json.loads(g_body)
        except ValueError:
            g_json = None
        f_status, _, _ = get(fn.port, headers={**hdr, "x-functions-key": key})
        r_status, r_headers, _ = get(fn_redirect.port, headers={**hdr, "x-functions-key": key})
        ok = (g_status == 401 and g_json == APIM_401 and f_status == 401 and r_status == 302
              and "location" in r_headers)
        if not ok:
            bad.append(f"{name}: gateway {g_status} {g_body[:80]!r}, function(Return401) {f_status}, "
                       f"function(RedirectToLoginPage) {r_status}")
    check(stage, f"{len(attacks)} attack tokens: gateway 401 with APIM's body, function 401 (Return401) and 302 "
          "(RedirectToLoginPage), none accepted, none 5xx", not bad, "; ".join(bad))

    before = issuer.jwks_hits
    for i in range(30):
        token = issuer.sign(issuer.claims(), header={"kid": f"unknown-{i}-{random.random()}", "typ": None},
                            unpublished=True)
        get(gw.port, headers=bearer(token))
        get(fn.port, headers={**bearer(token), "x-functions-key": key})
    fetched = issuer.jwks_hits - before
    check(stage, "30 unknown-kid tokens per layer cause at most 2 JWKS refetches per layer (rate-limited)",
          fetched <= 4, f"{fetched} JWKS fetches")
    status, _, _ = get(gw.port, headers=bearer(good))
    check(stage, "valid tokens still pass after the unknown-kid storm", status == 200, f"status {status}")
    no_panics(stage, fn, fn_redirect, gw)
    for proc in (gw, fn_redirect, fn):
        proc.stop()
    issuer.stop()


# --------------------------------------------------------------------------------------------- ratelimit
def burst(ports, token, total, source_ip=None, workers=64):
    """`total` concurrent GETs spread over `ports`; a list of (port, status, headers, body)."""
    def one(i):
        port = ports[i % len(ports)]
        try:
            status, headers, body = get(port, headers=bearer(token), source_ip=source_ip)
        except OSError as err:
            return port, None, {}, str(err).encode()
        return port, status, headers, body
    return parallel(one, range(total), workers)


def statuses(results):
    counts = {}
    for _, status, _, _ in results:
        counts[status] = counts.get(status, 0) + 1
    return counts


def valid_429(results):
    for _, status, headers, body in results:
        if status != 429:
            continue
        try:
            parsed = json.loads(body)
        except ValueError:
            return False
        retry = headers.get("retry-after", "")
        if (parsed.get("statusCode") != 429 or not retry.isdigit() or not 1 <= int(retry) <= 60
                or f"Try again in {retry} seconds." not in parsed.get("message", "")):
            return False
    return True


def stage_ratelimit(args):
    stage = "ratelimit"
    issuer = Issuer()
    key = stack.function_key()
    fn = stack.function(issuer.openid_config_url, key)
    calls = 200 if args.short else 400

    gw = stack.gateway(fn.port, issuer.openid_config_url, key, name="gateway-subject", per_subject="15/60")
    results = burst([gw.port], issuer.token("subject-one"), calls)
    counts = statuses(results)
    check(stage, f"one instance: {calls} concurrent calls of one subject → exactly 15 × 200, the rest 429",
          counts.get(200) == 15 and counts.get(429) == calls - 15, counts)
    check(stage, "every 429 has APIM's JSON body and a Retry-After within the 60 s window", valid_429(results))
    status, _, _ = get(gw.port, headers=bearer(issuer.token("subject-two")))
    check(stage, "another subject still gets 200", status == 200, f"status {status}")

    gw_ip = stack.gateway(fn.port, issuer.openid_config_url, key, name="gateway-ip", per_ip="300/120")
    results = burst([gw_ip.port], issuer.token("ip-test"), 450, source_ip="127.0.0.2")
    counts = statuses(results)
    check(stage, "one instance: 450 concurrent calls from one IP → exactly 300 × 200 (300/120 s), the rest 429",
          counts.get(200) == 300 and counts.get(429) == 150, counts)
    status, _, _ = get(gw_ip.port, headers=bearer(issuer.token("ip-test")), source_ip="127.0.0.3")
    check(stage, "another IP still gets 200", status == 200, f"status {status}")
    gw.stop()
    gw_ip.stop()

    redis = stack.redis()
    shared = dict(per_subject="15/60", GATEWAY_REDIS_URL=redis.redis_url)
    gw1 = stack.gateway(fn.port, issuer.openid_config_url, key, name="gateway-redis-1", **shared)
    gw2 = stack.gateway(fn.port, issuer.openid_config_url, key, name="gateway-redis-2", **shared)
    results = burst([gw1.port, gw2.port], issuer.token("subject-shared"), calls)
    counts = statuses(results)
    per_instance = {p: sum(1 for port, s, _, _ in results if port == p and s == 200) for p in (gw1.port, gw2.port)}
    check(stage, f"two instances on one Redis: {calls} concurrent calls of one subject → exactly 15 × 200 in total",
          counts.get(200) == 15 and counts.get(429) == calls - 15, f"{counts}, per instance {per_instance}")

    redis.stop()
    results = burst([gw1.port, gw2.port], issuer.token("subject-redis-down"), calls)
    counts = statuses(results)
    per_instance = {p: sum(1 for port, s, _, _ in results if port == p and s == 200) for p in (gw1.port, gw2.port)}
    check(stage, "Redis killed: no 5xx, each instance falls back to its own 15-call budget (documented: at most "
          "instances × budget)", set(counts) <= {200, 429} and all(1 <= n <= 15 for n in per_instance.values()),
          f"{counts}, per instance {per_instance}")

    redis.start()
    time.sleep(1.5)  # the gateway pauses Redis use for a second after a failure
    deadline = time.monotonic() + 15
    shared_again = False
    while time.monotonic() < deadline and not shared_again:
        results = burst([gw1.port, gw2.port], issuer.token(f"subject-redis-back-{time.monotonic()}"), 64)
        shared_again = statuses(results).get(200) == 15
        if not shared_again:
            time.sleep(1)
    check(stage, "Redis back: the two instances share one budget again", shared_again, statuses(results))
    no_panics(stage, fn, gw1, gw2)
    for proc in (gw1, gw2, redis, fn):
        proc.stop()
    issuer.stop()


# ------------------------------------------------------------------------------------ rotation and outage
def idp_stack(name_suffix=""):
    idp = stack.dev_idp()
    key = stack.function_key()
    fn = stack.function(idp.openid_config_url, key, name=f"hello{name_suffix}", EASYAUTH_REQUIRED_ROLES=ROLE)
    gw = stack.gateway(fn.port, idp.openid_config_url, key, name=f"gateway{name_suffix}")
    return idp, key, fn, gw


def daemon_token(idp):
    return idp_client.client_credentials(idp.url)["access_token"]


def stage_rotation(args):
    """Rotates right after start (the validators fetched keys moments ago) and, in the full run, again once they
    have been up longer than token-validation's minimum refetch interval (60 s): both must be seamless."""
    stage = "rotation"
    idp, key, fn, gw = idp_stack("-rotation")
    token = daemon_token(idp)
    old_kid = kid_of(token)
    rotations = [3] if args.short else [3, 70]
    seconds = rotations[-1] + 6
    load_gw = stack.Wrk(f"{gw.url}/api/hello", seconds, token=token, connections=16)
    load_fn = stack.Wrk(f"{fn.url}/api/hello", seconds, token=token, key=key, connections=8)
    started = time.monotonic()
    for at in rotations:
        time.sleep(max(0.0, started + at - time.monotonic()))
        stack.rotate_keys(idp)
        rotated = time.monotonic()
        probes, new_kids, first_ok = [], set(), {}
        while time.monotonic() < rotated + 4:
            fresh = daemon_token(idp)
            new_kids.add(kid_of(fresh))
            for name, port, extra in (("gateway", gw.port, {}), ("function", fn.port, {"x-functions-key": key})):
                status = get(port, headers={**bearer(fresh), **extra})[0]
                probes.append(status)
                if status == 200:
                    first_ok.setdefault(name, time.monotonic() - rotated)
            time.sleep(0.2)
        check(stage, f"rotation {at} s after the validators started: the IdP signs with a new kid",
              new_kids and old_kid not in new_kids, f"old {old_kid[:8]}…, new {[k[:8] for k in new_kids]}")
        check(stage, f"rotation {at} s after the validators started: tokens with the new kid pass both layers at once",
              probes and all(s == 200 for s in probes),
              f"{len(probes)} calls in 4 s, {sum(s != 200 for s in probes)} refused "
              f"(statuses {sorted(set(probes), key=str)})"
              + "".join(f"; {k} first accepted {v:.1f} s after the rotation" for k, v in first_ok.items()))
        old_kid = next(iter(new_kids), old_kid)
    gw_result, fn_result = load_gw.result(), load_fn.result()
    check(stage, "zero failed requests through the gateway during the rotations (old-kid token under wrk)",
          gw_result["failed"] == 0 and gw_result["requests"] > 0,
          f"{gw_result['requests']} requests, {gw_result['failed']} failed")
    check(stage, "zero failed requests at the function during the rotations", fn_result["failed"] == 0,
          f"{fn_result['requests']} requests, {fn_result['failed']} failed")
    no_panics(stage, idp, fn, gw)
    for proc in (gw, fn, idp):
        proc.stop()


def stage_outage(args):
    stage = "outage"
    idp, key, fn, gw = idp_stack("-outage")
    token = daemon_token(idp)
    issuer_url = metadata(idp.openid_config_url)["issuer"]
    signer = Issuer()
    now = int(time.time())
    new_kid_token = signer.sign({"iss": issuer_url, "aud": stack.API_AUDIENCE, "sub": "x", "roles": [ROLE],
                                 "iat": now, "nbf": now, "exp": now + 3600},
                                header={"kid": "kid-the-idp-never-published"}, unpublished=True)
    signer.stop()
    for port, extra in ((gw.port, {}), (fn.port, {"x-functions-key": key})):
        get(port, headers={**bearer(token), **extra})  # both layers have the keys cached

    seconds = 12 if args.short else 25
    load = stack.Wrk(f"{gw.url}/api/hello", seconds, token=token, connections=16)
    time.sleep(2)
    idp.stop()
    during = {"valid-gw": [], "valid-fn": [], "newkid-gw": [], "newkid-fn": []}
    slowest = 0.0
    end = time.monotonic() + seconds - 6
    while time.monotonic() < end:
        for name, port, tok, extra in (("valid-gw", gw.port, token, {}),
                                       ("valid-fn", fn.port, token, {"x-functions-key": key}),
                                       ("newkid-gw", gw.port, new_kid_token, {}),
                                       ("newkid-fn", fn.port, new_kid_token, {"x-functions-key": key})):
            started = time.monotonic()
            try:
                status = get(port, headers={**bearer(tok), **extra}, timeout=15)[0]
            except OSError:
                status = None
            slowest = max(slowest, time.monotonic() - started)
            during[name].append(status)
        time.sleep(0.25)
    result = load.result()
    check(stage, "IdP down: the wrk load with a valid token has zero failed requests",
          result["failed"] == 0 and result["requests"] > 0,
          f"{result['requests']} requests, {result['failed']} failed")
    check(stage, "IdP down: valid tokens keep passing the gateway and the function from cached keys",
          all(s == 200 for s in during["valid-gw"] + during["valid-fn"]),
          {k: sorted(set(v), key=str) for k, v in during.items() if k.startswith("valid")})
    check(stage, "IdP down: a token with a new kid gets 401 at both layers, never 5xx",
          all(s == 401 for s in during["newkid-gw"] + during["newkid-fn"]),
          {k: sorted(set(v), key=str) for k, v in during.items() if k.startswith("newkid")})
    check(stage, "IdP down: no request took longer than 5 s", slowest <= 5, f"slowest {slowest:.2f} s")

    idp.start()
    stack.rotate_keys(idp)  # recovery must include learning a key published while the validators were cut off
    fresh = daemon_token(idp)
    limit = 90 if args.short else 330
    started = time.monotonic()
    recovered = {"gateway": None, "function": None}
    while time.monotonic() - started < limit and None in recovered.values():
        for name, port, extra in (("gateway", gw.port, {}), ("function", fn.port, {"x-functions-key": key})):
            if recovered[name] is None and get(port, headers={**bearer(fresh), **extra})[0] == 200:
                recovered[name] = time.monotonic() - started
        time.sleep(0.5)
    check(stage, f"IdP back (with a rotated key): new-kid tokens accepted again at both layers within {limit} s",
          None not in recovered.values(),
          ", ".join(f"{k} after {v:.1f} s" if v is not None else f"{k} not recovered" for k, v in recovered.items()))
    no_panics(stage, idp, fn, gw)
    for proc in (gw, fn, idp):
        proc.stop()


# ------------------------------------------------------------------------------------------------ memory
def flood_ip(i):
    """A distinct loopback source address per index, never 127.0.0.x."""
    return f"127.{1 + i // 62500}.{(i // 250) % 250}.{1 + i % 250}"


def flood(port, count, token_for, workers=16):
    def one(i):
        try:
            return get(port, headers=bearer(token_for(i)), source_ip=flood_ip(i), timeout=10)[0]
        except OSError:
            return None
    counts = {}
    for status in parallel(one, range(count), workers):
        counts[status] = counts.get(status, 0) + 1
    return counts


def stage_memory(args, fuzz_thread_start=None):
    stage = "memory"
    idp, key, fn, gw = idp_stack("-soak")
    token = daemon_token(idp)
    seconds = int(args.soak_minutes * 60)
    if fuzz_thread_start:
        fuzz_thread_start()
    load = stack.Wrk(f"{gw.url}/api/hello", seconds, token=token, connections=16)
    samples = []
    started = time.monotonic()
    while load.proc.poll() is None and time.monotonic() - started < seconds + 60:
        samples.append((round(time.monotonic() - started), gw.rss_kb(), fn.rss_kb()))
        time.sleep(5)
    result = load.result()
    warm = [s for s in samples if s[0] >= min(30, seconds / 4)] or samples
    start, end = warm[0], warm[-1]
    check(stage, f"soak {args.soak_minutes} min at steady load: no failed requests", result["failed"] == 0,
          f"{result['requests']} requests ({result['rps']:.0f}/s), {result['failed']} failed")
    for index, name in ((1, "gateway"), (2, "function")):
        grown = end[index] - start[index]
        check(stage, f"soak: {name} RSS flat (end ≤ 1.25 × start + 4 MiB)",
              end[index] <= start[index] * 1.25 + 4096,
              f"start {start[index] / 1024:.1f} MiB at {start[0]} s, end {end[index] / 1024:.1f} MiB at {end[0]} s "
              f"({grown:+d} KiB), peak {max(s[index] for s in warm) / 1024:.1f} MiB")
    for proc in (gw, fn, idp):
        proc.stop()

    # Floods: distinct source IPs (each creates a per-IP limiter key) and forged subjects (must never reach the
    # per-subject limiter: validate-jwt refuses them first). A gateway with the default key cap is the control
    # that shows the RSS measurement can see growth at all.
    issuer = Issuer()
    count = 40000
    fn = stack.function(issuer.openid_config_url, key, name="hello-flood")
    token = issuer.token("flood-subject")
    valid = lambda i: token  # noqa: E731
    for cap, name in (("1000", "gateway-capped"), ("100000", "gateway-default-cap")):
        gw = stack.gateway(fn.port, issuer.openid_config_url, key, name=name, per_ip="300/120",
                           GATEWAY_RATE_LIMIT_MAX_KEYS=cap)
        flood(gw.port, 2000, valid, workers=16)  # warm the allocator and connection handling
        before = gw.rss_kb()
        counts = flood(gw.port, count, valid)
        after = gw.rss_kb()
        ok_statuses = set(counts) <= {200}
        if cap == "1000":
            check(stage, f"{count} distinct source IPs with GATEWAY_RATE_LIMIT_MAX_KEYS=1000: every call answered "
                  "200, RSS growth ≤ 8 MiB", ok_statuses and after - before <= 8192,
                  f"{counts}; RSS {before / 1024:.1f} → {after / 1024:.1f} MiB")
            signed, signature = token.rsplit(".", 1)
            header = signed.split(".")[0]

            def forged(i):
                return f"{header}.{b64url_json(issuer.claims(f'forged-{i}'))}.{signature}"
            before = gw.rss_kb()
            counts = flood(gw.port, count, forged)
            after = gw.rss_kb()
            check(stage, f"{count} forged subjects (bad signatures) from distinct IPs: all 401, RSS growth ≤ 8 MiB",
                  set(counts) <= {401} and after - before <= 8192,
                  f"{counts}; RSS {before / 1024:.1f} → {after / 1024:.1f} MiB")
        else:
            check(stage, f"control: the same IP flood with the default cap of 100000 keys (growth expected, "
                  "report only)", ok_statuses, f"{counts}; RSS {before / 1024:.1f} → {after / 1024:.1f} MiB")
        no_panics(stage, gw)
        gw.stop()
    fn.stop()
    issuer.stop()


# ---------------------------------------------------------------------------------------------- badinput
def stage_badinput(args):
    stage = "badinput"
    idp, key, fn, gw = idp_stack("-badinput")
    servers = {"gateway": gw, "function": fn, "dev-idp": idp}
    rt = idp_client.sign_in(idp.url)["refresh_token"]
    jwks_before = metadata(idp.openid_config_url)["jwks_uri"]
    with urllib.request.urlopen(jwks_before, timeout=10) as resp:
        kids_before = sorted(k["kid"] for k in json.load(resp)["keys"])
    token_path = f"/{stack.TENANT}/{stack.POLICY}/oauth2/v2.0/token"
    authorize_path = f"/{stack.TENANT}/{stack.POLICY}/oauth2/v2.0/authorize"

    def request(method, path, headers=(), body=b""):
        path = path if isinstance(path, bytes) else path.encode()
        head = method.encode() + b" " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for h in headers:
            head += (h if isinstance(h, bytes) else h.encode()) + b"\r\n"
        if body or method == "POST":
            head += f"Content-Length: {len(body)}\r\n".encode()
        return head + b"Connection: close\r\n\r\n" + body

    # Requests aimed at every server use its main path: the API for gateway and function, authorize for the IdP.
    main_path = {"gateway": "/api/hello", "function": "/api/hello", "dev-idp": authorize_path}
    form = [b"Content-Type: application/x-www-form-urlencoded"]
    P = "{P}"
    # (name, only this server or None, request with {P} for the main path, may the server just close?)
    cases = [
        ("huge header (200 KiB)", None, request("GET", P, [b"X-Big: " + b"a" * 200_000]), True),
        ("3000 headers", None, request("GET", P, [f"X-H{i}: v" for i in range(3000)]), True),
        ("64 KiB bearer token", None, request("GET", P, [b"Authorization: Bearer " + b"a" * 65536]), True),
        ("invalid UTF-8 in Authorization", None, request("GET", P, [b"Authorization: Bearer \xff\xfe.\xc3(.x"]), False),
        ("invalid UTF-8 in the path", None, request("GET", b"/api/hel\xfflo"), True),
        ("malformed query string", None, request("GET", P + "?code=%ZZ%&&==&code=%ff%fe&x"), False),
        ("query with a NUL and a 16 KiB value", None, request("GET", P + "?code=%00" + "a" * 16384), False),
        ("garbage request line", None, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n", True),
        ("bad HTTP version", None, b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", True),
        ("bad Content-Length", None, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", True),
        ("token form: invalid UTF-8", "dev-idp", request("POST", token_path, form, b"grant_type=\xff\xfe&client_id=\xc3("), False),
        ("token form: bad percent-encoding", "dev-idp", request("POST", token_path, form, b"grant_type=%ZZ&client_id=%"), False),
        ("token form: duplicate fields", "dev-idp", request(
            "POST", token_path, form, b"grant_type=client_credentials&grant_type=refresh_token&client_id=a&client_id=b"),
         False),
        ("token form: empty", "dev-idp", request("POST", token_path, form, b""), False),
        ("token form: 100 KiB body", "dev-idp", request("POST", token_path, form, b"a=" + b"b" * 100_000), True),
        ("token form: JSON body", "dev-idp", request("POST", token_path, [b"Content-Type: application/json"],
                                                     b'{"grant_type":"client_credentials"}'), False),
        ("token form: NUL bytes", "dev-idp",
         request("POST", token_path, form, b"grant_type=refresh_token%00&refresh_token=\x00"), False),
        ("token form: refresh with a garbage token", "dev-idp", request(
            "POST", token_path, form, b"grant_type=refresh_token&client_id=6c0e4a12-3b5d-4f7e-8a9b-0c1d2e3f4a5b"
            b"&refresh_token=%ff%fe%00"), False),
        ("authorize: malformed query", "dev-idp", request("GET", authorize_path + "?client_id=%ff&redirect_uri=%ZZ&&="),
         False),
        ("authorize: 16 KiB state", "dev-idp", request("GET", authorize_path + "?client_id=6c0e4a12-3b5d-4f7e-8a9b-"
                                                       "0c1d2e3f4a5b&response_type=code&state=" + "s" * 16384), False),
        ("authorize: sign-in post with invalid UTF-8", "dev-idp",
         request("POST", authorize_path, form, b"signInName=\xff&password=\xfe&csrf=x"), False),
        ("discovery: ?p= with invalid UTF-8", "dev-idp",
         request("GET", f"/{stack.TENANT}/v2.0/.well-known/openid-configuration?p=%ff%fe"), False),
    ]
    failures = []
    for name, only, data, may_close in cases:
        for server_name, proc in servers.items():
            if only and server_name != only:
                continue
            try:
                status = raw(proc.port, data.replace(b"{P}", main_path[server_name].encode()), host=proc.host)
            except OSError as err:
                status = f"error {err}"
            # A clear 4xx; for bytes that are too big or not HTTP at all, closing the connection is fine too.
            fine = (status is None and may_close) or (isinstance(status, int) and 400 <= status < 500)
            if not fine:
                failures.append(f"{server_name} / {name}: {status}")
    check(stage, f"{len(cases)} malformed inputs × their servers: a 4xx (or close for non-HTTP bytes), never 2xx/5xx",
          not failures, "; ".join(failures))

    # Slow clients: 50 connections dribbling a request header must not stop anyone else being served.
    def slowloris(proc, stop):
        socks = []
        for _ in range(50):
            s = socket.create_connection((proc.host, proc.port), timeout=5)
            s.sendall(b"GET /api/hello HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        while not stop.is_set():
            for s in socks:
                try:
                    s.sendall(b"X-a: b\r\n")
                except OSError:
                    pass
            stop.wait(1)
        for s in socks:
            s.close()
    token = daemon_token(idp)
    slow_failures = []
    for server_name, proc in servers.items():
        stop = threading.Event()
        thread = threading.Thread(target=slowloris, args=(proc, stop), daemon=True)
        thread.start()
        time.sleep(1)
        started = time.monotonic()
        path = "/healthz" if server_name == "dev-idp" else "/api/hello"
        headers = {**bearer(token), **({"x-functions-key": key} if server_name == "function" else {})}
        status = get(proc.port, path=path, headers=headers, timeout=5, host=proc.host)[0]
        elapsed = time.monotonic() - started
        stop.set()
        thread.join(10)
        if status != 200 or elapsed > 2:
            slow_failures.append(f"{server_name}: {status} after {elapsed:.2f} s")
    check(stage, "50 slow clients holding half-sent headers: a normal request to each server still gets 200 "
          "within 2 s", not slow_failures, "; ".join(slow_failures))

    if not args.short:
        def dribble(proc):
            """Seconds until the server cuts off a client sending one header byte every 2 s (None: never)."""
            with socket.create_connection((proc.host, proc.port), timeout=2) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                started = time.monotonic()
                while time.monotonic() - started < 75:
                    try:
                        s.sendall(b"X")
                        data = s.recv(1024)
                        if data == b"" or data.startswith(b"HTTP/1.1 4"):
                            return time.monotonic() - started
                    except socket.timeout:
                        continue
                    except OSError:
                        return time.monotonic() - started
            return None
        closed = dict(zip(servers, parallel(dribble, list(servers.values()), 3)))
        check(stage, "a client dribbling one header byte every 2 s is cut off by each server within 75 s",
              None not in closed.values(),
              ", ".join(f"{k} {'after %.0f s' % v if v else 'never'}" for k, v in closed.items()))

    # Nothing lost in the IdP's store: the session from before still refreshes, sign-in and the daemon still work,
    # the signing keys are the same.
    status, _, body = idp_client.call(idp_client.opener(), idp.token_url, {
        "grant_type": "refresh_token", "client_id": idp_client.SPA_CLIENT, "refresh_token": rt,
        "scope": f"openid offline_access {idp_client.API_SCOPE}"}, {"Origin": stack.SPA_ORIGIN})
    check(stage, "IdP store intact: a refresh token issued before the barrage still redeems", status == 200,
          f"status {status} {body[:120] if status != 200 else ''}")
    signed_in = idp_client.seeded_user_signs_in(idp.url)
    check(stage, "IdP store intact: the seeded user still signs in", signed_in is True, signed_in)
    with urllib.request.urlopen(jwks_before, timeout=10) as resp:
        kids_after = sorted(k["kid"] for k in json.load(resp)["keys"])
    check(stage, "IdP store intact: the same signing keys are published", kids_after == kids_before)
    no_panics(stage, idp, fn, gw)
    for proc in (gw, fn, idp):
        proc.stop()


# -------------------------------------------------------------------------------------------------- fuzz
FUZZ_DIR = os.path.join(stack.ROOT, "fuzz")


def fuzz_targets():
    directory = os.path.join(FUZZ_DIR, "fuzz_targets")
    return sorted(f[:-3] for f in os.listdir(directory) if f.endswith(".rs")) if os.path.isdir(directory) else []


def stage_fuzz(args):
    stage = "fuzz"
    targets = fuzz_targets()
    if not check(stage, "fuzz targets exist", targets, ", ".join(targets)):
        return
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(FUZZ_DIR, "target"))
    build = subprocess.run(["cargo", "+nightly", "fuzz", "build", "-O", "-s", "none"], cwd=stack.ROOT, env=env,
                           capture_output=True, timeout=1800)
    if not check(stage, "cargo +nightly fuzz build", build.returncode == 0,
                 build.stderr.decode("utf-8", "replace")[-1500:] if build.returncode else ""):
        return
    for target in targets:
        regressions = os.path.join(FUZZ_DIR, "regressions", target)
        corpus = os.path.join(FUZZ_DIR, "corpus", target)
        os.makedirs(corpus, exist_ok=True)
        if os.path.isdir(regressions) and os.listdir(regressions):
            replay = subprocess.run(["cargo", "+nightly", "fuzz", "run", "-O", "-s", "none", target, regressions, "--",
                                     "-runs=0"], cwd=stack.ROOT, env=env, capture_output=True, timeout=600)
            check(stage, f"{target}: every saved crash input (fuzz/regressions/{target}) now passes",
                  replay.returncode == 0, replay.stderr.decode("utf-8", "replace")[-800:] if replay.returncode else
                  f"{len(os.listdir(regressions))} inputs")
        seeds = os.path.join(FUZZ_DIR, "seeds", target)
        dirs = [corpus] + ([seeds] if os.path.isdir(seeds) else [])
        run = subprocess.run(["cargo", "+nightly", "fuzz", "run", "-O", "-s", "none", target, *dirs, "--",
                              f"-max_total_time={args.fuzz_seconds}", "-rss_limit_mb=2048", "-timeout=10"],
                             cwd=stack.ROOT, env=env, capture_output=True, timeout=args.fuzz_seconds + 600)
        output = run.stderr.decode("utf-8", "replace")
        execs = [line for line in output.splitlines() if line.startswith("Done ")]
        if run.returncode != 0:
            artifacts = os.path.join(FUZZ_DIR, "artifacts", target)
            os.makedirs(regressions, exist_ok=True)
            saved = []
            for name in os.listdir(artifacts) if os.path.isdir(artifacts) else []:
                os.replace(os.path.join(artifacts, name), os.path.join(regressions, name))
                saved.append(name)
            detail = f"crash saved to fuzz/regressions/{target}/ {saved}: {output[-1200:]}"
        else:
            detail = execs[-1] if execs else ""
        check(stage, f"{target}: {args.fuzz_seconds} s of fuzzing without a crash", run.returncode == 0, detail)


# ------------------------------------------------------------------------------------------------ access
class SlowBackend:
    """Stands in for a function that takes `delay` seconds per call: what limit-concurrency protects."""

    def __init__(self, delay):
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 — the stdlib's name
                time.sleep(delay)
                body = b'{"message":"slow hello"}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


FORBIDDEN = {"statusCode": 403, "message": "Forbidden"}
SPOOF_HEADERS = ["X-Forwarded-For", "X-Real-IP", "Forwarded", "True-Client-IP", "X-Azure-ClientIP",
                 "X-Azure-SocketIP", "X-Client-IP", "CF-Connecting-IP", "X-Original-Forwarded-For"]


def spoofs(address):
    """Every way a client might claim to be `address`."""
    out = [{h: (f"for={address}" if h == "Forwarded" else address)} for h in SPOOF_HEADERS]
    out.append({"X-Forwarded-For": f"{address}, {address}"})
    out.append({"x-forwarded-for": f" {address} "})
    return out


def stage_access(args):
    """Issue 17's caller checks: spoofed forwarding headers against ip-filter and the per-IP limit, the Front Door
    id in every near-miss spelling, required claims in look-alike shapes, and a concurrency flood."""
    stage = "access"
    issuer = Issuer()
    key = stack.function_key()
    fn = stack.function(issuer.openid_config_url, key)
    token = issuer.token("access-user")
    # 127.0.0.2 plays Front Door (trusted); 127.0.0.5 is a forbidden caller; 127.0.0.3 an ordinary one.
    gw = stack.gateway(fn.port, issuer.openid_config_url, key, name="gateway-access", per_ip="5/60",
                       GATEWAY_TRUSTED_PROXIES="127.0.0.2", GATEWAY_IP_FILTER="forbid:127.0.0.5")

    def status_body(source, extra):
        status, _, body = get(gw.port, headers={**bearer(token), **extra}, source_ip=source)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body

    answers = [status_body("127.0.0.5", h) for h in spoofs("198.51.100.1")]
    check(stage, f"forbidden caller claiming another address in {len(answers)} header spellings → all 403 Forbidden",
          all(a == (403, FORBIDDEN) for a in answers), [a[0] for a in answers])
    counts = {}
    for i, h in enumerate(spoofs(f"198.51.100.{10}") * 2):
        status, _ = status_body("127.0.0.3", {k: v.replace("198.51.100.10", f"198.51.100.{10 + i}")
                                               for k, v in h.items()})
        counts[status] = counts.get(status, 0) + 1
    check(stage, "untrusted caller with a fresh spoofed address per call → still one per-IP budget (5 × 200, "
          "the rest 429)", counts.get(200) == 5 and counts.get(429) == sum(counts.values()) - 5, counts)
    status, _ = status_body("127.0.0.3", {"X-Forwarded-For": "127.0.0.4"})
    check(stage, "the same caller is still limited however it spells its address", status == 429, status)
    answers = [status_body("127.0.0.2", {"X-Forwarded-For": xff}) for xff in
               ["127.0.0.5", "198.51.100.7, 127.0.0.5", "127.0.0.5, 127.0.0.2"]]
    check(stage, "through the trusted proxy, a forbidden client is refused even with a prepended good address",
          all(a == (403, FORBIDDEN) for a in answers), [a[0] for a in answers])
    status, _ = status_body("127.0.0.2", {"X-Forwarded-For": "127.0.0.5, 198.51.100.77"})
    check(stage, "through the trusted proxy, the right-most untrusted hop is the client", status == 200, status)
    gw.stop()

    fdid = "7f3a9c1e-2b4d-4e6f-8a0b-1c2d3e4f5a6b"
    gw = stack.gateway(fn.port, issuer.openid_config_url, key, name="gateway-frontdoor", GATEWAY_FRONT_DOOR_ID=fdid)
    near_misses = [{}, {"X-Azure-FDID": fdid.upper()}, {"X-Azure-FDID": fdid[:-1]}, {"X-Azure-FDID": fdid + "0"},
                   {"X-Azure-FDID": f"{fdid},{fdid}"}, {"X-Azure-FDID": ""}, {"X-FDID": fdid},
                   {"X-Azure-FDID-Spoof": fdid}]
    answers = [get(gw.port, headers={**bearer(token), **h})[0] for h in near_misses]
    check(stage, f"Front Door id pinned: {len(near_misses)} near misses → all 403", set(answers) == {403}, answers)
    ok = get(gw.port, headers={**bearer(token), "X-Azure-FDID": fdid})[0]
    check(stage, "the exact Front Door id passes", ok == 200, ok)
    gw.stop()

    gw = stack.gateway(fn.port, issuer.openid_config_url, key, name="gateway-claims",
                       GATEWAY_REQUIRED_CLAIMS="scp=accessapp,roles=access:test-api|admin")
    look_alikes = [dict(scp="accessapp2"), dict(scp="ACCESSAPP"), dict(scp=["accessapp"]), dict(scp=None),
                   dict(roles="admin"), dict(roles=["Admin"]), dict(roles=[]), dict(roles=None),
                   dict(roles=["access:test-api|admin"])]
    answers = []
    for overrides in look_alikes:
        status, _, body = get(gw.port, headers=bearer(issuer.token("claims-user", **overrides)))
        answers.append((status, json.loads(body) if status == 401 else body))
    check(stage, f"required claims: {len(look_alikes)} look-alike claim shapes → all validate-jwt's 401",
          all(a == (401, APIM_401) for a in answers), [a[0] for a in answers])
    gw.stop()

    slow = SlowBackend(1.5)
    gw = stack.gateway(slow.port, issuer.openid_config_url, key, name="gateway-concurrency",
                       GATEWAY_MAX_CONCURRENCY="4")
    flood = 64 if args.short else 256

    def timed(_):
        started = time.monotonic()
        try:
            status, _, _ = get(gw.port, headers=bearer(token), timeout=20)
        except OSError:
            status = None
        return status, time.monotonic() - started

    results = parallel(timed, range(flood), workers=flood)
    counts = {}
    for status, _ in results:
        counts[status] = counts.get(status, 0) + 1
    slowest_429 = max((t for s, t in results if s == 429), default=0)
    check(stage, f"concurrency flood: {flood} calls at a 1.5 s backend with max 4 in flight → 4 to 8 × 200, "
          "the rest 429, nothing else", 4 <= counts.get(200, 0) <= 8 and set(counts) <= {200, 429}, counts)
    check(stage, "every 429 answered at once (never queued behind the slow calls)", slowest_429 < 1.0,
          f"slowest 429 after {slowest_429:.3f} s")
    status = get(gw.port, headers=bearer(token), timeout=20)[0]
    check(stage, "after the flood the permits are back", status == 200, status)
    no_panics(stage, gw, fn)
    for proc in (gw, fn):
        proc.stop()
    slow.stop()
    issuer.stop()


# -------------------------------------------------------------------------------------------------- main
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="the CI subset (< 3 minutes)")
    parser.add_argument("--soak-minutes", type=float, default=10)
    parser.add_argument("--fuzz-seconds", type=int, default=60)
    parser.add_argument("--only", help="comma-separated stages")
    args = parser.parse_args()
    # `timeout` stops the suite with SIGTERM: leave through SystemExit so atexit stops every child server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))
    short_stages = ["tokens", "ratelimit", "rotation", "outage", "subscription", *harden_validation.STAGES,
                    "badinput", *harden_idp.STAGES,
                    "access", *harden_certs.STAGES]
    stages = short_stages if args.short else [*short_stages, "memory"]
    if args.only:
        stages = args.only.split(",")
    started = time.monotonic()
    fuzz_thread = None
    if "fuzz" in stages or ("memory" in stages and not args.only):
        def start_fuzz():
            nonlocal fuzz_thread
            fuzz_thread = threading.Thread(target=run_stage, args=("fuzz", stage_fuzz, args), daemon=True)
            fuzz_thread.start()
    else:
        start_fuzz = None
    table = {"tokens": stage_tokens, "ratelimit": stage_ratelimit, "rotation": stage_rotation,
             "outage": stage_outage, "badinput": stage_badinput, "access": stage_access,
             "subscription": lambda a: harden_subscription.stage_subscription(check, no_panics, a),
             "validation": lambda a: harden_validation.stage_validation(check, no_panics, a),
             **{name: (lambda a, f=f: f(a, check, no_panics))
                for name, f in {**harden_idp.STAGES, **harden_certs.STAGES}.items()}}
    for stage in stages:
        if stage == "memory":
            run_stage("memory", stage_memory, args, start_fuzz)
        elif stage == "fuzz":
            if start_fuzz is None or args.only:
                run_stage("fuzz", stage_fuzz, args)
        else:
            run_stage(stage, table[stage], args)
    if fuzz_thread:
        fuzz_thread.join(args.fuzz_seconds * 4 + 2400)
    report(time.monotonic() - started)
    return 0 if all(ok for _, _, ok, _ in RESULTS) else 1


def run_stage(name, fn, *fn_args):
    print(f"== {name}", flush=True)
    try:
        fn(*fn_args)
    except Exception as err:  # noqa: BLE001 — a stage that cannot run is a failed check, not a crash of the suite
        check(name, "stage ran to completion", False, f"{type(err).__name__}: {err}")
    print(f"   (logs in {stack.LOG_DIR})", flush=True)


def report(elapsed):
    lines = ["# scripts/harden — latest results", "",
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {elapsed:.0f} s, "
             f"{sum(ok for *_, ok, _ in RESULTS)}/{len(RESULTS)} checks passed.", "",
             "| stage | check | result | detail |", "|---|---|---|---|"]
    for stage, name, ok, detail in RESULTS:
        detail = detail.replace("|", "\\|").replace("\n", " ")[:400]
        lines.append(f"| {stage} | {name} | {'pass' if ok else '**FAIL**'} | {detail} |")
    text = "\n".join(lines) + "\n"
    out_dir = os.path.join(stack.ROOT, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "harden-latest.md"), "w") as f:
        f.write(text)
    print("\n" + text)


if __name__ == "__main__":
    sys.exit(main())
