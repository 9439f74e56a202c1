"""What blob and timer functions share: settings in bindings, checks, their thread, invocation
and its log.

Binding values may name app settings as ``%NAME%`` (the timer's schedule does); the host
resolves them from the environment once, at start-up, and a missing one puts that function in
error instead of stopping the host, as Azure does.

Every invocation logs exactly one line on ``devhost.host.functions``::

    publish_upload blob 'uploads/demo-1.0-py3-none-any.whl' 41.2ms ok
    publish_upload blob 'uploads/x' 3.0ms failed: OSError; retrying 2 of 5
    rotate_tokens timer 12.9ms failed: RuntimeError

The exception *type* is all a line says about a failure: exception texts can carry tokens,
SAS URLs or connection strings. The traceback goes to DEBUG for whoever turns that on.
"""

from __future__ import annotations

import inspect
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from .functions import FunctionInfo
from .invoke import EventLoopThread

logger = logging.getLogger("devhost.host")
invocation_logger = logging.getLogger("devhost.host.functions")

_PLACEHOLDER = re.compile(r"%([^%]+)%")


class TriggerConfigError(ValueError):
    """A trigger's bindings or settings cannot be run here; the message is for people."""


def resolve_settings(text: str, environ: Mapping[str, str]) -> str:
    """``text`` with every ``%NAME%`` replaced by that setting; a missing one is an error."""

    def value(match: re.Match[str]) -> str:
        name = match[1]
        found = environ.get(name)
        if not found:
            raise TriggerConfigError(f"app setting {name} is not set")
        return found

    return _PLACEHOLDER.sub(value, text)


def check_single_binding(info: FunctionInfo) -> str:
    """The trigger's argument name, after refusing what the host cannot fill.

    Only the trigger binding is supported: an input or output binding next to it would be
    silently ignored here and work in Azure, so such a function is put in error instead.
    """
    arg_name = str(info.trigger.get("name", ""))
    if not arg_name:
        raise TriggerConfigError("the trigger binding has no argument name")
    for binding in info.bindings:
        if binding is not info.trigger:
            kind, name = binding.get("type", "?"), binding.get("name", "?")
            raise TriggerConfigError(f"binding {name!r} ({kind}) is not supported locally")
    try:
        parameters = inspect.signature(info.handler).parameters.values()
    except (TypeError, ValueError):
        return arg_name
    for parameter in parameters:
        required = parameter.default is inspect.Parameter.empty and parameter.kind not in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        )
        if required and parameter.name != arg_name:
            raise TriggerConfigError(f"parameter {parameter.name!r} has no binding to fill it")
    return arg_name


class TriggerRunner:
    """The one thread that runs a trigger function by itself: polling, or waiting for its time.

    :meth:`request_stop` asks the thread to end, :meth:`stop` also waits for it; Background
    asks every runner first, so stopping takes the slowest one's time, not the sum.
    """

    def __init__(self, thread_name: str, description: str) -> None:
        self._thread_name, self._description = thread_name, description
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self._description} is already running")
        self._stop.clear()
        self._prepare()
        self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the thread to end without waiting for it (:meth:`stop` waits)."""
        self._stop.set()

    def stop(self) -> None:
        """Ask the thread to end and wait: a run in progress finishes first."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def _prepare(self) -> None:
        """What the thread needs before it starts (nothing, unless a runner says otherwise)."""

    def _run(self) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Outcome:
    """How one call went: the exception type's name when it raised, and how long it took."""

    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def call_function(
    info: FunctionInfo, arg_name: str, value: object, loop: EventLoopThread
) -> Outcome:
    """Run the handler with ``value`` bound to its trigger argument; never raises."""
    started = time.monotonic()
    try:
        result = info.handler(**{arg_name: value})
        if inspect.isawaitable(result):
            loop.run(result)
    except Exception as exc:
        # Exception text can hold URLs or values a handler saw: only the type, even at DEBUG.
        logger.debug("function %s raised %s", info.name, type(exc).__name__)
        return Outcome(time.monotonic() - started, type(exc).__name__)
    return Outcome(time.monotonic() - started)


def log_invocation(
    function: str, trigger: str, outcome: Outcome, result: str, *, blob: str | None = None
) -> None:
    """The one line per invocation; ``blob`` is repr-escaped so any name stays one line."""
    where = f" {blob!r}" if blob is not None else ""
    invocation_logger.info(
        "%s %s%s %.1fms %s", function, trigger, where, outcome.seconds * 1000, result
    )


def failed(outcome: Outcome) -> str:
    return "ok" if outcome.error is None else f"failed: {outcome.error}"
