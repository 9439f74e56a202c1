"""``python -m wheelvault_keyring check URL``: which configured index a URL matches, and whether
a token can be had for it. The token itself is never printed (``keyring get URL entra`` does)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from wheelvault_keyring.backend import TokenSource, process_token_source
from wheelvault_keyring.config import ENV_INDEXES, KeyringConfig, config_from_env


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m wheelvault_keyring",
        description="Check the wheelvault keyring backend's configuration for a URL.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="show the matched origin and scope, try a token")
    check.add_argument("url", help="an index URL (https://host/simple/) or a host[:port]")
    args = parser.parse_args(argv)
    return check_url(args.url, config_from_env())


def check_url(url: str, config: KeyringConfig, tokens: TokenSource | None = None) -> int:
    """0: a token was obtained; 1: no configured origin matches, or no token.

    ``tokens`` defaults to the process's (DefaultAzureCredential), built only on a match.
    """
    for problem in config.problems:
        print(f"problem: {problem}")
    entry = config.match(url)
    if entry is None:
        configured = ", ".join(str(known.origin) for known in config.entries) or "none"
        print(f"no match: {url} names none of the origins in {ENV_INDEXES} ({configured})")
        return 1
    print(f"origin: {entry.origin}")
    print(f"scope: {entry.scope}")
    started = time.monotonic()
    tokens = tokens or process_token_source()
    token = tokens.token(entry)
    elapsed = time.monotonic() - started
    if token is None:
        print("token: not obtained")
        for line in (tokens.last_failure or "").splitlines():
            print(f"  {line}")
        return 1
    print(f"token: obtained in {elapsed:.2f} s ({len(token)} characters, not shown)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
