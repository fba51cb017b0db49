"""Run the test issuer as a process: prints its openid-config URL, then one long-lived token per line on demand
(`--tokens N` writes N tokens with distinct subjects to a file). Used by scripts/bench when asked to run without
the dev IdP, and handy for poking at the stack by hand."""

import argparse
import signal
import sys
import time

from issuer import Issuer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token-file")
    parser.add_argument("--tokens", type=int, default=1)
    args = parser.parse_args()
    issuer = Issuer(args.port)
    if args.token_file:
        with open(args.token_file, "w") as out:
            for _ in range(args.tokens):
                out.write(issuer.token(exp=int(time.time()) + 6 * 3600) + "\n")
    print(issuer.openid_config_url, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
