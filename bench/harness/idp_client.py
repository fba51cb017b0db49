"""Talks to the dev IdP the way a browser and the SPA do, with only the standard library.

  idp_client.py refresh-tokens --base URL --count N   -> N refresh tokens (one per line), each from its own
                                                          sign-in (authorize page -> sign-in form -> code -> token)
  idp_client.py client-credentials --base URL         -> one access token for the daemon app
"""

import argparse
import base64
import hashlib
import html
import http.cookiejar
import json
import re
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request

TENANT = "devtenant.onmicrosoft.com"
POLICY = "B2C_1_signupsignin"
SPA_CLIENT = "6c0e4a12-3b5d-4f7e-8a9b-0c1d2e3f4a5b"
SPA_ORIGIN = "http://127.0.0.1:8080"
REDIRECT_URI = "http://127.0.0.1:8080/"
API_SCOPE = f"https://{TENANT}/hello-api/accessapp"
USER, PASSWORD = "alice@example.com", "Hello-B2C-2026!"
DAEMON_CLIENT, DAEMON_SECRET = "2b4d6f8a-1c3e-4a5b-9c7d-3e5f7a9b1c2d", "dev-daemon-secret"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def opener():
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect())


def call(op, url, data=None, headers=None):
    """(status, headers, body) without following redirects."""
    body = None if data is None else urllib.parse.urlencode(data).encode()
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with op.open(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read().decode("utf-8", "replace")


def token_endpoint(base):
    return f"{base}/{TENANT}/{POLICY}/oauth2/v2.0/token"


def sign_in(base, op=None, scope=None):
    """One full Authorization Code + PKCE sign-in; returns the token response (a dict)."""
    op = op or opener()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    scope = scope or f"openid offline_access {API_SCOPE}"
    params = {"client_id": SPA_CLIENT, "response_type": "code", "redirect_uri": REDIRECT_URI, "scope": scope,
              "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8), "code_challenge": challenge,
              "code_challenge_method": "S256", "response_mode": "query"}
    authorize = f"{base}/{TENANT}/{POLICY}/oauth2/v2.0/authorize"
    status, _, page = call(op, f"{authorize}?{urllib.parse.urlencode(params)}")
    if status != 200:
        raise SystemExit(f"authorize page answered {status}")
    form = re.search(r'<form[^>]*id="localAccountForm"[^>]*>(.*?)</form>', page, re.S)
    action = re.search(r'<form[^>]*action="([^"]*)"[^>]*id="localAccountForm"', page)
    if not form or not action:
        raise SystemExit("no sign-in form on the authorize page")
    fields = {html.unescape(n): html.unescape(v) for n, v in
              re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', form.group(1))}
    fields.update({"signInName": USER, "password": PASSWORD})
    target = urllib.parse.urljoin(authorize, html.unescape(action.group(1)))
    status, headers, _ = call(op, target, fields, {"Origin": base})
    location = headers.get("Location", "")
    if status not in (302, 303) or not location.startswith(REDIRECT_URI):
        raise SystemExit(f"sign-in answered {status} (Location {location[:80]!r}) instead of a redirect with a code")
    parts = urllib.parse.urlsplit(location)
    got = dict(urllib.parse.parse_qsl(parts.query or parts.fragment))
    if "code" not in got:
        raise SystemExit(f"no code in the redirect: {sorted(got)}")
    status, _, body = call(op, token_endpoint(base), {
        "grant_type": "authorization_code", "client_id": SPA_CLIENT, "code": got["code"],
        "redirect_uri": REDIRECT_URI, "code_verifier": verifier, "scope": scope}, {"Origin": SPA_ORIGIN})
    if status != 200:
        raise SystemExit(f"code redemption answered {status}: {body[:200]}")
    return json.loads(body)


def seeded_user_signs_in(base):
    """True when the seeded user completes a sign-in, else why not (for a check's detail)."""
    try:
        sign_in(base)
        return True
    except SystemExit as err:
        return str(err)


def client_credentials(base):
    status, _, body = call(opener(), token_endpoint(base), {
        "grant_type": "client_credentials", "client_id": DAEMON_CLIENT, "client_secret": DAEMON_SECRET,
        "scope": f"https://{TENANT}/hello-api/.default"})
    if status != 200:
        raise SystemExit(f"client_credentials answered {status}: {body[:200]}")
    return json.loads(body)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["refresh-tokens", "client-credentials"])
    parser.add_argument("--base", required=True)
    parser.add_argument("--count", type=int, default=1)
    args = parser.parse_args()
    if args.what == "client-credentials":
        print(client_credentials(args.base)["access_token"])
        return
    for _ in range(args.count):
        tokens = sign_in(args.base)
        if "refresh_token" not in tokens:
            raise SystemExit("the token response has no refresh_token")
        print(tokens["refresh_token"], flush=True)


if __name__ == "__main__":
    sys.exit(main())
