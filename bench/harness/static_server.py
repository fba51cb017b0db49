"""Serves directories over HTTP on 127.0.0.1 for the SPA timing: `static_server.py PORT /=DIR /seed/=DIR2`.
Unknown paths under `/` fall back to index.html, as `trunk serve` and static website hosting do."""

import mimetypes
import os
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".js")


def main():
    port = int(sys.argv[1])
    mounts = sorted((m.split("=", 1) for m in sys.argv[2:]), key=lambda m: -len(m[0]))

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def translate_path(self, path):
            path = unquote(urlsplit(path).path)
            for prefix, directory in mounts:
                if path.startswith(prefix):
                    relative = os.path.normpath(path[len(prefix):]).lstrip("/.")
                    candidate = os.path.join(directory, relative)
                    if relative and not os.path.exists(candidate):
                        return os.path.join(directory, "index.html")
                    return candidate
            return "/nonexistent"

        def end_headers(self):
            self.send_header("Cache-Control", "no-store")
            super().end_headers()

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
