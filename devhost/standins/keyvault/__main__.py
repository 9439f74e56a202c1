"""``python -m devhost.standins.keyvault``: run the Key Vault stand-in until SIGTERM or Ctrl-C.

Supervisors and test fixtures start it with ``--port 0`` and read the one ready line from stdout
(``keyvault-standin ready url=https://127.0.0.1:PORT ca=/path/ca-cert.pem``) to learn the URL and
the CA certificate. Start-up problems (port in use, data dir locked) end with one error line on
stderr and exit status 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from devhost.listening import log_to_stderr, stop_on_signals, wait_until_set

from .api import MAX_PAGE_SIZE
from .server import StandinStartError, VaultStandin

EXIT_START_FAILED = 2
READY_PREFIX = "keyvault-standin ready"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    log_to_stderr()
    stop_requested = stop_on_signals()
    standin = VaultStandin(args.data_dir, host=args.host, port=args.port, page_size=args.page_size)
    try:
        standin.start()
    except StandinStartError as exc:
        print(f"keyvault-standin: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_START_FAILED
    try:
        print(f"{READY_PREFIX} url={standin.url} ca={standin.ca_path}", flush=True)
        wait_until_set(stop_requested)
    finally:
        standin.stop()
    logging.getLogger(__name__).info("Key Vault stand-in stopped")
    return 0


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devhost.standins.keyvault",
        description="Local HTTPS stand-in for the Azure Key Vault secrets API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=8443, help="port to listen on; 0 picks a free one"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".local/keyvault"),
        help="where secrets, the CA and the server certificate are kept",
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
