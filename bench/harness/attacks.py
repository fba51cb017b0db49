"""One token per attack class of platform.md ("Attack classes every validating layer must refuse"), each a valid
access token with exactly one thing wrong, minted by the suite's own issuer."""

import json
import time

from issuer import SPA_CLIENT, Issuer
from jwt import RsaKey, b64url, b64url_json, encode


def attack_tokens(issuer: Issuer, rogue: RsaKey):
    now = int(time.time())
    key = issuer.keys[0]
    kid = key.kid
    good = issuer.claims("attacker-sub")
    valid = issuer.token("attacker-sub")
    signed_part, signature = valid.rsplit(".", 1)
    header_b64, claims_b64 = signed_part.split(".")
    flipped = signature[:10] + ("B" if signature[10] == "A" else "A") + signature[11:]

    def with_claims(**patch):
        claims = dict(good, **patch)
        return encode({"alg": "RS256", "typ": "JWT", "kid": kid}, {k: v for k, v in claims.items() if v is not None},
                      key)

    def with_header(header, signer=key):
        return encode(header, good, signer)

    attacker_jwks = "http://127.0.0.1:9/attacker/keys"
    return [
        ("alg none", encode({"alg": "none", "typ": "JWT"}, good)),
        ("alg none with the real kid", encode({"alg": "none", "kid": kid}, good)),
        ("alg NONE (case variant)", encode({"alg": "NONE", "kid": kid}, good)),
        ("signature stripped", f"{signed_part}."),
        ("signature corrupted", f"{signed_part}.{flipped}"),
        ("claims changed after signing",
         f"{header_b64}.{b64url_json(dict(good, sub='someone-else'))}.{signature}"),
        ("HS256 signed with the public key (PEM) as secret",
         encode({"alg": "HS256", "typ": "JWT", "kid": kid}, good, hs256_secret=key.public_pem)),
        ("HS256 signed with the JWK n as secret",
         encode({"alg": "HS256", "kid": kid}, good, hs256_secret=key.jwk()["n"].encode())),
        ("unknown kid", with_header({"alg": "RS256", "kid": "no-such-key"}, rogue)),
        ("kid with path characters", with_header({"alg": "RS256", "kid": "../../../../etc/passwd"}, rogue)),
        ("kid with SQL characters", with_header({"alg": "RS256", "kid": "x' OR '1'='1' --"}, rogue)),
        ("kid not a string", with_header({"alg": "RS256", "kid": 1})),
        ("jku pointing at the attacker's JWKS",
         with_header({"alg": "RS256", "kid": rogue.kid, "jku": attacker_jwks}, rogue)),
        ("x5u pointing at the attacker", with_header({"alg": "RS256", "kid": rogue.kid, "x5u": attacker_jwks}, rogue)),
        ("embedded jwk of the attacker's key", with_header({"alg": "RS256", "kid": rogue.kid, "jwk": rogue.jwk()}, rogue)),
        ("embedded jwk under the real kid", with_header({"alg": "RS256", "kid": kid, "jwk": rogue.jwk()}, rogue)),
        ("signed by a key not in the JWKS, real kid", with_header({"alg": "RS256", "kid": kid}, rogue)),
        ("expired beyond the skew", with_claims(exp=now - 3600, nbf=now - 7200, iat=now - 7200)),
        ("nbf in the future beyond the skew", with_claims(nbf=now + 3600, exp=now + 7200)),
        ("no exp", with_claims(exp=None)),
        ("exp as a string", with_claims(exp=str(now + 3600))),
        ("nbf as a string in the future", with_claims(nbf=str(now + 3600))),
        ("wrong aud", with_claims(aud="00000000-0000-0000-0000-000000000000")),
        ("no aud", with_claims(aud=None)),
        ("aud as a number", with_claims(aud=42)),
        ("wrong iss", with_claims(iss="https://evil.example/tenant/v2.0/")),
        ("iss without the trailing slash", with_claims(iss=issuer.issuer.rstrip("/"))),
        ("no iss", with_claims(iss=None)),
        ("ID token used as an access token", with_claims(aud=SPA_CLIENT, nonce="n-0S6_WzA2Mj", at_hash="x", scp=None, roles=None)),
        ("unknown crit header",
         with_header({"alg": "RS256", "kid": kid, "crit": ["urn:example:unknown"], "urn:example:unknown": True})),
        ("oversized token (20 KiB of claims)", with_claims(padding="x" * 20 * 1024)),
        ("not a JWT", "not-a-jwt"),
        ("three garbage segments", "%%%.%%%.%%%"),
        ("two segments", signed_part),
        ("five segments (JWE shape)", f"{valid}.AAAA.BBBB"),
        ("header is not JSON", f"{b64url(b'not json')}.{claims_b64}.{signature}"),
        ("claims are not a JSON object", encode({"alg": "RS256", "kid": kid}, json.dumps(["an", "array"]).encode(), key)),
        ("claims are invalid UTF-8", encode({"alg": "RS256", "kid": kid}, b'{"sub":"\xff\xfe"}', key)),
        ("empty bearer", ""),
    ]
