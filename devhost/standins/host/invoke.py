"""Call one HTTP-trigger function the way the Python worker does, and translate its result.

The function receives a real ``azure.functions.HttpRequest`` and must return an
``azure.functions.HttpResponse`` (or a ``str``, which the worker also accepts as a 200 body).
Like the worker, the host runs ``async def`` functions on one shared event loop (in its own
thread), so clients cached across invocations stay on the loop they were created on, and runs
plain functions in the request's thread.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import azure.functions as func

from .functions import HttpFunction
from .messages import HostRequest, HostResponse

T = TypeVar("T")

logger = logging.getLogger("devhost.host")

# Framing is the server's job: a function's own values would corrupt the connection.
_FRAMING_HEADERS = frozenset({"transfer-encoding", "connection", "keep-alive"})


class InvalidResult(TypeError):
    """The function returned something the host cannot send (the message says what)."""


def build_request(request: HostRequest, route_params: Mapping[str, str]) -> func.HttpRequest:
    """The ``HttpRequest`` a function sees: full URL, every header, query, route, raw body."""
    return func.HttpRequest(
        method=request.method,
        url=request.url,
        headers=_joined_headers(request.headers),
        params=_first_values(request.query),
        route_params=dict(route_params),
        body=request.body,
    )


def _joined_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """One value per header name; repeated headers are joined with ``", "`` (RFC 9110)."""
    joined: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


def _first_values(query: str) -> dict[str, str]:
    """Query parameters, first value per name (``HttpRequest.params`` is a flat mapping)."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
        params.setdefault(name, value)
    return params


class EventLoopThread:
    """The one event loop async functions run on; started on first use, ended by :meth:`stop`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def run(self, awaitable: Awaitable[T]) -> T:
        """Wait (in the calling thread) for ``awaitable`` to finish on the shared loop."""
        return asyncio.run_coroutine_threadsafe(_await(awaitable), self._started()).result()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="devhost-async", daemon=True
                )
                self._thread.start()
            return self._loop

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel what is still running, then stop and close the loop."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(_cancel_all(), loop).result(timeout=timeout)
        except Exception:  # a task that refuses to end must not keep the host from stopping
            logger.warning("async functions did not finish cancelling", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=timeout)
        if not thread.is_alive():
            loop.close()


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def _cancel_all() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


def call(function: HttpFunction, request: func.HttpRequest, loop: EventLoopThread) -> object:
    """Run the user function with the request bound to its trigger argument name."""
    result = function.info.handler(**{function.arg_name: request})
    if inspect.isawaitable(result):
        return loop.run(result)
    return result


def to_response(result: object, function_name: str) -> HostResponse:
    """Status, headers and body of the function's response, with ``Content-Type`` filled in.

    As the worker does, a response without its own ``Content-Type`` header gets one from its
    ``mimetype`` (plus ``; charset=...`` for ``text/*`` types).
    """
    if isinstance(result, str):
        result = func.HttpResponse(result)
    if not isinstance(result, func.HttpResponse):
        raise InvalidResult(f"returned {type(result).__name__}, not an HttpResponse")
    status = _status(result.status_code)
    headers = [(str(k), str(v)) for k, v in _header_items(result.headers)]
    if any(_breaks_lines(k) or _breaks_lines(v) for k, v in headers):
        raise InvalidResult("returned a header with a line break")
    headers = [(k, v) for k, v in headers if k.lower() not in _FRAMING_HEADERS]
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", _content_type(result.mimetype, result.charset)))
    return HostResponse(
        status=status, headers=headers, body=result.get_body(), function=function_name
    )


def _status(value: Any) -> int:
    status = int(value)
    if not 200 <= status <= 599:  # a 1xx is never a final response
        raise InvalidResult(f"returned status code {status}")
    return status


def _header_items(headers: Any) -> list[tuple[Any, Any]]:
    """Every header, repeated ones (``Set-Cookie``) included; ``Headers.items()`` keeps them."""
    return list(headers.items())


def _breaks_lines(text: str) -> bool:
    """A CR or LF in a header would let a value inject headers of its own."""
    return "\r" in text or "\n" in text


def _content_type(mimetype: str, charset: str) -> str:
    return f"{mimetype}; charset={charset}" if mimetype.startswith("text/") else mimetype
