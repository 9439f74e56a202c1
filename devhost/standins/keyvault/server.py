"""The Key Vault stand-in's HTTPS transport, and :class:`VaultStandin` to run it inside a process.

The TLS server itself is shared with the other HTTPS stand-ins (``devhost.standins.https``);
:class:`~.api.VaultApi` decides the answers. ``http.server``'s own log lines are silenced because
they echo raw request lines.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devhost.listening import StartStop, bind_error, serve_in_thread
from devhost.standins.https import (
    JsonHandler,
    StandinStartError,
    TlsHttpServer,
    prepare_tls,
    stop_server,
)

from .api import MAX_PAGE_SIZE, ApiRequest, VaultApi
from .certs import TlsFiles, server_ssl_context
from .store import SecretStore, StoreError

__all__ = ["StandinStartError", "VaultStandin"]

logger = logging.getLogger(__name__)


class _RequestHandler(JsonHandler):
    """Hands each request to the :class:`VaultApi`."""

    server: TlsHttpServer[VaultApi]
    server_version = "wheelvault-keyvault-standin"
    request_logger = logging.getLogger("devhost.standins.keyvault.requests")

    def error_body(self, code: str, message: str) -> Mapping[str, Any]:
        return {"error": {"code": code, "message": message}}

    def _dispatch(self) -> None:
        body = self.read_body()
        if body is None:
            return
        request = ApiRequest(
            method=self.command,
            target=self.path,
            authorization=self.headers.get("Authorization"),
            host=self.headers.get("Host"),
            body=body,
        )
        response = self.server.app.handle(request)
        self.send_json(response.status, response.body, response.headers)

    # http.server dispatches on do_<METHOD>; these are the methods the secrets API uses.
    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST = _dispatch


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
        self._server: TlsHttpServer[VaultApi] | None = None
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
            self._tls = prepare_tls(self.data_dir, self.host)
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
        stop_server(server, thread)
        if store is not None:
            store.close()

    def _running(self) -> tuple[TlsHttpServer[VaultApi], TlsFiles]:
        if self._server is None or self._tls is None:
            raise RuntimeError("the Key Vault stand-in is not running")
        return self._server, self._tls

    def _bind(self, store: SecretStore, context: ssl.SSLContext) -> TlsHttpServer[VaultApi]:
        def make_api(public_url: str) -> VaultApi:
            return VaultApi(store, public_url=public_url, page_size=self._page_size)

        try:
            return TlsHttpServer((self.host, self._port), context, _RequestHandler, make_api)
        except OSError as exc:
            raise StandinStartError(bind_error(self.host, self._port, exc)) from exc
