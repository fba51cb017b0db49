"""Stages of scripts/harden for the dev IdP's defects of issue 13 (and the gateway's header hygiene), each
attacking the running binaries over HTTP the way the review that found them did:

  lockout    30 guesses posted at once: no more than the limit (10) evaluated, the right guess refused
  hashing    200 sign-in posts at once: bounded argon2 (a short line, then busy 503s), peak RSS < 300 MiB, JWKS
             still answers
  deadline   a body dribbled byte by byte is cut at the whole-request deadline; open connections are capped
  emails     one normalised form: Ömer@… signs up and in under any case or composition, no second account
  csrf       a planted cookie + field pair, a foreign Origin, a planted session id: all refused; the IdP is on
             a loopback address of its own (127.0.0.2), its session cookie HttpOnly and SameSite=Lax
  headers    the gateway drops the client's Cookie and x-ms-token-* headers before the function

Each stage function takes (args, check, no_panics) from harden.py.
"""

import concurrent.futures
import html
import json
import os
import re
import socket
import sqlite3
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import idp_client
import stack
from issuer import Issuer
from probe import bearer, get

LOCKED = "temporarily locked"
INVALID = "Invalid username or password."
BUILTIN_TOML = os.path.join(stack.ROOT, "backend", "dev-idp", "devidp.example.toml")


def idp_with(name, **limits):
    """A dev IdP on the built-in configuration with some `[limits]` changed (written to a DEVIDP_CONFIG)."""
    with open(BUILTIN_TOML) as f:
        text = f.read()
    for key, value in limits.items():
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        if n != 1:
            raise RuntimeError(f"devidp.example.toml has no `{key}` setting to change")
    path = os.path.join(tempfile.mkdtemp(prefix="harden-idp-config-"), "devidp.toml")
    with open(path, "w") as f:
        f.write(text)
    return stack.dev_idp(name=name, DEVIDP_CONFIG=path)


def authorize_url(base, suffix=""):
    params = {"client_id": idp_client.SPA_CLIENT, "response_type": "code", "redirect_uri": idp_client.REDIRECT_URI,
              "scope": f"openid offline_access {idp_client.API_SCOPE}", "state": "s", "nonce": "n",
              "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"}
    return f"{base}/{idp_client.TENANT}/{idp_client.POLICY}/oauth2/v2.0/authorize{suffix}?" \
           + urllib.parse.urlencode(params)


