"""The stack's child processes: each in its own process group, with its output in a log file.

Own process groups keep a terminal's Ctrl-C away from the children, so the supervisor alone
decides the order and the time they get to stop; and one ``killpg`` reaches anything a child
started itself. Readiness is read from the log file (the children print one ready line), so a
child that dies during start-up is reported with the end of its own log.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from devhost.listening import port_accepts
from shared.core.clock import utc_now

T = TypeVar("T")

TAIL_LINES = 20
POLL_SECONDS = 0.05
_PR_SET_PDEATHSIG = 1


class StackError(Exception):
    """Start-up failed in a way the message explains; printed as is, without a traceback."""


class PortInUse(StackError):
    """A port the stack needs is taken: a usage problem (exit 2), not a crash."""


class AlreadyRunning(StackError):
    """Another stack holds this data root: a usage problem (exit 2)."""


class ChildFailed(StackError):
    """A child exited or did not become ready; the message carries the end of its log."""


class Cancelled(StackError):
    """SIGINT/SIGTERM arrived while the stack was starting."""


@dataclass
class Child:
    """One running child process and the part of its log file this run wrote."""

    name: str
    title: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_offset: int
    terminated: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> bool:
        return self.process.poll() is not None

    def log_text(self) -> str:
        """What the child logged since this run started (older runs stay above it)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self.log_offset)
                return log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = TAIL_LINES) -> str:
        kept = self.log_text().rstrip().splitlines()[-lines:]
        return "\n".join(f"    {line}" for line in kept) or "    (the log is empty)"

    def failure(self, what: str) -> str:
        """A message for people: what went wrong, where the log is, and how it ends."""
        return f"{self.title} {what}; last lines of {self.log_path}:\n{self.tail()}"

    def terminate(self) -> None:
        """SIGTERM the process group, once: a second SIGTERM would kill Azurite outright
        (node's handler is `once`), before it has saved its database."""
        if not self.terminated:
            self.terminated = True
            self.signal(signal.SIGTERM)

    def stop(self, timeout: float) -> None:
        """SIGTERM the process group, SIGKILL it after `timeout`, then reap; idempotent."""
        self.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait(timeout)
        # Anything the child left in its group (it should leave nothing) goes with it.
        self.signal(signal.SIGKILL)

    def exit_text(self) -> str:
        """`exited with code 3` or `was killed by SIGKILL`, for messages."""
        code = self.process.returncode
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                return f"was killed by {signal.Signals(-code).name}"
        return f"exited with code {code}"

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)


def spawn(
    name: str,
    title: str,
    args: Sequence[str],
    *,
    log_path: Path,
    cwd: Path,
    env: Mapping[str, str],
) -> Child:
    """Start `args` in a new session with stdout and stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        stamp = utc_now().isoformat(timespec="seconds")
        log.write(f"\n===== {name} started by devhost.stack at {stamp} =====\n".encode())
        log.flush()
        offset = log.tell()
        process = subprocess.Popen(
            list(args),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
            preexec_fn=_die_with_parent(),  # only a prctl call: safe between fork and exec
        )
    return Child(name, title, process, log_path, offset)


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, have the kernel SIGTERM a child whose supervisor was killed outright.

    A supervisor that gets SIGKILL (or crashes) cannot stop its children, and children in
    their own sessions would otherwise live on, holding the ports. The prctl is tied to the
    thread that starts the child: the stack starts every child from one thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()

    def set_parent_death_signal() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the supervisor died before the prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return set_parent_death_signal


def wait_for(
    child: Child,
    probe: Callable[[], T | None],
    *,
    what: str,
    timeout: float,
    cancel: threading.Event,
) -> T:
    """Poll `probe` until it returns a value; fail early if the child dies or we are stopped."""
    deadline = time.monotonic() + timeout
    while True:
        if cancel.is_set():
            raise Cancelled("stopped while starting")
        found = probe()
        if found is not None:
            return found
        if child.exited():
            raise ChildFailed(child.failure(f"{child.exit_text()} during start-up"))
        if time.monotonic() > deadline:
            raise ChildFailed(child.failure(f"was not {what} within {timeout:.0f} s"))
        time.sleep(POLL_SECONDS)


def ready_line(child: Child, pattern: re.Pattern[str]) -> Callable[[], re.Match[str] | None]:
    """A probe for `wait_for`: the child's ready line, once it has printed it."""
    return lambda: pattern.search(child.log_text())


def accepting(host: str, port: int) -> Callable[[], bool | None]:
    """A probe for `wait_for`: True once something accepts connections on host:port."""
    return lambda: True if port_accepts(host, port) else None
