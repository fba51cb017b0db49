"""The `certs` stage of scripts/harden (issue 17, item 6): the gateway's TLS listener with
validate-client-certificate, attacked with certificates that look right but are not: another CA with
the same names, a self-signed copy of the trusted CA's name, a certificate of the CA whose subject is
not listed, none at all, and plain HTTP on the TLS port. Certificates come from the openssl CLI."""

import http.client
import json
import os
import ssl
import subprocess
import tempfile
import time

import stack
from issuer import Issuer
from probe import bearer

FORBIDDEN = {"statusCode": 403, "message": "Forbidden"}
SUBJECT = "CN=harden-client, O=Contoso"


class Pki:
    """Keys and certificates in a scratch directory, made with openssl."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="harden-certs-")

    def path(self, name):
        return os.path.join(self.dir, name)

    def openssl(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    def ca(self, name, cn):
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", self.path(f"{name}.key"), "-out", self.path(f"{name}.pem"), "-days", "2",
                     "-subj", f"/CN={cn}", "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return self.path(f"{name}.pem")

    def leaf(self, name, ca, subj, usage, san=None):
        """A certificate for `subj` (openssl's /O=…/CN=… form) signed by the CA named `ca`."""
        self.openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", self.path(f"{name}.key"), "-out", self.path(f"{name}.csr"), "-subj", subj)
        ext = self.path(f"{name}.ext")
        with open(ext, "w") as f:
            f.write(f"basicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n")
            if san:
                f.write(f"subjectAltName={san}\n")
        self.openssl("x509", "-req", "-in", self.path(f"{name}.csr"), "-CA", self.path(f"{ca}.pem"),
                     "-CAkey", self.path(f"{ca}.key"), "-CAcreateserial", "-days", "1",
                     "-out", self.path(f"{name}.pem"), "-extfile", ext)
        return self.path(f"{name}.pem"), self.path(f"{name}.key")

    def self_signed(self, name, subj):
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", self.path(f"{name}.key"), "-out", self.path(f"{name}.pem"), "-days", "1",
                     "-subj", subj, "-addext", "extendedKeyUsage=clientAuth")
        return self.path(f"{name}.pem"), self.path(f"{name}.key")


def tls_get(port, server_ca, token, client=None):
    """(status, parsed body) over TLS with an optional (cert, key); (None, error) if TLS itself failed."""
    context = ssl.create_default_context(cafile=server_ca)
    if client:
        context.load_cert_chain(*client)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        conn.request("GET", "/api/hello", headers=bearer(token))
        resp = conn.getresponse()
        body = resp.read()
        try:
            return resp.status, json.loads(body)
        except ValueError:
            return resp.status, body
    except (OSError, ssl.SSLError) as err:
        return None, str(err)
    finally:
        conn.close()


def stage_certs(args, check, no_panics):
    stage = "certs"
    pki = Pki()
    pki.ca("server-ca", "Harden Server CA")
    server = pki.leaf("server", "server-ca", "/CN=localhost", "serverAuth", san="IP:127.0.0.1,DNS:localhost")
    trusted = pki.ca("client-ca", "Contoso Client CA")
    pki.ca("rogue-ca", "Contoso Client CA")  # the same name as the trusted CA, another key
    good = pki.leaf("good", "client-ca", "/O=Contoso/CN=harden-client", "clientAuth")
    unlisted = pki.leaf("unlisted", "client-ca", "/O=Contoso/CN=someone-else", "clientAuth")
    rogue = pki.leaf("rogue", "rogue-ca", "/O=Contoso/CN=harden-client", "clientAuth")
    forged = pki.self_signed("forged", "/O=Contoso/CN=harden-client")
    forged_issuer = pki.self_signed("forged-issuer", "/CN=Contoso Client CA")
    server_only = pki.leaf("server-usage", "client-ca", "/O=Contoso/CN=harden-client", "serverAuth")

    issuer = Issuer()
    key = stack.function_key()
    fn = stack.function(issuer.openid_config_url, key)
    port = stack.free_port()
    env = {"GATEWAY_PORT": str(port), "GATEWAY_BACKEND_URL": f"http://127.0.0.1:{fn.port}",
           "GATEWAY_BACKEND_FUNCTION_KEY": key, "GATEWAY_ALLOWED_ORIGINS": stack.SPA_ORIGIN,
           "GATEWAY_OPENID_CONFIG_URLS": issuer.openid_config_url, "GATEWAY_AUDIENCES": stack.API_AUDIENCE,
           "GATEWAY_TLS_CERT": server[0], "GATEWAY_TLS_KEY": server[1], "GATEWAY_CLIENT_CA": trusted,
           "GATEWAY_CLIENT_CERT_SUBJECTS": SUBJECT, "RUST_LOG": "warn"}
    gw = stack.Proc("gateway-certs", [stack.binary("gateway")], env, port, health=None)
    token = issuer.token("certs-user")
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline and status != 200:
        status, _ = tls_get(port, pki.path("server-ca.pem"), token, good)
        if status != 200:
            time.sleep(0.1)
    check(stage, "a certificate of the trusted CA with a listed subject → 200", status == 200, status)

    attempts = {
        "no certificate": None,
        "another CA with the trusted CA's name, same subject": rogue,
        "self-signed, same subject": forged,
        "self-signed copy of the trusted CA's name": forged_issuer,
        "trusted CA, subject not listed": unlisted,
        "trusted CA, server-auth only (no clientAuth usage)": server_only,
    }
    answers = {name: tls_get(port, pki.path("server-ca.pem"), token, client)
               for name, client in attempts.items()}
    for name, answer in answers.items():
        check(stage, f"{name} → 403 Forbidden", answer == (403, FORBIDDEN), answer[0])

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/api/hello", headers=bearer(token))
        plain = conn.getresponse().status
    except (OSError, http.client.HTTPException) as err:
        plain = type(err).__name__
    finally:
        conn.close()
    check(stage, "plain HTTP on the TLS port is not served", plain != 200, plain)
    no_panics(stage, gw, fn)
    for proc in (gw, fn):
        proc.stop()
    issuer.stop()


STAGES = {"certs": stage_certs}
