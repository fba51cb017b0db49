"""The hardening suite's test issuer: testkit's `test-issuer` binary (backend/testkit/src/bin/test-issuer.rs), run
as a child process. It serves discovery + JWKS like the dev IdP or B2C, and signs whatever tokens the suite asks
for, so the attack tokens and the signing code are the ones the Rust tests use too — one list, one signer."""

import json
import subprocess
import time
import urllib.request

import stack

ROLE = "access:test-api"


class Issuer:
    def __init__(self):
        self._proc = subprocess.Popen([stack.binary("test-issuer")], stdout=subprocess.PIPE, text=True)
        stack.remember(self)
        started = json.loads(self._proc.stdout.readline())
        self.openid_config_url = started["openid_config_url"]
        self.issuer = started["issuer"]
        self._control = started["control_url"]
        self._template = None

    def _call(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self._control}{path}", data=data, method="GET" if body is None else "POST",
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.read().decode()

    def claims(self, sub=None, **overrides):
        """A valid access token's claims for the API (scope and app role), with `overrides` (None removes one)."""
        if self._template is None or self._template["exp"] < time.time() + 600:
            self._template = json.loads(self._call("/claims"))
        claims = dict(self._template)
        if sub:
            claims.update(sub=sub, oid=sub)
        else:
            claims.update(sub=f"harden-{time.monotonic_ns()}", oid=f"harden-{time.monotonic_ns()}")
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims, header=None, unpublished=False):
        """Signs `claims` under the current kid's header with `header` merged over it (a None value removes a
        field); with `unpublished`, by the issuer's key that is never in its JWKS."""
        return self._call("/token", {"claims": claims, "header": header or {}, "unpublished": unpublished})

    def token(self, sub=None, **claim_overrides):
        return self.sign(self.claims(sub, **claim_overrides))

    def attack_tokens(self):
        """testkit's `attack_tokens()`: (name, token) for each attack class of platform.md."""
        return [(a["name"], a["token"]) for a in json.loads(self._call("/attack-tokens"))]

    def rotate(self):
        return json.loads(self._call("/rotate", {}))["kid"]

    @property
    def jwks_hits(self):
        return json.loads(self._call("/stats"))["jwks_fetches"]

    def stop(self):
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
