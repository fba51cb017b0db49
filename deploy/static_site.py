"""Upload the SPA's dist/ to a storage account's static website container, and check it.

The Python twin of `az storage blob upload-batch -s dist -d '$web'`, with what upload-batch cannot do
in one call: a Content-Type and a Cache-Control chosen per file, and the entry files last.

    static_site.py upload --source DIR [--container '$web'] [--enable-static-website]
    static_site.py verify --source DIR [--container '$web']

The storage account comes from AZURE_STORAGE_CONNECTION_STRING (the variable az reads too). A
connection string may carry an account key or a SAS (`BlobEndpoint=…;SharedAccessSignature=…`).
Exit codes: 0 done, 1 verification found differences or the service refused, 2 bad input.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.storage.blob import BlobServiceClient, ContentSettings, StaticWebsite

# Explicit, because Python's mimetypes answers differently across versions (.js was
# application/javascript before 3.12) and a browser refuses `WebAssembly.instantiateStreaming`
# unless the wasm is served as exactly application/wasm.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".webmanifest": "application/manifest+json",
}

IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"

# The files a browser asks for by a fixed name: they must revalidate, so a deployment shows at once.
ENTRY_FILES = {"index.html", "config.json"}

# trunk names assets `{stem}-{seahash:x}.{ext}` (wasm: `{stem}-{hash}_bg.wasm`) and wasm-bindgen's
# snippets live under `snippets/{crate}-{hash}/`. The hash is a u64 in hex without padding, so
# it is usually 16 digits; fewer than 12 happens once in 65,536 builds and only costs caching.
HASHED_FILE = re.compile(r"-[0-9a-f]{12,16}(_bg)?\.[A-Za-z0-9]+$")
HASHED_DIR = re.compile(r"-[0-9a-f]{12,16}$")


class BadInput(Exception):
    """Input the operator must fix; reported as one line, exit code 2."""


@dataclass(frozen=True)
class Planned:
    """One file of the site and the blob it becomes."""

    path: Path
    name: str
    content_type: str
    cache_control: str

    @property
    def is_entry(self) -> bool:
        return self.name in ENTRY_FILES


def cache_control_for(name: str) -> str:
    """Long immutable caching only where the name changes with the content."""
    if name in ENTRY_FILES:
        return NO_CACHE
    parts = name.split("/")
    if HASHED_FILE.search(parts[-1]) or any(HASHED_DIR.search(p) for p in parts[:-1]):
        return IMMUTABLE
    return NO_CACHE


def content_type_for(name: str) -> str:
    suffix = Path(name).suffix.lower()
    try:
        return CONTENT_TYPES[suffix]
    except KeyError:
        # Fail closed: an octet-stream blob would be downloaded by the browser instead of used.
        raise BadInput(
            f"{name}: no Content-Type known for '{suffix or '(no extension)'}'; "
            "add it to CONTENT_TYPES in deploy/static_site.py"
        ) from None


def plan(source: Path) -> list[Planned]:
    """Every file under `source`, entry files last so no visitor sees an index without its assets."""
    if not (source / "index.html").is_file():
        raise BadInput(f"{source}: no index.html here; build the site first (trunk build --release)")
    files = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        name = path.relative_to(source).as_posix()
        files.append(Planned(path, name, content_type_for(name), cache_control_for(name)))
    return sorted(files, key=lambda f: (f.is_entry, f.name))


def service_from_env() -> BlobServiceClient:
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING", "").strip()
    if not conn:
        raise BadInput("AZURE_STORAGE_CONNECTION_STRING is not set")
    try:
        return BlobServiceClient.from_connection_string(conn)
    except ValueError as why:
        raise BadInput(f"AZURE_STORAGE_CONNECTION_STRING is not a valid connection string: {why}") from None


# What `az storage blob service-properties update --static-website --index-document index.html
# --404-document index.html` sets. The 404 document is the SPA itself: the site has routes
# (/profile), and a deep link or a reload there must load index.html, whose router shows the page.
WEBSITE = StaticWebsite(enabled=True, index_document="index.html", error_document404_path="index.html")


def upload(service: BlobServiceClient, source: Path, container: str) -> int:
    files = plan(source)
    service.set_service_properties(static_website=WEBSITE)
    print("static website: index and 404 document index.html")
    client = service.get_container_client(container)
    try:
        client.create_container()
        print(f"created container {container}")
    except ResourceExistsError:
        pass
    for f in files:
        data = f.path.read_bytes()
        settings = ContentSettings(
            content_type=f.content_type,
            cache_control=f.cache_control,
            content_md5=bytearray(hashlib.md5(data).digest()),
        )
        client.upload_blob(f.name, data, overwrite=True, content_settings=settings)
        print(f"uploaded {f.name} ({len(data)} bytes, {f.content_type}, {f.cache_control})")
    print(f"{len(files)} files uploaded to {container}")
    return 0


def verify(service: BlobServiceClient, source: Path, container: str) -> int:
    """Downloads every blob the site needs and compares bytes and headers with what upload sets."""
    files = plan(source)
    client = service.get_container_client(container)
    problems = []
    for f in files:
        blob = client.get_blob_client(f.name)
        try:
            props = blob.get_blob_properties()
            data = blob.download_blob().readall()
        except AzureError as why:
            problems.append(f"{f.name}: cannot read the blob: {type(why).__name__}")
            continue
        settings = props.content_settings
        if data != f.path.read_bytes():
            problems.append(f"{f.name}: content differs ({len(data)} bytes in the container)")
        if settings.content_type != f.content_type:
            problems.append(f"{f.name}: Content-Type {settings.content_type!r}, want {f.content_type!r}")
        if settings.cache_control != f.cache_control:
            problems.append(f"{f.name}: Cache-Control {settings.cache_control!r}, want {f.cache_control!r}")
    website = service.get_service_properties().get("static_website")
    if website is None or not website.enabled or website.error_document404_path != "index.html":
        problems.append("static website: the 404 document is not index.html (deep links to the SPA's routes fail)")
    wanted = {f.name for f in files}
    # Old hashed assets stay on purpose: a page loaded before the deployment still needs them.
    extra = sorted(b.name for b in client.list_blobs() if b.name not in wanted)
    for line in problems:
        print(f"MISMATCH {line}")
    print(f"verified {len(files) - len(problems)} of {len(files)} files; {len(extra)} other blobs kept")
    return 1 if problems else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["upload", "verify"])
    parser.add_argument("--source", required=True, type=Path, help="the site folder (dist/ plus config.json)")
    parser.add_argument("--container", default="$web")
    # Kept for old command lines: every upload configures the static website now.
    parser.add_argument("--enable-static-website", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        service = service_from_env()
        if args.command == "upload":
            return upload(service, args.source, args.container)
        return verify(service, args.source, args.container)
    except BadInput as why:
        print(f"static_site.py: {why}", file=sys.stderr)
        return 2
    except AzureError as why:
        # The SDK's message names the operation and the service's error code; never a key.
        print(f"static_site.py: the storage service refused: {type(why).__name__}: {why}".splitlines()[0], file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
