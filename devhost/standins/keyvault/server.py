"""HTTPS transport for the stand-in, and :class:`VaultStandin` to run it inside a process.

A standard-library ``ThreadingHTTPServer`` carries the requests; :class:`~.api.VaultApi`
decides the answers. Two choices differ from the usual "wrap the listening socket" recipe:

* The TLS handshake runs in the per-connection worker thread with a timeout, not in the accept
  loop, so one client that connects and stalls cannot block every other client.
* Open keep-alive connections are tracked and shut down on :meth:`VaultStandin.stop`, so a stop
  really stops serving instead of leaving idle worker threads answering old connections.

Request logs carry method, path (without query) and status only: never headers (the bearer
token) or bodies (secret values). ``http.server``'s own log lines are silenced because they
echo raw request lines.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devhost.listening import (
    LocalHttpServer,
    QuietHandler,
    StartStop,
    bind_error,
    loggable_path,
    public_url,
    serve_in_thread,
)

from .api import MAX_PAGE_SIZE, ApiRequest, ApiResponse, VaultApi
from .certs import TlsFiles, ensure_tls_files, server_ssl_context
from .store import SecretStore, StoreError

logger = logging.getLogger(__name__)
request_logger = logging.getLogger("devhost.standins.keyvault.requests")

MAX_BODY_BYTES = 1024 * 1024
HANDSHAKE_TIMEOUT_SECONDS = 10.0
IDLE_TIMEOUT_SECONDS = 60.0


class StandinStartError(Exception):
    """The stand-in cannot start (port in use, data dir locked or unreadable, ...).

    The message is written for people and the CLI prints it as-is, without a traceback.
    """


class _RequestHandler(QuietHandler):
    """Reads one request at a time from a TLS connection and hands it to the API."""

    server: _TlsHttpServer
    server_version = "wheelvault-keyvault-standin"
    timeout = IDLE_TIMEOUT_SECONDS

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            return
        request = ApiRequest(
            method=self.command,
            target=self.path,
            authorization=self.headers.get("Authorization"),
            host=self.headers.get("Host"),
            body=body,
        )
        self._send(self.server.api.handle(request))

    # http.server dispatches on do_<METHOD>; these are the methods the secrets API uses.
    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST = _dispatch

    def _read_body(self) -> bytes | None:
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
        self._send(ApiResponse(status, {"error": {"code": code, "message": message}}))

    def _send(self, response: ApiResponse) -> None:
        payload = b""
        if response.body is not None:
            payload = json.dumps(response.body, separators=(",", ":")).encode("utf-8")
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.body is not None:
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
        request_logger.info("%s %s %s", method, loggable_path(path), status)


class _TlsHttpServer(LocalHttpServer):
    """A threaded HTTP server that speaks TLS on each accepted connection."""

    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        ssl_context: ssl.SSLContext,
        make_api: Callable[[str], VaultApi],
    ) -> None:
        self._ssl_context = ssl_context
        self._connections: set[ssl.SSLSocket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)
        try:
            self.public_url = public_url("https", address[0], self.server_address[1])
            self.api = make_api(self.public_url)
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
            _RequestHandler(connection, client_address, self)
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


class VaultStandin(StartStop):
    """The stand-in served from background threads of the current process.

    ``port=0`` picks a free port; read the chosen one from :attr:`url` after :meth:`start`.
    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        page_size: int = MAX_PAGE_SIZE,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.host = host
        self._port = port
        self._page_size = page_size
        self._store: SecretStore | None = None
        self._server: _TlsHttpServer | None = None
        self._thread: threading.Thread | None = None
        self._tls: TlsFiles | None = None

    @property
    def url(self) -> str:
        """The vault URL to give ``SecretClient``, e.g. ``https://127.0.0.1:8443``."""
        return self._running()[0].public_url

    @property
    def ca_path(self) -> Path:
        """The CA certificate clients pass as ``connection_verify``."""
        return self._running()[1].ca_cert

    def start(self) -> VaultStandin:
        """Open the data dir, prepare TLS, bind, and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("the Key Vault stand-in is already running")
        try:
            store = SecretStore.open(self.data_dir)
        except StoreError as exc:
            raise StandinStartError(str(exc)) from exc
        except OSError as exc:
            raise StandinStartError(f"cannot use data dir {self.data_dir}: {exc}") from exc
        try:
            self._tls = self._prepare_tls()
            server = self._bind(store, server_ssl_context(self._tls))
        except BaseException:
            store.close()
            raise
        self._store, self._server = store, server
        self._thread = serve_in_thread(server, "keyvault-standin")
        logger.info("Key Vault stand-in serving %s from %s", server.public_url, self.data_dir)
        return self

    def stop(self) -> None:
        """Stop accepting, end open connections, and release the port and the data dir."""
        server, thread, store = self._server, self._thread, self._store
        self._server = self._thread = self._store = None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if thread is not None:
            thread.join()
        if store is not None:
            store.close()

    def _running(self) -> tuple[_TlsHttpServer, TlsFiles]:
        if self._server is None or self._tls is None:
            raise RuntimeError("the Key Vault stand-in is not running")
        return self._server, self._tls

    def _prepare_tls(self) -> TlsFiles:
        tls_dir = self.data_dir / "tls"
        try:
            return ensure_tls_files(tls_dir, [self.host])
        except OSError as exc:
            raise StandinStartError(f"cannot prepare TLS files in {tls_dir}: {exc}") from exc

    def _bind(self, store: SecretStore, context: ssl.SSLContext) -> _TlsHttpServer:
        def make_api(public_url: str) -> VaultApi:
            return VaultApi(store, public_url=public_url, page_size=self._page_size)

        try:
            return _TlsHttpServer((self.host, self._port), context, make_api)
        except OSError as exc:
            raise StandinStartError(bind_error(self.host, self._port, exc)) from exc


def _close_quietly(connection: ssl.SSLSocket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    connection.close()
