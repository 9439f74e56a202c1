"""A small local Functions host: the app's HTTP functions at their routes, blob triggers and timers.

Azure Functions Core Tools cannot be installed everywhere we develop and test, so this host
runs ``function_app.app`` (or any ``FunctionApp``) the way Azure does: routes and methods from
the binding metadata, ``host.json``'s ``routePrefix``, a real ``azure.functions.HttpRequest``
in and ``HttpResponse`` out, settings from ``local.settings.json``. Auth levels are logged, not
enforced: our functions are anonymous and check wheelvault tokens themselves. See
``devhost/standins/host/routes.py`` for the routing rules and how they differ from the real host.

Blob-trigger functions get each new blob of their container (polled, delivered at least once,
retried, then quarantined: ``watcher.py``); timer functions run on their NCRONTAB
schedule (``timers.py``); ``POST /admin/functions/{name}`` runs any non-HTTP
function now (``admin.py``). Each invocation logs one line on
``devhost.host.functions``.

    python -m devhost.standins.host [--host H] [--port P] [--settings FILE] [--no-triggers] ...

prints ``wheelvault host ready url=http://127.0.0.1:7071`` and the functions, then serves until
SIGINT/SIGTERM. Start-up problems (port in use, bad settings file) print one line, exit 2.
``LocalHost`` used from code leaves blob watching and timers off unless ``triggers=True``, so a
test that drives a function by hand is not raced by the watcher.

Layout:

* ``functions.py`` indexes *every* function (trigger type, bindings, handler) once;
  ``LocalHost.functions`` is that list.
* ``messages.py`` defines ``HostRequest``/``HostResponse`` and the ``Endpoint`` protocol;
  ``LocalHost.add_endpoint`` puts an endpoint before the function routes (the admin API is one).
* ``server.py`` is the transport only; ``router.py`` the function routes.
* ``background.py`` plans the blob and timer functions and starts and stops their threads next
  to the server in :meth:`LocalHost.start` / :meth:`LocalHost.stop`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import azure.functions as func

from devhost.listening import (
    StartStop,
    bind_error,
    log_to_stderr,
    public_url,
    serve_in_thread,
    stop_on_signals,
    wait_until_set,
)
from devhost.standins.host.admin import AdminEndpoint
from devhost.standins.host.background import Background
from devhost.standins.host.blobs import (
    DEFAULT_QUARANTINE,
    MAX_ATTEMPTS,
    POLL_SECONDS,
    RETRY_DELAYS,
    BlobFunction,
    BlobOptions,
)
from devhost.standins.host.functions import (
    FunctionInfo,
    FunctionProblem,
    HostConfigError,
    HttpFunction,
    http_functions,
    index_functions,
    route_prefix,
)
from devhost.standins.host.invoke import EventLoopThread
from devhost.standins.host.messages import Endpoint, HostRequest, HostResponse, error_response
from devhost.standins.host.router import FunctionRouter
from devhost.standins.host.server import HttpServer, body_limit
from devhost.standins.host.settings import (
    SettingsFileError,
    apply_values,
    find_settings,
    read_values,
)
from devhost.standins.host.timers import TimerFunction
from devhost.standins.keyvault.credential import LocalVaultCredential
from shared.services.wiring import use_local_vault_credential

__all__ = ["HostConfigError", "HostStartError", "LocalHost", "SettingsFileError", "main"]

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7071
READY_PREFIX = "wheelvault host ready"
EXIT_START_FAILED = 2
STOP_GRACE_SECONDS = 10.0

logger = logging.getLogger("devhost.host")


class HostStartError(Exception):
    """The host cannot start listening; the message is for people and names host and port."""


class LocalHost(StartStop):
    """The app's functions run from background threads of this process.

    Construction reads the settings file into ``os.environ`` (before the app is imported, so
    module-level code sees them), indexes the functions and resolves their trigger settings;
    :meth:`start` listens and, when enabled, starts blob watching and timers.
    ``FunctionApp.get_functions()`` may be called only once per app, so a caller that already
    holds the functions passes them as ``functions`` instead of ``app``.

    ``triggers`` turns blob watching and timers on (off by default for code; the CLI turns
    them on); ``blob_triggers``/``timer_triggers`` override it for one kind. ``poll_interval``,
    ``retry_delays`` (seconds after failed attempt 1, 2, ...), ``max_attempts`` and
    ``quarantine_container`` shape blob delivery; tests shorten the delays.
    """

    def __init__(
        self,
        app: func.FunctionApp | None = None,
        *,
        functions: Iterable[func.Function] | None = None,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        settings: str | Path | None = None,
        load_settings: bool = True,
        host_json: Path | None = ROOT / "host.json",
        max_body_bytes: int | None = None,
        triggers: bool = False,
        blob_triggers: bool | None = None,
        timer_triggers: bool | None = None,
        poll_interval: float = POLL_SECONDS,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        max_attempts: int = MAX_ATTEMPTS,
        quarantine_container: str = DEFAULT_QUARANTINE,
    ) -> None:
        self.host, self._port = host, port
        blob_options = BlobOptions(  # validates the values before anything else happens
            poll_interval=poll_interval,
            retry_delays=tuple(retry_delays),
            max_attempts=max_attempts,
            quarantine_container=quarantine_container,
        )
        self._blob_triggers = triggers if blob_triggers is None else blob_triggers
        self._timer_triggers = triggers if timer_triggers is None else timer_triggers
        if load_settings:
            _load_settings(Path(settings) if settings is not None else None)
        # FUNCTIONS_REQUEST_BODY_SIZE_LIMIT from the settings, as the real host reads it.
        self._max_body_bytes = body_limit(os.environ) if max_body_bytes is None else max_body_bytes
        if functions is None:
            functions = (app if app is not None else _import_app()).get_functions()
        self.functions: tuple[FunctionInfo, ...] = tuple(index_functions(functions))
        served, problems = http_functions(self.functions, route_prefix(host_json))
        self.http_functions: tuple[HttpFunction, ...] = tuple(served)
        self._async_loop = EventLoopThread()
        self._background = Background(
            self.functions,
            os.environ,
            self._async_loop,
            blob_options,
            blobs=self._blob_triggers,
            timers=self._timer_triggers,
        )
        self.blob_functions: tuple[BlobFunction, ...] = tuple(
            w.function for w in self._background.watchers
        )
        self.timer_functions: tuple[TimerFunction, ...] = tuple(
            t.function for t in self._background.timers
        )
        order = {id(info): n for n, info in enumerate(self.functions)}
        self.problems: tuple[FunctionProblem, ...] = tuple(
            sorted((*problems, *self._background.problems), key=lambda p: order[id(p.info)])
        )
        self._router = FunctionRouter(served, self._async_loop)
        self._admin = AdminEndpoint(
            self.functions,
            problems={p.info.name: p.reason for p in self.problems},
            blobs=self._background.watchers,
            timers=self._background.timers,
        )
        self._endpoints: list[Endpoint] = [self._admin]
        self._server: HttpServer | None = None
        self._thread: threading.Thread | None = None

    def add_endpoint(self, endpoint: Endpoint) -> None:
        """Answer some requests before the function routes (e.g. the admin API)."""
        self._endpoints.append(endpoint)

    @property
    def url(self) -> str:
        """Base URL clients use, e.g. ``http://127.0.0.1:7071``; a wildcard bind → loopback."""
        return public_url("http", self.host, self.port)

    @property
    def port(self) -> int:
        """The port listened on (the one picked, after starting with port 0)."""
        if self._server is None:
            raise RuntimeError("the local host is not running")
        return self._server.server_port

    def start(self) -> LocalHost:
        """Listen, serve from a background thread, and return once connections are accepted."""
        if self._server is not None:
            raise RuntimeError("the local host is already running")
        # The functions reach the Key Vault stand-in with devhost's placeholder credential, as in
        # Azure they would with the function app's managed identity.
        use_local_vault_credential(LocalVaultCredential())
        try:
            server = HttpServer(
                (self.host, self._port), self.dispatch, max_body_bytes=self._max_body_bytes
            )
        except OSError as exc:
            raise HostStartError(bind_error(self.host, self._port, exc)) from exc
        self._server = server
        self._thread = serve_in_thread(server, "devhost-http")
        self._background.start()
        self._log_functions()
        logger.info("local host listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop accepting, let running requests and invocations finish, join every thread.

        Requests in progress get a bounded grace period; blob deliveries, timer runs and admin
        runs already started finish (a function cannot be interrupted), queued ones are dropped
        and delivered again next time.
        """
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.stop_connections(STOP_GRACE_SECONDS)
        if thread is not None:
            thread.join()
        self._admin.close()
        self._background.stop()
        self._async_loop.stop()

    def dispatch(self, request: HostRequest) -> HostResponse:
        """Extra endpoints first, then the function routes; nothing matched is a JSON 404."""
        for endpoint in (*self._endpoints, self._router):
            try:
                response = endpoint.handle(request)
            except Exception:
                logger.exception("endpoint %s failed", type(endpoint).__name__)
                return error_response(500, "internal", "the host failed; see the host log")
            if response is not None:
                return response
        return error_response(404, "not-found", "no function serves this path")

    def describe(self) -> list[str]:
        """One line per function, as Core Tools lists them at start-up."""
        base = self.url if self._server is not None else f"http://{self.host}:{self._port}"
        problems = {id(p.info): p.reason for p in self.problems}
        routes = {id(f.info): f for f in self.http_functions}
        lines = []
        for info in self.functions:
            if id(info) in problems:
                lines.append(f"  {info.name}: error: {problems[id(info)]}")
            elif id(info) in routes:
                function = routes[id(info)]
                methods = ",".join(sorted(function.methods)) if function.methods else "ALL"
                lines.append(f"  {info.name}: [{methods}] {base}/{function.template.text}")
            else:
                text = self._background.describe(info) or f"{info.trigger_type} (not run here)"
                lines.append(f"  {info.name}: {text}")
        return lines

    def _log_functions(self) -> None:
        for function in self.http_functions:
            logger.info(
                "function %s at /%s auth=%s (auth levels are not enforced locally)",
                function.name,
                function.template.text,
                function.auth_level,
            )
        for watcher in self._background.watchers:
            logger.info(
                "function %s: blob trigger on %s %s",
                watcher.function.name,
                watcher.function.path,
                "watched" if self._blob_triggers else "not watched (blob triggers are off)",
            )
        for timer in self._background.timers:
            logger.info(
                "function %s: timer on %r (UTC) %s",
                timer.function.name,
                timer.function.schedule.text,
                "scheduled" if self._timer_triggers else "not scheduled (timers are off)",
            )
        for problem in self.problems:
            logger.error("function %s is not run: %s", problem.info.name, problem.reason)


def _load_settings(path: Path | None) -> None:
    """Apply ``path`` (or the repository's settings file) without overriding the environment."""
    if path is None:
        path = find_settings(ROOT)
        if path is None:
            logger.info("no local.settings.json or sample found; using the environment only")
            return
    logger.info("settings from %s", path)
    apply_values(read_values(path), os.environ)


def _import_app() -> func.FunctionApp:
    """``function_app.app``, imported only now: after the settings are in the environment."""
    app = importlib.import_module("function_app").app
    if not isinstance(app, func.FunctionApp):
        raise TypeError("function_app.app is not an azure.functions.FunctionApp")
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM; 0 on a clean stop, 2 when the host cannot start."""
    args = _parse_args(argv)
    log_to_stderr()
    # The Azure SDKs log every outgoing request at INFO: noise next to our one line per request.
    logging.getLogger("azure").setLevel(logging.WARNING)
    stop_requested = stop_on_signals()
    try:
        host = LocalHost(
            host=args.host,
            port=args.port,
            settings=args.settings,
            blob_triggers=not (args.no_triggers or args.no_blob_triggers),
            timer_triggers=not (args.no_triggers or args.no_timers),
        ).start()
    except (HostStartError, SettingsFileError, HostConfigError) as exc:
        print(f"wheelvault host: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_START_FAILED
    try:
        print(f"{READY_PREFIX} url={host.url}", flush=True)
        print("functions:\n" + "\n".join(host.describe()), flush=True)
        wait_until_set(stop_requested)
    finally:
        host.stop()
    logger.info("local host stopped")
    return 0


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devhost.standins.host",
        description="Run the function app locally, as the Functions host does: HTTP routes, "
        "blob triggers, timers and POST /admin/functions/{name}.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port to listen on; 0 picks a free one"
    )
    parser.add_argument(
        "--settings",
        type=Path,
        help="settings file (default: local.settings.json, else local.settings.sample.json)",
    )
    parser.add_argument(
        "--no-triggers", action="store_true", help="neither watch blobs nor run timers"
    )
    parser.add_argument("--no-blob-triggers", action="store_true", help="do not watch blobs")
    parser.add_argument("--no-timers", action="store_true", help="do not run timers")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