class FormPage:
    """A browser (cookie jar) holding one sign-in or sign-up page, ready to post its form."""

    def __init__(self, base, signup=False, op=None):
        self.base, self.op = base, op or idp_client.opener()
        status, headers, page = idp_client.call(self.op, authorize_url(base, "/signup" if signup else ""))
        if status != 200:
            raise RuntimeError(f"the {'sign-up' if signup else 'sign-in'} page answered {status}")
        self.set_cookies = headers.get_all("Set-Cookie") or []
        action = re.search(r'<form[^>]*action="([^"]*)"', page)
        self.target = urllib.parse.urljoin(base + "/", html.unescape(action.group(1)))
        self.fields = {html.unescape(n): html.unescape(v) for n, v in
                       re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', page)}

    def post(self, extra, headers=None, fields=None):
        data = dict(fields if fields is not None else self.fields, **extra)
        return idp_client.call(self.op, self.target, data, {"Origin": self.base, **(headers or {})})


def guess(page, name, password, headers=None):
    return page.post({"signInName": name, "password": password}, headers)


# ------------------------------------------------------------------------------------------------- lockout
def stage_lockout(args, check, no_panics):
    stage = "lockout"
    # Hash slots for the whole burst, so that the lockout alone decides (the hashing stage covers the slots).
    idp = idp_with("dev-idp-lockout", concurrent_password_hashes=40)
    for name in (idp_client.USER, "nobody@example.com"):
        pages = [FormPage(idp.url) for _ in range(30)]
        right = pages.pop()
        with concurrent.futures.ThreadPoolExecutor(29) as pool:
            burst = [pool.submit(guess, p, name, "Wrong-password-1") for p in pages]
            concurrent.futures.wait(burst, timeout=0.25, return_when=concurrent.futures.FIRST_COMPLETED)
            status, headers, body = guess(right, name, idp_client.PASSWORD)
            results = [f.result() for f in burst]
        invalid = sum(INVALID in b for _, _, b in results)
        check(stage, f"{name}: 29 wrong guesses posted at once, then the right one while they hash: the right one "
              "is refused as locked", status == 200 and LOCKED in body,
              f"status {status}, Location {headers.get('Location', '')[:40]!r}")
        check(stage, f"{name}: at most 9 of the burst evaluated as invalid (the 10th locks, the rest are refused)",
              invalid <= 9 and all(s == 200 for s, _, _ in results), f"{invalid} invalid")
    no_panics(stage, idp)
    idp.stop()


# ------------------------------------------------------------------------------------------------- hashing
def stage_hashing(args, check, no_panics):
    stage = "hashing"
    idp = stack.dev_idp(name="dev-idp-hashing")
    jwks = f"{idp.url}/{idp_client.TENANT}/{idp_client.POLICY}/discovery/v2.0/keys"
    count = 200
    pages = [FormPage(idp.url) for _ in range(count)]
    baseline = idp.rss_kb()
    peak, stop = [baseline], threading.Event()

    def sample():
        while not stop.is_set():
            peak.append(idp.rss_kb())
            stop.wait(0.01)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        burst = [pool.submit(guess, p, f"user{i}@example.com", "Wrong-password-1",
                             {"Accept": "text/html" if i % 2 else "*/*"}) for i, p in enumerate(pages)]
        time.sleep(0.05)
        t0 = time.monotonic()
        jwks_status = idp_client.call(idp_client.opener(), jwks)[0]
        jwks_seconds = time.monotonic() - t0
        results = [f.result() for f in burst]
    elapsed = time.monotonic() - started
    stop.set()
    sampler.join()
    statuses = {}
    for s, _, _ in results:
        statuses[s] = statuses.get(s, 0) + 1
    busy_ok = all(h.get("Retry-After") == "1" and "busy" in b for s, h, b in results if s == 503)
    check(stage, f"{count} sign-in posts at once: each answered 200 (hashed) or 503 busy with Retry-After, "
          "no unbounded queue", set(statuses) <= {200, 503} and statuses.get(503, 0) > 0 and busy_ok,
          f"{statuses} in {elapsed:.1f} s")
    check(stage, f"{count} sign-in posts at once: peak RSS under 300 MiB",
          max(peak) < 300 * 1024, f"peak {max(peak) / 1024:.1f} MiB (before {baseline / 1024:.1f} MiB)")
    check(stage, "the JWKS answers within 2 s during the burst", jwks_status == 200 and jwks_seconds < 2,
          f"status {jwks_status} in {jwks_seconds * 1000:.0f} ms")
    signed_in = idp_client.seeded_user_signs_in(idp.url)
    check(stage, "right after the burst the seeded user signs in", signed_in is True, signed_in)
    no_panics(stage, idp)
    idp.stop()


# ------------------------------------------------------------------------------------------------ deadline
def dribble_body(host, port, path, limit):
    """Seconds until the server answers or closes a POST whose (4 kB, within every body limit) body arrives one
    byte every 0.5 s (None: never), and the status line it answered with."""
    with socket.create_connection((host, port), timeout=0.5) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  "Content-Length: 4000\r\n\r\n".encode())
        started = time.monotonic()
        while time.monotonic() - started < limit:
            try:
                s.sendall(b"a")
                data = s.recv(1024)
                return time.monotonic() - started, data.split(b"\r\n", 1)[0].decode("latin-1")
            except socket.timeout:
                continue
            except OSError:
                return time.monotonic() - started, "closed"
    return None, ""


def open_fds(proc):
    try:
        return len(os.listdir(f"/proc/{proc.pid}/fd"))
    except OSError:
        return -1


