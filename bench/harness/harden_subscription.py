"""The `subscription` stage of scripts/harden (issue 17): bypass attempts against GATEWAY_PRODUCTS.

The key in every spelling APIM does not read, a suspended subscription's key, a near-miss of a valid key, two
keys at once, and a flood of guessed keys: each must get APIM's 401 and never reach the function; the key never
appears in the function's view of the call.
"""

import json
import os
import tempfile

import stack
from issuer import Issuer
from probe import bearer, get

# The gateway tests' catalogue (one product; an active, a second and a suspended subscription), with limits high
# enough for every attempt here to reach the subscription check.
with open(os.path.join(stack.ROOT, "backend", "gateway", "tests", "products.toml")) as catalogue:
    PRODUCTS = (catalogue.read().replace('rate_limit = "100/60"', 'rate_limit = "300/60"')
                .replace('quota = "10000/86400"', 'quota = "100000/86400"'))
KEY = "contoso-dev-primary-0001"
SUSPENDED = "suspended-primary-key-04"
MISSING = ("Access denied due to missing subscription key. Make sure to include subscription key when making "
           "requests to an API.")
INVALID = ("Access denied due to invalid subscription key. Make sure to provide a valid key for an active "
           "subscription.")


def message(body):
    try:
        return json.loads(body).get("message")
    except ValueError:
        return None


def stage_subscription(check, no_panics, args):
    stage = "subscription"
    issuer = Issuer()
    key = stack.function_key()
    products = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    products.write(PRODUCTS)
    products.close()
    fn = stack.function(issuer.openid_config_url, key, name="hello-subscription")
    gw = stack.gateway(fn.port, issuer.openid_config_url, key, name="gateway-subscription",
                       GATEWAY_PRODUCTS=products.name, RUST_LOG="info")
    token = bearer(issuer.token())
    status, _, body = get(gw.port, headers={**token, "Ocp-Apim-Subscription-Key": KEY})
    check(stage, "the active subscription's key passes (the suite can tell pass from refuse)", status == 200,
          f"status {status} {body[:80]!r}")

    spellings = [
        ("header subscription-key", {"subscription-key": KEY}, ""),
        ("header Ocp-Apim-Key", {"Ocp-Apim-Key": KEY}, ""),
        ("header X-Subscription-Key", {"X-Subscription-Key": KEY}, ""),
        ("header Ocp_Apim_Subscription_Key", {"Ocp_Apim_Subscription_Key": KEY}, ""),
        ("cookie", {"Cookie": f"Ocp-Apim-Subscription-Key={KEY}"}, ""),
        ("Authorization basic", {"Authorization": f"Basic {KEY}"}, ""),
        ("query ocp-apim-subscription-key", {}, f"?ocp-apim-subscription-key={KEY}"),
        ("query subscription_key", {}, f"?subscription_key={KEY}"),
        ("query subscriptionKey", {}, f"?subscriptionKey={KEY}"),
        ("query key in the path", {}, f"/{KEY}"),
        ("fragment", {}, f"#subscription-key={KEY}"),
    ]
    bad = []
    for name, headers, suffix in spellings:
        hdrs = {**token, **headers} if "Authorization" not in headers else headers
        status, _, body = get(gw.port, path=f"/api/hello{suffix}", headers=hdrs)
        if status == 200 or (status == 401 and message(body) != MISSING):
            bad.append(f"{name}: {status} {body[:80]!r}")
    check(stage, f"{len(spellings)} other spellings of the key: none accepted, 401 'missing subscription key' "
          "(or 404 off the route)", not bad, "; ".join(bad))

    attempts = [
        ("suspended primary key", {"Ocp-Apim-Subscription-Key": SUSPENDED}, ""),
        ("suspended key in the query", {}, f"?subscription-key={SUSPENDED}"),
        ("valid key minus its last character", {"Ocp-Apim-Subscription-Key": KEY[:-1]}, ""),
        ("valid key plus a character", {"Ocp-Apim-Subscription-Key": KEY + "0"}, ""),
        ("valid key upper-cased", {"Ocp-Apim-Subscription-Key": KEY.upper()}, ""),
        ("empty key", {"Ocp-Apim-Subscription-Key": ""}, ""),
        ("a suspended header beside a valid query key", {"Ocp-Apim-Subscription-Key": SUSPENDED},
         f"?subscription-key={KEY}"),
        ("two keys in the query", {}, f"?subscription-key={KEY}&subscription-key={SUSPENDED}"),
    ]
    bad = []
    for name, headers, suffix in attempts:
        status, _, body = get(gw.port, path=f"/api/hello{suffix}", headers={**token, **headers})
        if status != 401 or message(body) != INVALID:
            bad.append(f"{name}: {status} {body[:80]!r}")
    check(stage, f"{len(attempts)} suspended / near-miss / ambiguous keys: 401 'invalid subscription key'",
          not bad, "; ".join(bad))

    guesses = [f"guess-{i:06d}-{os.urandom(6).hex()}" for i in range(300)]
    refused = sum(1 for g in guesses
                  if get(gw.port, headers={**token, "Ocp-Apim-Subscription-Key": g})[0] == 401)
    check(stage, "300 guessed keys: all 401", refused == len(guesses), f"{refused}/{len(guesses)}")
    status, _, _ = get(gw.port, headers={**token, "Ocp-Apim-Subscription-Key": KEY})
    check(stage, "the valid key still passes after the guesses", status == 200, f"status {status}")
    no_panics(stage, fn, gw)
    # The one place a key may appear is the path of the 404 above: paths are logged, and a client that puts
    # its key in one has published it itself.
    log = "\n".join(line for line in (gw.tail(100000) + fn.tail(100000)).splitlines()
                     if f'path="/api/hello/{KEY}"' not in line)
    check(stage, "no key in either log (info level)", KEY not in log and SUSPENDED not in log)
    for proc in (gw, fn):
        proc.stop()
    issuer.stop()
    os.unlink(products.name)
