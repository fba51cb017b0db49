"""The seed's SPA page (seeds/000, kept verbatim once in backend/e2e/tests/msal/seed_index.html) as the
navigation-to-interactive baseline of scripts/bench: its config placeholders filled with the dev tenant's values and
its two CDN files (msal-browser 2.11.1, Bootstrap 5.0.0-beta2 CSS) served from the same local server as ours.
Nothing else in the HTML or the script changes.

    python3 seed_page.py SEED_INDEX_HTML OUT_HTML SPA_CLIENT_ID API_URL
"""
import sys

MSAL_CDN = "https://alcdn.msauth.net/browser/2.11.1/js/msal-browser.min.js"
BOOTSTRAP_CDN = "https://cdn.jsdelivr.net/npm/bootstrap@5.0.0-beta2/dist/css/bootstrap.min.css"


def replace_once(text, old, new):
    # Exactly once, so a changed seed fails loudly instead of timing something else.
    count = text.count(old)
    if count != 1:
        sys.exit(f"seed page: expected exactly one {old!r}, found {count}")
    return text.replace(old, new)


def main():
    source, out, client_id, api_url = sys.argv[1:5]
    page = open(source, encoding="utf-8").read()
    for placeholder, value in [
        ('"{CLIENTID}"', f'"{client_id}"'),
        ('"{YOURAUTHORITYB2C}"', '"https://devtenant.b2clogin.com/tfp/devtenant.onmicrosoft.com/B2C_1_signupsignin"'),
        ('"{SPAHOSTINGADDRESS}"', 'window.location.origin + "/"'),
        ('"{B2CTENANTDOMAIN}"', '"devtenant.b2clogin.com"'),
        ('"{APISCOPEWITHFULLURI}"', '"https://devtenant.onmicrosoft.com/hello-api/accessapp"'),
        ('"{APIMBACKENDADDRESS}"', f'"{api_url}"'),
        (MSAL_CDN, "msal-browser.min.js"),
        (BOOTSTRAP_CDN, "bootstrap.min.css"),
    ]:
        page = replace_once(page, placeholder, value)
    # The local copies are not the CDN's bytes for SRI purposes (npm's build of the same version).
    page = replace_once(page, ' integrity="sha384-BmbxuPwQa2lc/FVzBcNJ7UAyJxM6wuqIj61tLrc4wSX0szH/Ev+nYRRuWlolflfl" '
                        'crossorigin="anonymous"', "")
    with open(out, "w", encoding="utf-8") as f:
        f.write(page)


if __name__ == "__main__":
    main()