def stage_deadline(args, check, no_panics):
    stage = "deadline"
    idp = idp_with("dev-idp-deadline", request_seconds=2, max_connections=32)
    token_path = f"/{idp_client.TENANT}/{idp_client.POLICY}/oauth2/v2.0/token"
    held, status_line = dribble_body(idp.host, idp.port, token_path, 15)
    check(stage, "dev IdP (request_seconds = 2): a token post dribbling its body is answered 408 within 4 s",
          held is not None and held < 4 and status_line.startswith("HTTP/1.1 408"),
          f"{status_line or 'never'} after {held or 0:.1f} s")
    before = open_fds(idp)
    socks = []
    for _ in range(300):
        try:
            socks.append(socket.create_connection((idp.host, idp.port), timeout=2))
        except OSError:
            break
    time.sleep(0.5)
    during = open_fds(idp)
    check(stage, "300 idle connections against max_connections = 32: the server holds at most 32 of them "
          "(open descriptors)", during - before <= 32 + 2, f"{before} → {during} descriptors")
    for s in socks:
        s.close()
    time.sleep(0.5)
    status = get(idp.port, path="/healthz", host=idp.host, timeout=15)[0]
    check(stage, "once they close, the server answers again", status == 200, f"status {status}")
    no_panics(stage, idp)
    idp.stop()

    if not args.short:
        # The three servers at their defaults (60 s), in parallel: the shared serving loop behaves alike.
        issuer = Issuer()
        key = stack.function_key()
        fn = stack.function(issuer.openid_config_url, key, name="hello-deadline")
        gw = stack.gateway(fn.port, issuer.openid_config_url, key, name="gateway-deadline")
        idp = stack.dev_idp(name="dev-idp-deadline-default")
        targets = {"gateway": (gw, "/api/hello"), "function": (fn, "/api/hello"), "dev-idp": (idp, token_path)}
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            futures = {name: pool.submit(dribble_body, p.host, p.port, path, 80) for name, (p, path) in
                       targets.items()}
            cut = {name: f.result() for name, f in futures.items()}
        check(stage, "each server (default limits) answers a dribbled body within 75 s: refused unread (gateway, "
              "function: no route reads a body) or 408 at the 60 s deadline (dev IdP)",
              all(h is not None and h < 75 for h, _ in cut.values()),
              ", ".join(f"{k}: {line or 'never'} after {h or 0:.0f} s" for k, (h, line) in cut.items()))
        no_panics(stage, gw, fn, idp)
        for proc in (gw, fn, idp):
            proc.stop()
        issuer.stop()


# -------------------------------------------------------------------------------------------------- emails
def sign_up(base, email, password):
    page = FormPage(base, signup=True)
    return page.post({"email": email, "displayName": "Ömer", "newPassword": password, "reenterPassword": password})


def signs_in(base, name, password):
    status, headers, _ = guess(FormPage(base), name, password)
    return status == 303 and headers.get("Location", "").startswith(idp_client.REDIRECT_URI)


def stage_emails(args, check, no_panics):
    stage = "emails"
    idp = stack.dev_idp(name="dev-idp-emails")
    status, _, body = sign_up(idp.url, "Ömer@Example.com", "Str0ng-pass")
    check(stage, "sign-up as Ömer@Example.com", status == 303, f"status {status}")
    variants = ["Ömer@Example.com", "ömer@example.com", "ÖMER@EXAMPLE.COM", "O\u0308mer@example.com"]
    failed = [v for v in variants if not signs_in(idp.url, v, "Str0ng-pass")]
    check(stage, "it signs in as typed, lower-cased, upper-cased and decomposed (NFD)", not failed,
          f"refused: {failed}")
    status, _, body = sign_up(idp.url, "ömer@example.com", "Other-Str0ng-pass")
    check(stage, "a second sign-up as ömer@example.com is refused (the normalised form exists)",
          status == 200 and "already exists" in body, f"status {status}")
    idp.stop()
    # Rows as the old code wrote them: as typed, and a younger account differing only by Unicode case.
    db = sqlite3.connect(os.path.join(idp.data_dir, "devidp.sqlite3"))
    (hash_,) = db.execute("SELECT password_hash FROM users WHERE email = 'ömer@example.com'").fetchone()
    db.execute("DELETE FROM users WHERE email = 'ömer@example.com'")
    # (SQLite's NOCASE folds ASCII only: these two differ by Ë/ë alone, as the old code let them.)
    db.execute("INSERT INTO users VALUES ('older', 'ZOË@example.com', 'x', ?, 1)", (hash_,))
    db.execute("INSERT INTO users VALUES ('younger', 'zoë@example.com', 'x', ?, 2)", (hash_,))
    db.commit()
    db.close()
    idp.start()
    db = sqlite3.connect(os.path.join(idp.data_dir, "devidp.sqlite3"))
    rows = dict(db.execute("SELECT id, email FROM users WHERE id IN ('older', 'younger')").fetchall())
    db.close()
    check(stage, "on start, stored rows are migrated: the older account owns zoë@example.com, the younger "
          "duplicate is renamed", rows.get("older") == "zoë@example.com"
          and rows.get("younger", "").startswith("duplicate-younger:"), rows)
    check(stage, "the migrated account signs in as ZOË@example.com", signs_in(idp.url, "ZOË@example.com",
                                                                               "Str0ng-pass"))
    no_panics(stage, idp)
    idp.stop()


