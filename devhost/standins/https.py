"""HTTPS serving shared by the stand-ins that speak TLS (Key Vault, Entra ID).

A standard-library ``ThreadingHTTPServer`` carries the requests; each stand-in's API object
decides the answers. Two choices differ from the usual "wrap the listening socket" recipe:

* The TLS handshake runs in the per-connection worker thread with a timeout, not in the accept
  loop, so one client that connects and stalls cannot block every other client.
* Open keep-alive connections are tracked and shut down on :func:`stop_server`, so a stop
  really stops serving instead of leaving idle worker threads answering old connections.

Request logs carry method, path (without query) and status only: never headers (bearer tokens,
identity headers) or bodies (secret values, client secrets).
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import ssl
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from devhost.listening import (
    LocalHttpServer,
    QuietHandler,
    log_to_stderr,
    loggable_path,
    public_url,
    stop_on_signals,
    wait_until_set,
)

if TYPE_CHECKING:
    from devhost.standins.keyvault.certs import TlsFiles

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
HANDSHAKE_TIMEOUT_SECONDS = 10.0
IDLE_TIMEOUT_SECONDS = 60.0

EXIT_START_FAILED = 2

AppT = TypeVar("AppT")


class StandinStartError(Exception):
    """A stand-in cannot start (port in use, data dir locked or unreadable, ...).

    The message is written for people and the CLIs print it as-is, without a traceback.
    """


class JsonHandler(QuietHandler):
    """Reads one request at a time from a TLS connection; answers are JSON.

    Subclasses route the ``do_<METHOD>`` calls, say how a refusal of their own looks
    (:meth:`error_body`) and name the logger their request lines go to.
    """

    server: TlsHttpServer[Any]
    timeout = IDLE_TIMEOUT_SECONDS
    request_logger = logger

    def error_body(self, code: str, message: str) -> Mapping[str, Any]:
        """The body of a refusal made before the request reaches the API."""
        raise NotImplementedError

    def read_body(self) -> bytes | None:
        """The request body, or ``None`` after answering a request whose body can't be read."""
        if self.headers.get("Transfer-Encoding"):
            self._refuse(411, "LengthRequired", "Send the body with a Content-Length.")
            return None
        raw_length = self.headers.get("Content-Length", "0").strip()
        if not raw_length.isdigit():
            self._refuse(400, "BadParameter", "The Content-Length header is not valid.")
            return None
        length = int(raw_length)
        if length > MAX_BODY_BYTES:
            self._refuse(413, "RequestTooLarge", "The request body is too large.")
            return None
        body = self.rfile.read(length)
        if len(body) != length:  # the client went away mid-body; nothing left to answer
            self.close_connection = True
            return None
        return body

    def _refuse(self, status: int, code: str, message: str) -> None:
        # The unread body would be parsed as the next request, so the connection must end.
        self.close_connection = True
        self.send_json(status, self.error_body(code, message))

    def send_json(
        self,
        status: int,
        body: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """One response; ``body=None`` sends no content (e.g. 204)."""
        payload = b""
        if body is not None:
            payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        status = getattr(code, "value", code)
        method = self.command or "-"
        path = getattr(self, "path", "").split("?", 1)[0]
        self.request_logger.info("%s %s %s", method, loggable_path(path), status)


class TlsHttpServer(LocalHttpServer, Generic[AppT]):
    """A threaded HTTP server that speaks TLS on each accepted connection.

    ``make_app`` builds the stand-in's API object once the public URL (with the bound port) is
    known; handlers reach it as ``self.server.app``.
    """

    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        ssl_context: ssl.SSLContext,
        handler: type[JsonHandler],
        make_app: Callable[[str], AppT],
    ) -> None:
        self._ssl_context = ssl_context
        self._connections: set[ssl.SSLSocket] = set()
        self._connections_lock = threading.Lock()
        self._handler = handler
        super().__init__(address, handler)
        try:
            self.public_url = public_url("https", address[0], self.server_address[1])
            self.app = make_app(self.public_url)
        except BaseException:
            self.server_close()
            raise

    def finish_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """Runs in the worker thread: TLS handshake first, then the HTTP conversation."""
        assert isinstance(request, socket.socket)
        request.settimeout(HANDSHAKE_TIMEOUT_SECONDS)
        try:
            connection = self._ssl_context.wrap_socket(request, server_side=True)
        except OSError as exc:  # includes ssl.SSLError and timeouts
            logger.debug("TLS handshake failed: %s", type(exc).__name__)
            return
        with self._connections_lock:
            self._connections.add(connection)
        try:
            self._handler(connection, client_address, self)
        finally:
            with self._connections_lock:
                self._connections.discard(connection)
            _close_quietly(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection failed mid-request (reset, TLS EOF...): one line, no traceback."""
        error = sys.exc_info()[1]
        logger.debug("connection ended with %s", type(error).__name__)

    def close_connections(self) -> None:
        """Wake every worker blocked on an idle keep-alive connection so it ends."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def prepare_tls(data_dir: Path, host: str, *, ca_name: str | None = None) -> TlsFiles:
    """The stand-in's CA and server certificate in ``data_dir/tls`` (made once, then reused);
    ``ca_name``: the CA's common name, else the Key Vault stand-in's."""
    # Imported here: the keyvault package, where the certificates are made, imports this module.
    from devhost.standins.keyvault.certs import DEFAULT_CA_NAME, ensure_tls_files

    tls_dir = data_dir / "tls"
    try:
        return ensure_tls_files(tls_dir, [host], ca_name=ca_name or DEFAULT_CA_NAME)
    except OSError as exc:
        raise StandinStartError(f"cannot prepare TLS files in {tls_dir}: {exc}") from exc


def stop_server(server: TlsHttpServer[Any] | None, thread: threading.Thread | None) -> None:
    """Stop accepting, end open connections, release the port, and wait for the serving thread."""
    if server is not None:
        server.shutdown()
        server.close_connections()
        server.server_close()
    if thread is not None:
        thread.join()


def _close_quietly(connection: ssl.SSLSocket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    connection.close()


def log_internal_error(log: logging.Logger, exc: Exception, method: str) -> None:
    """An API's unexpected failure: type and stack only, as a message could quote request data
    (secret values, client secrets)."""
    log.error(
        "internal error %s while handling %s:\n%s",
        type(exc).__name__,
        method,
        "".join(traceback.format_tb(exc.__traceback__)),
    )


# -- running a stand-in as a process ------------------------------------------------------------


class ServedStandin(Protocol):
    """What ``python -m devhost.standins.<name>`` runs."""

    @property
    def url(self) -> str: ...

    @property
    def ca_path(self) -> Path: ...

    def start(self) -> object: ...

    def stop(self) -> object: ...


def add_listen_arguments(
    parser: argparse.ArgumentParser, *, port: int, data_dir: Path, data_help: str
) -> None:
    """``--host``, ``--port`` and ``--data-dir``, the same for every stand-in."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=port, help="port to listen on; 0 picks a free one"
    )
    parser.add_argument("--data-dir", type=Path, default=data_dir, help=data_help)


def serve_until_signalled(standin: ServedStandin, *, name: str, ready_prefix: str) -> int:
    """Start, print the one ready line (``{ready_prefix} url=URL ca=PATH``), serve until SIGTERM
    or Ctrl-C, stop. A start-up problem is one line on stderr and exit status 2."""
    log_to_stderr()
    stop_requested = stop_on_signals()
    try:
        standin.start()
    except StandinStartError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_START_FAILED
    try:
        print(f"{ready_prefix} url={standin.url} ca={standin.ca_path}", flush=True)
        wait_until_set(stop_requested)
    finally:
        standin.stop()
    logger.info("%s stopped", name)
    return 0
