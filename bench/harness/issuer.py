"""A minimal OpenID Connect issuer for the hardening suite: discovery + JWKS over HTTP, keys it can rotate,
and tokens with any claims. The validators under test see it exactly as they see the dev IdP or B2C."""

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jwt import RsaKey, encode

API_AUDIENCE = "9d2f1c3b-4a5e-4b6c-8d7e-1f2a3b4c5d6e"
SPA_CLIENT = "6c0e4a12-3b5d-4f7e-8a9b-0c1d2e3f4a5b"
TENANT_ID = "3f1b7a9e-6c2d-4e8f-9a0b-1c2d3e4f5a6b"
POLICY = "B2C_1_signupsignin"
ROLE = "access:test-api"
SCOPE = "accessapp"


class Issuer:
    def __init__(self, port=0):
        self.keys = [RsaKey()]
        self.jwks_hits = 0
        self._lock = threading.Lock()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path.endswith("/.well-known/openid-configuration"):
                    body = issuer.metadata()
                elif self.path.endswith("/discovery/v2.0/keys"):
                    with issuer._lock:
                        issuer.jwks_hits += 1
                        body = {"keys": [k.jwk() for k in issuer.keys]}
                elif self.path == "/healthz":
                    body = {}
                else:
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.issuer = f"{self.base}/{TENANT_ID}/v2.0/"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def openid_config_url(self):
        return f"{self.base}/devtenant.onmicrosoft.com/{POLICY}/v2.0/.well-known/openid-configuration"

    def metadata(self):
        policy_base = f"{self.base}/devtenant.onmicrosoft.com/{POLICY}"
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{policy_base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{policy_base}/oauth2/v2.0/token",
            "end_session_endpoint": f"{policy_base}/oauth2/v2.0/logout",
            "jwks_uri": f"{policy_base}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
        }

    def rotate(self):
        """Publish a new key first (keeping the old one), the way B2C rolls keys."""
        with self._lock:
            self.keys = [RsaKey(), *self.keys][:2]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def claims(self, sub=None, **overrides):
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": API_AUDIENCE,
            "sub": sub or str(uuid.uuid4()),
            "oid": sub or str(uuid.uuid4()),
            "scp": SCOPE,
            "roles": [ROLE],
            "azp": SPA_CLIENT,
            "tfp": POLICY,
            "ver": "1.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "name": "Harden Test",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, sub=None, header=None, key=None, **claim_overrides):
        key = key or self.keys[0]
        hdr = {"alg": "RS256", "typ": "JWT", "kid": key.kid}
        hdr.update(header or {})
        return encode({k: v for k, v in hdr.items() if v is not None}, self.claims(sub, **claim_overrides), key)
