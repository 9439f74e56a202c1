"""The HTTP/1.1 transport: sockets to :class:`HostRequest`, :class:`HostResponse` back to bytes.

Built on the standard library's ``ThreadingHTTPServer`` (one thread per connection, keep-alive
as pip and uv expect) so that the raw request target reaches routing untouched: WSGI servers
hand applications a percent-decoded path, which would lose the difference between ``/`` and
``%2F`` before routing.

What the transport guarantees, whatever the endpoints do:

* bodies are read completely before dispatch (``Content-Length`` or chunked), capped at
  ``max_body_bytes`` (413 before reading, also on ``Expect: 100-continue``): the Functions
  host's ``FUNCTIONS_REQUEST_BODY_SIZE_LIMIT`` app setting, 104857600 bytes (100 MiB) when
  unset, as in Azure, where a larger body never reaches a function either;
* framing headers (``Content-Length``, ``Connection``) are the server's; HEAD, 204 and 304
  replies carry no body;
* one log line per request: method, path without query (it may hold SAS signatures), status,
  duration and function. Headers and bodies are never logged: they carry tokens;
* :meth:`HttpServer.stop_connections` ends idle keep-alive connections so a stop really stops.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from devhost.listening import LocalHttpServer, QuietHandler, loggable_path, trusted_host

from .functions import HostConfigError
from .messages import HostRequest, HostResponse, error_response

logger = logging.getLogger("devhost.host")
request_logger = logging.getLogger("devhost.host.requests")

MAX_BODY_BYTES = 100 * 1024 * 1024  # the Functions host's default request body limit
BODY_LIMIT_SETTING = "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"  # the app setting that changes it
IDLE_TIMEOUT_SECONDS = 120.0
LINGER_SECONDS = 2.0
LINGER_BYTES = 8 * 1024 * 1024
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_DIGITS = re.compile(r"[0-9]{1,20}")
_MAX_TRAILER_LINES = 100

Dispatch = Callable[[HostRequest], HostResponse]


class BodyError(Exception):
    """The request body cannot be accepted; answered with ``status`` and the connection closed."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ClientGone(Exception):
    """The client closed the connection mid-body: there is nobody left to answer."""


class _Handler(QuietHandler):
    """Reads each request on a connection, dispatches it, writes the response."""

    server: HttpServer
    server_version = "wheelvault-localhost"
    timeout = IDLE_TIMEOUT_SECONDS

    def _serve(self) -> None:
        started = time.monotonic()
        try:
            body = self._read_body()
        except ClientGone:
            self.close_connection = True
            return
        except BodyError as exc:
            self._refuse(exc, started)
            return
        path, query = _split_target(self.path)
        request = HostRequest(
            method=self.command,
            path=path,
            query=query,
            headers=tuple((str(k), str(v)) for k, v in self.headers.items()),
            body=body,
            base_url=self._base_url(),
        )
        self._send(self.server.dispatch(request), started)

    # http.server dispatches on do_<METHOD>; these are the methods HTTP triggers accept.
    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_TRACE = _serve

    def handle_expect_100(self) -> bool:
        """Refuse an oversized body before the client starts sending it."""
        try:
            self._check_length()
        except BodyError as exc:
            self._refuse(exc, time.monotonic())
            return False
        return super().handle_expect_100()

    def _check_length(self) -> int | None:
        """The declared ``Content-Length`` (``None`` for chunked), validated against the cap."""
        encoding = self.headers.get("Transfer-Encoding")
        if encoding is not None:
            if encoding.strip().lower() != "chunked":
                raise BodyError(501, "not-implemented", "only chunked transfer coding is supported")
            if "Content-Length" in self.headers:
                self.close_connection = True  # RFC 9112 6.3: both headers, so not reusable
            return None
        values = {v.strip() for v in self.headers.get_all("Content-Length") or ["0"]}
        if len(values) != 1 or not _DIGITS.fullmatch(next(iter(values))):
            raise BodyError(400, "bad-request", "the Content-Length header is not valid")
        length = int(values.pop())
        if length > self.server.max_body_bytes:
            raise self.server.too_large()
        return length

    def _read_body(self) -> bytes:
        length = self._check_length()
        if length is None:
            return self._read_chunked()
        body = self.rfile.read(length)
        if len(body) != length:
            raise ClientGone
        return body

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = self._chunk_size()
            if size == 0:
                break
            total += size
            if total > self.server.max_body_bytes:
                raise self.server.too_large()
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                raise ClientGone
            chunks.append(chunk)
            if self.rfile.readline(3).rstrip(b"\r\n") != b"":
                raise BodyError(400, "bad-request", "malformed chunked body")
        self._skip_trailers()
        return b"".join(chunks)

    def _chunk_size(self) -> int:
        line = self.rfile.readline(1024)
        if not line:
            raise ClientGone
        size = line.split(b";", 1)[0].strip()
        if not line.endswith(b"\n") or not _HEX.fullmatch(size):
            raise BodyError(400, "bad-request", "malformed chunked body")
        return int(size, 16)

    def _skip_trailers(self) -> None:
        for _ in range(_MAX_TRAILER_LINES):
            if self.rfile.readline(8192) in (b"\r\n", b"\n", b""):
                return
        raise BodyError(400, "bad-request", "too many trailer lines")

    def _refuse(self, exc: BodyError, started: float) -> None:
        """Answer, then drain a little of the unread body so the client can read the answer.

        Closing a socket with unread input makes the kernel send a reset, which can destroy the
        response before the client reads it.
        """
        self.close_connection = True
        self._send(error_response(exc.status, exc.code, exc.message), started)
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(0.5)
            deadline, drained = time.monotonic() + LINGER_SECONDS, 0
            while time.monotonic() < deadline and drained < LINGER_BYTES:
                data = self.connection.recv(65536)
                if not data:
                    break
                drained += len(data)
        except OSError:
            pass

    def _base_url(self) -> str:
        host = trusted_host(self.headers.get("Host", "").strip())
        return f"http://{host or self.server.authority}"

    def _send(self, response: HostResponse, started: float) -> None:
        """Write the response; the log line comes first, so a client that has read a response
        can rely on its line being logged (tests do)."""
        method = self.command or "-"
        if self.server.stopping:
            self.close_connection = True
        self._log(method, response, started)
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() != "content-length":
                self.send_header(name, value)
        length = _content_length(method, response)
        if length is not None:
            self.send_header("Content-Length", length)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if _has_body(method, response.status):
            self.wfile.write(response.body)

    def _log(self, method: str, response: HostResponse, started: float) -> None:
        """Method, path without query, status, time until the response was ready, function."""
        request_logger.info(
            "%s %s %d %.1fms %s",
            method,
            loggable_path(_split_target(getattr(self, "path", ""))[0]),
            response.status,
            (time.monotonic() - started) * 1000,
            response.function or "-",
        )

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, unknown method) as JSON, like ours."""
        self.close_connection = True
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        self._send(error_response(code, phrase.lower().replace(" ", "-"), phrase), time.monotonic())

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: :meth:`_send` writes the request line it should (no query string)."""


