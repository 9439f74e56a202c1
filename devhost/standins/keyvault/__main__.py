"""``python -m devhost.standins.keyvault``: run the Key Vault stand-in until SIGTERM or Ctrl-C.

Supervisors and test fixtures start it with ``--port 0`` and read the one ready line from stdout
(``keyvault-standin ready url=https://127.0.0.1:PORT ca=/path/ca-cert.pem``) to learn the URL and
the CA certificate. Start-up problems (port in use, data dir locked) end with one error line on
stderr and exit status 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from .api import DEFAULT_TENANT_ID, MAX_PAGE_SIZE
from .server import StandinStartError, VaultStandin

EXIT_START_FAILED = 2
READY_PREFIX = "keyvault-standin ready"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )

    # Installed before starting so a signal that arrives during start-up still stops us cleanly.
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    standin = VaultStandin(
        args.data_dir,
        host=args.host,
        port=args.port,
        page_size=args.page_size,
        tenant_id=args.tenant_id,
    )
    try:
        standin.start()
    except StandinStartError as exc:
        print(f"keyvault-standin: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_START_FAILED
    try:
        print(f"{READY_PREFIX} url={standin.url} ca={standin.ca_path}", flush=True)
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stop_requested.wait(timeout=0.5):
            pass
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
    parser.add_argument(
        "--tenant-id",
        default=DEFAULT_TENANT_ID,
        help="tenant named in the 401 challenge's authorization URL",
    )
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
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
