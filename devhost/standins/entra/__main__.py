"""``python -m devhost.standins.entra``: run the Entra ID stand-in until SIGTERM or Ctrl-C.

Supervisors and test fixtures start it with ``--port 0`` and read the one ready line from stdout
(``entra-standin ready url=https://127.0.0.1:PORT ca=/path/ca-cert.pem``); the tenant, app and
principal ids are in the data dir's ``entra.json``. Start-up problems (port in use, unreadable
state) end with one error line on stderr and exit status 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from devhost.standins.https import add_listen_arguments, serve_until_signalled

from .server import EntraStandin

READY_PREFIX = "entra-standin ready"
DEFAULT_PORT = 8444


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devhost.standins.entra",
        description="Local HTTPS stand-in for Microsoft Entra ID (OpenID, JWKS, tokens).",
    )
    add_listen_arguments(
        parser,
        port=DEFAULT_PORT,
        data_dir=Path(".local/entra"),
        data_help="where the tenant (entra.json), the signing keys and the TLS files are kept",
    )
    args = parser.parse_args(argv)
    standin = EntraStandin(args.data_dir, host=args.host, port=args.port)
    return serve_until_signalled(standin, name="entra-standin", ready_prefix=READY_PREFIX)


if __name__ == "__main__":
    sys.exit(main())
