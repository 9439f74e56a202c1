""":class:`EntraStandin`: the Entra ID stand-in served over HTTPS from threads of this process.

The TLS server is the one the Key Vault stand-in uses (``devhost.standins.https``), with its
own CA and server certificate in ``data_dir/tls``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from devhost.listening import StartStop, bind_error, serve_in_thread
from devhost.standins.https import (
    JsonHandler,
    StandinStartError,
    TlsHttpServer,
    prepare_tls,
    stop_server,
)
from devhost.standins.keyvault._files import ensure_private_dir, lock_dir
from devhost.standins.keyvault.certs import TlsFiles, server_ssl_context

from .addresses import EntraAddresses
from .api import EntraApi, EntraRequest
from .keys import KeyRing
from .principals import Directory, DirectoryError, load_or_create

logger = logging.getLogger(__name__)

CA_NAME = "wheelvault Entra ID stand-in local CA"


class _RequestHandler(JsonHandler):
    """Hands each request to the :class:`EntraApi`."""

    server: TlsHttpServer[EntraApi]
    server_version = "wheelvault-entra-standin"
    request_logger = logging.getLogger("devhost.standins.entra.requests")

    def error_body(self, code: str, message: str) -> Mapping[str, Any]:
        return {"error": "invalid_request", "error_description": message}

    def _dispatch(self) -> None:
        body = self.read_body()
        if body is None:
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = EntraRequest(method=self.command, target=self.path, headers=headers, body=body)
        response = self.server.app.handle(request)
        self.send_json(response.status, response.body, response.headers)

    do_GET = do_POST = _dispatch


class EntraStandin(EntraAddresses, StartStop):
    """The stand-in in this process. ``port=0`` picks a free port (read :attr:`url`)."""

    def __init__(self, data_dir: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.host = host
        self._port = port
        self._directory: Directory | None = None
        self._server: TlsHttpServer[EntraApi] | None = None
        self._thread: threading.Thread | None = None
        self._tls: TlsFiles | None = None
        self._dir_lock: IO[str] | None = None

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT``, no trailing slash: the authority clients are given."""
        return self._running().public_url

    @property
    def ca_path(self) -> Path:
        if self._tls is None:
            raise RuntimeError("the Entra stand-in is not running")
        return self._tls.ca_cert

    @property
    def directory(self) -> Directory:
        if self._directory is None:
            raise RuntimeError("the Entra stand-in is not running")
        return self._directory

    @property
    def key_fetches(self) -> int:
        """JWKS requests served so far."""
        return self._running().app.key_fetches

    def rotate(self, *, retire_previous: bool = False) -> str:
        """A new signing key (its kid); ``retire_previous`` unpublishes the older ones."""
        return self._running().app.rotate_keys(retire_previous=retire_previous)

    def start(self) -> EntraStandin:
        """Lock the data dir, load or create the tenant and keys, prepare TLS, bind, serve."""
        if self._server is not None:
            raise RuntimeError("the Entra stand-in is already running")
        self._dir_lock = self._lock_data_dir()
        try:
            self._server = self._serve()
        except BaseException:
            self._release_data_dir()
            raise
        self._thread = serve_in_thread(self._server, "entra-standin")
        logger.info("Entra ID stand-in serving %s from %s", self._server.public_url, self.data_dir)
        return self

    def stop(self) -> None:
        """Stop accepting, end open connections, release the port and the data dir."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        stop_server(server, thread)
        self._release_data_dir()

    def _running(self) -> TlsHttpServer[EntraApi]:
        if self._server is None:
            raise RuntimeError("the Entra stand-in is not running")
        return self._server

    def _serve(self) -> TlsHttpServer[EntraApi]:
        directory, keys = self._open_data_dir()
        self._tls = prepare_tls(self.data_dir, self.host, ca_name=CA_NAME)
        context = server_ssl_context(self._tls)

        def make_api(public_url: str) -> EntraApi:
            return EntraApi(directory, keys, public_url=public_url)

        try:
            server = TlsHttpServer((self.host, self._port), context, _RequestHandler, make_api)
        except OSError as exc:
            raise StandinStartError(bind_error(self.host, self._port, exc)) from exc
        self._directory = directory
        return server

    def _lock_data_dir(self) -> IO[str]:
        try:
            ensure_private_dir(self.data_dir)
        except OSError as exc:
            raise StandinStartError(f"cannot use data dir {self.data_dir}: {exc}") from exc
        try:
            return lock_dir(self.data_dir)
        except OSError as exc:
            raise StandinStartError(
                f"data dir {self.data_dir} is in use by another Entra ID stand-in"
            ) from exc

    def _release_data_dir(self) -> None:
        if self._dir_lock is not None:
            self._dir_lock.close()
            self._dir_lock = None

    def _open_data_dir(self) -> tuple[Directory, KeyRing]:
        try:
            return load_or_create(self.data_dir), KeyRing(self.data_dir / "keys")
        except DirectoryError as exc:
            raise StandinStartError(str(exc)) from exc
        except (OSError, ValueError) as exc:
            raise StandinStartError(f"cannot use data dir {self.data_dir}: {exc}") from exc
