"""``python -m devhost.stack`` (what ``make run`` execs): start the local system, supervise it.

Starts Azurite, the Key Vault and Entra ID stand-ins and the functions host as children, prints
the banner, then waits. SIGINT (Ctrl-C) or SIGTERM stops every child and exits 0. A child that
dies on its own is restarted on its port and data, with backoff (restarts.py), while the others
keep running; each death and each restart is one line on stderr. A child that keeps dying is
reported with the end of its log, the rest are stopped, and the exit status is 1. A port
already in use, or another stack on the same root, is one line on stderr and exit status 2,
before anything is started.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from devhost.listening import stop_on_signals
from devhost.stack.banner import banner
from devhost.stack.children import AlreadyRunning, Cancelled, Child, PortInUse, StackError
from devhost.stack.config import DEFAULT_PORTS, REPO_ROOT, Ports
from devhost.stack.restarts import RestartPolicy
from devhost.stack.supervisor import Stack

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
PROG = "devhost.stack"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    # A second Ctrl-C cannot leave a child behind either: stopping is time-bounded.
    stop_requested = stop_on_signals()
    stack = Stack(
        args.root,
        ports=Ports(
            blob=args.blob_port, vault=args.vault_port, host=args.host_port, entra=args.entra_port
        ),
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
    gave_up = None
    try:
        gave_up = _supervise(stack, stop_requested, RestartPolicy())
    finally:
        problems = stack.stop()
    for problem in problems:
        print(f"{PROG}: warning: {problem}", file=sys.stderr)
    if gave_up is not None:
        return _error(f"{gave_up}\nstopped the other services", EXIT_FAILED)
    return _stopped()


def _supervise(stack: Stack, stop_requested: threading.Event, policy: RestartPolicy) -> str | None:
    """Wait for a signal, restarting children that die; why we gave up, if we did."""
    while not stop_requested.wait(timeout=0.5):
        died = stack.dead_child()
        if died is not None:
            gave_up = _restart(stack, died, stop_requested, policy)
            if gave_up is not None:
                return gave_up
    return None


def _restart(
    stack: Stack, died: Child, stop_requested: threading.Event, policy: RestartPolicy
) -> str | None:
    """Restart `died` after the policy's delay; a message instead when the policy gives up.

    A restart that fails leaves the child dead, so the next look finds it again and the
    policy counts it: a child that cannot come back ends in the give-up message.
    """
    delay = policy.died(died.name)
    if delay is None:
        return died.failure(
            f"{died.exit_text()}; it died {policy.limit + 1} times within "
            f"{policy.window:.0f} s, so it is not restarted again"
        )
    _say(
        f"{died.title} {died.exit_text()}; restarting it in {delay:.0f} s "
        f"(restart {policy.count(died.name)} of at most {policy.limit} within "
        f"{policy.window:.0f} s; log {died.log_path})"
    )
    if stop_requested.wait(delay):
        return None
    began = time.monotonic()
    try:
        child = stack.restart(died.name)
    except Cancelled:
        return None
    except StackError as error:
        _say(f"{died.title} did not come back: {str(error).splitlines()[0]}")
        return None
    _say(f"{child.title} restarted (pid {child.pid}), ready in {time.monotonic() - began:.1f} s")
    return None


def _say(line: str) -> None:
    print(f"{PROG}: {line}", file=sys.stderr, flush=True)


def _stopped() -> int:
    print(f"{PROG}: stopped", file=sys.stderr, flush=True)
    return EXIT_OK


def _error(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    return status


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m {PROG}",
        description="Run Azurite, the Key Vault and Entra ID stand-ins and the functions host "
        "together.",
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
        ("entra", DEFAULT_PORTS.entra),
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