class HttpServer(LocalHttpServer):
    """A threaded HTTP server that hands every request to ``dispatch``."""

    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], dispatch: Dispatch, *, max_body_bytes: int = MAX_BODY_BYTES
    ) -> None:
        self.dispatch = dispatch
        self.max_body_bytes = max_body_bytes
        self.stopping = False
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """One thread per connection, remembered until it has ended (socket closed and all),
        so that :meth:`stop_connections` can wait for every one: a stopped host leaves no
        thread behind."""
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self._lock:
            self._workers = [worker for worker in self._workers if worker.is_alive()]
            self._workers.append(thread)
        thread.start()

    def too_large(self) -> BodyError:
        return BodyError(
            413,
            "too-large",
            f"the request body is over this host's limit of {self.max_body_bytes} bytes "
            f"({BODY_LIMIT_SETTING})",
        )

    @property
    def authority(self) -> str:
        """``host:port`` of the listening socket, for URLs when a request has no Host."""
        host = self.server_name
        return f"[{host}]:{self.server_port}" if ":" in host else f"{host}:{self.server_port}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Runs in the connection's thread; tracked so :meth:`stop_connections` can end it."""
        with self._lock:
            if self.stopping:
                return
            self._connections[request] = threading.current_thread()
        try:
            super().finish_request(request, client_address)
        finally:
            with self._lock:
                self._connections.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection broke mid-request (reset, timeout): not worth a traceback."""
        logger.debug("connection from %s ended abruptly", client_address[0])

    def stop_connections(self, grace_seconds: float) -> None:
        """Stop reading from every connection, let running requests answer, wait for them.

        Shutting down the read side wakes workers waiting for a next keep-alive request (they
        read end-of-file and leave) without cutting off a response being computed or written.
        """
        with self._lock:
            self.stopping = True
            connections = dict(self._connections)
            workers = list(self._workers)  # a superset: also threads just closing their socket
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RD)
            except OSError:
                pass
        deadline = time.monotonic() + grace_seconds
        for thread in workers:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in workers):
            logger.warning("stopped with requests still running after %.0fs", grace_seconds)


def body_limit(environ: Mapping[str, str]) -> int:
    """The request body limit the settings give (``FUNCTIONS_REQUEST_BODY_SIZE_LIMIT``, in
    bytes), or the Functions host's default."""
    raw = environ.get(BODY_LIMIT_SETTING, "").strip()
    if not raw:
        return MAX_BODY_BYTES
    if not _DIGITS.fullmatch(raw) or int(raw) == 0:
        raise HostConfigError(f"{BODY_LIMIT_SETTING} must be a positive number of bytes")
    return int(raw)


def _split_target(target: str) -> tuple[str, str]:
    """Raw path and query of a request target (origin form, or absolute form from proxies)."""
    if target.startswith(("http://", "https://")):
        parts = urlsplit(target)
        return parts.path or "/", parts.query
    path, _, query = target.partition("?")
    return path.partition("#")[0], query


def _has_body(method: str, status: int) -> bool:
    return method != "HEAD" and status not in (204, 304)


def _content_length(method: str, response: HostResponse) -> str | None:
    """HEAD reports what GET would send (the function's own value if it gave one)."""
    if response.status == 204:
        return None
    if response.status == 304:
        return response.header("Content-Length")
    if method == "HEAD":
        return response.header("Content-Length") or str(len(response.body))
    return str(len(response.body))
