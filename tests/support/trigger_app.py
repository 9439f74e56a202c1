"""A small FunctionApp with blob and timer functions that record what the local host hands them.

Paths and schedules name app settings (``%WV_TRIGGER_PREFIX%``, ``%WV_TICK_SCHEDULE%``...), so
each test points the functions at its own containers; tests pick the functions they need with
:func:`functions` and read the calls from :data:`calls`.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

CONNECTION = "WV_TRIGGER_STORAGE"
SECRET_IN_ERROR = "AccountKey=do-not-leak-this-exception-text"
FLAKY_FAILURES = 2  # the flaky function fails this often per blob, then succeeds
SLOW_SECONDS = 1.0

_lock = threading.Lock()


@dataclass(frozen=True)
class Call:
    """One invocation as the function saw it."""

    function: str
    at: float  # time.time() when the function started
    name: str | None = None
    uri: str | None = None
    length: int | None = None
    properties: dict[str, object] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    data: bytes = b""
    past_due: bool | None = None
    schedule_status: dict[str, object] = field(default_factory=dict)


class Calls:
    """Every call so far, with a way to wait for the ones a test expects."""

    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._changed = threading.Condition()
        self.running: Counter[str] = Counter()
        self.most_running: Counter[str] = Counter()

    def add(self, call: Call) -> None:
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()

    def of(self, function: str, name: str | None = None) -> list[Call]:
        with self._changed:
            return [
                c
                for c in self._calls
                if c.function == function and (name is None or c.name == name)
            ]

    def wait_for(
        self, function: str, count: int = 1, *, name: str | None = None, timeout: float = 10.0
    ) -> list[Call]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(found := self.of(function, name)) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{function}: {len(found)} calls, expected {count}")
                self._changed.wait(remaining)
            return found

    def clear(self) -> None:
        with self._changed:
            self._calls.clear()
            self.running.clear()
            self.most_running.clear()


calls = Calls()


@functools.cache
def _built() -> tuple[func.Function, ...]:
    return tuple(app.get_functions())


def functions(*names: str) -> tuple[func.Function, ...]:
    """The named functions (all when none are named); ``get_functions()`` runs once."""
    with _lock:
        built = _built()
    return tuple(f for f in built if not names or f.get_function_name() in names)


def _blob_call(function: str, blob: func.InputStream) -> Call:
    return Call(
        function=function,
        at=time.time(),
        name=blob.name,
        uri=blob.uri,
        length=blob.length,
        # The abstract InputStream type leaves these out; the host's real one has them.
        properties=dict(getattr(blob, "blob_properties", None) or {}),
        metadata=dict(getattr(blob, "metadata", None) or {}),
        data=blob.read(),
    )


@app.function_name("record")
@app.blob_trigger(arg_name="blob", path="%WV_TRIGGER_PREFIX%-in/{name}", connection=CONNECTION)
def record(blob: func.InputStream) -> None:
    calls.add(_blob_call("record", blob))


@app.function_name("flaky")
@app.blob_trigger(arg_name="blob", path="%WV_TRIGGER_PREFIX%-flaky/{name}", connection=CONNECTION)
def flaky(blob: func.InputStream) -> None:
    call = _blob_call("flaky", blob)
    calls.add(call)
    if len(calls.of("flaky", call.name)) <= FLAKY_FAILURES:
        raise ConnectionError(SECRET_IN_ERROR)


@app.function_name("always_fails")
@app.blob_trigger(arg_name="blob", path="%WV_TRIGGER_PREFIX%-bad/{name}", connection=CONNECTION)
def always_fails(blob: func.InputStream) -> None:
    calls.add(_blob_call("always_fails", blob))
    raise RuntimeError(SECRET_IN_ERROR)


@app.function_name("slow")
@app.blob_trigger(arg_name="blob", path="%WV_TRIGGER_PREFIX%-slow/{name}", connection=CONNECTION)
def slow(blob: func.InputStream) -> None:
    with _lock:
        calls.running["slow"] += 1
        calls.most_running["slow"] = max(calls.most_running["slow"], calls.running["slow"])
    try:
        calls.add(_blob_call("slow", blob))
        time.sleep(SLOW_SECONDS)
    finally:
        with _lock:
            calls.running["slow"] -= 1


@app.function_name("async_record")
@app.blob_trigger(
    arg_name="blob", path="%WV_TRIGGER_PREFIX%-async/{name}.txt", connection=CONNECTION
)
async def async_record(blob: func.InputStream) -> None:
    await asyncio.sleep(0.01)
    calls.add(_blob_call("async_record", blob))


def _timer_call(function: str, timer: func.TimerRequest) -> Call:
    return Call(
        function=function,
        at=time.time(),
        past_due=timer.past_due,
        schedule_status=dict(timer.schedule_status),  # type: ignore[attr-defined]
    )


@app.function_name("tick")
@app.timer_trigger(arg_name="timer", schedule="%WV_TICK_SCHEDULE%")
def tick(timer: func.TimerRequest) -> None:
    calls.add(_timer_call("tick", timer))


@app.function_name("on_startup")
@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True)
def on_startup(timer: func.TimerRequest) -> None:
    calls.add(_timer_call("on_startup", timer))


@app.function_name("failing_timer")
@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *")
def failing_timer(timer: func.TimerRequest) -> None:
    calls.add(_timer_call("failing_timer", timer))
    raise RuntimeError(SECRET_IN_ERROR)


@app.route(route="hello", methods=["GET"])
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("hello")
