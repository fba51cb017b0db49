"""The `validation` stage of scripts/harden (issue 18): hostile query strings and headers against the gateway's
request validation (GATEWAY_VALIDATION=prevent, from the API's OpenAPI document).

Malformed query strings, 10,000 parameters, one parameter 10,000 times, invalid UTF-8 in names and values, an
oversized header and a body on the GET: each must get a 4xx (validation's 400 with APIM's body, or the HTTP
layer's own 4xx for what is not a request at all), with a valid token so that validate-jwt cannot be what refused
it; the gateway must stay up, keep serving `?name=Ada`, and log no panic.
"""

import json

import stack
from issuer import Issuer
from probe import bearer, get, raw

STAGES = ("validation",)


def request(path: bytes, token: str, headers=(), body=b""):
    head = b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token.encode() + b"\r\n"
    for header in headers:
        head += header + b"\r\n"
    if body:
        head += f"Content-Length: {len(body)}\r\n".encode()
    return head + b"Connection: close\r\n\r\n" + body


def stage_validation(check, no_panics, args):
    stage = "validation"
    issuer = Issuer()
    key = stack.function_key()
    fn = stack.function(issuer.openid_config_url, key, name="hello-validation")
    gw = stack.gateway(fn.port, issuer.openid_config_url, key, name="gateway-validation",
                       GATEWAY_VALIDATION="prevent")
    token = issuer.token()
    status, _, body = get(gw.port, path="/api/hello?name=Ada", headers=bearer(token))
    greeted = status == 200 and json.loads(body)["message"].startswith("Hello Ada,")
    check(stage, "?name=Ada passes and is greeted (the suite can tell pass from refuse)", greeted,
          f"status {status} {body[:80]!r}")

    many = b"&".join(b"p%x=1" % i for i in range(10_000))
    repeated = b"&".join([b"name=Ada"] * 10_000)
    cases = [
        ("malformed percent-encoding", b"/api/hello?%ZZ%&&==&name=%"),
        ("bare separators", b"/api/hello?&&&=&=="),
        ("a name without a value", b"/api/hello?name"),
        ("10,000 distinct parameters", b"/api/hello?" + many),
        ("name 10,000 times", b"/api/hello?" + repeated),
        ("invalid UTF-8 in a name (percent-encoded)", b"/api/hello?%ff%fe=1"),
        ("invalid UTF-8 in the value", b"/api/hello?name=%c3%28"),
        ("invalid UTF-8 in a name (raw bytes)", b"/api/hello?\xff\xfe=1"),
        ("NUL in the value", b"/api/hello?name=Ada%00"),
        ("a 64 KiB value", b"/api/hello?name=" + b"a" * 65_000),
    ]
    failures = []
    for name, path in cases:
        status = raw(gw.port, request(path, token))
        if not (isinstance(status, int) and 400 <= status < 500):
            failures.append(f"{name}: {status}")
    extra = [
        ("a 20 KiB header value", request(b"/api/hello", token, [b"X-Padding: " + b"a" * 20_480])),
        ("a body on the GET", request(b"/api/hello", token, [b"Content-Type: application/json"], b"{}")),
        ("a chunked body on the GET", request(b"/api/hello", token, [b"Transfer-Encoding: chunked"])
         .replace(b"\r\n\r\n", b"\r\n\r\n2\r\n{}\r\n0\r\n\r\n")),
    ]
    for name, data in extra:
        status = raw(gw.port, data)
        if status != 400:
            failures.append(f"{name}: {status}")
    check(stage, f"{len(cases) + len(extra)} hostile query strings, headers and bodies with a valid token: all 4xx",
          not failures, "; ".join(failures))

    status, _, body = get(gw.port, path="/api/hello?name=Ada", headers=bearer(token))
    check(stage, "the gateway still greets ?name=Ada afterwards", status == 200, f"status {status} {body[:80]!r}")
    no_panics(stage, fn, gw)
    for proc in (gw, fn):
        proc.stop()
    issuer.stop()
