"""``POST /admin/functions/{name}``: run a non-HTTP function now, as Core Tools does.

The body is ``{"input": "..."}`` (``{}`` or empty for a timer); a blob function's input names
the blob as ``container/blobname``. The answer is ``202 Accepted`` as soon as the run is
queued; the run itself, and its one log line (trigger ``admin``), happen in the background.
A timer run gets ``past_due=false``. A blob run is one attempt without retries; if it
succeeds, the watcher counts that version of the blob as delivered, and while the watcher is
delivering that version the run is refused (409) so a blob never runs twice at once.

Errors are JSON like the rest of the host: unknown function 404, HTTP function or function
in error 400, bad body 400, no such blob 404. Locally no key is required, as with Core Tools.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

from .functions import HTTP_TRIGGER, FunctionInfo
from .messages import HostRequest, HostResponse, error_response
from .timers import TimerRunner
from .watcher import BlobBusy, BlobWatcher

logger = logging.getLogger("devhost.host")

PREFIX = "/admin/functions/"
WORKERS = 4


class AdminEndpoint:
    """Answers ``/admin/functions/{name}``; everything else is left to the next endpoint."""

    def __init__(
        self,
        functions: Iterable[FunctionInfo],
        *,
        problems: Mapping[str, str],
        blobs: Iterable[BlobWatcher],
        timers: Iterable[TimerRunner],
    ) -> None:
        # Function names are case-insensitive in Azure, in URLs as elsewhere.
        self._functions = {f.name.lower(): f for f in functions}
        self._problems = {name.lower(): reason for name, reason in problems.items()}
        self._blobs = {w.function.name.lower(): w for w in blobs}
        self._timers = {t.function.name.lower(): t for t in timers}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def handle(self, request: HostRequest) -> HostResponse | None:
        if not request.path.lower().startswith(PREFIX):
            return None
        name = unquote(request.path[len(PREFIX) :], errors="replace")
        if not name or "/" in name:
            return None
        if request.method != "POST":
            return error_response(
                405, "method-not-allowed", "use POST to run a function", headers=[("Allow", "POST")]
            )
        info = self._functions.get(name.lower())
        if info is None:
            return error_response(404, "not-found", f"no function named {name!r}")
        response = self._run(info, request.body)
        response.function = info.name
        return response

    def _run(self, info: FunctionInfo, body: bytes) -> HostResponse:
        key = info.name.lower()
        if info.trigger_type.lower() == HTTP_TRIGGER:
            return error_response(
                400, "http-function", f"{info.name} is an HTTP function; call its route instead"
            )
        if key in self._problems:
            return error_response(400, "function-error", f"{info.name}: {self._problems[key]}")
        try:
            payload = _payload(body)
        except ValueError as exc:
            return error_response(400, "bad-request", str(exc))
        if key in self._timers:
            timer = self._timers[key]
            self._submit(timer.run_now)
            return _accepted()
        if key in self._blobs:
            return self._run_blob(self._blobs[key], payload.get("input"))
        return error_response(400, "unsupported", f"{info.trigger_type} functions cannot run here")

    def _run_blob(self, watcher: BlobWatcher, given: object) -> HostResponse:
        container = watcher.function.container
        if not isinstance(given, str) or not given.startswith(f"{container}/"):
            return error_response(
                400,
                "bad-input",
                f'{watcher.function.name} needs {{"input": "{container}/<blob name>"}}',
            )
        name = given[len(container) + 1 :]
        try:
            claimed = watcher.claim(name)
        except BlobBusy:
            return error_response(409, "busy", f"{given!r} is being delivered right now")
        except Exception:
            logger.warning("admin run of %s: storage did not answer", watcher.function.name)
            return error_response(503, "storage-unavailable", "storage did not answer; try again")
        if claimed is None:
            return error_response(404, "blob-not-found", f"no blob {given!r}")
        self._submit(lambda: watcher.run_claimed(claimed))
        return _accepted()

    def _submit(self, run: Callable[[], object]) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="devhost-admin")
            self._pool.submit(run)

    def close(self) -> None:
        """Wait for runs in progress and drop queued ones (a dropped blob run's claim is
        released when its watcher stops, so the blob is still delivered later)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _payload(body: bytes) -> dict[str, object]:
    if not body.strip():
        return {}
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValueError('the body must be JSON, e.g. {} or {"input": "..."}') from None
    if not isinstance(document, dict):
        raise ValueError("the body must be a JSON object")
    return document


def _accepted() -> HostResponse:
    return HostResponse(202, [("Content-Type", "application/json; charset=utf-8")], b"{}")
