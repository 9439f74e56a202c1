"""``python -m devhost.stack`` (what ``make run`` execs): start the local system, supervise it.

Starts Azurite, the Key Vault stand-in and the functions host as children, prints the banner,
then waits. SIGINT (Ctrl-C) or SIGTERM stops every child and exits 0; a child that dies on its
own is reported with the end of its log, the rest are stopped, and the exit status is 1. A port
already in use, or another stack on the same root, is one line on stderr and exit status 2,
before anything is started.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from devhost.stack.banner import banner
from devhost.stack.children import AlreadyRunning, Cancelled, Child, PortInUse, StackError
from devhost.stack.config import DEFAULT_PORTS, REPO_ROOT, Ports
from devhost.stack.core import Stack

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
PROG = "devhost.stack"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    stop_requested = _stop_on_signals()
    stack = Stack(
        args.root,
        ports=Ports(blob=args.blob_port, vault=args.vault_port, host=args.host_port),
        cancel=stop_requested,
    )
    try:
        stack.start()
    except Cancelled:
        return _stopped()
    except (PortInUse, AlreadyRunning) as error:
        return _error(str(error), EXIT_USAGE)
    except StackError as error:
        return _error(str(error), EXIT_FAILED)
    print(banner(stack), flush=True)
    died = None
    try:
        died = _supervise(stack, stop_requested)
    finally:
        problems = stack.stop()
    for problem in problems:
        print(f"{PROG}: warning: {problem}", file=sys.stderr)
    if died is not None:
        message = died.failure(f"{died.exit_text()} unexpectedly")
        return _error(f"{message}\nstopped the other services", EXIT_FAILED)
    return _stopped()


def _stop_on_signals() -> threading.Event:
    """SIGINT and SIGTERM only set an event: start-up and shutdown are never interrupted
    half-way, and a second Ctrl-C cannot leave a child behind (stopping is time-bounded)."""
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return stop_requested


def _supervise(stack: Stack, stop_requested: threading.Event) -> Child | None:
    """Wait for a signal; return the child that died first if one does before."""
    while not stop_requested.wait(timeout=0.5):
        died = stack.dead_child()
        if died is not None:
            return died
    return None


def _stopped() -> int:
    print(f"{PROG}: stopped", file=sys.stderr, flush=True)
    return EXIT_OK


def _error(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    return status


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m {PROG}",
        description="Run Azurite, the Key Vault stand-in and the functions host together.",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=REPO_ROOT,
        help="directory with local.settings.json and .local/ (default: the repository)",
    )
    for role, default in (
        ("blob", DEFAULT_PORTS.blob),
        ("vault", DEFAULT_PORTS.vault),
        ("host", DEFAULT_PORTS.host),
    ):
        parser.add_argument(
            f"--{role}-port",
            type=_port,
            default=default,
            help=f"port for the {role} service (default {default}; 0 picks a free one)",
        )
    return parser.parse_args(argv)


def _port(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be a port number from 0 to 65535")
    return value


if __name__ == "__main__":
    sys.exit(main())