# ---------------------------------------------------------------------------------------------------- csrf
def stage_csrf(args, check, no_panics):
    stage = "csrf"
    idp = stack.dev_idp(name="dev-idp-csrf")
    check(stage, "the dev IdP listens on a loopback address of its own (127.0.0.2), not on 127.0.0.1",
          idp.host == "127.0.0.2" and not port_open("127.0.0.1", idp.port), f"{idp.host}:{idp.port}")
    credentials = {"signInName": idp_client.USER, "password": idp_client.PASSWORD}

    # A planted pair: the attacker sets devidp_csrf=X (any port of the host could) and posts csrf=X.
    victim = FormPage(idp.url)
    planted = "A" * 43
    for cookie in victim.op.handlers:
        if hasattr(cookie, "cookiejar"):
            for c in list(cookie.cookiejar):
                c.value = planted
    status, _, _ = victim.post(credentials, fields=dict(victim.fields, csrf=planted))
    check(stage, "a planted CSRF cookie with an equal form field is refused (403)", status == 403,
          f"status {status}")
    page = FormPage(idp.url)
    status, _, _ = page.post(credentials, {"Origin": "http://127.0.0.1:9999"})
    check(stage, "a form posted from another origin (Origin header) is refused (403)", status == 403,
          f"status {status}")
    status, headers, _ = FormPage(idp.url).post(credentials)
    session_cookie = next((c for c in headers.get_all("Set-Cookie") or [] if c.startswith("devidp_session=")), "")
    check(stage, "a genuine sign-in still works, and its session cookie is HttpOnly and SameSite=Lax",
          status == 303 and "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie,
          f"status {status}, {re.sub(r'=[^;]*', '=…', session_cookie, count=1)}")
    planted_session = {"Cookie": "devidp_session=" + "B" * 43}
    status, _, body = idp_client.call(idp_client.opener(), authorize_url(idp.url), None, planted_session)
    check(stage, "a planted session id is not honoured (the sign-in page, no code)",
          status == 200 and 'id="localAccountForm"' in body, f"status {status}")
    no_panics(stage, idp)
    idp.stop()


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


# ------------------------------------------------------------------------------------------------- headers
class EchoBackend:
    """Stands in for the function: answers each call with the request headers it received, as JSON."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def stage_headers(args, check, no_panics):
    stage = "headers"
    issuer, echo = Issuer(), EchoBackend()
    gw = stack.gateway(echo.port, issuer.openid_config_url, stack.function_key(), name="gateway-headers")
    status, _, body = get(gw.port, headers={**bearer(issuer.token()), "Cookie": "devidp_session=stolen",
                                            "X-MS-TOKEN-AAD-ACCESS-TOKEN": "forged",
                                            "x-ms-token-aad-id-token": "forged", "X-Custom": "kept"})
    seen = json.loads(body) if status == 200 else {}
    leaked = [h for h in seen if h == "cookie" or h.startswith("x-ms-token-")]
    check(stage, "the gateway forwards neither the client's Cookie nor x-ms-token-* headers (other headers are)",
          status == 200 and not leaked and seen.get("x-custom") == "kept",
          f"status {status}, forwarded: {leaked or 'none of them'}")
    no_panics(stage, gw)
    gw.stop()
    echo.stop()
    issuer.stop()


STAGES = {"lockout": stage_lockout, "hashing": stage_hashing, "deadline": stage_deadline,
          "emails": stage_emails, "csrf": stage_csrf, "headers": stage_headers}
