"""``python -m devhost.standins.keyvault``: run the Key Vault stand-in until SIGTERM or Ctrl-C.

Supervisors and test fixtures start it with ``--port 0`` and read the one ready line from stdout
(``keyvault-standin ready url=https://127.0.0.1:PORT ca=/path/ca-cert.pem``) to learn the URL and
the CA certificate. Start-up problems (port in use, data dir locked) end with one error line on
stderr and exit status 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from devhost.standins.https import add_listen_arguments, serve_until_signalled

from .api import MAX_PAGE_SIZE
from .server import VaultStandin

READY_PREFIX = "keyvault-standin ready"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    standin = VaultStandin(args.data_dir, host=args.host, port=args.port, page_size=args.page_size)
    return serve_until_signalled(standin, name="keyvault-standin", ready_prefix=READY_PREFIX)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devhost.standins.keyvault",
        description="Local HTTPS stand-in for the Azure Key Vault secrets API.",
    )
    add_listen_arguments(
        parser,
        port=8443,
        data_dir=Path(".local/keyvault"),
        data_help="where secrets, the CA and the server certificate are kept",
    )
    parser.add_argument(
        "--page-size",
        type=_page_size,
        default=MAX_PAGE_SIZE,
        help=f"list page size when the client sends no maxresults (1-{MAX_PAGE_SIZE})",
    )
    return parser.parse_args(argv)


def _page_size(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to {MAX_PAGE_SIZE}")
    return value


if __name__ == "__main__":
    sys.exit(main())
