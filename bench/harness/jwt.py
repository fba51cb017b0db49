"""RS256/HS256 JSON Web Tokens with nothing but the standard library and the openssl CLI.

The hardening suite must forge tokens the validators have never seen (wrong kid, embedded jwk, wrong-typed
claims...), so it signs them itself rather than asking an identity provider. RSA keys come from `openssl genpkey`;
signing is textbook PKCS#1 v1.5 with the CRT, which is all RS256 is.
"""

import base64
import hashlib
import hmac
import json
import subprocess
import uuid

# DigestInfo prefix for SHA-256 (RFC 8017, section 9.2, note 1).
_SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def _der_integers(der: bytes):
    """The INTEGERs of a DER SEQUENCE (enough to read an RSAPrivateKey)."""

    def length(pos):
        first = der[pos]
        if first < 0x80:
            return first, pos + 1
        n = first & 0x7F
        return int.from_bytes(der[pos + 1 : pos + 1 + n], "big"), pos + 1 + n

    assert der[0] == 0x30
    _, pos = length(1)
    values = []
    while pos < len(der):
        assert der[pos] == 0x02
        size, pos = length(pos + 1)
        values.append(int.from_bytes(der[pos : pos + size], "big"))
        pos += size
    return values


class RsaKey:
    """An RSA signing key with a kid; `jwk()` is its public half as a JWKS entry."""

    def __init__(self, kid=None, bits=2048):
        self.kid = kid or uuid.uuid4().hex
        pem = subprocess.run(
            ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}"],
            check=True,
            capture_output=True,
        ).stdout
        der = subprocess.run(
            ["openssl", "rsa", "-outform", "DER", "-traditional"],
            input=pem,
            check=True,
            capture_output=True,
        ).stdout
        _version, self.n, self.e, self.d, self.p, self.q, self.dp, self.dq, self.qinv = _der_integers(der)
        self.size = (self.n.bit_length() + 7) // 8
        self.public_pem = subprocess.run(
            ["openssl", "rsa", "-pubout"], input=pem, check=True, capture_output=True
        ).stdout

    def sign(self, message: bytes) -> bytes:
        digest_info = _SHA256_PREFIX + hashlib.sha256(message).digest()
        padded = b"\x00\x01" + b"\xff" * (self.size - len(digest_info) - 3) + b"\x00" + digest_info
        m = int.from_bytes(padded, "big")
        m1 = pow(m, self.dp, self.p)
        m2 = pow(m, self.dq, self.q)
        h = (self.qinv * (m1 - m2)) % self.p
        return (m2 + h * self.q).to_bytes(self.size, "big")

    def jwk(self):
        def enc(i):
            return b64url(i.to_bytes((i.bit_length() + 7) // 8, "big"))

        return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": enc(self.n), "e": enc(self.e)}


def encode(header: dict, claims, key: RsaKey | None = None, hs256_secret: bytes | None = None) -> str:
    """A compact JWT. `claims` may be a dict or raw bytes (for malformed payloads)."""
    payload = claims if isinstance(claims, bytes) else json.dumps(claims, separators=(",", ":")).encode()
    signing_input = f"{b64url_json(header)}.{b64url(payload)}".encode()
    if hs256_secret is not None:
        signature = hmac.new(hs256_secret, signing_input, hashlib.sha256).digest()
    elif key is not None:
        signature = key.sign(signing_input)
    else:
        signature = b""
    return f"{signing_input.decode()}.{b64url(signature)}"
